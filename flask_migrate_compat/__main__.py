"""``python -m flask_migrate_compat`` (and the ``flask-migrate-compat`` console script).

::

    python -m flask_migrate_compat path/to/manage.py db upgrade   # the runner
    python -m flask_migrate_compat convert path/to/manage.py      # the converter
    python -m flask_migrate_compat modernize [-d migrations] [--diff] [--write]

The runner (:mod:`flask_migrate_compat.runner`) runs an unmodified Flask-Script
``manage.py`` on today's stack; the converter (:mod:`flask_migrate_compat.convert`)
writes its commands as Click code; ``modernize`` is ``db modernize`` without the
application (:func:`flask_migrate_compat.modernization.main`), for an application that
cannot start, or migrates while it starts. This module only chooses between them, so
that none imports another.
"""
import os
import sys

#: The first argument that selects the converter, unless a file of that name exists
#: (a script named ``convert`` runs, as it always did).
CONVERT = "convert"
#: Likewise for ``db modernize`` run without the application.
MODERNIZE = "modernize"


def main(argv=None) -> int:
    """Dispatch to the converter, modernize or the runner.

    :param argv: the arguments after the program name; default ``sys.argv[1:]``.
    :returns: the exit code of the converter or the runner.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == CONVERT and not os.path.exists(CONVERT):
        from flask_migrate_compat.convert import main as convert_main

        return convert_main(argv[1:], prog_name=f"flask-migrate-compat {CONVERT}")
    if argv and argv[0] == MODERNIZE and not os.path.exists(MODERNIZE):
        from flask_migrate_compat.modernization import main as modernize_main

        return modernize_main(argv[1:], prog_name=f"flask-migrate-compat {MODERNIZE}")
    from flask_migrate_compat.runner import main as run_script_main

    return run_script_main(argv)


if __name__ == "__main__":
    sys.exit(main())
