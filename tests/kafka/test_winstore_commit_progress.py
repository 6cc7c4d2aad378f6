"""A windowed stream over Kafka with a changelogged store commits its closed windows'
records while it runs (from the e2e report: with 2 windows closed and 21 records read,
nothing was committed until ``cache_size`` = 10,000 elements, and the commit point
reached the committer only with the next window, so a quiet partition never committed;
a kill -9 re-emitted 666 windows). Now a window waits for the write batch storing the
record that closed it and carries a commit point past it, and the cache is written every
``commit_interval`` seconds whatever the volume."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    DrainingControl,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.state import changelogged
from connectors.kafka.testkit import committed_offsets, produce_values
from reactive import Materializer, TimeWindows
from reactive.state import Stores
from tests.kafka.support import eventually, settings

pytestmark = pytest.mark.kafka


async def test_a_quiet_partition_commits_closed_windows_while_running(
    kafka_bootstrap: str, kafka_topic: str, kafka_group_id: str, materializer: Materializer
) -> None:
    # 20 orders at t = 0..19 s, then one at t = 100 s closing every 60 s window before it.
    await produce_values(
        kafka_bootstrap, kafka_topic, [f"c{i % 2},{i}" for i in range(20)] + ["c0,100"]
    )
    s = settings(kafka_bootstrap, kafka_group_id)
    tp = TopicPartition(kafka_topic, 0)
    store = changelogged(Stores.in_memory("w"), ProducerSettings(kafka_bootstrap), s)
    emitted: list[Any] = []
    control = (
        Consumer.source_with_offset_context(s, Subscriptions.assignment(tp))
        .map(lambda r: (r.value.split(",")[0], int(r.value.split(",")[1])))
        .windowed(
            TimeWindows.of(60),
            key=lambda o: o[0],
            timestamp=lambda o: o[1],
            zero=lambda: 0,
            aggregate=lambda n, _o: n + 1,
            store=store.for_partition(tp),
        )
        .map(lambda w: emitted.append(w) or w)
        .to_mat(
            Committer.sink_with_offset_context(CommitterSettings(max_interval=0.05)),
            DrainingControl,
        )
        .run(materializer)
    )
    try:
        await eventually(lambda: len(emitted) == 2, timeout=8)  # c0 and c1 of [0, 60)
        done = False

        async def poll() -> None:
            nonlocal done
            done = (
                (await committed_offsets(kafka_bootstrap, kafka_group_id, kafka_topic))[0] or 0
            ) >= 20

        for _ in range(40):  # 4 s: the 20 records of the closed windows are committed
            await poll()
            if done:
                break
            await asyncio.sleep(0.1)
        assert done, (
            "closed windows emitted, but their records' offsets never committed while running"
        )
    finally:
        await control.drain_and_shutdown()
        await store.wait_closed()
