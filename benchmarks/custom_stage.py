"""B3's user-written stage: a map written with the public ``reactive.stage`` API.

It is deliberately the textbook element-at-a-time shape (a frozen stage plus one logic that
is its own in and out handler), with no fast path, to measure what a custom stage costs.
This module imports the runtime at import time; :mod:`benchmarks.project` imports it only
when the B3 system runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)

if TYPE_CHECKING:
    from collections.abc import Callable


class MapStage(GraphStage[FlowShape]):
    """Apply ``f`` to every element: the way the Akka docs teach custom stages."""

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f
        self.in_: Inlet[Any] = Inlet("MapStage.in")
        self.out: Outlet[Any] = Outlet("MapStage.out")
        self.shape = FlowShape(self.in_, self.out)

    def create_logic(self, attributes: Any) -> MapLogic:
        """Return a fresh logic for one materialization."""
        return MapLogic(self)


class MapLogic(GraphStageLogic, InHandler, OutHandler):
    """The logic of :class:`MapStage`, which is its own in and out handler."""

    def __init__(self, stage: MapStage) -> None:
        super().__init__(stage.shape)
        self.f = stage.f
        self.in_ = stage.in_
        self.out = stage.out
        self.set_handlers(self.in_, self.out, self)

    def on_push(self) -> None:
        """Map the element that arrived and push it downstream."""
        self.push(self.out, self.f(self.grab(self.in_)))

    def on_pull(self) -> None:
        """Downstream wants an element: ask upstream for one."""
        self.pull(self.in_)
