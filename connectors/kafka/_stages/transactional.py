"""``Transactional``: consume-transform-produce in Kafka transactions (Alpakka's
``Transactional.source`` / ``sink`` / ``flow``).

- :meth:`Transactional.source` is ``Consumer.committable_source`` with
  ``isolation_level="read_committed"`` and no auto-commit, each record wrapped in a
  :class:`TransactionalMessage` carrying its :class:`PartitionOffset` (group, topic,
  partition, offset). A consumer group is required: the offsets are committed to it
  inside the producer's transactions.
- :meth:`Transactional.flow` / :meth:`Transactional.sink` own one transactional
  aiokafka producer (``transactional_id``; InitProducerId through
  :mod:`connectors.kafka._compat_txn`). The first element after a commit begins a
  transaction; every ``commit_interval`` seconds (a timer on the materializer's
  clock), when the transaction holds anything, the stage stops pulling, waits for
  every send of the transaction to be acknowledged, adds the highest offset + 1 of
  each group and partition seen (the envelopes' ``PartitionOffset`` pass-throughs)
  to the transaction (``send_offsets_to_transaction``) and commits it. Records and
  offsets become visible to read-committed readers together, or not at all.
- Envelopes are pulled ahead (up to 1,000) while one task hands the previous ones to
  aiokafka in input order; nothing is pulled while a commit is due or running.
- Completion: the open transaction is committed, the producer closed, then the stage
  completes (the sink's future with ``Done``).
- Any failure (upstream, a send, a serializer, the commit, a fenced producer) and
  downstream cancellation first settle the send or commit in flight, then abort the
  transaction the producer really has open, close the producer and fail (cancel) the
  stage. A commit or abort that does not finish within ``ProducerSettings.max_block``
  (Kafka's ``max.block.ms``) fails the stage; an abort that could not be done is logged
  and added to the error as a note (readers stall until ``transaction.timeout.ms``).
  Nothing of an aborted transaction is committed: its input
  offsets are not, so a restarted stream (``RestartSource``, as in Alpakka) reads
  those records again. A second instance with the same ``transactional_id`` fences
  this one: its next send or commit fails.
- The flow emits the results of a transaction's envelopes (``Result``,
  ``MultiResult``, ``PassThroughResult``, in input order) once that transaction
  committed, and does not pull while they wait for demand.
- The with-offset-context variants (Alpakka's ``sourceWithOffsetContext``,
  ``flowWithOffsetContext``, ``sinkWithOffsetContext``) are the same stages:
  :meth:`Transactional.source_with_offset_context` splits each message into
  ``(record, partition_offset)``; the producer stage, built with ``with_context``,
  takes ``(envelope, partition_offset)`` pairs, makes the context the envelope's
  pass-through (whatever it carried is replaced) and the flow emits
  ``(result, partition_offset)`` pairs.

Rebalances (as Alpakka): with a group subscription, a revocation waits (up to
``ConsumerSettings.commit_timeout``) until every record the source emitted from the
revoked partitions was committed in a transaction, so their next owner starts after
them; then the user's rebalance listener runs. Records that never reach a
transactional stage (filtered out) hold a revocation until that timeout: pass them on
as ``ProducerMessage.pass_through(message.partition_offset)``. When the wait times
out the source fails (Alpakka's "Timeout while draining"), after the user's listener
ran, and a transactional stage holding records of those partitions aborts its
transaction and fails instead of committing them (the next owner reads them again;
TxnOffsetCommit v0 carries no group generation, so the broker cannot refuse the late
commit as Kafka's KIP-447 does).

Shutdown (as Alpakka's ``TransactionalSource``, which drains before it stops its
consumer): ``Control.shutdown()``, downstream cancellation or a failure closes the
consumer only once every record the source emitted was committed (or a transactional
stage that took them failed), up to ``commit_timeout``; the consumer stays in its group
meanwhile, so no other member reads those records again. Records still pending after
the timeout are treated as on a revocation that timed out: no transaction commits them.

Commits never move backwards: each transactional stage remembers the highest offset it
committed per group and partition and leaves an offset at or below it out of later
transactions (a context reordered upstream, e.g. by ``map_async_unordered``), as
``Committer.sink`` does; the first one left out is logged as a WARNING.

Exactly-once needs a broker whose read-committed fetches skip aborted
transactions: the embedded test broker does not (``connectors/kafka/TRANSACTIONS.md``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import ProducerFenced
from aiokafka.producer.transaction_manager import TransactionState
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from reactive import Done, Flow, FlowWithContext, NotUsed, Sink, Source, SourceWithContext
from reactive.lowlevel import AwaitingLogicMixin
from reactive.stage import (
    FlowShape,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SinkShape,
    TimerGraphStageLogic,
)

from .._closing import start_within
from .._compat_txn import enable_init_producer_id_v4
from ..errors import (
    KafkaConsumerError,
    KafkaProducerError,
    KafkaTransactionError,
    ProducerSerializationError,
)
from ..messages import (
    CommittableMessage,
    GroupTopicPartition,
    Message,
    MultiMessage,
    MultiResult,
    MultiResultPart,
    PartitionOffset,
    PassThroughMessage,
    PassThroughResult,
    ProducerRecord,
    RecordMetadata,
    Result,
)
from ..settings import ConsumerSettings, ProducerSettings
from ..subscriptions import AutoSubscription, RebalanceListener, Subscription
from .consumer import REVOCATION_DEADLINE
from .consumers import _source
from .producer import _close_quietly
from .producers import _with_pass_through

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

    from aiokafka.structs import ConsumerRecord

    from ..messages import Envelope, Results
    from .control import Control

__all__ = ["KafkaTransactionError", "Transactional", "TransactionalMessage"]

log = logging.getLogger(__name__)

R = TypeVar("R")

_COMMIT = "commit-interval"
#: Envelopes pulled ahead while a send task runs.
_MAX_QUEUED = 1000
#: Alpakka's ``eos-commit-interval``.
DEFAULT_COMMIT_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class TransactionalMessage(Generic[R]):
    """An element of :meth:`Transactional.source`: the record and its offset, to be
    passed through to :meth:`Transactional.sink` / :meth:`Transactional.flow`."""

    record: R
    partition_offset: PartitionOffset


#: How often a revocation checks whether the revoked partitions' records committed
#: (Alpakka's ``eos-draining-check-interval``).
_DRAIN_CHECK = 0.03


class _InFlight:
    """The offsets one :meth:`Transactional.source` emitted and the transactional stages
    committed, per partition (Alpakka's in-flight tracking of ``TransactionalSource``).

    ``epoch`` counts the revocations of each partition: a record is emitted in the
    partition's current epoch. ``lost`` holds the ``(partition, epoch)`` whose records
    the source gave up waiting for (a revocation or a shutdown whose drain timed out:
    the partition's next owner reads them again); a transactional stage must not commit
    a transaction holding one of them (it aborts and fails instead). ``abandoned`` is set
    when a transactional stage that took this source's records failed: nothing more of
    them will be committed, so a drain stops waiting."""

    def __init__(self) -> None:
        self.emitted: dict[TopicPartition, int] = {}  # highest offset emitted
        self.committed: dict[TopicPartition, int] = {}  # next offset, committed
        self.epoch: dict[TopicPartition, int] = {}
        self.lost: set[tuple[TopicPartition, int]] = set()
        self.abandoned = False

    def pending(self, tps: Iterable[TopicPartition]) -> list[TopicPartition]:
        return [
            tp
            for tp in tps
            if tp in self.emitted and self.committed.get(tp, -1) <= self.emitted[tp]
        ]

    def on_committed(self, tp: TopicPartition, next_offset: int) -> None:
        if next_offset > self.committed.get(tp, -1):
            self.committed[tp] = next_offset

    async def drain(self, tps: Iterable[TopicPartition] | None, timeout: float) -> list[Any]:
        """Wait (up to ``timeout`` s) until every record emitted from ``tps`` (None: from
        every partition) was committed; the partitions still pending after it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        pending = self.pending(self.emitted if tps is None else tps)
        while pending and not self.abandoned and loop.time() < deadline:
            await asyncio.sleep(_DRAIN_CHECK)
            pending = self.pending(self.emitted if tps is None else tps)
        return pending

    def give_up(self, tps: Iterable[TopicPartition], lost: Iterable[TopicPartition]) -> None:
        """``tps`` leave this source: forget their records, and mark those of ``lost``
        (not all committed) as never to be committed."""
        for tp in lost:
            self.lost.add((tp, self.epoch.get(tp, 0)))
        for tp in tps:
            self.epoch[tp] = self.epoch.get(tp, 0) + 1
            self.emitted.pop(tp, None)
            self.committed.pop(tp, None)


@dataclass(frozen=True, slots=True)
class _TrackedPartitionOffset(PartitionOffset):
    """A ``PartitionOffset`` that tells its source when it was committed."""

    in_flight: _InFlight = field(compare=False, repr=False, default_factory=_InFlight)
    epoch: int = field(compare=False, repr=False, default=0)


class _DrainOnRevoke:
    """Alpakka's revocation rule for transactions: before partitions move, wait (up to
    ``timeout``) until every record emitted from them was committed in a transaction,
    so the next owner starts after them; then tell the user's listener.

    When the wait times out the source fails (Alpakka: "Timeout while draining"), once
    the user's listener ran, and the records of the partitions still pending are
    marked lost: a transactional stage holding one of them aborts its transaction and
    fails rather than commit records the partition's next owner reads again."""

    def __init__(
        self, in_flight: _InFlight, user: RebalanceListener | None, timeout: float
    ) -> None:
        self.in_flight = in_flight
        self.user = user
        self.timeout = timeout

    async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        in_flight = self.in_flight
        pending = in_flight.pending(revoked)
        if pending:
            log.debug(
                "[Transactional.source] revocation of %s waits until the records taken "
                "from %s are committed (up to %s s, commit_timeout)",
                sorted(revoked),
                sorted(pending),
                self.timeout,
            )
            # What is left of the revocation's one deadline (commit_timeout from its
            # start: the consumer's buffer filter ran before this), at most ``timeout``.
            timeout = self.timeout
            deadline = REVOCATION_DEADLINE.get()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - asyncio.get_running_loop().time()))
            pending = await in_flight.drain(revoked, timeout)
        if pending:
            log.warning(
                "[Transactional.source] partitions %s were revoked with records not yet "
                "committed within commit_timeout=%s s of the revocation: the next owner "
                "reads them again; the source fails and no transaction commits them here",
                sorted(pending),
                self.timeout,
            )
        in_flight.give_up(revoked, pending)
        if self.user is not None:
            result = self.user.on_partitions_revoked(revoked)
            if inspect.isawaitable(result):
                await result
        if pending:
            # Alpakka's TransactionalSource: "Timeout while draining" fails the source.
            raise KafkaConsumerError(
                f"[Transactional.source] timeout while draining: partitions "
                f"{sorted(pending)} were revoked with records not yet committed within "
                f"ConsumerSettings.commit_timeout ({self.timeout} s) of the revocation"
            )

    async def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        if self.user is not None:
            result = self.user.on_partitions_assigned(assigned)
            if inspect.isawaitable(result):
                await result


def _tracked(in_flight: _InFlight, message: CommittableMessage[Any]) -> _TrackedPartitionOffset:
    """The message's offset as a ``PartitionOffset`` its source hears back from (and
    noted as emitted)."""
    offset = message.committable_offset
    tp = TopicPartition(offset.topic, offset.partition)
    in_flight.emitted[tp] = offset.offset
    return _TrackedPartitionOffset(
        GroupTopicPartition(offset.group_id, offset.topic, offset.partition),
        offset.offset,
        in_flight,
        in_flight.epoch.get(tp, 0),
    )


def _transactional(in_flight: _InFlight) -> Any:
    def to_transactional(message: CommittableMessage[Any]) -> TransactionalMessage[Any]:
        return TransactionalMessage(message.record, _tracked(in_flight, message))

    return to_transactional


def _record_and_offset(in_flight: _InFlight) -> Any:
    def to_pair(message: CommittableMessage[Any]) -> tuple[Any, PartitionOffset]:
        return message.record, _tracked(in_flight, message)

    return to_pair


def _committable_source(
    settings: ConsumerSettings, subscription: Subscription, name: str, to_element: Any
) -> Source[Any, Control]:
    """``Consumer.committable_source`` read-committed, its messages mapped with
    ``to_element(in_flight)``, revocations drained (Alpakka's ``TransactionalSource``)."""
    if not isinstance(settings, ConsumerSettings):
        raise TypeError(f"{name}: expected ConsumerSettings, got {type(settings).__name__}")
    if not settings.group_id:
        raise ValueError(
            f"{name} needs a consumer group: the transactions commit the "
            "consumed offsets to it (ConsumerSettings(..., group_id=...))"
        )
    settings = settings.with_property("isolation_level", "read_committed")
    in_flight = _InFlight()
    if isinstance(subscription, AutoSubscription):
        # Replaces the user's listeners with a wrapper that calls them (not added to them).
        subscription = dataclasses.replace(  # type: ignore[type-var]
            subscription,
            rebalance_listener=_DrainOnRevoke(
                in_flight, subscription.rebalance_listener, settings.commit_timeout
            ),
        )
    source: Source[CommittableMessage[Any], Control] = _source(
        "committable_source",
        settings,
        subscription,
        committable=True,
        partitioned=False,
        name=name,
        drain=partial(_drain_before_close, in_flight, settings.commit_timeout, name),
    )
    return source.map(to_element(in_flight))


async def _drain_before_close(in_flight: _InFlight, timeout: float, name: str) -> None:
    """Before the consumer leaves its group (``Control.shutdown()``, cancellation, a
    failure): wait (up to ``timeout``, ``commit_timeout``) until every record the source
    emitted was committed, so the partitions' next owners start after them (Alpakka's
    ``TransactionalSource`` drains before it stops its consumer). Records still pending
    then are marked lost: no transaction commits them after the consumer left."""
    pending = in_flight.pending(in_flight.emitted)
    if not pending:
        return
    log.debug(
        "[%s] closing the consumer waits until the records taken from %s are committed "
        "(up to %s s, commit_timeout)",
        name,
        sorted(pending),
        timeout,
    )
    pending = await in_flight.drain(None, timeout)
    if pending and not in_flight.abandoned:
        log.warning(
            "[%s] the consumer closes with records of %s not yet committed after %s s "
            "(commit_timeout): their next owner reads them again, and no transaction "
            "commits them here",
            name,
            sorted(pending),
            timeout,
        )
    in_flight.give_up(list(in_flight.emitted), pending)


class TransactionalProducerStage(GraphStageWithMaterializedValue[Any, Any]):
    """Produces envelopes in transactions with their ``PartitionOffset`` pass-throughs."""

    def __init__(
        self,
        settings: ProducerSettings,
        transactional_id: str,
        *,
        sink: bool,
        commit_interval: float,
        name: str,
        with_context: bool = False,
    ) -> None:
        if not isinstance(settings, ProducerSettings):
            raise TypeError(f"{name}: expected ProducerSettings, got {type(settings).__name__}")
        if settings.producer is not None:
            # As Alpakka's Transactional: "You cannot use a shared or external producer".
            raise ValueError(
                f"{name}: cannot use a shared producer (ProducerSettings.with_producer): a "
                "transactional stage needs its own producer, whose transactional_id fences "
                "its previous instance and whose transactions hold only its records; pass "
                "settings without one (settings.with_producer(None))"
            )
        if not isinstance(transactional_id, str) or not transactional_id:
            raise ValueError(
                f"{name}: transactional_id must be a non-empty str (unique per instance of "
                f"the application), got {transactional_id!r}"
            )
        if isinstance(commit_interval, bool) or not isinstance(commit_interval, int | float):
            raise TypeError(
                f"{name}: commit_interval must be seconds (a number), got "
                f"{type(commit_interval).__name__}"
            )
        if not commit_interval > 0:
            raise ValueError(f"{name}: commit_interval must be > 0 s, got {commit_interval}")
        for key in ("transactional_id", "enable_idempotence"):
            if key in settings.properties:
                raise ValueError(
                    f"{name}: ProducerSettings.properties must not set {key!r}: the "
                    "transactional stages set it (pass transactional_id as an argument)"
                )
        self.settings = settings
        self.transactional_id = transactional_id
        self.commit_interval = float(commit_interval)
        self.sink = sink
        self.name = name
        #: Elements are ``(envelope, PartitionOffset)`` pairs; the flow emits
        #: ``(result, PartitionOffset)`` pairs.
        self.with_context = with_context
        if sink:
            self.shape: Any = SinkShape(Inlet(f"{name}.in"))
        else:
            self.shape = FlowShape(Inlet(f"{name}.in"), Outlet(f"{name}.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        """A fresh logic; the sink's materialized value is its completion future."""
        promise: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        promise.add_done_callback(_retrieve)
        return _TransactionalLogic(self, promise), (promise if self.sink else NotUsed)

    def __repr__(self) -> str:
        return f"TransactionalProducerStage({self.name}, {self.transactional_id!r})"


def _retrieve(f: asyncio.Future[Any]) -> None:
    if not f.cancelled():
        f.exception()


class _TransactionalLogic(AwaitingLogicMixin, TimerGraphStageLogic, InHandler, OutHandler):
    # Some fields in slots: past the 29 names a logic keeps in CPython's shared-key layout
    # (see ``reactive._stage.logic._LogicFields``).
    __slots__ = (
        "send_task",
        "commit_task",
        "committing_offsets",
        "with_context",
        "sources",
        "txn_epochs",
        "committing_epochs",
        "handed",
        "stale",
    )

    def __init__(self, stage: TransactionalProducerStage, promise: asyncio.Future[Any]) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.name = stage.name
        self.tid = stage.transactional_id
        self.settings = stage.settings
        self.promise = promise
        self.with_context = stage.with_context
        self.in_: Inlet[Any] = stage.shape.in_
        self.out: Outlet[Any] | None = None if stage.sink else stage.shape.out
        self.set_handler(self.in_, self)
        if self.out is not None:
            self.set_handler(self.out, self)
        self.producer: AIOKafkaProducer | None = None
        self.ready = False  # the producer started
        self.busy = False  # a send task or a commit is being awaited
        self.committing = False
        self.emitting = False  # results wait for downstream demand
        self.in_txn = False
        self.commit_due = False
        self.upstream_done = False
        self.closing = False
        self.closed = False
        # Envelopes pulled but not yet handed to aiokafka (a send task takes them all).
        self.queue: list[tuple[Any, tuple[ProducerRecord[Any, Any], ...], Any]] = []
        self.sends: list[tuple[Any, list[asyncio.Future[Any]]]] = []
        self.offsets: dict[str, dict[TopicPartition, int]] = {}
        # The sources to tell when offsets committed (Transactional.source's in-flight).
        self.in_flight: set[_InFlight] = set()
        self.committing_in_flight: set[_InFlight] = set()
        self.committing_offsets: dict[str, dict[TopicPartition, int]] = {}
        # Every Transactional.source whose records reached this stage (told when it
        # fails: a drain need not wait for it), and the (source, partition, epoch) of the
        # records in the open / the committing transaction (see _InFlight.lost).
        self.sources: set[_InFlight] = set()
        self.txn_epochs: set[tuple[_InFlight, TopicPartition, int]] = set()
        self.committing_epochs: set[tuple[_InFlight, TopicPartition, int]] = set()
        # The highest next offset handed to a commit, per group and partition: an offset
        # at or below it is left out of later transactions (commits never move back).
        self.handed: dict[str, dict[TopicPartition, int]] = {}
        self.stale = 0  # offsets left out because they were below ``handed``
        # The send task and the commit task in flight (settled before an abort).
        self.send_task: asyncio.Future[Any] | None = None
        self.commit_task: asyncio.Future[Any] | None = None

    # -- start --

    def pre_start(self) -> None:
        self.set_keep_going(True)
        self.delivery_failed = self.get_async_callback(self._on_delivery_failed)
        kwargs = self.settings.to_aiokafka_kwargs()
        kwargs["transactional_id"] = self.tid
        kwargs["enable_idempotence"] = True
        try:
            producer = AIOKafkaProducer(**kwargs)
            enable_init_producer_id_v4(producer)
        except Exception as exc:
            self._abort_and_fail(self._error("creating the producer", exc))
            return
        self.producer = producer
        self._await(
            start_within(producer.start(), producer.client, self.settings.connect_timeout),
            self._on_started,
        )

    def _on_started(self, fut: asyncio.Future[Any]) -> None:
        if self.closing:
            return
        exc = fut.exception()
        if exc is not None:
            self._abort_and_fail(self._error("initialising the transactional producer", exc))
            return
        self.ready = True
        interval = self.stage.commit_interval
        self.schedule_with_fixed_delay(_COMMIT, interval, interval)
        self._next()

    # -- elements --

    def on_push(self) -> None:
        envelope = self.grab(self.in_)
        if self.closing:
            return
        try:
            if self.with_context:
                envelope = self._with_context_as_pass_through(envelope)
            records, pass_through = self._unpack(envelope)
        except Exception as exc:
            self._abort_and_fail(exc)
            return
        if isinstance(pass_through, _TrackedPartitionOffset):
            self.sources.add(pass_through.in_flight)
        self.queue.append((envelope, records, pass_through))
        self._next()

    def _with_context_as_pass_through(self, pair: Any) -> Any:
        """The envelope of an ``(envelope, partition_offset)`` pair, with the context as
        its pass-through (Alpakka's ``envelope.withPassThrough(context)``)."""
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError(
                f"[{self.name}] expects (envelope, PartitionOffset) pairs (the elements of "
                f"a SourceWithContext / FlowWithContext), got {type(pair).__name__}"
            )
        envelope, context = pair
        if not isinstance(context, PartitionOffset):
            raise TypeError(
                f"[{self.name}] the context must be the PartitionOffset of a record of "
                "Transactional.source_with_offset_context, got "
                f"{type(context).__name__}"
            )
        return _with_pass_through(envelope, context, self.name)

    def _unpack(self, envelope: Any) -> tuple[tuple[ProducerRecord[Any, Any], ...], Any]:
        if isinstance(envelope, Message):
            records: tuple[ProducerRecord[Any, Any], ...] = (envelope.record,)
        elif isinstance(envelope, MultiMessage):
            records = envelope.records
        elif isinstance(envelope, PassThroughMessage):
            records = ()
        else:
            raise TypeError(
                f"[{self.name}] expects ProducerMessage envelopes (single, multi, "
                f"pass_through) carrying a PartitionOffset, got {type(envelope).__name__}"
            )
        pass_through = envelope.pass_through
        if pass_through is not None and not isinstance(pass_through, PartitionOffset):
            raise TypeError(
                f"[{self.name}] the pass-through must be the PartitionOffset of a "
                f"TransactionalMessage (or None), got {type(pass_through).__name__}"
            )
        return records, pass_through

    def _start_sends(self) -> None:
        batch, self.queue = self.queue, []
        begin = not self.in_txn
        self.in_txn = True
        self.busy = True
        self.send_task = self._await(
            self._send(batch, begin), lambda fut: self._on_sent(batch, fut)
        )

    async def _send(self, batch: list[Any], begin: bool) -> list[list[asyncio.Future[Any]]]:
        """Hand every record of ``batch`` to aiokafka, in order (one task for many envelopes)."""
        producer = self.producer
        assert producer is not None
        if begin:
            await producer.begin_transaction()
        sent = []
        for _, records, _ in batch:
            futures = []
            for record in records:
                key = self._serialize(self.settings.key_serializer, record.key, "key", record.topic)
                value = self._serialize(
                    self.settings.value_serializer, record.value, "value", record.topic
                )
                futures.append(
                    await producer.send(
                        record.topic,
                        value,
                        key=key,
                        partition=record.partition,
                        timestamp_ms=record.timestamp_ms,
                        headers=list(record.headers) if record.headers else None,
                    )
                )
            sent.append(futures)
        return sent

    def _serialize(self, serializer: Any, data: Any, what: str, topic: str) -> Any:
        if serializer is not None and data is not None:
            try:
                data = serializer(data)
            except Exception as exc:
                raise ProducerSerializationError(
                    f"[{self.name}] cannot serialize the {what} of a record for topic "
                    f"{topic!r}: {type(exc).__name__}: {exc}"
                ) from exc
        if data is not None and not isinstance(data, bytes):
            raise ProducerSerializationError(
                f"[{self.name}] the {what} of a record for topic {topic!r} must be bytes "
                f"(or set a {what}_serializer), got {type(data).__name__}"
            )
        return data

    def _on_sent(self, batch: list[Any], fut: asyncio.Future[Any]) -> None:
        if self.closing:
            return
        self.busy = False
        exc = fut.exception()
        if exc is not None:
            self._abort_and_fail(
                exc if isinstance(exc, ProducerSerializationError) else self._error("sending", exc)
            )
            return
        offsets = self.offsets
        for (envelope, _, pass_through), futures in zip(batch, fut.result(), strict=True):
            for delivery in futures:
                delivery.add_done_callback(self._watch_delivery)
            self.sends.append((envelope, futures))
            if pass_through is not None:
                key = pass_through.key
                tp = TopicPartition(key.topic, key.partition)
                if isinstance(pass_through, _TrackedPartitionOffset):
                    source = pass_through.in_flight
                    self.in_flight.add(source)
                    self.sources.add(source)
                    self.txn_epochs.add((source, tp, pass_through.epoch))
                partitions = offsets.setdefault(key.group_id, {})
                partitions[tp] = max(partitions.get(tp, 0), pass_through.offset + 1)
        self._next()

    def _watch_delivery(self, delivery: asyncio.Future[Any]) -> None:
        # A send fails the stage at once (not only when its transaction commits).
        if not delivery.cancelled():
            exc = delivery.exception()
            if exc is not None:
                self.delivery_failed.invoke(exc)

    def _on_delivery_failed(self, exc: BaseException) -> None:
        self._abort_and_fail(self._error("sending", exc))

    def _next(self) -> None:
        """Start what is due (a commit, a send task, the end), and keep the input pulled."""
        if self.closing or not self.ready:
            return
        if not self.busy and not self.emitting:
            if self.in_txn and (self.commit_due or (self.upstream_done and not self.queue)):
                self._commit()
                if self.closing:
                    return  # the transaction held lost records: aborting (see _lost)
            elif self.queue:
                self._start_sends()
            elif self.upstream_done:
                self._close_and_complete()
                return
        # Pull while a send task runs (what arrives waits in the queue), not while a
        # commit is due or running, nor while results wait for demand.
        if (
            not self.commit_due
            and not self.committing
            and not self.emitting
            and len(self.queue) < _MAX_QUEUED
            and not self.has_been_pulled(self.in_)
            and not self.is_closed(self.in_)
        ):
            self.pull(self.in_)

    # -- committing --

    def on_timer(self, key: Any) -> None:
        # An interval passing while a commit runs belongs to the transaction being
        # committed: marking a commit due then would outlive it (no transaction open, so
        # nothing would clear it) and keep the input unpulled for good.
        if key == _COMMIT and self.in_txn and not self.committing and not self.closing:
            self.commit_due = True
            self._next()

    def _commit(self) -> None:
        lost = self._lost(self.txn_epochs)
        if lost is not None:
            self._abort_and_fail(lost)
            return
        self.busy = True
        self.committing = True
        self.commit_due = False
        sends, self.sends = self.sends, []
        offsets = self._forward_only(self.offsets)
        self.offsets = {}
        self.committing_offsets = offsets
        self.committing_in_flight, self.in_flight = self.in_flight, set()
        self.committing_epochs, self.txn_epochs = self.txn_epochs, set()
        self.commit_task = self._await(
            self._within(self._do_commit(sends, offsets), "committing the transaction"),
            self._on_committed,
        )

    def _forward_only(
        self, offsets: dict[str, dict[TopicPartition, int]]
    ) -> dict[str, dict[TopicPartition, int]]:
        """``offsets`` without those at or below the highest already handed to a commit
        (records reordered upstream, e.g. by ``map_async_unordered``: committing them
        would move the group back and a restart would produce 4..9 again), as
        ``Committer.sink`` (``OffsetBatcher``); the others are remembered."""
        kept: dict[str, dict[TopicPartition, int]] = {}
        for group_id, partitions in offsets.items():
            handed = self.handed.setdefault(group_id, {})
            for tp, next_offset in partitions.items():
                done = handed.get(tp)
                if done is not None and next_offset <= done:
                    if next_offset < done:
                        self.stale += 1
                        log.log(
                            logging.WARNING if self.stale == 1 else logging.DEBUG,
                            "[%s] not committing offset %d of %s-%d (group %r): offset %d "
                            "was already committed and commits never move backwards (%d "
                            "stale offset(s) so far). Offsets arrive out of order when the "
                            "stream reorders records (e.g. map_async_unordered)",
                            self.name,
                            next_offset - 1,
                            tp.topic,
                            tp.partition,
                            group_id,
                            done - 1,
                            self.stale,
                        )
                    continue
                handed[tp] = next_offset
                kept.setdefault(group_id, {})[tp] = next_offset
        return kept

    def _lost(
        self, epochs: set[tuple[_InFlight, TopicPartition, int]]
    ) -> KafkaTransactionError | None:
        """The error to fail with when the transaction holds records a
        ``Transactional.source`` gave up on (a revocation or shutdown whose drain timed
        out: their partition's next owner reads them again), else None."""
        lost = sorted({tp for source, tp, epoch in epochs if (tp, epoch) in source.lost})
        if not lost:
            return None
        return KafkaTransactionError(
            f"[{self.name}] transactional id {self.tid!r}: the transaction holds records of "
            f"partitions {lost} that were revoked (or whose source shut down) before they "
            "were committed (the wait for them timed out: ConsumerSettings.commit_timeout); "
            "their next owner reads them again, so the transaction is aborted, not committed",
            self.tid,
        )

    async def _within(self, aw: Awaitable[R], doing: str) -> R:
        """``aw`` within ``ProducerSettings.max_block`` (Kafka's ``max.block.ms``), or
        a ``KafkaTransactionError`` naming the stage, the transactional id and the bound."""
        timeout = self.settings.max_block
        try:
            return await asyncio.wait_for(aw, timeout)
        except TimeoutError:
            raise KafkaTransactionError(
                f"[{self.name}] transactional id {self.tid!r}: {doing} did not finish "
                f"within {timeout} s (ProducerSettings.max_block, Kafka's max.block.ms): "
                "the broker does not answer, or a second instance with the same "
                "transactional id fenced this one",
                self.tid,
            ) from None

    async def _do_commit(
        self, sends: list[tuple[Any, list[asyncio.Future[Any]]]], offsets: dict[str, Any]
    ) -> list[Any]:
        producer = self.producer
        assert producer is not None
        results = []
        for envelope, futures in sends:
            metadata = [RecordMetadata.from_aiokafka(m) for m in await asyncio.gather(*futures)]
            if self.out is not None:
                result = _result(envelope, metadata)
                results.append((result, envelope.pass_through) if self.with_context else result)
        for group_id, partitions in offsets.items():
            await producer.send_offsets_to_transaction(
                {tp: OffsetAndMetadata(offset, "") for tp, offset in partitions.items()},
                group_id,
            )
        # A revocation may have timed out while this commit waited for its sends.
        lost = self._lost(self.committing_epochs)
        if lost is not None:
            raise lost
        await producer.commit_transaction()
        return results

    def _on_committed(self, fut: asyncio.Future[Any]) -> None:
        if self.closing:
            return
        self.busy = False
        self.committing = False
        exc = fut.exception()
        if exc is not None:
            self._abort_and_fail(self._error("committing", exc))
            return
        self.in_txn = False
        self.commit_due = False
        for in_flight in self.committing_in_flight:
            for partitions in self.committing_offsets.values():
                for tp, next_offset in partitions.items():
                    in_flight.on_committed(tp, next_offset)
        self.committing_in_flight = set()
        self.committing_offsets = {}
        self.committing_epochs = set()
        results = fut.result()
        if results and self.out is not None:
            self.emitting = True
            self.emit_multiple(self.out, results, self._on_emitted)
        else:
            self._next()

    def _on_emitted(self) -> None:
        self.emitting = False
        self._next()

    # -- termination --

    def on_upstream_finish(self) -> None:
        self.upstream_done = True
        self._next()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._abort_and_fail(exc)

    def on_pull(self) -> None:
        pass  # input is pulled when the stage is idle (see _next); emits push themselves

    def on_downstream_finish(self, cause: BaseException) -> None:
        self._abort_and_fail(None)

    def _error(self, doing: str, exc: BaseException) -> BaseException:
        if isinstance(exc, KafkaProducerError):
            return exc
        fenced = (
            " (a second instance with the same transactional id fenced this one)"
            if isinstance(exc, ProducerFenced)
            else ""
        )
        error = KafkaTransactionError(
            f"[{self.name}] transactional id {self.tid!r}: {doing} failed: "
            f"{type(exc).__name__}: {exc}{fenced}",
            self.tid,
        )
        error.__cause__ = exc
        return error

    def _abort_and_fail(self, error: BaseException | None) -> None:
        """Abort the open transaction, close the producer, then fail with ``error``
        (``None``: downstream cancelled; complete)."""
        if self.closing:
            return
        self.closing = True
        self.cancel_timer(_COMMIT)
        for source in self.sources:
            source.abandoned = True  # its records are not committed here any more
        self._await(self._abort_and_close(), lambda fut: self._on_aborted(error, fut))

    def _on_aborted(self, error: BaseException | None, fut: asyncio.Future[Any]) -> None:
        failure = None if fut.cancelled() else fut.exception() or fut.result()
        self._finish(_with_abort_failure(error, failure))

    async def _abort_and_close(self) -> KafkaTransactionError | None:
        """Settle the send or commit task in flight, abort the transaction the producer
        really has open (if any), close the producer. Returns the error to report when
        a transaction may be left open (readers stall until transaction.timeout.ms)."""
        producer = self.producer
        if producer is None:
            return None
        failure = None
        timeout = self.settings.max_block
        reason: str | None = None
        cause: BaseException | None = None
        try:
            await asyncio.wait_for(self._abort_open_transaction(producer), timeout)
        except TimeoutError as exc:
            reason, cause = f"did not finish within {timeout} s (ProducerSettings.max_block)", exc
        except Exception as exc:
            reason, cause = f"failed: {type(exc).__name__}: {exc}", exc
        if reason is not None:
            failure = KafkaTransactionError(
                f"[{self.name}] transactional id {self.tid!r}: aborting the open transaction "
                f"{reason}; read_committed consumers of its partitions stall until the "
                "broker aborts it after transaction.timeout.ms, or until a producer with "
                "the same transactional id starts",
                self.tid,
            )
            failure.__cause__ = cause
            log.error("%s", failure)
        await _close_quietly(producer, self.settings.close_timeout)
        self.closed = True
        return failure

    async def _settle_in_flight(self) -> None:
        """Cancel the send task (what it handed to aiokafka stays in the transaction,
        aborted next); let a commit in flight end, within ``max_block``."""
        send, self.send_task = self.send_task, None
        if send is not None and not send.done():
            send.cancel()
            await asyncio.wait({send})
        commit, self.commit_task = self.commit_task, None
        if commit is not None and not commit.done():
            await asyncio.wait({commit})  # bounded by _within (max_block)

    async def _abort_open_transaction(self, producer: AIOKafkaProducer) -> None:
        await self._settle_in_flight()
        txn = producer._txn_manager
        state = txn.state if txn is not None else TransactionState.READY
        if state in (TransactionState.IN_TRANSACTION, TransactionState.ABORTABLE_ERROR):
            await producer.abort_transaction()
        elif state in (
            TransactionState.COMMITTING_TRANSACTION,
            TransactionState.ABORTING_TRANSACTION,
        ):
            # An EndTxn is under way (a commit that failed or timed out): wait for it.
            await asyncio.shield(txn.wait_for_transaction_end())
        elif state is TransactionState.FATAL_ERROR:
            waiter = txn._transaction_waiter
            cause = waiter.exception() if waiter is not None and waiter.done() else None
            if not isinstance(cause, ProducerFenced):
                raise KafkaTransactionError(
                    f"the producer is in a fatal state ({type(cause).__name__}: {cause})",
                    self.tid,
                )
            # Fenced: the instance that fenced this one aborted its open transaction.

    def _close_and_complete(self) -> None:
        self.closing = True
        self.cancel_timer(_COMMIT)
        self._await(self._close(), lambda _: self._finish(None))

    async def _close(self) -> None:
        if self.producer is not None:
            await _close_quietly(self.producer, self.settings.close_timeout)
        self.closed = True

    def _finish(self, error: BaseException | None) -> None:
        if not self.promise.done():
            if error is None:
                self.promise.set_result(Done)
            else:
                self.promise.set_exception(error)
        if error is None:
            self.complete_stage()
        else:
            self.fail_stage(error)

    def post_stop(self) -> None:
        for source in self.sources:
            source.abandoned = True  # stopped: nothing more of its records commits here
        if self.producer is not None and not self.closed:
            self.materializer.spawn(
                _close_quietly(self.producer, self.settings.close_timeout),
                cancel_on_shutdown=False,
            )
        if not self.promise.done():
            self.promise.set_exception(
                KafkaTransactionError(f"[{self.name}] stopped before completing", self.tid)
            )


def _with_abort_failure(
    error: BaseException | None, abort_failure: BaseException | None
) -> BaseException | None:
    """The stage's error, told that the transaction could not be aborted, if so."""
    if abort_failure is None:
        return error
    if error is None:
        return abort_failure
    error.add_note(str(abort_failure))
    return error


def _result(envelope: Any, metadata: list[RecordMetadata]) -> Any:
    if isinstance(envelope, Message):
        return Result(metadata[0], envelope)
    if isinstance(envelope, MultiMessage):
        return MultiResult(
            tuple(MultiResultPart(m, r) for m, r in zip(metadata, envelope.records, strict=True)),
            envelope.pass_through,
        )
    return PassThroughResult(envelope.pass_through)


class Transactional:
    """Factories of the transactional stages (Alpakka's ``Transactional``)."""

    __slots__ = ()

    @staticmethod
    def source(
        settings: ConsumerSettings, subscription: Subscription
    ) -> Source[TransactionalMessage[Any], Control]:
        """Records with their :class:`PartitionOffset`, read with
        ``isolation_level="read_committed"`` and no auto-commit.

        Pass each element's ``partition_offset`` through to :meth:`sink` /
        :meth:`flow`, which commit it in their transactions.

        ``Control.shutdown()`` closes the consumer once every record emitted was
        committed (up to ``ConsumerSettings.commit_timeout``; see the module docstring).

        Emits when: a fetched record is available and downstream pulled.
        Backpressures when: downstream does not pull.
        Completes when: ``Control.stop()``/``shutdown()`` was called.
        Fails when: as ``Consumer.committable_source``, and when a revocation's wait for
        the records emitted from the revoked partitions times out (``commit_timeout``).
        Cancels when: never; downstream cancellation shuts the consumer down.

        Raises:
            ValueError: ``settings`` has no ``group_id`` (the offsets are committed to it).
        """
        name = "Transactional.source"
        source: Source[TransactionalMessage[Any], Control] = _committable_source(
            settings, subscription, name, _transactional
        )
        return source.named(name)

    @staticmethod
    def source_with_offset_context(
        settings: ConsumerSettings, subscription: Subscription
    ) -> SourceWithContext[ConsumerRecord[Any, Any], PartitionOffset, Control]:
        """:meth:`source` as a ``SourceWithContext`` (Alpakka's
        ``Transactional.sourceWithOffsetContext``): each record is the element, its
        :class:`PartitionOffset` the context. Transform the records with the
        context-keeping operators, then produce with :meth:`sink_with_offset_context` /
        :meth:`flow_with_offset_context`, which commit the contexts in their
        transactions.

        The same source as :meth:`source`: ``isolation_level="read_committed"``, no
        auto-commit, a consumer group required, and a revocation waits (up to
        ``ConsumerSettings.commit_timeout``) until every record emitted from the
        revoked partitions was committed. An element dropped on the way (``filter``)
        takes its context with it: the last ones of a partition then hold a revocation
        until that timeout; map them to ``ProducerMessage.pass_through(None)`` instead
        (the context is committed, nothing produced). ``Control.shutdown()`` likewise
        closes the consumer once every context emitted was committed (up to that timeout).

        Emits when: a fetched record is available and downstream pulled.
        Backpressures when: downstream does not pull.
        Completes when: ``Control.stop()``/``shutdown()`` was called.
        Fails when: as ``Consumer.committable_source``, and when a revocation's wait for
        the contexts of the revoked partitions times out (``commit_timeout``).
        Cancels when: never; downstream cancellation shuts the consumer down.

        Raises:
            ValueError: ``settings`` has no ``group_id`` (the offsets are committed to it).
        """
        name = "Transactional.source_with_offset_context"
        pairs: Source[tuple[ConsumerRecord[Any, Any], PartitionOffset], Control] = (
            _committable_source(settings, subscription, name, _record_and_offset)
        )
        return SourceWithContext(pairs.named(name))

    @staticmethod
    def flow(
        settings: ProducerSettings,
        transactional_id: str,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
    ) -> Flow[Any, Any, Any]:
        """Produces envelopes (pass-through: the ``PartitionOffset`` of a
        :class:`TransactionalMessage`, or ``None``) in transactions that also commit
        the consumed offsets; emits each envelope's result after its transaction
        committed. Materialized value: ``NotUsed``.

        ``transactional_id`` must be unique per running instance and stable across
        restarts of the same instance (a restart fences the previous one).

        Emits when: the transaction holding the envelope committed and downstream pulled.
        Backpressures when: a send or commit is in progress, or results wait for demand.
        Completes when: upstream completed, the last transaction committed and the
        producer closed.
        Fails when: upstream fails, a send, serialization or commit fails, a commit
        does not finish within ``ProducerSettings.max_block``, the producer was
        fenced, or the transaction holds records of a partition whose revocation (or
        whose source's shutdown) gave up waiting for them; the open transaction is
        aborted first.
        Cancels when: downstream cancels (the open transaction is aborted).
        """
        return Flow.from_graph(
            TransactionalProducerStage(
                settings,
                transactional_id,
                sink=False,
                commit_interval=commit_interval,
                name="Transactional.flow",
            )
        )

    @staticmethod
    def flow_with_offset_context(
        settings: ProducerSettings,
        transactional_id: str,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
    ) -> FlowWithContext[
        Envelope[Any] | ProducerRecord[Any, Any],
        PartitionOffset,
        Results[PartitionOffset],
        PartitionOffset,
        Any,
    ]:
        """:meth:`flow` carrying the offsets as contexts (Alpakka's
        ``Transactional.flowWithOffsetContext``): each envelope comes in with the
        :class:`PartitionOffset` of its record (a context of
        :meth:`source_with_offset_context`), which is committed in the envelope's
        transaction; each result goes out with the same context once that transaction
        committed. Materialized value: ``NotUsed``.

        The context is the pass-through (Alpakka: "the pass-through is the
        partitionOffset"): the envelope's own pass-through is replaced by it, so each
        result's ``pass_through`` is the context too. Envelopes are
        ``ProducerMessage.single`` / ``multi`` / ``pass_through`` (produce nothing,
        commit the context); a bare :class:`ProducerRecord` counts as ``single``.
        ``transactional_id`` as for :meth:`flow`. One stage: the one of :meth:`flow`.

        Emits when: the transaction holding the envelope committed and downstream pulled.
        Backpressures when: a send or commit is in progress, or results wait for demand.
        Completes when: upstream completed, the last transaction committed and the
        producer closed.
        Fails when: as :meth:`flow`, and when an element is not an ``(envelope,
        PartitionOffset)`` pair; the open transaction is aborted first.
        Cancels when: downstream cancels (the open transaction is aborted).
        """
        flow: Flow[Any, Any, Any] = Flow.from_graph(
            TransactionalProducerStage(
                settings,
                transactional_id,
                sink=False,
                commit_interval=commit_interval,
                name="Transactional.flow_with_offset_context",
                with_context=True,
            )
        )
        return FlowWithContext(flow)

    @staticmethod
    def sink(
        settings: ProducerSettings,
        transactional_id: str,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
    ) -> Sink[Any, Awaitable[Any]]:
        """As :meth:`flow`, as a sink. Materialized value: a future, ``Done`` once
        upstream completed, the last transaction committed and the producer closed;
        the stream's error otherwise (the open transaction aborted).

        Backpressures when: a send or commit is in progress.
        Completes when: upstream completed and the last transaction committed.
        Fails when: as :meth:`flow`.
        Cancels when: it fails.
        """
        return Sink.from_graph(
            TransactionalProducerStage(
                settings,
                transactional_id,
                sink=True,
                commit_interval=commit_interval,
                name="Transactional.sink",
            )
        )

    @staticmethod
    def sink_with_offset_context(
        settings: ProducerSettings,
        transactional_id: str,
        commit_interval: float = DEFAULT_COMMIT_INTERVAL,
    ) -> Sink[tuple[Envelope[Any] | ProducerRecord[Any, Any], PartitionOffset], Awaitable[Any]]:
        """:meth:`flow_with_offset_context` as a sink of ``(envelope, partition_offset)``
        pairs (Alpakka's ``Transactional.sinkWithOffsetContext``): the elements of a
        ``SourceWithContext`` of :meth:`source_with_offset_context`, each envelope's
        context committed in its transaction (the envelope's own pass-through is
        replaced by it). Materialized value: a future, ``Done`` once upstream
        completed, the last transaction committed and the producer closed; the
        stream's error otherwise (the open transaction aborted).

        Use it as ``source_with_context.to_mat(Transactional.sink_with_offset_context(
        producer_settings, transactional_id), Keep.both)``.

        Backpressures when: a send or commit is in progress.
        Completes when: upstream completed and the last transaction committed.
        Fails when: as :meth:`flow_with_offset_context`.
        Cancels when: it fails.
        """
        return Sink.from_graph(
            TransactionalProducerStage(
                settings,
                transactional_id,
                sink=True,
                commit_interval=commit_interval,
                name="Transactional.sink_with_offset_context",
                with_context=True,
            )
        )
