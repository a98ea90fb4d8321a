"""env.py files that projects edited: their own keywords beside ``**configure_args``.

Under Flask-Migrate 2.x ``configure_args`` held only what ``Migrate(...)`` was given, so
projects added ``compare_type=True`` (or ``include_object=``, ``version_table=``,
``on_version_apply=``...) to env.py's ``context.configure(...)`` call next to
``**configure_args``. Here ``configure_args`` always holds ``compare_type`` and
``render_as_batch``; the call must still work, with env.py's own value winning and every
other key applying. Each shape below was met in public projects' env.py files and is
rewritten here in our own words, on top of our fixtures of each Flask-Migrate
generation; each runs through ``flask db``, ``manage.py db`` and the zero-edit runner,
and the database is inspected afterwards.
"""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from conftest import FLASK_SQLALCHEMY_2, MODELS_V1, assert_one_error

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STAR = "**current_app.extensions['migrate'].configure_args"

# The fixtures' last revision of legacy_2_5_to_2_6, with users.name as String(50):
# the type change back to String(120) is what compare_type decides to see.
NARROW_MODELS = (FIXTURES / "legacy_2_5_to_2_6" / "models.py").read_text().replace(
    "db.String(120), nullable=False", "db.String(50), nullable=False")

# The zero-edit runner's script: an untouched Flask-Script manage.py of the 2.x era.
LEGACY_MANAGE = '''\
from flask_script import Manager
from flask_migrate import MigrateCommand
from legacy_app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
'''


def edited_env(generation: str, before_star: str = "", after_star: str = "",
               replace: tuple[tuple[str, str], ...] = ()) -> str:
    """The generation's env.py with keywords added before/after ``**configure_args``
    in its online ``context.configure(...)`` call."""
    text = (FIXTURES / generation / "migrations" / "env.py").read_text()
    assert STAR in text
    if before_star:
        text = text.replace(STAR, before_star + STAR)
    if after_star:
        text = text.replace(STAR, STAR + after_star)
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    return text


def set_up(make_project, database, generation, env_py, migrate_args="", models=None):
    project = make_project(database)
    shutil.copytree(FIXTURES / generation / "migrations", project.path / "migrations")
    (project.path / "migrations" / "env.py").write_text(env_py)
    models = models if models is not None else (FIXTURES / generation / "models.py").read_text()
    project.write_app(models=models, migrate_args=migrate_args)
    # The same application as a 2.x project imports it, for the runner.
    legacy = (project.path / "app.py").read_text().replace(
        "from flask_migrate_compat import Migrate", "from flask_migrate import Migrate")
    project.write("legacy_app.py", legacy)
    project.write("manage_legacy.py", LEGACY_MANAGE)
    return project


def front_ends(project):
    """``name -> db(*args, check=True)`` for the three ways a maintainer runs it."""
    return {
        "flask": lambda *a, **k: project.flask("db", *a, **k),
        "manage": lambda *a, **k: project.manage("db", *a, **k),
        "runner": lambda *a, **k: project.run("-m", "flask_migrate_compat",
                                              "manage_legacy.py", "db", *a, **k),
    }


def new_revisions(project, before):
    return [p for p in project.revisions() if p not in before]


@pytest.mark.parametrize("front_end", ["flask", "manage", "runner"])
def test_explicit_compare_type_and_batch_before_configure_args(front_end, make_project,
                                                               sqlite_db):
    """The Done-when shape: a 2.5-2.6 env.py given ``compare_type=True,
    render_as_batch=True`` before ``**configure_args``; ``Migrate(compare_type=False)``
    loses to env.py's own value, which autogenerate then proves."""
    env_py = edited_env("legacy_2_5_to_2_6",
                        before_star="compare_type=True, render_as_batch=True,\n            ")
    project = set_up(make_project, sqlite_db, "legacy_2_5_to_2_6", env_py,
                     migrate_args=", compare_type=False", models=NARROW_MODELS)
    db = front_ends(project)[front_end]

    db("upgrade")
    head = sorted(p.name.split("_")[0] for p in project.revisions())[-1]
    assert sqlite_db.tables() == {"alembic_version", "users", "posts"}
    assert sqlite_db.columns("users")["name"]["type"].length == 120
    assert f"(head)" in db("current").stdout

    before = project.revisions()
    db("migrate", "-m", "narrow name")
    written = new_revisions(project, before)
    assert len(written) == 1
    text = written[0].read_text()
    # compare_type=True (env.py's) saw the type change; batch mode (env.py's) wrote it.
    assert "batch_alter_table('users'" in text or 'batch_alter_table("users"' in text
    assert "String(length=50)" in text
    db("upgrade")
    assert sqlite_db.columns("users")["name"]["type"].length == 50
    assert sqlite_db.version() not in ([head], [])


@pytest.mark.parametrize("front_end", ["flask", "manage", "runner"])
def test_keywords_after_configure_args_and_their_own_hooks(front_end, make_project,
                                                           sqlite_db, tmp_path):
    """Keywords after the ``**`` (``include_object=``, ``on_version_apply=``), on a
    2.7 env.py: the project's table that env.py excludes is neither dropped by
    autogenerate nor reported; the project's own version hook runs; the keys it does
    not name (render_as_batch...) still apply."""
    log = tmp_path / "applied.txt"
    hooks = f'''
def include_object(obj, name, type_, reflected, compare_to):
    # The reporting job owns this table; migrations must leave it alone.
    return not (type_ == "table" and name == "report_cache")


def record_applied(ctx, step, heads, run_args):
    with open({str(log)!r}, "a") as out:
        out.write(",".join(sorted(heads)) + "\\n")


'''
    env_py = edited_env(
        "legacy_2_7",
        after_star=",\n            include_object=include_object,\n"
                   "            on_version_apply=record_applied",
        replace=(("def run_migrations_offline():", hooks + "def run_migrations_offline():"),))
    project = set_up(make_project, sqlite_db, "legacy_2_7", env_py,
                     migrate_args=", include_object=lambda *a: True")
    db = front_ends(project)[front_end]

    db("upgrade")
    applied = log.read_text().split()
    assert len(applied) == len(project.revisions())
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE report_cache (id INTEGER PRIMARY KEY)")

    before = project.revisions()
    proc = db("migrate")
    assert "No changes in schema detected" in proc.stderr
    assert project.revisions() == before
    assert "report_cache" in sqlite_db.tables()
    db("check")


@pytest.mark.parametrize("front_end", ["flask", "manage", "runner"])
def test_version_table_named_in_env_py(front_end, make_project, sqlite_db):
    """``version_table=`` set in env.py itself: the migrations record themselves there,
    and ``current``/``status`` read that table (what they say is what the table holds)."""
    env_py = edited_env("legacy_2_5_to_2_6",
                        before_star="version_table='schema_history',\n            ")
    project = set_up(make_project, sqlite_db, "legacy_2_5_to_2_6", env_py)
    db = front_ends(project)[front_end]

    db("upgrade")
    head = sorted(p.name.split("_")[0] for p in project.revisions())[-1]
    assert "alembic_version" not in sqlite_db.tables()
    assert sqlite_db.version("schema_history") == [head]
    assert f"{head} (head)" in db("current").stdout
    status = db("status")
    assert status.returncode == 0 and head in status.stdout, status.stdout


@pytest.mark.parametrize("generation", ["legacy_1x", "legacy_2_0_to_2_4", "legacy_2_7"])
def test_every_generation_takes_explicit_keys(generation, make_project, sqlite_db):
    env_py = edited_env(generation, before_star="compare_type=True, ")
    project = set_up(make_project, sqlite_db, generation, env_py)
    project.flask("db", "upgrade")
    project.manage("db", "downgrade", "base")
    assert sqlite_db.tables() == {"alembic_version"}
    project.run("-m", "flask_migrate_compat", "manage_legacy.py", "db", "upgrade")
    assert {"users", "posts"} <= sqlite_db.tables()
    assert "No changes in schema detected" in project.flask("db", "migrate").stderr


def test_multidb_env_py_takes_explicit_keys(make_project, make_database):
    main, audit = make_database("sqlite", "main"), make_database("sqlite", "audit")
    env_py = edited_env("legacy_2_7_multidb", before_star="compare_type=True,\n                ")
    project = set_up(make_project, main, "legacy_2_7_multidb", env_py)
    project.env["AUDIT_DATABASE_URL"] = audit.url
    project.write_app(models=(FIXTURES / "legacy_2_7_multidb" / "models.py").read_text(),
                      config='app.config["SQLALCHEMY_BINDS"] = '
                             '{"audit": os.environ["AUDIT_DATABASE_URL"]}\n')
    project.manage("db", "upgrade")
    assert main.tables() == {"alembic_version", "users"}
    assert audit.tables() == {"alembic_version", "events"}
    assert main.version() == audit.version() != []


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_explicit_keys_on_a_server(kind, make_project, make_database):
    database = make_database(kind)
    env_py = edited_env("legacy_2_5_to_2_6", before_star="compare_type=True, ")
    project = set_up(make_project, database, "legacy_2_5_to_2_6", env_py,
                     models=NARROW_MODELS)
    project.manage("db", "upgrade")
    assert database.columns("users")["name"]["type"].length == 120
    before = project.revisions()
    project.flask("db", "migrate")
    assert len(new_revisions(project, before)) == 1
    project.run("-m", "flask_migrate_compat", "manage_legacy.py", "db", "upgrade")
    assert database.columns("users")["name"]["type"].length == 50


COPY_SHAPE = (
    ("        context.configure(",
     "        options = dict(current_app.extensions['migrate'].configure_args)\n"
     "        context.configure("),
    (STAR, "compare_type=True,\n            **options"),
)


def test_a_copy_of_configure_args_is_one_line_and_a_doctor_failure(make_project,
                                                                    sqlite_db):
    """The one shape the dict cannot resolve: env.py copies configure_args and names a
    key of it too. Every command fails in one line naming env.py's line and the fix,
    the database untouched; doctor rates env.py as failing."""
    env_py = edited_env("legacy_2_5_to_2_6", replace=COPY_SHAPE)
    project = set_up(make_project, sqlite_db, "legacy_2_5_to_2_6", env_py)
    line_no = env_py.splitlines().index("            compare_type=True,") + 1

    for run in (lambda: project.flask("db", "upgrade", check=False),
                lambda: project.manage("db", "upgrade", check=False)):
        line = assert_one_error(run(), "compare_type", "env.py", "configure_args")
        assert "remove" in line
    assert sqlite_db.tables() == set()

    proc = project.flask("db", "doctor", check=False)
    assert proc.returncode == 1
    flagged = [l for l in proc.stdout.splitlines() if "compare_type" in l]
    assert flagged and flagged[0].startswith("[!!]"), proc.stdout
    assert f"line {line_no}" in flagged[0]


def test_revision_file_warnings_name_file_and_line(make_project, sqlite_db):
    """A Python warning raised while a revision file loads (an invalid escape sequence
    in an old revision's docstring, say) names the file and line."""
    project = make_project(sqlite_db)
    project.write_app(models=MODELS_V1)
    project.flask("db", "init")
    project.flask("db", "migrate", "-m", "users")
    revision = project.revisions()[0]
    text = revision.read_text()
    revision.write_text(text.replace('"""', '"""Matches names like \\(this\\).\n', 1))
    shutil.rmtree(revision.parent / "__pycache__", ignore_errors=True)
    proc = project.flask("db", "heads", env={"PYTHONDONTWRITEBYTECODE": "1"})
    warning = [l for l in proc.stderr.splitlines() if l.startswith("Warning:")]
    assert len(warning) == 1, proc.stderr
    assert "invalid escape sequence" in warning[0]
    # The escape is on the docstring's second line; Python before 3.12 names the line
    # where the string starts.
    assert f"({revision}, line 2)" in warning[0] or (
        sys.version_info < (3, 12) and f"({revision}, line 1)" in warning[0]), warning


@pytest.mark.parametrize("front_end", ["flask", "manage", "runner"])
def test_config_changed_after_init_app(front_end, make_project, sqlite_db):
    """A 2.0-2.4 env.py reads SQLALCHEMY_DATABASE_URI from app.config, which the
    application emptied after ``db.init_app`` (loading its config object late): on
    Flask-SQLAlchemy 3 the migrations run on the database the application's engine
    uses (made in init_app). Flask-SQLAlchemy 2 makes the engine on first use, from
    the emptied setting: the application has no database, and every command says so
    in one line."""
    project = set_up(make_project, sqlite_db, "legacy_2_0_to_2_4",
                     (FIXTURES / "legacy_2_0_to_2_4" / "migrations" / "env.py").read_text())
    app = (project.path / "app.py").read_text()
    late = "migrate = Migrate(app, db)\napp.config['SQLALCHEMY_DATABASE_URI'] = None\n"
    for name in ("app.py", "legacy_app.py"):
        text = (project.path / name).read_text()
        project.write(name, text.replace("migrate = Migrate(app, db)\n", late, 1))
    assert late in (project.path / "app.py").read_text(), app
    db = front_ends(project)[front_end]
    if FLASK_SQLALCHEMY_2:
        for command in ("upgrade", "current"):
            proc = db(command, check=False)
            assert_one_error(proc, "SQLALCHEMY_DATABASE_URI is None: set it")
        assert sqlite_db.tables() == set()
        return
    db("upgrade")
    assert {"users", "posts"} <= sqlite_db.tables()
    assert "(head)" in db("current").stdout


def test_no_database_url_at_all_is_one_line(make_project, sqlite_db):
    project = set_up(make_project, sqlite_db, "legacy_2_0_to_2_4",
                     (FIXTURES / "legacy_2_0_to_2_4" / "migrations" / "env.py").read_text())
    # A database only through a bind: no default engine for the legacy env.py.
    project.write_app(models="", config=(
        'app.config["SQLALCHEMY_BINDS"] = {"other": app.config.pop("SQLALCHEMY_DATABASE_URI")}\n'))
    proc = project.flask("db", "upgrade", check=False)
    if FLASK_SQLALCHEMY_2:
        # 2.x sets the in-memory fallback even beside binds: refused before env.py runs.
        assert_one_error(proc, "SQLALCHEMY_DATABASE_URI is 'sqlite:///:memory:'",
                         "is not set")
    else:
        assert_one_error(proc, "SQLALCHEMY_DATABASE_URI", "is not set", "env.py, line")
    assert sqlite_db.tables() == set()
