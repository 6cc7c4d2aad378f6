"""The zipping fan-in junctions: Zip, ZipWith, ZipN, ZipWithN, ZipLatest(With) and ZipAll."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..._checks import NONE_ELEMENT, check, fn, int_at_least, opt_fn, opt_int_at_least, pos_int
from ..._impl.interpreter import IN_CLOSED
from ..._stage.logic import GraphStage, GraphStageLogic, OutHandler, _Batch
from ..._stage.shapes import FanInShape2, FanInShapeN, Inlet, Outlet, UniformFanInShape
from ..._supervision import Supervision

if TYPE_CHECKING:
    from collections.abc import Callable
from ._base import _arity, _BatchFanInLogic, _PortIn

__all__ = [
    "Zip",
    "ZipWith",
    "ZipN",
    "ZipLatest",
    "ZipLatestWith",
    "ZipWithN",
    "ZipAll",
]


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
            FanInShape2(ins[0], ins[1], out) if k == 2 else cast("Any", FanInShapeN(*ins, out))
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
    """Zip/ZipWith on the batch protocol (fast path; see ``_impl/fused.py``).

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
                if y is None:  # f's failure, decided on as the element path's push
                    raise self._err(self.out, NONE_ELEMENT)
            except Exception as e:
                if self._decided(e) in (Supervision.resume, Supervision.restart):
                    continue
                exc = e
                k = j + 1  # the combinations after it stay unused (the stage fails)
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


# -- zips ------------------------------------------------------------------------------------
class ZipWithN(GraphStage[UniformFanInShape]):
    """``ZipWithN(f, n)``: ``f(list)`` of one element from each of ``n`` inputs.

    Emits when every input has an element and downstream pulls. Backpressures when
    downstream backpressures. Completes when any input completes (after the combination
    it still holds is emitted). Fails when ``f`` raises. Cancels when downstream cancels.
    """

    name = "zip_with_n"

    def __init__(self, f: Callable[[list[Any]], Any], n: int) -> None:
        check("ZipWithN(f, n)", fn(f), pos_int(n))
        self.f = f
        self.n = n
        self.shape = UniformFanInShape.of(n, "ZipWithN")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        f = self.f
        return _ZipLogic(self.shape, lambda *xs: f(list(xs)))  # type: ignore[arg-type]


class ZipLatestWith(GraphStage[FanInShapeN]):
    """``ZipLatestWith(f, n=2, eager_complete=True)``: ``f(a, b, ...)`` of the latest
    element of each input, each time any input delivers a new one (ports ``in0``.. ``out``).

    Emits when every input has delivered at least once, one of them delivered a new
    element since the last emission, and downstream pulls. Backpressures when downstream
    backpressures (each input is pulled again only after its element was used or
    downstream pulled). Completes when any input completes (with ``eager_complete``, the
    default), or when all inputs completed; at once if an input completes having never
    delivered. Fails when ``f`` raises. Cancels when downstream cancels.
    """

    name = "zip_latest_with"

    def __init__(
        self, f: Callable[..., Any] | None, n: int = 2, eager_complete: bool = True
    ) -> None:
        check("ZipLatestWith(f, n)", opt_fn(f), int_at_least(n, 2))
        self.f = f
        self.n = n
        self.eager_complete = eager_complete
        cls = type(self).__name__
        ports: list[Inlet[Any]] = [Inlet(f"{cls}.in{i}") for i in range(n)]
        out: Outlet[Any] = Outlet(f"{cls}.out")
        self.shape = FanInShape2(ports[0], ports[1], out) if n == 2 else FanInShapeN(*ports, out)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ZipLatestLogic(self.shape, self.f, self.eager_complete)


class ZipLatest(ZipLatestWith):
    """``ZipLatest(eager_complete=True)``: tuples ``(a, b)`` of the latest elements.

    Emits when both inputs delivered at least once, one of them delivered a new element
    since the last tuple, and downstream pulls. Backpressures when downstream
    backpressures. Completes when either input completes (with ``eager_complete``, the
    default), or when both completed. Cancels when downstream cancels.
    """

    name = "zip_latest"

    def __init__(self, eager_complete: bool = True) -> None:
        super().__init__(None, 2, eager_complete)


class _ZipLatestLogic(GraphStageLogic, OutHandler):
    _supervised = True

    def __init__(self, shape: FanInShapeN, f: Callable[..., Any] | None, eager: bool) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.f = f
        self.eager = eager
        n = len(self.ins)
        self.latest: list[Any] = [None] * n
        self.has = [False] * n
        self.running = n
        self.fresh = False  # a value arrived since the last emission
        self.waiting = False  # downstream pulled and got nothing yet
        self.will_shut_down = False
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.pull(p)

    def _pull_all(self) -> None:
        for p in self.ins:
            if not self.is_available(p):
                self.try_pull(p)

    def _push_output(self) -> None:
        vals = self.latest
        self.push(self.out, tuple(vals) if self.f is None else self.f(*vals))
        self.fresh = False
        if self.will_shut_down:
            self.complete_stage()

    def on_push_i(self, i: int) -> None:
        self.latest[i] = self.grab(self.ins[i])
        self.has[i] = True
        self.fresh = True
        if self.waiting and all(self.has):
            self.waiting = False
            self._push_output()
            if not self.is_closed(self.out):
                self._pull_all()

    def on_pull(self) -> None:
        if all(self.has) and self.fresh:
            self._push_output()
        else:
            self.waiting = True
        if not self.is_closed(self.out):
            self._pull_all()

    def on_finish_i(self, i: int) -> None:
        self.running -= 1
        if not self.has[i]:
            self.complete_stage()  # can never emit again
            return
        if self.eager or self.running == 0:
            if self.fresh and all(self.has):
                self.will_shut_down = True  # emit the last combination first
            else:
                self.complete_stage()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


# -- zip_all (pads the side that completed first) ---------------------------------------
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
