"""The restart family (``reactive/_ops/restart.py``): RestartSource, RestartFlow, RestartSink and
RetryFlow. Akka's RestartSpec / RetryFlowSpec and our own cases, one class per operator.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Flow,
    Keep,
    Materializer,
    RestartFlow,
    RestartSettings,
    RestartSink,
    RestartSource,
    RetryFlow,
    RetryFlowError,
    Sink,
    Source,
)
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.reactive.support import Boom, flow_probes, probes, quiet_for, settle, sink_probe

if TYPE_CHECKING:
    from collections.abc import Callable

SHORT_MIN, SHORT_MAX = 0.2, 0.3


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


def failing_on(bad: Any) -> Any:
    def f(x: Any) -> Any:
        if x == bad:
            raise Boom(f"bad {x}")
        return x * 10

    return f


class Created:
    """Counts the factory's calls (the spec's ``created`` AtomicInteger)."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        self.make = make
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        return self.make(self.count)


def short_settings() -> Any:
    from reactive import RestartSettings

    return RestartSettings(SHORT_MIN, SHORT_MAX, 0.0)


def long_settings() -> Any:
    from reactive import RestartSettings

    return RestartSettings(1.0, 3.0, 0.0)


def restart_sink_until_cancel(
    materializer: Materializer, settings: Any
) -> tuple[Any, Any, Any, Any]:
    """A publisher probe into ``RestartSink.with_backoff(settings, created)`` whose sinks
    pass elements on, through the publisher probe ``queue``, to the subscriber probe
    ``out``, and cancel after ``"cancel"``: ``(pub, queue, out, created)``."""
    from reactive import Flow, RestartSink

    queue, out = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    created = Created(
        lambda n: (
            Flow()
            .take_while(lambda x: x != "cancel", inclusive=True)
            .to(Sink.foreach(queue.send_next))
        )
    )
    pub = (
        TestSource.probe()
        .to_mat(RestartSink.with_backoff(settings, created), Keep.left)
        .run(materializer)
    )
    return pub, queue, out, created


class Counting:
    """A Flow that records every input it sees (the calls of the wrapped flow)."""

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def flow(self) -> Flow[Any, Any, Any]:
        def f(x: Any) -> Any:
            self.seen.append(x)
            return x

        return Flow.from_function(f)


class TestRestartSettings:
    """``RestartSettings``."""

    def test_settings_defaults_and_validation(self) -> None:
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

    def test_backoff_grows_and_caps(self, monkeypatch: pytest.MonkeyPatch) -> None:
        s = RestartSettings(1.0, 5.0, 0.0)
        assert [s.backoff(k) for k in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
        import reactive._ops.restart as restart_mod

        monkeypatch.setattr(restart_mod.random, "random", lambda: 0.5)
        jittered = RestartSettings(1.0, 5.0, 0.2)
        assert jittered.backoff(1) == pytest.approx(2.0 * 1.1)
        assert jittered.backoff(10) == pytest.approx(5.0 * 1.1)


class TestRestartSource:
    """``RestartSource``."""

    async def test_source_restarts_on_completion_with_growing_backoff(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: Source.from_iterable([n, n]))
        sub = RestartSource.with_backoff(settings(), factory).run_with(
            TestSink.probe(), materializer
        )
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
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        probes: list[Any] = []
        factory = Factory(
            manual_clock,
            lambda n: TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p),
        )
        sub = RestartSource.with_backoff(settings(), factory).run_with(
            TestSink.probe(), materializer
        )
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
        self, manual_clock: ManualClock, materializer: Materializer
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
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: Source.single(n))
        s = settings().with_max_restarts(1, 100.0)
        fut = RestartSource.with_backoff(s, factory).run_with(Sink.seq(), materializer)
        await manual_clock.advance(1.0)
        assert await fut == [1, 2]

    async def test_source_on_failures_completes_with_inner(
        self, manual_clock: ManualClock, materializer: Materializer
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
        self, manual_clock: ManualClock, materializer: Materializer
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

    async def test_source_factory_raising_fails_the_wrapper(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # As Akka (the factory is not supervised): no restart, the factory's error fails
        # the wrapper (tests/reactive/test_restart_factory.py has the other cases).
        def make(n: int) -> Any:
            if n == 1:
                raise Boom("factory")
            return Source.single("ok")

        factory = Factory(manual_clock, make)
        fut = RestartSource.on_failures_with_backoff(settings(), factory).run_with(
            Sink.seq(), materializer
        )
        with pytest.raises(Boom, match="factory"):
            await fut
        await manual_clock.advance(10.0)
        assert factory.starts == [0.0]

    async def test_restart_source_runs_normally(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        created = Created(lambda n: Source.repeat("a"))
        sub = sink_probe(RestartSource.with_backoff(short_settings(), created), materializer)
        for _ in range(5):
            await sub.request_next("a")
        assert created.count == 1
        sub.cancel()

    async def test_restart_source_on_completion_and_failure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        def fail_at_c(x: str) -> str:
            if x == "c":
                raise Boom("failed")
            return x

        for make, expected in (
            (lambda n: Source.from_iterable(["a", "b"]), 3),
            (lambda n: Source.from_iterable(["a", "b", "c"]).map(fail_at_c), 3),
        ):
            created = Created(make)
            sub = sink_probe(RestartSource.with_backoff(short_settings(), created), materializer)
            await sub.request_next("a")
            await sub.request_next("b")
            sub.request(1)
            await quiet_for(manual_clock, SHORT_MIN - 0.01, sub)  # backing off
            await manual_clock.advance(0.01)
            await sub.expect_next("a")
            await sub.request_next("b")
            sub.request(1)
            await manual_clock.advance(SHORT_MIN)  # a short run: the backoff is not reset
            await quiet_for(manual_clock, SHORT_MAX - SHORT_MIN - 0.02, sub)
            await manual_clock.advance(0.04)
            await sub.expect_next("a")
            assert created.count == expected
            sub.cancel()

    async def test_restart_source_resets_backoff_after_running_for_min_backoff(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        created = Created(lambda n: Source.from_iterable(["a", "b"]))
        sub = sink_probe(RestartSource.with_backoff(long_settings(), created), materializer)
        await sub.request_next("a")
        await sub.request_next("b")
        sub.request(1)
        await manual_clock.advance(1.0)
        await sub.expect_next("a")
        await sub.request_next("b")
        sub.request(1)  # backing off for 2 s now
        await manual_clock.advance(2.0)
        await sub.expect_next("a")
        await manual_clock.advance(1.5)  # the third run lasts longer than min_backoff
        await sub.request_next("b")
        sub.request(1)
        await quiet_for(manual_clock, 0.99, sub)
        await manual_clock.advance(0.01)  # back to min_backoff
        await sub.expect_next("a")
        assert created.count == 4
        sub.cancel()

    async def test_restart_source_cancel_reaches_running_source_and_stops_backoff(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        terminated: list[Any] = []
        created = Created(
            lambda n: Source.repeat("a").watch_termination(
                lambda m, done: done.add_done_callback(terminated.append)
            )
        )
        sub = sink_probe(RestartSource.with_backoff(short_settings(), created), materializer)
        await sub.request_next("a")
        sub.cancel()
        await settle()
        assert len(terminated) == 1 and terminated[0].exception() is None
        await manual_clock.advance(1.0)
        assert created.count == 1

        created = Created(lambda n: Source.single("a"))
        sub = sink_probe(RestartSource.with_backoff(long_settings(), created), materializer)
        await sub.request_next("a")
        sub.request(1)
        await settle()  # backing off now
        sub.cancel()
        await manual_clock.advance(1.1)
        assert created.count == 1

    async def test_restart_source_on_failures_only(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        def first_run_fails_at_c(n: int) -> Source[Any, Any]:
            def f(x: str) -> str:
                if x == "c" and n == 1:
                    raise Boom("failed")
                return x

            return Source.from_iterable(["a", "b", "c"]).map(f)

        created = Created(first_run_fails_at_c)
        sub = sink_probe(
            RestartSource.on_failures_with_backoff(short_settings(), created), materializer
        )
        await sub.request_next("a")
        await sub.request_next("b")
        sub.request(1)
        await manual_clock.advance(SHORT_MIN)
        await sub.expect_next("a")
        await sub.request_next("b")
        await sub.request_next("c")
        await sub.expect_complete()
        assert created.count == 2

    async def test_restart_source_max_restarts(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        created = Created(lambda n: Source.single("a"))
        s = short_settings().with_max_restarts(1, SHORT_MIN)
        sub = sink_probe(RestartSource.with_backoff(s, created), materializer)
        await sub.request_next("a")
        sub.request(1)
        await manual_clock.advance(SHORT_MIN)
        await sub.expect_next("a")
        await sub.expect_complete()
        assert created.count == 2

    async def test_restart_source_max_restarts_reset_and_within(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        created = Created(lambda n: Source.single("a"))
        sub = sink_probe(
            RestartSource.with_backoff(long_settings().with_max_restarts(2, 1.0), created),
            materializer,
        )
        await sub.request_next("a")
        sub.request(1)
        await manual_clock.advance(1.0)
        await sub.expect_next("a")  # restart 1; backing off 2 s for restart 2
        await manual_clock.advance(2.0 + 1.5)  # restart 2 runs longer than 1 s: counter reset
        await sub.request_next("a")
        sub.request(1)
        await manual_clock.advance(1.0)  # so a third restart is allowed
        await sub.expect_next("a")
        assert created.count == 4
        sub.cancel()

        # with_max_restarts(2, 1.0): the reset time is `within`, not min_backoff
        created = Created(lambda n: Source.from_iterable(["a", "b"]).take_while(lambda x: x != "b"))
        sub = sink_probe(
            RestartSource.with_backoff(short_settings().with_max_restarts(2, 1.0), created),
            materializer,
        )
        await sub.request_next("a")
        sub.request(1)
        await manual_clock.advance(SHORT_MIN)
        await sub.expect_next("a")
        await manual_clock.advance(0.8)
        sub.request(1)
        await quiet_for(manual_clock, SHORT_MAX - 0.02, sub)  # restart 2: still allowed
        await manual_clock.advance(0.04)
        await sub.expect_next("a")
        sub.request(1)
        await sub.expect_complete()  # 2 restarts within 1 s of each start: no third one
        assert created.count == 3

    async def test_restart_source_fails_when_restart_on_rejects(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSource

        def fail_at_c(x: str) -> str:
            if x == "c":
                raise Boom("failed")
            return x

        created = Created(lambda n: Source.from_iterable(["a", "b", "c"]).map(fail_at_c))
        s = short_settings().with_restart_on(lambda exc: not isinstance(exc, Boom))
        sub = sink_probe(RestartSource.with_backoff(s, created), materializer)
        await sub.request_next("a")
        await sub.request_next("b")
        sub.request(1)
        assert isinstance(await sub.expect_error(), Boom)
        assert created.count == 1


class TestRestartFlow:
    """``RestartFlow``."""

    async def test_flow_restarts_after_failure(
        self, manual_clock: ManualClock, materializer: Materializer
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
        self, manual_clock: ManualClock, materializer: Materializer
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
        self, manual_clock: ManualClock, materializer: Materializer
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
        self, manual_clock: ManualClock, materializer: Materializer
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

    async def test_restart_flow_runs_normally_and_restarts(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import Flow, RestartFlow

        created = Created(lambda n: Flow())
        pub, sub = probes(
            lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
        )
        pub.send_next("a")
        await sub.request_next("a")
        pub.send_next("b")
        await sub.request_next("b")
        assert created.count == 1
        pub.send_complete()
        await sub.expect_complete()

        def fail_on_error(x: str) -> str:
            if x == "error":
                raise Boom("error")
            return x

        created = Created(lambda n: Flow().take_while(lambda x: x != "complete").map(fail_on_error))
        pub, sub = probes(
            lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
        )
        for stop in ("complete", "error"):
            pub.send_next("a")
            await sub.request_next("a")
            pub.send_next(stop)
            sub.request(1)
            await settle()
            pub.send_next("b")  # held while the flow is restarted
            await quiet_for(manual_clock, SHORT_MIN - 0.01, sub)
            await manual_clock.advance(0.01)
            await sub.expect_next("b")
            await manual_clock.advance(5.0)  # a long run: the backoff resets
        assert created.count == 3
        pub.send_complete()
        await sub.expect_complete()

    async def test_restart_flow_on_failures_only(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import Flow, RestartFlow

        def fail_on_error(x: str) -> str:
            if x == "error":
                raise Boom("error")
            return x

        created = Created(lambda n: Flow().take_while(lambda x: x != "complete").map(fail_on_error))
        pub, sub = probes(
            lambda s: s.via(RestartFlow.on_failures_with_backoff(short_settings(), created)),
            materializer,
        )
        pub.send_next("a")
        await sub.request_next("a")
        pub.send_next("error")
        sub.request(1)
        await manual_clock.advance(SHORT_MIN)
        pub.send_next("b")
        await sub.expect_next("b")
        pub.send_next("complete")
        sub.request(1)
        await sub.expect_complete()
        await pub.expect_cancellation()
        assert created.count == 2

    @pytest.mark.parametrize("only_on_failures", [True, False])
    async def test_restart_flow_giving_up_on_a_failure_cancels_upstream(
        self, materializer: Materializer, only_on_failures: bool
    ) -> None:
        """No restart left: downstream gets the failure and upstream is cancelled with
        it (on_failures_with_backoff had left upstream running, and the stage waiting
        on it, for good; found by an exploratory review)."""
        from reactive import Flow, RestartFlow

        def fail_on_error(x: str) -> str:
            if x == "error":
                raise Boom("error")
            return x

        make = (
            RestartFlow.on_failures_with_backoff if only_on_failures else RestartFlow.with_backoff
        )
        no_restarts = RestartSettings(0.0, 0.0, 0.0, max_restarts=0)
        pub, sub = probes(
            lambda s: s.via(make(no_restarts, lambda: Flow().map(fail_on_error))), materializer
        )
        pub.send_next("a")
        await sub.request_next("a")
        pub.send_next("error")
        sub.request(1)
        assert isinstance(await sub.expect_error(), Boom)
        await pub.expect_cancellation()


class TestRestartSink:
    """``RestartSink``."""

    async def test_sink_restarts_when_inner_cancels(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        batches: list[list[Any]] = [[] for _ in range(5)]
        factory = Factory(
            manual_clock, lambda n: Flow().take(2).to(Sink.foreach(batches[n].append))
        )
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
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: Sink.cancelled())
        s = settings().with_max_restarts(1, 100.0)
        up = TestSource.probe().to(RestartSink.with_backoff(s, factory)).run(materializer)
        await manual_clock.advance(1.0)
        await up.expect_cancellation()
        assert factory.starts == [0.0, 1.0]

    async def test_restart_sink_runs_normally_and_restarts_on_cancellation(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSink

        result: list[Any] = []
        created = Created(
            lambda n: Sink.seq().map_materialized_value(
                lambda f: f.add_done_callback(lambda d: result.append(d.result()))
            )
        )
        pub = (
            TestSource.probe()
            .to_mat(RestartSink.with_backoff(short_settings(), created), Keep.left)
            .run(materializer)
        )
        pub.send_next("a").send_next("b").send_next("c").send_complete()
        await settle()
        assert result == [["a", "b", "c"]]
        assert created.count == 1

        pub, _, out, created = restart_sink_until_cancel(materializer, short_settings())
        pub.send_next("a")
        await out.request_next("a")
        pub.send_next("cancel")
        await out.request_next("cancel")
        pub.send_next("c")
        out.request(1)
        await quiet_for(manual_clock, SHORT_MIN - 0.01, out)
        await manual_clock.advance(0.01)
        await out.expect_next("c")
        assert created.count == 2
        pub.send_complete()
        await settle()
        out.cancel()

    async def test_restart_sink_completed_while_backing_off_and_max_restarts(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import Flow, RestartSink

        pub, queue, out, created = restart_sink_until_cancel(materializer, long_settings())
        pub.send_next("a")
        await out.request_next("a")
        pub.send_next("cancel")
        await out.request_next("cancel")
        pub.send_complete()  # while backing off
        await manual_clock.advance(1.1)
        assert created.count == 1

        created = Created(
            lambda n: (
                Flow()
                .take_while(lambda x: x != "cancel", inclusive=True)
                .to(Sink.foreach(queue.send_next))
            )
        )
        pub = (
            TestSource.probe()
            .to_mat(
                RestartSink.with_backoff(short_settings().with_max_restarts(1, SHORT_MIN), created),
                Keep.left,
            )
            .run(materializer)
        )
        pub.send_next("cancel")
        await out.request_next("cancel")
        pub.send_next("cancel")
        out.request(1)
        await manual_clock.advance(SHORT_MIN)
        await out.expect_next("cancel")
        await pub.expect_cancellation()
        assert created.count == 2
        out.cancel()

    async def test_restart_sink_fails_when_restart_on_rejects(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartSink

        def each(x: str) -> None:
            if x == "c":
                raise Boom("failed")

        created = Created(lambda n: Sink.foreach(each))
        s = short_settings().with_restart_on(lambda exc: not isinstance(exc, Boom))
        pub = (
            TestSource.probe()
            .to_mat(RestartSink.with_backoff(s, created), Keep.left)
            .run(materializer)
        )
        pub.send_next("a").send_next("b").send_next("c")
        cause = await pub.expect_cancellation()
        assert isinstance(cause, Boom)
        assert created.count == 1


class TestRetryFlow:
    """``RetryFlow``."""

    async def test_retry_flow_retries_one_element_with_exponential_backoff(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        inner = Counting()
        retry = RetryFlow.with_backoff(
            1.0, 10.0, 0.0, 5, inner.flow(), lambda i, o: o + 1 if o < 3 else None
        )
        sub = Source.single(0).via(retry).run_with(TestSink.probe(), materializer)
        sub.request(5)
        await manual_clock.settle()
        assert inner.seen == [0]
        # Retry k waits min_backoff * 2**k: 1, 2, 4 seconds.
        for delay, seen in ((1.0, [0, 1]), (2.0, [0, 1, 2]), (4.0, [0, 1, 2, 3])):
            await manual_clock.advance(delay - 0.01)
            assert len(inner.seen) == len(seen) - 1
            await sub.expect_no_message(0)
            await manual_clock.advance(0.01)
            assert inner.seen == seen
        await sub.expect_next(3)
        await sub.expect_complete()

    async def test_retry_flow_backoff_is_capped_and_retries_are_limited(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        inner = Counting()
        asked: list[tuple[int, int]] = []

        def decide(i: int, o: int) -> int:
            asked.append((i, o))
            return o + 1  # always wants another try

        retry = RetryFlow.with_backoff(1.0, 3.0, 0.0, 4, inner.flow(), decide)
        sub = Source.single(10).via(retry).run_with(TestSink.probe(), materializer)
        sub.request(5)
        await manual_clock.settle()
        assert inner.seen == [10]
        times: list[float] = []
        start = manual_clock.time()
        while len(inner.seen) < 5:
            before = len(inner.seen)
            await manual_clock.advance(0.5)
            if len(inner.seen) > before:
                times.append(manual_clock.time() - start)
        # delays 1, 2, 3 (capped), 3: cumulative 1, 3, 6, 9 (on the 0.5 s grid)
        assert times == [1.0, 3.0, 6.0, 9.0]
        assert inner.seen == [10, 11, 12, 13, 14]
        # after max_retries (4) the last result is emitted without asking decide_retry again
        await sub.expect_next(14)
        await sub.expect_complete()
        assert len(asked) == 4

    async def test_retry_flow_each_element_gets_its_own_retries(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        inner = Counting()
        retry = RetryFlow.with_backoff(
            1.0, 10.0, 0.0, 1, inner.flow(), lambda i, o: -o if o > 0 else None
        )
        pub, sub = flow_probes(retry, materializer)
        sub.request(5)
        await pub.expect_request()
        pub.send_next(5)
        await manual_clock.settle()
        assert inner.seen == [5]
        await pub.expect_no_message(0)  # one element at a time: no demand while retrying
        await manual_clock.advance(1.0)
        await sub.expect_next(-5)
        await pub.expect_request()
        pub.send_next(7)
        await manual_clock.advance(0.99)
        assert inner.seen == [5, -5, 7]
        await manual_clock.advance(0.01)  # the retry count starts again: first delay is 1 s
        await sub.expect_next(-7)
        pub.send_complete()
        await sub.expect_complete()

    async def test_retry_flow_passes_elements_without_retry_and_keeps_flow_mat(
        self,
        materializer: Materializer,
    ) -> None:
        flow = Flow().map(lambda x: x * 2).map_materialized_value(lambda _: "inner-mat")
        retry = RetryFlow.with_backoff(1.0, 2.0, 0.0, 3, flow, lambda i, o: None)
        mat, out = (
            Source.from_iterable(range(5))
            .via_mat(retry, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert mat == "inner-mat"
        assert await out == [0, 2, 4, 6, 8]

    async def test_retry_flow_completes_after_the_element_in_progress(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        inner = Counting()
        retry = RetryFlow.with_backoff(
            2.0, 2.0, 0.0, 3, inner.flow(), lambda i, o: 1 if o == 0 else None
        )
        pub, sub = flow_probes(retry, materializer)
        sub.request(3)
        await pub.expect_request()
        pub.send_next(0).send_complete()
        await manual_clock.settle()
        await sub.expect_no_message(0)
        await manual_clock.advance(2.0)
        await sub.expect_next(1)
        await sub.expect_complete()

    async def test_retry_flow_backpressure_from_downstream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        inner = Counting()
        retry = RetryFlow.with_backoff(1.0, 1.0, 0.0, 3, inner.flow(), lambda i, o: None)
        pub, sub = flow_probes(retry, materializer)
        await manual_clock.settle()
        await pub.expect_no_message(0)  # no downstream demand: nothing pulled upstream
        sub.request(1)
        await pub.expect_request()
        pub.send_next("x")
        await sub.expect_next("x")
        sub.cancel()
        await pub.expect_cancellation()

    async def test_retry_flow_failures(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        def decide(i: int, o: int) -> int:
            raise Boom("decide")

        retry = RetryFlow.with_backoff(1.0, 1.0, 0.0, 3, Flow(), decide)
        with pytest.raises(Boom):
            await Source.single(1).via(retry).run_with(Sink.seq(), materializer)

        err = Boom("inner")

        def inner_fails(x: int) -> int:
            raise err

        retry = RetryFlow.with_backoff(1.0, 1.0, 0.0, 3, Flow().map(inner_fails), lambda i, o: None)
        with pytest.raises(Boom):
            await Source.single(1).via(retry).run_with(Sink.seq(), materializer)

        retry = RetryFlow.with_backoff(
            1.0, 1.0, 0.0, 3, Flow().map_concat(lambda x: [x, x]), lambda i, o: None
        )
        with pytest.raises(RetryFlowError, match="one-in one-out"):
            await Source.from_iterable([1, 2]).via(retry).run_with(Sink.seq(), materializer)

    def test_retry_flow_validates_arguments(self) -> None:
        with pytest.raises(ValueError):
            RetryFlow.with_backoff(2.0, 1.0, 0.0, 1, Flow(), lambda i, o: None)
        with pytest.raises(ValueError):
            RetryFlow.with_backoff(1.0, 1.0, -1.0, 1, Flow(), lambda i, o: None)
        with pytest.raises(ValueError):
            RetryFlow.with_backoff(1.0, 1.0, 0.0, -1, Flow(), lambda i, o: None)
        with pytest.raises(ValueError):
            RetryFlow.with_backoff(1.0, 1.0, 0.0, 1, Sink.ignore(), lambda i, o: None)
