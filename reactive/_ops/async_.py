"""Asynchronous operators: ``map_async``, ``map_async_unordered``, ``scan_async``/``fold_async``."""

from __future__ import annotations

import asyncio
import functools
import inspect
import types
from collections import deque
from typing import TYPE_CHECKING, Any

from .._checks import NONE_ELEMENT
from .._impl.blocking import blocked
from .._impl.interpreter import EVENT_LIMIT, IN_CLOSED
from .._stage.batch import (
    NOTHING,
    hand_over_hook_of,
    hand_over_one_hook_of,
    lend_hook,
    note_unsent,
    offer_hook,
    offer_one_hook,
    settle_hook,
)
from .._stage.logic import GraphStageLogic, _Batch
from .._supervision import Supervision
from .asyncsupport import AwaitingLogicMixin, call_cancelled, not_awaitable
from .simple import FlowLogic, FlowStage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Hashable

    from .._stage.shapes import FlowShape

__all__ = ["MapAsync", "ScanAsync", "MapAsyncPartitioned"]


class MapAsync(FlowStage):
    """``map_async(parallelism, f)`` / ``map_async_unordered``.

    Emits when the oldest (ordered) or any (unordered) result is ready and downstream
    pulls; None results are skipped. Backpressures when ``parallelism`` calls are in
    flight. Completes when upstream completed and every result was emitted. Supervision
    applies to exceptions raised by ``f`` and to failed awaitables.

    Calls run on a pool of at most ``parallelism`` long-lived worker tasks, not on a task
    per call (see ``_MapAsyncLogic``). What that makes observable:

    - ``f(x)`` is called by the stage when ``x`` arrives (a synchronous raise is the
      stage's, under its supervision); the worker then awaits what it returned.
    - contextvars: a call's coroutine runs in its worker's context (copied when the
      worker started), not in a fresh copy per call: a variable one call sets is seen by
      the later calls that worker runs (a parallelism-1 worker ends when no element
      waits; the next one starts from a fresh copy again).
    - A call that never suspends finishes within its worker's step; a worker yields to
      the event loop every 64 calls, so such a stream still lets other tasks run.
    - Any awaitable works (a coroutine, a ``Future``, an object with ``__await__``); when
      the stream stops, the awaitables being awaited are cancelled with their workers,
      coroutines not picked up yet are closed, futures not picked up yet are left alone.
    - Resume/restart drop the failed element; the calls in flight go on (the stage
      holds no state a restart would reset).
    - Results go out in input order (``map_async``) or as calls finish
      (``map_async_unordered``); calls that finish in the same event-loop iteration may
      be handed downstream together, in one batch.
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
        logic = _MapAsyncLogic(self.shape, self)
        # Fast path (see ``_INLINE_MAX_PAR``): only with fast paths on, only in order (the
        # order of calls that finish together is then not observable).
        logic.inline = logic.sequential or (
            logic.ordered
            and logic.par <= _INLINE_MAX_PAR
            and attributes is not None
            and bool(attributes.get("fast_paths"))
        )
        return logic


_PENDING: Any = object()


# Slot states of one call (a slot is [state, value]).
_RUNNING, _OK, _FAILED, _DROPPED = 0, 1, 2, 3
#: Calls a parallelism-1 worker runs back to back before it yields to the event loop.
_WORKER_SLICE = 64
_CoroutineType = types.CoroutineType
#: Calls a parallelism-1 worker awaits as they are (no first step in ``_start``) after a
#: first step that suspended. A first step that suspends costs a relay (``_go_on``) on
#: every resumption of that call; one that finishes saves the worker's ``await``: with
#: calls that always suspend, retrying every 64 calls instead of every 16 is +2-3% on
#: graph_balance_pool (same-run A/B), and a run of calls that stopped suspending is
#: noticed within 64 calls.
_SKIP_AFTER_SUSPENSION = 64
#: Up to this parallelism, a worker hands each outcome to the stage at once (as
#: parallelism 1 does) instead of scheduling one delivery per loop iteration: it then goes
#: on with the next call in the same iteration. Past it, one delivery of all the calls
#: that finished in an iteration costs less than a run of the island per call (measured:
#: parallelism 2 gains ~12%, 3 breaks even, 8 loses ~30%).
_INLINE_MAX_PAR = 2


def _unbound(hook: Any) -> tuple[Any, Any]:
    """A per-port hook of a junction (``functools.partial(method, i)``, see
    ``reactive._stage.batch``) as ``(method, i)``, to be called ``method(i, *args)``;
    any other callable ``hook`` as ``(f, None)`` with ``f(i, *args)`` calling ``hook(*args)``;
    ``(None, None)`` for None."""
    if hook is None:
        return None, None
    if type(hook) is functools.partial and len(hook.args) == 1 and not hook.keywords:
        return hook.func, hook.args[0]
    return (lambda _i, *args: hook(*args)), None


class _Started:
    """A call whose coroutine already ran its first step (see ``_MapAsyncLogic._start``):
    the coroutine and what that step yielded, for the worker to go on awaiting."""

    __slots__ = ("coro", "yielded")

    def __init__(self, coro: Any, yielded: Any) -> None:
        self.coro = coro
        self.yielded = yielded


@types.coroutine
def _go_on(coro: Any, yielded: Any) -> Any:
    """Await a coroutine that already ran up to its first suspension, which yielded
    ``yielded``: hand that to the task (as ``await coro`` would have), then relay what the
    task sends or throws into the coroutine until it returns."""
    while True:
        try:
            sent = yield yielded
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation and the like: the coroutine decides
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


class _MapAsyncLogic(FlowLogic):
    """Speaks the batch protocol on both ports: it asks upstream for as many elements as
    it has room for (``parallelism`` minus results held) and hands downstream every
    result that is ready, in order, in one push; element by element otherwise.

    Performance: calls run on a pool of at most ``parallelism`` worker tasks, as a
    hand-written asyncio worker pool does, not on a task per element. ``f(x)`` is called
    in the stage when the element arrives (so supervision sees it raise); its awaitable
    waits in ``todo`` and a worker awaits it and records the outcome in the call's
    slot. A worker with nothing to do parks on a future that the next call resolves,
    or, when a delivery is already scheduled in this loop iteration (it usually starts
    new calls), waits for it with a bare yield. Workers are started lazily, up to
    ``parallelism``, and cancelled when the stage stops.

    Parallelism > 2: the stage sees every call that finished in one loop iteration in
    one delivery (a single ``call_soon`` and interpreter run). Parallelism 2, in order and
    with fast paths on: each worker hands its outcome to the stage at once, as
    parallelism 1 does (below), and goes on with the next call in the same loop
    iteration instead of waiting one for the delivery (see ``_INLINE_MAX_PAR``); the
    order of the results is the input order either way, only when they go out differs.

    Parallelism 1 (``Sink.foreach_async(1, f)``, a sequential ``map_async(1, f)``): the
    worker hands each outcome to the stage at once (the island runs inline, which pulls
    the next element into ``todo``) and goes on with the next call, so a call that does
    not suspend costs no task and no event-loop round trip. That worker ends when
    ``todo`` is empty (the next element starts a new one) and yields to the event loop
    every ``_WORKER_SLICE`` calls, so a stream whose ``f`` never suspends still lets
    other tasks run. Ordered and unordered are the same thing with one call at a time.

    Calls of one worker share the worker's ``contextvars`` context (copied when the
    worker started), as calls of a hand-written worker do.
    """

    _supervised = True
    # Its own fields in slots: with the inlet and outlet it has 32, past the 29 names a
    # logic keeps in CPython's shared-key layout (see ``_LogicFields``).
    __slots__ = (
        "stage",
        "f",
        "par",
        "ordered",
        "slots",
        "ready",
        "inflight",
        "completed",
        "scheduled",
        "sequential",
        "inline",
        "todo",
        "workers",
        "idle",
        "_drive_left",
        "_skip_first",
        "_delivering",
        "_offering",
        "_deliver_cb",
        "_take_up",
        "_take_one_up",
        "_take_one_i",
        "_settle_up",
        "_lend_up",
        "_lent_up",
        "_cin",
        "_cout",
        "_offer_down",
        "_offer_one_down",
        "_offer_one_i",
    )

    def __init__(self, shape: Any, stage: MapAsync) -> None:
        FlowLogic.__init__(self, shape)
        self.stage = stage
        self.f = stage.f
        self.par = stage.parallelism
        self.ordered = stage.ordered
        # ordered: the slots of every call not emitted yet, oldest first;
        # unordered: results ready to emit, and the slots of calls not delivered yet.
        self.slots: deque[list[Any]] = deque()
        self.ready: deque[Any] = deque()
        self.inflight = 0  # calls started and not yet delivered
        self.completed: list[list[Any]] = []  # finished, not yet delivered
        self.scheduled = False
        # The awaitables no worker has picked up yet, oldest first (see the docstring).
        self.sequential = self.par == 1
        if self.sequential:
            self.ordered = True  # one call at a time: completion order is start order
        # Workers hand each outcome to the stage at once (set by ``MapAsync.create_logic``).
        self.inline = self.sequential
        self.todo: deque[list[Any]] = deque()
        self.workers: set[asyncio.Task[None]] = set()
        self.idle: list[asyncio.Future[None]] = []  # parked workers (parallelism > 1)
        # Parallelism 1: calls ``_start`` may still run the first step of, right now (only
        # while the worker's own delivery runs inline; see the class docstring).
        self._drive_left = 0
        self._skip_first = 0  # first steps not to run, after one that suspended
        self._delivering = False
        self._offering = False  # parallelism 1 offers its result downstream (``_take_pull``)
        self._batch_in = (self.in_,)
        self._batch_out = (self.out,)

    def pre_start(self) -> None:
        self._deliver_cb = self.get_async_callback(self._deliver).invoke
        self._add_stop_hook(self._cancel_all)
        # The batch protocol's synchronous shortcut (see _stage/batch.py): an upstream
        # that offers ``_hand_over_up_to(n)`` (an async boundary's buffer, an iterable
        # source) hands up to ``n`` elements right now on an idle connection, standing for
        # one pull -> on_pull
        # -> push -> on_push round trip; a lazy take is settled with ``_hand_over_settle``.
        c = self._conns[self.in_]
        self._take_up: Any = hand_over_hook_of(c) if c.batch else None
        # Parallelism 1 behind a fan-out junction: its one-element hand-over per output.
        one_up = hand_over_one_hook_of(c) if c.batch and self.sequential else None
        # (Kept as the junction's method and the port index it is bound to: a call of a
        # ``functools.partial`` enters the method through C, a new interpreter frame
        # on the C stack, where a method called with its index is pushed inline.)
        self._take_one_up, self._take_one_i = _unbound(one_up)
        self._settle_up: Any = settle_hook(c.out_logic, c) if c.batch else None
        # Parallelism 1 takes one element at a time from an upstream that lends its buffer
        # (an async boundary): read in place, no slice (see _deliver_sequential).
        self._cin = c
        self._cout = cout = self._conns[self.out]
        # A fan-in junction downstream that takes batches synchronously (see ``_drain``).
        # (Metered, the offers count their pushes: see ``_deliver_sequential``, ``_drain``.)
        self._offer_down: Any = offer_hook(cout) if cout.batch else None
        # Parallelism 1 offers one result at a time: the junction's one-element offer.
        one = offer_one_hook(cout) if self._offer_down is not None and self.sequential else None
        self._offer_one_down, self._offer_one_i = _unbound(one)
        lend = lend_hook(c.out_logic) if c.batch and self.sequential else None
        self._lend_up: Any = lend
        self._lent_up: Any = c.out_logic._lent if lend is not None else None
        # As Akka's MapAsync: upstream is first pulled on the first downstream demand (no
        # call runs before anyone asked), then kept pulled up to ``parallelism``.

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
            if self._take_up is not None and c.state == 0:
                more = self._take_up(room)
                if more is not None:
                    self._start_taken(more, c)
                    return
            self.pull(self.in_)
            if c.batch:
                c.demand_n = room

    def _start_taken(self, more: Any, c: Any) -> None:
        """Start a call for each element ``_hand_over_up_to`` handed over (at most the room left),
        with the supervision of ``on_push``; then ask for more as after a push."""
        settle = self._settle_up
        if settle is None and (type(more) is tuple or type(more) is list) and len(more) == 1:
            # Fast path: one element handed over in a tuple or list (a fan-out junction's
            # ``_hand_over_i``, a boundary's buffer): nothing lazy to settle, no None.
            try:
                self._start(more[0])
            except Exception as exc:
                if self._decided(exc) is Supervision.stop:
                    self.fail_stage(exc)
                    return
            if not self._stopped and (self.completed or self.inflight < self.par):
                self._next()
            return
        it = iter(more)
        while True:
            try:
                y = next(it)
            except StopIteration:
                break
            except Exception as up_exc:
                # A lazy take runs the upstream's own iterator: its failure is the
                # upstream's (as on its on_pull), not this stage's.
                self._upstream_failed(settle, up_exc)
                return
            if y is None:
                # As the source's push would (RS rule 2.13): the source fails.
                note_unsent(c)
                self._upstream_failed(settle, c.out_logic._err(c.out_port, NONE_ELEMENT))
                return
            try:
                self._start(y)
            except Exception as exc:
                if self._decided(exc) is Supervision.stop:
                    if settle is not None:
                        settle(None)
                    self.fail_stage(exc)
                    return
        if settle is not None:
            settle(None)
        # (``_next`` with nothing finished and no room left would do nothing.)
        if not self._stopped and (self.completed or self.inflight < self.par):
            self._next()

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
                    if self._decided(exc) is Supervision.stop:
                        self.fail_stage(exc)
                        return
        self._next()

    def _next(self) -> None:
        """After starting calls: deliver the ones that already finished (a call whose
        first step returned, see ``_start``), else ask upstream for more."""
        if self.completed and self.sequential:
            if not self._delivering:
                self._deliver(None)
            # else: the delivery running further up the stack goes on with it
        else:
            self._maybe_pull()

    def _upstream_failed(self, settle: Any, exc: BaseException) -> None:
        if settle is not None:
            settle(exc)  # the upstream fails; its failure reaches us as usual
        else:  # pragma: no cover - a boundary's buffer holds no None and cannot raise
            self.fail_stage(exc)

    def _start(self, x: Any) -> None:
        aw = self.f(x)
        if type(aw) is not _CoroutineType and not inspect.isawaitable(aw):
            raise not_awaitable(self._stage_name, aw)
        # slot[1] holds the awaitable until a worker picks it up, then the outcome
        slot: list[Any] = [_RUNNING, aw]
        self.inflight += 1
        if self.ordered:
            self.slots.append(slot)
        if self._skip_first and self._drive_left > 0:
            # A recent call suspended in its first step: this one most likely will too,
            # and then a step run here only adds a relay (``_go_on``) to every resumption.
            # The worker awaits it as it is; the first step is tried again now and then.
            self._skip_first -= 1
        elif self._drive_left > 0 and type(aw) is _CoroutineType:
            # In the worker's task (its delivery runs inline): run the call's first step
            # here, as the worker's ``await`` would; most often it finishes at once.
            self._drive_left -= 1
            try:
                y = aw.send(None)
            except StopIteration as stop:
                slot[0] = _OK
                slot[1] = stop.value
                self.completed.append(slot)
                return
            except asyncio.CancelledError as cancelled:
                slot[0] = _FAILED
                slot[1] = call_cancelled(self._stage_name, cancelled)
                self.completed.append(slot)
                return
            except Exception as exc:
                slot[0] = _FAILED
                slot[1] = exc
                self.completed.append(slot)
                return
            slot[1] = _Started(aw, y)  # it suspended: the worker goes on awaiting it
            self._skip_first = _SKIP_AFTER_SUSPENSION
        self.todo.append(slot)
        idle = self.idle
        while idle:
            parked = idle.pop()
            if not parked.done():  # (a worker cancelled from outside left its future)
                parked.set_result(None)
                return
        if len(self.workers) < self.par:
            self.workers.add(self._loop.create_task(self._work()))

    async def _work(self) -> None:
        # One worker of the pool (see the class docstring). It parks (parallelism > 1) or
        # ends (parallelism 1) with no await between its last look at ``todo`` and
        # that, so ``_start`` never leaves a call without a worker to run it.
        todo = self.todo
        n = 0
        sequential = self.sequential
        inline = self.inline
        loop = self._loop
        island: Any = self._island
        signal = island.signal
        deliver = self._deliver_sequential
        # For the direct run spelled out below (see ``Island.signal``).
        sched = island.sched
        direct = island.direct_depth > 0
        watch = island.watch
        now = island.now
        # For the delivery spelled out below (see ``_deliver_sequential``): parallelism 1
        # offering its results one at a time to a fan-in junction and taking the next
        # element from a fan-out junction, both unmetered.
        # (Both hooks are found for parallelism 1 only, see ``pre_start``.)
        one = self._offer_one_down
        one_up = self._take_one_up
        spelled = one is not None and one_up is not None and direct
        if spelled:
            slots = self.slots
            completed = self.completed
            cin: Any = self._cin
            cout: Any = self._cout
            one_i = self._offer_one_i
            one_up_i = self._take_one_i
            spelled = not cout.metered and not cin.metered
        try:
            while True:
                while todo:
                    slot = todo.popleft()
                    aw = slot[1]
                    if type(aw) is _Started:
                        aw = _go_on(aw.coro, aw.yielded)
                    fatal: BaseException | None = None
                    try:
                        slot[1] = await aw
                        slot[0] = _OK
                    except asyncio.CancelledError as cancelled:
                        if self._stopped:
                            raise  # cancelled by the stage stopping
                        slot[1] = call_cancelled(self._stage_name, cancelled)
                        slot[0] = _FAILED
                    except BaseException as exc:
                        slot[1] = exc
                        slot[0] = _FAILED
                        if not isinstance(exc, Exception):
                            fatal = exc  # recorded (the stage fails with it), then re-raised
                    if self._stopped:
                        return
                    if (
                        spelled
                        and n < _WORKER_SLICE - 1
                        and slot[0] == _OK
                        and slot[1] is not None
                        and cout.state == 2  # DEMAND and nothing else
                        and not completed
                        and island.waiter is not None
                        and sched.executing == 0
                        and not island.running
                        and not island.queue
                        and not island.mailbox
                        and sched.diagnosis is None
                    ):
                        # The steady state of a worker pool (Balance -> map_async(1) ->
                        # Merge): the outermost run below with ``_deliver_sequential``'s
                        # first round spelled out in it for this one result, offered to the
                        # junction downstream, and the next element taken from the one
                        # upstream and its call queued for this worker (its first step
                        # skipped: calls have been suspending), with no ``completed`` list
                        # and no call of ``_deliver_sequential``; the other cases of that
                        # round in ``_after_offer``, ``_took_failed`` and ``_start_next``
                        # (a first step run: what finished at once is delivered after).
                        # Checked above: the island parked with nothing of its own
                        # waiting and no run on the stack (as the run below), the junction
                        # downstream waiting, this call's result the only one and not
                        # None, and this slice not at its end (the yield below).
                        n += 1
                        self._drive_left = _WORKER_SLICE - n
                        t0 = now() if watch is not None else None
                        sched.inline_depth += 1
                        sched.executing = 1
                        island.running = True
                        left = False
                        try:
                            try:
                                self.inflight -= 1
                                slots.popleft()
                                cout.state = 0
                                self._offering = True  # see ``_take_pull``
                                try:
                                    one(one_i, slot[1])
                                except Exception as exc:
                                    cout.in_logic._handle_error(exc)
                                finally:
                                    self._offering = False
                                if self._stopped:
                                    pass
                                elif cin.state != 0 or slots:
                                    self._after_offer()
                                elif (y := one_up(one_up_i)) is NOTHING:
                                    self.pull(self.in_)
                                    cin.demand_n = 1  # (a batch connection: the hook's)
                                elif self._skip_first:
                                    # ``_start(y)`` with its first step skipped, as in
                                    # ``_deliver_sequential``: this worker takes the call
                                    # from ``todo`` once this run returns.
                                    try:
                                        aw = self.f(y)
                                        if type(aw) is not _CoroutineType and not (
                                            inspect.isawaitable(aw)
                                        ):
                                            raise not_awaitable(self._stage_name, aw)
                                    except Exception as exc:
                                        self._took_failed(exc)
                                    else:
                                        slot = [_RUNNING, aw]
                                        self.inflight += 1
                                        slots.append(slot)
                                        self._skip_first -= 1
                                        todo.append(slot)
                                else:
                                    self._delivering = True
                                    try:
                                        started = self._start_next(y)
                                    finally:
                                        self._delivering = False
                                    if started and completed:
                                        deliver()  # the call finished at once
                            except Exception as exc:
                                self._handle_error(exc)
                            if (
                                island.queue
                                or island.mailbox
                                or island.flush_hooks
                                or sched.deferred
                            ):
                                left = True
                                island._run(EVENT_LIMIT - 1)
                        finally:
                            n = _WORKER_SLICE - self._drive_left
                            self._drive_left = 0
                            island.running = False
                            sched.executing = 0
                            sched.inline_depth -= 1
                            if sched.deferred:
                                island._end_run(t0)
                            elif t0 is not None:
                                elapsed = now() - t0
                                if elapsed > watch:
                                    blocked(island, elapsed)
                        if island.finished or (
                            left and (island.queue or island.mailbox or island.flush_hooks)
                        ):
                            island._wake()
                        continue
                    self.completed.append(slot)
                    if fatal is not None:
                        self._deliver_cb(None)
                        raise fatal
                    if not inline:
                        if not self.scheduled:
                            self.scheduled = True
                            loop.call_soon(self._deliver_cb, None)
                        continue
                    if not sequential:  # inline: parallelism 2
                        n += 1
                        if n >= _WORKER_SLICE:
                            n = 0
                            await asyncio.sleep(0)  # fairness: f may never suspend
                            if self._stopped:
                                return
                            if not self.completed:
                                continue
                        signal(self, self._deliver, None)
                        continue
                    n += 1
                    if n >= _WORKER_SLICE:
                        n = 0
                        await asyncio.sleep(0)  # fairness: f may never suspend
                        if self._stopped:
                            return
                    # Deliver now (the island runs inline when idle): its pull brings the next
                    # element into ``todo`` before this loop looks again. While it runs inline,
                    # ``_start`` may run the next calls' first steps in this task (at most the
                    # rest of this slice): the ones that finish are delivered in the same run.
                    self._drive_left = _WORKER_SLICE - n
                    try:
                        if (
                            island.waiter is not None
                            and sched.executing == 0
                            and direct
                            and not island.running
                            and not island.queue
                            and not island.mailbox
                            and sched.diagnosis is None
                        ):
                            # ``signal(self, deliver, None)``'s outermost direct run,
                            # spelled out (one call layer less per element; the island is
                            # parked with nothing of its own waiting, no run is on the
                            # stack, and the stage has not stopped: checked above, so
                            # the island has not finished either).
                            t0 = now() if watch is not None else None
                            sched.inline_depth += 1
                            sched.executing = 1
                            island.running = True
                            left = False
                            try:
                                try:
                                    deliver()
                                except Exception as exc:
                                    self._handle_error(exc)
                                if (
                                    island.queue
                                    or island.mailbox
                                    or island.flush_hooks
                                    or sched.deferred
                                ):
                                    left = True
                                    island._run(EVENT_LIMIT - 1)
                            finally:
                                island.running = False
                                sched.executing = 0
                                sched.inline_depth -= 1
                                if sched.deferred:
                                    island._end_run(t0)
                                elif t0 is not None:
                                    elapsed = now() - t0
                                    if elapsed > watch:
                                        blocked(island, elapsed)
                            if island.finished or (
                                left and (island.queue or island.mailbox or island.flush_hooks)
                            ):
                                island._wake()
                        else:
                            # What ``_deliver_cb(None)`` does, minus two calls: the stage
                            # has not stopped (checked above) and is materialized.
                            signal(self, deliver, None)
                    finally:
                        n = _WORKER_SLICE - self._drive_left
                        self._drive_left = 0
                if sequential or self._stopped:
                    return
                if self.scheduled:
                    # A delivery runs before this worker's next turn and usually starts
                    # new calls: wait for it with a bare yield, not a parked future.
                    await asyncio.sleep(0)
                    if todo:
                        continue
                fut = loop.create_future()
                self.idle.append(fut)
                await fut
        finally:
            self.workers.discard(asyncio.current_task())

    def _deliver(self, _: Any) -> None:
        self.scheduled = False
        if self.sequential:
            self._deliver_sequential()
            return
        ordered = self.ordered
        while True:
            completed, self.completed = self.completed, []
            for slot in completed:
                self.inflight -= 1
                if slot[0] == _FAILED:
                    exc = slot[1]
                    if not isinstance(exc, Exception) or self._decided(exc) is Supervision.stop:
                        self.fail_stage(exc)
                        return
                    slot[0] = _DROPPED  # resume/restart: the element is dropped
                elif not ordered and slot[1] is not None:
                    self.ready.append(slot[1])
            self._drain()
            if self._stopped:
                return
            # Its hand-over may start (and, parallelism 1, finish) the next call: loop
            # rather than recurse.
            self._delivering = True
            try:
                self._maybe_pull()
            finally:
                self._delivering = False
            if not self.completed or self._stopped:
                return

    def _deliver_sequential(self, _: Any = None) -> None:
        """``_deliver`` for parallelism 1: at most one call is held (``slots`` is that one
        call), so a result that is ``None`` or dropped needs no ``_drain``. Loops while the
        next call, started by the hand-over of ``_maybe_pull``, finished at once."""
        completed = self.completed
        slots = self.slots
        cin: Any = self._cin  # (a ``MeteredConnection`` when metered)
        while completed:
            slot = completed.pop()
            self.inflight -= 1
            if slot[0] == _FAILED:
                exc = slot[1]
                if not isinstance(exc, Exception) or self._decided(exc) is Supervision.stop:
                    self.fail_stage(exc)
                    return
                slot[0] = _DROPPED  # resume/restart: the element is dropped
                slots.popleft()
            elif slot[1] is None:
                slots.popleft()  # None results are skipped
            else:
                cout: Any = self._cout  # (a ``MeteredConnection`` when metered)
                island: Any = self._island
                if (
                    self._offer_down is not None
                    and cout.state == 2  # DEMAND and nothing else
                    and not island.queue
                    and island.sched.diagnosis is None
                ):
                    # ``_drain``'s offer to a fan-in junction, for the one result held
                    # (fast path, as there; completion is seen below).
                    slots.popleft()
                    cout.state = 0
                    one = self._offer_one_down
                    if cout.metered:  # that push, counted here (reactive.observe); the
                        # junction's one-element offer ends the pending phase itself
                        # (``offer_one_hook``), any other offer here (``unpended``)
                        cout.pushes += 1
                        cout.elements += 1
                        if one is None:
                            cout.phase = 0
                            now = cout.now
                            cout.pend += now()
                    self._offering = True  # see ``_take_pull``
                    try:
                        if one is not None:
                            one(self._offer_one_i, slot[1])  # ``_offer_down([slot[1]])``
                        else:
                            self._offer_down([slot[1]])
                    except Exception as exc:
                        cout.in_logic._handle_error(exc)
                    finally:
                        self._offering = False
                elif cout.state == 2:  # DEMAND and nothing else
                    # ``_drain`` for the one result held, with demand (fast path).
                    slots.popleft()
                    self.push(self.out, slot[1])
                else:
                    self._drain()  # a result to emit (and completion, if due)
                if self._stopped:
                    return
            st = cin.state
            if st & IN_CLOSED:
                if not slots:
                    self.complete_stage()
                return
            self._delivering = True
            try:
                if st == 0 and not slots and (one_up := self._take_one_up) is not None:
                    # ``_maybe_pull`` with nothing held (room for one call), inlined, the
                    # junction upstream handing over one element (no tuple).
                    y = one_up(self._take_one_i)
                    if y is NOTHING:
                        self.pull(self.in_)
                        cin.demand_n = 1  # (a batch connection: the hook's condition)
                    else:
                        if cin.metered:  # a take of one element, counted here
                            # (reactive.observe; see ``hand_over_one_hook_of``)
                            cin.takes += 1
                            cin.elements += 1
                        try:
                            if self._skip_first and self._drive_left > 0:
                                # ``_start(y)`` when its first step is skipped (calls have
                                # been suspending), spelled out: one call per element saved.
                                # ``_drive_left`` > 0: this runs in the worker's own
                                # delivery, and that worker takes the call from ``todo``
                                # once the delivery returns (no worker to wake or start).
                                aw = self.f(y)
                                if type(aw) is not _CoroutineType and not inspect.isawaitable(aw):
                                    raise not_awaitable(self._stage_name, aw)
                                slot = [_RUNNING, aw]
                                self.inflight += 1
                                slots.append(slot)  # (parallelism 1 is ordered)
                                self._skip_first -= 1
                                self.todo.append(slot)
                            else:
                                self._start(y)
                        except Exception as exc:
                            if self._decided(exc) is Supervision.stop:
                                self.fail_stage(exc)
                                return
                            self._maybe_pull()  # resume/restart: the element is dropped
                else:
                    lend = self._lend_up
                    buf = lend() if st == 0 and lend is not None and not slots else None
                    if buf:
                        # The hand-over of one element, read in place (``_maybe_pull`` would
                        # slice it): the connection stays idle, only the element moves.
                        y = buf[0]
                        if cin.metered:  # the pull this take stands for (reactive.observe;
                            cin.pulls += 1  # ``_lent`` counts its push)
                        self._lent_up(1)
                        if not self._start_next(y):
                            return
                    elif st == 0 and not slots and self._take_up is not None:
                        # ``_maybe_pull`` with nothing held (room for one call), inlined.
                        more = self._take_up(1)
                        if more is not None:
                            if type(more) is tuple and len(more) == 1 and self._settle_up is None:
                                # ``_start_taken``'s one-element case, spelled out (as the
                                # lent element above): a call started, or dropped (resume).
                                if not self._start_next(more[0]):
                                    return
                            else:
                                self._start_taken(more, cin)
                        else:
                            self.pull(self.in_)
                            if cin.batch:
                                cin.demand_n = 1
                    else:
                        self._maybe_pull()
            finally:
                self._delivering = False
            if self._stopped:
                return

    def _start_next(self, y: Any) -> bool:
        """``_start(y)`` for the element a delivery took: False when ``f`` raised and the
        stage failed (stop); resumed or restarted, ``y`` is dropped and the next element
        asked for."""
        try:
            self._start(y)
        except Exception as exc:
            if self._decided(exc) is Supervision.stop:
                self.fail_stage(exc)
                return False
            self._maybe_pull()  # resume/restart: the element is dropped
        return True

    def _after_offer(self) -> None:
        """The rest of ``_deliver_sequential``'s round once the worker offered its result
        (see ``_work``), when the next element is not to be taken through the junction
        upstream now (the connection is not idle, or a call is held): completion if due,
        else ``_maybe_pull``; then the calls that finished at once, delivered."""
        if self._cin.state & IN_CLOSED:
            if not self.slots:
                self.complete_stage()
            return
        self._pull_on()

    def _pull_on(self) -> None:
        """The end of ``_deliver_sequential``'s round with nothing taken: ``_maybe_pull``
        (as the delivery: ``_delivering``), then the calls that finished at once,
        delivered."""
        self._delivering = True
        try:
            self._maybe_pull()
        finally:
            self._delivering = False
        if self.completed:
            self._deliver_sequential()

    def _took_failed(self, exc: Exception) -> None:
        """``f`` raised (or returned no awaitable) for the element the worker's spelled-out
        delivery took (see ``_work``): what ``_deliver_sequential`` does then (stop: the
        stage fails; resume/restart: the element is dropped and the next one asked for,
        and a call that finished at once delivered)."""
        if self._decided(exc) is Supervision.stop:
            self.fail_stage(exc)
            return
        self._pull_on()

    def _take_pull(self) -> bool:
        """The batch protocol's synchronous pull (fast path; see ``_stage/batch.py``): True
        while parallelism 1 offers its one result to a fan-in junction (``_offering``),
        when ``on_pull`` would do nothing that ``_deliver_sequential`` does not do right
        after the offer (emit nothing, complete if due, ask upstream for the next element):
        the junction may then mark the connection pulled (``DEMAND``) instead of queueing
        the pull."""
        return self._offering

    def _drain(self) -> None:
        cout: Any = self._conns[self.out]  # (a ``MeteredConnection`` when metered)
        demand = (cout.state & 34) == 2  # (DEMAND | OUT_CLOSED) == DEMAND
        n = (cout.demand_n if cout.batch else 1) if demand else 0
        out: list[Any] = []
        if self.ordered:
            slots = self.slots
            while slots:
                slot = slots[0]
                st = slot[0]
                if st == _OK:
                    v = slot[1]
                    if v is not None:  # None results are skipped
                        if len(out) >= n:
                            break
                        out.append(v)
                elif st != _DROPPED:
                    break  # running, or failed and not delivered yet: delivery decides
                slots.popleft()
        else:
            ready = self.ready
            while ready and len(out) < n:
                out.append(ready.popleft())
        if out:
            offer = self._offer_down
            island: Any = self._island
            if (
                offer is not None
                and cout.state == 2  # DEMAND and nothing else
                and not island.queue
                and island.sched.diagnosis is None
            ):
                # Fast path (as an async boundary's output does, see _stage/batch.py): a
                # fan-in junction downstream waits on us and the island's queue is empty,
                # so what the island would run next is its push -> on_push -> grab of
                # these elements. Run it now; the connection is left idle.
                cout.state = 0
                if cout.metered:  # that push, counted here (reactive.observe)
                    cout.pushes += 1
                    cout.elements += len(out)
                    cout.unpended()
                try:
                    offer(out)
                except Exception as exc:
                    cout.in_logic._handle_error(exc)
            elif len(out) == 1:
                self.push(self.out, out[0])
            else:
                self.push(self.out, _Batch(out))
        if (
            self.inflight == 0
            and not self.slots
            and not self.ready
            and self._conns[self.in_].state & IN_CLOSED
        ):
            self.complete_stage()

    def _cancel_all(self) -> None:
        me = asyncio.current_task()
        for w in self.workers:
            if w is not me:
                w.cancel()  # (a worker delivering inline sees ``_stopped`` and ends)
        self.workers.clear()
        self.idle.clear()
        for slot in self.todo:
            aw = slot[1]
            if type(aw) is _Started:
                aw = aw.coro  # its first step ran; no worker awaits it yet
            if aw is not None and inspect.iscoroutine(aw):
                aw.close()  # no worker started it: nobody else will await it
        self.slots.clear()
        self.todo.clear()
        self.completed.clear()

    def on_pull(self) -> None:
        if self.sequential and self.inflight:
            # Fast path: the one call is running, or finished with its delivery on its
            # way (the worker hands it over at once, or it waits in the mailbox); that
            # delivery emits it. Nothing to emit and no room to pull for until then.
            return
        self._drain()
        self._maybe_pull()

    def on_upstream_finish(self) -> None:
        if self.inflight == 0 and not self.slots and not self.ready:
            self.complete_stage()


class ScanAsync(FlowStage):
    """``scan_async(zero, f)`` (``emit_each``) and ``fold_async(zero, f)``.

    Emits the zero first (scan), then each accumulation when its awaitable completes and
    downstream pulls; fold emits the final accumulation on completion. Backpressures
    while a step runs. Completes when upstream completed and the last step finished.
    Supervision applies both to ``f`` raising and to a failed awaitable: resume drops
    the element, restart also resets the accumulator to ``zero`` (not emitted again).
    """

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
        try:
            aw = self.stage.f(self.acc, self.grab(self.in_))
        except Exception as exc:
            # f raised instead of returning a failed awaitable: same supervision
            self._step_done(exc)
            return
        self.busy = True
        self._await(aw, self._done)

    def _done(self, fut: asyncio.Future[Any]) -> None:
        self.busy = False
        exc = call_cancelled(self._stage_name) if fut.cancelled() else fut.exception()
        if exc is None:
            self.acc = fut.result()
            if self.stage.emit_each:
                self.push(self.out, self.acc)
        self._step_done(exc)

    def _step_done(self, exc: BaseException | None) -> None:
        if exc is not None:
            d = self._decided(exc) if isinstance(exc, Exception) else Supervision.stop
            if d is Supervision.stop:
                self.fail_stage(exc)
                return
            if d is Supervision.restart:
                self.acc = self.stage.zero
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


# -- map_async_partitioned (Pekko's mapAsyncPartitioned) ---------------------------------
_SLOT_WAITING, _SLOT_RUNNING, _SLOT_DONE = 0, 1, 2


class MapAsyncPartitioned(FlowStage):
    """``map_async_partitioned(parallelism, per_partition, partitioner, f)``.

    Every element gets a key ``partitioner(x)``; ``f(x, key)`` runs for at most
    ``per_partition`` elements of one key and ``parallelism`` elements overall at once.
    Results are emitted in input order (across keys too); ``None`` results are skipped.
    Up to ``parallelism`` elements are buffered even while their key is saturated.

    Emits when the result of the oldest buffered element is ready and downstream pulls.
    Backpressures when ``parallelism`` elements are buffered (running, waiting for their
    key, or done and not yet emitted). Completes when upstream completed and every result
    was emitted. Fails when upstream fails or a call fails under the stopping decider.
    Cancels when downstream cancels. Supervision: applies to ``partitioner``, to ``f``
    raising and to failed awaitables; resume and restart drop the element.
    """

    name = "map_async_partitioned"

    def __init__(
        self,
        parallelism: int,
        per_partition: int,
        partitioner: Callable[[Any], Hashable],
        f: Callable[[Any, Any], Awaitable[Any]],
    ) -> None:
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        if per_partition < 1:
            raise ValueError(f"per_partition must be >= 1, got {per_partition}")
        super().__init__()
        self.parallelism = parallelism
        self.per_partition = per_partition
        self.partitioner = partitioner
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MapAsyncPartitionedLogic(self.shape, self)


class _Slot:
    """One buffered element: its key, its state and (once done) its result."""

    __slots__ = ("elem", "key", "state", "result")

    def __init__(self, elem: Any, key: Any) -> None:
        self.elem = elem
        self.key = key
        self.state = _SLOT_WAITING
        self.result: Any = None


class _MapAsyncPartitionedLogic(AwaitingLogicMixin, FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: MapAsyncPartitioned) -> None:
        FlowLogic.__init__(self, shape)
        self.stage = stage
        self.buffer: deque[_Slot] = deque()  # input order
        self.running: dict[Any, int] = {}  # key -> calls in flight
        self.waiting: dict[Any, deque[_Slot]] = {}  # key -> slots waiting for a place

    def pre_start(self) -> None:
        self.pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        # partitioner raised in on_push: nothing was buffered; keep consuming.
        self._maybe_pull()
        self._drain()

    def _maybe_pull(self) -> None:
        if (
            len(self.buffer) < self.stage.parallelism
            and not self.is_closed(self.in_)
            and not self.has_been_pulled(self.in_)
        ):
            self.pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        key = self.stage.partitioner(x)
        slot = _Slot(x, key)
        self.buffer.append(slot)
        if self.running.get(key, 0) < self.stage.per_partition:
            self._start(slot)
        else:
            self.waiting.setdefault(key, deque()).append(slot)
        self._maybe_pull()

    def _start(self, slot: _Slot) -> None:
        slot.state = _SLOT_RUNNING
        key = slot.key
        self.running[key] = self.running.get(key, 0) + 1
        try:
            aw = self.stage.f(slot.elem, key)
        except Exception as e:
            # Not left to the interpreter: the slot must be settled either way.
            self._finished(slot, e, None)
            return
        self._await(aw, lambda fut: self._done(fut, slot))

    def _done(self, fut: asyncio.Future[Any], slot: _Slot) -> None:
        if fut.cancelled():
            exc: BaseException | None = call_cancelled(self._stage_name)
        else:
            exc = fut.exception()
        self._finished(slot, exc, None if exc is not None else fut.result())

    def _finished(self, slot: _Slot, exc: BaseException | None, value: Any) -> None:
        key = slot.key
        left = self.running[key] - 1
        if exc is not None:
            if not isinstance(exc, Exception) or self._decided(exc) is Supervision.stop:
                self.fail_stage(exc)
                return
            value = None  # resume/restart: drop the element
        slot.state = _SLOT_DONE
        slot.result = value
        # Start the next elements of this key before emitting (keeps the key busy).
        queue = self.waiting.get(key)
        if left:
            self.running[key] = left
        else:
            del self.running[key]
        while queue and self.running.get(key, 0) < self.stage.per_partition:
            self._start(queue.popleft())
            if self._stopped:
                return
        if queue is not None and not queue:
            self.waiting.pop(key, None)
        self._drain()
        self._maybe_pull()

    def _drain(self) -> None:
        buf = self.buffer
        while buf and buf[0].state == _SLOT_DONE:
            if buf[0].result is None:
                buf.popleft()
                continue
            if not self.is_available(self.out):
                break
            self.push(self.out, buf.popleft().result)
        if not buf and self.is_closed(self.in_):
            self.complete_stage()

    def on_pull(self) -> None:
        self._drain()
        self._maybe_pull()

    def on_upstream_finish(self) -> None:
        if not self.buffer:
            self.complete_stage()
