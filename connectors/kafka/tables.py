"""KTables: the latest value per key of a Kafka topic, kept in a store while the stream runs.

``Tables.global_table(settings, topic)`` and ``Tables.table(settings, topic)`` are
blueprints (``RunnableGraph[KTable]``): running one starts a stream that consumes the
topic into a store (:mod:`reactive.state`) and materializes a :class:`KTable`, a
read-only view of that store (``get``, ``in``, ``len``, ``range``, ``items``, ``keys``:
what ``join_table``/``left_join_table`` and queries take) with ``ready()``, ``stop()``
and ``metrics()``.

- A record with a value puts it; a record whose value is None (a tombstone) deletes the
  key; a record without a key is skipped and counted (Kafka Streams does the same). Keys
  and values are what the settings' deserializers give (raw ``bytes`` without one).
- Global (Kafka Streams' ``GlobalKTable``): every partition, no consumer group (the
  partitions are assigned, read from their beginning), one store. At start the stream
  asks the broker for each partition's high watermark; :meth:`KTable.ready` completes
  once every partition was read up to it, so a join started after ``await
  table.ready()`` does not see an empty table. For small reference data (models, prices).
- Partitioned: the partitions the consumer group (``settings.group_id``) assigns to this
  member, one store instance per partition (``StoreContext.partition``); a revoked
  partition's store is closed and stops answering, an assigned one is read from the
  beginning of its partition (the table never commits offsets: the topic is its own
  changelog). ``ready()`` completes when at least one partition is assigned and every
  assigned partition was read up to its high watermark at assignment.
- Co-partitioned (:class:`CoPartitionedTable`, for stream-table joins): the partitions
  whose numbers a *stream's* group assigns to this member, restored before the stream
  processes any record of them (the table is the stream's rebalance listener and the
  consumer takes no record until it returned); a revoked partition keeps answering
  until the next assignment, so records already on their way still join.

The high watermark is read from a fetch response (``consumer.highwater``), not from
ListOffsets: the embedded broker answers ListOffsets "latest" with the base offset of
the last batch + 1 (see ``connectors/kafka/testkit.py``). "Read up to it" means up to
the last record below it: a partition may end with offsets that are no record for a
consumer (the commit marker every transaction ends with, records compacted away), so
the probe reads the partition's tail for its last record (Kafka Streams restores up to
the consumer's position, which moves past them).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.partitioner import murmur2
from aiokafka.structs import ConsumerRecord, TopicPartition

from reactive import AbruptTerminationError, Done, Keep, KillSwitches, RunnableGraph, Sink, Source
from reactive.lowlevel import new_promise
from reactive.stage import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    SinkShape,
)
from reactive.state import (
    KeyValueStore,
    StoreClosedError,
    StoreContext,
    Stores,
    StoreSpec,
    registry_of,
)

from ._closing import close_consumer, start_within
from ._highwater import fetch_highwaters
from ._stages.consumers import Consumer
from .errors import TableNotReadyError
from .settings import ConsumerSettings
from .subscriptions import Subscriptions

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["CoPartitionedTable", "KTable", "Tables", "TableNotReadyError"]

log = logging.getLogger("connectors.kafka")

_MISSING: Any = object()
#: Seconds the start-up probe waits for the fetch that carries the high watermarks.
_PROBE_TIMEOUT = 10.0
#: Offsets before a partition's end the probe reads first to find its last record.
_TAIL = 64


# -- the start-up probe -------------------------------------------------------------------


@dataclass(frozen=True)
class _Start:
    """First element of a global table's stream: what to read and how far to be ready."""

    begins: dict[int, int]
    targets: dict[int, int]
    #: Gets the consumer's ``Control`` when the consumer source is materialized.
    holder: dict[str, Any]
    #: How many partitions the topic has.
    count: int


@dataclass(frozen=True)
class _Assigned:
    tp: TopicPartition


@dataclass(frozen=True)
class _Revoked:
    tp: TopicPartition


async def _probe(
    settings: ConsumerSettings, topic: str, partitions: list[int] | None, who: str
) -> _Start:
    """Each partition's beginning offset and high watermark (all of ``topic``'s partitions
    when ``partitions`` is None)."""
    kwargs = settings.with_group_id(None).to_aiokafka_kwargs()
    kwargs["enable_auto_commit"] = False
    consumer = AIOKafkaConsumer(**kwargs)
    try:
        await start_within(consumer.start(), consumer._client, settings.connect_timeout)
    except asyncio.CancelledError:
        # Cancelled while starting (the table stopped): nothing of the client stays open.
        await close_consumer(consumer, settings.close_timeout, who)
        raise
    except Exception as exc:
        await close_consumer(consumer, settings.close_timeout, who)
        raise ConnectionError(
            f"{who}: cannot reach Kafka at {settings.bootstrap_servers} to read the high "
            f"watermarks of {topic!r}: {exc!r}"
        ) from exc
    try:
        await consumer.topics()
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise ValueError(f"{who}: topic {topic!r} does not exist (create it first)")
        if partitions is None:
            partitions = sorted(found)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        begins = await consumer.beginning_offsets(tps)
        ends = await consumer.end_offsets(tps)
        pending = []
        for tp in tps:
            if ends[tp] > begins[tp]:
                # Fetch the last batch: its response carries the true high watermark.
                consumer.seek(tp, max(begins[tp], ends[tp] - 1))
                pending.append(tp)
        deadline = asyncio.get_running_loop().time() + _PROBE_TIMEOUT
        if not await fetch_highwaters(consumer, pending, _PROBE_TIMEOUT):
            raise TimeoutError(f"{who}: no fetch answer for {topic!r} within {_PROBE_TIMEOUT} s")
        targets = {tp.partition: begins[tp] for tp in tps}
        for tp in pending:
            hw = consumer.highwater(tp)
            targets[tp.partition] = await _records_end(consumer, tp, begins[tp], hw, deadline)
        return _Start({tp.partition: begins[tp] for tp in tps}, targets, {}, len(found))
    finally:
        # Also when cancelled mid-probe (the table stopped): nothing of the client stays open.
        await close_consumer(consumer, settings.close_timeout, who)


async def _records_end(
    consumer: AIOKafkaConsumer, tp: TopicPartition, begin: int, hw: int, deadline: float
) -> int:
    """The offset after the last record ``consumer`` gets from partition ``tp`` below its
    high watermark ``hw`` (``begin`` when it gets none): what a table must have applied to
    be caught up. Below ``hw`` when the partition ends with offsets that carry no record
    for a consumer: a transaction's commit marker (every transactional write ends with
    one), records compacted away, aborted ones under read_committed. Reads the tail,
    ``_TAIL`` offsets first, further back (16 times as far each time) until a record."""
    loop = asyncio.get_running_loop()
    span = _TAIL
    while True:
        start = max(begin, hw - span)
        consumer.seek(tp, start)
        last: int | None = None
        while await consumer.position(tp) < hw:
            if loop.time() > deadline:
                raise TimeoutError(
                    f"cannot read the last records of {tp.topic}-{tp.partition} within "
                    f"{_PROBE_TIMEOUT} s"
                )
            batch = await consumer.getmany(tp, timeout_ms=200, max_records=_TAIL)
            for record in batch.get(tp, ()):
                last = record.offset
        if last is not None:
            return last + 1
        if start <= begin:
            return begin
        span *= 16


async def _partition_counts(
    settings: ConsumerSettings, topics: list[str], who: str
) -> dict[str, int]:
    """How many partitions each of ``topics`` has (0: it does not exist)."""
    kwargs = settings.with_group_id(None).to_aiokafka_kwargs()
    kwargs["enable_auto_commit"] = False
    consumer = AIOKafkaConsumer(**kwargs)
    try:
        try:
            await start_within(consumer.start(), consumer._client, settings.connect_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise ConnectionError(
                f"{who}: cannot reach Kafka at {settings.bootstrap_servers} to read the "
                f"partition counts of {topics}: {exc!r}"
            ) from exc
        await consumer.topics()
        return {t: len(consumer.partitions_for_topic(t) or ()) for t in topics}
    finally:
        await close_consumer(consumer, settings.close_timeout, who)


# -- the materialized value -----------------------------------------------------------------


def _key_partition(
    who: str, key: Any, key_serializer: Callable[[Any], bytes] | None, n: int
) -> int:
    """Kafka's default partitioner over ``n`` partitions: murmur2 of the key's bytes
    (``key_serializer``'s, else ``bytes`` as is, ``str`` in UTF-8); ``who`` names the
    caller in the TypeError for a key it cannot turn into bytes."""
    if key_serializer is not None:
        data = key_serializer(key)
    elif isinstance(key, bytes):
        data = key
    elif isinstance(key, str):
        data = key.encode("utf-8")
    else:
        raise TypeError(
            f"{who}: cannot find the partition of key {key!r} ({type(key).__name__}): give "
            "a key_serializer"
        )
    partition: int = (murmur2(data) & 0x7FFFFFFF) % n
    return partition


class KTable:
    """The latest value per key of a topic: the materialized value of
    ``Tables.table``/``Tables.global_table`` (Kafka Streams' ``KTable``/``GlobalKTable``).

    A read-only store view (``get``, ``in``, ``len``, ``range``, ``items``, ``keys``) over
    the partitions this member serves (all of them for a global table), current after
    every record the stream applied. Reads raise :class:`~reactive.state.StoreClosedError`
    once the stream stopped (its ``__cause__`` is the stream's failure when it failed).
    Order of ``range``/``items``/``keys``: the bytewise order of the serialized keys,
    across partitions.
    """

    def __init__(self, name: str, topic: str, is_global: bool) -> None:
        self.name = name
        self.topic = topic
        self.is_global = is_global
        self._stores: dict[int, KeyValueStore[Any, Any]] = {}
        self._closed = False
        #: The stream's failure, once it failed (the cause of later reads' errors).
        self._failure: BaseException | None = None
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[Any] = loop.create_future()
        self._ready.add_done_callback(_consume_exception)
        # A stream failure nobody observes (through done, ready() or a read) is logged
        # once, naming the stage, as for any stream's materialized value.
        self._done: asyncio.Future[Any] = new_promise(loop)
        self._switch: Any = None
        self._control: Any = None
        self._num_partitions: int | None = None
        self._listeners: list[Callable[[KTable], Any]] = []
        self._counts = {"records": 0, "puts": 0, "deletes": 0, "skipped_no_key": 0}

    # -- reads ---------------------------------------------------------------------------
    def _open_stores(self) -> list[KeyValueStore[Any, Any]]:
        if self._closed:
            failure = self._observed_failure()
            if failure is None:
                raise StoreClosedError(f"table {self.name!r} is closed: its stream stopped")
            raise StoreClosedError(
                f"table {self.name!r} is closed: its stream failed with {failure!r}"
            ) from failure
        return list({id(s): s for s in self._stores.values()}.values())

    def _observed_failure(self) -> BaseException | None:
        """The stream's failure, counted as observed (it is being raised to the user as a
        cause, so it is not logged again as unobserved)."""
        if self._failure is not None and self._done.done() and not self._done.cancelled():
            self._done.exception()
        return self._failure

    @property
    def is_open(self) -> bool:
        """True until the table's stream stopped."""
        return not self._closed

    @property
    def partitions(self) -> frozenset[int]:
        """The partitions this table serves now (every one for a global table)."""
        return frozenset(self._stores)

    @property
    def num_partitions(self) -> int | None:
        """How many partitions the topic has (None until the stream learned it)."""
        return self._num_partitions

    def partition_of(self, key: Any, key_serializer: Callable[[Any], bytes] | None = None) -> int:
        """The partition Kafka's default partitioner gives ``key`` (murmur2 of its bytes):
        where a producer using it wrote the key. ``key_serializer`` turns the key into
        the record's key bytes (default: ``bytes`` as is, ``str`` in UTF-8).

        Raises:
            RuntimeError: the number of partitions is not known yet.
            TypeError: the key cannot be turned into bytes.
        """
        n = self._num_partitions
        if n is None:
            raise RuntimeError(
                f"table {self.name!r}: the partitions of {self.topic!r} are not known yet"
            )
        return _key_partition(f"table {self.name!r}", key, key_serializer, n)

    def add_listener(self, listener: Callable[[KTable], Any]) -> None:
        """Call ``listener(table)`` whenever the partitions served change (assignment,
        revocation, stop)."""
        if not callable(listener):
            raise TypeError(f"KTable.add_listener: expected a callable, got {listener!r}")
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in list(self._listeners):
            try:
                listener(self)
            except Exception:
                log.exception("table %r: a partition listener failed", self.name)

    def store_of(self, partition: int) -> KeyValueStore[Any, Any] | None:
        """The store of ``partition``, or None when this member does not serve it."""
        return self._stores.get(partition)

    def get(self, key: Any, default: Any = None) -> Any:
        """The current value of ``key``, or ``default``."""
        for store in self._open_stores():
            value = store.get(key, _MISSING)
            if value is not _MISSING:
                return value
        return default

    def __contains__(self, key: object) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def __len__(self) -> int:
        return sum(len(s) for s in self._open_stores())

    def range(
        self,
        start: Any = None,
        end: Any = None,
        *,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[Any, Any]]:
        """``(key, value)`` pairs with ``start <= key < end`` in serialized-key order."""
        stores = self._open_stores()
        if len(stores) == 1:
            return stores[0].range(
                start, end, start_inclusive=start_inclusive, end_inclusive=end_inclusive
            )
        scans = []
        for s in stores:
            sb = None if start is None else s._key(start)
            eb = None if end is None else s._key(end)
            scans.append(s.bytes_store.scan(sb, eb, start_inclusive, end_inclusive))
        if not stores:
            return iter(())
        return stores[0]._decoded(heapq.merge(*scans, key=lambda kv: kv[0]))

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every ``(key, value)`` pair in serialized-key order."""
        return self.range()

    def keys(self) -> Iterator[Any]:
        """Every key in serialized-key order."""
        return (k for k, _ in self.range())

    def __iter__(self) -> Iterator[Any]:
        return self.keys()

    # -- lifecycle -----------------------------------------------------------------------
    async def ready(self, timeout: float | None = None) -> KTable:
        """Wait until the table caught up (see the module docstring); returns the table.

        Raises:
            TableNotReadyError: the stream stopped or failed first (its failure is the
                ``__cause__``), or ``timeout`` passed.
        """
        try:
            await asyncio.wait_for(asyncio.shield(self._ready), timeout)
        except TimeoutError:
            raise TableNotReadyError(
                f"table {self.name!r} of topic {self.topic!r} did not catch up within {timeout} s"
            ) from None
        except TableNotReadyError:
            self._observed_failure()
            raise
        return self

    @property
    def is_ready(self) -> bool:
        """True once :meth:`ready` would return at once."""
        return self._ready.done() and self._ready.exception() is None

    @property
    def done(self) -> asyncio.Future[Any]:
        """Completes with ``Done`` when the table's stream stopped (fails with its failure)."""
        return self._done

    async def stop(self) -> Any:
        """Stop consuming, close the stores, wait for the stream to end and the consumer
        to close; ``Done``. The stream's failure, if any, is on :attr:`done`."""
        control = self._control
        if control is not None:
            await control.shutdown()
        elif self._switch is not None and not self._done.done():
            self._switch.shutdown()
        # Without retrieving the failure (shield would): it stays on done, and is logged
        # once if nobody looks at it there.
        await asyncio.wait([self._done])
        control = self._control
        if control is not None:
            await control.is_shutdown
        return Done

    def metrics(self) -> dict[str, Any]:
        """Counters: ``records`` applied, ``puts``, ``deletes`` (tombstones),
        ``skipped_no_key``, ``partitions`` served, ``ready``."""
        return {**self._counts, "partitions": sorted(self._stores), "ready": self.is_ready}

    def __repr__(self) -> str:
        kind = "global " if self.is_global else ""
        state = "closed" if self._closed else ("ready" if self.is_ready else "catching up")
        return f"<{kind}KTable {self.name!r} of {self.topic!r} {state}>"


def _consume_exception(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()


# -- the sink that keeps the table --------------------------------------------------------


class _TableSink(GraphStageWithMaterializedValue[SinkShape[Any], KTable]):
    def __init__(
        self,
        spec: StoreSpec[Any, Any],
        topic: str,
        is_global: bool,
        settings: ConsumerSettings,
        store_partition: int | None = None,
    ) -> None:
        self.shape = SinkShape(Inlet("KTable.in"))
        self.spec = spec
        self.settings = settings
        self.store_partition = store_partition
        self.topic = topic
        self.is_global = is_global
        self.name = "global_table" if is_global else "table"

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, KTable]:
        table = KTable(self.spec.name, self.topic, self.is_global)
        return _TableLogic(self, table), table


class _TableLogic(GraphStageLogic, InHandler):
    def __init__(self, stage: _TableSink, table: KTable) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.table = table
        self.in_ = stage.shape.in_
        self.set_handler(self.in_, self)
        self.begins: dict[int, int] = {}
        self.targets: dict[int, int] = {}
        self.positions: dict[int, int] = {}
        self.assigned = False
        self.probes: set[asyncio.Task[Any]] = set()
        self._set_target = self.get_async_callback(self._on_target)

    def pre_start(self) -> None:
        self.registry = registry_of(self.materializer)
        self.pull(self.in_)

    def _open(self, partition: int | None) -> KeyValueStore[Any, Any]:
        """A store instance, emptied: the table reads its partitions from the beginning,
        so what a persistent store kept from an earlier run (maybe keys whose tombstones
        were compacted away since) must not stay."""
        ctx = StoreContext(self.stage.spec.name, self._stage_name, partition)
        store = self.stage.spec.open(ctx)
        try:
            if len(store):
                with store.write_batch() as batch:
                    for key in list(store.keys()):
                        batch.delete(key)
        except BaseException:
            store.close()
            raise
        return store

    def on_push(self) -> None:
        x = self.grab(self.in_)
        try:
            if type(x) is ConsumerRecord:
                self._apply(x)
            elif type(x) is _Start:
                self.table._control = x.holder.get("control")
                where = self.stage.store_partition
                store = self._open(where)
                for p in x.begins:
                    self.table._stores[p] = store
                self.table._num_partitions = x.count
                self.registry.register(
                    self.table.name, store, where, ready=lambda: self.table.is_ready
                )
                self.table._changed()
                self.begins, self.targets = x.begins, x.targets
                self.assigned = True
            elif type(x) is _Assigned:
                self._assign(x.tp)
            elif type(x) is _Revoked:
                self._revoke(x.tp.partition)
        except Exception as exc:
            self._note(exc, x)
            self.fail_stage(exc)
            return
        self._check_ready()
        self.pull(self.in_)

    def _note(self, exc: Exception, x: Any) -> None:
        """Say on ``exc`` (a note: the table fails with the store's own error) which
        element the table could not apply."""
        where = f"[{self._stage_name}] table {self.table.name!r} of topic {self.table.topic!r}"
        if type(x) is ConsumerRecord:
            what = f"cannot apply the record at partition {x.partition} offset {x.offset}"
        elif type(x) is _Start:
            what = f"cannot open its store for partitions {sorted(x.begins)}"
        elif type(x) is _Assigned:
            what = f"cannot open the store of assigned partition {x.tp.partition}"
        else:
            what = f"cannot close the store of revoked partition {x.tp.partition}"
        exc.add_note(f"{where}: {what}")

    def _apply(self, rec: ConsumerRecord[Any, Any]) -> None:
        p = rec.partition
        store = self.table._stores.get(p)
        if store is None:  # in flight when its partition was revoked
            return
        counts = self.table._counts
        counts["records"] += 1
        self.positions[p] = rec.offset + 1
        if rec.key is None:
            counts["skipped_no_key"] += 1
            log.debug(
                "[%s] %r: record without a key at %s-%d@%d skipped",
                self._stage_name,
                self.table.name,
                rec.topic,
                p,
                rec.offset,
            )
            return
        if rec.value is None:
            store.delete(rec.key)
            counts["deletes"] += 1
        else:
            store.put(rec.key, rec.value)
            counts["puts"] += 1

    def _assign(self, tp: TopicPartition) -> None:
        p = tp.partition
        old = self.table._stores.pop(p, None)
        if old is not None:
            self.registry.unregister(self.table.name, old)
            old.close()
        store = self.table._stores[p] = self._open(p)
        self.registry.register(self.table.name, store, p, ready=lambda: self._partition_ready(p))
        self.table._changed()
        self.positions.pop(p, None)
        self.targets.pop(p, None)
        self.assigned = True
        task = self.materializer.spawn(self._probe_partition(self.stage.settings, tp))
        self.probes.add(task)
        task.add_done_callback(self.probes.discard)

    async def _probe_partition(self, settings: ConsumerSettings, tp: TopicPartition) -> None:
        try:
            start = await _probe(settings, tp.topic, [tp.partition], self._stage_name)
        except Exception as exc:
            log.warning("[%s] cannot read the high watermark of %s: %r", self._stage_name, tp, exc)
            return
        self._set_target.invoke((tp.partition, start))

    def _on_target(self, item: tuple[int, _Start]) -> None:
        p, start = item
        self.table._num_partitions = start.count
        if p in self.table._stores:
            self.begins[p] = start.begins[p]
            self.targets[p] = start.targets[p]
            self._check_ready()

    def _revoke(self, p: int) -> None:
        store = self.table._stores.pop(p, None)
        if store is not None:
            self.registry.unregister(self.table.name, store)
            store.close()
            self.table._changed()
        self.targets.pop(p, None)
        self.positions.pop(p, None)

    def _partition_ready(self, p: int) -> bool:
        """Queryable state: partition ``p``'s store caught up with the topic as it was
        when ``p`` was assigned."""
        target = self.targets.get(p)
        return target is not None and self.positions.get(p, self.begins.get(p, 0)) >= target

    def _check_ready(self) -> None:
        ready = self.table._ready
        if ready.done() or not self.assigned:
            return
        stores = self.table._stores
        if not stores:
            return
        for p in stores:
            target = self.targets.get(p)
            if target is None:
                return
            if self.positions.get(p, self.begins.get(p, 0)) < target:
                return
        ready.set_result(self.table)

    def _close(self, failure: BaseException | None, stopped: BaseException | None = None) -> None:
        """Close the table once: unregister and close its stores, settle ``ready`` and
        ``done``. ``failure``: the stream's (``done`` fails with it; ``ready()``'s error
        and later reads' carry it as ``__cause__``). ``stopped``, without a failure: what
        ``done`` fails with for a stream stopped from outside. Neither: ``Done``."""
        table = self.table
        if table._done.done():
            return
        exc = failure if failure is not None else stopped
        table._failure = failure
        table._closed = True
        stores = {id(s): s for s in table._stores.values()}
        table._stores = {}
        for s in stores.values():
            self.registry.unregister(table.name, s)
            with contextlib.suppress(Exception):
                s.close()
        if not table._ready.done():
            reason = "" if failure is None else f": {failure!r}"
            err = TableNotReadyError(
                f"table {table.name!r} of topic {table.topic!r} stopped before it caught up{reason}"
            )
            err.__cause__ = exc
            table._ready.set_exception(err)
        table._changed()
        if exc is None:
            table._done.set_result(Done)
        else:
            table._done.set_exception(exc)

    def fail_stage(self, exc: BaseException) -> None:
        """Every failure of the stage passes here (``on_push``'s, upstream's, a handler
        or callback that raised, ``pre_start``'s): the table keeps the real error before
        the stage stops, so ``post_stop`` never replaces it with "stopped"."""
        self._close(exc)
        super().fail_stage(exc)

    def on_upstream_finish(self) -> None:
        self._close(None)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        # A materializer shutdown or a cancelled island (AbruptTerminationError) is a
        # stop, settled by post_stop; anything else is the island's crash: a failure.
        if not isinstance(exc, AbruptTerminationError):
            self._close(exc)

    def post_stop(self) -> None:
        for task in list(self.probes):
            task.cancel()
        # Only a stream stopped without a failure gets here with the table open.
        self._close(None, StoreClosedError(f"table {self.table.name!r}: its stream was stopped"))


# -- factories ----------------------------------------------------------------------------------


def _check(what: str, settings: Any, topic: Any, store: Any) -> StoreSpec[Any, Any]:
    if not isinstance(settings, ConsumerSettings):
        raise TypeError(f"Tables.{what}: expected ConsumerSettings, got {settings!r}")
    if not isinstance(topic, str) or not topic:
        raise TypeError(f"Tables.{what}: topic must be a non-empty str, got {topic!r}")
    if store is None:
        return Stores.in_memory(f"{topic}-table")
    if not isinstance(store, StoreSpec):
        raise TypeError(
            f"Tables.{what}: store must be a StoreSpec (Stores.in_memory(name), "
            f"Stores.persistent(name, path)), got {store!r}"
        )
    return store


def _graph_name(topic: str, store: Any, partition: int | None = None) -> str:
    """The name of a table's graph (snapshots, metrics: Prometheus' ``graph`` label):
    ``table:<store name>`` for a store given, else ``table:<topic>``; a co-partitioned
    table's part adds ``/<partition>``. Without it the graph would be ``graph-<n>``, the
    number depending on start order."""
    name = f"table:{store.name if store is not None else topic}"
    return name if partition is None else f"{name}/{partition}"


def _with_switch(table: KTable, switch: Any, control: Any = None) -> KTable:
    table._switch = switch
    table._control = control
    return table


def _assigned_table(
    settings: ConsumerSettings,
    topic: str,
    spec: StoreSpec[Any, Any],
    partition: int | None,
    graph_name: str,
) -> RunnableGraph[KTable]:
    """A table of every partition of ``topic`` (``partition`` None: a global table), or of
    that one partition (a part of a co-partitioned table), without a consumer group; its
    graph named ``graph_name``."""
    s = settings.with_group_id(None).with_auto_offset_reset("earliest")
    who = f"Tables.global_table({topic!r})" if partition is None else f"{topic}-{partition}"
    only = None if partition is None else [partition]

    def consume(start: _Start) -> Source[Any, Any]:
        tps = [TopicPartition(topic, p) for p in sorted(start.begins)]
        consumer = Consumer.plain_source(s, Subscriptions.assignment(*tps))
        return Source.single(start).concat(
            consumer.map_materialized_value(lambda c: start.holder.setdefault("control", c))
        )

    source = Source.lazy_future(lambda: _probe(s, topic, only, who)).flat_map_concat(consume)
    sink = _TableSink(spec, topic, partition is None, s, partition)
    graph: RunnableGraph[KTable] = source.via_mat(KillSwitches.single(), Keep.right).to_mat(
        Sink.from_graph(sink), lambda sw, t: _with_switch(t, sw)
    )
    return graph.named(graph_name)


class CoPartitionedTable(KTable):
    """A table of the partitions of ``topic`` whose numbers a *stream's* consumer group
    assigns to this member: give it as that stream's rebalance listener
    (``Subscriptions.topics(stream_topic).with_rebalance_listener(table)``; with a
    changelogged store's listener too: ``with_rebalance_listener(table, listener)``, both
    are called). Made by :meth:`Tables.co_partitioned`.

    Restore before processing (Kafka Streams restores a task's stores before it
    processes a record of its partitions): each newly assigned partition number ``p``
    starts a stream reading partition ``p`` of ``topic`` (no group, from the beginning)
    into its own store instance, and the listener returns once every new partition
    caught up with the high watermark read at assignment. The stream's consumer takes no
    record from the revocation until the listener returned (``Consumer`` sources hold
    the partitions back: aiokafka keeps at most one fetch per partition, nothing is
    buffered beyond it), so no stream record of ``p`` is joined before ``p``'s table is
    restored.

    Co-partitioning is checked at the first assignment of each stream topic: a stream
    topic whose partition count differs from ``topic``'s fails the stream's source with a
    ``ValueError`` (and ``ready()`` with it as the cause), as Kafka Streams refuses to
    start such a join, instead of sending the records of half the keys to ``missing``.

    Revocation: a revoked partition's store stops being served (``partitions``, the
    registry) but stays readable for the records of it still on their way until the
    assignment that follows; a partition assigned again keeps its running table (no
    new restore), the others are stopped and their stores closed then. With the default
    partitioner and the same number of partitions, a key's table value is on the member
    that receives the key's stream records: Kafka Streams' co-partitioning.
    """

    def __init__(
        self,
        settings: ConsumerSettings,
        topic: str,
        spec: StoreSpec[Any, Any],
        materializer: Any,
        graph_name: str | None = None,
    ) -> None:
        super().__init__(spec.name, topic, False)
        #: Its partitions' graphs are named ``<graph_name>/<partition>``.
        self._graph_name = graph_name or _graph_name(topic, None)
        self._settings = settings
        self._spec = spec
        self._materializer = materializer
        #: The running table of each partition number, served or revoked.
        self._parts: dict[int, KTable] = {}
        #: Revoked partitions whose tables run until the next assignment.
        self._revoked: set[int] = set()
        #: Stream topics found co-partitioned with the table's topic.
        self._checked: set[str] = set()

    def _open_stores(self) -> list[KeyValueStore[Any, Any]]:
        stores = super()._open_stores()
        for p in self._revoked:
            part = self._parts.get(p)
            store = None if part is None else part.store_of(p)
            if store is not None and store.is_open:
                stores.append(store)
        return stores

    async def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        """Keep the tables of partitions assigned again, stop those of the partitions
        revoked for good, start the tables of the new ones and wait until they caught
        up (the stream takes no record meanwhile)."""
        if self._closed:
            return
        unchecked = {tp.topic for tp in assigned} - self._checked
        if unchecked:
            await self._check_co_partitioned(sorted(unchecked))
        wanted = {tp.partition for tp in assigned}
        revoked, self._revoked = self._revoked, set()
        for p in sorted(revoked):
            part = self._parts[p]
            if p in wanted and part.is_open:
                store = part.store_of(p)
                if store is not None:
                    self._stores[p] = store
                continue
            # Moved to another member: no record of it reaches the join any more (the
            # stream's consumer dropped the ones it held when the partition was revoked).
            del self._parts[p]
            await part.stop()
        new: dict[int, KTable] = {}
        for p in sorted(wanted - set(self._parts)):
            graph = _assigned_table(
                self._settings, self.topic, self._spec, p, f"{self._graph_name}/{p}"
            )
            new[p] = self._parts[p] = graph.run(self._materializer)
        for p, part in new.items():
            try:
                await part.ready()
            except TableNotReadyError as exc:
                # Reported here (ready() counted the failure as observed): the stream
                # goes on without the partition.
                log.warning("table %r: partition %d did not load: %r", self.name, p, exc.__cause__)
                self._parts.pop(p, None)
                continue
            store = part.store_of(p)
            if store is not None and not self._closed:
                self._stores[p] = store
                self._num_partitions = part.num_partitions
        self._changed()
        if self._stores and not self._ready.done():
            self._ready.set_result(self)

    async def _check_co_partitioned(self, stream_topics: list[str]) -> None:
        """Raise ``ValueError`` (the stream's source fails with it, before any record of
        the assignment is taken) when a stream topic's partition count differs from the
        table topic's: partition p of the stream would not hold the keys of partition p
        of the table (Kafka Streams refuses such a join: "Topics not co-partitioned")."""
        who = f"Tables.co_partitioned({self.topic!r})"
        counts = await _partition_counts(self._settings, [self.topic, *stream_topics], who)
        mine = counts[self.topic]
        wrong = {t: n for t, n in counts.items() if t != self.topic and n != mine}
        if mine == 0:
            err = ValueError(f"{who}: table topic {self.topic!r} does not exist (create it first)")
        elif wrong:
            theirs = ", ".join(f"stream topic {t!r} has {n}" for t, n in sorted(wrong.items()))
            err = ValueError(
                f"table {self.name!r}: not co-partitioned: table topic {self.topic!r} has "
                f"{mine} partitions, {theirs}; a stream-table join needs the same partition "
                "count on both sides (and the same partitioner), or the records of a key "
                "and its table value live on different members: repartition one topic, "
                "or use Tables.global_table"
            )
        else:
            self._checked.update(stream_topics)
            return
        if not self._ready.done():
            not_ready = TableNotReadyError(f"table {self.name!r}: {err}")
            not_ready.__cause__ = err
            self._ready.set_exception(not_ready)
        raise err

    async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        """Stop serving the revoked partitions; their tables keep answering the join
        until the next assignment (see the class docstring)."""
        for p in sorted({tp.partition for tp in revoked}):
            self._stores.pop(p, None)
            if p in self._parts:
                self._revoked.add(p)
        self._changed()

    def metrics(self) -> dict[str, Any]:
        """Counters of every partition's table, summed (see :meth:`KTable.metrics`)."""
        counts = dict.fromkeys(self._counts, 0)
        for part in self._parts.values():
            for k in counts:
                counts[k] += part._counts[k]
        return {**counts, "partitions": sorted(self._stores), "ready": self.is_ready}

    async def stop(self) -> Any:
        """Stop every partition's table; reads raise ``StoreClosedError`` after."""
        parts = list(self._parts.values())
        self._parts.clear()
        self._revoked.clear()
        self._stores = {}
        self._closed = True
        for part in parts:
            await part.stop()
        if not self._ready.done():
            self._ready.set_exception(
                TableNotReadyError(f"table {self.name!r} was stopped before it caught up")
            )
        if not self._done.done():
            self._done.set_result(Done)
        self._changed()
        return Done


class Tables:
    """Factories of KTable blueprints (Kafka Streams' ``builder.table``/``globalTable``)."""

    __slots__ = ()

    @staticmethod
    def global_table(
        settings: ConsumerSettings, topic: str, store: StoreSpec[Any, Any] | None = None
    ) -> RunnableGraph[KTable]:
        """A table of every partition of ``topic``, read from the beginning without a
        consumer group (``settings.group_id`` is ignored), kept in ``store`` (default:
        ``Stores.in_memory(f"{topic}-table")``). Materializes a :class:`KTable`; await
        ``table.ready()`` before joining against it.

        Fails when the broker cannot be reached within ``settings.connect_timeout``, the
        topic does not exist, a record cannot be deserialized or written to the store.
        Stops with ``table.stop()`` (or the materializer's shutdown).
        """
        spec = _check("global_table", settings, topic, store)
        return _assigned_table(settings, topic, spec, None, _graph_name(topic, store))

    @staticmethod
    def table(
        settings: ConsumerSettings, topic: str, store: StoreSpec[Any, Any] | None = None
    ) -> RunnableGraph[KTable]:
        """A table of the partitions of ``topic`` that the consumer group
        ``settings.group_id`` assigns to this member, one ``store`` instance per
        partition, each read from the partition's beginning (offsets are never
        committed). Materializes a :class:`KTable` serving the assigned partitions.

        Fails when the consumer fails (as ``Consumer.plain_partitioned_source``), a record
        cannot be deserialized or written to the store. Stops with ``table.stop()``.
        """
        spec = _check("table", settings, topic, store)
        if settings.group_id is None:
            raise ValueError(
                f"Tables.table({topic!r}): a partitioned table needs a consumer group; set "
                "ConsumerSettings.group_id, or use Tables.global_table for every partition"
            )
        s = settings.with_auto_offset_reset("earliest")

        def partition(pair: tuple[TopicPartition, Source[Any, Any]]) -> Source[Any, Any]:
            tp, records = pair
            return Source.single(_Assigned(tp)).concat(records).concat(Source.single(_Revoked(tp)))

        sink = _TableSink(spec, topic, False, s)
        source = Consumer.plain_partitioned_source(s, Subscriptions.topics(topic)).flat_map_merge(
            1 << 16, partition
        )
        graph: RunnableGraph[KTable] = source.via_mat(KillSwitches.single(), Keep.both).to_mat(
            Sink.from_graph(sink), lambda cs, t: _with_switch(t, cs[1], cs[0])
        )
        return graph.named(_graph_name(topic, store))

    @staticmethod
    def co_partitioned(
        settings: ConsumerSettings,
        topic: str,
        materializer: Any,
        store: StoreSpec[Any, Any] | None = None,
    ) -> CoPartitionedTable:
        """A table following a stream's assignment (see :class:`CoPartitionedTable`):
        pass it as the stream subscription's rebalance listener. Its partitions are read
        with ``settings`` (``group_id`` ignored) and run in ``materializer``. Call from a
        running event loop; stop it with ``await table.stop()``.

        Guarantee, with a ``Consumer`` source of the stream's topic: a stream record of
        partition ``p`` is emitted only after partition ``p`` of the table was read up to
        the high watermark read when ``p`` was assigned, and a record emitted before
        ``p`` was revoked still finds ``p``'s values until the next assignment. A table
        partition whose stream fails before it caught up is logged (WARNING on
        ``connectors.kafka``), the stream goes on and its records go to the join's
        ``missing`` sink.
        """
        spec = _check("co_partitioned", settings, topic, store)
        return CoPartitionedTable(settings, topic, spec, materializer, _graph_name(topic, store))
