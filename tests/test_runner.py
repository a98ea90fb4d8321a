"""The zero-edit runner: an unmodified Flask-Script manage.py (``from flask_migrate
import Migrate, MigrateCommand``, ``from flask_script import Manager``) driven through
``python -m flask_migrate_compat manage.py ...`` and the ``flask-migrate-compat``
console script: in this venv, where Flask-Migrate is not installed, and with the real
Flask-Migrate 4.1 (no ``MigrateCommand``: served by this package) and 2.7 (has one:
left alone) put first on the path.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import project_env, skip_or_fail

FIXTURES = Path(__file__).resolve().parent / "fixtures"
CONSOLE_SCRIPT = Path(sys.executable).with_name("flask-migrate-compat")
SERVED = "flask-migrate-compat: imports served:"


@pytest.fixture
def legacy(tmp_path, sqlite_db):
    """A folder holding the untouched legacy manage.py; ``run(*args, via=...)``."""
    folder = tmp_path / "legacy"
    folder.mkdir()
    shutil.copy(FIXTURES / "legacy_manage" / "manage.py", folder / "manage.py")
    env = project_env(folder, sqlite_db)
    env.pop("PYTHONPATH")  # the runner must put the script's folder on sys.path itself

    def run(*args, via="module", cwd=folder, check=True, extra_env=None):
        if via == "module":
            command = [sys.executable, "-m", "flask_migrate_compat", *args]
        else:
            command = [str(CONSOLE_SCRIPT), *args]
        proc = subprocess.run(command, cwd=cwd, env={**env, **(extra_env or {})},
                              capture_output=True, text=True, timeout=120)
        if check:
            assert proc.returncode == 0, proc.stdout + proc.stderr
        return proc

    return folder, sqlite_db, run


@pytest.fixture(scope="session")
def flask_migrate_release(tmp_path_factory):
    """Factory: ``version -> folder`` holding that real Flask-Migrate release, installed
    once per session with ``pip install --no-deps --target`` (its dependencies are this
    venv's; 2.7 needs Flask-Script, which the test extras have)."""
    root = tmp_path_factory.mktemp("flask_migrate_releases")
    installed: dict[str, Path] = {}

    def get(version: str) -> Path:
        if version not in installed:
            target = root / version
            proc = subprocess.run(
                [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                 "--disable-pip-version-check", "--target", str(target),
                 f"Flask-Migrate=={version}"],
                capture_output=True, text=True, timeout=300)
            if proc.returncode != 0:
                skip_or_fail(f"cannot install Flask-Migrate {version}: {proc.stderr[-500:]}")
            installed[version] = target
        return installed[version]

    return get


def test_runner_serves_flask_migrate_when_the_installed_one_has_no_migrate_command(
        legacy, flask_migrate_release):
    folder, database, run = legacy
    release = {"PYTHONPATH": str(flask_migrate_release("4.1.0"))}
    proc = run("manage.py", "where", extra_env=release)
    ours = Path(__file__).resolve().parent.parent / "flask_migrate_compat" / "__init__.py"
    assert f"MIGRATE={ours}\n" in proc.stdout
    served = [line for line in proc.stderr.splitlines() if line.startswith(SERVED)]
    assert served == [f"{SERVED} flask_migrate -> flask_migrate_compat (the installed "
                      "Flask-Migrate 4.1.0 has no MigrateCommand)"]


def test_runner_leaves_flask_migrate_2_alone(legacy, flask_migrate_release):
    """Flask-Migrate 2.x has its own MigrateCommand: the runner only shims Flask-Script
    for it, and the real 2.7 migrates the database."""
    folder, database, run = legacy
    target = flask_migrate_release("2.7.0")
    release = {"PYTHONPATH": str(target)}
    proc = run("manage.py", "where", extra_env=release)
    assert f"MIGRATE={target / 'flask_migrate' / '__init__.py'}\n" in proc.stdout
    assert SERVED not in proc.stderr
    for args in (["db", "init"], ["db", "migrate", "-m", "notes"], ["db", "upgrade"]):
        proc = run("manage.py", *args, extra_env=release)
        assert SERVED not in proc.stderr
    assert database.tables() == {"alembic_version", "notes"}
    # Flask-Migrate 2.7's own template wrote the script directory, not ours.
    assert "flask_migrate_compat" not in (folder / "migrations" / "env.py").read_text()


def test_unmodified_manage_py_full_cycle(legacy):
    folder, database, run = legacy
    original = (folder / "manage.py").read_bytes()
    v2 = {"NOTES_V2": "1"}

    proc = run("manage.py", "db", "init")
    assert (folder / "migrations" / "env.py").is_file()
    assert proc.stderr.count(SERVED) == 1
    assert "flask_migrate -> flask_migrate_compat" in proc.stderr
    assert "Flask-Migrate is not installed" in proc.stderr

    run("manage.py", "db", "migrate", "-m", "notes")
    run("manage.py", "db", "upgrade", via="console")
    assert database.tables() == {"alembic_version", "notes"}
    run("manage.py", "db", "migrate", "-m", "author", extra_env=v2)
    assert len(list((folder / "migrations" / "versions").glob("*.py"))) == 2
    run("manage.py", "db", "upgrade", extra_env=v2)
    assert "author" in database.columns("notes")
    run("manage.py", "db", "downgrade", extra_env=v2, via="console")
    assert "author" not in database.columns("notes")
    run("manage.py", "db", "downgrade", "base")
    assert database.tables() == {"alembic_version"}
    assert (folder / "manage.py").read_bytes() == original


@pytest.mark.parametrize("via", ["module", "console"])
def test_script_sees_python_manage_py_semantics(legacy, tmp_path, via):
    folder, _, run = legacy
    # Run from another working directory with a relative path, like 'python x/manage.py'.
    proc = run(os.path.join("legacy", "manage.py"), "where", cwd=tmp_path, via=via)
    ours = Path(__file__).resolve().parent.parent / "flask_migrate_compat" / "__init__.py"
    assert f"FILE={folder / 'manage.py'} NAME=__main__ PATH0={folder} MIGRATE={ours}\n" \
        in proc.stdout
    assert SERVED in proc.stderr


def test_flask_ext_spellings(tmp_path, sqlite_db):
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copy(FIXTURES / "legacy_manage_flask_ext" / "manage.py", folder / "manage.py")
    env = project_env(folder, sqlite_db)
    for args in (["db", "init"], ["db", "migrate"], ["db", "upgrade"]):
        proc = subprocess.run([sys.executable, "-m", "flask_migrate_compat", "manage.py", *args],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        served = [line for line in proc.stderr.splitlines() if line.startswith(SERVED)]
        assert len(served) == 1
        for alias in ("flask.ext.sqlalchemy -> flask_sqlalchemy",
                      "flask.ext.script -> flask_script",
                      "flask.ext.migrate -> flask_migrate_compat"):
            assert alias in served[0]
    assert sqlite_db.tables() == {"alembic_version", "notes"}


def test_missing_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "flask_migrate_compat", "nope/manage.py",
                           "db", "upgrade"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"Error: script 'nope/manage.py' not found (looked in {tmp_path / 'nope' / 'manage.py'})"
    ]


def test_finder_inactive_outside_the_runner():
    """Outside the runner, nothing redirects: plain Python has no flask_migrate here."""
    proc = subprocess.run([sys.executable, "-c", "import flask_migrate"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "ModuleNotFoundError" in proc.stderr


def test_script_sees_what_python_manage_py_would_show(tmp_path):
    """sys.argv, __file__, sys.path[0] and __name__ match a plain ``python manage.py``."""
    script = tmp_path / "sub" / "manage.py"
    script.parent.mkdir()
    script.write_text(
        "import sys\n"
        "print(sys.argv, __file__, sys.path[0], __name__, sep='|')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    plain = subprocess.run([sys.executable, "sub/manage.py", "db", "upgrade"], cwd=tmp_path,
                           capture_output=True, text=True, env=env, check=True, timeout=60)
    runner = subprocess.run(
        [sys.executable, "-m", "flask_migrate_compat", "sub/manage.py", "db", "upgrade"],
        cwd=tmp_path, capture_output=True, text=True, env=env, check=True, timeout=60)
    assert runner.stdout == plain.stdout
    assert plain.stdout.startswith("['sub/manage.py', 'db', 'upgrade']|")
