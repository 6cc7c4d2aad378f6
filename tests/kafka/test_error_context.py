"""Failures reach the user with their context: the stage, the topic/partition/offset or
record, what to check; aiokafka's error kept as ``__cause__`` and its type still catchable.

- a broker outage longer than ``request_timeout_ms`` under a producer (through the
  loopback proxy, with a 1 s timeout so the test is quick);
- a record over ``max_request_size``;
- a producer start that fails although the broker answered (an idempotent producer:
  the embedded broker refuses InitProducerId), told apart from "cannot connect";
- bytes that are not MessagePack, read with ``msgpack_deserializer``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import msgpack
import pytest
import pytest_asyncio
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    NodeNotReadyError,
)

from connectors.kafka import (
    Consumer,
    DeserializationError,
    KafkaProducerError,
    Producer,
    ProducerConnectionError,
    ProducerMessage,
    ProducerRecord,
    ProducerSendError,
    ProducerSettings,
    ProducerStartError,
    RecordTooLargeError,
    Result,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.serde import msgpack_deserializer, msgpack_serializer
from connectors.kafka.testkit import (
    EmbeddedBroker,
    TcpProxy,
    create_topic,
    free_port,
    produce_values,
    proxied_broker,
    read_values,
    unique_topic_name,
)
from reactive import Keep, Materializer, Sink, Source
from reactive.testkit import TestSink, TestSource
from tests.kafka.support import settings

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.kafka


@pytest_asyncio.fixture
async def proxied() -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    async with proxied_broker() as (broker, proxy):
        yield broker, proxy


async def test_an_outage_longer_than_request_timeout_names_the_topic_and_what_to_check(
    materializer: Materializer, proxied: tuple[EmbeddedBroker, TcpProxy]
) -> None:
    broker, proxy = proxied
    topic = await create_topic(broker.bootstrap_servers, unique_topic_name("outage"))
    producer = ProducerSettings(
        broker.bootstrap_servers,
        properties={"request_timeout_ms": 1000, "retry_backoff_ms": 50},
        close_timeout=1.0,
    )
    pub, sub = (
        TestSource.probe()
        .via(Producer.flexi_flow(producer))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(2)
    await pub.expect_request()
    pub.send_next(ProducerMessage.single(ProducerRecord(topic, b"before"), 1))
    result = await sub.expect_next(timeout=10)
    assert isinstance(result, Result) and result.metadata.offset == 0

    proxy.block()  # the broker is gone for longer than request_timeout_ms
    proxy.cut()
    pub.send_next(ProducerMessage.single(ProducerRecord(topic, b"during"), 2))
    error = await sub.expect_error(timeout=15)

    assert isinstance(error, ProducerSendError)
    message = str(error)
    assert message.startswith("[Producer.flexi_flow] sending records to ")
    assert f"topic {topic!r} partition 0" in message
    assert (error.topic, error.partition) == (topic, 0)
    assert broker.bootstrap_servers in message and "request_timeout_ms=1000" in message
    assert error.retriable
    # aiokafka's error is the cause; the wrapper is still a KafkaError.
    assert isinstance(error.__cause__, KafkaError)
    assert type(error.__cause__).__name__ in message
    assert isinstance(error, KafkaError | KafkaProducerError)
    if isinstance(error.__cause__, NodeNotReadyError):
        assert "not ready" in message
    await pub.expect_cancellation()


async def test_an_outage_under_the_committable_sink_names_the_topic(
    materializer: Materializer, proxied: tuple[EmbeddedBroker, TcpProxy]
) -> None:
    # consume -> produce -> commit ends in this sink: its send failures carry context too.
    broker, proxy = proxied
    topic = await create_topic(broker.bootstrap_servers, unique_topic_name("outage"))
    producer = ProducerSettings(
        broker.bootstrap_servers,
        properties={"request_timeout_ms": 1000, "retry_backoff_ms": 50},
        close_timeout=1.0,
    )
    pub, done = (
        TestSource.probe().to_mat(Producer.committable_sink(producer), Keep.both).run(materializer)
    )
    await pub.expect_request()
    pub.send_next(ProducerMessage.single(ProducerRecord(topic, b"before"), None))
    # Written (so the producer knows the topic's partitions) before the outage.
    assert await read_values(broker.bootstrap_servers, topic, 1) == [b"before"]
    proxy.block()
    proxy.cut()
    pub.send_next(ProducerMessage.single(ProducerRecord(topic, b"during"), None))
    with pytest.raises(ProducerSendError) as info:
        await asyncio.wait_for(done, 15)
    message = str(info.value)
    assert message.startswith("[Producer.committable_sink] sending records to ")
    assert f"topic {topic!r} partition 0" in message and "request_timeout_ms=1000" in message
    assert isinstance(info.value.__cause__, KafkaError)


async def test_a_record_over_max_request_size_names_topic_partition_and_limit(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    producer = ProducerSettings(kafka_bootstrap, properties={"max_request_size": 200})
    records = [
        ProducerRecord(kafka_topic, b"small", key=b"a"),
        ProducerRecord(kafka_topic, b"x" * 1000, key=b"the-big-one"),
    ]
    done = Source.from_iterable(records).run_with(Producer.plain_sink(producer), materializer)
    with pytest.raises(MessageSizeTooLargeError) as info:  # aiokafka's type still catches it
        await asyncio.wait_for(done, 20)
    error = info.value
    assert isinstance(error, RecordTooLargeError) and isinstance(error, ProducerSendError)
    message = str(error)
    assert message.startswith("[Producer.plain_sink] a record for topic ")
    assert f"topic {kafka_topic!r} partition 0" in message
    assert "b'the-big-one'" in message  # the record's key
    assert "max_request_size=200" in message and "message.max.bytes" in message
    assert (error.topic, error.partition) == (kafka_topic, 0)


async def test_a_start_the_broker_refuses_is_not_reported_as_cannot_connect(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    # The embedded broker answers InitProducerId with UnknownError: an honest refusal.
    producer = ProducerSettings(
        kafka_bootstrap, properties={"enable_idempotence": True}, close_timeout=1.0
    )
    done = Source.single(ProducerRecord(kafka_topic, b"v")).run_with(
        Producer.plain_sink(producer), materializer
    )
    with pytest.raises(ProducerStartError) as info:
        await asyncio.wait_for(done, 20)
    error = info.value
    message = str(error)
    assert "cannot connect" not in message
    assert not isinstance(error, KafkaConnectionError | ConnectionError)
    assert message.startswith(f"[Producer.plain_sink] the Kafka broker at {kafka_bootstrap}")
    assert "InitProducerId" in message and "enable_idempotence" in message
    assert isinstance(error.__cause__, KafkaError)
    assert type(error.__cause__).__name__ in message
    assert isinstance(error, KafkaError)


async def test_a_connection_failure_at_start_is_still_a_connection_error(
    materializer: Materializer,
) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens
    producer = ProducerSettings(address, connect_timeout=2.0, close_timeout=0.5)
    done = Source.single(ProducerRecord("t", b"v")).run_with(
        Producer.plain_sink(producer), materializer
    )
    with pytest.raises(ProducerConnectionError) as info:
        await asyncio.wait_for(done, 15)
    error = info.value
    assert isinstance(error, KafkaConnectionError) and isinstance(error, ConnectionError)
    assert "cannot connect to Kafka at " + address in str(error)
    assert "check bootstrap_servers" in str(error)
    assert error.__cause__ is not None


@pytest.mark.parametrize(
    ("data", "what", "cause"),
    [
        (b"\xc1", "malformed", msgpack.FormatError),
        (b"hello world", "10 bytes follow the first MessagePack object", msgpack.ExtraData),
        (b"\x92\x01", "truncated", ValueError),
        (b"", "empty", ValueError),
        (b"\x91" * 2000, "nested deeper", msgpack.StackError),
    ],
)
def test_msgpack_deserializer_says_what_is_wrong(
    data: bytes, what: str, cause: type[BaseException]
) -> None:
    with pytest.raises(ValueError) as info:
        msgpack_deserializer(data)
    message = str(info.value)
    assert message.startswith(f"msgpack_deserializer: {len(data)} bytes are not one MessagePack")
    assert what in message and repr(data[:16]) in message
    assert "msgpack_serializer" in message
    assert isinstance(info.value.__cause__, cause)
    # Valid data still decodes.
    assert msgpack_deserializer(msgpack_serializer({"a": [1, 2]})) == {"a": [1, 2]}


async def test_msgpack_garbage_on_a_topic_names_the_record_and_the_problem(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    await produce_values(
        kafka_bootstrap, kafka_topic, [msgpack_serializer([1]), b"\xc1garbage"], partition=0
    )
    source = Consumer.plain_source(
        settings(kafka_bootstrap).with_value_deserializer(msgpack_deserializer),
        Subscriptions.assignment(TopicPartition(kafka_topic, 0)),
    )
    done = source.run_with(Sink.seq(), materializer)
    with pytest.raises(DeserializationError) as info:
        await asyncio.wait_for(done, 20)
    message = str(info.value)
    assert f"topic {kafka_topic!r} partition 0 offset 1" in message
    assert "not one MessagePack object: malformed" in message
    assert not message.rstrip().endswith("FormatError:")
    assert isinstance(info.value.__cause__.__cause__, msgpack.FormatError)
