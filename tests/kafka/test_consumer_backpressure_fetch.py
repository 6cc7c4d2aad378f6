"""Back pressure must not cost re-fetching (issue 12, item 1).

Every client connection goes through a :class:`TcpProxy` that counts the bytes the
broker sent. Downstream takes records a few at a time (a slow sink, driven by a test
probe so the demand pattern is exact), so the source's buffer is full most of the time.
The bytes received must stay close to the bytes of the records taken: what aiokafka
fetched ahead for a held-back partition is kept until it is emitted, never dropped and
fetched again. (Before the fix, every time the buffer filled up the source paused the
partition, aiokafka dropped the fetch it held for it, and the next resume fetched the
same ~6 MiB again: hundreds of KiB received per record taken.)

Nothing here measures speed: the bounds are on bytes.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import Consumer, Subscriptions, TopicPartition
from connectors.kafka.testkit import EmbeddedBroker, TcpProxy, create_topic, proxied_broker
from reactive import Keep, Materializer, Sink
from reactive.testkit import TestSink
from tests.kafka.support import eventually, settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.kafka

VALUE = b"v" * 1024
#: Records written per partition: ~8 MiB, more than one fetch of the embedded broker (which
#: answers up to ~6 MiB per fetch whatever the per-partition limit asked).
RECORDS = 8_000
#: Records taken per partition, ``STEP`` at a time, with room for ``BUFFER`` in the source.
TAKEN = 2_000
STEP = 50
BUFFER = 100


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    async with proxied_broker() as (broker, proxy):
        yield broker, proxy


async def _produce(bootstrap: str, topic: str, partition: int, n: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = []
        i = 0
        while i < n:
            batch = producer.create_batch()
            while i < n and batch.append(key=None, value=VALUE, timestamp=None) is not None:
                i += 1
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


def _bound(records: int) -> int:
    """Bytes the broker may send for ``records`` records taken: their own bytes (with
    their batch headers, x 1.25), plus what may be prefetched and held for a partition
    (one fetch of at most the whole topic here), plus 1 MiB of protocol traffic."""
    return int(records * len(VALUE) * 1.25) + RECORDS * len(VALUE) + (1 << 20)


async def test_slow_downstream_does_not_refetch(
    proxied: tuple[EmbeddedBroker, TcpProxy], materializer: Materializer
) -> None:
    broker, proxy = proxied
    servers = broker.bootstrap_servers
    topic = await create_topic(servers, "slow-plain", 1)
    await _produce(servers, topic, 0, RECORDS)
    source = Consumer.plain_source(
        settings(servers).with_max_buffered_records(BUFFER).with_value_deserializer(None),
        Subscriptions.assignment(TopicPartition(topic, 0)),
    )
    before = proxy.bytes_from_target
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    try:
        offsets: list[int] = []
        for _ in range(TAKEN // STEP):
            probe.request(STEP)
            offsets += [r.offset for r in await probe.expect_next_n(STEP, timeout=10)]
            # the source refills its buffer before downstream asks again
            await eventually(lambda: control.metrics()["buffered_records"] == BUFFER)
        received = proxy.bytes_from_target - before
        assert offsets == list(range(TAKEN))
        assert received <= _bound(TAKEN), (
            f"{received / 2**20:.1f} MiB received for {TAKEN} records of 1 KiB taken "
            f"({received / TAKEN / 1024:.0f} KiB per record)"
        )
    finally:
        await control.shutdown()
        await control.is_shutdown


async def test_slow_substream_does_not_refetch_its_partition(
    proxied: tuple[EmbeddedBroker, TcpProxy], materializer: Materializer
) -> None:
    """A partitioned source: a substream that does not pull holds back its own partition
    (its records prefetched by aiokafka are kept, not dropped and fetched again)."""
    broker, proxy = proxied
    servers = broker.bootstrap_servers
    topic = await create_topic(servers, "slow-partitioned", 1)
    await _produce(servers, topic, 0, RECORDS)
    source = Consumer.plain_partitioned_source(
        settings(servers).with_max_buffered_records(BUFFER).with_value_deserializer(None),
        Subscriptions.assignment(TopicPartition(topic, 0)),
    )
    before = proxy.bytes_from_target
    control, outer = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    try:
        outer.request(1)
        tp, records = await outer.expect_next(timeout=10)
        assert tp == TopicPartition(topic, 0)
        sub = records.run_with(TestSink.probe(), materializer)
        offsets: list[int] = []
        for _ in range(TAKEN // STEP):
            sub.request(STEP)
            offsets += [r.offset for r in await sub.expect_next_n(STEP, timeout=10)]
            # records wait in the buffer while the substream does not pull
            await eventually(lambda: control.metrics()["buffered_records"] > 0)
        received = proxy.bytes_from_target - before
        assert offsets == list(range(TAKEN))
        assert received <= _bound(TAKEN), (
            f"{received / 2**20:.1f} MiB received for {TAKEN} records of 1 KiB taken "
            f"({received / TAKEN / 1024:.0f} KiB per record)"
        )
    finally:
        await control.shutdown()
        await control.is_shutdown


async def test_held_back_source_stays_in_its_group(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str, materializer: Materializer
) -> None:
    """Holding partitions back takes no record from aiokafka, but the source still polls:
    a downstream that pulls nothing for several ``max_poll_interval_ms`` does not make the
    consumer leave its group (its partition is not revoked, reading goes on after)."""
    await _produce(kafka_bootstrap, kafka_topic, 0, 300)
    revoked: list[frozenset[TopicPartition]] = []

    class Listener:
        def on_partitions_revoked(self, tps: frozenset[TopicPartition]) -> None:
            if tps:  # the first join revokes nothing
                revoked.append(tps)

        def on_partitions_assigned(self, tps: frozenset[TopicPartition]) -> None:
            pass

    subscription = Subscriptions.topics(kafka_topic).with_rebalance_listener(Listener())
    source = Consumer.plain_source(
        settings(kafka_bootstrap, kafka_group_id)
        .with_max_buffered_records(BUFFER)
        .with_value_deserializer(None)
        .with_property("max_poll_interval_ms", 500),
        subscription,
    )
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    try:
        probe.request(10)
        assert [r.offset for r in await probe.expect_next_n(10, timeout=10)] == list(range(10))
        await eventually(lambda: control.metrics()["buffered_records"] == BUFFER)
        await asyncio.sleep(2.0)  # four max_poll_interval_ms without a pull
        assert revoked == []
        assert control.metrics()["assigned_partitions"] == 1
        probe.request(290)
        records = await probe.expect_next_n(290, timeout=10)
        assert [r.offset for r in records] == list(range(10, 300))
        assert revoked == []
    finally:
        await control.shutdown()
        await control.is_shutdown


async def test_slow_downstream_is_refilled_in_chunks(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    """Downstream takes 1 ms per record, so the buffer stays full: the source tops it up
    when a quarter of it is free (or after its idle wait), not after every record taken
    (which cost a poll cycle per record: two ``getmany`` calls and a wake-up)."""
    await _produce(kafka_bootstrap, kafka_topic, 0, 1_000)
    taken = 300
    done = asyncio.Event()
    offsets: list[int] = []

    async def slow(record: Any) -> None:
        await asyncio.sleep(0.001)
        offsets.append(record.offset)
        if len(offsets) == taken:
            done.set()

    source = Consumer.plain_source(
        settings(kafka_bootstrap).with_max_buffered_records(BUFFER).with_value_deserializer(None),
        Subscriptions.assignment(TopicPartition(kafka_topic, 0)),
    )
    control, _ = source.to_mat(Sink.foreach_async(1, slow), Keep.both).run(materializer)
    try:
        await asyncio.wait_for(done.wait(), 30)
        polls = control.metrics()["polls"]
        assert offsets[:taken] == list(range(taken))
        # a refill every BUFFER / 4 records, plus a few idle wake-ups (every 0.2 s)
        assert polls <= taken // 4, f"{polls} polls for {taken} records"
    finally:
        await control.shutdown()
        await control.is_shutdown
