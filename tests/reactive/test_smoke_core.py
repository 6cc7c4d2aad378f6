"""End-to-end checks of the core runtime through the public API."""

from __future__ import annotations

import asyncio
import operator

import pytest

from reactive import (
    AbruptTerminationError,
    Flow,
    Keep,
    Materializer,
    NoSuchElementError,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource


async def test_factorials(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(range(1, 11))
        .scan(1, operator.mul)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 1, 2, 6, 24, 120, 720, 5040, 40320, 362880, 3628800]


async def test_long_chain_builds_and_runs(materializer: Materializer) -> None:
    src = Source.from_iterable(range(3))
    for _ in range(10_000):
        src = src.map(lambda x: x + 1)
    assert await src.run_with(Sink.seq(), materializer) == [10_000, 10_001, 10_002]


async def test_probe_demand(materializer: Materializer) -> None:
    probe = (
        Source.from_iterable(range(5)).map(lambda x: x * 2).run_with(TestSink.probe(), materializer)
    )
    probe.request(2)
    await probe.expect_next(0, 2)
    await probe.expect_no_message(0.05)
    probe.request(10)
    await probe.expect_next(4, 6, 8)
    await probe.expect_complete()


async def test_publisher_probe_cancellation(materializer: Materializer) -> None:
    pub, sub = TestSource.probe().take(1).to_mat(TestSink.probe(), Keep.both).run(materializer)
    sub.request(5)
    assert await pub.expect_request() == 1
    pub.send_next("a")
    await sub.expect_next("a")
    await sub.expect_complete()
    await pub.expect_cancellation()


async def test_user_function_failure_fails_materialized_value(materializer: Materializer) -> None:
    def boom(x: int) -> int:
        raise ValueError(f"bad {x}")

    with pytest.raises(ValueError, match="bad 0"):
        await Source.from_iterable(range(3)).map(boom).run_with(Sink.seq(), materializer)


async def test_head_of_empty(materializer: Materializer) -> None:
    with pytest.raises(NoSuchElementError):
        await Source.empty().run_with(Sink.head(), materializer)


async def test_shutdown_aborts_running_streams() -> None:
    async with Materializer() as mat:
        fut = Source.never().run_with(Sink.ignore(), mat)
        await asyncio.sleep(0)
    with pytest.raises(AbruptTerminationError):
        await fut


async def test_async_boundaries_keep_order(materializer: Materializer) -> None:
    flow = Flow().map(lambda x: x + 1).async_boundary().filter(lambda x: x % 2 == 0)
    out = (
        await Source.from_iterable(range(1000))
        .via(flow)
        .async_boundary()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [x + 1 for x in range(1000) if (x + 1) % 2 == 0]
