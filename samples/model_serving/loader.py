"""The data loader: replays generated wine records into the data topic at a chosen rate.

``data_loader(...)`` is a ``RunnableGraph``; running it gives a :class:`LoaderHandle` with
a kill switch (stop the loader at once), the completion of the producer sink and live
counters. The stream::

    iter_records(seed) -> take(count) -> throttle(rate/s) -> stamp ts_ms = now
        -> encode (msgpack; every ``bad_every``-th record replaced by garbage)
        -> ProducerRecord(data_topic, key=id[, header data-type]) -> Producer.plain_sink

Records get the current wall-clock time as their event timestamp (``ts_ms``), so the
scorer's ``ScoredRecord.latency_ms`` is the end-to-end latency from loading to scoring.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from connectors.kafka import Producer, ProducerRecord, ProducerSettings
from reactive import Keep, KillSwitches, RunnableGraph, Source, UniqueKillSwitch

from .records import DataRecord, _make_record, encode_record, iter_records

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

__all__ = [
    "CORRUPT_PAYLOAD",
    "DATA_TYPE_HEADER",
    "LoaderHandle",
    "LoaderStats",
    "data_loader",
    "loader_records",
    "wine_colour",
]

CORRUPT_PAYLOAD: bytes = b"\xc1 this is not a data record"
"""What the loader writes instead of a record when asked to inject bad records."""


DATA_TYPE_HEADER = "data-type"
"""Header naming a data record's data type (the table-based service picks its model by it)."""


def wine_colour(record: DataRecord) -> str:
    """The demo's data type of ``record``: ``"white"`` for every third id, else ``"red"``."""
    rec_id = record.id
    n = rec_id if isinstance(rec_id, int) else sum(str(rec_id).encode())
    return "white" if n % 3 == 0 else "red"


@dataclass
class LoaderStats:
    """Counters of a running loader (updated as records go to the producer)."""

    sent: int = 0
    """Records handed to the producer, good and bad."""
    corrupt: int = 0
    """Of them, corrupt payloads injected on purpose."""
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Average records per second since the loader started."""
        elapsed = time.monotonic() - self.started
        return self.sent / elapsed if elapsed > 0 else 0.0


@dataclass
class LoaderHandle:
    """A running loader: ``kill_switch.shutdown()`` stops it; ``done`` completes when the
    producer flushed and closed."""

    kill_switch: UniqueKillSwitch
    done: Awaitable[Any]
    stats: LoaderStats

    async def stop(self) -> None:
        """Stop loading and wait until every record handed to the producer was acknowledged."""
        self.kill_switch.shutdown()
        await self.done


def _stamp(rec: DataRecord) -> DataRecord:
    return _make_record(rec.id, time.time_ns() // 1_000_000, rec.features)


@dataclass(frozen=True)
class loader_records:
    """The records a loader sends: ``iter_records(seed)``, limited to ``count`` if given.

    An iterable: every ``iter()`` starts again from the first record, so a blueprint built
    on it replays the same records on each run.
    """

    seed: int = 0
    count: int | None = None
    start_id: int = 0

    def __iter__(self) -> Iterator[DataRecord]:
        records = iter_records(self.seed, start_id=self.start_id)
        return records if self.count is None else itertools.islice(records, self.count)


def data_loader(
    bootstrap_servers: str,
    topic: str,
    *,
    rate: float = 500.0,
    count: int | None = None,
    seed: int = 0,
    start_id: int = 0,
    bad_every: int | None = None,
    producer_settings: ProducerSettings | None = None,
    on_send: Callable[[DataRecord], None] | None = None,
    data_type: Callable[[DataRecord], str] | None = None,
) -> RunnableGraph[LoaderHandle]:
    """A loader writing ``count`` records (forever if None) at ``rate`` records/s to ``topic``.

    Record ids run from ``start_id``; the key of each Kafka record is its id (UTF-8).
    With ``bad_every=n`` every n-th record is replaced by :data:`CORRUPT_PAYLOAD` (to
    show the dead-letter topic). The handle's ``stats`` belong to the blueprint: run it
    once. Throttling is a token bucket with 100 ms bursts, so the
    rate holds on average even when the event loop is busy. ``on_send(record)`` is called
    with each (time-stamped) good record as it goes to the producer. With ``data_type``,
    each record (a corrupt one too) carries its data type ``data_type(record)`` in header
    :data:`DATA_TYPE_HEADER`.
    """
    if rate <= 0:
        raise ValueError(f"rate must be > 0, got {rate!r}")
    stats = LoaderStats()
    settings = producer_settings or ProducerSettings(bootstrap_servers, linger_ms=5)

    def to_producer_record(rec: DataRecord) -> ProducerRecord[bytes, bytes]:
        stats.sent += 1
        key = str(rec.id).encode()
        headers = () if data_type is None else ((DATA_TYPE_HEADER, data_type(rec).encode()),)
        if bad_every and stats.sent % bad_every == 0:
            stats.corrupt += 1
            return ProducerRecord(topic, CORRUPT_PAYLOAD, key=key, headers=headers)
        stamped = _stamp(rec)
        if on_send is not None:
            on_send(stamped)
        value = encode_record(stamped, compact=True)
        return ProducerRecord(topic, value, key=key, headers=headers)

    # A rate below 10/s still gets whole tokens: elements per second, burst of 1+.
    per_second = max(1, round(rate))
    graph = (
        Source.from_iterable(loader_records(seed, count, start_id))
        .via_mat(KillSwitches.single(), Keep.right)
        .throttle(per_second, 1.0, maximum_burst=max(1, per_second // 10))
        .map(to_producer_record)
        .to_mat(Producer.plain_sink(settings), Keep.both)
    )
    return graph.map_materialized_value(lambda m: LoaderHandle(m[0], m[1], stats))
