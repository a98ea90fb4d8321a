"""``db doctor``: find what is wrong with the migrations and the databases, say how to
fix each thing, and apply the one repair that can be proven safe.

The classic trap is Alembic's "Can't locate revision identified by 'abc123'": a
database's version table names a revision that the script directory does not hold.
There is no generic fix without knowing the state of the database, and we can know
it: :func:`doctor`

* looks for the revision's file in git: deleted in commit X, or present only on branch
  Y (git runs through :mod:`subprocess`, bounded in time; without git it says so);
* compares the live schema with the models (Alembic's autogenerate comparison, as
  ``db check`` runs it). When they match, ``db stamp --purge head`` is safe, and
  ``fix=True`` applies exactly that, under the migration lock, after asking; when they
  differ, the differences are listed and stamping is not suggested.

It also checks the script directory (several heads, a ``down_revision`` pointing
nowhere, duplicate revision ids), each database (pending revisions, models that differ
from a database at head), the env.py generation, the relative SQLite path trap and
the migration lock. Each check gives one :class:`Finding`: "ok", or the problem and
the command that fixes it.

Nothing here knows about Click or Flask-Script: the front ends format the result.
"""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import typing as t

from flask import current_app

from . import core, legacy
from .errors import MigrateError, list_revisions
from .lock import command_guard
from .state import get_state
from .readiness import BLOCKED, Status, status, status_for

__all__ = ["Diagnosis", "Finding", "GIT_TIMEOUT", "doctor", "env_py_generation"]

#: Seconds each git command may take before doctor goes on without its answer.
GIT_TIMEOUT = 5.0


@dataclasses.dataclass
class Finding:
    """The result of one check.

    :ivar check: what was checked (``heads``, ``database ''``, ``env.py``...).
    :ivar ok: ``True`` when nothing needs attention.
    :ivar message: one line: what was found.
    :ivar fix: the command (or the action) that fixes it, or ``None``.
    :ivar details: further lines (for example each difference between the schema and
        the models).
    """

    check: str
    ok: bool
    message: str
    fix: str | None = None
    details: list[str] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Diagnosis:
    """The result of :func:`doctor`.

    :ivar findings: one per check, in the order run.
    :ivar status: the :class:`~.readiness.Status` the checks started from (``None`` when
        the revision files could not be read).
    :ivar changed: what ``fix=True`` changed, one line each (empty: nothing).
    :ivar stamp_safe: the databases on which ``db stamp --purge head`` was proven
        safe (their version table names an unknown revision and their schema matches
        the models).
    """

    findings: list[Finding]
    status: Status | None = None
    changed: list[str] = dataclasses.field(default_factory=list)
    stamp_safe: list[str] = dataclasses.field(default_factory=list)
    config: t.Any = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        """0 when every check is ok, 1 when something needs attention."""
        return 0 if all(finding.ok for finding in self.findings) else 1

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "exit_code": self.exit_code,
            "findings": [finding.as_dict() for finding in self.findings],
            "changed": list(self.changed),
        }


def doctor(
    directory: str | os.PathLike[str] | None = None,
    fix: bool = False,
    confirm: t.Callable[[str], bool] | None = None,
    x_arg: str | t.Sequence[str] | None = None,
) -> Diagnosis:
    """Diagnose the script directory and every database; optionally repair.

    :param directory: the script directory; default: the extension's.
    :param fix: apply the repairs proven safe: ``stamp --purge head`` on databases
        whose version table names a revision the folder lacks while their schema
        matches the models, and nothing else. Takes the migration lock.
    :param confirm: asked before changing anything, with a one-line question; the
        repair happens only when it returns ``True``. ``None`` (with ``fix``):
        proceed without asking (``--yes``).
    :param x_arg: x-arguments for env.py (the ``stamp`` of a repair runs it).
    :returns: a :class:`Diagnosis`; after a repair, the findings are those of a
        second diagnosis, and ``changed`` says what changed.
    :raises MigrateError: no application context, or no script directory.
    """
    diagnosis = _diagnose(directory, x_arg)
    if not fix or not diagnosis.stamp_safe:
        return diagnosis
    question = (
        f"Stamp head into the version table of the {' and the '.join(diagnosis.stamp_safe)} "
        "(empties it first, runs no migration)?"
    )
    if confirm is not None and not confirm(question):
        diagnosis.changed.append("nothing changed (not confirmed)")
        return diagnosis
    changed = _stamp_head(directory, x_arg, diagnosis)
    after = _diagnose(directory, x_arg)
    after.changed = changed
    return after


# -- the checks -----------------------------------------------------------------------


def _diagnose(directory: t.Any, x_arg: t.Any) -> Diagnosis:
    findings: list[Finding] = []
    state = get_state()
    path = os.fspath(state.migrate.directory if directory is None else directory)
    try:
        config = core._script_config(directory, x_arg)
    except MigrateError as exc:
        if not os.path.isdir(path):
            raise
        findings.append(Finding("revision files", False, str(exc)))
        findings.append(_env_py_finding(path))
        return Diagnosis(findings)
    result = status_for(config)
    findings.append(Finding("revision files", True,
                            "every down_revision exists, no revision id is repeated"))
    diagnosis = Diagnosis(findings, status=result)
    findings.append(_heads_finding(result))
    findings.append(_env_py_finding(path))
    findings.append(_sqlite_path_finding())
    script = core._loaded_script(config)
    diagnosis.config = config
    for db in result.databases:
        findings.extend(_database_findings(db, result, script, diagnosis))
    if result.problem and not result.databases:
        findings.append(Finding("databases", False, result.problem))
    return diagnosis


def _heads_finding(result: Status) -> Finding:
    if len(result.heads) > 1:
        names = " and ".join(rev.revision for rev in result.heads)
        return Finding(
            "heads", False,
            f"{len(result.heads)} heads: {', '.join(rev.describe() for rev in result.heads)}",
            fix=f'db merge heads -m "merge {names}"',
        )
    if not result.heads:
        return Finding("heads", True, "the folder has no revision yet")
    return Finding("heads", True, f"one head, {result.heads[0].describe()}")


def _sqlite_path_finding() -> Finding:
    try:
        legacy.check_sqlite_paths()
    except MigrateError as exc:
        return Finding("sqlite path", False, str(exc))
    return Finding("sqlite path", True, "no relative SQLite path moved")


def _database_findings(db: t.Any, result: Status, script: t.Any,
                       diagnosis: Diagnosis) -> list[Finding]:
    name = f"database {db.bind!r}" if db.bind else "database"
    label = f"the {db.database}"
    found: list[Finding] = []
    if db.lock_holder is not None:
        holder = db.lock_holder
        fix = "wait for it to finish ('db upgrade' waits by itself)"
        if holder.backend_pid is not None:
            fix += ("; if that process is gone: SELECT "
                    f"pg_terminate_backend({holder.backend_pid})")
        elif holder.connection_id is not None:
            fix += f"; if that process is gone: KILL {holder.connection_id}"
        found.append(Finding(f"lock {db.bind!r}" if db.bind else "lock", False,
                             f"the migration lock on {label} is held by "
                             f"{holder.describe()}", fix=fix))
    else:
        found.append(Finding(f"lock {db.bind!r}" if db.bind else "lock", True,
                             f"nobody holds the migration lock on {label}"))
    unknown = [rev for rev in db.current if rev not in _known(script)]
    if db.problem is not None and not unknown:
        found.append(Finding(name, False, db.problem))
        return found
    if unknown:
        found.append(Finding(name, False, db.problem or ""))
        found.extend(_where_did_it_go(rev, script.dir) for rev in unknown)
        differences = _compare(db)
        if differences is None:
            found.append(Finding(f"schema {db.bind!r}" if db.bind else "schema", False,
                                 f"{label} has no models to compare with: not compared"))
        elif differences:
            found.append(Finding(
                f"schema {db.bind!r}" if db.bind else "schema", False,
                f"the schema of {label} differs from the models in {len(differences)} "
                "place(s), so stamping head is NOT safe: bring the schema to the "
                "state of one revision of the folder, then 'db stamp --purge <that "
                "revision>'",
                details=differences,
            ))
        elif len(result.heads) != 1:
            found.append(Finding(
                f"schema {db.bind!r}" if db.bind else "schema", False,
                f"the schema of {label} matches the models, but the folder has "
                f"{len(result.heads) or 'no'} head{'s' if len(result.heads) != 1 else ''}, "
                "so there is no single revision to stamp: "
                + ("merge the heads first" if result.heads else "restore the revision files"),
            ))
        else:
            others = [other for other in result.databases if other is not db
                      and other.exit_code != 0 and not _unknown_only(other, script)]
            if others:
                message = (f"the schema of {label} matches the models, but stamping "
                           "head also stamps the other databases, and "
                           f"{', '.join('the ' + o.database for o in others)} "
                           "needs attention first")
                found.append(Finding(f"schema {db.bind!r}" if db.bind else "schema",
                                     False, message))
            else:
                diagnosis.stamp_safe.append(db.database)
                found.append(Finding(
                    f"schema {db.bind!r}" if db.bind else "schema", False,
                    f"the schema of {label} matches the models at head, so 'db stamp "
                    "--purge head' is safe: it replaces the unknown revision with "
                    f"{list_revisions([(h.revision, h.message) for h in result.heads]) or 'base'}"
                    " and runs no migration",
                    fix="db stamp --purge head (or: db doctor --fix)",
                ))
        return found
    if db.pending:
        found.append(Finding(
            name, False,
            f"{label} is at {', '.join(db.current) or 'base'}; {len(db.pending)} "
            f"revision(s) pending: {', '.join(rev.describe() for rev in db.pending)}",
            fix="db upgrade",
        ))
        return found
    if len(result.heads) > 1:
        found.append(Finding(name, True, f"{label} is at {', '.join(db.current)}"))
        return found
    found.append(Finding(name, True, f"{label} is at head"))
    differences = _compare(db)
    schema = f"schema {db.bind!r}" if db.bind else "schema"
    if differences is None:
        found.append(Finding(schema, True, f"no models for {label}"))
    elif differences:
        found.append(Finding(
            schema, False,
            f"the models differ from {label} at head in {len(differences)} place(s): "
            "a migration has not been generated yet",
            fix='db migrate -m "<message>", review the new revision, then db upgrade',
            details=differences,
        ))
    else:
        found.append(Finding(schema, True, f"the models match {label}"))
    return found


def _known(script: t.Any) -> set[str]:
    return {rev.revision for rev in script.walk_revisions()}


def _unknown_only(db: t.Any, script: t.Any) -> bool:
    """Whether a database's only problem is an unknown revision."""
    return bool(db.current) and any(rev not in _known(script) for rev in db.current)


# -- the schema against the models ------------------------------------------------------


def _compare(db: t.Any) -> list[str] | None:
    """The differences between a database's schema and its models, one line each
    (Alembic's ``compare_metadata`` with the ``Migrate`` configure arguments, as
    autogenerate runs it); ``None`` when the database has no models."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from .version_table import connect, version_tables

    metadata = _metadata(db.bind)
    if metadata is None:
        return None
    table = next(table for table in version_tables([db.bind]))
    state = get_state()
    opts = {key: value for key, value in state.configure_args.items()
            if key not in ("process_revision_directives", "on_version_apply")}
    opts.update(target_metadata=metadata, version_table=table.name,
                version_table_schema=table.schema)
    connection = connect(table)
    if connection is None:  # a SQLite file not created yet: empty
        from sqlalchemy import create_engine

        connection = create_engine("sqlite://").connect()
    try:
        context = MigrationContext.configure(connection, opts=opts)
        return [_describe(diff) for diff in compare_metadata(context, metadata)]
    finally:
        connection.close()


def _metadata(bind: str) -> t.Any:
    db = legacy.unwrap(get_state().db)
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:  # Flask-SQLAlchemy 3: one MetaData per bind
        return metadatas.get(bind or None)
    if not bind and not (current_app.config.get("SQLALCHEMY_BINDS") or {}):
        return db.metadata
    import sqlalchemy as sa

    tables = [table for table in db.metadata.tables.values()
              if table.info.get("bind_key") == (bind or None)]
    if not tables:
        return None if bind else sa.MetaData()
    metadata = sa.MetaData()
    for table in tables:
        table.to_metadata(metadata)
    return metadata


def _describe(diff: t.Any) -> str:
    """One line for one of ``compare_metadata``'s differences."""
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe(item) for item in diff)
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        where = "the models, not the database" if kind == "add_table" \
            else "the database, not the models"
        return f"table {diff[1].name!r} is in {where}"
    if kind in ("add_column", "remove_column"):
        where = "the models, not the database" if kind == "add_column" \
            else "the database, not the models"
        return f"column {diff[2]}.{diff[3].name} is in {where}"
    if kind.startswith("modify_"):
        _, _schema, table, column, _existing, old, new = diff
        what = kind[len("modify_"):].replace("_", " ")
        return f"column {table}.{column}: {what} is {old!r} in the database, {new!r} in the models"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint",
                "add_fk", "remove_fk"):
        obj = diff[1]
        table = getattr(getattr(obj, "table", None), "name", None) or getattr(obj, "parent", None)
        where = "the models, not the database" if kind.startswith("add") \
            else "the database, not the models"
        noun = {"index": "index", "constraint": "constraint", "fk": "foreign key"}[kind.split("_", 1)[1]]
        return f"{noun} {obj.name!r} on {table} is in {where}"
    return f"{kind}: {diff[1:]!r}"


# -- git: where did the revision go -----------------------------------------------------


def _git(args: list[str], cwd: str) -> str:
    """Run git; its stdout. Raises FileNotFoundError (no git), TimeoutExpired,
    CalledProcessError."""
    env = dict(os.environ, GIT_TERMINAL_PROMPT="0", LC_ALL="C", GIT_PAGER="cat")
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=GIT_TIMEOUT, check=True)
    return proc.stdout


def _defines(text: str, revision: str) -> bool:
    return re.search(rf"""^revision\s*(?::\s*str\s*)?=\s*['"]{re.escape(revision)}['"]""",
                     text, re.MULTILINE) is not None


def _where_did_it_go(revision: str, directory: str) -> Finding:
    """Look for the file that defined ``revision`` in the git history of the
    script directory."""
    check = f"revision {revision}"
    versions = os.path.join(directory, "versions")
    cwd = versions if os.path.isdir(versions) else directory
    try:
        top = _git(["rev-parse", "--show-toplevel"], cwd).strip()
    except FileNotFoundError:
        return Finding(check, False, f"git is not installed: cannot look for the file "
                                     f"that defined revision {revision}")
    except subprocess.TimeoutExpired:
        return Finding(check, False, f"git did not answer within {GIT_TIMEOUT:g} s: "
                                     f"cannot look for revision {revision}")
    except subprocess.CalledProcessError:
        return Finding(check, False, f"{directory!r} is not in a git checkout: cannot "
                                     f"look for the file that defined revision {revision}")
    try:
        return _search_history(revision, cwd, top, check)
    except subprocess.TimeoutExpired:
        return Finding(check, False, f"git did not answer within {GIT_TIMEOUT:g} s: "
                                     f"cannot look for revision {revision}")
    except subprocess.CalledProcessError as exc:
        reason = ((exc.stderr or "").strip().splitlines() or ["no message"])[0]
        return Finding(check, False, f"git failed while looking for revision {revision}: "
                                     f"{reason}")


def _search_history(revision: str, cwd: str, top: str, check: str) -> Finding:
    # Commits of any branch that added a file mentioning the revision id.
    log = _git(["log", "--all", "--diff-filter=A", "--format=@%H", "--name-only",
                f"-S{revision}", "--", "."], cwd)
    added: list[tuple[str, str]] = []
    commit = None
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:]
        elif line.strip() and commit:
            added.append((commit, line.strip()))
    for commit, path in added:
        if not _defines(_git(["show", f"{commit}:{path}"], top), revision):
            continue
        shown = os.path.relpath(os.path.join(top, path))
        if _exists(top, "HEAD", path):
            return Finding(
                check, False,
                f"revision {revision} is defined by {shown}, which is committed but "
                "missing from the working tree",
                fix=f"git checkout HEAD -- {shown}",
            )
        if _is_ancestor(top, commit):
            deleted = _git(["log", "--diff-filter=D", "-1", "--format=%h%x1f%s%x1f%ad",
                            "--date=short", "HEAD", "--", path], top).strip()
            if deleted:
                sha, subject, date = deleted.split("\x1f")
                return Finding(
                    check, False,
                    f"revision {revision} was defined by {shown}, deleted in commit "
                    f"{sha} ({subject!r}, {date})",
                    fix=f"git checkout {sha}^ -- {shown}",
                )
            # Removed without a commit of its own (in a merge, for example).
            return Finding(
                check, False,
                f"revision {revision} was defined by {shown} (added in commit "
                f"{commit[:7]}), which the checked-out tree no longer has",
                fix=f"git checkout {commit[:7]} -- {shown}",
            )
        branches = [b for b in _git(["branch", "-a", "--contains", commit,
                                     "--format=%(refname:short)"], top).split() if b]
        if branches:
            return Finding(
                check, False,
                f"revision {revision} is defined by {shown} only on branch"
                f"{'es' if len(branches) > 1 else ''} {', '.join(branches)} (added in "
                f"commit {commit[:7]}), not on the checked-out one",
                fix=f"git merge {branches[0]} (or: git checkout {branches[0]} -- {shown})",
            )
    return Finding(check, False, f"no commit of this git checkout has a file defining "
                                 f"revision {revision}")


def _exists(top: str, ref: str, path: str) -> bool:
    try:
        _git(["cat-file", "-e", f"{ref}:{path}"], top)
    except subprocess.CalledProcessError:
        return False
    return True


def _is_ancestor(top: str, commit: str) -> bool:
    try:
        _git(["merge-base", "--is-ancestor", commit, "HEAD"], top)
    except subprocess.CalledProcessError:
        return False
    return True


# -- env.py generations -----------------------------------------------------------------

#: (generation, test on env.py's text), most specific first. Each generation is
#: recognised by the API spellings its template used.
_GENERATIONS: tuple[tuple[str, t.Callable[[str], bool]], ...] = (
    ("flask-migrate-compat", lambda s: "flask_migrate_compat" in s),
    ("Flask-Migrate 4.x", lambda s: "def get_engine_url" in s or "metadatas" in s),
    ("Flask-Migrate 3.x", lambda s: "db.get_engine(" in s and "USE_TWOPHASE" not in s
     and "engine_from_config" not in s),
    ("Flask-Migrate 2.x multidb", lambda s: "USE_TWOPHASE" in s),
    ("Flask-Migrate 2.7", lambda s: "db.engine.url" in s and "engine_from_config" not in s),
    ("Flask-Migrate 2.5-2.6", lambda s: "db.engine.url" in s),
    ("Flask-Migrate 2.0-2.4", lambda s: "SQLALCHEMY_DATABASE_URI" in s
     and "with connectable.connect()" in s),
    ("Flask-Migrate 1.x", lambda s: "SQLALCHEMY_DATABASE_URI" in s),
)

_CURRENT_GENERATIONS = ("flask-migrate-compat", "Flask-Migrate 4.x")


def env_py_generation(directory: str) -> str | None:
    """Which template wrote a script directory's env.py.

    :param directory: the script directory.
    :returns: for example ``"Flask-Migrate 2.5-2.6"`` or ``"flask-migrate-compat"``;
        ``None`` for an env.py none of them wrote (or none at all).
    """
    try:
        with open(os.path.join(directory, "env.py"), encoding="utf-8") as f:
            text = f.read()
    except OSError:
        return None
    if "current_app" not in text and "flask_migrate_compat" not in text:
        return None
    for name, test in _GENERATIONS:
        if test(text):
            return name
    return None


def _env_py_finding(directory: str) -> Finding:
    generation = env_py_generation(directory)
    if generation is None:
        return Finding("env.py", True, "a custom env.py (not checked)")
    if generation in _CURRENT_GENERATIONS:
        return Finding("env.py", True, f"{generation}'s template")
    multidb = "multidb" in generation or "engine_name" in _read(directory, "env.py")
    new = f"{directory.rstrip(os.sep)}.new"
    return Finding(
        "env.py", False,
        f"env.py was written by {generation}'s template: it still runs here through "
        "the compatibility layer, but in --sql mode it ignores Migrate's configure "
        "arguments (version_table...), its fileConfig() disables the application's "
        "loggers, and autogenerated downgrades leave PostgreSQL ENUM types behind",
        fix=(f"db init -d {new}{' --multidb' if multidb else ''} && cp {new}/env.py "
             f"{directory}/env.py && rm -r {new} (review the difference first if you "
             "edited env.py)"),
    )


def _read(directory: str, name: str) -> str:
    try:
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


# -- the repair -----------------------------------------------------------------------


def _stamp_head(directory: t.Any, x_arg: t.Any, diagnosis: Diagnosis) -> list[str]:
    """``stamp --purge head`` under the migration lock, after reading the version
    tables again inside it (another process may have repaired or migrated them
    meanwhile). Returns what changed, one line per database."""
    before = diagnosis.status
    assert before is not None
    binds = core._migrated_binds(diagnosis.config)
    with command_guard(binds=binds, command="doctor --fix"):
        again = status(directory, x_arg)
        if [db.current for db in again.databases] != [db.current for db in before.databases]:
            raise MigrateError(
                "the version tables changed while doctor ran (another process "
                "migrated them): nothing was stamped; run 'db doctor' again"
            )
        if again.exit_code != BLOCKED or len(again.heads) != 1:
            raise MigrateError("nothing to repair any more: nothing was stamped")
        core.stamp(directory, "head", purge=True, x_arg=x_arg, no_lock=True)
        after = status(directory, x_arg)
    changed = []
    for old, new in zip(before.databases, after.databases):
        if old.current != new.current:
            changed.append(
                f"stamped the version table of the {new.database}: "
                f"{', '.join(old.current) or 'base'} -> {', '.join(new.current) or 'base'}"
            )
    return changed

