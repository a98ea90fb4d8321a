"""A command-line process imports Alembic without Mako's Pygments plugin
(flask_migrate_compat.command_process); an application using the Python API does not
change.

Pygments is installed in the test environment (pytest requires it), as on the
development machines and CI runners where its import cost is paid.
"""
from __future__ import annotations

import pytest

from conftest import MANAGE_TEMPLATE, init_migrations

# Printed at the application's exit: what the process holds of Pygments and Mako then,
# and whether an explicit import of the plugin still works after the command.
REPORT_AT_EXIT = '''
import atexit, sys


def _report():
    import mako.exceptions
    print("REPORT pygments-imported", any(name == "pygments" or name.startswith("pygments.")
          for name in sys.modules), file=sys.stderr)
    print("REPORT highlighter-from", mako.exceptions.syntax_highlight.__module__,
          file=sys.stderr)
    import mako.ext.pygmentplugin
    print("REPORT plugin-importable", mako.ext.pygmentplugin.__name__, file=sys.stderr)


atexit.register(_report)
'''


def report(stderr: str) -> dict[str, str]:
    return dict(line.split()[1:3] for line in stderr.splitlines()
                if line.startswith("REPORT "))


@pytest.fixture
def reporting_project(project):
    pytest.importorskip("pygments")
    project.write_app(config=REPORT_AT_EXIT)
    init_migrations(project)
    project.flask("db", "revision", "-m", "first")
    return project


@pytest.mark.parametrize("front_end", ["flask", "manage"])
def test_command_line_process_skips_pygments(reporting_project, front_end):
    project = reporting_project
    if front_end == "manage":
        pytest.importorskip("flask_script")
        project.write("manage.py", MANAGE_TEMPLATE)
    run = getattr(project, front_end)
    proc = run("db", "upgrade")
    assert report(proc.stderr) == {
        "pygments-imported": "False",
        "highlighter-from": "mako.exceptions",  # Mako's plain fallback
        "plugin-importable": "mako.ext.pygmentplugin",
    }, proc.stderr
    # The command did its work: the database is at the revision.
    heads = run("db", "heads").stdout.split()[0]
    assert project.database.version() == [heads]


def test_python_api_process_is_left_alone(reporting_project):
    project = reporting_project
    project.write("deploy.py", '''\
        from app import app
        import flask_migrate_compat

        with app.app_context():
            flask_migrate_compat.upgrade()
        ''')
    proc = project.run("deploy.py")
    assert report(proc.stderr) == {
        "pygments-imported": "True",
        "highlighter-from": "mako.ext.pygmentplugin",
        "plugin-importable": "mako.ext.pygmentplugin",
    }, proc.stderr
    assert len(project.database.version()) == 1


def test_template_error_is_still_reported_in_one_line(reporting_project):
    """Alembic renders a broken script.py.mako's error with Mako's text error
    template, which needs no highlighting: the line and the file it names hold
    Mako's account of the error."""
    project = reporting_project
    template = project.path / "migrations" / "script.py.mako"
    template.write_text(template.read_text() + "\n${no_such_name.attribute}\n")
    before = project.revisions()
    proc = project.flask("db", "revision", "-m", "second", check=False)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("Error: ")]
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "Template rendering failed" in lines[0], lines[0]
    account = lines[0].split("see ")[1].split(" for")[0]
    with open(account) as f:
        assert "no_such_name" in f.read()
    assert project.revisions() == before
