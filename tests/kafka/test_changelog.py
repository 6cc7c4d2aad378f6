"""Changelogged stores (``connectors.kafka.state``) against the embedded broker: updates
land in the changelog partition of their input partition, deletes are tombstones, a
restore rebuilds the store exactly, a persistent store restores only the tail after its
checkpoint, a revoked partition's store is closed, and offsets are committed only after
the changelog acknowledged the updates they caused."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import ProducerSettings, TopicPartition
from connectors.kafka.state import ChangelogError, changelogged
from connectors.kafka.testkit import committed_offsets, produce_values, read_records
from reactive.state import StoreClosedError, Stores, StoreView
from tests.kafka.changelog_app import consumer_settings, counts_store, run_counting
from tests.kafka.support import eventually

if TYPE_CHECKING:
    from pathlib import Path


async def produce_keyed(bootstrap: str, topic: str, keys: list[tuple[int, str]]) -> None:
    """One record per ``(partition, key)``, in order."""
    by_partition: dict[int, list[str]] = {}
    for p, k in keys:
        by_partition.setdefault(p, []).append(k)
    for p, ks in by_partition.items():
        for k in ks:  # produce_values takes one key per call
            await produce_values(bootstrap, topic, [b"x"], key=k, partition=p)


async def committed(bootstrap: str, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Wait until ``group`` committed ``offsets`` (partition -> next offset)."""
    for _ in range(100):
        if await committed_offsets(bootstrap, group, topic, list(offsets)) == offsets:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"offsets {offsets} not committed")


async def changelog(bootstrap: str, topic: str, n: int) -> list[Any]:
    return await read_records(bootstrap, topic, n, timeout=10)


async def test_updates_land_in_their_partition_and_restore_rebuilds_the_store(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    keys = [(0, "a"), (1, "b"), (0, "a"), (1, "c"), (0, "d")]
    await produce_keyed(kafka_bootstrap, topic, keys)
    store = counts_store(kafka_bootstrap, kafka_group_id)
    assert store.topic == f"{kafka_group_id}-counts-changelog"
    views: dict[int, StoreView[Any, Any]] = {}
    control = run_counting(kafka_bootstrap, topic, kafka_group_id, store, views)
    await committed(kafka_bootstrap, kafka_group_id, topic, {0: 3, 1: 2})  # after the acks
    assert dict(views[0].items()) == {"a": 2, "d": 1}
    assert dict(views[1].items()) == {"b": 1, "c": 1}
    acked = {p: m["records_acked"] for p, m in store.metrics().items()}
    assert all(m["writes_in_flight"] == 0 for m in store.metrics().values())
    await control.drain_and_shutdown()
    await store.wait_closed()
    assert await committed_offsets(kafka_bootstrap, kafka_group_id, topic, [0, 1]) == {0: 3, 1: 2}
    # The updates of elements processed while a write was in flight go out together, the
    # last value of each key (what compaction keeps): 4 or 5 records, each key's last
    # record holding its count, in its input partition.
    records = await changelog(kafka_bootstrap, store.topic, sum(acked.values()))
    assert 4 <= len(records) <= 5
    kv = Stores.in_memory("x").open()
    last = {(r.partition, r.key): r.value for r in records}
    assert last == {
        (0, kv._key("a")): kv._value(2),
        (0, kv._key("d")): kv._value(1),
        (1, kv._key("b")): kv._value(1),
        (1, kv._key("c")): kv._value(1),
    }
    assert Counter(r.partition for r in records) == Counter(acked)
    with pytest.raises(StoreClosedError):
        views[0].get("a")

    # Same group, nothing new to read: the new instances restore the changelog exactly.
    store2 = counts_store(kafka_bootstrap, kafka_group_id)
    views2: dict[int, StoreView[Any, Any]] = {}
    control2 = run_counting(kafka_bootstrap, topic, kafka_group_id, store2, views2)
    await eventually(lambda: len(views2) == 2 and all(v.metrics() for v in views2.values()))
    await eventually(lambda: all(not m["restoring"] for m in store2.metrics().values()))
    assert dict(views2[0].items()) == {"a": 2, "d": 1}
    assert dict(views2[1].items()) == {"b": 1, "c": 1}
    assert {p: m["restored_records"] for p, m in store2.metrics().items()} == acked
    await control2.drain_and_shutdown()
    await store2.wait_closed()


async def test_deletes_are_tombstones_and_durable_means_acknowledged(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    store = counts_store(kafka_bootstrap, kafka_group_id, name="kv")
    spec = store.for_partition(TopicPartition(topic, 1))
    kv = spec.open()
    with pytest.raises(ChangelogError, match="not restored yet"):
        kv.put("early", 1)
    await kv.bytes_store.prepare()
    kv.put("a", 1)
    kv.put("b", 2)
    kv.delete("a")
    ack = kv.bytes_store.durable()
    assert ack is not None and not ack.done()
    await asyncio.wait_for(ack, 10)
    assert kv.bytes_store.durable() is None
    records = await changelog(kafka_bootstrap, store.topic, 3)
    assert [(r.partition, r.key, r.value) for r in records] == [
        (1, kv._key("a"), kv._value(1)),
        (1, kv._key("b"), kv._value(2)),
        (1, kv._key("a"), None),
    ]
    kv.close()
    await store.wait_closed()
    with pytest.raises(StoreClosedError):
        kv.get("b")

    again = store.for_partition(TopicPartition(topic, 1)).open()
    await again.bytes_store.prepare()
    assert dict(again.items()) == {"b": 2}
    assert again.bytes_store.metrics()["restored_records"] == 3
    again.close()
    await store.wait_closed()


async def test_a_persistent_store_restores_only_the_tail_after_its_checkpoint(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str, tmp_path: Path
) -> None:
    topic = await kafka_topic_factory(partitions=1)
    group = kafka_group_id

    async def run(keys: list[str], store_dir: Path | None, total: int) -> dict[str, Any]:
        await produce_keyed(kafka_bootstrap, topic, [(0, k) for k in keys])
        store = counts_store(kafka_bootstrap, group, str(store_dir) if store_dir else None)
        views: dict[int, StoreView[Any, Any]] = {}
        control = run_counting(kafka_bootstrap, topic, group, store, views)
        await eventually(lambda: 0 in views and sum(dict(views[0].items()).values()) == total)
        await eventually(lambda: store.metrics()[0]["writes_in_flight"] == 0)
        metrics = store.metrics()[0]
        state = dict(views[0].items())
        await control.drain_and_shutdown()
        await store.wait_closed()
        return {
            "restored": metrics["restored_records"],
            "state": state,
            "written": metrics["records_acked"],
        }

    # Updates made while a write is in flight go out together, the last value of each
    # key: a run writes between (distinct keys) and (records) changelog records.
    first = await run(["a", "b", "a", "c", "a"], tmp_path, 5)
    assert first["restored"] == 0 and first["state"] == {"a": 3, "b": 1, "c": 1}
    assert 3 <= first["written"] <= 5
    checkpoint = tmp_path / "counts.0.checkpoint"
    assert f'"offset": {first["written"]}' in checkpoint.read_text()
    # Another member (in memory) takes the partition: it restores them all, writes more.
    second = await run(["a", "b", "d"], None, 8)
    assert second["restored"] == first["written"]
    assert second["state"] == {"a": 4, "b": 2, "c": 1, "d": 1}
    assert second["written"] == 3  # three distinct keys
    # The persistent store comes back: only the records after its checkpoint.
    third = await run(["a"], tmp_path, 9)
    assert third["restored"] == second["written"]
    assert third["state"] == {"a": 5, "b": 2, "c": 1, "d": 1}


async def test_a_revoked_partition_closes_its_store(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await produce_keyed(kafka_bootstrap, topic, [(0, "a"), (1, "b"), (1, "b")])
    store1 = counts_store(kafka_bootstrap, kafka_group_id)
    views1: dict[int, StoreView[Any, Any]] = {}
    control1 = run_counting(kafka_bootstrap, topic, kafka_group_id, store1, views1)
    await committed(kafka_bootstrap, kafka_group_id, topic, {0: 1, 1: 2})
    store2 = counts_store(kafka_bootstrap, kafka_group_id)
    views2: dict[int, StoreView[Any, Any]] = {}
    control2 = run_counting(kafka_bootstrap, topic, kafka_group_id, store2, views2)
    # The second member gets one partition; the first member's store of it is closed.
    await eventually(lambda: len(store2.metrics()) == 1, timeout=20)
    (moved,) = store2.metrics()
    await eventually(lambda: not views1[moved].is_open)
    with pytest.raises(StoreClosedError):
        views1[moved].get("a")
    assert views1[1 - moved].is_open
    await eventually(lambda: not store2.metrics()[moved]["restoring"])
    assert dict(views2[moved].items()) == ({"a": 1} if moved == 0 else {"b": 2})
    await asyncio.gather(control2.drain_and_shutdown(), control1.drain_and_shutdown())
    await store1.wait_closed()
    await store2.wait_closed()


def test_bad_arguments_are_named(kafka_bootstrap: str) -> None:
    ps = ProducerSettings(kafka_bootstrap)
    cs = consumer_settings(kafka_bootstrap, "g")
    with pytest.raises(TypeError, match="spec must be a StoreSpec, got 'counts'"):
        changelogged("counts", ps, cs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="group_id"):
        changelogged(Stores.in_memory("c"), ps, cs.with_group_id(None))
    assert changelogged(Stores.in_memory("c"), ps, cs, topic="t").topic == "t"
    with pytest.raises(TypeError, match=r"needs the TopicPartition of the substream.*got 0"):
        changelogged(Stores.in_memory("c"), ps, cs).for_partition(0)  # type: ignore[arg-type]
