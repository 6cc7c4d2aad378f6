"""Watching a stream (``_ops/watch.py``): termination, monitor.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from ..._checks import (
    check,
    fn,
)
from ..._keep import Keep
from ._base import M2, Mat, OpsBase, Out, Repr

if TYPE_CHECKING:
    import asyncio

    from ..._keep import DoneType
    from ..._ops.watch import FlowMonitor

__all__ = ["WatchOps"]


class WatchOps(OpsBase[Out, Mat]):
    """Watching a stream (``_ops/watch.py``): termination, monitor."""

    __slots__ = ()

    @overload
    def watch_termination(self) -> Repr[Out, asyncio.Future[DoneType]]: ...
    @overload
    def watch_termination(
        self, combine: Callable[[Mat, asyncio.Future[DoneType]], M2]
    ) -> Repr[Out, M2]: ...
    def watch_termination(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Repr[Out, Any]:
        """Materialize an awaitable completing with ``Done`` when the stream terminates
        here (or failing with its failure).

        A cancellation from downstream completes it for a normal cancellation and fails it
        with the cause otherwise.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("watch_termination(combine)", fn(combine))
        from ..._ops.watch import WatchTermination

        return self._via_stage(WatchTermination(), combine)

    @overload
    def monitor(self) -> Repr[Out, FlowMonitor]: ...
    @overload
    def monitor(self, combine: Callable[[Mat, FlowMonitor], M2]) -> Repr[Out, M2]: ...
    def monitor(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Repr[Out, Any]:
        """Materialize a ``FlowMonitor`` whose ``state`` tells the stream's last event.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("monitor(combine)", fn(combine))
        from ..._ops.watch import Monitor

        return self._via_stage(Monitor(), combine)
