"""Rules the test suite itself keeps, checked on its source: no test can wait without
bound, and the nox sessions run the files they list.

A rule broken here would show up elsewhere only as a CI run that stalls until its time
limit, or as a nox session that passes while proving less than it says.
"""
from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

TESTS = sorted((REPO / "tests").glob("*.py"))

# Calls that block until a child process ends: they must be given a timeout.
SUBPROCESS_RUNS = {"run", "call", "check_call", "check_output"}
WAITS = {"communicate", "wait"}


def unbounded_waits(path: Path) -> list[str]:
    """Where ``path`` waits for a child process without a bound: ``subprocess.run``
    and friends, ``.communicate()`` and ``.wait()`` without ``timeout=``, and reads of
    a child's output (``for line in proc.stderr``, ``.readline()``), which return only
    when the child writes or ends (conftest.wait_for_line bounds them)."""
    found = []
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        line = node.iter.lineno if isinstance(node, ast.comprehension) else \
            getattr(node, "lineno", "?")
        where = f"{path.name}:{line}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            name, owner = node.func.attr, ast.unparse(node.func.value)
            keywords = {k.arg for k in node.keywords}
            blocking = (name in SUBPROCESS_RUNS and owner == "subprocess") or name in WAITS
            # wait(5) is bounded too (Popen.wait, Event.wait); communicate's first
            # argument is its input.
            bounded = "timeout" in keywords or (name == "wait" and node.args)
            if blocking and not bounded:
                found.append(f"{where} {ast.unparse(node)[:70]}")
            if name == "readline" and owner.endswith(("stdout", "stderr")):
                found.append(f"{where} {ast.unparse(node)[:70]}")
        if isinstance(node, (ast.For, ast.comprehension)):
            source = ast.unparse(node.iter)
            if source.endswith((".stdout", ".stderr")):
                found.append(f"{where} for ... in {source}")
    return found


def test_every_wait_for_a_process_is_bounded():
    found = [place for path in TESTS for place in unbounded_waits(path)]
    assert found == [], "unbounded waits:\n" + "\n".join(found)


def test_the_rule_sees_what_it_forbids(tmp_path):
    """The checker itself: each forbidden form is found, the bounded ones are not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import subprocess\n"
        "subprocess.run(['x'])\n"
        "proc.communicate()\n"
        "proc.wait()\n"
        "proc.stderr.readline()\n"
        "for line in proc.stderr: pass\n"
        "lines = [x for x in proc.stdout]\n"
        "subprocess.run(['x'], timeout=5)\n"
        "proc.communicate(timeout=5)\n"
        "proc.wait(timeout=5)\n"
        "event.wait(5)\n"
        "proc.communicate('input')\n"
    )
    lines = sorted(int(place.split()[0].split(":")[1]) for place in unbounded_waits(sample))
    assert lines == [2, 3, 4, 5, 6, 7, 12]


def test_nox_sessions_list_existing_files():
    """noxfile.py fails a session whose listed test file is missing; keep the list
    and the tree in step so that CI's compat sessions do run."""
    tree = ast.parse((REPO / "noxfile.py").read_text())
    (listed,) = [ast.literal_eval(node.value) for node in tree.body
                 if isinstance(node, ast.Assign)
                 and any(getattr(t, "id", None) == "TEST_FILES" for t in node.targets)]
    assert listed, "noxfile.py lists no test file"
    assert [name for name in listed if not (REPO / name).is_file()] == []
