"""Restart with backoff: ``RestartSource``, ``RestartFlow``, ``RestartSink`` and their
``RestartSettings`` (Akka's ``RestartSource.withBackoff`` family, catalog 7.4).

Each wrapper is one timer logic that runs the graph from ``factory()`` as a nested
stream through the dynamic ports of ``substreams.py``. When the nested stream ends
(``with_backoff``: completion, failure or, for flows and sinks, cancellation;
``on_failures_with_backoff``: failure only) the wrapper waits

    ``min(max_backoff, min_backoff * 2**k) * (1 + random() * random_factor)``

for restart number ``k`` (from 0), then calls ``factory()`` again. The counter ``k``
goes back to 0 when the last start was more than ``max_restarts_within`` ago (default:
``min_backoff``). When ``max_restarts`` is reached the wrapper completes if the inner
stream completed and fails with the inner error if it failed. A failure that
``restart_on`` rejects (beyond Akka's ``withRestartOn``) is propagated at once.
The factory itself is not supervised (as Akka, whose ``startGraph`` calls it bare): a
``factory()`` that raises fails the wrapper with that exception (noted with the stage's
name), and one that returns something other than the wrapper's kind of graph (a list; a
Sink where a Source is needed) fails it with a ``TypeError`` naming the stage, what the
factory returned and what was expected; neither is restarted (a factory that must retry
its own setup does so lazily inside the graph it returns, e.g. with ``Source.lazy_source``).
A factory that is not callable, or settings that are not a ``RestartSettings``, are
rejected when the blueprint is built (``TypeError`` naming the DSL method).
Termination from outside (downstream cancel, upstream completion or failure) stops the
wrapper for good. Restarts are lossy: elements in flight in the dying stream are lost.
Every backoff timer runs on the materializer's clock. The materialized value is
``NotUsed``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .._errors import IllegalGraphError, RetryFlowError, SubscriptionWithCancelError
from .._impl.unobserved import observed
from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    TimerGraphStageLogic,
    add_note_once,
)
from .._stage.shapes import BidiShape, FlowShape, Inlet, Outlet, SinkShape, SourceShape
from .substreams import SubSinkInlet, SubSourceOutlet, materialize_nested

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._impl.modules import Module

__all__ = ["RestartSettings"]

log = logging.getLogger("reactive")

_RESTART = "restart"


def _require_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"RestartSettings: {name} must be a number, got {type(value).__name__} {value!r}"
        )


@dataclass(frozen=True)
class RestartSettings:
    """How a restart wrapper backs off and when it gives up.

    ``min_backoff``/``max_backoff`` in seconds; ``random_factor`` adds up to that
    fraction of jitter; ``max_restarts`` (None: unlimited) within ``max_restarts_within``
    seconds (None: ``min_backoff``); ``restart_on(exc)`` says which failures restart
    (None: all).
    """

    min_backoff: float
    max_backoff: float
    random_factor: float
    max_restarts: int | None = None
    max_restarts_within: float | None = None
    restart_on: Callable[[BaseException], bool] | None = None

    def __post_init__(self) -> None:
        for name in ("min_backoff", "max_backoff", "random_factor"):
            _require_number(name, getattr(self, name))
        if self.min_backoff < 0 or self.max_backoff < 0:
            raise ValueError(
                "RestartSettings: min_backoff and max_backoff must be >= 0, "
                f"got {self.min_backoff!r}, {self.max_backoff!r}"
            )
        if self.max_backoff < self.min_backoff:
            raise ValueError(
                f"RestartSettings: max_backoff ({self.max_backoff}) must be >= min_backoff "
                f"({self.min_backoff})"
            )
        if self.random_factor < 0:
            raise ValueError(
                f"RestartSettings: random_factor must be >= 0, got {self.random_factor}"
            )
        if self.max_restarts is not None:
            if isinstance(self.max_restarts, bool) or not isinstance(self.max_restarts, int):
                raise TypeError(
                    "RestartSettings: max_restarts must be an int or None, got "
                    f"{type(self.max_restarts).__name__} {self.max_restarts!r}"
                )
            if self.max_restarts < 0:
                raise ValueError(
                    f"RestartSettings: max_restarts must be >= 0 or None, got {self.max_restarts}"
                )
        if self.max_restarts_within is None:
            object.__setattr__(self, "max_restarts_within", self.min_backoff)
        else:
            _require_number("max_restarts_within", self.max_restarts_within)
            if not self.max_restarts_within >= 0:  # (NaN too)
                raise ValueError(
                    "RestartSettings: max_restarts_within must be >= 0 seconds, got "
                    f"{self.max_restarts_within!r}"
                )
        if self.restart_on is not None and not callable(self.restart_on):
            raise TypeError(
                "RestartSettings: restart_on must be callable or None, got "
                f"{type(self.restart_on).__name__} {self.restart_on!r}"
            )

    def with_min_backoff(self, min_backoff: float) -> RestartSettings:
        """A copy with ``min_backoff`` (Akka's ``withMinBackoff``); checked as in the
        constructor. ``max_restarts_within`` keeps its value (the constructor's default,
        ``min_backoff``, was resolved when these settings were made)."""
        return replace(self, min_backoff=min_backoff)

    def with_max_backoff(self, max_backoff: float) -> RestartSettings:
        """A copy with ``max_backoff`` (Akka's ``withMaxBackoff``)."""
        return replace(self, max_backoff=max_backoff)

    def with_random_factor(self, random_factor: float) -> RestartSettings:
        """A copy with ``random_factor`` (Akka's ``withRandomFactor``)."""
        return replace(self, random_factor=random_factor)

    def with_max_restarts(self, count: int, within: float) -> RestartSettings:
        """At most ``count`` restarts while each start is within ``within`` seconds of
        the previous one."""
        return replace(self, max_restarts=count, max_restarts_within=within)

    def with_restart_on(self, predicate: Callable[[BaseException], bool]) -> RestartSettings:
        """Restart only on failures for which ``predicate`` holds; others propagate."""
        return replace(self, restart_on=predicate)

    def backoff(self, restart_count: int) -> float:
        """The delay before restart number ``restart_count`` (from 0)."""
        base = min(self.max_backoff, self.min_backoff * (2.0 ** min(restart_count, 1000)))
        if self.random_factor:
            base *= 1.0 + random.random() * self.random_factor
        return base

    def should_restart_on(self, exc: BaseException) -> bool:
        """Whether a failure with ``exc`` may restart."""
        return self.restart_on is None or bool(self.restart_on(exc))


def check_restart_args(operator: str, settings: Any, factory: Any) -> None:
    """Reject, naming ``operator`` (e.g. ``RestartSource.with_backoff``), ``settings``
    that are not a :class:`RestartSettings` and a ``factory`` that is not callable
    (``TypeError``); a graph given instead of a factory is told to be wrapped in one."""
    if not isinstance(settings, RestartSettings):
        raise TypeError(
            f"{operator}: settings must be a RestartSettings, "
            f"got {type(settings).__name__} {settings!r}"
        )
    if not callable(factory):
        hint = (
            " (a graph given itself: pass a function that builds it, e.g. lambda: graph, "
            "called again at every restart)"
            if hasattr(factory, "shape")
            else ""
        )
        raise TypeError(
            f"{operator}: factory must be callable, got {type(factory).__name__} "
            f"{_short(factory)}{hint}"
        )


def _short(x: Any, limit: int = 200) -> str:
    text = repr(x)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_KINDS = {
    (0, 1): "a Source (one outlet, no inlet)",
    (1, 1): "a Flow (one inlet, one outlet)",
    (1, 0): "a Sink (one inlet, no outlet)",
}


def inner_module(stage: str, made: Any, inlets: int, outlets: int) -> Module:
    """The module of what a restart wrapper's ``factory()`` returned, checked to be the
    wrapper's kind of graph (``inlets``/``outlets``); else a ``TypeError`` naming the
    stage, what the factory returned and what was expected."""
    from .._dsl.graph import _module_of

    module: Module | None = None
    if hasattr(made, "module") or isinstance(made, GraphStageWithMaterializedValue):
        try:
            module = _module_of(made)
        except IllegalGraphError:
            module = None
    shape = module.shape if module is not None else None
    if shape is None or (len(shape.inlets), len(shape.outlets)) != (inlets, outlets):
        got = f"{type(made).__name__} {_short(made)}"
        if shape is not None:
            got += f" with {len(shape.inlets)} inlet(s) and {len(shape.outlets)} outlet(s)"
        raise TypeError(f"[{stage}] factory() returned {got}; expected {_KINDS[(inlets, outlets)]}")
    assert module is not None
    return module


class _RestartLogic(TimerGraphStageLogic):
    """The restart bookkeeping shared by the three wrappers (Akka's RestartWithBackoffLogic)."""

    def __init__(
        self,
        shape: Any,
        settings: RestartSettings,
        factory: Callable[[], Any],
        only_on_failures: bool,
    ) -> None:
        super().__init__(shape)
        self.settings = settings
        self.factory = factory
        self.only_on_failures = only_on_failures
        self.restart_count = 0
        self.reset_deadline = 0.0
        self.finishing = False

    def _now(self) -> float:
        return self.materializer.clock.time()

    #: The wrapper's kind of graph, as ``(inlets, outlets)`` of the factory's result.
    inner_ports: tuple[int, int] = (0, 1)

    def pre_start(self) -> None:
        self.reset_deadline = self._now() + float(self.settings.max_restarts_within or 0.0)
        self._start()

    def _start(self) -> None:
        # As Akka's startGraph: the factory is not supervised. Its exception, or a
        # result that is not the wrapper's kind of graph, fails the stage (no restart:
        # it would not count as one, and a broken factory would retry for ever).
        try:
            made = self.factory()
        except Exception as exc:
            add_note_once(
                exc,
                f"raised by the factory of [{self.stage_name}]: a factory that raises "
                "fails the restart wrapper, it is not restarted",
            )
            self.fail_stage(exc)
            return
        try:
            module = inner_module(self.stage_name, made, *self.inner_ports)
        except TypeError as exc:
            self.fail_stage(exc)
            return
        self.start_graph(module)

    def start_graph(self, module: Module) -> None:
        """Materialize ``module`` (the checked graph from the factory) as the current
        inner stream."""
        raise NotImplementedError  # pragma: no cover - every wrapper overrides

    def cancel_rejected(self, cause: BaseException) -> bool:
        """True when the inner graph cancelled its input with a failure that
        ``restart_on`` rejects (a normal cancellation is never rejected)."""
        return not isinstance(
            cause, SubscriptionWithCancelError
        ) and not self.settings.should_restart_on(cause)

    def max_restarts_reached(self) -> bool:
        """True when no restart is left (the counter first resets if the last start was
        longer than ``max_restarts_within`` ago)."""
        if self._now() > self.reset_deadline:
            self.restart_count = 0
        limit = self.settings.max_restarts
        return limit is not None and self.restart_count >= limit

    def schedule_restart(self, cause: BaseException | None) -> None:
        """Tear down what is left of the inner stream and restart after the backoff.

        ``cause``: the inner stream's failure (a failure, or a cancellation with a
        failure as its cause), None when it completed or cancelled normally. Logged at
        WARNING for a failure and at INFO otherwise, as Akka's ``RestartWithBackoffLogic``
        (``logIt``: a restart after a completion is capped at INFO; the periodic restart
        of a source that completes is its normal life, not a warning).
        """
        delay = self.settings.backoff(self.restart_count)
        failed = cause is not None and not isinstance(cause, SubscriptionWithCancelError)
        log.log(
            logging.WARNING if failed else logging.INFO,
            "[%s] restarting the inner stream in %.3f s (restart #%d)%s",
            self.stage_name,
            delay,
            self.restart_count + 1,
            f" after {cause!r}" if failed else "",
        )
        self.schedule_once(_RESTART, delay)
        self.restart_count += 1
        meter = self._stage_meter()
        if meter is not None:  # metrics on (reactive.observe): a backoff restart counts
            meter.restarts += 1
        self.backoff()

    def backoff(self) -> None:
        """Hook: close the rest of the current inner stream."""

    def on_timer(self, key: Any) -> None:
        # The deadline first: an inner stream that ends during its own start is judged
        # against this start, not the previous one.
        self.reset_deadline = self._now() + float(self.settings.max_restarts_within or 0.0)
        self._start()

    def _is_backing_off(self) -> bool:
        return self.is_timer_active(_RESTART)


# -- RestartSource ----------
class _InnerOutputLogic(_RestartLogic):
    """What Restart{Source,Flow} do with the inner stream's output: pass its elements on,
    and restart (or finish) when it completes or fails."""

    out: Any

    def inner_push(self, inlet: SubSinkInlet) -> None:
        self.push(self.out, inlet.grab())

    def inner_finish(self, inlet: SubSinkInlet) -> None:
        # Only the output ends (as Akka's complete(out)): a flow's input side runs on
        # until the inner flow cancels it.
        if self.finishing or self.only_on_failures or self.max_restarts_reached():
            self.complete(self.out)
        else:
            self.schedule_restart(None)

    def inner_failure(self, inlet: SubSinkInlet, exc: BaseException) -> None:
        if (
            self.finishing
            or self.max_restarts_reached()
            or not self.settings.should_restart_on(exc)
        ):
            self.fail(self.out, exc)
        else:
            observed(exc)  # handled by the restart: not an unobserved failure
            self.schedule_restart(exc)


class _RestartSourceStage(GraphStage[SourceShape[Any]]):
    def __init__(
        self, settings: RestartSettings, factory: Callable[[], Any], only_on_failures: bool
    ):
        check_restart_args(
            "RestartSource.on_failures_with_backoff"
            if only_on_failures
            else "RestartSource.with_backoff",
            settings,
            factory,
        )
        self.settings = settings
        self.factory = factory
        self.only_on_failures = only_on_failures
        self.name = "restart_source_on_failures" if only_on_failures else "restart_source"
        self.shape = SourceShape(Outlet("RestartSource.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RestartSourceLogic(self.shape, self.settings, self.factory, self.only_on_failures)


class _RestartSourceLogic(_InnerOutputLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], *args: Any) -> None:
        super().__init__(shape, *args)
        self.out = shape.out
        self.inner: SubSinkInlet | None = None
        self.set_handler(self.out, self)

    def start_graph(self, module: Module) -> None:
        inlet = SubSinkInlet(self, f"{self.stage_name}.inner")
        inlet.set_handler(_InnerOut(self, inlet))
        self.inner = inlet
        inlet.materialize(module)
        if self.is_available(self.out):
            inlet.pull()

    def on_pull(self) -> None:
        inner = self.inner
        if inner is not None and not inner.is_closed() and not inner.has_been_pulled():
            inner.pull()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.finishing = True
        if self.inner is not None:
            self.inner.cancel(cause)
        self.cancel_stage(cause)

    def backoff(self) -> None:
        self.inner = None


class _InnerOut(InHandler):
    """Handler of the inner stream's output (a SubSinkInlet) of a restart wrapper."""

    def __init__(self, logic: Any, inlet: SubSinkInlet) -> None:
        self.logic = logic
        self.inlet = inlet

    def on_push(self) -> None:
        self.logic.inner_push(self.inlet)

    def on_upstream_finish(self) -> None:
        self.logic.inner_finish(self.inlet)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.logic.inner_failure(self.inlet, exc)


class _InnerIn(OutHandler):
    """Handler of the inner stream's input (a SubSourceOutlet) of a restart wrapper."""

    def __init__(self, logic: Any, outlet: SubSourceOutlet) -> None:
        self.logic = logic
        self.outlet = outlet

    def on_pull(self) -> None:
        self.logic.inner_pull(self.outlet)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.logic.inner_cancel(self.outlet, cause)


class _FeedingMixin(GraphStageLogic):
    """Feeds the wrapper's inlet into the current inner input; holds one element that
    arrives while the inner stream is being replaced."""

    in_: Inlet[Any]
    sub_in: SubSourceOutlet | None
    held: Any

    def on_push(self) -> None:
        x = self.grab(self.in_)
        sub = self.sub_in
        if sub is not None and sub.is_available():
            sub.push(x)
        else:
            self.held = x

    def inner_pull(self, outlet: SubSourceOutlet) -> None:
        if outlet is not self.sub_in:
            return
        if self.held is not None:
            x, self.held = self.held, None
            outlet.push(x)
        elif self.is_closed(self.in_):
            outlet.complete()
        elif not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def _new_sub_in(self) -> SubSourceOutlet:
        outlet = SubSourceOutlet(self, f"{self.stage_name}.inner_in")
        outlet.set_handler(_InnerIn(self, outlet))
        self.sub_in = outlet
        return outlet


# -- RestartFlow ----------
class _RestartFlowStage(GraphStage[FlowShape]):
    def __init__(
        self, settings: RestartSettings, factory: Callable[[], Any], only_on_failures: bool
    ):
        check_restart_args(
            "RestartFlow.on_failures_with_backoff"
            if only_on_failures
            else "RestartFlow.with_backoff",
            settings,
            factory,
        )
        self.settings = settings
        self.factory = factory
        self.only_on_failures = only_on_failures
        self.name = "restart_flow_on_failures" if only_on_failures else "restart_flow"
        self.shape = FlowShape(Inlet("RestartFlow.in"), Outlet("RestartFlow.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RestartFlowLogic(self.shape, self.settings, self.factory, self.only_on_failures)


class _RestartFlowLogic(_FeedingMixin, _InnerOutputLogic, InHandler, OutHandler):
    inner_ports = (1, 1)

    def __init__(self, shape: FlowShape, *args: Any) -> None:
        super().__init__(shape, *args)
        self.in_ = shape.in_
        self.out = shape.out
        self.sub_in: SubSourceOutlet | None = None
        self.sub_out: SubSinkInlet | None = None
        self.held: Any = None
        # The failure the inner flow cancelled its input with, left to the output side
        # (only_on_failures: it restarts, or gives up and then cancels upstream with it).
        self.inner_cancelled: BaseException | None = None
        self.set_handlers(self.in_, self.out, self)

    def start_graph(self, module: Module) -> None:
        from .._dsl.blueprints import Flow

        self.inner_cancelled = None
        outlet = self._new_sub_in()
        inlet = SubSinkInlet(self, f"{self.stage_name}.inner_out")
        inlet.set_handler(_InnerOut(self, inlet))
        self.sub_out = inlet
        inlet.materialize(outlet.source.via(Flow(module)))
        if self.is_available(self.out):
            inlet.pull()
        if self.finishing:
            outlet.complete()

    # -- outer ports -----------------------------------------------------------------------
    def on_pull(self) -> None:
        inner = self.sub_out
        if inner is not None and not inner.is_closed() and not inner.has_been_pulled():
            inner.pull()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.finishing = True
        if self.sub_out is None:  # backing off: nothing runs, stop for good
            self.cancel_stage(cause)
            return
        # As Akka: only the inner output is cancelled; the inner flow's input keeps
        # running until the inner flow cancels it (inner_cancel then cancels upstream).
        self.sub_out.cancel(cause)

    def on_upstream_finish(self) -> None:
        self.finishing = True
        if self.held is None and self.sub_in is not None:
            self.sub_in.complete()
        if self._is_backing_off():
            self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.finishing = True
        if self.sub_in is not None:
            self.sub_in.fail(exc)
        if self._is_backing_off() or self.sub_out is None:
            self.fail_stage(exc)

    # -- inner ports ------------------------------------------------------------------------
    def inner_cancel(self, outlet: SubSourceOutlet, cause: BaseException) -> None:
        if outlet is not self.sub_in:
            return
        if self.finishing:
            self.cancel(self.in_, cause)
        elif self.only_on_failures:
            # A failing inner flow cancels its input with the failure: the output side
            # reports it and restarts (Akka delays the cancel for this), or gives up and
            # then cancels upstream (``_gave_up``). A plain cancellation, or one after the
            # output side gave up already, ends the input for good.
            if isinstance(cause, SubscriptionWithCancelError) or self.is_closed(self.out):
                self.cancel(self.in_, cause)
            else:
                self.inner_cancelled = cause
        elif self.max_restarts_reached() or self.cancel_rejected(cause):
            self.cancel(self.in_, cause)
        else:
            self.schedule_restart(cause)

    def inner_finish(self, inlet: SubSinkInlet) -> None:
        super().inner_finish(inlet)
        self._gave_up()

    def inner_failure(self, inlet: SubSinkInlet, exc: BaseException) -> None:
        super().inner_failure(inlet, exc)
        self._gave_up()

    def _gave_up(self) -> None:
        # The output side ended for good after the inner flow had cancelled its input
        # with a failure (left to it, see ``inner_cancel``): nothing will restart, so
        # upstream is cancelled too (else it, and this stage, would wait forever).
        cause = self.inner_cancelled
        if cause is not None and self.is_closed(self.out) and not self.is_closed(self.in_):
            self.cancel(self.in_, cause)

    def backoff(self) -> None:
        # Close both ends of the dying inner stream so no callback of it arrives later.
        if self.sub_in is not None:
            self.sub_in.complete()
        if self.sub_out is not None:
            self.sub_out.cancel()
        self.sub_in = None
        self.sub_out = None


# -- RestartSink ----------
class _RestartSinkStage(GraphStage[SinkShape[Any]]):
    def __init__(self, settings: RestartSettings, factory: Callable[[], Any]):
        check_restart_args("RestartSink.with_backoff", settings, factory)
        self.settings = settings
        self.factory = factory
        self.name = "restart_sink"
        self.shape = SinkShape(Inlet("RestartSink.in"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RestartSinkLogic(self.shape, self.settings, self.factory, False)


class _RestartSinkLogic(_FeedingMixin, _RestartLogic, InHandler):
    inner_ports = (1, 0)

    def __init__(self, shape: SinkShape[Any], *args: Any) -> None:
        super().__init__(shape, *args)
        self.in_ = shape.in_
        self.sub_in: SubSourceOutlet | None = None
        self.held: Any = None
        self.set_handler(self.in_, self)

    def start_graph(self, module: Module) -> None:
        from .._dsl.blueprints import Sink

        outlet = self._new_sub_in()
        materialize_nested(self, outlet.source.to(Sink(module)).module, fused=False)

    def on_upstream_finish(self) -> None:
        self.finishing = True
        if self.sub_in is not None and self.held is None:
            self.sub_in.complete()
            self.complete_stage()
        elif self.sub_in is None:
            self.complete_stage()
        else:
            self.set_keep_going(True)  # deliver the held element first

    def inner_pull(self, outlet: SubSourceOutlet) -> None:
        super().inner_pull(outlet)
        if self.finishing and self.held is None and outlet is self.sub_in:
            outlet.complete()
            self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.finishing = True
        if self.sub_in is not None:
            self.sub_in.fail(exc)
        self.fail_stage(exc)

    def inner_cancel(self, outlet: SubSourceOutlet, cause: BaseException) -> None:
        if outlet is not self.sub_in:
            return
        if self.finishing:
            self.complete_stage()
        elif self.max_restarts_reached() or self.cancel_rejected(cause):
            self.cancel_stage(cause)
        else:
            if cause is not None:
                observed(cause)  # handled by the restart: not an unobserved failure
            self.schedule_restart(cause)

    def backoff(self) -> None:
        self.sub_in = None


# -- public factories ----------


# -- RetryFlow (retries of single elements with backoff; the factory is in _dsl/restart.py) --
_RETRY_TIMER = "retry"
_MISSING: Any = object()


class _RetryCoordinator(GraphStage[BidiShape]):
    """The stage around the wrapped flow: ``external_in -> internal_out -> flow ->
    internal_in -> (retry? back to internal_out after a backoff : external_out)``."""

    name = "retry_flow"

    def __init__(
        self,
        min_backoff: float,
        max_backoff: float,
        random_factor: float,
        max_retries: int,
        decide_retry: Callable[[Any, Any], Any],
    ) -> None:
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.random_factor = random_factor
        self.max_retries = max_retries
        self.decide_retry = decide_retry
        self.shape = BidiShape(
            Inlet("RetryFlow.externalIn"),
            Outlet("RetryFlow.internalOut"),
            Inlet("RetryFlow.internalIn"),
            Outlet("RetryFlow.externalOut"),
        )

    def backoff(self, retry_no: int) -> float:
        """The delay before retry number ``retry_no`` (from 0), as Akka's backoff."""
        base = min(self.max_backoff, self.min_backoff * (2.0 ** min(retry_no, 1000)))
        if self.random_factor:
            base *= 1.0 + random.random() * self.random_factor
        return base

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RetryLogic(self.shape, self)


class _RetryExternalIn(InHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        lg = self.logic
        x = lg.grab(lg.ext_in)
        lg.in_progress = x
        lg.retry_no = 0
        lg.push(lg.int_out, x)

    def on_upstream_finish(self) -> None:
        if self.logic.in_progress is _MISSING:
            self.logic.complete_stage()


class _RetryInternalOut(OutHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        lg = self.logic
        if lg.retry_ready:
            lg.retry_ready = False
            lg.push(lg.int_out, lg.in_progress)
        elif (
            lg.in_progress is _MISSING
            and not lg.has_been_pulled(lg.ext_in)
            and not lg.is_closed(lg.ext_in)
        ):
            lg.pull(lg.ext_in)

    def on_downstream_finish(self, cause: BaseException) -> None:
        lg = self.logic
        normal = cause is None or isinstance(cause, SubscriptionWithCancelError)
        if lg.in_progress is _MISSING or not normal:
            lg.cancel_stage(cause)
        else:
            lg.set_keep_going(True)  # the element in progress is still emitted


class _RetryInternalIn(InHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        lg = self.logic
        result = lg.grab(lg.int_in)
        if lg.in_progress is _MISSING:
            lg.fail_stage(
                RetryFlowError(
                    f"[{lg.stage_name}] the wrapped flow emitted {result!r} with no element "
                    "in progress; it must be one-in one-out"
                )
            )
            return
        if lg.retry_no >= lg.stage.max_retries:
            lg.push_external(result)
            return
        new_in = lg.stage.decide_retry(lg.in_progress, result)
        if new_in is None:
            lg.push_external(result)
        else:
            lg.plan_retry(new_in)


class _RetryExternalOut(OutHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        lg = self.logic
        if not lg.has_been_pulled(lg.int_in) and not lg.is_closed(lg.int_in):
            lg.pull(lg.int_in)


class _RetryLogic(TimerGraphStageLogic):
    def __init__(self, shape: BidiShape, stage: _RetryCoordinator) -> None:
        super().__init__(shape)
        self.stage = stage
        self._stage_name = stage.name
        self.ext_in, self.int_out, self.int_in, self.ext_out = (
            shape.in1,
            shape.out1,
            shape.in2,
            shape.out2,
        )
        self.in_progress: Any = _MISSING
        self.retry_no = 0
        self.retry_ready = False  # the backoff elapsed while the flow had no demand
        self.set_handler(self.ext_in, _RetryExternalIn(self))
        self.set_handler(self.int_out, _RetryInternalOut(self))
        self.set_handler(self.int_in, _RetryInternalIn(self))
        self.set_handler(self.ext_out, _RetryExternalOut(self))

    def push_external(self, result: Any) -> None:
        self.in_progress = _MISSING
        self.push(self.ext_out, result)
        if self.is_closed(self.ext_in) or self.is_closed(self.int_out):
            self.complete_stage()
        elif self.is_available(self.int_out) and not self.has_been_pulled(self.ext_in):
            self.pull(self.ext_in)

    def plan_retry(self, new_in: Any) -> None:
        delay = self.stage.backoff(self.retry_no)
        self.in_progress = new_in
        self.retry_no += 1
        self.pull(self.int_in)
        self.schedule_once(_RETRY_TIMER, delay)

    def on_timer(self, key: Any) -> None:
        if self.is_closed(self.int_out):
            self.complete_stage()  # the flow cancelled while backing off: nothing to retry
        elif self.is_available(self.int_out):
            self.push(self.int_out, self.in_progress)
        else:
            self.retry_ready = True
