"""The demo's summary: latency over the whole run in bounded memory, and a rejection reason
shown in full (wrapped, never cut)."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samples.model_serving.demo import VALUE_WIDTH, DemoSummary
from samples.model_serving.service import LatencyWindow
from samples.model_serving.stats import LogHistogram, percentile


def test_whole_run_latency_is_not_only_the_recent_window() -> None:
    window = LatencyWindow(size=2048)
    for _ in range(3000):
        window.record(1000.0)  # a slow start ...
    for _ in range(2048):
        window.record(1.0)  # ... then 2,048 fast records fill the recent window
    assert window.percentile(50) == 1.0  # the live display: recent records
    assert window.whole_run.count == window.count == 5048
    assert window.whole_run.percentile(50) == pytest.approx(1000.0, rel=0.005)
    assert window.whole_run.percentile(99) == pytest.approx(1000.0, rel=0.005)
    assert window.whole_run.percentile(40) == pytest.approx(1.0, rel=0.005)


@given(
    st.lists(st.floats(min_value=0.0, max_value=1e7, allow_nan=False), min_size=1, max_size=400),
    st.floats(min_value=0.1, max_value=100.0),
)
def test_histogram_quantiles_are_within_half_the_precision(values: list[float], q: float) -> None:
    hist = LogHistogram(precision=0.01, smallest=1e-3)
    for v in values:
        hist.record(v)
    exact = percentile(sorted(values), q)
    got = hist.percentile(q)
    assert got is not None
    if exact <= 1e-3:
        assert got <= 1e-3 * 1.01
    else:
        assert got == pytest.approx(exact, rel=0.0051)
    assert hist.percentile(100) == max(values)
    assert hist.mean() == pytest.approx(math.fsum(values) / len(values))


def test_histogram_memory_is_bounded() -> None:
    hist = LogHistogram(precision=0.01, smallest=1e-3)
    rng = random.Random(7)
    for _ in range(200_000):
        hist.record(rng.lognormvariate(2.0, 3.0))
    # 1 µs .. 3 hours in ms at 1 %: about 2,300 buckets at most, however many values.
    bound = math.log(3 * 3600 * 1000 / 1e-3) / math.log1p(0.01)
    assert hist.count == 200_000 and hist.buckets < bound


def test_histogram_empty_and_bad_arguments() -> None:
    hist = LogHistogram()
    assert hist.percentile(50) is None and hist.mean() is None
    with pytest.raises(ValueError, match="q must be in"):
        hist.percentile(0)
    with pytest.raises(ValueError, match="precision"):
        LogHistogram(precision=0)
    with pytest.raises(ValueError, match="smallest"):
        LogHistogram(smallest=0)


def test_summary_shows_the_whole_rejection_reason_wrapped() -> None:
    reason = (
        "invalid linear_regression model 'wine-linear' v2: expected 11 weights (one per "
        "feature: fixed_acidity, volatile_acidity, citric_acid, residual_sugar, chlorides, "
        "...), got 3"
    )
    table = DemoSummary(seconds=1.0, last_rejection=reason).table()
    lines = table.splitlines()
    assert len({len(line) for line in lines}) == 1  # aligned
    start = next(i for i, line in enumerate(lines) if "| last rejection" in line)
    parts = [lines[start].split("|")[2].strip()]
    for line in lines[start + 1 :]:
        key, value = line.split("|")[1:3]
        if key.strip():
            break
        parts.append(value.strip())
    assert len(parts) > 1 and all(len(p) <= VALUE_WIDTH for p in parts)
    assert " ".join(parts) == reason
    assert "…" not in table
