"""Producer.committable_sink as one stage: records are produced against the real broker;
offsets go to a recording ``KafkaCommitterRef`` (or the real consumer) so the test sees
when and what is committed."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import MessageSizeTooLargeError

from connectors.kafka import (
    CommittableOffset,
    CommitterSettings,
    CommitTimeoutError,
    Consumer,
    ConsumerSettings,
    DrainingControl,
    KafkaCommitError,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSerializationError,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka._stages.committing_sink import CommittingProducerSinkStage
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    committed_offsets,
    produce_values,
    read_values,
    unique_group_id,
)
from reactive import Done, Keep, Materializer, Source
from reactive.testkit import ManualClock, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

pytestmark = pytest.mark.kafka

SRC = TopicPartition("src", 0)


class RecordingCommitter:
    """A ``KafkaCommitterRef`` that records commits; ``check`` runs before each one."""

    def __init__(
        self,
        *errors: BaseException,
        check: Callable[[dict[TopicPartition, int]], Any] | None = None,
    ) -> None:
        self.errors = list(errors)
        self.check = check
        self.calls: list[dict[TopicPartition, int]] = []
        self.committed: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.calls.append(dict(offsets))
        if self.check is not None:
            await self.check(dict(offsets))
        if self.errors:
            raise self.errors.pop(0)
        self.committed.append(dict(offsets))


def envelope(topic: str, i: int, ref: Any, value: str | None = None) -> Any:
    return ProducerMessage.single(
        ProducerRecord(topic, value if value is not None else f"v{i}"),
        CommittableOffset("g", "src", 0, i, ref),
    )


def producer_settings(bootstrap: str, **properties: Any) -> ProducerSettings:
    return ProducerSettings(
        bootstrap,
        value_serializer=lambda v: v.encode(),
        properties=properties,  # type: ignore[arg-type]
    )


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


async def log_end(bootstrap: str, topic: str) -> int:
    """How many records partition 0 of ``topic`` holds now (the fetch's high watermark)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        while consumer.highwater(tp) is None:
            await consumer.getmany(tp, timeout_ms=100, max_records=1)
        return consumer.highwater(tp)  # type: ignore[return-value]
    finally:
        await consumer.stop()


def test_committer_settings_are_type_checked() -> None:
    with pytest.raises(TypeError, match="CommitterSettings"):
        CommittingProducerSinkStage(ProducerSettings("localhost:1"), {"max_batch": 1})  # type: ignore[arg-type]


async def test_commits_land_after_the_records_were_produced_in_order(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    seen_at_commit: list[tuple[int, int]] = []

    async def check(offsets: dict[TopicPartition, int]) -> None:
        seen_at_commit.append((offsets[SRC], await log_end(kafka_bootstrap, kafka_topic)))

    ref = RecordingCommitter(check=check)
    # linger_ms holds the records in the producer for 300 ms: a commit that did not wait
    # for the acknowledgements would find the target topic still empty.
    done = Source.from_iterable([envelope(kafka_topic, i, ref) for i in range(12)]).run_with(
        Producer.committable_sink(
            producer_settings(kafka_bootstrap, linger_ms=300),
            CommitterSettings(max_batch=4, max_interval=3600),
        ),
        materializer,
    )
    assert await asyncio.wait_for(done, 20) is Done
    assert ref.committed == [{SRC: 4}, {SRC: 8}, {SRC: 12}]
    for committed, present in seen_at_commit:
        assert present >= committed  # every record before the offset was written
    assert await read_values(kafka_bootstrap, kafka_topic, 12) == [
        f"v{i}".encode() for i in range(12)
    ]


async def test_commit_after_max_interval_on_the_materializer_clock(
    materializer: Materializer, manual_clock: ManualClock, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter()
    source, done = (
        TestSource.probe()
        .to_mat(
            Producer.committable_sink(
                producer_settings(kafka_bootstrap),
                CommitterSettings(max_batch=100, max_interval=5),
            ),
            Keep.both,
        )
        .run(materializer)
    )
    await source.expect_request()  # the producer started
    # No records: the offset is collected at once, starting the interval.
    source.send_next(ProducerMessage.pass_through(CommittableOffset("g", "src", 0, 0, ref)))
    await manual_clock.advance(4.9)
    assert ref.calls == []
    await manual_clock.advance(0.1)
    await eventually(lambda: ref.committed == [{SRC: 1}])
    source.send_complete()
    assert await asyncio.wait_for(done, 20) is Done
    assert ref.committed == [{SRC: 1}]


async def test_a_failing_send_fails_the_stream_and_nothing_after_it_is_committed(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter()
    source, done = (
        TestSource.probe()
        .to_mat(
            Producer.committable_sink(
                producer_settings(kafka_bootstrap, max_request_size=2000),
                CommitterSettings(max_batch=3, max_interval=3600),
            ),
            Keep.both,
        )
        .run(materializer)
    )
    for i in range(3):
        await source.expect_request()
        source.send_next(envelope(kafka_topic, i, ref))
    await eventually(lambda: ref.committed == [{SRC: 3}])
    await source.expect_request()
    source.send_next(envelope(kafka_topic, 3, ref, value="x" * 5000))  # too large: rejected
    for i in range(4, 6):
        if not done.done():
            source.send_next(envelope(kafka_topic, i, ref))
            await asyncio.sleep(0)
    with pytest.raises(MessageSizeTooLargeError):
        await asyncio.wait_for(done, 20)
    assert ref.committed == [{SRC: 3}]
    await source.expect_cancellation()


async def test_a_failing_serializer_commits_only_the_offsets_before_it(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter()

    def serialize(value: str) -> bytes:
        if value == "v5":
            raise ValueError("cannot encode v5")
        return value.encode()

    settings = ProducerSettings(kafka_bootstrap, value_serializer=serialize)
    done = Source.from_iterable([envelope(kafka_topic, i, ref) for i in range(10)]).run_with(
        Producer.committable_sink(settings, CommitterSettings(max_batch=2)), materializer
    )
    with pytest.raises(ProducerSerializationError, match="cannot encode v5"):
        await asyncio.wait_for(done, 20)
    committed = [offsets[SRC] for offsets in ref.committed]
    assert committed == sorted(committed)
    assert all(offset <= 5 for offset in committed)  # offsets 0..4 at most


async def test_a_commit_failing_every_attempt_fails_the_stream(
    materializer: Materializer, manual_clock: ManualClock, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter(*(CommitTimeoutError(f"timeout {i}") for i in range(10)))
    done = Source.from_iterable([envelope(kafka_topic, i, ref) for i in range(3)]).run_with(
        Producer.committable_sink(producer_settings(kafka_bootstrap), CommitterSettings()),
        materializer,
    )
    await eventually(lambda: len(ref.calls) == 1)
    for _ in range(200):  # backoffs 0.1, 0.2, 0.4 s on the manual clock
        if done.done():
            break
        await manual_clock.advance(0.5)
        await asyncio.sleep(0.01)
    assert len(ref.calls) == 4
    with pytest.raises(KafkaCommitError, match=r"after 4 attempt\(s\): timeout 3"):
        await asyncio.wait_for(done, 20)
    assert ref.committed == []


async def test_transient_commit_failures_are_retried(
    materializer: Materializer, manual_clock: ManualClock, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter(CommitTimeoutError("slow"))
    done = Source.from_iterable([envelope(kafka_topic, i, ref) for i in range(3)]).run_with(
        Producer.committable_sink(producer_settings(kafka_bootstrap), CommitterSettings()),
        materializer,
    )
    await eventually(lambda: len(ref.calls) == 1)
    await manual_clock.advance(0.1)
    assert await asyncio.wait_for(done, 20) is Done
    assert ref.committed == [{SRC: 3}]


async def test_pass_through_none_commits_nothing_and_non_committables_fail(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter()
    done = Source.from_iterable(
        [
            envelope(kafka_topic, 0, ref),
            ProducerMessage.single(ProducerRecord(kafka_topic, "plain"), None),
        ]
    ).run_with(Producer.committable_sink(producer_settings(kafka_bootstrap)), materializer)
    assert await asyncio.wait_for(done, 20) is Done
    assert ref.committed == [{SRC: 1}]
    bad = Source.single(ProducerMessage.pass_through("not an offset")).run_with(
        Producer.committable_sink(producer_settings(kafka_bootstrap)), materializer
    )
    with pytest.raises(TypeError, match=r"\[Producer.committable_sink\] expects Committable"):
        await asyncio.wait_for(bad, 20)


async def test_drain_and_shutdown_commits_everything(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source = await kafka_topic_factory()
    target = await kafka_topic_factory()
    group = unique_group_id()
    await produce_values(kafka_bootstrap, source, [f"r{i}" for i in range(25)])
    consumer_settings = ConsumerSettings(
        kafka_bootstrap,
        group,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=0.2,
    )
    control = (
        Consumer.committable_source(consumer_settings, Subscriptions.assignment((source, 0)))
        .map(
            lambda msg: ProducerMessage.single(
                ProducerRecord(target, msg.record.value.upper()), msg.committable_offset
            )
        )
        .to_mat(
            Producer.committable_sink(
                ProducerSettings(kafka_bootstrap),
                CommitterSettings(max_batch=1000, max_interval=3600),
            ),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: control.metrics()["records_emitted"] == 25)
    assert control.metrics()["commits"] == 0
    assert await asyncio.wait_for(control.drain_and_shutdown(), 20) is Done
    assert await committed_offsets(kafka_bootstrap, group, source) == {0: 25}
    assert await read_values(kafka_bootstrap, target, 25) == [f"R{i}".encode() for i in range(25)]


async def test_upstream_failure_commits_what_was_collected_then_fails(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    ref = RecordingCommitter()
    source, done = (
        TestSource.probe()
        .to_mat(
            Producer.committable_sink(
                producer_settings(kafka_bootstrap), CommitterSettings(max_batch=100)
            ),
            Keep.both,
        )
        .run(materializer)
    )
    await source.expect_request()
    source.send_next(ProducerMessage.pass_through(CommittableOffset("g", "src", 0, 6, ref)))
    source.send_error(RuntimeError("upstream broke"))
    with pytest.raises(RuntimeError, match="upstream broke"):
        await asyncio.wait_for(done, 20)
    assert ref.committed == [{SRC: 7}]


async def test_an_empty_stream_completes_with_done(
    materializer: Materializer, kafka_bootstrap: str
) -> None:
    done = Source.empty().run_with(
        Producer.committable_sink(producer_settings(kafka_bootstrap)), materializer
    )
    assert await asyncio.wait_for(done, 20) is Done
