"""The core of flask-migrate-compat: the migration commands.

Both front ends (the ``flask db`` Click group in :mod:`.cli` and the Flask-Script
``MigrateCommand`` in :mod:`.script`) are thin layers over this module, which in turn
is a thin layer over :mod:`alembic.command`. Nothing here knows about Click or
Flask-Script; the Flask extension that registers the Click group is
:mod:`.extension`, above both.

Alembic is imported only when a command runs: ``alembic.config`` alone pulls in
Alembic's whole runtime (~100 ms), and applications import this module on every start.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import sys
import typing as t

from . import legacy
from .errors import (TRACEBACK_ENV, MigrateError, failed_revision, redact,
                     unknown_revision_message)
from .errors import error_message as _error_message
from .lock import command_guard
from .state import error_context, flask_sqlalchemy_2, get_state

if t.TYPE_CHECKING:  # pragma: no cover
    from .config import Config
    from .modernization import Modernization
    from .review import Ask, Review

__all__ = [
    "TRACEBACK_ENV", "MigrateError", "alembic_version", "catch_errors",
    "error_message", "log", "list_templates", "init", "revision", "migrate", "edit",
    "merge", "upgrade", "downgrade", "show", "history", "heads", "branches", "current",
    "stamp", "check", "modernize",
]

#: The package's logger (Flask-Migrate's module-level ``log``).
log = logging.getLogger("flask_migrate_compat")

_PathLike = t.Union[str, "os.PathLike[str]"]
_XArgs = t.Union[None, str, t.Sequence[str]]


def __getattr__(name: str) -> t.Any:
    # ``alembic_version`` is computed on first use: importing Alembic costs ~100 ms,
    # which an application importing this module on every start should not pay.
    if name == "alembic_version":
        from alembic import __version__

        value = tuple(int(part) for part in re.findall(r"\d+", __version__)[:3])
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _script_config(
    directory: _PathLike | None, x_arg: _XArgs = None, opts: t.Iterable[str] | None = None
) -> Config:
    """The Alembic config of an existing script directory, whose revision files have
    been loaded and checked (:func:`_load_script_directory`).

    :raises MigrateError: when the directory has not been created by ``init``, or a
        revision file names a missing ``down_revision`` or repeats a revision id.
    """
    migrate = get_state().migrate
    path = os.fspath(migrate.directory if directory is None else directory)
    if not os.path.isdir(path):
        raise MigrateError(
            f"migrations folder {path!r} not found (looked in {os.path.abspath(path)}): "
            "run 'db init' to create it, or pass -d/--directory"
        )
    config = migrate.get_config(path, x_arg=x_arg, opts=opts)
    _load_script_directory(config)
    return config


@contextlib.contextmanager
def _version_table_command(
    directory: _PathLike | None, x_arg: _XArgs, revision: str, sql: bool,
    no_lock: bool, lock_timeout: float | None, use_new_sqlite_path: bool,
    command: str = "",
) -> t.Iterator[Config]:
    """What ``upgrade``, ``downgrade`` and ``stamp`` (the commands that write the
    version table) do around the Alembic call, which runs inside the block.

    In order: the relative SQLite path check (:func:`.legacy.check_sqlite_paths`,
    online only), the script directory's config, the target revision check
    (:func:`_check_target`), then the migration lock (:func:`.lock.command_guard`) of
    the databases env.py migrates, held for the whole block (``command`` names the
    holder to processes that wait for it). An exception leaving the
    block carries ``fmc_autocommit_revisions``: the revisions whose
    ``autocommit_block()`` ran (committed whatever happens after), and
    ``fmc_offline``: whether the command ran in offline mode (``sql``), which
    touches no database, so the error line must not speak of one.

    :yields: the Alembic config to pass to the command.
    """
    if not (sql or use_new_sqlite_path):
        legacy.check_sqlite_paths()
    config = _script_config(directory, x_arg)
    _check_target(config, revision)
    with command_guard(sql=sql, no_lock=no_lock, lock_timeout=lock_timeout,
                       binds=_migrated_binds(config), command=command), \
            _autocommit_tracker() as committed:
        try:
            yield config
        except BaseException as exc:
            exc.fmc_autocommit_revisions = tuple(committed)  # type: ignore[attr-defined]
            exc.fmc_offline = sql  # type: ignore[attr-defined]
            raise


def _migrated_binds(config: Config) -> list[str] | None:
    """The databases env.py migrates: every bind for a multidb env.py (it passes
    ``engine_name`` to ``run_migrations``, as every multidb template since
    Flask-Migrate 2.0 does), else the default database alone."""
    env_py = os.path.join(config.get_main_option("script_location") or "", "env.py")
    try:
        with open(env_py, encoding="utf-8") as f:
            multidb = "".join(f.read().split()).find("run_migrations(engine_name") >= 0
    except OSError:
        multidb = True  # unknown: lock everything, as before
    return None if multidb else [""]


@contextlib.contextmanager
def _autocommit_tracker() -> t.Iterator[list[str]]:
    """Record which revisions enter ``autocommit_block()`` while the block runs.

    What runs there is committed at once, so after a failure the database holds it
    even where the rest of the revision was rolled back; the error line must say so.
    Alembic (1.20) has no hook for it: ``MigrationContext.autocommit_block`` is
    wrapped for the duration of the command and restored afterwards.
    """
    from alembic.runtime.migration import MigrationContext

    committed: list[str] = []
    original = MigrationContext.__dict__["autocommit_block"]

    def autocommit_block(self: t.Any) -> t.Any:
        frame = sys._getframe(1)
        while frame is not None:
            f_globals = frame.f_globals
            if "down_revision" in f_globals and isinstance(f_globals.get("revision"), str):
                if f_globals["revision"] not in committed:
                    committed.append(f_globals["revision"])
                break
            frame = frame.f_back
        return original(self)

    MigrationContext.autocommit_block = autocommit_block
    try:
        yield committed
    finally:
        MigrationContext.autocommit_block = original


class _AlembicCommands:
    """``alembic.command``, each function called inside
    :func:`_explained_revision_errors`."""

    def __getattr__(self, name: str) -> t.Callable[..., t.Any]:
        from alembic import command

        function = getattr(command, name)

        def call(*args: t.Any, **kwargs: t.Any) -> t.Any:
            given = [a for a in (*args, *kwargs.values()) if isinstance(a, str)]
            with _explained_revision_errors(given):
                return function(*args, **kwargs)

        return call


def _alembic() -> t.Any:
    return _AlembicCommands()


#: The names of the commands that read or write the application's database itself
#: (in offline mode, ``sql=True``, they do not): see :func:`check_database_configured`.
_DATABASE_COMMANDS = frozenset({
    "upgrade", "downgrade", "stamp", "current", "migrate", "revision", "check", "status",
})

#: What Flask-SQLAlchemy 2.x sets ``SQLALCHEMY_DATABASE_URI`` to when the application
#: set neither it nor ``SQLALCHEMY_BINDS``.
_FLASK_SQLALCHEMY_2_FALLBACK = "sqlite:///:memory:"


def check_database_configured(command: t.Callable[..., t.Any], **options: t.Any) -> None:
    """Refuse to run ``command`` on Flask-SQLAlchemy 2's fallback database.

    Flask-SQLAlchemy 2.x sets ``SQLALCHEMY_DATABASE_URI`` to ``'sqlite:///:memory:'``
    when the application set no database (with a warning; 3.0 raises instead, and
    :func:`.errors.startup_error_message` words that): a deploy's ``db upgrade``
    then migrated an in-memory database, gone when the command ended, and exited 0.
    Both front ends call this before a command. (The same URL set on purpose cannot
    be told apart; an in-memory database for a test suite is ``'sqlite://'``.)

    :param command: the core function about to run (its ``__name__`` is looked up).
    :param options: its keyword arguments (``sql``, and ``autogenerate`` for
        ``revision``, say whether it touches the database).
    :raises MigrateError: naming ``SQLALCHEMY_DATABASE_URI``.
    """
    name = getattr(command, "__name__", "")
    if name not in _DATABASE_COMMANDS or options.get("sql"):
        return
    if name == "revision" and not options.get("autogenerate"):
        return
    from flask import current_app

    if not flask_sqlalchemy_2(get_state().db):  # 3.0 raises instead of falling back
        return
    if current_app.config.get("SQLALCHEMY_DATABASE_URI") == _FLASK_SQLALCHEMY_2_FALLBACK:
        raise MigrateError(
            f"SQLALCHEMY_DATABASE_URI is {_FLASK_SQLALCHEMY_2_FALLBACK!r} "
            "(Flask-SQLAlchemy 2 sets that when it is not set): an in-memory database, "
            "gone when the command ends; set SQLALCHEMY_DATABASE_URI (for example "
            "'sqlite:///app.db') to the database to migrate"
        )


def _check_target(config: Config, revision: str) -> None:
    """Resolve a plain target revision before env.py runs.

    Alembic resolves it only after env.py has connected and created the version
    table; checking first means an unknown revision, or ``head`` with several heads,
    fails with the database left exactly as it was. Relative (``-1``, ``ae10+2``) and
    range (``a:b``) targets need the database or offline mode, so Alembic checks those.

    :raises alembic.util.CommandError: unknown revision or ambiguous head.
    """
    if ":" in revision or _is_relative(revision):
        return
    with _explained_revision_errors([revision]):
        _loaded_script(config).get_revisions(revision)


def _is_relative(revision: str) -> bool:
    """Whether ``revision`` ends in a relative step (``-1``, ``+2``, ``ae10+2``).
    String methods, not a regular expression: compiling one costs every command."""
    digits = revision.rstrip("0123456789")
    return len(digits) < len(revision) and digits.endswith(("+", "-"))


#: The (config, ScriptDirectory) that :func:`_load_script_directory` loaded last.
_loaded_scripts: list = []


def _loaded_script(config: Config) -> t.Any:
    for loaded_config, script in _loaded_scripts:
        if loaded_config is config:
            return script
    return _load_script_directory(config)


def _load_script_directory(config: Config) -> t.Any:
    """Load the script directory and every revision file once (or the revision graph
    from :mod:`.graph_cache`), and check them.

    Alembic warns (``UserWarning``) and then fails with a bare ``KeyError`` when a
    ``down_revision`` names a missing revision, and only warns when two files share a
    revision id (the next command then fails on "multiple heads"). Both become one
    :class:`MigrateError` naming the files. The instance is kept for the Alembic
    command that follows (:func:`_reuse_script_directory`).

    :returns: the :class:`alembic.script.ScriptDirectory`.
    :raises MigrateError: for a missing down revision or a duplicate revision id.
    """
    import warnings

    from alembic.script import ScriptDirectory

    from . import graph_cache

    _reuse_script_directory(ScriptDirectory)
    _loaded_scripts[:] = []
    script = ScriptDirectory.from_config(config)
    # The revision map from the revision-graph cache when it matches the files
    # (graph_cache); else Alembic executes every file, and the cache is written.
    store_cache = graph_cache.attach(script)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            script.revision_map.heads  # builds the map: imports every revision file
        except Exception as exc:
            problem = _revision_files_problem(script)
            if problem is not None:
                raise MigrateError(problem) from exc
            raise
    problem = _revision_files_problem(script) if caught else None
    if problem is not None:
        raise MigrateError(problem)
    for warning in caught:  # anything else: pass it on, once
        warnings.warn_explicit(warning.message, warning.category, warning.filename,
                               warning.lineno)
    if store_cache is not None and not caught:
        store_cache()
    _loaded_scripts[:] = [(config, script)]
    return script


def _revision_files_problem(script: t.Any) -> str | None:
    """What is wrong with the revision files' ids: a repeated revision id, or a
    ``down_revision`` or ``depends_on`` that no file defines; ``None`` when
    neither."""
    # ScriptDirectory._load_revisions (private, unchanged since Alembic 0.7) yields
    # one Script per file without building the revision map, which is what failed.
    files: dict[str, list[str]] = {}
    scripts = list(script._load_revisions())
    for found in scripts:
        files.setdefault(found.revision, []).append(found.path)
    for revision, paths in sorted(files.items()):
        if len(paths) > 1:
            return (
                f"revision id {revision} is defined by {len(paths)} files, "
                f"{' and '.join(sorted(paths))}: give all but one of them a new "
                "revision id (and update any down_revision that names it)"
            )
    labels = {label for found in scripts for label in found.branch_labels or ()}
    folders = ", ".join(script.version_locations or [script.versions])
    for found in sorted(scripts, key=lambda s: s.path):
        for attribute, named in (("down_revision", found.down_revision),
                                 ("depends_on", found.dependencies)):
            for missing in (named,) if isinstance(named, str) else tuple(named or ()):
                # depends_on may also name a branch label (or label@revision).
                if missing in files or (attribute == "depends_on" and (
                        missing in labels or missing.split("@")[0] in labels)):
                    continue
                return (
                    f"revision file {found.path} (revision {found.revision}) names "
                    f"{attribute} {missing!r}, which no file in {folders} defines: "
                    f"restore that revision's file, or set {attribute} to an "
                    "existing revision"
                )
    return None


@contextlib.contextmanager
def _explained_revision_errors(given: t.Sequence[str] = ()) -> t.Iterator[None]:
    """Reword Alembic's "Can't locate revision identified by 'x'" where we can say
    more: ``x`` is the start of several revision ids, or too short to match one, or
    (when the user did not type it) a database's version table holds it and the
    folder does not (:func:`.errors.unknown_revision_message`).

    :param given: the text the user gave the command (its revision arguments).
    :raises MigrateError: with the revisions an ambiguous prefix matches, or naming
        the database whose version table holds the unknown revision.
    """
    from alembic.script.revision import ResolutionError
    from alembic.util import CommandError

    try:
        yield
    except CommandError as exc:
        cause = exc.__cause__
        argument = getattr(cause, "argument", None)
        if not isinstance(cause, ResolutionError) or not isinstance(argument, str) \
                or not _loaded_scripts:
            raise
        script = _loaded_scripts[0][1]
        matches = sorted(
            (found for found in script.walk_revisions() if found.revision.startswith(argument)),
            key=lambda found: found.revision,
        )
        listed = ", ".join(f"{found.revision} ({found.doc!r})" for found in matches)
        if len(matches) > 1:
            raise MigrateError(
                f"revision {argument!r} is ambiguous: it is the start of "
                f"{len(matches)} revision ids, {listed}: give more of its characters"
            ) from None
        if matches and len(argument) < 4:
            raise MigrateError(
                f"revision {argument!r} is too short: a partial revision id needs at "
                f"least 4 characters (it is the start of {listed})"
            ) from None
        if not matches and not any(argument in text for text in given):
            explained = _unknown_database_revision(_loaded_scripts[0][0], script, argument)
            if explained is not None:
                raise MigrateError(explained) from None
        raise


def _unknown_database_revision(config: Config, script: t.Any, revision: str) -> str | None:
    """The line for ``revision`` held by a database's version table but defined by no
    revision file; ``None`` when no version table holds it (read to make sure)."""
    from .version_table import holding, version_tables

    found = holding(revision, version_tables(_migrated_binds(config)))
    if not found:
        return None
    heads = [(head.revision, head.doc) for head in script.get_revisions(script.get_heads())]
    return unknown_revision_message(revision, found[0].database, script.dir, heads)


def _reuse_script_directory(script_directory_class: t.Any) -> None:
    """Make ``ScriptDirectory.from_config(config)`` return the instance
    :func:`_load_script_directory` already built for that very config object.

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


def _docstring_safe(message: str | None) -> str | None:
    """The revision message as it can stand in the new file's docstring.

    Every Flask-Migrate template (and ours) writes it as ``\"\"\"${message}``: a
    backslash or a quote in it would end the docstring early or start an escape.
    Escaped here, the docstring's value (``Script.doc``, what ``history`` shows) is
    the message as given.
    """
    if message is None:
        return None
    return message.replace("\\", "\\\\").replace('"', '\\"')


@contextlib.contextmanager
def _new_revision_file(
    config: Config, rev_id: str | None, version_path: str | None = None,
    head: str | t.Sequence[str] = "head",
) -> t.Iterator[t.Callable[[t.Any], t.Any]]:
    """Guard a command that writes a new revision file: refuse a ``rev_id`` that
    exists already or a folder it cannot write into (:func:`_check_revision_folder`),
    both before env.py runs, and remove a written file that is not valid Python (a
    custom template, a message it could not hold), so no broken file trips every later
    command.

    :yields: a function to pass the command's result through (the new
        :class:`~alembic.script.Script`, a list of them, or ``None``); it checks the
        files and returns the result.
    :raises MigrateError: for an existing ``rev_id``, a folder that cannot be written
        into, or a file that was removed.
    """
    _check_revision_folder(config, version_path, head)
    if rev_id is not None:
        for found in _loaded_script(config).walk_revisions():
            if found.revision == rev_id:
                raise MigrateError(
                    f"revision id {rev_id!r} exists already ({found.path}): choose "
                    "another --rev-id, or leave it out for a generated one"
                )

    def written(result: t.Any) -> t.Any:
        scripts = result if isinstance(result, list) else [result]
        for script in scripts:
            path = getattr(script, "path", None)
            if not path or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                source = f.read()
            try:
                compile(source, path, "exec")
            except SyntaxError as exc:
                os.remove(path)
                raise MigrateError(
                    f"the new revision file {path} was not valid Python ({exc.msg}, "
                    f"line {exc.lineno}), so it was removed: check the template "
                    "script.py.mako and the message"
                ) from None
        return result

    yield written


def _check_revision_folder(config: Config, version_path: str | None,
                           head: str | t.Sequence[str]) -> None:
    """Fail at once when the folder the new revision file goes into cannot be written.

    Without this, ``migrate`` runs env.py and the whole autogenerate comparison (and
    the review prints its warnings) before Alembic fails on the file with a bare
    ``OSError``; the folder is the news. The folder is the one Alembic's
    ``ScriptDirectory.generate_revision`` picks (1.20): ``version_path``, else the
    single version location, else the folder of the head's file. Writing is tried
    (a temporary file), not guessed from permission bits: root ignores those, and a
    read-only mount does not show in them.

    :raises MigrateError: naming the folder and why it cannot be written.
    """
    import tempfile

    script = _loaded_script(config)
    folder = version_path
    if folder is None:
        try:
            locations = script._version_locations  # Alembic 1.x, private but stable
            if len(locations) == 1:
                folder = str(locations[0])
            else:
                heads = script.revision_map.get_revisions(head)
                folder = next((os.path.dirname(h.path) for h in heads if h is not None),
                              None)
        except Exception:  # noqa: BLE001 - what Alembic says about it is clearer
            return
    if folder is None:
        return
    existing = os.path.abspath(folder)
    while not os.path.isdir(existing) and os.path.dirname(existing) != existing:
        existing = os.path.dirname(existing)  # Alembic creates the missing part
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise MigrateError(
            f"cannot write the new revision file into {folder}: {reason}; make the "
            "folder writable (or pass --version-path to another version location), "
            "and run the command again"
        ) from None


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

    migrate = get_state().migrate
    directory = os.fspath(migrate.directory if directory is None else directory)
    template_directory = None
    if template is not None and ("/" in template or os.sep in template):
        # A path (./custom, custom/, ../x/custom, /abs/custom): made absolute first,
        # which also drops a trailing separator, so the split gives folder and name.
        template_directory, template = os.path.split(os.path.abspath(template))
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
    *,
    strict: bool = False,
    ask: Ask | None = None,
) -> t.Any:
    """Create a new revision script (``alembic revision``).

    :param autogenerate: fill it with the differences between the models and the
        database; with no difference nothing is written. The operations generated are
        reviewed (:mod:`.review`): each finding is emitted as a
        :class:`.review.ReviewWarning` and written as a comment above its operation.
    :param sql: offline mode (only meaningful with a custom env.py).
    :param head: the head (or ``<branch>@head``) the new revision follows.
    :param splice: allow a non-head revision as ``head``.
    :param branch_label: a branch label for the new revision.
    :param version_path: one of the configured version locations to write into.
    :param rev_id: use this revision id instead of a generated one.
    :param strict: with autogenerate, write no file when the review has findings
        (also on with the ``MIGRATE_STRICT = True`` setting).
    :param ask: with autogenerate, ``ask(question)`` asks about probable renames and
        missing server defaults (see :class:`.review.Question`) and the answers are
        written into the operations; ``None`` (the default) only warns.
    :returns: the new :class:`alembic.script.Script` (or a list, for several), or
        ``None`` when autogenerate found nothing.
    :raises alembic.util.CommandError: for example when the database is not at head.
    :raises .review.ReviewFailed: strict mode and findings (a :class:`MigrateError`);
        no file was written.
    """
    config = _script_config(directory, x_arg, ["autogenerate"] if autogenerate else None)
    with _new_revision_file(config, rev_id, version_path, head) as written:
        review = _review(config, strict, ask) if autogenerate else None
        result = written(_alembic().revision(
            config, _docstring_safe(message), autogenerate=autogenerate, sql=sql,
            head=head, splice=splice, branch_label=branch_label,
            version_path=version_path, rev_id=rev_id, process_revision_directives=review,
        ))
    # Alembic returns an empty list when env.py dropped the empty script.
    result = None if isinstance(result, list) and not result else result
    if review is not None and result is None:
        review.check_writable()  # strict: findings, though env.py wrote nothing
    return result


def _review(config: Config, strict: bool, ask: Ask | None) -> Review:
    """The review of an autogenerate run (:class:`.review.Review`), with what it
    needs to know: strict mode, the ``# reviewed`` comments of the revision files, and
    whether PostgreSQL ENUM value changes can be detected
    (:func:`.autogen.enable_enum_value_detection`, done here so that it also applies
    to old env.py files)."""
    from flask import current_app

    from .autogen import enable_enum_value_detection
    from .config import flag_setting
    from .review import Review, reviewed_headlines
    from .state import app_engines

    try:
        dialects = [e.dialect.name for e in app_engines(current_app, get_state().db).values()]
    except Exception:  # noqa: BLE001 - no usable engine: env.py will say what is wrong
        dialects = []
    script = _loaded_script(config)
    return Review(
        ask=ask,
        strict=strict or flag_setting(current_app.config, "MIGRATE_STRICT", False),
        reviewed=reviewed_headlines(found.path for found in script.walk_revisions()),
        enum_detection=enable_enum_value_detection(current_app.config, dialects),
    )


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
    *,
    strict: bool = False,
    ask: Ask | None = None,
) -> t.Any:
    """Autogenerate a new revision script: :func:`revision` with ``autogenerate=True``
    (``alembic revision --autogenerate``), reviewed. Arguments as for
    :func:`revision`."""
    return revision(
        directory, message, True, sql, head, splice, branch_label, version_path, rev_id,
        x_arg, strict=strict, ask=ask,
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
    config = _script_config(directory)
    with _new_revision_file(config, rev_id, head=revisions) as written:
        return written(_alembic().merge(
            config, revisions, message=_docstring_safe(message),
            branch_label=branch_label, rev_id=rev_id,
        ))


def upgrade(
    directory: _PathLike | None = None,
    revision: str = "head",
    sql: bool = False,
    tag: str | None = None,
    x_arg: _XArgs = None,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    use_new_sqlite_path: bool = False,
    quiet: bool = False,
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
    :param quiet: do not print each revision's time and the summary on stderr
        (:mod:`.timing`; printed only in online mode, where env.py passes
        ``configure_args`` to ``context.configure``).
    :raises alembic.util.CommandError: unknown revision, or several heads with ``head``.
    :raises MigrateError: lock timeout, the SQLite path check, or the database
        unreachable for the lock.
    :raises sqlalchemy.exc.SQLAlchemyError: a revision failed (:func:`error_message`
        names it, and says when the database may hold part of it).
    """
    with _version_table_command(directory, x_arg, revision, sql, no_lock, lock_timeout,
                                use_new_sqlite_path, "upgrade") as config, \
            _timed(sql, quiet):
        _alembic().upgrade(config, revision, sql=sql, tag=tag)


@contextlib.contextmanager
def _timed(sql: bool, quiet: bool) -> t.Iterator[None]:
    """Time each revision of an online ``upgrade``/``downgrade`` (:mod:`.timing`) and
    print the summary on stderr once the command succeeded."""
    if sql:
        yield
        return
    from .timing import summary, timed_revisions

    with timed_revisions(get_state().configure_args, quiet=quiet) as timings:
        yield
    line = summary(timings)
    if line is not None and not quiet:
        print(line, file=sys.stderr, flush=True)


def downgrade(
    directory: _PathLike | None = None,
    revision: str = "-1",
    sql: bool = False,
    tag: str | None = None,
    x_arg: _XArgs = None,
    no_lock: bool = False,
    lock_timeout: float | None = None,
    use_new_sqlite_path: bool = False,
    quiet: bool = False,
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
    :param quiet: as for :func:`upgrade`.
    :raises MigrateError: as for :func:`upgrade`.
    """
    if sql and revision == "-1":
        revision = "head:-1"
    with _version_table_command(directory, x_arg, revision, sql, no_lock, lock_timeout,
                                use_new_sqlite_path, "downgrade") as config, \
            _timed(sql, quiet):
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
) -> list[str]:
    """Print the heads of the script directory (``alembic heads``).

    :param resolve_dependencies: treat ``depends_on`` revisions as down revisions.
    :returns: the head revision ids, in the order printed.
    """
    config = _script_config(directory)
    script = _loaded_script(config)
    _alembic().heads(config, verbose=verbose, resolve_dependencies=resolve_dependencies)
    # What alembic.command.heads prints, in its order.
    found = script.get_revisions("heads" if resolve_dependencies else script.get_heads())
    return [rev.revision for rev in found]


def branches(directory: _PathLike | None = None, verbose: bool = False) -> None:
    """Print the branch points (``alembic branches``)."""
    _alembic().branches(_script_config(directory), verbose=verbose)


def current(
    directory: _PathLike | None = None, verbose: bool = False, x_arg: _XArgs = None,
    check_heads: bool = False,
) -> list[str]:
    """Print the database's current revision, per database (``alembic current``).

    :param check_heads: fail, before printing, when a database's version table does
        not hold exactly the head(s) (``alembic current --check-heads``, Alembic
        1.17.1; done here so that it works with every supported Alembic and names
        the database).
    :returns: the revision ids printed, in order (for a multidb env.py, each
        database's in turn).
    :raises MigrateError: with ``check_heads``, naming the first database that is
        not at head, its revisions and the heads.
    """
    config = _script_config(directory, x_arg)
    script = _loaded_script(config)
    printed: list[str] = []
    get_all_current = script.get_all_current

    def recording(id_: t.Any) -> t.Any:
        if check_heads and set(id_ or ()) != set(script.get_heads()):
            raise MigrateError(_not_at_head_message(script, id_))
        # alembic.command.current prints exactly the set this returns, in its order.
        found = _all_current(script, id_, get_all_current)
        printed.extend(rev.revision for rev in found)
        return found

    script.get_all_current = recording
    try:
        _alembic().current(config, verbose=verbose)
    finally:
        del script.get_all_current
    return printed


def _not_at_head_message(script: t.Any, current_heads: t.Any) -> str:
    """``db current --check-heads``'s line: which database, where it is, the heads."""
    from alembic import context

    from .errors import describe_database, list_revisions

    try:
        where = f"the {describe_database(context.get_context().connection.engine.url)}"
    except Exception:  # noqa: BLE001 - no connection to name: say "the database"
        where = "the database"

    def named(ids: t.Any) -> str:
        try:
            found = script.get_revisions(tuple(ids))
        except Exception:  # noqa: BLE001 - a revision the folder lacks: its id alone
            return ", ".join(ids)
        return list_revisions([(rev.revision, (rev.doc or "").strip().splitlines()[0]
                                if rev.doc else None) for rev in found])

    at = named(current_heads) if current_heads else "base (no revision applied)"
    heads = named(script.get_heads()) or "none"
    return f"{where} is at {at}, not at the head(s) {heads}: run 'db upgrade'"


def _all_current(script: t.Any, id_: t.Any, get_all_current: t.Callable[[t.Any], t.Any]
                 ) -> set[t.Any]:
    """What ``ScriptDirectory.get_all_current(id_)`` returns (the revisions ``current``
    prints: the given ones and the heads of the branches they depend on), in time
    linear in the history instead of quadratic.

    Alembic (1.9 to 1.20, ``RevisionMap._filter_into_branch_heads``) walks the
    descendants of every ancestor of the current revisions to keep those with none in
    the set: 1.4 G instructions at 1000 revisions, twice what the rest of ``db
    current`` costs. The set is closed under ancestry, so a revision has a descendant
    in it exactly when one of its direct successors (``nextrev``, dependencies aside,
    as there) is in it. Any failure (an unknown revision...) is left to
    ``get_all_current`` itself, for its error.
    """
    try:
        revision_map = script.revision_map
        found = set(revision_map.get_revisions(id_))
        found.update(revision_map._get_ancestor_nodes(list(found), include_dependencies=True))
    except Exception:  # noqa: BLE001 - Alembic's own call raises its own error
        return get_all_current(id_)
    names = {rev.revision for rev in found}
    return {rev for rev in found if not rev.nextrev & names}


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
                                use_new_sqlite_path, "stamp") as config:
        _alembic().stamp(config, revision, sql=sql, tag=tag, purge=purge)


def check(directory: _PathLike | None = None, x_arg: _XArgs = None) -> None:
    """Fail when autogenerate would write a new revision (``alembic check``).

    The operations autogenerate would write are reviewed as by :func:`migrate`: each
    finding is emitted as a :class:`.review.ReviewWarning`.

    :raises alembic.util.AutogenerateDiffsDetected: the models and the database differ
        (a :class:`~alembic.util.CommandError`).
    """
    config = _script_config(directory, x_arg)
    review = _review(config, strict=False, ask=None)
    with _explained_revision_errors():
        _check(config, review)


def _check(config: Config, review: Review) -> None:
    """``alembic.command.check`` with a ``process_revision_directives`` hook, which
    that command does not take (Alembic 1.20): the same autogenerate comparison
    through Alembic's :class:`~alembic.autogenerate.RevisionContext`, no file
    written."""
    from alembic.util import AutogenerateDiffsDetected

    context, diffs = _autogenerate_diffs(config, review)
    if diffs:
        message = f"New upgrade operations detected: {diffs}"
        try:
            raise AutogenerateDiffsDetected(message, revision_context=context, diffs=diffs)
        except TypeError:  # Alembic < 1.13: the message only
            exc = AutogenerateDiffsDetected(message)
            exc.diffs = diffs  # what error_message words
            raise exc from None
    config.print_stdout("No new upgrade operations detected.")


def _autogenerate_diffs(config: Config, review: Review) -> tuple[t.Any, list]:
    """The autogenerate comparison of ``db check``: env.py runs (so its own
    ``include_object`` and the ``Migrate`` configure arguments apply) and compares
    the models with the database it connects to; nothing is written.

    :returns: ``(RevisionContext, diffs)``; ``diffs`` as Alembic's
        ``compare_metadata`` gives them, empty when the models match.
    :raises alembic.util.CommandError: the database is not at head.
    """
    from alembic.autogenerate import RevisionContext
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)
    context = RevisionContext(
        config, script,
        dict(message=None, autogenerate=True, sql=False, head="head", splice=False,
             branch_label=None, version_path=None, rev_id=None, depends_on=None),
        process_revision_directives=review,
    )

    def compare(rev: t.Any, migration_context: t.Any) -> list:
        context.run_autogenerate(rev, migration_context)
        return []

    with EnvironmentContext(config, script, fn=compare, as_sql=False,
                            template_args=context.template_args, revision_context=context):
        script.run_env()
    diffs = [diff for generated in context.generated_revisions
             for ops in generated.upgrade_ops_list for diff in ops.as_diffs()]
    return context, diffs


def modernize(directory: _PathLike | None = None, write: bool = False,
              diff: bool = False) -> Modernization:
    """List the SQLAlchemy 1.x-only idioms of the revision files, and with ``write``
    rewrite them into their SQLAlchemy 2 form (:mod:`.modernization`; no Alembic
    command: Alembic runs the files, this edits them).

    The revision files are read as source (never imported), so a file that does not
    parse is reported, not fatal, and is never written.

    :param directory: the script directory; default: the extension's.
    :param write: rewrite each file whose rewrite compiles, keeping its formatting
        and comments; what cannot be rewritten faithfully gets a ``# TODO`` comment.
    :param diff: also compute each file's rewrite as a unified diff.
    :returns: a :class:`.modernization.Modernization`; its ``exit_code`` is 1 while
        an idiom is left (without ``write``: any; with it: one marked TODO) or a file
        could not be read, else 0.
    :raises MigrateError: no script directory.
    """
    from .modernization import modernize_files

    return modernize_files(revision_file_paths(directory), write=write, diff=diff)


def revision_file_paths(directory: _PathLike | None = None) -> list[str]:
    """The revision files of a script directory (its ``version_locations``, or
    ``versions``), found as Alembic finds them but without importing them.

    :param directory: the script directory; default: the extension's (then an
        application context is needed).
    :raises MigrateError: the directory does not exist.
    """
    from alembic.script import ScriptDirectory

    from .modernization import revision_files

    if directory is None:
        directory = get_state().migrate.directory
    path = os.fspath(directory)
    if not os.path.isdir(path):
        raise MigrateError(
            f"migrations folder {path!r} not found (looked in {os.path.abspath(path)}): "
            "run 'db init' to create it, or pass -d/--directory"
        )
    try:
        config = get_state().migrate.get_config(path)
    except MigrateError:  # no application: the folder's alembic.ini alone
        from .config import Config

        config = Config(os.path.join(path, "alembic.ini"))
        config.set_main_option("script_location", path)
    script = ScriptDirectory.from_config(config)
    return revision_files([os.fspath(p) for p in script.version_locations or [script.versions]],
                          # Alembic 1.10 added recursive version locations.
                          recursive=getattr(script, "recursive_version_locations", False))


# -- errors -----------------------------------------------------------------------


def error_message(exc: BaseException) -> str:
    """The one-line text a front end shows for a failed command, with the current
    application's databases named and their passwords kept out.

    The wording itself lives in :func:`.errors.error_message`; this adds what it needs
    to know of the application (its engines and passwords), when there is one.

    :param exc: the exception a command raised.
    :returns: a single line, without the ``Error:`` prefix.
    """
    diffs = getattr(exc, "diffs", None)
    if diffs and type(exc).__name__ == "AutogenerateDiffsDetected":
        # Alembic's own message is the operations' repr, memory addresses included;
        # the Python API keeps it (Flask-Migrate's check raises it), a command says
        # what differs.
        from .autogen import describe_difference

        found = sorted(describe_difference(diff) for diff in diffs)
        return (f"New upgrade operations detected: {len(found)} difference"
                f"{'s' if len(found) != 1 else ''} between the models and the "
                f"database: {'; '.join(found)}")
    return _error_message(exc, hint=_modernize_hint(exc),
                          versions_now=_versions_after_failure(exc), **error_context())


def _versions_after_failure(exc: BaseException) -> tuple[str, ...] | None:
    """:func:`.version_table.after_failure` for a failure that went through a revision
    script; ``None`` for any other (nothing is read then)."""
    if failed_revision(exc) is None or getattr(exc, "fmc_offline", False):
        return None
    from .version_table import after_failure

    return after_failure(exc)


def _modernize_hint(exc: BaseException) -> str | None:
    """The line naming the SQLAlchemy 1.x idiom a revision failed on
    (:func:`.modernization.failure_hint`), or ``None``. Loaded only for a failure."""
    if not isinstance(exc, Exception) or "sqlalchemy" not in sys.modules:
        return None
    from .modernization import failure_hint

    try:
        return failure_hint(exc)
    except Exception:  # noqa: BLE001 - the hint must never hide the error itself
        return None


def redacted(text: str) -> str:
    """``text`` (a warning, a message from elsewhere) without the current
    application's database passwords (see :func:`.errors.redact`).

    :param text: any text.
    :returns: the text, credentials replaced by ``***``.
    """
    return redact(text, error_context()["passwords"])


def catch_errors(f: t.Callable[..., t.Any]) -> t.Callable[..., t.Any]:
    """Decorator (Flask-Migrate's): a failed command prints one ``Error: ...`` line on
    stderr and exits with code 1 instead of raising.

    Catches what Flask-Migrate's catches (Alembic's ``CommandError`` and
    ``RuntimeError``) and :class:`MigrateError`. The line is printed, not logged, so it
    shows even after an old env.py's ``fileConfig()`` disabled the loggers.

    :param f: a function to wrap.
    :returns: the wrapper; it returns what ``f`` returns.
    :raises SystemExit: with code 1 when ``f`` raised one of those errors.
    """
    import functools
    import sys

    @functools.wraps(f)
    def wrapped(*args: t.Any, **kwargs: t.Any) -> t.Any:
        from alembic.util import CommandError

        try:
            return f(*args, **kwargs)
        except (CommandError, MigrateError) as exc:
            print(f"Error: {error_message(exc)}", file=sys.stderr)
            sys.exit(1)
        except RuntimeError as exc:  # the application's own: its message, as given
            print(f"Error: {redacted(' '.join(str(exc).split()))}", file=sys.stderr)
            sys.exit(1)

    return wrapped
