"""Cancelling a ``Sink.queue`` pull or a ``Source.queue`` offer (reviews 3 and 4).

The rule (see ``reactive/_ops/queues.py``), asyncio.Queue's: an element crosses between
the caller and the stage only in the caller's own task turn. A waiting offer is woken
once the stage reserved room for it and hands its element over when it resumes; a
waiting pull is woken when an element arrives and takes it when it resumes. So a
cancelled offer or pull always raises ``CancelledError`` (the cancellation propagates),
a cancelled offer's element is never in the stream (its reserved room goes to the next
waiting offer), and a cancelled pull takes nothing (the element stays first in line,
before the end of the stream). The races are driven explicitly: the stage wakes the
operation, then the task is cancelled before it resumes (what ``asyncio.wait_for`` does
when the timeout fires in the same event-loop turn as the wake-up).
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
async def test_woken_pull_cancelled_leaves_its_element_first(materializer: Materializer) -> None:
    q, sq = Source.queue(4).to_mat(Sink.queue(), Keep.both).run(materializer)
    t = asyncio.ensure_future(sq.pull())
    await _turns()  # the pull waits
    assert await q.offer("x") is QueueOfferResult.enqueued  # the pull is woken for x...
    t.cancel()  # ...and the caller gives up before the pull resumed
    with pytest.raises(asyncio.CancelledError):
        await t
    assert await q.offer("y") is QueueOfferResult.enqueued
    q.complete()
    assert await sq.pull() == "x"  # not lost, still first
    assert await sq.pull() == "y"
    assert await sq.pull() is None


async def test_element_left_by_a_cancelled_pull_goes_to_a_pull_still_waiting(
    materializer: Materializer,
) -> None:
    up, sq = (
        TestSource.probe().to_mat(Sink.queue(max_concurrent_pulls=2), Keep.both).run(materializer)
    )
    a = asyncio.ensure_future(sq.pull())
    await _turns()
    b = asyncio.ensure_future(sq.pull())
    await _turns()  # both pulls wait, a first
    up.send_next(1)  # a is woken for 1...
    a.cancel()  # ...which is cancelled before it resumes
    with pytest.raises(asyncio.CancelledError):
        await a
    assert await asyncio.wait_for(b, 1) == 1  # b, still waiting, gets it
    up.send_next(2)
    up.send_complete()
    assert await sq.pull() == 2
    assert await sq.pull() is None


async def test_element_left_by_a_cancelled_pull_stays_before_later_elements(
    materializer: Materializer,
) -> None:
    up, sq = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
    t = asyncio.ensure_future(sq.pull())
    await _turns()
    up.send_next(1)  # the pull is woken for 1
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


async def test_woken_pull_cancelled_at_the_end_leaves_its_element_before_the_end(
    materializer: Materializer,
) -> None:
    # Review 4, defect B (t32): pull a woken for x and cancelled in the same turn, pull b
    # waiting, upstream completing: b got the end and the next pull x.
    up, sq = (
        TestSource.probe().to_mat(Sink.queue(max_concurrent_pulls=2), Keep.both).run(materializer)
    )
    a = asyncio.ensure_future(sq.pull())
    await _turns()
    b = asyncio.ensure_future(sq.pull())
    await _turns()  # both wait, a first
    up.send_next("x")  # a is woken for x...
    up.send_complete()  # ...the stream ends...
    assert sq._woken == 1
    a.cancel()  # ...and a is cancelled before it resumed
    with pytest.raises(asyncio.CancelledError):
        await a
    assert await asyncio.wait_for(b, 1) == "x"  # x before the end
    assert await sq.pull() is None
    assert await sq.pull() is None


async def test_woken_pull_cancelled_at_a_failure_leaves_its_element_before_it(
    materializer: Materializer,
) -> None:
    up, sq = (
        TestSource.probe().to_mat(Sink.queue(max_concurrent_pulls=2), Keep.both).run(materializer)
    )
    a = asyncio.ensure_future(sq.pull())
    await _turns()
    b = asyncio.ensure_future(sq.pull())
    await _turns()
    up.send_next("x")
    up.send_next("y")  # both are woken, a for x, b for y
    up.send_error(ValueError("boom"))
    a.cancel()
    with pytest.raises(asyncio.CancelledError):
        await a
    assert await asyncio.wait_for(b, 1) == "x"  # b takes the first element
    assert await sq.pull() == "y"
    with pytest.raises(ValueError, match="boom"):
        await sq.pull()


async def test_pull_made_after_a_woken_one_comes_after_it(materializer: Materializer) -> None:
    up, sq = (
        TestSource.probe().to_mat(Sink.queue(max_concurrent_pulls=2), Keep.both).run(materializer)
    )
    a = asyncio.ensure_future(sq.pull())
    await _turns()
    up.send_next(1)  # a is woken for 1
    up.send_next(2)
    c = asyncio.ensure_future(sq.pull())  # made before a resumed: gets the next one
    assert await asyncio.wait_for(asyncio.gather(a, c), 1) == [1, 2]
    up.send_complete()
    assert await sq.pull() is None


# -- defect 2: Source.queue offer ---------------------------------------------------------------
async def test_offer_woken_and_cancelled_in_the_same_turn_raises_and_releases_its_room(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q.offer(1) is QueueOfferResult.enqueued  # buffer full
    t = asyncio.ensure_future(q.offer(2))
    await _turns()  # offer(2) waits for room
    probe.request(1)  # 1 goes down: the stage reserves the room for offer(2) and wakes it...
    assert q._logic.reserved == 1
    t.cancel()  # ...and the caller gives up before the offer resumed
    with pytest.raises(asyncio.CancelledError):
        await t  # the cancellation propagates
    assert q._logic.reserved == 0  # the room was released
    assert await q.offer(3) is QueueOfferResult.enqueued  # and is free for the next offer
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [1, 3]  # 2 never entered the stream


async def test_released_room_goes_to_the_next_waiting_offer(materializer: Materializer) -> None:
    q, probe = (
        Source.queue(1, max_concurrent_offers=2)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    assert await q.offer(1) is QueueOfferResult.enqueued
    t2 = asyncio.ensure_future(q.offer(2))
    t3 = asyncio.ensure_future(q.offer(3))
    await _turns()  # both wait, 2 first
    probe.request(1)  # the room goes to offer(2)...
    t2.cancel()  # ...cancelled in the same turn
    with pytest.raises(asyncio.CancelledError):
        await t2
    assert await asyncio.wait_for(t3, 1) is QueueOfferResult.enqueued  # then to offer(3)
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [1, 3]


async def test_queue0_woken_offer_cancelled_releases_the_demand(
    materializer: Materializer,
) -> None:
    q, probe = (
        Source.queue(0, max_concurrent_offers=2)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    t1 = asyncio.ensure_future(q.offer(1))
    t2 = asyncio.ensure_future(q.offer(2))
    await _turns()  # both wait for demand
    probe.request(1)  # the demand is reserved for offer(1)...
    assert q._logic.reserved == 1
    t1.cancel()  # ...cancelled in the same turn: the demand goes to offer(2)
    with pytest.raises(asyncio.CancelledError):
        await t1
    assert await asyncio.wait_for(t2, 1) is QueueOfferResult.enqueued
    assert await probe.expect_next(timeout=1.0) == 2
    t3 = asyncio.ensure_future(q.offer(3))
    await _turns()
    probe.request(1)
    t3.cancel()  # woken, cancelled: nobody waits, the demand stays free...
    with pytest.raises(asyncio.CancelledError):
        await t3
    q.complete()  # ...and completion is not held up
    await probe.expect_complete(timeout=1.0)


async def test_offers_stay_in_order_behind_a_woken_offer(materializer: Materializer) -> None:
    q, probe = (
        Source.queue(2, max_concurrent_offers=4)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    assert await q.offer(1) is QueueOfferResult.enqueued
    assert await q.offer(2) is QueueOfferResult.enqueued  # full
    t3 = asyncio.ensure_future(q.offer(3))
    await _turns()  # waits
    t4 = asyncio.ensure_future(q.offer(4))  # its first step runs before offer(3) resumes
    probe.request(2)  # 1 and 2 go down: room for 3 is reserved, one more room is free
    assert q._logic.reserved == 1 and not q._logic.buf
    t5 = asyncio.ensure_future(q.offer(5))
    assert await asyncio.wait_for(asyncio.gather(t3, t4), 1) == [QueueOfferResult.enqueued] * 2
    assert list(q._logic.buf) == [3, 4]  # 4, offered while 3 was woken, went behind it
    probe.request(10)
    assert await asyncio.wait_for(t5, 1) is QueueOfferResult.enqueued
    q.complete()
    assert await probe.to_list() == [1, 2, 3, 4, 5]


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


async def test_timeout_in_the_wake_up_turn_raises_and_the_element_is_not_in(
    materializer: Materializer,
) -> None:
    # A wait_for timeout cancels the offer in the same turn the stage woke it: wait_for
    # raises TimeoutError (the cancellation propagates), and the element is not in.
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    await q.offer(1)
    loop = asyncio.get_running_loop()
    inner: list[asyncio.Task[Any]] = []

    async def offer2() -> QueueOfferResult:
        inner.append(asyncio.current_task())  # type: ignore[arg-type]
        return await q.offer(2)

    t = asyncio.ensure_future(asyncio.wait_for(offer2(), 10))
    await _turns()
    woken: list[int] = []

    def wake_then_cancel() -> None:
        probe.request(1)  # wakes offer(2)
        woken.append(q._logic.reserved)
        inner[0].cancel()  # the timeout's cancellation, in the same turn

    loop.call_soon(wake_then_cancel)
    with pytest.raises(asyncio.CancelledError):
        await t
    assert woken == [1]
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [1]


async def test_producer_loop_cancelled_at_its_wake_up_stops(
    materializer: Materializer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Review 4, defect A (t38): a `while True: await q.offer(x)` producer cancelled in the
    # turn its waiting offer was woken kept running (the cancellation was swallowed).
    from reactive._ops import queues

    async def slow(x: int) -> int:
        await asyncio.sleep(0.002)
        return x

    q, out = Source.queue(1).map_async(1, slow).to_mat(Sink.seq(), Keep.both).run(materializer)
    offered: list[int] = []

    async def producer() -> None:
        x = 0
        while True:
            await q.offer(x)
            offered.append(x)
            x += 1

    task = asyncio.ensure_future(producer())
    grant = queues.SourceQueue._grant
    cancelled_at: list[Any] = []

    def grant_then_cancel(self: Any, op: Any) -> bool:
        woke = grant(self, op)
        if woke and not cancelled_at:
            cancelled_at.append(op.elem)
            task.cancel()  # lands in the same turn as the wake-up
        return woke

    monkeypatch.setattr(queues.SourceQueue, "_grant", grant_then_cancel)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)  # the producer stops (no TimeoutError)
    monkeypatch.undo()
    assert cancelled_at and cancelled_at[0] not in offered
    assert await q.offer(-1) is QueueOfferResult.enqueued  # the room was released
    q.complete()
    assert await asyncio.wait_for(out, 2) == [*offered, -1]  # the cancelled element is not in


async def test_task_group_cancelling_a_producer_at_its_wake_up_terminates(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    offered: list[int] = []
    reserved: list[int] = []

    async def producer() -> None:
        x = 0
        while True:
            await q.offer(x)
            offered.append(x)
            x += 1

    async def body() -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(producer())
            await _turns()  # 0 buffered, offer(1) waits
            probe.request(1)  # 0 goes down, offer(1) is woken...
            reserved.append(q._logic.reserved)
            raise ValueError("boom")  # ...and the task group cancels it in the same turn

    with pytest.raises(ExceptionGroup) as info:
        await asyncio.wait_for(body(), 2)  # terminates (no TimeoutError)
    assert info.group_contains(ValueError)
    assert reserved == [1]
    assert offered == [0]
    q.complete()
    probe.request(10)
    assert await probe.to_list() == [0]  # 1 never entered the stream


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
        # One offerer: exactly what was enqueued is emitted, in order.
        q, fut = (
            Source.queue(buffer_size, OverflowStrategy.backpressure)
            .map_async(1, slow)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        enqueued: list[int] = []
        timeouts: list[int] = []
        await asyncio.wait_for(_offer_with_retries(q, 0, 100, enqueued, timeouts), 30)
        q.complete()
        out = await asyncio.wait_for(fut, 30)
        assert timeouts  # the race was exercised
        assert enqueued == list(range(100))
        assert out == enqueued  # nothing lost, nothing duplicated, in order

        # Four offerers: each element exactly once, each offerer's in its order.
        q, fut = (
            Source.queue(buffer_size, OverflowStrategy.backpressure, max_concurrent_offers=4)
            .map_async(1, slow)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        enqueued = []
        timeouts = []
        offerers = (_offer_with_retries(q, k * 100, 40, enqueued, timeouts) for k in range(4))
        await asyncio.wait_for(asyncio.gather(*offerers), 30)
        q.complete()
        out = await asyncio.wait_for(fut, 30)
        assert timeouts
        assert len(enqueued) == 160
        assert sorted(out) == sorted(enqueued)  # nothing lost, nothing duplicated
        for k in range(4):
            assert [x for x in out if x // 100 == k] == list(range(k * 100, k * 100 + 40))


async def _produce_forever(q: Any, offered: list[int]) -> None:
    x = 0
    while True:
        await q.offer(x)
        offered.append(x)
        x += 1


async def test_stress_cancelled_producer_loops_stop(materializer: Materializer) -> None:
    # task.cancel() at a random moment always stops a `while True: await q.offer(x)`
    # producer, and exactly the elements whose offer returned are emitted.
    rnd = random.Random(7)

    async def slow(x: int) -> int:
        await asyncio.sleep(rnd.random() * 0.002)
        return x

    for i in range(40):
        q, fut = (
            Source.queue(i % 3).map_async(1, slow).to_mat(Sink.seq(), Keep.both).run(materializer)
        )
        offered: list[int] = []

        task = asyncio.ensure_future(_produce_forever(q, offered))
        await asyncio.sleep(rnd.random() * 0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        q.complete()
        assert await asyncio.wait_for(fut, 5) == offered
