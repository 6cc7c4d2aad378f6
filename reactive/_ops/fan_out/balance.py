"""Balance: each element to one output with demand."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..._checks import NONE_ELEMENT, check, pos_int
from ..._impl.interpreter import DEMAND, IN_CLOSED, OUT_CLOSED, PULL_REQ
from ..._stage.batch import NOTHING, note_unsent
from ..._stage.logic import GraphStage, GraphStageLogic, InHandler, _Batch
from ..._stage.shapes import UniformFanOutShape
from ._base import _BatchFanOut, _PortOut

__all__ = [
    "Balance",
]


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
