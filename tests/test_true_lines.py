"""Every bad input answered in one true line: broken revision files, ambiguous
revisions, passwords that break URLs, interruptions, failed downgrades, read-only
project folders, bad settings, revision files that could not be valid Python, and
start-up failures.

Each test drives both front ends where the front end is the point, on each backend
where the fault applies, and inspects the database afterwards: what the line says
about its state must be what the database shows.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import (
    FLASK_SQLALCHEMY_2, IN_CI, POSTGRES_DRIVER, assert_held_statement_ended, assert_one_error,
    make_url, postgres_driver_url, shows_password, without_flask_sqlalchemy_2_no_url_warning,
)
from test_failures import GOOD, HEADER, HOLD, version_rows, write_chain

BACKENDS = ["sqlite", "postgresql", "mysql"]
FRONT_ENDS = ["flask", "manage"]


def run(project, front_end: str, *args: str, **kwargs):
    runner = project.flask if front_end == "flask" else project.manage
    return runner(*args, check=False, **kwargs)


def no_python_warnings(proc) -> None:
    """Alembic's warnings come as one ``Warning:`` line, never as Python's two-line
    ``UserWarning`` plus source line."""
    text = proc.stdout + proc.stderr
    assert "UserWarning" not in text and "util.warn(" not in text, text


# -- revision files and revision arguments ----------------------------------------------


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("kind", BACKENDS)
def test_broken_revision_files_are_named(make_database, make_project, kind, front_end):
    """A missing down_revision, a duplicate revision id and an ambiguous prefix each
    give one line naming the files or revisions; the database is never touched."""
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, third=None)
    versions = project.path / "migrations" / "versions"
    r2 = versions / "r2.py"
    r2.write_text(r2.read_text().replace("down_revision = 'r1'", "down_revision = 'gone99'"))
    proc = run(project, front_end, "db", "upgrade")
    assert_one_error(proc, f"revision file {r2}", "(revision r2)", "down_revision 'gone99'",
                     "which no file in")
    no_python_warnings(proc)
    r2.write_text(r2.read_text().replace("'gone99'", "'r1'"))
    r2.write_text(r2.read_text().replace("depends_on = None", "depends_on = 'lib1'"))
    proc = run(project, front_end, "db", "upgrade")
    assert_one_error(proc, f"revision file {r2}", "(revision r2)", "depends_on 'lib1'",
                     "which no file in")
    no_python_warnings(proc)
    r2.write_text(r2.read_text().replace("depends_on = 'lib1'", "depends_on = None"))

    (versions / "copy_of_r2.py").write_text(r2.read_text())
    proc = run(project, front_end, "db", "upgrade")
    assert_one_error(proc, "revision id r2 is defined by 2 files",
                     f"{versions / 'copy_of_r2.py'} and {r2}")
    no_python_warnings(proc)
    (versions / "copy_of_r2.py").unlink()

    for rev, down in (("abcd1111", "r2"), ("abcd2222", "abcd1111")):
        project.write(f"migrations/versions/{rev}.py",
                      HEADER.format(rev=rev, down=down) + GOOD.format(table=f"t_{rev}"))
    for args in (("db", "upgrade", "abcd"), ("db", "show", "abc")):
        proc = run(project, front_end, *args)
        assert_one_error(proc, f"revision '{args[-1]}' is ambiguous",
                         "abcd1111 (", "abcd2222 (", "give more of its characters")
    assert database.tables() == set()


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_new_revision_files_are_valid_or_not_written(project, front_end):
    """An existing --rev-id is refused; a message with quotes, a backslash and a
    newline still makes a valid file whose docstring is the message."""
    project.flask("db", "init")
    run(project, front_end, "db", "revision", "-m", "first", "--rev-id", "aaaa1111")
    before = project.revisions()
    proc = run(project, front_end, "db", "revision", "-m", "again", "--rev-id", "aaaa1111")
    assert_one_error(proc, "revision id 'aaaa1111' exists already", "aaaa1111_first.py")
    assert project.revisions() == before

    message = 'say """hi""" to C:\\temp\nand "more"'
    proc = run(project, front_end, "db", "revision", "-m", message, "--rev-id", "bbbb2222")
    assert proc.returncode == 0, proc.stderr
    (new,) = set(project.revisions()) - set(before)
    compile(new.read_text(), str(new), "exec")
    namespace: dict = {}
    exec(compile(new.read_text(), str(new), "exec"), namespace)
    assert namespace["__doc__"].startswith(message + "\n")
    # Every later command reads the folder without tripping over it.
    history = project.flask("db", "history").stdout
    assert 'aaaa1111 -> bbbb2222 (head), say """hi""" to C:\\temp' in history


def test_init_template_paths(project, tmp_path):
    """``init -t`` takes a template folder as ./dir, dir/, ../x/dir or an absolute
    path, as Flask-Migrate 4.1 does."""
    source = Path(__file__).resolve().parent.parent / "flask_migrate_compat" / "templates"
    custom = project.path / "custom_template"
    custom.mkdir()
    for name in ("env.py", "script.py.mako", "alembic.ini.mako", "README"):
        text = (source / "flask" / name).read_text()
        (custom / name).write_text(text + ("\n# custom template\n" if name == "env.py" else ""))
    (project.path / "sub").mkdir()
    cases = [("flask", "./custom_template", project.path),
             ("manage", "custom_template/", project.path),
             ("flask", "../custom_template", project.path / "sub"),
             ("manage", str(custom), project.path)]
    for i, (front_end, template, cwd) in enumerate(cases):
        directory = project.path / f"mig{i}"
        script = "manage.py" if front_end == "manage" else None
        args = ([str(project.path / script)] if script else ["-m", "flask"]) + [
            "db", "init", "-d", str(directory), "-t", template]
        proc = subprocess.run([sys.executable, *args], cwd=cwd, env=project.env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, (template, proc.stderr)
        assert (directory / "env.py").read_text().endswith("# custom template\n"), template


# -- passwords in URLs and in messages -------------------------------------------------


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_unencoded_at_in_password_is_named_not_shown(make_database, make_project, kind,
                                                     front_end):
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, third=None)
    url = make_url(database.url)
    secret = "Sec" + uuid.uuid4().hex[:8]
    raw = (f"{url.drivername}://{url.username}:Pw@{secret}@{url.host}:{url.port}/"
           f"{url.database}")
    for args in (("db", "upgrade"), ("db", "current")):
        proc = run(project, front_end, *args, env={"DATABASE_URL": raw})
        assert_one_error(proc, "holds a character that must be percent-encoded",
                         "'@' as %40")
        assert secret not in proc.stdout + proc.stderr
    assert version_rows(database) == []


# -- interruptions ----------------------------------------------------------------------

# Creates its table, then sleeps until interrupted: the table is the "part" that a
# database without transactional DDL keeps.
SLEEP_AFTER_TABLE = (
    "def upgrade():\n"
    '    op.create_table("t2", sa.Column("id", sa.Integer, primary_key=True))\n'
    + textwrap.indent(HOLD, " " * 4)
    + '''

def downgrade():
    op.drop_table("t2")
'''
)

INTERRUPTIONS = [(kind, "flask", signal.SIGINT) for kind in BACKENDS] + [
    (kind, "manage", signal.SIGTERM) for kind in BACKENDS] + [
    ("sqlite", "flask", signal.SIGTERM), ("sqlite", "manage", signal.SIGINT)]


@pytest.mark.parametrize("kind,front_end,sig", INTERRUPTIONS,
                         ids=[f"{k}-{f}-{s.name}" for k, f, s in INTERRUPTIONS])
def test_interrupted_revision_is_named(make_database, make_project, tmp_path, kind,
                                       front_end, sig):
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, second=SLEEP_AFTER_TABLE, third=None)
    holding = tmp_path / "holding"
    script = ["-m", "flask"] if front_end == "flask" else ["manage.py"]
    proc = subprocess.Popen(
        [sys.executable, *script, "db", "upgrade"], cwd=project.path,
        env={**project.env, "FMC_HOLDING": str(holding)}, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not holding.exists():
            assert proc.poll() is None, proc.communicate(timeout=10)
            assert time.monotonic() < deadline, "the revision never started"
            time.sleep(0.02)
        held = time.monotonic()
        time.sleep(0.3)  # let the sleep statement reach the server
        signalled = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    if kind == "postgresql" and POSTGRES_DRIVER == "psycopg2":
        # psycopg2 lets the running statement end first (README, "The oldest supported
        # stack"); then the interruption is the same.
        assert_held_statement_ended(held, signalled)
    assert "Aborted!" not in err
    line = assert_one_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err),
                            code={signal.SIGINT: 130, signal.SIGTERM: 143}[sig])
    name = "Ctrl-C" if sig == signal.SIGINT else "SIGTERM"
    assert line.startswith(f"Error: revision r2 was interrupted ({name}) in upgrade()"), line
    tables = database.tables() - {"alembic_version"}
    if kind == "postgresql":
        assert "Its transaction was rolled back, so the database is at base: its " \
               "version table names no revision now" in line
        assert (version_rows(database), tables) == ([], set())
    else:
        # r1 committed; r2 created its table before the sleep, and that stays.
        assert "may hold part of revision r2 although its version table does not " \
               "list it" in line
        assert (version_rows(database), tables) == (["r1"], {"t1", "t2"})


# -- what a failed downgrade or autocommit_block() leaves ----------------------------------

DROPS_THEN_FAILS = '''\
def upgrade():
    op.create_table("t2", sa.Column("id", sa.Integer, primary_key=True))
    op.create_table("t2b", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("t2b")
    op.execute("SELECT * FROM no_such_table_anywhere")
    op.drop_table("t2")
'''


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("kind", BACKENDS)
def test_failed_downgrade_is_described_truly(make_database, make_project, kind, front_end):
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, second=DROPS_THEN_FAILS, third=None)
    project.flask("db", "upgrade")
    proc = run(project, front_end, "db", "downgrade")
    line = assert_one_error(proc, "revision r2 failed in downgrade()", "no_such_table_anywhere")
    assert version_rows(database) == ["r2"]
    if kind == "postgresql":
        assert "Its transaction was rolled back, so the database is at r2, the " \
               "revision its version table names now" in line
        assert database.tables() == {"alembic_version", "t1", "t2", "t2b"}
    else:
        assert ("its version table still lists revision r2 while the database may "
                "already lack part of it") in line
        assert database.tables() == {"alembic_version", "t1", "t2"}  # t2b is gone


AUTOCOMMIT_THEN_FAILS = '''\
def upgrade():
    op.create_table("t2", sa.Column("id", sa.Integer, primary_key=True))
    with op.get_context().autocommit_block():
        op.execute("CREATE TABLE kept_anyway (id integer)")
    op.execute("SELECT * FROM no_such_table_anywhere")


def downgrade():
    op.drop_table("t2")
'''


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_failed_autocommit_revision_does_not_claim_a_rollback(make_database, make_project,
                                                               front_end):
    database = make_database("postgresql")
    project = make_project(database)
    write_chain(project, second=AUTOCOMMIT_THEN_FAILS, third=None)
    proc = run(project, front_end, "db", "upgrade")
    line = assert_one_error(proc, "revision r2 failed in upgrade()")
    assert ("Revision r2 entered autocommit_block(), which committed this run's work up "
            "to there, so the database may hold part of revision r2") in line
    assert "rolled back" not in line
    # autocommit_block() commits the transaction so far when it begins (Alembic's
    # documented behaviour): r1 with its version row, and r2's first table, stay.
    assert database.tables() == {"alembic_version", "t1", "t2", "kept_anyway"}
    assert version_rows(database) == ["r1"]


# -- the SQLite lock file, read-only folders, locking only what is migrated ---------------


@contextmanager
def read_only(folder: Path):
    """Make ``folder`` read-only for this process's children, root included (a
    read-only bind mount; for other users, file permissions do)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)
        return
    proc = subprocess.run(["mount", "--bind", str(folder), str(folder)],
                          capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        reason = f"cannot make a read-only folder here: {proc.stderr.strip()}"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True,
                       capture_output=True, timeout=30)
        yield
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True, timeout=30)


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_sqlite_lock_file_is_hidden_and_read_only_folders_work(make_project, tmp_path,
                                                                front_end):
    from conftest import Database

    data = tmp_path / "data"
    data.mkdir()
    database = Database("sqlite", f"sqlite:///{data / 'app.db'}")
    project = make_project(database)
    write_chain(project, third=None)
    run(project, front_end, "db", "upgrade")
    assert sorted(p.name for p in data.iterdir()) == [".app.db.alembic_version.lock", "app.db"]

    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_RUNTIME_DIR": ""}
    with read_only(data):
        assert not os.access(data, os.W_OK)
        proc = run(project, front_end, "db", "upgrade", env=env)
        assert proc.returncode == 0, proc.stderr
        assert "Error" not in proc.stderr
        proc = run(project, front_end, "db", "current", env=env)
        assert "r2 (head)" in proc.stdout
    locks = list((home / ".cache" / "flask-migrate-compat" / "locks").iterdir())
    assert len(locks) == 1 and locks[0].suffix == ".lock"
    assert version_rows(database) == ["r2"]


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_read_only_versions_folder(make_project, sqlite_db, front_end):
    """db migrate into a folder it cannot write: one line naming the folder, before
    autogenerate runs (so no review warning about a file never written), no file,
    and the database untouched; once writable again, the same command works."""
    project = make_project(sqlite_db)
    project.write_app(models="class User(db.Model):\n    id = db.Column(db.Integer, "
                      "primary_key=True)\n    age = db.Column(db.Integer)\n")
    run(project, front_end, "db", "init")
    assert run(project, front_end, "db", "migrate", "-m", "v1").returncode == 0
    assert run(project, front_end, "db", "upgrade").returncode == 0
    with sqlite_db.engine().begin() as conn:
        conn.execute(sa.text("INSERT INTO user (id, age) VALUES (1, 30)"))
    project.write_app(models="class User(db.Model):\n    id = db.Column(db.Integer, "
                      "primary_key=True)\n")  # drops age: a review finding
    versions = project.path / "migrations" / "versions"
    before = sorted(versions.iterdir())
    head = sqlite_db.version()
    with read_only(versions):
        proc = run(project, front_end, "db", "migrate", "-m", "v2")
        assert_one_error(proc, f"cannot write the new revision file into {versions}",
                         "make the folder writable")
        assert "Warning" not in proc.stderr and "OSError" not in proc.stderr
        assert sorted(versions.iterdir()) == before
    assert sqlite_db.version() == head and "age" in sqlite_db.columns("user")
    proc = run(project, front_end, "db", "migrate", "-m", "v2")
    assert proc.returncode == 0 and "Warning: dropped column user.age" in proc.stderr


@pytest.mark.parametrize("front_end", FRONT_ENDS)
@pytest.mark.parametrize("kind", BACKENDS)
def test_only_migrated_databases_are_locked(make_database, make_project, kind, front_end):
    """A bind that the single-database env.py never migrates may be unreachable."""
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, third=None)
    project.write_app(models="", config='app.config["SQLALCHEMY_BINDS"] = '
                      '{"reports": "%s"}' % postgres_driver_url(
                          "postgresql://nobody@127.0.0.1:1/nowhere"))
    run(project, front_end, "db", "upgrade")
    proc = run(project, front_end, "db", "downgrade", "base")
    assert proc.returncode == 0, proc.stderr
    assert version_rows(database) == []


@pytest.mark.parametrize("front_end", FRONT_ENDS)
def test_bad_lock_settings(project, front_end):
    write_chain(project, third=None)
    proc = run(project, front_end, "db", "upgrade", "--lock-timeout", "-1")
    assert proc.returncode == 2, proc.stderr
    assert "-1" in proc.stderr and "Traceback" not in proc.stderr
    project.write_app(models="", config='app.config["MIGRATE_LOCK_TIMEOUT"] = "abc"')
    proc = run(project, front_end, "db", "upgrade")
    assert_one_error(proc, "the MIGRATE_LOCK_TIMEOUT setting must be a number of seconds",
                     "'abc'")
    assert version_rows(project.database) == []


# -- start-up failures that manage.py meets before any command ----------------------------

STARTUP_CASES = {
    "missing driver": ("postgresql+pg8000://u@127.0.0.1/x",
                       "the database driver 'pg8000' that SQLALCHEMY_DATABASE_URI asks "
                       "for (postgresql+pg8000) is not installed: pip install pg8000"),
    # psycopg2 made unimportable (BLOCK_PSYCOPG2): the driver of plain postgresql:// on
    # SQLAlchemy 1.4 and 2.0, the one to use on 1.4.
    "missing psycopg2": ("postgresql+psycopg2://u:Pw-0-secret@127.0.0.1/x",
                         "the database driver 'psycopg2' that SQLALCHEMY_DATABASE_URI asks "
                         "for (postgresql+psycopg2) is not installed: pip install "
                         "psycopg2-binary"),
    "postgres scheme": ("postgres://u:Pw-0-secret@127.0.0.1/x",
                        "SQLALCHEMY_DATABASE_URI starts with 'postgres://', a spelling "
                        "SQLAlchemy 1.4 removed: write 'postgresql://' instead"),
    "unknown dialect": ("postgresq+psycopg2://u:Pw-0-secret@127.0.0.1/x",
                        "SQLALCHEMY_DATABASE_URI names a database dialect or driver "
                        "SQLAlchemy does not know (postgresq+psycopg2): check the part "
                        f"before '://' (for example 'postgresql+{POSTGRES_DRIVER}', "),
    "malformed": ("not a url:Pw-0-secret",
                  "SQLALCHEMY_DATABASE_URI is not a database URL SQLAlchemy can parse"),
    # Flask-SQLAlchemy 3 refuses to start; 2.x falls back to an in-memory database,
    # which every command that uses the database refuses (core.check_database_configured).
    "not set": (None, "SQLALCHEMY_DATABASE_URI is 'sqlite:///:memory:' (Flask-SQLAlchemy 2 "
                      "sets that when it is not set)" if FLASK_SQLALCHEMY_2 else
                      "neither SQLALCHEMY_DATABASE_URI nor SQLALCHEMY_BINDS is set"),
}

STARTUP_APP = '''\
import os
import sys
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_compat import Migrate

if os.environ.get("BLOCK_PSYCOPG2"):
    sys.modules["psycopg2"] = None  # import psycopg2 now fails as if not installed
app = Flask(__name__)
app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False
if os.environ.get("BROKEN_URL"):
    app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["BROKEN_URL"]
db = SQLAlchemy(app)
Migrate(app, db)
'''


def startup_route(project, route: str, *args: str) -> list[str]:
    """The argv (after ``python``) of ``db <args>`` through ``manage.py``, the runner
    (a legacy manage.py importing flask_migrate) or ``flask``."""
    if route == "flask":
        return ["-m", "flask", *args]
    if route == "manage":
        return ["manage.py", *args]
    legacy = project.write("legacy_manage.py", (
        "from flask_script import Manager\n"
        "from app import app\n"
        "from flask_migrate import MigrateCommand\n"
        "manager = Manager(app)\n"
        "manager.add_command('db', MigrateCommand)\n"
        "manager.run()\n"))
    return ["-m", "flask_migrate_compat", legacy.name, *args]


@pytest.mark.parametrize("route", ["manage", "runner"])
@pytest.mark.parametrize("case", sorted(STARTUP_CASES))
def test_startup_failures_are_one_line(project, case, route):
    """The same line whether Flask-SQLAlchemy makes its engines in SQLAlchemy(app)
    (3.x) or on first use (2.x, where the line comes before the migrations folder is
    even looked for, as it does on 3.x: this project has none)."""
    url, expected = STARTUP_CASES[case]
    project.write("app.py", STARTUP_APP)
    args = startup_route(project, route, "db", "upgrade")
    env = {"BROKEN_URL": url or "", "BLOCK_PSYCOPG2": "1"}
    proc = project.run(*args, check=False, env=env)
    if url is None:
        proc = without_flask_sqlalchemy_2_no_url_warning(proc)
    assert_one_error(proc, expected)
    assert "Pw-0-secret" not in proc.stdout + proc.stderr
    # The traceback, on demand.
    proc = project.run(*args, check=False, env={**env, "FLASK_MIGRATE_COMPAT_TRACEBACK": "1"})
    assert proc.returncode == 1 and "Traceback" in proc.stderr


@pytest.mark.parametrize("route", ["manage", "runner"])
def test_one_line_when_the_context_teardown_fails_again(project, route):
    """Flask-SQLAlchemy 2 with ``SQLALCHEMY_COMMIT_ON_TEARDOWN`` (flasky's config) makes
    its engine again when the application context ends, after the command printed
    its line, and fails again: still one line (Flask-SQLAlchemy 3 fails at start-up
    and has no such setting)."""
    project.write("app.py", STARTUP_APP.replace(
        "db = SQLAlchemy(app)", 'app.config["SQLALCHEMY_COMMIT_ON_TEARDOWN"] = True\n'
        "db = SQLAlchemy(app)"))
    args = startup_route(project, route, "db", "upgrade")
    proc = project.run(*args, check=False,
                       env={"BROKEN_URL": "postgres://u:Pw-0-secret@127.0.0.1/x"})
    assert_one_error(proc, "SQLALCHEMY_DATABASE_URI starts with 'postgres://'")


@pytest.mark.parametrize("route", ["flask", "manage", "runner"])
def test_unparsable_url_never_shows_its_password(project, route):
    """Issue 20's URL: '://' mistyped as '//', which SQLAlchemy 1.4 quoted whole,
    password included, in its error. Every route and command fails without showing
    the password; manage.py and the runner say what is wrong in one line. (``flask``
    on Flask-SQLAlchemy 3 fails while Flask imports the application, which prints
    its traceback: README, "When something goes wrong".)"""
    password = "Pw-" + uuid.uuid4().hex[:12]
    url = f"postgresql+{POSTGRES_DRIVER}//appuser:{password}@db.internal/shop"
    write_chain(project, third=None)
    project.write("app.py", STARTUP_APP)
    for command in (("db", "upgrade"), ("db", "current"), ("db", "history")):
        args = startup_route(project, route, *command)
        proc = project.run(*args, check=False, env={"BROKEN_URL": url})
        assert proc.returncode != 0, proc.stdout + proc.stderr
        assert not shows_password(proc.stdout + proc.stderr, password), proc.stderr
        if route != "flask":
            assert_one_error(proc, "Error: SQLALCHEMY_DATABASE_URI is not a database URL "
                                   "SQLAlchemy can parse")
    assert version_rows(project.database) == []


@pytest.mark.parametrize("route", ["manage", "runner"])
def test_psycopg3_url_migrates_or_says_what_to_use(make_database, make_project, route):
    """``postgresql+psycopg://``, the URL of the ``postgresql`` extra's driver, on a
    real server: SQLAlchemy 2 migrates; 1.4, which has no psycopg 3 dialect, stops in
    one line naming the driver to install and the URL to write instead."""
    database = make_database("postgresql")
    project = make_project(database)
    write_chain(project, third=None)
    project.write("app.py", STARTUP_APP)
    url = make_url(database.url).set(drivername="postgresql+psycopg", password="Pw-0-secret")
    args = startup_route(project, route, "db", "upgrade")
    env = {"BROKEN_URL": url.render_as_string(hide_password=False)}
    proc = project.run(*args, check=False, env=env)
    assert "Pw-0-secret" not in proc.stdout + proc.stderr
    if sa.__version__.startswith("1."):
        assert_one_error(proc, "Error: SQLALCHEMY_DATABASE_URI asks for psycopg 3 "
                               "(postgresql+psycopg), which SQLAlchemy 1.4 has no dialect "
                               "for: pip install psycopg2-binary and write "
                               "'postgresql+psycopg2://', or upgrade SQLAlchemy to 2.0 or "
                               "later")
        assert version_rows(database) == []
    else:
        assert proc.returncode == 0, proc.stderr
        assert database.version() == ["r2"]
