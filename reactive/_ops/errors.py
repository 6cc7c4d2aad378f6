"""Error-handling operators: recover, recover_with(_retries), map_error, on_error_complete.

They react to an upstream failure (``on_upstream_failure``). Errors travel out of band,
so they may overtake elements still buffered upstream; those cannot be recovered.

``recover_with_retries`` runs the replacement source as a separate stream
(``materializer.materialize``) into a private sink stage, ``_SubSink``. The two logics
talk only through async callbacks over a ``_Channel``: the outer logic sends ``pull``
and ``cancel``; the sub-sink sends back ``push``, ``complete`` and ``fail``. Every message
carries its channel, so a message of a source that was already replaced is ignored.
"""

from __future__ import annotations

import abc
import logging
from typing import TYPE_CHECKING, Any

from .._checks import describe
from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler
from .._stage.shapes import FlowShape, Inlet, SinkShape
from .._supervision import Supervision
from .simple import FlowLogic, FlowStage
from .substreams import materialize_nested

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Recover", "RecoverWithRetries", "RecoverWith", "MapError", "OnErrorComplete"]

log = logging.getLogger("reactive")


# -- recover and map_error ----------------------------------------------------------------
class _OnFailureStage(FlowStage):
    """A pass-through flow that reacts to an upstream failure with ``f`` (``logic`` says
    how): ``recover`` and ``map_error``."""

    logic: type[_OnFailureLogic]

    def __init__(self, f: Callable[[BaseException], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return self.logic(self.shape, self.f)


class _OnFailureLogic(FlowLogic, abc.ABC):
    def __init__(self, shape: FlowShape, f: Callable[[BaseException], Any]) -> None:
        super().__init__(shape)
        self.f = f

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))

    def on_upstream_failure(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception):
            self.fail_stage(exc)  # KeyboardInterrupt and the like are never handled
            return
        self.handle(exc)

    @abc.abstractmethod
    def handle(self, exc: Exception) -> None:
        """React to the upstream failure ``exc``."""


class _RecoverLogic(_OnFailureLogic):
    def handle(self, exc: Exception) -> None:
        try:
            x = self.f(exc)
        except Exception as e:
            if e is not exc:
                log.error("[%s] recover function raised %r for %r", self.stage_name, e, exc)
            self.fail_stage(e)
            return
        if x is not None:
            self.emit(self.out, x)
        self.complete_stage()


class _MapErrorLogic(_OnFailureLogic):
    def handle(self, exc: Exception) -> None:
        new: Any
        try:
            new = self.f(exc)
        except Exception as e:
            new = e
        if new is None:
            new = exc
        elif not isinstance(new, BaseException):
            new = TypeError(
                f"[{self.stage_name}] map_error function must return an exception, got {new!r}"
            )
        self.fail_stage(new)


class _OnErrorCompleteLogic(_OnFailureLogic):
    def handle(self, exc: Exception) -> None:
        try:
            matched = self.f(exc)
        except Exception as e:
            log.error("[%s] predicate raised %r for %r", self.stage_name, e, exc)
            self.fail_stage(e)
            return
        if matched:
            self.complete_stage()
        else:
            self.fail_stage(exc)


def error_matcher(
    what: Any,
    signature: str = "on_error_complete(pred_or_exception_class)",
    param: str = "pred_or_exception_class",
) -> Callable[[BaseException], bool]:
    """What ``on_error_complete(what)`` (or ``on_error_continue``: ``signature`` and
    ``param`` name it in the error) matches: every exception (None), instances of an
    exception class (or a tuple of them), or the exceptions a predicate holds for."""
    if what is None:
        return lambda exc: True
    if isinstance(what, type) and issubclass(what, BaseException):
        return lambda exc: isinstance(exc, what)
    if (
        isinstance(what, tuple)
        and what
        and all(isinstance(t, type) and issubclass(t, BaseException) for t in what)
    ):
        return lambda exc: isinstance(exc, what)
    if callable(what):
        return lambda exc: bool(what(exc))
    raise TypeError(
        f"{signature}: {param} must be None, "
        f"an exception class, a tuple of them, or a predicate, got {describe(what)}"
    )


class OnErrorComplete(_OnFailureStage):
    """``on_error_complete(pred_or_exception_class)``: a matched upstream failure
    becomes completion; an unmatched one fails the stream as before.

    ``f`` is the matcher (see :func:`error_matcher`); a matcher that raises fails the
    stream with what it raised (logged at ERROR).

    Emits when upstream emits. Backpressures when downstream does. Completes when
    upstream completes, or fails with a matched exception. Fails when upstream fails
    with an unmatched exception. Cancels when downstream cancels.
    """

    name = "on_error_complete"
    logic = _OnErrorCompleteLogic


class Recover(_OnFailureStage):
    """``recover(f)``: on an upstream failure emit ``f(exc)`` as the last element, then
    complete.

    ``f`` re-raises (or raises another exception) to leave the failure unrecovered; the
    stream then fails with what ``f`` raised. ``f`` returning ``None`` completes the
    stream without a last element.

    Emits when upstream emits, or after an upstream failure that ``f`` recovered.
    Backpressures when downstream does (not after the failure). Completes when upstream
    completes, or after the recovered element. Fails when ``f`` raises. Cancels when
    downstream cancels.
    """

    name = "recover"
    logic = _RecoverLogic


class MapError(_OnFailureStage):
    """``map_error(f)``: fail with ``f(exc)`` instead of the upstream failure ``exc``.

    ``f`` returning ``None`` keeps the original exception; ``f`` raising fails the stream
    with what it raised. Nothing is logged.

    Emits when upstream emits. Backpressures when downstream does. Completes when
    upstream completes. Fails when upstream fails (with the translated exception).
    Cancels when downstream cancels.
    """

    name = "map_error"
    logic = _MapErrorLogic


# -- recover_with_retries ----------------------------------------------------------------------
class _Channel:
    """The link between a recovering logic and the sub-sink running its replacement."""

    __slots__ = ("outer", "inner", "pending", "closed")

    def __init__(self, outer: Any) -> None:
        self.outer = outer  # AsyncCallback of the outer logic: (channel, kind, value)
        self.inner: Any = None  # AsyncCallback of the sub-sink, once started
        self.pending: list[tuple[str, Any]] = []
        self.closed = False

    def send(self, cmd: str, arg: Any = None) -> None:
        """Send ``pull`` or ``cancel`` to the sub-sink (queued until it started)."""
        if self.inner is None:
            self.pending.append((cmd, arg))
        else:
            self.inner.invoke((cmd, arg))


class _SubSink(GraphStage[SinkShape[Any]]):
    """A sink feeding another logic through a ``_Channel`` (one element per ``pull``)."""

    name = "recover_with_retries_sink"

    def __init__(self, channel: _Channel) -> None:
        self.shape = SinkShape(Inlet("RecoverWithRetriesSink.in"))
        self.channel = channel

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _SubSinkLogic(self.shape, self.channel)


class _SubSinkLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], channel: _Channel) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.channel = channel
        self.set_handler(self.in_, self)

    def pre_start(self) -> None:
        ch = self.channel
        ch.inner = self.get_async_callback(self._on_cmd)
        pending, ch.pending = ch.pending, []
        for item in pending:
            self._on_cmd(item)

    def _on_cmd(self, item: tuple[str, Any]) -> None:
        cmd, arg = item
        if cmd == "pull":
            self.try_pull(self.in_)
        else:
            self.cancel(self.in_, arg)

    def on_push(self) -> None:
        self.channel.outer.invoke((self.channel, "push", self.grab(self.in_)))

    def on_upstream_finish(self) -> None:
        self.channel.outer.invoke((self.channel, "complete", None))
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.channel.outer.invoke((self.channel, "fail", exc))
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self.channel.outer.invoke((self.channel, "fail", exc))


class RecoverWithRetries(FlowStage):
    """``recover_with_retries(attempts, f)``: on an upstream failure, continue with the
    source ``f(exc)`` returns, at most ``attempts`` times (negative: unlimited; 0: never).

    ``f`` re-raises (or raises another exception) to leave a failure unrecovered; the
    stream then fails with what ``f`` raised. A failure of a replacement source is
    handled the same way, counting against ``attempts``.

    Emits when upstream (or the current replacement source) emits. Backpressures when
    downstream does. Completes when upstream or the replacement source completes. Fails
    when a failure is not recovered (attempts exhausted or ``f`` raised). Cancels when
    downstream cancels (the replacement source is cancelled too). Supervision: applies to
    an exception ``f`` raises other than the failure itself (re-raising the failure
    always leaves it unrecovered): stop fails with it; resume and restart drop the
    failure, and the stream completes (there is no source left to continue with).
    """

    name = "recover_with_retries"

    def __init__(self, attempts: int, f: Callable[[BaseException], Any]) -> None:
        super().__init__()
        self.attempts = attempts
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _RecoverWithRetriesLogic(self.shape, self.attempts, self.f)


class RecoverWith(RecoverWithRetries):
    """``recover_with(f)``: ``recover_with_retries(-1, f)``, Akka's ``recoverWith``: on
    every upstream failure (of a replacement too), continue with the source ``f(exc)``.

    Emits when upstream (or the current replacement source) emits. Backpressures when
    downstream does. Completes when upstream or the replacement source completes. Fails
    when ``f`` raises (re-raising leaves the failure unrecovered). Cancels when
    downstream cancels (the replacement source too). Supervision: as
    ``RecoverWithRetries``.
    """

    name = "recover_with"

    def __init__(self, f: Callable[[BaseException], Any]) -> None:
        super().__init__(-1, f)


class _SwitchedOut(OutHandler):
    """Outlet handler once upstream was replaced: demand goes to the sub-sink."""

    def __init__(self, logic: _RecoverWithRetriesLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        ch = self.logic.channel
        if ch is not None:
            ch.send("pull")

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.logic._close_channel(cause)
        self.logic.cancel_stage(cause)


class _RecoverWithRetriesLogic(FlowLogic):
    def __init__(self, shape: FlowShape, attempts: int, f: Callable[[BaseException], Any]) -> None:
        super().__init__(shape)
        self.attempts = attempts
        self.f = f
        self.attempt = 0
        self.channel: _Channel | None = None
        self.callback: Any = None

    def pre_start(self) -> None:
        self.callback = self.get_async_callback(self._on_event)

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._on_failure(exc)

    def _on_failure(self, exc: BaseException) -> None:
        if not isinstance(exc, Exception) or not (
            self.attempts < 0 or self.attempt < self.attempts
        ):
            self.fail_stage(exc)
            return
        try:
            source = self.f(exc)
        except Exception as e:
            if e is not exc and self._decided(e) is not Supervision.stop:
                self.complete_stage()  # the failure was dropped; nothing to continue with
            else:
                self.fail_stage(e)
            return
        self.attempt += 1
        self._switch_to(source)

    def _switch_to(self, source: Any) -> None:
        from .._dsl.blueprints import Sink, Source

        if not isinstance(source, Source):
            self.fail_stage(
                TypeError(
                    f"[{self.stage_name}] the recovery function must return a Source, "
                    f"got {source!r}"
                )
            )
            return
        ch = _Channel(self.callback)
        self.channel = ch
        self.set_handler(self.out, _SwitchedOut(self))
        if self.is_available(self.out):
            ch.send("pull")
        materialize_nested(self, source.to(Sink.from_graph(_SubSink(ch))).module, fused=False)

    def _close_channel(self, cause: BaseException | None) -> None:
        ch = self.channel
        if ch is not None and not ch.closed:
            ch.closed = True
            ch.send("cancel", cause)
        self.channel = None

    def _on_event(self, item: tuple[_Channel, str, Any]) -> None:
        ch, kind, value = item
        if ch is not self.channel or ch.closed:
            return  # a replaced or cancelled source
        if kind == "push":
            self.push(self.out, value)
        elif kind == "complete":
            ch.closed = True
            self.channel = None
            self.complete_stage()
        else:
            ch.closed = True
            self.channel = None
            self._on_failure(value)

    def post_stop(self) -> None:
        self._close_channel(None)
