"""The factory and settings arguments of RestartSource / RestartFlow / RestartSink
(review 3, defects 5 and 6).

As Akka (whose ``startGraph`` calls the factory bare), the factory is not supervised: a
factory that raises fails the wrapper with its exception at the first start or at any
restart, and is never called again (it used to be retried for ever at ``min_backoff``,
ignoring ``max_restarts``). A factory returning something that is not the wrapper's kind
of graph fails it with a ``TypeError`` naming the stage, what the factory returned and
what was expected. A non-callable factory and settings that are not ``RestartSettings``
are rejected when the blueprint is built. Timed steps run on the ManualClock.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Flow,
    Keep,
    RestartFlow,
    RestartSettings,
    RestartSink,
    RestartSource,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom

if TYPE_CHECKING:
    from reactive import Materializer
    from reactive.testkit import ManualClock

NOTE = "raised by the factory of [{stage}]: a factory that raises fails the restart wrapper"


class Factory:
    """A factory whose n-th call (from 1) returns ``make(n)``; records the clock at each."""

    def __init__(self, clock: ManualClock, make: Any) -> None:
        self.clock = clock
        self.make = make
        self.starts: list[float] = []

    def __call__(self) -> Any:
        self.starts.append(self.clock.time())
        return self.make(len(self.starts))


def limited() -> RestartSettings:
    """Backoff 1 s, 2 s, 4 s, ...; at most 3 restarts (restart5.py's settings, scaled)."""
    return RestartSettings(1.0, 8.0, 0.0).with_max_restarts(3, 10.0)


def raising_on(*calls: int, then: Any) -> Any:
    """``make`` for Factory: raise Boom on the given calls, else ``then(n)``."""

    def make(n: int) -> Any:
        if n in calls:
            raise Boom(f"factory call {n}")
        return then(n)

    return make


def restarting(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]


async def failed_with(fut: Any, clock: ManualClock) -> BaseException:
    """The error ``fut`` failed with, which must already be there (no waiting on
    restarts: a wrapper that restarts instead of failing leaves it pending)."""
    await clock.settle()
    assert fut.done(), "the wrapper did not fail: it is restarting the factory"
    exc = fut.exception()
    assert exc is not None
    return exc


# -- a factory that raises -------------------------------------------------------------------
class TestRaisingFactory:
    """A raising factory fails the wrapper, at the first start or at a restart."""

    @pytest.mark.parametrize(
        ("build", "stage"),
        [
            (RestartSource.with_backoff, "restart_source"),
            (RestartSource.on_failures_with_backoff, "restart_source_on_failures"),
        ],
    )
    async def test_source_first_start(
        self,
        build: Any,
        stage: str,
        manual_clock: ManualClock,
        materializer: Materializer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        factory = Factory(manual_clock, raising_on(1, then=lambda n: Source.single(n)))
        fut = build(limited(), factory).run_with(Sink.seq(), materializer)
        exc = await failed_with(fut, manual_clock)
        assert isinstance(exc, Boom) and str(exc) == "factory call 1"
        assert any(NOTE.format(stage=stage) in note for note in exc.__notes__)
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0]  # never called again
        assert manual_clock.pending == 0
        assert restarting(caplog) == []

    async def test_source_at_a_restart(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, raising_on(3, then=lambda n: Source.single(n)))
        fut = RestartSource.with_backoff(limited(), factory).run_with(Sink.seq(), materializer)
        await manual_clock.advance(1.0)  # restart 1 after 1 s: second call
        await manual_clock.advance(2.0)  # restart 2 after 2 s: third call raises
        exc = await failed_with(fut, manual_clock)
        assert isinstance(exc, Boom) and str(exc) == "factory call 3"
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0, 1.0, 3.0]

    @pytest.mark.parametrize(
        ("build", "stage"),
        [
            (RestartFlow.with_backoff, "restart_flow"),
            (RestartFlow.on_failures_with_backoff, "restart_flow_on_failures"),
        ],
    )
    async def test_flow_first_start(
        self,
        build: Any,
        stage: str,
        manual_clock: ManualClock,
        materializer: Materializer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        factory = Factory(manual_clock, raising_on(1, then=lambda n: Flow()))
        pub, sub = (
            TestSource.probe()
            .via(build(limited(), factory))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await manual_clock.settle()
        sub.request(1)
        exc = await sub.expect_error(timeout=1.0)
        assert isinstance(exc, Boom) and str(exc) == "factory call 1"
        assert any(NOTE.format(stage=stage) in note for note in exc.__notes__)
        assert await pub.expect_cancellation(timeout=1.0) is exc
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0]
        assert restarting(caplog) == []

    async def test_flow_at_a_restart(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # Each inner flow completes after one element; the second call raises.
        factory = Factory(manual_clock, raising_on(2, then=lambda n: Flow().take(1)))
        pub, sub = (
            TestSource.probe()
            .via(RestartFlow.with_backoff(limited(), factory))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(5)
        pub.send_next("a")
        await sub.expect_next("a", timeout=1.0)
        await manual_clock.advance(1.0)
        exc = await sub.expect_error(timeout=1.0)
        assert isinstance(exc, Boom) and str(exc) == "factory call 2"
        await pub.expect_cancellation(timeout=1.0)
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0, 1.0]

    async def test_sink_first_start(
        self,
        manual_clock: ManualClock,
        materializer: Materializer,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        factory = Factory(manual_clock, raising_on(1, then=lambda n: Sink.ignore()))
        pub = TestSource.probe().to(RestartSink.with_backoff(limited(), factory)).run(materializer)
        exc = await pub.expect_cancellation(timeout=1.0)
        assert isinstance(exc, Boom) and str(exc) == "factory call 1"
        assert any(NOTE.format(stage="restart_sink") in note for note in exc.__notes__)
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0]
        assert restarting(caplog) == []

    async def test_sink_at_a_restart(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # Each inner sink cancels after one element; the second call raises.
        seen: list[Any] = []
        factory = Factory(
            manual_clock, raising_on(2, then=lambda n: Flow().take(1).to(Sink.foreach(seen.append)))
        )
        pub = TestSource.probe().to(RestartSink.with_backoff(limited(), factory)).run(materializer)
        await pub.expect_request(timeout=1.0)
        pub.send_next("a")
        await manual_clock.settle()
        assert seen == ["a"]
        await manual_clock.advance(1.0)
        exc = await pub.expect_cancellation(timeout=1.0)
        assert isinstance(exc, Boom) and str(exc) == "factory call 2"
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0, 1.0]

    async def test_max_restarts_within_default_no_longer_loops(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # restart5.py: max_restarts=3 with the default window (min_backoff) called the
        # raising factory 40 times in 2 s; now the first call fails the stream.
        factory = Factory(manual_clock, raising_on(*range(1, 100), then=lambda n: None))
        settings = RestartSettings(0.05, 1.0, 0.0, max_restarts=3)
        fut = RestartSource.with_backoff(settings, factory).run_with(Sink.seq(), materializer)
        for _ in range(40):
            await manual_clock.advance(0.05)
        exc = await failed_with(fut, manual_clock)
        assert isinstance(exc, Boom)
        assert len(factory.starts) == 1

    async def test_the_inner_graph_failing_still_restarts_with_backoff(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # Only the factory is unsupervised: the graph it returns failing at once still
        # restarts, with growing backoff, and max_restarts still ends it.
        factory = Factory(manual_clock, lambda n: Source.failed(Boom(f"inner {n}")))
        fut = RestartSource.with_backoff(limited(), factory).run_with(Sink.seq(), materializer)
        for step in (1.0, 2.0, 4.0):
            await manual_clock.advance(step)
        with pytest.raises(Boom, match="inner 4"):
            await fut
        assert factory.starts == [0.0, 1.0, 3.0, 7.0]

    async def test_setup_that_may_fail_goes_inside_the_graph(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # The documented way to restart on a failing setup: do it lazily inside the
        # returned graph (its failure is the inner stream's, so it restarts with backoff).
        connect = Factory(manual_clock, raising_on(1, 2, then=lambda n: Source.single("ok")))
        fut = RestartSource.on_failures_with_backoff(
            limited(), lambda: Source.lazy_source(connect)
        ).run_with(Sink.seq(), materializer)
        await manual_clock.advance(1.0)
        await manual_clock.advance(2.0)
        assert await fut == ["ok"]
        assert connect.starts == [0.0, 1.0, 3.0]


# -- a factory returning the wrong thing -----------------------------------------------------
SOURCE_WANTED = "expected a Source (one outlet, no inlet)"
FLOW_WANTED = "expected a Flow (one inlet, one outlet)"
SINK_WANTED = "expected a Sink (one inlet, no outlet)"


class TestWrongResult:
    """A factory result that is not the wrapper's kind of graph fails it, naming the stage,
    what the factory returned and what was expected."""

    @pytest.mark.parametrize(
        ("made", "got"),
        [
            (lambda: [1, 2, 3], "returned list [1, 2, 3];"),
            (lambda: Sink.ignore(), "returned Sink Sink("),
            (lambda: Flow(), "returned Flow Flow("),
            (lambda: None, "returned NoneType None;"),
        ],
    )
    async def test_source(
        self, made: Any, got: str, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: made())
        fut = RestartSource.with_backoff(limited(), factory).run_with(Sink.seq(), materializer)
        exc = await failed_with(fut, manual_clock)
        assert isinstance(exc, TypeError)
        msg = str(exc)
        assert msg.startswith("[restart_source] factory() ")
        assert got in msg and SOURCE_WANTED in msg
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0]

    async def test_source_at_a_restart(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: Source.single(n) if n == 1 else [n])
        fut = RestartSource.with_backoff(limited(), factory).run_with(Sink.seq(), materializer)
        await manual_clock.advance(1.0)
        exc = await failed_with(fut, manual_clock)
        assert isinstance(exc, TypeError)
        assert str(exc) == (
            "[restart_source] factory() returned list [2]; expected a Source (one outlet, no inlet)"
        )
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0, 1.0]

    @pytest.mark.parametrize(
        ("made", "got"),
        [
            (lambda: Sink.ignore(), "returned Sink Sink("),
            (lambda: Source.single(5), "returned Source Source("),
            (lambda: [1], "returned list [1];"),
        ],
    )
    async def test_flow(
        self, made: Any, got: str, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: made())
        pub, sub = (
            TestSource.probe()
            .via(RestartFlow.with_backoff(limited(), factory))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1)
        exc = await sub.expect_error(timeout=1.0)
        assert isinstance(exc, TypeError)
        msg = str(exc)
        assert msg.startswith("[restart_flow] factory() ")
        assert got in msg and FLOW_WANTED in msg
        await pub.expect_cancellation(timeout=1.0)
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0]

    async def test_flow_shape_is_described(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: Sink.ignore())
        fut = (
            Source.single(1)
            .via(RestartFlow.on_failures_with_backoff(limited(), factory))
            .run_with(Sink.seq(), materializer)
        )
        exc = await failed_with(fut, manual_clock)
        assert "[restart_flow_on_failures] factory() returned Sink" in str(exc)
        assert "with 1 inlet(s) and 0 outlet(s); " + FLOW_WANTED in str(exc)

    @pytest.mark.parametrize(
        ("made", "got"),
        [
            (lambda: Source.single(5), "returned Source Source("),
            (lambda: Flow(), "returned Flow Flow("),
            (lambda: "sink", "returned str 'sink';"),
        ],
    )
    async def test_sink(
        self, made: Any, got: str, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        factory = Factory(manual_clock, lambda n: made())
        pub = TestSource.probe().to(RestartSink.with_backoff(limited(), factory)).run(materializer)
        exc = await pub.expect_cancellation(timeout=1.0)
        assert isinstance(exc, TypeError)
        msg = str(exc)
        assert msg.startswith("[restart_sink] factory() ")
        assert got in msg and SINK_WANTED in msg
        await manual_clock.advance(60.0)
        assert factory.starts == [0.0]

    async def test_a_graph_stage_is_a_right_result(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        # What the DSL accepts as a graph (here a Source's stage itself) is accepted.
        from reactive._dsl.graph import _module_of

        stage = _module_of(Source.single("x")).stage  # type: ignore[attr-defined]
        fut = RestartSource.on_failures_with_backoff(limited(), lambda: stage).run_with(
            Sink.seq(), materializer
        )
        await manual_clock.settle()
        assert await fut == ["x"]


# -- build-time checks ------------------------------------------------------------------------
SETTINGS = RestartSettings(1.0, 2.0, 0.0)

BUILDERS = [
    (RestartSource.with_backoff, "RestartSource.with_backoff", lambda: Source.single(1)),
    (
        RestartSource.on_failures_with_backoff,
        "RestartSource.on_failures_with_backoff",
        lambda: Source.single(1),
    ),
    (RestartFlow.with_backoff, "RestartFlow.with_backoff", lambda: Flow()),
    (
        RestartFlow.on_failures_with_backoff,
        "RestartFlow.on_failures_with_backoff",
        lambda: Flow(),
    ),
    (RestartSink.with_backoff, "RestartSink.with_backoff", lambda: Sink.ignore()),
]


class TestBuildTimeChecks:
    """Arguments checked when the blueprint is built, not at run time."""

    @pytest.mark.parametrize(("build", "name", "good"), BUILDERS)
    def test_the_graph_itself_instead_of_a_factory(self, build: Any, name: str, good: Any) -> None:
        graph = good()
        with pytest.raises(TypeError) as info:
            build(SETTINGS, graph)
        msg = str(info.value)
        assert msg.startswith(f"{name}: factory must be callable, got {type(graph).__name__} ")
        assert "lambda: graph" in msg

    @pytest.mark.parametrize(("build", "name", "good"), BUILDERS)
    def test_not_callable(self, build: Any, name: str, good: Any) -> None:
        with pytest.raises(TypeError, match=rf"^{name}: factory must be callable, got int 5$"):
            build(SETTINGS, 5)

    @pytest.mark.parametrize(("build", "name", "good"), BUILDERS)
    def test_settings_not_restart_settings(self, build: Any, name: str, good: Any) -> None:
        with pytest.raises(
            TypeError, match=rf"^{name}: settings must be a RestartSettings, got float 1.0$"
        ):
            build(1.0, good)
        with pytest.raises(TypeError, match=rf"^{name}: settings must be a RestartSettings"):
            build(good, SETTINGS)  # arguments swapped

    @pytest.mark.parametrize(("build", "name", "good"), BUILDERS)
    def test_good_arguments_build(self, build: Any, name: str, good: Any) -> None:
        made = build(SETTINGS, good)
        ports = (len(made.shape.inlets), len(made.shape.outlets))
        assert (
            ports
            == {"RestartSource": (0, 1), "RestartFlow": (1, 1), "RestartSink": (1, 0)}[
                name.split(".")[0]
            ]
        )

    @pytest.mark.parametrize(
        ("args", "kw", "error", "match"),
        [
            (("1", 2.0, 0.0), {}, TypeError, "min_backoff must be a number, got str '1'"),
            ((1.0, None, 0.0), {}, TypeError, "max_backoff must be a number, got NoneType"),
            ((1.0, 2.0, True), {}, TypeError, "random_factor must be a number, got bool"),
            ((1.0, 2.0, 0.0), {"max_restarts": "3"}, TypeError, "max_restarts must be an int"),
            ((1.0, 2.0, 0.0), {"max_restarts_within": "5"}, TypeError, "max_restarts_within"),
            ((1.0, 2.0, 0.0), {"restart_on": 5}, TypeError, "restart_on must be callable"),
            ((-1.0, 2.0, 0.0), {}, ValueError, r"must be >= 0, got -1.0, 2.0"),
            ((2.0, 1.0, 0.0), {}, ValueError, r"max_backoff \(1.0\) must be >= min_backoff"),
        ],
    )
    def test_restart_settings_fields(
        self, args: tuple[Any, ...], kw: dict[str, Any], error: type, match: str
    ) -> None:
        with pytest.raises(error, match=rf"^RestartSettings: .*{match}"):
            RestartSettings(*args, **kw)
