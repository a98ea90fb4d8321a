"""The migration lock's guard, in this process, on each backend: a second guard of the
same database meets the first one's lock exactly as a second process would (each guard
takes a connection or a file handle of its own: a PostgreSQL advisory lock, a MariaDB
``GET_LOCK``, an OS file lock), so what the commands promise can be checked here in
milliseconds, down to the wording and the timing. test_lock_safety.py proves the same
promises through real commands.
"""
from __future__ import annotations

import io
import math
import os
import signal
import time

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_compat import Migrate, MigrateError
from flask_migrate_compat.errors import Terminated
from flask_migrate_compat.lock import command_guard, guard
from flask_migrate_compat.state import app_engines

BACKENDS = ["sqlite", "postgresql", "mysql"]
WAITING = "Waiting for the migration lock on the "

#: The longest any test here may wait for a lock.
BOUND = 10


@pytest.fixture(autouse=True)
def bounded():
    """No test here waits without bound: guards without a timeout are taken here, so a
    lock that is never released, or a timeout setting that is ignored, would otherwise
    wait for ever. SIGALRM (main thread: the tests' own) ends the wait with an error
    after :data:`BOUND` seconds."""
    def expire(signum, frame):
        raise TimeoutError(f"still waiting after {BOUND} s: a lock was not released, "
                           "or a timeout was not applied")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, BOUND)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def described(database) -> str:
    url = sa.engine.make_url(database.url)
    if database.kind == "sqlite":
        return f"SQLite database {os.path.realpath(url.database)!r}"
    return f"{database.kind} database {database.name!r} on {url.host}:{url.port}"


def enters_at_once(engines, **kwargs) -> bool:
    """Whether a guard with ``timeout=0`` gets in (False: it timed out)."""
    out = io.StringIO()
    try:
        with guard(engines, timeout=0, stderr=out, **kwargs):
            pass
    except MigrateError:
        return False
    assert out.getvalue() == ""
    return True


@pytest.mark.parametrize("kind", BACKENDS)
def test_guard_waits_times_out_and_releases(make_database, kind):
    database = make_database(kind)
    engines = {"": database.engine()}
    with guard(engines):
        out = io.StringIO()
        start = time.monotonic()
        with pytest.raises(MigrateError) as caught:
            with guard(engines, timeout=0.3, stderr=out):
                pytest.fail("a second guard got in while the lock was held")
        waited = time.monotonic() - start
        assert str(caught.value) == (
            f"timed out after 0.3 s waiting for the migration lock on the "
            f"{described(database)}: another process is still migrating this database "
            "(retry later, raise --lock-timeout, or stop the other process)")
        assert 0.3 <= waited < 0.9, waited
        (line,) = out.getvalue().splitlines(keepends=True)
        assert line.startswith(WAITING + described(database)) and line.endswith("\n")

        # What does not meet this lock: no lock, another version table or schema.
        assert enters_at_once(engines, lock=False)
        assert enters_at_once(engines, version_table="other_version")
        assert enters_at_once(engines, version_table_schema="other")
        assert not enters_at_once(engines)
        if kind != "sqlite":
            # The key is the server's name for the database: another URL of the same
            # database meets the lock, another database on the server does not.
            url = sa.engine.make_url(database.url)
            same = url.set(host="localhost") if kind == "postgresql" else \
                url.set(drivername="mariadb+pymysql")
            assert not enters_at_once({"": sa.create_engine(same, poolclass=sa.pool.NullPool)})
            assert enters_at_once({"": make_database(kind, label="other").engine()})
    assert enters_at_once(engines)


def test_guard_locks_every_database(make_database):
    """A multidb command takes the lock of each of its databases: the second file's
    lock held elsewhere keeps it waiting, and the line names that file."""
    main, other = make_database("sqlite", "main"), make_database("sqlite", "other")
    with guard({"": other.engine()}):
        out = io.StringIO()
        with pytest.raises(MigrateError) as caught:
            with guard({"": main.engine(), "other": other.engine()}, timeout=0, stderr=out):
                pytest.fail("entered while one of the databases was locked")
        assert f"lock on the {described(other)}: " in str(caught.value)
        assert enters_at_once({"": main.engine()})


def test_in_memory_sqlite_takes_no_lock(tmp_path, monkeypatch):
    """A database only this process can see needs no lock, and gets no lock file."""
    monkeypatch.chdir(tmp_path)
    for url in ("sqlite://", "sqlite:///:memory:", "sqlite:///file:mem?mode=memory&uri=true"):
        engines = {"": sa.create_engine(url, poolclass=sa.pool.NullPool)}
        with guard(engines):
            assert enters_at_once(engines), url
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kind", BACKENDS)
def test_guard_releases_on_every_way_out(make_database, kind):
    database = make_database(kind)
    # The application's engine keeps its connections in a pool, as Flask-SQLAlchemy's
    # do: a lock left on a pooled connection stays held after the guard. Whether it is
    # free is asked by another session (a NullPool engine), as another process would.
    pooled = sa.create_engine(database.url)
    engines, elsewhere = {"": pooled}, {"": database.engine()}
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error):
            with guard(engines):
                raise error("out")
        assert enters_at_once(elsewhere), error
    with guard(engines):
        pass
    assert enters_at_once(elsewhere)

    # SIGTERM while the guard is held: Terminated (a KeyboardInterrupt), the lock
    # released, the process's own SIGTERM handler back in place.
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated) as caught:
        with guard(engines):
            assert signal.getsignal(signal.SIGTERM) is not before
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
    assert isinstance(caught.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGTERM) is before
    assert enters_at_once(elsewhere)
    pooled.dispose()


def test_guard_waits_until_the_holder_lets_go(make_database):
    """A waiting guard gets in once the holder leaves, within a poll interval."""
    import threading

    database = make_database("sqlite")
    engines = {"": database.engine()}
    released = threading.Event()

    def hold():
        with guard(engines):
            ready.set()
            time.sleep(0.5)
            released.set()

    ready = threading.Event()
    holder = threading.Thread(target=hold)
    holder.start()
    assert ready.wait(10)
    out = io.StringIO()
    with guard(engines, stderr=out):  # no timeout: as long as it takes
        assert released.is_set()
    holder.join(10)
    assert out.getvalue().startswith(WAITING)


@pytest.fixture
def app(make_database):
    """An application on a SQLite file and a guard holding its lock meanwhile."""
    database = make_database("sqlite")
    app = Flask("guarded")
    app.config["SQLALCHEMY_DATABASE_URI"] = database.url
    app.config["SQLALCHEMY_BINDS"] = {"other": f"{database.url}.other"}
    app.config["SQLALCHEMY_TRACK_MODIFICATIONS"] = False  # Flask-SQLAlchemy 2 warns otherwise
    db = SQLAlchemy(app)
    Migrate(app, db)
    with app.app_context():
        # app_engines: Flask-SQLAlchemy 2 has no db.engines.
        with guard({"": app_engines(app, db)[""]}):
            yield app


def test_command_guard_settings(app):
    def waits(**kwargs) -> str:
        """Enter command_guard(**kwargs) while the default database's lock is held:
        "entered", or the error."""
        try:
            with command_guard(**kwargs):
                return "entered"
        except MigrateError as exc:
            return str(exc)

    assert waits(lock_timeout=0).startswith("timed out after 0 s")
    app.config["MIGRATE_LOCK_TIMEOUT"] = "0.2"
    assert waits().startswith("timed out after 0.2 s")
    assert waits(lock_timeout=0).startswith("timed out after 0 s")  # the option wins
    for bad in ("abc", -1, math.nan, None, [1]):
        app.config["MIGRATE_LOCK_TIMEOUT"] = bad
        if bad is None:
            assert waits(lock_timeout=0).startswith("timed out")  # unset: no limit of its own
            continue
        assert waits() == ("the MIGRATE_LOCK_TIMEOUT setting must be a number of seconds "
                           f"(0 or more), not {bad!r}")
    app.config["MIGRATE_LOCK_TIMEOUT"] = 0
    assert waits(sql=True) == "entered"
    assert waits(no_lock=True) == "entered"
    assert waits(binds=["other"]) == "entered"  # only the migrated databases
    assert waits(binds=["", "other"]).startswith("timed out after 0 s")
    # The key has the version table and schema Migrate() gives env.py.
    configure_args = app.extensions["migrate"].configure_args
    for name, value in (("version_table", "custom_version"), ("version_table_schema", "s")):
        configure_args[name] = value
        assert waits() == "entered", name
        del configure_args[name]
    assert waits().startswith("timed out after 0 s")
    app.config["MIGRATE_LOCK"] = False
    assert waits() == "entered"
    app.config["MIGRATE_LOCK"] = True
    app.extensions["migrate"].migrate.lock = False
    assert waits() == "entered"
