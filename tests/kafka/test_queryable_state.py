"""Queryable state across a consumer group, on the embedded broker and over real HTTP:
two members each keep a partitioned KTable of one topic, serve it with a StateServer and
publish their endpoint and partitions through GroupMembership. Asking member A for a key
whose partition member B serves answers a 307 redirect to B (and a client following
redirects gets B's value); the owner metadata says the same.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from connectors.kafka import ProducerSettings
from connectors.kafka.membership import GroupMembership
from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import KTable, Tables
from reactive import Materializer
from reactive.state import registry_of
from reactive.state.http import StateServer
from tests.kafka.support import eventually, settings


async def test_a_member_redirects_a_query_to_the_member_owning_the_key(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=4)
    members_topic = await kafka_topic_factory(partitions=1, prefix="members")
    keys = [f"user-{i}" for i in range(40)]
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()
    try:  # keyed records, placed by the default partitioner (as a table's clients do)
        for k in keys:
            await producer.send_and_wait(topic, f"value of {k}".encode(), key=k.encode())
    finally:
        await producer.stop()

    cs = settings(kafka_bootstrap, kafka_group_id).with_key_deserializer(str_deserializer)
    ps = ProducerSettings(kafka_bootstrap)
    members: list[tuple[Materializer, KTable, StateServer, GroupMembership]] = []
    try:
        for name in ("a", "b"):
            mat = Materializer(name=name)
            table = Tables.table(cs, topic, None).run(mat)
            server = await StateServer(registry_of(mat)).start()
            membership = GroupMembership(cs, ps, members_topic, server.url)
            server.ownership = membership
            membership.track(table)
            await membership.start(mat)
            members.append((mat, table, server, membership))
        (_, ta, a, ma), (_, tb, b, mb) = members

        def settled() -> bool:
            pa, pb = ta.partitions, tb.partitions
            if not pa or not pb or pa & pb or pa | pb != {0, 1, 2, 3}:
                return False
            known = [ma.members(), mb.members()]
            return all(
                set(m.get(a.url, {}).get("tables", {}).get(ta.name, {}).get("partitions", [])) == pa
                and set(m.get(b.url, {}).get("tables", {}).get(tb.name, {}).get("partitions", []))
                == pb
                for m in known
            )

        await eventually(settled, timeout=30)
        await ta.ready(timeout=20)
        await tb.ready(timeout=20)
        on_b = next(k for k in keys if ta.partition_of(k) in tb.partitions)
        on_a = next(k for k in keys if ta.partition_of(k) in ta.partitions)
        assert on_b not in ta and tb.get(on_b) == f"value of {on_b}"
        p_b = ta.partition_of(on_b)
        async with aiohttp.ClientSession() as http:
            url = f"{a.url}/stores/{ta.name}/keys/{on_b}"
            async with http.get(url, allow_redirects=False) as r:
                assert r.status == 307
                assert r.headers["Location"] == f"{b.url}/stores/{ta.name}/keys/{on_b}"
                assert await r.json() == {
                    "store": ta.name,
                    "key": on_b,
                    "partition": p_b,
                    "owner": b.url,
                }
            async with http.get(url) as r:  # following the redirect: B's answer
                assert r.status == 200
                assert await r.json() == {
                    "store": ta.name,
                    "key": on_b,
                    "value": f"value of {on_b}",
                }
            async with http.get(f"{b.url}/stores/{ta.name}/owner/{on_a}") as r:
                body = await r.json()
                assert body["owner"] == a.url and body["local"] is False
            async with http.get(
                f"{a.url}/stores/{ta.name}/keys/{on_a}", allow_redirects=False
            ) as r:
                assert r.status == 200 and (await r.json())["value"] == f"value of {on_a}"
            async with http.get(f"{a.url}/stores/{ta.name}/size") as r:
                body = await r.json()
                assert body["partitions"] == sorted(ta.partitions) and body["size"] == len(ta)
    finally:
        for mat, table, server, membership in reversed(members):
            await membership.stop()
            await table.stop()
            await server.stop()
            await mat.shutdown()
