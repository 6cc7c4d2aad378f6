"""Acceptance checks derived from Akka's own specs, through the public API only.

Sources of the cases: GraphStageLogicSpec (emit ordering, lifecycle order, constructor
misuse, missing handlers), KeepGoingStageSpec, GraphStageTimersSpec (on the manual
clock), handler defaults (catalog 5.2), the port state machine (catalog 5.4), FlowSpec /
SourceSpec / SinkSpec materialization cases, AttributesSpec (nearest wins),
ActorMaterializerSpec-style shutdown, the stream testkit probe specs, and the exported
error hierarchy. Cases already covered by test_custom_stages.py, test_smoke_core.py and
test_rs_tck.py are not repeated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    BufferOverflowError,
    ClosedShape,
    Done,
    Flow,
    GraphDSL,
    IllegalGraphError,
    Keep,
    Materializer,
    NoSuchElementError,
    NotUsed,
    PortStateError,
    RateExceededError,
    RunnableGraph,
    Sink,
    Source,
    StreamError,
    StreamLimitReachedError,
    StreamTimeoutError,
    Supervision,
    TooManySubstreamsError,
)
from reactive import Attributes as Attrs
from reactive.stage import (
    EAGER_TERMINATE_INPUT,
    EAGER_TERMINATE_OUTPUT,
    BidiShape,
    FanInShape2,
    FlowShape,
    GraphStage,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SinkShape,
    SourceShape,
    SubscriptionWithCancelError,
    TimerGraphStageLogic,
    UniformFanInShape,
    UniformFanOutShape,
)
from reactive.testkit import ManualClock, TestSink, TestSource

Hook = Callable[[Any], None] | None


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------------------
# A configurable flow stage: every callback can be replaced by a function of the logic.
# Unset callbacks behave as a pass-through stage with Akka's handler defaults.
# ---------------------------------------------------------------------------------------
class Spy(GraphStage[FlowShape]):
    """A flow stage whose callbacks are functions ``f(logic)``; ``log`` records hooks."""

    def __init__(
        self,
        name: str = "spy",
        *,
        pre_start: Hook = None,
        on_push: Hook = None,
        on_pull: Hook = None,
        on_finish: Hook = None,
        on_failure: Callable[[Any, BaseException], None] | None = None,
        on_cancel: Callable[[Any, BaseException], None] | None = None,
        on_timer: Callable[[Any, Any], None] | None = None,
        post_stop: Hook = None,
        constructor: Hook = None,
        log: list[Any] | None = None,
    ) -> None:
        self.name = name
        self.shape = FlowShape(Inlet(f"{name}.in"), Outlet(f"{name}.out"))
        self.hooks = {
            "pre_start": pre_start,
            "on_push": on_push,
            "on_pull": on_pull,
            "on_finish": on_finish,
            "on_failure": on_failure,
            "on_cancel": on_cancel,
            "on_timer": on_timer,
            "post_stop": post_stop,
            "constructor": constructor,
        }
        self.log = log if log is not None else []

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _SpyLogic(self, attributes)


class _SpyLogic(TimerGraphStageLogic, InHandler, OutHandler):
    def __init__(self, stage: Spy, attributes: Any) -> None:
        super().__init__(stage.shape)
        self.in_ = stage.shape.in_
        self.out = stage.shape.out
        self.h = stage.hooks
        self.log = stage.log
        self.created_with = attributes
        self.state: dict[str, Any] = {}
        self.set_handlers(self.in_, self.out, self)
        if self.h["constructor"]:
            self.h["constructor"](self)

    def pre_start(self) -> None:
        self.log.append("pre_start")
        if self.h["pre_start"]:
            self.h["pre_start"](self)

    def on_push(self) -> None:
        if self.h["on_push"]:
            self.h["on_push"](self)
        else:
            self.push(self.out, self.grab(self.in_))

    def on_pull(self) -> None:
        if self.h["on_pull"]:
            self.h["on_pull"](self)
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.log.append("upstream_finish")
        if self.h["on_finish"]:
            self.h["on_finish"](self)
        else:
            super().on_upstream_finish()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.log.append(("upstream_failure", exc))
        if self.h["on_failure"]:
            self.h["on_failure"](self, exc)
        else:
            super().on_upstream_failure(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.log.append(("downstream_finish", cause))
        if self.h["on_cancel"]:
            self.h["on_cancel"](self, cause)
        else:
            super().on_downstream_finish(cause)

    def on_timer(self, key: Any) -> None:
        if self.h["on_timer"]:
            self.h["on_timer"](self, key)

    def post_stop(self) -> None:
        self.log.append("post_stop")
        if self.h["post_stop"]:
            self.h["post_stop"](self)


def probes(stage: Any, materializer: Materializer) -> tuple[Any, Any]:
    """Run ``TestSource -> stage -> TestSink``; returns (publisher probe, subscriber probe)."""
    return TestSource.probe().via(stage).to_mat(TestSink.probe(), Keep.both).run(materializer)


# =======================================================================================
# GraphStageLogicSpec: emit / emit_multiple / read
# =======================================================================================
def _emit_5678_on_finish(lg: Any) -> None:
    lg.emit(lg.out, 5, lambda: lg.emit(lg.out, 6))
    lg.emit(lg.out, 7, lambda: lg.emit(lg.out, 8))
    lg.complete_stage()


async def test_emit_then_complete_stage_emits_everything_and_and_then_emits(
    materializer: Materializer,
) -> None:
    # GraphStageLogicSpec emit5678: the emit done by the last and_then still goes out
    # before the completion that complete_stage queued behind the pending emits.
    out = (
        Source.from_iterable([1, 2])
        .via(Spy("emit5678", on_finish=_emit_5678_on_finish))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == [1, 2, 5, 6, 7, 8]


async def test_emit_5678_element_by_element(materializer: Materializer) -> None:
    pub, sub = probes(Spy("emit5678", on_finish=_emit_5678_on_finish), materializer)
    sub.request(1)
    assert await pub.expect_request() == 1
    pub.send_complete()
    await sub.expect_next(5)
    await sub.expect_no_message(0.02)
    for x in (6, 7, 8):
        assert await sub.request_next() == x
    await sub.expect_complete()


class Emit1234(GraphStage[FlowShape]):
    """GraphStageLogicSpec's emit1234: emits queued in pre_start with eager handlers."""

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("emit1234.in"), Outlet("emit1234.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        out = self.shape.out
        logic = GraphStageLogic(self.shape)
        logic.set_handler(self.shape.in_, EAGER_TERMINATE_INPUT)
        logic.set_handler(out, EAGER_TERMINATE_OUTPUT)

        def pre_start() -> None:
            logic.emit(out, 1, lambda: logic.emit(out, 2))
            logic.emit(out, 3, lambda: logic.emit(out, 4))

        logic.pre_start = pre_start  # type: ignore[method-assign]
        return logic


async def test_emit_all_things_before_completing(materializer: Materializer) -> None:
    stage = Flow.from_graph(Emit1234()).named("testStage")
    sub = Source.empty().via(stage).run_with(TestSink.probe(), materializer)
    sub.request(5)
    await sub.expect_next(1)
    await sub.expect_next_unordered(2, 3)
    await sub.expect_next(4)
    await sub.expect_complete()


class EmitEmptyIterable(GraphStage[SourceShape]):
    """emit_multiple of nothing runs and_then right away (GraphStageLogicSpec)."""

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet("emitEmpty.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        out = self.shape.out
        logic = GraphStageLogic(self.shape)

        class H(OutHandler):
            def on_pull(self) -> None:
                logic.emit_multiple(
                    out, iter(()), lambda: logic.emit(out, 42, logic.complete_stage)
                )

        logic.set_handler(out, H())
        return logic


async def test_emit_properly_after_empty_iterable(materializer: Materializer) -> None:
    assert await Source.from_graph(EmitEmptyIterable()).run_with(Sink.seq(), materializer) == [42]


async def test_emits_queue_in_call_order_and_and_then_runs_after_the_last_push(
    materializer: Materializer,
) -> None:
    log: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.emit(lg.out, "a", lambda: log.append("after a"))
        lg.emit_multiple(lg.out, ["b", "c"], lambda: log.append("after bc"))
        lg.emit(lg.out, "d", lambda: log.append("after d"))

    pub, sub = probes(Spy("emits", pre_start=pre_start, log=log), materializer)
    assert await sub.request_next() == "a"
    await settle()
    assert log == ["pre_start", "after a"]
    assert await sub.request_next() == "b"
    await settle()
    assert "after bc" not in log
    assert await sub.request_next() == "c"
    await settle()
    assert log[-1] == "after bc"
    assert await sub.request_next() == "d"
    await settle()
    assert log[-1] == "after d"
    # The emits are done: the normal handler is back and pulls upstream.
    sub.request(1)
    assert await pub.expect_request() == 1
    pub.send_next("e")
    await sub.expect_next("e")
    pub.send_complete()
    await sub.expect_complete()


async def test_complete_out_waits_for_pending_emits(materializer: Materializer) -> None:
    def on_finish(lg: Any) -> None:
        lg.emit_multiple(lg.out, [10, 11, 12])
        lg.complete(lg.out)
        lg.state["closed_right_after_complete"] = lg.is_closed(lg.out)

    spy = Spy("emit_complete", on_finish=on_finish)
    pub, sub = probes(spy, materializer)
    pub.send_complete()
    await settle()
    await sub.expect_no_message(0.02)
    assert await sub.request_next() == 10
    await sub.expect_no_message(0.02)
    sub.request(2)
    await sub.expect_next(11, 12)
    await sub.expect_complete()


async def test_fail_out_drops_pending_emits(materializer: Materializer) -> None:
    err = Boom("now")

    def on_finish(lg: Any) -> None:
        lg.emit_multiple(lg.out, [1, 2, 3])
        lg.fail(lg.out, err)

    pub, sub = probes(Spy("emit_fail", on_finish=on_finish), materializer)
    pub.send_complete()
    assert await sub.expect_error() is err


async def test_read_takes_one_element_and_restores_the_handler(
    materializer: Materializer,
) -> None:
    # read(inlet, and_then) pulls if needed; afterwards the stage's own handler is back.
    def got_header(lg: Any, x: Any) -> None:
        lg.state["header"] = x
        if lg.is_available(lg.out):
            lg.pull(lg.in_)

    def pre_start(lg: Any) -> None:
        lg.read(lg.in_, lambda x: got_header(lg, x))

    def on_pull(lg: Any) -> None:
        if "header" in lg.state and not lg.has_been_pulled(lg.in_):
            lg.pull(lg.in_)

    def on_push(lg: Any) -> None:
        lg.push(lg.out, (lg.state["header"], lg.grab(lg.in_)))

    out = (
        Source.from_iterable(["h", 1, 2])
        .via(Spy("reader", pre_start=pre_start, on_pull=on_pull, on_push=on_push))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == [("h", 1), ("h", 2)]


@pytest.mark.parametrize(("n", "xs", "want"), [(3, [1, 2, 3, 4], [1, 2, 3]), (0, [1], [])])
async def test_read_n_reads_n_elements_then_the_stage_goes_on(
    materializer: Materializer, n: int, xs: list[int], want: list[int]
) -> None:
    """Akka's readN: the first ``n`` elements as one list, then the own handler again."""

    def pre_start(lg: Any) -> None:
        def header(got: list[int]) -> None:
            lg.state["header"] = got
            if lg.is_available(lg.out):
                lg.pull(lg.in_)

        lg.read_n(lg.in_, n, header, lambda got: lg.state.setdefault("closed", got))

    def on_pull(lg: Any) -> None:
        if "header" in lg.state and not lg.has_been_pulled(lg.in_):
            lg.pull(lg.in_)

    def on_push(lg: Any) -> None:
        lg.push(lg.out, (lg.state["header"], lg.grab(lg.in_)))

    out = (
        Source.from_iterable(xs)
        .via(Spy("read_n", pre_start=pre_start, on_pull=on_pull, on_push=on_push))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == [(want, x) for x in xs[n:]]


async def test_read_n_on_close_gets_what_was_read(materializer: Materializer) -> None:
    log: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.read_n(lg.in_, 5, lambda got: log.append(("all", got)), lambda got: log.append(got))

    out = (
        Source.from_iterable([7, 8])
        .via(Spy("read_n_close", pre_start=pre_start, on_pull=lambda lg: None, log=log))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == []
    assert [7, 8] in log and not any(isinstance(e, tuple) and e[0] == "all" for e in log)


async def test_read_twice_on_one_inlet_is_an_error(materializer: Materializer) -> None:
    # Akka's requireNotReading: a second read while the first waits is misuse.
    errors: list[PortStateError] = []

    def pre_start(lg: Any) -> None:
        lg.read(lg.in_, lambda x: None)
        try:
            lg.read(lg.in_, lambda x: None)
        except PortStateError as exc:
            errors.append(exc)

    pub, sub = probes(Spy("double_reader", pre_start=pre_start), materializer)
    await settle()
    [err] = errors
    assert "Already reading" in str(err)
    assert "double_reader" in str(err)
    pub.send_complete()
    sub.cancel()


async def test_read_on_close_then_the_previous_handler_sees_the_finish(
    materializer: Materializer,
) -> None:
    log: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.read(lg.in_, lambda x: log.append(("read", x)), lambda: log.append("on_close"))

    out = (
        Source.empty()
        .via(Spy("read_close", pre_start=pre_start, log=log))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == []
    # on_close first, then the previous handler's on_upstream_finish (which completes).
    assert log.index("on_close") < log.index("upstream_finish")
    assert log[-1] == "post_stop"


async def test_read_on_failure_goes_to_the_previous_handler(materializer: Materializer) -> None:
    err = Boom("read")
    log: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.read(lg.in_, lambda x: log.append(("read", x)), lambda: log.append("on_close"))

    out = (
        Source.failed(err)
        .via(Spy("read_fail", pre_start=pre_start, log=log))
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(Boom):
        await out
    assert ("upstream_failure", err) in log
    assert "on_close" not in log


async def test_read_with_an_element_already_available_calls_and_then_at_once(
    materializer: Materializer,
) -> None:
    got: list[Any] = []

    def on_push(lg: Any) -> None:
        # Do not grab: read() finds the element available and hands it over now.
        lg.read(lg.in_, lambda x: got.append(("now", x)))
        lg.complete_stage()

    pub, sub = probes(Spy("read_avail", on_push=on_push), materializer)
    sub.request(1)
    pub.send_next(7)
    await sub.expect_complete()
    assert got == [("now", 7)]


# =======================================================================================
# GraphStageLogicSpec: lifecycle, constructor misuse, missing handlers
# =======================================================================================
async def test_lifecycle_hooks_in_the_right_order(materializer: Materializer) -> None:
    # on_pull calls complete_stage() and then logs "pulled": post_stop comes after the
    # handler returned, never in the middle of it.
    log: list[Any] = []

    def on_pull(lg: Any) -> None:
        lg.complete_stage()
        log.append("pulled")

    done = (
        Source.single(1)
        .via(Spy("lifecycle", on_pull=on_pull, log=log))
        .run_with(Sink.ignore(), materializer)
    )
    assert await done is Done
    assert log == ["pre_start", "pulled", "post_stop"]


async def test_post_stop_runs_after_a_fail_stage_handler_returns(
    materializer: Materializer,
) -> None:
    log: list[Any] = []
    err = Boom("fs")

    def on_pull(lg: Any) -> None:
        lg.fail_stage(err)
        log.append("after fail_stage")

    out = (
        Source.single(1)
        .via(Spy("lifecycle_fail", on_pull=on_pull, log=log))
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(Boom):
        await out
    assert log == ["pre_start", "after fail_stage", "post_stop"]


async def test_post_stop_runs_once(materializer: Materializer) -> None:
    log: list[Any] = []

    def on_pull(lg: Any) -> None:
        lg.complete_stage()
        lg.complete_stage()
        lg.fail_stage(Boom("late"))
        lg.cancel(lg.in_)
        lg.complete(lg.out)

    await (
        Source.single(1)
        .via(Spy("once", on_pull=on_pull, log=log))
        .run_with(Sink.ignore(), materializer)
    )
    await settle()
    assert log.count("post_stop") == 1


@pytest.mark.parametrize("action", ["push", "pull"])
async def test_port_actions_from_the_constructor_fail_at_materialization(
    materializer: Materializer, action: str
) -> None:
    def ctor(lg: Any) -> None:
        if action == "push":
            lg.push(lg.out, 1)
        else:
            lg.pull(lg.in_)

    with pytest.raises(PortStateError) as info:
        Source.single(1).via(Spy("ctor", constructor=ctor)).run_with(Sink.ignore(), materializer)
    msg = str(info.value)
    assert "[ctor]" in msg
    assert "constructor" in msg
    assert ("ctor.out" if action == "push" else "ctor.in") in msg


class Forgetful(GraphStage[FlowShape]):
    """Forgets its handlers (GraphStageLogicSpec: good error message if handler missing)."""

    def __init__(self, forget: str) -> None:
        self.name = "stage-name"
        self.forget = forget
        self.shape = FlowShape(Inlet("in"), Outlet("out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        logic = GraphStageLogic(self.shape)
        if self.forget == "out":

            class H(InHandler):
                def on_push(self) -> None:
                    pass

            logic.set_handler(self.shape.in_, H())
        return logic


@pytest.mark.parametrize(
    ("forget", "where"),
    [("in", "fused"), ("out", "fused"), ("out", "async downstream"), ("out", "island")],
)
async def test_missing_handler_fails_run_naming_stage_and_port(
    materializer: Materializer, forget: str, where: str
) -> None:
    flow: Any = Flow.from_graph(Forgetful(forget))
    if where == "island":
        flow = flow.async_boundary()
    sink: Any = Sink.ignore().async_boundary() if where == "async downstream" else Sink.ignore()
    graph = Source.never().via(flow).map(lambda x: "whatever").to(sink)
    with pytest.raises(PortStateError) as info:
        graph.run(materializer)
    # Also an IllegalGraphError: the graph cannot be started.
    assert isinstance(info.value, IllegalGraphError)
    msg = str(info.value)
    assert "stage-name" in msg
    assert repr(forget) in msg
    assert "handler" in msg.lower()


# =======================================================================================
# Handler defaults (catalog 5.2)
# =======================================================================================
async def test_default_on_upstream_finish_completes_the_stage(materializer: Materializer) -> None:
    log: list[Any] = []
    out = Source.from_iterable([1, 2]).via(Spy("d1", log=log)).run_with(Sink.seq(), materializer)
    assert await out == [1, 2]
    assert log == ["pre_start", "upstream_finish", "post_stop"]


async def test_default_on_upstream_failure_fails_the_stage_with_the_same_error(
    materializer: Materializer,
) -> None:
    err = Boom("up")
    pub, sub = probes(Spy("d2"), materializer)
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_default_on_downstream_finish_completes_and_cancels_upstream(
    materializer: Materializer,
) -> None:
    log: list[Any] = []
    pub, sub = probes(Spy("d3", log=log), materializer)
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    sub.cancel()
    cause = await pub.expect_cancellation()
    # A normal cancellation: the upstream sees a non-failure cause.
    assert isinstance(cause, SubscriptionWithCancelError)
    await settle()
    assert log[-1] == "post_stop"


async def test_default_on_downstream_finish_with_an_error_cause_propagates_it_upstream(
    materializer: Materializer,
) -> None:
    err = Boom("down")
    pub, sub = probes(Spy("d4"), materializer)
    sub.request(1)
    await pub.expect_request()
    sub.cancel(err)
    assert await pub.expect_cancellation() is err


class TwoOut(GraphStage[Any]):
    """A broadcast-like stage on a UniformFanOutShape with default cancel handlers."""

    def __init__(self) -> None:
        self.shape = UniformFanOutShape(Inlet("two.in"), Outlet("two.out0"), Outlet("two.out1"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape
        logic = GraphStageLogic(shape)

        class In(InHandler):
            def on_push(self) -> None:
                x = logic.grab(shape.in_)
                for i in range(2):
                    if not logic.is_closed(shape.out(i)):
                        logic.emit(shape.out(i), x)

        class Out(OutHandler):
            def on_pull(self) -> None:
                if not logic.has_been_pulled(shape.in_) and not logic.is_closed(shape.in_):
                    logic.pull(shape.in_)

        logic.set_handler(shape.in_, In())
        logic.set_handler(shape.out(0), Out())
        logic.set_handler(shape.out(1), Out())
        return logic


def _two_out_graph(stage: Any) -> RunnableGraph[Any]:
    def blueprint(b: Any, src: Any, s0: Any, s1: Any) -> Any:
        t = b.add(stage)
        src.out >> t.in_
        t.out(0) >> s0.in_
        t.out(1) >> s1.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(blueprint, TestSource.probe(), TestSink.probe(), TestSink.probe())
    )


async def test_default_cancel_of_one_output_completes_the_others(
    materializer: Materializer,
) -> None:
    pub, s0, s1 = _two_out_graph(TwoOut()).run(materializer)
    s0.request(1)
    s1.request(1)
    pub.send_next("x")
    await s0.expect_next("x")
    await s1.expect_next("x")
    s0.cancel()
    await s1.expect_complete()
    await pub.expect_cancellation()


async def test_default_cancel_with_failure_cause_fails_the_other_outputs(
    materializer: Materializer,
) -> None:
    err = Boom("cause")
    pub, s0, s1 = _two_out_graph(TwoOut()).run(materializer)
    s1.request(1)
    await pub.expect_request()
    s0.cancel(err)
    assert await s1.expect_error() is err
    assert await pub.expect_cancellation() is err


# =======================================================================================
# Port state machine (catalog 5.4)
# =======================================================================================
async def test_port_queries_follow_the_state_machine(materializer: Materializer) -> None:
    seen: list[Any] = []

    def pre_start(lg: Any) -> None:
        seen.append(("pre", lg.has_been_pulled(lg.in_), lg.is_available(lg.in_)))
        seen.append(("pre_out", lg.is_available(lg.out), lg.is_closed(lg.out)))

    def on_pull(lg: Any) -> None:
        seen.append(("on_pull", lg.is_available(lg.out)))
        lg.pull(lg.in_)
        seen.append(("pulled", lg.has_been_pulled(lg.in_), lg.is_available(lg.in_)))

    def on_push(lg: Any) -> None:
        seen.append(("on_push", lg.is_available(lg.in_), lg.has_been_pulled(lg.in_)))
        x = lg.grab(lg.in_)
        seen.append(("grabbed", lg.is_available(lg.in_)))
        lg.push(lg.out, x)
        seen.append(("pushed", lg.is_available(lg.out)))

    def on_finish(lg: Any) -> None:
        seen.append(("finish", lg.is_closed(lg.in_), lg.has_been_pulled(lg.in_)))
        lg.complete_stage()
        seen.append(("completed", lg.is_closed(lg.out)))

    spy = Spy("ports", pre_start=pre_start, on_pull=on_pull, on_push=on_push, on_finish=on_finish)
    assert await Source.single(1).via(spy).run_with(Sink.seq(), materializer) == [1]
    assert seen[:7] == [
        ("pre", False, False),
        ("pre_out", False, False),
        ("on_pull", True),
        ("pulled", True, False),
        ("on_push", True, False),
        ("grabbed", False),
        ("pushed", False),
    ]
    # Source.single may complete together with its element or after the next pull.
    rest = seen[7:]
    if rest[0] == ("on_pull", True):
        assert rest[1] == ("pulled", True, False)
        rest = rest[2:]
    assert rest == [("finish", True, False), ("completed", True)]


async def test_element_can_be_grabbed_after_upstream_completed(
    materializer: Materializer,
) -> None:
    # Akka: an element that arrived before the completion can still be grabbed.
    def on_push(lg: Any) -> None:
        lg.state["pushed"] = True  # no grab yet

    def on_finish(lg: Any) -> None:
        assert lg.is_closed(lg.in_)
        assert lg.is_available(lg.in_)
        lg.emit(lg.out, lg.grab(lg.in_))
        lg.complete_stage()

    out = (
        Source.single("late")
        .via(Spy("late_grab", on_push=on_push, on_finish=on_finish))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == ["late"]


async def test_cancel_and_complete_are_idempotent(materializer: Materializer) -> None:
    def on_pull(lg: Any) -> None:
        lg.cancel(lg.in_)
        lg.cancel(lg.in_)
        lg.complete(lg.out)
        lg.complete(lg.out)
        lg.fail(lg.out, Boom("ignored after complete"))

    out = Source.never().via(Spy("idem", on_pull=on_pull)).run_with(Sink.seq(), materializer)
    assert await out == []


async def test_try_pull_on_closed_inlet_is_a_no_op(materializer: Materializer) -> None:
    def on_pull(lg: Any) -> None:
        lg.cancel(lg.in_)
        lg.try_pull(lg.in_)
        lg.complete(lg.out)

    out = Source.never().via(Spy("trypull", on_pull=on_pull)).run_with(Sink.seq(), materializer)
    assert await out == []


async def test_cancel_of_an_inlet_does_not_stop_a_stage_with_an_open_outlet(
    materializer: Materializer,
) -> None:
    def pre_start(lg: Any) -> None:
        lg.cancel(lg.in_)

    def on_pull(lg: Any) -> None:
        lg.push(lg.out, "after cancel")
        lg.complete(lg.out)

    pub, sub = probes(Spy("half", pre_start=pre_start, on_pull=on_pull), materializer)
    await pub.expect_cancellation()
    assert await sub.request_next() == "after cancel"
    await sub.expect_complete()


async def test_cancel_discards_an_element_not_yet_grabbed(materializer: Materializer) -> None:
    seen: list[Any] = []

    def on_push(lg: Any) -> None:
        seen.append(lg.is_available(lg.in_))
        lg.cancel(lg.in_)
        seen.append((lg.is_available(lg.in_), lg.is_closed(lg.in_), lg.has_been_pulled(lg.in_)))
        lg.complete(lg.out)

    pub, sub = probes(Spy("discard", on_push=on_push), materializer)
    sub.request(1)
    pub.send_next(1)
    await sub.expect_complete()
    await pub.expect_cancellation()
    assert seen == [True, (False, True, False)]


async def test_pull_without_grab_drops_the_element(materializer: Materializer) -> None:
    # Catalog 5.4: pulling in Available without grabbing drops the element.
    def on_push(lg: Any) -> None:
        n = lg.state.get("n", 0)
        lg.state["n"] = n + 1
        if n == 0:
            lg.pull(lg.in_)  # drop the first element unseen
        else:
            lg.push(lg.out, lg.grab(lg.in_))

    out = (
        Source.from_iterable(["dropped", "kept", "also kept"])
        .via(Spy("drop_first", on_push=on_push))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == ["kept", "also kept"]


async def test_failure_in_pre_start_fails_the_stream_and_runs_post_stop(
    materializer: Materializer,
) -> None:
    err = Boom("pre_start")
    log: list[Any] = []

    def pre_start(lg: Any) -> None:
        raise err

    pub, sub = probes(Spy("bad_start", pre_start=pre_start, log=log), materializer)
    assert await sub.expect_error() is err
    assert await pub.expect_cancellation() is err
    await settle()
    assert log == ["pre_start", "post_stop"]


async def test_failure_in_post_stop_does_not_change_the_outcome(
    materializer: Materializer,
) -> None:
    def post_stop(lg: Any) -> None:
        raise Boom("post_stop")

    out = (
        Source.from_iterable([1, 2])
        .via(Spy("bad_stop", post_stop=post_stop))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == [1, 2]


# =======================================================================================
# Async callbacks
# =======================================================================================
class CallbackSink(GraphStageWithMaterializedValue[SinkShape, Any]):
    """A sink whose materialized value is an async callback obtained in the constructor."""

    def __init__(self, log: list[Any], keep_going: bool = False) -> None:
        self.shape = SinkShape(Inlet("cb.in"))
        self.log = log
        self.keep_going = keep_going

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        log = self.log
        shape = self.shape
        keep_going = self.keep_going

        class Logic(GraphStageLogic, InHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handler(shape.in_, self)
                self.cb = self.get_async_callback(self.on_cmd)

            def pre_start(self) -> None:
                log.append("pre_start")
                self.set_keep_going(keep_going)
                self.pull(shape.in_)

            def on_cmd(self, cmd: Any) -> None:
                if cmd == "complete":
                    self.complete_stage()
                    log.append("end_of_handler")
                elif cmd == "fail":
                    self.fail_stage(Boom("test"))
                    log.append("end_of_handler")
                elif cmd == "throw":
                    try:
                        raise Boom("thrown")
                    finally:
                        log.append("end_of_handler")
                else:
                    log.append(("cb", cmd))

            def on_push(self) -> None:
                log.append(("push", self.grab(shape.in_)))
                self.pull(shape.in_)

            def on_upstream_finish(self) -> None:
                log.append("upstream_completed")

            def post_stop(self) -> None:
                log.append("post_stop")

        logic = Logic()
        return logic, logic.cb


async def test_async_callback_invoked_before_start_is_buffered(materializer: Materializer) -> None:
    log: list[Any] = []
    pub, cb = TestSource.probe().to_mat(CallbackSink(log), Keep.both).run(materializer)
    cb.invoke("early")  # the island has not started yet
    await settle()
    assert log == ["pre_start", ("cb", "early")]
    pub.send_complete()
    await settle()


async def test_async_callback_after_stop_is_ignored(materializer: Materializer) -> None:
    log: list[Any] = []
    pub, cb = TestSource.probe().to_mat(CallbackSink(log), Keep.both).run(materializer)
    pub.send_complete()
    await settle()
    assert log[-1] == "post_stop"
    cb.invoke("late")  # must neither raise nor run
    await settle()
    assert ("cb", "late") not in log


async def test_async_callback_from_another_task(materializer: Materializer) -> None:
    log: list[Any] = []
    pub, cb = TestSource.probe().to_mat(CallbackSink(log), Keep.both).run(materializer)

    async def other() -> None:
        for i in range(3):
            cb.invoke(i)
            await asyncio.sleep(0)

    await asyncio.gather(other())
    await settle()
    assert [e for e in log if isinstance(e, tuple)] == [("cb", 0), ("cb", 1), ("cb", 2)]
    pub.send_complete()
    await settle()


class EagerCallbackSource(GraphStage[SourceShape]):
    """Invokes its own async callback in the constructor, before materialization."""

    def __init__(self, log: list[Any]) -> None:
        self.shape = SourceShape(Outlet("eager.out"))
        self.log = log

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape
        log = self.log

        class Logic(GraphStageLogic, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handler(shape.out, self)
                self.get_async_callback(self.on_cb).invoke("from constructor")
                self.get_async_callback(self.on_cb).invoke_threadsafe("threadsafe")

            def pre_start(self) -> None:
                log.append("pre_start")

            def on_cb(self, x: Any) -> None:
                log.append(x)
                if len(log) == 3:
                    self.complete_stage()

            def on_pull(self) -> None:
                pass

        return Logic()


async def test_async_callback_invoked_in_the_constructor_runs_after_pre_start(
    materializer: Materializer,
) -> None:
    log: list[Any] = []
    out = Source.from_graph(EagerCallbackSource(log)).run_with(Sink.seq(), materializer)
    assert await out == []
    assert log == ["pre_start", "from constructor", "threadsafe"]


# =======================================================================================
# KeepGoingStageSpec
# =======================================================================================
@pytest.mark.parametrize("how", ["complete", "fail", "throw"])
async def test_keep_going_stays_alive_after_all_ports_closed_until_stopped(
    materializer: Materializer, how: str
) -> None:
    log: list[Any] = []
    pub, cb = (
        TestSource.probe().to_mat(CallbackSink(log, keep_going=True), Keep.both).run(materializer)
    )
    cb.invoke("ping1")
    await settle()
    pub.send_complete()
    await settle()
    assert log[-1] == "upstream_completed"
    cb.invoke("ping2")
    await settle()
    assert log[-1] == ("cb", "ping2")
    assert "post_stop" not in log
    cb.invoke(how)
    await settle()
    # post_stop is never concurrent with (nor nested in) the event handler.
    assert log[-2:] == ["end_of_handler", "post_stop"]


async def test_without_keep_going_the_stage_stops_when_its_ports_close(
    materializer: Materializer,
) -> None:
    log: list[Any] = []
    pub, cb = TestSource.probe().to_mat(CallbackSink(log), Keep.both).run(materializer)
    cb.invoke("ping")
    await settle()
    pub.send_complete()
    await settle()
    assert log[-2:] == ["upstream_completed", "post_stop"]


# =======================================================================================
# GraphStageTimersSpec on the manual clock
# =======================================================================================
def _timer_spy(ticks: list[Any], clock: ManualClock, **hooks: Any) -> Spy:
    def on_timer(lg: Any, key: Any) -> None:
        n = len(ticks) + 1
        ticks.append((key, n, round(clock.time(), 6), lg.is_timer_active(key)))
        extra = hooks.get("after_tick")
        if extra is not None:
            extra(lg, key, n)

    return Spy("timers", on_timer=on_timer, pre_start=hooks.get("pre_start"))


async def test_single_shot_timer_fires_once(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.schedule_once("single", 0.5)
        lg.state["active"] = lg.is_timer_active("single")

    pub, sub = probes(_timer_spy(ticks, manual_clock, pre_start=pre_start), materializer)
    await manual_clock.advance(0.49)
    assert ticks == []
    await manual_clock.advance(0.01)
    # A one-shot timer is no longer active while its on_timer runs.
    assert ticks == [("single", 1, 0.5, False)]
    await manual_clock.advance(2.0)
    assert len(ticks) == 1
    pub.send_complete()
    await sub.expect_complete()


async def test_single_shot_timer_resubmitted_from_on_timer(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []

    def after(lg: Any, key: Any, n: int) -> None:
        if n == 1:
            lg.schedule_once(key, 0.5)

    def pre_start(lg: Any) -> None:
        lg.schedule_once("resubmit", 0.5)

    pub, sub = probes(
        _timer_spy(ticks, manual_clock, pre_start=pre_start, after_tick=after), materializer
    )
    await manual_clock.advance(3.0)
    assert [(k, n, t) for k, n, t, _ in ticks] == [("resubmit", 1, 0.5), ("resubmit", 2, 1.0)]
    pub.send_complete()
    await sub.expect_complete()


async def test_cancel_a_named_timer_and_schedule_it_again(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []
    active: list[bool] = []

    def pre_start(lg: Any) -> None:
        lg.schedule_once("cancel", 0.001)
        active.append(lg.is_timer_active("cancel"))
        lg.cancel_timer("cancel")
        active.append(lg.is_timer_active("cancel"))
        lg.cancel_timer("never scheduled")  # no error
        lg.schedule_once("cancel", 0.5)

    pub, sub = probes(_timer_spy(ticks, manual_clock, pre_start=pre_start), materializer)
    await manual_clock.advance(2.0)
    assert active == [True, False]
    assert [(k, t) for k, _, t, _ in ticks] == [("cancel", 0.5)]
    pub.send_complete()
    await sub.expect_complete()


async def test_schedule_with_an_active_key_replaces_the_timer(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.schedule_once("k", 1.0)
        lg.schedule_once("k", 0.3)

    pub, sub = probes(_timer_spy(ticks, manual_clock, pre_start=pre_start), materializer)
    await manual_clock.advance(5.0)
    assert [(k, t) for k, _, t, _ in ticks] == [("k", 0.3)]
    assert manual_clock.pending == 0
    pub.send_complete()
    await sub.expect_complete()


async def test_repeated_timer_with_fixed_delay_cancelled_after_five_ticks(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []

    def after(lg: Any, key: Any, n: int) -> None:
        if n == 5:
            lg.cancel_timer(key)

    def pre_start(lg: Any) -> None:
        lg.schedule_with_fixed_delay("repeat", 0.1, 0.1)

    pub, sub = probes(
        _timer_spy(ticks, manual_clock, pre_start=pre_start, after_tick=after), materializer
    )
    await manual_clock.advance(2.0)
    assert [t for _, _, t, _ in ticks] == [0.1, 0.2, 0.3, 0.4, 0.5]
    # A periodic timer stays active while on_timer runs.
    assert all(a for *_, a in ticks)
    assert manual_clock.pending == 0
    pub.send_complete()
    await sub.expect_complete()


async def test_fixed_rate_timer_with_initial_delay(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.schedule_at_fixed_rate("rate", 0.25, 1.0)

    pub, sub = probes(_timer_spy(ticks, manual_clock, pre_start=pre_start), materializer)
    await manual_clock.advance(3.3)
    assert [t for _, _, t, _ in ticks] == [0.25, 1.25, 2.25, 3.25]
    pub.send_complete()
    await sub.expect_complete()
    assert manual_clock.pending == 0  # timers die with the stage


async def test_timers_are_cancelled_when_the_stage_stops(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ticks: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.schedule_once("a", 1.0)
        lg.schedule_with_fixed_delay("b", 0.5, 0.5)

    pub, sub = probes(_timer_spy(ticks, manual_clock, pre_start=pre_start), materializer)
    await manual_clock.advance(0.5)
    assert len(ticks) == 1
    sub.cancel()
    await pub.expect_cancellation()
    await manual_clock.advance(5.0)
    assert len(ticks) == 1
    assert manual_clock.pending == 0


async def test_materializer_shutdown_cancels_timers(manual_clock: ManualClock) -> None:
    ticks: list[Any] = []

    def pre_start(lg: Any) -> None:
        lg.schedule_at_fixed_rate("r", 1.0, 1.0)

    async with Materializer(clock=manual_clock) as mat:
        out = (
            Source.never()
            .via(_timer_spy(ticks, manual_clock, pre_start=pre_start))
            .run_with(Sink.seq(), mat)
        )
        await manual_clock.advance(1.0)
        assert len(ticks) == 1
    with pytest.raises(AbruptTerminationError):
        await out
    assert manual_clock.pending == 0
    await manual_clock.advance(5.0)
    assert len(ticks) == 1


class TickStage(GraphStage[FlowShape]):
    """GraphStageTimersSpec's TestStage2: pushes a tick count when possible, 3 ticks."""

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("ticks.in"), Outlet("ticks.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape

        class Logic(TimerGraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.count = 0
                self.set_handlers(shape.in_, shape.out, self)

            def pre_start(self) -> None:
                self.schedule_with_fixed_delay("tick", 0.1, 0.1)

            def on_pull(self) -> None:
                pass

            def on_push(self) -> None:
                pass

            def on_downstream_finish(self, cause: BaseException) -> None:
                self.complete_stage()

            def on_timer(self, key: Any) -> None:
                self.count += 1
                if self.is_available(shape.out):
                    self.push(shape.out, self.count)
                if self.count == 3:
                    self.cancel_timer("tick")

        return Logic()


async def test_produce_scheduled_ticks_as_expected(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(TickStage(), materializer)
    sub.request(5)
    await manual_clock.advance(0.1)
    await sub.expect_next(1)
    await manual_clock.advance(0.1)
    await sub.expect_next(2)
    await manual_clock.advance(0.1)
    await sub.expect_next(3)
    await manual_clock.advance(1.0)
    await sub.expect_no_message(0.02)
    pub.send_complete()
    await sub.expect_complete()


async def test_on_timer_exception_fails_the_stream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    err = Boom("Expected exception to the rule")

    def pre_start(lg: Any) -> None:
        lg.schedule_once("tick", 0.1)

    def on_timer(lg: Any, key: Any) -> None:
        raise err

    pub, sub = probes(Spy("throwing_timer", pre_start=pre_start, on_timer=on_timer), materializer)
    sub.request(1)
    await manual_clock.advance(0.1)
    assert await sub.expect_error() is err
    assert await pub.expect_cancellation() is err


# =======================================================================================
# GraphStageWithMaterializedValue and shapes
# =======================================================================================
class CountingSink(GraphStageWithMaterializedValue[SinkShape, Any]):
    """Counts elements; the materialized value is a future of the count."""

    def __init__(self) -> None:
        self.shape = SinkShape(Inlet("count.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        shape = self.shape
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Logic(GraphStageLogic, InHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.n = 0
                self.set_handler(shape.in_, self)

            def pre_start(self) -> None:
                self.pull(shape.in_)

            def on_push(self) -> None:
                self.grab(shape.in_)
                self.n += 1
                self.pull(shape.in_)

            def on_upstream_finish(self) -> None:
                fut.set_result(self.n)
                self.complete_stage()

            def on_upstream_failure(self, exc: BaseException) -> None:
                fut.set_exception(exc)
                self.fail_stage(exc)

            def post_stop(self) -> None:
                if not fut.done():
                    fut.set_exception(AbruptTerminationError("count sink stopped"))

        return Logic(), fut


async def test_stage_with_materialized_value_each_run_is_independent(
    materializer: Materializer,
) -> None:
    sink = Sink.from_graph(CountingSink())
    graph = Source.from_iterable(range(3)).to_mat(sink, Keep.right)
    a = graph.run(materializer)
    b = graph.run(materializer)
    assert a is not b
    assert await a == 3 and await b == 3
    via_flow = Source.from_iterable(range(5)).run_with(
        Flow().filter(lambda x: x % 2).to_mat(sink, Keep.right), materializer
    )
    assert await via_flow == 2


class Interleave2(GraphStage[FanInShape2]):
    """Takes one element from in0, then one from in1, alternating (FanInShape2)."""

    def __init__(self) -> None:
        self.shape = FanInShape2(Inlet("il.in0"), Inlet("il.in1"), Outlet("il.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        s = self.shape
        logic = GraphStageLogic(s)
        turn = [0]

        def inlet() -> Any:
            return s.in0 if turn[0] == 0 else s.in1

        class In(InHandler):
            def on_push(self) -> None:
                logic.push(s.out, logic.grab(inlet()))
                turn[0] ^= 1

            def on_upstream_finish(self) -> None:
                # Only the inlet whose turn it is ends the interleaving.
                if logic.is_closed(inlet()):
                    logic.complete_stage()

        class Out(OutHandler):
            def on_pull(self) -> None:
                if logic.is_closed(inlet()):
                    logic.complete_stage()
                else:
                    logic.pull(inlet())

        logic.set_handler(s.in0, In())
        logic.set_handler(s.in1, In())
        logic.set_handler(s.out, Out())
        return logic


class SumN(GraphStage[UniformFanInShape]):
    """Waits for one element on each of n inputs and emits their sum (UniformFanInShape)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.shape = UniformFanInShape(Outlet("sum.out"), *(Inlet(f"sum.in{i}") for i in range(n)))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        s = self.shape
        n = self.n
        logic = GraphStageLogic(s)

        class In(InHandler):
            def on_push(self) -> None:
                if all(logic.is_available(s.in_(i)) for i in range(n)):
                    logic.push(s.out, sum(logic.grab(s.in_(i)) for i in range(n)))
                    if any(logic.is_closed(s.in_(i)) for i in range(n)):
                        logic.complete_stage()

            def on_upstream_finish(self) -> None:
                # Complete unless a finished inlet still holds an element of a sum.
                if not any(
                    logic.is_closed(s.in_(i)) and logic.is_available(s.in_(i)) for i in range(n)
                ):
                    logic.complete_stage()

        class Out(OutHandler):
            def on_pull(self) -> None:
                for i in range(n):
                    logic.pull(s.in_(i))

        for i in range(n):
            logic.set_handler(s.in_(i), In())
        logic.set_handler(s.out, Out())
        return logic


async def test_fan_in_shape2_in0_in1_out(materializer: Materializer) -> None:
    def blueprint(b: Any, sink: Any) -> Any:
        il = b.add(Interleave2())
        b.add(Source.from_iterable([1, 3, 5])).out >> il.in0
        b.add(Source.from_iterable([2, 4, 6])).out >> il.in1
        il.out >> sink.in_
        return ClosedShape

    g = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq()))
    assert await g.run(materializer) == [1, 2, 3, 4, 5, 6]


async def test_uniform_fan_in_and_fan_out_shapes(materializer: Materializer) -> None:
    stage = SumN(3)
    assert [stage.shape.in_(i).name for i in range(3)] == ["sum.in0", "sum.in1", "sum.in2"]

    def blueprint(b: Any, src: Any, sink: Any) -> Any:
        fan = b.add(TwoOut())
        s = b.add(SumN(3))
        src.out >> fan.in_
        fan.out(0) >> s.in_(0)
        fan.out(1) >> b.add(Flow().map(lambda x: x * 10)) >> s.in_(1)
        b.add(Source.repeat(100)).out >> s.in_(2)
        s.out >> sink.in_
        return ClosedShape

    g = RunnableGraph.from_graph(
        GraphDSL.create(blueprint, Source.from_iterable([1, 2, 3]), Sink.seq(), combine=Keep.right)
    )
    assert await g.run(materializer) == [111, 122, 133]


class Codec(GraphStage[BidiShape]):
    """A bidi stage: top direction adds 1, bottom direction doubles."""

    def __init__(self) -> None:
        self.shape = BidiShape(
            Inlet("top.in"), Outlet("top.out"), Inlet("bot.in"), Outlet("bot.out")
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        s = self.shape
        logic = GraphStageLogic(s)

        def wire(i: Any, o: Any, f: Callable[[Any], Any]) -> None:
            class H(InHandler, OutHandler):
                def on_push(self) -> None:
                    logic.push(o, f(logic.grab(i)))

                def on_pull(self) -> None:
                    logic.pull(i)

                def on_upstream_finish(self) -> None:
                    logic.complete(o)

                def on_downstream_finish(self, cause: BaseException) -> None:
                    logic.cancel(i, cause)

            logic.set_handlers(i, o, H())

        wire(s.in1, s.out1, lambda x: x + 1)
        wire(s.in2, s.out2, lambda x: x * 2)
        return logic


async def test_bidi_shape_stage(materializer: Materializer) -> None:
    def blueprint(b: Any, top: Any, bottom: Any) -> Any:
        bidi = b.add(Codec())
        b.add(Source.from_iterable([1, 2])).out >> bidi.in1
        bidi.out1 >> top.in_
        b.add(Source.from_iterable([5, 6])).out >> bidi.in2
        bidi.out2 >> bottom.in_
        return ClosedShape

    g = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq(), Sink.seq()))
    top, bottom = g.run(materializer)
    assert await top == [2, 3]
    assert await bottom == [10, 12]


# =======================================================================================
# FlowSpec / SourceSpec / SinkSpec: materialized values and blueprint reuse
# =======================================================================================
async def test_keep_combiners_and_defaults(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3]).map_materialized_value(lambda _: "src")
    flow = Flow().map(lambda x: x + 1).map_materialized_value(lambda _: "flow")
    sink = Sink.seq()

    assert src.via(flow).to(sink).run(materializer) == "src"
    assert src.via_mat(flow, Keep.right).to(sink).run(materializer) == "flow"
    a, b = src.via_mat(flow, Keep.both).to(sink).run(materializer)
    assert (a, b) == ("src", "flow")
    assert src.via_mat(flow, Keep.none).to(sink).run(materializer) is NotUsed
    assert src.via_mat(flow, lambda x, y: x + "+" + y).to(sink).run(materializer) == "src+flow"
    fut = src.via(flow).to_mat(sink, Keep.right).run(materializer)
    assert await fut == [2, 3, 4]
    (s, f), res = src.via_mat(flow, Keep.both).to_mat(sink, Keep.both).run(materializer)
    assert (s, f) == ("src", "flow") and await res == [2, 3, 4]
    # A Flow's to()/to_mat() keep the same rules on the resulting Sink.
    sink2 = flow.to_mat(Sink.seq(), Keep.both)
    fm, fut2 = Source.from_iterable([0]).to_mat(sink2, Keep.right).run(materializer)
    assert fm == "flow" and await fut2 == [1]
    assert (
        Source.from_iterable([0]).to_mat(flow.to(Sink.seq()), Keep.right).run(materializer)
        == "flow"
    )


async def test_run_with_variants(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2]).map_materialized_value(lambda _: "src")
    assert await src.run_with(Sink.seq(), materializer) == [1, 2]
    assert Sink.seq().run_with(src, materializer) == "src"
    s, res = Flow().map(str).run_with(src, Sink.seq(), materializer)
    assert s == "src" and await res == ["1", "2"]


async def test_map_materialized_value_chains(materializer: Materializer) -> None:
    g = (
        Source.from_iterable([1, 2, 3])
        .to_mat(Sink.fold(0, lambda a, x: a + x), Keep.right)
        .map_materialized_value(lambda fut: ("wrapped", fut))
        .map_materialized_value(lambda p: p[1])
    )
    assert await g.run(materializer) == 6


async def test_blueprint_reuse_gives_independent_runs(materializer: Materializer) -> None:
    g = TestSource.probe().map(lambda x: x * 2).to_mat(TestSink.probe(), Keep.both)
    (p1, s1), (p2, s2) = g.run(materializer), g.run(materializer)
    assert p1 is not p2 and s1 is not s2
    s1.request(1)
    s2.request(1)
    p1.send_next(1)
    p2.send_next(10)
    await s1.expect_next(2)
    await s2.expect_next(20)
    p1.send_complete()
    await s1.expect_complete()
    await s2.expect_no_message(0.02)
    p2.send_error(Boom("second"))
    assert isinstance(await s2.expect_error(), Boom)


async def test_from_iterable_is_rerun_with_a_fresh_iterator(materializer: Materializer) -> None:
    src = Source.from_iterable(range(3))
    assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]
    assert await src.run_with(Sink.seq(), materializer) == [0, 1, 2]


async def test_sink_head_last_reduce_of_empty_fail_with_no_such_element(
    materializer: Materializer,
) -> None:
    for sink in (Sink.head(), Sink.last(), Sink.reduce(lambda a, b: a + b)):
        with pytest.raises(NoSuchElementError) as info:
            await Source.empty().run_with(sink, materializer)
        assert isinstance(info.value, LookupError)
    assert await Source.empty().run_with(Sink.head_option(), materializer) is None


# =======================================================================================
# Materializer shutdown (ActorMaterializerSpec)
# =======================================================================================
async def test_materializer_context_manager_aborts_running_streams() -> None:
    log: list[Any] = []
    async with Materializer() as mat:
        seq = Source.never().run_with(Sink.seq(), mat)
        ign = Source.never().run_with(Sink.ignore(), mat)
        sub = Source.never().run_with(TestSink.probe(), mat)
        cnt = Source.never().run_with(Sink.from_graph(CountingSink()), mat)
        spied = Source.never().via(Spy("aborted", log=log)).to_mat(Sink.seq(), Keep.right).run(mat)
        await settle()
    assert mat.is_shutdown
    for fut in (seq, ign, cnt, spied):
        with pytest.raises(AbruptTerminationError):
            await fut
    assert isinstance(await sub.expect_error(), AbruptTerminationError)
    assert log == ["pre_start", "post_stop"]


async def test_shutdown_fails_running_streams_and_refuses_new_ones() -> None:
    mat = Materializer()
    fut = Source.never().run_with(Sink.head(), mat)
    done = Source.single(1).run_with(Sink.seq(), mat)
    assert await done == [1]
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await fut
    with pytest.raises(StreamError):
        Source.single(1).run_with(Sink.seq(), mat)
    assert mat.is_shutdown


# =======================================================================================
# AttributesSpec: nearest (innermost) wins
# =======================================================================================
async def test_name_attribute_nearest_wins(materializer: Materializer) -> None:
    seen: list[Any] = []

    def pre_start(lg: Any) -> None:
        seen.append((lg.stage_name, lg.created_with.get("name")))

    inner = Flow.from_graph(Spy("spy", pre_start=pre_start)).named("inner")
    await Source.single(1).via(inner).named("outer").run_with(Sink.ignore(), materializer)
    await (
        Source.single(1)
        .via(Spy("spy", pre_start=pre_start))
        .named("outer2")
        .run_with(Sink.ignore(), materializer)
    )
    # The stage's own name counts as the innermost unless the stage is renamed.
    assert seen[0] == ("inner", "inner")
    assert seen[1][0] in ("spy", "outer2")


async def test_named_stage_appears_in_port_errors(materializer: Materializer) -> None:
    def on_pull(lg: Any) -> None:
        lg.grab(lg.in_)

    out = (
        Source.never()
        .via(Flow.from_graph(Spy("anon", on_pull=on_pull)).named("my-stage"))
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(PortStateError, match=r"\[my-stage\]"):
        await out


async def test_input_buffer_attribute_nearest_wins(materializer: Materializer) -> None:
    seen: list[Any] = []

    def pre_start(lg: Any) -> None:
        seen.append(lg.created_with.get("input_buffer"))

    inner = Flow.from_graph(Spy("buf", pre_start=pre_start)).with_attributes(
        Attrs.input_buffer(2, 2)
    )
    graph = Source.single(1).via(inner).to(Sink.ignore()).with_attributes(Attrs.input_buffer(8, 8))
    graph.run(materializer)
    Source.single(1).via(Spy("buf", pre_start=pre_start)).to(Sink.ignore()).with_attributes(
        Attrs.input_buffer(8, 8)
    ).run(materializer)
    await settle()
    assert seen == [2, 8]


def _resume(exc: BaseException) -> Any:
    return Supervision.resume


def _stop(exc: BaseException) -> Any:
    return Supervision.stop


def _fail_on_2(x: int) -> int:
    if x == 2:
        raise Boom("two")
    return x


async def test_supervision_strategy_nearest_wins(materializer: Materializer) -> None:
    inner_resume = Flow().map(_fail_on_2).with_attributes(Attrs.supervision_strategy(_resume))
    out = (
        Source.from_iterable([1, 2, 3])
        .via(inner_resume)
        .to_mat(Sink.seq(), Keep.right)
        .with_attributes(Attrs.supervision_strategy(_stop))
        .run(materializer)
    )
    assert await out == [1, 3]

    inner_stop = Flow().map(_fail_on_2).with_attributes(Attrs.supervision_strategy(_stop))
    out = (
        Source.from_iterable([1, 2, 3])
        .via(inner_stop)
        .to_mat(Sink.seq(), Keep.right)
        .with_attributes(Attrs.supervision_strategy(_resume))
        .run(materializer)
    )
    with pytest.raises(Boom):
        await out

    # An outer strategy applies where no inner one is set.
    out = (
        Source.from_iterable([1, 2, 3])
        .map(_fail_on_2)
        .to_mat(Sink.seq(), Keep.right)
        .with_attributes(Attrs.supervision_strategy(_resume))
        .run(materializer)
    )
    assert await out == [1, 3]


async def test_custom_stages_do_not_honour_supervision(materializer: Materializer) -> None:
    # Catalog 7.2: only operators that implement supervision honour it.
    def on_push(lg: Any) -> None:
        lg.push(lg.out, _fail_on_2(lg.grab(lg.in_)))

    out = (
        Source.from_iterable([1, 2, 3])
        .via(Spy("custom", on_push=on_push))
        .to_mat(Sink.seq(), Keep.right)
        .with_attributes(Attrs.supervision_strategy(_resume))
        .run(materializer)
    )
    with pytest.raises(Boom):
        await out


class BrokenFactory(GraphStage[FlowShape]):
    """create_logic raises: materialization fails synchronously."""

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("broken.in"), Outlet("broken.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        raise Boom("create_logic")


async def test_failure_in_create_logic_fails_run_and_leaves_nothing_running(
    materializer: Materializer,
) -> None:
    with pytest.raises(Boom):
        Source.from_iterable([1]).via(BrokenFactory()).to(Sink.ignore()).run(materializer)
    assert materializer.running_tasks == 0


# =======================================================================================
# Testkit probes (TestSink / TestSource specs)
# =======================================================================================
async def test_subscriber_probe_methods(materializer: Materializer) -> None:
    sub = Source.from_iterable(range(1, 8)).run_with(TestSink.probe(), materializer)
    sub.request(2)
    assert await sub.expect_next(1, 2) == 2
    await sub.expect_no_message(0.02)
    assert await sub.request_next() == 3
    sub.request(2)
    assert await sub.expect_next_n(2) == [4, 5]
    assert await sub.to_list() == [6, 7]


async def test_subscriber_probe_expect_error_returns_the_exception(
    materializer: Materializer,
) -> None:
    err = Boom("e")
    sub = Source.failed(err).run_with(TestSink.probe(), materializer)
    assert await sub.expect_error() is err


async def test_subscriber_probe_complete_without_demand(materializer: Materializer) -> None:
    sub = Source.empty().run_with(TestSink.probe(), materializer)
    await sub.expect_complete()


async def test_subscriber_probe_cancel_cancels_upstream(materializer: Materializer) -> None:
    pub, sub = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    sub.request(1)
    assert await pub.expect_request() == 1
    sub.cancel()
    await pub.expect_cancellation()


async def test_expectation_messages_say_what_was_expected_and_what_came(
    materializer: Materializer,
) -> None:
    sub = Source.from_iterable([1, 2]).run_with(TestSink.probe(timeout=0.05), materializer)
    sub.request(1)
    with pytest.raises(AssertionError) as info:
        await sub.expect_next(5)
    assert "5" in str(info.value) and "1" in str(info.value)

    with pytest.raises(AssertionError) as info:
        await sub.expect_next(2)  # nothing comes: no demand
    msg = str(info.value)
    assert "2" in msg and "timeout" in msg.lower()

    sub.request(5)
    await sub.expect_next(2)
    with pytest.raises(AssertionError) as info:
        await sub.expect_next(3)  # completion comes instead
    assert "3" in str(info.value) and "complet" in str(info.value).lower()

    err_sub = Source.failed(Boom("zap")).run_with(TestSink.probe(timeout=0.05), materializer)
    with pytest.raises(AssertionError) as info:
        await err_sub.expect_complete()
    msg = str(info.value)
    assert "complet" in msg.lower() and "zap" in msg

    ok_sub = Source.single(9).run_with(TestSink.probe(timeout=0.05), materializer)
    ok_sub.request(1)
    with pytest.raises(AssertionError) as info:
        await ok_sub.expect_error()
    assert "error" in str(info.value).lower() and "9" in str(info.value)
    await ok_sub.expect_complete()


async def test_expect_no_message_fails_when_something_arrives(
    materializer: Materializer,
) -> None:
    sub = Source.single(1).run_with(TestSink.probe(), materializer)
    sub.request(1)
    await settle()
    with pytest.raises(AssertionError, match="1"):
        await sub.expect_no_message(0.02)


async def test_probe_request_non_positive_violates_rule_3_9(materializer: Materializer) -> None:
    pub, sub = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    sub.request(0)
    err = await sub.expect_error()
    assert isinstance(err, ValueError)
    assert "3.9" in str(err)
    assert await pub.expect_cancellation() is err


async def test_publisher_probe_methods(materializer: Materializer) -> None:
    pub, sub = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    pub.send_next(1)  # waits in the probe for demand
    await sub.expect_no_message(0.02)
    sub.request(1)
    assert await pub.expect_request() == 1
    await sub.expect_next(1)
    sub.request(1)
    assert await pub.expect_request() == 1
    pub.send_next(2).send_complete()
    await sub.expect_next(2)
    await sub.expect_complete()


async def test_publisher_probe_error_overtakes_elements_waiting_for_demand(
    materializer: Materializer,
) -> None:
    # Akka: errors travel out of band and drop what is buffered; completion does not.
    err = Boom("now")
    pub, sub = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    pub.send_next(1).send_next(2)
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_publisher_probe_expect_request_timeout_message(
    materializer: Materializer,
) -> None:
    pub, sub = TestSource.probe(timeout=0.05).to_mat(TestSink.probe(), Keep.both).run(materializer)
    with pytest.raises(AssertionError, match="request"):
        await pub.expect_request()
    sub.cancel()
    await pub.expect_cancellation()
    await pub.expect_no_message(0.02)


# =======================================================================================
# Exported errors
# =======================================================================================
def test_error_hierarchy() -> None:
    for cls in (
        AbruptTerminationError,
        BufferOverflowError,
        StreamLimitReachedError,
        StreamTimeoutError,
        RateExceededError,
        TooManySubstreamsError,
        NoSuchElementError,
        PortStateError,
    ):
        assert issubclass(cls, StreamError)
    assert issubclass(StreamTimeoutError, TimeoutError)
    assert issubclass(NoSuchElementError, LookupError)
    assert issubclass(StreamError, Exception)


async def test_push_without_demand_to_a_cancelled_port_is_an_error(
    materializer: Materializer,
) -> None:
    # Akka checks the demand even when downstream's cancellation is still on its way: only
    # a push that was pulled for may be dropped silently by a cancellation race.
    errors: list[BaseException] = []
    out: Outlet[int] = Outlet("Eager.out")
    in_: Inlet[int] = Inlet("Cancelling.in")

    class Eager(GraphStage[SourceShape]):
        shape = SourceShape(out)

        def create_logic(self, attributes: Any) -> GraphStageLogic:
            class Logic(GraphStageLogic, OutHandler):
                def __init__(self) -> None:
                    super().__init__(Eager.shape)
                    self.set_handler(out, self)

                def pre_start(self) -> None:
                    # Runs from the mailbox, before the cancellation event is delivered.
                    self.get_async_callback(self._push_now).invoke(None)

                def _push_now(self, _: Any) -> None:
                    try:
                        self.push(out, 1)
                    except PortStateError as exc:
                        errors.append(exc)
                    self.complete_stage()

                def on_pull(self) -> None:
                    pass

            return Logic()

    class Cancelling(GraphStage[SinkShape]):
        shape = SinkShape(in_)

        def create_logic(self, attributes: Any) -> GraphStageLogic:
            class Logic(GraphStageLogic, InHandler):
                def __init__(self) -> None:
                    super().__init__(Cancelling.shape)
                    self.set_handler(in_, self)

                def pre_start(self) -> None:
                    self.cancel(in_)

                def on_push(self) -> None:
                    pass

            return Logic()

    Source.from_graph(Eager()).to(Sink.from_graph(Cancelling())).run(materializer)
    for _ in range(20):
        await asyncio.sleep(0)
    assert len(errors) == 1
    assert "Cannot push port twice, or before it being pulled" in str(errors[0])
    assert "Eager.out" in str(errors[0])
