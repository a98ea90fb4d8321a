"""Shared fixtures: throw-away projects on disk, real databases, real subprocesses.

Every end-to-end test writes a small Flask application into a temporary directory and
drives it with ``python -m flask db ...`` or ``python manage.py db ...`` in a
subprocess, then inspects the real database with SQLAlchemy's inspector.

Server databases: PostgreSQL (127.0.0.1:5432, user postgres) and MariaDB
(127.0.0.1:3306, root). Each test gets a fresh database, created and dropped here.
Where no server answers the test is skipped, except under ``CI=true``, where a missing
server fails the run. Override the server URLs with ``FMC_TEST_POSTGRES_URL`` and
``FMC_TEST_MYSQL_URL`` (URLs of an administrative database).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

SERVER_URLS = {
    "postgresql": os.environ.get(
        "FMC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    ),
    "mysql": os.environ.get(
        "FMC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}


def pytest_addoption(parser):
    parser.addoption(
        "--databases",
        default=os.environ.get("FMC_TEST_DATABASES", "sqlite,postgresql,mysql"),
        help="comma-separated database kinds for the matrix tests "
             "(sqlite, postgresql, mysql); default from FMC_TEST_DATABASES or all three",
    )


def selected_databases(config) -> list[str]:
    return [k.strip() for k in config.getoption("--databases").split(",") if k.strip()]


def skip_or_fail(reason: str):
    """Skip locally; in CI (CI=true) a missing server is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: server tests must not skip)", pytrace=False)
    pytest.skip(reason)


_reachable: dict[str, str | None] = {}


def server_error(kind: str) -> str | None:
    """None when the server answers, else why not (checked once per session)."""
    if kind not in _reachable:
        try:
            engine = sa.create_engine(SERVER_URLS[kind], connect_args=_timeout_args(kind))
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            engine.dispose()
            _reachable[kind] = None
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable here"
            _reachable[kind] = f"{kind} server not reachable: {type(exc).__name__}: {exc}"
    return _reachable[kind]


def _timeout_args(kind: str) -> dict:
    return {"connect_timeout": 3}


@dataclass
class Database:
    """A fresh database for one test: ``url`` for the app, ``engine`` to inspect it."""

    kind: str
    url: str
    admin_url: str | None = None
    name: str | None = None
    _engines: list = field(default_factory=list)

    def engine(self) -> sa.Engine:
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        self._engines.append(engine)
        return engine

    def inspector(self) -> sa.Inspector:
        return sa.inspect(self.engine())

    def tables(self) -> set[str]:
        return set(self.inspector().get_table_names())

    def columns(self, table: str) -> dict[str, dict]:
        return {c["name"]: c for c in self.inspector().get_columns(table)}

    def version(self, table: str = "alembic_version") -> list[str]:
        with self.engine().connect() as conn:
            return sorted(r[0] for r in conn.execute(sa.text(f"SELECT version_num FROM {table}")))

    def dispose(self):
        for engine in self._engines:
            engine.dispose()


def create_database(kind: str, tmp_path: Path, label: str = "main") -> Database:
    """Create a fresh, empty database of ``kind`` (sqlite, postgresql, mysql)."""
    if kind == "sqlite":
        path = tmp_path / f"{label}.db"
        return Database(kind, f"sqlite:///{path}")
    reason = server_error(kind)
    if reason:
        skip_or_fail(reason)
    name = f"fmc_{label}_{uuid.uuid4().hex[:10]}"
    admin = sa.make_url(SERVER_URLS[kind])
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    url = admin.set(database=name).render_as_string(hide_password=False)
    return Database(kind, url, admin_url=admin.render_as_string(hide_password=False), name=name)


def drop_database(db: Database) -> None:
    db.dispose()
    if db.kind == "sqlite" or db.name is None:
        return
    engine = sa.create_engine(db.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        if db.kind == "postgresql":
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)"))
        else:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {db.name}"))
    engine.dispose()


@pytest.fixture
def make_database(tmp_path):
    """Factory: ``make_database(kind, label='main')`` -> :class:`Database`, dropped after."""
    created = []

    def factory(kind: str = "sqlite", label: str = "main") -> Database:
        db = create_database(kind, tmp_path, label)
        created.append(db)
        return db

    yield factory
    for db in created:
        drop_database(db)


@pytest.fixture
def sqlite_db(make_database) -> Database:
    return make_database("sqlite")


@pytest.fixture
def postgres_db(make_database) -> Database:
    return make_database("postgresql")


@pytest.fixture
def mysql_db(make_database) -> Database:
    return make_database("mysql")


def output(proc) -> str:
    """Everything a finished subprocess printed."""
    return proc.stdout + proc.stderr


def assert_one_error(proc, *fragments: str) -> str:
    """Exit code 1, exactly one ``Error:`` line on stderr holding ``fragments``, and
    no traceback anywhere. Returns the error line."""
    assert proc.returncode == 1, output(proc)
    assert "Traceback" not in output(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    assert "Error:" not in proc.stdout
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# -- applications on disk -------------------------------------------------------------

APP_TEMPLATE = '''\
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_compat import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
{config}
db = SQLAlchemy(app)
migrate = Migrate(app, db{migrate_args})

{models}
'''

MODELS_V1 = '''\
class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)
'''

# v2: a new column, a changed type (String(50) -> String(120)) and a new table.
MODELS_V2 = '''\
class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)
    email = db.Column(db.String(120))


class Post(db.Model):
    __tablename__ = "posts"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    title = db.Column(db.String(200))
'''

MANAGE_TEMPLATE = '''\
from flask_script import Manager
from flask_migrate_compat import MigrateCommand
from app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
'''


@dataclass
class Project:
    """A Flask application in a temporary directory, driven through subprocesses."""

    path: Path
    database: Database
    env: dict

    def write_app(self, models: str = MODELS_V1, config: str = "", migrate_args: str = "",
                  name: str = "app.py") -> None:
        text = APP_TEMPLATE.format(models=models, config=config, migrate_args=migrate_args)
        (self.path / name).write_text(text)
        _forget_bytecode(self.path)

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))
        _forget_bytecode(self.path)
        return target

    def run(self, *args: str, check: bool = True, env: dict | None = None,
            input: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run ``python *args`` in the project; ``check`` asserts exit code 0."""
        proc = subprocess.run(
            [sys.executable, *args], cwd=self.path, env={**self.env, **(env or {})},
            capture_output=True, text=True, input=input, timeout=timeout,
        )
        # No command may ever print a database password, whatever it does.
        for password in _passwords(self.database.url, {**self.env, **(env or {})}):
            for stream, text in (("stdout", proc.stdout), ("stderr", proc.stderr)):
                assert not shows_password(text or "", password), (
                    f"python {' '.join(args)} printed the database password on {stream}"
                )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"python {' '.join(args)} exited {proc.returncode}\n"
                f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
            )
        return proc

    def flask(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """``flask --app app <args>`` (the app module is ``app.py`` unless FLASK_APP says)."""
        return self.run("-m", "flask", *args, **kwargs)

    def manage(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        """``python manage.py <args>``."""
        return self.run("manage.py", *args, **kwargs)

    def revisions(self, directory: str = "migrations") -> list[Path]:
        return sorted((self.path / directory / "versions").glob("*.py"))


def shows_password(text: str, password: str) -> bool:
    """Whether ``text`` shows ``password`` or a fragment of it: anywhere for a password
    of 12 characters or more; for a shorter one (``postgres``, ``a``, ``1``), where it
    stands apart from the letters and digits around it, since "postgresql" or
    "127.0.0.1" show nothing."""
    if len(password) >= 12:
        return password in text
    import re

    return re.search(rf"(?<![\w.-]){re.escape(password)}(?![\w.-])", text) is not None


def _passwords(url: str, env: dict) -> set[str]:
    """Passwords of the project's database URL and of DATABASE_URL-like variables."""
    from urllib.parse import quote_plus

    found = set()
    for text in (url, *(v for k, v in env.items() if k.endswith("DATABASE_URL"))):
        try:
            password = sa.make_url(text).password if text else None
        except Exception:  # noqa: BLE001 - not a URL: nothing to look for
            password = None
        if password:
            found.update({str(password), quote_plus(str(password))})
    return found


def _forget_bytecode(path: Path) -> None:
    # Rewritten modules can keep their mtime within one second; stale .pyc would win.
    for pyc in path.rglob("__pycache__"):
        for f in pyc.glob("*.pyc"):
            f.unlink()


def project_env(path: Path, database: Database) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASK_", "FMC_TEST"))}
    env.update(
        DATABASE_URL=database.url,
        FLASK_APP="app",
        PYTHONPATH=str(path),
        PYTHONDONTWRITEBYTECODE="1",
        # Never open an interactive editor from a test.
        EDITOR="true",
        VISUAL="true",
    )
    return env


@pytest.fixture
def make_project(tmp_path):
    """Factory: ``make_project(database, subdir='proj')`` -> :class:`Project` with
    ``app.py`` (models v1) and ``manage.py`` written."""

    def factory(database: Database, subdir: str = "proj") -> Project:
        path = tmp_path / subdir
        path.mkdir()
        project = Project(path, database, project_env(path, database))
        project.write_app()
        project.write("manage.py", MANAGE_TEMPLATE)
        return project

    return factory


@pytest.fixture
def project(make_project, sqlite_db) -> Project:
    """A project on a fresh SQLite file."""
    return make_project(sqlite_db)
