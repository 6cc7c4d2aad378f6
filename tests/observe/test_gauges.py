"""A stage's own gauges (``observe_gauges``) in snapshots, the live view and both
exports; a closed graph's name names the graph, not its unnamed stages."""

from __future__ import annotations

import io
from typing import Any

import pytest

from reactive import Keep, Materializer, Sink, Source
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


class _Counting(GraphStage[FlowShape]):
    """Passes elements on; reports how many it saw, by parity, and one that raises."""

    def __init__(self, broken: bool = False) -> None:
        self.shape = FlowShape(Inlet("Counting.in"), Outlet("Counting.out"))
        self.broken = broken

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.seen = {"even": 0, "odd": 0}
                self.set_handlers(stage.shape.in_, stage.shape.out, self)

            def on_push(self) -> None:
                x = self.grab(stage.shape.in_)
                self.seen["odd" if x % 2 else "even"] += 1
                self.push(stage.shape.out, x)

            def on_pull(self) -> None:
                self.pull(stage.shape.in_)

            def observe_gauges(self) -> dict[str, Any]:
                if stage.broken:
                    raise RuntimeError("broken gauge")
                return {"seen": sum(self.seen.values()), "seen_by_parity": dict(self.seen)}

        return Logic()


async def _run(mat: Materializer, broken: bool = False) -> tuple[Any, Any]:
    from reactive import Flow

    src, sink = (
        TestSource.probe()
        .via(Flow.from_graph(_Counting(broken)).named("counting"))
        .to_mat(TestSink.probe(), Keep.both)
        .named("pipeline")
        .run(mat)
    )
    sink.request(5)
    for i in range(5):
        src.send_next(i)
    await sink.expect_next_n(5)
    return src, sink


async def test_snapshot_live_view_and_exports_show_a_stages_own_gauges() -> None:
    pytest.importorskip("rich.console")
    pytest.importorskip("prometheus_client")
    pytest.importorskip("opentelemetry.sdk.metrics")
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from prometheus_client import CollectorRegistry, generate_latest
    from rich.console import Console

    from reactive.observe.live_view import LiveView
    from reactive.observe.otel import instrument
    from reactive.observe.prometheus import families
    from tests.observe.test_export import sample

    async with Materializer() as mat:  # gauges need no metrics
        src, sink = await _run(mat)
        snap = mat.snapshot()
        stage = snap.graph("pipeline").stage("counting")
        assert dict(stage.gauges) == {"seen": 5, "seen_by_parity": {"even": 3, "odd": 2}}
        # Stages without gauges report none.
        assert all(not s.gauges for s in snap.stages if s.id != "counting")

        con = Console(file=io.StringIO(), width=160, record=True, color_system=None)
        con.print(LiveView(mat).frame())
        assert "counting: seen 5; seen_by_parity 5 (even: 3, odd: 2)" in con.export_text()

        registry = CollectorRegistry()
        registry.register(type("C", (), {"collect": lambda self: families(mat.snapshot())})())
        text = generate_latest(registry).decode()
        labels = {"graph": "pipeline", "stage": "counting"}
        assert sample(text, "reactive_seen", **labels) == 5.0
        assert sample(text, "reactive_seen_by_parity", key="odd", **labels) == 2.0

        reader = InMemoryMetricReader()
        provider = MeterProvider(metric_readers=[reader])
        try:
            instrument(mat, meter_provider=provider)
            data = reader.get_metrics_data()
        finally:
            provider.shutdown()
        assert data is not None
        points = [
            (dict(p.attributes or {}), getattr(p, "value", None))
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for m in sm.metrics
            if m.name == "reactive.stage.gauge"
            for p in m.data.data_points
        ]
        labels = {"materializer": "materializer", **labels}
        assert ({**labels, "gauge": "seen_by_parity", "key": "even"}, 3) in points
        assert ({**labels, "gauge": "seen"}, 5) in points
        src.send_complete()
        await sink.expect_complete()


async def test_a_raising_gauge_leaves_the_snapshot_whole() -> None:
    async with Materializer() as mat:
        src, sink = await _run(mat, broken=True)
        stage = mat.snapshot().graph("pipeline").stage("counting")
        assert dict(stage.gauges) == {}
        src.send_complete()
        await sink.expect_complete()


async def test_a_closed_graphs_name_does_not_rename_its_unnamed_stages() -> None:
    async with Materializer(metrics=True) as mat:
        result = await (
            Source.from_iterable(range(10))
            .map(lambda x: x + 1)
            .filter(lambda x: x % 2 == 0)
            .named("evens")
            .to_mat(Sink.seq(), Keep.right)
            .named("job")
            .run(mat)
        )
        assert result == [2, 4, 6, 8, 10]
        graph = mat.snapshot().graph("job")
        ids = [s.id for s in graph.stages]
        assert not any(i == "job" or i.startswith("job#") for i in ids), ids
        assert ids[-1] == "seq_sink"  # the sink keeps its default name
        assert ids[0] == "evens"  # names given to parts of the graph are kept
