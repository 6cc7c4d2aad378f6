"""Catalog fan-in / fan-out operators: ``merge_all``, ``interleave_all``, ``also_to_all``,
``merge_latest`` (and the ``MergeLatest`` junction), ``merge_preferred``."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    ClosedShape,
    GraphDSL,
    Keep,
    Materializer,
    MergeLatest,
    RunnableGraph,
    Sink,
    Source,
)
from reactive.testkit import PublisherProbe, SubscriberProbe, TestSink, TestSource
from tests.reactive.support import Boom, seq


def captured(box: list[Any]) -> Source[Any, Any]:
    """A ``TestSource.probe()`` whose probe lands in ``box`` when it materializes."""
    return TestSource.probe().map_materialized_value(lambda p: box.append(p) or p)


def two_probes(
    op: Any, mat: Materializer
) -> tuple[PublisherProbe, PublisherProbe, SubscriberProbe]:
    """``this`` and ``that`` publisher probes joined by ``op(this, that)`` into a probe."""
    box: list[Any] = []
    this, sub = op(TestSource.probe(), captured(box)).to_mat(TestSink.probe(), Keep.both).run(mat)
    return this, box[0], sub


class TestMergeAll:
    async def test_merges_every_source(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).merge_all(
            [Source.from_iterable([3, 4]), Source.single(5)]
        )
        assert sorted(await seq(src, materializer)) == [1, 2, 3, 4, 5]

    async def test_completes_when_all_complete(self, materializer: Materializer) -> None:
        box: list[Any] = []
        a, sub = (
            TestSource.probe()
            .merge_all([captured(box), captured(box)])
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        b, c = box
        sub.request(3)
        for p, x in ((a, 1), (b, 2), (c, 3)):
            await p.expect_request()
            p.send_next(x)
        assert sorted(
            [await sub.expect_next_n(1), await sub.expect_next_n(1), await sub.expect_next_n(1)]
        ) == [[1], [2], [3]]
        a.send_complete()
        b.send_complete()
        await sub.expect_no_message(0.02)
        c.send_complete()
        await sub.expect_complete()

    async def test_eager_complete(self, materializer: Materializer) -> None:
        src = Source.single(1).merge_all([Source.never()], eager_complete=True)
        assert await seq(src, materializer) == [1]

    async def test_no_others_is_a_pass_through(self, materializer: Materializer) -> None:
        assert await seq(Source.from_iterable([1, 2]).merge_all([]), materializer) == [1, 2]

    def test_checks_its_arguments(self) -> None:
        with pytest.raises(TypeError, match=r"merge_all\(those, eager_complete\): those"):
            Source.single(1).merge_all(5)  # type: ignore[arg-type]


class TestInterleaveAll:
    async def test_round_robin_by_segment(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4]).interleave_all(
            [Source.from_iterable([5, 6, 7, 8]), Source.from_iterable([9, 10])], 2
        )
        assert await seq(src, materializer) == [1, 2, 5, 6, 9, 10, 3, 4, 7, 8]

    async def test_eager_close(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4]).interleave_all(
            [Source.from_iterable([5, 6, 7, 8]), Source.from_iterable([9])], 1, eager_close=True
        )
        got = await seq(src, materializer)
        full = [1, 5, 9, 2, 6, 3, 7, 4, 8]
        assert got == full[: len(got)]
        assert 2 <= len(got) < len(full)  # stopped when the short input completed

    def test_checks_segment_size(self) -> None:
        with pytest.raises(ValueError, match=r"interleave_all.*segment_size must be >= 1"):
            Source.single(1).interleave_all([Source.single(2)], 0)


class TestAlsoToAll:
    async def test_every_sink_gets_every_element(self, materializer: Materializer) -> None:
        a: list[int] = []
        b: list[int] = []
        src = Source.from_iterable([1, 2, 3]).also_to_all(
            Sink.foreach(a.append), Sink.foreach(b.append)
        )
        assert await seq(src, materializer) == [1, 2, 3]
        assert a == [1, 2, 3]
        assert b == [1, 2, 3]

    async def test_a_slow_sink_backpressures_the_main_line(
        self, materializer: Materializer
    ) -> None:
        box: list[Any] = []
        side = TestSink.probe().map_materialized_value(lambda p: box.append(p) or p)
        pub, sub = (
            TestSource.probe()
            .also_to_all(Sink.ignore(), side)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        tap = box[0]
        sub.request(5)
        await pub.expect_no_message(0.02)  # the side sink has no demand: no pull
        tap.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next(1)
        await tap.expect_next(1)
        tap.cancel()  # a side sink cancelling cancels the stream
        await pub.expect_cancellation()
        sub.cancel()

    async def test_no_sinks_is_a_pass_through(self, materializer: Materializer) -> None:
        assert await seq(Source.from_iterable([1, 2]).also_to_all(), materializer) == [1, 2]


class TestMergeLatest:
    async def test_emits_latest_of_every_input_once_all_emitted(
        self, materializer: Materializer
    ) -> None:
        a, b, sub = two_probes(lambda s, o: s.merge_latest(o), materializer)
        sub.request(10)
        await a.expect_request()
        await b.expect_request()
        a.send_next(1)
        await a.expect_request()  # pulled again at once: only the latest counts
        a.send_next(2)
        await sub.expect_no_message(0.02)  # b has not emitted yet
        b.send_next(10)
        await sub.expect_next([2, 10])
        a.send_next(3)
        await sub.expect_next([3, 10])
        b.send_next(20)
        await sub.expect_next([3, 20])
        a.send_complete()
        b.send_next(30)
        await sub.expect_next([3, 30])
        b.send_complete()
        await sub.expect_complete()

    async def test_backpressure_keeps_one_list_per_arrival(
        self, materializer: Materializer
    ) -> None:
        a, b, sub = two_probes(lambda s, o: s.merge_latest(o), materializer)
        await a.expect_request()
        await b.expect_request()
        a.send_next(1)
        b.send_next(10)  # list [1, 10] waits for demand
        await a.expect_request()
        a.send_next(2)  # list [2, 10] waits too; a is not pulled again meanwhile
        await a.expect_no_message(0.02)
        sub.request(1)
        await sub.expect_next([1, 10])
        await b.expect_request()  # b's list went out: b pulled again
        sub.request(1)
        await sub.expect_next([2, 10])
        await a.expect_request()
        sub.cancel()
        await a.expect_cancellation()

    async def test_an_input_completing_empty_completes(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).merge_latest(Source.empty())
        assert await seq(src, materializer) == []

    async def test_eager_complete(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(lambda s, o: s.merge_latest(o, eager_complete=True), materializer)
        sub.request(5)
        a.send_next(1)
        b.send_next(2)
        await sub.expect_next([1, 2])
        a.send_complete()
        await sub.expect_complete()
        await b.expect_cancellation()

    async def test_failure(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(lambda s, o: s.merge_latest(o), materializer)
        sub.request(1)
        b.send_error(Boom("b"))
        assert isinstance(await sub.expect_error(), Boom)
        await a.expect_cancellation()

    async def test_junction_in_graph_dsl(self, materializer: Materializer) -> None:
        def bp(b: Any, sink: Any) -> Any:
            m = b.add(MergeLatest(3))
            for i, src in enumerate(
                [Source.single(1), Source.single(2), Source.from_iterable([3, 4])]
            ):
                b.add(src) >> m.in_(i)
            m.out >> sink.in_
            return ClosedShape

        got = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert got[-1] == [1, 2, 4]
        assert all(len(x) == 3 for x in got)
        assert [1, 2, 3] in got or got == [[1, 2, 4]]

    def test_junction_checks_n(self) -> None:
        with pytest.raises(ValueError, match=r"MergeLatest\(n, eager_complete\): n must be >= 1"):
            MergeLatest(0)


class TestMergePreferred:
    @pytest.mark.parametrize("preferred", [True, False])
    async def test_the_preferred_side_wins(
        self, materializer: Materializer, preferred: bool
    ) -> None:
        this, that, sub = two_probes(lambda s, o: s.merge_preferred(o, preferred), materializer)
        await this.expect_request()
        await that.expect_request()
        first, second = (that, this) if preferred else (this, that)
        second.send_next("other")
        first.send_next("pref")
        await sub.expect_no_message(0.02)
        sub.request(1)
        await sub.expect_next("pref")  # the preferred element, although it came second
        sub.request(1)
        await sub.expect_next("other")
        this.send_complete()
        that.send_complete()
        await sub.expect_complete()

    async def test_eager_complete(self, materializer: Materializer) -> None:
        src = Source.single(1).merge_preferred(Source.never(), True, eager_complete=True)
        assert await seq(src, materializer) == [1]

    async def test_all_elements_pass(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(10)).merge_preferred(
            Source.from_iterable(range(10, 20)), False
        )
        assert sorted(await seq(src, materializer)) == list(range(20))
