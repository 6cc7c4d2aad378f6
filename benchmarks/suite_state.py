"""Keyed-state benchmark (issue 14): a keyed count in process, against a plain dict loop.

``keyed_count``: ``size`` records ``(key, i)`` over :data:`KEYS` keys (``"k0000"`` ...,
in a scrambled order so every key recurs every ``KEYS`` records), counted per key. Every
system calls the same two named functions, :func:`record_key` and :func:`count`:

- *dict loop* (the baseline, and the limit): ``counts[k] = count(counts[k], r)`` on a
  ``defaultdict(zero)`` (the strongest simple design measured); *dict loop, dict.get*
  (``counts[k] = count(counts.get(k, 0), r)``, a few percent slower) is kept as a row;
- *project, in-memory store*: ``from_iterable(records).aggregate_by_key(store, record_key,
  zero, count)`` into ``Sink.ignore()``, the default store (in memory, msgpack, the default
  write-back cache of ``DEFAULT_CACHE_SIZE`` entries); every update ``(key, count)`` is
  emitted, as the operator's contract says;
- *project, persistent store*: the same on RocksDB (``Stores.persistent`` in a fresh
  temporary directory), the cache flushed to RocksDB as one write batch when the stream
  ends;
- *project, persistent store, cache_size=0* (no target): nothing cached between batches;
  the store holds every update before it is emitted (one RocksDB write batch and a
  reload of every key per batch of elements): what the cache saves.

The result compared with the baseline's is the final ``{key: count}``: the project systems
read it through a store layer (``StoreSpec.with_layer``) that copies the store's serialized
content when the stream closes it (inside the timed part: a list of 10,000 pairs); they
time the stream from its start until its completion (flushing and closing the store
included) and decode the copy for the check after that (~5 ms, the check's work, as the
dict loops' timing holds no check). The records are built once per size, before the
systems run (the benchmark's ``setup``), and cached.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any

from benchmarks.runner import THROUGHPUT, Benchmark, Measurement, System, Target, register

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

#: Distinct keys of the keyed count.
KEYS = 10_000

S = "benchmarks.suite_state:"

__all__ = [
    "count",
    "dict_get_loop",
    "dict_loop",
    "in_memory_restore",
    "in_memory_store",
    "persistent_restore",
    "persistent_store",
    "persistent_write_through",
    "raw_restore_loop",
    "record_key",
    "records",
]


def record_key(r: tuple[str, int]) -> str:
    """The key of a record."""
    return r[0]


def zero() -> int:
    """A new key's count."""
    return 0


def count(n: int, _r: tuple[str, int]) -> int:
    """One more."""
    return n + 1


@functools.lru_cache(maxsize=2)
def records(size: int) -> list[tuple[str, int]]:
    """``size`` records over ``KEYS`` keys in a scrambled (but fixed) order."""
    names = [f"k{i:04d}" for i in range(KEYS)]
    return [(names[(i * 7919) % KEYS], i) for i in range(size)]


def dict_loop(size: int) -> dict[str, int]:
    """The limit: a ``defaultdict(zero)`` updated in a for loop (a hit is one subscript;
    measured a few percent faster than ``dict.get``, so it takes the baseline slot)."""
    recs = records(size)
    counts: collections.defaultdict[str, int] = collections.defaultdict(zero)
    for r in recs:
        k = record_key(r)
        counts[k] = count(counts[k], r)
    return dict(counts)


def dict_get_loop(size: int) -> dict[str, int]:
    """The naive dict loop: ``counts[k] = count(counts.get(k, 0), r)``."""
    recs = records(size)
    counts: dict[str, int] = {}
    get = counts.get
    for r in recs:
        k = record_key(r)
        counts[k] = count(get(k, 0), r)
    return counts


def _snapshot_layer(raw: list[tuple[bytes, bytes]]) -> Any:
    """A layer that copies the store's content (serialized) into ``raw`` when the store
    closes; decoding it is the check's work, done after the timed part."""
    from reactive.state import BytesStore, StoreContext, StoreLayer

    class Snapshot(StoreLayer):
        def __init__(self, inner: BytesStore, context: StoreContext) -> None:
            super().__init__(inner)

        def close(self) -> None:
            if self.inner.is_open:
                raw.extend(self.inner.scan())
            self.inner.close()

    return Snapshot


async def _keyed_count(size: int, spec: Any) -> Measurement:
    from reactive import Sink, Source
    from reactive.state._serde import MsgpackSerde

    raw: list[tuple[bytes, bytes]] = []
    recs = records(size)
    spec = spec.with_layer(_snapshot_layer(raw))
    t0 = time.perf_counter()
    await (
        Source.from_iterable(recs)
        .aggregate_by_key(spec, record_key, zero, count)
        .run_with(Sink.ignore())
    )
    elapsed = time.perf_counter() - t0
    load = MsgpackSerde().from_bytes
    final = {load(kb): load(vb) for kb, vb in raw}
    return Measurement(metrics={"elapsed": elapsed, "throughput": size / elapsed}, result=final)


async def in_memory_store(size: int) -> Measurement:
    """``aggregate_by_key`` on the default in-memory store."""
    from reactive.state import Stores

    return await _keyed_count(size, Stores.in_memory("counts"))


async def _persistent(size: int, cache_size: int | None) -> Measurement:
    from reactive.state import Stores

    path = tempfile.mkdtemp(prefix="reactive-bench-state-")
    try:
        kw = {} if cache_size is None else {"cache_size": cache_size}
        return await _keyed_count(size, Stores.persistent("counts", path, **kw))
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def persistent_store(size: int) -> Measurement:
    """``aggregate_by_key`` on a RocksDB store (the default cache)."""
    return await _persistent(size, None)


async def persistent_write_through(size: int) -> Measurement:
    """``aggregate_by_key`` on a RocksDB store with ``cache_size=0``."""
    return await _persistent(size, 0)


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


_register(
    Benchmark(
        name="keyed_count",
        title=f"keyed count over {KEYS:,} keys: aggregate_by_key vs a dict loop",
        description=(
            f"`from_iterable(records).aggregate_by_key(store, record_key, zero, count)` into "
            f"`Sink.ignore()` (every update emitted), records over {KEYS:,} keys, against a "
            "plain dict loop calling the same two functions (the limit: a defaultdict, a few "
            "percent faster than the dict.get loop also shown). Stores: in memory "
            "(the default) and RocksDB (rocksdict), both with the default write-back cache "
            "of 10,000 entries flushed as one write batch at the end; RocksDB also with "
            "cache_size=0 (no target). See benchmarks/suite_state.py."
        ),
        systems=(
            System("dict loop", S + "dict_loop", "limit", note="defaultdict(zero)"),
            System("dict loop, dict.get", S + "dict_get_loop", "limit"),
            System("project, in-memory store", S + "in_memory_store", "project"),
            System("project, persistent store (RocksDB)", S + "persistent_store", "project"),
            System(
                "project, persistent store, cache_size=0",
                S + "persistent_write_through",
                "project",
                note="one RocksDB write batch per batch of elements",
            ),
        ),
        baseline="dict loop",
        size=1_000_000,
        quick_size=20_000,
        metrics=(THROUGHPUT,),
        # The cache_size=0 system takes 5-10 s a measurement.
        max_rounds=5,
        targets=(
            Target(
                "project, in-memory store",
                "throughput",
                ">= 0.5x the dict loop",
                min_ratio=0.5,
            ),
            Target(
                "project, persistent store (RocksDB)",
                "throughput",
                ">= 0.25x the dict loop",
                min_ratio=0.25,
            ),
        ),
        timeout=300.0,
        setup=S + "records",
    )
)


# -- through Kafka: against Quix Streams (benchmarks/peers_quix.py) ---------------------------
Q = "benchmarks.peers_quix:"

_register(
    Benchmark(
        name="kafka_keyed_count",
        title=(
            "keyed count through Kafka with a changelog: Quix Streams vs committable "
            "partitioned source -> keyed count (RocksDB + changelog) -> commit"
        ),
        description=(
            "Records over 1,000 message keys on a 3-partition topic (created with "
            "retention.ms/retention.bytes, as Quix needs), read from the beginning, counted "
            "per key in a RocksDB store per partition backed by a compacted changelog topic "
            "co-partitioned with the input, offsets committed every 1 s and only after the "
            "changelog acknowledged the updates they caused; timed from the first record "
            "counted to the last. Quix Streams: `app.dataframe(topic).apply(count, "
            "stateful=True)` (RocksDB and its changelog topic, its defaults: changelog "
            "records written at each commit, the last value per key). Project: "
            "`Consumer.committable_partitioned_source` -> per partition "
            "`as_source_with_context -> aggregate_by_key(changelogged(Stores.persistent)"
            ".for_partition(tp))` -> `Committer.sink_with_offset_context` (an update goes to "
            "the changelog partition of its input record; updates made while a changelog "
            "write awaits its ack go out together, the last value per key). Embedded Tansu "
            "broker unless KAFKA_BOOTSTRAP_SERVERS is set. See benchmarks/peers_quix.py."
        ),
        systems=(
            System("Quix Streams 3.28", Q + "quix_keyed_count", "peer"),
            System(
                "project, RocksDB store + changelog",
                Q + "project_keyed_count",
                "project",
                note="changelogged(Stores.persistent), committed after the changelog acks",
            ),
        ),
        baseline="Quix Streams 3.28",
        # Enough records that the timed part spans several commit intervals for both.
        size=500_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        timeout=300.0,
        size_label="records",
        # Each measurement starts a broker, writes the records and joins a group first
        # (Quix's consumer takes ~20 s to join on the embedded broker): ~1 min a round.
        max_rounds=3,
        targets=(
            Target(
                "project, RocksDB store + changelog",
                "throughput",
                ">= 1.0x Quix Streams",
                min_ratio=1.0,
            ),
        ),
    )
)


# -- changelog restore (issue 14: stores backed by Kafka changelogs) -----------------------------
#
# ``changelog_restore``: a compacted changelog partition holding ``size`` records with distinct
# keys (msgpack keys and values, as a store writes them) is written beforehand (not timed) to a
# fresh embedded broker (or ``KAFKA_BOOTSTRAP_SERVERS``). Each system then rebuilds the state
# from it and the timed part ends when the state holds every key:
#
# - *raw aiokafka loop into a dict* (the baseline, and the limit): a consumer assigned the
#   partition, read from the beginning to the high watermark, ``state[key] = value``;
# - *project, in-memory store*: ``changelogged(Stores.in_memory(...)).for_partition(tp)``
#   opened and prepared (topic check, restore, producer start: what an operator waits for
#   before its first element);
# - *project, persistent store (RocksDB)*: the same into a fresh RocksDB directory (no
#   checkpoint: a full restore).
#
# The result compared with the baseline's is the number of keys restored.

R = "benchmarks.suite_state:"


@contextlib.asynccontextmanager
async def _changelog(size: int) -> AsyncIterator[tuple[str, str, str]]:
    """A broker with an input topic and a changelog of ``size`` keys; yields servers,
    input topic, changelog topic."""
    import msgpack
    from aiokafka import AIOKafkaProducer

    from connectors.kafka.testkit import (
        EmbeddedBroker,
        bootstrap_servers,
        create_topic,
        unique_topic_name,
    )

    external = bootstrap_servers()
    broker = None if external is not None else await EmbeddedBroker().astart()
    servers = external if external is not None else broker.bootstrap_servers  # type: ignore[union-attr]
    try:
        source = await create_topic(servers, unique_topic_name("restore-in"), 1)
        changelog = await create_topic(servers, unique_topic_name("restore-changelog"), 1)
        producer = AIOKafkaProducer(bootstrap_servers=servers, acks=1, linger_ms=5)
        await producer.start()
        try:
            futures = []
            batch = producer.create_batch()
            for i in range(size):
                key, value = msgpack.packb(f"k{i:07d}"), msgpack.packb(i)
                if batch.append(key=key, value=value, timestamp=None) is None:
                    futures.append(await producer.send_batch(batch, changelog, partition=0))
                    batch = producer.create_batch()
                    batch.append(key=key, value=value, timestamp=None)
            futures.append(await producer.send_batch(batch, changelog, partition=0))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        yield servers, source, changelog
    finally:
        if broker is not None:
            await broker.astop()


def _timed(size: int, elapsed: float) -> dict[str, float]:
    """The timed part's metrics (the runner's default would also count the broker's start
    and the writing of the changelog)."""
    return {"elapsed": elapsed, "throughput": size / elapsed if elapsed > 0 else float("inf")}


async def raw_restore_loop(size: int) -> Measurement:
    """The limit: the changelog partition read into a dict by a raw aiokafka consumer."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    async with _changelog(size) as (servers, _source, changelog):
        started = time.perf_counter()
        tp = TopicPartition(changelog, 0)
        consumer = AIOKafkaConsumer(bootstrap_servers=servers, fetch_max_wait_ms=500)
        await consumer.start()
        state: dict[bytes, bytes] = {}
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=10_000)
                for r in batch.get(tp, ()):
                    if r.value is None:
                        state.pop(r.key, None)
                    else:
                        state[r.key] = r.value
                hw = consumer.highwater(tp)
                if hw is not None and await consumer.position(tp) >= hw:
                    break
        finally:
            await consumer.stop()
        elapsed = time.perf_counter() - started
    return Measurement(metrics=_timed(size, elapsed), result=len(state))


async def _project_restore(size: int, persistent: bool) -> Measurement:
    from connectors.kafka import ConsumerSettings, ProducerSettings, TopicPartition
    from connectors.kafka.state import changelogged
    from reactive.state import Stores

    tmp = tempfile.mkdtemp(prefix="bench-restore-")
    try:
        async with _changelog(size) as (servers, source, changelog):
            spec = Stores.persistent("s", tmp) if persistent else Stores.in_memory("s")
            store = changelogged(
                spec, ProducerSettings(servers), ConsumerSettings(servers), topic=changelog
            )
            started = time.perf_counter()
            kv = store.for_partition(TopicPartition(source, 0)).open()
            await kv.bytes_store.prepare()
            n = len(kv)
            elapsed = time.perf_counter() - started
            kv.close()
            await store.wait_closed()
        return Measurement(metrics=_timed(size, elapsed), result=n)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def in_memory_restore(size: int) -> Measurement:
    """A changelogged in-memory store restored from its changelog partition."""
    return await _project_restore(size, persistent=False)


async def persistent_restore(size: int) -> Measurement:
    """A changelogged RocksDB store restored (fully: no checkpoint) from its changelog."""
    return await _project_restore(size, persistent=True)


_register(
    Benchmark(
        name="changelog_restore",
        title="restoring a store from its Kafka changelog vs a raw aiokafka loop into a dict",
        description=(
            "A compacted changelog partition of `size` distinct keys (written beforehand, not "
            "timed) on the embedded broker, read back into the state: a raw aiokafka consumer "
            "loop into a dict (the limit) against `changelogged(spec).for_partition(tp)` "
            "opened and prepared (topic check, restore, producer start) with an in-memory "
            "and a RocksDB store (full restore, no checkpoint). Throughput is keys restored "
            "per second. See benchmarks/suite_state.py."
        ),
        systems=(
            System("raw aiokafka loop into a dict", R + "raw_restore_loop", "limit"),
            System("project, in-memory store", R + "in_memory_restore", "project"),
            System("project, persistent store (RocksDB)", R + "persistent_restore", "project"),
        ),
        baseline="raw aiokafka loop into a dict",
        size=100_000,
        quick_size=2_000,
        size_label="keys",
        metrics=(THROUGHPUT,),
        max_rounds=5,
        timeout=300.0,
    )
)
