"""Consumer sources against the real broker: plain, committable, at-most-once, partitioned,
back pressure, deserialization errors, rebalancing between group members, control."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerClosedError,
    ConsumerConnectionError,
    DeserializationError,
    DrainingControl,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.testkit import (
    committed_offsets,
    free_port,
    produce_values,
    unique_group_id,
)
from reactive import Attributes, Keep, Materializer, Sink, Supervision
from reactive.testkit import TestSink
from tests.kafka.support import eventually, settings

pytestmark = pytest.mark.kafka


async def test_plain_source_reads_an_assigned_partition(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b", "c"])
    source = Consumer.plain_source(
        settings(kafka_bootstrap), Subscriptions.assignment(TopicPartition(kafka_topic, 0))
    )
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(3)
    records = await probe.expect_next_n(3, timeout=10)
    assert [r.value for r in records] == ["a", "b", "c"]
    assert [r.offset for r in records] == [0, 1, 2]
    assert {(r.topic, r.partition) for r in records} == {(kafka_topic, 0)}
    await control.shutdown()
    await probe.expect_complete()
    await control.is_shutdown


async def test_plain_source_in_a_group_then_stop_completes(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["x", "y"])
    source = Consumer.plain_source(
        settings(kafka_bootstrap, unique_group_id()), Subscriptions.topics(kafka_topic)
    )
    control, done = source.take(2).to_mat(Sink.seq(), Keep.both).run(materializer)
    assert [r.value for r in await done] == ["x", "y"]
    # downstream cancelled (take): the stage shuts the consumer down by itself
    await asyncio.wait_for(control.is_shutdown, 5)


async def test_committable_source_with_committer_sink_commits(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [str(i) for i in range(5)])
    seen: list[str] = []

    def record(msg: Any) -> Any:
        seen.append(msg.record.value)
        return msg.committable_offset

    control = (
        Consumer.committable_source(
            settings(kafka_bootstrap, group), Subscriptions.topics(kafka_topic)
        )
        .map(record)
        .to_mat(Committer.sink(CommitterSettings(max_batch=2)), DrainingControl)
        .run(materializer)
    )
    await eventually(lambda: len(seen) == 5)
    assert await control.drain_and_shutdown() is not None
    assert seen == ["0", "1", "2", "3", "4"]
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 5}


async def test_at_most_once_source_commits_before_emitting(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, ["p", "q", "r"])
    source = Consumer.at_most_once_source(
        settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
    )
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    first = await probe.request_next(timeout=10)
    assert first.value == "p"
    # the offset of the record just emitted is already committed (map_async(1) may have
    # committed the next one too, as in Alpakka: it runs one element ahead)
    assert (await committed_offsets(kafka_bootstrap, group, kafka_topic))[0] in (1, 2)
    probe.request(2)
    assert [r.value for r in await probe.expect_next_n(2, timeout=10)] == ["q", "r"]
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 3}
    await control.shutdown()
    await control.is_shutdown


async def test_broker_refusing_connections_fails_naming_the_address(
    materializer: Materializer,
) -> None:
    dead = f"127.0.0.1:{free_port()}"
    source = Consumer.plain_source(
        settings(dead).with_connect_timeout(5.0), Subscriptions.assignment(("t", 0))
    )
    control, done = source.to_mat(Sink.seq(), Keep.both).run(materializer)
    with pytest.raises(ConsumerConnectionError, match=f"cannot connect to Kafka at {dead}"):
        await asyncio.wait_for(done, 10)
    await control.is_shutdown


async def test_broker_unreachable_fails_within_connect_timeout(materializer: Materializer) -> None:
    # A listening socket that never answers: the TCP connection succeeds (kernel backlog)
    # and aiokafka waits for a reply for request_timeout_ms (40 s), so only the source's
    # connect_timeout ends the start; without it the wait_for below times out instead.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        dead = f"127.0.0.1:{silent.getsockname()[1]}"
        source = Consumer.plain_source(
            settings(dead).with_connect_timeout(1.0), Subscriptions.assignment(("t", 0))
        )
        control, done = source.to_mat(Sink.seq(), Keep.both).run(materializer)
        with pytest.raises(ConsumerConnectionError) as info:
            await asyncio.wait_for(done, 10)
        assert isinstance(info.value.__cause__, TimeoutError)
        assert f"no Kafka broker answered at {dead} within connect_timeout=1.0 s" in str(info.value)
        assert "Consumer.plain_source" in str(info.value)
        await control.is_shutdown


async def test_deserialization_error_names_topic_partition_offset(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, [b"ok", b"\xff\xfe", b"after"])
    source = Consumer.plain_source(
        settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0))
    )
    control, done = source.to_mat(Sink.seq(), Keep.both).run(materializer)
    with pytest.raises(DeserializationError) as info:
        await done
    message = str(info.value)
    assert kafka_topic in message
    assert "partition 0" in message
    assert "offset 1" in message
    assert "UnicodeDecodeError" in message
    assert isinstance(info.value.__cause__, UnicodeDecodeError)
    await control.is_shutdown


async def test_deserialization_error_resumed_skips_and_counts(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, [b"ok", b"\xff\xfe", b"after"])
    source = Consumer.plain_source(
        settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0))
    ).with_attributes(Attributes.supervision_strategy(lambda exc: Supervision.resume))
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(2)
    assert [r.value for r in await probe.expect_next_n(2, timeout=10)] == ["ok", "after"]
    metrics = control.metrics()
    assert metrics["records_skipped"] == 1
    assert metrics["records_emitted"] == 2
    await control.shutdown()
    await control.is_shutdown


async def test_silent_broker_fails_within_connect_timeout(materializer: Materializer) -> None:
    # A port that accepts connections (the kernel's backlog) but never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        source = Consumer.plain_source(
            settings(address).with_connect_timeout(0.5), Subscriptions.assignment(("t", 0))
        )
        control, done = source.to_mat(Sink.seq(), Keep.both).run(materializer)
        with pytest.raises(ConsumerConnectionError, match="within connect_timeout=0.5 s"):
            await asyncio.wait_for(done, 10)
        await control.is_shutdown


async def produce_many(bootstrap: str, topic: str, n: int) -> None:
    """Write ``n`` small records to partition 0 quickly: whole batches at a time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks=1, max_batch_size=1 << 20)
    await producer.start()
    try:
        futures = []
        i = 0
        while i < n:
            batch = producer.create_batch()
            while i < n and batch.append(key=None, value=b"%d" % i, timestamp=None) is not None:
                i += 1
            batch.close()
            futures.append(await producer.send_batch(batch, topic, partition=0))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def test_back_pressure_pauses_at_max_buffered_records(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_many(kafka_bootstrap, kafka_topic, 100_000)
    bound = 200
    source = Consumer.plain_source(
        settings(kafka_bootstrap).with_max_buffered_records(bound).with_value_deserializer(None),
        Subscriptions.assignment((kafka_topic, 0)),
    )
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(10)
    assert [r.offset for r in await probe.expect_next_n(10, timeout=10)] == list(range(10))
    # downstream stops pulling: the buffer fills up to the bound, then the partition pauses
    await eventually(lambda: control.metrics()["buffered_records"] == bound)
    await eventually(lambda: control.metrics()["paused_partitions"] == 1)
    for _ in range(5):
        await asyncio.sleep(0.1)
        metrics = control.metrics()
        assert metrics["buffered_records"] == bound
        assert metrics["records_fetched"] == 10 + bound  # nothing fetched beyond the bound
        assert metrics["paused_partitions"] == 1
    assert metrics["lag"][TopicPartition(kafka_topic, 0)] == 100_000 - 10
    # demand again: emission continues in order and the buffer refills to the bound
    probe.request(500)
    records = await probe.expect_next_n(500, timeout=10)
    assert [r.offset for r in records] == list(range(10, 510))
    await eventually(lambda: control.metrics()["buffered_records"] == bound)
    assert control.metrics()["records_fetched"] == 510 + bound
    await control.shutdown()
    await control.is_shutdown


async def test_partitioned_source_one_substream_per_partition(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await produce_values(kafka_bootstrap, topic, ["a0", "a1", "a2"], partition=0)
    await produce_values(kafka_bootstrap, topic, ["b0", "b1"], partition=1)
    source = Consumer.plain_partitioned_source(
        settings(kafka_bootstrap, unique_group_id()), Subscriptions.topics(topic)
    )
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(2)
    pairs = await probe.expect_next_n(2, timeout=10)
    assert sorted(tp.partition for tp, _ in pairs) == [0, 1]
    assert all(tp.topic == topic for tp, _ in pairs)
    sources = {tp.partition: src for tp, src in pairs}
    first = await sources[0].take(2).run_with(Sink.seq(), materializer)
    assert [r.value for r in first] == ["a0", "a1"]
    # a substream cancelled while its partition is still assigned is replaced by a new
    # one that continues where it stopped
    probe.request(1)
    tp, again = (await probe.expect_next_n(1, timeout=10))[0]
    assert tp.partition == 0
    rest = again.run_with(Sink.seq(), materializer)
    second = sources[1].run_with(Sink.seq(), materializer)
    await eventually(lambda: control.metrics()["records_emitted"] == 5)
    await control.stop()  # completes the outer source and every substream
    assert [r.value for r in await rest] == ["a2"]
    assert [r.value for r in await second] == ["b0", "b1"]
    await probe.expect_complete()
    await control.shutdown()
    await control.is_shutdown


async def test_committable_partitioned_source_commits_per_partition(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    group = unique_group_id()
    await produce_values(kafka_bootstrap, topic, ["a0", "a1"], partition=0)
    await produce_values(kafka_bootstrap, topic, ["b0", "b1", "b2"], partition=1)
    source = Consumer.committable_partitioned_source(
        settings(kafka_bootstrap, group), Subscriptions.topics(topic)
    )
    control = (
        source.flat_map_merge(2, lambda pair: pair[1].map(lambda m: m.committable_offset))
        .to_mat(Committer.sink(CommitterSettings(max_batch=1)), DrainingControl)
        .run(materializer)
    )
    await eventually(lambda: control.metrics()["commits"] >= 2)
    await eventually(lambda: control.metrics()["records_emitted"] == 5)
    await control.drain_and_shutdown()
    assert await committed_offsets(kafka_bootstrap, group, topic, (0, 1)) == {0: 2, 1: 3}


class RecordingListener:
    """A rebalance listener that remembers what it was told."""

    def __init__(self) -> None:
        self.assigned: list[frozenset[TopicPartition]] = []
        self.revoked: list[frozenset[TopicPartition]] = []

    async def on_partitions_assigned(self, tps: frozenset[TopicPartition]) -> None:
        self.assigned.append(tps)

    def on_partitions_revoked(self, tps: frozenset[TopicPartition]) -> None:
        self.revoked.append(tps)


async def test_two_members_share_partitions_and_hand_over_without_loss(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=4)
    group = unique_group_id()
    consumer_settings = settings(kafka_bootstrap, group)
    seen: dict[str, list[str]] = {"a": [], "b": []}
    listener = RecordingListener()

    def run_member(name: str, subscription: Any) -> DrainingControl[Any]:
        def process(msg: Any) -> Any:
            seen[name].append(msg.record.value)
            return msg.committable_offset

        return (
            Consumer.committable_source(consumer_settings, subscription)
            .map(process)
            .to_mat(
                Committer.sink(CommitterSettings(max_batch=5, max_interval=0.05)), DrainingControl
            )
            .run(materializer)
        )

    async def produce(round_: int) -> set[str]:
        values = set()
        for p in range(4):
            batch = [f"r{round_}-p{p}-{i}" for i in range(5)]
            await produce_values(kafka_bootstrap, topic, batch, partition=p)
            values |= set(batch)
        return values

    def consumed() -> set[str]:
        return set(seen["a"]) | set(seen["b"])

    expected = await produce(1)
    a = run_member("a", Subscriptions.topics(topic).with_rebalance_listener(listener))
    await eventually(lambda: consumed() >= expected)
    assert a.metrics()["assigned_partitions"] == 4
    assert listener.assigned and TopicPartition(topic, 0) in listener.assigned[-1]

    b = run_member("b", Subscriptions.topics(topic))
    await eventually(
        lambda: (
            a.metrics()["assigned_partitions"] > 0
            and b.metrics()["assigned_partitions"] > 0
            and a.metrics()["assigned_partitions"] + b.metrics()["assigned_partitions"] == 4
        )
    )
    assert listener.revoked  # a gave partitions up
    expected |= await produce(2)
    await eventually(lambda: consumed() >= expected)

    # stopping a hands its partitions to b; records produced meanwhile are not lost
    expected |= await produce(3)
    await a.drain_and_shutdown()
    await eventually(lambda: b.metrics()["assigned_partitions"] == 4)
    expected |= await produce(4)
    await eventually(lambda: consumed() >= expected)
    assert consumed() == expected
    await b.drain_and_shutdown()


async def test_partition_substreams_complete_when_revoked(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    group = unique_group_id()
    source = Consumer.plain_partitioned_source(
        settings(kafka_bootstrap, group), Subscriptions.topics(topic)
    )
    a, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    probe.request(10)
    first = await probe.expect_next_n(2, timeout=10)
    substreams = [src.run_with(Sink.seq(), materializer) for _, src in first]
    # a second member joins: the group rebalances and a's substreams complete
    b, b_done = (
        Consumer.plain_source(settings(kafka_bootstrap, group), Subscriptions.topics(topic))
        .to_mat(Sink.ignore(), Keep.both)
        .run(materializer)
    )
    for done in substreams:
        assert await asyncio.wait_for(done, 10) == []
    # a gets its share again as a new pair
    (tp, _again) = (await probe.expect_next_n(1, timeout=10))[0]
    assert tp.topic == topic
    await eventually(lambda: b.metrics()["assigned_partitions"] == 1)
    await a.shutdown()
    # The join may take two rebalances (the embedded broker sometimes fails the follower's
    # first SyncGroup), giving a one more pair before the shutdown completes its stream.
    rest = await probe.to_list()
    assert len(rest) <= 2 and all(tp.topic == topic for tp, _ in rest), rest
    await b.shutdown()
    await b_done


async def test_materializer_shutdown_closes_the_consumer(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["one"])
    mat = Materializer(name="short-lived")
    control, probe = (
        Consumer.plain_source(settings(kafka_bootstrap), Subscriptions.assignment((kafka_topic, 0)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(mat)
    )
    assert (await probe.request_next(timeout=10)).value == "one"
    await mat.shutdown()
    await asyncio.wait_for(control.is_shutdown, 5)
    assert mat.running_tasks == 0
    await control.shutdown()  # after the fact: returns at once


async def test_stop_completes_but_keeps_serving_commits(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, ["m1", "m2"])
    control, probe = (
        Consumer.committable_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    probe.request(2)
    messages = await probe.expect_next_n(2, timeout=10)
    await control.stop()
    await probe.expect_complete()
    await messages[1].committable_offset.commit()  # the consumer still serves commits
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 2}
    await control.shutdown()
    with pytest.raises(ConsumerClosedError, match="shut down"):
        await messages[0].committable_offset.commit()


async def test_drain_and_shutdown_raises_the_stream_failure(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["bad"])

    def explode(msg: Any) -> Any:
        raise ValueError(f"cannot process {msg.record.value}")

    control = (
        Consumer.committable_source(
            settings(kafka_bootstrap, unique_group_id()), Subscriptions.assignment((kafka_topic, 0))
        )
        .map(explode)
        .to_mat(Committer.sink(CommitterSettings()), DrainingControl)
        .run(materializer)
    )
    await eventually(lambda: control.stream_completion.done())  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="cannot process bad"):
        await control.drain_and_shutdown()
    await asyncio.wait_for(control.is_shutdown, 5)


@pytest.mark.parametrize("method", ["on_partitions_assigned", "on_partitions_revoked"])
async def test_a_rebalance_listener_that_raises_fails_the_source(
    kafka_bootstrap: str,
    kafka_topic: str,
    kafka_group_id: str,
    materializer: Materializer,
    method: str,
) -> None:
    """As Kafka's ``poll()`` throws what a listener threw (and Alpakka's consumer then
    stops): the source fails with the listener's exception, noted, and takes no record
    of the assignment the listener failed to prepare. Before, the exception was only
    logged and the records processed as if the listener had succeeded."""
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b"])

    class Listener:
        def on_partitions_revoked(self, tps: frozenset[TopicPartition]) -> None:
            if method == "on_partitions_revoked":  # (the first join revokes nothing)
                raise RuntimeError("revoke failed")

        async def on_partitions_assigned(self, tps: frozenset[TopicPartition]) -> None:
            if method == "on_partitions_assigned":
                raise RuntimeError("restore failed")

    subscription = Subscriptions.topics(kafka_topic).with_rebalance_listener(Listener())
    control, done = (
        Consumer.plain_source(settings(kafka_bootstrap, kafka_group_id), subscription)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(RuntimeError, match="failed") as info:
        await asyncio.wait_for(done, 30)
    assert f"raised by the rebalance listener's {method} (stage [" in info.value.__notes__[0]
    await asyncio.wait_for(control.is_shutdown, 10)


async def test_draining_control_of_a_sink_without_its_completion_says_why(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    from reactive import Flow

    source = Consumer.committable_source(
        settings(kafka_bootstrap, unique_group_id()), Subscriptions.topics(kafka_topic)
    )
    # The flow's NotUsed, not the committer's completion (Akka would not compile it).
    sink = Flow().map(lambda m: m.committable_offset).to(Committer.sink(CommitterSettings()))
    with pytest.raises(TypeError, match=r"needs the stream's completion.*got NotUsed.*Keep.right"):
        source.to_mat(sink, DrainingControl).run(materializer)


async def test_no_committed_offset_with_reset_none_says_what_to_do(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    from aiokafka.errors import NoOffsetForPartitionError

    from connectors.kafka import NoCommittedOffsetError

    await produce_values(kafka_bootstrap, kafka_topic, ["a"])
    consumer = settings(kafka_bootstrap, unique_group_id()).with_auto_offset_reset("none")
    _, done = (
        Consumer.plain_source(consumer, Subscriptions.assignment(TopicPartition(kafka_topic, 0)))
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(NoCommittedOffsetError, match=rf"{kafka_topic}-0 .*auto_offset_reset") as e:
        await asyncio.wait_for(done, 15)
    assert isinstance(e.value, NoOffsetForPartitionError)  # code written against aiokafka
    assert e.value.partitions == (TopicPartition(kafka_topic, 0),)
