"""A retried commit never lands below a newer one (parallelism > 1).

With ``parallelism`` > 1 a newer batch of a partition can be committed while an older
one waits for the retry of a transient failure. Sent after the newer request, the older
offset would reach the group coordinator after it and move the group back (records
re-delivered after a restart). ``Committer.sink`` / ``Committer.batch_flow`` and
``Producer.committable_sink`` share the retrying (``CommitRunner``), so both are checked.

The committer ref here is a scripted coordinator: a request is applied when it is sent,
as Kafka applies a connection's requests in order, unless it is scripted to be rejected;
its answer waits for the test (an ``asyncio.Event``), and the backoff runs on the manual
clock, so every interleaving is forced, none is timed.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import (
    CommittableOffset,
    Committer,
    CommitterSettings,
    CommitTimeoutError,
    KafkaCommitError,
    Producer,
    ProducerMessage,
    ProducerSettings,
    TopicPartition,
)
from connectors.kafka.messages import GroupTopicPartition
from reactive import Done, Keep, Materializer, Sink, Source

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from reactive.testkit import ManualClock

pytestmark = pytest.mark.kafka

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)
G0 = GroupTopicPartition("g", "t", 0)
#: Two batches of three offsets, both in flight at once.
TWO_AT_ONCE = CommitterSettings(max_batch=3, max_interval=3600, parallelism=2)
#: The backoff before a commit's second attempt (committer._BACKOFF).
FIRST_BACKOFF = 0.1
#: A guard against hangs only; nothing here depends on how long anything takes.
GUARD = 20


class Request:
    """How the scripted coordinator treats one commit request."""

    def __init__(self, *, applied: bool = True, error: BaseException | None = None) -> None:
        self.applied = applied
        self.error = error
        self.answer = asyncio.Event()  # set by the test: the answer goes back


class ScriptedCoordinator:
    """A ``KafkaCommitterRef``: the n-th request follows ``script[n]`` (default: applied
    and answered at once); records what it was sent, what the group holds, and every
    request that moved a partition backwards."""

    def __init__(self, script: Mapping[int, Request] | None = None) -> None:
        self.script = dict(script or {})
        self.sent: list[dict[TopicPartition, int]] = []
        self.group: dict[TopicPartition, int] = {}
        self.backwards: list[tuple[TopicPartition, int, int]] = []
        self._changed = asyncio.Event()

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        request = self.script.get(len(self.sent))
        self.sent.append(dict(offsets))
        if request is None or request.applied:
            for tp, offset in offsets.items():
                held = self.group.get(tp)
                if held is not None and offset < held:
                    self.backwards.append((tp, held, offset))
                self.group[tp] = offset
        self._changed.set()
        if request is not None:
            await request.answer.wait()
            if request.error is not None:
                raise request.error

    async def until(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (checked after every request)."""
        while not predicate():
            self._changed.clear()
            await asyncio.wait_for(self._changed.wait(), GUARD)


def offsets(ref: Any, *numbers: int, partition: int = 0) -> list[CommittableOffset]:
    return [CommittableOffset("g", "t", partition, n, ref) for n in numbers]


def timeout() -> CommitTimeoutError:
    return CommitTimeoutError("not acknowledged within commit_timeout")


async def test_retry_is_dropped_when_a_newer_commit_was_acknowledged(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    # The report's case: batch 0..2 times out after batch 3..5 was acknowledged.
    older = Request(applied=False, error=timeout())
    ref = ScriptedCoordinator({0: older})
    done = Source.from_iterable(offsets(ref, *range(6))).run_with(
        Committer.sink(TWO_AT_ONCE), materializer
    )
    await ref.until(lambda: len(ref.sent) == 2)
    assert ref.sent == [{TP0: 3}, {TP0: 6}]  # the newer one is acknowledged at once
    older.answer.set()
    await manual_clock.advance(FIRST_BACKOFF)
    assert await asyncio.wait_for(done, GUARD) is Done
    assert ref.sent == [{TP0: 3}, {TP0: 6}]  # offset 3 was never sent again
    assert ref.backwards == []
    assert ref.group == {TP0: 6}


@pytest.mark.parametrize("newer_outcome", ["acknowledged", "fails for good"])
async def test_retry_waits_while_a_newer_commit_is_unacknowledged(
    manual_clock: ManualClock, materializer: Materializer, newer_outcome: str
) -> None:
    # The older batch fails; its backoff passes while the newer request, already applied
    # by the coordinator, still waits for its answer. Sending the retry now would put
    # offset 3 after 6.
    older = Request(applied=False, error=timeout())
    newer = Request(
        error=None if newer_outcome == "acknowledged" else RuntimeError("no answer, gave up")
    )
    ref = ScriptedCoordinator({0: older, 1: newer})
    batches = Source.from_iterable(offsets(ref, *range(6))).run_with(
        Committer.batch_flow(TWO_AT_ONCE).to_mat(Sink.seq(), Keep.right), materializer
    )
    await ref.until(lambda: len(ref.sent) == 2)
    older.answer.set()
    await manual_clock.advance(FIRST_BACKOFF)
    await manual_clock.advance(FIRST_BACKOFF * 8)  # well past every backoff
    assert ref.sent == [{TP0: 3}, {TP0: 6}]  # the retry waits for the newer answer
    newer.answer.set()
    if newer_outcome == "acknowledged":
        result = await asyncio.wait_for(batches, GUARD)
        # Both batches count as committed: the older one through the newer request.
        assert [b.offsets() for b in result] == [{G0: 5}, {G0: 2}]
    else:
        with pytest.raises(KafkaCommitError, match=r"failed after 1 attempt\(s\): no answer"):
            await asyncio.wait_for(batches, GUARD)
    assert ref.sent == [{TP0: 3}, {TP0: 6}]
    assert ref.backwards == []
    assert ref.group == {TP0: 6}


async def test_retry_still_commits_the_partitions_no_newer_commit_covers(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    older = Request(applied=False, error=timeout())
    ref = ScriptedCoordinator({0: older})
    elements = [
        *offsets(ref, 0),
        *offsets(ref, 0, partition=1),
        *offsets(ref, 1),  # batch 1: p0 -> 2, p1 -> 1
        *offsets(ref, 2, 3, 4),  # batch 2: p0 -> 5
    ]
    done = Source.from_iterable(elements).run_with(Committer.sink(TWO_AT_ONCE), materializer)
    await ref.until(lambda: len(ref.sent) == 2)
    older.answer.set()
    await manual_clock.advance(FIRST_BACKOFF)
    assert await asyncio.wait_for(done, GUARD) is Done
    assert ref.sent == [{TP0: 2, TP1: 1}, {TP0: 5}, {TP1: 1}]
    assert ref.backwards == []
    assert ref.group == {TP0: 5, TP1: 1}


async def test_committable_sink_retry_never_lands_below_a_newer_commit(
    manual_clock: ManualClock, materializer: Materializer, kafka_bootstrap: str
) -> None:
    # Producer.committable_sink shares the retrying with Committer.sink.
    older = Request(applied=False, error=timeout())
    newer = Request()
    ref = ScriptedCoordinator({0: older, 1: newer})
    done = Source.from_iterable(
        [ProducerMessage.pass_through(o) for o in offsets(ref, *range(6))]
    ).run_with(
        Producer.committable_sink(ProducerSettings(kafka_bootstrap), TWO_AT_ONCE), materializer
    )
    await ref.until(lambda: len(ref.sent) == 2)
    older.answer.set()
    await manual_clock.advance(FIRST_BACKOFF)  # the retry is due; the newer is unanswered
    assert ref.sent == [{TP0: 3}, {TP0: 6}]
    newer.answer.set()
    assert await asyncio.wait_for(done, GUARD) is Done
    assert ref.sent == [{TP0: 3}, {TP0: 6}]
    assert ref.backwards == []
    assert ref.group == {TP0: 6}
