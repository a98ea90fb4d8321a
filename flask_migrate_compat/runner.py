"""The zero-edit runner: ``python -m flask_migrate_compat path/to/manage.py db upgrade``
(or the ``flask-migrate-compat`` console script).

It runs an unmodified Flask-Script ``manage.py`` the way ``python manage.py`` would
(``__name__ == '__main__'``, ``__file__`` its absolute path, ``sys.path[0]`` its
folder, its arguments in ``sys.argv``) with two differences that make it work on
today's stack:

* Flask-Script's compatibility shims are applied first
  (:func:`flask_migrate_compat._flask_script_compat.apply`).
* While the script runs, an import finder serves ``flask_migrate`` from this package
  when the installed Flask-Migrate has no ``MigrateCommand`` (3.0 removed it) or is not
  installed, and serves the ``flask.ext.<name>`` spellings (removed in Flask 1.0) from
  ``flask_<name>``. When the script ends, one line on stderr lists what was served
  from where (nothing is printed when nothing was redirected).

Nothing is written to disk.
"""
from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import builtins
import os
import sys
import types
import typing as t

USAGE = """\
usage: flask-migrate-compat path/to/manage.py [arguments for manage.py...]
       flask-migrate-compat convert path/to/manage.py [-o commands.py] [--no-format]"""


def _migrate_redirect_reason() -> str | None:
    """Why ``flask_migrate`` must be served by this package, or ``None`` when the
    installed Flask-Migrate offers ``MigrateCommand`` itself (2.x)."""
    try:
        spec = importlib.util.find_spec("flask_migrate")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or not os.path.isfile(spec.origin):
        return "Flask-Migrate is not installed"
    # Read, don't import: importing Flask-Migrate 2.x would import Flask-Script too.
    try:
        with open(spec.origin, encoding="utf-8") as f:
            has_command = "MigrateCommand" in f.read()
    except OSError:
        has_command = False
    if has_command:
        return None
    version = ""
    try:
        from importlib.metadata import version as dist_version

        version = " " + dist_version("Flask-Migrate")
    except Exception:  # noqa: BLE001 - the version only decorates the message
        pass
    return f"the installed Flask-Migrate{version} has no MigrateCommand"


def served_module(fullname: str, migrate_reason: str | None) -> str | None:
    """The module the runner serves for a legacy module name, or ``None``.

    :param fullname: a module name a legacy ``manage.py`` imports.
    :param migrate_reason: see :func:`_migrate_redirect_reason`; ``None`` leaves
        ``flask_migrate`` alone.
    :returns: ``flask_migrate_compat`` for ``flask_migrate`` (when redirected),
        ``flask_<name>`` for ``flask.ext.<name>``, else ``None``.
    """
    if fullname == "flask_migrate" and migrate_reason is not None:
        return "flask_migrate_compat"
    if fullname.startswith("flask.ext.") and fullname.count(".") == 2:
        return "flask_" + fullname.rsplit(".", 1)[1]
    return None


class _AliasLoader(importlib.abc.Loader):
    """Loads a module name as another, already importable module: executing the alias
    puts the target module itself under the alias in ``sys.modules``, so both names
    give the same object."""

    def __init__(self, finder: LegacyImportFinder, target: str) -> None:
        self.finder = finder
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: t.Any) -> None:
        import importlib

        name = module.__spec__.name
        target = importlib.import_module(self.target)
        sys.modules[name] = target  # the import statement returns sys.modules[name]
        self.finder.report(name, self.target)


class _PackageLoader(importlib.abc.Loader):
    """Loads ``flask.ext``: an empty package whose submodules the finder serves."""

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: t.Any) -> None:
        module.__path__ = []


class LegacyImportFinder(importlib.abc.MetaPathFinder):
    """A ``sys.meta_path`` finder for the legacy import spellings of a ``manage.py``.

    :param migrate_reason: why ``flask_migrate`` is redirected to this package, or
        ``None`` to leave ``flask_migrate`` alone.
    :param stream: where to report redirections (default ``sys.stderr``).
    """

    def __init__(self, migrate_reason: str | None, stream: t.Any = None) -> None:
        self.migrate_reason = migrate_reason
        self.stream = stream
        self.served: dict[str, str] = {}

    def report(self, name: str, target: str) -> None:
        """Remember that ``name`` was served by the module ``target``."""
        if target == "flask_migrate" and self.migrate_reason is not None:
            target = "flask_migrate_compat"
        self.served.setdefault(name, target)

    def summary(self) -> str | None:
        """The one line describing every redirection, or ``None`` when there was none."""
        if not self.served:
            return None
        pairs = ", ".join(f"{name} -> {target}" for name, target in self.served.items())
        reasons = []
        if "flask_migrate_compat" in self.served.values():
            reasons.append(str(self.migrate_reason))
        if any(name.startswith("flask.ext.") for name in self.served):
            reasons.append("flask.ext was removed in Flask 1.0")
        return f"flask-migrate-compat: imports served: {pairs} ({'; '.join(reasons)})"

    def find_spec(self, fullname: str, path: t.Any = None,
                  target: t.Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname == "flask.ext":
            return importlib.util.spec_from_loader(
                fullname, _PackageLoader(), is_package=True)
        target = served_module(fullname, self.migrate_reason)
        if target is None:
            return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(self, target))


def run_script(script: str, args: t.Sequence[str],
               module: types.ModuleType | None = None) -> None:
    """Run ``script`` as ``__main__`` with the legacy import spellings served and the
    Flask-Script shims applied; ``sys.argv``, ``sys.path``, ``sys.meta_path`` and
    ``sys.modules['__main__']`` are restored afterwards.

    As with ``python manage.py`` on Python 3.9+: ``sys.argv[0]`` is the path as given,
    ``__file__`` the absolute path, ``sys.path[0]`` the script's folder. (``runpy``
    would make the two paths the same, so the script is executed here directly.)

    :param script: path to the script (``manage.py``).
    :param args: its command line arguments.
    :param module: the module to run the script in (default a new one), for a caller
        that reads the script's globals afterwards.
    :raises SystemExit: whatever the script exits with (``manager.run()`` always exits).
    """
    from . import _flask_script_compat

    # Also installs errors.install_startup_hook: a failure while the script builds
    # its application is one line.
    _flask_script_compat.apply()
    path = os.path.abspath(script)
    with open(path, "rb") as f:
        code = compile(f.read(), path, "exec")
    main = types.ModuleType("__main__") if module is None else module
    main.__dict__.update(
        __file__=path, __builtins__=builtins, __spec__=None, __cached__=None,
        __loader__=importlib.machinery.SourceFileLoader("__main__", path),
    )
    finder = LegacyImportFinder(_migrate_redirect_reason())
    saved_argv, saved_path0 = sys.argv[:], sys.path[0] if sys.path else None
    saved_main = sys.modules.get("__main__")
    sys.argv[:] = [script, *args]
    if sys.path:
        sys.path[0] = os.path.dirname(path)
    else:
        sys.path.append(os.path.dirname(path))
    sys.meta_path.insert(0, finder)
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        sys.meta_path.remove(finder)
        line = finder.summary()
        if line:
            print(line, file=sys.stderr)
        sys.argv[:] = saved_argv
        if saved_path0 is not None:
            sys.path[0] = saved_path0
        if saved_main is not None:
            sys.modules["__main__"] = saved_main


class _ManagerRun(BaseException):
    # BaseException: a script's own ``except Exception`` must not swallow it.
    def __init__(self, manager: t.Any) -> None:
        super().__init__()
        self.manager = manager


def load_manager(script: str) -> tuple[t.Any, types.ModuleType]:
    """Run ``script`` as the runner does, up to ``manager.run()``: the Manager as
    ``python manage.py`` would run it, with the commands a ``main()`` or the
    ``if __name__ == "__main__":`` block adds. For the converter and
    :func:`.bridge.manager_app`.

    :param script: path to the ``manage.py``.
    :returns: the Manager the script runs (with the commands given to ``run()``) and
        the module the script ran in.
    :raises MigrateError: the script failed, exited, or ran no Manager and defines not
        exactly one.
    """
    from . import _flask_script_compat
    from .errors import TRACEBACK_ENV, MigrateError, error_message

    script_module = _flask_script_compat.apply()
    manager_class = script_module.Manager
    original_run = manager_class.__dict__["run"]

    def stop_at_run(self: t.Any, commands: t.Any = None, default_command: t.Any = None):
        if commands:
            self._commands.update(commands)
        raise _ManagerRun(self)

    module = types.ModuleType("__main__")
    manager = None
    manager_class.run = stop_at_run
    try:
        run_script(script, [], module=module)
    except _ManagerRun as stop:
        manager = stop.manager
    except SystemExit as exc:
        raise MigrateError(f"{script} exited (code {exc.code}) before manager.run()") from exc
    except Exception as exc:
        if os.environ.get(TRACEBACK_ENV):
            raise
        raise MigrateError(f"running {script} failed: {error_message(exc)}") from exc
    finally:
        manager_class.run = original_run
    if manager is None:
        found = [v for v in vars(module).values()
                 if isinstance(v, manager_class) and v.parent is None]
        if len(found) != 1:
            raise MigrateError(f"{script} does not call manager.run() and defines "
                               f"{len(found)} top-level Managers: cannot tell which to convert")
        manager = found[0]
    return manager, module


def manager_app(script: str, *manager_args: str) -> t.Any:
    """The application of a ``Manager(create_app)`` script run as ``python`` runs it,
    up to ``manager.run()`` (so with the commands its ``main()`` or ``__main__`` block
    adds), with the Manager's commands registered: an app factory for ``flask --app``::

        flask --app "flask_migrate_compat.runner:manager_app('manage.py', '-c', 'prod.cfg')" seed

    A Manager in an importable module needs no run: :func:`.bridge.manager_app`.

    :param script: the path of the script (``manage.py``).
    :param manager_args: the Manager's options, as on the ``manage.py`` command line.
    :returns: the application (:func:`.bridge.app_of_manager`).
    :raises click.UsageError: for options the Manager's parser refuses.
    :raises flask.cli.NoAppException: the script failed or ran no single Manager (one
        ``Error:`` line from ``flask``).
    """
    from flask.cli import NoAppException

    from .bridge import app_of_manager
    from .errors import MigrateError

    try:
        manager = load_manager(script)[0]
    except MigrateError as exc:
        raise NoAppException(str(exc)) from exc
    return app_of_manager(manager, script, manager_args)


def main(argv: t.Sequence[str] | None = None) -> int:
    """Run a script: ``python -m flask_migrate_compat path/to/manage.py ...`` (the
    dispatch to the converter is :func:`flask_migrate_compat.__main__.main`'s).

    :param argv: ``[script, args...]``; default ``sys.argv[1:]``.
    :returns: the exit code: the script's own (usually through ``SystemExit``), 0
        when it returns normally, 2 for a missing or unreadable script path.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    script, args = argv[0], argv[1:]
    if not os.path.isfile(script):
        print(f"Error: script {script!r} not found (looked in {os.path.abspath(script)})",
              file=sys.stderr)
        return 2
    run_script(script, args)
    return 0
