"""The version tables of the application's databases, read without writing anything.

``db status``, ``db doctor`` and the explanation of "Can't locate revision" need to know
what each database's version table holds. Reading it through env.py would cost what
``db current`` costs (importing env.py, configuring Alembic's environment); with the
package's own env.py templates the answer is known without it: every database of the
application (the default one, plus each bind for the multidb template) keeps its
version table under the name and schema of ``Migrate(..., version_table=...,
version_table_schema=...)``, Alembic's ``alembic_version`` by default.

Nothing here creates a table or a database: a database without a version table is at
base, and a SQLite file that does not exist yet is not created (it would be an empty
database at base).
"""
from __future__ import annotations

import os
import typing as t

from flask import current_app

from .errors import MigrateError, describe_database, sqlite_folder_missing_message
from .state import app_engines, get_state, sqlite_file


class VersionTable:
    """Where one database keeps its version table.

    A plain class rather than a dataclass: ``db status`` imports it on every run, and
    creating a frozen dataclass (its generated methods compiled at import) cost about
    3 million instructions there, most of what ``status`` spent beyond ``current``.

    :param bind: the bind name (``""`` for the default database).
    :param engine: the application's :class:`~sqlalchemy.engine.Engine` for it.
    :param name: the version table's name.
    :param schema: its schema, or ``None``.
    """

    __slots__ = ("bind", "engine", "name", "schema")

    def __init__(self, bind: str, engine: t.Any, name: str = "alembic_version",
                 schema: str | None = None) -> None:
        self.bind, self.engine, self.name, self.schema = bind, engine, name, schema

    def __repr__(self) -> str:
        return (f"VersionTable(bind={self.bind!r}, name={self.name!r}, "
                f"schema={self.schema!r}, database={self.database!r})")

    @property
    def database(self) -> str:
        """The database, named without user name or password
        (:func:`.errors.describe_database`)."""
        return describe_database(self.engine.url)


def version_tables(binds: t.Iterable[str] | None = None) -> list[VersionTable]:
    """The version tables of the current application's databases.

    :param binds: the databases env.py migrates (``""`` for the default one), or
        ``None`` for all of them.
    :returns: one :class:`VersionTable` per database, the default one first.
    :raises MigrateError: without an application context or Migrate extension.
    """
    state = get_state()
    name = state.configure_args.get("version_table") or "alembic_version"
    schema = state.configure_args.get("version_table_schema")
    engines = app_engines(current_app, state.db)
    wanted = None if binds is None else set(binds)
    return [VersionTable(bind, engine, name, schema) for bind, engine in engines.items()
            if wanted is None or bind in wanted]


def connect(table: VersionTable) -> t.Any:
    """A connection to a version table's database, or ``None`` for a SQLite file that
    does not exist yet (connecting would create it).

    :raises MigrateError: for a SQLite file in a folder that does not exist.
    :raises sqlalchemy.exc.DBAPIError: when the database cannot be reached; it
        carries the URL (``fmc_database_url``) so that the error line names this
        database alone.
    """
    import sqlalchemy as sa

    url = table.engine.url
    if sqlite_file(url) is not None:
        path = os.path.abspath(url.database)
        if not os.path.exists(path):
            if not os.path.isdir(os.path.dirname(path)):
                raise MigrateError(sqlite_folder_missing_message(path))
            return None
    try:
        return table.engine.connect()
    except sa.exc.DBAPIError as exc:
        exc.fmc_database_url = url
        raise


def read_heads(connection: t.Any, table: VersionTable) -> tuple[str, ...]:
    """The revisions a version table holds (Alembic's
    ``MigrationContext.get_current_heads``), read-only.

    :param connection: from :func:`connect`; ``None`` for a database not created yet.
    :returns: the revision ids, ``()`` when the table does not exist or is empty.
    """
    if connection is None:
        return ()
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={
        "version_table": table.name, "version_table_schema": table.schema,
    })
    return tuple(context.get_current_heads())


def heads_now(table: VersionTable) -> tuple[str, ...]:
    """:func:`read_heads` on a connection of its own (:func:`connect`), closed after.

    :raises: what :func:`connect` raises.
    """
    connection = connect(table)
    try:
        return read_heads(connection, table)
    finally:
        if connection is not None:
            connection.close()


def holding(revision: str, tables: t.Iterable[VersionTable]) -> list[VersionTable]:
    """The version tables that hold ``revision``; a database that cannot be read is
    left out (this serves explanations, which must not fail themselves).

    :param revision: a revision id.
    :param tables: the version tables to read.
    """
    found = []
    for table in tables:
        try:
            heads = heads_now(table)
        except Exception:  # noqa: BLE001 - unreadable: it is not named
            continue
        if revision in heads:
            found.append(table)
    return found


def after_failure(exc: BaseException) -> tuple[str, ...] | None:
    """What the version table of the database a failed revision ran on holds now, read
    on a new connection once the failure unwound (and the database rolled back what
    it could): the table env.py really used (name, schema and engine of the
    ``MigrationContext`` the failure went through), so an env.py of its own, or a
    bind of a multidb env.py, is read as it ran.

    :param exc: the exception a command raised.
    :returns: the revision ids, ``()`` when the table is empty or absent; ``None``
        when the failure came from no online migration run, or the table cannot be
        read (this serves an error line, which must not fail itself).
    """
    from alembic.runtime.migration import MigrationContext

    context = None
    tb = exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, MigrationContext):
            context = candidate
        tb = tb.tb_next
    if context is None or context.as_sql or context.connection is None:
        return None
    try:
        return heads_now(VersionTable("", context.connection.engine, context.version_table,
                                      context.version_table_schema))
    except Exception:  # noqa: BLE001 - unreadable: the line says less
        return None
