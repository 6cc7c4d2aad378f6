"""Cases mirrored from Alpakka Kafka's own specs (CommittingSpec, CommitterSpec, ProducerSpec,
PlainSourceSpec, AtMostOnceSpec, PartitionedSourcesSpec, DrainingControlSpec, ControlSpec,
SerializationSpec), through the public API only; what the other files here cover is left out."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    DeserializationError,
    DrainingControl,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSendError,
    ProducerSettings,
    Subscriptions,
)
from connectors.kafka.serde import str_serializer
from connectors.kafka.testkit import (
    committed_offsets,
    produce_values,
    read_values,
    unique_group_id,
)
from reactive import Done, Keep, Materializer, Sink, Source
from reactive.testkit import TestSink
from tests.kafka.support import eventually, settings

pytestmark = pytest.mark.kafka


# -- settings (ConsumerSettingsSpec / ProducerSettingsSpec / CommitterSettingsSpec) ------------


def test_settings_copies_leave_the_original_alone() -> None:
    base = ConsumerSettings("localhost:9092")
    assert (base.group_id, base.auto_offset_reset, dict(base.properties)) == (None, "latest", {})
    changed = (
        base.with_group_id("g")
        .with_bootstrap_servers("other:1")
        .with_property("max.poll.records", "7")
        .with_stop_timeout(0)
    )
    assert (changed.group_id, changed.bootstrap_servers, changed.stop_timeout) == (
        "g",
        "other:1",
        0,
    )
    assert changed.properties["max_poll_records"] == 7
    assert (base.group_id, base.bootstrap_servers, dict(base.properties)) == (
        None,
        "localhost:9092",
        {},
    )
    producer = ProducerSettings("localhost:9092").with_property("linger.ms", "5")
    assert producer.linger_ms == 5
    assert producer.with_bootstrap_servers("x:1").bootstrap_servers == "x:1"
    committer = CommitterSettings()
    assert (committer.max_batch, committer.max_interval, committer.parallelism) == (1000, 10.0, 1)
    assert CommitterSettings(max_batch=5).with_max_interval(0.5).max_interval == 0.5


# -- subscriptions (PlainSourceSpec) --------------------------------------------------------------


async def test_topics_subscription_reads_every_named_topic(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    t1, t2 = await kafka_topic_factory(), await kafka_topic_factory()
    await produce_values(kafka_bootstrap, t1, ["a1", "a2"])
    await produce_values(kafka_bootstrap, t2, ["b1"])
    control, done = (
        Consumer.plain_source(
            settings(kafka_bootstrap, unique_group_id()), Subscriptions.topics(t1, t2)
        )
        .take(3)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    records = await asyncio.wait_for(done, 15)
    assert sorted((r.topic, r.value) for r in records) == sorted(
        [(t1, "a1"), (t1, "a2"), (t2, "b1")]
    )
    await asyncio.wait_for(control.is_shutdown, 5)


async def test_topic_pattern_subscription_reads_matching_topics(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(prefix="pattern")
    await produce_values(kafka_bootstrap, topic, ["p1", "p2"])
    control, done = (
        Consumer.plain_source(
            settings(kafka_bootstrap, unique_group_id()), Subscriptions.topic_pattern(f"{topic}.*")
        )
        .take(2)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert [r.value for r in await asyncio.wait_for(done, 15)] == ["p1", "p2"]
    await asyncio.wait_for(control.is_shutdown, 5)


# -- control (ControlSpec / DrainingControlSpec) ---------------------------------------------------


async def test_draining_control_returns_the_stream_result(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["r1", "r2"])
    seen: list[str] = []
    control = (
        Consumer.plain_source(settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0)))
        .map(lambda r: seen.append(r.value) or r.value)
        .to_mat(Sink.seq(), DrainingControl)
        .run(materializer)
    )
    await eventually(lambda: len(seen) == 2)
    assert await control.drain_and_shutdown() == ["r1", "r2"]
    await asyncio.wait_for(control.is_shutdown, 5)


async def test_control_calls_after_shutdown_return_at_once(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    control, probe = (
        Consumer.plain_source(settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    probe.request(1)
    assert await control.shutdown() is Done
    await probe.expect_complete()
    assert await asyncio.wait_for(control.is_shutdown, 5) is Done
    assert await asyncio.wait_for(control.stop(), 1) is Done
    assert await asyncio.wait_for(control.shutdown(), 1) is Done
    done = asyncio.get_running_loop().create_future()
    done.set_result("result")
    assert await asyncio.wait_for(control.drain_and_shutdown(done), 1) == "result"
    assert isinstance(control.metrics(), dict)


async def test_control_metrics_are_available_while_running(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["m"])
    control, probe = (
        Consumer.plain_source(settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    assert (await probe.request_next(timeout=10)).value == "m"
    metrics = control.metrics()
    assert metrics and isinstance(metrics, dict)
    assert await control.metrics() == control.metrics()  # Alpakka's metrics is a Future
    await control.shutdown()


# -- partitioned sources (PartitionedSourcesSpec) ---------------------------------------------


async def test_stop_completes_the_partition_substreams(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await produce_values(kafka_bootstrap, topic, ["p0"], partition=0)
    await produce_values(kafka_bootstrap, topic, ["p1"], partition=1)
    seen: list[tuple[int, str]] = []
    group = unique_group_id()
    control = (
        Consumer.committable_partitioned_source(
            settings(kafka_bootstrap, group), Subscriptions.topics(topic)
        )
        .flat_map_merge(
            2,
            lambda pair: pair[1].map(
                lambda m: seen.append((m.record.partition, m.record.value)) or m.committable_offset
            ),
        )
        .to_mat(Committer.sink(CommitterSettings(max_batch=1)), DrainingControl)
        .run(materializer)
    )
    await eventually(lambda: len(seen) == 2, 15)
    assert sorted(seen) == [(0, "p0"), (1, "p1")]
    assert await asyncio.wait_for(control.drain_and_shutdown(), 10) is Done
    assert await committed_offsets(kafka_bootstrap, group, topic, (0, 1)) == {0: 1, 1: 1}


# -- producer (ProducerSpec) --------------------------------------------------------------------


def producer_settings(bootstrap: str) -> ProducerSettings:
    """Producer settings with str values and a short connect timeout."""
    return ProducerSettings(bootstrap, value_serializer=str_serializer, connect_timeout=5.0)


async def test_plain_sink_materializes_done_and_keeps_record_fields(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    record = ProducerRecord(
        kafka_topic,
        "v",
        key=b"k",
        partition=0,
        timestamp_ms=1_600_000_000_000,
        headers=[("h", b"1")],
    )
    done = Source.from_iterable([record]).run_with(
        Producer.plain_sink(producer_settings(kafka_bootstrap)), materializer
    )
    assert await asyncio.wait_for(done, 10) is Done
    control, probe = (
        Consumer.plain_source(settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    got = await probe.request_next(timeout=10)
    assert (got.key, got.value, got.timestamp, list(got.headers)) == (
        b"k",
        "v",
        1_600_000_000_000,
        [("h", b"1")],
    )
    await control.shutdown()


async def test_flexi_flow_send_failure_fails_the_stream(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    bad = ProducerMessage.single(ProducerRecord(kafka_topic, "x", partition=5), "pt")
    done = (
        Source.single(bad)
        .via(Producer.flexi_flow(producer_settings(kafka_bootstrap)))
        .run_with(Sink.seq(), materializer)
    )
    # aiokafka refuses a partition the topic does not have; the stream fails with that error
    # as the cause of a ProducerSendError naming topic and partition (a hang would end in
    # wait_for's TimeoutError, which does not match).
    with pytest.raises(ProducerSendError, match=f"topic '{kafka_topic}' partition 5") as err:
        await asyncio.wait_for(done, 10)
    assert isinstance(err.value.__cause__, AssertionError)
    assert f"partition 5 of topic '{kafka_topic}' (1 partition)" in str(err.value)


async def test_flexi_flow_pass_through_only_stream_produces_nothing(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    envelopes = [
        ProducerMessage.pass_through(1),
        ProducerMessage.multi([], 2),
        ProducerMessage.single(ProducerRecord(kafka_topic, "only")),
    ]
    results = await (
        Source.from_iterable(envelopes)
        .via(Producer.flexi_flow(producer_settings(kafka_bootstrap)))
        .run_with(Sink.seq(), materializer)
    )
    assert [r.pass_through for r in results] == [1, 2, None]
    assert results[2].metadata.offset == 0  # the first record of the topic: nothing before it
    assert await read_values(kafka_bootstrap, kafka_topic, 1) == [b"only"]


# -- serialization (SerializationSpec) ----------------------------------------------------------


def failing_int(data: bytes | None) -> int:
    """Deserialize ASCII digits; anything else fails."""
    assert data is not None
    return int(data)


async def test_key_deserialization_failure_names_topic_partition_offset(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["a"], key="1")
    await produce_values(kafka_bootstrap, kafka_topic, ["b"], key="x")
    s = settings(kafka_bootstrap).with_property("key_deserializer", failing_int)
    control, done = (
        Consumer.plain_source(s, Subscriptions.assignment((kafka_topic, 0)))
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(DeserializationError) as info:
        await asyncio.wait_for(done, 10)
    message = str(info.value)
    assert kafka_topic in message and "partition 0" in message and "offset 1" in message
    await asyncio.wait_for(control.is_shutdown, 5)


async def test_partitioned_substream_fails_on_a_bad_record(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["1", "oops"])
    s = settings(kafka_bootstrap, unique_group_id()).with_value_deserializer(failing_int)
    control, done = (
        Consumer.plain_partitioned_source(s, Subscriptions.topics(kafka_topic))
        .flat_map_merge(1, lambda pair: pair[1])
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(DeserializationError, match=r"partition 0 offset 1"):
        await asyncio.wait_for(done, 15)
    await asyncio.wait_for(control.is_shutdown, 5)


# -- at-most-once (AtMostOnceSpec) -----------------------------------------------------------------


async def test_at_most_once_each_emitted_record_is_already_committed(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, ["1", "2", "3"])
    committed: list[int | None] = []
    control, probe = (
        Consumer.at_most_once_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    for expected in ("1", "2"):
        assert (await probe.request_next(timeout=10)).value == expected
        committed.append((await committed_offsets(kafka_bootstrap, group, kafka_topic))[0])
    probe.cancel()
    await asyncio.wait_for(control.is_shutdown, 5)
    # As Alpakka's mapAsync(1): a record is committed before it is emitted (the stage may
    # already have committed the next one, which at-most-once allows).
    assert committed[0] is not None and committed[0] >= 1
    assert committed[1] is not None and committed[1] >= 2


# -- committing (CommittingSpec / CommitterSpec) ---------------------------------------------------


async def test_committer_flow_one_done_per_batch_aggregated_per_partition(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await produce_values(kafka_bootstrap, topic, ["a", "b"], partition=0)
    await produce_values(kafka_bootstrap, topic, ["c", "d"], partition=1)
    group = unique_group_id()
    control, probe = (
        Consumer.committable_source(settings(kafka_bootstrap, group), Subscriptions.topics(topic))
        .map(lambda m: m.committable_offset)
        .via(Committer.flow(CommitterSettings(max_batch=4, max_interval=30.0)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    probe.request(2)
    assert await probe.expect_next(timeout=15) is Done  # four offsets: one batch, one Done
    assert await committed_offsets(kafka_bootstrap, group, topic, (0, 1)) == {0: 2, 1: 2}
    await probe.expect_no_message(0.2)
    await control.stop()
    await probe.expect_complete()  # nothing left to commit: no further Done
    await control.shutdown()


async def test_stop_before_any_record_completes_and_drains(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    control = (
        Consumer.committable_source(
            settings(kafka_bootstrap, unique_group_id()), Subscriptions.topics(kafka_topic)
        )
        .map(lambda m: m.committable_offset)
        .to_mat(Committer.sink(CommitterSettings()), DrainingControl)
        .run(materializer)
    )
    assert await asyncio.wait_for(control.drain_and_shutdown(), 10) is Done
    assert await asyncio.wait_for(control.is_shutdown, 5) is Done
