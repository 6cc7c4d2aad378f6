"""Acceptance specs for the source factories, the queues, the hubs, kill switch edge
cases and the Reactive Streams bridges, through the public API only.

Mirrors Akka's SourceSpec, FlowIterableSpec (AbstractFlowIteratorSpec), TickSpec,
QueueSourceSpec, QueueSinkSpec, HubSpec, KillSwitchSpec, FlowFromFutureSpec,
PublisherSinkSpec, SubscriberSourceSpec and the Reactive Streams TCK's multicast cases;
cases the older spec files already cover are not repeated here.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    BroadcastHub,
    ClosedShape,
    Flow,
    GraphDSL,
    Keep,
    KillSwitches,
    Materializer,
    MergeHub,
    OverflowStrategy,
    QueueConcurrencyError,
    QueueOfferResult,
    RunnableGraph,
    Sink,
    Source,
    StreamError,
)
from reactive.rs import SubscriptionRejectedError
from reactive.testkit import ManualClock, TestSink, TestSource

E, D, C = QueueOfferResult.enqueued, QueueOfferResult.dropped, QueueOfferResult.queue_closed


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 20) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Fresh:
    """An iterable handing out a fresh iterator from ``make`` per run."""

    def __init__(self, make: Any) -> None:
        self.make = make

    def __iter__(self) -> Iterator[Any]:
        return self.make()


class Recorder:
    """A Reactive Streams subscriber recording its signals."""

    def __init__(self) -> None:
        self.subscription: Any = None
        self.signals: list[str] = []
        self.elements: list[Any] = []
        self.error: BaseException | None = None
        self.completed = False

    def on_subscribe(self, subscription: Any) -> None:
        self.signals.append("on_subscribe")
        if self.subscription is None:
            self.subscription = subscription

    def on_next(self, elem: Any) -> None:
        self.signals.append("on_next")
        self.elements.append(elem)

    def on_error(self, exc: BaseException) -> None:
        self.signals.append("on_error")
        self.error = exc

    def on_complete(self) -> None:
        self.signals.append("on_complete")
        self.completed = True

    async def wait_for(self, n: int) -> list[Any]:
        for _ in range(200):
            if len(self.elements) >= n:
                break
            await asyncio.sleep(0)
        return self.elements


# ---------------------------------------------------------------------------------------------
# Source.from_iterable (FlowIterableSpec / AbstractFlowIteratorSpec)
# ---------------------------------------------------------------------------------------------
async def test_iterator_failure_is_signalled_on_the_next_request(
    materializer: Materializer,
) -> None:
    """'produce onError when iterator throws': the element before the failure goes out,
    and the failure waits for the pull that asks for the failing element."""

    def gen() -> Iterator[int]:
        yield 1
        raise Boom("not two")

    probe = Source.from_iterable(Fresh(gen)).run_with(TestSink.probe(), materializer)
    probe.request(1)
    await probe.expect_next(1)
    await probe.expect_no_message(0.05)
    probe.request(3)
    assert str(await probe.expect_error()) == "not two"


async def test_iterator_failure_after_elements_in_a_fused_chain(
    materializer: Materializer,
) -> None:
    def gen() -> Iterator[int]:
        yield from range(5)
        raise Boom("late")

    probe = (
        Source.from_iterable(Fresh(gen))
        .map(lambda x: x + 1)
        .run_with(TestSink.probe(), materializer)
    )
    probe.request(5)
    await probe.expect_next(1, 2, 3, 4, 5)
    await probe.expect_no_message(0.05)
    probe.request(1)
    assert str(await probe.expect_error()) == "late"


async def test_iterable_whose_iterator_cannot_be_made_fails_without_demand(
    materializer: Materializer,
) -> None:
    """'produce onError when Source construction throws'."""

    class Bad:
        def __iter__(self) -> Iterator[int]:
            raise Boom("no good iterator")

    probe = Source.from_iterable(Bad()).run_with(TestSink.probe(), materializer)
    assert str(await probe.expect_error()) == "no good iterator"


async def test_iterator_failing_on_the_first_element_fails_without_demand(
    materializer: Materializer,
) -> None:
    """'produce onError when hasNext throws'."""

    class NoNext:
        def __iter__(self) -> NoNext:
            return self

        def __next__(self) -> int:
            raise Boom("no next")

    probe = Source.from_iterable(NoNext()).run_with(TestSink.probe(), materializer)
    assert str(await probe.expect_error()) == "no next"


async def test_iterable_with_multiple_subscribers(materializer: Materializer) -> None:
    """'produce elements with multiple subscribers' (fan-out publisher)."""
    pub = Source.from_iterable([1, 2, 3]).run_with(Sink.as_publisher(True), materializer)
    c1, c2 = Recorder(), Recorder()
    pub.subscribe(c1)
    pub.subscribe(c2)
    await settle()
    c1.subscription.request(1)
    c2.subscription.request(2)
    assert await c1.wait_for(1) == [1]
    assert await c2.wait_for(2) == [1, 2]
    await settle()
    assert c1.elements == [1] and c2.elements == [1, 2]
    c1.subscription.request(2)
    c2.subscription.request(2)
    await c1.wait_for(3)
    await c2.wait_for(3)
    await settle()
    assert c1.elements == [1, 2, 3] and c1.completed
    assert c2.elements == [1, 2, 3] and c2.completed


# ---------------------------------------------------------------------------------------------
# repeat, unfold, unfold_async (SourceSpec)
# ---------------------------------------------------------------------------------------------
async def test_repeat_as_long_as_it_takes(materializer: Materializer) -> None:
    out = await Source.repeat(42).grouped(1000).run_with(Sink.head(), materializer)
    assert out == [42] * 1000


async def test_unfold_unbounded_fibonacci(materializer: Materializer) -> None:
    fib = Source.unfold((0, 1), lambda s: ((s[1], s[0] + s[1]), s[0]))
    got = await fib.take(36).run_with(Sink.seq(), materializer)
    a, b, want = 0, 1, []
    for _ in range(36):
        want.append(a)
        a, b = b, a + b
    assert got == want


async def test_unfold_and_unfold_async_ending_at_once_are_empty(
    materializer: Materializer,
) -> None:
    async def none(_: Any) -> None:
        return None

    assert await Source.unfold(0, lambda s: None).run_with(Sink.seq(), materializer) == []
    assert await Source.unfold_async(0, none).run_with(Sink.seq(), materializer) == []


async def test_unfold_async_step_raising_synchronously_fails(materializer: Materializer) -> None:
    def step(s: int) -> Any:
        raise Boom("sync")

    with pytest.raises(Boom, match="sync"):
        await Source.unfold_async(0, step).run_with(Sink.seq(), materializer)


async def test_unfold_async_with_failed_future_after_elements(materializer: Materializer) -> None:
    loop = asyncio.get_running_loop()

    def step(s: int) -> asyncio.Future[Any]:
        f: asyncio.Future[Any] = loop.create_future()
        if s < 2:
            f.set_result((s + 1, s))
        else:
            f.set_exception(Boom("future"))
        return f

    probe = Source.unfold_async(0, step).run_with(TestSink.probe(), materializer)
    probe.request(5)
    await probe.expect_next(0, 1)
    assert isinstance(await probe.expect_error(), Boom)


# ---------------------------------------------------------------------------------------------
# from_async_iterable
# ---------------------------------------------------------------------------------------------
async def test_async_iterable_object_is_iterated_afresh_per_run(materializer: Materializer) -> None:
    class Numbers:
        def __aiter__(self) -> AsyncIterator[int]:
            return self.gen()

        async def gen(self) -> AsyncIterator[int]:
            for i in range(3):
                yield i

    src = Source.from_async_iterable(Numbers())
    assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]
    assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]


async def test_cancel_while_the_generator_awaits_closes_it(materializer: Materializer) -> None:
    closed = asyncio.Event()
    never = asyncio.Event()

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            await never.wait()
            yield 2
        finally:
            closed.set()

    probe = Source.from_async_iterable(agen).run_with(TestSink.probe(), materializer)
    probe.request(2)
    await probe.expect_next(1)
    await settle()
    probe.cancel()
    await asyncio.wait_for(closed.wait(), 2)


async def test_async_generator_object_is_closed_when_downstream_cancels(
    materializer: Materializer,
) -> None:
    closed = asyncio.Event()

    async def agen() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    out = await Source.from_async_iterable(agen()).take(2).run_with(Sink.seq(), materializer)
    assert out == [0, 1]
    await asyncio.wait_for(closed.wait(), 2)


# ---------------------------------------------------------------------------------------------
# from_awaitable (FlowFromFutureSpec / SourceFromFutureSpec)
# ---------------------------------------------------------------------------------------------
async def test_already_failed_future_fails_without_demand(materializer: Materializer) -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    err = Boom("failed future")
    fut.set_exception(err)
    probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
    assert await probe.expect_error() is err


async def test_future_failing_later_fails_without_demand(materializer: Materializer) -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
    await settle()
    fut.set_exception(Boom("later"))
    assert isinstance(await probe.expect_error(), Boom)


async def test_completed_future_waits_for_the_request(materializer: Materializer) -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    fut.set_result(1)
    probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
    await probe.expect_no_message(0.05)
    probe.request(1)
    await probe.expect_next(1)
    await probe.expect_complete()


async def test_future_with_none_result_completes_empty(materializer: Materializer) -> None:
    fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    fut.set_result(None)
    probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
    await probe.expect_complete()


async def test_cancel_before_the_future_completes_leaves_it_alone(
    materializer: Materializer,
) -> None:
    """'allow cancel before receiving element': the stream stops; the (shared) future is
    not cancelled, so another run of the same blueprint still gets its value."""
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    src = Source.from_awaitable(fut)
    probe = src.run_with(TestSink.probe(), materializer)
    probe.request(1)
    await settle()
    probe.cancel()
    await settle()
    assert not fut.cancelled()
    out = src.run_with(Sink.seq(), materializer)
    fut.set_result(5)
    assert await out == [5]


# ---------------------------------------------------------------------------------------------
# tick (TickSpec)
# ---------------------------------------------------------------------------------------------
async def test_tick_is_usable_with_zip_for_rate_limiting(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    probe = (
        Source.from_iterable(range(1, 101))
        .zip(Source.tick(1.0, 1.0, "tick"))
        .map(lambda p: p[0])
        .run_with(TestSink.probe(), materializer)
    )
    probe.request(1000)
    await manual_clock.advance(0.9)
    await probe.expect_no_message(0)
    await manual_clock.advance(0.1)
    await probe.expect_next(1)
    await manual_clock.advance(0.5)
    await probe.expect_no_message(0)
    await manual_clock.advance(0.5)
    await probe.expect_next(2)
    probe.cancel()


async def test_tick_cancellable_state_and_independent_runs(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    src = Source.tick(0.5, 0.5, "t")
    c1, p1 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
    c2, p2 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert c1 is not c2
    assert not c1.is_cancelled
    p1.request(5)
    p2.request(5)
    assert c1.cancel() is True
    assert c1.is_cancelled
    await p1.expect_complete()
    await manual_clock.advance(0.5)
    await p2.expect_next("t")
    assert c1.cancel() is False
    c2.cancel()
    await p2.expect_complete()


async def test_tick_cancelled_before_the_first_tick_completes_at_once(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    c, probe = Source.tick(10.0, 1.0, "t").to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(1)
    await settle()
    c.cancel()
    await probe.expect_complete()


def test_tick_with_zero_interval_is_rejected() -> None:
    with pytest.raises(ValueError):
        Source.tick(1.0, 0.0, "t")


# ---------------------------------------------------------------------------------------------
# Source.queue (QueueSourceSpec)
# ---------------------------------------------------------------------------------------------
async def test_second_waiting_offer_fails_under_backpressure(materializer: Materializer) -> None:
    """'fail offer future if user does not wait in backpressure mode'."""
    q, probe = Source.queue(5).to_mat(TestSink.probe(), Keep.both).run(materializer)
    for i in range(1, 6):
        assert await q.offer(i) is E
    sixth = asyncio.ensure_future(q.offer(6))
    await settle()
    assert not sixth.done()
    with pytest.raises(QueueConcurrencyError, match="wait"):
        await q.offer(7)
    assert await probe.request_next() == 1
    assert await sixth is E
    q.complete()
    probe.request(6)
    await probe.expect_next(2, 3, 4, 5, 6)
    await probe.expect_complete()


async def test_concurrency_error_is_a_stream_error_and_runtime_error() -> None:
    assert issubclass(QueueConcurrencyError, StreamError)
    assert issubclass(QueueConcurrencyError, RuntimeError)


async def test_zero_buffer_backpressure_rejects_a_second_offer(materializer: Materializer) -> None:
    """'reject elements when back-pressuring with maxBuffer=0'."""
    q, probe = Source.queue(0).to_mat(TestSink.probe(), Keep.both).run(materializer)
    first = asyncio.ensure_future(q.offer(42))
    await settle()
    with pytest.raises(QueueConcurrencyError):
        await q.offer(43)
    assert await probe.request_next() == 42
    assert await first is E
    q.complete()
    await probe.expect_complete()


async def test_max_concurrent_offers_allows_more_waiting_offers(
    materializer: Materializer,
) -> None:
    q, probe = (
        Source.queue(1, OverflowStrategy.backpressure, 2)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    assert await q.offer(1) is E
    waiting = [asyncio.ensure_future(q.offer(x)) for x in (2, 3)]
    await settle()
    with pytest.raises(QueueConcurrencyError):
        await q.offer(4)
    probe.request(3)
    await probe.expect_next(1, 2, 3)
    assert [await w for w in waiting] == [E, E]
    q.complete()
    await probe.expect_complete()


@pytest.mark.parametrize(
    ("strategy", "first", "second", "emitted"),
    [
        (OverflowStrategy.drop_new, E, D, 1),
        (OverflowStrategy.drop_tail, E, D, 1),
        (OverflowStrategy.drop_head, D, E, 2),
        (OverflowStrategy.drop_buffer, D, E, 2),
    ],
)
async def test_zero_buffer_offer_waits_for_demand_with_every_strategy(
    materializer: Materializer,
    strategy: OverflowStrategy,
    first: QueueOfferResult,
    second: QueueOfferResult,
    emitted: int,
) -> None:
    """With no buffer an offer waits for demand; the strategy settles the next one."""
    q, probe = Source.queue(0, strategy).to_mat(TestSink.probe(), Keep.both).run(materializer)
    f1 = asyncio.ensure_future(q.offer(1))
    await settle()
    assert not f1.done()
    f2 = asyncio.ensure_future(q.offer(2))
    await settle()
    assert await probe.request_next() == emitted
    assert await f1 is first
    assert await f2 is second
    q.complete()
    await probe.expect_complete()


async def test_zero_buffer_fail_strategy_fails_on_the_second_offer(
    materializer: Materializer,
) -> None:
    from reactive import BufferOverflowError

    q, probe = (
        Source.queue(0, OverflowStrategy.fail).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    f1 = asyncio.ensure_future(q.offer(1))
    await settle()
    assert not f1.done()
    with pytest.raises(BufferOverflowError):
        await q.offer(2)
    assert isinstance(await probe.expect_error(), BufferOverflowError)
    with pytest.raises(BufferOverflowError):
        await f1


async def test_pending_offer_without_buffer_is_closed_when_downstream_cancels(
    materializer: Materializer,
) -> None:
    """'finish offer and complete futures when stream completed' (buffer 0, drop_head)."""
    q, probe = (
        Source.queue(0, OverflowStrategy.drop_head)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    done = asyncio.ensure_future(q.watch_completion())
    pending = asyncio.ensure_future(q.offer(1))
    await settle()
    assert not pending.done()
    probe.cancel()
    assert await pending is C
    await done


async def test_offer_after_demand_is_remembered(materializer: Materializer) -> None:
    """'remember pull from downstream to send offered element immediately'."""
    q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(1)
    await settle()
    assert await q.offer(1) is E
    await probe.expect_next(1)
    q.complete()
    await probe.expect_complete()


async def test_queue_materializations_are_independent(materializer: Materializer) -> None:
    """'not share future across materializations'."""
    src = Source.queue(1, OverflowStrategy.drop_new)
    q1, p1 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
    q2, p2 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await q1.offer("a") is E
    assert await q2.offer("b") is E
    q1.complete()
    p1.request(2)
    p2.request(1)
    await p1.expect_next("a")
    await p1.expect_complete()
    await p2.expect_next("b")
    q2.complete()
    await p2.expect_complete()
    await q1.watch_completion()
    await q2.watch_completion()


async def test_complete_with_empty_buffer_completes_the_watch(materializer: Materializer) -> None:
    q, probe = Source.queue(3).to_mat(TestSink.probe(), Keep.both).run(materializer)
    q.complete()
    await probe.expect_complete()
    await q.watch_completion()
    assert await q.offer(1) is C


async def test_watch_completion_fails_when_the_materializer_shuts_down() -> None:
    """'complete watching future with failure if materializer shut down'."""
    mat = Materializer()
    q = Source.queue(1).to(TestSink.probe()).run(mat)
    watch = asyncio.ensure_future(q.watch_completion())
    await settle()
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await watch


# ---------------------------------------------------------------------------------------------
# Sink.queue (QueueSinkSpec)
# ---------------------------------------------------------------------------------------------
async def test_only_one_pull_may_wait(materializer: Materializer) -> None:
    """'allow to have only one future waiting for result in each point of time'."""
    pub, q = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
    await pub.expect_request()
    first = asyncio.ensure_future(q.pull())
    await settle()
    with pytest.raises(QueueConcurrencyError):
        await q.pull()
    pub.send_next(1)
    assert await first == 1
    pub.send_complete()
    assert await q.pull() is None


async def test_max_concurrent_pulls(materializer: Materializer) -> None:
    pub, q = TestSource.probe().to_mat(Sink.queue(2), Keep.both).run(materializer)
    await pub.expect_request()
    pulls = [asyncio.ensure_future(q.pull()) for _ in range(2)]
    await settle()
    with pytest.raises(QueueConcurrencyError):
        await q.pull()
    pub.send_next("a").send_next("b").send_complete()
    assert [await p for p in pulls] == ["a", "b"]
    assert await q.pull() is None


async def test_pull_that_timed_out_loses_no_element(materializer: Materializer) -> None:
    """'timeout future when stream cannot provide data', then the element arrives."""
    pub, q = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
    await pub.expect_request()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(q.pull(), 0.02)
    pub.send_next(1)
    assert await q.pull() == 1
    pub.send_complete()
    assert await q.pull() is None


async def test_sink_queue_keeps_sending_after_its_buffer_was_full(
    materializer: Materializer,
) -> None:
    """'keep on sending even after the buffer has been full'."""
    from reactive import Attributes

    full = asyncio.get_running_loop().create_future()
    sink = Sink.queue().with_attributes(Attributes.input_buffer(16, 16))
    q = (
        Source.from_iterable(range(1, 21))
        .also_to(Flow().drop(15).to(Sink.foreach(lambda _: full.done() or full.set_result(1))))
        .to_mat(sink, Keep.right)
        .run(materializer)
    )
    await asyncio.wait_for(full, 2)
    assert [await q.pull() for _ in range(20)] == list(range(1, 21))
    assert await q.pull() is None


# ---------------------------------------------------------------------------------------------
# MergeHub (HubSpec)
# ---------------------------------------------------------------------------------------------
async def test_merge_hub_respects_the_per_producer_buffer(materializer: Materializer) -> None:
    """'respect buffer size': demand starts at 3 and is topped up in halves, rounded up."""
    pulled: list[int] = []
    sink, probe = MergeHub.source(3).to_mat(TestSink.probe(), Keep.both).run(materializer)
    Source.from_iterable(range(1, 11)).map(lambda i: pulled.append(i) or i).run_with(
        sink, materializer
    )
    await settle()
    assert pulled == [1, 2, 3]
    assert await probe.request_next() == 1
    await settle()
    assert pulled == [1, 2, 3]  # one consumed: no demand signalled yet
    assert await probe.request_next() == 2
    await settle()
    assert pulled == [1, 2, 3, 4, 5]  # two consumed: demand of two
    probe.cancel()


async def test_merge_hub_cancelled_before_the_first_producer(materializer: Materializer) -> None:
    """'notify new producers if consumer cancels before first producer'."""
    sink = MergeHub.source(16).to(Sink.cancelled()).run(materializer)
    await settle()
    pub = TestSource.probe().to(sink).run(materializer)
    await pub.expect_cancellation()


async def test_merge_hub_notifies_existing_producers_when_consumer_cancels(
    materializer: Materializer,
) -> None:
    sink, result = MergeHub.source(16).take(5).to_mat(Sink.seq(), Keep.both).run(materializer)
    pub = TestSource.probe().to(sink).run(materializer)
    for i in range(1, 6):
        await pub.expect_request()
        pub.send_next(i)
    await pub.expect_cancellation()
    assert sorted(await result) == [1, 2, 3, 4, 5]


async def test_merge_hub_keeps_working_when_a_producer_fails(materializer: Materializer) -> None:
    sink, result = MergeHub.source(16).take(10).to_mat(Sink.seq(), Keep.both).run(materializer)
    Source.failed(Boom("producer")).run_with(sink, materializer)
    Source.from_iterable(range(1, 11)).run_with(sink, materializer)
    assert sorted(await result) == list(range(1, 11))


async def test_merge_hub_long_streams_with_buffer_size_one(materializer: Materializer) -> None:
    sink, result = MergeHub.source(1).take(4000).to_mat(Sink.seq(), Keep.both).run(materializer)
    Source.from_iterable(range(1, 2001)).run_with(sink, materializer)
    Source.from_iterable(range(2001, 4001)).run_with(sink, materializer)
    assert sorted(await result) == list(range(1, 4001))


async def test_merge_hub_producers_separated_over_time(materializer: Materializer) -> None:
    sink, probe = (
        MergeHub.source(16).grouped(100).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    Source.from_iterable(range(1, 101)).run_with(sink, materializer)
    assert await probe.request_next() == list(range(1, 101))
    Source.from_iterable(range(101, 201)).run_with(sink, materializer)
    assert await probe.request_next() == list(range(101, 201))
    probe.cancel()


def test_merge_hub_rejects_a_non_positive_buffer() -> None:
    with pytest.raises(ValueError):
        MergeHub.source(0)


# ---------------------------------------------------------------------------------------------
# BroadcastHub (HubSpec)
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [0, 3, 6, 4096])
def test_broadcast_hub_buffer_must_be_a_power_of_two_below_4096(size: int) -> None:
    with pytest.raises(ValueError):
        BroadcastHub.sink(size)


async def test_broadcast_hub_subsequent_consumers_see_subsequent_elements(
    materializer: Materializer,
) -> None:
    """'ensure that subsequent consumers see subsequent elements without gap'."""
    src = Source.from_iterable(range(1, 21)).run_with(BroadcastHub.sink(8), materializer)
    assert await src.take(10).run_with(Sink.seq(), materializer) == list(range(1, 11))
    assert await src.take(10).run_with(Sink.seq(), materializer) == list(range(11, 21))


async def test_broadcast_hub_consumers_attaching_around_the_same_time(
    materializer: Materializer,
) -> None:
    """'send the same elements to consumers attaching around the same time' and '... if
    one cancels earlier'."""
    first: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    src = (
        Source.from_awaitable(first)
        .concat(Source.from_iterable(range(2, 21)))
        .run_with(BroadcastHub.sink(8), materializer)
    )
    f1 = src.run_with(Sink.seq(), materializer)
    f2 = src.take(10).run_with(Sink.seq(), materializer)
    await settle()
    first.set_result(1)
    assert await f1 == list(range(1, 21))
    assert await f2 == list(range(1, 11))


async def test_broadcast_hub_handles_a_cancelled_consumer(materializer: Materializer) -> None:
    """'handle cancelled Sink'."""
    pub, src = TestSource.probe().to_mat(BroadcastHub.sink(4), Keep.both).run(materializer)
    src.run_with(Sink.cancelled(), materializer)
    out = src.run_with(TestSink.probe(), materializer)
    out.request(10)
    await pub.expect_request()
    for i in range(1, 6):
        pub.send_next(i)
        await out.expect_next(i)
    pub.send_complete()
    await out.expect_complete()


async def test_broadcast_hub_remembers_completion(materializer: Materializer) -> None:
    """'remember completion for materialisations after completion'."""
    pub, src = TestSource.probe().to_mat(BroadcastHub.sink(), Keep.both).run(materializer)
    first = src.run_with(TestSink.probe(), materializer)
    await settle()
    pub.send_complete()
    first.request(1)
    await first.expect_complete()
    second = src.run_with(TestSink.probe(), materializer)
    second.request(1)
    await second.expect_complete()


# ---------------------------------------------------------------------------------------------
# Kill switches (KillSwitchSpec)
# ---------------------------------------------------------------------------------------------
async def test_unique_kill_switch_ignores_abort_after_shutdown(materializer: Materializer) -> None:
    pub, switch, probe = (
        TestSource.probe()
        .via_mat(KillSwitches.single(), Keep.both)
        .to_mat(TestSink.probe(), lambda ab, c: (*ab, c))
        .run(materializer)
    )
    probe.request(1)
    await pub.expect_request()
    pub.send_next(1)
    await probe.expect_next(1)
    switch.shutdown()
    await pub.expect_cancellation()
    await probe.expect_complete()
    switch.abort(Boom("ignored"))
    await probe.expect_no_message(0.02)


async def test_shared_kill_switch_ignores_later_calls_and_stops_later_flows(
    materializer: Materializer,
) -> None:
    """'ignore subsequent aborts and shutdowns after shutdown' and 'complete immediately
    flows materialized after switch shutdown', over two streams."""
    switch = KillSwitches.shared("switch")
    a = TestSource.probe().via(switch.flow()).to_mat(TestSink.probe(), Keep.both)
    pub1, out1 = a.run(materializer)
    pub2, out2 = a.run(materializer)
    out1.request(1)
    out2.request(1)
    await pub1.expect_request()
    await pub2.expect_request()
    switch.shutdown()
    switch.abort(Boom("ignored"))
    switch.shutdown()
    await out1.expect_complete()
    await out2.expect_complete()
    await pub1.expect_cancellation()
    await pub2.expect_cancellation()
    pub3, out3 = a.run(materializer)
    await out3.expect_complete()
    await pub3.expect_cancellation()


async def test_shared_kill_switch_used_twice_in_one_stream(materializer: Materializer) -> None:
    switch = KillSwitches.shared("twice")
    pub, out = (
        TestSource.probe()
        .via(switch.flow())
        .map(lambda x: x * 2)
        .via(switch.flow())
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    out.request(2)
    await pub.expect_request()
    pub.send_next(1)
    await out.expect_next(2)
    switch.abort(Boom("both"))
    assert isinstance(await out.expect_error(), Boom)
    await pub.expect_cancellation()


def test_shared_kill_switch_shows_its_name() -> None:
    """'use its name in the toString'."""
    assert str(KillSwitches.shared("MySwitchName")) == "KillSwitch(MySwitchName)"


# ---------------------------------------------------------------------------------------------
# Reactive Streams bridges (PublisherSinkSpec, SubscriberSourceSpec, TCK multicast)
# ---------------------------------------------------------------------------------------------
async def test_fanout_subscribers_requesting_one_by_one_see_the_same_sequence(
    materializer: Materializer,
) -> None:
    """TCK optional_spec111_multicast_mustProduceTheSameElementsInTheSameSequence...:
    subscribers attached one after the other before requesting see the same elements."""
    pub = Source.from_iterable(range(10)).run_with(Sink.as_publisher(True), materializer)
    subs = [Recorder() for _ in range(3)]
    for s in subs:
        pub.subscribe(s)
        await settle()
    for _ in range(10):
        for s in subs:
            s.subscription.request(1)
        await settle(5)
    await settle()
    for s in subs:
        assert s.elements == list(range(10)) and s.completed


async def test_fanout_late_subscriber_starts_with_what_is_still_buffered(
    materializer: Materializer,
) -> None:
    pub = Source.from_iterable(range(100)).run_with(Sink.as_publisher(True), materializer)
    early, late = Recorder(), Recorder()
    pub.subscribe(early)
    await settle()
    early.subscription.request(3)
    assert await early.wait_for(3) == [0, 1, 2]
    pub.subscribe(late)
    await settle()
    late.subscription.request(2)
    assert await late.wait_for(2) == [3, 4]
    early.subscription.cancel()
    late.subscription.cancel()


async def test_fanout_rejects_the_same_subscriber_twice(materializer: Materializer) -> None:
    pub = Source.from_iterable(range(3)).run_with(Sink.as_publisher(True), materializer)
    sub = Recorder()
    pub.subscribe(sub)
    await settle()
    pub.subscribe(sub)
    await settle()
    assert sub.signals == ["on_subscribe", "on_subscribe", "on_error"]
    assert isinstance(sub.error, SubscriptionRejectedError)
    assert "2.12" in str(sub.error)
    sub.subscription.cancel()


async def test_as_publisher_is_unique_per_materialization(materializer: Materializer) -> None:
    """'be unique when created twice'."""

    def blueprint(b: Any, p1: Any, p2: Any) -> Any:
        from reactive import Broadcast

        src = b.add(Source.from_iterable(range(6)))
        bcast = b.add(Broadcast(2))
        src.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().map(lambda x: x * 2)) >> p1.in_
        bcast.out(1) >> p2.in_
        return ClosedShape

    pub1, pub2 = RunnableGraph.from_graph(
        GraphDSL.create(blueprint, Sink.as_publisher(False), Sink.as_publisher(False))
    ).run(materializer)
    f1 = Source.from_publisher(pub1).map(lambda x: x).run_fold(0, operator.add, materializer)
    f2 = Source.from_publisher(pub2).map(lambda x: x).run_fold(0, operator.add, materializer)
    assert await f1 == 30
    assert await f2 == 15


async def test_as_subscriber_feeds_as_publisher(materializer: Materializer) -> None:
    """'work with SubscriberSource'."""
    sub, pub = Source.as_subscriber().to_mat(Sink.as_publisher(False), Keep.both).run(materializer)
    Source.from_iterable(range(1, 101)).to(Sink.from_subscriber(sub)).run(materializer)
    out = await Source.from_publisher(pub).limit(1000).run_with(Sink.seq(), materializer)
    assert out == list(range(1, 101))


async def test_publisher_in_a_materialized_value_transformation(
    materializer: Materializer,
) -> None:
    """'be able to use Publisher in materialized value transformation'."""
    sink = Sink.as_publisher(False).map_materialized_value(
        lambda p: Source.from_publisher(p).run_fold(0, operator.add, materializer)
    )
    assert await Source.from_iterable([1, 2, 3]).run_with(sink, materializer) == 6


async def test_subscriber_in_a_materialized_value_transformation(
    materializer: Materializer,
) -> None:
    """SubscriberSourceSpec: 'be able to use Subscriber in materialized value transformation'."""
    src = Source.as_subscriber().map_materialized_value(
        lambda s: Source.from_iterable([1, 2, 3]).run_with(Sink.from_subscriber(s), materializer)
    )
    assert await src.run_with(Sink.fold(0, operator.add), materializer) == 6


def test_bridges_refuse_none() -> None:
    """A ``None`` publisher or subscriber is refused (rules 1.9, 2.13: null -> error), not
    silently turned into ``as_subscriber()`` / ``as_publisher()``."""
    with pytest.raises(TypeError):
        Source.from_publisher(None)
    with pytest.raises(TypeError):
        Sink.from_subscriber(None)
