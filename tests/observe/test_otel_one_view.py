"""OpenTelemetry: one collection reads one view, shared by every instrument's callback
(found by a review: each callback took its own snapshot, 14 per collection, so the
instruments of one export showed different moments), and the ``reactive.stage.failed``
gauge Prometheus has too."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import reactive.observe._snapshot as snapshot_module
from reactive import Keep, Materializer, Sink, Source
from reactive.testkit import TestSink, TestSource

pytest.importorskip("opentelemetry.sdk.metrics")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from reactive.observe import otel


def points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    """The data points of one collection of ``reader``, by instrument name."""
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    if data is None:  # (no instrument observed anything)
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def value(got: dict[str, list[Any]], name: str, **attrs: str) -> float | None:
    attrs = {"materializer": "materializer", **attrs}
    found = [p.value for p in got.get(name, []) if dict(p.attributes) == attrs]
    assert len(found) <= 1, (name, attrs, found)
    return float(found[0]) if found else None


def count_snapshots(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the snapshots taken (``calls[0]``)."""
    calls = [0]
    take = snapshot_module.take_snapshot

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return take(*args, **kwargs)

    monkeypatch.setattr(snapshot_module, "take_snapshot", counting)
    return calls


SINK_IN = {"graph": "g", "stage": "sink", "port": "TestSink.in", "direction": "in"}


async def test_one_collection_takes_one_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(metrics=True) as mat:
            src, sink = (
                TestSource.probe()
                .to_mat(TestSink.probe().named("sink"), Keep.both)
                .named("g")
                .run(mat)
            )
            otel.instrument(mat, meter_provider=provider)
            calls = count_snapshots(monkeypatch)
            for _ in range(3):
                calls[0] = 0
                got = points(reader)
                assert calls[0] == 1
                assert value(got, "reactive.port.elements", **SINK_IN) == 0
            src.send_complete()
            await sink.expect_complete()
    finally:
        provider.shutdown()


async def test_each_reader_and_each_collection_reads_a_fresh_view(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two readers on one provider: each collection takes its own view (the second
    reader's first callback starts a new one), so each sees the stream as it is then."""
    first, second = InMemoryMetricReader(), InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first, second])
    try:
        async with Materializer(metrics=True) as mat:
            src, sink = (
                TestSource.probe()
                .to_mat(TestSink.probe().named("sink"), Keep.both)
                .named("g")
                .run(mat)
            )
            otel.instrument(mat, meter_provider=provider)
            calls = count_snapshots(monkeypatch)
            sink.request(10)
            seen = []
            for n, reader in enumerate([first, second, first, second], start=1):
                src.send_next(n)
                await sink.expect_next(n)
                got = points(reader)
                seen.append(value(got, "reactive.port.elements", **SINK_IN))
                assert value(got, "reactive.port.pushes", **SINK_IN) == n
            assert seen == [1, 2, 3, 4]
            assert calls[0] == 4
            src.send_complete()
            await sink.expect_complete()
    finally:
        provider.shutdown()


async def test_every_instrument_of_a_collection_shows_the_same_moment() -> None:
    """A stream running while a reader collects from another thread (as an exporter's
    timer does): every callback of the collection reads the same view, so an
    element-at-a-time port's pushes equal its elements, and its pulls are at most one
    more (each read on its own snapshot, pushes came out larger than elements)."""
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(metrics=True, fast_paths=False) as mat:
            otel.instrument(mat, meter_provider=provider)
            done = (
                Source.repeat(1)  # never ends: the collections below all see it running
                # (throttled: a CPU-bound loop starves the collecting thread of the GIL
                # for seconds at a time, CPython's convoy effect, not what is tested here)
                .throttle(5_000, 1.0)
                .map(lambda x: x)
                .to_mat(Sink.ignore(), Keep.right)
                .named("g")
                .run(mat)
            )
            for _ in range(5):
                got = await asyncio.to_thread(points, reader)
                elements, pushes, pulls = (
                    {tuple(sorted(p.attributes.items())): p.value for p in got[name]}
                    for name in (
                        "reactive.port.elements",
                        "reactive.port.pushes",
                        "reactive.port.pulls",
                    )
                )
                assert len(elements) >= 6  # the ports of source, throttle, map and sink
                assert pushes == elements
                for attrs, n in elements.items():
                    assert n <= pulls[attrs] <= n + 1, attrs
            # (leaving the materializer stops the stream)
            assert not done.done()
    finally:
        provider.shutdown()


async def test_a_collection_that_cannot_read_waits_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Taking the view fails (the loop blocked past the timeout): every callback of that
    collection reports the error, and the view is tried once, not once per instrument
    (each callback would wait ``timeout`` again)."""
    tries = [0]

    def blocked(mats: Any, timeout: float = 5.0) -> Any:
        tries[0] += 1
        raise TimeoutError("the loop did not answer")

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(metrics=True) as mat:
            otel.instrument(mat, meter_provider=provider)
            monkeypatch.setattr(otel, "export_views_from_any_thread", blocked)
            with caplog.at_level(logging.ERROR):
                assert points(reader) == {}
                assert tries[0] == 1
                assert points(reader) == {}
                assert tries[0] == 2
            failures = [r for r in caplog.records if "Callback failed" in r.getMessage()]
            assert len(failures) == 2 * len(otel.instrument(mat, meter_provider=provider))
    finally:
        provider.shutdown()


async def test_failed_stage_gauge_like_prometheus() -> None:
    """``reactive.stage.failed``: 1 on the stage a failure came from, 0 on the others
    (Prometheus' ``reactive_stage_failed``), same attributes as the other stage gauges."""

    def boom(x: int) -> int:
        if x == 3:
            raise ValueError("boom")
        return x

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        async with Materializer(metrics=True) as mat:
            otel.instrument(mat, meter_provider=provider)
            with pytest.raises(ValueError, match="boom"):
                await (
                    Source.from_iterable(range(10))
                    .named("src")
                    .map(boom)
                    .named("parse")
                    .to_mat(Sink.ignore().named("sink"), Keep.right)
                    .named("g")
                    .run(mat)
                )
            got = points(reader)
    finally:
        provider.shutdown()
    assert value(got, "reactive.stage.failed", graph="g", stage="parse") == 1.0
    assert value(got, "reactive.stage.failed", graph="g", stage="src") == 0.0
    assert value(got, "reactive.stage.failed", graph="g", stage="sink") == 0.0
    [point] = [p for p in got["reactive.stage.failed"] if dict(p.attributes)["stage"] == "parse"]
    assert set(point.attributes) == {"materializer", "graph", "stage"}
