"""What the fan-in junctions share: the input handler that forwards to its logic
(``_PortIn``), a zip function's arity, the batch logic fan-in junctions build on
(``_BatchFanInLogic``), and ``eager_finish``."""

from __future__ import annotations

import abc
import inspect
from typing import TYPE_CHECKING, Any

from ..._impl.interpreter import DEMAND, IN_CLOSED, PULLED
from ..._stage.batch import lend_hook
from ..._stage.logic import GraphStageLogic, InHandler, OutHandler, _Batch

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..._stage.shapes import Inlet


class _PortIn(InHandler):
    """Routes one inlet's events to ``logic.on_push_i(i)`` etc."""

    __slots__ = ("logic", "i")

    def __init__(self, logic: Any, i: int) -> None:
        self.logic = logic
        self.i = i

    def on_push(self) -> None:
        self.logic.on_push_i(self.i)

    def on_upstream_finish(self) -> None:
        self.logic.on_finish_i(self.i)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.logic.on_failure_i(self.i, exc)


def _arity(f: Callable[..., Any]) -> int:
    """How many positional arguments ``f`` requires (2 when it cannot be told)."""
    try:
        params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError):
        return 2
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    n = sum(1 for p in params if p.kind in kinds and p.default is inspect.Parameter.empty)
    return max(n, 2)


class _BatchFanInLogic(GraphStageLogic, OutHandler, abc.ABC):
    """The common part of the fan-in stages on the batch protocol (fast path; see
    ``_impl/fused.py``): ``Zip``/``ZipWith``, ``Merge``, ``Concat`` here, ``Interleave`` and
    ``MergeSorted`` below.

    What input ``i`` hands over (one element or a batch) waits in ``bufs[i]`` (``None``
    when empty), read from ``offs[i]`` on. An input is pulled (``_pull_in``) for what
    downstream last asked for (``want``: ``demand_n`` of the output connection, 1 when it
    is not a batch connection). Each stage says how it serves downstream (``_serve``),
    what it does when an input's buffer fills (``_pushed``) and, if not "pull again", when
    an input hands over an empty batch (``_empty``).
    """

    #: Pull every input once in ``pre_start`` (a non-detached Concat does not).
    pull_at_start = True

    def __init__(self, shape: Any) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.bufs: list[Any] = [None] * len(self.ins)
        self.offs = [0] * len(self.ins)
        self.want = 1
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)
        self._batch_in = tuple(self.ins)
        self._batch_out = (self.out,)

    def pre_start(self) -> None:
        self._cout = self._conns[self.out]
        self._cins = [self._conns[p] for p in self.ins]
        # Inputs that are an async boundary's output (a lender, see _stage/batch.py): a
        # pull of one with nothing buffered is delivered at once (see ``_pull_in``).
        self._lenders = [c.batch and lend_hook(c.out_logic) is not None for c in self._cins]
        if self.pull_at_start:
            for i in range(len(self.ins)):
                self._pull_in(i)

    def _pull_in(self, i: int) -> None:
        """Pull input ``i`` (unless it is closed or pulled already) for ``want``."""
        c = self._cins[i]
        if not c.state & (IN_CLOSED | PULLED):
            if c.state == 0 and self._lenders[i] and not c.out_logic.buffer:
                # An async boundary with nothing buffered: its ``on_pull`` would do
                # nothing, so deliver the pull now (PULL_REQ -> DEMAND) instead of queueing
                # an event for it; its next batch finds us waiting (``_accept_i``).
                c.state = DEMAND
                if c.metered:  # that pull, counted here (reactive.observe)
                    c.pulled()  # type: ignore[attr-defined]
            else:
                self.pull(self.ins[i])
            if c.batch:
                c.demand_n = self.want

    def _note_demand(self) -> None:
        """Downstream pulled: remember how much it asked for (what inputs are pulled for)."""
        cout = self._cout
        self.want = max(1, cout.demand_n) if cout.batch else 1

    def on_pull(self) -> None:
        self._note_demand()
        self._serve()

    def on_push_i(self, i: int) -> None:
        x = self.grab(self.ins[i])
        if type(x) is _Batch:
            if not x:
                self._empty(i)
                return
        else:
            x = (x,)
        self.bufs[i] = x
        self.offs[i] = 0
        self._pushed(i)

    def _accept_i(self, i: int, batch: list[Any]) -> None:
        """Take a non-empty batch on input ``i`` synchronously (an async boundary's output
        upstream; see ``reactive/_stage/batch.py``): push -> ``on_push_i`` -> grab."""
        self.bufs[i] = batch
        self.offs[i] = 0
        self._pushed(i)

    def _empty(self, i: int) -> None:
        """Input ``i`` handed over an empty batch: ask it again."""
        self._pull_in(i)

    def _pushed(self, i: int) -> None:
        """Input ``i``'s buffer was filled: serve downstream if it has demand."""
        if self.is_available(self.out):
            self._serve()

    def _push_chunk(self, i: int, n: int) -> bool:
        """Push the next (at most ``n``) elements of input ``i``'s buffer as one push;
        True when that emptied the buffer."""
        buf = self.bufs[i]
        start = self.offs[i]
        if len(buf) - start <= n:
            self.bufs[i] = None
            chunk = buf if start == 0 else buf[start:]
            drained = True
        else:
            chunk = buf[start : start + n]
            self.offs[i] = start + n
            drained = False
        if len(chunk) == 1:
            self.push(self.out, chunk[0])
        else:
            self.push(self.out, chunk if type(chunk) is _Batch else _Batch(chunk))
        return drained

    @abc.abstractmethod
    def _serve(self) -> None:
        """Downstream has demand (or may have): push what the buffers allow."""

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)


def eager_finish(logic: GraphStageLogic, ins: Sequence[Inlet[Any]], ready: Any) -> Any:
    """An input of an ``eager_complete`` merge completed: as Pekko's ``Merge`` (and
    ``MergePrioritized``), cancel every input, which discards an element waiting on
    another input, but keep the element the completed input had already delivered: it
    is emitted before the stage completes. Returns ``ready`` (a deque or a list of
    indices into ``ins``) without the inputs whose element was discarded. Shared by
    ``Merge`` and the merges below."""
    for p in logic.shape.inlets:
        logic.cancel(p)  # a no-op on the completed input, whose element stays available
    return type(ready)(j for j in ready if logic.is_available(ins[j]))
