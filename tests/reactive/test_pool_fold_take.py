"""``Merge`` hands a worker's result to ``Sink.fold`` in one call (``_take_one``).

In a worker pool ``source -> Balance(n) -> n x map_async(1, f) -> Merge(n) -> Sink.fold``
the Merge's direct hand-down of a result (``_accept_one_i``) calls the fold's
``_take_one``: the push, the fold's ``on_push`` and the pull it answers with, in one
call, the pull taken without an event. The fold's supervision (its function raising
under stop, resume, restart), its materialized value and the stream's end must be what
the plain path gives: checked against a Python fold over the elements the function was
called with, fast paths on and off, metrics on (the metered connection keeps the plain
path) and off.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hypothesis import given
from hypothesis import strategies as st

from reactive import (
    Attributes,
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
)
from reactive._ops.sinks import _FoldSinkLogic
from tests.reactive.test_junction_batches import SETTINGS

if TYPE_CHECKING:
    import pytest

DIRECTIVES = {"resume": Supervision.resume, "restart": Supervision.restart}


class FoldFailed(Exception):
    """The failure injected into the fold's function."""


def pool_into(n: int, xs: list[int], suspend: frozenset[int], sink: Any) -> RunnableGraph[Any]:
    """``xs -> Balance(n) -> n x map_async(1) -> Merge(n) -> sink``; the call suspends
    first for the elements in ``suspend``."""

    async def f(x: int) -> int:
        if x in suspend:
            await asyncio.sleep(0)
        return x

    def blueprint(b: Any, s: Any) -> Any:
        bal = b.add(Balance(n))
        merge = b.add(Merge(n))
        b.add(Source.from_iterable(xs)) >> bal.in_
        for i in range(n):
            bal.out(i) >> b.add(Flow().map_async(1, f)) >> merge.in_(i)
        merge.out >> s.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink))


def reference(calls: list[int], bad: frozenset[int], directive: str) -> tuple[str, Any]:
    """The fold's outcome for the elements its function was called with, in that order."""
    acc: list[int] = []
    for x in calls:
        if x in bad:
            if directive == "stop":
                return "err", FoldFailed
            if directive == "restart":
                acc = []
            continue
        acc = [*acc, x]
    return "ok", acc


@SETTINGS
@given(
    size=st.integers(0, 60),
    n=st.integers(1, 3),
    suspend=st.frozensets(st.integers(0, 60)),
    bad=st.frozensets(st.integers(0, 60), max_size=3),
    directive=st.sampled_from(["stop", "resume", "restart"]),
)
async def test_fold_behind_the_pool_matches_python(
    size: int, n: int, suspend: frozenset[int], bad: frozenset[int], directive: str
) -> None:
    """The fold's value, or its function's failure, is the Python fold over the elements
    it was called with; every element reaches it once unless it stopped; fast paths on
    and off, metrics on and off."""
    xs = list(range(size))
    for fast_paths, metrics in ((True, False), (False, False), (True, True)):
        calls: list[int] = []

        def step(acc: list[int], x: int, calls: list[int] = calls) -> list[int]:
            calls.append(x)
            if x in bad:
                raise FoldFailed(str(x))
            return [*acc, x]

        sink: Any = Sink.fold([], step)
        if directive != "stop":
            d = DIRECTIVES[directive]
            sink = sink.with_attributes(Attributes.supervision_strategy(lambda _e, d=d: d))
        graph = pool_into(n, xs, suspend, sink)
        async with Materializer(fast_paths=fast_paths, metrics=metrics, name="pool-fold") as mat:
            try:
                got: tuple[str, Any] = ("ok", await asyncio.wait_for(graph.run(mat), 10))
            except FoldFailed:
                got = ("err", FoldFailed)
        assert got == reference(calls, bad, directive), (fast_paths, metrics)
        if got[0] == "ok":
            assert sorted(calls) == xs, (fast_paths, metrics)
        else:
            assert len(set(calls)) == len(calls)


async def pushes_while_summing(monkeypatch: pytest.MonkeyPatch, metrics: bool) -> int:
    """How often the fold's ``on_push`` runs while a pool of two workers sums
    ``range(2_000)`` (the sum checked)."""
    size = 2_000
    calls = 0
    original = _FoldSinkLogic.on_push

    def counting(self: Any) -> None:
        nonlocal calls
        calls += 1
        original(self)

    monkeypatch.setattr(_FoldSinkLogic, "on_push", counting)
    xs = list(range(size))
    graph = pool_into(2, xs, frozenset(xs), Sink.fold(0, lambda a, x: a + x))
    async with Materializer(name="pool-fold-take", metrics=metrics) as mat:
        total = await graph.run(mat)
    assert total == size * (size - 1) // 2
    return calls


async def test_the_fold_takes_the_result_in_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unmetered, the Merge hands the worker's result to the fold through ``_take_one``
    (its ``on_push`` almost never runs); metered, through the push and ``on_push``."""
    assert await pushes_while_summing(monkeypatch, False) < 2_000 // 20
    assert await pushes_while_summing(monkeypatch, True) > 2_000 // 2
