"""Migrations folders written by Flask-Migrate 1.x-2.7 keep working unchanged.

Each folder in tests/fixtures/legacy_*/migrations reproduces the env.py, alembic.ini,
script.py.mako and revision scripts of one Flask-Migrate generation (their API usage,
in our own words); models.py holds the models matching its last revision. Every
generation is driven through both front ends (``python -m flask db`` and a Flask-Script
``python manage.py db``) on SQLite and on PostgreSQL with a password-protected role
whose password has URL-special characters: upgrade, downgrade base, upgrade again,
migrate (autogenerate finds nothing: no new file), current, history. The password must
never appear in any output, and the folder must be byte-for-byte unchanged afterwards.

The local PostgreSQL server trusts 127.0.0.1, so it would accept any password. The test
application therefore refuses, in a DBAPI ``do_connect`` hook, any connection attempt
whose password is not the role's: a masked ``***`` (SQLAlchemy 2's ``str(url)``) or a
mangled ``%`` fails exactly as a server with password authentication would fail.
"""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import (
    FLASK_SQLALCHEMY_2, Database, assert_one_error, create_database, drop_database, make_url,
    postgres_driver_url, server_error, skip_or_fail,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SINGLE = ["legacy_1_0", "legacy_1x", "legacy_2_0_to_2_4", "legacy_2_5_to_2_6", "legacy_2_7"]
MULTI = "legacy_2_7_multidb"
PASSWORD = "s3cr3t-%-pw/@:?#+"
SECRET_MARK = "s3cr3t"

# Injected into app.py (the {config} slot): a stand-in for password authentication.
PASSWORD_GUARD = '''
if os.environ.get("EXPECTED_DB_PASSWORD"):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    @event.listens_for(Engine, "do_connect")
    def _password_authentication(dialect, conn_rec, cargs, cparams):
        if dialect.name == "postgresql" and (
                cparams.get("password") != os.environ["EXPECTED_DB_PASSWORD"]):
            raise RuntimeError("password authentication failed (wrong password given)")
'''
BINDS = 'app.config["SQLALCHEMY_BINDS"] = {"audit": os.environ["AUDIT_DATABASE_URL"]}\n'


#: Fixture folders that hold only what differs from another generation's: the early
#: Flask-Migrate 1.x env.py (no hook that skips empty revisions) over 1.x's revisions.
BASED_ON = {"legacy_1_0": "legacy_1x"}


def fixture_path(generation: str, *parts: str) -> Path:
    """A file of a generation's fixture, or of the one it is based on."""
    own = FIXTURES.joinpath(generation, *parts)
    return own if own.exists() or generation not in BASED_ON else \
        FIXTURES.joinpath(BASED_ON[generation], *parts)


def copy_migrations(generation: str, target: Path) -> None:
    """A generation's migrations folder: its base's, then its own files over it."""
    if generation in BASED_ON:
        shutil.copytree(FIXTURES / BASED_ON[generation] / "migrations", target)
    shutil.copytree(FIXTURES / generation / "migrations", target, dirs_exist_ok=True)


def revisions_of(generation: str) -> list[str]:
    """Revision ids of a fixture folder, oldest first (the files chain in name order)."""
    versions = fixture_path(generation, "migrations", "versions")
    return [p.name.split("_")[0] for p in sorted(versions.glob("*.py"))]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture
def password_databases(tmp_path):
    """Factory: ``(kind, labels) -> [Database]``; on PostgreSQL, databases owned by a
    fresh LOGIN role with :data:`PASSWORD`, all dropped (role too) afterwards."""
    made: list[Database] = []
    roles: list[tuple[str, str]] = []

    def factory(kind: str, labels: tuple[str, ...] = ("main",)) -> list[Database]:
        if kind == "sqlite":
            dbs = [create_database("sqlite", tmp_path, label) for label in labels]
            made.extend(dbs)
            return dbs
        reason = server_error(kind)
        if reason:
            skip_or_fail(reason)
        role = f"fmc_legacy_{uuid.uuid4().hex[:10]}"
        admin_dbs = [create_database(kind, tmp_path, label) for label in labels]
        made.extend(admin_dbs)
        engine = sa.create_engine(admin_dbs[0].admin_url, isolation_level="AUTOCOMMIT",
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD '{PASSWORD}'"))
            roles.append((role, admin_dbs[0].admin_url))
            for db in admin_dbs:
                conn.execute(sa.text(f"ALTER DATABASE {db.name} OWNER TO {role}"))
                conn.execute(sa.text(f"GRANT ALL ON DATABASE {db.name} TO {role}"))
        engine.dispose()
        result = []
        for db in admin_dbs:
            url = make_url(db.url).set(username=role, password=PASSWORD)
            result.append(Database(kind, url.render_as_string(hide_password=False),
                                   admin_url=db.admin_url, name=db.name))
        return result

    yield factory
    for db in made:
        drop_database(db)
    for role, admin_url in roles:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        engine.dispose()


def set_up(make_project, dbs: list[Database], generation: str, config: str = ""):
    project = make_project(dbs[0])
    copy_migrations(generation, project.path / "migrations")
    project.write_app(models=fixture_path(generation, "models.py").read_text(),
                      config=config + PASSWORD_GUARD)
    if dbs[0].kind != "sqlite":
        project.env["EXPECTED_DB_PASSWORD"] = PASSWORD
    if len(dbs) > 1:
        project.env["AUDIT_DATABASE_URL"] = dbs[1].url
    return project


def runner_for(project, front_end: str):
    def db(*args: str, **kwargs):
        if front_end == "flask":
            proc = project.flask("db", *args, **kwargs)
        else:
            proc = project.manage("db", *args, **kwargs)
        output = proc.stdout + proc.stderr
        assert SECRET_MARK not in output, f"password shown by 'db {' '.join(args)}'"
        return proc
    return db


@pytest.mark.parametrize("front_end", ["flask", "manage"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
@pytest.mark.parametrize("generation", SINGLE)
def test_single_database_generation(generation, kind, front_end, make_project,
                                    password_databases):
    dbs = password_databases(kind)
    project = set_up(make_project, dbs, generation)
    db = runner_for(project, front_end)
    database = dbs[0]
    revs = revisions_of(generation)
    before = snapshot(project.path / "migrations")

    db("upgrade")
    assert database.tables() == {"alembic_version", "users", "posts"}
    assert database.version() == [revs[-1]]
    assert database.columns("users")["name"]["type"].length == 120
    assert "ix_users_email" in {i["name"] for i in database.inspector().get_indexes("users")}

    db("downgrade", "base")
    assert database.tables() == {"alembic_version"}
    assert database.version() == []

    db("upgrade")
    assert database.version() == [revs[-1]]
    assert set(database.columns("users")) == {"id", "name", "email"}

    proc = db("migrate", "-m", "nothing to do")
    assert "No changes in schema detected" in proc.stderr
    assert snapshot(project.path / "migrations") == before  # no new revision file

    assert f"{revs[-1]} (head)" in db("current").stdout
    history = db("history").stdout
    assert all(rev in history for rev in revs)
    assert snapshot(project.path / "migrations") == before


@pytest.mark.parametrize("front_end", ["flask", "manage"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_multidb_generation(kind, front_end, make_project, password_databases):
    main, audit = password_databases(kind, ("main", "audit"))
    project = set_up(make_project, [main, audit], MULTI, config=BINDS)
    db = runner_for(project, front_end)
    revs = revisions_of(MULTI)
    before = snapshot(project.path / "migrations")

    db("upgrade")
    assert main.tables() == {"alembic_version", "users"}
    assert audit.tables() == {"alembic_version", "events"}
    assert main.version() == audit.version() == [revs[-1]]
    assert "created_at" in audit.columns("events")

    db("downgrade", "base")
    assert main.tables() == audit.tables() == {"alembic_version"}

    db("upgrade")
    assert main.version() == audit.version() == [revs[-1]]

    proc = db("migrate")
    assert "No changes in schema detected" in proc.stderr
    assert f"{revs[-1]} (head)" in db("current").stdout
    assert all(rev in db("history").stdout for rev in revs)
    assert snapshot(project.path / "migrations") == before


@pytest.mark.parametrize("front_end", ["flask", "manage"])
@pytest.mark.parametrize("generation", ["legacy_2_5_to_2_6", "legacy_2_7"])
def test_env_py_that_logs_the_url_shows_it_masked(generation, front_end, make_project,
                                                  password_databases):
    """``db.engine.url`` stays masked for env.py (as under Flask-Migrate 4.1); the
    password goes back only into the Alembic config, so the upgrade still logs in."""
    dbs = password_databases("postgresql")
    project = set_up(make_project, dbs, generation)
    env_py = project.path / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "logger = logging.getLogger('alembic.env')\n",
        "logger = logging.getLogger('alembic.env')\n"
        "logger.info('URL %s', current_app.extensions['migrate'].db.engine.url)\n", 1))
    proc = runner_for(project, front_end)("upgrade")
    url = make_url(dbs[0].url)
    assert f"URL {url.drivername}://{url.username}:***@127.0.0.1" in proc.stderr
    assert dbs[0].version() == [revisions_of(generation)[-1]]


def test_application_db_object_is_not_changed(tmp_path):
    """The view adds legacy spellings without touching the application's db, on
    Flask-SQLAlchemy 3 and 2 alike (2.x keeps every bind's tables in db.metadata
    itself, tagged by Flask-SQLAlchemy; 3.x one MetaData per bind)."""
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_migrate_compat import Migrate
    from flask_migrate_compat.legacy import LegacyDB, unwrap

    app = Flask(__name__, instance_path=str(tmp_path / "instance"))
    url = postgres_driver_url("postgresql://u:p%40ss@h/x")
    scheme = make_url(url).drivername
    app.config["SQLALCHEMY_DATABASE_URI"] = url
    app.config["SQLALCHEMY_BINDS"] = {"audit": "sqlite://"}
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
    db = SQLAlchemy(app)

    class User(db.Model):
        id = db.Column(db.Integer, primary_key=True)

    class Event(db.Model):
        __bind_key__ = "audit"
        id = db.Column(db.Integer, primary_key=True)

    tables = set(db.metadata.tables)
    infos = [dict(User.__table__.info), dict(Event.__table__.info)]
    Migrate(app, db)
    with app.app_context():
        view = app.extensions["migrate"].db
        assert isinstance(view, LegacyDB) and unwrap(view) is db
        # The URL stays masked; the password is put back only where env.py passes
        # it to Alembic's config (legacy.engine_url_option).
        assert view.engine.pool is db.engine.pool and view.engine.url == db.engine.url
        assert str(view.engine.url) == f"{scheme}://u:***@h/x"
        assert str(view.get_engine().url) == f"{scheme}://u:***@h/x"
        config = app.extensions["migrate"].migrate.get_config(str(tmp_path))
        config.set_main_option("sqlalchemy.url", str(view.engine.url).replace("%", "%%"))
        assert config.get_main_option("sqlalchemy.url") == url
        assert view.get_engine(app, "audit").url.database is None
        combined = view.metadata
        assert {t.info.get("bind_key") for t in combined.tables.values()} == {None, "audit"}
        assert combined.tables["event"].tometadata(sa.MetaData()).name == "event"
        assert "tometadata" not in vars(Event.__table__)  # only our copies get the alias
        assert [User.__table__.info, Event.__table__.info] == infos
        assert set(db.metadata.tables) == tables
        assert view.session is db.session


@pytest.mark.parametrize("front_end", ["flask", "manage"])
def test_errors_survive_fileconfig_of_old_env_py(front_end, make_project, password_databases):
    """Old env.py files call ``fileConfig()`` with its default, which disables every
    logger that exists (Flask-Migrate 2.x logged its errors, so they vanished). A
    revision failing after that must still print its one ``Error:`` line."""
    project = set_up(make_project, password_databases("sqlite"), "legacy_2_7")
    revs = revisions_of("legacy_2_7")
    failing = project.path / "migrations" / "versions" / "ffff0000aaaa_.py"
    failing.write_text(
        f'revision = "ffff0000aaaa"\ndown_revision = {revs[-1]!r}\n'
        "from alembic import op\n\n\n"
        "def upgrade():\n    op.execute('SELECT * FROM no_such_table')\n\n\n"
        "def downgrade():\n    pass\n"
    )
    db = runner_for(project, front_end)
    proc = db("upgrade", check=False)
    assert_one_error(proc, "no_such_table")


SAME_TABLE_MODELS = '''\
class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)


class AuditUser(db.Model):
    __bind_key__ = "audit"
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
'''


@pytest.mark.parametrize("front_end", ["flask", "manage"])
def test_multidb_same_table_in_two_binds_is_named(front_end, make_project,
                                                  password_databases):
    """Flask-SQLAlchemy 3 lets two binds have a table of the same name; the 2.x multidb
    env.py reads them all from one ``db.metadata``, which cannot hold both. One line
    names the env.py line to change, and neither database is touched."""
    main, audit = password_databases("sqlite", ("main", "audit"))
    project = set_up(make_project, [main, audit], MULTI, config=BINDS)
    project.write_app(models=SAME_TABLE_MODELS, config=BINDS + PASSWORD_GUARD)
    env_py = project.path / "migrations" / "env.py"
    (number,) = [n for n, text in enumerate(env_py.read_text().splitlines(), 1)
                 if text.startswith("target_metadata = ")]
    proc = runner_for(project, front_end)("upgrade", check=False)
    if FLASK_SQLALCHEMY_2:
        # One metadata for every bind: the application's own models fail to import
        # (SQLAlchemy's error, with its traceback), before any code of ours runs.
        assert proc.returncode == 1
        assert "is already defined for this MetaData instance" in proc.stderr
        assert main.tables() == set() and audit.tables() == set()
        return
    assert_one_error(proc, f"Error: {env_py}, line {number}: table 'users' exists in binds "
                           "None and 'audit'", "use db.metadatas[bind_key] for each bind")
    assert main.tables() == set() and audit.tables() == set()
