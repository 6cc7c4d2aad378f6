"""A materializer's shutdown closes the Kafka producers of its running streams.

Found by an exploratory review: the producer stage's ``post_stop`` spawns the producer's
close, and the shutdown then cancelled that task with the others, so each shutdown left
one AIOKafkaProducer open (its sender task and broker connections; "Unclosed
AIOKafkaProducer" at exit). The close is now a task the shutdown waits for.
"""

from __future__ import annotations

import asyncio
import gc

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import Producer, ProducerMessage, ProducerRecord, ProducerSettings
from reactive import Materializer, Source

pytestmark = pytest.mark.kafka


def _producers() -> list[AIOKafkaProducer]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, AIOKafkaProducer)]


@pytest.mark.parametrize("kind", ["plain_sink", "flexi_flow"])
async def test_shutdown_closes_the_producer_of_a_running_stream(
    kafka_bootstrap: str, kafka_topic: str, kind: str
) -> None:
    before = {id(p) for p in _producers()}
    sent: list[int] = []
    async with Materializer() as mat:
        records = Source.repeat(b"x").throttle(50, 1.0).map(lambda v: (sent.append(1), v)[1])
        settings = ProducerSettings(kafka_bootstrap)
        if kind == "plain_sink":
            records.map(lambda v: ProducerRecord(kafka_topic, v)).run_with(
                Producer.plain_sink(settings), mat
            )
        else:
            records.map(lambda v: ProducerMessage.single(ProducerRecord(kafka_topic, v))).via(
                Producer.flexi_flow(settings)
            ).run_foreach(lambda _: None, mat)
        new: list[AIOKafkaProducer] = []
        while not new:  # started, and sending
            await asyncio.sleep(0.02)
            new = [p for p in _producers() if id(p) not in before and p._sender.sender_task]
        await asyncio.sleep(0.1)
        assert not any(p._closed for p in new)
    assert len(sent) > 1
    assert all(p._closed for p in new)
    assert all(p._sender.sender_task is None or p._sender.sender_task.done() for p in new)
