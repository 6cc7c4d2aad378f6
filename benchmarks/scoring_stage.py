"""The scoring benchmark's custom stage (:mod:`benchmarks.suite_scoring`): data x latest model.

The talk's two-inlet stage in its textbook element-at-a-time shape, written with the public
``reactive.stage`` API and no fast path. This module imports the runtime at import time;
:mod:`benchmarks.suite_scoring` imports it only when the system runs.
"""

from __future__ import annotations

from typing import Any

from reactive.stage import (
    FanInShape2,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)

# --------------------------------------------------------------------------------------------


class LatestModelScoring(GraphStage[FanInShape2]):
    """Score each data element (``in0``) with the latest model (``in1``).

    Emits when a data record arrived and downstream pulls. Backpressures data when
    downstream backpressures and until a first model arrived; the model inlet is always
    pulled. Completes when the data inlet completes. Cancels when downstream cancels.
    """

    def __init__(self) -> None:
        super().__init__()
        self.shape = FanInShape2(
            Inlet("LatestModelScoring.data"),
            Inlet("LatestModelScoring.model"),
            Outlet("LatestModelScoring.out"),
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        """Return a fresh logic for one materialization."""
        return _ScoringLogic(self.shape)


class _ModelIn(InHandler):
    def __init__(self, logic: _ScoringLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        self.logic.on_model()

    def on_upstream_finish(self) -> None:
        pass  # the current model stays in service


class _ScoringLogic(GraphStageLogic, InHandler, OutHandler):
    """Its own data-inlet and outlet handler; the model inlet has :class:`_ModelIn`."""

    def __init__(self, shape: FanInShape2) -> None:
        super().__init__(shape)
        self.data: Inlet[Any] = shape.in0
        self.model_in: Inlet[Any] = shape.in1
        self.out: Outlet[Any] = shape.out
        self.model: Any = None
        self.set_handlers(self.data, self.out, self)
        self.set_handler(self.model_in, _ModelIn(self))

    def pre_start(self) -> None:
        self.pull(self.model_in)

    def on_model(self) -> None:
        self.model = self.grab(self.model_in)
        self.pull(self.model_in)
        if self.is_available(self.out) and not self.has_been_pulled(self.data):
            self.pull(self.data)

    def on_push(self) -> None:
        self.push(self.out, self.model.score(self.grab(self.data).features))

    def on_pull(self) -> None:
        if self.model is not None:
            self.pull(self.data)
