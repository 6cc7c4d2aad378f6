"""Substreams in snapshots and exports: stable ids, one series per kind, counters that
never go down, islands they make, and the bottleneck finder around them.

Before: a substream's stages got ids by their position among the stages alive at the
snapshot (``inner``, ``inner#2``), so a new substream took over the id of one that had
ended and its exported counter went down, and the series of ended substreams vanished
when the graph finished; a main-graph stage's id shifted when a same-named stage before
it stopped (``buffer#2`` became ``buffer``); islands made inside a substream (an async
boundary in it) were missing from ``snapshot()``; and ``bottleneck()`` blamed the
``SubSink`` plumbing, or ``group_by`` (whose own outlet waits for the next substream to
be asked for), instead of the slow stage behind ``merge_substreams``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from reactive import Flow, Keep, Materializer, OverflowStrategy, Sink, Source
from reactive.observe import bottleneck
from reactive.observe._snapshot import export_view, retired_counters
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.observe.test_bottleneck import Slow


def _view(mat: Materializer) -> Any:
    return export_view(mat.snapshot(), retired_counters(mat))


def _elements(view: Any) -> dict[tuple[str, ...], int]:
    return {k: m.elements for k, m in view.ports.items()}


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("kind", ["group_by", "flat_map_merge", "flat_map_concat"])
async def test_substream_series_only_grow(kind: str, fast: bool) -> None:
    keys, per_key = 6, 3
    data = [k for k in range(keys) for _ in range(per_key)]
    src = Source.from_iterable(data).named("src")
    if kind == "group_by":
        flow = src.group_by(100, lambda x: x).take(per_key).map(lambda x: x).merge_substreams()
        runner = "merge_substreams"
    else:
        src = Source.from_iterable(range(keys)).named("src")

        def inner(x: int) -> Source[int, Any]:
            return Source.from_iterable([x] * per_key).map(lambda y: y)

        if kind == "flat_map_merge":
            flow = src.flat_map_merge(2, inner)
        else:
            flow = src.flat_map_concat(inner)
        runner = kind
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        probe = flow.to_mat(TestSink.probe(), Keep.right).named("g").run(mat)
        before: dict[tuple[str, ...], int] = {}
        main_ids = None
        seen_ids: set[str] = set()
        for _ in data:
            probe.request(1)
            await probe.expect_next()
            g = mat.snapshot().graph("g")
            ids = [s.id for s in g.stages]
            assert len(ids) == len(set(ids)), ids
            now_main = sorted(i for i in ids if "/" not in i)
            assert main_ids is None or now_main == main_ids  # main-graph ids never move
            main_ids = now_main
            for s in g.stages:
                if "/" in s.id:
                    assert re.fullmatch(rf"{runner}\[\d+\]/.+", s.id), s.id
                    assert s.series == re.sub(r"\[\d+\]", "", s.id)
                    seen_ids.add(s.id)
            now = _elements(_view(mat))
            assert set(before) <= set(now), set(before) - set(now)  # no series vanishes
            assert all(now[k] >= v for k, v in before.items()), [
                (k, v, now[k]) for k, v in before.items() if now[k] < v
            ]
            before = now
        probe.request(1)
        await probe.expect_complete()
        await asyncio.sleep(0)
        final = _view(mat)
        assert all(final.ports[k].elements >= v for k, v in before.items())
        # Every substream's elements are counted once in its series, after all ended.
        sub_src = [
            m.elements
            for (graph, series, _, direction), m in final.ports.items()
            if series.startswith(f"{runner}/") and direction == "in" and "SubSink" in series
        ]
        assert sub_src == [len(data)]
        # Each substream had ids of its own, numbered on: none was reused.
        numbers = {int(re.match(rf"{runner}\[(\d+)\]", i).group(1)) for i in seen_ids}  # type: ignore[union-attr]
        assert len(numbers) > 1 and max(numbers) >= len(numbers)


async def test_prometheus_substream_counters_survive_the_graph() -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.openmetrics.exposition import generate_latest
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    from reactive.observe.prometheus import register

    async with Materializer(metrics=True) as mat:
        registry = CollectorRegistry()
        register(mat, registry)
        await (
            Source.from_iterable(range(6))
            .flat_map_merge(1, lambda k: Source.from_iterable(range(10)).map(lambda x: x))
            .to_mat(Sink.ignore(), Keep.right)
            .named("g")
            .run(mat)
        )
        text = generate_latest(registry).decode()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    sub = [
        s.value
        for s in samples
        if s.name == "reactive_port_elements_total"
        and s.labels["stage"] == "flat_map_merge/SubSink"
    ]
    assert sub == [60.0]


async def test_main_graph_ids_do_not_shift_when_a_stage_stops() -> None:
    async with Materializer(metrics=False) as mat:
        (a, b), probe = (
            TestSource.probe()
            .buffer(10, OverflowStrategy.backpressure)
            .merge_mat(TestSource.probe().buffer(10, OverflowStrategy.backpressure), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .named("g")
            .run(mat)
        )
        await b.expect_request()
        for i in range(3):
            b.send_next(i)
        await asyncio.sleep(0.01)
        used = {s.id: s.buffer.used for s in mat.snapshot().graph("g").stages if s.buffer}
        assert sorted(used) == ["buffer", "buffer#2"]
        (b_id,) = [k for k, v in used.items() if v > 0]  # (merge may hold one of b's)
        a.send_complete()  # a's buffer (empty) completes and stops
        await asyncio.sleep(0.01)
        after = {s.id: s.buffer.used for s in mat.snapshot().graph("g").stages if s.buffer}
        assert after == {b_id: used[b_id]}
        probe.cancel()


async def test_islands_made_inside_substreams_are_in_the_snapshot() -> None:
    async with Materializer(metrics=True) as mat:
        probe = (
            Source.from_iterable(range(200))
            .group_by(4, lambda x: x % 2)
            .map(lambda x: x)
            .named("before")
            .async_boundary()
            .map(lambda x: x)
            .named("after")
            .merge_substreams()
            .to_mat(TestSink.probe(), Keep.right)
            .named("g")
            .run(mat)
        )
        probe.request(4)
        for _ in range(4):
            await probe.expect_next()
        g = mat.snapshot().graph("g")
        running = {i.name for i in mat._islands if not i.finished}
        assert {i.name for i in g.islands} == running and len(running) == 3
        befores = [s for s in g.stages if s.name == "before"]
        assert sorted(s.id for s in befores) == [
            "merge_substreams[1]/before",
            "merge_substreams[2]/before",
        ]
        assert {s.series for s in befores} == {"merge_substreams/before"}
        probe.cancel()


@pytest.mark.parametrize("kind", ["group_by", "flat_map_concat"])
async def test_the_slow_stage_behind_substreams_is_blamed(kind: str) -> None:
    clock = ManualClock()
    n = 40
    async with Materializer(clock=clock, metrics=True) as mat:
        src = Source.from_iterable(range(n))
        if kind == "group_by":
            src = src.group_by(4, lambda x: x % 4).map(lambda x: x).merge_substreams()
        else:
            src = src.flat_map_concat(lambda x: Source.single(x).map(lambda y: y))
        done = (
            src.via(Flow.from_graph(Slow(1.0)).named("slow"))
            .to_mat(Sink.seq(), Keep.right)
            .named("g")
            .run(mat)
        )
        for _ in range(n // 2):
            await clock.advance(1.0)
        culprit = bottleneck(mat.snapshot().graph("g"))
        assert culprit is not None and culprit.id == "slow", culprit
        for _ in range(n):
            await clock.advance(1.0)
        assert sorted(await asyncio.wait_for(done, 5)) == list(range(n))


async def _ids_of_nested_substreams(metrics: bool) -> list[str]:
    def inner(x: int) -> Source[int, Any]:
        return Source.single(x).concat(Source.never()).map(lambda y: y)

    async with Materializer(metrics=metrics) as mat:
        probe = (
            Source.from_iterable([1, 2])
            .named("src")
            .flat_map_merge(2, lambda x: Source.single(x).flat_map_merge(1, inner))
            .to_mat(TestSink.probe(), Keep.right)
            .named("g")
            .run(mat)
        )
        probe.request(2)
        assert sorted([await probe.expect_next(), await probe.expect_next()]) == [1, 2]
        ids = sorted(s.id for s in mat.snapshot().graph("g").stages)
        probe.cancel()
    return ids


async def test_substream_ids_with_metrics_on_and_off_alike() -> None:
    # With metrics off a substream's ids are worked out when a snapshot first asks (not at
    # its materialization); they are the ones metrics on gives at once, nested ones too.
    # (metrics on also keeps the stages that stopped, the source here: compare substreams)
    on = [i for i in await _ids_of_nested_substreams(True) if "[" in i]
    off = [i for i in await _ids_of_nested_substreams(False) if "[" in i]
    assert on == off
    nested = [i for i in off if re.match(r"flat_map_merge\[[12]\]/flat_map_merge\[1\]/", i)]
    assert len(nested) >= 4 and len(set(off)) == len(off), off
