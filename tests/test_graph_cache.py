"""The revision-graph cache (flask_migrate_compat.graph_cache): never stale, never in
the way.

Every revision file these tests write prints ``EXECUTED <id>`` on stderr when it is
executed as a module, so each test sees both what the commands answer (heads,
history, current, the database) and which files they had to execute. Each staleness
test changes the files in one way and checks that the next command sees the change.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import GRAPH_CACHE_OFF, init_migrations

pytestmark = pytest.mark.skipif(
    GRAPH_CACHE_OFF, reason="FMC_TEST_GRAPH_CACHE=off: these tests are about the cache")

NO_CACHE = {"FLASK_MIGRATE_COMPAT_NO_CACHE": "1"}


def revision_text(rev: str, down: str | tuple | None, message: str, table: str = "",
                  extra: str = "") -> str:
    """A revision file in the shape ``db migrate`` writes, announcing its execution."""
    table = table or f"t_{rev}"
    return textwrap.dedent(f'''\
        """{message}

        Revision ID: {rev}
        Revises: {down}
        """
        import sys

        import sqlalchemy as sa
        from alembic import op

        print("EXECUTED {rev}", file=sys.stderr)

        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None
        {extra}

        def upgrade():
            op.create_table({table!r}, sa.Column("id", sa.Integer, primary_key=True))


        def downgrade():
            op.drop_table({table!r})
        ''')


def write_chain(versions: Path, count: int, prefix: str = "a") -> list[str]:
    ids = [f"{prefix}{i:03d}" for i in range(1, count + 1)]
    for i, rev in enumerate(ids):
        down = ids[i - 1] if i else None
        (versions / f"{rev}_step.py").write_text(revision_text(rev, down, f"step {rev}"))
    return ids


#: Two roots (a, x), a branch point (b), a merge point (e).
GRAPH = {"a": None, "b": "a", "c": "b", "d": "b", "e": ("c", "d"), "f": "e",
         "x": None, "y": "x", "z": "y"}


def write_graph(versions: Path, values: dict[str, dict[str, str]],
                folders: dict[str, str] | None = None) -> None:
    """Write :data:`GRAPH`'s revision files into ``versions``; ``values`` gives a
    revision's ``branch_labels``/``depends_on`` (source text), ``folders`` the
    sub-folder a revision's file goes to."""
    for rev, down in GRAPH.items():
        text = revision_text(rev, down, f"rev {rev}")
        for name, value in values.get(rev, {}).items():
            text = text.replace(f"{name} = None", f"{name} = {value}")
        folder = versions / (folders or {}).get(rev, "")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{rev}.py").write_text(text)


def executed(proc: subprocess.CompletedProcess) -> list[str]:
    return sorted(line.split()[1] for line in proc.stderr.splitlines()
                  if line.startswith("EXECUTED "))


def cache_files(script_dir: Path) -> list[Path]:
    return sorted((script_dir / "__pycache__").glob("flask_migrate_compat_revisions.*"))


@pytest.fixture
def chain(project):
    """A project whose script directory holds a chain of 5 revisions, cache built."""
    script_dir = init_migrations(project)
    ids = write_chain(script_dir / "versions", 5)
    first = project.flask("db", "heads")
    assert first.stdout.split() == ["a005", "(head)"]
    assert executed(first) == ids  # no cache yet: every file executed
    assert len(cache_files(script_dir)) == 1
    return project, script_dir, ids


def test_graph_commands_execute_no_revision_file_once_cached(chain):
    project, script_dir, ids = chain
    for args in (("heads",), ("history",), ("branches",), ("show", "a003"), ("current",),
                 ("status",), ("check",)):
        proc = project.flask("db", *args, check=False)
        assert proc.returncode in (0, 1) and executed(proc) == [], (args, proc.stderr)
    # upgrade executes each file whose upgrade() runs, and the database has its tables.
    assert executed(project.flask("db", "upgrade")) == ids
    assert project.database.version() == ["a005"]
    assert {f"t_{rev}" for rev in ids} <= project.database.tables()
    # At head: nothing to run, nothing executed.
    for args in (("upgrade",), ("current",), ("status",), ("stamp", "head"),
                 ("downgrade", "a005"), ("upgrade", "--sql", "a004:a005")):
        proc = project.flask("db", *args)
        assert executed(proc) == ([] if args[-1] != "a004:a005" else ["a005"]), args
    assert project.flask("db", "current").stdout.split() == ["a005", "(head)"]
    # A downgrade executes exactly the files whose downgrade() runs.
    assert executed(project.flask("db", "downgrade", "a003")) == ["a004", "a005"]
    assert project.database.version() == ["a003"]
    assert "t_a005" not in project.database.tables() and "t_a003" in project.database.tables()


def test_cached_output_is_the_full_loads(chain):
    project, script_dir, ids = chain
    (script_dir / "versions" / "b001_merge.py").write_text(
        revision_text("b001", ("a004", "a005x"), "merge point"))
    (script_dir / "versions" / "a005x_side.py").write_text(
        revision_text("a005x", "a003", "side branch", extra="branch_labels = ('side',)")
        .replace("branch_labels = None\n", ""))
    # Alembic lists a branch point's branches from a set: one hash seed for all three.
    seed = {"PYTHONHASHSEED": "0"}
    seen: dict[str, str] = {}
    for args in (("history", "--verbose"), ("heads", "--verbose"), ("branches", "-v"),
                 ("show", "side@head"), ("history", "-r", "a002:b001")):
        built = project.flask("db", *args, env=seed)
        cached = project.flask("db", *args, env=seed)
        uncached = project.flask("db", *args, env={**seed, **NO_CACHE})
        assert executed(cached) == [] and len(executed(uncached)) == 7
        assert cached.stdout == built.stdout == uncached.stdout, args
        seen[args[0]] = seen.get(args[0], "") + cached.stdout
    assert "Branch names: side" in seen["history"] and "Merges: a004, a005x" in seen["heads"]


def test_added_revision_is_seen(chain):
    project, script_dir, ids = chain
    (script_dir / "versions" / "a006_step.py").write_text(revision_text("a006", "a005", "six"))
    proc = project.flask("db", "heads")
    assert proc.stdout.split() == ["a006", "(head)"]
    assert executed(proc) == [*ids, "a006"]  # rebuilt: a full load
    assert executed(project.flask("db", "heads")) == []


def test_removed_revision_is_seen(chain):
    project, script_dir, ids = chain
    (script_dir / "versions" / "a005_step.py").unlink()
    assert project.flask("db", "heads").stdout.split() == ["a004", "(head)"]
    assert "a005" not in project.flask("db", "history").stdout


def test_renamed_revision_file_is_seen(chain):
    project, script_dir, ids = chain
    versions = script_dir / "versions"
    (versions / "a003_step.py").rename(versions / "a003_renamed.py")
    proc = project.flask("db", "show", "a003")
    assert "a003_renamed.py" in proc.stdout and "a003_step.py" not in proc.stdout
    # Renamed out of what Alembic reads (not *.py): a missing revision, named.
    (versions / "a003_renamed.py").rename(versions / "a003_renamed.py.txt")
    proc = project.flask("db", "heads", check=False)
    assert proc.returncode == 1 and "down_revision 'a003'" in proc.stderr


def test_edit_in_the_same_clock_tick_with_the_same_size_is_seen(chain):
    """The edit keeps the file's size and modification time to the nanosecond."""
    project, script_dir, ids = chain
    path = script_dir / "versions" / "a005_step.py"
    before = path.stat()
    text = path.read_text()
    edited = text.replace("step a005", "edit a005").replace("'a004'", "'a003'")
    assert len(edited) == len(text) and edited != text
    path.write_text(edited)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_size == before.st_size
    proc = project.flask("db", "history")
    assert "a003 -> a005 (head), edit a005" in proc.stdout
    heads = project.flask("db", "heads").stdout.split()
    assert sorted(heads) == ["(head)", "(head)", "a004", "a005"]


def test_git_checkout_of_another_branch_is_seen(chain):
    project, script_dir, ids = chain
    versions = script_dir / "versions"

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=project.path, check=True, capture_output=True,
                              text=True, timeout=60).stdout

    (project.path / ".gitignore").write_text("__pycache__/\n*.db\n")
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "five revisions")
    git("checkout", "-q", "-b", "other")
    # Same file name and size, another revision: what a teammate's branch may hold.
    (versions / "a005_step.py").write_text(revision_text("c005", "a004", "step c005"))
    (versions / "a006_step.py").write_text(revision_text("a006", "c005", "six"))
    git("add", ".")
    git("commit", "-q", "-m", "other branch")
    assert project.flask("db", "heads").stdout.split() == ["a006", "(head)"]
    git("checkout", "-q", "main")
    assert git("status", "--porcelain") == ""  # the cache is nothing git sees
    proc = project.flask("db", "heads")
    assert proc.stdout.split() == ["a005", "(head)"]
    git("checkout", "-q", "other")
    assert project.flask("db", "history", "-r", "a004:").stdout.splitlines() == [
        "c005 -> a006 (head), six", "a004 -> c005, step c005", "a003 -> a004, step a004"]


@pytest.mark.parametrize("ignored", ["__pycache__/", "*.pyc", "*.py[cod]"])
def test_no_cache_file_for_git_to_see(chain, ignored):
    """Whether a project's .gitignore names bytecode by its folder or by its suffix,
    the cache (and a temporary file left by a killed command) shows nowhere in
    ``git status``."""
    project, script_dir, ids = chain

    def git(*args: str) -> str:
        return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                              cwd=project.path, check=True, capture_output=True,
                              text=True, timeout=60).stdout

    (project.path / ".gitignore").write_text(f"{ignored}\n*.db\n")
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "five revisions")
    assert project.flask("db", "heads").stdout.split() == ["a005", "(head)"]
    (cache,) = (script_dir / "__pycache__").glob("flask_migrate_compat_revisions.*")
    cache.with_name(cache.name[:-len(".pyc")] + ".123.abcd.tmp.pyc").write_bytes(b"x")
    assert git("status", "--porcelain", "--untracked-files=all") == ""


def test_version_locations_change_is_seen(chain):
    project, script_dir, ids = chain
    extra = project.path / "more_versions"
    extra.mkdir()
    (extra / "d001_elsewhere.py").write_text(revision_text("d001", "a005", "elsewhere"))
    ini = script_dir / "alembic.ini"
    original = ini.read_text()
    ini.write_text(original.replace(
        "[alembic]", f"[alembic]\nversion_locations = %(here)s/versions {extra}", 1))
    assert project.flask("db", "heads").stdout.split() == ["d001", "(head)"]
    assert executed(project.flask("db", "heads")) == []
    ini.write_text(original)
    assert project.flask("db", "heads").stdout.split() == ["a005", "(head)"]
    # A change in the second location alone is seen too.
    ini.write_text(original.replace(
        "[alembic]", f"[alembic]\nversion_locations = %(here)s/versions {extra}", 1))
    project.flask("db", "heads")
    (extra / "d002_more.py").write_text(revision_text("d002", "d001", "more"))
    assert project.flask("db", "heads").stdout.split() == ["d002", "(head)"]


def test_template_change_rebuilds(chain):
    project, script_dir, ids = chain
    template = script_dir / "script.py.mako"
    template.write_text(template.read_text() + "\n# our own template\n")
    proc = project.flask("db", "heads")
    assert executed(proc) == ids  # rebuilt
    assert executed(project.flask("db", "heads")) == []


def test_env_var_turns_it_off(project):
    script_dir = init_migrations(project)
    ids = write_chain(script_dir / "versions", 3)
    for _ in range(2):
        proc = project.flask("db", "heads", env=NO_CACHE)
        assert proc.stdout.split() == ["a003", "(head)"] and executed(proc) == ids
    assert cache_files(script_dir) == []
    # Off also means not read: a cache written before is ignored.
    project.flask("db", "heads")
    (script_dir / "versions" / "a003_step.py").unlink()
    (script_dir / "versions" / "a004_step.py").write_text(revision_text("a004", "a002", "x"))
    proc = project.flask("db", "heads", env=NO_CACHE)
    assert proc.stdout.split() == ["a004", "(head)"]


def test_corrupt_or_unreadable_cache_falls_back_silently(chain):
    project, script_dir, ids = chain
    [cache] = cache_files(script_dir)
    good = cache.read_bytes()
    # The last: damage that leaves a readable file of the right key, saying another
    # message (same length) for a revision.
    assert good.count(b"step a005") == 1
    for damaged in (b"", b"garbage", good[: len(good) // 2], good[:-3] + b"xyz",
                    good.replace(b"step a005", b"STEP A005")):
        cache.write_bytes(damaged)
        proc = project.flask("db", "history")
        assert proc.stdout.splitlines()[0] == "a004 -> a005 (head), step a005"
        assert "Error" not in proc.stderr and "Traceback" not in proc.stderr
        assert executed(proc) == ids  # full load, and the cache is written again
        assert executed(project.flask("db", "heads")) == []
    # A folder where the file should be: cannot be read nor replaced.
    cache.unlink()
    cache.mkdir()
    for _ in range(2):
        proc = project.flask("db", "heads")
        assert proc.stdout.split() == ["a005", "(head)"] and executed(proc) == ids
        # Nothing but the files' own lines (in the folder's order: Alembic < 1.10
        # does not sort it).
        assert sorted(proc.stderr.splitlines()) == [f"EXECUTED {i}" for i in ids]


def test_unwritable_place_falls_back_silently(project):
    """Where the cache cannot be written (a read-only file system, even for root), every
    command does the full load, and says nothing about it."""
    script_dir = init_migrations(project)
    ids = write_chain(script_dir / "versions", 3)
    env = {"PYTHONPYCACHEPREFIX": "/proc/fmc-read-only"}
    for _ in range(2):
        proc = project.flask("db", "heads", env=env)
        assert proc.stdout.split() == ["a003", "(head)"] and executed(proc) == ids
        assert sorted(proc.stderr.splitlines()) == [f"EXECUTED {i}" for i in ids]
    assert cache_files(script_dir) == []


def test_pycache_prefix_moves_it_like_bytecode(project, tmp_path):
    script_dir = init_migrations(project)
    write_chain(script_dir / "versions", 3)
    prefix = tmp_path / "prefix"
    env = {"PYTHONPYCACHEPREFIX": str(prefix)}
    project.flask("db", "heads", env=env)
    assert executed(project.flask("db", "heads", env=env)) == []
    assert cache_files(script_dir) == []
    assert len(list(prefix.rglob("flask_migrate_compat_revisions.*"))) == 1


def test_concurrent_commands_leave_one_valid_cache(project):
    script_dir = init_migrations(project)
    ids = write_chain(script_dir / "versions", 40)
    procs = [subprocess.Popen([sys.executable, "-m", "flask", "db", "heads"], cwd=project.path,
                              env=project.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(6)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.split() == ["a040", "(head)"]
    assert len(cache_files(script_dir)) == 1  # no temporary file left behind
    assert [p.name for p in (script_dir / "__pycache__").iterdir()
            if p.name.endswith(".tmp")] == []
    proc = project.flask("db", "heads")
    assert executed(proc) == [] and proc.stdout.split() == ["a040", "(head)"]
    assert len(project.flask("db", "history").stdout.splitlines()) == len(ids)


def test_computed_graph_values_are_never_cached(project):
    """A file whose down_revision is computed is executed at every command: the same
    bytes may give another value."""
    script_dir = init_migrations(project)
    versions = script_dir / "versions"
    write_chain(versions, 2)
    (versions / "a003_step.py").write_text(revision_text("a003", "a002", "three").replace(
        "down_revision = 'a002'", "import os\ndown_revision = os.environ.get('PREV', 'a002')"))
    assert project.flask("db", "heads").stdout.split() == ["a003", "(head)"]
    assert cache_files(script_dir) == []
    proc = project.flask("db", "heads", env={"PREV": "a001"})
    assert sorted(proc.stdout.split()) == ["(head)", "(head)", "a002", "a003"]


def test_moved_project_keeps_its_cache(chain, tmp_path):
    project, script_dir, ids = chain
    moved = tmp_path / "moved"
    shutil.copytree(project.path, moved)
    proc = subprocess.run([sys.executable, "-m", "flask", "db", "history", "-v", "-r", "a004:"],
                          cwd=moved, env={**project.env, "PYTHONPATH": str(moved)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert executed(proc) == []
    assert f"Path: {moved.resolve()}/migrations/versions/a005_step.py" in proc.stdout


def test_manage_py_front_end_uses_it(chain):
    project, script_dir, ids = chain
    proc = project.manage("db", "heads")
    assert proc.stdout.split() == ["a005", "(head)"] and executed(proc) == []
    (script_dir / "versions" / "a006_step.py").write_text(revision_text("a006", "a005", "six"))
    assert project.manage("db", "heads").stdout.split() == ["a006", "(head)"]


@pytest.mark.parametrize("source, cacheable", [
    ('"""msg"""\nrevision = "b2"\ndown_revision = (\n    "a1",\n    "a0",\n)\n', True),
    ('revision: str = "b2"\ndown_revision: str | None = None\n', True),
    ('revision = "b2"\ndown_revision = "a1"\nif X:\n    down_revision = "a0"\n', False),
    ('revision = "b2"\ndown_revision = "a1"\ndef f():\n    global down_revision\n', False),
    ('revision = "b2"\ndown_revision = "a1"\nsetattr(m, "down_revision", "a0")\n', False),
    ('revision = "b2"\ndown_revision = "a1"\nglobals()["down_revision"] = "a0"\n', False),
    ('revision = "b2"\nfrom elsewhere import *\ndown_revision = "a1"\n', False),
    ('revision = "b2"\nfrom elsewhere import prev as down_revision\n', False),
    ('revision = "b2"\ndown_revision = "a" + "1"\n', False),
    ('revision = "b2"\ndown_revision = "a1"\n__doc__ = "another"\n', False),
    ('revision = "b2"\ndown_revision = "a1"\nimport sys\nsys.modules[__name__].x = 1\n', False),
    ('revision = "b2"\ndown_revision = "a1"\nfor down_revision in ("a0",): pass\n', False),
])
def test_only_literal_graph_values_are_cacheable(source, cacheable):
    from flask_migrate_compat.graph_cache import graph_values

    values = graph_values(source.encode())
    assert (values is not None) == cacheable
    if cacheable:
        namespace: dict = {}
        exec(compile(source.replace("str | None", "object"), "rev.py", "exec"), namespace)
        assert values["down_revision"] == namespace["down_revision"]
        assert values["revision"] == namespace["revision"]


def test_in_process_commands_leave_an_in_memory_database_alone(tmp_path, monkeypatch):
    """Engines are closed at interpreter exit, not when a command ends: a test suite
    driving ``flask db upgrade`` in process keeps its in-memory SQLite database."""
    import sqlalchemy as sa
    from flask import Flask
    from flask_sqlalchemy import SQLAlchemy

    from flask_migrate_compat import Migrate

    monkeypatch.chdir(tmp_path)
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy(app)
    Migrate(app, db)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "init"]).exit_code == 0
    write_chain(tmp_path / "migrations" / "versions", 2)
    for _ in range(2):  # the second: at head, from the cache
        result = runner.invoke(args=["db", "upgrade"])
        assert result.exit_code == 0, result.output
        with app.app_context():
            assert {"t_a001", "t_a002"} <= set(sa.inspect(db.engine).get_table_names())


def test_current_linear_set_is_alembics(tmp_path):
    """``db current``'s set of revisions, computed in linear time, is the one Alembic
    computes, for every combination of revisions on a graph with branches, a merge
    point, a branch label and a dependency on another branch."""
    import itertools

    from alembic.script import ScriptDirectory

    from flask_migrate_compat.core import _all_current

    write_graph(tmp_path / "versions", {"d": {"depends_on": "'y'"},
                                        "x": {"branch_labels": "('other',)"}})
    script = ScriptDirectory(str(tmp_path))
    for size in range(0, 4):
        for ids in itertools.combinations(sorted(GRAPH), size):
            expected = script.get_all_current(ids)
            assert _all_current(script, ids, script.get_all_current) == expected, ids


def test_cached_map_is_alembics_build(tmp_path, monkeypatch):
    """The revision map read from the cache holds what Alembic's own build of the same
    files holds: every Script's attributes, the map's keys (revisions and branch
    labels), its heads and bases, and the order of a walk over the whole graph; on a
    graph with two bases, a branch point, a merge point, branch labels, a dependency
    on another branch's label and, where Alembic reads sub-folders (1.10+), a
    revision file in one."""
    import inspect

    from alembic.script import ScriptDirectory

    from flask_migrate_compat import graph_cache

    # Alembic < 1.10 reads no sub-folder (no recursive_version_locations).
    recursive = "recursive_version_locations" in inspect.signature(ScriptDirectory).parameters
    write_graph(tmp_path / "versions", {"d": {"depends_on": "'other'"},
                                        "x": {"branch_labels": "('other',)"},
                                        "c": {"branch_labels": "('side', 'c2')"}},
                folders={"z": "sub"} if recursive else None)

    def script_directory():
        options = {"recursive_version_locations": True} if recursive else {}
        script = ScriptDirectory(str(tmp_path), **options)
        store = graph_cache.attach(script)
        script.revision_map.heads
        return script, store

    def state(script):
        revision_map = script.revision_map
        built = revision_map._revision_map
        return (
            {name: {key: value for key, value in vars(found).items() if key != "module"}
             for name, found in built.items() if found is not None},
            {name: getattr(found, "revision", found) for name, found in built.items()},
            {key: value for key, value in vars(revision_map).items()
             if key not in ("_generator", "_revision_map")},
            [found.revision for found in script.walk_revisions("base", "heads")],
            [found.revision for found in revision_map.iterate_revisions("other@head", "base")],
        )

    monkeypatch.setenv(graph_cache.NO_CACHE_ENV, "1")
    alembic_built, store = script_directory()
    assert store is None
    monkeypatch.delenv(graph_cache.NO_CACHE_ENV)
    written, store = script_directory()
    assert store is not None and store() is True  # executed every file, then stored
    cached, store = script_directory()
    assert store is None  # read from the cache
    assert all(type(found.module) is graph_cache.LazyModule
               for found in cached.revision_map._revision_map.values() if found)
    assert state(cached) == state(alembic_built) == state(written)
    assert set(cached.revision_map._revision_map) == {*GRAPH, "other", "side", "c2", None, ()}
    # A revision's module, once asked for more than the graph, is the executed file.
    c = cached.get_revision("c")
    assert callable(c.module.upgrade) and type(c.module) is not graph_cache.LazyModule
