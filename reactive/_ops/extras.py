"""Beyond Akka: the operators its users keep asking for (issue 3).

``map_async_partitioned`` (per-key ordered parallelism, Pekko's ``mapAsyncPartitioned``),
``RetryFlow.with_backoff`` (retry one element with backoff, Akka's ``RetryFlow``),
``debounce`` (emit after a quiet period), ``drop_repeated`` (Pekko's ``dropRepeated``) and
``zip_all`` (a zip that pads the side that completed first).
"""

from __future__ import annotations

import asyncio
import random
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from .._errors import RetryFlowError, SubscriptionWithCancelError
from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    InHandler,
    OutHandler,
    TimerGraphStageLogic,
)
from .._stage.shapes import BidiShape, FanInShape2, FlowShape, Inlet, Outlet
from .._supervision import Supervision
from .asyncsupport import AwaitingLogicMixin
from .fan_in import _PortIn
from .simple import FlowLogic, FlowStage
from .timer import TimerFlowLogic

__all__ = [
    "MapAsyncPartitioned",
    "RetryFlowError",
    "Debounce",
    "DropRepeated",
    "ZipAll",
]

_MISSING: Any = object()


# -- map_async_partitioned -------------------------------------------------------------------
class MapAsyncPartitioned(FlowStage):
    """``map_async_partitioned(parallelism, per_partition, partitioner, f)``.

    Every element gets a key ``partitioner(x)``; ``f(x, key)`` runs for at most
    ``per_partition`` elements of one key and ``parallelism`` elements overall at once.
    Results are emitted in input order (across keys too); ``None`` results are skipped.
    Up to ``parallelism`` elements are buffered even while their key is saturated.

    Emits when the result of the oldest buffered element is ready and downstream pulls.
    Backpressures when ``parallelism`` elements are buffered (running, waiting for their
    key, or done and not yet emitted). Completes when upstream completed and every result
    was emitted. Fails when upstream fails or a call fails under the stopping decider.
    Cancels when downstream cancels. Supervision: applies to ``partitioner``, to ``f``
    raising and to failed awaitables; resume and restart drop the element.
    """

    name = "map_async_partitioned"

    def __init__(
        self,
        parallelism: int,
        per_partition: int,
        partitioner: Callable[[Any], Hashable],
        f: Callable[[Any, Any], Awaitable[Any]],
    ) -> None:
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        if per_partition < 1:
            raise ValueError(f"per_partition must be >= 1, got {per_partition}")
        super().__init__()
        self.parallelism = parallelism
        self.per_partition = per_partition
        self.partitioner = partitioner
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MapAsyncPartitionedLogic(self.shape, self)


_WAITING, _RUNNING, _DONE = 0, 1, 2


class _Slot:
    """One buffered element: its key, its state and (once done) its result."""

    __slots__ = ("elem", "key", "state", "result")

    def __init__(self, elem: Any, key: Any) -> None:
        self.elem = elem
        self.key = key
        self.state = _WAITING
        self.result: Any = None


class _MapAsyncPartitionedLogic(AwaitingLogicMixin, FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: MapAsyncPartitioned) -> None:
        FlowLogic.__init__(self, shape)
        self.stage = stage
        self.buffer: deque[_Slot] = deque()  # input order
        self.running: dict[Any, int] = {}  # key -> calls in flight
        self.waiting: dict[Any, deque[_Slot]] = {}  # key -> slots waiting for a place

    def pre_start(self) -> None:
        self.pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        # partitioner raised in on_push: nothing was buffered; keep consuming.
        self._maybe_pull()
        self._drain()

    def _maybe_pull(self) -> None:
        if (
            len(self.buffer) < self.stage.parallelism
            and not self.is_closed(self.in_)
            and not self.has_been_pulled(self.in_)
        ):
            self.pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        key = self.stage.partitioner(x)
        slot = _Slot(x, key)
        self.buffer.append(slot)
        if self.running.get(key, 0) < self.stage.per_partition:
            self._start(slot)
        else:
            self.waiting.setdefault(key, deque()).append(slot)
        self._maybe_pull()

    def _start(self, slot: _Slot) -> None:
        slot.state = _RUNNING
        key = slot.key
        self.running[key] = self.running.get(key, 0) + 1
        try:
            aw = self.stage.f(slot.elem, key)
        except Exception as e:
            # Not left to the interpreter: the slot must be settled either way.
            self._finished(slot, e, None)
            return
        self._await(aw, lambda fut: self._done(fut, slot))

    def _done(self, fut: asyncio.Future[Any], slot: _Slot) -> None:
        if fut.cancelled():
            exc: BaseException | None = asyncio.CancelledError(
                f"[{self.stage_name}] a call was cancelled"
            )
        else:
            exc = fut.exception()
        self._finished(slot, exc, None if exc is not None else fut.result())

    def _finished(self, slot: _Slot, exc: BaseException | None, value: Any) -> None:
        key = slot.key
        left = self.running[key] - 1
        if exc is not None:
            if not isinstance(exc, Exception) or self.decide(exc) is Supervision.stop:
                self.fail_stage(exc)
                return
            value = None  # resume/restart: drop the element
        slot.state = _DONE
        slot.result = value
        # Start the next elements of this key before emitting (keeps the key busy).
        queue = self.waiting.get(key)
        if left:
            self.running[key] = left
        else:
            del self.running[key]
        while queue and self.running.get(key, 0) < self.stage.per_partition:
            self._start(queue.popleft())
            if self._stopped:
                return
        if queue is not None and not queue:
            self.waiting.pop(key, None)
        self._drain()
        self._maybe_pull()

    def _drain(self) -> None:
        buf = self.buffer
        while buf and buf[0].state == _DONE:
            if buf[0].result is None:
                buf.popleft()
                continue
            if not self.is_available(self.out):
                break
            self.push(self.out, buf.popleft().result)
        if not buf and self.is_closed(self.in_):
            self.complete_stage()

    def on_pull(self) -> None:
        self._drain()
        self._maybe_pull()

    def on_upstream_finish(self) -> None:
        if not self.buffer:
            self.complete_stage()


# -- RetryFlow -----------------------------------------------------------------------------------


class _RetryCoordinator(GraphStage[BidiShape]):
    """The stage around the wrapped flow: ``external_in -> internal_out -> flow ->
    internal_in -> (retry? back to internal_out after a backoff : external_out)``."""

    name = "retry_flow"

    def __init__(
        self,
        min_backoff: float,
        max_backoff: float,
        random_factor: float,
        max_retries: int,
        decide_retry: Callable[[Any, Any], Any],
    ) -> None:
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.random_factor = random_factor
        self.max_retries = max_retries
        self.decide_retry = decide_retry
        self.shape = BidiShape(
            Inlet("RetryFlow.externalIn"),
            Outlet("RetryFlow.internalOut"),
            Inlet("RetryFlow.internalIn"),
            Outlet("RetryFlow.externalOut"),
        )

    def backoff(self, retry_no: int) -> float:
        """The delay before retry number ``retry_no`` (from 0), as Akka's backoff."""
        base = min(self.max_backoff, self.min_backoff * (2.0 ** min(retry_no, 1000)))
        if self.random_factor:
            base *= 1.0 + random.random() * self.random_factor
        return base

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RetryLogic(self.shape, self)


_RETRY_TIMER = "retry"


class _RetryExternalIn(InHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        lg = self.logic
        x = lg.grab(lg.ext_in)
        lg.in_progress = x
        lg.retry_no = 0
        lg.push(lg.int_out, x)

    def on_upstream_finish(self) -> None:
        if self.logic.in_progress is _MISSING:
            self.logic.complete_stage()


class _RetryInternalOut(OutHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        lg = self.logic
        if lg.retry_ready:
            lg.retry_ready = False
            lg.push(lg.int_out, lg.in_progress)
        elif (
            lg.in_progress is _MISSING
            and not lg.has_been_pulled(lg.ext_in)
            and not lg.is_closed(lg.ext_in)
        ):
            lg.pull(lg.ext_in)

    def on_downstream_finish(self, cause: BaseException) -> None:
        lg = self.logic
        normal = cause is None or isinstance(cause, SubscriptionWithCancelError)
        if lg.in_progress is _MISSING or not normal:
            lg.cancel_stage(cause)
        else:
            lg.set_keep_going(True)  # the element in progress is still emitted


class _RetryInternalIn(InHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        lg = self.logic
        result = lg.grab(lg.int_in)
        if lg.in_progress is _MISSING:
            lg.fail_stage(
                RetryFlowError(
                    f"[{lg.stage_name}] the wrapped flow emitted {result!r} with no element "
                    "in progress; it must be one-in one-out"
                )
            )
            return
        if lg.retry_no >= lg.stage.max_retries:
            lg.push_external(result)
            return
        new_in = lg.stage.decide_retry(lg.in_progress, result)
        if new_in is None:
            lg.push_external(result)
        else:
            lg.plan_retry(new_in)


class _RetryExternalOut(OutHandler):
    def __init__(self, logic: _RetryLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        lg = self.logic
        if not lg.has_been_pulled(lg.int_in) and not lg.is_closed(lg.int_in):
            lg.pull(lg.int_in)


class _RetryLogic(TimerGraphStageLogic):
    def __init__(self, shape: BidiShape, stage: _RetryCoordinator) -> None:
        super().__init__(shape)
        self.stage = stage
        self._stage_name = stage.name
        self.ext_in, self.int_out, self.int_in, self.ext_out = (
            shape.in1,
            shape.out1,
            shape.in2,
            shape.out2,
        )
        self.in_progress: Any = _MISSING
        self.retry_no = 0
        self.retry_ready = False  # the backoff elapsed while the flow had no demand
        self.set_handler(self.ext_in, _RetryExternalIn(self))
        self.set_handler(self.int_out, _RetryInternalOut(self))
        self.set_handler(self.int_in, _RetryInternalIn(self))
        self.set_handler(self.ext_out, _RetryExternalOut(self))

    def push_external(self, result: Any) -> None:
        self.in_progress = _MISSING
        self.push(self.ext_out, result)
        if self.is_closed(self.ext_in) or self.is_closed(self.int_out):
            self.complete_stage()
        elif self.is_available(self.int_out) and not self.has_been_pulled(self.ext_in):
            self.pull(self.ext_in)

    def plan_retry(self, new_in: Any) -> None:
        delay = self.stage.backoff(self.retry_no)
        self.in_progress = new_in
        self.retry_no += 1
        self.pull(self.int_in)
        self.schedule_once(_RETRY_TIMER, delay)

    def on_timer(self, key: Any) -> None:
        if self.is_closed(self.int_out):
            self.complete_stage()  # the flow cancelled while backing off: nothing to retry
        elif self.is_available(self.int_out):
            self.push(self.int_out, self.in_progress)
        else:
            self.retry_ready = True


# -- debounce ---------------------------------------------------------------------------------
class Debounce(FlowStage):
    """``debounce(seconds)``: emit an element only once ``seconds`` passed without a
    newer one; the latest element wins.

    Upstream is always pulled, so elements arriving during the quiet period replace the
    pending one and restart the period. An element whose quiet period elapsed waits for
    demand (a newer element still replaces it). Timers run on the materializer's clock.

    Emits when the quiet period after the latest element elapsed and downstream pulls,
    or (for the pending element) when upstream completes. Backpressures never (elements
    are superseded instead). Completes when upstream completes and the pending element
    was emitted. Fails when upstream fails (the pending element is dropped). Cancels when
    downstream cancels. Supervision: does not apply (no user code runs).
    """

    name = "debounce"

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"debounce needs seconds >= 0, got {seconds}")
        super().__init__()
        self.seconds = float(seconds)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DebounceLogic(self.shape, self.seconds)


class _DebounceLogic(TimerFlowLogic):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape)
        self.seconds = seconds
        self.pending: Any = _MISSING
        self.quiet = False  # the pending element's quiet period elapsed

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        self.pending = self.grab(self.in_)
        self.quiet = False
        self.schedule_once("debounce", self.seconds)
        self.pull(self.in_)

    def on_timer(self, key: Any) -> None:
        self.quiet = True
        if self.is_available(self.out):
            self._emit()

    def _emit(self) -> None:
        x, self.pending = self.pending, _MISSING
        self.quiet = False
        self.push(self.out, x)

    def on_pull(self) -> None:
        if self.quiet and self.pending is not _MISSING:
            self._emit()

    def on_upstream_finish(self) -> None:
        self.cancel_timer("debounce")
        if self.pending is _MISSING:
            self.complete_stage()
        else:
            x, self.pending = self.pending, _MISSING
            self.emit(self.out, x, self.complete_stage)


# -- drop_repeated ------------------------------------------------------------------------------
class DropRepeated(FlowStage):
    """``drop_repeated(eq=None)``: drop elements equal to the element just before them.

    ``eq(previous, x)`` decides equality (``==`` without it); the comparison is always
    against the last element emitted.

    Emits when an element differs from the previous one. Backpressures when downstream
    does. Completes when upstream completes. Fails when upstream fails or ``eq`` raises.
    Cancels when downstream cancels. Supervision: resume drops the element whose ``eq``
    raised; restart also forgets the previous element.
    """

    name = "drop_repeated"

    def __init__(self, eq: Callable[[Any, Any], bool] | None = None) -> None:
        super().__init__()
        self.eq = eq

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DropRepeatedLogic(self.shape, self.eq)


class _DropRepeatedLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, eq: Callable[[Any, Any], bool] | None) -> None:
        super().__init__(shape)
        self.eq = eq
        self.last: Any = _MISSING

    def restart_state(self) -> None:
        self.last = _MISSING

    def on_push(self) -> None:
        x = self.grab(self.in_)
        last = self.last
        if last is not _MISSING and (x == last if self.eq is None else self.eq(last, x)):
            self.pull(self.in_)
        else:
            self.last = x
            self.push(self.out, x)


# -- zip_all ------------------------------------------------------------------------------------
class ZipAll(GraphStage[FanInShape2]):
    """``ZipAll(pad_left, pad_right)``: pairs ``(a, b)``; once one input completed its
    place is filled with its pad (``pad_left`` for ``in0``, ``pad_right`` for ``in1``).

    Emits when both inputs have an element (or completed, not both) and downstream pulls.
    Backpressures when downstream does. Completes when both inputs completed and every
    element was emitted. Fails when either input fails. Cancels when downstream cancels.
    Supervision: does not apply.
    """

    name = "zip_all"

    def __init__(self, pad_left: Any, pad_right: Any) -> None:
        self.pad_left = pad_left
        self.pad_right = pad_right
        cls = type(self).__name__
        self.shape = FanInShape2(Inlet(f"{cls}.in0"), Inlet(f"{cls}.in1"), Outlet(f"{cls}.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ZipAllLogic(self.shape, (self.pad_left, self.pad_right))


class _ZipAllLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: FanInShape2, pads: tuple[Any, Any]) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.pads = pads
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.pull(p)

    def _try_push(self) -> None:
        avail = [self.is_available(p) for p in self.ins]
        closed = [self.is_closed(p) for p in self.ins]
        if not any(avail):
            if all(closed):
                self.complete_stage()
            return
        if not all(a or c for a, c in zip(avail, closed, strict=True)):
            return  # one side is still to deliver
        if not self.is_available(self.out):
            return
        pair = tuple(
            self.grab(p) if a else pad for p, a, pad in zip(self.ins, avail, self.pads, strict=True)
        )
        self.push(self.out, pair)
        for p in self.ins:
            if not self.is_closed(p):
                self.pull(p)
        if all(self.is_closed(p) and not self.is_available(p) for p in self.ins):
            self.complete_stage()

    def on_pull(self) -> None:
        self._try_push()

    def on_push_i(self, i: int) -> None:
        self._try_push()

    def on_finish_i(self, i: int) -> None:
        self._try_push()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)
