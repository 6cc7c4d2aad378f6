"""The ``demo_soak`` benchmark (``benchmarks/suite_soak.py``): registered, tiny in --quick, a
short real run on the session broker, and a run that does not catch up is a failure."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import suite_soak
from benchmarks.runner import Options, load_benchmarks, selected_benchmarks
from samples.model_serving import demo
from samples.model_serving.demo import DemoSummary


def test_demo_soak_is_registered_ten_minutes_and_tiny_when_quick() -> None:
    bench = load_benchmarks()["demo_soak"]
    assert bench.size == 600 and bench.size_label == "seconds"
    assert bench.quick_size <= 5
    assert bench.timeout > bench.size
    [target] = bench.targets
    assert (target.metric, target.max_value) == ("final_lag", 0.0)


def test_demo_soak_is_opt_in_one_round() -> None:
    # Not part of the full run (whose results the README quotes): `make bench` runs it
    # afterwards with --only, into a folder of its own.
    registry = load_benchmarks()
    assert registry["demo_soak"].opt_in and registry["demo_soak"].max_rounds == 1
    full = selected_benchmarks(Options(), registry)
    assert "demo_soak" not in full and "b1" in full
    assert selected_benchmarks(Options(only=["demo_soak"]), registry) == ["demo_soak"]


@pytest.mark.kafka
async def test_a_short_soak_catches_up(kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    monkeypatch.setattr(suite_soak, "_RUNS", {})
    monkeypatch.setattr(suite_soak, "SAMPLE_EVERY", 0.5)
    m = await suite_soak.demo_soak(3)
    assert m.metrics["final_lag"] == 0.0
    assert m.metrics["records_scored"] > 0 and m.metrics["throughput"] > 0
    assert 0 < m.metrics["p50"] <= m.metrics["p99"]
    assert m.series is not None and len(m.series) >= 3
    assert await suite_soak.demo_soak(3) is m  # one soak per size: the rounds report it


@pytest.mark.parametrize(
    ("lag", "scored"), [(1200, 2090), (None, 2090), (0, 2089)], ids=["lag", "no-lag", "lost"]
)
async def test_a_soak_that_does_not_catch_up_fails(
    lag: int | None, scored: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def stalled_demo(seconds: float, **kwargs: Any) -> DemoSummary:
        return DemoSummary(
            seconds=seconds,
            records_loaded=2100,
            records_scored=scored,
            dead_letters=10,
            final_lag=lag,
            max_lag=1200,
        )

    monkeypatch.setattr(suite_soak, "_RUNS", {})
    monkeypatch.setattr(demo, "run_demo", stalled_demo)
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")  # not used: no broker start
    with pytest.raises(RuntimeError, match="the demo did not keep up over 4 s: .* of 2100"):
        await suite_soak.demo_soak(4)
