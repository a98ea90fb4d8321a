"""``python -m flask_migrate_compat`` (and the ``flask-migrate-compat`` console script).

::

    python -m flask_migrate_compat path/to/manage.py db upgrade   # the runner
    python -m flask_migrate_compat convert path/to/manage.py      # the converter
    python -m flask_migrate_compat modernize [-d migrations] [--diff] [--write]

The runner (:mod:`flask_migrate_compat.runner`) runs an unmodified Flask-Script
``manage.py`` on today's stack; the converter (:mod:`flask_migrate_compat.convert`)
writes its commands as Click code; ``modernize`` is ``db modernize`` without the
application (:func:`modernize_main`), for an application that
cannot start, or migrates while it starts. This module only chooses between them, so
that none imports another (and holds ``modernize``'s small argument parser: the core
lists the revision files, :mod:`.modernization` reads them).
"""
from __future__ import annotations

import os
import sys
import typing as t

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
        return modernize_main(argv[1:], prog_name=f"flask-migrate-compat {MODERNIZE}")
    from flask_migrate_compat.runner import main as run_script_main

    return run_script_main(argv)


def modernize_main(argv: t.Sequence[str] | None = None,
                   prog_name: str | None = None) -> int:
    """``python -m flask_migrate_compat modernize``: ``db modernize`` without the
    application, for one that cannot start on today's stack, or that migrates while it
    starts (``upgrade()`` in its factory) and so fails before any command runs.

    The script directory's ``alembic.ini`` gives the version locations (as Alembic
    reads them); ``versions`` otherwise.

    :param argv: ``[-d DIRECTORY] [--diff] [--write]``; default ``sys.argv[1:]``.
    :param prog_name: the program name in the usage line.
    :returns: the exit code, as ``db modernize``'s: 0 nothing left, 1 an idiom left
        or a file not read or written (or the directory missing, with one ``Error:``
        line), 2 a usage error.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog=prog_name, description="List (and with --write rewrite) the SQLAlchemy 1.x "
        "idioms of the revision files, without starting the application.")
    parser.add_argument("-d", "--directory", default="migrations",
                        help='Migration script directory (default: "migrations").')
    parser.add_argument("--write", action="store_true", help="Rewrite the revision files.")
    parser.add_argument("--diff", action="store_true", help="Show the rewrite as a unified diff.")
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    from flask_migrate_compat.core import revision_file_paths
    from flask_migrate_compat.errors import MigrateError
    from flask_migrate_compat.modernization import modernize_files

    try:
        paths = revision_file_paths(options.directory)
    except MigrateError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    result = modernize_files(paths, write=options.write, diff=options.diff)
    for file_result in result.files:
        if options.diff and file_result.diff:
            sys.stdout.write(file_result.diff)
    import shlex

    command = prog_name or "python -m flask_migrate_compat modernize"
    if options.directory != "migrations":
        command += f" -d {shlex.quote(options.directory)}"
    for line in result.report(command=command):
        print(line)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
