"""State stores backed by compacted Kafka changelog topics (Kafka Streams' changelogs).

:func:`changelogged` turns a :class:`~reactive.state.StoreSpec` into a
:class:`ChangeloggedStore`; ``for_partition(tp)`` gives the spec of the store instance
serving input partition ``tp`` of a partitioned source (``Consumer.
committable_partitioned_source``): give it to ``aggregate_by_key`` /
``stateful_map_by_key`` in that partition's substream.

What an instance does (the layer :class:`ChangelogBytesStore`):

- Topic: ``<application id>-<store name>-changelog`` (``application_id`` defaults to the
  consumer settings' group id), created if missing with ``cleanup.policy=compact`` and
  the input topic's partition count (co-partitioned: store partition p writes changelog
  partition p).
- Restore, before the operator pulls its first element (``BytesStore.prepare``): the
  changelog partition is read from the beginning (in memory) or from the offset the
  instance checkpointed (persistent stores: a file ``<store dir>.checkpoint`` next to the
  RocksDB directory) to its end, and applied to the store (a tombstone deletes). A
  checkpoint outside the partition (below its log start or beyond its end: the changelog
  was recreated, or compaction deleted what followed it) is Kafka Streams' corrupted
  task: a WARNING, the local store is wiped and restored from the beginning (or kept:
  ``changelogged(..., checkpoint_outside_changelog="keep")``).
  Progress: ``metrics()`` (``restoring``, ``restored_records``, ``restore_seconds``) on the
  store's view and on :meth:`ChangeloggedStore.metrics`, and INFO logs on
  ``connectors.kafka.state``.
- Writes: each put/delete/batch is applied to the store, then produced (key bytes ->
  value bytes, a delete as a tombstone) to the changelog partition by a producer of the
  instance, in order. ``durable()`` is a future of the acknowledgement of every write so
  far: the with-context operators (``SourceWithContext.aggregate_by_key``) release an
  element's context (its ``CommittableOffset``) only then, so committing the contexts
  commits an input offset only after the changelog holds every update it caused (or a
  later value of its key: the updates those operators make while a write awaits its
  acknowledgement go out together, the last value of each key, as one write).
- Without a context (``Source.aggregate_by_key``), the operator's write-back cache
  decides when updates reach the store and so the changelog (a full cache, a view scan,
  the end of the stream), and no offset waits for them: use the with-context operators
  when offsets are committed.
- Checkpoint (persistent stores): the next changelog offset after the last acknowledged
  write (it follows the acknowledgements, down too if the changelog restarted lower),
  written when the store is flushed, within a second of each acknowledgement (at most
  once a second), and when it is closed. RocksDB keeps what was written when the
  process is killed (its write-ahead log), so a restart restores only the tail after the
  checkpoint.
- A shared producer (``producer_settings.with_producer(p)``): every instance writes
  through ``p`` instead of starting its own, and never flushes or closes it (its
  close waits for its own writes' acknowledgements only); a ``p`` closed or not
  started fails the instance's prepare with a ``ChangelogError``.
- Revoke: the partition's substream completes, the operator flushes and closes the
  store (its view then raises ``StoreClosedError``); the writes still in flight are
  awaited (up to the producer's ``close_timeout``), the checkpoint written and the
  producer closed in the background (:meth:`ChangeloggedStore.wait_closed`).

The guarantee: at-least-once state. After a crash, the partition's next owner restores
the changelog and resumes from the committed offset; a record whose update reached the
changelog but whose offset was not committed yet is counted again (a count can exceed
the exact one by the records re-processed, never fall short of it). A clean
``DrainingControl.drain_and_shutdown()`` commits every acknowledged offset first, so
counts stay exact. Exactly-once (transactions) is not offered: the embedded test broker
cannot show it (``connectors/kafka/TRANSACTIONS.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from reactive.state import BytesStore, StoreContext, StoreLayer, StoreSpec

from ._closing import close_consumer, close_producer, start_within
from ._highwater import fetch_highwaters
from .errors import ChangelogError
from .settings import (
    CommitterSettings,
    ConsumerSettings,
    ProducerSettings,
    _shared_producer_problem,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Sequence

    from .subscriptions import RebalanceListener

__all__ = ["ChangelogBytesStore", "ChangelogError", "ChangeloggedStore", "changelogged"]

log = logging.getLogger("connectors.kafka.state")

#: Seconds between two checkpoints written while acknowledgements arrive.
CHECKPOINT_INTERVAL = 1.0
#: Records applied to the store per write during a restore.
_RESTORE_CHUNK = 10_000


def changelogged(
    spec: StoreSpec[Any, Any],
    producer_settings: ProducerSettings,
    consumer_settings: ConsumerSettings,
    *,
    topic: str | None = None,
    application_id: str | None = None,
    replication_factor: int = 1,
    checkpoint_outside_changelog: Literal["wipe", "keep"] = "wipe",
) -> ChangeloggedStore:
    """``spec`` backed by a compacted changelog topic (see the module docstring).

    ``topic`` defaults to ``<application_id>-<store name>-changelog`` and
    ``application_id`` to ``consumer_settings.group_id`` (Kafka Streams' naming).
    ``producer_settings`` write the changelog (its serializers are not used: keys and
    values are the store's bytes); ``consumer_settings`` give the servers and client
    options of the restore consumer (it joins no group). ``replication_factor`` is used
    when the topic is created.

    A persistent instance whose checkpoint lies outside its changelog partition (below
    its log start, or beyond its end: the changelog was deleted or recreated, a new
    cluster) holds state the changelog cannot vouch for: with
    ``checkpoint_outside_changelog="wipe"`` (Kafka Streams' corrupted task) the local
    store is emptied and restored from the changelog; with ``"keep"`` it is kept as it is
    and the changelog is read from the checkpoint (nothing, beyond the end) -- for an
    application whose local store is the reference, such as a demo on a broker that
    starts empty. Either way a WARNING names the store, partition and offsets.
    """
    if checkpoint_outside_changelog not in ("wipe", "keep"):
        raise ValueError(
            f"changelogged({spec.name!r}): checkpoint_outside_changelog must be 'wipe' or "
            f"'keep', got {checkpoint_outside_changelog!r}"
        )
    if not isinstance(spec, StoreSpec):
        raise TypeError(f"changelogged: spec must be a StoreSpec, got {spec!r}")
    if not isinstance(producer_settings, ProducerSettings):
        raise TypeError(
            f"changelogged({spec.name!r}): producer_settings must be ProducerSettings, "
            f"got {producer_settings!r}"
        )
    if not isinstance(consumer_settings, ConsumerSettings):
        raise TypeError(
            f"changelogged({spec.name!r}): consumer_settings must be ConsumerSettings, "
            f"got {consumer_settings!r}"
        )
    if topic is None:
        app = application_id if application_id is not None else consumer_settings.group_id
        if not app:
            raise ValueError(
                f"changelogged({spec.name!r}): give topic=..., application_id=... or "
                "consumer settings with a group_id (the changelog is named "
                "<application id>-<store name>-changelog)"
            )
        topic = f"{app}-{spec.name}-changelog"
    if not isinstance(topic, str) or not topic:
        raise ValueError(
            f"changelogged({spec.name!r}): topic must be a non-empty str, got {topic!r}"
        )
    if type(replication_factor) is not int or replication_factor < 1:
        raise ValueError(
            f"changelogged({spec.name!r}): replication_factor must be an int >= 1, "
            f"got {replication_factor!r}"
        )
    return ChangeloggedStore(
        spec,
        topic,
        producer_settings,
        consumer_settings,
        replication_factor,
        checkpoint_outside_changelog,
    )


@dataclass(eq=False)
class ChangeloggedStore:
    """A store declaration with a changelog topic; build it with :func:`changelogged`."""

    spec: StoreSpec[Any, Any]
    topic: str
    producer_settings: ProducerSettings
    consumer_settings: ConsumerSettings
    replication_factor: int = 1
    #: What a restore does with a checkpoint outside the changelog (see :func:`changelogged`).
    checkpoint_outside_changelog: Literal["wipe", "keep"] = "wipe"
    #: The open instances, by partition (the latest one of a partition).
    instances: dict[int, ChangelogBytesStore] = field(default_factory=dict, repr=False)
    _closing: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _topics: dict[str, asyncio.Future[int]] = field(default_factory=dict, repr=False)

    def for_partition(self, tp: TopicPartition) -> StoreSpec[Any, Any]:
        """The spec of the instance serving input partition ``tp`` (the ``TopicPartition``
        a partitioned source emits with its substream): ``StoreContext.partition`` is
        ``tp.partition`` and its writes go to that partition of the changelog."""
        if not isinstance(tp, TopicPartition):
            raise TypeError(
                f"store {self.spec.name!r}: for_partition needs the TopicPartition of the "
                f"substream (from committable_partitioned_source), got {tp!r}"
            )

        def layer(engine: BytesStore, context: StoreContext) -> BytesStore:
            return ChangelogBytesStore(engine, context, self, tp.topic)

        return self.spec.with_layer(layer).for_partition(tp.partition)

    def metrics(self) -> dict[int, dict[str, Any]]:
        """``metrics()`` of each open instance, by partition."""
        return {p: store.metrics() for p, store in sorted(self.instances.items())}

    def rebalance_listener(
        self, committer_settings: CommitterSettings | None = None, timeout: float = 30.0
    ) -> RebalanceListener:
        """A rebalance listener (``Subscriptions.topics(...).with_rebalance_listener``)
        that holds a revocation until the revoked partitions' stores are closed (their
        operators emitted every output, after the changelog acks) and the committer had
        ``committer_settings.max_interval`` (plus half of it) to commit their offsets; the
        consumer then waits for the commits in flight before the partitions move. Without
        it, the offsets of the last updates before a rebalance are often not committed
        (commits of revoked partitions are dropped) and the next owner counts those
        records again. At most ``timeout`` seconds. A stream that also joins a
        co-partitioned table gives both: ``with_rebalance_listener(table, listener)``."""
        return _DrainOnRevoke(self, committer_settings or CommitterSettings(), timeout)

    async def wait_closed(self) -> None:
        """Wait until every closed instance has its writes acknowledged, its checkpoint
        written and its producer closed; an instance closed while preparing, until its
        prepare ended (its clients closed) and the changelog topic's creation it started
        is over (that runs on for the other instances: it is not cancelled here)."""
        while True:
            closing = list(self._closing)
            creating = [f for f in self._topics.values() if not f.done()]
            if not closing and not creating:
                return
            if closing:
                await asyncio.gather(*closing, return_exceptions=True)
            if creating:
                await asyncio.wait(creating)
                for fut in creating:  # its error is a preparing instance's, if any is left
                    if not fut.cancelled():
                        fut.exception()

    # -- internal ----------------------------------------------------------------------------
    async def _ensure_topic(self, source_topic: str) -> int:
        """The changelog's partition count, creating the topic like ``source_topic``."""
        fut = self._topics.get(source_topic)
        if fut is None or (fut.done() and fut.exception() is not None):
            fut = asyncio.ensure_future(self._create_topic(source_topic))
            self._topics[source_topic] = fut
        return await asyncio.shield(fut)

    async def _create_topic(self, source_topic: str) -> int:
        from aiokafka.admin import AIOKafkaAdminClient, NewTopic
        from aiokafka.errors import TopicAlreadyExistsError, for_code

        settings = self.producer_settings
        admin = AIOKafkaAdminClient(**settings._common_kwargs())
        try:
            # Not wait_for: a start cut short (timeout, or the loop's last tasks cancelled
            # at its close) must release the bootstrap connection it holds.
            await start_within(admin.start(), admin._client, settings.connect_timeout)
            described = {d["topic"]: d for d in await admin.describe_topics()}
            source = described.get(source_topic)
            if source is None or source["error_code"] != 0 or not source["partitions"]:
                raise ChangelogError(
                    f"changelog {self.topic!r}: input topic {source_topic!r} not found "
                    "(its partition count sizes the changelog)"
                )
            n = len(source["partitions"])
            existing = described.get(self.topic)
            if existing is not None and existing["error_code"] == 0 and existing["partitions"]:
                have = len(existing["partitions"])
                if have != n:  # Kafka Streams: "Existing internal topic ... has invalid partitions"
                    relation = "fewer" if have < n else "more"
                    raise ChangelogError(
                        f"changelog {self.topic!r} has {have} partitions, {relation} than the "
                        f"{n} of input topic {source_topic!r}: it is not co-partitioned "
                        "(delete it or give changelogged() another topic)"
                    )
                return have
            response = await admin.create_topics(
                [
                    NewTopic(
                        self.topic,
                        num_partitions=n,
                        replication_factor=self.replication_factor,
                        topic_configs={"cleanup.policy": "compact"},
                    )
                ]
            )
            for name, code, *_ in response.topic_errors:
                if code != 0 and for_code(code) is not TopicAlreadyExistsError:
                    raise for_code(code)(f"creating changelog topic {name!r}")
            log.info("created changelog topic %r (%d partitions, compacted)", self.topic, n)
            return n
        except KafkaError as exc:
            raise ChangelogError(f"changelog {self.topic!r}: cannot create it: {exc!r}") from exc
        finally:
            await admin.close()


class _DrainOnRevoke:
    """See :meth:`ChangeloggedStore.rebalance_listener`."""

    def __init__(self, store: ChangeloggedStore, settings: CommitterSettings, timeout: float):
        self._store = store
        self._grace = settings.max_interval * 1.5
        self._timeout = timeout

    async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        """Wait for the revoked partitions' stores to close, then for their commits."""
        store = self._store
        parts = {tp.partition for tp in revoked}
        deadline = time.monotonic() + self._timeout
        while parts & set(store.instances):
            if time.monotonic() > deadline:
                log.warning(
                    "store %r: partitions %s still open %.1f s after their revocation",
                    store.spec.name,
                    sorted(parts & set(store.instances)),
                    self._timeout,
                )
                return
            await asyncio.sleep(0.01)
        if parts:
            await asyncio.sleep(self._grace)

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        """Nothing to do: each substream's store restores itself."""


class ChangelogBytesStore(StoreLayer):
    """The changelog layer of one store instance (see the module docstring); made by
    :meth:`ChangeloggedStore.for_partition`."""

    def __init__(
        self,
        inner: BytesStore,
        context: StoreContext,
        owner: ChangeloggedStore,
        source_topic: str,
    ) -> None:
        if context.partition is None:
            inner.close()
            raise ValueError(f"store {inner.name!r}: a changelogged instance needs a partition")
        super().__init__(inner)
        self.context = context
        self._owner = owner
        self._source_topic = source_topic
        self.tp = TopicPartition(owner.topic, context.partition)
        path = getattr(inner, "path", None)
        self.checkpoint_path: Path | None = (
            Path(path).with_name(Path(path).name + ".checkpoint") if path is not None else None
        )
        self._open = True
        self._ready = False
        self._failure: BaseException | None = None
        self._queue: list[Sequence[tuple[bytes, bytes | None]]] = []
        self._queued = 0  # writes queued so far (a sequence number)
        self._acked = 0  # writes acknowledged so far
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._producer: AIOKafkaProducer | None = None
        self._shared = False  # _producer is the application's (never closed here)
        self._sender: asyncio.Task[None] | None = None
        self._prepare_done: asyncio.Future[None] | None = None  # set while preparing
        self._wake: asyncio.Event | None = None
        self._next_offset: int | None = None  # after the last acknowledged record
        self._checkpointed: int | None = None
        self._checkpoint_at = 0.0
        self._checkpoint_timer: asyncio.TimerHandle | None = None
        self.restoring = True  # until the restore is done (prepare)
        self.restored_records = 0
        self.restore_seconds = 0.0
        self.restore_start: int | None = None
        self.records_sent = 0
        self.records_acked = 0
        self._acked_seq = 0  # the sequence number of the write _next_offset follows
        other = owner.instances.get(context.partition)
        if other is not None and other._open and other._source_topic != source_topic:
            # Two writers of one changelog partition: a restore would mix their keys. Kafka
            # Streams shares a store between topics only within one task (one stream of
            # co-partitioned topics); here each TopicPartition is its own substream.
            inner.close()
            raise ChangelogError(
                f"store {owner.spec.name!r}: partition {context.partition} of input topics "
                f"{other._source_topic!r} and {source_topic!r} would share changelog "
                f"partition {owner.topic}-{context.partition} and mix their state: give each "
                "topic its own store, or merge the co-partitioned topics into one stream "
                "before the store"
            )
        owner.instances[context.partition] = self

    # -- reads: the store's ---------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """False once closed."""
        return self._open and self.inner.is_open

    # -- writes: the store's, then the changelog's ------------------------------------------------
    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` and produce it to the changelog."""
        self.write(((key, value),))

    def delete(self, key: bytes) -> None:
        """Remove ``key`` and produce a tombstone to the changelog."""
        self.write(((key, None),))

    def write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply ``ops`` to the store, then queue them for the changelog, in order."""
        if self._failure is not None:
            raise self._error()
        if not self._ready:
            if not self._open:
                raise self._closed()
            raise ChangelogError(
                f"store {self.name!r} (changelog {self.tp.topic}-{self.tp.partition}) is not "
                "restored yet: it takes writes once prepare() is done (a stateful operator "
                "awaits it)"
            )
        self.inner.write(ops)
        if ops:
            self._queue.append(list(ops))
            self._queued += 1
            assert self._wake is not None
            self._wake.set()

    def durable(self) -> asyncio.Future[None] | None:
        """A future done when every write so far is acknowledged by the broker."""
        if self._failure is not None:
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            fut.set_exception(self._error())
            return fut
        if self._acked >= self._queued:
            return None
        fut = asyncio.get_running_loop().create_future()
        self._waiters.append((self._queued, fut))
        return fut

    def flush(self) -> None:
        """Flush the store and write the checkpoint of what the changelog acknowledged."""
        self.inner.flush()
        self._write_checkpoint()

    def close(self) -> None:
        """Close the store; acknowledgements, checkpoint and producer close are finished
        in the background (:meth:`ChangeloggedStore.wait_closed`)."""
        if not self._open:
            return
        self._open = False
        if self._checkpoint_timer is not None:
            self._checkpoint_timer.cancel()
            self._checkpoint_timer = None
        if self._owner.instances.get(self.tp.partition) is self:
            del self._owner.instances[self.tp.partition]
        try:
            self.inner.close()
        finally:
            loop: asyncio.AbstractEventLoop | None
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            preparing = self._prepare_done is not None and not self._prepare_done.done()
            if loop is not None and (
                preparing or self._producer is not None or self._sender is not None
            ):
                task = loop.create_task(self._finish())
                self._owner._closing.add(task)
                task.add_done_callback(self._owner._closing.discard)

    def metrics(self) -> dict[str, Any]:
        """Restore progress and the changelog writes of this instance."""
        return {
            "changelog_topic": self.tp.topic,
            "partition": self.tp.partition,
            "restoring": self.restoring,
            "restored_records": self.restored_records,
            "restore_seconds": self.restore_seconds,
            "restore_start_offset": self.restore_start,
            "records_sent": self.records_sent,
            "records_acked": self.records_acked,
            "writes_in_flight": self._queued - self._acked,
            "checkpoint": self._checkpointed,
        }

    def __repr__(self) -> str:
        return f"<ChangelogBytesStore {self.name!r} -> {self.tp.topic}-{self.tp.partition}>"

    # -- restore --------------------------------------------------------------------------------
    def prepare(self) -> Awaitable[None]:
        """Create the topic if missing, restore the store, start the producer."""
        return self._prepare()

    async def _prepare(self) -> None:
        # Done when this ends (however): a close meanwhile waits for it (_finish).
        self._prepare_done = asyncio.get_running_loop().create_future()
        try:
            await self._prepare_clients()
        finally:
            if not self._prepare_done.done():
                self._prepare_done.set_result(None)

    async def _prepare_clients(self) -> None:
        owner = self._owner
        try:
            partitions = await owner._ensure_topic(self._source_topic)
            if self.tp.partition >= partitions:
                raise ChangelogError(
                    f"changelog {self.tp.topic!r} has no partition {self.tp.partition}"
                )
            await self._restore()
            settings = owner.producer_settings
            if settings.producer is not None:
                # The application's producer (ProducerSettings.with_producer): used as it
                # is, never started or closed here.
                problem = _shared_producer_problem(settings.producer)
                if problem is not None:
                    raise ChangelogError(
                        f"store {self.name!r}: the shared producer given with "
                        f"ProducerSettings.with_producer {problem}"
                    )
                producer = settings.producer
                self._shared = True
            else:
                producer = AIOKafkaProducer(**settings.to_aiokafka_kwargs())
                try:
                    await start_within(producer.start(), producer.client, settings.connect_timeout)
                except BaseException:  # failed or cancelled (the store closed meanwhile)
                    await close_producer(producer, settings.close_timeout, self.name)
                    raise
        except ChangelogError:
            raise
        except (KafkaError, OSError, TimeoutError) as exc:
            raise ChangelogError(
                f"store {self.name!r}: preparing changelog {self.tp.topic}-{self.tp.partition} "
                f"failed: {exc!r}"
            ) from exc
        if not self._open:  # closed while preparing
            if not self._shared:
                await close_producer(producer, settings.close_timeout, self.name)
            return
        self._producer = producer
        self._wake = asyncio.Event()
        self._sender = asyncio.get_running_loop().create_task(self._send_loop())
        self._ready = True

    def _read_checkpoint(self) -> int | None:
        path = self.checkpoint_path
        if path is None or not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("topic") == self.tp.topic and data.get("partition") == self.tp.partition:
                return int(data["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            log.warning("ignoring the unreadable checkpoint %s", path, exc_info=True)
        return None

    async def _restore(self) -> None:
        tp = self.tp
        start = self._read_checkpoint()
        kwargs = self._owner.consumer_settings.to_aiokafka_kwargs()
        for name in ("group_id", "group_instance_id"):
            kwargs.pop(name, None)
        # A fetch returns as soon as records are there; the embedded broker answers
        # nothing to a fetch whose wait is shorter than its read.
        kwargs["fetch_max_wait_ms"] = max(int(kwargs.get("fetch_max_wait_ms", 500)), 500)
        kwargs["auto_offset_reset"] = "earliest"
        consumer = AIOKafkaConsumer(**kwargs)
        started = time.monotonic()
        log.info(
            "restoring store %r partition %d from %s-%d%s",
            self.name,
            tp.partition,
            tp.topic,
            tp.partition,
            "" if start is None else f" after checkpoint {start}",
        )
        try:
            csettings = self._owner.consumer_settings
            await start_within(consumer.start(), consumer._client, csettings.connect_timeout)
            consumer.assign([tp])
            # Some brokers (the embedded one) answer ListOffsets "latest" below the high
            # watermark (the last batch's base offset + 1); the fetched high watermark is
            # right. Read until both are reached.
            end = (await consumer.end_offsets([tp]))[tp]
            if start is not None:
                first = (await consumer.beginning_offsets([tp]))[tp]
                if not await self._checkpoint_in_log(consumer, start, first, end):
                    if self._owner.checkpoint_outside_changelog == "wipe":
                        self._wipe(start, first, end)
                        start = None
                    else:
                        log.warning(
                            "store %r partition %d: checkpoint %d is outside changelog %s-%d "
                            "(log start %d, end %d): the local store is kept "
                            "(checkpoint_outside_changelog='keep')",
                            self.name,
                            tp.partition,
                            start,
                            tp.topic,
                            tp.partition,
                            first,
                            end,
                        )
                        start = max(start, first)
            if start is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start)
            pos = await consumer.position(tp)
            self.restore_start = pos
            inner = self.inner
            while True:
                hw = consumer.highwater(tp)
                if pos >= end and (hw is None or pos >= hw):
                    break
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=_RESTORE_CHUNK)
                records = batch.get(tp, ())
                if records:
                    inner.write([(r.key, r.value) for r in records if r.key is not None])
                    self.restored_records += len(records)
                pos = await consumer.position(tp)
            self._next_offset = pos
        finally:
            self.restoring = False
            self.restore_seconds = time.monotonic() - started
            await close_consumer(consumer, self._owner.consumer_settings.close_timeout, self.name)
        log.info(
            "restored store %r partition %d: %d records in %.3f s (changelog offset %d)",
            self.name,
            tp.partition,
            self.restored_records,
            self.restore_seconds,
            self._next_offset,
        )
        if self.checkpoint_path is not None:
            self.inner.flush()
            self._write_checkpoint()

    async def _checkpoint_in_log(
        self, consumer: AIOKafkaConsumer, checkpoint: int, first: int, listed_end: int
    ) -> bool:
        """Whether ``checkpoint`` lies in [log start, log end] of the changelog partition
        (Kafka Streams' check; outside it, the task is corrupted: the local store is from
        another changelog, or the records after it were deleted).

        ``first`` is the log start; ``listed_end`` the broker's ListOffsets(latest), which
        the embedded broker answers with the last batch's base offset + 1: the true end
        can be above it by the last batch's other records. So a checkpoint above
        ``listed_end`` is judged against the true end, the high watermark of a fetch from
        ``listed_end - 1`` (the last batch): a valid store is never wiped for the quirk.
        """
        if checkpoint < first:
            return False
        if checkpoint <= listed_end:
            return True
        if listed_end <= first:  # an empty log: no batch can hide its end
            return False
        tp = self.tp
        consumer.seek(tp, listed_end - 1)
        if not await fetch_highwaters(
            consumer, [tp], self._owner.consumer_settings.connect_timeout
        ):
            return True  # no answer: keep the store (as before)
        hw: int = consumer.highwater(tp)
        return checkpoint <= hw

    def _wipe(self, checkpoint: int, first: int, end: int) -> None:
        """Empty the local store: its checkpoint is outside the changelog partition."""
        log.warning(
            "store %r partition %d: checkpoint %d is outside changelog %s-%d (log start %d, "
            "end %d): the local store is wiped and restored from the changelog",
            self.name,
            self.tp.partition,
            checkpoint,
            self.tp.topic,
            self.tp.partition,
            first,
            end,
        )
        inner = self.inner
        while True:
            keys = [(k, None) for k, _ in itertools.islice(inner.scan(), _RESTORE_CHUNK)]
            if not keys:
                break
            inner.write(keys)
        inner.flush()
        if self.checkpoint_path is not None:
            self.checkpoint_path.unlink(missing_ok=True)
        self._checkpointed = None

    # -- sending --------------------------------------------------------------------------------
    async def _send_loop(self) -> None:
        producer = self._producer
        wake = self._wake
        assert producer is not None and wake is not None
        tp = self.tp
        try:
            while True:
                await wake.wait()
                wake.clear()
                while self._queue:
                    queued, self._queue = self._queue, []
                    seq = self._queued - len(self._queue)
                    futures: list[Any] = []
                    counts: list[int] = []
                    batch = producer.create_batch()
                    n = 0
                    for ops in queued:
                        for k, v in ops:
                            if batch.append(key=k, value=v, timestamp=None) is None:
                                futures.append(
                                    await producer.send_batch(
                                        batch, tp.topic, partition=tp.partition
                                    )
                                )
                                counts.append(n)
                                batch = producer.create_batch()
                                n = 0
                                if batch.append(key=k, value=v, timestamp=None) is None:
                                    raise ChangelogError(
                                        f"store {self.name!r}: a record of {len(v or b'')} bytes "
                                        "does not fit a producer batch (raise max_batch_size)"
                                    )
                            n += 1
                    if n:
                        futures.append(
                            await producer.send_batch(batch, tp.topic, partition=tp.partition)
                        )
                        counts.append(n)
                    self.records_sent += sum(counts)
                    done: asyncio.Future[list[Any]] = asyncio.gather(*futures)
                    done.add_done_callback(
                        functools.partial(self._on_acked, seq=seq, counts=counts)
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._fail(exc)

    def _on_acked(self, fut: asyncio.Future[list[Any]], *, seq: int, counts: list[int]) -> None:
        if fut.cancelled():
            self._fail(ChangelogError(f"store {self.name!r}: a changelog send was cancelled"))
            return
        exc = fut.exception()
        if exc is not None:
            self._fail(exc)
            return
        metas = fut.result()
        self.records_acked += sum(counts)
        if metas and seq >= self._acked_seq:
            # The checkpoint follows the latest write's acknowledgement (not the highest
            # offset ever seen): a changelog that restarted at lower offsets moves it down.
            self._acked_seq = seq
            self._next_offset = metas[-1].offset + counts[-1]
        if seq > self._acked:
            self._acked = seq
        waiters = self._waiters
        while waiters and waiters[0][0] <= self._acked:
            w = waiters.popleft()[1]
            if not w.done():
                w.set_result(None)
        if self.checkpoint_path is not None and self._open and self._checkpoint_timer is None:
            # At most once a second, and at the latest a second after this ack.
            wait = self._checkpoint_at + CHECKPOINT_INTERVAL - time.monotonic()
            if wait <= 0:
                self._timed_checkpoint()
            else:
                loop = asyncio.get_running_loop()
                self._checkpoint_timer = loop.call_later(wait, self._timed_checkpoint)

    def _timed_checkpoint(self) -> None:
        self._checkpoint_timer = None
        if self._open and self.inner.is_open and self._failure is None:
            self._write_checkpoint()

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
            log.error(
                "store %r: writing changelog %s-%d failed: %r",
                self.name,
                self.tp.topic,
                self.tp.partition,
                exc,
            )
        err = self._error()
        while self._waiters:
            w = self._waiters.popleft()[1]
            if not w.done():
                w.set_exception(err)

    def _error(self) -> ChangelogError:
        err = ChangelogError(
            f"store {self.name!r}: writing changelog {self.tp.topic}-{self.tp.partition} "
            f"failed: {self._failure!r}"
        )
        err.__cause__ = self._failure
        return err

    def _write_checkpoint(self) -> None:
        path = self.checkpoint_path
        offset = self._next_offset
        if path is None or offset is None or offset == self._checkpointed:
            return
        self._checkpoint_at = time.monotonic()
        tmp = path.with_name(path.name + ".tmp")
        data = {"topic": self.tp.topic, "partition": self.tp.partition, "offset": offset}
        tmp.write_text(json.dumps(data))
        tmp.replace(path)
        self._checkpointed = offset

    async def _finish(self) -> None:
        """After close: wait for a prepare still running (it closes its own clients, and
        the producer it started once it sees the store closed), then for the writes in
        flight, checkpoint, close the producer."""
        timeout = self._owner.producer_settings.close_timeout
        if self._prepare_done is not None and not self._prepare_done.done():
            await asyncio.wait({self._prepare_done})
        try:
            if self._queued > self._acked and self._failure is None:
                fut = asyncio.get_running_loop().create_future()
                self._waiters.append((self._queued, fut))
                try:
                    await asyncio.wait_for(fut, timeout)
                except Exception as exc:
                    log.warning(
                        "store %r: changelog writes not acknowledged at close: %r", self.name, exc
                    )
            if self._failure is None and self._acked >= self._queued:
                self._write_checkpoint()
        finally:
            if self._sender is not None:
                self._sender.cancel()
                with contextlib.suppress(BaseException):
                    await self._sender
            if self._producer is not None and not self._shared:
                await close_producer(self._producer, timeout, self.name)
