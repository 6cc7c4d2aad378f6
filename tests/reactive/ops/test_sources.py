"""Source factories (``reactive/_ops/sources.py``, ``queues.py``): from_iterable, single, empty,
failed, repeat, unfold, unfold_async, tick, from_async_iterable, from_awaitable, queue,
as_subscriber, zip_n, combine, ... Akka's SourceSpec, FlowIterableSpec, FlowFromFutureSpec,
TickSpec, QueueSourceSpec and SubscriberSourceSpec cases with our own, a class per factory.
"""

from __future__ import annotations

import asyncio
import operator
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    BufferOverflowError,
    Concat,
    Flow,
    Interleave,
    Keep,
    Materializer,
    NotUsed,
    OverflowStrategy,
    QueueConcurrencyError,
    QueueOfferResult,
    Sink,
    Source,
    StreamError,
    Supervision,
)
from reactive.testkit import ManualClock, TestSink
from tests.reactive.support import Boom, C, D, E, Recorder, nothing, settle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Iterator


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param)
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


def counting_until_closed(closed: asyncio.Event) -> Callable[[], AsyncIterator[int]]:
    """An async generator function counting 0, 1, 2, ... forever; ``closed`` is set when
    the generator is closed."""

    async def agen() -> AsyncIterator[int]:
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    return agen


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

    async def test_iterator_failure_is_signalled_on_the_next_request(
        self,
        materializer: Materializer,
    ) -> None:
        """'produce onError when iterator throws': the element before the failure goes out,
        and the failure waits for the pull that asks for the failing element."""

        def gen() -> Iterator[int]:
            yield 1
            raise Boom("not two")

        probe = Source.from_iterable(Fresh(gen)).run_with(TestSink.probe(), materializer)
        probe.request(1)
        await probe.expect_next(1)
        await probe.expect_no_message(0.05)
        probe.request(3)
        assert str(await probe.expect_error()) == "not two"

    async def test_iterator_failure_after_elements_in_a_fused_chain(
        self,
        materializer: Materializer,
    ) -> None:
        def gen() -> Iterator[int]:
            yield from range(5)
            raise Boom("late")

        probe = (
            Source.from_iterable(Fresh(gen))
            .map(lambda x: x + 1)
            .run_with(TestSink.probe(), materializer)
        )
        probe.request(5)
        await probe.expect_next(1, 2, 3, 4, 5)
        await probe.expect_no_message(0.05)
        probe.request(1)
        assert str(await probe.expect_error()) == "late"

    async def test_iterable_whose_iterator_cannot_be_made_fails_without_demand(
        self,
        materializer: Materializer,
    ) -> None:
        """'produce onError when Source construction throws'."""

        class Bad:
            def __iter__(self) -> Iterator[int]:
                raise Boom("no good iterator")

        probe = Source.from_iterable(Bad()).run_with(TestSink.probe(), materializer)
        assert str(await probe.expect_error()) == "no good iterator"

    async def test_iterator_failing_on_the_first_element_fails_without_demand(
        self,
        materializer: Materializer,
    ) -> None:
        """'produce onError when hasNext throws'."""

        class NoNext:
            def __iter__(self) -> NoNext:
                return self

            def __next__(self) -> int:
                raise Boom("no next")

        probe = Source.from_iterable(NoNext()).run_with(TestSink.probe(), materializer)
        assert str(await probe.expect_error()) == "no next"

    async def test_iterable_with_multiple_subscribers(self, materializer: Materializer) -> None:
        """'produce elements with multiple subscribers' (fan-out publisher)."""
        pub = Source.from_iterable([1, 2, 3]).run_with(Sink.as_publisher(True), materializer)
        c1, c2 = Recorder(), Recorder()
        pub.subscribe(c1)
        pub.subscribe(c2)
        await settle()
        c1.subscription.request(1)
        c2.subscription.request(2)
        assert await c1.wait_for(1) == [1]
        assert await c2.wait_for(2) == [1, 2]
        await settle()
        assert c1.elements == [1] and c2.elements == [1, 2]
        c1.subscription.request(2)
        c2.subscription.request(2)
        await c1.wait_for(3)
        await c2.wait_for(3)
        await settle()
        assert c1.elements == [1, 2, 3] and c1.completed
        assert c2.elements == [1, 2, 3] and c2.completed


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
        agen = counting_until_closed(closed)
        assert await Source.from_async_iterable(agen).take(3).run_with(Sink.seq(), mat) == [0, 1, 2]
        await asyncio.wait_for(closed.wait(), 2)

    async def test_async_iterable_object_is_iterated_afresh_per_run(
        self, materializer: Materializer
    ) -> None:
        class Numbers:
            def __aiter__(self) -> AsyncIterator[int]:
                return self.gen()

            async def gen(self) -> AsyncIterator[int]:
                for i in range(3):
                    yield i

        src = Source.from_async_iterable(Numbers())
        assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]
        assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]

    async def test_cancel_while_the_generator_awaits_closes_it(
        self, materializer: Materializer
    ) -> None:
        closed = asyncio.Event()
        never = asyncio.Event()

        async def agen() -> AsyncIterator[int]:
            try:
                yield 1
                await never.wait()
                yield 2
            finally:
                closed.set()

        probe = Source.from_async_iterable(agen).run_with(TestSink.probe(), materializer)
        probe.request(2)
        await probe.expect_next(1)
        await settle()
        probe.cancel()
        await asyncio.wait_for(closed.wait(), 2)

    async def test_async_generator_object_is_closed_when_downstream_cancels(
        self,
        materializer: Materializer,
    ) -> None:
        closed = asyncio.Event()
        agen = counting_until_closed(closed)
        out = await Source.from_async_iterable(agen()).take(2).run_with(Sink.seq(), materializer)
        assert out == [0, 1]
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

    async def test_already_failed_future_fails_without_demand(
        self, materializer: Materializer
    ) -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        err = Boom("failed future")
        fut.set_exception(err)
        probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
        assert await probe.expect_error() is err

    async def test_future_failing_later_fails_without_demand(
        self, materializer: Materializer
    ) -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
        await settle()
        fut.set_exception(Boom("later"))
        assert isinstance(await probe.expect_error(), Boom)

    async def test_completed_future_waits_for_the_request(self, materializer: Materializer) -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        fut.set_result(1)
        probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
        await probe.expect_no_message(0.05)
        probe.request(1)
        await probe.expect_next(1)
        await probe.expect_complete()

    async def test_future_with_none_result_completes_empty(
        self, materializer: Materializer
    ) -> None:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        probe = Source.from_awaitable(fut).run_with(TestSink.probe(), materializer)
        await probe.expect_complete()

    async def test_cancel_before_the_future_completes_leaves_it_alone(
        self,
        materializer: Materializer,
    ) -> None:
        """'allow cancel before receiving element': the stream stops; the (shared) future is
        not cancelled, so another run of the same blueprint still gets its value."""
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        src = Source.from_awaitable(fut)
        probe = src.run_with(TestSink.probe(), materializer)
        probe.request(1)
        await settle()
        probe.cancel()
        await settle()
        assert not fut.cancelled()
        out = src.run_with(Sink.seq(), materializer)
        fut.set_result(5)
        assert await out == [5]


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

    async def test_unfold_async_step_raising_synchronously_fails(
        self, materializer: Materializer
    ) -> None:
        def step(s: int) -> Any:
            raise Boom("sync")

        with pytest.raises(Boom, match="sync"):
            await Source.unfold_async(0, step).run_with(Sink.seq(), materializer)

    async def test_unfold_async_with_failed_future_after_elements(
        self, materializer: Materializer
    ) -> None:
        loop = asyncio.get_running_loop()

        def step(s: int) -> asyncio.Future[Any]:
            f: asyncio.Future[Any] = loop.create_future()
            if s < 2:
                f.set_result((s + 1, s))
            else:
                f.set_exception(Boom("future"))
            return f

        probe = Source.unfold_async(0, step).run_with(TestSink.probe(), materializer)
        probe.request(5)
        await probe.expect_next(0, 1)
        assert isinstance(await probe.expect_error(), Boom)


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

    async def test_unfold_unbounded_fibonacci(self, materializer: Materializer) -> None:
        fib = Source.unfold((0, 1), lambda s: ((s[1], s[0] + s[1]), s[0]))
        got = await fib.take(36).run_with(Sink.seq(), materializer)
        a, b, want = 0, 1, []
        for _ in range(36):
            want.append(a)
            a, b = b, a + b
        assert got == want

    async def test_unfold_and_unfold_async_ending_at_once_are_empty(
        self,
        materializer: Materializer,
    ) -> None:
        async def none(_: Any) -> None:
            return None

        assert await Source.unfold(0, lambda s: None).run_with(Sink.seq(), materializer) == []
        assert await Source.unfold_async(0, none).run_with(Sink.seq(), materializer) == []


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

    async def test_repeat_as_long_as_it_takes(self, materializer: Materializer) -> None:
        out = await Source.repeat(42).grouped(1000).run_with(Sink.head(), materializer)
        assert out == [42] * 1000


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

    async def test_tick_is_usable_with_zip_for_rate_limiting(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        probe = (
            Source.from_iterable(range(1, 101))
            .zip(Source.tick(1.0, 1.0, "tick"))
            .map(lambda p: p[0])
            .run_with(TestSink.probe(), materializer)
        )
        probe.request(1000)
        await manual_clock.advance(0.9)
        await probe.expect_no_message(0)
        await manual_clock.advance(0.1)
        await probe.expect_next(1)
        await manual_clock.advance(0.5)
        await probe.expect_no_message(0)
        await manual_clock.advance(0.5)
        await probe.expect_next(2)
        probe.cancel()

    async def test_tick_cancellable_state_and_independent_runs(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        src = Source.tick(0.5, 0.5, "t")
        c1, p1 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
        c2, p2 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert c1 is not c2
        assert not c1.is_cancelled
        p1.request(5)
        p2.request(5)
        assert c1.cancel() is True
        assert c1.is_cancelled
        await p1.expect_complete()
        await manual_clock.advance(0.5)
        await p2.expect_next("t")
        assert c1.cancel() is False
        c2.cancel()
        await p2.expect_complete()

    async def test_tick_cancelled_before_the_first_tick_completes_at_once(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        c, probe = Source.tick(10.0, 1.0, "t").to_mat(TestSink.probe(), Keep.both).run(materializer)
        probe.request(1)
        await settle()
        c.cancel()
        await probe.expect_complete()

    def test_tick_with_zero_interval_is_rejected(self) -> None:
        with pytest.raises(ValueError):
            Source.tick(1.0, 0.0, "t")


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

    async def test_source_combine(self, materializer: Materializer) -> None:
        merged = Source.combine(Source.single(1), Source.single(2), Source.single(3))
        assert sorted(await merged.run_with(Sink.seq(), materializer)) == [1, 2, 3]
        concat = Source.combine(Source.from_iterable([1, 2]), Source.single(3), strategy=Concat)
        assert await concat.run_with(Sink.seq(), materializer) == [1, 2, 3]
        assert concat.to(Sink.ignore()).run(materializer) is NotUsed

    async def test_source_combine_many_inputs(self, materializer: Materializer) -> None:
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


class TestSources:
    """What every source does."""

    @pytest.mark.parametrize("size", [3, 1024, 2000])
    async def test_failing_iterator_into_a_resuming_map_fails_the_stream(
        self, mat: Materializer, size: int
    ) -> None:
        """The fused map iterates the source's iterator directly (lazy take); what the
        iterator raises is still the source's failure: the map's resume decider does not
        swallow it, and the elements before it arrive. (The decider is the map's alone:
        one on the source too decides on its iterator's failure, as Pekko's
        IterableSource, see test_review5_supervision.py.)"""

        def gen() -> Any:
            yield from range(size)
            raise Boom("iter")

        seen: list[int] = []
        resume = Attributes.supervision_strategy(lambda e: Supervision.resume)
        flow = Source.from_iterable(Fresh(gen)).via(
            Flow().map(lambda x: x * 2).with_attributes(resume)
        )
        with pytest.raises(Boom, match="iter"):
            await flow.run_with(Sink.foreach(seen.append), mat)
        assert seen == [x * 2 for x in range(size)]


class TestQueue:
    """``Source.queue`` (and Akka's QueueSourceSpec)."""

    async def test_offer_to_idle_stream_with_demand_settles_without_suspending(
        self,
        materializer: Materializer,
    ) -> None:
        got: list[int] = []
        q = Source.queue(4).map(lambda x: x * 2).to(Sink.foreach(got.append)).run(materializer)
        await asyncio.sleep(0)  # the stream starts and parks, idle with demand
        coro = q.offer(21)
        with pytest.raises(StopIteration) as stop:
            coro.send(None)  # completes on the first step: no suspension
        assert stop.value.value is E
        assert got == [42]
        q.complete()
        await q.watch_completion()

    async def test_offer_before_start_is_delivered(self, materializer: Materializer) -> None:
        q, out = Source.queue(2).to_mat(Sink.seq(), Keep.both).run(materializer)
        assert await q.offer(1) is E
        assert await q.offer(2) is E
        q.complete()
        assert await out == [1, 2]
        assert await q.offer(3) is C

    @pytest.mark.parametrize(
        ("strategy", "results", "emitted"),
        [
            (OverflowStrategy.drop_new, [E, E, D], [1, 2]),
            (OverflowStrategy.drop_head, [E, E, E], [2, 3]),
            (OverflowStrategy.drop_tail, [E, E, E], [1, 3]),
            (OverflowStrategy.drop_buffer, [E, E, E], [3]),
        ],
    )
    async def test_offer_results_per_drop_strategy(
        self,
        materializer: Materializer,
        strategy: OverflowStrategy,
        results: list[QueueOfferResult],
        emitted: list[int],
    ) -> None:
        q, probe = Source.queue(2, strategy).to_mat(TestSink.probe(), Keep.both).run(materializer)
        await asyncio.sleep(0)
        assert [await q.offer(x) for x in (1, 2, 3)] == results
        probe.request(10)
        await probe.expect_next(*emitted)
        q.complete()
        await probe.expect_complete()

    async def test_backpressure_offer_waits_for_room(self, materializer: Materializer) -> None:
        q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert await q.offer(1) is E
        pending = asyncio.ensure_future(q.offer(2))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert not pending.done()
        probe.request(1)
        await probe.expect_next(1)
        assert await pending is E
        probe.request(1)
        await probe.expect_next(2)
        q.complete()
        await probe.expect_complete()

    async def test_backpressure_with_zero_buffer_hands_over_directly(
        self,
        materializer: Materializer,
    ) -> None:
        q, probe = Source.queue(0).to_mat(TestSink.probe(), Keep.both).run(materializer)
        pending = asyncio.ensure_future(q.offer("a"))
        await asyncio.sleep(0)
        assert not pending.done()
        probe.request(1)
        await probe.expect_next("a")
        assert await pending is E
        q.complete()
        await probe.expect_complete()

    async def test_fail_strategy_fails_stream_and_offer(self, materializer: Materializer) -> None:
        q, probe = (
            Source.queue(1, OverflowStrategy.fail)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await asyncio.sleep(0)
        assert await q.offer(1) is E
        with pytest.raises(BufferOverflowError, match="queue_source"):
            await q.offer(2)
        assert isinstance(await probe.expect_error(), BufferOverflowError)
        with pytest.raises(BufferOverflowError):
            await q.offer(3)
        with pytest.raises(BufferOverflowError):
            await q.watch_completion()

    async def test_complete_drains_buffer_and_pending_offers(
        self, materializer: Materializer
    ) -> None:
        q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert await q.offer(1) is E
        pending = asyncio.ensure_future(q.offer(2))
        await asyncio.sleep(0)
        q.complete()
        assert await q.offer(3) is D  # as Akka: dropped while terminating
        probe.request(5)
        await probe.expect_next(1, 2)
        await probe.expect_complete()
        assert await pending is E
        assert await q.watch_completion() is not None

    async def test_fail_fails_stream_and_later_offers(self, materializer: Materializer) -> None:
        q, out = Source.queue(4).to_mat(Sink.seq(), Keep.both).run(materializer)
        boom = RuntimeError("boom")
        q.fail(boom)
        with pytest.raises(RuntimeError, match="boom"):
            await out
        with pytest.raises(RuntimeError, match="boom"):
            await q.offer(1)
        with pytest.raises(RuntimeError, match="boom"):
            await q.watch_completion()

    async def test_downstream_cancel_closes_queue_and_pending_offers(
        self,
        materializer: Materializer,
    ) -> None:
        q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert await q.offer(1) is E
        pending = asyncio.ensure_future(q.offer(2))
        await asyncio.sleep(0)
        probe.cancel()
        assert await pending is C
        assert await q.offer(3) is C
        await q.watch_completion()

    async def test_downstream_failure_is_raised_by_offer(self, materializer: Materializer) -> None:
        def boom(x: int) -> int:
            raise ValueError("bad element")

        q = Source.queue(4).map(boom).to(Sink.ignore()).run(materializer)
        await asyncio.sleep(0)
        await q.offer(1)
        with pytest.raises(ValueError, match="bad element"):
            await q.watch_completion()
        with pytest.raises(ValueError, match="bad element"):
            await q.offer(2)

    async def test_offer_none_is_rejected(self, materializer: Materializer) -> None:
        q = Source.queue(1).to(Sink.ignore()).run(materializer)
        with pytest.raises(TypeError):
            await q.offer(None)
        q.complete()
        await q.watch_completion()

    async def test_materializer_shutdown_fails_pending_offer(self) -> None:
        from reactive import AbruptTerminationError

        mat = Materializer()
        q = Source.queue(0).to(TestSink.probe()).run(mat)
        pending = asyncio.ensure_future(q.offer(1))
        await asyncio.sleep(0)
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await pending

    def test_negative_buffer_rejected(self) -> None:
        with pytest.raises(ValueError):
            Source.queue(-1)

    async def test_second_waiting_offer_fails_under_backpressure(
        self, materializer: Materializer
    ) -> None:
        """'fail offer future if user does not wait in backpressure mode'."""
        q, probe = Source.queue(5).to_mat(TestSink.probe(), Keep.both).run(materializer)
        for i in range(1, 6):
            assert await q.offer(i) is E
        sixth = asyncio.ensure_future(q.offer(6))
        await settle()
        assert not sixth.done()
        with pytest.raises(QueueConcurrencyError, match="wait"):
            await q.offer(7)
        assert await probe.request_next() == 1
        assert await sixth is E
        q.complete()
        probe.request(6)
        await probe.expect_next(2, 3, 4, 5, 6)
        await probe.expect_complete()

    async def test_concurrency_error_is_a_stream_error_and_runtime_error(self) -> None:
        assert issubclass(QueueConcurrencyError, StreamError)
        assert issubclass(QueueConcurrencyError, RuntimeError)

    async def test_zero_buffer_backpressure_rejects_a_second_offer(
        self, materializer: Materializer
    ) -> None:
        """'reject elements when back-pressuring with maxBuffer=0'."""
        q, probe = Source.queue(0).to_mat(TestSink.probe(), Keep.both).run(materializer)
        first = asyncio.ensure_future(q.offer(42))
        await settle()
        with pytest.raises(QueueConcurrencyError):
            await q.offer(43)
        assert await probe.request_next() == 42
        assert await first is E
        q.complete()
        await probe.expect_complete()

    async def test_max_concurrent_offers_allows_more_waiting_offers(
        self,
        materializer: Materializer,
    ) -> None:
        q, probe = (
            Source.queue(1, OverflowStrategy.backpressure, 2)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        assert await q.offer(1) is E
        waiting = [asyncio.ensure_future(q.offer(x)) for x in (2, 3)]
        await settle()
        with pytest.raises(QueueConcurrencyError):
            await q.offer(4)
        probe.request(3)
        await probe.expect_next(1, 2, 3)
        assert [await w for w in waiting] == [E, E]
        q.complete()
        await probe.expect_complete()

    @pytest.mark.parametrize(
        ("strategy", "first", "second", "emitted"),
        [
            (OverflowStrategy.drop_new, E, D, 1),
            (OverflowStrategy.drop_tail, E, D, 1),
            (OverflowStrategy.drop_head, D, E, 2),
            (OverflowStrategy.drop_buffer, D, E, 2),
        ],
    )
    async def test_zero_buffer_offer_waits_for_demand_with_every_strategy(
        self,
        materializer: Materializer,
        strategy: OverflowStrategy,
        first: QueueOfferResult,
        second: QueueOfferResult,
        emitted: int,
    ) -> None:
        """With no buffer an offer waits for demand; the strategy settles the next one."""
        q, probe = Source.queue(0, strategy).to_mat(TestSink.probe(), Keep.both).run(materializer)
        f1 = asyncio.ensure_future(q.offer(1))
        await settle()
        assert not f1.done()
        f2 = asyncio.ensure_future(q.offer(2))
        await settle()
        assert await probe.request_next() == emitted
        assert await f1 is first
        assert await f2 is second
        q.complete()
        await probe.expect_complete()

    async def test_zero_buffer_fail_strategy_fails_on_the_second_offer(
        self,
        materializer: Materializer,
    ) -> None:
        from reactive import BufferOverflowError

        q, probe = (
            Source.queue(0, OverflowStrategy.fail)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        f1 = asyncio.ensure_future(q.offer(1))
        await settle()
        assert not f1.done()
        with pytest.raises(BufferOverflowError):
            await q.offer(2)
        assert isinstance(await probe.expect_error(), BufferOverflowError)
        with pytest.raises(BufferOverflowError):
            await f1

    async def test_pending_offer_without_buffer_is_closed_when_downstream_cancels(
        self,
        materializer: Materializer,
    ) -> None:
        """'finish offer and complete futures when stream completed' (buffer 0, drop_head)."""
        q, probe = (
            Source.queue(0, OverflowStrategy.drop_head)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        done = asyncio.ensure_future(q.watch_completion())
        pending = asyncio.ensure_future(q.offer(1))
        await settle()
        assert not pending.done()
        probe.cancel()
        assert await pending is C
        await done

    async def test_offer_after_demand_is_remembered(self, materializer: Materializer) -> None:
        """'remember pull from downstream to send offered element immediately'."""
        q, probe = Source.queue(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
        probe.request(1)
        await settle()
        assert await q.offer(1) is E
        await probe.expect_next(1)
        q.complete()
        await probe.expect_complete()

    async def test_queue_materializations_are_independent(self, materializer: Materializer) -> None:
        """'not share future across materializations'."""
        src = Source.queue(1, OverflowStrategy.drop_new)
        q1, p1 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
        q2, p2 = src.to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert await q1.offer("a") is E
        assert await q2.offer("b") is E
        q1.complete()
        p1.request(2)
        p2.request(1)
        await p1.expect_next("a")
        await p1.expect_complete()
        await p2.expect_next("b")
        q2.complete()
        await p2.expect_complete()
        await q1.watch_completion()
        await q2.watch_completion()

    async def test_complete_with_empty_buffer_completes_the_watch(
        self, materializer: Materializer
    ) -> None:
        q, probe = Source.queue(3).to_mat(TestSink.probe(), Keep.both).run(materializer)
        q.complete()
        await probe.expect_complete()
        await q.watch_completion()
        assert await q.offer(1) is C

    async def test_watch_completion_fails_when_the_materializer_shuts_down(self) -> None:
        """'complete watching future with failure if materializer shut down'."""
        mat = Materializer()
        q = Source.queue(1).to(TestSink.probe()).run(mat)
        watch = asyncio.ensure_future(q.watch_completion())
        await settle()
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await watch


class TestAsSubscriber:
    """``Source.as_subscriber`` (the Reactive Streams bridge in)."""

    async def test_as_subscriber_feeds_as_publisher(self, materializer: Materializer) -> None:
        """'work with SubscriberSource'."""
        sub, pub = (
            Source.as_subscriber().to_mat(Sink.as_publisher(False), Keep.both).run(materializer)
        )
        Source.from_iterable(range(1, 101)).to(Sink.from_subscriber(sub)).run(materializer)
        out = await Source.from_publisher(pub).limit(1000).run_with(Sink.seq(), materializer)
        assert out == list(range(1, 101))

    async def test_subscriber_in_a_materialized_value_transformation(
        self,
        materializer: Materializer,
    ) -> None:
        """SubscriberSourceSpec: "be able to use Subscriber in materialized value
        transformation"."""
        src = Source.as_subscriber().map_materialized_value(
            lambda s: Source.from_iterable([1, 2, 3]).run_with(
                Sink.from_subscriber(s), materializer
            )
        )
        assert await src.run_with(Sink.fold(0, operator.add), materializer) == 6
