"""The producer stages: ``Producer.plain_sink``, ``flexi_flow``, ``committable_sink``.

One stage, :class:`ProducerStage`, does all the work; the factories on
:class:`Producer` shape it as a flow or a sink. The stage owns one
``AIOKafkaProducer``:

- Build: a ``compression_type`` whose codec library is not installed raises
  :class:`~connectors.kafka.errors.MissingCodecError` (saying what to install)
  when the stage is built, not at the first batch.
- Start: the producer is created and started by a task the stage owns
  (``materializer.spawn``); the stage pulls only once it answered. When no
  broker answers within ``settings.connect_timeout`` the stage fails with
  :class:`~connectors.kafka.errors.ProducerConnectionError` (an aiokafka
  ``KafkaConnectionError``) naming the bootstrap servers; a broker that answers
  but refuses (an idempotent producer's InitProducerId, authorization) fails it
  with :class:`~connectors.kafka.errors.ProducerStartError` saying what to check.
- Sends are pipelined: each element is serialized inside the stage (a failing
  serializer fails the stream with an error naming the topic), queued to one
  sender task that appends them in input order (so records of one partition
  keep their order) to one open aiokafka batch per partition
  (``create_batch``/``send_batch``, see ``_send_loop``) without waiting for any
  acknowledgement, and the batches' delivery futures are remembered with
  their element in a deque in input order. At most ``settings.parallelism``
  elements are in flight (sent or queued, not yet emitted); beyond that the
  stage stops pulling.
- Completion is watched at the head only (performance: this is what made the
  Kafka benchmark's producer side cheap). Results leave in input order, so
  only the oldest element's futures matter: one done-callback sits on the
  first unfinished future of the head element; when it fires (aiokafka
  resolves a whole batch of futures at once) one async callback into the stage
  emits every element that is complete by then. That is one callback per
  aiokafka batch instead of one per record.
- A failed delivery fails the stream (when the failed element reaches the
  head, so failures are reported in input order) with
  :class:`~connectors.kafka.errors.ProducerSendError` naming the stage, the
  topic and partition and what to check, aiokafka's error as ``__cause__``
  (``NodeNotReadyError`` after an outage longer than ``request_timeout_ms``);
  a record over ``max_request_size`` (checked before sending) or a batch the
  broker refuses as too large is a :class:`~connectors.kafka.errors.RecordTooLargeError`
  (also aiokafka's ``MessageSizeTooLargeError``). The sender keeps each batch's
  topic-partition in a weak dictionary for this (one entry per batch).
- A record aiokafka refuses before sending it (a partition the topic lacks, a field of
  a wrong type or range that got past :class:`ProducerRecord`'s checks) fails the stream
  with a ``ProducerSendError`` saying the record is at fault, e.g. "partition 9 of topic
  't' (2 partitions) does not exist (Invalid partition given with record: 9 is not in
  the range [0...2))", not the broker hint (``retriable`` false).
- ``pass_through_only`` (``committable_sink``): the stage emits each
  envelope's ``pass_through`` (skipping ``None``) instead of a ``Result``, so
  the committer follows directly (no ``Result`` object, no extra filter/map
  stage per record).
- Upstream completion: the stage waits for every delivery, emits the last
  results, flushes and closes the producer (bounded by
  ``settings.close_timeout``), then completes. Failure or cancellation: the
  pending batches are failed and the producer is closed at once (never a
  fixed 30 s wait), then the stage fails (or completes, on a normal
  cancellation).
- A shared producer (``ProducerSettings.with_producer``, Alpakka's ``withProducer``
  with ``closeProducerOnStop = false``): the stage starts sending at once (a producer
  not started or already closed fails it with ``ProducerStartError``) and never
  flushes, aborts or closes it. Upstream completion waits for the stage's own
  deliveries only (the futures of its own batches: a producer-wide ``flush()`` would
  wait for every other stream's records too); failure or cancellation abandons the
  stage's in-flight records (no ``fail_all``: the other streams' batches are in the
  same accumulator) and leaves the producer running.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import weakref
from collections import deque
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
)
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from reactive import AbruptTerminationError, Done, NotUsed
from reactive.lowlevel import Batch as _Batch
from reactive.lowlevel import new_promise
from reactive.stage import (
    FlowShape,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SinkShape,
    SubscriptionWithCancelError,
)

from .._closing import close_producer, start_within
from ..errors import (
    KafkaConnectorError,
    ProducerConnectionError,
    ProducerSendError,
    ProducerSerializationError,
    ProducerStartError,
    RecordTooLargeError,
    check_codec,
)
from ..messages import (
    Message,
    MultiMessage,
    MultiResult,
    MultiResultPart,
    PassThroughMessage,
    PassThroughResult,
    ProducerMessage,
    ProducerRecord,
    RecordMetadata,
    Result,
)
from ..settings import ProducerSettings, _shared_producer_problem

__all__ = ["ProducerSerializationError", "ProducerStage"]

log = logging.getLogger("connectors.kafka")


# -- the stage -------------------------------------------------------------------------


class _Entry:
    """One element in flight: its envelope, the records to send and their batches' futures."""

    __slots__ = ("envelope", "futures", "meta", "records", "sent")

    def __init__(self, envelope: Any, records: list[tuple[Any, ...]]) -> None:
        self.envelope = envelope
        # Serialized records: (topic, value, key, partition, timestamp_ms, headers).
        self.records = records
        # The delivery futures of the aiokafka batches holding its records (each once, in
        # record order), appended by the sender task.
        self.futures: list[asyncio.Future[Any]] = []
        # Per record (flows emitting results only): (batch future, the record's metadata
        # in its batch, topic, partition).
        self.meta: list[tuple[Any, ...]] | None = None
        # Every record was handed to aiokafka (at once when there are none).
        self.sent = not records


class ProducerStage(GraphStageWithMaterializedValue[Any, Any]):
    """Writes records to Kafka with pipelined sends; a flow (results out) or a sink.

    Accepts :class:`ProducerRecord` (as ``ProducerMessage.single(record)``) and
    the envelopes of :class:`ProducerMessage`. As a flow it emits a
    :class:`Result`, :class:`MultiResult` or :class:`PassThroughResult` per
    element, in input order; its materialized value is ``NotUsed``. As a sink
    its materialized value is a future completed with ``Done`` once every
    record was acknowledged and the producer closed, or failed with the
    stream's error.
    """

    def __init__(
        self,
        settings: ProducerSettings,
        *,
        sink: bool = False,
        name: str = "",
        pass_through_only: bool = False,
    ) -> None:
        if not isinstance(settings, ProducerSettings):
            raise TypeError(
                f"the producer stages need ProducerSettings, got {type(settings).__name__}"
            )
        self.settings = settings
        self.sink = sink
        # Emit the envelopes' pass-through (None skipped) instead of results.
        self.pass_through_only = pass_through_only
        self.name = name or ("Producer.plain_sink" if sink else "Producer.flexi_flow")
        check_codec(self.name, settings.compression_type)
        if sink:
            self.shape: Any = SinkShape(Inlet("ProducerStage.in"))
        else:
            self.shape = FlowShape(Inlet("ProducerStage.in"), Outlet("ProducerStage.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        """A fresh logic; the sink's materialized value is its completion future."""
        promise: asyncio.Future[Any] | None = None
        if self.sink:
            promise = new_promise(asyncio.get_running_loop())
        logic = _ProducerLogic(self, promise)
        if promise is None:
            return logic, NotUsed
        return logic, promise

    def __repr__(self) -> str:
        return f"ProducerStage({self.name})"


def _retrieve(f: asyncio.Future[Any]) -> None:
    if not f.cancelled():
        f.exception()


#: Produce latencies kept per stage for its gauges (the most recent batches).
LATENCY_WINDOW = 1024


def _record_latency(
    latencies: deque[float], now: Any, started: float, f: asyncio.Future[Any]
) -> None:
    """A batch's delivery future is done: keep its latency (first record appended to the
    broker's acknowledgement) if it succeeded."""
    if not f.cancelled() and f.exception() is None:
        latencies.append(now() - started)


def _quantile(ordered: list[float], q: float) -> float:
    """The ``q`` quantile (0..1, nearest rank) of a sorted, non-empty list."""
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


class _ProducerLogic(GraphStageLogic, InHandler, OutHandler):
    # Its fields in slots: past the 29 names a logic keeps in CPython's shared-key layout
    # (see ``reactive._stage.logic._LogicFields``).
    __slots__ = (
        "_batch_in",
        "_cin",
        "acked",
        "arm_after_send",
        "batch_tps",
        "close_error",
        "closed_cb",
        "closer",
        "closing",
        "failure_cb",
        "held",
        "in_",
        "key_serializer",
        "latencies",
        "max_request_size",
        "need_meta",
        "no_serializers",
        "out",
        "outbox",
        "parallelism",
        "partitioner",
        "pass_through_only",
        "pending",
        "producer",
        "progress_cb",
        "promise",
        "request_timeout_ms",
        "sender",
        "settings",
        "shared",
        "upstream_done",
        "value_serializer",
        "wakeup",
        "watched",
    )

    def __init__(self, stage: ProducerStage, promise: asyncio.Future[Any] | None) -> None:
        super().__init__(stage.shape)
        self._stage_name = stage.name
        self.settings = stage.settings
        self.promise = promise
        self.in_: Inlet[Any] = stage.shape.in_
        self.out: Outlet[Any] | None = None if stage.sink else stage.shape.out
        self.set_handler(self.in_, self)
        if self.out is not None:
            self.set_handler(self.out, self)
        # Batch protocol on the inlet (see _pull_in and on_push).
        self._batch_in = (self.in_,)
        self.parallelism = self.settings.parallelism
        self.key_serializer = self.settings.key_serializer
        self.value_serializer = self.settings.value_serializer
        self.no_serializers = self.key_serializer is None and self.value_serializer is None
        self.pass_through_only = stage.pass_through_only
        # Only a flow emitting results needs each record's place in its batch.
        self.need_meta = self.out is not None and not self.pass_through_only
        self.producer: AIOKafkaProducer | None = None
        # The producer is the application's (ProducerSettings.with_producer): never
        # flushed, aborted or closed by the stage.
        self.shared = self.settings.producer is not None
        # What AIOKafkaProducer.send() would use to pick a partition and check the size
        # (the sender task fills batches itself, see _send_loop).
        self.partitioner: Any = DefaultPartitioner()
        self.max_request_size = 1048576
        self.request_timeout_ms = 40000
        # The topic-partition of each aiokafka batch future (for errors; see _send_error).
        self.batch_tps: weakref.WeakKeyDictionary[asyncio.Future[Any], tuple[str, int]] = (
            weakref.WeakKeyDictionary()
        )
        self.pending: deque[_Entry] = deque()  # input order, not yet emitted
        self.outbox: deque[_Entry] = deque()  # waiting for the sender task
        self.wakeup: asyncio.Event | None = None
        self.sender: asyncio.Task[Any] | None = None
        self.closer: asyncio.Task[Any] | None = None
        # Head-only completion watching (see the module docstring): the future that
        # carries our done-callback, and whether the sender must call the stage once
        # it has sent the head element (its futures did not exist yet).
        self.watched: asyncio.Future[Any] | None = None
        # The last batch future seen succeeded: the next elements in the same batch
        # need no other check (performance).
        self.acked: asyncio.Future[Any] | None = None
        self.arm_after_send = False
        self.upstream_done = False
        self.closing = False
        self.close_error: BaseException | None = None
        # Set by subclasses that must stop pulling for their own reasons (the committing
        # sink while a full offset batch waits for a commit slot).
        self.held = False
        # Latencies of the most recent acknowledged batches, seconds (observe_gauges).
        self.latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def observe_gauges(self) -> dict[str, Any]:
        """The figures ``reactive.observe`` snapshots show for this stage: messages in
        flight (taken, results not yet emitted) and the produce latency (from a batch's
        first record to the broker's acknowledgement) over the last batches."""
        gauges: dict[str, Any] = {"kafka_messages_in_flight": len(self.pending)}
        if self.latencies:
            ordered = sorted(self.latencies)
            gauges["kafka_produce_latency_p50_seconds"] = _quantile(ordered, 0.5)
            gauges["kafka_produce_latency_p99_seconds"] = _quantile(ordered, 0.99)
        return gauges

    # -- lifecycle --

    def pre_start(self) -> None:
        # Closing the producer is asynchronous: the stage stops itself once closed.
        self.set_keep_going(True)
        self._cin = self._conns[self.in_]
        self.progress_cb = self.get_async_callback(self._on_progress)
        self.failure_cb = self.get_async_callback(self._on_send_failure)
        started_cb = self.get_async_callback(self._on_started)
        self.closed_cb = self.get_async_callback(self._on_closed)
        self.wakeup = asyncio.Event()
        if self.shared:
            self._start_shared(self.settings.producer)
            return
        kwargs = self.settings.to_aiokafka_kwargs()
        self.partitioner = kwargs.get("partitioner", self.partitioner)
        self.max_request_size = kwargs.get("max_request_size", self.max_request_size)
        self.request_timeout_ms = kwargs.get("request_timeout_ms", self.request_timeout_ms)
        try:
            self.producer = AIOKafkaProducer(**kwargs)
        except Exception as exc:
            self._finish(exc)
            return
        self.materializer.spawn(self._start_producer(self.producer, started_cb))

    def _start_shared(self, producer: AIOKafkaProducer) -> None:
        """Use the application's producer: check that it can send, then go."""
        problem = _shared_producer_problem(producer)
        if problem is not None:
            self._finish(
                ProducerStartError(
                    f"[{self._stage_name}] the shared producer given with "
                    f"ProducerSettings.with_producer {problem}"
                )
            )
            return
        self.partitioner = getattr(producer, "_partitioner", self.partitioner)
        self.max_request_size = getattr(producer, "_max_request_size", self.max_request_size)
        self.request_timeout_ms = getattr(producer, "_request_timeout_ms", self.request_timeout_ms)
        self.producer = producer
        self._on_started(None)

    async def _start_producer(self, producer: AIOKafkaProducer, started_cb: Any) -> None:
        settings = self.settings
        try:
            await start_within(producer.start(), producer.client, settings.connect_timeout)
        except Exception as exc:
            error = self._start_error(exc)
            await _close_quietly(producer, settings.close_timeout, error)
            started_cb.invoke(error)
            return
        started_cb.invoke(None)

    def _start_error(self, exc: Exception) -> KafkaConnectorError:
        """What ``producer.start()`` raising ``exc`` means: no broker answered
        (:class:`ProducerConnectionError`), or one answered and refused
        (:class:`ProducerStartError`, saying what to check)."""
        settings = self.settings
        servers = settings.bootstrap_servers
        error: KafkaConnectorError
        if isinstance(exc, TimeoutError | KafkaConnectionError | OSError):
            reason = (
                f"no answer within {settings.connect_timeout} s"
                if isinstance(exc, TimeoutError)
                else _describe(exc)
            )
            error = ProducerConnectionError(
                f"[{self._stage_name}] cannot connect to Kafka at {servers} "
                f"(connect_timeout {settings.connect_timeout} s): {reason}; check "
                "bootstrap_servers and that the broker is running"
            )
        else:
            props = settings.properties
            if props.get("transactional_id") or props.get("enable_idempotence"):
                hint = (
                    "an idempotent or transactional producer (enable_idempotence / "
                    "transactional_id in ProducerSettings.properties) asks the broker for "
                    "a producer id (InitProducerId) at start: check that the broker "
                    "supports them and allows this client (IdempotentWrite / "
                    "TransactionalId ACLs), or leave them unset"
                )
            elif settings.security_protocol or settings.sasl_mechanism:
                hint = "check the credentials and security settings, and the broker's log"
            else:
                hint = "check the broker's log and that its version supports this client"
            error = ProducerStartError(
                f"[{self._stage_name}] the Kafka broker at {servers} answered but starting "
                f"the producer failed: {_describe(exc)}; {hint}"
            )
        error.__cause__ = exc
        return error

    def _send_error(
        self, exc: BaseException, topic: str | None, partition: int | None
    ) -> BaseException:
        """``exc`` (a failed send) with its context: the stage, where the records were
        going and what to check; aiokafka's error is the ``__cause__``. Errors of
        :mod:`connectors.kafka.errors` and non-``Exception`` s pass unchanged."""
        if isinstance(exc, KafkaConnectorError) or not isinstance(exc, Exception):
            return exc
        where = "Kafka"
        if topic is not None:
            where = f"topic {topic!r}"
            if partition is not None:
                where += f" partition {partition}"
        cls: type[ProducerSendError] = ProducerSendError
        retriable = bool(getattr(exc, "retriable", False))
        if isinstance(exc, MessageSizeTooLargeError):
            cls = RecordTooLargeError
            hint = (
                "the broker refused a batch as too large: check the broker's "
                "message.max.bytes and the topic's max.message.bytes, or lower "
                f"max_batch_size ({self.settings.max_batch_size}) and max_request_size "
                f"({self.max_request_size})"
            )
        elif retriable or isinstance(exc, KafkaTimeoutError | TimeoutError | OSError):
            hint = (
                f"check that the brokers at {self.settings.bootstrap_servers} are reachable "
                f"and that the topic exists; aiokafka gives up on a batch after "
                f"request_timeout_ms={self.request_timeout_ms} ms (raise it in "
                "ProducerSettings.properties to ride out longer outages, or restart the "
                "stream, e.g. with RestartFlow / RestartSink)"
            )
        else:
            hint = "check the broker's log and the topic's configuration"
        error = cls(
            f"[{self._stage_name}] sending records to {where} failed: {_describe(exc)}; {hint}",
            topic,
            partition,
            retriable=retriable,
        )
        error.__cause__ = exc
        return error

    def _record_error(
        self, exc: Exception, producer: Any, topic: str | None, partition: int | None
    ) -> BaseException:
        """``exc``, raised by aiokafka for a record before it was sent, as a
        :class:`ProducerSendError` that says which record field is wrong (a partition the
        topic does not have, as Kafka's "Invalid partition given with record"), without
        the broker hint: nothing reached a broker. aiokafka's error is the ``__cause__``."""
        if isinstance(exc, KafkaConnectorError):
            return exc
        where = "Kafka" if topic is None else f"topic {topic!r}"
        known: Any = None
        if topic is not None:
            try:
                known = producer.client.cluster.partitions_for_topic(topic)
            except Exception:  # pragma: no cover - defensive: metadata unavailable
                known = None
        if partition is not None:
            where += f" partition {partition}"
        if partition is not None and known and partition not in known:
            count = len(known)
            reason = (
                f"partition {partition} of topic {topic!r} ({count} "
                f"partition{'' if count == 1 else 's'}) does not exist (Invalid partition "
                f"given with record: {partition} is not in the range [0...{count}))"
            )
            hint = (
                f"give ProducerRecord.partition a value below {count}, or None to let the "
                "partitioner choose"
            )
        else:
            reason = f"the Kafka client refused it before sending: {_describe(exc)}"
            hint = (
                "a field of the record has a wrong type or value (key and value bytes or "
                "None after the serializers, timestamp_ms an int >= 0 below 2**63, headers "
                "(str, bytes) pairs), or the partitioner in ProducerSettings.properties "
                "failed"
            )
        error = ProducerSendError(
            f"[{self._stage_name}] invalid record for {where}: {reason}; the record is at "
            f"fault, not the broker: {hint}",
            topic,
            partition,
            retriable=False,
        )
        error.__cause__ = exc
        return error

    def _on_started(self, error: BaseException | None) -> None:
        if error is not None:
            self.producer = None  # already closed
            # Cancelled or failed meanwhile: that decides how the stage ends.
            self._finish(self.close_error if self.closing else error)
            return
        if self.closing:  # cancelled or failed while starting
            assert self.producer is not None
            self.closer = self.materializer.spawn(
                self._close(self.producer, self.close_error, False), cancel_on_shutdown=False
            )
            return
        self.sender = self.materializer.spawn(self._send_loop())
        if self.upstream_done:
            self._maybe_finish()
        elif not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
            self._pull_in()

    def post_stop(self) -> None:
        # Abrupt stop (materializer shutdown) or an error path that skipped closing.
        if self.sender is not None and not self.sender.done():
            self.sender.cancel()
        producer = self.producer
        if self.shared:
            self.producer = None  # the application's: never closed here
        elif producer is not None and self.closer is None:
            self.producer = None
            _abort_batches(producer, RuntimeError(f"[{self._stage_name}] stopped"))
            try:
                # Not cancelled by the materializer's shutdown (it waits for it): a
                # cancelled close leaves the client's connections and sender open.
                self.materializer.spawn(
                    _close_quietly(producer, self.settings.close_timeout),
                    cancel_on_shutdown=False,
                )
            except Exception:  # pragma: no cover - loop closed
                log.exception("[%s] could not close the Kafka producer", self._stage_name)
        p = self.promise
        if p is not None and not p.done():
            p.set_exception(
                AbruptTerminationError(f"[{self._stage_name}] the stream was stopped abruptly")
            )

    def _extra_fail(self, exc: BaseException) -> None:
        p = self.promise
        if p is not None and not p.done():
            p.set_exception(exc)

    def _on_abort(self, exc: BaseException) -> None:
        p = self.promise
        if p is not None and not p.done():
            p.set_exception(exc)

    # -- input --

    def _pull_in(self) -> None:
        """Pull the inlet; on a batch connection ask for as many elements as there is
        room for under ``parallelism`` (batch protocol, see ``reactive/_impl/fused.py``)."""
        self.pull(self.in_)
        c = self._cin
        if c.batch:
            c.demand_n = max(1, self.parallelism - len(self.pending))

    def on_push(self) -> None:
        elem = self.grab(self.in_)
        pending = self.pending
        was_empty = not pending
        if type(elem) is _Batch:
            # Up to demand_n elements at once: each handled as below, one wake-up.
            outbox = self.outbox
            serialize = self._serialize
            for x in elem:
                try:
                    if x.__class__ is Message:  # the common case first
                        entry = _Entry(x, [serialize(x.record)])
                    else:
                        entry = self._entry(x)
                except Exception as exc:
                    # Fails the stage as one by one (not raised to the interpreter: the
                    # producer must be closed first); the sends still pending are abandoned.
                    self._start_closing(exc, flush=False)
                    return
                pending.append(entry)
                if entry.records:
                    outbox.append(entry)
        else:
            try:
                if elem.__class__ is Message:  # the common case first
                    entry = _Entry(elem, [self._serialize(elem.record)])
                else:
                    entry = self._entry(elem)
            except Exception as exc:
                # Not raised to the interpreter: the producer must be closed first.
                self._start_closing(exc, flush=False)
                return
            pending.append(entry)
            if entry.records:
                self.outbox.append(entry)
        self._wake_sender()
        if was_empty and pending:
            # A new head: emit it or arm the watch on it (nothing else would).
            self._emit_ready()
        if (
            len(pending) < self.parallelism
            and not self.closing
            and not self.held
            and not self.is_closed(self.in_)
        ) and not self.has_been_pulled(self.in_):
            self._pull_in()

    def _wake_sender(self) -> None:
        wakeup = self.wakeup
        if wakeup is not None and self.outbox and not wakeup.is_set():
            wakeup.set()

    def _entry(self, elem: Any) -> _Entry:
        if type(elem) is Message:  # the common case first
            return _Entry(elem, [self._serialize(elem.record)])
        if isinstance(elem, Message):
            return _Entry(elem, [self._serialize(elem.record)])
        if isinstance(elem, ProducerRecord):
            return _Entry(ProducerMessage.single(elem), [self._serialize(elem)])
        if isinstance(elem, MultiMessage):
            return _Entry(elem, [self._serialize(r) for r in elem.records])
        if isinstance(elem, PassThroughMessage):
            return _Entry(elem, [])
        raise TypeError(
            f"[{self._stage_name}] expects ProducerRecord or ProducerMessage envelopes "
            f"(single, multi, pass_through), got {type(elem).__name__}"
        )

    def _serialize(self, record: ProducerRecord[Any, Any]) -> tuple[Any, ...]:
        key = record.key
        value = record.value
        if (
            self.no_serializers
            and (value.__class__ is bytes or (value is None and key is not None))
            and (key is None or key.__class__ is bytes)
        ):  # the common case, with nothing to check or convert (performance)
            headers = record.headers
            return (
                record.topic,
                value,
                key,
                record.partition,
                record.timestamp_ms,
                list(headers) if headers else None,
            )
        topic = record.topic
        key = self._encode(self.key_serializer, record.key, "key", topic)
        value = self._encode(self.value_serializer, record.value, "value", topic)
        if key is None and value is None:
            raise ProducerSerializationError(
                f"[{self._stage_name}] a record for topic {topic!r} has neither key nor "
                "value; Kafka needs at least one"
            )
        return (
            topic,
            value,
            key,
            record.partition,
            record.timestamp_ms,
            list(record.headers) if record.headers else None,
        )

    def _encode(self, serializer: Any, data: Any, what: str, topic: str) -> bytes | None:
        if serializer is not None:
            try:
                data = serializer(data)
            except Exception as exc:
                raise ProducerSerializationError(
                    f"[{self._stage_name}] cannot serialize the {what} of a record for topic "
                    f"{topic!r}: {type(exc).__name__}: {exc}"
                ) from exc
        if data is None or type(data) is bytes:
            return data
        if isinstance(data, bytearray | memoryview):
            return bytes(data)
        hint = "its serializer returned" if serializer is not None else "without a serializer got"
        raise ProducerSerializationError(
            f"[{self._stage_name}] the {what} of a record for topic {topic!r} must be bytes "
            f"or None: {hint} {type(data).__name__} (set {what}_serializer in ProducerSettings)"
        )

    def on_upstream_finish(self) -> None:
        self.upstream_done = True
        if self.sender is not None:
            self._maybe_finish()
        # else: still starting; _on_started finishes (keep-going holds the stage).

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._start_closing(exc, flush=False)

    # -- output --

    def on_pull(self) -> None:
        self._emit_ready()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.cancel(self.in_, cause)
        normal = cause is None or isinstance(cause, SubscriptionWithCancelError)
        self._start_closing(None if normal else cause, flush=False)

    # -- the sender task --

    async def _send_loop(self) -> None:
        """Hand the queued records to aiokafka, in input order, through batch builders.

        Performance: ``producer.send()`` per record creates a future per record and
        looks up the partition's batch; here records are appended to one open
        ``BatchBuilder`` per partition (``create_batch``/``send_batch``, aiokafka's
        batch API), handed to aiokafka as soon as it is created and left open, so
        records keep joining it until it is full or aiokafka takes it for sending
        (linger). Batching, lingering, ordering per partition and back pressure are
        aiokafka's, as with ``send()``: ``send_batch`` waits while the partition's
        previous batch is full and not yet taken. One delivery future per batch.
        """
        producer = self.producer
        wakeup = self.wakeup
        assert producer is not None and wakeup is not None
        outbox = self.outbox
        need_meta = self.need_meta
        # (topic, partition) -> (builder, its delivery future), the batch being filled.
        open_batches: dict[tuple[str, int], tuple[Any, asyncio.Future[Any]]] = {}
        batch_tps = self.batch_tps
        now = asyncio.get_running_loop().time
        acked = functools.partial(_record_latency, self.latencies, now)
        topic: str | None = None
        partition: int | None = None
        try:
            while True:
                if not outbox:
                    wakeup.clear()
                    await wakeup.wait()
                    continue
                # Partitions per topic, read once per pass (as send() reads them per record).
                layouts: dict[str, tuple[list[int], list[int], int | None]] = {}
                while outbox:
                    entry = outbox.popleft()
                    futures = entry.futures
                    meta: list[tuple[Any, ...]] | None = [] if need_meta else None
                    for topic, value, key, partition, ts, headers in entry.records:
                        if partition is None:
                            layout = layouts.get(topic)
                            if layout is None:
                                layout = await self._layout(producer, topic)
                                layouts[topic] = layout
                            partition = layout[2]
                            if partition is None:
                                partition = self.partitioner(key, layout[0], layout[1])
                        if headers or (
                            (len(value) if value else 0) + (len(key) if key else 0)
                            > self.max_request_size - 512
                        ):
                            self._check_size(topic, partition, key, value, headers)
                        tp = (topic, partition)
                        current = open_batches.get(tp)
                        md = None
                        if current is not None:
                            md = current[0].append(
                                timestamp=ts, key=key, value=value, headers=headers
                            )
                        if md is None:
                            builder = producer.create_batch()
                            md = builder.append(timestamp=ts, key=key, value=value, headers=headers)
                            fut = await producer.send_batch(builder, topic, partition=partition)
                            fut.add_done_callback(_retrieve)
                            fut.add_done_callback(functools.partial(acked, now()))
                            batch_tps[fut] = tp
                            open_batches[tp] = (builder, fut)
                        else:
                            assert current is not None
                            fut = current[1]
                        if not futures or futures[-1] is not fut:
                            futures.append(fut)
                        if meta is not None:
                            meta.append((fut, md, topic, partition))
                    entry.meta = meta
                    entry.sent = True
                    if self.arm_after_send:
                        # The stage found an element at the head before it was sent.
                        self.arm_after_send = False
                        self.progress_cb.invoke(None)
                # Forget the builders aiokafka already closed (full or taken for sending).
                for tp in [tp for tp, (b, _) in open_batches.items() if b.closed()]:
                    del open_batches[tp]
        except asyncio.CancelledError:
            raise
        except (TypeError, ValueError, OverflowError, AssertionError) as exc:
            # Raised by aiokafka before anything reached a broker (a partition the topic
            # lacks, a field of the wrong type): the record's fault.
            self.failure_cb.invoke(self._record_error(exc, producer, topic, partition))
        except Exception as exc:
            self.failure_cb.invoke(self._send_error(exc, topic, partition))

    async def _layout(
        self, producer: AIOKafkaProducer, topic: str
    ) -> tuple[list[int], list[int], int | None]:
        """All and available partitions of ``topic`` (waiting for its metadata, as
        ``send()`` does), and its only partition when the default partitioner has no
        choice."""
        all_partitions = list(await producer.partitions_for(topic))
        available = list(producer.client.cluster.available_partitions_for_topic(topic) or ())
        only = None
        if len(all_partitions) == 1 and type(self.partitioner) is DefaultPartitioner:
            only = all_partitions[0]
        return all_partitions, available, only

    def _check_size(self, topic: str, partition: int, key: Any, value: Any, headers: Any) -> None:
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers or [])
        if size > self.max_request_size:
            raise RecordTooLargeError(
                f"[{self._stage_name}] a record for topic {topic!r} partition {partition} "
                f"(key {_short(key)}) is {size} bytes serialized, over max_request_size="
                f"{self.max_request_size}: raise max_request_size in ProducerSettings."
                "properties (the broker's message.max.bytes and the topic's "
                "max.message.bytes must allow it too) or send smaller records",
                topic,
                partition,
            )

    def _watch_done(self, fut: asyncio.Future[Any]) -> None:
        # A future callback, outside the stage. aiokafka resolves every future of a
        # batch before any callback runs, so the one invoke below emits them all.
        if fut is self.watched:
            self.watched = None
            self.progress_cb.invoke(None)

    # -- inside the stage: progress, failure, closing --

    def _on_progress(self, _: Any) -> None:
        self._emit_ready()

    def _head_state(self, entry: _Entry) -> int:
        """1: every record acknowledged; 0: not yet (a watch is armed); -1: failed."""
        if not entry.sent:
            self.arm_after_send = True  # the sender calls back once it is sent
            return 0
        acked = self.acked
        for fut in entry.futures:
            if fut is acked:
                continue
            if not fut.done():
                if self.watched is not fut:
                    self.watched = fut
                    fut.add_done_callback(self._watch_done)
                return 0
            if fut.cancelled():
                self._on_send_failure(
                    asyncio.CancelledError(f"[{self._stage_name}] send cancelled")
                )
                return -1
            exc = fut.exception()
            if exc is not None:
                topic, partition = self.batch_tps.get(fut, (None, None))
                self._on_send_failure(self._send_error(exc, topic, partition))
                return -1
            self.acked = acked = fut
        return 1

    def _emit_ready(self) -> None:
        if self.closing:
            return
        pending = self.pending
        out = self.out
        head_state = self._head_state
        if out is None:
            while pending:
                state = head_state(pending[0])
                if state < 0:
                    return
                if state == 0:
                    break
                pending.popleft()
        elif self.pass_through_only:
            while pending and self.is_available(out):
                state = head_state(pending[0])
                if state < 0:
                    return
                if state == 0:
                    break
                pass_through = pending.popleft().envelope.pass_through
                if pass_through is not None:
                    self.push(out, pass_through)
        elif pending and self.is_available(out):
            state = head_state(pending[0])
            if state < 0:
                return
            if state > 0:
                self.push(out, self._result(pending.popleft()))
        if self.upstream_done:
            self._maybe_finish()
        elif (
            len(pending) < self.parallelism
            and self.sender is not None
            and not self.closing
            and not self.held
            and not self.has_been_pulled(self.in_)
            and not self.is_closed(self.in_)
        ):
            self._pull_in()

    def _result(self, entry: _Entry) -> Any:
        env = entry.envelope
        meta: list[tuple[Any, ...]] = entry.meta or []
        if isinstance(env, Message):
            return Result(_record_metadata(*meta[0]), env)
        if isinstance(env, MultiMessage):
            parts = tuple(
                MultiResultPart(_record_metadata(*m), record)
                for m, record in zip(meta, env.records)
            )
            return MultiResult(parts, env.pass_through)
        return PassThroughResult(env.pass_through)

    def _maybe_finish(self) -> None:
        if not self.pending and not self.closing:
            self._start_closing(None, flush=True)

    def _on_send_failure(self, exc: BaseException) -> None:
        if self.closing:
            return
        self._start_closing(exc, flush=False)

    def _start_closing(self, error: BaseException | None, *, flush: bool) -> None:
        """Close the producer (flushing first when ``flush``), then end the stage."""
        if self.closing:
            return
        self.closing = True
        self.close_error = error
        # Futures nobody will look at: retrieve their outcome when they finish, so that
        # asyncio does not log "exception was never retrieved".
        for entry in self.pending:
            for fut in entry.futures:
                fut.add_done_callback(_retrieve)
        if not self.is_closed(self.in_):
            self.cancel(self.in_, error)
        if self.sender is not None and not self.sender.done():
            self.sender.cancel()
        producer = self.producer
        if self.shared:
            # Not ours to flush or close: our records were all acknowledged (completion)
            # or are abandoned (failure, cancellation); the sender is cancelled above.
            self.producer = None
            self._finish(error)
        elif producer is None:
            self._finish(error)
        elif self.sender is not None:
            self.closer = self.materializer.spawn(
                self._close(producer, error, flush), cancel_on_shutdown=False
            )
        # else: still starting; _on_started closes it when the start ends.

    async def _close(
        self, producer: AIOKafkaProducer, error: BaseException | None, flush: bool
    ) -> None:
        timeout = self.settings.close_timeout
        result = error
        sender = self.sender
        if sender is not None:
            await asyncio.gather(sender, return_exceptions=True)
        if flush:
            try:
                await asyncio.wait_for(producer.flush(), timeout)
            except Exception as exc:
                result = exc
                if isinstance(exc, TimeoutError):
                    result = TimeoutError(
                        f"[{self._stage_name}] flushing the Kafka producer did not finish "
                        f"within close_timeout {timeout} s"
                    )
        if not flush or result is not None:
            _abort_batches(producer, result or RuntimeError(f"[{self._stage_name}] cancelled"))
        close_error = await _close_quietly(producer, timeout)
        if result is None and close_error is not None and flush:
            result = close_error
        self.closed_cb.invoke(result)

    def _on_closed(self, error: BaseException | None) -> None:
        self.producer = None
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        self.closing = True
        p = self.promise
        if error is None:
            if p is not None and not p.done():
                p.set_result(Done)
            self.complete_stage()
        else:
            if p is not None and not p.done():
                p.set_exception(error)
            self.fail_stage(error)


def _describe(exc: BaseException) -> str:
    """``Type: message`` (aiokafka's errors already start with their type's name)."""
    text = str(exc).rstrip(".")
    if isinstance(exc, KafkaError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short(data: Any, limit: int = 40) -> str:
    """A record key for a message: its repr, cut to ``limit`` characters."""
    if data is None:
        return "None"
    text = repr(data)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _record_metadata(
    fut: asyncio.Future[Any], md: Any, topic: str, partition: int
) -> RecordMetadata:
    """Where a record was written: its batch's base offset plus its place in the batch.

    The timestamp is the broker's (log append time) or, when it reports none (``-1``),
    the record's own, as aiokafka resolves ``send()``'s futures. With ``acks=0`` the
    broker reports nothing: offset ``-1``.
    """
    batch = fut.result()
    if batch is None:
        return RecordMetadata(topic, partition, -1, None)
    timestamp = batch.timestamp
    if timestamp is None or timestamp == -1:
        timestamp = md.timestamp
    return RecordMetadata(
        topic,
        partition,
        batch.offset + md.offset,
        None if timestamp is None or timestamp < 0 else timestamp,
    )


def _abort_batches(producer: AIOKafkaProducer, error: BaseException) -> None:
    """Fail the batches still buffered so that closing does not wait for the broker.

    aiokafka has no public abort; its accumulator's ``fail_all`` is what its own
    error paths use.
    """
    accumulator = getattr(producer, "_message_accumulator", None)
    fail_all = getattr(accumulator, "fail_all", None)
    if fail_all is None:
        return
    try:
        # The batches fail_all will fail (queued per partition, or sent and unanswered).
        batches = [b for queue in accumulator._batches.values() for b in queue]  # type: ignore[union-attr]
        batches.extend(accumulator._pending_batches)  # type: ignore[union-attr]
    except Exception:  # pragma: no cover - another aiokafka layout
        batches = []
    try:
        fail_all(error)
    except Exception:  # pragma: no cover - best effort
        log.debug("failing aiokafka batches raised", exc_info=True)
    # ``failure`` also fails each batch's drain waiter, which nobody awaits once the
    # stage stopped: retrieve it (and the batch future) so that asyncio does not log
    # "Future exception was never retrieved" for a shutdown that is not an error.
    for batch in batches:
        for fut in (getattr(batch, "future", None), getattr(batch, "_drain_waiter", None)):
            if isinstance(fut, asyncio.Future) and fut.done() and not fut.cancelled():
                fut.exception()


async def _close_quietly(
    producer: AIOKafkaProducer, timeout: float, error: BaseException | None = None
) -> BaseException | None:
    """Stop ``producer`` within ``timeout`` s, then close what the stop left open (its
    sender task, client tasks and connections: see :mod:`connectors.kafka._closing`).

    Returns the error of stopping, if any (logged, never raised).
    """
    return await close_producer(producer, timeout)
