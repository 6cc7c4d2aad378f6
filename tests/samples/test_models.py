"""Tests for samples.model_serving.models: scoring math, codecs, validation and registry."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import msgpack
import pytest

from samples.model_serving.models import (
    LINEAR_REGRESSION,
    LOGISTIC_REGRESSION,
    TREE_ENSEMBLE,
    LinearRegressionModel,
    LogisticRegressionModel,
    Model,
    ModelMessage,
    ModelValidationError,
    TreeEnsembleModel,
    decode_model,
    encode_model,
    example_linear_model,
    example_logistic_model,
    example_tree_model,
    parse_model,
    register_model_type,
    registered_model_types,
    score_record,
    sigmoid,
    unregister_model_type,
)
from samples.model_serving.records import DataRecord, generate_records

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

X = (7.0, 0.5, 0.25, 2.0, 0.08, 15.0, 40.0, 0.996, 3.3, 0.6, 10.0)
W = (0.1, -1.0, 0.5, 0.02, -2.0, 0.01, -0.005, -10.0, -0.4, 1.0, 0.3)

# intercept + w . x, spelled out term by term.
DOT = (
    0.1 * 7.0
    + -1.0 * 0.5
    + 0.5 * 0.25
    + 0.02 * 2.0
    + -2.0 * 0.08
    + 0.01 * 15.0
    + -0.005 * 40.0
    + -10.0 * 0.996
    + -0.4 * 3.3
    + 1.0 * 0.6
    + 0.3 * 10.0
)


def _split(feature: object, threshold: object, left: object, right: object) -> dict[str, Any]:
    return {"feature": feature, "threshold": threshold, "left": left, "right": right}


def _leaf(value: object) -> dict[str, Any]:
    return {"value": value}


# alcohol <= 10.5 ? (pH <= 3.2 ? 1.0 : 2.0) : 3.0   -- nodes deliberately not in DFS order
TREE_A = [
    _split("alcohol", 10.5, 3, 1),
    _leaf(3.0),
    _leaf(1.0),
    _split(8, 3.2, 2, 4),
    _leaf(2.0),
]
# sulphates <= 0.7 ? -0.5 : 0.5
TREE_B = [_split(9, 0.7, 1, 2), _leaf(-0.5), _leaf(0.5)]
# a single leaf
TREE_C = [_leaf(0.25)]


def _with(features: Sequence[float], **changes: float) -> list[float]:
    from samples.model_serving.records import FEATURES

    out = list(features)
    for name, value in changes.items():
        out[FEATURES.index(name)] = value
    return out


# --------------------------------------------------------------------------- scoring math


def test_linear_score_matches_hand_computation() -> None:
    model = LinearRegressionModel("lin", 2, W, 1.5)
    assert model.score(X) == pytest.approx(1.5 + DOT, rel=1e-12)
    assert model.type == LINEAR_REGRESSION == "linear_regression"
    assert (model.name, model.version) == ("lin", 2)
    assert LinearRegressionModel("z", 0, (0.0,) * 11).score(X) == 0.0


def test_logistic_score_matches_hand_computation() -> None:
    model = LogisticRegressionModel("log", 1, W, 4.0)
    z = 4.0 + DOT
    assert model.linear_term(X) == pytest.approx(z, rel=1e-12)
    assert model.score(X) == pytest.approx(1.0 / (1.0 + math.exp(-z)), rel=1e-12)
    assert model.type == LOGISTIC_REGRESSION


def test_sigmoid_is_stable_and_symmetric() -> None:
    assert sigmoid(0.0) == 0.5
    assert sigmoid(1000.0) == 1.0
    assert sigmoid(-1000.0) == 0.0  # no OverflowError from exp(1000)
    assert sigmoid(-745.0) > 0.0
    for z in (0.1, 1.0, 5.0, 30.0):
        assert sigmoid(z) == pytest.approx(1.0 / (1.0 + math.exp(-z)), rel=1e-15)
        assert sigmoid(-z) == pytest.approx(1.0 - sigmoid(z), abs=1e-15)


def test_models_reject_wrong_feature_count() -> None:
    for model in (example_linear_model(), example_logistic_model(), example_tree_model()):
        with pytest.raises(ValueError, match="expected 11 features, got 10"):
            model.score(X[:10])


@pytest.mark.parametrize(
    ("changes", "leaf"),
    [
        ({"alcohol": 10.0, "pH": 3.0}, 1.0),
        ({"alcohol": 10.0, "pH": 3.5}, 2.0),
        ({"alcohol": 11.0, "pH": 3.0}, 3.0),
        ({"alcohol": 10.5, "pH": 3.2}, 1.0),  # equality goes left at both splits
        ({"alcohol": 10.500001, "pH": 3.0}, 3.0),
    ],
)
def test_tree_traversal_reaches_expected_leaf(changes: dict[str, float], leaf: float) -> None:
    model = TreeEnsembleModel("t", 1, [TREE_A])
    x = _with(X, **changes)
    assert model.leaf_values(x) == [leaf]
    assert model.score(x) == leaf


def test_tree_ensemble_sum_mode() -> None:
    model = TreeEnsembleModel(
        "gbt", 3, [TREE_A, TREE_B, TREE_C], mode="sum", base_score=5.0, learning_rate=0.1
    )
    x = _with(X, alcohol=9.0, pH=3.5, sulphates=0.9)  # leaves 2.0, 0.5, 0.25
    assert model.leaf_values(x) == [2.0, 0.5, 0.25]
    assert model.score(x) == pytest.approx(5.0 + 0.1 * (2.0 + 0.5 + 0.25))
    assert (model.mode, model.base_score, model.learning_rate, model.num_trees) == (
        "sum",
        5.0,
        0.1,
        3,
    )
    assert model.type == TREE_ENSEMBLE
    defaults = TreeEnsembleModel("gbt", 3, [TREE_A, TREE_B])
    assert defaults.score(x) == 2.5  # base 0, learning rate 1


def test_tree_ensemble_mean_mode() -> None:
    model = TreeEnsembleModel("rf", 1, [TREE_A, TREE_B, TREE_C], mode="mean")
    x = _with(X, alcohol=12.0, sulphates=0.5)  # leaves 3.0, -0.5, 0.25
    assert model.score(x) == pytest.approx((3.0 - 0.5 + 0.25) / 3)
    assert (model.base_score, model.learning_rate) == (0.0, 1.0)


# --------------------------------------------------------------------------- codecs


def test_model_message_codec_round_trip() -> None:
    msg = ModelMessage("m", 4, LINEAR_REGRESSION, {"weights": list(W), "intercept": 1.0})
    data = encode_model(msg)
    assert msgpack.unpackb(data) == {
        "name": "m",
        "version": 4,
        "type": LINEAR_REGRESSION,
        "params": {"weights": list(W), "intercept": 1.0},
    }
    assert decode_model(data) == msg


@pytest.mark.parametrize(
    "model",
    [
        example_linear_model(7),
        example_logistic_model(8),
        example_tree_model(9),
        TreeEnsembleModel("rf", 1, [TREE_A, TREE_B, TREE_C], mode="mean"),
    ],
    ids=repr,
)
def test_parse_model_round_trip(model: Any) -> None:
    msg = model.to_message()
    for source in (msg, encode_model(msg)):
        parsed = parse_model(source)
        assert type(parsed) is type(model)
        assert (parsed.name, parsed.version, parsed.type) == (model.name, model.version, model.type)
        for rec in generate_records(50, seed=5):
            assert parsed.score(rec.features) == model.score(rec.features)


def test_parsed_linear_models_are_equal_values() -> None:
    assert parse_model(example_linear_model(3).to_message()) == example_linear_model(3)
    assert isinstance(example_tree_model(), Model)


def test_tree_features_by_name_are_normalized_to_indices() -> None:
    msg = TreeEnsembleModel("t", 1, [TREE_A]).to_message()
    assert msg.params["trees"][0][0] == {"feature": 10, "threshold": 10.5, "left": 3, "right": 1}
    assert msg.params["trees"][0][1] == {"value": 3.0}
    assert msg.params["mode"] == "sum"


# --------------------------------------------------------------------------- validation


def _msg(type_: str, params: dict[str, Any], name: str = "m", version: int = 1) -> ModelMessage:
    return ModelMessage(name, version, type_, params)


def _lin(**params: Any) -> ModelMessage:
    return _msg(LINEAR_REGRESSION, {"weights": list(W), **params})


def _trees(*trees: Any, **params: Any) -> ModelMessage:
    return _msg(TREE_ENSEMBLE, {"trees": list(trees), **params})


LIN = "invalid linear_regression model 'm' v1: "
LOG = "invalid logistic_regression model 'm' v1: "
TREE = "invalid tree_ensemble model 'm' v1: "
MALFORMED = "malformed model message: "

INVALID: list[tuple[object, str]] = [
    # envelope
    (b"\xc1", MALFORMED + "malformed msgpack: invalid type byte"),
    (msgpack.packb([1]), MALFORMED + "expected a map, got list"),
    (msgpack.packb({"name": "m", "type": "x"}), MALFORMED + "missing field(s) version, params"),
    (
        msgpack.packb({"name": "", "version": 1, "type": "x", "params": {}}),
        MALFORMED + "model name must be a non-empty str, got ''",
    ),
    (
        msgpack.packb({"name": "m", "version": -1, "type": "x", "params": {}}),
        MALFORMED + "model version must be an int >= 0, got -1",
    ),
    (
        msgpack.packb({"name": "m", "version": 1, "type": 3, "params": {}}),
        MALFORMED + "model type must be a non-empty str, got 3",
    ),
    (
        msgpack.packb({"name": "m", "version": 1, "type": "x", "params": []}),
        MALFORMED + "model params must be a map, got list",
    ),
    (
        msgpack.packb({"name": "m", "version": 1, "type": "x", "params": {b"k": 1}}),
        MALFORMED + "model params keys must be str, got b'k'",
    ),
    (_msg(LINEAR_REGRESSION, {}, version=True), MALFORMED + "model version must be an int"),
    (
        _msg("svm", {}),
        "unknown model type 'svm' (known: linear_regression, logistic_regression, tree_ensemble)",
    ),
    # linear / logistic
    (_msg(LINEAR_REGRESSION, {}), LIN + "params missing required key(s) weights"),
    (_lin(bias=1.0), LIN + "params has unknown key(s) bias"),
    (_lin(weights=list(W[:10])), LIN + "expected 11 weights, got 10"),
    (_lin(weights="0123456789a"), LIN + "weights must be an array, got str"),
    (_lin(weights=[*W[:3], "x", *W[4:]]), LIN + "weights[3] must be a number, got str"),
    (_lin(weights=[*W[:3], math.nan, *W[4:]]), LIN + "weights[3] must be finite, got nan"),
    (_lin(intercept=math.inf), LIN + "intercept must be finite, got inf"),
    (_lin(intercept=None), LIN + "intercept must be a number, got NoneType"),
    (
        _msg(LOGISTIC_REGRESSION, {"weights": [*W, 1.0]}),
        LOG + "expected 11 weights, got 12",
    ),
    (
        _msg(LOGISTIC_REGRESSION, {"weights": list(W), "intercept": -math.inf}),
        LOG + "intercept must be finite, got -inf",
    ),
    # tree ensemble: ensemble level
    (_msg(TREE_ENSEMBLE, {}), TREE + "params missing required key(s) trees"),
    (_trees(TREE_C, depth=3), TREE + "params has unknown key(s) depth"),
    (_trees(), TREE + "ensemble has no trees"),
    (_msg(TREE_ENSEMBLE, {"trees": {"0": TREE_C}}), TREE + "trees must be an array, got dict"),
    (_trees(TREE_C, mode="max"), TREE + "mode must be 'sum' or 'mean', got 'max'"),
    (
        _trees(TREE_C, mode="mean", learning_rate=0.1),
        TREE + "base_score and learning_rate are only valid in mode 'sum'",
    ),
    (_trees(TREE_C, base_score=math.nan), TREE + "base_score must be finite, got nan"),
    (_trees(TREE_C, learning_rate=0), TREE + "learning_rate must be > 0, got 0.0"),
    (_trees(TREE_C, learning_rate="1"), TREE + "learning_rate must be a number, got str"),
    # tree ensemble: tree and node level
    (_trees(TREE_C, []), TREE + "tree 1 has no nodes"),
    (_trees(TREE_C, 5), TREE + "tree 1 must be an array of nodes, got int"),
    (_trees([3]), TREE + "tree 0 node 0 must be a map, got int"),
    (_trees([{"value": 1.0, "gain": 2.0}]), TREE + "tree 0 node 0 has unknown key(s) gain"),
    (_trees([{}]), TREE + "tree 0 node 0 is a leaf without 'value'"),
    (
        _trees([_split(0, 1.0, 1, 2), _leaf(1.0), {"value": None}]),
        TREE + "tree 0 node 2 is a leaf without 'value'",
    ),
    (_trees([_leaf(math.inf)]), TREE + "tree 0 node 0 value must be finite, got inf"),
    (_trees([_leaf("1")]), TREE + "tree 0 node 0 value must be a number, got str"),
    (
        _trees([{"feature": 0, "threshold": 1.0, "left": 1}, _leaf(1.0)]),
        TREE + "tree 0 node 0 needs both 'left' and 'right' or neither",
    ),
    (
        _trees([{"threshold": 1.0, "left": 1, "right": 2}, _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 is a split node without 'feature'",
    ),
    (
        _trees([{"feature": 1, "left": 1, "right": 2}, _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 is a split node without 'threshold'",
    ),
    (
        _trees([_split(0, math.nan, 1, 2), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 threshold must be finite, got nan",
    ),
    (
        _trees([_split(11, 1.0, 1, 2), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 feature = 11 is out of range [0, 11)",
    ),
    (
        _trees([_split(-1, 1.0, 1, 2), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 feature = -1 is out of range [0, 11)",
    ),
    (
        _trees([_split("ph", 1.0, 1, 2), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 feature 'ph' is not a known feature",
    ),
    (
        _trees([_split(1.0, 1.0, 1, 2), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 node 0 feature must be an int, got float",
    ),
    (
        _trees(TREE_C, [_split(0, 1.0, 1, 3), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 1 node 0 right = 3 is out of range [0, 3)",
    ),
    (
        _trees([_split(0, 1.0, -1, 1), _leaf(1.0)]),
        TREE + "tree 0 node 0 left = -1 is out of range [0, 2)",
    ),
    (
        _trees([_split(0, 1.0, 1.0, 1), _leaf(1.0)]),
        TREE + "tree 0 node 0 left must be an int, got float",
    ),
    (
        _trees([_split(0, 1.0, 0, 1), _leaf(1.0)]),
        TREE + "tree 0 has a cycle: node 0 leads back to 0",
    ),
    (
        _trees([_split(0, 1.0, 1, 2), _split(1, 1.0, 3, 0), _leaf(1.0), _leaf(2.0)]),
        TREE + "tree 0 has a cycle: node 1 leads back to 0",
    ),
    (
        _trees([_split(0, 1.0, 1, 2), _leaf(1.0), _split(1, 1.0, 3, 2), _leaf(2.0)]),
        TREE + "tree 0 has a cycle: node 2 leads back to 2",
    ),
    (
        _trees([_split(0, 1.0, 1, 1), _leaf(1.0)]),
        TREE + "tree 0 node 1 has more than one parent",
    ),
    (
        _trees([_split(0, 1.0, 1, 2), _split(1, 1.0, 3, 4), _split(2, 1.0, 3, 4), *[_leaf(1)] * 2]),
        TREE + "tree 0 node 3 has more than one parent",
    ),
    (
        _trees([_split(0, 1.0, 1, 2), _leaf(1.0), _leaf(2.0), _leaf(3.0), _leaf(4.0)]),
        TREE + "tree 0 node(s) 3, 4 unreachable from the root",
    ),
    (
        # nodes 3 and 4 form a cycle that the root never reaches
        _trees(
            [_split(0, 1.0, 1, 2), _leaf(1.0), _leaf(2.0), _split(0, 1, 4, 3), _split(0, 1, 3, 4)]
        ),
        TREE + "tree 0 node(s) 3, 4 unreachable from the root",
    ),
]


@pytest.mark.parametrize(("source", "message"), INVALID, ids=[m for _, m in INVALID])
def test_parse_model_rejections(source: Any, message: str) -> None:
    with pytest.raises(ModelValidationError) as info:
        parse_model(source)
    assert str(info.value).startswith(message), str(info.value)
    assert isinstance(info.value, ValueError)


def test_constructors_validate_too() -> None:
    with pytest.raises(ModelValidationError, match="expected 11 weights, got 2"):
        LinearRegressionModel("m", 1, (1.0, 2.0))
    with pytest.raises(ModelValidationError, match="model name must be a non-empty str"):
        LogisticRegressionModel("", 1, W)
    with pytest.raises(ModelValidationError, match="ensemble has no trees"):
        TreeEnsembleModel("m", 1, [])


def test_decode_model_errors_are_prefixed() -> None:
    with pytest.raises(ModelValidationError, match="^malformed model message: expected bytes"):
        decode_model("text")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- registry


class _ConstantModel:
    """A plug-in model type used to test the registry."""

    def __init__(self, msg: ModelMessage) -> None:
        self.name = msg.name
        self.version = msg.version
        self.type = "constant"
        self.value = float(msg.params["value"])

    def score(self, features: Sequence[float]) -> float:
        return self.value


@pytest.fixture
def constant_type() -> Iterator[str]:
    register_model_type("constant", _ConstantModel)
    try:
        yield "constant"
    finally:
        unregister_model_type("constant")


def test_register_custom_model_type(constant_type: str) -> None:
    assert constant_type in registered_model_types()
    model = parse_model(encode_model(ModelMessage("c", 2, constant_type, {"value": 4})))
    assert isinstance(model, _ConstantModel)
    assert model.score(X) == 4.0
    # Exceptions other than ModelValidationError are wrapped.
    with pytest.raises(ModelValidationError, match=r"^invalid constant model 'c' v2: KeyError"):
        parse_model(ModelMessage("c", 2, constant_type, {}))
    with pytest.raises(ModelValidationError, match="ValueError"):
        parse_model(ModelMessage("c", 2, constant_type, {"value": "high"}))


def test_register_duplicate_and_replace(constant_type: str) -> None:
    with pytest.raises(ValueError, match="model type 'constant' is already registered"):
        register_model_type(constant_type, _ConstantModel)
    register_model_type(constant_type, lambda msg: example_linear_model(msg.version), replace=True)
    assert parse_model(ModelMessage("c", 5, constant_type, {})) == example_linear_model(5)
    with pytest.raises(ValueError, match="non-empty str"):
        register_model_type("", _ConstantModel)


def test_factory_must_return_a_model(constant_type: str) -> None:
    register_model_type(constant_type, lambda msg: object(), replace=True)  # type: ignore[arg-type,return-value]
    with pytest.raises(ModelValidationError, match="factory returned object, not a Model"):
        parse_model(ModelMessage("c", 1, constant_type, {}))


def test_unregister_unknown_type() -> None:
    with pytest.raises(KeyError, match="model type 'nope' is not registered"):
        unregister_model_type("nope")
    assert registered_model_types() == (LINEAR_REGRESSION, LOGISTIC_REGRESSION, TREE_ENSEMBLE)


# --------------------------------------------------------------------------- examples, helper


def test_example_models_produce_plausible_scores() -> None:
    records = generate_records(1_000, seed=2)
    linear = [example_linear_model().score(r.features) for r in records]
    trees = [example_tree_model().score(r.features) for r in records]
    probs = [example_logistic_model().score(r.features) for r in records]
    for scores in (linear, trees):
        assert min(scores) >= 3.0 and max(scores) <= 9.0
        assert 5.0 < sum(scores) / len(scores) < 6.5
        assert max(scores) - min(scores) > 1.5
    assert all(0.0 < p < 1.0 for p in probs)
    assert 0.05 < sum(probs) / len(probs) < 0.4
    assert example_tree_model(4).version == 4
    assert example_linear_model(name="x").name == "x"


def test_score_record() -> None:
    rec = DataRecord("w-9", 1_000, X)
    model = LinearRegressionModel("lin", 3, W, 0.5)
    scored = score_record(model, rec, now_ms=lambda: 1_600)
    assert scored.id == "w-9"
    assert scored.score == model.score(X)
    assert (scored.model_name, scored.model_version) == ("lin", 3)
    assert (scored.event_ts_ms, scored.scored_ts_ms, scored.latency_ms) == (1_000, 1_600, 600)
    assert scored.scoring_time_us is not None and scored.scoring_time_us >= 0.0
    assert score_record(model, rec).scored_ts_ms > 1_600_000_000_000
