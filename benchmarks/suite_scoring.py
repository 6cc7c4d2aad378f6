"""The talk's two-inlet scoring stage: data x latest model, fed through ``Partition``.

One source carries both kinds of element, as the model-serving talk's single stream does: a
model first, then data records with a new model version every :data:`MODEL_EVERY` records
(``size`` data records in all, the models not counted). ``Partition(2, route)`` sends data
to output 0 and models to output 1; a custom ``FanInShape2`` stage scores each data record
with the latest model it has seen; ``Sink.fold(0.0, add)`` sums the scores. The scoring is
``LinearRegressionModel.score(record.features)`` of :mod:`samples.model_serving` (an
11-feature ``math.fsum``), the records are ``iter_records(seed=7)``; both are built once per
size (``setup``), outside the timed part.

Systems (every one returns the same float sum, which the harness compares):

``plain loop`` (baseline)
    ``for x in items``: a model replaces the current one, a record is scored and summed.
``reactivex with_latest_from``
    The published source filtered into a data and a model stream,
    ``data.pipe(with_latest_from(models))``, scored in ``map``, summed (synchronous; no back
    pressure, see /work/shared/reference/peer-notes.md).
``project (custom FanInShape2 stage)``
    :class:`benchmarks.scoring_stage.LatestModelScoring`: the textbook element-at-a-time
    shape of the talk's stage written with the public ``reactive.stage`` API (data x latest
    model, nothing else).
``project (samples ModelScoringStage)``
    The real :class:`samples.model_serving.scoring.ModelScoringStage` in the same graph. It
    does more per record than the others (it times each scoring, keeps the serving
    statistics and builds a ``ScoredRecord``): shown for reference, no target.
"""

from __future__ import annotations

import itertools
from typing import Any

from benchmarks.runner import THROUGHPUT, Benchmark, System, Target, register
from samples.model_serving.models import LinearRegressionModel, example_linear_model
from samples.model_serving.records import DataRecord, iter_records

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

M = "benchmarks.suite_scoring:"
#: Seed of the generated records.
SEED = 7
#: A new model version arrives every this many data records.
MODEL_EVERY = 50_000

_ITEMS: dict[int, list[Any]] = {}


def prepare(n: int) -> list[Any]:
    """The input of size ``n`` (cached): a model, then ``n`` records with a new model version
    every :data:`MODEL_EVERY` records."""
    items = _ITEMS.get(n)
    if items is None:
        base = example_linear_model()
        items = []
        for i, rec in enumerate(itertools.islice(iter_records(SEED), n)):
            if i % MODEL_EVERY == 0:
                version = i // MODEL_EVERY + 1
                weights = tuple(w * (1.0 + 0.01 * version) for w in base.weights)
                items.append(LinearRegressionModel(base.name, version, weights, base.intercept))
            items.append(rec)
        _ITEMS.clear()  # one size at a time
        _ITEMS[n] = items
    return items


def route(x: Any) -> int:
    """The ``Partition`` function: 0 for a data record, 1 for a model."""
    return 0 if type(x) is DataRecord else 1


def add(acc: float, y: float) -> float:
    """The fold step: ``acc + y``."""
    return acc + y


# --------------------------------------------------------------------------------------------
# systems
# --------------------------------------------------------------------------------------------


def plain_loop(n: int) -> float:
    """The baseline: one loop over the items, keeping the latest model."""
    model: Any = None
    acc = 0.0
    for x in prepare(n):
        if route(x):
            model = x
        else:
            acc = add(acc, model.score(x.features))
    return acc


def rx_with_latest_from(n: int) -> float:
    """reactivex: the published source split by ``route``, ``with_latest_from``, summed."""
    import reactivex as rx
    from reactivex import operators as ops

    shared: Any = rx.from_iterable(prepare(n)).pipe(ops.publish())
    models = shared.pipe(ops.filter(route))
    data = shared.pipe(ops.filter(lambda x: not route(x)))
    total = [0.0]

    def on_next(y: float) -> None:
        total[0] = add(total[0], y)

    # Subscribed before the data, so a model reaches with_latest_from before what follows it.
    data.pipe(
        ops.with_latest_from(models),
        ops.map(lambda pair: pair[1].score(pair[0].features)),
    ).subscribe(on_next=on_next)
    shared.connect()
    return total[0]


async def _run(n: int, stage: Any, scored: Any) -> float:
    from reactive import ClosedShape, GraphDSL, Partition, RunnableGraph, Sink, Source

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(prepare(n)))
        part = b.add(Partition(2, route))
        scoring = b.add(stage)
        src.out >> part.in_
        part.out(0) >> scoring.in0
        part.out(1) >> scoring.in1
        if scored is None:
            scoring.out >> sink.in_
        else:
            scoring.out >> b.add(scored) >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0.0, add)))
    result: float = await graph.run()
    return result


async def project_custom_stage(n: int) -> float:
    """``Partition(2, route)`` into ``LatestModelScoring``, summed."""
    from benchmarks.scoring_stage import LatestModelScoring

    return await _run(n, LatestModelScoring(), None)


def _score_of(pair: Any) -> float:
    score: float = pair[0].score
    return score


async def project_sample_stage(n: int) -> float:
    """``Partition(2, route)`` into the sample's ``ModelScoringStage``, scores summed."""
    from reactive import Flow
    from samples.model_serving.scoring import ModelScoringStage

    return await _run(n, ModelScoringStage(), Flow().map(_score_of))


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


_register(
    Benchmark(
        name="scoring_stage",
        title="Two-inlet scoring stage: data x latest model through Partition",
        description=(
            "One stream of data records with a new model every 50,000 records; "
            "`Partition(2, route)` sends data to a custom `FanInShape2` stage's first inlet "
            "and models to its second; the stage scores each record with the latest model "
            "(`LinearRegressionModel.score`, samples/model_serving) and `Sink.fold` sums the "
            "scores. Baseline: a plain loop doing the same; peer: reactivex "
            "`with_latest_from`. The sample's own `ModelScoringStage` (which also times each "
            "scoring and keeps statistics) is shown for reference."
        ),
        systems=(
            System("plain loop", M + "plain_loop", "baseline"),
            System("reactivex with_latest_from", M + "rx_with_latest_from", "peer"),
            System("project (custom FanInShape2 stage)", M + "project_custom_stage", "project"),
            System("project (samples ModelScoringStage)", M + "project_sample_stage", "project"),
        ),
        baseline="plain loop",
        size=300_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        setup=M + "prepare",
        size_label="records",
        targets=(
            Target(
                "project (custom FanInShape2 stage)",
                "throughput",
                ">= 0.35x the plain loop",
                min_ratio=0.35,
            ),
        ),
    )
)
