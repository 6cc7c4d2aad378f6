"""The table-based scoring service (what ``make demo`` runs): models per data type from a
global table, scoring as a stream-table join, statistics in a changelogged RocksDB store,
and the tutorial's HTTP endpoints.

::

    models topic (key: data type) ──▶ Tables.global_table ──▶ KTable ─────────┐
                                                                              │ left join
    data topic ──source_with_offset_context──▶ decode (data type from header) ─┴─▶ score
        ──▶ stateful_map_by_key(stats, key=data type)   (RocksDB + changelog topic)
        ──▶ envelope ──▶ Producer.flow_with_context ──▶ Committer.sink_with_offset_context

    GET /models, GET /state, GET /state/{dataType}  (ServingApi, aiohttp, same event loop)

- Each data record carries its data type in header ``data-type`` (the loader's
  ``data_type=``); the record is joined with that type's model in the table (a left join:
  a type without a model, or a record that does not decode, is not scored) and scored.
- The statistics per data type (:func:`~.table_serving.stats_updater`: model, since,
  usage, scoring duration min/max/mean, unscored) are kept in ``Stores.persistent`` under
  ``state_dir``, backed by a compacted changelog topic (``connectors.kafka.state``). The
  stats are global (one store instance, changelog partition 0; the changelog is sized
  like the one-partition models topic), not per data partition.
- Offsets are committed with the contexts: a data offset only after the changelog
  acknowledged the statistics it updated and the scored/dead-letter record was written.
- Restart: the RocksDB store in ``state_dir`` keeps the statistics; on start the
  changelog is read after the store's checkpoint. With a memory-backed broker that
  starts empty (the demo's embedded one), the changelog is empty or shorter than the
  checkpoint: nothing is applied and the local store is kept as it is
  (``tests/samples/test_table_service.py``). The changelog topic is named after an
  application id kept in ``state_dir`` (``application-id``), so one state dir always
  pairs with one changelog, and two state dirs on one broker never share one.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from connectors.kafka import (
    Committer,
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
from connectors.kafka.serde import str_deserializer
from connectors.kafka.state import ChangeloggedStore, changelogged
from connectors.kafka.tables import KTable, Tables
from reactive import Keep, Materializer
from reactive.state import Stores, StoreSpec

from .loader import DATA_TYPE_HEADER
from .records import DataRecord, RecordDecodeError, ScoredRecord, decode_record, encode_scored
from .service import (
    DATA_FETCH_MAX_WAIT_MS,
    PRODUCER_MAX_BATCH_SIZE,
    LatencyWindow,
    ServiceCounters,
    Topics,
    consumer_lag,
    dead_letter,
)
from .stats import LogHistogram
from .table_serving import ModelCache, Scored, ServingApi, scorer, stats_updater

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = [
    "STATS_STORE",
    "TableServiceConfig",
    "TableServiceHandle",
    "Typed",
    "application_id",
    "decode_typed",
    "read_stats",
    "start_table_service",
    "stats_store",
]

STATS_STORE = "serving-stats"
"""Name of the statistics store (its RocksDB directory under the state dir)."""

UNKNOWN_TYPE = "unknown"
"""Data type of a record without a ``data-type`` header."""


@dataclass(frozen=True, slots=True)
class Typed:
    """A consumed data record with its data type: ``record``, or ``error`` if it does not
    decode; ``raw`` is the ``ConsumerRecord``."""

    data_type: str
    record: DataRecord | None
    error: str | None
    raw: Any


def decode_typed(raw: Any) -> Typed:
    """Decode a data ``ConsumerRecord`` and read its data type header; never raises."""
    data_type = UNKNOWN_TYPE
    for name, value in raw.headers or ():
        if name == DATA_TYPE_HEADER and value:
            data_type = bytes(value).decode("utf-8", "replace")
    if raw.value is None:
        return Typed(data_type, None, "cannot decode data record: the value is null", raw)
    try:
        return Typed(data_type, decode_record(raw.value), None, raw)
    except RecordDecodeError as exc:
        return Typed(data_type, None, str(exc), raw)


def application_id(state_dir: Path) -> str:
    """The application id of ``state_dir`` (file ``application-id``), made on first use:
    it names the statistics' changelog topic."""
    path = state_dir / "application-id"
    if path.exists():
        app = path.read_text().strip()
        if app:
            return app
    app = f"wine-scorer-{uuid.uuid4().hex[:8]}"
    state_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(app + "\n")
    return app


def stats_store(state_dir: Path) -> StoreSpec[Any, Any]:
    """The statistics store's declaration: RocksDB in ``state_dir/serving-stats``."""
    return Stores.persistent(STATS_STORE, state_dir)


def read_stats(state_dir: Path) -> dict[str, dict[str, Any]]:
    """The statistics per data type kept in ``state_dir`` (empty if there are none). Call
    it while no service has the store open (RocksDB locks it)."""
    spec = stats_store(state_dir).for_partition(0)  # the one instance: changelog partition 0
    if not (state_dir / f"{STATS_STORE}.0").exists():
        return {}
    store = spec.open()
    try:
        return dict(store.items())
    finally:
        store.close()


@dataclass
class TableServiceConfig:
    """How to run the table-based service; ``bootstrap_servers`` and ``state_dir`` are
    required. ``http_port`` 0 picks a free port; ``consumer_properties`` go to every
    consumer (e.g. short sessions for a fast group join)."""

    bootstrap_servers: str
    state_dir: Path
    topics: Topics = field(default_factory=Topics)
    group_id: str = "wine-scorer"
    http_host: str = "127.0.0.1"
    http_port: int = 0
    consumer_properties: Mapping[str, Any] = field(default_factory=dict)
    committer_settings: CommitterSettings = field(
        default_factory=lambda: CommitterSettings(max_batch=500, max_interval=0.2)
    )
    models_timeout: float = 30.0
    clock: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)


@dataclass
class TableServiceHandle:
    """A running table-based service."""

    control: DrainingControl[Any]
    """The data consumer's control paired with the committer sink's completion."""
    models: KTable
    """The global table of model messages by data type."""
    stats: Any
    """The statistics store's live ``StoreView`` (data type -> statistics dict)."""
    store: ChangeloggedStore
    """The statistics' changelogged store declaration (``metrics()``: restore figures)."""
    cache: ModelCache
    api: ServingApi
    """The HTTP endpoints; ``api.url`` is where they listen."""
    restored: dict[str, dict[str, Any]]
    """The statistics the state dir held at start (from earlier runs)."""
    latency: LatencyWindow
    counters: ServiceCounters
    scoring_us: LogHistogram
    """Scoring times of this run (µs), all data types."""

    def lag(self) -> int | None:
        """Consumer lag of the data topic (sum over partitions), None before a fetch."""
        return consumer_lag(self.control)

    def model_label(self) -> str:
        """The model serving each data type, e.g. ``red wine-linear v1, white -``."""
        parts = []
        for data_type, raw in self.models.items():
            model = self.cache.model(data_type, raw)
            parts.append(f"{data_type} {model.name} v{model.version}" if model else data_type)
        return ", ".join(parts) or "(no model)"

    def models_loaded(self) -> int:
        """Valid model messages taken into service, all data types."""
        return sum(self.cache.loaded.values())

    def models_rejected(self) -> int:
        """Model messages refused, all data types."""
        return sum(self.cache.rejected.values())

    async def drain_and_shutdown(self) -> Any:
        """Stop consuming, let everything in flight be written, acknowledged and
        committed, close the store (its changelog writes and checkpoint), the table and
        the HTTP server."""
        try:
            return await self.control.drain_and_shutdown()
        finally:
            with contextlib.suppress(Exception):
                await self.store.wait_closed()
            await self.api.stop()
            await self.models.stop()


def _envelope(
    topics: Topics, latency: LatencyWindow, counters: ServiceCounters, scoring_us: LogHistogram
) -> Callable[[tuple[Typed, Scored]], Any]:
    def envelope(pair: tuple[Typed, Scored]) -> Any:
        typed, scored = pair
        if typed.record is None:
            counters.dead_letters += 1
            type_header = ((DATA_TYPE_HEADER, typed.data_type.encode()),)
            dead = dead_letter(topics, typed.raw, typed.error or "", type_header)
            return ProducerMessage.single(dead, None)
        if scored.score is None:  # no valid model for the type: commit only
            counters.passed += 1
            return ProducerMessage.pass_through(None)
        counters.scored += 1
        record = typed.record
        latency.record(time.time_ns() / 1e6 - record.ts_ms)
        scoring_us.record(scored.duration_ms * 1000.0)
        out = ScoredRecord(
            record.id,
            scored.score,
            scored.model,
            scored.version,
            record.ts_ms,
            scored.at_ms,
            scored.duration_ms * 1000.0,
        )
        value = encode_scored(out)
        return ProducerMessage.single(
            ProducerRecord(topics.scored, value, key=str(record.id).encode()), None
        )

    return envelope


def _join(
    cache: ModelCache, clock: Callable[[], int]
) -> Callable[[Typed, bytes | None], tuple[Typed, Scored]]:
    score = scorer(cache, clock)

    def combine(typed: Typed, raw: bytes | None) -> tuple[Typed, Scored]:
        if typed.record is None:
            rec_id = typed.raw.key.decode("utf-8", "replace") if typed.raw.key else ""
            return typed, Scored(typed.data_type, rec_id, "", 0, None, 0.0, clock(), typed.error)
        if raw is None:
            reason = f"no model for data type {typed.data_type!r}"
            return typed, Scored(
                typed.data_type, typed.record.id, "", 0, None, 0.0, clock(), reason
            )
        return typed, score((typed.data_type, typed.record), raw)

    return combine


def _with_stats(cache: ModelCache) -> Callable[[Any, tuple[Typed, Scored]], tuple[Any, Any]]:
    update = stats_updater(cache)

    def f(stats: Any, pair: tuple[Typed, Scored]) -> tuple[Any, Any]:
        return update(stats, pair[1])[0], pair

    return f


async def start_table_service(
    config: TableServiceConfig, materializer: Materializer | None = None
) -> TableServiceHandle:
    """Start the service: read the models table (waits until it caught up), open the
    statistics store (restoring its changelog tail), run the scoring stream and start the
    HTTP endpoints. Stop it with :meth:`TableServiceHandle.drain_and_shutdown`.

    Raises ``OSError`` when the HTTP port cannot be bound (the stream is stopped first).
    """
    topics = config.topics
    state_dir = Path(config.state_dir)
    restored = read_stats(state_dir)
    app = application_id(state_dir)
    servers = config.bootstrap_servers
    props = {"fetch_max_wait_ms": DATA_FETCH_MAX_WAIT_MS, **config.consumer_properties}
    cache = ModelCache()
    models = (
        Tables.global_table(
            ConsumerSettings(servers, key_deserializer=str_deserializer, properties=props),
            topics.models,
            cache.table_store(f"{topics.models}-table"),
        )
        .named("models-table")
        .run(materializer)
    )
    try:
        await models.ready(timeout=config.models_timeout)
    except BaseException:
        await models.stop()
        raise
    data_settings = ConsumerSettings(
        servers, config.group_id, auto_offset_reset="earliest", properties=props
    )
    producer_settings = ProducerSettings(
        servers, linger_ms=2, max_batch_size=PRODUCER_MAX_BATCH_SIZE
    )
    store = changelogged(
        stats_store(state_dir),
        ProducerSettings(servers, linger_ms=2),
        ConsumerSettings(servers, properties=props),
        application_id=app,
        # The embedded broker starts empty each run: its changelog cannot vouch for the
        # store's checkpoint, and the demo's local store is the reference (a WARNING says
        # so); against a real cluster leave the default, "wipe", as Kafka Streams does.
        checkpoint_outside_changelog="keep",
    )
    latency = LatencyWindow()
    counters = ServiceCounters()
    scoring_us = LogHistogram()
    graph = (
        Consumer.source_with_offset_context(data_settings, Subscriptions.topics(topics.data))
        .map(decode_typed)
        .left_join_table(models, lambda t: t.data_type, _join(cache, config.clock))
        .stateful_map_by_key(
            store.for_partition(TopicPartition(topics.models, 0)),
            lambda pair: pair[0].data_type,
            _with_stats(cache),
            Keep.both,
        )
        .map(_envelope(topics, latency, counters, scoring_us))
        .via(Producer.flow_with_context(producer_settings))
        .to_mat(
            Committer.sink_with_offset_context(config.committer_settings),
            lambda cv, done: (DrainingControl(cv[0], done), cv[1]),
        )
    )
    control, stats = graph.named("scoring-service").run(materializer)
    api = ServingApi(models, stats, cache, config.http_host, config.http_port)
    try:
        await api.start()
    except BaseException as exc:
        await control.drain_and_shutdown()
        await store.wait_closed()
        await models.stop()
        if isinstance(exc, OSError):
            where = f"{config.http_host}:{config.http_port}"
            raise OSError(exc.errno, f"cannot serve HTTP on {where}: {exc.strerror}") from exc
        raise
    return TableServiceHandle(
        control, models, stats, store, cache, api, restored, latency, counters, scoring_us
    )
