"""The bridge: every command of a Flask-Script ``Manager`` also runs as ``flask <command>``.

A ``Manager(app)`` built on an application object adds each of its commands to
``app.cli`` as it gets them (``add_command``, ``@manager.command``,
``@manager.option``, sub-managers), so ``flask --app manage seed`` runs the very
function ``python manage.py seed`` runs; the Flask-Script shims install that hook
(:mod:`._flask_script_compat`). ``Manager(app, flask_cli=False)`` or the environment
variable ``FLASK_MIGRATE_COMPAT_NO_BRIDGE=1`` turn it off. A ``Manager(create_app)``
has no application yet: :func:`add_manager_commands` registers its commands on the
application that Flask's app loading created, and :func:`manager_app` is an app factory
for ``flask --app`` that makes the application from the Manager's own options
(``-c prod.cfg``) and registers the commands.

Nothing is declared twice. A bridged command hands its arguments to the command's own
argparse parser (``Command.create_parser``, as ``manager.run()`` does), then calls the
command the way Flask-Script calls it: ``command(app, **values)``, inside
``app.test_request_context()`` unless the command overrides ``__call__``. What differs
follows Flask's CLI: the application is the one ``flask`` loaded (Manager options such
as ``-c/--config`` that fed ``create_app`` go into ``FLASK_APP``), usage errors print
Click's ``Error:`` line and exit with code 2, and Flask-Script's ``InvalidCommand``
prints ``Error: <message>`` and exits with code 1. A command's return value sets the
exit code as under
``manager.run()`` (``sys.exit(result or 0)``): an integer is the code, any other true
value is printed on stderr with code 1.

Sub-managers become Click groups. Not bridged, but listed by ``flask --help``: Flask's
own commands win (``db`` when ``Migrate`` registered the ``flask db`` group, any name
the application registered itself); Flask-Script's ``shell`` is Flask's ``flask
shell``, which gets the names of the ``Shell``'s ``make_context``; Flask-Script's
``runserver`` is a placeholder that names the ``flask run`` command line to use.
Commands an application added to ``MigrateCommand`` itself (``@MigrateCommand.command
def create()``, run as ``manage.py db create``) join ``flask db`` (:class:`MigrateGroup`).

A command whose name is one of the ``flask`` command's own (``run``, ``shell``,
``routes``, and commands of installed Flask plugins) cannot be reached under that
name: ``flask routes`` is always Flask's. Such a command is bridged as
``flask manager-routes`` (:data:`RENAMED_PREFIX`), and ``flask --help`` says so on
its line.

A command that calls ``app.run()`` (a profiler command that wraps ``app.wsgi_app``
and serves it) serves as it did under ``manage.py``: Flask's CLI sets
``FLASK_RUN_FROM_CLI=true`` so that ``app.run()`` returns at once (Flask 1.0 to 2.1 in
``FlaskGroup.main``, 2.2 and later in ``FlaskGroup.make_context``; ``Flask.run`` reads it
since 1.0); the bridge removes it while the command runs and puts it back afterwards.

A ``Manager(create_app)`` has no application of its own, so ``flask --app manage X``
finds none of its commands on the application Flask made; Click's ``No such command``
error then also names :func:`manager_app` and :func:`add_manager_commands`.
"""
from __future__ import annotations

import argparse
import functools
import importlib
import inspect
import os
import sys
import types
import typing as t

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

#: Set to anything but ``""``/``"0"`` to keep a ``Manager(app)``'s commands off ``app.cli``.
NO_BRIDGE_ENV = "FLASK_MIGRATE_COMPAT_NO_BRIDGE"

#: Attribute of a Manager listing the applications its commands are registered on.
_APPS_ATTR = "_flask_migrate_compat_apps"

#: What a command named like one of the ``flask`` command's own is bridged as, before
#: its name (``flask manager-routes``).
RENAMED_PREFIX = "manager-"

#: The variable Flask's CLI sets to make ``app.run()`` return at once.
RUN_FROM_CLI_ENV = "FLASK_RUN_FROM_CLI"

# What a Manager's entry is, for the bridge and the converter alike.
GROUP, COMMAND, MIGRATE, SHELL, SERVER = "group", "command", "migrate", "shell", "server"

#: Why an entry of each kind is not bridged or converted.
SKIP_REASONS = {
    MIGRATE: "Flask-Migrate's command group: Migrate(app, db) registers 'flask {name}'",
    SHELL: "Flask-Script's shell: use 'flask shell' (it gets the make_context names)",
    SERVER: "Flask-Script's development server: use '{run}'",
}


def script_module(manager: t.Any) -> types.ModuleType:
    """The Flask-Script module a Manager comes from, for its other classes.

    :param manager: a ``Manager`` (or an instance of a subclass).
    :returns: ``flask_script``, or the fork ``flask_script_ng``.
    :raises TypeError: ``manager`` is no Flask-Script Manager.
    """
    for cls in type(manager).__mro__:
        if cls.__name__ == "Manager":
            module = sys.modules.get(cls.__module__.partition(".")[0])
            if module is not None and getattr(module, "Manager", None) is cls:
                return module
    raise TypeError(f"{manager!r} is not a Flask-Script Manager")


def entry_kind(command: t.Any, script: types.ModuleType) -> str:
    """What a Manager entry is.

    :param command: a value of ``manager._commands``.
    :param script: its Flask-Script module (:func:`script_module`).
    :returns: :data:`GROUP` (a sub-manager), :data:`MIGRATE` (a ``MigrateCommand``: it
        carries its Click group), :data:`SHELL`, :data:`SERVER`, or :data:`COMMAND`
        (anything else Flask-Script runs).
    """
    if getattr(command, "click_group", None) is not None:
        return MIGRATE
    if isinstance(command, script.Manager):
        return GROUP
    if isinstance(command, script.Shell):
        return SHELL
    if isinstance(command, script.Server):
        return SERVER
    return COMMAND


def default_entries(manager: t.Any) -> dict[str, str]:
    """The entries ``manager.run()`` would add by itself.

    :param manager: a Manager.
    :returns: name -> kind for ``shell`` and ``runserver``, when the manager takes
        Flask-Script's default commands and does not have its own of that name.
    """
    defaults = manager.with_default_commands
    if defaults is False or (defaults is None and manager.parent is not None):
        return {}
    return {name: kind for name, kind in (("shell", SHELL), ("runserver", SERVER))
            if name not in manager._commands}


def run_command_line(server: t.Any = None) -> str:
    """The ``flask run`` command line serving what a Flask-Script ``Server`` served.

    :param server: the ``Server`` command, or None for Flask-Script's default one.
    :returns: e.g. ``flask run --host 0.0.0.0 --port 8000``.
    """
    words = ["flask run"]
    if server is not None:
        if server.host != "127.0.0.1":
            words.append(f"--host {server.host}")
        if server.port != 5000:
            words.append(f"--port {server.port}")
        if server.use_debugger:
            words.append("--debug")
    return " ".join(words)


def skip_reason(kind: str, name: str, command: t.Any = None) -> str:
    """Why an entry is not bridged (nor converted).

    :param kind: :data:`MIGRATE`, :data:`SHELL` or :data:`SERVER`.
    :param name: the entry's name in its Manager.
    :param command: the entry (a ``Server``'s host and port go into the text).
    :returns: one line, as ``flask --help`` and the converter's report show it.
    """
    server = command if kind == SERVER else None
    return SKIP_REASONS[kind].format(name=name, run=run_command_line(server))


@functools.lru_cache(maxsize=None)
def flask_command_names() -> frozenset[str]:
    """The names the ``flask`` command itself answers to, whatever the application.

    :returns: Flask's built-in commands (``run``, ``shell``, ``routes``) and those of
        the installed plugins (entry points ``flask.commands``); ``FlaskGroup`` looks
        these up before the application's ``app.cli``, so a command of that name on
        ``app.cli`` is never reached.
    """
    from importlib.metadata import entry_points

    from flask.cli import FlaskGroup

    names = set(FlaskGroup().commands)
    try:
        plugins = entry_points(group="flask.commands")
    except TypeError:  # Python 3.9: entry_points() takes no arguments
        plugins = entry_points().get("flask.commands", ())
    names.update(plugin.name for plugin in plugins)
    return frozenset(names)


def renamed(name: str) -> str:
    """The name a top-level Manager command named like a ``flask`` command of Flask's
    own gets: ``routes`` -> ``manager-routes`` (see :func:`flask_command_names`)."""
    return RENAMED_PREFIX + name


class allow_app_run:
    """Context manager: ``app.run()`` serves inside it, as under ``manage.py``.

    Flask's CLI sets ``FLASK_RUN_FROM_CLI=true`` (Flask 1.0-2.1 in ``FlaskGroup.main``,
    2.2+ in ``FlaskGroup.make_context``) and ``Flask.run`` returns at once when it
    finds it, so that a module calling ``app.run()`` outside a ``__main__`` guard does
    not block ``flask``. A Manager command calling ``app.run()`` on purpose (a profiler
    command) did serve under ``manage.py``; the variable is removed for the call and
    restored after it.
    """

    def __enter__(self) -> None:
        self.saved = os.environ.pop(RUN_FROM_CLI_ENV, None)

    def __exit__(self, *exc_info: t.Any) -> None:
        if self.saved is not None:
            os.environ[RUN_FROM_CLI_ENV] = self.saved


def exit_with(result: t.Any) -> None:
    """Exit the way ``manager.run()`` exits with a command's return value, in Click's
    terms: nothing for a false value, exit code ``result`` for an integer, else print
    ``result`` on stderr and exit with code 1 (what ``sys.exit(result)`` does).

    :raises click.exceptions.Exit: for a true result.
    """
    if not result:
        return
    ctx = click.get_current_context()
    if isinstance(result, int):
        ctx.exit(result)
    click.echo(result, err=True)
    ctx.exit(1)


def _enabled(manager: t.Any) -> bool:
    return getattr(manager, "flask_cli", True) is not False \
        and os.environ.get(NO_BRIDGE_ENV, "") in ("", "0")


def _resolve(root: t.Any, path: tuple[str, ...]) -> tuple[t.Any, list[t.Any]]:
    """The live entry at ``path`` below ``root`` and the managers leading to it."""
    owners = [root]
    entry = root
    for depth, name in enumerate(path):
        commands = entry._commands if hasattr(entry, "_commands") else {}
        if name not in commands:
            raise click.UsageError(
                f"'{' '.join(path[:depth + 1])}' is no longer a command of the Manager")
        if depth:
            owners.append(entry)
        entry = commands[name]
    return entry, owners


def command_help(entry: t.Any) -> str | None:
    """The help text Flask-Script shows for a command or sub-manager.

    :param entry: a Manager entry.
    :returns: its ``help``, else its docstring, cleaned like a docstring; or None.
    """
    text = getattr(entry, "help", None)
    if text is None:
        text = entry.__doc__
    return inspect.cleandoc(text) if text else None


class _ArgparseErrors:
    """Turns an argparse parser's errors into Click usage errors (exit code 2)."""

    def __init__(self, ctx: click.Context | None) -> None:
        self.ctx = ctx

    def __call__(self, message: str) -> t.NoReturn:
        raise click.UsageError(message, self.ctx)


def _renamed_help(command: t.Any, text: str) -> str:
    """A renamed command's ``flask --help`` line: why, then its own short help."""
    name = command.renamed_from
    if name is None:
        return text
    return " ".join(filter(None, [f"The Manager's '{name}' ('flask {name}' is Flask's own).",
                                  text]))


class ManagerCommand(click.Command):
    """A Flask-Script command as a Click command.

    The arguments are not declared to Click: they are parsed by the command's own
    argparse parser, which also prints the ``--help`` (and ``-?``) text. Exit codes: 0,
    the command's integer return value, 1 for another true return value or
    ``InvalidCommand`` (``Error: <message>``), 2 for a usage error.

    :param root: the Manager at the top of the tree.
    :param path: the command's names from ``root`` (``("users", "create")``).
    """

    def __init__(self, root: t.Any, path: tuple[str, ...]) -> None:
        super().__init__(
            path[-1], callback=with_appcontext(click.pass_context(self._run)),
            add_help_option=False,
            context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
        )
        self.root = root
        self.path = path

    def _parser(self, ctx: click.Context) -> t.Any:
        command, owners = _resolve(self.root, self.path)
        parser = command.create_parser(ctx.command_path, parent=owners[-1])
        # What Manager.create_parser gives the sub-parser it makes for the command.
        parser.usage = getattr(command, "usage", None)
        description = getattr(command, "description", None)
        parser.description = command.__doc__ if description is None else description
        parser.error = _ArgparseErrors(ctx)
        return command, owners, parser

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        # Everything goes to argparse, untouched (options, "--", "-?").
        ctx.args = list(args)
        return ctx.args

    #: The Manager's name for a command bridged under another (see :func:`renamed`).
    renamed_from: str | None = None

    def get_short_help_str(self, limit: int = 45) -> str:
        try:
            self.help = command_help(_resolve(self.root, self.path)[0])
        except click.UsageError:
            self.help = None
        return _renamed_help(self, super().get_short_help_str(limit))

    def get_usage(self, ctx: click.Context) -> str:
        usage = self._parser(ctx)[2].format_usage().strip()
        return "Usage:" + usage[len("usage:"):] if usage.startswith("usage:") else usage

    def get_help(self, ctx: click.Context) -> str:
        return self._parser(ctx)[2].format_help().rstrip("\n")

    def _run(self, ctx: click.Context) -> None:
        command, owners, parser = self._parser(ctx)
        try:
            namespace, rest = parser.parse_known_args(ctx.args)
        except SystemExit as exc:  # argparse printed the help
            ctx.exit(exc.code or 0)
        values = vars(namespace)
        values.pop("func_stack", None)
        args = []
        if getattr(command, "capture_all_args", False):
            args.append(rest)
        elif rest:
            raise click.UsageError(f"unrecognized arguments: {' '.join(rest)}", ctx)
        # As manager.run(): each sub-manager gets the app and hands on what it returns;
        # the root's app is the one flask loaded.
        app = current_app._get_current_object()
        for manager in owners[1:]:
            app = manager(app)
        commands_module = sys.modules.get(f"{script_module(self.root).__name__}.commands")
        invalid = getattr(commands_module, "InvalidCommand", ())
        try:
            with allow_app_run():
                result = command(app, *args, **values)
        except invalid as exc:
            raise click.ClickException(str(exc)) from exc
        exit_with(result)


class ManagerGroup(click.Group):
    """A Flask-Script sub-manager as a Click group; its commands are read from the
    sub-manager when Click asks, so commands added later appear too."""

    def __init__(self, root: t.Any, path: tuple[str, ...]) -> None:
        super().__init__(path[-1])
        self.root = root
        self.path = path

    def _manager(self) -> t.Any:
        return _resolve(self.root, self.path)[0]

    renamed_from: str | None = None

    def get_short_help_str(self, limit: int = 45) -> str:
        self.help = command_help(self._manager())
        return _renamed_help(self, super().get_short_help_str(limit))

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        manager = self._manager()
        text = manager.description or command_help(manager)
        if text:
            formatter.write_paragraph()
            with formatter.indentation():
                formatter.write_text(text)

    def list_commands(self, ctx: click.Context) -> list[str]:
        manager = self._manager()
        return sorted({*manager._commands, *default_entries(manager)})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        manager = self._manager()
        if name in manager._commands:
            return bridged_entry(self.root, (*self.path, name))[0]
        kind = default_entries(manager).get(name)
        return None if kind is None else Placeholder(self.root, name, kind)


def group_command_names(group: click.Group) -> set[str]:
    """Every command name of a Click group, the commands a lazy group (``flask db``,
    :class:`.cli.LazyGroup`) has not built yet included: ``group.commands`` holds only
    those added to it.

    :param group: the Click group.
    :returns: the names ``group.list_commands`` gives.
    """
    return set(group.list_commands(click.Context(group, info_name=group.name)))


class MigrateGroup(click.Group):
    """``flask db`` (the group Migrate registered, or the ``MigrateCommand``'s own
    Click group: ``base``) with the commands an application added to ``MigrateCommand``
    (``@MigrateCommand.command def create(): ...``), which ``manage.py db create`` ran.
    The shared ``base`` group is not changed: this group, one per application, asks it
    first."""

    def __init__(self, root: t.Any, path: tuple[str, ...], base: click.Group) -> None:
        super().__init__(path[-1], help=base.help, short_help=base.short_help,
                         params=list(base.params), callback=base.callback,
                         context_settings=dict(base.context_settings),
                         invoke_without_command=base.invoke_without_command,
                         no_args_is_help=base.no_args_is_help)
        self.root = root
        self.path = path
        self.base = base

    def _added(self) -> list[str]:
        try:
            entry = _resolve(self.root, self.path)[0]
        except click.UsageError:
            return []
        base = group_command_names(self.base)
        return [name for name in getattr(entry, "_commands", {}) if name not in base]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.base.list_commands(ctx), *self._added()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = self.base.get_command(ctx, name)
        if command is None and name in self._added():
            command = bridged_entry(self.root, (*self.path, name))[0]
        return command


class Placeholder(click.Command):
    """Stands for an entry that is not bridged: ``flask --help`` lists it with the
    reason, and running it says what to run instead (``Error: ...``, exit code 1)."""

    def __init__(self, root: t.Any, name: str, kind: str, command: t.Any = None) -> None:
        self.root = root
        self.reason = skip_reason(kind, name, command)
        help_text = f"Not bridged: {self.reason}."
        super().__init__(name, callback=self._run, help=help_text, short_help=help_text,
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})

    def _run(self) -> t.NoReturn:
        raise click.ClickException(f"'{self.name}' is not bridged: {self.reason}")


def bridged_entry(root: t.Any, path: tuple[str, ...]) -> tuple[click.Command | None, str]:
    """The Click command for a Manager entry.

    :param root: the top Manager.
    :param path: the entry's names from ``root``.
    :returns: the command (a :class:`ManagerCommand`, :class:`ManagerGroup`,
        :class:`Placeholder`, the ``MigrateCommand``'s Click group, or None for a
        top-level ``shell``: Flask's stands for it) and the entry's kind.
    :raises click.UsageError: no entry at ``path`` any more.
    """
    entry, _ = _resolve(root, path)
    kind = entry_kind(entry, script_module(root))
    if kind == GROUP:
        return ManagerGroup(root, path), kind
    if kind == COMMAND:
        return ManagerCommand(root, path), kind
    if kind == MIGRATE:
        return entry.click_group, kind
    if kind == SHELL and len(path) == 1:
        return None, kind  # 'flask shell' is Flask's; see _shell_context
    return Placeholder(root, path[-1], kind, entry), kind


def _register(app: Flask, root: t.Any, name: str, skipped: dict[str, str]) -> None:
    if name in root._commands:
        command, kind = bridged_entry(root, (name,))
    else:  # shell or runserver, which manager.run() would add
        kind = default_entries(root)[name]
        command = None if kind == SHELL else Placeholder(root, name, kind)
    existing = app.cli.commands.get(name)
    if kind == SHELL:
        skipped[name] = skip_reason(kind, name)
        _shell_context(app, root)
    elif name in flask_command_names() and kind != MIGRATE:
        if kind == SERVER:  # 'flask run' is what stands for it
            skipped[name] = command.reason
            return
        alias = renamed(name)
        if getattr(app.cli.commands.get(alias), "root", root) is root:
            skipped[name] = (f"'flask {name}' is Flask's own command; the Manager's runs "
                             f"as 'flask {alias}'")
            command.renamed_from = name
            app.cli.add_command(command, alias)
        else:
            skipped[name] = (f"'flask {name}' is Flask's own command, and the application "
                             f"has its own 'flask {alias}'")
    elif kind == MIGRATE and isinstance(existing or command, click.Group) and any(
            added not in group_command_names(command)
            for added in getattr(root._commands[name], "_commands", {})):
        # 'flask db' (Migrate's, or the MigrateCommand's own group), plus the commands the
        # application added to MigrateCommand itself (@MigrateCommand.command).
        if existing is not None:
            skipped[name] = skip_reason(MIGRATE, name)
        base = getattr(existing, "base", existing or command)
        app.cli.add_command(MigrateGroup(root, (name,), base), name)
    elif existing is not None and getattr(existing, "root", None) is not root:
        # Flask's own command wins: one the app registered.
        skipped[name] = skip_reason(MIGRATE, name) if kind == MIGRATE else \
            f"the application's own 'flask {name}' command stands for it"
    else:
        if isinstance(command, Placeholder):
            skipped[name] = command.reason
        app.cli.add_command(command, name)


def _shell_context(app: Flask, root: t.Any) -> None:
    """Give ``flask shell`` the names of the Manager's ``Shell`` (its make_context),
    computed as Flask-Script did: inside a test request context."""
    registered = app.extensions.setdefault("flask_migrate_compat.shells", [])
    if any(manager is root for manager in registered):
        return
    registered.append(root)

    def manager_shell_context() -> dict[str, t.Any]:
        shell = root._commands.get("shell")
        if shell is None or entry_kind(shell, script_module(root)) != SHELL:
            return {}
        with app.test_request_context():
            return dict(shell.get_context())

    app.shell_context_processor(manager_shell_context)


def add_manager_commands(app: Flask, manager: t.Any) -> dict[str, str]:
    """Register every command of a Flask-Script Manager on ``app.cli``.

    For a ``Manager(create_app)``, or when the module ``FLASK_APP`` names does not import
    ``manage.py``; a ``Manager(app)`` does this by itself. Commands the manager gets
    later are registered too. Works whatever ``FLASK_MIGRATE_COMPAT_NO_BRIDGE`` says.

    :param app: the application ``flask`` runs (for a factory: the one it returned).
    :param manager: the ``flask_script.Manager`` (a sub-manager's commands come along
        as a Click group).
    :returns: the names not bridged, each with the reason (also shown by ``flask
        --help``): ``db`` when ``flask db`` is registered, ``shell``, ``runserver``,
        names the application has its own command for.
    :raises TypeError: ``manager`` is not a Flask-Script Manager.
    """
    script_module(manager)
    apps = manager.__dict__.setdefault(_APPS_ATTR, [])
    if not any(known is app for known in apps):
        apps.append(app)
    skipped: dict[str, str] = {}
    for name in [*manager._commands, *default_entries(manager)]:
        _register(app, manager, name, skipped)
    return skipped


def commands_added(manager: t.Any, names: t.Sequence[str]) -> None:
    """Hook run after ``Manager.add_command`` (installed by the Flask-Script shims):
    register the new entries on the applications the manager serves.

    :param manager: the Manager that got the entries.
    :param names: the names added (or replaced).

    A root ``Manager(app)`` serves ``app`` from its first command on, unless the
    bridge is off for it. A sub-manager that served an application itself (built as
    ``Manager(app)``) stops doing so once it is added to another manager.
    """
    script = script_module(manager)
    for name in names:
        entry = manager._commands.get(name)
        if isinstance(entry, script.Manager) and entry.__dict__.get(_APPS_ATTR):
            for app in entry.__dict__.pop(_APPS_ATTR):
                for sub_name, command in list(app.cli.commands.items()):
                    if getattr(command, "root", None) is entry:
                        del app.cli.commands[sub_name]
    apps = manager.__dict__.get(_APPS_ATTR)
    if apps is None:
        if manager.parent is not None or not isinstance(manager.app, Flask) \
                or not _enabled(manager):
            return
        add_manager_commands(manager.app, manager)
        return
    for app in apps:
        skipped: dict[str, str] = {}
        for name in names:
            _register(app, manager, name, skipped)


def manager_created(manager: t.Any) -> None:
    """Hook run after ``Manager.__init__`` (installed by the Flask-Script shims).

    A ``Manager(create_app)`` made while ``flask`` loads the application (``flask --app
    manage X``) has no application to put its commands on, and Flask makes its own
    (from ``create_app`` found in the module), which knows nothing of the Manager. So
    Click's ``No such command 'X'.`` gets a second line when ``X`` is one of this
    Manager's commands and they were registered on no application: what to run instead.

    How: Click asks the context's ``token_normalize_func`` (in every Click version) only
    once it found no command of the name it was given; the function set on the current
    ``flask`` invocation's context raises the error with the second line for such a name
    and returns every other token unchanged (after the function it replaces, if any).
    Registering the commands on Flask's application instead would run them on an
    application made without the Manager's options (``-c prod.cfg``): perhaps on
    another database.

    :param manager: the new Manager.
    """
    if isinstance(manager.app, Flask) or not _enabled(manager):
        return
    from flask.cli import FlaskGroup

    ctx = click.get_current_context(silent=True)
    if ctx is None:
        return
    root = ctx.find_root()
    if not isinstance(root.command, FlaskGroup):
        return
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__", "").partition(".")[0] in (
            "flask_migrate_compat", script_module(manager).__name__):
        frame = frame.f_back
    module = frame.f_globals.get("__name__") if frame is not None else None
    previous = root.token_normalize_func

    def normalize(token: str) -> str:
        # Click calls this on a command name only once it found no such command (and
        # on option names of sub-commands, which pass through unchanged).
        if previous is not None:
            token = previous(token)
        if click.get_current_context(silent=True) is root and manager.parent is None \
                and token in manager._commands and not manager.__dict__.get(_APPS_ATTR):
            raise click.UsageError(f"No such command {token!r}.\n"
                                   + factory_hint(module or "manage", token), root)
        return token

    root.token_normalize_func = normalize


def factory_hint(module: str, name: str) -> str:
    """What to run when ``flask`` does not find a ``Manager(create_app)``'s command.

    :param module: the module that made the Manager.
    :param name: the command asked for.
    :returns: one line naming :func:`manager_app` and :func:`add_manager_commands`.
    """
    return (f"'{name}' is a command of the Manager(create_app) in {module}, which makes "
            f"its application only when it runs: use flask --app \"flask_migrate_compat."
            f"bridge:manager_app('{module}')\" {name}, or call add_manager_commands(app, "
            f"manager) where the application is made.")


def manager_app(target: str, *manager_args: str) -> Flask:
    """The application a ``Manager(create_app)`` makes from its own options, with the
    Manager's commands registered: an app factory for ``flask --app``.

    ``python manage.py -c prod.cfg seed`` becomes::

        flask --app "flask_migrate_compat.bridge:manager_app('manage', '-c', 'prod.cfg')" seed

    A script that adds commands only when run (in a ``main()`` its ``__main__`` block
    calls, before ``manager.run()``) is run as ``python`` runs it, up to
    ``manager.run()``, by :func:`.runner.manager_app`, which takes its path::

        flask --app "flask_migrate_compat.runner:manager_app('manage.py', '-c', 'prod.cfg')" seed

    The options are parsed by the Manager's own ``add_option`` parser, and the factory
    called by the Manager (``manager(**options)``), as ``manager.run()`` does.

    :param target: the module holding the Manager, optionally ``module:attribute``
        when it holds more than one.
    :param manager_args: the Manager's options, as on the ``manage.py`` command line.
    :returns: the application, with :func:`add_manager_commands` applied.
    :raises click.UsageError: for options the Manager's parser refuses.
    :raises LookupError: no single Manager found in the module.
    :raises flask.cli.NoAppException: ``target`` is a script's path (one ``Error:``
        line from ``flask`` naming :func:`.runner.manager_app`, which runs scripts).
    """
    module_name, _, attribute = target.partition(":")
    if module_name.endswith(".py") and not attribute:
        # Running a script needs the runner, which sits above this module.
        from flask.cli import NoAppException

        raise NoAppException(
            f"{module_name} is a script's path: name its module, or let "
            f"flask_migrate_compat.runner:manager_app({module_name!r}, ...) run it up to "
            "manager.run()")
    module = importlib.import_module(module_name)
    if attribute:
        manager = getattr(module, attribute)
    else:
        script = sys.modules.get("flask_script")
        found = [value for value in vars(module).values()
                 if script is not None and isinstance(value, script.Manager)
                 and value.parent is None]
        if len(found) != 1:
            raise LookupError(f"{module_name} holds {len(found)} top-level Managers; "
                              f"name one: '{module_name}:manager'")
        manager = found[0]
    return app_of_manager(manager, module_name, manager_args)


def app_of_manager(manager: t.Any, prog: str, manager_args: t.Sequence[str]) -> Flask:
    """The application ``manager.run()`` would make from ``manager_args``, with the
    Manager's commands registered (:func:`manager_app` and :func:`.runner.manager_app`).

    :param manager: a ``Manager(create_app)``.
    :param prog: the program name for the options' usage errors.
    :param manager_args: the Manager's options, as on the ``manage.py`` command line.
    :returns: the application, with :func:`add_manager_commands` applied.
    :raises click.UsageError: for options the Manager's parser refuses.
    """
    parser = argparse.ArgumentParser(prog=prog, add_help=False)
    for option in manager.get_options():
        parser.add_argument(*option.args, **option.kwargs)
    parser.error = _ArgparseErrors(None)
    options = vars(parser.parse_args(list(manager_args)))
    app = manager(**options)
    add_manager_commands(app, manager)
    return app
