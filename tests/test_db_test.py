"""``db test``: a migration history proved on scratch databases, through both front
ends, on SQLite, PostgreSQL and MariaDB; the configured database never touched, no
scratch database left behind; and ``db current --check-heads``.

Real subprocess runs; the databases are inspected afterwards.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import MODELS_V2, assert_one_error, init_migrations, spawn, wait_for_file
from test_legacy_envpy import BINDS, MULTI, SINGLE, copy_migrations, fixture_path

# A healthy history: three revisions whose downgrades undo them exactly, ending at
# conftest's MODELS_V2 (named FK, an index, a type change done in a batch).
HEALTHY = {
    "a1_users.py": '''
        """users"""
        from alembic import op
        import sqlalchemy as sa

        revision = "a1"
        down_revision = None


        def upgrade():
            op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), nullable=False))


        def downgrade():
            op.drop_table("users")
        ''',
    "b2_email.py": '''
        """email, longer names"""
        from alembic import op
        import sqlalchemy as sa

        revision = "b2"
        down_revision = "a1"


        def upgrade():
            with op.batch_alter_table("users") as batch:
                batch.add_column(sa.Column("email", sa.String(120)))
                batch.alter_column("name", existing_type=sa.String(50),
                                   type_=sa.String(120), existing_nullable=False)


        def downgrade():
            with op.batch_alter_table("users") as batch:
                batch.alter_column("name", existing_type=sa.String(120),
                                   type_=sa.String(50), existing_nullable=False)
                batch.drop_column("email")
        ''',
    "c3_posts.py": '''
        """posts"""
        from alembic import op
        import sqlalchemy as sa

        revision = "c3"
        down_revision = "b2"


        def upgrade():
            op.create_table(
                "posts", sa.Column("id", sa.Integer, primary_key=True),
                sa.Column("user_id", sa.Integer),
                sa.Column("title", sa.String(200)),
                sa.ForeignKeyConstraint(["user_id"], ["users.id"], name="fk_posts_user"),
            )


        def downgrade():
            op.drop_table("posts")
        ''',
}

# Every failure at once: b2's downgrade forgets the column, c3's raises, d4 makes a
# second head and its downgrade forgets the ENUM type (a trace on PostgreSQL only, as
# in real histories whose drop_table() leaves the type), and the models (MODELS_V2)
# lack d4's table.
BROKEN = dict(HEALTHY)
BROKEN["b2_email.py"] = HEALTHY["b2_email.py"].replace(
    '''batch.drop_column("email")''', '''pass  # forgot: drop_column("email")''')
BROKEN["c3_posts.py"] = HEALTHY["c3_posts.py"].replace(
    '''op.drop_table("posts")''', '''raise RuntimeError("no way back from c3")''')
BROKEN["d4_tags.py"] = '''
    """tags"""
    from alembic import op
    import sqlalchemy as sa

    revision = "d4"
    down_revision = "b2"


    def upgrade():
        op.create_table("tags", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("kind", sa.Enum("topic", "place", name="tag_kind")))


    def downgrade():
        op.drop_table("tags")
    '''


def write_history(project, files: dict[str, str]) -> None:
    init_migrations(project)
    for name, text in files.items():
        project.write(f"migrations/versions/{name}", text)
    project.write_app(models=MODELS_V2)


def runner(project, front_end: str):
    def db(*args: str, **kwargs):
        run = project.flask if front_end == "flask" else project.manage
        return run("db", *args, check=False, **kwargs)
    return db


def server_databases(database) -> set[str]:
    """The databases on the server of ``database`` whose name starts with its own."""
    engine = sa.create_engine(database.admin_url, poolclass=sa.pool.NullPool)
    query = ("SELECT datname FROM pg_database" if database.kind == "postgresql"
             else "SELECT schema_name FROM information_schema.schemata")
    with engine.connect() as conn:
        names = {row[0] for row in conn.execute(sa.text(query))}
    engine.dispose()
    return {name for name in names if name.startswith(database.name)}


def configured_state(database) -> object:
    """Everything we can see of the configured database: a SQLite file's bytes, a
    server database's schema and version table."""
    if database.kind == "sqlite":
        return Path(sa.engine.make_url(database.url).database).read_bytes()
    inspector = database.inspector()
    return ({t: sorted(c["name"] for c in inspector.get_columns(t))
             for t in inspector.get_table_names()}, database.version())


@pytest.mark.parametrize("front_end", ["flask", "manage"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_healthy_passes_broken_fails_configured_untouched(kind, front_end, make_database,
                                                          make_project, tmp_path):
    database = make_database(kind)
    project = make_project(database)
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    project.env["TMPDIR"] = str(scratch_tmp)
    write_history(project, HEALTHY)
    db = runner(project, front_end)
    assert db("upgrade", "a1").returncode == 0  # the configured database has content
    before = configured_state(database)

    proc = db("test")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Result: all checks passed" in proc.stdout
    for check in ("heads", "files", "upgrade", "stairway", "models"):
        assert f"[ok] {check}: " in proc.stdout
    assert "Upgrade c3 ('posts') done in" in proc.stderr  # each revision timed
    assert configured_state(database) == before

    for name, text in BROKEN.items():
        project.write(f"migrations/versions/{name}", text)
    proc = db("test")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failures = [line for line in proc.stdout.splitlines() if line.startswith("[!!]")]
    if kind == "postgresql":
        enum_left = ("[!!] stairway: d4 ('tags'): the downgrade left a trace: ENUM "
                     "type tag_kind is still there")
        assert enum_left in failures, proc.stdout
        failures.remove(enum_left)
    assert len(failures) == 4, proc.stdout
    # The heads in Alembic's order: d4, c3 with Alembic 1.9.4, c3, d4 with newer ones.
    assert failures[0].startswith("[!!] heads: the migrations folder has 2 heads, ")
    assert "c3 ('posts')" in failures[0] and "d4 ('tags')" in failures[0]
    assert "db merge heads" in failures[0]
    stairs = [line for line in failures if line.startswith("[!!] stairway: ")]
    assert stairs[0].startswith("[!!] stairway: b2 ('email, longer names'): the "
                                "downgrade left a trace: column users.email is still there")
    assert stairs[1].startswith("[!!] stairway: c3 ('posts'): the downgrade failed: "
                                "downgrade() of c3, line ")
    assert stairs[1].endswith("(raise RuntimeError(\"no way back from c3\")): no way "
                              "back from c3")
    # (On PostgreSQL with alembic-postgresql-enum installed, the tag_kind type too.)
    assert failures[3].startswith("[!!] models: the models differ from the schema at head")
    assert "table 'tags' is in the database, not the models" in failures[3]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert configured_state(database) == before

    if kind == "sqlite":
        assert list(scratch_tmp.iterdir()) == []
    else:
        assert server_databases(database) == {database.name}


def test_stairway_on_branches_downgrades_one_branch(project):
    """Two branches from b2, both with good downgrades: the stairway of the branch
    applied second downgrades that branch only, not its sibling (the sibling's table
    was once reported missing, and a sibling's failing downgrade blamed on it; which
    branch comes second depends on the Alembic version)."""
    tags = BROKEN["d4_tags.py"].replace(
        'sa.Column("kind", sa.Enum("topic", "place", name="tag_kind"))',
        'sa.Column("kind", sa.String(10))')
    write_history(project, dict(HEALTHY, **{"d4_tags.py": tags}))
    proc = project.flask("db", "test", "--only", "stairway", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] stairway: 4 revisions: " in proc.stdout

    # c3's downgrade raises: only c3's stairway says so, whichever branch runs first.
    project.write("migrations/versions/c3_posts.py", BROKEN["c3_posts.py"])
    proc = project.manage("db", "test", "--only", "stairway", check=False)
    failures = [line for line in proc.stdout.splitlines() if line.startswith("[!!]")]
    assert len(failures) == 1 and failures[0].startswith(
        "[!!] stairway: c3 ('posts'): the downgrade failed: downgrade() of c3"), proc.stdout


def test_json_only_and_stairway_from(project, tmp_path):
    """--json gives the same facts; --only runs some checks; --stairway-from skips the
    stairway below a revision (there b2's missing downgrade is not tried)."""
    files = dict(HEALTHY, **{"b2_email.py": BROKEN["b2_email.py"]})
    # A revision that prints (real ones do): not on stdout, which holds the JSON.
    files["c3_posts.py"] = files["c3_posts.py"].replace(
        'op.drop_table("posts")', 'print("nothing to undo here")\n            op.drop_table("posts")')
    write_history(project, files)
    proc = project.flask("db", "test", "--json", "-q", check=False)
    assert proc.returncode == 1 and proc.stderr == "nothing to undo here\n"
    result = json.loads(proc.stdout)
    assert result["exit_code"] == 1
    assert [c["revision"] for c in result["checks"] if not c["ok"]] == ["b2"]
    assert [t["revision"] for t in result["timings"]] == ["a1", "b2", "c3"]

    proc = project.manage("db", "test", "--stairway-from", "c3", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[ok] stairway: 1 revision (2 older ones skipped)" in proc.stdout

    proc = project.flask("db", "test", "--only", "heads", "--only", "files")
    assert [line.split(":")[0] for line in proc.stdout.splitlines()[:-1]] == \
        ["[ok] heads", "[ok] files"]
    assert not (project.path / "app.db").exists()  # never connected to

    proc = project.flask("db", "test", "--only", "nope", check=False)
    assert proc.returncode == 2


def test_url_given_is_used_and_left_empty_configured_refused(project, tmp_path):
    write_history(project, HEALTHY)
    configured = project.database.url
    proc = project.flask("db", "test", "--url", configured, check=False)
    assert_one_error(proc, "--url names the configured SQLite database",
                     "never the configured one")

    given = tmp_path / "given.db"
    proc = project.manage("db", "test", "-q", "--url", f"sqlite:///{given}")
    assert f"Scratch database: SQLite database '{given}'" in proc.stdout
    assert sa.inspect(sa.create_engine(f"sqlite:///{given}")).get_table_names() == []


@pytest.mark.parametrize("generation", [*SINGLE, MULTI])
def test_old_env_py_generations_migrate_the_scratch_database(generation, make_database,
                                                             make_project):
    """Each Flask-Migrate generation's env.py reaches the scratch database the way it
    reaches the configured one (config URL, db.engine.url, db.get_engine(bind)), and
    the configured files are never created."""
    main, audit = make_database("sqlite"), make_database("sqlite", "audit")
    project = make_project(main)
    copy_migrations(generation, project.path / "migrations")
    project.write_app(models=fixture_path(generation, "models.py").read_text(),
                      config=BINDS if generation == MULTI else "")
    project.env["AUDIT_DATABASE_URL"] = audit.url
    proc = project.flask("db", "test", "-q")
    assert "Result: all checks passed" in proc.stdout
    assert proc.stdout.count("Scratch database: ") == (2 if generation == MULTI else 1)
    count = len(list(fixture_path(generation, "migrations", "versions").glob("*.py")))
    # Timed also where env.py passes no configure_args on (Flask-Migrate 1.x).
    assert f"[ok] upgrade: from an empty database to head: {count} revisions applied in " \
        in proc.stdout
    assert f"[ok] stairway: {count} revisions" in proc.stdout
    for database in (main, audit):
        assert not os.path.exists(sa.engine.make_url(database.url).database)


def test_current_check_heads(project):
    write_history(project, HEALTHY)
    project.flask("db", "upgrade", "b2")
    proc = project.flask("db", "current", "--check-heads", check=False)
    assert_one_error(proc, "SQLite database", "is at b2 ('email, longer names'), not at "
                     "the head(s) c3 ('posts')", "db upgrade")
    project.manage("db", "upgrade")
    proc = project.manage("db", "current", "--check-heads")
    assert "c3 (head)" in proc.stdout


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_sigterm_mid_run_leaves_no_scratch_database(kind, make_database, make_project,
                                                    tmp_path):
    database = make_database(kind)
    project = make_project(database)
    scratch_tmp = tmp_path / "tmp"
    scratch_tmp.mkdir()
    project.env["TMPDIR"] = str(scratch_tmp)
    marker = tmp_path / "in-c3"
    files = dict(HEALTHY)
    pad = " " * 12  # the body's indentation in HEALTHY's (dedented on writing) text
    files["c3_posts.py"] = HEALTHY["c3_posts.py"].replace(
        "def upgrade():\n",
        f"def upgrade():\n{pad}import pathlib, time\n{pad}pathlib.Path({str(marker)!r})"
        f".touch()\n{pad}time.sleep(60)\n")
    write_history(project, files)
    proc = spawn([sys.executable, "-m", "flask", "db", "test"],
                 cwd=project.path, env=project.env)
    wait_for_file(marker, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, out + err
    assert "Traceback" not in out + err
    if kind == "sqlite":
        assert list(scratch_tmp.iterdir()) == []
    else:
        assert server_databases(database) == {database.name}


def test_user_who_cannot_create_databases_is_told_what_to_pass(make_database,
                                                               make_project):
    database = make_database("postgresql")
    role = f"fmc_nocreate_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(database.admin_url, isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE ROLE {role} LOGIN PASSWORD 'pw-{role}' NOCREATEDB"))
    try:
        url = sa.engine.make_url(database.url).set(username=role, password=f"pw-{role}")
        project = make_project(database)
        project.env["DATABASE_URL"] = url.render_as_string(hide_password=False)
        write_history(project, HEALTHY)
        proc = project.flask("db", "test", check=False)
        assert_one_error(proc, "cannot create a scratch database on the postgresql "
                         f"server 127.0.0.1:5432 as user {role}", "pass --url URL")
        assert f"pw-{role}" not in proc.stdout + proc.stderr
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP ROLE IF EXISTS {role}"))
        admin.dispose()


def test_pytest_recipe(project):
    """README's recipe, run by pytest in the project: passes on the healthy history,
    fails naming the revision on the broken one."""
    write_history(project, HEALTHY)
    project.write("test_migrations.py", '''
        from flask_migrate_compat.testing import check_migrations

        from app import app


        def test_migrations():
            check_migrations(app)
        ''')
    proc = project.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_migrations.py",
                       check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    project.write("migrations/versions/b2_email.py", BROKEN["b2_email.py"])
    proc = project.run("-m", "pytest", "-q", "-p", "no:cacheprovider", "test_migrations.py",
                       check=False)
    assert proc.returncode == 1
    assert "stairway: b2 ('email, longer names'): the downgrade left a trace" in proc.stdout
    assert not (project.path / "app.db").exists()



def test_env_py_with_its_own_engine_is_refused_before_connecting(project):
    """An env.py that builds its engine from the configured URL itself would migrate
    the configured database: refused before the driver connects (the SQLite file is
    not even created)."""
    write_history(project, HEALTHY)
    env_py = project.path / "migrations" / "env.py"
    text = env_py.read_text()
    assert "\nengine = get_engine()\n" in text
    env_py.write_text(text.replace(
        "\nengine = get_engine()\n",
        "\nimport os, sqlalchemy\nengine = sqlalchemy.create_engine(os.environ['DATABASE_URL'])\n"))
    proc = project.flask("db", "test", check=False)
    assert_one_error(proc, "db test refused a connection to the configured SQLite "
                     "database", "nothing was run on it")
    assert not os.path.exists(sa.engine.make_url(project.database.url).database)


def test_revision_file_that_does_not_load_is_named(project):
    write_history(project, HEALTHY)
    project.write("migrations/versions/e5_gone.py", '''
        """an import that no longer exists"""
        from sqlalchemy.dialects.postgresql import NO_SUCH_TYPE

        revision = "e5"
        down_revision = "c3"
        ''')
    proc = project.manage("db", "test", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("[!!] files: migrations/versions/e5_gone.py does not load "
                               "(ImportError: cannot import name 'NO_SUCH_TYPE'")
    assert lines[1:5] == [f"[--] {name}: not run: the revision files do not load"
                          for name in ("heads", "upgrade", "stairway", "models")]


def test_history_that_cannot_start_from_empty_fails_at_its_first_revision(project):
    """A history whose first revision alters tables that no revision creates (the
    schema was made by create_all() and stamped): the upgrade fails there, named, and
    what needs it is not run."""
    write_history(project, {"a1_alter.py": '''
        """users get an email"""
        from alembic import op
        import sqlalchemy as sa

        revision = "a1"
        down_revision = None


        def upgrade():
            op.add_column("users", sa.Column("email", sa.String(120)))


        def downgrade():
            op.drop_column("users", "email")
        '''})
    proc = project.flask("db", "test", check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[3].startswith("[!!] upgrade: upgrade to a1 ('users get an email') failed: "
                               "upgrade() of a1, line 11 (op.add_column(")
    assert "no such table: users" in lines[3]
    assert lines[4:6] == ["[--] stairway: not run: the upgrade failed at a1",
                          "[--] models: not run: the upgrade to head failed"]
