"""Flask-Script 2.0.6's own features on today's Flask, through our shims.

Every manage.py here imports ``flask_script`` on its first line, before anything of
ours: the import hook installed by ``flask_migrate_compat.pth`` must make that work.
The scripts run as real subprocesses (shell, dev server, prompts on stdin and on a
pseudo-terminal). The in-process tests check what the shims change, and that they
change nothing that the running Python and Flask do not need.
"""
from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import select
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import require_module

MANAGE = '''\
from flask_script import Command, Group, Manager, Option, Shell
from flask_script import prompt, prompt_bool, prompt_choices, prompt_pass
from flask import Flask, current_app

app = Flask("flask_manage")


@app.route("/")
def index():
    return "hello from flask-script"


manager = Manager(app)


@manager.command
def hello(name, loud=False, greeting="hi"):
    """Greet someone."""
    text = f"{greeting} {name}"
    print(text.upper() if loud else text, type(name).__name__)


@manager.option("-n", "--number", dest="number", type=int, default=1, help="how many")
@manager.option("-w", "--word", dest="word", default="tick")
def repeat(number, word):
    """Repeat a word."""
    print(" ".join([word] * number), current_app.name)


class Deploy(Command):
    """Deploy somewhere."""

    option_list = (
        Option("target"),
        Option("--dry-run", action="store_true", dest="dry_run", default=False),
        Group(Option("--fast", action="store_true", default=False),
              Option("--safe", action="store_true", default=False),
              exclusive=True),
        Group(Option("--tag", default="latest"), title="release", description="what"),
    )

    def run(self, target, dry_run, fast, safe, tag):
        print(f"deploy target={target} dry_run={dry_run} fast={fast} safe={safe} tag={tag}")


manager.add_command("deploy", Deploy())


@manager.command
def ask():
    """Prompts on stdin."""
    name = prompt("Name", default="nobody")
    again = prompt("Name again")
    sure = prompt_bool("Sure", default=False)
    colour = prompt_choices("Colour", ["red", ("g", "green")], default="red")
    nothing = prompt_choices("Other", ["a", "b"])
    print(f"answers name={name} again={again} sure={sure} colour={colour} other={nothing}")


@manager.command
def secret():
    """prompt_pass on the controlling terminal."""
    password = prompt_pass("Password")
    print("length", len(password), "matches", password == "s3cr3t-pw")


if __name__ == "__main__":
    manager.run()
'''

FACTORY_MANAGE = '''\
from flask_script import Manager, Shell
from flask import Flask, current_app


def create_app(config=None):
    app = Flask("factory_app")
    app.config["GREETING"] = "default"
    if config:
        app.config.from_pyfile(config)
    return app


manager = Manager(create_app)
manager.add_option("-c", "--config", dest="config", required=False)

sub = Manager(usage="Sub-commands for users")


@sub.command
def greet(name):
    """Greet a user."""
    print(current_app.config["GREETING"], name, "from", current_app.name)


@sub.option("-l", "--limit", dest="limit", type=int, default=3)
def listing(limit):
    """List users."""
    print("listing", limit)


manager.add_command("users", sub)


def make_context():
    return {"app": current_app._get_current_object(), "answer": 42}


manager.add_command("shell", Shell(make_context=make_context))


@manager.command
def config():
    """Show the greeting."""
    print("greeting:", current_app.config["GREETING"])


if __name__ == "__main__":
    manager.run()
'''

SHELL_FLAGS = ("--no-ipython", "--no-bpython", "--no-ptipython", "--no-ptpython")


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLASK_") and k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(PYTHONDONTWRITEBYTECODE="1", PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.fixture(scope="module")
def scripts(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("flask_script")
    (path / "manage.py").write_text(MANAGE)
    (path / "factory_manage.py").write_text(FACTORY_MANAGE)
    (path / "settings.cfg").write_text('GREETING = "howdy"\n')
    return path


def run(cwd: Path, *args: str, input: str | None = None, env: dict | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          input=input, env=env or clean_env(), timeout=timeout)


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


# -- commands ---------------------------------------------------------------------------

def test_command_decorator_positional_and_optional_args(scripts):
    # Command(func) introspects the signature (inspect.getargspec, gone in Python 3.11).
    assert ok(run(scripts, "manage.py", "hello", "bob")) == "hi bob str\n"
    assert ok(run(scripts, "manage.py", "hello", "--loud", "-g", "yo", "ann")) == "YO ANN str\n"
    missing = run(scripts, "manage.py", "hello")
    assert missing.returncode == 2
    assert "the following arguments are required: name" in missing.stderr


def test_option_decorator(scripts):
    assert ok(run(scripts, "manage.py", "repeat", "-n", "3", "--word", "go")) \
        == "go go go flask_manage\n"
    assert ok(run(scripts, "manage.py", "repeat")) == "tick flask_manage\n"


def test_command_subclass_with_option_list_and_groups(scripts):
    out = ok(run(scripts, "manage.py", "deploy", "prod", "--dry-run", "--fast", "--tag", "v2"))
    assert out == "deploy target=prod dry_run=True fast=True safe=False tag=v2\n"
    both = run(scripts, "manage.py", "deploy", "prod", "--fast", "--safe")
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    help_text = ok(run(scripts, "manage.py", "deploy", "--help"))
    assert "Deploy somewhere." in help_text
    assert "release:" in help_text and "--tag TAG" in help_text


# -- help and usage ---------------------------------------------------------------------

def test_no_command_prints_command_list_and_exits_2(scripts):
    proc = run(scripts, "manage.py")
    assert proc.returncode == 2, proc.stderr
    assert "usage: manage.py" in proc.stdout
    for name in ("hello", "repeat", "deploy", "ask", "shell", "runserver"):
        assert name in proc.stdout
    assert "Greet someone." in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("flag", ["--help", "-?"])
def test_help_flags(scripts, flag):
    out = ok(run(scripts, "manage.py", flag))
    assert "usage: manage.py" in out and "Repeat a word." in out and "runserver" in out


# -- prompts ----------------------------------------------------------------------------

def test_prompt_prompt_bool_prompt_choices_on_stdin(scripts):
    # Empty answers take the default; prompt without default asks again until answered;
    # prompt_bool and prompt_choices re-ask on answers they do not know.
    answers = "\nAlice\nmaybe\nyes\npurple\ng\nnone\n"
    out = ok(run(scripts, "manage.py", "ask", input=answers))
    assert "answers name=nobody again=Alice sure=True colour=g other=None" in out
    assert out.count("Sure [n]: ") == 2
    assert "Colour - (red, green [g]) [red]: " in out


def test_prompt_pass_reads_the_terminal_without_echo(scripts):
    # getpass reads /dev/tty: give the child a pseudo-terminal as controlling terminal.
    require_module("termios")
    launcher = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                "os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", launcher, "manage.py", "secret"], cwd=scripts,
        stdin=slave, stdout=slave, stderr=slave, env=clean_env(), start_new_session=True)
    os.close(slave)
    try:
        seen = _read_until(master, b"Password: ")
        assert b"Password: " in seen, seen
        os.write(master, b"s3cr3t-pw\n")
        seen += _read_until(master, None)
        assert proc.wait(timeout=30) == 0, seen
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    text = seen.decode(errors="replace")
    assert "length 9 matches True" in text
    assert "s3cr3t-pw" not in text  # echo was off while typing
    assert "GetPassWarning" not in text


def _read_until(fd: int, marker: bytes | None, limit: float = 30) -> bytes:
    """Read from a pty master until ``marker`` shows up (None: until the child is gone)."""
    data = b""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        data += chunk
        if marker is not None and marker in data:
            break
    return data


# -- shell --------------------------------------------------------------------------------

def test_shell_default_context_has_app(scripts):
    # The default context read flask._request_ctx_stack.top.app (removed in Flask 3.0).
    proc = run(scripts, "manage.py", "shell", *SHELL_FLAGS,
               input="print('APP', type(app).__name__, app.name)\n")
    assert "APP Flask flask_manage" in ok(proc)


def test_shell_custom_make_context(scripts):
    proc = run(scripts, "factory_manage.py", "shell", *SHELL_FLAGS,
               input="print('CTX', answer, app.name, sorted(k for k in dir() if not k.startswith('_')))\n")
    assert "CTX 42 factory_app ['answer', 'app']" in ok(proc)


# -- server -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_runserver_answers_http(scripts):
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "-h", "127.0.0.1", "-p", str(port)],
        cwd=scripts, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    body = None
    try:
        deadline = time.monotonic() + 30
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    body = response.read().decode()
            except OSError:
                time.sleep(0.2)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert body == "hello from flask-script", f"exit {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err


# -- factories, global options, sub-managers ---------------------------------------------

def test_factory_manager_with_config_option(scripts):
    assert ok(run(scripts, "factory_manage.py", "config")) == "greeting: default\n"
    assert ok(run(scripts, "factory_manage.py", "-c", "settings.cfg", "config")) \
        == "greeting: howdy\n"


def test_sub_manager(scripts):
    out = ok(run(scripts, "factory_manage.py", "--config", "settings.cfg", "users", "greet", "zoe"))
    assert out == "howdy zoe from factory_app\n"
    assert ok(run(scripts, "factory_manage.py", "users", "listing", "-l", "7")) == "listing 7\n"
    # A sub-manager without a sub-command prints its own help (exit 2), as before.
    proc = run(scripts, "factory_manage.py", "users")
    assert proc.returncode == 2
    assert "Sub-commands for users" in proc.stdout and "greet" in proc.stdout
    assert "Traceback" not in proc.stderr


# -- the argparse collision of CPython 3.12.8+/3.13.1+, emulated ----------------------------

# The argparse of CPython 3.12.8 / 3.13.1 (gh-125355): parse_known_args ->
# _parse_known_args2(args, namespace, intermixed) -> _parse_known_args(args, namespace,
# intermixed). The interpreters here predate it, so this rebuilds that call chain on
# top of the installed argparse.
EMULATE = '''\
import argparse
import sys


def emulate_new_argparse():
    cls = argparse.ArgumentParser
    if hasattr(cls, "_parse_known_args2"):
        return  # this Python has the new chain already
    old_inner = cls._parse_known_args

    def _parse_known_args(self, arg_strings, namespace, intermixed):
        return old_inner(self, arg_strings, namespace)

    def parse_known_args(self, args=None, namespace=None):
        return self._parse_known_args2(args, namespace, intermixed=False)

    def _parse_known_args2(self, args, namespace, intermixed):
        args = sys.argv[1:] if args is None else list(args)
        if namespace is None:
            namespace = argparse.Namespace()
        for action in self._actions:
            if action.dest is not argparse.SUPPRESS and not hasattr(namespace, action.dest) \\
                    and action.default is not argparse.SUPPRESS:
                setattr(namespace, action.dest, action.default)
        for dest, value in self._defaults.items():
            if not hasattr(namespace, dest):
                setattr(namespace, dest, value)
        try:
            namespace, args = self._parse_known_args(args, namespace, intermixed)
        except argparse.ArgumentError as err:
            self.error(str(err))
        extras = vars(namespace).pop("_unrecognized_args", None)
        if extras:
            args.extend(extras)
        return namespace, args

    cls._parse_known_args = _parse_known_args
    cls.parse_known_args = parse_known_args
    cls._parse_known_args2 = _parse_known_args2
'''

EMULATED_MANAGE = '''\
import os
from emulate import emulate_new_argparse

if os.environ["WHEN"] == "before":
    emulate_new_argparse()

from flask_script import Manager
from flask import Flask

if os.environ["WHEN"] != "before":
    emulate_new_argparse()
if os.environ["WHEN"] == "after":
    # Flask-Script's own patch; on a Python with the new argparse our shim replaced it.
    from flask_migrate_compat import _flask_script_compat as compat
    Manager._patch_argparser = compat._originals.get(
        "Manager._patch_argparser", Manager._patch_argparser)
if os.environ["WHEN"] == "after+apply":
    from flask_migrate_compat._flask_script_compat import apply
    apply()

manager = Manager(Flask("emulated"))
sub = Manager(usage="sub usage")
manager.add_command("sub", sub)


@manager.command
def hello(name):
    print("hello", name)


@sub.command
def inner(value):
    print("inner", value)


if __name__ == "__main__":
    manager.run()
'''

SANITY = '''\
import argparse
from emulate import emulate_new_argparse

emulate_new_argparse()
parser = argparse.ArgumentParser(prog="plain")
parser.add_argument("--x", default="0")
subparsers = parser.add_subparsers(dest="cmd")
subparsers.add_parser("run").add_argument("item")
print(parser.parse_args(["--x", "1", "run", "it"]))
print(parser.parse_known_args(["run", "it", "--extra"]))
'''


@pytest.fixture(scope="module")
def emulated(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("emulated_argparse")
    (path / "emulate.py").write_text(EMULATE)
    (path / "manage.py").write_text(EMULATED_MANAGE)
    (path / "sanity.py").write_text(SANITY)
    return path


def test_emulated_new_argparse_is_faithful_for_plain_parsers(emulated):
    out = ok(run(emulated, "sanity.py"))
    assert "Namespace(x='1', cmd='run', item='it')" in out
    assert "['--extra']" in out


def test_original_patch_breaks_on_new_argparse(emulated):
    # Flask-Script's own _patch_argparser, kept because argparse was old at import time.
    env = clean_env(WHEN="after")
    proc = run(emulated, "manage.py", "hello", "bob", env=env)
    assert proc.returncode != 0 and "hello bob" not in proc.stdout
    assert "Traceback" in proc.stderr
    bare = run(emulated, "manage.py", env=env)
    assert "usage:" not in bare.stdout  # the no-arguments help is lost too


def test_our_patch_works_on_new_argparse(emulated):
    for when in ("before", "after+apply"):
        env = clean_env(WHEN=when)
        assert ok(run(emulated, "manage.py", "hello", "bob", env=env)) == "hello bob\n"
        assert ok(run(emulated, "manage.py", "sub", "inner", "v", env=env)) == "inner v\n"
        bare = run(emulated, "manage.py", env=env)
        assert bare.returncode == 2 and "usage: manage.py" in bare.stdout, bare.stderr
        sub = run(emulated, "manage.py", "sub", env=env)
        assert sub.returncode == 2 and "sub usage" in sub.stdout, sub.stderr


# -- what the shims touch, in this process ------------------------------------------------

def test_apply_is_idempotent_and_leaves_global_state_alone():
    import flask

    from flask_migrate_compat import _flask_script_compat as compat

    module = compat.apply()
    commands = sys.modules["flask_script.commands"]
    before = (commands.inspect, module.Manager.__dict__["_patch_argparser"],
              commands._request_ctx_stack, compat.applied())
    assert compat.apply() is module
    compat.apply()
    after = (commands.inspect, module.Manager.__dict__["_patch_argparser"],
             commands._request_ctx_stack, compat.applied())
    assert after == before
    # Flask >= 2.0 has no flask._compat: its stand-in was applied, and is gone again.
    assert importlib.util.find_spec("flask._compat") is None
    assert "flask._compat" in before[3] and "flask._compat" not in sys.modules
    # flask._request_ctx_stack (removed in Flask 3.0): the stand-in was applied exactly
    # where this Flask lacks the name, and flask does not keep it.
    native_stack = compat._has_attribute_quietly(flask, "_request_ctx_stack")
    assert ("flask._request_ctx_stack" in before[3]) is not native_stack
    assert vars(flask).get("_request_ctx_stack") is not compat._REQUEST_CTX_STACK
    assert (commands._request_ctx_stack is compat._REQUEST_CTX_STACK) is not native_stack
    # The real inspect module is not given getargspec.
    assert sys.modules["inspect"] is inspect
    if "inspect.getargspec" in before[3]:
        assert not hasattr(inspect, "getargspec")
        assert commands.inspect.getargspec(lambda a, b=1: None) == (["a", "b"], None, None, (1,))


def test_only_needed_shims_are_applied():
    from flask_migrate_compat import _flask_script_compat as compat

    module = compat.apply()
    commands = sys.modules["flask_script.commands"]
    applied = compat.applied()
    needs_getargspec = not hasattr(inspect, "getargspec")
    needs_argparse = hasattr(argparse.ArgumentParser, "_parse_known_args2")
    assert ("inspect.getargspec" in applied) is needs_getargspec
    assert (commands.inspect is inspect) is not needs_getargspec
    assert ("Manager._patch_argparser" in applied) is needs_argparse
    patch = module.Manager.__dict__["_patch_argparser"]
    assert (patch is compat._patch_argparser) is needs_argparse


NOT_NEEDED = '''\
import sys, types
import flask

# What an older Flask offered: flask._compat and flask._request_ctx_stack.
old_compat = types.ModuleType("flask._compat")
old_compat.text_type = str
sys.modules["flask._compat"] = old_compat


class OldStack:
    @property
    def top(self):
        from flask.globals import request_ctx
        return request_ctx._get_current_object()


flask._request_ctx_stack = old_stack = OldStack()

import flask_script
import flask_script.commands
from flask_migrate_compat._flask_script_compat import apply, applied

apply()
assert sys.modules["flask._compat"] is old_compat
assert flask._request_ctx_stack is old_stack
assert flask_script.commands._request_ctx_stack is old_stack
print("APPLIED", sorted(applied()))
'''


def test_flask_shims_not_applied_where_flask_has_the_names(tmp_path):
    (tmp_path / "not_needed.py").write_text(NOT_NEEDED)
    out = ok(run(tmp_path, "not_needed.py"))
    applied = out.split("APPLIED", 1)[1]
    assert "flask._compat" not in applied and "_request_ctx_stack" not in applied
