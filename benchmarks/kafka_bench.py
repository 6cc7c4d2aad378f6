"""Kafka benchmark: consume -> map -> produce with commits, connectors vs a raw aiokafka loop.

``kafka_consume_produce``: ``size`` records of 200 bytes are written to a
source topic beforehand (not timed). Each system then reads them from the
beginning (manual assignment of the one partition, so no group join), maps
every value with :func:`transform`, writes it to a target topic with the same
producer settings (``linger_ms=5``, ``max_batch_size=64 KiB``, ``acks=1``),
and commits the consumed offsets every 1,000 records or 1 s, each commit
after the records produced before it were acknowledged. Neither system stops
consuming for a commit: the connectors' committer runs behind the stream, and
the hand-written loop sends without awaiting each ack and runs each commit in a
task behind the loop (in order, at most a few pending). The timed part ends
when the last record was produced and its offset committed. The result
checked against the baseline is ``(records produced, committed offset)``.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a fresh
:class:`~connectors.kafka.testkit.EmbeddedBroker` per measurement.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from typing import TYPE_CHECKING, Any

from benchmarks.runner import THROUGHPUT, Benchmark, Measurement, System, Target, register

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

VALUE_SIZE = 200
COMMIT_EVERY = 1_000
COMMIT_INTERVAL = 1.0
PRODUCER_OPTIONS: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 65536, "acks": 1}
K = "benchmarks.kafka_bench:"

__all__ = ["raw_aiokafka_loop", "connectors_pipeline", "transform"]


def transform(value: bytes) -> bytes:
    """The map step both systems run: flip the first byte's case (cheap, checkable)."""
    return value[:1].swapcase() + value[1:]


@contextlib.asynccontextmanager
async def _prepared(size: int) -> AsyncIterator[tuple[str, str, str, str]]:
    """A broker with a source topic holding ``size`` records; yields servers, topics, group."""
    from aiokafka import AIOKafkaProducer

    from connectors.kafka.testkit import (
        EmbeddedBroker,
        bootstrap_servers,
        create_topic,
        unique_group_id,
        unique_topic_name,
    )

    external = bootstrap_servers()
    broker = None if external is not None else await EmbeddedBroker().astart()
    servers = external if external is not None else broker.bootstrap_servers  # type: ignore[union-attr]
    try:
        source = await create_topic(servers, unique_topic_name("bench-src"), 1)
        target = await create_topic(servers, unique_topic_name("bench-dst"), 1)
        producer = AIOKafkaProducer(bootstrap_servers=servers, **PRODUCER_OPTIONS)
        await producer.start()
        try:
            value = b"x" * VALUE_SIZE
            futures = []
            for i in range(size):
                futures.append(await producer.send(source, value, key=b"%d" % i))
                if len(futures) >= 10_000:
                    await asyncio.gather(*futures)
                    futures.clear()
            await asyncio.gather(*futures)
        finally:
            await producer.stop()
        yield servers, source, target, unique_group_id("bench")
    finally:
        if broker is not None:
            await broker.astop()


def _metrics(size: int, elapsed: float) -> dict[str, float]:
    """The timed part's metrics. ``throughput`` must be given here: the runner's default
    divides by the whole call, which also counts starting the broker, writing the input
    records and stopping the broker (not part of either system's work)."""
    return {"elapsed": elapsed, "throughput": size / elapsed if elapsed > 0 else float("inf")}


async def _committed(servers: str, group: str, topic: str) -> int | None:
    from connectors.kafka.testkit import committed_offsets

    return (await committed_offsets(servers, group, topic, [0]))[0]


#: Commits the hand-written loop lets run behind it before it waits for the oldest (the
#: connectors' committer back-pressures the same way once its batches queue up).
MAX_PENDING_COMMITS = 4


async def raw_aiokafka_loop(size: int) -> Measurement:
    """The hand-written loop a competent user writes: ``getmany`` + ``send`` without
    awaiting each ack, and every 1,000 records or 1 s a commit that runs *behind* the loop
    (a task awaiting the acks of the records before it, then committing their offsets, in
    order after the previous commit), so consuming and producing never stop for a commit,
    as in the connectors."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

    async with _prepared(size) as (servers, source, target, group):
        start = time.perf_counter()
        tp = TopicPartition(source, 0)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=servers,
            group_id=group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        producer = AIOKafkaProducer(bootstrap_servers=servers, **PRODUCER_OPTIONS)
        await consumer.start()
        await producer.start()
        commits: collections.deque[asyncio.Task[None]] = collections.deque()
        try:
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            done = 0
            futures: list[asyncio.Future[Any]] = []
            last_offset = -1
            last_commit = time.monotonic()

            async def commit_after(
                previous: asyncio.Task[None] | None, acks: list[asyncio.Future[Any]], offset: int
            ) -> None:
                if previous is not None:
                    await previous  # commits stay in order (and a failure propagates)
                await asyncio.gather(*acks)
                await consumer.commit({tp: offset + 1})

            async def commit() -> None:
                nonlocal futures, last_commit
                last_commit = time.monotonic()
                if not futures:
                    return
                previous = commits[-1] if commits else None
                commits.append(asyncio.ensure_future(commit_after(previous, futures, last_offset)))
                futures = []
                while commits and commits[0].done():
                    commits.popleft().result()
                if len(commits) > MAX_PENDING_COMMITS:
                    await commits.popleft()

            while done < size:
                batch = await consumer.getmany(tp, timeout_ms=50, max_records=500)
                for record in batch.get(tp, ()):
                    futures.append(
                        await producer.send(target, transform(record.value), key=record.key)
                    )
                    last_offset = record.offset
                    done += 1
                    if len(futures) >= COMMIT_EVERY:
                        await commit()
                    if done >= size:
                        break
                if time.monotonic() - last_commit >= COMMIT_INTERVAL:
                    await commit()
            await commit()
            while commits:
                await commits.popleft()
        finally:
            for task in commits:
                task.cancel()
            await producer.stop()
            await consumer.stop()
        elapsed = time.perf_counter() - start
        committed = await _committed(servers, group, source)
    return Measurement(metrics=_metrics(size, elapsed), result=(done, committed))


async def connectors_pipeline(size: int, metrics: bool = False) -> Measurement:
    """``Consumer.committable_source -> map -> Producer.committable_sink`` (on a
    materializer with ``metrics`` on or off: ``benchmarks.suite_observe``'s
    ``observe_kafka`` compares the two)."""
    from aiokafka import TopicPartition

    from connectors.kafka import (
        CommitterSettings,
        Consumer,
        ConsumerSettings,
        Producer,
        ProducerMessage,
        ProducerRecord,
        ProducerSettings,
        Subscriptions,
    )
    from reactive import Keep, Materializer

    async with _prepared(size) as (servers, source, target, group):
        start = time.perf_counter()
        consumer_settings = ConsumerSettings(servers, group, auto_offset_reset="earliest")
        producer_settings = ProducerSettings(servers, properties=PRODUCER_OPTIONS)
        committer_settings = CommitterSettings(max_batch=COMMIT_EVERY, max_interval=COMMIT_INTERVAL)

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
                message.committable_offset,
            )

        async with Materializer(metrics=metrics) as materializer:
            control, done = (
                Consumer.committable_source(
                    consumer_settings, Subscriptions.assignment(TopicPartition(source, 0))
                )
                .map(envelope)
                .to_mat(Producer.committable_sink(producer_settings, committer_settings), Keep.both)
                .run(materializer)
            )
            await all_read.wait()
            # Stop reading, let the stream produce and commit the rest, then close.
            await control.drain_and_shutdown(done)
        elapsed = time.perf_counter() - start
        committed = await _committed(servers, group, source)
    return Measurement(metrics=_metrics(size, elapsed), result=(produced, committed))


register(
    Benchmark(
        name="kafka_consume_produce",
        title="Kafka consume -> map -> produce with commits",
        description=(
            "Read 200-byte records from a topic, map each value, write it to another topic and "
            "commit every 1,000 records or 1 s (after the produced records were acknowledged); "
            "the connectors (`Consumer.committable_source -> map -> Producer.committable_sink`) "
            "against a hand-written aiokafka `getmany` + `send` loop with the same producer "
            "batching that never waits for a commit either (sends without awaiting each ack, "
            "each commit a task behind the loop, in order). Embedded Tansu broker unless "
            "KAFKA_BOOTSTRAP_SERVERS is set."
        ),
        systems=(
            System("raw aiokafka loop", K + "raw_aiokafka_loop", "baseline"),
            System("connectors", K + "connectors_pipeline", "project"),
        ),
        baseline="raw aiokafka loop",
        size=100_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        targets=(
            Target("connectors", "throughput", ">= 0.8x the raw aiokafka loop", min_ratio=0.8),
        ),
        timeout=300.0,
        size_label="records",
        max_rounds=7,  # each measurement starts a broker and writes the records first
    )
)
