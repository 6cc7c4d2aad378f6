"""A synchronous harness for stage-level tests (Akka's ``GraphInterpreterSpecKit``).

``StageHarness(flow)`` materializes ``flow`` between an upstream and a downstream probe
without starting the interpreter's task: every call (``request``, ``push``, ``complete``,
``fail``, ``cancel``) changes a port and then runs the island's ``execute()`` right there
until nothing is left to do, and ``events()`` returns what the probes saw, in order. No
``await``, no timeouts, no scheduling: a test states exactly which signal comes when and
sees the stage's answer before the next line.

    h = StageHarness(Flow().map(lambda x: x * 2))
    h.request(1)
    assert h.events() == [RequestOne()]      # the request reached upstream
    h.push(21)
    assert h.events() == [OnNext(42)]
    h.complete()
    assert h.events() == [OnComplete()]

It drives stages whose work happens in their handlers (most built-in operators and custom
``GraphStage``s). Stages that wait for something outside the island (futures, timers,
threads) need the loop to run: test those with ``TestSource``/``TestSink`` probes.

The harness must be created while the event loop runs (materialization binds the stream
to it), so it lives in an ``async def`` test; its methods are plain calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._dsl.blueprints import Flow, Sink, Source
from .._errors import SubscriptionWithCancelError
from .._impl.materializer import Materializer
from .._impl.unobserved import observed
from .._keep import Keep
from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
)
from .._stage.shapes import Inlet, Outlet, SinkShape, SourceShape

if TYPE_CHECKING:
    from .._impl.interpreter import Island

__all__ = [
    "StageHarness",
    "HarnessEvent",
    "RequestOne",
    "Cancel",
    "OnNext",
    "OnComplete",
    "OnError",
]

In = TypeVar("In")
Out = TypeVar("Out")

#: Interpreter runs per call before the harness calls the stage runaway (an element
#: producing stage with demand never quiesces; each run processes up to the island's
#: event budget).
MAX_RUNS = 10_000


class HarnessEvent:
    """Base of what the harness's probes record."""

    __slots__ = ()


@dataclass(frozen=True)
class RequestOne(HarnessEvent):
    """The stage pulled its input: upstream may ``push`` one element."""


@dataclass(frozen=True)
class Cancel(HarnessEvent):
    """The stage cancelled its input, with ``cause``."""

    cause: BaseException | None = None

    def __eq__(self, other: object) -> bool:
        # Causes compare by type and message: a test writes the cause it expects anew.
        if not isinstance(other, Cancel):
            return NotImplemented
        return _same_exc(self.cause, other.cause)

    def __hash__(self) -> int:
        return hash(type(self.cause))


@dataclass(frozen=True)
class OnNext(HarnessEvent, Generic[Out]):
    """The stage pushed ``elem`` downstream."""

    elem: Out


@dataclass(frozen=True)
class OnComplete(HarnessEvent):
    """The stage completed its output."""


@dataclass(frozen=True)
class OnError(HarnessEvent):
    """The stage failed its output with ``exc``."""

    exc: BaseException

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OnError):
            return NotImplemented
        return _same_exc(self.exc, other.exc)

    def __hash__(self) -> int:
        return hash(type(self.exc))


def _same_exc(a: BaseException | None, b: BaseException | None) -> bool:
    if a is None or b is None:
        return a is b
    return a is b or (type(a) is type(b) and a.args == b.args)


class _Recorder:
    __slots__ = ("events", "upstream", "downstream")

    def __init__(self) -> None:
        self.events: list[HarnessEvent] = []
        self.upstream: _UpstreamLogic | None = None
        self.downstream: _DownstreamLogic | None = None


class _UpstreamStage(GraphStage[SourceShape[Any]]):
    name = "harness_upstream"

    def __init__(self, rec: _Recorder) -> None:
        self.rec = rec
        self.shape = SourceShape(Outlet("StageHarness.upstream"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _UpstreamLogic(self.shape, self.rec)


class _UpstreamLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], rec: _Recorder) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.rec = rec
        rec.upstream = self
        self.set_handler(self.out, self)

    def on_pull(self) -> None:
        self.rec.events.append(RequestOne())

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.rec.events.append(Cancel(None if _is_plain_cancel(cause) else cause))
        self.complete_stage()


def _is_plain_cancel(cause: BaseException) -> bool:
    return isinstance(cause, SubscriptionWithCancelError)


class _DownstreamStage(GraphStageWithMaterializedValue[SinkShape[Any], None]):
    name = "harness_downstream"

    def __init__(self, rec: _Recorder) -> None:
        self.rec = rec
        self.shape = SinkShape(Inlet("StageHarness.downstream"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, None]:
        return _DownstreamLogic(self.shape, self.rec), None


class _DownstreamLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], rec: _Recorder) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.rec = rec
        self.demand = 0
        rec.downstream = self
        self.set_handler(self.in_, self)

    def ask(self) -> None:
        if self.demand > 0 and not self.has_been_pulled(self.in_) and not self.is_closed(self.in_):
            self.pull(self.in_)

    def on_push(self) -> None:
        self.rec.events.append(OnNext(self.grab(self.in_)))
        self.demand -= 1
        self.ask()

    def on_upstream_finish(self) -> None:
        self.rec.events.append(OnComplete())
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        observed(exc)  # the harness reports it: not an unobserved failure
        self.rec.events.append(OnError(exc))
        self.fail_stage(exc)


class _SyncMaterializer(Materializer):
    """A materializer whose islands never get a task: the harness runs them."""

    def __init__(self, name: str) -> None:
        # Element-at-a-time: the probes speak the plain protocol, so batch paths stay off.
        super().__init__(name=name, fast_paths=False)
        self.sync_islands: list[Island] = []

    def _spawn(self, coro: Any, island: Island | None = None) -> Any:
        if island is None:
            return super()._spawn(coro, island)
        coro.close()  # the island's main loop: the harness calls execute() instead
        self.sync_islands.append(island)
        return None


class StageHarness(Generic[In, Out]):
    """Drive ``flow`` (a ``Flow`` or a flow-shaped ``GraphStage``) synchronously between an
    upstream and a downstream probe; see the module docstring.

    Every call runs the stream until it is quiescent, then returns the harness (calls
    chain). ``events()`` returns and clears what happened since the last call:
    ``RequestOne()`` and ``Cancel(cause)`` at the upstream end, ``OnNext(elem)``,
    ``OnComplete()`` and ``OnError(exc)`` at the downstream end. ``materialized`` is the
    flow's materialized value.
    """

    def __init__(
        self, flow: Flow[In, Out, Any] | GraphStageWithMaterializedValue[Any, Any]
    ) -> None:
        if isinstance(flow, GraphStageWithMaterializedValue):
            flow = Flow.from_graph(flow)
        if not isinstance(flow, Flow):
            raise TypeError(
                f"StageHarness drives a Flow or a flow-shaped GraphStage, got {type(flow).__name__}"
            )
        self._rec = _Recorder()
        self._mat = _SyncMaterializer(name=f"harness:{flow}")
        graph = (
            Source.from_graph(_UpstreamStage(self._rec))
            .via_mat(flow, Keep.right)
            .to_mat(Sink.from_graph(_DownstreamStage(self._rec)), Keep.left)
        )
        self.materialized: Any = graph.run(self._mat)
        for island in self._mat.sync_islands:
            island._start_logics()
        self._run()

    # -- the upstream end ----------------------------------------------------------------
    def push(self, elem: In) -> StageHarness[In, Out]:
        """Push ``elem`` into the stage (it must have pulled: ``RequestOne``)."""
        up = self._up()
        up.push(up.out, elem)
        return self._run()

    def complete(self) -> StageHarness[In, Out]:
        """Complete the stage's input."""
        up = self._up()
        up.complete(up.out)
        return self._run()

    def fail(self, exc: BaseException) -> StageHarness[In, Out]:
        """Fail the stage's input with ``exc``."""
        up = self._up()
        up.fail(up.out, exc)
        return self._run()

    # -- the downstream end --------------------------------------------------------------
    def request(self, n: int = 1) -> StageHarness[In, Out]:
        """Ask the stage for ``n`` more elements (one pull at a time, as a sink does)."""
        if n <= 0:
            raise ValueError(f"StageHarness.request(n) needs n > 0, got {n}")
        down = self._down()
        down.demand += n
        down.ask()
        return self._run()

    def cancel(self, cause: BaseException | None = None) -> StageHarness[In, Out]:
        """Cancel the stage's output (with ``cause``)."""
        down = self._down()
        down.cancel(down.in_, cause)
        return self._run()

    # -- what happened -------------------------------------------------------------------
    def events(self) -> list[HarnessEvent]:
        """The events since the last call, in the order they happened (then cleared)."""
        out, self._rec.events = self._rec.events, []
        return out

    @property
    def finished(self) -> bool:
        """Whether every stage of the stream has stopped."""
        return all(i.finished for i in self._mat.sync_islands)

    def _up(self) -> _UpstreamLogic:
        up = self._rec.upstream
        assert up is not None
        return up

    def _down(self) -> _DownstreamLogic:
        down = self._rec.downstream
        assert down is not None
        return down

    def _run(self) -> StageHarness[In, Out]:
        islands = self._mat.sync_islands
        for _ in range(MAX_RUNS):
            busy = False
            for island in islands:
                if island.finished:
                    continue
                if island.execute() or island.queue or island.mailbox:
                    busy = True
            if not busy:
                return self
        raise RuntimeError(
            f"StageHarness: the stream did not quiesce after {MAX_RUNS} interpreter runs "
            "(a stage that keeps emitting without demand, or a feedback loop)"
        )
