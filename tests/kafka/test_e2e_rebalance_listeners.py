"""End to end: one stream with a co-partitioned table *and* a changelogged store needs
both as rebalance listeners (the README gives each as "the stream's rebalance listener").

``with_rebalance_listener`` kept only the last listener it was given: chaining
``.with_rebalance_listener(table).with_rebalance_listener(store.rebalance_listener(...))``
silently dropped the table's, so the table was never assigned a partition and every
order missed its customer (or the stream failed reading a closed table). Now every
listener given (in one call or in several) is called, in the order given.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    DrainingControl,
    ProducerSettings,
    Subscriptions,
    Tables,
)
from connectors.kafka.serde import str_deserializer
from connectors.kafka.state import changelogged
from connectors.kafka.subscriptions import TopicsSubscription
from reactive.state import Stores
from tests.kafka.support import eventually, settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka

COMMITS = CommitterSettings(max_interval=0.05)


def _settings(bootstrap: str, group: str) -> ConsumerSettings:
    return settings(bootstrap, group).with_key_deserializer(str_deserializer)


async def _produce(bootstrap: str, topic: str, pairs: list[tuple[str, str]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in pairs:
            await producer.send_and_wait(topic, value.encode(), key=key.encode())
    finally:
        await producer.stop()


async def _run_service(
    bootstrap: str,
    kafka_topic_factory: Any,
    group: str,
    materializer: Materializer,
    subscribe: Any,
) -> None:
    """Orders joined with their customer (co-partitioned table), counted per customer
    tier in a changelogged store, offsets committed after the changelog acked."""
    customers = await kafka_topic_factory(partitions=2, prefix="customers")
    orders = await kafka_topic_factory(partitions=2, prefix="orders")
    tiers = {f"c{i}": "gold" if i % 2 else "silver" for i in range(10)}
    await _produce(bootstrap, customers, list(tiers.items()))
    await _produce(bootstrap, orders, [(f"c{i}", f"order {i}") for i in range(10)])

    s = _settings(bootstrap, group)
    table = Tables.co_partitioned(s, customers, materializer)
    store = changelogged(Stores.in_memory("tier-counts"), ProducerSettings(bootstrap), s)
    subscription = subscribe(Subscriptions.topics(orders), table, store.rebalance_listener(COMMITS))
    views: dict[int, Any] = {}

    def per_partition(pair: Any) -> Any:
        tp, records = pair
        return (
            records.as_source_with_context(lambda msg: msg.committable_offset)
            .map(lambda msg: msg.record)
            .join_table(table, key=lambda r: r.key, combine=lambda r, tier: (r.key, tier))
            .aggregate_by_key(
                store.for_partition(tp), lambda o: o[0], lambda: 0, lambda n, _o: n + 1
            )
            .map_materialized_value(lambda view: views.__setitem__(tp.partition, view))
            .as_source()
        )

    control = (
        Consumer.committable_partitioned_source(s, subscription)
        .flat_map_merge(4, per_partition)
        .to_mat(Committer.sink_with_offset_context(COMMITS), DrainingControl)
        .run(materializer)
    )
    try:

        def counted() -> int:
            if control.stream_completion.done():  # type: ignore[attr-defined]
                return -1
            return sum(n for view in list(views.values()) for _, n in view.items())

        await eventually(lambda: counted() in (-1, 10), timeout=8.0)
        assert counted() == 10, "the orders were not all joined with their customer"
        assert table.partitions == {0, 1}
    finally:
        await asyncio.wait_for(control.drain_and_shutdown(), 10)
        await store.wait_closed()
        await table.stop()


async def test_two_chained_listeners_are_both_called(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str, materializer: Materializer
) -> None:
    await _run_service(
        kafka_bootstrap,
        kafka_topic_factory,
        kafka_group_id,
        materializer,
        lambda sub, a, b: sub.with_rebalance_listener(a).with_rebalance_listener(b),
    )


async def test_several_listeners_in_one_call(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str, materializer: Materializer
) -> None:
    await _run_service(
        kafka_bootstrap,
        kafka_topic_factory,
        kafka_group_id,
        materializer,
        lambda sub, a, b: sub.with_rebalance_listener(a, b),
    )


class _Recorder:
    def __init__(self, name: str, log: list[str], fail: bool = False) -> None:
        self.name, self.log, self.fail = name, log, fail

    async def on_partitions_assigned(self, tps: Any) -> None:
        await asyncio.sleep(0)
        self.log.append(f"{self.name} assigned")
        if self.fail:
            raise RuntimeError(f"{self.name} refuses")

    def on_partitions_revoked(self, tps: Any) -> None:
        self.log.append(f"{self.name} revoked")


async def test_listeners_run_in_order_and_the_first_failure_stops_the_rest() -> None:
    log: list[str] = []
    a, b, c = _Recorder("a", log), _Recorder("b", log, fail=True), _Recorder("c", log)
    sub = Subscriptions.topics("t").with_rebalance_listener(a).with_rebalance_listener(b, c)
    listener = sub.rebalance_listener
    assert listener is not None
    await listener.on_partitions_revoked(frozenset())
    with pytest.raises(RuntimeError, match="b refuses"):
        await listener.on_partitions_assigned(frozenset())
    assert log == ["a revoked", "b revoked", "c revoked", "a assigned", "b assigned"]
    # None removes them all; a listener without the two methods is refused.
    cleared = sub.with_rebalance_listener(None)
    assert isinstance(cleared, TopicsSubscription)
    assert cleared.rebalance_listener is None
    with pytest.raises(TypeError, match="on_partitions_assigned"):
        sub.with_rebalance_listener(a, object())  # type: ignore[arg-type]
    # One listener stays itself (no wrapper), and is not added twice.
    assert Subscriptions.topics("t").with_rebalance_listener(a).rebalance_listener is a
    twice = Subscriptions.topics("t").with_rebalance_listener(a).with_rebalance_listener(a, c)
    log.clear()
    assert twice.rebalance_listener is not None
    await twice.rebalance_listener.on_partitions_revoked(frozenset())
    assert log == ["a revoked", "c revoked"]
