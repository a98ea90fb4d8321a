"""Packaging for flask-migrate-compat (see README.rst)."""
import os

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py
from setuptools.command.develop import develop

HERE = os.path.dirname(os.path.abspath(__file__))
# Installs the import hook that shims Flask-Script; must sit at the root of site-packages.
PTH_FILE = "flask_migrate_compat.pth"


class build_py_with_pth(build_py):
    """build_py that also puts ``flask_migrate_compat.pth`` at the root of the wheel
    (regular, from-sdist and PEP 660 editable wheels alike)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            # Editable wheels (setuptools >= 64) ignore build_lib; what lands in
            # install_lib (the unpacked editable wheel) is packed as it is.
            target = self.get_finalized_command("install").install_lib
        else:
            target = self.build_lib
        self.mkpath(target)
        self.copy_file(os.path.join(HERE, PTH_FILE), os.path.join(target, PTH_FILE),
                       preserve_mode=False)

    def get_outputs(self, include_bytecode=1):
        outputs = list(super().get_outputs(include_bytecode))
        if not getattr(self, "editable_mode", False):
            outputs.append(os.path.join(self.build_lib, PTH_FILE))
        return outputs


class develop_with_pth(develop):
    """Legacy ``setup.py develop`` (what pip runs for ``pip install -e .`` when it does
    not use PEP 660): put the .pth next to ``easy-install.pth``."""

    def run(self):
        super().run()
        install_dir = getattr(self, "install_dir", None)
        if install_dir and not getattr(self, "uninstall", False):
            self.copy_file(os.path.join(HERE, PTH_FILE), os.path.join(install_dir, PTH_FILE),
                           preserve_mode=False)


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
    cmdclass={"build_py": build_py_with_pth, "develop": develop_with_pth},
    entry_points={
        "console_scripts": ["flask-migrate-compat = flask_migrate_compat.__main__:main"],
    },
    python_requires=">=3.9",
    # Each lower bound is exactly what CI's "minimum" nox session installs and tests
    # (the last patch release of each oldest supported minor version; CHANGES.rst).
    install_requires=[
        "Flask>=2.2.5",
        "click>=8.1.3",
        "Flask-SQLAlchemy>=2.5.1",
        "SQLAlchemy>=1.4.54",
        "alembic>=1.9.4",
        # db modernize rewrites revision files keeping their formatting and comments;
        # 1.5 is the first release with wheels for every Python from 3.9 to 3.13.
        "libcst>=1.5.0",
        # SQLite migration lock on Windows; POSIX uses fcntl.flock (see lock.py).
        "filelock>=3.0; sys_platform == 'win32'",
    ],
    extras_require={
        "script": ["Flask-Script>=2.0.6"],
        "postgresql": ["psycopg[binary]>=3.1", "alembic-postgresql-enum>=1.1"],
        "mysql": ["PyMySQL>=1.0"],
        "test": [
            "pytest>=7",
            "pytest-xdist>=3.3",  # setup.cfg runs the suite on several workers
            "Flask-Script>=2.0.6",
            "Flask-Script-NG>=2.1",
            "psycopg[binary]>=3.1",
            "alembic-postgresql-enum>=1.1",
            "PyMySQL>=1.0",
            "nox>=2024.3",
            "build>=1.0",  # tests/test_import_hook.py builds the wheel and the sdist
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
