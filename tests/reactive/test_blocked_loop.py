"""A stage blocking the event loop is detected and named, once (issue 12 item 6).

Time is a test clock that moves only when a user function "blocks" (``clock.block``),
so every duration the materializer measures is exact: no sleeps, no assertions on
speed.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Materializer, OverflowStrategy, QueueOfferResult, Sink, Source

if TYPE_CHECKING:
    from collections.abc import Callable


class BlockingClock:
    """A materializer clock that moves only when ``block(seconds)`` is called (as a
    synchronous call taking that long would); timers are not used by these streams."""

    def __init__(self) -> None:
        self.now = 0.0

    def time(self) -> float:
        return self.now

    def block(self, seconds: float) -> None:
        self.now += seconds

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return loop.call_later(max(0.0, when - self.now), callback, *args)


def blocking(clock: BlockingClock, seconds: float) -> Callable[[int], int]:
    def work(x: int) -> int:
        clock.block(seconds)
        return x

    return work


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "reactive" and r.levelno == logging.WARNING
    ]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="reactive")


async def offer_all(queue: Any, elements: list[int]) -> None:
    for x in elements:
        assert await queue.offer(x) is QueueOfferResult.enqueued
        for _ in range(5):
            await asyncio.sleep(0)


async def test_the_stage_blocking_the_loop_is_named_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        queue, result = (
            Source.queue(4, OverflowStrategy.backpressure)
            .map(blocking(clock, 0.6))
            .named("parse")
            .to_mat(Sink.seq(), lambda q, r: (q, r))
            .run(mat)
        )
        # Each offer runs the island inline: a run of 0.6 s > 0.5 s.
        await offer_all(queue, [1])
        assert warnings_of(caplog) == []  # the first slow run starts the diagnosis
        await offer_all(queue, [2, 3, 4, 5])
        queue.complete()
        assert await result == [1, 2, 3, 4, 5]  # nothing changed for the stream
    messages = warnings_of(caplog)
    assert len(messages) == 1
    message = messages[0]
    assert message.startswith("[parse] blocks the event loop")
    assert "held the loop for 0.600 s (blocking_threshold=0.5 s)" in message
    assert "asyncio.to_thread" in message and "map_async" in message


async def test_runs_under_the_threshold_do_not_warn(caplog: pytest.LogCaptureFixture) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        queue, result = (
            Source.queue(4, OverflowStrategy.backpressure)
            .map(blocking(clock, 0.4))
            .to_mat(Sink.seq(), lambda q, r: (q, r))
            .run(mat)
        )
        await offer_all(queue, [1, 2, 3, 4, 5, 6])
        queue.complete()
        assert await result == [1, 2, 3, 4, 5, 6]
    assert clock.now == pytest.approx(2.4)  # 2.4 s blocked in all, never 0.5 s at once
    assert warnings_of(caplog) == []


async def test_none_turns_the_check_off(caplog: pytest.LogCaptureFixture) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=None) as mat:
        result = Source.from_iterable(range(3)).map(blocking(clock, 5.0)).run_with(Sink.seq(), mat)
        assert await result == [0, 1, 2]
    assert warnings_of(caplog) == []


async def test_the_blocking_stage_is_found_across_islands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The slow stage runs in the downstream island, nested inline in the upstream
    # island's run: its time is not blamed on the boundary or the fast stage.
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        queue, result = (
            Source.queue(4, OverflowStrategy.backpressure)
            .map(blocking(clock, 0.01))
            .named("fast")
            .async_boundary()
            .map(blocking(clock, 0.7))
            .named("slow")
            .to_mat(Sink.seq(), lambda q, r: (q, r))
            .run(mat)
        )
        await offer_all(queue, list(range(8)))
        queue.complete()
        assert await result == list(range(8))
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert messages[0].startswith("[slow] blocks the event loop")


async def test_a_stream_ending_in_its_slow_run_names_its_stages(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        result = (
            Source.from_iterable([1, 2, 3])
            .map(blocking(clock, 0.3))
            .named("parse")
            .run_with(Sink.seq(), mat)
        )
        assert await result == [1, 2, 3]
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert messages[0].startswith("[")
    assert "parse" in messages[0].split("]")[0]
    assert "held the loop for 0.900 s" in messages[0]


async def test_each_materializer_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        for _ in range(3):
            await Source.single(1).map(blocking(clock, 1.0)).run_with(Sink.seq(), mat)
        assert len(warnings_of(caplog)) == 1
    async with Materializer(clock=clock, blocking_threshold=0.5) as other:
        await Source.single(1).map(blocking(clock, 1.0)).run_with(Sink.seq(), other)
    assert len(warnings_of(caplog)) == 2


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
async def test_the_threshold_must_be_positive(bad: float) -> None:
    with pytest.raises(ValueError, match="blocking_threshold must be > 0 seconds or None"):
        Materializer(blocking_threshold=bad)


async def test_a_slow_upstream_island_driven_by_downstream_demand_is_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Each pull of the sink queue runs the downstream island, whose demand lets the
    # upstream island run its slow stage: that stage is named, not the one that asked.
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        queue = (
            Source.repeat(1)
            .map(blocking(clock, 0.2))
            .named("slow")
            .async_boundary()
            .run_with(Sink.queue(), mat)
        )
        assert [await queue.pull() for _ in range(40)] == [1] * 40
    messages = warnings_of(caplog)
    assert len(messages) == 1
    assert messages[0].startswith("[slow] blocks the event loop"), messages[0]


async def test_the_threshold_is_an_attribute_read_when_a_stream_starts(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock) as mat:
        assert mat.blocking_threshold == 1.0  # the default
        await Source.single(1).map(blocking(clock, 0.9)).run_with(Sink.seq(), mat)
        assert warnings_of(caplog) == []
        mat.blocking_threshold = None
        await Source.single(1).map(blocking(clock, 5.0)).run_with(Sink.seq(), mat)
        assert warnings_of(caplog) == []
        mat.blocking_threshold = 0.5
        await Source.single(1).map(blocking(clock, 0.9)).run_with(Sink.seq(), mat)
    assert len(warnings_of(caplog)) == 1
