"""The programmatic API (``from flask_migrate_compat import upgrade, ...``) and the
:class:`Migrate` extension object, exercised in subprocess scripts against real
SQLite files; the schema is read back with SQLAlchemy's inspector.

Each script prints ``OK`` as its last act, so a script that stops early fails the test.
"""
from __future__ import annotations

import textwrap

from conftest import MODELS_V1


def run_script(project, body: str, **kwargs):
    """Run ``body`` (dedented) as a script in the project; it must print ``OK``."""
    script = textwrap.dedent(body) + '\nprint("OK")\n'
    proc = project.run("-c", script, **kwargs)
    assert proc.stdout.rstrip().endswith("OK"), proc.stdout + proc.stderr
    return proc


def test_command_functions_in_app_context(project):
    database = project.database
    proc = run_script(project, """\
        from alembic.util import CommandError
        from flask_migrate_compat import (
            MigrateError, check, current, downgrade, heads, history, init, migrate,
            revision, show, stamp, upgrade,
        )
        from app import app

        with app.app_context():
            init()
            script = migrate(message="v1", rev_id="aaaa0001")
            assert script.revision == "aaaa0001", script
            upgrade()
            # Nothing to detect: no file, None returned.
            assert migrate(message="empty") is None
            current(verbose=True)
            heads()
            history(rev_range="base:head")
            show(revision="aaaa0001")
            check()
            empty = revision(message="by hand", rev_id="bbbb0002")
            assert empty.down_revision == "aaaa0001"
            upgrade()

            # Alembic's own errors reach Python callers as they are.
            try:
                upgrade(revision="nope")
            except CommandError as exc:
                print("CAUGHT", type(exc).__name__, exc)
            else:
                raise SystemExit("no CommandError")

            downgrade()
            print("AFTER-DOWNGRADE")
            current()
        """)
    out = proc.stdout
    assert "Rev: aaaa0001 (head)" in out  # current(verbose=True) before bbbb0002
    assert "<base> -> aaaa0001 (head), v1" in out  # history
    assert "CAUGHT CommandError Can't locate revision identified by 'nope'" in out
    assert out.split("AFTER-DOWNGRADE")[1].split()[0] == "aaaa0001"
    assert sorted(p.name for p in project.revisions()) == [
        "aaaa0001_v1.py", "bbbb0002_by_hand.py",
    ]
    assert database.tables() == {"users", "alembic_version"}
    assert database.version() == ["aaaa0001"]

    run_script(project, """\
        from flask_migrate_compat import downgrade, stamp, upgrade
        from app import app

        with app.app_context():
            downgrade(revision="base")
            stamp(revision="bbbb0002")  # no migration runs: no table comes back
        """)
    assert database.tables() == {"alembic_version"}
    assert database.version() == ["bbbb0002"]

    run_script(project, """\
        from flask_migrate_compat import stamp, upgrade
        from app import app

        with app.app_context():
            stamp(revision="base")
            upgrade(revision="aaaa0001", sql=True)  # offline: only prints
        """)
    assert database.tables() == {"alembic_version"}
    assert database.version() == []


def test_errors_for_python_callers(project):
    proc = run_script(project, """\
        from flask import Flask
        from flask_migrate_compat import MigrateError, upgrade, init

        for call in (upgrade, init):
            try:
                call()
            except MigrateError as exc:
                print("NO-CONTEXT", exc)
            else:
                raise SystemExit("no MigrateError")

        bare = Flask("bare")
        with bare.app_context():
            try:
                upgrade()
            except MigrateError as exc:
                print("NO-EXTENSION", exc)
            else:
                raise SystemExit("no MigrateError")

        from app import app
        with app.app_context():
            try:
                upgrade(directory="missing")
            except MigrateError as exc:
                print("NO-FOLDER", exc)
            else:
                raise SystemExit("no MigrateError")
        """)
    lines = proc.stdout.splitlines()
    no_context = [line for line in lines if line.startswith("NO-CONTEXT")]
    assert len(no_context) == 2
    for line in no_context:
        assert "application context" in line and "app.app_context()" in line
    (no_ext,) = [line for line in lines if line.startswith("NO-EXTENSION")]
    assert "'bare'" in no_ext and "Migrate(app, db)" in no_ext
    (no_folder,) = [line for line in lines if line.startswith("NO-FOLDER")]
    assert "'missing'" in no_folder and "init" in no_folder
    assert project.database.tables() == set()
    assert not (project.path / "missing").exists()


CALLBACKS = '''\
@migrate.configure
def custom_file_names(config):
    config.set_main_option("file_template", "%%(rev)s_custom_%%(slug)s")
    return config


@migrate.configure
def runs_second(config):
    config.set_main_option("fmc_order", (config.get_main_option("fmc_order") or "") + "2")
    return config
'''


def test_configure_callbacks_and_get_config(project):
    project.write_app(models=MODELS_V1 + "\n\n" + CALLBACKS)
    run_script(project, """\
        import os
        from pathlib import Path
        from flask_migrate_compat import Config
        from app import app, db, migrate

        # call_configure_callbacks: in registration order, on any Config.
        config = migrate.call_configure_callbacks(Config())
        assert config.get_main_option("file_template") == "%(rev)s_custom_%(slug)s"
        assert config.get_main_option("fmc_order") == "2"

        # get_config: the extension's directory, a str or a Path, x-arguments.
        config = migrate.get_config()
        assert isinstance(config, Config), type(config)
        assert config.get_main_option("script_location") == "migrations"
        assert config.config_file_name == os.path.join("migrations", "alembic.ini")
        assert config.get_main_option("fmc_order") == "2"  # callbacks applied
        assert config.cmd_opts.x == []

        config = migrate.get_config(Path("other") / "place", x_arg="a=1")
        assert config.get_main_option("script_location") == os.path.join("other", "place")
        assert config.config_file_name == os.path.join("other", "place", "alembic.ini")
        assert config.cmd_opts.x == ["a=1"]

        config = migrate.get_config("str_dir", x_arg=["a=1", "b=2"], opts=["autogenerate"])
        assert config.get_main_option("script_location") == "str_dir"
        assert config.cmd_opts.x == ["a=1", "b=2"]
        assert config.cmd_opts.autogenerate is True

        # The extension's state, as env.py files of every generation read it.
        state = app.extensions["migrate"]
        assert state.migrate is migrate
        assert state.db.Model is db.Model and state.db.session is db.session
        assert state.directory == "migrations"
        assert state.configure_args == {"compare_type": True, "render_as_batch": True}
        assert set(state.metadata.tables) == {"users"}
        assert state.metadata is db.metadata
        """)

    # The callbacks shape real commands too: the file name template.
    project.flask("db", "init")
    project.flask("db", "revision", "-m", "hello", "--rev-id", "abc123")
    assert [p.name for p in project.revisions()] == ["abc123_custom_hello.py"]
    run_script(project, """\
        from flask_migrate_compat import migrate, upgrade
        from app import app

        with app.app_context():
            upgrade()
            migrate(message="auto", rev_id="def456")
        """)
    assert sorted(p.name for p in project.revisions()) == [
        "abc123_custom_hello.py", "def456_custom_auto.py",
    ]


LATE_INIT_APP = '''\
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_compat import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
migrate = Migrate(directory="not_this_one")
assert "migrate" not in app.extensions
migrate.init_app(
    app, db, directory="late", compare_type=False, render_as_batch=False,
    version_table="custom_version",
)


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String({length}), nullable=False)
{extra}
'''


def test_init_app_overrides(project):
    database = project.database
    project.write("app.py", LATE_INIT_APP.format(length=50, extra=""))
    run_script(project, """\
        from app import app, db, migrate
        state = app.extensions["migrate"]
        assert state.migrate is migrate and state.directory == "late"
        assert state.configure_args == {
            "compare_type": False, "render_as_batch": False,
            "version_table": "custom_version",
        }, state.configure_args
        """)
    project.flask("db", "init")
    assert (project.path / "late" / "env.py").is_file()
    assert not (project.path / "not_this_one").exists()
    project.flask("db", "migrate", "-m", "v1")
    project.flask("db", "upgrade")
    # version_table reached context.configure through configure_args.
    assert database.tables() == {"users", "custom_version"}
    (rev1,) = database.version("custom_version")

    # A type change and a new column: compare_type=False ignores the first,
    # render_as_batch=False writes a plain add_column.
    project.write("app.py", LATE_INIT_APP.format(
        length=120, extra="    email = db.Column(db.String(80))"))
    project.flask("db", "migrate", "-m", "v2")
    (rev2_file,) = [p for p in project.revisions("late") if "v2" in p.name]
    text = rev2_file.read_text()
    assert "op.add_column('users', sa.Column('email'" in text
    assert "batch_alter_table" not in text
    assert "alter_column" not in text and "length=120" not in text
    project.flask("db", "upgrade")
    columns = database.columns("users")
    assert set(columns) == {"id", "name", "email"}
    assert columns["name"]["type"].length == 50
    assert database.version("custom_version") != [rev1]

    proc = project.flask("db", "migrate", "-m", "nothing")
    assert "No changes in schema detected." in proc.stderr
    assert len(project.revisions("late")) == 2
