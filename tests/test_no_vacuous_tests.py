"""The suite checks itself: no test function that cannot fail.

A small AST scan over ``tests/``: every test function (``test_*`` at module level or in a
``Test*`` class) must check something, i.e. contain at least one of

- an ``assert`` statement, or ``raise AssertionError(...)`` / ``ExpectationError(...)``;
- a call of an expectation: a name starting with ``expect`` or ``assert`` (the probes'
  ``expect_next`` / ``expect_error`` / ..., ``assert_type``, ``unittest``'s ``assertEqual``),
  ``request_next``, ``pytest.fail``;
- ``pytest.raises`` (call or ``with``) or ``pytest.warns`` with a specific type: not bare
  ``Exception`` / ``BaseException`` (those also catch a timeout, so a hang passes);
- a call of a helper that does one of the above (any function defined in ``tests/`` whose
  body checks, found by name, transitively).

A second scan fails on a test that reads, after a ``with pytest.raises(...)`` block, a name
assigned inside it: the block raises, so the assignment never runs and the check after it
sees the value from before.

A test that legitimately checks only "no exception is raised" goes into :data:`ALLOW`
with the reason, reviewed like code. The list must stay small: prefer asserting what the
call returned or what it changed.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

#: ``path::function`` (path relative to the repository) -> why it checks nothing explicitly.
ALLOW: dict[str, str] = {}
#: Entries of :data:`ALLOW` that may disappear (renamed or fixed on another branch) without
#: the stale-entry check below failing.
MAY_DISAPPEAR: set[str] = set()

_BROAD = {"Exception", "BaseException"}
_FAILURE_TYPES = {"AssertionError", "ExpectationError"}
_EXPECT_PREFIXES = ("expect", "assert")
_EXPECT_NAMES = {"request_next"}

FunctionNode = ast.FunctionDef | ast.AsyncFunctionDef


def _callee(node: ast.Call) -> tuple[str | None, str]:
    """``(owner, name)`` of a call: ``pytest.raises`` -> ("pytest", "raises")."""
    f = node.func
    if isinstance(f, ast.Attribute):
        owner = f.value.id if isinstance(f.value, ast.Name) else None
        return owner, f.attr
    if isinstance(f, ast.Name):
        return None, f.id
    return None, ""


def _specific_type(arg: ast.expr | None) -> bool:
    """Whether ``pytest.raises``'s first argument names a type narrower than Exception."""
    if arg is None:
        return False
    if isinstance(arg, ast.Tuple):
        return bool(arg.elts) and all(_specific_type(e) for e in arg.elts)
    if isinstance(arg, ast.Name):
        return arg.id not in _BROAD
    if isinstance(arg, ast.Attribute):
        return arg.attr not in _BROAD
    return True  # an expression (a variable holding a type, a call): trust it


def _direct_check(node: ast.AST) -> bool:
    """Whether ``node`` itself is a check (without following helper calls)."""
    if isinstance(node, ast.Assert):
        return True
    if isinstance(node, ast.Raise) and node.exc is not None:
        # `raise AssertionError(...)` / `raise ExpectationError(...)`: a check spelled out
        exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
        name = exc.id if isinstance(exc, ast.Name) else getattr(exc, "attr", "")
        return name in _FAILURE_TYPES
    if not isinstance(node, ast.Call):
        return False
    owner, name = _callee(node)
    if name.startswith(_EXPECT_PREFIXES) or name in _EXPECT_NAMES:
        return True
    if owner == "pytest" and name == "fail":
        return True
    if owner == "pytest" and name in ("raises", "warns", "deprecated_call"):
        if name == "deprecated_call":
            return True
        first = node.args[0] if node.args else None
        for kw in node.keywords:
            if kw.arg == "expected_exception" or kw.arg == "expected_warning":
                first = kw.value
        return _specific_type(first)
    return False


def _called_names(fn: FunctionNode) -> set[str]:
    return {
        _callee(node)[1] for node in ast.walk(fn) if isinstance(node, ast.Call) and _callee(node)[1]
    }


class _Scan:
    """One walk of a module: every function definition in it (nested ones too) and, per
    function, ``(any node in it is a direct check, _called_names(fn))``, what
    :func:`_direct_check` and :func:`_called_names` give on each ``ast.walk`` of it, found
    in a single pass (a nested function's nodes count for the functions around it)."""

    def __init__(self) -> None:
        self.functions: list[FunctionNode] = []
        self.summaries: dict[FunctionNode, tuple[bool, frozenset[str]]] = {}

    def visit(self, node: ast.AST, acc: list[Any]) -> None:
        """Add ``node``'s subtree to ``acc`` (``[direct, names]`` of the innermost
        function around it) and record the functions in it."""
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inner: list[Any] = [False, set()]
            self._visit_own(node, inner)
            self.functions.append(node)
            self.summaries[node] = (inner[0], frozenset(inner[1]))
            acc[0] = acc[0] or inner[0]
            acc[1] |= inner[1]
            return
        self._visit_own(node, acc)

    def _visit_own(self, node: ast.AST, acc: list[Any]) -> None:
        if isinstance(node, ast.Call):
            name = _callee(node)[1]
            if name:
                acc[1].add(name)
        if not acc[0] and _direct_check(node):
            acc[0] = True
        for child in ast.iter_child_nodes(node):
            self.visit(child, acc)


@functools.cache
def _scan(module: ast.Module) -> _Scan:
    scan = _Scan()
    scan.visit(module, [False, set()])
    return scan


def _parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _files() -> list[Path]:
    return sorted(p for p in TESTS.rglob("*.py") if "__pycache__" not in p.parts)


@functools.cache
def _modules() -> dict[Path, ast.Module]:
    """Every test file parsed once per session."""
    return {path: _parse(path) for path in _files()}


def _test_functions(module: ast.Module) -> Iterator[FunctionNode]:
    for node in module.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith(
            "test"
        ):
            yield node
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(
                    item, ast.FunctionDef | ast.AsyncFunctionDef
                ) and item.name.startswith("test"):
                    yield item


def _checking_helpers(modules: dict[Path, ast.Module]) -> set[str]:
    """Names of the functions defined anywhere in tests/ that check, transitively."""
    functions: dict[str, list[FunctionNode]] = {}
    summaries: dict[FunctionNode, tuple[bool, frozenset[str]]] = {}
    for module in modules.values():
        scan = _scan(module)
        summaries.update(scan.summaries)
        for node in scan.functions:
            functions.setdefault(node.name, []).append(node)
    checking = {name for name, defs in functions.items() if any(summaries[d][0] for d in defs)}
    calls = {
        name: set().union(*(summaries[d][1] for d in defs)) for name, defs in functions.items()
    }
    changed = True
    while changed:
        changed = False
        for name, called in calls.items():
            if name not in checking and called & checking:
                checking.add(name)
                changed = True
    return checking


def _is_raises_with(node: ast.AST) -> bool:
    return isinstance(node, ast.With | ast.AsyncWith) and any(
        isinstance(item.context_expr, ast.Call)
        and _callee(item.context_expr) == ("pytest", "raises")
        for item in node.items
    )


def _dead_assignments(fn: FunctionNode) -> list[tuple[str, int]]:
    """Names assigned inside a ``with pytest.raises(...)`` block and read after it: when
    the block raises (which the test expects) the assignment never happens, so whatever is
    checked on the name afterwards checks the value from before the block."""
    found = []
    for parent in ast.walk(fn):
        body = getattr(parent, "body", None)
        if not isinstance(body, list):
            continue
        for i, stmt in enumerate(body):
            if not _is_raises_with(stmt):
                continue
            assigned = {
                t.id
                for node in ast.walk(stmt)
                if isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                for t in ast.walk(target)
                if isinstance(t, ast.Name) and isinstance(t.ctx, ast.Store)
            }
            later = {
                n.id
                for after in body[i + 1 :]
                for n in ast.walk(after)
                if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
            }
            found += [(name, stmt.lineno) for name in sorted(assigned & later)]
    return found


def find_dead_assignments() -> dict[str, str]:
    """``path::function`` -> description of every test reading a name whose assignment
    sits in a ``with pytest.raises`` block."""
    found: dict[str, str] = {}
    for path, module in _modules().items():
        for fn in _test_functions(module):
            dead = _dead_assignments(fn)
            if dead:
                key = f"{path.relative_to(ROOT).as_posix()}::{fn.name}"
                found[key] = ", ".join(f"{name!r} (line {line})" for name, line in dead)
    return found


@functools.cache
def find_vacuous() -> dict[str, int]:
    """``path::function`` -> line of every test function that checks nothing."""
    modules = _modules()
    helpers = _checking_helpers(modules)
    found: dict[str, int] = {}
    for path, module in modules.items():
        summaries = _scan(module).summaries
        for fn in _test_functions(module):
            direct, called = summaries[fn]
            if direct or called & helpers:
                continue
            found[f"{path.relative_to(ROOT).as_posix()}::{fn.name}"] = fn.lineno
    return found


WHY = (
    "it has no assert statement, calls no expect_*/assert_*/request_next expectation (nor a "
    "helper in tests/ that does), and has no pytest.raises/pytest.warns with a type narrower "
    "than Exception (a bare `pytest.raises(Exception)` also catches a timeout, so a hang "
    "passes)"
)


def test_every_test_checks_something() -> None:
    vacuous = {k: line for k, line in find_vacuous().items() if k not in ALLOW}
    lines = [f"  {key.split('::')[0]}:{line} {key.split('::')[1]}" for key, line in vacuous.items()]
    assert not vacuous, (
        f"{len(vacuous)} test(s) cannot fail: {WHY}.\n"
        + "\n".join(lines)
        + "\nAssert what the code returned or changed; if a test really checks only that "
        "nothing raises, add it to ALLOW in tests/test_no_vacuous_tests.py with the reason."
    )


def test_no_check_reads_a_name_assigned_inside_pytest_raises() -> None:
    dead = find_dead_assignments()
    assert not dead, (
        "test(s) check a name assigned inside `with pytest.raises(...)`: the block raises, "
        "so the assignment never runs and the check after it sees the old value:\n"
        + "\n".join(f"  {key}: {names}" for key, names in dead.items())
        + "\nCheck the elements or state some other way (a probe's expect_next / "
        "expect_error, or a list the test fills as it goes)."
    )


def test_allow_list_is_current() -> None:
    vacuous = find_vacuous()
    stale = [k for k in ALLOW if k not in vacuous and k not in MAY_DISAPPEAR]
    assert not stale, (
        "ALLOW entries in tests/test_no_vacuous_tests.py that no longer name a test that "
        f"checks nothing (fixed, renamed or removed): remove them: {stale}"
    )


def test_the_scan_recognises_checks_and_non_checks(tmp_path: Path) -> None:
    source = """
import pytest

def helper(x):
    assert x

def raiser(x):
    if not x:
        raise AssertionError("no")

def outer(x):
    helper(x)

def test_assert(): assert 1
async def test_probe(p): await p.expect_next(1)
def test_raises_specific():
    with pytest.raises(ValueError): int("x")
def test_via_helper(): outer(1)
def test_via_raiser(): raiser(1)
def test_nothing(): int("1")
def test_raises_broad():
    with pytest.raises(Exception): int("x")
def test_raises_broad_tuple():
    with pytest.raises((ValueError, Exception)): int("x")
class TestGroup:
    def test_method(self): print("hi")
"""
    module = ast.parse(source)
    helpers = _checking_helpers({tmp_path / "m.py": module})
    assert {"helper", "outer", "raiser"} <= helpers
    verdicts = {
        fn.name: any(_direct_check(n) for n in ast.walk(fn)) or bool(_called_names(fn) & helpers)
        for fn in _test_functions(module)
    }
    assert verdicts == {
        "test_assert": True,
        "test_probe": True,
        "test_raises_specific": True,
        "test_via_helper": True,
        "test_via_raiser": True,
        "test_nothing": False,
        "test_raises_broad": False,
        "test_raises_broad_tuple": False,
        "test_method": False,
    }


def test_the_scan_finds_checks_of_names_assigned_inside_pytest_raises() -> None:
    source = """
async def test_dead(sub):
    got = []
    with pytest.raises(Boom):
        got = await sub.to_list()
    assert got == []

def test_fine(obj):
    with pytest.raises(AttributeError):
        obj.frozen = 5
    assert obj.frozen == 1
"""
    module = ast.parse(source)
    dead = {fn.name: _dead_assignments(fn) for fn in _test_functions(module)}
    assert dead == {"test_dead": [("got", 4)], "test_fine": []}
