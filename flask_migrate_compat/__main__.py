"""``python -m flask_migrate_compat`` (and the ``flask-migrate-compat`` console script).

::

    python -m flask_migrate_compat path/to/manage.py db upgrade   # the runner
    python -m flask_migrate_compat convert path/to/manage.py      # the converter

The runner (:mod:`flask_migrate_compat.runner`) runs an unmodified Flask-Script
``manage.py`` on today's stack; the converter (:mod:`flask_migrate_compat.convert`)
writes its commands as Click code. This module only chooses between them, so that
neither imports the other.
"""
import os
import sys

#: The first argument that selects the converter, unless a file of that name exists
#: (a script named ``convert`` runs, as it always did).
CONVERT = "convert"


def main(argv=None) -> int:
    """Dispatch to the converter or the runner.

    :param argv: the arguments after the program name; default ``sys.argv[1:]``.
    :returns: the exit code of the converter or the runner.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == CONVERT and not os.path.exists(CONVERT):
        from flask_migrate_compat.convert import main as convert_main

        return convert_main(argv[1:], prog_name=f"flask-migrate-compat {CONVERT}")
    from flask_migrate_compat.runner import main as run_script_main

    return run_script_main(argv)


if __name__ == "__main__":
    sys.exit(main())
