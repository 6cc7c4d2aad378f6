"""How ``Transactional.sink`` ends a transaction when the stream fails: it never leaves
one open (read-committed readers of its partitions would stall until
``transaction.timeout.ms``), a commit or abort the broker does not answer fails after
``ProducerSettings.max_block``, and the error says only what happened."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.kafka import (
    KafkaTransactionError,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
    Transactional,
    TransactionalMessage,
)
from connectors.kafka._compat_txn import enable_init_producer_id_v4
from connectors.kafka.testkit import (
    EmbeddedBroker,
    TcpProxy,
    create_topic,
    produce_values,
    proxied_broker,
    unique_group_id,
)
from reactive import Keep, Materializer, Source
from tests.kafka.support import settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.kafka


def producer_settings(bootstrap: str, **kwargs: Any) -> ProducerSettings:
    return ProducerSettings(bootstrap, value_serializer=str.encode, close_timeout=1.0, **kwargs)


async def read_committed(bootstrap: str, topic: str, until: bytes, within: float) -> list[bytes]:
    """What a read_committed consumer of partition 0 gets, until ``until`` or ``within`` s."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    got: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0)])
        deadline = asyncio.get_running_loop().time() + within
        while until not in got and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=200)
            got += [r.value for records in batches.values() for r in records if r.value]
    finally:
        await consumer.stop()
    return got


async def test_a_failure_right_after_a_send_batch_started_leaves_no_transaction_open(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    await produce_values(kafka_bootstrap, source_topic, [f"v{i}" for i in range(20)], partition=0)

    def envelope(message: TransactionalMessage[Any]) -> Any:
        if message.record.value == "v15":
            raise RuntimeError("boom at v15")
        record = ProducerRecord(out, message.record.value, partition=0)
        return ProducerMessage.single(record, message.partition_offset)

    control, done = (
        Transactional.source(
            settings(kafka_bootstrap, unique_group_id()),
            Subscriptions.assignment(TopicPartition(source_topic, 0)),
        )
        .map(envelope)
        .to_mat(
            Transactional.sink(producer_settings(kafka_bootstrap), unique_group_id("tid"), 60.0),
            Keep.both,
        )
        .run(materializer)
    )
    with pytest.raises(RuntimeError, match="boom at v15"):
        await asyncio.wait_for(done, 10)
    await asyncio.wait_for(control.shutdown(), 10)

    other = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=unique_group_id())
    enable_init_producer_id_v4(other)
    await other.start()
    try:
        async with other.transaction():
            await other.send(out, b"committed-later", partition=0)
    finally:
        await other.stop()
    # An open transaction of the failed stage would hold every later record back.
    assert b"committed-later" in await read_committed(kafka_bootstrap, out, b"committed-later", 4)


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    async with proxied_broker() as (broker, proxy):
        yield broker, proxy


async def test_a_commit_the_broker_does_not_answer_fails_after_max_block(
    materializer: Materializer, proxied: tuple[EmbeddedBroker, TcpProxy]
) -> None:
    broker, proxy = proxied
    servers = broker.bootstrap_servers
    topic = await create_topic(servers, "txn-max-block", 1)
    tid = unique_group_id("tid")
    queue, done = (
        Source.queue(10)
        .map(lambda v: ProducerMessage.single(ProducerRecord(topic, v, partition=0)))
        .to_mat(Transactional.sink(producer_settings(servers, max_block=1.0), tid, 60.0), Keep.both)
        .run(materializer)
    )
    await queue.offer("a")
    await asyncio.sleep(0.5)  # sent and acknowledged (the commit is due in 60 s)
    proxy.block()
    proxy.cut()
    queue.complete()  # commits now, through a connection that is gone
    with pytest.raises(KafkaTransactionError) as info:
        await asyncio.wait_for(done, 8)
    message = str(info.value)
    assert message.startswith(f"[Transactional.sink] transactional id {tid!r}: committing")
    assert "within 1.0 s (ProducerSettings.max_block" in message
    assert info.value.transactional_id == tid
    assert any("transaction.timeout.ms" in note for note in getattr(info.value, "__notes__", []))


async def test_a_producer_that_never_started_does_not_claim_an_abort(
    materializer: Materializer,
) -> None:
    tid = unique_group_id("tid")
    unreachable = ProducerSettings("127.0.0.1:1", connect_timeout=0.5, close_timeout=0.5)
    done = Source.single("x").run_with(Transactional.sink(unreachable, tid), materializer)
    with pytest.raises(KafkaTransactionError) as info:
        await asyncio.wait_for(done, 8)
    message = str(info.value)
    assert message.startswith(f"[Transactional.sink] transactional id {tid!r}: initialising")
    assert "abort" not in message
    assert "fence" not in message


def test_max_block_is_a_positive_number_of_seconds() -> None:
    assert ProducerSettings("b:9092").max_block == 60.0
    assert ProducerSettings("b:9092").with_max_block(2).max_block == 2
    with pytest.raises(ValueError, match="max_block must be > 0 seconds"):
        ProducerSettings("b:9092", max_block=0)
    with pytest.raises(TypeError, match="max_block is in seconds"):
        ProducerSettings("b:9092", max_block="60")  # type: ignore[arg-type]
