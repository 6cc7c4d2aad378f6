"""Back pressure, bounded in-flight elements, fairness, shutdown and failure propagation
across fused chains, buffers and async boundaries."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    AbruptTerminationError,
    Flow,
    Keep,
    KillSwitches,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 40) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


PATHS: dict[str, Callable[[Any], Any]] = {
    "fused": lambda s: s.map(lambda x: x + 1).filter(lambda x: True).map(lambda x: x - 1),
    "async": lambda s: s.map(lambda x: x).async_boundary().map(lambda x: x),
    "buffer": lambda s: s.buffer(4, OverflowStrategy.backpressure).map(lambda x: x),
    "detach_async": lambda s: s.detach().async_boundary().detach(),
    "map_async": lambda s: s.map_async(3, _ident_async),
}
# elements the path may hold beyond what downstream requested (bounded buffers)
SLACK = {"fused": 0, "async": 16, "buffer": 4, "detach_async": 18, "map_async": 3}


async def _ident_async(x: Any) -> Any:
    return x


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("path", list(PATHS))
async def test_no_element_without_demand(path: str, fast: bool) -> None:
    """Upstream only sends what it was asked for; downstream never gets more than it
    requested; upstream demand runs ahead of downstream demand by at most the buffers."""
    async with Materializer(fast_paths=fast) as mat:
        pub, sub = PATHS[path](TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)
        requested = 0
        sent = 0
        received = 0
        for step in range(40):
            if step % 3 == 0:
                sub.request(2)
                requested += 2
            await settle()
            while pub.pending_demand > sent:
                pub.send_next(sent)
                sent += 1
                await settle()
            while sub._events.items:
                kind, v = sub._events.items.popleft()
                assert kind == "next"
                assert v == received
                received += 1
            assert received <= requested
            assert pub.pending_demand <= requested + SLACK[path] + 1
        assert received == requested  # and everything requested did arrive
        sub.cancel()
        await pub.expect_cancellation()


@pytest.mark.parametrize("extra_buffer", [0, 8])
@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
async def test_in_flight_elements_are_bounded(fast: bool, extra_buffer: int) -> None:
    """A fast source and a slow sink: elements produced but not consumed never exceed
    the buffers on the path (the boundary's 16 plus an optional buffer)."""
    produced = 0
    consumed = 0

    def count_produced(x: int) -> int:
        nonlocal produced
        produced += 1
        return x

    src: Any = Source.repeat(1).map(count_produced)
    if extra_buffer:
        src = src.buffer(extra_buffer, OverflowStrategy.backpressure)
    src = src.async_boundary()
    async with Materializer(fast_paths=fast) as mat:
        probe = src.run_with(TestSink.probe(), mat)
        for _ in range(30):
            await probe.request_next()
            consumed += 1
            await settle()
            in_flight = produced - consumed
            assert 0 <= in_flight <= 16 + extra_buffer + 2, in_flight
        assert produced >= consumed
        probe.cancel()
        await settle()


async def test_fairness_two_busy_streams_and_a_task() -> None:
    counts = {"a": 0, "b": 0}

    def counter(key: str) -> Callable[[int], int]:
        def f(x: int) -> int:
            counts[key] += 1
            return x

        return f

    async with Materializer() as mat:
        ks_a, done_a = (
            Source.repeat(1)
            .map(counter("a"))
            .via_mat(KillSwitches.single(), Keep.right)
            .to_mat(Sink.ignore(), Keep.both)
            .run(mat)
        )
        ks_b, done_b = (
            Source.repeat(1)
            .map(counter("b"))
            .via_mat(KillSwitches.single(), Keep.right)
            .to_mat(Sink.ignore(), Keep.both)
            .run(mat)
        )
        ticks = 0
        seen: list[tuple[int, int]] = []

        async def third() -> None:
            nonlocal ticks
            for _ in range(20):
                ticks += 1
                seen.append((counts["a"], counts["b"]))
                await asyncio.sleep(0)

        await asyncio.wait_for(third(), 10)
        assert ticks == 20
        # both streams kept moving while the third task ran
        assert seen[-1][0] > seen[1][0] and seen[-1][1] > seen[1][1]
        ks_a.shutdown()
        ks_b.shutdown()
        await asyncio.wait_for(asyncio.gather(done_a, done_b), 10)


SINKS: dict[str, Callable[[], Any]] = {
    "seq": Sink.seq,
    "ignore": Sink.ignore,
    "head": Sink.head,
    "last": Sink.last,
    "fold": lambda: Sink.fold(0, lambda a, x: a + x),
    "foreach": lambda: Sink.foreach(lambda x: None),
    "foreach_async": lambda: Sink.foreach_async(2, _ident_async),
}


@pytest.mark.parametrize("boundary", [False, True], ids=["fused", "async"])
@pytest.mark.parametrize("sink", list(SINKS))
async def test_shutdown_fails_sink_futures_with_abrupt_termination(
    sink: str, boundary: bool
) -> None:
    mat = Materializer()
    src: Any = Source.never()
    if boundary:
        src = src.map(lambda x: x).async_boundary()
    fut = src.run_with(SINKS[sink](), mat)
    await settle()
    assert not fut.done()
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await fut
    assert mat.running_tasks == 0


@pytest.mark.parametrize("path", list(PATHS))
async def test_upstream_failure_reaches_sink_with_original_exception(
    materializer: Materializer, path: str
) -> None:
    err = Boom("up")
    src = Source.from_iterable(range(100)).concat(Source.failed(err))
    with pytest.raises(Boom) as info:
        await PATHS[path](src).run_with(Sink.seq(), materializer)
    assert info.value is err


@pytest.mark.parametrize("path", list(PATHS))
async def test_user_failure_upstream_of_boundaries_reaches_sink(
    materializer: Materializer, path: str
) -> None:
    err = Boom("user")

    def f(x: int) -> int:
        if x == 50:
            raise err
        return x

    with pytest.raises(Boom) as info:
        await PATHS[path](Source.from_iterable(range(100)).map(f)).run_with(
            Sink.seq(), materializer
        )
    assert info.value is err


@pytest.mark.parametrize("path", list(PATHS))
async def test_downstream_cancellation_cancels_upstream(
    materializer: Materializer, path: str
) -> None:
    pub, head = PATHS[path](TestSource.probe()).to_mat(Sink.head(), Keep.both).run(materializer)
    await pub.expect_request()
    pub.send_next(7)
    assert await head == 7
    await pub.expect_cancellation()


async def test_cancellation_through_two_boundaries(materializer: Materializer) -> None:
    flow = Flow().map(lambda x: x).async_boundary().map(lambda x: x).async_boundary()
    pub, sub = TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(materializer)
    sub.request(1)
    await pub.expect_request()
    pub.send_next(1)
    await sub.expect_next(1)
    sub.cancel()
    await pub.expect_cancellation()


async def test_slow_sink_backpressures_infinite_source(materializer: Materializer) -> None:
    """An infinite source into a sink that never requests holds no unbounded work."""
    produced = 0

    def f(x: int) -> int:
        nonlocal produced
        produced += 1
        return x

    probe = Source.repeat(1).map(f).run_with(TestSink.probe(), materializer)
    await settle(100)
    assert produced == 0
    probe.request(3)
    await probe.expect_next(1, 1, 1)
    await settle()
    assert produced <= 4
    probe.cancel()
