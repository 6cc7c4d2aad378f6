"""A shared producer (``ProducerSettings.with_producer``, Alpakka's ``withProducer``) on
the embedded broker: every producer stage sends through the application's
``AIOKafkaProducer`` and never closes it (not on completion, failure or cancellation);
a stage's completion waits for its own acknowledgements, not for a producer-wide flush;
a transactional producer cannot be shared. Records are read back with librdkafka
(confluent-kafka), another client than the one that wrote them.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import confluent_kafka
import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import (
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    ProducerStartError,
    Transactional,
)
from connectors.kafka.testkit import unique_group_id
from reactive import Keep, Materializer, Sink, Source

pytestmark = pytest.mark.kafka


class Boom(Exception):
    pass


def read_back(bootstrap: str, topic: str, n: int, timeout: float = 15.0) -> list[bytes]:
    """The values of the first ``n`` records of partition 0, read with librdkafka."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_group_id("librdkafka"),
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        consumer.assign(
            [confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)]
        )
        values: list[bytes] = []
        deadline = time.monotonic() + timeout
        while len(values) < n and time.monotonic() < deadline:
            for msg in consumer.consume(n - len(values), 0.5):
                assert msg.error() is None, msg.error()
                values.append(msg.value())
        return values
    finally:
        consumer.close()


async def read_values(bootstrap: str, topic: str, n: int) -> list[bytes]:
    return await asyncio.to_thread(read_back, bootstrap, topic, n)


def still_open(producer: AIOKafkaProducer) -> bool:
    return producer._closed is False and not producer._sender.sender_task.done()


async def test_two_streams_share_one_producer_one_fails_the_other_goes_on(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic_a = await kafka_topic_factory(prefix="shared-a")
    topic_b = await kafka_topic_factory(prefix="shared-b")
    settings = ProducerSettings(kafka_bootstrap)
    async with settings.create_producer() as producer:
        shared = settings.with_producer(producer)
        # Stream B: fed by hand, running while A fails.
        queue, done_b = (
            Source.queue(16).to_mat(Producer.plain_sink(shared), Keep.both).run(materializer)
        )
        for i in range(5):
            await queue.offer(ProducerRecord(topic_b, f"b{i}".encode()))

        def fail_at_3(i: int) -> ProducerRecord[Any, Any]:
            if i == 3:
                raise Boom("stream A fails")
            return ProducerRecord(topic_a, f"a{i}".encode())

        done_a = (
            Source.from_iterable(range(10))
            .map(fail_at_3)
            .run_with(Producer.plain_sink(shared), materializer)
        )
        with pytest.raises(Boom):
            await asyncio.wait_for(done_a, 10)
        assert still_open(producer)

        # B keeps producing through the same producer after A failed.
        for i in range(5, 10):
            await queue.offer(ProducerRecord(topic_b, f"b{i}".encode()))
        queue.complete()
        assert await asyncio.wait_for(done_b, 10) is not None
        assert still_open(producer)
        # The application can still use it directly.
        meta = await producer.send_and_wait(topic_b, b"direct")
        assert meta.offset == 10
    assert producer._closed is True  # closed by its owner, the `async with`
    assert await read_values(kafka_bootstrap, topic_b, 11) == [
        *(f"b{i}".encode() for i in range(10)),
        b"direct",
    ]


async def test_every_stage_kind_uses_the_shared_producer_and_leaves_it_open(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer, monkeypatch: Any
) -> None:
    settings = ProducerSettings(kafka_bootstrap)
    async with settings.create_producer() as producer:
        shared = settings.with_producer(producer)
        created: list[Any] = []
        import connectors.kafka._stages.producer as stage_module

        real = AIOKafkaProducer

        def spy(**kwargs: Any) -> Any:  # no stage may make its own
            created.append(kwargs)
            return real(**kwargs)

        monkeypatch.setattr(stage_module, "AIOKafkaProducer", spy)
        try:
            results = (
                await Source.from_iterable(range(3))
                .map(lambda i: ProducerMessage.single(ProducerRecord(kafka_topic, b"f%d" % i), i))
                .via(Producer.flexi_flow(shared))
                .run_with(Sink.seq(), materializer)
            )
            assert [r.pass_through for r in results] == [0, 1, 2]
            assert [r.metadata.offset for r in results] == [0, 1, 2]
            ctx = (
                await Source.from_iterable(
                    [(ProducerRecord(kafka_topic, b"c%d" % i), f"ctx{i}") for i in range(2)]
                )
                .via(Producer.flow_with_context(shared).as_flow())
                .run_with(Sink.seq(), materializer)
            )
            assert [c for _, c in ctx] == ["ctx0", "ctx1"]
            assert [r.metadata.offset for r, _ in ctx] == [3, 4]
            # Cancelled by downstream (take): the producer stays open.
            first = (
                await Source.repeat(ProducerRecord(kafka_topic, b"r"))
                .via(Producer.flexi_flow(shared.with_parallelism(1)))
                .take(1)
                .run_with(Sink.seq(), materializer)
            )
            assert first[0].metadata.offset == 5
        finally:
            monkeypatch.undo()
        assert created == []
        assert still_open(producer)
        assert (await producer.send_and_wait(kafka_topic, b"after")).offset > 5
    values = await read_values(kafka_bootstrap, kafka_topic, 6)
    assert values == [b"f0", b"f1", b"f2", b"c0", b"c1", b"r"]


async def test_completion_waits_for_its_own_acks_not_a_producer_wide_flush(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer, monkeypatch: Any
) -> None:
    """``flush()`` waits for every stream's records: a stage must not call it (here it
    would never return), yet its future completes only once each batch it handed to the
    producer was acknowledged."""
    settings = ProducerSettings(kafka_bootstrap, linger_ms=50)
    async with settings.create_producer() as producer:
        flushes: list[int] = []

        async def flush_forever() -> None:
            flushes.append(1)
            await asyncio.Event().wait()

        batches: list[asyncio.Future[Any]] = []
        send_batch = producer.send_batch

        async def spy_send_batch(*args: Any, **kwargs: Any) -> Any:
            fut = await send_batch(*args, **kwargs)
            batches.append(fut)
            return fut

        monkeypatch.setattr(producer, "flush", flush_forever)
        monkeypatch.setattr(producer, "send_batch", spy_send_batch)
        shared = settings.with_producer(producer)
        records: list[ProducerRecord[Any, Any]] = [
            ProducerRecord(kafka_topic, b"v%d" % i) for i in range(20)
        ]
        done = Source.from_iterable(records).run_with(Producer.plain_sink(shared), materializer)
        await asyncio.wait_for(done, 10)
        assert flushes == []
        assert batches and all(f.done() and f.exception() is None for f in batches)
        assert still_open(producer)
    assert await read_values(kafka_bootstrap, kafka_topic, 20) == [b"v%d" % i for i in range(20)]


async def test_committable_sink_with_a_shared_producer_leaves_it_open(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    settings = ProducerSettings(kafka_bootstrap)
    async with settings.create_producer() as producer:
        done = (
            Source.from_iterable(range(4))
            .map(lambda i: ProducerMessage.single(ProducerRecord(kafka_topic, b"s%d" % i), None))
            .run_with(Producer.committable_sink(settings.with_producer(producer)), materializer)
        )
        await asyncio.wait_for(done, 10)
        assert still_open(producer)
    assert await read_values(kafka_bootstrap, kafka_topic, 4) == [b"s%d" % i for i in range(4)]


async def test_a_producer_not_started_or_closed_fails_the_stage_clearly(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    settings = ProducerSettings(kafka_bootstrap)
    producer = settings.create_producer()
    record: ProducerRecord[Any, Any] = ProducerRecord(kafka_topic, b"x")
    try:
        done = Source.single(record).run_with(
            Producer.plain_sink(settings.with_producer(producer)), materializer
        )
        with pytest.raises(ProducerStartError, match=r"\[Producer.plain_sink\].*not started"):
            await asyncio.wait_for(done, 5)
        await producer.start()
    finally:
        await producer.stop()
    done = Source.single(record).run_with(
        Producer.plain_sink(settings.with_producer(producer)), materializer
    )
    with pytest.raises(ProducerStartError, match="is closed"):
        await asyncio.wait_for(done, 5)


async def test_a_transactional_producer_cannot_be_shared(kafka_bootstrap: str) -> None:
    settings = ProducerSettings(kafka_bootstrap)
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id="txn-1")
    try:
        with pytest.raises(ValueError, match="transactional producer.*cannot be shared"):
            settings.with_producer(producer)
        with pytest.raises(TypeError, match="expected an aiokafka.AIOKafkaProducer.*got str"):
            settings.with_producer("producer")
    finally:
        await producer.stop()


async def test_transactional_stages_refuse_shared_settings(kafka_bootstrap: str) -> None:
    settings = ProducerSettings(kafka_bootstrap)
    producer = settings.create_producer()
    try:
        with pytest.raises(ValueError, match=r"Transactional.sink.*shared producer"):
            Transactional.sink(settings.with_producer(producer), "txn-shared")
    finally:
        await producer.stop()


async def test_settings_show_and_drop_the_shared_producer(kafka_bootstrap: str) -> None:
    settings = ProducerSettings(kafka_bootstrap)
    producer = settings.create_producer()
    try:
        shared = settings.with_producer(producer)
        assert shared.producer is producer and settings.producer is None
        assert "producer=<shared AIOKafkaProducer>" in repr(shared)
        assert "producer=None" in repr(settings)
        assert shared.with_producer(None).producer is None
        # Copies keep it.
        assert shared.with_parallelism(3).producer is producer
    finally:
        await producer.stop()
