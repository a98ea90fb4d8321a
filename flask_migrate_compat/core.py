"""The core of flask-migrate-compat: the Flask extension and the migration commands.

Both front ends (the ``flask db`` Click group in :mod:`.cli` and the Flask-Script
``MigrateCommand`` in :mod:`.script`) are thin layers over this module, which in turn
is a thin layer over :mod:`alembic.command`. Nothing here knows about Click or
Flask-Script.

Alembic is imported only when a command runs: ``alembic.config`` alone pulls in
Alembic's whole runtime (~100 ms), and applications import this module on every start.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import typing as t

from flask import current_app, has_app_context

from . import legacy

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask

    from .config import Config

#: Name of the environment variable that makes the front ends re-raise unexpected
#: errors with their traceback instead of printing one line.
TRACEBACK_ENV = "FLASK_MIGRATE_COMPAT_TRACEBACK"

_PathLike = t.Union[str, "os.PathLike[str]"]
_XArgs = t.Union[None, str, t.Sequence[str]]


class MigrateError(Exception):
    """An error the user can fix (missing folder, no application context...).

    Its message is a single line suitable for showing on a terminal. The command line
    front ends print it on stderr and exit with code 1; Python callers can catch it.
    """


class _MigrateState:
    """What ``app.extensions['migrate']`` holds.

    Committed ``env.py`` files of every Flask-Migrate generation read these attributes,
    so their names are a public contract: ``migrate`` (the :class:`Migrate` instance),
    ``db`` (the Flask-SQLAlchemy extension, seen through
    :class:`.legacy.LegacyDB` under Flask-SQLAlchemy 3), ``directory`` (str),
    ``configure_args`` (the keyword arguments for ``context.configure``) and
    ``metadata`` (``db.metadata``: the default :class:`~sqlalchemy.MetaData`, or every
    bind's tables when there are binds; Flask-Migrate 1.x stored ``db`` itself here).
    """

    def __init__(self, migrate: Migrate, db: t.Any, **configure_args: t.Any) -> None:
        self.migrate = migrate
        self.db = legacy.wrap_db(db)  # old env.py spellings; see legacy.LegacyDB
        self.directory = migrate.directory
        self.configure_args = configure_args

    @property
    def metadata(self) -> t.Any:
        """The default bind's :class:`~sqlalchemy.MetaData` (``db.metadata``)."""
        return self.db.metadata


class Migrate:
    """The Flask extension: connects an application and its Flask-SQLAlchemy ``db``
    to an Alembic script directory and registers the ``flask db`` command group.

    Compatible with Flask-Migrate 4.1 (and a superset of 2.7): the application may be
    given now or later through :meth:`init_app` (application-factory pattern).

    :param app: the :class:`~flask.Flask` application, or ``None`` to call
        :meth:`init_app` later.
    :param db: the Flask-SQLAlchemy extension instance.
    :param directory: the script directory (``str`` or :class:`pathlib.Path`),
        relative to the working directory; default ``"migrations"``.
    :param command: the name of the Click command group on ``app.cli``; default ``"db"``.
    :param compare_type: passed to ``context.configure``: autogenerate detects column
        type changes. Default ``True`` (Flask-Migrate 2.x defaulted to ``False``).
    :param render_as_batch: passed to ``context.configure``: autogenerate writes
        ``batch_alter_table`` blocks, which SQLite needs to alter tables. Default ``True``.
    :param lock: take the migration lock (:mod:`.lock`) around ``upgrade``,
        ``downgrade`` and ``stamp``, so that concurrent runs on one database wait for
        each other. Default ``True``; the ``MIGRATE_LOCK = False`` application
        setting and the ``--no-lock`` option also turn it off.
    :param kwargs: any other keyword arguments for Alembic's ``context.configure``,
        for example ``transaction_per_migration=True`` (default ``False``, Alembic's:
        on PostgreSQL a failed ``upgrade`` then rolls back every revision of the run;
        with ``True`` it keeps the revisions before the failed one).
    """

    def __init__(
        self,
        app: Flask | None = None,
        db: t.Any = None,
        directory: _PathLike = "migrations",
        command: str = "db",
        compare_type: bool = True,
        render_as_batch: bool = True,
        lock: bool = True,
        **kwargs: t.Any,
    ) -> None:
        self.lock = lock
        self.configure_callbacks: list[t.Callable[[Config], Config]] = []
        self.db = db
        self.command = command
        self.directory = os.fspath(directory)
        self.alembic_ctx_kwargs: dict[str, t.Any] = dict(
            kwargs, compare_type=compare_type, render_as_batch=render_as_batch
        )
        if app is not None and db is not None:
            self.init_app(app, db, directory)

    def init_app(
        self,
        app: Flask,
        db: t.Any = None,
        directory: _PathLike | None = None,
        command: str | None = None,
        compare_type: bool | None = None,
        render_as_batch: bool | None = None,
        lock: bool | None = None,
        **kwargs: t.Any,
    ) -> None:
        """Register the extension on ``app``: store the state in
        ``app.extensions['migrate']`` and add the command group to ``app.cli``.

        Arguments left as ``None`` keep the value given to the constructor.

        :param app: the :class:`~flask.Flask` application.
        :param db: the Flask-SQLAlchemy extension instance.
        :param directory: the script directory (``str`` or :class:`pathlib.Path`).
        :param command: the name of the command group on ``app.cli``.
        :param compare_type: see :class:`Migrate`.
        :param render_as_batch: see :class:`Migrate`.
        :param lock: see :class:`Migrate`.
        :param kwargs: more keyword arguments for ``context.configure``.
        """
        from .cli import db as db_group  # Click is already loaded by Flask: cheap

        if db is not None:
            self.db = db
        if command is not None:
            self.command = command
        if directory is not None:
            self.directory = os.fspath(directory)
        self.alembic_ctx_kwargs.update(kwargs)
        if compare_type is not None:
            self.alembic_ctx_kwargs["compare_type"] = compare_type
        if render_as_batch is not None:
            self.alembic_ctx_kwargs["render_as_batch"] = render_as_batch
        if lock is not None:
            self.lock = lock
        app.extensions["migrate"] = _MigrateState(self, self.db, **self.alembic_ctx_kwargs)
        app.cli.add_command(db_group, name=self.command)

    def configure(self, f: t.Callable[[Config], Config]) -> t.Callable[[Config], Config]:
        """Decorator: register ``f(config) -> config`` to adjust every Alembic
        :class:`Config` this extension creates (callbacks run in registration order).

        :param f: a callable taking and returning an Alembic ``Config``.
        :returns: ``f`` unchanged.
        """
        self.configure_callbacks.append(f)
        return f

    def call_configure_callbacks(self, config: Config) -> Config:
        """Pass ``config`` through every :meth:`configure` callback.

        :param config: an Alembic ``Config``.
        :returns: what the last callback returned (``config`` when there are none).
        """
        for callback in self.configure_callbacks:
            config = callback(config)
        return config

    def get_config(
        self,
        directory: _PathLike | None = None,
        x_arg: _XArgs = None,
        opts: t.Iterable[str] | None = None,
    ) -> Config:
        """Build the Alembic :class:`Config` for a script directory.

        :param directory: the script directory; default: this extension's ``directory``.
        :param x_arg: x-arguments (``"key=value"`` strings, or one string) that env.py
            and revision scripts read with ``context.get_x_argument()``.
        :param opts: names of boolean command options to set on ``config.cmd_opts``
            (for example ``["autogenerate"]``, which env.py checks).
        :returns: a :class:`flask_migrate_compat.Config` reading
            ``<directory>/alembic.ini``, after the :meth:`configure` callbacks.
        """
        from .config import Config

        directory = os.fspath(self.directory if directory is None else directory)
        config = Config(os.path.join(directory, "alembic.ini"))
        config.set_main_option("script_location", directory)
        if config.cmd_opts is None:
            config.cmd_opts = argparse.Namespace()
        for opt in opts or ():
            setattr(config.cmd_opts, opt, True)
        if not hasattr(config.cmd_opts, "x"):
            config.cmd_opts.x = _as_list(x_arg)
        return legacy.adapt_config(self.call_configure_callbacks(config))


def _as_list(x_arg: _XArgs) -> list[str]:
    if x_arg is None:
        return []
    if isinstance(x_arg, str):
        return [x_arg]
    return list(x_arg)


def _state() -> _MigrateState:
    """The current application's :class:`_MigrateState`.

    :raises MigrateError: outside an application context, or when the application
        has no :class:`Migrate` extension.
    """
    if not has_app_context():
        raise MigrateError(
            "this command needs an application context: run it through 'flask db' or "
            "'manage.py db', or call it inside 'with app.app_context():'"
        )
    state = current_app.extensions.get("migrate")
    if state is None:
        raise MigrateError(
            f"application {current_app.name!r} has no Migrate extension: "
            "call Migrate(app, db) or migrate.init_app(app, db)"
        )
    return state


def _script_config(
    directory: _PathLike | None, x_arg: _XArgs = None, opts: t.Iterable[str] | None = None
) -> Config:
    """The Alembic config of an existing script directory.

    :raises MigrateError: when the directory has not been created by ``init``.
    """
    migrate = _state().migrate
    path = os.fspath(migrate.directory if directory is None else directory)
    if not os.path.isdir(path):
        raise MigrateError(
            f"migrations folder {path!r} not found (looked in {os.path.abspath(path)}): "
            "run 'db init' to create it, or pass -d/--directory"
        )
    return migrate.get_config(path, x_arg=x_arg, opts=opts)


@contextlib.contextmanager
def _version_table_command(
    directory: _PathLike | None, x_arg: _XArgs, revision: str, sql: bool,
    no_lock: bool, lock_timeout: float | None, use_new_sqlite_path: bool,
) -> t.Iterator[Config]:
    """What ``upgrade``, ``downgrade`` and ``stamp`` (the commands that write the
    version table) do around the Alembic call, which runs inside the block.

    In order: the relative SQLite path check (:func:`.legacy.check_sqlite_paths`,
    online only), the script directory's config, the target revision check
    (:func:`_check_target`), then the migration lock (:func:`.lock.command_guard`)
    held for the whole block.

    :yields: the Alembic config to pass to the command.
    """
    if not (sql or use_new_sqlite_path):
        legacy.check_sqlite_paths()
    config = _script_config(directory, x_arg)
    _check_target(config, revision)
    from .lock import command_guard

    with command_guard(sql=sql, no_lock=no_lock, lock_timeout=lock_timeout):
        yield config


def _alembic() -> t.Any:
    from alembic import command

    return command


def _check_target(config: Config, revision: str) -> None:
    """Resolve a plain target revision before env.py runs.

    Alembic resolves it only after env.py has connected and created the version
    table; checking first means an unknown revision, or ``head`` with several heads,
    fails with the database left exactly as it was. Relative (``-1``, ``ae10+2``) and
    range (``a:b``) targets need the database or offline mode, so Alembic checks those.

    :raises alembic.util.CommandError: unknown revision or ambiguous head.
    """
    if ":" in revision or re.search(r"[+-]\d+$", revision):
        return
    from alembic.script import ScriptDirectory

    _reuse_script_directory(ScriptDirectory)
    script = ScriptDirectory.from_config(config)
    script.get_revisions(revision)
    _loaded_scripts[:] = [(config, script)]


#: The (config, ScriptDirectory) that :func:`_check_target` loaded last.
_loaded_scripts: list = []


def _reuse_script_directory(script_directory_class: t.Any) -> None:
    """Make ``ScriptDirectory.from_config(config)`` return the instance
    :func:`_check_target` already built for that very config object.

    Why: every ``alembic.command`` function builds its own ScriptDirectory, and each
    one imports every revision file again (~0.2 ms apiece: +220 ms at head with 1000
    revisions, measured with bench/bench_upgrade.py). Alembic (1.20) offers no way to
    pass one in; any other config gets a fresh instance as before.
    """
    original = script_directory_class.__dict__["from_config"]
    if getattr(original.__func__, "_fmc_reuse", False):
        return  # installed already

    def from_config(cls: t.Any, config: t.Any) -> t.Any:
        for loaded_config, script in _loaded_scripts:
            if loaded_config is config:
                return script
        return original.__get__(None, cls)(config)

    from_config._fmc_reuse = True  # type: ignore[attr-defined]
    script_directory_class.from_config = classmethod(from_config)


# -- commands ---------------------------------------------------------------------
# Each maps onto the alembic.command function of the same name, with Flask-Migrate
# 4.1's parameters and defaults. ``x_arg`` is accepted by every command that runs
# env.py, because the group-level ``-x`` option applies to all of them.


def list_templates() -> None:
    """Print the script directory templates this package ships, one line each
    (``alembic list_templates``). Needs no application context."""
    from .config import Config

    config = Config()
    config.print_stdout("Available templates:\n")
    root = config.get_template_directory()
    for name in sorted(os.listdir(root)):
        readme = os.path.join(root, name, "README")
        if os.path.isfile(readme):
            with open(readme, encoding="utf-8") as f:
                config.print_stdout("%s - %s", name, f.readline().strip())


def init(
    directory: _PathLike | None = None,
    multidb: bool = False,
    template: str | None = None,
    package: bool = False,
) -> None:
    """Create a new script directory (``alembic init``).

    :param directory: where to create it; default: the extension's directory.
    :param multidb: use the ``flask-multidb`` template (one version table per bind).
    :param template: template name, or a path to a custom template folder; default
        ``"flask"`` (or ``"flask-multidb"`` with ``multidb``).
    :param package: also write ``__init__.py`` files into the new folders.
    :raises MigrateError: without an application context.
    :raises alembic.util.CommandError: when the directory exists and is not empty.
    """
    from .config import Config

    migrate = _state().migrate
    directory = os.fspath(migrate.directory if directory is None else directory)
    template_directory = None
    if template is not None and ("/" in template or os.sep in template):
        template_directory, template = os.path.split(os.path.normpath(template))
    if template is None:
        template = "flask-multidb" if multidb else "flask"
    config = Config(template_directory=template_directory)
    config.set_main_option("script_location", directory)
    config.config_file_name = os.path.join(directory, "alembic.ini")
    config = migrate.call_configure_callbacks(config)
    _alembic().init(config, directory, template=template, package=package)


def revision(
    directory: _PathLike | None = None,
    message: str | None = None,
    autogenerate: bool = False,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    x_arg: _XArgs = None,
) -> t.Any:
    """Create a new revision script (``alembic revision``).

    :param autogenerate: fill it with the differences between the models and the
        database; with no difference nothing is written.
    :param sql: offline mode (only meaningful with a custom env.py).
    :param head: the head (or ``<branch>@head``) the new revision follows.
    :param splice: allow a non-head revision as ``head``.
    :param branch_label: a branch label for the new revision.
    :param version_path: one of the configured version locations to write into.
    :param rev_id: use this revision id instead of a generated one.
    :returns: the new :class:`alembic.script.Script` (or a list, for several), or
        ``None`` when autogenerate found nothing.
    :raises alembic.util.CommandError: for example when the database is not at head.
    """
    config = _script_config(directory, x_arg, ["autogenerate"] if autogenerate else None)
    result = _alembic().revision(
        config, message, autogenerate=autogenerate, sql=sql, head=head, splice=splice,
        branch_label=branch_label, version_path=version_path, rev_id=rev_id,
    )
    # Alembic returns an empty list when env.py dropped the empty script.
    return None if isinstance(result, list) and not result else result


def migrate(
    directory: _PathLike | None = None,
    message: str | None = None,
    sql: bool = False,
    head: str = "head",
    splice: bool = False,
    branch_label: str | None = None,
    version_path: str | None = None,
    rev_id: str | None = None,
    x_arg: _XArgs = None,
) -> t.Any:
    """Autogenerate a new revision script: :func:`revision` with ``autogenerate=True``
    (``alembic revision --autogenerate``). Arguments as for :func:`revision`."""
    return revision(
        directory, message, True, sql, head, splice, branch_label, version_path, rev_id,
        x_arg,
    )


def edit(directory: _PathLike | None = None, revision: str = "current") -> None:
    """Open a revision script in ``$EDITOR`` (``alembic edit``).

    :param revision: the revision to edit; default the database's current one.
    """
    _alembic().edit(_script_config(directory), revision)


def merge(
    directory: _PathLike | None = None,
    revisions: str | t.Sequence[str] = "",
    message: str | None = None,
    branch_label: str | None = None,
    rev_id: str | None = None,
) -> t.Any:
    """Create a merge point: a revision whose down revisions are ``revisions``
    (``alembic merge``).

    :param revisions: the revisions (usually heads) to merge.
    :returns: the new :class:`alembic.script.Script`.
    :raises alembic.util.CommandError: for an unknown revision.
    """
    return _alembic().merge(
        _script_config(directory), revisions, message=message,
        branch_label=branch_label, rev_id=rev_id,
    )


def upgrade(
    directory: _PathLike | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    x_arg: _XArgs = None,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    use_new_sqlite_path: bool = False,
) -> None:
    """Upgrade the database to ``revision`` (``alembic upgrade``).

    :param revision: target revision, ``head``, ``heads``, or relative (``+2``);
        with ``sql``, a ``start:end`` range may be given.
    :param sql: offline mode: write the SQL to standard output instead of running it.
    :param tag: an arbitrary tag passed to env.py (``context.get_tag_argument()``).
    :param no_lock: do not take the migration lock (see :mod:`.lock`).
    :param lock_timeout: seconds to wait for the migration lock held by another
        process; default: the ``MIGRATE_LOCK_TIMEOUT`` setting, else no limit.
    :param use_new_sqlite_path: skip the relative SQLite path check
        (:func:`.legacy.check_sqlite_paths`) and migrate the file Flask-SQLAlchemy 3
        resolves.
    :raises alembic.util.CommandError: unknown revision, or several heads with ``head``.
    :raises MigrateError: lock timeout, the SQLite path check, or the database
        unreachable for the lock.
    :raises sqlalchemy.exc.SQLAlchemyError: a revision failed (:func:`error_message`
        names it, and says when the database may hold part of it).
    """
    with _version_table_command(directory, x_arg, revision, sql, no_lock, lock_timeout,
                                use_new_sqlite_path) as config:
        _alembic().upgrade(config, revision, sql=sql, tag=tag)


def downgrade(
    directory: _PathLike | None = None,
    revision: str = "-1",
    sql: bool = False,
    tag: str | None = None,
    x_arg: _XArgs = None,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    use_new_sqlite_path: bool = False,
) -> None:
    """Downgrade the database to ``revision`` (``alembic downgrade``).

    :param revision: target revision, ``base``, or relative (default ``-1``). In
        offline mode ``-1`` means ``head:-1``, since there is no database to ask.
    :param sql: offline mode, as for :func:`upgrade`.
    :param tag: as for :func:`upgrade`.
    :param no_lock: do not take the migration lock (see :mod:`.lock`).
    :param lock_timeout: seconds to wait for the migration lock held by another
        process; default: the ``MIGRATE_LOCK_TIMEOUT`` setting, else no limit.
    :param use_new_sqlite_path: skip the relative SQLite path check
        (:func:`.legacy.check_sqlite_paths`) and migrate the file Flask-SQLAlchemy 3
        resolves.
    :raises MigrateError: as for :func:`upgrade`.
    """
    if sql and revision == "-1":
        revision = "head:-1"
    with _version_table_command(directory, x_arg, revision, sql, no_lock, lock_timeout,
                                use_new_sqlite_path) as config:
        _alembic().downgrade(config, revision, sql=sql, tag=tag)


def show(directory: _PathLike | None = None, revision: str = "head") -> None:
    """Print one revision's details (``alembic show``)."""
    _alembic().show(_script_config(directory), revision)


def history(
    directory: _PathLike | None = None,
    rev_range: str | None = None,
    verbose: bool = False,
    indicate_current: bool = False,
    x_arg: _XArgs = None,
) -> None:
    """Print the revisions in order, newest first (``alembic history``).

    :param rev_range: ``[start]:[end]``, for example ``base:head``.
    :param verbose: print each revision's full details.
    :param indicate_current: mark the database's current revision (connects to it).
    """
    _alembic().history(
        _script_config(directory, x_arg), rev_range, verbose=verbose,
        indicate_current=indicate_current,
    )


def heads(
    directory: _PathLike | None = None,
    verbose: bool = False,
    resolve_dependencies: bool = False,
) -> None:
    """Print the heads of the script directory (``alembic heads``).

    :param resolve_dependencies: treat ``depends_on`` revisions as down revisions.
    """
    _alembic().heads(
        _script_config(directory), verbose=verbose,
        resolve_dependencies=resolve_dependencies,
    )


def branches(directory: _PathLike | None = None, verbose: bool = False) -> None:
    """Print the branch points (``alembic branches``)."""
    _alembic().branches(_script_config(directory), verbose=verbose)


def current(
    directory: _PathLike | None = None, verbose: bool = False, x_arg: _XArgs = None
) -> None:
    """Print the database's current revision, per database (``alembic current``)."""
    _alembic().current(_script_config(directory, x_arg), verbose=verbose)


def stamp(
    directory: _PathLike | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    purge: bool = False,
    x_arg: _XArgs = None,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    use_new_sqlite_path: bool = False,
) -> None:
    """Write ``revision`` into the version table without running any migration
    (``alembic stamp``).

    :param purge: empty the version table first (needed when it holds an unknown
        revision).
    :param no_lock: do not take the migration lock (see :mod:`.lock`).
    :param lock_timeout: seconds to wait for the migration lock held by another
        process; default: the ``MIGRATE_LOCK_TIMEOUT`` setting, else no limit.
    :param use_new_sqlite_path: skip the relative SQLite path check
        (:func:`.legacy.check_sqlite_paths`) and migrate the file Flask-SQLAlchemy 3
        resolves.
    :raises MigrateError: lock timeout, the SQLite path check, or the database
        unreachable for the lock.
    """
    with _version_table_command(directory, x_arg, revision, sql, no_lock, lock_timeout,
                                use_new_sqlite_path) as config:
        _alembic().stamp(config, revision, sql=sql, tag=tag, purge=purge)


def check(directory: _PathLike | None = None, x_arg: _XArgs = None) -> None:
    """Fail when autogenerate would write a new revision (``alembic check``).

    :raises alembic.util.AutogenerateDiffsDetected: the models and the database differ
        (a :class:`~alembic.util.CommandError`).
    """
    _alembic().check(_script_config(directory, x_arg))


# -- errors -----------------------------------------------------------------------


def error_message(exc: BaseException) -> str:
    """The one-line text a front end shows for a failed command, with any database
    password replaced by ``***``.

    Known errors (ours, Alembic's ``CommandError``, SQLAlchemy's database errors) give
    their message; a database that cannot be reached is named (backend, database,
    host); a failed revision is named with its database, saying whether that database
    rolled it back or may hold part of it; anything else (a broken revision script, a
    bug) is named with its type and where it was raised. Needs the application context
    for the database names and passwords.

    :param exc: the exception a command raised.
    :returns: a single line, without the ``Error:`` prefix.
    """
    text = _known_error_text(exc)
    if text is None:
        # str() of a SyntaxError already ends with "(file name, line N)": keep only
        # its message, _where() adds the full path.
        detail = exc.msg if isinstance(exc, SyntaxError) and exc.msg else exc
        text = f"{type(exc).__name__}: {detail}{_where(exc)}"
    return _redact(" ".join(text.split()))


def _known_error_text(exc: BaseException) -> str | None:
    if isinstance(exc, MigrateError):
        return str(exc)
    text = _database_error_text(exc)
    if text is not None:
        return text
    alembic_exc = sys.modules.get("alembic.util.exc")
    if alembic_exc is not None and isinstance(exc, alembic_exc.CommandError):
        return str(exc)
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        # str() of a DBAPIError adds the SQL, its parameters and a link; the driver's
        # own first line says what went wrong.
        return f"database error: {first_line(exc)}"
    return None


def describe_database(url: t.Any) -> str:
    """``<backend> database 'name' on host:port``: names a database in a message
    without user name or password.

    :param url: a SQLAlchemy :class:`~sqlalchemy.engine.URL`.
    :returns: for example ``postgresql database 'shop' on db.internal:5432``.
    """
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database!r}"
    host = url.host or "localhost"
    if url.port:
        host = f"{host}:{url.port}"
    return f"{url.get_backend_name()} database {url.database!r} on {host}"


def first_line(exc: BaseException) -> str:
    """The first non-empty line of a (DBAPI) error's message.

    :param exc: an exception; for SQLAlchemy's wrappers, the driver's own error.
    :returns: one line (the exception type's name when the message is empty).
    """
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def _database_error_text(exc: BaseException) -> str | None:
    """A revision that failed, or a database that could not be reached, worded with
    the database it concerns (from the current application's engines)."""
    if not has_app_context():
        return None
    state = current_app.extensions.get("migrate")
    if state is None or state.db is None:
        return None
    from .lock import app_engines

    try:
        engines = app_engines(current_app, state.db)
    except Exception:  # noqa: BLE001 - no engines: nothing better to say
        return None
    sa_exc = sys.modules.get("sqlalchemy.exc")
    failed = _failed_revision(exc)
    if failed is not None:
        revision, function = failed
        engine = _engine_of(function, engines)
        if engine is not None and not _transactional_ddl(engine):
            return (
                f"revision {revision} failed in {function}() on the "
                f"{describe_database(engine.url)}: {first_line(exc)}. This database "
                "cannot roll back schema changes, so it may hold part of revision "
                f"{revision} although its version table "
                "does not list it: compare the database with the revision script, "
                "repair or undo the partial changes by hand, then run the command again"
            )
        if engine is not None:
            return (
                f"revision {revision} failed in {function}() on the "
                f"{describe_database(engine.url)}: {first_line(exc)}. Its transaction "
                "was rolled back, so the database is at the revision its version table "
                "names ('db current' shows it)"
            )
        return None
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError) and exc.statement is None:
        # No statement: the failure happened while connecting.
        where = " or ".join(describe_database(engine.url) for engine in engines.values())
        return f"cannot connect to the {where}: {first_line(exc)}"
    return None


def _failed_revision(exc: BaseException) -> tuple[str, str] | None:
    """``(revision id, function name)`` of the revision script frame the exception
    went through, or ``None`` when it did not come from a revision script."""
    tb = exc.__traceback__
    found = None
    while tb is not None:
        f_globals = tb.tb_frame.f_globals
        if "down_revision" in f_globals and isinstance(f_globals.get("revision"), str):
            found = (f_globals["revision"], tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return found


def _engine_of(function: str, engines: t.Mapping[str, t.Any]) -> t.Any:
    """The engine a revision function runs on: multidb scripts name the bind in the
    function (``upgrade_<bind>``, ``upgrade_`` for the default one); single-database
    scripts run on the default engine."""
    for prefix in ("upgrade_", "downgrade_"):
        if function.startswith(prefix) and function[len(prefix):] in engines:
            return engines[function[len(prefix):]]
    return engines.get("")


def _transactional_ddl(engine: t.Any) -> bool:
    from alembic.ddl.impl import DefaultImpl

    try:
        return bool(DefaultImpl.get_by_dialect(engine.dialect).transactional_ddl)
    except Exception:  # noqa: BLE001 - unknown dialect: do not claim anything
        return True


def _where(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" ({exc.filename}, line {exc.lineno})"
    tb = exc.__traceback__
    frame = None
    while tb is not None:
        frame, tb = tb, tb.tb_next
    if frame is None:
        return ""
    return f" ({frame.tb_frame.f_code.co_filename}, line {frame.tb_lineno})"


def _redact(text: str) -> str:
    """Replace every password of the current application's database URLs."""
    for password in _known_passwords():
        text = text.replace(password, "***")
    return text


def _known_passwords() -> set[str]:
    if not has_app_context():
        return set()
    passwords = set()
    for _key, url in legacy.configured_urls(current_app.config):
        password = getattr(url, "password", None)
        if password is None and isinstance(url, str) and "@" in url:
            from sqlalchemy.engine import make_url

            try:
                password = make_url(url).password
            except Exception:  # noqa: BLE001 - an unparsable URL has nothing to hide
                password = None
        if password:
            passwords.add(str(password))
            from urllib.parse import quote_plus

            passwords.add(quote_plus(str(password)))
    return passwords
