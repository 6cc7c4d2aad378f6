"""Review 3, defects 1-3: cancelling a ``Sink.queue`` pull or a ``Source.queue`` offer.

The rules (see ``reactive/_ops/queues.py``): a cancelled pull raises ``CancelledError`` and
an element the stage had already handed it goes back to the front of the queue; a
cancelled offer the stage had not taken yet is withdrawn (never in the stream, no longer
holding up ``complete()``) and raises, while an offer the stage had already settled
returns its result. The races are driven explicitly: the stage settles the operation,
then the task is cancelled before it resumes (what ``asyncio.wait_for`` does when the
element arrives in the same event-loop turn as the timeout).
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from reactive import Keep, Materializer, OverflowStrategy, QueueOfferResult, Sink, Source
from reactive.testkit import TestSink, TestSource


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


# -- defect 1: Sink.queue pull ------------------------------------------------------------------
async def test_cancelled_pull_gives_its_element_back(materializer: Materializer) -> None:
    q, sq = Source.queue(4).to_mat(Sink.queue(), Keep.both).run(materializer)
    t = asyncio.ensure_future(sq.pull())
    await _turns()  # the pull waits
    assert await q.offer("x") is QueueOfferResult.enqueued  # the stage settles the pull...
    t.cancel()  # ...and the caller gives up before the pull resumed
    with pytest.raises(asyncio.CancelledError):
        await t
    assert await q.offer("y") is QueueOfferResult.enqueued
    q.complete()
    assert await sq.pull() == "x"  # not lost, still first
    assert await sq.pull() == "y"
    assert await sq.pull() is None


async def test_given_back_element_goes_to_a_pull_still_waiting(
    materializer: Materializer,
) -> None:
    up, sq = (
        TestSource.probe().to_mat(Sink.queue(max_concurrent_pulls=2), Keep.both).run(materializer)
    )
    a = asyncio.ensure_future(sq.pull())
    await _turns()
    b = asyncio.ensure_future(sq.pull())
    await _turns()  # both pulls wait, a first
    up.send_next(1)  # handed to a...
    a.cancel()  # ...which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await a
    assert await asyncio.wait_for(b, 1) == 1  # b, still waiting, gets it
    up.send_next(2)
    up.send_complete()
    assert await sq.pull() == 2
    assert await sq.pull() is None


async def test_given_back_element_stays_before_later_elements(
    materializer: Materializer,
) -> None:
    up, sq = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
    t = asyncio.ensure_future(sq.pull())
    await _turns()
    up.send_next(1)  # handed to the pull
    up.send_next(2)  # buffered before the cancelled pull resumes
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    up.send_next(3)
    up.send_complete()
    assert [x async for x in sq] == [1, 2, 3]


async def test_cancelled_pull_after_cancel_does_not_revive_elements(
    materializer: Materializer,
) -> None:
    q, sq = Source.queue(4).to_mat(Sink.queue(), Keep.both).run(materializer)
    t = asyncio.ensure_future(sq.pull())
    await _turns()
    await q.offer("x")
    sq.cancel()  # the caller cancels the stream: elements are discarded
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    assert await sq.pull() is None
    assert await q.watch_completion() is not None


# -- defect 2: Source.queue offer ---------------------------------------------------------------
async def test_offer_settled_before_its_cancellation_returns_its_result(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q.offer(1) is QueueOfferResult.enqueued  # buffer full
    t = asyncio.ensure_future(q.offer(2))
    await _turns()  # offer(2) waits for room
    probe.request(1)  # room: the stage enqueues 2 and settles the offer...
    t.cancel()  # ...and the caller gives up before the offer resumed
    assert await t is QueueOfferResult.enqueued  # the caller learns 2 is in the stream
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [1, 2]


async def test_offer_cancelled_while_waiting_is_withdrawn(materializer: Materializer) -> None:
    q, probe = (
        Source.queue(1, max_concurrent_offers=1)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    assert await q.offer(1) is QueueOfferResult.enqueued
    t = asyncio.ensure_future(q.offer(2))
    await _turns()
    t.cancel()  # not taken yet: withdrawn
    with pytest.raises(asyncio.CancelledError):
        await t
    # It no longer counts against max_concurrent_offers: another offer may wait.
    t3 = asyncio.ensure_future(q.offer(3))
    await _turns()
    probe.request(2)
    assert await asyncio.wait_for(t3, 1) is QueueOfferResult.enqueued
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [1, 3]


async def test_wait_for_timeout_racing_the_settlement_returns_the_result(
    materializer: Materializer,
) -> None:
    # wait_for cancels the offer when its timeout fires; the offer was settled in the
    # same turn, so wait_for returns the result instead of raising TimeoutError.
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    await q.offer(1)
    loop = asyncio.get_running_loop()
    inner: list[asyncio.Task[Any]] = []

    async def offer2() -> QueueOfferResult:
        inner.append(asyncio.current_task())  # type: ignore[arg-type]
        return await q.offer(2)

    t = asyncio.ensure_future(offer2())
    await _turns()

    def settle_then_cancel() -> None:
        probe.request(1)  # settles offer(2)
        inner[0].cancel()  # the timeout's cancellation, in the same turn

    loop.call_soon(settle_then_cancel)
    assert await t is QueueOfferResult.enqueued
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [1, 2]


# -- defect 3: Source.queue(0) completion -------------------------------------------------------
async def test_queue0_completes_when_the_waiting_offer_was_cancelled_before_complete(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(0).to_mat(TestSink.probe(), Keep.both).run(materializer)
    t = asyncio.ensure_future(q.offer(1))
    await _turns()  # waits for demand
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    q.complete()
    await probe.expect_complete(timeout=1.0)  # no demand needed: nothing is left
    assert await asyncio.wait_for(q.watch_completion(), 1) is not None


async def test_queue0_completes_when_the_waiting_offer_is_cancelled_after_complete(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(0).to_mat(TestSink.probe(), Keep.both).run(materializer)
    t = asyncio.ensure_future(q.offer(1))
    await _turns()
    q.complete()  # waits for the pending offer...
    await probe.expect_no_message(0.02)
    t.cancel()  # ...which is withdrawn
    with pytest.raises(asyncio.CancelledError):
        await t
    await probe.expect_complete(timeout=1.0)


# -- stress: wait_for timeouts, exact accounting ------------------------------------------------
async def test_stress_pulls_with_timeouts_lose_nothing(materializer: Materializer) -> None:
    rnd = random.Random(3)
    n = 200

    async def slow(x: int) -> int:
        await asyncio.sleep(rnd.random() * 0.003)
        return x

    # One puller: every element arrives, in order.
    sq = Source.from_iterable(range(n)).map_async(1, slow).run_with(Sink.queue(), materializer)
    got: list[int] = []
    timeouts = 0
    while True:
        try:
            x = await asyncio.wait_for(sq.pull(), 0.0015)
        except TimeoutError:
            timeouts += 1
            continue
        if x is None:
            break
        got.append(x)
    assert got == list(range(n))
    assert timeouts > 0

    # Four pullers: every element exactly once.
    sq = (
        Source.from_iterable(range(n))
        .map_async(1, slow)
        .run_with(Sink.queue(max_concurrent_pulls=4), materializer)
    )
    got = []

    async def puller() -> None:
        while True:
            try:
                x = await asyncio.wait_for(sq.pull(), 0.0015)
            except TimeoutError:
                continue
            if x is None:
                return
            got.append(x)

    await asyncio.wait_for(asyncio.gather(*(puller() for _ in range(4))), 30)
    assert sorted(got) == list(range(n))


async def _offer_with_retries(
    q: Any, first: int, count: int, enqueued: list[int], timeouts: list[int]
) -> None:
    for i in range(first, first + count):
        while True:  # retry after a timeout until the element's fate is known
            try:
                r = await asyncio.wait_for(q.offer(i), 0.0015)
            except TimeoutError:
                timeouts.append(i)
                continue
            assert r is QueueOfferResult.enqueued
            enqueued.append(i)
            break


async def test_stress_offers_with_timeouts_no_loss_no_duplicate(
    materializer: Materializer,
) -> None:
    rnd = random.Random(5)

    async def slow(x: int) -> int:
        await asyncio.sleep(rnd.random() * 0.003)
        return x

    for buffer_size in (0, 2):
        q, fut = (
            Source.queue(buffer_size, OverflowStrategy.backpressure, max_concurrent_offers=4)
            .map_async(1, slow)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        enqueued: list[int] = []
        timeouts: list[int] = []
        offerers = (_offer_with_retries(q, k * 100, 40, enqueued, timeouts) for k in range(4))
        await asyncio.wait_for(asyncio.gather(*offerers), 30)
        q.complete()
        out = await asyncio.wait_for(fut, 30)
        assert timeouts  # the race was exercised
        assert len(enqueued) == 160
        assert sorted(out) == sorted(enqueued)  # nothing lost, nothing duplicated
