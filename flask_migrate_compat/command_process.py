"""What a process that runs ``db`` commands from the command line (``flask db ...``,
``python manage.py db ...``) does that a process using the Python API must not: it
ends when the command ends, so it may skip work whose only use is a process that goes
on.

Both front ends call :func:`begin` before each command and :func:`remember_engines`
after it. The Python API (:mod:`.core`'s functions called by an application) does
neither.

* **Alembic is imported without Mako's Pygments plugin.** Importing Alembic imports
  ``mako.exceptions`` (``alembic.util.pyfiles``), which imports Pygments and its
  lexers whenever Pygments is installed (a development machine, a CI runner, any
  image with IPython or pytest): ~20 ms, 95 million instructions, a fifth of
  Alembic's import, for the syntax highlighting of Mako's HTML error page
  (``html_error_template``). Alembic renders its templates' errors with
  ``text_error_template``, which does not highlight. So the first command imports
  Alembic with ``mako.ext.pygmentplugin`` marked absent, and Mako keeps its plain
  fallback in that process; the mark is removed at once, so an explicit import of
  the plugin or of Pygments still works afterwards.
* **At exit, the last full garbage collection is skipped** (:func:`gc.freeze`) after
  the connections of the engines the commands used are closed
  (:func:`remember_engines`).
"""
from __future__ import annotations

import sys
import weakref

#: Mako's module that imports Pygments (Mako 1.x).
PYGMENTS_PLUGIN = "mako.ext.pygmentplugin"

_begun: list[bool] = []

#: The application engines the commands of this process used, closed at exit; weak
#: references, so that a test process creating many applications keeps none alive.
_engines_used: weakref.WeakSet = weakref.WeakSet()


def begin() -> None:
    """Prepare this process for its commands; the first call does the work, later
    calls nothing: import Alembic without Mako's Pygments plugin
    (:func:`import_alembic`) and register :func:`_skip_final_collection` with
    :mod:`atexit`.
    """
    if _begun:
        return
    _begun.append(True)
    import atexit

    atexit.register(_skip_final_collection)
    import_alembic()


def import_alembic() -> None:
    """Import Alembic's runtime (``alembic.config``, which imports the rest), with
    :data:`PYGMENTS_PLUGIN` marked absent while it runs, unless Mako's error module
    is imported already (nothing to spare then).

    Never raises: a failing import fails again, and is reported, where the command
    imports Alembic itself.
    """
    if "mako.exceptions" in sys.modules or "alembic.config" in sys.modules:
        return
    hide = PYGMENTS_PLUGIN not in sys.modules
    if hide:
        # A None entry makes "import mako.ext.pygmentplugin" raise ImportError, the
        # error mako.exceptions expects when Pygments is not installed.
        sys.modules[PYGMENTS_PLUGIN] = None  # type: ignore[assignment]
    try:
        import alembic.config  # noqa: F401
    except Exception:  # noqa: BLE001 - the command's own import reports it
        pass
    finally:
        if hide and PYGMENTS_PLUGIN in sys.modules and sys.modules[PYGMENTS_PLUGIN] is None:
            del sys.modules[PYGMENTS_PLUGIN]


def remember_engines() -> None:
    """Add the current application's engines to the ones :func:`_skip_final_collection`
    closes at exit (nothing outside an application context)."""
    try:
        from flask import current_app

        from .state import app_engines, get_state

        for engine in app_engines(current_app, get_state().db).values():
            _engines_used.add(engine)
    except Exception:  # noqa: BLE001 - no app context, no engine: nothing to close
        pass


def _skip_final_collection() -> None:
    """At interpreter exit after a command, close the connections of the engines the
    commands used (:func:`remember_engines`), then spare the last full garbage
    collection its walk over every object still alive (:func:`gc.freeze`).

    Why: that walk costs more than anything else a command does past its imports,
    ~150 M instructions for an application using Flask-SQLAlchemy (6 % of ``db
    upgrade`` at head, measured with bench/bench_instructions.py), and the process
    ends right after, so the memory goes back to the system either way. Python does
    not promise to call ``__del__`` for objects alive at exit; the engines are
    disposed of first, so every pooled connection is closed as a client should close
    it. (Not at the end of the command: an in-process caller may go on using an
    in-memory SQLite database, which disposing of its engine would discard.)
    """
    import gc

    for engine in list(_engines_used):
        try:
            engine.dispose()
        except Exception:  # noqa: BLE001 - a driver failing at exit: nothing to do
            pass
    gc.freeze()
