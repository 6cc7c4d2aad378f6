"""The stage behind every consumer source (``Consumer.plain_source``, ``committable_source``,
``at_most_once_source``, ``plain_partitioned_source``, ``committable_partitioned_source``; the
factories are in :mod:`.consumers`, the committer in :mod:`.consumer_commits`, the
connection and topic watch in :mod:`.consumer_watch`).

One stage, :class:`ConsumerStage`, does all the work. It owns one
``AIOKafkaConsumer`` and one *poller*, a task the stage owns
(``materializer.spawn``) that is the only caller of ``start``, ``getmany``,
``pause``/``resume`` and ``stop``:

- Start: the poller starts the consumer; no broker answering within
  ``connect_timeout`` fails the stream with :class:`ConsumerConnectionError`
  (never a hang). Then it subscribes (group, with a rebalance listener) or
  assigns partitions (manual subscriptions).
- Back pressure: records fetched and not yet emitted (the stage's buffer, plus
  batches handed over and not yet received) never exceed
  ``max_buffered_records``: each ``getmany`` asks for at most the free room.
  When there is no room, every assigned partition is *held back*: the poller
  takes none of its records and only polls with zero timeout (taking nothing),
  so heartbeats, rebalances and commits go on and the consumer stays in its
  group. Held back is not paused: aiokafka keeps what it already fetched for a
  partition (at most one fetch response per partition) and fetches it again
  only once that was all taken, so a slow downstream costs one fetch of memory
  per partition and no re-fetching (pausing would make aiokafka drop its
  fetched records, and each resume fetch them again). A partitioned source also
  holds back a partition whose substream has records waiting and no demand, so
  one slow substream only holds back its own partition. Partitions are paused
  only once nothing more will be emitted (after ``stop()``). The buffer is topped
  up in chunks: the idle poller is woken when a quarter of it is free (or it ran
  dry), not for every record taken.
- Missing topics: before subscribing, and then every ``MISSING_WARNING_INTERVAL``
  (30 s), the poller's watch (:mod:`.consumer_watch`) reads the cluster metadata and logs a WARNING
  naming each subscribed topic, assigned partition or pattern match that does not
  exist (aiokafka would wait for it without a word), and an INFO once it is there.
- Outages: the watcher also looks at the client's connections every 0.25 s and
  logs, on ``connectors.kafka``, when the connection to Kafka is lost (and since
  when), still lost (every ``OUTAGE_REPORT_INTERVAL``) and restored (after how
  long); aiokafka's own repeated errors are summarised by the filter of
  :mod:`connectors.kafka._logging`.
- Hand-over: fetched batches reach the stage through an async callback, tagged
  with the assignment generation; a batch fetched before a rebalance is dropped
  (the partitions are fetched again from the committed offsets).
- Deserialization happens in the stage, record by record, as records are
  emitted: a failure fails the stream with :class:`DeserializationError`
  naming topic, partition and offset, unless the source's supervision strategy
  says resume/restart: then the record is skipped and counted
  (``metrics()["records_skipped"]``).
- Rebalance: on revocation the buffered records of the revoked partitions are
  dropped (their substreams complete) before the revocation goes on, so none is
  emitted once the partitions are handed over; the user's listener
  (``subscription.rebalance_listener``) is called; the committer stages holding
  offsets of the revoked partitions (a batch not full yet, ``max_interval`` not
  passed) commit them at once; and those commits and the commits in flight are
  awaited before aiokafka hands the partitions over, so their next owner (another
  member, or this one: aiokafka revokes every partition and positions restart from
  the committed offsets) does not read those records again. These waits share one
  deadline, ``commit_timeout`` from the start of the revocation (the listener's time
  included): a wait that would pass it is cut short, and the ones after it skipped.
  On assignment the listener is called and partitioned sources emit a new
  ``(TopicPartition, Source)``. With a listener, no record is taken from the
  revocation until the listener returned from the assignment (Kafka's consumer
  calls it inside ``poll``): state it prepares for the new partitions is there
  before their first record.
- Commits: the stage is the :class:`~connectors.kafka.messages.KafkaCommitterRef`
  of the offsets it emits; commits of partitions no longer assigned are
  filtered out (as Alpakka does).
- Control: ``stop()`` completes the stream (the consumer stays in the group and
  serves commits: the stage keeps running with no open port);
  ``shutdown()`` also closes the consumer after waiting up to ``stop_timeout``
  for commits in flight. Downstream cancellation and failures shut down the
  same way; ``is_shutdown`` completes when the consumer is closed. A stage built
  with ``drain`` (``Transactional.source``) awaits it before it closes the
  consumer, which stays in its group meanwhile (Alpakka's ``TransactionalSource``
  drains its in-flight records before it stops its consumer); not when the stream
  failed (the source failed, or downstream cancelled with a failure): nothing
  downstream commits then.
- Tansu quirk: a group's first member gets generation 0, for which aiokafka
  sends no LeaveGroup on close; the stage sends it itself
  (:mod:`connectors.kafka._compat_group`) so a successor need not wait out the
  session timeout.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import inspect
import logging
from collections import deque
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaConnectionError
from aiokafka.structs import ConsumerRecord, TopicPartition

from reactive import Done, Supervision
from reactive.lowlevel import Batch as _Batch
from reactive.stage import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    OutHandler,
    Outlet,
    SourceShape,
    SubscriptionWithCancelError,
    SubSourceOutlet,
)

from .._closing import cancel_releasing, close_consumer
from .._compat_group import leave_generation_zero
from .._logging import ensure_installed as _ensure_client_log_filter
from ..errors import (
    ConsumerConnectionError,
    DeserializationError,
    consumer_failure,
)
from ..messages import CommittableMessage, CommittableOffset
from ..subscriptions import (
    AssignmentOffsetsSubscription,
    AssignmentSubscription,
    AutoSubscription,
    Subscription,
    TopicPatternSubscription,
    TopicsSubscription,
)
from .consumer_commits import ConsumerCommitter
from .consumer_watch import ConnectionWatch
from .control import Control

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable

    from ..settings import ConsumerSettings

__all__ = ["ConsumerStage"]

log = logging.getLogger("connectors.kafka")

#: Seconds the poller waits between zero-timeout polls while every partition is held back.
_IDLE_WAIT = 0.2
#: A partition never assigned: ``getmany(_NO_PARTITION)`` polls without taking any record
#: (aiokafka keeps what it fetched for the partitions not named).
_NO_PARTITION = TopicPartition("", -1)

_RUNNING, _STOPPED, _CLOSING, _CLOSED = "running", "stopped", "closing", "closed"
_SKIP: Any = object()


class _Closing(Exception):
    """Internal: the poller was asked to close while it waited."""


class _Listener(ConsumerRebalanceListener):
    """aiokafka's rebalance listener, forwarding to the stage."""

    def __init__(self, logic: _ConsumerLogic) -> None:
        self._logic = logic

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self._logic._revoked(frozenset(revoked))

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        await self._logic._assigned(frozenset(assigned))


#: The loop time by which the revocation being handled must be done (set while the
#: consumer's revocation callback runs, for the listeners it calls): a listener that
#: waits itself (the transactional source's drain) bounds its wait by what is left.
REVOCATION_DEADLINE: ContextVar[float | None] = ContextVar("REVOCATION_DEADLINE", default=None)


async def _call_user(
    name: str, what: str, fn: Callable[[Any], Any] | None, tps: frozenset[Any]
) -> BaseException | None:
    """Call the user's rebalance listener method ``what``; what it raised, noted."""
    if fn is None:
        return None
    try:
        result = fn(tps)
        if inspect.isawaitable(result):
            await result
    except Exception as exc:
        exc.add_note(f"raised by the rebalance listener's {what} (stage [{name}])")
        return exc
    return None


# -- the stage --------------------------------------------------------------------------


class ConsumerStage(GraphStageWithMaterializedValue[SourceShape[Any], Control]):
    """The source behind every ``Consumer`` factory.

    ``committable``: emit ``CommittableMessage`` instead of ``ConsumerRecord``;
    ``partitioned``: emit ``(TopicPartition, Source)`` per assigned partition;
    ``drain``: awaited (in the poller task) before the consumer is closed, while it is
    still in its group, unless the stream failed; it must bound its own wait.
    """

    def __init__(
        self,
        settings: ConsumerSettings,
        subscription: Subscription,
        *,
        committable: bool,
        partitioned: bool,
        name: str,
        drain: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.subscription = subscription
        self.committable = committable
        self.partitioned = partitioned
        self.name = name
        self.drain = drain
        self.shape = SourceShape(Outlet(f"{name}.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Control]:
        logic = _PartitionedLogic(self) if self.partitioned else _SingleLogic(self)
        return logic, logic.control

    def __repr__(self) -> str:
        return f"ConsumerStage({self.name})"


class _ConsumerLogic(GraphStageLogic, OutHandler):
    # Its fields in slots: past the 29 names a logic keeps in CPython's shared-key layout
    # (see ``reactive._stage.logic._LogicFields``).
    __slots__ = (
        "_assigned_tps",
        "_buffered",
        "_cb_assigned",
        "_cb_batch",
        "_cb_closed",
        "_cb_command",
        "_cb_failed",
        "_cb_revoked",
        "_close_fut",
        "_committable",
        "_committer",
        "_consumer",
        "_cout",
        "_drain",
        "_dropped",
        "_emitted",
        "_event_loop",
        "_fetched",
        "_generation",
        "_group_id",
        "_incoming",
        "_max",
        "_next_offset",
        "_no_deserializers",
        "_phase",
        "_poller",
        "_polls",
        "_rebalancing",
        "_refill",
        "_settings",
        "_shutdown_fut",
        "_skipped",
        "_subscription",
        "_wake_fut",
        "_watch",
        "control",
        "out",
    )

    """What every consumer source shares: the poller, counters, control, the commit ref.

    Stage side: the async callbacks from the poller (``_on_*``), control and the element
    built for a record (``_message``, ``_decode``). Poller side: the methods under
    "poller" run in the poller task (and the rebalance listener in aiokafka's). Where
    records wait and how they leave is the subclasses' part: one buffer and the outlet
    (:class:`_SingleLogic`), or a buffer and a substream per partition
    (:class:`_PartitionedLogic`).
    """

    def __init__(self, stage: ConsumerStage) -> None:
        super().__init__(stage.shape)
        self.out: Outlet[Any] = stage.shape.out
        self.set_handler(self.out, self)
        self._settings = stage.settings
        self._subscription = stage.subscription
        self._drain = stage.drain
        self._committable = stage.committable
        self._group_id = stage.settings.group_id
        self._max = stage.settings.max_buffered_records
        self._refill = max(1, self._max // 4)  # see _wake_for_room
        self._no_deserializers = (
            stage.settings.key_deserializer is None and stage.settings.value_deserializer is None
        )
        loop = asyncio.get_running_loop()
        self._event_loop = loop
        self._phase = _RUNNING
        # stage state
        self._assigned_tps: set[TopicPartition] = set()
        self._buffered = 0
        self._incoming = 0  # handed over by the poller, not yet received
        self._next_offset: dict[TopicPartition, int] = {}
        self._fetched = 0
        self._polls = 0  # getmany calls (read by metrics())
        self._emitted = 0
        self._skipped = 0
        self._dropped = 0
        # shared with the poller (one thread: plain attributes suffice)
        self._generation = 0
        # From a revocation until the user's rebalance listener returned from the
        # assignment that follows, no record is taken (see _assigned).
        self._rebalancing = False
        self._consumer: AIOKafkaConsumer | None = None
        self._poller: asyncio.Task[None] | None = None
        self._close_fut: asyncio.Future[None] = loop.create_future()
        self._wake_fut: asyncio.Future[None] | None = None
        self._shutdown_fut: asyncio.Future[Any] = loop.create_future()
        self._watch: ConnectionWatch | None = None  # made by the poller (consumer_watch.py)
        self._committer = ConsumerCommitter(
            stage.name, stage.settings, isinstance(stage.subscription, AutoSubscription)
        )
        self._cb_batch = self.get_async_callback(self._on_batch)
        self._cb_failed = self.get_async_callback(self._on_failed)
        self._cb_closed = self.get_async_callback(self._on_closed)
        self._cb_revoked = self.get_async_callback(self._on_revoked)
        self._cb_assigned = self.get_async_callback(self._on_assigned)
        self._cb_command = self.get_async_callback(self._on_command)
        self.control = Control(self._cb_command.invoke, self._metrics, self._shutdown_fut)

    # -- lifecycle ------------------------------------------------------------------------
    def pre_start(self) -> None:
        # The stage outlives its outlet: after stop() the consumer still serves commits.
        self.set_keep_going(True)
        self._cout = self._conns[self.out]
        self._poller = self.materializer.spawn(self._run())

    def post_stop(self) -> None:
        self._request_close()
        if self._poller is None and not self._shutdown_fut.done():
            self._committer._closed = True
            self._shutdown_fut.set_result(Done)

    def on_downstream_finish(self, cause: BaseException) -> None:
        # Downstream is gone: stop emitting and close the consumer (the stage stops when
        # it is closed, so no consumer task outlives the stream).
        if not isinstance(cause, SubscriptionWithCancelError):
            self._drain = None  # the stream failed: nothing downstream commits any more
        self._stop_emitting()
        self._request_close()

    # -- where records wait (the subclasses) ----------------------------------------------
    @abc.abstractmethod
    def _store(self, tp: TopicPartition, recs: list[Any]) -> bool:
        """Keep the fetched records ``recs`` of ``tp`` for emission; False if ``tp`` has
        no place for them (they are dropped and counted)."""

    @abc.abstractmethod
    def _emit_stored(self, tps: Iterable[TopicPartition]) -> None:
        """Emit what demand allows after records of ``tps`` were stored."""

    @abc.abstractmethod
    def _revoke(self, tps: frozenset[TopicPartition]) -> None:
        """Drop what is stored for the revoked ``tps`` (and end their substreams)."""

    @abc.abstractmethod
    def _drop_buffers(self) -> None:
        """Drop every stored record (counted as dropped)."""

    @abc.abstractmethod
    def _end_substreams(self, exc: BaseException | None) -> None:
        """Complete (``exc`` None) or fail every open substream; none is opened after."""

    @abc.abstractmethod
    def _held_partitions(self, assignment: set[TopicPartition]) -> set[TopicPartition]:
        """The partitions held back while the stage runs with room (read by the poller)."""

    def _assigned_new(self, tps: Iterable[TopicPartition]) -> None:
        """``tps`` were newly assigned while the stage emits (partitioned: new pairs)."""

    # -- emission -------------------------------------------------------------------------
    def _message(self, rec: ConsumerRecord[Any, Any]) -> Any:
        """The element of the (deserialized) ``rec``, counted as emitted: the record, or
        its ``CommittableMessage``. The one place an element is built, but for the batch
        loop of ``_SingleLogic._push_batch``, which inlines it (a call per record there
        is measurable)."""
        self._emitted += 1
        topic = rec.topic
        partition = rec.partition
        offset = rec.offset
        # A plain (topic, partition) tuple as the key: it equals and hashes as the
        # TopicPartition that metrics() looks it up with.
        self._next_offset[(topic, partition)] = offset + 1
        if not self._committable:
            return rec
        return CommittableMessage(
            rec,
            CommittableOffset(self._group_id or "", topic, partition, offset, self._committer),
        )

    def _element(self, rec: ConsumerRecord[Any, Any]) -> Any:
        """The element for ``rec``; ``_SKIP`` (resumed), or ``None`` after failing."""
        elem = self._decode(rec)
        if type(elem) is DeserializationError:
            self._fail(elem)
            return None
        return elem

    def _decode(self, rec: ConsumerRecord[Any, Any]) -> Any:
        """The element for ``rec``, ``_SKIP``, or the ``DeserializationError`` to fail
        with (supervision decided stop); counts emitted and skipped records."""
        if self._no_deserializers:
            return self._message(rec)
        settings = self._settings
        for field, fn in (
            ("key", settings.key_deserializer),
            ("value", settings.value_deserializer),
        ):
            if fn is None:
                continue
            try:
                decoded = fn(getattr(rec, field))
            except Exception as exc:
                err = DeserializationError(
                    f"[{self.stage_name}] cannot deserialize the {field} of the record at "
                    f"topic {rec.topic!r} partition {rec.partition} offset {rec.offset}: "
                    f"{type(exc).__name__}: {exc}",
                    rec.topic,
                    rec.partition,
                    rec.offset,
                    field,
                )
                err.__cause__ = exc
                if self.decide(err) is Supervision.stop:
                    return err
                self._skipped += 1
                self._next_offset[(rec.topic, rec.partition)] = rec.offset + 1
                log.warning("%s (skipped by the supervision strategy)", err)
                return _SKIP
            setattr(rec, field, decoded)
        return self._message(rec)

    def _decode_into(self, buffer: deque[Any], n: int, batch: list[Any]) -> BaseException | None:
        """Take records from ``buffer`` into ``batch`` (up to ``n`` elements), decoded as
        one by one (a record skipped under resume/restart is counted and dropped); the
        ``DeserializationError`` to fail with after pushing ``batch``, or None."""
        while buffer and len(batch) < n:
            rec = buffer.popleft()
            self._buffered -= 1
            elem = self._decode(rec)
            if elem is _SKIP:
                continue
            if type(elem) is DeserializationError:
                return elem
            batch.append(elem)
        return None

    # -- async callbacks from the poller --------------------------------------------------
    def _on_batch(self, item: tuple[int, dict[TopicPartition, list[Any]], int]) -> None:
        generation, records, n = item
        self._incoming -= n
        if generation != self._generation or self._phase != _RUNNING:
            self._dropped += n
            return
        for tp, recs in records.items():
            if tp not in self._assigned_tps or not self._store(tp, recs):
                self._dropped += len(recs)
                continue
            self._buffered += len(recs)
            self._fetched += len(recs)
        self._emit_stored(records)

    def _on_assigned(self, tps: frozenset[TopicPartition]) -> None:
        new = tps - self._assigned_tps
        self._assigned_tps |= tps
        if self._phase == _RUNNING and not self.is_closed(self.out):
            self._assigned_new(sorted(new))
        self._wake()

    def _on_revoked(self, tps: frozenset[TopicPartition]) -> None:
        self._assigned_tps -= tps
        self._revoke(tps)

    def _on_failed(self, exc: BaseException) -> None:
        self._fail(exc)

    def _on_closed(self, _: Any) -> None:
        self._phase = _CLOSED
        self.complete_stage()

    def _on_command(self, item: tuple[str, asyncio.Future[Any]]) -> None:
        name, fut = item
        self._stop_emitting()
        if name == "shutdown":
            self._request_close()
        if not fut.done():
            fut.set_result(Done)

    # -- state changes --------------------------------------------------------------------
    def _stop_emitting(self) -> None:
        if self._phase != _RUNNING:
            return
        self._phase = _STOPPED
        self._drop_buffers()
        self._end_substreams(None)
        self.complete(self.out)

    def _fail(self, exc: BaseException) -> None:
        self._drain = None  # the failure reaches the stages that would have committed
        if self._phase == _RUNNING:
            self._phase = _STOPPED
        self._drop_buffers()
        self._end_substreams(exc)
        self.fail(self.out, exc)
        self._request_close()

    def _request_close(self) -> None:
        if self._phase in (_RUNNING, _STOPPED):
            self._phase = _CLOSING
        if not self._close_fut.done():
            self._close_fut.set_result(None)

    def _wake(self) -> None:
        w = self._wake_fut
        if w is not None and not w.done():
            w.set_result(None)

    def _wake_for_room(self) -> None:
        """Wake the idle poller once records were taken, if the room is worth a refill.

        Worth it: at least a quarter of ``max_buffered_records`` free, or nothing left
        buffered. Smaller gaps are topped up when the poller's idle wait (``_IDLE_WAIT``)
        ends. Waking it for every record taken cost a whole poll cycle per record under a
        slow downstream.
        """
        w = self._wake_fut
        if w is not None and not w.done() and (self._room() >= self._refill or not self._buffered):
            w.set_result(None)

    def _room(self) -> int:
        return self._max - self._buffered - self._incoming

    def _fetchable(self, consumer: AIOKafkaConsumer) -> bool:
        """Whether the records of some assigned partition may be taken now (read by the
        poller).

        Checked again right before idling: a change that came while the poller was not
        idle (an assignment, room in the buffer) found no wake-up future to complete, and
        the poller would otherwise sleep ``_IDLE_WAIT`` with records waiting.
        """
        assignment = consumer.assignment()
        return self._room() > 0 and len(self._held_back(assignment)) < len(assignment)

    def _held_back(self, assignment: set[TopicPartition]) -> set[TopicPartition]:
        """The partitions whose records must not be taken now (read by the poller)."""
        if self._phase != _RUNNING or self._room() <= 0 or self._rebalancing:
            return set(assignment)
        return self._held_partitions(assignment)

    def _buffered_of(self, tp: TopicPartition) -> Iterable[Any]:
        """The records of ``tp`` this stage holds, not emitted yet (subclasses)."""
        return ()

    def _first_waiting(self, consumer: Any, tp: TopicPartition) -> int | None:
        """The offset of the next record of ``tp`` to emit when none was emitted yet: the
        first one this stage holds, else the client's position (the next it returns)."""
        first = min((r.offset for r in self._buffered_of(tp)), default=None)
        if first is not None:
            return int(first)
        with contextlib.suppress(Exception):  # (aiokafka's own state: read, never written)
            state = consumer._subscription.subscription.assignment.state_value(tp)
            if state is not None and state.has_valid_position:
                return int(state.position)
        return None

    def _metrics(self) -> dict[str, Any]:
        consumer = self._consumer
        lag: dict[TopicPartition, int] = {}
        paused = 0
        if consumer is not None and self._phase != _CLOSED:
            with contextlib.suppress(Exception):
                assignment = consumer.assignment()
                paused = len(consumer.paused() | self._held_back(assignment))
            for tp in self._assigned_tps:
                try:
                    hw = consumer.highwater(tp)
                except Exception:
                    continue
                if hw is None:
                    continue  # not fetched yet: no high watermark to measure against
                nxt = self._next_offset.get(tp)
                if nxt is None:  # nothing emitted from it yet: its first record waiting
                    nxt = self._first_waiting(consumer, tp)
                if nxt is not None:
                    lag[tp] = max(0, hw - nxt)
        return {
            "buffered_records": self._buffered,
            "max_buffered_records": self._max,
            "assigned_partitions": len(self._assigned_tps),
            "paused_partitions": paused,
            "records_fetched": self._fetched,
            "polls": self._polls,
            "records_emitted": self._emitted,
            "records_skipped": self._skipped,
            "records_dropped": self._dropped,
            "commits": self._committer.commits,
            "commit_failures": self._committer.commit_failures,
            "lag": lag,
        }

    def observe_gauges(self) -> dict[str, Any]:
        """The figures ``reactive.observe`` snapshots show for this stage: lag per
        ``topic-partition``, records fetched and not yet emitted, commits in flight."""
        lag = self._metrics()["lag"]
        return {
            "kafka_consumer_lag": {f"{tp.topic}-{tp.partition}": n for tp, n in lag.items()},
            "kafka_records_buffered": self._buffered,
            "kafka_commits_in_flight": len(self._committer._inflight),
        }

    # -- poller (runs in the task the stage spawned) --------------------------------------
    async def _run(self) -> None:
        consumer: AIOKafkaConsumer | None = None
        try:
            _ensure_client_log_filter()
            consumer = AIOKafkaConsumer(**self._settings.to_aiokafka_kwargs())
            self._consumer = consumer
            watch = self._watch = ConnectionWatch(
                self.stage_name, self._settings, self._subscription, self._close_fut
            )
            await self._start(consumer)
            self._committer._consumer = consumer
            watcher = asyncio.ensure_future(watch.run(consumer))
            try:
                await self._poll(consumer)
            finally:
                watcher.cancel()
                await asyncio.wait({watcher})
        except _Closing:
            pass
        except Exception as exc:
            # With its context (a missing codec names topic/partition/offset), see errors.py.
            self._cb_failed.invoke(consumer_failure(self.stage_name, exc))
        finally:
            try:
                if consumer is not None:
                    await self._close(consumer)
            finally:
                self._committer._closed = True
                if not self._shutdown_fut.done():
                    self._shutdown_fut.set_result(Done)
                self._cb_closed.invoke(None)

    async def _race(self, aw: Awaitable[Any], timeout: float | None = None) -> Any:
        """Await ``aw`` unless a close is requested (``_Closing``) or ``timeout`` passes."""
        task = asyncio.ensure_future(aw)
        finished = False
        try:
            await asyncio.wait(
                {task, self._close_fut}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
            finished = task.done()
        finally:
            if not task.done():
                await cancel_releasing(task, getattr(self._consumer, "_client", None))
        if finished:
            return task.result()
        if self._close_fut.done():
            raise _Closing
        raise TimeoutError

    async def _start(self, consumer: AIOKafkaConsumer) -> None:
        settings = self._settings
        servers = settings.bootstrap_servers
        try:
            await self._race(consumer.start(), settings.connect_timeout)
        except TimeoutError as exc:
            raise ConsumerConnectionError(
                f"[{self.stage_name}] no Kafka broker answered at {servers} within "
                f"connect_timeout={settings.connect_timeout} s; check bootstrap_servers and "
                "that the broker is running"
            ) from exc
        except (KafkaConnectionError, OSError) as exc:
            raise ConsumerConnectionError(
                f"[{self.stage_name}] cannot connect to Kafka at {servers}: {exc}; check "
                "bootstrap_servers and that the broker is running"
            ) from exc
        if self._group_id is not None and settings.group_instance_id is None:
            leave_generation_zero(consumer)
        try:
            assert self._watch is not None
            await self._race(self._watch.check_missing(consumer))
        except (_Closing, asyncio.CancelledError):
            raise
        except Exception:
            log.warning("[%s] checking the subscription failed", self.stage_name, exc_info=True)
        sub = self._subscription
        if isinstance(sub, TopicsSubscription):
            consumer.subscribe(topics=list(sub.topics), listener=_Listener(self))
        elif isinstance(sub, TopicPatternSubscription):
            consumer.subscribe(pattern=sub.pattern, listener=_Listener(self))
        elif isinstance(sub, AssignmentSubscription | AssignmentOffsetsSubscription):
            if self._group_id is not None and sub.partitions:
                await self._find_coordinator(consumer, next(iter(sub.partitions)))
            consumer.assign(list(sub.partitions))
            if isinstance(sub, AssignmentOffsetsSubscription):
                for tp, offset in sub.offsets.items():
                    consumer.seek(tp, offset)
            self._cb_assigned.invoke(frozenset(sub.partitions))
        else:  # pragma: no cover - the factories check the type
            raise TypeError(f"unsupported subscription {sub!r}")

    async def _find_coordinator(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        """Discover the group coordinator before a manual assignment (start-up time).

        On ``assign`` aiokafka fetches the committed offsets at once; when the group
        coordinator is not known yet that fetch fails and is retried only after
        ``retry_backoff_ms`` (100 ms by default), delaying the first records.
        ``committed()`` waits for the coordinator first. Failures are left to the
        normal path (which retries and reports them).
        """
        try:
            await self._race(consumer.committed(tp), self._settings.connect_timeout)
        except (_Closing, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.debug("[%s] looking up the group coordinator: %r", self.stage_name, exc)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        """Fetch while there is room; hold partitions back (never pause them) otherwise.

        Back pressure is applied by not *taking* a partition's records from aiokafka,
        rather than by pausing it: aiokafka keeps at most one fetched response per
        partition and fetches a partition again only once its records were all taken,
        so a held-back partition costs one fetch of memory and no network. Pausing it
        would make aiokafka drop what it already fetched (``FetchResult.check_assignment``)
        and the resume would fetch the same bytes again: under a slow downstream that
        multiplied the bytes received per record by a hundred. Partitions are paused
        only once nothing more will be emitted (after ``stop()``).
        """
        poll_ms = int(self._settings.poll_timeout * 1000)
        while not self._close_fut.done():
            assignment = consumer.assignment()
            if self._phase != _RUNNING:
                paused = consumer.paused()
                to_pause = [tp for tp in assignment if tp not in paused]
                if to_pause:
                    consumer.pause(*to_pause)
            held = self._held_back(assignment)
            room = self._room()
            if room > 0 and len(held) < len(assignment):
                # getmany() with no partition takes from every assigned partition.
                wanted = [tp for tp in assignment if tp not in held] if held else []
                fetched = self._getmany(consumer, *wanted, timeout_ms=poll_ms, max_records=room)
                generation, records = await self._race(fetched)
                self._hand_over(generation, records)
            else:
                # Nothing to take (no room, held back, stopped, or not assigned yet): a
                # poll that takes nothing keeps the consumer alive in its group
                # (max_poll_interval_ms), then wait for room.
                self._polls += 1
                await self._race(consumer.getmany(_NO_PARTITION, timeout_ms=0))
                if not self._fetchable(consumer):
                    await self._idle()

    async def _getmany(
        self, consumer: AIOKafkaConsumer, *partitions: TopicPartition, **kwargs: Any
    ) -> tuple[int, dict[TopicPartition, list[Any]]]:
        """``getmany`` tagged with the generation current when it returned.

        A rebalance may happen while ``getmany`` waits: aiokafka then returns records of
        the *new* assignment (it checks them against the new positions) and advances the
        positions past them. Tagging them with the generation read before the call would
        drop them as stale, and they would never be fetched again (lost). The tag is read
        in the same step as ``getmany`` returns, before any other task can rebalance.
        """
        self._polls += 1
        records = await consumer.getmany(*partitions, **kwargs)
        if records and self._rebalancing:
            # Taken while the listener still prepares the new assignment: read them
            # again once it is done (see _assigned).
            for tp, recs in records.items():
                with contextlib.suppress(Exception):  # not assigned any more: stale
                    consumer.seek(tp, recs[0].offset)
            return self._generation, {}
        return self._generation, records

    def _hand_over(self, generation: int, records: dict[TopicPartition, list[Any]]) -> None:
        if not records:
            return
        n = sum(len(recs) for recs in records.values())
        self._incoming += n
        self._cb_batch.invoke((generation, records, n))

    async def _idle(self) -> None:
        wake: asyncio.Future[None] = self._event_loop.create_future()
        self._wake_fut = wake
        try:
            await asyncio.wait(
                {wake, self._close_fut}, timeout=_IDLE_WAIT, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._wake_fut = None

    async def _close(self, consumer: AIOKafkaConsumer) -> None:
        settings = self._settings
        if self._drain is not None:
            try:
                await self._drain()
            except Exception:
                log.warning(
                    "[%s] draining before the consumer closes failed",
                    self.stage_name,
                    exc_info=True,
                )
        try:
            await self._committer.flush(settings.stop_timeout)
        except Exception:
            log.warning(
                "[%s] waiting for the commits in flight failed", self.stage_name, exc_info=True
            )
        # From here a commit gets no answer (stop() closes the connections under it): the
        # commits in flight and those requested later fail at once (ConsumerClosedError),
        # as Alpakka's consumer actor answers commits while stopping, instead of each
        # waiting commit_timeout.
        self._committer.closing()
        # Not a bare wait_for(consumer.stop()): a stop cut short (timeout, cancellation,
        # aiokafka's own) leaves the client's tasks and connections open for good.
        await close_consumer(consumer, settings.close_timeout, self.stage_name)

    # -- rebalance listener (runs in aiokafka's coordinator task) -------------------------
    async def _revoked(self, tps: frozenset[TopicPartition]) -> None:
        # One deadline for the whole revocation, taken here: the waits below share
        # ``commit_timeout`` (the user's listener's time included), each getting what is
        # left; once it is spent the later waits are skipped, as when they time out. With
        # ``commit_timeout`` for each wait a stalled revocation held the group's rebalance,
        # and its other members, up to three times as long (past a session or rebalance
        # timeout). Alpakka's one blocking revocation wait, TransactionalSource's
        # ``waitForDraining``, is likewise one ``commitTimeout`` in all.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.commit_timeout
        self._generation += 1
        listener = self._subscription.rebalance_listener
        self._rebalancing = listener is not None
        # The buffered records of ``tps`` are dropped before this returns (Alpakka filters
        # them through an async callback, best effort): none is emitted once aiokafka
        # hands the partitions over.
        filtered = self._cb_revoked.invoke_with_feedback(tps)
        with contextlib.suppress(Exception):  # the stage stopped: nothing is emitted
            await asyncio.wait_for(asyncio.shield(filtered), deadline - loop.time())
        if listener is not None:
            token = REVOCATION_DEADLINE.set(deadline)
            try:
                failed = await _call_user(
                    self.stage_name, "on_partitions_revoked", listener.on_partitions_revoked, tps
                )
            finally:
                REVOCATION_DEADLINE.reset(token)
            if failed is not None:
                # As Kafka's poll() throwing what a listener threw: the source fails (no
                # record is taken meanwhile: ``_rebalancing`` stays set), once the commits
                # already requested landed.
                await self._committer.flush(deadline - loop.time())
                self._cb_failed.invoke(failed)
                return
        # The offsets of ``tps`` the committer stages hold (a batch not full yet) are
        # committed now (asked for even with no time left), and they and the commits
        # already requested land before the partitions move: their next owner does not
        # read those records again.
        await self._committer.revoking(tps, deadline - loop.time())
        await self._committer.flush(deadline - loop.time())

    async def _assigned(self, tps: frozenset[TopicPartition]) -> None:
        """As Kafka's consumer (which calls ``onPartitionsAssigned`` inside ``poll``), no
        record of the new assignment is taken before the user's listener returned: a
        listener that restores state for the new partitions (``Tables.co_partitioned``)
        has it ready before their first record. aiokafka may fetch meanwhile; the
        records stay with it (one fetch per partition: back pressure holds)."""
        self._committer.note_assigned(tps)
        self._cb_assigned.invoke(tps)
        listener = self._subscription.rebalance_listener
        if listener is not None:
            failed: BaseException | None = None
            try:
                failed = await _call_user(
                    self.stage_name, "on_partitions_assigned", listener.on_partitions_assigned, tps
                )
            finally:
                if failed is None:
                    self._rebalancing = False
                    self._wake()
            if failed is not None:
                # The new partitions' records are never taken: the source fails, as
                # Kafka's poll() throws what the listener threw.
                self._cb_failed.invoke(failed)


class _SingleLogic(_ConsumerLogic):
    """A plain source (``plain_source``, ``committable_source``, ...): one buffer for every
    assigned partition, emitted through the outlet; speaks the batch protocol."""

    def __init__(self, stage: ConsumerStage) -> None:
        super().__init__(stage)
        # Batch protocol (reactive/_impl/fused.py): a pull may ask for demand_n records,
        # answered with one _Batch (see _push_batch).
        self._batch_out = (self.out,)
        self._buffer: deque[ConsumerRecord[Any, Any]] = deque()

    def _buffered_of(self, tp: TopicPartition) -> Iterable[Any]:
        return (r for r in self._buffer if r.partition == tp.partition and r.topic == tp.topic)

    def on_pull(self) -> None:
        buffer = self._buffer
        if buffer:
            c = self._cout
            n = c.demand_n if c.batch else 1
            if n > 1 and len(buffer) > 1:
                self._push_batch(n)
                return  # _push_batch wakes the poller
            elif self._no_deserializers:
                # One record, nothing to deserialize: no supervision can apply.
                rec = buffer.popleft()
                self._buffered -= 1
                self.push(self.out, self._message(rec))
            else:
                self._deliver()
                return  # _deliver wakes the poller
        self._wake_for_room()

    def _push_batch(self, n: int) -> None:
        """Answer a batch pull (``demand_n`` = ``n`` > 1) with one ``_Batch`` of up to ``n``
        buffered records (batch protocol, see ``reactive/_impl/fused.py``).

        Records are taken, counted and deserialized exactly as one by one: a record that
        fails to deserialize fails the stream after the records before it were pushed
        (in this batch), or is skipped and counted under resume/restart.
        """
        buffer = self._buffer
        k = min(n, len(buffer))
        batch: list[Any] = _Batch()
        if self._no_deserializers:
            # The tight loop (performance): ``_message`` inlined, no per-record calls.
            pop = buffer.popleft
            append = batch.append
            next_offset = self._next_offset
            if self._committable:
                group = self._group_id or ""
                committer = self._committer
                for _ in range(k):
                    rec = pop()
                    topic = rec.topic
                    partition = rec.partition
                    offset = rec.offset
                    next_offset[(topic, partition)] = offset + 1
                    append(
                        CommittableMessage(
                            rec, CommittableOffset(group, topic, partition, offset, committer)
                        )
                    )
            else:
                for _ in range(k):
                    rec = pop()
                    next_offset[(rec.topic, rec.partition)] = rec.offset + 1
                    append(rec)
            self._buffered -= k
            self._emitted += k
            self.push(self.out, batch)
            self._wake_for_room()
            return
        error = self._decode_into(buffer, n, batch)
        if batch:
            # The records before a failing one go out first; the failure follows them.
            self.push(self.out, batch if len(batch) > 1 else batch[0])
        if error is not None:
            self._fail(error)
        else:
            self._wake_for_room()

    def _deliver(self) -> None:
        buffer = self._buffer
        out = self.out
        if len(buffer) > 1 and self.is_available(out):
            c = self._cout
            if c.batch and c.demand_n > 1:
                self._push_batch(c.demand_n)
                return
        while buffer and self.is_available(out):
            rec = buffer.popleft()
            self._buffered -= 1
            elem = self._element(rec)
            if elem is None:
                return
            if elem is not _SKIP:
                self.push(out, elem)
        self._wake_for_room()

    def _store(self, tp: TopicPartition, recs: list[Any]) -> bool:
        self._buffer.extend(recs)
        return True

    def _emit_stored(self, tps: Iterable[TopicPartition]) -> None:
        self._deliver()

    def _revoke(self, tps: frozenset[TopicPartition]) -> None:
        buffer = self._buffer
        if buffer:
            kept = deque(r for r in buffer if (r.topic, r.partition) not in tps)
            self._dropped += len(buffer) - len(kept)
            self._buffered -= len(buffer) - len(kept)
            self._buffer = kept

    def _drop_buffers(self) -> None:
        self._dropped += self._buffered
        self._buffer.clear()
        self._buffered = 0

    def _end_substreams(self, exc: BaseException | None) -> None:
        pass  # none

    def _held_partitions(self, assignment: set[TopicPartition]) -> set[TopicPartition]:
        return set()


class _PartitionedLogic(_ConsumerLogic):
    """A partitioned source: a ``(TopicPartition, Source)`` pair per assigned partition,
    each substream fed from its partition's own buffer on its own demand (a slow one holds
    back only its partition)."""

    def __init__(self, stage: ConsumerStage) -> None:
        super().__init__(stage)
        self._bufs: dict[TopicPartition, deque[ConsumerRecord[Any, Any]]] = {}
        self._subs: dict[TopicPartition, SubSourceOutlet] = {}

    def _buffered_of(self, tp: TopicPartition) -> Iterable[Any]:
        return self._bufs.get(tp, ())

    def on_pull(self) -> None:
        pass  # the pairs leave through emit; records through the substreams

    def _deliver_sub(self, tp: TopicPartition) -> None:
        sub = self._subs.get(tp)
        buf = self._bufs.get(tp)
        if buf and sub is not None and sub.is_available() and sub.demand > 1 and len(buf) > 1:
            self._push_sub_batch(sub, buf)
        while buf and sub is not None and sub.is_available():
            rec = buf.popleft()
            self._buffered -= 1
            elem = self._element(rec)
            if elem is None:
                return
            if elem is not _SKIP:
                sub.push(elem)
        self._wake()

    def _push_sub_batch(self, sub: SubSourceOutlet, buf: deque[Any]) -> None:
        """Answer a substream's batch pull (``sub.demand`` > 1) with one ``_Batch`` of its
        partition's buffered records, taken and decoded as one by one (a record that
        fails to deserialize fails the stream after the records before it were pushed,
        or is skipped under resume/restart)."""
        batch: list[Any] = _Batch()
        error = self._decode_into(buf, sub.demand, batch)
        if batch:
            sub.push(batch if len(batch) > 1 else batch[0])
        if error is not None:
            self._fail(error)

    def _open_sub(self, tp: TopicPartition) -> None:
        sub = SubSourceOutlet(
            self, f"{self.stage_name}.{tp.topic}-{tp.partition}", subscription_timeout=None
        )
        sub.set_handler(_SubHandler(self, tp, sub))
        self._subs[tp] = sub
        self._bufs.setdefault(tp, deque())
        self.emit(self.out, (tp, sub.source))

    def _sub_cancelled(self, tp: TopicPartition, sub: SubSourceOutlet) -> None:
        # Alpakka: a substream cancelled while its partition is still assigned is
        # replaced by a new one that continues with the records not yet emitted.
        if self._subs.get(tp) is not sub:
            return
        del self._subs[tp]
        if self._phase == _RUNNING and tp in self._assigned_tps and not self.is_closed(self.out):
            self._open_sub(tp)
        else:
            self._drop_partition(tp)

    def _drop_partition(self, tp: TopicPartition) -> None:
        buf = self._bufs.pop(tp, None)
        if buf:
            self._buffered -= len(buf)
            self._dropped += len(buf)

    def _store(self, tp: TopicPartition, recs: list[Any]) -> bool:
        buf = self._bufs.get(tp)
        if buf is None:
            return False
        buf.extend(recs)
        return True

    def _emit_stored(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._deliver_sub(tp)

    def _assigned_new(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._open_sub(tp)

    def _revoke(self, tps: frozenset[TopicPartition]) -> None:
        for tp in tps:
            sub = self._subs.pop(tp, None)
            if sub is not None:
                sub.complete()
            self._drop_partition(tp)

    def _drop_buffers(self) -> None:
        self._dropped += self._buffered
        self._bufs.clear()
        self._buffered = 0

    def _end_substreams(self, exc: BaseException | None) -> None:
        for sub in self._subs.values():
            if exc is None:
                sub.complete()
            else:
                sub.fail(exc)
        self._subs.clear()
        if exc is None and not self.is_closed(self.out):
            self.abort_emitting(self.out)  # pairs not taken yet: their sources completed

    def _held_partitions(self, assignment: set[TopicPartition]) -> set[TopicPartition]:
        subs, bufs = self._subs, self._bufs
        return {
            tp
            for tp in assignment
            if tp not in subs or (bufs.get(tp) and not subs[tp].is_available())
        }


class _SubHandler:
    """Handlers of one partition substream's outlet."""

    __slots__ = ("_logic", "_sub", "_tp")

    def __init__(self, logic: _PartitionedLogic, tp: TopicPartition, sub: SubSourceOutlet) -> None:
        self._logic = logic
        self._tp = tp
        self._sub = sub

    def on_pull(self) -> None:
        self._logic._deliver_sub(self._tp)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self._logic._sub_cancelled(self._tp, self._sub)
