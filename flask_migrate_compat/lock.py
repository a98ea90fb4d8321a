"""The migration lock: one ``db upgrade``/``downgrade``/``stamp`` at a time per database.

Deploy pipelines often start several containers at once, each running ``db upgrade``
against the same database. Alembic has no lock of its own, so concurrent runs race:
some die on "relation already exists" / "duplicate key" errors and a database without
transactional DDL can be left half-migrated. :func:`guard` serialises them:

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``);
* MySQL/MariaDB: a named lock (``GET_LOCK``);
* SQLite: an OS file lock (the ``filelock`` library) on a hidden file beside the
  database (``.<database file>.<version table>.lock``; the file stays, the lock does
  not), or in a per-user folder when the database's folder is read-only.

The lock is taken on a connection of its own, kept apart from the one env.py migrates
on and held in autocommit mode so that it never holds a snapshot or a table lock. Its
key is the database the server reports (or the SQLite file) plus the version table and
its schema, so two applications on one server, or one database with two version
tables, do not block each other. A process that has to wait says so on stderr, polls,
and then runs its command: usually it finds the database at head and does nothing.

The lock is released on every way out of the command: a normal return, an exception,
Ctrl-C (``KeyboardInterrupt``) and SIGTERM, which :func:`guard` turns into
:class:`~.errors.Terminated` while the command runs. When the process dies anyway (SIGKILL, a
crash), the server drops the lock with the session and the OS drops the file lock.
"""
from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import typing as t

from .errors import MigrateError, Terminated, describe_database
from .state import app_engines, get_state

__all__ = ["POLL_INTERVAL", "Terminated", "app_engines", "command_guard", "guard"]

#: Seconds between two attempts to take a lock held by another process.
POLL_INTERVAL = 0.1

#: Longest lock name MySQL accepts in ``GET_LOCK`` (5.7 and later, MariaDB).
_MYSQL_LOCK_NAME_MAX = 64


# -- lock backends ---------------------------------------------------------------------


class _Lock:
    """One database's lock. ``key`` orders and de-duplicates locks of one command."""

    key: str
    label: str

    def try_acquire(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class _ServerLock(_Lock):
    """PostgreSQL advisory lock or MySQL/MariaDB named lock on a dedicated connection."""

    def __init__(self, engine: t.Any, version_table: str, schema: str | None) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.backend = engine.url.get_backend_name()
        self.label = f"the {describe_database(engine.url)}"
        try:
            connection = engine.connect()
        except sa.exc.DBAPIError as exc:
            # errors.error_message names this database (and no other) in the line.
            exc.fmc_database_url = engine.url
            raise
        # Autocommit: the lock connection must not sit "idle in transaction", which
        # would hold a snapshot (PostgreSQL's CREATE INDEX CONCURRENTLY waits for it).
        self.connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        try:
            if self.backend == "postgresql":
                database = self._scalar("SELECT current_database()")
            else:
                database = self._scalar("SELECT DATABASE()")
        except BaseException:
            self._discard()
            raise
        # The server's own name for the database, so that two URLs reaching it
        # differently (localhost / 127.0.0.1, another user, SQLAlchemy's mysql:// or
        # mariadb:// dialect) still share one lock.
        server = "postgresql" if self.backend == "postgresql" else "mysql"
        self.key = f"{server}:{database}:{schema or ''}.{version_table}"
        import hashlib  # here: SQLite runs never pay for loading OpenSSL

        digest = hashlib.sha256(self.key.encode("utf-8")).digest()
        # PostgreSQL takes a signed 64-bit key; MySQL a name of up to 64 characters.
        self._pg_key = int.from_bytes(digest[:8], "big", signed=True)
        self._mysql_name = ("flask_migrate:" + digest.hex())[:_MYSQL_LOCK_NAME_MAX]

    def _scalar(self, sql: str, **params: t.Any) -> t.Any:
        return self.connection.execute(self._sa.text(sql), params).scalar()

    def try_acquire(self) -> bool:
        if self.backend == "postgresql":
            return bool(self._scalar("SELECT pg_try_advisory_lock(:k)", k=self._pg_key))
        # GET_LOCK returns 1 (taken), 0 (timed out) or NULL (error).
        return self._scalar("SELECT GET_LOCK(:n, 0)", n=self._mysql_name) == 1

    def release(self) -> None:
        try:
            if self.backend == "postgresql":
                self._scalar("SELECT pg_advisory_unlock(:k)", k=self._pg_key)
            else:
                self._scalar("SELECT RELEASE_LOCK(:n)", n=self._mysql_name)
        except BaseException:
            # The server releases a session's locks when the session ends: make sure
            # this connection is closed rather than returned to the pool.
            self._discard()
            raise
        self.connection.close()

    def _discard(self) -> None:
        with contextlib.suppress(Exception):
            self.connection.invalidate()
        with contextlib.suppress(Exception):
            self.connection.close()


class _FileLock(_Lock):
    """SQLite: an OS-level lock (``filelock``) on a file of its own.

    The file is hidden beside the database (``.<database file>.<version table>.lock``).
    Where that folder is not writable (a read-only deploy of the project), it goes to
    a per-user folder instead, named after the database's real path; a process that
    cannot create either runs unlocked, since it could not write that database's
    journal beside it either.

    Importing filelock costs ~5 ms in a command process (asyncio, which it needs, is
    already loaded by then): within the lock's budget (bench/bench_upgrade.py).
    """

    def __init__(self, path: str, version_table: str, schema: str | None) -> None:
        import filelock

        path = os.path.realpath(path)
        folder = os.path.dirname(path)
        # filelock creates missing parent folders for its lock file; SQLite does not
        # create them for the database. Fail as SQLite would instead of quietly
        # making a new folder (and an empty database) from a mistyped path.
        if not os.path.isdir(folder):
            raise MigrateError(
                f"cannot connect to the SQLite database {path!r}: unable to open "
                f"database file (folder {folder!r} does not exist)"
            )
        name = f"{schema}.{version_table}" if schema else version_table
        self.key = f"sqlite:{path}:{name}"
        self.label = f"the SQLite database {path!r}"
        self.path = sqlite_lock_path(path, name)
        self._timeout = filelock.Timeout
        self._lock = filelock.FileLock(self.path)

    def try_acquire(self) -> bool:
        try:
            self._lock.acquire(timeout=0)
        except self._timeout:
            return False
        return True

    def release(self) -> None:
        self._lock.release()


def sqlite_lock_path(database: str, name: str = "alembic_version") -> str:
    """Where the migration lock of a SQLite database lives.

    :param database: the database file's real path.
    :param name: the version table (``schema.table`` when it has a schema).
    :returns: ``.<file>.<name>.lock`` beside the database when that folder is
        writable, else a file in the per-user folder :func:`user_lock_folder`, named
        after a digest of the database's path.
    """
    folder, base = os.path.split(database)
    if os.access(folder, os.W_OK):
        return os.path.join(folder, f".{base}.{name}.lock")
    import hashlib

    digest = hashlib.sha256(f"{database}\0{name}".encode("utf-8")).hexdigest()[:32]
    return os.path.join(user_lock_folder(), f"{digest}.lock")


def user_lock_folder() -> str:
    """The per-user folder for SQLite lock files whose database folder is read-only:
    ``$XDG_RUNTIME_DIR/flask-migrate-compat``, else
    ``~/.cache/flask-migrate-compat/locks``."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "flask-migrate-compat")
    return os.path.join(os.path.expanduser("~"), ".cache", "flask-migrate-compat", "locks")


def _make_lock(engine: t.Any, version_table: str, schema: str | None) -> _Lock | None:
    url = engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = url.database
        if not path or path == ":memory:" or path.startswith("file:"):
            return None  # an in-memory database belongs to this process alone
        lock = _FileLock(path, version_table, schema)
        try:
            os.makedirs(os.path.dirname(lock.path), exist_ok=True)
        except OSError:
            return None  # nowhere to put it: see _FileLock
        return lock
    if backend in ("postgresql", "mysql", "mariadb"):
        return _ServerLock(engine, version_table, schema)
    return None  # no lock primitive we know of: run unguarded, as Alembic does


# -- the guard -------------------------------------------------------------------------


@contextlib.contextmanager
def _sigterm_raises() -> t.Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs (main thread only:
    Python runs signal handlers there and nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: t.Any) -> None:
        raise Terminated(f"terminated by signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _acquire_all(locks: list[_Lock], timeout: float | None, out: t.TextIO) -> None:
    """Take every lock in order, waiting for each; see :func:`guard`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for lock in locks:
        said = False
        while not lock.try_acquire():
            if not said:
                out.write(
                    f"Waiting for the migration lock on {lock.label} "
                    "held by another process...\n"
                )
                out.flush()
                said = True
            if deadline is not None and time.monotonic() >= deadline:
                raise MigrateError(
                    f"timed out after {timeout:g} s waiting for the migration lock on "
                    f"{lock.label}: another process is still migrating this database "
                    "(retry later, raise --lock-timeout, or stop the other process)"
                )
            pause = POLL_INTERVAL
            if deadline is not None:
                pause = max(0.0, min(pause, deadline - time.monotonic()))
            time.sleep(pause)


@contextlib.contextmanager
def guard(
    engines: t.Mapping[str, t.Any],
    version_table: str = "alembic_version",
    version_table_schema: str | None = None,
    lock: bool = True,
    timeout: float | None = None,
    stderr: t.TextIO | None = None,
) -> t.Iterator[None]:
    """Run a migration command under the migration lock of every database in
    ``engines``.

    Locks are taken in a fixed order (sorted by key), so that two processes guarding
    the same databases cannot deadlock, and released in reverse order on every way
    out, including :class:`KeyboardInterrupt` and SIGTERM (raised as
    :class:`Terminated` inside the block).

    :param engines: ``{bind name: Engine}`` of the databases the command migrates
        (``""`` for the default one, as :func:`app_engines` returns); engines
        reaching one database share one lock.
    :param version_table: the version table's name (part of the lock key).
    :param version_table_schema: the version table's schema, or ``None``.
    :param lock: ``False`` runs the block without any lock.
    :param timeout: seconds to wait for a lock held by another process; ``None``
        waits for as long as it takes.
    :param stderr: where to say that the process waits; default ``sys.stderr``.
    :raises MigrateError: when a database cannot be reached for its lock, or when
        ``timeout`` runs out; the front ends exit with code 1.
    :raises Terminated: on SIGTERM, after releasing the locks.
    """
    out = stderr if stderr is not None else sys.stderr
    with _sigterm_raises():
        held: list[_Lock] = []
        try:
            if lock:
                locks: dict[str, _Lock] = {}
                try:
                    for engine in engines.values():
                        made = _make_lock(engine, version_table, version_table_schema)
                        if made is not None:
                            locks.setdefault(made.key, made)
                except BaseException:
                    for made in locks.values():
                        if isinstance(made, _ServerLock):
                            made._discard()
                    raise
                ordered = [locks[key] for key in sorted(locks)]
                try:
                    for made in ordered:
                        _acquire_all([made], timeout, out)
                        held.append(made)
                finally:
                    for made in ordered:
                        if made not in held and isinstance(made, _ServerLock):
                            made._discard()
            yield
        finally:
            for made in reversed(held):
                # An error releasing one lock must not keep the others held.
                with contextlib.suppress(Exception):
                    made.release()


def command_guard(
    sql: bool = False,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    binds: t.Iterable[str] | None = None,
) -> t.ContextManager[None]:
    """The :func:`guard` for a ``upgrade``/``downgrade``/``stamp`` command of the
    current application (needs an application context).

    The lock is on unless ``sql`` (offline mode touches no database), ``no_lock``
    (``--no-lock``), ``Migrate(..., lock=False)`` or the ``MIGRATE_LOCK = False``
    application setting says otherwise. ``lock_timeout`` defaults to the
    ``MIGRATE_LOCK_TIMEOUT`` setting (seconds; unset: wait without limit).

    :param sql: the command runs in offline mode.
    :param no_lock: do not take the lock.
    :param lock_timeout: seconds to wait for the lock, or ``None``.
    :param binds: the databases the command migrates (``""`` for the default one);
        ``None`` for all of them. Only these are locked: a bind that env.py never
        touches may even be unreachable.
    :returns: a context manager to run the Alembic command in.
    :raises MigrateError: without an application context or Migrate extension, or
        for a ``MIGRATE_LOCK_TIMEOUT`` setting that is not a number of seconds.
    """
    from flask import current_app

    state = get_state()
    if sql:
        return contextlib.nullcontext()
    config = current_app.config
    enabled = (
        not no_lock
        and getattr(state.migrate, "lock", True)
        and bool(config.get("MIGRATE_LOCK", True))
    )
    if lock_timeout is None and config.get("MIGRATE_LOCK_TIMEOUT") is not None:
        lock_timeout = _seconds_setting(config, "MIGRATE_LOCK_TIMEOUT")
    engines = app_engines(current_app, state.db)
    if binds is not None:
        wanted = set(binds)
        engines = {name: engine for name, engine in engines.items() if name in wanted}
    return guard(
        engines,
        version_table=state.configure_args.get("version_table") or "alembic_version",
        version_table_schema=state.configure_args.get("version_table_schema"),
        lock=enabled,
        timeout=lock_timeout,
    )


def _seconds_setting(config: t.Mapping[str, t.Any], name: str) -> float:
    value = config[name]
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if not seconds >= 0:  # also rejects NaN
        raise MigrateError(
            f"the {name} setting must be a number of seconds (0 or more), not {value!r}"
        )
    return seconds
