"""The fan-in operators (``reactive/_ops/fan_in.py``) on a blueprint: zip, zip_with, merge,
concat, prepend, their lazy forms and zip_all. Akka's specs (FlowZipSpec, FlowZipWithSpec,
FlowMergeSpec, FlowConcatSpec, FlowPrependSpec) and our own cases, one class per operator. The
junctions themselves (GraphDSL) are in test_junctions and test_junction_batches.
"""

from __future__ import annotations

import asyncio
import operator
from typing import Any

import pytest

from reactive import (
    Attributes,
    Done,
    Flow,
    Keep,
    Materializer,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import (
    PublisherProbe,
    SubscriberProbe,
    TestSink,
    TestSource,
)
from tests.reactive.support import Boom, seq, settle, until


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


class TestZip:
    """``zip``."""

    async def test_zip_pairs_and_completes_with_shorter(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable([1, 2, 3])
            .zip(Source.from_iterable("ab"))
            .run_with(Sink.seq(), materializer)
        )
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
        (up1, up2), sub = (
            TestSource.probe()
            .zip_mat(TestSource.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
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
        (up1, up2), sub = (
            TestSource.probe()
            .zip_mat(TestSource.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        a, b = (up1, up2) if first == "left" else (up2, up1)
        a.send_next(1 if a is up1 else 2).send_complete()
        await settle()
        b.send_next(1 if b is up1 else 2).send_complete()
        await settle()
        sub.request(1)
        await sub.expect_next((1, 2))
        await sub.expect_complete()


class TestZipWith:
    """``zip_with``."""

    async def test_zip_with(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable([1, 2, 3])
            .zip_with(Source.from_iterable([10, 20, 30, 40]), lambda a, b: a + b)
            .run_with(Sink.seq(), materializer)
        )
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
        (up1, up2), sub = (
            TestSource.probe()
            .merge_mat(TestSource.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.cancel()
        await up1.expect_cancellation()
        await up2.expect_cancellation()

    async def test_merge_does_not_grab_from_a_closed_input(
        self, materializer: Materializer
    ) -> None:
        (up1, up2), sub = (
            TestSource.probe()
            .merge_mat(TestSource.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
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


class TestConcat:
    """``concat``."""

    async def test_concat(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable([1, 2])
            .concat(Source.from_iterable([3, 4]))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2, 3, 4]

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
        (p1, p2), sub = (
            TestSource.probe()
            .concat_mat(TestSource.probe(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
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


class TestPrepend:
    """``prepend``."""

    async def test_prepend_source(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable([3, 4])
            .prepend(Source.from_iterable([1, 2]))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2, 3, 4]

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
