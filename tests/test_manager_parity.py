"""Leaving Flask-Script: every kind of Manager command, run three ways with the same
arguments and the same standard input, gives the same output, exit code and database.

1. ``python manage.py X`` (Flask-Script, through the shims);
2. ``flask --app manage X``: the bridge, with no edit to ``manage.py``;
3. ``flask --app cli_app X``: the Click module the converter wrote from ``manage.py``
   (``python -m flask_migrate_compat convert manage.py``), loaded into the application
   by a module that cannot import Flask-Script at all.

Each route gets its own project folder and SQLite database; the database rows are
compared after the whole sequence. The application-factory ``manage.py`` of the shims
test, with its ``-c config`` Manager option, runs both as ``python manage.py -c ...``
and through Flask's app loading.
"""
from __future__ import annotations

import os
import py_compile
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import sqlalchemy as sa

from test_flask_script_shims import FACTORY_MANAGE

APP = '''\
import os

from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_compat import Migrate

app = Flask("parity")
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
Migrate(app, db)


@app.route("/")
def index():
    return "index"


class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    email = db.Column(db.String(120), unique=True, nullable=False)
    admin = db.Column(db.Boolean, nullable=False, default=False)
'''

MANAGE = '''\
"""Every kind of Flask-Script command."""
from flask_script import Command, Manager, Option, prompt, prompt_bool, prompt_choices
from flask import current_app, request, url_for

from flask_migrate_compat import MigrateCommand
from app import User, app, db

manager = Manager(app)
manager.add_command("db", MigrateCommand)


@manager.command
def initdb():
    """Create the tables."""
    db.create_all()
    print("tables:", ", ".join(sorted(db.metadata.tables)))


@manager.command
def hello(name, shout=False, greeting="hi"):
    """Greet someone: a positional argument, a flag and an option."""
    text = f"{greeting} {name} from {current_app.name}"
    print(text.upper() if shout else text)


@manager.option("-e", "--email", dest="email", required=True, help="The e-mail address.")
@manager.option("-a", "--admin", dest="admin", action="store_true", default=False,
                help="Make an administrator.")
@manager.option("-n", "--count", dest="count", type=int, default=1,
                help="How many users (default %(default)s).")
def adduser(email, admin, count):
    """Add users (an @option command)."""
    for number in range(count):
        address = email if count == 1 else f"{number}.{email}"
        db.session.add(User(email=address, admin=admin))
    db.session.commit()
    print("users:", db.session.query(User).count())


class Report(Command):
    """List the users (a Command subclass with option_list)."""

    option_list = (
        Option("fmt", nargs="?", default="text", choices=["text", "csv"],
               help="Output format."),
        Option("--admins", dest="admins_only", action="store_true", default=False),
    )

    def run(self, fmt, admins_only):
        query = db.session.query(User).order_by(User.email)
        if admins_only:
            query = query.filter(User.admin.is_(True))
        rows = query.all()
        separator = "," if fmt == "csv" else " "
        for user in rows:
            print(separator.join([user.email, str(user.admin)]))
        print("from", request.url, "index at", url_for("index"))
        if not rows:
            return 3


class Purge(Command):
    """Delete the users of a domain (get_options, prompt_bool, a text result)."""

    def __init__(self, default_domain="example.com"):
        super().__init__()
        self.default_domain = default_domain

    def get_options(self):
        return [Option("-d", "--domain", dest="domain", default=self.default_domain,
                       help="The domain.")]

    def run(self, domain):
        if not prompt_bool(f"Delete the users of {domain}?"):
            return "Nothing deleted."
        users = db.session.query(User).filter(User.email.endswith("@" + domain))
        count = users.delete(synchronize_session=False)
        db.session.commit()
        print("deleted", count)


manager.add_command("report", Report())
manager.add_command("purge", Purge(default_domain="example.org"))

users = Manager(usage="Manage users (a sub-manager)")


@users.option("-e", "--email", dest="email", help="Whom to show.")
def show(email):
    """Show a user; exit code 2 when there is none."""
    user = db.session.query(User).filter_by(email=email).first()
    if user is None:
        return 2
    print(user.email, "admin" if user.admin else "user")


@users.command
def promote(email):
    """Make a user an administrator, after asking."""
    name = prompt("Your name", default="nobody")
    colour = prompt_choices("Colour", ["red", ("g", "green")], default="red")
    user = db.session.query(User).filter_by(email=email).one()
    user.admin = True
    db.session.commit()
    print(f"{email} promoted by {name} ({colour})")


manager.add_command("users", users)

if __name__ == "__main__":
    manager.run()
'''

# The converted commands, in an application that cannot import Flask-Script.
CLI_APP = '''\
import sys

sys.modules["flask_script"] = None  # any import of Flask-Script now fails

from app import app
from commands import init_app

init_app(app)
'''

# (arguments, standard input, expected exit code)
SEQUENCE = [
    (["initdb"], None, 0),
    (["hello", "ann"], None, 0),
    (["hello", "--shout", "-g", "yo", "bob"], None, 0),
    (["report"], None, 3),
    (["adduser", "-e", "ann@example.com", "--admin"], None, 0),
    (["adduser", "--email", "bob@example.org", "-n", "2"], None, 0),
    (["report"], None, 0),
    (["report", "csv", "--admins"], None, 0),
    (["users", "show", "-e", "ann@example.com"], None, 0),
    (["users", "show", "-e", "nobody@example.com"], None, 2),
    (["users", "promote", "0.bob@example.org"], "\nmaybe\ng\n", 0),
    (["purge"], "n\n", 1),
    (["purge", "-d", "example.com"], "maybe\nyes\n", 0),
]
USAGE_ERRORS = [["hello"], ["adduser", "-n", "two", "-e", "x@y"], ["report", "xml"]]


def env_for(folder: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FLASK_", "FMC_TEST")) and k != "PYTHONPATH"}
    env.update(DATABASE_URL=f"sqlite:///{folder / 'parity.db'}", PYTHONDONTWRITEBYTECODE="1",
               PYTHONPATH=str(folder), **extra)
    return env


def run(folder: Path, argv: list[str], stdin: str | None = None, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *argv], cwd=folder, env=env_for(folder, **env),
                          input=stdin, capture_output=True, text=True, timeout=120)


ROUTES = {
    "manage.py": ["manage.py"],
    "bridge": ["-m", "flask", "--app", "manage"],
    "converted": ["-m", "flask", "--app", "cli_app"],
}


@pytest.fixture(scope="module")
def routes(tmp_path_factory) -> dict[str, Path]:
    """One project folder per route; the converter ran in the 'converted' one."""
    folders = {}
    for route in ROUTES:
        folder = tmp_path_factory.mktemp(route.replace(".", "_"))
        (folder / "app.py").write_text(APP)
        (folder / "manage.py").write_text(MANAGE)
        folders[route] = folder
    converted = folders["converted"]
    (converted / "cli_app.py").write_text(CLI_APP)
    proc = run(converted, ["-m", "flask_migrate_compat", "convert", "manage.py"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    folders["report"] = proc.stdout
    return folders


def rows(folder: Path) -> list[tuple]:
    engine = sa.create_engine(f"sqlite:///{folder / 'parity.db'}")
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT id, email, admin FROM users ORDER BY id")))
    finally:
        engine.dispose()


def test_converter_report_and_module(routes):
    converted = routes["converted"]
    report = routes["report"].splitlines()
    assert report[-1] == "wrote commands.py: 7 commands and 1 group from manage.py, " \
        "3 skipped, 0 TODOs"
    assert "skipped db: Flask-Migrate's command group: Migrate(app, db) registers 'flask db'" \
        in report
    assert any(line.startswith("skipped runserver: ") for line in report)
    text = (converted / "commands.py").read_text()
    py_compile.compile(str(converted / "commands.py"), doraise=True)
    assert "flask_script" not in text and "TODO" not in text
    # Verbatim bodies, imported names, Click definitions.
    assert textwrap.dedent('''\
        @click.command("hello")
        @click.argument("name")
        @click.option("-s", "--shout", is_flag=True)
        @click.option("-g", "--greeting", default="hi")
        @with_appcontext
        @_in_test_request_context
        def hello(name, shout=False, greeting="hi"):
            """Greet someone: a positional argument, a flag and an option."""
            text = f"{greeting} {name} from {current_app.name}"
            print(text.upper() if shout else text)
        ''') in text
    assert "from app import User, db\n" in text
    assert "from flask_migrate_compat.prompts import prompt, prompt_bool, prompt_choices\n" \
        in text
    assert '@click.option("-n", "--count", type=int, default=1, ' \
        'help="How many users (default 1).")' in text
    assert '@click.group("users", help="Manage users (a sub-manager)")' in text
    assert '@users.command("promote")' in text


def outcomes(folder: Path, route: str) -> list[tuple]:
    """Run the whole sequence through one route: (exit code, stdout, stderr) each."""
    results = []
    for argv, stdin, _ in SEQUENCE:
        proc = run(folder, [*ROUTES[route], *argv], stdin)
        results.append((proc.returncode, proc.stdout, proc.stderr))
    return results


@pytest.fixture(scope="module")
def legacy(routes) -> list[tuple]:
    results = outcomes(routes["manage.py"], "manage.py")
    assert [code for code, _, _ in results] == [code for _, _, code in SEQUENCE], results
    return results


@pytest.mark.parametrize("route", ["bridge", "converted"])
def test_same_output_exit_code_and_database(routes, legacy, route):
    for (argv, _, _), expected, got in zip(SEQUENCE, legacy, outcomes(routes[route], route)):
        assert got == expected, f"{' '.join(argv)!r} via {route}"
    assert rows(routes[route]) == rows(routes["manage.py"]) == [
        (2, "0.bob@example.org", 1), (3, "1.bob@example.org", 0)]
    # Usage errors: exit code 2 on every route (the wording is each front end's own).
    for argv in USAGE_ERRORS:
        proc = run(routes[route], [*ROUTES[route], *argv])
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert proc.stderr.splitlines()[-1].startswith("Error: "), proc.stderr


def test_help_lists_every_command(routes):
    for route in ("bridge", "converted"):
        listing = run(routes[route], [*ROUTES[route], "--help"]).stdout
        for name in ("adduser", "hello", "initdb", "purge", "report", "users", "db",
                     "shell"):
            assert f"  {name} " in listing, (route, listing)
    listing = run(routes["bridge"], [*ROUTES["bridge"], "--help"]).stdout
    assert "runserver  Not bridged: Flask-Script's development server: use 'flask run'" \
        in listing
    # The bridge shows Flask-Script's own help text for a command.
    legacy = run(routes["manage.py"], ["manage.py", "adduser", "--help"]).stdout
    bridged = run(routes["bridge"], [*ROUTES["bridge"], "adduser", "--help"]).stdout
    assert bridged == legacy.replace("manage.py adduser", "python -m flask adduser")
    assert "Add users (an @option command)." in bridged


def test_app_factory_manager_with_config_option(tmp_path):
    """A Manager(create_app) with ``-c``: its options go to Flask's app loading, either
    through manager_app (no edit) or add_manager_commands where the app is made."""
    (tmp_path / "factory_manage.py").write_text(FACTORY_MANAGE)
    (tmp_path / "settings.cfg").write_text('GREETING = "howdy"\n')
    (tmp_path / "wsgi.py").write_text(textwrap.dedent('''\
        import os

        from flask_migrate_compat.script import add_manager_commands

        from factory_manage import create_app, manager

        app = create_app(os.environ.get("APP_CONFIG"))
        add_manager_commands(app, manager)
    '''))
    loader = "flask_migrate_compat.bridge:manager_app('factory_manage', '-c', 'settings.cfg')"
    for args in (["config"], ["users", "greet", "zoe"]):
        legacy = run(tmp_path, ["factory_manage.py", "-c", "settings.cfg", *args])
        assert legacy.returncode == 0 and "howdy" in legacy.stdout, legacy.stderr
        for argv, env in (
            (["-m", "flask", "--app", loader, *args], {}),
            (["-m", "flask", "--app", "wsgi", *args], {"APP_CONFIG": "settings.cfg"}),
        ):
            proc = run(tmp_path, argv, **env)
            assert (proc.returncode, proc.stdout, proc.stderr) \
                == (legacy.returncode, legacy.stdout, legacy.stderr), argv
    default = run(tmp_path, ["-m", "flask", "--app", "wsgi", "config"])
    assert default.stdout == run(tmp_path, ["factory_manage.py", "config"]).stdout \
        == "greeting: default\n"


# -- shapes met in real applications -----------------------------------------------------

SHAPES_APP = '''\
from flask import Flask

app = Flask("shapes")


@app.route("/")
def index():
    return "index page"
'''

# A test suite that builds URLs deep below the command (as a real `test` command runs
# unittest cases that call url_for): nothing in the command's own body names the request.
SHAPES_CHECKS = '''\
from flask import url_for


def run_checks():
    print("checked", url_for("index"))
    return 0
'''

# A Command subclass in a module of its own, made with an argument in manage.py.
SHAPES_COMMANDS = '''\
from flask_script import Command, Option


class InitDbCommand(Command):
    """Create the tables of a schema."""

    option_list = (Option("--drop", action="store_true", default=False),)

    def __init__(self, schema="public"):
        super().__init__()
        self.schema = schema

    def run(self, drop):
        print("init", self.schema, "drop" if drop else "keep")
'''

SHAPES_MANAGE = '''\
import os
import threading
import urllib.request

from flask_script import Manager

from shapes_app import app
from shapes_checks import run_checks
from shapes_commands import InitDbCommand

manager = Manager(app)
manager.add_command("init_db", InitDbCommand(schema="audit"))


@manager.command
def test():
    """Run the checks."""
    return run_checks()


@manager.command
def routes():
    """The Manager's own listing (named like Flask's)."""
    print("the manager's routes:", sorted(rule.rule for rule in app.url_map.iter_rules()))


@manager.command
def profile():
    """Serve the application (a profiler command calls app.run())."""
    port = int(os.environ["SHAPES_PORT"])

    def ask_then_stop():
        # Ask the served application once, then end the process as Ctrl+C would.
        for _ in range(200):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    print("served:", r.read().decode(), flush=True)
                    break
            except OSError:
                threading.Event().wait(0.1)
        os._exit(0)

    threading.Thread(target=ask_then_stop, daemon=True).start()
    app.run(port=port, use_reloader=False)


if __name__ == "__main__":
    manager.run()
'''

# The converted commands in the application (Flask-Script stays importable: the
# converted init_db still makes InitDbCommand, a Flask-Script Command).
SHAPES_CLI_APP = '''\
from shapes_app import app
from commands import init_app

init_app(app)
'''

SHAPES_ROUTES = {
    "manage.py": ["manage.py"],
    "bridge": ["-m", "flask", "--app", "manage"],
    "converted": ["-m", "flask", "--app", "cli_app"],
}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shapes")
    for name, text in (("shapes_app.py", SHAPES_APP), ("shapes_checks.py", SHAPES_CHECKS),
                       ("shapes_commands.py", SHAPES_COMMANDS), ("manage.py", SHAPES_MANAGE),
                       ("cli_app.py", SHAPES_CLI_APP)):
        (folder / name).write_text(text)
    proc = run(folder, ["-m", "flask_migrate_compat", "convert", "manage.py"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (folder / "report.txt").write_text(proc.stdout)
    return folder


def shape_run(folder: Path, route: str, *args: str) -> tuple:
    name = args[0]
    if route != "manage.py" and name == "routes":
        name = "manager-routes"  # 'flask routes' is Flask's own
    proc = run(folder, [*SHAPES_ROUTES[route], name, *args[1:]], SHAPES_PORT=str(free_port()))
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("args", [("init_db",), ("init_db", "--drop"), ("test",),
                                  ("routes",), ("profile",)])
def test_real_shapes_same_on_every_route(shapes, args):
    """A Command class of another module, a test command whose url_for is deep below
    it, a command named like Flask's own, a command calling app.run(): the bridge and
    the converted command do what manage.py does."""
    legacy = shape_run(shapes, "manage.py", *args)
    assert legacy[0] == 0 and legacy[1], legacy
    for route in ("bridge", "converted"):
        got = shape_run(shapes, route, *args)
        if args == ("profile",):  # the server's log names its port and the time
            assert "Running on http://127.0.0.1:" in got[2], got
            got, legacy = got[:2], legacy[:2]
        assert got == legacy, (route, args)


def test_real_shapes_converter_report_and_help(shapes):
    report = (shapes / "report.txt").read_text().splitlines()
    text = (shapes / "commands.py").read_text()
    assert "    return InitDbCommand(schema=\"audit\").run(**values)\n" in text
    assert "TODO imports: shapes_commands imports Flask-Script (Command, InitDbCommand, " \
           "Option): these commands need Flask-Script, and flask-migrate-compat's import " \
           "hook, until it no longer does" in report
    assert any(line.startswith("TODO profile: calls app.run(), which the flask command "
                               "makes return at once") for line in report)
    assert "TODO routes: 'flask routes' is Flask's own command, which flask runs instead " \
           "of this one: written as 'manager-routes', as the bridge names it; choose a " \
           "name" in report
    assert report[-1].startswith("wrote commands.py: 4 commands from manage.py, 2 skipped, "
                                 "3 TODOs")
    # flask routes stays Flask's; the help says where the Manager's went.
    listing = run(shapes, [*SHAPES_ROUTES["bridge"], "--help"]).stdout
    assert "manager-routes The Manager's 'routes' ('flask routes' is Flask's own). The " \
           "Manager's own listing (named like Flask's)." in " ".join(listing.split())
    flask_routes = run(shapes, [*SHAPES_ROUTES["bridge"], "routes"])
    assert flask_routes.returncode == 0 and "Endpoint" in flask_routes.stdout


def test_factory_manager_command_not_found_names_the_bridge(tmp_path):
    """flask --app manage X, X a command of a Manager(create_app): Flask found
    create_app, not the Manager; the error says what to run instead."""
    (tmp_path / "factory_manage.py").write_text(FACTORY_MANAGE)
    proc = run(tmp_path, ["-m", "flask", "--app", "factory_manage", "config"])
    assert proc.returncode == 2
    assert proc.stderr.splitlines()[-2:] == [
        "Error: No such command 'config'.",
        "'config' is a command of the Manager(create_app) in factory_manage, which makes "
        "its application only when it runs: use flask --app \"flask_migrate_compat.bridge:"
        "manager_app('factory_manage')\" config, or call add_manager_commands(app, manager) "
        "where the application is made."]
    other = run(tmp_path, ["-m", "flask", "--app", "factory_manage", "nothing"])
    assert other.returncode == 2
    assert other.stderr.splitlines()[-1] == "Error: No such command 'nothing'."
    # What the line says to run works.
    named = run(tmp_path, ["-m", "flask", "--app",
                           "flask_migrate_compat.bridge:manager_app('factory_manage')",
                           "config"])
    assert (named.returncode, named.stdout) == (0, "greeting: default\n")


MAIN_MANAGE = '''\
from flask import Flask, current_app
from flask_script import Command, Manager


def create_app(config=None):
    app = Flask("late_app")
    app.config["WHO"] = config or "nobody"
    return app


manager = Manager(create_app)
manager.add_option("-c", "--config", dest="config", required=False)


def main():
    # Commands added only when the script runs, as a console script's main() does.
    manager.add_command("late", Command(lambda: print("late for", current_app.config["WHO"])))
    manager.run()


if __name__ == "__main__":
    main()
'''


def test_manager_app_runs_a_script_up_to_manager_run(tmp_path):
    """runner.manager_app('main_manage.py', ...) runs the script as python would, up to
    manager.run(), so commands its main() adds are there too; bridge.manager_app, which
    imports modules, names it for a script's path."""
    (tmp_path / "main_manage.py").write_text(MAIN_MANAGE)
    legacy = run(tmp_path, ["main_manage.py", "-c", "ann", "late"])
    assert (legacy.returncode, legacy.stdout) == (0, "late for ann\n"), legacy.stderr
    loader = "flask_migrate_compat.runner:manager_app('main_manage.py', '-c', 'ann')"
    bridged = run(tmp_path, ["-m", "flask", "--app", loader, "late"])
    assert (bridged.returncode, bridged.stdout, bridged.stderr) \
        == (legacy.returncode, legacy.stdout, legacy.stderr)
    missing = run(tmp_path, ["-m", "flask", "--app",
                             "flask_migrate_compat.runner:manager_app('nothing.py')", "late"])
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "Error: running nothing.py failed: FileNotFoundError" in missing.stderr, missing.stderr
    by_path = run(tmp_path, ["-m", "flask", "--app",
                             "flask_migrate_compat.bridge:manager_app('main_manage.py')", "late"])
    assert by_path.returncode == 2 and "Traceback" not in by_path.stderr
    assert ("Error: main_manage.py is a script's path: name its module, or let "
            "flask_migrate_compat.runner:manager_app('main_manage.py', ...) run it up to "
            "manager.run()") in by_path.stderr, by_path.stderr
