"""``db status``: is every database at the head of the script directory?

Deploy scripts and readiness probes need that answer as an exit code. :func:`status`
returns the facts (per database: its current revisions, the pending ones in the order
``upgrade`` would apply them, who holds the migration lock, and what would stop
``upgrade``); :attr:`Status.exit_code` turns them into the documented code:

* ``0`` (:data:`AT_HEAD`): every database is at head;
* ``1`` (:data:`PENDING`): revisions are pending, and ``db upgrade`` would apply them;
* ``3`` (:data:`BLOCKED`): ``db upgrade`` cannot proceed as is (a version table naming
  a revision the folder lacks, several heads, a database that cannot be reached, a
  broken revision file, the relative SQLite path trap).

It writes nothing, takes no lock and does not wait for one. It runs no autogenerate
comparison. With the package's own env.py templates it does not even run env.py: it
reads each database's version table directly (:mod:`.version_table`), which costs
less than ``db current``. Any other env.py (a custom one, or an old Flask-Migrate
generation, which may name its version table itself) is run the way ``db current``
runs it, without writing.

Nothing here knows about Click or Flask-Script: the front ends format the result.
"""
from __future__ import annotations

import dataclasses
import os
import typing as t

from . import core, legacy
from .errors import MigrateError, error_message, list_revisions, unknown_revision_message
from .lock import current_holder
from .state import app_engines, error_context, get_state
from .version_table import VersionTable, connect, read_heads, version_tables

if t.TYPE_CHECKING:  # pragma: no cover
    # Only for annotations: holder.py is loaded when a holder is found (see its
    # docstring), which a status check of an unlocked database never pays for.
    from .holder import LockHolder

__all__ = ["AT_HEAD", "BLOCKED", "PENDING", "DatabaseStatus", "Revision", "Status",
           "status", "status_for"]

#: Exit code: every database is at head.
AT_HEAD = 0
#: Exit code: revisions are pending; ``db upgrade`` would apply them.
PENDING = 1
#: Exit code: ``db upgrade`` cannot proceed as is. (2 is a usage error.)
BLOCKED = 3


@dataclasses.dataclass(frozen=True)
class Revision:
    """A revision of the script directory.

    :ivar revision: its id.
    :ivar message: its message (the first line of its docstring), or ``None``.
    """

    revision: str
    message: str | None = None

    @classmethod
    def of(cls, script: t.Any) -> Revision:
        """From an Alembic :class:`~alembic.script.Script`."""
        doc = (script.doc or "").strip()
        return cls(script.revision, doc.splitlines()[0] if doc else None)

    def describe(self) -> str:
        """``ab12cd ('add users')``."""
        return list_revisions([(self.revision, self.message)])

    def as_dict(self) -> dict[str, t.Any]:
        return {"revision": self.revision, "message": self.message}


@dataclasses.dataclass
class DatabaseStatus:
    """One database (bind) against the script directory.

    :ivar bind: the bind name, ``""`` for the default database.
    :ivar database: the database, named without credentials.
    :ivar current: the revisions its version table holds (``()``: base).
    :ivar pending: the revisions ``upgrade`` would apply, in that order.
    :ivar problem: why ``upgrade`` cannot proceed on it, or ``None``.
    :ivar summary: the problem in a few words (what, not why or what to do), where
        ``problem`` is a long explanation; else ``None``.
    :ivar lock_holder: who holds its migration lock right now, or ``None``.
    :ivar version_table: its version table (``schema.name`` when it has a schema).
    """

    bind: str
    database: str
    current: tuple[str, ...] = ()
    pending: list[Revision] = dataclasses.field(default_factory=list)
    problem: str | None = None
    lock_holder: LockHolder | None = None
    summary: str | None = None
    version_table: str = "alembic_version"

    @property
    def exit_code(self) -> int:
        """:data:`BLOCKED`, :data:`PENDING` or :data:`AT_HEAD` for this database."""
        if self.problem is not None:
            return BLOCKED
        return PENDING if self.pending else AT_HEAD

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "bind": self.bind, "database": self.database,
            "version_table": self.version_table, "current": list(self.current),
            "pending": [rev.as_dict() for rev in self.pending], "problem": self.problem,
            "lock_holder": self.lock_holder.as_dict() if self.lock_holder else None,
            "exit_code": self.exit_code,
        }


@dataclasses.dataclass
class Status:
    """The result of :func:`status`.

    :ivar directory: the script directory.
    :ivar heads: its head revisions.
    :ivar databases: one :class:`DatabaseStatus` per database env.py migrates.
    :ivar problem: what stops ``upgrade`` on every database (several heads, the
        relative SQLite path trap, an env.py that failed), or ``None``.
    """

    directory: str
    heads: list[Revision]
    databases: list[DatabaseStatus]
    problem: str | None = None

    @property
    def problems(self) -> list[str]:
        """Every reason ``upgrade`` cannot proceed, the directory's first."""
        found = [self.problem] if self.problem else []
        return found + [db.problem for db in self.databases if db.problem]

    @property
    def exit_code(self) -> int:
        """:data:`BLOCKED` (3) when anything stops ``upgrade``, else :data:`PENDING`
        (1) when a database has pending revisions, else :data:`AT_HEAD` (0)."""
        if self.problems:
            return BLOCKED
        return max((db.exit_code for db in self.databases), default=AT_HEAD)

    @property
    def state(self) -> str:
        """``"at_head"``, ``"pending"`` or ``"blocked"``."""
        return {AT_HEAD: "at_head", PENDING: "pending", BLOCKED: "blocked"}[self.exit_code]

    def as_dict(self) -> dict[str, t.Any]:
        """Every fact as JSON-ready values (``db status --json``)."""
        return {
            "state": self.state, "exit_code": self.exit_code,
            "directory": self.directory, "heads": [rev.as_dict() for rev in self.heads],
            "problem": self.problem,
            "databases": [db.as_dict() for db in self.databases],
        }


def several_heads_message(heads: t.Sequence[Revision]) -> str:
    """The line for a script directory with several heads.

    :param heads: its heads.
    """
    return (
        f"the migrations folder has {len(heads)} heads, "
        f"{', '.join(rev.describe() for rev in heads)}: 'db upgrade' needs one; merge "
        "them into one with 'db merge heads -m \"merge heads\"', then run 'db upgrade'"
    )


def status(directory: str | os.PathLike[str] | None = None,
           x_arg: str | t.Sequence[str] | None = None) -> Status:
    """Compare every database's version table with the script directory's heads.

    Writes nothing, takes no lock, runs no autogenerate. Needs an application context.

    :param directory: the script directory; default: the extension's.
    :param x_arg: x-arguments, for an env.py that is not the package's own (which
        is run, as ``db current`` runs it).
    :returns: a :class:`Status`; its ``exit_code`` is what ``db status`` exits with.
    :raises MigrateError: no application context, no script directory, or broken
        revision files (a missing ``down_revision``, a duplicate revision id): ``db
        status`` reports these with exit code 3 too.
    """
    return status_for(core._script_config(directory, x_arg))


def status_for(config: t.Any) -> Status:
    """:func:`status` for the Alembic config of a script directory already loaded
    (:func:`.core._script_config`).

    :param config: the Alembic config.
    :returns: a :class:`Status`.
    """
    script = core._loaded_script(config)
    heads = [Revision.of(rev) for rev in script.get_revisions(script.get_heads())]
    result = Status(directory=script.dir, heads=heads, databases=[])
    if len(heads) > 1:
        result.problem = several_heads_message(heads)
    try:
        legacy.check_sqlite_paths()
    except MigrateError as exc:
        result.problem = result.problem or str(exc)
    if own_env_py(script.dir):
        found = _read_version_tables(core._migrated_binds(config))
    else:
        try:
            found = _run_env(config, script)
        except Exception as exc:  # noqa: BLE001 - reported, with exit code 3
            result.problem = result.problem or core.error_message(exc)
            found = []
    known = {rev.revision for rev in script.walk_revisions()}
    for db in found:
        result.databases.append(db)
        if db.problem is not None:
            continue
        unknown = [rev for rev in db.current if rev not in known]
        if unknown:
            db.problem = unknown_revision_message(
                unknown[0], db.database, script.dir,
                [(rev.revision, rev.message) for rev in heads],
            )
            db.summary = (f"its version table names revision {unknown[0]!r}, which no "
                          "revision file defines")
            continue
        steps = script.iterate_revisions("heads", db.current, implicit_base=True)
        db.pending = [Revision.of(rev) for rev in reversed(list(steps))]
    return result


def own_env_py(directory: str) -> bool:
    """Whether a script directory's env.py is one of this package's templates (which
    name the version table only through ``Migrate``'s configure arguments).

    :param directory: the script directory.
    """
    try:
        with open(os.path.join(directory, "env.py"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return False
    return "from flask_migrate_compat.autogen import" in text and "configure_args" in text


def _read_version_tables(binds: list[str] | None) -> list[DatabaseStatus]:
    """Each database's version table, read directly (package's own env.py)."""
    passwords = error_context()["passwords"]
    found = []
    for table in version_tables(binds):
        db = DatabaseStatus(table.bind, table.database, version_table=_table_name(table))
        found.append(db)
        try:
            connection = connect(table)
            try:
                db.current = read_heads(connection, table)
                db.lock_holder = _holder(connection, table)
            finally:
                if connection is not None:
                    connection.close()
        except Exception as exc:  # noqa: BLE001 - reported, with exit code 3
            db.problem = error_message(exc, {table.bind: table.engine}, passwords)
    return found


def _run_env(config: t.Any, script: t.Any) -> list[DatabaseStatus]:
    """Each database's version table as env.py sees it (``db current``'s way:
    Alembic's ``dont_mutate``, so nothing is created or written)."""
    from alembic.runtime.environment import EnvironmentContext

    engines = _app_engines()
    found: list[DatabaseStatus] = []

    def collect(rev: t.Any, context: t.Any) -> list[t.Any]:
        engine = context.connection.engine
        bind = next((name for name, known in engines.items()
                     if known is engine or known.url == engine.url), "")
        table = VersionTable(bind, engine, context.version_table,
                             context.version_table_schema)
        # rev: what Alembic read from the version table (dont_mutate: nothing else).
        db = DatabaseStatus(bind, table.database, current=tuple(rev),
                            version_table=_table_name(table))
        db.lock_holder = _holder(context.connection, table)
        found.append(db)
        return []

    with EnvironmentContext(config, script, fn=collect, dont_mutate=True):
        script.run_env()
    return found


def _app_engines() -> dict[str, t.Any]:
    """The application's engines, to name the binds env.py connects to."""
    from flask import current_app

    try:
        return app_engines(current_app, get_state().db)
    except Exception:  # noqa: BLE001 - only used to name binds
        return {}


def _holder(connection: t.Any, table: VersionTable) -> LockHolder | None:
    if connection is None:
        return None
    try:
        return current_holder(connection, table.name, table.schema)
    except Exception:  # noqa: BLE001 - who holds the lock is a courtesy, never a failure
        return None


def _table_name(table: VersionTable) -> str:
    return f"{table.schema}.{table.name}" if table.schema else table.name
