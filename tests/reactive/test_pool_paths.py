"""Differential property tests of the worker-pool fast paths: ``Balance``'s per-output
hand-over to a ``map_async`` behind it, and ``map_async(1)``'s first step skipped after a
call that suspended.

A worker pool ``source -> Balance(n) -> n x map_async(p, f) -> Merge(n)`` runs with fast
paths on and off; which worker takes an element is not part of Balance's semantics, so
the outputs are compared with a Python reference as a multiset (a sub-multiset when the
stream fails or is cancelled). The source is a plain iterable (the one the hand-over
takes from at once), failing at a random element, or yielding ``None`` there (the source
fails, naming its own port); ``f`` suspends or not per element, raises or fails its
awaitable at random elements (supervision stop or resume); an async boundary sometimes
sits before the Balance. Then a single ``map_async(1)`` over calls that suspend in runs
keeps the order of a plain ``for`` loop with ``await``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
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
from reactive._ops.sources import IterableSource, _IterableLogic
from reactive._stage.batch import NOTHING
from reactive.testkit import TestSink
from tests.reactive.test_junction_batches import DEMAND, SETTINGS, drive_on_own_materializer

if TYPE_CHECKING:
    from collections.abc import Iterator


class SourceFailed(Exception):
    """The failure injected into the source's iterator."""


class CallFailed(Exception):
    """The failure injected into ``f`` (raised, or in its awaitable)."""


class Items:
    """An iterable giving ``xs``, failing (``fail``) or yielding ``None`` (``none``) at
    index ``at``; a fresh iterator per materialization."""

    def __init__(self, xs: list[int], at: int | None, none: bool) -> None:
        self.xs = xs
        self.at = at
        self.none = none

    def __iter__(self) -> Iterator[Any]:
        for i, x in enumerate(self.xs):
            if i == self.at:
                if self.none:
                    yield None
                    return
                raise SourceFailed(f"at {i}")
            yield x


def call(suspend: frozenset[int], raise_at: frozenset[int], fail_at: frozenset[int]) -> Any:
    """``f``: ``10 * x``, suspending first for the ``x`` in ``suspend``; raises at once for
    the ``x`` in ``raise_at``, fails its awaitable for those in ``fail_at``."""

    def f(x: int) -> Any:
        if x in raise_at:
            raise CallFailed(f"raised at {x}")

        async def run() -> int:
            if x in suspend:
                await asyncio.sleep(0)
            if x in fail_at:
                raise CallFailed(f"failed at {x}")
            return 10 * x

        return run()

    return f


def pool(
    items: Items, n: int, par: int, f: Any, resume: bool, boundary: bool, wait_all: bool
) -> Any:
    def blueprint(b: Any, sink: Any) -> Any:
        src = Source.from_iterable(items)
        if boundary:
            src = src.async_boundary()
        bal = b.add(Balance(n, wait_for_all_downstreams=wait_all))
        merge = b.add(Merge(n))
        b.add(src) >> bal.in_
        for i in range(n):
            worker = Flow().map_async(par, f)
            if resume:
                worker = worker.with_attributes(
                    Attributes.supervision_strategy(lambda _e: Supervision.resume)
                )
            bal.out(i) >> b.add(worker) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, TestSink.probe()))


async def run_pool(make: Any, fast_paths: bool, demand: list[int], cancel: bool) -> Any:
    return await drive_on_own_materializer(make(), "pool-paths", fast_paths, demand, cancel)


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 30), max_size=60),
    n=st.integers(1, 4),
    par=st.integers(1, 5),
    suspend=st.frozensets(st.integers(0, 30)),
    raise_at=st.frozensets(st.integers(0, 30), max_size=2),
    fail_at=st.frozensets(st.integers(0, 30), max_size=2),
    src_at=st.one_of(st.none(), st.integers(0, 60)),
    none=st.booleans(),
    resume=st.booleans(),
    boundary=st.booleans(),
    wait_all=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_balance_into_map_async_workers_matches_python(
    xs: list[int],
    n: int,
    par: int,
    suspend: frozenset[int],
    raise_at: frozenset[int],
    fail_at: frozenset[int],
    src_at: int | None,
    none: bool,
    resume: bool,
    boundary: bool,
    wait_all: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    """Fast paths on and off agree with the reference: every element once, through ``f``
    (the ones it raised or failed for dropped with resume), nothing beyond demand, and the
    same kind of end (complete, cancelled, or the injected failure)."""
    items = Items(xs, src_at, none)
    f = call(suspend, raise_at, fail_at)
    bad = raise_at | fail_at
    stream = xs if src_at is None else xs[:src_at]
    if resume:
        expected = [10 * x for x in stream if x not in bad]
        source_ends = src_at is not None and src_at < len(xs)
        may_fail = source_ends
    else:
        cut = next((i for i, x in enumerate(stream) if x in bad), None)
        expected = [10 * x for x in stream]
        may_fail = cut is not None or (src_at is not None and src_at < len(xs))
        if cut is not None:
            expected = [10 * x for x in stream if x not in bad]
    ends = []
    for fast_paths in (True, False):
        out, end = await run_pool(
            lambda: pool(items, n, par, f, resume, boundary, wait_all), fast_paths, demand, cancel
        )
        rest = list(expected)
        for v in out:
            rest.remove(v)  # raises if v is not (or no longer) in the reference
        if end == "complete":
            assert not rest, (fast_paths, rest)
            assert not may_fail or resume, fast_paths
        elif end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1]), fast_paths
        else:
            assert may_fail, (fast_paths, end)
            if isinstance(end, SourceFailed | CallFailed):
                pass
            else:  # the source's None element: its own port is named
                assert none and src_at is not None, end
                assert "from_iterable" in str(end) or "Source" in str(end), end
        ends.append(end if isinstance(end, str) else type(end))
    if not cancel:  # both ran to their end: both complete, or both fail
        assert (ends[0] == "complete") == (ends[1] == "complete"), ends


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 40), max_size=150),
    suspend=st.frozensets(st.integers(0, 40)),
    fail_at=st.frozensets(st.integers(0, 40), max_size=2),
    resume=st.booleans(),
    boundary=st.booleans(),
)
async def test_sequential_map_async_over_suspending_runs_matches_a_loop(
    xs: list[int], suspend: frozenset[int], fail_at: frozenset[int], resume: bool, boundary: bool
) -> None:
    """``map_async(1, f)`` where calls suspend in runs (the first step is skipped after a
    suspension, tried again later): the order and outcome of ``for x in xs: await f(x)``."""
    f = call(suspend, frozenset(), fail_at)
    expected: list[int] = []
    failed = False
    for x in xs:
        try:
            expected.append(await f(x))
        except CallFailed:
            if not resume:
                failed = True
                break
    for fast_paths in (True, False):
        src = Source.from_iterable(xs)
        if boundary:
            src = src.async_boundary()
        flow = src.map_async(1, f)
        if resume:
            flow = flow.with_attributes(
                Attributes.supervision_strategy(lambda _e: Supervision.resume)
            )
        async with Materializer(fast_paths=fast_paths, name="pool-seq") as mat:
            try:
                got = await flow.run_with(Sink.seq(), mat)
            except CallFailed:
                assert failed, fast_paths
            else:
                assert not failed, fast_paths
                assert got == expected, fast_paths


async def calls_in_a_pool(
    monkeypatch: pytest.MonkeyPatch, cls: type, method: str, size: int = 1_000
) -> int:
    """How often ``cls.<method>`` is called while ``Balance(2)`` -> two ``map_async(1)``
    -> ``Merge(2)`` sums ``range(size)`` (the sum checked)."""
    calls = 0
    original = getattr(cls, method)

    def counting(self: Any, *args: Any) -> Any:
        nonlocal calls
        calls += 1
        return original(self, *args)

    monkeypatch.setattr(cls, method, counting)

    async def f(x: int) -> int:
        await asyncio.sleep(0)
        return x

    def blueprint(b: Any, sink: Any) -> Any:
        bal = b.add(Balance(2))
        merge = b.add(Merge(2))
        b.add(Source.from_iterable(range(size))) >> bal.in_
        for i in range(2):
            bal.out(i) >> b.add(Flow().map_async(1, f)) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, lambda a, x: a + x)))
    async with Materializer(name=f"pool-{method}", metrics=False) as mat:
        assert await graph.run(mat) == size * (size - 1) // 2
    return calls


async def test_balance_takes_one_element_of_an_iterable_source_in_one_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Balance hands a ``map_async(1)`` worker one element of an iterable source with the
    source's ``_hand_over_one`` (its take and look-ahead in one call), not the lazy take
    plus ``_hand_over_settle``; the pool's sum is right."""
    settles = await calls_in_a_pool(monkeypatch, _IterableLogic, "_hand_over_settle")
    assert settles < 1_000 // 20, settles


async def test_hand_over_one_keeps_a_none_element_for_the_pull() -> None:
    """An iterable source's ``_hand_over_one`` does not hand over a ``None`` element: it
    answers ``NOTHING`` and leaves it, so the pull that follows fails the source."""
    logic: Any = None

    class Spy(IterableSource):
        def create_logic(self, attributes: Any) -> Any:
            nonlocal logic
            logic = super().create_logic(attributes)
            return logic

    async with Materializer(name="one-none") as mat:
        probe = Source.from_graph(Spy([1, None, 2])).run_with(TestSink.probe(), mat)
        await asyncio.sleep(0)
        assert logic._hand_over_one() == 1
        assert logic._hand_over_one() is NOTHING
        assert logic._hand_over_one() is NOTHING  # unchanged: still waits for the pull
        probe.request(1)
        kind, v = await probe._next_event("the source's failure")
        assert kind == "error", (kind, v)
        assert "[iterable_source]" in str(v) and "Spy.out" in str(v), v


@pytest.mark.parametrize("at", [0, 1, 5])
async def test_a_none_element_fails_the_source_of_a_map_async_1_pool(at: int) -> None:
    """A ``None`` element of the iterable source feeding a ``Balance`` of ``map_async(1)``
    workers fails the source, naming its port (no call sees it), fast paths on and off."""
    xs: list[Any] = list(range(8))
    xs[at] = None
    calls: list[Any] = []

    async def f(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0)
        return x

    def blueprint(b: Any, sink: Any) -> Any:
        bal = b.add(Balance(2))
        merge = b.add(Merge(2))
        b.add(Source.from_iterable(xs)) >> bal.in_
        for i in range(2):
            bal.out(i) >> b.add(Flow().map_async(1, f)) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    for fast_paths in (True, False):
        calls.clear()
        graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq()))
        async with Materializer(fast_paths=fast_paths, name="pool-none") as mat:
            with pytest.raises(Exception, match=r"\[iterable_source\].*None") as err:
                await graph.run(mat)
        assert "from_iterable" in str(err.value) or "Source" in str(err.value)
        assert None not in calls and calls == sorted(calls), calls


async def test_balance_hands_a_map_async_1_worker_one_element_without_a_tuple(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ``map_async(1)`` worker behind Balance takes its next element through Balance's
    one-element hand-over (``_hand_over_one_i``), not the n-element one it stands for."""
    from reactive._ops.fan_out.balance import _BalanceBatchLogic

    tuples = await calls_in_a_pool(monkeypatch, _BalanceBatchLogic, "_hand_over_i")
    assert tuples < 1_000 // 20, tuples
