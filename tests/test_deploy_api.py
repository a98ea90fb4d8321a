"""The programmatic API of the deploy-time commands, in process: ``status()`` and
``doctor()`` return dataclasses, ``current()`` and ``heads()`` return the revision ids
they print, and the lock connection gives its pooled connection back unchanged."""
from __future__ import annotations

import dataclasses

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy

import flask_migrate_compat as fmc
from test_deploy import MODELS_EMAIL, write_revision


class _Files:
    """What ``write_revision`` needs of a project: a folder to write into."""

    def __init__(self, path):
        self.path = path

    def write(self, name, text):
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        return target


@pytest.fixture(params=["sqlite", "postgresql"])
def app(request, make_database, tmp_path, monkeypatch):
    database = make_database(request.param)
    monkeypatch.chdir(tmp_path)
    app = Flask(__name__)
    app.config["SQLALCHEMY_DATABASE_URI"] = database.url
    db = SQLAlchemy(app)
    namespace = {"db": db}
    exec(MODELS_EMAIL, namespace)
    fmc.Migrate(app, db)
    with app.app_context():
        fmc.init()
        write_revision(_Files(tmp_path), "a1", None, "users")
        write_revision(_Files(tmp_path), "a2", "a1", "email")
        yield app, db, database
        db.engine.dispose()


def test_status_and_doctor_return_facts(app, capfd):
    app, db, database = app
    result = fmc.status()
    assert dataclasses.is_dataclass(result)
    assert [rev.revision for rev in result.heads] == ["a2"]
    (first,) = result.databases
    assert first.current == () and [r.revision for r in first.pending] == ["a1", "a2"]
    assert result.exit_code == 1 and result.state == "pending"
    assert first.lock_holder is None

    fmc.upgrade(quiet=True)
    assert "done in" not in capfd.readouterr().err
    assert fmc.status().exit_code == 0
    assert fmc.current() == ["a2"]
    assert fmc.heads() == ["a2"]

    diagnosis = fmc.doctor()
    assert diagnosis.exit_code == 0, [f for f in diagnosis.findings if not f.ok]
    assert {f.check for f in diagnosis.findings} >= {
        "revision files", "heads", "env.py", "sqlite path", "lock", "database", "schema"}

    if database.kind == "postgresql":
        # The lock connection named itself, then gave the name back before returning
        # to the application's pool.
        with db.engine.connect() as conn:
            assert conn.execute(sa.text("SHOW application_name")).scalar() == ""


def test_doctor_fix_asks_first(app):
    app, db, database = app
    fmc.upgrade(quiet=True)
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = 'lost0001'"))
    questions = []
    diagnosis = fmc.doctor(fix=True, confirm=lambda q: questions.append(q) or False)
    assert questions and "Stamp head into the version table" in questions[0]
    assert diagnosis.changed == [] and diagnosis.unchanged == "not confirmed"
    assert database.version() == ["lost0001"]
    assert diagnosis.stamp_safe == [fmc.status().databases[0].database]
    diagnosis = fmc.doctor(fix=True)
    assert diagnosis.exit_code == 0
    assert database.version() == ["a2"]
    assert diagnosis.changed and "lost0001 -> a2" in diagnosis.changed[0]
