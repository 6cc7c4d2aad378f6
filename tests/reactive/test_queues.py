"""Source.queue and Sink.queue: offer results per strategy, completion, failure, iteration."""

from __future__ import annotations

import asyncio

import pytest

from reactive import (
    BufferOverflowError,
    Keep,
    Materializer,
    OverflowStrategy,
    QueueOfferResult,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource

E, D, C = QueueOfferResult.enqueued, QueueOfferResult.dropped, QueueOfferResult.queue_closed


async def test_offer_to_idle_stream_with_demand_settles_without_suspending(
    materializer: Materializer,
) -> None:
    got: list[int] = []
    q = Source.queue(4).map(lambda x: x * 2).to(Sink.foreach(got.append)).run(materializer)
    await asyncio.sleep(0)  # the stream starts and parks, idle with demand
    coro = q.offer(21)
    with pytest.raises(StopIteration) as stop:
        coro.send(None)  # completes on the first step: no suspension
    assert stop.value.value is E
    assert got == [42]
    q.complete()
    await q.watch_completion()


async def test_offer_before_start_is_delivered(materializer: Materializer) -> None:
    q, out = Source.queue(2).to_mat(Sink.seq(), Keep.both).run(materializer)
    assert await q.offer(1) is E
    assert await q.offer(2) is E
    q.complete()
    assert await out == [1, 2]
    assert await q.offer(3) is C


@pytest.mark.parametrize(
    ("strategy", "results", "emitted"),
    [
        (OverflowStrategy.drop_new, [E, E, D], [1, 2]),
        (OverflowStrategy.drop_head, [E, E, E], [2, 3]),
        (OverflowStrategy.drop_tail, [E, E, E], [1, 3]),
        (OverflowStrategy.drop_buffer, [E, E, E], [3]),
    ],
)
async def test_offer_results_per_drop_strategy(
    materializer: Materializer,
    strategy: OverflowStrategy,
    results: list[QueueOfferResult],
    emitted: list[int],
) -> None:
    q, probe = Source.queue(2, strategy).to_mat(TestSink.probe(), Keep.both).run(materializer)
    await asyncio.sleep(0)
    assert [await q.offer(x) for x in (1, 2, 3)] == results
    probe.request(10)
    await probe.expect_next(*emitted)
    q.complete()
    await probe.expect_complete()


async def test_backpressure_offer_waits_for_room(materializer: Materializer) -> None:
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q.offer(1) is E
    pending = asyncio.ensure_future(q.offer(2))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not pending.done()
    probe.request(1)
    await probe.expect_next(1)
    assert await pending is E
    probe.request(1)
    await probe.expect_next(2)
    q.complete()
    await probe.expect_complete()


async def test_backpressure_with_zero_buffer_hands_over_directly(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(0).to_mat(TestSink.probe(), Keep.both).run(materializer)
    pending = asyncio.ensure_future(q.offer("a"))
    await asyncio.sleep(0)
    assert not pending.done()
    probe.request(1)
    await probe.expect_next("a")
    assert await pending is E
    q.complete()
    await probe.expect_complete()


async def test_fail_strategy_fails_stream_and_offer(materializer: Materializer) -> None:
    q, probe = (
        Source.queue(1, OverflowStrategy.fail).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    await asyncio.sleep(0)
    assert await q.offer(1) is E
    with pytest.raises(BufferOverflowError, match="queue_source"):
        await q.offer(2)
    assert isinstance(await probe.expect_error(), BufferOverflowError)
    with pytest.raises(BufferOverflowError):
        await q.offer(3)
    with pytest.raises(BufferOverflowError):
        await q.watch_completion()


async def test_complete_drains_buffer_and_pending_offers(materializer: Materializer) -> None:
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q.offer(1) is E
    pending = asyncio.ensure_future(q.offer(2))
    await asyncio.sleep(0)
    q.complete()
    assert await q.offer(3) is D  # as Akka: dropped while terminating
    probe.request(5)
    await probe.expect_next(1, 2)
    await probe.expect_complete()
    assert await pending is E
    assert await q.watch_completion() is not None


async def test_fail_fails_stream_and_later_offers(materializer: Materializer) -> None:
    q, out = Source.queue(4).to_mat(Sink.seq(), Keep.both).run(materializer)
    boom = RuntimeError("boom")
    q.fail(boom)
    with pytest.raises(RuntimeError, match="boom"):
        await out
    with pytest.raises(RuntimeError, match="boom"):
        await q.offer(1)
    with pytest.raises(RuntimeError, match="boom"):
        await q.watch_completion()


async def test_downstream_cancel_closes_queue_and_pending_offers(
    materializer: Materializer,
) -> None:
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q.offer(1) is E
    pending = asyncio.ensure_future(q.offer(2))
    await asyncio.sleep(0)
    probe.cancel()
    assert await pending is C
    assert await q.offer(3) is C
    await q.watch_completion()


async def test_downstream_failure_is_raised_by_offer(materializer: Materializer) -> None:
    def boom(x: int) -> int:
        raise ValueError("bad element")

    q = Source.queue(4).map(boom).to(Sink.ignore()).run(materializer)
    await asyncio.sleep(0)
    await q.offer(1)
    with pytest.raises(ValueError, match="bad element"):
        await q.watch_completion()
    with pytest.raises(ValueError, match="bad element"):
        await q.offer(2)


async def test_offer_none_is_rejected(materializer: Materializer) -> None:
    q = Source.queue(1).to(Sink.ignore()).run(materializer)
    with pytest.raises(TypeError):
        await q.offer(None)
    q.complete()
    await q.watch_completion()


async def test_materializer_shutdown_fails_pending_offer() -> None:
    from reactive import AbruptTerminationError

    mat = Materializer()
    q = Source.queue(0).to(TestSink.probe()).run(mat)
    pending = asyncio.ensure_future(q.offer(1))
    await asyncio.sleep(0)
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await pending


def test_negative_buffer_rejected() -> None:
    with pytest.raises(ValueError):
        Source.queue(-1)


# -- Sink.queue ----------------------------------------------------------------------------------
async def test_sink_queue_async_for(materializer: Materializer) -> None:
    q = Source.from_iterable(range(40)).run_with(Sink.queue(), materializer)
    assert [x async for x in q] == list(range(40))
    assert await q.pull() is None


async def test_sink_queue_pull_waits_for_elements(materializer: Materializer) -> None:
    pub, q = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
    assert await pub.expect_request() == 1
    first = asyncio.ensure_future(q.pull())
    await asyncio.sleep(0)
    assert not first.done()
    pub.send_next("a")
    assert await first == "a"
    pub.send_next("b").send_complete()
    assert await q.pull() == "b"
    assert await q.pull() is None


async def test_sink_queue_backpressures_beyond_prefetch(materializer: Materializer) -> None:
    pub, q = (
        TestSource.probe()
        .to_mat(Sink.queue().add_attributes(_input_buffer(2)), Keep.both)
        .run(materializer)
    )
    assert await pub.expect_request() == 1
    pub.send_next(1)
    assert await pub.expect_request() == 1
    pub.send_next(2)
    await pub.expect_no_message(0.01)
    assert await q.pull() == 1
    assert await pub.expect_request() == 1
    q.cancel()
    await pub.expect_cancellation()


def _input_buffer(n: int) -> object:
    from reactive import Attributes

    return Attributes({"input_buffer": n})


async def test_sink_queue_failure_after_buffered_elements(materializer: Materializer) -> None:
    q = Source.from_iterable([1, 2, 0]).map(lambda x: 10 // x).run_with(Sink.queue(), materializer)
    await asyncio.sleep(0)
    assert await q.pull() == 10
    assert await q.pull() == 5
    with pytest.raises(ZeroDivisionError):
        await q.pull()
    with pytest.raises(ZeroDivisionError):
        await q.pull()


async def test_sink_queue_failure_raised_in_async_for(materializer: Materializer) -> None:
    q = Source.failed(RuntimeError("down")).run_with(Sink.queue(), materializer)
    with pytest.raises(RuntimeError, match="down"):
        async for _ in q:
            pass


async def test_sink_queue_cancel_stops_stream_and_pending_pull(materializer: Materializer) -> None:
    pub, q = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
    pending = asyncio.ensure_future(q.pull())
    await asyncio.sleep(0)
    q.cancel()
    q.cancel()  # idempotent
    assert await pending is None
    await pub.expect_cancellation()
    assert await q.pull() is None


async def test_queue_to_queue_roundtrip(materializer: Materializer) -> None:
    src, sink = Source.queue(4).map(str).to_mat(Sink.queue(), Keep.both).run(materializer)

    async def produce() -> None:
        for i in range(100):
            assert await src.offer(i) is E
        src.complete()

    task = asyncio.ensure_future(produce())
    assert [x async for x in sink] == [str(i) for i in range(100)]
    await task
