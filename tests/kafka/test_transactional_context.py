"""``Transactional.source_with_offset_context`` / ``flow_with_offset_context`` /
``sink_with_offset_context`` against the embedded broker.

As in ``test_transactional.py``, what a read-committed reader sees is computed from the
log's own COMMIT / ABORT markers (:func:`read_committed_by_markers`): the embedded
broker's read-committed fetches deliver aborted records (``connectors/kafka/TRANSACTIONS.md``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import (
    PartitionOffset,
    ProducerMessage,
    ProducerRecord,
    Result,
    Subscriptions,
    TopicPartition,
    Transactional,
)
from connectors.kafka.messages import GroupTopicPartition
from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from reactive import Keep, KillSwitches, Materializer, Sink, Source, SourceWithContext
from reactive.testkit import ManualClock
from tests.kafka.support import settings
from tests.kafka.test_transactional import producer_settings, read_committed_by_markers

if TYPE_CHECKING:
    from aiokafka.structs import ConsumerRecord

pytestmark = pytest.mark.kafka


def shout(out: str) -> Any:
    """Records -> envelopes: every fifth record produces nothing (its context is still
    committed); the others carry a pass-through of their own, which the context replaces;
    every third is a bare ``ProducerRecord``."""

    def to_envelope(record: ConsumerRecord[Any, Any]) -> Any:
        if record.offset % 5 == 4:
            return ProducerMessage.pass_through(None)
        produced = ProducerRecord(out, record.value.upper(), partition=0)
        if record.offset % 3 == 0:
            return produced
        return ProducerMessage.single(produced, "replaced by the context")

    return to_envelope


def shouted(values: list[str]) -> list[bytes]:
    return [v.upper().encode() for i, v in enumerate(values) if i % 5 != 4]


async def wait_committed(
    bootstrap: str, group: str, topic: str, expected: dict[int, int | None], clock: Any = None
) -> None:
    partitions = tuple(expected)
    deadline = asyncio.get_running_loop().time() + 20
    while (got := await committed_offsets(bootstrap, group, topic, partitions)) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"committed {got}"
        if clock is not None:
            await clock.advance(1.0)
        await asyncio.sleep(0.05)


async def run_to(
    materializer: Materializer,
    bootstrap: str,
    group: str,
    source_topic: str,
    out: str,
    transactional_id: str,
    until: int,
) -> None:
    """Consume -> shout -> produce with contexts until the group committed ``until``."""
    control, done = (
        Transactional.source_with_offset_context(
            settings(bootstrap, group), Subscriptions.assignment(TopicPartition(source_topic, 0))
        )
        .map(shout(out))
        .to_mat(
            Transactional.sink_with_offset_context(
                producer_settings(bootstrap), transactional_id, 0.05
            ),
            Keep.both,
        )
        .run(materializer)
    )
    await wait_committed(bootstrap, group, source_topic, {0: until})
    assert await asyncio.wait_for(control.drain_and_shutdown(done), 20) is not None


async def test_records_and_their_contexts_are_committed_together(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    inputs = [f"v{i}" for i in range(200)]
    await produce_values(kafka_bootstrap, source_topic, inputs, partition=0)
    group, tid = unique_group_id(), unique_group_id("tid")
    await run_to(materializer, kafka_bootstrap, group, source_topic, out, tid, 200)
    visible, total = await read_committed_by_markers(kafka_bootstrap, out)
    assert visible == shouted(inputs)
    assert total == 160


async def test_the_flow_emits_each_result_with_its_context_after_the_commit(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    inputs = [f"r{i}" for i in range(10)]
    await produce_values(kafka_bootstrap, source_topic, inputs, partition=0)
    group = unique_group_id()
    source: SourceWithContext[Any, PartitionOffset, Any] = Transactional.source_with_offset_context(
        settings(kafka_bootstrap, group),
        Subscriptions.assignment(TopicPartition(source_topic, 0)),
    )
    pairs = await asyncio.wait_for(
        source.map(shout(out))
        .via(
            Transactional.flow_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid")
            )
        )
        .as_source()
        .take(10)
        .run_with(Sink.seq(), materializer),
        30,
    )
    key = GroupTopicPartition(group, source_topic, 0)
    assert [(ctx.key, ctx.offset) for _, ctx in pairs] == [(key, i) for i in range(10)]
    for i, (result, ctx) in enumerate(pairs):
        assert result.pass_through is ctx  # the context replaced the envelope's own
        if i % 5 == 4:
            assert not isinstance(result, Result)
        else:
            assert isinstance(result, Result)
            assert result.message.record.value == inputs[i].upper()
    # Each result came after its transaction committed: all of them are visible.
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    assert visible == shouted(inputs)
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 10}


async def test_an_aborted_stream_restarted_delivers_every_input_exactly_once(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    first, second = [f"a{i}" for i in range(100)], [f"b{i}" for i in range(100)]
    group, tid = unique_group_id(), unique_group_id("tid")
    await produce_values(kafka_bootstrap, source_topic, first, partition=0)
    await run_to(materializer, kafka_bootstrap, group, source_topic, out, tid, 100)

    # A run whose transaction stays open (long commit interval), killed mid-way.
    await produce_values(kafka_bootstrap, source_topic, second, partition=0)
    (control, switch), done = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, group),
            Subscriptions.assignment(TopicPartition(source_topic, 0)),
        )
        .via_mat(KillSwitches.single(), Keep.both)
        .map(shout(out))
        .to_mat(
            Transactional.sink_with_offset_context(producer_settings(kafka_bootstrap), tid, 60.0),
            Keep.both,
        )
        .run(materializer)
    )
    deadline = asyncio.get_running_loop().time() + 20
    while (await read_committed_by_markers(kafka_bootstrap, out))[1] != 160:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 100}
    switch.abort(RuntimeError("killed"))
    with pytest.raises(RuntimeError, match="killed"):
        await asyncio.wait_for(done, 20)
    await asyncio.wait_for(control.shutdown(), 20)
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 100}

    # The restart reprocesses the aborted part, and only it.
    await run_to(materializer, kafka_bootstrap, group, source_topic, out, tid, 200)
    visible, total = await read_committed_by_markers(kafka_bootstrap, out)
    assert visible == shouted(first) + shouted(second)
    assert total == 240  # the 80 aborted records are in the log, never visible


class Assignments:
    """A rebalance listener keeping the partitions assigned."""

    def __init__(self) -> None:
        self.assigned: frozenset[TopicPartition] = frozenset()

    def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        self.assigned = frozenset()

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self.assigned = assigned


async def test_a_revocation_waits_for_the_contexts_to_commit_and_mixes_with_the_plain_source(
    materializer: Materializer,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Instance A (with contexts, committing on a manual clock) took every record of both
    partitions, none committed, when instance B (the plain ``Transactional.source``) joins
    the group: A's revocation waits until its contexts committed, so B starts after them
    and reads only what comes later. Every input is in the output exactly once."""
    caplog.set_level(logging.DEBUG, logger="connectors.kafka._stages.transactional")
    source_topic, out = await kafka_topic_factory(2), await kafka_topic_factory()
    inputs = {p: [f"p{p}-{i}" for i in range(20)] for p in (0, 1)}
    for p, values in inputs.items():
        await produce_values(kafka_bootstrap, source_topic, values, partition=p)
    group = unique_group_id()
    ps = producer_settings(kafka_bootstrap)
    taken: dict[str, list[str]] = {"a": [], "b": []}

    def a_record(record: ConsumerRecord[Any, Any]) -> ProducerRecord[Any, Any]:
        taken["a"].append(record.value)
        return ProducerRecord(out, record.value.upper(), partition=0)

    def b_envelope(message: Any) -> Any:
        taken["b"].append(message.record.value)
        record = ProducerRecord(out, message.record.value.upper(), partition=0)
        return ProducerMessage.single(record, message.partition_offset)

    clock = ManualClock()
    async with Materializer(clock=clock) as manual:
        a_control, a_done = (
            Transactional.source_with_offset_context(
                settings(kafka_bootstrap, group), Subscriptions.topics(source_topic)
            )
            .map(a_record)
            .to_mat(
                Transactional.sink_with_offset_context(ps, unique_group_id("tid"), 1.0),
                Keep.both,
            )
            .run(manual)
        )
        deadline = asyncio.get_running_loop().time() + 20
        while (await read_committed_by_markers(kafka_bootstrap, out))[1] != 40:
            assert asyncio.get_running_loop().time() < deadline, taken
            await asyncio.sleep(0.05)
        none: dict[int, int | None] = {0: None, 1: None}
        assert await committed_offsets(kafka_bootstrap, group, source_topic, (0, 1)) == none

        b_assignments = Assignments()
        b_control, b_done = (
            Transactional.source(
                settings(kafka_bootstrap, group),
                Subscriptions.topics(source_topic).with_rebalance_listener(b_assignments),
            )
            .map(b_envelope)
            .to_mat(Transactional.sink(ps, unique_group_id("tid"), 0.05), Keep.both)
            .run(materializer)
        )
        deadline = asyncio.get_running_loop().time() + 20
        while "waits until the records taken from" not in caplog.text:
            assert asyncio.get_running_loop().time() < deadline, "A's revocation did not wait"
            await asyncio.sleep(0.02)
        # A holds the rebalance until its commit, which waits for the manual clock: give
        # B time to be assigned and read (it would, with a revocation that did not wait).
        await asyncio.sleep(1.5)
        assert not b_assignments.assigned
        assert taken["b"] == []
        assert await committed_offsets(kafka_bootstrap, group, source_topic, (0, 1)) == none

        await clock.advance(1.0)  # A commits: its revocation ends, B gets a partition
        await wait_committed(kafka_bootstrap, group, source_topic, {0: 20, 1: 20})
        deadline = asyncio.get_running_loop().time() + 20
        while len(b_assignments.assigned) != 1:
            assert asyncio.get_running_loop().time() < deadline, b_assignments.assigned
            await asyncio.sleep(0.05)
        late = {p: f"p{p}-late" for p in (0, 1)}
        for p, value in late.items():
            await produce_values(kafka_bootstrap, source_topic, [value], partition=p)
        await wait_committed(kafka_bootstrap, group, source_topic, {0: 21, 1: 21}, clock)

        await asyncio.wait_for(a_control.drain_and_shutdown(a_done), 20)
        await asyncio.wait_for(b_control.drain_and_shutdown(b_done), 20)
    assert taken["b"] in ([late[0]], [late[1]])  # B started after A's committed records
    assert sorted(taken["a"]) == sorted(
        [*inputs[0], *inputs[1], *set(late.values()) - {taken["b"][0]}]
    )
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    expected = [v.upper() for v in [*inputs[0], *inputs[1], *late.values()]]
    assert sorted(v.decode() for v in visible) == sorted(expected)  # each exactly once


async def test_a_context_that_is_not_a_partition_offset_aborts_and_names_the_stage(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    group = unique_group_id()
    good = PartitionOffset(GroupTopicPartition(group, kafka_topic, 0), 0)
    pairs = [
        (ProducerMessage.single(ProducerRecord(kafka_topic, "a", partition=0)), good),
        (ProducerMessage.single(ProducerRecord(kafka_topic, "b", partition=0)), "oops"),
    ]
    done = Source.from_iterable(pairs).run_with(
        Transactional.sink_with_offset_context(
            producer_settings(kafka_bootstrap), unique_group_id("tid"), 60.0
        ),
        materializer,
    )
    with pytest.raises(
        TypeError,
        match=r"\[Transactional.sink_with_offset_context\] the context must be the PartitionOffset",
    ):
        await asyncio.wait_for(done, 20)
    visible, _ = await read_committed_by_markers(kafka_bootstrap, kafka_topic)
    assert visible == []  # "a" was aborted with its transaction
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: None}


async def test_an_element_that_is_not_a_pair_fails_the_flow_naming_it(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    envelope = ProducerMessage.single(ProducerRecord(kafka_topic, "a", partition=0))
    flow = Transactional.flow_with_offset_context(
        producer_settings(kafka_bootstrap), unique_group_id("tid")
    )
    done = Source.single(envelope).via(flow.as_flow()).run_with(Sink.seq(), materializer)
    with pytest.raises(
        TypeError,
        match=r"\[Transactional.flow_with_offset_context\] expects \(envelope, PartitionOffset\)",
    ):
        await asyncio.wait_for(done, 20)
    bad = Source.single(("not an envelope", PartitionOffset(GroupTopicPartition("g", "t", 0), 0)))
    with pytest.raises(TypeError, match="expects ProducerMessage envelopes .* got str"):
        await asyncio.wait_for(bad.via(flow.as_flow()).run_with(Sink.seq(), materializer), 20)


def test_bad_arguments_are_refused_with_the_stage_name(kafka_bootstrap: str) -> None:
    ps = producer_settings(kafka_bootstrap)
    with pytest.raises(
        ValueError, match="Transactional.sink_with_offset_context: transactional_id"
    ):
        Transactional.sink_with_offset_context(ps, "")
    with pytest.raises(ValueError, match="Transactional.flow_with_offset_context: commit_interval"):
        Transactional.flow_with_offset_context(ps, "t", 0)
    with pytest.raises(ValueError, match="Transactional.source_with_offset_context needs a"):
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap), Subscriptions.topics("t")
        )
    with pytest.raises(TypeError, match="Transactional.source_with_offset_context: expected"):
        Transactional.source_with_offset_context(ps, Subscriptions.topics("t"))  # type: ignore[arg-type]


async def test_the_context_carries_no_pass_through_error_of_the_plain_sink(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    """The plain sink refuses an envelope whose pass-through is not a PartitionOffset;
    with contexts the same envelope is fine: its pass-through is replaced."""
    group = unique_group_id()
    envelope = ProducerMessage.single(ProducerRecord(kafka_topic, "x", partition=0), "own")
    ctx = PartitionOffset(GroupTopicPartition(group, kafka_topic, 0), 6)
    tid = unique_group_id("tid")
    await asyncio.wait_for(
        Source.single((envelope, ctx)).run_with(
            Transactional.sink_with_offset_context(producer_settings(kafka_bootstrap), tid),
            materializer,
        ),
        20,
    )
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 7}
    with pytest.raises(TypeError, match=r"\[Transactional.sink\] the pass-through must be"):
        await asyncio.wait_for(
            Source.single(envelope).run_with(
                Transactional.sink(producer_settings(kafka_bootstrap), tid), materializer
            ),
            20,
        )
