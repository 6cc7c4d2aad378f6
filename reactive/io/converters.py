"""Bridges between streams and anyio's streams (Akka's ``StreamConverters``, for anyio):
a source receiving from any anyio receive stream (``MemoryObjectReceiveStream``, a
``ByteReceiveStream`` such as a socket or a process's stdout, ...) and a sink sending
into any anyio send stream, so streams plug into anyio, Starlette or FastAPI code.

And the bridges to blocking Python IO (Akka's ``fromInputStream`` / ``fromOutputStream``
/ ``asInputStream`` / ``asOutputStream`` / ``asJavaStream``):

- ``from_input_stream`` / ``to_output_stream`` call a binary file-like object's blocking
  ``read`` / ``write`` / ``close`` in anyio's worker threads, one call at a time, and
  settle their ``IOResult`` once the object is closed (as ``FileIO``'s stages do).
- ``as_input_stream`` / ``as_output_stream`` / ``as_iterator`` hand blocking objects to
  code running in another thread; a bounded buffer (``Attributes.input_buffer`` max
  elements, default 16) sits between the stage on the event loop and that thread,
  guarded by a ``threading.Condition``: the stage never waits on it (it only takes the
  lock to move an element), the other thread blocks on it, and wakes the stage through
  an async callback (``invoke_threadsafe``) when it made room or added data. Calling
  the blocking side on the event loop's own thread raises a ``RuntimeError``: it would
  wait for the very loop that has to fill it.
"""

from __future__ import annotations

import asyncio
import io
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Self

from .._dsl.blueprints import Sink, Source
from .._impl.unobserved import ResultPromise, observed
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
from ._stages import outcome as _outcome
from ._stages import require_bytes, require_positive_int
from .errors import IOOperationIncompleteError, IOStreamError
from .files import IOResult, _anyio, _WorkerCalls

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["StreamConverters"]

_CLOSING: set[asyncio.Task[Any]] = set()


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


# -- blocking file-like objects, called in worker threads ---------------------------------
class _WorkerCallLogic(_WorkerCalls):
    """One blocking call on the file-like object at a time, in an anyio worker thread;
    its outcome comes back inside the stage through an async callback. When the stage
    stops, a task (which a materializer shutdown waits for, up to its
    ``shutdown_timeout``) waits for the call in flight, closes the object in a worker
    thread and then settles the ``IOResult``: ``count`` includes what that last call
    transferred. A shutdown that gives up on a call that does not return (a read of a
    pipe that never gets data) fails the ``IOResult`` then, with the abort, and the
    object is closed once that call returned (a worker thread cannot be stopped)."""

    OP = "StreamConverters"

    def __init__(self, shape: Any, create: Callable[[], Any], promise: ResultPromise) -> None:
        super().__init__(shape)
        self.create = create
        self.promise = promise
        self.stream: Any = None  # the object, once create() returned
        self.created: Any = None  # set by the worker thread: closed even if the stage stopped
        self.count = 0

    def _open(self, need: str) -> None:
        def open_() -> Any:
            stream = self.create()
            self.created = stream
            if not callable(getattr(stream, need, None)):
                raise TypeError(
                    f"[{self.OP}] create() must return a binary file-like object with "
                    f"{need}(), got {stream!r:.80}"
                )
            return stream

        self._call_sync(open_, self._opened)

    def _opened(self, stream: Any) -> None:
        self.stream = stream

    def _call_sync(self, fn: Callable[..., Any], then: Callable[[Any], None], *args: Any) -> None:
        """``fn(*args)`` in a worker thread (see ``_WorkerCalls._call``)."""
        run_sync = _anyio().to_thread.run_sync
        self._call(lambda: run_sync(fn, *args), then)

    def _stop_failure(self) -> BaseException | None:
        """What the result fails with once the stage stopped (None: it succeeds)."""
        return self.failure

    def post_stop(self) -> None:
        # Shielded (a shutdown waits for it, up to its shutdown_timeout): it waits for
        # the call in flight, closes the object and settles the result. Cancelled by a
        # shutdown that gave up on a call that does not return, it settles the result
        # with the abort at once and leaves the close to the call's return.
        task = self.materializer.spawn(self._release(self.task), cancel_on_shutdown=False)
        what = "the object" if self.created is None else f"{self.created!r:.60}"
        task.set_name(f"{self.OP}: closing {what} after its blocking call")

    async def _release(self, call: asyncio.Task[Any] | None) -> None:
        closing: asyncio.Task[Any] | None = None
        try:
            if call is not None and not call.done():
                await asyncio.wait((call,))
            closing = self._start_close()
            close_error: BaseException | None = None
            if closing is not None:
                await asyncio.wait((closing,))
                ok, value = closing.result()
                close_error = None if ok else value
            self._settle_result(close_error)
        except asyncio.CancelledError:
            self._settle_result(None, gave_up=True)
            if closing is None:  # the object is closed once the call in flight returned
                if call is not None and not call.done():
                    call.add_done_callback(lambda _: self._start_close())
                else:
                    self._start_close()
            raise

    def _start_close(self) -> asyncio.Task[Any] | None:
        """Close the object (once) in a worker thread, by a loop task that no shutdown
        cancels (a worker thread cannot be stopped anyway); None: nothing to close."""
        stream, self.stream, self.created = self.created, None, None
        if stream is None or not callable(getattr(stream, "close", None)):
            return None
        run_sync = _anyio().to_thread.run_sync
        task = self.materializer.loop.create_task(
            _outcome(lambda: run_sync(stream.close)), name=f"{self.OP}: close"
        )
        _CLOSING.add(task)
        task.add_done_callback(_CLOSING.discard)
        return task

    def _settle_result(self, close_error: BaseException | None, gave_up: bool = False) -> None:
        if self.promise.done():  # cancelled by its holder, or settled already
            return
        exc = self._stop_failure()
        if exc is None and close_error is not None:
            exc = close_error
        if exc is None and gave_up:
            exc = IOStreamError(
                f"[{self.OP}] closing was cancelled while a blocking call was in flight"
            )
        if exc is None:
            self.promise.set_result(IOResult(self.count))
            return
        err = IOOperationIncompleteError(
            f"[{self.OP}] failed after {self.count} bytes: {type(exc).__name__}: {exc}",
            self.count,
        )
        err.__cause__ = exc
        # An awaitable of the stream failure ``exc``: awaiting it observes the failure.
        self.promise.set_exception(err, exc)


def _read_chunk(stream: Any, size: int) -> Any:
    """In a worker thread: at most ``size`` bytes, with one read of the object (``read1``
    where it has one, so a buffered pipe or socket gives what arrived, not ``size``)."""
    read = getattr(stream, "read1", None) or stream.read
    return read(size)


def _write_all(logic: _WorkerCallLogic, stream: Any, data: bytes, flush: bool) -> None:
    """In a worker thread: all of ``data`` (a raw object may write part of it per call;
    a ``write`` returning None counts as having written everything), counted as it
    lands, then ``flush()`` if asked."""
    view = memoryview(data)
    while view:
        n = stream.write(view)
        n = len(view) if n is None else n
        view = view[n:]
        logic.count += n
    if flush:
        stream.flush()


class InputStreamSource(GraphStageWithMaterializedValue[SourceShape[Any], Any]):
    """``StreamConverters.from_input_stream``."""

    def __init__(self, create: Callable[[], Any], chunk_size: int) -> None:
        self.shape = SourceShape(Outlet("StreamConverters.from_input_stream.out"))
        self.create = create
        self.chunk_size = chunk_size

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        promise = ResultPromise(loop=asyncio.get_running_loop())
        return _InputStreamLogic(self, promise), promise


class _InputStreamLogic(_WorkerCallLogic, OutHandler):
    """Reads one chunk per pull (nothing ahead of demand, as Akka's InputStreamSource)."""

    OP = "StreamConverters.from_input_stream"

    def __init__(self, stage: InputStreamSource, promise: ResultPromise) -> None:
        super().__init__(stage.shape, stage.create, promise)
        self.out: Outlet[Any] = stage.shape.out
        self.set_handler(self.out, self)
        self.chunk_size = stage.chunk_size

    def pre_start(self) -> None:
        self._open("read")

    def _opened(self, stream: Any) -> None:
        self.stream = stream
        if self.is_available(self.out):
            self.on_pull()

    def on_pull(self) -> None:
        if self.stream is not None and self.task is None:
            self._call_sync(_read_chunk, self._read, self.stream, self.chunk_size)

    def _read(self, data: Any) -> None:
        if data is None:
            self._failed(
                IOStreamError(
                    f"[{self.OP}] read() returned None (a non-blocking stream with no data "
                    "ready): give a blocking stream"
                )
            )
            return
        if not isinstance(data, bytes | bytearray | memoryview):
            self._failed(
                TypeError(
                    f"[{self.OP}] read() must return bytes (open the file in binary mode), "
                    f"got {type(data).__name__} {data!r:.60}"
                )
            )
            return
        if not data:
            self.complete_stage()
            return
        self.count += len(data)
        self.push(self.out, bytes(data))


class OutputStreamSink(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    """``StreamConverters.to_output_stream``."""

    def __init__(self, create: Callable[[], Any], auto_flush: bool) -> None:
        self.shape = SinkShape(Inlet("StreamConverters.to_output_stream.in"))
        self.create = create
        self.auto_flush = auto_flush

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        promise = ResultPromise(loop=asyncio.get_running_loop())
        return _OutputStreamLogic(self, promise), promise


class _OutputStreamLogic(_WorkerCallLogic, InHandler):
    """Writes each element (one call in flight) before pulling the next; an upstream
    failure or completion while a write is in flight takes effect once it returned."""

    OP = "StreamConverters.to_output_stream"

    def __init__(self, stage: OutputStreamSink, promise: ResultPromise) -> None:
        super().__init__(stage.shape, stage.create, promise)
        self.in_: Inlet[Any] = stage.shape.in_
        self.set_handler(self.in_, self)
        self.auto_flush = stage.auto_flush
        self.finishing = False
        self.completed = False
        self.failing: BaseException | None = None

    def pre_start(self) -> None:
        self.set_keep_going(True)  # upstream may end while a call is in flight
        self._open("write")

    def _opened(self, stream: Any) -> None:
        self.stream = stream
        self._next()

    def on_push(self) -> None:
        try:
            data = require_bytes(self.OP, self.grab(self.in_), self.count)
        except TypeError as e:
            self._failed(e)
            self.cancel(self.in_, e)
            return
        self._call_sync(_write_all, self._written, self, self.stream, data, self.auto_flush)

    def _written(self, _: None) -> None:
        self._next()

    def _next(self) -> None:
        if self.failing is not None:
            self._failed(self.failing)
        elif self.finishing:
            self.completed = True
            self.complete_stage()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.finishing = True
        if self.task is None:
            self._next()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.failing = exc
        if self.task is None:
            self._next()

    def _stop_failure(self) -> BaseException | None:
        if self.failure is None and not self.completed:
            return RuntimeError("the sink stopped before upstream completed")
        return self.failure


# -- blocking objects handed to another thread --------------------------------------------
def _invoke(callback: Any) -> None:
    """Wake the stage from any thread; nothing to wake once its loop is closed (a reader
    or writer closed by the garbage collector after the loop ended)."""
    try:
        callback.invoke_threadsafe(None)
    except RuntimeError:  # the event loop is closed
        pass


class _Handoff:
    """The bounded buffer between a stage and the thread using its blocking object.

    Everything is guarded by ``cond``; the stage only takes the lock to move an element
    (never waits on it). ``stage_waiting``: the stage needs a wake-up (the sink stopped
    pulling because the buffer is full; the source has demand and nothing to push).
    """

    def __init__(self, op: str, capacity: int) -> None:
        self.op = op
        self.capacity = capacity
        self.cond = threading.Condition()
        self.items: deque[Any] = deque()
        self.end = False  # no more items will be added (sink: upstream completed;
        #                   source: the writer was closed)
        self.failure: BaseException | None = None  # the stream failed (sink side)
        self.stopped: str | None = None  # the stage stopped: why (source side)
        self.closed = False  # the sink side's reader or iterator was closed by its user
        self.stage_waiting = False
        self.wake: Any = None  # the stage's AsyncCallback
        self.loop_thread = threading.get_ident()

    def check_thread(self, what: str) -> None:
        if threading.get_ident() == self.loop_thread:
            raise RuntimeError(
                f"[{self.op}] {what} blocks: call it from another thread than the event "
                "loop running the stream (e.g. in anyio.to_thread.run_sync), it would "
                "wait for the loop that has to serve it"
            )

    def wait(self, ready: Callable[[], bool], timeout: float | None, what: str) -> None:
        """With ``cond`` held: wait until ``ready()``, or raise ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not ready():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise TimeoutError(f"[{self.op}] {what} within the timeout of {timeout:g} s")
            self.cond.wait(left)


class _HandoffSinkLogic(GraphStageLogic, InHandler):
    """Puts the elements into the handoff, pulling while it has room (and once the other
    thread made room); upstream's end or failure is queued behind the elements."""

    def __init__(self, shape: SinkShape[Any], handoff: _Handoff, is_bytes: bool) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.set_handler(self.in_, self)
        self.h = handoff
        self.is_bytes = is_bytes
        self.count = 0
        self.room_cb = self.get_async_callback(self._room)
        self.close_cb = self.get_async_callback(self._closed)
        handoff.wake = self.room_cb

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.is_bytes:
            try:
                x = require_bytes(self.h.op, x, self.count)
            except TypeError as e:  # the reader raises it, after the bytes before it
                self._end_handoff(e)
                self.fail_stage(e)
                return
            self.count += len(x)
            if not x:  # an empty read would mean the end of the stream
                self.pull(self.in_)
                return
        h = self.h
        with h.cond:
            h.items.append(x)
            full = len(h.items) >= h.capacity
            h.stage_waiting = full
            h.cond.notify_all()
        if not full:
            self.pull(self.in_)

    def _room(self, _: Any) -> None:
        if not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def _closed(self, _: Any) -> None:
        self.cancel(self.in_)
        self.complete_stage()

    def on_upstream_finish(self) -> None:
        with self.h.cond:
            self.h.end = True
            self.h.cond.notify_all()
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._end_handoff(exc)
        self.fail_stage(exc)

    def _end_handoff(self, exc: BaseException) -> None:
        with self.h.cond:
            if not self.h.end and self.h.failure is None:
                self.h.failure = exc
            self.h.cond.notify_all()

    def _on_abort(self, exc: BaseException) -> None:
        self._end_handoff(exc)

    def post_stop(self) -> None:
        self._end_handoff(IOStreamError(f"[{self.h.op}] the stream stopped before it completed"))


class HandoffSink(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    """``StreamConverters.as_input_stream`` / ``as_iterator``."""

    def __init__(self, op: str, make: Callable[[_Handoff, Any], Any], is_bytes: bool) -> None:
        self.shape = SinkShape(Inlet(f"{op}.in"))
        self.op = op
        self.make = make
        self.is_bytes = is_bytes

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        handoff = _Handoff(self.op, int(attributes.get("input_buffer") or 16))
        logic = _HandoffSinkLogic(self.shape, handoff, self.is_bytes)
        return logic, self.make(handoff, logic.close_cb)


class _BlockingReader(io.RawIOBase):
    """The materialized value of ``StreamConverters.as_input_stream``: a blocking binary
    reader of the stream's bytes, for code in another thread (wrap it in
    ``io.BufferedReader`` / ``io.TextIOWrapper`` as for any raw stream)."""

    def __init__(self, handoff: _Handoff, close_cb: Any, read_timeout: float | None) -> None:
        super().__init__()
        self._h = handoff
        self._close_cb = close_cb
        self._timeout = read_timeout

    def readable(self) -> bool:
        """True: it can be read."""
        return True

    def readinto(self, buffer: Any) -> int:
        """Read into ``buffer`` what the stream has (waiting up to ``read_timeout`` for
        bytes), 0 at the end of the stream. Raises ``TimeoutError`` when no bytes came
        in time (the stream goes on), ``IOStreamError`` (caused by the failure) once the
        bytes before a stream failure were read, ``ValueError`` once closed."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        h = self._h
        h.check_thread("read()")
        with memoryview(buffer).cast("B") as target, h.cond:
            h.wait(
                lambda: bool(h.items) or h.end or h.failure is not None or h.closed,
                self._timeout,
                "no bytes came",
            )
            if h.closed:  # by another thread while this one waited: as a later read
                raise ValueError("I/O operation on closed file.")
            if not h.items:
                if h.failure is not None:
                    err = IOStreamError(
                        f"[{h.op}] the stream failed: {type(h.failure).__name__}: {h.failure}"
                    )
                    raise err from observed(h.failure)
                return 0
            chunk = h.items[0]
            n = min(len(target), len(chunk))
            target[:n] = chunk[:n]
            if n < len(chunk):
                h.items[0] = memoryview(chunk)[n:]
                return n
            h.items.popleft()
            wake, h.stage_waiting = h.stage_waiting, False
        if wake:
            _invoke(h.wake)
        return n

    def close(self) -> None:
        """Stop reading: the stream is cancelled (what it had buffered is dropped); a
        read blocked in another thread raises ``ValueError`` (closed), as later reads
        do. The garbage collector closing the reader does the same."""
        if not self.closed:
            h = self._h
            with h.cond:
                h.closed = True
                h.cond.notify_all()
            _invoke(self._close_cb)
        super().close()


class _BlockingIterator:
    """The materialized value of ``StreamConverters.as_iterator``: a blocking iterator
    of the stream's elements, for code in another thread. ``next()`` waits for the next
    element; the stream's failure is raised once, after the elements before it; ``close()``
    (or leaving a ``with`` block) cancels the stream, as the garbage collector collecting
    an iterator that was not closed does."""

    def __init__(self, handoff: _Handoff, close_cb: Any) -> None:
        self._h = handoff
        self._closed = False
        self._raised = False
        # Cancels the stream once, on close() or when the iterator is collected (from
        # whatever thread the collector runs in: invoke_threadsafe).
        self._cancel = weakref.finalize(self, _invoke, close_cb)
        self._cancel.atexit = False

    def __iter__(self) -> _BlockingIterator:
        return self

    def __next__(self) -> Any:
        h = self._h
        if self._closed or self._raised:
            raise StopIteration
        h.check_thread("next()")
        with h.cond:
            h.wait(lambda: bool(h.items) or h.end or h.failure is not None or h.closed, None, "")
            if h.closed:  # by another thread while this one waited: the iteration ends
                raise StopIteration
            if h.items:
                x = h.items.popleft()
                wake, h.stage_waiting = h.stage_waiting, False
            elif h.failure is not None:
                self._raised = True
                raise observed(h.failure)
            else:
                raise StopIteration
        if wake:
            _invoke(h.wake)
        return x

    def close(self) -> None:
        """Stop iterating: the stream is cancelled; a ``next()`` blocked in another
        thread, and every later one, raises ``StopIteration`` (as after closing a
        generator). Callable from any thread."""
        if not self._closed:
            self._closed = True
            h = self._h
            with h.cond:
                h.closed = True
                h.cond.notify_all()
            self._cancel()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HandoffSource(GraphStageWithMaterializedValue[SourceShape[Any], Any]):
    """``StreamConverters.as_output_stream``."""

    def __init__(self, write_timeout: float | None) -> None:
        self.op = "StreamConverters.as_output_stream"
        self.shape = SourceShape(Outlet(f"{self.op}.out"))
        self.write_timeout = write_timeout

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        handoff = _Handoff(self.op, int(attributes.get("input_buffer") or 16))
        logic = _HandoffSourceLogic(self.shape, handoff)
        return logic, _BlockingWriter(handoff, self.write_timeout)


class _HandoffSourceLogic(GraphStageLogic, OutHandler):
    """Pushes what the writer put into the handoff, one element per pull; completes once
    the writer was closed and everything written was pushed."""

    def __init__(self, shape: SourceShape[Any], handoff: _Handoff) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.h = handoff
        handoff.wake = self.get_async_callback(self._wake)

    def on_pull(self) -> None:
        h = self.h
        with h.cond:
            if h.items:
                x = h.items.popleft()
                h.cond.notify_all()  # room for a blocked write; flush() may be done
            elif h.end:
                x = None
            else:
                h.stage_waiting = True
                return
        if x is None:
            self.complete_stage()
        else:
            self.push(self.out, x)

    def _wake(self, _: Any) -> None:
        if self.is_available(self.out):
            self.on_pull()

    def _end_handoff(self, why: str) -> None:
        with self.h.cond:
            if self.h.stopped is None:
                self.h.stopped = why
            self.h.cond.notify_all()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self._end_handoff("the stream was cancelled")
        super().on_downstream_finish(cause)

    def _on_abort(self, exc: BaseException) -> None:
        self._end_handoff(f"the stream was aborted: {type(exc).__name__}: {exc}")

    def post_stop(self) -> None:
        self._end_handoff("the stream stopped")


class _BlockingWriter(io.RawIOBase):
    """The materialized value of ``StreamConverters.as_output_stream``: a blocking binary
    writer whose bytes the source emits, for code in another thread (wrap it in
    ``io.BufferedWriter`` / ``io.TextIOWrapper`` as for any raw stream)."""

    def __init__(self, handoff: _Handoff, write_timeout: float | None) -> None:
        super().__init__()
        self._h = handoff
        self._timeout = write_timeout
        self._ending = False

    def writable(self) -> bool:
        """True: it can be written."""
        return True

    def _check_open(self) -> None:
        h = self._h
        if h.stopped is not None:
            raise IOStreamError(f"[{h.op}] cannot write: {h.stopped}")

    def write(self, data: Any) -> int:
        """Hand a copy of ``data`` to the stream (one element); waits while the buffer
        is full (back pressure), up to ``write_timeout``: then ``TimeoutError``. Raises
        ``IOStreamError`` once the stream was cancelled or failed."""
        if self.closed:
            raise ValueError("I/O operation on closed file.")
        h = self._h
        h.check_thread("write()")
        chunk = bytes(data)
        if not chunk:
            return 0
        with h.cond:
            h.wait(
                lambda: h.stopped is not None or len(h.items) < h.capacity,
                self._timeout,
                "the stream took no more bytes",
            )
            self._check_open()
            h.items.append(chunk)
            wake, h.stage_waiting = h.stage_waiting, False
        if wake:
            _invoke(h.wake)
        return len(chunk)

    def flush(self) -> None:
        """Wait until the stream has emitted everything written (up to
        ``write_timeout``); nothing to do once closed."""
        if self.closed or self._ending:
            return
        h = self._h
        h.check_thread("flush()")
        with h.cond:
            h.wait(
                lambda: h.stopped is not None or not h.items,
                self._timeout,
                "the stream did not take the bytes written",
            )
            if h.items:
                self._check_open()

    def close(self) -> None:
        """Complete the stream once it emitted what was written (without waiting for
        that: ``flush()`` first to wait); callable from any thread."""
        if self.closed:
            return
        h = self._h
        with h.cond:
            h.end = True
            wake, h.stage_waiting = h.stage_waiting, False
        if wake:
            _invoke(h.wake)
        self._ending = True  # IOBase.close() calls flush(), which must not wait here
        super().close()


class StreamConverters:
    """Akka's ``StreamConverters``: bridges to anyio's streams and to blocking Python
    binary IO (file-like objects, used in worker threads; needs the ``io`` extra)."""

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

    @staticmethod
    def from_input_stream(
        create: Callable[[], Any], chunk_size: int = 8192
    ) -> Source[bytes, asyncio.Future[IOResult]]:
        """Akka's ``fromInputStream``: the bytes read from the binary file-like object
        ``create()`` returns (a file opened ``"rb"``, ``io.BytesIO``, a socket's
        ``makefile("rb")``, ...), in chunks of at most ``chunk_size`` bytes. ``create``,
        every ``read`` and the final ``close`` run in anyio's worker threads, one call at
        a time, so the event loop never waits on them; a read is made per pull (a
        buffered object's ``read1``: what is there, up to ``chunk_size``), nothing is
        read ahead. The object is closed once the stage stops, however it stops.

        Materializes an awaitable ``IOResult(count)`` of the bytes emitted, settled once
        the object is closed (also when downstream cancels); an error of ``create``,
        ``read`` or ``close`` (or a ``read`` returning ``str``: a text-mode file) fails
        the stream with it and the awaitable with ``IOOperationIncompleteError(count)``
        caused by it. A materializer shutdown fails it (caused by the
        ``AbruptTerminationError``) once the read in flight returned, or when the
        shutdown stops waiting for it (``shutdown_timeout``: a read that never returns);
        the object is then closed when that read returns.

        *Emits when* a read returned bytes and downstream pulls.
        *Backpressures when* downstream backpressures (nothing is read).
        *Completes when* a read returned ``b""`` (the end of the stream).
        *Fails when* ``create``, a read or the close fails.
        """
        op = "StreamConverters.from_input_stream"
        _check_callable(op, create)
        require_positive_int(op, "chunk_size", chunk_size)
        _anyio()
        return Source.from_graph(InputStreamSource(create, chunk_size))

    @staticmethod
    def to_output_stream(
        create: Callable[[], Any], auto_flush: bool = False
    ) -> Sink[bytes, asyncio.Future[IOResult]]:
        """Akka's ``fromOutputStream``: write each byte chunk to the binary file-like
        object ``create()`` returns (a file opened ``"wb"``, a socket's
        ``makefile("wb")``, ...), each ``write`` in an anyio worker thread before the
        next chunk is pulled, then ``flush()`` too when ``auto_flush``. The object is
        closed (which flushes it) in a worker thread once the stage stops.

        Materializes an awaitable ``IOResult(count)`` of the bytes written, settled once
        the object is closed after upstream completed; an upstream failure, an error of
        ``create``, ``write`` or ``close``, or an element that is not bytes fails it with
        ``IOOperationIncompleteError(count)`` caused by it (``count`` includes the write
        in flight when upstream failed). A materializer shutdown fails it (caused by the
        ``AbruptTerminationError``) once the write in flight returned, or when the
        shutdown stops waiting for it (``shutdown_timeout``: a write blocked on a full
        pipe); the object is then closed when that write returns.

        *Backpressures when* a write is in progress.
        *Completes when* upstream completes and the last write returned.
        *Fails when* ``create``, a write or the close fails, or upstream fails (once
        the write in progress returned).
        *Cancels when* ``create`` or a write fails, or an element is not ``bytes``.
        """
        op = "StreamConverters.to_output_stream"
        _check_callable(op, create)
        _anyio()
        return Sink.from_graph(OutputStreamSink(create, bool(auto_flush)))

    @staticmethod
    def as_input_stream(read_timeout: float | None = 5.0) -> Sink[bytes, io.RawIOBase]:
        """Akka's ``asInputStream``: materializes a blocking binary reader (an
        ``io.RawIOBase``) of the stream's bytes, for synchronous code in another thread
        than the event loop's (reading on the loop's thread raises ``RuntimeError``).

        The sink buffers up to ``Attributes.input_buffer`` max elements (default 16) and
        pulls as the reader takes them. A read waits for bytes up to ``read_timeout``
        seconds (None: forever), then raises ``TimeoutError`` (the stream goes on);
        it returns ``b""`` once the stream completed and everything was read. After the
        bytes that came before a stream failure, reads raise ``IOStreamError`` caused by
        it. Closing the reader (or the garbage collector collecting it) cancels the
        stream; a read blocked in another thread then raises ``ValueError`` (closed
        file), as later reads do.

        *Backpressures when* the buffer is full (the reader has not taken its elements).
        *Cancels when* the reader is closed, or an element is not ``bytes``.
        """
        timeout = _timeout("StreamConverters.as_input_stream", "read_timeout", read_timeout)

        def make(handoff: _Handoff, close_cb: Any) -> io.RawIOBase:
            return _BlockingReader(handoff, close_cb, timeout)

        return Sink.from_graph(HandoffSink("StreamConverters.as_input_stream", make, True))

    @staticmethod
    def as_output_stream(write_timeout: float | None = 5.0) -> Source[bytes, io.RawIOBase]:
        """Akka's ``asOutputStream``: materializes a blocking binary writer (an
        ``io.RawIOBase``) whose writes the source emits, one element per ``write``, for
        synchronous code in another thread than the event loop's (writing on the loop's
        thread raises ``RuntimeError``).

        Up to ``Attributes.input_buffer`` max writes (default 16) wait in a buffer; a
        write to a full buffer blocks until downstream took one (back pressure), up to
        ``write_timeout`` seconds (None: forever), then raises ``TimeoutError``.
        ``flush()`` waits until everything written was emitted. ``close()`` completes
        the source after what was written (the garbage collector closing the writer
        does too). Once the stream was cancelled or failed, writes raise
        ``IOStreamError``.

        *Emits when* bytes were written and downstream pulls.
        *Completes when* the writer was closed and everything written was emitted.
        *Backpressures when* downstream backpressures (writes block once the buffer is
        full).
        *Cancels when* downstream cancels (writes fail from then on).
        """
        timeout = _timeout("StreamConverters.as_output_stream", "write_timeout", write_timeout)
        return Source.from_graph(HandoffSource(timeout))

    @staticmethod
    def as_iterator() -> Sink[Any, _BlockingIterator]:
        """Akka's ``asJavaStream``: materializes a blocking iterator of the stream's
        elements, for synchronous code in another thread than the event loop's
        (``next()`` on the loop's thread raises ``RuntimeError``). ``next()`` waits for
        the next element (no timeout, as Akka's); the iteration ends when the stream
        completes; a stream failure is raised (the original exception) after the
        elements before it. ``close()`` (or leaving ``with iterator:``, or the garbage
        collector collecting an iterator not closed) cancels the stream; a ``next()``
        blocked in another thread then raises ``StopIteration``, as later ones do (a
        closed generator's behaviour). Up to ``Attributes.input_buffer`` max elements
        (default 16) are buffered.

        *Backpressures when* the buffer is full (the iterator has not taken its elements).
        *Cancels when* the iterator is closed.
        """

        def make(handoff: _Handoff, close_cb: Any) -> _BlockingIterator:
            return _BlockingIterator(handoff, close_cb)

        return Sink.from_graph(HandoffSink("StreamConverters.as_iterator", make, False))


def _check_stream(op: str, stream: Any, method: str) -> None:
    _anyio()
    if not callable(getattr(stream, method, None)) or not callable(getattr(stream, "aclose", None)):
        raise TypeError(
            f"{op}: expects an anyio stream with {method}() and aclose(), got {stream!r}"
        )


def _check_callable(op: str, create: Any) -> None:
    if not callable(create):
        raise TypeError(
            f"{op}: create must be a function returning a binary file-like object, got "
            f"{create!r:.80}"
        )


def _timeout(op: str, name: str, value: Any) -> float | None:
    """``value`` as seconds (None: wait forever), or a ValueError naming the operator."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{op}: {name} must be None or seconds > 0, got {value!r}")
    return float(value)
