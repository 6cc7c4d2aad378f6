"""Cases of the last sessions' fast paths no other test covered, found by a review.

Each runs with the fast paths on and off and asserts the exact outcome (elements, order,
failure) on both: a fast path must be invisible. The range source's sub-range takes
(7b99bad) with takes, huge and long-int ranges, a fan-out and a side-effecting scan in
front of ``Sink.last``; the worker pool into ``Sink.fold`` (3fd4fb3, 4fbab8d) with an
eager Merge and a shutdown while calls are pending; ``Source.queue``'s direct offer
(48f1914) with every overflow strategy at exactly a full buffer and a sink failing inside
the offer's own run.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Balance,
    Broadcast,
    BufferOverflowError,
    ClosedShape,
    Flow,
    GraphDSL,
    Keep,
    Materializer,
    Merge,
    OverflowStrategy,
    QueueOfferResult,
    RunnableGraph,
    Sink,
    Source,
)
from reactive.testkit import TestSink

FAST = pytest.mark.parametrize("fast", [True, False])

E = QueueOfferResult.enqueued
D = QueueOfferResult.dropped


# -- a range source's sub-range takes (7b99bad) ------------------------------------------------
@FAST
async def test_ranges_with_steps_behind_a_filter_and_a_take(fast: bool) -> None:
    """Negative steps, an empty range and a range far longer than what is taken (its
    length still fits an index: the sub-range path) give exactly the plain elements."""
    async with Materializer(fast_paths=fast) as mat:
        down = await (
            Source.from_iterable(range(100, -100, -3))
            .filter(lambda x: x % 2 == 0)
            .take(7)
            .run_with(Sink.seq(), mat)
        )
        empty = await (
            Source.from_iterable(range(5, 5, -1))
            .filter(lambda x: True)
            .run_with(Sink.last_option(), mat)
        )
        huge = await (
            Source.from_iterable(range(10**15))
            .filter(lambda x: x % 7 == 3)
            .map(lambda x: x * 2)
            .take(5)
            .run_with(Sink.seq(), mat)
        )
    assert down == [100, 94, 88, 82, 76, 70, 64]
    assert empty is None
    assert huge == [6, 20, 34, 48, 62]


@FAST
async def test_a_range_of_ints_past_a_machine_word(fast: bool) -> None:
    """A range of values beyond 2**63 (its iterator is the long-int kind, whose
    ``__setstate__`` the sub-range settling uses) into ``Sink.seq`` and ``Sink.last``."""
    base = 2**63
    data = range(base - 50, base + 3000, 7)
    want = [x - base for x in data if x % 3 == 0]
    async with Materializer(fast_paths=fast) as mat:
        got = await (
            Source.from_iterable(data)
            .filter(lambda x: x % 3 == 0)
            .map(lambda x: x - base)
            .run_with(Sink.seq(), mat)
        )
        last = await (
            Source.from_iterable(data)
            .filter(lambda x: x % 3 == 0)
            .map(lambda x: x - base)
            .run_with(Sink.last(), mat)
        )
    assert got == want
    assert last == want[-1]


@FAST
async def test_a_range_into_a_broadcast_with_a_take_on_one_branch(fast: bool) -> None:
    def blueprint(b: Any, s1: Any, s2: Any) -> Any:
        bcast = b.add(Broadcast(2))
        b.add(Source.from_iterable(range(1000, 0, -7))) >> bcast.in_
        bcast.out(0) >> b.add(Flow().filter(lambda x: x % 2 == 0).take(10)) >> s1.in_
        bcast.out(1) >> b.add(Flow().map(lambda x: -x)) >> s2.in_
        return ClosedShape

    async with Materializer(fast_paths=fast) as mat:
        graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq(), Sink.seq()))
        first, second = graph.run(mat)
        got = (await first, await second)
    evens = [x for x in range(1000, 0, -7) if x % 2 == 0][:10]
    # (the take's cancel does not cancel the broadcast: the other branch gets everything)
    assert got == (evens, [-x for x in range(1000, 0, -7)])


@FAST
async def test_sink_last_behind_a_scan_sees_every_side_effect_in_order(fast: bool) -> None:
    """A chain ending in a side-effecting scan in front of ``Sink.last`` (the last-only
    run): the scan's function still runs on every element, in order, once."""
    seen: list[int] = []

    def step(acc: int, x: int) -> int:
        seen.append(x)
        return acc + x

    async with Materializer(fast_paths=fast) as mat:
        got = await (
            Source.from_iterable(range(3000))
            .filter(lambda x: x % 3 != 0)
            .scan(0, step)
            .run_with(Sink.last(), mat)
        )
    want = [x for x in range(3000) if x % 3 != 0]
    assert seen == want
    assert got == sum(want)


@FAST
async def test_sink_last_fails_when_the_chain_fails_mid_batch(fast: bool) -> None:
    """Akka's Sink.last fails its future on a failure: the elements before it (pushed
    last-only in the same batch) do not make it succeed."""

    def f(x: int) -> int:
        if x == 777:
            raise KeyError(x)
        return x

    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(KeyError):
            await Source.from_iterable(range(3000)).map(f).run_with(Sink.last(), mat)
        # and with a list source (checked run, no trusted range)
        with pytest.raises(KeyError):
            await Source.from_iterable(list(range(3000))).map(f).run_with(Sink.last(), mat)


# -- the worker pool into Sink.fold (3fd4fb3, 4fbab8d) --------------------------------------------
def _pool(n: int, xs: Any, f: Any, sink: Any, eager: bool = False) -> RunnableGraph[Any]:
    def blueprint(b: Any, s: Any) -> Any:
        bal = b.add(Balance(n))
        merge = b.add(Merge(n, eager_complete=eager))
        b.add(Source.from_iterable(xs)) >> bal.in_
        for i in range(n):
            bal.out(i) >> b.add(Flow().map_async(1, f)) >> merge.in_(i)
        merge.out >> s.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink))


@FAST
async def test_a_pool_into_fold_completes_after_its_last_pending_call(fast: bool) -> None:
    """Upstream completes while calls are still suspended: the fold's value waits for
    them (every element folded once)."""

    async def f(x: int) -> int:
        for _ in range(x % 4):
            await asyncio.sleep(0)
        return x

    async with Materializer(fast_paths=fast) as mat:
        got = await _pool(3, range(60), f, Sink.fold([], lambda acc, x: [*acc, x])).run(mat)
    assert sorted(got) == list(range(60))


@FAST
async def test_a_pool_into_fold_aborted_while_calls_are_pending(fast: bool) -> None:
    """The materializer shuts down while every worker's call is suspended: the fold's
    value fails with AbruptTerminationError (nothing folded is given as a result)."""
    gate = asyncio.Event()
    started: list[int] = []

    async def f(x: int) -> int:
        started.append(x)
        await gate.wait()
        return x

    mat = Materializer(fast_paths=fast)
    result = _pool(3, range(10), f, Sink.fold(0, lambda a, x: a + x)).run(mat)
    for _ in range(20):
        await asyncio.sleep(0)
    assert sorted(started) == [0, 1, 2]
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await asyncio.wait_for(result, 2)


# -- Source.queue's direct offer (48f1914) -------------------------------------------------------
@FAST
@pytest.mark.parametrize(
    ("strategy", "results", "emitted"),
    [
        (OverflowStrategy.drop_head, [E, E, E, E, E], [0, 3, 4]),
        (OverflowStrategy.drop_tail, [E, E, E, E, E], [0, 1, 4]),
        (OverflowStrategy.drop_buffer, [E, E, E, E, E], [0, 3, 4]),
        (OverflowStrategy.drop_new, [E, E, E, D, D], [0, 1, 2]),
    ],
)
async def test_queue_overflow_at_exactly_a_full_buffer_after_a_direct_offer(
    fast: bool, strategy: OverflowStrategy, results: list[Any], emitted: list[int]
) -> None:
    """Demand 1: the first offer goes straight down (the direct path), the next two fill
    the buffer of 2 exactly, the last two meet it full."""
    async with Materializer(fast_paths=fast) as mat:
        queue, probe = Source.queue(2, strategy).to_mat(TestSink.probe(), Keep.both).run(mat)
        probe.request(1)
        await probe.ensure_subscription()
        for _ in range(5):
            await asyncio.sleep(0)
        got = [await queue.offer(i) for i in range(5)]
        probe.request(10)
        assert await probe.expect_next_n(len(emitted)) == emitted
        queue.complete()
        await probe.expect_complete()
    assert got == results


@FAST
async def test_queue_fail_strategy_at_exactly_a_full_buffer(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        queue, probe = (
            Source.queue(2, OverflowStrategy.fail).to_mat(TestSink.probe(), Keep.both).run(mat)
        )
        probe.request(1)
        await probe.ensure_subscription()
        for _ in range(5):
            await asyncio.sleep(0)
        got = [await queue.offer(i) for i in range(3)]
        assert got == [E, E, E]
        with pytest.raises(BufferOverflowError):
            await queue.offer(3)
        assert await probe.expect_next() == 0
        assert isinstance(await probe.expect_error(), BufferOverflowError)
        with pytest.raises(BufferOverflowError):
            await queue.watch_completion()


@FAST
async def test_a_sink_failing_inside_an_offers_own_run(fast: bool) -> None:
    """The sink raises on element 3, which the direct path runs on the offering task's
    stack: that offer still says enqueued (the element was taken), the next ones raise
    the failure, and so does ``watch_completion``."""
    seen: list[int] = []

    def f(x: int) -> None:
        if x == 3:
            raise ValueError("three")
        seen.append(x)

    async with Materializer(fast_paths=fast) as mat:
        queue = Source.queue(2).to(Sink.foreach(f)).run(mat)
        for _ in range(10):
            await asyncio.sleep(0)
        results: list[Any] = []
        for i in range(6):
            try:
                results.append(await queue.offer(i))
            except ValueError as exc:
                results.append(str(exc))
        with pytest.raises(ValueError, match="three"):
            await queue.watch_completion()
    assert results == [E, E, E, E, "three", "three"]
    assert seen == [0, 1, 2]
