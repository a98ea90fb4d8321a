"""The converter on what it cannot translate one to one, in this process: every such
case gets a TODO comment and a report line, never a silent guess; the module still
compiles, and what was converted runs. Plus its command line: the ``convert``
subcommand of the runner, never overwriting, one ``Error:`` line per failure.
(The full round trip, Flask-Script versus converted code, is tests/test_manager_parity.py.)
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from flask import Flask

from flask_migrate_compat import convert, runner
from test_flask_script_shims import FACTORY_MANAGE

# Flask-Script's Command(func) calls inspect.getargspec, deprecated (not yet removed)
# on Python 3.9 and 3.10; the shims replace it only where it is gone.
pytestmark = pytest.mark.filterwarnings("ignore:inspect.getargspec:DeprecationWarning")

HELPERS = '''\
def tidy(days=7):
    """Remove old things."""
    print("tidy", days)
'''

TRICKY = '''\
from flask import Flask
from flask_script import Command, Group, Manager, Option, Server, Shell
from conv_helpers import tidy

app = Flask("tricky")
manager = Manager(app)

SUFFIX = "!"


def shout(text):
    return text.upper() + SUFFIX


@manager.command
def greet(name):
    """Greet loudly."""
    print(shout(name))


@manager.command
def reset():
    """Greet again (calls another command's function)."""
    greet("again")


class Legacy(Command):
    """Overrides __call__."""

    def __call__(self, app, **kwargs):
        print(app.name)


class Stateful(Command):
    """Uses self in run."""

    def __init__(self, greeting):
        super().__init__()
        self.greeting = greeting

    def run(self):
        print(*[self.greeting for _ in range(2)])  # self only in a comprehension


class Tags(Command):
    """An append option and a mutually exclusive group."""

    option_list = (
        Option("--tag", dest="tags", action="append"),
        Group(Option("--fast", action="store_true"), Option("--safe", action="store_true"),
              exclusive=True),
    )

    def run(self, tags, fast, safe):
        text = """tags:
  {}""".format(tags)
        print(text, fast, safe)


@manager.command
def where():
    """Print this file."""
    print(__file__)


manager.add_command("tidy", Command(tidy))
manager.add_command("legacy", Legacy())
manager.add_command("stateful", Stateful("hi"))
manager.add_command("tags", Tags())
manager.add_command("runserver", Server(port=8000))
manager.add_command("shell", Shell(make_context=lambda: dict(app=app)))

if __name__ == "__main__":
    manager.run()
'''


@pytest.fixture
def tricky(tmp_path, monkeypatch):
    """The tricky script converted into conv_commands.py; the folder is importable."""
    (tmp_path / "conv_helpers.py").write_text(HELPERS)
    (tmp_path / "conv_manage.py").write_text(TRICKY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    names = ("conv_helpers", "conv_manage", "conv_commands")
    yield tmp_path, convert.convert(str(tmp_path / "conv_manage.py"),
                                    str(tmp_path / "conv_commands.py"))
    for name in names:
        sys.modules.pop(name, None)


def test_report_names_every_todo_and_skip(tricky):
    _, done = tricky
    assert done.converted == ["greet", "reset", "where", "tidy", "tags"]
    assert dict(done.skipped) == {
        "runserver": "Flask-Script's development server: use 'flask run --port 8000'",
        "shell": "Flask-Script's shell: use 'flask shell' (it gets the make_context names)",
    }
    todos = dict(done.todos)
    assert todos["where"] == "uses __file__, which means something else in another module"
    assert todos["legacy"].startswith("not converted: Legacy overrides __call__")
    assert todos["stateful"].startswith("not converted: Stateful.run uses self")
    # argparse's unconverted defaults (7, not '7'; None, not ()) come through a callback.
    assert "tidy" not in todos
    assert [text for label, text in done.todos if label == "tags"] == [
        "--fast, --safe are mutually exclusive: argparse refused them together, "
        "Click does not",
    ]
    assert todos["imports"] == "app, shout come from conv_manage.py, which defines them: " \
        "move them into the application before deleting conv_manage.py"
    assert done.notes == []
    lines = convert.report(done, "conv_manage.py")
    assert lines[-1] == "wrote conv_commands.py: 5 commands from conv_manage.py, 2 skipped, " \
        "5 TODOs (search conv_commands.py for 'TODO(flask-migrate-compat)')"
    assert sum(line.startswith("TODO ") for line in lines) == 5


def test_module_has_a_todo_comment_for_each(tricky):
    folder, done = tricky
    text = (folder / "conv_commands.py").read_text()
    assert text.count("# TODO(flask-migrate-compat):") == len(done.todos)
    assert "# TODO(flask-migrate-compat): defined in conv_manage.py: move it into the " \
        "application\n#   before deleting conv_manage.py\nfrom conv_manage import app, shout\n" \
        in text
    # A function other code calls stays a function; its command wraps it.
    assert textwrap.dedent('''\
        def greet(name):
            """Greet loudly."""
            print(shout(name))
        ''') in text
    assert '@click.command("greet", help="Greet loudly.")\n@click.argument("name")\n' \
        "@with_appcontext\n@_in_test_request_context\ndef greet_command(**values):\n" \
        "    return greet(**values)\n" in text
    # A function of another module is imported from there.
    assert "from conv_helpers import tidy\n" in text
    assert "def tidy_command(**values):\n    return tidy(**values)\n" in text
    assert '@click.option("-d", "--days", type=str, callback=_argparse_default(7))\n' in text
    # A method body moves left, but not the inside of its multi-line string.
    assert '    text = """tags:\n  {}""".format(tags)\n' in text
    assert "shell_context = lambda: dict(app=app)\n" in text
    assert "app.shell_context_processor(shell_context)" in text


def test_converted_commands_run(tricky):
    folder, _ = tricky
    import conv_commands

    app = Flask("converted")
    conv_commands.init_app(app)
    cli = app.test_cli_runner()
    assert cli.invoke(args=["greet", "ann"]).output == "ANN!\n"
    assert cli.invoke(args=["reset"]).output == "AGAIN!\n"
    assert cli.invoke(args=["tidy", "-d", "3"]).output == "tidy 3\n"
    assert cli.invoke(args=["tidy"]).output == "tidy 7\n"  # argparse's default, an int
    assert cli.invoke(args=["tags", "--tag", "a", "--fast"]).output \
        == "tags:\n  ('a',) True False\n"
    assert cli.invoke(args=["tags"]).output == "tags:\n  None False False\n"
    stub = cli.invoke(args=["stateful", "--anything"])
    assert stub.exit_code == 1
    assert stub.output == "Error: stateful was not converted from conv_manage.py: " \
        "Stateful.run uses self\n"
    assert app.make_shell_context()["app"].name == "tricky"


def test_factory_manager(tmp_path, monkeypatch):
    """Manager options become a note on FLASK_APP; a sub-manager a group; the Shell's
    make_context function a shell context processor."""
    (tmp_path / "fac_manage.py").write_text(FACTORY_MANAGE)
    monkeypatch.syspath_prepend(str(tmp_path))
    done = convert.convert(str(tmp_path / "fac_manage.py"), str(tmp_path / "fac_commands.py"))
    assert (done.groups, done.converted, done.todos) == (
        ["users"], ["users greet", "users listing", "config"], [])
    assert done.notes == [
        "The options -c/--config of fac_manage.py went to the application factory; with "
        "flask, pass them in FLASK_APP (--app \"fac_manage:create_app(...)\") or read them "
        "from the environment in the factory."]
    try:
        import fac_commands
    finally:
        sys.modules.pop("fac_commands", None)
    app = Flask("factory_app")
    app.config["GREETING"] = "howdy"
    fac_commands.init_app(app)
    cli = app.test_cli_runner()
    assert cli.invoke(args=["users", "greet", "zoe"]).output == "howdy zoe from factory_app\n"
    assert cli.invoke(args=["users", "listing"]).output == "listing 3\n"
    with app.app_context():
        assert app.make_shell_context()["answer"] == 42


@pytest.mark.parametrize("format_code", [True, False])
def test_formatter_runs_when_installed(tmp_path, monkeypatch, format_code):
    """A formatter on PATH (here a stand-in ``ruff``) formats the written module."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "ruff"
    fake.write_text("#!/bin/sh\necho \"# formatted: $*\" >> \"$3\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    (tmp_path / "fmt_manage.py").write_text(FACTORY_MANAGE)
    done = convert.convert(str(tmp_path / "fmt_manage.py"), format_code=format_code)
    text = (tmp_path / "commands.py").read_text()
    assert done.formatter == ("ruff format" if format_code else None)
    assert text.endswith(f"# formatted: format --quiet {tmp_path / 'commands.py'}\n") \
        is format_code


def test_never_overwrites(tricky, capsys):
    folder, _ = tricky
    target = folder / "conv_commands.py"
    before = target.read_text()
    code = convert.main([str(folder / "conv_manage.py"), "-o", str(target)])
    assert code == 1
    assert capsys.readouterr().err == \
        f"Error: {target} exists; the converter never overwrites a file (choose another " \
        "with -o)\n"
    assert target.read_text() == before


@pytest.mark.parametrize("script, message", [
    ("raise ImportError('no module named app')\n",
     "Error: running {path} failed: ImportError: no module named app ({path}, line 1)\n"),
    ("import sys\nsys.exit(3)\n", "Error: {path} exited (code 3) before manager.run()\n"),
    ("x = 1\n", "Error: {path} does not call manager.run() and defines 0 top-level "
                "Managers: cannot tell which to convert\n"),
])
def test_script_errors_are_one_line(tmp_path, capsys, script, message):
    path = tmp_path / "broken_manage.py"
    path.write_text(script)
    assert convert.main([str(path)]) == 1
    assert capsys.readouterr().err == message.format(path=path)
    assert not (tmp_path / "commands.py").exists()


def test_manager_without_run_call_is_found(tmp_path, monkeypatch):
    path = tmp_path / "norun_manage.py"
    path.write_text(textwrap.dedent('''\
        from flask import Flask
        from flask_script import Manager

        manager = Manager(Flask("norun"))


        @manager.option("-n", "--name", dest="name", default="x", help="%(default)s it is")
        def hello(name):
            print(name)
        '''))
    done = convert.convert(str(path), format_code=False)
    assert done.converted == ["hello"] and done.todos == []
    text = (tmp_path / "commands.py").read_text()
    assert '@click.option("-n", "--name", default="x", help="x it is")' in text


def test_convert_subcommand_and_script_named_convert(tmp_path):
    """``convert`` selects the converter unless a file of that name is there, which
    then runs as before; ``python -m flask_migrate_compat.convert`` always converts."""
    usage = subprocess.run([sys.executable, "-m", "flask_migrate_compat", "convert"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2
    assert usage.stderr.startswith("Usage: flask-migrate-compat convert [OPTIONS] SCRIPT")
    assert usage.stderr.rstrip().endswith("Error: Missing argument 'SCRIPT'.")
    (tmp_path / "convert").write_text("import sys\nprint('the script ran', sys.argv[1:])\n")
    script = subprocess.run([sys.executable, "-m", "flask_migrate_compat", "convert", "x"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (script.returncode, script.stdout) == (0, "the script ran ['x']\n")
    assert runner.main(["--help"]) == 0
    assert "flask-migrate-compat convert path/to/manage.py" in runner.USAGE


@pytest.mark.parametrize("where", ["missing", "file", "read-only"])
def test_output_folder_errors_are_one_line(tricky, capsys, where):
    """-o into a folder that is missing, is a file, or cannot be written: one line,
    exit code 1, nothing written (the script is not even run for the first two)."""
    folder, _ = tricky
    if where == "missing":
        output = folder / "no" / "such" / "cli.py"
        message = f"Error: cannot write {output}: the folder {output.parent} does not exist\n"
    elif where == "file":
        output = folder / "conv_helpers.py" / "cli.py"
        message = f"Error: cannot write {output}: the folder {output.parent} does not exist\n"
    else:
        if not os.path.isdir("/sys/kernel"):
            pytest.skip("needs Linux's /sys, which no user can write a file into")
        output = "/sys/kernel/i17_cli.py"
        message = None
    code = convert.main([str(folder / "conv_manage.py"), "-o", str(output)])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err.splitlines()) == 1 and err.startswith(f"Error: cannot write {output}: "), err
    if message is not None:
        assert err == message
    assert not os.path.exists(output)


@pytest.mark.parametrize("body, left", [
    ("", " (only shell, runserver: see 'flask --help')"),
    ("manager.add_command('serve', Server())\n",
     " (only serve, shell, runserver: see 'flask --help')"),
])
def test_nothing_to_convert_writes_nothing(tmp_path, capsys, body, left):
    path = tmp_path / "empty_manage.py"
    path.write_text("from flask import Flask\nfrom flask_script import Manager, Server\n\n"
                    "manager = Manager(Flask('empty'))\n" + body
                    + "\nif __name__ == '__main__':\n    manager.run()\n")
    assert convert.main([str(path)]) == 1
    assert capsys.readouterr().err == \
        f"Error: empty_manage.py has no command to convert{left}; nothing written\n"
    assert not (tmp_path / "commands.py").exists()


SERVERS_AND_DB = '''\
from flask import Flask
from flask_script import Command, Manager
from flask_script.commands import ShowUrls

from flask_migrate_compat.script import make_migrate_command

app = Flask("extras")
manager = Manager(app)
MigrateCommand = make_migrate_command()  # a fresh one: this test adds to it


@MigrateCommand.command
def create():
    """Create everything."""
    print("create in", app.name)


class Gunicorn(Command):
    """Serve with another server (its run() is no Flask app.run())."""

    def run(self):
        class WSGIApplication:
            def run(self):
                print("gunicorn would serve")

        app = WSGIApplication()
        return app.run()


manager.add_command("db", MigrateCommand)
manager.add_command("urls", ShowUrls())
manager.add_command("start", Gunicorn())

if __name__ == "__main__":
    manager.run()
'''


def test_migrate_command_additions_show_urls_and_other_servers(tmp_path, monkeypatch):
    """Commands added to MigrateCommand become 'flask db' commands; Flask-Script's own
    ShowUrls is a stub naming 'flask routes'; a local server's .run() is not app.run()."""
    (tmp_path / "extras_manage.py").write_text(SERVERS_AND_DB)
    monkeypatch.syspath_prepend(str(tmp_path))
    done = convert.convert(str(tmp_path / "extras_manage.py"),
                           str(tmp_path / "extras_commands.py"), format_code=False)
    assert done.converted == ["db create", "start"]
    assert dict(done.todos)["urls"] == "not converted: ShowUrls is a command of Flask-Script " \
        "itself: 'flask routes' lists the URLs. Write it by hand from extras_manage.py."
    assert not any("app.run" in text for _, text in done.todos)
    text = (tmp_path / "extras_commands.py").read_text()
    assert '    app.cli.commands["db"].add_command(create)\n' in text
    try:
        import extras_commands
    finally:
        for name in ("extras_commands", "extras_manage"):
            sys.modules.pop(name, None)
    from flask_migrate_compat import Migrate
    from flask_sqlalchemy import SQLAlchemy

    app = Flask("converted")
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app))
    from flask_migrate_compat.cli import db as db_group

    try:
        extras_commands.init_app(app)
        cli = app.test_cli_runner()
        assert cli.invoke(args=["db", "create"]).output == "create in extras\n"
        assert cli.invoke(args=["start"]).output == "gunicorn would serve\n"
    finally:
        db_group.commands.pop("create", None)  # init_app added it to the shared group


def test_script_inside_a_package_is_imported_by_its_package_name(tmp_path, monkeypatch):
    """lemur/manage.py (a package's module run as a script): the converted
    lemur/commands.py imports the script's own names from lemur.manage, the name an
    application importing lemur.commands can resolve."""
    package = tmp_path / "pkgapp"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "manage.py").write_text(textwrap.dedent('''\
        from flask import Flask
        from flask_script import Manager

        app = Flask("pkgapp")
        manager = Manager(app)
        GREETING = "hello from the package"


        @manager.command
        def greet():
            print(GREETING)


        if __name__ == "__main__":
            manager.run()
        '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    convert.convert(str(package / "manage.py"), format_code=False)
    text = (package / "commands.py").read_text()
    assert "from pkgapp.manage import GREETING\n" in text
    assert "    from pkgapp.commands import init_app\n" in text
    try:
        from pkgapp import commands

        app = Flask("converted")
        commands.init_app(app)
        assert app.test_cli_runner().invoke(args=["greet"]).output == \
            "hello from the package\n"
    finally:
        for name in ("pkgapp", "pkgapp.manage", "pkgapp.commands"):
            sys.modules.pop(name, None)
