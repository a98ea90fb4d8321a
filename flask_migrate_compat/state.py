"""The current application's migration setup: its :class:`~.extension.Migrate` state, its
databases and their configured URLs.

One place for these look-ups, below :mod:`.legacy`, :mod:`.lock` and :mod:`.core`,
which all need them; it imports only :mod:`.errors` of this package.
"""
from __future__ import annotations

import os
import typing as t

from flask import current_app, has_app_context

from .errors import TRACEBACK_ENV, MigrateError, engine_error_message


def get_state() -> t.Any:
    """The current application's ``app.extensions['migrate']``.

    :returns: the :class:`~.extension._MigrateConfig` that
        :class:`~.extension.Migrate` stored.
    :raises MigrateError: outside an application context, when the application
        has no :class:`~.extension.Migrate` extension, or (Flask-SQLAlchemy 2) when an
        engine cannot be made (see :func:`app_engines`).
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
    db = getattr(state, "db", None)
    if flask_sqlalchemy_2(db):
        # Compat: Flask-SQLAlchemy 3 makes every engine in SQLAlchemy(app), so a bad
        # URL or a missing driver stops the application at start-up, in one line
        # (errors.startup_error_message). 2.x makes them on first use, wherever that
        # is (env.py, the migration lock...), and SQLAlchemy 1.4's error quoted the
        # URL with its password: made here, before any command's work, for the same
        # line on both.
        app_engines(current_app, db)
    return state


def flask_sqlalchemy_2(db: t.Any) -> bool:
    """Whether ``db`` is (a view of) a Flask-SQLAlchemy 2.x extension: one of its
    classes, or a subclass, without 3.0's ``engines`` mapping.

    :param db: the object given to ``Migrate(app, db)``, or ``None``.
    """
    cls = type(unwrap(db))
    return not hasattr(cls, "engines") and any(
        base.__module__.partition(".")[0] == "flask_sqlalchemy" for base in cls.__mro__)


def unwrap(db: t.Any) -> t.Any:
    """The application's Flask-SQLAlchemy object behind a view of it
    (:class:`.legacy.LegacyDB` keeps it in ``_fmc_db``).

    :param db: a view or the object itself.
    :returns: the application's object.
    """
    try:
        return object.__getattribute__(db, "_fmc_db")
    except AttributeError:
        return db


def app_engines(app: t.Any, db: t.Any) -> dict[str, t.Any]:
    """The engines of the application's default database and of every bind.

    :param app: the :class:`~flask.Flask` application.
    :param db: its Flask-SQLAlchemy extension (``db.engines`` in 3.x, or
        ``db.get_engine(app, bind)`` in 2.x), or a view of it.
    :returns: ``{name: Engine}``, the default database first under ``""`` (the name
        the multidb template gives it; absent when only binds are configured, which
        Flask-SQLAlchemy 3 allows), then each key of ``SQLALCHEMY_BINDS``.
    :raises MigrateError: Flask-SQLAlchemy 2 only (3.x made its engines at start-up):
        an engine could not be made for a reason :func:`.errors.engine_error_message`
        words (a URL SQLAlchemy cannot parse, a missing driver...).
    """
    db = unwrap(db)
    binds = list(app.config.get("SQLALCHEMY_BINDS") or {})
    engines = getattr(db, "engines", None)
    if engines is not None:
        found = {"": engines[None]} if None in engines else {}
        found.update((name, engines[name]) for name in binds)
        return found
    found = {}
    if "SQLALCHEMY_DATABASE_URI" in app.config and app.config["SQLALCHEMY_DATABASE_URI"] is None:
        # Flask-SQLAlchemy 2 reads the setting when the engine is first made, so an
        # application that set it to None after init_app (3.x had made the engine
        # by then) has no database; 2.x would fail on None's missing 'drivername'.
        raise MigrateError(
            "SQLALCHEMY_DATABASE_URI is None: set it to the URL of the database to "
            "migrate (Flask-SQLAlchemy 2 reads it when the database is first used)"
        )
    for name in (None, *binds):
        try:
            found[name or ""] = db.get_engine(app, bind=name)
        except Exception as exc:
            configured = dict(configured_urls(app.config)).get(name)
            message = engine_error_message(exc, name, configured)
            if message is None or os.environ.get(TRACEBACK_ENV):
                raise
            raise MigrateError(message) from None
    return found


def sqlite_file(url: t.Any) -> str | None:
    """The file of a SQLite database.

    :param url: a SQLAlchemy URL.
    :returns: its ``database`` part; ``None`` for another backend, an in-memory
        database or a ``file:`` URI (whose options SQLite reads itself).
    """
    if url.get_backend_name() != "sqlite":
        return None
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return path


def configured_urls(config: t.Mapping[str, t.Any]) -> list[tuple[str | None, t.Any]]:
    """``(bind key, URL as configured)`` for the default database and every bind.

    :param config: the application's config.
    :returns: ``None`` is the default database's key; a bind configured as a dict of
        engine options (Flask-SQLAlchemy 3) gives its ``url``; unset ones are skipped.
    """
    found: list[tuple[str | None, t.Any]] = []
    if config.get("SQLALCHEMY_DATABASE_URI") is not None:
        found.append((None, config["SQLALCHEMY_DATABASE_URI"]))
    for key, value in (config.get("SQLALCHEMY_BINDS") or {}).items():
        if isinstance(value, dict):  # Flask-SQLAlchemy 3: engine options per bind
            value = value.get("url")
        if value is not None:
            found.append((key, value))
    return found


def passwords(config: t.Mapping[str, t.Any]) -> set[str]:
    """The passwords of the configured database URLs, to keep out of any output.

    :param config: the application's config.
    :returns: each password as written in the URL (percent-encoded) and decoded.
    """
    from urllib.parse import unquote

    found = set()
    for _key, url in configured_urls(config):
        if isinstance(url, str):
            candidates = _raw_passwords(url)
        else:  # a URL object
            candidates = {url.password} if getattr(url, "password", None) else set()
        for password in candidates:
            found.update({str(password), unquote(str(password))})
    return found


def _raw_passwords(url: str) -> set[str]:
    """The password of a URL string as written: the text between the user name and
    the first ``@`` (what SQLAlchemy takes), and up to the last ``@`` (what it was
    meant to be when it holds an unencoded ``@``). A URL with a mistyped ``://``
    (``postgresql//user:password@host``), which SQLAlchemy cannot parse, is read the
    same way from its last ``/`` before the ``@``: SQLAlchemy 1.4 quotes such a URL
    whole in its error."""
    _scheme, sep, rest = url.partition("://")
    if not sep:
        rest = url
    found = set()
    for at in (rest.find("@"), rest.rfind("@")):
        login = rest[:max(at, 0)]
        if not sep:
            login = login.rpartition("/")[2]
        user, colon, password = login.partition(":")
        if colon and password and "/" not in user:
            found.add(password)
    return found


def error_context() -> dict[str, t.Any]:
    """What :func:`.errors.error_message` needs to know of the current application.

    Never raises: outside an application context, without a Migrate extension or
    without usable engines, the parts it cannot find are left out.

    :returns: ``{"engines": {name: Engine}, "passwords": set of str}``.
    """
    if not has_app_context():
        return {"engines": {}, "passwords": set()}
    found_passwords = passwords(current_app.config)
    engines: dict[str, t.Any] = {}
    state = current_app.extensions.get("migrate")
    if state is not None and state.db is not None:
        try:
            engines = app_engines(current_app, state.db)
        except Exception:  # noqa: BLE001 - no engines: messages name no database
            engines = {}
    for engine in engines.values():
        password = getattr(engine.url, "password", None)
        if password:
            found_passwords.add(str(password))
    return {"engines": engines, "passwords": found_passwords}
