"""Files: Akka's ``FileIO.fromPath`` / ``toPath`` on anyio's file API.

Every blocking call (open, seek, read, write, fsync-free close of an unbuffered file)
runs in anyio's worker threads (``anyio.open_file``, ``anyio.to_thread.run_sync`` for
reads of several chunks at once, ``AsyncFile.write``), so the event loop never waits on
the disk. One call is in flight at a time per stage; the file is closed once, when the
stage stops, after the call in flight (if any) returned, and only then is the
materialized ``IOResult`` settled: it counts what that call did (a chunk whose write was
in flight when upstream failed or the materializer shut down is in the file and in the
count, as Akka's FileSink writes every element it received before it reports).

A worker thread cannot be stopped, so the calls are not materializer tasks (a shutdown
would cancel the task awaiting the thread, not the thread): a stage stopping with a call
in flight closes and settles when the call returns, and a materializer task waits for it
meanwhile, so ``Materializer.shutdown()`` returns after it.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._dsl.blueprints import Sink, Source
from .._impl.unobserved import ResultPromise
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
from .errors import IOOperationIncompleteError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["FileIO", "IOResult"]

#: The source reads at most this many bytes ahead of demand (and at least one chunk).
READ_AHEAD_BYTES = 1 << 20
#: A read of cached pages on the event loop takes about this many bytes (at least one
#: chunk, at most a worker thread's read).
CACHED_READ_BYTES = 1 << 16

#: ``preadv``'s flag to read only what the page cache holds (Linux), or 0 where missing.
_NOWAIT: int = getattr(os, "RWF_NOWAIT", 0)
#: The errors of a ``RWF_NOWAIT`` read that mean "not cached now", not "not supported".
_NOT_CACHED = (errno.EAGAIN, errno.EWOULDBLOCK)


@dataclass(frozen=True)
class IOResult:
    """What an IO stage transferred: ``count`` bytes; ``error`` is None when it
    succeeded (Akka's ``IOResult``). A failed stage fails its materialized awaitable
    with ``IOOperationIncompleteError`` instead, which carries ``count`` too."""

    count: int
    error: BaseException | None = None

    @property
    def was_successful(self) -> bool:
        """True when the operation completed without an error."""
        return self.error is None


def _anyio() -> Any:
    try:
        import anyio
    except ImportError as e:  # pragma: no cover - the io extra is missing
        raise ImportError("reactive.io needs anyio: pip install 'reactive-streams-py[io]'") from e
    return anyio


class _WorkerCalls(GraphStageLogic):
    """One call that may block at a time (in a worker thread), awaited by a loop task
    (not a materializer task: a shutdown cannot stop the worker thread, so it must not
    cancel the task that learns when the call returned); its outcome comes back inside
    the stage through an async callback. Shared by FileIO's stages and the blocking-stream
    bridges of ``StreamConverters``."""

    OP = "io"
    CALL = "a blocking call"  # named when the event loop cancels it

    def __init__(self, shape: Any) -> None:
        super().__init__(shape)
        self.task: asyncio.Task[Any] | None = None
        self.failure: BaseException | None = None  # why the stage failed (or aborted)
        self.done_cb = self.get_async_callback(self._on_done)
        self.on_result: Callable[[Any], None] = lambda _: None

    def _call(self, make: Callable[[], Awaitable[Any]], on_result: Callable[[Any], None]) -> None:
        self.on_result = on_result
        task = self.materializer.loop.create_task(_outcome(make), name=f"{self.OP}:call")
        self.task = task
        task.add_done_callback(self.done_cb.invoke)

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        if task is not self.task:
            return
        self.task = None
        if task.cancelled():  # the event loop is closing
            self._failed(asyncio.CancelledError(f"[{self.OP}] {self.CALL} was cancelled"))
            return
        ok, value = task.result()
        if ok:
            self.on_result(value)
        else:
            self._call_failed(value)

    def _call_failed(self, exc: BaseException) -> None:
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        if self.failure is None:
            self.failure = exc


class _FileLogic(_WorkerCalls):
    """FileIO's calls (see ``_WorkerCalls``). When the stage stops the file is closed,
    after the call in flight (if any) returned, then the result is settled (see the
    module docstring)."""

    OP = "FileIO"
    CALL = "a file operation"

    def __init__(self, shape: Any, path: str, promise: ResultPromise) -> None:
        super().__init__(shape)
        self.path = path
        self.promise = promise
        self.file: Any = None  # anyio AsyncFile once open
        self.count = 0
        self.failing: BaseException | None = None  # fail with it once the call ended

    def _call_failed(self, exc: BaseException) -> None:
        if self.failing is None:
            self._failed(self._naming_the_path(exc))
        else:
            self._failed(self.failing)

    def _naming_the_path(self, exc: BaseException) -> BaseException:
        """A read or write error as the stream fails with it: an ``OSError`` from a call
        on the open file names no file (an open error does), so it gets the path as its
        ``filename`` (``str()`` then ends with it, as an open error's), or, when it has
        no ``errno`` to show with it, a note naming the stage and the path. The same
        exception, so handlers of its type still catch it."""
        if isinstance(exc, OSError) and exc.filename is None:
            if exc.errno is not None and exc.strerror is not None:
                exc.filename = self.path
            else:
                exc.add_note(f"[{self.OP}] on the file {self.path!r}")
        return exc

    def post_stop(self) -> None:
        f, self.file = self.file, None
        task = self.task
        if task is not None and not task.done():
            # A worker thread may still be using the file: close and settle after it.
            task.add_done_callback(lambda t: self._close_and_settle(f, t))
            # The materializer's shutdown waits for it (up to its shutdown_timeout).
            self.materializer.spawn(_wait_for(task), cancel_on_shutdown=False)
        else:
            self._close_and_settle(f, task)

    def _close_and_settle(self, f: Any, task: asyncio.Task[Any] | None) -> None:
        if f is not None:
            _close(f)
        elif task is not None:
            _close_opened(task)  # an open that returned after the stage stopped
        if self.promise.done():  # cancelled by its holder
            return
        exc = self._stop_failure()
        if exc is None:
            self.promise.set_result(IOResult(self.count))
            return
        err = IOOperationIncompleteError(
            f"[{self.OP}] {self.path!r}: failed after {self.count} bytes: "
            f"{type(exc).__name__}: {exc}",
            self.count,
        )
        err.__cause__ = exc
        # An awaitable of the stream failure ``exc``: awaiting it observes the failure.
        self.promise.set_exception(err, exc)

    def _stop_failure(self) -> BaseException | None:
        """What the result fails with once the stage stopped (None: it succeeds)."""
        return self.failure


async def _wait_for(call: asyncio.Task[Any]) -> None:
    """Wait until ``call`` ended (a materializer's shutdown waits for this task, up to its
    ``shutdown_timeout``: the worker thread's call is not cancelled by it)."""
    await asyncio.wait((call,))


def _close(f: Any) -> None:
    # Unbuffered: close() neither flushes nor blocks on the disk.
    f.wrapped.close()


def _close_opened(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        ok, value = task.result()
        if ok and hasattr(value, "wrapped"):
            _close(value)


def _check_path(op: str, path: Any) -> str:
    try:
        fspath: str = os.fspath(path)
        return fspath
    except TypeError:
        raise TypeError(f"{op}: path must be a str or os.PathLike, got {path!r}") from None


# -- the source --------------------------------------------------------------------------
class FileSource(GraphStageWithMaterializedValue[SourceShape[Any], "asyncio.Future[IOResult]"]):
    """``FileIO.from_path``."""

    def __init__(self, path: str, chunk_size: int, start_position: int) -> None:
        self.shape = SourceShape(Outlet("FileSource.out"))
        self.path = path
        self.chunk_size = chunk_size
        self.start_position = start_position

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[IOResult]]:
        promise = ResultPromise(loop=asyncio.get_running_loop())
        buffer = int(attributes.get("input_buffer") or 16)
        read_ahead = max(1, min(buffer, READ_AHEAD_BYTES // self.chunk_size))
        return _FileSourceLogic(self.shape, self, promise, read_ahead), promise

    def __repr__(self) -> str:
        return f"FileSource({self.path!r})"


class _FileSourceLogic(_FileLogic, OutHandler):
    """Holds up to ``read_ahead`` chunks read ahead of demand (Akka's FileSource reads
    ahead up to the input buffer's max, 16, too) and pushes one per pull. A worker-thread
    call reads half of them at once; the next call starts as soon as there is room for
    its chunks, so the disk works while downstream processes the chunks already read.
    Pages the page cache holds are read on the event loop instead, about 64 KiB at a
    time, once the queue is empty (``_read_cached``)."""

    OP = "FileIO.from_path"

    def __init__(
        self,
        shape: SourceShape[Any],
        stage: FileSource,
        promise: ResultPromise,
        read_ahead: int,
    ) -> None:
        super().__init__(shape, stage.path, promise)
        self.stage = stage
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.per_read = max(1, read_ahead // 2)
        self.room = read_ahead - self.per_read  # read when at most this many are queued
        self.chunks: deque[bytes] = deque()
        self.eof = False
        self.nowait = False  # True: cached pages are read on the loop (_read_cached)
        self.buffer = bytearray()  # the cached reads' buffer
        self.cached = False  # the last read found its pages cached: read when emptied
        self.regular = True  # False: a FIFO, a pipe, a device (see _read_once)

    def pre_start(self) -> None:
        anyio = _anyio()
        path, start = self.path, self.stage.start_position

        async def open_() -> Any:
            f = await anyio.open_file(path, "rb", buffering=0)  # no hidden read-ahead
            if start:
                try:
                    await f.seek(start)
                except BaseException:
                    _close(f)
                    raise
            return f

        self._call(open_, self._opened)

    def _opened(self, f: Any) -> None:
        self.file = f
        self.regular = stat.S_ISREG(os.fstat(f.wrapped.fileno()).st_mode)
        if _NOWAIT and self.regular:
            self.nowait = True
            size = self.stage.chunk_size
            self.buffer = bytearray(size * max(1, min(self.per_read, CACHED_READ_BYTES // size)))
        self._read_more()

    def _read_more(self) -> None:
        f = self.file
        if f is not None and self.task is None and not self.eof:
            queued = len(self.chunks)
            if queued <= self.room:
                if self.nowait:
                    if queued and self.cached:
                        return  # the next read is on the loop, when the queue is empty
                    chunks = self._read_cached()
                    if chunks is not None:
                        self._read((chunks, False))
                        return
                self._read_in_thread(f)

    def _read_in_thread(self, f: Any) -> None:
        run_sync = _anyio().to_thread.run_sync
        fp, size, n = f.wrapped, self.stage.chunk_size, self.per_read
        read = _read_chunks if self.regular else _read_once
        self._call(lambda: run_sync(read, fp, size, n), self._read)

    def _read_cached(self) -> list[bytes] | None:
        """The next chunks, read on the event loop if the page cache holds them: a
        ``preadv`` with ``RWF_NOWAIT`` copies cached pages and never waits on the disk
        (it fails with ``EAGAIN`` instead). It reads at the file position and moves it
        (offset -1), as a worker thread's read does, so the two take turns on one
        position. None when it got less than a whole chunk (not cached, or the file's
        end: the worker thread reads then and finds out). Saves a thread round trip per
        read: on a busy event loop the worker thread waits for the GIL to hand its
        result back.

        While reads find their pages cached (``cached``), the next one waits until the
        queue is empty (``on_pull``): a read on the loop gains nothing by running further
        ahead (nothing else runs meanwhile), and a small buffer (``CACHED_READ_BYTES``)
        read just before its chunks are used is still in the CPU's cache when
        downstream reads them."""
        size = self.stage.chunk_size
        fd = self.file.wrapped.fileno()
        buffer = self.buffer
        self.cached = False
        try:
            got = os.preadv(fd, (buffer,), -1, _NOWAIT)
        except OSError as e:
            if e.errno not in _NOT_CACHED:
                self.nowait = False  # not supported here: the worker threads read from now on
            return None
        if got == size == len(buffer):  # (the common case: one chunk at a time)
            self.cached = True
            return [bytes(buffer)]
        part = got % size
        if part:  # not a whole chunk: read again, with the bytes that follow
            os.lseek(fd, -part, os.SEEK_CUR)
            got -= part
        if not got:
            return None
        self.cached = True
        with memoryview(buffer) as view:
            return [bytes(view[i : i + size]) for i in range(0, got, size)]

    def on_pull(self) -> None:
        chunks = self.chunks
        if chunks:
            data = chunks.popleft()
            self.count += len(data)
            self.push(self.out, data)
            if chunks:
                if not self.cached:  # (else the next read waits until the queue is empty)
                    self._read_more()
            elif self.eof:
                self.complete_stage()
            elif self.cached:
                # The next chunks, on the loop now (no call is in flight: a worker
                # thread's read would have come last).
                got = self._read_cached()
                if got is None:
                    self._read_in_thread(self.file)
                else:
                    chunks.extend(got)
            else:
                self._read_more()

    def _read(self, result: tuple[list[bytes], bool]) -> None:
        chunks, self.eof = result
        self.chunks.extend(chunks)
        if not self.chunks:  # the end of the file, nothing more read
            self.complete_stage()
            return
        self._read_more()
        if self.is_available(self.out):
            self.on_pull()


def _read_chunks(fp: Any, size: int, n: int) -> tuple[list[bytes], bool]:
    """In a worker thread: up to ``n`` chunks of ``size`` bytes of a regular file, read
    with one call (so the thread takes the GIL back once, not once per chunk), and
    whether the end of the file was reached (the read returned less than asked: a
    regular file's read is short only at its end)."""
    want = size * n
    data = fp.read(want)  # unbuffered: one system call, short only at the end
    more = data
    while more and len(data) < want:  # take the rest, if any
        more = fp.read(want - len(data))
        data += more
    return _split(data, size), len(data) < want


def _read_once(fp: Any, size: int, n: int) -> tuple[list[bytes], bool]:
    """In a worker thread: what one read of a file that is not a regular file (a FIFO,
    a pipe, a character device) returned, up to ``n`` chunks of ``size`` bytes. As
    Akka's FileSource (one ``FileChannel.read``), what arrived is emitted at once, not
    held until more comes (a writer waiting for an answer to what it wrote would wait
    for ever); only an empty read is the end."""
    data = fp.read(size * n)  # unbuffered: one system call, returns what is there
    return _split(data, size), not data


def _split(data: bytes, size: int) -> list[bytes]:
    if len(data) <= size:
        return [data] if data else []
    return [data[i : i + size] for i in range(0, len(data), size)]


# -- the sink ----------------------------------------------------------------------------
class FileSink(GraphStageWithMaterializedValue[SinkShape[Any], "asyncio.Future[IOResult]"]):
    """``FileIO.to_path``."""

    def __init__(self, path: str, append: bool, start_position: int = 0) -> None:
        self.shape = SinkShape(Inlet("FileSink.in"))
        self.path = path
        self.append = append
        self.start_position = start_position

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[IOResult]]:
        promise = ResultPromise(loop=asyncio.get_running_loop())
        return _FileSinkLogic(self.shape, self, promise), promise

    def __repr__(self) -> str:
        return f"FileSink({self.path!r})"


class _FileSinkLogic(_FileLogic, InHandler):
    """Writes each chunk (one write call in flight) before pulling the next. An
    upstream failure arriving while a call is in flight fails the stage once it
    returned, so the chunk being written counts; so does the stage's completion."""

    OP = "FileIO.to_path"

    def __init__(self, shape: SinkShape[Any], stage: FileSink, promise: ResultPromise) -> None:
        super().__init__(shape, stage.path, promise)
        self.stage = stage
        self.in_: Inlet[Any] = shape.in_
        self.set_handler(self.in_, self)
        self.finishing = False
        self.completed = False

    def pre_start(self) -> None:
        anyio = _anyio()
        # Keep going: upstream may complete or fail while a call is in flight.
        self.set_keep_going(True)
        start = self.stage.start_position
        if not start:
            mode = "ab" if self.stage.append else "wb"
            self._call(lambda: anyio.open_file(self.path, mode, buffering=0), self._opened)
            return
        path = self.path

        def open_at() -> Any:
            # Created if missing, never truncated; writing starts at byte ``start``
            # (past the end of the file: the gap reads as zero bytes, as a seek would).
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o666)
            try:
                os.lseek(fd, start, os.SEEK_SET)
                return open(fd, "wb", buffering=0)  # closed by the stage
            except BaseException:
                os.close(fd)
                raise

        async def open_() -> Any:
            return anyio.wrap_file(await anyio.to_thread.run_sync(open_at))

        self._call(open_, self._opened)

    def _opened(self, f: Any) -> None:
        self.file = f
        self._next()

    def _stop_failure(self) -> BaseException | None:
        if self.failure is None and not self.completed:
            return RuntimeError("the sink stopped before upstream completed")
        return self.failure

    def on_push(self) -> None:
        try:
            data = require_bytes(self.OP, self.grab(self.in_), self.count)
        except TypeError as e:
            self._failed(e)
            self.cancel(self.in_, e)
            return
        f = self.file

        async def write_all() -> None:
            view = memoryview(data)
            while view:
                n = await f.write(view)  # unbuffered: may write part of it
                view = view[n:]
                # Counted as it lands, so a result settled after the stage stopped
                # counts a write that was in flight (or failed part way).
                self.count += n

        self._call(write_all, self._written)

    def _written(self, _: None) -> None:
        self._next()

    def _next(self) -> None:
        """A call returned: fail or complete as upstream did meanwhile, else pull."""
        if self.failing is not None:
            self._failed(self.failing)
        elif self.finishing:
            self._finish()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.finishing = True
        if self.task is None:
            self._finish()

    def _finish(self) -> None:
        self.completed = True
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        if self.task is None:
            self._failed(exc)
        else:  # the chunk being written is not lost: fail once its write returned
            self.failing = exc


class FileIO:
    """Akka's ``FileIO``: sources and sinks of byte chunks on files (anyio worker
    threads; needs the ``io`` extra)."""

    @staticmethod
    def from_path(
        path: str | os.PathLike[str], chunk_size: int = 8192, start_position: int = 0
    ) -> Source[bytes, asyncio.Future[IOResult]]:
        """The bytes of the file at ``path``, in chunks of ``chunk_size`` bytes (the last
        one shorter), from byte ``start_position`` on. The file is opened when the
        stream starts; as Akka's, the source reads ahead of demand, in worker threads,
        up to ``Attributes.input_buffer`` max chunks (default 16) and at most 1 MiB
        (``READ_AHEAD_BYTES``) but always one chunk, half of them per call, so the
        disk works while downstream processes the chunks already read. A file that is
        not a regular file (a named pipe, a device) is read as Akka's: what one read
        returned is emitted at once (chunks of at most ``chunk_size`` bytes), and only an
        empty read ends it.

        Materializes an awaitable ``IOResult(count)`` of the bytes emitted, settled once
        the file is closed, also when downstream cancels early (chunks read ahead but
        not emitted do not count); an error (missing file, a directory, no permission,
        a read error) fails the stream with the ``OSError``, which names the path (a
        read error gets it as its ``filename``), and the awaitable with
        ``IOOperationIncompleteError(count)`` caused by it.

        *Emits when* a chunk was read and downstream pulls.
        *Backpressures when* downstream backpressures (reading stops once the chunks
        read ahead fill the read-ahead buffer).
        *Completes when* the end of the file was reached.
        *Fails when* opening or reading fails.
        """
        op = "FileIO.from_path"
        p = _check_path(op, path)
        require_positive_int(op, "chunk_size", chunk_size)
        if isinstance(start_position, bool) or not isinstance(start_position, int):
            raise ValueError(f"{op}: start_position must be an int >= 0, got {start_position!r}")
        if start_position < 0:
            raise ValueError(f"{op}: start_position must be an int >= 0, got {start_position!r}")
        _anyio()
        return Source.from_graph(FileSource(p, chunk_size, start_position))

    @staticmethod
    def to_path(
        path: str | os.PathLike[str], append: bool = False, start_position: int = 0
    ) -> Sink[bytes, asyncio.Future[IOResult]]:
        """Write the byte chunks to the file at ``path``: created if missing, truncated
        first unless ``append``. Each chunk is written (in a worker thread, unbuffered)
        before the next one is pulled.

        ``start_position`` (Akka's ``startPosition``): with a position above 0 the file
        is not truncated and the chunks are written from that byte offset on,
        overwriting what was there (bytes after the last one written stay; a position
        past the end of the file leaves a gap of zero bytes). A position equal to the
        file's size appends. It cannot be combined with ``append`` (an appending file
        writes at its end whatever the position).

        Materializes an awaitable ``IOResult(count)`` of the bytes written, completed
        once the file is closed after upstream completed; an upstream failure or a
        write error fails it with ``IOOperationIncompleteError(count)`` caused by it
        (the bytes before stay written). It is settled only once the file is closed,
        after the write in flight (if any) returned: ``count`` is what the file
        received, that write included (also when the materializer shuts down).

        *Backpressures when* a write is in progress.
        *Completes when* upstream completes and the last write finished.
        *Fails when* opening or writing fails, or upstream fails (once the write in
        progress finished).
        *Cancels when* opening or writing fails, or an element is not ``bytes``.
        """
        op = "FileIO.to_path"
        p = _check_path(op, path)
        if isinstance(start_position, bool) or not isinstance(start_position, int):
            raise ValueError(f"{op}: start_position must be an int >= 0, got {start_position!r}")
        if start_position < 0:
            raise ValueError(f"{op}: start_position must be an int >= 0, got {start_position!r}")
        if append and start_position:
            raise ValueError(
                f"{op}: append=True writes at the end of the file; it cannot be combined "
                f"with start_position={start_position!r}"
            )
        _anyio()
        return Sink.from_graph(FileSink(p, append, start_position))
