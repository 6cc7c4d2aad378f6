"""Hubs: dynamic fan-in (``MergeHub``) and fan-out (``BroadcastHub``, ``PartitionHub``).

A hub is one running stage whose materialized value is a blueprint; every run of that
blueprint attaches a new producer or consumer to the running hub. Producers and
consumers live in other streams (other islands, possibly another materializer on the
same loop). They talk to the hub through async callbacks, which run inline when the
receiving island is idle. The fan-out hubs keep their buffer in the hub logic and let
consumers read it directly: everything runs on one event-loop thread, so a read is
atomic, and the buffer stays readable after the hub's upstream completed (late
consumers still drain it and then see the completion).
"""

from __future__ import annotations

import operator
from collections import deque
from typing import Any

from .._errors import AbruptTerminationError
from .._impl.modules import AtomicModule
from .._impl.unobserved import observed
from .._keep import NotUsed
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    abrupt_error,
)
from .._stage.shapes import Inlet, Outlet, SinkShape, SourceShape

__all__ = ["ConsumerInfo", "MergeHubDrainingControl", "partition_index"]

_CLOSED: Any = object()


# ---------------------------------------------------------------------------------------------
# MergeHub
# ---------------------------------------------------------------------------------------------


class MergeHubDrainingControl:
    """Drains a running ``MergeHub.source_with_draining()`` (Akka's
    ``MergeHub.DrainingControl``): the second part of its materialized value."""

    __slots__ = ("_hub",)

    def __init__(self, hub: _MergeHubLogic) -> None:
        self._hub = hub

    def drain_and_complete(self) -> None:
        """Put the hub in draining mode: every producer materialized from now on is
        cancelled at once, and the hub's Source completes as soon as the producers
        materialized before (their ``run()`` returned, even if their stream has not
        started yet) have all finished (completed, failed or cancelled) and their
        elements were emitted. Further calls do nothing. Call it on the hub's event loop.
        """
        hub = self._hub
        if hub.draining:
            return
        hub.draining = True  # at once: a producer started after this call is refused
        hub.cb.invoke(("drain", None, None))

    def __repr__(self) -> str:
        return f"MergeHubDrainingControl(draining={self._hub.draining})"


class _MergeHubStage(GraphStageWithMaterializedValue[SourceShape[Any], Any]):
    name = "merge_hub"

    def __init__(self, size: int, draining: bool = False) -> None:
        self.size = size
        self.draining = draining
        self.shape = SourceShape(Outlet("MergeHub.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        logic = _MergeHubLogic(self.shape, self.size)
        from .._dsl.blueprints import Sink  # the materialized value is a Sink

        sink: Sink[Any, Any] = Sink(AtomicModule(_MergeHubProducerStage(logic, self.size)))
        if self.draining:
            return logic, (sink, MergeHubDrainingControl(logic))
        return logic, sink


class _MergeHubLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], size: int) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.size = size
        # Akka's DemandThreshold: credit flows back in batches of half the per-producer
        # buffer, rounded up (a producer with buffer 3 gets 2 more after 2 were emitted).
        self.threshold = (size + 1) // 2
        self.queue: deque[tuple[Any, Any]] = deque()
        self.producers: set[_MergeHubProducerLogic] = set()
        self.cb = self.get_async_callback(self.on_event)
        # Draining (``MergeHubDrainingControl.drain_and_complete``): new producers are
        # refused, and the hub completes once the attached ones are done and emitted.
        self.draining = False
        # Producers materialized (their run() returned) but not started yet: a drain
        # waits for them, since their user sees them attached.
        self.starting: set[_MergeHubProducerLogic] = set()

    def on_event(self, ev: tuple[str, Any, Any]) -> None:
        kind, producer, x = ev
        if kind == "elem":
            if not self.queue and self.is_available(self.out):
                self.push(self.out, x)
                self._credit(producer)
            else:
                self.queue.append((producer, x))
        elif kind == "done":
            self.producers.discard(producer)
        self._maybe_drained()

    def _maybe_drained(self) -> None:
        # A producer's "done" comes through the same callback after its elements, so no
        # producer left means nothing more will come: complete once the queue is emitted.
        if not self.draining or self.producers or self.queue:
            return
        if self.starting:
            # One whose graph failed to materialize never starts (its island was never
            # started; materializing is synchronous, so this is not one in progress).
            self.starting = {
                p for p in self.starting if p._island is not None and p._island.task is not None
            }
            if self.starting:
                return
        self.complete_stage()

    def _credit(self, producer: _MergeHubProducerLogic) -> None:
        producer.consumed += 1
        if producer.consumed >= self.threshold:
            n, producer.consumed = producer.consumed, 0
            producer.credit_cb.invoke(n)

    def on_pull(self) -> None:
        if self.queue:
            producer, x = self.queue.popleft()
            self.push(self.out, x)
            self._credit(producer)
            self._maybe_drained()

    def post_stop(self) -> None:
        self.queue.clear()
        producers, self.producers = self.producers, set()
        for p in producers:
            p.cancel_cb.invoke(None)


class _MergeHubProducerStage(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    name = "merge_hub_producer"

    def __init__(self, hub: _MergeHubLogic, size: int) -> None:
        self.hub = hub
        self.size = size
        self.shape = SinkShape(Inlet("MergeHub.producer.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        return _MergeHubProducerLogic(self.shape, self.hub, self.size), NotUsed


class _MergeHubProducerLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], hub: _MergeHubLogic, size: int) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.set_handler(self.in_, self)
        self.hub = hub
        self.credit = size
        self.consumed = 0  # maintained by the hub: elements emitted since the last credit
        self.credit_cb = self.get_async_callback(self.on_credit)
        self.cancel_cb = self.get_async_callback(self.on_hub_closed)
        # Admitted when materialized before a drain began: its island starts a few loop
        # turns after its run() returned, and it must not be refused for that.
        self.admitted = not (hub._stopped or hub.draining)
        if self.admitted:
            hub.starting.add(self)

    def pre_start(self) -> None:
        hub = self.hub
        hub.starting.discard(self)
        if hub._stopped or not self.admitted:
            self.cancel(self.in_)  # the hub closed, or drains: it takes no new producer
            return
        hub.producers.add(self)
        self.pull(self.in_)

    def on_push(self) -> None:
        self.credit -= 1
        self.hub.cb.invoke(("elem", self, self.grab(self.in_)))
        if self.credit > 0:
            self.pull(self.in_)

    def on_credit(self, n: int) -> None:
        self.credit += n
        if self.credit > 0:
            self.try_pull(self.in_)

    def on_hub_closed(self, _: Any) -> None:
        self.cancel(self.in_)

    def on_upstream_finish(self) -> None:
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.complete_stage()  # a failed producer just detaches; the hub does not fail

    def post_stop(self) -> None:
        # Also when stopped before it started (its materializer shut down first).
        self.hub.starting.discard(self)
        self.hub.cb.invoke(("done", self, None))


# ---------------------------------------------------------------------------------------------
# Fan-out hubs: shared pieces
# ---------------------------------------------------------------------------------------------
class _FanOutHubLogic(GraphStageLogic, InHandler):
    """The sink side of a fan-out hub: pulls upstream, remembers its terminal signal."""

    def __init__(self, shape: SinkShape[Any], start_after: int, size: int) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.set_handler(self.in_, self)
        self.size = size
        self.start_after = start_after
        self.started = start_after <= 0
        self.terminal: Any = None  # None while running; _CLOSED or the failure
        self.consumers: dict[Any, None] = {}  # insertion-ordered set
        self.cb = self.get_async_callback(self.on_wake)

    def pre_start(self) -> None:
        self.maybe_pull()

    def on_wake(self, _: Any) -> None:
        self.maybe_pull()

    def maybe_pull(self) -> None:
        raise NotImplementedError  # pragma: no cover - both hubs override

    def _wake_all(self) -> None:
        for c in list(self.consumers):
            c.wake_cb.invoke(None)

    def _end(self, terminal: Any) -> None:
        if self.terminal is None:
            self.terminal = terminal
            self._wake_all()

    def on_upstream_finish(self) -> None:
        self._end(_CLOSED)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._end(exc)
        self.fail_stage(exc)

    def _extra_fail(self, exc: BaseException) -> None:
        self._end(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self._end(exc)

    def post_stop(self) -> None:
        self._end(abrupt_error(self.stage_name))

    def _registered(self) -> None:
        if not self.started and len(self.consumers) >= self.start_after:
            self.started = True
            self.cb.invoke(None)


class _HubConsumerStage(GraphStageWithMaterializedValue[SourceShape[Any], Any]):
    def __init__(self, hub: Any, logic_cls: Any, name: str) -> None:
        self.hub = hub
        self.logic_cls = logic_cls
        self.name = name
        self.shape = SourceShape(Outlet(f"{name}.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        return self.logic_cls(self.shape, self.hub), NotUsed


class _HubConsumerLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], hub: Any) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.hub = hub
        self.wake_cb = self.get_async_callback(self.on_wake)
        self.registered = False

    def pre_start(self) -> None:
        self.registered = True
        self.hub.register(self)
        self.deliver()

    def on_wake(self, _: Any) -> None:
        self.deliver()

    def on_pull(self) -> None:
        self.deliver()

    def deliver(self) -> None:
        raise NotImplementedError  # pragma: no cover - both consumers override

    def fail_with(self, t: BaseException) -> None:
        """Fail this consumer with the hub's failure ``t``. When the hub's stream was
        aborted (its materializer shut down; this consumer may run on another one), the
        consumer fails with an ``AbruptTerminationError`` saying so, which, like every
        materializer shutdown, is not reported as an unobserved failure."""
        if not isinstance(t, AbruptTerminationError):
            self.fail_stage(t)
            return
        exc = AbruptTerminationError(
            f"[{self.stage_name}] the hub's stream ({self.hub.stage_name}) was aborted: "
            "its materializer shut down"
        )
        exc.__cause__ = t
        self.fail_stage(exc)
        observed(exc)  # a shutdown, not a stream failure: never logged as unobserved

    def post_stop(self) -> None:
        if self.registered:
            self.registered = False
            self.hub.unregister(self)


# ---------------------------------------------------------------------------------------------
# BroadcastHub
# ---------------------------------------------------------------------------------------------


class _BroadcastHubStage(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    name = "broadcast_hub"

    def __init__(self, size: int, start_after: int) -> None:
        self.size = size
        self.start_after = start_after
        self.shape = SinkShape(Inlet("BroadcastHub.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        logic = _BroadcastHubLogic(self.shape, self.start_after, self.size)
        stage = _HubConsumerStage(logic, _BroadcastConsumerLogic, "broadcast_hub_consumer")
        from .._dsl.blueprints import Source  # the materialized value is a Source

        return logic, Source(AtomicModule(stage))


class _BroadcastHubLogic(_FanOutHubLogic):
    def __init__(self, shape: SinkShape[Any], start_after: int, size: int) -> None:
        super().__init__(shape, start_after, size)
        self.buf: deque[Any] = deque()
        self.base = 0  # stream offset of buf[0]
        self.waiting: set[Any] = set()

    def maybe_pull(self) -> None:
        if self.started and len(self.buf) < self.size and not self._stopped:
            self.try_pull(self.in_)

    def on_push(self) -> None:
        self.buf.append(self.grab(self.in_))
        waiting, self.waiting = self.waiting, set()
        for c in waiting:
            c.wake_cb.invoke(None)
        self.maybe_pull()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.buf.clear()
        super().on_upstream_failure(exc)

    # -- consumer side (called from consumers' islands, same loop) -----------------------------
    def register(self, c: _BroadcastConsumerLogic) -> None:
        c.offset = self.base
        self.consumers[c] = None
        self._registered()

    def unregister(self, c: _BroadcastConsumerLogic) -> None:
        self.consumers.pop(c, None)
        self.waiting.discard(c)
        self.trim()

    def trim(self) -> None:
        if not self.consumers:
            return
        low = min(c.offset for c in self.consumers)
        if low > self.base:
            buf = self.buf
            for _ in range(low - self.base):
                buf.popleft()
            self.base = low
            self.cb.invoke(None)


class _BroadcastConsumerLogic(_HubConsumerLogic):
    offset = 0

    def deliver(self) -> None:
        hub: _BroadcastHubLogic = self.hub
        t = hub.terminal
        if t is not None and t is not _CLOSED:
            self.fail_with(t)
            return
        if not self.is_available(self.out):
            return
        idx = self.offset - hub.base
        if idx < len(hub.buf):
            self.offset += 1
            self.push(self.out, hub.buf[idx])
            if idx == 0:
                hub.trim()
        elif t is _CLOSED:
            self.complete_stage()
        else:
            hub.waiting.add(self)


# ---------------------------------------------------------------------------------------------
# PartitionHub
# ---------------------------------------------------------------------------------------------
class ConsumerInfo:
    """What a stateful ``PartitionHub`` routing function knows about the consumers."""

    __slots__ = ("_hub",)

    def __init__(self, hub: _PartitionHubLogic) -> None:
        self._hub = hub

    @property
    def consumer_ids(self) -> list[int]:
        """The ids of the attached consumers, in attach order."""
        return [c.consumer_id for c in self._hub.consumers]

    def consumer_id_by_idx(self, i: int) -> int:
        """The id of the ``i``-th attached consumer."""
        return self.consumer_ids[i]

    def queue_size(self, consumer_id: int) -> int:
        """How many elements wait for consumer ``consumer_id`` (0 if unknown)."""
        for c in self._hub.consumers:
            if c.consumer_id == consumer_id:
                return len(c.queue)
        return 0

    @property
    def size(self) -> int:
        """How many consumers are attached."""
        return len(self._hub.consumers)


def partition_index(value: Any, who: str, what: str, elem: Any) -> int:
    """``value``, the ``what`` (index or id) that ``who`` returned for ``elem``, as an int;
    ``TypeError`` naming the hub, the value and the element when it is not one (a bool
    is not taken for 0 / 1)."""
    try:
        if isinstance(value, bool):
            raise TypeError
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"[partition_hub] the {who} returned {type(value).__name__} {value!r} for "
            f"element {elem!r}: a consumer {what} must be an int (negative to drop the "
            "element)"
        ) from None


class _PartitionHubStage(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    name = "partition_hub"

    def __init__(self, factory: Any, start_after: int, size: int) -> None:
        self.factory = factory
        self.start_after = start_after
        self.size = size
        self.shape = SinkShape(Inlet("PartitionHub.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        logic = _PartitionHubLogic(self.shape, self.start_after, self.size, self.factory())
        stage = _HubConsumerStage(logic, _PartitionConsumerLogic, "partition_hub_consumer")
        from .._dsl.blueprints import Source  # the materialized value is a Source

        return logic, Source(AtomicModule(stage))


class _PartitionHubLogic(_FanOutHubLogic):
    _supervised = False

    def __init__(self, shape: SinkShape[Any], start_after: int, size: int, route: Any) -> None:
        super().__init__(shape, start_after, size)
        self.route = route
        self.info = ConsumerInfo(self)
        self.queued = 0
        self.held: list[Any] = []  # an element waiting for a consumer to attach
        self.next_id = 0

    def maybe_pull(self) -> None:
        if self.held and self.consumers and self.terminal is None:
            self._route(self.held.pop())
        if self.started and self.queued < self.size and not self.held and not self._stopped:
            self.try_pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if not self.consumers:
            self.held.append(x)
            return
        self._route(x)
        self.maybe_pull()

    def _route(self, x: Any) -> None:
        cid = partition_index(self.route(self.info, x), "routing function", "id", x)
        if cid < 0:
            return  # a negative id drops the element (as in Akka)
        for c in self.consumers:
            if c.consumer_id == cid:
                c.queue.append(x)
                self.queued += 1
                c.wake_cb.invoke(None)
                return
        # Akka: IllegalArgumentException("Invalid stream identifier"), failing the hub.
        raise ValueError(
            f"[partition_hub] Invalid stream identifier: the routing function returned "
            f"id {cid} for element {x!r}, and no attached consumer has that id "
            f"(attached: {self.info.consumer_ids})"
        )

    def on_upstream_finish(self) -> None:
        self.held.clear()
        super().on_upstream_finish()

    # -- consumer side -------------------------------------------------------------------------
    def register(self, c: _PartitionConsumerLogic) -> None:
        c.consumer_id = self.next_id
        self.next_id += 1
        self.consumers[c] = None
        self._registered()
        if self.held:
            self.cb.invoke(None)

    def unregister(self, c: _PartitionConsumerLogic) -> None:
        if self.consumers.pop(c, _CLOSED) is None:
            self.queued -= len(c.queue)
            c.queue.clear()
            self.cb.invoke(None)

    def taken(self) -> None:
        self.queued -= 1
        if not self._stopped and not self.has_been_pulled(self.in_):
            self.cb.invoke(None)


class _PartitionConsumerLogic(_HubConsumerLogic):
    consumer_id = -1

    def __init__(self, shape: SourceShape[Any], hub: Any) -> None:
        super().__init__(shape, hub)
        self.queue: deque[Any] = deque()

    def deliver(self) -> None:
        hub: _PartitionHubLogic = self.hub
        t = hub.terminal
        if t is not None and t is not _CLOSED:
            self.fail_with(t)
            return
        if not self.is_available(self.out):
            return
        if self.queue:
            self.push(self.out, self.queue.popleft())
            hub.taken()
        elif t is _CLOSED:
            self.complete_stage()
