"""The migration lock: one ``db upgrade``/``downgrade``/``stamp`` at a time per database.

Deploy pipelines often start several containers at once, each running ``db upgrade``
against the same database. Alembic has no lock of its own, so concurrent runs race:
some die on "relation already exists" / "duplicate key" errors and a database without
transactional DDL can be left half-migrated. :func:`guard` serialises them:

* PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``);
* MySQL/MariaDB: a named lock (``GET_LOCK``);
* SQLite: an OS file lock (``fcntl.flock``; the filelock library on Windows) on a
  hidden file beside the database (``.<database file>.<version table>.lock``; the
  file stays, the lock does not), or in a per-user folder when the database's folder
  is read-only.

The lock is taken on a connection of its own, kept apart from the one env.py migrates
on and held in autocommit mode so that it never holds a snapshot or a table lock. Its
key is the database the server reports (or the SQLite file) plus the version table and
its schema, so two applications on one server, or one database with two version
tables, do not block each other. A process that has to wait says so on stderr, naming
the holder (:class:`.holder.LockHolder`: a PostgreSQL lock session names itself through
``application_name``; MySQL/MariaDB show the holding connection; a SQLite holder
writes a ``.holder`` file beside the lock file), polls, and then runs its command:
usually it finds the database at head and does nothing.

The lock is released on every way out of the command: a normal return, an exception,
Ctrl-C (``KeyboardInterrupt``) and SIGTERM, which :func:`guard` turns into
:class:`~.errors.Terminated` while the command runs. When the process dies anyway (SIGKILL, a
crash), the server drops the lock with the session and the OS drops the file lock.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import signal
import sys
import threading
import time
import typing as t

try:
    import fcntl
except ImportError:  # Windows: the filelock library instead (see _FileLock)
    fcntl = None  # type: ignore[assignment]

from .errors import (
    MigrateError, Terminated, describe_database, redact, sqlite_folder_missing_message,
)
from .state import app_engines, get_state, sqlite_file

if t.TYPE_CHECKING:  # pragma: no cover
    from .holder import LockHolder

__all__ = [
    "POLL_INTERVAL", "Terminated", "app_engines", "command_guard",
    "current_holder", "guard",
]

#: Seconds between two attempts to take a lock held by another process.
POLL_INTERVAL = 0.1

#: Longest lock name MySQL accepts in ``GET_LOCK`` (5.7 and later, MariaDB).
_MYSQL_LOCK_NAME_MAX = 64


#: Suffix of the file beside a SQLite lock file in which its holder describes itself.
HOLDER_SUFFIX = ".holder"

_CURRENT_DATABASE = {
    "postgresql": "SELECT current_database()",
    "mysql": "SELECT DATABASE()",
    "mariadb": "SELECT DATABASE()",
}


# -- who holds a lock ------------------------------------------------------------------


def holder_name(command: str) -> str:
    """What a process holding the lock calls itself:
    ``flask-migrate-compat db <command> pid <pid> on <host>`` (at most 63 characters,
    PostgreSQL's limit for ``application_name``: a long host name is cut, never the
    pid). "pid" says which number is the process id: next to it stands the server's
    own process id of the session.

    :param command: the command taking the lock (``upgrade``...).
    """
    import socket

    text = f"flask-migrate-compat db {command} pid {os.getpid()} on {socket.gethostname()}"
    return text if len(text) <= 63 else text[:63]


def server_lock_ids(backend: str, database: str, version_table: str,
                    schema: str | None) -> tuple[str, int, str]:
    """The identity of a server lock: ``(key, PostgreSQL key, MySQL lock name)``.

    :param backend: ``postgresql``, ``mysql`` or ``mariadb``.
    :param database: the server's own name for the database (``current_database()``
        / ``DATABASE()``), so that two URLs reaching it differently (localhost /
        127.0.0.1, another user, SQLAlchemy's mysql:// or mariadb:// dialect) still
        share one lock.
    :param version_table: the version table's name.
    :param schema: its schema, or ``None``.
    """
    server = "postgresql" if backend == "postgresql" else "mysql"
    key = f"{server}:{database}:{schema or ''}.{version_table}"
    import hashlib  # here: SQLite runs never pay for loading OpenSSL

    digest = hashlib.sha256(key.encode("utf-8")).digest()
    # PostgreSQL takes a signed 64-bit key; MySQL a name of up to 64 characters.
    pg_key = int.from_bytes(digest[:8], "big", signed=True)
    return key, pg_key, ("flask_migrate:" + digest.hex())[:_MYSQL_LOCK_NAME_MAX]


#: Every granted bigint advisory lock of the current database, with its session, and
#: the database's name (one row with NULL lock columns when there is none). A bigint
#: key shows in pg_locks as classid (high 32 bits), objid (low 32 bits), objsubid 1.
_PG_ADVISORY_LOCKS = (
    "SELECT current_database(), l.classid::bigint, l.objid::bigint, l.pid, "
    "host(a.client_addr), a.application_name, a.query, a.state_change, a.backend_start "
    "FROM (SELECT 1) AS one LEFT JOIN pg_locks l ON l.locktype = 'advisory' "
    "AND l.granted AND l.objsubid = 1 AND l.database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database()) "
    "LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
)


def _pg_holder(connection: t.Any, version_table: str, schema: str | None) -> LockHolder | None:
    """Who holds a PostgreSQL migration lock, in one round trip (:data:`_PG_ADVISORY_LOCKS`).
    The lock connection runs nothing after ``pg_try_advisory_lock``, so its
    ``state_change`` is when it got the lock."""
    import sqlalchemy as sa

    rows = connection.execute(sa.text(_PG_ADVISORY_LOCKS)).all()
    if not rows:
        return None
    _key, pg_key, _name = server_lock_ids("postgresql", rows[0][0], version_table, schema)
    wanted = ((pg_key >> 32) & 0xFFFFFFFF, pg_key & 0xFFFFFFFF)
    for _db, high, low, pid, client, name, query, state_change, backend_start in rows:
        if (high, low) != wanted:
            continue
        since = state_change if query and "pg_try_advisory_lock" in query else backend_start
        from .holder import LockHolder  # only when there is one: see holder.py

        return LockHolder(
            name=redact(name) if name else None, backend_pid=pid,
            # NULL client_addr: a Unix socket; NULL query too: not ours to see.
            client=client or ("local socket" if query is not None else None),
            since=since.astimezone() if since is not None else None,
        )
    return None


def _mysql_holder(connection: t.Any, mysql_name: str) -> LockHolder | None:
    """Who holds a MySQL/MariaDB named lock: ``IS_USED_LOCK`` and the process list."""
    import sqlalchemy as sa

    holder_id = connection.execute(sa.text("SELECT IS_USED_LOCK(:n)"),
                                   {"n": mysql_name}).scalar()
    if holder_id is None:
        return None
    # TIME: seconds in the current state; the lock connection sleeps after GET_LOCK.
    row = connection.execute(sa.text(
        "SELECT HOST, TIME, COMMAND FROM information_schema.PROCESSLIST WHERE ID = :i"
    ), {"i": holder_id}).first()
    since = None
    client = None
    if row is not None:
        client = row[0]
        if row[2] == "Sleep" and row[1] is not None:
            since = datetime.datetime.now().astimezone() - datetime.timedelta(seconds=row[1])
    from .holder import LockHolder  # only when there is one: see holder.py

    return LockHolder(connection_id=int(holder_id), client=client, since=since)


def _write_holder_file(lock_path: str, name: str) -> None:
    """Beside a SQLite lock file just taken, say who holds it (a JSON object with
    the holder's name, pid, host and start time). Not in the lock file itself, which
    is opened read-only (so that another user can share it) and which filelock
    before 3.12, used on Windows, truncated at every attempt to take the lock."""
    import json
    import socket

    record = {"name": name, "pid": os.getpid(), "host": socket.gethostname(),
              "since": time.time()}
    with contextlib.suppress(OSError):
        with open(lock_path + HOLDER_SUFFIX, "w", encoding="utf-8") as f:
            json.dump(record, f)


def sqlite_lock_holder(lock_path: str) -> LockHolder | None:
    """Who holds a SQLite database's lock, from the file its holder wrote.

    :param lock_path: the lock file (:func:`sqlite_lock_path`).
    :returns: ``None`` when no live holder is recorded: no file, or one left by a
        process of this host that no longer runs (killed while holding the lock).
    """
    import json
    import socket

    try:
        with open(lock_path + HOLDER_SUFFIX, encoding="utf-8") as f:
            record = json.load(f)
        pid = int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if record.get("host") == socket.gethostname():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass  # alive, but another user's
    from .holder import LockHolder  # only now: see holder.py

    since = record.get("since")
    return LockHolder(
        name=str(record.get("name") or "") or None, pid=pid,
        client=str(record.get("host")) if record.get("host") else None,
        since=(datetime.datetime.fromtimestamp(float(since)).astimezone()
               if isinstance(since, (int, float)) else None),
    )


def current_holder(connection: t.Any, version_table: str = "alembic_version",
                   schema: str | None = None) -> LockHolder | None:
    """Who holds the migration lock of the database ``connection`` is on, without
    taking or waiting for it (``db status``, ``db doctor``).

    :param connection: a SQLAlchemy connection to that database (a SQLite
        database's lock is found from its path; nothing is asked of the connection).
    :param version_table: the version table's name (part of the lock key).
    :param schema: the version table's schema, or ``None``.
    :returns: the holder, or ``None`` when nobody holds it or the server does not
        show it.
    """
    url = connection.engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is None:
            return None
        name = f"{schema}.{version_table}" if schema else version_table
        return sqlite_lock_holder(sqlite_lock_path(os.path.realpath(path), name))
    if backend not in _CURRENT_DATABASE:
        return None
    import sqlalchemy as sa

    try:
        if backend == "postgresql":
            return _pg_holder(connection, version_table, schema)
        database = connection.execute(sa.text(_CURRENT_DATABASE[backend])).scalar()
        _key, _pg_key, mysql_name = server_lock_ids(backend, database, version_table, schema)
        return _mysql_holder(connection, mysql_name)
    except sa.exc.DBAPIError:
        return None


# -- lock backends ---------------------------------------------------------------------


class _Lock:
    """One database's lock. ``key`` orders and de-duplicates locks of one command."""

    key: str
    label: str

    def try_acquire(self) -> bool:  # pragma: no cover - abstract
        raise NotImplementedError

    def release(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def holder(self) -> LockHolder | None:  # pragma: no cover - abstract
        raise NotImplementedError


class _ServerLock(_Lock):
    """PostgreSQL advisory lock or MySQL/MariaDB named lock on a dedicated connection."""

    def __init__(self, engine: t.Any, version_table: str, schema: str | None,
                 holder_name: str = "") -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.backend = engine.url.get_backend_name()
        self.label = f"the {describe_database(engine.url)}"
        self._named = False
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
            if self.backend == "postgresql" and holder_name:
                # The session names itself (pg_stat_activity.application_name), so
                # that a waiting process can say who holds the lock; one round trip
                # with the query the lock needs anyway. Reset on release: the
                # connection goes back to the application's pool.
                database = self.connection.execute(self._sa.text(
                    "SELECT current_database(), set_config('application_name', :n, false)"
                ), {"n": holder_name}).first()[0]
                self._named = True
            else:
                database = self._scalar(_CURRENT_DATABASE[self.backend])
        except BaseException:
            self._discard()
            raise
        self._version_table, self._schema = version_table, schema
        self.key, self._pg_key, self._mysql_name = server_lock_ids(
            self.backend, database, version_table, schema
        )

    def _scalar(self, sql: str, **params: t.Any) -> t.Any:
        return self.connection.execute(self._sa.text(sql), params).scalar()

    def holder(self) -> LockHolder | None:
        try:
            if self.backend == "postgresql":
                return _pg_holder(self.connection, self._version_table, self._schema)
            return _mysql_holder(self.connection, self._mysql_name)
        except Exception:  # noqa: BLE001 - who holds it is a courtesy, never a failure
            return None

    def try_acquire(self) -> bool:
        if self.backend == "postgresql":
            return bool(self._scalar("SELECT pg_try_advisory_lock(:k)", k=self._pg_key))
        # GET_LOCK returns 1 (taken), 0 (timed out) or NULL (error).
        return self._scalar("SELECT GET_LOCK(:n, 0)", n=self._mysql_name) == 1

    def release(self) -> None:
        try:
            if self.backend == "postgresql" and self._named:
                self._scalar(
                    "SELECT pg_advisory_unlock(:k), set_config('application_name', "
                    "(SELECT reset_val FROM pg_settings WHERE name = 'application_name'), "
                    "false)", k=self._pg_key,
                )
            elif self.backend == "postgresql":
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
    """SQLite: an OS-level lock on a file of its own.

    The file is hidden beside the database (``.<database file>.<version table>.lock``).
    Where that folder is not writable (a read-only deploy of the project), it goes to
    a per-user folder instead, named after the database's real path; a process that
    cannot create either runs unlocked, since it could not write that database's
    journal beside it either.

    On POSIX systems the lock is ``fcntl.flock`` on that file, the primitive the
    filelock library uses there too; elsewhere (Windows) it is filelock's. Why not
    filelock everywhere: importing it costs ~30 million instructions (filelock 4.2,
    ~7 ms, measured with callgrind), more than all the rest this package adds to
    ``db upgrade``, which would then be slower than Flask-Migrate 4.1's
    (bench/bench_upgrade.py). The OS releases the lock when the process ends, however
    it ends.
    """

    def __init__(self, path: str, version_table: str, schema: str | None,
                 holder_name: str = "") -> None:
        path = os.path.realpath(path)
        folder = os.path.dirname(path)
        # A lock file must not create a missing folder: SQLite does not create it for
        # the database either. Fail as SQLite would instead of quietly making a new
        # folder (and an empty database) from a mistyped path.
        if not os.path.isdir(folder):
            raise MigrateError(sqlite_folder_missing_message(path))
        name = f"{schema}.{version_table}" if schema else version_table
        self.key = f"sqlite:{path}:{name}"
        self.label = f"the SQLite database {path!r}"
        self.path = sqlite_lock_path(path, name)
        self._holder_name = holder_name
        self._fd: int | None = None
        self._filelock: t.Any = None
        if fcntl is None:
            import filelock

            self._filelock = filelock.FileLock(self.path)

    def try_acquire(self) -> bool:
        if not self._take():
            return False
        if self._holder_name:
            _write_holder_file(self.path, self._holder_name)
        return True

    def _take(self) -> bool:
        if self._filelock is not None:
            import filelock

            try:
                self._filelock.acquire(timeout=0)
            except filelock.Timeout:
                return False
            return True
        # Read-only is enough for flock, and lets another user share the file.
        fd = os.open(self.path, os.O_RDONLY | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return True

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path + HOLDER_SUFFIX)
        if self._filelock is not None:
            self._filelock.release()
        elif self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor releases the flock

    def holder(self) -> LockHolder | None:
        return sqlite_lock_holder(self.path)


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


def _make_lock(engine: t.Any, version_table: str, schema: str | None,
               holder_name: str = "") -> _Lock | None:
    url = engine.url
    backend = url.get_backend_name()
    if backend == "sqlite":
        path = sqlite_file(url)
        if path is None:
            return None  # an in-memory database belongs to this process alone
        lock = _FileLock(path, version_table, schema, holder_name)
        try:
            os.makedirs(os.path.dirname(lock.path), exist_ok=True)
        except OSError:
            return None  # nowhere to put it: see _FileLock
        return lock
    if backend in ("postgresql", "mysql", "mariadb"):
        return _ServerLock(engine, version_table, schema, holder_name)
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
                holder = lock.holder()
                by = holder.describe() if holder is not None else "another process"
                out.write(f"Waiting for the migration lock on {lock.label}, held by {by}...\n")
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
    command: str = "",
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
    :param stderr: where to say that the process waits (and for whom); default
        ``sys.stderr``.
    :param command: the command taking the lock (``upgrade``...): the holder
        describes itself with it (:func:`holder_name`) to processes that wait.
    :raises MigrateError: when a database cannot be reached for its lock, or when
        ``timeout`` runs out; the front ends exit with code 1.
    :raises Terminated: on SIGTERM, after releasing the locks.
    """
    out = stderr if stderr is not None else sys.stderr
    with _sigterm_raises():
        held: list[_Lock] = []
        lock_of: dict[int, _Lock] = {}  # id(engine) -> the lock of its database
        try:
            if lock:
                locks: dict[str, _Lock] = {}
                try:
                    name = holder_name(command or "migration")
                    for engine in engines.values():
                        made = _make_lock(engine, version_table, version_table_schema,
                                          name)
                        if made is not None:
                            lock_of[id(engine)] = locks.setdefault(made.key, made)
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
            with _cancelled_on_interrupt(engines, lock_of):
                yield
        finally:
            for made in reversed(held):
                # An error releasing one lock must not keep the others held.
                with contextlib.suppress(Exception):
                    made.release()


@contextlib.contextmanager
def _cancelled_on_interrupt(engines: t.Mapping[str, t.Any],
                            lock_of: t.Mapping[int, _Lock]) -> t.Iterator[None]:
    """MySQL/MariaDB: when Ctrl-C or SIGTERM interrupts the block, cancel on the
    server the statements that the command's connections are still running, before
    the lock is released.

    psycopg cancels a PostgreSQL statement itself when interrupted; PyMySQL does not,
    so without this a statement such as a long ``ALTER TABLE`` would go on running
    after the lock is released, next to the next process's migration. The connections
    are recorded as the engines' pools hand them out (their server thread id comes
    with the connection, no query needed), and ``KILL QUERY`` is sent from the lock's
    own connection.
    """
    import sqlalchemy as sa

    servers = {id(engine): engine for engine in engines.values()
               if engine.url.get_backend_name() in ("mysql", "mariadb")
               and isinstance(lock_of.get(id(engine)), _ServerLock)}
    if not servers:
        yield
        return
    running: dict[int, tuple[int, int]] = {}  # id(DBAPI connection) -> (engine, thread)

    def listeners(engine: t.Any) -> tuple[t.Callable[..., None], t.Callable[..., None]]:
        def checkout(dbapi_connection: t.Any, record: t.Any, proxy: t.Any) -> None:
            thread_id = getattr(dbapi_connection, "thread_id", None)
            if callable(thread_id):
                running[id(dbapi_connection)] = (id(engine), thread_id())

        def checkin(dbapi_connection: t.Any, record: t.Any) -> None:
            running.pop(id(dbapi_connection), None)

        return checkout, checkin

    installed = []
    for engine in servers.values():
        checkout, checkin = listeners(engine)
        sa.event.listen(engine, "checkout", checkout)
        sa.event.listen(engine, "checkin", checkin)
        installed += [(engine, "checkout", checkout), (engine, "checkin", checkin)]
    try:
        yield
    except KeyboardInterrupt:
        for engine_id, thread_id in list(running.values()):
            server_lock = t.cast(_ServerLock, lock_of[engine_id])
            with contextlib.suppress(Exception):  # it may have finished meanwhile
                server_lock._scalar(f"KILL QUERY {int(thread_id)}")
        raise
    finally:
        for engine, event, function in installed:
            sa.event.remove(engine, event, function)


def command_guard(
    sql: bool = False,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    binds: t.Iterable[str] | None = None,
    command: str = "",
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
    :param command: the command's name, for :func:`holder_name`.
    :returns: a context manager to run the Alembic command in.
    :raises MigrateError: without an application context or Migrate extension, or
        for a ``MIGRATE_LOCK_TIMEOUT`` setting that is not a number of seconds, or a
        ``MIGRATE_LOCK`` setting that is no yes/no (:func:`.config.flag_setting`).
    """
    from flask import current_app

    from .config import flag_setting

    state = get_state()
    if sql:
        return contextlib.nullcontext()
    config = current_app.config
    enabled = (
        not no_lock
        and getattr(state.migrate, "lock", True)
        and flag_setting(config, "MIGRATE_LOCK", True)
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
        command=command,
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
