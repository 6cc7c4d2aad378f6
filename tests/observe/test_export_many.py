"""Exports of several materializers, and stages' own gauges that Prometheus could not
take as they were.

- A service may run two materializers (one per component): ``prometheus.register`` of
  the second on the same registry raised ``DuplicateTimeseries`` and ``otel.instrument``
  of the second on the same provider exported only the first. Now both join one
  collector / one set of instruments, told apart by the ``materializer`` label.
- A stage's own gauge named like an OpenTelemetry metric (``queue.depth``) made an
  invalid Prometheus name, and a name reported as a plain figure by one stage and by key
  by another made a family with samples of two label sets (a broken scrape).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)
from reactive.testkit import TestSink, TestSource

pytest.importorskip("prometheus_client")
pytest.importorskip("opentelemetry.sdk.metrics")


def openmetrics(registry: Any) -> list[Any]:
    """The samples of ``registry`` read back by the strict OpenMetrics parser."""
    from prometheus_client.openmetrics.exposition import generate_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    text = generate_latest(registry).decode()
    return [s for fam in text_string_to_metric_families(text) for s in fam.samples]


def pick(samples: list[Any], name: str, **labels: str) -> list[float]:
    return [s.value for s in samples if s.name == name and s.labels == labels]


async def test_two_materializers_on_one_prometheus_registry() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    async with (
        Materializer(metrics=True, name="ingest") as m1,
        Materializer(metrics=True, name="serve") as m2,
        Materializer(metrics=True, name="serve") as m3,
    ):
        await Source.from_iterable(range(5)).to_mat(Sink.seq(), Keep.right).named("a").run(m1)
        await Source.from_iterable(range(7)).to_mat(Sink.seq(), Keep.right).named("b").run(m2)
        await Source.from_iterable(range(3)).to_mat(Sink.seq(), Keep.right).named("b").run(m3)
        registry = CollectorRegistry()
        first = register(m1, registry)
        assert register(m2, registry) is first
        assert register(m3, registry) is first
        register(m3, registry)  # once only
        port = {"port": "SeqSink.in", "direction": "in", "stage": "seq_sink"}
        samples = await asyncio.to_thread(openmetrics, registry)
        elements = "reactive_port_elements_total"
        assert pick(samples, elements, materializer="ingest", graph="a", **port) == [5.0]
        # Two materializers of one name are one: their same-named graphs summed.
        assert pick(samples, elements, materializer="serve", graph="b", **port) == [10.0]
        first.remove(m1)
        samples = openmetrics(registry)
        assert pick(samples, elements, materializer="ingest", graph="a", **port) == []
        assert pick(samples, elements, materializer="serve", graph="b", **port) == [10.0]
        # Unregistered, a new collector is made for the registry.
        registry.unregister(first)
        again = register(m1, registry)
        assert again is not first and again.materializers == [m1]


async def test_two_materializers_on_one_opentelemetry_provider() -> None:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from reactive.observe.otel import instrument

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with (
            Materializer(metrics=True, name="ingest") as m1,
            Materializer(metrics=True, name="serve") as m2,
        ):
            g1 = Source.from_iterable(range(5)).to_mat(Sink.seq(), Keep.right).named("a")
            await g1.run(m1)
            g2 = Source.from_iterable(range(7)).to_mat(Sink.seq(), Keep.right).named("b")
            await g2.run(m2)
            made = instrument(m1, meter_provider=provider)
            assert instrument(m2, meter_provider=provider) == made
            data = await asyncio.to_thread(reader.get_metrics_data)
    finally:
        provider.shutdown()
    assert data is not None
    points = {
        (p.attributes["materializer"], p.attributes["graph"]): p.value
        for rm in data.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
        if m.name == "reactive.port.elements"
        for p in m.data.data_points
        if p.attributes["stage"] == "seq_sink"
    }
    assert points == {("ingest", "a"): 5, ("serve", "b"): 7}


class _Gauged(GraphStage[FlowShape]):
    def __init__(self, gauges: dict[str, Any]) -> None:
        self.shape = FlowShape(Inlet("Gauged.in"), Outlet("Gauged.out"))
        self.gauges = gauges

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.set_handlers(stage.shape.in_, stage.shape.out, self)

            def on_push(self) -> None:
                self.push(stage.shape.out, self.grab(stage.shape.in_))

            def on_pull(self) -> None:
                self.pull(stage.shape.in_)

            def observe_gauges(self) -> dict[str, Any]:
                return stage.gauges

        return Logic()


@pytest.mark.parametrize("keyed_first", [True, False])
async def test_own_gauges_prometheus_cannot_take_as_they_are(keyed_first: bool) -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    keyed = {"lag": {"p0": 1, "p1": 2}, "queue.depth": 3, "buffer_used": 4}
    flat = {"lag": 5}
    async with Materializer(metrics=True) as mat:
        runs = []
        for name, gauges in (
            (("a", keyed), ("b", flat))
            if keyed_first
            else (
                ("b", flat),
                ("a", keyed),
            )
        ):
            runs.append(
                TestSource.probe()
                .via(Flow.from_graph(_Gauged(gauges)).named(name))
                .to_mat(TestSink.probe(), Keep.both)
                .named(f"g{name}")
                .run(mat)
            )
        registry = CollectorRegistry()
        register(mat, registry)
        samples = await asyncio.to_thread(openmetrics, registry)
        base = {"materializer": "materializer"}
        a = {**base, "graph": "ga", "stage": "a"}
        b = {**base, "graph": "gb", "stage": "b"}
        assert pick(samples, "reactive_lag", key="p1", **a) == [2.0]
        # A plain figure in a family with the key label: key "" (Prometheus: no label).
        assert pick(samples, "reactive_lag", key="", **b) == [5.0]
        assert pick(samples, "reactive_queue_depth", **a) == [3.0]
        # A name of one of the module's own families is moved out of its way.
        assert pick(samples, "reactive_gauge_buffer_used", **a) == [4.0]
        assert pick(samples, "reactive_buffer_used", **a) == []
        for src, _ in runs:
            src.send_complete()
