"""The fan-in junctions and operators (``reactive/_ops/fan_in/``): zip, zip_with, ZipN,
zip_latest, merge, MergePreferred, MergePrioritized, merge_sorted, concat, prepend (and their
lazy forms), interleave, or_else, zip_all and Source.combine. Akka's specs (FlowZipSpec,
FlowZipWithSpec, GraphZipSpec, GraphZipWithSpec, GraphZipNSpec, FlowMergeSpec, GraphMergeSpec,
GraphMergePreferredSpec, GraphMergeSortedSpec, FlowConcatSpec, GraphConcatSpec,
FlowPrependSpec, FlowInterleaveSpec, FlowOrElseSpec, TwoStreamsSetup's common cases) and our
own cases, one class per operator. The batch paths' differential tests are in
test_junction_batches and test_fan_in_boundaries.
"""

from __future__ import annotations

import asyncio
import operator
import random
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    ClosedShape,
    Concat,
    Done,
    Flow,
    GraphDSL,
    Interleave,
    Keep,
    Materializer,
    Merge,
    MergePreferred,
    MergePrioritized,
    MergeSorted,
    OrElse,
    RunnableGraph,
    Sink,
    Source,
    SourceShape,
    Supervision,
    Zip,
    ZipLatest,
    ZipLatestWith,
    ZipN,
    ZipWith,
    ZipWithN,
)
from reactive.testkit import (
    PublisherProbe,
    SubscriberProbe,
    TestSink,
    TestSource,
)
from tests.reactive.support import Boom, seq, settle, until

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def two_probes(op: Any, mat: Materializer) -> tuple[Any, Any, Any]:
    """(left publisher, right publisher, subscriber) around ``op(left, right)``."""
    (a, b), sub = (
        op(TestSource.probe(), TestSource.probe(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(mat)
    )
    return a, b, sub


def zip_(a: Any, b: Any, k: Any) -> Any:
    return a.zip_mat(b, k)


def merge_(a: Any, b: Any, k: Any) -> Any:
    return a.merge_mat(b, k)


def merge_eager(a: Any, b: Any, k: Any) -> Any:
    return a.merge_mat(b, k, eager_complete=True)


def concat_(a: Any, b: Any, k: Any) -> Any:
    return a.concat_mat(b, k)


def zip_all_probes(
    mat: Materializer,
) -> tuple[PublisherProbe, PublisherProbe, SubscriberProbe]:
    """Probes on both inputs and the output of ``zip_all(pad_left=0, pad_right="-")``."""
    held: list[PublisherProbe] = []
    right = TestSource.probe().map_materialized_value(lambda p: held.append(p) or p)
    left, sub = (
        TestSource.probe().zip_all(right, 0, "-").to_mat(TestSink.probe(), Keep.both).run(mat)
    )
    return left, held[0], sub


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


async def _joined(
    materializer: Materializer, left: Iterable[Any], op: str, right: Iterable[Any], *args: Any
) -> list[Any]:
    """Run ``Source(left).<op>(Source(right), *args)`` into a list."""
    joined = getattr(Source.from_iterable(left), op)(Source.from_iterable(right), *args)
    out: list[Any] = await joined.run_with(Sink.seq(), materializer)
    return out


def soon_to_complete() -> Source[Any, Any]:
    """TestPublisher.lazyEmpty: completes a moment after start, demand or not."""
    return Source.never().take_within(0.01)


def soon_to_fail() -> Source[Any, Any]:
    """TestPublisher.lazyError: fails a moment after start, demand or not."""
    return Source.never().completion_timeout(0.01).map_error(lambda e: Boom("test"))


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


def or_else_probes(materializer: Materializer) -> tuple[Any, Any, Any]:
    """``primary.or_else(secondary)`` with publisher probes on both, out to a probe."""
    box: list[Any] = []
    secondary = TestSource.probe().map_materialized_value(lambda m: box.append(m) or m)
    in1, out = (
        TestSource.probe().or_else(secondary).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    return in1, box[0], out


class TestZip:
    """``zip``."""

    async def test_zip_pairs_and_completes_with_shorter(self, materializer: Materializer) -> None:
        out = await _joined(materializer, [1, 2, 3], "zip", "ab")
        assert out == [(1, "a"), (2, "b")]

    async def test_zip_emits_held_pair_before_completing(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(zip_, materializer)
        sub.request(5)
        a.send_next(1)
        await settle()
        a.send_complete()
        await settle()
        await sub.expect_no_message(0)
        b.send_next("x")
        await sub.expect_next((1, "x"))
        await sub.expect_complete()
        await b.expect_cancellation()

    async def test_zip_completes_when_either_completes_empty(
        self, materializer: Materializer
    ) -> None:
        a, b, sub = two_probes(zip_, materializer)
        sub.request(1)
        b.send_complete()
        await sub.expect_complete()
        await a.expect_cancellation()

    async def test_zip_backpressure(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(zip_, materializer)
        await settle()
        # both inputs are pulled once at start (one element held per side), no more
        assert a.pending_demand == 1 and b.pending_demand == 1
        a.send_next(1)
        b.send_next(2)
        await settle()
        assert a.pending_demand == 1 and b.pending_demand == 1
        await sub.request_next((1, 2))
        await settle()
        assert a.pending_demand == 2 and b.pending_demand == 2
        sub.cancel()
        await a.expect_cancellation()
        await b.expect_cancellation()

    async def test_zip_failure_of_either_side(self, materializer: Materializer) -> None:
        err = Boom("right")
        a, b, sub = two_probes(zip_, materializer)
        sub.request(1)
        b.send_error(err)
        assert await sub.expect_error() is err
        await a.expect_cancellation()

    async def test_zip_n(self, materializer: Materializer) -> None:
        srcs = [Source.from_iterable([1, 2, 3]), Source.from_iterable("abcd"), Source.repeat(0)]
        out = await Source.zip_n(srcs).run_with(Sink.seq(), materializer)
        assert out == [[1, "a", 0], [2, "b", 0], [3, "c", 0]]

    async def test_zip_n_edge_cases(self, materializer: Materializer) -> None:
        assert await Source.zip_n([]).run_with(Sink.seq(), materializer) == []
        assert await Source.zip_n([Source.from_iterable([1, 2])]).run_with(
            Sink.seq(), materializer
        ) == [[1], [2]]

    async def test_zip_n_failure(self, materializer: Materializer) -> None:
        err = Boom("n")
        with pytest.raises(Boom):
            await Source.zip_n([Source.repeat(1), Source.failed(err), Source.repeat(2)]).run_with(
                Sink.seq(), materializer
            )

    async def test_zip_happy_case_with_demand(self, materializer: Materializer) -> None:
        sub = (
            Source.from_iterable(range(1, 5))
            .zip(Source.from_iterable("ABCDEF"))
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(2)
        await sub.expect_next((1, "A"), (2, "B"))
        sub.request(1)
        await sub.expect_next((3, "C"))
        sub.request(1)
        await sub.expect_next((4, "D"))
        await sub.expect_complete()

    async def test_zip_completes_when_other_side_completes_and_cancels_this_side(
        self,
        materializer: Materializer,
    ) -> None:
        (up1, up2), done = (
            TestSource.probe()
            .zip_mat(TestSource.probe(), Keep.both)
            .to_mat(Sink.ignore(), Keep.both)
            .run(materializer)
        )
        up1.send_next(1).send_next(2)
        up2.send_next("A").send_complete()
        assert await done is Done
        await up1.expect_cancellation()

    async def test_zip_completes_even_without_pending_demand(
        self, materializer: Materializer
    ) -> None:
        up1, up2, sub = two_probes(zip_, materializer)
        sub.request(1)
        up1.send_next(1)
        up2.send_next(2)
        await sub.expect_next((1, 2))
        up2.send_complete()
        await sub.expect_complete()
        await up1.expect_cancellation()

    @pytest.mark.parametrize("first", ["left", "right"])
    async def test_zip_completes_after_the_pending_pair_when_sides_completed_before_demand(
        self, materializer: Materializer, first: str
    ) -> None:
        up1, up2, sub = two_probes(zip_, materializer)
        a, b = (up1, up2) if first == "left" else (up2, up1)
        a.send_next(1 if a is up1 else 2).send_complete()
        await settle()
        b.send_next(1 if b is up1 else 2).send_complete()
        await settle()
        sub.request(1)
        await sub.expect_next((1, 2))
        await sub.expect_complete()

    async def test_zip_in_dsl_completes_when_one_side_completed_before_request(
        self,
        materializer: Materializer,
    ) -> None:
        up1, up2, down = fan_in(
            Zip(), [TestSource.probe(), TestSource.probe()], TestSink.probe()
        ).run(materializer)
        up1.send_next(1).send_complete()
        await down.expect_no_message(0.05)
        up2.send_next("A").send_complete()
        await down.request_next((1, "A"))
        await down.expect_complete()


class TestZipWith:
    """``zip_with``."""

    async def test_zip_with(self, materializer: Materializer) -> None:
        out = await _joined(materializer, [1, 2, 3], "zip_with", [10, 20, 30, 40], operator.add)
        assert out == [11, 22, 33]

    async def test_zip_with_on_a_flow(self, materializer: Materializer) -> None:
        flow = Flow().map(lambda x: x * 2).zip(Source.from_iterable("xyz"))
        out = await Source.from_iterable([1, 2]).via(flow).run_with(Sink.seq(), materializer)
        assert out == [(2, "x"), (4, "y")]

    async def test_zip_with_function_failure(self, materializer: Materializer) -> None:
        def f(x: int, y: int) -> int:
            raise Boom(f"{x}{y}")

        with pytest.raises(Boom, match="12"):
            await Source.single(1).zip_with(Source.single(2), f).run_with(Sink.seq(), materializer)

    @pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
    async def test_zip_with_supervision_drops_the_pair(
        self, materializer: Materializer, directive: Supervision
    ) -> None:
        def f(x: int, y: int) -> int:
            if x == 2:
                raise Boom("pair")
            return x + y

        out = await (
            Source.from_iterable([1, 2, 3, 4])
            .zip_with(Source.from_iterable([10, 20, 30, 40]), f)
            .with_attributes(Attributes.supervision_strategy(lambda e: directive))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [11, 33, 44]

    async def test_zip_with_resume_on_last_pair_completes(self, materializer: Materializer) -> None:
        def f(x: int, y: int) -> int:
            if x == 2:
                raise Boom("last")
            return x + y

        out = await (
            Source.from_iterable([1, 2])
            .zip_with(Source.from_iterable([10, 20, 30]), f)
            .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [11]

    @pytest.mark.parametrize("empty_first", [True, False])
    async def test_zip_with_an_immediately_completed_side_completes_at_once(
        self, materializer: Materializer, empty_first: bool
    ) -> None:
        one = Source.empty()
        other = Source.from_iterable(range(1, 5))
        src = one.zip(other) if empty_first else other.zip(one)
        sub = src.run_with(TestSink.probe(), materializer)
        await sub.expect_complete()  # no demand needed

    @pytest.mark.parametrize("failed_first", [True, False])
    async def test_zip_with_an_immediately_failed_side_fails(
        self, materializer: Materializer, failed_first: bool
    ) -> None:
        one = Source.failed(Boom())
        other = Source.from_iterable(range(1, 5))
        src = one.zip(other) if failed_first else other.zip(one)
        sub = src.run_with(TestSink.probe(), materializer)
        assert isinstance(await sub.expect_error(), Boom)

    async def test_zip_with_combines_and_resumes(self, materializer: Materializer) -> None:
        out = await (
            Source.from_iterable(range(1, 5))
            .zip_with(Source.from_iterable(range(10, 50, 10)), operator.add)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [11, 22, 33, 44]

        def div(a: int, b: int) -> int:
            return a // b

        sub = (
            Source.from_iterable(range(1, 5))
            .zip_with(Source.from_iterable([-2, -1, 0, 1]), div)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(4)
        await sub.expect_next(1 // -2, 2 // -1)
        assert isinstance(await sub.expect_error(), ZeroDivisionError)

    async def test_zip_with_two_ports_in_dsl(self, materializer: Materializer) -> None:
        def bp(b: Any, out: Any) -> Any:
            z = b.add(ZipWith(lambda a, c: a + c))
            b.add(Source.from_iterable([1, 2, 3])) >> z.in0
            b.add(Source.from_iterable([10, 20])) >> z.in1
            z.out >> out.in_
            return ClosedShape

        assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(
            materializer
        ) == [
            11,
            22,
        ]

    @pytest.mark.parametrize("name", ["zip", "zip_with", "zip_n"])
    async def test_zip_with_one_completed_or_failed_and_one_nonempty(
        self, materializer: Materializer, name: str
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

    async def test_zip_with_three_inputs(self, materializer: Materializer) -> None:
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

    async def test_zip_with_sad_case_fails(self, materializer: Materializer) -> None:
        *_, probe = fan_in(
            ZipWith(lambda a, b: a // b),
            [Source.from_iterable(range(-2, 3)), Source.from_iterable(range(-2, 3))],
            TestSink.probe(),
        ).run(materializer)
        probe.request(5)
        await probe.expect_next(1, 1)
        assert isinstance(await probe.expect_error(), ZeroDivisionError)


class TestMerge:
    """``merge``."""

    async def test_merge_all_elements(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable(range(50))
            .merge(Source.from_iterable(range(100, 150)))
            .run_with(Sink.seq(), materializer)
        )
        assert sorted(out) == [*range(50), *range(100, 150)]
        assert [x for x in out if x < 100] == list(range(50))
        assert [x for x in out if x >= 100] == list(range(100, 150))

    async def test_merge_completes_when_all_complete(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(merge_, materializer)
        sub.request(10)
        a.send_next(1).send_complete()
        await sub.expect_next(1)
        await settle()
        await sub.expect_no_message(0)
        b.send_next(2).send_complete()
        await sub.expect_next(2)
        await sub.expect_complete()

    async def test_merge_eager_complete(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(merge_eager, materializer)
        sub.request(10)
        a.send_next(1)
        await sub.expect_next(1)
        a.send_complete()
        await sub.expect_complete()
        await b.expect_cancellation()

    async def test_merge_is_fifo_among_ready_inputs(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(merge_, materializer)
        await settle()
        b.send_next("b1")
        await settle()
        a.send_next("a1")
        await settle()
        sub.request(2)
        await sub.expect_next("b1", "a1")
        sub.cancel()
        await a.expect_cancellation()
        await b.expect_cancellation()

    async def test_merge_backpressure(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(merge_, materializer)
        await settle()
        a.send_next(1)
        b.send_next(2)
        await settle()
        assert a.pending_demand == 1 and b.pending_demand == 1
        await sub.request_next(1)
        await settle()
        assert a.pending_demand == 2 and b.pending_demand == 1
        await sub.request_next(2)
        a.send_complete()
        b.send_complete()
        await sub.expect_complete()

    async def test_merge_failure_and_cancel(self, materializer: Materializer) -> None:
        err = Boom("m")
        a, b, sub = two_probes(merge_, materializer)
        sub.request(1)
        a.send_error(err)
        assert await sub.expect_error() is err
        await b.expect_cancellation()

        a, b, sub = two_probes(merge_, materializer)
        sub.cancel()
        await a.expect_cancellation()
        await b.expect_cancellation()

    async def test_merge_two_infinite_sources_both_progress(
        self, materializer: Materializer
    ) -> None:
        out = (
            await Source.repeat("a")
            .merge(Source.repeat("b"))
            .take(100)
            .run_with(Sink.seq(), materializer)
        )
        assert "a" in out and "b" in out

    async def test_merge_three_sources_all_elements(self, materializer: Materializer) -> None:
        out = await (
            Source.from_iterable(range(0, 10))
            .merge(Source.from_iterable(range(10, 20)))
            .merge(Source.from_iterable(range(20, 30)))
            .run_with(Sink.seq(), materializer)
        )
        assert sorted(out) == list(range(30))

    @pytest.mark.parametrize("empty_first", [True, False])
    async def test_merge_with_an_immediately_completed_source(
        self, materializer: Materializer, empty_first: bool
    ) -> None:
        one, other = Source.empty(), Source.from_iterable(range(1, 5))
        src = one.merge(other) if empty_first else other.merge(one)
        assert await src.run_with(Sink.seq(), materializer) == [1, 2, 3, 4]

    async def test_merge_with_an_immediately_failed_source(
        self, materializer: Materializer
    ) -> None:
        sub = (
            Source.from_iterable(range(1, 5))
            .merge(Source.failed(Boom()))
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        with pytest.raises(Boom):
            await sub.to_list()

    async def test_merge_passes_along_early_cancellation(self, materializer: Materializer) -> None:
        up1, up2, sub = two_probes(merge_, materializer)
        sub.cancel()
        await up1.expect_cancellation()
        await up2.expect_cancellation()

    async def test_merge_does_not_grab_from_a_closed_input(
        self, materializer: Materializer
    ) -> None:
        up1, up2, sub = two_probes(merge_, materializer)
        up1.send_next(1)
        up2.send_next(2)
        await settle()
        first = await sub.request_next()
        up1.send_complete()
        up2.send_complete()
        second = await sub.request_next()
        assert {first, second} == {1, 2}
        sub.request(1)
        await sub.expect_complete()

    @pytest.mark.parametrize("side", ["left", "right"])
    async def test_merge_eager_complete_completes_on_either_and_cancels_other(
        self, materializer: Materializer, side: str
    ) -> None:
        (up1, up2), sub = (
            TestSource.probe()
            .merge_mat(TestSource.probe(), Keep.both, eager_complete=True)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        done, other = (up1, up2) if side == "left" else (up2, up1)
        sub.request(1)
        other.send_next(7)
        await sub.expect_next(7)
        done.send_complete()
        await sub.expect_complete()
        await other.expect_cancellation()

    async def test_merge_and_concat_ports_work_in_dsl(self, materializer: Materializer) -> None:
        def bp(b: Any, out: Any) -> Any:
            c = b.add(Concat(2))
            m = b.add(Merge(2))
            b.add(Source.from_iterable([1, 2])) >> c.in_(0)
            b.add(Source.from_iterable([3])) >> c.in_(1)
            c.out >> m.in_(0)
            b.add(Source.empty()) >> m.in_(1)
            m.out >> out.in_
            return ClosedShape

        assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(
            materializer
        ) == [
            1,
            2,
            3,
        ]

    async def test_merge_happy_case_keeps_per_input_order(self, materializer: Materializer) -> None:
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

    async def test_merge_one_way_and_n_way(self, materializer: Materializer) -> None:
        def one_way(b: Any) -> Any:
            merge = b.add(Merge(1))
            b.add(Source.from_iterable([1, 2, 3])) >> merge.in_(0)
            return SourceShape(merge.out)

        assert await Source.from_graph(GraphDSL.create(one_way)).run_with(
            Sink.seq(), materializer
        ) == [
            1,
            2,
            3,
        ]
        sources = [Source.single(i) for i in range(1, 6)] + [Source.empty()]
        *_, probe = fan_in(Merge(6), sources, TestSink.probe()).run(materializer)
        got = {await probe.request_next() for _ in range(5)}
        assert got == {1, 2, 3, 4, 5}
        await probe.expect_complete()


class TestConcat:
    """``concat``."""

    async def test_concat(self, materializer: Materializer) -> None:
        assert await _joined(materializer, [1, 2], "concat", [3, 4]) == [1, 2, 3, 4]

    async def test_concat_empty_sides(self, materializer: Materializer) -> None:
        assert await Source.empty().concat(Source.single(1)).run_with(Sink.seq(), materializer) == [
            1
        ]
        assert await Source.single(1).concat(Source.empty()).run_with(Sink.seq(), materializer) == [
            1
        ]

    async def test_concat_is_eager_but_ordered(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(concat_, materializer)
        await settle()
        # detached: both inputs pulled once at start
        assert a.pending_demand == 1 and b.pending_demand == 1
        b.send_next("b1")
        sub.request(1)
        await settle()
        await sub.expect_no_message(0)
        a.send_next("a1")
        await sub.expect_next("a1")
        sub.request(1)
        await a.expect_request()
        a.send_complete()
        await sub.expect_next("b1")
        sub.request(1)
        await b.expect_request()
        b.send_next("b2").send_complete()
        await sub.expect_next("b2")
        await sub.expect_complete()

    async def test_concat_failure_of_second_before_first_done(
        self, materializer: Materializer
    ) -> None:
        err = Boom("second")
        a, b, sub = two_probes(concat_, materializer)
        sub.request(1)
        b.send_error(err)
        assert await sub.expect_error() is err
        await a.expect_cancellation()

    async def test_concat_cancel(self, materializer: Materializer) -> None:
        a, b, sub = two_probes(concat_, materializer)
        sub.cancel()
        await a.expect_cancellation()
        await b.expect_cancellation()

    async def test_concat_keeps_materialized_value(self, materializer: Materializer) -> None:
        (pub, out) = (
            TestSource.probe()
            .concat(Source.single(9))
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        pub.send_next(1).send_complete()
        assert await out == [1, 9]

    async def test_merge_mat_combines(self, materializer: Materializer) -> None:
        (a, b), out = (
            TestSource.probe()
            .merge_mat(TestSource.probe(), Keep.both)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        a.send_next(1).send_complete()
        b.send_next(2).send_complete()
        assert sorted(await out) == [1, 2]

    async def test_concat_subscribes_to_both_sources_at_once(
        self, materializer: Materializer
    ) -> None:
        p1, p2, sub = two_probes(concat_, materializer)
        await p1.expect_request()
        await p2.expect_request()  # eager: the second input is pulled at start too
        p1.send_next(1)
        sub.request(1)
        await sub.expect_next(1)
        p1.send_complete()
        p2.send_next(2)
        sub.request(1)
        await sub.expect_next(2)
        p2.send_complete()
        await sub.expect_complete()

    async def test_concat_flow_with_a_source_and_source_with_a_flow(
        self, materializer: Materializer
    ) -> None:
        flow = Flow().concat(Source.from_iterable([4, 5]))
        assert await Source.from_iterable([1, 2, 3]).via(flow).run_with(
            Sink.seq(), materializer
        ) == [
            1,
            2,
            3,
            4,
            5,
        ]
        pre = Flow().prepend(Source.from_iterable([0]))
        assert await Source.from_iterable([1, 2]).via(pre).run_with(Sink.seq(), materializer) == [
            0,
            1,
            2,
        ]

    @pytest.mark.parametrize("empty_first", [True, False])
    async def test_concat_with_an_empty_source(
        self, materializer: Materializer, empty_first: bool
    ) -> None:
        one, other = Source.empty(), Source.from_iterable(range(1, 5))
        src = one.concat(other) if empty_first else other.concat(one)
        assert await src.run_with(Sink.seq(), materializer) == [1, 2, 3, 4]

    async def test_concat_failed_first_fails_and_failed_second_fails(
        self,
        materializer: Materializer,
    ) -> None:
        sub = (
            Source.failed(Boom())
            .concat(Source.from_iterable(range(1, 5)))
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        with pytest.raises(Boom):
            await sub.to_list()
        sub = (
            Source.from_iterable(range(1, 5))
            .concat(Source.failed(Boom()))
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        with pytest.raises(Boom):
            await sub.to_list()

    async def test_concat_async_error_in_secondary_upstream(
        self, materializer: Materializer
    ) -> None:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[int] = loop.create_future()
        sub = (
            Source.from_iterable([1, 2, 3])
            .concat(Source.from_awaitable(fut))
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(3)
        await sub.expect_next(1, 2, 3)
        fut.set_exception(Boom())
        assert isinstance(await sub.expect_error(), Boom)

    async def test_concat_junctions_chained(self, materializer: Materializer) -> None:
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
        self,
        materializer: Materializer,
    ) -> None:
        setup = two_input(JUNCTIONS["concat"])
        sub = setup(soon_to_fail(), Source.from_iterable(range(1, 5))).run(materializer)
        assert isinstance(await sub.expect_error(), Boom)
        sub = setup(Source.from_iterable(range(1, 5)), soon_to_fail()).run(materializer)
        sub.request(5)
        with pytest.raises(Boom):
            await sub.to_list()


class TestPrepend:
    """``prepend``."""

    async def test_prepend_source(self, materializer: Materializer) -> None:
        assert await _joined(materializer, [3, 4], "prepend", [1, 2]) == [1, 2, 3, 4]

    async def test_prepend_flow(self, materializer: Materializer) -> None:
        flow = Flow().map(lambda x: x * 10).prepend(Source.from_iterable([1, 2]))
        out = await Source.from_iterable([3, 4]).via(flow).run_with(Sink.seq(), materializer)
        assert out == [1, 2, 30, 40]

    async def test_prepend_entrance_example_and_eagerness(self, materializer: Materializer) -> None:
        out = await (
            Source.from_iterable([1, 2, 3])
            .prepend(Source.from_iterable([4, 5, 6]))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [4, 5, 6, 1, 2, 3]
        (p_main, p_pre), sub = (
            TestSource.probe()
            .prepend_mat(TestSource.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await p_pre.expect_request()
        await p_main.expect_request()  # prepend is eager too: both inputs pulled at start
        p_main.send_next("m")
        p_pre.send_next("p").send_complete()
        sub.request(2)
        await sub.expect_next("p", "m")
        p_main.send_complete()
        await sub.expect_complete()


class TestConcatLazy:
    """``concat_lazy``."""

    async def test_concat_lazy_does_not_pull_second_early(self, materializer: Materializer) -> None:
        seconds: list[Any] = []
        b = TestSource.probe().map_materialized_value(lambda p: seconds.append(p) or p)
        pa, sub = (
            TestSource.probe().concat_lazy(b).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        sub.request(5)
        await pa.expect_request()
        await until(lambda: len(seconds) == 1)  # materialized up-front ...
        pb = seconds[0]
        await pb.expect_no_message(0.02)  # ... but not pulled while the first runs
        pa.send_next(1).send_complete()
        await sub.expect_next(1)
        await pb.expect_request()
        pb.send_next(2).send_complete()
        await sub.expect_next(2)
        await sub.expect_complete()


class TestPrependLazy:
    """``prepend_lazy``."""

    async def test_concat_lazy_and_prepend_lazy(self, materializer: Materializer) -> None:
        src = (
            Source.from_iterable([1, 2])
            .concat_lazy(Source.single(3))
            .prepend_lazy(Source.single(0))
        )
        assert await seq(src, materializer) == [0, 1, 2, 3]
        flow = Flow().prepend_lazy(Source.single("p"))
        assert await seq(Source.single("x").via(flow), materializer) == ["p", "x"]


class TestZipAll:
    """``zip_all``."""

    async def test_zip_all_pads_the_shorter_side(self, materializer: Materializer) -> None:
        left = Source.from_iterable([1, 2, 3])
        right = Source.from_iterable(["a"])
        out = await left.zip_all(right, 0, "-").run_with(Sink.seq(), materializer)
        assert out == [(1, "a"), (2, "-"), (3, "-")]
        out = await right.zip_all(left, "-", 0).run_with(Sink.seq(), materializer)
        assert out == [("a", 1), ("-", 2), ("-", 3)]
        out = await Source.empty().zip_all(Source.empty(), 0, 0).run_with(Sink.seq(), materializer)
        assert out == []
        out = await Source.empty().zip_all(right, 0, 0).run_with(Sink.seq(), materializer)
        assert out == [(0, "a")]

    async def test_zip_all_demand_and_completion(self, materializer: Materializer) -> None:
        left, right, sub = zip_all_probes(materializer)
        left.send_next(1)
        right.send_next("a")
        await settle()
        await sub.expect_no_message(0)  # no demand
        sub.request(1)
        await sub.expect_next((1, "a"))
        left.send_next(2)
        sub.request(1)
        await settle()
        await sub.expect_no_message(0)  # the right side may still deliver
        right.send_complete()
        await sub.expect_next((2, "-"))
        left.send_next(3)
        sub.request(5)
        await sub.expect_next((3, "-"))
        left.send_complete()
        await sub.expect_complete()

    async def test_zip_all_left_completes_first(self, materializer: Materializer) -> None:
        left, right, sub = zip_all_probes(materializer)
        sub.request(5)
        left.send_complete()
        right.send_next("a").send_next("b")
        await sub.expect_next((0, "a"), (0, "b"))
        right.send_complete()
        await sub.expect_complete()

    async def test_zip_all_failure_and_cancel(self, materializer: Materializer) -> None:
        left, right, sub = zip_all_probes(materializer)
        sub.request(5)
        left.send_complete()
        err = Boom("right")
        right.send_error(err)
        assert await sub.expect_error() is err

        left, right, sub = zip_all_probes(materializer)
        sub.request(1)
        sub.cancel()
        await left.expect_cancellation()
        await right.expect_cancellation()


class TestMergePreferred:
    """``MergePreferred``."""

    async def test_merge_preferred_prefers(self, materializer: Materializer) -> None:
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

    async def test_merge_preferred_eager_complete(self, materializer: Materializer) -> None:
        srcs = [Source.single(1), Source.never()]
        m = MergePreferred(1, eager_complete=True)
        graph = fan_in(m, [srcs[1], srcs[0]])  # in0 never completes; preferred completes
        _, _, out = graph.run(materializer)
        out.request(5)
        await out.expect_next(1)
        await out.expect_complete()

    async def test_merge_preferred_prefers_the_selected_input(
        self, materializer: Materializer
    ) -> None:
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
        self,
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

    def test_merge_preferred_disallows_multiple_preferred_inputs_or_outputs(self) -> None:
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


class TestMergePrioritized:
    """``MergePrioritized``."""

    async def test_merge_prioritized_weights_and_completes(
        self, materializer: Materializer
    ) -> None:
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

    def test_merge_prioritized_rejects_bad_priorities(self) -> None:
        with pytest.raises(ValueError, match="positive"):
            MergePrioritized([1, 0])


class TestMergeSorted:
    """``MergeSorted`` / ``merge_sorted``."""

    async def test_merge_sorted(self, materializer: Materializer) -> None:
        srcs = [Source.from_iterable([1, 3, 5, 7, 9, 11]), Source.from_iterable([2, 3, 4, 10])]
        *_, out = fan_in(MergeSorted(), srcs, Sink.seq()).run(materializer)
        assert await out == [1, 2, 3, 3, 4, 5, 7, 9, 10, 11]
        empty_left = Source.empty().merge_sorted(Source.from_iterable([1, 2]))
        assert await empty_left.run_with(Sink.seq(), materializer) == [1, 2]
        keyed = Source.from_iterable(["ccc"]).merge_sorted(
            Source.from_iterable(["a", "bb", "dddd"]), key=len
        )
        assert await keyed.run_with(Sink.seq(), materializer) == ["a", "bb", "ccc", "dddd"]

    async def test_merge_sorted_fails_with_input(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).merge_sorted(Source.failed(KeyError("k")))
        with pytest.raises(KeyError):
            await src.run_with(Sink.seq(), materializer)

    async def test_merge_sorted_random_inputs(self, materializer: Materializer) -> None:
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


class TestZipN:
    """``ZipN`` / ``ZipWithN`` and ``Source.zip_n``."""

    async def test_zip_n_and_zip_with_n(self, materializer: Materializer) -> None:
        srcs = [
            Source.from_iterable([1, 2]),
            Source.from_iterable([3, 4, 5]),
            Source.from_iterable([6, 7]),
        ]
        *_, out = fan_in(ZipN(3), srcs, Sink.seq()).run(materializer)
        assert await out == [[1, 3, 6], [2, 4, 7]]
        *_, out2 = fan_in(ZipWithN(sum, 3), srcs, Sink.seq()).run(materializer)
        assert await out2 == [10, 13]

    async def test_zip_n_junction_and_source_zip_n(self, materializer: Materializer) -> None:
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


class TestZipLatest:
    """``ZipLatest`` / ``zip_latest``."""

    async def test_zip_latest_emits_latest_of_each(self, materializer: Materializer) -> None:
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

    async def test_zip_latest_with_non_eager_and_fluent(self, materializer: Materializer) -> None:
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

    async def test_zip_latest_spec_cases(self, materializer: Materializer) -> None:
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


class TestInterleave:
    """``Interleave`` / ``interleave``."""

    async def test_interleave_segments_and_rest(self, materializer: Materializer) -> None:
        srcs = [Source.from_iterable([1, 2, 3, 4, 5]), Source.from_iterable([10, 20, 30])]
        *_, out = fan_in(Interleave(2, 2), srcs, Sink.seq()).run(materializer)
        assert await out == [1, 2, 10, 20, 3, 4, 30, 5]
        fluent = Source.from_iterable([1, 2, 3]).interleave(Source.from_iterable([7, 8, 9, 10]), 1)
        assert await fluent.run_with(Sink.seq(), materializer) == [1, 7, 2, 8, 3, 9, 10]

    async def test_interleave_eager_close(self, materializer: Materializer) -> None:
        srcs = [Source.from_iterable([1, 2]), Source.from_iterable([10, 20, 30, 40])]
        *_, out = fan_in(Interleave(2, 1, eager_close=True), srcs, Sink.seq()).run(materializer)
        got = await out
        assert got[:3] == [1, 10, 2] and len(got) <= 4

    async def test_interleave_happy_case_and_segment_sizes(
        self, materializer: Materializer
    ) -> None:
        src = (
            Source.from_iterable(range(4))
            .interleave(Source.from_iterable(range(4, 7)), 2)
            .interleave(Source.from_iterable(range(7, 12)), 3)
        )
        assert await src.run_with(Sink.seq(), materializer) == [
            0,
            1,
            4,
            7,
            8,
            9,
            5,
            2,
            3,
            10,
            11,
            6,
        ]
        cases: list[tuple[range, range, int, list[int]]] = [
            (range(3), range(3, 6), 2, [0, 1, 3, 4, 2, 5]),
            (range(3), range(3, 6), 1, [0, 3, 1, 4, 2, 5]),
            (range(3), range(3, 16), 10, list(range(16))),
            (range(1, 21), range(21, 26), 10, [*range(1, 11), *range(21, 26), *range(11, 21)]),
        ]
        for a, b, seg, expected in cases:
            out = Source.from_iterable(a).interleave(Source.from_iterable(b), seg)
            assert await out.run_with(Sink.seq(), materializer) == expected

    def test_interleave_rejects_segment_size_zero(self) -> None:
        with pytest.raises(ValueError):
            Source.from_iterable(range(3)).interleave(Source.from_iterable(range(3, 6)), 0)

    async def test_interleave_eager_close_first_stream_closed(
        self, materializer: Materializer
    ) -> None:
        s1, s2, probe = interleave_probes(materializer)
        await _interleave_start(s1, s2, probe)
        s2.send_next(11)
        await s1.expect_request()
        s1.send_next(2).send_complete()
        await probe.expect_next(0, 1, 10, 11, 2)
        await probe.expect_complete()
        await s2.expect_cancellation()

    async def test_interleave_eager_close_non_current_upstream_closed(
        self,
        materializer: Materializer,
    ) -> None:
        s1, s2, probe = interleave_probes(materializer)
        await _interleave_start(s1, s2, probe)
        s1.send_complete()
        await probe.expect_next(0, 1, 10)
        await probe.expect_complete()
        await s2.expect_cancellation()

    async def test_interleave_eager_close_other_stream_closed(
        self, materializer: Materializer
    ) -> None:
        s1, s2, probe = interleave_probes(materializer)
        await _interleave_start(s1, s2, probe)
        s2.send_next(11).send_complete()
        await probe.expect_next(0, 1, 10, 11)
        await probe.expect_complete()
        await s1.expect_cancellation()

    async def test_interleave_immediately_failed_first(self, materializer: Materializer) -> None:
        sub = (
            Source.failed(Boom("test"))
            .interleave(Source.from_iterable(range(1, 5)), 2)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(4)
        assert isinstance(await sub.expect_error(), Boom)

    async def test_interleave_passes_along_early_cancellation(
        self, materializer: Materializer
    ) -> None:
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


class TestOrElse:
    """``or_else``."""

    async def test_or_else(self, materializer: Materializer) -> None:
        assert await Source.empty().or_else(Source.from_iterable([1, 2])).run_with(
            Sink.seq(), materializer
        ) == [1, 2]
        assert await Source.single(0).or_else(Source.from_iterable([1, 2])).run_with(
            Sink.seq(), materializer
        ) == [0]

    async def test_or_else_cancels_secondary_at_first_primary_element(
        self,
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

    async def test_or_else_passes_the_primary_and_cancels_the_secondary(
        self,
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

    async def test_or_else_passes_all_requested_from_secondary(
        self, materializer: Materializer
    ) -> None:
        in1, in2, out = or_else_probes(materializer)
        out.request(5)
        in1.send_complete()
        await in2.expect_request()
        for x in "abc":
            in2.send_next(x)
            await out.expect_next(x)
        in2.send_complete()
        await out.expect_complete()

    async def test_or_else_completion_orders(self, materializer: Materializer) -> None:
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

    async def test_or_else_fails_when_either_input_fails(self, materializer: Materializer) -> None:
        in1, in2, out = or_else_probes(materializer)
        in1.send_error(Boom("in1 failed"))
        await in2.expect_cancellation()
        assert isinstance(await out.expect_error(), Boom)

        in1, in2, out = or_else_probes(materializer)
        in2.send_error(Boom("in2 failed"))
        await in1.expect_cancellation()
        assert isinstance(await out.expect_error(), Boom)

    async def test_or_else_examples(self, materializer: Materializer) -> None:
        first = Source.single("First source")
        second = Source.single("Second source")
        assert await first.or_else(second).run_with(Sink.seq(), materializer) == ["First source"]
        assert await Source.empty().or_else(second).run_with(Sink.seq(), materializer) == [
            "Second source"
        ]


class TestTwoInputJunctions:
    """Akka's TwoStreamsSetup common cases, for every two-input junction."""

    @pytest.mark.parametrize("name", list(JUNCTIONS))
    async def test_two_streams_common_cases(self, materializer: Materializer, name: str) -> None:
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
        self, materializer: Materializer, name: str
    ) -> None:
        setup = two_input(JUNCTIONS[name])
        for empty in (Source.empty, soon_to_complete):
            for first_empty in (True, False):
                pair = (empty(), Source.from_iterable(range(1, 5)))
                sub = setup(*(pair if first_empty else pair[::-1])).run(materializer)
                sub.request(5)
                await sub.expect_next(1, 2, 3, 4)
                await sub.expect_complete()
