"""Side effects on a pass-through stream: Pekko's ``doOnFirst``, ``doOnCancel`` and the
decider behind ``onErrorContinue``."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from .._errors import SubscriptionWithCancelError
from .._supervision import Supervision
from .simple import FlowLogic, FlowStage

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape

__all__ = ["DoOnCancel", "DoOnFirst", "continuing_decider"]

log = logging.getLogger("reactive")


class DoOnFirst(FlowStage):
    """``do_on_first(f)``: ``f(x)`` for the first element, which then goes on; every
    later element passes untouched.

    Emits when upstream emits (the first element after ``f`` returned). Backpressures
    when downstream does. Completes when upstream completes. Fails when upstream fails or
    ``f`` raises. Cancels when downstream cancels. Supervision (as Pekko's): resume drops
    the element ``f`` raised on and does not call ``f`` again (later elements pass);
    restart drops it and treats the next element as the first (``f`` is called for it).
    """

    name = "do_on_first"

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DoOnFirstLogic(self.shape, self.f)


class _DoOnFirstLogic(FlowLogic):
    # ``f``'s failure is decided here: resume and restart differ in whether ``f`` is
    # called again (Pekko's DoOnFirst).
    _supervised = False

    def __init__(self, shape: FlowShape, f: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.f = f
        self.first = True

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.first:
            try:
                self.f(x)
            except Exception as exc:
                directive = self._decided(exc)
                if directive is Supervision.stop:
                    self.fail_stage(exc)
                    return
                # Pekko: resume consumes the one-shot (f is not retried); restart keeps
                # it armed for the next element. Either way the element is dropped.
                if directive is Supervision.resume:
                    self.first = False
                self.pull(self.in_)
                return
            self.first = False
        self.push(self.out, x)


class DoOnCancel(FlowStage):
    """``do_on_cancel(f)``: ``f(cause, was_cancelled_normally)`` when downstream cancels,
    then upstream is cancelled with the same cause.

    ``was_cancelled_normally`` is true for a cancellation that is no failure (a
    ``SubscriptionWithCancelError`` cause: downstream needs no more elements, or
    completed). An exception ``f`` raises cancels upstream with that exception instead
    (its ``__context__`` is the cause).

    Emits when upstream emits. Backpressures when downstream does. Completes when
    upstream completes. Fails when upstream fails. Cancels when downstream cancels.
    """

    name = "do_on_cancel"

    def __init__(self, f: Callable[[BaseException, bool], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DoOnCancelLogic(self.shape, self.f)


class _DoOnCancelLogic(FlowLogic):
    def __init__(self, shape: FlowShape, f: Callable[[BaseException, bool], Any]) -> None:
        super().__init__(shape)
        self.f = f

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))

    def on_downstream_finish(self, cause: BaseException) -> None:
        try:
            self.f(cause, isinstance(cause, SubscriptionWithCancelError))
        except Exception as exc:
            log.error("[%s] f raised on cancellation: %r", self._stage_name, exc)
            self.cancel_stage(exc)
            return
        self.cancel_stage(cause)


def continuing_decider(
    matches: Callable[[BaseException], bool],
    error_consumer: Callable[[BaseException], Any] | None,
) -> Callable[[BaseException], Supervision]:
    """The supervision decider of ``on_error_continue``: resume on an exception
    ``matches`` holds for (after ``error_consumer(exc)``; without one the dropped failure
    is logged at WARNING), stop on any other."""

    def decide(exc: BaseException) -> Supervision:
        if not matches(exc):
            return Supervision.stop
        if error_consumer is not None:
            error_consumer(exc)
        else:
            log.warning("on_error_continue: an element was dropped after %r", exc)
        return Supervision.resume

    return decide
