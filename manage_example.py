"""A legacy-style Flask-Script ``manage.py``, running on today's stack.

The only change from a 2018 original is the import line of ``Migrate`` and
``MigrateCommand`` (it used to be ``from flask_migrate import ...``)::

    python manage_example.py db upgrade        # the committed example_migrations/
    python manage_example.py seed              # a custom @manager.command
    python manage_example.py shell             # Flask-Script's shell, with db and models
    flask --app manage_example db current      # the same migrations, through Click

The database is ``example.db`` beside this file unless ``DATABASE_URL`` names another
(``postgresql+psycopg://user@host/dbname`` with SQLAlchemy 2 and the ``postgresql``
extra; ``postgresql+psycopg2://user@host/dbname`` with SQLAlchemy 1.4, which has no
psycopg 3 dialect, after ``pip install psycopg2-binary``); ``EXAMPLE_MIGRATIONS``
selects another migrations folder, for trying ``db init`` / ``db migrate`` from scratch.
"""
import os

from flask import Flask, jsonify
from flask_script import Manager, Shell
from flask_sqlalchemy import SQLAlchemy

from flask_migrate_compat import Migrate, MigrateCommand

HERE = os.path.dirname(os.path.abspath(__file__))

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ.get(
    "DATABASE_URL", "sqlite:///" + os.path.join(HERE, "example.db")
)
db = SQLAlchemy(app)
migrate = Migrate(
    app, db, directory=os.environ.get("EXAMPLE_MIGRATIONS", os.path.join(HERE, "example_migrations"))
)


class Author(db.Model):
    __tablename__ = "authors"
    id = db.Column(db.Integer, primary_key=True)
    name = db.Column(db.String(100), nullable=False, unique=True)
    books = db.relationship("Book", back_populates="author")


class Book(db.Model):
    __tablename__ = "books"
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(200), nullable=False)
    author_id = db.Column(db.Integer, db.ForeignKey("authors.id"), nullable=False)
    published = db.Column(db.Date, index=True)
    author = db.relationship("Author", back_populates="books")


@app.route("/")
def index():
    return jsonify(authors=db.session.query(Author).count(), books=db.session.query(Book).count())


manager = Manager(app)
manager.add_command("db", MigrateCommand)
manager.add_command("shell", Shell(make_context=lambda: dict(app=app, db=db, Author=Author, Book=Book)))


@manager.command
def seed():
    """Add an author and two books."""
    author = Author(name="Ursula K. Le Guin")
    db.session.add_all([Book(title="A Wizard of Earthsea", author=author),
                        Book(title="The Dispossessed", author=author)])
    db.session.commit()
    print(f"{db.session.query(Book).count()} books")


@manager.option("-n", "--name", dest="name", default="world", help="Who to greet.")
def hello(name):
    """Print a greeting (an @manager.option command)."""
    print(f"hello {name}")


if __name__ == "__main__":
    manager.run()
