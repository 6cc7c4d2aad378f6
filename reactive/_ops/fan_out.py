"""Fan-out junctions: Broadcast, Balance, Partition, Unzip, UnzipWith and the WireTap
behind ``wire_tap``.

Completion and cancellation follow Akka: a fan-out stage completes (or fails) with its
upstream; a cancelled output is skipped from then on, and the stage cancels upstream when
every output has cancelled, or at the first cancellation with ``eager_cancel``.
"""

from __future__ import annotations

import functools
from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .._checks import NONE_ELEMENT, check, fn, int_at_least, opt_fn, pos_int
from .._errors import PartitionOutOfBoundsError, PortStateError
from .._impl.interpreter import DEMAND, IN_CLOSED, OUT_CLOSED, PULL_REQ, PULLED
from .._stage.batch import (
    NOTHING,
    accept_hook,
    hand_over_hook,
    note_unsent,
    settle_hook,
    take_one_hook,
)
from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from .._stage.shapes import FanOutShape2, Inlet, Outlet, Shape, UniformFanOutShape
from .._supervision import Supervision
from .sources import _none_index

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Broadcast",
    "Balance",
    "Partition",
    "PartitionOutOfBoundsError",
    "Unzip",
    "UnzipWith",
    "WireTap",
]


class _PortOut(OutHandler):
    """Routes one outlet's events to ``logic.on_pull_i(i)`` / ``on_cancel_i(i, cause)``."""

    __slots__ = ("logic", "i")

    def __init__(self, logic: Any, i: int) -> None:
        self.logic = logic
        self.i = i

    def on_pull(self) -> None:
        self.logic.on_pull_i(self.i)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.logic.on_cancel_i(self.i, cause)


def _pull_on_its_way(couts: list[Any]) -> bool:
    """Some output was pulled and its ``on_pull`` is still queued (or, if it was cancelled
    since, its cancellation): that event comes after the one being handled. A fan-out
    that waits for it serves the outputs pulled together in one go (Partition: instead of
    handing out just the elements before the first one for the output still to come)."""
    return any(c.state & PULL_REQ for c in couts)


class _BatchFanOut:
    """What the fan-out stages on the batch protocol share (fast path; see
    ``_impl/fused.py``): both sides declared, the connections read once at start."""

    in_: Inlet[Any]
    outs: tuple[Outlet[Any], ...]
    _conns: dict[Any, Any]

    def _declare_batch_ports(self) -> None:
        self._batch_in = (self.in_,)
        self._batch_out = tuple(self.outs)

    def pre_start(self) -> None:
        self._cin = cin = self._conns[self.in_]
        self._couts = [self._conns[o] for o in self.outs]
        # An upstream that hands elements over synchronously (see reactive/_stage/batch.py).
        self._take_up: Any = hand_over_hook(cin.out_logic, cin) if cin.batch else None
        self._settle_up: Any = settle_hook(cin.out_logic, cin) if cin.batch else None
        # (Counted on a metered connection: ``take_one_hook`` finds the counted take.)
        self._take_one_up: Any = take_one_hook(cin.out_logic, cin) if cin.batch else None


# -- Broadcast / Unzip: one element to every output ------------------------------------------
class _AllOutputsLogic(GraphStageLogic, InHandler):
    """Pushes one value to every open output; pulls upstream once all of them pulled."""

    def __init__(self, shape: Any, split: Callable[[Any], Any] | None, eager_cancel: bool) -> None:
        super().__init__(shape)
        self.in_ = shape.inlets[0]
        self.outs = shape.outlets
        self.split = split
        self.eager_cancel = eager_cancel
        n = len(self.outs)
        self.pending = [True] * n
        self.pending_count = n
        self.running = n
        self.set_handler(self.in_, self)
        for i, o in enumerate(self.outs):
            self.set_handler(o, _PortOut(self, i))

    def on_push(self) -> None:
        elem = self.grab(self.in_)
        values = None if self.split is None else self.split(elem)
        self.pending_count = self.running
        for i, o in enumerate(self.outs):
            if not self.is_closed(o):
                self.push(o, elem if values is None else values[i])
                self.pending[i] = True

    def _try_pull(self) -> None:
        if self.pending_count == 0 and not self.has_been_pulled(self.in_):
            self.try_pull(self.in_)

    def on_pull_i(self, i: int) -> None:
        if self.pending[i]:
            self.pending[i] = False
            self.pending_count -= 1
        self._try_pull()

    def on_cancel_i(self, i: int, cause: BaseException) -> None:
        if self.eager_cancel:
            self.cancel_stage(cause)
            return
        self.running -= 1
        if self.running == 0:
            self.cancel_stage(cause)
        elif self.pending[i]:
            self.pending[i] = False
            self.pending_count -= 1
            self._try_pull()


class _AllOutputsPortOut(_PortOut):
    """``_PortOut`` with ``on_pull_i`` of ``_AllOutputsLogic`` spelled out (once per batch
    per output: an async boundary's demand arrives here)."""

    __slots__ = ()

    def on_pull(self) -> None:
        logic = self.logic
        i = self.i
        pending = logic.pending
        if pending[i]:
            pending[i] = False
            logic.pending_count -= 1
        if logic.pending_count == 0:  # (``_try_pull`` does nothing otherwise)
            logic._try_pull()


class _BroadcastBatchLogic(_BatchFanOut, _AllOutputsLogic):
    """Broadcast and Unzip on the batch protocol (fast path; see ``_impl/fused.py``).

    Upstream is pulled, once every open output has pulled, for the smallest demand among
    the open outputs (``demand_n`` on a batch connection, 1 otherwise), and the batch it
    answers with goes to every open output as one push (Unzip: each output gets its part
    of every element): each output gets at most what it asked for, in the same order, and
    an output that cancels is skipped from then on, as element by element. When ``split``
    raises on an element of a batch, the parts of the elements before it are pushed, then
    the stage fails, as element by element. Used for ``eager_cancel=False`` only: with
    eager cancellation a batch already handed to the other outputs could not be taken back.
    """

    def __init__(self, shape: Any, split: Callable[[Any], Any] | None = None) -> None:
        super().__init__(shape, split, False)
        self._declare_batch_ports()
        for i, o in enumerate(self.outs):
            self.set_handler(o, _AllOutputsPortOut(self, i))

    def pre_start(self) -> None:
        super().pre_start()
        # Outputs into a logic that takes whole batches synchronously (an async boundary's
        # input, see reactive/_stage/batch.py): Broadcast gives to them (``_gives[i]``)
        # instead of pushing; None where the output is a plain connection.
        gives = [accept_hook(c.in_logic) if c.batch else None for c in self._couts]
        self._gives: list[Any] | None = gives if any(g is not None for g in gives) else None

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if type(x) is _Batch and len(x) == 1:
            x = x[0]
        if type(x) is not _Batch:
            if self.split is None:
                self._push_all(x, None)
            else:
                self._push_all(None, self.split(x))
            return
        if not x:  # nothing to hand out: ask again
            self.pending_count = 0
            self._try_pull()
            return
        if self.split is None:
            self._push_all(x, None)
            return
        parts: list[Any] = []
        exc: Exception | None = None
        split = self.split
        try:
            for e in x:
                parts.append(split(e))
        except Exception as e:
            exc = e
        ok = exc is None
        if len(parts) == 1:
            self._push_all(None, parts[0], ok)
        elif parts:
            self._push_all(None, [_Batch([p[i] for p in parts]) for i in range(len(self.outs))], ok)
        if exc is not None:
            self._handle_error(exc)

    def _push_all(self, x: Any, columns: Any, pull: bool = True) -> None:
        """Push ``x`` (an element or a batch) to every open output, or ``columns[i]`` to
        output ``i``; pull upstream again if every output took it at once and wants more
        (unless not ``pull``: the stage is about to fail)."""
        self.pending_count = self.running
        pending = self.pending
        couts = self._couts
        gives = self._gives
        last = -1
        if columns is None and type(x) is _Batch:
            for i, c in enumerate(couts):
                if not c.state & OUT_CLOSED:
                    last = i
        for i, c in enumerate(couts):
            if gives is not None and c.state == DEMAND and gives[i] is not None:
                # push -> on_push -> grab -> pull, synchronously (batch.py's ``_give``): the
                # connection is DEMAND again if the output wants more (as if it had pulled:
                # nothing pending), idle otherwise (its pull comes later: pending).
                v = x if columns is None else columns[i]
                if type(v) is not _Batch:
                    v = [v]
                elif columns is None and i != last:
                    v = _Batch(v)  # each output its own list but the last
                gives[i](v)
                if c.state == DEMAND:
                    pending[i] = False
                    self.pending_count -= 1
                else:
                    pending[i] = True
            elif not c.state & OUT_CLOSED:
                if columns is not None:
                    self.push(self.outs[i], columns[i])
                elif last >= 0 and i != last:
                    # Every open output asked for at least len(x) (see _try_pull), so
                    # each is a batch connection; each gets its own list but the last.
                    self.push(self.outs[i], _Batch(x))
                else:
                    self.push(self.outs[i], x)
                pending[i] = True
        if gives is not None and self.pending_count == 0 and pull:
            self._try_pull()  # every output took its part and wants more

    def _try_pull(self) -> None:
        cin = self._cin
        # has_been_pulled, spelled out: not pulled already, nor closed.
        while self.pending_count == 0 and not cin.state & (PULLED | IN_CLOSED):
            n = 1
            if cin.batch:
                n = 0
                for c in self._couts:
                    if not c.state & OUT_CLOSED:
                        d = c.demand_n if c.batch else 1
                        if n == 0 or d < n:
                            n = d
                n = max(1, n)
                taken = self._take_now(n)
                if taken is not None:
                    if taken:
                        continue  # every output took it and wants more: again
                    return
            self.pull(self.in_)
            if cin.batch:
                cin.demand_n = n
            return

    def _take_now(self, n: int) -> bool | None:
        """Broadcast's pull of an iterable source, answered at once (fast path; see
        ``reactive/_stage/batch.py``): up to ``n`` elements taken from the source's
        iterator and handed to the outputs, standing for pull -> the source's ``on_pull``
        (its push, its look-ahead, its completion or failure) -> our ``on_push``. None
        when that round trip cannot be skipped; True when it was and the stage may pull
        again, False when it was and must not (the source failed).

        Only when the pull would be the island's next event (its queue and mailbox
        empty), on an idle connection (metered, the take is counted: ``take``/``settle``
        are the counted ones), outside a blocked-loop diagnosis (one event per step),
        for Broadcast (Unzip's ``split`` keeps the element-at-a-time order of failures)
        and an upstream whose hand-over is lazy (an iterable source: a list hand-over is
        an async boundary's, whose own pull path batches already). The source's side
        runs first, as its ``on_pull`` would: a failure of its iterator or a ``None``
        element fails the source after the elements before it, which then go out.
        """
        settle = self._settle_up
        take = self._take_up
        if settle is None or take is None or self.split is not None:
            return None
        cin = self._cin
        if cin.state != 0:
            return None
        island = self._island
        if island is None or cin.q or island.mailbox or island.sched.diagnosis is not None:
            return None
        it = take(n)
        if it is None:
            return None
        out = _Batch()
        try:
            out.extend(it)
        except Exception as exc:
            # The iterator failed on a demanded element: the source fails, after pushing
            # what it read before (never empty: the first element was read ahead).
            settle(exc)
            if out:
                self._hand_out(out)
            return False
        i = _none_index(out)
        if i >= 0:
            # RS rule 2.13, as the source's push checks: the elements before the None,
            # then the source fails (the None and what was read after it are not sent).
            note_unsent(cin, len(out) - i)
            settle(cin.out_logic._err(cin.out_port, NONE_ELEMENT))
            if i:
                self._hand_out(_Batch(out[:i]))
            return False
        settle(None)  # the source's look-ahead (and completion) after its push
        self._hand_out(out)
        return True

    def _hand_out(self, out: _Batch) -> None:
        """``on_push`` of ``out`` (a non-empty batch), without pulling again."""
        if len(out) == 1:
            self._push_all(out[0], None, False)
        else:
            self._push_all(out, None, False)


class Broadcast(GraphStage[UniformFanOutShape]):
    """``Broadcast(n, eager_cancel=False)``: every element to all ``n`` outputs
    (``in_``, ``out(i)``).

    Emits when all outputs that are not cancelled have demand. Backpressures when any
    output backpressures. Completes when upstream completes. Cancels when all outputs
    cancelled, or with ``eager_cancel`` when the first one cancels.
    """

    name = "broadcast"

    def __init__(self, n: int = 2, eager_cancel: bool = False) -> None:
        check("Broadcast(n, eager_cancel)", pos_int(n))
        self.n = n
        self.eager_cancel = eager_cancel
        self.shape = UniformFanOutShape.of(n, "Broadcast")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if not self.eager_cancel and attributes is not None and attributes.get("fast_paths"):
            return _BroadcastBatchLogic(self.shape)
        return _AllOutputsLogic(self.shape, None, self.eager_cancel)


class FanOutShapeN(Shape):
    """One inlet ``in_`` and ``n`` outlets ``out0``, ``out1``, ... (``UnzipWith(f, n)``)."""

    __slots__ = ("in_", "_outs")

    def __init__(self, in_: Inlet[Any], *outs: Outlet[Any]) -> None:
        super().__init__((in_,), outs)
        self.in_ = in_
        self._outs = tuple(outs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("out") and name[3:].isdigit() and int(name[3:]) < len(self._outs):
            return self._outs[int(name[3:])]
        raise AttributeError(name)

    def out(self, i: int) -> Outlet[Any]:
        """Outlet number ``i``."""
        return self._outs[i]

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return FanOutShapeN(inlets[0], *outlets)


class UnzipWith(GraphStage[FanOutShape2]):
    """``UnzipWith(f, n=2)``: ``f(x)`` returns an ``n``-tuple; its parts go to ``out0``,
    ``out1``, ... (as Akka's UnzipWith2..22).

    Emits when all outputs (that are not cancelled) have demand. Backpressures when any
    output backpressures. Completes when upstream completes. Cancels when all outputs
    cancelled. Fails when ``f`` raises or does not return ``n`` parts.
    """

    name = "unzip_with"

    def __init__(self, f: Callable[[Any], tuple[Any, ...]] | None = None, n: int = 2) -> None:
        check("UnzipWith(f, n)", opt_fn(f), int_at_least(n, 2))
        self.f = f
        self.n = n
        cls = type(self).__name__
        outs: list[Outlet[Any]] = [Outlet(f"{cls}.out{i}") for i in range(n)]
        inlet: Inlet[Any] = Inlet(f"{cls}.in")
        # Typed as the two-output shape (the API.md form); wider ones add out2, out3, ...
        self.shape = (
            FanOutShape2(inlet, *outs) if n == 2 else cast("Any", FanOutShapeN(inlet, *outs))
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        f, n = self.f, self.n

        def split(x: Any) -> tuple[Any, ...]:
            parts = tuple(x if f is None else f(x))
            if len(parts) != n:
                raise ValueError(
                    f"[{self.name}] expected {n} parts to unzip, got {len(parts)}: {parts!r}"
                )
            return parts

        if attributes is not None and attributes.get("fast_paths"):
            return _BroadcastBatchLogic(self.shape, split)
        return _AllOutputsLogic(self.shape, split, False)


class Unzip(UnzipWith):
    """``Unzip()``: pairs ``(a, b)`` split into ``out0`` (a) and ``out1`` (b).

    Emits when both outputs have demand. Backpressures when any output backpressures.
    Completes when upstream completes. Cancels when both outputs cancelled.
    """

    name = "unzip"

    def __init__(self) -> None:
        super().__init__(None)


# -- Balance ---------------------------------------------------------------------------------
class Balance(GraphStage[UniformFanOutShape]):
    """``Balance(n, wait_for_all_downstreams=False, eager_cancel=False)``: each element to
    the first output that has demand.

    The outputs with demand are served in the order they pulled; an output that got an
    element and pulls again queues behind the others, so outputs that keep asking are
    served in turn (with the fast paths too: outputs that ask for batches get their
    turns' elements as one batch each).

    Emits when any output has demand (with ``wait_for_all_downstreams``: the first element
    only after every output pulled once). Backpressures when all outputs backpressure.
    Completes when upstream completes. Cancels when all outputs cancelled, or with
    ``eager_cancel`` when the first one cancels.
    """

    name = "balance"

    def __init__(
        self, n: int = 2, wait_for_all_downstreams: bool = False, eager_cancel: bool = False
    ) -> None:
        check("Balance(n, wait_for_all_downstreams, eager_cancel)", pos_int(n))
        self.n = n
        self.wait_for_all_downstreams = wait_for_all_downstreams
        self.eager_cancel = eager_cancel
        self.shape = UniformFanOutShape.of(n, "Balance")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if attributes is not None and attributes.get("fast_paths"):
            return _BalanceBatchLogic(self.shape, self.wait_for_all_downstreams, self.eager_cancel)
        return _BalanceLogic(self.shape, self.wait_for_all_downstreams, self.eager_cancel)


class _BalanceLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: UniformFanOutShape, wait_all: bool, eager_cancel: bool) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.outs = shape.outlets
        self.eager_cancel = eager_cancel
        n = len(self.outs)
        self.queue: deque[int] = deque()
        self.need_pulls = n if wait_all else 0
        self.has_pulled = [False] * n
        self.running = n
        self.set_handler(self.in_, self)
        for i, o in enumerate(self.outs):
            self.set_handler(o, _PortOut(self, i))

    def _dispatch(self) -> None:
        while self.queue:
            o = self.outs[self.queue.popleft()]
            if not self.is_closed(o):
                self.push(o, self.grab(self.in_))
                if self.queue:
                    self.try_pull(self.in_)
                return

    def on_push(self) -> None:
        self._dispatch()

    def _count_pull(self, i: int) -> None:
        """Output ``i`` pulled (or cancelled): one fewer to wait for, the first time."""
        if not self.has_pulled[i]:
            self.has_pulled[i] = True
            if self.need_pulls > 0:
                self.need_pulls -= 1

    def on_pull_i(self, i: int) -> None:
        self._count_pull(i)
        if self.need_pulls == 0:
            if self.is_available(self.in_):
                if not self.queue:
                    self.push(self.outs[i], self.grab(self.in_))
                    return
                self.queue.append(i)
                self._dispatch()
            else:
                if not self.has_been_pulled(self.in_):
                    self.try_pull(self.in_)
                self.queue.append(i)
        else:
            self.queue.append(i)

    def on_cancel_i(self, i: int, cause: BaseException) -> None:
        if self.eager_cancel:
            self.cancel_stage(cause)
            return
        self.running -= 1
        if self.running == 0:
            self.cancel_stage(cause)
            return
        if not self.has_pulled[i] and self.need_pulls > 0:
            self._count_pull(i)
            if self.need_pulls == 0 and self.queue:
                self._all_pulled()

    def _all_pulled(self) -> None:
        """The last output ``wait_for_all_downstreams`` waited for cancelled; others wait."""
        if not self.has_been_pulled(self.in_):
            self.try_pull(self.in_)


class _BalanceBatchLogic(_BatchFanOut, _BalanceLogic):
    """Balance on the batch protocol (fast path; see ``_impl/fused.py``): the turns of
    ``_BalanceLogic``, dealt out in batches.

    Element by element (Akka's Balance) the outputs that pulled wait in a FIFO line, each
    element goes to the first one in it, and that output, if it wants more, pulls again
    and joins the back: outputs that keep asking are served in turn, from the first that
    pulled. Here a pull of ``demand_n`` elements (1 off a batch connection) stands for
    that many pulls, each made as soon as the element before it arrived, and the line
    (``queue``) keeps the order of the turn. An output in it either waits (its
    connection has demand) or is *expected*: it got a share and has not pulled again
    yet; element by element, a consumer that asks again at once would have pulled again
    before the next element, so it keeps its place (``in_line``).

    - ``_deal``: what upstream hands over goes round-robin over the line, one element
      per output per turn, as far as the line takes in turn (``_turns``): up to the turn
      of an expected output, or of an output that got all it asked for (whether it asks
      again then is its own business, not known here). Each output gets its share as
      one push, in the order the line ends in (by the last element each got: the order
      of their pulls again if they pull at once); what is left waits for the outputs
      served to pull again.
    - ``_serve``: upstream is pulled for what the line takes in turn, when the first
      output in the line waits and, if an output waiting asked for a batch, none is
      expected (so that the batch is dealt over the whole turn). Each output gets its
      demand when they asked for the same; one asking for less gets its turns among
      the others (an output taking one element at a time next to batch outputs gets
      every other element, as element by element). A line of outputs that each take
      one element at a time is pulled for one element per pull, as element by element.
      While the pull is still queued, an output that joins the line widens it.
    - ``_late``: outputs still expected when the island's burst of events ended (a flush
      hook, as an async boundary's hand-over) did not ask again at once; they leave the
      line (element by element their pull comes after the next element: a busy
      ``map_async`` worker, a full async boundary, a consumer done for now) and join its
      back when they pull.

    So both paths give the same elements to the same outputs in the same order when,
    element by element, each output that wants more pulls again before the next element
    arrives, and here before the island's burst ends: consumers in the island that ask
    again at once and take as long to in both paths (``Sink.seq``, a probe with demand,
    ``take``, one simple operator into a sink). Element by element a consumer several
    stages deep asks later and misses turns, which a fused chain does not: the plain
    path's order depends on stage counts there. Where it depends on pulls from outside
    the island (workers, async boundaries, a probe's later requests), it does in both
    paths. ``tests/reactive/test_balance_fairness.py`` compares the two.

    A downstream that takes elements synchronously (``_hand_over_i``, a ``map_async(1)``
    worker) is served when no output waits in the line, and leaves the line. Elements
    left over when outputs cancelled go to the next outputs that pull. With
    ``wait_for_all_downstreams`` nothing moves before every output pulled once (or
    cancelled), as element by element. An upstream that completes completes the stage
    once the leftovers went out. A consumer that fails or cancels in the middle of its
    share drops the rest of it, which element by element would have gone to the other
    outputs: a share cannot be taken back.
    """

    def __init__(self, shape: UniformFanOutShape, wait_all: bool, eager_cancel: bool) -> None:
        super().__init__(shape, wait_all, eager_cancel)
        self.buf: Any = None  # elements from upstream not handed out yet
        self.off = 0
        # ``in_line[i]``: output ``i`` has a place in ``queue``, waiting (its connection
        # has demand) or expected (see the class).
        self.in_line = [False] * len(self.outs)
        self._late_hooked = False  # ``_late`` is registered for the end of the burst
        self._late_hook = self._burst_ended  # (bound once)
        self._declare_batch_ports()
        # The upstream's synchronous hand-over (see ``_hand_over_i``), found at start
        # (``_BatchFanOut.pre_start``; counted there when the connection is metered).
        self._take_up: Any = None
        self._settle_up: Any = None

    def _waiting(self) -> bool:
        """Some output in the line pulled and waits (its connection has demand)."""
        couts = self._couts
        return any(couts[i].state & 34 == 2 for i in self.queue)  # (DEMAND|OUT_CLOSED)==DEMAND

    def _leave(self, i: int) -> None:
        """Output ``i`` leaves the line (it joins the back when it pulls next)."""
        if self.in_line[i]:
            self.in_line[i] = False
            self.queue.remove(i)

    def _leave_where(self, gone: Any) -> None:
        """The outputs whose connection state ``gone(state)`` holds for leave the line
        (the others keep their order)."""
        couts = self._couts
        in_line = self.in_line
        line = self.queue
        kept = []
        for i in line:
            if gone(couts[i].state):
                in_line[i] = False
            else:
                kept.append(i)
        line.clear()
        line.extend(kept)

    def _hand_over_i(self, i: int, n: int) -> Any:
        """The batch protocol's synchronous shortcut, per output (fast path; see
        ``reactive/_stage/batch.py``): up to ``n`` elements for output ``i`` right now,
        standing for output ``i``'s pull -> ``on_pull_i`` -> upstream pull -> push ->
        ``on_push`` -> push -> grab; None when that round trip cannot be skipped.

        Only when it changes nothing else: no output waits in the line (it would come
        first), ``wait_for_all_downstreams`` is satisfied, and the elements are either
        left over here or the upstream hands them over at once (an async boundary's
        buffer, or one element of an iterable source, settled before returning, so the
        source's own failure or ``None`` element fails the source as its ``on_pull``
        would). Every connection is left in the state it was in; output ``i`` leaves the
        line if it had a place in it (see the class). (On a metered output the caller
        holds the hand-over counted by reactive.observe: a take of these elements, see
        ``hand_over_hook_of``; upstream's is counted likewise.)
        """
        if self.need_pulls or self._stopped or (self.queue and self._waiting()):
            return None
        got = self._take_now(n)
        if got is not None and self.in_line[i]:
            self._leave(i)
        return got

    def _take_now(self, n: int) -> Any:
        """Up to ``n`` elements right now for ``_hand_over_i`` (its conditions hold)."""
        buf = self.buf
        if buf is not None:
            off = self.off
            end = len(buf)
            stop = off + n if off + n < end else end
            chunk = buf[off:stop]
            if stop < end:
                self.off = stop
            else:
                self.buf = None
                self.off = 0
                if self._cin.state & IN_CLOSED:
                    self.complete_stage()
            return chunk
        take = self._take_up
        cin = self._cin
        if take is None or cin.state != 0:
            return None
        settle = self._settle_up
        if settle is None:
            return take(n)  # a list (an async boundary's buffer) or None
        if n != 1:
            return None
        take_one = self._take_one_up
        if take_one is not None:
            # An iterable source: its lazy take of one element and the settling in one
            # call (a None element is not handed over: the pull that follows fails it).
            x = take_one()
            return None if x is NOTHING else (x,)
        it = take(1)
        if it is None:
            return None
        try:
            x = next(it)
        except Exception as exc:  # pragma: no cover - a one-element take holds its element
            settle(exc)
            return None
        if x is None:
            # As the source's push would (RS rule 2.13): the source fails.
            note_unsent(cin)
            settle(cin.out_logic._err(cin.out_port, NONE_ELEMENT))
            return None
        settle(None)
        return (x,)

    def _hand_over_one_i(self, i: int) -> Any:
        """``_hand_over_i(i, 1)`` for a downstream that takes one element at a time (a
        ``map_async(1)`` worker; fast path, see ``reactive/_stage/batch.py``): the element
        itself, or ``NOTHING`` when the round trip cannot be skipped. An iterable source
        upstream hands it over in one call (``_take_one_up``) when nothing is left over
        here and its connection is idle; anything else goes through ``_take_now``."""
        if self.need_pulls or self._stopped or (self.queue and self._waiting()):
            return NOTHING
        take_one = self._take_one_up
        if take_one is not None and self.buf is None and self._cin.state == 0:
            x = take_one()  # (never a None element: see ``take_one_hook``)
        else:
            more = self._take_now(1)
            x = more[0] if more else NOTHING
        if x is not NOTHING and self.in_line[i]:
            self._leave(i)
        return x

    def _turns(self) -> tuple[list[int], int, int]:
        """The line's turn, read from its connections: for each open output in it, in
        order, what it asked for (``demand_n``, 1 off a batch connection) when it waits,
        0 when it is expected (see the class); with the most any asked for, and how many
        elements the line takes in turn now: with ``m`` outputs in it, the one at
        position ``j`` having asked for ``d_j`` (0: expected), its turn after its last
        element comes once ``d_j * m + j`` elements went out; the least of those (0: the
        first one is expected). Cancelled outputs leave the line here."""
        couts = self._couts
        line = self.queue
        rooms: list[int] = []
        closed = False
        for i in line:
            c = couts[i]
            st = c.state
            if st & OUT_CLOSED:
                closed = True
            elif st & DEMAND:
                rooms.append(c.demand_n if c.batch else 1)
            else:
                rooms.append(0)
        if closed:
            self._leave_where(lambda st: bool(st & OUT_CLOSED))
        m = len(rooms)
        top = limit = rooms[0] if m else 0
        if m > 1:
            # (A loop, not min() over a generator: this runs on every pull and push.)
            limit *= m
            for j, d in enumerate(rooms):
                if d > top:
                    top = d
                t = d * m + j
                if t < limit:
                    limit = t
        return rooms, top, limit

    def _want(self) -> int:
        """What upstream is pulled for: what the line takes in turn, or one element when
        each output waiting asked for one (element-at-a-time consumers: as element by
        element, one pull per element, the first of them gets it)."""
        _, top, limit = self._turns()
        return 1 if top == 1 and limit > 1 else limit

    def _deal(self, buf: Any, m: int, limit: int) -> None:
        """Deal ``buf[off:]`` out over the line (see the class; ``m`` outputs in it,
        taking ``limit`` elements in turn: ``_turns``): round-robin in line order; one
        push per output served, in the order the line ends in. Outputs that got nothing
        keep their places; what is left stays in ``buf`` (from ``off``), for when the
        outputs served pulled again."""
        line = self.queue
        outs = self.outs
        off = self.off
        end = len(buf)
        k = end - off if limit > end - off else limit
        stop = off + k
        if m == 1:
            # One output in the line (fast path): it takes what it asked for.
            i = line[0]
            if k == 1:
                self.push(outs[i], buf[off])
            elif off == 0 and stop == end and type(buf) is _Batch:
                self.push(outs[i], buf)  # the batch as it came
            else:
                self.push(outs[i], _Batch(buf[off:stop]))
        else:
            # Output ``line[j]`` gets every ``m``-th element from ``off + j`` on (one
            # slice each; ``k`` never reaches the turn of an expected output, nor an
            # output's turn after all it asked for). The line ends with those that got
            # nothing (when ``k < m``), then those served: the last ``r`` got the last
            # elements, so they come after the others, each group in its order.
            order = list(line)
            if k >= m:
                r = k % m
                served = [*range(r, m), *range(r)]
                line.clear()
            else:
                served = list(range(k))
                for _ in range(k):
                    line.popleft()
            for j in served:
                i = order[j]
                line.append(i)
                share = buf[off + j : stop : m]
                self.push(outs[i], share[0] if len(share) == 1 else _Batch(share))
        if stop < end:
            self.buf = buf
            self.off = stop
        else:
            self.buf = None
            self.off = 0

    def _serve(self) -> None:
        """Deal what is held out over the line, then pull upstream for what it takes in
        turn (see the class); complete when upstream completed and nothing is held.

        Waits (until the outputs expected pulled again, or the burst ends: ``_late``)
        when the first output in the line is expected, or one is and an output waiting
        asked for a batch (what is dealt then is the whole turn, not just the outputs
        in front of it)."""
        if self.need_pulls > 0:
            return
        cin = self._cin
        while True:
            if self.buf is None and cin.state & IN_CLOSED:
                self.complete_stage()
                return
            rooms, top, limit = self._turns()
            if top == 0:
                return  # nobody waits
            if limit == 0 or (top > 1 and 0 in rooms):
                self._await_late()
                return
            if self.buf is None:
                break
            self._deal(self.buf, len(rooms), limit)  # (those served are expected now)
        if cin.state & 7:  # PULLED: a pull is outstanding already
            return
        self.pull(self.in_)
        if cin.batch:
            cin.demand_n = 1 if top == 1 else limit

    def _await_late(self) -> None:
        """Run ``_late`` once the island's burst of events ended (once)."""
        if self._late_hooked:
            return
        island = self._island
        if island is None:  # pragma: no cover - a started logic has its island
            self._late()
            return
        self._late_hooked = True
        island.flush_hooks.append(self._late_hook)

    def _burst_ended(self) -> None:
        """The flush hook: ``_late`` as a signal into the island. (A hook may run at the
        end of a cascade of islands, outside this island's loop, which then has to run
        for what ``_late`` does; inside it, the signal is its next event.)"""
        island = self._island
        if self._stopped or island is None:
            self._late_hooked = False
            return
        island.signal(self, self._late, None)

    def _late(self, _: Any = None) -> None:
        """The island's burst ended: outputs still expected did not pull again at once;
        they leave the line (see the class), and the outputs waiting are served. (An
        output whose pull is on its way keeps its place.)"""
        self._late_hooked = False
        self._leave_where(lambda st: not st & (DEMAND | PULL_REQ))
        self._serve()

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if type(x) is _Batch:
            if not x:
                self._serve()
                return
            self.buf = x
        else:
            self.buf = (x,)
        self.off = 0
        self._serve()

    def on_upstream_finish(self) -> None:
        if self.buf is None:
            self.complete_stage()

    def on_pull_i(self, i: int) -> None:
        self._count_pull(i)
        if not self.in_line[i]:
            self.in_line[i] = True
            self.queue.append(i)
        cin = self._cin
        if cin.state & PULL_REQ and self.buf is None:
            # Upstream's pull is still queued (its ``on_pull`` has not read ``demand_n``):
            # it is for the line as it is now, this output included.
            if cin.batch:
                cin.demand_n = max(1, self._want())
            return
        self._serve()

    def on_cancel_i(self, i: int, cause: BaseException) -> None:
        super().on_cancel_i(i, cause)
        if not self._stopped:
            self._leave(i)
            self._serve()  # the line may have waited for it

    def _all_pulled(self) -> None:
        self._serve()


# -- Partition -------------------------------------------------------------------------------
class Partition(GraphStage[UniformFanOutShape]):
    """``Partition(n, f, eager_cancel=False)``: each element to output ``f(x)``.

    Emits when the chosen output has demand (an element for a cancelled output is
    dropped). Backpressures when the chosen output backpressures. Completes when upstream
    completes and no element is pending. Fails when ``f`` raises or returns an index
    outside ``[0, n)`` (``PartitionOutOfBoundsError`` naming the index). Cancels when all
    outputs cancelled (or the first, with ``eager_cancel``). Supervision: resume/restart
    drop the element.
    """

    name = "partition"

    def __init__(self, n: int, f: Callable[[Any], int], eager_cancel: bool = False) -> None:
        check("Partition(n, f, eager_cancel)", pos_int(n), fn(f))
        self.n = n
        self.f = f
        self.eager_cancel = eager_cancel
        self.shape = UniformFanOutShape.of(n, "Partition")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        if not self.eager_cancel and attributes is not None and attributes.get("fast_paths"):
            return _PartitionBatchLogic(self.shape, self.f)
        return _PartitionLogic(self.shape, self.f, self.eager_cancel)


_NONE: Any = object()


class _PartitionLogic(GraphStageLogic, InHandler):
    _supervised = True

    def __init__(
        self, shape: UniformFanOutShape, f: Callable[[Any], int], eager_cancel: bool
    ) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.outs = shape.outlets
        self.f = f
        self.eager_cancel = eager_cancel
        self.pending: Any = _NONE
        self.pending_idx = -1
        self.running = len(self.outs)
        self.set_handler(self.in_, self)
        for i, o in enumerate(self.outs):
            self.set_handler(o, _PortOut(self, i))

    def _any_demand(self) -> bool:
        return any(self.is_available(o) for o in self.outs)

    def on_push(self) -> None:
        elem = self.grab(self.in_)
        idx = self.f(elem)
        n = len(self.outs)
        if not isinstance(idx, int) or not 0 <= idx < n:
            raise PartitionOutOfBoundsError(
                f"[{self.stage_name}] partitioner returned index {idx!r} for element "
                f"{elem!r}; it must be in the range [0, {n - 1}]"
            )
        o = self.outs[idx]
        if not self.is_closed(o):
            if self.is_available(o):
                self.push(o, elem)
                if self._any_demand():
                    self.pull(self.in_)
            else:
                self.pending = elem
                self.pending_idx = idx
        elif self._any_demand():
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.pending is _NONE:
            self.complete_stage()

    def on_pull_i(self, i: int) -> None:
        if self.pending is not _NONE:
            if i == self.pending_idx:
                elem, self.pending = self.pending, _NONE
                self.push(self.outs[i], elem)
                if not self.is_closed(self.in_):
                    self.try_pull(self.in_)
                else:
                    self.complete_stage()
        elif not self.has_been_pulled(self.in_):
            self.try_pull(self.in_)

    def on_cancel_i(self, i: int, cause: BaseException) -> None:
        if self.eager_cancel:
            self.cancel_stage(cause)
            return
        self.running -= 1
        if self.running == 0:
            self.cancel_stage(cause)
        elif self.pending is not _NONE and i == self.pending_idx:
            self.pending = _NONE  # dropped with its cancelled output, as in Akka
            if self.is_closed(self.in_):
                self.cancel_stage(cause)
            else:
                self.try_pull(self.in_)

    def _on_resume(self, exc: BaseException) -> None:
        if self.pending is _NONE and self._any_demand():
            self.try_pull(self.in_)


class _PartitionOut(_PortOut):
    """A batch Partition's outlet: ``on_pull`` is ``logic.on_pull_i(i)`` (one call less
    per pull on the single-element path)."""

    __slots__ = ("on_pull",)

    def __init__(self, logic: Any, i: int) -> None:
        super().__init__(logic, i)
        self.on_pull = functools.partial(logic.on_pull_i, i)  # type: ignore[method-assign]


class _PartitionBatchLogic(_BatchFanOut, GraphStageLogic, InHandler):
    """Partition on the batch protocol (fast path; see ``_impl/fused.py``).

    What upstream hands over waits in a queue that is dispatched in order: each element's
    index is computed when its turn comes (after every earlier element went out, as
    element by element), the element joins its output's chunk while that output has
    demand left (``demand_n`` on a batch connection, 1 otherwise), is dropped when the
    output is cancelled, and stops the dispatch when the output has no demand (it waits,
    as the pending element of ``_PartitionLogic``). Each output then gets its chunk as one
    push. Upstream is pulled when the queue is empty and some output has demand, for the
    largest demand among them. A raising function or a bad index: the chunks so far are
    pushed, then supervision decides (resume/restart drop the element). Used for
    ``eager_cancel=False`` only.

    One element at a time (outputs that take one element per pull, as a custom
    element-at-a-time stage does) has its own path: an element pushed alone is routed
    without a queue to dispatch (``_one``), a pull of the output the last element waits
    for pushes it at once (``on_pull_i``), and with a demand of one the next element is
    taken from an upstream that hands over synchronously (``_pull_up_fast``).
    """

    _supervised = True

    def __init__(self, shape: UniformFanOutShape, f: Callable[[Any], int]) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.outs = shape.outlets
        self.f = f
        self.running = len(self.outs)
        self.queue: Any = ()
        self.pos = 0
        self.head_idx = -1  # the index of queue[pos], once computed
        self.set_handler(self.in_, self)
        for i, o in enumerate(self.outs):
            self.set_handler(o, _PartitionOut(self, i))
        self._declare_batch_ports()

    def _rooms(self) -> list[int]:
        return [
            (c.demand_n if c.batch else 1) if c.state & (DEMAND | OUT_CLOSED) == DEMAND else 0
            for c in self._couts
        ]

    def _checked(self, elem: Any, idx: Any) -> int:
        """``idx`` returned for ``elem`` when it is not a plain in-range int: an int
        subclass in range passes, anything else is ``PartitionOutOfBoundsError``."""
        n = len(self.outs)
        if not isinstance(idx, int) or not 0 <= idx < n:
            raise PartitionOutOfBoundsError(
                f"[{self.stage_name}] partitioner returned index {idx!r} for element "
                f"{elem!r}; it must be in the range [0, {n - 1}]"
            )
        return idx

    def _dispatch(self) -> None:
        """Hand out queued elements while their outputs have demand; then pull upstream
        or complete when the queue is empty."""
        queue = self.queue
        pos = self.pos
        rooms = self._rooms()
        chunks: list[list[Any]] = [[] for _ in self.outs]
        closed = [bool(c.state & OUT_CLOSED) for c in self._couts]
        exc: Exception | None = None
        end = len(queue)
        f = self.f
        n = len(self.outs)
        idx = self.head_idx  # the first element's index, when computed before
        self.head_idx = -1
        while pos < end:
            elem = queue[pos]
            if idx < 0:
                try:
                    idx = f(elem)
                    if type(idx) is not int or not 0 <= idx < n:
                        idx = self._checked(elem, idx)
                except Exception as e:
                    directive = self._decided(e)
                    if directive is Supervision.resume or directive is Supervision.restart:
                        pos += 1
                        idx = -1
                        continue
                    exc = e
                    break
            if not closed[idx]:
                room = rooms[idx]
                if room <= 0:
                    self.head_idx = idx  # waits for that output's pull
                    break
                rooms[idx] = room - 1
                chunks[idx].append(elem)
            pos += 1
            idx = -1
        self.pos = pos
        for i, chunk in enumerate(chunks):
            if chunk:
                self.push(self.outs[i], chunk[0] if len(chunk) == 1 else _Batch(chunk))
        if exc is not None:
            self._keep_going = False
            self.fail_stage(exc)
            if not self._stopped:
                self._stop()
            return
        if pos >= len(queue):
            self.queue = ()
            self.pos = 0
            if self._cin.state & IN_CLOSED:
                self.complete_stage()
            else:
                # An output that got a chunk has no demand left (a push answers a pull).
                for i, chunk in enumerate(chunks):
                    if chunk:
                        rooms[i] = 0
                self._pull_up(rooms)

    def _pull_up(self, rooms: list[int]) -> None:
        want = max(rooms)
        if want > 0 and not self.has_been_pulled(self.in_):
            cin = self._cin
            self.pull(self.in_)
            if cin.batch:
                cin.demand_n = want

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if type(x) is not _Batch:
            self._one(x)
            return
        self.queue = x
        self.pos = 0
        self.head_idx = -1
        self._dispatch()

    def _one(self, x: Any) -> None:
        """One element pushed (the single-element path: no batch built or dispatched).

        The same as a dispatch of a queue holding just ``x`` (see :meth:`_route`); then
        upstream is pulled (or the stage completes) when nothing waits. A raising
        function reaches supervision through the handler (``_on_resume``): nothing is
        queued then.
        """
        if self._route(x):
            if self._cin.state & IN_CLOSED:
                self.complete_stage()
            else:
                self._pull_up_fast()

    def _route(self, x: Any) -> bool:
        """Push ``x`` to its output when that has demand, drop it when it is cancelled
        (True: nothing waits), else keep it as the queue's head, waiting for that output's
        pull (False). The queue is empty when called."""
        idx = self.f(x)
        if type(idx) is not int or not 0 <= idx < len(self.outs):
            idx = self._checked(x, idx)
        st = self._couts[idx].state
        if st & 34 == 2:  # st & (DEMAND | OUT_CLOSED) == DEMAND
            self.push(self.outs[idx], x)
        elif not st & OUT_CLOSED:
            self.queue = (x,)
            self.pos = 0
            self.head_idx = idx
            return False
        return True

    def _pull_up_fast(self, wait: bool = False) -> None:
        """With the queue empty and upstream open: ``_pull_up(self._rooms())`` without the
        list, for the largest demand among the outputs that have some (with ``wait``:
        nothing while an output's pull is on its way, as :meth:`_serve`).

        When the demand is one element, upstream hands elements over synchronously (an
        iterable source, an async boundary's buffer: ``_take_up``, see
        reactive/_stage/batch.py) and the connection is idle, the element is taken right
        now instead (the pull -> on_pull -> push -> on_push round trip, the connection's
        state the same before and after) and routed as :meth:`_route` does, in a loop
        while outputs have demand left. An iterable source hands one element over in
        one call (``_take_one_up``: its lazy take and settling together).
        """
        cin = self._cin
        couts = self._couts
        take = self._take_up
        take_one = self._take_one_up
        f = self.f
        n = len(couts)
        while True:
            want = 0
            for c in couts:
                st = c.state
                if st & 34 == 2:  # DEMAND, not OUT_CLOSED
                    d = c.demand_n if c.batch else 1
                    if d > want:
                        want = d
                elif st & 1 and wait:  # PULL_REQ: served when that pull comes
                    return
            if want <= 0 or cin.state & 7:  # no demand, or pulled already
                return
            # Only for one element: a larger demand is pulled, so that outputs pulled
            # in the meantime are served together by the batch that answers it.
            if want != 1 or cin.state != 0:
                x = NOTHING
            elif take_one is not None:
                # The lazy take of one element and its settling in one call.
                x = take_one()
            elif take is not None:
                more = take(1)
                if more is None:
                    x = NOTHING
                else:
                    settle = self._settle_up
                    if settle is None:
                        x = more[0] if more else _NONE
                    else:
                        # A lazy take runs the upstream's own iterator: what it raises
                        # is the upstream's failure (it fails itself when settled with it).
                        err: BaseException | None = None
                        try:
                            x = next(more, _NONE)
                        except Exception as e:
                            err = e
                            x = _NONE
                        settle(err)
                    if x is _NONE:
                        return  # (the upstream's failure or completion is on its way)
            else:
                x = NOTHING
            if x is NOTHING:
                self.pull(self.in_)
                if cin.batch:
                    cin.demand_n = want
                return
            if x is None:  # RS rule 2.13, as a fused chain checks what it is handed
                note_unsent(cin)
                name = cin.out_logic._stage_name
                raise PortStateError(f"[{name}] {NONE_ELEMENT}")
            # _route(x), inlined: this runs once per element.
            idx = f(x)
            if type(idx) is not int or not 0 <= idx < n:
                idx = self._checked(x, idx)
            c = couts[idx]
            st = c.state
            if st == 2:  # DEMAND and nothing else: push's own fast path, spelled out
                c.elem = x
                c.state = 4  # PUSH_REQ
                c.q.append(c)
            elif st & 34 == 2:  # st & (DEMAND | OUT_CLOSED) == DEMAND
                self.push(self.outs[idx], x)
            elif not st & OUT_CLOSED:
                self.queue = (x,)
                self.pos = 0
                self.head_idx = idx  # waits for that output's pull
                return
            if cin.state & IN_CLOSED:
                self.complete_stage()
                return
            wait = False

    def on_upstream_finish(self) -> None:
        if self.pos >= len(self.queue):
            self.complete_stage()

    def _serve(self) -> None:
        """Dispatch the queue when its head's output has demand, or pull upstream when the
        queue is empty. Waits while an output's pull is on its way (its ``on_pull`` or,
        when it was cancelled since, its ``on_downstream_finish`` comes after this
        event and serves then): outputs pulled together are then served together, in
        one dispatch, instead of one element at a time in turn."""
        if _pull_on_its_way(self._couts):
            return
        if self.pos < len(self.queue):
            h = self.head_idx
            if h >= 0 and self._couts[h].state & (DEMAND | OUT_CLOSED) == DEMAND:
                self._dispatch()
        elif not self._cin.state & IN_CLOSED:
            self._pull_up_fast()

    def on_pull_i(self, i: int) -> None:
        pos = self.pos
        last = len(self.queue) - 1
        if pos > last:
            # The queue is empty: :meth:`_serve`'s way, with its wait for a pull on its
            # way done by ``_pull_up_fast``.
            if not self._cin.state & IN_CLOSED:
                self._pull_up_fast(True)
            return
        if self.head_idx == i and pos == last:
            # The single-element path: the last element waits for this output. Pushed
            # now, as a dispatch would (with nothing after it, there is nothing to wait
            # for with it: another output's pull on its way is served when it comes).
            x = self.queue[self.pos]
            self.queue = ()
            self.pos = 0
            self.head_idx = -1
            c = self._couts[i]
            if c.state == 2:  # DEMAND and nothing else: push's own fast path, spelled out
                c.elem = x
                c.state = 4  # PUSH_REQ
                c.q.append(c)
            else:
                self.push(self.outs[i], x)
            if self._cin.state & IN_CLOSED:
                self.complete_stage()
            else:
                self._pull_up_fast(True)
            return
        self._serve()

    def on_cancel_i(self, i: int, cause: BaseException) -> None:
        self.running -= 1
        if self.running == 0:
            self.cancel_stage(cause)
        elif self.pos < len(self.queue) and self.head_idx == i:
            # The element waiting for it is dropped with its cancelled output, as in Akka.
            self.head_idx = -1
            self.pos += 1
            if self.pos >= len(self.queue) and self._cin.state & IN_CLOSED:
                self.cancel_stage(cause)
            else:
                self._dispatch()
        else:
            self._serve()  # a dispatch may have waited for this output's pull

    def _on_resume(self, exc: BaseException) -> None:
        # The function raised on a single element pushed or taken (not from _dispatch,
        # which decides itself): nothing was queued.
        if self.pos >= len(self.queue):
            self._pull_up(self._rooms())


# -- WireTap ---------------------------------------------------------------------------------
class WireTap(GraphStage[FanOutShape2]):
    """The stage behind ``wire_tap(sink)``: ``out0`` is the main line, ``out1`` the tap.

    Emits when the main output has demand; the tap gets a copy if it has demand, else
    the copy is kept until the tap pulls (a newer element replaces it, as in Akka).
    Backpressures when the main output
    backpressures (never because of the tap). Completes when upstream completes.
    Cancels when the main output cancels; a cancelled tap does not affect the main line.
    """

    name = "wire_tap"

    def __init__(self) -> None:
        self.shape = FanOutShape2(
            Inlet("WireTap.in"), Outlet("WireTap.out0"), Outlet("WireTap.out1")
        )

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _WireTapLogic(self.shape)


class _WireTapLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FanOutShape2) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.main = shape.out0
        self.tap = shape.out1
        self.set_handler(self.in_, self)
        self.set_handler(self.main, self)
        self.pending: Any = _NONE  # the latest copy the tap has not taken yet
        self.set_handler(self.tap, _TapOut(self))

    def on_push(self) -> None:
        elem = self.grab(self.in_)
        self.push(self.main, elem)
        if self.is_available(self.tap):
            self.push(self.tap, elem)
        elif not self.is_closed(self.tap):
            self.pending = elem

    def on_pull(self) -> None:
        self.pull(self.in_)


class _TapOut(OutHandler):
    """The tap outlet: it can neither backpressure nor cancel the stage."""

    def __init__(self, logic: _WireTapLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        lg = self.logic
        if lg.pending is not _NONE:
            elem, lg.pending = lg.pending, _NONE
            lg.push(lg.tap, elem)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.logic.pending = _NONE
