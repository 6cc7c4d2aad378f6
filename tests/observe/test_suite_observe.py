"""benchmarks.suite_observe: the metrics-on systems compute what B1/B2 compute, and the
back-pressure workload's metrics blame its slow sink."""

from __future__ import annotations

from benchmarks import project, suite_observe
from benchmarks.runner import REGISTRY


async def test_metrics_on_systems_agree_with_b1_and_b2() -> None:
    assert await suite_observe.b1_metrics(3000) == await project.b1_fused(3000)
    assert await suite_observe.b2_metrics(3000) == await project.b2_boundaries(3000)
    assert {"observe_b1", "observe_b2"} <= set(REGISTRY)
    assert suite_observe.NAMES == ["observe_b1", "observe_b2"]


async def test_backpressure_workload_blames_the_slow_sink() -> None:
    stage, score = await suite_observe.blamed_in_backpressure(2000)
    assert stage == "slow_sink"
    assert score > 0.5
