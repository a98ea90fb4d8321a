"""The revision-graph cache: build Alembic's revision map without executing every
revision file.

Alembic learns each revision's ``revision``, ``down_revision``, ``branch_labels``,
``depends_on`` and docstring by executing the file as a module, on every command. At
1000 revisions that is about half of what ``db upgrade`` at head or ``db current``
costs, although those commands need only the graph. This module keeps in one file
those values and the revision map Alembic built from them (each Script's attributes
and the map's, as Alembic's build left them), and gives Alembic that map, already
built, of :class:`~alembic.script.Script` objects whose ``module`` is a
:class:`LazyModule`: the file is executed only when something asks for more than the
graph (its ``upgrade()``/``downgrade()`` when the revision runs, or any other
attribute).

Never stale
    The cache is used only when its key matches, and the key is computed from what is
    on disk at every command: the *content* (not the modification time) of every file
    under every version location (``__pycache__`` folders aside), the relative paths of
    those files, the version locations themselves, ``script.py.mako``, and the
    versions of this package, Alembic and Python. Modification times are not trusted:
    two edits within one clock tick keep the same mtime and size, a ``git checkout``
    or ``tar``/``rsync -t`` can give another file the old mtime, and reproducible
    image builds set every mtime to one value. Hashing the files' bytes costs a small
    fraction of executing them. The hash is the one Python's hash-based ``.pyc``
    files are checked with (:func:`importlib.util.source_hash`, 64 bits): no
    OpenSSL to load, and an accidental collision is as unlikely as theirs.

    A file is cached only when its graph values are plain literals assigned once at
    module level (checked on its syntax tree) and equal what executing it gave:
    values computed at run time could change with identical bytes. When any file
    does not qualify, or the load warned or failed, no cache is written.

Where it lives
    Beside the script directory's bytecode: ``<script directory>/__pycache__/``, named
    with the interpreter's cache tag, as Python places ``env.py``'s compiled code
    (:func:`importlib.util.cache_from_source`, so ``PYTHONPYCACHEPREFIX`` moves it
    too), and ending in ``.pyc``. That folder exists already once a command ran
    (Alembic imports ``env.py``), every standard ``.gitignore`` ignores it by its
    name (``__pycache__/``) or by bytecode's suffix (``*.pyc``), Alembic skips it when it
    lists revision files, and tools that clean bytecode clean this too (the next
    command rebuilds it). It is written to a temporary file and moved into place
    (:func:`os.replace`), so concurrent commands never see half a file; a folder that
    cannot be written, or a cache that cannot be read or fails its own checksum
    (damaged on disk, edited), means the full load, silently.

Set ``FLASK_MIGRATE_COMPAT_NO_CACHE=1`` to turn it off (no read, no write).

Checked against Alembic 1.9.4 and 1.20.1: it relies on ``ScriptDirectory``'s
``_version_locations``, ``sourceless`` and ``recursive_version_locations`` (absent
before 1.10: not recursive), ``RevisionMap(generator)`` keeping what its build
computes in the instance's ``__dict__`` (memoized attributes, ``_revision_map``
among them), ``Script`` keeping its state in its ``__dict__``, and
``alembic.util.load_python_file``; anything missing means the full load. Alembic's
version is part of the key, so a cache is only ever read by the Alembic whose build
wrote it.
"""
from __future__ import annotations

import os
import sys
import types
import typing as t
from importlib.util import cache_from_source, source_hash

#: Set to anything but ``""``/``"0"`` to turn the cache off.
NO_CACHE_ENV = "FLASK_MIGRATE_COMPAT_NO_CACHE"

#: Bumped whenever the file's layout or the meaning of its key changes.
FORMAT = 2
#: The file starts with the checksum (importlib.util.source_hash) of the rest.
_DIGEST_SIZE = 8

#: The module attributes Alembic reads to build the graph (``Script.__init__``,
#: ``Script.longdoc``).
GRAPH_NAMES = ("revision", "down_revision", "branch_labels", "depends_on")
#: Names whose use makes a file's graph values impossible to prove from its text.
_DYNAMIC_NAMES = frozenset((
    "globals", "vars", "locals", "setattr", "delattr", "exec", "eval", "__import__",
    "__doc__", "_alembic_source_encoding",
))
_MISSING = object()


def enabled() -> bool:
    """Whether the cache may be used (``FLASK_MIGRATE_COMPAT_NO_CACHE`` unset or 0)."""
    return os.environ.get(NO_CACHE_ENV, "") in ("", "0")


# -- what is on disk ------------------------------------------------------------------


def _locations(script: t.Any) -> list[str] | None:
    """The absolute version locations of ``script`` (a ScriptDirectory), or ``None``
    when this Alembic's ScriptDirectory is not one this module understands."""
    try:
        locations = script._version_locations
    except Exception:  # noqa: BLE001 - any surprise: no cache
        return None
    return [os.fspath(location) for location in locations]


def _walk(location: str) -> list[tuple[str, str, bool]]:
    """``(relative path, absolute path, is a symbolic link)`` of every file under
    ``location``, sub-folders included (whether or not Alembic reads them: a change
    anywhere rebuilds),
    ``__pycache__`` folders and symbolic links to folders left out, as Alembic's own
    walk leaves them. Sorted, so the key does not depend on the directory's order."""
    found: list[tuple[str, str, bool]] = []
    pending = [("", location)]
    while pending:
        relative, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                name = relative + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        pending.append((name + "/", entry.path))
                else:
                    found.append((name, entry.path, entry.is_symlink()))
    found.sort()
    return found


#: The first read of a file asks for this much: revision files are a few kilobytes.
_READ_SIZE = 1 << 16


def _read(path: str) -> bytes:
    """The bytes of a file: ``os`` calls (an ``open()`` file object per revision file
    costs more than the read), and no ``stat`` (its three nanosecond times cost
    more than the read too). A file shorter than :data:`_READ_SIZE` takes one read;
    should a read ever return less than the whole of a shorter file, the key differs
    from the cache's: a full load, never a stale answer."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) < _READ_SIZE:
            return data
        chunks = [data]
        while chunks[-1]:
            chunks.append(os.read(fd, _READ_SIZE))
        return b"".join(chunks)
    finally:
        os.close(fd)


class Snapshot:
    """What is on disk now: the key and each revision file's bytes.

    :ivar key: the digest that a cache must hold to be used.
    :ivar files: absolute path (real path) -> ``(location index, relative path,
        bytes)`` for every file Alembic may load as a revision (``*.py`` outside
        ``__pycache__``, not ``__init__.py``, not an editor's ``.#`` lock file).
    """

    __slots__ = ("key", "files", "locations")

    def __init__(self, script: t.Any, locations: list[str]) -> None:
        from alembic import __version__ as alembic_version

        from . import __version__

        # Hashed at once: each file's bytes preceded by its name and length.
        parts = [repr((FORMAT, __version__, alembic_version, sys.version_info[:2],
                       sys.implementation.name,
                       getattr(script, "recursive_version_locations", False),
                       [os.path.relpath(location, script.dir)
                        for location in locations])).encode()]
        template = os.path.join(script.dir, "script.py.mako")
        try:
            data = _read(template)
            parts.append(b"template:%d\0" % len(data))
            parts.append(data)
        except OSError:
            parts.append(b"no template\0")
        self.locations = [os.path.realpath(location) for location in locations]
        # Without recursive_version_locations Alembic reads the top folder only; the
        # key covers sub-folders all the same.
        recursive = getattr(script, "recursive_version_locations", False)
        self.files: dict[str, tuple[int, str, bytes]] = {}
        for index, location in enumerate(locations):
            if not os.path.isdir(location):
                parts.append(f"{index}: absent\0".encode())
                continue
            # os.path.join(real location, relative), without its cost per file.
            prefix = os.path.join(self.locations[index], "")
            for relative, path, link in _walk(location):
                data = _read(path)
                parts.append(f"{index}:{relative}:{len(data)}\0".encode())
                parts.append(data)
                if relative.endswith(".py"):
                    folder, _, name = relative.rpartition("/")
                    if not name.startswith((".#", "__init__")) and (recursive or not folder):
                        # Alembic names a revision file by its real path.
                        real = os.path.realpath(path) if link else prefix + relative
                        self.files[real] = (index, relative, data)
        self.key = source_hash(b"".join(parts))


def cache_path(script: t.Any) -> str | None:
    """Where the cache of ``script`` (a ScriptDirectory) lives: in the bytecode
    folder of its directory, named with the interpreter's cache tag; ``None`` when
    the interpreter writes no bytecode cache at all (no cache tag)."""
    try:
        pyc = cache_from_source(
            os.path.join(os.path.abspath(script.dir), "flask_migrate_compat_revisions.py"))
    except NotImplementedError:
        return None
    # Ending in ".pyc" too: the .gitignore files that name bytecode by its suffix
    # ("*.pyc", "*.py[cod]") and not by its folder ignore it as well. No import ever
    # reads it: Python looks only for "<module>.<tag>.pyc".
    return pyc[:-len(".pyc")] + ".graph.pyc"


# -- reading ----------------------------------------------------------------------------


class LazyModule(types.ModuleType):
    """A revision file's module that holds only its graph values until anything else
    is asked of it; then the file is executed (``alembic.util.load_python_file``, as
    Alembic loads it) and the answer comes from the real module, which also replaces
    this one on the :class:`~alembic.script.Script`.

    Made by :func:`load` (1000 of them cost less without an ``__init__`` of their
    own), a module named as Alembic would name it, holding:

    * the graph values the file defines (:data:`GRAPH_NAMES`, and ``__doc__``); a
      graph name absent from it is absent from the file;
    * ``__file__``: the file;
    * ``_fmc_script``: the :class:`~alembic.script.Script` whose module it is.
    """

    def __getattr__(self, name: str) -> t.Any:
        if name in GRAPH_NAMES or name == "_alembic_source_encoding":
            raise AttributeError(name)  # known to be absent from the file
        return getattr(self._fmc_load(), name)

    def _fmc_load(self) -> types.ModuleType:
        from alembic.util import load_python_file

        from .errors import MigrateError

        path = self.__dict__["__file__"]
        module = load_python_file(os.path.dirname(path), os.path.basename(path))
        for name in (*GRAPH_NAMES, "__doc__"):
            if getattr(module, name, _MISSING) != self.__dict__.get(name, _MISSING):
                raise MigrateError(
                    f"revision file {path} changed while the command ran ({name} is "
                    "not what it was when the command started): run the command again"
                )
        script = self.__dict__["_fmc_script"]
        if script is not None and script.module is self:
            script.module = module
        return module


def load(script: t.Any, snapshot: Snapshot, path: str) -> t.Any | None:
    """The revision map a cache file matching ``snapshot`` holds, built as Alembic
    built it when the file was written; ``None`` when the file is absent,
    unreadable, not what its checksum says, of another key or not understood.

    :returns: an :class:`alembic.script.revision.RevisionMap` whose map is already
        built (Alembic's memoized attributes set), of :class:`~alembic.script.Script`
        objects in the order Alembic's own load gave them.
    """
    import gc
    import marshal

    from alembic.script import Script
    from alembic.script.revision import RevisionMap

    # Many small objects at once: no garbage collection can find anything to free
    # among them, so none runs while they are made.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with open(path, "rb") as f:
            stored = f.read()
        # The file's own checksum first: a cache damaged on disk, or edited, whose
        # key still matched would otherwise be believed.
        if source_hash(stored[_DIGEST_SIZE:]) != stored[:_DIGEST_SIZE]:
            return None
        fmt, key, entries, map_pairs, map_state = marshal.loads(stored[_DIGEST_SIZE:])
        if fmt != FORMAT or key != snapshot.key:
            return None
        scripts = []
        by_id = {}
        new_script, new_module = object.__new__, types.ModuleType.__new__
        init_module = types.ModuleType.__init__
        prefixes = [os.path.join(location, "") for location in snapshot.locations]
        for index, relative, link, name, values, state in entries:
            real = prefixes[index] + relative
            if link:  # Alembic names a revision file by its real path
                real = os.path.realpath(real)
            # The LazyModule, and the Script as Alembic left it after
            # building the map, made without their __init__: theirs (and the
            # map's) is the work the cache spares.
            module = new_module(LazyModule)
            init_module(module, name, values.get("__doc__"))
            found = new_script(Script)
            namespace = module.__dict__
            namespace.update(values)
            namespace["__file__"] = real
            namespace["_fmc_script"] = found
            found.__dict__.update(state)
            found.module = module
            found.path = real
            scripts.append(found)
            by_id[found.revision] = found
        revision_map = RevisionMap(lambda: scripts)
        revision_map.__dict__.update(map_state)
        revision_map.__dict__["_revision_map"] = {
            name: None if revision is None else by_id[revision]
            for name, revision in map_pairs}
    except Exception:  # noqa: BLE001 - unreadable, truncated, foreign: full load
        return None
    finally:
        if collecting:
            gc.enable()
    if len(scripts) != len(snapshot.files):
        return None
    return revision_map


# -- writing ----------------------------------------------------------------------------


def graph_values(source: bytes) -> dict[str, t.Any] | None:
    """The graph values a revision file's text defines, when they are plain literals
    assigned once at module level and nothing in the file could change them; ``None``
    otherwise (the file must then be executed to know them).

    :returns: the assigned names of :data:`GRAPH_NAMES` with their values, and
        ``__doc__`` (the module docstring, or ``None``).
    """
    import ast

    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    bindings: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in _DYNAMIC_NAMES:
                return None
            if node.id in GRAPH_NAMES and not isinstance(node.ctx, ast.Load):
                bindings[node.id] = bindings.get(node.id, 0) + 1
        elif isinstance(node, (ast.Global, ast.Nonlocal, ast.alias)):
            names = node.names if not isinstance(node, ast.alias) else \
                [node.asname or node.name.partition(".")[0]]
            if "*" in names or set(names) & set(GRAPH_NAMES):
                return None
        elif isinstance(node, ast.Attribute) and node.attr in ("modules", "__dict__"):
            return None  # sys.modules[__name__].x = ..., module.__dict__[...]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and node.name in GRAPH_NAMES:
            return None
    values: dict[str, t.Any] = {"__doc__": ast.get_docstring(tree, clean=False)}
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in GRAPH_NAMES:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                return None
    if any(count != 1 or name not in values for name, count in bindings.items()):
        return None
    return values


def store(snapshot: Snapshot, revision_map: t.Any, scripts: list[t.Any], path: str
          ) -> bool:
    """Write the cache for ``revision_map`` (an Alembic RevisionMap just built from
    ``scripts``, what Alembic's full load gave, in order) when every one of them can
    be cached; silently nothing when not, or when the folder cannot be written.

    What is kept of each :class:`~alembic.script.Script` and of the map is their
    attributes as Alembic's build left them, whatever they are, so long as they are
    plain data (no object of Alembic's but the Scripts the map names): the key holds
    Alembic's version, and the same files give the same build.

    :returns: whether the cache was written.
    """
    import marshal

    entries = []
    if len(scripts) != len(snapshot.files):
        return False
    ids = {id(found): found.revision for found in scripts}
    try:
        map_state = dict(vars(revision_map))
        built = map_state.pop("_revision_map")
        map_state.pop("_generator", None)
        map_pairs = [(name, None if found is None else ids[id(found)])
                     for name, found in built.items()]
    except (KeyError, TypeError):
        return False  # not built, or holding something else than these Scripts
    for found in scripts:
        on_disk = snapshot.files.get(found.path)
        if on_disk is None:
            return False  # Alembic loaded a file the snapshot does not hold
        values = graph_values(on_disk[2])
        module = found.module
        if values is None or "revision" not in values or any(
                getattr(module, name, _MISSING) != values.get(name, _MISSING)
                for name in (*GRAPH_NAMES, "__doc__")):
            return False  # its values are not the literals of the bytes hashed
        # Paths relative to their version location: a moved project keeps its cache.
        link = found.path != os.path.join(snapshot.locations[on_disk[0]], on_disk[1])
        state = {name: value for name, value in vars(found).items()
                 if name not in ("module", "path")}
        entries.append((on_disk[0], on_disk[1], link, module.__name__, values, state))
    try:
        data = marshal.dumps((FORMAT, snapshot.key, entries, map_pairs, map_state))
        data = source_hash(data) + data
    except ValueError:
        return False  # a value marshal cannot hold: not plain data
    folder = os.path.dirname(path)
    temporary = f"{path[:-len('.pyc')]}.{os.getpid()}.{os.urandom(4).hex()}.tmp.pyc"
    try:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with open(fd, "wb") as f:
                f.write(data)
            os.replace(temporary, path)  # atomic: readers see the old file or this one
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
    except OSError:
        return False  # read-only folder, full disk...: the full load next time too
    return True


# -- the one entry point ------------------------------------------------------------------


def attach(script: t.Any) -> t.Callable[[], bool] | None:
    """Give ``script`` (a fresh ScriptDirectory whose revision map was not built yet)
    the cached graph when the cache matches what is on disk; otherwise let Alembic
    load every file as usual, recording what it loads.

    :returns: after a full load, a function to call once the revision map was built
        without error or warning: it writes the cache (and returns whether it did);
        ``None`` when the cache was used, or is off or unusable here.
    """
    if not enabled() or getattr(script, "sourceless", False):
        return None  # sourceless: .pyc revision files, left to Alembic
    try:
        from alembic.script.revision import RevisionMap

        locations = _locations(script)
        path = cache_path(script)
        if locations is None or path is None:
            return None
        snapshot = Snapshot(script, locations)
    except Exception:  # noqa: BLE001 - e.g. an unreadable file: Alembic will say
        return None
    revision_map = load(script, snapshot, path)
    if revision_map is not None:
        script.revision_map = revision_map
        return None
    recorded: list[t.Any] = []
    full_load = script._load_revisions

    def recording() -> t.Iterator[t.Any]:
        for found in full_load():
            recorded.append(found)
            yield found

    script.revision_map = RevisionMap(recording)
    return lambda: store(snapshot, script.revision_map, recorded, path)
