"""A mistake in a ProducerRecord is the record's fault, and reported as such.

Found by an Alpakka user's review: ``headers={'id': b'42'}`` was iterated as its keys
(``(('i', 'd'),)``) and failed at send time as a ProducerSendError telling to "check the
broker's log"; a str header value, ``timestamp_ms='x'`` or ``partition='1'`` gave obscure
errors; a partition the topic lacks gave "AssertionError: Unrecognized partition; check
the broker's log". Now the record's fields are checked where it is built (TypeError /
ValueError naming the field and the value), a mapping of headers is taken as its items,
and a partition the topic lacks fails the stream saying so, as Kafka does ("Invalid
partition given with record: 9 is not in the range [0...2)"), without the broker hint.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

import pytest

from connectors.kafka import Producer, ProducerRecord, ProducerSendError, ProducerSettings
from connectors.kafka.serde import str_serializer
from connectors.kafka.testkit import read_records
from reactive import Materializer, Sink, Source

# -- at construction --------------------------------------------------------------------


def test_a_mapping_of_headers_is_taken_as_its_items() -> None:
    record = ProducerRecord("t", b"v", headers={"id": b"42", "trace": b"7"})
    assert record.headers == (("id", b"42"), ("trace", b"7"))


@pytest.mark.parametrize(
    ("headers", "stored"),
    [
        (None, ()),
        ([], ()),
        ([("a", b"1"), ("a", b"2")], (("a", b"1"), ("a", b"2"))),  # a key may repeat
        ([["a", b"1"]], (("a", b"1"),)),
        ((("a", None),), (("a", None),)),  # a null header value, as Kafka allows
        ([("a", bytearray(b"1"))], (("a", b"1"),)),
        ((("a", memoryview(b"1")),), (("a", b"1"),)),
        (iter([("a", b"1")]), (("a", b"1"),)),
    ],
)
def test_valid_headers_are_stored_as_a_tuple_of_pairs(headers: Any, stored: Any) -> None:
    record = ProducerRecord("t", b"v", headers=headers)
    assert record.headers == stored
    assert type(record.headers) is tuple
    assert all(type(pair) is tuple and type(pair[1]) in (bytes, type(None)) for pair in stored)
    hash(record)
    assert pickle.loads(pickle.dumps(record)) == record


def test_a_valid_tuple_of_headers_is_kept_as_is() -> None:
    headers = (("a", b"1"),)
    assert ProducerRecord("t", b"v", headers=headers).headers is headers


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"headers": [("k", "text")]},
            TypeError,
            "header values must be bytes or None, got str 'text' for header 'k'",
        ),
        (
            {"headers": (("k", "text"),)},
            TypeError,
            "header values must be bytes or None, got str 'text'",
        ),
        (
            {"headers": {"k": "text"}},
            TypeError,
            "header values must be bytes or None, got str 'text'",
        ),
        ({"headers": [(1, b"x")]}, TypeError, "header names must be str, got int 1"),
        (
            {"headers": [("k",)]},
            TypeError,
            r"headers must be \(str, bytes\) pairs, got the element \('k',\)",
        ),
        (
            {"headers": [("k", b"x", b"y")]},
            TypeError,
            r"headers must be .* pairs, got the element \('k', b'x', b'y'\)",
        ),
        ({"headers": ["kv"]}, TypeError, "headers must be .* pairs, got the element 'kv'"),
        ({"headers": "k"}, TypeError, "headers must be .* got str 'k'"),
        ({"headers": b"k"}, TypeError, "headers must be .* got bytes b'k'"),
        ({"headers": 5}, TypeError, "headers must be .* got int 5"),
        ({"timestamp_ms": "x"}, TypeError, "timestamp_ms must be an int or None, got str 'x'"),
        ({"timestamp_ms": 1.5}, TypeError, "timestamp_ms must be an int or None, got float 1.5"),
        ({"timestamp_ms": True}, TypeError, "timestamp_ms must be an int or None, got bool True"),
        ({"timestamp_ms": -5}, ValueError, "timestamp_ms must be >= 0 or None, got -5"),
        ({"partition": "1"}, TypeError, "partition must be an int or None, got str '1'"),
        ({"partition": 1.0}, TypeError, "partition must be an int or None, got float 1.0"),
        ({"partition": False}, TypeError, "partition must be an int or None, got bool False"),
        ({"partition": -1}, ValueError, "partition must be >= 0 or None, got -1"),
        ({"topic": 5}, TypeError, "topic must be a non-empty str, got 5"),
        ({"topic": ""}, ValueError, "topic must be a non-empty str, got ''"),
    ],
)
def test_a_wrong_field_fails_at_construction_naming_it(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    fields: dict[str, Any] = {"topic": "t", "value": b"v", **kwargs}
    with pytest.raises(error, match=f"^ProducerRecord {message}") as info:
        ProducerRecord(**fields)
    assert type(info.value) is error


def test_int_subclasses_are_accepted() -> None:
    import enum

    class P(enum.IntEnum):
        FIRST = 0

    assert ProducerRecord("t", b"v", partition=P.FIRST, timestamp_ms=P.FIRST).partition == 0


# -- at send time ---------------------------------------------------------------------------


def settings(bootstrap: str) -> ProducerSettings:
    return ProducerSettings(bootstrap, value_serializer=str_serializer)


@pytest.mark.kafka
async def test_mapping_headers_reach_the_broker(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    record = ProducerRecord(kafka_topic, "v", headers={"id": b"42"})
    done = Source.single(record).run_with(
        Producer.plain_sink(settings(kafka_bootstrap)), materializer
    )
    await asyncio.wait_for(done, 20)
    (got,) = await read_records(kafka_bootstrap, kafka_topic, 1)
    assert list(got.headers) == [("id", b"42")]


@pytest.mark.kafka
@pytest.mark.parametrize("kind", ["plain_sink", "flexi_flow"])
async def test_a_partition_the_topic_lacks_is_the_records_fault(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any, kind: str
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    record = ProducerRecord(topic, "v", partition=9)
    if kind == "plain_sink":
        done = Source.single(record).run_with(
            Producer.plain_sink(settings(kafka_bootstrap)), materializer
        )
    else:
        done = (
            Source.single(record)
            .via(Producer.flexi_flow(settings(kafka_bootstrap)))
            .run_with(Sink.seq(), materializer)
        )
    with pytest.raises(ProducerSendError) as info:
        await asyncio.wait_for(done, 20)
    message = str(info.value)
    assert f"partition 9 of topic '{topic}' (2 partitions)" in message, message
    assert "Invalid partition given with record: 9 is not in the range [0...2)" in message
    assert "broker's log" not in message
    assert (info.value.topic, info.value.partition, info.value.retriable) == (topic, 9, False)
    assert isinstance(info.value.__cause__, AssertionError)  # aiokafka's own check


@pytest.mark.kafka
async def test_a_field_aiokafka_refuses_at_send_time_is_the_records_fault(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    # A timestamp past Kafka's 64-bit range passes the constructor's cheap check; aiokafka
    # refuses it while building the batch, before anything reaches a broker.
    record = ProducerRecord(kafka_topic, "v", timestamp_ms=1 << 64)
    done = Source.single(record).run_with(
        Producer.plain_sink(settings(kafka_bootstrap)), materializer
    )
    with pytest.raises(ProducerSendError) as info:
        await asyncio.wait_for(done, 20)
    message = str(info.value)
    assert f"invalid record for topic '{kafka_topic}'" in message, message
    assert "the record is at fault, not the broker" in message
    assert "broker's log" not in message
    assert isinstance(info.value.__cause__, OverflowError)
