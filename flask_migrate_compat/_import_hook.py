"""Import hook that applies the Flask-Script shims whenever ``flask_script`` is imported.

``flask_migrate_compat.pth`` (installed at the root of site-packages) runs at every
interpreter start. When a ``flask_script`` package is in one of the ``sys.path``
folders known then (the site-packages folder of the ``.pth``, those processed before
it, ``PYTHONPATH``), it imports this module and calls :func:`at_start_up`, which
installs the finder unless the environment variable ``FLASK_MIGRATE_COMPAT_NO_HOOK`` is
set to anything but ``0``. A legacy ``manage.py`` usually imports ``flask_script``
before anything of ours, so the shims cannot wait for ``from flask_migrate_compat
import MigrateCommand``.

Start-up cost is what matters here, at every start of every Python program of the
environment. Without Flask-Script the ``.pth`` line costs one compile of itself and one
``os.access`` per ``sys.path`` folder, and nothing of ours is imported (figures in the
README, "Speed"). A ``flask_script`` found anywhere else (a copy next to ``manage.py``,
whose folder joins ``sys.path`` after the ``.pth`` ran) gets the shims from ``from
flask_migrate_compat import ...`` before ``import flask_script``, or from ``python -m
flask_migrate_compat manage.py``.

When installed, this module imports nothing but ``sys`` (already loaded), defines two
small classes and puts one finder on ``sys.meta_path``. Flask and the shims
(:mod:`flask_migrate_compat._flask_script_compat`) are loaded only when ``flask_script``
itself is imported. No ``importlib.abc`` base classes: the import system only needs the
methods.
"""
import sys

_TARGET = "flask_script"
_MARK = "_flask_migrate_compat_hook"


class FlaskScriptFinder:
    """``sys.meta_path`` finder that reacts to ``flask_script`` only: it asks the other
    finders for the real spec and wraps its loader in a :class:`ShimmingLoader`."""

    _flask_migrate_compat_hook = True

    def find_spec(self, fullname, path=None, target=None):
        """Return the real spec of ``flask_script`` with a shimming loader.

        Args:
            fullname (str): the module being imported.
            path (list or None), target (module or None): passed on to the other finders.
        Returns:
            ModuleSpec or None: None for every other module, and when no other finder
            knows ``flask_script`` (the import then fails as usual).
        """
        if fullname != _TARGET:
            return None
        for finder in tuple(sys.meta_path):
            if getattr(finder, _MARK, False):
                continue
            find_spec = getattr(finder, "find_spec", None)
            if find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is not None and hasattr(loader, "exec_module") \
                and not isinstance(loader, ShimmingLoader):
            spec.loader = ShimmingLoader(loader)
        return spec

    def __repr__(self):
        return "<flask_migrate_compat FlaskScriptFinder>"


class ShimmingLoader:
    """Wraps the real loader of ``flask_script``: runs
    :func:`~flask_migrate_compat._flask_script_compat.pre_import` before the module
    executes and :func:`~flask_migrate_compat._flask_script_compat.post_import` after.
    Any other attribute (``get_source``, ``get_filename``, ...) is the real loader's."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        create_module = getattr(self.loader, "create_module", None)
        return None if create_module is None else create_module(spec)

    def exec_module(self, module):
        from flask_migrate_compat import _flask_script_compat as compat

        compat.pre_import()
        try:
            self.loader.exec_module(module)
        except BaseException:
            compat.post_import(None)
            raise
        finally:
            # From here on the module should show its real loader (inspect, linecache,
            # importlib.resources); a reload finds it again through the finder.
            module.__loader__ = self.loader
            if getattr(module, "__spec__", None) is not None:
                module.__spec__.loader = self.loader
        compat.post_import(module)


def at_start_up() -> bool:
    """What ``flask_migrate_compat.pth`` runs at interpreter start when a ``flask_script``
    package is on ``sys.path``: :func:`install`, unless ``FLASK_MIGRATE_COMPAT_NO_HOOK``
    is set to anything but ``0``.

    The ``.pth`` line is that check, then one ``exec`` of a three-line string (``site``
    runs only lines that start with ``import``, and a stale ``.pth`` whose package was
    removed must stay silent, hence the ``try``); everything else is here, compiled
    once into this module's bytecode instead of at every start (``site`` compiles the
    ``.pth`` line at every start, and twice in a Python 3.11 virtual environment, which
    processes its site-packages twice: the line stays short).

    Returns:
        bool: True if installed now.
    """
    import os  # loaded already by ``site``

    if os.environ.get("FLASK_MIGRATE_COMPAT_NO_HOOK", "0") not in ("", "0"):
        return False
    return install()


def installed() -> bool:
    """True when a :class:`FlaskScriptFinder` is on ``sys.meta_path``."""
    return any(getattr(finder, _MARK, False) for finder in sys.meta_path)


def install() -> bool:
    """Put the finder first on ``sys.meta_path`` (once).

    Returns:
        bool: True if installed now, False if it already was.
    """
    if installed():
        return False
    sys.meta_path.insert(0, FlaskScriptFinder())
    return True


def uninstall() -> bool:
    """Remove the finder from ``sys.meta_path``.

    Returns:
        bool: True if one was removed.
    """
    before = len(sys.meta_path)
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, _MARK, False)]
    return len(sys.meta_path) != before
