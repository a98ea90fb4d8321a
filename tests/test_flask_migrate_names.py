"""Code written for Flask-Migrate imports more than the commands: every name that
Flask-Migrate 2.7 and 4.1 define at module level exists here and behaves the same.

The lists are data, read off the two releases' ``flask_migrate/__init__.py`` (their
own classes, functions and constants; not the modules they import). 2.7 builds
``MigrateCommand`` (a Flask-Script ``Manager``) at import, and a ``FakeCommand`` class
only when Flask-Script is missing; 4.1 dropped both.
"""
from __future__ import annotations

import inspect
import logging
import subprocess
import sys

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_migrate_compat

# name -> kind, for each release.
FLASK_MIGRATE_4_1 = {
    "alembic_version": "constant",
    "log": "constant",
    "_MigrateConfig": "class",
    "Config": "class",
    "Migrate": "class",
    "catch_errors": "function",
    "list_templates": "command",
    "init": "command",
    "revision": "command",
    "migrate": "command",
    "edit": "command",
    "merge": "command",
    "upgrade": "command",
    "downgrade": "command",
    "show": "command",
    "history": "command",
    "heads": "command",
    "branches": "command",
    "current": "command",
    "stamp": "command",
    "check": "command",
}
FLASK_MIGRATE_2_7 = {
    **{name: kind for name, kind in FLASK_MIGRATE_4_1.items()
       if name not in ("list_templates", "check")},
    "MigrateCommand": "manager",
}

# The parameters and defaults of each command function in 4.1 (2.7's are a subset,
# except that 2.7's revision() took no x_arg either).
COMMAND_PARAMETERS = {
    "list_templates": {},
    "init": {"directory": None, "multidb": False, "template": None, "package": False},
    "revision": {"directory": None, "message": None, "autogenerate": False, "sql": False,
                 "head": "head", "splice": False, "branch_label": None,
                 "version_path": None, "rev_id": None},
    "migrate": {"directory": None, "message": None, "sql": False, "head": "head",
                "splice": False, "branch_label": None, "version_path": None,
                "rev_id": None, "x_arg": None},
    "edit": {"directory": None, "revision": "current"},
    "merge": {"directory": None, "revisions": "", "message": None, "branch_label": None,
              "rev_id": None},
    "upgrade": {"directory": None, "revision": "head", "sql": False, "tag": None,
                "x_arg": None},
    "downgrade": {"directory": None, "revision": "-1", "sql": False, "tag": None,
                  "x_arg": None},
    "show": {"directory": None, "revision": "head"},
    "history": {"directory": None, "rev_range": None, "verbose": False,
                "indicate_current": False},
    "heads": {"directory": None, "verbose": False, "resolve_dependencies": False},
    "branches": {"directory": None, "verbose": False},
    "current": {"directory": None, "verbose": False},
    "stamp": {"directory": None, "revision": "head", "sql": False, "tag": None,
              "purge": False},
    "check": {"directory": None},
}


@pytest.mark.parametrize("release", [FLASK_MIGRATE_2_7, FLASK_MIGRATE_4_1],
                         ids=["2.7", "4.1"])
def test_every_module_level_name_exists(release):
    missing = [name for name in release if not hasattr(flask_migrate_compat, name)]
    assert not missing


def test_kinds_match():
    for name, kind in {**FLASK_MIGRATE_4_1, **FLASK_MIGRATE_2_7}.items():
        value = getattr(flask_migrate_compat, name)
        if kind == "class":
            assert inspect.isclass(value), name
        elif kind in ("function", "command"):
            assert inspect.isfunction(value), name
        elif kind == "manager":
            assert type(value).__name__ == "ClickGroupManager", name


@pytest.mark.parametrize("name", sorted(COMMAND_PARAMETERS))
def test_command_parameters_and_defaults_are_flask_migrates(name):
    """Every parameter Flask-Migrate's function takes, with the same default, in the
    same position (callers pass them positionally too)."""
    ours = inspect.signature(getattr(flask_migrate_compat, name)).parameters
    theirs = COMMAND_PARAMETERS[name]
    assert list(ours)[:len(theirs)] == list(theirs)
    for parameter, default in theirs.items():
        assert ours[parameter].default == default, (name, parameter)


def test_alembic_version_is_three_ints():
    from alembic import __version__

    version = flask_migrate_compat.alembic_version
    assert isinstance(version, tuple) and len(version) == 3
    assert all(isinstance(part, int) for part in version)
    assert ".".join(map(str, version)) == ".".join(__version__.split(".")[:3])


def test_log_is_a_logger():
    assert isinstance(flask_migrate_compat.log, logging.Logger)


def test_migrate_config_is_what_the_app_holds():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    db = SQLAlchemy(app)
    migrate = flask_migrate_compat.Migrate(app, db, directory="somewhere", compare_type=False)
    state = app.extensions["migrate"]
    assert isinstance(state, flask_migrate_compat._MigrateConfig)
    assert state.migrate is migrate and state.directory == "somewhere"
    assert state.configure_args == {"compare_type": False, "render_as_batch": True}
    with app.app_context():
        assert state.metadata is db.metadata
    # Constructed directly, as Flask-Migrate's own tests and some apps do.
    direct = flask_migrate_compat._MigrateConfig(migrate, db, x=1)
    assert direct.configure_args == {"x": 1} and direct.directory == "somewhere"


def test_config_takes_a_template_directory(tmp_path):
    config = flask_migrate_compat.Config(template_directory=str(tmp_path))
    assert config.get_template_directory() == str(tmp_path)
    default = flask_migrate_compat.Config()
    assert default.get_template_directory().endswith("templates")


CATCH_ERRORS_SCRIPT = """\
import logging.config, sys
from alembic.util import CommandError
from flask_migrate_compat import catch_errors

# What an old env.py's fileConfig() does: every existing logger disabled.
logging.config.dictConfig({"version": 1, "disable_existing_loggers": True})

@catch_errors
def fails(kind):
    # Two lines, and a URL with its password: one line comes out, without it.
    raise {"command": CommandError, "runtime": RuntimeError}[kind](
        "it broke:\\n  postgresql://deploy:Pw-catch-5e1@db/shop")

@catch_errors
def works():
    return 42

assert works() == 42
fails(sys.argv[1])
print("not reached")
"""


@pytest.mark.parametrize("kind", ["command", "runtime"])
def test_catch_errors_exits_1_with_one_line(kind):
    proc = subprocess.run([sys.executable, "-c", CATCH_ERRORS_SCRIPT, kind],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == ["Error: it broke: postgresql://deploy:***@db/shop"]
    assert proc.stdout == ""


def test_catch_errors_lets_other_errors_through():
    @flask_migrate_compat.catch_errors
    def fails():
        raise ValueError("not ours to catch")

    with pytest.raises(ValueError):
        fails()
