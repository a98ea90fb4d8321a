"""The legacy front end end to end: ``python manage.py db ...`` in real subprocesses.

The manage.py under test is the legacy shape with one changed import line, and its
first line is ``from flask_script import Manager`` (the import hook makes that work).
"""
from __future__ import annotations

import pathlib

import sqlalchemy as sa
import pytest

from conftest import MODELS_V1, MODELS_V2, Project, assert_one_error

SERVER_KINDS = ["sqlite", "postgresql"]


def write_rows(project: Project, *names: str) -> None:
    project.run("-c", f"""
from app import app, db, User
with app.app_context():
    db.session.add_all([User(name=n) for n in {list(names)!r}])
    db.session.commit()
""")


def user_names(project: Project) -> list[str]:
    with project.database.engine().connect() as conn:
        return sorted(r[0] for r in conn.execute(sa.text("SELECT name FROM users")))


def column_length(project: Project, table: str, column: str) -> int:
    return project.database.columns(table)[column]["type"].length


@pytest.mark.parametrize("kind", SERVER_KINDS)
def test_full_workflow(make_database, make_project, kind):
    project = make_project(make_database(kind))
    db = project.database

    project.manage("db", "init")
    assert (project.path / "migrations" / "env.py").is_file()
    project.manage("db", "migrate", "-m", "create users")
    assert len(project.revisions()) == 1
    assert "users" not in db.tables()  # migrate only writes a file

    project.manage("db", "upgrade")
    assert db.tables() == {"users", "alembic_version"}
    assert column_length(project, "users", "name") == 50
    write_rows(project, "ada", "grace")

    project.write_app(MODELS_V2)
    out = project.manage("db", "migrate", "-m", "email, posts, longer name")
    assert len(project.revisions()) == 2
    second = [p for p in project.revisions() if "email" in p.name][0].read_text()
    assert "String(length=120)" in second and "add_column" in second, out.stderr
    project.manage("db", "upgrade")
    assert db.tables() == {"users", "posts", "alembic_version"}
    assert set(db.columns("users")) == {"id", "name", "email"}
    assert column_length(project, "users", "name") == 120

    project.manage("db", "downgrade")
    assert db.tables() == {"users", "alembic_version"}
    assert set(db.columns("users")) == {"id", "name"}
    assert column_length(project, "users", "name") == 50
    project.manage("db", "upgrade")
    assert db.tables() == {"users", "posts", "alembic_version"}
    assert user_names(project) == ["ada", "grace"]

    # In sync now: no new revision, and check agrees.
    out = project.manage("db", "migrate")
    assert "No changes in schema detected." in out.stderr
    assert len(project.revisions()) == 2
    project.manage("db", "check")

    heads = project.manage("db", "heads").stdout.split()[0]
    assert db.version() == [heads]
    history = project.manage("db", "history", "-r", "base:head").stdout
    assert "create users" in history and "longer name" in history
    assert "(current)" in project.manage("db", "history", "-i").stdout

    project.manage("db", "downgrade", "base")
    assert db.tables() == {"alembic_version"}
    assert db.version() == []


def test_alternating_front_ends_agree(project):
    """One migrations folder driven by manage.py and flask db in turn."""
    project.manage("db", "init")
    project.flask("db", "migrate", "-m", "one")
    project.manage("db", "upgrade")
    from_flask = project.flask("db", "current").stdout
    from_manage = project.manage("db", "current").stdout
    assert from_flask == from_manage and from_flask.strip()

    project.write_app(MODELS_V2)
    project.manage("db", "migrate", "-m", "two")
    project.flask("db", "upgrade")
    assert project.manage("db", "heads").stdout == project.flask("db", "heads").stdout
    assert project.manage("db", "history").stdout == project.flask("db", "history").stdout
    assert project.manage("db", "current").stdout == project.flask("db", "current").stdout
    project.flask("db", "downgrade")  # default -1 (Click would read "-1" as an option)
    project.manage("db", "downgrade", "-1")
    assert project.database.tables() == {"alembic_version"}


def test_custom_directory_and_group_options(project):
    project.manage("db", "init", "-d", "custom")
    project.manage("db", "migrate", "-d", "custom", "-m", "first")
    assert len(project.revisions("custom")) == 1
    project.manage("db", "-d", "custom", "upgrade")  # the group-level spelling
    assert "users" in project.database.tables()
    project.manage("db", "downgrade", "base", "--directory", "custom")
    assert "users" not in project.database.tables()
    # FLASK_DB_DIRECTORY is honoured by both front ends.
    project.manage("db", "upgrade", env={"FLASK_DB_DIRECTORY": "custom"})
    assert "users" in project.database.tables()


def test_offline_sql_stamp_and_merge(project):
    project.manage("db", "init")
    project.manage("db", "migrate", "-m", "base users")
    sql = project.manage("db", "upgrade", "--sql").stdout
    assert "CREATE TABLE users" in sql
    assert "users" not in project.database.tables()  # offline: nothing ran

    project.manage("db", "stamp", "head")
    assert project.database.version() != [] and "users" not in project.database.tables()
    project.manage("db", "stamp", "base")
    assert project.database.version() == []

    root = project.manage("db", "heads").stdout.split()[0]
    a = project.manage("db", "revision", "-m", "branch a", "--rev-id", "aaaa").stdout
    b = project.manage("db", "revision", "-m", "branch b", "--head", root, "--splice",
                       "--rev-id", "bbbb").stdout
    assert "aaaa" in a and "bbbb" in b
    assert sorted(project.manage("db", "heads").stdout.split()[::2]) == ["aaaa", "bbbb"]
    failed = project.manage("db", "upgrade", check=False)
    assert "head" in assert_one_error(failed).lower()

    project.manage("db", "merge", "-m", "join", "aaaa", "bbbb", "--rev-id", "cccc")
    assert project.manage("db", "heads").stdout.split()[0] == "cccc"
    assert root in project.manage("db", "branches").stdout  # root is the branch point
    project.manage("db", "upgrade")
    assert project.database.version() == ["cccc"]
    assert "users" in project.database.tables()
    show = project.manage("db", "show", "cccc").stdout
    assert "mergepoint" in show and "aaaa" in show and "bbbb" in show


def test_x_arguments_reach_env_py(project):
    project.manage("db", "init")
    project.manage("db", "revision", "-m", "data", "--rev-id", "x1")
    rev = project.revisions()[0]
    rev.write_text(rev.read_text().replace(
        "def upgrade():\n    pass",
        "def upgrade():\n"
        "    from alembic import context\n"
        "    args = context.get_x_argument(as_dictionary=True)\n"
        "    op.create_table('marker_' + args.get('name', 'none'),"
        " sa.Column('id', sa.Integer(), primary_key=True))\n"
        "    if 'other' in args:\n"
        "        op.create_table('marker_' + args['other'],"
        " sa.Column('id', sa.Integer(), primary_key=True))",
    ))
    project.manage("db", "-x", "other=group", "upgrade", "-x", "name=cmd")
    assert {"marker_cmd", "marker_group"} <= project.database.tables()


def test_multidb_binds(make_database, make_project):
    main = make_database("sqlite", "main")
    users = make_database("sqlite", "users")
    project = make_project(main)
    project.write_app(
        'class User(db.Model):\n'
        '    __bind_key__ = "users"\n'
        '    id = db.Column(db.Integer, primary_key=True)\n\n\n'
        'class Item(db.Model):\n'
        '    id = db.Column(db.Integer, primary_key=True)\n',
        config=f'app.config["SQLALCHEMY_BINDS"] = {{"users": {users.url!r}}}',
    )
    project.manage("db", "init", "--multidb")
    project.manage("db", "migrate", "-m", "two databases")
    project.manage("db", "upgrade")
    assert main.tables() == {"item", "alembic_version"}
    assert users.tables() == {"user", "alembic_version"}
    sql = project.manage("db", "upgrade", "--sql", "base:head").stdout
    assert "CREATE TABLE item" in sql and "CREATE TABLE user" in sql
    project.manage("db", "downgrade", "base")
    assert main.tables() == {"alembic_version"}
    assert users.tables() == {"alembic_version"}


def test_failures_exit_non_zero_with_one_line(project):
    missing = project.manage("db", "upgrade", check=False)
    assert assert_one_error(missing).startswith("Error: migrations folder")
    assert len(missing.stderr.strip().splitlines()) == 1

    project.manage("db", "init")
    again = project.manage("db", "init", check=False)
    assert again.returncode == 1 and "Traceback" not in again.stderr

    project.manage("db", "migrate")
    # Start from an empty database: autogenerate created the version table.
    pathlib.Path(project.database.url[len("sqlite:///"):]).unlink()
    unknown = project.manage("db", "upgrade", "nosuchrev", check=False)
    assert assert_one_error(unknown) == "Error: Can't locate revision identified by 'nosuchrev'"
    assert project.database.tables() == set()  # left as it was: not even a version table

    usage = project.manage("db", "upgrade", "--no-such-option", check=False)
    assert usage.returncode == 2


def test_help_and_command_list(project):
    listing = project.manage("db", check=False)
    assert listing.returncode == 2  # Flask-Script's behaviour: help, then exit 2
    for name in ("init", "migrate", "upgrade", "downgrade", "stamp", "check", "list-templates"):
        assert name in listing.stdout + listing.stderr
    upgrade_help = project.manage("db", "upgrade", "--help").stdout
    assert "--sql" in upgrade_help and "-x" in upgrade_help
    # The templates of the installed package, each with its README's first line.
    import flask_migrate_compat

    templates = pathlib.Path(flask_migrate_compat.__file__).parent / "templates"
    assert project.manage("db", "list-templates").stdout == "Available templates:\n\n" + "".join(
        f"{name} - {(templates / name / 'README').read_text().splitlines()[0]}\n"
        for name in ("flask", "flask-multidb"))


def test_app_factory_manage_py(project):
    project.write("factory.py", '''
        import os
        from flask import Flask
        from flask_sqlalchemy import SQLAlchemy
        from flask_migrate_compat import Migrate

        db = SQLAlchemy()
        migrate = Migrate()


        class Thing(db.Model):
            id = db.Column(db.Integer, primary_key=True)


        def create_app(config=None):
            app = Flask(__name__)
            app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
            if config:
                app.config.from_pyfile(os.path.abspath(config))
            db.init_app(app)
            migrate.init_app(app, db, directory=app.config.get("MIGRATIONS", "migrations"))
            return app
    ''')
    project.write("manage.py", '''
        from flask_script import Manager
        from flask_migrate_compat import MigrateCommand
        from factory import create_app

        manager = Manager(create_app)
        manager.add_option("-c", "--config", dest="config", required=False)
        manager.add_command("db", MigrateCommand)

        if __name__ == "__main__":
            manager.run()
    ''')
    project.write("prod.cfg", 'MIGRATIONS = "factory_migrations"\n')
    project.manage("-c", "prod.cfg", "db", "init")
    assert (project.path / "factory_migrations" / "env.py").is_file()
    project.manage("-c", "prod.cfg", "db", "migrate", "-m", "things")
    project.manage("-c", "prod.cfg", "db", "upgrade")
    assert project.database.tables() == {"thing", "alembic_version"}
