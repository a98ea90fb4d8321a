"""The bridge in this process: which Manager entries reach ``app.cli`` and how they
behave there (exit codes, errors, help, switches), through Flask's own test runner.
The same commands run as real ``python manage.py`` / ``flask`` processes in
tests/test_manager_parity.py.
"""
from __future__ import annotations

import getpass

import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_compat import Migrate, MigrateCommand, bridge, prompts
from flask_migrate_compat._flask_script_compat import apply

flask_script = apply()

# Flask-Script's Command(func) calls inspect.getargspec, deprecated (not yet removed)
# on Python 3.9 and 3.10; the shims replace it only where it is gone.
pytestmark = pytest.mark.filterwarnings("ignore:inspect.getargspec:DeprecationWarning")


@pytest.fixture
def app():
    return Flask("bridged")


def invoke(app, *args, input=None):
    return app.test_cli_runner().invoke(args=list(args), input=input)


def test_zero_edit_manager_app(app):
    manager = flask_script.Manager(app)

    @manager.command
    def hello(name, loud=False):
        """Say hello."""
        print(("hello " + name).upper() if loud else "hello " + name)

    assert invoke(app, "hello", "ann").output == "hello ann\n"
    assert invoke(app, "hello", "-l", "bob").output == "HELLO BOB\n"
    # Options added after the command was bridged are read when it runs.
    @manager.option("-t", "--times", dest="times", type=int, default=1)
    @manager.option("-w", "--word", dest="word", default="tick")
    def repeat(word, times):
        print(" ".join([word] * times))

    assert invoke(app, "repeat", "-w", "go", "-t", "2").output == "go go\n"
    assert sorted(app.cli.commands) == ["hello", "repeat", "runserver"]


@pytest.mark.parametrize("off", ["env", "argument"])
def test_bridge_off(app, monkeypatch, off):
    if off == "env":
        monkeypatch.setenv(bridge.NO_BRIDGE_ENV, "1")
        manager = flask_script.Manager(app)
    else:
        manager = flask_script.Manager(app, flask_cli=False)
    manager.add_command("noop", flask_script.Command(lambda: None))
    assert app.cli.commands == {}
    # The explicit call works either way.
    assert bridge.add_manager_commands(app, manager) == {
        "shell": bridge.skip_reason(bridge.SHELL, "shell"),
        "runserver": bridge.skip_reason(bridge.SERVER, "runserver"),
    }
    assert sorted(app.cli.commands) == ["noop", "runserver"]


def test_skipped_entries_are_listed(app):
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app))

    @app.cli.command("seed")
    def own_seed():
        """The app's own seed."""
        print("own seed")

    manager = flask_script.Manager(app, with_default_commands=False)
    manager.add_command("db", MigrateCommand)
    manager.add_command("shell", flask_script.Shell(make_context=lambda: {"answer": 42}))
    manager.add_command("serve", flask_script.Server(host="0.0.0.0", port=8000))
    manager.add_command("seed", flask_script.Command(lambda: print("manager seed")))
    skipped = bridge.add_manager_commands(app, manager)
    assert skipped == {
        "db": "Flask-Migrate's command group: Migrate(app, db) registers 'flask db'",
        "shell": "Flask-Script's shell: use 'flask shell' (it gets the make_context names)",
        "serve": "Flask-Script's development server: use 'flask run --host 0.0.0.0 "
                 "--port 8000'",
        "seed": "the application's own 'flask seed' command stands for it",
    }
    assert invoke(app, "seed").output == "own seed\n"
    assert invoke(app, "db", "--help").exit_code == 0
    serve = invoke(app, "serve", "-p", "1")
    assert (serve.exit_code, serve.output) == (
        1, "Error: 'serve' is not bridged: Flask-Script's development server: use "
           "'flask run --host 0.0.0.0 --port 8000'\n")
    # flask shell gets the Shell's names, computed in a request context as before.
    with app.app_context():  # as under flask shell
        assert app.make_shell_context()["answer"] == 42
    help_text = invoke(app, "--help").output
    assert "serve  Not bridged: Flask-Script's development server" in help_text


def test_return_values_and_errors_as_click_does(app):
    manager = flask_script.Manager(app)
    invalid = __import__("flask_script.commands", fromlist=["InvalidCommand"]).InvalidCommand

    @manager.option("-r", "--result", dest="result")
    def finish(result):
        if result == "int":
            return 4
        if result == "text":
            return "went wrong"
        if result == "invalid":
            raise invalid("bad input")
        if result == "boom":
            raise RuntimeError("a bug")

    assert invoke(app, "finish").exit_code == 0
    assert invoke(app, "finish", "-r", "int").exit_code == 4
    text = invoke(app, "finish", "-r", "text")
    assert (text.exit_code, text.output) == (1, "went wrong\n")
    bad = invoke(app, "finish", "-r", "invalid")
    assert (bad.exit_code, bad.output) == (1, "Error: bad input\n")
    boom = invoke(app, "finish", "-r", "boom")
    assert boom.exit_code == 1 and isinstance(boom.exception, RuntimeError)
    usage = invoke(app, "finish", "-x")
    assert usage.exit_code == 2
    assert usage.output.splitlines()[0].endswith(" finish [-?] [-r RESULT]")
    assert usage.output.splitlines()[-1] == "Error: unrecognized arguments: -x"
    helped = invoke(app, "finish", "-?")
    assert helped.exit_code == 0 and "--result RESULT" in helped.output  # argparse's help


def test_capture_all_args_and_request_context(app):
    manager = flask_script.Manager(app)

    class Passthrough(flask_script.Command):
        """Hands the rest of the command line on."""

        capture_all_args = True

        def run(self, rest):
            from flask import request

            print(rest, request.path)

    manager.add_command("pass", Passthrough())
    assert invoke(app, "pass", "a", "--b").output == "['a', '--b'] /\n"


def test_factory_manager_and_sub_managers(app):
    manager = flask_script.Manager(lambda: app)
    bridge.add_manager_commands(app, manager)
    # Commands added after the explicit call are registered as well.
    users = flask_script.Manager(usage="User commands")
    manager.add_command("users", users)

    @users.command
    def add(email):
        """Add a user."""
        print("added", email)

    assert invoke(app, "users", "add", "x@y").output == "added x@y\n"
    listing = invoke(app, "users", "--help").output
    assert "User commands" in listing and "add  Add a user." in listing


def test_sub_manager_built_on_the_app_moves_under_its_parent(app):
    sub = flask_script.Manager(app)
    sub.add_command("ping", flask_script.Command(lambda: print("pong")))
    assert "ping" in app.cli.commands
    root = flask_script.Manager(app)
    root.add_command("tools", sub)
    assert "ping" not in app.cli.commands
    assert invoke(app, "tools", "ping").output == "pong\n"


@pytest.mark.parametrize("name", ["prompt", "prompt_pass", "prompt_bool", "prompt_choices"])
def test_prompts_ask_and_answer_like_flask_script(monkeypatch, name):
    """flask_migrate_compat.prompts (used by converted code) against Flask-Script's."""
    arguments = {
        "prompt": [("Name", None), ("Name", "nobody"), ("Sure?", "x")],
        "prompt_pass": [("Password", None), ("Password", "default")],
        "prompt_bool": [("Sure", False), ("Sure", True)],
        "prompt_choices": [("Colour", ["red", ("g", "green")], "red"),
                           ("Colour", ["a", "b"])],
    }[name]
    answers = ["", "maybe", "G", "yes", "none", "typed"]

    def dialogue(function, args):
        queue, asked = list(answers), []

        def read(question=""):
            asked.append(question)
            return queue.pop(0)

        monkeypatch.setattr("builtins.input", read)
        monkeypatch.setattr("flask_script.cli.input", read)  # its own binding
        monkeypatch.setattr(getpass, "getpass", read)
        return function(*args), asked

    for args in arguments:
        assert dialogue(getattr(prompts, name), args) \
            == dialogue(getattr(flask_script, name), args), args


def test_names_of_flask_own_commands_are_renamed(app):
    """flask routes/run/shell are Flask's, looked up before app.cli: the Manager's
    command of that name is bridged as manager-<name>, and says so in flask --help."""
    manager = flask_script.Manager(app)
    manager.add_command("routes", flask_script.Command(lambda: print("mine")))
    manager.add_command("run", flask_script.Server(port=8000))
    skipped = bridge.add_manager_commands(app, manager)
    assert skipped["routes"] == \
        "'flask routes' is Flask's own command; the Manager's runs as 'flask manager-routes'"
    assert skipped["run"].startswith("Flask-Script's development server: use 'flask run")
    assert "routes" not in app.cli.commands and "run" not in app.cli.commands
    assert invoke(app, "manager-routes").output == "mine\n"
    assert "manager-routes  The Manager's 'routes' ('flask routes' is Flask's own)." \
        in invoke(app, "--help").output


def test_app_run_serves_under_the_bridge(app, monkeypatch):
    """Flask's CLI sets FLASK_RUN_FROM_CLI (app.run() then returns at once); the bridged
    command runs without it, and it is back afterwards."""
    monkeypatch.setenv(bridge.RUN_FROM_CLI_ENV, "true")
    seen = []
    manager = flask_script.Manager(app)
    manager.add_command("serve_it", flask_script.Command(
        lambda: seen.append(__import__("os").environ.get(bridge.RUN_FROM_CLI_ENV))))
    assert invoke(app, "serve_it").exit_code == 0
    assert seen == [None]
    assert __import__("os").environ[bridge.RUN_FROM_CLI_ENV] == "true"


def test_commands_added_to_migrate_command_join_flask_db(app):
    """An application that added its own commands to MigrateCommand
    (@MigrateCommand.command: 'manage.py db create') finds them under 'flask db',
    next to Migrate's; the shared 'flask db' group itself is not changed."""
    from flask_migrate_compat.cli import db as db_group
    from flask_migrate_compat.script import make_migrate_command

    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app))
    migrate_command = make_migrate_command()

    @migrate_command.command
    def create():
        """Create the tables and stamp the head."""
        print("created in", __import__("flask").current_app.name)

    manager = flask_script.Manager(app)
    manager.add_command("db", migrate_command)
    assert invoke(app, "db", "create").output == "created in bridged\n"
    listing = invoke(app, "db", "--help").output
    assert "create   " in listing and "upgrade  " in listing
    assert "create" not in db_group.commands
