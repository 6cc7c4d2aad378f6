"""``AsyncCallback.invoke_with_feedback`` (Akka's ``invokeWithFeedback``: a future done once
the handler ran, failing when the stage stopped first or the handler raised) and the
``StageLogging`` mixin (Akka's ``StageLogging.log``: a logger per stage)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Done,
    Keep,
    Materializer,
    Sink,
    Source,
    StreamDetachedError,
)
from reactive.stage import (
    AsyncCallback,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    OutHandler,
    Outlet,
    SourceShape,
    StageLogging,
)
from reactive.testkit import TestSink


class Boom(Exception):
    """A test failure."""


class _PushLogic(StageLogging, GraphStageLogic, OutHandler):
    """Emits what its callback receives (when pulled); ``"stop"`` completes the stage,
    ``"raise"`` raises in the handler, ``"late"`` (on pull) queues a feedback call and
    completes before it can run."""

    def __init__(self, shape: SourceShape[Any]) -> None:
        super().__init__(shape)
        self.out = shape.out
        self.set_handler(self.out, self)
        self.cb: AsyncCallback[Any] = self.get_async_callback(self.on_msg)
        self.buf: list[Any] = []
        self.handled: list[Any] = []
        self.late: asyncio.Future[Any] | None = None

    def pre_start(self) -> None:
        self.log.info("started %s", self.stage_name)

    def on_msg(self, x: Any) -> None:
        self.handled.append(x)
        if x == "stop":
            self.complete_stage()
        elif x == "raise":
            raise Boom("in handler")
        elif x == "late":
            # queued behind this handler: the stage completes before it runs
            self.late = self.cb.invoke_with_feedback("never")
            self.complete_stage()
        else:
            self.buf.append(x)
            self.on_pull()

    def on_pull(self) -> None:
        if self.buf and self.is_available(self.out):
            self.push(self.out, self.buf.pop(0))


class PushSource(GraphStageWithMaterializedValue[SourceShape[Any], _PushLogic]):
    name = "push_source"

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet("PushSource.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, _PushLogic]:
        logic = _PushLogic(self.shape)
        return logic, logic


async def test_feedback_completes_once_the_handler_ran(materializer: Materializer) -> None:
    logic, probe = (
        Source.from_graph(PushSource()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    probe.request(2)
    assert await logic.cb.invoke_with_feedback(1) is Done
    assert logic.handled == [1]
    assert await logic.cb.invoke_with_feedback(2) is Done
    assert await probe.expect_next_n(2) == [1, 2]
    assert await logic.cb.invoke_with_feedback("stop") is Done
    await probe.expect_complete()


async def test_feedback_fails_when_the_stage_already_stopped(
    materializer: Materializer,
) -> None:
    logic, probe = (
        Source.from_graph(PushSource()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    probe.cancel()
    await probe.ensure_subscription()
    for _ in range(20):
        if logic.is_stopped:
            break
        await asyncio.sleep(0)
    fut = logic.cb.invoke_with_feedback("x")
    with pytest.raises(
        StreamDetachedError, match=r"\[push_source\] the stage stopped before the async"
    ):
        await fut
    assert logic.handled == []


async def test_feedback_fails_when_the_stage_stops_with_it_queued(
    materializer: Materializer,
) -> None:
    logic, probe = (
        Source.from_graph(PushSource()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    assert await logic.cb.invoke_with_feedback("late") is Done
    await probe.expect_complete()
    assert logic.late is not None
    with pytest.raises(
        StreamDetachedError, match="stopped before the async callback was processed"
    ):
        await logic.late
    assert logic.handled == ["late"]  # "never" was not handled


async def test_feedback_fails_with_the_handlers_exception(materializer: Materializer) -> None:
    logic, probe = (
        Source.from_graph(PushSource()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    with pytest.raises(Boom, match="in handler"):
        await logic.cb.invoke_with_feedback("raise")
    exc = await probe.expect_error()
    assert isinstance(exc, Boom)


async def test_feedback_fails_when_the_materializer_shuts_down() -> None:
    mat = Materializer()
    logic, done = Source.from_graph(PushSource()).to_mat(Sink.ignore(), Keep.both).run(mat)
    await mat.shutdown()
    with pytest.raises(StreamDetachedError, match="stopped before the async callback"):
        await logic.cb.invoke_with_feedback("x")
    with pytest.raises(AbruptTerminationError):
        await done


async def test_feedback_before_start_waits_for_the_start(materializer: Materializer) -> None:
    # An invocation made before the stage started is buffered (as invoke's) and answered
    # once it ran.
    class Prebuilt(PushSource):
        def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
            return logic, logic

    stage = Prebuilt()
    logic = _PushLogic(stage.shape)
    fut = logic.cb.invoke_with_feedback(7)
    assert not fut.done()

    probe = Source.from_graph(stage).run_with(TestSink.probe(), materializer)
    assert await fut is Done
    assert await probe.request_next() == 7
    probe.cancel()


# -- StageLogging ------------------------------------------------------------------------------
async def test_stage_logging_logger_is_named_after_the_stage(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="reactive.stage"):
        logic, probe = (
            Source.from_graph(PushSource()).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        await probe.ensure_subscription()
        logic2, probe2 = (
            Source.from_graph(PushSource())
            .named("orders")
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await probe2.ensure_subscription()
    records = [
        (r.name, r.getMessage()) for r in caplog.records if r.name.startswith("reactive.stage")
    ]
    assert ("reactive.stage.push_source", "started push_source") in records
    assert ("reactive.stage.orders", "started orders") in records
    assert isinstance(logic.log, logging.Logger)
    assert logic.log.name == "reactive.stage.push_source"
    assert logic2.log_source == "orders"
    probe.cancel()
    probe2.cancel()


def test_stage_logging_before_materialization_uses_the_logic_type() -> None:
    logic = _PushLogic(PushSource().shape)
    assert logic.log.name == "reactive.stage._PushLogic"
    assert logging.getLogger("reactive.stage._PushLogic").parent is not None
