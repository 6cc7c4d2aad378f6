"""benchmarks.suite_observe: the metrics-on systems compute what B1/B2 compute, and the
back-pressure workload's metrics blame its slow sink."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import kafka_bench, project, suite_observe
from benchmarks.runner import REGISTRY, load_benchmarks


async def test_metrics_on_systems_agree_with_b1_and_b2() -> None:
    assert await suite_observe.b1_metrics(3000) == await project.b1_fused(3000)
    assert await suite_observe.b2_metrics(3000) == await project.b2_boundaries(3000)
    assert await suite_observe.pool_metrics(3000) == await project.balance_pool(3000)
    assert await suite_observe.b3_metrics(3000) == await project.b3_custom_stages(3000)
    assert {"observe_b1", "observe_b2", "observe_pool", "observe_b3"} <= set(REGISTRY)
    assert suite_observe.NAMES == [
        "observe_b1",
        "observe_b2",
        "observe_pool",
        "observe_b3",
        "observe_kafka",
        "observe_blame",
    ]


async def test_the_metrics_on_systems_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool's and B3's metrics-on systems run with the counters on (the snapshot keeps
    the last finished graphs that had them), and the metrics-off ones without."""
    from reactive import Materializer

    mat = Materializer.default()
    monkeypatch.setattr(mat, "metrics", False)  # (as without REACTIVE_METRICS=1)

    def kept() -> dict[str, Any]:
        return {g.name: g for g in mat.snapshot().graphs}

    for off, on in (
        (project.balance_pool, suite_observe.pool_metrics),
        (project.b3_custom_stages, suite_observe.b3_metrics),
    ):
        before = kept()
        await off(100)
        assert kept().keys() == before.keys()  # nothing kept: no metrics
        await on(100)
        (new,) = [g for name, g in kept().items() if name not in before]
        assert new.metrics and new.finished
        assert max(s.metrics.elements_in for s in new.stages if s.metrics) == 100


async def test_backpressure_workload_blames_the_slow_sink() -> None:
    stage, score = await suite_observe.blamed_in_backpressure(2000)
    assert stage == "slow_sink"
    assert score > 0.5


@pytest.mark.subprocess_only
async def test_make_bench_reports_whom_the_metrics_blame(tmp_path) -> None:
    """The ``observe_blame`` benchmark's quick run: the report's target row says the slow
    sink was blamed, with its blame share, and metrics off ran the same elements."""
    import asyncio
    import json
    import sys

    out = tmp_path / "results"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "benchmarks", "--quick", "--only", "observe_blame", "--rounds", "1"),
        *("--out", str(out), "--no-plots"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 100)
    assert proc.returncode == 0, err.decode()[-2000:]
    markdown = (out / "latest.md").read_text()
    assert "| observe_blame | metrics on | the metrics blame the slow sink" in markdown
    (bench,) = json.loads((out / "latest.json").read_text())["benchmarks"]
    (verdict,) = bench["targets"]
    assert verdict["met"] is True
    on = next(s for s in bench["systems"] if s["name"] == "metrics on")
    assert on["stats"]["blame"]["median"] > 0.5


@pytest.mark.kafka
@pytest.mark.timeout(60)
async def test_kafka_metrics_on_system_produces_the_same_records(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``observe_kafka``'s two systems once each with a tiny size on the session broker:
    both produce and commit every record, and report a finite throughput (never a speed
    check)."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    off = await kafka_bench.connectors_pipeline(300)
    on = await suite_observe.kafka_metrics(300)
    assert off.result == on.result == (300, 300)
    bench = load_benchmarks()["observe_kafka"]
    for m in (off, on):
        for metric in bench.metrics:
            assert 0 <= m.metrics[metric.name] < float("inf")
