"""Partial functions and early-stopping folds: ``collect_first``, ``collect_while`` and
``fold_while`` (Pekko's ``collectFirst``, ``collectWhile``, ``foldWhile``).

Akka's partial function is a function returning None where it is not defined (the
library's convention for "no element": ``stateful_map``, ``map_async``), so None is
never an element here either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .simple import FlowLogic, FlowStage

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape

__all__ = ["CollectFirst", "CollectWhile", "FoldWhile"]


class CollectFirst(FlowStage):
    """``collect_first(f)``: the first ``f(x)`` that is not None, then complete.

    Emits when ``f`` returned a value that is not None for the first time. Backpressures
    when downstream does. Completes when that value went out (upstream is cancelled) or
    upstream completes. Fails when upstream fails or ``f`` raises. Cancels when
    downstream cancels or the value went out. Supervision: resume/restart drop the
    element.
    """

    name = "collect_first"

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _CollectFirstLogic(self.shape, self.f)


class _CollectFirstLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, f: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.f = f

    def on_push(self) -> None:
        y = self.f(self.grab(self.in_))
        if y is None:
            self.pull(self.in_)
        else:
            self.push(self.out, y)
            self.complete_stage()


class CollectWhile(FlowStage):
    """``collect_while(f)``: ``f(x)`` while it is not None; complete at the first element
    it returns None for.

    Emits when ``f`` returned a value that is not None. Backpressures when downstream
    does. Completes when ``f`` returns None (upstream is cancelled) or upstream
    completes. Fails when upstream fails or ``f`` raises. Cancels when downstream
    cancels or ``f`` returned None. Supervision: resume/restart drop the element.
    """

    name = "collect_while"

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _CollectWhileLogic(self.shape, self.f)


class _CollectWhileLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, f: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.f = f

    def on_push(self) -> None:
        y = self.f(self.grab(self.in_))
        if y is None:
            self.complete_stage()
        else:
            self.push(self.out, y)


class FoldWhile(FlowStage):
    """``fold_while(zero, pred, f)``: ``fold`` that stops as soon as ``pred(acc)`` is
    false, emitting the accumulation reached.

    ``pred`` is tested only on what ``f`` returned, never on ``zero`` (Pekko's ``Fold``
    tests it in ``onPush`` after ``f``): a ``pred`` false from the start emits
    ``f(zero, first)``, and an empty stream emits ``zero`` whatever ``pred`` says.

    Emits when ``pred`` turned false for the accumulation, or upstream completed (the
    final accumulation, ``zero`` for an empty stream), and downstream pulls.
    Backpressures when downstream does: upstream is pulled only once downstream pulled
    (Pekko's ``Fold``). Completes when the accumulation went out. Fails when
    upstream fails or ``f``/``pred`` raises. Cancels when downstream cancels or ``pred``
    turned false. Supervision: resume drops the element when ``f`` raises and keeps the
    accumulation ``f`` returned when ``pred`` raises (Pekko's ``Fold`` stores it before
    testing it); restart also resets the accumulation to ``zero``.
    """

    name = "fold_while"

    def __init__(
        self, zero: Any, pred: Callable[[Any], bool], f: Callable[[Any, Any], Any]
    ) -> None:
        super().__init__()
        self.zero = zero
        self.pred = pred
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _FoldWhileLogic(self.shape, self)


class _FoldWhileLogic(FlowLogic):
    # Pekko's Fold: upstream is pulled on demand (FlowLogic.on_pull), never before. Once
    # pulled, ``out`` stays available while folding (nothing is pushed before the end),
    # so every element pulls the next one (and the default resume pulls after a failure).
    _supervised = True

    def __init__(self, shape: FlowShape, stage: FoldWhile) -> None:
        super().__init__(shape)
        self.stage = stage
        self.acc = stage.zero

    def restart_state(self) -> None:
        self.acc = self.stage.zero

    def _finish(self) -> None:
        self.cancel(self.in_)
        self.emit(self.out, self.acc, self.complete_stage)

    def on_push(self) -> None:
        # ``pred`` runs only on what ``f`` returned, never on ``zero`` (Pekko's Fold);
        # stored before ``pred`` runs: a resume after ``pred`` raised keeps it (Pekko).
        self.acc = self.stage.f(self.acc, self.grab(self.in_))
        if self.stage.pred(self.acc):
            self.pull(self.in_)
        else:
            self._finish()

    def on_upstream_finish(self) -> None:
        self.emit(self.out, self.acc, self.complete_stage)
