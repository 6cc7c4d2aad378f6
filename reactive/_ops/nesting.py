"""Nesting and flattening operators: flat_map_concat/merge, switch_map, prefix_and_tail,
group_by, split_when/split_after, and the sink that runs SubFlow substreams.

All of them are ordinary logics built on the dynamic ports of ``substreams.py``: a
nested Source is consumed through a ``SubSinkInlet`` and a substream is fed through a
``SubSourceOutlet``. Nested graphs run on the parent's materializer, in the parent's
island (``SubFlow.to``'s substreams in islands of their own), and inherit the attributes
in force at the stage that runs them: a supervision strategy set on the enclosing
blueprint supervises the substreams' operators too.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

from .._checks import NONE_ELEMENT
from .._errors import IllegalGraphError, SubscriptionWithCancelError, TooManySubstreamsError
from .._impl import materializer as _materializer
from .._impl.modules import AtomicModule
from .._impl.unobserved import note_failure
from .._stage.logic import GraphStage, GraphStageLogic, InHandler, _Batch, port_error
from .._stage.shapes import Inlet, SinkShape
from .._supervision import Supervision
from .simple import FlowLogic, FlowStage
from .sources import _END, IterableSource, SingleSource, _none_index
from .substreams import (
    SubSinkInlet,
    SubSourceOutlet,
    SubstreamCancelStrategy,
    materialize_nested,
    subscription_timeout_of,
)

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "FlatMapMerge",
    "SwitchMap",
    "PrefixAndTail",
    "GroupBy",
    "Split",
    "SubstreamsSink",
]

UNBOUNDED = 1 << 62


# -- flat_map_merge / flat_map_concat ----------
def _run_inner(logic: GraphStageLogic, inlet: SubSinkInlet, src: Any) -> bool:
    """Run ``src``, what the operator's function returned, into ``inlet``.

    Raises a TypeError naming the stage when ``src`` is not a Source (nor a graph or
    stage): the function's failure, which supervision decides on. A Source that fails to
    materialize fails the stage, whatever the supervision (as Akka's ``FlattenMerge``,
    which has no decider: only the function is supervised); returns False then.
    """
    try:
        inlet.materialize(src)
    except IllegalGraphError as exc:
        from .._dsl.graph import _module_of

        try:
            _module_of(src)
        except IllegalGraphError:
            raise TypeError(
                f"[{logic.stage_name}] the function returned {type(src).__name__} {src!r}, "
                "not a Source"
            ) from None
        logic.fail_stage(exc)
        return False
    except Exception as exc:
        logic.fail_stage(exc)
        return False
    return True


class FlatMapMerge(FlowStage):
    """``flat_map_merge(breadth, f)`` (``flat_map_concat(f)`` is ``breadth == 1``)."""

    name = "flat_map_merge"

    def __init__(self, breadth: int, f: Callable[[Any], Any], name: str | None = None) -> None:
        if breadth < 1:
            raise ValueError(f"flat_map_merge needs breadth >= 1, got {breadth}")
        super().__init__()
        self.breadth = breadth
        self.f = f
        if name is not None:
            self.name = name

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _FlatMapMergeLogic(self.shape, self.breadth, self.f)


# Elements an inner source may hand over at once (when it speaks the batch protocol):
# its share of what downstream last asked for in one pull (``demand_n`` split over the
# breadth), at least one. Not a fixed prefetch: element by element an inner source is
# pulled once per element downstream asks for, and its side effects (a ``map`` on it, a
# shared iterator) must not run ahead of that demand (found by a review: 16 elements
# were read from an inner source behind a ``take(2)``).
INNER_BATCH = 1


class _FlatMapMergeLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: Any, breadth: int, f: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.breadth = breadth
        self.f = f
        self.active: set[SubSinkInlet] = set()
        # Elements already grabbed from inner sources, waiting for downstream demand, as
        # [inlet, elements, next index]; an inner source is pulled again once its entry
        # is used up, so each has at most one entry here.
        self.ready: deque[list[Any]] = deque()
        self._batch_out = (self.out,)
        # What an inner source is asked for at once: the inners' share of the last
        # demand from downstream (a batch connection's ``demand_n`` split over
        # ``breadth``), at least INNER_BATCH. Held in ``ready`` at most: one entry per
        # inner, so ``breadth`` times this, within that demand.
        self.inner_batch = INNER_BATCH
        # With an unbounded breadth (``merge_substreams``) the share is taken over the
        # inners running, and ``_ask`` caps it: what was asked of the inners and not
        # answered yet, and what waits in ``ready``, add up to at most the demand, or
        # one element per inner (element by element, each is pulled once).
        self.capped = breadth >= UNBOUNDED
        self.demand = 1  # downstream's last demand (``demand_n``, 1 off a batch connection)
        self.asked = 0  # capped: asked of the inners and not answered, plus in ready

    # Upstream is first pulled on downstream's first pull (Akka's FlattenMerge): no
    # element is taken, and no inner source opened, before there is demand.
    started = False

    # Whether inner ``Source.from_iterable(range)`` and ``Source.single(x)`` sources are
    # read directly (``_RangeInner``, ``_SingleInner``): None until the first of them
    # (the attributes are set after ``__init__``).
    _direct: bool | None = None

    def on_push(self) -> None:
        src = self.f(self.grab(self.in_))
        # An inner ``Source.from_iterable(range)`` or ``Source.single(x)`` as it is (no
        # attributes, no materialized-value function), fast paths on and metrics off:
        # read directly.
        m = getattr(src, "module", None)
        if type(m) is AtomicModule:
            kind = type(m.stage)
            if kind is IterableSource or kind is SingleSource:
                direct = self._direct
                if direct is None:
                    direct = self._direct = _direct_allowed(self)
                if (
                    direct
                    and DIRECT_INNER
                    and m.mat_post is None
                    and not m.is_async
                    and not m.attributes
                    and _running(self)
                    and _is_graph(src)
                ):
                    if kind is SingleSource:
                        if m.stage.value is not None:
                            self._open_direct(_SingleInner(self, m.stage.value))
                            return
                    else:
                        r = m.stage.iterable
                        t = type(r)
                        if t is range:
                            if _index_sized(r):
                                self._open_direct(_RangeInner(self, r))
                                return
                        elif t is list or t is tuple:
                            self._open_direct(_SeqInner(self, r))
                            return
        inlet = SubSinkInlet(self, f"{self.stage_name}.inner")
        inlet.set_handler(_Inner(self, inlet))
        if not _run_inner(self, inlet, src):
            return
        self.active.add(inlet)
        self._ask(inlet)
        self._maybe_pull()

    def _open_direct(self, inlet: Any) -> None:
        """``on_push``'s opening of an inner source read directly (``_RangeInner``)."""
        self.active.add(inlet)
        self._ask(inlet)
        self._maybe_pull()

    def _ask(self, inlet: SubSinkInlet) -> None:
        """Pull ``inlet`` for its share (``inner_batch``), within what the last demand
        leaves over what is asked already (at least one element)."""
        a = self.inner_batch
        if self.capped:
            left = self.demand - self.asked
            if left < a:
                a = left if left > INNER_BATCH else INNER_BATCH
            inlet._asked = a
            self.asked += a
        inlet._pull_batch(a)

    def _maybe_pull(self) -> None:
        if len(self.active) < self.breadth:
            self.try_pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        self._maybe_pull()
        self._check_done()

    def on_pull(self) -> None:
        if not self.started:
            self.started = True
            self.try_pull(self.in_)
        c = self._conns[self.out]
        n = c.demand_n if c.batch else 1
        if self.capped:
            self.demand = n
            share = n // (len(self.active) or 1)
        else:
            share = n // self.breadth
        self.inner_batch = share if share > INNER_BATCH else INNER_BATCH
        ready = self.ready
        if not ready:
            return
        # One copy per element at most: whole entries are appended to the batch that
        # goes out as they are (a slice only for an entry used in part), and an entry
        # that is all that goes out is handed over itself (the inner source's batch:
        # nobody else holds it once its entry leaves ``ready``).
        entry = ready[0]
        inlet, xs, i = entry
        size = len(xs)
        finished: list[SubSinkInlet] | None = None
        if (
            not i
            and size > 1
            and (size == n or (size < n and len(ready) == 1))
            and type(xs) is _Batch
        ):
            ready.popleft()
            if self.capped:
                self.asked -= size
            if inlet._closed:
                finished = [inlet]  # it finished while its entry waited
            elif self.capped:
                self._ask(inlet)
            else:
                inlet._pull_batch(self.inner_batch)
            self.push(self.out, xs)
        else:
            out = _Batch()
            while True:
                room = n - len(out)
                if size - i > room:
                    out += xs[i : i + room]
                    entry[2] = i + room
                    if self.capped:
                        self.asked -= room
                    break
                out += xs[i:] if i else xs
                ready.popleft()
                if self.capped:
                    self.asked -= size - i
                if not inlet._closed:
                    if self.capped:
                        self._ask(inlet)
                    else:
                        inlet._pull_batch(self.inner_batch)
                elif finished is None:
                    finished = [inlet]  # it finished while its entry waited
                else:
                    finished.append(inlet)
                if not ready or size - i == room:
                    break
                entry = ready[0]
                inlet, xs, i = entry
                size = len(xs)
            self.push(self.out, out[0] if len(out) == 1 else out)
        if finished is not None:
            for inlet in finished:
                self._inner_done(inlet)
        if not ready:
            # An inner source that already finished may have been the last thing to wait on.
            self._check_done()

    def inner_push(self, inlet: SubSinkInlet) -> None:
        # ``inlet.grab()`` and ``is_available(out)`` spelled out (once per batch an inner
        # source hands over); the inlet has an element: this runs from its push.
        x = inlet._elem
        inlet._elem = None
        inlet._available = False
        xs = x if type(x) is _Batch else (x,)
        if self.capped:
            self.asked += len(xs) - inlet._asked
            inlet._asked = 0
        self.ready.append([inlet, xs, 0])
        if self._conns[self.out].state & 34 == 2:  # DEMAND, OUT_CLOSED: downstream waits
            self.on_pull()

    def inner_finish(self, inlet: SubSinkInlet) -> None:
        # One that finished while its elements wait in ``ready`` keeps its place among
        # the ``breadth`` running ones until they were emitted (``on_pull`` releases it),
        # as Akka's keeps it while its element waits: else inner sources that hand over
        # all they have at once would be opened and read one after another, ahead of
        # any demand.
        self.asked -= inlet._asked  # a pull it did not answer
        inlet._asked = 0
        if not any(entry[0] is inlet for entry in self.ready):
            self._inner_done(inlet)

    def _inner_done(self, inlet: SubSinkInlet) -> None:
        """A finished inner source leaves the running ones: the next may open."""
        self.active.discard(inlet)
        if not self.is_closed(self.in_):
            self._maybe_pull()
        self._check_done()

    def on_upstream_finish(self) -> None:
        self._check_done()

    def _check_done(self) -> None:
        if self.is_closed(self.in_) and not self.active and not self.ready:
            self.complete_stage()


# -- inner range and single sources read directly ----------
#: ``flat_map_merge`` reads an inner ``Source.from_iterable(range)`` or
#: ``Source.single(x)`` directly (``_RangeInner``, ``_SingleInner``) instead of
#: materializing it; off only in the differential tests.
DIRECT_INNER = True

# The iterable source's stage and port names in its ``NoneElementError`` (``_SeqInner``).
_SOURCE_STAGE = "iterable_source"
_SOURCE_PORT = "IterableSource.out"

_Graph: Any = None  # ``reactive._dsl.graph.Graph``, imported on first use


def _is_graph(src: Any) -> bool:
    """``src`` is a blueprint (what ``_module_of`` takes the module of)."""
    global _Graph
    if _Graph is None:
        from .._dsl.graph import Graph

        _Graph = Graph
    return isinstance(src, _Graph)


def _index_sized(r: range) -> bool:
    """``len(r)`` fits an index (else the iterable source reads it element by element)."""
    try:
        len(r)
    except OverflowError:
        return False
    return True


def _running(logic: GraphStageLogic) -> bool:
    """``logic``'s island is running (a nested graph would be fused into it: see
    ``Materializer.materialize``'s ``into``)."""
    island = logic._island
    return island is not None and island.running


def _direct_allowed(logic: GraphStageLogic) -> bool:
    """Inner sources of ``logic`` may be read directly: fast paths on (its inner sources
    would speak the batch protocol with it) and metrics off (each inner source would be
    a stage with counters of its own)."""
    items = logic._attributes._items
    return bool(
        items.get("fast_paths") and logic.materializer.fast_paths and not items.get("metrics")
    )


class _RangeInner:
    """An inner ``Source.from_iterable(range)`` of flat_map_merge (``_SingleInner``: a
    ``Source.single(x)``), read without materializing it: the iterable source's logic and
    the sub-sink's (``substreams._SubSinkLogic``) are spelled out over one connection
    state, which is its own entry in the island's queue, as that of the two stages would
    be.

    Each port action moves the state bits and appends to the queue exactly where the
    materialized pair does (the island's loop dispatches it as any connection): the
    pull, the batch pushed (a slice of the range, as the iterable source hands it over)
    and the completion reach the parent at the same points of the island's run, so
    elements, their order, what is read and the completion are those of the plain path
    (``DIRECT_INNER = False``; ``tests/reactive/test_flat_map_merge_direct.py``). Not
    there: the two stages in snapshots (as a fused chain is one stage; not taken with
    metrics on), and their stops (mailbox entries, so the island may finish a few events
    earlier). A range cannot fail nor hold None: nothing else of the source is needed.

    It is also the inlet flat_map_merge's logic holds (``SubSinkInlet``'s fields and
    ``_pull_batch``), and the logic the island's loop sees behind the connection
    (``_stopped``, ``_port_closed``, ``_handle_error``, ``_stage_name``).
    """

    __slots__ = (
        "state",
        "elem",
        "demand_n",
        "q",
        "in_handler",
        "out_handler",
        "in_logic",
        "out_logic",
        "_logic",
        "_r",
        "_i",
        "_size",
        "_elem",
        "_available",
        "_pulled",
        "_closed",
        "_asked",
        "_stage_name",
    )

    # What the island's loop and ``_handler_logic`` read of a connection or a logic.
    batch = True
    metered = False
    fail_cause: BaseException | None = None
    cancel_cause = None
    _stopped = False

    def __init__(self, logic: Any, r: range) -> None:
        self.state = 0
        self.elem: Any = None
        self.demand_n = 1
        self.q = logic._island.queue
        self.in_handler = self.out_handler = self.in_logic = self.out_logic = self
        self._logic = logic
        self._r: Any = r
        self._i = 0  # the index of the element read ahead (``_size``: none)
        self._size = len(r)
        self._elem: Any = None
        self._available = False
        self._pulled = False
        self._closed = False
        self._asked = 0
        self._stage_name = logic._stage_name
        # The materialization's record (the substream count behind snapshot ids).
        recorders = _materializer._recorders or _materializer._load_recorders()
        recorders[1](logic, [], [])
        if not self._size:
            # The iterable source's ``pre_start`` read ahead and found nothing.
            self._complete()

    # -- the inlet (``SubSinkInlet._pull_batch`` and ``_SubSinkLogic._pull``) ------------
    def _pull_batch(self, n: int) -> None:
        if self._closed:
            raise port_error(self._logic.stage_name, "Cannot pull closed port", self.name)
        if self._pulled:
            raise port_error(self._logic.stage_name, "Cannot pull port twice", self.name)
        self._pulled = True
        self._elem = None
        self._available = False
        st = self.state
        if not st & 23:  # IN_CLOSED | PULLED
            if st & 8:  # AVAIL (not grabbed: dropped, as ``pull``)
                self.elem = None
                st &= ~8
            self.state = st | 1  # PULL_REQ
            self.q.append(self)
            self.demand_n = n or 1

    @property
    def name(self) -> str:
        return f"{self._logic.stage_name}.inner"

    # -- the source's side (``_IterableLogic.on_pull`` of a range) ------------------------
    def on_pull(self) -> None:
        n = self.demand_n
        i = self._i
        size = self._size
        out: Any
        if n > 1:
            end = i + n if i + n < size else size
            out = _Batch(self._r[i:end])
        else:
            end = i + 1
            out = self._r[i]
        self._i = end
        st = self.state
        if st & 50 == 2:  # DEMAND, OUT_CLOSED, IN_CLOSED: pushable (else dropped)
            self.elem = out
            self.state = st ^ 6  # DEMAND -> PUSH_REQ
            self.q.append(self)
        if end >= size:
            self._complete()

    def _complete(self) -> None:
        st = self.state
        if not st & 32:  # OUT_CLOSED
            self.state = (st | 96) & ~2  # | OUT_CLOSED | COMPLETE_REQ, & ~DEMAND
            self.q.append(self)

    def on_downstream_finish(self, cause: BaseException) -> None:
        """(Unreached: nothing cancels a direct inner source; its source would stop.)"""

    def deliver_cancel(self) -> None:
        st = self.state
        if st & 32:  # OUT_CLOSED
            self.state = st & ~256  # & ~CANCEL_REQ
        else:
            self.state = (st & ~256 | 32) & ~2  # & ~CANCEL_REQ | OUT_CLOSED, & ~DEMAND

    # -- the sub-sink's side (``_SubSinkLogic.on_push`` / ``on_upstream_finish``) ---------
    def on_push(self) -> None:
        st = self.state
        x = self.elem
        self.elem = None
        self.state = 0 if st == 8 else st & ~8  # the grab
        logic = self._logic
        if not logic._stopped and not self._closed:
            self._pulled = False
            self._elem = x
            self._available = True
            try:
                logic.inner_push(self)
            except Exception as exc:
                logic._handle_error(exc)

    def deliver_termination(self) -> None:
        st = self.state
        self.state = st & ~192  # ~(COMPLETE_REQ | FAIL_REQ)
        if st & 16:  # IN_CLOSED
            return
        self.state |= 16
        logic = self._logic
        if not logic._stopped and not self._closed:
            self._closed = True
            self._pulled = False
            try:
                if st & 128:  # FAIL_REQ (``_SeqInner``)
                    logic.fail_stage(self.fail_cause)
                else:
                    logic.inner_finish(self)
            except Exception as exc:
                logic._handle_error(exc)

    def _port_closed(self) -> None:
        return None

    def _handle_error(self, exc: Exception) -> None:
        self._logic._handle_error(exc)

    def __repr__(self) -> str:
        return f"_RangeInner({self._r!r}, state={self.state:#x})"


class _SingleInner(_RangeInner):
    """An inner ``Source.single(x)`` read directly, as ``_RangeInner`` reads a range: its
    logic pushes ``x`` (as it is: the single source speaks no batch protocol) on the
    first pull, then completes."""

    __slots__ = ()

    batch = False

    def __init__(self, logic: Any, value: Any) -> None:
        super().__init__(logic, range(1))
        self._r = value  # (what the range slot holds here)

    def on_pull(self) -> None:
        st = self.state
        if st & 50 == 2:  # DEMAND, OUT_CLOSED, IN_CLOSED: pushable (else dropped)
            self.elem = self._r
            self.state = st ^ 6  # DEMAND -> PUSH_REQ
            self.q.append(self)
        self._complete()

    def __repr__(self) -> str:
        return f"_SingleInner({self._r!r}, state={self.state:#x})"


class _SeqInner(_RangeInner):
    """An inner ``Source.from_iterable(seq)`` of a list or a tuple read directly, as
    ``_RangeInner`` reads a range.

    It reads ``seq`` exactly as the iterable source does (``_IterableLogic``): through
    ``iter(seq)``, the first element read ahead at opening, each batch the element read
    ahead and up to ``n - 1`` more (``islice``), then the next read ahead when the batch
    was full, completing when none is left. A list changed while it is read (appended
    to, an element replaced) is thus seen as the iterable source sees it: the list's
    iterator reads it at the same points of the run. A None in it (there from the start
    or put in while it is read) fails the stream as there: what came before it in the
    batch goes out, then the stage fails with the iterable source's
    ``NoneElementError``, naming its port (``_fail_none``). The batch's None check is
    the iterable source's (``_none_index``); nothing is checked at opening (a second
    scan: ``None in`` a list of ints costs about 156 instructions per element).
    """

    __slots__ = ("_it", "_nxt", "fail_cause")

    def __init__(self, logic: Any, seq: list[Any] | tuple[Any, ...]) -> None:
        super().__init__(logic, range(1))  # (one element: not completed here)
        self._r = seq
        self.fail_cause = None
        self._it = it = iter(seq)
        # The iterable source's ``pre_start``: the first element read ahead.
        self._nxt = nxt = next(it, _END)
        if nxt is _END:
            self._complete()

    def on_pull(self) -> None:
        n = self.demand_n
        it = self._it
        out: Any = self._nxt
        self._nxt = _END
        if n > 1:
            out = _Batch((out,))
            out.extend(islice(it, n - 1))  # (a list's or a tuple's iterator cannot fail)
            full = len(out) == n
            i = _none_index(out)
            if i >= 0:
                if i:
                    self._push(_Batch(out[:i]))
                self._fail_none()
                return
            self._push(out)
            if full:
                self._nxt = next(it, _END)
        else:
            if out is None:
                self._fail_none()
                return
            self._push(out)
            self._nxt = next(it, _END)
        if self._nxt is _END:
            self._complete()

    def _push(self, out: Any) -> None:
        st = self.state
        if st & 50 == 2:  # DEMAND, OUT_CLOSED, IN_CLOSED: pushable (else dropped)
            self.elem = out
            self.state = st ^ 6  # DEMAND -> PUSH_REQ
            self.q.append(self)

    def _fail_none(self) -> None:
        """The iterable source's push of a None (RS rule 2.13): it fails (``fail``: its
        ``NoneElementError`` queued behind what it pushed), which fails the stage
        (``deliver_termination``, as ``_Inner.on_upstream_failure``)."""
        st = self.state
        if not st & 32:  # OUT_CLOSED
            exc = port_error(_SOURCE_STAGE, NONE_ELEMENT, _SOURCE_PORT)
            note_failure(exc, _SOURCE_STAGE, self)
            self.state = (st | 160) & ~2  # | OUT_CLOSED | FAIL_REQ, & ~DEMAND
            self.fail_cause = exc
            self.q.append(self)

    def __repr__(self) -> str:
        return f"_SeqInner({type(self._r).__name__}, state={self.state:#x})"


class _Inner(InHandler):
    """Handler of one inner source of a flattening logic."""

    def __init__(self, logic: Any, inlet: SubSinkInlet) -> None:
        self.logic = logic
        self.inlet = inlet

    def on_push(self) -> None:
        self.logic.inner_push(self.inlet)

    def on_upstream_finish(self) -> None:
        self.logic.inner_finish(self.inlet)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.logic.fail_stage(exc)


# -- switch_map ----------
class SwitchMap(FlowStage):
    """``switch_map(f)``: only the latest inner source is consumed."""

    name = "switch_map"

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _SwitchMapLogic(self.shape, self.f)


class _SwitchMapLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: Any, f: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.f = f
        self.current: SubSinkInlet | None = None

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        src = self.f(self.grab(self.in_))
        inlet = SubSinkInlet(self, f"{self.stage_name}.inner")
        inlet.set_handler(_Inner(self, inlet))
        # The new inner source runs before the current one is cancelled: one the function
        # got wrong (resumed under supervision) leaves the current one running.
        if not _run_inner(self, inlet, src):
            return
        if self.current is not None:
            self.current.cancel()
        self.current = inlet
        if self.is_available(self.out):
            inlet.pull()
        self.pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        self.try_pull(self.in_)

    def on_pull(self) -> None:
        cur = self.current
        if cur is not None and not cur.is_closed() and not cur.has_been_pulled():
            cur.pull()

    def inner_push(self, inlet: SubSinkInlet) -> None:
        # Pulled only on downstream demand, so the element can be pushed at once, unless
        # the stage failed meanwhile (upstream failed while the element was on its way).
        x = inlet.grab()
        if not self.is_closed(self.out):
            self.push(self.out, x)

    def inner_finish(self, inlet: SubSinkInlet) -> None:
        if inlet is self.current:
            self.current = None
            if self.is_closed(self.in_):
                self.complete_stage()

    def on_upstream_finish(self) -> None:
        if self.current is None:
            self.complete_stage()


# -- prefix_and_tail ----------
class PrefixAndTail(FlowStage):
    """``prefix_and_tail(n)``: one ``(prefix list, tail Source)`` pair."""

    name = "prefix_and_tail"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _PrefixAndTailLogic(self.shape, self.n, subscription_timeout_of(attributes))


class _PrefixAndTailLogic(FlowLogic):
    def __init__(self, shape: Any, n: int, sub_timeout: tuple[float, str]) -> None:
        super().__init__(shape)
        self.n = n
        self.sub_timeout = sub_timeout  # (seconds, mode): Attributes.subscription_timeout
        self.prefix: list[Any] = []
        self.tail: SubSourceOutlet | None = None

    def on_pull(self) -> None:
        if self.n <= 0:
            self._open_tail()
        else:
            self.pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.tail is not None:
            self.tail.push(x)
            return
        self.prefix.append(x)
        if len(self.prefix) >= self.n:
            self._open_tail()
        else:
            self.pull(self.in_)

    def _open_tail(self) -> None:
        tail = SubSourceOutlet(
            self,
            f"{self.stage_name}.tail",
            on_pull=self._tail_pull,
            on_downstream_finish=self._tail_cancel,
            subscription_timeout=None,
        )
        tail.timeout(*self.sub_timeout)
        self.tail = tail
        prefix, self.prefix = self.prefix, []
        self.push(self.out, (prefix, tail.source))
        self.complete(self.out)

    def _tail_pull(self) -> None:
        self.pull(self.in_)

    def _tail_cancel(self, cause: BaseException) -> None:
        # The main outlet is already completed: this only cancels upstream (with a
        # failure cause for a failed or timed-out tail).
        self.cancel_stage(cause)

    def on_upstream_finish(self) -> None:
        if self.tail is not None:
            self.tail.complete()
            self.complete_stage()
            return
        from .._dsl.blueprints import Source

        prefix, self.prefix = self.prefix, []
        self.emit(self.out, (prefix, Source.empty()))
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.tail is not None:
            self.tail.fail(exc)
        self.fail_stage(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        # Only before the pair was emitted: afterwards the outlet is already completed.
        self.cancel_stage(cause)


# -- group_by ----------
class _Slot:
    """One open substream of group_by / split: its outlet and the element it starts with."""

    __slots__ = ("key", "outlet", "first", "closing", "room", "chunk")

    def __init__(self, key: Any, first: Any) -> None:
        self.key = key
        self.outlet: SubSourceOutlet = None  # type: ignore[assignment]
        self.first = first
        self.closing = False
        # group_by's batch path (``_GroupByBatchLogic``): how many elements the
        # substream's outstanding pull still takes (0: no demand), and the elements
        # routed to it in the current dispatch (pushed as one batch when it ends).
        self.room = 0
        self.chunk: list[Any] = _Batch()


class GroupBy(FlowStage):
    """``group_by(max_substreams, key, allow_closed_substream_recreation)``."""

    name = "group_by"

    def __init__(
        self, max_substreams: int, key: Callable[[Any], Any], allow_recreation: bool = False
    ) -> None:
        if max_substreams < 0:
            # 0 is legal, as in Akka: every key is one too many (see the resume case).
            raise ValueError(f"group_by needs max_substreams >= 0, got {max_substreams}")
        super().__init__()
        self.max_substreams = max_substreams
        self.key = key
        self.allow_recreation = allow_recreation

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if attributes is not None and attributes.get("fast_paths"):
            return _GroupByBatchLogic(self.shape, self, subscription_timeout_of(attributes))
        return _GroupByLogic(self.shape, self, subscription_timeout_of(attributes))


class _GroupByLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: Any, stage: GroupBy, sub_timeout: tuple[float, str]) -> None:
        super().__init__(shape)
        self.sub_timeout = sub_timeout  # (seconds, mode): Attributes.subscription_timeout
        self.max = stage.max_substreams
        self.key = stage.key
        self.allow_recreation = stage.allow_recreation
        self.subs: dict[Any, _Slot] = {}
        self.closed_keys: set[Any] = set()
        self.demanding: set[Any] = set()  # keys whose substream pulled
        self.pending: tuple[Any, Any] | None = None  # (key, elem) for a busy substream
        self.waiting: _Slot | None = None  # new substream not yet emitted downstream

    def pre_start(self) -> None:
        self.set_keep_going(True)

    # -- pulling upstream --------------------------------------------------------------
    def _maybe_pull(self) -> None:
        if self.pending is not None or self.waiting is not None:
            return
        if self.is_closed(self.in_) or self.has_been_pulled(self.in_):
            return
        if self.demanding or self.is_available(self.out):
            self.pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        self._maybe_pull()

    # -- main outlet -------------------------------------------------------------------
    def on_pull(self) -> None:
        w = self.waiting
        if w is not None:
            self.waiting = None
            self.push(self.out, w.outlet.source)
            # As in Akka, the subscription timer runs from the moment the Source is emitted.
            w.outlet.timeout(*self.sub_timeout)
        self._maybe_pull()
        self._check_done()

    def on_downstream_finish(self, cause: BaseException) -> None:
        if not isinstance(cause, SubscriptionWithCancelError):
            self.fail_stage(cause)
            return
        if self.waiting is not None:
            self._drop(self.waiting)
            self.waiting = None
        self._check_done()

    # -- upstream ----------------------------------------------------------------------
    def on_push(self) -> None:
        x = self.grab(self.in_)
        k = self.key(x)
        if k is None:
            # Akka's "Key cannot be null" (an IllegalArgumentException, supervised).
            raise ValueError(f"[{self.stage_name}] key cannot be None (element {x!r})")
        try:
            slot = self.subs.get(k)
        except TypeError as exc:  # unhashable: the key function's failure, supervised
            raise TypeError(
                f"[{self.stage_name}] key {k!r} of element {x!r} is not hashable: {exc}"
            ) from exc
        if slot is not None:
            if slot.outlet.is_available():
                self.demanding.discard(k)
                slot.outlet.push(x)
                self._maybe_pull()
            else:
                self.pending = (k, x)
            return
        if k in self.closed_keys or self.is_closed(self.out):
            self._maybe_pull()  # dropped: its substream is gone (or nobody takes new ones)
            return
        if len(self.subs) + len(self.closed_keys) >= self.max:
            raise TooManySubstreamsError(
                f"[{self.stage_name}] cannot open a new substream for key {k!r} as there are "
                f"too many substreams open (max_substreams={self.max})"
            )
        slot = _Slot(k, x)
        slot.outlet = SubSourceOutlet(
            self,
            f"{self.stage_name}.substream",
            on_pull=lambda: self._sub_pull(slot),
            on_downstream_finish=lambda cause: self._sub_cancel(slot, cause),
            subscription_timeout=None,  # armed once the Source is emitted
        )
        self.subs[k] = slot
        if self.is_available(self.out):
            self.push(self.out, slot.outlet.source)
            slot.outlet.timeout(*self.sub_timeout)
            self._maybe_pull()
        else:
            self.waiting = slot

    def on_upstream_finish(self) -> None:
        for slot in list(self.subs.values()):
            if slot.first is None and (self.pending is None or self.pending[0] != slot.key):
                slot.outlet.complete()
            else:
                slot.closing = True
        self._check_done()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.fail_stage(exc)

    # -- substreams --------------------------------------------------------------------
    def _sub_pull(self, slot: _Slot) -> None:
        if slot.first is not None:
            x, slot.first = slot.first, None
            slot.outlet.push(x)
        elif self.pending is not None and self.pending[0] == slot.key:
            x = self.pending[1]
            self.pending = None
            slot.outlet.push(x)
        else:
            self.demanding.add(slot.key)
            self._maybe_pull()
            return
        if slot.closing and (self.pending is None or self.pending[0] != slot.key):
            slot.outlet.complete()
            self._check_done()
        else:
            self._maybe_pull()

    def _sub_cancel(self, slot: _Slot, cause: BaseException) -> None:
        self._drop(slot)
        if self.waiting is slot:
            self.waiting = None
        self._maybe_pull()
        self._check_done()

    def _drop(self, slot: _Slot) -> None:
        k = slot.key
        if self.subs.get(k) is slot:
            del self.subs[k]
            if not self.allow_recreation:
                self.closed_keys.add(k)
        self.demanding.discard(k)
        if self.pending is not None and self.pending[0] == k:
            self.pending = None
        slot.outlet.complete()

    def _check_done(self) -> None:
        if self.is_closed(self.in_):
            if self.waiting is None and all(s.outlet.is_closed() for s in self.subs.values()):
                self.complete_stage()
        elif self.is_closed(self.out) and not self.subs:
            self.complete_stage()

    def _extra_complete(self) -> None:
        for slot in self.subs.values():
            slot.outlet.complete()

    def _extra_fail(self, exc: BaseException) -> None:
        for slot in self.subs.values():
            slot.outlet.fail(exc)


class _GroupByBatchLogic(_GroupByLogic):
    """group_by on the batch protocol (fast path; the element-at-a-time
    ``_GroupByLogic`` is the reference the differential tests compare it with).

    What upstream pushes (a batch, or one element) waits in a queue dispatched strictly
    in order, as element by element: each element's key is computed once, when its turn
    comes; the element joins its substream's chunk while that substream's pull has room
    left (its ``demand``), is dropped for a closed key (or with the main outlet
    cancelled), opens a substream for a new key (its Source pushed out when the main
    outlet has demand, else the dispatch stops until it has), and stops the dispatch
    when its substream has no demand: it waits, as the pending element does element by
    element, and so does everything behind it. Each substream then gets its chunk as one
    push; when the whole queue went out and upstream is pulled again, a chunk with room
    left waits for what upstream hands over next, up to the end of the island's burst
    of events. Upstream is pulled only when the queue is empty, for the substreams'
    rooms added up (one element when only the main outlet has demand): no element is
    read that no demand asked for. Upstream's completion takes effect once the queue is
    dispatched up to at most the waiting element (element by element, upstream could not
    have completed before). A raising key function: the chunks so far are pushed, then
    supervision decides (resume/restart drop the element and the dispatch goes on).
    """

    def __init__(self, shape: Any, stage: GroupBy, sub_timeout: tuple[float, str]) -> None:
        super().__init__(shape, stage, sub_timeout)
        self._batch_in = (self.in_,)
        self.queue: Any = ()  # what upstream pushed (queue[pos:] not dispatched yet)
        self.pos = 0
        self.head: _Slot | None = None  # the substream queue[pos] waits for, if any
        self.want = 0  # the substreams' rooms added up
        # Substreams whose chunks wait for more of upstream's elements (see _dispatch).
        self.held: list[_Slot] = []
        self.finished = False  # upstream completed and its completion was taken in
        self.hooked = False  # a dispatch waits for the end of the island's burst

    # -- pulling upstream --------------------------------------------------------------
    def _maybe_pull(self) -> None:
        if self.pos < len(self.queue) or self.waiting is not None:
            return
        c = self._conns[self.in_]
        if c.state & 23:  # IN_CLOSED | PULLED: closed, or pulled already
            return
        want = self.want
        if want:
            self.pull(self.in_)
            if c.batch:
                c.demand_n = want
        elif self.is_available(self.out):
            self.pull(self.in_)
            if c.batch:
                c.demand_n = 1

    def _on_resume(self, exc: BaseException) -> None:
        self._dispatch()

    # -- main outlet -------------------------------------------------------------------
    def on_pull(self) -> None:
        w = self.waiting
        if w is not None:
            self.waiting = None
            self.push(self.out, w.outlet.source)
            w.outlet.timeout(*self.sub_timeout)  # runs from emission, as in Akka
        self._dispatch()

    def on_downstream_finish(self, cause: BaseException) -> None:
        if not isinstance(cause, SubscriptionWithCancelError):
            self.fail_stage(cause)
            return
        if self.waiting is not None:
            self._drop(self.waiting)
            self.waiting = None
        self._dispatch()

    # -- upstream ----------------------------------------------------------------------
    def on_push(self) -> None:
        c = self._conns[self.in_]
        if c.state == 8:  # AVAIL and nothing else: ``grab``'s fast path, spelled out
            x = c.elem
            c.elem = None
            c.state = 0
        else:
            x = self.grab(self.in_)
        self.queue = x if type(x) is _Batch else (x,)
        self.pos = 0
        self._dispatch()

    def on_upstream_finish(self) -> None:
        self._dispatch()

    def _ended(self) -> bool:
        """Upstream completed and the queue holds at most the element that waits for its
        substream (element by element: upstream completed with that element pending)."""
        if not self._conns[self.in_].state & 16:  # IN_CLOSED
            return False
        rest = len(self.queue) - self.pos
        return rest <= 0 or (rest == 1 and self.head is not None)

    def _resumes(self, exc: Exception) -> bool:
        """Supervision of the key function's failure (counted as ``_handle_error``
        counts it): True when the element is dropped and the dispatch goes on."""
        directive = self._decided(exc)
        return directive is Supervision.resume or directive is Supervision.restart

    def _dispatch(self) -> None:
        """Route queued elements while their substreams have room, then push the chunks;
        then pull upstream (the queue dispatched) or take upstream's completion in."""
        queue = self.queue
        pos = self.pos
        end = len(queue)
        filled = self.held  # (the chunks that waited go first: taken out of ``held``)
        if filled:
            self.held = []
            routed = -sum(len(s.chunk) for s in filled)
        else:
            filled = []
            routed = 0
        exc: Exception | None = None
        if pos < end and self.waiting is None:
            slot = self.head
            if slot is not None:
                # The element that waited for its substream (its key known): it goes
                # first, or nothing does.
                room = slot.room
                if room:
                    self.head = None
                    slot.room = room - 1
                    ch = slot.chunk
                    if not ch:
                        filled.append(slot)
                    ch.append(queue[pos])
                    pos += 1
            if self.head is None:
                get = self.subs.get
                key = self.key
                # (A for loop over the positions, the rare cases in the except clauses
                # and after ``slot is None``: the per-element path is the routing alone.)
                for i in range(pos, end):
                    x = queue[i]
                    try:
                        k = key(x)
                    except Exception as e:
                        if self._resumes(e):
                            continue
                        exc = e
                        break
                    try:
                        slot = get(k)
                    except TypeError as e:
                        # unhashable: the key function's failure, supervised
                        err = TypeError(
                            f"[{self.stage_name}] key {k!r} of element {x!r} is not hashable: {e}"
                        )
                        err.__cause__ = e
                        if self._resumes(err):
                            continue
                        exc = err
                        break
                    if slot is None:
                        # No open substream for ``k``: a new one (or the element dropped).
                        try:
                            opened = self._open(k, x)
                        except Exception as e:
                            if self._resumes(e):
                                continue
                            exc = e
                            break
                        if opened and self.waiting is not None:
                            pos = i + 1
                            break  # its Source waits for the main outlet's demand
                        continue
                    room = slot.room
                    if not room:
                        self.head = slot  # waits for that substream's pull
                        pos = i
                        break
                    slot.room = room - 1
                    ch = slot.chunk
                    if not ch:
                        filled.append(slot)
                    ch.append(x)
                else:
                    pos = end
            self.pos = pos
            if pos >= end:
                self.queue = ()
                self.pos = 0
        head = self.head
        if filled:
            for slot in filled:
                routed += len(slot.chunk)
            self.want -= routed
            # The queue dispatched and upstream about to be pulled for the rooms left:
            # the chunks with room left wait for what it hands over (within this burst
            # of events: a synchronous upstream answers in it), up to the end of the
            # burst (then ``_late``'s dispatch pushes them, its pull being on its way).
            hold = (
                exc is None
                and not self.queue
                and self.waiting is None
                and not self._conns[self.in_].state & 23  # IN_CLOSED | PULLED
            )
            for slot in filled:
                if hold and slot.room:
                    self.held.append(slot)
                    continue
                ch = slot.chunk
                slot.chunk = _Batch()
                self.want -= slot.room
                slot.room = 0
                slot.outlet.push(ch if len(ch) > 1 else ch[0])
                if slot.closing and slot is not head:
                    slot.outlet.complete()
            if self.held:
                self._hook()
        if exc is not None:
            self._keep_going = False
            self.fail_stage(exc)
            if not self._stopped:
                self._stop()
            return
        if not self.finished and self._ended():
            self.finished = True
            self._finish()
        else:
            self._maybe_pull()
            self._check_done()

    def _open(self, k: Any, x: Any) -> bool:
        """The element ``x`` of key ``k``, which has no open substream: opens one for it
        (True), or drops ``x`` (False: its key was closed, or nobody takes new
        substreams). Raises for a None key and for one substream too many."""
        if k is None:
            # Akka's "Key cannot be null" (an IllegalArgumentException, supervised).
            raise ValueError(f"[{self.stage_name}] key cannot be None (element {x!r})")
        if k in self.closed_keys or self.is_closed(self.out):
            return False
        if len(self.subs) + len(self.closed_keys) >= self.max:
            raise TooManySubstreamsError(
                f"[{self.stage_name}] cannot open a new substream for key {k!r} as there are "
                f"too many substreams open (max_substreams={self.max})"
            )
        slot = _Slot(k, x)
        slot.outlet = SubSourceOutlet(
            self,
            f"{self.stage_name}.substream",
            on_pull=lambda: self._sub_pull(slot),
            on_downstream_finish=lambda cause: self._sub_cancel(slot, cause),
            subscription_timeout=None,  # armed once the Source is emitted
        )
        self.subs[k] = slot
        if self.is_available(self.out):
            self.push(self.out, slot.outlet.source)
            slot.outlet.timeout(*self.sub_timeout)
        else:
            self.waiting = slot
        return True

    def _finish(self) -> None:
        """Upstream ended (``_ended``): a substream with nothing left to send completes;
        one that still holds its first element or the waiting one completes once it
        sent it."""
        head = self.head
        for slot in list(self.subs.values()):
            if slot.first is None and slot is not head:
                slot.outlet.complete()
            else:
                slot.closing = True
        self._check_done()

    # -- substreams --------------------------------------------------------------------
    def _sub_pull(self, slot: _Slot) -> None:
        outlet = slot.outlet
        if slot.first is not None:
            x, slot.first = slot.first, None
            outlet.push(x)
            if slot.closing and self.head is not slot:
                outlet.complete()
                self._check_done()
            else:
                self._maybe_pull()
            return
        d = outlet._demand
        slot.room = d
        self.want += d
        # The dispatch (or the pull upstream) waits for the end of the island's burst of
        # events: the other substreams' pulls of this burst come first, so that the
        # queue is dealt out in chunks as large as their demands (dispatched at once,
        # each demand would take the one element the queue holds for it before the next
        # key's element waits: keys that alternate would go one element per pull).
        self._hook()

    def _hook(self) -> None:
        """Dispatch once the island's burst of events ended (once)."""
        if not self.hooked:
            island = self._island
            if island is None:  # pragma: no cover - a started logic has its island
                return
            self.hooked = True
            island.flush_hooks.append(self._burst_ended)

    def _burst_ended(self) -> None:
        """The flush hook: the dispatch as a signal into the island (a hook may run at
        the end of a cascade of islands, outside this island's loop, which then has to
        run for what the dispatch does; inside it, the signal is its next event)."""
        island = self._island
        if self._stopped or island is None:
            self.hooked = False
            return
        island.signal(self, self._late, None)

    def _late(self, _: Any = None) -> None:
        self.hooked = False
        self._dispatch()

    def _sub_cancel(self, slot: _Slot, cause: BaseException) -> None:
        self._drop(slot)
        if self.waiting is slot:
            self.waiting = None
        self._dispatch()

    def _drop(self, slot: _Slot) -> None:
        k = slot.key
        if self.subs.get(k) is slot:
            del self.subs[k]
            if not self.allow_recreation:
                self.closed_keys.add(k)
        self.want -= slot.room
        slot.room = 0
        if slot.chunk:  # its chunk waited for more: dropped with it
            slot.chunk = _Batch()
            self.held.remove(slot)
        if self.head is slot:
            # The element waiting for it is dropped with it, as in Akka.
            self.head = None
            self.pos += 1
        slot.outlet.complete()

    def _check_done(self) -> None:
        if self.finished:
            if self.waiting is None and all(s.outlet.is_closed() for s in self.subs.values()):
                self.complete_stage()
        elif self.is_closed(self.out) and not self.subs:
            self.complete_stage()


# -- split_when / split_after ----------
class Split(FlowStage):
    """``split_when(p, cancel_strategy)`` (``after=False``) or
    ``split_after(p, cancel_strategy)`` (``after=True``)."""

    name = "split"

    def __init__(
        self,
        p: Callable[[Any], bool],
        after: bool,
        cancel_strategy: SubstreamCancelStrategy = SubstreamCancelStrategy.drain,
    ) -> None:
        if not isinstance(cancel_strategy, SubstreamCancelStrategy):
            op = "split_after" if after else "split_when"
            raise TypeError(
                f"{op}(p, substream_cancel_strategy): substream_cancel_strategy must be a "
                f"SubstreamCancelStrategy, got {type(cancel_strategy).__name__} "
                f"{cancel_strategy!r}"
            )
        super().__init__()
        self.p = p
        self.after = after
        self.cancel_strategy = cancel_strategy
        self.name = "split_after" if after else "split_when"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _SplitLogic(
            self.shape,
            self.p,
            self.after,
            self.cancel_strategy is SubstreamCancelStrategy.propagate,
            subscription_timeout_of(attributes),
        )


class _SplitLogic(FlowLogic):
    """At most one substream is open; a cancelled one is drained to the next split, or,
    with ``propagate``, cancels the stage (Akka's ``SubstreamCancelStrategy``)."""

    _supervised = True

    def __init__(
        self,
        shape: Any,
        p: Callable[[Any], bool],
        after: bool,
        propagate: bool,
        sub_timeout: tuple[float, str],
    ) -> None:
        super().__init__(shape)
        self.p = p
        self.after = after
        self.propagate = propagate  # SubstreamCancelStrategy.propagate
        self.sub_timeout = sub_timeout  # (seconds, mode): Attributes.subscription_timeout
        self.current: _Slot | None = None
        self.draining = False  # the current substream was cancelled: drop its elements
        self.waiting: _Slot | None = None  # new substream not yet emitted downstream

    def pre_start(self) -> None:
        self.set_keep_going(True)

    def _maybe_pull(self) -> None:
        if self.waiting is not None or self.is_closed(self.in_) or self.has_been_pulled(self.in_):
            return
        cur = self.current
        if cur is not None:
            if self.draining or (cur.first is None and cur.outlet.is_available()):
                self.pull(self.in_)
        elif self.is_available(self.out):
            self.pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        self._maybe_pull()

    def on_pull(self) -> None:
        w = self.waiting
        if w is not None:
            self.waiting = None
            self.push(self.out, w.outlet.source)
            w.outlet.timeout(*self.sub_timeout)  # runs from emission, as in Akka
            self._check_done()
        self._maybe_pull()

    def on_downstream_finish(self, cause: BaseException) -> None:
        if not isinstance(cause, SubscriptionWithCancelError):
            self.fail_stage(cause)
            return
        if self.waiting is not None:
            self.waiting.outlet.complete()
            self.waiting = None
            self.current = None
        if self.current is None or self.draining:
            self.complete_stage()

    def on_push(self) -> None:
        x = self.grab(self.in_)
        cur = self.current
        if cur is None and not self.after:
            # split_when: the first element starts the first substream, p not asked (as
            # Akka's Split: a counting predicate counts from the second element on).
            self._open(x, close_after_first=False)
            return
        split = bool(self.p(x))
        if cur is None:
            self._open(x, close_after_first=self.after and split)
            return
        if self.after:
            if not self.draining:
                cur.outlet.push(x)
            if split:
                self._close_current()
        elif split:
            self._close_current()
            if self.current is None and not self.is_closed(self.out):
                self._open(x, close_after_first=False)
                return
        elif not self.draining:
            cur.outlet.push(x)
        self._maybe_pull()
        self._check_done()

    def _open(self, first: Any, close_after_first: bool) -> None:
        if self.is_closed(self.out):
            self.complete_stage()
            return
        slot = _Slot(None, first)
        slot.closing = close_after_first
        slot.outlet = SubSourceOutlet(
            self,
            f"{self.stage_name}.substream",
            on_pull=lambda: self._sub_pull(slot),
            on_downstream_finish=lambda cause: self._sub_cancel(slot, cause),
            subscription_timeout=None,  # armed once the Source is emitted
        )
        self.current = slot
        self.draining = False
        if self.is_available(self.out):
            self.push(self.out, slot.outlet.source)
            slot.outlet.timeout(*self.sub_timeout)
        else:
            self.waiting = slot

    def _close_current(self) -> None:
        cur = self.current
        if cur is not None:
            cur.outlet.complete()
        self.current = None
        self.draining = False
        if self.is_closed(self.out):
            self.complete_stage()

    def _sub_pull(self, slot: _Slot) -> None:
        if slot is not self.current:
            return
        if slot.first is not None:
            x, slot.first = slot.first, None
            slot.outlet.push(x)
            if slot.closing or self.is_closed(self.in_):
                self._close_current()
                self._check_done()
        self._maybe_pull()

    def _sub_cancel(self, slot: _Slot, cause: BaseException) -> None:
        if slot is not self.current:
            return
        if self.propagate or self.is_closed(self.in_):
            # Akka's SubstreamCancelStrategy.propagate: cancelStage(cause), i.e. upstream
            # cancelled with the cause, the main output completed (failed for a failure);
            # under drain too once upstream has ended (Pekko's Split: nothing is left to
            # drain; keeping the slot as draining waited forever).
            self.current = None
            self.cancel_stage(cause)
            return
        if self.waiting is slot:
            self.waiting = None
        if slot.first is not None and slot.closing:
            self.current = None  # its only element is dropped; the next one starts anew
        else:
            self.draining = True
            slot.first = None
        if self.is_closed(self.out) and (self.current is None or self.draining):
            self.complete_stage()
            return
        self._maybe_pull()
        self._check_done()

    def on_upstream_finish(self) -> None:
        cur = self.current
        if cur is not None and cur.first is None:
            self._close_current()
        self._check_done()

    def _check_done(self) -> None:
        if self.is_closed(self.in_) and self.waiting is None and self.current is None:
            self.complete_stage()

    def _extra_complete(self) -> None:
        if self.current is not None:
            self.current.outlet.complete()

    def _extra_fail(self, exc: BaseException) -> None:
        if self.current is not None:
            self.current.outlet.fail(exc)


# -- SubFlow.to(sink) ----------
class SubstreamsSink(GraphStage[SinkShape[Any]]):
    """Runs every substream Source it receives through ``flow`` into its own ``sink``."""

    name = "substreams_sink"

    def __init__(self, run: Callable[[Any], Any]) -> None:
        self.run = run
        self.shape = SinkShape(Inlet("SubstreamsSink.in"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _SubstreamsSinkLogic(self.shape, self.run)


class _SubstreamsSinkLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], run: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.run = run
        self.set_handler(self.in_, self)

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        graph = self.run(self.grab(self.in_))
        # Its own graph, as before (islands of its own), but with this stage's attributes
        # as defaults. Akka's SubFlow.to runs each substream without them
        # (Sink.foreach(_.runWith(sink))); here they apply, as for merge/concat_substreams.
        materialize_nested(self, graph.module, fused=False)
        self.pull(self.in_)
