"""Akka's ``Source.futureSource`` (``Source.future_source``) and ``Source.zipWithN``
(``Source.zip_with_n``)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Keep, Materializer, NeverMaterializedError, Sink, Source
from reactive._ops.lazy import FutureSource
from reactive.testkit import TestSink
from tests.reactive.support import Boom, nothing, seq

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


def future_source(aw: Any) -> Source[Any, asyncio.Future[Any]]:
    return Source.future_source(aw)


async def a_source(xs: list[int]) -> Source[int, Any]:
    await asyncio.sleep(0)
    return Source.from_iterable(xs).map_materialized_value(lambda _: "inner")


class TestFutureSource:
    async def test_streams_the_source_the_awaitable_gives(self, materializer: Materializer) -> None:
        mat, done = (
            future_source(a_source([1, 2, 3])).to_mat(Sink.seq(), Keep.both).run(materializer)
        )
        assert await done == [1, 2, 3]
        assert await mat == "inner"

    async def test_a_shared_future_is_not_cancelled(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        fut: asyncio.Future[Source[int, Any]] = asyncio.get_running_loop().create_future()
        mat, sub = future_source(fut).to_mat(TestSink.probe(), Keep.both).run(materializer)
        sub.cancel()
        with pytest.raises(NeverMaterializedError, match="downstream cancelled"):
            await mat
        await manual_clock.settle()
        assert not fut.cancelled()

    async def test_pulls_the_inner_source_on_demand(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        fut: asyncio.Future[Source[int, Any]] = asyncio.get_running_loop().create_future()
        mat, sub = future_source(fut).to_mat(TestSink.probe(), Keep.both).run(materializer)
        sub.request(1)
        await nothing(manual_clock, sub)
        fut.set_result(Source.from_iterable([1, 2]))
        await sub.expect_next(1)
        await nothing(manual_clock, sub)
        assert await mat is not None
        sub.request(1)
        await sub.expect_next(2)
        await sub.expect_complete()

    async def test_a_failing_awaitable_fails_the_stream_and_the_value(
        self, materializer: Materializer
    ) -> None:
        async def broken() -> Source[int, Any]:
            raise Boom("no source")

        mat, done = future_source(broken()).to_mat(Sink.seq(), Keep.both).run(materializer)
        with pytest.raises(Boom):
            await done
        with pytest.raises(Boom):
            await mat

    async def test_an_awaitable_giving_no_source_names_the_stage(
        self, materializer: Materializer
    ) -> None:
        async def not_a_source() -> int:
            return 5

        with pytest.raises(
            TypeError, match=r"\[future_source\] the awaitable must return a Source"
        ):
            await seq(future_source(not_a_source()), materializer)

    async def test_the_inner_failure_fails_the_stream(self, materializer: Materializer) -> None:
        async def failing() -> Source[int, Any]:
            return Source.failed(Boom("inner"))

        with pytest.raises(Boom, match="inner"):
            await seq(future_source(failing()), materializer)

    async def test_downstream_cancel_after_the_source_cancels_it(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        stopped: list[bool] = []

        async def endless() -> Source[int, Any]:
            return Source.repeat(1).do_on_cancel(lambda c, normal: stopped.append(normal))

        sub = future_source(endless()).run_with(TestSink.probe(), materializer)
        sub.request(1)
        await sub.expect_next(1)
        sub.cancel()
        await manual_clock.settle()
        assert stopped == [True]

    def test_checks_its_argument(self) -> None:
        with pytest.raises(TypeError, match=r"Source.future_source\(aw\): aw must be an awaitable"):
            FutureSource(Source.single(1))


class TestZipWithN:
    async def test_combines_one_element_of_each(self, materializer: Materializer) -> None:
        srcs = [Source.from_iterable([1, 2, 3]), Source.from_iterable([10, 20]), Source.repeat(100)]
        got = await Source.zip_with_n(sum, srcs).run_with(Sink.seq(), materializer)
        assert got == [111, 122]

    async def test_one_and_no_sources(self, materializer: Materializer) -> None:
        one = Source.zip_with_n(lambda xs: tuple(xs), [Source.from_iterable("ab")])
        assert await one.run_with(Sink.seq(), materializer) == [("a",), ("b",)]
        assert await Source.zip_with_n(sum, []).run_with(Sink.seq(), materializer) == []

    def test_checks_its_function(self) -> None:
        with pytest.raises(TypeError, match="zip_with_n"):
            Source.zip_with_n(5, [Source.single(1)])  # type: ignore[arg-type]
