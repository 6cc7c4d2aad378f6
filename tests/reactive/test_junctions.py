"""Junctions (fan-out, fan-in) wired with GraphDSL, and the fluent fan operators.

Each junction: elements, completion and cancellation rules as in Akka (catalog 4.2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    Attributes,
    Balance,
    Broadcast,
    ClosedShape,
    Concat,
    Flow,
    GraphDSL,
    Interleave,
    Keep,
    Materializer,
    Merge,
    MergePreferred,
    MergePrioritized,
    MergeSorted,
    NotUsed,
    OrElse,
    Partition,
    PartitionOutOfBoundsError,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
    Unzip,
    UnzipWith,
    ZipLatest,
    ZipLatestWith,
    ZipN,
    ZipWith,
    ZipWithN,
)
from reactive.stage import UniformFanOutShape
from reactive.testkit import TestSink, TestSource


# -- helpers ---------------------------------------------------------------------------------
def fan_out(junction: Any, source: Any, n: int) -> RunnableGraph[Any]:
    """``source`` -> junction; each of its ``n`` outputs to a TestSink probe.
    Materialized value: (source value, [probes])."""
    probes = [TestSink.probe() for _ in range(n)]

    def bp(b: Any, src: Any, *sinks: Any) -> Any:
        j = b.add(junction)
        src.out >> j.in_
        for i, s in enumerate(sinks):
            j.outlets[i] >> s.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(bp, source, *probes, combine=lambda s, *ps: (s, list(ps)))
    )


def fan_in(junction: Any, sources: list[Any], sink: Any = None) -> RunnableGraph[Any]:
    """Each source to one inlet of ``junction`` (in ``inlets`` order); out to ``sink``.
    Materialized value: (source values..., sink value)."""
    sink = TestSink.probe() if sink is None else sink

    def bp(b: Any, *shapes: Any) -> Any:
        *srcs, snk = shapes
        j = b.add(junction)
        for i, s in enumerate(srcs):
            s.out >> j.inlets[i]
        j.outlets[0] >> snk.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(bp, *sources, sink))


# -- Broadcast -------------------------------------------------------------------------------
async def test_broadcast_sends_each_element_to_all_outputs(materializer: Materializer) -> None:
    (_, (a, b)) = fan_out(Broadcast(2), Source.from_iterable([1, 2, 3]), 2).run(materializer)
    a.request(10)
    b.request(10)
    await a.expect_next(1, 2, 3)
    await b.expect_next(1, 2, 3)
    await a.expect_complete()
    await b.expect_complete()


async def test_broadcast_backpressures_when_any_output_does(materializer: Materializer) -> None:
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
    materializer: Materializer,
) -> None:
    pub, (a, b) = fan_out(Broadcast(2, eager_cancel=True), TestSource.probe(), 2).run(materializer)
    b.request(1)
    a.cancel()
    await pub.expect_cancellation()
    await b.expect_complete()


async def test_broadcast_fails_all_outputs_with_upstream(materializer: Materializer) -> None:
    _, (a, b) = fan_out(Broadcast(2), Source.failed(ValueError("boom")), 2).run(materializer)
    assert str(await a.expect_error()) == "boom"
    assert str(await b.expect_error()) == "boom"


# -- Balance ---------------------------------------------------------------------------------
async def test_balance_sends_each_element_to_one_output_with_demand(
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


async def test_balance_all_elements_once(materializer: Materializer) -> None:
    seen: list[list[int]] = [[], [], []]

    def bp(b: Any, out: Any) -> Any:
        src = b.add(Source.from_iterable(range(30)))
        bal = b.add(Balance(3))
        merge = b.add(Merge(3))
        src.out >> bal.in_
        for i in range(3):
            bal.out(i) >> b.add(Flow().map(lambda x, i=i: seen[i].append(x) or x)) >> merge.in_(i)
        merge.out >> out.in_
        return ClosedShape

    got = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert sorted(got) == list(range(30))
    assert sorted(x for s in seen for x in s) == list(range(30))


async def test_balance_wait_for_all_downstreams(materializer: Materializer) -> None:
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


async def test_balance_eager_cancel(materializer: Materializer) -> None:
    pub, (a, b) = fan_out(Balance(2, eager_cancel=True), TestSource.probe(), 2).run(materializer)
    a.cancel()
    await pub.expect_cancellation()
    await b.expect_complete()


# -- Partition -------------------------------------------------------------------------------
async def test_partition_routes_by_function(materializer: Materializer) -> None:
    _, (ev, od) = fan_out(Partition(2, lambda x: x % 2), Source.from_iterable(range(7)), 2).run(
        materializer
    )
    ev.request(10)
    od.request(10)
    assert await ev.expect_next_n(4) == [0, 2, 4, 6]
    assert await od.expect_next_n(3) == [1, 3, 5]
    await ev.expect_complete()
    await od.expect_complete()


async def test_partition_out_of_range_fails_naming_the_index(materializer: Materializer) -> None:
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


def _partition_bp(b: Any) -> Any:
    p = b.add(Partition(2, lambda x: x))
    return UniformFanOutShape(p.in_, p.out(0), p.out(1))


async def test_partition_resume_drops_out_of_range(materializer: Materializer) -> None:
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


async def test_partition_drops_elements_for_cancelled_output(materializer: Materializer) -> None:
    pub, (a, b) = fan_out(Partition(2, lambda x: x % 2), TestSource.probe(), 2).run(materializer)
    b.cancel()
    a.request(3)
    await pub.expect_request()
    pub.send_next(1)  # for the cancelled output: dropped
    pub.send_next(2)
    await a.expect_next(2)
    pub.send_complete()
    await a.expect_complete()


# -- Unzip / UnzipWith -----------------------------------------------------------------------
async def test_unzip(materializer: Materializer) -> None:
    src = Source.from_iterable([(1, "a"), (2, "b")])
    _, (a, b) = fan_out(Unzip(), src, 2).run(materializer)
    a.request(5)
    await a.expect_no_message(0.02)  # needs demand on both
    b.request(5)
    await a.expect_next(1, 2)
    await b.expect_next("a", "b")
    await a.expect_complete()
    await b.expect_complete()


async def test_unzip_with_and_ports(materializer: Materializer) -> None:
    def bp(b: Any, s0: Any, s1: Any) -> Any:
        src = b.add(Source.from_iterable([1, 2, 3]))
        u = b.add(UnzipWith(lambda x: (x * 10, str(x))))
        src.out >> u.in_
        u.out0 >> s0.in_
        u.out1 >> s1.in_
        return ClosedShape

    a, c = RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.seq())).run(materializer)
    assert await a == [10, 20, 30]
    assert await c == ["1", "2", "3"]


async def test_unzip_keeps_going_when_one_output_cancels(materializer: Materializer) -> None:
    src = Source.from_iterable([(1, "a"), (2, "b"), (3, "c")])
    _, (a, b) = fan_out(Unzip(), src, 2).run(materializer)
    b.cancel()
    a.request(5)
    await a.expect_next(1, 2, 3)
    await a.expect_complete()


# -- Merge family ----------------------------------------------------------------------------
async def test_merge_preferred_prefers(materializer: Materializer) -> None:
    def bp(b: Any, pref: Any, sec: Any, out: Any) -> Any:
        m = b.add(MergePreferred(1))
        pref.out >> m.preferred
        sec.out >> m.in_(0)
        m.out >> out.in_
        return ClosedShape

    p, s, out = RunnableGraph.from_graph(
        GraphDSL.create(bp, TestSource.probe(), TestSource.probe(), TestSink.probe())
    ).run(materializer)
    await p.expect_request()
    await s.expect_request()
    s.send_next("s1")
    p.send_next("p1")
    await out.expect_no_message(0.02)
    out.request(1)
    await out.expect_next("p1")  # preferred wins although s1 arrived first
    out.request(1)
    await out.expect_next("s1")
    p.send_complete()
    s.send_complete()
    await out.expect_complete()


async def test_merge_preferred_eager_complete(materializer: Materializer) -> None:
    srcs = [Source.single(1), Source.never()]
    m = MergePreferred(1, eager_complete=True)
    graph = fan_in(m, [srcs[1], srcs[0]])  # in0 never completes; preferred completes
    _, _, out = graph.run(materializer)
    out.request(5)
    await out.expect_next(1)
    await out.expect_complete()


async def test_merge_prioritized_weights_and_completes(materializer: Materializer) -> None:
    prio = MergePrioritized([1000, 1])
    graph = fan_in(
        prio,
        [Source.repeat("a"), Source.repeat("b")],
        Flow().take(300).to_mat(Sink.seq(), Keep.right),
    )
    *_, fut = graph.run(materializer)
    got = await fut
    assert len(got) == 300 and got.count("a") > 250
    both = fan_in(
        MergePrioritized([1, 2]), [Source.from_iterable([1, 2]), Source.single(3)], Sink.seq()
    )
    *_, fut2 = both.run(materializer)
    assert sorted(await fut2) == [1, 2, 3]


def test_merge_prioritized_rejects_bad_priorities() -> None:
    with pytest.raises(ValueError, match="positive"):
        MergePrioritized([1, 0])


async def test_merge_and_concat_ports_work_in_dsl(materializer: Materializer) -> None:
    def bp(b: Any, out: Any) -> Any:
        c = b.add(Concat(2))
        m = b.add(Merge(2))
        b.add(Source.from_iterable([1, 2])) >> c.in_(0)
        b.add(Source.from_iterable([3])) >> c.in_(1)
        c.out >> m.in_(0)
        b.add(Source.empty()) >> m.in_(1)
        m.out >> out.in_
        return ClosedShape

    assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer) == [
        1,
        2,
        3,
    ]


# -- zips ------------------------------------------------------------------------------------
async def test_zip_with_two_ports_in_dsl(materializer: Materializer) -> None:
    def bp(b: Any, out: Any) -> Any:
        z = b.add(ZipWith(lambda a, c: a + c))
        b.add(Source.from_iterable([1, 2, 3])) >> z.in0
        b.add(Source.from_iterable([10, 20])) >> z.in1
        z.out >> out.in_
        return ClosedShape

    assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer) == [
        11,
        22,
    ]


async def test_zip_n_and_zip_with_n(materializer: Materializer) -> None:
    srcs = [
        Source.from_iterable([1, 2]),
        Source.from_iterable([3, 4, 5]),
        Source.from_iterable([6, 7]),
    ]
    *_, out = fan_in(ZipN(3), srcs, Sink.seq()).run(materializer)
    assert await out == [[1, 3, 6], [2, 4, 7]]
    *_, out2 = fan_in(ZipWithN(sum, 3), srcs, Sink.seq()).run(materializer)
    assert await out2 == [10, 13]


async def test_zip_latest_emits_latest_of_each(materializer: Materializer) -> None:
    a, c, out = fan_in(ZipLatest(), [TestSource.probe(), TestSource.probe()]).run(materializer)
    out.request(1)
    await a.expect_request()
    await c.expect_request()
    a.send_next(1)
    await out.expect_no_message(0.02)  # needs a value from both
    c.send_next("x")
    await out.expect_next((1, "x"))
    out.request(1)
    await a.expect_request()
    a.send_next(2)
    await out.expect_next((2, "x"))
    out.request(1)
    await c.expect_request()
    c.send_next("y")
    await out.expect_next((2, "y"))
    a.send_complete()  # eager_complete: any input completes the stage
    await out.expect_complete()
    await c.expect_cancellation()


async def test_zip_latest_with_non_eager_and_fluent(materializer: Materializer) -> None:
    a, c, out = fan_in(
        ZipLatestWith(lambda x, y: x + y, eager_complete=False),
        [TestSource.probe(), TestSource.probe()],
    ).run(materializer)
    out.request(1)
    a.send_next(1)
    c.send_next(10)
    await out.expect_next(11)
    a.send_complete()
    out.request(1)
    c.send_next(20)
    await out.expect_next(21)  # still running: a's latest value is kept
    c.send_complete()
    await out.expect_complete()
    fluent = Source.from_iterable([1, 2]).zip_latest(Source.repeat("a")).take(2)
    got = await fluent.run_with(Sink.seq(), materializer)
    assert got[0] == (1, "a") and [y for _, y in got] == ["a", "a"]


# -- Interleave / MergeSorted / OrElse -------------------------------------------------------
async def test_interleave_segments_and_rest(materializer: Materializer) -> None:
    srcs = [Source.from_iterable([1, 2, 3, 4, 5]), Source.from_iterable([10, 20, 30])]
    *_, out = fan_in(Interleave(2, 2), srcs, Sink.seq()).run(materializer)
    assert await out == [1, 2, 10, 20, 3, 4, 30, 5]
    fluent = Source.from_iterable([1, 2, 3]).interleave(Source.from_iterable([7, 8, 9, 10]), 1)
    assert await fluent.run_with(Sink.seq(), materializer) == [1, 7, 2, 8, 3, 9, 10]


async def test_interleave_eager_close(materializer: Materializer) -> None:
    srcs = [Source.from_iterable([1, 2]), Source.from_iterable([10, 20, 30, 40])]
    *_, out = fan_in(Interleave(2, 1, eager_close=True), srcs, Sink.seq()).run(materializer)
    got = await out
    assert got[:3] == [1, 10, 2] and len(got) <= 4


async def test_merge_sorted(materializer: Materializer) -> None:
    srcs = [Source.from_iterable([1, 3, 5, 7, 9, 11]), Source.from_iterable([2, 3, 4, 10])]
    *_, out = fan_in(MergeSorted(), srcs, Sink.seq()).run(materializer)
    assert await out == [1, 2, 3, 3, 4, 5, 7, 9, 10, 11]
    empty_left = Source.empty().merge_sorted(Source.from_iterable([1, 2]))
    assert await empty_left.run_with(Sink.seq(), materializer) == [1, 2]
    keyed = Source.from_iterable(["ccc"]).merge_sorted(
        Source.from_iterable(["a", "bb", "dddd"]), key=len
    )
    assert await keyed.run_with(Sink.seq(), materializer) == ["a", "bb", "ccc", "dddd"]


async def test_merge_sorted_fails_with_input(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2]).merge_sorted(Source.failed(KeyError("k")))
    with pytest.raises(KeyError):
        await src.run_with(Sink.seq(), materializer)


async def test_or_else(materializer: Materializer) -> None:
    assert await Source.empty().or_else(Source.from_iterable([1, 2])).run_with(
        Sink.seq(), materializer
    ) == [1, 2]
    assert await Source.single(0).or_else(Source.from_iterable([1, 2])).run_with(
        Sink.seq(), materializer
    ) == [0]


async def test_or_else_cancels_secondary_at_first_primary_element(
    materializer: Materializer,
) -> None:
    p, s, out = fan_in(OrElse(), [TestSource.probe(), TestSource.probe()]).run(materializer)
    out.request(2)
    await p.expect_request()
    p.send_next("p")
    await out.expect_next("p")
    await s.expect_cancellation()
    p.send_complete()
    await out.expect_complete()


# -- fluent fan-out --------------------------------------------------------------------------
async def test_also_to(materializer: Materializer) -> None:
    side, main = (
        Source.from_iterable([1, 2, 3])
        .also_to_mat(Sink.seq(), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await side == [1, 2, 3]
    assert await main == [1, 2, 3]


async def test_also_to_backpressure_from_side_slows_main(materializer: Materializer) -> None:
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


async def test_wire_tap_never_slows_the_main_line(materializer: Materializer) -> None:
    tap, out = (
        Source.from_iterable(range(5))
        .wire_tap_mat(TestSink.probe(), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await out == [0, 1, 2, 3, 4]  # tap never requested: copies dropped
    await tap.expect_complete()


async def test_wire_tap_copies_when_tap_has_demand_and_survives_tap_cancel(
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


async def test_divert_to(materializer: Materializer) -> None:
    diverted, kept = (
        Source.from_iterable(range(8))
        .divert_to_mat(Sink.seq(), lambda x: x % 3 == 0, Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await diverted == [0, 3, 6]
    assert await kept == [1, 2, 4, 5, 7]


async def test_fan_out_operators_on_flow(materializer: Materializer) -> None:
    seen: list[int] = []
    flow = (
        Flow()
        .map(lambda x: x * 2)
        .also_to(Sink.foreach(seen.append))
        .divert_to(Sink.ignore(), lambda x: x > 4)
    )
    assert await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer) == [
        2,
        4,
    ]
    assert seen == [2, 4, 6]


# -- combine ---------------------------------------------------------------------------------
async def test_source_combine(materializer: Materializer) -> None:
    merged = Source.combine(Source.single(1), Source.single(2), Source.single(3))
    assert sorted(await merged.run_with(Sink.seq(), materializer)) == [1, 2, 3]
    concat = Source.combine(Source.from_iterable([1, 2]), Source.single(3), strategy=Concat)
    assert await concat.run_with(Sink.seq(), materializer) == [1, 2, 3]
    assert concat.to(Sink.ignore()).run(materializer) is NotUsed


async def test_sink_combine(materializer: Materializer) -> None:
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
