"""End to end: a commit that meets a closing consumer fails at once.

Seen in a scoring service (committable source -> Partition -> a two-inlet stage and a
dead-letter branch -> Merge -> ``Producer.committable_sink``): a poison record failed the
scoring stage; the failure cancelled the consumer source, which closed its client, while
the committing sink committed the offsets it had collected before the failure. A commit
sent as the client's ``stop()`` closed its connections was never answered: the sink
waited the whole ``commit_timeout`` (15 s) before the stream failed with the poison
record's error, so a ``RestartSource`` around it restarted 15 s late (1 run in 5).
Alpakka's consumer actor answers a commit while stopping with a ``StoppingException`` at
once; now the commits in flight when the client starts closing, and those requested
later, fail at once with ``ConsumerClosedError``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.kafka import Consumer, ConsumerClosedError, Subscriptions
from connectors.kafka.testkit import produce_values
from reactive import Keep, Sink
from tests.kafka.support import eventually, settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka

COMMIT_TIMEOUT = 8.0  # what the commit waited before; the test allows 3 s


async def _running_source(
    bootstrap: str, topic: str, group: str, materializer: Materializer
) -> tuple[Any, list[Any]]:
    await produce_values(bootstrap, topic, ["a", "b", "c"])
    got: list[Any] = []
    control, _done = (
        Consumer.committable_source(
            settings(bootstrap, group, commit_timeout=COMMIT_TIMEOUT), Subscriptions.topics(topic)
        )
        .to_mat(Sink.foreach(got.append), Keep.both)
        .run(materializer)
    )
    await eventually(lambda: len(got) == 3)
    return control, got


async def _settles_quickly(commit: asyncio.Future[Any]) -> None:
    """The commit ends within 3 s: acknowledged, or refused naming the stage."""
    await asyncio.wait({commit}, timeout=3.0)
    if not commit.done():
        raise AssertionError(
            "a commit meeting the consumer's close waited for an answer that never comes"
        )
    err = commit.exception()
    if err is not None:
        assert isinstance(err, ConsumerClosedError), repr(err)
        assert "[Consumer.committable_source]" in str(err)


async def test_a_commit_sent_as_the_client_stops_fails_at_once(
    kafka_bootstrap: str,
    kafka_topic: str,
    kafka_group_id: str,
    materializer: Materializer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control, got = await _running_source(kafka_bootstrap, kafka_topic, kafka_group_id, materializer)
    commits: list[asyncio.Future[Any]] = []
    stop = AIOKafkaConsumer.stop

    async def stop_with_a_commit_under_way(self: AIOKafkaConsumer) -> None:
        # The committing sink's last commit arrives while the client stops.
        stopping = asyncio.ensure_future(stop(self))
        # 1-3 ms into stop() the commit's request goes out as the client leaves the group
        # and closes its connections: it was never answered (here, every run).
        await asyncio.sleep(0.002)
        commits.append(asyncio.ensure_future(got[-1].committable_offset.commit()))
        await stopping

    monkeypatch.setattr(AIOKafkaConsumer, "stop", stop_with_a_commit_under_way)
    await asyncio.wait_for(control.shutdown(), 10)
    assert len(commits) == 1
    await _settles_quickly(commits[0])


async def test_a_commit_unanswered_when_the_client_starts_closing_fails_at_once(
    kafka_bootstrap: str,
    kafka_topic: str,
    kafka_group_id: str,
    materializer: Materializer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control, got = await _running_source(kafka_bootstrap, kafka_topic, kafka_group_id, materializer)

    async def never_answered(self: AIOKafkaConsumer, offsets: Any = None) -> None:
        await asyncio.Event().wait()  # the answer lost with the closed connection

    monkeypatch.setattr(AIOKafkaConsumer, "commit", never_answered)
    commit = asyncio.ensure_future(got[-1].committable_offset.commit())
    await asyncio.sleep(0.05)
    assert not commit.done()
    shutdown = asyncio.ensure_future(control.shutdown())
    await _settles_quickly(commit)
    with pytest.raises(ConsumerClosedError, match="before the consumer closed"):
        await commit
    await asyncio.wait_for(shutdown, 10)
    # A commit requested after the close is refused at once too.
    with pytest.raises(ConsumerClosedError, match="shut down"):
        await got[0].committable_offset.commit()
