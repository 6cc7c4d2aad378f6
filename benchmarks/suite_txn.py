"""Kafka benchmark: the cost of exactly-once (issue 20).

``kafka_transactional_consume_produce``: the workload of ``kafka_consume_produce``
(:mod:`benchmarks.kafka_bench`: ``size`` records of 200 bytes read from one partition,
each value mapped, written to a target topic, offsets committed), run two ways in the
same run:

- at-least-once, the baseline: ``Consumer.committable_source -> map ->
  Producer.committable_sink`` (commits every 1,000 records or 1 s), exactly the
  ``kafka_consume_produce`` project system;
- exactly-once: ``Transactional.source -> map -> Transactional.sink`` with Alpakka's
  default commit interval (0.1 s): a Kafka transaction per interval holding the
  records and the consumed offsets.

The timed part ends when the last record was produced and its offset committed; the
result checked against the baseline is ``(records produced, committed offset)``. No
target: the report shows what exactly-once costs. Register it by appending
``"benchmarks.suite_txn"`` to ``benchmarks.runner.BENCHMARK_MODULES``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.kafka_bench import (
    PRODUCER_OPTIONS,
    _committed,
    _metrics,
    _prepared,
    transform,
)
from benchmarks.runner import THROUGHPUT, Benchmark, Measurement, System, register

__all__ = ["transactional_pipeline"]

#: Alpakka's ``eos-commit-interval``.
TRANSACTION_INTERVAL = 0.1


async def transactional_pipeline(size: int) -> Measurement:
    """``Transactional.source -> map -> Transactional.sink``."""
    from aiokafka import TopicPartition

    from connectors.kafka import (
        ConsumerSettings,
        ProducerMessage,
        ProducerRecord,
        ProducerSettings,
        Subscriptions,
        Transactional,
    )
    from connectors.kafka.testkit import unique_group_id
    from reactive import Keep, Materializer

    # acks=1 is not allowed with transactions (idempotence needs acks=all).
    options = {**PRODUCER_OPTIONS, "acks": "all"}
    async with _prepared(size) as (servers, source, target, group):
        start = time.perf_counter()
        consumer_settings = ConsumerSettings(servers, group, auto_offset_reset="earliest")
        producer_settings = ProducerSettings(servers, properties=options)

        produced = 0
        all_read = asyncio.Event()

        def envelope(message: Any) -> Any:
            nonlocal produced
            produced += 1
            if produced == size:
                all_read.set()
            record = message.record
            return ProducerMessage.single(
                ProducerRecord(target, transform(record.value), key=record.key),
                message.partition_offset,
            )

        async with Materializer() as materializer:
            control, done = (
                Transactional.source(
                    consumer_settings, Subscriptions.assignment(TopicPartition(source, 0))
                )
                .map(envelope)
                .to_mat(
                    Transactional.sink(
                        producer_settings, unique_group_id("bench-txn"), TRANSACTION_INTERVAL
                    ),
                    Keep.both,
                )
                .run(materializer)
            )
            await all_read.wait()
            # Stop reading, let the stream commit its last transaction, then close.
            await control.drain_and_shutdown(done)
        elapsed = time.perf_counter() - start
        committed = await _committed(servers, group, source)
    return Measurement(metrics=_metrics(size, elapsed), result=(produced, committed))


register(
    Benchmark(
        name="kafka_transactional_consume_produce",
        title="Kafka consume -> map -> produce: exactly-once vs at-least-once",
        description=(
            "The kafka_consume_produce workload (200-byte records, map, produce, commit the "
            "consumed offsets) with `Transactional.source -> map -> Transactional.sink` (a "
            "Kafka transaction every 0.1 s holding the records and the offsets) against "
            "`Consumer.committable_source -> map -> Producer.committable_sink` (at-least-once, "
            "commits every 1,000 records or 1 s). No target: the cost of exactly-once. "
            "Embedded Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set."
        ),
        systems=(
            System(
                "committable_sink (at-least-once)",
                "benchmarks.kafka_bench:connectors_pipeline",
                "baseline",
            ),
            System(
                "transactional (exactly-once)",
                "benchmarks.suite_txn:transactional_pipeline",
                "project",
            ),
        ),
        baseline="committable_sink (at-least-once)",
        size=100_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        timeout=300.0,
        size_label="records",
        max_rounds=7,  # each measurement starts a broker and writes the records first
    )
)
