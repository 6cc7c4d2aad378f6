"""Acceptance cases mirroring Akka's / Pekko's graph specs (akka-stream-tests).

GraphBroadcastSpec, GraphBalanceSpec, GraphPartitionSpec, GraphMergeSpec,
GraphMergePreferredSpec, GraphZipSpec, GraphZipWithSpec, GraphZipNSpec, GraphUnzipSpec,
GraphUnzipWithSpec, GraphConcatSpec, FlowInterleaveSpec, GraphMergeSortedSpec,
FlowZipLatestSpec, FlowOrElseSpec, FlowAlsoToSpec, FlowWireTapSpec, FlowDivertToSpec,
GraphDSLCompileSpec, the "Graph cycles, liveness and deadlocks" examples, and the
``combine`` / ``zipN`` cases of SourceSpec and SinkSpec; all through the public API only.
Cases already covered by test_graph_dsl, test_junctions, ops/test_fan_in and
test_akka_spec_ops are not repeated.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    Attributes,
    Balance,
    Broadcast,
    ClosedShape,
    Concat,
    Done,
    Flow,
    GraphDSL,
    Interleave,
    Keep,
    KillSwitches,
    Materializer,
    Merge,
    MergePreferred,
    MergeSorted,
    NotUsed,
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
    ZipLatest,
    ZipN,
    ZipWith,
)
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """The TestException of BaseTwoStreamsSetup."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def fan_out(junction: Any, source: Any, sinks: list[Any]) -> RunnableGraph[Any]:
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


def fan_in(junction: Any, sources: list[Any], sink: Any) -> RunnableGraph[Any]:
    """Sources into the inlets of ``junction`` (in order), its outlet to ``sink``; value:
    (source values..., sink value)."""

    def bp(b: Any, *shapes: Any) -> Any:
        *srcs, snk = shapes
        j = b.add(junction)
        for i, s in enumerate(srcs):
            s.out >> j.inlets[i]
        j.outlets[0] >> snk.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(bp, *sources, sink))


def buffered(sink: Any, n: int = 16) -> Sink[Any, Any]:
    """``Flow.buffer(n, backpressure) ~> sink`` keeping the sink's value."""
    return Flow().buffer(n, OverflowStrategy.backpressure).to_mat(sink, Keep.right)


# -- GraphBroadcastSpec ----------------------------------------------------------------------
async def test_broadcast_to_other_subscriber_with_buffers(materializer: Materializer) -> None:
    _, (c1, c2) = fan_out(
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


async def test_broadcast_one_way_and_n_way(materializer: Materializer) -> None:
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
    materializer: Materializer,
) -> None:
    pub, (c1, c2) = fan_out(
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


async def test_broadcast_pass_along_early_cancellation(materializer: Materializer) -> None:
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


async def test_also_to_broadcasts_and_cancels_with_either_branch(
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


async def test_also_to_forwards_to_both_and_completes_both(materializer: Materializer) -> None:
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


# -- GraphBalanceSpec ------------------------------------------------------------------------
def balance_probes(junction: Any, source: Any, n: int, materializer: Materializer) -> Any:
    return fan_out(junction, source, [TestSink.probe() for _ in range(n)]).run(materializer)


async def test_balance_between_subscribers_which_signal_demand(materializer: Materializer) -> None:
    _, (c1, c2) = balance_probes(Balance(2), Source.from_iterable([1, 2, 3]), 2, materializer)
    c1.request(1)
    await c1.expect_next(1)
    await c1.expect_no_message(0.05)
    c2.request(2)
    await c2.expect_next(2, 3)
    await c1.expect_complete()
    await c2.expect_complete()


async def test_balance_waits_for_demand_from_all_downstreams(materializer: Materializer) -> None:
    _, (s1, s2) = balance_probes(
        Balance(2, wait_for_all_downstreams=True), Source.from_iterable([1, 2, 3]), 2, materializer
    )
    s1.request(1)
    await s1.expect_no_message(0.05)
    s2.request(2)
    await s1.expect_next(1)
    await s2.expect_next(2, 3)
    await s1.expect_complete()
    await s2.expect_complete()


async def test_balance_waits_for_all_non_cancelled_downstreams(materializer: Materializer) -> None:
    _, (s1, s2, s3) = balance_probes(
        Balance(3, wait_for_all_downstreams=True), Source.from_iterable([1, 2, 3]), 3, materializer
    )
    s1.request(1)
    s2.request(2)
    await s1.expect_no_message(0.05)
    s3.cancel()
    await s1.expect_next(1)
    await s2.expect_next(2, 3)
    await s1.expect_complete()
    await s2.expect_complete()


async def test_balance_one_way_and_five_way(materializer: Materializer) -> None:
    def one_way(b: Any) -> Any:
        bal = b.add(Balance(1))
        b.add(Source.from_iterable([1, 2, 3])) >> bal.in_
        return SourceShape(bal.out(0))

    assert await Source.from_graph(GraphDSL.create(one_way)).run_with(Sink.seq(), materializer) == [
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


async def test_balance_between_all_three_outputs(materializer: Materializer) -> None:
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


async def test_balance_fairly_between_three_outputs(materializer: Materializer) -> None:
    _, (p1, p2, p3) = balance_probes(Balance(3), Source.from_iterable(range(1, 8)), 3, materializer)
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


async def test_balance_produces_to_the_other_when_one_cancels(materializer: Materializer) -> None:
    for cancelled in (0, 1):
        _, probes = balance_probes(Balance(2), Source.from_iterable([1, 2, 3]), 2, materializer)
        probes[cancelled].cancel()
        other = probes[1 - cancelled]
        other.request(3)
        await other.expect_next(1, 2, 3)
        await other.expect_complete()


async def test_balance_cancels_upstream_when_all_or_any_downstream_cancels(
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


async def test_balance_does_not_push_twice_bug_20943(materializer: Materializer) -> None:
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


# -- GraphPartitionSpec / divertTo -----------------------------------------------------------
def by_size(s: str) -> int:
    return 0 if len(s) > 4 else 1


async def test_partition_to_three_sinks(materializer: Materializer) -> None:
    def part(x: int) -> int:
        return 0 if x > 3 else 1 if x < 3 else 2

    _, seqs = fan_out(
        Partition(3, part), Source.from_iterable([1, 2, 3, 4, 5]), [Sink.seq() for _ in range(3)]
    ).run(materializer)
    assert [set(await s) for s in seqs] == [{4, 5}, {1, 2}, {3}]


async def test_partition_completes_after_upstream_completes(materializer: Materializer) -> None:
    _, (c1, c2) = fan_out(
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
    materializer: Materializer, elems: list[int]
) -> None:
    _, (c1, c2) = fan_out(
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
    materializer: Materializer, eager: bool
) -> None:
    pub, (c1, c2) = fan_out(
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
    materializer: Materializer,
) -> None:
    ab: Callable[[str], int] = lambda s: 0 if s in ("a", "b") else 1  # noqa: E731
    _, (c1, c2) = fan_out(
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

    _, (c1, c2) = fan_out(
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


async def test_partition_works_with_merge(materializer: Materializer) -> None:
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


async def test_partition_out_of_bounds_fails_the_stage(materializer: Materializer) -> None:
    _, (c1, _ignored) = fan_out(
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
async def test_partition_supervision(materializer: Materializer, directive: Any, bad: str) -> None:
    def part(x: int) -> int:
        if x == 3:
            if bad == "raise":
                raise Boom("resume")
            return -1
        return 0 if x > 3 else 1

    graph = fan_out(
        Partition(3, part), Source.from_iterable([1, 2, 3, 4, 5]), [Sink.seq() for _ in range(3)]
    ).with_attributes(Attributes.supervision_strategy(lambda exc: directive))
    _, seqs = graph.run(materializer)
    assert [set(await s) for s in seqs] == [{4, 5}, {1, 2}, set()]


async def test_divert_to_sends_matching_elements_to_the_sink(materializer: Materializer) -> None:
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


async def test_divert_to_cancels_when_any_downstream_cancels(materializer: Materializer) -> None:
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


# -- TwoStreamsSetup.commonTests for the two-input junctions ---------------------------------
def two_input(junction: Callable[[], Any]) -> Callable[[Any, Any], Any]:
    def ports(b: Any) -> tuple[Any, Any, Any]:
        j = b.add(junction())
        if hasattr(j, "preferred"):
            return j.preferred, j.in_(0), j.out
        return j.inlets[0], j.inlets[1], j.outlets[0]

    def setup(left: Any, right: Any) -> Any:
        def bp(b: Any, lsrc: Any, rsrc: Any, snk: Any) -> Any:
            lin, rin, out = ports(b)
            lsrc.out >> lin
            rsrc.out >> rin
            out >> snk.in_
            return ClosedShape

        graph = GraphDSL.create(bp, left, right, TestSink.probe(), combine=lambda a, b_, c: c)
        return RunnableGraph.from_graph(graph)

    return setup


JUNCTIONS: dict[str, Callable[[], Any]] = {
    "merge": lambda: Merge(2),
    "merge_preferred": lambda: MergePreferred(1),
    "zip": Zip,
    "zip_with": lambda: ZipWith(lambda a, b: a + b),
    "concat": Concat,
    "interleave": lambda: Interleave(2, 2),
    "merge_sorted": MergeSorted,
    "zip_n": lambda: ZipN(2),
}


def soon_to_complete() -> Source[Any, Any]:
    """TestPublisher.lazyEmpty: completes a moment after start, demand or not."""
    return Source.never().take_within(0.01)


def soon_to_fail() -> Source[Any, Any]:
    """TestPublisher.lazyError: fails a moment after start, demand or not."""
    return Source.never().completion_timeout(0.01).map_error(lambda e: Boom("test"))


@pytest.mark.parametrize("name", list(JUNCTIONS))
async def test_two_streams_common_cases(materializer: Materializer, name: str) -> None:
    setup = two_input(JUNCTIONS[name])
    completed = Source.empty
    failed = lambda: Source.failed(Boom("test"))  # noqa: E731
    for left, right in [
        (completed, completed),
        (soon_to_complete, soon_to_complete),
        (completed, soon_to_complete),
    ]:
        sub = setup(left(), right()).run(materializer)
        await sub.expect_complete()
    for left, right in [
        (failed, failed),
        (soon_to_fail, soon_to_fail),
        (soon_to_fail, failed),
        (failed, soon_to_fail),
    ]:
        sub = setup(left(), right()).run(materializer)
        assert isinstance(await sub.expect_error(), Boom)


@pytest.mark.parametrize("name", ["merge", "merge_preferred", "concat", "interleave"])
async def test_one_completed_and_one_nonempty_publisher(
    materializer: Materializer, name: str
) -> None:
    setup = two_input(JUNCTIONS[name])
    for empty in (Source.empty, soon_to_complete):
        for first_empty in (True, False):
            pair = (empty(), Source.from_iterable(range(1, 5)))
            sub = setup(*(pair if first_empty else pair[::-1])).run(materializer)
            sub.request(5)
            await sub.expect_next(1, 2, 3, 4)
            await sub.expect_complete()


@pytest.mark.parametrize("name", ["zip", "zip_with", "zip_n"])
async def test_zip_with_one_completed_or_failed_and_one_nonempty(
    materializer: Materializer, name: str
) -> None:
    setup = two_input(JUNCTIONS[name])
    for first in (True, False):
        for other in (Source.empty, soon_to_complete):
            pair = (other(), Source.from_iterable(range(1, 5)))
            sub = setup(*(pair if first else pair[::-1])).run(materializer)
            await sub.expect_complete()
        for other in (lambda: Source.failed(Boom("test")), soon_to_fail):
            pair = (other(), Source.from_iterable(range(1, 5)))
            sub = setup(*(pair if first else pair[::-1])).run(materializer)
            assert isinstance(await sub.expect_error(), Boom)


# -- GraphMergeSpec --------------------------------------------------------------------------
async def test_merge_happy_case_keeps_per_input_order(materializer: Materializer) -> None:
    def bp(b: Any, probe: Any) -> Any:
        m1 = b.add(Merge(2))
        m2 = b.add(Merge(2))
        b.add(Source.from_iterable(range(4))) >> m1.in_(0)
        m1.out >> b.add(Flow().map(lambda x: x * 2)) >> m2.in_(0)
        m2.out >> b.add(Flow().map(lambda x: x // 2).map(lambda x: x + 1)) >> probe.in_
        b.add(Source.from_iterable(range(4, 10))) >> m1.in_(1)
        b.add(Source.empty()) >> m2.in_(1)
        return ClosedShape

    probe = RunnableGraph.from_graph(GraphDSL.create(bp, TestSink.probe())).run(materializer)
    got = [await probe.request_next() for _ in range(10)]
    assert [x for x in got if x <= 4] == [1, 2, 3, 4]
    assert [x for x in got if x >= 5] == [5, 6, 7, 8, 9, 10]
    await probe.expect_complete()


async def test_merge_one_way_and_n_way(materializer: Materializer) -> None:
    def one_way(b: Any) -> Any:
        merge = b.add(Merge(1))
        b.add(Source.from_iterable([1, 2, 3])) >> merge.in_(0)
        return SourceShape(merge.out)

    assert await Source.from_graph(GraphDSL.create(one_way)).run_with(Sink.seq(), materializer) == [
        1,
        2,
        3,
    ]
    sources = [Source.single(i) for i in range(1, 6)] + [Source.empty()]
    *_, probe = fan_in(Merge(6), sources, TestSink.probe()).run(materializer)
    got = {await probe.request_next() for _ in range(5)}
    assert got == {1, 2, 3, 4, 5}
    await probe.expect_complete()


# -- GraphMergePreferredSpec -----------------------------------------------------------------
async def test_merge_preferred_prefers_the_selected_input(materializer: Materializer) -> None:
    n = 2000

    def bp(b: Any, sink: Any) -> Any:
        merge = b.add(MergePreferred(3))
        b.add(Source.repeat(1).take(n)) >> merge.preferred
        merge.out >> b.add(Flow().grouped(n * 2)) >> sink.in_
        for i in range(3):
            b.add(Source.repeat(2).take(n)) >> merge.in_(i)
        return ClosedShape

    first = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.head())).run(materializer)
    assert first.count(1) == n


async def test_merge_preferred_passes_all_elements_keeping_order(
    materializer: Materializer,
) -> None:
    def bp(b: Any, sink: Any) -> Any:
        merge = b.add(MergePreferred(3))
        b.add(Source.from_iterable(range(1, 101))) >> merge.preferred
        merge.out >> b.add(Flow().grouped(500)) >> sink.in_
        for i in range(3):
            lo = 101 + 100 * i
            b.add(Source.from_iterable(range(lo, lo + 100))) >> merge.in_(i)
        return ClosedShape

    got = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.head())).run(materializer)
    assert sorted(got) == list(range(1, 401))
    for lo in (1, 101, 201, 301):
        assert [x for x in got if lo <= x < lo + 100] == list(range(lo, lo + 100))


def test_merge_preferred_disallows_multiple_preferred_inputs_or_outputs() -> None:
    def two_preferred(b: Any) -> Any:
        merge = b.add(MergePreferred(1))
        b.add(Source.from_iterable(range(4))) >> merge.preferred
        b.add(Source.from_iterable(range(4))) >> merge.preferred
        return ClosedShape

    with pytest.raises(ValueError, match=r"MergePreferred\.preferred.* already connected"):
        GraphDSL.create(two_preferred)

    def two_outputs(b: Any) -> Any:
        merge = b.add(MergePreferred(1))
        b.add(Source.from_iterable(range(4))) >> merge.preferred
        b.add(Source.from_iterable(range(4))) >> merge.in_(0)
        merge.out >> b.add(Sink.head())
        merge.out >> b.add(Sink.head())
        return ClosedShape

    with pytest.raises(ValueError, match=r"MergePreferred\.out.* already connected"):
        GraphDSL.create(two_outputs)


# -- GraphZipSpec / GraphZipWithSpec / GraphZipNSpec / SourceSpec zipN ----------------------
async def test_zip_in_dsl_completes_when_one_side_completed_before_request(
    materializer: Materializer,
) -> None:
    up1, up2, down = fan_in(Zip(), [TestSource.probe(), TestSource.probe()], TestSink.probe()).run(
        materializer
    )
    up1.send_next(1).send_complete()
    await down.expect_no_message(0.05)
    up2.send_next("A").send_complete()
    await down.request_next((1, "A"))
    await down.expect_complete()


async def test_zip_with_three_inputs(materializer: Materializer) -> None:
    def bp(b: Any, probe: Any) -> Any:
        zip3 = b.add(ZipWith(lambda name, surname, n: f"{name} {surname} {n}"))
        b.add(Source.single("Caplin")) >> zip3.in0
        b.add(Source.single("Capybara")) >> zip3.in1
        b.add(Source.single(3)) >> zip3.in2
        zip3.out >> probe.in_
        return ClosedShape

    probe = RunnableGraph.from_graph(GraphDSL.create(bp, TestSink.probe())).run(materializer)
    probe.request(5)
    await probe.expect_next("Caplin Capybara 3")
    await probe.expect_complete()


async def test_zip_with_sad_case_fails(materializer: Materializer) -> None:
    *_, probe = fan_in(
        ZipWith(lambda a, b: a // b),
        [Source.from_iterable(range(-2, 3)), Source.from_iterable(range(-2, 3))],
        TestSink.probe(),
    ).run(materializer)
    probe.request(5)
    await probe.expect_next(1, 1)
    assert isinstance(await probe.expect_error(), ZeroDivisionError)


async def test_zip_n_junction_and_source_zip_n(materializer: Materializer) -> None:
    *_, probe = fan_in(
        ZipN(3),
        [
            Source.from_iterable([1, 2, 3]),
            Source.from_iterable([4, 5, 6]),
            Source.from_iterable([7, 8]),
        ],
        TestSink.probe(),
    ).run(materializer)
    probe.request(3)
    await probe.expect_next([1, 4, 7], [2, 5, 8])
    await probe.expect_complete()
    sources = [Source.from_iterable(range(k, k + 3)) for k in (1, 4, 7)]
    assert await Source.zip_n(sources).run_with(Sink.seq(), materializer) == [
        [1, 4, 7],
        [2, 5, 8],
        [3, 6, 9],
    ]
    assert await Source.zip_n([]).run_with(Sink.seq(), materializer) == []


# -- GraphUnzipSpec --------------------------------------------------------------------------
PAIRS = [(1, "a"), (2, "b"), (3, "c")]


async def test_unzip_to_two_subscribers_with_buffers(materializer: Materializer) -> None:
    _, (c1, c2) = fan_out(
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
    materializer: Materializer, order: str
) -> None:
    _, (c1, c2) = fan_out(
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


async def test_unzip_cancels_upstream_when_downstreams_cancel(materializer: Materializer) -> None:
    pub, (c1, c2) = fan_out(Unzip(), TestSource.probe(), [TestSink.probe(), TestSink.probe()]).run(
        materializer
    )
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


async def test_unzip_works_with_zip(materializer: Materializer) -> None:
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


# -- GraphUnzipWithSpec ----------------------------------------------------------------------
def doubled(x: int) -> tuple[int, str]:
    return x + x, f"{x} + {x}"


async def test_unzip_with_on_completed_and_failed_publishers(materializer: Materializer) -> None:
    for src in (Source.empty(), soon_to_complete()):
        _, (left, right) = fan_out(
            UnzipWith(doubled), src, [TestSink.probe(), TestSink.probe()]
        ).run(materializer)
        await left.expect_complete()
        await right.expect_complete()
    for src in (Source.failed(Boom("test")), soon_to_fail()):
        _, (left, right) = fan_out(
            UnzipWith(doubled), src, [TestSink.probe(), TestSink.probe()]
        ).run(materializer)
        assert isinstance(await left.expect_error(), Boom)
        assert isinstance(await right.expect_error(), Boom)


async def test_unzip_with_happy_case(materializer: Materializer) -> None:
    _, (left, right) = fan_out(
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


async def test_unzip_with_sad_case(materializer: Materializer) -> None:
    _, (left, right) = fan_out(
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


async def test_unzip_with_three_outputs(materializer: Materializer) -> None:
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


# -- GraphConcatSpec -------------------------------------------------------------------------
async def test_concat_junctions_chained(materializer: Materializer) -> None:
    def bp(b: Any, probe: Any) -> Any:
        c1 = b.add(Concat())
        c2 = b.add(Concat())
        b.add(Source.empty()) >> c1.in_(0)
        b.add(Source.from_iterable(range(1, 5))) >> c1.in_(1)
        c1.out >> c2.in_(0)
        b.add(Source.from_iterable(range(5, 11))) >> c2.in_(1)
        c2.out >> probe.in_
        return ClosedShape

    probe = RunnableGraph.from_graph(GraphDSL.create(bp, TestSink.probe())).run(materializer)
    for i in range(1, 11):
        await probe.request_next(i)
    await probe.expect_complete()


async def test_concat_delayed_failed_first_and_nonempty_second(
    materializer: Materializer,
) -> None:
    setup = two_input(JUNCTIONS["concat"])
    sub = setup(soon_to_fail(), Source.from_iterable(range(1, 5))).run(materializer)
    assert isinstance(await sub.expect_error(), Boom)
    sub = setup(Source.from_iterable(range(1, 5)), soon_to_fail()).run(materializer)
    sub.request(5)
    with pytest.raises(Boom):
        await sub.to_list()


# -- FlowInterleaveSpec ----------------------------------------------------------------------
async def test_interleave_happy_case_and_segment_sizes(materializer: Materializer) -> None:
    src = (
        Source.from_iterable(range(4))
        .interleave(Source.from_iterable(range(4, 7)), 2)
        .interleave(Source.from_iterable(range(7, 12)), 3)
    )
    assert await src.run_with(Sink.seq(), materializer) == [0, 1, 4, 7, 8, 9, 5, 2, 3, 10, 11, 6]
    cases: list[tuple[range, range, int, list[int]]] = [
        (range(3), range(3, 6), 2, [0, 1, 3, 4, 2, 5]),
        (range(3), range(3, 6), 1, [0, 3, 1, 4, 2, 5]),
        (range(3), range(3, 16), 10, list(range(16))),
        (range(1, 21), range(21, 26), 10, [*range(1, 11), *range(21, 26), *range(11, 21)]),
    ]
    for a, b, seg, expected in cases:
        out = Source.from_iterable(a).interleave(Source.from_iterable(b), seg)
        assert await out.run_with(Sink.seq(), materializer) == expected


def test_interleave_rejects_segment_size_zero() -> None:
    with pytest.raises(ValueError):
        Source.from_iterable(range(3)).interleave(Source.from_iterable(range(3, 6)), 0)


def interleave_probes(materializer: Materializer) -> tuple[Any, Any, Any]:
    """Two publisher probes into ``Interleave(2, 2, eager_close=True)``, out to a probe."""

    def bp(b: Any, a: Any, c: Any, snk: Any) -> Any:
        il = b.add(Interleave(2, 2, eager_close=True))
        a.out >> il.in_(0)
        c.out >> il.in_(1)
        il.out >> snk.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(bp, TestSource.probe(), TestSource.probe(), TestSink.probe())
    ).run(materializer)


async def _interleave_start(s1: Any, s2: Any, probe: Any) -> None:
    probe.request(10)
    await s1.expect_request()  # it eagerly pulls all inputs
    await s2.expect_request()
    s1.send_next(0)
    s2.send_next(10)
    await s1.expect_request()
    s1.send_next(1)
    await s2.expect_request()


async def test_interleave_eager_close_first_stream_closed(materializer: Materializer) -> None:
    s1, s2, probe = interleave_probes(materializer)
    await _interleave_start(s1, s2, probe)
    s2.send_next(11)
    await s1.expect_request()
    s1.send_next(2).send_complete()
    await probe.expect_next(0, 1, 10, 11, 2)
    await probe.expect_complete()
    await s2.expect_cancellation()


async def test_interleave_eager_close_non_current_upstream_closed(
    materializer: Materializer,
) -> None:
    s1, s2, probe = interleave_probes(materializer)
    await _interleave_start(s1, s2, probe)
    s1.send_complete()
    await probe.expect_next(0, 1, 10)
    await probe.expect_complete()
    await s2.expect_cancellation()


async def test_interleave_eager_close_other_stream_closed(materializer: Materializer) -> None:
    s1, s2, probe = interleave_probes(materializer)
    await _interleave_start(s1, s2, probe)
    s2.send_next(11).send_complete()
    await probe.expect_next(0, 1, 10, 11)
    await probe.expect_complete()
    await s1.expect_cancellation()


async def test_interleave_immediately_failed_first(materializer: Materializer) -> None:
    sub = (
        Source.failed(Boom("test"))
        .interleave(Source.from_iterable(range(1, 5)), 2)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(4)
    assert isinstance(await sub.expect_error(), Boom)


async def test_interleave_passes_along_early_cancellation(materializer: Materializer) -> None:
    def bp(b: Any, a: Any, c: Any, snk: Any) -> Any:
        il = b.add(Interleave(2, 2))
        a.out >> il.in_(0)
        c.out >> il.in_(1)
        il.out >> snk.in_
        return ClosedShape

    s1, s2, probe = RunnableGraph.from_graph(
        GraphDSL.create(bp, TestSource.probe(), TestSource.probe(), TestSink.probe())
    ).run(materializer)
    probe.cancel()
    await s1.expect_cancellation()
    await s2.expect_cancellation()


# -- GraphMergeSortedSpec --------------------------------------------------------------------
async def test_merge_sorted_random_inputs(materializer: Materializer) -> None:
    rnd = random.Random(42)
    for _ in range(20):
        a = sorted(rnd.randrange(100) for _ in range(rnd.randrange(20)))
        b = sorted(rnd.randrange(100) for _ in range(rnd.randrange(20)))
        out = await (
            Source.from_iterable(a)
            .merge_sorted(Source.from_iterable(b))
            .run_with(Sink.seq(), materializer)
        )
        assert out == sorted(a + b)
    *_, probe = fan_in(
        MergeSorted(),
        [Source.from_iterable([1, 3, 5]), Source.from_iterable([2, 4])],
        TestSink.probe(),
    ).run(materializer)
    probe.request(10)
    await probe.expect_next(1, 2, 3, 4, 5)
    await probe.expect_complete()


# -- zipLatest -------------------------------------------------------------------------------
async def test_zip_latest_spec_cases(materializer: Materializer) -> None:
    left, right, probe = fan_in(
        ZipLatest(), [TestSource.probe(), TestSource.probe()], TestSink.probe()
    ).run(materializer)
    probe.request(1)
    left.send_next(1)
    await probe.expect_no_message(0.05)  # nothing until both sides delivered
    right.send_next("a")
    await probe.expect_next((1, "a"))
    probe.request(1)
    left.send_next(2)
    await probe.expect_next((2, "a"))
    probe.request(1)
    right.send_next("b")
    await probe.expect_next((2, "b"))
    right.send_complete()  # eager completion (ZipLatest default)
    await probe.expect_complete()
    await left.expect_cancellation()


# -- FlowOrElseSpec --------------------------------------------------------------------------
def or_else_probes(materializer: Materializer) -> tuple[Any, Any, Any]:
    """``primary.or_else(secondary)`` with publisher probes on both, out to a probe."""
    box: list[Any] = []
    secondary = TestSource.probe().map_materialized_value(lambda m: box.append(m) or m)
    in1, out = (
        TestSource.probe().or_else(secondary).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    return in1, box[0], out


async def test_or_else_passes_the_primary_and_cancels_the_secondary(
    materializer: Materializer,
) -> None:
    in1, in2, out = or_else_probes(materializer)
    out.request(1)
    await in1.expect_request()
    in1.send_next("a")
    await out.expect_next("a")
    in1.send_complete()
    await in2.expect_cancellation()
    await out.expect_complete()


async def test_or_else_passes_all_requested_from_secondary(materializer: Materializer) -> None:
    in1, in2, out = or_else_probes(materializer)
    out.request(5)
    in1.send_complete()
    await in2.expect_request()
    for x in "abc":
        in2.send_next(x)
        await out.expect_next(x)
    in2.send_complete()
    await out.expect_complete()


async def test_or_else_completion_orders(materializer: Materializer) -> None:
    in1, in2, out = or_else_probes(materializer)
    in1.send_complete()
    in2.send_complete()
    await out.expect_complete()

    in1, in2, out = or_else_probes(materializer)
    in2.send_complete()
    await out.expect_no_message(0.05)  # not complete yet: the primary may still emit
    in1.send_complete()
    await out.expect_complete()

    in1, in2, out = or_else_probes(materializer)
    out.request(1)
    in2.send_complete()
    await in1.expect_request()
    in1.send_next("a")
    await out.expect_next("a")
    in1.send_complete()
    await out.expect_complete()


async def test_or_else_fails_when_either_input_fails(materializer: Materializer) -> None:
    in1, in2, out = or_else_probes(materializer)
    in1.send_error(Boom("in1 failed"))
    await in2.expect_cancellation()
    assert isinstance(await out.expect_error(), Boom)

    in1, in2, out = or_else_probes(materializer)
    in2.send_error(Boom("in2 failed"))
    await in1.expect_cancellation()
    assert isinstance(await out.expect_error(), Boom)


async def test_or_else_examples(materializer: Materializer) -> None:
    first = Source.single("First source")
    second = Source.single("Second source")
    assert await first.or_else(second).run_with(Sink.seq(), materializer) == ["First source"]
    assert await Source.empty().or_else(second).run_with(Sink.seq(), materializer) == [
        "Second source"
    ]


# -- FlowWireTapSpec -------------------------------------------------------------------------
async def test_wire_tap_with_a_procedure(materializer: Materializer) -> None:
    seen: list[int] = []
    done = (
        Source.from_iterable(range(1, 101))
        .wire_tap(seen.append)
        .run_with(Sink.ignore(), materializer)
    )
    assert await done is Done
    assert seen == list(range(1, 101))
    assert await Source.empty().wire_tap(seen.append).run_with(Sink.ignore(), materializer) is Done

    def explode(_: Any) -> None:
        raise Boom("Boom!")

    done = Source.single(1).wire_tap(explode).run_with(Sink.ignore(), materializer)
    assert await done is Done  # a failing tap does not fail the main line


async def test_wire_tap_yields_the_first_error(materializer: Materializer) -> None:
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


# -- SourceSpec / SinkSpec combine -----------------------------------------------------------
async def test_source_combine_many_inputs(materializer: Materializer) -> None:
    sources = [Source.single(i) for i in (0, 1, 2)]
    out = await Source.combine(*sources).run_with(Sink.seq(), materializer)
    assert sorted(out) == [0, 1, 2]
    out = await Source.combine(*sources, strategy=Concat).run_with(Sink.seq(), materializer)
    assert out == [0, 1, 2]
    out = await Source.combine(
        Source.from_iterable([1, 2, 3]),
        Source.from_iterable([10, 20, 30]),
        strategy=lambda n: Interleave(n, 2),
    ).run_with(Sink.seq(), materializer)
    assert out == [1, 2, 10, 20, 3, 30]
    assert Source.combine(*sources).to(Sink.ignore()).run(materializer) is NotUsed


async def test_sink_combine_broadcast_and_balance(materializer: Materializer) -> None:
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
    Source.from_iterable([0, 1, 2]).run_with(Sink.combine(*sinks, strategy=Balance), materializer)
    await settle()
    p1, p2 = captured
    p1.request(1)
    await p1.expect_next(0)
    p2.request(2)
    await p2.expect_next(1, 2)
    await p1.expect_complete()
    await p2.expect_complete()


# -- GraphDSLCompileSpec ---------------------------------------------------------------------
def ident(name: str) -> Flow[Any, Any, Any]:
    return Flow().map(lambda x: x).named(name)


async def test_dsl_chains_through_junctions(materializer: Materializer) -> None:
    """``in1 ~> f1 ~> bcast ~> f2 ~> merge ~> f3 ~> out1; bcast ~> f4 ~> merge``."""

    def bp(b: Any, out: Any) -> Any:
        bcast = b.add(Broadcast(2))
        merge = b.add(Merge(2))
        b.add(Source.from_iterable("abc")) >> ident("f1") >> bcast >> ident("f2") >> merge
        merge >> ident("f3") >> out
        bcast >> ident("f4") >> merge
        return ClosedShape

    out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert sorted(out) == sorted("aabbcc")


async def test_dsl_make_it_optional_to_specify_flows(materializer: Materializer) -> None:
    def bp(b: Any, out1: Any, out2: Any) -> Any:
        merge = b.add(Merge(2))
        bcast = b.add(Broadcast(2))
        b.add(Source.from_iterable("abc")) >> merge >> bcast >> out1
        b.add(Source.from_iterable("def")) >> merge
        bcast >> out2
        return ClosedShape

    a, c = await asyncio.gather(
        *RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.seq())).run(materializer)
    )
    assert sorted(a) == sorted(c) == list("abcdef")


async def test_dsl_wikipedia_topological_sorting(materializer: Materializer) -> None:
    def bp(b: Any, out2: Any, out9: Any, out10: Any) -> Any:
        b3 = b.add(Broadcast(2))
        b7 = b.add(Broadcast(2))
        b11 = b.add(Broadcast(3))
        m8 = b.add(Merge(2))
        m9 = b.add(Merge(2))
        m10 = b.add(Merge(2))
        m11 = b.add(Merge(2))
        in3 = b.add(Source.single("b"))
        in5 = b.add(Source.single("b"))
        in7 = b.add(Source.single("a"))
        in7 >> ident("a") >> b7 >> ident("b") >> m11 >> ident("c") >> b11 >> ident("d") >> out2
        b11 >> ident("e") >> m9 >> ident("f") >> out9
        b7 >> ident("g") >> m8 >> ident("h") >> m9
        b11 >> ident("i") >> m10 >> ident("j") >> out10
        in5 >> ident("k") >> m11
        in3 >> ident("l") >> b3 >> ident("m") >> m8
        b3 >> ident("n") >> m10
        return ClosedShape

    outs = RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.seq(), Sink.seq())).run(
        materializer
    )
    r2, r9, r10 = await asyncio.gather(*outs)
    assert sorted(r2) == ["a", "b"]
    assert sorted(r9) == ["a", "a", "b", "b"]
    assert sorted(r10) == ["a", "b", "b"]


def test_dsl_complex_topology_with_a_cycle_builds() -> None:
    def bp(b: Any) -> Any:
        merge = b.add(Merge(2))
        bcast1 = b.add(Broadcast(2))
        bcast2 = b.add(Broadcast(2))
        feedback = Flow().buffer(10, OverflowStrategy.drop_buffer)
        b.add(Source.from_iterable("abc")) >> ident("f1") >> merge >> ident("f2") >> bcast1
        bcast1 >> ident("f3") >> b.add(Sink.ignore())
        bcast1 >> feedback >> bcast2 >> ident("f5") >> merge
        bcast2 >> ident("f6") >> b.add(Sink.head())
        return ClosedShape

    assert isinstance(RunnableGraph.from_graph(GraphDSL.create(bp)), RunnableGraph)


async def test_dsl_blueprints_connect_directly_to_ports(materializer: Materializer) -> None:
    """``Source(...) ~> merge.in(0)`` and ``(in1.via(f1)) ~> ...`` without ``b.add``."""

    def bp(b: Any, out: Any) -> Any:
        merge = b.add(Merge(2))
        Source.from_iterable([1, 2]) >> merge.in_(0)
        Source.from_iterable([3]).via(Flow().map(lambda x: x * 10)) >> merge.in_(1)
        merge.out >> out
        return ClosedShape

    out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert sorted(out) == [1, 2, 30]


def test_dsl_errors_name_unconnected_and_returned_connected_ports() -> None:
    def unconnected(b: Any) -> Any:
        b.add(Source.empty())
        op = b.add(Flow().map(lambda x: x + 1))
        sink = b.add(Sink.foreach(print))
        op >> sink.in_
        return ClosedShape

    with pytest.raises(ValueError) as info:
        GraphDSL.create(unconnected)
    msg = str(info.value)
    assert "Map.in" in msg and "not connected" in msg
    assert ".out" in msg

    def returned_connected(b: Any) -> Any:
        s = b.add(Source.empty())
        op = b.add(Flow().map(lambda x: x + 1))
        sink = b.add(Sink.foreach(print))
        s >> op >> sink.in_
        return op

    with pytest.raises(ValueError, match=r"Map\.in"):
        GraphDSL.create(returned_connected)


async def test_dsl_imported_mat_values_tuple_and_combine(materializer: Materializer) -> None:
    def bp(b: Any, s1: Any, s2: Any) -> Any:
        bcast = b.add(Broadcast(2))
        b.add(Source.from_iterable([1, 2, 3])) >> bcast.in_
        bcast.out(0) >> s1.in_
        bcast.out(1) >> s2.in_
        return ClosedShape

    f1, f2 = RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.last())).run(
        materializer
    )
    assert (await f1, await f2) == ([1, 2, 3], 3)
    combined = RunnableGraph.from_graph(
        GraphDSL.create(bp, Sink.seq(), Sink.last(), combine=lambda a, c: asyncio.gather(a, c))
    ).run(materializer)
    assert await combined == [[1, 2, 3], 3]


# -- Graph cycles, liveness and deadlocks (stream-graphs docs) -------------------------------
async def test_cycle_merge_preferred_feedback_stays_live(materializer: Materializer) -> None:
    def bp(b: Any, out: Any) -> Any:
        merge = b.add(MergePreferred(1))
        bcast = b.add(Broadcast(2, eager_cancel=True))
        b.add(Source.from_iterable(range(1, 1000))) >> merge.in_(0)
        merge.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().take(50)) >> out
        bcast.out(1) >> merge.preferred
        return ClosedShape

    out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert len(out) == 50
    assert len(set(out)) < 50  # the fed-back elements circulate


async def test_cycle_dropping_buffer_gives_liveness(materializer: Materializer) -> None:
    def bp(b: Any, out: Any) -> Any:
        merge = b.add(Merge(2))
        bcast = b.add(Broadcast(2, eager_cancel=True))
        b.add(Source.from_iterable(range(1, 1000))) >> merge.in_(0)
        merge.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().take(100)) >> out
        bcast.out(1) >> b.add(Flow().buffer(10, OverflowStrategy.drop_head)) >> merge.in_(1)
        return ClosedShape

    out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert len(out) == 100


async def test_balanced_cycle_needs_a_kick_off_element(materializer: Materializer) -> None:
    def bp(b: Any, out: Any, with_kick_off: bool) -> Any:
        zip_ = b.add(ZipWith(lambda left, right: left))
        bcast = b.add(Broadcast(2, eager_cancel=True))
        b.add(Source.from_iterable(range(1, 1000))) >> zip_.in0
        zip_.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().take(10)) >> out
        if with_kick_off:
            concat = b.add(Concat())
            b.add(Source.single(0)) >> concat.in_(0)
            bcast.out(1) >> concat.in_(1)
            concat.out >> zip_.in1
        else:
            bcast.out(1) >> zip_.in1
        return ClosedShape

    live = GraphDSL.create(lambda b, o: bp(b, o, True), Sink.seq())
    assert await RunnableGraph.from_graph(live).run(materializer) == list(range(1, 11))

    dead = GraphDSL.create(lambda b, o: bp(b, o, False), TestSink.probe())
    probe = RunnableGraph.from_graph(dead).run(materializer)
    probe.request(1)
    await probe.expect_no_message(0.05)  # chicken-and-egg: nothing ever starts
    probe.cancel()
