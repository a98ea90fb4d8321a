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
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa

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


@pytest.mark.parametrize("front_end, command", [
    ("flask", ["upgrade"]),
    ("flask", ["downgrade", "base"]),
    ("flask", ["stamp", "head"]),
    ("manage", ["upgrade"]),
    ("manage", ["stamp", "base"]),
])
def test_refused_naming_both_paths(trapped, front_end, command):
    old = trapped.path / "app.db"
    new = trapped.path / "instance" / "app.db"
    before = state(old)
    run = trapped.flask if front_end == "flask" else trapped.manage
    proc = run("db", *command, check=False)
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
    assert version_of(project.path / "instance" / "app.db") == ["ce96f271a8d0"]
    assert (project.path / "app.db").read_bytes() == b""


def test_absolute_uri_fix_uses_the_old_file(trapped):
    old = trapped.path / "app.db"
    proc = trapped.flask("db", "current", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert f"{HEAD} (head)" in proc.stdout
    trapped.flask("db", "downgrade", "base", env={"DATABASE_URL": f"sqlite:///{old}"})
    assert version_of(old) == []
    assert not (trapped.path / "instance" / "app.db").exists()
