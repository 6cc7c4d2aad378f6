"""Prometheus (scraped over real HTTP) and OpenTelemetry (SDK reader) export."""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Any

import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.testkit import ManualClock, TestSink, TestSource

prometheus_client = pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk.metrics")


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def sample(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of ``name`` with exactly ``labels`` in ``text`` (and
    the default materializer's name as ``materializer``, unless given)."""
    from prometheus_client.parser import text_string_to_metric_families

    labels = {"materializer": "materializer", **labels}

    found = [
        s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
        if s.name == name and s.labels == labels
    ]
    assert len(found) == 1, (name, labels, found)
    return float(found[0])


async def scrape_over_http(registry: Any) -> str:
    """Serve ``registry`` with prometheus-client's HTTP server on loopback and scrape it
    once over real HTTP (from a thread: the collector snapshots on this loop)."""
    from prometheus_client import start_http_server

    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        port = server.server_address[1]

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
                return str(r.read().decode())

        return await asyncio.to_thread(scrape)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def back_pressured_graph(clock: ManualClock, mat: Materializer) -> tuple[Any, Any]:
    """src -> inc -> sink with inc back-pressured 3 s of 4 (as in test_metrics)."""
    src, sink = (
        TestSource.probe()
        .named("src")
        .map(lambda x: x + 1)
        .named("inc")
        .async_boundary()
        .to_mat(TestSink.probe().named("sink"), Keep.both)
        .named("pipeline")
        .run(mat)
    )
    await src.expect_request()
    src.send_next(1)
    await settle()
    sink.request(1)
    await sink.expect_next(2)
    await clock.advance(4.0)
    return src, sink


async def test_prometheus_scrape_over_http() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        src, sink = await back_pressured_graph(clock, mat)
        registry = CollectorRegistry()
        register(mat, registry)
        text = await scrape_over_http(registry)
        out = {"graph": "pipeline", "stage": "inc", "port": "Map.out", "direction": "out"}
        assert sample(text, "reactive_port_elements_total", **out) == 1.0
        assert sample(text, "reactive_port_pushes_total", **out) == 1.0
        # inc's outlet feeds the boundary, which asked for 16 at once: demand all along.
        assert sample(text, "reactive_port_starved_seconds_total", **out) == 4.0
        assert sample(text, "reactive_port_backpressured_seconds_total", **out) == 0.0
        (sink_conn,) = mat.snapshot().stage("sink").inlets
        sink_in = {"graph": "pipeline", "stage": "sink", "port": sink_conn.inlet, "direction": "in"}
        # The sink asked once, got its element at t=0 and asked nothing more: 4 s idle.
        assert sample(text, "reactive_port_backpressured_seconds_total", **sink_in) == 4.0
        boundary = {"graph": "pipeline", "stage": "sink.async-in"}
        assert sample(text, "reactive_buffer_capacity", **boundary) == 16.0
        assert sample(text, "reactive_buffer_used", **boundary) == 0.0
        assert sample(text, "reactive_stage_errors_total", graph="pipeline", stage="inc") == 0.0
        sink.cancel()
        src.send_complete()


async def test_prometheus_names_are_stable() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from reactive.observe.prometheus import register

    async with Materializer(metrics=True) as mat:
        await Source.from_iterable(range(5)).to_mat(Sink.seq(), Keep.right).named("g").run(mat)
        registry = CollectorRegistry()
        register(mat, registry)
        text = generate_latest(registry).decode()
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names == {
        "reactive_port_elements_total",
        "reactive_port_pushes_total",
        "reactive_port_pulls_total",
        "reactive_port_backpressured_seconds_total",
        "reactive_port_starved_seconds_total",
        "reactive_stage_backpressured_ratio",
        "reactive_stage_starved_ratio",
        "reactive_stage_blame_ratio",
        "reactive_stage_failed",
        "reactive_stage_errors_total",
        "reactive_stage_restarts_total",
        "reactive_stage_resumes_total",
        "reactive_buffer_used",
        "reactive_buffer_capacity",
    }


async def test_opentelemetry_in_memory_reader() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from reactive.observe.otel import instrument

    clock = ManualClock()
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(clock=clock, metrics=True) as mat:
            src, sink = await back_pressured_graph(clock, mat)
            instrument(mat, meter_provider=provider)
            data = reader.get_metrics_data()
            sink.cancel()
            src.send_complete()
    finally:
        provider.shutdown()
    assert data is not None
    points: dict[str, list[Any]] = {}
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            assert sm.scope.name == "reactive"
            for metric in sm.metrics:
                points[metric.name] = list(metric.data.data_points)

    def value(name: str, **attrs: str) -> float:
        attrs = {"materializer": "materializer", **attrs}
        found = [p.value for p in points[name] if dict(p.attributes) == attrs]
        assert len(found) == 1, (name, attrs, points[name])
        return float(found[0])

    out = {"graph": "pipeline", "stage": "inc", "port": "Map.out", "direction": "out"}
    assert value("reactive.port.elements", **out) == 1
    assert value("reactive.port.starved_time", **out) == 4.0
    # inc pulled src again after its element and got nothing for 4 s: starved throughout.
    assert value("reactive.stage.starved_ratio", graph="pipeline", stage="inc") == 1.0
    assert value("reactive.buffer.capacity", graph="pipeline", stage="sink.async-in") == 16
    assert value("reactive.stage.errors", graph="pipeline", stage="inc") == 0


def test_a_scrape_after_the_loop_closed_is_empty() -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    from reactive.observe.prometheus import register

    async def run() -> Materializer:
        async with Materializer(metrics=True) as mat:
            await Source.from_iterable([1]).to_mat(Sink.seq(), Keep.right).named("g").run(mat)
            return mat

    mat = asyncio.run(run())
    registry = CollectorRegistry()
    register(mat, registry)
    text = generate_latest(registry).decode()
    assert "# TYPE reactive_port_elements_total counter" in text
    assert 'graph="g"' not in text


def test_a_scrape_before_the_loop_runs_is_empty() -> None:
    """The usual start-up: a materializer made and registered, the metrics server started,
    then ``asyncio.run``. A scrape landing before the loop runs answered 500 (the snapshot
    bound the materializer to no running loop); it is empty (found by a review)."""
    from prometheus_client import CollectorRegistry, generate_latest

    from reactive.observe.prometheus import register

    mat = Materializer(metrics=True)
    registry = CollectorRegistry()
    register(mat, registry)
    text = generate_latest(registry).decode()  # (a scrape: this thread runs no loop)
    assert "# TYPE reactive_port_elements_total counter" in text

    async def run() -> None:
        async with mat:
            await Source.from_iterable([1]).to_mat(Sink.seq(), Keep.right).named("g").run(mat)

    asyncio.run(run())  # the materializer still binds to the program's loop afterwards


def test_observe_exports() -> None:
    import reactive.observe as observe

    assert set(observe.__all__) == {
        "BufferSnapshot",
        "ConnectionSnapshot",
        "Gauges",
        "GraphSnapshot",
        "IslandSnapshot",
        "MaterializerSnapshot",
        "PortMetrics",
        "StageMetrics",
        "StageSnapshot",
        "blame",
        "bottleneck",
        "live",
        "snapshot",
    }
    assert all(getattr(observe, name).__doc__ for name in observe.__all__)
