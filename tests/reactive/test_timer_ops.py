"""``Source.tick`` on the manual clock (the time-driven flow operators are in
tests/reactive/ops/test_timer.py). Nothing here depends on wall-clock speed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactive import (
    Keep,
    Materializer,
    Source,
)
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


async def nothing(clock: ManualClock, *probes: SubscriberProbe | PublisherProbe) -> None:
    """Let the loop settle, then check that no probe received anything."""
    await clock.settle()
    for p in probes:
        await p.expect_no_message(0)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


# -- Source.tick ---------------------------------------------------------------------------------
async def test_tick_emits_on_schedule(
    materializer: Materializer, manual_clock: ManualClock
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


async def test_tick_drops_ticks_under_backpressure(
    materializer: Materializer, manual_clock: ManualClock
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
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    sub = Source.tick(1.0, 1.0, 7).take(2).run_with(TestSink.probe(), materializer)
    sub.request(5)
    await manual_clock.advance(2.0)
    await sub.expect_next(7, 7)
    await sub.expect_complete()
    assert manual_clock.pending == 0  # the tick timer stopped with the stage
