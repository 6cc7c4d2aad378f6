"""Restart and retry: ``RestartSource`` / ``RestartFlow`` / ``RestartSink`` (backoff
restarts of a whole inner stream) and ``RetryFlow`` (backoff retries of single elements).

The factories build blueprints around the stages of :mod:`reactive._ops.restart` (both
kinds), which sits below the DSL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from .._impl.modules import AtomicModule, CompositeModule
from .._ops.restart import (
    RestartSettings,
    _RestartFlowStage,
    _RestartSinkStage,
    _RestartSourceStage,
    _RetryCoordinator,
)
from .._stage.shapes import FlowShape
from .blueprints import Flow, Sink, Source
from .graph import _module_of

if TYPE_CHECKING:
    from .._keep import NotUsedType
    from .with_context import FlowWithContext

T = TypeVar("T")
U = TypeVar("U")

__all__ = ["RestartSource", "RestartFlow", "RestartSink", "RetryFlow"]


class RestartSource:
    """Sources that restart the Source from a factory with exponential backoff."""

    @staticmethod
    def with_backoff(
        settings: RestartSettings, factory: Callable[[], Source[T, Any]]
    ) -> Source[T, NotUsedType]:
        """Restart the Source from ``factory()`` whenever it completes or fails.

        ``factory`` is called at materialization and at every restart, and is not supervised
        (as Akka): if it raises, the wrapper fails with that exception (a note names the
        stage); if it returns something that is not a Source (a list, a Sink), the wrapper
        fails with a ``TypeError`` naming the stage, what the factory returned and that a
        Source was expected. Neither is restarted. A ``factory`` that is not callable (a
        Source passed itself) or ``settings`` that are not a ``RestartSettings`` raise
        ``TypeError`` here.

        Emits when the inner source emits. Backpressures when downstream does. Completes
        when the inner source completes and ``max_restarts`` is reached. Fails when the
        inner source fails and ``max_restarts`` is reached (or ``restart_on`` rejects the
        failure), or when ``factory()`` raises or returns something that is not a Source.
        Cancels when downstream cancels (and cancels the inner source).
        """

        return Source(AtomicModule(_RestartSourceStage(settings, factory, False)))

    @staticmethod
    def on_failures_with_backoff(
        settings: RestartSettings, factory: Callable[[], Source[T, Any]]
    ) -> Source[T, NotUsedType]:
        """Restart the Source from ``factory()`` only when it fails; complete with it.

        Semantics (and the checks of ``factory`` and ``settings``) as ``with_backoff``,
        except that the inner source's completion completes the wrapper.

        Emits when the inner source emits. Backpressures when downstream does. Completes
        when the inner source completes. Fails when the inner source fails and
        ``max_restarts`` is reached (or ``restart_on`` rejects the failure). Cancels when
        downstream cancels (and cancels the inner source).
        """

        return Source(AtomicModule(_RestartSourceStage(settings, factory, True)))


class RestartFlow:
    """Flows that restart the Flow from a factory with exponential backoff."""

    @staticmethod
    def with_backoff(
        settings: RestartSettings, factory: Callable[[], Flow[T, U, Any]]
    ) -> Flow[T, U, NotUsedType]:
        """Restart the Flow from ``factory()`` when its output completes or fails, or its
        input cancels. Elements in flight are lost.

        ``factory`` is called at materialization and at every restart, and is not supervised
        (as Akka): if it raises, the wrapper fails with that exception (a note names the
        stage); if it returns something that is not a Flow (a list, a Source or a Sink), the
        wrapper fails with a ``TypeError`` naming the stage, what the factory returned and
        that a Flow was expected. Neither is restarted. A ``factory`` that is not callable
        (a Flow passed itself) or ``settings`` that are not a ``RestartSettings`` raise
        ``TypeError`` here.

        Emits when the inner flow emits. Backpressures when downstream or the inner flow
        does. Completes when upstream completed and the inner flow's output completed, or
        ``max_restarts`` is reached. Fails when the inner flow fails and no restart is
        left (or ``restart_on`` rejects it), or when ``factory()`` raises or returns
        something that is not a Flow. Cancels when downstream cancels.
        """

        return Flow(AtomicModule(_RestartFlowStage(settings, factory, False)))

    @staticmethod
    def on_failures_with_backoff(
        settings: RestartSettings, factory: Callable[[], Flow[T, U, Any]]
    ) -> Flow[T, U, NotUsedType]:
        """Restart the Flow from ``factory()`` only when its output fails; its
        completion completes the wrapper. Semantics otherwise (and the checks of
        ``factory`` and ``settings``) as ``with_backoff``.

        Emits when the inner flow emits. Backpressures when downstream or the inner flow
        does. Completes when the inner flow's output completes. Fails when the inner flow
        fails and no restart is left (or ``restart_on`` rejects it). Cancels when downstream
        cancels (once the inner flow cancels its input, as Akka), or when the inner flow
        cancels its input without a failure.
        """

        return Flow(AtomicModule(_RestartFlowStage(settings, factory, True)))


class RestartSink:
    """Sinks that restart the Sink from a factory with exponential backoff."""

    @staticmethod
    def with_backoff(
        settings: RestartSettings, factory: Callable[[], Sink[T, Any]]
    ) -> Sink[T, NotUsedType]:
        """Restart the Sink from ``factory()`` whenever it cancels.

        ``factory`` is called at materialization and at every restart, and is not supervised
        (as Akka): if it raises, the wrapper cancels upstream with that exception (a note
        names the stage); if it returns something that is not a Sink (a list, a Flow), the
        wrapper cancels upstream with a ``TypeError`` naming the stage, what the factory
        returned and that a Sink was expected. Neither is restarted. A ``factory`` that is
        not callable (a Sink passed itself) or ``settings`` that are not a
        ``RestartSettings`` raise ``TypeError`` here.

        Backpressures when the inner sink does (and during backoff). Completes (the inner
        sink) when upstream completes. Fails the inner sink when upstream fails. Cancels
        when the inner sink cancels and ``max_restarts`` is reached (or ``restart_on`` rejects
        the cause), or when ``factory()`` raises or returns something that is not a Sink.
        """

        return Sink(AtomicModule(_RestartSinkStage(settings, factory)))


class RetryFlow:
    """Flows that retry single elements with backoff (Akka's ``RetryFlow``)."""

    @staticmethod
    def with_backoff(
        min_backoff: float,
        max_backoff: float,
        random_factor: float,
        max_retries: int,
        flow: Any,
        decide_retry: Callable[[Any, Any], Any],
    ) -> Any:
        """Wrap ``flow`` (strictly one-in one-out) so that elements are retried one by one.

        Each element goes through ``flow``; ``decide_retry(in, out)`` returns a new input
        to send through ``flow`` again after a backoff, or ``None`` to emit ``out``. After
        ``max_retries`` retries the last ``out`` is emitted without asking. Retry ``k``
        (from 0) waits ``min(max_backoff, min_backoff * 2**k) * (1 + random() *
        random_factor)`` seconds on the materializer's clock. Only one element is inside
        ``flow`` at a time. The materialized value is ``flow``'s.

        Emits when ``flow`` emitted for an element and no retry is wanted (or retries are
        exhausted). Backpressures when downstream does, while an element is inside
        ``flow`` or backing off. Completes when upstream completed and no element is in
        progress, or when ``flow`` completes. Fails when upstream, ``flow`` or
        ``decide_retry`` fails, or ``flow`` emits without an element in progress
        (``RetryFlowError``). Cancels when downstream cancels. Supervision: does not
        apply to ``decide_retry`` (it fails the stream); ``flow``'s own operators apply
        theirs (a resumed element inside ``flow`` leaves the wrapper waiting for it).
        """

        if min_backoff < 0 or max_backoff < min_backoff:
            raise ValueError(
                f"need 0 <= min_backoff <= max_backoff, got {min_backoff}, {max_backoff}"
            )
        if random_factor < 0:
            raise ValueError(f"random_factor must be >= 0, got {random_factor}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        inner = _module_of(flow)
        if len(inner.shape.inlets) != 1 or len(inner.shape.outlets) != 1:
            raise ValueError(f"RetryFlow needs a Flow, got {inner.shape!r}")
        coord = _RetryCoordinator(
            min_backoff, max_backoff, random_factor, max_retries, decide_retry
        )
        sh = coord.shape
        wires = [
            ((0, sh.out1), (1, inner.shape.inlets[0])),
            ((1, inner.shape.outlets[0]), (0, sh.in2)),
        ]
        new_in, new_out = sh.in1.carbon_copy(), sh.out2.carbon_copy()
        exposed: dict[Any, tuple[int, Any]] = {new_in: (0, sh.in1), new_out: (0, sh.out2)}

        def mat_fn(mats: list[Any]) -> Any:
            return mats[1]

        module = CompositeModule(
            FlowShape(new_in, new_out), [AtomicModule(coord), inner], wires, exposed, mat_fn
        )
        return Flow(module)

    @staticmethod
    def with_backoff_and_context(
        min_backoff: float,
        max_backoff: float,
        random_factor: float,
        max_retries: int,
        flow: FlowWithContext[Any, Any, Any, Any, Any],
        decide_retry: Callable[[tuple[Any, Any], tuple[Any, Any]], tuple[Any, Any] | None],
    ) -> FlowWithContext[Any, Any, Any, Any, Any]:
        """``with_backoff`` for a ``FlowWithContext`` (Akka's
        ``RetryFlow.withBackoffAndContext``): ``decide_retry((in, ctx_in), (out, ctx_out))``
        returns the ``(in, ctx_in)`` pair to send through ``flow`` again after a backoff,
        or ``None`` to emit ``(out, ctx_out)``. The context goes through ``flow`` with its
        element, and ``decide_retry`` may use it (an attempt counter, a deadline).

        Emits when ``flow`` emitted for an element and no retry is wanted (or retries are
        exhausted). Backpressures when downstream does, while an element is inside
        ``flow`` or backing off. Completes when upstream completed and no element is in
        progress, or when ``flow`` completes. Fails when upstream, ``flow`` or
        ``decide_retry`` fails, or ``flow`` emits without an element in progress
        (``RetryFlowError``). Cancels when downstream cancels.

        ``flow`` must be a ``FlowWithContext`` (``TypeError`` otherwise); the other
        arguments are checked as ``with_backoff``'s.
        """
        from .with_context import FlowWithContext

        if not isinstance(flow, FlowWithContext):
            raise TypeError(
                "RetryFlow.with_backoff_and_context: flow must be a FlowWithContext, got "
                f"{type(flow).__name__} {flow!r}"
            )
        return FlowWithContext.from_tuples(
            RetryFlow.with_backoff(
                min_backoff, max_backoff, random_factor, max_retries, flow.as_flow(), decide_retry
            )
        )
