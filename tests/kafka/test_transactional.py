"""``Transactional.source`` / ``flow`` / ``sink`` against the embedded broker.

The embedded broker's read-committed fetches do not skip aborted transactions
(``connectors/kafka/TRANSACTIONS.md``), so "what a read-committed reader sees" is
computed here from the log itself: :func:`read_committed_by_markers` fetches raw
batches (read-uncommitted) and keeps a producer's transactional records only when its
COMMIT marker follows them, which is Kafka's read-committed semantics. On Apache Kafka a
plain read-committed consumer gives the same answer.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import struct
import sys
from dataclasses import replace
from typing import Any, Self

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.client import AIOKafkaClient
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.record.memory_records import MemoryRecords

from connectors.kafka import (
    KafkaTransactionError,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
    Transactional,
    TransactionalMessage,
)
from connectors.kafka._compat_txn import enable_init_producer_id_v4
from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from reactive import Keep, KillSwitches, Materializer, Sink, Source
from tests.kafka.support import settings

pytestmark = pytest.mark.kafka

_MAX_BYTES = 8 * 1024 * 1024


class MarkerReader:
    """Reads partition 0 of a topic incrementally (raw, read-uncommitted fetches) and
    applies Kafka's read-committed rule with the log's own markers: a producer's
    transactional records become visible when its COMMIT marker follows them, never
    after an ABORT. ``visible`` and ``total`` (records in the log, aborted and open ones
    included) grow with each :meth:`advance`."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.client = AIOKafkaClient(bootstrap_servers=bootstrap)
        self.topic = topic
        self.offset = 0
        self.total = 0
        self.visible: list[bytes] = []
        self.open_txns: dict[int, list[bytes]] = {}

    async def __aenter__(self) -> Self:
        await self.client.bootstrap()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.close()

    async def advance(self) -> list[bytes]:
        """Read up to the high watermark; the visible values so far."""
        node_id = next(iter(self.client.cluster.brokers())).nodeId
        topic = self.topic
        while True:
            request = FetchRequest(100, 1, _MAX_BYTES, 0, [(topic, [(0, self.offset, _MAX_BYTES)])])
            response = await self.client.send(node_id, request)
            _, partitions = response.topics[0]
            _, error_code, highwater, *data = partitions[0]
            assert error_code == 0, f"fetch error {error_code}"
            records = MemoryRecords(data[-1])
            while records.has_next():
                batch = records.next_batch()
                assert batch is not None
                if batch.is_control_batch:
                    marker = next(iter(batch))
                    _, kind = struct.unpack(">hh", marker.key)
                    values = self.open_txns.pop(batch.producer_id, [])
                    if kind == 1:  # COMMIT (0 is ABORT)
                        self.visible += values
                else:
                    values = [record.value for record in batch]
                    self.total += len(values)
                    if batch.is_transactional:
                        self.open_txns.setdefault(batch.producer_id, []).extend(values)
                    else:
                        self.visible += values
                self.offset = batch.next_offset
            if self.offset >= highwater:
                return self.visible


async def read_committed_by_markers(bootstrap: str, topic: str) -> tuple[list[bytes], int]:
    """The values of partition 0 of ``topic`` a read-committed reader must see, and how
    many records the log holds in all (aborted and open ones included)."""
    async with MarkerReader(bootstrap, topic) as reader:
        visible = await reader.advance()
        return visible, reader.total


def producer_settings(bootstrap: str) -> ProducerSettings:
    return ProducerSettings(bootstrap, value_serializer=str.encode, close_timeout=5.0)


def upper(out: str) -> Any:
    def to_envelope(message: TransactionalMessage[Any]) -> Any:
        record = ProducerRecord(out, message.record.value.upper(), partition=0)
        return ProducerMessage.single(record, message.partition_offset)

    return to_envelope


async def run_to(
    materializer: Materializer,
    bootstrap: str,
    group: str,
    source_topic: str,
    out: str,
    transactional_id: str,
    until: int,
) -> None:
    """Consume -> upper-case -> produce transactionally until the group committed ``until``."""
    control, done = (
        Transactional.source(
            settings(bootstrap, group), Subscriptions.assignment(TopicPartition(source_topic, 0))
        )
        .map(upper(out))
        .to_mat(Transactional.sink(producer_settings(bootstrap), transactional_id, 0.05), Keep.both)
        .run(materializer)
    )
    offsets: dict[int, int | None] = {}

    async def committed() -> None:
        offsets.update(await committed_offsets(bootstrap, group, source_topic))

    deadline = asyncio.get_running_loop().time() + 30
    while offsets.get(0) != until:
        assert asyncio.get_running_loop().time() < deadline, f"committed {offsets}"
        await committed()
        await asyncio.sleep(0.05)
    await asyncio.wait_for(control.drain_and_shutdown(done), 20)


async def test_consume_transform_produce_commits_records_and_offsets_together(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    inputs = [f"v{i}" for i in range(300)]
    await produce_values(kafka_bootstrap, source_topic, inputs, partition=0)
    group, tid = unique_group_id(), unique_group_id("tid")
    await run_to(materializer, kafka_bootstrap, group, source_topic, out, tid, 300)
    visible, total = await read_committed_by_markers(kafka_bootstrap, out)
    assert visible == [v.upper().encode() for v in inputs]
    assert total == 300


async def test_an_aborted_stream_restarted_delivers_every_input_exactly_once(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    first, second = [f"a{i}" for i in range(150)], [f"b{i}" for i in range(150)]
    group, tid = unique_group_id(), unique_group_id("tid")
    await produce_values(kafka_bootstrap, source_topic, first, partition=0)
    await run_to(materializer, kafka_bootstrap, group, source_topic, out, tid, 150)

    # A run whose transaction stays open (long commit interval), killed mid-way.
    await produce_values(kafka_bootstrap, source_topic, second, partition=0)
    (control, switch), done = (
        Transactional.source(
            settings(kafka_bootstrap, group),
            Subscriptions.assignment(TopicPartition(source_topic, 0)),
        )
        .via_mat(KillSwitches.single(), Keep.both)
        .map(upper(out))
        .to_mat(Transactional.sink(producer_settings(kafka_bootstrap), tid, 60.0), Keep.both)
        .run(materializer)
    )
    sent: list[int] = []

    async def count() -> None:
        sent[:] = [(await read_committed_by_markers(kafka_bootstrap, out))[1]]

    async def all_sent() -> bool:
        await count()
        return sent[0] == 300

    deadline = asyncio.get_running_loop().time() + 20
    while not await all_sent():
        assert asyncio.get_running_loop().time() < deadline, f"sent {sent}"
        await asyncio.sleep(0.05)
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 150}
    switch.abort(RuntimeError("killed"))
    with pytest.raises(RuntimeError, match="killed"):
        await asyncio.wait_for(done, 20)
    await asyncio.wait_for(control.shutdown(), 20)
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: 150}

    # The restart reprocesses the aborted part.
    await run_to(materializer, kafka_bootstrap, group, source_topic, out, tid, 300)
    visible, total = await read_committed_by_markers(kafka_bootstrap, out)
    assert visible == [v.upper().encode() for v in first + second]
    assert total == 450  # the 150 aborted records are in the log, never visible


async def test_a_second_instance_with_the_same_transactional_id_fences_the_first(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    tid = unique_group_id("tid")
    # The embedded broker answers the zombie's produce with UnknownError (not
    # PRODUCER_FENCED) and drops its EndTxn: its abort waits out max_block.
    zombie_settings = producer_settings(kafka_bootstrap).with_max_block(3.0)
    queue, done = (
        Source.queue(10)
        .map(lambda v: ProducerMessage.single(ProducerRecord(kafka_topic, v, partition=0)))
        .to_mat(Transactional.sink(zombie_settings, tid, 60.0), Keep.both)
        .run(materializer)
    )
    await queue.offer("zombie-1")

    async def written() -> int:
        return (await read_committed_by_markers(kafka_bootstrap, kafka_topic))[1]

    deadline = asyncio.get_running_loop().time() + 20
    while await written() < 1:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.05)
    successor = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, transactional_id=tid)
    enable_init_producer_id_v4(successor)
    try:
        await asyncio.wait_for(successor.start(), 20)
        await queue.offer("zombie-2")
        with pytest.raises(KafkaTransactionError) as info:
            await asyncio.wait_for(done, 20)
    finally:
        await successor.stop()
    assert info.value.transactional_id == tid
    assert str(info.value).startswith(f"[Transactional.sink] transactional id {tid!r}: sending")
    visible, _ = await read_committed_by_markers(kafka_bootstrap, kafka_topic)
    assert visible == []


async def test_the_flow_emits_results_once_their_transaction_committed(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    envelopes = [
        ProducerMessage.single(ProducerRecord(kafka_topic, f"r{i}", partition=0)) for i in range(5)
    ]
    results = await asyncio.wait_for(
        Source.from_iterable(envelopes)
        .via(Transactional.flow(producer_settings(kafka_bootstrap), unique_group_id("tid")))
        .run_with(Sink.seq(), materializer),
        30,
    )
    assert [r.message for r in results] == envelopes
    offsets = [r.offset for r in results]
    assert offsets == sorted(offsets) and len(set(offsets)) == 5
    visible, _ = await read_committed_by_markers(kafka_bootstrap, kafka_topic)
    assert visible == [f"r{i}".encode() for i in range(5)]


async def test_an_envelope_without_a_partition_offset_fails_the_stream_naming_the_stage(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic: str
) -> None:
    done = Source.single(ProducerMessage.single(ProducerRecord(kafka_topic, "x"), "oops")).run_with(
        Transactional.sink(producer_settings(kafka_bootstrap), unique_group_id("tid")),
        materializer,
    )
    with pytest.raises(TypeError, match=r"\[Transactional.sink\] the pass-through must be"):
        await asyncio.wait_for(done, 20)


def test_bad_arguments_are_refused_with_the_stage_name(kafka_bootstrap: str) -> None:
    ps = producer_settings(kafka_bootstrap)
    with pytest.raises(ValueError, match="Transactional.sink: transactional_id must be"):
        Transactional.sink(ps, "")
    with pytest.raises(ValueError, match="commit_interval must be > 0"):
        Transactional.flow(ps, "t", 0)
    with pytest.raises(ValueError, match="must not set 'transactional_id'"):
        Transactional.sink(ps.with_property("transactional_id", "x"), "t")
    with pytest.raises(ValueError, match="needs a consumer group"):
        Transactional.source(settings(kafka_bootstrap), Subscriptions.topics("t"))


_CHILD = """
import asyncio, sys
from connectors.kafka import (ConsumerSettings, ProducerMessage, ProducerRecord,
    ProducerSettings, Subscriptions, TopicPartition, Transactional)
from connectors.kafka.serde import str_deserializer
from connectors.kafka.testkit import TEST_CONSUMER_PROPERTIES, committed_offsets
from reactive import Keep

async def main(bootstrap, group, source_topic, out, tid, n):
    consumer = ConsumerSettings(bootstrap, group, value_deserializer=str_deserializer,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50})
    producer = ProducerSettings(bootstrap, value_serializer=str.encode)
    control, done = (
        Transactional.source(consumer, Subscriptions.assignment(TopicPartition(source_topic, 0)))
        .throttle(10000, 0.1)
        .map(lambda m: ProducerMessage.single(
            ProducerRecord(out, m.record.value.upper(), partition=0), m.partition_offset))
        .to_mat(Transactional.sink(producer, tid, 0.05), Keep.both)
        .run())
    while (await committed_offsets(bootstrap, group, source_topic))[0] != n:
        if done.done():
            await done
        await asyncio.sleep(0.1)
    await control.drain_and_shutdown(done)

asyncio.run(main(*sys.argv[1:6], int(sys.argv[6])))
"""


async def test_sigkilled_three_times_every_input_is_committed_exactly_once(
    kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    """A child process consumes 50,000 records -> upper-cases -> produces transactionally;
    it is SIGKILLed three times mid-stream (at 10,000, 25,000 and 40,000 outputs committed)
    and restarted with the same group and transactional id; the fourth run finishes. A
    read-committed reader sees every input exactly once, in order."""
    n = 50_000
    source_topic, out = await kafka_topic_factory(), await kafka_topic_factory()
    inputs = [f"v{i}" for i in range(n)]
    await produce_values(kafka_bootstrap, source_topic, inputs, partition=0)
    group, tid = unique_group_id(), unique_group_id("tid")
    args = [kafka_bootstrap, group, source_topic, out, tid, str(n)]
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-c", _CHILD, *args, env=env, stderr=asyncio.subprocess.PIPE
        )

    rng = random.Random(20)
    async with MarkerReader(kafka_bootstrap, out) as reader:
        for threshold in (10_000, 25_000, 40_000):
            child = await start()
            deadline = asyncio.get_running_loop().time() + 60
            while len(await reader.advance()) < threshold:
                assert child.returncode is None, (await child.communicate())[1].decode()[-2000:]
                assert asyncio.get_running_loop().time() < deadline, "no progress"
                await asyncio.sleep(0.02)
            # The reader sees a transaction's records when it commits: kill a little
            # later, somewhere within the next commit interval (0.05 s).
            await asyncio.sleep(rng.uniform(0.0, 0.05))
            assert child.returncode is None  # killed mid-stream, not after the end
            child.send_signal(signal.SIGKILL)
            await child.wait()
        final = await start()
        _, stderr = await asyncio.wait_for(final.communicate(), 90)
        assert final.returncode == 0, stderr.decode()[-2000:]
        visible = await reader.advance()
        assert len(visible) == n and len(set(visible)) == n  # 0 lost, 0 duplicates
        assert visible == [v.upper().encode() for v in inputs]
        # Records of a transaction open at a kill (if it had sent any) are in the log,
        # aborted, and not seen.
        assert reader.total >= n, reader.total
    assert await committed_offsets(kafka_bootstrap, group, source_topic) == {0: n}


async def test_a_rebalance_waits_for_the_revoked_partitions_records_to_commit(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: Any
) -> None:
    """A slow instance (uncommitted records in flight) loses a partition to a second
    instance: the revocation waits until its records committed, so the second instance
    starts after them; the output holds every input exactly once."""
    source_topic, out = await kafka_topic_factory(2), await kafka_topic_factory()
    inputs = {p: [f"p{p}-{i}" for i in range(150)] for p in (0, 1)}
    for p, values in inputs.items():
        await produce_values(kafka_bootstrap, source_topic, values, partition=p)
    group = unique_group_id()
    subscription = Subscriptions.topics(source_topic)

    def instance(throttle: int, commit_interval: float) -> Any:
        return (
            Transactional.source(settings(kafka_bootstrap, group), subscription)
            .throttle(throttle, 1.0)
            .map(upper(out))
            .to_mat(
                Transactional.sink(
                    producer_settings(kafka_bootstrap), unique_group_id("tid"), commit_interval
                ),
                Keep.both,
            )
            .run(materializer)
        )

    # The slow instance commits every 4 s: when the second one joins (after 2.5 s) it has
    # about 60 records in flight, none committed, and the rebalance takes less than 4 s.
    slow_control, slow_done = instance(40, 4.0)
    await asyncio.sleep(2.5)
    fast_control, fast_done = instance(10_000, 0.1)
    deadline = asyncio.get_running_loop().time() + 40
    while await committed_offsets(kafka_bootstrap, group, source_topic, (0, 1)) != {0: 150, 1: 150}:
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.1)
    await asyncio.wait_for(slow_control.drain_and_shutdown(slow_done), 30)
    await asyncio.wait_for(fast_control.drain_and_shutdown(fast_done), 30)
    visible, _ = await read_committed_by_markers(kafka_bootstrap, out)
    expected = [v.upper().encode() for values in inputs.values() for v in values]
    assert len(visible) == len(set(visible))  # no duplicates
    assert sorted(visible) == sorted(expected)


async def test_a_commit_timer_firing_during_a_commit_does_not_stop_the_sink(
    kafka_bootstrap: str, kafka_topic: str
) -> None:
    """The commit interval passing while a commit is in flight (a slow broker, a loaded
    machine) used to mark a commit due that outlived the transaction: after two such
    commits in a row the sink had no transaction open, a commit "due" and its input
    unpulled, and stopped for good (seen as a stalled SIGKILL test under load)."""
    from reactive.testkit import ManualClock

    clock = ManualClock()
    async with Materializer(clock=clock) as mat:
        queue, done = (
            Source.queue(10)
            .map(lambda v: ProducerMessage.single(ProducerRecord(kafka_topic, v, partition=0)))
            .to_mat(
                Transactional.sink(
                    replace(producer_settings(kafka_bootstrap), linger_ms=300),
                    unique_group_id("tid"),
                    1.0,
                ),
                Keep.both,
            )
            .run(mat)
        )

        async def visible() -> list[bytes]:
            return (await read_committed_by_markers(kafka_bootstrap, kafka_topic))[0]

        async def committed(values: list[bytes]) -> None:
            deadline = asyncio.get_running_loop().time() + 20
            while await visible() != values:
                assert asyncio.get_running_loop().time() < deadline, await visible()
                await clock.advance(1.0)
                await asyncio.sleep(0.05)

        async def wait_visible(values: list[bytes], or_more: bool = False) -> None:
            """Until exactly ``values`` are visible (``or_more``: at least those first: a
            read of the topic can take longer than a whole commit on a loaded machine)."""
            deadline = asyncio.get_running_loop().time() + 20
            while True:
                seen = await visible()
                if seen == values or (or_more and seen[: len(values)] == values):
                    return
                assert asyncio.get_running_loop().time() < deadline, seen
                await asyncio.sleep(0.005)

        # Each record lingers in the client for 0.3 s and a commit waits for its delivery,
        # so a commit lasts about 0.3 s: time enough to let the interval pass during it.
        await queue.offer("a")
        await asyncio.sleep(0.05)  # "a" sent to the client, in a transaction
        await clock.advance(1.0)  # commit A starts
        await queue.offer("b")  # arrives during commit A: queued, not sent
        await asyncio.sleep(0.05)
        await clock.advance(1.0)  # the interval passes during commit A
        # A done; "b" sent and commit B started at once (B may be done too by the time
        # the read returns, under load: the timer then fires after B, which is fine too)
        await wait_visible([b"a"], or_more=True)
        await clock.advance(1.0)  # the interval passes during commit B
        await wait_visible([b"a", b"b"])
        await queue.offer("c")  # the sink must still pull, send and commit
        await committed([b"a", b"b", b"c"])
        queue.complete()
        await asyncio.wait_for(done, 20)
