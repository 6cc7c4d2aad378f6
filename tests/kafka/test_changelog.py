"""Changelogged stores (``connectors.kafka.state``) against the embedded broker: updates
land in the changelog partition of their input partition, deletes are tombstones, a
restore rebuilds the store exactly, a persistent store restores only the tail after its
checkpoint, a revoked partition's store is closed, and offsets are committed only after
the changelog acknowledged the updates they caused."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    DrainingControl,
    ProducerSettings,
    Subscriptions,
)
from connectors.kafka.state import ChangelogError, changelogged
from connectors.kafka.testkit import committed_offsets, produce_values, read_records
from reactive.state import StoreClosedError, Stores, StoreView
from tests.kafka.changelog_app import consumer_settings, counts_store, run_counting
from tests.kafka.support import eventually


async def produce_keyed(bootstrap: str, topic: str, keys: list[tuple[int, str]]) -> None:
    """One record per ``(partition, key)``, in order."""
    by_partition: dict[int, list[str]] = {}
    for p, k in keys:
        by_partition.setdefault(p, []).append(k)
    for p, ks in by_partition.items():
        for k in ks:  # produce_values takes one key per call
            await produce_values(bootstrap, topic, [b"x"], key=k, partition=p)


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
    await eventually(lambda: sum(m["records_acked"] for m in store.metrics().values()) == 5)
    assert dict(views[0].items()) == {"a": 2, "d": 1}
    assert dict(views[1].items()) == {"b": 1, "c": 1}
    await control.drain_and_shutdown()
    await store.wait_closed()
    assert await committed_offsets(kafka_bootstrap, kafka_group_id, topic, [0, 1]) == {0: 3, 1: 2}
    records = await changelog(kafka_bootstrap, store.topic, 5)
    assert Counter((r.partition, r.key) for r in records) == Counter(
        (p, Stores.in_memory("x").open()._key(k)) for p, k in keys
    )
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
    assert {p: m["restored_records"] for p, m in store2.metrics().items()} == {0: 3, 1: 2}
    await control2.drain_and_shutdown()
    await store2.wait_closed()
