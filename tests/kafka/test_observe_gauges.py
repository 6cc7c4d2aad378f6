"""The Kafka stages' own gauges in ``reactive.observe`` snapshots and exports, against
the embedded broker: consumer lag per partition, records buffered, messages and commits
in flight, produce latency."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.kafka import (
    CommitterSettings,
    Consumer,
    DrainingControl,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
)
from connectors.kafka.testkit import (
    create_topic,
    produce_values,
    read_values,
    unique_group_id,
    unique_topic_name,
)
from reactive import Keep, Materializer
from reactive.testkit import TestSink
from tests.kafka.support import eventually, settings

pytestmark = pytest.mark.kafka


def gauges_of(mat: Materializer, stage: str) -> dict[str, Any]:
    return dict(mat.snapshot().stage(stage).gauges)


async def test_consumer_lag_per_partition_and_records_buffered(kafka_bootstrap: str) -> None:
    topic = await create_topic(kafka_bootstrap, unique_topic_name("lag"), partitions=2)
    await produce_values(kafka_bootstrap, topic, [f"a{i}" for i in range(30)], partition=0)
    await produce_values(kafka_bootstrap, topic, [f"b{i}" for i in range(20)], partition=1)
    async with Materializer() as mat:
        control, probe = (
            Consumer.plain_source(
                settings(kafka_bootstrap, unique_group_id(), max_buffered_records=8),
                Subscriptions.topics(topic),
            )
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        produced = {f"{topic}-0": 30, f"{topic}-1": 20}
        emitted = {f"{topic}-0": 0, f"{topic}-1": 0}

        async def take(n: int) -> None:
            probe.request(n)
            for _ in range(n):
                value = await probe.expect_next()
                emitted[f"{topic}-{0 if value.value.startswith('a') else 1}"] += 1

        def lag() -> dict[str, int]:
            return dict(gauges_of(mat, "Consumer.plain_source")["kafka_consumer_lag"])

        await take(5)

        # A partition fetched at least once has a lag: everything of it not emitted yet.
        # (Under back pressure, with 8 records buffered, the other may not be fetched.)
        def buffered() -> int:
            return int(gauges_of(mat, "Consumer.plain_source")["kafka_records_buffered"])

        await eventually(lambda: bool(lag()) and buffered() == 8)  # full: max_buffered_records
        for tp, n in lag().items():
            assert n == produced[tp] - emitted[tp], (tp, lag(), emitted)
        assert gauges_of(mat, "Consumer.plain_source")["kafka_commits_in_flight"] == 0
        await take(45)
        await eventually(lambda: lag() == {f"{topic}-0": 0, f"{topic}-1": 0})
        assert buffered() == 0
        await control.shutdown()


async def test_produce_latency_and_in_flight_gauges_and_their_export(
    kafka_bootstrap: str,
) -> None:
    """consume -> produce -> commit: the sink reports produce latency percentiles and,
    once drained, nothing in flight; Prometheus exports them (scraped over HTTP) and the
    consumer's lag by partition."""
    from prometheus_client import CollectorRegistry

    from reactive.observe.prometheus import register
    from tests.observe.test_export import sample, scrape_over_http

    src = await create_topic(kafka_bootstrap, unique_topic_name("src"), partitions=1)
    dst = await create_topic(kafka_bootstrap, unique_topic_name("dst"), partitions=1)
    await produce_values(kafka_bootstrap, src, [str(i) for i in range(200)])
    async with Materializer() as mat:
        control = (
            Consumer.committable_source(
                settings(kafka_bootstrap, unique_group_id()), Subscriptions.topics(src)
            )
            .map(
                lambda m: ProducerMessage.single(
                    ProducerRecord(dst, m.record.value.encode()), m.committable_offset
                )
            )
            .to_mat(
                Producer.committable_sink(
                    ProducerSettings(kafka_bootstrap), CommitterSettings(max_batch=50)
                ),
                DrainingControl,
            )
            .named("copy")
            .run(mat)
        )
        assert len(await read_values(kafka_bootstrap, dst, 200)) == 200
        sink = "Producer.committable_sink"
        await eventually(lambda: gauges_of(mat, sink).get("kafka_messages_in_flight") == 0)
        g = gauges_of(mat, sink)
        p50, p99 = g["kafka_produce_latency_p50_seconds"], g["kafka_produce_latency_p99_seconds"]
        assert 0 < p50 <= p99 < 30

        registry = CollectorRegistry()
        register(mat, registry)
        text = await scrape_over_http(registry)
        labels = {"graph": "copy", "stage": sink}
        assert sample(text, "reactive_kafka_messages_in_flight", **labels) == 0.0
        assert sample(text, "reactive_kafka_produce_latency_p99_seconds", **labels) > 0
        lag = {"graph": "copy", "stage": "Consumer.committable_source", "key": f"{src}-0"}
        assert sample(text, "reactive_kafka_consumer_lag", **lag) == 0.0
        await eventually(lambda: gauges_of(mat, sink)["kafka_commits_in_flight"] == 0)
        await control.drain_and_shutdown()


async def test_lag_of_a_partition_nothing_was_emitted_from_yet(kafka_bootstrap: str) -> None:
    """Found by a review: a partition fetched (its high watermark known) but with nothing
    emitted yet had no lag series: exactly the lagging partition an alert needs. Its lag
    counts from the first record waiting (in the stage, or the client's position)."""
    topic = await create_topic(kafka_bootstrap, unique_topic_name("lag0"), partitions=2)
    for p in (0, 1):
        await produce_values(kafka_bootstrap, topic, [f"{p}-{i}" for i in range(200)], partition=p)
    async with Materializer() as mat:
        control, probe = (
            Consumer.plain_source(
                settings(kafka_bootstrap, unique_group_id(), max_buffered_records=8),
                Subscriptions.topics(topic),
            )
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        probe.request(1)
        first = await probe.expect_next(timeout=20)

        def lag() -> dict[str, int]:
            return dict(gauges_of(mat, "Consumer.plain_source")["kafka_consumer_lag"])

        await eventually(lambda: len(lag()) == 2, timeout=20)
        emitted_from = f"{topic}-{first.partition}"
        other = f"{topic}-{1 - first.partition}"
        assert lag()[emitted_from] == 199
        assert lag()[other] == 200
        await control.shutdown()
