"""Watching operators: ``watch_termination`` and ``monitor``."""

from __future__ import annotations

import enum
from typing import Any

from .._errors import SubscriptionWithCancelError
from .._keep import Done
from .._stage.logic import GraphStageLogic, GraphStageWithMaterializedValue, abrupt_error
from .._stage.shapes import FlowShape, Inlet, Outlet
from .simple import FlowLogic
from .sinks import new_promise

__all__ = ["WatchTermination", "Monitor", "FlowMonitor", "FlowMonitorState"]


class WatchTermination(GraphStageWithMaterializedValue[FlowShape, Any]):
    """Pass-through whose materialized awaitable completes with ``Done`` when the stream
    completes or is cancelled here, and fails with the failure otherwise."""

    name = "watch_termination"

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("WatchTermination.in"), Outlet("WatchTermination.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        import asyncio

        p = new_promise(asyncio.get_running_loop())
        return _WatchLogic(self.shape, p), p


class _WatchLogic(FlowLogic):
    def __init__(self, shape: FlowShape, promise: Any) -> None:
        super().__init__(shape)
        self.promise = promise

    def _done(self, exc: BaseException | None) -> None:
        if not self.promise.done():
            if exc is None:
                self.promise.set_result(Done)
            else:
                self.promise.set_exception(exc)

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))

    def on_upstream_finish(self) -> None:
        self._done(None)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._done(exc)
        self.fail_stage(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self._done(None if isinstance(cause, SubscriptionWithCancelError) else cause)
        self.cancel_stage(cause)

    def _extra_fail(self, exc: BaseException) -> None:
        self._done(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self._done(exc)

    def post_stop(self) -> None:
        self._done(abrupt_error(self._stage_name))


class FlowMonitorState(enum.Enum):
    """The last event a monitored stream saw."""

    initialized = "initialized"
    received = "received"
    finished = "finished"
    failed = "failed"


class FlowMonitor:
    """Materialized value of ``monitor()``: ``state`` and the last ``element``/``error``."""

    def __init__(self) -> None:
        self.state = FlowMonitorState.initialized
        self.element: Any = None
        self.error: BaseException | None = None

    def __repr__(self) -> str:
        return f"FlowMonitor({self.state.value})"


class Monitor(GraphStageWithMaterializedValue[FlowShape, FlowMonitor]):
    """Pass-through that records the stream's last event in a ``FlowMonitor``."""

    name = "monitor"

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("Monitor.in"), Outlet("Monitor.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, FlowMonitor]:
        m = FlowMonitor()
        return _MonitorLogic(self.shape, m), m


class _MonitorLogic(FlowLogic):
    def __init__(self, shape: FlowShape, mon: FlowMonitor) -> None:
        super().__init__(shape)
        self.mon = mon

    def on_push(self) -> None:
        x = self.grab(self.in_)
        self.mon.state = FlowMonitorState.received
        self.mon.element = x
        self.push(self.out, x)

    def on_upstream_finish(self) -> None:
        self.mon.state = FlowMonitorState.finished
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.mon.state = FlowMonitorState.failed
        self.mon.error = exc
        self.fail_stage(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.mon.state not in (FlowMonitorState.finished, FlowMonitorState.failed):
            self.mon.state = FlowMonitorState.failed
            self.mon.error = exc

    def on_downstream_finish(self, cause: BaseException) -> None:
        # As Akka's MonitorFlow: a plain cancellation is Finished, a failure cause Failed.
        if isinstance(cause, SubscriptionWithCancelError):
            self.mon.state = FlowMonitorState.finished
        else:
            self._failed(cause)
        self.cancel_stage(cause)

    def _extra_fail(self, exc: BaseException) -> None:
        self._failed(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self._failed(exc)

    def post_stop(self) -> None:
        # Stopped without completion, failure or cancellation: abrupt termination.
        self._failed(abrupt_error(self._stage_name))


_ = GraphStageLogic
