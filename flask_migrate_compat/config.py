"""The configuration: the Alembic :class:`~alembic.config.Config` subclass that finds
our templates, and :func:`flag_setting`, how every yes/no application setting
(``MIGRATE_STRICT``, ``MIGRATE_LOCK``, ``MIGRATE_POSTGRESQL_ENUM``) is read.

Kept apart from :mod:`.core` because importing :mod:`alembic.config` loads Alembic's
whole runtime; :mod:`.core` imports this module only when a command runs.
"""
from __future__ import annotations

import os
import typing as t

from alembic.config import Config as AlembicConfig

from .errors import MigrateError

TEMPLATE_DIRECTORY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates")


class Config(AlembicConfig):
    """An Alembic ``Config`` whose templates are this package's (``flask``,
    ``flask-multidb``) instead of Alembic's.

    :param template_directory: a folder holding custom templates; when given, ``init``
        and ``list_templates`` use it instead of the package's templates.
    :param args: passed to :class:`alembic.config.Config` (``file_``, ``ini_section``...).
    :param kwargs: passed to :class:`alembic.config.Config`.
    """

    def __init__(self, *args: t.Any, template_directory: str | None = None, **kwargs: t.Any):
        self.template_directory = template_directory
        super().__init__(*args, **kwargs)

    def get_template_directory(self) -> str:
        """The folder holding the templates.

        :returns: ``template_directory`` if one was given, else the package's folder.
        """
        return self.template_directory or TEMPLATE_DIRECTORY


#: The strings a yes/no setting may hold (compared without case), and their meaning.
_FLAG_WORDS = {"true": True, "yes": True, "on": True, "1": True,
               "false": False, "no": False, "off": False, "0": False}


def flag_setting(settings: t.Mapping[str, t.Any], name: str, default: bool) -> bool:
    """A yes/no application setting, also when it is given as a string.

    A setting read from the environment or a file often arrives as text, and
    ``bool("no")`` is true. Strings are read the way Flask reads its own switches
    (``FLASK_DEBUG``: ``0``, ``false`` and ``no`` are off; ``from_prefixed_env``
    gives ``"false"`` as ``False``): ``true``/``yes``/``on``/``1`` and
    ``false``/``no``/``off``/``0``, in any case; anything else is refused rather
    than guessed.

    :param settings: the application's config.
    :param name: the setting's name, for example ``MIGRATE_STRICT``.
    :param default: the value when the setting is missing or ``None``.
    :returns: the setting's value.
    :raises MigrateError: for a value that is no yes/no (its one line names the
        setting and the value).
    """
    value = settings.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _FLAG_WORDS:
        return _FLAG_WORDS[value.strip().lower()]
    raise MigrateError(
        f"the {name} setting must be True or False (or one of the strings true/false, "
        f"yes/no, on/off, 1/0), not {value!r}"
    )
