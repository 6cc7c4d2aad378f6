"""The lazy family: ``Source.lazy_source``, ``Source.lazy_single``, ``Source.lazy_future``,
``Flow.lazy_flow`` and ``Sink.lazy_sink`` (Akka's ``lazySource``, ``lazySingle``,
``lazyFuture``, ``lazyFlow``, ``lazySink``).

Each defers calling its factory until the stream needs it: the first downstream demand for
sources, the first element for the flow and the sink. Nested graphs are materialized
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
``Flow().prepend(Source.from_iterable(prefix))``). Cancellation before the nested flow
exists follows Akka's default ``NestedMaterializationCancellationPolicy``
(``EagerCancellation``): a downstream cancel cancels upstream at once and the flow is never
built (its awaitable fails with ``NeverMaterializedError``).
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any

from .._errors import NeverMaterializedError
from .._keep import Keep
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    abrupt_error,
)
from .._stage.shapes import FlowShape, Inlet, Outlet, SinkShape, SourceShape
from .asyncsupport import AwaitingLogicMixin, call_cancelled
from .sinks import new_promise
from .sources import SourceLogic, SourceStage, require_callable
from .substreams import SubSinkInlet, SubSourceOutlet, materialize_nested

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "FlatMapPrefix",
    "FutureSource",
    "LazySource",
    "LazySingleSource",
    "LazyFutureSource",
    "LazyFlow",
    "LazySink",
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


class LazyFutureSource(SourceStage):
    """``Source.lazy_future(f)``: awaits ``f()`` (called on the first demand) and emits
    its result (``None`` completes empty)."""

    name = "lazy_future_source"

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
        aw = self.f()
        if asyncio.isfuture(aw):
            aw = asyncio.shield(aw)  # a future shared with others is not ours to cancel
        elif not asyncio.iscoroutine(aw) and not hasattr(aw, "__await__"):
            raise TypeError(
                f"[{self.stage_name}] f() must return an awaitable, got {type(aw).__name__} {aw!r}"
            )
        self._await(aw, self._on_result)

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.fail_stage(call_cancelled(self._stage_name, what="the awaitable f() returned"))
            return
        failure = fut.exception()
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


# -- lazy_flow --------------------------------------------------------------------------------
class LazyFlow(GraphStageWithMaterializedValue[FlowShape, "asyncio.Future[Any]"]):
    """``Flow.lazy_flow(factory)``; see ``Flow.lazy_flow``."""

    name = "lazy_flow"

    def __init__(self, factory: Callable[[], Any]) -> None:
        require_callable("Flow.lazy_flow(factory)", "factory", factory)
        self.shape = FlowShape(Inlet("LazyFlow.in"), Outlet("LazyFlow.out"))
        self.factory = factory

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return _LazyFlowLogic(self.shape, self.factory, promise), promise


class _LazyFlowLogic(GraphStageLogic, InHandler, OutHandler):
    """Before the first element this logic handles its own ports; once the inner flow is
    materialized, ``_Connected`` does (upstream -> sub outlet -> inner flow -> sub inlet
    -> downstream)."""

    def __init__(
        self, shape: FlowShape, factory: Callable[[], Any], promise: asyncio.Future[Any]
    ) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.out: Outlet[Any] = shape.out
        self.factory = factory
        self.promise = promise
        self.set_handlers(self.in_, self.out, self)

    # -- before the first element -----------------------------------------------------------
    def on_pull(self) -> None:
        self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.promise.set_exception(
            never_materialized(self.stage_name, "upstream completed before the first element")
        )
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.promise.set_exception(
            never_materialized(self.stage_name, "upstream failed before the first element", exc)
        )
        self.fail_stage(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.promise.set_exception(
            never_materialized(
                self.stage_name, "downstream cancelled before the first element", cause
            )
        )
        self.cancel_stage(cause)

    def on_push(self) -> None:
        first = self.grab(self.in_)
        try:
            flow = _blueprint(self.stage_name, "Flow", self.factory(), 1, 1)
            connected = _Connected(self, first)
            mat = connected.materialize(flow)
        except Exception as exc:
            self.promise.set_exception(
                never_materialized(self.stage_name, f"factory() or its flow failed: {exc!r}", exc)
            )
            self.fail_stage(exc)
            return
        self.promise.set_result(mat)
        self.set_handlers(self.in_, self.out, connected)
        connected.sub_in.pull()  # the demand that pulled the first element

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


class _Connected(InHandler, OutHandler):
    """The handlers of a lazy flow whose inner flow runs: every port signal is relayed."""

    def __init__(self, logic: _LazyFlowLogic, first: Any) -> None:
        self.logic = logic
        self.first = first  # held until the inner flow asks for it
        self.pending_end: Any = _NOTHING  # upstream's end (None or exc) seen before that
        self.sub_out = SubSourceOutlet(
            logic,
            "LazyFlow.inner.in",
            on_pull=self._on_inner_pull,
            on_downstream_finish=self._on_inner_cancel,
            subscription_timeout=None,
        )
        self.sub_in = SubSinkInlet(
            logic,
            "LazyFlow.inner.out",
            on_push=self._on_inner_push,
            on_upstream_finish=self._on_inner_finish,
            on_upstream_failure=self._on_inner_failure,
        )

    def materialize(self, flow: Any) -> Any:
        from .._dsl.blueprints import Source

        return self.sub_in.materialize(
            Source.from_graph(self.sub_out.source).via_mat(flow, Keep.right)
        )

    # upstream -> inner
    def on_push(self) -> None:
        lg = self.logic
        self.sub_out.push(lg.grab(lg.in_))

    def on_upstream_finish(self) -> None:
        if self.first is not _NOTHING:
            self.pending_end = None
        else:
            self.sub_out.complete()

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.first is not _NOTHING:
            self.pending_end = exc
        else:
            self.sub_out.fail(exc)

    def _on_inner_pull(self) -> None:
        lg = self.logic
        first = self.first
        if first is _NOTHING:
            if not lg.is_closed(lg.in_) and not lg.has_been_pulled(lg.in_):
                lg.pull(lg.in_)
            return
        self.first = _NOTHING
        self.sub_out.push(first)
        end = self.pending_end
        if end is not _NOTHING:
            if end is None:
                self.sub_out.complete()
            else:
                self.sub_out.fail(end)

    def _on_inner_cancel(self, cause: BaseException) -> None:
        lg = self.logic
        if not lg.is_closed(lg.in_):
            lg.cancel(lg.in_, cause)

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


# -- lazy_sink --------------------------------------------------------------------------------
class LazySink(GraphStageWithMaterializedValue[SinkShape[Any], "asyncio.Future[Any]"]):
    """``Sink.lazy_sink(factory)``; see ``Sink.lazy_sink``."""

    name = "lazy_sink"

    def __init__(self, factory: Callable[[], Any]) -> None:
        require_callable("Sink.lazy_sink(factory)", "factory", factory)
        self.shape = SinkShape(Inlet("LazySink.in"))
        self.factory = factory

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return _LazySinkLogic(self.shape, self.factory, promise), promise


class _LazySinkLogic(GraphStageLogic, InHandler):
    def __init__(
        self, shape: SinkShape[Any], factory: Callable[[], Any], promise: asyncio.Future[Any]
    ) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.factory = factory
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
            sink = _blueprint(self.stage_name, "Sink", self.factory(), 1, 0)
        except Exception as exc:
            self.promise.set_exception(exc)
            self.fail_stage(exc)
            return
        from .._dsl.blueprints import Sink, Source

        sub_out = self.sub_out = SubSourceOutlet(
            self,
            "LazySink.inner.in",
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
            self.promise.set_exception(exc)
            self.fail_stage(exc)
            return
        self.promise.set_result(mat)

    def on_upstream_finish(self) -> None:
        if self.sub_out is None:
            self.promise.set_exception(
                never_materialized(self.stage_name, "upstream completed before the first element")
            )
            self.complete_stage()
        elif self.first is not _NOTHING:
            self.pending_end = None
        else:
            self.sub_out.complete()
            self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.sub_out is None:
            self.promise.set_exception(
                never_materialized(self.stage_name, "upstream failed before the first element", exc)
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


# -- flat_map_prefix --------------------------------------------------------------------------
class FlatMapPrefix(GraphStageWithMaterializedValue[FlowShape, "asyncio.Future[Any]"]):
    """``flat_map_prefix(n, f)``: buffer the first ``n`` elements, build a Flow with
    ``f(prefix)``, and process the rest of the stream with it.

    Emits when the nested flow emits. Backpressures when downstream or the nested flow
    backpressures (while the prefix fills: when downstream has not pulled). Completes
    when the nested flow completes (a stream shorter than ``n`` builds the flow from
    what arrived and completes its input at once). Fails when upstream fails before the
    prefix is complete, ``f`` raises or returns no Flow, or the nested flow fails.
    Cancels when downstream cancels (before the flow exists: at once, eager
    cancellation) or the nested flow cancels its input.
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

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return _FlatMapPrefixLogic(self.shape, self, promise), promise


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


# -- future_source ----------------------------------------------------------------------------
class FutureSource(GraphStageWithMaterializedValue[SourceShape[Any], "asyncio.Future[Any]"]):
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

    def __init__(self, aw: Any) -> None:
        if not inspect.isawaitable(aw):
            raise TypeError(
                f"Source.future_source(aw): aw must be an awaitable, got {type(aw).__name__} {aw!r}"
            )
        self.shape = SourceShape(Outlet("FutureSource.out"))
        self.aw = aw

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return _FutureSourceLogic(self.shape, self.aw, promise), promise


class _FutureSourceLogic(AwaitingLogicMixin, SourceLogic):
    def __init__(self, shape: SourceShape[Any], aw: Any, promise: asyncio.Future[Any]) -> None:
        SourceLogic.__init__(self, shape)
        self.aw = aw
        self.promise = promise
        self.inner: SubSinkInlet | None = None

    def pre_start(self) -> None:
        aw = self.aw
        if asyncio.isfuture(aw):
            aw = asyncio.shield(aw)  # not ours to cancel when the stream stops early
        self._await(aw, self._on_result)

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            exc: BaseException = call_cancelled(self._stage_name, what="the awaitable")
        else:
            exc = fut.exception()  # type: ignore[assignment]
        inner: SubSinkInlet | None = None
        if exc is None:
            try:
                source = _blueprint(self.stage_name, "Source", fut.result(), 0, 1, "the awaitable")
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
        if inner is not None and not inner.is_closed() and not inner.has_been_pulled():
            inner.pull()

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
