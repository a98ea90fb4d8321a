#!/usr/bin/env python
"""Benchmark ``db upgrade``: flask-migrate-compat against raw Alembic and Flask-Migrate 4.1.

For each database kind (SQLite, PostgreSQL) and chain length N (50, 200, 1000 real
revisions, each creating a table with an index), times in one run, interleaved so that
every repetition compares the contenders under the same machine load:

* ``python manage.py db upgrade`` and ``python -m flask db upgrade`` (ours);
* ``alembic upgrade head`` on the same revision files with a plain Alembic env.py;
* ``python -m flask db upgrade`` with Flask-Migrate 4.1 (installed by this script in
  ``bench/.venv-fm41`` with the same Flask/SQLAlchemy/Alembic versions);
* ``python -c 'import app'`` (the cost of importing the application);
* ``db upgrade`` at head with and without ``--no-lock`` (the lock's cost), plus the
  lock's own acquire+release time measured in-process.

Each contender runs "from empty" (fresh database) and "at head" (nothing to do).
Printed: medians (ms) and paired ratios (the median over repetitions of
ours/other measured back to back). Targets: ours/Flask-Migrate 4.1 <= 1.00; ours minus
raw Alembic <= the cost of importing the app; the lock < 10 ms.

Usage::

    python bench/bench_upgrade.py            # N = 50, 200, 1000; sqlite, postgresql
    python bench/bench_upgrade.py --quick    # N = 50 only, 3 repetitions: smoke check
    python bench/bench_upgrade.py --n 200 --repeat 7 --databases sqlite

PostgreSQL: ``FMC_BENCH_POSTGRES_URL`` (default
``postgresql+psycopg://postgres@127.0.0.1:5432/test``, an administrative database in
which the script creates and drops its own).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FM41_VENV = HERE / ".venv-fm41"
OURS_VENV = HERE / ".venv-ours"
# Both venvs get exactly the same third-party packages. Pygments matters: Mako (which
# Alembic imports) loads its Pygments plugin, ~20 ms, whenever Pygments is installed.
COMMON_REQUIREMENTS = [
    "Flask==3.1.3", "Flask-SQLAlchemy==3.1.1", "SQLAlchemy==2.1.9", "alembic==1.20.1",
    "Mako==1.4.3", "psycopg[binary]==3.3.9", "Pygments==2.21.0",
]
FM41_REQUIREMENTS = ["flask-migrate==4.1.0", *COMMON_REQUIREMENTS]
OURS_REQUIREMENTS = ["Flask-Script==2.0.6", "wheel", *COMMON_REQUIREMENTS]
# Dropped from the commands' environment: with PYTHONDONTWRITEBYTECODE set (a shell
# or CI often sets it) no run writes the bytecode of app.py, env.py and the revision
# files, and every run compiles them from source again, which a deployed application
# does not do. Flask-Migrate executes every revision file at every command, ours at
# head reads the graph cache, so that cost fell on one side only and flattered our
# ratios (FM 4.1's current at N=50: 2186.8 M instructions without bytecode, 2142.6 M
# with). PYTHONPYCACHEPREFIX would move the bytecode out of the project folders.
NO_BYTECODE_ENV = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
PG_ADMIN_URL = os.environ.get(
    "FMC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

APP = '''\
import os
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
if os.environ.get("BENCH_FM41"):
    from flask_migrate import Migrate
else:
    from flask_migrate_compat import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Thing(db.Model):
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50))
'''

MANAGE = '''\
from flask_script import Manager
from flask_migrate_compat import MigrateCommand
from app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
'''

REVISION = '''\
import sqlalchemy as sa
from alembic import op

revision = "r{i:04d}"
down_revision = {down}
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "t{i:04d}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("n", sa.Integer, server_default="0"),
    )
    op.create_index("ix_t{i:04d}_name", "t{i:04d}", ["name"])


def downgrade():
    op.drop_index("ix_t{i:04d}_name", table_name="t{i:04d}")
    op.drop_table("t{i:04d}")
'''

ALEMBIC_ENV = '''\
from alembic import context
from sqlalchemy import create_engine, pool

url = context.config.get_main_option("sqlalchemy.url")
engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
'''


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def ensure_venv(venv: Path, requirements: list[str], probe: str) -> Path:
    """A venv with ``requirements`` installed (created on first use)."""
    python = venv / "bin" / "python"
    if not python.exists():
        log(f"creating {venv} ...")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if subprocess.run([str(python), "-c", probe], capture_output=True).returncode != 0:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements],
                       check=True)
    return python


def ensure_fm41() -> Path:
    return ensure_venv(FM41_VENV, FM41_REQUIREMENTS, "import flask_migrate, pygments")


def ensure_ours() -> Path:
    """A venv with this working copy installed as users get it (a regular, not an
    editable, install: the editable finder costs ~8 ms at every interpreter start)."""
    python = ensure_venv(OURS_VENV, OURS_REQUIREMENTS, "import flask_script, pygments, wheel")
    # Build from a copy, so that no build/ or egg-info folder lands in the work tree.
    source = HERE / ".work" / "src"
    shutil.rmtree(source, ignore_errors=True)
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".nox", ".venv*", "bench", "tests", "build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
         "--no-build-isolation", str(source)],
        check=True, cwd=HERE, stderr=subprocess.DEVNULL,
    )
    return python


# -- databases ------------------------------------------------------------------------


class Database:
    """A database the benchmark can empty between runs."""

    def __init__(self, kind: str, work: Path) -> None:
        import sqlalchemy as sa

        self.kind = kind
        self._sa = sa
        if kind == "sqlite":
            self.path = work / "bench.db"
            self.url = f"sqlite:///{self.path}"
            self.name = None
        else:
            self.name = f"fmc_bench_{uuid.uuid4().hex[:8]}"
            admin = sa.engine.make_url(PG_ADMIN_URL)
            self._admin = sa.create_engine(admin, isolation_level="AUTOCOMMIT",
                                           poolclass=sa.pool.NullPool)
            with self._admin.connect() as conn:
                conn.execute(sa.text(f"CREATE DATABASE {self.name}"))
            self.url = admin.set(database=self.name).render_as_string(hide_password=False)

    def empty(self) -> None:
        if self.kind == "sqlite":
            for suffix in ("", "-journal", "-wal"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            return
        engine = self._sa.create_engine(self.url, isolation_level="AUTOCOMMIT",
                                        poolclass=self._sa.pool.NullPool)
        with engine.connect() as conn:
            conn.execute(self._sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(self._sa.text("CREATE SCHEMA public"))
        engine.dispose()

    def drop(self) -> None:
        if self.kind != "sqlite":
            with self._admin.connect() as conn:
                conn.execute(self._sa.text(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)"))
            self._admin.dispose()


# -- projects ----------------------------------------------------------------------------


def write_revisions(versions: Path, n: int) -> None:
    versions.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        down = "None" if i == 1 else f'"r{i - 1:04d}"'
        (versions / f"r{i:04d}.py").write_text(REVISION.format(i=i, down=down))


def setup_projects(work: Path, n: int, python: str,
                   fm41_python: Path | None) -> dict[str, Path]:
    """Three folders holding the same N revisions: ours (flask db init), Flask-Migrate
    4.1's (its own flask db init) and a plain Alembic environment."""
    dirs = {}
    for name in ("ours", "fm41", "alembic"):
        path = work / f"{name}-{n}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        dirs[name] = path
    for name, python in (("ours", python), ("fm41", fm41_python)):
        if python is None:
            continue
        path = dirs[name]
        (path / "app.py").write_text(APP)
        (path / "manage.py").write_text(MANAGE)
        env = project_env(path, "sqlite:///" + str(path / "init.db"), name == "fm41")
        subprocess.run([str(python), "-m", "flask", "db", "init"], cwd=path, env=env,
                       check=True, capture_output=True)
        write_revisions(path / "migrations" / "versions", n)
    path = dirs["alembic"]
    (path / "alembic.ini").write_text(textwrap.dedent('''\
        [alembic]
        script_location = migrations
        sqlalchemy.url = driver://set/by/-x
    '''))
    (path / "migrations").mkdir()
    (path / "migrations" / "env.py").write_text(ALEMBIC_ENV)
    (path / "migrations" / "script.py.mako").write_text("")
    write_revisions(path / "migrations" / "versions", n)
    return dirs


def project_env(path: Path, url: str, fm41: bool = False) -> dict:
    """The environment the commands of the project at ``path`` run in: the caller's,
    without its ``FLASK_*`` settings and without the settings that would stop Python
    from writing or reading bytecode, so both sides run as a deployed application does
    (bytecode written by the first run and reused by the next ones)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_") and k not in NO_BYTECODE_ENV}
    env.update(DATABASE_URL=url, FLASK_APP="app", PYTHONPATH=str(path))
    if fm41:
        env["BENCH_FM41"] = "1"
    return env


def timed(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    """(wall-clock ms, CPU ms) of one successful run. CPU time (user + system of the
    client process) is what our code costs, and barely moves when other processes
    load the machine; wall-clock also counts the database server's work."""
    with open(cwd / "bench.out", "w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = (time.perf_counter() - start) * 1000
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            out.seek(0)
            raise SystemExit(f"{' '.join(argv)} failed in {cwd}:\n{out.read()[-2000:]}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000


def alembic_ini_url(path: Path, url: str) -> None:
    ini = path / "alembic.ini"
    lines = ini.read_text().splitlines()
    lines = [f"sqlalchemy.url = {url.replace('%', '%%')}" if line.startswith("sqlalchemy.url")
             else line for line in lines]
    ini.write_text("\n".join(lines) + "\n")


# -- the lock, in process ---------------------------------------------------------------


def lock_cost_ms(url: str, rounds: int = 50) -> float:
    """Median milliseconds to take and release the migration lock (connection
    included), measured in this process."""
    import sqlalchemy as sa

    from flask_migrate_compat.lock import guard

    engine = sa.create_engine(url)
    with engine.connect():
        pass  # warm the pool, as env.py's engine is once the command runs
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        with guard({"": engine}, lock=True):
            pass
        times.append((time.perf_counter() - start) * 1000)
    engine.dispose()
    return statistics.median(times)


# -- the benchmark ----------------------------------------------------------------------


def run(kinds: list[str], sizes: list[int], repeat: int, skip_fm41: bool) -> None:
    work = HERE / ".work"
    work.mkdir(exist_ok=True)
    fm41_python = None if skip_fm41 else ensure_fm41()
    py = str(ensure_ours())
    alembic_bin = str(Path(py).with_name("alembic"))
    rows = []
    for kind in kinds:
        for n in sizes:
            log(f"{kind}, N={n}: setting up")
            dirs = setup_projects(work, n, py, fm41_python)
            database = Database(kind, work)
            try:
                alembic_ini_url(dirs["alembic"], database.url)
                env_ours = project_env(dirs["ours"], database.url)
                env_fm = project_env(dirs["fm41"], database.url, fm41=True)
                env_al = project_env(dirs["alembic"], database.url)
                contenders = {
                    "manage.py db": ([py, "manage.py", "db", "upgrade"], dirs["ours"], env_ours),
                    "flask db": ([py, "-m", "flask", "db", "upgrade"], dirs["ours"], env_ours),
                    "alembic": ([alembic_bin, "upgrade", "head"], dirs["alembic"], env_al),
                }
                if fm41_python is not None:
                    contenders["Flask-Migrate 4.1"] = (
                        [str(fm41_python), "-m", "flask", "db", "upgrade"], dirs["fm41"], env_fm)
                samples: dict[str, list[float]] = {}
                cpu_samples: dict[str, list[float]] = {}
                for rep in range(repeat + 1):  # repetition 0 warms caches, not counted
                    results = {}
                    for name, (argv, cwd, env) in contenders.items():
                        database.empty()
                        results[f"{name} | empty"] = timed(argv, cwd, env)
                        results[f"{name} | head"] = timed(argv, cwd, env)
                    results["flask db --no-lock | head"] = timed(
                        [py, "-m", "flask", "db", "upgrade", "--no-lock"], dirs["ours"], env_ours)
                    results["flask db (lock) | head"] = timed(
                        [py, "-m", "flask", "db", "upgrade"], dirs["ours"], env_ours)
                    results["import app"] = timed([py, "-c", "import app"], dirs["ours"], env_ours)
                    if rep:
                        for key, (wall, cpu) in results.items():
                            samples.setdefault(key, []).append(wall)
                            cpu_samples.setdefault(key, []).append(cpu)
                    log(f"  repetition {rep}/{repeat} done")
                lock_ms = lock_cost_ms(database.url)
                rows.append((kind, n, samples, cpu_samples, lock_ms))
                report_one(kind, n, samples, cpu_samples, lock_ms)
            finally:
                database.drop()
    for label, index in (("CPU time of the command", 3), ("wall-clock", 2)):
        print(f"\nSummary, {label} (paired ratios: median over repetitions of ours/other)")
        for row in rows:
            report_summary(row[0], row[1], row[index], row[4])


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired(samples: dict, a: str, b: str) -> float:
    return statistics.median(x / y for x, y in zip(samples[a], samples[b]))


def paired_diff(samples: dict, a: str, b: str) -> float:
    return statistics.median(x - y for x, y in zip(samples[a], samples[b]))


def report_one(kind: str, n: int, samples: dict, cpu_samples: dict, lock_ms: float) -> None:
    print(f"\n== {kind}, N={n} revisions, {len(samples['import app'])} repetitions ==")
    print(f"  {'':34s} {'wall (ms)':>12s} {'CPU (ms)':>10s}")
    for key in sorted(samples):
        print(f"  {key:34s} {median(samples[key]):12.1f} {median(cpu_samples[key]):10.1f}")
    print(f"  {'lock acquire+release (in process)':34s} median {lock_ms:9.2f} ms")
    sys.stdout.flush()


def report_summary(kind: str, n: int, samples: dict, lock_ms: float) -> None:
    imp = median(samples["import app"])
    for state in ("empty", "head"):
        for ours in ("manage.py db", "flask db"):
            a = f"{ours} | {state}"
            line = f"  {kind:10s} N={n:<5d} {state:5s} {ours:12s}"
            if f"Flask-Migrate 4.1 | {state}" in samples:
                r = paired(samples, a, f"Flask-Migrate 4.1 | {state}")
                line += f" vs FM4.1 {r:5.2f} [{'ok' if r <= 1.0 else 'MISSED'}]"
            over = paired_diff(samples, a, f"alembic | {state}")
            line += (f"  vs alembic {paired(samples, a, f'alembic | {state}'):5.2f}"
                     f" (+{over:6.1f} ms; import app {imp:6.1f} ms"
                     f" [{'ok' if over <= imp else 'MISSED'}])")
            print(line)
    lock_sub = paired_diff(samples, "flask db (lock) | head", "flask db --no-lock | head")
    print(f"  {kind:10s} N={n:<5d} lock: {lock_ms:.2f} ms in process "
          f"[{'ok' if lock_ms < 10 else 'MISSED'}], {lock_sub:+.1f} ms paired "
          "difference of whole commands (noise of a few ms either way)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke check: N=50 only, 3 repetitions")
    parser.add_argument("--n", type=int, action="append",
                        help="chain length (repeatable; default 50, 200, 1000)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="measured repetitions (default 5; 3 with --quick)")
    parser.add_argument("--databases", default="sqlite,postgresql",
                        help="comma-separated: sqlite, postgresql")
    parser.add_argument("--skip-fm41", action="store_true",
                        help="do not install or time Flask-Migrate 4.1")
    args = parser.parse_args(argv)
    sizes = args.n or ([50] if args.quick else [50, 200, 1000])
    repeat = args.repeat or (3 if args.quick else 5)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    run(kinds, sizes, repeat, args.skip_fm41)


if __name__ == "__main__":
    main()
