"""The package as users get it: a wheel built from this repository, installed into a
fresh virtual environment (its dependencies fetched by pip), then driven with that
environment's Python. This proves that the templates ship in the wheel, and that
importing the package and asking ``flask db --help`` stay light (no Alembic).

The wheel and the environment are built once per test session.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import REPO

TEMPLATE_FILES = ("env.py", "script.py.mako", "alembic.ini.mako", "README")

# Copied to a scratch folder before building, so that the build leaves nothing
# (build/, *.egg-info) in the working tree that other sessions use.
IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", ".nox", ".venv", ".ci-venv",
    ".pytest_cache", "__pycache__", "*.pyc", "*.db",
)


def _check_run(args, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin") / (
        "python.exe" if os.name == "nt" else "python"
    )


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repository (``pip wheel --no-deps``)."""
    scratch = tmp_path_factory.mktemp("wheel")
    source = scratch / "source"
    shutil.copytree(REPO, source, ignore=IGNORE)
    out = scratch / "dist"
    _check_run([
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
        "-q", "-w", str(out), str(source),
    ], timeout=600)
    (built,) = out.glob("flask_migrate_compat-*.whl")
    return built


@pytest.fixture(scope="session")
def wheel_python(tmp_path_factory, wheel) -> Path:
    """The Python of a clean virtual environment (no system site-packages) where
    ``pip install <wheel>`` fetched the dependencies."""
    venv = tmp_path_factory.mktemp("venv") / "env"
    _check_run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    python = _venv_python(venv)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_USER")}
    _check_run([
        str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
        str(wheel),
    ], env=env, timeout=600)
    return python


def wheel_run(project, python: Path, *args: str, check: bool = True):
    """Like ``project.run`` but with the wheel environment's Python."""
    env = {k: v for k, v in project.env.items() if k != "VIRTUAL_ENV"}
    proc = subprocess.run(
        [str(python), *args], cwd=project.path, env=env, capture_output=True, text=True,
        timeout=120,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{python} {' '.join(args)} exited {proc.returncode}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in ("flask", "flask-multidb"):
        for name in TEMPLATE_FILES:
            assert f"flask_migrate_compat/templates/{template}/{name}" in names, names
    for module in ("__init__.py", "core.py", "cli.py", "config.py"):
        assert f"flask_migrate_compat/{module}" in names
    # The Flask-Script import hook's .pth sits at the root of site-packages.
    assert "flask_migrate_compat.pth" in names
    assert not [n for n in names if n.startswith("tests/") or n.endswith(".pyc")]
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    for requirement in ("Flask", "Flask-SQLAlchemy", "SQLAlchemy", "alembic", "libcst"):
        assert f"Requires-Dist: {requirement}" in text


def test_installed_wheel_runs_migrations(wheel_python, make_project, make_database):
    project = make_project(make_database("sqlite"))
    venv_root = wheel_python.parent.parent
    proc = wheel_run(project, wheel_python, "-c", (
        "import flask_migrate_compat, alembic, sys; "
        "print(flask_migrate_compat.__file__); print(alembic.__file__)"
    ))
    for path in proc.stdout.split():
        # The installed copy, not the repository's, and not the test venv's packages.
        assert Path(path).resolve().is_relative_to(venv_root.resolve()), proc.stdout

    wheel_run(project, wheel_python, "-m", "flask", "db", "init")
    for name in ("env.py", "script.py.mako", "alembic.ini", "README"):
        assert (project.path / "migrations" / name).is_file()
    wheel_run(project, wheel_python, "-m", "flask", "db", "migrate", "-m", "v1")
    (revision,) = project.revisions()
    assert "op.create_table('users'" in revision.read_text()
    wheel_run(project, wheel_python, "-m", "flask", "db", "upgrade")
    assert project.database.tables() == {"users", "alembic_version"}
    assert project.database.columns("users")["name"]["type"].length == 50

    project.flask("db", "list-templates")  # the repository's copy agrees
    proc = wheel_run(project, wheel_python, "-m", "flask", "db", "list-templates")
    assert "flask - " in proc.stdout and "flask-multidb - " in proc.stdout


LIGHT_IMPORT = """\
import sys

def loaded(name):
    return [m for m in sys.modules if m == name or m.startswith(name + ".")]

assert not loaded("alembic") and not loaded("flask"), "at start"
import flask_migrate_compat
assert not loaded("alembic"), loaded("alembic")
assert not loaded("flask"), loaded("flask")
assert not loaded("flask_script")
from flask_migrate_compat import Migrate, upgrade
assert loaded("flask")
assert not loaded("alembic"), loaded("alembic")
print("LIGHT")
"""

ATEXIT_APP_LINES = '''\
import atexit
import sys

atexit.register(lambda: print("ALEMBIC-COMMAND-LOADED:", "alembic.command" in sys.modules))
'''


@pytest.mark.parametrize("where", ["repository", "wheel"])
def test_imports_stay_light(where, request, make_project, make_database):
    project = make_project(make_database("sqlite"))
    text = (project.path / "app.py").read_text()
    project.write("app.py", ATEXIT_APP_LINES + text)
    if where == "wheel":
        python = request.getfixturevalue("wheel_python")

        def run(*args, **kwargs):
            return wheel_run(project, python, *args, **kwargs)
    else:
        run = project.run

    proc = run("-c", LIGHT_IMPORT)
    assert "LIGHT" in proc.stdout

    proc = run("-m", "flask", "db", "--help")
    assert "upgrade" in proc.stdout and "migrate" in proc.stdout
    assert "ALEMBIC-COMMAND-LOADED: False" in proc.stdout
    proc = run("-m", "flask", "db", "upgrade", "--help")
    assert "--sql" in proc.stdout
    assert "ALEMBIC-COMMAND-LOADED: False" in proc.stdout
    # The probe does see Alembic when a command needs it.
    proc = run("-m", "flask", "db", "init")
    assert "ALEMBIC-COMMAND-LOADED: True" in proc.stdout
