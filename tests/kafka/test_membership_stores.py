"""Queryable state across members for an ``aggregate_by_key`` store per partition (not a
KTable), on the embedded broker and over real HTTP: each member counts records per key in
a changelogged store instance per assigned partition, serves its registry with a
StateServer and tracks the store by name (``GroupMembership.track_store``). A query to
the member that does not serve the key's partition is redirected (307) to the one that
does; when a member joins, the routing follows the rebalance; a member stopping publishes
its tombstone and the other serves every key again. The changelog and membership
producers use a shared producer (``ProducerSettings.with_producer``) and leave it open.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from connectors.kafka import DrainingControl, ProducerSettings, TopicPartition
from connectors.kafka.errors import ProducerStartError
from connectors.kafka.membership import GroupMembership
from connectors.kafka.state import ChangelogError, changelogged
from connectors.kafka.testkit import read_records
from reactive import Materializer
from reactive.state import StateRegistry, Stores, registry_of
from reactive.state.http import StateServer
from tests.kafka.changelog_app import consumer_settings, counts_store, run_counting
from tests.kafka.support import eventually

STORE = "counts"
ALL = [0, 1, 2, 3]


@dataclass
class Member:
    mat: Materializer
    server: StateServer
    membership: GroupMembership
    control: DrainingControl[Any]
    registry: StateRegistry

    def partitions(self) -> list[int | None]:
        return self.registry.partitions(STORE)

    def published(self, other: Member) -> list[int]:
        """The partitions of the store ``other`` published, as this member reads them."""
        record = self.membership.members().get(other.server.url) or {}
        return list(record.get("tables", {}).get(STORE, {}).get("partitions", []))


async def end_offset(bootstrap: str, topic: str) -> int:
    """The end offset of partition 0 of ``topic`` (how many records it holds)."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def start_member(bootstrap: str, topic: str, members_topic: str, group: str) -> Member:
    mat = Materializer()
    registry = registry_of(mat)
    server = await StateServer(registry).start()
    membership = GroupMembership(
        consumer_settings(bootstrap, group), ProducerSettings(bootstrap), members_topic, server.url
    )
    server.ownership = membership
    membership.track_store(STORE, topic)  # str keys: the records' keys in UTF-8
    await membership.start(mat)
    control = run_counting(
        bootstrap, topic, group, counts_store(bootstrap, group), materializer=mat
    )
    return Member(mat, server, membership, control, registry)


async def stop_member(m: Member) -> None:
    await m.control.drain_and_shutdown()
    await m.membership.stop()
    await m.server.stop()
    await m.mat.shutdown()


async def test_queries_of_a_partitioned_store_are_routed_to_its_owner_and_follow_rebalances(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=4)
    members_topic = await kafka_topic_factory(partitions=1, prefix="members")
    keys = [f"user-{i}" for i in range(24)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:  # each key twice, placed by the default partitioner
        for k in keys * 2:
            await producer.send_and_wait(topic, b"x", key=k.encode())
    finally:
        await producer.stop()

    started: list[Member] = []
    try:
        a = await start_member(kafka_bootstrap, topic, members_topic, kafka_group_id)
        started.append(a)
        await eventually(lambda: a.partitions() == ALL and a.published(a) == ALL, timeout=30)
        await eventually(lambda: all(a.registry.get(STORE, k) == 2 for k in keys), timeout=30)

        b = await start_member(kafka_bootstrap, topic, members_topic, kafka_group_id)
        started.append(b)

        def settled() -> bool:
            pa, pb = set(a.partitions()), set(b.partitions())
            return (
                bool(pa)
                and bool(pb)
                and not pa & pb
                and pa | pb == set(ALL)
                and all(set(m.published(a)) == pa and set(m.published(b)) == pb for m in (a, b))
            )

        await eventually(settled, timeout=40)
        await eventually(lambda: b.registry.is_ready(STORE), timeout=20)

        def routed(m: Member, k: str) -> str | None:
            owned = m.membership.owner_of(STORE, k)
            assert owned is not None
            return owned[1]

        on_b = next(k for k in keys if routed(a, k) == b.server.url)
        on_a = next(k for k in keys if routed(b, k) == a.server.url)
        p_b = b.membership.owner_of(STORE, on_b)
        assert p_b is not None and p_b[1] == b.server.url and p_b[0] in b.partitions()
        assert a.registry.get(STORE, on_b) is None  # not served by A any more

        async with aiohttp.ClientSession() as http:
            url = f"{a.server.url}/stores/{STORE}/keys/{on_b}"
            async with http.get(url, allow_redirects=False) as r:
                assert r.status == 307
                assert r.headers["Location"] == f"{b.server.url}/stores/{STORE}/keys/{on_b}"
                assert await r.json() == {
                    "store": STORE,
                    "key": on_b,
                    "partition": p_b[0],
                    "owner": b.server.url,
                }
            async with http.get(url) as r:  # following it: B's count
                assert r.status == 200
                assert await r.json() == {"store": STORE, "key": on_b, "value": 2}
            async with http.get(
                f"{b.server.url}/stores/{STORE}/keys/{on_a}", allow_redirects=False
            ) as r:
                assert r.status == 307
                assert r.headers["Location"].startswith(a.server.url + "/")
            async with http.get(f"{b.server.url}/stores/{STORE}/owner/{on_a}") as r:
                body = await r.json()
                assert body["owner"] == a.server.url and body["local"] is False

            # B stops: its tombstone removes its record, A serves every partition again.
            started.remove(b)
            await stop_member(b)
            await eventually(lambda: b.server.url not in a.membership.members(), timeout=20)
            await eventually(lambda: a.partitions() == ALL and a.published(a) == ALL, timeout=40)
            await eventually(lambda: a.registry.is_ready(STORE), timeout=20)
            async with http.get(url, allow_redirects=False) as r:
                assert r.status == 200
                assert await r.json() == {"store": STORE, "key": on_b, "value": 2}
        tombstones = [
            r
            for r in await read_records(
                kafka_bootstrap, members_topic, await end_offset(kafka_bootstrap, members_topic)
            )
            if r.key == b.server.url.encode()
        ]
        assert tombstones and tombstones[-1].value is None
    finally:
        for m in reversed(started):
            await stop_member(m)


async def test_changelog_and_membership_use_a_shared_producer_and_leave_it_open(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    members_topic = await kafka_topic_factory(partitions=1, prefix="members")
    settings = ProducerSettings(kafka_bootstrap)
    cs = consumer_settings(kafka_bootstrap, kafka_group_id)
    async with settings.create_producer() as started:
        shared: Any = started
        ps = settings.with_producer(shared)
        store = changelogged(Stores.in_memory("kv"), ps, cs)
        kv = store.for_partition(TopicPartition(topic, 1)).open()
        layer: Any = kv.bytes_store  # the ChangelogBytesStore
        await layer.prepare()
        assert layer._producer is shared
        kv.put("a", 1)
        ack = layer.durable()
        assert ack is not None
        await asyncio.wait_for(ack, 10)
        kv.close()
        await store.wait_closed()

        mat = Materializer()
        membership = GroupMembership(cs, ps, members_topic, "http://member-1:1")
        await membership.start(mat)
        assert id(membership._producer) == id(shared)  # not one of its own
        await eventually(lambda: "http://member-1:1" in membership.members())
        await membership.stop()
        assert not registry_of(mat)._listeners  # it stopped following the registry
        await mat.shutdown()

        assert not shared._closed and not shared._sender.sender_task.done()
        await shared.send_and_wait(topic, b"still open", partition=0)
        (written,) = await read_records(kafka_bootstrap, store.topic, 1, timeout=10)
        assert (written.partition, written.key, written.value) == (
            1,
            kv._key("a"),
            kv._value(1),
        )
        records = await read_records(kafka_bootstrap, members_topic, 2, timeout=10)
        assert [r.value is None for r in records] == [False, True]  # record, tombstone


async def test_a_shared_producer_that_cannot_send_is_refused_naming_the_owner(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=1)
    settings = ProducerSettings(kafka_bootstrap)
    cs = consumer_settings(kafka_bootstrap, kafka_group_id)
    not_started = settings.with_producer(settings.create_producer())
    store = changelogged(Stores.in_memory("kv"), not_started, cs)
    kv = store.for_partition(TopicPartition(topic, 0)).open()
    layer: Any = kv.bytes_store
    with pytest.raises(ChangelogError, match=r"store 'kv'.*was not started"):
        await layer.prepare()
    kv.close()
    await store.wait_closed()
    membership = GroupMembership(cs, not_started, topic, "http://member-1:1")
    with pytest.raises(
        ProducerStartError, match=r"GroupMembership 'http://member-1:1'.*not started"
    ):
        await membership.start(mat := Materializer())
    await mat.shutdown()
    await not_started.producer.stop()


def test_track_store_names_bad_arguments_and_owner_of_needs_the_partition_count() -> None:
    cs = consumer_settings("localhost:1", "g")
    membership = GroupMembership(cs, ProducerSettings("localhost:1"), "members", "http://m:1")
    with pytest.raises(TypeError, match=r"track_store: name must be a non-empty str, got 3"):
        membership.track_store(3, "t")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"track_store\('s'\): topic must be"):
        membership.track_store("s", "")
    with pytest.raises(TypeError, match=r"track_store\('s'\): key_serializer must be callable"):
        membership.track_store("s", "t", key_serializer=b"x")  # type: ignore[arg-type]
    membership.track_store("s", "t")
    assert membership.owner_of("other", "k") is None
    with pytest.raises(RuntimeError, match=r"store 's': the partitions of 't' are not known"):
        membership.owner_of("s", "k")
