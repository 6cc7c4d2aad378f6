"""``CoupledTermination``: the junction behind ``Flow.from_sink_and_source_coupled``."""

from __future__ import annotations

from typing import Any

from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler
from .._stage.shapes import BidiShape, Inlet, Outlet

__all__ = ["CoupledTermination"]


class CoupledTermination(GraphStage[BidiShape]):
    """The junction of ``Flow.from_sink_and_source_coupled`` (Akka's
    ``CoupledTerminationBidi``): ``in1 -> out1`` feeds the sink, ``in2 -> out2`` carries
    the source's elements; any completion, failure or cancellation on either side stops
    the whole stage (the default handlers), so it reaches every other port.
    """

    name = "from_sink_and_source_coupled"

    def __init__(self) -> None:
        self.shape = BidiShape(
            Inlet("CoupledTermination.in1"),
            Outlet("CoupledTermination.out1"),
            Inlet("CoupledTermination.in2"),
            Outlet("CoupledTermination.out2"),
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _CoupledLogic(self.shape)


class _CoupledLogic(GraphStageLogic):
    def __init__(self, shape: BidiShape) -> None:
        super().__init__(shape)
        self.set_handlers(shape.in1, shape.out1, _CoupledSide(self, shape.in1, shape.out1))
        self.set_handlers(shape.in2, shape.out2, _CoupledSide(self, shape.in2, shape.out2))


class _CoupledSide(InHandler, OutHandler):
    """One direction of ``CoupledTermination``: passes elements on; termination is the
    default (``complete_stage`` / ``fail_stage`` / ``cancel_stage``)."""

    def __init__(self, logic: GraphStageLogic, in_: Inlet[Any], out: Outlet[Any]) -> None:
        self.logic = logic
        self.in_ = in_
        self.out = out

    def on_push(self) -> None:
        self.logic.push(self.out, self.logic.grab(self.in_))

    def on_pull(self) -> None:
        self.logic.pull(self.in_)
