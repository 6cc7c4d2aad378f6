"""Side outputs (``_ops/fan_out/``): also_to, wire_tap, divert_to.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..._checks import (
    check,
    fn,
)
from ..graph import Graph
from ._base import M2, M3, Mat, OpsBase, Out, Repr

if TYPE_CHECKING:
    from ..blueprints import Sink

__all__ = ["FanOutOps"]


class FanOutOps(OpsBase[Out, Mat]):
    """Side outputs (``_ops/fan_out/``): also_to, wire_tap, divert_to."""

    __slots__ = ()

    def also_to(self, sink: Sink[Out, Any]) -> Repr[Out, Mat]:
        """Send every element to ``sink`` as well as downstream.

        Emits when an element is available and both downstream and the sink have demand.
        Backpressures when downstream or the sink backpressures. Completes when upstream
        completes. Cancels when downstream or the sink cancels.
        """
        from ..._ops.fan_out import Broadcast

        return self._side_output(Broadcast(2, eager_cancel=True), sink, None)

    def also_to_mat(self, sink: Sink[Out, M2], combine: Callable[[Mat, M2], M3]) -> Repr[Out, M3]:
        """``also_to`` combining this blueprint's and the sink's materialized values.

        Emits when an element is available and both downstream and the sink have demand.
        Backpressures when downstream or the sink backpressures. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream or the sink cancels.
        """
        check("also_to_mat(sink, combine)", None, fn(combine))
        from ..._ops.fan_out import Broadcast

        return self._side_output(Broadcast(2, eager_cancel=True), sink, combine)

    def wire_tap(self, sink: Sink[Out, Any] | Callable[[Out], Any]) -> Repr[Out, Mat]:
        """Send a copy of each element to ``sink`` (or call ``sink(x)`` when given a
        function, Akka's ``wireTap(f)``) only when it has demand; never slows the main line
        (while the tap backpressures, only the latest copy is kept for it).

        Emits when downstream has demand. Backpressures when downstream backpressures.
        Completes when upstream completes. Cancels when downstream cancels (a cancelled
        or failed tap does not affect the main line).
        """
        from ..._ops.fan_out import WireTap
        from ..blueprints import Sink

        if callable(sink) and not isinstance(sink, Graph):
            sink = Sink.foreach(sink)
        return self._side_output(WireTap(), sink, None)

    def wire_tap_mat(self, sink: Sink[Out, M2], combine: Callable[[Mat, M2], M3]) -> Repr[Out, M3]:
        """``wire_tap`` combining materialized values.

        Emits when downstream has demand. Backpressures when downstream backpressures (never
        because of the tap). Completes when upstream completes. Fails when upstream fails.
        Cancels when downstream cancels (a cancelled or failed tap does not affect the main
        line).
        """
        check("wire_tap_mat(sink, combine)", None, fn(combine))
        from ..._ops.fan_out import WireTap

        return self._side_output(WireTap(), sink, combine)

    def divert_to(self, sink: Sink[Out, Any], pred: Callable[[Out], bool]) -> Repr[Out, Mat]:
        """Send elements for which ``pred`` holds only to ``sink``, the others downstream.

        Emits when the chosen output has demand. Backpressures when the chosen output
        backpressures. Completes when upstream completes. Cancels when downstream or the
        sink cancels. Fails when ``pred`` raises.
        """
        check("divert_to(sink, pred)", None, fn(pred))
        from ..._ops.fan_out import Partition

        stage = Partition(2, lambda x: 1 if pred(x) else 0, eager_cancel=True)
        return self._side_output(stage, sink, None)

    def divert_to_mat(
        self, sink: Sink[Out, M2], pred: Callable[[Out], bool], combine: Callable[[Mat, M2], M3]
    ) -> Repr[Out, M3]:
        """``divert_to`` combining materialized values.

        Emits when the chosen output has demand. Backpressures when the chosen output
        backpressures. Completes when upstream completes. Fails when upstream fails or
        ``pred`` raises. Cancels when downstream or the sink cancels.
        """
        check("divert_to_mat(sink, pred, combine)", None, fn(pred), fn(combine))
        from ..._ops.fan_out import Partition

        stage = Partition(2, lambda x: 1 if pred(x) else 0, eager_cancel=True)
        return self._side_output(stage, sink, combine)

    def also_to_all(self, *sinks: Sink[Out, Any]) -> Repr[Out, Mat]:
        """Send every element to each of ``sinks`` as well as downstream (Akka's
        ``alsoToAll``; ``also_to`` once per sink, in order).

        Emits when an element is available and downstream and every sink have demand.
        Backpressures when downstream or any sink backpressures. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream or any sink cancels.
        """
        from ..._ops.fan_out import Broadcast

        result: OpsBase[Any, Any] = self
        for sink in sinks:
            result = result._side_output(
                Broadcast(2, eager_cancel=True), sink, None, op="also_to_all"
            )
        return result
