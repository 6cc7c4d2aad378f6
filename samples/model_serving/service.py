"""The Kafka scoring service: data and model topics in, scored and dead-letter topics out.

::

    data topic ──committable_source──▶ decode ──▶ in0 ┌──────────────────┐
                                                      │ ModelScoringStage │──▶ envelope ──▶ Producer
    model topic ──plain_source (from offset 0)──▶ in1 └──────────────────┘     .committable_sink

- The data topic is read by ``Consumer.committable_source`` in consumer group
  ``group_id``. Each message is decoded in a ``map``; a value that fails to decode
  becomes an :class:`Incoming` with ``error`` set and no record, which the scoring stage
  passes through unscored.
- The model topic is read by ``Consumer.plain_source`` with a manual assignment of
  partition 0 from offset 0 and no group: every instance of the service sees every model,
  and a restarted service starts with the latest model again (the last valid one wins).
- After scoring, each element becomes a producer envelope (:func:`to_envelope`): a
  scored record goes to the scored topic keyed by its id; a decode failure goes to the
  dead-letter topic with the raw bytes, the original key and an ``error`` header (plus
  the source topic, partition and offset); a record that was not scored (only with
  ``unscored="pass"`` before the first model) is a ``pass_through`` that only commits.
  The envelope's pass-through is the data message's committable offset.
- ``Producer.committable_sink`` commits an offset only after the records produced for it
  and for every earlier element were acknowledged, so a stop or a crash never loses a
  record: on restart the group resumes at the last committed offset, and records after it
  are scored again (at-least-once).

Shutdown: :meth:`ServiceHandle.drain_and_shutdown` stops the data consumer, lets every
element in flight reach the topics and the last offsets be committed, then closes the
consumers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.kafka import (
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    DrainingControl,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from reactive import ClosedShape, Flow, GraphDSL, RunnableGraph

from .records import DataRecord, RecordDecodeError, ScoredRecord, decode_record, encode_scored
from .scoring import ModelScoringStage
from .stats import LogHistogram, ServingState, percentile

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "DATA_FETCH_MAX_WAIT_MS",
    "ERROR_HEADER",
    "Incoming",
    "LatencyWindow",
    "MODEL_FETCH_MAX_WAIT_MS",
    "PRODUCER_MAX_BATCH_SIZE",
    "ServiceConfig",
    "ServiceHandle",
    "Topics",
    "consumer_lag",
    "dead_letter",
    "decode_incoming",
    "scoring_service",
    "to_envelope",
]

ERROR_HEADER = "error"
"""Header of a dead-letter record that says why the data record could not be decoded."""

DATA_FETCH_MAX_WAIT_MS = 500
"""How long a fetch of the data topic may wait for new records (long poll).

The broker answers as soon as a record arrives (``fetch_min_bytes=1``), so this is not a
latency floor. It must stay well above the broker's read time: the embedded broker answers
*nothing* to a fetch whose wait is shorter than the read, and its read time grows with the
number of batches in a partition (about 0.7 ms per 1,000 on a 2-core machine). With 10 ms
the demo stopped scoring for good after 3-4 minutes (about 27,000 batches per partition).
"""

MODEL_FETCH_MAX_WAIT_MS = 500
"""How long a fetch of the (mostly idle) model topic may wait for a new model (long poll)."""

PRODUCER_MAX_BATCH_SIZE = 65536
"""Bytes per partition batch of the default producer settings (Kafka's default: 16384)."""


@dataclass(frozen=True, slots=True)
class Topics:
    """The four topic names of the service."""

    data: str = "wine-data"
    models: str = "wine-models"
    scored: str = "wine-scored"
    dead_letters: str = "wine-dead-letters"

    def all(self) -> tuple[str, str, str, str]:
        """The four names: data, models, scored, dead letters."""
        return (self.data, self.models, self.scored, self.dead_letters)


@dataclass(frozen=True, slots=True)
class Incoming:
    """A consumed data message, decoded: ``record`` or, if decoding failed, ``error``."""

    message: Any
    """The ``CommittableMessage`` from the data topic."""
    record: DataRecord | None
    error: str | None = None


def decode_incoming(message: Any) -> Incoming:
    """Decode the value of a committable data ``message`` into an :class:`Incoming`.

    Never raises: a value that is not a valid data record gives ``record=None`` and the
    :class:`RecordDecodeError` message as ``error``.
    """
    value = message.record.value
    if value is None:
        return Incoming(message, None, "cannot decode data record: the value is null")
    try:
        return Incoming(message, decode_record(value))
    except RecordDecodeError as exc:
        return Incoming(message, None, str(exc))


def _extract(incoming: Incoming) -> DataRecord | None:
    return incoming.record


class LatencyWindow:
    """End-to-end latencies (ms): the most recent ``size`` exactly, the whole run in a sketch.

    :meth:`percentile` and :meth:`mean` cover the last ``size`` records (the live display);
    :attr:`whole_run` (a :class:`~.stats.LogHistogram`, bounded memory, 1 % precision)
    covers every record since the start (the summary).
    """

    __slots__ = ("_ring", "_next", "_size", "count", "whole_run")

    def __init__(self, size: int = 2048) -> None:
        self._ring: list[float] = []
        self._next = 0
        self._size = size
        self.count = 0
        """Latencies recorded so far."""
        self.whole_run = LogHistogram()
        """Every latency recorded, as a quantile sketch."""

    def record(self, latency_ms: float) -> None:
        """Remember one latency."""
        self.count += 1
        self.whole_run.record(latency_ms)
        if len(self._ring) < self._size:
            self._ring.append(latency_ms)
        else:
            self._ring[self._next] = latency_ms
            self._next = (self._next + 1) % self._size

    def percentile(self, q: float) -> float | None:
        """The ``q``-th percentile of the retained latencies, None when there are none."""
        return percentile(sorted(self._ring), q) if self._ring else None

    def mean(self) -> float | None:
        """The mean of the retained latencies, None when there are none."""
        return math.fsum(self._ring) / len(self._ring) if self._ring else None


@dataclass
class ServiceCounters:
    """What the service wrote: scored records, dead letters, commits-only elements."""

    scored: int = 0
    dead_letters: int = 0
    passed: int = 0


def to_envelope(
    topics: Topics,
    pair: tuple[ScoredRecord | None, Incoming],
    *,
    on_scored: Callable[[ScoredRecord], None] | None = None,
    counters: ServiceCounters | None = None,
) -> Any:
    """The producer envelope of one scoring result; its pass-through is the data offset.

    Scored -> the scored topic, key = id. Decode failure -> the dead-letter topic with the
    raw value and key and headers ``error``, ``source-topic``, ``source-partition``,
    ``source-offset``. Unscored -> ``ProducerMessage.pass_through`` (commit only).
    """
    scored, incoming = pair
    msg = incoming.message
    offset = msg.committable_offset
    if scored is not None:
        if on_scored is not None:
            on_scored(scored)
        if counters is not None:
            counters.scored += 1
        record = ProducerRecord(topics.scored, encode_scored(scored), key=str(scored.id).encode())
        return ProducerMessage.single(record, offset)
    if incoming.error is not None:
        if counters is not None:
            counters.dead_letters += 1
        return ProducerMessage.single(dead_letter(topics, msg.record, incoming.error), offset)
    if counters is not None:
        counters.passed += 1
    return ProducerMessage.pass_through(offset)


def dead_letter(
    topics: Topics, raw: Any, error: str, headers: tuple[tuple[str, bytes], ...] = ()
) -> ProducerRecord[Any, Any]:
    """The dead-letter record of the data ``ConsumerRecord`` ``raw`` that failed with
    ``error``: its value and key, headers ``error``, ``source-topic``,
    ``source-partition``, ``source-offset`` and then ``headers``."""
    all_headers = (
        (ERROR_HEADER, error.encode()),
        ("source-topic", str(raw.topic).encode()),
        ("source-partition", str(raw.partition).encode()),
        ("source-offset", str(raw.offset).encode()),
        *headers,
    )
    return ProducerRecord(topics.dead_letters, raw.value, key=raw.key, headers=all_headers)


def consumer_lag(control: Any) -> int | None:
    """The lag of a consumer ``control`` (sum over partitions), None before a fetch or
    once the consumer stopped."""
    try:
        lags = control.metrics().get("lag") or {}
    except Exception:  # the consumer has stopped: no figure
        return None
    values = [v for v in lags.values() if v is not None]
    return sum(values) if values else None


@dataclass
class ServiceConfig:
    """How to run the service; only ``bootstrap_servers`` is required.

    ``producer_settings`` default to ``linger_ms=2`` and ``max_batch_size`` =
    :data:`PRODUCER_MAX_BATCH_SIZE`. ``consumer_properties`` go to both consumers (e.g.
    ``TEST_CONSUMER_PROPERTIES`` for fast group joins in tests; they override the fetch
    waits). ``after_scoring`` is an optional ``Flow`` of
    ``(ScoredRecord | None, Incoming)`` pairs inserted between scoring and producing (the
    benchmark uses it to slow the scorer down).
    """

    bootstrap_servers: str
    topics: Topics = field(default_factory=Topics)
    group_id: str = "wine-scorer"
    unscored: str = "wait"
    consumer_properties: Mapping[str, Any] = field(default_factory=dict)
    committer_settings: CommitterSettings = field(
        default_factory=lambda: CommitterSettings(max_batch=500, max_interval=0.2)
    )
    producer_settings: ProducerSettings | None = None
    max_buffered_records: int = 500
    after_scoring: Flow[Any, Any, Any] | None = None
    on_scored: Callable[[ScoredRecord], None] | None = None


@dataclass
class ServiceHandle:
    """A running scoring service."""

    control: DrainingControl[Any]
    """Data consumer control paired with the committable sink's completion."""
    model_control: Any
    """Control of the model consumer."""
    state: ServingState
    """The scoring stage's live state (model in service, counts, scoring times)."""
    latency: LatencyWindow
    """End-to-end latencies (event time of the record to scoring), ms."""
    counters: ServiceCounters

    def lag(self) -> int | None:
        """Consumer lag of the data topic (sum over partitions), None before a fetch."""
        return consumer_lag(self.control)

    def model_label(self) -> str:
        """The model in service, e.g. ``wine-linear v1`` (``(no model)`` before one)."""
        snap = self.state.snapshot()
        return f"{snap.model_name} v{snap.model_version}" if snap.has_model else "(no model)"

    def models_loaded(self) -> int:
        """Models taken into service so far."""
        return self.state.snapshot().models_loaded

    def models_rejected(self) -> int:
        """Model messages refused so far."""
        return self.state.snapshot().models_rejected

    async def drain_and_shutdown(self) -> Any:
        """Stop consuming, let everything in flight be produced and committed, close."""
        try:
            return await self.control.drain_and_shutdown()
        finally:
            await self.model_control.shutdown()


def scoring_service(config: ServiceConfig) -> RunnableGraph[ServiceHandle]:
    """The service as a blueprint; ``run()`` gives a :class:`ServiceHandle`."""
    topics = config.topics
    # A long poll (see DATA_FETCH_MAX_WAIT_MS): answered as soon as records arrive.
    props = {"fetch_max_wait_ms": DATA_FETCH_MAX_WAIT_MS, **config.consumer_properties}
    data_settings = ConsumerSettings(
        config.bootstrap_servers,
        config.group_id,
        auto_offset_reset="earliest",
        properties=props,
        max_buffered_records=config.max_buffered_records,
    )
    # The model topic is nearly always idle: a fetch is a long poll that the broker answers
    # as soon as a model arrives (fetch_min_bytes=1); a short wait would only add empty
    # fetches competing with the data path for CPU (client and broker).
    model_props = {"fetch_max_wait_ms": MODEL_FETCH_MAX_WAIT_MS, **config.consumer_properties}
    model_settings = ConsumerSettings(
        config.bootstrap_servers, None, auto_offset_reset="earliest", properties=model_props
    )
    # Batches of up to 64 KiB per partition: aiokafka keeps one produce request in flight
    # per broker, so with Kafka's default 16 KiB (about 115 scored records) a backlog is
    # written at 115 records per partition per round trip and the producer's in-flight
    # bound (parallelism) holds the whole pipeline back. linger_ms stays short (latency).
    producer_settings = config.producer_settings or ProducerSettings(
        config.bootstrap_servers, linger_ms=2, max_batch_size=PRODUCER_MAX_BATCH_SIZE
    )
    data_source = Consumer.committable_source(data_settings, Subscriptions.topics(topics.data))
    model_source = Consumer.plain_source(
        model_settings, Subscriptions.assignment_with_offset({TopicPartition(topics.models, 0): 0})
    )
    sink = Producer.committable_sink(producer_settings, config.committer_settings)
    stage = ModelScoringStage(unscored=config.unscored, extract=_extract)
    latency = LatencyWindow()
    counters = ServiceCounters()
    user_on_scored = config.on_scored

    def on_scored(scored: ScoredRecord) -> None:
        latency.record(time.time_ns() / 1e6 - scored.event_ts_ms)
        if user_on_scored is not None:
            user_on_scored(scored)

    def envelope(pair: tuple[ScoredRecord | None, Incoming]) -> Any:
        return to_envelope(topics, pair, on_scored=on_scored, counters=counters)

    def blueprint(b: Any, data: Any, models: Any, scorer: Any, out: Any) -> Any:
        data.out >> b.add(Flow().map(decode_incoming)) >> scorer.in0
        models.out >> b.add(Flow().map(lambda rec: rec.value)) >> scorer.in1
        tail = scorer.out
        if config.after_scoring is not None:
            tail = (tail >> b.add(config.after_scoring)).out
        tail >> b.add(Flow().map(envelope)) >> out.in_
        return ClosedShape

    def handle(data_control: Any, model_control: Any, state: ServingState, done: Any) -> Any:
        return ServiceHandle(
            DrainingControl(data_control, done), model_control, state, latency, counters
        )

    graph = GraphDSL.create(blueprint, data_source, model_source, stage, sink, combine=handle)
    return RunnableGraph.from_graph(graph)
