"""Counters chosen at materialization: metered connections and wrapped fast-path hooks.

A graph with metrics on gets ``MeteredConnection`` edges instead of plain ``Connection``
ones. ``state`` stays the plain slot of ``Connection`` (the interpreter reads it several
times per event); the counters live on the connection and are updated where the
transitions happen. Time is split by the connection's *phase*, read on the
materializer's clock at each phase change (nothing per event otherwise):

- ``pending``: the downstream pulled and the upstream has not pushed yet. The inlet is
  *starved* (it waits for an element).
- ``idle``: no demand outstanding. The outlet is *back-pressured* (it waits for
  demand): the downstream has not asked (it is busy, or itself back-pressured).
- ``closed``: either side closed; no longer counted.

Only the pending time is summed (the clock subtracted on entering the phase, added on
leaving it); idle time is the open lifetime minus it. The phase is the connection's
own ``phase`` attribute, kept by the accounting alone, and changes in three ways:

- Port actions (``pull``, ``push``, ``complete``, ``fail``, ``cancel``, and the
  junctions' spelled-out pushes) write ``state`` and then append the connection to
  ``c.q``. On a metered connection ``q`` is a ``CountingQueue`` in front of the island's
  queue: its ``append`` reads the bits just written (a close bit: closed; ``PUSH_REQ``:
  a push, one element or a ``_Batch``, answering the pending demand; else a pull) and
  accounts for it. The deliveries the interpreter writes itself (PULL_REQ -> DEMAND,
  PUSH_REQ -> AVAIL, a grab, a termination or cancellation delivered after its close)
  change no phase.
- The fast paths that write ``state`` without queueing an event account for
  themselves, behind one ``c.metered`` check: an async boundary's ``on_demand`` (a pull
  delivered at once), ``_give`` (a batch that meets the demand), ``on_elements`` (a
  fused chain's pull answered from the buffer) and ``_deliver``/junction offer; a fused
  chain's ``_request`` and a fan-in junction's ``_pull_in`` (a pull of an empty
  boundary delivered at once, or one a ``map_async(1)`` takes synchronously); Merge's
  direct hand-down (``_hand_down``: its push; ``_accept_i``/``_accept_one_i``: the input
  pulled again at once) and a ``map_async`` offering its result to a fan-in junction
  (its push). One reading is shared there: when ``map_async(1)`` offers its one result
  and Merge pulls the input again at once (``_accept_one_i``), only the junction's code
  runs between the push and the pull, so the pending phase goes on (a push and a pull
  counted, no reading; ``offer_one_hook``). ``pulled``/``unpended`` below say what they
  do.
- An async boundary's direct re-request (``_BoundaryOut._demand_peer``) runs the
  producer's island nested in the consumer's run. A consumer that has not asked again by
  then (idle: a fused chain that read the boundary's buffer in place and still hands its
  outputs on, a stage with an element pushed and not yet handled) is held up by that run
  and, in Akka's model, waits for the producer with its request out: the run's time is
  added to the connection's pending (starved) time, from the re-request's own clock
  reading to one after the run, with no phase change and no count (a reading more per
  such hop only: ~1 in 50 elements on B2). Without it the stage behind the boundary
  looked busy (blamed 0.92) while the stage before it worked
  (``tests/observe/test_blame_behind_boundary.py``).
- The hand-overs that move elements without a transition (``_hand_over_up_to``,
  ``_lent``: see ``reactive._impl.fused``) count a push per batch and, for a take, a
  pull too: ``_lent``/``_give``/``_deliver`` themselves; a take in ``takes`` (one
  counter for its pull and its push, added to both when read): a fused chain's
  ``_fill`` counts its own, a wrapper made here at materialization those of any other
  consumer (a ``map_async``, a junction, a sink behind a boundary). The wrapper is kept
  on the connection (``counted_take``, and ``counted_settle`` for a lazy take), where
  ``hand_over_hook``/``settle_hook`` find it: an attribute set on the upstream logic
  after its ``__init__`` could push it off CPython's shared-key layout (an async
  boundary's output had 29 attributes; a 30th made every attribute read on it a dict
  lookup, ~2% of B2 with metrics on; see ``reactive._stage.logic._LogicFields``).
  A junction's one-element take from an iterable source (``_hand_over_one``, Partition's
  path) is counted the same way by a wrapper kept on the connection
  (``counted_take_one``, found by ``take_one_hook`` with the connection): a take, and the
  element unless the count is derived (below). A fan-out junction's hand-over to one
  output (Balance's ``_hand_over_i``) is wrapped the same way (``counted_port_take``,
  found by ``hand_over_hook_of`` only); its one-element form (``_hand_over_one_i``) is
  counted by its caller, a ``map_async(1)`` worker taking its next element.
  A lazy take's elements: from a range, read off the source's iterator when the metrics
  are read (``element_count``, from the start: nothing per take, nothing wrapped when a
  fused chain takes); from a tuple, the same from its first take on (a tuple may hold a
  None, which fails the source with elements taken and not sent); from a list, off its
  iterator's length hint when the take settles; otherwise through a counter zipped
  with the iterator. A ``None`` that a fast path finds among what it took (RS rule
  2.13: the source fails) is taken off again, with whatever the take read after it
  (``unsent``, set through ``note_unsent``): the count is what the element-at-a-time
  source would have pushed.

``tests/observe/test_metering_reference.py`` runs the accounting that this replaced (a
``state`` property whose setter timed the phases from the bits of every write) side by
side with this one on random schedules: the times and pulls are equal.

What this costs (B2: four islands, the chain's work per element small). In
instructions (callgrind, the marginal cost per element between 40k and 120k elements,
which no other load on the machine changes): metrics off 5,231 per element, on 5,676
(0.92x; it was 5,585 and 6,352, 0.88x, before the stage counters left the logics,
``_give`` counted in one branch, the fused chain counted its own takes and ``metered``
became a slot; 5,337 and 5,951 before the counted takes moved to the connection, the
direct re-request hop counted a metered pull itself and the logics' fields became
slots). In process time ~0.89-0.92x in paired rounds in one process (as ``make bench``
runs them; the clock reads cost more in time than in instructions). Taking parts
out, same method: the fast paths' clock reads and pending-time sums ~4.5% (about 0.33
clock reads per element: a pull and its answer on two connections per hop of ~8
elements; each read separates two instants with a stage's code between them, so none
can be shared without moving time from one phase to another), the per-batch push and
element counts at the boundaries ~3.5%, the rest (phase marks, pull counts, the
counting queue of the sink's pulls, takes, the snapshot when the graph ends) ~5%.
B1 (one fused chain) ~0.99x. Later (this machine, Materializer(blocking_threshold=1e9),
mean of three heap layouts): off 5,840, on 6,546 (0.89x) with the range source's
sub-range takes wrapped in an object per take on a metered connection; 6,347 (0.92x)
since they are the plain path's tuple, read by ``iterator_left`` (~0.80x -> ~0.85x in
paired time rounds): of what is left, the async boundaries' metered code ~430 per
element (its int counters and clock reads; each counter update allocates an int, which
costs more than its bytecodes under pymalloc), the fused chain's takes and pulls ~100.
A graph without metrics has plain connections, the
island's own queue and unwrapped methods: it pays one slot check (``metered``) per batch
at the fast-path sites above.

Stage-level counters (exceptions raised by a stage's handlers, supervision restarts and
resumes, whether it failed) are a ``StageMeter`` on the stage's connections, which
``GraphStageLogic``'s ``_handle_error``, ``_resume_counted`` and ``fail_stage`` update
(nothing is set on the logic itself: an attribute added after its ``__init__`` can push
the instance off CPython's shared-key attribute layout, and that cost ~5% on B2).
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from typing import TYPE_CHECKING, Any

from .._impl.clock import LoopClock
from .._impl.interpreter import Connection
from .._ops.sources import _END
from .._stage.batch import (
    NOTHING,
    _per_port,
    hand_over_hook,
    lend_hook,
    settle_hook,
    take_one_hook,
)
from .._stage.logic import _Batch

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["CountingQueue", "MeteredConnection", "StageMeter", "instrument"]

IDLE, PENDING, CLOSED = 0, 1, 2


def time_of(clock: Any) -> Callable[[], float]:
    """The cheapest call reading ``clock``: asyncio's own loops read ``time.monotonic``
    (their ``time()`` is exactly that), other clocks (``ManualClock``) their ``time``."""
    if isinstance(clock, LoopClock):
        if type(clock.loop).time is asyncio.BaseEventLoop.time:
            return time.monotonic
        return clock.loop.time
    read: Callable[[], float] = clock.time
    return read


class MeteredConnection(Connection):
    """A ``Connection`` that counts its pushes, pulls and elements and times its phases.

    ``state`` is the plain slot of ``Connection``. The counters live on the connection
    itself; the port actions update them through ``q`` (a ``CountingQueue``), the fast
    paths that write ``state`` without queueing an event call ``pulled``/``unpended``
    (or count their pushes themselves).
    """

    __slots__ = (
        "now",
        "pushes",
        "pulls",
        "elements",
        "phase",
        "opened",
        "pend",
        "closed_at",
        "derive",
        "out_meter",
        "in_meter",
        "takes",
        "counted_take",
        "counted_settle",
        "counted_take_one",
        "counted_port_take",
        "unsent",
    )

    def __init__(
        self, out_logic: Any, out_port: Any, in_logic: Any, in_port: Any, clock: Any
    ) -> None:
        super().__init__(out_logic, out_port, in_logic, in_port)
        self.metered = True  # (see ``Connection``)
        self.now = now = time_of(clock)
        self.pushes = 0
        self.pulls = 0
        self.elements = 0
        # Hand-overs taken across the connection (``_hand_over_up_to``: a fused chain's
        # ``_fill`` counts its own, a wrapper set by ``instrument`` those of other
        # consumers): each stands for one pull and one push with no phase change, so
        # the pulls and pushes read are ``pulls + takes`` and ``pushes + takes``.
        self.takes = 0
        # IDLE, PENDING or CLOSED: kept by the accounting below (not derived from
        # ``state``, which the interpreter also writes on deliveries that change nothing
        # here).
        self.phase = IDLE
        self.opened = now()
        # Pending (starved) seconds, kept as a running sum: entering the phase subtracts
        # the clock, leaving it adds it (one read and one update per phase change; idle
        # time is the open lifetime minus this, see ``times``).
        self.pend = 0.0
        self.closed_at: float | None = None
        # What ``element_count`` reads instead of ``elements`` when the count is derived
        # from elsewhere (an iterable source of a range or tuple, see ``_counted_take``).
        self.derive: Callable[[], int] | None = None
        # The ``StageMeter`` of the out side's and the in side's stage, when it has
        # metrics on (set by ``instrument``; read by ``GraphStageLogic._stage_meter``).
        self.out_meter: StageMeter | None = None
        self.in_meter: StageMeter | None = None
        # The out side's ``_hand_over_up_to`` (and a lazy one's ``_hand_over_settle``)
        # counting what it hands over here, when ``instrument`` wraps it: the consumer
        # finds them through ``hand_over_hook``/``settle_hook`` with this connection
        # (nothing is set on the logic, see ``GraphStageLogic._stage_meter``).
        self.counted_take: Callable[[int], Any] | None = None
        self.counted_settle: Callable[[BaseException | None], None] | None = None
        # The out side's ``_hand_over_one`` (an iterable source) counting the element it
        # hands over here, found by ``take_one_hook`` with this connection.
        self.counted_take_one: Callable[[], Any] | None = None
        # A fan-out junction's per-output hand-over (``_hand_over_i``) counting what it
        # hands over here, found by ``hand_over_hook_of`` only (kept apart from
        # ``counted_take``, which any consumer's ``hand_over_hook`` finds: a fused chain
        # would then take from Balance with metrics on and not without, and count twice).
        self.counted_port_take: Callable[[int], Any] | None = None
        # Elements a fast path took from the source's iterator but never sent: a ``None``
        # (RS rule 2.13: it fails the source) and what a take read after it. The counts
        # above see the iterator's consumption; the element-at-a-time source never pushes
        # these. Set where the ``None`` is found (``note_unsent``), once per stream.
        self.unsent = 0

    def pulled(self) -> None:
        """Demand became pending (a pull, or a fast path setting ``DEMAND``)."""
        if self.phase == IDLE:
            now = self.now  # (a slot: called as a local, no method lookup)
            self.phase = PENDING
            self.pend -= now()
            self.pulls += 1

    def unpended(self) -> None:
        """Pending demand was answered (by a push a fast path counts itself)."""
        if self.phase == PENDING:
            now = self.now
            self.phase = IDLE
            self.pend += now()

    def closed(self) -> None:
        """Either side closed: the connection is no longer timed."""
        phase = self.phase
        if phase != CLOSED:
            self.phase = CLOSED
            now = self.now()
            if phase == PENDING:
                self.pend += now
            self.closed_at = now

    def element_count(self) -> int:
        """Elements through the connection so far (``elements``, or what ``derive`` says),
        less what a fast path took from the source's iterator and never sent."""
        derive = self.derive
        return (self.elements if derive is None else derive()) - self.unsent

    def times(self) -> tuple[float, float]:
        """(idle, pending) seconds up to now, the current phase included."""
        end = self.closed_at
        if end is None:
            end = self.now()
        pending = self.pend + end if self.phase == PENDING else self.pend
        return end - self.opened - pending, pending


class CountingQueue:
    """What a metered connection's ``q`` is: its island's event queue, seen through the
    accounting.

    Every port action (``pull``, ``push``, ``complete``, ``fail``, ``cancel`` and the
    junctions' spelled-out pushes) writes ``state`` and then appends the connection to
    ``c.q``; the state at that moment says which action it was (a close bit, else
    ``PUSH_REQ``, else ``PULL_REQ``). The deliveries the interpreter writes without an
    append (PULL_REQ -> DEMAND, PUSH_REQ -> AVAIL, grab, a termination or cancellation
    delivered after the close) change no phase. ``len``, indexing and ``pop`` are the
    queue's. ``instrument`` gives every metered connection one (an async boundary's
    ``_deliver`` relies on it: it peeks at ``queue`` itself, with no call in between).
    """

    __slots__ = ("queue",)

    def __init__(self, queue: Any) -> None:
        self.queue = queue

    def append(self, c: Any, _batch: Any = _Batch) -> None:
        """Account for the action just written into ``c.state``, then queue ``c``."""
        st = c.state
        if st & 48:  # IN_CLOSED | OUT_CLOSED: a cancellation, completion or failure
            c.closed()
        elif st & 4:  # PUSH_REQ: a push (one element, or a _Batch of them)
            c.pushes += 1
            e = c.elem
            c.elements += len(e) if type(e) is _batch else 1
            if c.phase == PENDING:
                now = c.now  # (a slot: called as a local, no method lookup)
                c.phase = IDLE
                c.pend += now()
        elif c.phase == IDLE:  # PULL_REQ: a pull
            now = c.now
            c.phase = PENDING
            c.pend -= now()
            c.pulls += 1
        self.queue.append(c)

    def __len__(self) -> int:
        return len(self.queue)

    def __getitem__(self, i: int) -> Any:
        return self.queue[i]

    def pop(self) -> Any:
        """The queue's ``pop`` (its last event)."""
        return self.queue.pop()


class StageMeter:
    """Stage-level counters: errors raised by its handlers, restarts, resumes, failure."""

    __slots__ = ("errors", "restarts", "resumes", "failed")

    def __init__(self) -> None:
        self.errors = 0
        self.restarts = 0
        self.resumes = 0
        self.failed = False


#: Iterator types whose ``__length_hint__`` is exact: what a lazy take consumed from them
#: is read off the iterator, with no cost per element.
_EXACT_LENGTH = frozenset(
    type(it) for it in (iter([]), iter(()), iter(range(0)), iter(range(2**64)))
)


def _counted_take(
    orig: Any, m: MeteredConnection, lazy: bool, logic: Any, count: bool = True
) -> Any:
    """``orig`` (a logic's ``_hand_over_up_to``) counting what it hands over on ``m``: its
    elements, and (``count``) the take itself, unless the consumer counts its takes."""
    if lazy and type(getattr(logic, "iterable", None)) in _IMMUTABLE:
        # A lazy take from a range or a tuple: the source's iterator says exactly how many
        # elements it gave up, whichever way (takes, or pushes on pulls), so the count is
        # read when the metrics are read (``element_count``): what the iterator had at the
        # first take (plus what went out before it, plus the element looked ahead) minus
        # what it has left and the element it now holds. Nothing per take but the push
        # and the pull, and the take's settle is not wrapped.
        def take_exact(n: int) -> Any:
            lazy_it = orig(n)
            if lazy_it is None:
                return None
            if count:
                m.takes += 1
            if m.derive is None:
                start = m.elements + iterator_left(logic) + 1

                def derive() -> int:
                    held = logic.nxt is not _END  # the element looked ahead
                    count: int = start - iterator_left(logic) - held
                    return count

                m.derive = derive
            return lazy_it

        return take_exact
    if lazy:
        # The take is lazy (the chain's loop iterates the user's iterator, see
        # _IterableLogic._hand_over_up_to): count what it consumed when the take settles
        # (the batch protocol settles each lazy take before the next one: one take is
        # open at a time). A list iterator says how many it has left: the count is its
        # length hint before the take (plus the element looked ahead) minus the one
        # after; any other is counted with a ``zip`` against a counter (which advances
        # only for elements really taken).
        settle = logic._hand_over_settle
        before = -1  # the open take's length hint (+ 1), exact iterators
        counter: Any = None  # the open take's counter, other iterators

        def take(n: int) -> Any:
            nonlocal before, counter
            lazy_it = orig(n)
            if lazy_it is None:
                return None
            if count:
                m.takes += 1
            it = logic.it
            if type(it) in _EXACT_LENGTH:
                before = it.__length_hint__() + 1
                return lazy_it
            c = counter = itertools.count()
            return map(_FIRST, zip(lazy_it, c, strict=False))

        def take_settle(exc: BaseException | None) -> None:
            nonlocal before, counter
            if before >= 0:
                m.elements += before - logic.it.__length_hint__()
                before = -1
            elif counter is not None:
                m.elements += next(counter)
                counter = None
            settle(exc)

        m.counted_settle = take_settle
        return take

    def take_now(n: int) -> Any:
        batch = orig(n)
        if batch:
            if count:
                m.takes += 1
            m.elements += len(batch)
        return batch

    return take_now


_FIRST = operator.itemgetter(0)


def _counted_take_one(orig: Callable[[], Any], m: MeteredConnection) -> Callable[[], Any]:
    """``orig`` (an iterable source's ``_hand_over_one``) counting on ``m`` what it hands
    over: one pull and one push with no phase change (a take, in ``takes``), and the
    element unless the count is derived from the source's iterator (``derive``: then the
    iterator has counted it already)."""

    def take_one() -> Any:
        x = orig()
        if x is not NOTHING:
            m.takes += 1
            if m.derive is None:
                m.elements += 1
        return x

    return take_one


def _counted_port_take(orig: Callable[[int], Any], m: MeteredConnection) -> Callable[[int], Any]:
    """``orig`` (a fan-out junction's ``_hand_over_i`` for the output of ``m``, never lazy)
    counting on ``m`` what it hands over: a take (one pull and one push with no phase
    change) and its elements."""

    def take(n: int) -> Any:
        batch = orig(n)
        if batch:
            m.takes += 1
            m.elements += len(batch)
        return batch

    return take


def iterator_left(logic: Any) -> int:
    """What an iterable source's iterator has left (its length hint), a take of a
    sub-range of its range open or not (``_IterableLogic._hand_over_up_to``: ``logic.it``
    is then the tuple of the range's iterator, the take's and where the take ends): as if
    the take's loop read the range's iterator itself, the take's first element (read
    ahead) counted as taken from the start (as ``chain((first,), islice(it, n - 1))``
    has it)."""
    it = logic.it
    if type(it) is tuple:
        rit, lazy, end = it
        # The range's iterator is one past the take's first element (``i``): before the
        # take's loop read that element the range has ``size - i - 1`` left, after it
        # read ``r >= 1`` of its ``end - i`` elements ``size - i - r``, the take's left
        # ``end - i - r`` plus the ``size - end`` after it.
        taken_left: int = lazy.__length_hint__() + len(logic.iterable) - end
        left: int = rit.__length_hint__()
        return taken_left if taken_left < left else left
    hint: int = it.__length_hint__()
    return hint


def _range_derive(logic: Any) -> Callable[[], int]:
    """The element count of an iterable source of a ``range``, read off its iterator
    (``element_count``): the range's length minus what the iterator has left and the
    element looked ahead, whichever way the elements went (takes, or pushes on pulls).
    A range holds no None, so every element taken from the iterator went out."""
    total: int = iter(logic.iterable).__length_hint__()

    def derive() -> int:
        if logic.it is None:  # not started
            return 0
        held = logic.nxt is not _END  # the element looked ahead
        count: int = total - iterator_left(logic) - held
        return count

    return derive


#: Iterables whose iterator's length hint can change only by iterating (immutable): an
#: iterable source of one of these has its element count derived when it is read.
_IMMUTABLE = frozenset((range, tuple))


def instrument(logics: list[Any]) -> None:
    """Give the logics of a metered materialization their counters (before they start).

    A ``_hand_over_up_to`` fast-path hook is wrapped only on a batch connection that is
    metered: it moves elements across it without a push (``_give``/``_lent`` count for
    themselves). The wrapper goes on the connection (``counted_take``), not the logic.
    """
    for logic in logics:
        if logic._attributes.get("metrics"):
            # On the stage's connections (all metered: a connection is when either side
            # has metrics), where ``GraphStageLogic._stage_meter`` finds it: nothing is
            # set on the logic itself (see there).
            sm = StageMeter()
            for conn in logic._conns.values():
                if type(conn) is MeteredConnection:
                    if conn.out_logic is logic:
                        conn.out_meter = sm
                    if conn.in_logic is logic:
                        conn.in_meter = sm
        for port, conn in logic._conns.items():
            if type(conn) is not MeteredConnection:
                continue
            if type(conn.q) is not CountingQueue:
                conn.q = CountingQueue(conn.q)
            if not conn.batch:
                continue
            m = conn
            if port is conn.out_port and conn.out_logic is logic:
                per_output = _per_port(logic, conn.out_handler, "_hand_over_i")
                if per_output is not None:
                    # A fan-out junction's hand-over to this output (``_hand_over_i``),
                    # found by ``hand_over_hook_of``. (Its one-element hand-over,
                    # ``_hand_over_one_i``, is counted by its caller: see
                    # ``hand_over_one_hook_of``.)
                    m.counted_port_take = _counted_port_take(per_output, m)
                    continue
                one = take_one_hook(logic)
                if one is not None:  # a junction's one-element take (``take_one_hook``)
                    m.counted_take_one = _counted_take_one(one, m)
                take = hand_over_hook(logic)
                if take is None:
                    continue
                lazy = settle_hook(logic) is not None
                if not getattr(conn.in_logic, "_counts_takes", False):
                    m.counted_take = _counted_take(take, m, lazy, logic)
                    continue
                # A fused chain downstream counts its takes itself (``_fill``), and never
                # takes from a logic that lends its buffer (an async boundary: ``_lent``
                # counts): nothing to wrap there, nor for a range, whose count is read
                # off the source's iterator. (Nothing set on the logic keeps its
                # attribute layout; see ``GraphStageLogic._stage_meter``.)
                if lend_hook(logic) is not None:
                    continue
                if lazy and type(getattr(logic, "iterable", None)) is range:
                    m.derive = _range_derive(logic)
                    continue
                m.counted_take = _counted_take(take, m, lazy, logic, count=False)
