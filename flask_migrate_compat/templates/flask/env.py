"""Alembic environment for a Flask-SQLAlchemy application (one database).

Written by flask-migrate-compat's 'db init'. The engine and the models' metadata come
from the running application through current_app.extensions['migrate'], which
Migrate(app, db) sets up; nothing about the database is stored in alembic.ini.
"""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from flask_migrate_compat.autogen import drop_created_enum_types

config = context.config
if config.config_file_name is not None:
    # Keep the loggers that already exist (the application's) enabled.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

migrate_state = current_app.extensions["migrate"]
db = migrate_state.db


def get_engine():
    """The default engine: Flask-SQLAlchemy 3 keeps it in db.engines, 2.x behind
    db.get_engine(app)."""
    engines = getattr(db, "engines", None)
    if engines is not None:
        return engines[None]
    return db.get_engine(current_app)


def get_metadata():
    """The default bind's MetaData (db.metadatas in Flask-SQLAlchemy 3)."""
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:
        return metadatas[None]
    return db.metadata


def render_url(url):
    """The URL as a string with its password, for Alembic's 'sqlalchemy.url' option.

    str(url) hides the password since SQLAlchemy 2; '%' is doubled because the
    option is read through configparser interpolation. Never print the result.
    """
    try:
        text = url.render_as_string(hide_password=False)
    except AttributeError:  # SQLAlchemy < 1.4
        text = str(url)
    return text.replace("%", "%%")


def skip_empty_autogenerate(context_, revision, directives):
    """Write no revision file when autogenerate found no change."""
    if getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        if script.upgrade_ops.is_empty():
            directives[:] = []
            log.info("No changes in schema detected.")


configure_args = dict(migrate_state.configure_args)
user_hook = configure_args.pop("process_revision_directives", None)


def process_revision_directives(context_, revision, directives):
    if user_hook is not None:
        user_hook(context_, revision, directives)
    if directives:
        skip_empty_autogenerate(context_, revision, directives)
    if directives:
        script = directives[0]
        drop_created_enum_types(
            context_.dialect, script.upgrade_ops, script.downgrade_ops, get_metadata()
        )


engine = get_engine()
config.set_main_option("sqlalchemy.url", render_url(engine.url))


def run_migrations_offline():
    """Offline (--sql) mode: write the SQL to the output instead of running it."""
    context.configure(
        url=engine.url,
        target_metadata=get_metadata(),
        literal_binds=True,
        process_revision_directives=process_revision_directives,
        **configure_args,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online():
    """Online mode: run the migrations on a connection of the application's engine."""
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=get_metadata(),
            process_revision_directives=process_revision_directives,
            **configure_args,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
