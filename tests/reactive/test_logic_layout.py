"""Every logic of the runtime keeps its attributes in CPython's shared-key layout.

CPython 3.11 stores an instance's attributes in a layout shared by its class, of at most
29 names (the union over the class's instances); a class whose instances set more has
their ``__dict__`` materialized, and then every attribute read on them is a dict lookup:
that cost ~2% of B2 (a fused chain of 34 attributes), the worker pool and ``map_async``
(48). ``GraphStageLogic`` keeps its own 15 fields in slots (``_LogicFields``), and the
logics with many fields of their own declare them as slots too.

Checked statically, so that every operator is covered without running it: the names a
class and its bases assign on ``self`` (anywhere in their source), minus the slots of
its MRO, must be at most 29. A name assigned only on some paths still counts (the check
errs on the safe side). A run checks the same thing on live objects for the benchmark
graphs (``test_benchmark_graphs_keep_the_layout``).
"""

from __future__ import annotations

import ast
import importlib
import pathlib
import pkgutil
from functools import cache
from typing import Any

import pytest

import connectors
import reactive
from reactive import (
    Balance,
    Broadcast,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Source,
    TimeWindows,
)
from reactive._stage.logic import GraphStageLogic
from reactive.testkit import TestSink

#: The most names CPython 3.11 keeps in a class's shared-key layout.
LIMIT = 29


def _import_all() -> None:
    for pkg in (reactive, connectors):
        for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            importlib.import_module(mod.name)


def _subclasses(cls: type) -> set[type]:
    out: set[type] = set()
    subs: list[type] = cls.__subclasses__()
    for sub in subs:
        out.add(sub)
        out |= _subclasses(sub)
    return out


def _class_node(cls: type) -> ast.ClassDef | None:
    """``cls``'s definition, found through the file of one of its functions (public
    classes have their ``__module__`` set to the public module, where
    ``inspect.getsource`` would look)."""
    for value in vars(cls).values():
        code = getattr(getattr(value, "__func__", value), "__code__", None)
        if code is not None:
            break
    else:
        return None
    tree = ast.parse(pathlib.Path(code.co_filename).read_text())
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ClassDef)
            and node.name == cls.__name__
            and node.lineno <= code.co_firstlineno <= (node.end_lineno or 0)
        ):
            return node
    return None


@cache
def _assigned(cls: type) -> frozenset[str]:
    """The names assigned on ``self`` in ``cls``'s own source."""
    root = _class_node(cls)
    if root is None:
        return frozenset()
    names: set[str] = set()
    for node in ast.walk(root):
        targets: list[Any] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            targets = [node.target]
        while targets:  # (a tuple target's names; not what a subscript reads)
            e = targets.pop()
            if isinstance(e, (ast.Tuple, ast.List)):
                targets.extend(e.elts)
            elif isinstance(e, ast.Starred):
                targets.append(e.value)
            elif isinstance(e, ast.Attribute) and isinstance(e.value, ast.Name):
                if e.value.id == "self":
                    names.add(e.attr)
    return frozenset(names)


def dict_names(cls: type) -> set[str]:
    """The names an instance of ``cls`` may hold in its ``__dict__``."""
    names: set[str] = set()
    slots: set[str] = set()
    for k in cls.__mro__:
        names |= _assigned(k)
        declared = k.__dict__.get("__slots__", ())
        slots |= {declared} if isinstance(declared, str) else set(declared)
    return names - slots


def _runtime_logics() -> list[type]:
    _import_all()
    ours = ("reactive", "connectors")
    return sorted(
        (c for c in _subclasses(GraphStageLogic) if c.__module__.startswith(ours)),
        key=lambda c: f"{c.__module__}.{c.__qualname__}",
    )


def test_every_runtime_logic_fits_the_shared_key_layout() -> None:
    over = {
        f"{c.__module__}.{c.__qualname__}": len(dict_names(c))
        for c in _runtime_logics()
        if len(dict_names(c)) > LIMIT
    }
    assert not over, f"logics past {LIMIT} attribute names (declare __slots__): {over}"


class _Three(GraphStageLogic):
    def __init__(self, shape: Any) -> None:
        super().__init__(shape)
        self.a = self.b = 1
        self.c: int = 2


class _ThreeSlotted(_Three):
    __slots__ = ("a", "b")


def test_the_check_counts_what_a_logic_assigns_and_not_its_slots() -> None:
    """The check itself: the names assigned on ``self`` count, the slots of the MRO
    (``GraphStageLogic``'s own fields among them) do not; the public classes' sources
    are found although their ``__module__`` names the public module."""
    base = dict_names(GraphStageLogic)
    assert "_stop_pending" in base  # (assigned when a stop is pending; not a slot)
    assert not {"_conns", "_island", "shape", "_stopped"} & base
    assert dict_names(_Three) == {"a", "b", "c"} | base
    assert dict_names(_ThreeSlotted) == {"c"} | base
    assert _assigned(GraphStageLogic) >= {"_conns", "_island", "shape", "_stop_pending"}


async def _echo(x: int) -> int:
    return x


def _graphs() -> dict[str, Any]:
    def pool(b: Any, sink: Any) -> Any:
        bal = b.add(Balance(2))
        merge = b.add(Merge(2))
        b.add(Source.from_iterable(range(10**6))).out >> bal.in_
        for i in range(2):
            bal.out(i) >> b.add(Flow().map_async(1, _echo)) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    def fan_out(b: Any, sink: Any) -> Any:
        bc = b.add(Broadcast(2))
        merge = b.add(Merge(2))
        b.add(Source.from_iterable(range(10**6))).out >> bc.in_
        for i in range(2):
            bc.out(i) >> b.add(Flow().map(lambda x: x).async_boundary()) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    src = Source.from_iterable(range(10**6))
    return {
        "boundaries": src.map(lambda x: x).async_boundary().filter(bool).async_boundary(),
        "map_async": src.map_async(8, _echo),
        "pool": RunnableGraph.from_graph(GraphDSL.create(pool, TestSink.probe())),
        "fan_out": RunnableGraph.from_graph(GraphDSL.create(fan_out, TestSink.probe())),
        "windows": src.map(lambda x: (x % 7, float(x))).windowed(
            TimeWindows.of(10.0), key=lambda e: e[0], timestamp=lambda e: e[1]
        ),
    }


@pytest.mark.parametrize("name", ["boundaries", "map_async", "pool", "fan_out", "windows"])
async def test_benchmark_graphs_keep_the_layout(name: str) -> None:
    """The same on live logics: what their instances hold in ``__dict__`` while they run."""
    graph = _graphs()[name]
    async with Materializer() as mat:
        if isinstance(graph, RunnableGraph):
            probe = graph.run(mat)
        else:
            probe = graph.run_with(TestSink.probe(), mat)
        probe.request(50)
        await probe.expect_next_n(50)
        names: dict[type, set[str]] = {}
        for island in mat._graphs[-1].islands:
            for logic in island.logics:
                names.setdefault(type(logic), set()).update(vars(logic))
        probe.cancel()
    assert names
    over = {c.__qualname__: len(n) for c, n in names.items() if len(n) > LIMIT}
    assert not over, over
