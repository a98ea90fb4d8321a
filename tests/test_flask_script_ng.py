"""Flask-Script-NG (the maintained fork, module ``flask_script_ng``) gets the same
MigrateCommand through ``make_migrate_command(flask_script_ng)``."""
from __future__ import annotations

from conftest import assert_one_error, require_module

require_module("flask_script_ng")

MANAGE_NG = '''
    import sys

    import flask_script_ng
    from flask_script_ng import Manager
    from flask_migrate_compat.script import make_migrate_command
    from app import app

    manager = Manager(app)
    manager.add_command("db", make_migrate_command(flask_script_ng))

    if __name__ == "__main__":
        try:
            manager.run()
        finally:
            # The fork must not need the original Flask-Script at all.
            assert "flask_script" not in sys.modules, "flask_script was imported"
'''


def test_flask_script_ng_manager_runs_the_db_commands(project):
    project.write("manage.py", MANAGE_NG)
    project.manage("db", "init")
    project.manage("db", "migrate", "-m", "users")
    project.manage("db", "upgrade")
    assert project.database.tables() == {"users", "alembic_version"}
    head = project.manage("db", "heads").stdout.split()[0]
    assert project.manage("db", "current").stdout.split()[0] == head
    failed = project.manage("db", "upgrade", "nosuchrev", check=False)
    assert assert_one_error(failed) == "Error: Can't locate revision identified by 'nosuchrev'"
    project.manage("db", "downgrade", "base")
    assert project.database.tables() == {"alembic_version"}
