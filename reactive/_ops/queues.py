"""Queues: push elements into a stream (``Source.queue``) and pull them out of one
(``Sink.queue``) from ordinary asyncio code.

Both materialized values talk to their stage through async callbacks. When the stream's
island is idle the interpreter runs a callback inline, on the caller's stack, so an
``offer`` to an idle stream with demand pushes the element through the fused chain
before ``offer`` returns and the coroutine completes without suspending (fast path: no
future is created and no event-loop round trip is paid). Only when the element cannot
be settled at once (the island is busy, or the buffer is full under ``backpressure``)
does ``offer`` create a future and wait.

Cancellation (e.g. ``asyncio.wait_for`` timing out) never loses or duplicates an
element. A cancelled ``pull`` raises ``CancelledError``; if the stage had already handed
it an element, that element goes back to the front of the queue for the next pull. A
cancelled ``offer`` whose element the stage had not yet taken is withdrawn and raises
``CancelledError``; one the stage had already settled returns its result instead of
raising (``wait_for`` then returns that result, not ``TimeoutError``). So a
``TimeoutError`` from ``wait_for(queue.offer(x), t)`` always means ``x`` is not in the
stream, and retrying it cannot duplicate it.
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
class _Offer:
    __slots__ = ("elem", "done", "result", "error", "future", "cancelled")

    def __init__(self, elem: Any) -> None:
        self.elem = elem
        self.done = False
        self.result: QueueOfferResult | None = None
        self.error: BaseException | None = None
        self.future: asyncio.Future[QueueOfferResult] | None = None
        self.cancelled = False


class SourceQueue:
    """The materialized value of ``Source.queue``: offer elements, complete or fail.

    All methods are called from tasks on the stream's event loop.
    """

    __slots__ = (
        "_logic",
        "_offer_cb",
        "_control_cb",
        "_completion",
        "_waiting",
        "_terminal",
        "_completing",
    )

    def __init__(self, logic: _QueueSourceLogic, completion: asyncio.Future[Any]) -> None:
        self._logic = logic
        self._offer_cb = logic.get_async_callback(logic.on_offer)
        self._control_cb = logic.get_async_callback(logic.on_control)
        self._completion = completion
        self._waiting: set[_Offer] = set()
        self._terminal: Any = None  # None while open; _CLOSED or the failure afterwards
        self._completing = False

    async def offer(self, elem: Any) -> QueueOfferResult:
        """Offer ``elem`` to the stream.

        Returns ``enqueued`` once the element is in the buffer (or was pushed
        downstream), ``dropped`` when the overflow strategy refused it or ``complete()``
        was called while buffered elements are still being emitted (as Akka),
        ``queue_closed`` once the stream completed or was cancelled. With
        ``OverflowStrategy.backpressure`` it waits while the buffer is full (pending
        offers are served in order). Raises the stream's failure if it failed (also
        ``BufferOverflowError`` under ``OverflowStrategy.fail``), and ``TypeError`` for
        ``None``.

        Cancellation (``task.cancel()``, ``asyncio.wait_for`` timing out): an offer the
        stage has not taken yet is withdrawn (its element never enters the stream, it
        no longer counts against ``max_concurrent_offers`` and no longer holds up
        ``complete()``) and raises ``CancelledError``. An offer the stage already
        settled when the cancellation arrives (in the same event-loop turn) returns its
        result (or raises its error) instead: its element's fate is decided and must
        be known. So ``CancelledError`` / ``TimeoutError`` from an offer always means
        the element is not in the stream, and a retry neither loses nor duplicates it
        (``asyncio.wait_for`` returns the result when the offer settled together with
        the timeout). The cancellation request is then consumed by the offer.
        """
        if elem is None:
            raise TypeError("Source.queue: cannot offer None (elements must not be None)")
        t = self._terminal
        if t is not None:
            if t is _CLOSED:
                return QueueOfferResult.queue_closed
            raise t
        op = _Offer(elem)
        # Fast path: an idle island runs the callback inline and settles the offer now.
        self._offer_cb.invoke(op)
        if not op.done:
            fut: asyncio.Future[QueueOfferResult] = self._logic.materializer.loop.create_future()
            op.future = fut
            self._waiting.add(op)
            try:
                return await fut
            except asyncio.CancelledError:
                if not op.done:
                    # Not taken yet: withdrawn (the stage skips it), the caller is told so.
                    op.cancelled = True
                    self._waiting.discard(op)
                    if self._terminal is None:
                        self._control_cb.invoke(("withdraw", op))
                    raise
                # Settled before the cancellation reached this task: the element's fate
                # is decided, so report it instead of raising (no loss, no duplicate).
        if op.error is not None:
            raise op.error
        assert op.result is not None
        return op.result

    def complete(self) -> None:
        """Complete the stream once the buffered (and pending) elements were emitted;
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
        """Wait until the stream stopped: ``Done``, or raises the stream's failure."""
        return await asyncio.shield(self._completion)

    def _settle(
        self, op: _Offer, result: QueueOfferResult | None, error: BaseException | None
    ) -> None:
        op.done = True
        op.result = result
        op.error = error
        fut = op.future
        if fut is not None:
            self._waiting.discard(op)
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(result)  # type: ignore[arg-type]

    def _closed(self, terminal: Any) -> None:
        if self._terminal is None:
            self._terminal = terminal
        t = self._terminal
        if t is not _CLOSED:
            observed(t)  # offer() raises it: not reported as an unobserved failure
        for op in list(self._waiting):
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

    A cancelled ``offer`` raises ``CancelledError`` only if its element was withdrawn
    (never in the stream, no longer pending, no longer delaying completion); an offer
    settled before its cancellation arrived returns its result (see
    ``SourceQueue.offer``).
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
    def __init__(
        self, shape: SourceShape[Any], size: int, strategy: OverflowStrategy, max_offers: int
    ) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.size = size
        self.strategy = strategy
        self.max_offers = max_offers
        self.buf: deque[Any] = deque()
        self.pending: deque[_Offer] = deque()  # offers waiting for room (backpressure)
        self.completing = False
        self.queue: SourceQueue = None  # type: ignore[assignment]

    # -- callbacks ----------------------------------------------------------------------------
    def on_offer(self, op: _Offer) -> None:
        if op.cancelled:
            return
        q = self.queue
        if self.completing:
            # complete() was called and buffered elements are still being emitted: as
            # Akka's QueueSource (``terminating``), the offer is dropped, not refused.
            q._settle(op, QueueOfferResult.dropped, None)
            return
        buf = self.buf
        if not buf and self.is_available(self.out):
            self.push(self.out, op.elem)
            q._settle(op, QueueOfferResult.enqueued, None)
            return
        if len(buf) < self.size:
            buf.append(op.elem)
            q._settle(op, QueueOfferResult.enqueued, None)
            return
        s = self.strategy
        pending = self.pending
        if pending:
            self._purge()
        room = len(pending) < self.max_offers
        if room and (s is OverflowStrategy.backpressure or self.size == 0):
            self.pending.append(op)  # waits for room (or, without a buffer, for demand)
        elif s is OverflowStrategy.backpressure:
            q._settle(op, None, self._too_many())
        elif self.size == 0 and s in (OverflowStrategy.drop_head, OverflowStrategy.drop_buffer):
            oldest = self._next_pending()
            if oldest is not None:
                q._settle(oldest, QueueOfferResult.dropped, None)
            self.pending.append(op)
        elif s is OverflowStrategy.drop_new or (self.size == 0 and s is not OverflowStrategy.fail):
            q._settle(op, QueueOfferResult.dropped, None)
        elif s is OverflowStrategy.drop_head:
            buf.popleft()
            buf.append(op.elem)
            q._settle(op, QueueOfferResult.enqueued, None)
        elif s is OverflowStrategy.drop_tail:
            buf.pop()
            buf.append(op.elem)
            q._settle(op, QueueOfferResult.enqueued, None)
        elif s is OverflowStrategy.drop_buffer:
            buf.clear()
            buf.append(op.elem)
            q._settle(op, QueueOfferResult.enqueued, None)
        else:
            exc = BufferOverflowError(
                f"[{self.stage_name}] Source.queue buffer overflow (max capacity was {self.size})"
            )
            q._settle(op, None, exc)
            self.queue._closed(exc)
            self.fail_stage(exc)

    def _too_many(self) -> QueueConcurrencyError:
        return QueueConcurrencyError(
            f"[{self.stage_name}] too many concurrent offers (max_concurrent_offers="
            f"{self.max_offers}): wait for a previous offer to be resolved before "
            "offering again"
        )

    def on_control(self, cmd: tuple[str, Any]) -> None:
        kind, arg = cmd
        if kind == "complete":
            self.completing = True
            self._maybe_complete()
        elif kind == "withdraw":
            # A waiting offer was cancelled: it no longer holds up completion.
            self._purge()
            self._maybe_complete()
        else:
            self.queue._closed(arg)
            self.fail_stage(arg)

    def _purge(self) -> None:
        pending = self.pending
        if any(p.cancelled for p in pending):
            live = [p for p in pending if not p.cancelled]
            pending.clear()
            pending.extend(live)

    def _next_pending(self) -> _Offer | None:
        pending = self.pending
        while pending:
            op = pending.popleft()
            if not op.cancelled:
                return op
        return None

    def _maybe_complete(self) -> None:
        if self.completing and not self.buf and all(p.cancelled for p in self.pending):
            self.queue._closed(_CLOSED)
            self.complete_stage()

    # -- port handlers ------------------------------------------------------------------------
    def on_pull(self) -> None:
        buf = self.buf
        if buf:
            self.push(self.out, buf.popleft())
            op = self._next_pending()
            if op is not None:
                buf.append(op.elem)
                self.queue._settle(op, QueueOfferResult.enqueued, None)
        else:
            op = self._next_pending()
            if op is not None:  # buffer_size 0: hand the waiting element over directly
                self.push(self.out, op.elem)
                self.queue._settle(op, QueueOfferResult.enqueued, None)
        self._maybe_complete()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.queue._closed(_CLOSED if _is_normal(cause) else cause)
        self.cancel_stage(cause)

    def _on_abort(self, exc: BaseException) -> None:
        self.queue._closed(exc)

    def post_stop(self) -> None:
        q = self.queue
        self.buf.clear()
        self.pending.clear()
        q._closed(abrupt_error(self.stage_name) if q._terminal is None else q._terminal)


# ---------------------------------------------------------------------------------------------
# Sink.queue
# ---------------------------------------------------------------------------------------------
class _Pull:
    __slots__ = ("done", "value", "error", "future", "cancelled")

    def __init__(self) -> None:
        self.done = False
        self.cancelled = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.future: asyncio.Future[Any] | None = None


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
        "_pull_cb",
        "_demand_cb",
        "_cancel_cb",
        "_buf",
        "_terminal",
        "_waiting",
        "_max_pulls",
        "_requeue_cb",
        "_cancelled",
    )

    def __init__(self, logic: _QueueSinkLogic, max_pulls: int = 1) -> None:
        self._logic = logic
        self._max_pulls = max_pulls
        self._pull_cb = logic.get_async_callback(logic.on_pull_request)
        self._demand_cb = logic.get_async_callback(logic.on_demand)
        self._cancel_cb = logic.get_async_callback(logic.on_cancel)
        self._requeue_cb = logic.get_async_callback(logic.on_requeue)
        self._cancelled = False  # cancel() was called: elements are discarded
        self._buf: deque[Any] = deque()
        self._terminal: Any = None  # None while running; _CLOSED or the failure afterwards
        self._waiting: set[_Pull] = set()

    async def pull(self) -> Any:
        """The next element; ``None`` when the stream completed (or was cancelled).

        Raises the stream's failure (after the elements received before it), and
        ``QueueConcurrencyError`` when ``max_concurrent_pulls`` pulls already wait.

        A cancelled pull (``task.cancel()``, ``asyncio.wait_for`` timing out) raises
        ``CancelledError`` and loses no element: if the stage had already handed it an
        element when the cancellation arrived (in the same event-loop turn), that
        element goes back to the front of the queue and the next pull (or a pull still
        waiting) gets it, in order.
        """
        buf = self._buf
        if buf:
            x = buf.popleft()
            if self._terminal is None:
                self._demand_cb.invoke(None)
            return x
        t = self._terminal
        if t is not None:
            if t is _CLOSED:
                return None
            raise t
        if len(self._waiting) >= self._max_pulls:
            raise QueueConcurrencyError(
                f"Sink.queue: too many concurrent pulls (max_concurrent_pulls="
                f"{self._max_pulls}): wait for a previous pull to be resolved before "
                "pulling again"
            )
        op = _Pull()
        self._pull_cb.invoke(op)
        if not op.done:
            fut: asyncio.Future[Any] = self._logic.materializer.loop.create_future()
            op.future = fut
            self._waiting.add(op)
            try:
                return await fut
            except asyncio.CancelledError:
                if not op.done:
                    op.cancelled = True  # the stage skips it: its element goes to the next pull
                elif op.error is None and op.value is not None and not self._cancelled:
                    # Handed an element before the cancellation reached this task: give it
                    # back, first in line (the stage passes it to a pull still waiting).
                    self._buf.appendleft(op.value)
                    if self._terminal is None:
                        self._requeue_cb.invoke(None)
                raise
            finally:
                self._waiting.discard(op)
        if op.error is not None:
            raise op.error
        return op.value

    def cancel(self) -> None:
        """Cancel the stream; later pulls return ``None``."""
        if self._terminal is None:
            self._terminal = _CLOSED
            self._cancelled = True
            self._buf.clear()
            self._cancel_cb.invoke(None)
            self._closed(_CLOSED)

    def __aiter__(self) -> SinkQueue:
        return self

    async def __anext__(self) -> Any:
        x = await self.pull()
        if x is None:
            raise StopAsyncIteration
        return x

    def _settle(self, op: _Pull, value: Any, error: BaseException | None) -> None:
        op.done = True
        op.value = value
        op.error = error
        fut = op.future
        if fut is not None:
            self._waiting.discard(op)
            if not fut.done():
                if error is not None:
                    fut.set_exception(error)
                else:
                    fut.set_result(value)

    def _closed(self, terminal: Any) -> None:
        if self._terminal is None:
            self._terminal = terminal
        t = self._terminal
        if t is not _CLOSED:
            observed(t)  # pull() raises it: not reported as an unobserved failure
        for op in list(self._waiting):
            if t is _CLOSED:
                self._settle(op, None, None)
            else:
                self._settle(op, None, t)


class QueueSink(GraphStageWithMaterializedValue[SinkShape[Any], SinkQueue]):
    """``Sink.queue()``: elements are pulled with ``SinkQueue.pull`` (or ``async for``).

    Prefetches up to the input buffer size (``Attributes.input_buffer``, default 16).
    Backpressures when the prefetch buffer is full. Completes: ``pull`` returns ``None``
    once upstream completed and the buffer is empty. Fails: ``pull`` raises upstream's
    failure after the buffered elements. Cancels when ``cancel()`` is called.

    A cancelled ``pull`` loses no element: one already handed to it goes back to the
    front of the queue (see ``SinkQueue.pull``).
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
        self.waiting: deque[_Pull] = deque()
        self.queue: SinkQueue = None  # type: ignore[assignment]

    def pre_start(self) -> None:
        self.pull(self.in_)

    def _more(self) -> None:
        if len(self.queue._buf) < self.prefetch:
            self.try_pull(self.in_)

    def _next_waiter(self) -> _Pull | None:
        waiting = self.waiting
        while waiting:
            op = waiting.popleft()
            if not op.cancelled:
                return op
        return None

    def on_pull_request(self, op: _Pull) -> None:
        if op.cancelled:
            return
        q = self.queue
        if q._buf:
            q._settle(op, q._buf.popleft(), None)
            self._more()
        else:
            waiting = self.waiting
            if waiting and any(w.cancelled for w in waiting):
                live = [w for w in waiting if not w.cancelled]  # bounded: drop cancelled
                waiting.clear()
                waiting.extend(live)
            waiting.append(op)
            self._more()

    def on_demand(self, _: Any) -> None:
        self._more()

    def _deliver(self) -> None:
        # Buffered elements go to waiting pulls first, in order.
        q = self.queue
        buf = q._buf
        while buf:
            op = self._next_waiter()
            if op is None:
                break
            q._settle(op, buf.popleft(), None)

    def on_requeue(self, _: Any) -> None:
        # A cancelled pull gave its element back to the front of the buffer.
        self._deliver()

    def on_cancel(self, _: Any) -> None:
        self.complete_stage()

    def on_push(self) -> None:
        x = self.grab(self.in_)
        q = self.queue
        if q._buf:  # an element given back by a cancelled pull goes first
            q._buf.append(x)
            self._deliver()
        else:
            op = self._next_waiter()
            if op is not None:
                q._settle(op, x, None)
            else:
                q._buf.append(x)
        self._more()

    def _finish(self, terminal: Any) -> None:
        q = self.queue
        if q._terminal is None:
            q._terminal = terminal
        t = q._terminal
        while self.waiting:
            op = self.waiting.popleft()
            q._settle(op, None, None if t is _CLOSED else t)

    def on_upstream_finish(self) -> None:
        self._finish(_CLOSED)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._finish(exc)
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self._finish(exc)

    def post_stop(self) -> None:
        self._finish(abrupt_error(self.stage_name))
        self.queue._closed(self.queue._terminal)
