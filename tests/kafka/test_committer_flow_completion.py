"""``Committer.flow`` / ``Committer.batch_flow`` emit every result before completing.

When downstream is slower than the commits, results wait for demand (``emit``). The flow
completes once upstream completed and the last batch was committed, but only after those
results went out: completing from the ``and_then`` of the first one dropped the rest
(with ``parallelism`` > 1 or ``delivery="send_and_forget"``, where several can wait).

Demand is held back with a probe until every commit was acknowledged and the stage took
the acknowledgements (a few loop turns, no time passes), then requested.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import (
    CommittableOffset,
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.messages import GroupTopicPartition
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    committed_offsets,
    produce_values,
    unique_group_id,
)
from reactive import Done, Keep, Materializer, Source
from reactive.testkit import TestSink
from tests.kafka.support import eventually

if TYPE_CHECKING:
    from collections.abc import Mapping

pytestmark = pytest.mark.kafka

TP0 = TopicPartition("t", 0)
G0 = GroupTopicPartition("g", "t", 0)
#: A guard against hangs only; nothing here depends on how long anything takes.
GUARD = 20

SETTINGS = {
    "wait_for_ack, parallelism 3": CommitterSettings(max_batch=2, max_interval=3600, parallelism=3),
    "send_and_forget": CommitterSettings(
        max_batch=2, max_interval=3600, delivery="send_and_forget"
    ),
}


class CountingCommitter:
    """A ``KafkaCommitterRef`` that acknowledges at once; ``all_in`` is set once
    ``expected`` commits were acknowledged."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.committed: list[dict[TopicPartition, int]] = []
        self.all_in = asyncio.Event()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.committed.append(dict(offsets))
        if len(self.committed) == self.expected:
            self.all_in.set()


async def settle(rounds: int = 20) -> None:
    """Let the stages take what just happened (loop turns; the clock does not move)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def offsets(ref: Any, *numbers: int) -> list[CommittableOffset]:
    return [CommittableOffset("g", "t", 0, n, ref) for n in numbers]


@pytest.mark.parametrize("name", list(SETTINGS))
async def test_flow_emits_every_done_before_completing(
    materializer: Materializer, name: str
) -> None:
    ref = CountingCommitter(expected=3)
    sink = (
        Source.from_iterable(offsets(ref, *range(6)))
        .via(Committer.flow(SETTINGS[name]))
        .to_mat(TestSink.probe(), Keep.right)
        .run(materializer)
    )
    await asyncio.wait_for(ref.all_in.wait(), GUARD)
    await settle()  # upstream completed and every commit acknowledged, nothing taken yet
    sink.request(1)
    await sink.expect_next(Done)
    sink.request(10)
    await sink.expect_next(Done, Done)
    await sink.expect_complete()
    assert ref.committed == [{TP0: 2}, {TP0: 4}, {TP0: 6}]


@pytest.mark.parametrize("name", list(SETTINGS))
async def test_batch_flow_emits_every_batch_before_completing(
    materializer: Materializer, name: str
) -> None:
    ref = CountingCommitter(expected=3)
    sink = (
        Source.from_iterable(offsets(ref, *range(6)))
        .via(Committer.batch_flow(SETTINGS[name]))
        .to_mat(TestSink.probe(), Keep.right)
        .run(materializer)
    )
    await asyncio.wait_for(ref.all_in.wait(), GUARD)
    await settle()
    batches = await asyncio.wait_for(sink.to_list(), GUARD)
    assert [b.offsets() for b in batches] == [{G0: 1}, {G0: 3}, {G0: 5}]


async def test_flow_on_the_broker_emits_every_done_after_stop(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    # Three batches committed through the real consumer while downstream takes nothing;
    # the source is stopped (upstream completes); then downstream asks for the results.
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"v"] * 6)
    consumer_settings = ConsumerSettings(
        kafka_bootstrap,
        group,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=0.2,
    )
    control, sink = (
        Consumer.committable_source(consumer_settings, Subscriptions.assignment((kafka_topic, 0)))
        .map(lambda msg: msg.committable_offset)
        .via(Committer.flow(SETTINGS["wait_for_ack, parallelism 3"]))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    try:
        await eventually(lambda: control.metrics()["commits"] == 3)  # acknowledged
        await settle()
        await asyncio.wait_for(control.stop(), GUARD)
        await settle()
        sink.request(10)
        await sink.expect_next(Done, Done, Done)
        await sink.expect_complete()
    finally:
        await asyncio.wait_for(control.shutdown(), GUARD)
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 6}
