"""The checks a changelogged store makes before it restores or writes: a checkpoint
outside the changelog partition wipes the local store (Kafka Streams' corrupted task),
the checkpoint follows the acknowledged offsets, two source topics never share one
changelog partition, and an existing changelog must have the input's partition count."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import ProducerSettings, TopicPartition
from connectors.kafka.state import ChangelogError, ChangeloggedStore, changelogged
from connectors.kafka.testkit import EmbeddedBroker, create_topic
from reactive.state import Stores
from tests.kafka.changelog_app import consumer_settings

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.kafka


def kv_store(
    servers: str, state_dir: Path | None, group: str = "app", outside: str = "wipe"
) -> ChangeloggedStore:
    spec = Stores.persistent("kv", state_dir) if state_dir else Stores.in_memory("kv")
    return changelogged(
        spec,
        ProducerSettings(servers),
        consumer_settings(servers, group),
        checkpoint_outside_changelog=outside,  # type: ignore[arg-type]
    )


async def opened(store: ChangeloggedStore, tp: TopicPartition) -> Any:
    kv = store.for_partition(tp).open()
    await kv.bytes_store.prepare()
    return kv


async def durable(kv: Any) -> None:
    fut = kv.bytes_store.durable()
    if fut is not None:
        await fut


def checkpoint(state_dir: Path) -> int:
    return int(json.loads((state_dir / "kv.0.checkpoint").read_text())["offset"])


async def test_a_checkpoint_beyond_the_changelog_end_wipes_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        await create_topic(servers, "input")
        store = kv_store(servers, tmp_path)
        kv = await opened(store, TopicPartition("input", 0))
        for i, k in enumerate("abc"):
            kv.put(k, i)
            await durable(kv)
        kv.close()
        await store.wait_closed()
        assert checkpoint(tmp_path) == 3
    # A new cluster (the changelog is gone), the same state dir: the checkpoint (3) is
    # beyond the empty changelog's end (0). The stale a, b, c must not survive.
    async with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        await create_topic(servers, "input")
        store = kv_store(servers, tmp_path)
        with caplog.at_level(logging.WARNING, logger="connectors.kafka.state"):
            kv = await opened(store, TopicPartition("input", 0))
        assert sorted(kv.items()) == []
        warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("'kv' partition 0: checkpoint 3" in m and "end 0" in m for m in warning)
        kv.put("d", 4)
        await durable(kv)
        kv.put("e", 5)
        await durable(kv)
        kv.close()
        await store.wait_closed()
        assert checkpoint(tmp_path) == 2  # the new writes' offsets 0 and 1, acknowledged
        # The persistent store comes back on this broker: its checkpoint is valid now.
        store = kv_store(servers, tmp_path)
        kv = await opened(store, TopicPartition("input", 0))
        assert sorted(kv.items()) == [("d", 4), ("e", 5)]
        assert store.metrics()[0]["restore_start_offset"] == 2
        kv.close()
        await store.wait_closed()


async def test_keep_keeps_the_store_and_the_checkpoint_follows_the_acks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        await create_topic(servers, "input")
        store = kv_store(servers, tmp_path, outside="keep")
        kv = await opened(store, TopicPartition("input", 0))
        for i, k in enumerate("abc"):
            kv.put(k, i)
            await durable(kv)
        kv.close()
        await store.wait_closed()
    async with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        await create_topic(servers, "input")
        store = kv_store(servers, tmp_path, outside="keep")
        with caplog.at_level(logging.WARNING, logger="connectors.kafka.state"):
            kv = await opened(store, TopicPartition("input", 0))
        assert sorted(kv.items()) == [("a", 0), ("b", 1), ("c", 2)]
        assert any(
            "checkpoint 3" in r.getMessage() and "kept" in r.getMessage() for r in caplog.records
        )
        kv.put("d", 4)
        await durable(kv)
        kv.put("e", 5)
        await durable(kv)
        kv.close()
        await store.wait_closed()
        # The writes landed at offsets 0 and 1: the checkpoint follows them down from 3.
        assert checkpoint(tmp_path) == 2


def test_a_bad_checkpoint_policy_is_named() -> None:
    with pytest.raises(ValueError, match="checkpoint_outside_changelog must be 'wipe' or 'keep'"):
        kv_store("127.0.0.1:9", None, outside="drop")


async def test_a_checkpoint_inside_the_last_batch_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The embedded broker lists the end of a log whose last batch holds 3 records as
    1 (its base offset + 1): the checkpoint (3) is still valid and the store is kept."""
    async with EmbeddedBroker() as broker:
        servers = broker.bootstrap_servers
        await create_topic(servers, "input")
        store = kv_store(servers, tmp_path)
        kv = await opened(store, TopicPartition("input", 0))
        kv.bytes_store.write([(b"a", b"1"), (b"b", b"2"), (b"c", b"3")])  # one batch
        await durable(kv)
        kv.close()
        await store.wait_closed()
        assert checkpoint(tmp_path) == 3
        store = kv_store(servers, tmp_path)
        with caplog.at_level(logging.WARNING, logger="connectors.kafka.state"):
            kv = await opened(store, TopicPartition("input", 0))
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert sorted(kv.bytes_store.scan()) == [(b"a", b"1"), (b"b", b"2"), (b"c", b"3")]
        assert store.metrics()[0]["restored_records"] == 0
        kv.close()
        await store.wait_closed()


async def test_a_checkpoint_below_the_log_start_is_outside_the_log() -> None:
    """Compaction or retention deleted the records after the checkpoint: wiped too (no
    fetch is needed to decide, so no broker here)."""
    store = kv_store("127.0.0.1:9", None)
    layer = store.for_partition(TopicPartition("input", 0)).open().bytes_store
    check = layer._checkpoint_in_log
    assert await check(None, 4, 5, 9) is False  # type: ignore[arg-type]
    assert await check(None, 5, 5, 9) is True  # type: ignore[arg-type]
    assert await check(None, 9, 5, 9) is True  # type: ignore[arg-type]
    assert await check(None, 10, 5, 5) is False  # type: ignore[arg-type]


async def test_two_source_topics_cannot_share_a_changelog_partition(
    kafka_bootstrap: str, kafka_topic_factory: Any, kafka_group_id: str
) -> None:
    a = await kafka_topic_factory(partitions=1)
    b = await kafka_topic_factory(partitions=1)
    store = kv_store(kafka_bootstrap, None, kafka_group_id)
    ka = await opened(store, TopicPartition(a, 0))
    with pytest.raises(ChangelogError) as err:
        store.for_partition(TopicPartition(b, 0)).open()
    message = str(err.value)
    assert all(s in message for s in ("'kv'", repr(a), repr(b), "partition 0", "own store"))
    ka.put("x", 1)
    await durable(ka)
    ka.close()
    # Once the first instance is closed, the partition may serve the other topic.
    kb = await opened(store, TopicPartition(b, 0))
    kb.close()
    await store.wait_closed()


@pytest.mark.parametrize("changelog_partitions", [1, 4])
async def test_a_changelog_with_another_partition_count_is_refused(
    kafka_bootstrap: str, kafka_topic_factory: Any, changelog_partitions: int
) -> None:
    source = await kafka_topic_factory(partitions=2)
    changelog = await kafka_topic_factory(partitions=changelog_partitions)
    store = changelogged(
        Stores.in_memory("kv"),
        ProducerSettings(kafka_bootstrap),
        consumer_settings(kafka_bootstrap, "g"),
        topic=changelog,
    )
    kv = store.for_partition(TopicPartition(source, 0)).open()
    relation = "fewer" if changelog_partitions < 2 else "more"
    with pytest.raises(ChangelogError, match=f"{changelog_partitions} partitions, {relation}"):
        await kv.bytes_store.prepare()
    kv.close()
    await store.wait_closed()
