"""Model messages, the :class:`Model` protocol, built-in model types and their registry.

A :class:`ModelMessage` (msgpack on the wire, see :func:`encode_model`) names a model, gives
its version and type, and carries type-specific parameters.  :func:`parse_model` validates a
message and turns it into a :class:`Model` through the factory registered for its type; every
problem is reported as a :class:`ModelValidationError` with a readable reason, so a serving
stage can reject a bad model and keep the current one.

Built-in types and their ``params``:

``"linear_regression"`` (:class:`LinearRegressionModel`)
    ``{"weights": [11 numbers], "intercept": number = 0}``; score ``intercept + w . x``.
``"logistic_regression"`` (:class:`LogisticRegressionModel`)
    same parameters; score ``sigmoid(intercept + w . x)``, a probability.
``"tree_ensemble"`` (:class:`TreeEnsembleModel`)
    ``{"trees": [[node, ...], ...], "mode": "sum" | "mean" = "sum",
    "base_score": number = 0, "learning_rate": number = 1}`` (the last two only for
    ``"sum"``).  Each tree is a flat list of nodes, the root at index 0.  An internal node is
    ``{"feature": index or name, "threshold": number, "left": index, "right": index}`` and
    goes left when ``x[feature] <= threshold``; a leaf is ``{"value": number}``.  Mode
    ``"sum"`` (gradient boosting) scores ``base_score + learning_rate * sum(leaves)``, mode
    ``"mean"`` (random forest) the mean of the leaves.

New types are added with :func:`register_model_type`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from operator import mul
from typing import Any, Final, Protocol, runtime_checkable

from samples.model_serving._codec import MsgpackDecodeError, pack, unpack
from samples.model_serving.records import FEATURES, NUM_FEATURES, DataRecord, ScoredRecord

__all__ = [
    "LINEAR_REGRESSION",
    "LOGISTIC_REGRESSION",
    "TREE_ENSEMBLE",
    "LinearRegressionModel",
    "LogisticRegressionModel",
    "Model",
    "ModelFactory",
    "ModelMessage",
    "ModelValidationError",
    "TreeEnsembleModel",
    "decode_model",
    "encode_model",
    "example_linear_model",
    "example_logistic_model",
    "example_tree_model",
    "parse_model",
    "register_model_type",
    "registered_model_types",
    "score_record",
    "sigmoid",
    "unregister_model_type",
]

LINEAR_REGRESSION: Final = "linear_regression"
"""Type name of :class:`LinearRegressionModel`."""

LOGISTIC_REGRESSION: Final = "logistic_regression"
"""Type name of :class:`LogisticRegressionModel`."""

TREE_ENSEMBLE: Final = "tree_ensemble"
"""Type name of :class:`TreeEnsembleModel`."""


class ModelValidationError(ValueError):
    """A model message is malformed or describes an invalid model; the message says why."""


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class ModelMessage:
    """A model as sent on the model topic: name, version, type and type-specific params.

    The message itself is not validated on construction; :func:`parse_model` does that.
    """

    name: str
    version: int
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)


def encode_model(msg: ModelMessage) -> bytes:
    """Encode ``msg`` as a msgpack map ``{"name", "version", "type", "params"}``."""
    return pack(
        {"name": msg.name, "version": msg.version, "type": msg.type, "params": dict(msg.params)}
    )


def _check_envelope(name: object, version: object, type_: object, params: object) -> None:
    if not isinstance(name, str) or not name:
        raise ModelValidationError(f"model name must be a non-empty str, got {name!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ModelValidationError(f"model version must be an int >= 0, got {version!r}")
    if not isinstance(type_, str) or not type_:
        raise ModelValidationError(f"model type must be a non-empty str, got {type_!r}")
    if not isinstance(params, Mapping):
        raise ModelValidationError(f"model params must be a map, got {type(params).__name__}")
    bad_keys = [k for k in params if not isinstance(k, str)]
    if bad_keys:
        raise ModelValidationError(f"model params keys must be str, got {bad_keys[0]!r}")


def decode_model(data: bytes | bytearray | memoryview) -> ModelMessage:
    """Decode a message produced by :func:`encode_model`.

    Checks the envelope only (field presence and types); type-specific parameters are checked
    by :func:`parse_model`.  Raises :class:`ModelValidationError` prefixed
    ``"malformed model message: "``.
    """
    try:
        try:
            obj = unpack(data)
        except MsgpackDecodeError as exc:
            raise ModelValidationError(str(exc)) from None
        if not isinstance(obj, dict):
            raise ModelValidationError(f"expected a map, got {type(obj).__name__}")
        missing = [f for f in ("name", "version", "type", "params") if f not in obj]
        if missing:
            raise ModelValidationError(f"missing field(s) {', '.join(missing)}")
        _check_envelope(obj["name"], obj["version"], obj["type"], obj["params"])
    except ModelValidationError as exc:
        raise ModelValidationError(f"malformed model message: {exc}") from None
    return ModelMessage(
        name=obj["name"], version=obj["version"], type=obj["type"], params=obj["params"]
    )


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Model(Protocol):
    """A scoring model: identity (name, version, type) and a ``score`` function."""

    @property
    def name(self) -> str:
        """The model's name, from its :class:`ModelMessage`."""
        ...

    @property
    def version(self) -> int:
        """The model's version, from its :class:`ModelMessage`."""
        ...

    @property
    def type(self) -> str:
        """The model's type name, as registered with :func:`register_model_type`."""
        ...

    def score(self, features: Sequence[float]) -> float:
        """Score one record's features (in :data:`~.records.FEATURES` order)."""
        ...


ModelFactory = Callable[[ModelMessage], Model]
"""Builds a :class:`Model` from a message whose envelope is valid; raises on bad params."""


# --------------------------------------------------------------------------- validation helpers


def _number(value: object, what: str) -> float:
    """Return ``value`` as a finite float or raise :class:`ModelValidationError`."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ModelValidationError(f"{what} must be a number, got {type(value).__name__}")
    result = float(value)
    if not math.isfinite(result):
        raise ModelValidationError(f"{what} must be finite, got {result!r}")
    return result


def _index(value: object, what: str, size: int) -> int:
    """Return ``value`` as an int in ``range(size)`` or raise :class:`ModelValidationError`."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ModelValidationError(f"{what} must be an int, got {type(value).__name__}")
    if not 0 <= value < size:
        raise ModelValidationError(f"{what} = {value} is out of range [0, {size})")
    return value


def _check_keys(
    params: Mapping[str, object], what: str, required: Sequence[str], optional: Sequence[str]
) -> None:
    missing = [k for k in required if k not in params]
    if missing:
        raise ModelValidationError(f"{what} missing required key(s) {', '.join(missing)}")
    unknown = sorted(str(k) for k in params if k not in required and k not in optional)
    if unknown:
        raise ModelValidationError(f"{what} has unknown key(s) {', '.join(unknown)}")


def _check_identity(name: object, version: object) -> None:
    _check_envelope(name, version, "-", {})


def _weights(values: object) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise ModelValidationError(f"weights must be an array, got {type(values).__name__}")
    if len(values) != NUM_FEATURES:
        raise ModelValidationError(f"expected {NUM_FEATURES} weights, got {len(values)}")
    return tuple(_number(w, f"weights[{i}]") for i, w in enumerate(values))


def _check_feature_count(features: Sequence[float]) -> None:
    if len(features) != NUM_FEATURES:
        raise ValueError(f"expected {NUM_FEATURES} features, got {len(features)}")


def sigmoid(z: float) -> float:
    """Numerically stable logistic function ``1 / (1 + exp(-z))`` (no overflow for any z)."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


# --------------------------------------------------------------------------- linear models


@dataclass(frozen=True, slots=True)
class LinearRegressionModel:
    """Linear regression: ``score(x) = intercept + sum(weights[i] * x[i])``.

    The constructor validates its arguments and raises :class:`ModelValidationError`.
    """

    name: str
    version: int
    weights: tuple[float, ...]
    intercept: float = 0.0

    def __post_init__(self) -> None:
        _check_identity(self.name, self.version)
        object.__setattr__(self, "weights", _weights(self.weights))
        object.__setattr__(self, "intercept", _number(self.intercept, "intercept"))

    @property
    def type(self) -> str:
        """Always ``"linear_regression"``."""
        return LINEAR_REGRESSION

    def linear_term(self, features: Sequence[float]) -> float:
        """Return ``intercept + w . x``; raises :class:`ValueError` unless 11 features."""
        _check_feature_count(features)
        return self.intercept + math.fsum(map(mul, self.weights, features))

    def score(self, features: Sequence[float]) -> float:
        """Return the regression value for ``features``."""
        return self.linear_term(features)

    def to_message(self) -> ModelMessage:
        """Return the :class:`ModelMessage` describing this model."""
        return ModelMessage(
            self.name,
            self.version,
            self.type,
            {"weights": list(self.weights), "intercept": self.intercept},
        )

    @classmethod
    def from_message(cls, msg: ModelMessage) -> LinearRegressionModel:
        """Build the model from ``msg.params`` (``weights``, optional ``intercept``)."""
        _check_keys(msg.params, "params", ("weights",), ("intercept",))
        return cls(msg.name, msg.version, msg.params["weights"], msg.params.get("intercept", 0.0))


@dataclass(frozen=True, slots=True)
class LogisticRegressionModel:
    """Logistic regression: ``score(x) = sigmoid(intercept + sum(weights[i] * x[i]))``.

    The score is a probability in ``[0, 1]``.  The constructor validates its arguments and
    raises :class:`ModelValidationError`.
    """

    name: str
    version: int
    weights: tuple[float, ...]
    intercept: float = 0.0

    def __post_init__(self) -> None:
        _check_identity(self.name, self.version)
        object.__setattr__(self, "weights", _weights(self.weights))
        object.__setattr__(self, "intercept", _number(self.intercept, "intercept"))

    @property
    def type(self) -> str:
        """Always ``"logistic_regression"``."""
        return LOGISTIC_REGRESSION

    def linear_term(self, features: Sequence[float]) -> float:
        """Return the log-odds ``intercept + w . x``; raises :class:`ValueError` unless 11."""
        _check_feature_count(features)
        return self.intercept + math.fsum(map(mul, self.weights, features))

    def score(self, features: Sequence[float]) -> float:
        """Return the predicted probability for ``features``."""
        return sigmoid(self.linear_term(features))

    def to_message(self) -> ModelMessage:
        """Return the :class:`ModelMessage` describing this model."""
        return ModelMessage(
            self.name,
            self.version,
            self.type,
            {"weights": list(self.weights), "intercept": self.intercept},
        )

    @classmethod
    def from_message(cls, msg: ModelMessage) -> LogisticRegressionModel:
        """Build the model from ``msg.params`` (``weights``, optional ``intercept``)."""
        _check_keys(msg.params, "params", ("weights",), ("intercept",))
        return cls(msg.name, msg.version, msg.params["weights"], msg.params.get("intercept", 0.0))


# --------------------------------------------------------------------------- tree ensemble

_NODE_KEYS: Final = ("feature", "threshold", "left", "right", "value")
_TREE_MODES: Final = ("sum", "mean")


def _feature_index(value: object, what: str) -> int:
    if isinstance(value, str):
        try:
            return FEATURES.index(value)
        except ValueError:
            raise ModelValidationError(f"{what} {value!r} is not a known feature") from None
    return _index(value, what, NUM_FEATURES)


@dataclass(slots=True)
class _CompiledTree:
    """A validated tree as parallel arrays; ``left[i] == -1`` marks a leaf."""

    feature: list[int]
    threshold: list[float]
    left: list[int]
    right: list[int]
    value: list[float]
    nodes: list[dict[str, int | float]]  # normalized node dicts, for to_message()


def _compile_tree(nodes: object, t: int) -> _CompiledTree:
    what = f"tree {t}"
    if isinstance(nodes, (str, bytes)) or not isinstance(nodes, Sequence):
        raise ModelValidationError(f"{what} must be an array of nodes, got {type(nodes).__name__}")
    n = len(nodes)
    if n == 0:
        raise ModelValidationError(f"{what} has no nodes")
    tree = _CompiledTree([0] * n, [0.0] * n, [-1] * n, [-1] * n, [0.0] * n, [])
    for i, node in enumerate(nodes):
        where = f"{what} node {i}"
        if not isinstance(node, Mapping):
            raise ModelValidationError(f"{where} must be a map, got {type(node).__name__}")
        unknown = sorted(str(k) for k in node if k not in _NODE_KEYS)
        if unknown:
            raise ModelValidationError(f"{where} has unknown key(s) {', '.join(unknown)}")
        has_left = node.get("left") is not None
        has_right = node.get("right") is not None
        if has_left != has_right:
            raise ModelValidationError(f"{where} needs both 'left' and 'right' or neither")
        if has_left:
            for key in ("feature", "threshold"):
                if node.get(key) is None:
                    raise ModelValidationError(f"{where} is a split node without '{key}'")
            tree.feature[i] = _feature_index(node["feature"], f"{where} feature")
            tree.threshold[i] = _number(node["threshold"], f"{where} threshold")
            tree.left[i] = _index(node["left"], f"{where} left", n)
            tree.right[i] = _index(node["right"], f"{where} right", n)
            tree.nodes.append(
                {
                    "feature": tree.feature[i],
                    "threshold": tree.threshold[i],
                    "left": tree.left[i],
                    "right": tree.right[i],
                }
            )
        else:
            if node.get("value") is None:
                raise ModelValidationError(f"{where} is a leaf without 'value'")
            tree.value[i] = _number(node["value"], f"{where} value")
            tree.nodes.append({"value": tree.value[i]})
    _check_tree_shape(tree, what)
    return tree


def _check_tree_shape(tree: _CompiledTree, what: str) -> None:
    """Depth-first walk from the root: no cycles, no shared nodes, no unreachable nodes."""
    new, on_path, done = 0, 1, 2
    state = [new] * len(tree.left)
    state[0] = on_path
    stack: list[tuple[int, list[int]]] = [(0, [tree.right[0], tree.left[0]])]
    while stack:
        node, pending = stack[-1]
        child = pending.pop() if pending else -1
        if child < 0:
            state[node] = done
            stack.pop()
            continue
        if state[child] == on_path:
            raise ModelValidationError(f"{what} has a cycle: node {node} leads back to {child}")
        if state[child] == done:
            raise ModelValidationError(f"{what} node {child} has more than one parent")
        state[child] = on_path
        stack.append((child, [tree.right[child], tree.left[child]]))
    unreachable = [i for i, s in enumerate(state) if s == new]
    if unreachable:
        listed = ", ".join(map(str, unreachable))
        raise ModelValidationError(f"{what} node(s) {listed} unreachable from the root")


class TreeEnsembleModel:
    """An ensemble of binary decision trees (gradient-boosted ``"sum"`` or forest ``"mean"``).

    ``trees`` is a list of trees, each a flat list of node maps as described in the module
    docstring (root at index 0; go left when ``x[feature] <= threshold``).  Mode ``"sum"``
    scores ``base_score + learning_rate * sum(leaf values)``; mode ``"mean"`` scores the mean
    leaf value and accepts no ``base_score``/``learning_rate``.  The constructor validates
    everything and raises :class:`ModelValidationError`.
    """

    __slots__ = ("_base_score", "_learning_rate", "_mode", "_name", "_trees", "_version")

    def __init__(
        self,
        name: str,
        version: int,
        trees: Sequence[Sequence[Mapping[str, object]]],
        *,
        mode: str = "sum",
        base_score: float | None = None,
        learning_rate: float | None = None,
    ) -> None:
        _check_identity(name, version)
        if mode not in _TREE_MODES:
            raise ModelValidationError(f"mode must be 'sum' or 'mean', got {mode!r}")
        if mode == "mean" and (base_score is not None or learning_rate is not None):
            raise ModelValidationError("base_score and learning_rate are only valid in mode 'sum'")
        if isinstance(trees, (str, bytes)) or not isinstance(trees, Sequence):
            raise ModelValidationError(f"trees must be an array, got {type(trees).__name__}")
        if not trees:
            raise ModelValidationError("ensemble has no trees")
        self._name = name
        self._version = version
        self._mode = mode
        self._base_score = 0.0 if base_score is None else _number(base_score, "base_score")
        self._learning_rate = (
            1.0 if learning_rate is None else _number(learning_rate, "learning_rate")
        )
        if self._learning_rate <= 0.0:
            raise ModelValidationError(f"learning_rate must be > 0, got {self._learning_rate!r}")
        self._trees = tuple(_compile_tree(nodes, t) for t, nodes in enumerate(trees))

    @property
    def name(self) -> str:
        """The model's name."""
        return self._name

    @property
    def version(self) -> int:
        """The model's version."""
        return self._version

    @property
    def type(self) -> str:
        """Always ``"tree_ensemble"``."""
        return TREE_ENSEMBLE

    @property
    def mode(self) -> str:
        """``"sum"`` (gradient boosting) or ``"mean"`` (random forest)."""
        return self._mode

    @property
    def base_score(self) -> float:
        """Constant added to the scaled sum of leaves in mode ``"sum"`` (0 in mode ``"mean"``)."""
        return self._base_score

    @property
    def learning_rate(self) -> float:
        """Factor applied to the sum of leaves in mode ``"sum"`` (1 in mode ``"mean"``)."""
        return self._learning_rate

    @property
    def num_trees(self) -> int:
        """Number of trees in the ensemble."""
        return len(self._trees)

    def leaf_values(self, features: Sequence[float]) -> list[float]:
        """Return the value of the leaf reached in each tree, in tree order."""
        _check_feature_count(features)
        out: list[float] = []
        for tree in self._trees:
            feature, threshold, left, right = tree.feature, tree.threshold, tree.left, tree.right
            i = 0
            while (nxt := left[i]) >= 0:
                i = nxt if features[feature[i]] <= threshold[i] else right[i]
            out.append(tree.value[i])
        return out

    def score(self, features: Sequence[float]) -> float:
        """Return the ensemble's prediction for ``features``."""
        leaves = self.leaf_values(features)
        if self._mode == "sum":
            return self._base_score + self._learning_rate * sum(leaves)
        return sum(leaves) / len(leaves)

    def to_message(self) -> ModelMessage:
        """Return the :class:`ModelMessage` describing this model (features as indices)."""
        params: dict[str, Any] = {
            "trees": [[dict(node) for node in tree.nodes] for tree in self._trees],
            "mode": self._mode,
        }
        if self._mode == "sum":
            params["base_score"] = self._base_score
            params["learning_rate"] = self._learning_rate
        return ModelMessage(self._name, self._version, self.type, params)

    @classmethod
    def from_message(cls, msg: ModelMessage) -> TreeEnsembleModel:
        """Build the model from ``msg.params`` (see the module docstring)."""
        params = msg.params
        _check_keys(params, "params", ("trees",), ("mode", "base_score", "learning_rate"))
        return cls(
            msg.name,
            msg.version,
            params["trees"],
            mode=params.get("mode", "sum"),
            base_score=params.get("base_score"),
            learning_rate=params.get("learning_rate"),
        )

    def __repr__(self) -> str:
        return (
            f"TreeEnsembleModel(name={self._name!r}, version={self._version}, "
            f"mode={self._mode!r}, trees={len(self._trees)})"
        )


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, ModelFactory] = {}


def register_model_type(type_name: str, factory: ModelFactory, *, replace: bool = False) -> None:
    """Make :func:`parse_model` build messages of type ``type_name`` with ``factory``.

    ``factory`` receives a :class:`ModelMessage` whose envelope is valid and should raise
    :class:`ModelValidationError` for bad params (other exceptions are wrapped into one).
    Registering an existing type raises :class:`ValueError` unless ``replace`` is true.
    """
    if not isinstance(type_name, str) or not type_name:
        raise ValueError(f"model type name must be a non-empty str, got {type_name!r}")
    if type_name in _REGISTRY and not replace:
        raise ValueError(f"model type {type_name!r} is already registered")
    _REGISTRY[type_name] = factory


def unregister_model_type(type_name: str) -> None:
    """Remove the factory for ``type_name``; raises :class:`KeyError` if none is registered."""
    try:
        del _REGISTRY[type_name]
    except KeyError:
        raise KeyError(f"model type {type_name!r} is not registered") from None


def registered_model_types() -> tuple[str, ...]:
    """Return the registered model type names, sorted."""
    return tuple(sorted(_REGISTRY))


register_model_type(LINEAR_REGRESSION, LinearRegressionModel.from_message)
register_model_type(LOGISTIC_REGRESSION, LogisticRegressionModel.from_message)
register_model_type(TREE_ENSEMBLE, TreeEnsembleModel.from_message)


def parse_model(msg: bytes | bytearray | memoryview | ModelMessage) -> Model:
    """Validate a model message (raw msgpack bytes or a :class:`ModelMessage`) into a model.

    Raises :class:`ModelValidationError` whose message says what is wrong: a malformed
    message, an unknown model type (the message lists the known ones) or invalid parameters
    (prefixed ``"invalid <type> model '<name>' v<version>: "``).
    """
    if not isinstance(msg, ModelMessage):
        msg = decode_model(msg)
    else:
        try:
            _check_envelope(msg.name, msg.version, msg.type, msg.params)
        except ModelValidationError as exc:
            raise ModelValidationError(f"malformed model message: {exc}") from None
    factory = _REGISTRY.get(msg.type)
    if factory is None:
        known = ", ".join(registered_model_types()) or "none"
        raise ModelValidationError(f"unknown model type {msg.type!r} (known: {known})")
    prefix = f"invalid {msg.type} model {msg.name!r} v{msg.version}"
    try:
        model = factory(msg)
    except Exception as exc:  # a plug-in factory may raise anything: report, don't crash
        reason = str(exc) if isinstance(exc, ModelValidationError) else f"{exc!r}"
        raise ModelValidationError(f"{prefix}: {reason}") from exc
    if not isinstance(model, Model):
        raise ModelValidationError(
            f"{prefix}: factory returned {type(model).__name__}, not a Model"
        )
    return model


# --------------------------------------------------------------------------- scoring helper


def score_record(
    model: Model, record: DataRecord, *, now_ms: Callable[[], int] | None = None
) -> ScoredRecord:
    """Score ``record`` with ``model`` and return a :class:`ScoredRecord`.

    ``scoring_time_us`` is the time spent in ``model.score`` (``time.perf_counter_ns``);
    ``scored_ts_ms`` comes from ``now_ms()`` (default: wall clock, epoch milliseconds).
    """
    start = time.perf_counter_ns()
    value = model.score(record.features)
    elapsed_us = (time.perf_counter_ns() - start) / 1000.0
    scored_ts = now_ms() if now_ms is not None else time.time_ns() // 1_000_000
    return ScoredRecord(
        id=record.id,
        score=value,
        model_name=model.name,
        model_version=model.version,
        event_ts_ms=record.ts_ms,
        scored_ts_ms=scored_ts,
        scoring_time_us=elapsed_us,
    )


# --------------------------------------------------------------------------- examples

# Ordinary least squares on the red wine-quality data set (rounded); predicts quality 3..8.
_EXAMPLE_LINEAR_WEIGHTS: Final = (
    0.025,  # fixed_acidity
    -1.084,  # volatile_acidity
    -0.183,  # citric_acid
    0.016,  # residual_sugar
    -1.874,  # chlorides
    0.0044,  # free_sulfur_dioxide
    -0.0033,  # total_sulfur_dioxide
    -17.88,  # density
    -0.414,  # pH
    0.916,  # sulphates
    0.276,  # alcohol
)
_EXAMPLE_LINEAR_INTERCEPT: Final = 21.965

# Hand-tuned log-odds of "good wine" (quality >= 7); about 15% positives on generated data.
_EXAMPLE_LOGISTIC_WEIGHTS: Final = (
    0.1,  # fixed_acidity
    -3.0,  # volatile_acidity
    0.5,  # citric_acid
    0.05,  # residual_sugar
    -5.0,  # chlorides
    0.01,  # free_sulfur_dioxide
    -0.012,  # total_sulfur_dioxide
    0.0,  # density
    -0.5,  # pH
    3.0,  # sulphates
    1.0,  # alcohol
)
_EXAMPLE_LOGISTIC_INTERCEPT: Final = -11.5


def _split(feature: str, threshold: float, left: int, right: int) -> dict[str, object]:
    return {"feature": feature, "threshold": threshold, "left": left, "right": right}


def _leaf(value: float) -> dict[str, object]:
    return {"value": value}


# Three hand-made boosted trees; base 5.6, learning rate 0.5 -> scores in about 4.3..7.2.
_EXAMPLE_TREES: Final = (
    (
        _split("alcohol", 10.25, 1, 2),
        _split("volatile_acidity", 0.6, 3, 4),
        _split("sulphates", 0.65, 5, 6),
        _leaf(-0.4),
        _leaf(-1.2),
        _leaf(0.4),
        _split("alcohol", 11.5, 7, 8),
        _leaf(1.2),
        _leaf(2.2),
    ),
    (
        _split("sulphates", 0.58, 1, 2),
        _leaf(-0.6),
        _split("volatile_acidity", 0.4, 3, 4),
        _leaf(0.8),
        _leaf(0.2),
    ),
    (
        _split("total_sulfur_dioxide", 60.0, 1, 2),
        _leaf(0.2),
        _split("chlorides", 0.09, 3, 4),
        _leaf(-0.2),
        _leaf(-0.8),
    ),
)


def example_linear_model(version: int = 1, name: str = "wine-linear") -> LinearRegressionModel:
    """Return a linear regression of wine quality (scores about 4..7.5 on generated records)."""
    return LinearRegressionModel(name, version, _EXAMPLE_LINEAR_WEIGHTS, _EXAMPLE_LINEAR_INTERCEPT)


def example_logistic_model(
    version: int = 1, name: str = "wine-good-logistic"
) -> LogisticRegressionModel:
    """Return a logistic model of the probability that a wine is good (quality >= 7)."""
    return LogisticRegressionModel(
        name, version, _EXAMPLE_LOGISTIC_WEIGHTS, _EXAMPLE_LOGISTIC_INTERCEPT
    )


def example_tree_model(version: int = 1, name: str = "wine-gbt") -> TreeEnsembleModel:
    """Return a small hand-made gradient-boosted ensemble of wine quality (about 4.3..7.2)."""
    return TreeEnsembleModel(
        name, version, _EXAMPLE_TREES, mode="sum", base_score=5.6, learning_rate=0.5
    )
