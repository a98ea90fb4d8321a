"""The converter: Click source code to own, written from a Flask-Script ``manage.py``.

    python -m flask_migrate_compat convert manage.py [-o commands.py] [--no-format]
    python -m flask_migrate_compat.convert manage.py      # the same, unambiguous

It runs the script the way the runner does (:func:`.runner.run_script`) and stops it
at ``manager.run()``, so it reads the very Manager ``python manage.py`` would run:
its commands, their argparse options (from each command's own parser) and help. It
then writes a new module (``commands.py`` beside the script by default; an existing
file is never overwritten) where:

* each command is a plain ``@click.command`` with ``@click.option`` /
  ``@click.argument`` (same names, flags, defaults, help) and ``@with_appcontext``;
  each sub-manager a ``@click.group``; ``init_app(app)`` adds them to ``app.cli``;
* the command functions are copied verbatim from the script (the source is parsed
  only to find them); the names they use are imported from where they live, as the
  script imported them (``from app import db``), Flask-Script's prompts from
  :mod:`flask_migrate_compat.prompts`, names the script defines itself from the
  script (with a ``TODO``: move them before deleting ``manage.py``);
* every command runs inside ``app.test_request_context()``, as Flask-Script ran it
  (code anywhere below the command may use ``request`` or ``url_for``: the test suite
  a ``test`` command runs, for instance, which no reading of the command's own body
  can tell); a function that returns a value keeps setting the exit code; both through
  small helpers written into the module;
* a command that calls ``app.run()`` (a profiler command) gets a third helper and a
  ``TODO``: Flask's CLI sets ``FLASK_RUN_FROM_CLI`` so that ``app.run()`` returns at
  once (Flask 1.0 and later), which made the command do nothing; the helper removes the
  variable while the command runs, so it serves as under ``manage.py``;
* a ``Command`` subclass imported from another module (``from app.commands import
  InitDbCommand``; ``manager.add_command('init_db', InitDbCommand())``) is made the way
  the script made it (the expression of its ``add_command`` call) and its ``run`` called,
  as Flask-Script did; such a class is a Flask-Script ``Command``, so its module imports
  Flask-Script. Every module the converted code imports that binds something of
  Flask-Script gets a ``TODO`` and a report line: the module then needs Flask-Script
  (and flask-migrate-compat's import hook) until that code is rewritten. Copying the
  class's code instead would mean reading and moving a whole other module;
* a top-level command named like one of the ``flask`` command's own (``run``, ``shell``,
  ``routes``...), which ``flask`` would never reach, is written as ``manager-<name>``
  (as the bridge names it), with a ``TODO`` to choose a name;
* ``db`` (``flask db`` comes from ``Migrate``), ``shell`` (``flask shell``; a custom
  ``make_context`` becomes a shell context processor) and ``runserver`` (``flask run``)
  are not converted; the commands the script added to ``MigrateCommand``
  (``@MigrateCommand.command``) are, and ``init_app`` adds them to ``flask db``
  (``app.cli.commands['db'].add_command``: the group ``Migrate`` registered).

Whatever cannot be translated faithfully gets a ``# TODO`` comment naming what and why
and a line in the report: a ``Command`` subclass overriding ``__call__`` or using
``self`` in ``run``, an argparse option Click does not express (Click's value would
differ, checked by parsing both), a name the script does not bind. Such a command is
written as a stub that fails with one ``Error:`` line until it is finished by hand.
An absent option's default, which argparse handed over unconverted (``25``, ``[]``)
where Click would convert it (``'25'``) or give ``()``, is repaired instead: the
option gets the callback ``_argparse_default(<default>)`` (see ``_Translation``).

Nothing is written when the Manager has nothing to convert (only ``db``, ``shell`` or
``runserver``, or no command at all), nor when the output folder does not exist or
cannot be written: one ``Error:`` line each, exit code 1.

The module must compile (``py_compile``); it is formatted with ``ruff format`` or
``black`` when one is installed. Exit codes: 0 when written (TODOs included), 1 for an
error (one ``Error:`` line), 2 for a usage error.
"""
from __future__ import annotations

import argparse
import ast
import builtins
import copy
import dataclasses
import importlib.util
import inspect
import io
import itertools
import keyword
import math
import os
import py_compile
import re
import shutil
import subprocess
import symtable
import sys
import textwrap
import tokenize
import types
import typing as t

import click
from flask import Flask

from . import bridge, runner
from .core import MigrateError
from .runner import load_manager

DEFAULT_OUTPUT = "commands.py"

#: What starts every TODO comment in a converted module.
TODO_MARK = "TODO(flask-migrate-compat)"
_RETURN_HELPER = "_exit_with_return_value"
_REQUEST_HELPER = "_in_test_request_context"
_APP_RUN_HELPER = "_let_app_run_serve"
_ARGPARSE_DEFAULT_HELPER = "_argparse_default"
_HELPERS = {
    _RETURN_HELPER: '''\
def _exit_with_return_value(f):
    """Exit with the command's return value, as manage.py did (Flask-Script's
    manager.run() ended with sys.exit(result or 0)); Click ignores return values."""

    @functools.wraps(f)
    def command(*args, **kwargs):
        result = f(*args, **kwargs)
        if result:
            sys.exit(result)

    return command
''',
    _REQUEST_HELPER: '''\
def _in_test_request_context(f):
    """Run the command in app.test_request_context(), as Flask-Script ran every
    command: code below it may use request or url_for (with_appcontext gives only an
    app context)."""

    @functools.wraps(f)
    def command(*args, **kwargs):
        with current_app.test_request_context():
            return f(*args, **kwargs)

    return command
''',
    _ARGPARSE_DEFAULT_HELPER: '''\
def _argparse_default(value):
    """An option's default as manage.py's argparse parser gave it, unconverted (25,
    not "25"; [] for an absent multiple option): a Click callback."""

    def callback(ctx, param, given):
        return value if given is None or given == () else given

    return callback
''',
    _APP_RUN_HELPER: '''\
def _let_app_run_serve(f):
    """Let app.run() serve while the command runs, as under manage.py: the flask
    command sets FLASK_RUN_FROM_CLI=true, which makes app.run() return at once."""

    @functools.wraps(f)
    def command(*args, **kwargs):
        saved = os.environ.pop("FLASK_RUN_FROM_CLI", None)
        try:
            return f(*args, **kwargs)
        finally:
            if saved is not None:
                os.environ["FLASK_RUN_FROM_CLI"] = saved

    return command
''',
}


@dataclasses.dataclass
class Conversion:
    """What :func:`convert` did.

    :ivar output: the path of the written module.
    :ivar converted: the converted command paths (``"users create"``).
    :ivar groups: the sub-managers converted into Click groups (``"users"``).
    :ivar todos: ``(command path, what and why)`` for every ``TODO`` in the module.
    :ivar skipped: ``(name, reason)`` for the entries not converted (db, shell...).
    :ivar notes: other things to know (the Manager's options).
    :ivar formatter: the formatter that ran, or ``None``.
    """

    output: str
    converted: list[str] = dataclasses.field(default_factory=list)
    groups: list[str] = dataclasses.field(default_factory=list)
    todos: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    formatter: str | None = None


# -- reading the script ----------------------------------------------------------------

class _ModuleLevel(ast.NodeVisitor):
    """The import statements of a module outside its functions and classes."""

    def __init__(self) -> None:
        self.imports: dict[str, set[tuple]] = {}
        self.stars: list[str] = []

    def _skip(self, node: ast.AST) -> None:
        pass

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Lambda = _skip

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            bound = alias.asname or alias.name.partition(".")[0]
            self.imports.setdefault(bound, set()).add(("import", alias.name, alias.asname, 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.stars.append(node.module or "")
            else:
                key = ("from", node.module or "", alias.name, alias.asname, node.level)
                self.imports.setdefault(alias.asname or alias.name, set()).add(key)


@dataclasses.dataclass
class _Code:
    """A definition copied from the script: a function, a method as a function, or a
    lambda."""

    text: str           # the decorators kept and the definition, ready to write
    node: ast.AST
    globals_used: set[str]
    returns_value: bool


_MISSING = object()
_PROMPTS = ("prompt", "prompt_pass", "prompt_bool", "prompt_choices")


class _Script:
    """The script's text, syntax tree and symbols, and the namespace it ran in."""

    def __init__(self, path: str, module: types.ModuleType, manager: t.Any) -> None:
        self.path = path
        self.name = os.path.splitext(os.path.basename(path))[0]
        self.import_name = _import_name(path)
        self.namespace = vars(module)
        with open(path, encoding="utf-8") as f:
            self.text = f.read()
        self.lines = self.text.splitlines(keepends=True)
        self.tree = ast.parse(self.text, path)
        self.symbols = {s.get_name(): s for s in
                        symtable.symtable(self.text, path, "exec").get_symbols()}
        level = _ModuleLevel()
        level.visit(self.tree)
        self.imports, self.stars = level.imports, level.stars
        self.flask_script = bridge.script_module(manager)
        self.parents = {child: node for node in ast.walk(self.tree)
                        for child in ast.iter_child_nodes(node)}

    def owns(self, func: types.FunctionType) -> bool:
        return os.path.abspath(func.__code__.co_filename) == self.path

    def _is_manager_decorator(self, node: ast.expr) -> bool:
        """``@manager.command``, ``@manager.option(...)``, ``@manager.shell``."""
        target = node.func if isinstance(node, ast.Call) else node
        return isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) \
            and isinstance(self.namespace.get(target.value.id), self.flask_script.Manager)

    def _definition(self, func: types.FunctionType, method: bool) -> ast.AST | str:
        code = func.__code__
        nodes = [n for n in ast.walk(self.tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == code.co_name
                 and code.co_firstlineno in (n.lineno, *(d.lineno for d in n.decorator_list))]
        if len(nodes) != 1:
            return f"cannot find the definition of {func.__qualname__} in {self.name}.py"
        parent = self.parents.get(nodes[0])
        while not method and isinstance(parent, (ast.If, ast.Try, ast.With)):
            parent = self.parents.get(parent)  # def inside a module-level if/try/with
        if not isinstance(parent, ast.ClassDef if method else ast.Module):
            return f"{func.__qualname__} is not defined at the top level of {self.name}.py"
        return nodes[0]

    def copy(self, func: types.FunctionType, method: bool = False) -> _Code | str:
        """The definition of ``func`` to write into the new module, or why it cannot be
        moved there. ``method``: ``func`` is ``Command.run``, which becomes a function
        without its ``self`` parameter (and must not use it)."""
        if func.__closure__:
            return f"{func.__qualname__} is a closure (it uses an enclosing function's variables)"
        if func.__code__.co_name == "<lambda>":
            return self._lambda(func)
        node = self._definition(func, method)
        if isinstance(node, str):
            return node
        header, body, one_line = _split_def(self.lines, node)
        self_name = _first_parameter(node) if method else None
        used = _global_names(header + body, self_name)
        if isinstance(used, str):
            return f"{func.__qualname__} {used}"
        if method:
            if self_name is None or _uses(node, self_name):
                return f"{func.__qualname__} uses {self_name or 'no self parameter'}"
            if one_line:
                return f"{func.__qualname__} is written on one line"
            header = _header_without_self(node)
            decorators = []
        else:
            # The Manager's decorators go; those below them made the function it got.
            marks = [i for i, d in enumerate(node.decorator_list) if self._is_manager_decorator(d)]
            decorators = node.decorator_list[marks[-1] + 1:] if marks else node.decorator_list
        text = "".join(f"@{ast.get_source_segment(self.text, d)}\n" for d in decorators)
        if decorators:
            more = _global_names(text + "def _(): pass\n")
            used |= more if isinstance(more, set) else set()
        return _Code(text + header + body, node, used, _returns_value(node))

    def _lambda(self, func: types.FunctionType) -> _Code | str:
        line = func.__code__.co_firstlineno
        nodes = [n for n in ast.walk(self.tree) if isinstance(n, ast.Lambda) and n.lineno == line]
        if len(nodes) != 1:
            return f"line {line} of {self.name}.py does not hold exactly one lambda"
        text = ast.get_source_segment(self.text, nodes[0])
        used = _global_names(text)
        if isinstance(used, str):
            return f"the lambda of line {line} {used}"
        return _Code(text, nodes[0], used, False)

    def construction(self, name: str, entry: t.Any) -> tuple[str, set[str]] | str:
        """How the script made the command object ``entry`` of its Manager: the
        expression of its ``add_command`` call (``InitDbCommand()``, or the class alone,
        which Flask-Script instantiates), for code that makes it the same way.

        :param name: the entry's name in its Manager.
        :param entry: the command object.
        :returns: the expression's source (a call) and the global names it uses, or
            why it cannot be told.
        """
        cls = type(entry)
        found = set()
        for node in ast.walk(self.tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "add_command" and node.args):
                continue
            args = node.args
            if len(args) == 2 and not (isinstance(args[0], ast.Constant)
                                       and args[0].value == name):
                continue
            made = args[-1]
            if self._evaluate(made.func if isinstance(made, ast.Call) else made) is not cls:
                continue
            text = ast.get_source_segment(self.text, made)
            found.add(text if isinstance(made, ast.Call) else f"{text}()")
        if len(found) != 1:
            return (f"{cls.__qualname__} comes from {cls.__module__}, and {self.name}.py "
                    f"has {len(found)} add_command({name!r}, {cls.__name__}(...)) calls "
                    "to make it as Flask-Script did")
        (text,) = found
        names = _global_names(text)
        if isinstance(names, str):
            return f"the expression {text} {names}"
        return text, names

    def _evaluate(self, node: ast.expr) -> t.Any:
        """The value of a name or a dotted name in the script's namespace, or
        :data:`_MISSING`."""
        if isinstance(node, ast.Name):
            return self.namespace.get(node.id, _MISSING)
        if isinstance(node, ast.Attribute):
            return getattr(self._evaluate(node.value), node.attr, _MISSING)
        return _MISSING

    def binding(self, name: str) -> tuple[tuple | None, str | None]:
        """Where a global name of copied code comes from.

        :returns: an import key (see :func:`_render_imports`) or ``None`` (a builtin,
            or nothing to import), and the TODO text when it cannot be imported
            faithfully.
        """
        value = self.namespace.get(name, _MISSING)
        where = f"{self.name}.py"
        prompt = next((n for n in _PROMPTS if getattr(self.flask_script, n, None) is value), None)
        if prompt is not None:
            return ("from", "flask_migrate_compat.prompts", prompt,
                    name if name != prompt else None, 0), None
        if _is_flask_script(value, self.flask_script):
            return None, f"uses {name}, a part of Flask-Script"
        if name.startswith("__") and name.endswith("__"):
            return None, f"uses {name}, which means something else in another module"
        symbol = self.symbols.get(name)
        if symbol is None or not (symbol.is_imported() or symbol.is_assigned()):
            if value is _MISSING and hasattr(builtins, name):
                return None, None
            for star in self.stars:
                module = sys.modules.get(star)
                if module is not None and getattr(module, name, _MISSING) is value:
                    return ("from", star, name, None, 0), None
            return None, f"uses {name}, which {where} does not define"
        keys = self.imports.get(name, set())
        if symbol.is_assigned() or len(keys) != 1:
            if keys:
                return None, f"uses {name}, which {where} binds in several places"
            if not self.name.isidentifier():
                return None, f"uses {name}, defined in {where}, which cannot be imported"
            return ("from", self.import_name, name, None, 0), None
        (key,) = keys
        if key[-1]:
            return None, f"uses {name}, which {where} imports relatively"
        served = runner.served_module(key[1], runner._migrate_redirect_reason())
        return (key if served is None else (key[0], served, *key[2:])), None


def _import_name(path: str) -> str:
    """The name a module beside ``path`` imports ``path`` by: ``manage``, or
    ``lemur.manage`` when its folder is a package (``__init__.py``), since the converted
    module is written into that package too. (``python manage.py`` put the folder
    itself first on ``sys.path``; an application importing ``lemur.commands`` does not.)
    """
    folder, name = os.path.split(os.path.splitext(os.path.abspath(path))[0])
    parts = [name]
    while os.path.isfile(os.path.join(folder, "__init__.py")):
        folder, package = os.path.split(folder)
        if not package.isidentifier():
            break
        parts.insert(0, package)
    return ".".join(parts)


def _is_flask_script(value: t.Any, flask_script: types.ModuleType) -> bool:
    """Whether ``value`` is Flask-Script's: the module, a class or function of it, or
    an instance of one of its classes (a Manager, a Command...)."""
    if isinstance(value, types.ModuleType):
        module = value.__name__
    elif isinstance(value, (type, types.FunctionType)):
        module = value.__module__ or ""
    else:
        module = type(value).__module__ or ""
    return module.partition(".")[0] == flask_script.__name__


def _calls_app_run(func: types.FunctionType | None) -> str | None:
    """Whether a command's function calls ``app.run()``: ``.run(...)`` on a Flask
    application of its module, on ``current_app``, on an attribute called ``app``
    (``self.app``), on a parameter called ``app``, or on a local made by a function of
    its module (``app = create_app()``) or by ``Flask``; not on a local made by another
    class or by a name imported inside the function (``app = WSGIApplication()``: a
    gunicorn server).

    :param func: the function (its source is read, with its module's globals).
    :returns: the call as written (``app.run()``), or None.
    """
    from flask import current_app

    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return None
    namespace = func.__globals__
    made: dict[str, list[ast.expr]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    made.setdefault(target.id, []).append(node.value)

    def flask_app(base: ast.expr) -> bool:
        if isinstance(base, ast.Attribute):
            return base.attr == "app"
        if not isinstance(base, ast.Name):
            return False
        if base.id not in made:
            value = namespace.get(base.id, _MISSING)
            return isinstance(value, Flask) or value is current_app or (
                base.id == "app" and value is _MISSING)  # a parameter
        for value in made[base.id]:
            maker = namespace.get(value.func.id, _MISSING) \
                if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) \
                else _MISSING
            if isinstance(maker, types.FunctionType) or \
                    isinstance(maker, type) and issubclass(maker, Flask):
                return True
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                and node.func.attr == "run" and flask_app(node.func.value):
            return f"{ast.unparse(node.func)}()"
    return None


def _first_parameter(node: ast.AST) -> str | None:
    positional = [*node.args.posonlyargs, *node.args.args]
    return positional[0].arg if positional else None


def _header_without_self(node: ast.AST) -> str:
    """``def run(self, a, b=1):`` as ``def run(a, b=1):``."""
    args = copy.deepcopy(node.args)
    (args.posonlyargs or args.args).pop(0)
    if len(args.defaults) > len(args.posonlyargs) + len(args.args):
        args.defaults.pop(0)
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    return f"{prefix} {node.name}({ast.unparse(args)}){returns}:\n"


def _split_def(lines: list[str], node: ast.AST) -> tuple[str, str, bool]:
    """A function's header (``def ...:`` without decorators) and body, moved left by
    the definition's indentation, and whether the body is on the header's line.

    Only whitespace outside string literals moves: the lines inside a multi-line
    string keep every character.
    """
    text = "".join(lines[node.lineno - 1:node.end_lineno])
    depth, colon, inside = 0, None, set()
    fstring_rows = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        name = tokenize.tok_name[token.type]
        if name == "OP" and token.string in "([{":
            depth += 1
        elif name == "OP" and token.string in ")]}":
            depth -= 1
        elif name == "OP" and token.string == ":" and depth == 0 and colon is None:
            colon = token.end
        elif name == "FSTRING_START":  # Python 3.12+: f-strings are several tokens
            fstring_rows.append(token.start[0])
        elif name == "FSTRING_END":
            inside.update(range(fstring_rows.pop() + 1, token.end[0] + 1))
        elif name == "STRING":
            inside.update(range(token.start[0] + 1, token.end[0] + 1))
    assert colon is not None, text  # ast parsed it: the header ends with a colon
    row, col = colon
    indent = node.col_offset
    moved, removed = [], []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        spaces = 0 if number in inside else min(len(line) - len(line.lstrip(" ")), indent)
        moved.append(line[spaces:])
        removed.append(spaces)
    header = "".join(moved[:row])
    rest = moved[row - 1][col - removed[row - 1]:]
    one_line = bool(rest.strip()) and not rest.strip().startswith("#")
    if not one_line:
        header = header.rstrip() + "\n"
    return header, "".join(moved[row:]), one_line


def _global_names(text: str, self_name: str | None = None) -> set[str] | str:
    """The global names a definition uses (in its body, defaults, annotations and
    decorators), or why it cannot move to another module: it assigns a global, or (for
    a method, whose ``self`` is ``self_name``) calls ``super()``.

    :param text: the definition's source, at column 0.
    """
    table = symtable.symtable(text, "<copied>", "exec")
    names = {s.get_name() for s in table.get_symbols()
             if s.is_referenced() and not s.is_assigned() and not s.is_imported()}
    todo = list(table.get_children())
    while todo:
        child = todo.pop()
        todo.extend(child.get_children())
        for symbol in child.get_symbols():
            name = symbol.get_name()
            if symbol.is_declared_global() and symbol.is_assigned():
                return f"assigns the global {name}"
            if symbol.is_global() and symbol.is_referenced():
                names.add(name)
    if self_name is not None and "super" in names:
        return "uses super()"
    return names


def _uses(node: ast.AST, name: str) -> bool:
    """Whether a function's body reads ``name`` (its parameter), nested functions that
    have their own parameter of that name aside. (The AST, not the symbol table, which
    loses a use inside a comprehension on Python 3.12+.)"""
    todo = [*node.body]
    while todo:
        child = todo.pop()
        if isinstance(child, ast.Name) and child.id == name:
            return True
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            args = child.args
            if name in {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs,
                                        args.vararg, args.kwarg] if a is not None}:
                continue
        todo.extend(ast.iter_child_nodes(child))
    return False


def _returns_value(node: ast.AST) -> bool:
    """Whether a function has a ``return`` of something other than None (nested
    functions aside)."""
    todo = list(getattr(node, "body", []))
    while todo:
        child = todo.pop()
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        if isinstance(child, ast.Return) and child.value is not None \
                and not (isinstance(child.value, ast.Constant) and child.value.value is None):
            return True
        todo.extend(ast.iter_child_nodes(child))
    return False


# -- argparse -> Click -----------------------------------------------------------------

@dataclasses.dataclass
class _Expr:
    """Python source for a value that is not a literal (``int``, ``click.Choice(...)``)."""

    text: str
    value: t.Any


@dataclasses.dataclass
class _Param:
    kind: str                 # "option" or "argument"
    decls: list[str]
    kwargs: dict[str, t.Any]  # literals or _Expr
    comment: str | None = None

    def live(self) -> click.Parameter:
        kwargs = {k: v.value if isinstance(v, _Expr) else v for k, v in self.kwargs.items()}
        return (click.Option if self.kind == "option" else click.Argument)(self.decls, **kwargs)


def _expand_help(action: argparse.Action, prog: str) -> str | None:
    """An argparse help text with ``%(default)s``, ``%(prog)s``... filled in, as
    argparse shows it."""
    text = action.help
    if text is None or text == argparse.SUPPRESS or "%" not in text:
        return text
    values = {k: v for k, v in vars(action).items() if v is not argparse.SUPPRESS}
    values["prog"] = prog
    if values.get("choices") is not None:
        values["choices"] = ", ".join(map(str, values["choices"]))
    if values.get("type") is not None:
        values["type"] = getattr(values["type"], "__name__", values["type"])
    try:
        return text % values
    except (KeyError, TypeError, ValueError):
        return text


_SIMPLE_ACTIONS = (
    argparse._StoreAction, argparse._StoreConstAction, argparse._StoreTrueAction,
    argparse._StoreFalseAction, argparse._AppendAction, argparse._CountAction,
    argparse.BooleanOptionalAction,
)


class _Translation:
    """The Click parameters equivalent to one command's argparse parser.

    :ivar params: the parameters, in the parser's order.
    :ivar todos: differences a Click user must know of (checked by parsing both).
    :ivar names: global names the parameters refer to (a ``type`` function).
    :ivar stub: why the command cannot be translated at all, or None.
    """

    def __init__(self, parser: argparse.ArgumentParser,
                 type_name: t.Callable[[t.Any], str | None]) -> None:
        self.params: list[_Param] = []
        self.todos: list[str] = []
        self.names: set[str] = set()
        self.helpers: set[str] = set()
        self.stub: str | None = None
        self.type_name = type_name
        by_dest: dict[str, _Param] = {}
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction) or action.dest == "func_stack":
                continue
            if action.dest in by_dest:
                self.stub = f"several options set {action.dest}, which Click cannot express"
            if self.stub is not None:
                return
            param = self._param(action, parser.prog)
            if param is not None:
                self.params.append(param)
                by_dest[action.dest] = param
        for group in parser._mutually_exclusive_groups:
            names = ", ".join(a.option_strings[-1] if a.option_strings else a.dest
                              for a in group._group_actions)
            self.todos.append(f"{names} are mutually exclusive: argparse refused them "
                              "together, Click does not")
        for group in parser._action_groups[2:]:  # after the positionals and the options
            if group.title and group._group_actions:
                by_dest[group._group_actions[0].dest].comment = (
                    f"argparse group {group.title!r} starts here (Click lists all options together)")

    def _type(self, action: argparse.Action) -> _Expr | None:
        kind = action.type
        if kind is None or kind is str:
            # Click would take the type from a non-text default; argparse gave text.
            value_default = action.default is not None and not isinstance(action.default, str)
            return _Expr("str", str) if value_default else None
        if kind in (int, float):
            return _Expr(kind.__name__, kind)
        if kind is bool:
            self.stub = "it has type=bool (argparse gave bool(text): true for any non-empty text)"
            return None
        name = self.type_name(kind)
        if name is None:
            self.stub = f"the type {getattr(kind, '__qualname__', kind)!r} is not a name of the script"
            return None
        self.names.add(name)
        return _Expr(name, kind)

    def _param(self, action: argparse.Action, prog: str) -> _Param | None:
        name = action.dest
        label = "/".join(action.option_strings) or name
        if type(action) not in _SIMPLE_ACTIONS:
            self.stub = f"{label} uses argparse's {type(action).__name__}, which Click lacks"
            return None
        if not name.isidentifier():
            self.stub = f"{label} stores into {name!r}, not a Python name"
            return None
        takes_value = action.nargs != 0
        kwargs: dict[str, t.Any] = {}
        kind = self._type(action) if takes_value else None
        if self.stub is not None:
            return None
        if kind is not None:
            kwargs["type"] = kind
        if action.choices is not None:
            choices = list(action.choices)
            if all(isinstance(c, str) for c in choices):
                kwargs["type"] = _Expr(f"click.Choice({_literal(choices)})", click.Choice(choices))
            else:
                self.todos.append(f"{label} must be one of {choices!r}: argparse checked "
                                  "that, Click does not")
        help_text = _expand_help(action, prog)
        if not action.option_strings:
            nargs = action.nargs
            if nargs == "?":
                kwargs["required"] = False
                if action.default is not None:
                    kwargs["default"] = action.default
            elif nargs in ("*", "+"):
                kwargs.update(nargs=-1, required=nargs == "+")
            elif isinstance(nargs, int):
                kwargs["nargs"] = nargs
            elif nargs is not None:
                self.stub = f"the argument {name} takes nargs={nargs!r}, which Click lacks"
                return None
            if action.metavar is not None:
                kwargs["metavar"] = action.metavar
            param = _Param("argument", [name], kwargs, comment=(
                f"argument {name}: {help_text} (a Click argument has no help)"
                if help_text else None))
        else:
            decls = list(action.option_strings)
            if isinstance(action, argparse.BooleanOptionalAction):
                positive = [o for o in decls if not o.startswith("--no-")]
                negative = [o for o in decls if o.startswith("--no-")]
                decls = [f"{p}/{n}" for p, n in zip(positive, negative)]
                kwargs["default"] = action.default
            elif isinstance(action, argparse._StoreConstAction):
                if action.const is True and action.default is False:
                    kwargs["is_flag"] = True
                else:
                    kwargs.update(flag_value=action.const, default=action.default)
            elif isinstance(action, argparse._CountAction):
                kwargs.update(count=True, default=action.default)
            else:
                if action.nargs is not None and not isinstance(action.nargs, int):
                    self.stub = f"{label} takes nargs={action.nargs!r}, which a Click option lacks"
                    return None
                if action.nargs not in (None, 1):
                    kwargs["nargs"] = action.nargs
                if isinstance(action, argparse._AppendAction):
                    kwargs["multiple"] = True
                if action.default is not None:
                    kwargs["default"] = action.default
                if action.metavar is not None:
                    kwargs["metavar"] = action.metavar
            if action.required:
                kwargs["required"] = True
            if help_text == argparse.SUPPRESS:
                kwargs["hidden"] = True
            elif help_text:
                kwargs["help"] = help_text
            param = _Param("option", decls, kwargs)
        for value in kwargs.values():
            try:
                _literal(value)
            except ValueError:
                self.stub = f"{label} has the value {value!r}, which is not a literal"
                return None
        try:
            live = param.live()
        except (TypeError, ValueError) as exc:
            self.stub = f"Click refuses {label} as argparse has it ({exc})"
            return None
        if live.name != name:
            if param.kind == "argument":
                self.stub = f"Click would name the argument {name!r} {live.name!r}"
                return None
            param.decls.append(name)
        self._compare(param, action)
        return param

    def _compare(self, param: _Param, action: argparse.Action) -> None:
        """Parse an empty command line (and each flag alone) with argparse and with
        Click; a difference becomes a TODO, since the copied code would see it.

        One difference is repaired instead: argparse hands an absent option's default
        over as it is (``default=25``, ``default=[]``, ``default=True`` with no
        ``type``: values given on the command line are text), where Click converts the
        default with the option's type (``'25'``) or gives ``()`` for a multiple value.
        Such an option gets no Click default but the callback
        ``_argparse_default(<default>)``, which hands the default over as it is."""
        argvs = [] if action.required else [[]]
        if action.option_strings and action.nargs == 0:
            argvs += [[flag] for flag in action.option_strings]
        for argv in argvs:
            expected = _argparse_value(action, argv)
            got = _click_value(param, argv)
            if not _same(got, expected) and not argv and action.nargs != 0 \
                    and self._default_by_callback(param, expected):
                got = _click_value(param, argv)
            if not _same(got, expected):
                self.todos.append(f"{param.live().name}: for "
                                  f"{' '.join(argv) or 'an empty command line'}"
                                  f" Click passes {got!r} where argparse passed {expected!r}")
                return

    def _default_by_callback(self, param: _Param, default: t.Any) -> bool:
        """Give ``param`` argparse's ``default`` through a callback (see
        :meth:`_compare`); False when that does not make Click agree."""
        try:
            text = f"{_ARGPARSE_DEFAULT_HELPER}({_literal(default)})"
        except ValueError:
            return False
        kwargs = {k: v for k, v in param.kwargs.items() if k != "default"}
        kwargs["callback"] = _Expr(text, _argparse_default(default))
        trial = _Param(param.kind, list(param.decls), kwargs, param.comment)
        if not _same(_click_value(trial, []), default):
            return False
        param.kwargs = kwargs
        self.helpers.add(_ARGPARSE_DEFAULT_HELPER)
        return True


def _argparse_default(value: t.Any) -> t.Callable[..., t.Any]:
    """The callback :data:`_ARGPARSE_DEFAULT_HELPER` writes into a converted module,
    for the comparison here (the same code: see ``_HELPERS``)."""
    namespace: dict[str, t.Any] = {}
    exec(_HELPERS[_ARGPARSE_DEFAULT_HELPER], namespace)  # noqa: S102 - our own text
    return namespace[_ARGPARSE_DEFAULT_HELPER](value)


def _same(got: t.Any, expected: t.Any) -> bool:
    return type(got) is type(expected) and got == expected


def _argparse_value(action: argparse.Action, argv: list[str]) -> t.Any:
    parser = argparse.ArgumentParser(add_help=False)
    parser._add_action(action)
    try:
        return getattr(parser.parse_args(argv), action.dest)
    except SystemExit:
        return "an error"


def _click_value(param: _Param, argv: list[str]) -> t.Any:
    live = param.live()
    try:
        return click.Command("check", params=[live]).make_context(
            "check", list(argv)).params[live.name]
    except click.ClickException as exc:
        return f"an error ({exc.format_message()})"


# -- writing the module ----------------------------------------------------------------

def _literal(value: t.Any) -> str:
    """Python source for a literal value (double-quoted strings)."""
    if isinstance(value, _Expr):
        return value.text
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in value:
            text = '"' + text[1:-1].replace("\\'", "'") + '"'
        return text
    if isinstance(value, list):
        return "[" + ", ".join(map(_literal, value)) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(map(_literal, value)) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    if value is None or isinstance(value, (bool, int)) \
            or isinstance(value, float) and math.isfinite(value):
        return repr(value)
    raise ValueError(f"no literal for {value!r}")


def _decorator(name: str, args: t.Sequence[t.Any], kwargs: dict[str, t.Any]) -> str:
    parts = [_literal(a) for a in args] + [f"{k}={_literal(v)}" for k, v in kwargs.items()]
    one_line = f"@{name}({', '.join(parts)})"
    if len(one_line) <= 88:
        return one_line
    return f"@{name}(\n" + "".join(f"    {part},\n" for part in parts) + ")"


def _comment(text: str) -> str:
    return "\n".join(textwrap.wrap(text, 86, initial_indent="# ", subsequent_indent="#   "))


_RESERVED = frozenset(("click", "functools", "os", "sys", "current_app", "with_appcontext",
                       "init_app", _RETURN_HELPER, _REQUEST_HELPER, _APP_RUN_HELPER,
                       _ARGPARSE_DEFAULT_HELPER))


class _Writer:
    """Builds the new module's text from the Manager and the script."""

    def __init__(self, script: _Script, manager: t.Any, conversion: Conversion) -> None:
        self.script = script
        self.manager = manager
        self.conversion = conversion
        self.imports: dict[tuple, str | None] = {}   # import key -> TODO text
        self.helpers: set[str] = set()
        self.blocks: list[str] = []
        self.top: list[str] = []                     # what init_app registers
        self.group_idents: dict[tuple[str, ...], str] = {}
        self.shell_context: str | None = None
        self.taken = set(_RESERVED)
        self.from_script: set[str] = set()          # names imported from the script
        self.copies: dict[int, _Code | str] = {}
        self._reported: set[tuple[str, str]] = set()
        self.migrate_paths: set[tuple[str, ...]] = set()
        self.migrate_added: list[tuple[tuple[str, ...], str]] = []  # (path, ident)
        self.entries = list(self._walk(manager, ()))
        # Command functions that copied code calls stay plain functions (a Click command
        # cannot be called like one); their command becomes a small wrapper.
        functions = {}
        migrate_added = [added for _, entry, _ in self.entries
                         if bridge.entry_kind(entry, script.flask_script) == bridge.MIGRATE
                         for name, added in entry._commands.items()
                         if name not in bridge.group_command_names(entry.click_group)]
        for entry in [e for _, e, _ in self.entries] + migrate_added:
            func = _function_of(entry)
            if func is not None and script.owns(func) and _unconvertible(entry, script) is None:
                functions[id(func)] = func, "run" not in vars(entry)
        for func, method in functions.values():
            code = self.copy(func, method)
            if isinstance(code, _Code):
                self.taken |= code.globals_used
        by_name = {f.__name__: f for f, method in functions.values()
                   if not method and script.namespace.get(f.__name__) is f}
        self.called = {id(by_name[name]) for code in self.copies.values()
                       if isinstance(code, _Code) for name in code.globals_used if name in by_name}
        self.plain = {f.__name__ for f, _ in functions.values() if id(f) in self.called}

    def _walk(self, manager: t.Any, path: tuple[str, ...]) -> t.Iterator[tuple]:
        for name, entry in manager._commands.items():
            yield (*path, name), entry, manager
            if bridge.entry_kind(entry, self.script.flask_script) == bridge.GROUP:
                yield from self._walk(entry, (*path, name))

    def copy(self, func: types.FunctionType, method: bool = False) -> _Code | str:
        if id(func) not in self.copies:
            self.copies[id(func)] = self.script.copy(func, method)
        return self.copies[id(func)]

    def ident(self, wanted: str) -> str:
        """A fresh module-level name, ``wanted`` if free."""
        base = re.sub(r"\W", "_", wanted)
        if keyword.iskeyword(base):
            base += "_command"
        if not base.isidentifier():  # "2fa"
            base = f"command_{base}"
        candidates = itertools.chain(
            [base, f"{base}_command"], (f"{base}_command_{n}" for n in itertools.count(2)))
        candidate = next(c for c in candidates if c not in self.taken)
        self.taken.add(candidate)
        return candidate

    def todo(self, label: str, text: str) -> str:
        self.conversion.todos.append((label, text))
        return _comment(f"{TODO_MARK}: {text}")

    def need(self, names: t.Iterable[str], label: str) -> list[str]:
        """Import the global names copied code uses; returns the TODO comments."""
        todos = []
        for name in sorted(set(names) - self.plain):  # plain: copied into the module too
            key, problem = self.script.binding(name)
            if problem:
                todos.append(self.todo(label, problem))
            if key is None:
                continue
            comment = None
            if key[1] == self.script.import_name:
                comment = (f"defined in {self.script.name}.py: move it into the application "
                           f"before deleting {self.script.name}.py")
                self.from_script.add(name)
            self.imports.setdefault(key, comment)
        return todos

    def type_name(self, value: t.Any) -> str | None:
        return next((n for n, v in self.script.namespace.items() if v is value), None)

    # -- the entries ------------------------------------------------------------------

    def write(self) -> str:
        for path, entry, owner in self.entries:
            label = " ".join(path)
            kind = bridge.entry_kind(entry, self.script.flask_script)
            parent = "click" if len(path) == 1 else self.group_idents[path[:-1]]
            if kind == bridge.GROUP:
                self._group(path, entry, parent)
            elif kind == bridge.COMMAND:
                self._command(path, entry, owner, parent)
            else:
                self.conversion.skipped.append(
                    (label, bridge.skip_reason(kind, path[-1], entry)))
                if kind == bridge.SHELL and len(path) == 1:
                    self._shell(entry)
                if kind == bridge.MIGRATE:
                    self._migrate_added(path, entry)
        for name, kind in bridge.default_entries(self.manager).items():
            self.conversion.skipped.append((name, bridge.skip_reason(kind, name)))
        self._flask_script_imports()
        if self.from_script:
            source = f"{self.script.name}.py"
            self.conversion.todos.append((
                "imports", f"{', '.join(sorted(self.from_script))} come from {source}, which "
                f"defines them: move them into the application before deleting {source}"))
        return self._module()

    def _flask_script_imports(self) -> None:
        """A TODO above every import of a module that binds something of Flask-Script
        (a ``Command`` subclass's module does): the converted module needs Flask-Script
        as long as it imports that module. The script's own module has its TODO."""
        script = self.script.flask_script
        for key in list(self.imports):
            module_name = key[1]
            if module_name == self.script.import_name \
                    or module_name.partition(".")[0] == "flask_migrate_compat":
                continue
            module = sys.modules.get(module_name)
            if module is None:
                continue
            uses = sorted(n for n, v in vars(module).items()
                          if _is_flask_script(v, script) or isinstance(v, type) and any(
                              _is_flask_script(c, script) for c in v.__mro__[1:]))
            if not uses and module_name.partition(".")[0] != script.__name__:
                continue
            text = (f"{module_name} imports Flask-Script ({', '.join(uses[:3]) or 'itself'}"
                    f"): these commands need Flask-Script, and flask-migrate-compat's "
                    f"import hook, until it no longer does")
            if self.imports[key] is None and (module_name, text) not in self._reported:
                self._reported.add((module_name, text))
                self.conversion.todos.append(("imports", text))
            self.imports[key] = self.imports[key] or text

    def _register(self, path: tuple[str, ...], ident: str) -> None:
        if len(path) == 1:
            self.top.append(ident)
        elif path[:-1] in self.migrate_paths:
            self.migrate_added.append((path, ident))

    def _migrate_added(self, path: tuple[str, ...], migrate: t.Any) -> None:
        """The commands the script added to ``MigrateCommand`` (``@MigrateCommand.command``,
        run as ``manage.py db create``) become commands of ``flask db``."""
        self.migrate_paths.add(path)
        click_names = bridge.group_command_names(migrate.click_group)
        for name, entry in migrate._commands.items():
            if name not in click_names:
                if bridge.entry_kind(entry, self.script.flask_script) == bridge.COMMAND:
                    self._command((*path, name), entry, migrate, "click")
                else:
                    self.conversion.skipped.append((f"{' '.join(path)} {name}",
                                                    "not a command"))

    def _group(self, path: tuple[str, ...], manager: t.Any, parent: str) -> None:
        label = " ".join(path)
        ident = self.ident(path[-1])
        self.group_idents[path] = ident
        kwargs = {}
        description = manager.description or manager.help
        if description:
            kwargs["help"] = inspect.cleandoc(description)
        if manager.help and manager.help != description:
            kwargs["short_help"] = manager.help
        lines = []
        if list(manager.get_options()):
            lines.append(self.todo(label, "the sub-manager's options (add_option) are not "
                                   "converted; Flask-Script passed them to its __call__"))
        lines += [_decorator(f"{parent}.group", [path[-1]], kwargs), f"def {ident}():",
                  "    pass"]
        self.blocks.append("\n".join(lines) + "\n")
        self._register(path, ident)
        self.conversion.groups.append(label)

    def _command(self, path: tuple[str, ...], entry: t.Any, owner: t.Any, parent: str) -> None:
        label, name = " ".join(path), path[-1]
        problem = _unconvertible(entry, self.script)
        func = _function_of(entry)
        method = func is not None and "run" not in vars(entry)
        code: _Code | None = None
        made: tuple[str, set[str]] | str | None = None
        if problem is None and self.script.owns(func):
            copied = self.copy(func, method)
            problem, code = (copied, None) if isinstance(copied, str) else (None, copied)
        elif problem is None and ("<locals>" in func.__qualname__
                                  or func.__module__ in (None, "__main__")):
            problem = f"{func.__qualname__} cannot be imported from {func.__module__}"
        elif problem is None and method and _is_flask_script(type(entry),
                                                             self.script.flask_script):
            problem = f"{type(entry).__name__} is a command of Flask-Script itself" + (
                ": 'flask routes' lists the URLs" if type(entry).__name__ == "ShowUrls"
                else "")
        elif problem is None and method:
            # A Command subclass of another module: make it as the script made it.
            made = self.script.construction(path[-1], entry)
            if isinstance(made, str):
                problem = made
            else:
                problem = next(filter(None, (self.script.binding(name)[1]
                                             for name in sorted(made[1]))), None)
        translation = None
        if problem is None:
            translation = _Translation(entry.create_parser(label, parent=owner), self.type_name)
            problem = translation.stub
        help_text = bridge.command_help(entry)
        if problem is not None:
            self._stub(path, parent, help_text, problem)
            return
        lines = [self.todo(label, text) for text in translation.todos]
        lines += self.need(translation.names, label)
        self.helpers |= translation.helpers
        if code is not None:
            lines += self.need(code.globals_used, label)
            returns = code.returns_value
            docstring = ast.get_docstring(code.node) if not isinstance(code.node, ast.Lambda) \
                else None
        else:
            # Defined in another module: import it from there and call it. Its code is not
            # copied, so keep what Flask-Script did with a return value: the exit code.
            returns, docstring = True, None
        app_run = _calls_app_run(func)
        if app_run:
            lines.append(self.todo(label, f"calls {app_run}, which the flask command makes "
                                   "return at once (FLASK_RUN_FROM_CLI); "
                                   f"{_APP_RUN_HELPER} lets it serve as under "
                                   f"{self.script.name}.py. Where it only serves the "
                                   "application, 'flask run' is the command to use"))
        click_name = name
        if len(path) == 1 and name in bridge.flask_command_names():
            click_name = bridge.renamed(name)
            lines.append(self.todo(label, f"'flask {name}' is Flask's own command, which "
                                   f"flask runs instead of this one: written as "
                                   f"'{click_name}', as the bridge names it; choose a name"))
        wrapper = code is None or id(func) in self.called
        command_kwargs = {}
        if help_text and (wrapper or help_text != docstring):
            command_kwargs["help"] = help_text
        lines.append(_decorator(f"{parent}.command", [click_name], command_kwargs))
        for param in translation.params:
            if param.comment:
                lines.append(_comment(param.comment))
            lines.append(_decorator(f"click.{param.kind}", param.decls, param.kwargs))
        lines.append("@with_appcontext")
        if returns:
            self.helpers.add(_RETURN_HELPER)
            lines.append(f"@{_RETURN_HELPER}")
        self.helpers.add(_REQUEST_HELPER)
        lines.append(f"@{_REQUEST_HELPER}")
        if app_run:
            self.helpers.add(_APP_RUN_HELPER)
            lines.append(f"@{_APP_RUN_HELPER}")
        if not wrapper:
            ident = self.ident(name if method or func.__name__ in self.taken else func.__name__)
            lines.append(_renamed(code, ident).rstrip("\n"))
        else:
            if code is not None:
                self.blocks.append(code.text)  # as it was: other commands call it
                target = func.__name__
            elif made is not None:
                expression, names = made
                lines = self.need(names, label) + lines
                target = f"{expression}.run"
            else:
                target = self._import_function(func)
            ident = self.ident(name)
            lines += [f"def {ident}(**values):", f"    return {target}(**values)"]
        self.blocks.append("\n".join(lines) + "\n")
        self._register(path, ident)
        self.conversion.converted.append(label)

    def _import_function(self, func: types.FunctionType) -> str:
        head, dot, rest = func.__qualname__.partition(".")
        local = head
        if local in self.taken:
            local = self.ident(f"{func.__module__.rpartition('.')[2]}_{head}")
        else:
            self.taken.add(local)
        self.imports.setdefault(("from", func.__module__, head,
                                 local if local != head else None, 0), None)
        return local + dot + rest

    def _stub(self, path: tuple[str, ...], parent: str, help_text: str | None,
              problem: str) -> None:
        label = " ".join(path)
        ident = self.ident(path[-1])
        kwargs: dict[str, t.Any] = {"help": help_text} if help_text else {}
        kwargs["context_settings"] = {"ignore_unknown_options": True, "allow_extra_args": True}
        message = f"{label} was not converted from {self.script.name}.py: {problem}"
        self.blocks.append("\n".join([
            self.todo(label, f"not converted: {problem}. Write it by hand from "
                             f"{self.script.name}.py."),
            _decorator(f"{parent}.command", [path[-1]], kwargs),
            f"def {ident}():",
            f"    raise click.ClickException(\n        {_literal(message)}\n    )",
        ]) + "\n")
        self._register(path, ident)

    def _shell(self, shell: t.Any) -> None:
        """A Shell's own make_context becomes a shell context processor."""
        make_context = shell.make_context
        if type(shell).get_context is not self.script.flask_script.Shell.get_context:
            self.todo("shell", "the Shell overrides get_context: give its names to "
                               "'flask shell' with @app.shell_context_processor")
            return
        if not isinstance(make_context, types.FunctionType) or not self.script.owns(make_context):
            return  # Flask-Script's default context, the app, which flask shell has too
        code = self.copy(make_context)
        if isinstance(code, str):
            self.todo("shell", f"the shell's make_context is not converted: {code}")
            return
        lines = self.need(code.globals_used, "shell")
        lines.append(f"# The names {self.script.name}.py's shell offered, for 'flask shell'.")
        if isinstance(code.node, ast.Lambda):
            self.shell_context = self.ident("shell_context")
            lines.append(f"{self.shell_context} = {code.text}")
        else:
            self.shell_context = self.ident(code.node.name)
            lines.append(_renamed(code, self.shell_context).rstrip("\n"))
        self.blocks.append("\n".join(lines) + "\n")

    # -- the module ---------------------------------------------------------------

    def _module(self) -> str:
        source = os.path.basename(self.script.path)
        module = _import_name(self.conversion.output)
        doc = [f"Click commands for flask, converted from {source}.", "",
               f"Written by flask-migrate-compat's converter; the command functions are "
               f"copied unchanged from {source}. Register them where the application is "
               "created, then run them as ``flask <command>``::", "",
               f"    from {module} import init_app", "", "    init_app(app)", "",
               "Flask-Script ran every command inside ``app.test_request_context()``; so do "
               "these (``with_appcontext``, then ``_in_test_request_context``)."]
        options = list(self.manager.get_options())
        if options and not isinstance(self.manager.app, Flask):
            factory = self.manager.app
            module = getattr(factory, "__module__", None) or "app"
            if module == "__main__":  # the script defines the factory
                module = self.script.import_name
            target = f"{module}:{getattr(factory, '__name__', 'create_app')}(...)"
            note = (f"The options {', '.join('/'.join(o.args) for o in options)} of {source} "
                    f"went to the application factory; with flask, pass them in FLASK_APP "
                    f"(--app \"{target}\") or read them from the environment in the factory.")
            self.conversion.notes.append(note)
            doc += ["", note]
        text = ['"""' + "\n".join(textwrap.fill(p, 88) if not p.startswith("    ") else p
                                  for p in doc) + '\n"""\n']
        features = sorted({alias.name for node in self.script.tree.body
                           if isinstance(node, ast.ImportFrom) and node.module == "__future__"
                           for alias in node.names})
        if features:  # the copied code was written for them
            text.append(f"from __future__ import {', '.join(features)}\n\n")
        if self.helpers:
            stdlib = ["functools"] + ["os"] * (_APP_RUN_HELPER in self.helpers) \
                + ["sys"] * (_RETURN_HELPER in self.helpers)
            text.append("".join(f"import {name}\n" for name in stdlib) + "\n")
            for name in stdlib:  # not twice when the copied code imports it too
                self.imports.pop(("import", name, None, 0), None)
        text.append("import click\n")
        flask_names = ["current_app"] if _REQUEST_HELPER in self.helpers else []
        uses_context = any("@with_appcontext" in b for b in self.blocks)
        text.append(_render_imports(self.imports, flask_names, uses_context))
        for name in sorted(self.helpers):
            text.append("\n\n" + _HELPERS[name])
        for block in self.blocks:
            text.append("\n\n" + block)
        register = [f"    app.cli.add_command({ident})" for ident in self.top]
        if self.shell_context:
            register.append(f"    app.shell_context_processor({self.shell_context})")
        for path, ident in self.migrate_added:
            register += [
                f"    # {source} added '{' '.join(path)}' to MigrateCommand: now a command of",
                f"    # 'flask {path[0]}', which Migrate(app, db) has registered by now.",
                f"    app.cli.commands[{_literal(path[0])}].add_command({ident})"]
        text.append("\n\ndef init_app(app):\n"
                    f'    """Add the commands of {source} to ``app.cli``."""\n'
                    + "\n".join(register or ["    pass"]) + "\n")
        return "".join(text)


def _renamed(code: _Code, name: str) -> str:
    """A copied function definition under another name."""
    if name == code.node.name:
        return code.text
    return re.sub(r"^((?:async\s+)?def\s+)\w+", rf"\g<1>{name}", code.text, count=1, flags=re.M)


def _render_imports(imports: dict[tuple, str | None], flask_names: list[str],
                    with_appcontext: bool) -> str:
    """The import lines: one per module, names sorted, TODO comments above."""
    wanted = dict(imports)
    for name in flask_names:
        wanted.setdefault(("from", "flask", name, None, 0), None)
    if with_appcontext:
        wanted.setdefault(("from", "flask.cli", "with_appcontext", None, 0), None)
    plain, froms, comments = set(), {}, {}
    for key, comment in wanted.items():
        if key[0] == "import":
            if key[1:3] != ("click", None):
                plain.add(f"import {key[1]}" + (f" as {key[2]}" if key[2] else ""))
            continue
        _, module, name, alias, _level = key
        froms.setdefault(module, set()).add(f"{name} as {alias}" if alias else name)
        if comment:
            comments[module] = comment
    lines = sorted(plain)
    for module in sorted(froms):
        if module in comments:
            lines.append(_comment(f"{TODO_MARK}: {comments[module]}"))
        lines.append(f"from {module} import {', '.join(sorted(froms[module]))}")
    return "\n".join(lines) + "\n" if lines else ""


def _function_of(entry: t.Any) -> types.FunctionType | None:
    """The function a Flask-Script command runs: the one given to ``Command(func)`` or
    ``@manager.option``, or its class's ``run``; None when that is not a function."""
    run = vars(entry).get("run")
    if run is None:
        run = inspect.getattr_static(type(entry), "run", None)
    return run if isinstance(run, types.FunctionType) else None


def _unconvertible(entry: t.Any, script: _Script) -> str | None:
    """Why a command cannot become a Click command by copying its function, or None."""
    command_class = script.flask_script.Command
    for cls in type(entry).__mro__:
        if cls is command_class:
            break
        if "__call__" in vars(cls):
            return (f"{cls.__name__} overrides __call__, which Flask-Script called with the "
                    "application instead of run()")
    if getattr(entry, "capture_all_args", False):
        return "it sets capture_all_args (the rest of the command line, unparsed)"
    run = vars(entry).get("run", inspect.getattr_static(type(entry), "run", None))
    if run is command_class.run:
        return f"{type(entry).__name__} has no run()"
    if not isinstance(run, types.FunctionType):
        return f"its run is a {type(run).__name__}, not a function"
    return None


def convert(script: str, output: str | None = None, *, format_code: bool = True) -> Conversion:
    """Write the Click module for a Flask-Script ``manage.py``.

    :param script: path to the script.
    :param output: the module to write; default ``commands.py`` beside the script.
    :param format_code: run ``ruff format`` or ``black`` when installed.
    :returns: a :class:`Conversion` report.
    :raises MigrateError: ``output`` exists, its folder is missing or not writable,
        the Manager has no command to convert, or the script cannot be run (see
        :func:`load_manager`); nothing is written then.
    """
    script = os.path.abspath(script)
    output = os.path.abspath(output or os.path.join(os.path.dirname(script), DEFAULT_OUTPUT))
    if os.path.exists(output):
        raise MigrateError(f"{output} exists; the converter never overwrites a file "
                           "(choose another with -o)")
    folder = os.path.dirname(output)
    if not os.path.isdir(folder):
        raise MigrateError(f"cannot write {output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise MigrateError(f"cannot write {output}: the folder {folder} is not writable")
    manager, module = load_manager(script)
    conversion = Conversion(output)
    writer = _Writer(_Script(script, module, manager), manager, conversion)
    text = writer.write()
    if not writer.top and writer.shell_context is None and not writer.migrate_added:
        left = ", ".join(name for name, _ in conversion.skipped)
        raise MigrateError(f"{os.path.basename(script)} has no command to convert"
                           + (f" (only {left}: see 'flask --help')" if left else "")
                           + "; nothing written")
    compile(text, output, "exec")  # a failure here is a bug: nothing is written
    try:
        with open(output, "x", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        raise MigrateError(f"cannot write {output}: {exc.strerror or exc}") from exc
    if format_code:
        conversion.formatter = _format(output)
    py_compile.compile(output, doraise=True)
    return conversion


def _format(path: str) -> str | None:
    """Format ``path`` with ruff or black if installed; the name of the one that ran."""
    commands = []
    if shutil.which("ruff"):
        commands.append(("ruff format", ["ruff", "format", "--quiet", path]))
    if importlib.util.find_spec("black") is not None:
        commands.append(("black", [sys.executable, "-m", "black", "--quiet", path]))
    for name, command in commands:
        try:
            done = subprocess.run(command, capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return name
    return None


def report(conversion: Conversion, script: str) -> list[str]:
    """What :func:`main` prints about a conversion.

    :param conversion: what :func:`convert` returned.
    :param script: the converted script's path.
    :returns: a line per skipped entry, note and TODO, then one summing it up.
    """
    name = os.path.relpath(conversion.output)
    if name.startswith(os.pardir):
        name = conversion.output
    lines = [f"skipped {n}: {why}" for n, why in conversion.skipped]
    lines += [f"note: {text}" for text in conversion.notes]
    lines += [f"TODO {label}: {text}" for label, text in conversion.todos]
    if conversion.formatter:
        lines.append(f"formatted with {conversion.formatter}")
    counts = [_plural(len(conversion.converted), "command")]
    if conversion.groups:
        counts.append(_plural(len(conversion.groups), "group"))
    todos = _plural(len(conversion.todos), "TODO")
    lines.append(f"wrote {name}: {' and '.join(counts)} from {os.path.basename(script)}, "
                 f"{len(conversion.skipped)} skipped, {todos}"
                 + (f" (search {name} for '{TODO_MARK}')"
                    if conversion.todos else ""))
    return lines


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@click.command("convert")
@click.argument("script", type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help=f"The module to write (default: {DEFAULT_OUTPUT} beside the script); "
                   "never overwritten.")
@click.option("--format/--no-format", "format_code", default=True,
              help="Format the module with ruff or black if one is installed.")
def convert_command(script: str, output: str | None, format_code: bool) -> None:
    """Write Click commands (commands.py) for the commands of a Flask-Script
    manage.py; see the module documentation."""
    try:
        conversion = convert(script, output, format_code=format_code)
    except MigrateError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in report(conversion, script):
        click.echo(line)


def main(argv: t.Sequence[str] | None = None,
         prog_name: str = "python -m flask_migrate_compat.convert") -> int:
    """Entry point: ``python -m flask_migrate_compat convert manage.py`` (through the
    runner) and ``python -m flask_migrate_compat.convert manage.py``.

    :returns: the exit code: 0 written, 1 error, 2 usage error.
    """
    try:
        convert_command.main(list(sys.argv[1:] if argv is None else argv),
                             prog_name=prog_name, standalone_mode=True)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
