#!/usr/bin/env python
"""Benchmark ``db status`` against ``db current`` (the target: status costs no more).

Both run at head on the same project (``flask db init`` with the package's own env.py,
N revisions from ``bench_upgrade.py``), interleaved so that each repetition compares
them under the same machine load; the first repetition warms the caches and is not
counted. Printed per database kind and N: median wall-clock and CPU milliseconds, and
the paired CPU ratio status/current (the median over repetitions of the two measured
back to back).

It runs with the interpreter that runs it (``pip install -e ".[test]"`` first)::

    python bench/bench_status.py                       # N = 50, 200; sqlite, postgresql
    python bench/bench_status.py --n 200 --repeat 9 --databases sqlite

PostgreSQL comes from ``FMC_BENCH_POSTGRES_URL``, as for ``bench_upgrade.py``.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys

from bench_upgrade import APP, HERE, Database, log, median, project_env, timed, write_revisions

COMMANDS = ("current", "status")


def measure(kind: str, n: int, repeat: int) -> dict[str, list[tuple[float, float]]]:
    path = HERE / ".work" / f"status-{n}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    (path / "app.py").write_text(APP)
    database = Database(kind, HERE / ".work")
    try:
        env = project_env(path, database.url)
        subprocess.run([sys.executable, "-m", "flask", "db", "init"], cwd=path, env=env,
                       check=True, capture_output=True)
        write_revisions(path / "migrations" / "versions", n)
        timed([sys.executable, "-m", "flask", "db", "upgrade", "-q"], path, env)
        samples: dict[str, list[tuple[float, float]]] = {name: [] for name in COMMANDS}
        for rep in range(repeat + 1):
            for name in COMMANDS:
                result = timed([sys.executable, "-m", "flask", "db", name], path, env)
                if rep:  # the first repetition warms the caches
                    samples[name].append(result)
        return samples
    finally:
        database.drop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    for kind in args.databases.split(","):
        for n in args.n:
            log(f"{kind}, N={n}")
            samples = measure(kind, n, args.repeat)
            for name in COMMANDS:
                wall = median([w for w, _ in samples[name]])
                cpu = median([c for _, c in samples[name]])
                print(f"  db {name:8} wall {wall:7.1f} ms   cpu {cpu:7.1f} ms")
            ratio = median([s[1] / c[1] for s, c in zip(samples["status"], samples["current"])])
            print(f"  paired cpu ratio status/current: {ratio:.2f} (target <= 1.00)")


if __name__ == "__main__":
    main()
