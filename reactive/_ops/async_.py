"""Asynchronous operators: ``map_async``, ``map_async_unordered``, ``scan_async``/``fold_async``."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from .._impl.interpreter import IN_CLOSED
from .._stage.logic import GraphStageLogic, _Batch
from .._supervision import Supervision
from .asyncsupport import AwaitingLogicMixin
from .simple import FlowLogic, FlowStage

__all__ = ["MapAsync", "ScanAsync"]


class MapAsync(FlowStage):
    """``map_async(parallelism, f)`` / ``map_async_unordered``.

    Emits when the oldest (ordered) or any (unordered) result is ready and downstream
    pulls; None results are skipped. Backpressures when ``parallelism`` calls are in
    flight. Completes when upstream completed and every result was emitted. Supervision
    applies to exceptions raised by ``f`` and to failed awaitables.
    """

    name = "map_async"

    def __init__(
        self, parallelism: int, f: Callable[[Any], Awaitable[Any]], ordered: bool = True
    ) -> None:
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        super().__init__()
        self.parallelism = parallelism
        self.f = f
        self.ordered = ordered
        if not ordered:
            self.name = "map_async_unordered"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MapAsyncLogic(self.shape, self)


_PENDING: Any = object()


class _MapAsyncLogic(AwaitingLogicMixin, FlowLogic):
    """Speaks the batch protocol on both ports: it asks upstream for as many elements as
    it has room for (``parallelism`` minus results held) and hands downstream every
    result that is ready, in order, in one push; element by element otherwise."""

    _supervised = True

    def __init__(self, shape: Any, stage: MapAsync) -> None:
        FlowLogic.__init__(self, shape)
        self.stage = stage
        self.f = stage.f
        self.par = stage.parallelism
        self.ordered = stage.ordered
        # ordered: slots [result-or-_PENDING]; unordered: ready results
        self.slots: deque[list[Any]] = deque()
        self.ready: deque[Any] = deque()
        self.inflight = 0
        self._batch_in = (self.in_,)
        self._batch_out = (self.out,)

    def pre_start(self) -> None:
        self._maybe_pull()

    def _on_resume(self, exc: BaseException) -> None:
        self._maybe_pull()

    def _maybe_pull(self) -> None:
        # Fast path: connection bits instead of is_closed/has_been_pulled calls
        # (IN_CLOSED | PULLED = 23).
        c = self._conns[self.in_]
        if self.inflight < self.par and not c.state & 23:
            # Backpressure counts results not yet emitted too (Akka: in-flight plus
            # completed-unemitted reaches parallelism), in both modes.
            held = len(self.slots) if self.ordered else self.inflight + len(self.ready)
            room = self.par - held
            if room <= 0:
                return
            self.pull(self.in_)
            if c.batch:
                c.demand_n = room

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if type(x) is not _Batch:
            self._start(x)
        else:
            for y in x:
                # Supervision per element: one failing call must not lose the rest.
                try:
                    self._start(y)
                except Exception as exc:
                    if self.decide(exc) is Supervision.stop:
                        self.fail_stage(exc)
                        return
        self._maybe_pull()

    def _start(self, x: Any) -> None:
        aw = self.f(x)
        self.inflight += 1
        if self.ordered:
            slot = [_PENDING]
            self.slots.append(slot)
            self._await(aw, partial(self._done, slot))
        else:
            self._await(aw, partial(self._done, None))

    def _done(self, slot: list[Any] | None, fut: asyncio.Future[Any]) -> None:
        self.inflight -= 1
        if fut.cancelled():
            exc: BaseException | None = asyncio.CancelledError("map_async call was cancelled")
        else:
            exc = fut.exception()
        if exc is not None:
            if not isinstance(exc, Exception) or self.decide(exc) is Supervision.stop:
                self.fail_stage(exc)
                return
            value = None  # resume/restart: drop the element
        else:
            value = fut.result()
        if slot is not None:
            slot[0] = value
        elif value is not None:
            self.ready.append(value)

    def _await_batch_done(self) -> None:
        # Called once after a batch of completions was delivered (AwaitingLogicMixin).
        if not self._stopped:
            self._drain()
            self._maybe_pull()

    def _drain(self) -> None:
        cout = self._conns[self.out]
        # Fast path: (DEMAND | OUT_CLOSED) == DEMAND spelled as (state & 34) == 2.
        if (cout.state & 34) == 2:
            n = cout.demand_n if cout.batch else 1
            out: list[Any] = []
            if self.ordered:
                slots = self.slots
                while slots and len(out) < n:
                    v = slots[0][0]
                    if v is _PENDING:
                        break
                    slots.popleft()
                    if v is not None:
                        out.append(v)
                # results dropped by supervision at the head must not stall completion
                while slots and slots[0][0] is None:
                    slots.popleft()
            else:
                ready = self.ready
                while ready and len(out) < n:
                    out.append(ready.popleft())
            if len(out) == 1:
                self.push(self.out, out[0])
            elif out:
                self.push(self.out, _Batch(out))
        elif self.ordered:
            slots = self.slots
            while slots and slots[0][0] is None:
                slots.popleft()
        if (
            self.inflight == 0
            and not self.slots
            and not self.ready
            and self._conns[self.in_].state & IN_CLOSED
        ):
            self.complete_stage()

    def on_pull(self) -> None:
        self._drain()
        self._maybe_pull()

    def on_upstream_finish(self) -> None:
        if self.inflight == 0 and not self.slots and not self.ready:
            self.complete_stage()


class ScanAsync(FlowStage):
    """``scan_async(zero, f)`` (``emit_each``) and ``fold_async(zero, f)``."""

    name = "scan_async"

    def __init__(self, zero: Any, f: Callable[[Any, Any], Awaitable[Any]], emit_each: bool) -> None:
        super().__init__()
        self.zero = zero
        self.f = f
        self.emit_each = emit_each
        if not emit_each:
            self.name = "fold_async"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ScanAsyncLogic(self.shape, self)


class _ScanAsyncLogic(AwaitingLogicMixin, FlowLogic):
    _supervised = True

    def __init__(self, shape: Any, stage: ScanAsync) -> None:
        FlowLogic.__init__(self, shape)
        self.stage = stage
        self.acc = stage.zero
        self.busy = False
        self.zero_pushed = not stage.emit_each

    def pre_start(self) -> None:
        if not self.stage.emit_each:
            self.pull(self.in_)

    def on_pull(self) -> None:
        if not self.zero_pushed:
            self.zero_pushed = True
            self.push(self.out, self.acc)
        elif self.stage.emit_each and not self.busy:
            self.try_pull(self.in_)

    def on_push(self) -> None:
        self.busy = True
        self._await(self.stage.f(self.acc, self.grab(self.in_)), self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self.busy = False
        exc = asyncio.CancelledError("step cancelled") if fut.cancelled() else fut.exception()
        if exc is not None:
            d = self.decide(exc) if isinstance(exc, Exception) else Supervision.stop
            if d is Supervision.stop:
                self.fail_stage(exc)
                return
            if d is Supervision.restart:
                self.acc = self.stage.zero
        else:
            self.acc = fut.result()
            if self.stage.emit_each:
                self.push(self.out, self.acc)
        if self.is_closed(self.in_):
            self._finish()
        elif not self.stage.emit_each or (exc is not None and self.is_available(self.out)):
            self.pull(self.in_)

    def _finish(self) -> None:
        if self.stage.emit_each:
            if not self.zero_pushed:
                self.zero_pushed = True
                self.emit(self.out, self.acc, self.complete_stage)
            else:
                self.complete_stage()
        else:
            self.emit(self.out, self.acc, self.complete_stage)

    def on_upstream_finish(self) -> None:
        if not self.busy:
            self._finish()
