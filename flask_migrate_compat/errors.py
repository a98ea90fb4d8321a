"""What a failed command says: :class:`MigrateError` and the one-line wording of every
failure, for both front ends and the Python API.

This module imports nothing of this package, so every other module can use it. It
knows nothing of Flask either: whatever depends on the running application (its
engines, the passwords of its URLs) is passed in by the caller
(:func:`flask_migrate_compat.core.error_message` gathers it).

Passwords: the sentences written here are built from parts that hold none (backend,
database name, host, port, revision ids). Text that comes from elsewhere (a driver's
error, an exception raised by a revision script or by env.py) goes through
:func:`redact`, which removes credentials only: the password of a URL, a
``password=...`` pair, and the application's own passwords where they stand as a
token of their own, never inside a longer word (with the password ``postgres``,
"postgresql" stays readable).
"""
from __future__ import annotations

import os
import re
import sys
import typing as t

#: Name of the environment variable that makes the front ends re-raise errors with
#: their traceback instead of printing one line.
TRACEBACK_ENV = "FLASK_MIGRATE_COMPAT_TRACEBACK"

#: Exit codes of an interrupted command, as a shell reports a process killed by the
#: signal (128 + signal number): Ctrl-C (SIGINT) and SIGTERM.
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class MigrateError(Exception):
    """An error the user can fix (missing folder, no application context, a lock that
    timed out...).

    Its message is a single line suitable for a terminal. The command line front ends
    print it on stderr and exit with code 1; Python callers can catch it.
    """


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when the process receives SIGTERM while a command
    that writes the version table runs.

    A subclass of :class:`KeyboardInterrupt`, so that it is handled like Ctrl-C:
    ``except Exception`` clauses in Alembic and in the application do not swallow it,
    psycopg cancels the statement running on the server, and the migration lock is
    released on the way out.
    """


# -- naming things without secrets --------------------------------------------------


def describe_database(url: t.Any) -> str:
    """``<backend> database 'name' on host:port``: names a database without its user
    name or password.

    :param url: a SQLAlchemy :class:`~sqlalchemy.engine.URL`.
    :returns: for example ``postgresql database 'shop' on db.internal:5432``; a URL
        whose host holds an ``@`` (an unencoded password, see
        :func:`unencoded_password`) is named without its host.
    """
    if url.get_backend_name() == "sqlite":
        return f"SQLite database {url.database!r}"
    if unencoded_password(url):
        return f"{url.get_backend_name()} database {url.database!r}"
    host = url.host or "localhost"
    if url.port:
        host = f"{host}:{url.port}"
    return f"{url.get_backend_name()} database {url.database!r} on {host}"


def sqlite_folder_missing_message(path: str) -> str:
    """The error for a SQLite database whose folder does not exist (SQLite creates a
    missing database file, never a missing folder).

    :param path: the database file's absolute path.
    :returns: one line, worded like the driver's own "unable to open database file".
    """
    import os

    folder = os.path.dirname(path)
    return (
        f"cannot connect to the SQLite database {path!r}: unable to open database "
        f"file (folder {folder!r} does not exist)"
    )


def unencoded_password(url: t.Any) -> bool:
    """Whether a URL's password held an ``@`` that was not percent-encoded.

    SQLAlchemy splits ``user:password@host`` at the first ``@``, so with
    ``mysql://u:Pw@secret@host/db`` the rest of the password lands in the host
    (``secret@host``), and every message naming the host would show it.

    :param url: a SQLAlchemy URL.
    :returns: ``True`` when the parsed host contains ``@``.
    """
    return "@" in (url.host or "")


def percent_encoding_message(setting: str) -> str:
    """The error for a URL whose password is not percent-encoded.

    :param setting: where the URL is configured (``SQLALCHEMY_DATABASE_URI``...).
    :returns: one line; it names no part of the URL.
    """
    return (
        f"the password in {setting} holds a character that must be percent-encoded "
        "in a URL: write '@' as %40 (and '/' as %2F, '#' as %23, '?' as %3F, "
        "':' as %3A), for example with urllib.parse.quote_plus(password)"
    )


def list_revisions(revisions: t.Iterable[tuple[str, str | None]]) -> str:
    """``ab12cd ('add users'), ef34gh ('add posts')``: revisions named with their
    message.

    :param revisions: ``(revision id, message or None)`` pairs; of a message of
        several lines (a docstring's first paragraph) only the first is shown.
    """
    firsts = [(revision, (message or "").strip().split("\n", 1)[0].strip())
              for revision, message in revisions]
    return ", ".join(
        f"{revision} ({message!r})" if message else revision for revision, message in firsts
    )


def unknown_revision_message(revision: str, database: str, directory: str,
                             heads: t.Sequence[tuple[str, str | None]]) -> str:
    """The line for a version table that names a revision the script directory lacks
    (Alembic's "Can't locate revision identified by ...", said in full).

    :param revision: the revision id the version table holds.
    :param database: the database, as :func:`describe_database` names it.
    :param directory: the script directory.
    :param heads: the folder's heads, ``(revision id, message)``.
    :returns: one line: what is wrong, the likely cause and the fixes.
    """
    if not heads:
        folder_heads = "the folder has no revision"
    elif len(heads) == 1:
        folder_heads = f"the folder's head is {list_revisions(heads)}"
    else:
        folder_heads = f"the folder's heads are {list_revisions(heads)}"
    return (
        f"the version table of the {database} names revision {revision!r}, which no "
        f"file in {directory!r} defines ({folder_heads}): its revision file was "
        "probably deleted or renamed, or the database was migrated from another "
        "branch or checkout; restore that file ('db doctor' looks for it in git), or "
        "when the schema matches the models ('db doctor' checks) run "
        "'db stamp --purge head'"
    )


def first_line(exc: BaseException) -> str:
    """The first non-empty line of an error's message (for SQLAlchemy's wrappers, of
    the driver's own error).

    :param exc: an exception.
    :returns: one line, not yet redacted (the exception type's name when the
        message is empty).
    """
    orig = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    return lines[0] if lines else type(orig).__name__


def setting_name(key: str | None) -> str:
    """The configuration key a database's URL is set under.

    :param key: the bind key, ``None`` or ``""`` for the default database.
    :returns: ``SQLALCHEMY_DATABASE_URI`` or ``SQLALCHEMY_BINDS['key']``.
    """
    return "SQLALCHEMY_DATABASE_URI" if not key else f"SQLALCHEMY_BINDS[{key!r}]"


# -- redaction ------------------------------------------------------------------------

# Patterns as strings, compiled by the re module's cache on first use: only a failed
# command redacts, and compiling both at import would cost every command ~0.5 ms.
# scheme://user:password@ : everything up to the last '@' of the token is the password
# (an unencoded '@' in it must not let a fragment through).
_URL_CREDENTIALS = r"(\b[A-Za-z][\w+.-]*://[^\s:/@]*:)\S*@"
# password=secret, PWD: secret, "password": "secret" (DSNs, dicts, driver messages).
_PASSWORD_PAIR = r"""(?i)(\b(?:password|passwd|pwd)['"]?\s*[=:]\s*)(['"]?)[^\s'",;)}]+\2"""


# What continues a word, a number or an address: a password next to one of these is
# part of something else ("postgres" in "postgresql", "1" in "127.0.0.1").
_WORDISH = r"[A-Za-z0-9_.-]"


def redact(text: str, passwords: t.Iterable[str] = ()) -> str:
    """Remove credentials from text that did not come from this package.

    Replaced by ``***``: the password of every URL in the text, the value of
    ``password=``/``pwd=`` pairs, and each of ``passwords`` (raw or percent-encoded)
    where it stands as a token of its own: not preceded or followed by a letter, a
    digit, ``_``, ``.`` or ``-``. So a password that is also part of a word or an
    address (``postgres`` in "postgresql", ``1`` in "127.0.0.1") leaves it alone.

    The known passwords go first: a pattern stops at a space or a quote, which a
    password may hold, and would leave the rest of it behind.

    :param text: an error message from a driver, env.py or a revision script.
    :param passwords: the passwords of the application's database URLs.
    :returns: the text without those credentials.
    """
    from urllib.parse import quote, quote_plus

    forms = set()
    for password in passwords:
        if password:
            forms.update({password, quote(password, safe=""), quote_plus(password)})
    # Longest first, so that a password containing another is replaced whole.
    for form in sorted(forms, key=len, reverse=True):
        text = re.sub(rf"(?<!{_WORDISH}){re.escape(form)}(?!{_WORDISH})", "***", text)
    text = re.sub(_URL_CREDENTIALS, r"\1***@", text)
    return re.sub(_PASSWORD_PAIR, r"\1\2***\2", text)


# -- the one line ---------------------------------------------------------------------


def error_message(
    exc: BaseException,
    engines: t.Mapping[str, t.Any] | None = None,
    passwords: t.Iterable[str] = (),
    hint: str | None = None,
    versions_now: tuple[str, ...] | None = None,
) -> str:
    """The one-line text a front end shows for a failed or interrupted command.

    Ours (:class:`MigrateError`) and Alembic's ``CommandError`` give their message; a
    database that cannot be reached is named (backend, database, host); a revision
    that failed or was interrupted is named with its database and what the database
    holds now (rolled back, or possibly part of the revision); anything else (a broken
    revision script, a bug) is named with its type and where it was raised.

    :param exc: the exception the command raised (``KeyboardInterrupt`` and
        :class:`Terminated` included).
    :param engines: ``{bind name: Engine}`` of the application (``""`` for the
        default database), to name the database concerned; ``None`` when unknown.
    :param passwords: the application's database passwords, removed from any text
        that comes from elsewhere (see :func:`redact`).
    :param hint: what a revision that failed did wrong, said in place of the
        exception's first line (:func:`.modernization.failure_hint`: a SQLAlchemy 1.x
        idiom); redacted like any foreign text.
    :param versions_now: what the version table of the database a failed revision
        ran on holds, read after the failure (:func:`.version_table.after_failure`;
        ``()``: none), so that a rolled-back run names where the database is;
        ``None`` when unknown.
    :returns: a single line, without the ``Error:`` prefix.
    """
    passwords = tuple(passwords)
    engines = engines or {}

    def foreign(text: str) -> str:
        return redact(text, passwords)

    text = _known_error_text(exc, engines, foreign, hint, versions_now)
    if text is None:
        if isinstance(exc, KeyboardInterrupt):
            text = f"interrupted ({_signal_name(exc)})"
        else:
            # str() of a SyntaxError already ends with "(file, line N)": keep only its
            # message, _where() adds the full path.
            detail = exc.msg if isinstance(exc, SyntaxError) and exc.msg else str(exc)
            text = f"{type(exc).__name__}: {foreign(detail)}{_where(exc)}"
    return " ".join(text.split())


def exit_code(exc: BaseException) -> int:
    """The exit code for a command that raised ``exc``.

    :param exc: the exception.
    :returns: 143 for :class:`Terminated` (SIGTERM), 130 for any other
        ``KeyboardInterrupt`` (Ctrl-C), else 1.
    """
    if isinstance(exc, Terminated):
        return EXIT_SIGTERM
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_SIGINT
    return 1


def _signal_name(exc: BaseException) -> str:
    return "SIGTERM" if isinstance(exc, Terminated) else "Ctrl-C"


def _known_error_text(exc: BaseException, engines: t.Mapping[str, t.Any],
                      foreign: t.Callable[[str], str], hint: str | None = None,
                      versions_now: tuple[str, ...] | None = None) -> str | None:
    if isinstance(exc, MigrateError):
        return str(exc)
    malformed = [name for name, engine in engines.items() if unencoded_password(engine.url)]
    if malformed:
        # Any text about this database (ours or the driver's) would name its "host".
        return percent_encoding_message(setting_name(malformed[0]))
    text = _revision_failure_text(exc, engines, foreign, hint, versions_now) or \
        _keyword_clash_text(exc)
    if text is not None:
        return text
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError) and exc.statement is None:
        # No statement: the failure happened while connecting. Whoever knew which
        # database it was (the migration lock) left its URL on the exception.
        urls = [getattr(exc, "fmc_database_url", None)]
        if urls[0] is None:
            urls = [engine.url for engine in engines.values()]
        if urls:
            where = " or ".join(describe_database(url) for url in urls)
            return f"cannot connect to the {where}: {foreign(first_line(exc))}"
    alembic_exc = sys.modules.get("alembic.util.exc")
    if alembic_exc is not None and isinstance(exc, alembic_exc.CommandError):
        return foreign(str(exc))
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        # str() of a DBAPIError adds the SQL, its parameters and a link; the driver's
        # own first line says what went wrong.
        return f"database error: {foreign(first_line(exc))}"
    return None


def _keyword_clash_text(exc: BaseException) -> str | None:
    """env.py naming a key of ``configure_args`` that it also unpacks from a copy of
    that dict (``configure_args`` itself lets env.py's keyword win: see
    :class:`.legacy.ConfigureArgs`). ``None`` for any other error."""
    marker = "got multiple values for keyword argument '"
    message = str(exc)
    if not isinstance(exc, TypeError) or marker not in message:
        return None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None or os.path.basename(tb.tb_frame.f_code.co_filename) != "env.py":
        return None
    key = message.split(marker, 1)[1].split("'", 1)[0]
    return (
        f"{tb.tb_frame.f_code.co_filename}, line {tb.tb_lineno} passes {key!r} to "
        "context.configure() by name and again inside a copy of configure_args, which "
        "holds it since Flask-Migrate 3.0: remove the named keyword, or unpack "
        "current_app.extensions['migrate'].configure_args itself (then env.py's "
        "keyword wins)"
    )


def _revision_failure_text(exc: BaseException, engines: t.Mapping[str, t.Any],
                           foreign: t.Callable[[str], str],
                           hint: str | None = None,
                           versions_now: tuple[str, ...] | None = None) -> str | None:
    """A revision that raised or was interrupted, worded with what its database holds
    now (``versions_now``: see :func:`error_message`). ``None`` when the exception did
    not come from a revision script."""
    failed = failed_revision(exc)
    if failed is None:
        return None
    revision, function = failed
    engine = _engine_of(function, engines)
    if getattr(exc, "fmc_offline", False):
        # Offline mode (--sql) only writes SQL: no database was connected to.
        where = f" for the {describe_database(engine.url)}" if engine is not None else ""
        return (
            f"revision {revision} failed in {function}() while writing its SQL{where} "
            f"(offline mode, --sql): {foreign(first_line(exc))}. No database was "
            "connected to or changed; the SQL written before this line stops inside "
            f"revision {revision}, so do not run it as it is (a revision that reads "
            "data, through op.get_bind(), needs online mode)"
        )
    where = f" on the {describe_database(engine.url)}" if engine is not None else ""
    if isinstance(exc, KeyboardInterrupt):
        what = (f"revision {revision} was interrupted ({_signal_name(exc)}) in "
                f"{function}(){where}")
    else:
        what = (f"revision {revision} failed in {function}(){where}: "
                f"{foreign(hint or first_line(exc))}")
    if engine is None:
        return what
    downgrading = function.startswith("downgrade")
    committed = getattr(exc, "fmc_autocommit_revisions", ())
    if not transactional_ddl(engine):
        if downgrading:
            state = (
                f"This database cannot roll back schema changes, so its version table "
                f"still lists revision {revision} while the database may already lack "
                f"part of it: compare the database with the revision's upgrade(), "
                "restore what the downgrade removed or finish removing it by hand, "
                "then run the command again"
            )
        else:
            state = (
                f"This database cannot roll back schema changes, so it may hold part "
                f"of revision {revision} although its version table does not list it: "
                "compare the database with the revision script, repair or undo the "
                "partial changes by hand, then run the command again"
            )
    elif revision in committed:
        state = (
            f"Revision {revision} entered autocommit_block(), which committed this "
            f"run's work up to there, so the database may hold part of revision "
            f"{revision} (what ran before and inside that block) although its version "
            "table does not list it: compare the database with the revision script, "
            "repair or undo that part by hand, then run the command again"
        )
    elif committed:
        names = ", ".join(committed)
        state = (
            f"The rest was rolled back, but revision{'s' if len(committed) > 1 else ''} "
            f"{names} of this run entered autocommit_block(), which committed the work "
            f"up to there, so the database may hold {names} although its version "
            "table does not list it: compare the database with the revision scripts "
            "('db current' shows the version table) and stamp or repair by hand"
        )
    elif versions_now:
        state = (
            f"Its transaction was rolled back, so the database is at "
            f"{', '.join(versions_now)}, the revision{'s' if len(versions_now) > 1 else ''} "
            "its version table names now"
        )
    elif versions_now is not None:
        state = (
            "Its transaction was rolled back, so the database is at base: its version "
            "table names no revision now"
        )
    else:
        state = (
            "Its transaction was rolled back, so the database is at the revision its "
            "version table names ('db current' shows it)"
        )
    return f"{what}. {state}"


def failed_revision(exc: BaseException) -> tuple[str, str] | None:
    """``(revision id, function name)`` of the innermost revision script frame the
    exception went through.

    :param exc: an exception, with its traceback.
    :returns: ``None`` when it did not come from a revision script.
    """
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


def transactional_ddl(engine: t.Any) -> bool:
    """Whether Alembic runs a database's schema changes in a transaction it can roll
    back (PostgreSQL: yes; MySQL/MariaDB, SQLite: no).

    :param engine: a SQLAlchemy engine.
    :returns: Alembic's ``transactional_ddl`` for the dialect; ``True`` for an unknown
        dialect (then no partial state is claimed).
    """
    from alembic.ddl.impl import DefaultImpl

    try:
        return bool(DefaultImpl.get_by_dialect(engine.dialect).transactional_ddl)
    except Exception:  # noqa: BLE001 - unknown dialect: do not claim anything
        return True


def warning_text(message: t.Any, filename: str | None, lineno: int | None) -> str:
    """One line for a Python warning: its message, then where it was raised when that
    is one of the project's files (env.py, a revision file, the application) rather
    than a library's, the way error lines name theirs.

    :param message: the warning (or its message).
    :param filename: the file the warning names (``WarningMessage.filename``).
    :param lineno: its line there.
    :returns: the text, whitespace collapsed to single spaces.
    """
    text = " ".join(str(message).split())
    if filename and lineno and os.path.isfile(filename) and not _library_file(filename):
        # Absolute, as Python 3.10+ names a module loaded from a relative path (env.py
        # under 'migrations'); 3.9 kept the relative path.
        text += f" ({os.path.abspath(filename)}, line {lineno})"
    return text


def worth_showing(category: type, filename: str | None) -> bool:
    """Whether a warning raised during a command is worth a ``Warning:`` line.

    Deprecation warnings attributed to a library's own file (Flask-SQLAlchemy 2.5
    reading ``flask._app_ctx_stack``, deprecated in Flask 2.2, on every query) are
    for that library's authors, and Python's own filters hide them too; those the
    project's files trigger (env.py, a revision file, the application) are shown.

    :param category: the warning's class.
    :param filename: the file the warning names.
    """
    if not issubclass(category, (DeprecationWarning, PendingDeprecationWarning)):
        return True
    return not (filename and _library_file(filename))


def _library_file(path: str) -> bool:
    import sysconfig

    roots = {sysconfig.get_path(name) for name in ("stdlib", "platstdlib", "purelib",
                                                   "platlib")}
    roots.add(os.path.dirname(os.path.abspath(__file__)))  # this package's own warnings
    real = os.path.realpath(path)
    return any(real.startswith(os.path.realpath(root) + os.sep) for root in roots if root)


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


# -- failures while the application starts --------------------------------------------

#: Python module of a database driver -> what to ``pip install`` for it.
DRIVER_PACKAGES = {
    "psycopg": "'psycopg[binary]' (or flask-migrate-compat[postgresql])",
    "psycopg2": "psycopg2-binary",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "PyMySQL (or flask-migrate-compat[mysql])",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "aiosqlite": "aiosqlite",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
}


def startup_error_message(exc: BaseException) -> str | None:
    """The one line for a failure of Flask-SQLAlchemy while the application starts,
    when it is one a user can fix from the message alone.

    Flask-SQLAlchemy 3 creates its engines in ``SQLAlchemy(app)`` /
    ``db.init_app(app)``, so these fail while ``manage.py`` builds the application,
    before any command runs: the failures :func:`engine_error_message` words, and
    neither ``SQLALCHEMY_DATABASE_URI`` nor ``SQLALCHEMY_BINDS`` set (Flask-SQLAlchemy
    2 defaulted to an in-memory SQLite database; 3.0 raises).

    :param exc: an exception that ended the program.
    :returns: the line (without ``Error:``), or ``None`` for anything else, which
        keeps its traceback.
    """
    frames = _frames(exc)
    if not any(_module_of(frame).startswith("flask_sqlalchemy") for frame in frames):
        return None
    if isinstance(exc, RuntimeError) and "SQLALCHEMY_DATABASE_URI" in str(exc):
        return (
            "neither SQLALCHEMY_DATABASE_URI nor SQLALCHEMY_BINDS is set: "
            "Flask-SQLAlchemy 3 no longer defaults to an in-memory SQLite database; set "
            "SQLALCHEMY_DATABASE_URI (for example 'sqlite:///app.db') before "
            "SQLAlchemy(app) or db.init_app(app) runs"
        )
    key, url = _engine_being_made(frames)
    return engine_error_message(exc, key, url)


def engine_error_message(exc: BaseException, key: str | None, url: t.Any) -> str | None:
    """The one line for a configured database whose engine could not be made, when it
    is a failure a user can fix from the message alone:

    * a database driver that is not installed (names what to ``pip install``);
    * a URL SQLAlchemy cannot parse, or whose dialect it does not know (the
      ``postgres://`` spelling, removed in SQLAlchemy 1.4, is named, and so is psycopg
      3, which SQLAlchemy 1.4 has no dialect for).

    The same line whenever the engine is made: Flask-SQLAlchemy 3 makes it while the
    application starts (:func:`startup_error_message`), 2.x when a command first uses
    it (:func:`.state.app_engines`). No part of the URL but its dialect and driver
    names is shown.

    :param exc: what making the engine raised.
    :param key: the bind key, ``None`` for the default database.
    :param url: the URL as configured (a string or a SQLAlchemy URL), or ``None``
        when unknown.
    :returns: the line (without ``Error:``), or ``None`` for any other failure.
    """
    setting = setting_name(key)
    scheme = _scheme(url)
    if isinstance(exc, ImportError) and exc.name:
        top = exc.name.split(".")[0]
        package = DRIVER_PACKAGES.get(top, top)
        return (
            f"the database driver {top!r} that {setting} asks for"
            f"{f' ({scheme})' if scheme else ''} is not installed: pip install {package}"
        )
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.NoSuchModuleError):
        dialect, _plus, driver = scheme.partition("+")
        if dialect == "postgres":
            return (
                f"{setting} starts with 'postgres://', a spelling SQLAlchemy 1.4 "
                "removed: write 'postgresql://' instead"
            )
        if dialect == "postgresql" and driver.startswith("psycopg") \
                and not driver.startswith("psycopg2") and _sqlalchemy_1():
            # Compat: the psycopg (3) dialect arrived in SQLAlchemy 2.0.
            return (
                f"{setting} asks for psycopg 3 ({scheme}), which SQLAlchemy 1.4 has no "
                "dialect for: pip install psycopg2-binary and write "
                "'postgresql+psycopg2://', or upgrade SQLAlchemy to 2.0 or later"
            )
        postgresql = "postgresql+psycopg2" if _sqlalchemy_1() else "postgresql+psycopg"
        return (
            f"{setting} names a database dialect or driver SQLAlchemy does not know"
            f"{f' ({scheme})' if scheme else ''}: check the part before '://' "
            f"(for example {postgresql!r}, 'mysql+pymysql', 'sqlite')"
        )
    if (sa_exc is not None and isinstance(exc, sa_exc.ArgumentError)) or isinstance(
            exc, ValueError):
        return (
            f"{setting} is not a database URL SQLAlchemy can parse: expected "
            "'dialect+driver://user:password@host:port/database', with special "
            "characters of the password percent-encoded"
        )
    return None


def _sqlalchemy_1() -> bool:
    """Whether the SQLAlchemy in use is 1.x (1.4, the oldest supported)."""
    import sqlalchemy

    return sqlalchemy.__version__.startswith("1.")


#: Holds ``True`` once a command of this process has printed its ``Error:`` line
#: (:func:`note_reported_failure`).
_reported: list[bool] = []


def note_reported_failure() -> None:
    """Record that a command printed its ``Error:`` line: the same engine failure
    raised again afterwards is not a second failure (see :func:`install_startup_hook`)."""
    _reported.append(True)


def install_startup_hook() -> None:
    """Make an uncaught :func:`startup_error_message` failure print one ``Error:``
    line instead of a traceback (the process still exits with code 1).

    Installed by the Flask-Script front end and the runner, for the failures that
    happen in ``manage.py`` before any command runs. Anything else, and everything
    when ``FLASK_MIGRATE_COMPAT_TRACEBACK`` is set, goes to the previous
    ``sys.excepthook``. Installing twice is harmless.

    After a command has printed its ``Error:`` line, such a failure prints nothing:
    Flask-SQLAlchemy 2 makes its engine again when the application context ends
    (``SQLALCHEMY_COMMIT_ON_TEARDOWN``), and fails again for the reason the line
    already gave.
    """
    previous = sys.excepthook
    if getattr(previous, "_fmc_startup_hook", False):
        return

    def hook(kind: type, exc: BaseException, tb: t.Any) -> None:
        import os

        message = None if os.environ.get(TRACEBACK_ENV) else startup_error_message(exc)
        if message is None:
            previous(kind, exc, tb)
        elif not _reported:
            print(f"Error: {message}", file=sys.stderr)

    hook._fmc_startup_hook = True  # type: ignore[attr-defined]
    sys.excepthook = hook


def _frames(exc: BaseException) -> list[t.Any]:
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame)
        tb = tb.tb_next
    return frames


def _module_of(frame: t.Any) -> str:
    return str(frame.f_globals.get("__name__", ""))


def _engine_being_made(frames: list[t.Any]) -> tuple[str | None, t.Any]:
    """``(bind key, URL)`` of the engine Flask-SQLAlchemy was building, read from its
    frames (``init_app``'s loop, or ``_make_engine``)."""
    for frame in reversed(frames):
        if not _module_of(frame).startswith("flask_sqlalchemy"):
            continue
        local = frame.f_locals
        options = local.get("options")
        if isinstance(options, dict) and ("bind_key" in local or "key" in local):
            return local.get("bind_key", local.get("key")), options.get("url")
    return None, None


def _scheme(url: t.Any) -> str:
    """The ``dialect+driver`` part of a URL (never its credentials), or ``""``."""
    if url is None:
        return ""
    if not isinstance(url, str):
        return str(getattr(url, "drivername", "") or "")
    scheme, sep, _rest = url.partition("://")
    return scheme if sep and re.fullmatch(r"[\w+.-]+", scheme) else ""
