"""Catalog nesting operator ``flat_map_prefix`` / ``flat_map_prefix_mat`` (Akka's
flatMapPrefix(Mat)): the prefix builds the Flow that processes the rest."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    AbruptTerminationError,
    Flow,
    Keep,
    Materializer,
    NeverMaterializedError,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, failing_after, nothing, seq

if TYPE_CHECKING:
    from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe


def tagged(prefix: list[Any]) -> Flow[Any, Any, Any]:
    """A Flow tagging each element with the prefix; materializes the prefix."""
    return Flow().map(lambda x: (tuple(prefix), x)).map_materialized_value(lambda _: prefix)


def prefix_probes(
    n: int, f: Any, mat: Materializer
) -> tuple[PublisherProbe, asyncio.Future[Any], SubscriberProbe]:
    (pub, inner), sub = (
        TestSource.probe()
        .flat_map_prefix_mat(n, f, Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(mat)
    )
    return pub, inner, sub


class TestFlatMapPrefix:
    async def test_the_prefix_builds_the_flow_for_the_rest(
        self, materializer: Materializer
    ) -> None:
        got = await seq(Source.from_iterable(range(6)).flat_map_prefix(2, tagged), materializer)
        # As Akka's: the prefix goes to f only, not through the flow.
        assert got == [((0, 1), 2), ((0, 1), 3), ((0, 1), 4), ((0, 1), 5)]

    async def test_a_flow_that_prepends_the_prefix_processes_it_too(
        self, materializer: Materializer
    ) -> None:
        def f(prefix: list[int]) -> Flow[int, int, Any]:
            return Flow[int]().prepend(Source.from_iterable(prefix)).map(lambda x: x * 10)

        got = await seq(Source.from_iterable(range(4)).flat_map_prefix(2, f), materializer)
        assert got == [0, 10, 20, 30]

    async def test_mat_is_the_nested_flows_value(self, materializer: Materializer) -> None:
        inner, done = (
            Source.from_iterable(range(5))
            .flat_map_prefix_mat(3, tagged, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await inner == [0, 1, 2]
        assert await done == [((0, 1, 2), 3), ((0, 1, 2), 4)]

    async def test_flat_map_prefix_keeps_the_left_value(self, materializer: Materializer) -> None:
        mat = (
            Source.from_iterable([1])
            .map_materialized_value(lambda _: "left")
            .flat_map_prefix(1, tagged)
            .to(Sink.ignore())
            .run(materializer)
        )
        assert mat == "left"

    async def test_a_short_stream_builds_the_flow_from_what_arrived(
        self, materializer: Materializer
    ) -> None:
        inner, done = (
            Source.from_iterable([7, 8])
            .flat_map_prefix_mat(5, tagged, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await inner == [7, 8]
        assert await done == []

    async def test_an_empty_stream_calls_f_with_an_empty_prefix(
        self, materializer: Materializer
    ) -> None:
        def f(prefix: list[int]) -> Flow[int, int, Any]:
            return Flow[int]().concat(Source.single(len(prefix)))

        assert await seq(Source.empty().flat_map_prefix(3, f), materializer) == [0]

    async def test_zero_builds_the_flow_on_the_first_demand(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        calls: list[list[int]] = []

        def f(prefix: list[int]) -> Flow[int, int, Any]:
            calls.append(prefix)
            return Flow[int]().map(lambda x: x + 1)

        pub, inner, sub = prefix_probes(0, f, materializer)
        await nothing(manual_clock, sub)
        assert calls == []
        sub.request(1)
        assert await pub.expect_request() == 1
        assert calls == [[]]
        assert await inner is not None
        pub.send_next(1)
        await sub.expect_next(2)
        pub.send_complete()
        await sub.expect_complete()

    async def test_demand_before_and_after_the_prefix(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, inner, sub = prefix_probes(2, tagged, materializer)
        await nothing(manual_clock, pub)  # no demand: the prefix is not pulled
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(0)
        assert await pub.expect_request() == 1
        assert not inner.done()
        pub.send_next(1)
        assert await inner == [0, 1]
        assert await pub.expect_request() == 1  # the nested flow pulls for the pending demand
        pub.send_next(2)
        await sub.expect_next(((0, 1), 2))
        await nothing(manual_clock, pub)  # backpressure: downstream asked for one only
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(3)
        await sub.expect_next(((0, 1), 3))
        pub.send_complete()
        await sub.expect_complete()

    async def test_upstream_failure_before_the_prefix_fails_the_awaitable(
        self, materializer: Materializer
    ) -> None:
        inner, done = (
            failing_after([1], "early")
            .flat_map_prefix_mat(3, tagged, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        with pytest.raises(Boom, match="early"):
            await done
        with pytest.raises(NeverMaterializedError) as info:
            await inner
        assert isinstance(info.value.__cause__, Boom)

    async def test_upstream_failure_after_the_prefix_goes_through_the_flow(
        self, materializer: Materializer
    ) -> None:
        def f(prefix: list[int]) -> Flow[int, Any, Any]:
            return Flow[int]().recover(lambda exc: f"recovered {exc}")

        got = await seq(failing_after([1, 2, 3], "late").flat_map_prefix(1, f), materializer)
        assert got == [2, 3, "recovered late"]

    async def test_a_raising_f_fails_the_stage_and_the_awaitable(
        self, materializer: Materializer
    ) -> None:
        def f(prefix: list[int]) -> Flow[int, int, Any]:
            raise Boom("no flow")

        pub, inner, sub = prefix_probes(1, f, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        err = await sub.expect_error()
        assert isinstance(err, Boom)
        assert isinstance(await pub.expect_cancellation(), Boom)
        with pytest.raises(NeverMaterializedError) as info:
            await inner
        assert info.value.__cause__ is err

    async def test_f_returning_no_flow_names_the_stage(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).flat_map_prefix(1, lambda p: Source.single(1))
        with pytest.raises(TypeError, match=r"\[flat_map_prefix\] f\(prefix\) must return a Flow"):
            await seq(src, materializer)

    async def test_downstream_cancel_before_the_flow_cancels_eagerly(
        self, materializer: Materializer
    ) -> None:
        calls: list[Any] = []

        def f(prefix: list[int]) -> Flow[int, Any, Any]:
            calls.append(prefix)
            return tagged(prefix)

        pub, inner, sub = prefix_probes(3, f, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        sub.cancel()
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError, match="downstream cancelled"):
            await inner
        assert calls == []  # never built

    async def test_downstream_cancel_after_the_flow_cancels_through_it(
        self, materializer: Materializer
    ) -> None:
        cancelled: list[bool] = []

        def f(prefix: list[int]) -> Flow[int, int, Any]:
            return Flow[int]().do_on_cancel(lambda cause, normal: cancelled.append(normal))

        pub, inner, sub = prefix_probes(1, f, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await inner
        assert await pub.expect_request() == 1
        pub.send_next(2)
        await sub.expect_next(2)
        sub.cancel()
        await pub.expect_cancellation()
        assert cancelled == [True]

    async def test_the_nested_flow_completing_completes_and_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        def f(prefix: list[int]) -> Flow[int, int, Any]:
            return Flow[int]().take(1)

        pub, inner, sub = prefix_probes(1, f, materializer)
        sub.request(5)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await inner is not None
        assert await pub.expect_request() == 1
        pub.send_next(2)
        await sub.expect_next(2)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_the_nested_flow_failing_fails_the_stream(
        self, materializer: Materializer
    ) -> None:
        def f(prefix: list[int]) -> Flow[int, int, Any]:
            return Flow[int]().map(lambda x: 1 // (x - 3))

        src = Source.from_iterable(range(6)).flat_map_prefix(1, f)
        with pytest.raises(ZeroDivisionError):
            await seq(src, materializer)

    async def test_an_abrupt_stop_fails_the_awaitable(self) -> None:
        mat = Materializer()
        inner, _ = (
            Source.never()
            .flat_map_prefix_mat(1, tagged, Keep.right)
            .to_mat(Sink.ignore(), Keep.both)
            .run(mat)
        )
        await asyncio.sleep(0)
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await inner

    def test_checks_its_arguments(self) -> None:
        with pytest.raises(ValueError, match=r"flat_map_prefix\(n, f\): n must be >= 0"):
            Source.single(1).flat_map_prefix(-1, tagged)
        with pytest.raises(TypeError, match=r"flat_map_prefix\(n, f\): f must be callable"):
            Source.single(1).flat_map_prefix(1, 5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"flat_map_prefix_mat\(n, f, combine\)"):
            Source.single(1).flat_map_prefix_mat(1, tagged, None)  # type: ignore[arg-type]
