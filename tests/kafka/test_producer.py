"""Producer.plain_sink / flexi_flow / committable_sink against a real Kafka-protocol broker."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.kafka import (
    CommittableOffset,
    CommitterSettings,
    MultiResult,
    PassThroughResult,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSerializationError,
    ProducerSettings,
    Result,
    TopicPartition,
)
from connectors.kafka.serde import json_serializer, str_serializer
from connectors.kafka.testkit import (
    committed_offsets,
    free_port,
    read_records,
    read_values,
    unique_group_id,
)
from reactive import Keep, Materializer, Sink, Source
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Mapping

pytestmark = pytest.mark.kafka


def settings(bootstrap: str, **kwargs: object) -> ProducerSettings:
    return ProducerSettings(bootstrap, value_serializer=str_serializer, **kwargs)  # type: ignore[arg-type]


async def test_plain_sink_writes_records_in_order(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    values = [f"v{i}" for i in range(100)]
    done = (
        Source.from_iterable(values)
        .map(lambda v: ProducerRecord(kafka_topic, v))
        .run_with(Producer.plain_sink(settings(kafka_bootstrap)), materializer)
    )
    await asyncio.wait_for(done, 20)
    assert await read_values(kafka_bootstrap, kafka_topic, 100) == [v.encode() for v in values]


async def test_plain_sink_keys_headers_partition(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    s = ProducerSettings(kafka_bootstrap, key_serializer=str_serializer)
    record = ProducerRecord(topic, b"payload", key="k", partition=1, headers=[("h", b"x")])
    await Source.single(record).run_with(Producer.plain_sink(s), materializer)
    [got] = await read_records(kafka_bootstrap, topic, 1)
    assert (got.partition, got.key, got.value) == (1, b"k", b"payload")
    assert list(got.headers) == [("h", b"x")]


async def test_flexi_flow_results_in_order_with_pass_through(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    envelopes = [ProducerMessage.single(ProducerRecord(kafka_topic, f"v{i}"), i) for i in range(50)]
    results = (
        await Source.from_iterable(envelopes)
        .via(Producer.flexi_flow(settings(kafka_bootstrap)))
        .run_with(Sink.seq(), materializer)
    )
    assert [r.pass_through for r in results] == list(range(50))
    assert all(isinstance(r, Result) for r in results)
    assert [r.metadata.offset for r in results] == list(range(50))
    assert {(r.metadata.topic, r.metadata.partition) for r in results} == {(kafka_topic, 0)}
    assert results[3].record.value == "v3"


async def test_flexi_flow_multi_and_pass_through_envelopes(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    envelopes = [
        ProducerMessage.single(ProducerRecord(kafka_topic, "a"), "first"),
        ProducerMessage.multi([ProducerRecord(kafka_topic, x) for x in "bcd"], "multi"),
        ProducerMessage.pass_through("only"),
        ProducerMessage.multi([], "empty"),
        ProducerMessage.single(ProducerRecord(kafka_topic, "e"), "last"),
    ]
    results = (
        await Source.from_iterable(envelopes)
        .via(Producer.flexi_flow(settings(kafka_bootstrap)))
        .run_with(Sink.seq(), materializer)
    )
    assert [r.pass_through for r in results] == ["first", "multi", "only", "empty", "last"]
    multi = results[1]
    assert isinstance(multi, MultiResult)
    assert [p.metadata.offset for p in multi.parts] == [1, 2, 3]
    assert [p.record.value for p in multi.parts] == ["b", "c", "d"]
    assert isinstance(results[2], PassThroughResult)
    assert isinstance(results[3], MultiResult) and results[3].parts == ()
    assert results[4].metadata.offset == 4
    assert await read_values(kafka_bootstrap, kafka_topic, 5) == [b"a", b"b", b"c", b"d", b"e"]


async def test_in_flight_bounded_by_parallelism(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    serialized = 0
    emitted = 0
    peak = 0

    def counting(value: str) -> bytes:
        nonlocal serialized, peak
        serialized += 1
        peak = max(peak, serialized - emitted)
        return value.encode()

    def count_result(result: Result) -> Result:
        nonlocal emitted
        emitted += 1
        return result

    s = ProducerSettings(kafka_bootstrap, value_serializer=counting, parallelism=2)
    envelopes = [ProducerMessage.single(ProducerRecord(kafka_topic, f"v{i}"), i) for i in range(20)]
    probe = (
        Source.from_iterable(envelopes)
        .via(Producer.flexi_flow(s))
        .map(count_result)
        .run_with(TestSink.probe(), materializer)
    )
    # No demand downstream: exactly `parallelism` elements are taken and sent.
    await asyncio.sleep(0.3)
    assert serialized == 2
    probe.request(1)
    assert (await probe.expect_next_n(1))[0].pass_through == 0
    await asyncio.sleep(0.2)
    assert serialized == 3
    probe.request(100)
    rest = await probe.expect_next_n(19)
    assert [r.pass_through for r in rest] == list(range(1, 20))
    await probe.expect_complete()
    assert peak == 2  # sends were pipelined, and never more than 2 in flight


async def test_serialization_failure_names_the_topic(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    s = ProducerSettings(kafka_bootstrap, value_serializer=json_serializer)
    done = (
        Source.from_iterable([{"ok": 1}, object()])
        .map(lambda v: ProducerRecord(kafka_topic, v))
        .run_with(Producer.plain_sink(s), materializer)
    )
    with pytest.raises(ProducerSerializationError) as info:
        await asyncio.wait_for(done, 20)
    assert kafka_topic in str(info.value)
    assert "value" in str(info.value)


async def test_bytes_needed_without_serializer(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    done = Source.single(ProducerRecord(kafka_topic, "text")).run_with(
        Producer.plain_sink(ProducerSettings(kafka_bootstrap)), materializer
    )
    with pytest.raises(ProducerSerializationError, match=kafka_topic):
        await asyncio.wait_for(done, 20)


async def test_upstream_failure_fails_flow_after_closing(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    pub, sub = (
        TestSource.probe()
        .via(Producer.flexi_flow(settings(kafka_bootstrap)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(5)
    await pub.expect_request()
    pub.send_next(ProducerMessage.single(ProducerRecord(kafka_topic, "x"), 1))
    assert (await sub.expect_next_n(1))[0].pass_through == 1
    pub.send_error(RuntimeError("boom"))
    assert str(await sub.expect_error()) == "boom"


async def test_downstream_cancel_closes_producer(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    pub, sub = (
        TestSource.probe()
        .via(Producer.flexi_flow(settings(kafka_bootstrap)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    await pub.expect_request()
    pub.send_next(ProducerMessage.single(ProducerRecord(kafka_topic, "x"), 1))
    await sub.expect_next_n(1)
    sub.cancel()
    await pub.expect_cancellation()
    # the materializer fixture checks that the producer's tasks all ended


async def test_unreachable_broker_fails_with_clear_error(materializer: Materializer) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens: connection refused
    s = settings(address, connect_timeout=2.0)
    done = Source.single(ProducerRecord("t", "v")).run_with(Producer.plain_sink(s), materializer)
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(done, 15)
    message = str(info.value)
    assert "cannot connect to Kafka" in message and address in message


async def test_silent_broker_fails_within_connect_timeout(materializer: Materializer) -> None:
    # A listener that accepts and never answers: aiokafka alone would wait 40 s.
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    try:
        address = f"127.0.0.1:{server.getsockname()[1]}"
        s = settings(address, connect_timeout=0.5, close_timeout=0.5)
        done = Source.single(ProducerRecord("t", "v")).run_with(
            Producer.plain_sink(s), materializer
        )
        with pytest.raises(Exception) as info:
            await asyncio.wait_for(done, 10)
        assert "within 0.5 s" in str(info.value)
    finally:
        server.close()


async def test_credentials_never_shown(materializer: Materializer) -> None:
    context = ssl.create_default_context()
    s = settings(
        f"127.0.0.1:{free_port()}",
        connect_timeout=2.0,
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_plain_username="alice",
        sasl_plain_password="hunter2-secret",
    ).with_ssl_context(context)
    assert "hunter2-secret" not in repr(s) and "hunter2-secret" not in str(s)
    assert repr(context) not in repr(s)
    assert "<redacted>" in repr(s)
    done = Source.single(ProducerRecord("t", "v")).run_with(Producer.plain_sink(s), materializer)
    with pytest.raises(Exception) as info:
        await asyncio.wait_for(done, 15)
    shown = f"{info.value!s} {info.value!r} {info.value.__cause__!r}"
    assert "hunter2-secret" not in shown
    assert "cannot connect to Kafka" in shown


def test_settings_type_checked() -> None:
    with pytest.raises(TypeError, match="ProducerSettings"):
        Producer.plain_sink("localhost:9092")  # type: ignore[arg-type]


class ConsumerCommitter:
    """A KafkaCommitterRef over a real aiokafka consumer (as the consumer source builds it)."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self.consumer = consumer
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        await self.consumer.commit(dict(offsets))


async def test_committable_sink_produces_then_commits(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory
) -> None:
    source_topic = await kafka_topic_factory(partitions=2)
    target = await kafka_topic_factory()
    group = unique_group_id()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(source_topic, 0), TopicPartition(source_topic, 1)])
        committer = ConsumerCommitter(consumer)
        envelopes = [
            ProducerMessage.single(
                ProducerRecord(target, f"v{i}"),
                CommittableOffset(group, source_topic, i % 2, i // 2, committer),
            )
            for i in range(10)
        ] + [ProducerMessage.pass_through(CommittableOffset(group, source_topic, 0, 7, committer))]
        done = Source.from_iterable(envelopes).run_with(
            Producer.committable_sink(
                settings(kafka_bootstrap), CommitterSettings(max_batch=4, max_interval=60.0)
            ),
            materializer,
        )
        await asyncio.wait_for(done, 20)
    finally:
        await consumer.stop()
    assert await read_values(kafka_bootstrap, target, 10) == [f"v{i}".encode() for i in range(10)]
    assert await committed_offsets(kafka_bootstrap, group, source_topic, [0, 1]) == {0: 8, 1: 5}
    # batched by count: 11 offsets in batches of 4, 4 and 3 (max_interval never fires), each
    # commit holding the next offset to read per partition after its batch
    tp0, tp1 = TopicPartition(source_topic, 0), TopicPartition(source_topic, 1)
    assert committer.commits == [{tp0: 2, tp1: 2}, {tp0: 4, tp1: 4}, {tp0: 8, tp1: 5}]


async def test_flexi_flow_partitions_offsets_and_timestamps_across_many_batches(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory
) -> None:
    # The sender fills one aiokafka batch per partition; small batches make it open
    # many, and keys spread the records over the partitions as aiokafka's send() would.
    from aiokafka.partitioner import DefaultPartitioner

    topic = await kafka_topic_factory(partitions=3)
    n = 300
    keys = [f"key-{i % 17}".encode() for i in range(n)]
    records = [
        ProducerRecord(topic, f"v{i}", key=keys[i], timestamp_ms=1_700_000_000_000 + i)
        for i in range(n)
    ]
    s = settings(kafka_bootstrap, max_batch_size=1000, linger_ms=1)
    results = (
        await Source.from_iterable(records)
        .via(Producer.flexi_flow(s))
        .run_with(Sink.seq(), materializer)
    )
    partitioner = DefaultPartitioner()
    expected = [partitioner(k, [0, 1, 2], [0, 1, 2]) for k in keys]
    assert [r.metadata.partition for r in results] == expected
    assert len(set(expected)) > 1
    for p in range(3):
        offsets = [r.metadata.offset for r in results if r.metadata.partition == p]
        assert offsets == list(range(len(offsets)))
    assert [r.metadata.timestamp for r in results] == [r.timestamp_ms for r in records]
    got = await read_records(kafka_bootstrap, topic, n)
    for p in range(3):
        values = [g.value for g in got if g.partition == p]
        assert values == [f"v{i}".encode() for i in range(n) if expected[i] == p]
