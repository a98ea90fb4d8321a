"""The import hook, as users get it: from a wheel, from an sdist, and editable.

A copy of the project is built with ``python -m build`` (an sdist, then a wheel built
from that sdist) and installed into fresh virtual environments together with Flask 3,
Flask-SQLAlchemy, Alembic and Flask-Script 2.0.6. A legacy ``manage.py`` whose first
line is ``from flask_script import Manager`` must then run ``db init/migrate/upgrade``
with no other help than ``flask_migrate_compat.pth``. The venvs are built once per test
session (about half a minute); dependencies come from a wheelhouse built once.
"""
from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PTH = "flask_migrate_compat.pth"
# What the .pth must not load at interpreter start (the hook's whole cost budget).
HEAVY = ("flask", "werkzeug", "typing", "importlib.abc", "flask_script",
         "flask_migrate_compat._flask_script_compat")

APP = '''\
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from flask_migrate_compat import Migrate

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///app.db"
db = SQLAlchemy(app)
migrate = Migrate(app, db)


class Note(db.Model):
    __tablename__ = "notes"
    id = db.Column(db.Integer, primary_key=True)
    text = db.Column(db.String(80))
'''

MANAGE = '''\
from flask_script import Manager
from flask_migrate_compat import MigrateCommand
from app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)


@manager.command
def hello(name, shout=False):
    """Say hello."""
    print(("hello " + name).upper() if shout else "hello " + name)


if __name__ == "__main__":
    manager.run()
'''

# The other import order: our package first, Flask-Script after.
MANAGE_OURS_FIRST = '''\
from flask_migrate_compat import MigrateCommand
from flask_script import Manager
from app import app

manager = Manager(app)
manager.add_command("db", MigrateCommand)

if __name__ == "__main__":
    manager.run()
'''


WITHOUT_FLASK_SCRIPT = "wheel-without-flask-script"
# The finders of ours on sys.meta_path, and the modules of ours loaded, at start-up.
HOOK_PROBE = ("import sys; print([type(f).__name__ for f in sys.meta_path]"
              ".count('FlaskScriptFinder'), "
              "sorted(m for m in sys.modules if m.startswith('flask_migrate_compat')))")


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "PIP_REQUIRE", "VIRTUAL_ENV"))
           and k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    env.update(PYTHONDONTWRITEBYTECODE="1", PIP_DISABLE_PIP_VERSION_CHECK="1", **extra)
    return env


def check_run(args, cwd=None, env=None, timeout=600, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def _project_copy(dest: Path) -> Path:
    # Build from a copy so that no test writes build/, dist/ or egg-info into the repo.
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns(
        ".git", ".nox", ".venv", ".ci-venv", "build", "dist", "*.egg-info", "__pycache__",
        ".pytest_cache", "*.db", "migrations"))
    return dest


@pytest.fixture(scope="session")
def dists(tmp_path_factory) -> dict:
    """``{"sdist": path, "wheel": path}``: the wheel is built from the sdist."""
    try:
        import build  # noqa: F401
    except ImportError:
        pytest.fail("these tests need the 'build' package (pip install build)", pytrace=False)
    root = tmp_path_factory.mktemp("dists")
    src = _project_copy(root / "src")
    out = root / "out"
    check_run([sys.executable, "-m", "build", "--outdir", out, src])
    return {"sdist": next(out.glob("*.tar.gz")), "wheel": next(out.glob("*.whl"))}


@pytest.fixture(scope="session")
def wheelhouse(tmp_path_factory, dists) -> Path:
    """Wheels of every dependency (and setuptools + wheel, for the builds pip does)."""
    house = tmp_path_factory.mktemp("wheelhouse")
    check_run([sys.executable, "-m", "pip", "wheel", "-q", "-w", house,
               dists["wheel"], "Flask-Script==2.0.6", "setuptools", "wheel"])
    return house


class Venv:
    def __init__(self, path: Path):
        self.path = path
        self.python = path / "bin" / "python"

    def run(self, *args, cwd=None, env=None, check=True, **kwargs):
        runner = check_run if check else _run
        return runner([self.python, *args], cwd=cwd, env=env, **kwargs)

    def site_packages(self) -> Path:
        out = self.run("-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
        return Path(out.stdout.strip())


def _run(args, cwd=None, env=None, timeout=120, **kwargs):
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env or clean_env(),
                          capture_output=True, text=True, timeout=timeout, **kwargs)


@pytest.fixture(scope="session")
def venvs(tmp_path_factory, dists, wheelhouse):
    """Factory: ``venvs(kind)`` for kind in wheel, sdist, editable, and
    wheel-without-flask-script (the wheel and its dependencies only); built once each."""
    cache: dict = {}
    root = tmp_path_factory.mktemp("venvs")

    def get(kind: str) -> Venv:
        if kind not in cache:
            venv = Venv(root / kind)
            options = ["install", "-q", "--no-index", "--find-links", wheelhouse]
            if kind != WITHOUT_FLASK_SCRIPT:
                options.append("Flask-Script==2.0.6")
            if kind == "editable":
                # With the interpreter's own pip: old ones run 'setup.py develop', newer
                # ones build a PEP 660 editable wheel; the .pth must land either way.
                check_run([sys.executable, "-m", "venv", venv.path])
                venv.run("-m", "pip", *options, "-e", _project_copy(root / "editable-src"))
            else:
                # No pip in the venv (saves seconds): this interpreter's pip installs there.
                check_run([sys.executable, "-m", "venv", "--without-pip", venv.path])
                check_run([sys.executable, "-m", "pip", "--python", venv.python, *options,
                           dists["wheel" if kind == WITHOUT_FLASK_SCRIPT else kind]])
            cache[kind] = venv
        return cache[kind]

    return get


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "manage.py").write_text(MANAGE)
    (tmp_path / "manage_ours_first.py").write_text(MANAGE_OURS_FIRST)
    return tmp_path


def test_built_distributions_carry_the_pth(dists):
    with zipfile.ZipFile(dists["wheel"]) as whl:
        names = whl.namelist()
        assert PTH in names  # at the root of the wheel, i.e. of site-packages
        record = whl.read(next(n for n in names if n.endswith(".dist-info/RECORD"))).decode()
        assert f"\n{PTH}," in "\n" + record
        text = whl.read(PTH).decode()
    with tarfile.open(dists["sdist"]) as sdist:
        assert any(m.name.endswith(f"/{PTH}") and m.name.count("/") == 1 for m in sdist)
    assert (REPO / PTH).read_text() == text


@pytest.mark.parametrize("kind", ["wheel", "sdist", "editable"])
def test_legacy_manage_py_importing_flask_script_first(venvs, project, kind):
    venv = venvs(kind)
    pth = venv.site_packages() / PTH
    assert pth.is_file()
    assert pth.read_text() == (REPO / PTH).read_text()

    assert venv.run("manage.py", "hello", "ann", "--shout", cwd=project).stdout == "HELLO ANN\n"
    venv.run("manage.py", "db", "init", cwd=project)
    venv.run("manage.py", "db", "migrate", "-m", "notes", cwd=project)
    venv.run("manage.py", "db", "upgrade", cwd=project)
    with sqlite3.connect(project / "instance" / "app.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"notes", "alembic_version"} <= tables
    current = venv.run("manage_ours_first.py", "db", "current", cwd=project)
    assert "(head)" in current.stdout


def test_env_var_disables_the_hook(venvs, project):
    venv = venvs("wheel")
    # How many of our finders are on sys.meta_path, and which finder comes first.
    probe = ("import sys; names = [type(f).__name__ for f in sys.meta_path]; "
             "print(names.count('FlaskScriptFinder'), names[0])")
    assert venv.run("-c", probe).stdout == "1 FlaskScriptFinder\n"
    assert venv.run("-c", probe, env=clean_env(FLASK_MIGRATE_COMPAT_NO_HOOK="0")).stdout \
        == "1 FlaskScriptFinder\n"
    off = clean_env(FLASK_MIGRATE_COMPAT_NO_HOOK="1")
    assert venv.run("-c", probe, env=off).stdout.split()[0] == "0"
    proc = venv.run("manage.py", "hello", "ann", cwd=project, env=off, check=False)
    assert proc.returncode == 1
    assert "ModuleNotFoundError: No module named 'flask._compat'" in proc.stderr
    # Our own entry point still applies the shims explicitly.
    assert venv.run("manage_ours_first.py", "db", "--help", cwd=project, env=off).returncode == 0


def test_hook_loads_nothing_heavy_at_start_up(venvs):
    venv = venvs("wheel")
    listing = ", ".join(repr(m) for m in HEAVY)
    loaded = venv.run("-c", f"import sys; print([m for m in ({listing}) if m in sys.modules])")
    assert loaded.stdout == "[]\n"
    explicit = venv.run("-c", "import sys; import flask_migrate_compat._import_hook; "
                              f"print([m for m in ({listing}) if m in sys.modules])")
    assert explicit.stdout == "[]\n"
    # -X importtime lists every module imported at start-up, the .pth's included.
    timed = venv.run("-X", "importtime", "-c", "pass").stderr
    modules = {line.rsplit("|", 1)[-1].strip() for line in timed.splitlines() if "|" in line}
    assert "flask_migrate_compat._import_hook" in modules
    assert not modules & set(HEAVY)
    # Importing flask_script is what loads the shims.
    after = venv.run("-c", "import sys, flask_script; "
                           "print('flask_migrate_compat._flask_script_compat' in sys.modules)")
    assert after.stdout == "True\n"


def test_stale_pth_without_the_package_is_silent(tmp_path):
    # e.g. after uninstalling a legacy 'setup.py develop' install, which leaves the .pth.
    venv = Venv(tmp_path / "bare")
    check_run([sys.executable, "-m", "venv", "--without-pip", venv.path])
    shutil.copy(REPO / PTH, venv.site_packages() / PTH)
    proc = venv.run("-c", "import sys; print([type(f).__name__ for f in sys.meta_path]"
                          ".count('FlaskScriptFinder'))")
    assert proc.stderr == ""
    assert proc.stdout == "0\n"


def test_import_hook_module_alone_does_not_import_flask():
    code = textwrap.dedent("""\
        import sys
        import flask_migrate_compat._import_hook
        print('flask' in sys.modules, 'typing' in sys.modules, 'importlib.abc' in sys.modules)
    """)
    proc = check_run([sys.executable, "-S", "-c", code],
                     env=clean_env(PYTHONPATH=str(REPO)))
    assert proc.stdout == "False False False\n"


def test_no_hook_where_flask_script_is_not_on_sys_path(venvs, project, tmp_path):
    """The .pth installs the finder only when a flask_script package is in a sys.path
    folder at start-up: elsewhere it imports nothing of ours and leaves sys.meta_path
    alone."""
    venv = venvs(WITHOUT_FLASK_SCRIPT)
    assert (venv.site_packages() / PTH).read_text() == (REPO / PTH).read_text()
    assert venv.run("-c", HOOK_PROBE).stdout == "0 []\n"
    timed = venv.run("-X", "importtime", "-c", "pass").stderr
    assert "flask_migrate_compat" not in timed
    # The Flask-Script venv: finder installed, only the hook module loaded.
    assert venvs("wheel").run("-c", HOOK_PROBE).stdout == \
        "1 ['flask_migrate_compat', 'flask_migrate_compat._import_hook']\n"

    # Flask-Script on PYTHONPATH is on sys.path at start-up: the finder is installed and
    # 'import flask_script' works on Flask 3, shimmed.
    vendor = tmp_path / "vendor"
    shutil.copytree(venvs("wheel").site_packages() / "flask_script", vendor / "flask_script")
    on_path = clean_env(PYTHONPATH=str(vendor))
    assert venv.run("-c", HOOK_PROBE, env=on_path).stdout.startswith("1 ")
    shimmed = venv.run("-c", "import sys, flask_script; print(flask_script.__file__, "
                             "'flask_migrate_compat._flask_script_compat' in sys.modules)",
                       env=on_path)
    assert shimmed.stdout == f"{vendor / 'flask_script' / '__init__.py'} True\n"
    assert venv.run("manage.py", "hello", "ann", cwd=project, env=on_path).stdout == \
        "hello ann\n"

    # A copy next to manage.py joins sys.path after start-up: no finder, so a manage.py
    # importing flask_script first fails on Flask 3 as without the hook; importing ours
    # first, or the runner, applies the shims.
    shutil.copytree(vendor / "flask_script", project / "flask_script")
    assert venv.run("-c", HOOK_PROBE, cwd=project).stdout == "0 []\n"
    proc = venv.run("manage.py", "hello", "ann", cwd=project, check=False)
    assert "No module named 'flask._compat'" in proc.stderr
    assert venv.run("manage_ours_first.py", "db", "--help", cwd=project).returncode == 0
    assert venv.run("-m", "flask_migrate_compat", "manage.py", "hello", "ann",
                    cwd=project).stdout == "hello ann\n"
