"""The scoring pipeline as reusable blueprints, and the direct (in-process) pipeline.

:func:`scoring_flow` wraps :class:`~.scoring.ModelScoringStage` in a ``Flow`` built with
``GraphDSL``: the data elements enter the flow, the model stream is wired inside to the
stage's model inlet, and every data element leaves as ``(ScoredRecord | None, element)``.
The flow's materialized value is the stage's live :class:`~.stats.ServingState`::

    models ─────────────┐
                        ▼ in1
    data ──▶ in0 [ModelScoringStage] out ──▶ (ScoredRecord | None, element)

:func:`direct_pipeline` is the same stage with both inputs and a sink attached, all in one
process and one fused graph: records ``Source`` -> scoring -> ``Sink``. It is the "direct"
half of ``samples/direct_vs_kafka.py``; :mod:`samples.model_serving.service` is the Kafka
half.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactive import ClosedShape, Flow, FlowShape, GraphDSL, Keep, RunnableGraph, Sink, Source

from .scoring import ModelScoringStage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from .models import Model, ModelMessage
    from .records import DataRecord, ScoredRecord
    from .stats import ServingState

__all__ = ["direct_pipeline", "run_direct", "scoring_flow"]


def _as_source(models: Any) -> Any:
    if isinstance(models, Source):
        return models
    return Source.from_iterable(list(models))


def scoring_flow(
    model_source: Source[Any, Any] | Iterable[bytes | ModelMessage | Model],
    unscored: str = "wait",
    *,
    extract: Callable[[Any], DataRecord | None] | None = None,
    window: int = 4096,
) -> Flow[Any, tuple[ScoredRecord | None, Any], ServingState]:
    """A ``Flow`` that scores data elements with the latest model of ``model_source``.

    ``model_source`` is a ``Source`` of model messages (encoded ``bytes``,
    :class:`~.models.ModelMessage` or ready :class:`~.models.Model` objects) or an
    iterable of them. ``unscored`` is ``"wait"`` (hold data demand until a first model
    arrives) or ``"pass"`` (emit ``(None, element)`` while no model is in service).
    ``extract(element)`` returns the ``DataRecord`` of an element or None for an element
    that cannot be scored (passed through as ``(None, element)``); without it the
    elements are the records themselves. The materialized value is the stage's
    :class:`ServingState`; the model source's own value is dropped.

    Emits when a data element was scored (or passed through) and downstream pulls.
    Backpressures when downstream does, or while no model is in service with
    ``unscored="wait"``. Completes when the data stream completes (the model stream
    completing keeps the last model in service). Fails when either stream fails.
    Cancels when downstream cancels.
    """
    models = _as_source(model_source)
    stage = ModelScoringStage(unscored=unscored, extract=extract, window=window)

    def blueprint(b: Any, scorer: Any) -> Any:
        b.add(models).out >> scorer.in1
        return FlowShape(scorer.in0, scorer.out)

    return Flow.from_graph(GraphDSL.create(blueprint, stage))


def direct_pipeline(
    records: Source[Any, Any] | Iterable[DataRecord],
    model_source: Source[Any, Any] | Iterable[bytes | ModelMessage | Model],
    sink: Sink[Any, Any] | None = None,
    *,
    unscored: str = "wait",
) -> RunnableGraph[tuple[ServingState, Any]]:
    """The direct in-process pipeline: records -> scoring -> ``sink``, as one graph.

    ``sink`` receives ``(ScoredRecord | None, record)`` pairs (default ``Sink.seq()``).
    Running the graph gives ``(serving_state, sink's materialized value)``.
    """
    data = _as_source(records)
    models = _as_source(model_source)
    out = Sink.seq() if sink is None else sink

    def blueprint(b: Any, scorer: Any, sink_shape: Any) -> Any:
        b.add(data).out >> scorer.in0
        b.add(models).out >> scorer.in1
        scorer.out >> sink_shape.in_
        return ClosedShape

    stage = ModelScoringStage(unscored=unscored)
    return RunnableGraph.from_graph(GraphDSL.create(blueprint, stage, out))


async def run_direct(
    records: Source[Any, Any] | Iterable[DataRecord],
    model_source: Source[Any, Any] | Iterable[bytes | ModelMessage | Model],
    *,
    unscored: str = "wait",
) -> tuple[list[ScoredRecord | None], ServingState]:
    """Score ``records`` in process and return the scored records and the serving state.

    The list holds, in input order, the :class:`ScoredRecord` of each record (None for a
    record that could not be scored).
    """
    state, done = (
        _as_source(records)
        .via_mat(scoring_flow(model_source, unscored), Keep.right)
        .map(lambda pair: pair[0])
        .to_mat(Sink.seq(), Keep.both)
        .run()
    )
    return list(await done), state
