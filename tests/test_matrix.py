"""The end-to-end flow on every database kind selected with ``--databases`` (or
``FMC_TEST_DATABASES``): SQLite, PostgreSQL, MariaDB (PyMySQL), each test in a fresh
database, commands alternating between ``python -m flask db`` and
``python manage.py db`` so that both front ends run every step on every kind.

Covered where the databases differ: ALTER on SQLite needs batch mode; PostgreSQL
ENUMs are separate types (created with the table, dropped by the downgrade); column
type changes, indexes and server defaults found by autogenerate; transactional DDL
(PostgreSQL rolls a failed revision back, MariaDB and SQLite keep what ran).
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import assert_one_error

MODELS_V1 = '''\
class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)
'''

# v2: a type change, a new indexed column, a new column with a server default, and a
# new table with an ENUM column.
MODELS_V2 = '''\
class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(120), nullable=False)
    email = db.Column(db.String(120), index=True)
    score = db.Column(db.Integer, nullable=False, server_default="7")


class Post(db.Model):
    __tablename__ = "posts"
    id = db.Column(db.Integer, primary_key=True)
    user_id = db.Column(db.Integer, db.ForeignKey("users.id"))
    status = db.Column(db.Enum("draft", "published", name="post_status"))
'''


def pytest_generate_tests(metafunc):
    if "kind" in metafunc.fixturenames:
        kinds = [k.strip() for k in metafunc.config.getoption("--databases").split(",")
                 if k.strip()]
        metafunc.parametrize("kind", kinds)


def enum_types(database) -> set[str]:
    with database.engine().connect() as conn:
        return set(conn.execute(sa.text("SELECT typname FROM pg_type WHERE typtype = 'e'")).scalars())


def indexes(database, table: str) -> dict[str, list[str]]:
    return {ix["name"]: ix["column_names"] for ix in database.inspector().get_indexes(table)}


def test_flow(make_database, make_project, kind):
    database = make_database(kind)
    project = make_project(database)
    project.write_app(models=MODELS_V1)

    project.flask("db", "init")
    project.manage("db", "migrate", "-m", "v1")
    project.flask("db", "upgrade")
    assert database.tables() == {"alembic_version", "users"}
    assert database.columns("users")["name"]["type"].length == 50
    (v1,) = project.revisions()

    project.write_app(models=MODELS_V2)
    project.flask("db", "migrate", "-m", "v2")
    (v2,) = set(project.revisions()) - {v1}
    text = v2.read_text()
    assert "type_=sa.String(length=120)" in text  # compare_type is on by default
    assert "batch_alter_table('users'" in text  # render_as_batch is on by default
    assert "create_index" in text and "ix_users_email" in text
    assert "server_default='7'" in text
    if kind == "postgresql":  # ours, or alembic-postgresql-enum's when installed
        assert ("op.execute('DROP TYPE IF EXISTS post_status')" in text
                or "name='post_status').drop(op.get_bind())" in text)

    project.manage("db", "upgrade")
    assert database.tables() == {"alembic_version", "users", "posts"}
    users = database.columns("users")
    assert users["name"]["type"].length == 120  # SQLite: through a batch table copy
    assert "7" in str(users["score"]["default"])
    assert indexes(database, "users")["ix_users_email"] == ["email"]
    status = database.columns("posts")["status"]["type"]
    if kind == "sqlite":
        assert isinstance(status, sa.String)  # SQLite has no ENUM: a VARCHAR
    else:
        assert set(status.enums) == {"draft", "published"}
    if kind == "postgresql":
        assert enum_types(database) == {"post_status"}

    project.manage("db", "downgrade")
    assert database.tables() == {"alembic_version", "users"}
    users = database.columns("users")
    assert set(users) == {"id", "name"}
    assert users["name"]["type"].length == 50
    assert "ix_users_email" not in indexes(database, "users")
    if kind == "postgresql":
        assert enum_types(database) == set()  # the downgrade dropped the type

    # Upgrading again works (on PostgreSQL only because the type was dropped).
    project.flask("db", "upgrade")
    assert database.version() == [v2.name.split("_")[0]]
    current = project.manage("db", "current")
    assert v2.name.split("_")[0] in current.stdout


FAILING = '''\
import sqlalchemy as sa
from alembic import op

revision = "f1"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("SELECT * FROM no_such_table_anywhere")


def downgrade():
    op.drop_table("half")
'''


@pytest.mark.parametrize("front", ["flask", "manage"])
def test_transactional_ddl(make_database, make_project, kind, front):
    """A revision that fails after creating a table: PostgreSQL rolls the table back,
    MariaDB and SQLite keep it, and the error line says so."""
    database = make_database(kind)
    project = make_project(database)
    project.write_app(models="")
    project.flask("db", "init")
    project.write("migrations/versions/f1.py", FAILING)
    run = project.flask if front == "flask" else project.manage
    proc = run("db", "upgrade", check=False)
    line = assert_one_error(proc)
    assert "revision f1 failed in upgrade()" in line
    tables = database.tables() - {"alembic_version"}
    if kind == "postgresql":
        assert tables == set()
        assert "rolled back" in line
    else:
        assert tables == {"half"}
        assert "may hold part of revision f1" in line
    if "alembic_version" in database.tables():
        assert database.version() == []


def test_batch_mode_alters_sqlite(make_database, make_project, kind):
    """Dropping a column and changing a type: plain ALTER on the servers, a batch
    table copy on SQLite, which cannot ALTER COLUMN."""
    database = make_database(kind)
    project = make_project(database)
    project.write_app(models=MODELS_V2)
    project.flask("db", "init")
    project.flask("db", "migrate", "-m", "v2")
    project.manage("db", "upgrade")
    project.write_app(models=MODELS_V2.replace(
        '    email = db.Column(db.String(120), index=True)\n', ''
    ).replace("db.String(120), nullable=False", "db.Text, nullable=False"))
    project.manage("db", "migrate", "-m", "drop email")
    project.flask("db", "upgrade")
    users = database.columns("users")
    assert "email" not in users
    assert isinstance(users["name"]["type"], sa.Text)
    assert "ix_users_email" not in indexes(database, "users")
    project.flask("db", "downgrade")
    assert "email" in database.columns("users")


def test_multidb_enum_types_follow_their_bind(make_database, make_project):
    """The multidb template drops a bind's ENUM type on downgrade too, in that bind."""
    main = make_database("sqlite", "main")
    reports = make_database("postgresql", "reports")
    project = make_project(main)
    project.write_app(
        models='class Report(db.Model):\n'
               '    __bind_key__ = "reports"\n'
               '    id = db.Column(db.Integer, primary_key=True)\n'
               '    state = db.Column(db.Enum("new", "done", name="report_state"))\n\n\n'
               'class Note(db.Model):\n'
               '    id = db.Column(db.Integer, primary_key=True)\n',
        config=f'app.config["SQLALCHEMY_BINDS"] = {{"reports": {reports.url!r}}}',
    )
    project.manage("db", "init", "--multidb")
    project.flask("db", "migrate", "-m", "two databases")
    (revision,) = project.revisions()
    text = revision.read_text()
    downgrade_reports = text[text.index("def downgrade_reports"):]
    # Ours, or alembic-postgresql-enum's when installed; not in the SQLite database.
    assert ("DROP TYPE IF EXISTS report_state" in downgrade_reports
            or "name='report_state').drop(op.get_bind())" in downgrade_reports)
    downgrade_main = text[text.index("def downgrade_():"):text.index("def upgrade_reports")]
    assert "DROP TYPE" not in downgrade_main and ".drop(op.get_bind())" not in downgrade_main

    project.manage("db", "upgrade")
    assert enum_types(reports) == {"report_state"}
    assert main.tables() == {"alembic_version", "note"}
    project.flask("db", "downgrade", "base")
    assert enum_types(reports) == set()
    project.manage("db", "upgrade")  # works again because the type went with the table
    assert reports.tables() == {"alembic_version", "report"}
