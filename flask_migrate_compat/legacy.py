"""Keeping migrations folders written by Flask-Migrate 1.x-2.7 working unchanged.

A project's ``migrations/env.py`` and ``alembic.ini`` were written once, by whatever
Flask-Migrate version ran ``db init``, and are the user's files: we never edit them.
The ones written by Flask-Migrate 1.x-2.7 use spellings that Flask-SQLAlchemy 3 and
SQLAlchemy 2 removed or changed. This module makes them work on today's stack:

* :class:`LegacyDB`, the ``db`` of ``app.extensions['migrate']``: a view of the
  application's Flask-SQLAlchemy object that adds the old spellings back
  (``db.get_engine(app, bind)``, ``db.engine.url`` that ``str()`` renders usable
  and masked, ``db.metadata`` holding every bind's tables tagged
  ``t.info['bind_key']``). The application's own ``db`` is not modified.
* :func:`adapt_config`: env.py files up to Flask-Migrate 2.4 put
  ``current_app.config['SQLALCHEMY_DATABASE_URI']`` itself into the Alembic config;
  that value is swapped for the URL of the engine Flask-SQLAlchemy actually uses
  (relative SQLite paths resolved, ``%`` escaped for configparser).
* :func:`check_sqlite_paths`: the relative SQLite path trap. Flask-SQLAlchemy 3 puts
  ``sqlite:///app.db`` in the instance folder, Flask-SQLAlchemy 2 in the working
  directory; migrating a fresh, empty file while the real database sits at the old
  place is refused with one line naming both paths and the fixes.

Passwords: the URL strings built here go into the Alembic config only, which env.py
reads to connect; nothing here prints them.
"""
from __future__ import annotations

import functools
import opcode
import os
import sys
import typing as t

from flask import current_app, has_app_context

from .errors import MigrateError, setting_name
# unwrap (the application's object behind a LegacyDB view) lives in state, which
# app_engines needs it in; legacy.unwrap stays importable under its old name.
from .state import app_engines, configured_urls, flask_sqlalchemy_2, sqlite_file, unwrap

#: Name of the command line option that overrides :func:`check_sqlite_paths`.
SQLITE_OVERRIDE_OPTION = "--use-new-sqlite-path"


# -- where did the caller's line come from -----------------------------------------


def _caller_line() -> str:
    """``"<file>, line <n>"`` of the nearest frame outside this module and Alembic
    (the line of env.py or of a revision script that used a legacy spelling)."""
    frame = sys._getframe(1)
    here = os.path.normcase(os.path.abspath(__file__))
    while frame is not None:
        filename = frame.f_code.co_filename
        if os.path.normcase(os.path.abspath(filename)) != here and not str(
                frame.f_globals.get("__name__", "")).startswith("alembic."):
            # Absolute on Python 3.9 too, which names env.py as Alembic gave its path.
            return f"{os.path.abspath(filename)}, line {frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


# -- the db view ----------------------------------------------------------------------


class LegacyDB:
    """What env.py sees as ``current_app.extensions['migrate'].db``.

    Every attribute is the application's Flask-SQLAlchemy object's own, except the
    spellings that Flask-Migrate 1.x-2.7 env.py files use and that broke:

    * ``engine``: the default engine. ``str(db.engine.url)`` masks the password
      (SQLAlchemy 2.0 does; on 1.4 see :func:`masked_engine`); when env.py passes
      that string on as Alembic's ``sqlalchemy.url`` (Flask-Migrate 2.5-2.7),
      :func:`adapt_config` restores the password there and nowhere else, so an env.py
      that logs the URL shows ``***``.
    * ``get_engine(app=None, bind=None)``: the 2.x signature (3.0 removed ``app``,
      renamed ``bind`` to ``bind_key``, deprecated it; 3.2 removes it), with the
      same masking.
    * ``metadata``: when the application has binds, one MetaData with every model's
      table, each tagged ``info['bind_key']`` (how Flask-SQLAlchemy 2 kept them;
      3.0 splits them into ``db.metadatas``), with a warning-free ``tometadata``.

    Attribute writes go to the application's object.

    :param db: the application's Flask-SQLAlchemy extension instance.
    """

    __slots__ = ("_fmc_db",)

    def __init__(self, db: t.Any) -> None:
        object.__setattr__(self, "_fmc_db", db)

    def __getattr__(self, name: str) -> t.Any:
        return getattr(self._fmc_db, name)

    def __setattr__(self, name: str, value: t.Any) -> None:
        setattr(self._fmc_db, name, value)

    def __repr__(self) -> str:
        return f"<LegacyDB view of {self._fmc_db!r}>"

    @property
    def engine(self) -> t.Any:
        """The default database's engine (the application's own; on SQLAlchemy 1.4,
        see :func:`masked_engine`)."""
        return masked_engine(self._fmc_db.engine)

    def get_engine(self, app: t.Any = None, bind: str | None = None,
                   bind_key: str | None = None) -> t.Any:
        """Flask-SQLAlchemy 2.x's ``get_engine``, also accepting 3.0's spellings.

        :param app: ignored (the current application's engines are used), or a bind
            key given positionally the 3.0 way (``db.get_engine("users")``).
        :param bind: the bind key (2.x name); ``None`` or ``""`` for the default.
        :param bind_key: the bind key (3.0 name).
        :returns: the application's engine of that bind (on SQLAlchemy 1.4, see
            :func:`masked_engine`).
        :raises MigrateError: for a bind key that SQLALCHEMY_BINDS does not define.
        """
        if isinstance(app, str):
            bind_key = app
        key = bind_key if bind_key is not None else bind
        engines = app_engines(current_app, self._fmc_db)
        try:
            engine = engines[key or ""]
        except KeyError:
            raise MigrateError(
                f"{_caller_line()}: db.get_engine() asked for bind {key!r}, which "
                f"SQLALCHEMY_BINDS does not define (it has: "
                f"{', '.join(repr(k) for k in engines if k) or 'nothing'})"
            ) from None
        return masked_engine(engine)

    @property
    def metadata(self) -> t.Any:
        """The models' MetaData as env.py files before Flask-Migrate 4 expect it.

        Without binds: the application's ``db.metadata`` itself. With binds: a new
        MetaData holding a copy of every bind's tables (see :func:`combined_metadata`).
        """
        db = self._fmc_db
        metadatas = getattr(db, "metadatas", None)
        if not metadatas or list(metadatas) == [None]:
            return db.metadata
        return combined_metadata(metadatas, _caller_line)


def masked_engine(engine: t.Any) -> t.Any:
    """The engine env.py gets from ``db.engine`` and ``db.get_engine()``.

    Compat: SQLAlchemy 1.4's ``str(url)`` renders the password (2.0 masks it, as
    ``repr()`` always did), so a Flask-Migrate 2.5-2.7 env.py that logs
    ``db.engine.url`` printed it. On 1.4 this is a view of the engine made by
    ``engine.execution_options()``, an :class:`~sqlalchemy.engine.Engine` sharing its
    pool, dialect and event listeners, whose ``url`` renders masked with ``str()``
    as on 2.0 (:func:`adapt_config` puts the password back where env.py hands the
    URL to Alembic). On 2.0 and later: the engine itself.

    :param engine: an engine of the application.
    :returns: that engine, or a new masked view of it (cheap: nothing is connected
        or copied but a few attributes).
    """
    import sqlalchemy as sa

    if not sa.__version__.startswith("1."):
        return engine
    masked = engine.execution_options()
    masked.url = _masked_url_class()(*engine.url, _new_ok=True)
    return masked


@functools.lru_cache(maxsize=None)
def _masked_url_class() -> type:
    """A SQLAlchemy 1.4 URL whose ``str()`` hides the password, as 2.0's does."""
    from sqlalchemy.engine.url import URL

    class MaskedURL(URL):
        __slots__ = ()

        def __str__(self) -> str:
            return self.render_as_string(hide_password=True)

    return MaskedURL


def combined_metadata(metadatas: t.Mapping[str | None, t.Any],
                      where: t.Callable[[], str] = _caller_line) -> t.Any:
    """One MetaData with every bind's tables, the way Flask-SQLAlchemy 2 kept them.

    Flask-Migrate 1.x-2.7's multidb env.py picks a bind's tables from ``db.metadata``
    by ``t.info.get('bind_key')`` and copies them with ``t.tometadata(m)``.
    Flask-SQLAlchemy 3.0 gives each bind its own MetaData (and tags the MetaData, not
    the tables). ``Table.tometadata`` was renamed ``to_metadata`` in SQLAlchemy 1.4;
    the old name still exists in 2.0/2.1 but is deprecated, warns and is due for
    removal. The tables here are copies, so the application's tables are not touched
    and SQLAlchemy's ``Table`` class is not patched: only these copies carry the
    ``bind_key`` tag and a ``tometadata`` attribute bound to ``to_metadata`` (no
    deprecation warning, and no break when SQLAlchemy drops the old name).

    :param metadatas: ``db.metadatas``: bind key (``None`` for the default) -> MetaData.
    :param where: gives the caller's file and line, for the error message.
    :returns: a new :class:`~sqlalchemy.MetaData`.
    :raises MigrateError: when two binds have a table of the same name (possible only
        since Flask-SQLAlchemy 3); such an env.py must select tables per bind.
    """
    import sqlalchemy as sa

    default = metadatas.get(None)
    combined = sa.MetaData(
        naming_convention=getattr(default, "naming_convention", None) or {}
    )
    owner: dict[str, t.Any] = {}
    for key, metadata in metadatas.items():
        for table in metadata.tables.values():
            if table.key in owner:
                raise MigrateError(
                    f"{where()}: table {table.key!r} exists in binds {owner[table.key]!r} "
                    f"and {key!r}, so no single db.metadata can hold both (Flask-SQLAlchemy "
                    "2 could not either): change this line to use "
                    "db.metadatas[bind_key] for each bind"
                )
            owner[table.key] = key
            copy = table.to_metadata(combined)
            copy.info = dict(table.info, bind_key=key)
            # Table.tometadata: deprecated since SQLAlchemy 1.4; alias on our copy only.
            copy.tometadata = copy.to_metadata
    return combined


def wrap_db(db: t.Any) -> t.Any:
    """The object to store as ``app.extensions['migrate'].db``.

    :param db: the application's Flask-SQLAlchemy extension (or ``None``).
    :returns: a :class:`LegacyDB` view for Flask-SQLAlchemy 3 (recognised by its
        ``engines`` mapping) and 2.x (whose spellings are the legacy ones already,
        but whose ``db.engine.url`` shows the password on SQLAlchemy 1.4); ``db``
        itself for ``None``, another kind of object or an object that is already a
        view.
    """
    if db is None or isinstance(db, LegacyDB) or not (
            hasattr(type(db), "engines") or flask_sqlalchemy_2(db)):
        return db
    return LegacyDB(db)



# -- configure_args -----------------------------------------------------------------------


class ConfigureArgs(dict):
    """What env.py reads as ``current_app.extensions['migrate'].configure_args``: the
    keyword arguments for Alembic's ``context.configure``.

    A plain dict everywhere but one place. Flask-Migrate 2.x stored only the keywords
    given to ``Migrate(...)`` here, so projects edited their env.py to pass
    ``compare_type=True`` (or ``include_object=...``, ``on_version_apply=...``)
    explicitly beside ``**configure_args``. Since Flask-Migrate 3.0 (and here) the
    dict always holds ``compare_type`` and ``render_as_batch``, and such a call fails
    before Alembic sees it: ``TypeError: configure() got multiple values for keyword
    argument 'compare_type'``. So when this dict is unpacked with ``**`` into a call
    that names some of its keys itself, those keys are left out of the unpacking and
    the call's own value wins, as it did under Flask-Migrate 2.x; every other key
    (the defaults, the user's ``Migrate(...)`` keywords) still applies.

    The call's own keywords are read from its source (env.py's, found through the
    calling frame); a copy (``dict(configure_args)``) is an ordinary dict, which
    :func:`unresolved_clashes` reports instead.
    """

    __slots__ = ()

    def keys(self) -> t.Any:  # type: ignore[override]
        """The keys, less those the calling ``f(key=..., **self)`` names itself."""
        explicit = _explicit_keywords(sys._getframe(1))
        if not explicit:
            return dict.keys(self)
        return [key for key in dict.keys(self) if key not in explicit]

    def __iter__(self) -> t.Iterator[str]:
        # Defined so that CPython's ``**`` unpacking takes its generic path, which
        # calls keys(): for a dict subclass that keeps dict's own iterator it copies
        # the entries directly (checked on CPython 3.9-3.13).
        return dict.__iter__(self)


#: The opcode that merges a ``**mapping`` into a call's keyword arguments (3.9+).
_DICT_MERGE = opcode.opmap["DICT_MERGE"]


def _explicit_keywords(frame: t.Any) -> frozenset[str]:
    """The keyword names of the call whose ``**`` unpacking ``frame`` is executing;
    empty when it is doing anything else."""
    code = frame.f_code
    if frame.f_lasti < 0 or code.co_code[frame.f_lasti] != _DICT_MERGE:
        return frozenset()
    line = frame.f_lineno
    best: tuple[int, int, frozenset[str]] | None = None
    for start, end, names in _unpacking_calls(code.co_filename):
        # The merge runs on the call's first line: take the innermost call around it.
        if start <= line <= end and (best is None or (start, -end) > best[:2]):
            best = (start, -end, names)
    return best[2] if best else frozenset()


def _unpacking_calls(filename: str) -> list[tuple[int, int, frozenset[str]]]:
    """``(first line, last line, explicit keyword names)`` of each call in a source
    file that unpacks a ``**`` mapping and also names keywords itself."""
    try:
        stat = os.stat(filename)
    except OSError:
        return []
    return _parse_unpacking_calls(filename, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _parse_unpacking_calls(filename: str, mtime_ns: int,
                           size: int) -> list[tuple[int, int, frozenset[str]]]:
    import ast  # only an env.py that unpacks configure_args beside keywords gets here

    try:
        with open(filename, "rb") as f:
            tree = ast.parse(f.read(), filename)
    except (OSError, SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and any(kw.arg is None for kw in node.keywords):
            names = frozenset(kw.arg for kw in node.keywords if kw.arg is not None)
            if names:
                found.append((node.lineno, node.end_lineno or node.lineno, names))
    return found


def unresolved_clashes(source: str, keys: t.Iterable[str]) -> list[tuple[int, str]]:
    """Where env.py passes a key of ``configure_args`` both explicitly and inside a
    COPY of ``configure_args`` (``dict(...)``, ``{**...}``, ``.copy()``): the one
    shape :class:`ConfigureArgs` cannot resolve, which fails with "got multiple
    values for keyword argument".

    :param source: env.py's text.
    :param keys: the keys ``configure_args`` holds.
    :returns: ``(line of the named keyword, key)`` for each clash, in line order;
        empty when the source does not parse.
    """
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    keys = set(keys)

    def mentions(node: t.Any) -> bool:
        return any(isinstance(sub, ast.Attribute) and sub.attr == "configure_args"
                   for sub in ast.walk(node))

    def is_the_dict(node: t.Any) -> bool:
        return isinstance(node, ast.Attribute) and node.attr == "configure_args"

    # Names bound to a copy (or anything derived) rather than to the dict itself.
    copies = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and mentions(node.value) \
                and not is_the_dict(node.value):
            copies.update(target.id for target in node.targets
                          if isinstance(target, ast.Name))
    clashes = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        named = [kw for kw in node.keywords if kw.arg in keys]
        for kw in node.keywords:
            value = kw.value
            copied = (isinstance(value, ast.Name) and value.id in copies) or (
                not isinstance(value, ast.Name) and mentions(value)
                and not is_the_dict(value))
            if kw.arg is None and copied:
                clashes.extend((getattr(k, "lineno", node.lineno), k.arg) for k in named)
    return sorted(set(clashes))


# -- the Alembic config ------------------------------------------------------------------


def engine_url_option(value: t.Any) -> t.Any:
    """The value to store for ``sqlalchemy.url`` instead of ``value``.

    Two kinds of value that legacy env.py files pass are replaced by the URL of the
    application's engine, rendered with its password and with ``%`` doubled (Alembic
    reads the option through configparser interpolation; a URL-encoded password such
    as ``p%40ss`` made those env.py files fail with "invalid interpolation syntax"):

    * one of the configured database URLs as written in ``app.config`` (Flask-Migrate
      1.x-2.4): the engine's URL is the database the application really uses (a
      relative SQLite path is resolved under the instance folder since
      Flask-SQLAlchemy 3.0);
    * ``str(engine.url)`` of one of the application's engines (Flask-Migrate
      2.5-2.7), in which SQLAlchemy 2.0 masks the password as ``***``.

    * ``None``: what ``app.config.get('SQLALCHEMY_DATABASE_URI')`` gives (Flask-Migrate
      1.x-2.4) when the application changed its config after ``db.init_app(app)``:
      the default engine, made from the URL ``init_app`` saw, is still the database the
      application uses. With no default engine either, a :class:`MigrateError` says
      the setting is missing (configparser would fail with "option values must be
      strings").

    This is the only place the password is put back: ``db.engine.url`` itself stays
    masked, so an env.py that logs it shows ``***``. Anything else is returned
    unchanged.

    :param value: what env.py passed to ``set_main_option``/``set_section_option``.
    :returns: the string to store, or ``value``.
    :raises MigrateError: ``value`` is ``None`` and there is no default engine.
    """
    if not has_app_context() or not (value is None or isinstance(value, str)):
        return value
    state = current_app.extensions.get("migrate")
    db = getattr(state, "db", None)
    # Flask-SQLAlchemy 3 and 2 alike (this once read 3.0's db.engines only, so 2.x
    # kept the "invalid interpolation syntax" of a '%' in the password).
    engines = app_engines(current_app, db) if db is not None else None
    if value is None:
        if engines and engines.get("") is not None:
            return _config_url(engines[""].url)
        raise MigrateError(
            f"{_caller_line()}: env.py sets Alembic's sqlalchemy.url from "
            "SQLALCHEMY_DATABASE_URI, which is not set: set it in the application's "
            "config before db.init_app(app)"
        )
    if engines is None:
        return value
    for key, configured in configured_urls(current_app.config):
        if value == configured and engines.get(key or "") is not None:
            return _config_url(engines[key or ""].url)
    for engine in engines.values():
        masked = engine.url.render_as_string(hide_password=True)
        if value in (masked, masked.replace("%", "%%")):
            return _config_url(engine.url)
    return value


def _config_url(url: t.Any) -> str:
    return url.render_as_string(hide_password=False).replace("%", "%%")


def adapt_config(config: t.Any) -> t.Any:
    """Make ``sqlalchemy.url`` writes of legacy env.py files safe (see
    :func:`engine_url_option`). Other options and other values are stored as given.

    :param config: an Alembic :class:`~alembic.config.Config`.
    :returns: the same object.
    """
    if getattr(config, "_fmc_legacy_urls", False):
        return config
    set_section_option = config.set_section_option  # set_main_option calls this

    def set_url_aware(section: str, name: str, value: t.Any) -> None:
        if name == "sqlalchemy.url":
            value = engine_url_option(value)
        set_section_option(section, name, value)

    config.set_section_option = set_url_aware
    config._fmc_legacy_urls = True
    return config


# -- the relative SQLite path trap -------------------------------------------------------


def _has_table(path: str, table: str) -> bool:
    """Whether the SQLite file ``path`` exists and has ``table``; opened read-only, so
    nothing is created or changed."""
    if not os.path.isfile(path):
        return False
    import sqlite3
    from urllib.parse import quote

    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def moved_sqlite_database(configured: t.Any, engine_url: t.Any,
                          version_table: str = "alembic_version") -> tuple[str, str] | None:
    """Detect the relative SQLite path trap for one database.

    :param configured: the URL as written in the application's config.
    :param engine_url: the URL of the engine Flask-SQLAlchemy built from it.
    :param version_table: Alembic's version table name.
    :returns: ``(old path, new path)`` when a relative SQLite path now resolves to a
        file without the version table while the same path taken from the working
        directory holds a migrated database; else ``None``.
    """
    from sqlalchemy.engine import make_url

    try:
        url = make_url(configured)
    except Exception:  # noqa: BLE001 - Flask-SQLAlchemy reports unusable URLs itself
        return None
    raw = sqlite_file(url)
    if raw is None or os.path.isabs(raw):
        return None
    new_path = sqlite_file(engine_url)
    if new_path is None:
        return None
    old_path, new_path = os.path.abspath(raw), os.path.abspath(new_path)
    if old_path == new_path or _has_table(new_path, version_table):
        return None
    if not _has_table(old_path, version_table):
        return None
    return old_path, new_path


def check_sqlite_paths() -> None:
    """Refuse to migrate a new SQLite file while the migrated one sits elsewhere.

    Flask-SQLAlchemy 3.0 resolves a relative ``sqlite:///app.db`` under the
    application's instance folder; 2.x used the application's root folder, and the
    env.py of Flask-Migrate 1.x-2.4 (Alembic alone) the working directory, usually
    the same folder. Run unchanged, ``upgrade`` would create an empty
    ``instance/app.db`` and migrate it from scratch while the real data stays in
    ``./app.db``. Called at the start of ``upgrade``, ``downgrade`` and ``stamp``,
    except in offline ``--sql`` mode and with their ``use_new_sqlite_path`` argument
    (the ``--use-new-sqlite-path`` option).

    :raises MigrateError: naming both paths and the fixes (an absolute URI, or
        moving the file).
    """
    if not has_app_context():
        return
    state = current_app.extensions.get("migrate")
    engines = getattr(unwrap(getattr(state, "db", None)), "engines", None)
    if engines is None:  # Flask-SQLAlchemy 2 resolved paths like the application did
        return
    version_table = (getattr(state, "configure_args", None) or {}).get(
        "version_table", "alembic_version"
    )
    for key, configured in configured_urls(current_app.config):
        engine = engines.get(key)
        if engine is None:
            continue
        moved = moved_sqlite_database(configured, engine.url, version_table)
        if moved is None:
            continue
        old_path, new_path = moved
        setting = setting_name(key)
        raise MigrateError(
            f"{setting} {str(configured)!r} now means {new_path}, which has no "
            f"migrations (Flask-SQLAlchemy 3 puts relative SQLite paths in the instance "
            f"folder), but {old_path} (the same path from the working directory) holds "
            f"the migrated database: set {setting} to "
            f"'sqlite:///{old_path}' (an absolute path), or move {old_path} to "
            f"{new_path}; to use {new_path} anyway, pass {SQLITE_OVERRIDE_OPTION}"
        )
