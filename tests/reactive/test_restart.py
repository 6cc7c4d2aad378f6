"""RestartSource / RestartFlow / RestartSink with backoff, on the manual clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    Flow,
    Keep,
    Materializer,
    RestartFlow,
    RestartSettings,
    RestartSink,
    RestartSource,
    Sink,
    Source,
)
from reactive.testkit import ManualClock, TestSink, TestSource


class Boom(Exception):
    pass


async def until(cond: Any, rounds: int = 200) -> None:
    for _ in range(rounds):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


class Factory:
    """Counts how often the wrapper asked for a new inner graph, and when."""

    def __init__(self, clock: ManualClock, make: Any) -> None:
        self.clock = clock
        self.make = make
        self.starts: list[float] = []

    def __call__(self) -> Any:
        self.starts.append(self.clock.time())
        return self.make(len(self.starts))


def settings(min_b: float = 1.0, max_b: float = 8.0, **kw: Any) -> RestartSettings:
    return RestartSettings(min_b, max_b, 0.0, **kw)


# -- settings -----------------------------------------------------------------------------------
def test_settings_defaults_and_validation() -> None:
    s = RestartSettings(0.5, 4.0, 0.2)
    assert s.max_restarts is None
    assert s.max_restarts_within == 0.5  # defaults to min_backoff, as in Akka
    s2 = s.with_max_restarts(3, 10.0)
    assert (s2.max_restarts, s2.max_restarts_within) == (3, 10.0)
    assert s.max_restarts is None  # immutable
    with pytest.raises(ValueError):
        RestartSettings(2.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        RestartSettings(1.0, 2.0, -0.1)


def test_backoff_grows_and_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    s = RestartSettings(1.0, 5.0, 0.0)
    assert [s.backoff(k) for k in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    import reactive._ops.restart as restart_mod

    monkeypatch.setattr(restart_mod.random, "random", lambda: 0.5)
    jittered = RestartSettings(1.0, 5.0, 0.2)
    assert jittered.backoff(1) == pytest.approx(2.0 * 1.1)
    assert jittered.backoff(10) == pytest.approx(5.0 * 1.1)


# -- RestartSource ------------------------------------------------------------------------------
async def test_source_restarts_on_completion_with_growing_backoff(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Source.from_iterable([n, n]))
    sub = RestartSource.with_backoff(settings(), factory).run_with(TestSink.probe(), materializer)
    sub.request(100)
    await sub.expect_next(1, 1)
    await manual_clock.advance(0.9)
    assert factory.starts == [0.0]
    await manual_clock.advance(0.1)
    await sub.expect_next(2, 2)
    # Restarted within max_restarts_within of the last start: the next delay doubles.
    await manual_clock.advance(1.9)
    assert len(factory.starts) == 2
    await manual_clock.advance(0.1)
    await sub.expect_next(3, 3)
    await manual_clock.advance(4.0)
    await sub.expect_next(4, 4)
    assert factory.starts == [0.0, 1.0, 3.0, 7.0]
    sub.cancel()
    await manual_clock.advance(100.0)
    assert len(factory.starts) == 4  # a cancelled wrapper never restarts


async def test_source_restart_counter_resets_after_quiet_period(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    probes: list[Any] = []
    factory = Factory(
        manual_clock,
        lambda n: TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p),
    )
    sub = RestartSource.with_backoff(settings(), factory).run_with(TestSink.probe(), materializer)
    sub.request(100)
    await until(lambda: len(probes) == 1)
    probes[0].send_error(Boom("1"))
    await manual_clock.advance(1.0)
    await until(lambda: len(probes) == 2)
    probes[1].send_error(Boom("2"))  # at t=1, within 1 s of the last start: backoff 2
    await manual_clock.advance(2.0)
    await until(lambda: len(probes) == 3)
    assert factory.starts == [0.0, 1.0, 3.0]
    await manual_clock.advance(5.0)  # the inner stream survives longer than 1 s
    probes[2].send_next("alive")
    await sub.expect_next("alive")
    probes[2].send_error(Boom("3"))
    await manual_clock.advance(1.0)  # counter reset: min_backoff again
    await until(lambda: len(probes) == 4)
    assert factory.starts == [0.0, 1.0, 3.0, 9.0]
    sub.cancel()
    await probes[3].expect_cancellation()


async def test_source_max_restarts_fails_with_inner_error(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Source.failed(Boom(f"attempt {n}")))
    s = settings().with_max_restarts(2, 100.0)
    fut = RestartSource.with_backoff(s, factory).run_with(Sink.seq(), materializer)
    await manual_clock.advance(1.0)
    await manual_clock.advance(2.0)
    with pytest.raises(Boom, match="attempt 3"):
        await fut
    assert factory.starts == [0.0, 1.0, 3.0]


async def test_source_max_restarts_completes_after_completion(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Source.single(n))
    s = settings().with_max_restarts(1, 100.0)
    fut = RestartSource.with_backoff(s, factory).run_with(Sink.seq(), materializer)
    await manual_clock.advance(1.0)
    assert await fut == [1, 2]


async def test_source_on_failures_completes_with_inner(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    def make(n: int) -> Any:
        if n < 3:
            return Source.from_iterable([n, -1]).map(failing_on(-1)).map(lambda x: x // 10)
        return Source.single(n)

    factory = Factory(manual_clock, make)
    fut = RestartSource.on_failures_with_backoff(settings(), factory).run_with(
        Sink.seq(), materializer
    )
    await manual_clock.advance(1.0)
    await manual_clock.advance(2.0)
    assert await fut == [1, 2, 3]
    assert factory.starts == [0.0, 1.0, 3.0]


async def test_source_restart_on_predicate(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    def make(n: int) -> Any:
        return Source.failed(Boom("retry") if n == 1 else KeyError("fatal"))

    factory = Factory(manual_clock, make)
    s = settings(restart_on=lambda e: isinstance(e, Boom))
    fut = RestartSource.with_backoff(s, factory).run_with(Sink.seq(), materializer)
    await manual_clock.advance(1.0)
    with pytest.raises(KeyError, match="fatal"):
        await fut
    assert len(factory.starts) == 2


async def test_source_factory_raising_counts_as_failure(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    def make(n: int) -> Any:
        if n == 1:
            raise Boom("factory")
        return Source.single("ok")

    factory = Factory(manual_clock, make)
    fut = RestartSource.on_failures_with_backoff(settings(), factory).run_with(
        Sink.seq(), materializer
    )
    await manual_clock.advance(1.0)
    assert await fut == ["ok"]


# -- RestartFlow ---------------------------------------------------------------------------------
def failing_on(bad: Any) -> Any:
    def f(x: Any) -> Any:
        if x == bad:
            raise Boom(f"bad {x}")
        return x * 10

    return f


async def test_flow_restarts_after_failure(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Flow().map(failing_on(3)))
    up, sub = (
        TestSource.probe()
        .via(RestartFlow.with_backoff(settings(), factory))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(100)
    await up.expect_request()
    up.send_next(1)
    await sub.expect_next(10)
    await up.expect_request()
    up.send_next(3)  # the inner flow fails
    await manual_clock.advance(0.5)
    assert len(factory.starts) == 1
    await manual_clock.advance(0.5)
    assert len(factory.starts) == 2
    await up.expect_request()
    up.send_next(4)
    await sub.expect_next(40)
    up.send_complete()
    await sub.expect_complete()
    assert len(factory.starts) == 2


async def test_flow_restarts_when_inner_completes_or_cancels(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Flow().take(1))
    up, sub = (
        TestSource.probe()
        .via(RestartFlow.with_backoff(settings(), factory))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(100)
    await up.expect_request()
    up.send_next("a")
    await sub.expect_next("a")
    await manual_clock.advance(1.0)
    assert len(factory.starts) == 2
    await up.expect_request()
    up.send_next("b")
    await sub.expect_next("b")
    sub.cancel()
    await up.expect_cancellation()
    await manual_clock.advance(50.0)
    assert len(factory.starts) == 2


async def test_flow_on_failures_completes_when_inner_completes(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Flow().map(failing_on(2)).take(3))
    flow = RestartFlow.on_failures_with_backoff(settings(), factory)
    up, sub = TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(materializer)
    sub.request(100)
    await up.expect_request()
    up.send_next(2)
    await manual_clock.advance(1.0)
    assert len(factory.starts) == 2
    for x in (5, 6, 7):
        await up.expect_request()
        up.send_next(x)
        await sub.expect_next(x * 10)
    await sub.expect_complete()
    await up.expect_cancellation()
    assert len(factory.starts) == 2


async def test_flow_upstream_failure_is_not_restarted(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Flow().map(lambda x: x))
    up, sub = (
        TestSource.probe()
        .via(RestartFlow.with_backoff(settings(), factory))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(10)
    await up.expect_request()
    up.send_error(Boom("upstream"))
    err = await sub.expect_error()
    assert isinstance(err, Boom)
    await manual_clock.advance(10.0)
    assert len(factory.starts) == 1


# -- RestartSink ---------------------------------------------------------------------------------
async def test_sink_restarts_when_inner_cancels(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    batches: list[list[Any]] = [[] for _ in range(5)]
    factory = Factory(manual_clock, lambda n: Flow().take(2).to(Sink.foreach(batches[n].append)))
    up = TestSource.probe().to(RestartSink.with_backoff(settings(), factory)).run(materializer)
    for x in ("a", "b"):
        await up.expect_request()
        up.send_next(x)
    await until(lambda: batches[1] == ["a", "b"])
    await manual_clock.advance(0.5)
    assert len(factory.starts) == 1
    await manual_clock.advance(0.5)
    assert len(factory.starts) == 2
    await up.expect_request()
    up.send_next("c")
    await until(lambda: batches[2] == ["c"])
    up.send_complete()
    await manual_clock.advance(10.0)
    assert len(factory.starts) == 2


async def test_sink_gives_up_after_max_restarts(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    factory = Factory(manual_clock, lambda n: Sink.cancelled())
    s = settings().with_max_restarts(1, 100.0)
    up = TestSource.probe().to(RestartSink.with_backoff(s, factory)).run(materializer)
    await manual_clock.advance(1.0)
    await up.expect_cancellation()
    assert factory.starts == [0.0, 1.0]
