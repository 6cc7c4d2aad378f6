"""End to end: a stream that fails in front of a committer fails with *its* error.

Seen in a scoring service behind ``RestartSource.on_failures_with_backoff``
(committable source -> score -> producer -> ``Committer.flow``): a poison record made the
scoring function raise; the committer, as Alpakka's, still commits what it collected
before the failure, but the failure had also cancelled the consumer, so that last commit
failed, and the committer failed the stream with the *commit's* error: the restart was
logged "after KafkaCommitError(... the consumer is closing ...)", and the poison record's
exception was reported nowhere. ``Producer.committable_sink`` already kept the upstream
failure; now the committers do too, and all of them add the commit's failure to it as a
note.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    Producer,
    ProducerMessage,
    ProducerSettings,
    Subscriptions,
)
from connectors.kafka.testkit import produce_values
from reactive import Keep, Sink
from tests.kafka.support import settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka


class Poison(Exception):
    pass


def _score(msg: Any) -> Any:
    if msg.record.value == "poison":
        raise Poison(f"cannot score offset {msg.record.offset}")
    return msg.committable_offset


async def _never_answered(self: AIOKafkaConsumer, offsets: Any = None) -> None:
    await asyncio.Event().wait()  # the commit the closing consumer cannot answer any more


@pytest.mark.parametrize("committer", ["sink", "flow", "batch_flow", "committable_sink"])
async def test_the_upstream_failure_wins_over_the_last_commit_failing(
    kafka_bootstrap: str,
    kafka_topic: str,
    kafka_group_id: str,
    materializer: Materializer,
    monkeypatch: pytest.MonkeyPatch,
    committer: str,
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b", "poison", "c"])
    monkeypatch.setattr(AIOKafkaConsumer, "commit", _never_answered)
    commits = CommitterSettings(max_batch=100, max_interval=30.0)
    source = Consumer.committable_source(
        settings(kafka_bootstrap, kafka_group_id, commit_timeout=8.0),
        Subscriptions.topics(kafka_topic),
    ).map(_score)
    sink: Any
    if committer == "sink":
        sink = Committer.sink(commits)
    elif committer == "committable_sink":
        source = source.map(ProducerMessage.pass_through)
        sink = Producer.committable_sink(ProducerSettings(kafka_bootstrap), commits)
    else:
        flow = Committer.flow(commits) if committer == "flow" else Committer.batch_flow(commits)
        sink = flow.to_mat(Sink.ignore(), Keep.right)
    control, done = source.to_mat(sink, Keep.both).run(materializer)
    with pytest.raises(Poison, match="cannot score offset 2") as info:
        await asyncio.wait_for(done, 6.0)
    await asyncio.wait_for(control.is_shutdown, 5.0)
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert re.search(r"failed too: KafkaCommitError.*consumer (closed|is closing)", notes), notes
