"""Duplicates on a clean rebalance (a second member joins, none crashes).

Two members run the same committable service (``committable_source`` -> ``Committer.sink``).
The first member has read every record, and its committer still holds their offsets (its
batch is not full and ``max_interval`` has not passed) when the second joins. aiokafka
rebalances eagerly: every partition is revoked, and each partition's next owner (the
second member, or the first one again) reads from the group's committed offset.

Before, the offsets held by the committer were never committed before the partitions were
handed over: every record the first member had emitted was read again (by the second
member, or by itself), about the whole topic, and the committer then logged "stale offset"
warnings for the records it read twice. Now the consumer stage, at revocation, has its
committers commit the offsets they hold of the revoked partitions, and waits for the
commits (up to ``commit_timeout``) before the partitions move: no record is read twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import Committer, CommitterSettings, Consumer, Subscriptions
from connectors.kafka.testkit import committed_offsets
from reactive import Keep
from tests.kafka.support import RebalanceMember, eventually, produce_per_partition, settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka

PARTITIONS = 4
PER_PARTITION = 100
#: The committer holds every offset until the rebalance (never full, never due).
HOLDING = CommitterSettings(max_batch=100_000, max_interval=60.0)


async def _produce(bootstrap: str, topic: str, tag: str) -> None:
    await produce_per_partition(bootstrap, topic, tag, PARTITIONS, PER_PARTITION)


class _Member(RebalanceMember):
    """One instance of the service: what it read, and what it was assigned."""

    def run(self, bootstrap: str, topic: str, group: str, materializer: Materializer) -> Any:
        def seen(msg: Any) -> Any:
            self.seen.append(msg.record.value)
            return msg.committable_offset

        subscription = Subscriptions.topics(topic).with_rebalance_listener(self)
        return (
            Consumer.committable_source(settings(bootstrap, group), subscription)
            .map(seen)
            .to_mat(Committer.sink(HOLDING), Keep.left)
            .run(materializer)
        )


async def test_a_member_joining_reads_no_record_twice(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = await kafka_topic_factory(partitions=PARTITIONS, prefix="revoked-dups")
    await _produce(kafka_bootstrap, topic, "a")
    first, second = _Member("first"), _Member("second")
    control_1 = first.run(kafka_bootstrap, topic, kafka_group_id, materializer)
    control_2 = None
    try:
        await eventually(lambda: len(first.seen) == PARTITIONS * PER_PARTITION)
        control_2 = second.run(kafka_bootstrap, topic, kafka_group_id, materializer)
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
        await _produce(kafka_bootstrap, topic, "b")
        total = 2 * PARTITIONS * PER_PARTITION
        await eventually(lambda: len(set(first.seen) | set(second.seen)) == total)
        await asyncio.sleep(0.3)
        counts = Counter(first.seen + second.seen)
        duplicates = sum(n - 1 for n in counts.values())
        assert duplicates == 0, (
            f"{duplicates} record(s) read twice on a clean rebalance "
            f"(first member read {len(first.seen)}, second {len(second.seen)})"
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
        kafka_bootstrap, kafka_group_id, topic, partitions=range(PARTITIONS)
    )
    assert all(o is not None and o >= PER_PARTITION for o in committed.values()), committed
