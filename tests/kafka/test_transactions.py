"""Kafka transactions with aiokafka's producer, through ``connectors.kafka._compat_txn``.

The embedded broker refuses aiokafka's InitProducerId v0 (the need: the first test);
with InitProducerId v4 (``enable_init_producer_id_v4``) an aiokafka transactional
producer initialises, writes, adds consumer offsets to the transaction, commits and
aborts; offsets commit with the transaction and are discarded when it aborts; an open
transaction is invisible to read-committed readers; a second producer with the same
transactional id fences the first. The last test pins the embedded broker's defect
that blocks an exactly-once proof here: its Fetch responses never list aborted
transactions, so read-committed readers deliver aborted records (see
``connectors/kafka/TRANSACTIONS.md``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError, UnknownError
from aiokafka.protocol.transaction import InitProducerIdRequest_v0
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from connectors.kafka._compat_txn import (
    InitProducerIdRequest,
    InitProducerIdRequest_v4,
    InitProducerIdResponse_v4,
    aiokafka_has_init_producer_id_v3,
    enable_init_producer_id_v4,
)
from connectors.kafka.testkit import (
    EmbeddedBroker,
    committed_offsets,
    create_topic,
    unique_group_id,
    unique_topic_name,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

pytestmark = pytest.mark.kafka


async def read_visible(
    bootstrap: str, topic: str, isolation_level: str, expect: int, timeout: float = 10.0
) -> list[bytes]:
    """The values a reader with ``isolation_level`` gets from partition 0 of ``topic``.

    Reads until ``expect`` values arrived, then half a second more (to see extra ones),
    or until ``timeout``.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        isolation_level=isolation_level,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    values: list[bytes] = []
    try:
        consumer.assign([TopicPartition(topic, 0)])
        await consumer.seek_to_beginning()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            values += [r.value for records in batch.values() for r in records]
            if len(values) >= expect:
                deadline = min(deadline, time.monotonic() + 0.5)
    finally:
        await consumer.stop()
    return values


def transactional_producer(bootstrap: str, transactional_id: str) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        transactional_id=transactional_id,
        request_timeout_ms=5000,
    )
    enable_init_producer_id_v4(producer)
    return producer


@pytest.fixture
def own_broker() -> Iterator[EmbeddedBroker]:
    """A fresh embedded broker: these tests pin *its* behaviour, not any cluster's."""
    with EmbeddedBroker() as broker:
        yield broker


@pytest_asyncio.fixture
async def topics(kafka_bootstrap: str) -> AsyncIterator[tuple[str, str]]:
    """An input and an output topic, one partition each."""
    yield (
        await create_topic(kafka_bootstrap, unique_topic_name("txn-in")),
        await create_topic(kafka_bootstrap, unique_topic_name("txn-out")),
    )


# -- the need -------------------------------------------------------------------


async def test_the_embedded_broker_refuses_aiokafkas_init_producer_id_v0(
    own_broker: EmbeddedBroker,
) -> None:
    assert not aiokafka_has_init_producer_id_v3()  # else _compat_txn can go
    producer = AIOKafkaProducer(
        bootstrap_servers=own_broker.bootstrap_servers, transactional_id=unique_group_id("t")
    )
    try:
        with pytest.raises(UnknownError):
            await asyncio.wait_for(producer.start(), 20)
    finally:
        await producer.stop()


# -- the requests, encoded ----------------------------------------------------------


def test_the_request_picks_the_highest_version_both_sides_know() -> None:
    request = InitProducerIdRequest("tid", 60000)
    assert type(request.prepare({22: (0, 5)})) is InitProducerIdRequest_v4
    assert type(request.prepare({22: (0, 0)})) is InitProducerIdRequest_v0
    assert request.prepare({22: (0, 2)}).API_VERSION == 2


def test_v4_is_encoded_as_kafkas_flexible_schema_with_no_producer_id() -> None:
    struct = InitProducerIdRequest("tid", 60000).prepare({22: (0, 4)})
    assert struct.FLEXIBLE_VERSION
    # compact string (length + 1), timeout, producer id -1, epoch -1, no tagged fields
    expected = b"\x04tid" + (60000).to_bytes(4, "big") + b"\xff" * 8 + b"\xff\xff" + b"\x00"
    assert struct.encode() == expected
    assert InitProducerIdRequest(None, 5).prepare({22: (0, 4)}).encode()[:1] == b"\x00"


def test_v4_responses_decode() -> None:
    body = (0).to_bytes(4, "big") + (0).to_bytes(2, "big")
    body += (7).to_bytes(8, "big") + (3).to_bytes(2, "big") + b"\x00"
    response = InitProducerIdResponse_v4.decode(body)
    assert (response.error_code, response.producer_id, response.producer_epoch) == (0, 7, 3)


def test_only_aiokafka_producers_are_accepted() -> None:
    with pytest.raises(TypeError, match="expects an aiokafka AIOKafkaProducer, got str"):
        enable_init_producer_id_v4("producer")  # type: ignore[arg-type]


async def test_a_plain_producer_is_left_alone(kafka_bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    try:
        before = producer._sender._do_init_pid
        enable_init_producer_id_v4(producer)
        assert producer._sender._do_init_pid == before
    finally:
        await producer.stop()


# -- transactions against the broker ---------------------------------------------


async def test_a_committed_transaction_publishes_records_and_offsets_together(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    source_topic, out = topics
    group = unique_group_id()
    producer = transactional_producer(kafka_bootstrap, unique_group_id("t"))
    try:
        await asyncio.wait_for(producer.start(), 20)
        async with producer.transaction():
            await producer.send_and_wait(out, b"one", partition=0)
            await producer.send_and_wait(out, b"two", partition=0)
            await producer.send_offsets_to_transaction(
                {TopicPartition(source_topic, 0): OffsetAndMetadata(5, "")}, group
            )
    finally:
        await producer.stop()
    assert await read_visible(kafka_bootstrap, out, "read_committed", 2) == [b"one", b"two"]
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 5}


async def test_an_open_transaction_is_invisible_to_read_committed_readers(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    source_topic, out = topics
    group = unique_group_id()
    producer = transactional_producer(kafka_bootstrap, unique_group_id("t"))
    try:
        await asyncio.wait_for(producer.start(), 20)
        await producer.begin_transaction()
        await producer.send_and_wait(out, b"pending", partition=0)
        await producer.send_offsets_to_transaction(
            {TopicPartition(source_topic, 0): OffsetAndMetadata(3, "")}, group
        )
        assert await read_visible(kafka_bootstrap, out, "read_uncommitted", 1) == [b"pending"]
        assert await read_visible(kafka_bootstrap, out, "read_committed", 1, timeout=1.5) == []
        assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: None}
        await producer.commit_transaction()
    finally:
        await producer.stop()
    assert await read_visible(kafka_bootstrap, out, "read_committed", 1) == [b"pending"]
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 3}


async def test_an_aborted_transaction_discards_its_offsets(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    source_topic, out = topics
    group = unique_group_id()
    producer = transactional_producer(kafka_bootstrap, unique_group_id("t"))
    tp = TopicPartition(source_topic, 0)
    try:
        await asyncio.wait_for(producer.start(), 20)
        async with producer.transaction():
            await producer.send_and_wait(out, b"kept", partition=0)
            await producer.send_offsets_to_transaction({tp: OffsetAndMetadata(2, "")}, group)
        await producer.begin_transaction()
        await producer.send_and_wait(out, b"dropped", partition=0)
        await producer.send_offsets_to_transaction({tp: OffsetAndMetadata(4, "")}, group)
        await producer.abort_transaction()
        # the producer goes on with its next transaction
        async with producer.transaction():
            await producer.send_and_wait(out, b"next", partition=0)
    finally:
        await producer.stop()
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 2}
    everything = await read_visible(kafka_bootstrap, out, "read_uncommitted", 3)
    assert everything == [b"kept", b"dropped", b"next"]


async def test_a_second_producer_with_the_same_transactional_id_fences_the_first(
    kafka_bootstrap: str, topics: tuple[str, str]
) -> None:
    source_topic, out = topics
    group = unique_group_id()
    transactional_id = unique_group_id("t")
    tp = TopicPartition(source_topic, 0)
    zombie = transactional_producer(kafka_bootstrap, transactional_id)
    successor = transactional_producer(kafka_bootstrap, transactional_id)
    try:
        await asyncio.wait_for(zombie.start(), 20)
        await zombie.begin_transaction()
        await zombie.send_and_wait(out, b"zombie-1", partition=0)
        await zombie.send_offsets_to_transaction({tp: OffsetAndMetadata(7, "")}, group)
        await asyncio.wait_for(successor.start(), 20)
        assert successor._txn_manager.producer_epoch > zombie._txn_manager.producer_epoch
        # The zombie's writes are refused. Kafka answers INVALID_PRODUCER_EPOCH
        # (aiokafka: ProducerFenced); the embedded broker answers PRODUCER_FENCED (90)
        # to the Produce request, which aiokafka 0.14 does not know (UnknownError).
        with pytest.raises(KafkaError):
            await asyncio.wait_for(zombie.send_and_wait(out, b"zombie-2", partition=0), 20)
        async with successor.transaction():
            await successor.send_and_wait(out, b"successor", partition=0)
            await successor.send_offsets_to_transaction({tp: OffsetAndMetadata(1, "")}, group)
    finally:
        await zombie.stop()
        await successor.stop()
    # the zombie's open transaction was aborted: its offsets never committed
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 1}
    everything = await read_visible(kafka_bootstrap, out, "read_uncommitted", 2)
    assert everything == [b"zombie-1", b"successor"]


# -- the embedded broker's defect ---------------------------------------------------


async def test_embedded_broker_defect_read_committed_readers_get_aborted_records(
    own_broker: EmbeddedBroker,
) -> None:
    """Pins Tansu 0.6.0's defect: Fetch responses list no aborted transactions.

    A read-committed reader relies on that list to skip aborted batches (aiokafka and
    librdkafka alike); the broker writes the ABORT marker but leaves the list empty,
    so the aborted record is delivered. Apache Kafka delivers only ``[b"committed"]``.
    When this test fails, the broker got fixed: read-committed exactly-once tests
    become possible here (see TRANSACTIONS.md).
    """
    bootstrap = own_broker.bootstrap_servers
    out = await create_topic(bootstrap, unique_topic_name("txn-out"))
    producer = transactional_producer(bootstrap, unique_group_id("t"))
    try:
        await asyncio.wait_for(producer.start(), 20)
        await producer.begin_transaction()
        await producer.send_and_wait(out, b"aborted", partition=0)
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send_and_wait(out, b"committed", partition=0)
    finally:
        await producer.stop()
    got = await read_visible(bootstrap, out, "read_committed", 2)
    assert got == [b"aborted", b"committed"]
