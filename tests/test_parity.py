"""The Flask-Script front end and the Click group cannot drift.

Walks both front ends: every Click command must exist in MigrateCommand with the same
option strings, help and kind of value, and the same command line parsed by each must
give the core the same parameters (defaults included).
"""
from __future__ import annotations

import argparse

import click
import pytest
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_compat import Migrate, MigrateCommand
from flask_migrate_compat.cli import db as db_group
from flask_migrate_compat.script import GROUP_DEST_PREFIX, resolve_params

COMMANDS = db_group.list_commands(click.Context(db_group))


def command_of(name: str) -> click.Command:
    """The built command (``flask db`` is a lazy group: ``db_group.commands`` holds
    only the commands added to it)."""
    return db_group.get_command(click.Context(db_group, info_name="db"), name)


@pytest.fixture
def app():
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite://"
    Migrate(app, SQLAlchemy(app))
    with app.app_context():
        yield app


def script_parser(name: str) -> argparse.ArgumentParser:
    return MigrateCommand._commands[name].create_parser(name)


def click_parse(name: str, argv: list[str]) -> dict:
    group_ctx = click.Context(db_group, info_name="db")
    command = command_of(name)
    return dict(command.make_context(name, list(argv), parent=group_ctx).params)


def script_parse(name: str, argv: list[str]) -> dict:
    namespace = vars(script_parser(name).parse_args(argv))
    namespace.pop("func_stack")
    group_ctx = click.Context(db_group, info_name="db")
    ctx = click.Context(command_of(name), info_name=name, parent=group_ctx)
    return dict(resolve_params(ctx, namespace))


def sample_argv(command: click.Command) -> list[str]:
    """A command line that gives every parameter a non-default value."""
    argv: list[str] = []
    for param in command.params:
        if isinstance(param, click.Option):
            flag = param.opts[-1]
            if param.is_flag:
                argv.append(flag)
            elif isinstance(param.type, click.Choice):
                choices = list(param.type.choices)
                argv += [flag, choices[-1]] if not param.multiple else \
                    [flag, choices[-1], flag, choices[-2]]
            elif param.multiple:
                argv += [flag, f"{param.name}=1", flag, f"{param.name}=2"]
            elif isinstance(param.type, (click.types.IntParamType, click.types.FloatParamType)):
                argv += [flag, "7"]
            else:
                argv += [flag, f"value-of-{param.name}"]
    for param in command.params:
        if isinstance(param, click.Argument):
            argv += ["rev1", "rev2"] if param.nargs == -1 else ["some-revision"]
    return argv


def test_same_commands():
    assert sorted(MigrateCommand._commands) == COMMANDS
    # Flask-Migrate 4.1's 15, plus status, doctor, modernize and test.
    assert len(COMMANDS) == 19
    assert {"status", "doctor", "modernize", "test"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_same_options_and_help(name):
    command = command_of(name)
    parser = script_parser(name)
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "func_stack")}
    assert set(actions) == {p.name for p in command.params}
    for param in command.params:
        action = actions[param.name]
        if isinstance(param, click.Option):
            assert action.option_strings == param.opts
            assert action.help == param.help
            assert action.required == param.required
            if param.is_flag:
                assert action.nargs == 0 and action.const is True
            else:
                assert isinstance(action, argparse._AppendAction) is param.multiple
        else:
            assert action.option_strings == []
            expected = {-1: "*", 1: "?" if not param.required else None}[param.nargs]
            assert action.nargs == expected
    assert MigrateCommand._commands[name].__doc__ == command.help


@pytest.mark.parametrize("name", COMMANDS)
def test_defaults_are_identical(app, name):
    assert script_parse(name, []) == click_parse(name, [])


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_parses_identically(app, name):
    argv = sample_argv(command_of(name))
    click_params = click_parse(name, argv)
    assert script_parse(name, argv) == click_params
    # The sample really sets every parameter away from its default.
    defaults = click_parse(name, [])
    assert all(click_params[k] != defaults[k] for k in click_params), click_params


def test_group_options_match():
    options = {o.kwargs["dest"]: o for o in MigrateCommand.get_options()}
    assert set(options) == {GROUP_DEST_PREFIX + p.name for p in db_group.params}
    for param in db_group.params:
        option = options[GROUP_DEST_PREFIX + param.name]
        assert option.args == tuple(param.opts)
        assert option.kwargs["help"] == param.help


def test_environment_variables_reach_both(app, monkeypatch):
    """FLASK_DB_UPGRADE_TAG is read by ``flask db upgrade`` (Click's auto envvar under
    Flask's FLASK prefix) and by ``manage.py db upgrade`` alike."""
    monkeypatch.setenv("FLASK_DB_UPGRADE_TAG", "from-env")
    group_ctx = click.Context(db_group, info_name="db", auto_envvar_prefix="FLASK_DB")
    command = command_of("upgrade")
    from_click = command.make_context("upgrade", [], parent=group_ctx).params
    namespace = vars(script_parser("upgrade").parse_args([]))
    namespace.pop("func_stack")
    ctx = click.Context(command, info_name="upgrade", parent=group_ctx)
    assert resolve_params(ctx, namespace)["tag"] == from_click["tag"] == "from-env"
