"""Fan-in stages: Zip, ZipWith, ZipN, Merge, Concat, and the other fan-in junctions:
MergePreferred, MergePrioritized, ZipLatest(With), ZipWithN, Interleave, MergeSorted,
OrElse (used by the fluent operators and the GraphDSL junctions)."""

from __future__ import annotations

import abc
import inspect
import random
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .._checks import NONE_ELEMENT, check, fn, int_at_least, opt_fn, opt_int_at_least, pos_int
from .._impl.interpreter import AVAIL, DEMAND, IN_CLOSED, PULL_REQ, PULLED
from .._stage.batch import lend_hook, pull_hook
from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from .._stage.shapes import FanInShape2, FanInShapeN, Inlet, Outlet, Shape, UniformFanInShape
from .._supervision import Supervision

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = [
    "Zip",
    "ZipWith",
    "ZipN",
    "Merge",
    "Concat",
    "MergePreferred",
    "MergePreferredShape",
    "MergePrioritized",
    "ZipLatest",
    "ZipLatestWith",
    "ZipWithN",
    "Interleave",
    "MergeSorted",
    "OrElse",
    "ZipAll",
]


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


class _BatchFanInLogic(GraphStageLogic, OutHandler, abc.ABC):
    """The common part of the fan-in stages on the batch protocol (fast path; see
    ``_impl/fused.py``): ``Zip``/``ZipWith``, ``Merge``, ``Concat`` here, ``Interleave`` and
    ``MergeSorted`` below.

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
        # Inputs that are an async boundary's output (a lender, see _stage/batch.py): a
        # pull of one with nothing buffered is delivered at once (see ``_pull_in``).
        self._lenders = [c.batch and lend_hook(c.out_logic) is not None for c in self._cins]
        if self.pull_at_start:
            for i in range(len(self.ins)):
                self._pull_in(i)

    def _pull_in(self, i: int) -> None:
        """Pull input ``i`` (unless it is closed or pulled already) for ``want``."""
        c = self._cins[i]
        if not c.state & (IN_CLOSED | PULLED):
            if c.state == 0 and self._lenders[i] and not c.out_logic.buffer:
                # An async boundary with nothing buffered: its ``on_pull`` would do
                # nothing, so deliver the pull now (PULL_REQ -> DEMAND) instead of queueing
                # an event for it; its next batch finds us waiting (``_accept_i``).
                c.state = DEMAND
                if c.metered:  # that pull, counted here (reactive.observe)
                    c.pulled()  # type: ignore[attr-defined]
            else:
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

    def _accept_i(self, i: int, batch: list[Any]) -> None:
        """Take a non-empty batch on input ``i`` synchronously (an async boundary's output
        upstream; see ``reactive/_stage/batch.py``): push -> ``on_push_i`` -> grab."""
        self.bufs[i] = batch
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

    @abc.abstractmethod
    def _serve(self) -> None:
        """Downstream has demand (or may have): push what the buffers allow."""

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
            except Exception as e:
                if self._decided(e) in (Supervision.resume, Supervision.restart):
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


class _MergeBase(GraphStageLogic, OutHandler):
    """What ``Merge`` and the choosing merges share: every input pulled at start, the
    indices of inputs holding an element in ``ready``, completion once every input
    completed and nothing is ready (``eager``: at the first completion, see
    ``eager_finish``), failure at the first input failure. Subclasses decide which
    ready element goes out and when (``on_push_i``, ``on_pull``)."""

    ready: Any

    def __init__(self, shape: Shape, out: Outlet[Any], eager: bool) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = out
        self.eager = eager
        self.running = len(self.ins)
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.try_pull(p)

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


class _MergeLogic(_MergeBase):
    """``Merge``: the oldest ready input goes first; an element arriving while downstream
    waits and nothing else is ready goes out at once (pushed, then its input pulled)."""

    def __init__(self, shape: UniformFanInShape, eager: bool) -> None:
        super().__init__(shape, shape.out, eager)
        self.ready: deque[int] = deque()

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


class _MergeBatchLogic(_BatchFanInLogic):
    """Merge on the batch protocol (fast path; see ``_impl/fused.py``).

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

    def pre_start(self) -> None:
        # Inputs whose upstream takes a pull synchronously at times (a ``map_async(1)``
        # offering its result, see ``_stage/batch.py``), found before the first pulls.
        self._takers = [pull_hook(c) for c in (self._conns[p] for p in self.ins)]
        super().pre_start()
        # What ``_accept_one_i`` needs that cannot change: the input's pull can be taken
        # synchronously (``pull_hook``: a batch connection).
        self._direct_one = [take is not None for take in self._takers]

    def _pull_in(self, i: int) -> None:
        """``_BatchFanInLogic._pull_in``; an idle input whose upstream takes the pull
        synchronously now is marked pulled (``DEMAND``) without queueing the pull (fast
        path: its ``on_pull`` would do nothing)."""
        c: Any = self._cins[i]  # (a ``MeteredConnection`` when metered)
        take = self._takers[i]
        if take is not None and c.state == 0 and take():
            c.state = DEMAND
            if c.metered:  # that pull, counted here (reactive.observe)
                c.pulled()
            c.demand_n = self.want
            return
        super()._pull_in(i)

    def _accept_i(self, i: int, batch: list[Any]) -> None:
        """Take input ``i``'s batch from an async boundary's output (see the base class).

        Fast path, when no other input is ready and downstream waits for at least the
        whole batch: it goes out as one push and input ``i`` is pulled again, which is
        what ``_pushed`` -> ``_serve`` -> ``_push_chunk`` -> ``_pull_in`` do with it. If
        after that the island has nothing else to do (its queue and mailbox empty: the
        boundary calls us only with an empty queue), the push is the event its loop
        would run next, so it is delivered now (``on_push`` of the in side), and so is
        the pull the in side answers with if that is the only event it queued (our
        ``on_pull``), as ``_BoundaryOut._deliver`` does: no other event can come in
        between, so the order of events is the same. (Only when pulling input ``i``
        again queues no event either: an async boundary with nothing buffered, or a
        ``map_async(1)`` offering its one result, whose pull ``_take_pull`` takes
        synchronously: the in side's handler then runs while the worker's delivery is
        still on the stack, before that delivery takes its next element from upstream
        rather than after; other logics' handlers, every connection's element order and
        demand are the same.) Not during a blocked-loop diagnosis (one event per step).
        Metered (reactive.observe), the pull of input ``i`` and the push down are counted
        here and in ``_hand_down``; the push that brought ``batch`` is the caller's.
        """
        cout = self._cout
        if self.ready or cout.state != DEMAND or len(batch) > (cout.demand_n if cout.batch else 1):
            super()._accept_i(i, batch)
            return
        x: Any = batch[0] if len(batch) == 1 else batch if type(batch) is _Batch else _Batch(batch)
        island = self._island
        q = cout.q
        c: Any = self._cins[i]  # (a ``MeteredConnection`` when metered)
        if (
            q
            or island is None
            or island.mailbox
            or island.sched.diagnosis is not None
            or c.state != 0
            or not (
                (self._lenders[i] and not c.out_logic.buffer)
                or ((take := self._takers[i]) is not None and take())
            )
        ):
            self.push(self.out, x)
            self._pull_in(i)
            return
        # ``_pull_in(i)`` of an async boundary with nothing buffered, or of a
        # ``map_async(1)`` offering its result (its pull taken synchronously): no event.
        c.state = DEMAND
        if c.metered:  # that pull, counted here (reactive.observe)
            c.pulled()
        if c.batch:
            c.demand_n = self.want
        self._hand_down(x, cout, q, island)

    def _accept_one_i(self, i: int, x: Any) -> None:
        """``_accept_i(i, [x])`` for the one result a ``map_async(1)`` offers (fast path,
        spelled out for the worker pool: no list, no batch-size checks, no lender case):
        the same conditions and the same deliveries as the direct case of ``_accept_i``,
        else ``_accept_i`` itself. Called only while the upstream's ``_take_pull`` says
        True (:func:`offer_one_hook`'s contract), so it is not asked again.

        Metered (reactive.observe), the upstream counted its push but left the pending
        phase to end here (:func:`offer_one_hook`): the direct case pulls again at the
        same reading of the clock, so the phase goes on (one pull counted, no reading:
        only this junction's code runs between the push and the pull); otherwise it ends
        before ``_accept_i``."""
        cout = self._cout
        q = cout.q
        island: Any = self._island  # (the offering upstream's: the same island)
        c: Any = self._cins[i]  # (a ``MeteredConnection`` when metered)
        if (
            self.ready
            or cout.state != DEMAND
            or q
            or c.state != 0
            or not self._direct_one[i]
            or island.mailbox
            or island.sched.diagnosis is not None
        ):
            if c.metered:  # the pending phase the push answered ends (``unpended``)
                c.unpended()
            self._accept_i(i, [x])
            return
        # ``_pull_in(i)``, its pull taken synchronously (``pull_hook`` found ``take`` on a
        # batch connection): no event.
        c.state = DEMAND
        if c.metered:  # that pull, counted here (reactive.observe): pending again at once
            c.pulls += 1
        c.demand_n = self.want
        self._hand_down(x, cout, q, island)

    def _hand_down(self, x: Any, cout: Any, q: Any, island: Any) -> None:
        """The end of ``_accept_i``'s and ``_accept_one_i``'s direct case (the input
        pulled again without an event): push ``x`` to the waiting in side and run its
        ``on_push`` now, then the pull it answers with if that is the only event it
        queued (our ``on_pull``), as ``_BoundaryOut._deliver`` does. (Metered, the push is
        counted here; the in side's pull was counted as it was queued.)"""
        cout.elem = x
        cout.state = AVAIL  # DEMAND -> PUSH_REQ -> AVAIL, delivered
        if cout.metered:  # that push, counted here (reactive.observe: ``unpended``,
            # spelled out: the demand was pending, its state was DEMAND)
            cout.pushes += 1
            cout.elements += len(x) if type(x) is _Batch else 1
            cout.phase = 0
            now = cout.now
            cout.pend += now()
            q = q.queue  # its island's queue itself (a ``CountingQueue`` is only looked at)
        try:
            cout.in_handler.on_push()
        except Exception as exc:
            cout.in_logic._handle_error(exc)
        if len(q) == 1 and q[0] is cout and cout.state == PULL_REQ and not island.mailbox:
            q.pop()
            cout.state = DEMAND  # PULL_REQ -> DEMAND, delivered
            if self.ready or self.running == 0:
                try:
                    self.on_pull()
                except Exception as exc:
                    self._handle_error(exc)
            elif cout.batch:
                # ``on_pull`` with nothing ready and inputs running: ``_note_demand``.
                d = cout.demand_n
                self.want = d if d > 1 else 1
            else:
                self.want = 1

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
        cout = self._cout
        self.want = max(1, cout.demand_n) if cout.batch else 1  # ``_note_demand``, inlined
        ready = self.ready
        if ready:
            self._serve()
            if ready:
                return
        if self.running == 0:
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
    ``Merge`` and the merges below."""
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


# -- merges with a choice among ready inputs ---------------------------------------------------
class _ChoosingMergeLogic(_MergeBase):
    """A merge that keeps the ready inputs and lets ``choose`` pick which one to emit."""

    def __init__(self, shape: Shape, out: Outlet[Any], eager: bool) -> None:
        super().__init__(shape, out, eager)
        self.ready: list[int] = []

    def choose(self, ready: list[int]) -> int:
        """The position in ``ready`` of the input to emit next (default: the oldest)."""
        return 0

    def _emit_one(self) -> None:
        k = self.choose(self.ready)
        i = self.ready.pop(k)
        p = self.ins[i]
        elem = self.grab(p)
        # Pull before pushing: a synchronous input delivers its next element before
        # downstream asks again, so a preferred/high-priority input keeps winning.
        self.try_pull(p)
        self.push(self.out, elem)

    def on_push_i(self, i: int) -> None:
        self.ready.append(i)
        if self.is_available(self.out):
            self._emit_one()

    def on_pull(self) -> None:
        if self.ready:
            self._emit_one()
        if not self.ready and self.running == 0:
            self.complete_stage()


class MergePreferredShape(Shape):
    """``n`` secondary inlets ``in_(i)``, one ``preferred`` inlet and one outlet ``out``."""

    __slots__ = ("preferred", "out", "n")

    def __init__(self, preferred: Inlet[Any], out: Outlet[Any], *ins: Inlet[Any]) -> None:
        super().__init__((*ins, preferred), (out,))
        self.preferred = preferred
        self.out = out
        self.n = len(ins)

    def in_(self, i: int) -> Inlet[Any]:
        """Secondary inlet number ``i``."""
        if not 0 <= i < self.n:
            raise IndexError(f"MergePreferred has secondary inlets 0..{self.n - 1}, not {i}")
        return self.inlets[i]

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return MergePreferredShape(inlets[-1], outlets[0], *inlets[:-1])


class MergePreferred(GraphStage[MergePreferredShape]):
    """``MergePreferred(n, eager_complete=False)``: like Merge, but the ``preferred`` inlet
    wins whenever it has an element ready; ``in_(i)`` are the ``n`` secondary inlets.

    Emits when one of the inputs has an element available (preferred first, then the
    secondaries in arrival order). Backpressures when downstream backpressures. Completes
    when all inputs completed (or the first one, with ``eager_complete``, after the
    elements already taken from the preferred input and the completed input's waiting
    element). Cancels when downstream cancels.
    """

    name = "merge_preferred"

    def __init__(self, n: int = 1, eager_complete: bool = False) -> None:
        check("MergePreferred(n, eager_complete)", pos_int(n))
        self.n = n
        self.eager_complete = eager_complete
        self.shape = MergePreferredShape(
            Inlet("MergePreferred.preferred"),
            Outlet("MergePreferred.out"),
            *(Inlet(f"MergePreferred.in{i}") for i in range(n)),
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _PreferredLogic(self.shape, self.eager_complete)


class _PreferredLogic(GraphStageLogic, OutHandler):
    """As Akka's MergePreferred, the preferred input is grabbed and pulled again at once
    (up to ``MAX_BUFFERED`` elements wait here), which keeps a feedback loop into
    ``preferred`` live; secondaries are served in arrival order when no preferred element
    waits."""

    MAX_BUFFERED = 2

    def __init__(self, shape: MergePreferredShape, eager: bool) -> None:
        super().__init__(shape)
        self.pref = shape.preferred
        self.secs = shape.inlets[:-1]
        self.out = shape.out
        self.eager = eager
        self.buf: deque[Any] = deque()
        self.ready: deque[int] = deque()  # secondaries holding an element, oldest first
        self.running = len(shape.inlets)
        for i, p in enumerate(self.secs):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.pref, _PortIn(self, -1))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.shape.inlets:
            self.try_pull(p)

    def on_push_i(self, i: int) -> None:
        if i < 0:
            self.buf.append(self.grab(self.pref))
            if len(self.buf) < self.MAX_BUFFERED:
                self.try_pull(self.pref)
        else:
            self.ready.append(i)
        if self.is_available(self.out):
            self._emit()

    def on_pull(self) -> None:
        self._emit()

    def _emit(self) -> None:
        if self.buf:
            self.push(self.out, self.buf.popleft())
            self.try_pull(self.pref)
        elif self.ready:
            p = self.secs[self.ready.popleft()]
            elem = self.grab(p)
            self.try_pull(p)
            self.push(self.out, elem)
        self._maybe_complete()

    def _maybe_complete(self) -> None:
        if self.running == 0 and not self.buf and not self.ready:
            self.complete_stage()

    def on_finish_i(self, i: int) -> None:
        if self.eager:
            # The preferred elements already grabbed (Pekko's pending ``emit``s) and the
            # completed input's own element are emitted first; see ``eager_finish``.
            self.ready = eager_finish(self, self.secs, self.ready)
            self.running = 0
            self._maybe_complete()
            return
        self.running -= 1
        self._maybe_complete()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


class MergePrioritized(GraphStage[UniformFanInShape]):
    """``MergePrioritized(priorities, eager_complete=False)``: a merge that picks among
    the ready inputs at random, weighted by their positive integer ``priorities``.

    Emits when one of the inputs has an element available. Backpressures when
    downstream backpressures. Completes when all inputs completed (or the first one, with
    ``eager_complete``, after the completed input's waiting element, as ``Merge``).
    Cancels when downstream cancels.
    """

    name = "merge_prioritized"

    def __init__(self, priorities: Sequence[int], eager_complete: bool = False) -> None:
        prios = list(priorities)
        if not prios:
            raise ValueError("MergePrioritized needs at least one priority")
        if any(not isinstance(p, int) or p <= 0 for p in prios):
            raise ValueError(f"MergePrioritized priorities must be positive integers, got {prios}")
        self.priorities = tuple(prios)
        self.eager_complete = eager_complete
        self.shape = UniformFanInShape.of(len(prios), "MergePrioritized")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _PrioritizedLogic(self.shape, self.priorities, self.eager_complete)


class _PrioritizedLogic(_ChoosingMergeLogic):
    def __init__(self, shape: UniformFanInShape, prios: tuple[int, ...], eager: bool) -> None:
        super().__init__(shape, shape.out, eager)
        self.prios = prios
        self.rng = random.Random()

    def choose(self, ready: list[int]) -> int:
        if len(ready) == 1:
            return 0
        total = sum(self.prios[i] for i in ready)
        r = self.rng.randrange(total)
        for k, i in enumerate(ready):
            r -= self.prios[i]
            if r < 0:
                return k
        return len(ready) - 1  # pragma: no cover - unreachable


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


# -- MergeSorted -----------------------------------------------------------------------------
class MergeSorted(GraphStage[FanInShape2]):
    """``MergeSorted(key=None)``: merge two sorted inputs into one sorted output
    (ports ``in0``, ``in1``, ``out``; on ties ``in0`` goes first).

    Emits when both inputs have an element available (the smaller one is emitted), or
    when one input completed (the rest of the other passes through). Backpressures when
    downstream backpressures. Completes when both inputs completed. Cancels when
    downstream cancels.
    """

    name = "merge_sorted"

    def __init__(self, key: Callable[[Any], Any] | None = None) -> None:
        check("MergeSorted(key)", opt_fn(key))
        self.key = key
        self.shape = FanInShape2(
            Inlet("MergeSorted.in0"), Inlet("MergeSorted.in1"), Outlet("MergeSorted.out")
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if attributes is not None and attributes.get("fast_paths"):
            return _MergeSortedBatchLogic(self.shape, self.key)
        return _MergeSortedLogic(self.shape, self.key)


class _IgnoreFinish(InHandler):
    """Inlet handler while ``read`` drives the inlet: completion is handled by ``read``."""

    def on_push(self) -> None:  # pragma: no cover - read() replaces this handler first
        pass

    def on_upstream_finish(self) -> None:
        pass


class _MergeSortedLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: FanInShape2, key: Callable[[Any], Any] | None) -> None:
        super().__init__(shape)
        self.left = shape.in0
        self.right = shape.in1
        self.out = shape.out
        self.key = key
        self.other: Any = None
        self.set_handler(self.left, _IgnoreFinish())
        self.set_handler(self.right, _IgnoreFinish())
        self.set_handler(self.out, self)

    def on_pull(self) -> None:
        pass  # demand is served by emit() as elements are read

    def _le(self, a: Any, b: Any) -> bool:
        k = self.key
        return not (k(b) < k(a)) if k is not None else not (b < a)

    def _dispatch(self, left: Any, right: Any) -> None:
        if self._le(left, right):
            self.other = right
            self.emit(self.out, left, self._read_left)
        else:
            self.other = left
            self.emit(self.out, right, self._read_right)

    def _read_left(self) -> None:
        self.read(self.left, lambda x: self._dispatch(x, self.other), self._pass_right)

    def _read_right(self) -> None:
        self.read(self.right, lambda x: self._dispatch(self.other, x), self._pass_left)

    def _pass_right(self) -> None:
        # left completed while ``other`` (from right) was held: emit it, then pass right on.
        self.emit(self.out, self.other, lambda: self._pass_along(self.right))

    def _pass_left(self) -> None:
        self.emit(self.out, self.other, lambda: self._pass_along(self.left))

    def _pass_along(self, inlet: Inlet[Any]) -> None:
        self.other = None
        if self.is_closed(inlet) and not self.is_available(inlet):
            self.complete(self.out)
            return
        self.pass_along(inlet, self.out, do_pull=True)

    def pre_start(self) -> None:
        # Pull both inputs eagerly (fan-in stages must, so cycles can start).
        self.pull(self.right)

        def first_left(x: Any) -> None:
            self.other = x
            self._read_right()

        self.read(self.left, first_left, lambda: self.pass_along(self.right, self.out))


class _MergeSortedBatchLogic(_BatchFanInLogic):
    """MergeSorted on the batch protocol (fast path; see ``_impl/fused.py``).

    What each input hands over waits in its buffer; while downstream has demand, the
    smaller head of the two buffers goes out (``in0`` on ties), up to the demand, as one
    push. When a buffer runs dry its input is pulled again (for what downstream last
    asked for), and merging waits for it, unless it completed: then the other input's
    elements pass on. A raising ``key`` fails the stage after what was merged before it
    went out.
    """

    def __init__(self, shape: FanInShape2, key: Callable[[Any], Any] | None) -> None:
        super().__init__(shape)
        self.key = key

    def _serve(self) -> None:
        """Downstream has demand: push what can be merged now."""
        bufs = self.bufs
        offs = self.offs
        cins = self._cins
        cout = self._cout
        n = cout.demand_n if cout.batch else 1
        out: list[Any] = []
        key = self.key
        err: Exception | None = None
        a, b = bufs
        ia, ib = offs
        try:
            if a is not None and b is not None:
                la, lb = len(a), len(b)
                while ia < la and ib < lb and len(out) < n:
                    x, y = a[ia], b[ib]
                    if (key(y) < key(x)) if key is not None else (y < x):
                        out.append(y)
                        ib += 1
                    else:
                        out.append(x)
                        ia += 1
        except Exception as e:
            err = e
        if err is None:
            # One side ran dry and completed: the other passes on.
            if a is not None and (b is None and cins[1].state & IN_CLOSED):
                take = a[ia : ia + n - len(out)]
                out += take
                ia += len(take)
            elif b is not None and (a is None and cins[0].state & IN_CLOSED):
                take = b[ib : ib + n - len(out)]
                out += take
                ib += len(take)
        if a is not None and ia >= len(a):
            bufs[0] = None
            ia = 0
        if b is not None and ib >= len(b):
            bufs[1] = None
            ib = 0
        offs[0], offs[1] = ia, ib
        if out:
            self.push(self.out, out[0] if len(out) == 1 else _Batch(out))
        if err is not None:
            raise err
        for i in (0, 1):
            if bufs[i] is None:
                if cins[i].state & IN_CLOSED:
                    if bufs[1 - i] is None and cins[1 - i].state & IN_CLOSED:
                        self.complete_stage()
                        return
                else:
                    self._pull_in(i)
        if not out and self.is_available(self.out) and (bufs[0] is not None or bufs[1] is not None):
            # Nothing went out but something can (one side completed while this side was
            # waiting): serve again.
            if (bufs[0] is None and cins[0].state & IN_CLOSED) or (
                bufs[1] is None and cins[1].state & IN_CLOSED
            ):
                self._serve()

    def on_finish_i(self, i: int) -> None:
        if self.bufs[i] is None:
            if self.bufs[1 - i] is None and self._cins[1 - i].state & IN_CLOSED:
                self.complete_stage()
            elif self.is_available(self.out):
                self._serve()


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
