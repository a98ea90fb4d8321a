"""Alembic environment for a Flask-SQLAlchemy application with several databases.

Written by flask-migrate-compat's 'db init --multidb'. The default database is named
'' and every key of SQLALCHEMY_BINDS names another; each database has its own version
table, and each revision script has an upgrade_<name>() / downgrade_<name>() pair per
database. Engines and metadata come from current_app.extensions['migrate'].
"""
import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import MetaData

from flask_migrate_compat.autogen import drop_created_enum_types

config = context.config
if config.config_file_name is not None:
    # Keep the loggers that already exist (the application's) enabled.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
log = logging.getLogger("alembic.env")

migrate_state = current_app.extensions["migrate"]
db = migrate_state.db

# '' is the default database; the order is the order migrations run in.
bind_names = [""] + list(current_app.config.get("SQLALCHEMY_BINDS") or {})


def get_engine(name):
    """The engine of a database: Flask-SQLAlchemy 3 keeps them in db.engines, 2.x
    behind db.get_engine(app, bind)."""
    key = name or None
    engines = getattr(db, "engines", None)
    if engines is not None:
        return engines[key]
    return db.get_engine(current_app, bind=key)


def get_metadata(name):
    """The models' MetaData of a database, or None when no model uses it."""
    key = name or None
    metadatas = getattr(db, "metadatas", None)
    if metadatas is not None:  # Flask-SQLAlchemy 3: one MetaData per bind
        return metadatas.get(key)
    tables = [t for t in db.metadata.tables.values() if t.info.get("bind_key") == key]
    if key is not None and not tables:
        return None
    metadata = MetaData()
    for table in tables:
        table.to_metadata(metadata)
    return metadata


def keep_unmodelled_tables(obj, name, type_, reflected, compare_to):
    """For a database without models: never propose dropping its tables."""
    return not (reflected and compare_to is None)


def render_url(url):
    """The URL as a string with its password (str(url) hides it since SQLAlchemy 2);
    '%' doubled for configparser. Never print the result."""
    try:
        text = url.render_as_string(hide_password=False)
    except AttributeError:  # SQLAlchemy < 1.4
        text = str(url)
    return text.replace("%", "%%")


configure_args = dict(migrate_state.configure_args)
user_hook = configure_args.pop("process_revision_directives", None)


def process_revision_directives(context_, revision, directives):
    """Run the application's hook, then write no file when autogenerate found no
    change in any database."""
    if user_hook is not None:
        user_hook(context_, revision, directives)
    # Alembic calls this hook once per database, as each one is compared; only after
    # the last one is the script complete (emptying it earlier makes Alembic fail on
    # the next database with an IndexError).
    if directives and getattr(config.cmd_opts, "autogenerate", False):
        script = directives[0]
        # The database just compared is the last one in the lists.
        name = bind_names[len(script.upgrade_ops_list) - 1]
        drop_created_enum_types(
            context_.dialect, script.upgrade_ops_list[-1], script.downgrade_ops_list[-1],
            get_metadata(name),
        )
        if len(script.upgrade_ops_list) < len(bind_names):
            return
        if all(ops.is_empty() for ops in script.upgrade_ops_list):
            directives[:] = []
            log.info("No changes in schema detected.")


engines = {name: get_engine(name) for name in bind_names}
config.set_main_option("sqlalchemy.url", render_url(engines[""].url))


def configure_for(name, **kwargs):
    metadata = get_metadata(name)
    options = dict(configure_args)
    if metadata is None:
        metadata = MetaData()
        options.setdefault("include_object", keep_unmodelled_tables)
    context.configure(
        upgrade_token=f"{name}_upgrades",
        downgrade_token=f"{name}_downgrades",
        target_metadata=metadata,
        process_revision_directives=process_revision_directives,
        **options,
        **kwargs,
    )


def run_migrations_offline():
    """Offline (--sql) mode: the SQL of every database, each after a comment line
    naming it."""
    for name in bind_names:
        config.print_stdout("-- Database: %s", name or "(default)")
        configure_for(name, url=engines[name].url, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations(engine_name=name)


def run_migrations_online():
    """Online mode: one connection and transaction per database, committed together
    at the end, so a failure in any database rolls all of them back where the
    databases support transactional DDL."""
    connections = {}
    transactions = []
    try:
        for name in bind_names:
            connections[name] = engines[name].connect()
            transactions.append(connections[name].begin())
        for name in bind_names:
            log.info("Migrating database %s", name or "(default)")
            configure_for(name, connection=connections[name])
            context.run_migrations(engine_name=name)
        for transaction in transactions:
            transaction.commit()
    except BaseException:
        for transaction in transactions:
            transaction.rollback()
        raise
    finally:
        for connection in connections.values():
            connection.close()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
