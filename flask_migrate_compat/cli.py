"""The ``flask db`` Click command group.

Every command and option of Flask-Migrate 4.1's ``flask db`` exists here with the same
name, short flag and default. Each command only resolves the group-level options and
calls the matching function of :mod:`.core`; the Flask-Script front end
(:mod:`.script`) is generated from these definitions, so this file is the single place
where a command's interface is declared.

Exit codes: 0 on success, 1 when the command fails (one ``Error: ...`` line on
stderr), 2 for a usage error (Click's own).
"""
from __future__ import annotations

import inspect
import json
import os
import typing as t
import warnings

import click
from flask.cli import with_appcontext

from . import core, errors, legacy

#: Key under which the group callback leaves its options in ``ctx.meta``, which every
#: sub-command's context shares (``ctx.obj`` belongs to Flask's ``ScriptInfo``).
GROUP_OPTIONS_KEY = "flask_migrate_compat.group_options"

_F = t.TypeVar("_F", bound=t.Callable[..., t.Any])

directory_option = click.option(
    "-d", "--directory", default=None,
    help='Migration script directory (default: the one given to Migrate, "migrations").',
)
x_arg_option = click.option(
    "-x", "--x-arg", multiple=True,
    help="Extra 'key=value' argument for env.py and revision scripts "
         "(context.get_x_argument()); repeatable.",
)
sql_option = click.option(
    "--sql", is_flag=True,
    help="Offline mode: write the SQL to standard output instead of running it.",
)
tag_option = click.option(
    "--tag", default=None,
    help="Arbitrary tag for custom env.py scripts (context.get_tag_argument()).",
)
verbose_option = click.option("-v", "--verbose", is_flag=True, help="Show more detail.")
message_option = click.option("-m", "--message", default=None, help="Revision message.")
branch_label_option = click.option(
    "--branch-label", default=None, help="Branch label to apply to the new revision.",
)
rev_id_option = click.option(
    "--rev-id", default=None, help="Revision id to use instead of a generated one.",
)
no_lock_option = click.option(
    "--no-lock", is_flag=True,
    help="Do not take the migration lock that makes concurrent runs on one database "
         "wait for each other.",
)
lock_timeout_option = click.option(
    "--lock-timeout", type=click.FloatRange(min=0), default=None, metavar="SECONDS",
    help="Give up (exit code 1) after waiting this long for the migration lock "
         "(default: MIGRATE_LOCK_TIMEOUT, else no limit).",
)
sqlite_path_option = click.option(
    legacy.SQLITE_OVERRIDE_OPTION, "use_new_sqlite_path", is_flag=True,
    help="Migrate the SQLite file a relative path means under Flask-SQLAlchemy 3 "
         "(instance folder) even though the one relative to the working directory "
         "(Flask-SQLAlchemy 2) holds a migrated database.",
)


def _new_revision_options(f: _F) -> _F:
    """The options shared by ``revision`` and ``migrate``, in their help order."""
    for decorator in reversed((
        message_option,
        sql_option,
        click.option(
            "--head", default="head",
            help="Head revision (or <branchname>@head) the new revision follows.",
        ),
        click.option(
            "--splice", is_flag=True,
            help='Allow a non-head revision as the "head" to splice onto.',
        ),
        branch_label_option,
        click.option(
            "--version-path", default=None,
            help="Version location (from the config) to write the new file into.",
        ),
        rev_id_option,
    )):
        f = decorator(f)
    return f


quiet_option = click.option(
    "-q", "--quiet", is_flag=True,
    help="Do not print each revision's elapsed time and the summary (stderr).",
)
json_option = click.option(
    "--json", "as_json", is_flag=True,
    help="Print one JSON object with the same facts instead of text.",
)


def _version_table_options(f: _F) -> _F:
    """The options of the commands that write the version table (upgrade, downgrade,
    stamp): the migration lock and the SQLite path check."""
    for decorator in reversed((no_lock_option, lock_timeout_option, sqlite_path_option)):
        f = decorator(f)
    return f


@click.group()
@directory_option
@x_arg_option
@click.pass_context
def db(ctx: click.Context, directory: str | None, x_arg: tuple[str, ...]) -> None:
    """Perform database migrations (Alembic)."""
    ctx.meta[GROUP_OPTIONS_KEY] = {"directory": directory, "x_arg": x_arg}


def _run(func: t.Callable[..., t.Any], _failure_code: int = 1,
         _on_error: t.Callable[[str], None] | None = None, **kwargs: t.Any) -> t.Any:
    """Call a core command with the group-level options merged in.

    A command's own ``-d`` wins over the group's; x-arguments of both are passed, the
    group's first. Warnings raised meanwhile (Alembic's ``UserWarning``, for example) are
    printed as one ``Warning: ...`` line each. A failure prints one ``Error: ...``
    line on stderr and exits with code 1 (``_failure_code``), or 130 / 143 when
    Ctrl-C / SIGTERM interrupted it (set ``FLASK_MIGRATE_COMPAT_TRACEBACK=1`` to see
    the traceback instead).

    :param _failure_code: the exit code of a failure (``db status`` uses 3: its 1
        means "revisions pending").
    :param _on_error: also called with the error line (``--json`` output).
    :returns: what the core command returned.
    """
    ctx = click.get_current_context()
    group = ctx.meta.get(GROUP_OPTIONS_KEY, {})
    accepted = inspect.signature(func).parameters
    if "directory" in accepted and kwargs.get("directory") is None:
        kwargs["directory"] = group.get("directory")
    if "x_arg" in accepted:
        kwargs["x_arg"] = (*group.get("x_arg", ()), *kwargs.get("x_arg", ()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            return func(**kwargs)
        except (Exception, KeyboardInterrupt) as exc:
            if os.environ.get(errors.TRACEBACK_ENV):
                raise
            _show_warnings(caught)
            line = core.error_message(exc)
            click.echo(f"Error: {line}", err=True)
            if _on_error is not None:
                _on_error(line)
            code = errors.exit_code(exc)
            ctx.exit(_failure_code if code == 1 else code)
        finally:
            _show_warnings(caught)


def _show_warnings(caught: list[warnings.WarningMessage]) -> None:
    """Print each warning once as ``Warning: <message>`` (Python's own format takes
    two lines: the message and the source line that raised it)."""
    seen = set()
    for warning in caught:
        text = " ".join(str(warning.message).split())
        if text not in seen:
            seen.add(text)
            click.echo(f"Warning: {core.redacted(text)}", err=True)
    caught.clear()


@db.command()
@with_appcontext
def list_templates() -> None:
    """List the available script directory templates."""
    _run(core.list_templates)


@db.command()
@directory_option
@click.option("--multidb", is_flag=True, help="Use the multiple-database template.")
@click.option(
    "-t", "--template", default=None,
    help='Template name or path to a template folder (default: "flask").',
)
@click.option(
    "--package", is_flag=True,
    help="Write empty __init__.py files into the environment and version folders.",
)
@with_appcontext
def init(**kwargs: t.Any) -> None:
    """Create a new migration script directory."""
    _run(core.init, **kwargs)


@db.command()
@directory_option
@_new_revision_options
@click.option(
    "--autogenerate", is_flag=True,
    help="Fill the revision with the differences between the models and the database.",
)
@with_appcontext
def revision(**kwargs: t.Any) -> None:
    """Create a new revision script."""
    _run(core.revision, **kwargs)


@db.command()
@directory_option
@_new_revision_options
@x_arg_option
@with_appcontext
def migrate(**kwargs: t.Any) -> None:
    """Autogenerate a new revision script (alias for 'revision --autogenerate')."""
    _run(core.migrate, **kwargs)


@db.command()
@directory_option
@click.argument("revision", default="head")
@with_appcontext
def edit(**kwargs: t.Any) -> None:
    """Open a revision script in $EDITOR."""
    _run(core.edit, **kwargs)


@db.command()
@directory_option
@message_option
@branch_label_option
@rev_id_option
@click.argument("revisions", nargs=-1)
@with_appcontext
def merge(**kwargs: t.Any) -> None:
    """Merge revisions (usually two heads) into a new merge point revision."""
    _run(core.merge, **kwargs)


@db.command()
@directory_option
@sql_option
@tag_option
@x_arg_option
@_version_table_options
@quiet_option
@click.argument("revision", default="head")
@with_appcontext
def upgrade(**kwargs: t.Any) -> None:
    """Upgrade the database to a later revision (default: head)."""
    _run(core.upgrade, **kwargs)


@db.command()
@directory_option
@sql_option
@tag_option
@x_arg_option
@_version_table_options
@quiet_option
@click.argument("revision", default="-1")
@with_appcontext
def downgrade(**kwargs: t.Any) -> None:
    """Revert the database to an earlier revision (default: one step back)."""
    _run(core.downgrade, **kwargs)


@db.command()
@directory_option
@click.argument("revision", default="head")
@with_appcontext
def show(**kwargs: t.Any) -> None:
    """Show the revision denoted by the given symbol."""
    _run(core.show, **kwargs)


@db.command()
@directory_option
@click.option(
    "-r", "--rev-range", default=None,
    help="Range of revisions to list, as [start]:[end].",
)
@verbose_option
@click.option(
    "-i", "--indicate-current", is_flag=True,
    help="Mark the database's current revision (connects to the database).",
)
@with_appcontext
def history(**kwargs: t.Any) -> None:
    """List the revision scripts in chronological order."""
    _run(core.history, **kwargs)


@db.command()
@directory_option
@verbose_option
@click.option(
    "--resolve-dependencies", is_flag=True,
    help="Treat dependency revisions as down revisions.",
)
@with_appcontext
def heads(**kwargs: t.Any) -> None:
    """Show the current heads of the script directory."""
    _run(core.heads, **kwargs)


@db.command()
@directory_option
@verbose_option
@with_appcontext
def branches(**kwargs: t.Any) -> None:
    """Show the branch points of the script directory."""
    _run(core.branches, **kwargs)


@db.command()
@directory_option
@verbose_option
@with_appcontext
def current(**kwargs: t.Any) -> None:
    """Show the current revision of each database."""
    _run(core.current, **kwargs)


@db.command()
@directory_option
@sql_option
@tag_option
@click.option(
    "--purge", is_flag=True,
    help="Empty the version table before stamping.",
)
@_version_table_options
@click.argument("revision", default="head")
@with_appcontext
def stamp(**kwargs: t.Any) -> None:
    """Set the version table to a revision without running any migration."""
    _run(core.stamp, **kwargs)


@db.command()
@directory_option
@with_appcontext
def check(**kwargs: t.Any) -> None:
    """Exit with code 1 when the models differ from the database (no new revision)."""
    _run(core.check, **kwargs)


@db.command()
@directory_option
@json_option
@with_appcontext
def status(as_json: bool, **kwargs: t.Any) -> None:
    """Compare each database with the head(s); exit 0 at head, 1 pending, 3 blocked.

    Exit codes: 0 every database is at head; 1 revisions are pending and 'db upgrade'
    would apply them; 3 'db upgrade' cannot proceed as is (unknown revision, several
    heads, database unreachable...), with the reason on stderr. Writes nothing and
    takes no lock.
    """
    from . import readiness as status_module

    def json_error(line: str) -> None:
        click.echo(json.dumps({"state": "blocked", "exit_code": status_module.BLOCKED,
                               "error": line}))

    result = _run(status_module.status, _failure_code=status_module.BLOCKED,
                  _on_error=json_error if as_json else None, **kwargs)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for line in format_status(result):
            click.echo(line)
    problems = result.problems
    if problems:
        click.echo(f"Error: {problems[0]}", err=True)
    click.get_current_context().exit(result.exit_code)


def format_status(result: t.Any) -> list[str]:
    """The text of ``db status``: per database, its revisions, the pending ones in
    upgrade order and the lock holder; a last line with the verdict."""
    heads = ", ".join(rev.describe() for rev in result.heads) or "none (no revision yet)"
    lines = [f"Head{'s' if len(result.heads) > 1 else ''}: {heads}"]
    for db in result.databases:
        lines.append(f"{'Bind ' + repr(db.bind) if db.bind else 'Database'}: {db.database}")
        if db.problem is not None and not db.current:
            lines.append(f"  problem: {db.problem}")
            continue
        lines.append(f"  current: {', '.join(db.current) or 'base (no revision applied)'}")
        if db.problem is not None:
            lines.append(f"  problem: {db.problem}")
        elif db.pending:
            lines.append(f"  pending: {len(db.pending)} revision(s), in upgrade order:")
            lines.extend(f"    {rev.describe()}" for rev in db.pending)
        else:
            lines.append("  pending: none")
        if db.lock_holder is not None:
            lines.append(f"  migration lock: held by {db.lock_holder.describe()}")
    verdict = {0: "at head", 1: "revisions pending ('db upgrade' applies them)",
               3: "'db upgrade' cannot proceed as is"}[result.exit_code]
    lines.append(f"Status: {verdict} (exit code {result.exit_code})")
    return lines


@db.command()
@directory_option
@click.option("--fix", is_flag=True,
              help="Apply the repairs proven safe (stamp head when the schema matches "
                   "the models), under the migration lock.")
@click.option("-y", "--yes", is_flag=True, help="With --fix: do not ask before changing.")
@json_option
@with_appcontext
def doctor(as_json: bool, yes: bool, **kwargs: t.Any) -> None:
    """Diagnose the migrations and the databases; exit 0 when all is well, 1 otherwise.

    Looks for the file of a revision the database names but the folder lacks in git,
    compares the schema with the models, and checks the heads, the revision files,
    env.py, the SQLite path and the migration lock.
    """
    from . import diagnosis as doctor_module

    def confirm(question: str) -> bool:
        return click.confirm(question, default=False, err=True)

    result = _run(doctor_module.doctor, confirm=None if yes else confirm, **kwargs)
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    else:
        for finding in result.findings:
            mark = "ok" if finding.ok else "!!"
            click.echo(f"[{mark}] {finding.check}: {finding.message}")
            for detail in finding.details:
                click.echo(f"       - {detail}")
            if finding.fix:
                click.echo(f"       fix: {finding.fix}")
        for line in result.changed:
            click.echo(f"Changed: {line}")
    click.get_current_context().exit(result.exit_code)
