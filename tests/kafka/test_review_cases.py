"""Review: cases no other test covered (they pass today; each asserts exact values).

Transactional with-offset-context stages (empty stream, drain with a commit interval
longer than the run, failure in the middle of a flow), committing at stream end and on
revocation with a real consumer, and changelogged stores restoring tombstones after a
checkpoint, empty keys and values, and values larger than a producer batch.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import (
    CommittableOffset,
    Committer,
    CommitterSettings,
    Consumer,
    DrainingControl,
    KafkaCommitError,
    PartitionOffset,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
    Transactional,
)
from connectors.kafka.messages import GroupTopicPartition
from connectors.kafka.state import changelogged
from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from reactive import Done, Keep, Materializer, Sink, Source
from reactive.state import Stores
from tests.kafka.changelog_app import consumer_settings
from tests.kafka.support import eventually, settings
from tests.kafka.test_committer import settings as committer_consumer_settings
from tests.kafka.test_transactional import producer_settings, read_committed_by_markers

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.kafka


# -- Transactional.*_with_offset_context ---------------------------------------------------


async def test_an_empty_context_stream_drains_at_once_and_commits_nothing(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    src, out = await kafka_topic_factory(), await kafka_topic_factory()
    group = unique_group_id()
    control = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, group), Subscriptions.topics(src)
        )
        .map(lambda record: ProducerRecord(out, record.value, partition=0))
        .to_mat(
            Transactional.sink_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid"), 60.0
            ),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: control.metrics()["assigned_partitions"] == 1)
    assert await asyncio.wait_for(control.drain_and_shutdown(), 10) is Done
    assert await committed_offsets(kafka_bootstrap, group, src) == {0: None}
    assert await read_committed_by_markers(kafka_bootstrap, out) == ([], 0)
    # The flow on an empty stream completes with no result (and no transaction).
    flow = Transactional.flow_with_offset_context(
        producer_settings(kafka_bootstrap), unique_group_id("tid")
    )
    results = Source.empty().via(flow.as_flow()).run_with(Sink.seq(), materializer)
    assert await asyncio.wait_for(results, 10) == []


async def test_drain_commits_the_open_transaction_at_once_whatever_the_interval(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    """The commit interval (60 s) never passes: draining completes the source, and the
    sink commits every record and context of both partitions at completion."""
    src, out = await kafka_topic_factory(2), await kafka_topic_factory()
    inputs = {p: [f"p{p}-{i}" for i in range(30)] for p in (0, 1)}
    for p, values in inputs.items():
        await produce_values(kafka_bootstrap, src, values, partition=p)
    group = unique_group_id()
    taken: list[str] = []

    def envelope(record: Any) -> ProducerRecord[Any, Any]:
        taken.append(record.value)
        return ProducerRecord(out, record.value, partition=0)

    control = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, group), Subscriptions.topics(src)
        )
        .map(envelope)
        .to_mat(
            Transactional.sink_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid"), 60.0
            ),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: len(taken) == 60)
    assert await committed_offsets(kafka_bootstrap, group, src, (0, 1)) == {0: None, 1: None}
    started = time.monotonic()
    assert await asyncio.wait_for(control.drain_and_shutdown(), 20) is Done
    assert time.monotonic() - started < 10  # not the 60 s interval
    assert await committed_offsets(kafka_bootstrap, group, src, (0, 1)) == {0: 30, 1: 30}
    visible, total = await read_committed_by_markers(kafka_bootstrap, out)
    assert sorted(v.decode() for v in visible) == sorted(inputs[0] + inputs[1])
    assert total == 60


async def test_a_failure_mid_flow_keeps_the_committed_transactions_and_aborts_the_open_one(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    src, out = await kafka_topic_factory(), await kafka_topic_factory()
    await produce_values(kafka_bootstrap, src, [f"v{i}" for i in range(10)], partition=0)
    group = unique_group_id()
    emitted: list[Any] = []

    async def transform(record: Any) -> ProducerRecord[Any, Any]:
        if record.offset == 5:
            # The interval (0.05 s) passes: records 0-4 commit in their own transaction.
            await wait_for_offset(kafka_bootstrap, group, src, 5)
        if record.offset == 7:
            raise RuntimeError("transform failed")
        return ProducerRecord(out, record.value, partition=0)

    control, done = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, group), Subscriptions.assignment(TopicPartition(src, 0))
        )
        .map_async(1, transform)
        .via(
            Transactional.flow_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid"), 0.05
            )
        )
        .as_source()
        .to_mat(Sink.foreach(emitted.append), Keep.both)
        .run(materializer)
    )
    with pytest.raises(RuntimeError, match="transform failed"):
        await asyncio.wait_for(done, 20)
    await asyncio.wait_for(control.shutdown(), 20)
    # Each result of the committed transaction came out with its context; 5 and 6 were
    # sent in the open transaction, which was aborted.
    assert [(r.message.record.value, ctx.offset) for r, ctx in emitted] == [
        (f"v{i}", i) for i in range(5)
    ]
    assert await committed_offsets(kafka_bootstrap, group, src) == {0: 5}
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    assert visible == [f"v{i}".encode() for i in range(5)]


async def wait_for_offset(bootstrap: str, group: str, topic: str, offset: int) -> None:
    deadline = time.monotonic() + 10
    while (await committed_offsets(bootstrap, group, topic)).get(0) != offset:
        assert time.monotonic() < deadline, f"offset {offset} not committed"
        await asyncio.sleep(0.05)


# -- committing at stream end and on revocation ------------------------------------------


async def test_a_failing_stage_fails_the_sink_only_after_the_processed_offsets_committed(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    """A real group consumer, cancelled by the failure while the committer commits what
    it collected: the offsets before the failing record land, then the sink fails."""
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"v"] * 10)

    def process(message: Any) -> Any:
        if message.record.offset == 6:
            raise ValueError("record 6 is bad")
        return message.committable_offset

    done = (
        Consumer.committable_source(
            committer_consumer_settings(kafka_bootstrap, group), Subscriptions.topics(kafka_topic)
        )
        .map(process)
        .run_with(Committer.sink(CommitterSettings(max_batch=100, max_interval=3600)), materializer)
    )
    with pytest.raises(ValueError, match="record 6 is bad"):
        await asyncio.wait_for(done, 20)
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 6}


async def test_a_revoked_substream_commits_its_last_batch_before_the_partition_moves(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    """Each partition's substream commits only when it completes (max_batch 1000, no
    interval): the revocation completes it, its commit lands before the partitions
    move, and the new member reads none of those records again."""
    topic = await kafka_topic_factory(2)
    group = unique_group_id()
    for p in (0, 1):
        await produce_values(kafka_bootstrap, topic, [f"p{p}-{i}" for i in range(20)], partition=p)
    seen_a: list[tuple[int, int]] = []
    substreams: list[Any] = []

    def offset_of(message: Any) -> Any:
        seen_a.append((message.record.partition, message.record.offset))
        return message.committable_offset

    def run_substream(pair: Any) -> None:
        _, source = pair
        substreams.append(
            source.map(offset_of).run_with(
                Committer.sink(CommitterSettings(max_batch=1000, max_interval=3600)),
                materializer,
            )
        )

    a_control = (
        Consumer.committable_partitioned_source(
            committer_consumer_settings(kafka_bootstrap, group), Subscriptions.topics(topic)
        )
        .to_mat(Sink.foreach(run_substream), Keep.left)
        .run(materializer)
    )
    await eventually(lambda: len(seen_a) == 40)
    seen_b: list[tuple[int, int]] = []
    b_control = (
        Consumer.committable_source(
            committer_consumer_settings(kafka_bootstrap, group), Subscriptions.topics(topic)
        )
        .to_mat(
            Sink.foreach(lambda m: seen_b.append((m.record.partition, m.record.offset))),
            Keep.left,
        )
        .run(materializer)
    )
    try:
        # B was assigned a partition and fetched it up to its end.
        await eventually(lambda: list(b_control.metrics()["lag"].values()) == [0])
        assert seen_b == []
        assert [s.result() for s in substreams[:2]] == [Done, Done]
        assert await committed_offsets(kafka_bootstrap, group, topic, (0, 1)) == {0: 20, 1: 20}
        assert sorted(seen_a) == sorted((p, i) for p in (0, 1) for i in range(20))
    finally:
        await b_control.shutdown()
        await a_control.shutdown()
        await asyncio.gather(*substreams, return_exceptions=True)


# -- changelogged stores ---------------------------------------------------------------------


async def prepared(kv: Any) -> None:
    """The store instance restored (its changelog read), within 10 s."""
    ready = kv.bytes_store.prepare()
    if ready is not None:
        await asyncio.wait_for(ready, 10)


async def acknowledged(kv: Any) -> None:
    """Every write so far acknowledged by the broker, within 10 s."""
    ack = kv.bytes_store.durable()
    if ack is not None:
        await asyncio.wait_for(ack, 10)


class Utf8:
    """A str serde whose empty string is empty bytes (not a tombstone)."""

    def to_bytes(self, obj: str) -> bytes:
        return obj.encode()

    def from_bytes(self, data: bytes) -> str:
        return data.decode()


async def test_a_persistent_store_applies_the_tombstones_written_after_its_checkpoint(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str, tmp_path: Path
) -> None:
    cs = consumer_settings(kafka_bootstrap, kafka_group_id)
    persistent = changelogged(
        Stores.persistent("kv", tmp_path), ProducerSettings(kafka_bootstrap), cs
    )
    tp = TopicPartition(kafka_topic, 0)
    kv = persistent.for_partition(tp).open()
    await prepared(kv)
    for key, value in (("a", 1), ("b", 2), ("c", 3)):
        kv.put(key, value)
    await acknowledged(kv)
    kv.close()
    await persistent.wait_closed()
    assert '"offset": 3' in (tmp_path / "kv.0.checkpoint").read_text()

    # Another instance (in memory, same changelog) deletes and rewrites after it.
    other = changelogged(Stores.in_memory("kv"), ProducerSettings(kafka_bootstrap), cs)
    mem = other.for_partition(tp).open()
    await prepared(mem)
    mem.delete("a")
    mem.put("b", 20)
    mem.delete("c")
    mem.put("c", 30)
    await acknowledged(mem)
    mem.close()
    await other.wait_closed()

    again = persistent.for_partition(tp).open()
    await prepared(again)
    assert dict(again.items()) == {"b": 20, "c": 30}
    metrics = again.bytes_store.metrics()
    assert (metrics["restore_start_offset"], metrics["restored_records"]) == (3, 4)
    again.close()
    await persistent.wait_closed()


async def test_empty_keys_values_and_values_larger_than_a_batch_restore_exactly(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str
) -> None:
    """An empty value is a value (not a tombstone), an empty key a key; a value larger
    than a producer batch (16 KB) and than a default request (1 MB) goes out alone."""
    big = "x" * 1_200_000
    store = changelogged(
        Stores.in_memory("s", key_serde=Utf8(), value_serde=Utf8()),
        ProducerSettings(kafka_bootstrap),
        consumer_settings(kafka_bootstrap, kafka_group_id),
    )
    tp = TopicPartition(kafka_topic, 0)
    kv = store.for_partition(tp).open()
    await prepared(kv)
    kv.put("empty", "")
    kv.put("", "empty key")
    kv.put("big", big)
    kv.put("gone", "soon")
    kv.delete("gone")
    kv.put("after", "a")
    await acknowledged(kv)
    kv.close()
    await store.wait_closed()

    again = store.for_partition(tp).open()
    await prepared(again)
    assert dict(again.items()) == {"": "empty key", "after": "a", "big": big, "empty": ""}
    assert again.bytes_store.metrics()["restored_records"] == 6
    again.close()
    await store.wait_closed()


class GatedCommitter:
    """A ``KafkaCommitterRef`` whose commits wait for ``gate``, then fail with ``error``
    (if any) or are recorded."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.gate = asyncio.Event()
        self.error = error
        self.requested: list[dict[TopicPartition, int]] = []
        self.committed: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Any) -> None:
        self.requested.append(dict(offsets))
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        self.committed.append(dict(offsets))


async def test_the_sink_completes_only_after_its_last_commit_is_acknowledged(
    materializer: Materializer,
) -> None:
    """The sink's future completes once the last batch's commit was acknowledged, and
    fails if that commit fails (send_and_forget: see test_review_defects.py)."""
    settings_ = CommitterSettings(max_batch=3, max_interval=3600)
    tp = TopicPartition("t", 0)
    ok = GatedCommitter()
    done = Source.from_iterable([CommittableOffset("g", "t", 0, n, ok) for n in range(7)]).run_with(
        Committer.sink(settings_), materializer
    )
    await eventually(lambda: len(ok.requested) == 1)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not done.done()  # the first commit (offsets 0-2) is not acknowledged
    ok.gate.set()
    assert await asyncio.wait_for(done, 10) is Done
    assert ok.committed == [{tp: 3}, {tp: 6}, {tp: 7}]

    failing = GatedCommitter(ValueError("refused"))
    failing.gate.set()
    done = Source.from_iterable(
        [CommittableOffset("g", "t", 0, n, failing) for n in range(2)]
    ).run_with(Committer.sink(settings_), materializer)
    with pytest.raises(KafkaCommitError, match="refused"):
        await asyncio.wait_for(done, 10)
    assert failing.requested == [{tp: 2}]


async def test_contexts_out_of_order_in_one_transaction_commit_the_highest(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    """Within one transaction the highest context of a partition is committed, whatever
    their order (Alpakka keeps the last one added)."""
    group = unique_group_id()
    key = GroupTopicPartition(group, kafka_topic, 0)
    pairs: list[tuple[ProducerRecord[Any, Any], PartitionOffset]] = [
        (ProducerRecord(kafka_topic, f"r{o}", partition=0), PartitionOffset(key, o))
        for o in (9, 3, 5)
    ]
    done = Source.from_iterable(pairs).run_with(
        Transactional.sink_with_offset_context(
            producer_settings(kafka_bootstrap), unique_group_id("tid"), 60.0
        ),
        materializer,
    )
    assert await asyncio.wait_for(done, 20) is Done
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 10}
    visible, _ = await read_committed_by_markers(kafka_bootstrap, kafka_topic)
    assert visible == [b"r9", b"r3", b"r5"]
