"""Queues: push elements into a stream (``Source.queue``) and pull them out of one
(``Sink.queue``) from ordinary asyncio code.

An element crosses between the caller and the stage only in the caller's own task turn,
as ``asyncio.Queue`` does. ``offer`` decides at once (in the caller's turn) whether its
element is in, dropped or must wait; an offer that has to wait (the buffer is full, or
``Source.queue(0)`` has no demand) is woken when the stage reserved room for it and
hands its element over when it resumes. An element accepted while downstream waits is
pushed through an async callback, which the interpreter runs inline on the caller's
stack when the stream's island is idle (fast path: no future is created and no
event-loop round trip is paid). Symmetrically, a waiting ``pull`` is woken when an
element arrives and takes it from the buffer when it resumes.

Hence cancellation (``task.cancel()``, ``asyncio.wait_for`` timing out) always
propagates and never loses or duplicates an element: a cancelled ``offer`` raises
``CancelledError`` and its element is not in the stream (a waiting offer is withdrawn,
a woken one releases its reserved room to the next waiting offer), so a
``TimeoutError`` from ``wait_for(queue.offer(x), t)`` means ``x`` is not in the stream
and retrying it cannot duplicate it; a cancelled ``pull`` raises ``CancelledError``
having taken nothing, the element stays first in line for the next pull.
"""

from __future__ import annotations

import asyncio
import enum
from collections import deque
from typing import Any

from .._errors import BufferOverflowError, QueueConcurrencyError, SubscriptionWithCancelError
from .._impl.unobserved import observed
from .._keep import Done
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    abrupt_error,
)
from .._stage.shapes import Inlet, Outlet, SinkShape, SourceShape
from .buffers import OverflowStrategy
from .sinks import new_promise

__all__ = [
    "QueueOfferResult",
    "SourceQueue",
    "SinkQueue",
    "QueueSource",
    "QueueSink",
    "QueueConcurrencyError",
]

_CLOSED: Any = object()  # terminal marker: completed or cancelled normally


class QueueOfferResult(enum.Enum):
    """The outcome of ``SourceQueue.offer``."""

    enqueued = "enqueued"
    """The element entered the buffer (or went straight downstream)."""
    dropped = "dropped"
    """The element was refused: by the overflow strategy (``drop_new``), or because
    ``complete()`` was called and the buffered elements are still being emitted."""
    queue_closed = "queue_closed"
    """The stream completed (or was cancelled) before the element got in."""

    def __repr__(self) -> str:
        return f"QueueOfferResult.{self.value}"


def _is_normal(cause: BaseException | None) -> bool:
    return cause is None or isinstance(cause, SubscriptionWithCancelError)


# ---------------------------------------------------------------------------------------------
# Source.queue
# ---------------------------------------------------------------------------------------------
_GRANTED: Any = object()  # a waiting offer's wake-up: room is reserved for its element


class _Offer:
    __slots__ = ("elem", "future", "granted", "done")

    def __init__(self, elem: Any) -> None:
        self.elem = elem
        self.future: asyncio.Future[Any] | None = None
        self.granted = False  # room reserved, the element not handed over yet
        self.done = False  # settled with its final result (the element did not get in)


class SourceQueue:
    """The materialized value of ``Source.queue``: offer elements, complete or fail.

    All methods are called from tasks on the stream's event loop.
    """

    __slots__ = (
        "_logic",
        "_control_cb",
        "_kick_cb",
        "_completion",
        "_terminal",
        "_completing",
    )

    def __init__(self, logic: _QueueSourceLogic, completion: asyncio.Future[Any]) -> None:
        self._logic = logic
        self._control_cb = logic.get_async_callback(logic.on_control)
        self._kick_cb = logic.get_async_callback(logic.on_kick)
        self._completion = completion
        self._terminal: Any = None  # None while open; _CLOSED or the failure afterwards
        self._completing = False

    async def offer(self, elem: Any) -> QueueOfferResult:
        """Offer ``elem`` to the stream.

        Returns ``enqueued`` once the element is in the buffer (or on its way to the
        downstream demand), ``dropped`` when the overflow strategy refused it or
        ``complete()`` was called (while buffered elements are still being emitted, as
        Akka), ``queue_closed`` once the stream completed or was cancelled. With
        ``OverflowStrategy.backpressure`` it waits while the buffer is full (waiting
        offers are served in the order they were made). Raises the stream's failure if
        it failed (also ``BufferOverflowError`` under ``OverflowStrategy.fail``), and
        ``TypeError`` for ``None``.

        The element enters the stream only in the offering task's own turn: at once if
        there is room, else the stage reserves room for the waiting offer and wakes it,
        and the offer hands its element over when it resumes. Cancellation
        (``task.cancel()``, ``asyncio.wait_for`` timing out) always raises
        ``CancelledError`` and the element is then never in the stream: a waiting offer
        is withdrawn (it no longer counts against ``max_concurrent_offers`` and no
        longer holds up ``complete()``), a woken one releases its reserved room to the
        next waiting offer (also when the cancellation arrives in the same event-loop
        turn as the wake-up). So a ``TimeoutError`` from ``wait_for(queue.offer(x), t)``
        means ``x`` is not in the stream, and a retry neither loses nor duplicates it.
        """
        if elem is None:
            raise TypeError("Source.queue: cannot offer None (elements must not be None)")
        t = self._terminal
        if t is not None:
            if t is _CLOSED:
                return QueueOfferResult.queue_closed
            raise t
        if self._completing:
            return QueueOfferResult.dropped
        # Decided now, in this task's turn: in (enqueued), out (dropped), or waits.
        logic = self._logic
        buf = logic.buf
        if not logic.pending and not logic.reserved and len(buf) < logic.size + logic.demand:
            # Room, nobody waiting first: ``accept``'s first case, spelled out (the path
            # of every offer into a stream that keeps up).
            buf.append(elem)
            if logic.demand:
                logic.kick()
            return QueueOfferResult.enqueued
        op = _Offer(elem)
        result = logic.accept(op)
        if result is not None:
            return result
        fut: asyncio.Future[Any] = self._logic.materializer.loop.create_future()
        op.future = fut
        try:
            r = await fut
        except asyncio.CancelledError:
            if op.granted:
                self._release(op)  # woken, element not handed over: the room goes on
            elif not op.done:
                self._withdraw(op)  # still waiting: it leaves the line
            raise
        if r is _GRANTED:
            return self._commit(op)
        return r  # type: ignore[no-any-return]

    def complete(self) -> None:
        """Complete the stream once the buffered (and waiting) elements were emitted;
        later offers return ``dropped`` while those are emitted (as Akka's
        ``QueueSource``), ``queue_closed`` once the stream completed."""
        if self._terminal is None and not self._completing:
            self._completing = True
            self._control_cb.invoke(("complete", None))

    def fail(self, exc: BaseException) -> None:
        """Fail the stream with ``exc`` at once (buffered elements are dropped)."""
        if self._terminal is None:
            self._terminal = exc
            self._control_cb.invoke(("fail", exc))

    async def watch_completion(self) -> Any:
        """Wait until the stream stopped: ``Done``, or raises the stream's failure.

        A failure downstream (which cancels the queue's stage with it as the cause) is
        raised here too, as by ``offer``; Akka's ``watchCompletion`` completes with
        ``Done`` on any cancellation, so only its later offers fail.
        """
        return await asyncio.shield(self._completion)

    def _commit(self, op: _Offer) -> QueueOfferResult:
        # A woken offer resumed normally: its element goes into the room reserved for it.
        op.granted = False
        t = self._terminal
        if t is not None:  # the stream stopped in between: the element did not get in
            if t is _CLOSED:
                return QueueOfferResult.queue_closed
            raise t
        logic = self._logic
        logic.reserved -= 1
        logic.buf.append(op.elem)
        if logic.pending:
            logic._grant()  # an offer made meanwhile waited behind this one
        if logic.demand:
            logic.kick()
        return QueueOfferResult.enqueued

    def _release(self, op: _Offer) -> None:
        op.granted = False
        if self._terminal is None:
            self._logic.reserved -= 1
            self._control_cb.invoke(("release", None))

    def _withdraw(self, op: _Offer) -> None:
        pending = self._logic.pending
        try:
            pending.remove(op)
        except ValueError:
            pass  # skipped by the stage already (its future was cancelled)
        if self._terminal is None:
            self._control_cb.invoke(("withdraw", None))

    def _grant(self, op: _Offer) -> bool:
        fut = op.future
        if fut is None or fut.done():
            return False  # its task was cancelled: it withdraws itself
        op.granted = True
        fut.set_result(_GRANTED)
        return True

    def _settle(
        self, op: _Offer, result: QueueOfferResult | None, error: BaseException | None
    ) -> None:
        op.done = True
        fut = op.future
        if fut is not None and not fut.done():
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(result)

    def _closed(self, terminal: Any) -> None:
        if self._terminal is None:
            self._terminal = terminal
        t = self._terminal
        if t is not _CLOSED:
            observed(t)  # offer() raises it: not reported as an unobserved failure
        pending = self._logic.pending
        while pending:
            op = pending.popleft()
            if t is _CLOSED:
                self._settle(op, QueueOfferResult.queue_closed, None)
            else:
                self._settle(op, None, t)
        c = self._completion
        if not c.done():
            if t is _CLOSED:
                c.set_result(Done)
            else:
                c.set_exception(t)


class QueueSource(GraphStageWithMaterializedValue[SourceShape[Any], SourceQueue]):
    """``Source.queue(buffer_size, overflow_strategy)``: a source fed by ``SourceQueue.offer``.

    Emits when there is demand and the buffer holds an element (an offer meeting demand
    with an empty buffer goes straight downstream). Backpressures never: offers are
    settled by the overflow strategy when the buffer is full (``backpressure`` makes
    ``offer`` wait; at most ``max_concurrent_offers`` offers may wait, a further one
    raises ``QueueConcurrencyError``). With ``buffer_size`` 0 every strategy lets up to
    ``max_concurrent_offers`` offers wait for demand; beyond that ``drop_head`` /
    ``drop_buffer`` drop the oldest waiting offer, ``drop_tail`` / ``drop_new`` the new
    one, ``fail`` fails the stream (as Akka). Completes when ``complete()`` was called
    and the buffered and pending elements were emitted. Fails when ``fail(exc)`` is
    called, or on overflow with ``OverflowStrategy.fail``. Cancels: downstream
    cancellation closes the queue (later offers return ``queue_closed``).

    A waiting offer is woken once room is reserved for it and hands its element over
    when it resumes; a cancelled ``offer`` always raises ``CancelledError`` and its
    element is never in the stream (see ``SourceQueue.offer``).
    """

    name = "queue_source"

    def __init__(
        self,
        buffer_size: int,
        overflow_strategy: OverflowStrategy = OverflowStrategy.backpressure,
        max_concurrent_offers: int = 1,
    ) -> None:
        if max_concurrent_offers < 1:
            raise ValueError(
                f"Source.queue: max_concurrent_offers must be >= 1, got {max_concurrent_offers}"
            )
        if not isinstance(overflow_strategy, OverflowStrategy):
            raise TypeError(
                f"overflow_strategy must be an OverflowStrategy, got {overflow_strategy!r}"
            )
        if buffer_size < 0:
            raise ValueError(f"Source.queue: buffer_size must be >= 0, got {buffer_size}")
        self.buffer_size = buffer_size
        self.strategy = overflow_strategy
        self.max_concurrent_offers = max_concurrent_offers
        self.shape = SourceShape(Outlet("QueueSource.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, SourceQueue]:
        logic = _QueueSourceLogic(
            self.shape, self.buffer_size, self.strategy, self.max_concurrent_offers
        )
        queue = SourceQueue(logic, new_promise(asyncio.get_running_loop()))
        logic.queue = queue
        return logic, queue


class _QueueSourceLogic(GraphStageLogic, OutHandler):
    # The state is shared with ``SourceQueue``, whose tasks run on the same loop while the
    # stage's handlers are not running: ``accept`` (an offer's decision), ``_commit`` (a
    # woken offer's element) and the release / withdrawal of a cancelled offer change it
    # in the offering task's own turn; pushes happen in the stage (``on_kick``).
    def __init__(
        self, shape: SourceShape[Any], size: int, strategy: OverflowStrategy, max_offers: int
    ) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.size = size
        self.strategy = strategy
        self.max_offers = max_offers
        # Elements accepted and not pushed yet: at most ``size``, plus one for a pending
        # demand (pushed by ``on_kick``); the room of granted offers is kept free.
        self.buf: deque[Any] = deque()
        self.pending: deque[_Offer] = deque()  # offers waiting for room, in order
        self.reserved = 0  # rooms reserved for woken offers not handed over yet
        self.demand = False  # downstream pulled and nothing was pushed yet
        self.completing = False
        self.queue: SourceQueue = None  # type: ignore[assignment]
        self._on_kick = self.on_kick  # bound once: ``kick`` hands it to the island

    # -- from SourceQueue.offer (the offering task's turn) ------------------------------------
    def accept(self, op: _Offer) -> QueueOfferResult | None:
        """Decide ``op`` now: ``enqueued``, ``dropped``, ``None`` (it waits), or raise."""
        buf = self.buf
        pending = self.pending
        if not pending and not self.reserved and len(buf) < self.size + self.demand:
            buf.append(op.elem)
            if self.demand:
                self.kick()
            return QueueOfferResult.enqueued
        # Full (or offers waiting before this one: they go first).
        s = self.strategy
        room = len(pending) < self.max_offers
        if not room and any(p.future is not None and p.future.done() for p in pending):
            # Offers cancelled in this turn (withdrawn when their tasks resume) do not count.
            room = sum(p.future is None or not p.future.done() for p in pending) < self.max_offers
        if room and (s is OverflowStrategy.backpressure or self.size == 0):
            pending.append(op)  # waits for room (or, without a buffer, for demand)
            return None
        if s is OverflowStrategy.backpressure:
            raise self._too_many()
        if self.size == 0 and s in (OverflowStrategy.drop_head, OverflowStrategy.drop_buffer):
            if pending:
                self.queue._settle(pending.popleft(), QueueOfferResult.dropped, None)
            pending.append(op)
            return None
        if s is OverflowStrategy.drop_new or (self.size == 0 and s is not OverflowStrategy.fail):
            return QueueOfferResult.dropped
        # A buffer (no offer waits under these strategies), full: its first element is
        # on its way to a pending demand, if any, and is kept.
        keep = 1 if self.demand else 0
        if s is OverflowStrategy.drop_head:
            del buf[keep]
        elif s is OverflowStrategy.drop_tail:
            buf.pop()
        elif s is OverflowStrategy.drop_buffer:
            while len(buf) > keep:
                buf.pop()
        else:
            exc = BufferOverflowError(
                f"[{self.stage_name}] Source.queue buffer overflow (max capacity was {self.size})"
            )
            self.queue._closed(exc)
            self.queue._control_cb.invoke(("fail", exc))
            raise exc
        buf.append(op.elem)
        return QueueOfferResult.enqueued

    def _too_many(self) -> QueueConcurrencyError:
        return QueueConcurrencyError(
            f"[{self.stage_name}] too many concurrent offers (max_concurrent_offers="
            f"{self.max_offers}): wait for a previous offer to be resolved before "
            "offering again"
        )

    def kick(self) -> None:
        """An element was accepted while downstream waits: push it from inside the stage
        (``on_kick``), at once on the caller's stack when the island is parked with
        nothing of its own waiting (``Island.signal``'s direct run), else soon."""
        island = self._island
        if island is not None and not self._stopped:
            # ``AsyncCallback.invoke`` of ``on_kick``, without its frame.
            island.signal(self, self._on_kick, None)
        else:
            self.queue._kick_cb.invoke(None)

    # -- callbacks ----------------------------------------------------------------------------
    def on_kick(self, _: Any) -> None:
        # Elements were accepted while downstream waited: the first one goes down.
        buf = self.buf
        if self.demand and buf:
            self.demand = False
            self.push(self.out, buf.popleft())
            if self.completing:
                self._maybe_complete()

    def on_control(self, cmd: tuple[str, Any]) -> None:
        kind, arg = cmd
        if kind == "complete":
            self.completing = True
            self._maybe_complete()
        elif kind == "release":
            # A woken offer was cancelled: its room goes to the next waiting offer.
            self._grant()
            self._maybe_complete()
        elif kind == "withdraw":
            # A waiting offer was cancelled: it no longer holds up the next ones, nor
            # completion.
            self._grant()
            self._maybe_complete()
        else:
            self.queue._closed(arg)
            self.fail_stage(arg)

    def _grant(self) -> None:
        # Reserve room for waiting offers, in order, and wake them: each hands its
        # element over when it resumes (``SourceQueue._commit``).
        pending = self.pending
        q = self.queue
        cap = self.size + self.demand
        while pending and len(self.buf) + self.reserved < cap:
            if q._grant(pending.popleft()):
                self.reserved += 1

    def _maybe_complete(self) -> None:
        if self.completing and not self.buf and not self.reserved and not self.pending:
            self.queue._closed(_CLOSED)
            self.complete_stage()

    # -- port handlers ------------------------------------------------------------------------
    def on_pull(self) -> None:
        buf = self.buf
        if buf:
            self.push(self.out, buf.popleft())
        else:
            self.demand = True
        if self.pending:
            self._grant()
        if self.completing:
            self._maybe_complete()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.queue._closed(_CLOSED if _is_normal(cause) else cause)
        self.cancel_stage(cause)

    def _on_abort(self, exc: BaseException) -> None:
        self.queue._closed(exc)

    def post_stop(self) -> None:
        q = self.queue
        self.buf.clear()
        self.reserved = 0
        q._closed(abrupt_error(self.stage_name) if q._terminal is None else q._terminal)


# ---------------------------------------------------------------------------------------------
# Sink.queue
# ---------------------------------------------------------------------------------------------
_WOKEN: Any = object()  # a waiting pull's wake-up: an element is in the buffer for it


class _Pull:
    __slots__ = ("future", "woken")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.woken = False  # woken for an element, not resumed yet


class SinkQueue:
    """The materialized value of ``Sink.queue``: pull elements one at a time.

    ``await pull()`` returns the next element, or ``None`` once the stream completed;
    it raises the stream's failure. The idiom to consume the whole stream is::

        queue = source.run_with(Sink.queue())
        async for x in queue:
            ...

    Leaving the loop early (``break``) does not cancel the stream: call ``cancel()``.
    """

    __slots__ = (
        "_logic",
        "_demand_cb",
        "_cancel_cb",
        "_buf",
        "_terminal",
        "_waiting",
        "_woken",
        "_max_pulls",
    )

    def __init__(self, logic: _QueueSinkLogic, max_pulls: int = 1) -> None:
        self._logic = logic
        self._max_pulls = max_pulls
        self._demand_cb = logic.get_async_callback(logic.on_demand)
        self._cancel_cb = logic.get_async_callback(logic.on_cancel)
        # Elements received and not taken yet, in order: the first ``_woken`` are
        # promised to the woken pulls (which take them when they resume).
        self._buf: deque[Any] = deque()
        self._terminal: Any = None  # None while running; _CLOSED or the failure afterwards
        self._waiting: deque[_Pull] = deque()  # pulls waiting for an element, in order
        self._woken = 0

    async def pull(self) -> Any:
        """The next element; ``None`` when the stream completed (or was cancelled).

        Raises the stream's failure (after the elements received before it), and
        ``QueueConcurrencyError`` when ``max_concurrent_pulls`` pulls already wait.

        An element leaves the queue only in the pulling task's own turn: a waiting pull
        is woken when an element arrives and takes it when it resumes. A cancelled pull
        (``task.cancel()``, ``asyncio.wait_for`` timing out) always raises
        ``CancelledError`` and takes nothing, also when the cancellation arrives in the
        same event-loop turn as the wake-up: the element stays first in the queue for
        the next pull (or the next waiting one), before the end of the stream.
        """
        buf = self._buf
        if buf and not self._woken:
            return self._take()
        t = self._terminal
        if t is not None and not buf:
            if t is _CLOSED:
                return None
            raise t
        waiting = self._waiting
        if len(waiting) >= self._max_pulls:
            waiting_live = sum(not w.future.done() for w in waiting)
            if waiting_live >= self._max_pulls:
                raise QueueConcurrencyError(
                    f"Sink.queue: too many concurrent pulls (max_concurrent_pulls="
                    f"{self._max_pulls}): wait for a previous pull to be resolved before "
                    "pulling again"
                )
        op = _Pull(self._logic.materializer.loop.create_future())
        waiting.append(op)
        self._dispatch()  # woken at once if an element is not promised yet
        try:
            r = await op.future
        except asyncio.CancelledError:
            if op.woken:
                # Woken, nothing taken: the element goes to the next pull (still first).
                op.woken = False
                self._woken -= 1
                self._dispatch()
            else:
                try:
                    waiting.remove(op)
                except ValueError:
                    pass  # settled with the end already
            raise
        if r is _WOKEN:
            op.woken = False
            self._woken -= 1
            if buf:
                return self._take()
            t = self._terminal  # cancel() discarded the elements
            if t is not _CLOSED:
                raise t
            return None
        return r

    def _take(self) -> Any:
        x = self._buf.popleft()
        if self._terminal is None:
            self._demand_cb.invoke(None)
        elif not self._buf:
            self._dispatch()  # the last element was taken: the end for the others
        return x

    def cancel(self) -> None:
        """Cancel the stream; later pulls return ``None``."""
        if self._terminal is None:
            self._terminal = _CLOSED
            self._buf.clear()
            self._cancel_cb.invoke(None)
            self._dispatch()

    def __aiter__(self) -> SinkQueue:
        return self

    async def __anext__(self) -> Any:
        x = await self.pull()
        if x is None:
            raise StopAsyncIteration
        return x

    def _dispatch(self) -> None:
        # Wake waiting pulls, in order, for the elements not promised yet; once the
        # stream ended and every element was taken, the others get the end.
        waiting = self._waiting
        buf = self._buf
        while waiting and self._woken < len(buf):
            op = waiting.popleft()
            if not op.future.done():  # else its task was cancelled: it left
                op.woken = True
                self._woken += 1
                op.future.set_result(_WOKEN)
        t = self._terminal
        if t is not None and not buf:
            while waiting:
                fut = waiting.popleft().future
                if not fut.done():
                    if t is _CLOSED:
                        fut.set_result(None)
                    else:
                        fut.set_exception(t)

    def _end(self, terminal: Any) -> None:
        if self._terminal is None:
            self._terminal = terminal
        t = self._terminal
        if t is not _CLOSED:
            observed(t)  # pull() raises it: not reported as an unobserved failure
        self._dispatch()


class QueueSink(GraphStageWithMaterializedValue[SinkShape[Any], SinkQueue]):
    """``Sink.queue()``: elements are pulled with ``SinkQueue.pull`` (or ``async for``).

    Prefetches up to the input buffer size (``Attributes.input_buffer``, default 16).
    Backpressures when the prefetch buffer is full. Completes: ``pull`` returns ``None``
    once upstream completed and the buffer is empty. Fails: ``pull`` raises upstream's
    failure after the buffered elements. Cancels when ``cancel()`` is called.

    An element leaves the buffer only when a pull takes it in its own task's turn, so a
    cancelled ``pull`` takes nothing and loses no element (see ``SinkQueue.pull``).
    """

    name = "queue_sink"

    def __init__(self, max_concurrent_pulls: int = 1) -> None:
        if max_concurrent_pulls < 1:
            raise ValueError(
                f"Sink.queue: max_concurrent_pulls must be >= 1, got {max_concurrent_pulls}"
            )
        self.max_concurrent_pulls = max_concurrent_pulls
        self.shape = SinkShape(Inlet("QueueSink.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, SinkQueue]:
        prefetch = max(1, int(attributes.get("input_buffer") or 16))
        logic = _QueueSinkLogic(self.shape, prefetch)
        queue = SinkQueue(logic, self.max_concurrent_pulls)
        logic.queue = queue
        return logic, queue


class _QueueSinkLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], prefetch: int) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.set_handler(self.in_, self)
        self.prefetch = prefetch
        self.queue: SinkQueue = None  # type: ignore[assignment]

    def pre_start(self) -> None:
        self.pull(self.in_)

    def _more(self) -> None:
        if len(self.queue._buf) < self.prefetch:
            self.try_pull(self.in_)

    def on_demand(self, _: Any) -> None:
        self._more()

    def on_cancel(self, _: Any) -> None:
        self.complete_stage()

    def on_push(self) -> None:
        q = self.queue
        x = self.grab(self.in_)
        if q._terminal is not None:
            return  # cancel() was called: elements are discarded
        q._buf.append(x)
        q._dispatch()
        self._more()

    def on_upstream_finish(self) -> None:
        self.queue._end(_CLOSED)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.queue._end(exc)
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self.queue._end(exc)

    def post_stop(self) -> None:
        self.queue._end(abrupt_error(self.stage_name))
