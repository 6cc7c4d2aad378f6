"""A stream failure nobody observes is logged once, naming the stage (issue 12 item 8).

The failure reaches the user through the awaitables among the materialized values;
when the last of them is collected without anyone having awaited it or retrieved its
exception (nor a ``SourceQueue.offer`` / ``SinkQueue.pull`` having raised it), one
ERROR record goes to the ``reactive`` logger. ``gc.collect()`` makes collection
deterministic where a test keeps a reference in a frame.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from reactive import (
    Flow,
    Keep,
    Materializer,
    NotUsed,
    OverflowStrategy,
    RestartSettings,
    RestartSink,
    RestartSource,
    Sink,
    Source,
)
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SinkShape,
)
from reactive.testkit import ManualClock, TestSink, TestSource


class Boom(Exception):
    pass


def boom(x: Any) -> Any:
    raise Boom(f"bad {x}")


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)
    gc.collect()


def unobserved(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "reactive" and "nobody observed the failure" in r.getMessage()
    ]


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="reactive")


async def test_unawaited_failed_result_is_logged_once_with_the_stage(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    # The program: the future returned by run_with is never awaited.
    Source.from_iterable([1, 2, 3]).run_with(Sink.foreach(boom), materializer)
    await settle()
    records = unobserved(caplog)
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.getMessage().startswith("[foreach_sink] ")
    assert "Boom('bad 1')" in record.getMessage()
    assert record.exc_info is not None and isinstance(record.exc_info[1], Boom)


async def test_the_stage_named_is_where_the_failure_started(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    Source.from_iterable([1, 2]).map(boom).named("parse").run_with(Sink.seq(), materializer)
    Source.failed(Boom("at the source")).run_with(Sink.ignore(), materializer)
    await settle()
    messages = sorted(r.getMessage() for r in unobserved(caplog))
    assert len(messages) == 2
    assert messages[0].startswith("[failed_source] ") and "at the source" in messages[0]
    assert messages[1].startswith("[parse] ") and "bad 1" in messages[1]


async def test_logged_as_soon_as_the_stream_ended_when_nothing_holds_the_result(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    Source.from_iterable([1]).run_with(Sink.foreach(boom), materializer)
    for _ in range(20):  # no garbage collection: the result is released, not collected
        await asyncio.sleep(0)
    assert len(unobserved(caplog)) == 1


async def test_a_result_kept_and_never_awaited_is_logged_when_dropped(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    result = Source.from_iterable([1]).map(boom).run_with(Sink.seq(), materializer)
    for _ in range(20):
        await asyncio.sleep(0)
    assert result.done()
    assert unobserved(caplog) == []  # someone may still await it
    del result
    gc.collect()
    assert len(unobserved(caplog)) == 1


async def test_not_logged_when_the_result_is_awaited(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    result = Source.from_iterable([1]).run_with(Sink.foreach(boom), materializer)
    with pytest.raises(Boom):
        await result
    del result
    await settle()
    assert unobserved(caplog) == []


async def test_not_logged_when_the_exception_is_retrieved(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    result = Source.from_iterable([1]).run_with(Sink.foreach(boom), materializer)
    for _ in range(20):
        await asyncio.sleep(0)
    assert isinstance(result.exception(), Boom)
    del result
    await settle()
    assert unobserved(caplog) == []


async def test_a_materialized_value_that_is_not_awaitable_leaves_the_failure_unobserved(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    # to() keeps the source's NotUsed: the sink's result cannot be awaited by anyone.
    assert Source.from_iterable([1]).map(boom).to(Sink.ignore()).run(materializer) is NotUsed
    await settle()
    assert len(unobserved(caplog)) == 1


async def test_observed_through_another_awaitable_materialized_value(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    # Two awaitables fail with the same failure; awaiting either one observes it.
    done = (
        Source.from_iterable([1, 2])
        .watch_termination(Keep.right)
        .map(boom)
        .to(Sink.ignore())  # this result is dropped at once
        .run(materializer)
    )
    await settle()
    assert unobserved(caplog) == []  # ``done`` is still held
    with pytest.raises(Boom):
        await done
    del done
    await settle()
    assert unobserved(caplog) == []


async def test_two_unobserved_awaitables_of_one_failure_log_once(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    Source.from_iterable([1]).watch_termination(Keep.right).map(boom).to_mat(
        Sink.seq(), Keep.both
    ).run(materializer)
    await settle()
    records = unobserved(caplog)
    assert len(records) == 1
    assert records[0].getMessage().startswith("[map] ")


async def test_observed_through_a_queue_offer_raising_it(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    queue = (
        Source.queue(4, OverflowStrategy.backpressure)
        .map(boom)
        .to(Sink.ignore())  # the sink's result is dropped
        .run(materializer)
    )
    assert await queue.offer(1) is not None
    await settle()
    with pytest.raises(Boom):
        await queue.offer(2)
    await settle()
    del queue
    await settle()
    assert unobserved(caplog) == []


async def test_a_failure_reaching_no_awaitable_is_reported_where_it_arrives(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    probe = Source.from_iterable([1]).map(boom).run_with(TestSink.probe(), materializer)
    probe.request(1)
    assert isinstance(await probe.expect_error(), Boom)
    await settle()
    assert unobserved(caplog) == []


async def test_a_materializer_shutdown_is_not_a_failure_to_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mat = Materializer()
    result = Source.never().run_with(Sink.seq(), mat)
    await settle()
    await mat.shutdown()
    assert result.done()  # failed with AbruptTerminationError: the user stopped it
    del result
    await settle()
    assert unobserved(caplog) == []


async def test_the_same_exception_failing_two_runs_is_reported_per_run(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    failed = Source.failed(Boom("shared"))
    first = failed.run_with(Sink.seq(), materializer)
    with pytest.raises(Boom):
        await first
    del first
    await settle()
    failed.run_with(Sink.seq(), materializer)  # never awaited
    await settle()
    assert len(unobserved(caplog)) == 1


async def test_observed_by_a_test_probe_while_another_awaitable_is_dropped(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    # also_to keeps the main line's materialized value: Sink.ignore()'s result is
    # dropped, and the failure is seen through the probe.
    probe = (
        Source.from_iterable([1])
        .map(boom)
        .also_to(Sink.ignore())
        .run_with(TestSink.probe(), materializer)
    )
    probe.request(1)
    assert isinstance(await probe.expect_error(), Boom)
    await settle()
    assert unobserved(caplog) == []


async def test_a_cancellation_cause_seen_by_a_publisher_probe_is_observed(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    pub = TestSource.probe().to(Sink.foreach(boom)).run(materializer)  # result dropped
    await pub.expect_request()
    pub.send_next(1)
    assert isinstance(await pub.expect_cancellation(), Boom)
    await settle()
    assert unobserved(caplog) == []


async def test_an_inner_failure_a_restart_handles_is_not_reported(
    manual_clock: ManualClock, materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = RestartSettings(0.1, 0.2, 0.0)
    seen: list[int] = []
    runs = [0]

    def each(x: int) -> None:
        if runs[0] == 0:
            raise Boom("first run")
        seen.append(x)

    def make_sink() -> Sink[int, Any]:
        return Sink.foreach(each)  # RestartSink drops each inner sink's result

    def make_source() -> Source[int, Any]:
        runs[0] += 1
        if runs[0] == 1:
            return Source.from_iterable([1]).map(boom)  # the inner source fails once
        return Source.from_iterable([2, 3])

    restarted_source = RestartSource.on_failures_with_backoff(settings, make_source).run_with(
        Sink.seq(), materializer
    )
    await manual_clock.settle()
    await manual_clock.advance(0.1)
    assert await restarted_source == [2, 3]

    runs[0] = 0
    queue = (
        Source.queue(4, OverflowStrategy.backpressure)
        .to(RestartSink.with_backoff(settings, make_sink))
        .run(materializer)
    )
    await queue.offer(1)  # fails the first inner sink: restarted
    await manual_clock.settle()
    runs[0] = 1
    await manual_clock.advance(0.1)
    await queue.offer(2)
    queue.complete()
    await queue.watch_completion()
    await settle()
    assert seen == [2]
    assert unobserved(caplog) == []


# -- failures nothing downstream can carry (found by an exploratory review) --------------
def unreached(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "reactive" and "the failure reached no awaitable" in r.getMessage()
    ]


class _RaisingSink(GraphStage[SinkShape]):
    """A custom sink materializing no awaitable whose ``on_push`` raises at 3."""

    def __init__(self) -> None:
        self.shape = SinkShape(Inlet("RaisingSink.in"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape

        class Logic(GraphStageLogic, InHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handler(shape.in_, self)

            def pre_start(self) -> None:
                self.pull(shape.in_)

            def on_push(self) -> None:
                if self.grab(shape.in_) == 3:
                    raise Boom("bug in my sink")
                self.pull(shape.in_)

        return Logic()


class _CompleteThenPush(GraphStage[FlowShape]):
    """Completes its outlet, then pushes to it (a PortStateError downstream never sees)."""

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("CTP.in"), Outlet("CTP.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handlers(shape.in_, shape.out, self)

            def on_push(self) -> None:
                x = self.grab(shape.in_)
                self.complete(shape.out)
                self.push(shape.out, x)

            def on_pull(self) -> None:
                self.pull(shape.in_)

        return Logic()


async def test_a_sinks_own_failure_reaching_no_awaitable_is_logged(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    """A custom sink without an awaitable materialized value: its handler's exception
    fails the stream, and before nothing said so (not a record, not a log line)."""
    Source.from_iterable(range(10)).run_with(Sink.from_graph(_RaisingSink()), materializer)
    await settle()
    records = unreached(caplog)
    assert len(records) == 1
    assert records[0].getMessage().startswith("[_RaisingSink] ")
    assert "Boom('bug in my sink')" in records[0].getMessage()
    assert records[0].exc_info is not None and isinstance(records[0].exc_info[1], Boom)
    assert unobserved(caplog) == []


async def test_a_push_to_a_completed_outlet_is_logged(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    got = await (
        Source.from_iterable([1, 2])
        .via(Flow.from_graph(_CompleteThenPush()))
        .run_with(Sink.seq(), materializer)
    )
    assert got == []  # downstream saw the completion first, as in Akka
    await settle()
    records = unreached(caplog)
    assert len(records) == 1
    assert "Cannot push closed port" in records[0].getMessage()


async def test_a_sinks_failure_that_fails_its_result_is_not_logged_twice(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    """A built-in sink failing its own result: the result carries it (awaited here)."""
    with pytest.raises(Boom):
        await Source.from_iterable([1]).run_with(Sink.foreach(boom), materializer)
    await settle()
    assert unreached(caplog) == []
    assert unobserved(caplog) == []


@pytest.mark.parametrize("fast", [True, False])
async def test_switch_map_failing_with_an_inner_element_on_its_way_logs_nothing(
    caplog: pytest.LogCaptureFixture, fast: bool
) -> None:
    """Found by a review: the inner element arriving after the upstream failure was
    pushed to the closed outlet, and that PortStateError was logged as a failure that
    reached no awaitable (the stream's own result was right)."""

    def gen() -> Any:
        yield 0
        yield 1
        raise Boom("upstream failed at 2")

    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(Boom):
            await Source.from_iterable(gen()).switch_map(Source.single).run_with(Sink.seq(), mat)
    await settle()
    assert unreached(caplog) == []
    assert unobserved(caplog) == []
