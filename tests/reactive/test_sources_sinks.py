"""Specs of the source factories and the sinks with awaitable results."""

from __future__ import annotations

import asyncio
import gc
import logging
import operator
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from reactive import (
    Attributes,
    Done,
    Keep,
    Materializer,
    NoSuchElementError,
    NotUsed,
    PortStateError,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import ManualClock, TestSink, TestSource


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param)
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


# -- sources --------------------------------------------------------------------------------
async def test_from_iterable_fresh_iterator_per_run(mat: Materializer) -> None:
    src = Source.from_iterable(range(3))
    assert await src.run_with(Sink.seq(), mat) == [0, 1, 2]
    assert await src.run_with(Sink.seq(), mat) == [0, 1, 2]


async def test_from_iterable_completes_right_after_last_element(mat: Materializer) -> None:
    probe = Source.from_iterable([1, 2]).run_with(TestSink.probe(), mat)
    await probe.request_next(1)
    await probe.request_next(2)
    await probe.expect_complete()  # no extra request needed


async def test_from_iterable_large_in_batches(mat: Materializer) -> None:
    assert await Source.from_iterable(range(5000)).run_with(Sink.seq(), mat) == list(range(5000))


async def test_from_iterable_failing_iterator(mat: Materializer) -> None:
    def gen() -> Any:
        yield 1
        raise Boom("iter")

    class Fresh:
        def __iter__(self) -> Any:
            return gen()

    with pytest.raises(Boom):
        await Source.from_iterable(Fresh()).run_with(Sink.seq(), mat)


@pytest.mark.parametrize("size", [3, 1024, 2000])
async def test_failing_iterator_into_a_resuming_map_fails_the_stream(
    mat: Materializer, size: int
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


class Fresh:
    """An iterable handing out a fresh generator per run."""

    def __init__(self, gen: Any) -> None:
        self.gen = gen

    def __iter__(self) -> Any:
        return self.gen()


async def test_single_empty_failed(mat: Materializer) -> None:
    assert await Source.single("x").run_with(Sink.seq(), mat) == ["x"]
    assert await Source.empty().run_with(Sink.seq(), mat) == []
    err = Boom("f")
    with pytest.raises(Boom) as info:
        await Source.failed(err).run_with(Sink.seq(), mat)
    assert info.value is err


async def test_never_and_cancel(mat: Materializer) -> None:
    probe = Source.never().run_with(TestSink.probe(), mat)
    probe.request(1)
    await settle()
    await probe.expect_no_message(0)
    probe.cancel()


async def test_repeat_respects_demand(mat: Materializer) -> None:
    probe = Source.repeat("r").run_with(TestSink.probe(), mat)
    probe.request(3)
    await probe.expect_next("r", "r", "r")
    await settle()
    await probe.expect_no_message(0)
    probe.cancel()


async def test_unfold(mat: Materializer) -> None:
    def step(s: int) -> tuple[int, int] | None:
        return None if s > 4 else (s + 1, s * s)

    assert await Source.unfold(0, step).run_with(Sink.seq(), mat) == [0, 1, 4, 9, 16]


async def test_unfold_failure(mat: Materializer) -> None:
    def step(s: int) -> tuple[int, int] | None:
        if s == 2:
            raise Boom("unfold")
        return s + 1, s

    with pytest.raises(Boom):
        await Source.unfold(0, step).run_with(Sink.seq(), mat)


async def test_unfold_async(mat: Materializer) -> None:
    async def step(s: int) -> tuple[int, int] | None:
        await asyncio.sleep(0)
        return None if s == 3 else (s + 1, s)

    assert await Source.unfold_async(0, step).run_with(Sink.seq(), mat) == [0, 1, 2]


async def test_unfold_async_failure_and_demand(mat: Materializer) -> None:
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


async def test_from_async_iterable_factory_and_failure(mat: Materializer) -> None:
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


async def test_from_async_iterable_cancel_closes_generator(mat: Materializer) -> None:
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


async def test_from_awaitable(mat: Materializer) -> None:
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


async def test_tick_on_manual_clock(manual_clock: ManualClock) -> None:
    async with Materializer(clock=manual_clock) as m:
        cancellable, probe = Source.tick(1.0, 0.5, "t").to_mat(TestSink.probe(), Keep.both).run(m)
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


async def test_tick_drops_ticks_under_backpressure(manual_clock: ManualClock) -> None:
    async with Materializer(clock=manual_clock) as m:
        cancellable, probe = Source.tick(0.0, 1.0, "t").to_mat(TestSink.probe(), Keep.both).run(m)
        await manual_clock.advance(5.0)
        probe.request(5)
        await settle()
        await probe.expect_no_message(0)  # ticks while nobody asked were dropped
        await manual_clock.advance(1.0)
        await probe.expect_next("t")
        cancellable.cancel()
        await probe.expect_complete()


# -- sinks ------------------------------------------------------------------------------------
async def test_foreach(mat: Materializer) -> None:
    seen: list[int] = []
    assert await Source.from_iterable(range(5)).run_with(Sink.foreach(seen.append), mat) is Done
    assert seen == list(range(5))


async def test_foreach_failure_and_resume(mat: Materializer) -> None:
    def f(x: int) -> None:
        if x == 2:
            raise Boom("each")
        seen.append(x)

    seen: list[int] = []
    with pytest.raises(Boom):
        await Source.from_iterable(range(5)).run_with(Sink.foreach(f), mat)
    seen.clear()
    sink = Sink.foreach(f).with_attributes(
        Attributes.supervision_strategy(lambda e: Supervision.resume)
    )
    assert await Source.from_iterable(range(5)).run_with(sink, mat) is Done
    assert seen == [0, 1, 3, 4]


async def test_fold_reduce(mat: Materializer) -> None:
    assert await Source.from_iterable(range(5)).run_with(Sink.fold(0, operator.add), mat) == 10
    assert await Source.empty().run_with(Sink.fold(3, operator.add), mat) == 3
    assert await Source.from_iterable(range(5)).run_with(Sink.reduce(operator.add), mat) == 10
    with pytest.raises(NoSuchElementError):
        await Source.empty().run_with(Sink.reduce(operator.add), mat)


@pytest.mark.parametrize(
    ("directive", "expected"), [(Supervision.resume, 7), (Supervision.restart, 4)]
)
async def test_fold_sink_supervision(
    mat: Materializer, directive: Supervision, expected: int
) -> None:
    def f(a: int, x: int) -> int:
        if x == 3:
            raise Boom("fold")
        return a + x

    sink = Sink.fold(0, f).with_attributes(Attributes.supervision_strategy(lambda e: directive))
    assert await Source.from_iterable([1, 2, 3, 4]).run_with(sink, mat) == expected


async def test_fold_and_reduce_failures(mat: Materializer) -> None:
    def f(a: int, x: int) -> int:
        raise Boom("f")

    with pytest.raises(Boom):
        await Source.from_iterable([1, 2]).run_with(Sink.fold(0, f), mat)
    with pytest.raises(Boom):
        await Source.from_iterable([1, 2]).run_with(Sink.reduce(f), mat)


async def test_head_and_head_option(mat: Materializer) -> None:
    assert await Source.from_iterable([4, 5]).run_with(Sink.head(), mat) == 4
    assert await Source.repeat(1).run_with(Sink.head(), mat) == 1  # cancels upstream
    assert await Source.empty().run_with(Sink.head_option(), mat) is None
    assert await Source.single(3).run_with(Sink.head_option(), mat) == 3
    with pytest.raises(NoSuchElementError):
        await Source.empty().run_with(Sink.head(), mat)


async def test_last_and_last_option(mat: Materializer) -> None:
    assert await Source.from_iterable(range(3000)).run_with(Sink.last(), mat) == 2999
    assert await Source.empty().run_with(Sink.last_option(), mat) is None
    with pytest.raises(NoSuchElementError):
        await Source.empty().run_with(Sink.last(), mat)


async def test_take_last(mat: Materializer) -> None:
    assert await Source.from_iterable(range(10)).run_with(Sink.take_last(3), mat) == [7, 8, 9]
    assert await Source.from_iterable(range(2)).run_with(Sink.take_last(3), mat) == [0, 1]
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        Sink.take_last(0)  # rejected at construction, as Akka's TakeLastStage does


async def test_ignore_and_cancelled(mat: Materializer) -> None:
    assert await Source.from_iterable(range(100)).run_with(Sink.ignore(), mat) is Done
    pub = TestSource.probe().to(Sink.cancelled()).run(mat)
    await pub.expect_cancellation()
    assert Source.single(1).to_mat(Sink.cancelled(), Keep.right).run(mat) is NotUsed


async def test_on_complete(mat: Materializer) -> None:
    got: list[Any] = []
    Source.from_iterable([1, 2]).run_with(Sink.on_complete(got.append), mat)
    await settle()
    assert got == [None]
    err = Boom("oc")
    Source.failed(err).run_with(Sink.on_complete(got.append), mat)
    await settle()
    assert got == [None, err]


SINKS: dict[str, Callable[[], Any]] = {
    "seq": Sink.seq,
    "ignore": Sink.ignore,
    "head": Sink.head,
    "head_option": Sink.head_option,
    "last": Sink.last,
    "last_option": Sink.last_option,
    "fold": lambda: Sink.fold(0, operator.add),
    "reduce": lambda: Sink.reduce(operator.add),
    "take_last": lambda: Sink.take_last(2),
    "foreach": lambda: Sink.foreach(lambda x: None),
}


@pytest.mark.parametrize("name", list(SINKS))
async def test_sinks_fail_with_the_upstream_error(mat: Materializer, name: str) -> None:
    err = Boom("up")
    src = (
        Source.from_iterable([1]).concat(Source.failed(err))
        if name
        not in (
            "head",
            "head_option",
        )
        else Source.failed(err)
    )
    with pytest.raises(Boom) as info:
        await src.run_with(SINKS[name](), mat)
    assert info.value is err


@pytest.mark.parametrize("name", list(SINKS))
async def test_sinks_request_with_demand(mat: Materializer, name: str) -> None:
    """Each sink pulls (at least one element) at start and handles elements sent one by one."""
    pub, fut = TestSource.probe().to_mat(SINKS[name](), Keep.both).run(mat)
    await pub.expect_request()
    pub.send_next(1)
    if name not in ("head", "head_option"):
        await pub.expect_request()
        pub.send_next(2).send_complete()
    await fut


async def test_contramap_and_run_helpers(mat: Materializer) -> None:
    sink = Sink.seq().contramap(lambda x: x * 2)
    assert await Source.from_iterable([1, 2]).run_with(sink, mat) == [2, 4]
    seen: list[int] = []
    assert await Source.from_iterable([1, 2]).run_foreach(seen.append, mat) is Done
    assert seen == [1, 2]
    assert await Source.from_iterable([1, 2]).run_fold(10, operator.add, mat) == 13
    assert await Source.from_iterable([1, 2]).run_reduce(operator.mul, mat) == 2


async def test_unawaited_failed_result_is_logged_once_naming_the_stage(
    mat: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    """A failed sink future that nobody awaits: one ERROR on the ``reactive`` logger
    naming the stage, not asyncio's anonymous "exception was never retrieved" (the
    cases are in test_unobserved_failures.py)."""
    caplog.set_level(logging.ERROR)
    Source.failed(Boom("ignored")).run_with(Sink.seq(), mat)
    await settle()
    gc.collect()
    messages = [r.getMessage() for r in caplog.records]
    assert not [m for m in messages if "never retrieved" in m]
    reported = [m for m in messages if "nobody observed the failure" in m]
    assert len(reported) == 1
    assert reported[0].startswith("[failed_source] ") and "ignored" in reported[0]


@pytest.mark.parametrize("shape", ["sink", "map", "filter", "boundary", "probe"])
async def test_none_from_an_iterable_fails_the_stream(mat: Materializer, shape: str) -> None:
    # RS rule 2.13 holds on the batched paths too (a batch is not pushed element by
    # element): the elements before the None go out, the user's map never sees it.
    seen: list[Any] = []

    def record(x: Any) -> Any:
        seen.append(x)
        return x

    src: Source[Any, Any] = Source.from_iterable([1, None, 3])
    if shape == "probe":
        probe = src.run_with(TestSink.probe(), mat)
        probe.request(5)
        await probe.expect_next(1)
        err = await probe.expect_error()
    else:
        flow = {
            "sink": src,
            "map": src.map(record),
            "filter": src.filter(lambda x: record(x) is not None),
            "boundary": src.async_boundary(),
        }[shape]
        with pytest.raises(PortStateError) as info:
            await flow.run_with(Sink.seq(), mat)
        err = info.value
    assert "RS rule 2.13" in str(err)
    assert "iterable_source" in str(err)
    assert None not in seen
