#!/usr/bin/env python
"""Benchmark ``db test``: what the stairway costs per revision, against a plain
``db upgrade``.

On a chain of N real revisions (bench_upgrade.py's: each creates a table with a server
default and an index, and its downgrade drops them), times, interleaved in every
repetition so that they compare under the same machine load:

* ``flask db upgrade`` from an empty database (one Alembic command for the chain);
* ``flask db test --only upgrade``: the same upgrade, one revision per command, on a
  scratch database created and dropped by the command;
* ``flask db test --only upgrade --only stairway``: each revision upgraded, downgraded
  one step with the schema compared before and after, and upgraded again.

Printed: the median wall-clock time of each, and per revision, ``(test - upgrade) / N``
(the stairway's price for one revision). The first repetition warms the caches and is
not counted. Runs in the current environment (this working copy installed).

Usage::

    python bench/bench_test.py                   # N = 200, sqlite and postgresql, 3 repetitions
    python bench/bench_test.py --n 50 --repeat 2 --databases sqlite

PostgreSQL: ``FMC_BENCH_POSTGRES_URL`` as for bench_upgrade.py.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_upgrade import APP, REVISION, Database  # noqa: E402  (same chain, same databases)


def write_project(work: Path, n: int) -> None:
    (work / "app.py").write_text(APP)
    versions = work / "migrations" / "versions"
    versions.mkdir(parents=True)
    env = dict(os.environ, DATABASE_URL="sqlite://", FLASK_APP="app", PYTHONPATH=str(work))
    init = work / "init"
    init.mkdir()
    (init / "app.py").write_text(APP)
    subprocess.run([sys.executable, "-m", "flask", "db", "init"], cwd=init, env=env,
                   check=True, capture_output=True)
    for name in ("env.py", "alembic.ini", "script.py.mako"):
        (work / "migrations" / name).write_text((init / "migrations" / name).read_text())
    for i in range(n):
        down = "None" if i == 0 else f'"r{i - 1:04d}"'
        (versions / f"r{i:04d}.py").write_text(REVISION.format(i=i, down=down))


def run(work: Path, url: str, *args: str) -> float:
    env = dict(os.environ, DATABASE_URL=url, FLASK_APP="app", PYTHONPATH=str(work))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "flask", "db", *args, "-q"], cwd=work,
                          env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"db {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--databases", default="sqlite,postgresql")
    options = parser.parse_args()
    contenders = {
        "db upgrade": ("upgrade",),
        "db test --only upgrade": ("test", "--only", "upgrade"),
        "db test (upgrade + stairway)": ("test", "--only", "upgrade", "--only", "stairway"),
    }
    for kind in options.databases.split(","):
        with tempfile.TemporaryDirectory(prefix="fmc-bench-test-") as folder:
            work = Path(folder)
            write_project(work, options.n)
            database = Database(kind, work)
            times: dict[str, list[float]] = {name: [] for name in contenders}
            for repetition in range(options.repeat + 1):
                for name, args in contenders.items():
                    database.empty()
                    elapsed = run(work, database.url, *args)
                    if repetition:  # the first one warms the caches
                        times[name].append(elapsed)
            if kind != "sqlite":
                database._admin.connect().exec_driver_sql(f"DROP DATABASE {database.name}")
            print(f"\n{kind}, N = {options.n}, {options.repeat} repetitions (median wall s)")
            medians = {name: statistics.median(values) for name, values in times.items()}
            for name, value in medians.items():
                print(f"  {name:32s} {value:8.2f} s  ({value / options.n * 1000:6.1f} ms/revision)")
            base = medians["db upgrade"]
            for name in list(contenders)[1:]:
                extra = (medians[name] - base) / options.n * 1000
                print(f"  {name} costs {medians[name] / base:5.1f}x db upgrade, "
                      f"+{extra:.1f} ms per revision")


if __name__ == "__main__":
    main()
