"""``db test``: prove a migration history on a scratch database before it reaches
production.

A history of many revisions is rarely run from an empty database, and its downgrades
almost never: revisions that no longer run on today's stack, and downgrades that fail
(an unnamed foreign key, SQL for an old server) or leave something behind, are then
found one at a time, on a real database. :func:`test` finds them all at once, on a
database created for the purpose and dropped afterwards; it checks

* ``heads``: the script directory has one head;
* ``files``: every revision file loads, every ``down_revision`` exists, no revision id
  is repeated;
* ``upgrade``: from an empty database to head, one revision at a time, each timed;
* ``stairway``: for each revision, upgrade to it, downgrade one step, compare the
  schema with what it was before the upgrade (:func:`snapshot`), upgrade again;
* ``models``: at head, the models match the schema (``db check``'s comparison,
  env.py's ``include_object`` included).

Every failure is reported, not just the first: after a stairway step fails, the scratch
database is rebuilt up to that revision and the climb goes on.

The scratch databases (:class:`Scratch`): a temporary SQLite file, or a temporary
database on the configured PostgreSQL / MariaDB / MySQL server, one per bind. For the
duration of the run, the application's engines (``db.engines``, what every env.py
generation reaches through ``current_app.extensions['migrate'].db``) and its
``SQLALCHEMY_DATABASE_URI`` / ``SQLALCHEMY_BINDS`` (what Flask-Migrate 1.x-2.4 env.py
files read) point at them; the configured engines refuse any connection, and env.py is
probed before anything runs: if it connects anywhere else, nothing runs.

Named ``testing`` rather than after the command: it also holds the helper for a
project's own test suite (:func:`check_migrations`), and a module called ``test``
would read as this package's own tests. Nothing here knows about Click.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import typing as t

from flask import current_app

from . import core
from .autogen import describe_difference
from .diagnosis import Finding
from .errors import MigrateError, Terminated, describe_database, failed_revision, first_line
from .readiness import Revision, several_heads_message
from .state import app_engines, configured_urls, get_state, sqlite_file

__all__ = ["CHECKS", "CheckResult", "Scratch", "TestResult", "check_migrations",
           "snapshot", "compare_snapshots", "test"]

#: The checks, in the order they run.
CHECKS = ("heads", "files", "upgrade", "stairway", "models")

_log = logging.getLogger("flask_migrate_compat")


@dataclasses.dataclass
class CheckResult(Finding):
    """One check's outcome (a :class:`.diagnosis.Finding`, as ``db doctor`` gives).

    :ivar revision: the revision concerned, or ``None``.
    :ivar skipped: the check did not run (not asked for, or what it needs failed).
    """

    revision: t.Optional[str] = None
    skipped: bool = False


@dataclasses.dataclass
class TestResult:
    """The result of :func:`test`.

    :ivar checks: one :class:`CheckResult` per check, plus one per failing revision.
    :ivar timings: per revision of the upgrade from empty: ``{"revision", "message",
        "seconds"}`` (the revision's own time, as ``db upgrade`` prints it).
    :ivar databases: the scratch databases used, named without credentials.
    """

    __test__ = False  # not a pytest test class, whatever imports it

    checks: list[CheckResult] = dataclasses.field(default_factory=list)
    timings: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    databases: list[str] = dataclasses.field(default_factory=list)

    @property
    def failures(self) -> list[CheckResult]:
        """The failed checks, in the order found."""
        return [check for check in self.checks if not check.ok]

    @property
    def exit_code(self) -> int:
        """0 when every check that ran passed, 1 otherwise (``db test``'s code)."""
        return 1 if self.failures else 0

    def as_dict(self) -> dict[str, t.Any]:
        """Every fact as JSON-ready values (``db test --json``)."""
        return {
            "exit_code": self.exit_code,
            "databases": list(self.databases),
            "checks": [check.as_dict() for check in self.checks],
            "timings": list(self.timings),
        }


def test(
    directory: str | os.PathLike[str] | None = None,
    x_arg: str | t.Sequence[str] | None = None,
    checks: t.Iterable[str] | None = None,
    stairway_from: str | None = None,
    url: t.Iterable[str] | str | None = None,
    progress: t.Callable[[str], None] | None = None,
) -> TestResult:
    """Run the checks (:data:`CHECKS`) on scratch databases; the configured databases
    are never connected to.

    :param directory: the script directory; default: the extension's.
    :param x_arg: x-arguments for env.py.
    :param checks: the checks to run (names from :data:`CHECKS`); default all.
        ``stairway`` and ``models`` need the upgrade, which then runs too.
    :param stairway_from: run the stairway from this revision on (for histories whose
        oldest downgrades were never written); the older ones are only upgraded.
    :param url: scratch databases to use instead of temporary ones, each empty and
        left empty: ``"URL"`` for the default database, ``"BIND=URL"`` for a bind.
    :param progress: called with one line as each revision is upgraded and as each
        failure is found (the front ends print them on stderr).
    :returns: a :class:`TestResult`; its ``exit_code`` is ``db test``'s.
    :raises MigrateError: no application context or script directory, an unknown
        check name or ``stairway_from`` revision, a refused ``url``, a scratch
        database that cannot be created (the line says what to pass instead), or an
        env.py that connects elsewhere than the scratch database.
    :raises Terminated: on SIGTERM (``KeyboardInterrupt`` on Ctrl-C), after the
        scratch databases were dropped.
    """
    wanted = _wanted(checks)
    say = progress or (lambda line: None)
    result = TestResult()
    state = get_state()
    try:
        config = core._script_config(directory, x_arg)
    except Exception as exc:  # noqa: BLE001 - a file that does not load: reported
        path = os.fspath(state.migrate.directory if directory is None else directory)
        if not os.path.isdir(path):
            raise
        result.checks.append(CheckResult("files", False, _files_problem(path, exc)))
        for name in [name for name in CHECKS if name in wanted and name != "files"]:
            result.checks.append(_not_run(name, "the revision files do not load"))
        return result
    script = core._loaded_script(config)
    order = list(reversed(list(script.walk_revisions())))
    start = _stairway_start(script, order, stairway_from)
    heads = [Revision.of(rev) for rev in script.get_revisions(script.get_heads())]
    if "heads" in wanted:
        result.checks.append(_heads_check(heads))
    if "files" in wanted:
        result.checks.append(CheckResult(
            "files", True, f"{len(order)} revision file{'s' if len(order) != 1 else ''} "
            "load; every down_revision exists, no revision id is repeated"))
    if not wanted & {"upgrade", "stairway", "models"}:
        return result
    with Scratch.for_application(url) as scratch:
        result.databases = scratch.described()
        _probe_env(config, script, scratch)
        climbed = _climb(config, order, start, wanted, scratch, result, say)
        if "models" in wanted:
            result.checks.append(_models_check(config) if climbed else _not_run(
                "models", "the upgrade to head failed"))
    return result


test.__test__ = False  # type: ignore[attr-defined]  # pytest: not a test, if imported


def _wanted(checks: t.Iterable[str] | None) -> set[str]:
    if checks is None:
        return set(CHECKS)
    wanted = set(checks)
    unknown = sorted(wanted - set(CHECKS))
    if unknown:
        raise MigrateError(f"unknown check {unknown[0]!r}: choose from {', '.join(CHECKS)}")
    return wanted


def _not_run(name: str, why: str) -> CheckResult:
    return CheckResult(name, True, f"not run: {why}", skipped=True)


def _files_problem(path: str, exc: Exception) -> str:
    """The revision files that do not load (each named), else the problem found."""
    from alembic.util import load_python_file

    broken = []
    versions = os.path.join(path, "versions")
    for name in sorted(os.listdir(versions)) if os.path.isdir(versions) else ():
        if not name.endswith(".py") or name == "__init__.py":
            continue
        try:
            load_python_file(versions, name)
        except Exception as error:  # noqa: BLE001 - reported, one per file
            broken.append(f"{os.path.join(versions, name)} does not load "
                          f"({type(error).__name__}: {core.redacted(first_line(error))})")
    return "; ".join(broken) if broken else core.error_message(exc)


def _heads_check(heads: list[Revision]) -> CheckResult:
    if len(heads) > 1:
        names = " and ".join(rev.revision for rev in heads)
        return CheckResult("heads", False, several_heads_message(heads),
                           fix=f'db merge heads -m "merge {names}"')
    if not heads:
        return CheckResult("heads", True, "the folder has no revision yet")
    return CheckResult("heads", True, f"one head, {heads[0].describe()}")


def _stairway_start(script: t.Any, order: list[t.Any], stairway_from: str | None) -> int:
    """The index in ``order`` from which the stairway runs."""
    if stairway_from is None:
        return 0
    with core._explained_revision_errors([stairway_from]):
        found = script.get_revision(stairway_from)
    if found is None:
        raise MigrateError(f"--stairway-from {stairway_from!r} is not a revision")
    return next(i for i, rev in enumerate(order) if rev.revision == found.revision)


# -- the climb: upgrade, and the stairway -------------------------------------------------


def _climb(config: t.Any, order: list[t.Any], start: int, wanted: set[str],
           scratch: Scratch, result: TestResult, say: t.Callable[[str], None]) -> bool:
    """Upgrade the scratch databases one revision at a time, with the stairway at each
    revision from ``start``. Returns whether head was reached."""
    from .timing import RevisionTiming

    stairs = "stairway" in wanted
    before = scratch.snapshot() if stairs and start == 0 else None
    failed_stairs = 0
    timings = []
    for index, rev in enumerate(order):
        described = Revision.of(rev).describe()
        started = time.perf_counter()
        try:
            steps = _step(config, "upgrade", rev.revision)
            if not steps:
                # An env.py that does not pass Migrate's configure_args on (Flask-Migrate
                # 1.x) reports no step: the command's own time stands in.
                steps = [RevisionTiming(rev.revision, Revision.of(rev).message,
                                        time.perf_counter() - started, True)]
        except Exception as exc:  # noqa: BLE001 - reported; the climb stops here
            line = f"upgrade to {described} failed: {_failure(exc)}"
            result.checks.append(CheckResult("upgrade", False, line, revision=rev.revision))
            for name in ("stairway",) if stairs else ():
                result.checks.append(_not_run(name, f"the upgrade failed at {rev.revision}"))
            return False
        timings.extend(steps)
        for step in steps:
            say(step.line())
            result.timings.append({"revision": step.revision, "message": step.message,
                                   "seconds": round(step.seconds, 4)})
        if not stairs or index < start:
            if stairs and index + 1 == start:
                before = scratch.snapshot()
            continue
        after = scratch.snapshot()
        problem = _stair(config, rev, before, scratch)
        if problem is not None:
            failed_stairs += 1
            result.checks.append(CheckResult("stairway", False, f"{described}: {problem}",
                                             revision=rev.revision))
            # Rebuild the scratch databases at this revision and go on, so every
            # failing downgrade is found in one run.
            scratch.reset()
            try:
                for head in _heads_of(order[:index + 1]):
                    _step(config, "upgrade", head)
            except Exception as exc:  # noqa: BLE001 - cannot go on: reported
                line = f"upgrade to {described} (after rebuilding) failed: {_failure(exc)}"
                result.checks.append(CheckResult("upgrade", False, line, revision=rev.revision))
                return False
            after = scratch.snapshot()
        before = after
    # The upgrade runs whenever the stairway or the models check needs it: said too.
    total = _summary(timings, len(order))
    result.checks.insert(_first_climb_index(result), CheckResult(
        "upgrade", True, f"from an empty database to head: {total}"))
    if stairs:
        tried = len(order) - start
        if not failed_stairs:
            skipped = f" ({start} older ones skipped)" if start else ""
            result.checks.append(CheckResult(
                "stairway", True, f"{tried} revision{'s' if tried != 1 else ''}{skipped}: "
                "each downgrade restored the schema its upgrade started from, and the "
                "upgrade ran again"))
    return True


def _summary(timings: list[t.Any], count: int) -> str:
    """``N revisions applied in S s (slowest: X, T s)``, a revision's time summed over
    the databases it ran on (a multidb env.py runs each on every bind)."""
    if not count:
        return "no revision to apply"
    per_revision: dict[str, float] = {}
    for step in timings:
        per_revision[step.revision] = per_revision.get(step.revision, 0.0) + step.seconds
    text = (f"{count} revision{'s' if count != 1 else ''} applied in "
            f"{sum(per_revision.values()):.2f} s")
    if len(per_revision) > 1:
        slowest = max(per_revision, key=lambda revision: per_revision[revision])
        text += f" (slowest: {slowest}, {per_revision[slowest]:.2f} s)"
    return text


def _heads_of(applied: list[t.Any]) -> list[str]:
    """The heads of the revisions applied so far (several where branches are)."""
    below: set[str] = set()
    for rev in applied:
        down = rev.down_revision
        below.update((down,) if isinstance(down, str) else tuple(down or ()))
    return [rev.revision for rev in applied if rev.revision not in below]


def _first_climb_index(result: TestResult) -> int:
    """Where the ``upgrade`` line goes: before the stairway's lines."""
    for index, check in enumerate(result.checks):
        if check.check in ("stairway", "upgrade"):
            return index
    return len(result.checks)


def _stair(config: t.Any, rev: t.Any, before: t.Any, scratch: Scratch) -> str | None:
    """Downgrade one step from ``rev``, compare with ``before``, upgrade again.
    Returns what went wrong, or ``None``."""
    # "<rev>@-1" downgrades this revision's branch only; "<rev>-1" means "down to its
    # parent" and so also downgrades a sibling branch already applied, whose failing
    # or untidy downgrade was then blamed on this revision. A merge keeps "-1": its
    # "@-1" is an ambiguous walk for Alembic.
    down = rev.down_revision
    merge = down is not None and not isinstance(down, str) and len(down) > 1
    target = f"{rev.revision}-1" if merge else f"{rev.revision}@-1"
    try:
        _step(config, "downgrade", target)
    except Exception as exc:  # noqa: BLE001 - reported
        return f"the downgrade failed: {_failure(exc)}"
    differences = _compare_all(before, scratch.snapshot())
    if differences:
        return "the downgrade left a trace: " + "; ".join(differences)
    try:
        _step(config, "upgrade", rev.revision)
    except Exception as exc:  # noqa: BLE001 - reported
        return f"the upgrade after the downgrade failed: {_failure(exc)}"
    # The schema after this second upgrade is not compared with the first one's: the
    # downgrade restored the schema before it, so the same upgrade gives the same
    # result, and a snapshot costs more than the upgrade itself (bench/bench_test.py).
    return None


def _compare_all(before: dict, after: dict) -> list[str]:
    """:func:`compare_snapshots` per database (the bind named when there are several)."""
    found = []
    for bind in before:
        where = f" (bind {bind!r})" if len(before) > 1 and bind else \
            " (default database)" if len(before) > 1 else ""
        found.extend(f"{line}{where}" for line in compare_snapshots(before[bind], after[bind]))
    return found


def _step(config: t.Any, command: str, target: str) -> list[t.Any]:
    """One ``upgrade``/``downgrade`` on the scratch databases; its revision timings.
    Alembic's INFO lines ("Running upgrade ...") are held back: env.py re-reads its
    logging config on every run, ``logging.disable`` survives that."""
    from .timing import timed_revisions

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        # What revision scripts print goes to stderr: stdout carries the report
        # (and with --json, nothing but the JSON).
        with timed_revisions(get_state().configure_args, quiet=True) as timings, \
                contextlib.redirect_stdout(sys.stderr):
            getattr(core._alembic(), command)(config, target)
    finally:
        logging.disable(previous)
    return [step for step in timings if step.upgrade == (command == "upgrade")]


def _failure(exc: BaseException) -> str:
    """One line for a failed step: the revision and function, the database's words."""
    if isinstance(exc, KeyboardInterrupt):
        raise exc
    found = failed_revision(exc)
    if found is not None:
        revision, function = found
        return (f"{function}() of {revision}{_revision_line(exc)}: "
                f"{core.redacted(first_line(exc))}")
    return core.error_message(exc)


def _revision_line(exc: BaseException) -> str:
    """`` line N (`source`)``: where in the revision script the failure began (an
    error without a message, Alembic's bare ``AssertionError`` for
    ``drop_constraint(None, ...)``, says nothing else)."""
    import linecache

    tb, where = exc.__traceback__, ""
    while tb is not None:
        frame = tb.tb_frame
        if "down_revision" in frame.f_globals and isinstance(frame.f_globals.get("revision"), str):
            source = linecache.getline(frame.f_code.co_filename, tb.tb_lineno).strip()
            where = f", line {tb.tb_lineno}" + (f" ({source})" if source else "")
        tb = tb.tb_next
    return where


def _models_check(config: t.Any) -> CheckResult:
    """``db check``'s comparison, on the scratch databases at head."""
    import warnings

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the review's findings: not this check's
            review = core._review(config, strict=False, ask=None)
            _context, diffs = core._autogenerate_diffs(config, review)
    except Exception as exc:  # noqa: BLE001 - reported
        return CheckResult("models", False, f"the comparison failed: {core.error_message(exc)}")
    finally:
        logging.disable(previous)
    if not diffs:
        return CheckResult("models", True, "the models match the schema at head")
    lines = [describe_difference(diff) for diff in diffs]
    return CheckResult(
        "models", False,
        f"the models differ from the schema at head in {len(lines)} place(s): "
        + "; ".join(lines),
        fix='db migrate -m "<message>", review the new revision, then db upgrade',
        details=lines,
    )


def _probe_env(config: t.Any, script: t.Any, scratch: Scratch) -> None:
    """Run env.py once without migrating (Alembic's ``dont_mutate``, as ``db current``)
    and make sure every database it connects to is a scratch one.

    :raises MigrateError: naming the database env.py connected to instead.
    """
    from alembic.runtime.environment import EnvironmentContext

    seen: list[t.Any] = []

    def collect(rev: t.Any, context: t.Any) -> list[t.Any]:
        seen.append(context.connection.engine.url)
        return []

    previous = logging.root.manager.disable
    logging.disable(logging.INFO)
    try:
        with EnvironmentContext(config, script, fn=collect, dont_mutate=True):
            script.run_env()
    finally:
        logging.disable(previous)
    for url in seen:
        if not scratch.holds(url):
            raise MigrateError(
                f"env.py connects to the {describe_database(url)}, not to the scratch "
                "database db test gave the application: it must take the engine from "
                "current_app.extensions['migrate'].db (as Flask-Migrate's templates do); "
                "nothing was run"
            )


# -- the schema, as the stairway compares it ----------------------------------------------


def snapshot(connection: t.Any, exclude: t.Iterable[str] = ("alembic_version",),
             cache: dict | None = None) -> dict:
    """What the stairway compares of a database's schema (default schema only):
    tables; columns with type, nullability and server default; primary key; indexes;
    unique and foreign-key constraints; PostgreSQL ENUM types.

    :param connection: a SQLAlchemy connection.
    :param exclude: table names to leave out (the version table).
    :param cache: kept between calls on one SQLite database: a table whose DDL text
        (``sqlite_master``) has not changed is not reflected again. SQLite has no
        query for all tables at once, and reflecting every table at every step made
        the stairway quadratic in the number of tables.
    :returns: a plain, comparable structure.
    """
    import sqlalchemy as sa

    inspector = sa.inspect(connection)
    skip = set(exclude)
    names = [name for name in inspector.get_table_names() if name not in skip]
    dialect = connection.dialect
    fingerprints: dict[str, t.Any] = {}
    if cache is not None and dialect.name == "sqlite":
        for table, kind, name, sql in connection.exec_driver_sql(
                "SELECT tbl_name, type, name, sql FROM sqlite_master ORDER BY name"):
            fingerprints.setdefault(table, []).append((kind, name, sql))
    known = {name: cache[name][1] for name in names
             if cache is not None and name in fingerprints and name in cache
             and cache[name][0] == fingerprints[name]}
    names_to_reflect = [name for name in names if name not in known]

    def type_of(column: dict) -> str:
        try:
            return str(column["type"].compile(dialect=dialect))
        except Exception:  # noqa: BLE001 - a type the dialect cannot render
            return repr(column["type"])

    reflected = _reflect(inspector, names_to_reflect)
    tables: dict[str, dict] = dict(known)
    for name in names_to_reflect:
        columns = {c["name"]: (type_of(c), bool(c.get("nullable")),
                               None if c.get("default") is None else str(c["default"]))
                   for c in reflected["columns"].get(name, ())}
        pk = tuple((reflected["pk"].get(name) or {}).get("constrained_columns") or ())
        indexes = sorted((i.get("name") or "", tuple(str(c) for c in i.get("column_names") or ()),
                          bool(i.get("unique"))) for i in reflected["indexes"].get(name, ()))
        uniques = sorted((u.get("name") or "", tuple(u.get("column_names") or ()))
                         for u in reflected["uniques"].get(name, ()))
        fks = sorted((f.get("name") or "", tuple(f.get("constrained_columns") or ()),
                      f.get("referred_table") or "", tuple(f.get("referred_columns") or ()))
                     for f in reflected["fks"].get(name, ()))
        tables[name] = {"columns": columns, "primary key": pk, "indexes": indexes,
                        "unique constraints": uniques, "foreign keys": fks}
        if name in fingerprints and cache is not None:
            cache[name] = (fingerprints[name], tables[name])
    enums = {}
    if hasattr(inspector, "get_enums"):  # PostgreSQL
        enums = {e["name"]: tuple(e["labels"]) for e in inspector.get_enums()}
    return {"tables": tables, "enums": enums}


def _reflect(inspector: t.Any, names: list[str]) -> dict[str, dict[str, t.Any]]:
    """Columns, primary keys, indexes, unique and foreign keys of ``names``: with
    SQLAlchemy 2's ``get_multi_*`` (one query per kind for all tables on PostgreSQL
    and MySQL, where asking table by table made the stairway quadratic), else table
    by table (SQLAlchemy 1.4)."""
    kinds = {"columns": "columns", "pk": "pk_constraint", "indexes": "indexes",
             "uniques": "unique_constraints", "fks": "foreign_keys"}
    found: dict[str, dict[str, t.Any]] = {}
    if not names:
        return {kind: {} for kind in kinds}
    wanted = set(names)
    for kind, method in kinds.items():
        multi = getattr(inspector, f"get_multi_{method}", None)
        if multi is not None:
            found[kind] = {table: value for (_schema, table), value
                           in multi(filter_names=names).items() if table in wanted}
        else:
            found[kind] = {name: getattr(inspector, f"get_{method}")(name) for name in names}
    return found


def compare_snapshots(before: dict, after: dict) -> list[str]:
    """What differs between two :func:`snapshot` results, one phrase each (``after``
    is the schema after the downgrade, ``before`` the one before the upgrade).

    :returns: an empty list when they are the same.
    """
    found: list[str] = []
    if before == after:
        return found
    old_tables, new_tables = before["tables"], after["tables"]
    for name in sorted(set(new_tables) - set(old_tables)):
        found.append(f"table {name} is still there")
    for name in sorted(set(old_tables) - set(new_tables)):
        found.append(f"table {name} is gone")
    for name in sorted(set(old_tables) & set(new_tables)):
        old, new = old_tables[name], new_tables[name]
        for column in sorted(set(new["columns"]) - set(old["columns"])):
            found.append(f"column {name}.{column} is still there")
        for column in sorted(set(old["columns"]) - set(new["columns"])):
            found.append(f"column {name}.{column} is gone")
        for column in sorted(set(old["columns"]) & set(new["columns"])):
            for what, was, now in zip(("type", "nullable", "default"),
                                      old["columns"][column], new["columns"][column]):
                if was != now:
                    found.append(f"column {name}.{column}: {what} {now!r} instead of {was!r}")
        for part in ("primary key", "indexes", "unique constraints", "foreign keys"):
            was, now = old[part], new[part]
            if was == now:
                continue
            if part == "primary key":
                found.append(f"primary key of {name}: {now!r} instead of {was!r}")
                continue
            added, removed = sorted(set(now) - set(was)), sorted(set(was) - set(now))
            for item in list(added):
                # The same columns under another name: said as a rename.
                twin = next((old_item for old_item in removed
                             if old_item[1:] == item[1:] and old_item[0] and item[0]), None)
                if twin is not None:
                    removed.remove(twin)
                    added.remove(item)
                    found.append(f"{_noun(part)} {_item(twin)} on {name} is now named "
                                 f"{item[0]!r}")
            for item in added:
                found.append(f"{_noun(part)} {_item(item)} on {name} is still there")
            for item in removed:
                found.append(f"{_noun(part)} {_item(item)} on {name} is gone")
    for name in sorted(set(after["enums"]) - set(before["enums"])):
        found.append(f"ENUM type {name} is still there")
    for name in sorted(set(before["enums"]) - set(after["enums"])):
        found.append(f"ENUM type {name} is gone")
    for name in sorted(set(before["enums"]) & set(after["enums"])):
        if before["enums"][name] != after["enums"][name]:
            found.append(f"ENUM type {name}: values {list(after['enums'][name])} instead "
                         f"of {list(before['enums'][name])}")
    return found


def _noun(part: str) -> str:
    return {"indexes": "index", "unique constraints": "unique constraint",
            "foreign keys": "foreign key"}[part]


def _item(item: tuple) -> str:
    name, columns = item[0], item[1]
    text = f"({', '.join(columns)})"
    if len(item) == 4:  # foreign key
        text += f" -> {item[2]}({', '.join(item[3])})"
    return f"{name!r} {text}" if name else text


# -- the scratch databases -----------------------------------------------------------------


class _ScratchDatabase:
    """One scratch database: where it is, and how to empty and remove it."""

    def __init__(self, bind: str, url: t.Any, temporary: bool, admin_url: t.Any = None,
                 folder: str | None = None) -> None:
        import sqlalchemy as sa

        self.bind, self.url, self.temporary = bind, url, temporary
        self.admin_url, self.folder = admin_url, folder
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    @property
    def described(self) -> str:
        return describe_database(self.url)

    def wipe(self) -> None:
        """Make it empty again."""
        self.engine.dispose()
        path = sqlite_file(self.url)
        if path is not None:
            if os.path.exists(path):
                os.remove(path)
        elif self.temporary:
            _drop_database(self.admin_url, self.url.database)
            _create_database(self.admin_url, self.url.database, self.bind, self.url)
        else:
            _empty(self.engine)

    def remove(self) -> None:
        """Drop a temporary database (remove its file); empty a given one."""
        self.engine.dispose()
        if sqlite_file(self.url) is not None:
            if self.temporary and self.folder:
                shutil.rmtree(self.folder, ignore_errors=True)
            elif os.path.exists(self.url.database):
                _empty(self.engine)
                self.engine.dispose()
        elif self.temporary:
            _drop_database(self.admin_url, self.url.database)
        else:
            _empty(self.engine)
            self.engine.dispose()


class Scratch:
    """The scratch databases of one run, one per database of the application, put in
    place of the configured ones for the duration of the ``with`` block (see the
    module's docstring); dropped on the way out, whatever happened (failure, Ctrl-C,
    SIGTERM).

    Use :meth:`for_application`.
    """

    def __init__(self) -> None:
        self.databases: dict[str, _ScratchDatabase] = {}
        self._caches: dict[str, dict] = {}

    @classmethod
    @contextlib.contextmanager
    def for_application(cls, urls: t.Iterable[str] | str | None = None) -> t.Iterator[Scratch]:
        """Create the scratch databases and point the application at them.

        :param urls: see :func:`test`'s ``url``.
        :yields: the :class:`Scratch`.
        :raises MigrateError: a refused or unknown ``url``, or a database that
            cannot be created.
        """
        state = get_state()
        engines = app_engines(current_app, state.db)
        given = _given_urls(urls, engines)
        scratch = cls()
        with _sigterm_raises():
            try:
                for bind, engine in engines.items():
                    scratch.databases[bind] = _make_scratch(bind, engine.url, given.get(bind))
                with _pointed_at(scratch, engines, state.db):
                    yield scratch
            finally:
                scratch._remove_all()

    def described(self) -> list[str]:
        """Each scratch database, named without credentials."""
        return [(f"bind {bind!r}: " if bind else "") + db.described
                + (" (temporary, removed afterwards)" if db.temporary
                   else " (given with --url, left empty)")
                for bind, db in self.databases.items()]

    def holds(self, url: t.Any) -> bool:
        """Whether ``url`` is one of the scratch databases."""
        return any(_same_database(url, db.url) for db in self.databases.values())

    def snapshot(self) -> dict[str, dict]:
        """:func:`snapshot` of every scratch database."""
        table = get_state().configure_args.get("version_table") or "alembic_version"
        found = {}
        for bind, db in self.databases.items():
            with db.engine.connect() as connection:
                found[bind] = snapshot(connection, exclude=(table,),
                                       cache=self._caches.setdefault(bind, {}))
        return found

    def reset(self) -> None:
        """Empty every scratch database."""
        self.release_application_engines()
        for db in self.databases.values():
            db.wipe()

    def release_application_engines(self) -> None:
        """Close the pooled connections the application's engines hold to the scratch
        databases (call it while the application points at them). Flask-SQLAlchemy 2
        builds an engine of its own, with a pool, from the replaced config: its
        connections outlived a scratch database dropped and created again (PostgreSQL
        13's DROP DATABASE ... WITH (FORCE) ends them, and the next upgrade failed with
        "server closed the connection unexpectedly"); PostgreSQL 12 would refuse the
        drop. Flask-SQLAlchemy 3 uses our own engines, without a pool."""
        for engine in app_engines(current_app, get_state().db).values():
            if self.holds(engine.url):
                engine.dispose()

    def _remove_all(self) -> None:
        # A second SIGTERM while dropping must not leave a database behind: it is
        # noted, and raised once everything is dropped.
        pending: list[int] = []
        previous = None
        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, lambda signum, frame: pending.append(signum))
        try:
            for db in self.databases.values():
                try:
                    db.remove()
                except Exception as exc:  # noqa: BLE001 - say so, go on with the others
                    _log.warning("could not remove the scratch %s: %s", db.described,
                                 core.redacted(first_line(exc)))
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
        if pending:
            raise Terminated(f"terminated by signal {pending[0]}")


def compare_databases_key(url: t.Any) -> tuple:
    """What identifies a database in a URL: backend, host, port and name (a SQLite
    file by its absolute path)."""
    path = sqlite_file(url)
    if path is not None:
        return ("sqlite", os.path.realpath(os.path.abspath(path)))
    backend = url.get_backend_name()
    default_port = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(backend)
    host = (url.host or "localhost").lower()
    if host in ("127.0.0.1", "::1"):
        host = "localhost"
    backend = "mysql" if backend == "mariadb" else backend
    return (backend, host, url.port or default_port, url.database)


def _same_database(a: t.Any, b: t.Any) -> bool:
    return compare_databases_key(a) == compare_databases_key(b)


def _given_urls(urls: t.Iterable[str] | str | None, engines: dict[str, t.Any]) -> dict:
    """``{bind: URL}`` from ``--url`` values, refusing a configured database."""
    import sqlalchemy as sa

    if urls is None:
        return {}
    if isinstance(urls, str):
        urls = [urls]
    given: dict[str, t.Any] = {}
    for text in urls:
        bind, sep, rest = text.partition("=")
        if sep and "://" not in bind:
            if bind not in engines:
                raise MigrateError(
                    f"--url {bind}=...: the application has no bind {bind!r} (it has: "
                    f"{', '.join(repr(b) for b in engines if b) or 'none'})")
            text = rest
        else:
            bind = ""
        try:
            url = sa.engine.make_url(text)
        except Exception:  # noqa: BLE001 - said in our words, without the text
            what = f"bind {bind!r}" if bind else "the default database"
            raise MigrateError(f"--url for {what} is not a database URL") from None
        for other, engine in engines.items():
            if _same_database(url, engine.url):
                raise MigrateError(
                    f"--url names the configured {describe_database(engine.url)}"
                    f"{' (bind ' + repr(other) + ')' if other else ''}: db test needs a "
                    "scratch database, never the configured one")
        given[bind] = url
    return given


def _make_scratch(bind: str, configured: t.Any, given: t.Any) -> _ScratchDatabase:
    import sqlalchemy as sa

    if given is not None:
        db = _ScratchDatabase(bind, given, temporary=False)
        try:
            with db.engine.connect() as connection:
                tables = sa.inspect(connection).get_table_names()
        except sa.exc.DBAPIError as exc:
            raise MigrateError(f"cannot connect to the {db.described} given with --url: "
                               f"{core.redacted(first_line(exc))}") from None
        if tables:
            raise MigrateError(
                f"the {db.described} given with --url has tables ({', '.join(sorted(tables)[:5])}"
                f"{'...' if len(tables) > 5 else ''}): db test needs an empty database")
        return db
    suffix = secrets.token_hex(3)
    if configured.get_backend_name() == "sqlite":
        folder = tempfile.mkdtemp(prefix="fmc-test-")
        stem = os.path.splitext(os.path.basename(configured.database or ""))[0] or "memory"
        path = os.path.join(folder, f"{stem}_test_{suffix}.db")
        return _ScratchDatabase(bind, configured.set(database=path), True, folder=folder)
    name = f"{configured.database or 'db'}"[:40] + f"_fmctest_{suffix}"
    admin = _admin_url(configured)
    _create_database(admin, name, bind, configured)
    return _ScratchDatabase(bind, configured.set(database=name), True, admin_url=admin)


def _admin_url(url: t.Any) -> t.Any:
    """Where to send CREATE/DROP DATABASE: PostgreSQL's ``postgres`` maintenance
    database, no database at all for MySQL/MariaDB."""
    if url.get_backend_name() == "postgresql":
        return url.set(database="postgres")
    # URL.set(database=None) means "unchanged"; URL is a NamedTuple.
    return url._replace(database=None)


def _admin(url: t.Any) -> t.Any:
    import sqlalchemy as sa

    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


def _create_database(admin_url: t.Any, name: str, bind: str, configured: t.Any) -> None:
    import sqlalchemy as sa

    engine = _admin(admin_url)
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
            else:
                charset = connection.execute(sa.text(
                    "SELECT default_character_set_name, default_collation_name FROM "
                    "information_schema.schemata WHERE schema_name = :name"),
                    {"name": configured.database}).first()
                extra = f" CHARACTER SET {charset[0]} COLLATE {charset[1]}" if charset else ""
                connection.execute(sa.text(f"CREATE DATABASE {quoted}{extra}"))
    except sa.exc.DBAPIError as exc:
        where = describe_database(configured).split(" on ", 1)
        server = f"{configured.get_backend_name()} server {where[1]}" if len(where) > 1 \
            else f"{configured.get_backend_name()} server"
        what = "the default database" if not bind else f"bind {bind!r}"
        option = "--url URL" if not bind else f"--url {bind}=URL"
        raise MigrateError(
            f"cannot create a scratch database on the {server} as user "
            f"{configured.username or '(default)'!s} ({core.redacted(first_line(exc))}): "
            f"grant that user CREATEDB (PostgreSQL) or CREATE (MySQL), or pass {option} "
            f"with an empty database for {what} that db test may fill and empty") from None
    finally:
        engine.dispose()


def _drop_database(admin_url: t.Any, name: str) -> None:
    import sqlalchemy as sa

    engine = _admin(admin_url)
    quoted = engine.dialect.identifier_preparer.quote(name)
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                try:
                    connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
                except sa.exc.ProgrammingError:  # PostgreSQL < 13: no FORCE
                    connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
            else:
                connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted}"))
    finally:
        engine.dispose()


def _empty(engine: t.Any) -> None:
    """Drop every table (and PostgreSQL ENUM type) of a database given with --url,
    which was empty when the run began."""
    import sqlalchemy as sa

    metadata = sa.MetaData()
    with engine.begin() as connection:
        metadata.reflect(connection)
        metadata.drop_all(connection)
        inspector = sa.inspect(connection)
        for enum in getattr(inspector, "get_enums", lambda: [])():
            connection.execute(sa.text(
                f"DROP TYPE {connection.dialect.identifier_preparer.quote(enum['name'])}"))


@contextlib.contextmanager
def _pointed_at(scratch: Scratch, engines: dict[str, t.Any], db: t.Any) -> t.Iterator[None]:
    """Point the application at the scratch databases for the block.

    Flask-SQLAlchemy 3: the entries of ``db.engines`` (the mapping every env.py
    generation reaches, through ``db.engine``, ``db.get_engine()`` or
    ``db.engines``) are replaced; 2.x builds its engines from the config, which is
    replaced too (and read as such by Flask-Migrate 1.x-2.4 env.py files). The
    configured engines refuse connections meanwhile.
    """
    import sqlalchemy as sa

    from .legacy import unwrap

    app_db = unwrap(db)
    config = current_app.config
    saved_config = {key: config[key] for key in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS")
                    if key in config}
    mapping = getattr(app_db, "engines", None)
    saved_engines = dict(mapping) if mapping is not None else None

    def refusal(url: t.Any) -> MigrateError:
        return MigrateError(
            f"db test refused a connection to the configured {describe_database(url)}: "
            "env.py or a revision script connects to it by itself, not through "
            "current_app.extensions['migrate'].db (as Flask-Migrate's templates do); "
            "nothing was run on it")

    def refuse(connection: t.Any, *args: t.Any) -> None:
        raise refusal(connection.engine.url)

    # Any engine, also one env.py builds from its own URL: refused before the driver
    # connects (a SQLite file would be created by connecting), by the arguments the
    # dialect would pass the driver for a configured database.
    forbidden = _connect_arguments(engines)

    def refuse_driver_connect(dialect: t.Any, record: t.Any, cargs: t.Any,
                              cparams: t.Any) -> None:
        for (name, args, params), url in forbidden:
            if name == dialect.name and _args_match(name, args, params, cargs, cparams):
                raise refusal(url)

    def url_text(url: t.Any) -> str:
        return url.render_as_string(hide_password=False)

    try:
        scratch_uri = url_text(scratch.databases[""].url)
        config["SQLALCHEMY_DATABASE_URI"] = scratch_uri
        binds = {}
        for key, value in (saved_config.get("SQLALCHEMY_BINDS") or {}).items():
            url = url_text(scratch.databases[key].url) if key in scratch.databases else value
            binds[key] = dict(value, url=url) if isinstance(value, dict) else url
        if "SQLALCHEMY_BINDS" in saved_config:
            config["SQLALCHEMY_BINDS"] = binds
        if mapping is not None:
            for key in list(mapping):
                bind = key or ""
                if bind in scratch.databases:
                    mapping[key] = scratch.databases[bind].engine
        for engine in set(engines.values()):
            sa.event.listen(engine, "engine_connect", refuse)
        sa.event.listen(sa.engine.Engine, "do_connect", refuse_driver_connect)
        yield
    finally:
        try:
            scratch.release_application_engines()  # before the scratch databases go
        except Exception as exc:  # noqa: BLE001 - the drop says more, if it fails
            _log.debug("could not release the engines: %s", exc)
        if sa.event.contains(sa.engine.Engine, "do_connect", refuse_driver_connect):
            sa.event.remove(sa.engine.Engine, "do_connect", refuse_driver_connect)
        for engine in set(engines.values()):
            if sa.event.contains(engine, "engine_connect", refuse):
                sa.event.remove(engine, "engine_connect", refuse)
        if mapping is not None and saved_engines is not None:
            mapping.update(saved_engines)
        for key in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS"):
            if key in saved_config:
                config[key] = saved_config[key]


def _connect_arguments(engines: dict[str, t.Any]) -> list[tuple[tuple, t.Any]]:
    """``((dialect name, driver args, driver keyword args), URL)`` of every configured
    database: its engine's URL and its URL as written in the config (a relative
    SQLite path, which an env.py of its own would use)."""
    import sqlalchemy as sa

    found = []
    urls = [engine.url for engine in engines.values()]
    for _key, value in configured_urls(current_app.config):
        try:
            urls.append(sa.engine.make_url(value))
        except Exception:  # noqa: BLE001 - not a URL: the engine's is there anyway
            continue
    dialects = {engine.dialect.name: engine.dialect for engine in engines.values()}
    for url in urls:
        dialect = next((d for d in dialects.values() if d.name == url.get_backend_name()),
                       None)
        if dialect is None:
            continue
        try:
            args, params = dialect.create_connect_args(url)
        except Exception:  # noqa: BLE001 - cannot tell: the engine listener remains
            continue
        found.append(((dialect.name, tuple(args), dict(params)), url))
    return found


def _args_match(name: str, args: tuple, params: dict, cargs: t.Any, cparams: t.Any) -> bool:
    """Whether a driver connection (``cargs``, ``cparams``) goes to the database a
    configured URL's arguments (``args``, ``params``) name."""
    if name == "sqlite":
        def path(a: t.Any) -> t.Any:
            first = a[0] if a else ""
            return os.path.realpath(first) if first and first != ":memory:" else first

        return bool(args) and bool(cargs) and path(tuple(cargs)) == path(args)
    # Plain values only: a driver's per-dialect objects (psycopg's adapters "context")
    # differ between two engines of one URL.
    wanted = {k: v for k, v in params.items() if k not in ("password", "passwd")
              and isinstance(v, (str, int, float, type(None)))}
    return tuple(cargs) == args and all(cparams.get(k) == v for k, v in wanted.items())


def _sigterm_raises() -> t.ContextManager[None]:
    from .lock import _sigterm_raises as raises  # one SIGTERM handler, the lock's

    return raises()


# -- for a project's own test suite ----------------------------------------------------------


def check_migrations(app: t.Any, **kwargs: t.Any) -> TestResult:
    """Run :func:`test` for ``app`` inside its application context and fail with one
    line per failed check: the pytest recipe of README "Testing your migrations".

    :param app: the :class:`~flask.Flask` application (configured for tests: the
        scratch databases are made on the server it names).
    :param kwargs: passed to :func:`test` (``checks``, ``stairway_from``, ``url``...).
    :returns: the :class:`TestResult` when every check passed.
    :raises AssertionError: listing every failed check.
    """
    with app.app_context():
        result = test(**kwargs)
    if result.failures:
        raise AssertionError("db test failed:\n" + "\n".join(
            f"  {check.check}: {check.message}" for check in result.failures))
    return result
