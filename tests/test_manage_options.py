"""What a ``manage.py`` gets besides the commands themselves: Flask-Script's names
imported from this package, ``FLASK_DB_*`` environment variables,
``FLASK_MIGRATE_COMPAT_TRACEBACK`` and exit code 2 for a bad option, through real
``manage.py db`` runs (``--use-new-sqlite-path``, ``--no-lock`` and ``--lock-timeout``
through ``manage.py`` are in test_sqlite_path_trap.py and test_lock_safety.py).
"""
from __future__ import annotations

import pytest
from conftest import init_migrations

# README, "Coming from Flask-Script": these names can be imported from the package.
FLASK_SCRIPT_NAMES = ("Manager", "Command", "Option", "Group", "Shell", "Server", "prompt",
                      "prompt_pass", "prompt_bool", "prompt_choices")

# Imports nothing from flask_script itself, and runs without the import hook.
MANAGE_FROM_PACKAGE = '''\
import sys
from flask_migrate_compat import Command, Manager, MigrateCommand, Option, Server, Shell
from app import app


class Hello(Command):
    """Greet."""

    option_list = (Option("--name", default="world"),)

    def run(self, name):
        print("hello", name, "flask_script" in sys.modules)


manager = Manager(app)
manager.add_command("db", MigrateCommand)
manager.add_command("hello", Hello())
manager.add_command("shell", Shell())
manager.add_command("runserver", Server())

if __name__ == "__main__":
    manager.run()
'''

TAGGED_REVISION = '''\
import sqlalchemy as sa
from alembic import context, op

revision = "t1"
down_revision = None


def upgrade():
    name = "tag_" + (context.get_tag_argument() or "none")
    op.create_table(name, sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    pass
'''


def test_flask_script_names_are_flask_scripts():
    import flask_script

    import flask_migrate_compat

    for name in FLASK_SCRIPT_NAMES:
        assert getattr(flask_migrate_compat, name) is getattr(flask_script, name), name


def test_manage_py_importing_only_from_the_package(project):
    project.write("manage.py", MANAGE_FROM_PACKAGE)
    init_migrations(project)
    project.write("migrations/versions/t1.py", TAGGED_REVISION)
    no_hook = {"FLASK_MIGRATE_COMPAT_NO_HOOK": "1"}

    assert project.manage("hello", "--name", "you", env=no_hook).stdout == "hello you True\n"

    # FLASK_DB_UPGRADE_TAG is --tag of 'db upgrade', as under 'flask db'.
    project.manage("db", "upgrade", env={**no_hook, "FLASK_DB_UPGRADE_TAG": "from_env"})
    assert project.database.tables() == {"alembic_version", "tag_from_env"}

    # The traceback, on demand.
    proc = project.manage("db", "upgrade", "nope", check=False,
                          env={**no_hook, "FLASK_MIGRATE_COMPAT_TRACEBACK": "1"})
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr and "alembic.util.exc.CommandError" in proc.stderr


@pytest.mark.parametrize("front_end", ["flask", "manage"])
def test_bad_option_exits_2(project, front_end):
    run = project.flask if front_end == "flask" else project.manage
    proc = run("db", "upgrade", "--no-such-option", check=False)
    assert proc.returncode == 2, proc.stderr
    # Click names the option (its wording varies a little between releases);
    # Flask-Script's argparse says "too many arguments".
    if front_end == "flask":
        assert "No such option" in proc.stderr and "--no-such-option" in proc.stderr
    else:
        assert "manage.py: error: too many arguments" in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert project.database.tables() == set()
