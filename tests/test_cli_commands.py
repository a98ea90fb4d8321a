"""Every ``flask db`` command, end to end: real subprocesses on a real SQLite file,
the version table and the schema read back after each step.

The revision graph tests pin revision ids with ``--rev-id`` so that outputs can be
checked exactly.
"""
from __future__ import annotations

import shutil

import click
import pytest
import sqlalchemy as sa

from conftest import REPO, MODELS_V2, assert_one_error, init_migrations, output
from flask_migrate_compat.cli import LazyGroup
from flask_migrate_compat.cli import db as db_group

TEMPLATES = REPO / "flask_migrate_compat" / "templates"


def set_version(database, revision: str) -> None:
    with database.engine().begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :v"), {"v": revision})


def test_revision_graph_commands(project):
    database = project.database
    versions = project.path / "migrations" / "versions"
    project.flask("db", "init")
    project.flask("db", "migrate", "-m", "v1", "--rev-id", "aaaa0001")
    assert (versions / "aaaa0001_v1.py").is_file()
    project.flask("db", "upgrade")
    assert database.version() == ["aaaa0001"]

    # check: models and database agree.
    proc = project.flask("db", "check")
    assert "No new upgrade operations detected." in output(proc)

    # Two empty revisions branching from aaaa0001.
    project.flask("db", "revision", "-m", "b1", "--head", "aaaa0001", "--rev-id", "bbbb0001")
    b1 = (versions / "bbbb0001_b1.py").read_text()
    assert "down_revision = 'aaaa0001'" in b1
    assert "def upgrade():\n    pass" in b1
    # aaaa0001 is no longer a head: branching from it again needs --splice.
    proc = project.flask(
        "db", "revision", "-m", "b2", "--head", "aaaa0001", "--rev-id", "cccc0001",
        check=False,
    )
    assert_one_error(proc, "aaaa0001", "splice")
    assert not (versions / "cccc0001_b2.py").exists()
    project.flask(
        "db", "revision", "-m", "b2", "--head", "aaaa0001", "--splice",
        "--rev-id", "cccc0001",
    )
    assert "down_revision = 'aaaa0001'" in (versions / "cccc0001_b2.py").read_text()

    proc = project.flask("db", "heads")
    assert sorted(proc.stdout.split()) == sorted(
        ["bbbb0001", "(head)", "cccc0001", "(head)"]
    )
    proc = project.flask("db", "heads", "-v")
    assert "Rev: bbbb0001 (head)" in proc.stdout
    assert "Rev: cccc0001 (head)" in proc.stdout
    assert "Parent: aaaa0001" in proc.stdout
    proc = project.flask("db", "branches")
    assert "aaaa0001 (branchpoint)" in proc.stdout
    assert "-> bbbb0001 (head)" in proc.stdout
    assert "-> cccc0001 (head)" in proc.stdout
    proc = project.flask("db", "branches", "-v")
    assert "Rev: aaaa0001 (branchpoint)" in proc.stdout
    assert "Branches into: " in proc.stdout

    # Two heads: a plain upgrade refuses, with one line, and changes nothing.
    proc = project.flask("db", "upgrade", check=False)
    assert_one_error(proc, "Multiple head revisions")
    assert database.version() == ["aaaa0001"]

    proc = project.flask("db", "merge", "-m", "m", "bbbb0001", "cccc0001",
                         "--rev-id", "dddd0001")
    merge_text = (versions / "dddd0001_m.py").read_text()
    assert "down_revision = ('bbbb0001', 'cccc0001')" in merge_text
    proc = project.flask("db", "heads")
    assert proc.stdout.split() == ["dddd0001", "(head)"]
    project.flask("db", "upgrade")
    assert database.version() == ["dddd0001"]
    assert database.tables() == {"users", "alembic_version"}

    # history: newest first; a range; verbose; the current revision marked.
    proc = project.flask("db", "history")
    lines = proc.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("bbbb0001, cccc0001 -> dddd0001 (head) (mergepoint), m")
    assert lines[-1] == "<base> -> aaaa0001 (branchpoint), v1"
    proc = project.flask("db", "history", "-r", "base:aaaa0001")
    assert proc.stdout.splitlines() == ["<base> -> aaaa0001 (branchpoint), v1"]
    proc = project.flask("db", "history", "-r", "bbbb0001:head")
    assert proc.stdout.splitlines() == [
        "bbbb0001, cccc0001 -> dddd0001 (head) (mergepoint), m",
        "aaaa0001 -> bbbb0001, b1",
    ]
    proc = project.flask("db", "history", "-v")
    assert proc.stdout.count("Path: ") == 4
    proc = project.flask("db", "history", "-i")
    current_lines = [line for line in proc.stdout.splitlines() if "(current)" in line]
    assert len(current_lines) == 1 and "-> dddd0001" in current_lines[0]

    proc = project.flask("db", "current")
    assert proc.stdout.strip() == "dddd0001 (head) (mergepoint)"
    proc = project.flask("db", "current", "-v")
    assert "Rev: dddd0001 (head) (mergepoint)" in proc.stdout
    assert "Merges: bbbb0001, cccc0001" in proc.stdout
    assert "dddd0001_m.py" in proc.stdout

    proc = project.flask("db", "show", "aaaa0001")
    assert "Rev: aaaa0001 (branchpoint)" in proc.stdout
    assert "Parent: <base>" in proc.stdout
    proc = project.flask("db", "show")
    assert "Rev: dddd0001 (head) (mergepoint)" in proc.stdout

    # edit: the editor is a script that writes down the file it was given.
    opened = project.path / "opened.txt"
    editor = project.write("editor.sh", f'#!/bin/sh\necho "$1" >> {opened}\n')
    editor.chmod(0o755)
    project.flask("db", "edit", env={"EDITOR": str(editor)})
    project.manage("db", "edit", "aaaa0001", env={"EDITOR": str(editor)})
    # (Alembic passes the path as the script directory names it: relative here.)
    assert [project.path / line for line in opened.read_text().splitlines()] == [
        versions / "dddd0001_m.py", versions / "aaaa0001_v1.py"]

    # stamp moves the version table only; the schema stays as it is.
    project.flask("db", "stamp", "base")
    assert database.version() == []
    assert database.tables() == {"users", "alembic_version"}
    project.flask("db", "stamp", "aaaa0001")
    assert database.version() == ["aaaa0001"]
    project.flask("db", "stamp", "head")
    assert database.version() == ["dddd0001"]
    # An unknown revision in the table: plain stamp fails, --purge recovers.
    set_version(database, "feedface0000")
    proc = project.flask("db", "stamp", "head", check=False)
    assert_one_error(proc, "feedface0000")
    assert database.version() == ["feedface0000"]
    project.flask("db", "stamp", "--purge", "head")
    assert database.version() == ["dddd0001"]

    # The models change: check fails with one line and writes nothing ...
    project.write_app(models=MODELS_V2)
    before = project.revisions()
    proc = project.flask("db", "check", check=False)
    line = assert_one_error(proc, "New upgrade operations detected: 3 differences between "
                            "the models and the database: ")
    # In words, in a stable order, not the operations' repr (memory addresses).
    assert "column users.email is in the models, not the database" in line
    assert "table 'posts' is in the models, not the database" in line
    assert " at 0x" not in line
    assert project.revisions() == before
    assert database.tables() == {"users", "alembic_version"}

    # ... revision --autogenerate writes the change (as migrate does) ...
    project.flask("db", "revision", "--autogenerate", "-m", "auto", "--rev-id", "eeee0001")
    auto = (versions / "eeee0001_auto.py").read_text()
    assert "down_revision = 'dddd0001'" in auto
    assert "op.create_table('posts'" in auto
    assert "type_=sa.String(length=120)" in auto
    project.flask("db", "upgrade")
    assert database.tables() == {"users", "posts", "alembic_version"}
    assert database.columns("users")["name"]["type"].length == 120
    # ... and check passes again.
    proc = project.flask("db", "check")
    assert "No new upgrade operations detected." in output(proc)


X_ARG_REVISION = '''\
"""x-arguments and tags reach the revision through the environment."""
from alembic import context, op
import sqlalchemy as sa

revision = "ffff0001"
down_revision = None
branch_labels = None
depends_on = None


def table_name():
    return context.get_x_argument(as_dictionary=True).get(
        "table", context.get_tag_argument() or "default_table"
    )


def upgrade():
    op.create_table(table_name(), sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table(table_name())
'''


def test_x_arguments_and_tag(project):
    database = project.database
    project.flask("db", "init")
    project.write("migrations/versions/ffff0001_xarg.py", X_ARG_REVISION)

    # On the command.
    project.flask("db", "upgrade", "-x", "table=from_command")
    assert database.tables() == {"from_command", "alembic_version"}
    project.flask("db", "downgrade", "-x", "table=from_command")
    assert database.tables() == {"alembic_version"}

    # On the group (Flask-Migrate's `flask db -x ... upgrade`).
    project.flask("db", "-x", "table=from_group", "upgrade")
    assert database.tables() == {"from_group", "alembic_version"}
    project.flask("db", "-x", "table=from_group", "downgrade", "base")
    assert database.tables() == {"alembic_version"}

    # Offline mode sees them too; --tag reaches context.get_tag_argument().
    proc = project.flask("db", "-x", "table=from_sql", "upgrade", "--sql")
    assert "CREATE TABLE from_sql" in proc.stdout
    project.flask("db", "upgrade", "--tag", "from_tag")
    assert database.tables() == {"from_tag", "alembic_version"}
    assert database.version() == ["ffff0001"]


def test_init_variants_and_templates(project):
    # Every template this package ships, each with the first line of its README.
    listing = "".join(
        f"{name} - {(TEMPLATES / name / 'README').read_text().splitlines()[0]}\n"
        for name in ("flask", "flask-multidb"))
    assert sorted(p.name for p in TEMPLATES.iterdir() if (p / "README").is_file()) == [
        "flask", "flask-multidb"]
    proc = project.flask("db", "list-templates")
    assert proc.stdout == "Available templates:\n\n" + listing
    assert project.manage("db", "list-templates").stdout == proc.stdout

    project.flask("db", "init", "--package", "-d", "pkg")
    assert (project.path / "pkg" / "__init__.py").is_file()
    assert (project.path / "pkg" / "versions" / "__init__.py").is_file()
    assert (project.path / "pkg" / "env.py").is_file()

    project.flask("db", "init", "-t", "flask-multidb", "-d", "multi")
    assert "SQLALCHEMY_BINDS" in (project.path / "multi" / "env.py").read_text()
    assert "bind_names()" in (project.path / "multi" / "script.py.mako").read_text()
    assert not (project.path / "multi" / "__init__.py").exists()

    project.flask("db", "init", "-d", "single")
    assert "SQLALCHEMY_BINDS" not in (project.path / "single" / "env.py").read_text()

    # A template given as a path to a folder of one's own.
    custom = project.path / "templates" / "house"
    shutil.copytree(project.path / "single", custom, ignore=shutil.ignore_patterns(
        "versions", "alembic.ini"))
    shutil.copy(project.path / "single" / "alembic.ini", custom / "alembic.ini.mako")
    (custom / "env.py").write_text(
        "# house template\n" + (custom / "env.py").read_text()
    )
    project.flask("db", "init", "-t", "templates/house", "-d", "from_house")
    assert (project.path / "from_house" / "env.py").read_text().startswith("# house template")

    # The custom script directory works: migrate and upgrade through it.
    project.flask("db", "migrate", "-d", "from_house", "-m", "v1")
    project.flask("db", "upgrade", "-d", "from_house")
    assert project.database.tables() == {"users", "alembic_version"}


def test_branch_labels_version_paths_and_dependencies(project):
    """Real runs of ``revision --branch-label --version-path``, ``heads
    --resolve-dependencies`` and ``upgrade <label>@head``, both front ends."""
    migrations = init_migrations(project)
    versions, lib_versions = migrations / "versions", migrations / "lib_versions"
    lib_versions.mkdir()
    ini = migrations / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", (
        "[alembic]\n"
        "version_locations = %(here)s/versions %(here)s/lib_versions\n"
        "path_separator = space\n"), 1))

    def write(rev, down, depends_on=None):
        project.write(f"migrations/versions/{rev}_.py", (
            f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
            f"depends_on = {depends_on!r}\n\n\n"
            "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"))

    write("app1", None)
    # A new branch from base, labelled, written to the second version location.
    project.manage("db", "revision", "-m", "lib", "--head", "base", "--rev-id", "lib1",
                   "--branch-label", "lib", "--version-path", str(lib_versions))
    (written,) = lib_versions.glob("lib1_*.py")
    assert "branch_labels = ('lib',)" in written.read_text()
    assert not list(versions.glob("lib1_*.py"))
    write("app2", "app1", depends_on="lib1")

    # Two heads; app2 depends on lib1, so resolving dependencies leaves one.
    assert sorted(project.flask("db", "heads").stdout.splitlines()) == [
        "app2 (head)", "lib1 (lib) (effective head)"]
    resolved = project.manage("db", "heads", "--resolve-dependencies").stdout
    assert resolved.splitlines() == ["app2 (head)"]

    # The label names the branch: only lib1 is applied.
    project.flask("db", "upgrade", "lib@head")
    assert project.database.version() == ["lib1"]


# -- the lazy group: only the command that runs is built -----------------------------

# ``flask`` itself, reporting at exit which commands of ``flask db`` were built.
BUILT_PROBE = '''\
import atexit
import sys

from flask.cli import main
from flask_migrate_compat.cli import db

atexit.register(lambda: print("built:", ",".join(sorted(db._built)), file=sys.stderr))
sys.argv[0] = "flask"
main()
'''


def built(proc) -> list[str]:
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("built:"), proc.stderr
    return [name for name in line[len("built:"):].strip().split(",") if name]


def test_help_lists_every_command_and_builds_none(project):
    project.write("probe.py", BUILT_PROBE)
    names = db_group.list_commands(click.Context(db_group))
    assert len(names) == 19

    proc = project.run("probe.py", "db", "--help", env={"COLUMNS": "80"})
    assert built(proc) == []
    listing = proc.stdout.split("Commands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listing] == names
    assert "  upgrade         Upgrade the database to a later revision (default: head)." \
        in listing
    # 'flask db' alone: the same help, built from nothing. Click 8.2 prints it on stderr
    # with exit code 2 (a usage error); 8.1 (the newest on Python 3.9) on stdout, 0.
    from importlib.metadata import version

    click_8_2 = tuple(int(part) for part in version("click").split(".")[:2]) >= (8, 2)
    bare = project.run("probe.py", "db", check=False, env={"COLUMNS": "80"})
    assert bare.returncode == (2 if click_8_2 else 0)
    assert built(bare) == []
    assert (bare.stderr if click_8_2 else bare.stdout).startswith(proc.stdout)

    project.flask("db", "init")
    assert built(project.run("probe.py", "db", "upgrade")) == ["upgrade"]
    assert built(project.run("probe.py", "db", "current", "--help")) == ["current"]
    unknown = project.run("probe.py", "db", "nosuch", check=False)
    assert unknown.returncode == 2 and built(unknown) == []


@pytest.mark.parametrize("width", [30, 50, 80, 120, 200])
def test_listed_short_help_is_the_built_commands(width):
    """The listing takes each short help from the callback's docstring without building
    the command: it must read as the built command's get_short_help_str(), at every
    width (Click shortens it to fit)."""
    lazy = LazyGroup("db", params=db_group.params, help=db_group.help)
    lazy.lazy.update(db_group.lazy)
    text = lazy.get_help(click.Context(lazy, info_name="db", terminal_width=width))
    assert lazy._built == {}
    built_commands = {name: lazy.build(name) for name in lazy.lazy}
    eager = click.Group("db", params=db_group.params, help=db_group.help,
                        commands=built_commands)
    assert text == eager.get_help(click.Context(eager, info_name="db", terminal_width=width))
    longest = max(map(len, built_commands))
    for name, command in built_commands.items():
        assert not command.hidden
        if width >= 80:  # narrower, Click wraps a row over two lines
            row = f"  {name:{longest}}  {command.get_short_help_str(width - 6 - longest)}"
            assert row in text.splitlines()
