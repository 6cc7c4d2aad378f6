"""Prometheus: a stage's own gauges never make an invalid exposition (found by a review:
``queue.depth`` and ``queue-depth`` of one stage were two series of one name and labels,
and a gauge named ``port_elements_total`` took the name of a built-in counter's
samples). The rule is ``reactive.observe.prometheus.own_families``."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
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

pytest.importorskip("prometheus_client")

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import (
    generate_latest as generate_openmetrics,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families

from reactive.observe import prometheus as rp


class Reporting(GraphStage[FlowShape]):
    """Passes elements on and reports ``gauges`` as its own."""

    def __init__(self, gauges: dict[str, Any]) -> None:
        self.shape = FlowShape(Inlet("Reporting.in"), Outlet("Reporting.out"))
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


async def scrape(*stages: dict[str, Any], scrapes: int = 1) -> list[str]:
    """The classic text expositions of ``scrapes`` scrapes of a running graph with one
    ``Reporting`` stage per gauges given (named ``p``, ``p#2``, ...)."""
    registry = CollectorRegistry()
    async with Materializer(metrics=True) as mat:
        rp.register(mat, registry)
        flow: Any = Flow[int]()
        for gauges in stages:
            flow = flow.via(Flow.from_graph(Reporting(gauges)).named("p"))
        queue, done = Source.queue(4).via(flow).to_mat(Sink.ignore(), Keep.both).named("g").run(mat)
        await queue.offer(1)
        await asyncio.sleep(0)
        texts = [generate_latest(registry).decode() for _ in range(scrapes)]
        # Read back by the strict OpenMetrics parser: it refuses a family name taken
        # twice (with a counter's _total / _created) and two series with one label set.
        list(parse_openmetrics(generate_openmetrics(registry).decode()))
        queue.complete()
        await done
    return texts


def check_valid(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of a classic exposition by name and labels, once it is checked: one
    TYPE line per name, one sample per name and label set."""
    types = Counter(line.split()[2] for line in text.splitlines() if line.startswith("# TYPE"))
    assert [name for name, n in types.items() if n > 1] == []
    samples = Counter(
        (s.name, tuple(sorted(s.labels.items())))
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    )
    assert [key for key, n in samples.items() if n > 1] == []
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


P = (("graph", "g"), ("materializer", "materializer"), ("stage", "p"))


async def test_gauges_whose_names_clean_up_alike_get_a_suffix(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``queue.depth``, ``queue-depth`` and ``queue_depth`` all clean up to
    ``reactive_queue_depth``: the one needing no change keeps it, the others (by name)
    get ``_2`` and ``_3``, and each clash is logged once, not once per scrape."""
    monkeypatch.setattr(rp, "_WARNED", set(), raising=False)  # (none warned about yet)
    with caplog.at_level(logging.WARNING, logger="reactive"):
        texts = await scrape({"queue.depth": 1, "queue-depth": 2, "queue_depth": 3}, scrapes=2)
    for text in texts:
        got = check_valid(text)
        assert got[("reactive_queue_depth", P)] == 3
        assert got[("reactive_queue_depth_2", P)] == 2  # "queue-depth" < "queue.depth"
        assert got[("reactive_queue_depth_3", P)] == 1
    warnings = [r.getMessage() for r in caplog.records if "both make the name" in r.getMessage()]
    assert len(warnings) == 2
    assert "'queue_depth' and 'queue-depth'" in warnings[0]
    assert "reactive_queue_depth_2" in warnings[0]


async def test_gauges_named_like_a_built_in_family_or_sample_are_renamed() -> None:
    """A gauge named like a counter's sample (``..._total``, ``..._created``) or a
    built-in gauge gets ``gauge_`` in front; the built-in series are unchanged."""
    [text] = await scrape(
        {
            "port_elements_total": 7,
            "port_pulls_created": 8,
            "stage_failed": 9,
            "buffer_used": 10,
        }
    )
    got = check_valid(text)
    assert got[("reactive_gauge_port_elements_total", P)] == 7
    assert got[("reactive_gauge_port_pulls_created", P)] == 8
    assert got[("reactive_gauge_stage_failed", P)] == 9
    assert got[("reactive_gauge_buffer_used", P)] == 10
    assert got[("reactive_stage_failed", P)] == 0
    out = (("direction", "out"), *P[:2], ("port", "Reporting.out"), P[2])
    assert got[("reactive_port_elements_total", out)] == 1


async def test_a_renamed_gauge_never_takes_another_gauges_name() -> None:
    """``port_elements`` becomes ``reactive_gauge_port_elements``, which the gauge
    ``gauge_port_elements`` is already: that one keeps it. A suffix skips names taken
    (``x.y`` becomes ``reactive_x_y_3``: ``reactive_x_y_2`` is the gauge ``x_y_2``'s),
    and gauges of several stages of one name are one family (labelled by stage)."""
    [text] = await scrape(
        {"port_elements": 1, "gauge_port_elements": 2, "x_y": 3, "x.y": 4, "x_y_2": 5},
        {"x.y": 6, "port_elements": 7},
    )
    got = check_valid(text)
    p2 = (*P[:2], ("stage", "p#2"))
    assert got[("reactive_gauge_port_elements", P)] == 2
    assert got[("reactive_gauge_port_elements_2", P)] == 1
    assert got[("reactive_gauge_port_elements_2", p2)] == 7
    assert got[("reactive_x_y", P)] == 3
    assert got[("reactive_x_y_2", P)] == 5
    assert got[("reactive_x_y_3", P)] == 4
    assert got[("reactive_x_y_3", p2)] == 6


def test_the_rule_depends_on_the_names_not_their_order() -> None:
    names = ["queue.depth", "queue-depth", "queue_depth", "port_elements_total", "lag"]
    expected = {
        "queue_depth": "reactive_queue_depth",
        "queue-depth": "reactive_queue_depth_2",
        "queue.depth": "reactive_queue_depth_3",
        "port_elements_total": "reactive_gauge_port_elements_total",
        "lag": "reactive_lag",
    }
    assert rp.own_families(names) == expected
    assert rp.own_families(reversed(names)) == expected
