"""flask-migrate-compat: Alembic migrations for Flask-SQLAlchemy applications, driven
by ``flask db`` or by a legacy Flask-Script ``manage.py db``, on today's Flask,
Flask-SQLAlchemy, SQLAlchemy and Alembic.

A drop-in for Flask-Migrate: ``from flask_migrate_compat import Migrate,
MigrateCommand``.

Every public name is loaded on first use (PEP 562): the import hook that this package
installs through a ``.pth`` file imports ``flask_migrate_compat._import_hook`` at
interpreter start wherever Flask-Script is on ``sys.path``, so this file must import
nothing. Alembic is loaded when a command
runs, and Flask-Script (with its compatibility shims) when ``MigrateCommand`` or one of
Flask-Script's names is first used.
"""

__version__ = "1.0.0"

# Flask-Migrate 4.1's module-level names (and 2.7's, but for MigrateCommand below).
_CORE_NAMES = (
    "Migrate", "MigrateError", "alembic_version", "catch_errors", "log",
    "list_templates", "init", "revision", "migrate", "edit", "merge", "upgrade",
    "downgrade", "show", "history", "heads", "branches", "current", "stamp", "check",
)
# Ours, beside Flask-Migrate's, in core (modernize: the module that does the work is
# .modernization, so that importing it never shadows this function).
_CORE_EXTRA = ("modernize",)
# Flask-Script's public names, re-exported so that one import line serves manage.py.
_SCRIPT_NAMES = (
    "Manager", "Command", "Option", "Group", "Shell", "Server", "prompt", "prompt_pass",
    "prompt_bool", "prompt_choices",
)
_LAZY = dict.fromkeys((*_CORE_NAMES, *_CORE_EXTRA), "core")
_LAZY.update(Migrate="extension", _MigrateConfig="extension", MigrateError="errors")
_LAZY.update(dict.fromkeys(_SCRIPT_NAMES, "script"))
_LAZY.update(Config="config", MigrateCommand="script", make_migrate_command="script")
# db status and db doctor: functions returning dataclasses (modules named apart from
# the functions, so that importing a module never shadows its function here).
_LAZY.update(status="readiness", doctor="diagnosis")

# Star-imports stay free of Flask-Script, which an application may not have installed.
__all__ = [*_CORE_NAMES, "Config", "status", "doctor", *_CORE_EXTRA]


def __getattr__(name):
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
