"""The relative SQLite path trap (Flask-SQLAlchemy 2 -> 3).

``sqlite:///app.db`` meant ``./app.db`` under Flask-SQLAlchemy 2 and means
``instance/app.db`` under 3. A project whose migrated database is ``./app.db`` must not
silently get a fresh, empty ``instance/app.db`` migrated instead: upgrade, downgrade and
stamp stop with one line naming both paths and the fixes, touching neither file, unless
``--use-new-sqlite-path`` is given.

The migrations folder is the Flask-Migrate 1.x fixture, whose env.py passes the raw
``SQLALCHEMY_DATABASE_URI`` to Alembic: with the override, the migrated file must be
the one the application uses (instance/), not the one the raw URI names from the
working directory.

On Flask-SQLAlchemy 2 (the oldest supported stack) nothing moved: the application
itself uses ``app.root_path``/app.db, which in these projects is ./app.db, the migrated
database. There the commands are not refused and act on ./app.db; ``instance/`` is
never created. Wherever the command is run from, the migrated file is the one the
application uses (README "The oldest supported stack", "Relative SQLite path").
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import FLASK_SQLALCHEMY_2

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HEAD = "3b5d08f1c2e4"


def state(path: Path):
    """(bytes, mtime) of a file, or None when it does not exist."""
    return (path.read_bytes(), path.stat().st_mtime_ns) if path.exists() else None


def version_of(path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{path}", poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(sa.text("SELECT version_num FROM alembic_version"))]


@pytest.fixture
def trapped(project):
    """A project whose migrated database is ./app.db (made the Flask-SQLAlchemy 2 way:
    an absolute URI), now configured with the relative ``sqlite:///app.db``."""
    shutil.copytree(FIXTURES / "legacy_1x" / "migrations", project.path / "migrations")
    project.write_app(models=(FIXTURES / "legacy_1x" / "models.py").read_text())
    old = project.path / "app.db"
    project.flask("db", "upgrade", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert version_of(old) == [HEAD]
    project.env["DATABASE_URL"] = "sqlite:///app.db"
    return project


@pytest.mark.parametrize("front_end, command, version_after", [
    ("flask", ["upgrade"], [HEAD]),
    ("flask", ["downgrade", "base"], []),
    ("flask", ["stamp", "head"], [HEAD]),
    ("manage", ["upgrade"], [HEAD]),
    ("manage", ["stamp", "base"], []),
])
def test_refused_naming_both_paths(trapped, front_end, command, version_after):
    old = trapped.path / "app.db"
    new = trapped.path / "instance" / "app.db"
    before = state(old)
    run = trapped.flask if front_end == "flask" else trapped.manage
    proc = run("db", *command, check=False)
    if FLASK_SQLALCHEMY_2:
        # The application's sqlite:///app.db is ./app.db (its root folder), the
        # migrated database: nothing to refuse, and the command acts on it.
        assert proc.returncode == 0, proc.stderr
        assert "Error" not in proc.stderr
        assert version_of(old) == version_after
        assert not new.parent.exists()
        return
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), proc.stderr
    assert str(old) in lines[0] and str(new) in lines[0]
    assert f"'sqlite:///{old}'" in lines[0]  # fix 1: an absolute URI
    assert f"move {old} to {new}" in lines[0]  # fix 2: move the file
    assert "--use-new-sqlite-path" in lines[0]
    assert "Traceback" not in proc.stderr
    assert state(old) == before
    assert not new.exists()


@pytest.mark.parametrize("front_end", ["flask", "manage"])
def test_override_migrates_the_instance_file(trapped, front_end):
    old = trapped.path / "app.db"
    new = trapped.path / "instance" / "app.db"
    before = state(old)
    run = trapped.flask if front_end == "flask" else trapped.manage
    run("db", "upgrade", "--use-new-sqlite-path")
    if FLASK_SQLALCHEMY_2:
        # No new path: the option is accepted and the application's file, ./app.db,
        # stays the one migrated.
        assert version_of(old) == [HEAD]
        trapped.manage("db", "downgrade", "base")
        assert version_of(old) == []
        trapped.flask("db", "upgrade", "--use-new-sqlite-path")
        assert version_of(old) == [HEAD]
        assert not new.parent.exists()
        return
    assert version_of(new) == [HEAD]
    assert state(old) == before
    # The new file has migrations now: no more refusal, no option needed.
    trapped.manage("db", "downgrade", "base")
    assert version_of(new) == []
    trapped.flask("db", "upgrade")
    assert version_of(new) == [HEAD]
    assert state(old) == before


def test_no_refusal_without_an_old_database(project):
    shutil.copytree(FIXTURES / "legacy_2_7" / "migrations", project.path / "migrations")
    project.write_app(models=(FIXTURES / "legacy_2_7" / "models.py").read_text())
    project.env["DATABASE_URL"] = "sqlite:///app.db"
    (project.path / "app.db").write_bytes(b"")  # a file, but no version table
    project.flask("db", "upgrade")
    if FLASK_SQLALCHEMY_2:
        # The application's file is ./app.db: migrated, no instance folder.
        assert version_of(project.path / "app.db") == ["ce96f271a8d0"]
        assert not (project.path / "instance").exists()
        return
    assert version_of(project.path / "instance" / "app.db") == ["ce96f271a8d0"]
    assert (project.path / "app.db").read_bytes() == b""


def test_absolute_uri_fix_uses_the_old_file(trapped):
    old = trapped.path / "app.db"
    proc = trapped.flask("db", "current", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert f"{HEAD} (head)" in proc.stdout
    trapped.flask("db", "downgrade", "base", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert version_of(old) == []
    assert not (trapped.path / "instance" / "app.db").exists()


@pytest.mark.parametrize("fixture, head", [("legacy_1x", HEAD), ("legacy_2_7", "ce96f271a8d0")])
def test_run_from_another_directory_migrates_the_application_file(project, fixture, head):
    """``flask db upgrade`` run from the project's parent folder: the env.py of
    Flask-Migrate 1.x-2.4 hands the raw ``sqlite:///app.db`` to Alembic, which alone
    would open it from the working directory; the file migrated must still be the one
    the application uses (Flask-SQLAlchemy 3: the instance folder; 2: the root folder),
    and no ``app.db`` may appear in the working directory."""
    shutil.copytree(FIXTURES / fixture / "migrations", project.path / "migrations")
    project.write_app(models=(FIXTURES / fixture / "models.py").read_text())
    project.env["DATABASE_URL"] = "sqlite:///app.db"
    elsewhere = project.path.parent
    proc = subprocess.run(
        [sys.executable, "-m", "flask", "db", "upgrade", "-d",
         str(project.path / "migrations")],
        cwd=elsewhere, env=project.env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    used = project.path / ("app.db" if FLASK_SQLALCHEMY_2 else "instance/app.db")
    assert version_of(used) == [head]
    assert not (elsewhere / "app.db").exists()
