"""Smoke test of the ``slow_consumer`` benchmark (``benchmarks/suite_slow_consumer.py``):
both systems once with a tiny size on their own proxied broker; figures only, never a speed."""

from __future__ import annotations

import pytest

from benchmarks import suite_slow_consumer
from benchmarks.runner import load_benchmarks

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(60)]


async def test_slow_consumer_systems_produce_figures() -> None:
    bench = load_benchmarks()["slow_consumer"]
    for system in ("raw aiokafka loop", "connectors"):
        run = getattr(suite_slow_consumer, bench.system(system).target.split(":")[1])
        m = await run(200)
        assert m.result is True, system  # every offset processed, in order
        for metric in ("throughput", "read_amplification", "rss_max"):
            assert 0 < m.metrics[metric] < float("inf"), (system, metric, m.metrics)
        # the topic holds exactly the records processed: nothing was fetched twice
        assert m.metrics["read_amplification"] < 1.5, (system, m.metrics)
