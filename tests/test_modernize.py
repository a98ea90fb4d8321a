"""``db modernize``: the SQLAlchemy 1.x idioms of revision files, listed and rewritten.

In this process: the rewriter on each idiom, each case it must not touch, and each
case it marks TODO instead of guessing (the rewritten source compiles, a second pass
changes nothing). Through both front ends (subprocesses, real databases): a revision
using every idiom makes ``db upgrade`` fail with one line naming the file, the line,
the idiom and ``db modernize``; ``db doctor`` names it; ``db modernize`` lists it
(exit 1, file unchanged byte for byte), ``--diff`` shows the rewrite, ``--write``
writes it keeping the comments, and then ``db upgrade`` / ``db downgrade`` run it,
with the rows inspected in the database.
"""
from __future__ import annotations

import textwrap

import pytest
import sqlalchemy as sa

from conftest import SQLALCHEMY_1, assert_one_error, init_migrations
from flask_migrate_compat.modernization import (
    IDIOMS, TODO_MARK, modernize_files, rewrite_source,
)

HEADER = '''\
"""a revision

Revision ID: x1
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "x1"
down_revision = None


'''


def rewrite(body: str, header: str = HEADER) -> tuple[str, list]:
    """Rewrite ``header + body``; check the result compiles and is a fixed point."""
    source = header + textwrap.dedent(body)
    new, findings = rewrite_source(source.encode(), "rev.py")
    text = new.decode()
    compile(text, "rev.py", "exec")
    again, _ = rewrite_source(new, "rev.py")
    assert again == new, "a second pass changed the file again"
    return text[len(header):] if text.startswith(header) else text, findings


def keys(findings) -> list[tuple[str, bool]]:
    return [(f.idiom.key, f.todo is not None) for f in findings]


# -- execute() on a connection ---------------------------------------------------------


def test_plain_string_on_a_connection_gets_text():
    body, findings = rewrite('''\
        def upgrade():
            conn = op.get_bind()
            conn.execute("UPDATE t SET a = 1")  # keep this comment
            op.get_bind().execute('DELETE FROM t')
            connection.execute("SELECT 1")
        ''')
    assert 'conn.execute(sa.text("UPDATE t SET a = 1"))  # keep this comment' in body
    assert "op.get_bind().execute(sa.text('DELETE FROM t'))" in body
    assert 'connection.execute(sa.text("SELECT 1"))' in body
    assert keys(findings) == [("execute-string", False)] * 3
    assert [f.line for f in findings] == [15, 16, 17]


def test_sql_held_by_a_name_and_built_at_run_time():
    body, findings = rewrite('''\
        def upgrade():
            conn = op.get_bind()
            query = "UPDATE t SET a = 2 "
            conn.execute(query)
            conn.execute("UPDATE t SET b = '{}'".format(3))
        ''')
    assert "conn.execute(sa.text(query))" in body
    assert "conn.execute(sa.text(\"UPDATE t SET b = '{}'\".format(3)))" in body
    assert keys(findings) == [("execute-string", False)] * 2


def test_shapes_met_in_real_histories():
    """Written in our words after what real revision histories do: a connection
    under any name, SQL in parentheses split over several literals, a SQL template
    held by a name and filled with .format() at the call, a result unpacked in a
    for loop."""
    body, findings = rewrite('''\
        def upgrade():
            prefill_connection = op.get_bind()
            for key, value in prefill_connection.execute(
                    'SELECT key, value FROM settings WHERE value IS NOT NULL'
            ):
                print(key, value)
            template = \'\'\'
                UPDATE {} SET size = 0 WHERE owner IN ({})
            \'\'\'
            prefill_connection.execute(template.format('boxes', "'a','b'"))
            prefill_connection.execute(("DELETE FROM rates "
                                        "WHERE rate = 1.5"))
        ''')
    assert ("prefill_connection.execute(\n"
            "            sa.text('SELECT key, value FROM settings WHERE value IS NOT NULL')\n"
            "    ):") in body
    assert "prefill_connection.execute(sa.text(template.format('boxes', \"'a','b'\")))" in body
    assert 'prefill_connection.execute(sa.text(("DELETE FROM rates "\n' in body
    assert '"WHERE rate = 1.5")))\n' in body
    assert keys(findings) == [("execute-string", False)] * 3


def test_left_alone_op_execute_dbapi_connections_and_text():
    source = '''\
        import sqlite3


        def upgrade():
            op.execute("UPDATE t SET a = 1")
            raw = sqlite3.connect("x.db")
            raw.execute("SELECT 1")
            conn = op.get_bind()
            conn.execute(sa.text("SELECT :a"), {"a": 1})
            helper.execute("SELECT 1")
            row = {"id": 1}
            print(row["id"])
        '''
    body, findings = rewrite(source)
    assert body == textwrap.dedent(source)
    assert findings == []


def test_keyword_parameters_become_a_dict_and_pyformat_placeholders_named():
    body, findings = rewrite('''\
        def upgrade():
            conn = op.get_bind()
            conn.execute(
                "INSERT INTO t (id, name) VALUES (:id, :name)",
                id=1,
                name="one",
            )
            conn.execute("UPDATE t SET name = %(n)s WHERE name LIKE 'o%%'", n="uno")
            conn.execute(t.insert(), id=2, **extra)
            conn.execute(t.insert(), {"id": 3}, {"id": 4})
        ''')
    assert ('''\
    conn.execute(
        sa.text("INSERT INTO t (id, name) VALUES (:id, :name)"),
        {"id": 1,
        "name": "one"},
    )''') in body
    assert ("""conn.execute(sa.text("UPDATE t SET name = :n WHERE name LIKE 'o%'"), """
            """{"n": "uno"})""") in body
    assert 'conn.execute(t.insert(), {"id": 2, **extra})' in body
    assert 'conn.execute(t.insert(), [{"id": 3}, {"id": 4}])' in body
    assert ("execute-params", True) not in keys(findings)


@pytest.mark.parametrize("call, reason", [
    ('conn.execute("SELECT * FROM t WHERE id = ?", (1,))', "positional placeholders"),
    ('conn.execute("SELECT * FROM t WHERE id = %s", 1)', "positional placeholders"),
    ('conn.execute(t.select(), (1, 2))', "positional parameters"),
    ('conn.execute(f"SELECT * FROM {name} WHERE id = :id", id=1)', "built at run time"),
    ("""conn.execute("SELECT '{\\"a\\":1}'")""", "bind parameter"),
    ("""conn.execute("UPDATE t SET a = 'x%%'")""", "'%%'"),
    ('conn.execute(t.insert(), {"a": 1}, b=2)', "merge them"),
])
def test_what_execute_cannot_rewrite_is_marked_todo(call, reason):
    source = f'''\
        def upgrade():
            conn = op.get_bind()
            {call}
        '''
    body, findings = rewrite(source)
    todos = [f for f in findings if f.todo]
    assert len(todos) == 1 and reason in todos[0].todo, findings
    assert f"    # {TODO_MARK}: " in body
    assert call in body  # the call itself is left as written


# -- MetaData(bind=...), autoload, reflect ---------------------------------------------


def test_bound_metadata_and_autoload():
    body, findings = rewrite('''\
        def upgrade():
            bind = op.get_bind()
            meta = sa.MetaData(bind=bind)
            users = sa.Table("users", meta, autoload=True)
            other = sa.Table("other", sa.MetaData(), autoload=True, autoload_with=bind)
            meta.reflect(only=["users"])
            legacy = sa.MetaData(bind)
            legacy.create_all()
        ''')
    assert "meta = sa.MetaData()" in body
    assert 'users = sa.Table("users", meta, autoload_with=bind)' in body
    assert 'other = sa.Table("other", sa.MetaData(), autoload_with=bind)' in body
    assert 'meta.reflect(bind=bind, only=["users"])' in body
    assert "legacy = sa.MetaData()" in body and "legacy.create_all(bind=bind)" in body
    assert all(not f.todo for f in findings)
    assert {f.idiom.key for f in findings} == {"metadata-bind", "table-autoload"}


def test_autoload_without_a_bound_metadata_is_todo():
    body, findings = rewrite('''\
        def upgrade():
            users = sa.Table("users", sa.MetaData(), autoload=True)
        ''')
    assert keys(findings) == [("table-autoload", True)]
    assert 'users = sa.Table("users", sa.MetaData(), autoload=True)' in body
    assert "autoload_with=" in body  # in the TODO comment, saying what to write


# -- select([...]) and case([...]) -------------------------------------------------------


def test_select_and_case_lists():
    header = HEADER.replace("import sqlalchemy as sa", "import sqlalchemy as sa\n"
                            "from sqlalchemy.sql import select")
    body, findings = rewrite('''\
        def upgrade():
            a = sa.select([t.c.id, t.c.name])
            b = select([t], t.c.id == 1)
            c = sa.select([
                t.c.id,  # the key
                t.c.name,
            ])
            d = sa.select([c for c in t.c])
            e = sa.case([(t.c.id == 1, "one")], else_="other")
            f = sa.select([t.c.id], whereclause=t.c.id > 2)
        ''', header)
    assert "a = sa.select(t.c.id, t.c.name)" in body
    assert "b = select(t).where(t.c.id == 1)" in body
    assert "c = sa.select(\n        t.c.id,  # the key\n        t.c.name,\n    )" in body
    assert "d = sa.select(*[c for c in t.c])" in body
    assert 'e = sa.case((t.c.id == 1, "one"), else_="other")' in body
    assert "f = sa.select(t.c.id).where(t.c.id > 2)" in body
    assert all(not f.todo for f in findings) and len(findings) == 6


def test_case_whens_as_a_tuple_of_tuples_keep_their_comments():
    body, findings = rewrite('''\
        def upgrade():
            c = sa.case(
                (
                    # the first when
                    (t.c.id == 1, "one"),
                ),
                # otherwise
                else_="other",
            )
            d = sa.case((t.c.id == 2, "two"), else_="other")  # SQLAlchemy 2 already
            e = sa.select([t.c.id], t.c.id > 1  # the where clause
                          )
        ''')
    assert ("    c = sa.case(\n"
            "            # the first when\n"
            "            (t.c.id == 1, \"one\"),\n"
            "        # otherwise\n"
            "        else_=\"other\",\n"
            "    )\n") in body
    assert 'd = sa.case((t.c.id == 2, "two"), else_="other")' in body
    assert keys(findings) == [("case-list", False), ("select-list", True)]
    assert "a comment stands where the rewrite would remove the list" in findings[1].todo


def test_commit_to_leave_the_transaction_becomes_an_autocommit_block():
    body, findings = rewrite('''\
        def upgrade():
            op.execute("COMMIT")  # enum values cannot be added inside a transaction
            op.execute("ALTER TYPE mood ADD VALUE 'calm'")
            op.execute("UPDATE people SET mood = 'calm' WHERE mood IS NULL")


        def downgrade():
            op.execute("commit;")
        ''')
    assert body.startswith(
        "def upgrade():\n"
        "    with op.get_context().autocommit_block():  # enum values cannot be added "
        "inside a transaction\n"
        "        op.execute(\"ALTER TYPE mood ADD VALUE 'calm'\")\n"
        "        op.execute(\"UPDATE people SET mood = 'calm' WHERE mood IS NULL\")\n")
    assert keys(findings) == [("execute-commit", False), ("execute-commit", True)]


def test_table_select_with_a_where_clause_and_columns_as_a_sequence():
    body, findings = rewrite('''\
        def upgrade():
            q = left.join(right, left.c.rid == right.c.id).select(
                right.c.name == "x"  # only x
            ).with_only_columns((left.c.id, left.c.data))
            r = left.select(whereclause=left.c.id > 2).with_only_columns([left.c.id])
            s = sa.select(left).with_only_columns(left.c.id)
            u = left.select()
        ''')
    assert ('    q = left.join(right, left.c.rid == right.c.id).select().where(\n'
            '        right.c.name == "x"  # only x\n'
            '    ).with_only_columns(left.c.id, left.c.data)\n') in body
    assert "r = left.select().where(left.c.id > 2).with_only_columns(left.c.id)" in body
    assert "s = sa.select(left).with_only_columns(left.c.id)" in body
    assert "u = left.select()" in body
    assert sorted(keys(findings)) == [("select-list", False)] * 2 + [("table-select", False)] * 2


def test_select_imported_under_another_name():
    source = textwrap.dedent('''\
        from sqlalchemy.sql.expression import (
            and_,
            select as sql_select,
        )


        def upgrade():
            q = sql_select([t.c.id]).where(and_(t.c.id > 1))
        ''')
    new, findings = rewrite_source(source)
    assert "q = sql_select(t.c.id).where(and_(t.c.id > 1))" in new.decode()
    assert keys(findings) == [("select-list", False)]


def test_select_with_more_than_a_where_clause_is_todo_and_others_untouched():
    body, findings = rewrite('''\
        import select as select_module


        def upgrade():
            q = sa.select([t.c.id], t.c.id > 1, from_obj=[t])
            ready = select_module.select([r], [], [], 0)
        ''')
    assert keys(findings) == [("select-list", True)]
    assert "sa.select([t.c.id], t.c.id > 1, from_obj=[t])" in body
    assert "select_module.select([r], [], [], 0)" in body


# -- rows read by name -------------------------------------------------------------------


def test_rows_as_mappings():
    body, findings = rewrite('''\
        def upgrade():
            conn = op.get_bind()
            for row in conn.execute(sa.select([t])):
                print(row["id"], row[t.c.name], row[0])
            first = conn.execute(sa.text("SELECT 1 AS one")).fetchone()
            print(dict(first), first.keys())
            rows = conn.execute(sa.text("SELECT 1 AS one")).fetchall()
            names = [r["one"] for r in rows]
            top = list(rows)[0]
            print(top["one"], conn.execute(sa.text("SELECT 2 AS two")).first()["two"])
        ''')
    assert 'print(row._mapping["id"], row._mapping[t.c.name], row[0])' in body
    assert "print(dict(first._mapping), first._mapping.keys())" in body
    assert 'names = [r._mapping["one"] for r in rows]' in body
    assert ('print(top._mapping["one"], conn.execute(sa.text("SELECT 2 AS two"))'
            '.first()._mapping["two"])') in body
    assert [f.idiom.key for f in findings].count("row-mapping") == 7


# -- engine.execute ------------------------------------------------------------------------


def test_engine_execute_statement_becomes_a_block_and_a_used_result_is_todo():
    body, findings = rewrite('''\
        def downgrade():
            conn = op.get_bind()
            engine = conn.engine
            # tidy up first
            engine.execute("DELETE FROM t WHERE id > :n", n=3)  # the extra rows
            count = engine.execute("SELECT count(*) FROM t").scalar()
        ''')
    assert ('''\
    # tidy up first
    with engine.begin() as connection:
        connection.execute(sa.text("DELETE FROM t WHERE id > :n"), {"n": 3})  # the extra rows
''') in body
    assert f"# {TODO_MARK}: engine-execute: its result is used" in body
    assert keys(findings).count(("engine-execute", True)) == 1
    assert keys(findings).count(("engine-execute", False)) == 1


# -- imports -------------------------------------------------------------------------------


@pytest.mark.parametrize("imports, expected", [
    ("from alembic import op\n", "import sqlalchemy as sa\n"),
    ("from alembic import op\nimport sqlalchemy\n", "sqlalchemy.text("),
    ("from alembic import op\nimport sqlalchemy as sqla\n", "sqla.text("),
    ("from alembic import op\nfrom sqlalchemy import text as T\n", "T("),
])
def test_text_comes_from_the_files_own_import(imports, expected):
    source = imports + "\n\ndef upgrade():\n    op.get_bind().execute('SELECT 1')\n"
    new, _ = rewrite_source(source)
    text = new.decode()
    compile(text, "rev.py", "exec")
    assert expected in text
    if expected.startswith("import"):
        assert text.startswith(imports + expected)
        assert "sa.text('SELECT 1')" in text


# -- files -----------------------------------------------------------------------------------


def test_files_that_do_not_parse_or_need_nothing_are_left_byte_for_byte(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_bytes(b"def upgrade(:\n    conn.execute('x')\n")
    clean = tmp_path / "clean.py"
    clean.write_bytes(b"from alembic import op\r\n\r\ndef upgrade():\r\n    op.execute('x')\r\n")
    old = tmp_path / "old.py"
    old.write_bytes(b"def upgrade():\r\n    conn.execute('SELECT 1')  # crlf\r\n")
    before = {p: p.read_bytes() for p in (broken, clean)}
    result = modernize_files([str(broken), str(clean), str(old)], write=True)
    assert {p: p.read_bytes() for p in (broken, clean)} == before
    assert old.read_bytes() == (b"import sqlalchemy as sa\r\ndef upgrade():\r\n"
                                b"    conn.execute(sa.text('SELECT 1'))  # crlf\r\n")
    problems = result.problems
    assert [r.path for r in problems] == [str(broken)]
    assert "does not parse" in problems[0].problem
    assert result.exit_code == 1  # a file could not be checked
    report = "\n".join(result.report())
    assert "broken.py: not checked: it does not parse" in report
    assert "Rewrote 1 revision file; 0 TODOs left; 1 file not rewritten" in report


def test_every_idiom_has_its_error_signature():
    assert len({idiom.key for idiom in IDIOMS}) == len(IDIOMS)
    assert all(idiom.errors for idiom in IDIOMS)


# -- through both front ends, on real databases ----------------------------------------------

SHADES = '''\
"""shades table

Revision ID: s1shades
Revises:
"""
from alembic import op
import sqlalchemy as sa

revision = "s1shades"
down_revision = None


def upgrade():
    op.create_table(
        "shades",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("label", sa.String(40), nullable=False),
        sa.Column("hue", sa.String(20), nullable=False),
    )


def downgrade():
    op.drop_table("shades")
'''

# Every idiom of the table, written the SQLAlchemy 1.x way. The first statement of
# upgrade() is already one, so the failed upgrade leaves nothing behind.
FILL_SHADES = '''\
"""fill the shades, SQLAlchemy 1.x style

Revision ID: s2fill
Revises: s1shades
"""
from alembic import op
import sqlalchemy as sa

revision = "s2fill"
down_revision = "s1shades"


def upgrade():
    conn = op.get_bind()
    # a plain SQL string
    conn.execute("INSERT INTO shades (id, label, hue) VALUES (1, 'sky', 'blue')")
    conn.execute(
        "INSERT INTO shades (id, label, hue) VALUES (:id, :label, :hue)",
        id=2,
        label="grass",
        hue="green",
    )
    meta = sa.MetaData(bind=conn)
    shades = sa.Table("shades", meta, autoload=True)
    conn.execute(shades.insert(), id=3, label="ember", hue="red")
    for row in conn.execute(sa.select([shades.c.id, shades.c.label])):  # by name
        conn.execute(shades.update().where(shades.c.id == row["id"]),
                     label=row["label"].upper())
    first = conn.execute(sa.select([shades], shades.c.id == 1)).fetchone()
    conn.execute(shades.insert(), id=4, label=dict(first)["label"] + "-2", hue=first.hue)
    conn.execute(shades.update().values(
        hue=sa.case([(shades.c.hue == "red", "crimson")], else_=shades.c.hue)))
    green = conn.execute(shades.select(shades.c.id == 2)).fetchone()
    conn.execute(shades.update().where(shades.c.id == 4), hue=green["hue"])
    op.execute("COMMIT")  # what follows runs outside the migration's transaction
    op.execute("UPDATE shades SET hue = 'navy' WHERE id = 1")


def downgrade():
    engine = op.get_bind().engine
    engine.execute("DELETE FROM shades WHERE id = 4")  # the copy
    conn = op.get_bind()
    conn.execute("DELETE FROM shades WHERE hue = :hue", hue="crimson")
'''


def fill_shades(kind: str) -> str:
    """FILL_SHADES as written for ``kind``'s driver: SQLAlchemy 1.x passes a plain SQL
    string to the driver as it is, so its placeholders are the driver's own (sqlite3
    takes ``:name``, psycopg2 and PyMySQL ``%(name)s``); SQLAlchemy 1.4 runs it."""
    if kind == "sqlite":
        return FILL_SHADES
    return FILL_SHADES.replace(":id, :label, :hue", "%(id)s, %(label)s, %(hue)s") \
        .replace("hue = :hue", "hue = %(hue)s")


# The rows of the shades table after s2fill's upgrade, and after its downgrade.
UPGRADED = [(1, "SKY", "navy"), (2, "GRASS", "green"), (3, "EMBER", "crimson"),
            (4, "SKY-2", "green")]
DOWNGRADED = [(1, "SKY", "navy"), (2, "GRASS", "green")]


def rows(database) -> list[tuple]:
    with database.engine().connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT id, label, hue FROM shades ORDER BY id"))]


@pytest.mark.parametrize("kind, front", [
    ("sqlite", "flask"), ("sqlite", "manage"), ("postgresql", "flask"),
    ("postgresql", "manage"), ("mysql", "manage"), ("mysql", "flask"),
])
def test_listed_named_rewritten_then_run(make_database, make_project, kind, front):
    database = make_database(kind)
    project = make_project(database)
    init_migrations(project)
    project.write("migrations/versions/s1_shades.py", SHADES)
    fill = project.write("migrations/versions/s2_fill_shades.py", fill_shades(kind))
    shown = "migrations/versions/s2_fill_shades.py"
    run = project.flask if front == "flask" else project.manage
    original = fill.read_bytes()

    if SQLALCHEMY_1:
        # SQLAlchemy 1.4 still runs the 1.x idioms (README "The oldest supported
        # stack"): the upgrade runs, with one line of SQLAlchemy's deprecation warning.
        ran = run("db", "upgrade")
        warned = [line for line in ran.stderr.splitlines()
                  if "Deprecated API features detected!" in line]
        assert len(warned) == 1 and str(fill) in warned[0], ran.stderr
        assert "Traceback" not in ran.stderr
        assert database.version() == ["s2fill"] and rows(database) == UPGRADED
        run("db", "downgrade")
        assert database.version() == ["s1shades"] and rows(database) == DOWNGRADED
        run("db", "downgrade")  # back to the empty database the rest starts from
    else:
        # db upgrade stops at the first idiom, and says which and what to run.
        failed = run("db", "upgrade", check=False)
        assert_one_error(failed, "revision s2fill failed in upgrade()",
                         f"{fill}, line 16: ", 'conn.execute("SQL")',
                         'conn.execute(sa.text("SQL"))', "'db modernize'")
        if kind == "postgresql":  # one transaction for the whole run: all rolled back
            assert database.tables() == set()
        else:  # s1shades was committed before s2fill started
            assert database.version() == ["s1shades"] and rows(database) == []

    # db doctor: one finding, with the counts and the command.
    doctor = run("db", "doctor", check=False)
    assert doctor.returncode == 1, doctor.stderr
    finding = [line for line in doctor.stdout.splitlines() if "sqlalchemy 2" in line]
    assert finding == ["[!!] sqlalchemy 2: 1 of 2 revision file(s) use SQLAlchemy 1.x "
                       "idioms that SQLAlchemy 2 rejects (22 place(s)): 'db upgrade' "
                       "would stop at the first of them"], doctor.stdout
    assert "fix: db modernize (lists them), then db modernize --write" in doctor.stdout

    # db modernize lists every use, exit 1, changes nothing.
    listed = run("db", "modernize", check=False)
    assert listed.returncode == 1, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[-1] == ("22 SQLAlchemy 1.x idioms in 1 revision file: run 'db modernize "
                         "--write' to rewrite them, review the diff, commit")
    assert f'{shown}:16: conn.execute("SQL") -> conn.execute(sa.text("SQL"))' in lines
    for idiom in IDIOMS:
        assert any(line.startswith(f"{shown}:") and f"{idiom.old} -> {idiom.new}" in line
                   for line in lines), idiom.key
    assert listed.stderr == "" and fill.read_bytes() == original

    # --diff shows the rewrite, still writing nothing.
    diffed = run("db", "modernize", "--diff", check=False)
    assert diffed.returncode == 1
    assert f"--- a/{shown}\n+++ b/{shown}\n" in diffed.stdout
    assert '-    conn.execute("INSERT INTO shades (id, label, hue) VALUES (1, \'sky\', ' \
           '\'blue\')")\n+    conn.execute(sa.text("INSERT' in diffed.stdout
    assert fill.read_bytes() == original

    # --write rewrites, keeping comments; then nothing is left to list.
    written = run("db", "modernize", "--write")
    assert written.stdout.splitlines() == [f"Rewrote {shown} (22 changes)",
                                           "Rewrote 1 revision file; 0 TODOs left"]
    text = fill.read_text()
    assert "    # a plain SQL string\n" in text and "  # by name\n" in text
    assert "with engine.begin() as connection:\n        connection.execute(sa.text(" \
           '"DELETE FROM shades WHERE id = 4"))  # the copy\n' in text
    assert run("db", "modernize").stdout.splitlines() == [
        "No SQLAlchemy 1.x idiom in 2 revision files"]
    doctor = run("db", "doctor", check=False)
    assert "[ok] sqlalchemy 2: no SQLAlchemy 1.x idiom in the 2 revision file(s)" \
        in doctor.stdout

    # and the rewritten revision runs, both ways.
    upgraded = run("db", "upgrade")
    assert "Deprecated API features detected!" not in upgraded.stderr
    assert database.version() == ["s2fill"]
    assert rows(database) == UPGRADED
    run("db", "downgrade")
    assert database.version() == ["s1shades"]
    assert rows(database) == DOWNGRADED


def test_without_the_application(tmp_path):
    """``python -m flask_migrate_compat modernize``: for an application that cannot
    start, or that migrates while it starts (upgrade() in its factory)."""
    import subprocess
    import sys

    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    fill = versions / "s2_fill_shades.py"
    fill.write_text(FILL_SHADES)
    (tmp_path / "app.py").write_text("raise RuntimeError('this application cannot start')\n")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "flask_migrate_compat", "modernize",
                               *args], cwd=tmp_path, capture_output=True, text=True,
                              timeout=120)

    listed = run()
    assert listed.returncode == 1 and listed.stderr == ""
    assert listed.stdout.splitlines()[-1].startswith("22 SQLAlchemy 1.x idioms in 1 revision file")
    # The advice names this command, which runs without the application, not db modernize.
    assert listed.stdout.splitlines()[-1].endswith(
        ": run 'flask-migrate-compat modernize --write' to rewrite them, review the diff, "
        "commit")
    assert fill.read_text() == FILL_SHADES
    written = run("--write")
    assert written.returncode == 0, written.stdout + written.stderr
    assert "Rewrote migrations/versions/s2_fill_shades.py (22 changes)" in written.stdout
    assert run().stdout == "No SQLAlchemy 1.x idiom in 1 revision file\n"
    missing = run("-d", "elsewhere")
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: migrations folder 'elsewhere' not found")


def test_libcst_is_loaded_only_to_read_revision_files():
    """Start-up cost: importing the package, its front ends or its core does not
    import LibCST (~50 ms); db modernize does."""
    import subprocess
    import sys

    code = ("import sys, flask_migrate_compat.cli, flask_migrate_compat.script, "
            "flask_migrate_compat.diagnosis, flask_migrate_compat.modernization; "
            "print('libcst' in sys.modules); "
            "flask_migrate_compat.modernization.rewrite_source('x = 1\\n'); "
            "print('libcst' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.stdout.split() == ["False", "True"], proc.stderr


def test_libcst_missing_is_one_line_and_doctor_goes_on(make_project, sqlite_db):
    """An environment that lost LibCST (a dependency): db modernize says what to
    install in one line; doctor reports its one check as not done and runs the rest."""
    project = make_project(sqlite_db)
    init_migrations(project)
    project.write("migrations/versions/s2_fill_shades.py", FILL_SHADES)
    project.write("migrations/versions/s1_shades.py", SHADES)
    project.write("libcst.py", 'raise ImportError("No module named \'libcst\'")\n')
    assert_one_error(project.flask("db", "modernize", check=False),
                     "needs LibCST", "pip install 'libcst>=1.5'")
    doctor = project.manage("db", "doctor", check=False)
    assert doctor.returncode == 1 and "Traceback" not in doctor.stderr
    lines = doctor.stdout.splitlines()
    assert [line for line in lines if "sqlalchemy 2" in line] == [
        "[!!] sqlalchemy 2: not checked: reading revision files for SQLAlchemy 1.x idioms "
        "needs LibCST, a dependency of flask-migrate-compat that this environment lacks: "
        "pip install 'libcst>=1.5'"]
    assert any(line.startswith("[ok] heads:") for line in lines), doctor.stdout
