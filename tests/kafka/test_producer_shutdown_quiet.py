"""A materializer shutdown with batches still unacknowledged logs nothing (an Alpakka user's
review): a shutdown is not a failure ("Failures nobody awaits" in the README).

The stage fails the batches aiokafka still holds so that closing does not wait for the
broker (aiokafka's ``fail_all``); ``MessageBatch.failure`` also fails each batch's drain
waiter, which nobody awaits, and asyncio logged "Future exception was never retrieved ...
RuntimeError('[Producer.plain_sink] stopped')" once those futures were collected.
"""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import Producer, ProducerMessage, ProducerRecord, ProducerSettings
from reactive import Materializer, Source

pytestmark = pytest.mark.kafka


def _producers() -> list[AIOKafkaProducer]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, AIOKafkaProducer)]


def _has_open_batches(producer: AIOKafkaProducer) -> bool:
    accumulator = producer._message_accumulator
    return bool(any(accumulator._batches.values()) or accumulator._pending_batches)


@pytest.mark.parametrize("kind", ["plain_sink", "flexi_flow"])
async def test_shutdown_with_unacknowledged_batches_logs_nothing(
    kafka_bootstrap: str, kafka_topic: str, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="asyncio")
    before = {id(p) for p in _producers()}
    # A long linger keeps a batch open in aiokafka's accumulator at all times.
    settings = ProducerSettings(kafka_bootstrap, linger_ms=500)
    async with Materializer() as mat:
        records = Source.repeat(b"x").map(lambda v: ProducerRecord(kafka_topic, v))
        if kind == "plain_sink":
            records.run_with(Producer.plain_sink(settings), mat)
        else:
            records.map(ProducerMessage.single).via(Producer.flexi_flow(settings)).run_foreach(
                lambda _: None, mat
            )
        new: list[AIOKafkaProducer] = []
        for _ in range(500):  # started, with batches aiokafka has not had acknowledged
            new = [p for p in _producers() if id(p) not in before and _has_open_batches(p)]
            if new:
                break
            await asyncio.sleep(0.02)
        assert new, "the producer never held a batch"
    assert all(p._closed for p in new)
    del new  # let the producer, its batches and their futures be collected
    # asyncio logs an unretrieved exception when the failed future is collected.
    for _ in range(3):
        gc.collect()
        await asyncio.sleep(0.1)
    gc.collect()
    logged = [r.getMessage() for r in caplog.records if r.name == "asyncio"]
    assert not [m for m in logged if "never retrieved" in m], logged
