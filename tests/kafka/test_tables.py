"""KTables on the embedded broker: the latest value per key of a topic, tombstones delete,
kept current while running; a global table reads every partition without a group and is
ready once caught up; a partitioned table serves the partitions its group assigns; the
stream-table joins against a live table.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import ConsumerSettings
from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import KTable, TableNotReadyError, Tables
from reactive import Materializer, Sink, Source
from reactive.state import StoreClosedError, Stores, registry_of
from tests.kafka.support import co_partitioned_join, eventually, settings


def table_settings(bootstrap: str, group: str | None = None) -> ConsumerSettings:
    return settings(bootstrap, group).with_key_deserializer(str_deserializer)


async def produce(bootstrap: str, topic: str, records: list[tuple[str, str | None, int]]) -> None:
    """``(key, value or None for a tombstone, partition)`` in order, acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        for key, value, partition in records:
            await producer.send_and_wait(
                topic,
                None if value is None else value.encode(),
                key=key.encode(),
                partition=partition,
            )
    finally:
        await producer.stop()


async def test_global_table_latest_value_per_key_tombstones_delete_and_ready(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=3)
    await produce(
        kafka_bootstrap,
        topic,
        [("a", "1", 0), ("b", "1", 1), ("a", "2", 0), ("c", "1", 2), ("b", None, 1)]
        + [(f"k{i}", str(i), i % 3) for i in range(30)],
    )
    table: KTable = Tables.global_table(table_settings(kafka_bootstrap), topic).run(materializer)
    await table.ready(timeout=15)
    # ready() means every record written before the start is in: nothing to wait for.
    assert table.get("a") == "2" and "b" not in table and table.get("c") == "1"
    assert table.get("b", "gone") == "gone"
    assert len(table) == 32 and table.partitions == {0, 1, 2}
    # Across the three partitions' stores, in serialized-key order.
    assert list(table.range("k10", "k13")) == [("k10", "10"), ("k11", "11"), ("k12", "12")]
    metrics = table.metrics()
    assert metrics["records"] == 35 and metrics["deletes"] == 1 and metrics["ready"]

    # Kept current while running: a later update and a later tombstone.
    await produce(kafka_bootstrap, topic, [("a", "3", 0), ("c", None, 2), ("d", "new", 1)])
    await eventually(lambda: table.get("d") == "new")
    await eventually(lambda: table.get("a") == "3" and "c" not in table)

    await table.stop()
    assert not table.is_open
    with pytest.raises(StoreClosedError, match="closed"):
        table.get("a")


async def test_global_table_of_an_empty_topic_is_ready_at_once(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    table = Tables.global_table(table_settings(kafka_bootstrap), topic).run(materializer)
    await table.ready(timeout=15)
    assert len(table) == 0 and table.is_ready
    await table.stop()


async def test_global_table_of_a_missing_topic_fails_ready_with_the_reason(
    kafka_bootstrap: str, materializer: Materializer
) -> None:
    table = Tables.global_table(table_settings(kafka_bootstrap), "no-such-topic-x").run(
        materializer
    )
    with pytest.raises(TableNotReadyError, match="stopped before it caught up") as info:
        await table.ready(timeout=15)
    assert "'no-such-topic-x' does not exist" in str(info.value.__cause__)
    with pytest.raises(ValueError, match="does not exist"):
        await table.done


async def test_global_table_persistent_store(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer, tmp_path: Any
) -> None:
    topic = await kafka_topic_factory(partitions=1)
    await produce(kafka_bootstrap, topic, [("m", "v1", 0), ("m", "v2", 0)])
    spec = Stores.persistent("models", tmp_path)
    table = Tables.global_table(table_settings(kafka_bootstrap), topic, spec).run(materializer)
    await table.ready(timeout=15)
    await table.stop()
    with spec.open() as store:
        assert store.get("m") == "v2"
        store.put("stale", "kept from an earlier run")  # e.g. its tombstone compacted away
    # A new run reads the topic from the beginning into an emptied store.
    table = Tables.global_table(table_settings(kafka_bootstrap), topic, spec).run(materializer)
    await table.ready(timeout=15)
    assert list(table.items()) == [("m", "v2")]
    await table.stop()


async def test_stream_table_joins_against_a_live_global_table(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await produce(kafka_bootstrap, topic, [("apple", "3", 0), ("pear", "5", 1)])
    prices = Tables.global_table(table_settings(kafka_bootstrap), topic).run(materializer)
    await prices.ready(timeout=15)
    orders = ["apple", "kiwi", "pear"]
    inner = await (
        Source.from_iterable(orders)
        .join_table(prices, key=lambda o: o, combine=lambda o, p: (o, int(p)))
        .run_with(Sink.seq(), materializer)
    )
    left = await (
        Source.from_iterable(orders)
        .left_join_table(prices, key=lambda o: o, combine=lambda o, p: (o, p))
        .run_with(Sink.seq(), materializer)
    )
    assert inner == [("apple", 3), ("pear", 5)]
    assert left == [("apple", "3"), ("kiwi", None), ("pear", "5")]
    await produce(kafka_bootstrap, topic, [("kiwi", "7", 0), ("apple", None, 0)])
    await eventually(lambda: "kiwi" in prices and "apple" not in prices)
    inner = await (
        Source.from_iterable(orders)
        .join_table(prices, key=lambda o: o, combine=lambda o, p: (o, int(p)))
        .run_with(Sink.seq(), materializer)
    )
    assert inner == [("kiwi", 7), ("pear", 5)]
    await prices.stop()


async def test_partitioned_tables_split_the_partitions_of_a_group(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    topic = await kafka_topic_factory(partitions=4)
    records = [(f"k{p}-{i}", f"v{i}", p) for p in range(4) for i in range(5)]
    await produce(kafka_bootstrap, topic, [*records, ("k0-0", None, 0)])
    s = table_settings(kafka_bootstrap, kafka_group_id)
    one = Tables.table(s, topic).run(materializer)
    await one.ready(timeout=20)
    assert one.partitions == {0, 1, 2, 3} and len(one) == 19 and "k0-0" not in one
    two = Tables.table(s, topic).run(materializer)
    # The group rebalances: each member serves its own partitions, together all of them.
    await eventually(
        lambda: (
            two.partitions
            and one.partitions
            and one.partitions | two.partitions == {0, 1, 2, 3}
            and not one.partitions & two.partitions
        ),
        timeout=20,
    )
    await two.ready(timeout=20)
    await eventually(lambda: len(one) + len(two) == 19, timeout=20)
    for p in two.partitions:
        assert two.get(f"k{p}-1") == "v1" and f"k{p}-1" not in one
    # Both members run in this materializer: its registry has every partition once.
    registry = registry_of(materializer)
    assert registry.partitions(one.name) == [0, 1, 2, 3]
    assert registry.size(one.name) == 19
    await two.stop()
    # Two's stores left the registry; the group gives its partitions back to one.
    await eventually(lambda: one.partitions == {0, 1, 2, 3}, timeout=20)
    await one.ready(timeout=20)
    assert registry.partitions(one.name) == [0, 1, 2, 3]
    await eventually(lambda: registry.size(one.name) == 19 == len(one), timeout=20)
    assert len(registry.views(one.name)) == 4
    await one.stop()
    assert one.name not in registry


def test_bad_arguments_are_refused() -> None:
    s = ConsumerSettings("127.0.0.1:9", None)
    with pytest.raises(
        ValueError, match=r"Tables.table\('t'\): a partitioned table needs a consumer group"
    ):
        Tables.table(s, "t")
    with pytest.raises(TypeError, match="Tables.global_table: expected ConsumerSettings"):
        Tables.global_table("127.0.0.1:9", "t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Tables.global_table: store must be a StoreSpec"):
        Tables.global_table(s, "t", store="x")  # type: ignore[arg-type]


async def test_a_co_partitioned_table_follows_its_streams_assignment(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    customers = await kafka_topic_factory(partitions=2, prefix="customers")
    orders = await kafka_topic_factory(partitions=2, prefix="orders")
    names = {f"c{i}": f"name {i}" for i in range(10)}
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:  # both topics keyed by customer id, placed by the default partitioner
        for c, name in names.items():
            await producer.send_and_wait(customers, name.encode(), key=c.encode())
    finally:
        await producer.stop()

    s = table_settings(kafka_bootstrap, kafka_group_id)
    members = []
    for _ in range(2):
        table = Tables.co_partitioned(s, customers, materializer)
        missed: list[Any] = []
        joined: list[Any] = []
        control = (
            co_partitioned_join(s, orders, table, missed)
            .to(Sink.foreach(joined.append))
            .run(materializer)
        )
        members.append((table, control, joined, missed))
    (ta, _ca, ja, ma), (tb, _cb, jb, mb) = members
    try:
        # Each table serves the partitions its member's stream was given, never more.
        await eventually(
            lambda: ta.partitions | tb.partitions == {0, 1} and not ta.partitions & tb.partitions,
            timeout=30,
        )
        await ta.ready(timeout=10)
        await tb.ready(timeout=10)
        assert len(ta) + len(tb) == 10 and 0 < len(ta) < 10
        producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
        await producer.start()
        try:
            for i, c in enumerate(sorted(names)):
                await producer.send_and_wait(orders, f"order {i}".encode(), key=c.encode())
        finally:
            await producer.stop()
        # Every order met its customer on whichever member got it: co-partitioned.
        await eventually(lambda: len(ja) + len(jb) == 10, timeout=20)
        assert ma == [] and mb == []
        assert sorted(ja + jb) == sorted(
            (f"order {i}", names[c]) for i, c in enumerate(sorted(names))
        )
        assert ja and jb  # both members took part
    finally:
        for table, control, _, _ in members:
            await control.shutdown()
            await table.stop()
    assert not ta.is_open and ta.partitions == frozenset()
