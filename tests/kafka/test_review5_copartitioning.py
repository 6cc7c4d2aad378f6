"""Review (Kafka Streams user): a co-partitioned table refuses a stream topic whose
partition count differs from its table topic's, on the embedded broker.

Kafka Streams checks that the topics of a join have the same number of partitions and
refuses to start otherwise ("Topics not co-partitioned"). ``Tables.co_partitioned``
did not check: with a table topic of 4 partitions and a stream topic of 2, one member
restored table partitions 0 and 1 only, and every order whose customer hashed to table
partition 2 or 3 went to ``missing`` (silently, for the service: its customer exists).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import TableNotReadyError, Tables
from reactive import Keep, Materializer, Sink
from tests.kafka.support import co_partitioned_join, eventually, settings

if TYPE_CHECKING:
    from connectors.kafka import ConsumerSettings


def _settings(bootstrap: str, group: str) -> ConsumerSettings:
    return settings(bootstrap, group).with_key_deserializer(str_deserializer)


async def _produce(bootstrap: str, topic: str, pairs: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for k, v in pairs:
            await producer.send_and_wait(topic, v.encode(), key=k.encode())
    finally:
        await producer.stop()


@pytest.mark.parametrize(("table_parts", "stream_parts"), [(4, 2), (2, 3)])
async def test_a_stream_topic_with_another_partition_count_fails_the_stream(
    table_parts: int,
    stream_parts: int,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    customers = await kafka_topic_factory(partitions=table_parts, prefix="customers")
    orders = await kafka_topic_factory(partitions=stream_parts, prefix="orders")
    names = {f"c{i}": f"name {i}" for i in range(20)}
    await _produce(kafka_bootstrap, customers, list(names.items()))
    await _produce(kafka_bootstrap, orders, [(c, f"order of {c}") for c in names])
    s = _settings(kafka_bootstrap, kafka_group_id)
    table = Tables.co_partitioned(s, customers, materializer)
    missed: list[Any] = []
    control, joined = (
        co_partitioned_join(s, orders, table, missed)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    try:
        with pytest.raises(ValueError, match="not co-partitioned") as info:
            await asyncio.wait_for(joined, 30)
        text = str(info.value)
        assert f"{customers!r} has {table_parts} partitions" in text, text
        assert f"{orders!r} has {stream_parts}" in text, text
        assert missed == []  # refused before any record was joined
        with pytest.raises(TableNotReadyError) as not_ready:
            await table.ready(timeout=1)
        assert not_ready.value.__cause__ is info.value
    finally:
        await asyncio.wait_for(control.is_shutdown, 10)  # its consumer closed
        await table.stop()


async def test_equal_partition_counts_join_every_record(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    customers = await kafka_topic_factory(partitions=3, prefix="customers")
    orders = await kafka_topic_factory(partitions=3, prefix="orders")
    names = {f"c{i}": f"name {i}" for i in range(20)}
    await _produce(kafka_bootstrap, customers, list(names.items()))
    s = _settings(kafka_bootstrap, kafka_group_id)
    table = Tables.co_partitioned(s, customers, materializer)
    missed: list[Any] = []
    joined: list[Any] = []
    control = (
        co_partitioned_join(s, orders, table, missed)
        .to(Sink.foreach(joined.append))
        .run(materializer)
    )
    try:
        await table.ready(timeout=20)
        await _produce(kafka_bootstrap, orders, [(c, f"order of {c}") for c in names])
        await eventually(lambda: len(joined) + len(missed) >= len(names), timeout=30)
        assert missed == []
        assert sorted(joined) == sorted((f"order of {c}", n) for c, n in names.items())
    finally:
        await control.shutdown()
        await table.stop()
