"""Akka/Pekko parity fixes found by the "akka" review: each test pins Akka's behaviour
(the source file cited) where this library used to differ."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    BroadcastHub,
    Flow,
    FlowWithContext,
    IllegalGraphError,
    Keep,
    Materializer,
    MaterializerShutdownError,
    PartitionHub,
    RestartSettings,
    RestartSink,
    RestartSource,
    RetryFlow,
    Sink,
    Source,
    SourceWithContext,
    StreamError,
)
from tests.reactive.support import Boom

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


async def test_materializing_after_shutdown_is_an_illegal_state() -> None:
    # Pekko PhasedFusingActorMaterializer.materialize: IllegalStateException("Trying to
    # materialize stream after materializer has been shutdown"). Python's counterpart is a
    # RuntimeError; it stays an IllegalGraphError/ValueError (what it was before).
    mat = Materializer(name="orders")
    await mat.shutdown()
    with pytest.raises(RuntimeError, match="'orders' is shut down") as err:
        Source.single(1).run_with(Sink.seq(), mat)
    assert type(err.value) is MaterializerShutdownError
    assert isinstance(err.value, IllegalGraphError)
    assert isinstance(err.value, ValueError)
    assert isinstance(err.value, StreamError)
    assert "after the materializer has been shut down" in str(err.value)


def _restart_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [
        (r.levelname, r.getMessage())
        for r in caplog.records
        if "restarting the inner stream" in r.getMessage()
    ]


async def _advance_until(clock: ManualClock, fut: Any, seconds: float = 20.0) -> Any:
    for _ in range(int(seconds)):
        if fut.done():
            break
        await clock.advance(1.0)
    return await fut


async def test_restart_after_completion_logs_info_after_failure_warning(
    caplog: pytest.LogCaptureFixture, manual_clock: ManualClock, materializer: Materializer
) -> None:
    # Pekko RestartFlow.scala, RestartWithBackoffLogic.createSubInlet: onUpstreamFinish logs
    # "Restarting stream due to completion" with minLogLevel = InfoLevel (logIt caps the
    # default WARNING at INFO), onUpstreamFailure at the settings' level (WARNING). The
    # restart of a source that completes is its normal operation (polling), not a warning.
    caplog.set_level(logging.INFO, logger="reactive")
    once = RestartSettings(1.0, 1.0, 0.0).with_max_restarts(1, 100.0)
    done = RestartSource.with_backoff(once, lambda: Source.single(1)).run_with(
        Sink.seq(), materializer
    )
    assert await _advance_until(manual_clock, done) == [1, 1]
    assert [lvl for lvl, _ in _restart_records(caplog)] == ["INFO"]
    caplog.clear()
    failing = RestartSource.with_backoff(once, lambda: Source.failed(Boom("inner")))
    with pytest.raises(Boom):
        await _advance_until(manual_clock, failing.run_with(Sink.seq(), materializer))
    [(level, message)] = _restart_records(caplog)
    assert level == "WARNING" and "Boom('inner')" in message


async def test_restart_sink_logs_the_failure_its_inner_sink_cancelled_with(
    caplog: pytest.LogCaptureFixture, manual_clock: ManualClock, materializer: Materializer
) -> None:
    # A RestartSink whose inner sink fails restarts (it cancelled its input with the
    # failure): logged at WARNING naming it; a plain cancellation (take) at INFO.
    caplog.set_level(logging.INFO, logger="reactive")
    once = RestartSettings(1.0, 1.0, 0.0).with_max_restarts(1, 100.0)

    def failing_sink() -> Sink[Any, Any]:
        return Sink.foreach(lambda x: 1 // 0)

    ended = (
        Source.repeat(1)
        .watch_termination(Keep.right)
        .to(RestartSink.with_backoff(once, failing_sink))
        .run(materializer)
    )
    with pytest.raises(ZeroDivisionError):  # restarted once, then gave up: upstream
        await _advance_until(manual_clock, ended)  # is cancelled with the failure
    [(level, message)] = _restart_records(caplog)
    assert level == "WARNING" and "ZeroDivisionError" in message
    caplog.clear()
    take_one = RestartSink.with_backoff(once, lambda: Flow[int]().take(1).to(Sink.ignore()))
    ended = Source.repeat(1).watch_termination(Keep.right).to(take_one).run(materializer)
    await _advance_until(manual_clock, ended)
    assert [lvl for lvl, _ in _restart_records(caplog)] == ["INFO"]


async def test_partition_hub_consumer_info_is_reachable(materializer: Materializer) -> None:
    # Akka: PartitionHub.ConsumerInfo, the type a statefulSink routing function takes
    # (it was only in a private module here).
    seen: list[tuple[bool, int]] = []

    def least_loaded() -> Any:
        def route(info: PartitionHub.ConsumerInfo, x: int) -> int:
            seen.append((isinstance(info, PartitionHub.ConsumerInfo), info.size))
            return min(info.consumer_ids, key=info.queue_size)

        return route

    src = Source.from_iterable(range(4)).run_with(
        PartitionHub.stateful_sink(least_loaded, 1, 8), materializer
    )
    assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2, 3]
    assert seen == [(True, 1)] * 4


def test_restart_settings_copy_methods() -> None:
    # Akka's RestartSettings.withMinBackoff / withMaxBackoff / withRandomFactor: copies,
    # checked like the constructor; max_restarts_within keeps its resolved value.
    base = RestartSettings(1.0, 8.0, 0.2)
    assert base.with_min_backoff(2.0) == RestartSettings(2.0, 8.0, 0.2, None, 1.0)
    assert base.with_max_backoff(16.0).max_backoff == 16.0
    assert base.with_random_factor(0.0).random_factor == 0.0
    with pytest.raises(ValueError, match="max_backoff"):
        base.with_min_backoff(9.0)
    with pytest.raises(ValueError, match="random_factor"):
        base.with_random_factor(-1.0)


async def test_retry_flow_with_backoff_and_context(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    # Pekko RetryFlow.withBackoffAndContext: decide_retry sees (in, ctx_in) and
    # (out, ctx_out) and returns the (in, ctx_in) pair to retry, or None to emit.
    sent: list[tuple[float, int]] = []

    def record(x: int) -> int:
        sent.append((manual_clock.time(), x))
        return x * 2

    inner = FlowWithContext[int, str, int, str, Any]().map(record)

    def decide(given: tuple[int, str], got: tuple[int, str]) -> tuple[int, str] | None:
        return (given[0] + 1, given[1] + "+") if got[0] < 10 else None

    retry = RetryFlow.with_backoff_and_context(1.0, 4.0, 0.0, 3, inner, decide)
    assert isinstance(retry, FlowWithContext)
    done = (
        SourceWithContext.from_tuples(Source.from_iterable([(1, "a"), (7, "b")]))
        .via(retry)
        .as_source()
        .run_with(Sink.seq(), materializer)
    )
    assert await _advance_until(manual_clock, done) == [(8, "a+++"), (14, "b")]
    # retries of 1 after 1, 2 and 4 seconds (3 retries: the last output is emitted)
    assert sent == [(0.0, 1), (1.0, 2), (3.0, 3), (7.0, 4), (7.0, 7)]
    with pytest.raises(TypeError, match="must be a FlowWithContext"):
        RetryFlow.with_backoff_and_context(1.0, 4.0, 0.0, 3, Flow[Any](), decide)  # type: ignore[arg-type]


async def test_broadcast_hub_keeps_unread_elements_for_a_consumer_after_completion(
    materializer: Materializer,
) -> None:
    # A documented difference: Akka's BroadcastHub (Hub.scala, onUpstreamFinish /
    # complete()) stops and drops its buffer when upstream completes with no consumer
    # attached and the buffer not full; here the elements wait for the next consumer.
    hub = Source.from_iterable([1, 2, 3]).run_with(BroadcastHub.sink(8), materializer)
    for _ in range(20):
        await asyncio.sleep(0)
    assert await hub.run_with(Sink.seq(), materializer) == [1, 2, 3]
    assert await hub.run_with(Sink.seq(), materializer) == []  # all read: completes
