"""The custom stage API through user-written stages: emit/emit_multiple/read, keep-going,
lifecycle order, async callbacks, timers on the manual clock, a two-inlet stage wired
with GraphDSL, and the misuse errors (each names the stage and the port)."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    ClosedShape,
    Flow,
    GraphDSL,
    IllegalGraphError,
    Keep,
    Materializer,
    PortStateError,
    RunnableGraph,
    Sink,
    Source,
)
from reactive.stage import (
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
    TimerGraphStageLogic,
)
from reactive.testkit import ManualClock, TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


# -- emit / emit_multiple ----------------------------------------------------------------
class Duplicate(GraphStage[FlowShape]):
    """Emits every element twice with emit_multiple; records the and_then calls."""

    name = "duplicate"

    def __init__(self, log: list[Any]) -> None:
        self.shape = FlowShape(Inlet("Duplicate.in"), Outlet("Duplicate.out"))
        self.log = log

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DuplicateLogic(self.shape, self.log)


class _DuplicateLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FlowShape, log: list[Any]) -> None:
        super().__init__(shape)
        self.log = log
        self.set_handlers(shape.in_, shape.out, self)

    def on_push(self) -> None:
        x = self.grab(self.shape.in_)
        self.emit_multiple(self.shape.out, [x, x], lambda: self.log.append(("done", x)))

    def on_pull(self) -> None:
        self.pull(self.shape.in_)

    def on_upstream_finish(self) -> None:
        self.emit(self.shape.out, "end", lambda: self.log.append("end-emitted"))
        self.complete(self.shape.out)


async def test_emit_multiple_respects_demand_and_runs_and_then(materializer: Materializer) -> None:
    log: list[Any] = []
    probe = (
        Source.from_iterable([1, 2]).via(Duplicate(log)).run_with(TestSink.probe(), materializer)
    )
    await probe.request_next(1)
    await settle()
    assert log == []  # the second copy is still pending
    await probe.request_next(1)
    await settle()
    assert log == [("done", 1)]
    await probe.request_next(2)
    await probe.request_next(2)
    await probe.request_next("end")
    await probe.expect_complete()
    assert log == [("done", 1), ("done", 2), "end-emitted"]


async def test_emit_all_at_once(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable([1, 2, 3]).via(Duplicate([])).run_with(Sink.seq(), materializer)
    )
    assert out == [1, 1, 2, 2, 3, 3, "end"]


# -- read ---------------------------------------------------------------------------------
class TagWithFirst(GraphStage[FlowShape]):
    """Reads the first element with ``read``; then emits (first, x) for the rest."""

    name = "tag_with_first"

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("Tag.in"), Outlet("Tag.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _TagLogic(self.shape)


class _TagLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FlowShape) -> None:
        super().__init__(shape)
        self.first: Any = None
        self.closed_early = False
        self.set_handlers(shape.in_, shape.out, self)

    def pre_start(self) -> None:
        self.read(self.shape.in_, self._got_first, self._closed)

    def _got_first(self, x: Any) -> None:
        self.first = x
        if self.is_available(self.shape.out):
            self.pull(self.shape.in_)

    def _closed(self) -> None:
        self.closed_early = True

    def on_push(self) -> None:
        self.push(self.shape.out, (self.first, self.grab(self.shape.in_)))

    def on_pull(self) -> None:
        if self.first is not None:
            self.pull(self.shape.in_)


async def test_read_first_element(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(["h", 1, 2])
        .via(TagWithFirst())
        .run_with(Sink.seq(), materializer)
    )
    assert out == [("h", 1), ("h", 2)]


async def test_read_on_close(materializer: Materializer) -> None:
    assert await Source.empty().via(TagWithFirst()).run_with(Sink.seq(), materializer) == []


# -- lifecycle: pre_start / post_stop / keep going ---------------------------------------------
class Recorder(GraphStage[FlowShape]):
    """Pass-through recording its lifecycle."""

    name = "recorder"

    def __init__(self, log: list[str]) -> None:
        self.shape = FlowShape(Inlet("Recorder.in"), Outlet("Recorder.out"))
        self.log = log

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RecorderLogic(self.shape, self.log)


class _RecorderLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FlowShape, log: list[str]) -> None:
        super().__init__(shape)
        self.log = log
        log.append("constructed")
        self.set_handlers(shape.in_, shape.out, self)

    def pre_start(self) -> None:
        self.log.append("pre_start")

    def on_push(self) -> None:
        self.log.append("push")
        self.push(self.shape.out, self.grab(self.shape.in_))

    def on_pull(self) -> None:
        self.log.append("pull")
        self.pull(self.shape.in_)

    def post_stop(self) -> None:
        self.log.append("post_stop")


async def test_lifecycle_order_on_completion(materializer: Materializer) -> None:
    log: list[str] = []
    await Source.single(1).via(Recorder(log)).run_with(Sink.seq(), materializer)
    assert log == ["constructed", "pre_start", "pull", "push", "post_stop"]


async def test_post_stop_once_on_failure_and_cancel(materializer: Materializer) -> None:
    log: list[str] = []
    with pytest.raises(Boom):
        await Source.failed(Boom()).via(Recorder(log)).run_with(Sink.seq(), materializer)
    assert log[:2] == ["constructed", "pre_start"]
    assert log.count("post_stop") == 1 and log[-1] == "post_stop"

    log2: list[str] = []
    await Source.repeat(1).via(Recorder(log2)).run_with(Sink.head(), materializer)
    assert log2.count("post_stop") == 1 and log2[-1] == "post_stop"


class LingeringSink(GraphStageWithMaterializedValue[SinkShape, Any]):
    """Keeps going after upstream completes until ``finish`` is invoked."""

    name = "lingering_sink"

    def __init__(self) -> None:
        self.shape = SinkShape(Inlet("Lingering.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        logic = _LingeringLogic(self.shape)
        return logic, logic


class _LingeringLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape) -> None:
        super().__init__(shape)
        self.got: list[Any] = []
        self.stopped = False
        self.set_handler(shape.in_, self)
        self.finish = self.get_async_callback(lambda _: self.complete_stage())

    def pre_start(self) -> None:
        self.set_keep_going(True)
        self.pull(self.shape.in_)

    def on_push(self) -> None:
        self.got.append(self.grab(self.shape.in_))
        self.pull(self.shape.in_)

    def on_upstream_finish(self) -> None:
        self.got.append("finished")

    def post_stop(self) -> None:
        self.stopped = True


async def test_set_keep_going(materializer: Materializer) -> None:
    logic = Source.from_iterable([1, 2]).run_with(LingeringSink(), materializer)
    await settle()
    assert logic.got == [1, 2, "finished"]
    assert not logic.stopped and not logic.is_stopped
    logic.finish.invoke(None)
    await settle()
    assert logic.stopped and logic.is_stopped
    assert logic.finish.is_stage_stopped
    logic.finish.invoke(None)  # dropped after stop


# -- async callbacks ---------------------------------------------------------------------------
class CallbackSource(GraphStageWithMaterializedValue[SourceShape, Any]):
    """A source fed through an async callback; ``None`` completes it."""

    name = "callback_source"

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet("CallbackSource.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        logic = _CallbackSourceLogic(self.shape)
        return logic, logic.cb


class _CallbackSourceLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape) -> None:
        super().__init__(shape)
        self.pending: list[Any] = []
        self.done = False
        self.set_handler(shape.out, self)
        self.cb = self.get_async_callback(self._on_elem)

    def _on_elem(self, x: Any) -> None:
        if x == "END":
            self.done = True
        else:
            self.pending.append(x)
        self._drain()

    def _drain(self) -> None:
        out = self.shape.out
        if self.pending and self.is_available(out):
            self.push(out, self.pending.pop(0))
        if self.done and not self.pending:
            self.complete(out)

    def on_pull(self) -> None:
        self._drain()


async def test_async_callback_invoke(materializer: Materializer) -> None:
    cb, probe = (
        Source.from_graph(CallbackSource()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    cb.invoke("a")
    cb.invoke("b")
    await probe.request_next("a")
    await probe.request_next("b")
    cb.invoke("END")
    await probe.expect_complete()
    assert cb.is_stage_stopped


async def test_async_callback_invoke_threadsafe(materializer: Materializer) -> None:
    cb, out = Source.from_graph(CallbackSource()).to_mat(Sink.seq(), Keep.both).run(materializer)

    def worker() -> None:
        for i in range(50):
            cb.invoke_threadsafe(i)
        cb.invoke_threadsafe("END")

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert await out == list(range(50))


# -- timers on the manual clock ------------------------------------------------------------------
class DelayEach(GraphStage[FlowShape]):
    """Holds each element for ``delay`` seconds (one at a time) using a timer."""

    name = "delay_each"

    def __init__(self, delay: float) -> None:
        self.shape = FlowShape(Inlet("DelayEach.in"), Outlet("DelayEach.out"))
        self.delay = delay

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DelayLogic(self.shape, self.delay)


class _DelayLogic(TimerGraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FlowShape, delay: float) -> None:
        super().__init__(shape)
        self.delay = delay
        self.held: Any = None
        self.set_handlers(shape.in_, shape.out, self)

    def on_push(self) -> None:
        self.held = self.grab(self.shape.in_)
        self.schedule_once("release", self.delay)

    def on_timer(self, key: Any) -> None:
        assert key == "release"
        self.push(self.shape.out, self.held)
        self.held = None
        if self.is_closed(self.shape.in_):
            self.complete_stage()

    def on_pull(self) -> None:
        self.pull(self.shape.in_)

    def on_upstream_finish(self) -> None:
        if not self.is_timer_active("release"):
            self.complete_stage()


async def test_timer_stage_on_manual_clock(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    probe = (
        Source.from_iterable([1, 2]).via(DelayEach(1.0)).run_with(TestSink.probe(), materializer)
    )
    probe.request(2)
    await manual_clock.advance(0.5)
    await probe.expect_no_message(0)
    await manual_clock.advance(0.5)
    await probe.expect_next(1)
    await manual_clock.advance(0.99)
    await probe.expect_no_message(0)
    await manual_clock.advance(0.01)
    await probe.expect_next(2)
    await probe.expect_complete()
    assert manual_clock.pending == 0


class Ticker(GraphStage[SourceShape]):
    """Emits the tick count at a fixed rate; replacing and cancelling timers on command."""

    name = "ticker"

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet("Ticker.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _TickerLogic(self.shape)


class _TickerLogic(TimerGraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape) -> None:
        super().__init__(shape)
        self.n = 0
        self.set_handler(shape.out, self)

    def pre_start(self) -> None:
        self.schedule_at_fixed_rate("tick", 1.0, 1.0)
        self.schedule_once("stop", 10.0)
        self.schedule_once("stop", 3.5)  # replaces the 10 s timer

    def on_timer(self, key: Any) -> None:
        if key == "stop":
            assert not self.is_timer_active("stop")
            self.complete_stage()
            return
        self.n += 1
        if self.is_available(self.shape.out):
            self.push(self.shape.out, self.n)

    def on_pull(self) -> None:
        pass


async def test_fixed_rate_timer_and_replacement(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = Source.from_graph(Ticker()).run_with(Sink.seq(), materializer)
    await manual_clock.advance(3.0)
    assert not out.done()
    await manual_clock.advance(0.5)
    assert await out == [1, 2, 3]
    assert manual_clock.pending == 0  # the periodic timer stopped with the stage


async def test_timers_cannot_be_scheduled_before_start() -> None:
    logic = _TickerLogic(SourceShape(Outlet("x")))
    with pytest.raises(PortStateError, match="pre_start"):
        logic.schedule_once("k", 1.0)


# -- a two-inlet custom stage wired with GraphDSL -------------------------------------------------
class Alternate(GraphStage[FanInShape2]):
    """Takes one element from in0, then one from in1, ...; completes when either completes."""

    name = "alternate"

    def __init__(self) -> None:
        self.shape = FanInShape2(Inlet("Alt.in0"), Inlet("Alt.in1"), Outlet("Alt.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _AlternateLogic(self.shape)


class _AlternateLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: FanInShape2) -> None:
        super().__init__(shape)
        self.turn = 0
        for p in shape.inlets:
            self.set_handler(p, self._in_handler(p))
        self.set_handler(shape.out, self)

    def _in_handler(self, p: Inlet[Any]) -> InHandler:
        logic = self

        class H(InHandler):
            def on_push(self) -> None:
                logic.push(logic.shape.out, logic.grab(p))
                logic.turn ^= 1

        return H()

    def on_pull(self) -> None:
        self.pull(self.shape.inlets[self.turn])


async def test_two_inlet_stage_in_graph_dsl(materializer: Materializer) -> None:
    def blueprint(b: Any, sink: Any) -> Any:
        alt = b.add(Alternate())
        b.add(Source.from_iterable("abc")).out >> alt.in0
        b.add(Source.from_iterable([1, 2, 3, 4])).out >> alt.in1
        alt.out >> sink.in_
        return ClosedShape

    out = await RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq())).run(materializer)
    assert out == ["a", 1, "b", 2, "c"]  # in0 completes right after "c"


async def test_two_inlet_stage_as_flow(materializer: Materializer) -> None:
    def blueprint(b: Any) -> Any:
        alt = b.add(Alternate())
        b.add(Source.repeat(0)).out >> alt.in1
        return FlowShape(alt.in0, alt.out)

    flow = Flow.from_graph(GraphDSL.create(blueprint))
    out = await Source.from_iterable([5, 6]).via(flow).run_with(Sink.seq(), materializer)
    assert out == [5, 0, 6]


# -- misuse errors ---------------------------------------------------------------------------
class Misuse(GraphStage[FlowShape]):
    """A flow stage that does one illegal thing, chosen by ``what``."""

    def __init__(self, what: str, action: Callable[[Any], None], when: str) -> None:
        self.name = f"misuse_{what}"
        self.shape = FlowShape(Inlet("Misuse.in"), Outlet("Misuse.out"))
        self.action = action
        self.when = when

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MisuseLogic(self.shape, self.action, self.when)


class _MisuseLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FlowShape, action: Callable[[Any], None], when: str) -> None:
        super().__init__(shape)
        self.action = action
        self.when = when
        self.set_handlers(shape.in_, shape.out, self)

    def pre_start(self) -> None:
        if self.when == "pre_start":
            self.action(self)

    def on_pull(self) -> None:
        if self.when == "on_pull":
            self.action(self)
        else:
            self.pull(self.shape.in_)

    def on_push(self) -> None:
        self.push(self.shape.out, self.grab(self.shape.in_))


def _pull_twice(lg: Any) -> None:
    lg.pull(lg.shape.in_)
    lg.pull(lg.shape.in_)


MISUSES = [
    (
        "push_without_demand",
        lambda lg: lg.push(lg.shape.out, 1),
        "pre_start",
        "Misuse.out",
        "pulled",
    ),
    ("pull_twice", _pull_twice, "pre_start", "Misuse.in", "twice"),
    ("grab_empty", lambda lg: lg.grab(lg.shape.in_), "pre_start", "Misuse.in", "empty"),
    ("push_none", lambda lg: lg.push(lg.shape.out, None), "on_pull", "Misuse.out", "None"),
    (
        "push_twice",
        lambda lg: [lg.push(lg.shape.out, 1), lg.push(lg.shape.out, 2)],
        "on_pull",
        "Misuse.out",
        "twice",
    ),
]


@pytest.mark.parametrize(
    ("what", "action", "when", "port", "words"), MISUSES, ids=[m[0] for m in MISUSES]
)
async def test_misuse_errors_name_stage_and_port(
    materializer: Materializer,
    what: str,
    action: Callable[[Any], None],
    when: str,
    port: str,
    words: str,
) -> None:
    pub, out = (
        TestSource.probe()
        .via(Misuse(what, action, when))
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(PortStateError) as info:
        await out
    msg = str(info.value)
    assert f"[misuse_{what}]" in msg
    assert port in msg
    assert words in msg
    await pub.expect_cancellation()


async def test_pull_closed_port_and_push_closed_port(materializer: Materializer) -> None:
    def pull_closed(lg: Any) -> None:
        lg.cancel(lg.shape.in_)
        lg.pull(lg.shape.in_)

    out = (
        Source.never()
        .via(Misuse("pull_closed", pull_closed, "pre_start"))
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(PortStateError, match=r"\[misuse_pull_closed\].*closed.*Misuse\.in"):
        await out

    errors: list[BaseException] = []

    def push_closed(lg: Any) -> None:
        lg.complete(lg.shape.out)
        lg.cancel(lg.shape.in_)
        try:
            lg.push(lg.shape.out, 1)
        except PortStateError as exc:  # downstream already saw completion; check the message
            errors.append(exc)

    out = (
        Source.never()
        .via(Misuse("push_closed", push_closed, "on_pull"))
        .run_with(Sink.seq(), materializer)
    )
    assert await out == []
    assert len(errors) == 1
    msg = str(errors[0])
    assert "[misuse_push_closed]" in msg and "closed" in msg and "Misuse.out" in msg


class NoHandler(GraphStage[FlowShape]):
    """Forgets the handler of its outlet."""

    name = "no_handler"

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("NoHandler.in"), Outlet("NoHandler.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        logic = GraphStageLogic(self.shape)

        class H(InHandler):
            def on_push(self) -> None:
                pass

        logic.set_handler(self.shape.in_, H())
        return logic


async def test_missing_handler_is_reported_at_materialization(materializer: Materializer) -> None:
    with pytest.raises(IllegalGraphError) as info:
        Source.single(1).via(NoHandler()).run_with(Sink.seq(), materializer)
    msg = str(info.value)
    assert "[no_handler]" in msg and "NoHandler.out" in msg


async def test_foreign_port_is_reported(materializer: Materializer) -> None:
    foreign = Inlet("Foreign.in")

    def use_foreign(lg: Any) -> None:
        lg.pull(foreign)

    out = (
        Source.never()
        .via(Misuse("foreign", use_foreign, "pre_start"))
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(PortStateError, match=r"\[misuse_foreign\].*Foreign\.in"):
        await out


async def test_user_error_in_handler_fails_with_the_original(materializer: Materializer) -> None:
    err = Boom("handler")

    def raise_it(lg: Any) -> None:
        raise err

    out = (
        Source.never().via(Misuse("raise", raise_it, "on_pull")).run_with(Sink.seq(), materializer)
    )
    with pytest.raises(Boom) as info:
        await out
    assert info.value is err


# -- handlers are never re-entered ------------------------------------------------------------


class _GuardedMap(GraphStage[FlowShape]):
    """A map that records any handler entered while one of its handlers is running."""

    def __init__(self, reentered: list[str]) -> None:
        super().__init__()
        self.reentered = reentered
        self.shape = FlowShape(Inlet("Guarded.in"), Outlet("Guarded.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape
        reentered = self.reentered

        class Logic(GraphStageLogic, InHandler, OutHandler):
            busy = ""

            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handlers(shape.in_, shape.out, self)

            def on_push(self) -> None:
                if self.busy:
                    reentered.append(f"on_push inside {self.busy}")
                self.busy = "on_push"
                self.push(shape.out, self.grab(shape.in_) + 1)
                self.busy = ""

            def on_pull(self) -> None:
                if self.busy:
                    reentered.append(f"on_pull inside {self.busy}")
                self.busy = "on_pull"
                self.pull(shape.in_)
                self.busy = ""

        return Logic()


@pytest.mark.parametrize("boundary", [False, True])
async def test_handlers_are_never_reentered(materializer: Materializer, boundary: bool) -> None:
    # A runtime calling the next handler directly from push/pull would run a stage's
    # on_pull while its own on_push is still on the stack (the sink pulls from inside the
    # push cascade), and code after ``push`` would see state changed under it. The
    # interpreter queues port events instead, as Akka's does.
    reentered: list[str] = []
    src: Source[int, Any] = Source.from_iterable(range(100))
    for i in range(4):
        src = src.via(Flow.from_graph(_GuardedMap(reentered)))
        if boundary and i == 1:
            src = src.async_boundary()
    result = await src.run_with(Sink.seq(), materializer)
    assert result == [x + 4 for x in range(100)]
    assert reentered == []
