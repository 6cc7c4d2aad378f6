"""Async boundaries: batched hand-over stays bounded, ordered and per event loop."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from reactive import Materializer, Sink, Source
from reactive.testkit import TestSink


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
async def test_a_filter_between_boundaries_keeps_in_flight_elements_bounded(fast: bool) -> None:
    """The fused chain tops its batches up from the boundary's buffer synchronously; it
    still never holds more than the two buffers on the path (16 each)."""
    produced = 0

    def count(x: int) -> int:
        nonlocal produced
        produced += 1
        return x

    src: Any = (
        Source.from_iterable(range(10**9))
        .map(count)
        .async_boundary()
        .filter(lambda x: x % 3 == 0)
        .async_boundary()
    )
    async with Materializer(fast_paths=fast) as mat:
        probe = src.run_with(TestSink.probe(), mat)
        consumed = 0
        for i in range(40):
            x = await probe.request_next()
            assert x == 3 * i
            consumed = x + 1  # inputs the sink has accounted for
            await settle()
            # the sink's 1 + the second buffer's 16 outputs (3 inputs each, at most) + the
            # first buffer's 16 inputs + 2 in the filter's hands
            assert produced - consumed <= 16 * 3 + 16 + 2 + 2, produced - consumed
        probe.cancel()
        await settle()


async def test_long_chain_of_boundaries_delivers_everything_in_order(
    materializer: Materializer,
) -> None:
    src: Any = Source.from_iterable(range(5_000))
    for k in range(6):
        src = src.map(lambda x, k=k: x + k).filter(lambda x: x % 7 != 3).async_boundary()
    got = await src.run_with(Sink.seq(), materializer)
    expected: list[int] = list(range(5_000))
    for k in range(6):
        expected = [y for y in (x + k for x in expected) if y % 7 != 3]
    assert got == expected


def test_streams_on_two_loops_in_two_threads_do_not_share_scheduling_state() -> None:
    """Islands on one loop run each other inline and defer hand-overs to the outermost
    one; that bookkeeping is per loop, so two threads running streams at once stay
    correct."""
    results: dict[int, Any] = {}

    async def run(i: int) -> list[int]:
        async with Materializer() as mat:
            src: Any = Source.from_iterable(range(20_000)).map(lambda x: x * 2)
            src = src.async_boundary().filter(lambda x: x % 3 == 0).async_boundary()
            out: list[int] = (
                await src.scan(0, lambda a, x: a + x).async_boundary().run_with(Sink.seq(), mat)
            )
            return out

    def worker(i: int) -> None:
        try:
            results[i] = asyncio.run(run(i))
        except BaseException as exc:  # reported below
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = [0]
    for x in range(20_000):
        if (2 * x) % 3 == 0:
            expected.append(expected[-1] + 2 * x)
    assert results == {0: expected, 1: expected}


class _Boom(Exception):
    pass


def _then_fail(k: int) -> Any:
    yield from range(k)
    raise _Boom("after the elements")


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
@pytest.mark.parametrize("k", [1, 3, 20])
@pytest.mark.parametrize("chain", [False, True], ids=["source", "map"])
async def test_elements_taken_before_an_upstream_failure_reach_a_downstream_that_pulled(
    fast: bool, k: int, chain: bool
) -> None:
    """Akka sends every element across an async boundary before the failure that follows
    them: a downstream that asked for them gets them, then the failure. (The boundary's
    input half used to drop the elements it had collected in the island's run when the
    failure came in the same run.) What the output half still buffers beyond the demand
    when the failure arrives is dropped (Akka's input boundary clears its buffer): with
    one element asked for, the probe sees that one and the failure."""

    def source() -> Any:
        src: Any = Source.from_iterable(_then_fail(k))
        return src.map(lambda x: x).async_boundary() if chain else src.async_boundary()

    async with Materializer(fast_paths=fast) as mat:
        probe = source().run_with(TestSink.probe(), mat)
        probe.request(k)
        assert await probe.expect_next_n(k) == list(range(k))
        assert isinstance(await probe.expect_error(), _Boom)

    if k > 16:
        return  # (the boundary asks for 16: the failure waits for more demand)
    async with Materializer(fast_paths=fast) as mat:
        probe = source().run_with(TestSink.probe(), mat)
        probe.request(1)
        assert await probe.expect_next() == 0
        assert isinstance(await probe.expect_error(), _Boom)
