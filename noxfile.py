"""Nox sessions: the Flask-Script flow and the import hook on every supported CPython
(``compat``), and the whole suite on the oldest supported stack (``minimum``).

    nox                      # compat-3.9 ... compat-3.13, then minimum
    nox -s compat-3.9 compat-3.13 minimum   # what CI runs
    nox -s compat-3.12       # one interpreter
    nox -s compat-3.11 -- -x -k shell  # extra pytest arguments
    nox -s minimum           # Python 3.9 and setup.py's minimum versions

Interpreters are looked up as ``python3.X`` on PATH; pyenv installs
(``~/.pyenv/versions/3.X.Y``, or ``$PYENV_ROOT``) are put on PATH first. A missing
interpreter skips its session locally and fails it under CI (``CI=true``).

In ``compat``, pip resolves the newest Flask / Flask-SQLAlchemy / SQLAlchemy / Alembic
that each interpreter supports. ``minimum`` pins each of them to the lower bound
setup.py declares, so the floor the package promises is the floor CI proves.
"""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]

# CI (README.rst's test command) runs compat on the oldest and the newest interpreter
# only: 3.11 is the interpreter of the main run, whose whole suite holds these files;
# 3.10 and 3.12 run locally (nox -s compat-3.10 compat-3.12). With minimum and the main
# run, all five would overrun CI's 25 minutes on 2 cores.

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
nox.options.sessions = ["compat", "minimum"]

#: The oldest interpreter setup.py's python_requires admits, for the ``minimum`` session.
MINIMUM_PYTHON = "3.9"

#: What the ``minimum`` session installs beside the declared minimums, and why: the
#: newest Werkzeug 2.2 (Flask 2.2 asks for "Werkzeug>=2.2.2", and Werkzeug 3 removed
#: what Flask 2.2 imports); psycopg2, the only PostgreSQL driver SQLAlchemy 1.4 has a
#: dialect for (psycopg 3's came with SQLAlchemy 2.0).
MINIMUM_COMPANIONS = ["Werkzeug>=2.2.2,<2.3", "psycopg2-binary>=2.9"]


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


def declared_minimums(setup_py: str = "setup.py") -> list[str]:
    """setup.py's ``install_requires`` with every lower bound made exact
    (``"SQLAlchemy>=1.4.54"`` -> ``"SQLAlchemy==1.4.54"``), read from its syntax tree.

    Requirements with an environment marker (``; sys_platform == 'win32'``) are left
    out: they do not apply on the CI's platform. A requirement without a lower bound
    fails the session, since the floor it promises would go untested.
    """
    tree = ast.parse(Path(setup_py).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            requirements = ast.literal_eval(node.value)
            break
    else:
        raise RuntimeError(f"{setup_py} has no install_requires")
    pins = []
    for requirement in requirements:
        if ";" in requirement:
            continue
        match = re.fullmatch(r"\s*([A-Za-z0-9_.\-\[\]]+)\s*>=\s*([^,\s]+)\s*", requirement)
        if match is None:
            raise RuntimeError(f"install_requires entry without a single lower bound: "
                               f"{requirement!r}")
        pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


@nox.session(python=MINIMUM_PYTHON)
def minimum(session: nox.Session) -> None:
    """The whole suite on the oldest stack setup.py promises: its oldest Python, and
    exactly the minimum version of every dependency it declares (see
    :func:`declared_minimums`), against SQLite, PostgreSQL and MariaDB.

    Installed editable and run with ``python -m pytest``, as README.rst's test command
    does; ``pip check`` proves the pinned set is one pip accepts.
    """
    pins = declared_minimums()
    session.install("-e", ".[test]", *pins, *MINIMUM_COMPANIONS)
    session.run("python", "-m", "pip", "check")
    session.run("python", "-c",
                "import sys; from importlib.metadata import version;"
                "print(sys.version.split()[0], *(f'{n} {version(n)}' for n in "
                "('flask', 'werkzeug', 'click', 'flask-sqlalchemy', 'sqlalchemy', 'alembic', "
                "'libcst', 'psycopg2-binary', 'flask-script')), sep=' | ')")
    session.run("python", "-m", "pytest", *session.posargs)
