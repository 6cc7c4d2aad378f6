"""The committer of a consumer stage: Alpakka's ``KafkaCommitterRef`` of the offsets a
``committable_source`` emits, committing through the stage's own ``AIOKafkaConsumer``.

The stage (:mod:`.consumer`) creates one per materialization and hands the consumer to it
once started; ``CommittableOffset.commit()`` and the ``Committer`` stages end up in
:meth:`ConsumerCommitter.commit`. Commits of partitions no longer assigned are left out (as
Alpakka does); a shut-down consumer refuses commits with ``ConsumerClosedError``; a commit
not acknowledged within ``commit_timeout`` fails with ``CommitTimeoutError``.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiokafka.errors import KafkaError

from .._closing import within
from ..errors import CommitTimeoutError, ConsumerClosedError, KafkaCommitError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from ..settings import ConsumerSettings

__all__ = ["ConsumerCommitter"]

log = logging.getLogger("connectors.kafka")


def _fmt_offsets(offsets: Mapping[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}: {o}" for tp, o in offsets.items())


class ConsumerCommitter:
    """The ``KafkaCommitterRef`` of one consumer stage: commits through its consumer."""

    __slots__ = (
        "_assignments",
        "_auto",
        "_closed",
        "_consumer",
        "_inflight",
        "_name",
        "_timeout",
        "_warning",
        "commit_failures",
        "commits",
    )

    def __init__(self, name: str, settings: ConsumerSettings, auto: bool) -> None:
        self._name = name
        self._timeout = settings.commit_timeout
        self._warning = settings.commit_time_warning
        self._auto = auto
        self._consumer: AIOKafkaConsumer | None = None
        self._closed = False
        self._inflight: set[asyncio.Future[None]] = set()
        self.commits = 0
        self.commit_failures = 0
        #: How many times each partition was assigned (by the group) so far.
        self._assignments: dict[tuple[str, int], int] = {}

    def note_assigned(self, tps: Iterable[TopicPartition]) -> None:
        """The group assigned ``tps`` to this consumer (again)."""
        assignments = self._assignments
        for tp in tps:
            key = (tp.topic, tp.partition)
            assignments[key] = assignments.get(key, 0) + 1

    def assignment_of(self, topic: str, partition: int) -> int:
        """Which assignment of the partition this is (0 before the group assigned it): a
        committer's memory of what it committed holds within one (see
        ``OffsetBatcher.take``)."""
        return self._assignments.get((topic, partition), 0)

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets`` (next offsets to read) and wait for the broker's answer.

        Offsets of partitions this consumer no longer owns are left out.

        Raises:
            ConsumerClosedError: the consumer is shut down (or not started yet).
            CommitTimeoutError: no answer within ``commit_timeout``.
            KafkaCommitError: the broker refused the commit (the cause is chained).
        """
        consumer = self._consumer
        if consumer is None or self._closed:
            state = "not started yet" if consumer is None and not self._closed else "shut down"
            raise ConsumerClosedError(
                f"[{self._name}] cannot commit offsets ({_fmt_offsets(offsets)}): the consumer "
                f"is {state}; commit before Control.shutdown() (drain_and_shutdown does)"
            )
        if self._auto:
            assigned = consumer.assignment()
            kept = {tp: o for tp, o in offsets.items() if tp in assigned}
            if len(kept) < len(offsets):
                log.debug(
                    "[%s] not committing offsets of revoked partitions: %s",
                    self._name,
                    _fmt_offsets({tp: o for tp, o in offsets.items() if tp not in kept}),
                )
            if not kept:
                return
            offsets = kept
        loop = asyncio.get_running_loop()
        marker: asyncio.Future[None] = loop.create_future()
        self._inflight.add(marker)
        started = loop.time()
        try:
            await within(consumer.commit(offsets), self._timeout)
        except TimeoutError as exc:
            self.commit_failures += 1
            raise CommitTimeoutError(
                f"[{self._name}] the commit of offsets ({_fmt_offsets(offsets)}) was not "
                f"acknowledged within commit_timeout={self._timeout} s"
            ) from exc
        except KafkaError as exc:
            self.commit_failures += 1
            raise KafkaCommitError(
                f"[{self._name}] committing offsets ({_fmt_offsets(offsets)}) failed: {exc!r}"
            ) from exc
        finally:
            self._inflight.discard(marker)
            marker.set_result(None)
        self.commits += 1
        elapsed = loop.time() - started
        if elapsed > self._warning:
            log.warning("[%s] a commit took %.3f s", self._name, elapsed)

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the commits in flight."""
        if self._inflight and timeout > 0:
            await asyncio.wait(set(self._inflight), timeout=timeout)

    def __repr__(self) -> str:
        return f"<committer of {self._name}>"
