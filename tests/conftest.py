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

import importlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import sqlalchemy as sa

REPO = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

#: The PostgreSQL driver of the SQLAlchemy under test: psycopg (3) on 2.x; psycopg2 on
#: 1.4, which has no psycopg 3 dialect.
POSTGRES_DRIVER = "psycopg2" if sa.__version__.startswith("1.") else "psycopg"
POSTGRES_SCHEME = f"postgresql+{POSTGRES_DRIVER}"
#: SQLAlchemy 1.4, the oldest supported: it still runs the 1.x idioms (with a warning).
SQLALCHEMY_1 = sa.__version__.startswith("1.")
#: Seconds a test's held statement sleeps on PostgreSQL before the test interrupts
#: it: psycopg 3 cancels the statement at Ctrl-C/SIGTERM, psycopg2 lets it end first
#: (README "The oldest supported stack"), so there it is short, and the interruption
#: takes effect once it has ended.
POSTGRES_HOLD_SECONDS = 60 if POSTGRES_DRIVER == "psycopg" else 8


def postgres_driver_url(url: str) -> str:
    """A PostgreSQL URL with the driver :data:`POSTGRES_DRIVER` (other URLs as given)."""
    return re.sub(r"^postgresql(\+\w+)?://", f"postgresql+{POSTGRES_DRIVER}://", url)


#: Flask-SQLAlchemy 2.x (the oldest supported stack): engines made on first use, a
#: relative SQLite path in the application's root folder, 'sqlite:///:memory:' when no
#: database is set (with its own warning, see FLASK_SQLALCHEMY_2_NO_URL_WARNING).
FLASK_SQLALCHEMY_2 = not hasattr(importlib.import_module("flask_sqlalchemy").SQLAlchemy,
                                 "engines")

#: Flask-SQLAlchemy 2's own warning when no database is set, printed (two lines) while
#: the application is created, before any code of ours runs (README.rst, "The oldest
#: supported stack").
FLASK_SQLALCHEMY_2_NO_URL_WARNING = (
    "UserWarning: Neither SQLALCHEMY_DATABASE_URI nor SQLALCHEMY_BINDS is set. "
    'Defaulting SQLALCHEMY_DATABASE_URI to "sqlite:///:memory:".'
)


def without_flask_sqlalchemy_2_no_url_warning(proc):
    """``proc`` with Flask-SQLAlchemy 2's two-line no-database warning taken out of its
    stderr, after checking it is there; as it is on Flask-SQLAlchemy 3."""
    if not FLASK_SQLALCHEMY_2:
        return proc
    lines = proc.stderr.splitlines()
    at = next((i for i, line in enumerate(lines) if FLASK_SQLALCHEMY_2_NO_URL_WARNING in line),
              None)
    assert at is not None, proc.stderr
    proc.stderr = "\n".join(lines[:at] + lines[at + 2:]) + "\n"
    return proc


#: sqlalchemy.make_url arrived in 2.0; sqlalchemy.engine.make_url is in 1.4 too.
make_url = sa.engine.make_url

SERVER_URLS = {
    "postgresql": os.environ.get(
        "FMC_TEST_POSTGRES_URL", postgres_driver_url("postgresql://postgres@127.0.0.1:5432/test")
    ),
    "mysql": os.environ.get(
        "FMC_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test"
    ),
}


#: ``FMC_TEST_GRAPH_CACHE=off`` runs the suite with the revision-graph cache off (in
#: this process and in every command the tests start); the default is on.
GRAPH_CACHE_OFF = os.environ.get("FMC_TEST_GRAPH_CACHE", "on").lower() in ("off", "0", "no")
if GRAPH_CACHE_OFF:
    os.environ["FLASK_MIGRATE_COMPAT_NO_CACHE"] = "1"


def pytest_report_header(config):
    return f"revision-graph cache: {'off' if GRAPH_CACHE_OFF else 'on'} (FMC_TEST_GRAPH_CACHE)"


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
    """Skip locally; in CI (CI=true) a missing server or module is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: no test may skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str):
    """Import an optional module (``flask_script_ng``, ``termios``...) for a test, or
    a whole test module: skips where it is missing, fails the run under ``CI=true``.

    :returns: the module.
    """
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_or_fail(f"optional module {name!r} is not importable: {exc}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under ``CI=true`` a skipped test is a failed one, whatever skipped it: the CI
    run proves everything or fails (``xfail`` is not a skip and stays as it is)."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, where no test may skip: {reason}"


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
    admin = make_url(SERVER_URLS[kind])
    engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    url = admin.set(database=name).render_as_string(hide_password=False)
    return Database(kind, url, admin_url=admin.render_as_string(hide_password=False), name=name)


def drop_database(db: Database) -> None:
    kill_spawned()  # a process still connected could keep MariaDB's DROP waiting
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


# -- processes that run alongside a test -------------------------------------------------

_spawned: list[subprocess.Popen] = []


def spawn(args, **kwargs) -> subprocess.Popen:
    """``subprocess.Popen(args, text=True, stdout=PIPE, stderr=PIPE, **kwargs)``, killed
    at the end of the test (before its databases are dropped) if still running."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    proc = subprocess.Popen(args, text=True, **kwargs)
    _spawned.append(proc)
    return proc


def kill_spawned() -> None:
    """Kill every :func:`spawn` process still running."""
    while _spawned:
        proc = _spawned.pop()
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


@pytest.fixture(autouse=True)
def _no_process_outlives_its_test():
    yield
    kill_spawned()


def assert_held_statement_ended(held: float, signalled: float) -> None:
    """On PostgreSQL with psycopg2: the signal, sent at ``signalled`` while the held
    statement (started just after ``held``, ``time.monotonic()`` values) ran, took
    effect only once the statement had ended."""
    assert signalled - held < POSTGRES_HOLD_SECONDS - 1, "signalled too late to tell"
    assert time.monotonic() - held > POSTGRES_HOLD_SECONDS - 0.5


def wait_for_line(proc, text: str, timeout: float = 30, stream: str = "stderr") -> list[str]:
    """Read ``proc``'s stderr (or ``stream``) line by line until one holds ``text``.

    Bounded: fails after ``timeout`` seconds, or as soon as the stream ends without
    it, so a process that never says it (a lock that does not work) fails the test in
    seconds instead of stalling the run.

    :returns: the lines read, the one holding ``text`` last.
    """
    pipe = getattr(proc, stream)
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in pipe:
            lines.append(line)
            if text in line:
                found.set()
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found.is_set():
        why = f"not within {timeout:g} s" if reader.is_alive() else "before its end"
        raise AssertionError(f"{text!r} not printed on {stream} ({why}); read:\n"
                             + "".join(lines))
    return lines


def pty_run(argv: list[str], answers: list[tuple[str, str]], cwd: Path, env: dict,
            timeout: float = 60) -> tuple[int, str]:
    """Run ``argv`` on a pseudo-terminal; answer each ``(question fragment, answer)``
    in order when the fragment appears (``None`` for an answer: press Ctrl-C, that is,
    send SIGINT). Returns the exit code and the output."""
    try:
        import pty
        import termios  # noqa: F401 - pseudo-terminals need it
    except ImportError:
        skip_or_fail("no pseudo-terminals (pty/termios) on this platform")
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                            env=env, close_fds=True)
    os.close(slave)
    output, asked_up_to = b"", 0
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([master], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"no progress within {timeout}s:\n{output.decode()}")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if answers:
                fragment, answer = answers[0]
                at = output.find(fragment.encode(), asked_up_to)
                if at >= 0 and output.rstrip().endswith((b":", b"]:")):
                    if answer is None:
                        # As a person would: once the prompt waits for input.
                        time.sleep(0.3)
                        proc.send_signal(signal.SIGINT)
                    else:
                        os.write(master, answer.encode() + b"\r")
                    asked_up_to = len(output)
                    answers.pop(0)
        code = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        os.close(master)
    assert not answers, f"never asked {answers}:\n{output.decode()}"
    return code, output.decode().replace("\r\n", "\n")


def wait_for_file(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until ``path`` exists; fail at once if ``proc`` ends first, and after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate(timeout=30)
            raise AssertionError(f"exited {proc.returncode} before {path.name} appeared"
                                 f"\n--- stdout\n{out}\n--- stderr\n{err}")
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.02)


def output(proc) -> str:
    """Everything a finished subprocess printed."""
    return proc.stdout + proc.stderr


#: The lines a failing command may print on stderr besides its one ``Error:`` line:
#: Alembic's log lines (the logging setup of every env.py template writes them as
#: ``%(levelname)-5.5s [%(name)s]``, so WARNING shows as ``WARNI``), two progress
#: lines printed while the work goes on, before its outcome is known (the migration
#: lock's wait, what a stalled deploy shows; each revision step's time as it finishes,
#: README "Deploying"), and the runner's one summary of the imports it served
#: (docs/coming-from-flask-script.rst). Anything else counts.
NOT_ERROR_LINES = re.compile(
    r"(INFO|WARNI|WARNING) +\[alembic[\w.]*\] "
    r"|Waiting for the migration lock "
    r"|(Upgrade|Downgrade) \S+ .*done in \d+\.\d\d s$"
    r"|flask-migrate-compat: imports served: "
)


def error_lines(stderr: str) -> list[str]:
    """Every line of ``stderr`` but those :data:`NOT_ERROR_LINES` allows (empty lines
    count too)."""
    return [line for line in stderr.splitlines() if not NOT_ERROR_LINES.match(line)]


def assert_one_error(proc, *fragments: str, code: int = 1) -> str:
    """Exit code ``code`` (1 unless an interruption's 130/143), stderr holding exactly
    one line besides Alembic's log lines (see :data:`NOT_ERROR_LINES`): an ``Error:``
    line holding ``fragments``; no traceback anywhere. Returns the error line."""
    assert proc.returncode == code, output(proc)
    assert "Traceback" not in output(proc)
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("Error: "), proc.stderr
    assert "Error:" not in proc.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- applications on disk -------------------------------------------------------------

APP_TEMPLATE = '''\
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_compat import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False  # Flask-SQLAlchemy 2 warns otherwise
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
            password = make_url(text).password if text else None
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
    if GRAPH_CACHE_OFF:
        env["FLASK_MIGRATE_COMPAT_NO_CACHE"] = "1"
    return env


_init_output: list[Path] = []


def init_migrations(project: Project, directory: str = "migrations") -> Path:
    """Give ``project`` the script directory ``flask db init`` writes.

    ``db init`` really runs once per test session (in a scratch project); each call
    copies what it wrote, which saves a process start per test. The ``flask`` template
    has no per-project content, so the copy is what ``db init`` would write there.

    :returns: the script directory.
    """
    if not _init_output:
        import atexit
        import tempfile

        scratch = Path(tempfile.mkdtemp(prefix="fmc-init-"))
        atexit.register(shutil.rmtree, scratch, True)
        database = Database("sqlite", f"sqlite:///{scratch / 'app.db'}")
        (scratch / "app.py").write_text(
            APP_TEMPLATE.format(models="", config="", migrate_args=""))
        proc = subprocess.run([sys.executable, "-m", "flask", "db", "init"], cwd=scratch,
                              env=project_env(scratch, database), capture_output=True,
                              text=True, timeout=120)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        _init_output.append(scratch / "migrations")
    target = project.path / directory
    shutil.copytree(_init_output[0], target)
    return target


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
