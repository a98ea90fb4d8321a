"""The Flask-Script front end: ``MigrateCommand`` for a legacy ``manage.py``.

Nothing here declares a command or an option. :func:`make_migrate_command` reads the
``flask db`` Click group (:mod:`.cli`) and builds the equivalent Flask-Script
``Manager``: one sub-command per Click command, one argparse option per Click
parameter (same flags, help and defaults). Running a sub-command hands the parsed
values back to Click, which applies defaults, environment variables and type
conversion and calls the very same callback as ``flask db``. So the two front ends
cannot drift: a change to ``cli.py`` changes both.

Command lines Flask-Migrate 2.7's ``MigrateCommand`` accepted keep working: its options
were per command (``db upgrade -d migrations -x data=1``), which the Click commands
still have; the group-level ``-d`` and ``-x`` of ``flask db`` are offered too
(``db -x data=1 upgrade``).

Exit codes through ``manager.run()``: 0 on success, 1 when the command fails (one
``Error: ...`` line on stderr), 2 for a usage error.
"""
from __future__ import annotations

import argparse
import types
import typing as t

import click

from . import _flask_script_compat, errors
from .cli import db as db_group

# manage.py builds the application before any command runs: a missing database
# driver or a bad URL there gets one line too (errors.startup_error_message).
errors.install_startup_hook()

#: Prefix of the argparse ``dest`` of group-level options. argparse copies a
#: sub-command's values into the parent namespace, so ``-x`` given to both ``db`` and
#: ``db upgrade`` would overwrite each other under one name.
GROUP_DEST_PREFIX = "group_"

# Flask-Script's public names, re-exported (and MigrateCommand) on first use, so that
# importing this module does not require Flask-Script (Flask-Script-NG users build
# their own with make_migrate_command).
_SCRIPT_NAMES = (
    "Manager", "Command", "Option", "Group", "Shell", "Server", "prompt", "prompt_pass",
    "prompt_bool", "prompt_choices",
)


def _flask_script() -> types.ModuleType:
    _flask_script_compat.apply()
    import flask_script

    return flask_script


def __getattr__(name: str) -> t.Any:
    if name in _SCRIPT_NAMES:
        value = getattr(_flask_script(), name)
    elif name == "MigrateCommand":
        value = make_migrate_command()
    elif name in ("add_manager_commands", "manager_app"):
        from . import bridge

        value = getattr(bridge, name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def argparse_spec(param: click.Parameter) -> tuple[tuple[str, ...], dict[str, t.Any]]:
    """The ``add_argument`` arguments equivalent to a Click parameter.

    Defaults are left out of the parser on purpose (``argparse.SUPPRESS``): a value
    the user did not give is absent from the namespace, and Click then resolves it
    exactly as ``flask db`` does (environment variable, then default).

    :param param: a :class:`click.Option` or :class:`click.Argument`.
    :returns: ``(args, kwargs)`` for ``ArgumentParser.add_argument`` (and for
        Flask-Script's ``Option``).
    :raises TypeError: for a Click construct this adapter does not translate
        (``--flag/--no-flag`` pairs, prompts, optional values); the parity test
        exercises every parameter, so a new one fails there first.
    """
    kwargs: dict[str, t.Any] = {"default": argparse.SUPPRESS}
    if isinstance(param, click.Argument):
        if param.nargs == -1:
            kwargs["nargs"] = "+" if param.required else "*"
        elif param.nargs == 1:
            if not param.required:
                kwargs["nargs"] = "?"
        else:
            kwargs["nargs"] = param.nargs
        kwargs["metavar"] = param.human_readable_name
        return (param.name,), kwargs

    if not isinstance(param, click.Option) or param.secondary_opts or param.prompt:
        raise TypeError(f"cannot translate Click parameter {param.name!r} to argparse")
    kwargs.update(dest=param.name, help=param.help, required=param.required)
    if param.is_flag and not param.count:
        # Click 8.3 keeps an UNSET sentinel as the flag_value of a plain boolean flag.
        const = True if param.is_bool_flag else param.flag_value
        kwargs.update(action="store_const", const=const)
    elif param.count:
        kwargs["action"] = "count"
    else:
        kwargs["action"] = "append" if param.multiple else "store"
        kwargs["metavar"] = param.metavar or param.type.name.upper()
        if param.nargs != 1:
            kwargs["nargs"] = param.nargs
    return tuple(param.opts), kwargs


def resolve_params(ctx: click.Context, values: dict[str, t.Any]) -> dict[str, t.Any]:
    """Process argparse values the way Click processes its own parser's output.

    :param ctx: the context of the command (or group) the values belong to.
    :param values: parameter name -> raw value, for the parameters the user gave.
    :returns: ``ctx.params``: every parameter's final value (default, environment
        variable or given value, type-converted, callbacks applied).
    :raises click.UsageError: for an invalid value or a missing required parameter.
    """
    command = ctx.command
    for param in click.core.iter_params_for_processing([], command.get_params(ctx)):
        param.handle_parse_result(ctx, values, [])
    return ctx.params


def _envvar_prefix() -> str:
    """``FLASK_<COMMAND>``: the prefix Flask gives the group's options under ``flask``,
    so both front ends read the same environment variables (FLASK_DB_DIRECTORY...)."""
    from flask import current_app

    name = current_app.extensions["migrate"].migrate.command
    return f"FLASK_{name.upper().replace('-', '_')}"


def invoke(
    group: click.Group,
    group_values: dict[str, t.Any],
    name: str,
    values: dict[str, t.Any],
) -> int:
    """Run one command of a Click group with values parsed by argparse.

    :param group: the Click group (``flask db``).
    :param group_values: raw values of the group-level options the user gave.
    :param name: the sub-command's name in the group.
    :param values: raw values of the sub-command's parameters the user gave.
    :returns: the exit code: 0, 1 for a failed command, 2 for a usage error.
    """
    try:
        with click.Context(group, info_name=group.name,
                           auto_envvar_prefix=_envvar_prefix()) as group_ctx:
            command = group.get_command(group_ctx, name)
            group_params = resolve_params(group_ctx, group_values)
            with click.Context(command, info_name=name, parent=group_ctx) as ctx:
                params = resolve_params(ctx, values)
                group_ctx.invoke(group.callback, **group_params)
                ctx.invoke(command.callback, **params)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    return 0


def command_names(group: click.Group, ctx: click.Context) -> list[str]:
    """A Click group's command names in the order Flask-Script's help lists them: the
    order they were declared (:meth:`.cli.LazyGroup.declared_commands`, or a plain
    group's :attr:`~click.Group.commands`), then any other name
    :meth:`~click.Group.list_commands` gives (a lazy group of another kind).

    :param group: the Click group.
    :param ctx: a context of that group.
    :returns: every name ``group.list_commands(ctx)`` returns, each once.
    """
    declared = getattr(group, "declared_commands", None)
    order = declared() if declared is not None else list(group.commands)
    listed = group.list_commands(ctx)
    return [*(n for n in order if n in listed), *(n for n in listed if n not in order)]


def make_migrate_command(script: types.ModuleType | None = None,
                         group: click.Group | None = None) -> t.Any:
    """Build a Flask-Script ``Manager`` exposing every command of a Click group.

    :param script: the Flask-Script module whose ``Manager``, ``Command`` and
        ``Option`` to use: ``flask_script`` (default, shimmed for Flask 3 / Python
        3.11+) or the maintained fork ``flask_script_ng``.
    :param group: the Click group to expose; default the ``flask db`` group.
    :returns: a ``Manager`` to add with ``manager.add_command('db', ...)``.
    :raises TypeError: when the group has a parameter argparse cannot express.
    """
    script = script or _flask_script()
    group = group or db_group

    class ClickCommand(script.Command):  # type: ignore[name-defined]
        """One Click command as a Flask-Script command."""

        def __init__(self, owner: t.Any, name: str, command: click.Command) -> None:
            super().__init__()
            self.owner = owner
            self.name = name
            self.help = command.get_short_help_str(limit=80)
            self.__doc__ = command.help
            self.option_list = [script.Option(*a, **kw)
                                for a, kw in map(argparse_spec, command.params)]

        def run(self, **values: t.Any) -> int:
            return invoke(self.owner.click_group, self.owner.group_values, self.name,
                          values)

    class ClickGroupManager(script.Manager):  # type: ignore[name-defined]
        """A Click group as a Flask-Script sub-manager."""

        def __init__(self) -> None:
            help_text = group.help or ""
            super().__init__(help=help_text, description=help_text)
            self.click_group = group
            self.group_values: dict[str, t.Any] = {}
            for param in group.params:
                args, kwargs = argparse_spec(param)
                kwargs["dest"] = GROUP_DEST_PREFIX + kwargs["dest"]
                self.add_option(*args, **kwargs)
            ctx = click.Context(group, info_name=group.name)
            for name in command_names(group, ctx):
                self.add_command(name, ClickCommand(self, name, group.get_command(ctx, name)))

        def __call__(self, app: t.Any = None, **group_values: t.Any) -> t.Any:
            # Flask-Script hands a sub-manager its options here and passes what this
            # returns (the app) on to the command: keep the options for the command.
            prefix = len(GROUP_DEST_PREFIX)
            self.group_values = {key[prefix:]: value for key, value in group_values.items()}
            return super().__call__(app)

    return ClickGroupManager()
