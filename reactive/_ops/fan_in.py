"""Fan-in stages: Zip, ZipWith, Merge, Concat (used by the fluent operators and junctions)."""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

from .._checks import NONE_ELEMENT, check, opt_fn, opt_int_at_least, pos_int
from .._impl.interpreter import IN_CLOSED, PULLED
from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from .._stage.shapes import FanInShape2, FanInShapeN, Inlet, Outlet, UniformFanInShape
from .._supervision import Supervision

__all__ = ["Zip", "ZipWith", "Merge", "Concat"]


class _PortIn(InHandler):
    """Routes one inlet's events to ``logic.on_push_i(i)`` etc."""

    __slots__ = ("logic", "i")

    def __init__(self, logic: Any, i: int) -> None:
        self.logic = logic
        self.i = i

    def on_push(self) -> None:
        self.logic.on_push_i(self.i)

    def on_upstream_finish(self) -> None:
        self.logic.on_finish_i(self.i)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.logic.on_failure_i(self.i, exc)


def _arity(f: Callable[..., Any]) -> int:
    """How many positional arguments ``f`` requires (2 when it cannot be told)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    n = sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)
    return max(n, 2)


class _BatchFanInLogic(GraphStageLogic, OutHandler):
    """The common part of the fan-in stages on the batch protocol (fast path; see
    ``_ops/fused.py``): ``Zip``/``ZipWith``, ``Merge``, ``Concat`` here, ``Interleave`` and
    ``MergeSorted`` in ``junctions.py``.

    What input ``i`` hands over (one element or a batch) waits in ``bufs[i]`` (``None``
    when empty), read from ``offs[i]`` on. An input is pulled (``_pull_in``) for what
    downstream last asked for (``want``: ``demand_n`` of the output connection, 1 when it
    is not a batch connection). Each stage says how it serves downstream (``_serve``),
    what it does when an input's buffer fills (``_pushed``) and, if not "pull again", when
    an input hands over an empty batch (``_empty``).
    """

    #: Pull every input once in ``pre_start`` (a non-detached Concat does not).
    pull_at_start = True

    def __init__(self, shape: Any) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.bufs: list[Any] = [None] * len(self.ins)
        self.offs = [0] * len(self.ins)
        self.want = 1
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)
        self._batch_in = tuple(self.ins)
        self._batch_out = (self.out,)

    def pre_start(self) -> None:
        self._cout = self._conns[self.out]
        self._cins = [self._conns[p] for p in self.ins]
        if self.pull_at_start:
            for i in range(len(self.ins)):
                self._pull_in(i)

    def _pull_in(self, i: int) -> None:
        """Pull input ``i`` (unless it is closed or pulled already) for ``want``."""
        c = self._cins[i]
        if not c.state & (IN_CLOSED | PULLED):
            self.pull(self.ins[i])
            if c.batch:
                c.demand_n = self.want

    def _note_demand(self) -> None:
        """Downstream pulled: remember how much it asked for (what inputs are pulled for)."""
        cout = self._cout
        self.want = max(1, cout.demand_n) if cout.batch else 1

    def on_pull(self) -> None:
        self._note_demand()
        self._serve()

    def on_push_i(self, i: int) -> None:
        x = self.grab(self.ins[i])
        if type(x) is _Batch:
            if not x:
                self._empty(i)
                return
        else:
            x = (x,)
        self.bufs[i] = x
        self.offs[i] = 0
        self._pushed(i)

    def _empty(self, i: int) -> None:
        """Input ``i`` handed over an empty batch: ask it again."""
        self._pull_in(i)

    def _pushed(self, i: int) -> None:
        """Input ``i``'s buffer was filled: serve downstream if it has demand."""
        if self.is_available(self.out):
            self._serve()

    def _push_chunk(self, i: int, n: int) -> bool:
        """Push the next (at most ``n``) elements of input ``i``'s buffer as one push;
        True when that emptied the buffer."""
        buf = self.bufs[i]
        start = self.offs[i]
        if len(buf) - start <= n:
            self.bufs[i] = None
            chunk = buf if start == 0 else buf[start:]
            drained = True
        else:
            chunk = buf[start : start + n]
            self.offs[i] = start + n
            drained = False
        if len(chunk) == 1:
            self.push(self.out, chunk[0])
        else:
            self.push(self.out, chunk if type(chunk) is _Batch else _Batch(chunk))
        return drained

    def _serve(self) -> None:
        """Downstream has demand (or may have): push what the buffers allow."""
        raise NotImplementedError

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


class ZipWith(GraphStage[FanInShape2]):
    """``ZipWith(f)``: ``f(a, b, ...)`` of one element from each input; ports ``in0``,
    ``in1``, ... ``out``. The number of inputs is the number of positional arguments
    ``f`` requires (2 to any, as Akka's ZipWith2..22), or ``n`` when given.

    Emits when every input has an element and downstream pulls. Backpressures when
    downstream backpressures. Completes when any input completes (after the combination
    it still holds is emitted). Fails when ``f`` raises. Cancels when downstream cancels.
    """

    name = "zip_with"

    def __init__(self, f: Callable[..., Any] | None = None, n: int | None = None) -> None:
        check("ZipWith(f, n)", opt_fn(f), opt_int_at_least(n, 2))
        self.f = f
        k = (2 if f is None else _arity(f)) if n is None else n
        if k < 2:
            raise ValueError(f"ZipWith needs at least 2 inputs, got {k}")
        cls = type(self).__name__
        ins: list[Inlet[Any]] = [Inlet(f"{cls}.in{i}") for i in range(k)]
        out: Outlet[Any] = Outlet(f"{cls}.out")
        # Typed as the two-input shape (the API.md form); wider ones add in2, in3, ...
        self.shape = (
            FanInShape2(ins[0], ins[1], out) if k == 2 else cast(Any, FanInShapeN(*ins, out))
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if attributes is not None and attributes.get("fast_paths"):
            return _ZipBatchLogic(self.shape, self.f)
        return _ZipLogic(self.shape, self.f)


class Zip(ZipWith):
    """``Zip()``: tuples ``(a, b)``.

    Emits when both inputs have an element and downstream pulls. Backpressures when
    downstream backpressures. Completes when either input completes (after the pair it
    still holds is emitted). Cancels when downstream cancels.
    """

    name = "zip"

    def __init__(self) -> None:
        super().__init__(None)


class _ZipLogic(GraphStageLogic, OutHandler):
    _supervised = True

    def __init__(self, shape: FanInShape2, f: Any) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.f = f
        self.pending = 0
        self.will_shut_down = False
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.pull(p)

    def _push_all(self) -> None:
        vals = [self.grab(p) for p in self.ins]
        self.push(self.out, tuple(vals) if self.f is None else self.f(*vals))
        if self.will_shut_down:
            self.complete_stage()
        else:
            for p in self.ins:
                self.pull(p)

    def _on_resume(self, exc: BaseException) -> None:
        # f raised in _push_all: every element was grabbed and nothing was pushed, so
        # the downstream demand is still there and needs one element per input again.
        if self.will_shut_down:
            self.complete_stage()
            return
        self.pending = len(self.ins) if self.is_available(self.out) else 0
        for p in self.ins:
            self.try_pull(p)

    def on_pull(self) -> None:
        self.pending += len(self.ins)
        if self.pending == 0:
            self._push_all()

    def on_push_i(self, i: int) -> None:
        self.pending -= 1
        if self.pending == 0:
            self._push_all()

    def on_finish_i(self, i: int) -> None:
        if not self.is_available(self.ins[i]):
            self.complete_stage()
        self.will_shut_down = True

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


class _ZipBatchLogic(_BatchFanInLogic):
    """Zip/ZipWith on the batch protocol (fast path; see ``_ops/fused.py``).

    What each input hands over (one element or a batch) waits in its buffer; while
    downstream has demand, the next ``k`` combinations (``k``: the fewest elements
    waiting on any input, at most downstream's demand) are pushed as one batch. An input
    is pulled again (for what downstream last asked for) once its buffer is empty; an
    input that completes with nothing waiting completes the stage, as element by element
    (what waits on the others is discarded). When ``f`` raises on a combination, the ones
    before it are pushed, then supervision decides (resume/restart drop that combination).
    """

    _supervised = True

    def __init__(self, shape: FanInShape2, f: Any) -> None:
        super().__init__(shape)
        self.f = f

    def _serve(self) -> None:
        """Downstream has demand: push the combinations every input has elements for."""
        bufs = self.bufs
        offs = self.offs
        cout = self._cout
        k = cout.demand_n if cout.batch else 1
        for i, b in enumerate(bufs):
            if b is None:
                return
            left = len(b) - offs[i]
            if left < k:
                k = left
        f = self.f
        out: list[Any] = []
        exc: Exception | None = None
        cols = [b[o : o + k] for b, o in zip(bufs, offs, strict=True)]
        for j, vals in enumerate(zip(*cols, strict=True)):
            if f is None:
                out.append(vals)
                continue
            try:
                y = f(*vals)
            except Exception as e:
                if self.decide(e) in (Supervision.resume, Supervision.restart):
                    continue
                exc = e
                k = j + 1  # the combinations after it stay unused (the stage fails)
                break
            if y is None:
                exc = self._err(self.out, NONE_ELEMENT)
                break
            out.append(y)
        for i, b in enumerate(bufs):
            o = offs[i] + k
            if o >= len(b):
                bufs[i] = None
                offs[i] = 0
            else:
                offs[i] = o
        if out:
            self.push(self.out, out[0] if len(out) == 1 else _Batch(out))
        if exc is not None:
            self._keep_going = False
            self.fail_stage(exc)
            if not self._stopped:
                self._stop()
            return
        for i, b in enumerate(bufs):
            if b is None:
                if self._cins[i].state & IN_CLOSED:
                    self.complete_stage()
                    return
                self._pull_in(i)
        if not out and self.is_available(self.out):
            self._serve()  # every combination was dropped (resume): try the next ones

    def on_finish_i(self, i: int) -> None:
        if self.bufs[i] is None:
            self.complete_stage()


class Merge(GraphStage[UniformFanInShape]):
    """``Merge(n, eager_complete=False)``: elements of all inputs as they arrive (FIFO
    among ready inputs).

    Emits when one of the inputs has an element available. Backpressures when downstream
    backpressures. Completes when all inputs completed; with ``eager_complete``, when
    any input completes (every other input is cancelled, an element waiting on one of
    them is discarded; the completed input's own waiting element is emitted first, as
    Pekko). Cancels when downstream cancels."""

    name = "merge"

    def __init__(self, n: int = 2, eager_complete: bool = False) -> None:
        check("Merge(n, eager_complete)", pos_int(n))
        self.n = n
        self.eager_complete = eager_complete
        self.shape = UniformFanInShape.of(n, type(self).__name__)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if not self.eager_complete and attributes is not None and attributes.get("fast_paths"):
            return _MergeBatchLogic(self.shape)
        return _MergeLogic(self.shape, self.eager_complete)


class _MergeLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: UniformFanInShape, eager: bool) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.eager = eager
        self.running = len(self.ins)
        self.ready: deque[int] = deque()
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.try_pull(p)

    def on_push_i(self, i: int) -> None:
        if self.is_available(self.out) and not self.ready:
            p = self.ins[i]
            self.push(self.out, self.grab(p))
            self.try_pull(p)
        else:
            self.ready.append(i)

    def on_pull(self) -> None:
        while self.ready:
            i = self.ready.popleft()
            p = self.ins[i]
            if self.is_available(p):
                self.push(self.out, self.grab(p))
                self.try_pull(p)
                break
        if not self.ready and self.running == 0:
            self.complete_stage()

    def on_finish_i(self, i: int) -> None:
        if self.eager:
            self.ready = eager_finish(self, self.ins, self.ready)
            self.running = 0
            if not self.ready:
                self.complete_stage()
            return
        self.running -= 1
        if self.running == 0 and not self.ready:
            self.complete_stage()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


class _MergeBatchLogic(_BatchFanInLogic):
    """Merge on the batch protocol (fast path; see ``_ops/fused.py``).

    Each input is pulled for what downstream last asked for (``demand_n`` of the output
    connection, 1 when it is not a batch connection) and what it hands over, one element
    or a batch, waits in that input's buffer; ready inputs are served in FIFO order, each
    push taking at most downstream's demand from one input's buffer (an input with some
    left goes to the back of the line). An input is pulled again once its buffer is
    empty, so every input keeps the element order it had, nothing is pushed beyond
    demand, and completion waits until every input completed and every buffer drained.
    Used for ``eager_complete=False`` only.
    """

    def __init__(self, shape: UniformFanInShape) -> None:
        super().__init__(shape)
        self.running = len(self.ins)
        self.ready: deque[int] = deque()

    def _pushed(self, i: int) -> None:
        self.ready.append(i)
        if len(self.ready) == 1 and self.is_available(self.out):
            self._serve()

    def _serve(self) -> None:
        """Push one chunk of the first ready input's buffer (downstream has demand)."""
        i = self.ready.popleft()
        cout = self._cout
        if self._push_chunk(i, cout.demand_n if cout.batch else 1):
            self._pull_in(i)
        else:
            self.ready.append(i)

    def on_pull(self) -> None:
        self._note_demand()
        if self.ready:
            self._serve()
        if not self.ready and self.running == 0:
            self.complete_stage()

    def on_finish_i(self, i: int) -> None:
        self.running -= 1
        if self.running == 0 and not self.ready:
            self.complete_stage()


def eager_finish(logic: GraphStageLogic, ins: Sequence[Inlet[Any]], ready: Any) -> Any:
    """An input of an ``eager_complete`` merge completed: as Pekko's ``Merge`` (and
    ``MergePrioritized``), cancel every input, which discards an element waiting on
    another input, but keep the element the completed input had already delivered: it
    is emitted before the stage completes. Returns ``ready`` (a deque or a list of
    indices into ``ins``) without the inputs whose element was discarded. Shared by
    ``Merge`` and the merges of ``junctions.py``."""
    for p in logic.shape.inlets:
        logic.cancel(p)  # a no-op on the completed input, whose element stays available
    return type(ready)(j for j in ready if logic.is_available(ins[j]))


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
    """Concat on the batch protocol (fast path; see ``_ops/fused.py``).

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


class ZipN(GraphStage[UniformFanInShape]):
    """``ZipN(n)``: lists of one element from each of ``n`` inputs.

    Emits when every input has an element and downstream pulls. Backpressures when
    downstream backpressures. Completes when any input completes (after the list it still
    holds is emitted). Cancels when downstream cancels.
    """

    name = "zip_n"

    def __init__(self, n: int) -> None:
        check("ZipN(n)", pos_int(n))
        self.n = n
        self.shape = UniformFanInShape.of(n, type(self).__name__)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ZipLogic(self.shape, lambda *xs: list(xs))  # type: ignore[arg-type]
