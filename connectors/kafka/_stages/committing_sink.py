"""``Producer.committable_sink``: produce and commit in one stage (Alpakka's
``CommittingProducerSinkStage``).

The stage is the producer stage (:mod:`.producer`: pipelined sends, bounded by
``ProducerSettings.parallelism``, completion watched at the head, one callback
per aiokafka batch) with the committer's batching (:mod:`.committer`) in place
of its output port, so an offset costs no hop to a second stage:

- When the sends of the oldest envelopes have all been acknowledged, their
  pass-through offsets (``CommittableOffset``, ``CommittableOffsetBatch``; ``None``
  commits nothing) are added, in input order, to the offset batch (a plain dict
  of the highest offset per group, topic and partition). An envelope's offset
  therefore enters the batch only after its own records and those of every
  earlier envelope were written.
- The batch is committed per :class:`~connectors.kafka.settings.CommitterSettings`:
  when ``max_batch`` offsets were added, when ``max_interval`` seconds passed
  since its first offset (a timer on the materializer's clock), and at the end.
  At most ``parallelism`` commits are in flight; a full batch with no free slot
  stops the stage pulling. Transient commit failures are retried with backoff
  (:class:`~connectors.kafka._stages.committer.CommitRunner`, shared with
  ``Committer.sink``); a commit that fails for good fails the stream with
  :class:`~connectors.kafka.errors.KafkaCommitError` (never ignored).
  ``delivery`` makes no difference here: the sink always waits for its commits.
  As in ``Committer.sink``, commits never move backwards: an offset below one this
  stage already committed for its partition is left out (and logged).
- Rebalance (as in the ``Committer`` stages, see
  :class:`~connectors.kafka._stages.committer.RevocationCommits`): the sink registers
  with each consumer whose offsets it collects; when that consumer revokes partitions,
  the offsets of every envelope acknowledged by then (with every earlier one) join the
  batch, even past a full batch waiting for a slot, the batch is committed at once (or
  as soon as a commit slot frees), and the consumer waits for that commit (within what
  is left of its ``commit_timeout``, one deadline for the whole revocation) before the
  partitions move, so their next owner does not read those records again. Offsets of
  envelopes whose records are still in flight are not committed then: their records
  are read again (at-least-once); once acknowledged they are committed as usual, and
  the consumer leaves out those of partitions it no longer owns.
- Upstream completion: wait for every send, close the producer (flushing; a shared
  producer, ``ProducerSettings.with_producer``, is left open and not flushed) while
  committing everything collected, then complete the materialized future with
  ``Done``.
- A failed send, serializer or upstream failure: the sends still pending are
  abandoned (their offsets are never committed), the producer is closed, the
  offsets collected before the failure are committed, then the stream fails
  with the error. A commit failure fails the stream without committing more.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reactive.lowlevel import AwaitingLogicMixin, new_promise
from reactive.stage import TimerGraphStageLogic

from ..messages import CommittableOffset, CommittableOffsetBatch
from ..settings import CommitterSettings, ProducerSettings
from .committer import CommitRunner, OffsetBatcher, RevocationCommits, note_commit_failed_too
from .producer import ProducerStage, _ProducerLogic

__all__ = ["CommittingProducerSinkStage"]

_INTERVAL = "max_interval"


class CommittingProducerSinkStage(ProducerStage):
    """Produces each envelope's records, then commits its pass-through offset, in order.

    The materialized value is a future: ``Done`` once upstream completed, every
    record was acknowledged, the producer closed and every offset committed;
    the stream's error otherwise.
    """

    def __init__(
        self,
        producer_settings: ProducerSettings,
        committer_settings: CommitterSettings,
        *,
        name: str = "Producer.committable_sink",
    ) -> None:
        if not isinstance(committer_settings, CommitterSettings):
            raise TypeError(
                f"{name}: expected CommitterSettings, got {type(committer_settings).__name__}"
            )
        super().__init__(producer_settings, sink=True, name=name)
        self.committer_settings = committer_settings

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        """A fresh logic and its completion future."""
        promise = new_promise(asyncio.get_running_loop())
        return _CommittingSinkLogic(self, promise), promise

    def __repr__(self) -> str:
        return f"CommittingProducerSinkStage({self.name})"


class _CommittingSinkLogic(_ProducerLogic, AwaitingLogicMixin, TimerGraphStageLogic):
    def __init__(self, stage: CommittingProducerSinkStage, promise: asyncio.Future[Any]) -> None:
        super().__init__(stage, promise)
        cs = stage.committer_settings
        self.max_batch = cs.max_batch
        self.max_interval = cs.max_interval
        self.commit_parallelism = cs.parallelism
        self.batch = OffsetBatcher(stage.name)
        self.commits = CommitRunner(self, self._on_committed, self._on_commit_failed)
        self.due = False  # commit as soon as a slot frees (max_interval passed)
        self.producer_done = False  # the producer is closed; _finish was called
        self.finished = False
        self.commit_failed = False
        self.error: BaseException | None = None
        # Commit on revocation (as the Committer stages): the consumers whose offsets
        # the sink collects have it commit, at once, the acknowledged offsets it holds of
        # the partitions they revoke; offsets of records still in flight are not.
        self.collect_all = False  # collecting for a revocation: past a full batch too
        self.revocations = RevocationCommits(
            self, self.batch, self.commits, self._commit_revoked, self._collect_acknowledged
        )

    def pre_start(self) -> None:
        self.batch.stage_name = self.stage_name
        super().pre_start()

    def post_stop(self) -> None:
        self.batch.report()
        self.revocations.stop()
        super().post_stop()

    def observe_gauges(self) -> dict[str, Any]:
        """The producer's figures and the commits in flight."""
        return {**super().observe_gauges(), "kafka_commits_in_flight": self.commits.inflight}

    # -- collecting offsets (replaces the producer stage's emission) --

    def _emit_ready(self) -> None:
        if self.closing:
            return
        pending = self.pending
        head_state = self._head_state
        batch = self.batch
        max_batch = self.max_batch
        try:
            while pending:
                state = head_state(pending[0])
                if state <= 0:
                    if state < 0:
                        return  # failed: closing, nothing from here on is collected
                    break
                pass_through = pending.popleft().envelope.pass_through
                if pass_through is not None:
                    if type(pass_through) is CommittableOffset:
                        batch.add_offset(pass_through)
                    else:
                        batch.add(pass_through)
                    if batch.count >= max_batch:
                        self.revocations.hook(batch.committers.values())
                        self._maybe_commit()
                        if self.held and not self.collect_all:
                            break  # no commit slot: the rest waits in pending
        except Exception as exc:  # not a committable, or two consumers for one group
            self._start_closing(exc, flush=False)
            return
        if batch.offsets:
            self.revocations.hook(batch.committers.values())
            if self.due:
                self._maybe_commit()
            if batch.offsets and not self.is_timer_active(_INTERVAL):
                self.schedule_once(_INTERVAL, self.max_interval)
        if self.upstream_done:
            self._maybe_finish()
        else:
            self._pull_more()

    def _pull_more(self) -> None:
        if (
            len(self.pending) < self.parallelism
            and self.sender is not None
            and not self.closing
            and not self.held
            and not self.has_been_pulled(self.in_)
            and not self.is_closed(self.in_)
        ):
            self._pull_in()

    # -- committing --

    def _maybe_commit(self, force: bool = False) -> None:
        batch = self.batch
        if batch.offsets and (
            force or self.due or self.upstream_done or batch.count >= self.max_batch
        ):
            if self.commits.inflight >= self.commit_parallelism:
                self.due = True  # as soon as a slot frees
            else:
                self.due = False
                self.cancel_timer(_INTERVAL)
                self.commits.start(batch.take())
        # A full batch that found no free slot holds the input back.
        self.held = bool(batch.offsets) and batch.count >= self.max_batch

    def _collect_acknowledged(self) -> None:
        # A revocation: every offset whose records (and every earlier envelope's) were
        # acknowledged joins the batch, a full batch waiting for a slot or not.
        self.collect_all = True
        try:
            self._emit_ready()
        finally:
            self.collect_all = False

    def _commit_revoked(self) -> None:
        # A revocation: commit the batch at once (or as soon as a slot frees).
        self.due = True
        self._maybe_commit()

    def on_timer(self, key: Any) -> None:
        if key == _INTERVAL:
            self.due = True
            self._maybe_commit()
            self._pull_more()
        else:
            self.commits.on_timer(key)

    def _on_committed(self, _: CommittableOffsetBatch) -> None:
        self.revocations.check()
        self._maybe_commit()
        if self.producer_done:
            self._try_complete()
        else:
            self._emit_ready()  # collect what waited for the slot; pull or finish

    def _on_commit_failed(self, error: BaseException) -> None:
        self.revocations.check(everything=True)
        self.commit_failed = True
        if self.error is None:
            self.error = error
        elif self.error is not error:
            # The stream fails with the earlier failure (the root cause); say that the
            # offsets collected before it were not committed either.
            note_commit_failed_too(self.error, self.stage_name, error)
        if self.producer_done:
            self._try_complete()
        else:
            self._start_closing(error, flush=False)

    # -- completion --

    def _maybe_finish(self) -> None:
        if self.pending or self.closing:
            return
        # Every send was acknowledged: commit what is left while the producer closes.
        self._maybe_commit(force=True)
        super()._maybe_finish()

    def _finish(self, error: BaseException | None) -> None:
        # The producer is closed (or never started): commit what was collected, then end.
        self.closing = True
        self.producer_done = True
        if error is not None and self.error is None:
            self.error = error
        self._try_complete()

    def _try_complete(self) -> None:
        if self.finished:
            return
        if not self.commit_failed:
            if self.batch.offsets:
                self._maybe_commit(force=True)
            if self.batch.offsets or self.commits.inflight:
                return  # _on_committed calls again
        self.finished = True
        super()._finish(self.error)
