"""Regression tests of the five defects a review found in the Kafka connector and the
state server, now fixed (numbered as in the tests' comments):

1. a transactional stage committed an out-of-order context of a later transaction, moving
   the group's offset back;
2. a revocation whose drain timed out still let the transactional sink commit the revoked
   partitions' records (now the source fails and the sink aborts and fails);
3. ``StateServer`` answered 404 for a key whose partition no member serves (now 503 with
   ``Retry-After``);
4. ``Control.shutdown()`` of a transactional source left the group while emitted records
   were on their way to the sink (now it drains first, up to ``commit_timeout``);
5. ``Committer`` with ``delivery="send_and_forget"`` dropped the last batch's commit.

Each test names its defect in a comment. They run against the embedded broker like the
rest of tests/kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    DrainingControl,
    KafkaTransactionError,
    PartitionOffset,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    Transactional,
)
from connectors.kafka.membership import GroupMembership
from connectors.kafka.messages import GroupTopicPartition
from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import Tables
from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from reactive import Done, Keep, Materializer, Source
from reactive.state import registry_of
from reactive.state.http import StateServer
from reactive.testkit import ManualClock
from tests.kafka.support import eventually, settings
from tests.kafka.test_transactional import producer_settings, read_committed_by_markers
from tests.kafka.test_transactional_context import Assignments

pytestmark = pytest.mark.kafka


# DEFECT 1 (connectors/kafka/_stages/transactional.py, _on_sent / _commit): the
# transactional stages keep the highest context offset per partition only within one
# transaction. A context that arrives out of order, in a later transaction, is committed
# as is, and the group's offset moves backwards (10 -> 4): a restart re-reads 4..9 and
# produces them again, breaking exactly-once. Committer.sink deliberately never commits
# below what it committed (OffsetBatcher.committed); the transactional stage should
# keep the same rule (leave the stale offset out of the transaction). Alpakka has no such
# rule either (its batch keeps the last offset added): this is the library's own
# never-backwards rule, missing from the stage that needs it most.
async def test_an_out_of_order_context_in_a_later_transaction_does_not_move_the_offset_back(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    group = unique_group_id()
    key = GroupTopicPartition(group, kafka_topic, 0)
    pairs: list[tuple[ProducerRecord[Any, Any], PartitionOffset]] = [
        (ProducerRecord(kafka_topic, f"r{o}", partition=0), PartitionOffset(key, o)) for o in (9, 3)
    ]

    async def after_the_first_commit(pair: Any) -> Any:
        if pair[1].offset == 3:  # reordered: arrives once offset 9 was committed
            await asyncio.wait_for(wait_for_offset(kafka_bootstrap, group, kafka_topic, 10), 20)
        return pair

    done = (
        Source.from_iterable(pairs)
        .map_async(1, after_the_first_commit)
        .run_with(
            Transactional.sink_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid"), 0.05
            ),
            materializer,
        )
    )
    assert await asyncio.wait_for(done, 20) is Done
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 10}


async def wait_for_offset(bootstrap: str, group: str, topic: str, offset: int) -> None:
    while (await committed_offsets(bootstrap, group, topic)).get(0) != offset:
        await asyncio.sleep(0.05)


# DEFECT 2 (connectors/kafka/_stages/transactional.py, _DrainOnRevoke and the producer
# stage): when a revocation's wait for the in-flight contexts times out
# (ConsumerSettings.commit_timeout), the source only logs a warning and the producer
# stage later commits the transaction anyway, with the records and the offsets of the
# partitions it no longer owns. The partitions' new owners (here: the other instance,
# and this instance itself for the partition it got back, re-read from the group's
# offset) produce the same records again: every input is visible twice to
# read-committed readers. Alpakka fails the source on a drain timeout
# (TransactionalSource.blockingRevokedHandler: "Timeout while draining") and, with
# KIP-447 (sendOffsetsToTransaction with the group metadata), a late commit is refused; here
# (TxnOffsetCommit v0 has no generation) the stage itself must refuse to commit a
# transaction holding contexts of a partition whose revocation timed out (abort it and
# fail), so that nothing is visible twice.
async def test_a_revocation_that_timed_out_does_not_commit_the_revoked_records_twice(
    materializer: Materializer,
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="connectors.kafka._stages.transactional")
    src, out = await kafka_topic_factory(2), await kafka_topic_factory()
    for p in (0, 1):
        await produce_values(kafka_bootstrap, src, [f"p{p}-{i}" for i in range(20)], partition=p)
    group = unique_group_id()
    ps = producer_settings(kafka_bootstrap)
    taken: list[str] = []

    def a_record(record: Any) -> ProducerRecord[Any, Any]:
        taken.append(record.value)
        return ProducerRecord(out, record.value, partition=0)

    def b_envelope(message: Any) -> Any:
        produced: ProducerRecord[Any, Any] = ProducerRecord(out, message.record.value, partition=0)
        return ProducerMessage.single(produced, message.partition_offset)

    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    clock = ManualClock()
    async with Materializer(clock=clock) as manual:
        # A commits only when the manual clock says so: its revocation cannot drain.
        a_control, a_done = (
            Transactional.source_with_offset_context(
                settings(kafka_bootstrap, group).with_commit_timeout(0.5),
                Subscriptions.topics(src),
            )
            .map(a_record)
            .to_mat(
                Transactional.sink_with_offset_context(ps, unique_group_id("tid"), 1.0),
                Keep.both,
            )
            .run(manual)
        )
        while len(taken) < 40:
            assert loop.time() < deadline, len(taken)
            await asyncio.sleep(0.05)
        b_assigned = Assignments()
        b_control, b_done = (
            Transactional.source(
                settings(kafka_bootstrap, group),
                Subscriptions.topics(src).with_rebalance_listener(b_assigned),
            )
            .map(b_envelope)
            .to_mat(Transactional.sink(ps, unique_group_id("tid"), 0.05), Keep.both)
            .run(materializer)
        )
        # A's revocation timed out; A got one partition back and read it again, unless
        # A failed (Alpakka's "Timeout while draining"): then A left the group and B may
        # hold both partitions.
        while not a_done.done() and (len(b_assigned.assigned) != 1 or len(taken) < 60):
            assert loop.time() < deadline, (b_assigned.assigned, len(taken))
            await asyncio.sleep(0.05)
        assert "revoked with records not yet committed" in caplog.text or a_done.done()
        await clock.advance(1.0)  # A's commit is due
        await asyncio.sleep(0.5)
        await clock.advance(1.0)
        for control, done in ((a_control, a_done), (b_control, b_done)):
            with_error = asyncio.gather(control.drain_and_shutdown(done), return_exceptions=True)
            await asyncio.wait_for(with_error, 20)
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    twice = sorted(v.decode() for v, n in Counter(visible).items() if n > 1)
    assert twice == []


# DEFECT 3 (reactive/state/http.py, StateServer._key): a key whose partition no member
# serves right now (a rebalance under way, or the owner has not published its endpoint
# yet: GroupMembership.owner_of returns (partition, None)) is answered 404 "no value for
# key", as if the key did not exist, though the owner holds it. The server already
# answers 503 + Retry-After for a store that is restoring, for exactly this reason (a
# 404 for a key that is there); Kafka Streams reports such a key's metadata as
# NOT_AVAILABLE. It should answer 503 with Retry-After (owner unknown), not 404.
async def test_a_key_on_a_partition_no_member_serves_is_unavailable_not_missing(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    members_topic = await kafka_topic_factory(partitions=1, prefix="members")
    keys = [f"k{i}" for i in range(10)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for k in keys:
            await producer.send_and_wait(topic, f"v-{k}".encode(), key=k.encode())
    finally:
        await producer.stop()
    cs = settings(kafka_bootstrap, kafka_group_id).with_key_deserializer(str_deserializer)
    mat_a, mat_b = Materializer(name="a"), Materializer(name="b")
    table_a = Tables.table(cs, topic, None).run(mat_a)
    server = await StateServer(registry_of(mat_a)).start()
    membership = GroupMembership(cs, ProducerSettings(kafka_bootstrap), members_topic, server.url)
    server.ownership = membership
    membership.track(table_a)
    await membership.start(mat_a)
    table_b = Tables.table(cs, topic, None).run(mat_b)  # B has not published an endpoint
    try:
        await eventually(lambda: len(table_a.partitions) == len(table_b.partitions) == 1, 20)
        await table_a.ready(timeout=10)
        await table_b.ready(timeout=10)
        on_b = next(k for k in keys if table_a.partition_of(k) in table_b.partitions)
        assert table_b.get(on_b) == f"v-{on_b}"  # the key exists, on B
        url = f"{server.url}/stores/{table_a.name}/keys/{on_b}"
        async with aiohttp.ClientSession() as http, http.get(url, allow_redirects=False) as r:
            assert (r.status, r.headers.get("Retry-After")) == (503, "1"), await r.json()
    finally:
        await membership.stop()
        await table_a.stop()
        await table_b.stop()
        await server.stop()
        await mat_a.shutdown()
        await mat_b.shutdown()


# DEFECT 4 (connectors/kafka/_stages/transactional.py, _committable_source; the consumer
# stage's shutdown): Control.shutdown() of a transactional source closes the consumer
# (it leaves the group) while records it emitted are still on their way to the
# transactional sink. Another member gets the partition, reads from the group's offset
# and commits the same records; then the first instance's sink commits them again, with
# an older offset. Alpakka's TransactionalSource drains before stopping its consumer
# (stopConsumerActor sends Drain(inFlightRecords.assigned(), ..., Stop)): the consumer
# stays in the group until the records it emitted were committed (up to commit_timeout).
async def test_shutdown_of_a_transactional_source_waits_for_its_records_to_commit(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    src, out = await kafka_topic_factory(), await kafka_topic_factory()
    await produce_values(kafka_bootstrap, src, [f"v{i}" for i in range(20)], partition=0)
    group = unique_group_id()
    ps = producer_settings(kafka_bootstrap)
    gate = asyncio.Event()
    held: list[int] = []

    async def slow_transform(record: Any) -> ProducerRecord[Any, Any]:
        held.append(record.offset)
        await gate.wait()
        return ProducerRecord(out, record.value, partition=0)

    a_control, a_done = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, group), Subscriptions.topics(src)
        )
        .map_async(4, slow_transform)
        .to_mat(Transactional.sink_with_offset_context(ps, unique_group_id("tid"), 0.05), Keep.both)
        .run(materializer)
    )
    await eventually(lambda: len(held) == 4)  # records 0-3 emitted, not yet committed
    shutdown = asyncio.ensure_future(a_control.shutdown())
    await asyncio.wait({shutdown}, timeout=0.5)
    # A second member joins; it must not get the partition before 0-3 are committed.
    b_control, b_done = (
        Transactional.source(settings(kafka_bootstrap, group), Subscriptions.topics(src))
        .map(
            lambda m: ProducerMessage.single(
                ProducerRecord(out, m.record.value, partition=0), m.partition_offset
            )
        )
        .to_mat(Transactional.sink(ps, unique_group_id("tid"), 0.05), Keep.both)
        .run(materializer)
    )
    b_finished = asyncio.ensure_future(wait_for_offset(kafka_bootstrap, group, src, 20))
    await asyncio.wait({b_finished}, timeout=2.0)
    gate.set()  # A's records reach its sink, which commits them
    await asyncio.wait_for(shutdown, 20)
    assert await asyncio.wait_for(a_done, 20) is Done
    await asyncio.wait_for(b_finished, 20)
    await asyncio.wait_for(b_control.drain_and_shutdown(b_done), 20)
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    twice = sorted(v.decode() for v, n in Counter(visible).items() if n > 1)
    assert (twice, await committed_offsets(kafka_bootstrap, group, src)) == ([], {0: 20})


# DEFECT 5 (connectors/kafka/_stages/committer.py, _CommitterLogic._maybe_commit): with
# delivery="send_and_forget" the result of a batch is emitted *before* its commit is
# started; when downstream has demand (always for Committer.sink's Sink.ignore) the
# emit's and_then (_taken -> _slot_freed -> _check_finished) runs at once, sees upstream
# done, no batch and no commit in flight, and completes the stage; the
# self._commits.start(batch) that follows never sends anything. So the last batch of
# every stream is silently dropped: with the default max_batch (1000) a whole run's
# offsets are never committed, and drain_and_shutdown() still returns Done. Committer.sink
# promises "Done once upstream completed and every commit was acknowledged"; Alpakka's
# SendAndForget still sends every commit (it only skips waiting for the answer).
async def test_send_and_forget_still_commits_the_last_batch(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    group = unique_group_id()
    await produce_values(kafka_bootstrap, kafka_topic, [b"v"] * 5)
    seen: list[int] = []

    def offset_of(message: Any) -> Any:
        seen.append(message.record.offset)
        return message.committable_offset

    control = (
        Consumer.committable_source(
            settings(kafka_bootstrap, group), Subscriptions.assignment((kafka_topic, 0))
        )
        .map(offset_of)
        .to_mat(
            Committer.sink(CommitterSettings(max_interval=3600, delivery="send_and_forget")),
            DrainingControl,
        )
        .run(materializer)
    )
    await eventually(lambda: len(seen) == 5)
    assert await asyncio.wait_for(control.drain_and_shutdown(), 20) is Done
    assert await committed_offsets(kafka_bootstrap, group, kafka_topic) == {0: 5}


# DEFECT 4, its timeout: Alpakka bounds the drain before the consumer stops; records still
# on their way when it gives up are read again by the partition's next owner, so the
# transactional sink must not commit them once they arrive (abort and fail instead).
async def test_records_a_shutdown_gave_up_on_are_not_committed_by_the_sink(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    src, out = await kafka_topic_factory(), await kafka_topic_factory()
    await produce_values(kafka_bootstrap, src, [f"v{i}" for i in range(10)], partition=0)
    group = unique_group_id()
    gate = asyncio.Event()
    held: list[int] = []

    async def slow_transform(record: Any) -> ProducerRecord[Any, Any]:
        held.append(record.offset)
        await gate.wait()
        return ProducerRecord(out, record.value, partition=0)

    control, done = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, group).with_commit_timeout(0.3), Subscriptions.topics(src)
        )
        .map_async(4, slow_transform)
        .to_mat(
            Transactional.sink_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid"), 0.05
            ),
            Keep.both,
        )
        .run(materializer)
    )
    await eventually(lambda: len(held) == 4)
    await asyncio.wait_for(control.shutdown(), 20)  # the drain timed out: the consumer left
    gate.set()  # now the records reach the sink
    with pytest.raises(KafkaTransactionError, match="revoked \\(or whose source shut down\\)"):
        await asyncio.wait_for(done, 20)
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    assert (visible, await committed_offsets(kafka_bootstrap, group, src)) == ([], {0: None})


# The drain before the consumer closes (DEFECT 4's fix) has nothing to wait for once the
# stream failed: the failure aborts the transactional stages, nothing is committed any
# more. A stream that failed before any record reached its sink shuts down at once, not
# after commit_timeout.
async def test_shutdown_after_a_failure_does_not_wait_for_the_drain(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    src = await kafka_topic_factory()
    await produce_values(kafka_bootstrap, src, ["boom", "v1"], partition=0)

    def explode(record: Any) -> ProducerRecord[Any, Any]:
        raise ValueError(f"cannot take {record.value}")

    control, done = (
        Transactional.source_with_offset_context(
            settings(kafka_bootstrap, unique_group_id()).with_commit_timeout(120),
            Subscriptions.topics(src),
        )
        .map(explode)
        .to_mat(
            Transactional.sink_with_offset_context(
                producer_settings(kafka_bootstrap), unique_group_id("tid"), 0.05
            ),
            Keep.both,
        )
        .run(materializer)
    )
    with pytest.raises(ValueError, match="cannot take boom"):
        await asyncio.wait_for(done, 20)
    await asyncio.wait_for(control.shutdown(), 20)  # not after the 120 s commit_timeout
