"""Tests for samples.model_serving.stats: counters, model tracking and timing statistics."""

from __future__ import annotations

import dataclasses
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samples.model_serving.stats import (
    DEFAULT_TIMING_WINDOW,
    ServingSnapshot,
    ServingState,
    percentile,
)


class FakeClock:
    """A settable millisecond clock."""

    def __init__(self, now: int = 1_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def test_initial_snapshot() -> None:
    clock = FakeClock(500)
    state = ServingState(clock=clock)
    clock.now = 700
    snap = state.snapshot()
    assert snap == ServingSnapshot(
        taken_ms=700,
        started_ms=500,
        model_name=None,
        model_version=None,
        model_type=None,
        model_since_ms=None,
        models_loaded=0,
        models_rejected=0,
        last_rejection_reason=None,
        last_rejection_ms=None,
        records_scored=0,
        records_unscored=0,
        timing_samples=0,
        scoring_time_mean_us=None,
        scoring_time_p99_us=None,
        scoring_time_max_us=None,
    )
    assert not snap.has_model
    assert not state.has_model
    assert state.window == DEFAULT_TIMING_WINDOW == 4096


def test_model_tracking() -> None:
    clock = FakeClock(1_000)
    state = ServingState(clock=clock)
    state.model_loaded("wine-linear", 1, "linear_regression")
    clock.now = 2_000
    snap = state.snapshot()
    assert snap.has_model and state.has_model
    assert (snap.model_name, snap.model_version, snap.model_type) == (
        "wine-linear",
        1,
        "linear_regression",
    )
    assert snap.model_since_ms == 1_000
    assert snap.models_loaded == 1

    state.model_loaded("wine-gbt", 2, "tree_ensemble", at_ms=1_500)
    snap = state.snapshot()
    assert (snap.model_name, snap.model_version, snap.model_since_ms) == ("wine-gbt", 2, 1_500)
    assert snap.models_loaded == 2


def test_rejections_keep_current_model() -> None:
    clock = FakeClock(10)
    state = ServingState(clock=clock)
    state.model_loaded("m", 1, "linear_regression")
    state.model_rejected("unknown model type 'svm'")
    clock.now = 20
    state.model_rejected("expected 11 weights, got 3", at_ms=15)
    snap = state.snapshot()
    assert snap.models_rejected == 2
    assert snap.last_rejection_reason == "expected 11 weights, got 3"
    assert snap.last_rejection_ms == 15
    assert (snap.model_name, snap.model_version) == ("m", 1)


def test_record_counters() -> None:
    state = ServingState()
    state.record_unscored()
    state.record_unscored(3)
    for t in (1.0, 2.0, 3.0):
        state.record_scored(t)
    snap = state.snapshot()
    assert (snap.records_scored, snap.records_unscored) == (3, 4)
    assert (state.records_scored, state.records_unscored) == (3, 4)
    assert snap.scoring_time_mean_us == 2.0
    assert snap.scoring_time_max_us == 3.0
    assert snap.timing_samples == 3


def test_mean_and_p99_on_known_values() -> None:
    state = ServingState()
    for t in range(100, 0, -1):  # 100 .. 1, order must not matter
        state.record_scored(float(t))
    snap = state.snapshot()
    assert snap.scoring_time_mean_us == 50.5
    assert snap.scoring_time_p99_us == 99.0  # nearest rank: ceil(0.99 * 100) = 99th value
    assert snap.scoring_time_max_us == 100.0

    state = ServingState()
    for t in range(1, 1_001):
        state.record_scored(float(t))
    assert state.snapshot().scoring_time_p99_us == 990.0


def test_ring_keeps_only_the_last_window_samples() -> None:
    state = ServingState(window=4)
    for t in range(1, 11):
        state.record_scored(float(t))
    assert state.recent_timings() == [7.0, 8.0, 9.0, 10.0]
    snap = state.snapshot()
    assert snap.records_scored == 10
    assert snap.timing_samples == 4
    assert snap.scoring_time_mean_us == 8.5
    assert snap.scoring_time_p99_us == 10.0
    state.record_scored(0.5)
    assert state.recent_timings() == [8.0, 9.0, 10.0, 0.5]
    assert state.snapshot().scoring_time_max_us == 10.0


def test_default_window_is_bounded() -> None:
    state = ServingState()
    for t in range(10_000):
        state.record_scored(float(t))
    snap = state.snapshot()
    assert snap.timing_samples == 4096
    assert snap.scoring_time_mean_us == pytest.approx((10_000 - 4096 + 9_999) / 2)
    assert snap.records_scored == 10_000


@given(
    window=st.integers(min_value=1, max_value=50),
    samples=st.lists(st.floats(min_value=0, max_value=1e6), max_size=200),
)
def test_statistics_match_reference(window: int, samples: list[float]) -> None:
    state = ServingState(window=window)
    for t in samples:
        state.record_scored(t)
    kept = samples[-window:] if samples else []
    assert state.recent_timings() == kept
    snap = state.snapshot()
    assert snap.timing_samples == len(kept)
    if kept:
        ordered = sorted(kept)
        assert snap.scoring_time_mean_us == pytest.approx(math.fsum(kept) / len(kept))
        assert snap.scoring_time_max_us == ordered[-1]
        assert snap.scoring_time_p99_us == ordered[math.ceil(0.99 * len(kept)) - 1]
        # at least 99% of the samples are <= p99
        assert sum(t <= snap.scoring_time_p99_us for t in kept) >= 0.99 * len(kept)
    else:
        assert snap.scoring_time_p99_us is None


def test_percentile() -> None:
    assert percentile([5.0], 99.0) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50.0) == 2.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 100.0) == 4.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.1) == 1.0
    with pytest.raises(ValueError, match="percentile of an empty list"):
        percentile([], 50.0)
    with pytest.raises(ValueError, match=r"q must be in \(0, 100\], got 0"):
        percentile([1.0], 0)
    with pytest.raises(ValueError, match=r"q must be in \(0, 100\], got 101"):
        percentile([1.0], 101)


def test_snapshot_is_frozen_and_independent() -> None:
    state = ServingState(clock=FakeClock())
    state.record_scored(4.0)
    snap = state.snapshot()
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.records_scored = 5  # type: ignore[misc]
    state.record_scored(8.0)
    assert snap.records_scored == 1  # later updates do not leak into old snapshots
    as_dict = snap.to_dict()
    assert as_dict["records_scored"] == 1
    assert as_dict["scoring_time_mean_us"] == 4.0
    assert set(as_dict) == {f.name for f in dataclasses.fields(ServingSnapshot)}


@pytest.mark.parametrize("window", [0, -1, 2.5, True])
def test_window_validation(window: object) -> None:
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        ServingState(window=window)  # type: ignore[arg-type]


def test_repr() -> None:
    state = ServingState()
    assert repr(state) == "ServingState(model=None, scored=0, unscored=0, rejected=0)"
    state.model_loaded("m", 3, "tree_ensemble")
    state.record_scored(1.0)
    assert repr(state) == "ServingState(model='m' v3, scored=1, unscored=0, rejected=0)"


def test_wall_clock_default() -> None:
    state = ServingState()
    snap = state.snapshot()
    assert snap.taken_ms >= snap.started_ms > 1_600_000_000_000
