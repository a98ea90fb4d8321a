"""Nox sessions: the Flask-Script flow and the import hook on every supported CPython.

    nox                      # compat-3.9 ... compat-3.13
    nox -s compat-3.12       # one interpreter
    nox -s compat-3.11 -- -x -k shell  # extra pytest arguments

Interpreters are looked up as ``python3.X`` on PATH; pyenv installs
(``~/.pyenv/versions/3.X.Y``, or ``$PYENV_ROOT``) are put on PATH first. A missing
interpreter skips its session locally and fails it under CI (``CI=true``).

pip resolves the newest Flask / Flask-SQLAlchemy / SQLAlchemy / Alembic that each
interpreter supports; nothing is pinned here.
"""
from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]

# test_manage_flow.py drives ``manage.py db ...`` end to end (owned by the lead); the
# next two cover Flask-Script's own features and the .pth import hook; the last three
# the way off Flask-Script: the bridge to ``flask``, the converter, and their parity
# with ``python manage.py``.
TEST_FILES = [
    "tests/test_flask_script_shims.py",
    "tests/test_import_hook.py",
    "tests/test_manage_flow.py",
    "tests/test_bridge.py",
    "tests/test_convert.py",
    "tests/test_manager_parity.py",
]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
nox.options.error_on_missing_interpreters = IN_CI
nox.options.sessions = ["compat"]


def _put_pyenv_interpreters_on_path() -> None:
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for version in PYTHONS:
        # The newest patch release of each minor version, e.g. 3.12.1 before 3.12.0.
        candidates = sorted(
            (p for p in root.glob(f"{version}.*") if (p / "bin" / f"python{version}").exists()),
            key=lambda p: tuple(int(x) if x.isdigit() else -1 for x in p.name.split(".")),
        )
        if candidates:
            found.append(str(candidates[-1] / "bin"))
    if found:
        os.environ["PATH"] = os.pathsep.join([*found, os.environ.get("PATH", "")])


_put_pyenv_interpreters_on_path()


@nox.session(python=PYTHONS)
def compat(session: nox.Session) -> None:
    """Install the package (a real wheel, so its .pth too) with the test extras, then run
    the Flask-Script flow and import-hook tests."""
    # A listed file that is gone (renamed, deleted) fails the session: running what is
    # left would pass while proving less than the list says.
    missing = [f for f in TEST_FILES if not Path(f).is_file()]
    if missing:
        session.error(f"test files listed in noxfile.py not found: {', '.join(missing)}")
    session.install(".[test]")
    session.run("python", "-c",
                "import sys, flask, sqlalchemy, alembic; from importlib.metadata import version;"
                "print(sys.version.split()[0], *(f'{n} {version(n)}' for n in "
                "('flask', 'werkzeug', 'flask-sqlalchemy', 'sqlalchemy', 'alembic', "
                "'flask-script')), sep=' | ')")
    # The 'pytest' script, not 'python -m pytest': the latter would put the checkout
    # on sys.path, and the installed wheel is what is under test.
    session.run("pytest", "-q", *TEST_FILES, *session.posargs,
                env={"FLASK_MIGRATE_COMPAT_NO_HOOK": ""})
