"""Time-driven operators on the manual clock: throttle, grouped_within, delays, windows,
timeouts, keep_alive and Source.tick. Nothing here depends on wall-clock speed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    Keep,
    Materializer,
    OverflowStrategy,
    RateExceededError,
    Sink,
    Source,
    StreamTimeoutError,
    ThrottleMode,
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


# -- throttle -----------------------------------------------------------------------------------
async def test_throttle_shapes_to_rate(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    sub = Source.from_iterable(range(4)).throttle(1, 1.0).run_with(TestSink.probe(), materializer)
    sub.request(10)
    await sub.expect_next(0)  # the bucket starts full (burst 1)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.5)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.5)
    await sub.expect_next(1)
    await manual_clock.advance(1.0)
    await sub.expect_next(2)
    await manual_clock.advance(0.99)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.01)
    await sub.expect_next(3)
    await sub.expect_complete()


async def test_throttle_burst_then_rate(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    sub = (
        Source.from_iterable(range(6))
        .throttle(2, 1.0, maximum_burst=3)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(10)
    await sub.expect_next(0, 1, 2)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.5)
    await sub.expect_next(3)
    await manual_clock.advance(0.5)
    await sub.expect_next(4)
    await manual_clock.advance(0.5)
    await sub.expect_next(5)
    await sub.expect_complete()


async def test_throttle_bucket_refills_up_to_burst(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.throttle(1, 1.0, maximum_burst=2), materializer)
    sub.request(10)
    await manual_clock.advance(10.0)  # idle: the bucket holds 2 tokens, not 10
    for x in "abc":
        pub.send_next(x)
    await sub.expect_next("a", "b")
    await nothing(manual_clock, sub)
    await manual_clock.advance(1.0)
    await sub.expect_next("c")
    pub.send_complete()
    await sub.expect_complete()


async def test_throttle_implicit_burst_is_tokens_per_100ms(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    # 100 per second: a token every 10 ms, so the implicit burst is 10
    sub = (
        Source.from_iterable(range(12)).throttle(100, 1.0).run_with(TestSink.probe(), materializer)
    )
    sub.request(20)
    assert await sub.expect_next_n(10) == list(range(10))
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.01)
    await sub.expect_next(10)
    await manual_clock.advance(0.01)
    await sub.expect_next(11)
    await sub.expect_complete()


async def test_throttle_cost_function(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    sub = (
        Source.from_iterable(["ab", "cd", "e"])
        .throttle(2, 1.0, maximum_burst=2, cost=len)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(10)
    await sub.expect_next("ab")
    await nothing(manual_clock, sub)
    await manual_clock.advance(1.0)
    await sub.expect_next("cd")
    await manual_clock.advance(0.5)
    await sub.expect_next("e")
    await sub.expect_complete()


async def test_throttle_enforcing_fails_when_rate_exceeded(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(
        lambda s: s.throttle(1, 1.0, maximum_burst=1, mode=ThrottleMode.enforcing), materializer
    )
    sub.request(10)
    pub.send_next(1)
    await sub.expect_next(1)
    await manual_clock.advance(1.0)
    pub.send_next(2)  # in time: passes
    await sub.expect_next(2)
    pub.send_next(3)  # too early
    exc = await sub.expect_error()
    assert isinstance(exc, RateExceededError)
    assert "throttle" in str(exc)
    await pub.expect_cancellation()


async def test_throttle_completes_after_the_waiting_element(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.throttle(1, 1.0), materializer)
    sub.request(10)
    pub.send_next(1).send_next(2).send_complete()
    await sub.expect_next(1)
    await nothing(manual_clock, sub)
    await manual_clock.advance(1.0)
    await sub.expect_next(2)
    await sub.expect_complete()


async def test_throttle_failure_and_cancellation(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.throttle(1, 1.0), materializer)
    sub.request(1)
    pub.send_error(ValueError("up"))
    assert isinstance(await sub.expect_error(), ValueError)

    pub, sub = probes(lambda s: s.throttle(1, 1.0), materializer)
    sub.cancel()
    await pub.expect_cancellation()


def test_throttle_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        Source.empty().throttle(0, 1.0)
    with pytest.raises(ValueError):
        Source.empty().throttle(1, 0)
    with pytest.raises(ValueError):  # -1 is "automatic" (as Akka); 0 is legal, also enforcing
        Source.empty().throttle(1, 1.0, maximum_burst=-2, mode=ThrottleMode.enforcing)
    with pytest.raises(TypeError):
        Source.empty().throttle(1, 1.0, mode="shaping")


# -- grouped_within ------------------------------------------------------------------------------
async def test_grouped_within_by_count(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = (
        await Source.from_iterable(range(5))
        .grouped_within(2, 10.0)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [[0, 1], [2, 3], [4]]


async def test_grouped_within_emits_on_timer_only_if_non_empty(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(10, 1.0), materializer)
    sub.request(10)
    pub.send_next(1).send_next(2)
    await nothing(manual_clock, sub)
    await manual_clock.advance(1.0)
    await sub.expect_next([1, 2])
    await manual_clock.advance(1.0)  # empty group: nothing
    await nothing(manual_clock, sub)
    pub.send_next(3)
    await manual_clock.advance(1.0)
    await sub.expect_next([3])
    pub.send_complete()
    await sub.expect_complete()


async def test_grouped_within_count_restarts_the_timer(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(2, 1.0), materializer)
    sub.request(10)
    await manual_clock.advance(0.6)
    pub.send_next(1).send_next(2)
    await sub.expect_next([1, 2])  # closed by count at t=0.6: next tick at 1.6
    pub.send_next(3)
    await manual_clock.advance(0.6)  # t=1.2: the old schedule would have fired at 1.0
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.4)
    await sub.expect_next([3])
    pub.send_complete()
    await sub.expect_complete()


async def test_grouped_within_keeps_filling_while_backpressured(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(3, 1.0), materializer)
    pub.send_next(1)
    await manual_clock.advance(1.0)  # timer fires without demand: the group stays open
    pub.send_next(2).send_next(3).send_next(4)
    await manual_clock.advance(1.0)
    sub.request(1)
    await sub.expect_next([1, 2, 3])
    await nothing(manual_clock, sub)
    sub.request(1)
    await manual_clock.advance(1.0)
    await sub.expect_next([4])
    pub.send_complete()
    await sub.expect_complete()


async def test_grouped_within_backpressures_when_group_is_full(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(2, 1.0), materializer)
    assert await pub.expect_request() == 1
    pub.send_next(1)
    assert await pub.expect_request() == 1
    pub.send_next(2)
    assert await pub.expect_request() == 1  # full group, no demand: one more is held (n + 1)
    pub.send_next(3)
    await nothing(manual_clock, pub)  # then upstream is back-pressured
    sub.request(1)
    await sub.expect_next([1, 2])
    assert await pub.expect_request() == 1  # 3 started the next group
    sub.cancel()
    await pub.expect_cancellation()


async def test_grouped_within_final_group_and_failure(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(5, 1.0), materializer)
    pub.send_next(1).send_next(2).send_complete()
    await nothing(manual_clock, sub)
    sub.request(1)
    await sub.expect_next([1, 2])
    await sub.expect_complete()

    pub, sub = probes(lambda s: s.grouped_within(5, 1.0), materializer)
    sub.request(1)
    pub.send_next(1).send_error(ValueError("up"))
    assert isinstance(await sub.expect_error(), ValueError)


# -- delay ---------------------------------------------------------------------------------------
async def test_delay_holds_each_element(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.delay(1.0), materializer)
    sub.request(10)
    pub.send_next(1)
    await manual_clock.advance(0.5)
    pub.send_next(2)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.5)
    await sub.expect_next(1)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.5)
    await sub.expect_next(2)
    pub.send_complete()
    await sub.expect_complete()


async def test_delay_completes_after_buffer_drained(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    sub = Source.from_iterable([1, 2, 3]).delay(2.0).run_with(TestSink.probe(), materializer)
    sub.request(10)
    await manual_clock.advance(1.9)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.1)
    await sub.expect_next(1, 2, 3)
    await sub.expect_complete()


async def test_delay_emits_due_element_when_downstream_pulls_late(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.delay(1.0), materializer)
    pub.send_next(1).send_next(2)
    await manual_clock.advance(5.0)
    sub.request(1)
    await sub.expect_next(1)
    await nothing(manual_clock, sub)
    sub.request(1)
    await sub.expect_next(2)
    sub.cancel()
    await pub.expect_cancellation()


async def test_delay_backpressures_when_buffer_full(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.delay(1.0, buffer_size=2), materializer)
    sub.request(10)
    assert await pub.expect_request() == 1
    pub.send_next(1)
    assert await pub.expect_request() == 1
    pub.send_next(2)
    await nothing(manual_clock, pub)
    await manual_clock.advance(1.0)
    await sub.expect_next(1, 2)
    assert await pub.expect_request() == 1
    pub.send_complete()
    await sub.expect_complete()


async def test_delay_overflow_strategies(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(
        lambda s: s.delay(1.0, OverflowStrategy.drop_head, buffer_size=2), materializer
    )
    sub.request(10)
    pub.send_next(1).send_next(2).send_next(3).send_complete()
    await manual_clock.advance(1.0)
    await sub.expect_next(2, 3)
    await sub.expect_complete()

    pub, sub = probes(lambda s: s.delay(1.0, OverflowStrategy.fail, buffer_size=1), materializer)
    sub.request(10)
    pub.send_next(1).send_next(2)
    assert "buffer overflow" in str(await sub.expect_error())
    await pub.expect_cancellation()


async def test_delay_fails_at_once_on_upstream_failure(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.delay(1.0), materializer)
    sub.request(10)
    pub.send_next(1).send_error(ValueError("up"))
    assert isinstance(await sub.expect_error(), ValueError)


async def test_initial_delay(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.initial_delay(2.0), materializer)
    sub.request(10)
    await nothing(manual_clock, pub, sub)  # upstream is not even pulled
    await manual_clock.advance(2.0)
    assert await pub.expect_request() == 1
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_next(2)  # later elements are not delayed
    await sub.expect_next(2)
    pub.send_complete()
    await sub.expect_complete()


# -- time windows --------------------------------------------------------------------------------
async def test_take_within(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.take_within(1.0), materializer)
    sub.request(10)
    pub.send_next(1)
    await sub.expect_next(1)
    await manual_clock.advance(1.0)
    await sub.expect_complete()
    await pub.expect_cancellation()


async def test_take_within_completes_with_upstream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = await Source.from_iterable([1, 2]).take_within(1.0).run_with(Sink.seq(), materializer)
    assert out == [1, 2]


async def test_drop_within(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.drop_within(1.0), materializer)
    sub.request(10)
    pub.send_next(1)
    await nothing(manual_clock, sub)
    await manual_clock.advance(1.0)
    pub.send_next(2)
    await sub.expect_next(2)
    pub.send_error(ValueError("up"))
    assert isinstance(await sub.expect_error(), ValueError)


# -- timeouts ------------------------------------------------------------------------------------
async def test_idle_timeout(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.idle_timeout(1.0), materializer)
    sub.request(10)
    pub.send_next(1)
    await sub.expect_next(1)
    await manual_clock.advance(0.75)
    pub.send_next(2)  # resets the deadline to 1.75
    await sub.expect_next(2)
    await manual_clock.advance(0.875)  # t = 1.625
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.5)  # t = 2.125
    exc = await sub.expect_error()
    assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)
    assert "idle timeout" in str(exc) and "1 s" in str(exc)
    await pub.expect_cancellation()


async def test_idle_timeout_passes_a_completing_stream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = await Source.from_iterable([1, 2]).idle_timeout(1.0).run_with(Sink.seq(), materializer)
    assert out == [1, 2]


async def test_completion_timeout(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.completion_timeout(2.0), materializer)
    sub.request(10)
    pub.send_next(1)
    await sub.expect_next(1)
    await manual_clock.advance(1.9)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.1)
    exc = await sub.expect_error()
    assert isinstance(exc, StreamTimeoutError)
    assert "completion timeout" in str(exc)
    await pub.expect_cancellation()

    pub, sub = probes(lambda s: s.completion_timeout(2.0), materializer)
    sub.request(10)
    pub.send_complete()
    await sub.expect_complete()
    await manual_clock.advance(3.0)  # the timer died with the stage
    await nothing(manual_clock, sub)


async def test_initial_timeout(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.initial_timeout(1.0), materializer)
    sub.request(10)
    await manual_clock.advance(1.0)
    exc = await sub.expect_error()
    assert isinstance(exc, StreamTimeoutError)
    assert "initial timeout" in str(exc)
    await pub.expect_cancellation()

    pub, sub = probes(lambda s: s.initial_timeout(1.0), materializer)
    sub.request(10)
    pub.send_next(1)
    await sub.expect_next(1)
    await manual_clock.advance(5.0)
    await nothing(manual_clock, sub)
    pub.send_complete()
    await sub.expect_complete()


async def test_backpressure_timeout(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.backpressure_timeout(1.0), materializer)
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    await manual_clock.advance(0.75)
    sub.request(1)  # demand in time
    await manual_clock.advance(2.0)  # waiting for upstream is no back pressure
    await nothing(manual_clock, sub)
    pub.send_next(2)
    await sub.expect_next(2)
    await manual_clock.advance(1.25)  # no demand for > 1 s after the emission
    exc = await sub.expect_error()
    assert isinstance(exc, StreamTimeoutError)
    assert "backpressure timeout" in str(exc)
    await pub.expect_cancellation()


# -- keep_alive ----------------------------------------------------------------------------------
async def test_keep_alive_injects_when_idle(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.keep_alive(1.0, lambda: "ka"), materializer)
    sub.request(1)
    await manual_clock.advance(0.9)
    await nothing(manual_clock, sub)
    await manual_clock.advance(0.1)
    await sub.expect_next("ka")
    sub.request(1)
    pub.send_next("x")  # upstream elements pass at once
    await sub.expect_next("x")
    pub.send_complete()
    await sub.expect_complete()


async def test_keep_alive_does_not_accumulate_and_prefers_upstream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.keep_alive(1.0, lambda: "ka"), materializer)
    await manual_clock.advance(5.0)  # idle without demand: nothing is queued up
    sub.request(1)
    await sub.expect_next("ka")  # the idle period already elapsed: inject now
    sub.request(1)
    await nothing(manual_clock, sub)
    await manual_clock.advance(1.0)
    await sub.expect_next("ka")
    pub.send_next("x")  # waits for demand; preferred over an injection
    await manual_clock.advance(3.0)
    sub.request(1)
    await sub.expect_next("x")
    sub.cancel()
    await pub.expect_cancellation()


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
