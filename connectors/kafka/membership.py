"""Which member of a consumer group serves which partition of a table, and at which HTTP
endpoint: the ownership metadata of queryable state (``reactive.state.http``).

Kafka Streams carries each member's ``application.server`` in the group protocol's
user data; aiokafka's group protocol is not open to that, so members tell each other
through a small topic instead (compacted in production; ``cleanup.policy=compact``):

- each member publishes, keyed by its endpoint, a JSON record ``{"endpoint", "at",
  "tables": {store: {"topic", "partitions"}}}`` whenever the partitions of a table it
  :meth:`tracks <GroupMembership.track>` change (assignment, revocation), or those of
  any partitioned store it :meth:`tracks by name <GroupMembership.track_store>` (an
  ``aggregate_by_key`` / ``stateful_map_by_key`` store per partition: the partitions
  its instances are registered with in the materializer's ``StateRegistry``), and a
  tombstone when it stops;
- every member reads the topic as a global table (:func:`Tables.global_table`), so it
  knows every member's latest record.

:meth:`GroupMembership.owner_of` gives ``(partition, endpoint)`` for a key: the
partition from Kafka's default partitioner (``KTable.partition_of``), the endpoint of the
member whose latest record lists that partition (the most recent record wins while a
rebalance moves partitions: a member that died without its tombstone is superseded by
the new owner's record; this member's own record is never read for it, its own
partitions are known here). A global table is answered locally (None). Until
:meth:`~GroupMembership.start` has read the records, a key not served here raises
``OwnershipNotReadyError`` (the state server answers 503).

A store tracked by name is partitioned like its input topic (Kafka Streams'
``queryMetadataForKey``): the partition of a key is the default partitioner's for the
store's key serialized as the input record's key was.

The membership's producer is its own, or the application's when ``producer_settings``
carry one (``ProducerSettings.with_producer``): that one is never closed here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from reactive.state import OwnershipNotReadyError, registry_of

from ._closing import close_producer, start_within, within
from .errors import ProducerStartError
from .serde import str_deserializer
from .settings import ConsumerSettings, ProducerSettings, _shared_producer_problem
from .tables import KTable, Tables, _key_partition, _partition_counts

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive import Materializer
    from reactive.state import StateRegistry

__all__ = ["GroupMembership"]

log = logging.getLogger("connectors.kafka")


def _json_deserializer(data: bytes | None) -> Any:
    return None if data is None else json.loads(data)


class GroupMembership:
    """This member's endpoint and partitions, published to ``topic``; the others' read
    from it (see the module docstring). ``endpoint`` is this member's base URL (e.g.
    ``StateServer.url``). Serves as the ``ownership`` of a
    :class:`~reactive.state.http.StateServer`.
    """

    def __init__(
        self,
        consumer_settings: ConsumerSettings,
        producer_settings: ProducerSettings,
        topic: str,
        endpoint: str,
    ) -> None:
        if not isinstance(consumer_settings, ConsumerSettings):
            raise TypeError(
                f"GroupMembership: expected ConsumerSettings, got {consumer_settings!r}"
            )
        if not isinstance(producer_settings, ProducerSettings):
            raise TypeError(
                f"GroupMembership: expected ProducerSettings, got {producer_settings!r}"
            )
        if not isinstance(endpoint, str) or not endpoint:
            raise TypeError(f"GroupMembership: endpoint must be a non-empty str, got {endpoint!r}")
        self.topic = topic
        self.endpoint = endpoint
        self._consumer_settings = consumer_settings.with_key_deserializer(
            str_deserializer
        ).with_value_deserializer(_json_deserializer)
        self._producer_settings = producer_settings
        self._tables: dict[str, tuple[KTable, Callable[[Any], bytes] | None]] = {}
        # Stores tracked by name: name -> (input topic, key serializer).
        self._stores: dict[str, tuple[str, Callable[[Any], bytes] | None]] = {}
        self._counts: dict[str, int] = {}  # input topic -> its partition count
        self._counting: set[asyncio.Task[Any]] = set()
        self._registry: StateRegistry | None = None
        self._members: KTable | None = None
        self._producer: AIOKafkaProducer | None = None
        self._shared = producer_settings.producer is not None
        self._publishing: asyncio.Task[Any] | None = None
        self._dirty = False
        self._started = False  # start() finished: the members' records are read

    async def start(self, materializer: Materializer) -> GroupMembership:
        """Learn the partition counts of the stores tracked by name, start the producer
        (unless shared) and read the members' records (until caught up). Stores tracked
        by name are followed in ``materializer``'s ``StateRegistry``.

        Raises:
            ValueError: the input topic of a store tracked by name does not exist.
            ProducerStartError: the shared producer is closed or not started.
        """
        settings = self._producer_settings
        if settings.producer is not None:
            problem = _shared_producer_problem(settings.producer)
            if problem is not None:
                raise ProducerStartError(
                    f"GroupMembership {self.endpoint!r}: the shared producer given with "
                    f"ProducerSettings.with_producer {problem}"
                )
        await self._count([t for t, _ in self._stores.values()])
        self._registry = registry_of(materializer)
        self._registry.add_listener(self._on_registered)
        self._members = Tables.global_table(self._consumer_settings, self.topic).run(materializer)
        if settings.producer is not None:
            producer = settings.producer
        else:
            producer = AIOKafkaProducer(**settings.to_aiokafka_kwargs())
            try:
                await start_within(producer.start(), producer.client, settings.connect_timeout)
            except BaseException:
                await close_producer(producer, settings.close_timeout, repr(self))
                raise
        self._producer = producer
        await self._members.ready()
        self._started = True
        self._publish_soon()
        return self

    async def _count(self, topics: list[str]) -> None:
        missing = sorted({t for t in topics if t not in self._counts})
        if not missing:
            return
        counts = await _partition_counts(self._consumer_settings, missing, repr(self))
        for topic, n in counts.items():
            if n <= 0:
                raise ValueError(
                    f"GroupMembership {self.endpoint!r}: topic {topic!r} of a tracked store "
                    "does not exist (no partitions)"
                )
            self._counts[topic] = n

    def track(self, table: KTable, key_serializer: Callable[[Any], bytes] | None = None) -> None:
        """Publish the partitions of ``table`` whenever they change, and answer
        :meth:`owner_of` for its store. ``key_serializer`` gives a key's record bytes
        (see ``KTable.partition_of``)."""
        if not isinstance(table, KTable):
            raise TypeError(f"GroupMembership.track: expected a KTable, got {table!r}")
        if table.name in self._stores:
            raise ValueError(
                f"GroupMembership.track: {table.name!r} is already tracked with track_store"
            )
        self._tables[table.name] = (table, key_serializer)
        table.add_listener(lambda _: self._publish_soon())
        self._publish_soon()

    def track_store(
        self, name: str, topic: str, key_serializer: Callable[[Any], bytes] | None = None
    ) -> None:
        """Publish the partitions of the store ``name`` served here whenever they change,
        and answer :meth:`owner_of` for it: a store partitioned like its input ``topic``
        (an ``aggregate_by_key`` / ``stateful_map_by_key`` store per partition, e.g.
        ``changelogged(...).for_partition(tp)`` in a partitioned source's substreams).
        Its partitions here are those its instances are registered with in the
        materializer's ``StateRegistry`` (the stages register and unregister them as the
        partitions are assigned and revoked): nothing more to wire. ``key_serializer``
        turns a store key into the bytes its input record's key had (default: ``bytes``
        as is, ``str`` in UTF-8); the partition is Kafka's default partitioner's.

        Track before :meth:`start` (which learns ``topic``'s partition count); tracked
        after it, :meth:`owner_of` raises ``OwnershipNotReadyError`` (the state server
        answers 503) until the count is known.
        """
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"GroupMembership.track_store: name must be a non-empty str, got {name!r}"
            )
        if not isinstance(topic, str) or not topic:
            raise TypeError(
                f"GroupMembership.track_store({name!r}): topic must be a non-empty str, "
                f"got {topic!r}"
            )
        if key_serializer is not None and not callable(key_serializer):
            raise TypeError(
                f"GroupMembership.track_store({name!r}): key_serializer must be callable, "
                f"got {key_serializer!r}"
            )
        if name in self._tables:
            raise ValueError(
                f"GroupMembership.track_store: {name!r} is already tracked as a KTable"
            )
        self._stores[name] = (topic, key_serializer)
        if self._registry is not None and topic not in self._counts:
            task = asyncio.get_running_loop().create_task(self._count_later(topic))
            self._counting.add(task)
            task.add_done_callback(self._counting.discard)
        self._publish_soon()

    async def _count_later(self, topic: str) -> None:
        try:
            await self._count([topic])
        except Exception as exc:
            log.error("membership %s: cannot learn the partitions of %r: %r", self, topic, exc)

    def _on_registered(self, name: str) -> None:
        if name in self._stores:
            self._publish_soon()

    def _store_partitions(self, name: str) -> list[int]:
        registry = self._registry
        if registry is None:
            return []
        return [p for p in registry.partitions(name) if p is not None]

    # -- publishing ------------------------------------------------------------------------
    def _record(self) -> dict[str, Any]:
        tables = {
            name: {"topic": t.topic, "partitions": sorted(t.partitions)}
            for name, (t, _) in self._tables.items()
            if not t.is_global and t.is_open
        }
        for name, (topic, _) in self._stores.items():
            tables[name] = {"topic": topic, "partitions": self._store_partitions(name)}
        return {"endpoint": self.endpoint, "at": time.time(), "tables": tables}

    def _publish_soon(self) -> None:
        self._dirty = True
        if self._producer is None:
            return
        if self._publishing is None or self._publishing.done():
            self._publishing = asyncio.get_running_loop().create_task(self._publish())

    async def _publish(self) -> None:
        producer = self._producer
        while self._dirty and producer is not None:
            self._dirty = False
            record = json.dumps(self._record()).encode()
            try:
                await producer.send_and_wait(self.topic, record, key=self.endpoint.encode())
            except Exception as exc:
                log.warning(
                    "membership %s: cannot publish to %r: %r", self.endpoint, self.topic, exc
                )

    # -- queries ---------------------------------------------------------------------------
    def members(self) -> dict[str, Any]:
        """Every member's latest record, by endpoint."""
        if self._members is None or not self._members.is_open:
            return {}
        return dict(self._members.items())

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        """``(partition, endpoint)`` for ``key`` of ``store`` (endpoint None when no member
        has said it serves that partition); None for a store not tracked here or a
        global table (any member answers).

        A partition served here is answered from this member's own tables and registry;
        another from the other members' latest records, never from this member's own
        record (it may be stale: left by an earlier run on the same endpoint that was
        killed, or not rewritten yet after a revocation).

        Raises:
            OwnershipNotReadyError: (a ``RuntimeError``) :meth:`start` has not finished
                (the members' records are not read yet), or the partition count of a
                store's topic is not known yet; the state server answers 503.
            TypeError: the key cannot be turned into bytes.
        """
        entry = self._tables.get(store)
        if entry is not None:
            table, serializer = entry
            if table.is_global:
                return None
            partition = table.partition_of(key, serializer)
            if partition in table.partitions:
                return partition, self.endpoint
        else:
            tracked = self._stores.get(store)
            if tracked is None:
                return None
            topic, key_serializer = tracked
            n = self._counts.get(topic)
            if n is None:
                raise OwnershipNotReadyError(
                    f"GroupMembership {self.endpoint!r}: store {store!r}: the partitions of "
                    f"{topic!r} are not known yet (the membership has not started, or is "
                    "still asking the broker): retry later"
                )
            partition = _key_partition(f"GroupMembership: store {store!r}", key, key_serializer, n)
            if partition in self._store_partitions(store):
                return partition, self.endpoint
        if not self._started:
            raise OwnershipNotReadyError(
                f"GroupMembership {self.endpoint!r}: store {store!r}: the members' records "
                "are not read yet (the membership has not started): retry later"
            )
        best: tuple[float, str] | None = None
        for endpoint, record in self.members().items():
            if endpoint == self.endpoint:
                # This member's partitions are known here (above); its own record may be
                # stale (an earlier run on this endpoint, a revocation not published yet).
                continue
            info = (record.get("tables") or {}).get(store) if isinstance(record, dict) else None
            if info and partition in info.get("partitions", ()):
                at = float(record.get("at", 0))
                if best is None or at > best[0]:
                    best = (at, endpoint)
        return partition, None if best is None else best[1]

    async def stop(self) -> None:
        """Publish this member's tombstone, then stop the producer (unless shared: the
        application's stays open) and the reader.

        Bounded during a broker outage: a record still being published is given up (the
        tombstone supersedes it), and the tombstone gets the producer settings'
        ``close_timeout`` (then a warning; the others learn the new owners from their
        records, as for a member that crashed), not ``request_timeout_ms`` each."""
        producer, self._producer = self._producer, None
        if self._registry is not None:
            self._registry.remove_listener(self._on_registered)
        for task in list(self._counting):
            task.cancel()
        publishing = self._publishing
        if publishing is not None and not publishing.done():
            publishing.cancel()  # the tombstone supersedes it
            await asyncio.wait({publishing})
        if producer is not None:
            tombstone = producer.send_and_wait(self.topic, None, key=self.endpoint.encode())
            try:
                await within(tombstone, self._producer_settings.close_timeout)
            except Exception as exc:
                log.warning("membership %s: cannot publish its tombstone: %r", self.endpoint, exc)
            if not self._shared:
                await close_producer(producer, self._producer_settings.close_timeout, repr(self))
        if self._members is not None:
            await self._members.stop()

    def __repr__(self) -> str:
        return f"<GroupMembership {self.endpoint!r} on {self.topic!r}>"
