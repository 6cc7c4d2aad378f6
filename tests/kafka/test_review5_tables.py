"""Review (Kafka Streams user): a table over a topic written in transactions catches up.

Every transaction ends with a commit marker, which takes an offset of the partition but
is no record for a consumer: the high watermark of a topic written transactionally is
one past the marker. A table counted itself caught up once it had applied the record
at high watermark - 1, which never comes: ``ready()`` never returned, and a co-partitioned
table (a stream's rebalance listener) held its stream's partitions forever. Kafka
Streams restores up to the consumer's position, which moves past the markers. The
output of ``Transactional.sink`` / ``flow`` (exactly-once pipelines) is such a topic.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaProducer

from connectors.kafka._compat_txn import enable_init_producer_id_v4
from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import Tables
from connectors.kafka.testkit import unique_group_id
from reactive import Materializer, Sink
from tests.kafka.support import co_partitioned_join, eventually, settings

if TYPE_CHECKING:
    from connectors.kafka import ConsumerSettings


def _settings(bootstrap: str, group: str | None = None) -> ConsumerSettings:
    return settings(bootstrap, group).with_key_deserializer(str_deserializer)


async def _produce_in_transactions(
    bootstrap: str, topic: str, transactions: list[list[tuple[str, str | None]]]
) -> None:
    """Each inner list in one committed transaction (keys placed by the partitioner)."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, transactional_id=unique_group_id("t"), request_timeout_ms=5000
    )
    enable_init_producer_id_v4(producer)
    await producer.start()
    try:
        for pairs in transactions:
            async with producer.transaction():
                for k, v in pairs:
                    await producer.send(topic, None if v is None else v.encode(), key=k.encode())
    finally:
        await producer.stop()


async def test_a_global_table_of_a_transactional_topic_becomes_ready(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    prices = await kafka_topic_factory(partitions=2, prefix="prices")
    await _produce_in_transactions(
        kafka_bootstrap,
        prices,
        [[("apple", "3"), ("pear", "5")], [("plum", "2")], [("plum", None), ("fig", "8")]],
    )
    table = Tables.global_table(_settings(kafka_bootstrap), prices).run(materializer)
    try:
        await table.ready(timeout=10)
        assert dict(table.items()) == {"apple": "3", "pear": "5", "fig": "8"}
        # Transactions written later are followed as before.
        await _produce_in_transactions(kafka_bootstrap, prices, [[("kiwi", "7")]])
        await eventually(lambda: table.get("kiwi") == "7")
    finally:
        await table.stop()


async def test_a_partitioned_table_of_a_transactional_topic_becomes_ready(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str, materializer: Materializer
) -> None:
    prices = await kafka_topic_factory(partitions=2, prefix="prices")
    await _produce_in_transactions(
        kafka_bootstrap, prices, [[(f"k{i}", str(i)) for i in range(10)], [("k0", None)]]
    )
    table = Tables.table(_settings(kafka_bootstrap, kafka_group_id), prices).run(materializer)
    try:
        await table.ready(timeout=20)
        assert table.partitions == {0, 1}
        assert dict(table.items()) == {f"k{i}": str(i) for i in range(1, 10)}
    finally:
        await table.stop()


async def test_a_co_partitioned_transactional_table_lets_its_stream_join(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str, materializer: Materializer
) -> None:
    customers = await kafka_topic_factory(partitions=2, prefix="customers")
    orders = await kafka_topic_factory(partitions=2, prefix="orders")
    names = {f"c{i}": f"name {i}" for i in range(10)}
    await _produce_in_transactions(kafka_bootstrap, customers, [list(names.items())])
    s = _settings(kafka_bootstrap, kafka_group_id)
    table = Tables.co_partitioned(s, customers, materializer)
    joined: list[Any] = []
    missed: list[Any] = []
    control = (
        co_partitioned_join(s, orders, table, missed)
        .to(Sink.foreach(joined.append))
        .run(materializer)
    )
    try:
        await table.ready(timeout=20)
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for c in names:
                await producer.send_and_wait(orders, f"order of {c}".encode(), key=c.encode())
        finally:
            await producer.stop()
        await eventually(lambda: len(joined) + len(missed) == len(names), timeout=20)
        assert missed == []
        assert sorted(joined) == sorted((f"order of {c}", n) for c, n in names.items())
    finally:
        await asyncio.wait_for(control.shutdown(), 10)
        await table.stop()
