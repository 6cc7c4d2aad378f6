"""Review 3: hubs, kill switches, restarts and event-time windows in cases no other test
covered, checked against Akka/Pekko semantics (and API.md's "Event-time windows"). They
pass; each asserts exact values so it can fail."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    BroadcastHub,
    Flow,
    Keep,
    KillSwitches,
    Materializer,
    MergeHub,
    PartitionHub,
    RestartFlow,
    RestartSettings,
    Sink,
    SlidingWindows,
    Source,
    Windowed,
)
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.reactive.support import settle


# -- hubs -------------------------------------------------------------------------------------
async def test_partition_hub_consumer_leaving_mid_stream_drops_its_queue_only(
    materializer: Materializer,
) -> None:
    """Akka's PartitionHub: a consumer that cancels is removed and the elements queued
    for it are dropped; the hub goes on routing over the consumers left (the
    partitioner sees their number), without stalling on the dropped queue."""
    pub, src = (
        TestSource.probe()
        .to_mat(PartitionHub.sink(lambda n, e: e % n, 2, buffer_size=4), Keep.both)
        .run(materializer)
    )
    a = src.run_with(TestSink.probe(), materializer)
    b = src.run_with(TestSink.probe(), materializer)
    a.request(100)
    b.request(1)
    await settle()
    for i in range(6):
        await pub.expect_request()
        pub.send_next(i)
    await a.expect_next(0, 2, 4)
    await b.expect_next(1)  # 3 and 5 stay queued for b
    b.cancel()
    await settle()
    for i in range(6, 9):  # one consumer left: every element goes to a
        await pub.expect_request()
        pub.send_next(i)
    await a.expect_next(6, 7, 8)
    pub.send_complete()
    await a.expect_complete()


async def test_broadcast_hub_slowest_consumer_leaving_unblocks_and_late_joiner_sees_what_follows(
    materializer: Materializer,
) -> None:
    """Akka's BroadcastHub: the slowest consumer holds the hub back once the fastest is
    ``buffer_size`` ahead; when it cancels, the hub goes on, and a consumer attaching
    afterwards starts at the next element (the ones every consumer read are gone)."""
    pub, src = TestSource.probe().to_mat(BroadcastHub.sink(2), Keep.both).run(materializer)
    fast = src.run_with(TestSink.probe(), materializer)
    slow = src.run_with(TestSink.probe(), materializer)
    fast.request(100)
    await settle()
    for i in range(2):
        await pub.expect_request()
        pub.send_next(i)
    await fast.expect_next(0, 1)
    await pub.expect_no_message(0.02)  # slow read nothing: the buffer of 2 is full
    slow.cancel()
    for i in range(2, 6):
        await pub.expect_request()
        pub.send_next(i)
    await fast.expect_next(2, 3, 4, 5)
    late = src.run_with(TestSink.probe(), materializer)
    late.request(10)
    await settle()
    await pub.expect_request()
    pub.send_next(6)
    await late.expect_next(6)
    await fast.expect_next(6)
    pub.send_complete()
    await fast.expect_complete()
    await late.expect_complete()


async def test_shared_kill_switch_abort_reaches_a_merge_hub_and_cancels_its_producers(
    materializer: Materializer,
) -> None:
    """A shared kill switch behind a MergeHub: aborting fails the hub's stream with the
    exception, and every attached producer is cancelled (Akka: the hub's consumer
    cancelling cancels the current producers)."""
    switch = KillSwitches.shared("review3")
    sink, out = (
        MergeHub.source(4).via(switch.flow()).to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    producers = [TestSource.probe().to(sink).run(materializer) for _ in range(2)]
    for p in producers:
        await p.expect_request()
        p.send_next(1)
    await settle()
    switch.abort(KeyError("stop"))
    with pytest.raises(KeyError, match="stop"):
        await out
    for p in producers:
        await p.expect_cancellation()


# -- restarts ---------------------------------------------------------------------------------
class _Starts:
    """Counts the factory's calls and when they happened."""

    def __init__(self, clock: ManualClock, make: Any) -> None:
        self.clock = clock
        self.make = make
        self.at: list[float] = []

    def __call__(self) -> Any:
        self.at.append(self.clock.time())
        return self.make()


async def test_restart_flow_backoff_doubles_while_the_inner_flow_keeps_completing(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    """RestartFlow.with_backoff over an inner flow that completes at once (take(1)): the
    inner output's completion and the inner input's cancellation are one restart, not
    two, so the delays are min_backoff * 2**k: starts at 0, 1, 3, 7 (Akka's
    RestartWithBackoffLogic)."""
    starts = _Starts(manual_clock, lambda: Flow().take(1))
    settings = RestartSettings(1.0, 8.0, 0.0, max_restarts_within=100.0)
    sub = (
        Source.repeat("x")
        .via(RestartFlow.with_backoff(settings, starts))
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(100)
    for _ in range(16):
        await manual_clock.advance(0.5)
    assert starts.at == [0.0, 1.0, 3.0, 7.0]
    sub.cancel()


async def test_restart_flow_upstream_completion_lets_the_inner_flow_finish_without_restart(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    """Akka: when the wrapper's upstream completes, the inner flow's input completes and
    its output (a fold's single result) still goes out; that completion ends the wrapper
    (finishing), it does not restart."""
    starts = _Starts(manual_clock, lambda: Flow().fold(0, lambda a, b: a + b))
    settings = RestartSettings(1.0, 8.0, 0.0)
    out = Source.from_iterable([1, 2, 3]).via(RestartFlow.with_backoff(settings, starts))
    assert await out.run_with(Sink.seq(), materializer) == [6]
    await manual_clock.advance(10.0)
    assert starts.at == [0.0]


# -- windows ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grace", "idle", "quiet", "closes_at"),
    [
        # threshold 10 + 1 = 11; stream time 10 + c from clock c >= idle 2: > 11 already
        # when the input turns idle, so the window closes at clock 2 exactly
        (1, 2, 1.999, 2.0),
        # threshold 10 + 4 = 14; 10 + c > 14 first holds just after clock 4
        (4, 1, 4.0, 4.001),
    ],
)
async def test_idle_timeout_closes_sliding_windows_on_the_strict_rule(
    manual_clock: ManualClock,
    materializer: Materializer,
    grace: float,
    idle: float,
    quiet: float,
    closes_at: float,
) -> None:
    """API.md: a sliding window ``[t - size, t]`` closes when stream time > ``t + grace``;
    with ``idle_timeout`` stream time is ``max_timestamp + (now - last arrival)`` once
    the input was quiet that long, and the window closes at the clock instant the
    formula passes its threshold."""
    pub, sub = (
        TestSource.probe()
        .windowed(SlidingWindows.of(5).grace(grace), timestamp=lambda e: e, idle_timeout=idle)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(10)
    pub.send_next(10)
    await manual_clock.advance(quiet)
    await sub.expect_no_message(0)
    await manual_clock.advance(closes_at - quiet)
    assert await sub.expect_next() == Windowed(None, 5, 10, [10])
    pub.send_complete()
    await sub.expect_complete()
    await asyncio.sleep(0)
