"""Source factories (``reactive/_ops/sources.py``): from_iterable, single, empty, failed, repeat,
unfold, tick, from_async_iterable, ... Akka's SourceSpec and our own cases, a class per
factory.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from reactive import (
    Attributes,
    Keep,
    Materializer,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import ManualClock, TestSink
from tests.reactive.support import Boom, nothing, settle


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param)
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


class Fresh:
    """An iterable handing out a fresh generator per run."""

    def __init__(self, gen: Any) -> None:
        self.gen = gen

    def __iter__(self) -> Any:
        return self.gen()


class TestFromIterable:
    """``Source.from_iterable``."""

    async def test_from_iterable_fresh_iterator_per_run(self, mat: Materializer) -> None:
        src = Source.from_iterable(range(3))
        assert await src.run_with(Sink.seq(), mat) == [0, 1, 2]
        assert await src.run_with(Sink.seq(), mat) == [0, 1, 2]

    async def test_from_iterable_completes_right_after_last_element(
        self, mat: Materializer
    ) -> None:
        probe = Source.from_iterable([1, 2]).run_with(TestSink.probe(), mat)
        await probe.request_next(1)
        await probe.request_next(2)
        await probe.expect_complete()  # no extra request needed

    async def test_from_iterable_large_in_batches(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(5000)).run_with(Sink.seq(), mat) == list(
            range(5000)
        )

    async def test_from_iterable_failing_iterator(self, mat: Materializer) -> None:
        def gen() -> Any:
            yield 1
            raise Boom("iter")

        class Fresh:
            def __iter__(self) -> Any:
                return gen()

        with pytest.raises(Boom):
            await Source.from_iterable(Fresh()).run_with(Sink.seq(), mat)

    async def test_from_iterable_is_re_run_per_materialization(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable(range(3)).map(lambda x: x * 2)
        assert await src.run_with(Sink.seq(), materializer) == [0, 2, 4]
        assert await src.run_with(Sink.seq(), materializer) == [0, 2, 4]


class TestFromAsyncIterable:
    """``Source.from_async_iterable``."""

    async def test_from_async_iterable_factory_and_failure(self, mat: Materializer) -> None:
        async def agen() -> AsyncIterator[int]:
            for i in range(3):
                await asyncio.sleep(0)
                yield i

        src = Source.from_async_iterable(agen)
        assert await src.run_with(Sink.seq(), mat) == [0, 1, 2]
        assert await src.run_with(Sink.seq(), mat) == [0, 1, 2]

        async def bad() -> AsyncIterator[int]:
            yield 1
            raise Boom("agen")

        with pytest.raises(Boom):
            await Source.from_async_iterable(bad).run_with(Sink.seq(), mat)

    async def test_from_async_iterable_cancel_closes_generator(self, mat: Materializer) -> None:
        closed = asyncio.Event()

        async def agen() -> AsyncIterator[int]:
            try:
                i = 0
                while True:
                    yield i
                    i += 1
            finally:
                closed.set()

        assert await Source.from_async_iterable(agen).take(3).run_with(Sink.seq(), mat) == [0, 1, 2]
        await asyncio.wait_for(closed.wait(), 2)


class TestFromAwaitable:
    """``Source.from_awaitable``."""

    async def test_from_awaitable(self, mat: Materializer) -> None:
        async def value() -> int:
            return 42

        assert await Source.from_awaitable(value).run_with(Sink.seq(), mat) == [42]
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        out = Source.from_awaitable(fut).run_with(Sink.seq(), mat)
        await settle()
        fut.set_result(7)
        assert await out == [7]

        async def fails() -> int:
            raise Boom("aw")

        with pytest.raises(Boom):
            await Source.from_awaitable(fails).run_with(Sink.seq(), mat)


class TestUnfoldAsync:
    """``Source.unfold_async``."""

    async def test_unfold_async(self, mat: Materializer) -> None:
        async def step(s: int) -> tuple[int, int] | None:
            await asyncio.sleep(0)
            return None if s == 3 else (s + 1, s)

        assert await Source.unfold_async(0, step).run_with(Sink.seq(), mat) == [0, 1, 2]

    async def test_unfold_async_failure_and_demand(self, mat: Materializer) -> None:
        calls = 0

        async def step(s: int) -> tuple[int, int] | None:
            nonlocal calls
            calls += 1
            if s == 2:
                raise Boom("ua")
            return s + 1, s

        probe = Source.unfold_async(0, step).run_with(TestSink.probe(), mat)
        await settle()
        assert calls == 0  # nothing before demand
        await probe.request_next(0)
        await settle()
        assert calls == 1
        await probe.request_next(1)
        probe.request(1)
        assert isinstance(await probe.expect_error(), Boom)

    async def test_unfold_async_fibonacci(self, materializer: Materializer) -> None:
        async def fib(s: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
            a, b = s
            return None if a > 1000 else ((b, a + b), a)

        out = await Source.unfold_async((0, 1), fib).run_with(Sink.seq(), materializer)
        assert out == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987]


class TestUnfold:
    """``Source.unfold``."""

    async def test_unfold(self, mat: Materializer) -> None:
        def step(s: int) -> tuple[int, int] | None:
            return None if s > 4 else (s + 1, s * s)

        assert await Source.unfold(0, step).run_with(Sink.seq(), mat) == [0, 1, 4, 9, 16]

    async def test_unfold_failure(self, mat: Materializer) -> None:
        def step(s: int) -> tuple[int, int] | None:
            if s == 2:
                raise Boom("unfold")
            return s + 1, s

        with pytest.raises(Boom):
            await Source.unfold(0, step).run_with(Sink.seq(), mat)

    async def test_unfold_fibonacci_and_failure(self, materializer: Materializer) -> None:
        def fib(s: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
            a, b = s
            return None if a > 10_000_000 else ((b, a + b), a)

        out = await Source.unfold((0, 1), fib).run_with(Sink.seq(), materializer)
        assert out[:8] == [0, 1, 1, 2, 3, 5, 8, 13]
        assert out[-1] <= 10_000_000 and len(out) == 36

        def failing(s: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
            a, b = s
            if a > 10_000:
                raise Boom("expected")
            return (b, a + b), a

        with pytest.raises(Boom):
            await Source.unfold((0, 1), failing).run_with(Sink.seq(), materializer)


class TestSingle:
    """``Source.single``."""

    async def test_single_empty_failed(self, mat: Materializer) -> None:
        assert await Source.single("x").run_with(Sink.seq(), mat) == ["x"]
        assert await Source.empty().run_with(Sink.seq(), mat) == []
        err = Boom("f")
        with pytest.raises(Boom) as info:
            await Source.failed(err).run_with(Sink.seq(), mat)
        assert info.value is err

    async def test_single_source_with_probe(self, materializer: Materializer) -> None:
        sub = Source.single(1).run_with(TestSink.probe(), materializer)
        sub.request(1)
        await sub.expect_next(1)
        await sub.expect_complete()


class TestEmpty:
    """``Source.empty``."""

    async def test_empty_and_failed_sources_terminate_without_demand(
        self,
        materializer: Materializer,
    ) -> None:
        sub = Source.empty().run_with(TestSink.probe(), materializer)
        await sub.expect_complete()
        sub = Source.failed(Boom()).run_with(TestSink.probe(), materializer)
        assert isinstance(await sub.expect_error(), Boom)


class TestNever:
    """``Source.never``."""

    async def test_never_and_cancel(self, mat: Materializer) -> None:
        probe = Source.never().run_with(TestSink.probe(), mat)
        probe.request(1)
        await settle()
        await probe.expect_no_message(0)
        probe.cancel()


class TestRepeat:
    """``Source.repeat``."""

    async def test_repeat_respects_demand(self, mat: Materializer) -> None:
        probe = Source.repeat("r").run_with(TestSink.probe(), mat)
        probe.request(3)
        await probe.expect_next("r", "r", "r")
        await settle()
        await probe.expect_no_message(0)
        probe.cancel()

    async def test_repeat_source(self, materializer: Materializer) -> None:
        assert await Source.repeat(42).take(4).run_with(Sink.seq(), materializer) == [42] * 4


class TestTick:
    """``Source.tick``."""

    async def test_tick_on_manual_clock(self, manual_clock: ManualClock) -> None:
        async with Materializer(clock=manual_clock) as m:
            cancellable, probe = (
                Source.tick(1.0, 0.5, "t").to_mat(TestSink.probe(), Keep.both).run(m)
            )
            probe.request(10)
            await manual_clock.advance(0.9)
            await probe.expect_no_message(0)
            await manual_clock.advance(0.1)
            await probe.expect_next("t")
            await manual_clock.advance(1.0)
            await probe.expect_next("t", "t")
            assert cancellable.cancel() is True
            assert cancellable.cancel() is False
            await probe.expect_complete()

    async def test_tick_drops_ticks_under_backpressure(self, manual_clock: ManualClock) -> None:
        async with Materializer(clock=manual_clock) as m:
            cancellable, probe = (
                Source.tick(0.0, 1.0, "t").to_mat(TestSink.probe(), Keep.both).run(m)
            )
            await manual_clock.advance(5.0)
            probe.request(5)
            await settle()
            await probe.expect_no_message(0)  # ticks while nobody asked were dropped
            await manual_clock.advance(1.0)
            await probe.expect_next("t")
            cancellable.cancel()
            await probe.expect_complete()

    async def test_tick_emits_on_schedule(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        cancellable, sub = (
            Source.tick(1.0, 0.5, "t").to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        sub.request(10)
        await manual_clock.advance(0.9)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next("t")
        await manual_clock.advance(0.5)
        await sub.expect_next("t")
        await manual_clock.advance(1.0)
        await sub.expect_next("t", "t")
        assert cancellable.cancel() is True
        await sub.expect_complete()
        assert cancellable.cancel() is False

    async def test_tick_drops_ticks_under_backpressure_2(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        cancellable, sub = (
            Source.tick(0.0, 1.0, "t").to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        await manual_clock.advance(3.5)  # ticks at 0, 1, 2, 3 without demand are dropped
        sub.request(5)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next("t")
        await nothing(manual_clock, sub)
        cancellable.cancel()
        await sub.expect_complete()

    async def test_tick_downstream_cancel(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = Source.tick(1.0, 1.0, 7).take(2).run_with(TestSink.probe(), materializer)
        sub.request(5)
        await manual_clock.advance(2.0)
        await sub.expect_next(7, 7)
        await sub.expect_complete()
        assert manual_clock.pending == 0  # the tick timer stopped with the stage


class TestZipN:
    """``Source.zip_n``."""

    async def test_zip_n_completes_with_the_shortest(self, materializer: Materializer) -> None:
        sources = [
            Source.from_iterable([1, 2, 3]),
            Source.from_iterable([10, 20]),
            Source.repeat(0),
        ]
        out = await Source.zip_n(sources).run_with(Sink.seq(), materializer)
        assert out == [[1, 10, 0], [2, 20, 0]]


class TestCombine:
    """``Source.combine``."""

    async def test_combine_with_merge_and_concat(self, materializer: Materializer) -> None:
        from reactive import Concat

        a, b, c = (Source.from_iterable(range(i, i + 3)) for i in (0, 10, 20))
        merged = await Source.combine(a, b, c).run_with(Sink.seq(), materializer)
        assert sorted(merged) == [0, 1, 2, 10, 11, 12, 20, 21, 22]
        concatenated = await Source.combine(a, b, c, strategy=Concat).run_with(
            Sink.seq(), materializer
        )
        assert concatenated == [0, 1, 2, 10, 11, 12, 20, 21, 22]


class TestSources:
    """What every source does."""

    @pytest.mark.parametrize("size", [3, 1024, 2000])
    async def test_failing_iterator_into_a_resuming_map_fails_the_stream(
        self, mat: Materializer, size: int
    ) -> None:
        """The fused map iterates the source's iterator directly (lazy take); what the
        iterator raises is still the source's failure: the map's resume decider does not
        swallow it, and the elements before it arrive."""

        def gen() -> Any:
            yield from range(size)
            raise Boom("iter")

        seen: list[int] = []
        flow = (
            Source.from_iterable(Fresh(gen))
            .map(lambda x: x * 2)
            .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
        )
        with pytest.raises(Boom, match="iter"):
            await flow.run_with(Sink.foreach(seen.append), mat)
        assert seen == [x * 2 for x in range(size)]
