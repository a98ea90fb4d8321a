"""Shims that let the last Flask-Script release (2.0.6, 2017, unmaintained) import and
run on Flask 2.x/3.x and CPython 3.9-3.13.

Everything Flask-Script needs from us lives in this one module. Each shim is
feature-detected (never version-sniffed), does nothing where Flask-Script already
works, can be applied any number of times, and leaves the global state of the standard
library and of Flask as it found it:

``flask._compat``
    ``flask_script/__init__.py`` does ``from flask._compat import text_type``; Flask 2.0
    deleted ``flask._compat``. A stand-in module (``text_type = str``) sits in
    ``sys.modules`` only while ``flask_script`` executes. Not fixed upstream; the fork
    Flask-Script-NG 2.1 carries ``text_type`` in its own ``_compat``.
``flask._request_ctx_stack``
    ``flask_script/commands.py`` does ``from flask import _request_ctx_stack`` for
    ``Shell``'s default context (``_request_ctx_stack.top.app``). Flask 2.3 deprecated
    it and Flask 3.0 removed it. A read-only stand-in whose ``top`` is the active request
    context is set on ``flask`` only while ``flask_script`` executes, and stays bound in
    ``flask_script.commands``. Flask-Script-NG 2.1 switched to ``flask.globals.app_ctx``.
``inspect.getargspec``
    ``Command(func)`` (so ``@manager.command``) calls ``inspect.getargspec``, removed in
    Python 3.11. ``flask_script.commands`` gets its own ``inspect`` proxy that adds
    ``getargspec`` on top of ``getfullargspec``; the real ``inspect`` module is not
    touched. Flask-Script-NG 2.1 calls ``getfullargspec``.
``Manager._patch_argparser``
    Flask-Script makes ``manage.py`` without arguments print the help by storing the
    parser's ``_parse_known_args`` as ``parser._parse_known_args2`` and replacing it.
    CPython 3.12.8 and 3.13.1 (gh-125355, the ``parse_intermixed_args`` rewrite) added
    their own ``ArgumentParser._parse_known_args2`` to the chain ``parse_known_args ->
    _parse_known_args2 -> _parse_known_args``, so the instance attribute now shadows
    argparse's method: every command crashes and the help is never shown. The
    replacement wraps the parser's public ``parse_known_args`` instead. Flask-Script-NG
    2.1 renamed the attribute.

One addition is not a shim but the bridge to Flask's CLI (:mod:`flask_migrate_compat.bridge`):
``Manager.add_command`` (which ``@manager.command`` and ``@manager.option`` call too)
also registers the new command on ``app.cli`` of a ``Manager(app)``, and
``Manager(..., flask_cli=False)`` turns that off for one manager; ``Manager.__init__``
tells the bridge of a ``Manager(create_app)`` made under ``flask`` (see
:func:`flask_migrate_compat.bridge.manager_created`). The bridge module is loaded when
a Manager is first made.

Entry points: :func:`pre_import` and :func:`post_import` bracket the execution of
``flask_script`` (the import hook in :mod:`flask_migrate_compat._import_hook` calls
them), :func:`apply` does the whole job for code that imports Flask-Script itself.
"""
from __future__ import annotations

import sys
import types
from collections import namedtuple

__all__ = ["pre_import", "post_import", "apply", "applied"]

_MODULE = "flask_script"

#: Names of the shims applied in this process (see :func:`applied`).
_applied: set = set()
#: What :func:`pre_import` put in place for the duration of the import, by name.
_stand_ins: dict = {}
#: Flask-Script's own attributes that a shim replaced, by shim name (for tests).
_originals: dict = {}


# -- stand-ins that exist only while flask_script executes -----------------------------

class _RequestContextStack:
    """Read-only stand-in for Flask's removed ``_request_ctx_stack``: ``top`` is the
    active request context (which has ``.app``), or None outside of one."""

    @property
    def top(self):
        from flask import globals as flask_globals
        from flask import has_request_context

        if not has_request_context():
            return None
        # ``request_ctx`` exists since Flask 2.2; later versions may fold it into app_ctx.
        proxy = getattr(flask_globals, "request_ctx", None)
        if proxy is None:
            proxy = flask_globals.app_ctx
        return proxy._get_current_object()

    def __repr__(self):
        return "<flask_migrate_compat stand-in for flask._request_ctx_stack>"


_REQUEST_CTX_STACK = _RequestContextStack()


def _has_attribute_quietly(obj, name: str) -> bool:
    # Flask 2.3's module __getattr__ warns on deprecated names; a probe must not warn.
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return hasattr(obj, name)


def pre_import() -> None:
    """Put in place what ``flask_script`` needs while its modules execute.

    Installs, only where Flask lacks them, a ``flask._compat`` module (in
    ``sys.modules``) and a ``flask._request_ctx_stack`` attribute; :func:`post_import`
    removes both again. Safe to call repeatedly and nested (a nested call finds the
    stand-ins present and adds nothing).

    Returns:
        None. Raises nothing when Flask is not installed: the import of
        ``flask_script`` then fails with its own ``ModuleNotFoundError``.
    """
    try:
        import flask
    except ImportError:
        return

    if "flask._compat" not in sys.modules:
        from importlib.util import find_spec

        if find_spec("flask._compat") is None:
            compat = types.ModuleType(
                "flask._compat", "flask_migrate_compat stand-in for flask._compat "
                "(removed in Flask 2.0), present only while flask_script is imported")
            compat.text_type = str
            sys.modules["flask._compat"] = compat
            _stand_ins["flask._compat"] = compat
            _applied.add("flask._compat")

    if not _has_attribute_quietly(flask, "_request_ctx_stack"):
        flask._request_ctx_stack = _REQUEST_CTX_STACK
        _stand_ins["flask._request_ctx_stack"] = _REQUEST_CTX_STACK
        _applied.add("flask._request_ctx_stack")


def _remove_stand_ins() -> None:
    compat = _stand_ins.pop("flask._compat", None)
    if compat is not None and sys.modules.get("flask._compat") is compat:
        del sys.modules["flask._compat"]
    stack = _stand_ins.pop("flask._request_ctx_stack", None)
    flask = sys.modules.get("flask")
    if stack is not None and flask is not None \
            and flask.__dict__.get("_request_ctx_stack") is stack:
        del flask._request_ctx_stack


# -- patches of the imported flask_script ----------------------------------------------

_ArgSpec = namedtuple("ArgSpec", "args varargs keywords defaults")


class _InspectWithGetargspec:
    """``inspect`` as ``flask_script.commands`` sees it: the real module, plus the
    ``getargspec`` that Python 3.11 removed. Everything else is delegated."""

    def __init__(self, real):
        self._real = real

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __repr__(self):
        return f"<inspect with getargspec, proxy for {self._real!r}>"

    def getargspec(self, func):
        """Old ``inspect.getargspec``: ``ArgSpec(args, varargs, keywords, defaults)``.

        Args:
            func (callable): the command function.
        Returns:
            ArgSpec: a named tuple, as Python <= 3.10 returned.
        Raises:
            ValueError: ``func`` has keyword-only parameters, which Flask-Script cannot
                turn into options (as the original did; annotations, which the original
                refused too, are accepted).
            TypeError: ``func`` is not a callable with a signature.
        """
        spec = self._real.getfullargspec(func)
        if spec.kwonlyargs:
            raise ValueError(
                "Function has keyword-only parameters, which Flask-Script commands "
                "cannot take")
        return _ArgSpec(spec.args, spec.varargs, spec.varkw, spec.defaults)


def _patch_argparser(self, parser):
    """Make ``parser`` print its help and exit with status 2 when given no arguments.

    Replacement for ``flask_script.Manager._patch_argparser`` that uses only argparse's
    public API: it wraps the parser instance's ``parse_known_args`` (which ``parse_args``
    and the sub-parser action of a parent parser both call).

    Args:
        parser (argparse.ArgumentParser): a Manager's parser or sub-Manager's sub-parser.
    Returns:
        None.
    """
    parse_known_args = parser.parse_known_args

    def parse_known_args_or_help(args=None, namespace=None):
        arg_strings = sys.argv[1:] if args is None else list(args)
        if not arg_strings:
            parser.print_help()
            parser.exit(2)
        return parse_known_args(arg_strings, namespace)

    parser.parse_known_args = parse_known_args_or_help


def _argparse_chain_collides() -> bool:
    import argparse

    cls = argparse.ArgumentParser
    return hasattr(cls, "_parse_known_args2") or not hasattr(cls, "_parse_known_args")


def _patch_commands(module) -> None:
    commands = sys.modules.get(f"{_MODULE}.commands") or getattr(module, "commands", None)
    if commands is None:
        return
    real_inspect = getattr(commands, "inspect", None)
    if real_inspect is not None and not hasattr(real_inspect, "getargspec"):
        commands.inspect = _InspectWithGetargspec(real_inspect)
        _applied.add("inspect.getargspec")


def _patch_manager(module) -> None:
    manager = getattr(module, "Manager", None)
    if manager is None or manager.__dict__.get("_patch_argparser") is _patch_argparser:
        return
    if _argparse_chain_collides():
        _originals["Manager._patch_argparser"] = manager.__dict__.get("_patch_argparser")
        manager._patch_argparser = _patch_argparser
        _applied.add("Manager._patch_argparser")


def _bridged_init(self, *args, flask_cli=True, **kwargs):
    """``Manager.__init__`` plus ``flask_cli``: False keeps this manager's commands off
    ``app.cli`` (see :mod:`flask_migrate_compat.bridge`)."""
    self.flask_cli = flask_cli
    _originals["Manager.__init__"](self, *args, **kwargs)
    try:
        from flask_migrate_compat import bridge

        bridge.manager_created(self)
    except Exception as exc:  # noqa: BLE001 - the bridge must never break manage.py
        import warnings

        warnings.warn(f"flask-migrate-compat: the flask command will not name the bridge "
                      f"for this Manager: {type(exc).__name__}: {exc}", RuntimeWarning,
                      stacklevel=2)


def _bridged_add_command(self, *args, **kwargs):
    """``Manager.add_command``, then the bridge registers the new entries on ``app.cli``."""
    before = dict(self._commands)
    _originals["Manager.add_command"](self, *args, **kwargs)
    added = [name for name, entry in self._commands.items() if before.get(name) is not entry]
    try:
        from flask_migrate_compat import bridge

        bridge.commands_added(self, added)
    except Exception as exc:  # noqa: BLE001 - the bridge must never break manage.py
        import warnings

        warnings.warn(f"flask-migrate-compat: {', '.join(added)} not added to the flask "
                      f"command: {type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)


def _install_bridge(module) -> None:
    manager = getattr(module, "Manager", None)
    if manager is None or manager.__dict__.get("add_command") is _bridged_add_command:
        return
    _originals["Manager.__init__"] = manager.__init__
    _originals["Manager.add_command"] = manager.add_command
    manager.__init__ = _bridged_init
    manager.add_command = _bridged_add_command
    _applied.add("bridge")


def post_import(module=None) -> None:
    """Remove the stand-ins of :func:`pre_import` and patch the imported Flask-Script.

    Args:
        module (module or None): the executed ``flask_script`` module; None when its
            import failed, in which case only the stand-ins are removed.
    Returns:
        None. Idempotent: patches already in place, or not needed on this Python, are
        left alone.
    """
    _remove_stand_ins()
    if module is None:
        return
    _install_bridge(module)  # independent of the patches below
    _patch_commands(module)
    _patch_manager(module)
    # A manage.py that imports Flask-Script first, then builds its application:
    # start-up failures of Flask-SQLAlchemy get one line (see errors.py).
    from .errors import install_startup_hook

    install_startup_hook()


def apply():
    """Make Flask-Script usable: import it with the shims, or patch it if imported.

    Returns:
        module: the ``flask_script`` module.
    Raises:
        ImportError: Flask-Script (or Flask) is not installed.
    """
    module = sys.modules.get(_MODULE)
    if module is None:
        from importlib import import_module

        pre_import()
        try:
            module = import_module(_MODULE)
        except BaseException:
            post_import(None)
            raise
    post_import(module)
    return module


def applied() -> frozenset:
    """Names of the shims applied in this process so far (for diagnostics and tests).

    Returns:
        frozenset of str: among ``flask._compat``, ``flask._request_ctx_stack``,
        ``inspect.getargspec``, ``Manager._patch_argparser`` and ``bridge``.
    """
    return frozenset(_applied)
