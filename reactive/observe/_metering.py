"""Counters chosen at materialization: metered connections and wrapped fast-path hooks.

A graph with metrics on gets ``MeteredConnection`` edges instead of plain ``Connection``
ones. The interpreter and every port action only ever change a connection through its
``state`` bits, so a property on ``state`` sees every transition: a pull (demand
becomes pending), a push (one element, or a ``_Batch`` of them), a close. Time is split
by the connection's *phase*, read on the materializer's clock at each phase change
(nothing per event otherwise):

- ``pending``: the downstream pulled and the upstream has not pushed yet. The inlet is
  *starved* (it waits for an element).
- ``idle``: no demand outstanding. The outlet is *back-pressured* (it waits for
  demand): the downstream has not asked (it is busy, or itself back-pressured).
- ``closed``: either side closed; no longer counted.

Only the pending time is summed (the clock subtracted on entering the phase, added on
leaving it); idle time is the open lifetime minus it. A push is the entry into a phase
with ``PUSH_REQ`` set (the phase table folds that bit in), so the setter does one table
lookup per write and reads the clock only when demand starts, ends, or the connection
closes.

What this costs (B2, four islands, the chain's work per element small): a property on
``state`` alone, even with a C getter and setter, measured 0.84-0.90x of metrics off,
and plain connections with the per-batch counters above 0.93-0.98x; the setter's Python
body and the lazy-take wrapper bring metrics on to ~0.75x (paired rounds, process
time). Meeting the issue's 10% on B2 needs plain ``state`` slots, with the phase
accounting done by the port actions and fast paths that write ``state`` (some 45 sites
in ``reactive/``).

The fused fast paths move elements without events (``_hand_over_up_to``, ``_give``,
``_lent``: see ``reactive._impl.fused``). An async boundary's ``_give``, ``_lent`` and
``_deliver`` (and its junction offer) count what they move themselves when their
connection is metered (``Connection.metered``, one check per batch or delivery); a
source's ``_hand_over_up_to`` gets an instance-level wrapper here, at materialization,
that counts what it hands over. A graph without metrics has plain connections and
unwrapped methods: nothing is checked per element.

Stage-level counters (exceptions raised by a stage's handlers, supervision restarts and
resumes, whether it failed) wrap the logic's ``_handle_error``, ``_on_restart``,
``_on_resume`` and ``fail_stage`` the same way.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import time
from typing import TYPE_CHECKING, Any

from .._impl.clock import LoopClock
from .._impl.interpreter import Connection
from .._stage.batch import hand_over_hook, settle_hook
from .._stage.logic import _Batch

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["MeteredConnection", "StageMeter", "instrument"]

IDLE, PENDING, CLOSED = 0, 1, 2
#: The two phases above with ``PUSH_REQ`` set (a push not yet delivered): idle for time,
#: and entering either from a phase without it is a push.
PUSHED, CLOSED_PUSHED = 3, 4


def _phase_of(st: int) -> int:
    """The phase of a connection state (bits OUT_CLOSED|IN_CLOSED|PUSH_REQ|DEMAND|
    PULL_REQ = 55 decide it)."""
    if st & 48:
        return CLOSED_PUSHED if st & 4 else CLOSED
    if st & 3:
        return PENDING
    return PUSHED if st & 4 else IDLE


#: ``_phase_of`` for every ``state & 63``.
_PHASE = tuple(_phase_of(st) for st in range(64))


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

    The counters live on the connection itself (one attribute hop per update: every
    write of ``state`` runs the setter below).
    """

    __slots__ = (
        "_st",
        "now",
        "pushes",
        "pulls",
        "elements",
        "phase",
        "opened",
        "pend",
        "closed_at",
    )

    def __init__(
        self, out_logic: Any, out_port: Any, in_logic: Any, in_port: Any, clock: Any
    ) -> None:
        self._st = 0
        self.now = now = time_of(clock)
        self.pushes = 0
        self.pulls = 0
        self.elements = 0
        self.phase = IDLE
        self.opened = now()
        # Pending (starved) seconds, kept as a running sum: entering the phase subtracts
        # the clock, leaving it adds it (one read and one update per phase change; idle
        # time is the open lifetime minus this, see ``times``).
        self.pend = 0.0
        self.closed_at: float | None = None
        super().__init__(out_logic, out_port, in_logic, in_port)

    def _set_state(self, new: int, _phase: tuple[int, ...] = _PHASE) -> None:
        self._st = new
        phase = _phase[new & 63]
        left = self.phase
        if phase != left:
            # One phase change per pull, push and close: a pull enters PENDING, a push
            # enters PUSHED (or leaves PENDING on the fused fast paths' direct writes,
            # which count their elements themselves), a close enters a CLOSED phase.
            self.phase = phase
            if phase == 1:  # PENDING (only ever entered from IDLE or PUSHED: a pull)
                self.pend -= self.now()
                self.pulls += 1
                return
            if left == 1:
                self.pend += self.now()
            if phase:
                if phase > 2 and left < 3:  # PUSH_REQ newly set: one element or batch
                    self.pushes += 1
                    e = self.elem
                    self.elements += len(e) if type(e) is _Batch else 1
                if phase % 2 == 0 and self.closed_at is None:  # CLOSED or CLOSED_PUSHED
                    self.closed_at = self.now()

    # The getter is a C callable (no Python frame): the interpreter reads ``state``
    # several times per event; only writes need Python.
    state = property(operator.attrgetter("_st"), _set_state)

    #: The async boundary's ``_give``/``_lent`` count the batches they move on it.
    metered = True

    def times(self) -> tuple[float, float]:
        """(idle, pending) seconds up to now, the current phase included."""
        end = self.closed_at
        if end is None:
            end = self.now()
        pending = self.pend + end if self.phase == PENDING else self.pend
        return end - self.opened - pending, pending


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


def _counted_take(orig: Any, m: MeteredConnection, lazy: bool, logic: Any) -> Any:
    if lazy:
        # The take is lazy (the chain's loop iterates the user's iterator, see
        # _IterableLogic._hand_over_up_to): count what it consumed when the take settles. A list,
        # tuple or range iterator says how many it has left; any other is counted with a
        # ``zip`` against a counter (which advances only for elements really taken).
        settle = logic._hand_over_settle
        pending: list[Any] = []

        def take(n: int) -> Any:
            it = logic.it
            exact = type(it) in _EXACT_LENGTH
            before = it.__length_hint__() if exact else 0
            lazy_it = orig(n)
            if lazy_it is None:
                return None
            m.pulls += 1
            m.pushes += 1
            if exact:
                pending.append((it, before + 1))  # + the element looked ahead
                return lazy_it
            c = itertools.count()
            pending.append((None, c))
            return map(_FIRST, zip(lazy_it, c, strict=False))

        def take_settle(exc: BaseException | None) -> None:
            while pending:
                it, x = pending.pop()
                m.elements += (x - it.__length_hint__()) if it is not None else next(x)
            settle(exc)

        logic._hand_over_settle = take_settle
        return take

    def take_now(n: int) -> Any:
        batch = orig(n)
        if batch:
            m.pulls += 1
            m.pushes += 1
            m.elements += len(batch)
        return batch

    return take_now


_FIRST = operator.itemgetter(0)


def _stage_wrappers(logic: Any, sm: StageMeter) -> None:
    handle_error = logic._handle_error
    on_restart = logic._on_restart
    on_resume = logic._on_resume
    fail_stage = logic.fail_stage

    def _handle_error(exc: Exception) -> None:
        sm.errors += 1
        handle_error(exc)

    def _on_restart(exc: BaseException) -> None:
        sm.restarts += 1
        on_restart(exc)

    def _on_resume(exc: BaseException) -> None:
        sm.resumes += 1
        on_resume(exc)

    def _fail_stage(exc: BaseException) -> None:
        sm.failed = True
        fail_stage(exc)

    logic._handle_error = _handle_error
    logic._on_restart = _on_restart
    logic._on_resume = _on_resume
    logic.fail_stage = _fail_stage


def instrument(logics: list[Any]) -> None:
    """Give the logics of a metered materialization their counters (before they start).

    A ``_hand_over_up_to`` fast-path hook is wrapped only on a batch connection that is metered: it
    moves elements across it without a push (``_give``/``_lent`` count for themselves).
    """
    for logic in logics:
        if logic._attributes.get("metrics"):
            sm = StageMeter()
            logic._observe_meter = sm
            _stage_wrappers(logic, sm)
        for port, conn in logic._conns.items():
            if type(conn) is not MeteredConnection or not conn.batch:
                continue
            m = conn
            if port is conn.out_port and conn.out_logic is logic:
                take = hand_over_hook(logic)
                if take is not None:
                    lazy = settle_hook(logic) is not None
                    logic._hand_over_up_to = _counted_take(take, m, lazy, logic)
