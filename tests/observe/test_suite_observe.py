"""benchmarks.suite_observe: the metrics-on systems compute what B1/B2 compute, and the
back-pressure workload's metrics blame its slow sink."""

from __future__ import annotations

from benchmarks import project, suite_observe
from benchmarks.runner import REGISTRY


async def test_metrics_on_systems_agree_with_b1_and_b2() -> None:
    assert await suite_observe.b1_metrics(3000) == await project.b1_fused(3000)
    assert await suite_observe.b2_metrics(3000) == await project.b2_boundaries(3000)
    assert {"observe_b1", "observe_b2"} <= set(REGISTRY)
    assert suite_observe.NAMES == ["observe_b1", "observe_b2", "observe_blame"]


async def test_backpressure_workload_blames_the_slow_sink() -> None:
    stage, score = await suite_observe.blamed_in_backpressure(2000)
    assert stage == "slow_sink"
    assert score > 0.5


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
