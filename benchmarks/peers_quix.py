"""Keyed count through Kafka: Quix Streams against the project's pipeline (issue 14).

``kafka_keyed_count``: ``size`` records over :data:`KEYS` message keys (``b"k000"`` ...,
a scrambled but fixed order) are written beforehand (not timed) to a topic of
:data:`PARTITIONS` partitions that this module creates with ``retention.ms`` and
``retention.bytes`` (Quix derives its changelog topics' settings from them, see
/work/shared/reference/peer-notes.md). Each system then reads the topic from the
beginning in a fresh consumer group, counts the records per message key in a RocksDB
store backed by a changelog topic and commits the consumed offsets every
:data:`COMMIT_INTERVAL` s:

- *Quix Streams* (the peer, run as its docs say): ``Application(commit_interval=1.0,
  auto_offset_reset="earliest", state_dir=...)``, ``app.dataframe(topic).apply(count,
  stateful=True)``: its state is RocksDB with a changelog topic (its default), flushed and
  checkpointed at every commit; ``app.run()`` until every record was counted, then
  ``app.stop()``.
- *project*: ``Consumer.committable_partitioned_source(topics)`` -> per partition
  ``as_source_with_context(committable_offset) -> aggregate_by_key(store.for_partition(tp),
  key, zero, count)`` -> ``Committer.sink_with_offset_context`` with ``max_interval=1.0``,
  where ``store = changelogged(Stores.persistent(...))`` (``connectors/kafka/state.py``):
  one RocksDB store per assigned partition, backed by the compacted changelog topic
  ``<group>-counts-changelog`` created with the input's partition count; each update is
  produced to the changelog partition of the input record that caused it, and an offset
  is released to the committer only once the changelog acknowledged its update. Updates
  made while a changelog write awaits its acknowledgement go out together when it
  arrives, the last value per key (Quix too writes the last value per key, at each
  commit). The store's rebalance listener holds a revocation until the revoked stores
  are closed (as the changelog tests' application does).

Time is measured from the first record a system counted to the last (``size`` records):
broker start, writing the input, group join, topic creation and shutdown are outside.
The result compared is the final ``{key: count}`` each system's counting function saw.
The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a fresh
:class:`~connectors.kafka.testkit.EmbeddedBroker` per measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import tempfile
import time
from typing import TYPE_CHECKING, Any

from benchmarks.runner import Measurement

if TYPE_CHECKING:
    from collections.abc import Iterator

    from quixstreams.state import State

__all__ = [
    "COMMIT_INTERVAL",
    "KEYS",
    "PARTITIONS",
    "expected_counts",
    "project_keyed_count",
    "quix_keyed_count",
    "record_keys",
]

#: Distinct message keys.
KEYS = 1_000
#: Partitions of the input topic (both systems read all of them).
PARTITIONS = 3
#: Seconds between commits (Quix's ``commit_interval``, the committer's ``max_interval``).
COMMIT_INTERVAL = 1.0
#: Topic settings Quix needs to derive its changelog topics (peer-notes.md).
TOPIC_CONFIG = {"retention.ms": str(7 * 24 * 3600 * 1000), "retention.bytes": "-1"}


def record_keys(size: int) -> list[bytes]:
    """The message key of each of ``size`` records: every key recurs every ``KEYS``."""
    names = [b"k%03d" % i for i in range(KEYS)]
    return [names[(i * 919) % KEYS] for i in range(size)]


def expected_counts(size: int) -> dict[bytes, int]:
    """The exact counts per key of ``size`` records."""
    counts: dict[bytes, int] = {}
    for k in record_keys(size):
        counts[k] = counts.get(k, 0) + 1
    return counts


async def _create_topic(servers: str, name: str) -> None:
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    admin = AIOKafkaAdminClient(bootstrap_servers=servers, request_timeout_ms=10_000)
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(name, PARTITIONS, 1, topic_configs=dict(TOPIC_CONFIG))],
            timeout_ms=10_000,
        )
    finally:
        await admin.close()


async def _write(servers: str, size: int) -> str:
    """A new topic holding ``size`` keyed records; returns its name."""
    from aiokafka import AIOKafkaProducer

    from connectors.kafka.testkit import unique_topic_name

    topic = unique_topic_name("bench-keyed")
    await _create_topic(servers, topic)
    producer = AIOKafkaProducer(bootstrap_servers=servers, linger_ms=5, acks=1)
    await producer.start()
    try:
        futures = []
        for i, k in enumerate(record_keys(size)):
            futures.append(await producer.send(topic, b"%d" % i, key=k))
            if len(futures) >= 10_000:
                await asyncio.gather(*futures)
                futures.clear()
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return topic


@contextlib.contextmanager
def _broker() -> Iterator[str]:
    """The external broker, or a fresh embedded one, started and stopped synchronously
    (Quix runs its own loop in this thread; the project's side starts it before its
    stream runs, so blocking the event loop then costs nothing)."""
    from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers

    external = bootstrap_servers()
    if external is not None:
        yield external
        return
    broker = EmbeddedBroker().start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


class _Clock:
    """First and last counted record, and the last count seen per key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.n = 0
        self.first = 0.0
        self.last = 0.0
        self.counts: dict[bytes, int] = {}

    def counted(self, key: bytes, count: int) -> bool:
        """Record one counted record; True when it was the last."""
        n = self.n = self.n + 1
        if n == 1:
            self.first = time.perf_counter()
        self.counts[key] = count
        if n == self.size:
            self.last = time.perf_counter()
            return True
        return False

    def measurement(self) -> Measurement:
        if self.n < self.size:
            raise RuntimeError(f"counted {self.n} of {self.size} records")
        elapsed = max(self.last - self.first, 1e-9)
        return Measurement(
            metrics={"elapsed": elapsed, "throughput": self.size / elapsed},
            result=dict(sorted(self.counts.items())),
        )


def quix_keyed_count(size: int) -> Measurement:
    """Quix Streams: ``apply(count, stateful=True)`` on RocksDB with its changelog."""
    clock = _Clock(size)
    state_dir = tempfile.mkdtemp(prefix="bench-quix-")
    try:
        with _broker() as servers:
            topic_name = asyncio.run(_write(servers, size))
            _run_quix(servers, topic_name, clock, state_dir)
            gc.collect()  # the application and its clients, closing their connections
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return clock.measurement()


def _run_quix(servers: str, topic_name: str, clock: _Clock, state_dir: str) -> None:
    from quixstreams import Application

    from connectors.kafka.testkit import unique_group_id

    # BENCH_QUIX_LOGLEVEL=DEBUG shows where Quix spends its start-up (the group join).
    loglevel: Any = os.environ.get("BENCH_QUIX_LOGLEVEL", "WARNING")
    app = Application(
        broker_address=servers,
        consumer_group=unique_group_id("bench-quix"),
        auto_offset_reset="earliest",
        commit_interval=COMMIT_INTERVAL,
        state_dir=state_dir,
        loglevel=loglevel,
    )
    topic = app.topic(topic_name, key_deserializer="bytes", value_deserializer="bytes")
    sdf = app.dataframe(topic)

    def count(value: bytes, key: bytes, timestamp: int, headers: Any, state: State) -> int:
        n: int = state.get("count", 0) + 1
        state.set("count", n)
        if clock.counted(key, n):
            app.stop()
        return n

    sdf = sdf.apply(count, stateful=True, metadata=True)
    # Application.run() installs SIGINT/SIGTERM handlers and leaves them behind: Ctrl-C
    # would then stop this finished application, and the handlers keep it (its producer's
    # and admin client's connections) alive, so the broker's stop waited for them. The
    # caller's handlers go back once it returns.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        app.run()
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _message_key(message: Any) -> bytes:
    key: bytes = message.record.key
    return key


def _zero() -> int:
    return 0


class ProjectRun:
    """What :func:`project_keyed_count` leaves behind for a test to check (with
    ``keep``): the servers, input topic, group and changelog topic it used."""

    def __init__(self) -> None:
        self.servers = ""
        self.topic = ""
        self.group = ""
        self.changelog = ""


async def project_keyed_count(size: int, keep: ProjectRun | None = None) -> Measurement:
    """The project: ``committable_partitioned_source`` -> per partition
    ``aggregate_by_key`` on ``changelogged(Stores.persistent)`` ->
    ``Committer.sink_with_offset_context`` (see the module docstring).

    ``keep`` (tests) gets the topics and group used, to read the changelog and the
    committed offsets afterwards (the broker must then be ``KAFKA_BOOTSTRAP_SERVERS``).
    """
    from connectors.kafka import (
        Committer,
        CommitterSettings,
        Consumer,
        ConsumerSettings,
        DrainingControl,
        ProducerSettings,
        Subscriptions,
    )
    from connectors.kafka.state import changelogged
    from connectors.kafka.testkit import unique_group_id
    from reactive import Materializer
    from reactive.state import Stores

    clock = _Clock(size)
    all_counted = asyncio.Event()
    state_dir = tempfile.mkdtemp(prefix="bench-keyed-")

    def count(n: int, message: Any) -> int:
        new = n + 1
        if clock.counted(message.record.key, new):
            all_counted.set()
        return new

    try:
        with _broker() as servers:
            topic = await _write(servers, size)
            group = unique_group_id("bench-keyed")
            consumer_settings = ConsumerSettings(servers, group, auto_offset_reset="earliest")
            # acks=all and linger 5 ms: librdkafka's defaults, which Quix's producer keeps.
            store = changelogged(
                Stores.persistent("counts", state_dir),
                ProducerSettings(servers, linger_ms=5),
                consumer_settings,
            )
            if keep is not None:
                keep.servers, keep.topic, keep.group = servers, topic, group
                keep.changelog = store.topic
            # Commit on the interval only, as Quix (its commit_every is 0: off).
            committer_settings = CommitterSettings(
                max_batch=1_000_000, max_interval=COMMIT_INTERVAL
            )

            def per_partition(pair: Any) -> Any:
                tp, source = pair
                return (
                    source.as_source_with_context(_committable_offset)
                    .aggregate_by_key(store.for_partition(tp), _message_key, _zero, count)
                    .as_source()
                )

            async with Materializer() as materializer:
                control = (
                    Consumer.committable_partitioned_source(
                        consumer_settings,
                        Subscriptions.topics(topic).with_rebalance_listener(
                            store.rebalance_listener(committer_settings)
                        ),
                    )
                    .flat_map_merge(PARTITIONS, per_partition)
                    .to_mat(Committer.sink_with_offset_context(committer_settings), DrainingControl)
                    .run(materializer)
                )
                counted = asyncio.ensure_future(all_counted.wait())
                ended = asyncio.ensure_future(control.stream_completion)
                await asyncio.wait((counted, ended), return_when=asyncio.FIRST_COMPLETED)
                if not counted.done():  # the stream ended first: its failure, or too few
                    counted.cancel()
                    await ended
                await control.drain_and_shutdown()
                await store.wait_closed()
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
    return clock.measurement()


def _committable_offset(message: Any) -> Any:
    return message.committable_offset
