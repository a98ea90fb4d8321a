#!/usr/bin/env python
"""Instruction counts and wall-clock medians: ours against Flask-Migrate 4.1, side by side.

For chains of N = 50, 200 and 1000 revisions (the same files, the same app, both at
head on one SQLite database each), both sides run as a deployed application does:
``PYTHONDONTWRITEBYTECODE`` is dropped from their environment (``project_env``), a
first ``db upgrade`` per side writes the bytecode of app.py, env.py and every revision
file (and our revision-graph cache), which the script checks before measuring. Then
every command below runs once more to warm the caches, then once under ``valgrind
--tool=cachegrind`` (``PYTHONHASHSEED=0``), which counts the instructions the
command's process executes, and ``--repeat`` times for the wall clock:

==============================  ======================================
ours                            Flask-Migrate 4.1
==============================  ======================================
``flask db upgrade`` at head    ``flask db upgrade`` at head
``flask db current``            ``flask db current``
``flask db --help``             ``flask db --help``
``flask db status``             ``flask db current``
==============================  ======================================

Instruction counts are the figure to judge by: they do not move with the load of a
shared machine (within ~0.1 %), wall-clock times do. Printed: both counts and
their ratio (ours / Flask-Migrate's), the wall-clock medians and their ratio, and
whether each ratio meets its target.

Usage (valgrind must be installed; the venvs are those of ``bench_upgrade.py``)::

    python bench/bench_instructions.py                 # N = 50, 200, 1000
    python bench/bench_instructions.py --n 50 --repeat 5
    python bench/bench_instructions.py --no-cache      # ours with the cache off
"""
from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from importlib.util import cache_from_source
from pathlib import Path

from bench_upgrade import (FM41_VENV, HERE, OURS_VENV, ensure_fm41, ensure_ours, log,
                           project_env, setup_projects)

#: (label, our arguments, Flask-Migrate 4.1's arguments)
COMMANDS = [
    ("upgrade at head", ["db", "upgrade"], ["db", "upgrade"]),
    ("current", ["db", "current"], ["db", "current"]),
    ("db --help", ["db", "--help"], ["db", "--help"]),
    ("status (FM: current)", ["db", "status"], ["db", "current"]),
]
#: (N, label) -> the target ratio ours / Flask-Migrate 4.1 (issue 19).
TARGETS = {
    (50, "upgrade at head"): 0.97, (50, "current"): 0.97, (50, "db --help"): 0.80,
    (1000, "upgrade at head"): 0.70, (1000, "current"): 0.60,
    (1000, "status (FM: current)"): 0.60,
}


def instructions(argv: list[str], cwd: Path, env: dict) -> int:
    """The instructions ``argv`` executes (cachegrind's ``I refs``), children aside."""
    proc = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         *argv], cwd=cwd, env={**env, "PYTHONHASHSEED": "0"}, capture_output=True, text=True)
    found = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
    if proc.returncode not in (0, 1) or found is None:
        raise SystemExit(f"{' '.join(argv)} failed under valgrind:\n{proc.stderr[-2000:]}")
    return int(found.group(1).replace(",", ""))


def check_warm(path: Path, n: int, ours: bool) -> None:
    """Fail unless the project at ``path`` holds the bytecode of app.py, env.py and its
    ``n`` revision files, and (``ours``) our revision-graph cache: what a deployed
    application has after its first command."""
    migrations = path / "migrations"
    wanted = [path / "app.py", migrations / "env.py",
              *sorted((migrations / "versions").glob("r*.py"))]
    missing = [str(source) for source in wanted if not Path(cache_from_source(
        str(source))).exists()]
    if len(wanted) != n + 2 or missing:
        raise SystemExit(f"{path}: no bytecode for {len(missing)} of {len(wanted)} files "
                         f"(first: {missing[:1]}); is PYTHONDONTWRITEBYTECODE still set?")
    graph = list((migrations / "__pycache__").glob("flask_migrate_compat_revisions.*.graph.pyc"))
    if ours and not graph:
        raise SystemExit(f"{path}: our revision-graph cache was not written")


def wall_ms(argv: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode not in (0, 1):  # db status exits 1 with revisions pending
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.decode()[-2000:]}")
    return elapsed


def run(sizes: list[int], repeat: int, no_cache: bool, reinstall: bool = True
        ) -> list[tuple]:
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    if reinstall:
        fm41 = str(ensure_fm41())
        ours = str(ensure_ours())
    else:  # several sizes measured at once by separate processes: install once
        fm41, ours = (str(venv / "bin" / "python") for venv in (FM41_VENV, OURS_VENV))
    rows = []
    for n in sizes:
        log(f"N={n}: setting up")
        dirs = setup_projects(work, n, ours, Path(fm41))
        envs = {}
        for name in ("ours", "fm41"):
            envs[name] = project_env(dirs[name], f"sqlite:///{dirs[name] / 'bench.db'}",
                                     name == "fm41")
        if no_cache:
            envs["ours"]["FLASK_MIGRATE_COMPAT_NO_CACHE"] = "1"
        for name, python in (("ours", ours), ("fm41", fm41)):
            # The first run: executes every revision file, so writes their bytecode
            # (and our graph cache, unless --no-cache).
            subprocess.run([python, "-m", "flask", "db", "upgrade"], cwd=dirs[name],
                           env=envs[name], check=True, capture_output=True)
            check_warm(dirs[name], n, name == "ours" and not no_cache)
        for label, our_args, fm_args in COMMANDS:
            ours_argv = [ours, "-m", "flask", *our_args]
            fm_argv = [fm41, "-m", "flask", *fm_args]
            for argv, name in ((ours_argv, "ours"), (fm_argv, "fm41")):
                wall_ms(argv, dirs[name], envs[name])  # warm: bytecode, graph cache
            counts = (instructions(ours_argv, dirs["ours"], envs["ours"]),
                      instructions(fm_argv, dirs["fm41"], envs["fm41"]))
            walls: tuple[list[float], list[float]] = ([], [])
            for _ in range(repeat):  # interleaved: both under the same load
                walls[0].append(wall_ms(ours_argv, dirs["ours"], envs["ours"]))
                walls[1].append(wall_ms(fm_argv, dirs["fm41"], envs["fm41"]))
            row = (n, label, *counts, statistics.median(walls[0]),
                   statistics.median(walls[1]))
            rows.append(row)
            report(row)
    return rows


def report(row: tuple) -> None:
    n, label, ours, fm, ours_ms, fm_ms = row
    ratio = ours / fm
    target = TARGETS.get((n, label))
    verdict = "" if target is None else f" (target <= {target:.2f}: " \
        f"{'ok' if ratio <= target else 'MISSED'})"
    print(f"N={n:<5d} {label:22s} instructions {ours / 1e6:8.1f} M / {fm / 1e6:8.1f} M "
          f"= {ratio:5.3f}{verdict}   wall {ours_ms:7.1f} / {fm_ms:7.1f} ms "
          f"= {ours_ms / fm_ms:5.2f}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append",
                        help="chain length (repeatable; default 50, 200, 1000)")
    parser.add_argument("--repeat", type=int, default=7,
                        help="wall-clock repetitions per command (default 7)")
    parser.add_argument("--no-cache", action="store_true",
                        help="ours with FLASK_MIGRATE_COMPAT_NO_CACHE=1")
    parser.add_argument("--no-reinstall", action="store_true",
                        help="use both venvs as they are (to run sizes in parallel "
                        "processes once one run installed them)")
    args = parser.parse_args(argv)
    rows = run(args.n or [50, 200, 1000], args.repeat, args.no_cache,
               not args.no_reinstall)
    print("\nours / Flask-Migrate 4.1 (instructions; wall clock is indicative only on a "
          "shared machine)")
    for row in rows:
        report(row)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
