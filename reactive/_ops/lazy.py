"""The lazy and future family: ``Source.lazy_source``, ``Source.lazy_single``,
``Source.lazy_future``, ``Source.future_source``, ``Source.lazy_future_source``,
``Flow.lazy_flow``, ``Flow.future_flow``, ``Flow.lazy_future_flow``, ``Sink.lazy_sink``,
``Sink.future_sink`` and ``Sink.lazy_future_sink`` (Akka's ``lazySource``, ``lazySingle``,
``lazyFuture``, ``futureSource``, ``lazyFutureSource``, ``lazyFlow``, ``futureFlow``,
``lazyFutureFlow``, ``lazySink``, ``futureSink``, ``lazyFutureSink``).

Each lazy operator defers calling its factory until the stream needs it: the first
downstream demand for sources, the first element for flows and sinks. The ``future``
variants wait for an awaitable of the nested graph (``future_source`` and ``future_flow``
from the start; ``future_sink`` is ``lazy_future_sink`` of a given awaitable, as in Akka
2.6+: it waits for the first element). One stage per kind serves the whole family:
``FutureSource`` (eager or lazy), ``LazyFlow`` (sync factory, async factory, or a given
awaitable) and ``LazySink`` (sync or async factory). Nested graphs are materialized
on the parent's materializer, with the lazy stage's attributes as defaults (a supervision
strategy set around it applies inside), and talk to it through the dynamic ports of
``substreams.py`` (``SubSinkInlet`` / ``SubSourceOutlet``). The materialized value of the
nested graph is delivered through a future; when the nested graph is never created it
fails with ``NeverMaterializedError`` whose ``__cause__`` says why (a cancellation cause,
an upstream failure, the factory's exception) where there is one.

Note (as in Akka): an asynchronous boundary or any operator that prefetches demands
early, which calls the factory early.

Also here, as it works the same way: ``flat_map_prefix(n, f)`` (Akka's
``flatMapPrefix``), whose nested Flow is built by ``f(first n elements)`` and processes the
rest of the stream. As in Akka, the prefix itself is only handed to ``f``: it does not go
through the Flow (prepend it there to process it:
``Flow().prepend(Source.from_iterable(prefix))``).

A downstream cancel before the nested flow exists (``future_flow``, ``lazy_flow``,
``lazy_future_flow``, ``flat_map_prefix``) follows the
``NestedMaterializationCancellationPolicy`` in force (Akka's attribute of that name, read
from the stage's attributes). ``eager_cancellation`` (the default): upstream is cancelled
at once and the flow is never built (its awaitable fails with ``NeverMaterializedError``).
``propagate_to_nested``: the cause is held, upstream is still pulled for what the flow
needs (the first element, the prefix) or the awaitable awaited, then the flow is
materialized and its output cancelled with the held cause; the stage keeps going (its
ports may all be closed by then) until the nested flow's input is closed.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, TypeVar

from .._attributes import nested_materialization_cancellation_policy_of
from .._errors import NeverMaterializedError
from .._keep import Keep
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    abrupt_error,
)
from .._stage.shapes import FlowShape, Inlet, Outlet, Shape, SinkShape, SourceShape
from .asyncsupport import AwaitingLogicMixin, call_cancelled
from .sinks import new_promise
from .sources import SourceLogic, SourceStage, require_callable
from .substreams import SubSinkInlet, SubSourceOutlet, materialize_nested

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "FlatMapPrefix",
    "FutureFlow",
    "FutureSink",
    "FutureSource",
    "LazyFlow",
    "LazyFuture",
    "LazyFutureFlow",
    "LazyFutureSink",
    "LazyFutureSource",
    "LazySingleSource",
    "LazySink",
    "LazySource",
]

_NOTHING: Any = object()


def never_materialized(
    stage: str, why: str, cause: BaseException | None = None
) -> NeverMaterializedError:
    """The error of a lazy stage's future when its nested graph was never created."""
    err = NeverMaterializedError(f"[{stage}] the nested graph was never materialized: {why}")
    err.__cause__ = cause
    return err


def _blueprint(
    stage: str, kind: str, made: Any, inlets: int, outlets: int, what: str = "factory()"
) -> Any:
    """Check what ``what`` (a factory) returned: a blueprint of the expected shape, else
    TypeError."""
    from .._dsl.graph import Graph

    shape = made.shape if isinstance(made, (Graph, GraphStageWithMaterializedValue)) else None
    if shape is None or len(shape.inlets) != inlets or len(shape.outlets) != outlets:
        raise TypeError(
            f"[{stage}] {what} must return a {kind}, got {type(made).__name__} {made!r}"
        )
    return made


def _awaitable_of(stage: str, what: str, made: Any) -> Awaitable[Any]:
    """Check that ``what`` (a factory call) returned an awaitable, else TypeError; a future
    (perhaps shared with others) is shielded: it is not ours to cancel when the stage
    stops early."""
    if not inspect.isawaitable(made):
        raise TypeError(
            f"[{stage}] {what} must return an awaitable, got {type(made).__name__} {made!r}"
        )
    return asyncio.shield(made) if asyncio.isfuture(made) else made


def _propagates_to_nested(logic: GraphStageLogic) -> bool:
    """Whether ``logic``'s ``NestedMaterializationCancellationPolicy`` is
    ``propagate_to_nested`` (else: eager cancellation, Akka's default)."""
    policy = nested_materialization_cancellation_policy_of(logic.attributes)
    return policy.propagate_to_nested_materialization


def _require_awaitable(operator: str, aw: Any) -> None:
    """Raise ``TypeError`` naming ``operator`` unless ``aw`` is awaitable."""
    if not inspect.isawaitable(aw):
        raise TypeError(f"{operator}: aw must be an awaitable, got {type(aw).__name__} {aw!r}")


def _failure_of(fut: asyncio.Future[Any], stage: str, what: str) -> BaseException | None:
    """The failure of an awaited future (an ``AsyncCallCancelledError`` naming ``what`` if
    it was cancelled), or None."""
    if fut.cancelled():
        return call_cancelled(stage, what=what)
    return fut.exception()


_S = TypeVar("_S", bound=Shape)


class _NestedStage(GraphStageWithMaterializedValue[_S, "asyncio.Future[Any]"]):
    """A stage whose materialized value is the future of its nested graph's: the class
    attribute ``logic`` builds the run's logic from ``(shape, stage, promise)``."""

    logic: Callable[[Any, Any, asyncio.Future[Any]], GraphStageLogic]

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[GraphStageLogic, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return type(self).logic(self.shape, self, promise), promise


# -- lazy_source ------------------------------------------------------------------------------
class LazySource(GraphStageWithMaterializedValue[SourceShape[Any], "asyncio.Future[Any]"]):
    """``Source.lazy_source(factory)``; see ``Source.lazy_source``."""

    name = "lazy_source"

    def __init__(self, factory: Callable[[], Any]) -> None:
        require_callable("Source.lazy_source(factory)", "factory", factory)
        self.shape = SourceShape(Outlet("LazySource.out"))
        self.factory = factory

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return _LazySourceLogic(self.shape, self.factory, promise), promise


class _LazySourceLogic(SourceLogic):
    def __init__(
        self, shape: SourceShape[Any], factory: Callable[[], Any], promise: asyncio.Future[Any]
    ) -> None:
        super().__init__(shape)
        self.factory = factory
        self.promise = promise
        self.inner: SubSinkInlet | None = None

    def on_pull(self) -> None:
        inner = self.inner
        if inner is not None:
            inner.pull()
            return
        try:
            source = _blueprint(self.stage_name, "Source", self.factory(), 0, 1)
        except Exception as exc:
            self.promise.set_exception(exc)
            self.fail_stage(exc)
            return
        inner = self.inner = SubSinkInlet(self, "LazySource.in", on_push=self._on_inner_push)
        inner.pull()
        try:
            mat = inner.materialize(source)
        except Exception as exc:
            inner.cancel()
            self.promise.set_exception(exc)
            self.fail_stage(exc)
            return
        self.promise.set_result(mat)

    def _on_inner_push(self) -> None:
        assert self.inner is not None
        self.push(self.out, self.inner.grab())

    def on_downstream_finish(self, cause: BaseException) -> None:
        if self.inner is not None:
            self.inner.cancel(cause)
        elif not self.promise.done():
            self.promise.set_exception(
                never_materialized(
                    self.stage_name, "the stream was cancelled before the first demand", cause
                )
            )
        self.complete_stage()

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


# -- lazy_single / lazy_future ----------------------------------------------------------------
class LazySingleSource(SourceStage):
    """``Source.lazy_single(f)``: emits ``f()`` (called on the first demand), then
    completes."""

    name = "lazy_single_source"

    def __init__(self, f: Callable[[], Any]) -> None:
        require_callable("Source.lazy_single(f)", "f", f)
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _LazySingleLogic(self.shape, self.f)


class _LazySingleLogic(SourceLogic):
    def __init__(self, shape: SourceShape[Any], f: Callable[[], Any]) -> None:
        super().__init__(shape)
        self.f = f

    def on_pull(self) -> None:
        x = self.f()  # raising fails the stage with that exception
        if x is None:
            raise TypeError(
                f"[{self.stage_name}] f() returned None: elements must not be None "
                "(RS rule 2.13; a function missing its return?)"
            )
        self.push(self.out, x)
        self.complete_stage()


class LazyFuture(SourceStage):
    """``Source.lazy_future(f)``: awaits ``f()`` (called on the first demand) and emits
    its result (``None`` completes empty)."""

    name = "lazy_future"

    def __init__(self, f: Callable[[], Awaitable[Any]]) -> None:
        require_callable("Source.lazy_future(f)", "f", f)
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _LazyFutureLogic(self.shape, self.f)


class _LazyFutureLogic(AwaitingLogicMixin, SourceLogic):
    def __init__(self, shape: SourceShape[Any], f: Callable[[], Awaitable[Any]]) -> None:
        SourceLogic.__init__(self, shape)
        self.f = f
        self.started = False

    def on_pull(self) -> None:
        if self.started:
            return
        self.started = True
        self._await(_awaitable_of(self.stage_name, "f()", self.f()), self._on_result)

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        failure = _failure_of(fut, self._stage_name, "the awaitable f() returned")
        if failure is not None:
            self.fail_stage(failure)
            return
        x = fut.result()
        if x is None:
            self.complete_stage()
        else:
            # Pulled once and not pushed since: the element can go at once.
            self.push(self.out, x)
            self.complete_stage()


# -- lazy_flow / lazy_future_flow / future_flow ----------------------------------------------
class LazyFlow(_NestedStage[FlowShape]):
    """``Flow.lazy_flow(factory)``; see ``Flow.lazy_flow``."""

    name = "lazy_flow"
    #: ``factory()`` returns an awaitable of the Flow rather than the Flow.
    awaits = False
    #: What gives the Flow, as the stage's errors name it.
    what = "factory()"

    def __init__(self, factory: Callable[[], Any]) -> None:
        require_callable(f"Flow.{self.name}(factory)", "factory", factory)
        kind = type(self).__name__
        self.shape = FlowShape(Inlet(f"{kind}.in"), Outlet(f"{kind}.out"))
        self.factory: Callable[[], Any] | None = factory
        self.aw: Any = None  # future_flow: the awaitable, awaited from the start


class LazyFutureFlow(LazyFlow):
    """``Flow.lazy_future_flow(factory)``; see ``Flow.lazy_future_flow``."""

    name = "lazy_future_flow"
    awaits = True
    what = "the awaitable factory() returned"


class FutureFlow(LazyFlow):
    """``Flow.future_flow(aw)``; see ``Flow.future_flow``."""

    name = "future_flow"
    awaits = True
    what = "the awaitable"

    def __init__(self, aw: Any) -> None:
        _require_awaitable("Flow.future_flow(aw)", aw)
        self.shape = FlowShape(Inlet("FutureFlow.in"), Outlet("FutureFlow.out"))
        self.factory = None
        self.aw = aw


class _LazyFlowLogic(AwaitingLogicMixin, InHandler, OutHandler):
    """Three phases, each with its own handlers. Before the first element (this logic;
    ``future_flow`` skips it): downstream demand goes upstream. Waiting for the awaitable
    of the Flow (``_Waiting``; ``lazy_flow`` skips it). Connected (``_Connected``): the
    inner flow runs and every port signal is relayed (upstream -> sub outlet -> inner
    flow -> sub inlet -> downstream)."""

    def __init__(self, shape: FlowShape, stage: LazyFlow, promise: asyncio.Future[Any]) -> None:
        GraphStageLogic.__init__(self, shape)
        self.in_: Inlet[Any] = shape.in_
        self.out: Outlet[Any] = shape.out
        self.factory = stage.factory
        self.aw = stage.aw
        self.awaits = stage.awaits
        self.what = stage.what
        self.promise = promise
        #: ``propagate_to_nested``: downstream's cancel cause, held for the inner flow.
        self.held_cancel: BaseException | None = None
        self.set_handlers(self.in_, self.out, self)

    def pre_start(self) -> None:
        if self.factory is None:  # future_flow: awaited from the start
            self._wait_for(_awaitable_of(self.stage_name, "aw", self.aw), _NOTHING)

    # -- before the first element -----------------------------------------------------------
    def on_pull(self) -> None:
        self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.promise.set_exception(
            never_materialized(self.stage_name, "upstream completed before the first element")
        )
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._fail_early(exc, "upstream failed before the first element")

    def on_downstream_finish(self, cause: BaseException) -> None:
        if _propagates_to_nested(self):
            self._hold_cancel(cause)
            # The inner flow is built from the first element: pull it, though downstream
            # no longer asks for anything.
            if not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
                self.pull(self.in_)
        else:
            self._cancel_early(cause, "downstream cancelled before the first element")

    def on_push(self) -> None:
        first = self.grab(self.in_)
        assert self.factory is not None
        try:
            made = self.factory()
            if self.awaits:
                made = _awaitable_of(self.stage_name, "factory()", made)
        except Exception as exc:
            self._fail_early(exc, f"factory() failed: {exc!r}")
            return
        if self.awaits:
            self._wait_for(made, first)
        else:
            self._connect(made, first, _NOTHING)

    # -- the phases -------------------------------------------------------------------------
    def _wait_for(self, aw: Awaitable[Any], first: Any) -> None:
        waiting = _Waiting(self, first)
        self.set_handlers(self.in_, self.out, waiting)
        self._await(aw, waiting.on_flow)

    def _connect(self, made: Any, first: Any, pending_end: Any) -> None:
        try:
            flow = _blueprint(self.stage_name, "Flow", made, 1, 1, self.what)
            connected = _Connected(self, first, pending_end)
            mat = connected.materialize(flow)
        except Exception as exc:
            self._fail_early(exc, f"{self.what} or its flow failed: {exc!r}")
            return
        self.promise.set_result(mat)
        self.set_handlers(self.in_, self.out, connected)
        if self.held_cancel is not None:  # propagate_to_nested: the inner flow gets it
            connected.sub_in.cancel(self.held_cancel)
        connected.start()

    def _fail_early(self, exc: BaseException, why: str) -> None:
        """Fail the stage (cancelling upstream) before the inner flow exists."""
        self.promise.set_exception(never_materialized(self.stage_name, why, exc))
        self.fail_stage(exc)

    def _cancel_early(self, cause: BaseException, why: str) -> None:
        """Downstream cancelled before the inner flow exists: cancel upstream at once (Akka's
        default ``NestedMaterializationCancellationPolicy``, ``EagerCancellation``)."""
        self.promise.set_exception(never_materialized(self.stage_name, why, cause))
        self.cancel_stage(cause)

    def _hold_cancel(self, cause: BaseException) -> None:
        """Downstream cancelled before the inner flow exists, under ``propagate_to_nested``:
        hold ``cause`` for the inner flow. The stage keeps going (upstream may end while
        the awaitable is pending, closing its last port) until the inner flow's input is
        closed (``_release``), or the stage completes or fails (which ends keep-going)."""
        self.held_cancel = cause
        self.set_keep_going(True)

    def _release(self) -> None:
        """The inner flow's input is closed: a held cancel no longer keeps the stage."""
        if self.held_cancel is not None:
            self.held_cancel = None
            self.set_keep_going(False)

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


LazyFlow.logic = _LazyFlowLogic


class _Waiting(InHandler, OutHandler):
    """The handlers of a lazy flow while the awaitable of its Flow is pending: nothing is
    pulled (the first element, if any, is held); upstream's end is held for the inner flow
    (as Akka's ``FutureFlow``); downstream's demand waits (``out`` stays available);
    downstream's cancel cancels upstream at once, or is held for the inner flow
    (``propagate_to_nested``)."""

    def __init__(self, logic: _LazyFlowLogic, first: Any) -> None:
        self.logic = logic
        self.first = first
        self.pending_end: Any = _NOTHING  # upstream's end: None or its failure

    def on_push(self) -> None:  # nothing was pulled
        raise AssertionError(f"[{self.logic.stage_name}] push while waiting for the Flow")

    def on_pull(self) -> None:
        pass  # served once the inner flow runs

    def on_upstream_finish(self) -> None:
        self.pending_end = None

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.pending_end = exc

    def on_downstream_finish(self, cause: BaseException) -> None:
        if _propagates_to_nested(self.logic):
            self.logic._hold_cancel(cause)
        else:
            self.logic._cancel_early(cause, "downstream cancelled before the Flow was there")

    def on_flow(self, fut: asyncio.Future[Any]) -> None:
        lg = self.logic
        exc = _failure_of(fut, lg._stage_name, lg.what)
        if exc is not None:
            lg._fail_early(exc, f"{lg.what} failed: {exc!r}")
        else:
            lg._connect(fut.result(), self.first, self.pending_end)


class _Connected(InHandler, OutHandler):
    """The handlers of a lazy flow whose inner flow runs: every port signal is relayed."""

    def __init__(self, logic: _LazyFlowLogic, first: Any, pending_end: Any) -> None:
        self.logic = logic
        self.first = first  # held until the inner flow asks for it
        self.pending_end = pending_end  # upstream's end (None or exc) seen before that
        prefix = logic.in_.name.rsplit(".", 1)[0]
        self.sub_out = SubSourceOutlet(
            logic,
            f"{prefix}.inner.in",
            on_pull=self._on_inner_pull,
            on_downstream_finish=self._on_inner_cancel,
            subscription_timeout=None,
        )
        self.sub_in = SubSinkInlet(
            logic,
            f"{prefix}.inner.out",
            on_push=self._on_inner_push,
            on_upstream_finish=self._on_inner_finish,
            on_upstream_failure=self._on_inner_failure,
        )

    def materialize(self, flow: Any) -> Any:
        from .._dsl.blueprints import Source

        return self.sub_in.materialize(
            Source.from_graph(self.sub_out.source).via_mat(flow, Keep.right)
        )

    def start(self) -> None:
        """Hand the inner flow what came before it: upstream's end (unless a first element
        is held: the end follows it) and downstream's demand."""
        if self.first is _NOTHING and self.pending_end is not _NOTHING:
            self._end_inner_input()
        lg = self.logic
        if lg.is_available(lg.out):
            self.sub_in.pull()

    def _end_inner_input(self) -> None:
        end, self.pending_end = self.pending_end, _NOTHING
        if end is None:
            self.sub_out.complete()
        else:
            self.sub_out.fail(end)
        self.logic._release()

    # upstream -> inner
    def on_push(self) -> None:
        lg = self.logic
        self.sub_out.push(lg.grab(lg.in_))

    def on_upstream_finish(self) -> None:
        self.pending_end = None
        if self.first is _NOTHING:
            self._end_inner_input()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.pending_end = exc
        if self.first is _NOTHING:
            self._end_inner_input()

    def _on_inner_pull(self) -> None:
        lg = self.logic
        first = self.first
        if first is _NOTHING:
            if not lg.is_closed(lg.in_) and not lg.has_been_pulled(lg.in_):
                lg.pull(lg.in_)
            return
        self.first = _NOTHING
        self.sub_out.push(first)
        if self.pending_end is not _NOTHING:
            self._end_inner_input()

    def _on_inner_cancel(self, cause: BaseException) -> None:
        lg = self.logic
        if not lg.is_closed(lg.in_):
            lg.cancel(lg.in_, cause)
        lg._release()

    # inner -> downstream
    def on_pull(self) -> None:
        if not self.sub_in.is_closed() and not self.sub_in.has_been_pulled():
            self.sub_in.pull()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.sub_in.cancel(cause)
        # The stage stops once the inner flow cancelled its input (then ``in`` closes).

    def _on_inner_push(self) -> None:
        lg = self.logic
        lg.push(lg.out, self.sub_in.grab())

    def _on_inner_finish(self) -> None:
        lg = self.logic
        lg.complete(lg.out)

    def _on_inner_failure(self, exc: BaseException) -> None:
        lg = self.logic
        lg.fail(lg.out, exc)


# -- lazy_sink / lazy_future_sink / future_sink ----------------------------------------------
class LazySink(_NestedStage[SinkShape[Any]]):
    """``Sink.lazy_sink(factory)``; see ``Sink.lazy_sink``."""

    name = "lazy_sink"
    #: ``factory()`` returns an awaitable of the Sink rather than the Sink.
    awaits = False
    #: What gives the Sink, as the stage's errors name it.
    what = "factory()"

    def __init__(self, factory: Callable[[], Any]) -> None:
        require_callable(f"Sink.{self.name}(factory)", "factory", factory)
        self.shape = SinkShape(Inlet(f"{type(self).__name__}.in"))
        self.factory = factory


class LazyFutureSink(LazySink):
    """``Sink.lazy_future_sink(factory)``; see ``Sink.lazy_future_sink``."""

    name = "lazy_future_sink"
    awaits = True
    what = "the awaitable factory() returned"


class FutureSink(LazyFutureSink):
    """``Sink.future_sink(aw)``: as in Akka 2.6+, ``lazy_future_sink`` of a given
    awaitable (awaited on the first element); see ``Sink.future_sink``."""

    name = "future_sink"
    what = "the awaitable"

    def __init__(self, aw: Any) -> None:
        _require_awaitable("Sink.future_sink(aw)", aw)
        super().__init__(lambda: aw)


class _LazySinkLogic(AwaitingLogicMixin, InHandler):
    def __init__(
        self, shape: SinkShape[Any], stage: LazySink, promise: asyncio.Future[Any]
    ) -> None:
        GraphStageLogic.__init__(self, shape)
        self.in_: Inlet[Any] = shape.in_
        self.factory = stage.factory
        self.awaits = stage.awaits
        self.what = stage.what
        self.promise = promise
        self.sub_out: SubSourceOutlet | None = None
        self.first: Any = _NOTHING
        self.pending_end: Any = _NOTHING
        self.set_handler(self.in_, self)

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        sub_out = self.sub_out
        if sub_out is not None:
            sub_out.push(self.grab(self.in_))
            return
        self.first = self.grab(self.in_)
        try:
            made = self.factory()
            if self.awaits:
                made = _awaitable_of(self.stage_name, "factory()", made)
        except Exception as exc:
            self._fail(exc)
            return
        if self.awaits:
            # Upstream may complete while the Sink is awaited: the stage stays for it.
            self.set_keep_going(True)
            self._await(made, self._on_sink)
        else:
            self._switch_to(made)

    def _on_sink(self, fut: asyncio.Future[Any]) -> None:
        exc = _failure_of(fut, self._stage_name, self.what)
        if exc is not None:
            self._fail(exc)
        else:
            self._switch_to(fut.result())

    def _fail(self, exc: BaseException) -> None:
        self.promise.set_exception(exc)
        self.fail_stage(exc)

    def _switch_to(self, made: Any) -> None:
        try:
            sink = _blueprint(self.stage_name, "Sink", made, 1, 0, self.what)
        except Exception as exc:
            self._fail(exc)
            return
        from .._dsl.blueprints import Sink, Source

        sub_out = self.sub_out = SubSourceOutlet(
            self,
            f"{self.in_.name.rsplit('.', 1)[0]}.inner.in",
            on_pull=self._on_inner_pull,
            on_downstream_finish=self._on_inner_cancel,
            subscription_timeout=None,
        )
        # The inner sink may drain after upstream completed: this stage stays until the
        # sub outlet is closed (completed, failed, or cancelled by the inner sink).
        self.set_keep_going(True)
        try:
            graph = Source.from_graph(sub_out.source).to_mat(Sink.from_graph(sink), Keep.right)
            mat = materialize_nested(self, graph.module)
        except Exception as exc:
            self.sub_out = None
            sub_out.fail(exc)
            self._fail(exc)
            return
        self.promise.set_result(mat)

    def on_upstream_finish(self) -> None:
        if self.first is not _NOTHING:  # held for the inner sink (perhaps still awaited)
            self.pending_end = None
        elif self.sub_out is None:
            self.promise.set_exception(
                never_materialized(self.stage_name, "upstream completed before the first element")
            )
            self.complete_stage()
        else:
            self.sub_out.complete()
            self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.sub_out is None:  # before the first element, or while the Sink is awaited
            self.promise.set_exception(
                never_materialized(
                    self.stage_name, "upstream failed before the Sink was materialized", exc
                )
            )
            self.fail_stage(exc)
        elif self.first is not _NOTHING:
            self.pending_end = exc
        else:
            self.sub_out.fail(exc)
            self.fail_stage(exc)

    def _on_inner_pull(self) -> None:
        sub_out = self.sub_out
        assert sub_out is not None
        first = self.first
        if first is _NOTHING:
            if not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
                self.pull(self.in_)
            return
        self.first = _NOTHING
        sub_out.push(first)
        end = self.pending_end
        if end is None:
            sub_out.complete()
            self.complete_stage()
        elif end is not _NOTHING:
            sub_out.fail(end)
            self.fail_stage(end)

    def _on_inner_cancel(self, cause: BaseException) -> None:
        # The inner sink needs no more: cancel upstream with its cause, and stop.
        if not self.is_closed(self.in_):
            self.cancel(self.in_, cause)
        self.complete_stage()

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


LazySink.logic = _LazySinkLogic


# -- flat_map_prefix --------------------------------------------------------------------------
class FlatMapPrefix(_NestedStage[FlowShape]):
    """``flat_map_prefix(n, f)``: buffer the first ``n`` elements, build a Flow with
    ``f(prefix)``, and process the rest of the stream with it.

    Emits when the nested flow emits. Backpressures when downstream or the nested flow
    backpressures (while the prefix fills: when downstream has not pulled). Completes
    when the nested flow completes (a stream shorter than ``n`` builds the flow from
    what arrived and completes its input at once). Fails when upstream fails before the
    prefix is complete, ``f`` raises or returns no Flow, or the nested flow fails.
    Cancels when downstream cancels (before the flow exists: at once under the default
    ``NestedMaterializationCancellationPolicy.eager_cancellation``; under
    ``propagate_to_nested`` the prefix is still pulled, the flow built and cancelled with
    the held cause) or the nested flow cancels its input.
    """

    name = "flat_map_prefix"

    def __init__(self, n: int, f: Callable[[list[Any]], Any]) -> None:
        if not isinstance(n, int) or isinstance(n, bool):
            raise TypeError(f"flat_map_prefix(n, f): n must be an int, got {n!r}")
        if n < 0:
            raise ValueError(f"flat_map_prefix(n, f): n must be >= 0, got {n!r}")
        if not callable(f):
            raise TypeError(f"flat_map_prefix(n, f): f must be callable, got {f!r}")
        self.shape = FlowShape(Inlet("FlatMapPrefix.in"), Outlet("FlatMapPrefix.out"))
        self.n = n
        self.f = f


class _FlatMapPrefixLogic(GraphStageLogic, InHandler, OutHandler):
    """Accumulates the prefix; once the nested flow runs, relays every port signal:
    upstream -> sub outlet -> nested flow -> sub inlet -> downstream."""

    def __init__(
        self, shape: FlowShape, stage: FlatMapPrefix, promise: asyncio.Future[Any]
    ) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.out: Outlet[Any] = shape.out
        self.n = stage.n
        self.f = stage.f
        self.promise = promise
        self.prefix: list[Any] = []
        self.sub_out: SubSourceOutlet | None = None
        self.sub_in: SubSinkInlet | None = None
        #: ``propagate_to_nested``: downstream's cancel cause, held for the nested flow.
        self.held_cancel: BaseException | None = None
        self.set_handlers(self.in_, self.out, self)

    # -- upstream ---------------------------------------------------------------------------
    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.sub_out is not None:
            self.sub_out.push(x)
            return
        self.prefix.append(x)
        if len(self.prefix) >= self.n:
            self._materialize()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.sub_out is not None:
            self.sub_out.complete()
        else:
            self._materialize()  # a short stream: f gets what arrived

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.sub_out is not None:
            self.sub_out.fail(exc)
            return
        self.promise.set_exception(
            never_materialized(
                self.stage_name, "upstream failed before the prefix was complete", exc
            )
        )
        self.fail_stage(exc)

    # -- downstream -------------------------------------------------------------------------
    def on_pull(self) -> None:
        if self.sub_in is not None:
            if not self.sub_in.is_closed() and not self.sub_in.has_been_pulled():
                self.sub_in.pull()
        elif len(self.prefix) < self.n:
            if not self.has_been_pulled(self.in_):
                self.pull(self.in_)
        else:
            self._materialize()  # n == 0: the flow is built on the first demand

    def on_downstream_finish(self, cause: BaseException) -> None:
        if self.sub_in is not None:
            # The stage stops once the nested flow cancelled its input.
            self.sub_in.cancel(cause)
            return
        if _propagates_to_nested(self):
            # Hold the cause for the nested flow and keep filling the prefix (``in`` is
            # open: a closed one would have built the flow already).
            self.held_cancel = cause
            if len(self.prefix) >= self.n:
                self._materialize()  # n == 0
            elif not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
                self.pull(self.in_)
            return
        # EagerCancellation (Akka's default NestedMaterializationCancellationPolicy).
        self.promise.set_exception(
            never_materialized(
                self.stage_name, "downstream cancelled before the prefix was complete", cause
            )
        )
        self.cancel_stage(cause)

    # -- the nested flow --------------------------------------------------------------------
    def _materialize(self) -> None:
        prefix, self.prefix = self.prefix, []
        sub_out = SubSourceOutlet(
            self,
            "FlatMapPrefix.inner.in",
            on_pull=self._on_inner_pull,
            on_downstream_finish=self._on_inner_cancel,
            subscription_timeout=None,
        )
        sub_in = SubSinkInlet(
            self,
            "FlatMapPrefix.inner.out",
            on_push=self._on_inner_push,
            on_upstream_finish=self._on_inner_finish,
            on_upstream_failure=self._on_inner_failure,
        )
        try:
            flow = _blueprint(self.stage_name, "Flow", self.f(prefix), 1, 1, "f(prefix)")
            mat = sub_in.materialize(sub_out.source.via_mat(flow, Keep.right))
        except Exception as exc:
            self.promise.set_exception(
                never_materialized(self.stage_name, f"f(prefix) or its flow failed: {exc!r}", exc)
            )
            self.fail_stage(exc)
            return
        self.sub_out, self.sub_in = sub_out, sub_in
        self.promise.set_result(mat)
        if self.held_cancel is not None:  # propagate_to_nested: the nested flow gets it
            sub_in.cancel(self.held_cancel)
        if self.is_closed(self.in_):  # built because upstream completed
            sub_out.complete()
        if self.is_available(self.out) and not sub_in.is_closed():
            sub_in.pull()

    def _on_inner_pull(self) -> None:
        if not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def _on_inner_cancel(self, cause: BaseException) -> None:
        if not self.is_closed(self.in_):
            self.cancel(self.in_, cause)

    def _on_inner_push(self) -> None:
        assert self.sub_in is not None
        self.push(self.out, self.sub_in.grab())

    def _on_inner_finish(self) -> None:
        self.complete(self.out)

    def _on_inner_failure(self, exc: BaseException) -> None:
        self.fail(self.out, exc)

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


FlatMapPrefix.logic = _FlatMapPrefixLogic


# -- future_source / lazy_future_source -------------------------------------------------------
class FutureSource(_NestedStage[SourceShape[Any]]):
    """Akka's ``Source.futureSource``: the elements of the Source an awaitable gives.

    The awaitable is awaited from the start (a future shared with others is shielded, not
    cancelled when the stream stops early); the Source it gives is materialized as soon as
    it is there, pulled on demand. Materialized value: an awaitable of the inner Source's
    materialized value; it fails with the awaitable's failure, with a ``TypeError`` when
    the result is no Source, or with ``NeverMaterializedError`` when downstream cancels
    first.

    Emits when the inner Source emits. Completes when the inner Source completes. Fails
    when the awaitable fails, gives no Source, or the inner Source fails. Cancels the
    inner Source (or the awaitable, if not shared) when downstream cancels.
    """

    name = "future_source"
    #: What the stage awaits, as its errors name it.
    what = "the awaitable"

    def __init__(self, aw: Any) -> None:
        _require_awaitable("Source.future_source(aw)", aw)
        self.shape = SourceShape(Outlet("FutureSource.out"))
        self.aw = aw
        self.factory: Callable[[], Any] | None = None  # set: lazy, called on first demand


class LazyFutureSource(FutureSource):
    """Akka's ``Source.lazyFutureSource``: ``FutureSource`` whose awaitable comes from
    ``factory()``, called on the first downstream demand (never if the stream is
    cancelled first: the materialized value then fails with ``NeverMaterializedError``).
    A raising factory fails the stream and the materialized value with its exception."""

    name = "lazy_future_source"
    what = "the awaitable factory() returned"

    def __init__(self, factory: Callable[[], Any]) -> None:
        require_callable("Source.lazy_future_source(factory)", "factory", factory)
        self.shape = SourceShape(Outlet("LazyFutureSource.out"))
        self.aw = None
        self.factory = factory


class _FutureSourceLogic(AwaitingLogicMixin, SourceLogic):
    def __init__(
        self, shape: SourceShape[Any], stage: FutureSource, promise: asyncio.Future[Any]
    ) -> None:
        SourceLogic.__init__(self, shape)
        self.aw = stage.aw
        self.factory = stage.factory
        self.what = stage.what
        self.promise = promise
        self.started = False
        self.inner: SubSinkInlet | None = None

    def pre_start(self) -> None:
        if self.factory is None:
            self._start()

    def _start(self) -> None:
        self.started = True
        try:
            if self.factory is None:
                aw = _awaitable_of(self.stage_name, "aw", self.aw)
            else:
                aw = _awaitable_of(self.stage_name, "factory()", self.factory())
        except Exception as exc:
            self.promise.set_exception(exc)
            self.fail_stage(exc)
            return
        self._await(aw, self._on_result)

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        exc = _failure_of(fut, self._stage_name, self.what)
        inner: SubSinkInlet | None = None
        if exc is None:
            try:
                source = _blueprint(self.stage_name, "Source", fut.result(), 0, 1, self.what)
                inner = SubSinkInlet(self, "FutureSource.in", on_push=self._on_inner_push)
                mat = inner.materialize(source)
            except Exception as e:
                exc = e
                if inner is not None:
                    inner.cancel()
        if exc is not None:
            self.promise.set_exception(exc)
            self.fail_stage(exc)
            return
        assert inner is not None
        self.inner = inner
        self.promise.set_result(mat)
        if self.is_available(self.out):
            inner.pull()

    def on_pull(self) -> None:
        inner = self.inner
        if inner is not None:
            if not inner.is_closed() and not inner.has_been_pulled():
                inner.pull()
        elif not self.started:
            self._start()  # lazy: the first demand calls the factory

    def _on_inner_push(self) -> None:
        assert self.inner is not None
        self.push(self.out, self.inner.grab())

    def on_downstream_finish(self, cause: BaseException) -> None:
        if self.inner is not None:
            self.inner.cancel(cause)
        elif not self.promise.done():
            self.promise.set_exception(
                never_materialized(
                    self.stage_name, "downstream cancelled before the Source was there", cause
                )
            )
        self.cancel_stage(cause)

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


FutureSource.logic = _FutureSourceLogic
