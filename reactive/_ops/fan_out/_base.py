"""What the fan-out junctions share: the output handler that forwards to its logic
(``_PortOut``), the batch mixin (``_BatchFanOut``) and the logic of junctions that
need every output's demand (``_AllOutputsLogic``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..._impl.interpreter import PULL_REQ
from ..._stage.batch import hand_over_hook, settle_hook, take_one_hook
from ..._stage.logic import GraphStageLogic, InHandler, OutHandler

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..._stage.shapes import Inlet, Outlet


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
