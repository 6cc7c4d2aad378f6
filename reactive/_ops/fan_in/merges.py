"""The merging fan-in junctions: Merge, MergePreferred, MergePrioritized and MergeSorted."""

from __future__ import annotations

import random
from collections import deque
from typing import TYPE_CHECKING, Any

from ..._checks import check, opt_fn, pos_int
from ..._impl.interpreter import AVAIL, DEMAND, IN_CLOSED, PULL_REQ
from ..._stage.batch import pull_hook
from ..._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from ..._stage.shapes import FanInShape2, Inlet, Outlet, Shape, UniformFanInShape

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
from ._base import _BatchFanInLogic, _PortIn, eager_finish

__all__ = [
    "Merge",
    "MergePreferred",
    "MergePreferredShape",
    "MergePrioritized",
    "MergeSorted",
]


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
        # A sink taking what ``_accept_one_i`` hands down directly (``Sink.fold``'s
        # ``_take_one``: the push, its ``on_push`` and the pull it answers with, in one
        # call), on an unmetered connection in the same island (its own handler).
        cout = self._cout
        down = cout.in_logic
        self._sink_one: Any = (
            getattr(down, "_take_one", None)
            if not cout.metered and cout.in_handler is down
            else None
        )
        # What ``_note_demand`` makes of the demand ``_take_one`` leaves (the sink's
        # ``batch_size`` on a batch connection, 1 otherwise).
        bs = getattr(down, "batch_size", 1)
        self._sink_want = (bs if bs > 1 else 1) if cout.batch else 1

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
        before ``_accept_i``.

        Its one caller, ``map_async(1)``'s delivery (``_deliver_sequential``), offers
        only with the island's queue empty and no blocked-loop diagnosis running, on
        the batch connection whose pull it takes synchronously (``_takers[i]``),
        which it has just made idle (``DEMAND`` -> 0): those are not checked again
        here (one check each per element of the worker pool)."""
        cout = self._cout
        island: Any = self._island  # (the offering upstream's: the same island)
        c: Any = self._cins[i]  # (a ``MeteredConnection`` when metered)
        if self.ready or cout.state != DEMAND or island.mailbox:
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
        take = self._sink_one
        if take is None:  # (None on a metered connection: see ``pre_start``)
            self._hand_down(x, cout, cout.q, island)
            return
        # A ``Sink.fold`` downstream (unmetered): the push, its ``on_push`` and its pull
        # in one call (``_take_one``, one call where ``_hand_down`` makes three, per
        # element of the worker pool); True: the pull delivered, no event queued.
        try:
            taken = take(x)
        except Exception as exc:
            cout.in_logic._handle_error(exc)
            taken = False
        if not taken:
            self._answer_pull(cout, cout.q, island)
        elif self.ready or self.running == 0:
            try:
                self.on_pull()
            except Exception as exc:
                self._handle_error(exc)
        else:
            # ``on_pull`` with nothing ready and inputs running: ``_note_demand`` (the
            # sink's demand, ``batch_size`` on a batch connection: see ``pre_start``).
            self.want = self._sink_want

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
        self._answer_pull(cout, q, island)

    def _answer_pull(self, cout: Any, q: Any, island: Any) -> None:
        """After a push handed down directly: the pull the in side answered with, run now
        (our ``on_pull``) if it is the only event it queued."""
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
