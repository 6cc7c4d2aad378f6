"""The fused graph interpreter: connections, islands and the event loop that drives them.

Lifecycle
    The materializer groups stage logics into *islands*. Each island is one ``Island``
    object running on one asyncio task. The task starts every logic (``pre_start``) in
    materialization order, then processes events until every logic has stopped.

Connection state
    Every edge between two logics of an island is a ``Connection`` with an integer
    ``state`` made of bits. The in side (downstream logic) sees ``IN_CLOSED``,
    ``AVAIL`` (an element waits to be grabbed) and "pulled" (any of ``PULL_REQ``,
    ``DEMAND``, ``PUSH_REQ``). The out side (upstream logic) sees ``OUT_CLOSED`` and
    ``DEMAND`` (it received ``on_pull`` and has not pushed yet). ``*_REQ`` bits mark
    events that were sent and not yet delivered.

Event queue
    Port actions never call the other side's handler directly (that would re-enter a
    logic while its own handler is still running). They flip bits (``PUSH_REQ``,
    ``PULL_REQ``, ``COMPLETE_REQ``, ``FAIL_REQ``, ``CANCEL_REQ``) and append the
    connection to the island's FIFO ``queue``; the island pops it and dispatches on the
    bits (push and pull inline, as they are the hot path). An exception escaping a
    handler fails the logic that owns the handler (``fail_stage``), which is how a user
    function that raises fails the stream with its own exception.

Mailbox and inline execution
    Signals from outside the island (async callbacks, timers, the neighbouring island's
    demand or elements) go through ``signal()``. When the island is idle (its task is
    parked waiting for work) the signal is executed *inline* on the caller's stack, up
    to a small nesting depth; otherwise it is queued in the mailbox and the island's
    task is woken. Inline execution is what makes a hop across an async boundary cost a
    few function calls instead of an event-loop round trip. A signal that finds the
    island parked with its queue and mailbox empty skips the mailbox: the handler runs
    at once, as the run's first event. Nested in another island's run, ``execute``
    then runs only for the events it left behind; as the outermost run (a worker
    task's result, a timer), the signal is that run: timed, its budget counting the
    handler, and the loop (``_run``) entered only for what the handler left behind.
    An async boundary spells the nested case out for its two hot signals (the batch
    handed over, the demand re-requested: ``reactive._impl.boundary``) and ends it with
    ``_after_nested_run``; a ``map_async(1)`` worker spells out the
    outermost case for its results (``reactive._ops.async_``: one call layer less per
    element of a worker pool), watch included.

Fairness
    One ``execute()`` processes at most ``EVENT_LIMIT`` events; when work remains the
    island's task yields to the event loop (``asyncio.sleep(0)``) before continuing, so a
    busy stream never starves other tasks or streams on the same loop. Each step of a
    slice takes a mailbox entry first when there is one, so a stream whose queue never
    drains still sees its async callbacks, timers and kill switches. Boundary flush hooks
    run when both the queue and the mailbox are empty (the end of a burst), which is what
    batches the hand-over to the next island. An island run inline (nested in another
    island's ``execute``) defers its hooks to the outermost ``execute`` of the cascade:
    the island below may still feed it, so its batch keeps filling. That bookkeeping
    (``_LoopScheduling``) is per event loop.

Blocked-loop watch
    An outermost ``execute`` (entered from the event loop, not nested in another
    island's) reads the materializer's clock before and after: two reads per run,
    nothing per event. A run longer than ``Materializer.blocking_threshold`` starts a
    diagnosis (``reactive._impl.blocking``) during which every ``execute`` on the loop
    processes one event at a time (``budget=1``), timed and attributed to the logic
    whose handler ran it, until the blocking stage is named in one warning.

Metrics
    A graph with metrics on (``reactive.observe``) is wired with ``MeteredConnection``
    edges (``state`` still a plain slot) whose ``q`` is a counting front of the island's
    queue: a port action's append accounts for the pull, push or close it just wrote,
    and the fast paths that write ``state`` without an event account for themselves
    behind ``c.metered``; the connection's phases (demand pending, no demand, closed)
    are timed on the materializer's clock. The loop below is unchanged: its deliveries
    change no phase. Each island carries the name of the graph that created it
    (``graph``) for snapshots.

Finishing
    When its last logic stops the island is finished: its task ends and the hooks
    registered with ``at_finish`` run (a sink lets go of its failed result there, so
    an unobserved failure is reported at once: ``reactive._impl.unobserved``).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from .blocking import blocked
from .clock import LoopClock

if TYPE_CHECKING:
    from .._stage.logic import GraphStageLogic
    from .blocking import Diagnosis
    from .materializer import Materializer

log = logging.getLogger("reactive")

# -- connection state bits --------------------------------------------------------------
#
#   bit   8        7       6         5          4         3      2        1       0
#       CANCEL_  FAIL_  COMPLETE_  OUT_       IN_       AVAIL  PUSH_    DEMAND  PULL_
#       REQ      REQ    REQ        CLOSED     CLOSED           REQ              REQ
#       256      128    64         32         16        8      4        2       1
#
# One element's round trip walks the low bits right to left and back to 0:
#   0 --pull--> PULL_REQ --on_pull--> DEMAND --push--> PUSH_REQ --on_push--> AVAIL --grab--> 0
# so at most one of PULL_REQ, DEMAND, PUSH_REQ, AVAIL is set on an open connection
# (``test_interpreter_masks`` checks the masks below against that invariant).
PULL_REQ = 1  # in side pulled; on_pull not yet delivered
DEMAND = 2  # out side got on_pull and has not pushed yet
PUSH_REQ = 4  # out side pushed; on_push not yet delivered
AVAIL = 8  # element delivered to the in side, not yet grabbed
IN_CLOSED = 16  # in side closed (cancelled by it, or completion/failure delivered)
OUT_CLOSED = 32  # out side closed (completed/failed by it, or cancellation delivered)
COMPLETE_REQ = 64  # completion sent, not yet delivered
FAIL_REQ = 128  # failure sent, not yet delivered
CANCEL_REQ = 256  # cancellation sent, not yet delivered
PULLED = PULL_REQ | DEMAND | PUSH_REQ

# -- masks of the hot loop ---------------------------------------------------------------
# ``Island._run`` (the loop of ``execute``) spells these as literals (a module global
# costs a lookup per use, paid ~10 times per element in a chain of custom stages). Each
# literal line there ends
# with a comment that repeats the expression with these names; the test
# ``tests/reactive/test_interpreter_masks.py`` checks that each comment evaluates to its
# line and that the masks mean what the loop relies on, over every state.
#
#   st & PUSH_OPEN_MASK == PUSH_REQ        a push to deliver, the inlet open       (20, 4)
#                        0b0_0001_0100     IN_CLOSED | PUSH_REQ
#   st & PULL_OPEN_MASK == PULL_REQ        a pull to deliver, both sides open      (49, 1)
#                        0b0_0011_0001     OUT_CLOSED | IN_CLOSED | PULL_REQ
#   st ^ PUSH_DELIVER                      PUSH_REQ -> AVAIL (never both set)      (12)
#                        0b0_0000_1100     AVAIL | PUSH_REQ
#   st ^ PULL_DELIVER                      PULL_REQ -> DEMAND (never both set)     (3)
#                        0b0_0000_0011     DEMAND | PULL_REQ
#   st & TERMINATION_REQ                   a completion or failure to deliver      (192)
PUSH_OPEN_MASK = PUSH_REQ | IN_CLOSED
PULL_OPEN_MASK = PULL_REQ | IN_CLOSED | OUT_CLOSED
PUSH_DELIVER = PUSH_REQ | AVAIL
PULL_DELIVER = PULL_REQ | DEMAND
TERMINATION_REQ = COMPLETE_REQ | FAIL_REQ

EVENT_LIMIT = 1024
MAX_INLINE_DEPTH = 4


class _LoopScheduling:
    """Per-event-loop state shared by every island on that loop (islands of several
    materializers on one loop signal each other inline; loops in other threads must not
    see it)."""

    __slots__ = (
        "inline_depth",
        "executing",
        "deferred",
        "drain_scheduled",
        "diagnosis",
        "__weakref__",
    )

    def __init__(self) -> None:
        self.inline_depth = 0
        # Runs on the stack now: ``execute`` calls and outermost ``signal`` runs (a
        # signal run inline in another island's run does not count itself: >= 1 is
        # all that the islands it signals in turn need to see).
        self.executing = 0
        # Flush hooks of nested islands, run when the outermost ``execute`` settles.
        self.deferred: deque[Any] = deque()
        self.drain_scheduled = False
        # A blocked-loop diagnosis in progress (reactive._impl.blocking), or None.
        self.diagnosis: Diagnosis | None = None

    def drain_soon(self) -> None:
        """Run flush hooks left behind by an outermost execute that stopped early."""
        self.drain_scheduled = False
        d = self.deferred
        while d and self.executing == 0:
            d.popleft()()


_SCHEDULING: weakref.WeakKeyDictionary[Any, _LoopScheduling] = weakref.WeakKeyDictionary()


def _scheduling_for(loop: Any) -> _LoopScheduling:
    s = _SCHEDULING.get(loop)
    if s is None:
        s = _SCHEDULING[loop] = _LoopScheduling()
    return s


class Connection:
    """One edge between an outlet and an inlet of two logics in the same island."""

    __slots__ = (
        "state",
        "elem",
        "in_logic",
        "in_handler",
        "out_logic",
        "out_handler",
        "in_port",
        "out_port",
        "fail_cause",
        "cancel_cause",
        "batch",
        "demand_n",
        "q",
        "metered",
    )

    def __init__(self, out_logic: Any, out_port: Any, in_logic: Any, in_port: Any) -> None:
        # A ``MeteredConnection`` (reactive.observe) says True: the fast paths that move
        # elements or write ``state`` without an event count on it themselves, once per
        # batch. A slot, not a class attribute: CPython 3.11 specializes a slot read,
        # not a class attribute read through an instance (B2 reads it ~0.5 times per
        # element, with metrics on or off).
        self.metered = False
        self.state = 0
        self.elem: Any = None
        self.out_logic = out_logic
        self.out_port = out_port
        self.in_logic = in_logic
        self.in_port = in_port
        self.in_handler: Any = None
        self.out_handler: Any = None
        self.fail_cause: BaseException | None = None
        self.cancel_cause: BaseException | None = None
        # Fast path: both ends speak the batch protocol (see _impl/fused.py).
        self.batch = False
        self.demand_n = 1
        self.q: Any = None

    def deliver_termination(self) -> None:
        """Deliver a completion or failure to the in side."""
        st = self.state
        self.state = st & ~(COMPLETE_REQ | FAIL_REQ)
        if st & IN_CLOSED:
            return
        self.state |= IN_CLOSED
        logic = self.in_logic
        try:
            if not logic._stopped:
                if st & FAIL_REQ:
                    self.in_handler.on_upstream_failure(self.fail_cause)
                else:
                    self.in_handler.on_upstream_finish()
        finally:
            logic._port_closed()

    def deliver_cancel(self) -> None:
        """Deliver a cancellation to the out side."""
        st = self.state
        self.state = st & ~CANCEL_REQ
        if st & OUT_CLOSED:
            return
        self.state = (self.state | OUT_CLOSED) & ~DEMAND
        logic = self.out_logic
        try:
            if not logic._stopped:
                self.out_handler.on_downstream_finish(self.cancel_cause)
        finally:
            logic._port_closed()

    def __repr__(self) -> str:
        return f"Connection({self.out_port!r} -> {self.in_port!r}, state={self.state:#x})"


def _handler_logic(c: Any, st: int, entry: Any) -> Any:
    """The logic whose handler the event ``c`` (state ``st`` before dispatch) or the
    mailbox ``entry`` was delivered to (None if neither)."""
    if c is not None:
        # The in side's handler ran for a push or a termination, the out side's for a
        # pull or a cancellation.
        in_side = st & PUSH_OPEN_MASK == PUSH_REQ or (
            st & PULL_OPEN_MASK != PULL_REQ and st & TERMINATION_REQ != 0
        )
        return c.in_logic if in_side else c.out_logic
    if entry is not None:
        return entry[0]
    return None


def _as_failure(logic: Any, exc: BaseException, stage: str | None = None) -> Exception:
    """What a handler (or ``pre_start``) of ``logic`` raised, as the stage's failure.

    An ``Exception`` is itself. An ``asyncio.CancelledError`` raised by a stage's
    synchronous code (a function calling ``result()`` of a cancelled future, say) cannot
    be the cancellation of the island's task: a run of the island never awaits. It
    fails the stage as an ``AsyncCallCancelledError`` (an ``Exception``, so supervision
    decides on it; the ``CancelledError`` as its cause), as a cancelled awaitable of
    ``map_async`` does. Escaping as it is, it ended the island's task (reported as a
    materializer shutdown) or, raised in a run on another task's stack, the callback
    of a timer or a worker, leaving the stream hanging. ``stage``: the name the message
    gives instead of ``logic``'s (an operator of a fused chain, named as its own stage)."""
    if isinstance(exc, Exception):
        return exc
    from .._errors import AsyncCallCancelledError

    err = AsyncCallCancelledError(
        f"[{stage or logic._stage_name}] the stage's code raised asyncio.CancelledError (a "
        "function given to the operator, or a handler); it fails the stage as any exception"
    )
    err.__cause__ = exc
    return err


def _time_source(clock: Any) -> Any:
    """``clock.time``, or ``time.monotonic`` itself when that is what it returns (the
    loop clock of asyncio's own loops): an outermost ``execute`` reads it twice, and a
    C function costs no Python frames."""
    if type(clock) is LoopClock and type(clock.loop).time is asyncio.BaseEventLoop.time:
        return time.monotonic
    return clock.time


class Island:
    """A group of fused logics run by one interpreter on one asyncio task."""

    __slots__ = (
        "materializer",
        "name",
        "queue",
        "mailbox",
        "logics",
        "live",
        "running",
        "started",
        "finished",
        "task",
        "waiter",
        "flush_hooks",
        "loop",
        "sched",
        "_aborted",
        "_finish_hooks",
        "watch",
        "now",
        "last_logic",
        "started_logics",
        "graph",
        "direct_depth",
    )

    def __init__(self, materializer: Materializer, name: str) -> None:
        self.materializer = materializer
        self.name = name
        self.queue: deque[Any] = deque()
        self.mailbox: deque[tuple[Any, Any, Any]] = deque()
        # Live logics in materialization order (a dict: stopped ones are dropped in O(1),
        # so an island hosting millions of short substreams does not grow).
        self.logics: dict[GraphStageLogic, None] = {}
        self.live = 0
        self.running = False
        self.started = False
        self.finished = False
        self.task: asyncio.Task[None] | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.flush_hooks: list[Any] = []
        self.loop = materializer.loop
        self.sched = _scheduling_for(self.loop)
        self._aborted = False
        self._finish_hooks: list[Any] | None = None
        # Blocked-loop watch (reactive._impl.blocking): the threshold in seconds (None:
        # off) and the clock timing each outermost run.
        self.watch: float | None = materializer.blocking_threshold
        self.now = _time_source(materializer.clock)
        self.last_logic: Any = None  # whose handler the last one-event run called
        self.started_logics: list[GraphStageLogic] = []
        # The name of the graph whose materialization created the island (reactive.observe).
        self.graph = ""
        # ``signal`` runs its callback directly (no mailbox) while the inline depth is
        # below this: MAX_INLINE_DEPTH, or 0 with the fast paths off (the plain path,
        # mailbox and ``execute``, for differential tests).
        self.direct_depth = MAX_INLINE_DEPTH if materializer.fast_paths else 0

    # -- starting ------------------------------------------------------------------------
    def add_logic(self, logic: GraphStageLogic) -> None:
        self.logics[logic] = None
        self.live += 1

    def start(self) -> None:
        self.task = self.materializer._spawn(self._main(), self)

    async def _main(self) -> None:
        try:
            self._start_logics()
            while not self.finished:
                more = self.execute()
                if self.finished:
                    break
                if more:
                    await asyncio.sleep(0)
                else:
                    self.waiter = self.loop.create_future()
                    try:
                        await self.waiter
                    finally:
                        self.waiter = None
        except asyncio.CancelledError:
            self.abort(None, task_cancelled=True)
            raise
        except (KeyboardInterrupt, SystemExit) as exc:
            # Raised by a stage's code (a function, a handler): not the interpreter's
            # crash. It ends the event loop as asyncio makes it; the island's streams are
            # aborted naming it.
            self.abort(exc)
            raise
        except BaseException as exc:  # pragma: no cover - interpreter bug guard
            log.exception("interpreter of island %s crashed", self.name)
            self.abort(exc)
            raise

    def _start_logics(self) -> None:
        self.running = True
        try:
            self.started_logics = list(self.logics)
            self.start_logics(self.started_logics)
        finally:
            self.running = False
        self.started = True

    def start_logics(self, logics: list[GraphStageLogic]) -> None:
        """Run ``pre_start`` of logics not started yet (the island must be running)."""
        for logic in logics:
            if logic._stopped or logic._started:
                continue
            try:
                logic._started = True
                logic.pre_start()
            except (Exception, asyncio.CancelledError) as exc:
                logic._handle_error(_as_failure(logic, exc))
            if logic._open_ports == 0 and not logic._keep_going and not logic._stopped:
                logic._stop()

    # -- signals from outside ------------------------------------------------------------
    def signal(self, logic: Any, fn: Any, arg: Any) -> None:
        """Run ``fn(arg)`` inside the island on behalf of ``logic`` (from outside it)."""
        if self.finished:
            return
        sched = self.sched
        if (
            self.waiter is not None
            and not self.running
            and sched.inline_depth < self.direct_depth
            and not self.queue
            and not self.mailbox
            and sched.diagnosis is None
        ):
            # Parked with nothing of ours waiting: run ``fn`` here as ``execute`` would
            # run it as its only mailbox entry, and enter ``execute`` only for the events
            # it left behind.
            if sched.executing:
                # Nested in another island's run (the hop across a boundary). That run
                # counts in ``executing`` already, which is all a nested ``execute`` or
                # ``signal`` below needs to see (not the outermost: ``executing`` >= 1).
                sched.inline_depth += 1
                self.running = True
                try:
                    if not logic._stopped:
                        try:
                            fn(arg)
                        except (Exception, asyncio.CancelledError) as exc:
                            logic._handle_error(_as_failure(logic, exc))
                finally:
                    self.running = False
                    sched.inline_depth -= 1
                self._after_nested_run()
                return
            else:
                # Outermost (a worker's result, a timer, a callback from another task):
                # what ``execute`` does with ``fn`` as its only mailbox entry, without the
                # mailbox. The run is timed for the blocked-loop watch from here, ``fn``
                # included, and ``fn`` counts as its first event.
                watch = self.watch
                t0 = self.now() if watch is not None else None
                sched.inline_depth += 1
                sched.executing = 1
                self.running = True
                left = False  # events, entries or hooks left behind: ``_run`` ran
                try:
                    if not logic._stopped:
                        try:
                            fn(arg)
                        except (Exception, asyncio.CancelledError) as exc:
                            logic._handle_error(_as_failure(logic, exc))
                    if self.queue or self.mailbox or self.flush_hooks or sched.deferred:
                        left = True
                        self._run(EVENT_LIMIT - 1)
                finally:
                    self.running = False
                    sched.executing = 0
                    sched.inline_depth -= 1
                    if sched.deferred:
                        self._end_run(t0)  # flush hooks left behind: settled soon
                    elif t0 is not None:
                        # ``_end_run(t0)`` with nothing deferred, spelled out (once per
                        # worker result or timer): the blocked-loop watch.
                        elapsed = self.now() - t0
                        if elapsed > watch:
                            blocked(self, elapsed)
                # (With nothing left behind by ``fn``, the queue, mailbox and hooks were
                # empty after it and nothing ran since: only ``finished`` may have moved.)
                if self.finished or (left and (self.queue or self.mailbox or self.flush_hooks)):
                    self._wake()  # finished, or budget spent: the task takes over
                return
        else:
            self.mailbox.append((logic, fn, arg))
            if self.running or not self.started:
                return
        self._execute_inline()

    def _after_nested_run(self) -> None:
        """The end of a direct run nested in another island's run (``signal``'s, or an
        async boundary's hop spelling it out): events it left behind run inline
        (``_execute_inline``); with none, its flush hooks wait for the end of the whole
        cascade, as a nested ``execute`` leaves them, and a finished island wakes its
        task."""
        if self.queue or self.mailbox:
            self._execute_inline()
            return
        if self.flush_hooks:
            self.sched.deferred.extend(self.flush_hooks)
            self.flush_hooks = []
        if self.finished:
            self._wake()

    def _execute_inline(self) -> None:
        """Run this island's events inline while the nesting depth allows, else wake its
        task (a signal that queued a mailbox entry, or a direct run that left events)."""
        sched = self.sched
        if sched.inline_depth < MAX_INLINE_DEPTH and self.waiter is not None:
            sched.inline_depth += 1
            try:
                more = self.execute()
            finally:
                sched.inline_depth -= 1
            if more or self.finished:
                self._wake()
        else:
            self._wake()

    def _wake(self) -> None:
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    # -- the event loop ------------------------------------------------------------------
    def execute(self, budget: int = EVENT_LIMIT) -> bool:
        """Process events and mailbox entries; True when work is left (budget spent).

        The queue holds connections; the state bits say which event is pending (see
        ``_run``, the loop itself).

        An outermost run (not nested in another island's) is timed with the
        materializer's clock; one longer than ``watch`` seconds starts a blocked-loop
        diagnosis, which then runs islands one event per call (``budget=1``) to name
        the stage that blocks (reactive._impl.blocking).
        """
        sched = self.sched
        if sched.diagnosis is not None and budget != 1:
            return sched.diagnosis.run(self, budget)
        t0: float | None = None
        if sched.executing == 0 and self.watch is not None:
            t0 = self.now()
        self.running = True
        sched.executing += 1
        try:
            self._run(budget)
        finally:
            self.running = False
            sched.executing -= 1
            self._end_run(t0)
        return bool(self.queue or self.mailbox or self.flush_hooks) and not self.finished

    def _end_run(self, t0: float | None) -> None:
        """The end of a run (``execute``, or ``signal``'s outermost run), once it is off
        the stack: with no run left on it and flush hooks deferred (stopped early: budget
        spent or finished), settle the cascade soon; a run timed from ``t0`` (the
        outermost) that took longer than ``watch`` starts a blocked-loop diagnosis."""
        sched = self.sched
        if sched.deferred and sched.executing == 0 and not sched.drain_scheduled:
            sched.drain_scheduled = True
            self.loop.call_soon(sched.drain_soon)
        if t0 is not None:
            elapsed = self.now() - t0
            if elapsed > self.watch:
                blocked(self, elapsed)

    def _run(self, budget: int) -> None:
        """The loop of a run: up to ``budget`` events and mailbox entries, then the flush
        hooks once both are empty. The caller (``execute``, or ``signal``'s outermost
        run) has marked the island running and counted itself in ``executing``.

        Push and pull are dispatched inline here (the hot path: no intermediate call); a
        connection queued twice (push, then completion) is handled in that order because
        a pending push takes precedence over a pending termination.
        """
        sched = self.sched
        deferred = sched.deferred
        q = self.queue
        mb = self.mailbox
        # What was being dispatched when a handler raised: ``c`` and its state ``st``
        # before dispatch (a queued event), or ``entry`` (a mailbox entry), or neither
        # (a flush hook). Recomputed in the except clause, so the loop stores no marker.
        c: Any = None
        st = 0
        k = 0
        entry: Any = None
        # Fast path: the bits and masks are spelled as literals (module globals cost a
        # lookup each); the comment on each such line spells it with the names (see the
        # masks next to the bit diagram at the top of this module).
        try:
            while True:
                try:
                    while budget > 0:
                        if mb:
                            # Signals from outside first: a busy stream must still see its
                            # kill switch, timers and neighbours' demand.
                            c = None
                            entry = mb.popleft()
                            budget -= 1
                            if not entry[0]._stopped:
                                entry[1](entry[2])
                            continue
                        if q:
                            # The budget bounds the for loop, so an event costs no counter
                            # arithmetic: every bytecode here is paid ~10 times per element
                            # of a chain of custom stages. (Ending a burst by catching the
                            # pop's IndexError instead of testing the queue per event costs
                            # more than it saves: async boundaries run many short bursts.)
                            # In chunks of at most 256 events: ``k`` is then one of CPython's
                            # cached small ints (a larger one is allocated per event). A chunk
                            # that ends with events left goes on at once, as one loop would.
                            while True:
                                for k in range(budget if budget < 256 else 256):  # noqa: B007
                                    # (A method call, not a saved ``q.popleft``: CPython 3.11
                                    # specializes a deque method's call, not a bound builtin's.)
                                    c = q.popleft()
                                    st = c.state
                                    # The two common cases: a request and nothing else pending,
                                    # one exact compare each, and the new state is a constant.
                                    if st == 4:  # st == PUSH_REQ: a push to an open inlet
                                        c.state = 8  # AVAIL
                                        c.in_handler.on_push()
                                    elif st == 1:  # st == PULL_REQ: a pull, both sides open
                                        c.state = 2  # DEMAND
                                        c.out_handler.on_pull()
                                    # The same with other bits set (a completion queued behind a
                                    # push, a closed outlet): one masked compare each and the
                                    # state moves by XOR: PUSH_REQ is never set together with
                                    # AVAIL, nor PULL_REQ with DEMAND (see push/pull).
                                    # A push to an open inlet: PUSH_REQ -> AVAIL.
                                    elif st & 20 == 4:  # st & PUSH_OPEN_MASK == PUSH_REQ
                                        c.state = st ^ 12  # st ^ PUSH_DELIVER
                                        c.in_handler.on_push()
                                    # A pull, both sides open: PULL_REQ -> DEMAND.
                                    elif st & 49 == 1:  # st & PULL_OPEN_MASK == PULL_REQ
                                        c.state = st ^ 3  # st ^ PULL_DELIVER
                                        c.out_handler.on_pull()
                                    # A push to a closed inlet: dropped.
                                    elif st & 4:  # st & PUSH_REQ
                                        c.state = st & ~4  # st & ~PUSH_REQ
                                        c.elem = None
                                    # A pull on a closed connection: dropped.
                                    elif st & 1:  # st & PULL_REQ
                                        c.state = st & ~1  # st & ~PULL_REQ
                                    elif st & (COMPLETE_REQ | FAIL_REQ):
                                        c.deliver_termination()
                                    elif st & CANCEL_REQ:
                                        c.deliver_cancel()
                                    if not q:
                                        break
                                budget -= k + 1
                                if budget <= 0 or not q:
                                    break
                            continue
                        c = entry = None
                        if self.flush_hooks:
                            hooks = self.flush_hooks
                            self.flush_hooks = []
                            if sched.executing > 1:
                                # Nested (inline) run: the island below us on the stack may
                                # still feed us. Hand over at the end of the whole cascade
                                # instead, so batches across boundaries fill up.
                                deferred.extend(hooks)
                            else:
                                for h in hooks:
                                    h()
                            continue
                        if deferred and sched.executing == 1:
                            # The cascade's deferred flush hooks, in order, one after the
                            # other while nothing of ours comes back (what this loop would
                            # run next for each; hooks count no budget).
                            deferred.popleft()()
                            while deferred and not mb and not q and not self.flush_hooks:
                                deferred.popleft()()
                            continue
                        break
                    break
                except (Exception, asyncio.CancelledError) as exc:
                    if c is not None:
                        budget -= k + 1  # the events of this run, the raising one included
                        logic = _handler_logic(c, st, None)
                        c = None
                    elif entry is not None:
                        logic = entry[0]
                        entry = None
                    else:  # pragma: no cover - flush hooks do not raise
                        log.exception("flush hook failed in island %s", self.name)
                        continue
                    logic._handle_error(_as_failure(logic, exc))
        finally:
            if sched.diagnosis is not None:  # a one-event run: whose handler ran it
                self.last_logic = _handler_logic(c, st, entry)

    def at_finish(self, hook: Any) -> None:
        """Run ``hook()`` once every logic of the island has stopped (at once if so)."""
        if self.finished:
            hook()
        elif self._finish_hooks is None:
            self._finish_hooks = [hook]
        else:
            self._finish_hooks.append(hook)

    def _run_finish_hooks(self) -> None:
        hooks = self._finish_hooks
        if hooks:
            self._finish_hooks = None
            for hook in hooks:
                hook()

    def logic_stopped(self, logic: GraphStageLogic) -> None:
        self.logics.pop(logic, None)
        self.live -= 1
        if self.live <= 0 and not self.finished:
            self.finished = True
            self.mailbox.clear()
            self._wake()
            self._run_finish_hooks()

    def task_cancelled(self) -> bool:
        """True while a cancellation of the island's task is pending (``asyncio.run``
        ending cancels every task of its loop: the stream is being torn down)."""
        task = self.task
        return task is not None and not task.done() and task.cancelling() > 0

    def abort(self, exc: BaseException | None, *, task_cancelled: bool = False) -> None:
        """Stop every live logic abruptly (materializer shutdown or, ``task_cancelled``,
        the cancellation of the island's task)."""
        if self._aborted:
            return
        self._aborted = True
        from .._errors import AbruptTerminationError

        if task_cancelled:
            why = (
                "its task was cancelled (the event loop is ending: asyncio.run returned "
                "with the stream still running, or every task was cancelled)"
            )
        elif exc is not None:
            why = f"{type(exc).__name__} was raised in it"
        else:
            why = "its materializer shut down"
        if isinstance(exc, Exception):
            err: Exception = exc
        else:
            err = AbruptTerminationError(f"stream island {self.name!r} was aborted because {why}")
            err.__cause__ = exc
        for logic in list(self.logics):
            if not logic._stopped:
                logic._abort(err)
        self.finished = True
        self.queue.clear()
        self.mailbox.clear()
        self._run_finish_hooks()
