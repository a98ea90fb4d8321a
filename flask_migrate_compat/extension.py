"""The Flask extension: :class:`Migrate` and what it stores in
``app.extensions['migrate']``.

It sits above both the core commands (:mod:`.core`) and the ``flask db`` Click group
(:mod:`.cli`), which :meth:`Migrate.init_app` registers on the application.
"""
from __future__ import annotations

import argparse
import os
import typing as t

from . import legacy

if t.TYPE_CHECKING:  # pragma: no cover
    from flask import Flask

    from .config import Config

_PathLike = t.Union[str, "os.PathLike[str]"]
_XArgs = t.Union[None, str, t.Sequence[str]]


class _MigrateConfig:
    """What ``app.extensions['migrate']`` holds (the class of that name in
    Flask-Migrate, which code checks with ``isinstance``).

    Committed ``env.py`` files of every Flask-Migrate generation read these attributes,
    so their names are a public contract: ``migrate`` (the :class:`Migrate` instance),
    ``db`` (the Flask-SQLAlchemy extension, seen through
    :class:`.legacy.LegacyDB` under Flask-SQLAlchemy 3), ``directory`` (str),
    ``configure_args`` (the keyword arguments for ``context.configure``) and
    ``metadata`` (``db.metadata``: the default :class:`~sqlalchemy.MetaData`, or every
    bind's tables when there are binds; Flask-Migrate 1.x stored ``db`` itself here).

    :param migrate: the :class:`Migrate` extension.
    :param db: the Flask-SQLAlchemy extension instance.
    :param configure_args: keyword arguments for ``context.configure``.
    """

    def __init__(self, migrate: Migrate, db: t.Any, **configure_args: t.Any) -> None:
        self.migrate = migrate
        self.db = legacy.wrap_db(db)  # old env.py spellings; see legacy.LegacyDB
        self.directory = migrate.directory
        # A dict that lets env.py's own keywords win (see legacy.ConfigureArgs).
        self.configure_args = legacy.ConfigureArgs(configure_args)

    @property
    def metadata(self) -> t.Any:
        """The default bind's :class:`~sqlalchemy.MetaData` (``db.metadata``)."""
        return self.db.metadata


#: The name this class had before 1.1.
_MigrateState = _MigrateConfig


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
        from .cli import db as db_group  # here: importing Alembic's side waits for a command

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
        app.extensions["migrate"] = _MigrateConfig(self, self.db, **self.alembic_ctx_kwargs)
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
