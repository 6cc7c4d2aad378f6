"""Prometheus export of the stream counters (extra ``metrics``: ``prometheus-client``).

``register(materializer)`` adds a collector to a registry (the default one unless
given); every scrape takes a snapshot on the materializer's event loop (scrapes run in
the HTTP server's thread) and exposes, with labels ``graph``, ``stage`` (the stage's id
in its graph: ``map``, ``map#2``) and, per port, ``port`` and ``direction``
(``in``/``out``):

=========================================== ======= ========================================
``reactive_port_elements_total``            counter elements through the port
``reactive_port_pushes_total``              counter pushes (a fast-path batch is one)
``reactive_port_pulls_total``               counter pulls
``reactive_port_backpressured_seconds_total`` counter time the connection had no demand
``reactive_port_starved_seconds_total``     counter time it had demand and no element
``reactive_stage_backpressured_ratio``      gauge   largest back-pressured share (outlets)
``reactive_stage_starved_ratio``            gauge   largest starved share (inlets)
``reactive_stage_blame_ratio``              gauge   ``reactive.observe.blame`` of the stage
``reactive_stage_errors_total``             counter exceptions its handlers raised
``reactive_stage_restarts_total``           counter supervision restarts
``reactive_stage_resumes_total``            counter supervision resumes
``reactive_stage_failed``                   gauge   1 once the stage failed (the origin)
``reactive_buffer_used``                    gauge   elements in a boundary's or buffer's
``reactive_buffer_capacity``                gauge   its capacity (when fixed)
``reactive_<gauge>``                        gauge   a stage's own gauges (``gauges``)
=========================================== ======= ========================================

Counters exist for graphs with metrics on; buffer gauges and the stages' own gauges
(``StageSnapshot.gauges``) for every running graph. A stage's gauge named ``g`` is
exported as ``reactive_g``; a gauge with figures by key (a consumer's lag per partition)
has one more label, ``key``. The Kafka stages' gauges: ``reactive_kafka_consumer_lag``
(``key``: ``topic-partition``), ``reactive_kafka_records_buffered``,
``reactive_kafka_commits_in_flight``, ``reactive_kafka_messages_in_flight``,
``reactive_kafka_produce_latency_p50_seconds`` and ``..._p99_seconds``.

Graphs may share a name (the same pipeline run again, or several at once): each label set
is one series. A counter is the sum over every run with those labels, running or
finished, and never goes down: the final counts of finished runs dropped from the
snapshots (past the last 16) are kept per label set (an unnamed graph, ``graph-N``, has
no namesake, so its series ends instead). A gauge is read from the running graphs with
those labels: buffer used and capacity and a stage's own gauges are summed over them,
the ratios, ``failed`` and own gauges named ``*_seconds`` or ``*_ratio`` (latency
percentiles) take the largest; with none running, the last state of the most recent
finished one.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

try:
    from prometheus_client.core import REGISTRY, CounterMetricFamily, GaugeMetricFamily
    from prometheus_client.registry import Collector, CollectorRegistry
except ModuleNotFoundError as _missing:
    if not (_missing.name or "").startswith("prometheus_client"):
        raise
    raise ModuleNotFoundError(
        f"reactive.observe.prometheus needs prometheus-client ({_missing}), "
        "which the 'metrics' extra installs: "
        "pip install 'reactive-streams-py[metrics]' (from a checkout: pip install -e '.[metrics]')",
        name=_missing.name,
    ) from _missing

from ._snapshot import (
    ExportView,
    MaterializerSnapshot,
    export_view,
    export_view_from_any_thread,
)

__all__ = ["StreamCollector", "register"]

_PORT = ["graph", "stage", "port", "direction"]
_STAGE = ["graph", "stage"]


class StreamCollector(Collector):
    """A Prometheus collector exposing a materializer's stream counters (see module)."""

    def __init__(self, materializer: Any, timeout: float = 5.0) -> None:
        self.materializer = materializer
        self.timeout = timeout

    def describe(self) -> Iterator[Any]:
        """The metric families without samples (registration takes no snapshot)."""
        yield from families(MaterializerSnapshot("", 0.0, ()))

    def collect(self) -> Iterator[Any]:
        """One snapshot per scrape, with the retired counters, as metric families."""
        yield from view_families(export_view_from_any_thread(self.materializer, self.timeout))


def families(snap: MaterializerSnapshot) -> Iterator[Any]:
    """The metric families of one snapshot (no retired counters: see ``view_families``)."""
    return view_families(export_view(snap))


def view_families(view: ExportView) -> Iterator[Any]:
    """The metric families of an ``ExportView``: one sample per label set."""
    port = {
        key: CounterMetricFamily(f"reactive_port_{key}", doc, labels=_PORT)
        for key, doc in (
            ("elements", "Elements through the port."),
            ("pushes", "Pushes on the port's connection (a fast-path batch counts once)."),
            ("pulls", "Pulls on the port's connection."),
            ("backpressured_seconds", "Seconds the connection had no demand outstanding."),
            ("starved_seconds", "Seconds the connection had demand and no element."),
        )
    }
    stage_g = {
        key: GaugeMetricFamily(f"reactive_stage_{key}", doc, labels=_STAGE)
        for key, doc in (
            ("backpressured_ratio", "Largest share of time an outlet waited for demand."),
            ("starved_ratio", "Largest share of time an inlet waited for an element."),
            ("blame_ratio", "How much the stage holds its graph up (reactive.observe.blame)."),
            ("failed", "1 once the stage failed with an error of its own (a failure's origin)."),
        )
    }
    stage_c = {
        key: CounterMetricFamily(f"reactive_stage_{key}", doc, labels=_STAGE)
        for key, doc in (
            ("errors", "Exceptions raised by the stage's handlers."),
            ("restarts", "Supervision restarts."),
            ("resumes", "Supervision resumes."),
        )
    }
    own: dict[str, GaugeMetricFamily] = {}
    used = GaugeMetricFamily("reactive_buffer_used", "Elements in the buffer.", labels=_STAGE)
    cap = GaugeMetricFamily("reactive_buffer_capacity", "Capacity of the buffer.", labels=_STAGE)
    for pkey, pm in view.ports.items():
        pl = list(pkey)
        port["elements"].add_metric(pl, pm.elements)
        port["pushes"].add_metric(pl, pm.pushes)
        port["pulls"].add_metric(pl, pm.pulls)
        port["backpressured_seconds"].add_metric(pl, pm.backpressured_seconds)
        port["starved_seconds"].add_metric(pl, pm.starved_seconds)
    for skey, counts in view.stage_counts.items():
        stage_c["errors"].add_metric(list(skey), counts.errors)
        stage_c["restarts"].add_metric(list(skey), counts.restarts)
        stage_c["resumes"].add_metric(list(skey), counts.resumes)
    for skey, g in view.stages.items():
        labels = list(skey)
        if g.buffer_used is not None:
            used.add_metric(labels, g.buffer_used)
        if g.buffer_capacity is not None:
            cap.add_metric(labels, g.buffer_capacity)
        for name, value in g.own.items():
            keyed = isinstance(value, Mapping)
            family = own.get(name)
            if family is None:
                family = own[name] = GaugeMetricFamily(
                    f"reactive_{name}",
                    f"The stage gauge {name!r} (StageSnapshot.gauges).",
                    labels=[*_STAGE, "key"] if keyed else _STAGE,
                )
            if isinstance(value, Mapping):
                for key, v in value.items():
                    family.add_metric([*labels, key], v)
            else:
                family.add_metric(labels, value)
        if g.backpressured_ratio is None or g.starved_ratio is None or g.failed is None:
            continue  # no metrics
        stage_g["backpressured_ratio"].add_metric(labels, g.backpressured_ratio)
        stage_g["starved_ratio"].add_metric(labels, g.starved_ratio)
        stage_g["blame_ratio"].add_metric(labels, g.blame_ratio or 0.0)
        stage_g["failed"].add_metric(labels, g.failed)
    yield from port.values()
    yield from stage_g.values()
    yield from stage_c.values()
    yield used
    yield cap
    yield from own.values()


def register(
    materializer: Any, registry: CollectorRegistry | None = None, timeout: float = 5.0
) -> StreamCollector:
    """Register a ``StreamCollector`` for ``materializer`` with ``registry`` (default:
    prometheus_client's global ``REGISTRY``); ``registry.unregister(collector)`` removes
    it."""
    collector = StreamCollector(materializer, timeout)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
