"""User-caused errors of ``flask db``: each one exits with code 1, prints exactly one
``Error: ...`` line on stderr, shows no traceback, never shows a password, and leaves
the database (and the script directory) as it was.
"""
from __future__ import annotations

import socket

import pytest

from conftest import POSTGRES_SCHEME, assert_one_error, output

BROKEN_REVISION = '''\
"""A revision with a syntax error."""
revision = "bad00001"
down_revision = "aaaa0001"


def upgrade(:
    pass
'''



def snapshot(database) -> tuple:
    """Everything an error must leave alone: tables, their columns, the version."""
    tables = database.tables()
    columns = {t: sorted(database.columns(t)) for t in tables}
    version = database.version() if "alembic_version" in tables else None
    return tables, columns, version


def closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def migrated(project):
    """A project at revision aaaa0001 (the users table)."""
    project.flask("db", "init")
    project.flask("db", "migrate", "-m", "v1", "--rev-id", "aaaa0001")
    project.flask("db", "upgrade")
    assert project.database.version() == ["aaaa0001"]
    return project


def test_user_errors_leave_everything_alone(migrated):
    project = migrated
    database = project.database
    before = snapshot(database)
    env_py = (project.path / "migrations" / "env.py").read_text()
    files = sorted(p.name for p in (project.path / "migrations").rglob("*"))

    # init over an existing, non-empty script directory.
    proc = project.flask("db", "init", check=False)
    assert_one_error(proc, "migrations", "not empty")
    assert (project.path / "migrations" / "env.py").read_text() == env_py
    assert sorted(p.name for p in (project.path / "migrations").rglob("*")) == files

    # Unknown revisions.
    for args in (
        ("upgrade", "nope"),
        ("downgrade", "nope"),
        ("stamp", "nope"),
        ("show", "nope"),
        ("upgrade", "--sql", "nope"),
    ):
        proc = project.flask("db", *args, check=False)
        assert_one_error(proc, "'nope'")
        assert snapshot(database) == before, args

    # A missing script directory names the folder and the way out.
    for args in (("upgrade", "-d", "missing"), ("-d", "missing", "history")):
        proc = project.flask("db", *args, check=False)
        assert_one_error(proc, "'missing'", "not found", "init")
        assert not (project.path / "missing").exists()
    assert snapshot(database) == before

    # The traceback is there for whoever asks for it.
    proc = project.flask(
        "db", "upgrade", "nope", check=False, env={"FLASK_MIGRATE_COMPAT_TRACEBACK": "1"}
    )
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "CommandError" in proc.stderr

    assert snapshot(database) == before
    assert sorted(p.name for p in (project.path / "migrations").rglob("*")) == files


def test_missing_migrations_folder_in_fresh_project(project):
    proc = project.flask("db", "upgrade", check=False)
    assert_one_error(proc, "'migrations'", "not found", "db init")
    proc = project.flask("db", "migrate", check=False)
    assert_one_error(proc, "'migrations'", "not found")
    assert project.database.tables() == set()
    assert not (project.path / "migrations").exists()


def test_unreachable_database(migrated, tmp_path):
    project = migrated
    before = snapshot(project.database)
    password = "s3cr3t-Pw"
    unreachable = {
        "postgresql": f"{POSTGRES_SCHEME}://fmc:{password}@127.0.0.1:{closed_port()}/nodb",
        "sqlite": f"sqlite:///{tmp_path}/no_such_directory/app.db",
    }
    for kind, url in unreachable.items():
        for args in (("upgrade",), ("current",), ("migrate", "-m", "x")):
            proc = project.flask("db", *args, check=False, env={"DATABASE_URL": url})
            line = assert_one_error(proc)
            assert password not in output(proc)
            if kind == "sqlite":
                assert "unable to open database file" in line
            else:
                assert "127.0.0.1" in line and "refused" in line, line
    assert not (tmp_path / "no_such_directory").exists()
    # Nothing was written by the failed migrate.
    assert [p.name for p in project.revisions()] == ["aaaa0001_v1.py"]
    assert snapshot(project.database) == before


def test_broken_revision_script_is_named(migrated):
    project = migrated
    before = snapshot(project.database)
    broken = project.write("migrations/versions/bad00001_broken.py", BROKEN_REVISION)
    for args in (("upgrade",), ("history",), ("migrate", "-m", "x")):
        proc = project.flask("db", *args, check=False)
        line = assert_one_error(proc, "SyntaxError", f"({broken}, line 6)")
        assert line.count("bad00001_broken.py") == 1, line
    assert snapshot(project.database) == before
    assert len(project.revisions()) == 2
