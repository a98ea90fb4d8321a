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


# -- redaction ------------------------------------------------------------------------

# scheme://user:password@ : everything up to the last '@' of the token is the password
# (an unencoded '@' in it must not let a fragment through).
_URL_CREDENTIALS = re.compile(r"(\b[A-Za-z][\w+.-]*://[^\s:/@]*:)\S*@")
# password=secret, PWD: secret, "password": "secret" (DSNs, dicts, driver messages).
_PASSWORD_PAIR = re.compile(
    r"""(\b(?:password|passwd|pwd)['"]?\s*[=:]\s*)(['"]?)[^\s'",;)}]+\2""", re.IGNORECASE
)


def redact(text: str, passwords: t.Iterable[str] = ()) -> str:
    """Remove credentials from text that did not come from this package.

    Replaced by ``***``: the password of every URL in the text, the value of
    ``password=``/``pwd=`` pairs, and each of ``passwords`` (raw or percent-encoded)
    where it stands as a token of its own: not preceded or followed by a letter or
    digit. So a password that is also part of a word (``postgres`` in
    "postgresql") leaves that word alone.

    :param text: an error message from a driver, env.py or a revision script.
    :param passwords: the passwords of the application's database URLs.
    :returns: the text without those credentials.
    """
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    text = _PASSWORD_PAIR.sub(r"\1\2***\2", text)
    from urllib.parse import quote, quote_plus

    forms = set()
    for password in passwords:
        if password:
            forms.update({password, quote(password, safe=""), quote_plus(password)})
    # Longest first, so that a password containing another is replaced whole.
    for form in sorted(forms, key=len, reverse=True):
        text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", "***", text)
    return text


# -- the one line ---------------------------------------------------------------------


def error_message(
    exc: BaseException,
    engines: t.Mapping[str, t.Any] | None = None,
    passwords: t.Iterable[str] = (),
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
    :returns: a single line, without the ``Error:`` prefix.
    """
    passwords = tuple(passwords)
    engines = engines or {}

    def foreign(text: str) -> str:
        return redact(text, passwords)

    text = _known_error_text(exc, engines, foreign)
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
                      foreign: t.Callable[[str], str]) -> str | None:
    if isinstance(exc, MigrateError):
        return str(exc)
    malformed = [name for name, engine in engines.items() if unencoded_password(engine.url)]
    if malformed:
        # Any text about this database (ours or the driver's) would name its "host".
        name = malformed[0]
        return percent_encoding_message(
            "SQLALCHEMY_DATABASE_URI" if not name else f"SQLALCHEMY_BINDS[{name!r}]"
        )
    text = _revision_failure_text(exc, engines, foreign)
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


def _revision_failure_text(exc: BaseException, engines: t.Mapping[str, t.Any],
                           foreign: t.Callable[[str], str]) -> str | None:
    """A revision that raised or was interrupted, worded with what its database holds
    now. ``None`` when the exception did not come from a revision script."""
    failed = failed_revision(exc)
    if failed is None:
        return None
    revision, function = failed
    engine = _engine_of(function, engines)
    where = f" on the {describe_database(engine.url)}" if engine is not None else ""
    if isinstance(exc, KeyboardInterrupt):
        what = (f"revision {revision} was interrupted ({_signal_name(exc)}) in "
                f"{function}(){where}")
    else:
        what = f"revision {revision} failed in {function}(){where}: {foreign(first_line(exc))}"
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
            f"Its transaction was rolled back, but what revision {revision} ran inside "
            "autocommit_block() was committed and stays: the database holds that part "
            "although its version table does not reflect it; undo it or make the "
            "revision skip it, then run the command again"
        )
    elif committed:
        state = (
            "Its transaction was rolled back, but statements that revision"
            f"{'s' if len(committed) > 1 else ''} {', '.join(committed)} ran inside "
            "autocommit_block() were committed and stay; the version table names the "
            "revision the rest of the database is at ('db current' shows it)"
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
