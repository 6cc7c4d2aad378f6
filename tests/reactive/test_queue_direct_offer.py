"""``SourceQueue.offer``'s direct path: an offer meeting a waiting downstream in a parked
island pushes its element on the offering task's stack (``Island.signal``'s direct run),
so the element reaches the sink before ``offer`` returns; everywhere else (before the
stream started, from inside the stream's own run, with the fast paths off) the element
goes through the mailbox as before. Each test runs with the fast paths on and off:
elements, order, offer results, back pressure and the blocked-loop watch are the same.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import Materializer, OverflowStrategy, QueueOfferResult, Sink, Source
from tests.reactive.test_blocked_loop import BlockingClock, warnings_of

FAST = pytest.mark.parametrize("fast_paths", [True, False])


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def offer_now(queue: Any, x: Any) -> Any:
    """Run ``queue.offer(x)`` to its result without awaiting (it must not wait)."""
    coro = queue.offer(x)
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the offer waited")


@FAST
async def test_an_offer_into_an_idle_stream_reaches_the_sink_before_it_returns(
    fast_paths: bool,
) -> None:
    seen: list[int] = []
    async with Materializer(fast_paths=fast_paths) as mat:
        src = Source.queue(16)
        for _ in range(5):
            src = src.map(lambda x: x + 1)
        queue = src.to(Sink.foreach(seen.append)).run(mat)
        await settle()
        for i in range(20):
            assert await queue.offer(i) is QueueOfferResult.enqueued
            if fast_paths:
                assert seen == [j + 5 for j in range(i + 1)]  # inline: already there
        queue.complete()
        await asyncio.wait_for(queue.watch_completion(), 10)
    assert seen == [i + 5 for i in range(20)]


@FAST
async def test_offers_before_the_stream_started_keep_their_order(fast_paths: bool) -> None:
    async with Materializer(fast_paths=fast_paths) as mat:
        queue, result = (
            Source.queue(4).map(lambda x: x * 2).to_mat(Sink.seq(), lambda a, b: (a, b)).run(mat)
        )
        # Not started yet: the first goes to the demand-less buffer, none is lost.
        results = [offer_now(queue, i) for i in range(4)]
        assert results == [QueueOfferResult.enqueued] * 4
        assert await queue.offer(4) is QueueOfferResult.enqueued
        queue.complete()
        assert await asyncio.wait_for(result, 10) == [0, 2, 4, 6, 8]


@FAST
async def test_an_offer_from_inside_the_streams_own_run_is_not_reentrant(
    fast_paths: bool,
) -> None:
    # The sink offers the next element while its own island runs: the element must not
    # be pushed from inside that run (re-entrance); it is handled after the sink's
    # callback returned, in order.
    log: list[str] = []
    box: dict[str, Any] = {}

    def record(x: int) -> None:
        log.append(f"in {x}")
        if x < 5:
            assert offer_now(box["queue"], x + 1) is QueueOfferResult.enqueued
        log.append(f"out {x}")

    async with Materializer(fast_paths=fast_paths) as mat:
        queue = Source.queue(2).map(lambda x: x).to(Sink.foreach(record)).run(mat)
        box["queue"] = queue
        await settle()
        assert await queue.offer(0) is QueueOfferResult.enqueued
        await settle()
        queue.complete()
        await asyncio.wait_for(queue.watch_completion(), 10)
    assert log == [s for x in range(6) for s in (f"in {x}", f"out {x}")]


@FAST
async def test_the_buffer_bound_and_back_pressure_hold_while_downstream_is_busy(
    fast_paths: bool,
) -> None:
    # Downstream takes one element and then waits on a gate: the queue fills up, the next
    # offer waits (backpressure) and is served in order once downstream resumes.
    gate = asyncio.Event()
    seen: list[int] = []

    async def slow(x: int) -> int:
        await gate.wait()
        return x

    async with Materializer(fast_paths=fast_paths) as mat:
        queue = (
            Source.queue(2, OverflowStrategy.backpressure)
            .map_async(1, slow)
            .to(Sink.foreach(seen.append))
            .run(mat)
        )
        await settle()
        accepted = 0
        while True:
            offer = asyncio.ensure_future(queue.offer(accepted))
            await settle()
            if not offer.done():
                break
            assert offer.result() is QueueOfferResult.enqueued
            accepted += 1
        # One in map_async (parallelism 1: no further demand), the buffer of 2: the
        # fourth offer waits.
        assert accepted == 3
        gate.set()
        assert await asyncio.wait_for(offer, 10) is QueueOfferResult.enqueued
        queue.complete()
        await asyncio.wait_for(queue.watch_completion(), 10)
    assert seen == list(range(accepted + 1))


@FAST
async def test_the_watch_times_a_direct_offer_and_the_events_it_runs(
    caplog: pytest.LogCaptureFixture, fast_paths: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="reactive")
    clock = BlockingClock()

    def slow(x: int) -> int:
        clock.block(0.3)
        return x

    async with Materializer(clock=clock, blocking_threshold=0.5, fast_paths=fast_paths) as mat:
        queue = Source.queue(4).map(slow).map(slow).to(Sink.ignore()).run(mat)
        await settle()
        assert await queue.offer(1) is QueueOfferResult.enqueued  # 0.6 s in one run
        await settle()
        queue.complete()
        await asyncio.wait_for(queue.watch_completion(), 10)
    messages = warnings_of(caplog)
    assert len(messages) == 1 and "blocks the event loop" in messages[0], messages
    assert "held the loop for 0.600 s" in messages[0], messages
