"""The migration lock, for real: many processes run ``db upgrade`` on one database at
the same moment (both front ends mixed), on SQLite, PostgreSQL and MariaDB.

Every process imports the application, then waits on a barrier file; the test releases
them all at once. A revision sleeps for a moment inside its transaction, which widens
the race window: without the lock every process sees an empty version table.

CI runs one repetition of each race. Set ``FMC_LOCK_REPEAT=20`` to run every locked race
20 times in a row (``FMC_LOCK_REPEAT=20 python -m pytest tests/test_lock.py -k race``).

``test_without_lock_*`` are demonstrations of the problem the lock solves: they assert
that unguarded concurrent upgrades break (at least one process fails or the schema is
wrong). They are deterministic in outcome: each makes up to three attempts and only
one of them has to show the breakage.
"""
from __future__ import annotations

import json
import os
import re
import socket
import sys
import textwrap
import time

import pytest
import sqlalchemy as sa
from conftest import assert_one_error, init_migrations, spawn, wait_for_file, wait_for_line

REPEAT = int(os.environ.get("FMC_LOCK_REPEAT", "1"))
SERVERS = ("postgresql", "mysql")

# Inserted into app.py (APP_TEMPLATE's {config}): with FMC_BARRIER set, the process
# announces that it is ready, then waits until the test creates "<barrier>.go".
BARRIER = textwrap.dedent('''\
    import time as _time
    _barrier = os.environ.get("FMC_BARRIER")
    if _barrier:
        open(f"{_barrier}.ready.{os.getpid()}", "w").close()
        while not os.path.exists(_barrier + ".go"):
            _time.sleep(0.005)
''')

HEADER = '''\
import os
import time

import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def _pause():
    """Widen the race window (FMC_REV_SLEEP seconds), or wait for a file (FMC_HOLD)
    after announcing that this revision runs (FMC_HOLDING)."""
    if os.environ.get("FMC_HOLDING"):
        open(os.environ["FMC_HOLDING"], "w").close()
    hold = os.environ.get("FMC_HOLD")
    while hold and not os.path.exists(hold):
        time.sleep(0.02)
    time.sleep(float(os.environ.get("FMC_REV_SLEEP", "0")))

'''

REVISIONS = {
    "a1": ('''\
def upgrade():
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("status", sa.Enum("new", "active", "gone", name="account_status")),
    )
    _pause()


def downgrade():
    op.drop_table("accounts")
    sa.Enum(name="account_status").drop(op.get_bind(), checkfirst=True)
''', None),
    "a2": ('''\
def upgrade():
    op.create_table(
        "projects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id")),
        sa.Column("title", sa.String(100), nullable=False),
    )
    op.create_index("ix_projects_title", "projects", ["title"])


def downgrade():
    op.drop_index("ix_projects_title", table_name="projects")
    op.drop_table("projects")
''', "a1"),
    "a3": ('''\
def upgrade():
    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("project_id", sa.Integer, sa.ForeignKey("projects.id")),
        sa.Column("done", sa.Boolean, server_default=sa.false(), nullable=False),
        sa.Column("priority", sa.Enum("low", "high", name="task_priority")),
    )


def downgrade():
    op.drop_table("tasks")
    sa.Enum(name="task_priority").drop(op.get_bind(), checkfirst=True)
''', "a2"),
    "a4": ('''\
def upgrade():
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("email", sa.String(120)))


def downgrade():
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("email")
''', "a3"),
}
HEAD = "a4"
TABLES = {"accounts", "projects", "tasks", "alembic_version"}


def write_chain(project) -> None:
    """What ``db init`` writes plus the hand-written chain a1..a4."""
    init_migrations(project)
    for rev, (body, down) in REVISIONS.items():
        project.write(f"migrations/versions/{rev}.py", HEADER.format(rev=rev, down=down) + body)


def lock_project(make_project, database, subdir="proj"):
    project = make_project(database, subdir)
    project.write_app(config=BARRIER)
    write_chain(project)
    return project


def commands(n: int, extra: tuple = ()) -> list[list[str]]:
    """n upgrade command lines, alternating the two front ends."""
    fronts = (["manage.py", "db"], ["-m", "flask", "db"])
    return [[sys.executable, *fronts[i % 2], "upgrade", *extra] for i in range(n)]


def race(project, n: int, extra: tuple = (), env: dict | None = None, timeout=120):
    """Start n upgrades together; returns [(argv, returncode, stdout, stderr)]."""
    barrier = project.path / f"barrier-{time.monotonic_ns()}"
    full_env = {**project.env, "FMC_BARRIER": str(barrier), **(env or {})}
    procs = [
        (argv, spawn(argv, cwd=project.path, env=full_env))
        for argv in commands(n, extra)
    ]
    deadline = time.monotonic() + timeout
    try:
        while len(list(project.path.glob(barrier.name + ".ready.*"))) < n:
            if any(p.poll() is not None for _, p in procs):
                break  # one died before the barrier: collect everything below
            assert time.monotonic() < deadline, "processes never reached the barrier"
            time.sleep(0.02)
        (project.path / (barrier.name + ".go")).touch()
        results = []
        for argv, p in procs:
            out, err = p.communicate(timeout=max(1, deadline - time.monotonic()))
            results.append((argv, p.returncode, out, err))
        return results
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=30)


def schema_problems(database) -> list[str]:
    """What is wrong with the database after an upgrade to head (empty: nothing)."""
    problems = []
    tables = database.tables()
    if tables != TABLES:
        problems.append(f"tables {sorted(tables)}")
    try:
        versions = database.version()
    except sa.exc.DBAPIError as exc:
        return problems + [f"version table unreadable: {exc.orig}"]
    if versions != [HEAD]:
        problems.append(f"version table rows {versions}")
    if "accounts" in tables and "email" not in database.columns("accounts"):
        problems.append("accounts.email missing")
    if "projects" in tables:
        indexes = {ix["name"] for ix in database.inspector().get_indexes("projects")}
        if "ix_projects_title" not in indexes:
            problems.append("index ix_projects_title missing")
    if database.kind == "postgresql":
        types = enum_types(database)
        if types != {"account_status", "task_priority"}:
            problems.append(f"enum types {sorted(types)}")
    return problems


def enum_types(database) -> set[str]:
    with database.engine().connect() as conn:
        return set(conn.execute(sa.text("SELECT typname FROM pg_type WHERE typtype = 'e'")).scalars())


def describe(results) -> str:
    return "\n".join(
        f"--- {' '.join(argv[1:])} exited {rc}\n{err.strip()[-800:]}"
        for argv, rc, out, err in results
    )


# -- locked races -----------------------------------------------------------------------


@pytest.mark.parametrize("repeat", range(REPEAT))
@pytest.mark.parametrize("n", [8, 16])
@pytest.mark.parametrize("kind", SERVERS)
def test_race_locked_upgrades_all_succeed(make_database, make_project, kind, n, repeat):
    database = make_database(kind)
    project = lock_project(make_project, database)
    results = race(project, n, env={"FMC_REV_SLEEP": "0.5"})
    assert all(rc == 0 for _, rc, _, _ in results), describe(results)
    assert schema_problems(database) == [], describe(results)
    # Exactly one process ran the revisions; every other one found the database at head.
    ran = [err for _, _, _, err in results if "Running upgrade  -> a1" in err]
    assert len(ran) == 1, describe(results)
    for _, _, out, err in results:
        assert "Traceback" not in err


@pytest.mark.parametrize("repeat", range(REPEAT))
def test_race_locked_upgrades_sqlite(make_database, make_project, repeat):
    database = make_database("sqlite")
    project = lock_project(make_project, database)
    results = race(project, 4, env={"FMC_REV_SLEEP": "0.5"})
    assert all(rc == 0 for _, rc, _, _ in results), describe(results)
    assert schema_problems(database) == [], describe(results)
    assert sum("Running upgrade  -> a1" in err for *_, err in results) == 1


# -- the problem the lock solves ---------------------------------------------------------


@pytest.mark.parametrize("kind", SERVERS)
def test_without_lock_concurrent_upgrades_break(make_database, make_project, kind):
    """Demonstration (expected to show breakage, not flaky): with --no-lock, 8
    simultaneous upgrades race. Up to three attempts, each on a fresh database."""
    seen = []
    for attempt in range(3):
        database = make_database(kind, label=f"nolock{attempt}")
        project = lock_project(make_project, database, subdir=f"nolock{attempt}")
        results = race(project, 8, extra=("--no-lock",), env={"FMC_REV_SLEEP": "0.5"})
        failed = [r for r in results if r[1] != 0]
        problems = schema_problems(database)
        seen.append((len(failed), problems))
        if failed or problems:
            return
    pytest.fail(f"unguarded upgrades never broke in 3 attempts: {seen}")


# -- waiting, timeout, switches ------------------------------------------------------------


def start_holder(project, tmp_path, extra=()):
    """Start an upgrade that stops inside revision a1 (holding the lock) until the
    returned release file exists."""
    holding, release = tmp_path / "holding", tmp_path / "release"
    env = {**project.env, "FMC_HOLDING": str(holding), "FMC_HOLD": str(release)}
    proc = spawn([sys.executable, "-m", "flask", "db", "upgrade", *extra],
                 cwd=project.path, env=env)
    wait_for_file(holding, proc)
    return proc, release


def start(project, *args):
    return spawn([sys.executable, *args], cwd=project.path, env=project.env)


@pytest.mark.parametrize(
    "kind,front",
    [("sqlite", "flask"), ("postgresql", "flask"), ("mysql", "flask"), ("postgresql", "manage")],
)
def test_waiter_says_it_waits_then_finds_head(make_database, make_project, tmp_path,
                                              kind, front):
    database = make_database(kind)
    project = lock_project(make_project, database)
    holder, release = start_holder(project, tmp_path)
    front_args = ("manage.py", "db") if front == "manage" else ("-m", "flask", "db")
    waiter = start(project, *front_args, "upgrade")
    try:
        lines = wait_for_line(waiter, "Waiting for the migration lock on")
        assert_names_holder(lines[-1], holder, database)
        assert waiter.poll() is None  # still waiting while the holder holds the lock
        # status and doctor name the holder too, without waiting for the lock.
        proc = project.flask("db", "status", "--json", check=False, timeout=30)
        assert proc.returncode == 1, proc.stderr  # the holder has not committed yet
        (db,) = json.loads(proc.stdout)["databases"]
        assert_names_holder(db["lock_holder"]["description"], holder, database)
        proc = project.manage("db", "doctor", check=False, timeout=60)
        assert proc.returncode == 1
        line = next(l for l in proc.stdout.splitlines() if l.startswith("[!!] lock:"))
        assert_names_holder(line, holder, database)
    finally:
        release.touch()
    h_out, h_err = holder.communicate(timeout=60)
    w_out, w_err = waiter.communicate(timeout=60)
    assert holder.returncode == 0, h_err
    assert waiter.returncode == 0, w_err
    assert "Running upgrade" not in w_err  # it found the database at head
    assert schema_problems(database) == []


def assert_names_holder(line: str, holder, database) -> None:
    """The line names the process holding the lock, as the database reports it."""
    since = r"since \d\d:\d\d:\d\d"
    if database.kind == "mysql":
        # MariaDB shows the holding connection (no name: its connection attributes
        # need the performance schema); check that this connection exists.
        match = re.search(rf"connection (\d+) from 127\.0\.0\.1:\d+ \({since}\)", line)
        assert match, line
        with database.engine().connect() as conn:
            host = conn.execute(sa.text("SELECT HOST FROM information_schema.PROCESSLIST "
                                        "WHERE ID = :i"), {"i": int(match.group(1))}).scalar()
        assert host and host.startswith("127.0.0.1:"), host
        return
    # Which pid is which: the holder's own, in its name; the server's, said so.
    name = rf"flask-migrate-compat db upgrade pid {holder.pid} on [^\s(]+"
    if database.kind == "postgresql":
        match = re.search(rf"{name} \(server backend pid (\d+), client 127\.0\.0\.1, "
                          rf"{since}\)", line)
        assert match, line
        with database.engine().connect() as conn:
            session = conn.execute(sa.text("SELECT application_name FROM pg_stat_activity "
                                           "WHERE pid = :p"), {"p": int(match.group(1))}).scalar()
        assert session == f"flask-migrate-compat db upgrade pid {holder.pid} on " \
                          f"{socket.gethostname()}"[:63], session
    else:
        assert re.search(rf"{name} \({since}\)", line), line


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_lock_timeout_is_one_line_error(make_database, make_project, tmp_path, kind):
    database = make_database(kind)
    project = lock_project(make_project, database)
    holder, release = start_holder(project, tmp_path)
    try:
        proc = project.flask("db", "upgrade", "--lock-timeout", "0.5", check=False)
    finally:
        release.touch()
    holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert_one_error(proc, "Error: timed out after 0.5 s waiting for the migration lock")
    assert database.version() == [HEAD]


@pytest.mark.parametrize("how", ["--no-lock", "lock=False", "MIGRATE_LOCK=False"])
def test_lock_can_be_turned_off(make_database, make_project, tmp_path, how):
    """With the lock off, a second upgrade does not wait for the first one: it runs
    revision a1 too (on SQLite a1's table is already committed, so it fails)."""
    database = make_database("sqlite")
    project = lock_project(make_project, database)
    holder, release = start_holder(project, tmp_path)
    if how == "lock=False":
        project.write_app(config=BARRIER, migrate_args=", lock=False")
    elif how == "MIGRATE_LOCK=False":
        project.write_app(config=BARRIER + 'app.config["MIGRATE_LOCK"] = False\n')
    extra = ("--no-lock",) if how == "--no-lock" else ()
    try:
        # Were the lock on, this would wait and time out after 1 s.
        other = project.flask("db", "upgrade", *extra, "--lock-timeout", "1", check=False)
    finally:
        release.touch()
    holder.communicate(timeout=60)
    assert holder.returncode == 0
    assert "Waiting for the migration lock" not in other.stderr
    assert "Running upgrade  -> a1" in other.stderr
    assert "timed out" not in other.stderr
    assert schema_problems(database) == []


def test_no_lock_in_offline_mode(make_database, make_project, tmp_path):
    """--sql touches no database, so it neither takes nor waits for the lock."""
    database = make_database("postgresql")
    project = lock_project(make_project, database)
    holder, release = start_holder(project, tmp_path)
    try:
        proc = project.flask("db", "upgrade", "--sql", "--lock-timeout", "0.1")
    finally:
        release.touch()
    holder.communicate(timeout=60)
    assert "CREATE TABLE accounts" in proc.stdout
    assert "Waiting for the migration lock" not in proc.stderr


def test_two_apps_on_one_server_do_not_block_each_other(make_database, make_project,
                                                        tmp_path):
    """Same database, different version tables: different locks."""
    database = make_database("postgresql")
    project = lock_project(make_project, database)
    holder, release = start_holder(project, tmp_path)
    other = make_project(database, subdir="other")
    other.write_app(models="", migrate_args=', version_table="other_version"')
    other.flask("db", "init")
    try:
        proc = other.flask("db", "stamp", "head", "--lock-timeout", "0.5")
    finally:
        release.touch()
    holder.communicate(timeout=60)
    assert "Waiting for the migration lock" not in proc.stderr
    assert holder.returncode == 0


def test_multidb_locks_every_database(make_database, make_project, tmp_path):
    """A multidb project waits when another process holds the lock of its second
    database only."""
    main = make_database("postgresql", label="main")
    extra = make_database("mysql", label="extra")
    project = lock_project(make_project, extra, subdir="single")
    holder, release = start_holder(project, tmp_path)
    multi = make_project(main, subdir="multi")
    multi.write_app(models="", config=f'app.config["SQLALCHEMY_BINDS"] = {{"extra": {extra.url!r}}}')
    multi.flask("db", "init", "--multidb")
    try:
        proc = multi.flask("db", "stamp", "head", "--lock-timeout", "0.5", check=False)
    finally:
        release.touch()
    holder.communicate(timeout=60)
    assert proc.returncode == 1
    assert "timed out after 0.5 s waiting for the migration lock on the mysql database" in proc.stderr
