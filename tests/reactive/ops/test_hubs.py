"""The hubs (``reactive/_ops/hubs.py``, factories in ``reactive/_dsl/hubs.py``): MergeHub,
BroadcastHub and PartitionHub. Akka's HubSpec cases with ours, a class per hub.
"""

from __future__ import annotations

import asyncio

import pytest

from reactive import (
    BroadcastHub,
    Keep,
    Materializer,
    MergeHub,
    PartitionHub,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, settle


async def _settle(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


class TestMergeHub:
    """``MergeHub``."""

    async def test_merge_hub_merges_many_producers(self, materializer: Materializer) -> None:
        sink, probe = MergeHub.source(4).to_mat(TestSink.probe(), Keep.both).run(materializer)
        Source.from_iterable(range(10)).to(sink).run(materializer)
        Source.from_iterable(range(100, 110)).to(sink).run(materializer)
        probe.request(100)
        got = await probe.expect_next_n(20)
        assert sorted(got) == list(range(10)) + list(range(100, 110))
        assert [x for x in got if x < 100] == list(range(10))  # order per producer is kept
        await probe.expect_no_message(0.01)  # producers completing do not complete the hub
        probe.cancel()

    async def test_merge_hub_backpressures_producers(self, materializer: Materializer) -> None:
        sink, probe = MergeHub.source(2).to_mat(TestSink.probe(), Keep.both).run(materializer)
        pub = TestSource.probe().to(sink).run(materializer)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await pub.expect_request() == 1
        pub.send_next(2)
        await pub.expect_no_message(0.01)  # 2 in flight: no more credit
        probe.request(2)
        await probe.expect_next(1, 2)
        assert await pub.expect_request() == 1  # credit came back
        probe.cancel()
        await pub.expect_cancellation()

    async def test_merge_hub_producer_failure_does_not_fail_hub(
        self, materializer: Materializer
    ) -> None:
        sink, probe = MergeHub.source().to_mat(TestSink.probe(), Keep.both).run(materializer)
        Source.failed(RuntimeError("producer")).to(sink).run(materializer)
        Source.single("ok").to(sink).run(materializer)
        probe.request(1)
        await probe.expect_next("ok")
        await probe.expect_no_message(0.01)
        probe.cancel()

    async def test_merge_hub_cancel_cancels_current_and_future_producers(
        self,
        materializer: Materializer,
    ) -> None:
        sink, probe = MergeHub.source().to_mat(TestSink.probe(), Keep.both).run(materializer)
        pub = TestSource.probe().to(sink).run(materializer)
        await pub.expect_request()
        probe.cancel()
        await pub.expect_cancellation()
        late = TestSource.probe().to(sink).run(materializer)
        await late.expect_cancellation()

    async def test_merge_hub_respects_the_per_producer_buffer(
        self, materializer: Materializer
    ) -> None:
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

    async def test_merge_hub_cancelled_before_the_first_producer(
        self, materializer: Materializer
    ) -> None:
        """'notify new producers if consumer cancels before first producer'."""
        sink = MergeHub.source(16).to(Sink.cancelled()).run(materializer)
        await settle()
        pub = TestSource.probe().to(sink).run(materializer)
        await pub.expect_cancellation()

    async def test_merge_hub_notifies_existing_producers_when_consumer_cancels(
        self,
        materializer: Materializer,
    ) -> None:
        sink, result = MergeHub.source(16).take(5).to_mat(Sink.seq(), Keep.both).run(materializer)
        pub = TestSource.probe().to(sink).run(materializer)
        for i in range(1, 6):
            await pub.expect_request()
            pub.send_next(i)
        await pub.expect_cancellation()
        assert sorted(await result) == [1, 2, 3, 4, 5]

    async def test_merge_hub_keeps_working_when_a_producer_fails(
        self, materializer: Materializer
    ) -> None:
        sink, result = MergeHub.source(16).take(10).to_mat(Sink.seq(), Keep.both).run(materializer)
        Source.failed(Boom("producer")).run_with(sink, materializer)
        Source.from_iterable(range(1, 11)).run_with(sink, materializer)
        assert sorted(await result) == list(range(1, 11))

    async def test_merge_hub_long_streams_with_buffer_size_one(
        self, materializer: Materializer
    ) -> None:
        sink, result = MergeHub.source(1).take(4000).to_mat(Sink.seq(), Keep.both).run(materializer)
        Source.from_iterable(range(1, 2001)).run_with(sink, materializer)
        Source.from_iterable(range(2001, 4001)).run_with(sink, materializer)
        assert sorted(await result) == list(range(1, 4001))

    async def test_merge_hub_producers_separated_over_time(
        self, materializer: Materializer
    ) -> None:
        sink, probe = (
            MergeHub.source(16).grouped(100).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        Source.from_iterable(range(1, 101)).run_with(sink, materializer)
        assert await probe.request_next() == list(range(1, 101))
        Source.from_iterable(range(101, 201)).run_with(sink, materializer)
        assert await probe.request_next() == list(range(101, 201))
        probe.cancel()

    def test_merge_hub_rejects_a_non_positive_buffer(self) -> None:
        with pytest.raises(ValueError):
            MergeHub.source(0)


class TestBroadcastHub:
    """``BroadcastHub``."""

    async def test_broadcast_hub_every_consumer_sees_every_element(
        self, materializer: Materializer
    ) -> None:
        pub, src = TestSource.probe().to_mat(BroadcastHub.sink(8), Keep.both).run(materializer)
        a = src.run_with(Sink.seq(), materializer)
        b = src.map(lambda x: x * 10).run_with(Sink.seq(), materializer)
        await _settle()
        for i in range(20):
            await pub.expect_request()
            pub.send_next(i)
        pub.send_complete()
        assert await a == list(range(20))
        assert await b == [i * 10 for i in range(20)]

    async def test_broadcast_hub_slowest_consumer_backpressures(
        self, materializer: Materializer
    ) -> None:
        pub, src = TestSource.probe().to_mat(BroadcastHub.sink(2), Keep.both).run(materializer)
        slow = src.run_with(TestSink.probe(), materializer)
        fast = src.run_with(Sink.queue(), materializer)
        await _settle()
        for i in range(2):
            await pub.expect_request()
            pub.send_next(i)
        assert await fast.pull() == 0
        assert await fast.pull() == 1
        await pub.expect_no_message(0.01)  # slow consumer has read nothing: buffer full
        slow.request(1)
        await slow.expect_next(0)
        assert await pub.expect_request() == 1
        slow.cancel()
        fast.cancel()
        pub.send_complete()

    async def test_broadcast_hub_without_consumers_backpressures_then_delivers(
        self,
        materializer: Materializer,
    ) -> None:
        pub, src = TestSource.probe().to_mat(BroadcastHub.sink(2), Keep.both).run(materializer)
        for i in range(2):
            await pub.expect_request()
            pub.send_next(i)
        await pub.expect_no_message(0.01)
        out = src.run_with(Sink.seq(), materializer)
        await pub.expect_request()
        pub.send_complete()
        assert await out == [0, 1]

    async def test_broadcast_hub_late_consumer_gets_completion(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable(range(3)).run_with(BroadcastHub.sink(4), materializer)
        first = await src.run_with(Sink.seq(), materializer)
        assert first == [0, 1, 2]
        assert await src.run_with(Sink.seq(), materializer) == []

    async def test_broadcast_hub_failure_reaches_current_and_late_consumers(
        self,
        materializer: Materializer,
    ) -> None:
        pub, src = TestSource.probe().to_mat(BroadcastHub.sink(4), Keep.both).run(materializer)
        probe = src.run_with(TestSink.probe(), materializer)
        await _settle()
        pub.send_error(KeyError("up"))
        assert isinstance(await probe.expect_error(), KeyError)
        with pytest.raises(KeyError):
            await src.run_with(Sink.seq(), materializer)

    async def test_broadcast_hub_start_after_consumers(self, materializer: Materializer) -> None:
        pub, src = (
            TestSource.probe()
            .to_mat(BroadcastHub.sink(4, start_after_nr_of_consumers=2), Keep.both)
            .run(materializer)
        )
        a = src.run_with(Sink.seq(), materializer)
        await pub.expect_no_message(0.01)
        b = src.run_with(Sink.seq(), materializer)
        await pub.expect_request()
        pub.send_next("x").send_complete()
        assert await a == ["x"]
        assert await b == ["x"]

    async def test_broadcast_hub_detached_consumer_is_removed(
        self, materializer: Materializer
    ) -> None:
        pub, src = TestSource.probe().to_mat(BroadcastHub.sink(2), Keep.both).run(materializer)
        gone = src.take(1).run_with(Sink.seq(), materializer)
        stay = src.run_with(Sink.seq(), materializer)
        await _settle()
        for i in range(6):
            await pub.expect_request()
            pub.send_next(i)
        pub.send_complete()
        assert await gone == [0]
        assert await stay == list(range(6))

    @pytest.mark.parametrize("size", [0, 3, 6, 4096])
    def test_broadcast_hub_buffer_must_be_a_power_of_two_below_4096(self, size: int) -> None:
        with pytest.raises(ValueError):
            BroadcastHub.sink(size)

    async def test_broadcast_hub_subsequent_consumers_see_subsequent_elements(
        self,
        materializer: Materializer,
    ) -> None:
        """'ensure that subsequent consumers see subsequent elements without gap'."""
        src = Source.from_iterable(range(1, 21)).run_with(BroadcastHub.sink(8), materializer)
        assert await src.take(10).run_with(Sink.seq(), materializer) == list(range(1, 11))
        assert await src.take(10).run_with(Sink.seq(), materializer) == list(range(11, 21))

    async def test_broadcast_hub_consumers_attaching_around_the_same_time(
        self,
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

    async def test_broadcast_hub_handles_a_cancelled_consumer(
        self, materializer: Materializer
    ) -> None:
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

    async def test_broadcast_hub_remembers_completion(self, materializer: Materializer) -> None:
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


class TestPartitionHub:
    """``PartitionHub``."""

    async def test_partition_hub_routes_each_element_to_one_consumer(
        self,
        materializer: Materializer,
    ) -> None:
        src = Source.from_iterable(range(10)).run_with(
            PartitionHub.sink(lambda n, x: x % n, start_after_nr_of_consumers=2, buffer_size=4),
            materializer,
        )
        a = src.run_with(Sink.seq(), materializer)
        b = src.run_with(Sink.seq(), materializer)
        assert await a == [0, 2, 4, 6, 8]
        assert await b == [1, 3, 5, 7, 9]

    async def test_partition_hub_minus_one_drops(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(6)).run_with(
            PartitionHub.sink(lambda n, x: 0 if x % 2 else -1, start_after_nr_of_consumers=1),
            materializer,
        )
        assert await src.run_with(Sink.seq(), materializer) == [1, 3, 5]

    async def test_partition_hub_bad_index_fails_consumers(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable(range(3)).run_with(
            PartitionHub.sink(lambda n, x: 5, start_after_nr_of_consumers=1), materializer
        )
        with pytest.raises(IndexError, match="partition_hub"):
            await src.run_with(Sink.seq(), materializer)

    async def test_partition_hub_waits_for_consumers_and_backpressures(
        self,
        materializer: Materializer,
    ) -> None:
        pub, src = (
            TestSource.probe()
            .to_mat(
                PartitionHub.sink(lambda n, x: 0, start_after_nr_of_consumers=1, buffer_size=2),
                Keep.both,
            )
            .run(materializer)
        )
        await pub.expect_no_message(0.01)  # no consumer yet
        probe = src.run_with(TestSink.probe(), materializer)
        for i in range(2):
            await pub.expect_request()
            pub.send_next(i)
        await pub.expect_no_message(0.01)  # 2 queued for the consumer: buffer full
        probe.request(1)
        await probe.expect_next(0)
        await pub.expect_request()
        probe.cancel()
        pub.send_complete()

    async def test_partition_hub_stateful_least_loaded(self, materializer: Materializer) -> None:
        def factory():  # type: ignore[no-untyped-def]
            def route(info, x):  # type: ignore[no-untyped-def]
                return min(info.consumer_ids, key=info.queue_size)

            return route

        pub, src = (
            TestSource.probe()
            .to_mat(
                PartitionHub.stateful_sink(factory, start_after_nr_of_consumers=2, buffer_size=8),
                Keep.both,
            )
            .run(materializer)
        )
        a = src.run_with(TestSink.probe(), materializer)
        b = src.run_with(TestSink.probe(), materializer)
        for i in range(4):
            await pub.expect_request()
            pub.send_next(i)
        a.request(10)
        b.request(10)
        await a.expect_next(0, 2)
        await b.expect_next(1, 3)
        pub.send_complete()
        await a.expect_complete()
        await b.expect_complete()
