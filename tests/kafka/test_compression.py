"""Compressed topics: every codec, both directions, against librdkafka (confluent-kafka).

Our ``Producer`` with ``compression_type=X`` -> a librdkafka consumer, and a librdkafka
producer with ``compression.type=X`` -> our ``Consumer``, on the embedded broker. Each
test also shows that the batches really were compressed with ``X``: with ``X``'s codec
made unavailable (aiokafka's ``has_X()`` answering ``False``, as it does when the codec
library is missing) our consumer fails on the first record, naming ``X``.

A codec that is not installed: building a producer stage fails at once saying what to
install (checked in a subprocess where ``cramjam``, the codec library, cannot be
imported), and the consumer fails naming the codec, what to install, and the topic,
partition and offset it stopped at.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time
from typing import Any

import aiokafka.codec
import confluent_kafka
import pytest
from aiokafka.errors import UnsupportedCodecError

from connectors.kafka import (
    Consumer,
    MissingCodecError,
    Producer,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.testkit import produce_values, unique_group_id
from reactive import Materializer, Sink, Source
from tests.kafka.support import settings

pytestmark = pytest.mark.kafka

CODECS = ["gzip", "snappy", "lz4", "zstd"]
N = 50


def value(i: int) -> bytes:
    return f"value-{i}-".encode() * 20  # compressible


def librdkafka_produce(bootstrap: str, topic: str, codec: str, n: int) -> None:
    """Write ``n`` records (key, value, a header) to partition 0 with librdkafka."""
    errors: list[Any] = []
    producer = confluent_kafka.Producer(
        {
            "bootstrap.servers": bootstrap,
            "compression.type": codec,
            "linger.ms": 5,
            "log_level": 0,
        }
    )
    for i in range(n):
        producer.produce(
            topic,
            value=value(i),
            key=b"k%d" % i,
            partition=0,
            headers=[("h", b"%d" % i)],
            on_delivery=lambda err, _msg: errors.append(err) if err is not None else None,
        )
    assert producer.flush(15) == 0, "librdkafka did not deliver every record"
    assert errors == []


def librdkafka_consume(bootstrap: str, topic: str, n: int, timeout: float = 15.0) -> list[Any]:
    """The first ``n`` records of partition 0, read with librdkafka (no group join)."""
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": unique_group_id("librdkafka"),
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        start = confluent_kafka.TopicPartition(topic, 0, confluent_kafka.OFFSET_BEGINNING)
        consumer.assign([start])
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < n and time.monotonic() < deadline:
            for msg in consumer.consume(n - len(records), 0.5):
                assert msg.error() is None, msg.error()
                records.append(msg)
        return records
    finally:
        consumer.close()


async def read_with_consumer(
    materializer: Materializer, bootstrap: str, topic: str, n: int
) -> list[Any]:
    source = Consumer.plain_source(
        settings(bootstrap).with_value_deserializer(None),
        Subscriptions.assignment(TopicPartition(topic, 0)),
    )
    done = source.take(n).run_with(Sink.seq(), materializer)
    return list(await asyncio.wait_for(done, 20))


async def codec_failure(
    materializer: Materializer, bootstrap: str, topic: str, codec: str, monkeypatch: Any
) -> MissingCodecError:
    """Read ``topic`` with ``codec`` made unavailable; the error the stream fails with."""
    monkeypatch.setattr(aiokafka.codec, f"has_{codec}", lambda: False)
    source = Consumer.plain_source(
        settings(bootstrap).with_value_deserializer(None),
        Subscriptions.assignment(TopicPartition(topic, 0)),
    )
    done = source.run_with(Sink.seq(), materializer)
    with pytest.raises(MissingCodecError) as info:
        await asyncio.wait_for(done, 20)
    return info.value


@pytest.mark.parametrize("codec", CODECS)
async def test_our_producer_to_librdkafka_consumer(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str, codec: str, monkeypatch
) -> None:
    producer = ProducerSettings(kafka_bootstrap, compression_type=codec, linger_ms=5)
    records = [
        ProducerRecord(kafka_topic, value(i), key=b"k%d" % i, partition=0, headers=[("h", b"x")])
        for i in range(N)
    ]
    done = Source.from_iterable(records).run_with(Producer.plain_sink(producer), materializer)
    await asyncio.wait_for(done, 20)

    got = await asyncio.to_thread(librdkafka_consume, kafka_bootstrap, kafka_topic, N)
    assert [m.value() for m in got] == [value(i) for i in range(N)]
    assert [m.key() for m in got] == [b"k%d" % i for i in range(N)]
    assert [m.headers() for m in got] == [[("h", b"x")]] * N

    # It was compressed with `codec`: without the codec our consumer cannot read it.
    error = await codec_failure(materializer, kafka_bootstrap, kafka_topic, codec, monkeypatch)
    assert error.codec == codec and error.offset == 0


@pytest.mark.parametrize("codec", CODECS)
async def test_librdkafka_producer_to_our_consumer(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str, codec: str, monkeypatch
) -> None:
    await asyncio.to_thread(librdkafka_produce, kafka_bootstrap, kafka_topic, codec, N)

    got = await read_with_consumer(materializer, kafka_bootstrap, kafka_topic, N)
    assert [r.value for r in got] == [value(i) for i in range(N)]
    assert [r.key for r in got] == [b"k%d" % i for i in range(N)]
    assert [r.offset for r in got] == list(range(N))
    assert [list(r.headers) for r in got] == [[("h", b"%d" % i)] for i in range(N)]

    error = await codec_failure(materializer, kafka_bootstrap, kafka_topic, codec, monkeypatch)
    assert error.codec == codec and error.offset == 0


async def test_missing_codec_on_the_consumer_names_the_record_and_the_package(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str, monkeypatch
) -> None:
    # Offsets 0-4 plain, then a snappy batch from offset 5 on.
    await produce_values(kafka_bootstrap, kafka_topic, [b"plain"] * 5, partition=0)
    await asyncio.to_thread(librdkafka_produce, kafka_bootstrap, kafka_topic, "snappy", 3)
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)  # as when cramjam is not installed

    seen: list[Any] = []
    source = Consumer.plain_source(
        settings(kafka_bootstrap).with_value_deserializer(None),
        Subscriptions.assignment(TopicPartition(kafka_topic, 0)),
    )
    done = source.run_with(Sink.foreach(seen.append), materializer)
    with pytest.raises(MissingCodecError) as info:
        await asyncio.wait_for(done, 20)
    error = info.value
    # Records of the same fetch before the bad batch may or may not come through
    # (aiokafka drops the fetch on the error); none after it.
    assert [r.offset for r in seen] == list(range(len(seen))) and len(seen) <= 5
    assert (error.codec, error.topic, error.partition, error.offset) == (
        "snappy",
        kafka_topic,
        0,
        5,
    )
    message = str(error)
    assert message.startswith("[Consumer.plain_source]")
    assert f"topic {kafka_topic!r} partition 0 offset 5" in message
    assert "snappy" in message and "pip install 'reactive-streams-py[kafka]'" in message
    assert "cramjam" in message
    # Still aiokafka's type, with aiokafka's error as the cause.
    assert isinstance(error, UnsupportedCodecError)
    assert isinstance(error.__cause__, UnsupportedCodecError)


@pytest.mark.parametrize("codec", ["snappy", "lz4", "zstd"])
def test_missing_codec_on_the_producer_says_what_to_install(codec: str) -> None:
    # A fresh interpreter where the codec library cannot be imported, as when the
    # `kafka` extra was not installed; building the stage fails at once.
    program = textwrap.dedent(
        f"""
        import sys
        sys.modules["cramjam"] = None  # import cramjam -> ImportError
        from connectors.kafka import MissingCodecError, Producer, ProducerSettings
        settings = ProducerSettings("127.0.0.1:9", compression_type={codec!r})
        try:
            Producer.plain_sink(settings)
        except MissingCodecError as exc:
            print(type(exc).__name__, exc.codec, exc, sep="|")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    name, got_codec, message = result.stdout.strip().split("|")
    assert (name, got_codec) == ("MissingCodecError", codec)
    assert message.startswith("[Producer.plain_sink]")
    assert f"compression_type={codec!r}" in message
    assert "pip install 'reactive-streams-py[kafka]'" in message


def test_missing_codec_on_the_producer_flow(monkeypatch) -> None:
    monkeypatch.setattr(aiokafka.codec, "cramjam", None)
    settings_ = ProducerSettings("127.0.0.1:9", compression_type="zstd")
    with pytest.raises(MissingCodecError, match=r"\[Producer.flexi_flow\].*zstd.*pip install"):
        Producer.flexi_flow(settings_)
    with pytest.raises(UnsupportedCodecError):  # aiokafka's type still catches it
        Producer.committable_sink(settings_)
    # gzip is in the standard library: always available.
    Producer.plain_sink(settings_.with_compression_type("gzip"))
