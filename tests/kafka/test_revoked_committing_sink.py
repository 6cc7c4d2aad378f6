"""Duplicates on a clean rebalance through ``Producer.committable_sink``.

Two members run the same consume-transform-produce service (``committable_source`` ->
``Producer.committable_sink``). The first member has read every record, its producer has
written (and the broker acknowledged) every one of them, and the sink still holds their
offsets (its batch is not full and ``max_interval`` has not passed) when the second joins.
aiokafka rebalances eagerly: every partition is revoked, and each partition's next owner
reads from the group's committed offset.

Before, the offsets held by the sink were never committed before the partitions were
handed over: every record the first member had produced was read (and produced) again.
Now the sink, as the ``Committer`` stages do, commits at the revocation the offsets it
holds of the revoked partitions (only those whose records were acknowledged), and the
consumer waits for that commit before the partitions move: none of the records
acknowledged before the revocation is read twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import (
    CommittableOffset,
    CommitterSettings,
    Consumer,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.testkit import committed_offsets, read_values
from reactive import Done, Keep, Source
from tests.kafka.support import RebalanceMember, eventually, produce_per_partition, settings

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from reactive import Materializer

pytestmark = pytest.mark.kafka

PARTITIONS = 4
PER_PARTITION = 100
#: The sink holds every offset until the rebalance (never full, never due).
HOLDING = CommitterSettings(max_batch=100_000, max_interval=60.0)


async def _produce(bootstrap: str, topic: str, tag: str) -> None:
    await produce_per_partition(bootstrap, topic, tag, PARTITIONS, PER_PARTITION)


class _Member(RebalanceMember):
    """One instance of the service: what it read, and what it was assigned."""

    def run(
        self, bootstrap: str, source: str, sink: str, group: str, materializer: Materializer
    ) -> Any:
        def produce(msg: Any) -> Any:
            self.seen.append(msg.record.value)
            return ProducerMessage.single(
                ProducerRecord(sink, msg.record.value), msg.committable_offset
            )

        subscription = Subscriptions.topics(source).with_rebalance_listener(self)
        producer = ProducerSettings(bootstrap, value_serializer=lambda v: v.encode())
        return (
            Consumer.committable_source(settings(bootstrap, group), subscription)
            .map(produce)
            .to_mat(Producer.committable_sink(producer, HOLDING), Keep.left)
            .run(materializer)
        )


async def test_a_member_joining_reads_no_acknowledged_record_twice(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = await kafka_topic_factory(partitions=PARTITIONS, prefix="revoked-csink-in")
    sink = await kafka_topic_factory(partitions=1, prefix="revoked-csink-out")
    await _produce(kafka_bootstrap, source, "a")
    first, second = _Member("first"), _Member("second")
    control_1 = first.run(kafka_bootstrap, source, sink, kafka_group_id, materializer)
    control_2 = None
    try:
        await eventually(lambda: len(first.seen) == PARTITIONS * PER_PARTITION)
        # Every record the first member read was written: the broker acknowledged it.
        acknowledged = {
            v.decode()
            for v in await read_values(kafka_bootstrap, sink, PARTITIONS * PER_PARTITION)
            if v is not None
        }
        assert acknowledged == set(first.seen)
        await asyncio.sleep(0.2)  # the sink took the acknowledgements in
        control_2 = second.run(kafka_bootstrap, source, sink, kafka_group_id, materializer)
        # The group settled: the partitions are split between the two.
        await eventually(
            lambda: (
                first.revocations >= 1
                and second.assigned
                and len(first.assigned) + len(second.assigned) == PARTITIONS
            )
        )
        # New records after the rebalance: once each is seen, any record read again
        # (before it, in its partition) was seen too.
        await _produce(kafka_bootstrap, source, "b")
        total = 2 * PARTITIONS * PER_PARTITION
        await eventually(lambda: len(set(first.seen) | set(second.seen)) == total)
        await asyncio.sleep(0.3)
        counts = Counter(first.seen + second.seen)
        duplicates = sum(counts[v] - 1 for v in acknowledged)
        assert duplicates == 0, (
            f"{duplicates} record(s) acknowledged before the revocation read twice on a "
            f"clean rebalance (first member read {len(first.seen)}, second "
            f"{len(second.seen)})"
        )
        assert not [r for r in caplog.records if "stale offset" in r.getMessage()]
        assert len(second.seen) == PER_PARTITION * len(second.assigned)
    finally:
        with caplog.at_level(logging.ERROR):
            for control in (control_1, control_2):
                if control is not None:
                    await asyncio.wait_for(control.shutdown(), 10)
    # Every offset the first member read before the rebalance was committed then.
    committed = await committed_offsets(
        kafka_bootstrap, kafka_group_id, source, partitions=range(PARTITIONS)
    )
    assert all(o is not None and o >= PER_PARTITION for o in committed.values()), committed


SRC = TopicPartition("src", 0)


class _GatedProducer(AIOKafkaProducer):
    """Records for ``slow`` are handed to the broker only once ``gate`` is set: they and
    every record behind them stay in flight."""

    def __init__(self, slow: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slow = slow
        self.gate = asyncio.Event()

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> Any:
        if topic == self.slow:
            await self.gate.wait()
        return await super().send_batch(batch, topic, partition=partition)


class _RevokingCommitter:
    """A ``KafkaCommitterRef`` recording its commits, with the consumer's revocation
    hooks (``ConsumerCommitter.on_revoke``)."""

    def __init__(self, gate: asyncio.Event | None = None) -> None:
        self.committed: list[dict[TopicPartition, int]] = []
        self.hooks: dict[object, Callable[[frozenset[TopicPartition]], Any]] = {}
        #: When given, the first commit is answered only once it is set.
        self.gate = gate

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.committed.append(dict(offsets))

    def on_revoke(
        self, owner: object, hook: Callable[[frozenset[TopicPartition]], Any] | None
    ) -> None:
        if hook is None:
            self.hooks.pop(owner, None)
        else:
            self.hooks[owner] = hook


async def test_at_revocation_only_acknowledged_offsets_are_committed(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    fast = await kafka_topic_factory(prefix="revoked-csink-fast")
    slow = await kafka_topic_factory(prefix="revoked-csink-slow")
    ref = _RevokingCommitter()

    def envelope(topic: str, i: int) -> Any:
        return ProducerMessage.single(
            ProducerRecord(topic, b"v%d" % i), CommittableOffset("g", "src", 0, i, ref)
        )

    producer = _GatedProducer(slow, bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        # Offsets 0-4 written; 5 in flight (its send waits for the gate); 6-7 behind it.
        envelopes = [envelope(fast, i) for i in range(5)]
        envelopes += [envelope(slow, 5), envelope(fast, 6), envelope(fast, 7)]
        done = Source.from_iterable(envelopes).run_with(
            Producer.committable_sink(
                ProducerSettings(kafka_bootstrap).with_producer(producer), HOLDING
            ),
            materializer,
        )
        assert len(await read_values(kafka_bootstrap, fast, 5)) == 5
        await eventually(lambda: bool(ref.hooks))  # the sink registered with the consumer
        await asyncio.sleep(0.2)  # the sink took the acknowledgements in
        assert ref.committed == []  # held: the batch is not full, max_interval not passed
        (revoking,) = ref.hooks.values()
        await asyncio.wait_for(revoking(frozenset({SRC})), 5)
        # Committed before the revocation returned: up to the last acknowledged record,
        # not the one in flight nor those behind it (they will be read again).
        assert ref.committed == [{SRC: 5}]
        producer.gate.set()
        assert await asyncio.wait_for(done, 20) is Done
        assert ref.committed == [{SRC: 5}, {SRC: 8}]
        assert ref.hooks == {}  # the stage stopped: its hook is gone
    finally:
        producer.gate.set()  # nothing left waiting if an assertion failed
        await producer.stop()


async def test_at_revocation_offsets_behind_a_full_batch_are_committed_too(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    gate = asyncio.Event()
    ref = _RevokingCommitter(gate)
    envelopes: list[Any] = [
        ProducerMessage.single(
            ProducerRecord(kafka_topic, b"v%d" % i), CommittableOffset("g", "src", 0, i, ref)
        )
        for i in range(6)
    ]
    # Offsets 0-1 fill a batch whose commit is not answered (one commit at a time); 2-3
    # fill the next one, which waits for the slot; 4-5 wait behind it.
    settings_ = CommitterSettings(max_batch=2, max_interval=60.0, parallelism=1)
    done = Source.from_iterable(envelopes).run_with(
        Producer.committable_sink(ProducerSettings(kafka_bootstrap), settings_), materializer
    )
    try:
        assert len(await read_values(kafka_bootstrap, kafka_topic, 6)) == 6
        await eventually(lambda: bool(ref.hooks))
        await asyncio.sleep(0.2)  # the sink took the acknowledgements in
        (revoking,) = ref.hooks.values()
        revoked = asyncio.ensure_future(revoking(frozenset({SRC})))
        await asyncio.sleep(0.2)
        assert not revoked.done()  # waits for the commits, the one in flight first
        gate.set()
        await asyncio.wait_for(revoked, 5)
        # Every acknowledged offset was committed before the revocation returned.
        assert ref.committed == [{SRC: 2}, {SRC: 6}]
        assert await asyncio.wait_for(done, 20) is Done
        assert ref.committed == [{SRC: 2}, {SRC: 6}]
    finally:
        gate.set()
