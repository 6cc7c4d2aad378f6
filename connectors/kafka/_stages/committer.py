"""``Committer.flow``, ``Committer.batch_flow`` and ``Committer.sink``: batch offsets, commit.

One stage, :class:`CommitterStage`, aggregates incoming ``CommittableOffset``\\ s (and
batches) into a :class:`~connectors.kafka.messages.CommittableOffsetBatch` (the
highest offset per partition) and commits it through the consumer that emitted
the offsets when

- ``max_batch`` offsets were aggregated, or
- ``max_interval`` seconds passed since the first offset of the batch arrived
  (a timer on the materializer's clock), or
- upstream completed (or failed: what was collected is still committed, then
  the stage fails with upstream's error, as in Alpakka; if that last commit fails
  too, upstream's error is still the one the stream fails with, the commit's
  failure noted on it).

At a rebalance, the consumer whose offsets the stage holds asks it to commit those of the
revoked partitions at once, and waits for that commit (within what is left of its
``commit_timeout``, one deadline for the whole revocation) before the partitions move:
held offsets would otherwise never be committed by this member, and the partition's next
owner would read their records again (the stage registers with each consumer whose
offsets it receives, see ``ConsumerCommitter.on_revoke``).

At most ``parallelism`` commits are in flight (with ``wait_for_ack``, results
waiting for downstream demand count too); with a full batch and no free slot
the stage stops pulling. A failed commit is retried with exponential backoff
(on the materializer's clock) when the failure is transient (timeout,
rebalance, coordinator moving, connection); after ``_MAX_ATTEMPTS`` attempts,
or at once for other failures (e.g. the consumer is shut down), the stream
fails with :class:`~connectors.kafka.errors.KafkaCommitError` naming the batch.
A commit failure is never ignored.

Commits never move backwards. A batch keeps the highest offset per partition, and the
stage remembers, per (group, topic, partition), the highest offset it has handed to a
commit: an offset at or below it is left out of later batches (one that is below is
counted and logged: a WARNING the first time, DEBUG after, and a summary when the stage
stops). Offsets reach a committer out of order when the stream reorders records (e.g.
``map_async_unordered``): committing offset 2 after offset 8 would move the group back
and re-deliver 3..8 after a restart. This is a deliberate difference from Alpakka,
whose ``CommittableOffsetBatch.updated`` keeps the *last* offset added for a partition
and whose committer commits whatever it is given. A batch left with no offset (all of
them were stale) completes without a request to the broker.

Retries keep that rule (:class:`CommitRunner`). Batches are handed out in increasing
offset order per partition and their first attempts go out in that order (Kafka applies
a group's commits in the order they arrive; aiokafka sends them one at a time), but the
retry of a failed batch goes out later, possibly after a newer batch of the same
partition. So when its backoff has passed, a retry

- leaves out each partition already acknowledged at or above its offset (a newer commit
  covered it); with nothing left the batch is done without a request;
- waits, without a request, while a newer commit of one of its partitions is not yet
  acknowledged (in flight, or waiting for its own retry): sent now, the old offset would
  reach the broker after the newer one. When that newer commit is acknowledged the retry
  is looked at again (and usually has nothing left); if it fails for good, the stream
  fails with its error and the waiting retry is never sent.

A batch therefore counts as committed (with ``wait_for_ack`` its ``Done`` or batch is
emitted then) only once every one of its offsets was acknowledged, by its own request or
by a newer one; at completion the newest offset of every partition was acknowledged by
its own request.

The flows complete once upstream completed, every commit finished and every result was
taken by downstream: results still waiting for demand are emitted first.
"""

from __future__ import annotations

import asyncio
import logging
from functools import partial
from typing import TYPE_CHECKING, Any

from aiokafka.errors import CommitFailedError, KafkaError, RebalanceInProgressError

from reactive import Done, Flow, FlowWithContext, Keep, NotUsed, Sink
from reactive.lowlevel import AwaitingLogicMixin
from reactive.lowlevel import Batch as _Batch
from reactive.stage import (
    FlowShape,
    GraphStage,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    TimerGraphStageLogic,
)

from ..errors import CommitTimeoutError, ConsumerClosedError, KafkaCommitError
from ..messages import (
    Committable,
    CommittableOffset,
    CommittableOffsetBatch,
    GroupTopicPartition,
)
from ..settings import CommitterSettings

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "CommitRunner",
    "Committer",
    "CommitterStage",
    "OffsetBatcher",
    "RevocationCommits",
    "note_commit_failed_too",
]

log = logging.getLogger("connectors.kafka")

#: Attempts per batch before the stream fails (transient failures only).
_MAX_ATTEMPTS = 4
#: Backoff before the second attempt; doubles after each failure.
_BACKOFF = 0.1

_INTERVAL = "max_interval"


def _retriable(exc: BaseException) -> bool:
    if isinstance(exc, ConsumerClosedError):
        return False
    if isinstance(exc, CommitTimeoutError | TimeoutError):
        return True
    cause = exc.__cause__ if isinstance(exc, KafkaCommitError) else exc
    if isinstance(cause, CommitFailedError | RebalanceInProgressError):
        return True  # a rebalance happened: retrying commits what is still ours
    return isinstance(cause, KafkaError) and bool(getattr(cause, "retriable", False))


#: The most offsets a committer asks upstream for with one pull (batch protocol).
_MAX_PULL = 1024


class OffsetBatcher:
    """The batch being collected, as plain mutable dicts (shared by the committer stages).

    ``offsets`` maps (group, topic, partition) to the highest record offset added,
    ``committers`` each to the committer of the offset added last for it (one group's
    offsets may come from several consumers, as in Alpakka), ``count`` counts every
    offset added (the batch size). Performance: merging each offset into an immutable
    ``CommittableOffsetBatch`` copied its dicts once per record; the batch object is
    built once, by :meth:`take`, when it is committed.
    """

    __slots__ = ("committed", "committers", "count", "offsets", "stage_name", "stale")

    def __init__(self, stage_name: str) -> None:
        self.stage_name = stage_name
        self.offsets: dict[tuple[str, str, int], int] = {}
        self.committers: dict[tuple[str, str, int], Any] = {}
        self.count = 0
        #: The highest offset handed to a commit, per (group, topic, partition), with the
        #: assignment of the partition it was taken in (see :meth:`take`).
        self.committed: dict[tuple[str, str, int], tuple[int, Any]] = {}
        #: Offsets left out because they were below ``committed`` (out of order).
        self.stale = 0

    def add_offset(self, x: CommittableOffset) -> None:
        """Add one offset (keeps the highest per partition)."""
        key = (x.group_id, x.topic, x.partition)
        self.committers[key] = x.committer
        offset = x.offset
        offsets = self.offsets
        previous = offsets.get(key)
        if previous is None or offset > previous:
            offsets[key] = offset
        self.count += 1

    def add(self, x: Any) -> None:
        """Add a ``CommittableOffset``, merge a ``CommittableOffsetBatch``, or add each of
        a list or tuple of them (the context ``grouped``/``grouped_within`` make of the
        offsets of a group, in a ``SourceWithContext``).

        Raises:
            TypeError: ``x`` is none of these (the message names the stage).
        """
        if isinstance(x, CommittableOffset):
            self.add_offset(x)
        elif isinstance(x, CommittableOffsetBatch):
            offsets = self.offsets
            committers = x._committers
            for gtp, offset in x._offsets.items():
                key = (gtp.group_id, gtp.topic, gtp.partition)
                self.committers[key] = committers[gtp]
                previous = offsets.get(key)
                if previous is None or offset > previous:
                    offsets[key] = offset
            if offsets:
                self.count += x.batch_size
        elif type(x) is list or type(x) is tuple:
            for each in x:
                self.add(each)
        else:
            raise TypeError(
                f"[{self.stage_name}] expects CommittableOffset or CommittableOffsetBatch "
                f"elements (e.g. message.committable_offset) or lists of them, got "
                f"{type(x).__name__}"
            )

    def _stale(self, key: tuple[str, str, int], offset: int, done: int) -> None:
        self.stale += 1
        group, topic, partition = key
        log.log(
            logging.WARNING if self.stale == 1 else logging.DEBUG,
            "[%s] not committing offset %d of %s-%d (group %r): this committer already "
            "committed up to offset %d, and commits never move backwards (%d stale "
            "offset(s) so far). "
            "Offsets arrive out of order when the stream reorders records (e.g. "
            "map_async_unordered); use map_async to commit in order",
            self.stage_name,
            offset,
            topic,
            partition,
            group,
            done,
            self.stale,
        )

    def report(self) -> None:
        """Log how many stale offsets were left out, if any (when the stage stops)."""
        if self.stale:
            log.info(
                "[%s] %d offset(s) below an offset already committed were not committed",
                self.stage_name,
                self.stale,
            )

    def __bool__(self) -> bool:
        return bool(self.offsets)

    def take(self) -> CommittableOffsetBatch:
        """The collected offsets as a ``CommittableOffsetBatch``; starts a new batch.

        An offset at or below the highest this batcher already handed to a commit for
        its partition is left out (commits never move backwards); one strictly below is
        counted in ``stale`` and logged. That memory holds within one assignment of the
        partition (a committer with ``assignment_of(topic, partition)`` says which): a
        partition revoked and assigned again re-delivers records from the group's
        committed offset, and those are committed again, as in Alpakka (a commit handed
        out while the partition was revoked was left out by the consumer).
        """
        committed = self.committed
        committers = self.committers
        offsets: dict[GroupTopicPartition, int] = {}
        by: dict[GroupTopicPartition, Any] = {}
        for key, o in self.offsets.items():
            committer = committers[key]
            assignment_of = getattr(committer, "assignment_of", None)
            epoch = assignment_of(key[1], key[2]) if assignment_of is not None else None
            done = committed.get(key)
            if done is not None and done[1] == epoch and o <= done[0]:
                if o < done[0]:
                    self._stale(key, o, done[0])
                continue
            committed[key] = (o, epoch)
            gtp = GroupTopicPartition(*key)
            offsets[gtp] = o
            by[gtp] = committers[key]
        batch = CommittableOffsetBatch._make(offsets, by, self.count)
        self.offsets = {}
        self.committers = {}
        self.count = 0
        return batch


def _raise_to(highest: dict[GroupTopicPartition, int], offsets: Any) -> None:
    """Raise ``highest`` (an offset per partition) to ``offsets`` where they are higher."""
    for key, offset in offsets.items():
        previous = highest.get(key)
        if previous is None or offset > previous:
            highest[key] = offset


class CommitRunner:
    """Commits batches on behalf of a stage, retrying transient failures.

    The stage must be an :class:`AwaitingLogicMixin` and a ``TimerGraphStageLogic``
    and forward its timers to :meth:`on_timer`. ``on_committed(batch)`` runs inside
    the stage once every offset of the batch was acknowledged (by its own commit or,
    for a retried batch, by a newer one); ``on_failed(error)`` once a commit failed
    for good (a :class:`KafkaCommitError` naming the stage and the batch, the broker's
    error chained). ``inflight`` counts batches started and not finished (retries
    included, and retries waiting for a newer commit).

    Batches must be started in increasing offset order per partition (what
    :meth:`OffsetBatcher.take` hands out). A retry never sends an offset the broker
    could apply after a newer one of its partition (see the module docstring): when its
    backoff passed, partitions acknowledged at or above its offset are left out, and
    while a newer commit of one of its partitions is unacknowledged the retry is parked
    and looked at again after the next acknowledgement. Parked retries only wait for
    newer batches, never the other way round, so the newest batch of a partition always
    goes out and every parked retry ends (done, sent, or dropped when the stage fails).
    """

    __slots__ = (
        "_acked",
        "_failed",
        "_logic",
        "_on_committed",
        "_on_failed",
        "_parked",
        "_retries",
        "_started",
        "inflight",
    )

    def __init__(
        self,
        logic: Any,
        on_committed: Callable[[CommittableOffsetBatch], None],
        on_failed: Callable[[BaseException], None],
    ) -> None:
        self._logic = logic
        self._on_committed = on_committed
        self._on_failed = on_failed
        self._retries: dict[Any, tuple[CommittableOffsetBatch, int]] = {}
        #: Retries whose backoff passed, waiting for a newer commit of a partition.
        self._parked: list[tuple[CommittableOffsetBatch, int]] = []
        #: The highest offset started / acknowledged, per (group, topic, partition).
        self._started: dict[GroupTopicPartition, int] = {}
        self._acked: dict[GroupTopicPartition, int] = {}
        self._failed = False  # a commit failed for good: nothing more is sent
        self.inflight = 0

    def start(self, batch: CommittableOffsetBatch) -> None:
        """Commit ``batch`` (its first attempt)."""
        _raise_to(self._started, batch._offsets)
        self.inflight += 1
        self._attempt(batch, batch, 1)

    def on_timer(self, key: Any) -> bool:
        """Run the retry that timer ``key`` stands for; False if it is not ours."""
        entry = self._retries.pop(key, None)
        if entry is None:
            return False
        self._retry(*entry)
        return True

    def _retry(self, batch: CommittableOffsetBatch, attempt: int) -> None:
        # Attempt ``attempt`` of ``batch``, minus what newer commits covered (see the
        # class docstring); parked while a newer commit of a partition is unacknowledged.
        if self._failed:
            return  # the stream is failing with an earlier commit's error
        acked = self._acked
        started = self._started
        left: dict[GroupTopicPartition, int] = {}
        for key, offset in batch._offsets.items():
            done = acked.get(key)
            if done is not None and done >= offset:
                continue  # a newer commit was acknowledged: sending this would go back
            if started[key] > offset:
                self._parked.append((batch, attempt))  # sent now, it would land after it
                return
            left[key] = offset
        if len(left) < len(batch._offsets):
            log.debug(
                "[%s] retrying %r without the partitions newer commits acknowledged: %s",
                self._logic.stage_name,
                batch,
                left or "nothing left to commit",
            )
            if not left:
                self._done(batch)
                return
            request = CommittableOffsetBatch._make(left, batch._committers, batch.batch_size)
        else:
            request = batch
        self._attempt(batch, request, attempt)

    def _attempt(
        self, batch: CommittableOffsetBatch, request: CommittableOffsetBatch, attempt: int
    ) -> None:
        self._logic._await(request.commit(), partial(self._committed, batch, attempt))

    def _committed(self, batch: CommittableOffsetBatch, attempt: int, fut: Any) -> None:
        exc = fut.exception()
        if exc is None:
            self._done(batch)
            return
        name = self._logic.stage_name
        if attempt < _MAX_ATTEMPTS and _retriable(exc):
            delay = _BACKOFF * 2 ** (attempt - 1)
            log.warning(
                "[%s] commit attempt %d of %r failed (%r); retrying in %.2f s",
                name,
                attempt,
                batch,
                exc,
                delay,
            )
            key = ("retry", id(batch), attempt)
            self._retries[key] = (batch, attempt + 1)
            self._logic.schedule_once(key, delay)
            return
        self.inflight -= 1
        self._failed = True
        error = KafkaCommitError(
            f"[{name}] committing {batch!r} failed after {attempt} attempt(s): {exc}"
        )
        error.__cause__ = exc
        self._on_failed(error)

    def _done(self, batch: CommittableOffsetBatch) -> None:
        # Every offset of ``batch`` is acknowledged: record it before the stage reacts
        # (it may start a newer batch), then look at the parked retries again.
        _raise_to(self._acked, batch._offsets)
        self.inflight -= 1
        self._on_committed(batch)
        if self._parked:
            parked, self._parked = self._parked, []
            for entry in parked:
                self._retry(*entry)  # parks again, sends, or is done


def note_commit_failed_too(failure: BaseException, stage: str, error: BaseException) -> None:
    """Note on ``failure`` (the root cause the stream fails with, an upstream failure)
    that committing the offsets stage ``stage`` collected before it failed too, with
    ``error``."""
    failure.add_note(
        f"[{stage}] committing the offsets collected before this failure failed too: {error!r}"
    )


class RevocationCommits:
    """A committing stage's part in commit-on-revocation (shared by the ``Committer``
    stages and ``Producer.committable_sink``).

    The stage calls :meth:`hook` with the committers (``KafkaCommitterRef``) of the offsets
    it collects: each consumer not seen yet gets a revocation hook
    (``ConsumerCommitter.on_revoke``). At a revocation the consumer calls it; inside the
    stage, ``collect()`` (if given) first brings into the batch what the stage may
    commit, then the offsets of the revoked partitions the batch holds, or that commits
    in flight carry, become the revocation's target, ``commit_now()`` is called if the
    batch holds some (the stage commits it at once, or once a slot frees), and the
    consumer's awaitable is done once :meth:`check` (after each acknowledged commit) finds
    the target acknowledged, or when the stage fails its commits or stops
    (``check(everything=True)``, :meth:`stop`).
    """

    __slots__ = (
        "_batch",
        "_callback",
        "_collect",
        "_commit_now",
        "_commits",
        "_hooked",
        "_owner",
        "_waiters",
    )

    def __init__(
        self,
        logic: Any,
        batch: OffsetBatcher,
        commits: CommitRunner,
        commit_now: Callable[[], None],
        collect: Callable[[], None] | None = None,
    ) -> None:
        self._owner = logic
        self._batch = batch
        self._commits = commits
        self._commit_now = commit_now
        self._collect = collect
        #: The consumers whose ``on_revoke`` hook is registered.
        self._hooked: set[Any] = set()
        #: The revocations waiting for commits: their target offsets and future.
        self._waiters: list[tuple[dict[GroupTopicPartition, int], Any]] = []
        self._callback = logic.get_async_callback(self._on_revoking)

    def hook(self, committers: Iterable[Any]) -> None:
        """Register with each consumer of ``committers`` not seen yet: at a revocation it
        asks the stage to commit the offsets it holds of the revoked partitions."""
        hooked = self._hooked
        for committer in committers:
            if committer not in hooked:
                hooked.add(committer)
                on_revoke = getattr(committer, "on_revoke", None)
                if on_revoke is not None:
                    on_revoke(self._owner, self._revoke_hook)

    def _revoke_hook(self, tps: frozenset[Any]) -> Any:
        # Called by the consumer (in its rebalance listener): a future done once the
        # offsets of ``tps`` the stage holds or commits were acknowledged.
        fut = asyncio.get_running_loop().create_future()
        feedback = self._callback.invoke_with_feedback((tps, fut))

        def stopped(f: Any) -> None:
            if (f.cancelled() or f.exception() is not None) and not fut.done():
                fut.set_result(None)  # the stage stopped before it could commit

        feedback.add_done_callback(stopped)
        return fut

    def _on_revoking(self, item: tuple[frozenset[Any], Any]) -> None:
        tps, fut = item
        if self._collect is not None:
            self._collect()
        held = self._batch.offsets
        target: dict[GroupTopicPartition, int] = {}
        for key, offset in held.items():
            if (key[1], key[2]) in tps:
                target[GroupTopicPartition(*key)] = offset
        for gtp, offset in self._commits._started.items():
            if (gtp.topic, gtp.partition) in tps and target.get(gtp, -1) < offset:
                target[gtp] = offset
        self._waiters.append((target, fut))
        if any((key[1], key[2]) in tps for key in held):
            self._commit_now()
        self.check()

    def check(self, everything: bool = False) -> None:
        """Finish the revocations whose target is acknowledged (all with ``everything``:
        the stage's commits failed for good)."""
        waiters = self._waiters
        if not waiters:
            return
        acked = self._commits._acked
        left = []
        for target, fut in waiters:
            if everything or all(acked.get(k, -1) >= o for k, o in target.items()):
                if not fut.done():
                    fut.set_result(None)
            else:
                left.append((target, fut))
        self._waiters = left

    def stop(self) -> None:
        """The stage stopped: finish every revocation waiting, unregister the hooks."""
        self.check(everything=True)
        for committer in self._hooked:
            on_revoke = getattr(committer, "on_revoke", None)
            if on_revoke is not None:
                on_revoke(self._owner, None)
        self._hooked.clear()


class CommitterStage(GraphStage[FlowShape]):
    """Batches committables and commits them; emits ``Done`` (or the committed batch)."""

    def __init__(
        self, settings: CommitterSettings, *, emit_batches: bool = False, name: str
    ) -> None:
        if not isinstance(settings, CommitterSettings):
            raise TypeError(f"{name}: expected CommitterSettings, got {settings!r}")
        self.settings = settings
        self.emit_batches = emit_batches
        self.name = name
        self.shape = FlowShape(Inlet(f"{name}.in"), Outlet(f"{name}.out"))

    def create_logic(self, attributes: Any) -> _CommitterLogic:
        return _CommitterLogic(self)


class _CommitterLogic(AwaitingLogicMixin, TimerGraphStageLogic, InHandler, OutHandler):
    def __init__(self, stage: CommitterStage) -> None:
        super().__init__(stage.shape)
        self.in_: Inlet[Any] = stage.shape.in_
        self.out: Outlet[Any] = stage.shape.out
        self.set_handlers(self.in_, self.out, self)
        settings = stage.settings
        self._max_batch = settings.max_batch
        self._max_interval = settings.max_interval
        self._parallelism = settings.parallelism
        self._wait_for_ack = settings.delivery == "wait_for_ack"
        self._emit_batches = stage.emit_batches
        self._batch = OffsetBatcher(stage.name)
        self._commits = CommitRunner(self, self._committed, self._commit_failed)
        self._pending_out = 0  # results emitted and not yet taken by downstream
        self._due = False  # max_interval passed while no commit slot was free
        self._upstream_done = False
        self._upstream_failure: BaseException | None = None
        # Batch protocol in (see reactive/_impl/fused.py): a batch of offsets per push.
        self._batch_in = (self.in_,)
        # Commit on revocation: the consumers whose offsets this stage received have it
        # commit the offsets it holds of the partitions they revoke.
        self._revocations = RevocationCommits(
            self, self._batch, self._commits, self._commit_revoked
        )

    def pre_start(self) -> None:
        self._batch.stage_name = self.stage_name
        self.pull(self.in_)

    def _commit_revoked(self) -> None:
        # A revocation: commit the batch at once (or as soon as a slot frees).
        self._due = True
        self._maybe_commit()

    def observe_gauges(self) -> dict[str, Any]:
        """The figure ``reactive.observe`` snapshots show for this stage: commits in
        flight."""
        return {"kafka_commits_in_flight": self._commits.inflight}

    def post_stop(self) -> None:
        self._batch.report()
        self._revocations.stop()

    # -- input ----------------------------------------------------------------------------
    def on_push(self) -> None:
        x = self.grab(self.in_)
        batch = self._batch
        first = not batch.offsets
        if type(x) is CommittableOffset:
            batch.add_offset(x)
        elif type(x) is _Batch:
            add_offset = batch.add_offset
            for y in x:
                if type(y) is CommittableOffset:
                    add_offset(y)
                else:
                    batch.add(y)
        else:
            batch.add(x)
        if not batch.offsets:
            return self._maybe_pull()
        if first:
            self._revocations.hook(set(batch.committers.values()))
            self.schedule_once(_INTERVAL, self._max_interval)
        if self._due or batch.count >= self._max_batch:
            self._maybe_commit()
        self._maybe_pull()

    def on_upstream_finish(self) -> None:
        self._upstream_done = True
        self._maybe_commit()
        self._check_finished()

    def on_upstream_failure(self, exc: BaseException) -> None:
        # As Alpakka: still commit what was collected, then fail.
        self._upstream_done = True
        self._upstream_failure = exc
        self._maybe_commit()
        self._check_finished()

    def _commit_failed(self, error: BaseException) -> None:
        self._revocations.check(everything=True)
        # After an upstream failure the stream fails with it (the root cause), not with
        # the last commit's failure (the consumer the failure cancelled may be closing):
        # that one is noted on it, as Producer.committable_sink does.
        upstream = self._upstream_failure
        if upstream is None:
            self.fail_stage(error)
            return
        note_commit_failed_too(upstream, self.stage_name, error)
        self.fail_stage(upstream)

    # -- output ---------------------------------------------------------------------------
    def on_pull(self) -> None:
        pass  # results go out through emit()

    # -- timers ---------------------------------------------------------------------------
    def on_timer(self, key: Any) -> None:
        if key == _INTERVAL:
            self._due = True
            self._maybe_commit()
            return
        self._commits.on_timer(key)

    # -- committing -----------------------------------------------------------------------
    def _free_slots(self) -> int:
        used = self._commits.inflight + (self._pending_out if self._wait_for_ack else 0)
        return self._parallelism - used

    def _maybe_commit(self) -> None:
        if not self._batch.offsets:
            return
        if not (self._due or self._upstream_done or self._batch.count >= self._max_batch):
            return
        if self._free_slots() <= 0:
            self._due = True  # commit as soon as a slot frees
            return
        batch = self._batch.take()
        self._due = False
        self.cancel_timer(_INTERVAL)
        # The commit starts before its result is emitted (send_and_forget): an emit to a
        # pulling downstream runs its ``and_then`` (``_taken`` -> ``_check_finished``) at
        # once, which must see this commit in flight, or the stage would complete (or
        # fail with upstream's error) without ever sending it.
        self._commits.start(batch)
        if not self._wait_for_ack:
            self._emit_result(batch)

    def _committed(self, batch: CommittableOffsetBatch) -> None:
        self._revocations.check()
        if self._wait_for_ack:
            self._emit_result(batch)
        self._slot_freed()

    def _emit_result(self, batch: CommittableOffsetBatch) -> None:
        if self.is_closed(self.out):
            return
        self._pending_out += 1
        self.emit(self.out, batch if self._emit_batches else Done, self._taken)

    def _taken(self) -> None:
        self._pending_out -= 1
        self._slot_freed()

    def _slot_freed(self) -> None:
        self._maybe_commit()
        self._maybe_pull()
        self._check_finished()

    def _maybe_pull(self) -> None:
        if self._upstream_done or self.has_been_pulled(self.in_) or self.is_closed(self.in_):
            return
        if self._batch.offsets and self._batch.count >= self._max_batch:
            return  # full batch waiting for a commit slot: back-pressure
        self.pull(self.in_)
        c = self._conns[self.in_]
        if c.batch:  # at most what fills the batch
            room = self._max_batch - self._batch.count if self._batch.offsets else self._max_batch
            c.demand_n = max(1, min(room, _MAX_PULL))

    def _check_finished(self) -> None:
        if not self._upstream_done or self._batch.offsets or self._commits.inflight:
            return
        if self._upstream_failure is not None:
            self.fail_stage(self._upstream_failure)
        elif not self._pending_out:
            # Only once every result was taken: this also runs from ``_taken``, the
            # ``and_then`` of an emit, where the outlet's handler is restored while the
            # later results are still queued, so completing there would drop them.
            self.complete_stage()


class Committer:
    """Factories of committer stages (Alpakka's ``Committer``)."""

    __slots__ = ()

    @staticmethod
    def flow(settings: CommitterSettings | None = None) -> Flow[Any, Any, Any]:
        """Commit incoming offsets in batches; emit ``Done`` per committed batch.

        Emits when: a batch commit was acknowledged (``wait_for_ack``) or started
        (``send_and_forget``), and downstream pulled.
        Backpressures when: a full batch (``max_batch``) waits because ``parallelism``
        commits (or results) are outstanding.
        Completes when: upstream completed, the last batch was committed and every
        ``Done`` was emitted.
        Fails when: a commit failed (after retries of transient failures), or an
        element is not a committable; on upstream failure, with upstream's error,
        after committing what was collected (results still waiting for demand are
        dropped; a failure of that commit is noted on upstream's error).
        Cancels when: downstream cancels.
        """
        settings = settings if settings is not None else CommitterSettings()
        return Flow.from_graph(CommitterStage(settings, name="Committer.flow"))

    @staticmethod
    def batch_flow(settings: CommitterSettings | None = None) -> Flow[Any, Any, Any]:
        """As :meth:`flow`, emitting each committed ``CommittableOffsetBatch`` instead of
        ``Done``."""
        settings = settings if settings is not None else CommitterSettings()
        return Flow.from_graph(
            CommitterStage(settings, emit_batches=True, name="Committer.batch_flow")
        )

    @staticmethod
    def sink(settings: CommitterSettings | None = None) -> Sink[Any, Any]:
        """Commit incoming offsets in batches; materializes an awaitable that completes
        with ``Done`` once upstream completed and every commit was acknowledged, or
        fails with the stream's failure.

        Backpressures when: as :meth:`flow`.
        Completes when: upstream completed and the last batch was committed.
        Fails when: as :meth:`flow`.
        """
        settings = settings if settings is not None else CommitterSettings()
        stage = CommitterStage(settings, name="Committer.sink")
        return Flow.from_graph(stage).to_mat(Sink.ignore(), Keep.right)

    @staticmethod
    def flow_with_offset_context(
        settings: CommitterSettings | None = None,
    ) -> FlowWithContext[Any, Committable, Any, CommittableOffsetBatch, Any]:
        """Commit the contexts (offsets) in batches, as :meth:`batch_flow`; the elements
        are dropped (Alpakka's ``flowWithOffsetContext``): emits ``(NotUsed, batch)`` for
        each committed ``CommittableOffsetBatch``.

        Emits when: a batch commit was acknowledged (``wait_for_ack``) or started
        (``send_and_forget``), and downstream pulled.
        Backpressures when: a full batch waits for a commit slot.
        Completes when: upstream completed, the last batch was committed and every
        batch was emitted.
        Fails when: as :meth:`flow` (a context that is not a committable fails it).
        Cancels when: downstream cancels.
        """
        settings = settings if settings is not None else CommitterSettings()
        stage = CommitterStage(
            settings, emit_batches=True, name="Committer.flow_with_offset_context"
        )
        flow: Flow[Any, Any, Any] = Flow().map(_context).via(stage).map(_with_not_used)
        return FlowWithContext(flow)

    @staticmethod
    def sink_with_offset_context(
        settings: CommitterSettings | None = None,
    ) -> Sink[tuple[Any, Committable], Any]:
        """A sink of ``(element, committable)`` pairs (a ``SourceWithContext``'s tuples)
        committing the contexts in batches, as :meth:`sink` (Alpakka's
        ``sinkWithOffsetContext``); materializes an awaitable of ``Done`` once upstream
        completed and every commit was acknowledged, or the stream's failure.

        Use it as ``source_with_context.to_mat(Committer.sink_with_offset_context(),
        DrainingControl)``.

        Backpressures when: as :meth:`flow`.
        Completes when: upstream completed and the last batch was committed.
        Fails when: as :meth:`flow`.
        """
        settings = settings if settings is not None else CommitterSettings()
        stage = CommitterStage(settings, name="Committer.sink_with_offset_context")
        flow: Flow[Any, Any, Any] = Flow().map(_context).via(stage)
        return flow.to_mat(Sink.ignore(), Keep.right)


def _context(pair: tuple[Any, Any]) -> Any:
    return pair[1]


def _with_not_used(batch: CommittableOffsetBatch) -> tuple[Any, CommittableOffsetBatch]:
    return NotUsed, batch
