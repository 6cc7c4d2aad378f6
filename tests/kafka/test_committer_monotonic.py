"""Committed offsets never move backwards (issue 12 item 4).

Offsets reach a committer out of order when the stream reorders records (e.g.
``map_async_unordered``): a committer fed offset 8, then offset 2 in a later batch,
must not commit 3 after 9. Checked against the real broker (the group's committed
offset read with a consumer's ``committed()``) for ``Committer.flow`` / ``Committer.sink``
and ``Producer.committable_sink``, and with a recording committer for the exact calls.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from connectors.kafka import (
    CommittableOffset,
    Committer,
    CommitterSettings,
    Consumer,
    DrainingControl,
    Producer,
    ProducerMessage,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from reactive import Done, Materializer, Sink, Source
from tests.kafka.support import RecordingCommitter, eventually, settings

pytestmark = pytest.mark.kafka

ONE_PER_BATCH = CommitterSettings(max_batch=1, max_interval=3600)


def eight_then_two(messages: list[Any]) -> list[Any]:
    """What a reordering stage can do: offset 8 reaches the committer before offset 2."""
    return [messages[8].committable_offset, messages[2].committable_offset]


async def test_committer_never_commits_below_what_it_committed(
    kafka_bootstrap: str,
    kafka_topic: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"v"] * 10)
    results: list[Any] = []
    control = (
        Consumer.committable_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .grouped(10)
        .map_concat(eight_then_two)
        .via(Committer.flow(ONE_PER_BATCH))
        .to_mat(Sink.foreach(results.append), DrainingControl)
        .run(materializer)
    )
    with caplog.at_level(logging.DEBUG, logger="connectors.kafka"):
        await eventually(lambda: len(results) == 2)  # both batches went through
        assert results == [Done, Done]
        # Offset 2 came after 9 was committed: no request for it reached the broker.
        assert control.metrics()["commits"] == 1
        await control.drain_and_shutdown()
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 9}
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "[Committer.flow]" in message
    assert f"offset 2 of {kafka_topic}-0" in message and "committed up to offset 8" in message
    assert "map_async_unordered" in message
    assert any("1 offset(s) below" in r.getMessage() for r in caplog.records)

    # A restarted consumer of the group resumes after the highest offset committed.
    restarted = await (
        Consumer.plain_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .take(1)
        .run_with(Sink.head(), materializer)
    )
    assert restarted.offset == 9


async def test_committable_sink_never_commits_below_what_it_committed(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"v"] * 10)
    control = (
        Consumer.committable_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .grouped(10)
        .map_concat(eight_then_two)
        .map(ProducerMessage.pass_through)
        .to_mat(
            Producer.committable_sink(ProducerSettings(kafka_bootstrap), ONE_PER_BATCH),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: control.metrics()["commits"] == 1)
    assert await control.drain_and_shutdown() is Done
    assert control.metrics()["commits"] == 1
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 9}


async def test_stale_offsets_are_left_out_per_partition(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    ref = RecordingCommitter()

    def at(partition: int, offset: int) -> CommittableOffset:
        return CommittableOffset("g", "t", partition, offset, ref)

    elements = [
        at(0, 8),
        at(1, 1),  # batch 1: p0 -> 9, p1 -> 2
        at(0, 2),
        at(1, 5),  # batch 2: p0 stale (left out), p1 -> 6
        at(0, 8),
        at(0, 9),  # batch 3: p0 8 already committed, 9 -> 10
        at(0, 3),
        at(1, 0),  # batch 4: both stale: no request at all
    ]
    with caplog.at_level(logging.DEBUG, logger="connectors.kafka"):
        batches = await (
            Source.from_iterable(elements)
            .via(Committer.batch_flow(CommitterSettings(max_batch=2)))
            .run_with(Sink.seq(), materializer)
        )
    t0, t1 = TopicPartition("t", 0), TopicPartition("t", 1)
    assert ref.calls == [{t0: 9, t1: 2}, {t1: 6}, {t0: 10}]
    assert [b.batch_size for b in batches] == [2, 2, 2, 2]
    assert [len(b.offsets()) for b in batches] == [2, 1, 1, 0]
    stale = [r for r in caplog.records if "not committing offset" in r.getMessage()]
    assert [r.levelno for r in stale] == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert "(3 stale offset(s) so far)" in stale[-1].getMessage()


class ReassignedCommitter(RecordingCommitter):
    """A recording committer whose partitions the group assigns again (see
    ``ConsumerCommitter.assignment_of``)."""

    def __init__(self) -> None:
        super().__init__()
        self.assignment = 1

    def assignment_of(self, topic: str, partition: int) -> int:
        return self.assignment


async def test_a_partition_assigned_again_commits_its_redelivered_offsets(
    materializer: Materializer,
) -> None:
    # A commit handed out while the partition was revoked is left out by the consumer; the
    # group re-delivers from its committed offset once the partition is back. The memory
    # of what was committed holds within one assignment, so the re-delivered offsets are
    # committed (before: left out as "already committed", and the group's offset stayed
    # behind a record processed twice).
    ref = ReassignedCommitter()
    seen: list[Any] = []

    def at(offset: int) -> CommittableOffset:
        return CommittableOffset("g", "t", 0, offset, ref)

    def reassign(x: CommittableOffset) -> CommittableOffset:
        seen.append(x.offset)
        if len(seen) == 3:
            ref.assignment = 2  # revoked after offset 5's commit, assigned again
        return x

    await (
        Source.from_iterable([at(4), at(5), at(5), at(6), at(3)])
        .map(reassign)
        .via(Committer.batch_flow(CommitterSettings(max_batch=1)))
        .run_with(Sink.ignore(), materializer)
    )
    t0 = TopicPartition("t", 0)
    # 5 again (a new assignment), 6, and 3 still stale within it.
    assert ref.calls == [{t0: 5}, {t0: 6}, {t0: 6}, {t0: 7}]


async def test_the_consumer_committer_counts_assignments(kafka_bootstrap: str) -> None:
    from connectors.kafka._stages.consumer_commits import ConsumerCommitter

    committer = ConsumerCommitter("c", settings(kafka_bootstrap, "g"), auto=True)
    assert committer.assignment_of("t", 0) == 0
    committer.note_assigned([TopicPartition("t", 0), TopicPartition("t", 1)])
    committer.note_assigned([TopicPartition("t", 0)])
    assert (committer.assignment_of("t", 0), committer.assignment_of("t", 1)) == (2, 1)
