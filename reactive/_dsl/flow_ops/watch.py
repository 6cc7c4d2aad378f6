"""Watching a stream (``_ops/watch.py``): termination, monitor.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..._checks import (
    check,
    fn,
)
from ..._keep import Keep
from ._base import Mat, OpsBase, Out

__all__ = ["WatchOps"]


class WatchOps(OpsBase[Out, Mat]):
    """Watching a stream (``_ops/watch.py``): termination, monitor."""

    __slots__ = ()

    def watch_termination(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Any:
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

    def monitor(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Any:
        """Materialize a ``FlowMonitor`` whose ``state`` tells the stream's last event.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("monitor(combine)", fn(combine))
        from ..._ops.watch import Monitor

        return self._via_stage(Monitor(), combine)
