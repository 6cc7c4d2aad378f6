"""Prometheus export of the stream counters (extra ``metrics``: ``prometheus-client``).

``register(materializer)`` adds a collector to a registry (the default one unless
given; a second materializer registered there joins the same collector); every scrape
takes a snapshot on each materializer's event loop (scrapes run in the HTTP server's
thread) and exposes, with labels ``materializer`` (its name; materializers sharing a
name are summed as one), ``graph``, ``stage`` (the stage's series in its graph, see
``StageSnapshot``: its id, ``map``, ``map#2``, or for a substream's stages, the id
without the substream's number, ``merge_substreams/map``) and, per port, ``port`` and
``direction`` (``in``/``out``):

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
exported as ``reactive_g`` (characters not allowed in a Prometheus name become ``_``;
a name one of the families above takes, with a counter's ``_total`` and ``_created``,
gets ``gauge_`` in front: ``reactive_gauge_port_elements_total``; two gauge names that
give one name are told apart by a suffix, ``reactive_queue_depth_2``, see
``own_families``);
a gauge with figures by key (a consumer's lag per partition) has one more label,
``key`` (a stage reporting a plain figure under the same name gets key ``""``). The
Kafka stages' gauges: ``reactive_kafka_consumer_lag`` (``key``: ``topic-partition``),
``reactive_kafka_records_buffered``, ``reactive_kafka_commits_in_flight``,
``reactive_kafka_messages_in_flight``,
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

import logging
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping
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
    export_views_from_any_thread,
)

__all__ = ["StreamCollector", "register"]

_PORT = ["materializer", "graph", "stage", "port", "direction"]
_STAGE = ["materializer", "graph", "stage"]

#: The counter and gauge families this module always exposes.
_COUNTERS = frozenset(
    {
        *(f"reactive_port_{k}" for k in ("elements", "pushes", "pulls")),
        "reactive_port_backpressured_seconds",
        "reactive_port_starved_seconds",
        *(f"reactive_stage_{k}" for k in ("errors", "restarts", "resumes")),
    }
)
_GAUGES = frozenset(
    {
        *(f"reactive_stage_{k}" for k in ("backpressured_ratio", "starved_ratio")),
        *(f"reactive_stage_{k}" for k in ("blame_ratio", "failed")),
        "reactive_buffer_used",
        "reactive_buffer_capacity",
    }
)
#: The names those families take in an exposition (a counter ``x`` has samples
#: ``x_total`` and, in OpenMetrics, ``x_created``: a family of one of these names clashes).
_BUILT_IN = frozenset(
    {*_GAUGES, *(f"{c}{suffix}" for c in _COUNTERS for suffix in ("", "_total", "_created"))}
)

_log = logging.getLogger("reactive")

#: Own-gauge name clashes already warned about (once per pair of names per process).
_WARNED: set[tuple[str, str]] = set()


class StreamCollector(Collector):
    """A Prometheus collector exposing materializers' stream counters (see module).

    One collector serves every materializer registered with its registry (``register``
    adds them): each series has a ``materializer`` label (the materializer's name;
    materializers sharing a name are summed as one).
    """

    def __init__(self, materializer: Any, timeout: float = 5.0) -> None:
        self.materializers: list[Any] = [materializer]
        self.timeout = timeout

    @property
    def materializer(self) -> Any:
        """The first materializer this collector exposes."""
        return self.materializers[0]

    def add(self, materializer: Any) -> None:
        """Expose ``materializer`` too (once)."""
        if not any(m is materializer for m in self.materializers):
            self.materializers.append(materializer)

    def remove(self, materializer: Any) -> None:
        """Stop exposing ``materializer`` (the collector stays registered)."""
        self.materializers = [m for m in self.materializers if m is not materializer]

    def describe(self) -> Iterator[Any]:
        """The metric families without samples (registration takes no snapshot)."""
        yield from families(MaterializerSnapshot("", 0.0, ()))

    def collect(self) -> Iterator[Any]:
        """One snapshot per materializer per scrape, with the retired counters, as
        metric families."""
        yield from views_families(export_views_from_any_thread(self.materializers, self.timeout))


def families(snap: MaterializerSnapshot) -> Iterator[Any]:
    """The metric families of one snapshot (no retired counters: see ``view_families``)."""
    return views_families({snap.name: export_view(snap)})


def view_families(view: ExportView, materializer: str = "materializer") -> Iterator[Any]:
    """The metric families of one materializer's ``ExportView``."""
    return views_families({materializer: view})


def metric_name(name: str) -> str:
    """``reactive_<name>`` for a stage's own gauge ``name``, made a valid Prometheus name
    (characters other than letters, digits, ``_`` and ``:`` become ``_``); a name that
    one of this module's families takes (``reactive_stage_failed``, a counter's
    ``reactive_port_elements_total`` or ``..._created`` sample) gets ``gauge_`` in front
    (``reactive_gauge_port_elements_total``). Two gauge names may still give one name:
    ``own_families`` settles that."""
    full = "reactive_" + re.sub(r"[^a-zA-Z0-9_:]", "_", name)
    return "reactive_gauge_" + full[len("reactive_") :] if full in _BUILT_IN else full


def own_families(names: Iterable[str]) -> dict[str, str]:
    """The family of each of a scrape's own gauge names (``StageSnapshot.gauges``): one
    family per name, so an exposition never has two series with one name and labels.

    Each name gets ``metric_name(name)``. Names that give the same one (``queue.depth``,
    ``queue-depth`` and ``queue_depth`` all give ``reactive_queue_depth``; a name
    ``gauge_x`` and a name that is a built-in ``x``) are ordered: first the one that gets
    it unchanged (``reactive_`` + the name itself), then by name. The first keeps it;
    each other gets the first of ``_2``, ``_3``, ... that no family of the scrape takes
    (``reactive_queue_depth_2``). The rule depends only on the names in the scrape, so a
    gauge keeps its family from scrape to scrape while the stages reporting gauges stay
    the same. Each clash is logged once (a WARNING naming both gauges and the family
    the renamed one gets)."""
    base = {name: metric_name(name) for name in dict.fromkeys(names)}
    groups: dict[str, list[str]] = {}
    for name, fam in base.items():
        groups.setdefault(fam, []).append(name)
    taken = set(groups) | _BUILT_IN
    out: dict[str, str] = {}
    for fam in sorted(groups):
        first, *others = sorted(groups[fam], key=lambda n: ("reactive_" + n != fam, n))
        out[first] = fam
        for name in others:
            k = 2
            while f"{fam}_{k}" in taken:
                k += 1
            out[name] = renamed = f"{fam}_{k}"
            taken.add(renamed)
            if (first, name) not in _WARNED:
                _WARNED.add((first, name))
                _log.warning(
                    "prometheus: the stage gauges %r and %r both make the name %s: "
                    "%r is exported as %s",
                    first,
                    name,
                    fam,
                    name,
                    renamed,
                )
    return out


def views_families(views: Mapping[str, ExportView]) -> Iterator[Any]:
    """The metric families of ``ExportView``\\ s by materializer name: one sample per
    label set. A stage's own gauge is one family per name: with figures by key from any
    stage it has the ``key`` label, and a plain figure of the same name has key ``""``
    (which Prometheus reads as no label). Each own gauge name has a family of its own
    (``own_families``: a name clashing with another's or a built-in family's is
    renamed), so the exposition never repeats a series or a family name."""
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
    used = GaugeMetricFamily("reactive_buffer_used", "Elements in the buffer.", labels=_STAGE)
    cap = GaugeMetricFamily("reactive_buffer_capacity", "Capacity of the buffer.", labels=_STAGE)
    # A stage's own gauges: keyed (a ``key`` label) when any stage gives figures by key.
    keyed: dict[str, bool] = {}
    for view in views.values():
        for g in view.stages.values():
            for name, value in g.own.items():
                keyed[name] = keyed.get(name, False) or isinstance(value, Mapping)
    fams = own_families(keyed)
    own = {
        name: GaugeMetricFamily(
            fams[name],
            f"The stage gauge {name!r} (StageSnapshot.gauges).",
            labels=[*_STAGE, "key"] if by_key else _STAGE,
        )
        for name, by_key in keyed.items()
    }
    for mat, view in views.items():
        for pkey, pm in view.ports.items():
            pl = [mat, *pkey]
            port["elements"].add_metric(pl, pm.elements)
            port["pushes"].add_metric(pl, pm.pushes)
            port["pulls"].add_metric(pl, pm.pulls)
            port["backpressured_seconds"].add_metric(pl, pm.backpressured_seconds)
            port["starved_seconds"].add_metric(pl, pm.starved_seconds)
        for skey, counts in view.stage_counts.items():
            sl = [mat, *skey]
            stage_c["errors"].add_metric(sl, counts.errors)
            stage_c["restarts"].add_metric(sl, counts.restarts)
            stage_c["resumes"].add_metric(sl, counts.resumes)
        for skey, g in view.stages.items():
            labels = [mat, *skey]
            if g.buffer_used is not None:
                used.add_metric(labels, g.buffer_used)
            if g.buffer_capacity is not None:
                cap.add_metric(labels, g.buffer_capacity)
            for name, value in g.own.items():
                family = own[name]
                if isinstance(value, Mapping):
                    for key, v in value.items():
                        family.add_metric([*labels, key], v)
                elif keyed[name]:
                    family.add_metric([*labels, ""], value)
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


# The collector registered with each registry (one per registry: their families would
# clash), without keeping a registry alive.
_COLLECTORS: weakref.WeakKeyDictionary[Any, StreamCollector] = weakref.WeakKeyDictionary()


def register(
    materializer: Any, registry: CollectorRegistry | None = None, timeout: float = 5.0
) -> StreamCollector:
    """Expose ``materializer`` in ``registry`` (default: prometheus_client's global
    ``REGISTRY``): registers a ``StreamCollector`` there, or adds ``materializer`` to the
    one registered before (several materializers in one process, told apart by the
    ``materializer`` label); returns the collector. ``registry.unregister(collector)``
    removes it, ``collector.remove(materializer)`` one materializer."""
    reg = REGISTRY if registry is None else registry
    known = _COLLECTORS.get(reg)
    if known is not None and _registered(reg, known):
        known.add(materializer)
        return known
    collector = StreamCollector(materializer, timeout)
    reg.register(collector)
    _COLLECTORS[reg] = collector
    return collector


def _registered(registry: Any, collector: StreamCollector) -> bool:
    """Whether ``collector`` is still registered with ``registry`` (not unregistered)."""
    names = getattr(registry, "_collector_to_names", None)
    return names is None or collector in names
