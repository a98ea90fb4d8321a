"""``python -m flask_migrate_compat path/to/manage.py db upgrade``: run an unmodified
Flask-Script ``manage.py`` on today's stack (see :mod:`flask_migrate_compat.runner`)."""
import sys

from flask_migrate_compat.runner import main

if __name__ == "__main__":
    sys.exit(main())
