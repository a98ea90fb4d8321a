"""``db doctor``: find what is wrong with the migrations and the databases, say how to
fix each thing, and apply the one repair that can be proven safe.

The classic trap is Alembic's "Can't locate revision identified by 'abc123'": a
database's version table names a revision that the script directory does not hold.
There is no generic fix without knowing the state of the database, and we can know
it: :func:`doctor`

* looks for the revision's file in git, in the checked-out branch's own history first
  (deleted in commit X, or committed but missing from the working tree), and only
  when that history never had it, on the other branches (present only on branch Y;
  whether Y shares history with the checked-out branch). A shallow clone is said to
  be one. Git runs through :mod:`subprocess`, bounded in time; without git it says so;
* compares the live schema with the models as env.py configures the comparison
  (its ``target_metadata``, ``include_object``, ``compare_type``...: what ``db
  migrate`` and ``db check`` compare). When they match, ``db stamp --purge head`` is
  safe, and :func:`repair` applies exactly that, under the migration lock, after
  reading the version tables again under it; when they differ, the differences are
  listed and stamping is not suggested.

It also checks the script directory (several heads, a ``down_revision`` pointing
nowhere, duplicate revision ids), each database (pending revisions, models that differ
from a database at head), what env.py's own text does (read with :mod:`ast`), the
relative SQLite path trap and the migration lock.

Grades and exit code. Each check gives one :class:`Finding` with a grade:

* ``ok``: nothing to do;
* ``note``: advice about something that works today (an env.py whose
  ``fileConfig()`` disables the application's loggers, a check that could not run);
* ``fail``: something broken, or that breaks a deploy (``db upgrade`` would fail or
  do the wrong thing: an unknown revision, pending revisions, several heads, an
  unreachable database, a migration not generated yet).

:attr:`Diagnosis.exit_code` (what ``db doctor`` exits with) is 0 when no finding is a
failure, notes included, and 1 when one is.

Nothing here knows about Click or Flask-Script: the front ends format the result.
"""
from __future__ import annotations

import ast
import dataclasses
import os
import re
import subprocess
import typing as t

from flask import current_app

from . import core, legacy
from .autogen import describe_difference
from .errors import MigrateError, list_revisions
from .lock import command_guard
from .state import get_state, sqlite_file
from .readiness import BLOCKED, Status, status, status_for

__all__ = ["Diagnosis", "Finding", "GIT_TIMEOUT", "doctor", "env_py_generation", "repair"]

#: Seconds each git command may take before doctor goes on without its answer.
GIT_TIMEOUT = 5.0

#: The grades of a :class:`Finding`, from good to bad.
OK, NOTE, FAIL = "ok", "note", "fail"


@dataclasses.dataclass
class Finding:
    """The result of one check.

    :ivar check: what was checked (``heads``, ``database ''``, ``env.py``...).
    :ivar ok: ``True`` when nothing needs attention (grade ``ok``).
    :ivar message: one line: what was found.
    :ivar fix: the command (or the action) that fixes it, or ``None``.
    :ivar details: further lines (for example each difference between the schema and
        the models).
    :ivar grade: ``"ok"``, ``"note"`` (advice; does not fail ``db doctor``) or
        ``"fail"`` (broken, or breaks a deploy: ``db doctor`` exits with 1). Default:
        ``"ok"`` when ``ok``, else ``"fail"``.
    """

    check: str
    ok: bool
    message: str
    fix: str | None = None
    details: list[str] = dataclasses.field(default_factory=list)
    grade: str = ""

    def __post_init__(self) -> None:
        if not self.grade:
            self.grade = OK if self.ok else FAIL
        if self.grade not in (OK, NOTE, FAIL):
            raise ValueError(f"unknown grade {self.grade!r}")
        self.ok = self.grade == OK

    def as_dict(self) -> dict[str, t.Any]:
        return dataclasses.asdict(self)


def _note(check: str, message: str, fix: str | None = None,
          details: list[str] | None = None) -> Finding:
    return Finding(check, False, message, fix=fix, details=details or [], grade=NOTE)


@dataclasses.dataclass
class Diagnosis:
    """The result of :func:`doctor`.

    :ivar findings: one per check, in the order run.
    :ivar status: the :class:`~.readiness.Status` the checks started from (``None`` when
        the revision files could not be read).
    :ivar changed: what :func:`repair` changed, one line each (empty: nothing).
    :ivar unchanged: why :func:`repair` changed nothing, or ``None`` (no repair
        asked, or one applied).
    :ivar stamp_safe: the databases on which ``db stamp --purge head`` was proven
        safe (their version table names an unknown revision and their schema matches
        the models).
    """

    findings: list[Finding]
    status: Status | None = None
    changed: list[str] = dataclasses.field(default_factory=list)
    stamp_safe: list[str] = dataclasses.field(default_factory=list)
    config: t.Any = dataclasses.field(default=None, repr=False, compare=False)
    unchanged: str | None = None
    #: revision id -> the text of its deleted file, as git had it (see _lost_objects).
    lost_files: dict[str, str] = dataclasses.field(default_factory=dict, repr=False,
                                                  compare=False)
    #: bind -> the schema differences, computed once per diagnosis (see _compare).
    differences: dict[str, t.Any] | None = dataclasses.field(default=None, repr=False,
                                                            compare=False)

    @property
    def failures(self) -> list[Finding]:
        """The findings graded ``fail``."""
        return [finding for finding in self.findings if finding.grade == FAIL]

    @property
    def notes(self) -> list[Finding]:
        """The findings graded ``note``."""
        return [finding for finding in self.findings if finding.grade == NOTE]

    @property
    def exit_code(self) -> int:
        """0 when no finding is a failure (notes do not count), 1 when one is."""
        return 1 if self.failures else 0

    @property
    def question(self) -> str | None:
        """What :func:`repair` asks before changing anything, or ``None`` when there
        is nothing it may repair."""
        if not self.stamp_safe:
            return None
        return (f"Stamp head into the version table of the "
                f"{' and the '.join(self.stamp_safe)} (empties it first, runs no "
                "migration)?")

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "exit_code": self.exit_code,
            "findings": [finding.as_dict() for finding in self.findings],
            "changed": list(self.changed),
            "unchanged": self.unchanged,
        }


def doctor(
    directory: str | os.PathLike[str] | None = None,
    fix: bool = False,
    confirm: t.Callable[[str], bool] | None = None,
    x_arg: str | t.Sequence[str] | None = None,
) -> Diagnosis:
    """Diagnose the script directory and every database; optionally repair.

    Runs no Alembic command; the repair is ``alembic stamp --purge head``.

    :param directory: the script directory; default: the extension's.
    :param fix: then :func:`repair` what was proven safe.
    :param confirm: see :func:`repair`.
    :param x_arg: x-arguments for env.py (the comparison and the repair run it).
    :returns: a :class:`Diagnosis`; after a repair, the findings are those of a
        second diagnosis, and ``changed`` says what changed (``unchanged`` why
        nothing did).
    :raises MigrateError: no application context, or no script directory; with
        ``fix``, see :func:`repair`.
    """
    diagnosis = _diagnose(directory, x_arg)
    if not fix:
        return diagnosis
    return repair(diagnosis, directory, confirm=confirm, x_arg=x_arg)


def repair(
    diagnosis: Diagnosis,
    directory: str | os.PathLike[str] | None = None,
    confirm: t.Callable[[str], bool] | None = None,
    x_arg: str | t.Sequence[str] | None = None,
) -> Diagnosis:
    """Apply the repairs ``diagnosis`` proved safe: ``stamp --purge head``
    (``alembic stamp --purge head``) on databases whose version table names a revision
    the folder lacks while their schema matches the models, and nothing else.

    Takes the migration lock of the databases env.py migrates, reads their version
    tables again under it and stamps only when they still hold what the diagnosis
    read (another process may have migrated or repaired them meanwhile).

    :param diagnosis: what :func:`doctor` found.
    :param directory: the script directory it diagnosed.
    :param confirm: asked before changing anything, with :attr:`Diagnosis.question`;
        the repair happens only when it returns ``True``. ``None``: proceed without
        asking (``--yes``).
    :param x_arg: x-arguments for env.py.
    :returns: ``diagnosis`` with ``unchanged`` set when nothing was repaired (no
        repair proven safe, or not confirmed); else a second diagnosis, with
        ``changed`` saying what changed.
    :raises MigrateError: the version tables changed before the lock was taken
        (nothing stamped), the lock could not be taken, or the stamp failed.
    """
    question = diagnosis.question
    if question is None:
        diagnosis.unchanged = (
            "no repair was proven safe ('db doctor --fix' only stamps head where the "
            "version table names an unknown revision and the schema matches the models)"
            if diagnosis.failures else "nothing to repair")
        return diagnosis
    if confirm is not None and not confirm(question):
        diagnosis.unchanged = "not confirmed"
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
        findings.extend(_keyword_clash_findings(path))
        findings.append(_modernize_finding(directory))
        return Diagnosis(findings)
    result = status_for(config)
    findings.append(Finding("revision files", True,
                            "every down_revision exists, no revision id is repeated"))
    diagnosis = Diagnosis(findings, status=result)
    findings.append(_heads_finding(result))
    findings.append(_env_py_finding(path))
    findings.extend(_keyword_clash_findings(path))
    findings.append(_modernize_finding(directory))
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


def _modernize_finding(directory: t.Any) -> Finding:
    """The revision files that use SQLAlchemy 1.x idioms (``db modernize`` lists
    them): one finding, with the counts and the command. Not ok when there is any:
    SQLAlchemy 2 stops ``db upgrade`` at the first of them."""
    from .modernization import files_needing_modernization

    paths = core.revision_file_paths(directory)
    try:
        files, uses = files_needing_modernization(paths)
    except MigrateError as exc:  # LibCST missing: this check only, not the diagnosis
        return Finding("sqlalchemy 2", False, f"not checked: {exc}")
    if not files:
        return Finding("sqlalchemy 2", True,
                       f"no SQLAlchemy 1.x idiom in the {len(paths)} revision file(s)")
    return Finding(
        "sqlalchemy 2", False,
        f"{files} of {len(paths)} revision file(s) use SQLAlchemy 1.x idioms that "
        f"SQLAlchemy 2 rejects ({uses} place(s)): 'db upgrade' would stop at the "
        "first of them",
        fix="db modernize (lists them), then db modernize --write, review the diff, commit",
    )


def _sqlite_path_finding() -> Finding:
    try:
        legacy.check_sqlite_paths()
    except MigrateError as exc:
        return Finding("sqlite path", False, str(exc))
    return Finding("sqlite path", True, "no relative SQLite path moved")


def _lock_finding(db: t.Any, label: str, reached: bool) -> Finding:
    check = f"lock {db.bind!r}" if db.bind else "lock"
    if not reached:
        # Nobody was asked: the database could not be read (its finding says why).
        return _note(check, f"not checked: {label} could not be read")
    if db.lock_holder is None:
        return Finding(check, True, f"nobody holds the migration lock on {label}")
    holder = db.lock_holder
    fix = "wait for it to finish ('db upgrade' waits by itself)"
    if holder.backend_pid is not None:
        fix += ("; if that process is gone: SELECT "
                f"pg_terminate_backend({holder.backend_pid})")
    elif holder.connection_id is not None:
        fix += f"; if that process is gone: KILL {holder.connection_id}"
    return Finding(check, False, f"the migration lock on {label} is held by "
                                 f"{holder.describe()}", fix=fix)


def _database_findings(db: t.Any, result: Status, script: t.Any,
                       diagnosis: Diagnosis) -> list[Finding]:
    name = f"database {db.bind!r}" if db.bind else "database"
    schema = f"schema {db.bind!r}" if db.bind else "schema"
    label = f"the {db.database}"
    unknown = [rev for rev in db.current if rev not in _known(script)]
    # A problem other than an unknown revision: its version table could not be read.
    found: list[Finding] = [_lock_finding(db, label, db.problem is None or bool(unknown))]
    if db.problem is not None and not unknown:
        found.append(Finding(name, False, db.problem))
        return found
    if unknown:
        found.append(Finding(name, False, db.problem or ""))
        found.extend(_where_did_it_go(rev, script.dir, diagnosis.lost_files)
                     for rev in unknown)
        differences = _compare(db, diagnosis)
        if isinstance(differences, str):
            found.append(Finding(schema, False, f"{label} could not be compared with the "
                                                f"models ({differences}), so stamping "
                                                "head is not proven safe"))
        elif differences is None:
            found.append(Finding(schema, False,
                                 f"{label} has no models to compare with: not compared"))
        elif differences:
            found.append(Finding(
                schema, False,
                f"the schema of {label} differs from the models in {len(differences)} "
                "place(s), so stamping head is NOT safe: bring the schema to the "
                "state of one revision of the folder, then 'db stamp --purge <that "
                "revision>'",
                details=differences,
            ))
        elif len(result.heads) != 1:
            found.append(Finding(
                schema, False,
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
                found.append(Finding(schema, False, message))
            else:
                diagnosis.stamp_safe.append(db.database)
                found.append(Finding(
                    schema, False,
                    f"the schema of {label} matches the models at head, so 'db stamp "
                    "--purge head' is safe: it replaces the unknown revision with "
                    f"{list_revisions([(h.revision, h.message) for h in result.heads]) or 'base'}"
                    " and runs no migration",
                    fix="db stamp --purge head (or: db doctor --fix)",
                    details=_lost_after_stamp(unknown, diagnosis.lost_files, script),
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
    differences = _compare(db, diagnosis)
    if isinstance(differences, str):
        found.append(_note(schema, f"{label} was not compared with the models: "
                                   f"{differences}"))
    elif differences is None:
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


# -- what a stamp leaves out of the folder ---------------------------------------------


def _lost_after_stamp(unknown: list[str], lost_files: dict[str, str],
                      script: t.Any) -> list[str]:
    """Lines saying what a database built from the folder will lack once the unknown
    revision is stamped over: the tables and columns its deleted file created (read
    from the file as git had it) that no file of the folder creates."""
    lines = []
    texts = [_read_file(rev.path) for rev in script.walk_revisions()]
    for revision in unknown:
        text = lost_files.get(revision)
        if text is None:
            continue
        missing = [what for what in _created_objects(text)
                   if not any(what in _created_objects(other) for other in texts)]
        if missing:
            lines.append(
                f"after the stamp, a database built from the folder ('db upgrade' on an "
                f"empty one) will lack {', '.join(_show(what) for what in missing)}, "
                f"which revision {revision} created and no file of the folder creates: "
                "restore its file instead to keep them"
            )
    return lines


def _show(what: tuple[str, ...]) -> str:
    return f"table {what[1]!r}" if what[0] == "table" else f"column {what[1]}.{what[2]}"


def _created_objects(text: str) -> set[tuple[str, ...]]:
    """The tables (``("table", name)``) and columns (``("column", table, name)``) that
    a revision file's ``upgrade()`` creates with ``op.create_table`` and
    ``op.add_column`` (also inside ``batch_alter_table``), read with :mod:`ast`."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return set()
    upgrade = next((node for node in tree.body if isinstance(node, ast.FunctionDef)
                    and node.name == "upgrade"), None)
    if upgrade is None:
        return set()
    batches: dict[str, str] = {}  # `with op.batch_alter_table("t") as batch_op`
    for node in ast.walk(upgrade):
        if isinstance(node, ast.With):
            for item in node.items:
                call = item.context_expr
                if (isinstance(call, ast.Call) and _called(call) == "batch_alter_table"
                        and isinstance(item.optional_vars, ast.Name) and call.args
                        and _text(call.args[0])):
                    batches[item.optional_vars.id] = _text(call.args[0])  # type: ignore
    created: set[tuple[str, ...]] = set()
    for node in ast.walk(upgrade):
        if not isinstance(node, ast.Call):
            continue
        called = _called(node)
        if called == "create_table" and node.args and _text(node.args[0]):
            created.add(("table", t.cast(str, _text(node.args[0]))))
        elif called == "add_column":
            target = node.func.value if isinstance(node.func, ast.Attribute) else None
            if isinstance(target, ast.Name) and target.id in batches:
                table, column = batches[target.id], node.args[0] if node.args else None
            elif len(node.args) >= 2:
                table, column = _text(node.args[0]), node.args[1]
            else:
                continue
            if (table and isinstance(column, ast.Call) and column.args
                    and _text(column.args[0])):
                created.add(("column", table, t.cast(str, _text(column.args[0]))))
    return created


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) \
        else None


def _keyword_clash_findings(directory: str) -> list[Finding]:
    """env.py lines that name a key of ``configure_args`` beside a copy of it: every
    command fails there (see :func:`.legacy.unresolved_clashes`)."""
    keys = get_state().configure_args.keys()
    env_py = os.path.join(directory, "env.py")
    return [
        Finding(
            "env.py", False,
            f"{env_py}, line {line} passes {key!r} to context.configure() by name and "
            "again inside a copy of configure_args: every command fails there with "
            "\"got multiple values for keyword argument\"",
            fix="remove the named keyword, or unpack current_app.extensions['migrate']"
                ".configure_args itself (then env.py's keyword wins)",
        )
        for line, key in legacy.unresolved_clashes(_read_file(env_py), keys)
    ]


def _read_file(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError:
        return ""


# -- the schema against the models ------------------------------------------------------


def _compare(db: t.Any, diagnosis: Diagnosis) -> list[str] | None | str:
    """The differences between a database's schema and its models, one line each;
    ``None`` when env.py gives it no models; a string saying why it could not be
    compared.

    The comparison is Alembic's ``compare_metadata`` with the migration context env.py
    configures (run once per diagnosis for every database, nothing written), so it
    honours env.py's own ``include_object``, ``include_name``, ``compare_type``...
    and Migrate's configure arguments exactly as ``db migrate`` and ``db check`` do."""
    if diagnosis.differences is None:
        diagnosis.differences = _compare_all(diagnosis.config)
    if db.bind in diagnosis.differences:
        return diagnosis.differences[db.bind]
    return "env.py did not connect to it"


def _compare_all(config: t.Any) -> dict[str, t.Any]:
    """:func:`_compare` for every database env.py connects to: ``{bind: result}``."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.environment import EnvironmentContext

    from .autogen import enable_enum_value_detection
    from .readiness import _app_engines
    from .version_table import version_tables

    # A SQLite file that does not exist yet: env.py would create it by connecting.
    missing = {table.bind for table in version_tables()
               if (path := sqlite_file(table.engine.url)) is not None
               and not os.path.exists(path)}
    engines = _app_engines()
    if missing:
        return {bind: "its SQLite file does not exist yet" if bind in missing
                else "the SQLite file of another database does not exist yet"
                for bind in engines}
    # As 'db check' does (core._review): ENUM value changes count on PostgreSQL.
    enable_enum_value_detection(current_app.config,
                                [engine.dialect.name for engine in engines.values()])
    results: dict[str, t.Any] = {}

    def compare(rev: t.Any, context: t.Any) -> list[t.Any]:
        engine = context.connection.engine
        bind = next((name for name, known in engines.items()
                     if known is engine or known.url == engine.url), "")
        metadata = context.opts.get("target_metadata")
        metadatas = metadata if isinstance(metadata, (list, tuple)) else [metadata]
        if not any(m is not None and m.tables for m in metadatas):
            results[bind] = None
        else:
            # Sorted: Alembic finds removed tables by set difference, whose order
            # changes from one run to the next (hash seed).
            results[bind] = sorted(describe_difference(diff)
                                   for diff in compare_metadata(context, metadata))
        return []

    script = core._loaded_script(config)
    try:
        with EnvironmentContext(config, script, fn=compare, as_sql=False,
                                dont_mutate=True):
            script.run_env()
    except Exception as exc:  # noqa: BLE001 - reported as a finding
        reason = f"env.py failed: {core.error_message(exc)}"
        return {bind: results.get(bind, reason) for bind in engines}
    return results


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


def _where_did_it_go(revision: str, directory: str,
                     lost: dict[str, str] | None = None) -> Finding:
    """Look for the file that defined ``revision`` in the git history of the
    script directory. When the file was deleted, its text (as git had it) goes into
    ``lost`` under the revision id."""
    check = f"revision {revision}"
    versions = os.path.join(directory, "versions")
    cwd = versions if os.path.isdir(versions) else directory
    try:
        top = _git(["rev-parse", "--show-toplevel"], cwd).strip()
    except FileNotFoundError:
        # Not necessarily absent from the machine: absent from this process's PATH.
        return Finding(check, False, "git not found on PATH: cannot look for the file "
                                     f"that defined revision {revision}")
    except subprocess.TimeoutExpired:
        return Finding(check, False, f"git did not answer within {GIT_TIMEOUT:g} s: "
                                     f"cannot look for revision {revision}")
    except subprocess.CalledProcessError:
        return Finding(check, False, f"{directory!r} is not in a git checkout: cannot "
                                     f"look for the file that defined revision {revision}")
    try:
        finding, text = _search_history(revision, cwd, top, check)
    except subprocess.TimeoutExpired:
        return Finding(check, False, f"git did not answer within {GIT_TIMEOUT:g} s: "
                                     f"cannot look for revision {revision}")
    except subprocess.CalledProcessError as exc:
        reason = ((exc.stderr or "").strip().splitlines() or ["no message"])[0]
        return Finding(check, False, f"git failed while looking for revision {revision}: "
                                     f"{reason}")
    if text is not None and lost is not None:
        lost[revision] = text
    return finding


def _search_history(revision: str, cwd: str, top: str,
                    check: str) -> tuple[Finding, str | None]:
    """The checked-out branch's own history first: what happened there to the file
    is what happened to this checkout. Other branches only when that history never
    had it."""
    if _has_commits(top):
        own = _search_own_history(revision, cwd, top, check)
        if own is not None:
            return own
    shallow = _is_shallow(top)
    caveat = (" (this clone's history is shallow: commits before its first one were "
              "not searched)" if shallow else "")
    other = _search_other_branches(revision, cwd, top, check)
    if other is not None:
        other.message += caveat
        return other, None
    if shallow:
        return Finding(
            check, False,
            f"no commit of this git checkout has a file defining revision {revision}, "
            "but its history is shallow (a shallow clone): the commits before its "
            "first one were not searched",
            fix="git fetch --unshallow, then db doctor again",
        ), None
    return Finding(check, False, f"no commit of this git checkout (on any branch) has a "
                                 f"file defining revision {revision}"), None


def _search_own_history(revision: str, cwd: str, top: str,
                        check: str) -> tuple[Finding, str | None] | None:
    """What the newest commit of HEAD's history that added, deleted or changed a file
    defining ``revision`` did to it; ``None`` when no such commit exists."""
    log = _git(["log", "HEAD", "--no-renames", "--diff-filter=ADM",
                "--format=@%H%x1f%h%x1f%s%x1f%ad", "--date=short", "--name-status",
                f"-S{revision}", "--", "."], cwd)
    commit: list[str] = []
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:].split("\x1f")
            continue
        if "\t" not in line or len(commit) != 4:
            continue
        state, path = line.split("\t", 1)
        sha, short, subject, date = commit
        shown = os.path.relpath(os.path.join(top, path))
        after = "" if state == "D" else _git(["show", f"{sha}:{path}"], top)
        if _defines(after, revision):  # added, or changed and still defining it
            if _exists(top, "HEAD", path):
                return Finding(
                    check, False,
                    f"revision {revision} is defined by {shown}, which is committed but "
                    "missing from the working tree",
                    fix=f"git checkout HEAD -- {shown}",
                ), None
            # Removed without a commit of its own (in a merge, for example).
            return Finding(
                check, False,
                f"revision {revision} was defined by {shown} (added in commit "
                f"{short}), which the checked-out tree no longer has",
                fix=f"git checkout {short} -- {shown}",
            ), after
        before = _show_parent(top, sha, path)
        if before is None or not _defines(before, revision):
            continue  # a file that only mentions the id (a child's down_revision)
        if state == "D":
            deleted = (f"revision {revision} was defined by {shown}, deleted in commit "
                       f"{short} ({subject!r}, {date}) of the checked-out branch")
            copy = _renumbered_copy(top, sha, before)
            if copy is None:
                return Finding(check, False, deleted,
                               fix=f"git checkout {short}^ -- {shown}"), before
            return _renumbered_finding(check, deleted, short, before, copy), None
        return Finding(
            check, False,
            f"revision {revision} was defined by {shown} until commit {short} "
            f"({subject!r}, {date}) changed its revision id",
            fix=f"git show {short} -- {shown}",
        ), before
    return None


def _renumbered_copy(top: str, commit: str, text: str) -> tuple[str, str, str, str] | None:
    """A file that ``commit`` added with the same ``upgrade()`` as the deleted ``text``
    (a revision renumbered, typically after a merge conflict): ``(path, revision,
    its down_revision, the deleted file's down_revision)``, or ``None``."""
    old = _revision_facts(text)
    if old is None:
        return None
    added = _git(["show", "--no-renames", "--diff-filter=A", "--name-only", "--format=",
                  commit], top).split()
    for path in added:
        if not path.endswith(".py"):
            continue
        new = _revision_facts(_git(["show", f"{commit}:{path}"], top))
        if new is not None and new[2] == old[2]:
            return os.path.relpath(os.path.join(top, path)), new[0], new[1], old[1]
    return None


def _revision_facts(text: str) -> tuple[str, str, str] | None:
    """``(revision, down_revision, dump of upgrade()'s body)`` of a revision file,
    read with :mod:`ast`; ``None`` when it has not all three."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    values: dict[str, str] = {}
    body = None
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    value = node.value
                    if isinstance(value, ast.Constant) and (value.value is None
                                                            or isinstance(value.value, str)):
                        values[target.id] = str(value.value)
        elif isinstance(node, ast.FunctionDef) and node.name == "upgrade":
            statements = node.body
            if (statements and isinstance(statements[0], ast.Expr)
                    and isinstance(statements[0].value, ast.Constant)):
                statements = statements[1:]  # a docstring is not the change
            body = "\n".join(ast.dump(statement) for statement in statements)
    if "revision" not in values or "down_revision" not in values or body is None:
        return None
    return values["revision"], values["down_revision"], body


def _renumbered_finding(check: str, deleted: str, short: str, text: str,
                        copy: tuple[str, str, str, str]) -> Finding:
    path, new, new_down, old_down = copy
    message = (f"{deleted}, which added {path} (revision {new}) with the same "
               "upgrade(): the change was renumbered, and this database already ran it "
               "under the old id (restoring the old file would put it in two revisions)")
    if new_down == old_down:
        return Finding(check, False, message,
                       fix=f"db stamp --purge {new} (the same change, after the same "
                           f"revision {old_down})")
    return Finding(
        check, False,
        message + f"; the old revision followed {old_down}, the new one follows "
        f"{new_down}: the database may lack the changes of the revisions from "
        f"{old_down} to {new_down}",
        fix=(f"apply those changes (see 'db upgrade {old_down}:{new_down} --sql'), "
             f"then db stamp --purge {new}"),
    )


def _search_other_branches(revision: str, cwd: str, top: str,
                           check: str) -> Finding | None:
    """A file defining ``revision`` added by a commit that only other branches have."""
    others = ["--all", "--not", "HEAD"] if _has_commits(top) else ["--all"]
    log = _git(["log", *others, "--no-renames", "--diff-filter=A", "--format=@%H",
                "--name-only", f"-S{revision}", "--", "."], cwd)
    commit = None
    found: list[tuple[str, str]] = []  # (commit, path), newest first
    for line in log.splitlines():
        if line.startswith("@"):
            commit = line[1:]
            continue
        path = line.strip()
        if path and commit is not None and _defines(_git(["show", f"{commit}:{path}"], top),
                                                    revision):
            found.append((commit, path))
    if not found:
        return None
    # A commit of the checked-out history's own line (a later commit of this branch)
    # before one of an unrelated history (another edition of the project) that also
    # added the file: the newest commit alone may belong to either.
    related = _has_commits(top) and next(
        ((c, p) for c, p in found[:20] if _related(top, c)), None)
    commit, path = related or found[0]
    shown = os.path.relpath(os.path.join(top, path))
    branches = _branches_containing(top, commit)
    if not branches:
        return Finding(check, False,
                       f"revision {revision} is defined by {shown} only in commit "
                       f"{commit[:7]}, which no branch holds",
                       fix=f"git checkout {commit[:7]} -- {shown}")
    named = ", ".join(branches[:3]) + (f" and {len(branches) - 3} more"
                                       if len(branches) > 3 else "")
    where = (f"revision {revision} is defined by {shown} only on branch"
             f"{'es' if len(branches) > 1 else ''} {named} (added in commit "
             f"{commit[:7]}), not in the checked-out branch's history")
    if _has_commits(top) and not _related(top, commit):
        # Another history altogether (a rewrite, a second edition): merging it
        # would fail, or bring in a different project.
        return Finding(
            check, False,
            f"{where}, and that history shares no commit with the checked-out one: "
            "the database was migrated from that other history",
            fix=(f"use a database of this history, or check out {branches[0]} to "
                 "work with this one (do not merge: the histories are unrelated)"),
        )
    return Finding(check, False, where,
                   fix=f"git merge {branches[0]} (or: git checkout {branches[0]} "
                       f"-- {shown})")


def _branches_containing(top: str, commit: str) -> list[str]:
    """Local branches first, then remote ones; symbolic refs (origin/HEAD) left out."""
    lines = _git(["branch", "-a", "--contains", commit,
                  "--format=%(refname)%09%(refname:short)%09%(symref)"], top).splitlines()
    local, remote = [], []
    for line in lines:
        parts = line.split("\t")
        if len(parts) != 3 or parts[2]:
            continue
        (local if parts[0].startswith("refs/heads/") else remote).append(parts[1])
    return local + remote


def _show_parent(top: str, commit: str, path: str) -> str | None:
    try:
        return _git(["show", f"{commit}^:{path}"], top)
    except subprocess.CalledProcessError:
        return None


def _has_commits(top: str) -> bool:
    try:
        _git(["rev-parse", "--verify", "-q", "HEAD"], top)
    except subprocess.CalledProcessError:
        return False
    return True


def _is_shallow(top: str) -> bool:
    try:
        return _git(["rev-parse", "--is-shallow-repository"], top).strip() == "true"
    except subprocess.CalledProcessError:
        return False


def _related(top: str, commit: str) -> bool:
    """Whether ``commit`` and HEAD share a commit (``git merge-base`` finds one)."""
    try:
        _git(["merge-base", commit, "HEAD"], top)
    except subprocess.CalledProcessError:
        return False
    return True


def _exists(top: str, ref: str, path: str) -> bool:
    try:
        _git(["cat-file", "-e", f"{ref}:{path}"], top)
    except subprocess.CalledProcessError:
        return False
    return True


# -- env.py: what its own text does -------------------------------------------------------

#: (generation, test on env.py's text), most specific first. Each generation is
#: recognised by the API spellings its template used. Only used to name the template:
#: the findings come from what the file does (:class:`_EnvPy`).
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


#: Migrate's configure arguments that name the version table: an env.py that does not
#: pass them reads and writes another version table than the one given to Migrate.
_VERSION_TABLE_ARGS = ("version_table", "version_table_schema")

#: Configure arguments that only autogenerate reads: --sql mode, which never
#: autogenerates, loses nothing without them.
_AUTOGENERATE_ONLY = frozenset((
    "compare_type", "compare_server_default", "include_object", "include_name",
    "include_schemas", "include_symbol", "render_as_batch", "render_item",
    "user_module_prefix", "alembic_module_prefix", "sqlalchemy_module_prefix",
    "process_revision_directives",
))


class _EnvPy:
    """What an env.py does, read from its syntax tree (never run for this).

    :ivar file_config: the line of its ``fileConfig()`` call, or ``None``.
    :ivar keeps_loggers: whether that call passes ``disable_existing_loggers=False``
        (``None``: a value that cannot be read without running the file).
    :ivar configure: per ``context.configure()`` call, ``(line, mode, passes
        Migrate's configure arguments, the keywords it passes itself)``; mode
        ``"offline"`` (``url=``), ``"online"`` (``connection=``) or ``"?"``.
    :ivar drops_enums: whether it applies :func:`.autogen.drop_created_enum_types`.
    """

    def __init__(self, text: str) -> None:
        tree = ast.parse(text)
        self.file_config: int | None = None
        self.keeps_loggers: bool | None = False
        self.configure: list[tuple[int, str, bool, set[str]]] = []
        self.drops_enums = "drop_created_enum_types" in text
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            called = _called(node)
            if called == "fileConfig" and self.file_config is None:
                self.file_config = node.lineno
                keyword = next((k for k in node.keywords
                                if k.arg == "disable_existing_loggers"), None)
                if keyword is None:
                    self.keeps_loggers = False  # the default is True: they are disabled
                elif isinstance(keyword.value, ast.Constant):
                    self.keeps_loggers = not keyword.value.value
                else:
                    self.keeps_loggers = None
            elif (called == "configure" and isinstance(node.func, ast.Attribute)
                  and isinstance(node.func.value, ast.Name)
                  and node.func.value.id == "context"):
                names = {k.arg for k in node.keywords if k.arg}
                mode = ("offline" if "url" in names else
                        "online" if "connection" in names else "?")
                passes = any(k.arg is None and "configure_args" in ast.unparse(k.value)
                             for k in node.keywords)
                self.configure.append((node.lineno, mode, passes, names))


def _env_py_finding(directory: str) -> Finding:
    path = os.path.join(directory, "env.py")
    text = _read_file(path)
    generation = env_py_generation(directory)
    written = (f"written by {generation}'s template" if generation
               else "not written by a known template")
    if not text:
        return Finding("env.py", False, f"{path} is missing or empty")
    try:
        env = _EnvPy(text)
    except SyntaxError as exc:
        return Finding("env.py", False, f"env.py does not parse: {exc.msg} (line {exc.lineno})")
    failures, notes = _env_py_problems(env)
    if not failures and not notes:
        return Finding("env.py", True, f"{written}; nothing in it needs changing")
    multidb = "multidb" in (generation or "") or "engine_name" in text
    new = f"{directory.rstrip(os.sep)}.new"
    fix = (f"db init -d {new}{' --multidb' if multidb else ''} && cp {new}/env.py "
           f"{directory}/env.py && rm -r {new} (review the difference first if you "
           "edited env.py)")
    if generation == "flask-migrate-compat":
        fix = "edit env.py as said"
    if failures:
        return Finding("env.py", False, f"env.py ({written}): {failures[0]}", fix=fix,
                       details=failures[1:] + notes)
    return _note("env.py", f"env.py ({written}) works here; {notes[0]}", fix=fix,
                 details=notes[1:])


def _env_py_problems(env: _EnvPy) -> tuple[list[str], list[str]]:
    """``(failures, notes)`` about an env.py, each true of this file and this app."""
    failures: list[str] = []
    notes: list[str] = []
    configure_args = dict(getattr(get_state(), "configure_args", {}) or {})
    ignored = sorted(key for key in configure_args if key != "on_version_apply")
    for line, mode, passes, own in env.configure:
        # An argument env.py passes itself (compare_type=True) is not missed.
        missed = [key for key in ignored if key not in own
                  and (mode != "offline" or key not in _AUTOGENERATE_ONLY)]
        if passes or not missed:
            continue
        named = ", ".join(
            f"{key}={configure_args[key]!r}"
            if isinstance(configure_args[key], (bool, int, str, type(None))) else key
            for key in missed)
        if mode == "offline":
            notes.append(f"in --sql mode its context.configure() (line {line}) does not "
                         f"pass Migrate's configure arguments ({named})")
        elif any(key in _VERSION_TABLE_ARGS for key in missed):
            failures.append(f"its context.configure() (line {line}) does not pass "
                            f"Migrate's configure arguments ({named}): migrations record "
                            "themselves in alembic_version, not in the version table "
                            "given to Migrate")
        else:
            notes.append(f"its context.configure() (line {line}) does not pass Migrate's "
                         f"configure arguments ({named}): 'db migrate' and 'db upgrade' "
                         "run without them")
    if env.file_config is not None and env.keeps_loggers is False:
        notes.append(f"its fileConfig() (line {env.file_config}) does not pass "
                     "disable_existing_loggers=False: it disables the loggers the "
                     "application created before a migration runs in its process")
    if not env.drops_enums:
        enums = _postgresql_enums()
        if enums:
            notes.append(
                "autogenerated downgrades that drop a table leave its PostgreSQL ENUM "
                f"types behind ({', '.join(enums)} in the models): this env.py does not "
                "apply flask_migrate_compat.autogen.drop_created_enum_types")
    return failures, notes


def _postgresql_enums() -> list[str]:
    """The named ENUM types of the models bound to a PostgreSQL database (none when
    the application has no PostgreSQL database)."""
    import sqlalchemy as sa

    from .state import app_engines

    state = get_state()
    try:
        engines = app_engines(current_app, state.db)
    except Exception:  # noqa: BLE001 - no usable engine: the database finding says so
        return []
    postgresql = {bind for bind, engine in engines.items()
                  if engine.dialect.name == "postgresql"}
    if not postgresql:
        return []
    db = legacy.unwrap(state.db)
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:  # Flask-SQLAlchemy 3: one MetaData per bind
        tables = [(key or "", table) for key, metadata in metadatas.items()
                  for table in metadata.tables.values()]
    else:  # Flask-SQLAlchemy 2: one MetaData, each table tagged with its bind
        tables = [(table.info.get("bind_key") or "", table)
                  for table in db.metadata.tables.values()]
    names = set()
    for bind, table in tables:
        if bind not in postgresql:
            continue
        for column in table.columns:
            if isinstance(column.type, sa.Enum) and column.type.native_enum:
                names.add(column.type.name or f"{table.name}.{column.name}")
    return sorted(names)


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

