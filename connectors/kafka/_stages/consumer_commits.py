"""The committer of a consumer stage: Alpakka's ``KafkaCommitterRef`` of the offsets a
``committable_source`` emits, committing through the stage's own ``AIOKafkaConsumer``.

The stage (:mod:`.consumer`) creates one per materialization and hands the consumer to it
once started; ``CommittableOffset.commit()`` and the ``Committer`` stages end up in
:meth:`ConsumerCommitter.commit`. Commits of partitions no longer assigned are left out (as
Alpakka does); a shut-down consumer refuses commits with ``ConsumerClosedError``, and so
does one that is closing (as Alpakka's consumer actor answers a commit while stopping with
a ``StoppingException``): a commit requested once the client's ``stop()`` began, or still
unanswered then, fails at once instead of waiting ``commit_timeout`` for an answer the
closed connection never brings; a commit not acknowledged within ``commit_timeout`` fails
with ``CommitTimeoutError``.

aiokafka sends each OffsetCommit request in a task of its own under ``asyncio.shield``:
a commit given up on (timed out, closing, its caller cancelled) leaves that task
running, and ``shield`` takes its own done callback off it then, so the request's later
failure (the connection breaks) would be logged by asyncio as "Task exception was never
retrieved". The outcome is the committer's to drop: it retrieves it
(:func:`_retrieve_abandoned_commits`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiokafka.consumer.group_coordinator import GroupCoordinator
from aiokafka.errors import KafkaError

from .._closing import within
from ..errors import CommitTimeoutError, ConsumerClosedError, KafkaCommitError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Mapping
    from typing import Any

    from aiokafka import AIOKafkaConsumer
    from aiokafka.structs import TopicPartition

    from ..settings import ConsumerSettings

__all__ = ["ConsumerCommitter"]

log = logging.getLogger("connectors.kafka")

#: The code of aiokafka's OffsetCommit request coroutine (run in a shielded task).
_COMMIT_REQUEST_CODE = getattr(
    getattr(GroupCoordinator, "_do_commit_offsets", None), "__code__", None
)


def _fmt_offsets(offsets: Mapping[TopicPartition, int]) -> str:
    return ", ".join(f"{tp.topic}-{tp.partition}: {o}" for tp, o in offsets.items())


class ConsumerCommitter:
    """The ``KafkaCommitterRef`` of one consumer stage: commits through its consumer."""

    __slots__ = (
        "_assignments",
        "_auto",
        "_closed",
        "_closing",
        "_consumer",
        "_inflight",
        "_name",
        "_revoke_hooks",
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
        #: Done once the consumer's client starts closing: commits then fail at once.
        self._closing: asyncio.Future[None] | None = None
        self._inflight: set[asyncio.Future[None]] = set()
        self.commits = 0
        self.commit_failures = 0
        #: How many times each partition was assigned (by the group) so far.
        self._assignments: dict[tuple[str, int], int] = {}
        #: The committer stages holding offsets of this consumer (see ``on_revoke``).
        self._revoke_hooks: dict[object, Callable[[frozenset[TopicPartition]], Any]] = {}

    def on_revoke(
        self, owner: object, hook: Callable[[frozenset[TopicPartition]], Any] | None
    ) -> None:
        """Register (or, with ``hook`` None, remove) ``owner``'s revocation hook.

        A committer stage that holds offsets of this consumer registers one: at a
        revocation, ``hook(revoked)`` asks it to commit at once what it holds of the
        revoked partitions, and returns an awaitable done once those offsets were
        committed (see :meth:`revoking`).
        """
        if hook is None:
            self._revoke_hooks.pop(owner, None)
        else:
            self._revoke_hooks[owner] = hook

    async def revoking(self, tps: frozenset[TopicPartition], timeout: float) -> None:
        """Partitions ``tps`` are being revoked: have the committers commit the offsets
        they hold of them, and wait (up to ``timeout`` seconds, what is left of the
        revocation's ``commit_timeout``) until they did.

        Offsets held by a committer (a batch not full yet, ``max_interval`` not passed)
        would otherwise never be committed by this member: the partition's next owner
        would read their records again. With no time left (``timeout <= 0``) the
        committers are still asked to commit at once, and the offsets not committed yet
        are reported as on a timeout.
        """
        waits = []
        for hook in list(self._revoke_hooks.values()):
            try:
                waits.append(asyncio.ensure_future(hook(tps)))
            except Exception:  # the stage stopped meanwhile: nothing to wait for
                log.debug("[%s] a committer's revocation hook failed", self._name, exc_info=True)
        if not waits:
            return
        if timeout > 0:
            _, pending = await asyncio.wait(waits, timeout=timeout)
        else:
            pending = {fut for fut in waits if not fut.done()}
        for fut in waits:
            if fut.done() and not fut.cancelled() and fut.exception() is not None:
                log.debug(
                    "[%s] committing before the revocation failed: %r",
                    self._name,
                    fut.exception(),
                )
        if pending:
            log.warning(
                "[%s] the offsets held by a committer of the revoked partitions (%s) were "
                "not committed within commit_timeout=%s s of the revocation; their records "
                "will be read again",
                self._name,
                ", ".join(f"{tp.topic}-{tp.partition}" for tp in sorted(tps)),
                self._timeout,
            )
            for fut in pending:
                fut.cancel()

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
            ConsumerClosedError: the consumer is shut down, closing (the commit in flight
                when it started closing, too) or not started yet.
            CommitTimeoutError: no answer within ``commit_timeout``.
            KafkaCommitError: the broker refused the commit (the cause is chained).
        """
        consumer = self._consumer
        closing = self._closing is not None and self._closing.done()
        if consumer is None or self._closed or closing:
            if self._closed:
                state = "shut down"
            elif closing:
                state = "closing"
            else:
                state = "not started yet"
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
            await self._answered(consumer.commit(offsets), offsets)
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

    async def _answered(
        self, commit: Awaitable[None], offsets: Mapping[TopicPartition, int]
    ) -> None:
        """Await ``commit`` within ``commit_timeout``, or until the client starts closing:
        its connections close under the request, and no answer would ever come."""
        closing = self._closing_future()
        task = asyncio.ensure_future(within(commit, self._timeout))
        try:
            await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()  # the caller was cancelled: so is its commit, as before
            _retrieve_abandoned_commits()
            raise
        if not task.done():
            task.cancel()
            await asyncio.wait({task})
        if task.cancelled() or isinstance(task.exception(), TimeoutError):
            _retrieve_abandoned_commits()
        if task.cancelled():
            raise ConsumerClosedError(
                f"[{self._name}] the commit of offsets ({_fmt_offsets(offsets)}) was not "
                "acknowledged before the consumer closed; commit before Control.shutdown() "
                "(drain_and_shutdown does)"
            )
        task.result()

    def closing(self) -> None:
        """The consumer's client starts closing: commits in flight fail with
        ``ConsumerClosedError`` at once, and so do the commits requested from now on."""
        closing = self._closing_future()
        if not closing.done():
            closing.set_result(None)

    def _closing_future(self) -> asyncio.Future[None]:
        """The future done once the client starts closing (made on first use, in the
        running loop)."""
        closing = self._closing
        if closing is None:
            closing = self._closing = asyncio.get_running_loop().create_future()
        return closing

    async def flush(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the commits in flight, also those requested
        while it waits."""
        if timeout <= 0:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._inflight and (left := deadline - loop.time()) > 0:
            await asyncio.wait(set(self._inflight), timeout=left)

    def __repr__(self) -> str:
        return f"<committer of {self._name}>"


def _retrieve_abandoned_commits() -> None:
    """Have the outcome of aiokafka's OffsetCommit request tasks still running retrieved
    when they end (see the module docstring): a commit given up on leaves its request
    task behind, whose failure nobody else reads."""
    if _COMMIT_REQUEST_CODE is None:  # pragma: no cover - another aiokafka
        return
    for task in asyncio.all_tasks():
        if getattr(task.get_coro(), "cr_code", None) is _COMMIT_REQUEST_CODE:
            task.add_done_callback(_drop_outcome)


def _drop_outcome(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.debug("an OffsetCommit request given up on failed later: %r", exc)
