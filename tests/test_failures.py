"""Failures lose nothing: a revision failing half-way, unreachable or misconfigured
databases, and ``db upgrade`` interrupted by SIGINT/SIGTERM, on real servers.

``transaction_per_migration`` defaults to ``False`` (Alembic's default): on PostgreSQL
a failed ``upgrade`` rolls back every revision of that run. With
``Migrate(app, db, transaction_per_migration=True)`` each revision commits on its own
and the database stays at the last good revision. MariaDB cannot roll back DDL at all:
Alembic commits each revision there whatever the setting, and the failed one may be
half-applied, which the error line says, naming it.
"""
from __future__ import annotations

import signal
import sys
import textwrap
import time
import uuid

import pytest
import sqlalchemy as sa
from conftest import (
    FLASK_SQLALCHEMY_2, POSTGRES_DRIVER, POSTGRES_HOLD_SECONDS, assert_held_statement_ended,
    assert_one_error, init_migrations, spawn, wait_for_file,
    without_flask_sqlalchemy_2_no_url_warning,
)

HEADER = '''\
import os
import time

import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None

'''

GOOD = '''\
def upgrade():
    op.create_table("{table}", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("{table}")
'''

# Creates its table, then fails: the table is the "part" a non-transactional
# database keeps.
BAD = '''\
def upgrade():
    op.create_table("t3", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT * FROM no_such_table_anywhere")


def downgrade():
    op.drop_table("t3")
'''

# Lines of a revision's upgrade(): announce itself through FMC_HOLDING, then sleep on
# the server (or in Python for SQLite) until the test interrupts it (on PostgreSQL with
# psycopg2, which lets the statement end first: a few seconds, POSTGRES_HOLD_SECONDS).
HOLD = f'''\
open(os.environ["FMC_HOLDING"], "w").close()
name = op.get_bind().dialect.name
if name == "postgresql":
    op.execute("SELECT pg_sleep({POSTGRES_HOLD_SECONDS})")
elif name in ("mysql", "mariadb"):
    op.execute("SELECT SLEEP(60)")
else:
    time.sleep(60)
'''

# Sleeps (HOLD) before creating its table; without FMC_HOLDING it only creates it.
SLEEPY = (
    "def upgrade():\n"
    "    if os.environ.get(\"FMC_HOLDING\"):\n"
    + textwrap.indent(HOLD, " " * 8)
    + '''    op.create_table("t2", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("t2")
'''
)


def write_chain(project, second: str = GOOD, third: str | None = BAD) -> None:
    project.write_app(models="")
    init_migrations(project)
    bodies = [("r1", None, GOOD.format(table="t1")),
              ("r2", "r1", second.format(table="t2"))]
    if third is not None:
        bodies.append(("r3", "r2", third))
    for rev, down, body in bodies:
        project.write(f"migrations/versions/{rev}.py", HEADER.format(rev=rev, down=down) + body)


def version_rows(database) -> list[str]:
    if "alembic_version" not in database.tables():
        return []
    return database.version()


def one_error_line(proc) -> str:
    return assert_one_error(proc)


# -- a revision failing half-way --------------------------------------------------------


@pytest.mark.parametrize("per_migration", [False, True])
@pytest.mark.parametrize("front", ["flask", "manage"])
def test_postgresql_failed_revision_is_rolled_back(make_database, make_project,
                                                   per_migration, front):
    database = make_database("postgresql")
    project = make_project(database)
    write_chain(project)
    if per_migration:
        project.write_app(models="", migrate_args=", transaction_per_migration=True")
    run = project.flask if front == "flask" else project.manage
    proc = run("db", "upgrade", check=False)
    line = one_error_line(proc)
    assert "revision r3 failed in upgrade()" in line
    assert "no_such_table_anywhere" in line and "rolled back" in line
    if per_migration:
        # Each revision committed on its own: at the last good revision.
        assert "so the database is at r2, the revision its version table names now" in line
        assert version_rows(database) == ["r2"]
        assert database.tables() == {"alembic_version", "t1", "t2"}
    else:
        # One transaction for the whole run: exactly as before the command, although
        # r1 and r2 were each reported done.
        assert "Upgrade r2 " in proc.stderr
        assert "so the database is at base: its version table names no revision now" in line
        assert version_rows(database) == []
        assert database.tables() - {"alembic_version"} == set()
    # Nothing is left half-done: fixing the revision and upgrading again works.
    project.write("migrations/versions/r3.py", HEADER.format(rev="r3", down="r2")
                  + GOOD.format(table="t3"))
    project.flask("db", "upgrade")
    assert version_rows(database) == ["r3"]


def test_postgresql_rolled_back_line_reads_the_version_table_env_py_used(make_database,
                                                                        make_project):
    """The revision named after a rollback is read from the table env.py wrote
    (``Migrate(version_table=...)`` here), not from Alembic's default one."""
    database = make_database("postgresql")
    project = make_project(database)
    write_chain(project)
    project.write_app(models="", migrate_args=", transaction_per_migration=True, "
                      "version_table='deploy_versions'")
    line = one_error_line(project.manage("db", "upgrade", check=False))
    assert "so the database is at r2, the revision its version table names now" in line
    assert database.version("deploy_versions") == ["r2"]
    assert "alembic_version" not in database.tables()


@pytest.mark.parametrize("per_migration", [False, True])
def test_mysql_failed_revision_is_named(make_database, make_project, per_migration):
    database = make_database("mysql")
    project = make_project(database)
    write_chain(project)
    if per_migration:
        project.write_app(models="", migrate_args=", transaction_per_migration=True")
    line = one_error_line(project.manage("db", "upgrade", check=False))
    assert line.startswith(f"Error: revision r3 failed in upgrade() on the mysql database "
                           f"{database.name!r} on 127.0.0.1:3306")
    assert "may hold part of revision r3" in line
    # MariaDB committed r1 and r2 (Alembic commits per revision where DDL cannot be
    # rolled back) and kept the table r3 created before failing.
    assert version_rows(database) == ["r2"]
    assert database.tables() == {"alembic_version", "t1", "t2", "t3"}


def test_sqlite_failed_revision_is_named(make_database, make_project):
    database = make_database("sqlite")
    project = make_project(database)
    write_chain(project)
    line = one_error_line(project.flask("db", "upgrade", check=False))
    assert "revision r3 failed in upgrade() on the SQLite database" in line
    assert version_rows(database) == ["r2"]


# -- connection problems ---------------------------------------------------------------

PASSWORD = "Pw-" + uuid.uuid4().hex  # long and unique: a leak cannot go unnoticed


@pytest.fixture
def mysql_user(mysql_db):
    """A MariaDB user with a password, allowed on the test database; dropped after."""
    user = f"fmc_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(mysql_db.admin_url, poolclass=sa.pool.NullPool)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{PASSWORD}'"))
        conn.execute(sa.text(f"GRANT ALL ON {mysql_db.name}.* TO '{user}'@'%'"))
    yield user
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP USER '{user}'@'%'"))
    admin.dispose()


def _url(base: str, **parts) -> str:
    return sa.engine.make_url(base).set(**parts).render_as_string(hide_password=False)


def bad_urls(kind: str, database, user: str | None):
    """(case, url, host shown, database shown) for one kind of server."""
    url = database.url
    cases = [
        ("unreachable", _url(url, port=1, password=PASSWORD), "127.0.0.1:1", database.name),
        ("unknown database", _url(url, database="fmc_no_such_db", password=PASSWORD),
         sa.engine.make_url(url).host, "fmc_no_such_db"),
    ]
    if kind == "mysql":
        cases.append(("wrong password", _url(url, username=user, password=PASSWORD + "x"),
                      "127.0.0.1", database.name))
    return cases


@pytest.mark.parametrize("lock", [True, False])
@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_connection_errors_are_one_line(make_database, make_project, request, kind, lock):
    database = make_database(kind)
    user = request.getfixturevalue("mysql_user") if kind == "mysql" else None
    project = make_project(database)
    write_chain(project, third=None)
    for case, url, host, name in bad_urls(kind, database, user):
        args = ("db", "upgrade") if lock else ("db", "upgrade", "--no-lock")
        for run in (project.flask, project.manage) if lock else (project.flask,):
            proc = run(*args, check=False, env={"DATABASE_URL": url})
            line = one_error_line(proc)
            assert line.startswith(f"Error: cannot connect to the {kind} database {name!r} "
                                   f"on {host}"), (case, line)
            assert PASSWORD not in proc.stdout + proc.stderr
    assert version_rows(database) == []


def test_right_password_works_and_is_never_printed(mysql_db, make_project, mysql_user):
    """The happy path with a password in the URL (conftest checks every command's
    output for it too)."""
    url = _url(mysql_db.url, username=mysql_user, password=PASSWORD)
    project = make_project(mysql_db)
    project.env["DATABASE_URL"] = url
    write_chain(project, third=None)
    for args in (("db", "upgrade"), ("db", "current"), ("db", "downgrade", "base"),
                 ("db", "upgrade", "--sql")):
        proc = project.manage(*args)
        assert PASSWORD not in proc.stdout + proc.stderr


@pytest.mark.xfail(strict=True, reason=(
    "Flask-SQLAlchemy 3 creates engines inside SQLAlchemy(app), so a missing driver "
    "fails while 'flask' imports the application, before any code of ours runs, and "
    "Flask prints that ImportError with its traceback (README, 'When something goes "
    "wrong'); manage.py and the runner give one line (test_true_lines.py)"
))
def test_missing_driver_is_one_line(make_database, make_project):
    database = make_database("postgresql")
    project = make_project(database)
    write_chain(project, third=None)
    url = _url(database.url, drivername="postgresql+pg8000", password=PASSWORD)
    proc = project.flask("db", "upgrade", check=False, env={"DATABASE_URL": url})
    line = one_error_line(proc)
    assert database.name in line and "127.0.0.1" in line


# -- interrupted upgrades ----------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_interrupted_upgrade_leaves_no_lock(make_database, make_project, tmp_path,
                                            kind, sig):
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, second=SLEEPY, third=GOOD.format(table="t3"))
    holding = tmp_path / "holding"
    proc = spawn([sys.executable, "-m", "flask", "db", "upgrade"], cwd=project.path,
                 env={**project.env, "FMC_HOLDING": str(holding)})
    wait_for_file(holding, proc)
    held = time.monotonic()
    time.sleep(0.3)  # let the sleep statement reach the server
    signalled = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)  # it stops well before the 60 s sleep ends
    assert proc.returncode == (130 if sig == signal.SIGINT else 143), err
    if kind == "postgresql" and POSTGRES_DRIVER == "psycopg2":
        # psycopg2 lets the running statement end; the signal takes effect then.
        assert_held_statement_ended(held, signalled)
    # The version table matches the tables: r1 alone (committed per revision on
    # SQLite/MariaDB), or nothing (PostgreSQL rolled the whole run back).
    rows = version_rows(database)
    tables = database.tables() - {"alembic_version"}
    assert (rows, tables) in ((["r1"], {"t1"}), ([], set())), (rows, tables, err)
    # No lock left behind: an upgrade that may not wait at all goes straight through.
    again = project.flask("db", "upgrade", "--lock-timeout", "0")
    assert "Waiting for the migration lock" not in again.stderr
    assert version_rows(database) == ["r3"]
    assert database.tables() == {"alembic_version", "t1", "t2", "t3"}


# Reads data, as a data migration does: offline mode (--sql) has no rows to give.
READS = '''\
def upgrade():
    op.create_table("t3", sa.Column("id", sa.Integer, primary_key=True))
    count = op.get_bind().execute(sa.text("SELECT count(*) FROM t1")).scalar()
    op.execute(f"INSERT INTO t3 (id) VALUES ({count + 1})")


def downgrade():
    op.drop_table("t3")
'''


@pytest.mark.parametrize("front", ["flask", "manage"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_offline_failure_speaks_of_no_database(make_database, make_project, kind, front):
    """upgrade --sql failing in a revision: the line says that no database was
    touched (offline mode writes SQL only), never that a transaction was rolled back;
    the database is indeed as it was. Online, the same revision works."""
    database = make_database(kind)
    project = make_project(database)
    write_chain(project, third=READS)
    run = project.flask if front == "flask" else project.manage
    proc = run("db", "upgrade", "--sql", check=False)
    line = one_error_line(proc)
    assert line.startswith("Error: revision r3 failed in upgrade() while writing its SQL "
                           "for the "), line
    assert "(offline mode, --sql): AttributeError" in line or "(offline mode, --sql): " \
        "'NoneType'" in line, line
    assert "No database was connected to or changed" in line
    assert "rolled back" not in line and "version table" not in line
    assert "CREATE TABLE t1" in proc.stdout  # the SQL written before the failure
    assert database.tables() == set()
    run("db", "upgrade")
    assert version_rows(database) == ["r3"]


# -- no database configured ----------------------------------------------------------------

@pytest.mark.parametrize("front", ["flask", "manage"])
def test_no_database_url_fails_in_one_line(project, front):
    """No ``SQLALCHEMY_DATABASE_URI``: Flask-SQLAlchemy 3 refuses at start-up, 2.x falls
    back to an in-memory SQLite database. Either way the commands that use the
    database fail in one line naming the setting, where ``db upgrade`` once exited 0
    having migrated nothing; offline mode (``--sql``) still writes the SQL on 2.x."""
    write_chain(project, third=None)
    project.write_app(models="", config='del app.config["SQLALCHEMY_DATABASE_URI"]\n')
    run = project.flask if front == "flask" else project.manage
    for command in (("upgrade",), ("current",), ("stamp", "head"), ("check",),
                    ("migrate", "-m", "x"), ("downgrade", "base")):
        proc = run("db", *command, check=False)
        if not FLASK_SQLALCHEMY_2 and front == "flask":
            # Flask-SQLAlchemy 3 raises while Flask's CLI imports the application,
            # before any code of ours runs: Flask prints the traceback (README.rst,
            # "When a command fails"), whose last line names the setting.
            assert proc.returncode == 1
            assert "SQLALCHEMY_DATABASE_URI" in proc.stderr.strip().splitlines()[-1]
            continue
        assert_one_error(without_flask_sqlalchemy_2_no_url_warning(proc), "SQLALCHEMY_DATABASE_URI",
                         "set SQLALCHEMY_DATABASE_URI (for example 'sqlite:///app.db')")
    assert [p.name for p in project.revisions()] == ["r1.py", "r2.py"]
    assert version_rows(project.database) == []
    assert project.database.tables() == set()
    if FLASK_SQLALCHEMY_2:
        proc = run("db", "upgrade", "--sql")
        assert "CREATE TABLE t1" in proc.stdout and "CREATE TABLE t2" in proc.stdout
