"""Broadcast, Unzip / UnzipWith and the WireTap behind ``wire_tap``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ..._checks import NONE_ELEMENT, check, int_at_least, opt_fn, pos_int
from ..._impl.interpreter import DEMAND, IN_CLOSED, OUT_CLOSED, PULLED
from ..._stage.batch import accept_hook, note_unsent
from ..._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from ..._stage.shapes import FanOutShape2, Inlet, Outlet, Shape, UniformFanOutShape
from ..sources import _none_index

if TYPE_CHECKING:
    from collections.abc import Callable
from ._base import _AllOutputsLogic, _AllOutputsPortOut, _BatchFanOut
from .partition import _NONE

__all__ = [
    "Broadcast",
    "Unzip",
    "UnzipWith",
    "WireTap",
]


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
