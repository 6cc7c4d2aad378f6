"""Partition: each element to the output its function picks."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..._checks import NONE_ELEMENT, check, fn, pos_int
from ..._errors import NoneElementError, PartitionOutOfBoundsError
from ..._impl.interpreter import DEMAND, IN_CLOSED, OUT_CLOSED
from ..._stage.batch import NOTHING, note_unsent
from ..._stage.logic import GraphStage, GraphStageLogic, InHandler, _Batch
from ..._stage.shapes import UniformFanOutShape
from ..._supervision import Supervision

if TYPE_CHECKING:
    from collections.abc import Callable
from ._base import _BatchFanOut, _PortOut, _pull_on_its_way

__all__ = [
    "Partition",
]


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
    """A batch Partition's outlet. Its ``on_pull`` is ``logic.on_pull_i(i)`` with the
    single-element path fused in (one handler call per pull, no ``on_pull_i`` and no
    ``_pull_up_fast`` frame): the last element waits for this output, and the outputs
    take one element per pull from an upstream that hands one over synchronously (see
    :meth:`on_pull`). Anything else goes to ``on_pull_i``."""

    __slots__ = ("others", "other")

    def __init__(self, logic: Any, i: int) -> None:
        super().__init__(logic, i)
        # The other outputs' connections, and the other one alone with two outputs, else
        # None (set at start): after this output's push took its demand, only they can
        # have demand or a pull on its way.
        self.others: Any = ()
        self.other: Any = None

    def on_pull(self) -> None:
        """``logic.on_pull_i(i)``; the single-element path spelled out.

        The element waiting alone for this output is pushed (push's fast path), then, as
        ``_pull_up_fast(True)`` does when no output is a batch connection (``_ones``: a
        demand is one element) and upstream is an idle iterable source handing one over
        (``_take_one_up``): while some output has demand and (first round only) no
        output's pull is on its way, the next element is taken and routed, until one
        has to wait for its output's pull. Any other state takes the general path
        (``_pull_up_fast``, ``on_pull_i``) at the point it differs."""
        logic = self.logic
        i = self.i
        queue = logic.queue
        # An element waits for output ``i`` (``head_idx``) and is the only one queued (so
        # ``pos`` is 0: the waiting element is ``queue[pos]``).
        if logic.head_idx != i or len(queue) != 1:
            logic.on_pull_i(i)
            return
        logic.queue = ()
        logic.head_idx = -1
        couts = logic._couts
        c = couts[i]
        cin = logic._cin
        if c.state != 2 or cin.state or not logic._ones:
            # Not exactly DEMAND (push checks), or upstream pulled already or not idle
            # (closed: complete), or no one-element path: the general path.
            logic.push(logic.outs[i], queue[0])
            if cin.state & 16:  # IN_CLOSED
                logic.complete_stage()
            else:
                logic._pull_up_fast(True)
            return
        c.elem = queue[0]  # push's own fast path, spelled out
        c.state = 4  # PUSH_REQ
        c.q.append(c)
        # _pull_up_fast(True) with a demand of one element per output, spelled out. Its
        # first round: this output has neither demand nor a pull on its way now.
        other = self.other
        if other is not None:
            st = other.state
            if st != 2 and st & 34 != 2:  # no demand (DEMAND, not OUT_CLOSED): done
                return
        else:
            want = False
            for c in self.others:
                st = c.state
                if st & 34 == 2:  # DEMAND, not OUT_CLOSED
                    want = True
                elif st & 1:  # PULL_REQ: served when that pull comes
                    return
            if not want:
                return
        # (Calls through attributes: no method lookup.)
        take_one = logic._take_one_up
        f = logic.f
        while True:
            x = take_one()
            if x is NOTHING:
                logic.pull(logic.in_)
                cin.demand_n = 1
                return
            if x is None:  # RS rule 2.13, as a fused chain checks what it is handed
                note_unsent(cin)
                name = cin.out_logic._stage_name
                raise NoneElementError(f"[{name}] {NONE_ELEMENT}")
            idx = f(x)
            if type(idx) is not int or not 0 <= idx < len(couts):
                idx = logic._checked(x, idx)
            c = couts[idx]
            st = c.state
            if st == 2:  # DEMAND and nothing else: push's own fast path, spelled out
                c.elem = x
                c.state = 4  # PUSH_REQ
                c.q.append(c)
            elif st & 34 == 2:  # st & (DEMAND | OUT_CLOSED) == DEMAND
                logic.push(logic.outs[idx], x)
            elif not st & 32:  # not OUT_CLOSED: waits alone for that output's pull
                logic.queue = (x,)
                logic.head_idx = idx
                return
            if cin.state:
                if cin.state & 16:  # IN_CLOSED
                    logic.complete_stage()
                else:  # pulled already, or not idle: the general path decides
                    logic._pull_up_fast(False)
                return
            # The next rounds: while some output has demand (DEMAND, not OUT_CLOSED).
            for c in couts:
                if c.state & 34 == 2:
                    break
            else:
                return


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
        # Every output takes one element per pull and upstream hands one over
        # synchronously (set at start): ``_PartitionOut.on_pull``'s fused path.
        self._ones = False

    def pre_start(self) -> None:
        super().pre_start()
        couts = self._couts
        self._ones = self._take_one_up is not None and not any(c.batch for c in couts)
        for i, o in enumerate(self.outs):
            h = self._handlers[o]
            h.others = tuple(c for j, c in enumerate(couts) if j != i)
            h.other = h.others[0] if len(h.others) == 1 else None

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
                raise NoneElementError(f"[{name}] {NONE_ELEMENT}")
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
