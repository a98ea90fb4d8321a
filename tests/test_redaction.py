"""No output shows a database password, and hiding one never garbles the text.

The sentences of this package are built from parts that hold no password (backend,
database, host, port, revision ids); only text from elsewhere (a driver, env.py, a
revision script) is redacted, and only its credentials: URL passwords, ``password=``
pairs, and the application's passwords where they stand apart. These tests raise real
errors whose raw text holds the password, on real servers, through both front ends.
"""
from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa
from conftest import POSTGRES_SCHEME, assert_one_error, error_lines, shows_password
from test_failures import HEADER, write_chain

from flask_migrate_compat.errors import (
    Terminated, describe_database, error_message, exit_code, redact, unencoded_password,
)

# -- the redaction itself ---------------------------------------------------------------


@pytest.mark.parametrize("password", ["postgres", "a", "1"])
def test_short_passwords_do_not_garble_words(password):
    text = ('connection to server at "127.0.0.1", port 5432 failed: FATAL: password '
            'authentication failed for user "bob" on postgresql database "a_1"')
    assert redact(text, [password]) == text


@pytest.mark.parametrize("password", ["postgres", "a", "1", "s3cr3t-%-pw/@:?#+", "two words/x"])
def test_credentials_are_removed(password):
    from urllib.parse import quote, quote_plus

    for form in {password, quote(password, safe=""), quote_plus(password)}:
        texts = [
            f"could not connect with postgresql+psycopg://bob:{form}@db.internal/shop",
            f"dsn host=db password={form} user=bob",
            f"login for 'bob' with '{form}' refused",
            f"login refused: {form}",
        ]
        for text in texts:
            result = redact(text, [password])
            assert not shows_password(result, form), (form, result)
            assert "***" in result
    # The rest of the text is kept.
    assert redact(f"dsn host=db password={password} user=bob", [password]) == \
        "dsn host=db password=*** user=bob"


def test_each_password_is_replaced_whole():
    assert redact("login refused: Tr1cky-pw", ["Tr1cky-pw"]) == "login refused: ***"
    # A password inside a longer one (after a character that ends a token): the
    # longer one is replaced whole, whichever comes first in the alphabet.
    assert redact("login abc!def refused", ["abc", "abc!def"]) == "login *** refused"
    assert redact("login a!abc refused", ["abc", "a!abc"]) == "login *** refused"


def test_databases_are_named_without_their_login():
    make_url = sa.engine.make_url
    assert describe_database(make_url("sqlite:////srv/app.db")) == "SQLite database '/srv/app.db'"
    assert describe_database(make_url("postgresql://u:pw@/shop")) == \
        "postgresql database 'shop' on localhost"
    # An unencoded '@' moved the rest of the password into the host: no host then.
    broken = make_url("mysql+pymysql://u:Pw@secret@db:3306/shop")
    assert unencoded_password(broken) and describe_database(broken) == "mysql database 'shop'"
    assert not unencoded_password(make_url("mysql+pymysql://u:Pw%40secret@db:3306/shop"))
    assert not unencoded_password(make_url("sqlite://"))


def test_url_passwords_with_an_unencoded_at_are_removed_whole():
    text = "bad url mysql://u:Pw@secret@host/db given"
    assert redact(text) == "bad url mysql://u:***@host/db given"


def test_connection_error_names_the_database_without_garbling():
    """A real driver error (nothing listens on port 1), with the password 'postgres'."""
    engine = sa.create_engine(f"{POSTGRES_SCHEME}://postgres:postgres@127.0.0.1:1/shop",
                              connect_args={"connect_timeout": 3})
    with pytest.raises(sa.exc.OperationalError) as caught:
        engine.connect()
    line = error_message(caught.value, {"": engine}, ["postgres"])
    assert line.startswith(
        "cannot connect to the postgresql database 'shop' on 127.0.0.1:1: ")
    assert "***ql" not in line
    assert describe_database(engine.url) == "postgresql database 'shop' on 127.0.0.1:1"


def test_other_errors_are_one_redacted_line_naming_where():
    """An error of a revision script, an env.py or a bug: its type, its text with the
    application's passwords removed and its lines joined, and where it was raised."""
    try:
        raise RuntimeError("login as bob with Tr1cky-pw failed\n  retry with Tr1cky-pw")
    except RuntimeError as exc:
        caught, line = exc, exc.__traceback__.tb_lineno
    assert error_message(caught, passwords=["Tr1cky-pw"]) == (
        f"RuntimeError: login as bob with *** failed retry with *** ({__file__}, line {line})")
    # A syntax error: its message, and the file and line it names.
    broken = SyntaxError("invalid syntax", ("/srv/migrations/versions/r1.py", 3, 5, "def (:"))
    assert error_message(broken) == \
        "SyntaxError: invalid syntax (/srv/migrations/versions/r1.py, line 3)"
    # Interruptions outside any revision: the signal, and the shell's exit codes.
    assert error_message(KeyboardInterrupt()) == "interrupted (Ctrl-C)"
    assert error_message(Terminated("terminated by signal 15")) == "interrupted (SIGTERM)"
    assert [exit_code(e) for e in (KeyboardInterrupt(), Terminated(), caught)] == [130, 143, 1]


# -- raw error texts holding the password, on real servers -------------------------------

LEAKY_REVISION = '''\
def upgrade():
    url = op.get_bind().engine.url
    raise RuntimeError("cannot go on with " + url.render_as_string(hide_password=False)
                       + " (password " + repr(url.password) + ")")


def downgrade():
    pass
'''

# Warns, then fails, each time with the URL and the password over two lines: the
# warning is one redacted "Warning:" line (written outside error_message), the error
# one line.
LEAKY_ENV_PY = '''\
import warnings
from flask import current_app
url = current_app.extensions["migrate"].db.engine.url
warnings.warn("env.py warns about " + url.render_as_string(hide_password=False)
              + "\\n  with password " + url.password)
raise ValueError("env.py refuses " + url.render_as_string(hide_password=False)
                 + "\\n  password=" + url.password)
'''

# Stands in for a driver whose error message quotes the password it was given.
LEAKY_CONNECT = '''
from sqlalchemy import event
from sqlalchemy.engine import Engine

@event.listens_for(Engine, "do_connect")
def _refuse(dialect, conn_rec, cargs, cparams):
    if os.environ.get("LEAKY_CONNECT"):
        # dialect.dbapi on SQLAlchemy 1.4; loaded_dbapi since 2.0.
        dbapi = getattr(dialect, "loaded_dbapi", None) or dialect.dbapi
        raise dbapi.OperationalError(
            "authentication failed for password '%s'" % cparams.get("password"))
'''


@pytest.fixture
def password_url(request, make_database):
    """``(database, url with a password)``: on MariaDB a user with that password; on
    PostgreSQL (trust authentication here) the password in the URL is all it takes."""
    kind, password = request.param
    database = make_database(kind)
    url = sa.engine.make_url(database.url)
    user = None
    if kind == "mysql":
        user = f"fmc_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(database.admin_url, poolclass=sa.pool.NullPool)
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY :pw"),
                         {"pw": password})
            conn.execute(sa.text(f"GRANT ALL ON {database.name}.* TO '{user}'@'%'"))
        url = url.set(username=user)
    yield database, url.set(password=password).render_as_string(hide_password=False)
    if user is not None:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP USER '{user}'@'%'"))
        admin.dispose()


PASSWORD_CASES = [(kind, password) for kind in ("postgresql", "mysql")
                  for password in ("Pw-" + uuid.uuid4().hex[:12] + "/@:?#%+", "postgres")]


@pytest.mark.parametrize("front_end", ["flask", "manage"])
@pytest.mark.parametrize("password_url", PASSWORD_CASES, indirect=True,
                         ids=[f"{k}-{'postgres' if p == 'postgres' else 'special'}"
                              for k, p in PASSWORD_CASES])
def test_raw_error_texts_never_show_the_password(password_url, make_project, front_end):
    database, url = password_url
    password = sa.engine.make_url(url).password
    project = make_project(database)
    project.env["DATABASE_URL"] = url
    write_chain(project, third=None)
    project.write_app(models="", config=LEAKY_CONNECT)
    run = project.flask if front_end == "flask" else project.manage
    backend = "postgresql" if database.kind == "postgresql" else "mysql"

    # A revision whose own error holds the URL and the password.
    project.write("migrations/versions/r3.py",
                  HEADER.format(rev="r3", down="r2") + LEAKY_REVISION)
    proc = run("db", "upgrade", check=False)
    line = assert_one_error(proc, "revision r3 failed in upgrade()",
                            f"on the {backend} database {database.name!r}")
    assert f"{backend}+" in line and "***" in line
    (project.path / "migrations" / "versions" / "r3.py").unlink()

    # env.py raising with them.
    env_py = project.path / "migrations" / "env.py"
    original = env_py.read_text()
    env_py.write_text(LEAKY_ENV_PY + original)
    proc = run("db", "current", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 2, proc.stderr  # the warning and the error, one line each
    warning, line = lines
    assert warning.startswith(f"Warning: env.py warns about {backend}+"), warning
    # The warning names where env.py raised it (line 4 of LEAKY_ENV_PY).
    assert warning.endswith(f"with password *** ({env_py}, line 4)") and ":***@" in warning, \
        warning
    assert line.startswith("Error: ValueError: env.py refuses "), line
    assert "password=***" in line and ":***@" in line, line
    for text in (warning, line):
        assert not shows_password(text, password), text
    env_py.write_text(original)

    # A connection failure whose driver message quotes the password.
    proc = run("db", "upgrade", check=False, env={"LEAKY_CONNECT": "1"})
    line = assert_one_error(proc, f"cannot connect to the {backend} database "
                                  f"{database.name!r}", "authentication failed for password")
    assert "postgresql" in line or backend == "mysql"
    for proc_text in (line,):
        assert not shows_password(proc_text, password)
    # The database saw r1 and r2 only (the failed r3 was rolled back or never ran).
    project.flask("db", "upgrade")
    assert database.version() == ["r2"]


def test_revisions_are_named_by_the_first_line_of_their_message():
    """A head whose docstring's first paragraph spans lines (Revision ID, Revises,
    Create Date, as some projects' templates write it) is named by its first line,
    not by a string full of escaped line breaks."""
    from flask_migrate_compat.errors import list_revisions

    doc = "Revision ID: 0141_remove_unused\nRevises: 0140_x\nCreate Date: 2018-01-01"
    assert list_revisions([("0141_remove_unused", doc), ("ab12", None), ("cd34", "")]) == (
        "0141_remove_unused ('Revision ID: 0141_remove_unused'), ab12, cd34")
