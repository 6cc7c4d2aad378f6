"""Fault injection: every client connection goes through a TcpProxy that the test cuts.

A dedicated EmbeddedBroker listens on port A and advertises the proxy's port B
(the proxy forwards B -> A), so bootstrap and every later connection pass the
proxy. Mid-stream the test aborts every open connection and refuses new ones
for about 2 s, then lets them through again, and checks that no record was
lost (duplicates are allowed: delivery is at least once).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Result,
    Subscriptions,
)
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    EmbeddedBroker,
    TcpProxy,
    create_topic,
    proxied_broker,
    read_records,
    unique_group_id,
    unique_topic_name,
)
from reactive import Keep, KillSwitches, Materializer, RestartSettings, RestartSource, Sink, Source

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

N = 2_000
OUTAGE = 2.0


@pytest_asyncio.fixture
async def proxied() -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    async with proxied_broker() as (broker, proxy):
        yield broker, proxy


def outage(proxy: TcpProxy) -> None:
    """Abort every connection and refuse new ones for OUTAGE seconds."""
    proxy.refuse(OUTAGE)
    proxy.cut()


async def test_producer_survives_connection_loss(
    materializer: Materializer, proxied: tuple[EmbeddedBroker, TcpProxy]
) -> None:
    broker, proxy = proxied
    topic = await create_topic(broker.bootstrap_servers, unique_topic_name("faults"), 2)
    settings = ProducerSettings(
        broker.bootstrap_servers,
        properties={"retry_backoff_ms": 50, "request_timeout_ms": 10_000},
        parallelism=100,
    )
    gate = asyncio.Event()
    acked = 0
    high: dict[int, int] = {}  # partition -> highest acknowledged offset
    first_half_acked = asyncio.Event()

    async def paced(i: int) -> ProducerMessage:
        if i == N // 2:
            await gate.wait()
        return ProducerMessage.single(ProducerRecord(topic, b"v", key=b"%d" % i), i)

    def count(result: Result) -> None:
        nonlocal acked
        acked += 1
        md = result.metadata
        high[md.partition] = max(high.get(md.partition, -1), md.offset)
        if acked == N // 2:
            first_half_acked.set()

    done = (
        Source.from_iterable(range(N))
        .map_async(1, paced)
        .via(Producer.flexi_flow(settings))
        .run_with(Sink.foreach(count), materializer)
    )
    await asyncio.wait_for(first_half_acked.wait(), 10)
    cut = proxy.cuts
    outage(proxy)
    assert proxy.cuts > cut  # the producer's connections were really cut
    gate.set()  # the second half is sent into the outage
    await asyncio.wait_for(done, 15)
    assert acked == N
    # Everything the topic holds, retried duplicates included.
    total = sum(offset + 1 for offset in high.values())
    assert total >= N
    records = await read_records(broker.bootstrap_servers, topic, total, timeout=10)
    keys = Counter(r.key for r in records)
    assert set(keys) == {b"%d" % i for i in range(N)}


async def test_committable_source_with_restart_loses_nothing(
    materializer: Materializer, proxied: tuple[EmbeddedBroker, TcpProxy]
) -> None:
    broker, proxy = proxied
    servers = broker.bootstrap_servers
    topic = await create_topic(servers, unique_topic_name("faults"), 2)
    records = [ProducerRecord(topic, b"v", key=b"%d" % i) for i in range(N)]
    await Source.from_iterable(records).run_with(
        Producer.plain_sink(ProducerSettings(servers)), materializer
    )

    consumer_settings = ConsumerSettings(
        servers,
        unique_group_id(),
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "request_timeout_ms": 3000},
        connect_timeout=2.0,
        close_timeout=1.0,
    )
    committer_settings = CommitterSettings(max_batch=100, max_interval=0.2)
    seen: Counter[bytes] = Counter()
    starts = 0
    half_seen = asyncio.Event()
    gate = asyncio.Event()

    async def process(message: object) -> object:
        key = message.record.key  # type: ignore[attr-defined]
        if key == b"%d" % (N // 2) and not gate.is_set():
            half_seen.set()
            await gate.wait()  # hold the stream mid-way while the connections die
        seen[key] += 1
        return message.committable_offset  # type: ignore[attr-defined]

    def consume() -> Source:
        nonlocal starts
        starts += 1
        return (
            Consumer.committable_source(consumer_settings, Subscriptions.topics(topic))
            .map_async(1, process)
            .via(Committer.flow(committer_settings))
        )

    restart = RestartSettings(min_backoff=0.2, max_backoff=1.0, random_factor=0.1)
    switch, done = (
        RestartSource.with_backoff(restart, consume)
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.ignore(), Keep.both)
        .run(materializer)
    )
    await asyncio.wait_for(half_seen.wait(), 10)
    cut = proxy.cuts
    outage(proxy)
    assert proxy.cuts > cut
    await asyncio.sleep(0.5)
    gate.set()  # go on during the outage: fetches and commits fail or wait
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 12
    while len(seen) < N and loop.time() < deadline:
        await asyncio.sleep(0.05)
    switch.shutdown()
    await asyncio.wait_for(done, 10)
    missing = {b"%d" % i for i in range(N)} - set(seen)
    assert not missing, f"{len(missing)} records never processed (starts: {starts})"
