"""End-to-end ``flask db`` workflows: real subprocesses, real databases, schemas read
back with SQLAlchemy's inspector after every step.

Covers the everyday flow (init -> migrate -> upgrade -> model change -> migrate ->
upgrade/downgrade) on SQLite and PostgreSQL, the ways of choosing the script
directory and the command name, the application-factory pattern, several databases
(``--multidb``) and offline ``--sql`` mode.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MODELS_V2, selected_databases, output




def new_files(before: list, after: list) -> list:
    return sorted(set(after) - set(before))


def user_names(database) -> list[str]:
    with database.engine().connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT name FROM users ORDER BY id"))]


def revision_id(path) -> str:
    """The ``revision = '...'`` of a revision script."""
    match = re.search(r"^revision = ['\"](\w+)['\"]", path.read_text(), re.M)
    assert match, path.read_text()
    return match.group(1)


# -- the main flow ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_main_flow(kind, request, make_database, make_project):
    if kind not in selected_databases(request.config):
        pytest.skip(f"{kind} not in --databases")
    database = make_database(kind)
    project = make_project(database)

    # init: the script directory from the "flask" template.
    proc = project.flask("db", "init")
    migrations = project.path / "migrations"
    for name in ("env.py", "script.py.mako", "alembic.ini", "README"):
        assert (migrations / name).is_file(), name
    assert (migrations / "versions").is_dir()
    assert "Creating directory" in proc.stdout
    assert database.tables() == set()

    # migrate: the first revision creates the users table; the database is untouched.
    project.flask("db", "migrate", "-m", "create users")
    (rev1_file,) = project.revisions()
    rev1 = revision_id(rev1_file)
    assert "create users" in rev1_file.read_text()
    assert "op.create_table('users'" in rev1_file.read_text()
    assert "users" not in database.tables()

    project.flask("db", "upgrade")
    assert database.tables() == {"users", "alembic_version"}
    assert database.version() == [rev1]
    assert database.columns("users")["name"]["type"].length == 50

    # The application writes rows through its own models.
    project.run("-c", textwrap.dedent("""\
        from app import app, db, User
        with app.app_context():
            db.session.add_all([User(name="alice"), User(name="bob")])
            db.session.commit()
        """))
    assert user_names(database) == ["alice", "bob"]

    # Models v2: a new column, String(50) -> String(120), a new table.
    project.write_app(models=MODELS_V2)
    before = project.revisions()
    project.flask("db", "migrate", "-m", "v2")
    (rev2_file,) = new_files(before, project.revisions())
    rev2 = revision_id(rev2_file)
    text = rev2_file.read_text()
    assert f"down_revision = {rev1!r}" in text
    assert "op.create_table('posts'" in text
    assert "sa.Column('email'" in text
    # compare_type=True (our default) detects the length change.
    assert "type_=sa.String(length=120)" in text, text
    assert "existing_type=sa.VARCHAR(length=50)" in text, text

    project.flask("db", "upgrade")
    assert database.tables() == {"users", "posts", "alembic_version"}
    columns = database.columns("users")
    assert set(columns) == {"id", "name", "email"}
    assert columns["name"]["type"].length == 120
    assert database.version() == [rev2]
    assert user_names(database) == ["alice", "bob"]

    # downgrade (one step by default) undoes exactly v2, keeping the rows.
    project.flask("db", "downgrade")
    assert database.tables() == {"users", "alembic_version"}
    columns = database.columns("users")
    assert set(columns) == {"id", "name"}
    assert columns["name"]["type"].length == 50
    assert database.version() == [rev1]
    assert user_names(database) == ["alice", "bob"]

    project.flask("db", "upgrade")
    assert database.tables() == {"users", "posts", "alembic_version"}
    assert database.columns("users")["name"]["type"].length == 120
    assert database.version() == [rev2]
    assert user_names(database) == ["alice", "bob"]

    # In sync: no new file.
    before = project.revisions()
    proc = project.flask("db", "migrate", "-m", "nothing")
    assert "No changes in schema detected." in output(proc)
    assert project.revisions() == before

    proc = project.flask("db", "current")
    assert f"{rev2} (head)" in proc.stdout


# -- choosing the directory and the command name ---------------------------------------

FACTORY_APP = '''\
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_compat import Migrate

db = SQLAlchemy()
migrate = Migrate()


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)


def create_app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
    db.init_app(app)
    migrate.init_app(app, db, directory="factory_migrations")
    return app
'''

# name -> how app.py is written (config, migrate_args, factory), extra environment,
# the command line of a step when not `<group> <step>`, the expected script directory.
VARIANTS = {
    "directory_str": dict(
        migrate_args=', directory="custom_str"', directory="custom_str",
    ),
    "directory_path": dict(
        config="from pathlib import Path",
        migrate_args=', directory=Path("custom") / "path"', directory="custom/path",
    ),
    "option_d": dict(
        init=("db", "init", "-d", "other"),
        migrate=("db", "migrate", "-d", "other", "-m", "v1"),
        upgrade=("db", "-d", "other", "upgrade"),
        current=("db", "current", "--directory", "other"),
        directory="other",
    ),
    "envvar": dict(env={"FLASK_DB_DIRECTORY": "from_env"}, directory="from_env"),
    "command_name": dict(migrate_args=', command="migrations"', group="migrations"),
    "factory": dict(
        factory=True, env={"FLASK_APP": "app:create_app"}, directory="factory_migrations",
    ),
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_directory_and_command_variants(variant, project):
    spec = VARIANTS[variant]
    group = spec.get("group", "db")
    directory = spec.get("directory", "migrations")
    env = spec.get("env")
    if spec.get("factory"):
        project.write("app.py", FACTORY_APP)
    else:
        project.write_app(
            config=spec.get("config", ""), migrate_args=spec.get("migrate_args", ""),
        )

    project.flask(*spec.get("init", (group, "init")), env=env)
    assert (project.path / directory / "env.py").is_file()
    if directory != "migrations":
        assert not (project.path / "migrations").exists()

    project.flask(*spec.get("migrate", (group, "migrate", "-m", "v1")), env=env)
    (rev_file,) = project.revisions(directory)
    assert "users" not in project.database.tables()

    project.flask(*spec.get("upgrade", (group, "upgrade")), env=env)
    assert project.database.tables() == {"users", "alembic_version"}
    assert project.database.version() == [revision_id(rev_file)]

    proc = project.flask(*spec.get("current", (group, "current")), env=env)
    assert f"{revision_id(rev_file)} (head)" in proc.stdout

    if group != "db":
        # The group exists only under its configured name.
        proc = project.flask("db", "current", env=env, check=False)
        assert proc.returncode == 2
        assert "No such command 'db'" in proc.stderr


# -- several databases ----------------------------------------------------------------

MULTIDB_CONFIG = '''\
app.config["SQLALCHEMY_BINDS"] = {
    "one": os.environ["ONE_URL"],
    "two": os.environ["TWO_URL"],
}'''

MULTIDB_MODELS = '''\
class Main(db.Model):
    __tablename__ = "main_things"
    id = db.Column(db.Integer, primary_key=True)


class Alpha(db.Model):
    __bind_key__ = "one"
    __tablename__ = "alpha"
    id = db.Column(db.Integer, primary_key=True)
    label = db.Column(db.String(30))


class Beta(db.Model):
    __bind_key__ = "two"
    __tablename__ = "beta"
    id = db.Column(db.Integer, primary_key=True)
'''


def test_multidb(make_database, make_project):
    main = make_database("sqlite", "main")
    one = make_database("sqlite", "one")
    two = make_database("sqlite", "two")
    project = make_project(main)
    project.env.update(ONE_URL=one.url, TWO_URL=two.url)
    project.write_app(models=MULTIDB_MODELS, config=MULTIDB_CONFIG)

    project.flask("db", "init", "--multidb")
    env_py = (project.path / "migrations" / "env.py").read_text()
    assert "SQLALCHEMY_BINDS" in env_py

    project.flask("db", "migrate", "-m", "multi")
    (rev_file,) = project.revisions()
    rev = revision_id(rev_file)
    text = rev_file.read_text()
    for name in ("", "one", "two"):
        assert f"def upgrade_{name}():" in text
        assert f"def downgrade_{name}():" in text
    # Each table is created in its own database's function.
    body_one = text.split("def upgrade_one():")[1].split("def downgrade_one():")[0]
    assert "op.create_table('alpha'" in body_one
    assert "beta" not in body_one and "main_things" not in body_one

    # Offline mode: the DDL of every database, and nothing touches them. (Autogenerate
    # has already created the empty version tables, as Alembic always does.)
    snapshot = [(d.tables(), d.version()) for d in (main, one, two)]
    assert snapshot == [({"alembic_version"}, [])] * 3
    proc = project.flask("db", "upgrade", "--sql")
    sql = proc.stdout
    for marker in ("-- Database: (default)", "-- Database: one", "-- Database: two"):
        assert marker in sql
    sections = re.split(r"^-- Database: .*$", sql, flags=re.M)
    assert "CREATE TABLE main_things" in sections[1]
    assert "CREATE TABLE alpha" in sections[2]
    assert "CREATE TABLE beta" in sections[3]
    assert sql.count("CREATE TABLE alembic_version") == 3
    assert [(d.tables(), d.version()) for d in (main, one, two)] == snapshot

    project.flask("db", "upgrade")
    assert main.tables() == {"main_things", "alembic_version"}
    assert one.tables() == {"alpha", "alembic_version"}
    assert two.tables() == {"beta", "alembic_version"}
    for database in (main, one, two):
        assert database.version() == [rev]

    proc = project.flask("db", "current")
    assert proc.stdout.count(f"{rev} (head)") == 3

    proc = project.flask("db", "migrate", "-m", "nothing")
    assert "No changes in schema detected." in output(proc)
    assert project.revisions() == [rev_file]

    project.flask("db", "downgrade", "base")
    for database in (main, one, two):
        assert database.tables() == {"alembic_version"}
        assert database.version() == []


# -- offline mode ---------------------------------------------------------------------


def test_offline_sql_leaves_database_untouched(project):
    project.flask("db", "init")
    project.flask("db", "migrate", "-m", "v1")
    (rev1_file,) = project.revisions()
    rev1 = revision_id(rev1_file)
    # A second revision written by hand, so that head:-1 differs from base.
    project.flask("db", "revision", "-m", "second", "--rev-id", "bbbb0002")
    rev2_file = project.path / "migrations" / "versions" / "bbbb0002_second.py"
    text = rev2_file.read_text()
    text = text.replace(
        "def upgrade():\n    pass",
        "def upgrade():\n    op.create_index('ix_users_name', 'users', ['name'])",
    ).replace(
        "def downgrade():\n    pass",
        "def downgrade():\n    op.drop_index('ix_users_name', table_name='users')",
    )
    rev2_file.write_text(text)
    # Autogenerate created the (empty) version table; start from an empty database.
    Path(project.database.url[len("sqlite:///"):]).unlink()

    proc = project.flask("db", "upgrade", "--sql")
    sql = proc.stdout
    assert "CREATE TABLE alembic_version" in sql
    assert "CREATE TABLE users" in sql
    assert "CREATE INDEX ix_users_name ON users (name)" in sql
    assert f"INSERT INTO alembic_version (version_num) VALUES ('{rev1}')" in sql
    assert "UPDATE alembic_version SET version_num='bbbb0002'" in sql
    assert project.database.tables() == set()

    # A range: only the second revision.
    proc = project.flask("db", "upgrade", "--sql", f"{rev1}:head")
    assert "CREATE INDEX ix_users_name" in proc.stdout
    assert "CREATE TABLE users" not in proc.stdout

    # downgrade --sql defaults to head:-1: undoes only the last revision.
    proc = project.flask("db", "downgrade", "--sql")
    sql = proc.stdout
    assert "DROP INDEX ix_users_name" in sql
    assert "DROP TABLE users" not in sql
    assert f"UPDATE alembic_version SET version_num='{rev1}'" in sql
    assert project.database.tables() == set()

    proc = project.flask("db", "downgrade", "--sql", "head:base")
    assert "DROP TABLE users" in proc.stdout
    assert project.database.tables() == set()

    # The same after a real upgrade: --sql output does not move the database.
    project.flask("db", "upgrade")
    assert project.database.version() == ["bbbb0002"]
    project.flask("db", "downgrade", "--sql")
    assert project.database.version() == ["bbbb0002"]
    assert "ix_users_name" in {
        ix["name"] for ix in project.database.inspector().get_indexes("users")
    }
    assert project.database.tables() == {"users", "alembic_version"}
