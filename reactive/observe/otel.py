"""OpenTelemetry export of the stream counters (extra ``metrics``: ``opentelemetry-api``).

``instrument(materializer, meter_provider=None)`` creates observable instruments on a
meter named ``reactive`` (from the global meter provider unless one is given); the
SDK's readers call them. One collection (a reader's ``collect``, which calls every
observable callback in turn) reads one view per materializer, taken on its event loop by
the first callback that runs and shared by the others: every instrument of one export
shows the same moment (a port's pushes never exceed its elements), and a collection costs
one snapshot, as a Prometheus scrape does. A callback starts a new collection when the
view it would read was already read by that same callback (a second reader, the next
export); collections in different threads never share a view. When taking the view fails
(the loop blocked past ``timeout``), every callback of that collection raises that error
without waiting again. A second materializer instrumented on the same provider joins those
instruments. Attributes: ``materializer`` (its name; materializers sharing a name are
summed as one), ``graph``, ``stage`` (its series in the graph: its id, or without the
substream numbers for a substream's stages) and, per port, ``port`` and
``direction`` (``in``/``out``). Instruments:

- observable counters ``reactive.port.elements`` (``{element}``),
  ``reactive.port.pushes``, ``reactive.port.pulls``, ``reactive.port.backpressured_time``
  and ``reactive.port.starved_time`` (``s``), ``reactive.stage.errors``,
  ``reactive.stage.restarts``, ``reactive.stage.resumes``;
- observable gauges ``reactive.stage.backpressured_ratio``,
  ``reactive.stage.starved_ratio``, ``reactive.stage.blame_ratio`` (``1``),
  ``reactive.stage.failed`` (``1``: 1 once the stage failed with an error of its own, the
  origin of a failure, not the stages it reached; Prometheus' ``reactive_stage_failed``),
  ``reactive.buffer.used`` and ``reactive.buffer.capacity`` (``{element}``);
- observable gauge ``reactive.stage.gauge``: the stages' own gauges
  (``StageSnapshot.gauges``, e.g. the Kafka stages' consumer lag and produce latency),
  with attributes ``gauge`` (its name) and, for figures by key, ``key``.

Graphs may share a name: each attribute set is one data point. Counters are the sum over
every run with those attributes, running or finished, and never go down (the final
counts of finished runs dropped from the snapshots are kept per attribute set; an
unnamed graph, ``graph-N``, has no namesake and is not kept). Gauges are read from the
running graphs with those attributes: buffer used and capacity and the stages' own
gauges summed, the ratios, ``failed`` and own gauges named ``*_seconds`` or ``*_ratio``
the largest; with none running, the last state of the most recent finished one.

Only the API is needed at run time; the application configures the SDK and exporters.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import Any

try:
    from opentelemetry import metrics
    from opentelemetry.metrics import CallbackOptions, Observation
except ModuleNotFoundError as _missing:
    if not (_missing.name or "").startswith("opentelemetry"):
        raise
    raise ModuleNotFoundError(
        f"reactive.observe.otel needs opentelemetry-api ({_missing}), "
        "which the 'metrics' extra installs: "
        "pip install 'reactive-streams-py[metrics]' (from a checkout: pip install -e '.[metrics]')",
        name=_missing.name,
    ) from _missing

from ._snapshot import (
    ExportView,
    PortMetrics,
    StageCounts,
    StageGauges,
    export_views_from_any_thread,
)

__all__ = ["instrument"]

_PortValue = Callable[[PortMetrics], float]
_CountValue = Callable[[StageCounts], float]
_GaugeValue = Callable[[StageGauges], float | None]

_PORT_COUNTERS: dict[str, tuple[str, str, _PortValue]] = {
    "reactive.port.elements": ("{element}", "Elements through the port.", lambda m: m.elements),
    "reactive.port.pushes": ("{push}", "Pushes (a fast-path batch is one).", lambda m: m.pushes),
    "reactive.port.pulls": ("{pull}", "Pulls.", lambda m: m.pulls),
    "reactive.port.backpressured_time": (
        "s",
        "Time the connection had no demand outstanding.",
        lambda m: m.backpressured_seconds,
    ),
    "reactive.port.starved_time": (
        "s",
        "Time the connection had demand and no element.",
        lambda m: m.starved_seconds,
    ),
}

_STAGE_COUNTERS: dict[str, tuple[str, str, _CountValue]] = {
    "reactive.stage.errors": (
        "{error}",
        "Exceptions raised by the stage's handlers.",
        lambda c: c.errors,
    ),
    "reactive.stage.restarts": ("{restart}", "Supervision restarts.", lambda c: c.restarts),
    "reactive.stage.resumes": ("{resume}", "Supervision resumes.", lambda c: c.resumes),
}

_STAGE_GAUGES: dict[str, tuple[str, str, _GaugeValue]] = {
    "reactive.stage.backpressured_ratio": (
        "1",
        "Largest share of time an outlet waited for demand.",
        lambda g: g.backpressured_ratio,
    ),
    "reactive.stage.starved_ratio": (
        "1",
        "Largest share of time an inlet waited for an element.",
        lambda g: g.starved_ratio,
    ),
    "reactive.stage.blame_ratio": (
        "1",
        "How much the stage holds its graph up (reactive.observe.blame).",
        lambda g: g.blame_ratio,
    ),
    "reactive.stage.failed": (
        "1",
        "1 once the stage failed with an error of its own (a failure's origin).",
        lambda g: g.failed,
    ),
    "reactive.buffer.used": (
        "{element}",
        "Elements in the stage's buffer.",
        lambda g: g.buffer_used,
    ),
    "reactive.buffer.capacity": (
        "{element}",
        "Capacity of the stage's buffer.",
        lambda g: g.buffer_capacity,
    ),
}


_Callback = Callable[[CallbackOptions], Iterable[Observation]]


class _Collection:
    """The views one collection reads (or the error taking them raised), and the
    callbacks that read them so far."""

    __slots__ = ("views", "error", "served")

    def __init__(self, views: dict[str, ExportView] | None, error: BaseException | None) -> None:
        self.views = views
        self.error = error
        self.served: set[int] = set()


class _Instruments:
    """The callbacks of one meter provider's instruments, over the materializers
    instrumented there. Each callback has a slot; one collection reads one set of views
    (see the module: a callback whose slot already read the current views starts the
    next collection)."""

    def __init__(self, materializer: Any, timeout: float) -> None:
        self.materializers: list[Any] = [materializer]
        self.timeout = timeout
        self.made: list[Any] = []
        self.slots = 0
        # The collection under way, per thread (a reader exporting in its own thread).
        self.local = threading.local()

    def add(self, materializer: Any) -> None:
        if not any(m is materializer for m in self.materializers):
            self.materializers.append(materializer)

    def views(self, slot: int) -> dict[str, ExportView]:
        """The views of the collection the callback in ``slot`` belongs to."""
        current: _Collection | None = getattr(self.local, "collection", None)
        if current is None or slot in current.served:
            try:
                current = _Collection(
                    export_views_from_any_thread(list(self.materializers), self.timeout), None
                )
            except Exception as exc:  # every callback of this collection reports it
                current = _Collection(None, exc)
            self.local.collection = current
        first = not current.served
        current.served.add(slot)
        if current.error is not None:
            # (the first callback with the error's traceback, the others without it)
            raise current.error if first else current.error.with_traceback(None)
        assert current.views is not None
        return current.views

    def callback(
        self, observe: Callable[[Mapping[str, ExportView]], list[Observation]]
    ) -> _Callback:
        """A callback observing the collection's views with ``observe``."""
        slot = self.slots
        self.slots += 1

        def callback(options: CallbackOptions) -> Iterable[Observation]:
            return observe(self.views(slot))

        return callback

    def port(self, value: _PortValue) -> _Callback:
        def observe(views: Mapping[str, ExportView]) -> list[Observation]:
            return [
                Observation(
                    value(m),
                    {
                        "materializer": mat,
                        "graph": graph,
                        "stage": stage,
                        "port": port,
                        "direction": direction,
                    },
                )
                for mat, view in views.items()
                for (graph, stage, port, direction), m in view.ports.items()
            ]

        return self.callback(observe)

    def counts(self, value: _CountValue) -> _Callback:
        def observe(views: Mapping[str, ExportView]) -> list[Observation]:
            return [
                Observation(value(c), {"materializer": mat, "graph": graph, "stage": stage})
                for mat, view in views.items()
                for (graph, stage), c in view.stage_counts.items()
            ]

        return self.callback(observe)

    def stage(self, value: _GaugeValue) -> _Callback:
        def observe(views: Mapping[str, ExportView]) -> list[Observation]:
            out = []
            for mat, view in views.items():
                for (graph, stage), g in view.stages.items():
                    v = value(g)
                    if v is not None:
                        attrs = {"materializer": mat, "graph": graph, "stage": stage}
                        out.append(Observation(v, attrs))
            return out

        return self.callback(observe)

    def gauges(self) -> _Callback:
        def observe(views: Mapping[str, ExportView]) -> list[Observation]:
            out = []
            for mat, view in views.items():
                for (graph, stage), g in view.stages.items():
                    for name, value in g.own.items():
                        attrs = {
                            "materializer": mat,
                            "graph": graph,
                            "stage": stage,
                            "gauge": name,
                        }
                        if isinstance(value, Mapping):
                            for key, v in value.items():
                                out.append(Observation(v, {**attrs, "key": key}))
                        else:
                            out.append(Observation(value, attrs))
            return out

        return self.callback(observe)


# The instruments made on each meter provider (a second set of the same names would be
# refused there: its callbacks never called), without keeping a provider alive.
_MADE: weakref.WeakKeyDictionary[Any, _Instruments] = weakref.WeakKeyDictionary()


def instrument(materializer: Any, meter_provider: Any = None, timeout: float = 5.0) -> list[Any]:
    """Create the observable instruments for ``materializer`` (see the module); returns
    them. ``meter_provider`` defaults to OpenTelemetry's global one. Instrumenting a
    second materializer on the same provider adds it to the instruments made for the
    first (told apart by the ``materializer`` attribute) and returns those."""
    provider = metrics.get_meter_provider() if meter_provider is None else meter_provider
    try:
        known = _MADE.get(provider)
    except TypeError:  # a provider that takes no weak reference: not remembered
        known = None
    if known is not None:
        known.add(materializer)
        return list(known.made)
    meter = metrics.get_meter("reactive", meter_provider=meter_provider)
    cb = _Instruments(materializer, timeout)
    made = cb.made
    for name, (unit, doc, pv) in _PORT_COUNTERS.items():
        made.append(
            meter.create_observable_counter(name, [cb.port(pv)], unit=unit, description=doc)
        )
    for name, (unit, doc, cv) in _STAGE_COUNTERS.items():
        made.append(
            meter.create_observable_counter(name, [cb.counts(cv)], unit=unit, description=doc)
        )
    for name, (unit, doc, sv) in _STAGE_GAUGES.items():
        made.append(meter.create_observable_gauge(name, [cb.stage(sv)], unit=unit, description=doc))
    made.append(
        meter.create_observable_gauge(
            "reactive.stage.gauge",
            [cb.gauges()],
            description="A stage's own gauges (StageSnapshot.gauges), by name and key.",
        )
    )
    try:
        _MADE[provider] = cb
    except TypeError:
        pass
    return list(made)
