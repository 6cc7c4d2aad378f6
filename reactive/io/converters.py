"""Bridges between streams and anyio's streams (Akka's ``StreamConverters``, for anyio):
a source receiving from any anyio receive stream (``MemoryObjectReceiveStream``, a
``ByteReceiveStream`` such as a socket or a process's stdout, ...) and a sink sending
into any anyio send stream, so streams plug into anyio, Starlette or FastAPI code.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from .._dsl.blueprints import Sink, Source
from .._impl.unobserved import ResultPromise
from .._keep import Done, DoneType, NotUsed, NotUsedType
from ..stage import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SinkShape,
    SourceShape,
)
from .errors import IOStreamError
from .files import _anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["StreamConverters"]

_CLOSING: set[asyncio.Task[Any]] = set()


async def _outcome(make: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
    try:
        return True, await make()
    except Exception as e:
        return False, e


def _aclose_later(stream: Any) -> None:
    async def close() -> None:
        try:
            await stream.aclose()
        except Exception:  # already broken: nothing left to release
            pass

    t = asyncio.get_running_loop().create_task(close())
    _CLOSING.add(t)
    t.add_done_callback(_CLOSING.discard)


class _OneCallLogic(GraphStageLogic):
    """One call on the anyio stream in flight at a time; closes the stream (when asked
    to) once, when the stage stops, after that call ended."""

    OP = "StreamConverters"

    def __init__(self, shape: Any, stream: Any, close: bool) -> None:
        super().__init__(shape)
        self.stream = stream
        self.close = close
        self.task: asyncio.Task[Any] | None = None
        self.then: Callable[[bool, Any], None] = lambda ok, v: None
        self.cb = self.get_async_callback(self._done)

    def _call(self, make: Callable[[], Awaitable[Any]], then: Callable[[bool, Any], None]) -> None:
        self.then = then
        task = self.materializer.spawn(_outcome(make))
        self.task = task
        task.add_done_callback(self.cb.invoke)

    def _done(self, task: asyncio.Task[Any]) -> None:
        if task is not self.task:
            return
        self.task = None
        if not task.cancelled():
            self.then(*task.result())

    def post_stop(self) -> None:
        task = self.task
        if task is not None and not task.done():
            task.cancel()
        if self.close:
            _aclose_later(self.stream)


class ReceiveStreamSource(GraphStageWithMaterializedValue[SourceShape[Any], Any]):
    """``StreamConverters.from_receive_stream``."""

    def __init__(self, stream: Any, close: bool, max_bytes: int) -> None:
        self.shape = SourceShape(Outlet("StreamConverters.from_receive_stream.out"))
        self.stream = stream
        self.close = close
        self.max_bytes = max_bytes

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        return _ReceiveLogic(self), NotUsed


class _ReceiveLogic(_OneCallLogic, OutHandler):
    OP = "StreamConverters.from_receive_stream"

    def __init__(self, stage: ReceiveStreamSource) -> None:
        super().__init__(stage.shape, stage.stream, stage.close)
        self.out: Outlet[Any] = stage.shape.out
        self.set_handler(self.out, self)
        anyio = _anyio()
        self.is_bytes = isinstance(stage.stream, anyio.abc.ByteReceiveStream)
        self.max_bytes = stage.max_bytes

    def on_pull(self) -> None:
        if self.is_bytes:
            self._call(lambda: self.stream.receive(self.max_bytes), self._received)
        else:
            self._call(self.stream.receive, self._received)

    def _received(self, ok: bool, value: Any) -> None:
        if ok:
            self.push(self.out, value)
            return
        anyio = _anyio()
        if isinstance(value, anyio.EndOfStream):
            self.complete_stage()
        else:
            err = IOStreamError(
                f"[{self.OP}] receiving from {self.stream!r} failed: {type(value).__name__}"
                f"{': ' + str(value) if str(value) else ''}"
            )
            err.__cause__ = value
            self.fail_stage(err)


class SendStreamSink(GraphStageWithMaterializedValue[SinkShape[Any], "asyncio.Future[DoneType]"]):
    """``StreamConverters.to_send_stream``."""

    def __init__(self, stream: Any, close: bool) -> None:
        self.shape = SinkShape(Inlet("StreamConverters.to_send_stream.in"))
        self.stream = stream
        self.close = close

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[DoneType]]:
        # Awaiting the result observes a stream failure (reactive._impl.unobserved).
        promise = ResultPromise(loop=asyncio.get_running_loop())
        return _SendLogic(self, promise), promise


class _SendLogic(_OneCallLogic, InHandler):
    OP = "StreamConverters.to_send_stream"

    def __init__(self, stage: SendStreamSink, promise: asyncio.Future[DoneType]) -> None:
        super().__init__(stage.shape, stage.stream, stage.close)
        self.in_: Inlet[Any] = stage.shape.in_
        self.set_handler(self.in_, self)
        self.promise = promise
        self.finishing = False
        self.failing: BaseException | None = None

    def pre_start(self) -> None:
        self.set_keep_going(True)
        self.pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        self._call(lambda: self.stream.send(x), self._sent)

    def _sent(self, ok: bool, value: Any) -> None:
        if not ok:
            err = IOStreamError(
                f"[{self.OP}] sending to {self.stream!r} failed: {type(value).__name__}"
                f"{': ' + str(value) if str(value) else ''} (the receiving side is closed?)"
            )
            err.__cause__ = value
            self._fail(err)
            self.cancel(self.in_, err)
        elif self.failing is not None:
            self._fail(self.failing)
        elif self.finishing:
            self._finish()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.finishing = True
        if self.task is None:
            self._finish()

    def _finish(self) -> None:
        if not self.promise.done():
            self.promise.set_result(Done)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.task is None:
            self._fail(exc)
        else:  # the element being sent is not lost: fail once it was sent
            self.failing = exc

    def _fail(self, exc: BaseException) -> None:
        if not self.promise.done():
            self.promise.set_exception(exc)
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self.aborted = exc  # (a materializer shutdown): the cause of the result's failure

    def post_stop(self) -> None:
        super().post_stop()
        if not self.promise.done():
            err = IOStreamError(f"[{self.OP}] the sink stopped before upstream completed")
            cause = getattr(self, "aborted", None)
            err.__cause__ = cause
            self.promise.set_exception(err)


class StreamConverters:
    """Akka's ``StreamConverters``, for anyio's streams (needs the ``io`` extra)."""

    @staticmethod
    def from_receive_stream(
        stream: Any, close: bool = True, max_bytes: int = 65536
    ) -> Source[Any, NotUsedType]:
        """Emit what ``stream`` (an anyio ``ObjectReceiveStream`` such as a
        ``MemoryObjectReceiveStream``, or a ``ByteReceiveStream``: chunks of at most
        ``max_bytes``) receives, one ``receive()`` per pull. The stream is closed when
        the stage stops, unless ``close=False``. One materialization consumes the stream.

        *Emits when* an item was received and downstream pulls.
        *Backpressures when* downstream backpressures (nothing is received).
        *Completes when* the stream ends (``EndOfStream``: all senders closed).
        *Fails when* receiving fails (broken or closed stream: ``IOStreamError``).
        *Cancels when* downstream cancels (the stream is closed).
        """
        _check_stream("StreamConverters.from_receive_stream", stream, "receive")
        return Source.from_graph(ReceiveStreamSource(stream, close, max_bytes))

    @staticmethod
    def to_send_stream(stream: Any, close: bool = True) -> Sink[Any, asyncio.Future[DoneType]]:
        """Send each element into ``stream`` (an anyio ``ObjectSendStream`` such as a
        ``MemoryObjectSendStream``, or a ``ByteSendStream``), awaiting each ``send()``
        before pulling the next: a full memory stream backpressures the stream. The
        stream is closed when the stage stops (receivers then see ``EndOfStream``),
        unless ``close=False``. Materializes an awaitable ``Done``.

        *Backpressures when* a send is in progress.
        *Completes when* upstream completes and the last send ended.
        *Fails when* a send fails (no receiver left: ``IOStreamError``), or upstream fails.
        *Cancels when* a send fails.
        """
        _check_stream("StreamConverters.to_send_stream", stream, "send")
        return Sink.from_graph(SendStreamSink(stream, close))


def _check_stream(op: str, stream: Any, method: str) -> None:
    _anyio()
    if not callable(getattr(stream, method, None)) or not callable(getattr(stream, "aclose", None)):
        raise TypeError(
            f"{op}: expects an anyio stream with {method}() and aclose(), got {stream!r}"
        )
