"""Differential property tests of ``map_async``'s worker pool with the fast paths on and off.

With fast paths on, ``map_async(p, f)`` in order with ``p <= 2`` hands each outcome to the
stage from the worker that awaited it (one island run per call, the worker goes on with
the next call at once); with fast paths off (and for larger ``p``) the outcomes of every
call that finished in one loop iteration are delivered together. Either way the stream
must be that of a Python reference: the results in input order, nothing beyond demand,
the elements ``f`` raised for (synchronously) or whose awaitable failed dropped under
resume/restart, a prefix of the results before the first such element and that failure
under stop, cancellation mid-flight leaving no task behind.

``f`` varies per element: it suspends 0 to 3 times (so calls finish out of order, or never
suspend at all), raises at once, fails its awaitable, or returns a plain ``Future`` (not a
coroutine) resolved on a later loop iteration.
"""

from __future__ import annotations

import asyncio
import contextvars
import itertools
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from reactive import (
    Attributes,
    ClosedShape,
    Flow,
    GraphDSL,
    Keep,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import TestSink
from tests.reactive.test_junction_batches import DEMAND, SETTINGS, drive_on_own_materializer


class CallFailed(Exception):
    """The failure injected into ``f`` (raised, or in its awaitable)."""


def call(
    steps: dict[int, int],
    raise_at: frozenset[int],
    fail_at: frozenset[int],
    futures: frozenset[int],
) -> Any:
    """``f``: ``10 * x`` after ``steps[x]`` suspensions (0 when absent); raises at once
    for the ``x`` in ``raise_at``, fails its awaitable for those in ``fail_at``; a plain
    future resolved by ``call_soon`` for those in ``futures``."""

    def f(x: int) -> Any:
        if x in raise_at:
            raise CallFailed(f"raised at {x}")
        if x in futures:
            fut = asyncio.get_running_loop().create_future()

            def settle() -> None:
                if fut.done():  # cancelled with the stream
                    return
                if x in fail_at:
                    fut.set_exception(CallFailed(f"failed at {x}"))
                else:
                    fut.set_result(10 * x)

            fut.get_loop().call_soon(settle)
            return fut

        async def run() -> int:
            for _ in range(steps.get(x, 0)):
                await asyncio.sleep(0)
            if x in fail_at:
                raise CallFailed(f"failed at {x}")
            return 10 * x

        return run()

    return f


DECIDERS = {
    "resume": lambda _e: Supervision.resume,
    "restart": lambda _e: Supervision.restart,
}


async def run_map_async(
    xs: list[int],
    par: int,
    f: Any,
    decider: str,
    boundary: bool,
    fast_paths: bool,
    demand: list[int],
    cancel: bool,
) -> Any:
    src = Source.from_iterable(xs)
    if boundary:
        src = src.async_boundary()
    flow = src.map_async(par, f)
    if decider in DECIDERS:
        flow = flow.with_attributes(Attributes.supervision_strategy(DECIDERS[decider]))
    graph = flow.to_mat(TestSink.probe(), Keep.right)
    return await drive_on_own_materializer(graph, "map-async-pool", fast_paths, demand, cancel)


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 30), max_size=60),
    par=st.integers(1, 4),
    steps=st.dictionaries(st.integers(0, 30), st.integers(0, 3)),
    raise_at=st.frozensets(st.integers(0, 30), max_size=2),
    fail_at=st.frozensets(st.integers(0, 30), max_size=2),
    futures=st.frozensets(st.integers(0, 30), max_size=6),
    decider=st.sampled_from(["stop", "resume", "restart"]),
    boundary=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_ordered_map_async_pool_matches_python(
    xs: list[int],
    par: int,
    steps: dict[int, int],
    raise_at: frozenset[int],
    fail_at: frozenset[int],
    futures: frozenset[int],
    decider: str,
    boundary: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    """Fast paths on and off both give the reference's elements in input order, within
    demand, and end the same way (complete, cancelled, or the injected failure)."""
    f = call(steps, raise_at, fail_at, futures)
    bad = raise_at | fail_at
    if decider == "stop":
        cut = next((i for i, x in enumerate(xs) if x in bad), None)
        expected = [10 * x for x in (xs if cut is None else xs[:cut])]
    else:
        cut = None
        expected = [10 * x for x in xs if x not in bad]
    ends = []
    for fast_paths in (True, False):
        out, end = await run_map_async(xs, par, f, decider, boundary, fast_paths, demand, cancel)
        assert out == expected[: len(out)], (fast_paths, out, expected)
        if end == "complete":
            assert out == expected and cut is None, fast_paths
        elif end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1]), fast_paths
        else:
            assert isinstance(end, CallFailed) and cut is not None, (fast_paths, end)
            # The first bad element, or (under stop, a call that raised at once while an
            # earlier one still ran) a later one among the ``par`` calls held at most.
            window = {f"at {x}" for x in xs[cut : cut + par] if x in bad}
            assert any(str(end).endswith(w) for w in window), (fast_paths, end, window)
        ends.append(end if isinstance(end, str) else type(end))
    if not cancel:  # both ran to their end: both complete, or both fail
        assert ends[0] == ends[1], ends


def merged_branches(
    branches: list[list[int]], par: int, f: Any, decider: str, boundary: bool, eager: bool
) -> Any:
    """``len(branches)`` sources, each ``map_async(par, f)`` of ``(branch, x)``, merged."""

    async def g(pair: tuple[int, int]) -> tuple[int, int]:
        b, x = pair
        return (b, await f(x))

    def blueprint(b: Any, sink: Any) -> Any:
        merge = b.add(Merge(len(branches), eager_complete=eager))
        for i, xs in enumerate(branches):
            src = Source.from_iterable([(i, x) for x in xs])
            if boundary:
                src = src.async_boundary()
            flow = Flow().map_async(par, g)
            if decider in DECIDERS:
                flow = flow.with_attributes(Attributes.supervision_strategy(DECIDERS[decider]))
            b.add(src) >> b.add(flow) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, TestSink.probe()))


@SETTINGS
@given(
    branches=st.lists(st.lists(st.integers(0, 30), max_size=25), min_size=1, max_size=4),
    par=st.integers(1, 3),
    steps=st.dictionaries(st.integers(0, 30), st.integers(0, 3)),
    fail_at=st.frozensets(st.integers(0, 30), max_size=2),
    futures=st.frozensets(st.integers(0, 30), max_size=4),
    decider=st.sampled_from(["stop", "resume"]),
    boundary=st.booleans(),
    eager=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_map_async_into_merge_keeps_each_branch_in_order(
    branches: list[list[int]],
    par: int,
    steps: dict[int, int],
    fail_at: frozenset[int],
    futures: frozenset[int],
    decider: str,
    boundary: bool,
    eager: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    """``map_async(par)`` branches into a ``Merge`` (the offer of results, taken straight
    through when they fit downstream's demand, and with parallelism 1 the synchronous pull
    back): with fast paths on and off, each branch's results arrive in its
    input order, a prefix of its reference (all of it when the stream completes without
    ``eager_complete``), nothing beyond demand, the same kind of end."""
    f = call(steps, frozenset(), fail_at, futures)
    if decider == "stop":
        refs = [
            [10 * x for x in itertools.takewhile(lambda x: x not in fail_at, xs)] for xs in branches
        ]
        may_fail = any(x in fail_at for xs in branches for x in xs)
    else:
        refs = [[10 * x for x in xs if x not in fail_at] for xs in branches]
        may_fail = False
    ends = []
    for fast_paths in (True, False):
        graph = merged_branches(branches, par, f, decider, boundary, eager)
        out, end = await drive_on_own_materializer(
            graph, "map-async-merge", fast_paths, demand, cancel
        )
        for i, ref in enumerate(refs):
            got = [v for b, v in out if b == i]
            assert got == ref[: len(got)], (fast_paths, i, got, ref)
            if end == "complete" and not eager:
                assert got == ref, (fast_paths, i)
        if end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1]), fast_paths
        elif end != "complete":
            assert may_fail and isinstance(end, CallFailed), (fast_paths, end)
        ends.append(end if isinstance(end, str) else type(end))
    if not cancel and not eager:
        assert ends[0] == ends[1], ends


async def test_calls_of_one_worker_share_its_context() -> None:
    """Documented (``MapAsync``): calls run in their worker's context, so with
    parallelism 1 a ``ContextVar`` one call sets is seen by the next (a task per call would
    give each call a fresh copy, and every call would see the default)."""
    var: contextvars.ContextVar[int] = contextvars.ContextVar("h2_pool_var", default=-1)

    async def f(x: int) -> int:
        seen = var.get()
        var.set(x)
        await asyncio.sleep(0)
        return seen

    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths, name="pool-context") as mat:
            got = await Source.from_iterable(range(5)).map_async(1, f).run_with(Sink.seq(), mat)
        assert got == [-1, 0, 1, 2, 3], fast_paths
    assert var.get() == -1  # the caller's context is untouched
