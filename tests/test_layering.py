"""The import layering of the packages (issue 15), checked on the source with ``ast``.

Imports inside ``if TYPE_CHECKING:`` do not count (they never run). The rules:

- ``reactive`` never imports ``connectors``, ``samples`` or ``benchmarks``;
  ``connectors`` never imports ``samples`` or ``benchmarks``, and only public modules of
  ``reactive`` (``reactive.lowlevel`` has what a connector needs beyond ``reactive.stage``).
- Inside ``reactive``, the leaf modules (``_errors``, ``_keep``, ``_attributes``,
  ``_supervision``, ``_checks``, ``_version``) import no other module of the package;
  ``_impl`` and ``_stage`` never import ``_dsl``; ``_stage`` never imports ``_ops``.
- ``_ops`` imports ``_dsl`` only inside a function, and only in the operators that emit a
  ``Source`` / ``Sink`` / ``Flow`` (Akka has the same upward reference: ``prefix_and_tail``
  emits a ``Source``): the allow-list below, which may only shrink. Public factories
  (``Restart*``, ``RetryFlow``, ``KillSwitches``, the hubs) live in ``_dsl``.
- No import cycles between modules, except the ones listed in ``KNOWN_CYCLES``, which may
  only shrink (a cycle that grows, or a new one, fails).
- ``benchmarks``: ``runner`` imports neither ``report`` nor ``plots`` nor ``session``.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("reactive", "connectors", "samples", "benchmarks")
LEAVES = (
    "reactive._errors",
    "reactive._keep",
    "reactive._attributes",
    "reactive._supervision",
    "reactive._checks",
    "reactive._version",
)

#: ``_ops`` modules allowed a function-local import of ``_dsl`` (may only shrink).
OPS_UPWARD = {
    "reactive._ops.errors": "recover_with: the fallback is a Source",
    "reactive._ops.hubs": "a running hub's materialized value is a Sink / Source",
    "reactive._ops.killswitch": "SharedKillSwitch.flow() returns a Flow (Akka's method)",
    "reactive._ops.lazy": "lazy sources/sinks/flows materialize the Source/Sink they get",
    "reactive._ops.nesting": "prefix_and_tail / flat_map_*: emit Sources",
    "reactive._ops.restart": "a running restart stage materializes the inner Flow / Sink",
    "reactive._ops.substreams": "group_by/split_*: substreams are Sources",
}

#: ``_ops`` modules that may import ``_dsl`` at module level (may only shrink).
OPS_UPWARD_AT_MODULE_LEVEL: set[str] = set()

#: Import cycles left (may only shrink; each is a frozenset of modules). The one left: the
#: blueprints and the operators that emit blueprints (function-local imports, as in Akka).
#: When FlowOps was split into one mixin per family (``reactive/_dsl/flow_ops/``), the
#: mixins whose operators emit or take a Source/Flow/Sink joined it with the same edges
#: blueprints.py had (no new dependency between layers).
KNOWN_CYCLES = {
    frozenset(
        {
            "reactive._dsl.blueprints",
            "reactive._dsl.flow_ops.errors",
            "reactive._dsl.flow_ops.fan_in",
            "reactive._dsl.flow_ops.fan_out",
            "reactive._dsl.flow_ops.nesting",
            "reactive._dsl.flow_ops.state",
            "reactive._dsl.flow_ops.substreams",
            "reactive._dsl.subflow",
            "reactive._dsl.with_context",
            "reactive._ops.errors",
            "reactive._ops.lazy",
            "reactive._ops.nesting",
            "reactive._ops.substreams",
        }
    ),
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((REPO / pkg).rglob("*.py")):
            rel = path.relative_to(REPO).with_suffix("")
            name = ".".join(rel.parts)
            if name.endswith(".__init__"):
                name = name[: -len(".__init__")]
            mods[name] = path
    return mods


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, in_function: bool = False) -> Iterator[tuple[ast.AST, bool]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            for sub in node.orelse:
                yield from _imports(ast.Module(body=[sub], type_ignores=[]), in_function)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, in_function
        fn = in_function or isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
        yield from _imports(node, fn)


def _target(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _edges() -> dict[str, dict[str, bool]]:
    """module -> {imported module: imported only inside functions}."""
    out: dict[str, dict[str, bool]] = defaultdict(dict)
    for mod, path in MODULES.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        for node, local in _imports(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    root = ".".join(base + ([node.module] if node.module else []))
                else:
                    root = node.module or ""
                names = [root] + [f"{root}.{a.name}" for a in node.names]
            for n in names:
                t = _target(n)
                if t is None or t == mod:
                    continue
                out[mod][t] = out[mod].get(t, True) and local
    return out


EDGES = _edges()


def _under(mod: str, pkg: str) -> bool:
    return mod == pkg or mod.startswith(pkg + ".")


def _violations(src: str, dst: str) -> list[str]:
    return sorted(
        f"{a} -> {b}" for a, bs in EDGES.items() if _under(a, src) for b in bs if _under(b, dst)
    )


def test_the_scan_sees_the_imports() -> None:
    # Guard against a scan that finds nothing (every rule below would then pass).
    assert len(MODULES) > 150
    assert "reactive._keep" in EDGES["reactive._dsl.blueprints"]
    assert EDGES["reactive._ops.nesting"]["reactive._dsl.blueprints"] is True  # local


def test_packages_import_downwards_only() -> None:
    bad = _violations("reactive", "connectors") + _violations("reactive", "samples")
    bad += _violations("reactive", "benchmarks") + _violations("connectors", "samples")
    bad += _violations("connectors", "benchmarks")
    assert bad == []


def test_connectors_use_only_public_modules_of_reactive() -> None:
    # What a connector needs beyond reactive.stage is in reactive.lowlevel.
    bad = [
        f"{a} -> {b}"
        for a, bs in EDGES.items()
        if _under(a, "connectors")
        for b in bs
        if _under(b, "reactive") and any(part.startswith("_") for part in b.split("."))
    ]
    assert bad == []


def test_leaf_modules_import_nothing_of_the_package() -> None:
    bad = [
        f"{leaf} -> {b}" for leaf in LEAVES for b in EDGES.get(leaf, {}) if _under(b, "reactive")
    ]
    assert bad == []


def test_the_runtime_never_imports_the_dsl() -> None:
    assert _violations("reactive._impl", "reactive._dsl") == []
    assert _violations("reactive._stage", "reactive._dsl") == []
    assert _violations("reactive._stage", "reactive._ops") == []


def test_operators_reach_up_to_the_dsl_only_where_allowed() -> None:
    upward = {a: bs for a, bs in EDGES.items() if _under(a, "reactive._ops")}
    bad = []
    for a, bs in upward.items():
        for b, local in bs.items():
            if not _under(b, "reactive._dsl"):
                continue
            if a not in OPS_UPWARD:
                bad.append(f"{a} -> {b} (not in OPS_UPWARD)")
            elif not local and a not in OPS_UPWARD_AT_MODULE_LEVEL:
                bad.append(f"{a} -> {b} (at module level)")
    assert bad == []
    users = {a for a, bs in upward.items() if any(_under(b, "reactive._dsl") for b in bs)}
    assert users == set(OPS_UPWARD), "OPS_UPWARD lists modules that no longer need it: shrink it"


def _cycles() -> set[frozenset[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: set[frozenset[str]] = set()
    counter = 0

    def visit(v: str) -> None:
        nonlocal counter
        index[v] = low[v] = counter
        counter += 1
        stack.append(v)
        on.add(v)
        for w in EDGES.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.add(frozenset(comp))

    for v in MODULES:
        if v not in index:
            visit(v)
    return found


def test_no_new_import_cycles() -> None:
    cycles = _cycles()
    grown = [sorted(c) for c in cycles if not any(c <= k for k in KNOWN_CYCLES)]
    assert grown == [], "a new or grown import cycle"
    gone = [sorted(k) for k in KNOWN_CYCLES if not any(c <= k for c in cycles)]
    assert gone == [], "a known cycle is gone: remove it from KNOWN_CYCLES"
    shrunk = [sorted(k - max((c for c in cycles if c <= k), key=len)) for k in KNOWN_CYCLES]
    assert all(not s for s in shrunk), f"known cycles shrank (update KNOWN_CYCLES): {shrunk}"


def test_benchmark_runner_imports_neither_report_nor_plots() -> None:
    runner = EDGES["benchmarks.runner"]
    assert not {"benchmarks.report", "benchmarks.plots", "benchmarks.session"} & set(runner)
