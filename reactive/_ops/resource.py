"""Resource-safe stages: ``Source.unfold_resource``, ``Source.unfold_resource_async`` and
the ``map_with_resource`` flow.

The source every IO connector needs: it opens a resource when the stream starts, reads
one element per demand, and closes the resource exactly once whatever ends the stream
(the end of the data, a failure, a cancellation, a supervision restart, an abrupt
materializer shutdown).

The synchronous variant calls ``read`` on the event loop: a read that blocks blocks the
loop. Give blocking reads to ``unfold_resource_async`` (e.g. with ``asyncio.to_thread``).
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

from .._supervision import Supervision
from .asyncsupport import call_cancelled
from .simple import FlowLogic, FlowStage
from .sources import SourceLogic, SourceStage, require_callable

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape, SourceShape

__all__ = ["UnfoldResourceSource", "UnfoldResourceAsyncSource", "MapWithResource"]

log = logging.getLogger("reactive")

_NONE: Any = object()


def _close_failed(stage: str, exc: BaseException, why: str) -> None:
    """A ``close`` that raised when no one can receive the failure any more: log it."""
    log.error("[%s] close(resource) raised %s: %r", stage, why, exc, exc_info=exc)


# -- unfold_resource --------------------------------------------------------------------------
class UnfoldResourceSource(SourceStage):
    """``Source.unfold_resource(create, read, close)``; see ``Source.unfold_resource``."""

    name = "unfold_resource_source"

    def __init__(
        self,
        create: Callable[[], Any],
        read: Callable[[Any], Any],
        close: Callable[[Any], Any],
    ) -> None:
        for arg, f in (("create", create), ("read", read), ("close", close)):
            require_callable("Source.unfold_resource(create, read, close)", arg, f)
        super().__init__()
        self.create = create
        self.read = read
        self.close = close

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _UnfoldResourceLogic(self.shape, self)


class _UnfoldResourceLogic(SourceLogic):
    def __init__(self, shape: SourceShape[Any], stage: UnfoldResourceSource) -> None:
        super().__init__(shape)
        self.stage = stage
        self.resource: Any = _NONE  # _NONE: no open resource (never, or already closed)

    def pre_start(self) -> None:
        self.resource = self.stage.create()

    def _close(self) -> BaseException | None:
        """Close the open resource (once: it is forgotten first); return what close raised."""
        r = self.resource
        if r is _NONE:
            return None
        self.resource = _NONE
        try:
            self.stage.close(r)
        except Exception as exc:
            return exc
        return None

    def on_pull(self) -> None:
        read = self.stage.read
        while True:  # again after a supervised read failure (resume/restart)
            try:
                x = read(self.resource)
            except Exception as exc:
                directive = self._decided(exc)
                if directive is Supervision.resume:
                    continue
                if directive is Supervision.restart:
                    err = self._close()
                    if err is not None:
                        self.fail_stage(err)
                        return
                    self.resource = self.stage.create()
                    continue
                err = self._close()
                if err is not None:
                    _close_failed(self.stage_name, err, f"after read failed with {exc!r}")
                self.fail_stage(exc)
                return
            if x is None:
                err = self._close()
                if err is not None:
                    self.fail_stage(err)
                else:
                    self.complete_stage()
            else:
                self.push(self.out, x)
            return

    def on_downstream_finish(self, cause: BaseException) -> None:
        err = self._close()
        if err is not None:
            # Downstream is gone: the failure has no one to reach; it is logged.
            _close_failed(self.stage_name, err, "after downstream cancelled")
        self.cancel_stage(cause)

    def post_stop(self) -> None:
        # Abrupt termination (or a failure escaping a handler): still close once.
        err = self._close()
        if err is not None:
            _close_failed(self.stage_name, err, "when the stage stopped")


# -- unfold_resource_async --------------------------------------------------------------------
async def _call(operator: str, arg: str, f: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
    """Run one user call; its outcome as ``(True, result)`` or ``(False, exception)`` (a
    handled failure must not end the task with an exception: the materializer would log
    it as a crashed stream task)."""
    try:
        aw = f(*args)
        if not inspect.isawaitable(aw):
            raise TypeError(
                f"{operator}: {arg} must return an awaitable (use an async def), "
                f"got {type(aw).__name__} {aw!r}"
            )
        return True, await aw
    except Exception as exc:
        return False, exc


class UnfoldResourceAsyncSource(SourceStage):
    """``Source.unfold_resource_async(create, read, close)``; see
    ``Source.unfold_resource_async``."""

    name = "unfold_resource_async_source"

    def __init__(
        self,
        create: Callable[[], Awaitable[Any]],
        read: Callable[[Any], Awaitable[Any]],
        close: Callable[[Any], Awaitable[Any]],
    ) -> None:
        for arg, f in (("create", create), ("read", read), ("close", close)):
            require_callable("Source.unfold_resource_async(create, read, close)", arg, f)
        super().__init__()
        self.create = create
        self.read = read
        self.close = close

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _UnfoldResourceAsyncLogic(self.shape, self)


class _UnfoldResourceAsyncLogic(SourceLogic):
    """One user call (create, read or close) runs at a time, as a task of the
    materializer; its outcome comes back through an async callback.

    Endings: the stage keeps going while it closes the resource and only then completes
    or fails, so the stream's end is signalled after ``close`` finished. A pending
    ``create`` is never cancelled (the resource it opens is closed once it finishes); a
    pending ``read`` is cancelled when downstream cancels, then the resource is closed.
    """

    OP = "Source.unfold_resource_async"

    def __init__(self, shape: SourceShape[Any], stage: UnfoldResourceAsyncSource) -> None:
        super().__init__(shape)
        self.stage = stage
        self.resource: Any = _NONE
        self.task: asyncio.Task[Any] | None = None  # the call in flight
        self.kind = ""  # "create" | "read" | "close"
        self.stopping = False  # cancelled, or about to fail/complete after closing
        self.ending: BaseException | None = None  # the failure to signal after closing
        self.cancelled = False  # downstream cancelled
        self.restarting = False  # closing for a supervision restart
        self.done_cb = self.get_async_callback(self._on_done)

    # -- running the user's calls ---------------------------------------------------------
    def _start(self, kind: str, f: Callable[..., Any], *args: Any) -> None:
        self.kind = kind
        # A create or close is never cancelled, not even by the materializer's shutdown
        # (which waits for it): what a create opens is closed once it returns.
        task = self.materializer.spawn(
            _call(self.OP, kind, f, *args), cancel_on_shutdown=kind == "read"
        )
        self.task = task
        task.add_done_callback(self.done_cb.invoke)

    def pre_start(self) -> None:
        # Closing (or cancellation while a call is pending) needs the stage alive after
        # its outlet closed; it completes or fails itself at the very end.
        self.set_keep_going(True)
        self._start("create", self.stage.create)

    def on_pull(self) -> None:
        if self.task is None and self.resource is not _NONE and not self.stopping:
            self._start("read", self.stage.read, self.resource)
        # else: a create/restart is in flight; its end reads if demand is still there.

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.cancelled = True
        self.stopping = True
        if self.task is None:
            self._close_then_end()
        elif self.kind == "read":
            self.task.cancel()  # then closed when the cancelled read has ended
        # a pending create: closed when it finishes; a pending close: ends when done

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        if task is not self.task:
            return
        self.task = None
        kind = self.kind
        exc: BaseException | None = None
        x: Any = None
        if task.cancelled():
            exc = call_cancelled(self._stage_name, what=f"{self.OP}'s {kind}")
        else:
            exc = task.exception()  # only a BaseException escapes _call
            if exc is None:
                ok, x = task.result()
                if not ok:
                    exc = x
        if kind == "close":
            self._after_close(exc)
        elif kind == "create":
            if exc is not None:
                if self.cancelled:
                    log.error("[%s] create() failed after cancellation: %r", self.stage_name, exc)
                    self.complete_stage()
                else:
                    self.fail_stage(exc)
                return
            self.resource = x
            if self.stopping:
                self._close_then_end()
            elif self.is_available(self.out):
                self.on_pull()
        elif self.stopping:  # a read cancelled by (or finishing after) a cancellation
            self._close_then_end()
        elif exc is not None:
            self._on_read_failure(exc)
        elif x is None:
            self.stopping = True
            self._close_then_end()
        else:
            self.push(self.out, x)

    def _on_read_failure(self, exc: BaseException) -> None:
        directive = self._decided(exc) if isinstance(exc, Exception) else Supervision.stop
        if directive is Supervision.resume:
            self.on_pull()
        elif directive is Supervision.restart:
            self.restarting = True
            self._close_then_end()
        else:
            self.stopping = True
            self.ending = exc
            self._close_then_end()

    def _close_then_end(self) -> None:
        """Close the open resource (if any); then end, or re-create it (restart)."""
        r = self.resource
        if r is _NONE:
            self._after_close(None)
            return
        self.resource = _NONE
        self._start("close", self.stage.close, r)

    def _after_close(self, err: BaseException | None) -> None:
        restarting, self.restarting = self.restarting, False
        if self.cancelled:
            if err is not None:
                _close_failed(self.stage_name, err, "after downstream cancelled")
            self.complete_stage()
        elif self.ending is not None:
            if err is not None:
                _close_failed(self.stage_name, err, f"after the stream failed with {self.ending!r}")
            self.fail_stage(self.ending)
        elif err is not None:
            self.fail_stage(err)
        elif restarting:
            self._start("create", self.stage.create)
        else:
            self.complete_stage()

    def post_stop(self) -> None:
        # Abrupt termination (an abort, the materializer's shutdown): close what is open
        # once the call in flight has ended (a read is cancelled first: one user call at a
        # time), and what a create still pending opens once it returns. A close already
        # running goes on (the materializer's shutdown waits for it).
        task = self.task
        self.task = None
        if task is not None and task.done():
            task = None
        if task is not None and self.kind == "create":
            task.add_done_callback(self._close_orphan)
        r = self.resource
        if r is _NONE:
            return
        self.resource = _NONE
        if task is not None and self.kind == "read":
            task.cancel()
            task.add_done_callback(lambda _: self._spawn_orphan_close(r))
        else:
            self._spawn_orphan_close(r)

    def _close_orphan(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is None:
            ok, r = task.result()
            if ok:
                self._spawn_orphan_close(r)

    def _spawn_orphan_close(self, r: Any) -> None:
        async def close() -> None:
            ok, err = await _call(self.OP, "close", self.stage.close, r)
            if not ok:
                _close_failed(self.stage_name, err, "when the stream was aborted")

        self.materializer.spawn(close(), cancel_on_shutdown=False)


# -- map_with_resource ------------------------------------------------------------------------
class MapWithResource(FlowStage):
    """``map_with_resource(create, f, close)``: ``f(resource, x)`` for each element, with a
    resource ``create()`` opened when the stream starts; ``close(resource)`` runs exactly
    once per resource whatever ends the stream. As Akka's ``mapWithResource`` (a
    ``statefulMap`` with ``close`` as its ``onComplete``), the value of ``close``, if not
    None, is emitted when upstream completes or fails, when ``f`` fails the stage, and
    before a supervision restart opens the next resource; it is dropped when downstream
    cancels or the stream is aborted.

    ``f`` returning None emits nothing (as ``stateful_map``). ``f`` runs on the event
    loop: a call that blocks blocks the loop (Akka runs it on the blocking-IO dispatcher).

    Emits when ``f`` returned a value that is not None and downstream pulls, or for the
    value of ``close`` (upstream completion or failure, ``f`` failing, a restart).
    Backpressures when downstream does. Completes when upstream completes (after the
    value of ``close``). Fails when upstream fails, ``f`` raises (supervision stop) or
    ``close`` raises (unless the stream already failed: then it is logged), after the
    value of ``close``. Cancels when downstream cancels (the resource is closed, the
    value of ``close`` dropped). Supervision: resume drops the element and keeps the
    resource; restart drops it, closes the resource, emits the value of ``close`` (on the
    demand the failed element was pulled for) and creates a new one.
    """

    name = "map_with_resource"

    def __init__(
        self,
        create: Callable[[], Any],
        f: Callable[[Any, Any], Any],
        close: Callable[[Any], Any],
    ) -> None:
        for arg, g in (("create", create), ("f", f), ("close", close)):
            require_callable("map_with_resource(create, f, close)", arg, g)
        super().__init__()
        self.create = create
        self.f = f
        self.close = close

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MapWithResourceLogic(self.shape, self)


class _MapWithResourceLogic(FlowLogic):
    # ``f``'s failures are supervised here (as ``stateful_map``'s): a stop emits the value
    # of ``close`` before failing, a restart emits it before the new resource. What
    # escapes a handler (a ``create`` raising on restart) fails the stage unsupervised,
    # as in Akka.
    _supervised = False

    def __init__(self, shape: FlowShape, stage: MapWithResource) -> None:
        super().__init__(shape)
        self.stage = stage
        self.resource: Any = _NONE  # _NONE: no open resource (never, or already closed)

    def pre_start(self) -> None:
        self.resource = self.stage.create()

    def _close(self) -> tuple[Any, BaseException | None]:
        """Close the open resource (once: it is forgotten first); return what close
        returned and what it raised."""
        r = self.resource
        if r is _NONE:
            return None, None
        self.resource = _NONE
        try:
            return self.stage.close(r), None
        except Exception as exc:
            return None, exc

    def on_push(self) -> None:
        x = self.grab(self.in_)
        try:
            y = self.stage.f(self.resource, x)
        except Exception as exc:
            directive = self._decided(exc)
            if directive is Supervision.stop:
                self._close_and_fail(exc)
            elif directive is Supervision.restart:
                self._restart()
            else:
                self.pull(self.in_)
            return
        if y is None:
            self.pull(self.in_)
        else:
            self.push(self.out, y)

    def _restart(self) -> None:
        """Akka's ``StatefulMap.resetStateAndPull``: close, push the value of ``close``
        (else pull), then create the next resource."""
        last, err = self._close()
        if err is not None:
            self.fail_stage(err)  # a close that fails on restart fails the stream
            return
        if last is not None:
            self.push(self.out, last)
        else:
            self.pull(self.in_)
        self.resource = self.stage.create()

    def _close_and_fail(self, exc: BaseException) -> None:
        last, err = self._close()
        if err is not None:
            _close_failed(self.stage_name, err, f"after the stream failed with {exc!r}")
        if last is not None:
            self.emit(self.out, last, lambda: self.fail_stage(exc))
        else:
            self.fail_stage(exc)

    def on_upstream_finish(self) -> None:
        last, err = self._close()
        if err is not None:
            self.fail_stage(err)
        elif last is not None:
            self.emit(self.out, last, self.complete_stage)
        else:
            self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._close_and_fail(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        _, err = self._close()
        if err is not None:
            # Downstream is gone: the failure has no one to reach; it is logged.
            _close_failed(self.stage_name, err, "after downstream cancelled")
        self.cancel_stage(cause)

    def post_stop(self) -> None:
        # Abrupt termination, a failure escaping a handler: still close once.
        _, err = self._close()
        if err is not None:
            _close_failed(self.stage_name, err, "when the stage stopped")
