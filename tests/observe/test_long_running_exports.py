"""Exports of long-running services, found by an SRE's review:

- a graph that opens substreams with an async boundary inside kept every finished
  substream island until the graph ended (memory and snapshot time growing with the
  substreams ever run, metrics on or off): finished ones leave the snapshots;
- materializers sharing a name (the default) summed their unnamed ``graph-N`` into one
  series, which then went down when one of them left its materializer's snapshots: the
  second one's is ``graph-N.2``;
- a scrape of a materializer whose loop exists but is not running (between two
  ``run_until_complete`` calls) waited 5 s and failed, taking the registry down: it reads
  the snapshot directly then.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from reactive import Keep, Materializer, Sink, Source

pytest.importorskip("prometheus_client")


@pytest.mark.parametrize("metrics", [False, True])
async def test_finished_substream_islands_leave_the_snapshots(metrics: bool) -> None:
    async with Materializer(metrics=metrics) as mat:
        seen: list[int] = []
        (
            Source.from_iterable(range(200))
            .concat(Source.never())  # a service: never ends
            .flat_map_merge(4, lambda x: Source.single(x).map(lambda y: y + 1).async_boundary())
            .to_mat(Sink.foreach(seen.append), Keep.right)
            .named("pipe")
            .run(mat)
        )
        for _ in range(2000):
            if len(seen) == 200:
                break
            await asyncio.sleep(0.005)
        assert len(seen) == 200
        await asyncio.sleep(0.05)
        graph = mat.snapshot().graph("pipe")
        # the top-level islands and at most the breadth's substreams still running
        assert len(graph.islands) <= 2 + 4, len(graph.islands)
        assert sum(isl.finished for isl in graph.islands) == 0
        if metrics:  # the finished substreams' counters stay, as retired ones
            assert graph.retired is not None


def elements_in(registry: Any, graph: str) -> float | None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in family.samples:
            if (
                s.name == "reactive_port_elements_total"
                and s.labels["graph"] == graph
                and s.labels["direction"] == "in"
                and s.labels["stage"] == "ignore_sink"
            ):
                return float(s.value)
    return None


async def test_unnamed_graphs_of_same_named_materializers_are_separate_series() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    registry = CollectorRegistry()
    async with Materializer(metrics=True) as a, Materializer(metrics=True) as b:
        assert a.name == b.name
        register(a, registry)
        register(b, registry)
        await Source.from_iterable(range(100)).to_mat(Sink.ignore(), Keep.right).run(a)
        queue, done = Source.queue(10).to_mat(Sink.ignore(), Keep.both).run(b)
        for i in range(5):
            await queue.offer(i)
        await asyncio.sleep(0.05)
        assert (elements_in(registry, "graph-1"), elements_in(registry, "graph-1.2")) == (
            100.0,
            5.0,
        )
        for _ in range(17):  # A's graph-1 leaves A's snapshots: its series ends
            await Source.single(0).to_mat(Sink.ignore(), Keep.right).run(a)
        assert elements_in(registry, "graph-1") is None
        assert elements_in(registry, "graph-1.2") == 5.0  # never went down
        queue.complete()
        await done


def test_a_scrape_between_two_runs_of_the_loop_reads_at_once() -> None:
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register

    loop = asyncio.new_event_loop()
    try:

        async def phase() -> Materializer:
            mat = Materializer(metrics=True, name="batch")
            await (
                Source.from_iterable(range(10))
                .to_mat(Sink.ignore(), Keep.right)
                .named("job")
                .run(mat)
            )
            return mat

        mat = loop.run_until_complete(phase())  # idle, not closed, between two phases
        registry = CollectorRegistry()
        register(mat, registry)
        got: list[Any] = []
        scrape = threading.Thread(target=lambda: got.append(elements_in(registry, "job")))
        scrape.start()
        scrape.join(3.0)  # the scrape waited 5 s for the loop, then raised
        assert not scrape.is_alive() and got == [10.0]
    finally:
        loop.close()
