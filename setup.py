"""Packaging for flask-migrate-compat (see README.rst)."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def read(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return f.read()


setup(
    name="flask-migrate-compat",
    version="1.0.0",
    description=(
        "Flask-Migrate drop-in that keeps Flask-Script manage.py 'db' commands and "
        "'flask db' working on Flask 3, Flask-SQLAlchemy 3, SQLAlchemy 2 and Alembic"
    ),
    long_description=read("README.rst"),
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=find_packages(include=["flask_migrate_compat", "flask_migrate_compat.*"]),
    package_data={"flask_migrate_compat": ["templates/*/*"]},
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.9",
    install_requires=[
        "Flask>=2.2",
        "click>=8.1",
        "Flask-SQLAlchemy>=2.5",
        "SQLAlchemy>=1.4",
        "alembic>=1.9",
    ],
    extras_require={
        "script": ["Flask-Script>=2.0.6"],
        "postgresql": ["psycopg[binary]>=3.1"],
        "mysql": ["PyMySQL>=1.0"],
        "test": [
            "pytest>=7",
            "Flask-Script>=2.0.6",
            "psycopg[binary]>=3.1",
            "PyMySQL>=1.0",
            "nox>=2024.3",
        ],
    },
    classifiers=[
        "Framework :: Flask",
        "License :: OSI Approved :: MIT License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.9",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Topic :: Database",
    ],
)
