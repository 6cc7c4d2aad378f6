"""One deadline for a partition revocation: ``commit_timeout`` in all, not per wait.

A revocation waits for three things before aiokafka hands the partitions over: the stage
dropping the buffered records of the revoked partitions, the committer stages committing
the offsets they hold of them, and the commits in flight. Each wait used to get the whole
``ConsumerSettings.commit_timeout``: a revocation whose waits all stalled held the group's
rebalance (and its other members) three times as long, past a session or rebalance
timeout, where the README promises "up to ``commit_timeout``". Now the deadline is taken
once, when the revocation starts, and each wait gets what is left of it; once it is spent
the remaining waits are skipped (the held offsets are still asked for, and the warning
that they were not committed in time is logged as before).

Each wait is stalled here: the stage never confirms the filtering (its island does not
get to run it), a committer stage's commit of its held offsets is never acknowledged, and
a commit in flight gets no answer. The revocation is called directly on a real consumer
stage (as ``test_revoked_buffer`` does), with a short ``commit_timeout``: once with a
listener that returns (three waits), once with one that fails (the filtering, then the
commits in flight, before the source fails).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import Consumer, KafkaConsumerError, Subscriptions, TopicPartition
from connectors.kafka.testkit import produce_values
from reactive import Keep, Sink
from tests.kafka.support import RebalanceMember, eventually, settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka

#: The revocation's commit_timeout (seconds): three stalled waits took 3 x this.
TIMEOUT = 0.3


class _Unconfirmed:
    """Stands for the stage's revocation callback when its island does not run it in
    time: the filtering is never confirmed."""

    def __init__(self) -> None:
        self.pending: list[asyncio.Future[Any]] = []

    def invoke_with_feedback(self, _tps: Any) -> asyncio.Future[Any]:
        fut = asyncio.get_running_loop().create_future()
        self.pending.append(fut)
        return fut


class _Listener(RebalanceMember):
    """The member's listener; fails the revocations once ``fail`` is set."""

    def __init__(self) -> None:
        super().__init__("member")
        self.fail = False

    async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        await super().on_partitions_revoked(revoked)
        if self.fail:
            raise RuntimeError("listener failed")


async def _stalled_revocation(
    logic: Any, tp: TopicPartition, committer: Any
) -> tuple[float, list[frozenset[TopicPartition]]]:
    """Revoke ``tp`` with every wait stalled: how long the revocation took (seconds), and
    what the committer stage was asked to commit."""
    loop = asyncio.get_running_loop()
    owner = object()
    stalled: asyncio.Future[None] = loop.create_future()
    revoked_filter = logic._cb_revoked
    # 1. The filtering of the buffer is never confirmed.
    unconfirmed = _Unconfirmed()
    logic._cb_revoked = unconfirmed
    # 2. A committer stage holds offsets of the partition; its commit of them is never
    # acknowledged.
    hooked: list[frozenset[TopicPartition]] = []

    def hook(tps: frozenset[TopicPartition]) -> asyncio.Future[None]:
        hooked.append(tps)
        return loop.create_future()

    committer.on_revoke(owner, hook)
    # 3. A commit in flight that gets no answer.
    committer._inflight.add(stalled)
    try:
        started = loop.time()
        await asyncio.wait_for(logic._revoked(frozenset({tp})), 10 * TIMEOUT)
        elapsed = loop.time() - started
    finally:
        logic._cb_revoked = revoked_filter
        committer.on_revoke(owner, None)
        committer._inflight.discard(stalled)
        stalled.set_result(None)
    assert unconfirmed.pending, "the revocation did not ask the stage to filter"
    return elapsed, hooked


async def test_a_revocation_waits_one_commit_timeout_in_all(
    kafka_bootstrap: str,
    kafka_topic: str,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, ["a", "b"])
    tp = TopicPartition(kafka_topic, 0)
    listener = _Listener()
    got: list[Any] = []
    control, done = (
        Consumer.committable_source(
            settings(kafka_bootstrap, kafka_group_id, commit_timeout=TIMEOUT),
            Subscriptions.topics(kafka_topic).with_rebalance_listener(listener),
        )
        .to_mat(Sink.foreach(got.append), Keep.both)
        .run(materializer)
    )
    logic = control._metrics.__self__  # type: ignore[attr-defined]
    try:
        await eventually(lambda: bool(got) and tp in listener.assigned)
        committer = got[0].committable_offset.committer
        revocations = listener.revocations

        # The listener returns: filtering, held offsets, commits in flight.
        with caplog.at_level(logging.WARNING, logger="connectors.kafka"):
            elapsed, hooked = await _stalled_revocation(logic, tp, committer)
        assert listener.revocations == revocations + 1
        assert elapsed < 2 * TIMEOUT, (
            f"the revocation took {elapsed:.2f} s with commit_timeout={TIMEOUT} s: its "
            "waits must share one commit_timeout"
        )
        # With no time left the held offsets are still asked for, and reported as not
        # committed in time, as on a timeout.
        assert hooked == [frozenset({tp})]
        assert any(
            "were not committed within commit_timeout" in r.getMessage() for r in caplog.records
        )

        # The listener fails: filtering, then the commits in flight.
        listener.fail = True
        elapsed, hooked = await _stalled_revocation(logic, tp, committer)
        assert listener.revocations == revocations + 2
        assert hooked == []  # the source fails: nothing more is committed
        assert elapsed < 2 * TIMEOUT, (
            f"the revocation (its listener failed) took {elapsed:.2f} s with "
            f"commit_timeout={TIMEOUT} s: its waits must share one commit_timeout"
        )
    finally:
        with caplog.at_level(logging.CRITICAL):
            await asyncio.wait_for(control.shutdown(), 10)
    # The listener's failure failed the source.
    with pytest.raises(RuntimeError, match="listener failed"):
        await asyncio.wait_for(done, 10)


async def test_a_transactional_drain_waits_only_what_is_left_of_the_revocation() -> None:
    """The transactional source's listener drains within the revocation's one deadline
    (REVOCATION_DEADLINE, set by the consumer while its listener runs), not a whole
    commit_timeout of its own after the consumer's earlier waits."""
    from aiokafka.structs import TopicPartition

    from connectors.kafka._stages.consumer import REVOCATION_DEADLINE
    from connectors.kafka._stages.transactional import _DrainOnRevoke, _InFlight

    tp = TopicPartition("t", 0)
    in_flight = _InFlight()
    in_flight.emitted[tp] = 5  # emitted, never committed: the drain waits its timeout
    drain = _DrainOnRevoke(in_flight, None, timeout=5.0)
    loop = asyncio.get_running_loop()
    token = REVOCATION_DEADLINE.set(loop.time() + 0.1)
    try:
        started = loop.time()
        with pytest.raises(KafkaConsumerError, match="timeout while draining"):
            await drain.on_partitions_revoked(frozenset({tp}))
        elapsed = loop.time() - started
    finally:
        REVOCATION_DEADLINE.reset(token)
    assert elapsed < 1.0, elapsed
    assert (tp, 0) in in_flight.lost  # given up on, as on a timeout
