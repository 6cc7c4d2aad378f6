"""Committer.sink / Committer.flow: batching by size, by time (manual clock) and at
completion, retries, failures; against the real broker where offsets must land, with a
scripted ``KafkaCommitterRef`` where failures must be provoked."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import (
    CommittableOffset,
    Committer,
    CommitterSettings,
    CommitTimeoutError,
    Consumer,
    ConsumerSettings,
    DrainingControl,
    KafkaCommitError,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    committed_offsets,
    produce_values,
    unique_group_id,
)
from reactive import Done, Keep, Materializer, Sink, Source
from reactive.testkit import ManualClock, TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Mapping

pytestmark = pytest.mark.kafka


def settings(bootstrap: str, group: str) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap,
        group,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=0.2,
    )


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


def consume_offsets(
    bootstrap: str, topic: str, group: str, committer: CommitterSettings, mat: Materializer
) -> DrainingControl[Any]:
    return (
        Consumer.committable_source(
            settings(bootstrap, group), Subscriptions.assignment((topic, 0))
        )
        .map(lambda msg: msg.committable_offset)
        .to_mat(Committer.sink(committer), DrainingControl)
        .run(mat)
    )


async def test_sink_commits_when_max_batch_is_reached(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"v"] * 6)
    control = consume_offsets(
        kafka_bootstrap,
        kafka_topic,
        group,
        CommitterSettings(max_batch=3, max_interval=3600),
        materializer,
    )
    await eventually(lambda: control.metrics()["commits"] == 2)
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 6}
    await control.drain_and_shutdown()


async def test_sink_commits_after_max_interval_on_the_materializer_clock(
    kafka_bootstrap: str, kafka_topic: str, manual_clock: ManualClock, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"a", b"b"])
    control = consume_offsets(
        kafka_bootstrap,
        kafka_topic,
        group,
        CommitterSettings(max_batch=100, max_interval=5),
        materializer,
    )
    await eventually(lambda: control.metrics()["records_emitted"] == 2)
    await manual_clock.advance(4.9)
    assert control.metrics()["commits"] == 0
    await manual_clock.advance(0.1)
    await eventually(lambda: control.metrics()["commits"] == 1)
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 2}
    await control.drain_and_shutdown()


async def test_drain_and_shutdown_commits_everything_processed(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"x"] * 4)
    control = consume_offsets(
        kafka_bootstrap,
        kafka_topic,
        group,
        CommitterSettings(max_batch=100, max_interval=3600),
        materializer,
    )
    await eventually(lambda: control.metrics()["records_emitted"] == 4)
    assert control.metrics()["commits"] == 0
    assert await control.drain_and_shutdown() is Done
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 4}
    assert control.metrics()["commits"] == 1


async def test_commit_through_a_shut_down_consumer_fails_the_stream(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"x", b"y"])
    control, messages = (
        Consumer.committable_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .take(2)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    offsets = [m.committable_offset for m in await messages]
    await control.is_shutdown
    done = Source.from_iterable(offsets).run_with(Committer.sink(CommitterSettings()), materializer)
    with pytest.raises(KafkaCommitError) as info:
        await done
    message = str(info.value)
    assert "[Committer.sink]" in message and "after 1 attempt(s)" in message
    assert "shut down" in message
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: None}


# -- a scripted committer: provoke failures without breaking the broker --------------------


class ScriptedCommitter:
    """A ``KafkaCommitterRef`` whose first commits raise the scripted errors."""

    def __init__(self, *errors: BaseException, delay: asyncio.Event | None = None) -> None:
        self.errors = list(errors)
        self.calls: list[dict[TopicPartition, int]] = []
        self.committed: list[dict[TopicPartition, int]] = []
        self.gate = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.calls.append(dict(offsets))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.gate is not None:
                await self.gate.wait()
            if self.errors:
                raise self.errors.pop(0)
            self.committed.append(dict(offsets))
        finally:
            self.in_flight -= 1


def offsets(committer: Any, *numbers: int, partition: int = 0) -> list[CommittableOffset]:
    return [CommittableOffset("g", "t", partition, n, committer) for n in numbers]


TP0 = TopicPartition("t", 0)


async def test_flow_emits_done_per_batch_keeping_the_highest_offset(
    materializer: Materializer,
) -> None:
    ref = ScriptedCommitter()
    elements = offsets(ref, 0, 1, 2, 3, 4)
    done = (
        Source.from_iterable(elements)
        .via(Committer.flow(CommitterSettings(max_batch=2)))
        .run_with(Sink.seq(), materializer)
    )
    assert await done == [Done, Done, Done]
    assert ref.committed == [{TP0: 2}, {TP0: 4}, {TP0: 5}]


async def test_transient_failures_are_retried_with_backoff(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    ref = ScriptedCommitter(CommitTimeoutError("slow"), CommitTimeoutError("slow again"))
    done = Source.from_iterable(offsets(ref, 7)).run_with(Committer.sink(), materializer)
    await manual_clock.settle()
    assert len(ref.calls) == 1
    await manual_clock.advance(0.1)  # first backoff
    assert len(ref.calls) == 2
    await manual_clock.advance(0.2)  # doubled
    assert await done is Done
    assert ref.committed == [{TP0: 8}]


async def test_commit_failing_every_attempt_fails_the_stream(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    ref = ScriptedCommitter(*(CommitTimeoutError(f"timeout {i}") for i in range(10)))
    done = Source.from_iterable(offsets(ref, 1)).run_with(Committer.sink(), materializer)
    for _ in range(4):
        await manual_clock.advance(1.0)
    with pytest.raises(KafkaCommitError, match=r"after 4 attempt\(s\): timeout 3") as info:
        await done
    assert isinstance(info.value.__cause__, CommitTimeoutError)
    assert ref.committed == []


async def test_upstream_failure_still_commits_what_was_collected(
    materializer: Materializer,
) -> None:
    ref = ScriptedCommitter()

    def check(element: Any) -> Any:
        if element is None or isinstance(element, str):
            raise RuntimeError("upstream broke")
        return element

    done = (
        Source.from_iterable([*offsets(ref, 3, 4), "poison"])
        .map(check)
        .run_with(Committer.sink(CommitterSettings(max_batch=100)), materializer)
    )
    with pytest.raises(RuntimeError, match="upstream broke"):
        await done
    assert ref.committed == [{TP0: 5}]


async def test_parallelism_bounds_commits_in_flight_and_backpressures(
    materializer: Materializer,
) -> None:
    gate = asyncio.Event()
    ref = ScriptedCommitter(delay=gate)
    source, sink = (
        TestSource.probe()
        .via(Committer.flow(CommitterSettings(max_batch=1, parallelism=2)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sink.request(10)
    for element in offsets(ref, 0, 1, 2):
        await source.expect_request()
        source.send_next(element)
    await asyncio.sleep(0.05)
    assert ref.max_in_flight == 2  # the third batch waits for a free slot
    gate.set()
    await sink.expect_next(Done, Done, Done)
    assert ref.committed == [{TP0: 1}, {TP0: 2}, {TP0: 3}]
    source.send_complete()
    await sink.expect_complete()


async def test_non_committable_elements_fail_with_a_clear_error(
    materializer: Materializer,
) -> None:
    done = Source.from_iterable(["not an offset"]).run_with(Committer.sink(), materializer)
    with pytest.raises(TypeError, match=r"\[Committer.sink\] expects CommittableOffset"):
        await done


async def test_one_committer_commits_two_consumers_of_one_group(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    """Two committable sources of the same group (different topics) into one
    ``Committer.sink``: each partition's offsets are committed through the consumer
    they came from (Alpakka keeps a committer per GroupTopicPartition). Before, the
    stage failed at the second consumer's first offset and nothing was committed."""
    a, b = await kafka_topic_factory(), await kafka_topic_factory()
    group = unique_group_id()
    await produce_values(kafka_bootstrap, a, [b"a"] * 3)
    await produce_values(kafka_bootstrap, b, [b"b"] * 4)
    s = settings(kafka_bootstrap, group)
    done = (
        Consumer.committable_source(s, Subscriptions.assignment((a, 0)))
        .merge(Consumer.committable_source(s, Subscriptions.assignment((b, 0))))
        .map(lambda m: m.committable_offset)
        .take(7)
        .run_with(Committer.sink(CommitterSettings(max_batch=100, max_interval=3600)), materializer)
    )
    assert await asyncio.wait_for(done, 30) is Done
    assert await committed_offsets(kafka_bootstrap, group, a) == {0: 3}
    assert await committed_offsets(kafka_bootstrap, group, b) == {0: 4}
