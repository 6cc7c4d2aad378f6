"""connectors.kafka.messages: envelopes, results, committable offsets and batches."""

import asyncio
from collections.abc import Mapping

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from connectors.kafka.messages import (
    CommittableMessage,
    CommittableOffset,
    CommittableOffsetBatch,
    GroupTopicPartition,
    KafkaCommitterRef,
    Message,
    MultiMessage,
    MultiResult,
    MultiResultPart,
    PartitionOffset,
    PassThroughMessage,
    PassThroughResult,
    ProducerMessage,
    ProducerRecord,
    RecordMetadata,
    Result,
)
from connectors.kafka.testkit import committed_offsets


class RecordingCommitter:
    """A committer with the real interface that records what it was asked to commit."""

    def __init__(self, fail: Exception | None = None):
        self.commits: list[dict[TopicPartition, int]] = []
        self.fail = fail

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await asyncio.sleep(0)
        self.commits.append(dict(offsets))
        if self.fail is not None:
            raise self.fail


def offset(committer, partition, value, group="g", topic="t"):
    return CommittableOffset(group, topic, partition, value, committer)


# -- producer side --


def test_producer_record_defaults_and_headers_tuple():
    record = ProducerRecord("t", b"v")
    assert (record.key, record.partition, record.timestamp_ms, record.headers) == (
        None,
        None,
        None,
        (),
    )
    with_headers = ProducerRecord("t", b"v", headers=[("h", b"1")])
    assert with_headers.headers == (("h", b"1"),)
    hash(with_headers)  # frozen and hashable


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"topic": ""}, "non-empty str"), ({"topic": "t", "partition": -1}, "partition must be")],
)
def test_producer_record_validates(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ProducerRecord(value=b"v", **kwargs)


def test_envelopes():
    record = ProducerRecord("t", b"v")
    single = ProducerMessage.single(record, "pt")
    assert isinstance(single, Message)
    assert (single.record, single.pass_through) == (record, "pt")
    assert ProducerMessage.single(record).pass_through is None
    multi = ProducerMessage.multi([record, record], 7)
    assert isinstance(multi, MultiMessage)
    assert multi.records == (record, record) and multi.pass_through == 7
    assert ProducerMessage.multi([]).records == ()
    passed = ProducerMessage.pass_through("x")
    assert isinstance(passed, PassThroughMessage) and passed.pass_through == "x"


def test_envelopes_refuse_non_records():
    with pytest.raises(TypeError, match="expects a ProducerRecord, got tuple"):
        ProducerMessage.single(("t", b"v"))
    with pytest.raises(TypeError, match="expects ProducerRecords, got str"):
        ProducerMessage.multi(["t"])


def test_results_expose_metadata_and_pass_through():
    record = ProducerRecord("t", b"v")
    metadata = RecordMetadata("t", 2, 41, 1000)
    result = Result(metadata, ProducerMessage.single(record, "pt"))
    assert result.pass_through == "pt"
    assert result.offset == 41 and result.record is record
    assert (result.metadata.topic, result.metadata.partition) == ("t", 2)
    assert metadata.topic_partition == TopicPartition("t", 2)
    multi = MultiResult((MultiResultPart(metadata, record),), "m")
    assert multi.parts[0].metadata.offset == 41 and multi.pass_through == "m"
    assert PassThroughResult(5).pass_through == 5


def test_record_metadata_from_aiokafka_shape():
    class Md:  # the attributes aiokafka's RecordMetadata has
        topic, partition, offset, timestamp = "t", 1, 5, -1

    assert RecordMetadata.from_aiokafka(Md()) == RecordMetadata("t", 1, 5, None)


# -- consumer side --


def test_committable_offset_views():
    committer = RecordingCommitter()
    o = offset(committer, 3, 10)
    assert isinstance(committer, KafkaCommitterRef)
    assert o.topic_partition == TopicPartition("t", 3)
    assert o.group_topic_partition == GroupTopicPartition("g", "t", 3)
    assert o.partition_offset == PartitionOffset(GroupTopicPartition("g", "t", 3), 10)
    assert o.batch_size == 1
    assert o == offset(RecordingCommitter(), 3, 10)  # the committer is not compared
    assert "committer" not in repr(o)
    message = CommittableMessage("record", o)
    assert message.committable_offset is o


async def test_committable_offset_commits_the_next_offset():
    committer = RecordingCommitter()
    await offset(committer, 0, 10).commit()
    assert committer.commits == [{TopicPartition("t", 0): 11}]


def test_batch_keeps_highest_offset_per_partition():
    c = RecordingCommitter()
    batch = CommittableOffsetBatch.empty()
    for part, value in [(0, 5), (1, 2), (0, 3), (0, 9), (1, 1)]:
        batch = batch.updated(offset(c, part, value))
    assert batch.offsets() == {
        GroupTopicPartition("g", "t", 0): 9,
        GroupTopicPartition("g", "t", 1): 2,
    }
    assert batch.batch_size == 5
    assert not batch.is_empty


def test_batch_is_immutable():
    c = RecordingCommitter()
    empty = CommittableOffsetBatch.empty()
    one = empty.updated(offset(c, 0, 1))
    two = one.updated(offset(c, 0, 2))
    assert empty.is_empty and empty.batch_size == 0 and empty.offsets() == {}
    assert one.offsets() == {GroupTopicPartition("g", "t", 0): 1}
    assert two.offsets() == {GroupTopicPartition("g", "t", 0): 2}
    one.offsets().clear()
    assert one.offsets() == {GroupTopicPartition("g", "t", 0): 1}


def test_batches_merge_keeping_highest_and_summing_sizes():
    c = RecordingCommitter()
    a = CommittableOffsetBatch.of(offset(c, 0, 7), offset(c, 1, 1))
    b = CommittableOffsetBatch.of(offset(c, 0, 4), offset(c, 1, 8), offset(c, 2, 0))
    merged = a.updated(b)
    assert merged.offsets() == {
        GroupTopicPartition("g", "t", 0): 7,
        GroupTopicPartition("g", "t", 1): 8,
        GroupTopicPartition("g", "t", 2): 0,
    }
    assert merged.batch_size == 5
    assert merged == b.updated(a)


async def test_one_group_from_two_consumers_commits_each_partition_through_its_own():
    """As Alpakka (committers per GroupTopicPartition, akka/alpakka-kafka#942): two
    sources of one group, or a consumer restarted mid-batch; before, the batch refused
    the second committer (and a Committer stage failed the stream)."""
    c1, c2 = RecordingCommitter(), RecordingCommitter()
    batch = CommittableOffsetBatch.of(offset(c1, 0, 1), offset(c2, 1, 4))
    batch = batch.updated(CommittableOffsetBatch.of(offset(c2, 2, 2)))
    await batch.commit()
    assert c1.commits == [{TopicPartition("t", 0): 2}]
    assert c2.commits == [{TopicPartition("t", 1): 5, TopicPartition("t", 2): 3}]


async def test_the_last_committer_of_a_partition_wins():
    old, new = RecordingCommitter(), RecordingCommitter()
    batch = CommittableOffsetBatch.of(offset(old, 0, 5), offset(new, 0, 3))
    assert batch.offsets() == {GroupTopicPartition("g", "t", 0): 5}  # the highest offset
    await batch.commit()
    assert (old.commits, new.commits) == ([], [{TopicPartition("t", 0): 6}])


def test_batch_refuses_other_things():
    with pytest.raises(TypeError, match="got int"):
        CommittableOffsetBatch.empty().updated(5)


async def test_batch_commit_groups_per_committer_and_adds_one():
    c1, c2 = RecordingCommitter(), RecordingCommitter()
    batch = CommittableOffsetBatch.of(
        offset(c1, 0, 5, group="g1"),
        offset(c1, 1, 6, group="g1"),
        offset(c2, 0, 9, group="g2", topic="u"),
        offset(c1, 0, 7, group="g1"),
    )
    await batch.commit()
    assert c1.commits == [{TopicPartition("t", 0): 8, TopicPartition("t", 1): 7}]
    assert c2.commits == [{TopicPartition("u", 0): 10}]


async def test_empty_batch_commit_does_nothing():
    committer = RecordingCommitter()
    empty = CommittableOffsetBatch.empty()
    filled = empty.updated(offset(committer, 0, 5))  # a new batch: ``empty`` stays empty
    assert (empty.is_empty, empty.batch_size, empty.committer_offsets()) == (True, 0, [])
    await empty.commit()
    assert committer.commits == []  # nothing to commit, no committer called
    await filled.commit()
    assert committer.commits == [{TopicPartition("t", 0): 6}]


async def test_batch_commit_raises_a_committer_failure_after_all_ran():
    failing, fine = RecordingCommitter(fail=RuntimeError("boom")), RecordingCommitter()
    batch = CommittableOffsetBatch.of(
        offset(failing, 0, 1, group="a"), offset(fine, 0, 1, group="b")
    )
    with pytest.raises(RuntimeError, match="boom"):
        await batch.commit()
    assert fine.commits == [{TopicPartition("t", 0): 2}]


def test_batch_repr_lists_offsets():
    batch = CommittableOffsetBatch.of(offset(RecordingCommitter(), 0, 3))
    assert repr(batch) == "CommittableOffsetBatch(batch_size=1, offsets={g/t-0: 3})"


class ConsumerCommitter:
    """A KafkaCommitterRef over a real aiokafka consumer, as the consumer source builds it."""

    def __init__(self, consumer: AIOKafkaConsumer):
        self.consumer = consumer

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self.consumer.commit(dict(offsets))


@pytest.mark.kafka
async def test_batch_commit_through_a_real_consumer(kafka_bootstrap, kafka_topic_factory):
    topic = await kafka_topic_factory(partitions=2)
    group = "group-" + topic
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        committer = ConsumerCommitter(consumer)
        batch = CommittableOffsetBatch.of(
            CommittableOffset(group, topic, 0, 4, committer),
            CommittableOffset(group, topic, 1, 0, committer),
            CommittableOffset(group, topic, 0, 2, committer),
        )
        await batch.commit()
    finally:
        await consumer.stop()
    assert await committed_offsets(kafka_bootstrap, group, topic, [0, 1]) == {0: 5, 1: 1}
