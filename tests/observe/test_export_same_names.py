"""Exports of graphs that share a name: one series per label set, counters summed over
every run (running, finished, evicted) and never decreasing; gauges by the documented
rule (amounts summed over the running graphs, ratios the largest)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from reactive import Keep, Materializer, OverflowStrategy, Sink, Source
from reactive.observe._snapshot import KEEP_FINISHED
from reactive.testkit import ManualClock, TestSink, TestSource

pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk.metrics")

SINK_IN = {
    "materializer": "materializer",
    "graph": "pipeline",
    "stage": "seq_sink",
    "port": "SeqSink.in",
    "direction": "in",
}


def pipeline(n: int, name: str | None = "pipeline") -> Any:
    g = Source.from_iterable(range(n)).to_mat(Sink.seq(), Keep.right)
    return g.named(name) if name is not None else g


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def openmetrics_samples(registry: Any) -> list[Any]:
    """Every sample of ``registry``'s OpenMetrics exposition, read back by prometheus-client's
    strict OpenMetrics parser (it rejects two series with the same labels)."""
    from prometheus_client.openmetrics.exposition import generate_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    text = generate_latest(registry).decode()
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def text_samples(registry: Any) -> list[Any]:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(registry).decode()
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def value(samples: list[Any], name: str, **labels: str) -> float | None:
    labels = {"materializer": "materializer", **labels}
    found = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(found) <= 1, (name, labels, found)
    return float(found[0]) if found else None


def assert_one_series_per_label_set(samples: list[Any]) -> None:
    seen = Counter((s.name, tuple(sorted(s.labels.items()))) for s in samples)
    assert [k for k, n in seen.items() if n > 1] == []


async def test_prometheus_same_named_runs_are_one_series_with_their_sum() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    async with Materializer(metrics=True) as mat:
        await pipeline(100).run(mat)
        await pipeline(7).run(mat)
        registry = CollectorRegistry()
        register(mat, registry)
        runs = [
            c.metrics
            for g in mat.snapshot().graphs
            for s in g.stages
            if s.id == "seq_sink"
            for c in s.inlets
            if c.metrics is not None
        ]
        assert len(runs) == 2
        for samples in (openmetrics_samples(registry), text_samples(registry)):
            assert_one_series_per_label_set(samples)
            assert value(samples, "reactive_port_elements_total", **SINK_IN) == 107.0
            pulls = value(samples, "reactive_port_pulls_total", **SINK_IN)
            assert pulls == sum(m.pulls for m in runs)
            starved = value(samples, "reactive_port_starved_seconds_total", **SINK_IN)
            assert starved == pytest.approx(sum(m.starved_seconds for m in runs))
        # From the HTTP server's thread, as a real scrape runs it.
        samples = await asyncio.to_thread(openmetrics_samples, registry)
        assert value(samples, "reactive_port_elements_total", **SINK_IN) == 107.0


async def test_prometheus_counters_never_decrease_when_runs_are_evicted() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    async with Materializer(metrics=True) as mat:
        registry = CollectorRegistry()
        register(mat, registry)
        sent, seen = 0, []
        for n in (100, 7, *[1] * (KEEP_FINISHED + 4)):
            await pipeline(n).run(mat)
            sent += n
            samples = openmetrics_samples(registry)
            assert_one_series_per_label_set(samples)
            seen.append(value(samples, "reactive_port_elements_total", **SINK_IN))
        assert seen[-1] == sent
        assert seen == sorted(seen)
        stage = {"graph": "pipeline", "stage": "seq_sink"}
        assert value(samples, "reactive_stage_errors_total", **stage) == 0.0
        # Unnamed graphs (graph-N) never share a name: their evicted series are not kept.
        first = len(seen) + 1
        for _ in range(KEEP_FINISHED + 2):
            await pipeline(1, name=None).run(mat)
        graphs = {s.labels.get("graph") for s in openmetrics_samples(registry)}
        assert f"graph-{first}" not in graphs and f"graph-{first + 2}" in graphs
        assert value(openmetrics_samples(registry), "reactive_port_elements_total", **SINK_IN) == (
            sent
        )
        # Runs evicted between two scrapes are not lost either.
        for _ in range(KEEP_FINISHED + 3):
            await pipeline(2).run(mat)
            sent += 2
        samples = openmetrics_samples(registry)
        assert value(samples, "reactive_port_elements_total", **SINK_IN) == sent


async def test_prometheus_gauges_sum_amounts_and_take_the_largest_ratio() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    def buffered() -> Any:
        return (
            TestSource.probe()
            .named("src")
            .buffer(10, OverflowStrategy.backpressure)
            .named("buf")
            .to_mat(TestSink.probe(), Keep.both)
            .named("pipeline")
        )

    async with Materializer(clock=ManualClock(), metrics=True) as mat:
        # A finished run of the same name: its final buffer is not a running fill.
        done_src, done_sink = buffered().run(mat)
        done_src.send_next(0)
        await settle()
        done_sink.cancel()
        await settle()
        runs = [buffered().run(mat) for _ in range(2)]
        for (src, _), n in zip(runs, (3, 4), strict=True):
            for i in range(n):
                src.send_next(i)
        await settle()
        registry = CollectorRegistry()
        register(mat, registry)
        samples = openmetrics_samples(registry)
        assert_one_series_per_label_set(samples)
        buf = {"graph": "pipeline", "stage": "buf"}
        assert value(samples, "reactive_buffer_used", **buf) == 7.0
        assert value(samples, "reactive_buffer_capacity", **buf) == 20.0
        ratios = [
            s.metrics.backpressured_share
            for g in mat.snapshot().graphs
            if not g.finished
            for s in g.stages
            if s.id == "buf" and s.metrics is not None
        ]
        assert value(samples, "reactive_stage_backpressured_ratio", **buf) == max(ratios)
        for _, sink in runs:
            sink.cancel()
        await settle()
        # Nothing runs: the most recent finished run's last state.
        samples = openmetrics_samples(registry)
        assert value(samples, "reactive_buffer_used", **buf) == 4.0
        assert value(samples, "reactive_buffer_capacity", **buf) == 10.0


def otel_points(reader: Any, name: str) -> list[Any]:
    data = reader.get_metrics_data()
    return [
        p
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == name
        for p in m.data.data_points
    ]


async def test_opentelemetry_counters_stay_monotonic_across_eviction() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from reactive.observe.otel import instrument

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(metrics=True) as mat:
            instrument(mat, meter_provider=provider)
            sent, seen = 0, []
            for n in (100, 7, *[1] * (KEEP_FINISHED + 4)):
                await pipeline(n).run(mat)
                sent += n
                points = otel_points(reader, "reactive.port.elements")
                attrs = Counter(tuple(sorted(dict(p.attributes).items())) for p in points)
                assert max(attrs.values()) == 1
                (sink,) = [p.value for p in points if dict(p.attributes) == SINK_IN]
                seen.append(sink)
            assert seen[-1] == sent
            assert seen == sorted(seen)
            errors = otel_points(reader, "reactive.stage.errors")
            assert [p.value for p in errors if dict(p.attributes)["stage"] == "seq_sink"] == [0]
    finally:
        provider.shutdown()


async def test_opentelemetry_same_named_running_graphs_are_one_point() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from reactive.observe.otel import instrument

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(metrics=True) as mat:
            instrument(mat, meter_provider=provider)
            runs = [
                TestSource.probe()
                .named("src")
                .buffer(10, OverflowStrategy.backpressure)
                .named("buf")
                .to_mat(TestSink.probe(), Keep.both)
                .named("pipeline")
                .run(mat)
                for _ in range(2)
            ]
            for (src, _), n in zip(runs, (2, 5), strict=True):
                for i in range(n):
                    src.send_next(i)
            await settle()
            used = otel_points(reader, "reactive.buffer.used")
            buf = {"materializer": "materializer", "graph": "pipeline", "stage": "buf"}
            assert [p.value for p in used if dict(p.attributes) == buf] == [7]
            for _, sink in runs:
                sink.cancel()
    finally:
        provider.shutdown()
