"""``MergeLatest``: the list of every input's latest element, on each new element."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..._checks import check, pos_int
from ..._stage.logic import GraphStage, GraphStageLogic, OutHandler
from ..._stage.shapes import UniformFanInShape
from ._base import _PortIn

__all__ = ["MergeLatest"]

_NONE: Any = object()


class MergeLatest(GraphStage[UniformFanInShape]):
    """``MergeLatest(n, eager_complete=False)``: once every input emitted at least once,
    each element arriving on any input emits a list of the latest element of every input
    (in input order), as Akka's ``MergeLatest``.

    Before every input has emitted, arriving elements only update the latest values
    (their inputs are pulled again at once). After that, each arrival is one list, taken
    when it arrives; an input whose list waits for downstream is not pulled again until
    the list went out, so at most ``n`` lists wait here (Akka emits without bound).
    An input completing before it emitted anything completes the stage: no list can be
    emitted any more.

    Emits when an input delivered an element, every input delivered at least once, and
    downstream pulls. Backpressures when downstream backpressures (an input whose list
    waits is not pulled). Completes when all inputs completed and the waiting lists went
    out; with ``eager_complete``, when any input completes (the others are cancelled,
    the lists already taken go out first); at once when an input completes without
    having emitted. Fails when any input fails. Cancels when downstream cancels.
    """

    name = "merge_latest"

    def __init__(self, n: int = 2, eager_complete: bool = False) -> None:
        check("MergeLatest(n, eager_complete)", pos_int(n))
        self.n = n
        self.eager_complete = eager_complete
        self.shape = UniformFanInShape.of(n, type(self).__name__)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MergeLatestLogic(self.shape, self.eager_complete)


class _MergeLatestLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: UniformFanInShape, eager: bool) -> None:
        super().__init__(shape)
        self.ins = shape.inlets
        self.out = shape.out
        self.eager = eager
        self.latest: list[Any] = [_NONE] * len(self.ins)
        self.missing = len(self.ins)  # inputs that have not emitted yet
        self.waiting: deque[tuple[int, list[Any]]] = deque()  # (input, its list)
        self.running = len(self.ins)
        for i, p in enumerate(self.ins):
            self.set_handler(p, _PortIn(self, i))
        self.set_handler(self.out, self)

    def pre_start(self) -> None:
        for p in self.ins:
            self.pull(p)

    def on_push_i(self, i: int) -> None:
        p = self.ins[i]
        if self.latest[i] is _NONE:
            self.missing -= 1
        self.latest[i] = self.grab(p)
        if self.missing:
            self.pull(p)  # only the latest value counts until every input emitted
            return
        snapshot = list(self.latest)
        if self.is_available(self.out) and not self.waiting:
            self.push(self.out, snapshot)
            self.pull(p)
        else:
            self.waiting.append((i, snapshot))

    def on_pull(self) -> None:
        if self.waiting:
            i, snapshot = self.waiting.popleft()
            self.push(self.out, snapshot)
            self.try_pull(self.ins[i])
        self._maybe_complete()

    def _maybe_complete(self) -> None:
        if self.running == 0 and not self.waiting:
            self.complete_stage()

    def on_finish_i(self, i: int) -> None:
        if self.latest[i] is _NONE or self.eager:
            for p in self.ins:
                self.cancel(p)
            self.running = 0
        else:
            self.running -= 1
        self._maybe_complete()

    def on_failure_i(self, i: int, exc: BaseException) -> None:
        self.fail_stage(exc)
