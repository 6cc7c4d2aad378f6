"""A Kafka producer sink's failure that nobody awaits is logged, naming the stage (as every
other sink's, issue 12 item 8): the sinks' futures are the runtime's result promises."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from connectors.kafka import (
    CommitterSettings,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
)
from connectors.kafka.serde import str_serializer
from reactive import Materializer, Source

pytestmark = pytest.mark.kafka


def unobserved(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.name == "reactive" and "nobody observed the failure" in r.getMessage()
    ]


async def wait_for_record(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    for _ in range(200):
        gc.collect()
        records = unobserved(caplog)
        if records:
            return records
        await asyncio.sleep(0.05)
    return unobserved(caplog)


@pytest.mark.parametrize("kind", ["plain_sink", "committable_sink"])
async def test_unawaited_producer_sink_failure_is_logged(
    kind: str,
    kafka_bootstrap: str,
    kafka_topic: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="reactive")
    settings = ProducerSettings(kafka_bootstrap, value_serializer=str_serializer)
    record = ProducerRecord(kafka_topic, "x", partition=5)  # the topic has no partition 5
    if kind == "plain_sink":
        Source.single(record).run_with(Producer.plain_sink(settings), materializer)
        stage = "Producer.plain_sink"
    else:
        sink = Producer.committable_sink(settings, CommitterSettings(max_batch=1))
        Source.single(ProducerMessage.single(record, None)).run_with(sink, materializer)
        stage = "Producer.committable_sink"
    records = await wait_for_record(caplog)
    assert len(records) == 1, [r.getMessage() for r in caplog.records]
    message = records[0].getMessage()
    assert stage in message and "partition 5" in message, message
