"""``ModelScoringStage``: a two-inlet GraphStage that scores data with the latest model.

::

            +----------------------+
    data -->| in0                  |
            |  ModelScoringStage   |--> (ScoredRecord | None, element)
    model ->| in1                  |
            +----------------------+

Written with the public ``reactive.stage`` API only. Models arrive on their own stream
and replace the current one without stopping the data stream; a model that fails to
parse or validate is rejected (logged, counted) and the current model stays in service.
Until a first model arrives, data demand is held (``unscored="wait"``, the default) or
records pass through unscored (``unscored="pass"``). The materialized value is the live
``ServingState`` (current model, version, since when, records scored, mean and p99
scoring time).

Elements on the data inlet are anything: ``extract(element)`` returns the
``DataRecord`` to score, or None for elements that are not scorable (e.g. a record that
failed to decode), which are passed through at once as ``(None, element)``.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from reactive import Attributes
from reactive.stage import (
    FanInShape2,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)

from .models import Model, ModelValidationError, parse_model
from .records import DataRecord, ScoredRecord
from .stats import ServingState

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ModelScoringStage"]

log = logging.getLogger("samples.model_serving")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class ModelScoringStage(GraphStageWithMaterializedValue[FanInShape2, ServingState]):
    """Score each data element with the latest model; see the module docstring.

    Emits when a data element arrived and downstream pulls (and a model is in service,
    unless ``unscored="pass"``). Backpressures data when downstream does or while no
    model is in service (``unscored="wait"``); the model inlet is always pulled.
    Completes when the data stream completes (the model stream completing leaves the
    current model in service). Fails when either input fails or scoring raises.
    """

    def __init__(
        self,
        *,
        unscored: str = "wait",
        extract: Callable[[Any], DataRecord | None] | None = None,
        window: int = 4096,
    ) -> None:
        if unscored not in ("wait", "pass"):
            raise ValueError(f"unscored must be 'wait' or 'pass', got {unscored!r}")
        self.unscored = unscored
        self.extract = extract
        self.window = window
        self.shape = FanInShape2(
            Inlet("ModelScoring.data"), Inlet("ModelScoring.model"), Outlet("ModelScoring.out")
        )
        self.initial_attributes = Attributes.name("model_scoring")

    def create_logic_and_materialized_value(
        self, attributes: Attributes
    ) -> tuple[GraphStageLogic, ServingState]:
        state = ServingState(window=self.window)
        return _ScoringLogic(self, state), state


class _DataIn(InHandler):
    def __init__(self, logic: _ScoringLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        self.logic.on_data()


class _ModelIn(InHandler):
    def __init__(self, logic: _ScoringLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        self.logic.on_model()

    def on_upstream_finish(self) -> None:
        # The current model stays in service; only the data stream ends the stage.
        pass


class _ScoringLogic(GraphStageLogic, OutHandler):
    def __init__(self, stage: ModelScoringStage, state: ServingState) -> None:
        super().__init__(stage.shape)
        self.data: Inlet[Any] = stage.shape.in0
        self.model_in: Inlet[Any] = stage.shape.in1
        self.out: Outlet[Any] = stage.shape.out
        self.stage = stage
        self.state = state
        self.model: Model | None = None
        self.extract = stage.extract
        self.set_handler(self.data, _DataIn(self))
        self.set_handler(self.model_in, _ModelIn(self))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        self.pull(self.model_in)

    def _can_serve(self) -> bool:
        return self.model is not None or self.stage.unscored == "pass"

    def _pull_data(self) -> None:
        if (
            self._can_serve()
            and self.is_available(self.out)
            and not self.has_been_pulled(self.data)
            and not self.is_closed(self.data)
        ):
            self.pull(self.data)

    def on_pull(self) -> None:
        self._pull_data()

    def on_model(self) -> None:
        msg = self.grab(self.model_in)
        try:
            model = (
                msg if isinstance(msg, Model) and not isinstance(msg, bytes) else parse_model(msg)
            )
        except ModelValidationError as exc:
            self.state.model_rejected(str(exc))
            log.warning("[%s] model rejected, current model stays: %s", self.stage_name, exc)
        else:
            self.model = model
            self.state.model_loaded(model.name, model.version, model.type)
            log.info("[%s] serving model %s v%s", self.stage_name, model.name, model.version)
        self.pull(self.model_in)
        self._pull_data()

    def on_data(self) -> None:
        elem = self.grab(self.data)
        record = elem if self.extract is None else self.extract(elem)
        model = self.model
        if record is None:
            self.push(self.out, (None, elem))
            return
        if model is None:
            self.state.record_unscored()
            self.push(self.out, (None, elem))
            return
        t0 = time.perf_counter_ns()
        score = model.score(record.features)
        took_us = (time.perf_counter_ns() - t0) / 1000.0
        self.state.record_scored(took_us)
        scored = ScoredRecord(
            id=record.id,
            score=score,
            model_name=model.name,
            model_version=model.version,
            event_ts_ms=record.ts_ms,
            scored_ts_ms=_now_ms(),
            scoring_time_us=took_us,
        )
        self.push(self.out, (scored, elem))

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.cancel_stage(cause)
