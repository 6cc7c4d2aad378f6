"""Data records (wine-quality schema), scored records, their msgpack codecs and a generator.

A :class:`DataRecord` carries an ``id`` (``str`` or ``int``), an event timestamp ``ts_ms``
(epoch milliseconds) and the eleven physico-chemical features of the wine-quality data set, in
the order given by :data:`FEATURES`.

Wire format (msgpack): a map with explicit field names.  The default form names every feature::

    {"id": 7, "ts_ms": 1700000000000, "fixed_acidity": 7.4, ..., "alcohol": 9.4}

and a compact form (``encode_record(rec, compact=True)``) carries them as an ordered array::

    {"id": 7, "ts_ms": 1700000000000, "features": [7.4, 0.7, ..., 9.4]}

:func:`decode_record` accepts both and raises :class:`RecordDecodeError` with a precise reason
for anything else.  A :class:`ScoredRecord` is the output of scoring one data record.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from samples.model_serving._codec import MsgpackDecodeError, pack, unpack

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

__all__ = [
    "DEFAULT_START_TS_MS",
    "FEATURES",
    "NUM_FEATURES",
    "DataRecord",
    "RecordDecodeError",
    "ScoredRecord",
    "decode_record",
    "decode_scored",
    "encode_record",
    "encode_scored",
    "generate_records",
    "iter_records",
]

FEATURES: Final[tuple[str, ...]] = (
    "fixed_acidity",
    "volatile_acidity",
    "citric_acid",
    "residual_sugar",
    "chlorides",
    "free_sulfur_dioxide",
    "total_sulfur_dioxide",
    "density",
    "pH",
    "sulphates",
    "alcohol",
)
"""Names of the eleven features, in the order used by :attr:`DataRecord.features`."""

NUM_FEATURES: Final[int] = len(FEATURES)
"""Number of features in a data record (11)."""

DEFAULT_START_TS_MS: Final[int] = 1_700_000_000_000
"""Default event timestamp of the first generated record (2023-11-14T22:13:20Z)."""

_FEATURE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(FEATURES)}


class RecordDecodeError(ValueError):
    """A data or scored record could not be decoded; the message says why."""


def _check_id(value: object, error: type[ValueError]) -> str | int:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise error(f"field 'id' must be a str or an int, got {type(value).__name__}")
    return value


def _check_int(value: object, field: str, error: type[ValueError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise error(f"field {field!r} must be an int, got {type(value).__name__}")
    return value


def _check_number(value: object, what: str, error: type[ValueError]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(f"{what} must be a number, got {type(value).__name__}")
    return float(value)


_FLOAT_ONLY: Final[frozenset[type]] = frozenset({float})


def _check_features(values: Iterable[object], error: type[ValueError]) -> tuple[float, ...]:
    items = tuple(values)
    # Fast path (performance: decoding is per record in the scoring service): only plain
    # floats, and a finite sum means every one is finite (an inf or a nan makes the sum
    # inf or nan). Anything else, or a sum that overflows, takes the checking loop.
    if (
        len(items) == NUM_FEATURES
        and _FLOAT_ONLY.issuperset(map(type, items))
        and math.isfinite(sum(items))  # type: ignore[arg-type]
    ):
        return items  # type: ignore[return-value]
    if len(items) != NUM_FEATURES:
        raise error(f"expected {NUM_FEATURES} features, got {len(items)}")
    out: list[float] = []
    for name, value in zip(FEATURES, items, strict=True):
        as_float = _check_number(value, f"feature {name!r}", error)
        if not math.isfinite(as_float):
            raise error(f"feature {name!r} must be finite, got {as_float!r}")
        out.append(as_float)
    return tuple(out)


def _make_record(rec_id: str | int, ts_ms: int, features: tuple[float, ...]) -> DataRecord:
    """Build a record from already validated parts, skipping ``__post_init__``."""
    rec = DataRecord.__new__(DataRecord)
    object.__setattr__(rec, "id", rec_id)
    object.__setattr__(rec, "ts_ms", ts_ms)
    object.__setattr__(rec, "features", features)
    return rec


@dataclass(frozen=True, slots=True)
class DataRecord:
    """One wine-quality data record.

    ``features`` holds the values of :data:`FEATURES`, in order, as finite floats.  The
    constructor validates its arguments (raising :class:`ValueError`) and converts the
    features to a tuple of floats, so ``DataRecord(1, 0, [7, 0.5, ...])`` is accepted.
    """

    id: str | int
    ts_ms: int
    features: tuple[float, ...]

    def __post_init__(self) -> None:
        _check_id(self.id, ValueError)
        _check_int(self.ts_ms, "ts_ms", ValueError)
        object.__setattr__(self, "features", _check_features(self.features, ValueError))

    def feature(self, name: str) -> float:
        """Return the value of the feature called ``name`` (one of :data:`FEATURES`)."""
        try:
            return self.features[_FEATURE_INDEX[name]]
        except KeyError:
            raise KeyError(f"unknown feature {name!r}") from None

    def as_dict(self) -> dict[str, str | int | float]:
        """Return the record as a flat dict: ``id``, ``ts_ms`` and one key per feature."""
        out: dict[str, str | int | float] = {"id": self.id, "ts_ms": self.ts_ms}
        out.update(zip(FEATURES, self.features, strict=True))
        return out


def encode_record(rec: DataRecord, *, compact: bool = False) -> bytes:
    """Encode ``rec`` as a msgpack map.

    By default every feature is a named field; with ``compact=True`` the features are sent as
    an ordered ``"features"`` array (smaller, same information).
    """
    if compact:
        return pack({"id": rec.id, "ts_ms": rec.ts_ms, "features": list(rec.features)})
    return pack(rec.as_dict())


def _decode_map(data: bytes | bytearray | memoryview) -> dict[object, object]:
    try:
        obj = unpack(data)
    except MsgpackDecodeError as exc:
        raise RecordDecodeError(str(exc)) from None
    if not isinstance(obj, dict):
        raise RecordDecodeError(f"expected a map, got {type(obj).__name__}")
    return obj


def _require(obj: Mapping[object, object], fields: Iterable[str]) -> None:
    missing = [f for f in fields if f not in obj]
    if missing:
        raise RecordDecodeError(f"missing field(s) {', '.join(missing)}")


def _decode_record(data: bytes | bytearray | memoryview) -> DataRecord:
    obj = _decode_map(data)
    _require(obj, ("id", "ts_ms"))
    rec_id = _check_id(obj["id"], RecordDecodeError)
    ts_ms = _check_int(obj["ts_ms"], "ts_ms", RecordDecodeError)
    if "features" in obj:
        named = [name for name in FEATURES if name in obj]
        if named:
            raise RecordDecodeError(
                f"both a 'features' array and named feature field(s) {', '.join(named)}"
            )
        values = obj["features"]
        if not isinstance(values, list):
            raise RecordDecodeError(
                f"field 'features' must be an array, got {type(values).__name__}"
            )
        features = _check_features(values, RecordDecodeError)
    else:
        _require(obj, FEATURES)
        features = _check_features((obj[name] for name in FEATURES), RecordDecodeError)
    return _make_record(rec_id, ts_ms, features)


def decode_record(data: bytes | bytearray | memoryview) -> DataRecord:
    """Decode a record produced by :func:`encode_record` (either form).

    Raises :class:`RecordDecodeError` (a :class:`ValueError`) whose message starts with
    ``"cannot decode data record: "`` and names the problem: malformed msgpack, not a map,
    missing fields, a wrong feature count, or a feature that is not a number or not finite.
    Unknown extra fields are ignored.
    """
    try:
        return _decode_record(data)
    except RecordDecodeError as exc:
        raise RecordDecodeError(f"cannot decode data record: {exc}") from None


@dataclass(frozen=True, slots=True)
class ScoredRecord:
    """The result of scoring one :class:`DataRecord`.

    ``event_ts_ms`` is the data record's event timestamp, ``scored_ts_ms`` the wall-clock time
    of scoring and ``scoring_time_us`` (optional) how long the model took, in microseconds.
    """

    id: str | int
    score: float
    model_name: str
    model_version: int
    event_ts_ms: int
    scored_ts_ms: int
    scoring_time_us: float | None = None

    @property
    def latency_ms(self) -> int:
        """Milliseconds from the record's event time to its scoring."""
        return self.scored_ts_ms - self.event_ts_ms


_SCORED_FIELDS: Final[tuple[str, ...]] = (
    "id",
    "score",
    "model_name",
    "model_version",
    "event_ts_ms",
    "scored_ts_ms",
)


def encode_scored(rec: ScoredRecord) -> bytes:
    """Encode ``rec`` as a msgpack map with one named field per attribute.

    ``scoring_time_us`` is omitted when it is ``None``.
    """
    out: dict[str, object] = {
        "id": rec.id,
        "score": rec.score,
        "model_name": rec.model_name,
        "model_version": rec.model_version,
        "event_ts_ms": rec.event_ts_ms,
        "scored_ts_ms": rec.scored_ts_ms,
    }
    if rec.scoring_time_us is not None:
        out["scoring_time_us"] = rec.scoring_time_us
    return pack(out)


def _decode_scored(data: bytes | bytearray | memoryview) -> ScoredRecord:
    obj = _decode_map(data)
    _require(obj, _SCORED_FIELDS)
    rec_id = _check_id(obj["id"], RecordDecodeError)
    score = _check_number(obj["score"], "field 'score'", RecordDecodeError)
    model_name = obj["model_name"]
    if not isinstance(model_name, str):
        raise RecordDecodeError(
            f"field 'model_name' must be a str, got {type(model_name).__name__}"
        )
    timing = obj.get("scoring_time_us")
    return ScoredRecord(
        id=rec_id,
        score=score,
        model_name=model_name,
        model_version=_check_int(obj["model_version"], "model_version", RecordDecodeError),
        event_ts_ms=_check_int(obj["event_ts_ms"], "event_ts_ms", RecordDecodeError),
        scored_ts_ms=_check_int(obj["scored_ts_ms"], "scored_ts_ms", RecordDecodeError),
        scoring_time_us=(
            None
            if timing is None
            else _check_number(timing, "field 'scoring_time_us'", RecordDecodeError)
        ),
    )


def decode_scored(data: bytes | bytearray | memoryview) -> ScoredRecord:
    """Decode a record produced by :func:`encode_scored`.

    Raises :class:`RecordDecodeError` (message prefixed ``"cannot decode scored record: "``)
    for malformed msgpack, a non-map, missing fields or fields of the wrong type.
    """
    try:
        return _decode_scored(data)
    except RecordDecodeError as exc:
        raise RecordDecodeError(f"cannot decode scored record: {exc}") from None


# --------------------------------------------------------------------------- generator

# Per feature: (mean, standard deviation, minimum, maximum, decimals), modelled on the red
# wine-quality data set.  Some features are then adjusted to mimic its main correlations.
_DISTRIBUTION: Final[tuple[tuple[float, float, float, float, int], ...]] = (
    (8.3, 1.7, 4.6, 15.9, 1),  # fixed_acidity (g/dm3 tartaric acid)
    (0.53, 0.18, 0.12, 1.58, 3),  # volatile_acidity (g/dm3 acetic acid)
    (0.27, 0.19, 0.0, 1.0, 2),  # citric_acid (g/dm3)
    (2.5, 1.2, 0.9, 15.5, 1),  # residual_sugar (g/dm3)
    (0.087, 0.03, 0.012, 0.611, 3),  # chlorides (g/dm3 sodium chloride)
    (15.9, 10.0, 1.0, 72.0, 0),  # free_sulfur_dioxide (mg/dm3)
    (46.0, 30.0, 6.0, 289.0, 0),  # total_sulfur_dioxide (mg/dm3)
    (0.9967, 0.0019, 0.990, 1.004, 5),  # density (g/cm3)
    (3.31, 0.15, 2.74, 4.01, 2),  # pH
    (0.66, 0.17, 0.33, 2.0, 2),  # sulphates (g/dm3 potassium sulphate)
    (10.4, 1.05, 8.4, 14.9, 1),  # alcohol (% vol)
)


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(value, high))


def _draw(rng: random.Random, index: int, shift: float = 0.0) -> float:
    mean, sd, low, high, decimals = _DISTRIBUTION[index]
    value = _clip(rng.gauss(mean + shift, sd), low, high)
    return round(value, decimals)


def _synthetic_features(rng: random.Random) -> tuple[float, ...]:
    fixed = _draw(rng, 0)
    acid_z = (fixed - 8.3) / 1.7
    volatile = _draw(rng, 1, shift=-0.05 * acid_z)
    citric = _draw(rng, 2, shift=0.12 * acid_z)
    sugar = _draw(rng, 3)
    chlorides = _draw(rng, 4)
    free_so2 = _draw(rng, 5)
    total_so2 = max(_draw(rng, 6, shift=1.5 * (free_so2 - 15.9)), free_so2 + 2.0)
    alcohol = _draw(rng, 10)
    # Density rises with sugar and falls with alcohol, as in real wine.
    density_shift = 0.0004 * (sugar - 2.5) - 0.0011 * (alcohol - 10.4) + 0.0007 * acid_z
    _, sd, low, high, decimals = _DISTRIBUTION[7]
    density = round(_clip(0.9967 + density_shift + rng.gauss(0.0, sd * 0.6), low, high), decimals)
    ph = _draw(rng, 8, shift=-0.1 * acid_z)
    sulphates = _draw(rng, 9)
    return (
        fixed,
        volatile,
        citric,
        sugar,
        chlorides,
        free_so2,
        total_so2,
        density,
        ph,
        sulphates,
        alcohol,
    )


def iter_records(
    seed: int = 0,
    *,
    start_ts_ms: int = DEFAULT_START_TS_MS,
    interval_ms: int = 100,
    start_id: int = 0,
) -> Iterator[DataRecord]:
    """Yield an infinite, deterministic stream of synthetic wine-like records.

    Record ``i`` (counting from 0) has ``id == start_id + i`` and
    ``ts_ms == start_ts_ms + i * interval_ms``; its features are drawn from
    ``random.Random(seed)`` with realistic ranges and correlations of red wine.  The same
    arguments always produce the same sequence.
    """
    rng = random.Random(seed)
    for i in itertools.count():
        yield _make_record(start_id + i, start_ts_ms + i * interval_ms, _synthetic_features(rng))


def generate_records(
    n: int,
    seed: int = 0,
    start_ts_ms: int = DEFAULT_START_TS_MS,
    *,
    interval_ms: int = 100,
    start_id: int = 0,
) -> list[DataRecord]:
    """Return the first ``n`` records of :func:`iter_records` with the same arguments."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return list(
        itertools.islice(
            iter_records(seed, start_ts_ms=start_ts_ms, interval_ms=interval_ms, start_id=start_id),
            n,
        )
    )
