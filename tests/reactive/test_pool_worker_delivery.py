"""A ``map_async(1)`` worker of a pool delivers its result itself (``_work``).

In ``source -> Balance(n) -> n x map_async(1, f) -> Merge(n) -> sink`` the worker whose
call returned runs the island's outermost run with ``_deliver_sequential``'s first round
spelled out in it: the result offered to the Merge, the next element taken through the
Balance and its call queued for the same worker (its first step skipped while calls
suspend). Anything else goes on in ``_deliver_sequential``. The outcome must be the plain
path's: checked against a Python reference, fast paths on and off, with calls that
suspend or not, raise at once, return no awaitable or fail their awaitable, under the
worker's stop, resume and restart, into a fold and into a probe with bounded demand.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from unittest import mock

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
from reactive._ops import async_
from reactive._ops.async_ import _MapAsyncLogic
from reactive.testkit import TestSink
from tests.reactive.test_junction_batches import DEMAND, SETTINGS, drive_on_own_materializer

if TYPE_CHECKING:
    import pytest

DIRECTIVES = {"resume": Supervision.resume, "restart": Supervision.restart}
KINDS = ("suspend", "at_once", "raise", "refuse", "fail")


class CallFailed(Exception):
    """The failure injected into ``f`` (raised, or in its awaitable)."""


def call(kinds: dict[int, str]) -> Any:
    """``f``: ``x + 1``; per element (``kinds``, default ``suspend``) suspending first,
    returning without suspending, raising at once, returning no awaitable (a TypeError
    the stage raises) or failing its awaitable."""

    def f(x: int) -> Any:
        kind = kinds.get(x, "suspend")
        if kind == "raise":
            raise CallFailed(f"raised at {x}")
        if kind == "refuse":
            return x  # not awaitable

        async def run() -> int:
            if kind != "at_once":
                await asyncio.sleep(0)
            if kind == "fail":
                raise CallFailed(f"failed at {x}")
            return x + 1

        return run()

    return f


def pool(n: int, xs: list[int], f: Any, directive: str, sink: Any) -> RunnableGraph[Any]:
    def blueprint(b: Any, s: Any) -> Any:
        bal = b.add(Balance(n))
        merge = b.add(Merge(n))
        b.add(Source.from_iterable(xs)) >> bal.in_
        for i in range(n):
            worker = Flow().map_async(1, f)
            if directive != "stop":
                d = DIRECTIVES[directive]
                worker = worker.with_attributes(Attributes.supervision_strategy(lambda _e, d=d: d))
            bal.out(i) >> b.add(worker) >> merge.in_(i)
        merge.out >> s.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink))


KIND_MAP = st.dictionaries(st.integers(0, 80), st.sampled_from(KINDS), max_size=12)


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 40), max_size=160),
    n=st.integers(1, 3),
    kinds=KIND_MAP,
    never_suspend=st.booleans(),
    skip=st.sampled_from([1, 2, 64]),
    directive=st.sampled_from(["stop", "resume", "restart"]),
)
async def test_pool_into_a_fold_matches_python(
    xs: list[int],
    n: int,
    kinds: dict[int, str],
    never_suspend: bool,
    skip: int,
    directive: str,
) -> None:
    """Every result once into the fold (a failed call's element dropped under resume and
    restart), or the call's failure under stop; fast paths on and off agree. (``skip``:
    the first steps skipped after one that suspended, 64 in the stage; fewer make the
    worker run first steps itself more often.)"""
    if never_suspend:  # runs of calls that do not suspend: first steps run at once
        kinds = {x: kinds.get(x, "at_once") for x in xs}
    bad = {x for x in xs if kinds.get(x, "suspend") in ("raise", "refuse", "fail")}
    expected = sorted(x + 1 for x in xs if x not in bad)
    f = call(kinds)
    for fast_paths in (True, False):
        graph = pool(n, xs, f, directive, Sink.fold([], lambda a, x: [*a, x]))
        with mock.patch.object(async_, "_SKIP_AFTER_SUSPENSION", skip):
            async with Materializer(fast_paths=fast_paths, name="pool-delivery") as mat:
                try:
                    got: Any = sorted(await asyncio.wait_for(graph.run(mat), 10))
                except (CallFailed, TypeError) as exc:
                    got = type(exc)
        if directive == "stop" and bad:
            assert got in (CallFailed, TypeError), (fast_paths, got)
            first = kinds[next(x for x in xs if x in bad)]
            if all(kinds[x] == first for x in bad) or n == 1:
                assert got is (TypeError if first == "refuse" else CallFailed), fast_paths
        else:
            assert got == expected, fast_paths


@SETTINGS
@given(
    size=st.integers(0, 120),
    n=st.integers(1, 3),
    kinds=KIND_MAP,
    directive=st.sampled_from(["stop", "resume"]),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_pool_into_a_probe_keeps_demand(
    size: int,
    n: int,
    kinds: dict[int, str],
    directive: str,
    demand: list[int],
    cancel: bool,
) -> None:
    """Into a probe that requests in steps (and may cancel): nothing beyond demand, each
    result once, and the same kind of end with fast paths on and off."""
    xs = list(range(size))
    bad = {x for x in xs if kinds.get(x, "suspend") in ("raise", "refuse", "fail")}
    expected = [x + 1 for x in xs if x not in bad]
    f = call(kinds)
    ends = []
    for fast_paths in (True, False):
        out, end = await drive_on_own_materializer(
            pool(n, xs, f, directive, TestSink.probe()), "pool-delivery", fast_paths, demand, cancel
        )
        rest = list(expected)
        for v in out:
            rest.remove(v)  # raises if v is not (or no longer) expected
        if end == "complete":
            assert not rest, fast_paths
            assert directive == "resume" or not bad, fast_paths
        elif end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1]), fast_paths
        else:
            assert directive == "stop" and bad, (fast_paths, end)
        ends.append(end if isinstance(end, str) else "failed")
    if not cancel:
        assert ends[0] == ends[1], ends


async def test_the_worker_delivers_its_results_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """While calls suspend, a worker of the pool hands its result down and takes its next
    element without ``_deliver_sequential`` (a few calls of it, at the start, at the end
    and once per 64 calls of a worker, for ``size`` results)."""
    size = 2_000
    calls = 0
    original = _MapAsyncLogic._deliver_sequential

    def counting(self: Any, *args: Any) -> None:
        nonlocal calls
        calls += 1
        original(self, *args)

    monkeypatch.setattr(_MapAsyncLogic, "_deliver_sequential", counting)

    async def f(x: int) -> int:
        await asyncio.sleep(0)
        return x

    graph = pool(2, list(range(size)), f, "stop", Sink.fold(0, lambda a, x: a + x))
    async with Materializer(name="pool-delivery-count") as mat:
        assert await graph.run(mat) == size * (size - 1) // 2
    assert calls < size // 20, calls
