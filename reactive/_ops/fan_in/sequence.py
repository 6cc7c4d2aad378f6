"""The fan-in junctions that take their inputs in turn: Concat, Interleave and OrElse."""

from __future__ import annotations

from typing import Any

from ..._checks import check, pos_int
from ..._impl.interpreter import IN_CLOSED
from ..._stage.logic import GraphStage, GraphStageLogic, OutHandler, _Batch
from ..._stage.shapes import Inlet, UniformFanInShape
from ._base import _BatchFanInLogic, _PortIn

__all__ = [
    "Concat",
    "Interleave",
    "OrElse",
]


class Concat(GraphStage[UniformFanInShape]):
    """``Concat(n)``: all of input 0, then all of input 1, ...

    ``detached`` (the default, as for the fluent ``concat``/``prepend``) pulls every
    input once at start, so each holds one element ready. ``swap`` reverses the order of
    two inputs (used by ``prepend``).

    Emits when the current input has an element and downstream pulls. Backpressures when
    downstream backpressures. Completes when every input completed. Fails when any input
    fails. Cancels when downstream cancels.
    """

    name = "concat"

    def __init__(self, n: int = 2, detached: bool = True, swap: bool = False) -> None:
        check("Concat(n)", pos_int(n))
        self.n = n
        self.detached = detached
        self.order = list(range(n))
        if swap:
            self.order.reverse()
        self.shape = UniformFanInShape.of(n, type(self).__name__)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if attributes is not None and attributes.get("fast_paths"):
            return _ConcatBatchLogic(self.shape, self.order, self.detached)
        return _ConcatLogic(self.shape, self.order, self.detached)


class _ConcatLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: UniformFanInShape, order: list[int], detached: bool) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.order = order
        self.detached = detached
        self.pos = 0
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    @property
    def active(self) -> Inlet[Any]:
        return self.ins[self.order[self.pos]]

    def pre_start(self) -> None:
        if self.detached:
            for p in self.ins:
                self.try_pull(p)

    def _serve(self) -> None:
        p = self.active
        if self.is_available(p):
            self.push(self.out, self.grab(p))
            if self.is_closed(p):
                self._advance()
            elif self.detached:
                self.try_pull(p)
        elif self.is_closed(p):
            self._advance()
        elif not self.has_been_pulled(p):
            self.pull(p)

    def _advance(self) -> None:
        while True:
            self.pos += 1
            if self.pos >= len(self.order):
                self.complete_stage()
                return
            p = self.active
            if not (self.is_closed(p) and not self.is_available(p)):
                break
        if self.is_available(self.out):
            self._serve()

    def on_pull(self) -> None:
        self._serve()

    def on_push_i(self, i: int) -> None:
        if self.ins[i] is self.active and self.is_available(self.out):
            self._serve()

    def on_finish_i(self, i: int) -> None:
        p = self.ins[i]
        if p is self.active and not self.is_available(p):
            self._advance()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


class _ConcatBatchLogic(_BatchFanInLogic):
    """Concat on the batch protocol (fast path; see ``_impl/fused.py``).

    What an input hands over (one element or a batch) waits in its buffer; the active
    input's buffer is pushed within downstream's demand, and the active input is pulled
    again (for what downstream last asked for) once its buffer is empty: right away when
    ``detached``, on downstream's next pull otherwise, as element by element. A detached
    concat pulls every input once at start for one element, as ``_ConcatLogic`` does.
    """

    def __init__(self, shape: UniformFanInShape, order: list[int], detached: bool) -> None:
        super().__init__(shape)
        self.order = order
        self.detached = detached
        self.pull_at_start = detached
        self.pos = 0

    def _serve(self) -> None:
        """Downstream has demand: push from the active input, or pull it, or move on."""
        i = self.order[self.pos]
        buf = self.bufs[i]
        if buf is None:
            if self._cins[i].state & IN_CLOSED:
                self._advance()
            else:
                self._pull_in(i)
            return
        cout = self._cout
        if self._push_chunk(i, cout.demand_n if cout.batch else 1):
            if self._cins[i].state & IN_CLOSED:
                self._advance()
            elif self.detached:
                self._pull_in(i)

    def _advance(self) -> None:
        while True:
            self.pos += 1
            if self.pos >= len(self.order):
                self.complete_stage()
                return
            i = self.order[self.pos]
            if self.bufs[i] is not None or not self._cins[i].state & IN_CLOSED:
                break
        if self.is_available(self.out):
            self._serve()

    def _empty(self, i: int) -> None:
        if i == self.order[self.pos] and self.is_available(self.out):
            self._serve()

    def _pushed(self, i: int) -> None:
        if i == self.order[self.pos] and self.is_available(self.out):
            self._serve()

    def on_finish_i(self, i: int) -> None:
        if i == self.order[self.pos] and self.bufs[i] is None:
            self._advance()


# -- Interleave ------------------------------------------------------------------------------
class Interleave(GraphStage[UniformFanInShape]):
    """``Interleave(n, segment_size, eager_close=False)``: ``segment_size`` elements from
    each input in turn.

    Like Akka's ``Interleave`` (built with detached inputs), every input is pulled at
    start and holds one element ready.

    Emits when the current input has an element available. Backpressures when downstream
    backpressures. Completes when all inputs completed (the others are then served in
    turn), or when any completes with ``eager_close``. Cancels when downstream cancels.
    """

    name = "interleave"

    def __init__(self, n: int, segment_size: int, eager_close: bool = False) -> None:
        check("Interleave(n, segment_size, eager_close)", pos_int(n), pos_int(segment_size))
        self.n = n
        self.segment_size = segment_size
        self.eager_close = eager_close
        self.shape = UniformFanInShape.of(n, "Interleave")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if not self.eager_close and attributes is not None and attributes.get("fast_paths"):
            return _InterleaveBatchLogic(self.shape, self.segment_size)
        return _InterleaveLogic(self.shape, self.segment_size, self.eager_close)


class _InterleaveLogic(GraphStageLogic, OutHandler):
    """Akka's Interleave behind ``withDetachedInputs``: every input is pulled at start and
    again as soon as its element is taken, so each holds one element ready."""

    def __init__(self, shape: UniformFanInShape, segment: int, eager_close: bool) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.segment = segment
        self.eager_close = eager_close
        self.current = 0
        self.count = 0
        self.running = len(self.ins)
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.pull(p)

    def _done(self, j: int) -> bool:
        p = self.ins[j]
        return self.is_closed(p) and not self.is_available(p)

    def _switch(self) -> None:
        self.count = 0
        n = len(self.ins)
        for step in range(1, n + 1):
            j = (self.current + step) % n
            if not self._done(j):
                self.current = j
                return

    def _serve(self) -> None:
        i = self.current
        p = self.ins[i]
        if not self.is_available(p):
            return  # already pulled: on_push serves it
        self.push(self.out, self.grab(p))
        self.count += 1
        if self.is_closed(p):
            self._input_done(i)
            return
        self.pull(p)
        if self.count == self.segment:
            self._switch()

    def _input_done(self, i: int) -> None:
        if self.eager_close:
            self.complete_stage()
            return
        self.running -= 1
        if self.running == 0:
            self.complete_stage()
        elif i == self.current:
            self._switch()
            if self.is_available(self.out):
                self._serve()

    def on_push_i(self, i: int) -> None:
        if i == self.current and self.is_available(self.out):
            self._serve()

    def on_pull(self) -> None:
        self._serve()

    def on_finish_i(self, i: int) -> None:
        if not self.is_available(self.ins[i]):
            self._input_done(i)

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


class _InterleaveBatchLogic(_BatchFanInLogic):
    """Interleave on the batch protocol (fast path; see ``_impl/fused.py``).

    What each input hands over waits in its buffer; the current input's buffer is pushed
    within downstream's demand, segment after segment (one push may hold several), and an
    input is pulled again as soon as its buffer is empty (every input is pulled at start,
    as ``_InterleaveLogic``). An input is done when it completed and its buffer
    is empty; the stage completes when all are. Used for ``eager_close=False`` only.
    """

    def __init__(self, shape: UniformFanInShape, segment: int) -> None:
        super().__init__(shape)
        self.segment = segment
        self.current = 0
        self.count = 0
        self.running = len(self.ins)

    def _done(self, j: int) -> bool:
        return self.bufs[j] is None and bool(self._cins[j].state & IN_CLOSED)

    def _switch(self) -> None:
        self.count = 0
        n = len(self.ins)
        for step in range(1, n + 1):
            j = (self.current + step) % n
            if not self._done(j):
                self.current = j
                return

    def _serve(self) -> None:
        """Downstream has demand: push segment after segment, within it, as far as the
        inputs' buffers go (stopping at an input that is still to answer its pull)."""
        cout = self._cout
        n = cout.demand_n if cout.batch else 1
        out: list[Any] = []
        bufs = self.bufs
        done = False
        while len(out) < n:
            i = self.current
            buf = bufs[i]
            if buf is None:
                break  # pulled already: on_push serves it
            start = self.offs[i]
            take = buf[start : start + min(n - len(out), self.segment - self.count)]
            out += take
            self.count += len(take)
            if start + len(take) >= len(buf):
                bufs[i] = None
                self.offs[i] = 0
                if self._cins[i].state & IN_CLOSED:
                    self.running -= 1
                    if self.running == 0:
                        done = True
                        break
                    self._switch()
                    continue
                self._pull_in(i)
            else:
                self.offs[i] = start + len(take)
            if self.count >= self.segment:
                self._switch()
        if out:
            self.push(self.out, out[0] if len(out) == 1 else _Batch(out))
        if done:
            self.complete_stage()

    def _input_done(self, i: int) -> None:
        self.running -= 1
        if self.running == 0:
            self.complete_stage()
        elif i == self.current:
            self._switch()
            if self.is_available(self.out):
                self._serve()

    def _pushed(self, i: int) -> None:
        if i == self.current and self.is_available(self.out):
            self._serve()

    def on_finish_i(self, i: int) -> None:
        if self.bufs[i] is None:
            self._input_done(i)


# -- OrElse ----------------------------------------------------------------------------------
class OrElse(GraphStage[UniformFanInShape]):
    """``OrElse()``: the primary input (``in_(0)``); if it completes without emitting
    anything, the secondary input (``in_(1)``) instead.

    Emits when the current input has an element. Backpressures when downstream
    backpressures. Completes when the primary completes after emitting at least one
    element (the secondary is cancelled at the primary's first element), or when the
    secondary completes. Cancels when downstream cancels.
    """

    name = "or_else"

    def __init__(self) -> None:
        self.shape = UniformFanInShape.of(2, "OrElse")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _OrElseLogic(self.shape)


class _OrElseLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: UniformFanInShape) -> None:
        super().__init__(shape)
        self.primary, self.secondary = shape.inlets
        self.out = shape.out
        self.current = self.primary
        self.primary_pushed = False
        self.set_handler(self.primary, _PortIn(self, 0))
        self.set_handler(self.secondary, _PortIn(self, 1))
        self.set_handler(self.out, self)

    def on_pull(self) -> None:
        self.pull(self.current)

    def on_push_i(self, i: int) -> None:
        if i == 0:
            if not self.primary_pushed:
                self.primary_pushed = True
                self.cancel(self.secondary)
            self.push(self.out, self.grab(self.primary))
        else:
            self.push(self.out, self.grab(self.secondary))

    def on_finish_i(self, i: int) -> None:
        if i == 0:
            if not self.primary_pushed and not self.is_closed(self.secondary):
                self.current = self.secondary
                if self.is_available(self.out):
                    self.pull(self.secondary)
            else:
                self.complete_stage()
        elif self.is_closed(self.primary):
            self.complete_stage()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)
