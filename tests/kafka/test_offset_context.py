"""Consumer.source_with_offset_context, Committer.sink_with_offset_context /
flow_with_offset_context and Producer.flow_with_context against the real broker.

Committed offsets are read with a consumer's ``committed()`` (``committed_offsets``): the
embedded broker's admin API cannot list group offsets."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors.kafka import (
    CommittableOffset,
    CommittableOffsetBatch,
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    DrainingControl,
    PassThroughResult,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Result,
    Subscriptions,
)
from connectors.kafka.serde import str_serializer
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    committed_offsets,
    produce_values,
    read_values,
    unique_group_id,
)
from reactive import Keep, Materializer, NotUsed, Sink, Source, SourceWithContext

pytestmark = pytest.mark.kafka


def consumer_settings(bootstrap: str, group: str) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap,
        group,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=0.2,
    )


def producer_settings(bootstrap: str) -> ProducerSettings:
    return ProducerSettings(bootstrap, value_serializer=str_serializer)


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def test_source_with_offset_context_filter_map_then_commit_the_contexts(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [f"v{i}" for i in range(10)])
    processed: list[tuple[str, int]] = []

    def process(value: str) -> str:
        return value.upper()

    source = Consumer.source_with_offset_context(
        consumer_settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
    )
    assert isinstance(source, SourceWithContext)
    control = (
        source.map(lambda rec: rec.value.decode())
        # the last two records are filtered out: their offsets go with them
        .filter(lambda v: int(v[1:]) < 8)
        .map(process)
        .as_source()
        .map(lambda pair: processed.append((pair[0], pair[1].offset)) or pair)
        .to_mat(
            Committer.sink_with_offset_context(CommitterSettings(max_interval=3600)),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: control.metrics()["records_emitted"] == 10)
    await control.drain_and_shutdown()
    # each element kept its own record's offset as its context, in order
    assert processed == [(f"V{i}", i) for i in range(8)]
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 8}


async def test_grouped_contexts_are_committed(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    # grouped keeps the offsets of a group as its context (a list): the committer takes
    # the list (Alpakka needs a map_context to a batch; it was refused by type here).
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [f"v{i}" for i in range(7)])
    groups: list[Any] = []
    control = (
        Consumer.source_with_offset_context(
            consumer_settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .grouped(3)
        .map(lambda records: groups.append(len(records)) or len(records))
        .to_mat(
            Committer.sink_with_offset_context(CommitterSettings(max_interval=3600)),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: groups == [3, 3])
    await control.drain_and_shutdown()  # completes the source: the last group goes out
    assert groups == [3, 3, 1]
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 7}


async def test_offset_contexts_are_committable_offsets_of_their_records(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b", "c"])
    control, pairs = (
        Consumer.source_with_offset_context(
            consumer_settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .grouped(3)
        .as_source()
        .take(1)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    [(records, offsets)] = await pairs
    await control.is_shutdown
    assert [r.value for r in records] == [b"a", b"b", b"c"]
    assert all(isinstance(o, CommittableOffset) for o in offsets)
    assert [(o.topic, o.partition, o.offset, o.group_id) for o in offsets] == [
        (kafka_topic, 0, i, group) for i in range(3)
    ]
    # nothing was committed by merely consuming
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: None}


async def test_flow_with_offset_context_emits_the_committed_batches(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, ["x"] * 6)
    control, out = (
        Consumer.source_with_offset_context(
            consumer_settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .via(Committer.flow_with_offset_context(CommitterSettings(max_batch=3, max_interval=3600)))
        .as_source()
        .take(2)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    results = await out
    await control.is_shutdown
    assert [element for element, _ in results] == [NotUsed, NotUsed]
    batches = [batch for _, batch in results]
    assert all(isinstance(b, CommittableOffsetBatch) for b in batches)
    assert [b.batch_size for b in batches] == [3, 3]
    # wait_for_ack: a batch is emitted once its commit was acknowledged
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 6}


async def test_producer_flow_with_context_carries_the_context_to_the_result(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    envelopes = (
        Source.from_iterable(range(5))
        .as_source_with_context(lambda i: f"ctx{i}")
        .map(
            lambda i: (
                ProducerMessage.single(ProducerRecord(kafka_topic, f"v{i}"), "ignored")
                if i != 3
                else ProducerMessage.pass_through(None)
            )
        )
    )
    out = await envelopes.via(
        Producer.flow_with_context(producer_settings(kafka_bootstrap))
    ).run_with(Sink.seq(), materializer)
    assert [ctx for _, ctx in out] == [f"ctx{i}" for i in range(5)]
    results = [r for r, _ in out]
    assert [type(r) for r in results] == [Result, Result, Result, PassThroughResult, Result]
    # the context replaced the envelope's own pass-through
    assert [r.pass_through for r in results] == [f"ctx{i}" for i in range(5)]
    assert [r.metadata.offset for r in results if isinstance(r, Result)] == [0, 1, 2, 3]
    assert await read_values(kafka_bootstrap, kafka_topic, 4) == [b"v0", b"v1", b"v2", b"v4"]


async def test_consume_produce_commit_with_contexts(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    source_topic = await kafka_topic_factory(prefix="ctx-in")
    target_topic = await kafka_topic_factory(prefix="ctx-out")
    group = unique_group_id()
    await produce_values(kafka_bootstrap, source_topic, ["a", "b", "c", "d"])
    control = (
        Consumer.source_with_offset_context(
            consumer_settings(kafka_bootstrap, group), Subscriptions.assignment((source_topic, 0))
        )
        .map(
            lambda rec: ProducerMessage.multi(
                [ProducerRecord(target_topic, rec.value.decode() * n) for n in (1, 2)]
            )
        )
        .via(Producer.flow_with_context(producer_settings(kafka_bootstrap)))
        .to_mat(
            Committer.sink_with_offset_context(CommitterSettings(max_interval=3600)),
            DrainingControl,
        )
        .run(materializer)
    )
    values = await read_values(kafka_bootstrap, target_topic, 8)
    assert values == [b"a", b"aa", b"b", b"bb", b"c", b"cc", b"d", b"dd"]
    await control.drain_and_shutdown()
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 4}


async def test_producer_flow_with_context_rejects_what_is_not_an_envelope(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    flow = Producer.flow_with_context(producer_settings(kafka_bootstrap))
    source = SourceWithContext.from_tuples(Source.single(("not an envelope", 1)))
    with pytest.raises(TypeError, match="flow_with_context"):
        await source.via(flow).run_with(Sink.seq(), materializer)
