"""The Alembic :class:`~alembic.config.Config` subclass that finds our templates.

Kept apart from :mod:`.core` because importing :mod:`alembic.config` loads Alembic's
whole runtime; :mod:`.core` imports this module only when a command runs.
"""
from __future__ import annotations

import os
import typing as t

from alembic.config import Config as AlembicConfig

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
