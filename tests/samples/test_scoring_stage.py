"""ModelScoringStage and the scoring flow/pipeline built around it with GraphDSL."""

from __future__ import annotations

import math
from typing import Any

import pytest

from reactive import ClosedShape, GraphDSL, Materializer, RunnableGraph, Sink, Source
from reactive.testkit import TestSink, TestSource
from samples.model_serving.models import (
    ModelMessage,
    encode_model,
    example_linear_model,
    example_logistic_model,
    example_tree_model,
)
from samples.model_serving.pipeline import direct_pipeline, run_direct, scoring_flow
from samples.model_serving.records import DataRecord, ScoredRecord, generate_records
from samples.model_serving.scoring import ModelScoringStage
from samples.model_serving.stats import ServingState

RECORDS = generate_records(12, seed=7)


def probe_graph(stage: ModelScoringStage) -> RunnableGraph[Any]:
    """data probe, model probe -> stage -> out probe; value (data, models, out, state)."""

    def bp(b: Any, data: Any, models: Any, out: Any, scorer: Any) -> Any:
        data.out >> scorer.in0
        models.out >> scorer.in1
        scorer.out >> out.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(
            bp,
            TestSource.probe(),
            TestSource.probe(),
            TestSink.probe(),
            stage,
            combine=lambda *ms: ms,
        )
    )


def linear_math(rec: DataRecord, version: int = 1) -> float:
    model = example_linear_model(version)
    return model.intercept + math.fsum(
        w * x for w, x in zip(model.weights, rec.features, strict=True)
    )


async def test_scores_equal_the_models_math(materializer: Materializer) -> None:
    linear = encode_model(example_linear_model(3).to_message())
    scored, state = await run_direct(RECORDS, [linear])
    assert len(scored) == len(RECORDS)
    for rec, out in zip(RECORDS, scored, strict=True):
        assert isinstance(out, ScoredRecord)
        assert out.id == rec.id and out.event_ts_ms == rec.ts_ms
        assert (out.model_name, out.model_version) == ("wine-linear", 3)
        assert out.score == pytest.approx(linear_math(rec), rel=1e-12)
    snap = state.snapshot()
    assert snap.records_scored == len(RECORDS) and snap.models_loaded == 1
    assert snap.model_type == "linear_regression"

    logistic = example_logistic_model()
    scored, _ = await run_direct(RECORDS, [logistic.to_message()])
    for rec, out in zip(RECORDS, scored, strict=True):
        z = logistic.intercept + sum(w * x for w, x in zip(logistic.weights, rec.features))
        assert out is not None and out.score == pytest.approx(1.0 / (1.0 + math.exp(-z)))
        assert 0.0 < out.score < 1.0

    tree = example_tree_model()
    scored, _ = await run_direct(RECORDS, [tree])  # a ready Model object works too
    assert [s.score for s in scored if s] == [tree.score(r.features) for r in RECORDS]


async def test_model_update_takes_effect_for_later_records(materializer: Materializer) -> None:
    data, models, out, state = probe_graph(ModelScoringStage()).run(materializer)
    out.request(10)
    await models.expect_request()
    models.send_next(encode_model(example_linear_model(1).to_message()))
    await data.expect_request()
    data.send_next(RECORDS[0])
    first = await out.expect_next()
    assert first[1] is RECORDS[0] and first[0].model_version == 1
    await models.expect_request()
    models.send_next(example_tree_model(2).to_message())
    await data.expect_request()
    data.send_next(RECORDS[1])
    second, elem = await out.expect_next()
    assert elem is RECORDS[1]
    assert (second.model_name, second.model_version) == ("wine-gbt", 2)
    assert second.score == example_tree_model(2).score(RECORDS[1].features)
    snap = state.snapshot()
    assert (snap.model_name, snap.model_version, snap.models_loaded) == ("wine-gbt", 2, 2)
    models.send_complete()  # the last model keeps serving
    data.send_next(RECORDS[2])
    third, _ = await out.expect_next()
    assert third.model_version == 2
    data.send_complete()
    await out.expect_complete()
    assert state.records_scored == 3


async def test_bad_model_is_refused_and_current_model_stays(materializer: Materializer) -> None:
    data, models, out, state = probe_graph(ModelScoringStage()).run(materializer)
    out.request(10)
    await models.expect_request()
    models.send_next(encode_model(example_linear_model(1).to_message()))
    await models.expect_request()
    models.send_next(b"\xc1 not msgpack")
    await models.expect_request()  # the model stream goes on after a rejection
    models.send_next(ModelMessage("broken", 2, "linear_regression", {"weights": [1.0]}))
    await models.expect_request()
    models.send_next(ModelMessage("alien", 3, "neural_net", {}))
    await models.expect_request()
    snap = state.snapshot()
    assert snap.models_rejected == 3 and snap.models_loaded == 1
    assert "unknown model type 'neural_net'" in (snap.last_rejection_reason or "")
    data.send_next(RECORDS[0])
    scored, _ = await out.expect_next()
    assert (scored.model_name, scored.model_version) == ("wine-linear", 1)
    assert scored.score == pytest.approx(linear_math(RECORDS[0]))
    data.send_complete()
    await out.expect_complete()


async def test_data_demand_is_held_until_a_model_arrives(materializer: Materializer) -> None:
    data, models, out, state = probe_graph(ModelScoringStage()).run(materializer)
    out.request(5)
    await models.expect_request()
    await data.expect_no_message(0.02)  # no model: the data inlet is not pulled
    models.send_next(b"garbage")  # a rejected model does not release data demand either
    await models.expect_request()
    await data.expect_no_message(0.02)
    assert state.snapshot().models_rejected == 1 and not state.has_model
    models.send_next(example_linear_model(1))
    await data.expect_request()
    data.send_next(RECORDS[0])
    scored, _ = await out.expect_next()
    assert scored.model_version == 1
    data.send_complete()
    await out.expect_complete()


async def test_unscored_pass_emits_records_until_a_model_arrives(
    materializer: Materializer,
) -> None:
    data, models, out, state = probe_graph(ModelScoringStage(unscored="pass")).run(materializer)
    out.request(5)
    await data.expect_request()  # pulled at once, no model needed
    data.send_next(RECORDS[0])
    assert await out.expect_next() == (None, RECORDS[0])
    assert state.records_unscored == 1
    models.send_next(example_linear_model(4))
    await data.expect_request()
    data.send_next(RECORDS[1])
    scored, elem = await out.expect_next()
    assert elem is RECORDS[1] and scored.model_version == 4
    data.send_complete()
    await out.expect_complete()
    assert state.records_scored == 1 and state.records_unscored == 1


async def test_unscorable_elements_pass_through(materializer: Materializer) -> None:
    elems: list[Any] = [("ok", RECORDS[0]), ("bad", b"\x00"), ("ok", RECORDS[1])]
    flow = scoring_flow([example_linear_model(1)], extract=lambda e: e[1] if e[0] == "ok" else None)
    state, done = (
        Source.from_iterable(elems)
        .via_mat(flow, lambda _l, r: r)
        .to_mat(Sink.seq(), lambda left, right: (left, right))
        .run(materializer)
    )
    out = await done
    assert isinstance(state, ServingState)
    assert [e for _, e in out] == elems
    assert out[1][0] is None
    assert [s.id for s, _ in (out[0], out[2])] == [RECORDS[0].id, RECORDS[1].id]
    assert state.records_scored == 2


async def test_scoring_flow_is_a_reusable_blueprint(materializer: Materializer) -> None:
    flow = scoring_flow(Source.single(example_linear_model(2)))
    for _ in range(2):
        pairs = await Source.from_iterable(RECORDS[:3]).via(flow).run_with(Sink.seq(), materializer)
        assert [s.model_version for s, _ in pairs] == [2, 2, 2]


async def test_direct_pipeline_materializes_state_and_sink(materializer: Materializer) -> None:
    state, done = direct_pipeline(RECORDS, [example_linear_model(1)]).run(materializer)
    pairs = await done
    assert [r for _, r in pairs] == RECORDS
    assert state.records_scored == len(RECORDS)
    text = direct_pipeline(RECORDS, []).to_mermaid()
    assert "model_scoring" in text and text.count("-->") == 3


def test_unscored_must_be_wait_or_pass() -> None:
    with pytest.raises(ValueError, match="unscored must be"):
        scoring_flow([], unscored="drop")
