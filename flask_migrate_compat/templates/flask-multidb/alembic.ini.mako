# Alembic configuration for a Flask-SQLAlchemy application, written by
# flask-migrate-compat. The database URL is not set here: env.py takes it from the
# application (SQLALCHEMY_DATABASE_URI), so no password lands in this file.

[alembic]
# Revision file names: date first keeps them in creation order in a file listing.
# file_template = %%(year)d_%%(month).2d_%%(day).2d_%%(hour).2d%%(minute).2d-%%(rev)s_%%(slug)s

# Run env.py even for commands that only read scripts (needed for 'revision --autogenerate').
# revision_environment = false


[loggers]
keys = root,sqlalchemy,alembic,alembic_plugins,flask_migrate_compat

[handlers]
keys = console

[formatters]
keys = generic

[logger_root]
level = WARNING
handlers = console
qualname =

[logger_sqlalchemy]
level = WARNING
handlers =
qualname = sqlalchemy.engine

[logger_alembic]
level = INFO
handlers =
qualname = alembic

# Alembic >= 1.17 announces each autogenerate plugin at INFO: noise in a deploy log.
[logger_alembic_plugins]
level = WARNING
handlers =
qualname = alembic.runtime.plugins

[logger_flask_migrate_compat]
level = INFO
handlers =
qualname = flask_migrate_compat

[handler_console]
class = StreamHandler
args = (sys.stderr,)
level = NOTSET
formatter = generic

[formatter_generic]
format = %(levelname)-5.5s [%(name)s] %(message)s
datefmt = %H:%M:%S
