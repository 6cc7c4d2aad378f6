"""Which member of a consumer group serves which partition of a table, and at which HTTP
endpoint: the ownership metadata of queryable state (``reactive.state.http``).

Kafka Streams carries each member's ``application.server`` in the group protocol's
user data; aiokafka's group protocol is not open to that, so members tell each other
through a small topic instead (compacted in production; ``cleanup.policy=compact``):

- each member publishes, keyed by its endpoint, a JSON record ``{"endpoint", "at",
  "tables": {store: {"topic", "partitions"}}}`` whenever the partitions of a table it
  :meth:`tracks <GroupMembership.track>` change (assignment, revocation), and a
  tombstone when it stops;
- every member reads the topic as a global table (:func:`Tables.global_table`), so it
  knows every member's latest record.

:meth:`GroupMembership.owner_of` gives ``(partition, endpoint)`` for a key: the
partition from Kafka's default partitioner (``KTable.partition_of``), the endpoint of the
member whose latest record lists that partition (the most recent record wins while a
rebalance moves partitions: a member that died without its tombstone is superseded by
the new owner's record). A global table is answered locally (None).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from .serde import str_deserializer
from .settings import ConsumerSettings, ProducerSettings
from .tables import KTable, Tables

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive import Materializer

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
        self._members: KTable | None = None
        self._producer: AIOKafkaProducer | None = None
        self._publishing: asyncio.Task[Any] | None = None
        self._dirty = False

    async def start(self, materializer: Materializer) -> GroupMembership:
        """Start reading the members' records (until caught up) and the producer."""
        self._members = Tables.global_table(self._consumer_settings, self.topic).run(materializer)
        self._producer = AIOKafkaProducer(**self._producer_settings.to_aiokafka_kwargs())
        await self._producer.start()
        await self._members.ready()
        self._publish_soon()
        return self

    def track(self, table: KTable, key_serializer: Callable[[Any], bytes] | None = None) -> None:
        """Publish the partitions of ``table`` whenever they change, and answer
        :meth:`owner_of` for its store. ``key_serializer`` gives a key's record bytes
        (see ``KTable.partition_of``)."""
        if not isinstance(table, KTable):
            raise TypeError(f"GroupMembership.track: expected a KTable, got {table!r}")
        self._tables[table.name] = (table, key_serializer)
        table.add_listener(lambda _: self._publish_soon())
        self._publish_soon()

    # -- publishing ------------------------------------------------------------------------
    def _record(self) -> dict[str, Any]:
        tables = {
            name: {"topic": t.topic, "partitions": sorted(t.partitions)}
            for name, (t, _) in self._tables.items()
            if not t.is_global and t.is_open
        }
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
        global table (any member answers)."""
        entry = self._tables.get(store)
        if entry is None:
            return None
        table, serializer = entry
        if table.is_global:
            return None
        partition = table.partition_of(key, serializer)
        if partition in table.partitions:
            return partition, self.endpoint
        best: tuple[float, str] | None = None
        for endpoint, record in self.members().items():
            info = (record.get("tables") or {}).get(store) if isinstance(record, dict) else None
            if info and partition in info.get("partitions", ()):
                at = float(record.get("at", 0))
                if best is None or at > best[0]:
                    best = (at, endpoint)
        return partition, None if best is None else best[1]

    async def stop(self) -> None:
        """Publish this member's tombstone, then stop the producer and the reader."""
        producer, self._producer = self._producer, None
        if self._publishing is not None:
            with contextlib.suppress(Exception):
                await self._publishing
        if producer is not None:
            try:
                await producer.send_and_wait(self.topic, None, key=self.endpoint.encode())
            except Exception as exc:
                log.warning("membership %s: cannot publish its tombstone: %r", self.endpoint, exc)
            await producer.stop()
        if self._members is not None:
            await self._members.stop()

    def __repr__(self) -> str:
        return f"<GroupMembership {self.endpoint!r} on {self.topic!r}>"
