"""Sink factories (``reactive/_ops/sinks.py``, ``queues.py``): foreach, fold, reduce, head, last,
take_last, seq, ignore, queue, as_publisher, combine, ... Akka's HeadSinkSpec, LastSinkSpec,
SeqSinkSpec, TakeLastSinkSpec, QueueSinkSpec, PublisherSinkSpec and SinkSpec's combine cases
with our own, a class per factory.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import operator
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    Balance,
    Broadcast,
    ClosedShape,
    Done,
    Flow,
    GraphDSL,
    Keep,
    Materializer,
    NoSuchElementError,
    NotUsed,
    PortStateError,
    QueueConcurrencyError,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
)
from reactive.rs import SubscriptionRejectedError
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, E, Recorder, restarting, resuming, settle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param)
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


SINKS: dict[str, Callable[[], Any]] = {
    "seq": Sink.seq,
    "ignore": Sink.ignore,
    "head": Sink.head,
    "head_option": Sink.head_option,
    "last": Sink.last,
    "last_option": Sink.last_option,
    "fold": lambda: Sink.fold(0, operator.add),
    "reduce": lambda: Sink.reduce(operator.add),
    "take_last": lambda: Sink.take_last(2),
    "foreach": lambda: Sink.foreach(lambda x: None),
}


def _input_buffer(n: int) -> object:
    from reactive import Attributes

    return Attributes({"input_buffer": n})


class TestForeach:
    """``Sink.foreach``."""

    async def test_foreach(self, mat: Materializer) -> None:
        seen: list[int] = []
        assert await Source.from_iterable(range(5)).run_with(Sink.foreach(seen.append), mat) is Done
        assert seen == list(range(5))

    async def test_foreach_failure_and_resume(self, mat: Materializer) -> None:
        def f(x: int) -> None:
            if x == 2:
                raise Boom("each")
            seen.append(x)

        seen: list[int] = []
        with pytest.raises(Boom):
            await Source.from_iterable(range(5)).run_with(Sink.foreach(f), mat)
        seen.clear()
        sink = Sink.foreach(f).with_attributes(
            Attributes.supervision_strategy(lambda e: Supervision.resume)
        )
        assert await Source.from_iterable(range(5)).run_with(sink, mat) is Done
        assert seen == [0, 1, 3, 4]


class TestFold:
    """``Sink.fold``."""

    async def test_fold_reduce(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(5)).run_with(Sink.fold(0, operator.add), mat) == 10
        assert await Source.empty().run_with(Sink.fold(3, operator.add), mat) == 3
        assert await Source.from_iterable(range(5)).run_with(Sink.reduce(operator.add), mat) == 10
        with pytest.raises(NoSuchElementError):
            await Source.empty().run_with(Sink.reduce(operator.add), mat)

    @pytest.mark.parametrize(
        ("directive", "expected"), [(Supervision.resume, 7), (Supervision.restart, 4)]
    )
    async def test_fold_sink_supervision(
        self, mat: Materializer, directive: Supervision, expected: int
    ) -> None:
        def f(a: int, x: int) -> int:
            if x == 3:
                raise Boom("fold")
            return a + x

        sink = Sink.fold(0, f).with_attributes(Attributes.supervision_strategy(lambda e: directive))
        assert await Source.from_iterable([1, 2, 3, 4]).run_with(sink, mat) == expected

    async def test_fold_and_reduce_failures(self, mat: Materializer) -> None:
        def f(a: int, x: int) -> int:
            raise Boom("f")

        with pytest.raises(Boom):
            await Source.from_iterable([1, 2]).run_with(Sink.fold(0, f), mat)
        with pytest.raises(Boom):
            await Source.from_iterable([1, 2]).run_with(Sink.reduce(f), mat)

    async def test_fold_sink_resume_and_restart(self, materializer: Materializer) -> None:
        def f(acc: int, x: int) -> int:
            if x == 50:
                raise Boom()
            return acc + x

        src = Source.from_iterable(range(1, 101))
        resumed = await src.run_with(Sink.fold(0, f).with_attributes(resuming()), materializer)
        restarted = await src.run_with(Sink.fold(0, f).with_attributes(restarting()), materializer)
        assert resumed == 5050 - 50
        assert restarted == sum(range(51, 101))
        assert await Source.empty().run_fold(0, operator.add, materializer) == 0


class TestHeadOption:
    """``Sink.head_option``."""

    async def test_head_option_yields_first_value_and_cancels_upstream(
        self,
        materializer: Materializer,
    ) -> None:
        pub, head = TestSource.probe().to_mat(Sink.head_option(), Keep.both).run(materializer)
        pub.send_next(42)
        assert await head == 42
        await pub.expect_cancellation()


class TestHead:
    """``Sink.head``."""

    async def test_head_and_head_option(self, mat: Materializer) -> None:
        assert await Source.from_iterable([4, 5]).run_with(Sink.head(), mat) == 4
        assert await Source.repeat(1).run_with(Sink.head(), mat) == 1  # cancels upstream
        assert await Source.empty().run_with(Sink.head_option(), mat) is None
        assert await Source.single(3).run_with(Sink.head_option(), mat) == 3
        with pytest.raises(NoSuchElementError):
            await Source.empty().run_with(Sink.head(), mat)

    async def test_head_yields_first_value_and_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        pub, head = TestSource.probe().to_mat(Sink.head(), Keep.both).run(materializer)
        await pub.expect_request()
        pub.send_next(42)
        assert await head == 42
        await pub.expect_cancellation()

    @pytest.mark.parametrize("sink", [Sink.head, Sink.last])
    async def test_head_and_last_of_empty_fail_with_no_such_element(
        self, materializer: Materializer, sink: Any
    ) -> None:
        with pytest.raises(NoSuchElementError) as info:
            await Source.empty().run_with(sink(), materializer)
        assert isinstance(info.value, LookupError)
        assert "empty stream" in str(info.value)


class TestLast:
    """``Sink.last``."""

    async def test_last_and_last_option(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(3000)).run_with(Sink.last(), mat) == 2999
        assert await Source.empty().run_with(Sink.last_option(), mat) is None
        with pytest.raises(NoSuchElementError):
            await Source.empty().run_with(Sink.last(), mat)

    async def test_last_yields_the_last_value(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(1, 43)).map(lambda x: x)
        assert await src.run_with(Sink.last(), materializer) == 42
        assert await src.run_with(Sink.last_option(), materializer) == 42

    async def test_last_fails_when_the_stream_fails_after_elements(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 2]).concat(Source.failed(Boom()))
        with pytest.raises(Boom):
            await src.run_with(Sink.last(), materializer)
        with pytest.raises(Boom):
            await src.run_with(Sink.last_option(), materializer)


class TestTakeLast:
    """``Sink.take_last``."""

    async def test_take_last(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(10)).run_with(Sink.take_last(3), mat) == [7, 8, 9]
        assert await Source.from_iterable(range(2)).run_with(Sink.take_last(3), mat) == [0, 1]
        with pytest.raises(ValueError, match="n must be >= 1, got 0"):
            Sink.take_last(0)  # rejected at construction, as Akka's TakeLastStage does

    async def test_take_last_spec_cases(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(1, 7))
        assert await src.run_with(Sink.take_last(3), materializer) == [4, 5, 6]
        assert await src.run_with(Sink.take_last(1), materializer) == [6]
        assert await Source.from_iterable(range(1, 5)).run_with(
            Sink.take_last(5), materializer
        ) == [
            1,
            2,
            3,
            4,
        ]
        assert await Source.empty().run_with(Sink.take_last(3), materializer) == []
        with pytest.raises(Boom):
            await src.concat(Source.failed(Boom())).run_with(Sink.take_last(3), materializer)


class TestSeq:
    """``Sink.seq``."""

    async def test_seq_sink(self, materializer: Materializer) -> None:
        xs = list(range(1, 4))
        assert await Source.from_iterable(xs).run_with(Sink.seq(), materializer) == xs
        assert await Source.empty().run_with(Sink.seq(), materializer) == []


class TestIgnore:
    """``Sink.ignore``."""

    async def test_ignore_and_cancelled(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(100)).run_with(Sink.ignore(), mat) is Done
        pub = TestSource.probe().to(Sink.cancelled()).run(mat)
        await pub.expect_cancellation()
        assert Source.single(1).to_mat(Sink.cancelled(), Keep.right).run(mat) is NotUsed


class TestOnComplete:
    """``Sink.on_complete``."""

    async def test_on_complete(self, mat: Materializer) -> None:
        got: list[Any] = []
        Source.from_iterable([1, 2]).run_with(Sink.on_complete(got.append), mat)
        await settle()
        assert got == [None]
        err = Boom("oc")
        Source.failed(err).run_with(Sink.on_complete(got.append), mat)
        await settle()
        assert got == [None, err]


class TestContramap:
    """``Sink.contramap``."""

    async def test_contramap_and_run_helpers(self, mat: Materializer) -> None:
        sink = Sink.seq().contramap(lambda x: x * 2)
        assert await Source.from_iterable([1, 2]).run_with(sink, mat) == [2, 4]
        seen: list[int] = []
        assert await Source.from_iterable([1, 2]).run_foreach(seen.append, mat) is Done
        assert seen == [1, 2]
        assert await Source.from_iterable([1, 2]).run_fold(10, operator.add, mat) == 13
        assert await Source.from_iterable([1, 2]).run_reduce(operator.mul, mat) == 2


class TestCombine:
    """``Sink.combine``."""

    async def test_sink_combine(self, materializer: Materializer) -> None:
        a: list[int] = []
        b: list[int] = []
        sink = Sink.combine(Sink.foreach(a.append), Sink.foreach(b.append))
        await Source.from_iterable([1, 2]).watch_termination().to(sink).run(materializer)
        assert a == [1, 2] and b == [1, 2]
        c: list[int] = []
        d: list[int] = []
        bal: Callable[[int], Any] = Balance
        sink2 = Sink.combine(Sink.foreach(c.append), Sink.foreach(d.append), strategy=bal)
        await Source.from_iterable(range(6)).watch_termination().to(sink2).run(materializer)
        assert sorted(c + d) == list(range(6))

    async def test_sink_combine_broadcast_and_balance(self, materializer: Materializer) -> None:
        probes = [TestSink.probe() for _ in range(3)]
        captured: list[Any] = []
        sinks = [p.map_materialized_value(lambda m: captured.append(m) or m) for p in probes]
        Source.from_iterable([0, 1, 2]).run_with(Sink.combine(*sinks), materializer)
        await settle()
        for probe in captured:
            probe.request(3)
        for probe in captured:
            await probe.expect_next(0, 1, 2)
            await probe.expect_complete()

        captured.clear()
        sinks = [p.map_materialized_value(lambda m: captured.append(m) or m) for p in probes[:2]]
        Source.from_iterable([0, 1, 2]).run_with(
            Sink.combine(*sinks, strategy=Balance), materializer
        )
        await settle()
        p1, p2 = captured
        p1.request(1)
        await p1.expect_next(0)
        p2.request(2)
        await p2.expect_next(1, 2)
        await p1.expect_complete()
        await p2.expect_complete()


class TestSinks:
    """What every sink does."""

    @pytest.mark.parametrize("name", list(SINKS))
    async def test_sinks_fail_with_the_upstream_error(self, mat: Materializer, name: str) -> None:
        err = Boom("up")
        src = (
            Source.from_iterable([1]).concat(Source.failed(err))
            if name
            not in (
                "head",
                "head_option",
            )
            else Source.failed(err)
        )
        with pytest.raises(Boom) as info:
            await src.run_with(SINKS[name](), mat)
        assert info.value is err

    @pytest.mark.parametrize("name", list(SINKS))
    async def test_sinks_request_with_demand(self, mat: Materializer, name: str) -> None:
        """Each sink pulls (at least one element) at start and handles elements sent one by one."""
        pub, fut = TestSource.probe().to_mat(SINKS[name](), Keep.both).run(mat)
        await pub.expect_request()
        pub.send_next(1)
        if name not in ("head", "head_option"):
            await pub.expect_request()
            pub.send_next(2).send_complete()
        await fut

    async def test_unawaited_failed_result_is_logged_once_naming_the_stage(
        self, mat: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed sink future that nobody awaits: one ERROR on the ``reactive`` logger
        naming the stage, not asyncio's anonymous "exception was never retrieved" (the
        cases are in test_unobserved_failures.py)."""
        caplog.set_level(logging.ERROR)
        Source.failed(Boom("ignored")).run_with(Sink.seq(), mat)
        await settle()
        gc.collect()
        messages = [r.getMessage() for r in caplog.records]
        assert not [m for m in messages if "never retrieved" in m]
        reported = [m for m in messages if "nobody observed the failure" in m]
        assert len(reported) == 1
        assert reported[0].startswith("[failed_source] ") and "ignored" in reported[0]

    @pytest.mark.parametrize("shape", ["sink", "map", "filter", "boundary", "probe"])
    async def test_none_from_an_iterable_fails_the_stream(
        self, mat: Materializer, shape: str
    ) -> None:
        # RS rule 2.13 holds on the batched paths too (a batch is not pushed element by
        # element): the elements before the None go out, the user's map never sees it.
        seen: list[Any] = []

        def record(x: Any) -> Any:
            seen.append(x)
            return x

        src: Source[Any, Any] = Source.from_iterable([1, None, 3])
        if shape == "probe":
            probe = src.run_with(TestSink.probe(), mat)
            probe.request(5)
            await probe.expect_next(1)
            err = await probe.expect_error()
        else:
            flow = {
                "sink": src,
                "map": src.map(record),
                "filter": src.filter(lambda x: record(x) is not None),
                "boundary": src.async_boundary(),
            }[shape]
            with pytest.raises(PortStateError) as info:
                await flow.run_with(Sink.seq(), mat)
            err = info.value
        assert "RS rule 2.13" in str(err)
        assert "iterable_source" in str(err)
        assert None not in seen

    @pytest.mark.parametrize(
        "sink", [Sink.head, Sink.head_option, Sink.last, Sink.last_option, Sink.seq]
    )
    async def test_sinks_yield_the_first_error(self, materializer: Materializer, sink: Any) -> None:
        err = Boom("ex")
        with pytest.raises(Boom) as info:
            await Source.failed(err).run_with(sink(), materializer)
        assert info.value is err

    @pytest.mark.parametrize("sink", [Sink.head_option, Sink.last_option])
    async def test_option_sinks_of_empty_yield_none(
        self, materializer: Materializer, sink: Any
    ) -> None:
        assert await Source.empty().run_with(sink(), materializer) is None

    @pytest.mark.parametrize(
        "sink",
        [
            Sink.head,
            Sink.head_option,
            Sink.last,
            Sink.last_option,
            Sink.seq,
            lambda: Sink.take_last(2),
            Sink.ignore,
            lambda: Sink.fold(0, operator.add),
            lambda: Sink.reduce(operator.add),
        ],
        ids=[
            "head",
            "head_option",
            "last",
            "last_option",
            "seq",
            "take_last",
            "ignore",
            "fold",
            "reduce",
        ],
    )
    async def test_sinks_fail_on_abrupt_termination(self, sink: Any) -> None:
        mat = Materializer()
        result = Source.never().run_with(sink(), mat)
        await settle(5)
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await result


class TestQueue:
    """``Sink.queue`` (and Akka's QueueSinkSpec)."""

    async def test_sink_queue_async_for(self, materializer: Materializer) -> None:
        q = Source.from_iterable(range(40)).run_with(Sink.queue(), materializer)
        assert [x async for x in q] == list(range(40))
        assert await q.pull() is None

    async def test_sink_queue_pull_waits_for_elements(self, materializer: Materializer) -> None:
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

    async def test_sink_queue_backpressures_beyond_prefetch(
        self, materializer: Materializer
    ) -> None:
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

    async def test_sink_queue_failure_after_buffered_elements(
        self, materializer: Materializer
    ) -> None:
        q = (
            Source.from_iterable([1, 2, 0])
            .map(lambda x: 10 // x)
            .run_with(Sink.queue(), materializer)
        )
        await asyncio.sleep(0)
        assert await q.pull() == 10
        assert await q.pull() == 5
        with pytest.raises(ZeroDivisionError):
            await q.pull()
        with pytest.raises(ZeroDivisionError):
            await q.pull()

    async def test_sink_queue_failure_raised_in_async_for(self, materializer: Materializer) -> None:
        q = Source.failed(RuntimeError("down")).run_with(Sink.queue(), materializer)
        with pytest.raises(RuntimeError, match="down"):
            async for _ in q:
                pass

    async def test_sink_queue_cancel_stops_stream_and_pending_pull(
        self, materializer: Materializer
    ) -> None:
        pub, q = TestSource.probe().to_mat(Sink.queue(), Keep.both).run(materializer)
        pending = asyncio.ensure_future(q.pull())
        await asyncio.sleep(0)
        q.cancel()
        q.cancel()  # idempotent
        assert await pending is None
        await pub.expect_cancellation()
        assert await q.pull() is None

    async def test_queue_to_queue_roundtrip(self, materializer: Materializer) -> None:
        src, sink = Source.queue(4).map(str).to_mat(Sink.queue(), Keep.both).run(materializer)

        async def produce() -> None:
            for i in range(100):
                assert await src.offer(i) is E
            src.complete()

        task = asyncio.ensure_future(produce())
        assert [x async for x in sink] == [str(i) for i in range(100)]
        await task

    async def test_only_one_pull_may_wait(self, materializer: Materializer) -> None:
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

    async def test_max_concurrent_pulls(self, materializer: Materializer) -> None:
        pub, q = TestSource.probe().to_mat(Sink.queue(2), Keep.both).run(materializer)
        await pub.expect_request()
        pulls = [asyncio.ensure_future(q.pull()) for _ in range(2)]
        await settle()
        with pytest.raises(QueueConcurrencyError):
            await q.pull()
        pub.send_next("a").send_next("b").send_complete()
        assert [await p for p in pulls] == ["a", "b"]
        assert await q.pull() is None

    async def test_pull_that_timed_out_loses_no_element(self, materializer: Materializer) -> None:
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
        self,
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


class TestAsPublisher:
    """``Sink.as_publisher`` (the Reactive Streams bridge out, with fan-out)."""

    async def test_fanout_subscribers_requesting_one_by_one_see_the_same_sequence(
        self,
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
        self,
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

    async def test_fanout_rejects_the_same_subscriber_twice(
        self, materializer: Materializer
    ) -> None:
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

    async def test_as_publisher_is_unique_per_materialization(
        self, materializer: Materializer
    ) -> None:
        """'be unique when created twice'."""

        def blueprint(b: Any, p1: Any, p2: Any) -> Any:

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

    async def test_publisher_in_a_materialized_value_transformation(
        self,
        materializer: Materializer,
    ) -> None:
        """'be able to use Publisher in materialized value transformation'."""
        sink = Sink.as_publisher(False).map_materialized_value(
            lambda p: Source.from_publisher(p).run_fold(0, operator.add, materializer)
        )
        assert await Source.from_iterable([1, 2, 3]).run_with(sink, materializer) == 6

    def test_bridges_refuse_none(self) -> None:
        """A ``None`` publisher or subscriber is refused (rules 1.9, 2.13: null -> error), not
        silently turned into ``as_subscriber()`` / ``as_publisher()``."""
        with pytest.raises(TypeError):
            Source.from_publisher(None)
        with pytest.raises(TypeError):
            Sink.from_subscriber(None)
