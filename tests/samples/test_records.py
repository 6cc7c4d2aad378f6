"""Tests for samples.model_serving.records: records, codecs and the synthetic generator."""

from __future__ import annotations

import itertools
import math
import re

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from samples.model_serving.records import (
    DEFAULT_START_TS_MS,
    FEATURES,
    NUM_FEATURES,
    DataRecord,
    RecordDecodeError,
    ScoredRecord,
    decode_record,
    decode_scored,
    encode_record,
    encode_scored,
    generate_records,
    iter_records,
)

WINE = (7.4, 0.7, 0.0, 1.9, 0.076, 11.0, 34.0, 0.9978, 3.51, 0.56, 9.4)


def _named(**overrides: object) -> dict[str, object]:
    out: dict[str, object] = {"id": 1, "ts_ms": 5}
    out.update(zip(FEATURES, WINE, strict=True))
    out.update(overrides)
    return out


ids = st.one_of(st.text(max_size=20), st.integers(min_value=-(2**63), max_value=2**64 - 1))
timestamps = st.integers(min_value=-(2**63), max_value=2**63 - 1)
finite = st.floats(allow_nan=False, allow_infinity=False)
feature_tuples = st.lists(finite, min_size=NUM_FEATURES, max_size=NUM_FEATURES).map(tuple)


def test_feature_schema() -> None:
    assert NUM_FEATURES == 11
    assert FEATURES[0] == "fixed_acidity"
    assert FEATURES[8] == "pH"
    assert FEATURES[-1] == "alcohol"
    assert len(set(FEATURES)) == 11


def test_data_record_coerces_features_to_float_tuple() -> None:
    rec = DataRecord("a", 3, [7, 0.7, 0, 1.9, 0.076, 11, 34, 0.9978, 3.51, 0.56, 9.4])  # type: ignore[arg-type]
    assert rec.features == (7.0, *WINE[1:])
    assert all(type(f) is float for f in rec.features)
    assert rec.feature("pH") == 3.51
    assert rec.feature("alcohol") == 9.4
    assert rec.as_dict()["id"] == "a"
    assert rec.as_dict()["density"] == 0.9978
    with pytest.raises(KeyError, match="unknown feature 'ph'"):
        rec.feature("ph")


@pytest.mark.parametrize(
    ("rec_id", "ts_ms", "features", "message"),
    [
        (1.5, 0, WINE, "field 'id' must be a str or an int, got float"),
        (True, 0, WINE, "field 'id' must be a str or an int, got bool"),
        (1, 2.0, WINE, "field 'ts_ms' must be an int, got float"),
        (1, 0, WINE[:10], "expected 11 features, got 10"),
        (1, 0, (*WINE, 1.0), "expected 11 features, got 12"),
        (1, 0, ("7.4", *WINE[1:]), "feature 'fixed_acidity' must be a number, got str"),
        (1, 0, (*WINE[:10], False), "feature 'alcohol' must be a number, got bool"),
        (1, 0, (*WINE[:8], math.nan, *WINE[9:]), "feature 'pH' must be finite, got nan"),
        (1, 0, (math.inf, *WINE[1:]), "feature 'fixed_acidity' must be finite, got inf"),
    ],
)
def test_data_record_validation(
    rec_id: object, ts_ms: object, features: object, message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        DataRecord(rec_id, ts_ms, features)  # type: ignore[arg-type]


def test_data_record_is_frozen() -> None:
    rec = DataRecord(1, 2, WINE)
    with pytest.raises(AttributeError):
        rec.ts_ms = 3  # type: ignore[misc]


def test_encoded_record_has_named_fields() -> None:
    rec = DataRecord(42, 1_000, WINE)
    assert msgpack.unpackb(encode_record(rec)) == _named(id=42, ts_ms=1_000)
    assert msgpack.unpackb(encode_record(rec, compact=True)) == {
        "id": 42,
        "ts_ms": 1_000,
        "features": list(WINE),
    }


@given(rec_id=ids, ts_ms=timestamps, features=feature_tuples, compact=st.booleans())
def test_record_round_trip(
    rec_id: str | int, ts_ms: int, features: tuple[float, ...], compact: bool
) -> None:
    rec = DataRecord(rec_id, ts_ms, features)
    decoded = decode_record(encode_record(rec, compact=compact))
    assert decoded == rec
    assert type(decoded.id) is type(rec.id)


def test_decode_accepts_ints_and_ignores_unknown_fields() -> None:
    data = msgpack.packb(_named(alcohol=10, source="lab-3"))
    rec = decode_record(data)
    assert rec.feature("alcohol") == 10.0
    assert type(rec.feature("alcohol")) is float
    assert decode_record(bytearray(data)) == rec
    assert decode_record(memoryview(data)) == rec


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed msgpack: Unpack failed: incomplete input"),
        (b"\xc1", "malformed msgpack: invalid type byte"),
        (msgpack.packb(1) + b"\x01", "malformed msgpack: trailing bytes after the object"),
        (b"\xa2\xff\xfe", "malformed msgpack: 'utf-8' codec can't decode byte 0xff"),
        ("not bytes", "expected bytes, got str"),
        (msgpack.packb([1, 2, 3]), "expected a map, got list"),
        (msgpack.packb({"ts_ms": 1}), "missing field(s) id"),
        (msgpack.packb({}), "missing field(s) id, ts_ms"),
        (msgpack.packb({k: v for k, v in _named().items() if k != "pH"}), "missing field(s) pH"),
        (msgpack.packb({"id": 1, "ts_ms": 2}), "missing field(s) fixed_acidity, volatile_acidity"),
        (msgpack.packb(_named(id=None)), "field 'id' must be a str or an int, got NoneType"),
        (msgpack.packb(_named(ts_ms="now")), "field 'ts_ms' must be an int, got str"),
        (msgpack.packb(_named(ts_ms=1.0)), "field 'ts_ms' must be an int, got float"),
        (msgpack.packb(_named(density="1.0")), "feature 'density' must be a number, got str"),
        (msgpack.packb(_named(density=True)), "feature 'density' must be a number, got bool"),
        (msgpack.packb(_named(chlorides=math.nan)), "feature 'chlorides' must be finite, got nan"),
        (msgpack.packb(_named(alcohol=-math.inf)), "feature 'alcohol' must be finite, got -inf"),
        (
            msgpack.packb({"id": 1, "ts_ms": 2, "features": list(WINE[:10])}),
            "expected 11 features, got 10",
        ),
        (
            msgpack.packb({"id": 1, "ts_ms": 2, "features": [*WINE, 0.0]}),
            "expected 11 features, got 12",
        ),
        (
            msgpack.packb({"id": 1, "ts_ms": 2, "features": {"pH": 3.0}}),
            "field 'features' must be an array, got dict",
        ),
        (
            msgpack.packb({"id": 1, "ts_ms": 2, "features": list(WINE), "pH": 3.0}),
            "both a 'features' array and named feature field(s) pH",
        ),
        (
            msgpack.packb({"id": 1, "ts_ms": 2, "features": [None, *WINE[1:]]}),
            "feature 'fixed_acidity' must be a number, got NoneType",
        ),
    ],
)
def test_decode_record_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RecordDecodeError) as info:
        decode_record(data)
    assert str(info.value).startswith("cannot decode data record: " + reason)
    assert isinstance(info.value, ValueError)


def test_scored_record_round_trip_and_latency() -> None:
    rec = ScoredRecord("w-1", 5.75, "wine-linear", 3, 1_000, 1_250, 12.5)
    assert rec.latency_ms == 250
    assert decode_scored(encode_scored(rec)) == rec
    assert msgpack.unpackb(encode_scored(rec))["scoring_time_us"] == 12.5
    untimed = ScoredRecord(7, 0.25, "m", 0, 10, 10)
    assert "scoring_time_us" not in msgpack.unpackb(encode_scored(untimed))
    assert decode_scored(encode_scored(untimed)) == untimed


@given(
    rec_id=ids,
    score=finite,
    name=st.text(max_size=10),
    version=st.integers(min_value=0, max_value=2**31),
    event=timestamps,
    scored=timestamps,
    timing=st.none() | st.floats(min_value=0, max_value=1e9),
)
def test_scored_round_trip_property(
    rec_id: str | int,
    score: float,
    name: str,
    version: int,
    event: int,
    scored: int,
    timing: float | None,
) -> None:
    rec = ScoredRecord(rec_id, score, name, version, event, scored, timing)
    assert decode_scored(encode_scored(rec)) == rec


_SCORED = {
    "id": 1,
    "score": 5.0,
    "model_name": "m",
    "model_version": 1,
    "event_ts_ms": 1,
    "scored_ts_ms": 2,
}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x92\x01", "malformed msgpack: Unpack failed: incomplete input"),
        (msgpack.packb("x"), "expected a map, got str"),
        (msgpack.packb({"id": 1}), "missing field(s) score, model_name, model_version"),
        (msgpack.packb({**_SCORED, "score": "5"}), "field 'score' must be a number, got str"),
        (msgpack.packb({**_SCORED, "model_name": 3}), "field 'model_name' must be a str, got int"),
        (
            msgpack.packb({**_SCORED, "model_version": "1"}),
            "field 'model_version' must be an int, got str",
        ),
        (
            msgpack.packb({**_SCORED, "event_ts_ms": 1.5}),
            "field 'event_ts_ms' must be an int, got float",
        ),
        (
            msgpack.packb({**_SCORED, "scored_ts_ms": None}),
            "field 'scored_ts_ms' must be an int, got NoneType",
        ),
        (
            msgpack.packb({**_SCORED, "scoring_time_us": "fast"}),
            "field 'scoring_time_us' must be a number, got str",
        ),
        (msgpack.packb({**_SCORED, "id": [1]}), "field 'id' must be a str or an int, got list"),
    ],
)
def test_decode_scored_errors(data: bytes, reason: str) -> None:
    with pytest.raises(RecordDecodeError) as info:
        decode_scored(data)
    assert str(info.value).startswith("cannot decode scored record: " + reason)


# --------------------------------------------------------------------------- generator

# Plausible physical bounds for each feature (generous versions of the red wine data set's).
BOUNDS = {
    "fixed_acidity": (4.6, 15.9),
    "volatile_acidity": (0.12, 1.58),
    "citric_acid": (0.0, 1.0),
    "residual_sugar": (0.9, 15.5),
    "chlorides": (0.012, 0.611),
    "free_sulfur_dioxide": (1.0, 72.0),
    "total_sulfur_dioxide": (6.0, 289.0),
    "density": (0.990, 1.004),
    "pH": (2.74, 4.01),
    "sulphates": (0.33, 2.0),
    "alcohol": (8.4, 14.9),
}


def test_generator_is_deterministic_per_seed() -> None:
    assert generate_records(200, seed=7) == generate_records(200, seed=7)
    assert generate_records(50, seed=7) != generate_records(50, seed=8)
    assert generate_records(0) == []
    assert generate_records(3) == generate_records(3, seed=0)


def test_iter_records_matches_generate_records() -> None:
    first = list(itertools.islice(iter_records(11), 300))
    assert first == generate_records(300, seed=11)


def test_generator_ids_and_timestamps() -> None:
    recs = generate_records(5, seed=1, start_ts_ms=1_000, interval_ms=10, start_id=100)
    assert [r.id for r in recs] == [100, 101, 102, 103, 104]
    assert [r.ts_ms for r in recs] == [1_000, 1_010, 1_020, 1_030, 1_040]
    default = generate_records(2)
    assert [r.ts_ms for r in default] == [DEFAULT_START_TS_MS, DEFAULT_START_TS_MS + 100]


def test_generator_rejects_negative_count() -> None:
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        generate_records(-1)


def test_generator_produces_wine_like_values() -> None:
    recs = generate_records(2_000, seed=3)
    for i, name in enumerate(FEATURES):
        low, high = BOUNDS[name]
        values = [r.features[i] for r in recs]
        assert low <= min(values) and max(values) <= high, name
        assert len(set(values)) > 10, name  # not degenerate
    mean_alcohol = sum(r.feature("alcohol") for r in recs) / len(recs)
    assert 10.0 < mean_alcohol < 10.8
    assert all(r.feature("total_sulfur_dioxide") >= r.feature("free_sulfur_dioxide") for r in recs)
    # Density falls as alcohol rises, as in real wine.
    light = [r.feature("density") for r in recs if r.feature("alcohol") >= 11.5]
    heavy = [r.feature("density") for r in recs if r.feature("alcohol") <= 9.5]
    assert sum(light) / len(light) < sum(heavy) / len(heavy)
    # Generated records survive the codec unchanged.
    assert [decode_record(encode_record(r)) for r in recs[:50]] == recs[:50]
