"""The fan-out junctions and operators (``reactive/_ops/fan_out/``): Broadcast, also_to,
Balance, Partition, divert_to, Unzip, UnzipWith and WireTap/wire_tap. Akka's
GraphBroadcastSpec, GraphBalanceSpec, GraphPartitionSpec, GraphUnzipSpec, GraphUnzipWithSpec,
FlowAlsoToSpec, FlowDivertToSpec and FlowWireTapSpec cases with ours, a class per junction or
operator (``Sink.combine`` is with the sinks). The batch paths' differential tests are in
test_fan_out_batches and test_broadcast_boundaries.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Balance,
    Broadcast,
    ClosedShape,
    Done,
    Flow,
    GraphDSL,
    Keep,
    KillSwitches,
    Materializer,
    Merge,
    OverflowStrategy,
    Partition,
    PartitionOutOfBoundsError,
    RunnableGraph,
    Sink,
    SinkShape,
    Source,
    SourceShape,
    Supervision,
    Unzip,
    UnzipWith,
    Zip,
)
from reactive.stage import UniformFanOutShape
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, settle

if TYPE_CHECKING:
    from collections.abc import Callable


def fan_out(junction: Any, source: Any, n: int) -> RunnableGraph[Any]:
    """``source`` -> junction; each of its ``n`` outputs to a TestSink probe.
    Materialized value: (source value, [probes])."""
    return fan_out_to(junction, source, [TestSink.probe() for _ in range(n)])


def _partition_bp(b: Any) -> Any:
    p = b.add(Partition(2, lambda x: x))
    return UniformFanOutShape(p.in_, p.out(0), p.out(1))


def fan_out_to(junction: Any, source: Any, sinks: list[Any]) -> RunnableGraph[Any]:
    """``source`` -> ``junction`` -> one sink per outlet; value: (source value, [sinks])."""

    def bp(b: Any, src: Any, *outs: Any) -> Any:
        j = b.add(junction)
        src.out >> j.in_
        for i, s in enumerate(outs):
            j.outlets[i] >> s.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(bp, source, *sinks, combine=lambda s, *ps: (s, list(ps)))
    )


def buffered(sink: Any, n: int = 16) -> Sink[Any, Any]:
    """``Flow.buffer(n, backpressure) ~> sink`` keeping the sink's value."""
    return Flow().buffer(n, OverflowStrategy.backpressure).to_mat(sink, Keep.right)


def balance_probes(junction: Any, source: Any, n: int, materializer: Materializer) -> Any:
    return fan_out_to(junction, source, [TestSink.probe() for _ in range(n)]).run(materializer)


def by_size(s: str) -> int:
    return 0 if len(s) > 4 else 1


def soon_to_complete() -> Source[Any, Any]:
    """TestPublisher.lazyEmpty: completes a moment after start, demand or not."""
    return Source.never().take_within(0.01)


def soon_to_fail() -> Source[Any, Any]:
    """TestPublisher.lazyError: fails a moment after start, demand or not."""
    return Source.never().completion_timeout(0.01).map_error(lambda e: Boom("test"))


PAIRS = [(1, "a"), (2, "b"), (3, "c")]


def doubled(x: int) -> tuple[int, str]:
    return x + x, f"{x} + {x}"


class TestBroadcast:
    """``Broadcast``."""

    async def test_broadcast_sends_each_element_to_all_outputs(
        self, materializer: Materializer
    ) -> None:
        (_, (a, b)) = fan_out(Broadcast(2), Source.from_iterable([1, 2, 3]), 2).run(materializer)
        a.request(10)
        b.request(10)
        await a.expect_next(1, 2, 3)
        await b.expect_next(1, 2, 3)
        await a.expect_complete()
        await b.expect_complete()

    async def test_broadcast_backpressures_when_any_output_does(
        self, materializer: Materializer
    ) -> None:
        pub, (a, b) = fan_out(Broadcast(2), TestSource.probe(), 2).run(materializer)
        a.request(5)
        await pub.expect_no_message(0.02)  # b has no demand yet: upstream is not pulled
        b.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await a.expect_next(1)
        await b.expect_next(1)
        await pub.expect_no_message(0.02)  # b backpressures again
        a.cancel()
        b.cancel()
        await pub.expect_cancellation()

    async def test_broadcast_skips_cancelled_output_and_cancels_when_all_did(
        self,
        materializer: Materializer,
    ) -> None:
        pub, (a, b) = fan_out(Broadcast(2), TestSource.probe(), 2).run(materializer)
        a.cancel()
        b.request(2)
        await pub.expect_request()
        pub.send_next("x")
        await b.expect_next("x")
        await pub.expect_request()
        b.cancel()
        await pub.expect_cancellation()

    async def test_broadcast_eager_cancel_cancels_upstream_at_first_cancel(
        self,
        materializer: Materializer,
    ) -> None:
        pub, (a, b) = fan_out(Broadcast(2, eager_cancel=True), TestSource.probe(), 2).run(
            materializer
        )
        b.request(1)
        a.cancel()
        await pub.expect_cancellation()
        await b.expect_complete()

    async def test_broadcast_fails_all_outputs_with_upstream(
        self, materializer: Materializer
    ) -> None:
        _, (a, b) = fan_out(Broadcast(2), Source.failed(ValueError("boom")), 2).run(materializer)
        assert str(await a.expect_error()) == "boom"
        assert str(await b.expect_error()) == "boom"

    async def test_broadcast_to_other_subscriber_with_buffers(
        self, materializer: Materializer
    ) -> None:
        _, (c1, c2) = fan_out_to(
            Broadcast(2),
            Source.from_iterable([1, 2, 3]),
            [buffered(TestSink.probe()), buffered(TestSink.probe())],
        ).run(materializer)
        c1.request(1)
        c2.request(2)
        await c1.expect_next(1)
        await c1.expect_no_message(0.05)
        await c2.expect_next(1, 2)
        await c2.expect_no_message(0.05)
        c1.request(3)
        await c1.expect_next(2, 3)
        await c1.expect_complete()
        c2.request(3)
        await c2.expect_next(3)
        await c2.expect_complete()

    async def test_broadcast_one_way_and_n_way(self, materializer: Materializer) -> None:
        def one_way(b: Any) -> Any:
            bcast = b.add(Broadcast(1))
            b.add(Source.from_iterable([1, 2, 3])) >> bcast.in_
            return SourceShape(bcast.out(0))

        src = Source.from_graph(GraphDSL.create(one_way))
        assert await src.run_fold([], lambda acc, x: [*acc, x], materializer) == [1, 2, 3]

        def n_way(b: Any, *heads: Any) -> Any:
            bcast = b.add(Broadcast(len(heads)))
            b.add(Source.from_iterable([1, 2, 3])) >> bcast.in_
            for i, h in enumerate(heads):
                bcast.out(i) >> b.add(Flow().grouped(5)) >> h.in_
            return ClosedShape

        for n in (5, 22):
            heads = [Sink.head() for _ in range(n)]
            futs = RunnableGraph.from_graph(
                GraphDSL.create(n_way, *heads, combine=lambda *fs: list(fs))
            ).run(materializer)
            assert await asyncio.gather(*futs) == [[1, 2, 3]] * n

    async def test_broadcast_cancel_upstream_when_downstreams_cancel(
        self,
        materializer: Materializer,
    ) -> None:
        pub, (c1, c2) = fan_out_to(
            Broadcast(2), TestSource.probe(), [TestSink.probe(), TestSink.probe()]
        ).run(materializer)
        c1.request(3)
        c2.request(3)
        pub.send_next(1)
        await c1.expect_next(1)
        await c2.expect_next(1)
        pub.send_next(2)
        await c1.expect_next(2)
        await c2.expect_next(2)
        c1.cancel()
        c2.cancel()
        await pub.expect_cancellation()

    async def test_broadcast_pass_along_early_cancellation(
        self, materializer: Materializer
    ) -> None:
        def bp(b: Any, s1: Any, s2: Any) -> Any:
            bcast = b.add(Broadcast(2))
            bcast.out(0) >> s1.in_
            bcast.out(1) >> s2.in_
            return SinkShape(bcast.in_)

        sink = Sink.from_graph(GraphDSL.create(bp, TestSink.probe(), TestSink.probe()))
        pub, (c1, c2) = TestSource.probe().to_mat(sink, Keep.both).run(materializer)
        c1.cancel()
        c2.cancel()
        await pub.expect_cancellation()


class TestAlsoTo:
    """``also_to``."""

    async def test_also_to(self, materializer: Materializer) -> None:
        side, main = (
            Source.from_iterable([1, 2, 3])
            .also_to_mat(Sink.seq(), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await side == [1, 2, 3]
        assert await main == [1, 2, 3]

    async def test_also_to_backpressure_from_side_slows_main(
        self, materializer: Materializer
    ) -> None:
        side, main = (
            Source.from_iterable(range(5))
            .also_to_mat(TestSink.probe(), Keep.right)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        main.request(5)
        await main.expect_no_message(0.02)
        side.request(1)
        await main.expect_next(0)
        await side.expect_next(0)
        side.cancel()  # a cancelling side sink cancels the whole line
        await main.expect_complete()

    async def test_also_to_broadcasts_and_cancels_with_either_branch(
        self,
        materializer: Materializer,
    ) -> None:
        side, main = (
            Source.from_iterable(range(1, 7))
            .also_to_mat(TestSink.probe(), Keep.right)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        side.request(6)
        main.request(6)
        await side.expect_next(1, 2, 3, 4, 5, 6)
        await main.expect_next(1, 2, 3, 4, 5, 6)
        await side.expect_complete()
        await main.expect_complete()

        pub, side = (
            TestSource.probe()
            .also_to_mat(TestSink.probe(), Keep.both)
            .to_mat(Sink.ignore(), Keep.left)
            .run(materializer)
        )
        side.cancel()
        await pub.expect_cancellation()

        pub, main = (
            TestSource.probe()
            .also_to_mat(Sink.ignore(), Keep.left)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        main.cancel()
        await pub.expect_cancellation()

    async def test_also_to_forwards_to_both_and_completes_both(
        self, materializer: Materializer
    ) -> None:
        (pub, side), main = (
            TestSource.probe()
            .also_to_mat(TestSink.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        main.request(3)
        side.request(3)
        pub.send_next(1).send_next(2).send_next(3)
        await main.expect_next(1, 2, 3)
        await side.expect_next(1, 2, 3)
        pub.send_complete()
        await main.expect_complete()
        await side.expect_complete()


class TestBalance:
    """``Balance``."""

    async def test_balance_sends_each_element_to_one_output_with_demand(
        self,
        materializer: Materializer,
    ) -> None:
        pub, (a, b) = fan_out(Balance(2), TestSource.probe(), 2).run(materializer)
        a.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await a.expect_next(1)
        b.request(1)
        await pub.expect_request()
        pub.send_next(2)
        await b.expect_next(2)
        await a.expect_no_message(0.02)
        pub.send_complete()
        await a.expect_complete()
        await b.expect_complete()

    async def test_balance_all_elements_once(self, materializer: Materializer) -> None:
        seen: list[list[int]] = [[], [], []]

        def bp(b: Any, out: Any) -> Any:
            src = b.add(Source.from_iterable(range(30)))
            bal = b.add(Balance(3))
            merge = b.add(Merge(3))
            src.out >> bal.in_
            for i in range(3):
                (
                    bal.out(i)
                    >> b.add(Flow().map(lambda x, i=i: seen[i].append(x) or x))
                    >> merge.in_(i)
                )
            merge.out >> out.in_
            return ClosedShape

        got = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert sorted(got) == list(range(30))
        assert sorted(x for s in seen for x in s) == list(range(30))

    async def test_balance_wait_for_all_downstreams(self, materializer: Materializer) -> None:
        pub, (a, b) = fan_out(Balance(2, wait_for_all_downstreams=True), TestSource.probe(), 2).run(
            materializer
        )
        a.request(1)
        await pub.expect_no_message(0.02)  # b never pulled yet
        b.request(1)
        await pub.expect_request()
        pub.send_next(1)
        pub.send_next(2)
        assert sorted([await a.expect_next(), await b.expect_next()]) == [1, 2]
        a.cancel()
        b.cancel()
        await pub.expect_cancellation()

    async def test_balance_cancels_upstream_when_all_outputs_cancel(
        self,
        materializer: Materializer,
    ) -> None:
        pub, (a, b) = fan_out(Balance(2), TestSource.probe(), 2).run(materializer)
        a.cancel()
        b.request(1)
        await pub.expect_request()
        pub.send_next(7)
        await b.expect_next(7)
        b.cancel()
        await pub.expect_cancellation()

    async def test_balance_eager_cancel(self, materializer: Materializer) -> None:
        pub, (a, b) = fan_out(Balance(2, eager_cancel=True), TestSource.probe(), 2).run(
            materializer
        )
        a.cancel()
        await pub.expect_cancellation()
        await b.expect_complete()

    async def test_balance_between_subscribers_which_signal_demand(
        self, materializer: Materializer
    ) -> None:
        _, (c1, c2) = balance_probes(Balance(2), Source.from_iterable([1, 2, 3]), 2, materializer)
        c1.request(1)
        await c1.expect_next(1)
        await c1.expect_no_message(0.05)
        c2.request(2)
        await c2.expect_next(2, 3)
        await c1.expect_complete()
        await c2.expect_complete()

    async def test_balance_waits_for_demand_from_all_downstreams(
        self, materializer: Materializer
    ) -> None:
        _, (s1, s2) = balance_probes(
            Balance(2, wait_for_all_downstreams=True),
            Source.from_iterable([1, 2, 3]),
            2,
            materializer,
        )
        s1.request(1)
        await s1.expect_no_message(0.05)
        s2.request(2)
        await s1.expect_next(1)
        await s2.expect_next(2, 3)
        await s1.expect_complete()
        await s2.expect_complete()

    async def test_balance_waits_for_all_non_cancelled_downstreams(
        self, materializer: Materializer
    ) -> None:
        _, (s1, s2, s3) = balance_probes(
            Balance(3, wait_for_all_downstreams=True),
            Source.from_iterable([1, 2, 3]),
            3,
            materializer,
        )
        s1.request(1)
        s2.request(2)
        await s1.expect_no_message(0.05)
        s3.cancel()
        await s1.expect_next(1)
        await s2.expect_next(2, 3)
        await s1.expect_complete()
        await s2.expect_complete()

    async def test_balance_one_way_and_five_way(self, materializer: Materializer) -> None:
        def one_way(b: Any) -> Any:
            bal = b.add(Balance(1))
            b.add(Source.from_iterable([1, 2, 3])) >> bal.in_
            return SourceShape(bal.out(0))

        assert await Source.from_graph(GraphDSL.create(one_way)).run_with(
            Sink.seq(), materializer
        ) == [
            1,
            2,
            3,
        ]

        def five_way(b: Any, *heads: Any) -> Any:
            bal = b.add(Balance(5, wait_for_all_downstreams=True))
            b.add(Source.from_iterable(range(15))) >> bal.in_
            for i, h in enumerate(heads):
                bal.out(i) >> b.add(Flow().grouped(15)) >> h
            return ClosedShape

        futs = RunnableGraph.from_graph(
            GraphDSL.create(five_way, *[Sink.head() for _ in range(5)])
        ).run(materializer)
        assert isinstance(futs, tuple) and len(futs) == 5
        got = [x for part in await asyncio.gather(*futs) for x in part]
        assert sorted(got) == list(range(15))

    async def test_balance_between_all_three_outputs(self, materializer: Materializer) -> None:
        n = 1000

        def bp(b: Any, *outs: Any) -> Any:
            bal = b.add(Balance(3, wait_for_all_downstreams=True))
            b.add(Source.repeat(1).take(3 * n)) >> bal.in_
            for i, o in enumerate(outs):
                bal.out(i) >> b.add(Flow().async_boundary()) >> o
            return ClosedShape

        folds = [Sink.fold(0, lambda a, x: a + x) for _ in range(3)]
        results = await asyncio.gather(
            *RunnableGraph.from_graph(GraphDSL.create(bp, *folds)).run(materializer)
        )
        assert 0 not in results
        assert sum(results) == 3 * n

    async def test_balance_fairly_between_three_outputs(self, materializer: Materializer) -> None:
        _, (p1, p2, p3) = balance_probes(
            Balance(3), Source.from_iterable(range(1, 8)), 3, materializer
        )
        await p1.request_next(1)
        await p2.request_next(2)
        await p3.request_next(3)
        await p2.request_next(4)
        await p1.request_next(5)
        await p3.request_next(6)
        await p1.request_next(7)
        await p1.expect_complete()
        await p2.expect_complete()
        await p3.expect_complete()

    async def test_balance_produces_to_the_other_when_one_cancels(
        self, materializer: Materializer
    ) -> None:
        for cancelled in (0, 1):
            _, probes = balance_probes(Balance(2), Source.from_iterable([1, 2, 3]), 2, materializer)
            probes[cancelled].cancel()
            other = probes[1 - cancelled]
            other.request(3)
            await other.expect_next(1, 2, 3)
            await other.expect_complete()

    async def test_balance_cancels_upstream_when_all_or_any_downstream_cancels(
        self,
        materializer: Materializer,
    ) -> None:
        for eager in (False, True):
            pub, (c1, c2) = balance_probes(
                Balance(2, eager_cancel=eager), TestSource.probe(), 2, materializer
            )
            c1.request(1)
            await pub.expect_request()
            pub.send_next(1)
            await c1.expect_next(1)
            c2.request(1)
            pub.send_next(2)
            await c2.expect_next(2)
            c1.cancel()
            if eager:
                await pub.expect_cancellation()
                await c2.expect_complete()
            else:
                await c2.expect_no_message(0.05)  # still running
                c2.cancel()
                await pub.expect_cancellation()

    async def test_balance_does_not_push_twice_bug_20943(self, materializer: Materializer) -> None:
        pub, (c1, c2) = balance_probes(Balance(2), TestSource.probe(), 2, materializer)
        c1.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await c1.expect_next(1)
        c2.request(1)
        await settle()
        c2.cancel()
        pub.send_next(2)
        c1.cancel()
        await pub.expect_cancellation()

    async def test_balance_does_not_dequeue_from_empty_outlet_buffer_bug_25387(
        self,
        materializer: Materializer,
    ) -> None:
        pub, (c1, c2, c3) = balance_probes(Balance(3), TestSource.probe(), 3, materializer)
        # Akka's probes signal across an async boundary: each signal is handled on its own.
        c1.request(1)
        await settle()
        c1.cancel()
        c2.request(1)
        await settle()
        c2.cancel()
        await pub.expect_request()
        pub.send_next(1)
        c3.request(1)
        await c3.expect_next(1)
        c3.cancel()
        await pub.expect_cancellation()


class TestPartition:
    """``Partition``."""

    async def test_partition_routes_by_function(self, materializer: Materializer) -> None:
        _, (ev, od) = fan_out(Partition(2, lambda x: x % 2), Source.from_iterable(range(7)), 2).run(
            materializer
        )
        ev.request(10)
        od.request(10)
        assert await ev.expect_next_n(4) == [0, 2, 4, 6]
        assert await od.expect_next_n(3) == [1, 3, 5]
        await ev.expect_complete()
        await od.expect_complete()

    async def test_partition_out_of_range_fails_naming_the_index(
        self, materializer: Materializer
    ) -> None:
        _, (a, b) = fan_out(Partition(2, lambda x: x), Source.from_iterable([0, 1, 5]), 2).run(
            materializer
        )
        a.request(5)
        b.request(5)
        await a.expect_next(0)
        await b.expect_next(1)
        exc = await a.expect_error()
        assert isinstance(exc, PartitionOutOfBoundsError)
        assert "index 5" in str(exc) and "[0, 1]" in str(exc) and "partition" in str(exc)
        await b.expect_error()

    async def test_partition_resume_drops_out_of_range(self, materializer: Materializer) -> None:
        resume = Attributes.supervision_strategy(lambda e: Supervision.resume)
        part = GraphDSL.create(_partition_bp).with_attributes(resume)

        def bp(b: Any, out0: Any, out1: Any) -> Any:
            src = b.add(Source.from_iterable([0, 9, 1, 0]))
            p = b.add(part)
            src.out >> p.in_
            p.out(0) >> out0.in_
            p.out(1) >> out1.in_
            return ClosedShape

        graph = GraphDSL.create(bp, Sink.seq(), Sink.seq())
        a, c = RunnableGraph.from_graph(graph).run(materializer)
        assert await a == [0, 0]
        assert await c == [1]

    async def test_partition_drops_elements_for_cancelled_output(
        self, materializer: Materializer
    ) -> None:
        pub, (a, b) = fan_out(Partition(2, lambda x: x % 2), TestSource.probe(), 2).run(
            materializer
        )
        b.cancel()
        a.request(3)
        await pub.expect_request()
        pub.send_next(1)  # for the cancelled output: dropped
        pub.send_next(2)
        await a.expect_next(2)
        pub.send_complete()
        await a.expect_complete()

    async def test_partition_to_three_sinks(self, materializer: Materializer) -> None:
        def part(x: int) -> int:
            return 0 if x > 3 else 1 if x < 3 else 2

        _, seqs = fan_out_to(
            Partition(3, part),
            Source.from_iterable([1, 2, 3, 4, 5]),
            [Sink.seq() for _ in range(3)],
        ).run(materializer)
        assert [set(await s) for s in seqs] == [{4, 5}, {1, 2}, {3}]

    async def test_partition_completes_after_upstream_completes(
        self, materializer: Materializer
    ) -> None:
        _, (c1, c2) = fan_out_to(
            Partition(2, by_size),
            Source.from_iterable(["this", "is", "just", "another", "test"]),
            [TestSink.probe(), TestSink.probe()],
        ).run(materializer)
        c1.request(1)
        c2.request(4)
        await c1.expect_next("another")
        await c2.expect_next("this", "is", "just", "test")
        await c1.expect_complete()
        await c2.expect_complete()

    @pytest.mark.parametrize("elems", [[6, 3], [6]])
    async def test_partition_remembers_first_pull_and_waits_for_pending_output(
        self, materializer: Materializer, elems: list[int]
    ) -> None:
        _, (c1, c2) = fan_out_to(
            Partition(2, lambda x: 0 if x < 6 else 1),
            Source.from_iterable(elems),
            [TestSink.probe(), TestSink.probe()],
        ).run(materializer)
        c1.request(1)
        await c1.expect_no_message(0.05)
        c2.request(1)
        await c2.expect_next(6)
        if 3 in elems:
            await c1.expect_next(3)
        await c1.expect_complete()
        await c2.expect_complete()

    @pytest.mark.parametrize("eager", [False, True])
    async def test_partition_cancels_upstream_per_eager_cancel(
        self, materializer: Materializer, eager: bool
    ) -> None:
        pub, (c1, c2) = fan_out_to(
            Partition(2, lambda x: 0 if x < 6 else 1, eager_cancel=eager),
            TestSource.probe(),
            [buffered(TestSink.probe()), buffered(TestSink.probe())],
        ).run(materializer)
        c1.request(3)
        c2.request(3)
        pub.send_next(1).send_next(8)
        await c1.expect_next(1)
        await c2.expect_next(8)
        if eager:
            c1.cancel()
            await pub.expect_cancellation()
            return
        pub.send_next(2)
        await c1.expect_next(2)
        c1.cancel()
        pub.send_next(9)
        await c2.expect_next(9)
        c2.cancel()
        await pub.expect_cancellation()

    async def test_partition_upstream_completes_and_downstream_cancels(
        self,
        materializer: Materializer,
    ) -> None:
        ab: Callable[[str], int] = lambda s: 0 if s in ("a", "b") else 1  # noqa: E731
        _, (c1, c2) = fan_out_to(
            Partition(2, ab),
            Source.from_iterable(["a", "b", "c", "d"]),
            [TestSink.probe(), TestSink.probe()],
        ).run(materializer)
        c1.request(10)
        c2.request(1)
        await c1.expect_next("a", "b")
        await c2.expect_next("c")
        c2.cancel()
        await c1.expect_complete()

        _, (c1, c2) = fan_out_to(
            Partition(2, ab),
            Source.from_iterable(["a", "b", "c"]),
            [TestSink.probe(), TestSink.probe()],
        ).run(materializer)
        c1.request(10)
        await c1.expect_next("a", "b")
        c2.request(1)
        await c2.expect_next("c")
        await c1.expect_complete()
        await c2.expect_complete()

    async def test_partition_works_with_merge(self, materializer: Materializer) -> None:
        data = [5, 2, 9, 1, 1, 1, 10]

        def bp(b: Any, sink: Any) -> Any:
            part = b.add(Partition(2, lambda x: 0 if x < 4 else 1))
            merge = b.add(Merge(2))
            b.add(Source.from_iterable(data)) >> part.in_
            part.out(0) >> merge.in_(0)
            part.out(1) >> merge.in_(1)
            merge.out >> sink.in_
            return ClosedShape

        out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert sorted(out) == sorted(data)

    async def test_partition_out_of_bounds_fails_the_stage(
        self, materializer: Materializer
    ) -> None:
        _, (c1, _ignored) = fan_out_to(
            Partition(2, lambda x: -1 if x < 0 else 0),
            Source.from_iterable([-3]),
            [TestSink.probe(), Sink.ignore()],
        ).run(materializer)
        c1.request(1)
        err = await c1.expect_error()
        assert isinstance(err, PartitionOutOfBoundsError)
        assert isinstance(err, IndexError)
        assert "-1" in str(err)

    @pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
    @pytest.mark.parametrize("bad", ["raise", "out_of_bounds"])
    async def test_partition_supervision(
        self, materializer: Materializer, directive: Any, bad: str
    ) -> None:
        def part(x: int) -> int:
            if x == 3:
                if bad == "raise":
                    raise Boom("resume")
                return -1
            return 0 if x > 3 else 1

        graph = fan_out_to(
            Partition(3, part),
            Source.from_iterable([1, 2, 3, 4, 5]),
            [Sink.seq() for _ in range(3)],
        ).with_attributes(Attributes.supervision_strategy(lambda exc: directive))
        _, seqs = graph.run(materializer)
        assert [set(await s) for s in seqs] == [{4, 5}, {1, 2}, set()]


class TestDivertTo:
    """``divert_to``."""

    async def test_divert_to(self, materializer: Materializer) -> None:
        diverted, kept = (
            Source.from_iterable(range(8))
            .divert_to_mat(Sink.seq(), lambda x: x % 3 == 0, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await diverted == [0, 3, 6]
        assert await kept == [1, 2, 4, 5, 7]

    async def test_divert_to_sends_matching_elements_to_the_sink(
        self, materializer: Materializer
    ) -> None:
        odd, even = (
            Source.from_iterable([1, 2])
            .divert_to_mat(TestSink.probe(), lambda x: x % 2 != 0, Keep.right)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        even.request(1)
        await even.expect_no_message(0.05)
        odd.request(1)
        await odd.expect_next(1)
        await even.expect_next(2)
        await odd.expect_complete()
        await even.expect_complete()

    async def test_divert_to_cancels_when_any_downstream_cancels(
        self, materializer: Materializer
    ) -> None:
        (pub, odd), even = (
            TestSource.probe()
            .divert_to_mat(TestSink.probe(), lambda x: x % 2 != 0, Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        even.request(1)
        pub.send_next(2)
        await even.expect_next(2)
        odd.cancel()
        await pub.expect_cancellation()


class TestUnzip:
    """``Unzip``."""

    async def test_unzip(self, materializer: Materializer) -> None:
        src = Source.from_iterable([(1, "a"), (2, "b")])
        _, (a, b) = fan_out(Unzip(), src, 2).run(materializer)
        a.request(5)
        await a.expect_no_message(0.02)  # needs demand on both
        b.request(5)
        await a.expect_next(1, 2)
        await b.expect_next("a", "b")
        await a.expect_complete()
        await b.expect_complete()

    async def test_unzip_keeps_going_when_one_output_cancels(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([(1, "a"), (2, "b"), (3, "c")])
        _, (a, b) = fan_out(Unzip(), src, 2).run(materializer)
        b.cancel()
        a.request(5)
        await a.expect_next(1, 2, 3)
        await a.expect_complete()

    async def test_unzip_to_two_subscribers_with_buffers(self, materializer: Materializer) -> None:
        _, (c1, c2) = fan_out_to(
            Unzip(),
            Source.from_iterable(PAIRS),
            [
                Flow()
                .buffer(16, OverflowStrategy.backpressure)
                .map(lambda x: x * 2)
                .to_mat(TestSink.probe(), Keep.right),
                buffered(TestSink.probe()),
            ],
        ).run(materializer)
        c1.request(1)
        c2.request(2)
        await c1.expect_next(2)
        await c1.expect_no_message(0.05)
        await c2.expect_next("a", "b")
        await c2.expect_no_message(0.05)
        c1.request(3)
        await c1.expect_next(4, 6)
        await c1.expect_complete()
        c2.request(3)
        await c2.expect_next("c")
        await c2.expect_complete()

    @pytest.mark.parametrize("order", ["pull_pull_cancel", "pull_cancel_pull"])
    async def test_unzip_pull_then_cancel_does_not_push_twice_or_lose_elements(
        self, materializer: Materializer, order: str
    ) -> None:
        _, (c1, c2) = fan_out_to(
            Unzip(), Source.from_iterable(PAIRS), [TestSink.probe(), TestSink.probe()]
        ).run(materializer)
        c2.request(3)
        if order == "pull_pull_cancel":
            c1.request(3)
            c2.cancel()
        else:
            c2.cancel()
            c1.request(3)
        await c1.expect_next(1, 2, 3)
        await c1.expect_complete()

    async def test_unzip_cancels_upstream_when_downstreams_cancel(
        self, materializer: Materializer
    ) -> None:
        pub, (c1, c2) = fan_out_to(
            Unzip(), TestSource.probe(), [TestSink.probe(), TestSink.probe()]
        ).run(materializer)
        c1.request(3)
        c2.request(3)
        pub.send_next((1, "a"))
        await c1.expect_next(1)
        await c2.expect_next("a")
        pub.send_next((2, "b"))
        await c1.expect_next(2)
        await c2.expect_next("b")
        c1.cancel()
        c2.cancel()
        await pub.expect_cancellation()

    async def test_unzip_works_with_zip(self, materializer: Materializer) -> None:
        def bp(b: Any, probe: Any) -> Any:
            zip_ = b.add(Zip())
            unzip = b.add(Unzip())
            b.add(Source.from_iterable(PAIRS)) >> unzip.in_
            unzip.out0 >> zip_.in0
            unzip.out1 >> zip_.in1
            zip_.out >> probe.in_
            return ClosedShape

        probe = RunnableGraph.from_graph(GraphDSL.create(bp, TestSink.probe())).run(materializer)
        probe.request(5)
        await probe.expect_next(*PAIRS)
        await probe.expect_complete()


class TestUnzipWith:
    """``UnzipWith``."""

    async def test_unzip_with_and_ports(self, materializer: Materializer) -> None:
        def bp(b: Any, s0: Any, s1: Any) -> Any:
            src = b.add(Source.from_iterable([1, 2, 3]))
            u = b.add(UnzipWith(lambda x: (x * 10, str(x))))
            src.out >> u.in_
            u.out0 >> s0.in_
            u.out1 >> s1.in_
            return ClosedShape

        a, c = RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.seq())).run(
            materializer
        )
        assert await a == [10, 20, 30]
        assert await c == ["1", "2", "3"]

    async def test_unzip_with_on_completed_and_failed_publishers(
        self, materializer: Materializer
    ) -> None:
        for src in (Source.empty(), soon_to_complete()):
            _, (left, right) = fan_out_to(
                UnzipWith(doubled), src, [TestSink.probe(), TestSink.probe()]
            ).run(materializer)
            await left.expect_complete()
            await right.expect_complete()
        for src in (Source.failed(Boom("test")), soon_to_fail()):
            _, (left, right) = fan_out_to(
                UnzipWith(doubled), src, [TestSink.probe(), TestSink.probe()]
            ).run(materializer)
            assert isinstance(await left.expect_error(), Boom)
            assert isinstance(await right.expect_error(), Boom)

    async def test_unzip_with_happy_case(self, materializer: Materializer) -> None:
        _, (left, right) = fan_out_to(
            UnzipWith(doubled),
            Source.from_iterable(range(1, 5)),
            [buffered(TestSink.probe(), 4), buffered(TestSink.probe(), 4)],
        ).run(materializer)
        left.request(2)
        right.request(1)
        await left.expect_next(2, 4)
        await left.expect_no_message(0.05)
        await right.expect_next("1 + 1")
        await right.expect_no_message(0.05)
        left.request(1)
        right.request(2)
        await left.expect_next(6)
        await right.expect_next("2 + 2", "3 + 3")
        left.request(1)
        right.request(1)
        await left.expect_next(8)
        await right.expect_next("4 + 4")
        await left.expect_complete()
        await right.expect_complete()

    async def test_unzip_with_sad_case(self, materializer: Materializer) -> None:
        _, (left, right) = fan_out_to(
            UnzipWith(lambda x: (1 // x, f"1 / {x}")),
            Source.from_iterable(range(-2, 3)),
            [TestSink.probe(), TestSink.probe()],
        ).run(materializer)
        for x in (-2, -1):
            left.request(1)
            right.request(1)
            await left.expect_next(1 // x)
            await right.expect_next(f"1 / {x}")
        left.request(1)
        right.request(1)
        assert isinstance(await left.expect_error(), ZeroDivisionError)
        assert isinstance(await right.expect_error(), ZeroDivisionError)

    async def test_unzip_with_propagates_the_last_cancellation_cause(
        self,
        materializer: Materializer,
    ) -> None:
        def bp(b: Any, src: Any, ks1: Any, ks2: Any) -> Any:
            unzip = b.add(UnzipWith(lambda x: (1 // x, f"1 / {x}")))
            src.out >> unzip.in_
            unzip.out0 >> ks1.in_
            unzip.out1 >> ks2.in_
            return ClosedShape

        def kill_sink() -> Sink[Any, Any]:
            return Flow().via_mat(KillSwitches.single(), Keep.right).to(Sink.ignore())

        source = Source.never().watch_termination()
        termination, ks1, ks2 = RunnableGraph.from_graph(
            GraphDSL.create(bp, source, kill_sink(), kill_sink())
        ).run(materializer)
        # Akka's UnzipWith cancels upstream only when every output cancelled, with the cause of
        # the last one (GraphUnzipWithSpec aborts both with the same exception; two distinct
        # causes are what shows which one wins).
        first, last = Boom("first"), Boom("last")
        ks1.abort(first)
        await settle()
        assert not termination.done()  # one output still running: upstream not cancelled yet
        ks2.abort(last)
        with pytest.raises(Boom) as info:
            await asyncio.wait_for(termination, 5)
        assert info.value is last

    async def test_unzip_with_three_outputs(self, materializer: Materializer) -> None:
        def bp(b: Any, *probes: Any) -> Any:
            unzip = b.add(UnzipWith(lambda p: (p["name"], p["surname"], p["n"]), 3))
            b.add(Source.single({"name": "Caplin", "surname": "Capybara", "n": 3})) >> unzip.in_
            unzip.out0 >> probes[0].in_
            unzip.out1 >> probes[1].in_
            unzip.out2 >> probes[2].in_
            return ClosedShape

        probes = RunnableGraph.from_graph(
            GraphDSL.create(bp, TestSink.probe(), TestSink.probe(), TestSink.probe())
        ).run(materializer)
        for p in probes:
            p.request(1)
        for p, x in zip(probes, ["Caplin", "Capybara", 3], strict=True):
            await p.expect_next(x)
            await p.expect_complete()


class TestWireTap:
    """``WireTap`` / ``wire_tap``."""

    async def test_wire_tap_never_slows_the_main_line(self, materializer: Materializer) -> None:
        tap, out = (
            Source.from_iterable(range(5))
            .wire_tap_mat(TestSink.probe(), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await out == [0, 1, 2, 3, 4]  # tap never requested: copies dropped
        await tap.expect_complete()

    async def test_wire_tap_copies_when_tap_has_demand_and_survives_tap_cancel(
        self,
        materializer: Materializer,
    ) -> None:
        tap, main = (
            Source.from_iterable(range(4))
            .wire_tap_mat(TestSink.probe(), Keep.right)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        tap.request(1)
        main.request(2)
        await main.expect_next(0, 1)
        await tap.expect_next(0)
        tap.cancel()
        main.request(5)
        await main.expect_next(2, 3)
        await main.expect_complete()

    async def test_wire_tap_with_a_procedure(self, materializer: Materializer) -> None:
        seen: list[int] = []
        done = (
            Source.from_iterable(range(1, 101))
            .wire_tap(seen.append)
            .run_with(Sink.ignore(), materializer)
        )
        assert await done is Done
        assert seen == list(range(1, 101))
        assert (
            await Source.empty().wire_tap(seen.append).run_with(Sink.ignore(), materializer) is Done
        )

        def explode(_: Any) -> None:
            raise Boom("Boom!")

        done = Source.single(1).wire_tap(explode).run_with(Sink.ignore(), materializer)
        assert await done is Done  # a failing tap does not fail the main line

    async def test_wire_tap_yields_the_first_error(self, materializer: Materializer) -> None:
        pub, done = (
            TestSource.probe()
            .wire_tap(lambda _: None)
            .to_mat(Sink.ignore(), Keep.both)
            .run(materializer)
        )
        await pub.expect_request()
        pub.send_error(Boom("ex"))
        with pytest.raises(Boom):
            await done

    async def test_wire_tap_keeps_the_latest_element_for_a_slow_tap(
        self,
        materializer: Materializer,
    ) -> None:
        (pub, tap), main = (
            TestSource.probe()
            .wire_tap_mat(TestSink.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        main.request(3)
        pub.send_next(1).send_next(2).send_next(3)
        await main.expect_next(1, 2, 3)
        tap.request(1)
        await tap.expect_next(3)  # Akka's WireTap keeps the latest copy while the tap is slow
        await tap.expect_no_message(0.05)
        pub.send_complete()
        await main.expect_complete()
        await tap.expect_complete()


class TestFanOutOnFlow:
    """The fluent fan-out operators on a ``Flow``."""

    async def test_fan_out_operators_on_flow(self, materializer: Materializer) -> None:
        seen: list[int] = []
        flow = (
            Flow()
            .map(lambda x: x * 2)
            .also_to(Sink.foreach(seen.append))
            .divert_to(Sink.ignore(), lambda x: x > 4)
        )
        assert await Source.from_iterable([1, 2, 3]).via(flow).run_with(
            Sink.seq(), materializer
        ) == [
            2,
            4,
        ]
        assert seen == [2, 4, 6]
