"""``db modernize``: find the SQLAlchemy 1.x idioms of revision files, and rewrite them.

Revision scripts written for SQLAlchemy 1.x often run SQL through the connection
(``op.get_bind()``) in ways SQLAlchemy 2.0 removed: a plain SQL string given to
``execute()``, bind parameters as keyword arguments, ``MetaData(bind=...)``,
``Table(..., autoload=True)``, ``select([...])``, ``table.select(whereclause)``,
``case([...])``, rows read by column name, ``engine.execute()``, and
``op.execute("COMMIT")`` to leave the migration's transaction. Each one stops
``db upgrade`` at its revision, one revision at a time. This module holds what is
known about them, in ONE table (:data:`IDIOMS`): the 1.x form, its SQLAlchemy 2 form,
and the errors SQLAlchemy 2 raises for it. The same table serves

* :func:`modernize_files` (``db modernize``): lists every use, one line each, and
  rewrites the files on request, keeping their formatting and comments (LibCST);
* :func:`files_needing_modernization` (``db doctor``'s finding);
* :func:`failure_hint` (the ``Error:`` line of a ``db upgrade`` that failed on one).

The rewrite is faithful or it is not done: what cannot be rewritten with the same
meaning gets a ``# TODO(flask-migrate-compat)`` comment and a report line, like the
converter does. A plain string given to ``op.execute()`` is fine (Alembic wraps it
in ``text()`` itself) and is left alone; only calls on a connection, a session or an
engine are rewritten. A file is written only when its rewrite compiles; a file LibCST
cannot parse is never touched.

LibCST is imported only when files are read (never when the package or a command
module is imported): it costs ~50 ms.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import re
import typing as t

#: What starts every TODO comment written into a revision file.
TODO_MARK = "TODO(flask-migrate-compat)"


@dataclasses.dataclass(frozen=True)
class Idiom:
    """One SQLAlchemy 1.x-only idiom.

    :ivar key: short identifier (``execute-string``).
    :ivar old: the 1.x form, as it is written in a revision file.
    :ivar new: its SQLAlchemy 2 form (what ``--write`` writes).
    :ivar errors: ``(exception class name, fragment of its message)`` pairs: what
        SQLAlchemy 2 raises when a revision runs the 1.x form.
    """

    key: str
    old: str
    new: str
    errors: tuple[tuple[str, str], ...] = ()

    def describe(self) -> str:
        return f"{self.old} -> {self.new}"


#: Every idiom, in the order a report lists them at one line.
IDIOMS: tuple[Idiom, ...] = (
    Idiom("engine-execute", "engine.execute(...)",
          "with engine.begin() as conn: conn.execute(...)",
          (("AttributeError", "'Engine' object has no attribute 'execute'"),)),
    Idiom("execute-commit", 'op.execute("COMMIT"), then statements',
          "with op.get_context().autocommit_block(): statements",
          (("DBAPIError", "unsafe use of new value"),
           ("DBAPIError", "cannot run inside a transaction block"))),
    Idiom("execute-string", 'conn.execute("SQL")', 'conn.execute(sa.text("SQL"))',
          (("ObjectNotExecutableError", "Not an executable object"),
           ("ArgumentError", "should be explicitly declared as text("))),
    Idiom("execute-params", "conn.execute(stmt, id=1)", 'conn.execute(stmt, {"id": 1})',
          (("TypeError", "execute() got an unexpected keyword argument"),
           ("TypeError", "execute() takes from"),
           ("ArgumentError", "List argument must consist only of dictionaries"))),
    Idiom("metadata-bind", "sa.MetaData(bind=conn)",
          "sa.MetaData(), and bind=conn where it is used (reflect, create_all...)",
          (("TypeError", "MetaData.__init__() got an unexpected keyword argument 'bind'"),
           ("ArgumentError", "expected schema argument to be a string"),
           ("TypeError", "missing 1 required positional argument: 'bind'"))),
    Idiom("table-autoload", "sa.Table(name, metadata, autoload=True)",
          "sa.Table(name, metadata, autoload_with=conn)",
          (("TypeError", "got 'autoload'"), ("ArgumentError", "got 'autoload'"))),
    Idiom("select-list", "sa.select([a, b]), stmt.with_only_columns([a, b])",
          "sa.select(a, b), stmt.with_only_columns(a, b)",
          (("ArgumentError", "columns clause element expected, got ["),
           ("ArgumentError", 'The "entities" argument to Select.with_only_columns()'))),
    Idiom("table-select", "table.select(whereclause)", "table.select().where(whereclause)",
          (("TypeError", "select() takes 1 positional argument but 2 were given"),)),
    Idiom("case-list", "sa.case([(condition, value)])", "sa.case((condition, value))",
          (("ArgumentError", 'The "whens" argument to case()'),)),
    Idiom("row-mapping", 'row["id"], row.keys(), dict(row)',
          'row._mapping["id"], row._mapping.keys(), dict(row._mapping)',
          (("TypeError", "tuple indices must be integers or slices, not"),
           ("AttributeError", "Could not locate column in row for column 'keys'"),
           ("TypeError", "cannot convert dictionary update sequence element"))),
)

_BY_KEY = {idiom.key: idiom for idiom in IDIOMS}

#: DB-API modules: what their connect() returns takes plain SQL strings.
_DBAPI_MODULES = frozenset(("sqlite3", "psycopg2", "psycopg", "pymysql", "MySQLdb",
                            "mysql.connector", "cx_Oracle", "oracledb", "pyodbc"))

#: Words one of which a file must contain to be worth parsing: a file without any
#: holds none of the idioms (most revision files are ``op.*`` calls only).
_TRIGGERS = re.compile(r"execute|MetaData|autoload|select|case|with_only_columns|\.keys\(|dict\(")

# A ":name" that sqlalchemy.text() takes for a bind parameter (its own rule).
_TEXT_BIND = re.compile(r"(?<![:\w\\]):(\w+)(?!:)")
_PYFORMAT = re.compile(r"%\((\w+)\)s")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One use of an idiom.

    :ivar path: the revision file.
    :ivar line: the line where it starts (1-based).
    :ivar end_line: the line where it ends.
    :ivar idiom: the :class:`Idiom`.
    :ivar todo: why it cannot be rewritten faithfully (a ``# TODO`` marks it in the
        rewritten file), or ``None`` when ``--write`` rewrites it.
    """

    path: str
    line: int
    end_line: int
    idiom: Idiom
    todo: str | None = None

    def describe(self) -> str:
        """``path:line: <1.x form> -> <SQLAlchemy 2 form>`` (and the TODO reason)."""
        text = f"{_shown(self.path)}:{self.line}: {self.idiom.describe()}"
        if self.todo:
            text += f" (by hand: {self.todo})"
        return text


@dataclasses.dataclass
class FileResult:
    """What :func:`modernize_files` did with one file.

    :ivar path: the file.
    :ivar findings: the idioms found in it.
    :ivar diff: the unified diff of the rewrite (empty: nothing to rewrite).
    :ivar written: whether the rewrite was written.
    :ivar problem: why the file was not read or not written (does not parse, the
        rewrite does not compile), else ``None``.
    """

    path: str
    findings: list[Finding] = dataclasses.field(default_factory=list)
    diff: str = ""
    written: bool = False
    problem: str | None = None


@dataclasses.dataclass
class Modernization:
    """The result of :func:`modernize_files` (``db modernize``).

    :ivar files: one :class:`FileResult` per revision file read, in path order.
    :ivar write: whether rewriting was asked for.
    """

    files: list[FileResult]
    write: bool = False

    @property
    def findings(self) -> list[Finding]:
        return [finding for result in self.files for finding in result.findings]

    @property
    def todos(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.todo]

    @property
    def problems(self) -> list[FileResult]:
        return [result for result in self.files if result.problem]

    @property
    def exit_code(self) -> int:
        """0 when nothing is left to do; 1 when an idiom remains (without ``write``:
        any; with it: one it could not rewrite) or a file could not be read or
        written."""
        left = self.todos if self.write else self.findings
        return 1 if left or self.problems else 0

    def report(self, command: str = "db modernize") -> list[str]:
        """The text of ``db modernize``: a line per finding (or per file rewritten
        and per TODO left), a line per file with a problem, and a summary line.

        :param command: how the user runs this command, for the summary's advice
            (``python -m flask_migrate_compat modernize`` when it ran without the
            application).
        """
        lines: list[str] = []
        for result in self.files:
            if result.problem:
                lines.append(f"{_shown(result.path)}: {result.problem}")
            if self.write:
                if result.written:
                    count = sum(1 for f in result.findings if not f.todo)
                    lines.append(f"Rewrote {_shown(result.path)} ({_plural(count, 'change')})")
                lines.extend(f"TODO {f.describe()}" for f in result.findings if f.todo)
            else:
                lines.extend(f.describe() for f in result.findings)
        files = [r for r in self.files if r.findings]
        if self.write:
            written = [r for r in self.files if r.written]
            lines.append(
                f"Rewrote {_plural(len(written), 'revision file')}; "
                f"{_plural(len(self.todos), 'TODO')} left"
                + (f" (search for '{TODO_MARK}')" if self.todos else "")
                + (f"; {_plural(len(self.problems), 'file')} not rewritten"
                   if self.problems else "")
            )
        elif files:
            lines.append(
                f"{_plural(len(self.findings), 'SQLAlchemy 1.x idiom')} in "
                f"{_plural(len(files), 'revision file')}"
                + (f" ({len(self.todos)} to finish by hand)" if self.todos else "")
                + f": run '{command} --write' to rewrite them, review the diff, commit"
            )
        elif not self.problems:
            lines.append(f"No SQLAlchemy 1.x idiom in {_plural(len(self.files), 'revision file')}")
        return lines

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "exit_code": self.exit_code,
            "findings": [
                {"path": f.path, "line": f.line, "idiom": f.idiom.key, "old": f.idiom.old,
                 "new": f.idiom.new, "todo": f.todo} for f in self.findings
            ],
            "written": [r.path for r in self.files if r.written],
            "problems": [{"path": r.path, "problem": r.problem} for r in self.problems],
        }


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _shown(path: str) -> str:
    """A path relative to the working directory when it lies below it."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


# -- the files ----------------------------------------------------------------------


def revision_files(version_locations: t.Iterable[str], recursive: bool = False) -> list[str]:
    """The revision files of the version folders, as Alembic finds them (``*.py``;
    sub-folders only with ``recursive_version_locations``).

    :param version_locations: the folders.
    :param recursive: also walk their sub-folders.
    :returns: absolute paths, sorted.
    """
    found = set()
    for folder in version_locations:
        if not os.path.isdir(folder):
            continue
        walk = os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]
        for root, _dirs, names in walk:
            found.update(os.path.abspath(os.path.join(root, name)) for name in names
                         if name.endswith(".py") and not name.startswith(".#"))
    return sorted(found)


def modernize_files(paths: t.Iterable[str], write: bool = False,
                    diff: bool = False) -> Modernization:
    """Find the SQLAlchemy 1.x idioms of ``paths`` and, with ``write``, rewrite them.

    :param paths: revision files.
    :param write: write each file whose rewrite differs and compiles.
    :param diff: compute each rewrite's unified diff (:attr:`FileResult.diff`).
    :returns: a :class:`Modernization`.
    """
    results = []
    for path in paths:
        result = FileResult(path)
        results.append(result)
        try:
            with open(path, "rb") as f:
                source = f.read()
        except OSError as exc:
            result.problem = f"cannot read: {exc.strerror or exc}"
            continue
        if not _worth_parsing(source):
            continue
        try:
            new, result.findings = rewrite_source(source, path)
        except SyntaxError as exc:
            result.problem = f"not checked: it does not parse ({exc.msg}, line {exc.lineno})"
            continue
        if new == source:
            continue
        if diff:
            result.diff = _unified_diff(source, new, path)
        if write:
            try:
                compile(new, path, "exec", dont_inherit=True)
            except SyntaxError as exc:  # a bug of ours: never write a broken file
                result.problem = (f"not rewritten: the rewrite does not compile "
                                  f"({exc.msg}, line {exc.lineno})")
                continue
            with open(path, "wb") as f:
                f.write(new)
            result.written = True
    return Modernization(results, write=write)


def _worth_parsing(source: bytes) -> bool:
    """Whether a file may hold an idiom: a cheap test (the standard library's parser,
    ~20 times faster than LibCST with positions) that lets most revision files
    (``op.*`` calls only) skip the rewriter. A file ``ast`` cannot parse is worth
    it: LibCST then says what is wrong."""
    import ast

    if not _TRIGGERS.search(source.decode("utf-8", "replace")):
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return True
    # select/case imported under another name (from sqlalchemy import select as sel).
    aliases = {alias.asname: alias.name for node in ast.walk(tree)
               if isinstance(node, ast.ImportFrom) for alias in node.names if alias.asname}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        name = aliases.get(name, name)
        if name == "execute" and not (isinstance(func, ast.Attribute) and isinstance(
                func.value, ast.Name) and func.value.id == "op"):
            return True
        if name == "execute" and node.args and isinstance(node.args[0], ast.Constant) \
                and _is_commit(node.args[0].value):
            return True
        if name == "MetaData" and (node.args or node.keywords):
            return True
        if any(keyword.arg == "autoload" for keyword in node.keywords):
            return True
        if name in ("select", "case", "with_only_columns") and node.args and isinstance(
                node.args[0], (ast.List, ast.ListComp, ast.Tuple)):
            return True
        if name == "select" and isinstance(func, ast.Attribute) and (
                len(node.args) == 1 or any(k.arg == "whereclause" for k in node.keywords)):
            return True
    return False


def _is_commit(value: t.Any) -> bool:
    """Whether a SQL string is a bare COMMIT (the 1.x way out of the migration's
    transaction, for statements PostgreSQL refuses inside one)."""
    return isinstance(value, str) and value.strip().rstrip(";").strip().upper() == "COMMIT"


def files_needing_modernization(paths: t.Iterable[str]) -> tuple[int, int]:
    """``(files, findings)``: how many of ``paths`` use an idiom, and how many uses
    there are (``db doctor``'s finding)."""
    result = modernize_files(paths)
    return len([r for r in result.files if r.findings]), len(result.findings)


def _unified_diff(old: bytes, new: bytes, path: str) -> str:
    shown = _shown(path)
    return "".join(difflib.unified_diff(
        old.decode("utf-8", "replace").splitlines(keepends=True),
        new.decode("utf-8", "replace").splitlines(keepends=True),
        fromfile=shown if os.path.isabs(shown) else f"a/{shown}",
        tofile=shown if os.path.isabs(shown) else f"b/{shown}",
    ))


# -- the upgrade error line -----------------------------------------------------------


def failure_hint(exc: BaseException) -> str | None:
    """What to say when a revision failed on one of the idioms.

    The innermost frame of a revision file in the traceback gives the file and the
    line; the idiom is the one found on that line (by the same detector as
    ``db modernize``), else the one whose SQLAlchemy 2 error ``exc`` is.

    :param exc: the exception a revision's ``upgrade()``/``downgrade()`` raised.
    :returns: ``path, line N: <1.x form> is SQLAlchemy 1.x (SQLAlchemy 2: <new
        form>); run 'db modernize' ...``, or ``None`` when ``exc`` is not one of
        those errors.
    """
    by_error = [idiom for idiom in IDIOMS if _raised_by(exc, idiom)]
    if not by_error:
        return None
    tb = exc.__traceback__
    where = None
    while tb is not None:
        f_globals = tb.tb_frame.f_globals
        if "down_revision" in f_globals and isinstance(f_globals.get("revision"), str):
            where = (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
        tb = tb.tb_next
    if where is None:
        return None
    path, line = where
    idiom = by_error[0]
    try:
        with open(path, "rb") as f:
            _new, findings = rewrite_source(f.read(), path)
    except (OSError, SyntaxError, ImportError):
        findings = []
    matching = [f for f in findings if f.line <= line <= f.end_line and f.idiom in by_error]
    if matching:  # the detector agrees: the innermost use on that line
        idiom = max(matching, key=lambda f: f.line).idiom
    detail = " ".join(str(exc).split())
    if len(detail) > 120:
        detail = detail[:117] + "..."
    return (
        f"{path}, line {line}: {idiom.old} is SQLAlchemy 1.x, which SQLAlchemy 2 "
        f"rejects ({type(exc).__name__}: {detail}); its SQLAlchemy 2 form is "
        f"{idiom.new}: run 'db modernize' to list every such line, "
        "'db modernize --write' to rewrite them"
    )


def _raised_by(exc: BaseException, idiom: Idiom) -> bool:
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc)
    return any(name in names and fragment in text for name, fragment in idiom.errors)


# -- the rewriter (LibCST) -------------------------------------------------------------


def _libcst() -> t.Any:
    """LibCST, imported on first use (it is a dependency of this package; an
    environment that lost it gets one line saying what to install, not a traceback)."""
    try:
        import libcst
    except ImportError:
        from .errors import MigrateError

        raise MigrateError(
            "reading revision files for SQLAlchemy 1.x idioms needs LibCST, a dependency "
            "of flask-migrate-compat that this environment lacks: pip install 'libcst>=1.5'"
        ) from None
    return libcst


def rewrite_source(source: bytes | str, path: str = "<revision>") -> tuple[bytes, list[Finding]]:
    """Rewrite the SQLAlchemy 1.x idioms of one file's source.

    :param source: the file's content.
    :param path: the file's path (for the findings).
    :returns: ``(new source, findings)``; the new source is byte-for-byte the old one
        where nothing was rewritten.
    :raises SyntaxError: the source does not parse.
    :raises MigrateError: LibCST is not installed.
    """
    cst = _libcst()

    if isinstance(source, str):
        source = source.encode("utf-8")
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        error = SyntaxError(exc.message)
        error.lineno = exc.raw_line
        raise error from None
    wrapper = cst.MetadataWrapper(module)
    rewriter = _make_rewriter(path)
    new_module = wrapper.visit(rewriter)
    findings = sorted(rewriter.findings, key=lambda f: (f.line, f.idiom.key))
    if not any(not f.todo for f in findings) and not rewriter.todo_added:
        return source, findings
    return new_module.bytes, findings


_rewriter_class: list[type] = []


def _make_rewriter(path: str) -> t.Any:
    if not _rewriter_class:
        _rewriter_class.append(_build_rewriter_class())
    return _rewriter_class[0](path)


def _build_rewriter_class() -> type:  # noqa: C901 - one visitor, one idiom per method
    import libcst as cst
    from libcst.metadata import PositionProvider

    conventional = {"conn": "bind", "connection": "bind", "bind": "bind",
                    "session": "session", "engine": "engine"}

    def dotted(node: t.Any) -> str | None:
        if isinstance(node, cst.Name):
            return node.value
        if isinstance(node, cst.Attribute):
            base = dotted(node.value)
            return None if base is None else f"{base}.{node.attr.value}"
        return None

    def callee_name(call: t.Any) -> str | None:
        func = call.func
        if isinstance(func, cst.Name):
            return func.value
        if isinstance(func, cst.Attribute):
            return func.attr.value
        return None

    def is_string(node: t.Any) -> bool:
        return isinstance(node, (cst.SimpleString, cst.ConcatenatedString,
                                 cst.FormattedString))

    def literal_text(node: t.Any) -> str | None:
        """The value of a string literal without f-string parts; None otherwise."""
        if isinstance(node, cst.SimpleString):
            value = node.evaluated_value
            return value if isinstance(value, str) else None
        if isinstance(node, cst.ConcatenatedString):
            left, right = literal_text(node.left), literal_text(node.right)
            return None if left is None or right is None else left + right
        return None

    def map_string(node: t.Any, change: t.Callable[[str], str]) -> t.Any:
        """Apply ``change`` to the source text of each part of a string literal."""
        if isinstance(node, cst.SimpleString):
            return node.with_changes(value=change(node.value))
        if isinstance(node, cst.ConcatenatedString):
            return node.with_changes(left=map_string(node.left, change),
                                     right=map_string(node.right, change))
        return node

    def has_comment(node: t.Any) -> bool:
        if not isinstance(node, cst.CSTNode):
            return False
        return "#" in cst.Module(body=[]).code_for_node(node)

    def no_comma(arg: t.Any) -> t.Any:
        return arg.with_changes(comma=cst.MaybeSentinel.DEFAULT)

    class Rewriter(cst.CSTTransformer):
        METADATA_DEPENDENCIES = (PositionProvider,)

        def __init__(self, path: str) -> None:
            super().__init__()
            self.path = path
            self.findings: list[Finding] = []
            self.todo_added = False
            self.scopes: list[dict[str, tuple[str, t.Any]]] = [{}]
            self.statements: list[tuple[t.Any, list[str]]] = []
            self.engine_statements: dict[int, t.Any] = {}
            self.sa_alias: str | None = None
            self.text_name: str | None = None
            self.needs_sa_import = False
            self.names: set[str] = set()
            self.statement_calls: set[int] = set()
            self.sa_names: dict[str, str] = {}  # name in the file -> sqlalchemy's

        # -- bookkeeping ----------------------------------------------------------

        def visit_Module(self, node: t.Any) -> None:
            for statement in node.body:
                if not isinstance(statement, cst.SimpleStatementLine):
                    continue
                for small in statement.body:
                    if isinstance(small, cst.Import):
                        for alias in small.names:
                            if dotted(alias.name) == "sqlalchemy":
                                self.sa_alias = (alias.asname.name.value
                                                 if alias.asname else "sqlalchemy")
                    elif isinstance(small, cst.ImportFrom) and small.module is not None \
                            and (dotted(small.module) or "").startswith("sqlalchemy") \
                            and not isinstance(small.names, cst.ImportStar):
                        for alias in small.names:
                            self.sa_names[alias.asname.name.value if alias.asname
                                          else alias.name.value] = alias.name.value
                            if alias.name.value == "text":
                                self.text_name = (alias.asname.name.value
                                                  if alias.asname else "text")
            names = self.names

            class Names(cst.CSTVisitor):
                def visit_Name(self, name: t.Any) -> None:
                    names.add(name.value)

            node.visit(Names())

        def position(self, node: t.Any) -> tuple[int, int]:
            where = self.get_metadata(PositionProvider, node)
            return where.start.line, where.end.line

        def found(self, node: t.Any, key: str, todo: str | None = None) -> None:
            line, end = self.position(node)
            self.findings.append(Finding(self.path, line, end, _BY_KEY[key], todo))
            if todo and self.statements:
                self.statements[-1][1].append(f"{key}: {todo}")

        def kind(self, node: t.Any) -> str | None:
            """What an expression holds: bind (a connection), session, engine,
            metadata, table, result, rows, row, sql (a SQL string), or None."""
            return self.kind_and_bind(node)[0]

        def kind_and_bind(self, node: t.Any) -> tuple[str | None, t.Any]:
            if isinstance(node, cst.Name):
                for scope in reversed(self.scopes):
                    if node.value in scope:
                        return scope[node.value]
                return conventional.get(node.value), None
            if is_string(node):
                return "sql", node
            if isinstance(node, cst.BinaryOperation) and isinstance(
                    node.operator, (cst.Modulo, cst.Add)) and self.kind(node.left) == "sql":
                return "sql", None
            if isinstance(node, cst.Attribute):
                if node.attr.value == "engine":
                    return "engine", None
                if node.attr.value == "session":
                    return "session", None
                return None, None
            if isinstance(node, cst.Subscript) and self.kind(node.value) == "rows" \
                    and len(node.slice) == 1 and isinstance(node.slice[0].slice, cst.Index) \
                    and isinstance(node.slice[0].slice.value, (cst.Integer, cst.UnaryOperation)):
                return "row", None
            if not isinstance(node, cst.Call):
                return None, None
            name = callee_name(node)
            receiver = node.func.value if isinstance(node.func, cst.Attribute) else None
            receiver_kind = self.kind(receiver) if receiver is not None else None
            if name == "format" and receiver_kind == "sql":
                return "sql", None
            if name == "get_bind" or (name == "connect" and receiver is not None
                                      and dotted(receiver) not in _DBAPI_MODULES):
                return "bind", None
            if name in ("Session", "sessionmaker") or (
                    isinstance(node.func, cst.Call) and callee_name(node.func) == "sessionmaker"):
                return "session", None
            if name in ("create_engine", "get_engine", "engine_from_config"):
                return "engine", None
            if name == "execute" and receiver_kind in ("bind", "session", "engine"):
                return "result", None
            if name in ("fetchall", "fetchmany", "all") and receiver_kind == "result":
                return "rows", None
            if name in ("list", "tuple", "sorted", "reversed") and isinstance(node.func, cst.Name) \
                    and len(node.args) == 1 and self.kind(node.args[0].value) in ("rows", "result"):
                return "rows", None
            if name in ("fetchone", "first", "one", "one_or_none") \
                    and receiver_kind == "result":
                return "row", None
            if name == "MetaData":
                return "metadata", self.metadata_bind(node)
            if name == "Table" and len(node.args) > 1:
                meta_kind, meta_bind = self.kind_and_bind(node.args[1].value)
                if meta_kind == "metadata":
                    return "table", meta_bind
            return None, None

        def metadata_bind(self, call: t.Any) -> t.Any:
            for i, arg in enumerate(call.args):
                if (arg.keyword is not None and arg.keyword.value == "bind") or (
                        i == 0 and arg.keyword is None and not arg.star):
                    return arg.value
            return None

        def remember(self, target: t.Any, value: t.Any) -> None:
            if isinstance(target, cst.Name):
                self.scopes[-1][target.value] = self.kind_and_bind(value)

        def remember_rows(self, target: t.Any, iterable: t.Any) -> None:
            if isinstance(target, cst.Name) and self.kind(iterable) in ("result", "rows"):
                self.scopes[-1][target.value] = ("row", None)

        def visit_FunctionDef(self, node: t.Any) -> None:
            self.scopes.append({})

        def leave_FunctionDef(self, original: t.Any, updated: t.Any) -> t.Any:
            self.scopes.pop()
            return self.leave_statement(original, updated)

        def leave_Assign(self, original: t.Any, updated: t.Any) -> t.Any:
            for target in original.targets:
                self.remember(target.target, original.value)
            return updated

        def leave_AnnAssign(self, original: t.Any, updated: t.Any) -> t.Any:
            if original.value is not None:
                self.remember(original.target, original.value)
            return updated

        def visit_WithItem(self, node: t.Any) -> None:
            if node.asname is not None:
                item_kind = self.kind(node.item)
                if item_kind is None and isinstance(node.item, cst.Call) \
                        and callee_name(node.item) == "begin":
                    item_kind = "bind"
                self.remember_kind(node.asname.name, item_kind)

        def remember_kind(self, target: t.Any, kind: str | None) -> None:
            if isinstance(target, cst.Name):
                self.scopes[-1][target.value] = (kind, None)

        def visit_For(self, node: t.Any) -> None:
            self.remember_rows(node.target, node.iter)
            self.enter_statement(node)

        def visit_CompFor(self, node: t.Any) -> None:
            self.remember_rows(node.target, node.iter)

        def _comprehension(self, node: t.Any) -> None:
            # The element is visited before its "for": bind the targets first.
            comp = node.for_in
            while comp is not None:
                self.remember_rows(comp.target, comp.iter)
                comp = comp.inner_for_in

        visit_ListComp = visit_SetComp = visit_GeneratorExp = visit_DictComp = _comprehension

        # -- statements and TODO comments -----------------------------------------

        def enter_statement(self, node: t.Any) -> None:
            self.statements.append((node, []))
            if isinstance(node, cst.SimpleStatementLine) and len(node.body) == 1 \
                    and isinstance(node.body[0], cst.Expr) \
                    and isinstance(node.body[0].value, cst.Call):
                self.statement_calls.add(id(node.body[0].value))

        def on_visit(self, node: t.Any) -> bool:
            if isinstance(node, (cst.SimpleStatementLine, cst.If, cst.While, cst.With,
                                 cst.Try, cst.ClassDef)) or (
                    isinstance(node, cst.FunctionDef)):
                self.enter_statement(node)
            return super().on_visit(node)

        def on_leave(self, original: t.Any, updated: t.Any) -> t.Any:
            result = super().on_leave(original, updated)
            if isinstance(original, (cst.SimpleStatementLine, cst.If, cst.While,
                                     cst.With, cst.Try, cst.ClassDef)):
                result = self.leave_statement(original, result)
            return result

        def leave_For(self, original: t.Any, updated: t.Any) -> t.Any:
            return self.leave_statement(original, updated)

        def leave_statement(self, original: t.Any, updated: t.Any) -> t.Any:
            if not self.statements or self.statements[-1][0] is not original:
                return updated
            _node, todos = self.statements.pop()
            if isinstance(updated, cst.SimpleStatementLine) \
                    and id(original) in self.engine_statements:
                updated = self.engine_block(original, updated)
            if not todos or not hasattr(updated, "leading_lines"):
                return updated
            existing = {line.comment.value for line in updated.leading_lines
                        if line.comment is not None}
            comments = [f"# {TODO_MARK}: {text}" for text in dict.fromkeys(todos)]
            added = [cst.EmptyLine(comment=cst.Comment(c)) for c in comments
                     if c not in existing]
            if not added:
                return updated
            self.todo_added = True
            return updated.with_changes(leading_lines=[*updated.leading_lines, *added])

        # -- the idioms -----------------------------------------------------------

        def text_call(self, value: t.Any) -> t.Any:
            if self.sa_alias is not None:
                func = cst.Attribute(value=cst.parse_expression(self.sa_alias),
                                     attr=cst.Name("text"))
            elif self.text_name is not None:
                func = cst.Name(self.text_name)
            else:
                self.needs_sa_import = True
                func = cst.Attribute(value=cst.Name("sa"), attr=cst.Name("text"))
            return cst.Call(func=func, args=[cst.Arg(value=value)])

        def leave_Call(self, original: t.Any, updated: t.Any) -> t.Any:
            name = callee_name(original)
            func = original.func
            if isinstance(func, cst.Name):
                name = self.sa_names.get(name, name)
            receiver = func.value if isinstance(func, cst.Attribute) else None
            if name == "execute" and receiver is not None:
                receiver_kind = self.kind(receiver)
                if receiver_kind in ("bind", "session", "engine"):
                    updated = self.execute_call(original, updated, receiver_kind)
            elif name == "MetaData":
                updated = self.metadata_call(original, updated)
            elif name == "Table":
                updated = self.table_call(original, updated)
            elif name in ("reflect", "create_all", "drop_all", "create", "drop") \
                    and receiver is not None:
                updated = self.bound_call(original, updated, receiver)
            elif name == "select" and receiver is not None and not self.sqlalchemy_module(
                    receiver):
                updated = self.table_select(original, updated)
            elif name in ("select", "case", "with_only_columns"):
                updated = self.list_call(original, updated, name)
            elif name == "dict" and isinstance(func, cst.Name) and len(original.args) == 1 \
                    and self.kind(original.args[0].value) == "row" \
                    and not original.args[0].star:
                self.found(original, "row-mapping")
                arg = updated.args[0]
                updated = updated.with_changes(args=[arg.with_changes(
                    value=cst.Attribute(value=arg.value, attr=cst.Name("_mapping")))])
            elif name in ("keys", "items", "values", "has_key") and receiver is not None \
                    and self.kind(receiver) == "row":
                self.found(original, "row-mapping")
                updated = updated.with_changes(func=updated.func.with_changes(
                    value=cst.Attribute(value=updated.func.value, attr=cst.Name("_mapping"))))
            return updated

        def execute_call(self, original: t.Any, updated: t.Any, receiver_kind: str) -> t.Any:
            args = list(updated.args)
            if not args or args[0].keyword is not None or args[0].star:
                return updated
            statement = original.args[0].value
            positional = [a for a in args[1:] if a.keyword is None and not a.star]
            keywords = [a for a in args[1:] if a.keyword is not None or a.star == "**"]
            if any(a.star == "*" for a in args[1:]):
                self.found(original, "execute-params", "parameters given with *args: "
                           "pass one dict, or a list of dicts")
                return updated
            allowed = {"execution_options", "bind_arguments", "parameters", "params"}
            params_kw = [a for a in keywords if a.star == "**" or a.keyword.value not in allowed]
            if receiver_kind == "engine":
                if id(original) in self.statement_calls and self.statements:
                    self.engine_statements[id(self.statements[-1][0])] = True
                    self.found(original, "engine-execute")
                else:
                    self.found(original, "engine-execute",
                               "its result is used: move the code that uses it into "
                               "'with engine.begin() as conn:' and call conn.execute()")
            is_sql, sql_node = self.kind_and_bind(statement)
            is_sql = is_sql == "sql"
            text_literal = literal_text(sql_node) if sql_node is not None else None
            named_literal = sql_node is not None and sql_node is not statement
            new_statement = args[0].value
            todo = None
            has_params = bool(params_kw or positional)
            if is_sql:
                if named_literal and has_params and _PYFORMAT.search(text_literal or ""):
                    text_literal = None  # its placeholders are where it is assigned
                elif text_literal is not None and has_params and _PYFORMAT.search(text_literal):
                    new_statement = map_string(
                        new_statement,
                        lambda s: _PYFORMAT.sub(r":\1", s).replace("%%", "%"))
                    text_literal = _PYFORMAT.sub(r":\1", text_literal).replace("%%", "%")
                if text_literal is None:
                    if has_params:
                        todo = ("SQL built at run time with parameters: wrap it in "
                                "text() and write its placeholders as :name")
                elif has_params and re.search(r"\?|%s", text_literal):
                    todo = ("positional placeholders (? or %s): write them as :name "
                            "and pass a dict")
                elif "%%" in text_literal:
                    todo = ("'%%' in the SQL: the driver made it '%' on PostgreSQL and "
                            "MySQL, text() keeps it: write '%' if it ran there")
                elif not has_params and _TEXT_BIND.search(text_literal):
                    todo = ("text() would read ':" + _TEXT_BIND.search(text_literal).group(1)
                            + "' as a bind parameter: escape the colon as '\\:'")
                if todo is not None:
                    self.found(original, "execute-string", todo)
                    return updated
                self.found(original, "execute-string")
                args[0] = args[0].with_changes(value=self.text_call(new_statement))
            if positional and not params_kw and len(positional) == 1:
                value = positional[0].value
                if isinstance(value, (cst.Tuple, cst.List, cst.SimpleString, cst.Integer)) \
                        and not (isinstance(value, cst.List) and all(
                            isinstance(e.value, cst.Dict) for e in value.elements)):
                    self.found(original, "execute-params",
                               "positional parameters: pass one dict (or a list of dicts) "
                               "keyed by the :name placeholders")
                return updated.with_changes(args=args)
            if positional and not params_kw:
                if all(isinstance(a.value, cst.Dict) for a in positional):
                    self.found(original, "execute-params")
                    elements = [cst.Element(value=a.value) for a in positional]
                    listed = cst.Arg(value=cst.List(elements=elements),
                                     comma=positional[-1].comma)
                    rest = [a for a in args[1:] if a not in positional]
                    return updated.with_changes(args=[args[0], listed, *rest])
                self.found(original, "execute-params",
                           "positional parameters: pass one dict (or a list of dicts) "
                           "keyed by the :name placeholders")
                return updated.with_changes(args=args)
            if not params_kw:
                return updated.with_changes(args=args)
            if positional:
                self.found(original, "execute-params",
                           "both positional and keyword parameters: merge them into "
                           "one dict")
                return updated.with_changes(args=args)
            self.found(original, "execute-params")
            if len(params_kw) == 1 and params_kw[0].star == "**":
                params_value = params_kw[0].value
            else:
                # One entry per keyword, each followed by what followed the keyword
                # (a keyword per line stays an entry per line).
                elements = []
                for i, a in enumerate(params_kw):
                    comma = a.comma if i < len(params_kw) - 1 else cst.MaybeSentinel.DEFAULT
                    if a.star == "**":
                        elements.append(cst.StarredDictElement(value=a.value, comma=comma))
                    else:
                        elements.append(cst.DictElement(
                            key=cst.SimpleString(f'"{a.keyword.value}"'), value=a.value,
                            comma=comma))
                params_value = cst.Dict(elements=elements)
            kept = [a for a in args[1:] if a not in params_kw]
            params_arg = cst.Arg(value=params_value, comma=params_kw[-1].comma,
                                 whitespace_after_arg=params_kw[-1].whitespace_after_arg)
            first = args[0]
            if kept:
                return updated.with_changes(args=[first, params_arg, *kept])
            return updated.with_changes(args=[first, params_arg])

        def engine_block(self, original: t.Any, updated: t.Any) -> t.Any:
            call = updated.body[0].value
            name = next(n for n in ("conn", "connection", "conn_", "conn2")
                        if n not in self.names)
            begin = cst.Call(func=cst.Attribute(value=call.func.value, attr=cst.Name("begin")))
            inner = cst.SimpleStatementLine(
                body=[cst.Expr(value=call.with_changes(func=cst.Attribute(
                    value=cst.Name(name), attr=cst.Name("execute"))))],
                trailing_whitespace=updated.trailing_whitespace)
            return cst.With(
                items=[cst.WithItem(item=begin, asname=cst.AsName(name=cst.Name(name)))],
                body=cst.IndentedBlock(body=[inner]),
                leading_lines=updated.leading_lines,
            )

        def metadata_call(self, original: t.Any, updated: t.Any) -> t.Any:
            bind = self.metadata_bind(original)
            if bind is None:
                return updated
            self.found(original, "metadata-bind")
            args = [a for a, o in zip(updated.args, original.args) if o.value is not bind]
            if args:
                args[-1] = no_comma(args[-1])
            return updated.with_changes(args=args)

        def table_call(self, original: t.Any, updated: t.Any) -> t.Any:
            keywords = {a.keyword.value: i for i, a in enumerate(original.args)
                        if a.keyword is not None}
            if "autoload" not in keywords:
                return updated
            args = list(updated.args)
            index = keywords["autoload"]
            if "autoload_with" in keywords:
                self.found(original, "table-autoload")
                deleted = args.pop(index)
                if args and index == len(args):
                    args[-1] = args[-1].with_changes(comma=deleted.comma)
                return updated.with_changes(args=args)
            meta_kind, bind = (self.kind_and_bind(original.args[1].value)
                               if len(original.args) > 1 else (None, None))
            if bind is None:
                self.found(original, "table-autoload",
                           "no bound MetaData to take the connection from: write "
                           "autoload_with=<the connection, e.g. op.get_bind()>")
                return updated
            self.found(original, "table-autoload")
            args[index] = args[index].with_changes(
                keyword=cst.Name("autoload_with"), value=bind)
            return updated.with_changes(args=args)

        def bound_call(self, original: t.Any, updated: t.Any, receiver: t.Any) -> t.Any:
            receiver_kind, bind = self.kind_and_bind(receiver)
            name = callee_name(original)
            if receiver_kind == "metadata" and name not in ("reflect", "create_all",
                                                             "drop_all"):
                return updated
            if receiver_kind == "table" and name not in ("create", "drop"):
                return updated
            if receiver_kind not in ("metadata", "table") or bind is None:
                return updated
            if any(a.keyword is None or a.keyword.value == "bind" for a in original.args):
                return updated
            self.found(original, "metadata-bind")
            bind_arg = cst.Arg(keyword=cst.Name("bind"), value=bind,
                               equal=cst.AssignEqual(
                                   whitespace_before=cst.SimpleWhitespace(""),
                                   whitespace_after=cst.SimpleWhitespace("")))
            return updated.with_changes(args=[bind_arg, *updated.args])

        def sqlalchemy_module(self, node: t.Any) -> bool:
            """Whether an expression names SQLAlchemy's module (sa, sqlalchemy.sql...)
            or Flask-SQLAlchemy's ``db``, which re-exports its functions."""
            base = dotted(node) or ""
            return base.split(".")[0] in ("sa", "sqlalchemy", "db", self.sa_alias) \
                or base.endswith(("sql", "expression"))

        def table_select(self, original: t.Any, updated: t.Any) -> t.Any:
            """``table.select(whereclause)`` -> ``table.select().where(whereclause)``."""
            args = list(updated.args)
            if len(args) != 1 or args[0].star or (
                    args[0].keyword is not None and args[0].keyword.value != "whereclause"):
                return updated
            self.found(original, "table-select")
            # The where clause keeps its layout, comments included: only the name of
            # the call around it changes.
            clause = args[0].with_changes(keyword=None, equal=cst.MaybeSentinel.DEFAULT)
            bare = updated.with_changes(args=[], whitespace_before_args=cst.SimpleWhitespace(""))
            return cst.Call(func=cst.Attribute(value=bare, attr=cst.Name("where")),
                            args=[clause], whitespace_before_args=updated.whitespace_before_args)

        def list_call(self, original: t.Any, updated: t.Any, name: str) -> t.Any:
            func = original.func
            if name == "with_only_columns":
                if not isinstance(func, cst.Attribute):
                    return updated
            elif isinstance(func, cst.Attribute):
                if not self.sqlalchemy_module(func.value):
                    return updated
            elif not isinstance(func, cst.Name) or self.sa_names.get(func.value) != name:
                return updated
            if not original.args or original.args[0].keyword is not None:
                return updated
            given = original.args[0].value
            # case(((cond, value), ...)): the whens as a tuple of tuples, which 1.x also
            # took; a single SQLAlchemy 2 when, case((cond, value)), is not one.
            whens_tuple = name == "case" and isinstance(given, cst.Tuple) and bool(
                given.elements) and all(isinstance(e.value, cst.Tuple) for e in given.elements)
            # with_only_columns((a, b)): columns are never tuples, so any tuple is a list.
            columns_tuple = name == "with_only_columns" and isinstance(given, cst.Tuple) \
                and bool(given.elements)
            if not (isinstance(given, (cst.List, cst.ListComp)) or whens_tuple
                    or columns_tuple):
                return updated
            key = "case-list" if name == "case" else "select-list"
            first = updated.args[0]
            rest = list(updated.args[1:])
            if name == "with_only_columns" and rest:
                self.found(original, key, "with_only_columns() with more arguments")
                return updated
            if name == "select":
                where = [a for a in rest if a.keyword is None
                         or a.keyword.value == "whereclause"]
                if len(rest) > 1 or (rest and not where):
                    self.found(original, key, "select() with more than a where clause: "
                               "write select(...).where(...).select_from(...) by hand")
                    return updated
            elif any(a.keyword is None for a in rest):
                self.found(original, key, "case() with a second positional argument")
                return updated
            self.found(original, key)
            call_changes: dict[str, t.Any] = {}
            if isinstance(first.value, cst.ListComp):
                new_args = [first.with_changes(star="*", comma=cst.MaybeSentinel.DEFAULT)]
            else:
                listed = first.value
                new_args = [cst.Arg(value=e.value, comma=e.comma) for e in listed.elements]
                # Keep the list's layout: what followed "[" follows "(", and what
                # preceded "]" precedes ")".
                if isinstance(listed, cst.List):
                    opening, closing = listed.lbracket, listed.rbracket
                else:
                    opening, closing = listed.lpar[0], listed.rpar[-1]
                call_changes["whitespace_before_args"] = opening.whitespace_after
                if new_args:
                    new_args[-1] = new_args[-1].with_changes(
                        whitespace_after_arg=closing.whitespace_before)
                    if isinstance(listed, cst.Tuple) and len(new_args) == 1 \
                            and not rest:  # (w,) -> w: no comma left alone
                        new_args[-1] = new_args[-1].with_changes(comma=cst.MaybeSentinel.DEFAULT)
            # What the rewrite drops: the comma after the list (and for select, the
            # where clause's own); never a comment.
            dropped = [first.comma, first.whitespace_after_arg]
            if name == "select":
                dropped += [node for a in rest[:1] for node in (a.comma, a.whitespace_after_arg)]
            if name == "case" and rest and new_args:
                # The call goes on after the whens: the list's closing layout gives way
                # to the comma that followed the list.
                dropped = [new_args[-1].comma, new_args[-1].whitespace_after_arg]
                new_args[-1] = new_args[-1].with_changes(
                    comma=first.comma, whitespace_after_arg=first.whitespace_after_arg)
            if any(has_comment(node) for node in dropped):
                self.findings.pop()
                self.found(original, key, "a comment stands where the rewrite would "
                           "remove the list: rewrite it by hand")
                return updated
            if name != "select":
                return updated.with_changes(args=[*new_args, *rest], **call_changes)
            new_call = updated.with_changes(args=new_args, **call_changes)
            if rest:
                return cst.Call(func=cst.Attribute(value=new_call, attr=cst.Name("where")),
                                args=[cst.Arg(value=rest[0].value)])
            return new_call

        def commit_statement(self, statement: t.Any) -> bool:
            """Whether a statement is ``op.execute("COMMIT")``."""
            if not (isinstance(statement, cst.SimpleStatementLine)
                    and len(statement.body) == 1 and isinstance(statement.body[0], cst.Expr)):
                return False
            call = statement.body[0].value
            return (isinstance(call, cst.Call) and dotted(call.func) == "op.execute"
                    and len(call.args) == 1 and is_string(call.args[0].value)
                    and _is_commit(literal_text(call.args[0].value)))

        def leave_IndentedBlock(self, original: t.Any, updated: t.Any) -> t.Any:
            # op.execute("COMMIT") ended Alembic's transaction behind SQLAlchemy 1.x's
            # back (psycopg2 then ran what followed outside any transaction: ALTER TYPE
            # ... ADD VALUE and its use). SQLAlchemy 2 begins a new transaction at once;
            # Alembic's autocommit_block() is the supported way to run them outside one.
            body = list(updated.body)
            for index, statement in enumerate(original.body):
                if not self.commit_statement(statement):
                    continue
                rest = body[index + 1:]
                if not rest:
                    self.found(statement, "execute-commit",
                               "nothing follows the COMMIT in this block: put what must "
                               "run outside the transaction in "
                               "'with op.get_context().autocommit_block():'")
                    return updated
                self.found(statement, "execute-commit")
                block = cst.With(
                    items=[cst.WithItem(item=cst.parse_expression(
                        "op.get_context().autocommit_block()"))],
                    body=cst.IndentedBlock(body=rest,
                                           header=body[index].trailing_whitespace),
                    leading_lines=body[index].leading_lines,
                )
                return updated.with_changes(body=[*body[:index], block])
            return updated

        def leave_Subscript(self, original: t.Any, updated: t.Any) -> t.Any:
            if self.kind(original.value) != "row" or len(original.slice) != 1:
                return updated
            index = original.slice[0].slice
            if not isinstance(index, cst.Index):
                return updated
            key = index.value
            if not (is_string(key) or (isinstance(key, cst.Attribute) and ".c." in
                                       f".{dotted(key) or ''}")):
                return updated
            self.found(original, "row-mapping")
            return updated.with_changes(
                value=cst.Attribute(value=updated.value, attr=cst.Name("_mapping")))

        def leave_Module(self, original: t.Any, updated: t.Any) -> t.Any:
            if not self.needs_sa_import:
                return updated
            body = list(updated.body)
            last_import = -1
            for i, statement in enumerate(body):
                if isinstance(statement, cst.SimpleStatementLine) and all(
                        isinstance(s, (cst.Import, cst.ImportFrom)) for s in statement.body):
                    last_import = i
                elif last_import >= 0:
                    break
            line = cst.parse_statement("import sqlalchemy as sa\n")
            body.insert(last_import + 1, line)
            return updated.with_changes(body=body)

    return Rewriter
