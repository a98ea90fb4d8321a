"""The migration lock's promises (README, "Concurrent deploys"), each proved on SQLite,
PostgreSQL and MariaDB while another process really holds the lock:

* ``MIGRATE_LOCK_TIMEOUT`` ends a wait with one error line; ``--lock-timeout`` wins
  over it; ``MIGRATE_LOCK = False`` and ``--no-lock`` do not wait at all;
* offline ``--sql`` runs take no lock; another application on the same server (other
  version table, or other database) does not wait;
* the "Waiting for the migration lock" line and the timeout line name the database
  without its user or password;
* Ctrl-C and SIGTERM release the lock while the interrupted process is still alive
  (not when it dies), and PostgreSQL cancels the statement that was running.

Every command is a real ``flask db`` / ``manage.py db`` process; every read of its
output and every wait is bounded, so a lock that does not work fails these tests in
seconds instead of stalling the run.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from urllib.parse import quote, quote_plus

import pytest
import sqlalchemy as sa
from conftest import (
    POSTGRES_DRIVER, assert_held_statement_ended, assert_one_error, init_migrations,
    kill_spawned, spawn, wait_for_file, wait_for_line,
)
from test_failures import GOOD, HEADER, SLEEPY

BACKENDS = ["sqlite", "postgresql", "mysql"]
WAITING = "Waiting for the migration lock on "

# Read by app.py (APP_TEMPLATE's {config} slot): the lock settings, from the
# environment of each command.
LOCK_SETTINGS = '''
import json as _json
for _name in ("MIGRATE_LOCK", "MIGRATE_LOCK_TIMEOUT"):
    if os.environ.get(_name):
        app.config[_name] = _json.loads(os.environ[_name])
'''

# Holds the application's migration lock (the very guard the commands take) until
# the file argv[2] exists; says it holds it by creating argv[1].
HOLDER = '''
import os, sys, time
from app import app
from flask_migrate_compat.lock import command_guard

with app.app_context(), command_guard():
    open(sys.argv[1], "w").close()
    deadline = time.monotonic() + 120
    while not os.path.exists(sys.argv[2]) and time.monotonic() < deadline:
        time.sleep(0.02)
'''


def write_revisions(project, *bodies: str) -> None:
    """``db init``'s script directory plus revisions r1, r2... with these bodies."""
    init_migrations(project)
    down = None
    for number, body in enumerate(bodies, 1):
        rev = f"r{number}"
        project.write(f"migrations/versions/{rev}.py", HEADER.format(rev=rev, down=down) + body)
        down = rev


@pytest.fixture
def user_database(make_database):
    """Factory: ``(kind) -> (database, URL, secrets)``: a fresh database and a URL that
    logs in with a user and password of its own (on SQLite, no user: ``secrets`` is
    empty). ``secrets`` are the strings no output may show: the user name and the
    password, raw and percent-encoded."""
    cleanups = []

    def factory(kind: str):
        database = make_database(kind)
        if kind == "sqlite":
            return database, database.url, ()
        user = f"lockuser{uuid.uuid4().hex[:8]}"
        password = f"Pw-{uuid.uuid4().hex[:12]}/@:?#%+"
        admin = sa.create_engine(database.admin_url, isolation_level="AUTOCOMMIT",
                                 poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'"))
                conn.execute(sa.text(f"ALTER DATABASE {database.name} OWNER TO {user}"))
            else:
                conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
                conn.execute(sa.text(f"GRANT ALL ON {database.name}.* TO '{user}'@'%'"))

        def cleanup():
            kill_spawned()
            with admin.connect() as conn:
                if kind == "postgresql":
                    conn.execute(sa.text(f"DROP DATABASE IF EXISTS {database.name} WITH (FORCE)"))
                    conn.execute(sa.text(f"DROP ROLE IF EXISTS {user}"))
                else:
                    conn.execute(sa.text(f"DROP USER IF EXISTS '{user}'@'%'"))
            admin.dispose()

        cleanups.append(cleanup)
        url = sa.engine.make_url(database.url).set(username=user, password=password)
        secrets = (user, password, quote(password, safe=""), quote_plus(password))
        return database, url.render_as_string(hide_password=False), secrets

    yield factory
    for cleanup in cleanups:
        cleanup()


def described(database) -> str:
    """How the lines name the database: backend, name, host and port, no user."""
    url = sa.engine.make_url(database.url)
    if database.kind == "sqlite":
        return f"SQLite database {url.database!r}"
    return f"{database.kind} database {database.name!r} on {url.host}:{url.port}"


def finish(proc, timeout: float = 30) -> subprocess.CompletedProcess:
    """Wait (bounded) for a spawned process; what it printed."""
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize("kind", BACKENDS)
def test_lock_settings_and_what_takes_no_lock(user_database, make_database, make_project,
                                              tmp_path, kind):
    database, url, secrets = user_database(kind)
    project = make_project(database)
    project.env["DATABASE_URL"] = url
    project.write_app(models="", config=LOCK_SETTINGS)
    project.write_app(models="", migrate_args=', version_table="other_version"',
                      name="other_app.py")
    write_revisions(project, GOOD.format(table="t1"), GOOD.format(table="t2"))
    elsewhere = make_database(kind, label="elsewhere")

    holding, release = tmp_path / "holding", tmp_path / "release"
    holder = spawn([sys.executable, "-c", HOLDER, str(holding), str(release)],
                   cwd=project.path, env=project.env)
    wait_for_file(holding, holder)

    flask, manage = [sys.executable, "-m", "flask", "db"], [sys.executable, "manage.py", "db"]
    commands = {
        # MIGRATE_LOCK_TIMEOUT ends the wait; --lock-timeout wins over it.
        "setting timeout": (manage + ["upgrade"], {"MIGRATE_LOCK_TIMEOUT": "0.4"}),
        "option timeout": (flask + ["upgrade", "--lock-timeout", "0.6"],
                           {"MIGRATE_LOCK_TIMEOUT": "100"}),
        # MIGRATE_LOCK = False: no wait, the revisions run.
        "setting off": (flask + ["upgrade"], {"MIGRATE_LOCK": "false"}),
        # What must not wait even a moment.
        "offline": (manage + ["upgrade", "--sql", "--lock-timeout", "0"], {}),
        "other version table": (flask + ["stamp", "head", "--lock-timeout", "0"],
                                {"FLASK_APP": "other_app"}),
        "other database": (manage + ["stamp", "head", "--lock-timeout", "0"],
                           {"DATABASE_URL": elsewhere.url}),
        # Waits until the holder lets go, then migrates.
        "waiter": (flask + ["upgrade", "--lock-timeout", "60"], {}),
    }
    procs = {name: spawn(argv, cwd=project.path, env={**project.env, **env})
             for name, (argv, env) in commands.items()}
    waiter = procs.pop("waiter")
    try:
        done = {name: finish(proc) for name, proc in procs.items()}
        waiting = wait_for_line(waiter, WAITING)[-1]
        # --no-lock through manage.py: runs while the lock is held and the waiter waits.
        done["no-lock"] = finish(spawn(manage + ["downgrade", "base", "--no-lock"],
                                       cwd=project.path, env=project.env))
        assert waiter.poll() is None, "the waiter did not wait for the holder"
    finally:
        release.touch()
    done["holder"] = finish(holder)
    done["waiter"] = finish(waiter)

    for name in ("setting timeout", "option timeout"):
        seconds = "0.4" if name == "setting timeout" else "0.6"
        assert_one_error(done[name], f"Error: timed out after {seconds} s waiting for the "
                                     f"migration lock on the {described(database)}: ")
    for name in ("setting off", "offline", "other version table", "other database",
                 "no-lock", "holder", "waiter"):
        assert done[name].returncode == 0, (name, done[name].stderr)
        if name != "waiter":
            assert WAITING not in done[name].stderr, name
    assert "Running upgrade  -> r1" in done["setting off"].stderr
    assert "CREATE TABLE t1" in done["offline"].stdout
    assert "Running downgrade r1 -> " in done["no-lock"].stderr
    assert "Running upgrade  -> r1" in done["waiter"].stderr

    # The wait line: one line naming the database, and nothing of the login.
    assert waiting.startswith(f"{WAITING}the {described(database)}"), waiting
    assert waiting.count("\n") == 1 and waiting.endswith("\n")
    for name, proc in done.items():
        lock_lines = [line for line in proc.stderr.splitlines() if "migration lock" in line]
        assert len(lock_lines) <= (2 if "timeout" in name else 1), (name, proc.stderr)
        for secret in secrets:
            assert secret not in proc.stdout + proc.stderr, (name, secret)

    assert database.version() == ["r2"]
    assert database.version("other_version") == ["r2"]
    assert elsewhere.version() == ["r2"] and elsewhere.tables() == {"alembic_version"}


# Run through the API in one process: an upgrade that is interrupted (SIGINT or
# SIGTERM from the test) inside revision r2, then, once the test creates argv[1], a
# second upgrade that may not wait at all.
INTERRUPTED = '''
import os, sys, time
from app import app
from flask_migrate_compat import upgrade

with app.app_context():
    try:
        upgrade()
    except KeyboardInterrupt as exc:
        print("INTERRUPTED", type(exc).__name__, flush=True)
    else:
        sys.exit("the upgrade was not interrupted")
    del os.environ["FMC_HOLDING"]
    deadline = time.monotonic() + 120
    while not os.path.exists(sys.argv[1]):
        if time.monotonic() > deadline:
            sys.exit("never told to go on")
        time.sleep(0.02)
    upgrade(lock_timeout=0)
    print("SECOND UPGRADE DONE", flush=True)
'''

INTERRUPTIONS = [("sqlite", signal.SIGTERM), ("postgresql", signal.SIGTERM),
                 ("postgresql", signal.SIGINT), ("mysql", signal.SIGTERM)]


def running_sleeps(database) -> int:
    """Statements of other sessions still running ``pg_sleep`` / ``SLEEP`` in the
    database."""
    engine = sa.create_engine(database.admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            if database.kind == "postgresql":
                return conn.execute(sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = :name "
                    "AND state = 'active' AND query ILIKE '%pg_sleep%' "
                    "AND pid <> pg_backend_pid()"), {"name": database.name}).scalar()
            return conn.execute(sa.text(
                "SELECT count(*) FROM information_schema.PROCESSLIST WHERE DB = :name "
                "AND INFO LIKE '%SLEEP(%' AND ID <> CONNECTION_ID()"),
                {"name": database.name}).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind,sig", INTERRUPTIONS,
                         ids=[f"{kind}-{sig.name}" for kind, sig in INTERRUPTIONS])
def test_interruption_releases_the_lock_while_alive(make_database, make_project, tmp_path,
                                                    kind, sig):
    database = make_database(kind)
    project = make_project(database)
    project.write_app(models="")
    write_revisions(project, GOOD.format(table="t1"), SLEEPY, GOOD.format(table="t3"))
    holding, go_on = tmp_path / "holding", tmp_path / "go-on"

    script = spawn([sys.executable, "-c", INTERRUPTED, str(go_on)], cwd=project.path,
                   env={**project.env, "FMC_HOLDING": str(holding)})
    wait_for_file(holding, script)
    held = time.monotonic()
    waiter = spawn([sys.executable, "-m", "flask", "db", "upgrade", "--lock-timeout", "20"],
                   cwd=project.path, env=project.env)
    wait_for_line(waiter, WAITING)
    time.sleep(0.3)  # r2's sleep statement reaches the server
    signalled = time.monotonic()
    script.send_signal(sig)
    expected = "Terminated" if sig == signal.SIGTERM else "KeyboardInterrupt"
    wait_for_line(script, f"INTERRUPTED {expected}", stream="stdout")
    if kind == "postgresql" and POSTGRES_DRIVER == "psycopg2":
        # psycopg2 lets the running statement end; the signal takes effect then.
        assert_held_statement_ended(held, signalled)

    # The lock was released on the way out of upgrade(): the waiter gets it and
    # migrates while the interrupted process lives on.
    w_out, w_err = waiter.communicate(timeout=60)
    waited = time.monotonic() - signalled
    assert waiter.returncode == 0, w_err
    assert script.poll() is None, "the interrupted process did not survive its upgrade()"
    assert waited < 15, f"the waiter needed {waited:.1f} s after the signal"
    assert "Running upgrade r2 -> r3" in w_err
    if kind != "sqlite":
        # The sleep statement was cancelled on the server before the lock was released
        # (by psycopg itself; on MariaDB by the guard's KILL QUERY): none is left
        # running. (Left alone, MariaDB notices the lost client ~5 s later.)
        deadline = time.monotonic() + 1
        while running_sleeps(database) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running_sleeps(database) == 0

    # In the same process, a second upgrade() takes the lock at once.
    go_on.touch()
    s_out, s_err = script.communicate(timeout=60)
    assert script.returncode == 0, s_out + s_err
    assert "SECOND UPGRADE DONE" in s_out
    assert database.version() == ["r3"]
    assert database.tables() == {"alembic_version", "t1", "t2", "t3"}
