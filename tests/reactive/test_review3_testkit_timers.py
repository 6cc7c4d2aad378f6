"""Review 3, defects 7 and 11: ``PublisherProbe.expect_request`` returns the ``n`` of the
request (Akka's ``expectRequest()``), and the timer scheduling functions of
``TimerGraphStageLogic`` check their intervals and do nothing once the stage stopped."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import Keep, Materializer, Source
from reactive.stage import GraphStage, OutHandler, Outlet, SourceShape, TimerGraphStageLogic
from reactive.testkit import ExpectationError, ManualClock, TestSink, TestSource


# -- defect 7: expect_request returns the n requested ------------------------------------------
async def test_expect_request_returns_the_n_requested_at_once(materializer: Materializer) -> None:
    # Akka: down.request(5) arrives as one request(5).
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down.request(5)
    assert await up.expect_request() == 5
    assert up.pending_demand == 5
    await up.expect_no_message(0.05)  # the 5 came as one request, not five
    for i in range(5):
        up.send_next(i)
    assert await down.expect_next_n(5) == [0, 1, 2, 3, 4]
    await up.expect_no_message(0.05)  # the demand was used up: no new request
    down.request(3)
    assert await up.expect_request() == 3
    assert up.pending_demand == 8
    up.send_complete()
    await down.expect_next_or_complete()  # nothing was sent: completion
    await up.expect_no_message(0.01)


async def test_expect_request_reports_demand_added_while_pulled(
    materializer: Materializer,
) -> None:
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down.request(2)
    assert await up.expect_request() == 2
    down.request(3)  # while the 2 are outstanding: shows with the next pull
    up.send_next("a")
    await down.expect_next("a")
    assert await up.expect_request() == 3
    for x in "bcde":
        up.send_next(x)
    assert await down.expect_next_n(4) == list("bcde")
    with pytest.raises(ExpectationError, match="while waiting for a request"):
        await up.expect_request(timeout=0.05)
    down.cancel()
    await up.expect_cancellation()


async def test_operator_in_between_is_seen_as_it_pulls(materializer: Materializer) -> None:
    # Only a directly connected TestSink probe is seen asking for its whole demand: an
    # operator under test is seen pulling one element at a time (requests of 1), as before.
    for flow in (lambda s: s.map(lambda x: x * 10), lambda s: s.take_while(lambda x: x < 99)):
        up, down = flow(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(materializer)
        down.request(3)
        assert await up.expect_request() == 1
        up.send_next(1)
        assert await down.expect_next() in (1, 10)
        assert await up.expect_request() == 1
        assert up.pending_demand == 2
        down.cancel()
        await up.expect_cancellation()


# -- defect 11: timer scheduling --------------------------------------------------------------
class _Ticker(GraphStage[SourceShape[Any]]):
    def __init__(self, setup: Any, stop: Any = None) -> None:
        self.shape = SourceShape(Outlet("Ticker.out"))
        self.setup = setup
        self.stop = stop
        self.fired: list[Any] = []
        self.errors: list[BaseException] = []
        self.active_after_stop: bool | None = None

    def create_logic(self, attributes: Any) -> Any:
        return _TickerLogic(self)


class _TickerLogic(TimerGraphStageLogic, OutHandler):
    def __init__(self, stage: _Ticker) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.set_handler(stage.shape.out, self)

    def pre_start(self) -> None:
        self.stage.setup(self)

    def on_pull(self) -> None:
        pass

    def on_timer(self, key: Any) -> None:
        self.stage.fired.append(key)
        out = self.stage.shape.out
        if self.is_available(out):
            self.push(out, key)

    def post_stop(self) -> None:
        if self.stage.stop is not None:
            self.stage.stop(self)
            self.stage.active_after_stop = self.is_timer_active("late")


@pytest.mark.parametrize(
    ("call", "text"),
    [
        (lambda s: s.schedule_at_fixed_rate("t", 0, 0), "interval must be > 0, got 0"),
        (lambda s: s.schedule_at_fixed_rate("t", 1.0, -1.0), "interval must be > 0, got -1.0"),
        (lambda s: s.schedule_with_fixed_delay("t", 0.0, 0.0), "delay must be > 0, got 0.0"),
        (lambda s: s.schedule_with_fixed_delay("t", -1.0, 1.0), "initial_delay must be >= 0"),
        (lambda s: s.schedule_at_fixed_rate("t", 0, float("nan")), "interval must be a finite"),
    ],
)
async def test_periodic_timer_rejects_non_positive_interval(
    materializer: Materializer, manual_clock: ManualClock, call: Any, text: str
) -> None:
    stage = _Ticker(call)
    fut = Source.from_graph(stage).run_with(TestSink.probe(), materializer)
    err = await fut.expect_error()
    assert isinstance(err, ValueError)
    assert str(err).startswith("[_Ticker] ")  # names the stage
    assert text in str(err)
    assert stage.fired == []
    assert manual_clock.pending == 0


async def test_periodic_timer_rejects_a_non_number(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    stage = _Ticker(lambda s: s.schedule_with_fixed_delay("t", 1.0, "1"))
    err = await Source.from_graph(stage).run_with(TestSink.probe(), materializer).expect_error()
    assert isinstance(err, TypeError)
    assert "delay must be a number of seconds > 0, got str '1'" in str(err)


async def test_valid_periodic_timer_still_fires(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    stage = _Ticker(lambda s: s.schedule_at_fixed_rate("t", 0, 1.0))
    probe = Source.from_graph(stage).run_with(TestSink.probe(), materializer)
    probe.request(3)
    await manual_clock.advance(0)
    await manual_clock.advance(1.0)
    await manual_clock.advance(1.0)
    assert await probe.expect_next_n(3) == ["t", "t", "t"]
    probe.cancel()


@pytest.mark.parametrize("how", ["once", "fixed_delay", "fixed_rate"])
async def test_timer_scheduled_in_post_stop_is_ignored(
    materializer: Materializer, manual_clock: ManualClock, how: str
) -> None:
    def late(s: Any) -> None:
        if how == "once":
            s.schedule_once("late", 0.5)
        elif how == "fixed_delay":
            s.schedule_with_fixed_delay("late", 0.5, 0.5)
        else:
            s.schedule_at_fixed_rate("late", 0.5, 0.5)

    stage = _Ticker(lambda s: s.schedule_once("t", 1.0), late)
    probe = Source.from_graph(stage).run_with(TestSink.probe(), materializer)
    probe.request(1)
    await manual_clock.advance(1.0)
    assert await probe.expect_next() == "t"
    probe.cancel()
    await manual_clock.settle()
    # As in Akka, a stopped stage's timers never fire; nothing is left armed on the clock.
    assert stage.active_after_stop is False
    assert manual_clock.pending == 0
    await manual_clock.advance(5.0)
    assert stage.fired == ["t"]
