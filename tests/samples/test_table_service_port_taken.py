"""The table-based service's "HTTP port taken" path closes every Kafka client it started.

``start_table_service`` runs the scoring stream, then binds the HTTP port; when the bind
fails it stops the stream and waits for the statistics store to close. The store's
changelog may still be preparing then (creating its topic with an admin client,
restoring, starting its producer): that work must be over, every client closed, when the
``OSError`` reaches the caller. It was not: the topic creation ran on (shielded from the
cancelled prepare), and a loop closed soon after (the demo's ``asyncio.run``) found its
admin client's connection open (``LeftOpenAtLoopCloseError`` on uvloop, issue 16). The
autouse leak check (tests/leakcheck.py) fails these tests if any task is left behind.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from connectors.kafka import ConsumerSettings, ProducerSettings, TopicPartition
from connectors.kafka.state import changelogged
from connectors.kafka.testkit import create_topic
from reactive import Keep, KillSwitches, Materializer, Sink, Source
from reactive.state import Stores
from samples.model_serving.service import Topics
from samples.model_serving.table_service import TableServiceConfig, start_table_service

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.kafka


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def slow_admin_start(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on admin clients (the changelog's, creating its topic) start 2 s late, so
    the HTTP bind fails while the store still prepares (the order the demo met now and
    then under load). Records ``"started"`` / ``"closed"`` for each admin client."""
    events: list[str] = []
    start, close = AIOKafkaAdminClient.start, AIOKafkaAdminClient.close

    async def late_start(self: Any) -> None:
        await asyncio.sleep(2.0)
        await start(self)
        events.append("started")

    async def tracked_close(self: Any) -> None:
        await close(self)
        events.append("closed")

    monkeypatch.setattr(AIOKafkaAdminClient, "start", late_start)
    monkeypatch.setattr(AIOKafkaAdminClient, "close", tracked_close)
    return events


async def make_topics(servers: str) -> Topics:
    run = uuid.uuid4().hex[:6]
    topics = Topics(
        data=f"taken-data-{run}",
        models=f"taken-models-{run}",
        scored=f"taken-scored-{run}",
        dead_letters=f"taken-dead-{run}",
    )
    for name, partitions in zip(topics.all(), (3, 1, 3, 1)):
        await create_topic(servers, name, partitions)
    return topics


async def test_a_taken_port_closes_the_changelog_being_prepared(
    kafka_bootstrap: str, tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    topics = await make_topics(kafka_bootstrap)
    admins = slow_admin_start(monkeypatch)
    config = TableServiceConfig(
        kafka_bootstrap,
        tmp_path,
        topics,
        group_id=f"taken-{topics.data}",
        http_port=taken_port,
        consumer_properties={"session_timeout_ms": 2000, "heartbeat_interval_ms": 200},
    )
    with pytest.raises(OSError, match=f"cannot serve HTTP on 127.0.0.1:{taken_port}"):
        await start_table_service(config)
    # Whatever of the changelog's preparation ran is over: no admin client still open.
    assert admins.count("closed") >= admins.count("started")


async def test_wait_closed_covers_an_instance_closed_while_preparing(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    materializer: Materializer,
) -> None:
    # The store layer alone: an instance closed during its prepare (the stateful stage's
    # post_stop when the stream stops early); wait_closed then returns only when the
    # prepare's clients are closed, and the prepare ends with the store closed.
    topic = f"prep-{uuid.uuid4().hex[:6]}"
    await create_topic(kafka_bootstrap, topic, 1)
    admins = slow_admin_start(monkeypatch)
    store = changelogged(
        Stores.persistent("counts", tmp_path),
        ProducerSettings(kafka_bootstrap),
        ConsumerSettings(kafka_bootstrap),
        application_id=f"app-{topic}",
    )
    spec = store.for_partition(TopicPartition(topic, 0))
    switch, done = (
        Source.never()
        .via_mat(KillSwitches.single(), Keep.right)
        .stateful_map_by_key(spec, lambda x: x, lambda s, x: (s, x), Keep.left)
        .to_mat(Sink.ignore(), Keep.both)
        .run(materializer)
    )
    await asyncio.sleep(0.1)  # the stage started; its prepare waits for the admin client
    switch.shutdown()
    await done
    await store.wait_closed()
    assert admins.count("closed") >= admins.count("started")
    assert not store.instances
