"""manage_example.py, the design card's example, as README.rst tells users to run it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from conftest import REPO

EXAMPLE = str(REPO / "manage_example.py")
HEAD = "a9afc359c750"  # newest revision of example_migrations/


@pytest.fixture
def run(tmp_path):
    """Run manage_example.py (or ``flask --app manage_example``) on a fresh SQLite file."""
    database = tmp_path / "example.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLASK_")}
    env.update(DATABASE_URL=f"sqlite:///{database}", PYTHONPATH=str(REPO))

    def runner(*args, flask=False, extra_env=None, check=True):
        argv = [sys.executable, "-m", "flask", "--app", "manage_example"] if flask else \
            [sys.executable, EXAMPLE]
        proc = subprocess.run([*argv, *args], cwd=tmp_path, capture_output=True, text=True,
                              env={**env, **(extra_env or {})}, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    runner.engine = lambda: sa.create_engine(f"sqlite:///{database}")
    runner.tmp_path = tmp_path
    return runner


def test_readme_first_command_migrates_from_nothing_to_head(run):
    run("db", "upgrade")
    inspector = sa.inspect(run.engine())
    assert set(inspector.get_table_names()) == {"authors", "books", "alembic_version"}
    assert "published" in {c["name"] for c in inspector.get_columns("books")}
    assert [i["name"] for i in inspector.get_indexes("books")] == ["ix_books_published"]
    assert run("db", "current").stdout.split()[0] == HEAD
    assert run("db", "current", flask=True).stdout.split()[0] == HEAD
    # The models match the committed revisions: nothing to autogenerate.
    run("db", "check")


def test_custom_commands_and_downgrade(run):
    run("db", "upgrade")
    assert run("seed").stdout.strip() == "2 books"
    assert run("hello", "-n", "legacy").stdout.strip() == "hello legacy"
    run("db", "downgrade", "base")
    assert sa.inspect(run.engine()).get_table_names() == ["alembic_version"]


def test_custom_commands_through_flask(run):
    """The bridge: manage_example.py's own commands are flask commands too, unedited."""
    run("db", "upgrade", flask=True)
    assert run("seed", flask=True).stdout == "2 books\n"
    assert run("hello", "-n", "bridge", flask=True).stdout == "hello bridge\n"
    assert run("hello", flask=True).stdout == run("hello").stdout == "hello world\n"
    with run.engine().connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM books")).scalar() == 2


def test_init_migrate_upgrade_downgrade_from_scratch(run):
    """The 'Done when' sequence of the Flask-Script issue, on a new migrations folder."""
    fresh = {"EXAMPLE_MIGRATIONS": str(run.tmp_path / "fresh")}
    run("db", "init", extra_env=fresh)
    run("db", "migrate", "-m", "everything", extra_env=fresh)
    run("db", "upgrade", extra_env=fresh)
    assert {"authors", "books"} <= set(sa.inspect(run.engine()).get_table_names())
    run("db", "downgrade", extra_env=fresh)
    assert sa.inspect(run.engine()).get_table_names() == ["alembic_version"]
