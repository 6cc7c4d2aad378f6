"""A co-partitioned stream-table join on the embedded broker: no stream record of a
partition is processed before that partition of the table is restored, also across a
rebalance (a second member joins, then leaves), and back pressure holds meanwhile.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import Consumer, ConsumerSettings, Subscriptions
from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import CoPartitionedTable, Tables
from reactive import Materializer, Sink
from tests.kafka.support import eventually, settings

PARTITIONS = 4
#: Enough table records that restoring a partition takes a while: before restore-first,
#: the stream's consumer fetched (and the join missed) records during that time.
TABLE_KEYS = 20_000


def _settings(bootstrap: str, group: str) -> ConsumerSettings:
    return settings(bootstrap, group).with_key_deserializer(str_deserializer)


async def _produce(bootstrap: str, topic: str, pairs: list[tuple[str, str]]) -> None:
    """``(key, value)`` records placed by the default partitioner (by key), acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20)
    await producer.start()
    try:
        futures = [await producer.send(topic, v.encode(), key=k.encode()) for k, v in pairs]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


class _Member:
    """One member of the stream's group: a co-partitioned table of the customers and the
    orders stream joined against it."""

    def __init__(
        self, s: ConsumerSettings, orders: str, customers: str, mat: Materializer, slow: bool
    ):
        self.table: CoPartitionedTable = Tables.co_partitioned(s, customers, mat)
        self.joined: list[tuple[str, str, str]] = []
        self.missed: list[Any] = []
        source = Consumer.plain_source(
            s, Subscriptions.topics(orders).with_rebalance_listener(self.table)
        )
        if slow:
            # Records on their way to the join (4 at a time) when the second member's
            # arrival revokes partitions: the second batch goes slowly.
            async def later(r: Any) -> Any:
                if r.value.startswith("second"):
                    await asyncio.sleep(0.02)
                return r

            source = source.map_async(4, later)
        self.control = (
            source.join_table(
                self.table,
                key=lambda r: r.key,
                combine=lambda r, name: (r.key, r.value, name),
                missing=Sink.foreach(self.missed.append),
            )
            .to(Sink.foreach(self.joined.append))
            .run(mat)
        )

    async def stop(self) -> None:
        await self.control.shutdown()
        await self.table.stop()


@pytest.mark.parametrize("slow", [False, True], ids=["fused", "in-flight"])
async def test_every_record_joins_its_restored_table_partition_across_rebalances(
    slow: bool,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    customers = await kafka_topic_factory(partitions=PARTITIONS, prefix="customers")
    orders = await kafka_topic_factory(partitions=PARTITIONS, prefix="orders")
    names = {f"c{i}": f"name {i}" for i in range(TABLE_KEYS)}
    await _produce(kafka_bootstrap, customers, list(names.items()))
    keys = sorted(names)

    def batch(tag: str, n: int) -> list[tuple[str, str]]:
        # Spread over the key space, so every partition has records in every batch.
        return [(keys[(i * 7919) % TABLE_KEYS], f"{tag}-{i}") for i in range(n)]

    expected: dict[str, str] = {}  # order value -> customer key

    async def send(tag: str, n: int) -> None:
        pairs = batch(tag, n)
        expected.update({v: k for k, v in pairs})
        await _produce(kafka_bootstrap, orders, pairs)

    def seen(*members: _Member) -> set[str]:
        # Joined or missed: a miss is reported below, not waited out.
        return {v for m in members for _, v, _ in m.joined} | {
            miss.value for m in members for miss in m.missed
        }

    s = _settings(kafka_bootstrap, kafka_group_id)
    # The stream's records are there before the member starts: its consumer fetches them
    # as soon as the partitions are assigned, while the table partitions still restore.
    await send("first", 400)
    a = _Member(s, orders, customers, materializer, slow)
    b: _Member | None = None
    try:
        await eventually(lambda: len(a.joined) + len(a.missed) >= 400, timeout=30)
        # A second member joins: the group rebalances mid-stream.
        b = _Member(s, orders, customers, materializer, slow)
        await send("second", 400)
        await eventually(lambda: bool(b.table.partitions) and b.table.is_ready, timeout=30)
        await send("third", 400)
        await eventually(lambda: seen(a, b) >= set(expected), timeout=30)
        assert b.joined, "the second member took part"
        # It leaves: its partitions go back to the first member.
        await b.stop()
        await eventually(lambda: a.table.partitions == set(range(PARTITIONS)), timeout=30)
        await send("fourth", 400)
        await eventually(lambda: seen(a, b) >= set(expected), timeout=30)

        # Not one record missed its table value, on either member, at any time.
        missed = [(m.partition, m.offset, m.value) for m in a.missed + b.missed]
        assert missed == [], f"{len(missed)} records found no table value: {missed[:5]}"
        # Each join found the value of its own key (a record re-read after a rebalance
        # is joined again: at-least-once, never a wrong or missing value).
        for m in (a, b):
            for key, value, name in m.joined:
                assert expected[value] == key and name == names[key]
    finally:
        await a.stop()
        if b is not None:
            await b.stop()


class _Gate:
    """A rebalance listener whose ``on_partitions_assigned`` waits to be released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def on_partitions_assigned(self, assigned: frozenset[Any]) -> None:
        self.entered.set()
        await self.release.wait()

    def on_partitions_revoked(self, revoked: frozenset[Any]) -> None:
        pass


async def test_no_record_is_taken_until_the_assignment_listener_returned(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await _produce(kafka_bootstrap, topic, [(f"k{i}", f"v{i}") for i in range(300)])
    gate = _Gate()
    got: list[Any] = []
    control = (
        Consumer.plain_source(
            _settings(kafka_bootstrap, kafka_group_id),
            Subscriptions.topics(topic).with_rebalance_listener(gate),
        )
        .to(Sink.foreach(got.append))
        .run(materializer)
    )
    try:
        await asyncio.wait_for(gate.entered.wait(), 30)
        # The poller goes on polling (the member stays in its group) and takes nothing:
        # the records stay with aiokafka (one fetch per partition), none is buffered.
        polls = control.metrics()["polls"]
        await eventually(lambda: control.metrics()["polls"] >= polls + 5)
        metrics = control.metrics()
        assert got == [] and metrics["records_fetched"] == 0
        assert metrics["buffered_records"] == 0 and metrics["paused_partitions"] == 2
        gate.release.set()
        await eventually(lambda: len(got) == 300, timeout=20)
        assert sorted(r.value for r in got) == sorted(f"v{i}" for i in range(300))
    finally:
        gate.release.set()
        await control.shutdown()
