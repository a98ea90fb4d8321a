"""Deploy-time commands, for real: ``db status`` (exit codes 0/1/3 and ``--json``),
the "Can't locate revision" explanation, ``db doctor`` (git history, schema against
models, ``--fix``) and per-revision timing, on SQLite, PostgreSQL and MariaDB, through
both front ends (``python -m flask db`` and ``python manage.py db``, alternated).

After every command that must leave the database alone, the database is read back
(tables, columns, version table) and compared with what it was.
"""
from __future__ import annotations

import json
import re
import socket
import subprocess

import pytest
import sqlalchemy as sa

from conftest import POSTGRES_SCHEME, assert_one_error, output

KINDS = ("sqlite", "postgresql", "mysql")

REVISION = '''\
"""{message}

Revision ID: {rev}
"""
import os
import time

import sqlalchemy as sa
from alembic import op

revision = {rev!r}
down_revision = {down!r}
branch_labels = None
depends_on = None


def upgrade():
{upgrade}


def downgrade():
{downgrade}
'''

OPS = {
    "users": ('    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), '
              'sa.Column("name", sa.String(50), nullable=False))',
              '    op.drop_table("users")'),
    "email": ('    op.add_column("users", sa.Column("email", sa.String(120)))\n'
              '    time.sleep(float(os.environ.get("FMC_EMAIL_SLEEP", "0")))',
              '    with op.batch_alter_table("users") as batch:\n'
              '        batch.drop_column("email")'),
    "posts": ('    op.create_table("posts", sa.Column("id", sa.Integer, primary_key=True))',
              '    op.drop_table("posts")'),
}

MODELS_USERS = '''\
class User(db.Model):
    __tablename__ = "users"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(50), nullable=False)
'''
MODELS_EMAIL = MODELS_USERS + '    email = db.Column(db.String(120))\n'
MODELS_POSTS = MODELS_EMAIL + '''

class Post(db.Model):
    __tablename__ = "posts"
    id = db.Column(db.Integer, primary_key=True)
'''


def write_revision(project, rev, down, op, message=None):
    up, down_op = OPS[op]
    return project.write(
        f"migrations/versions/{rev}_{op}.py",
        REVISION.format(rev=rev, down=down, upgrade=up, downgrade=down_op,
                        message=message or f"add {op}"),
    )


def new_project(make_database, make_project, kind, models=MODELS_EMAIL):
    database = make_database(kind)
    project = make_project(database)
    project.write_app(models=models)
    project.flask("db", "init")
    return project, database


def db_cmd(project, front: str, *args, **kwargs):
    """``db <args>`` through one front end (``flask`` or ``manage``)."""
    runner = project.manage if front == "manage" else project.flask
    return runner("db", *args, check=False, **kwargs)


def snapshot(database) -> tuple:
    tables = database.tables()
    columns = {t: sorted(database.columns(t)) for t in tables}
    version = database.version() if "alembic_version" in tables else None
    return tables, columns, version


def set_version(database, *revisions, table="alembic_version"):
    with database.engine().begin() as conn:
        conn.execute(sa.text(f"DELETE FROM {table}"))
        for rev in revisions:
            conn.execute(sa.text(f"INSERT INTO {table} (version_num) VALUES (:v)"), {"v": rev})


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def blocked(proc, *fragments):
    """Exit code 3, one ``Error:`` line holding ``fragments``, no traceback."""
    assert proc.returncode == 3, output(proc)
    assert "Traceback" not in output(proc)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# -- db status ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_status_exit_codes(make_database, make_project, kind, tmp_path):
    project, database = new_project(make_database, make_project, kind)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")

    # A fresh database: pending from base, in upgrade order. Nothing is created.
    proc = db_cmd(project, "manage", "status")
    assert proc.returncode == 1, output(proc)
    assert re.search(r"pending: 2 revision\(s\), in upgrade order:\n\s+a1 \('add users'\)\n"
                     r"\s+a2 \('add email'\)", proc.stdout), proc.stdout
    proc = db_cmd(project, "flask", "status", "--json")
    assert proc.returncode == 1
    facts = json.loads(proc.stdout)
    assert facts["state"] == "pending" and facts["exit_code"] == 1
    assert facts["heads"] == [{"revision": "a2", "message": "add email"}]
    (db,) = facts["databases"]
    assert db["current"] == [] and db["problem"] is None and db["lock_holder"] is None
    assert [rev["revision"] for rev in db["pending"]] == ["a1", "a2"]
    if kind == "sqlite":  # (inspecting it would create the file)
        assert not (tmp_path / "main.db").exists()
    assert database.tables() == set()

    # Half-way, then at head.
    project.flask("db", "upgrade", "a1")
    proc = db_cmd(project, "manage", "status")
    assert proc.returncode == 1 and "current: a1" in proc.stdout
    assert re.search(r"pending: 1 revision\(s\), in upgrade order:\n\s+a2 ", proc.stdout)
    project.flask("db", "upgrade")
    proc = db_cmd(project, "flask", "status")
    assert proc.returncode == 0, output(proc)
    assert "current: a2" in proc.stdout and "pending: none" in proc.stdout
    facts = json.loads(db_cmd(project, "manage", "status", "--json").stdout)
    assert facts["state"] == "at_head" and facts["exit_code"] == 0
    assert facts["databases"][0]["current"] == ["a2"]

    # Two heads: upgrade cannot proceed.
    branch = write_revision(project, "b2", "a1", "posts")
    blocked(db_cmd(project, "flask", "status"),
            "2 heads", "a2 ('add email')", "b2 ('add posts')", "db merge heads")
    proc = db_cmd(project, "manage", "status", "--json")
    blocked(proc, "2 heads")
    facts = json.loads(proc.stdout)
    assert facts["state"] == "blocked" and facts["exit_code"] == 3
    assert "2 heads" in facts["problem"]
    branch.unlink()

    # The version table names a revision the folder lacks.
    set_version(database, "zzzz9999")
    before = snapshot(database)
    blocked(db_cmd(project, "manage", "status"),
            "names revision 'zzzz9999'", "head is a2 ('add email')", "db stamp --purge head")
    # The explanation once (the Error line); the status names the problem briefly.
    for front in ("manage", "flask"):
        proc = db_cmd(project, front, "status")
        assert (proc.stdout + proc.stderr).count("db stamp --purge head") == 1, output(proc)
        assert "  problem: its version table names revision 'zzzz9999', which no revision " \
               "file defines (the Error line explains)" in proc.stdout.splitlines()
    facts = json.loads(db_cmd(project, "flask", "status", "--json").stdout)
    assert facts["databases"][0]["current"] == ["zzzz9999"]
    assert "zzzz9999" in facts["databases"][0]["problem"]
    # Every command that meets it says the same, and changes nothing.
    commands = [("flask", "upgrade"), ("manage", "current")]
    if kind == "sqlite":
        commands += [("flask", "downgrade"), ("manage", "stamp", "a1"), ("flask", "check")]
    for front, *args in commands:
        assert_one_error(db_cmd(project, front, *args), "names revision 'zzzz9999'",
                         "head is a2")
    assert snapshot(database) == before

    # Unreachable (a password in the URL, never printed).
    password = "s3cr3t-Pw"
    if kind == "sqlite":
        url = f"sqlite:///{tmp_path}/no_such_folder/app.db"
        fragments = ("cannot connect to the SQLite database", "no_such_folder")
    else:
        scheme = POSTGRES_SCHEME if kind == "postgresql" else "mysql+pymysql"
        url = f"{scheme}://fmc:{password}@127.0.0.1:{closed_port()}/nodb"
        fragments = ("cannot connect to the", "database 'nodb' on 127.0.0.1:")
    proc = db_cmd(project, "flask", "status", env={"DATABASE_URL": url})
    blocked(proc, *fragments)
    assert password not in output(proc)
    proc = db_cmd(project, "manage", "status", "--json", env={"DATABASE_URL": url})
    blocked(proc, *fragments)
    facts = json.loads(proc.stdout)
    assert facts["exit_code"] == 3 and "cannot connect to the" in facts["databases"][0]["problem"]
    assert not (tmp_path / "no_such_folder").exists()
    assert snapshot(database) == before


def test_status_errors_exit_3_and_usage_2(project):
    proc = db_cmd(project, "flask", "status", "--json")
    blocked(proc, "'migrations'", "not found")
    assert json.loads(proc.stdout) == {"state": "blocked", "exit_code": 3,
                                       "error": proc.stderr.strip()[len("Error: "):]}
    assert db_cmd(project, "manage", "status").returncode == 3
    assert db_cmd(project, "flask", "status", "--no-such-option").returncode == 2


@pytest.mark.parametrize("kinds", [("sqlite", "sqlite"), ("postgresql", "mysql")])
def test_status_per_bind(make_database, make_project, kinds):
    main, audit = make_database(kinds[0], "main"), make_database(kinds[1], "audit")
    project = make_project(main)
    project.write_app(models=MODELS_USERS,
                      config=f'app.config["SQLALCHEMY_BINDS"] = {{"audit": {audit.url!r}}}')
    project.flask("db", "init", "--multidb")
    project.write("migrations/versions/m1_multi.py", '''\
        """both databases"""
        import sqlalchemy as sa
        from alembic import op

        revision = "m1"
        down_revision = None
        branch_labels = None
        depends_on = None


        def upgrade(engine_name):
            globals()[f"upgrade_{engine_name}"]()


        def downgrade(engine_name):
            globals()[f"downgrade_{engine_name}"]()


        def upgrade_():
            op.create_table("users", sa.Column("id", sa.Integer, primary_key=True),
                            sa.Column("name", sa.String(50), nullable=False))


        def downgrade_():
            op.drop_table("users")


        def upgrade_audit():
            op.create_table("events", sa.Column("id", sa.Integer, primary_key=True))


        def downgrade_audit():
            op.drop_table("events")
        ''')
    facts = json.loads(db_cmd(project, "manage", "status", "--json").stdout)
    assert [(db["bind"], db["exit_code"]) for db in facts["databases"]] == [("", 1), ("audit", 1)]
    project.flask("db", "upgrade")
    set_version(audit, "lost0001")
    proc = db_cmd(project, "flask", "status", "--json")
    facts = json.loads(proc.stdout)
    assert proc.returncode == 3
    default, bind = facts["databases"]
    assert default["current"] == ["m1"] and default["exit_code"] == 0
    assert bind["current"] == ["lost0001"] and bind["exit_code"] == 3
    assert "names revision 'lost0001'" in bind["problem"]
    assert bind["database"] in bind["problem"]
    # upgrade names the database whose version table holds it.
    assert_one_error(db_cmd(project, "flask", "upgrade"), bind["database"], "'lost0001'")
    assert main.version() == ["m1"] and audit.version() == ["lost0001"]


# -- db doctor: git and --fix ---------------------------------------------------------


def git(project, *args):
    env = {**project.env, "GIT_AUTHOR_NAME": "Dev", "GIT_AUTHOR_EMAIL": "dev@example.com",
           "GIT_COMMITTER_NAME": "Dev", "GIT_COMMITTER_EMAIL": "dev@example.com"}
    return subprocess.run(["git", *args], cwd=project.path, env=env, check=True,
                          capture_output=True, text=True, timeout=30).stdout.strip()


def git_repo(project):
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "migrations")
    git(project, "commit", "-q", "-m", "migrations folder")


@pytest.mark.parametrize("kind", KINDS)
def test_doctor_names_the_deleting_commit_and_fixes(make_database, make_project, kind):
    """The file of the database's revision was deleted (and the change it made
    regenerated as another revision): doctor names the commit, finds the schema equal
    to the models, and --fix stamps head."""
    project, database = new_project(make_database, make_project, kind)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    git_repo(project)
    project.flask("db", "upgrade")
    (project.path / "migrations/versions/a2_email.py").unlink()
    write_revision(project, "a3", "a1", "email", message="add email again")
    git(project, "add", "-A", "migrations")
    git(project, "commit", "-q", "-m", "Regenerate the email revision")
    sha, date = git(project, "log", "-1", "--format=%h %ad", "--date=short").split()
    before = snapshot(database)

    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 1, output(proc)
    out = proc.stdout
    assert (f"revision a2 was defined by migrations/versions/a2_email.py, deleted in "
            f"commit {sha} ('Regenerate the email revision', {date})") in out, out
    # a3 has a2's upgrade(), after the same a1: a renumbered copy (test_doctor.py).
    assert "fix: db stamp --purge a3 (the same change, after the same revision a1)" in out
    assert "matches the models at head, so 'db stamp --purge head' is safe" in out
    assert "a3 ('add email again')" in out
    assert snapshot(database) == before

    # Nobody to ask (standard input is a pipe): refused in one line, nothing changes.
    proc = db_cmd(project, "manage", "doctor", "--fix", input="y\n")
    assert_one_error(proc, "nothing changed", "pass --yes to apply")
    assert "Stamp head into the version table" not in output(proc)
    assert snapshot(database) == before

    proc = db_cmd(project, "manage", "doctor", "--fix", "--yes")
    assert proc.returncode == 0, output(proc)
    assert f"Changed: stamped the version table of the " in proc.stdout
    assert ": a2 -> a3" in proc.stdout
    assert database.version() == ["a3"]
    assert snapshot(database)[:2] == before[:2]  # the schema is untouched
    assert db_cmd(project, "flask", "status").returncode == 0


@pytest.mark.parametrize("kind", KINDS)
def test_doctor_names_the_branch_and_refuses_to_stamp(make_database, make_project, kind):
    """The database was upgraded on a feature branch; back on main, its revision is
    not in the folder and its schema differs from main's models: doctor names the
    branch, lists the difference, and --fix changes nothing."""
    project, database = new_project(make_database, make_project, kind, models=MODELS_USERS)
    write_revision(project, "a1", None, "users")
    git_repo(project)
    git(project, "checkout", "-q", "-b", "feature/email")
    write_revision(project, "f2", "a1", "email")
    git(project, "add", "migrations")
    git(project, "commit", "-q", "-m", "Email column")
    project.write_app(models=MODELS_EMAIL)
    project.flask("db", "upgrade")
    git(project, "checkout", "-q", "main")
    project.write_app(models=MODELS_USERS)
    assert not (project.path / "migrations/versions/f2_email.py").exists()
    before = snapshot(database)

    for front in ("flask", "manage"):
        proc = db_cmd(project, front, "doctor")
        assert proc.returncode == 1, output(proc)
        assert ("revision f2 is defined by migrations/versions/f2_email.py only on branch "
                "feature/email") in proc.stdout, proc.stdout
        assert "stamping head is NOT safe" in proc.stdout
        assert "column users.email is in the database, not the models" in proc.stdout
        assert "db stamp --purge head (or" not in proc.stdout
    proc = db_cmd(project, "flask", "doctor", "--fix", "--yes")
    assert proc.returncode == 1 and "Changed:" not in proc.stdout
    assert snapshot(database) == before
    assert_one_error(db_cmd(project, "flask", "upgrade"), "names revision 'f2'",
                     "head is a1 ('add users')")
    assert snapshot(database) == before


def test_doctor_checks_without_git(make_database, make_project):
    """Not a git checkout: doctor says so and goes on; other checks one line each."""
    project, database = new_project(make_database, make_project, "sqlite",
                                    models=MODELS_POSTS)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 1
    assert "2 revision(s) pending" in proc.stdout and "fix: db upgrade" in proc.stdout
    project.flask("db", "upgrade", "-q")
    # Models ahead of the database at head: a migration not generated yet.
    proc = db_cmd(project, "manage", "doctor")
    assert proc.returncode == 1
    assert "a migration has not been generated yet" in proc.stdout
    assert "table 'posts' is in the models, not the database" in proc.stdout
    project.write_app(models=MODELS_EMAIL)
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 0, proc.stdout
    assert "[!!]" not in proc.stdout
    # Two heads, with each head's message and the merge command.
    write_revision(project, "b2", "a1", "posts")
    proc = db_cmd(project, "flask", "doctor")
    assert "[!!] heads: 2 heads: a2 ('add email'), b2 ('add posts')" in proc.stdout
    assert 'fix: db merge heads -m "merge a2 and b2"' in proc.stdout
    (project.path / "migrations/versions/b2_posts.py").unlink()
    # A down_revision pointing nowhere.
    write_revision(project, "c3", "nowhere1", "posts")
    proc = db_cmd(project, "flask", "doctor")
    assert proc.returncode == 1
    assert "[!!] revision files:" in proc.stdout and "'nowhere1'" in proc.stdout
    (project.path / "migrations/versions/c3_posts.py").unlink()
    # Deleted, outside git.
    set_version(database, "gone0001")
    proc = db_cmd(project, "flask", "doctor", "--json")
    findings = {f["check"]: f for f in json.loads(proc.stdout)["findings"]}
    assert "is not in a git checkout" in findings["revision gone0001"]["message"]
    assert findings["schema"]["fix"].startswith("db stamp --purge head")


def test_doctor_names_old_env_py_generation(make_database, make_project):
    from pathlib import Path
    import shutil

    database = make_database("sqlite")
    project = make_project(database)
    fixtures = Path(__file__).parent / "fixtures" / "legacy_2_5_to_2_6"
    shutil.copytree(fixtures / "migrations", project.path / "migrations")
    project.write_app(models=(fixtures / "models.py").read_text())
    proc = db_cmd(project, "flask", "doctor")
    # A note (it works here), about what this env.py does: see test_doctor.py.
    assert "[--] env.py: env.py (written by Flask-Migrate 2.5-2.6's template) works here" \
        in proc.stdout
    assert "fix: db init -d migrations.new" in proc.stdout


# -- per-revision timing -------------------------------------------------------------


TIMING = re.compile(r"^(Upgrade|Downgrade) (\w+) \('([^']*)'\) done in (\d+\.\d\d) s$")
SUMMARY = re.compile(r"^(\d+) revisions? (applied|reverted) in (\d+\.\d\d) s"
                     r"(?: \(slowest: (\w+), (\d+\.\d\d) s\))?$")


def timing_lines(stderr: str):
    steps = [TIMING.match(line).groups() for line in stderr.splitlines() if TIMING.match(line)]
    summaries = [SUMMARY.match(line).groups() for line in stderr.splitlines()
                 if SUMMARY.match(line)]
    return steps, summaries


@pytest.mark.parametrize("kind", KINDS)
def test_upgrade_reports_each_revision_and_a_summary(make_database, make_project, kind):
    project, database = new_project(make_database, make_project, kind, models=MODELS_POSTS)
    write_revision(project, "a1", None, "users")
    write_revision(project, "a2", "a1", "email")
    write_revision(project, "a3", "a2", "posts")
    proc = db_cmd(project, "flask", "upgrade", env={"FMC_EMAIL_SLEEP": "0.4"})
    assert proc.returncode == 0, output(proc)
    steps, summaries = timing_lines(proc.stderr)
    assert [(verb, rev) for verb, rev, _, _ in steps] == [
        ("Upgrade", "a1"), ("Upgrade", "a2"), ("Upgrade", "a3")]
    assert steps[1][2] == "add email"
    seconds = {rev: float(s) for _, rev, _, s in steps}
    assert seconds["a2"] >= 0.4
    (count, verb, total, slowest, slowest_s), = summaries
    assert (count, verb, slowest) == ("3", "applied", "a2")
    assert abs(float(total) - sum(seconds.values())) <= 0.015
    assert float(slowest_s) == seconds["a2"]
    # Each line comes right after its revision ran, the summary last.
    lines = proc.stderr.splitlines()
    assert lines.index(next(l for l in lines if l.startswith("Upgrade a1"))) < \
        lines.index(next(l for l in lines if "Running upgrade a1 -> a2" in l))
    assert SUMMARY.match(lines[-1])
    assert proc.stdout == ""
    assert database.version() == ["a3"]

    proc = db_cmd(project, "manage", "downgrade", "a1")
    steps, summaries = timing_lines(proc.stderr)
    assert [(verb, rev) for verb, rev, _, _ in steps] == [("Downgrade", "a3"), ("Downgrade", "a2")]
    assert summaries[0][:2] == ("2", "reverted")
    proc = db_cmd(project, "manage", "upgrade", "-q")
    assert proc.returncode == 0 and timing_lines(proc.stderr) == ([], [])
    assert "Running upgrade a1 -> a2" in proc.stderr  # Alembic's own lines stay
    assert database.version() == ["a3"]


def test_timing_leaves_sql_alone_and_chains_the_application_hook(make_database, make_project):
    project, database = new_project(make_database, make_project, "sqlite", models=MODELS_USERS)
    write_revision(project, "a1", None, "users")
    proc = db_cmd(project, "flask", "upgrade", "--sql")
    assert "CREATE TABLE users" in proc.stdout
    assert "done in" not in output(proc) and "applied in" not in output(proc)
    quiet = db_cmd(project, "flask", "upgrade", "--sql", "-q")
    assert quiet.stdout == proc.stdout
    # The application's own on_version_apply still runs, before ours.
    project.write_app(models=MODELS_USERS, config="", migrate_args=", on_version_apply=hook")
    app_py = project.path / "app.py"
    app_py.write_text(app_py.read_text().replace(
        "db = SQLAlchemy(app)",
        "def hook(ctx, step, heads, run_args):\n"
        "    print('APP HOOK', step.up_revision_id)\n\n"
        "db = SQLAlchemy(app)"))
    proc = project.flask("db", "upgrade")
    assert "APP HOOK a1" in proc.stdout
    assert timing_lines(proc.stderr)[0][0][1] == "a1"
    assert database.version() == ["a1"]


def test_env_py_without_configure_args_only_loses_timing(make_database, make_project):
    project, database = new_project(make_database, make_project, "sqlite", models=MODELS_USERS)
    env_py = project.path / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace("**configure_args,", ""))
    write_revision(project, "a1", None, "users")
    proc = project.manage("db", "upgrade")
    assert timing_lines(proc.stderr) == ([], [])
    assert database.version() == ["a1"]
    proc = db_cmd(project, "flask", "status", "--json")
    assert proc.returncode == 0 and json.loads(proc.stdout)["databases"][0]["current"] == ["a1"]
