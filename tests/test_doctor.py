"""``db doctor`` for real (issue 17): where a lost revision went in git (the
checked-out branch's own history first, unrelated histories, shallow clones, git
missing from PATH), ``--fix`` with and without a terminal, the grades (notes do not
fail the exit code), env.py findings read from the file itself, the schema compared
as env.py configures it, an unreachable server, what a stamp leaves out of the
folder, and the mechanisms of ``--fix`` and ``stamp --purge`` that only a test
removing them can show (the lock, the re-read under it, ``application_name``).

Every database is read back after a command that must leave it alone.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from conftest import (
    Project, assert_one_error, output, postgres_driver_url, project_env, pty_run, spawn,
    wait_for_line,
)
from test_deploy import (
    MODELS_EMAIL, MODELS_POSTS, MODELS_USERS, closed_port, db_cmd, git, new_project,
    set_version, snapshot, write_revision,
)

from flask_migrate_compat.lock import guard

FRONTS = ("flask", "manage")
FIXTURES = Path(__file__).parent / "fixtures"


def commit_all(project, message):
    git(project, "add", "-A", ".")
    git(project, "commit", "-q", "-m", message)
    return git(project, "log", "-1", "--format=%h")


def lost_revision_project(make_database, make_project, kind="sqlite"):
    """a1 (users), a2 (email) committed on main and applied; then a2's file deleted
    and its change regenerated as a3 in commit "Squash": the database names a2."""
    project, database = new_project(make_database, make_project, kind)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "Chapter 1")
    project.flask("db", "upgrade")
    (project.path / "migrations/versions/a2_email.py").unlink()
    write_revision(project, "a3", "a1", "email", message="add email again")
    sha = commit_all(project, "Squash")
    return project, database, sha


def add_unrelated_history(project, back_to: str) -> None:
    """A second history sharing no commit (a book's second edition) whose one commit,
    newer than all others, adds a2's file; then ``back_to`` is checked out again."""
    git(project, "checkout", "-q", "--orphan", "second-edition")
    git(project, "rm", "-rq", "--cached", ".")
    write_revision(project, "a2", "a1", "email", message="second edition")
    git(project, "add", "migrations/versions/a2_email.py")
    git(project, "commit", "-q", "-m", "Second edition, chapter 1")
    git(project, "clean", "-fdq", "migrations/versions")
    git(project, "checkout", "-q", "-f", back_to)


# -- where did the revision go ----------------------------------------------------------


def test_blames_the_checked_out_branch_before_an_unrelated_history(make_database,
                                                                   make_project):
    """A second, unrelated history (a book's second edition) also adds a2's file, in a
    newer commit: the commit of the checked-out branch that deleted it is named, and
    no merge of the other history is suggested."""
    project, database, sha = lost_revision_project(make_database, make_project)
    add_unrelated_history(project, back_to="main")
    assert not (project.path / "migrations/versions/a2_email.py").exists()
    before = snapshot(database)
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor")
        assert proc.returncode == 1, output(proc)
        assert (f"revision a2 was defined by migrations/versions/a2_email.py, deleted in "
                f"commit {sha} ('Squash', ") in proc.stdout, proc.stdout
        assert "second-edition" not in proc.stdout
        assert "git merge" not in proc.stdout
    assert snapshot(database) == before

    # The checked-out branch never had it; only the unrelated history does.
    git(project, "checkout", "-q", "--orphan", "third")
    git(project, "commit", "-q", "-m", "Third, from scratch (a1 and a3, never a2)")
    proc = db_cmd(project, "flask", "doctor")
    assert "only on branch" in proc.stdout and "second-edition" in proc.stdout, proc.stdout
    assert "shares no commit with the checked-out one" in proc.stdout
    assert "git merge" not in proc.stdout
    assert snapshot(database) == before


def test_prefers_a_later_commit_of_this_line_to_an_unrelated_history(make_database,
                                                                     make_project):
    """An older commit of main is checked out (before a2 was added), and both main's
    later commit and a newer, unrelated history (a second edition) add a2's file:
    main is named, with the merge, and the other history is not (seen on flasky)."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_USERS)
    write_revision(project, "a1", None, "users")
    git(project, "init", "-q", "-b", "main")
    old = commit_all(project, "a1")
    write_revision(project, "a2", "a1", "email")
    commit_all(project, "a2")
    project.flask("db", "upgrade")
    add_unrelated_history(project, back_to=old)
    assert not (project.path / "migrations/versions/a2_email.py").exists()
    before = snapshot(database)
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor")
        assert proc.returncode == 1, output(proc)
        assert "only on branch main (added in commit" in proc.stdout, proc.stdout
        assert "git merge main" in proc.stdout
        assert "second-edition" not in proc.stdout
        assert "shares no commit" not in proc.stdout
    assert snapshot(database) == before


def test_names_a_related_branch_and_merges_it(make_database, make_project):
    """A feature branch forked from the checked-out one adds the file: merging it is
    the fix, and the symbolic ref origin/HEAD is not listed as a branch."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_USERS)
    write_revision(project, "a1", None, "users")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "a1")
    git(project, "checkout", "-q", "-b", "feature")
    write_revision(project, "f2", "a1", "email")
    commit_all(project, "f2")
    git(project, "checkout", "-q", "main")
    git(project, "update-ref", "refs/remotes/origin/feature", "feature")
    git(project, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/remotes/origin/feature")
    set_version_after_upgrade(project, database, "f2")
    proc = db_cmd(project, "manage", "doctor")
    assert ("only on branches feature, origin/feature (added in commit") in proc.stdout, \
        proc.stdout
    assert "origin/HEAD" not in proc.stdout
    assert "fix: git merge feature (or: git checkout feature -- " in proc.stdout


def set_version_after_upgrade(project, database, revision):
    project.flask("db", "upgrade")
    set_version(database, revision)


def test_shallow_clone_is_said_to_be_one(make_database, make_project, tmp_path):
    """The commit that deleted the file is older than a shallow clone's history."""
    project, database, sha = lost_revision_project(make_database, make_project)
    (project.path / "README").write_text("later\n")
    commit_all(project, "Later")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{project.path}",
                    str(clone)], check=True, capture_output=True, timeout=60)
    shallow = Project(clone, database, project_env(clone, database))
    before = snapshot(database)
    for front in FRONTS:
        proc = db_cmd(shallow, front, "doctor")
        assert proc.returncode == 1, output(proc)
        assert ("no commit of this git checkout has a file defining revision a2, but "
                "its history is shallow (a shallow clone)") in proc.stdout, proc.stdout
        assert "fix: git fetch --unshallow" in proc.stdout
    subprocess.run(["git", "fetch", "-q", "--unshallow"], cwd=clone, check=True,
                   capture_output=True, timeout=60)
    proc = db_cmd(shallow, "flask", "doctor")
    assert f"deleted in commit {sha} ('Squash'" in proc.stdout, proc.stdout
    assert snapshot(database) == before


def test_git_missing_from_path(make_database, make_project, tmp_path):
    project, database, _sha = lost_revision_project(make_database, make_project)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor", env={"PATH": str(empty)})
        assert "[!!] revision a2: git not found on PATH: cannot look for the file" \
            in proc.stdout, output(proc)
        assert "not installed" not in proc.stdout


# -- --fix: terminal or not ---------------------------------------------------------------


@pytest.mark.parametrize("front", FRONTS)
def test_fix_without_a_terminal_shows_findings_then_refuses(make_database, make_project,
                                                            front):
    project, database, _sha = lost_revision_project(make_database, make_project)
    before = snapshot(database)
    # stdin a pipe (with an answer nobody asked for), then stdin closed.
    proc = db_cmd(project, front, "doctor", "--fix", input="y\n")
    assert_one_error(proc, "nothing changed: --fix asks before stamping and standard "
                           "input is not a terminal; pass --yes to apply")
    assert "[!!] revision a2: revision a2 was defined by" in proc.stdout
    assert "'db stamp --purge head' is safe" in proc.stdout
    assert "Stamp head" not in output(proc) and "Abort" not in output(proc)
    assert snapshot(database) == before
    args = [sys.executable, "-m", "flask"] if front == "flask" else [sys.executable,
                                                                      "manage.py"]
    closed = subprocess.run(
        ["sh", "-c", '"$@" <&-', "sh", *args, "db", "doctor", "--fix"],
        cwd=project.path, env=project.env, capture_output=True, text=True, timeout=120)
    assert_one_error(closed, "nothing changed", "pass --yes to apply")
    assert "lost sys.stdin" not in output(closed)
    assert snapshot(database) == before


def run_on_terminal(project, args, answer: str, timeout=120) -> str:
    """Run ``python <args>`` on a pseudo-terminal; answer its ``[y/N]`` question with
    ``answer``. Returns what the terminal showed."""
    return pty_run([sys.executable, *args], [("[y/N]", answer)], project.path, project.env,
                   timeout=timeout)[1]


@pytest.mark.parametrize("front", FRONTS)
def test_fix_on_a_terminal_shows_findings_before_asking(make_database, make_project,
                                                        front):
    project, database, _sha = lost_revision_project(make_database, make_project)
    before = snapshot(database)
    args = ["-m", "flask", "db"] if front == "flask" else ["manage.py", "db"]
    text = run_on_terminal(project, [*args, "doctor", "--fix"], "n")
    assert "Stamp head into the version table" in text, text
    assert text.index("[!!] revision a2:") < text.index("Stamp head into")
    assert text.index("'db stamp --purge head' is safe") < text.index("Stamp head into")
    assert "Nothing changed: not confirmed." in text
    assert snapshot(database) == before
    text = run_on_terminal(project, [*args, "doctor", "--fix"], "y")
    assert "Changed: stamped the version table of the " in text and ": a2 -> a3" in text
    assert database.version() == ["a3"]


def test_refused_fix_says_nothing_changed(make_database, make_project):
    """--fix --yes where stamping is not safe (the schema differs from the models),
    and on a healthy database: one line says nothing changed."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_USERS)
    write_revision(project, "a1", None, "users")
    project.flask("db", "upgrade")
    with database.engine().begin() as conn:
        conn.execute(sa.text("ALTER TABLE users ADD COLUMN nickname VARCHAR(20)"))
    set_version(database, "gone0001")
    before = snapshot(database)
    proc = db_cmd(project, "manage", "doctor", "--fix", "--yes")
    assert proc.returncode == 1, output(proc)
    assert "Nothing changed: no repair was proven safe" in proc.stdout
    assert "column users.nickname is in the database, not the models" in proc.stdout
    assert snapshot(database) == before
    with database.engine().begin() as conn:
        conn.execute(sa.text("ALTER TABLE users DROP COLUMN nickname"))
    set_version(database, "a1")
    proc = db_cmd(project, "flask", "doctor", "--fix", "--yes")
    assert proc.returncode == 0, output(proc)
    assert "Nothing changed: nothing to repair." in proc.stdout
    assert database.version() == ["a1"]


# -- grades and env.py ----------------------------------------------------------------------


def legacy_project(make_database, make_project, kind, models=None, edit=None):
    """The Flask-Migrate 2.5-2.6 fixture, upgraded to head, models matching."""
    database = make_database(kind)
    project = make_project(database)
    fixture = FIXTURES / "legacy_2_5_to_2_6"
    shutil.copytree(fixture / "migrations", project.path / "migrations")
    if edit is not None:
        env_py = project.path / "migrations/env.py"
        env_py.write_text(edit(env_py.read_text()))
    project.write_app(models=(fixture / "models.py").read_text() + (models or ""))
    project.flask("db", "upgrade")
    return project, database


def test_old_env_py_that_works_is_a_note(make_database, make_project):
    """A healthy app with a Flask-Migrate 2.5 env.py exits 0; what is said about its
    env.py is what the file does (its fileConfig() line), and nothing about
    PostgreSQL ENUMs on SQLite."""
    project, database = legacy_project(make_database, make_project, "sqlite")
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor")
        assert proc.returncode == 0, output(proc)
        assert ("[--] env.py: env.py (written by Flask-Migrate 2.5-2.6's template) works "
                "here; its fileConfig() (line 16) does not pass "
                "disable_existing_loggers=False") in proc.stdout, proc.stdout
        assert "[!!]" not in proc.stdout
        assert "ENUM" not in proc.stdout and "--sql" not in proc.stdout
        assert "Doctor: 0 failures, 1 note (exit code 0)" in proc.stdout


def test_env_py_keeping_loggers_is_not_blamed(make_database, make_project):
    project, _database = legacy_project(
        make_database, make_project, "sqlite",
        edit=lambda text: text.replace("fileConfig(config.config_file_name)",
                                       "fileConfig(config.config_file_name, "
                                       "disable_existing_loggers=False)"))
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 0, output(proc)
    assert "[ok] env.py: written by Flask-Migrate 2.5-2.6's template; nothing in it " \
           "needs changing" in proc.stdout, proc.stdout
    assert "fileConfig" not in proc.stdout


ENUM_MODEL = '''

class Ticket(db.Model):
    __tablename__ = "tickets"
    id = db.Column(db.Integer, primary_key=True)
    state = db.Column(db.Enum("open", "closed", name="ticket_state"))
'''

ENUM_REVISION = '''\
import sqlalchemy as sa
from alembic import op

revision = "e1"
down_revision = "9b63cf4e5a77"


def upgrade():
    op.create_table("tickets", sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("state", sa.Enum("open", "closed", name="ticket_state")))


def downgrade():
    op.drop_table("tickets")
'''


@pytest.mark.parametrize("kind", ["postgresql", "mysql"])
def test_enum_note_only_for_postgresql(make_database, make_project, kind):
    database = make_database(kind)
    project = make_project(database)
    fixture = FIXTURES / "legacy_2_5_to_2_6"
    shutil.copytree(fixture / "migrations", project.path / "migrations")
    project.write("migrations/versions/e1_tickets.py", ENUM_REVISION)
    project.write_app(models=(fixture / "models.py").read_text() + ENUM_MODEL)
    project.flask("db", "upgrade")
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 0, output(proc)
    if kind == "postgresql":
        assert ("leave its PostgreSQL ENUM types behind (ticket_state in the models)"
                in proc.stdout), proc.stdout
    else:
        assert "ENUM" not in proc.stdout, proc.stdout


def test_enum_differences_are_worded(make_database, make_project):
    """alembic-postgresql-enum's differences read as sentences, not as its raw operation
    tuples: values in another order, values added in the models."""
    database = make_database("postgresql")
    project = make_project(database)
    fixture = FIXTURES / "legacy_2_5_to_2_6"
    shutil.copytree(fixture / "migrations", project.path / "migrations")
    project.write("migrations/versions/e1_tickets.py", ENUM_REVISION)
    models = (fixture / "models.py").read_text() + ENUM_MODEL
    project.write_app(models=models)
    project.flask("db", "upgrade")
    for model, expected in (
            ('db.Enum("closed", "open", name="ticket_state")',
             "ENUM of tickets.state: the same values in another order (['open', 'closed'] "
             "in the database, ['closed', 'open'] in the models)"),
            ('db.Enum("open", "closed", "held", name="ticket_state")',
             "ENUM of tickets.state: 'held' only in the models (['open', 'closed'] in the "
             "database, ['open', 'closed', 'held'] in the models)")):
        project.write_app(models=models.replace(
            'db.Enum("open", "closed", name="ticket_state")', model))
        proc = db_cmd(project, "flask", "doctor")
        assert proc.returncode == 1, output(proc)
        assert f"       - {expected}" in proc.stdout.splitlines(), proc.stdout
        assert "TableReference" not in proc.stdout
    assert database.version() == ["e1"]  # doctor changed nothing


def test_env_py_ignoring_the_version_table_is_a_failure(make_database, make_project):
    """Migrate(version_table=...) with an env.py whose online configure() does not
    pass the configure arguments: migrations go to another table, a failure."""
    database = make_database("sqlite")
    project = make_project(database)
    fixture = FIXTURES / "legacy_2_5_to_2_6"
    shutil.copytree(fixture / "migrations", project.path / "migrations")
    env_py = project.path / "migrations/env.py"
    text = env_py.read_text()
    assert "**current_app.extensions['migrate'].configure_args" in text
    env_py.write_text(text.replace("**current_app.extensions['migrate'].configure_args",
                                   ""))
    project.write_app(models=(fixture / "models.py").read_text(),
                      migrate_args=', version_table="app_version"')
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 1
    assert ("[!!] env.py: env.py (written by Flask-Migrate 2.5-2.6's template): its "
            "context.configure() (line 55) does not pass Migrate's configure arguments "
            "(compare_type=True, render_as_batch=True, version_table='app_version'): "
            "migrations record themselves "
            "in alembic_version") in proc.stdout, proc.stdout
    # --sql mode never autogenerates: only the version table is missed there.
    assert ("in --sql mode its context.configure() (line 29) does not pass Migrate's "
            "configure arguments (version_table='app_version')\n") in proc.stdout


def test_schema_check_honours_env_py_include_object(make_database, make_project):
    """env.py's own include_object leaves a table out of autogenerate: doctor does not
    report it, as 'db check' does not."""
    project, database = new_project(make_database, make_project, "sqlite")
    env_py = project.path / "migrations/env.py"
    text = env_py.read_text()
    hook = ("\n\ndef include_object(obj, name, type_, reflected, compare_to):\n"
            "    return name != 'audit_log'\n\n\n")
    online = "            process_revision_directives=process_revision_directives,\n" \
             "            **configure_args,"
    assert text.count(online) == 1
    text = text.replace("def run_migrations_offline", hook + "def run_migrations_offline")
    text = text.replace(online, "            include_object=include_object,\n" + online)
    env_py.write_text(text)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    project.flask("db", "upgrade")
    with database.engine().begin() as conn:
        conn.execute(sa.text("CREATE TABLE audit_log (id INTEGER PRIMARY KEY)"))
    assert project.flask("db", "check", check=False).returncode == 0
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor")
        assert proc.returncode == 0, output(proc)
        assert "audit_log" not in proc.stdout
        assert "[ok] schema: the models match the " in proc.stdout
    # A table env.py does not exclude is still reported.
    with database.engine().begin() as conn:
        conn.execute(sa.text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 1
    assert "table 'stray' is in the database, not the models" in proc.stdout
    assert "audit_log" not in proc.stdout


def test_unreachable_server_lock_not_said_free(make_database, make_project):
    project, _database = new_project(make_database, make_project, "sqlite")
    # The driver named: a bare postgresql:// means psycopg2 before SQLAlchemy 2.1.
    url = postgres_driver_url(f"postgresql://nobody@127.0.0.1:{closed_port()}/nowhere")
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor", env={"DATABASE_URL": url})
        assert proc.returncode == 1, output(proc)
        assert "[--] lock: not checked: the postgresql database 'nowhere'" in proc.stdout, \
            proc.stdout
        assert "nobody holds" not in proc.stdout
        assert "[!!] database: " in proc.stdout


# -- what a stamp leaves out of the folder ---------------------------------------------------


def test_stamp_over_a_deleted_revision_says_what_a_fresh_database_lacks(
        make_database, make_project, tmp_path):
    """a2 created the posts table and its file was deleted, not regenerated: doctor
    says that after the stamp a database built from the folder lacks posts, and it
    does."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_POSTS)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    write_revision(project, "a3", "a2", "posts")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "three revisions")
    project.flask("db", "upgrade")
    (project.path / "migrations/versions/a3_posts.py").unlink()
    sha = commit_all(project, "Drop the posts revision")
    proc = db_cmd(project, "flask", "doctor")
    assert f"deleted in commit {sha}" in proc.stdout, proc.stdout
    assert ("- after the stamp, a database built from the folder ('db upgrade' on an "
            "empty one) will lack table 'posts', which revision a3 created and no file "
            "of the folder creates") in proc.stdout
    proc = db_cmd(project, "manage", "doctor", "--fix", "--yes")
    assert proc.returncode == 0, output(proc)
    assert database.version() == ["a2"] and "posts" in database.tables()
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    project.flask("db", "upgrade", env={"DATABASE_URL": fresh})
    assert "posts" not in sa.inspect(sa.create_engine(fresh)).get_table_names()


def test_regenerated_revision_is_not_said_lost(make_database, make_project):
    project, _database, _sha = lost_revision_project(make_database, make_project)
    proc = db_cmd(project, "flask", "doctor")
    assert "'db stamp --purge head' is safe" in proc.stdout
    assert "will lack" not in proc.stdout, proc.stdout


# -- mechanisms no other test guarded -----------------------------------------------------


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_fix_waits_for_the_lock_and_rereads_under_it(make_database, make_project, kind):
    """While another process holds the migration lock, doctor --fix waits for it; the
    holder stamps a1 meanwhile; doctor, reading the version table again under the lock,
    stamps nothing. (Without the lock it stamps at once; without the re-read it stamps
    head over what the holder wrote.)"""
    project, database, _sha = lost_revision_project(make_database, make_project, kind)
    engine = database.engine()
    with guard({"": engine}, command="test"):
        proc = spawn([sys.executable, "-m", "flask", "db", "doctor", "--fix", "--yes"],
                     cwd=project.path, env=project.env)
        wait_for_line(proc, "Waiting for the migration lock on the ")
        assert database.version() == ["a2"]
        set_version(database, "a1")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, out + err
    assert "the version tables changed while doctor ran" in err
    assert "Changed:" not in out
    assert database.version() == ["a1"]


@pytest.mark.parametrize("kind", ["sqlite", "mysql"])
def test_fix_times_out_on_a_held_lock(make_database, make_project, kind):
    project, database, _sha = lost_revision_project(make_database, make_project, kind)
    project.write_app(models=MODELS_EMAIL, config='app.config["MIGRATE_LOCK_TIMEOUT"] = 0.5')
    with guard({"": database.engine()}, command="test"):
        proc = db_cmd(project, "manage", "doctor", "--fix", "--yes")
    assert_one_error(proc, "timed out after 0.5 s waiting for the migration lock")
    assert database.version() == ["a2"]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_stamp_purge_waits_for_the_lock(make_database, make_project, kind):
    project, database, _sha = lost_revision_project(make_database, make_project, kind)
    with guard({"": database.engine()}, command="test"):
        proc = db_cmd(project, "flask", "stamp", "--purge", "head", "--lock-timeout", "0.5")
    assert_one_error(proc, "timed out after 0.5 s waiting for the migration lock")
    assert database.version() == ["a2"]
    proc = db_cmd(project, "manage", "stamp", "--purge", "head")
    assert proc.returncode == 0, output(proc)
    assert database.version() == ["a3"]


def test_postgresql_lock_gives_application_name_back(make_database):
    """The lock connection names itself while it holds the lock, and gives the name
    back before returning to the pool: with one pooled connection, the next user of
    the pool gets the lock's connection, with the name it had."""
    database = make_database("postgresql")
    engine = sa.create_engine(database.url, pool_size=1, max_overflow=0)
    try:
        with engine.connect() as conn:
            pid = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
            original = conn.execute(sa.text("SHOW application_name")).scalar()
        with guard({"": engine}, command="upgrade"):
            with database.engine().connect() as other:
                named = other.execute(sa.text(
                    "SELECT application_name FROM pg_stat_activity WHERE pid = :p"),
                    {"p": pid}).scalar()
            assert named.startswith("flask-migrate-compat db upgrade "), named
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT pg_backend_pid()")).scalar() == pid
            assert conn.execute(sa.text("SHOW application_name")).scalar() == original
    finally:
        engine.dispose()


def test_differences_listed_in_the_same_order_every_run(make_database, make_project):
    """Alembic finds tables missing from the models by set difference, whose order
    follows the hash seed: the lines must not (seen on a real app, both front ends
    listing the same three tables in different orders)."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_USERS)
    write_revision(project, "a1", None, "users")
    project.flask("db", "upgrade")
    with database.engine().begin() as conn:
        for name in ("stray_a", "stray_b", "stray_c", "stray_d", "stray_e"):
            conn.execute(sa.text(f"CREATE TABLE {name} (id INTEGER PRIMARY KEY)"))
    outputs = set()
    for seed, front in zip(("1", "2", "3", "4"), FRONTS * 2):
        proc = db_cmd(project, front, "doctor", env={"PYTHONHASHSEED": seed})
        assert proc.returncode == 1 and "stray_e" in proc.stdout, output(proc)
        outputs.add(proc.stdout)
    assert len(outputs) == 1, outputs


def test_arguments_env_py_passes_itself_are_not_said_missing(make_database, make_project):
    """An env.py that passes compare_type=True itself, but not Migrate's configure
    arguments (seen on a real app): only render_as_batch is said to be missed."""
    database = make_database("sqlite")
    project = make_project(database)
    fixture = FIXTURES / "legacy_1x"
    shutil.copytree(fixture / "migrations", project.path / "migrations")
    env_py = project.path / "migrations/env.py"
    text = env_py.read_text()
    spread = "**current_app.extensions['migrate'].configure_args"
    assert spread in text
    env_py.write_text(text.replace(spread, "compare_type=True"))
    project.write_app(models=(fixture / "models.py").read_text())
    project.flask("db", "upgrade")
    proc = db_cmd(project, "manage", "doctor")
    assert proc.returncode == 0, output(proc)
    assert ("its context.configure() (line 46) does not pass Migrate's configure "
            "arguments (render_as_batch=True): 'db migrate' and 'db upgrade' run without "
            "them") in proc.stdout, proc.stdout
    assert "compare_type" not in proc.stdout


MULTIDB_REVISION = '''\
import sqlalchemy as sa
from alembic import op

revision = "m1"
down_revision = None


def upgrade(engine_name):
    if engine_name == "audit":
        op.create_table("events", sa.Column("id", sa.Integer, primary_key=True))
    else:
        op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),
                        sa.Column("name", sa.String(50), nullable=False))


def downgrade(engine_name):
    op.drop_table("events" if engine_name == "audit" else "users")
'''

MODELS_MULTIDB = MODELS_USERS + '''

class Event(db.Model):
    __bind_key__ = "audit"
    __tablename__ = "events"
    id = db.Column(db.Integer, primary_key=True)
'''


@pytest.mark.parametrize("kinds", [("sqlite", "sqlite"), ("postgresql", "mysql")])
def test_multidb_schema_compared_per_bind(make_database, make_project, kinds):
    """The comparison runs env.py once; the multidb env.py configures each bind with
    its own models, and each bind gets its own line."""
    main, audit = make_database(kinds[0], "main"), make_database(kinds[1], "audit")
    project = make_project(main)
    project.write_app(models=MODELS_MULTIDB,
                      config=f'app.config["SQLALCHEMY_BINDS"] = {{"audit": {audit.url!r}}}')
    project.flask("db", "init", "--multidb")
    project.write("migrations/versions/m1_multi.py", MULTIDB_REVISION)
    project.flask("db", "upgrade")
    proc = db_cmd(project, "manage", "doctor")
    assert proc.returncode == 0, output(proc)
    assert "[ok] schema: the models match the " in proc.stdout
    assert "[ok] schema 'audit': the models match the " in proc.stdout
    with audit.engine().begin() as conn:
        conn.execute(sa.text("CREATE TABLE stray (id INTEGER PRIMARY KEY)"))
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 1, output(proc)
    assert "[!!] schema 'audit': the models differ from the " in proc.stdout
    assert "table 'stray' is in the database, not the models" in proc.stdout
    assert "[ok] schema: the models match the " in proc.stdout


def test_renumbered_revision_is_stamped_not_restored(make_database, make_project):
    """The commit that deleted a2's file added a3 with the same upgrade() after the
    same a1: the database already ran it; stamping a3 is the fix, not restoring the
    old file (which would put the change in two revisions)."""
    project, database, sha = lost_revision_project(make_database, make_project)
    proc = db_cmd(project, "flask", "doctor")
    assert (f"deleted in commit {sha} ('Squash', ") in proc.stdout, proc.stdout
    assert ("which added migrations/versions/a3_email.py (revision a3) with the same "
            "upgrade(): the change was renumbered") in proc.stdout
    assert "fix: db stamp --purge a3 (the same change, after the same revision a1)" \
        in proc.stdout
    assert "git checkout" not in proc.stdout


def test_renumbered_after_a_merge_says_what_may_be_missing(make_database, make_project):
    """A merge conflict fixed by renumbering: a2 (after a1) became a3 (after b2, the
    other branch's revision). The database ran a2, not b2: doctor says so, and the
    range it names is what the database lacks."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_POSTS)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    git(project, "init", "-q", "-b", "main")
    commit_all(project, "users, email")
    project.write_app(models=MODELS_EMAIL)
    project.flask("db", "upgrade")
    project.write_app(models=MODELS_POSTS)
    (project.path / "migrations/versions/a2_email.py").unlink()
    write_revision(project, "b2", "a1", "posts")
    write_revision(project, "a3", "b2", "email")
    sha = commit_all(project, "Fix merge conflict")
    before = snapshot(database)
    for front in FRONTS:
        proc = db_cmd(project, front, "doctor")
        assert proc.returncode == 1, output(proc)
        assert (f"deleted in commit {sha} ('Fix merge conflict', ") in proc.stdout
        assert ("the old revision followed a1, the new one follows b2: the database may "
                "lack the changes of the revisions from a1 to b2") in proc.stdout
        assert ("fix: apply those changes (see 'db upgrade a1:b2 --sql'), then db stamp "
                "--purge a3") in proc.stdout
        assert "table 'posts' is in the models, not the database" in proc.stdout
    assert snapshot(database) == before
    # The range named is exactly what is missing.
    proc = db_cmd(project, "flask", "upgrade", "a1:b2", "--sql")
    assert "CREATE TABLE posts" in proc.stdout and "email" not in proc.stdout, output(proc)
