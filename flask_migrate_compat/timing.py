"""Per-revision timing for ``upgrade`` and ``downgrade``.

A long upgrade used to print one "Running upgrade a -> b" line per revision and nothing
about where the time went. :func:`timed_revisions` adds Alembic's ``on_version_apply``
hook to the keyword arguments that env.py passes to ``context.configure`` (both
templates of this package, and every Flask-Migrate env.py since 2.0 in online mode,
pass ``configure_args`` on), for the duration of one command. Each revision then
reports, as it finishes, how long it took; the command ends with a summary. An env.py
that does not pass ``configure_args`` still works, without the timing lines.

The lines go to standard error, so the SQL of offline (``--sql``) runs on standard
output stays clean (offline runs are not timed at all).
"""
from __future__ import annotations

import contextlib
import sys
import time
import typing as t


class RevisionTiming:
    """One revision step that finished.

    A plain class: every upgrade imports this module, and creating a dataclass costs
    ~5 million instructions (~1.5 ms), a NamedTuple ~1.4 million
    (bench/bench_upgrade.py keeps ``db upgrade`` no slower than Flask-Migrate's).

    :ivar revision: the revision id that was upgraded to, or downgraded from.
    :ivar message: the revision's message (its docstring's first line), or ``None``.
    :ivar seconds: how long the step took (its operations and the version table
        update; not the final commit).
    :ivar upgrade: ``True`` for an upgrade step, ``False`` for a downgrade step.
    :ivar bind: the database (multidb env.py: ``engine_name``), or ``None``.
    """

    __slots__ = ("revision", "message", "seconds", "upgrade", "bind")

    def __init__(self, revision: str, message: str | None, seconds: float, upgrade: bool,
                 bind: str | None = None) -> None:
        self.revision = revision
        self.message = message
        self.seconds = seconds
        self.upgrade = upgrade
        self.bind = bind

    def __repr__(self) -> str:
        return f"<RevisionTiming {self.line()}>"

    def line(self) -> str:
        """``Upgrade ab12cd ('add users') done in 0.31 s``."""
        what = f"{self.revision} ({self.message!r})" if self.message else self.revision
        where = ""
        if self.bind is not None:
            where = f" on bind {self.bind!r}" if self.bind else " on the default database"
        verb = "Upgrade" if self.upgrade else "Downgrade"
        return f"{verb} {what}{where} done in {self.seconds:.2f} s"


def summary(timings: t.Sequence[RevisionTiming]) -> str | None:
    """``3 revisions applied in 4.20 s (slowest: ab12cd, 3.90 s)``, or ``None`` when no
    revision ran.

    :param timings: the steps of one command, all upgrades or all downgrades.
    """
    if not timings:
        return None
    total = sum(step.seconds for step in timings)
    verb = "applied" if timings[0].upgrade else "reverted"
    count = f"{len(timings)} revision{'s' if len(timings) != 1 else ''}"
    text = f"{count} {verb} in {total:.2f} s"
    if len(timings) > 1:
        slowest = max(timings, key=lambda step: step.seconds)
        text += f" (slowest: {slowest.revision}, {slowest.seconds:.2f} s)"
    return text


@contextlib.contextmanager
def timed_revisions(configure_args: dict[str, t.Any], out: t.TextIO | None = None,
                    quiet: bool = False) -> t.Iterator[list[RevisionTiming]]:
    """Time every revision step that env.py runs inside the block.

    ``configure_args`` (the ``Migrate`` state's, which env.py passes to
    ``context.configure``) gets an ``on_version_apply`` callback for the duration of
    the block; one that the application configured runs first, as before. Each step
    prints :meth:`RevisionTiming.line` to ``out`` as it finishes; the caller prints
    :func:`summary` once the command succeeded (before that, a failure may still roll
    the steps back).

    The start of a step is the end of the previous one, and for the first step the
    moment ``MigrationContext.run_migrations`` begins: Alembic (1.20) has no hook
    before a step, so that method is wrapped for the duration of the block and
    restored afterwards.

    :param configure_args: the dict env.py reads; restored on the way out.
    :param out: where the lines go; default ``sys.stderr``.
    :param quiet: record the timings without printing them.
    :yields: the list the steps are appended to.
    """
    from alembic.runtime.migration import MigrationContext

    timings: list[RevisionTiming] = []
    started: dict[int, float] = {}

    def on_version_apply(ctx: t.Any, step: t.Any, heads: t.Any, run_args: t.Any) -> None:
        now = time.perf_counter()
        begun = started.get(id(ctx), now)
        started[id(ctx)] = now
        if step.is_stamp:
            return
        script = step.up_revision
        message = (script.doc or "").strip().splitlines()[0] if script and script.doc else None
        timing = RevisionTiming(
            revision=step.up_revision_id, message=message, seconds=now - begun,
            upgrade=step.is_upgrade, bind=run_args.get("engine_name"),
        )
        timings.append(timing)
        if not quiet:
            stream = out if out is not None else sys.stderr
            stream.write(timing.line() + "\n")
            stream.flush()

    original = MigrationContext.__dict__["run_migrations"]

    def run_migrations(self: t.Any, **kw: t.Any) -> t.Any:
        started[id(self)] = time.perf_counter()
        return original(self, **kw)

    had_hook = "on_version_apply" in configure_args
    user_hook = configure_args.get("on_version_apply")
    if user_hook is None:
        hooks: tuple[t.Any, ...] = ()
    elif callable(user_hook):
        hooks = (user_hook,)
    else:
        hooks = tuple(user_hook)
    configure_args["on_version_apply"] = (*hooks, on_version_apply)
    MigrationContext.run_migrations = run_migrations
    try:
        yield timings
    finally:
        MigrationContext.run_migrations = original
        if had_hook:
            configure_args["on_version_apply"] = user_hook
        else:
            del configure_args["on_version_apply"]
