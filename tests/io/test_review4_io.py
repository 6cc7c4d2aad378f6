"""Review 4 of the IO bridges, on real pipes and sockets:

- ``StreamConverters.from_input_stream`` / ``to_output_stream`` whose worker-thread call
  is blocked when the materializer shuts down: the shutdown stops waiting after its
  ``shutdown_timeout`` (a WARNING naming the stage), the ``IOResult`` is failed then with
  the abort, and the object is closed once the blocked call returned.
- ``Tcp.bind_and_handle`` with a handler whose materialization raises: the connection is
  closed and the server's stream fails (``when_unbound``) naming the operator and peer.
- ``StreamConverters.as_iterator``: dropped without ``close()`` it cancels its stream;
  closed while another thread is blocked in ``next()``, that thread ends the iteration.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from reactive import AbruptTerminationError, Flow, Keep, Materializer, Sink, Source
from reactive.io import IOOperationIncompleteError, StreamConverters, StreamTcpError, Tcp
from reactive.testkit import TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


async def _until(check: Callable[[], bool], what: str) -> None:
    """Poll ``check`` on the loop (the state changes in a worker thread), up to 10 s."""
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _closed(f: Any) -> None:
    """Wait until the stage closed ``f`` and its closing task ended."""
    await _until(lambda: f.closed, "the object was closed")
    await _until(
        lambda: not any(t.get_name().endswith(": close") for t in asyncio.all_tasks()),
        "the closing task ended",
    )


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# -- 1. a blocked worker-thread call at shutdown ------------------------------------------
async def test_shutdown_during_a_blocked_read_fails_the_result_then_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r, w = os.pipe()  # nothing is written: the read blocks in its worker thread
    opened: list[Any] = []

    class Reading:
        """The pipe's file object, telling when a read has started (opened is not
        enough: a shutdown between the open and the read leaves no read behind)."""

        def __init__(self, f: Any) -> None:
            self.f = f
            self.started = threading.Event()

        def read(self, n: int = -1) -> bytes:
            self.started.set()
            data: bytes = self.f.read1(n)
            return data

        def close(self) -> None:
            self.f.close()

        @property
        def closed(self) -> bool:
            return bool(self.f.closed)

    def create() -> Any:
        f = Reading(os.fdopen(r, "rb"))
        opened.append(f)
        return f

    mat = Materializer(name="blocked-read", shutdown_timeout=0.2)
    pub_seq: Any = StreamConverters.from_input_stream(create).to_mat(Sink.seq(), Keep.both)
    result, seq = pub_seq.run(mat)
    await _until(lambda: bool(opened) and opened[0].started.is_set(), "the read started")
    try:
        with caplog.at_level(logging.WARNING, logger="reactive"):
            await mat.shutdown()
        # The shutdown gave up on the read and said which stage it left behind.
        assert "StreamConverters.from_input_stream" in caplog.text
        with pytest.raises(AbruptTerminationError):
            await seq
        assert result.done()  # failed when the shutdown stopped waiting: no hang
        with pytest.raises(IOOperationIncompleteError, match="failed after 0 bytes") as info:
            await result
        assert info.value.count == 0
        assert isinstance(info.value.__cause__, AbruptTerminationError)
        assert not opened[0].closed  # the read still uses it
        os.write(w, b"x")  # the read returns: the object is closed then
        await _closed(opened[0])
        assert not _fd_open(r)
    finally:
        os.close(w)


async def test_shutdown_during_a_blocked_write_fails_the_result_then_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    r, w = os.pipe()
    opened: list[Any] = []

    def create() -> Any:
        f = os.fdopen(w, "wb", buffering=0)
        opened.append(f)
        return f

    mat = Materializer(name="blocked-write", shutdown_timeout=0.2)
    # One chunk far beyond the pipe's buffer: its write blocks until the pipe is read.
    result = Source.single(b"y" * (4 << 20)).run_with(
        StreamConverters.to_output_stream(create), mat
    )
    try:
        # A byte arrives: the write is in its worker thread, blocked on the full pipe.
        assert await asyncio.to_thread(os.read, r, 1) == b"y"
        with caplog.at_level(logging.WARNING, logger="reactive"):
            await mat.shutdown()
        assert "StreamConverters.to_output_stream" in caplog.text
        assert result.done()
        err = result.exception()
        assert isinstance(err, IOOperationIncompleteError)
        assert isinstance(err.__cause__, AbruptTerminationError)
        assert not opened[0].closed

        def drain() -> int:  # until EOF: the writer was closed after its write returned
            n = 1
            while chunk := os.read(r, 1 << 20):
                n += len(chunk)
            return n

        assert await asyncio.to_thread(drain) == 4 << 20
        await _closed(opened[0])
    finally:
        os.close(r)


# -- 2. Tcp.bind_and_handle with a handler that cannot be materialized ---------------------
async def test_bind_and_handle_closes_a_connection_it_cannot_handle_and_fails_the_server(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(_: Any) -> Any:
        raise ZeroDivisionError("no handler today")

    handler = Flow[bytes]().map_materialized_value(broken)
    binding = await Tcp.bind_and_handle(handler, "127.0.0.1", 0)
    port = binding.local_address[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    client = writer.get_extra_info("sockname")
    try:
        # The accepted connection is closed (a reset, or EOF), not left open.
        try:
            data = await asyncio.wait_for(reader.read(), 10)
        except ConnectionResetError:
            data = b""
        assert data == b""
        # The server's stream failed with an error naming the operator and the peer.
        with pytest.raises(StreamTcpError) as info:
            await asyncio.wait_for(asyncio.shield(binding.when_unbound), 10)
        message = str(info.value)
        assert "[Tcp.bind_and_handle]" in message and repr(tuple(client)) in message
        assert isinstance(info.value.__cause__, ZeroDivisionError)
        with pytest.raises(ConnectionRefusedError):  # the server unbound
            await asyncio.open_connection("127.0.0.1", port)
    finally:
        writer.close()
    # Observed through when_unbound: nothing reported as unobserved (from an unnamed
    # foreach sink) once everything was collected.
    del binding, info
    gc.collect()
    await asyncio.sleep(0)
    assert "nobody observed" not in caplog.text and "foreach" not in caplog.text


# -- 3. as_iterator: collected without close(), closed while another thread waits ----------
async def test_an_iterator_dropped_without_close_cancels_its_stream(
    materializer: Materializer,
) -> None:
    done, iterator = (
        Source.repeat(1)
        .watch_termination(Keep.right)
        .to_mat(StreamConverters.as_iterator(), Keep.both)
        .run(materializer)
    )
    assert await asyncio.to_thread(next, iterator) == 1
    del iterator
    gc.collect()
    await asyncio.wait_for(done, 10)  # cancelled: the stream ended


def _blocked_in(cond: threading.Condition) -> bool:
    return bool(cond._waiters)  # type: ignore[attr-defined]


class _InThread:
    """Runs ``fn`` in a thread, keeping what it returned or raised."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.outcome: Any = None
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.outcome = fn()
        except BaseException as e:
            self.outcome = e

    async def join(self) -> Any:
        await asyncio.to_thread(self.thread.join, 10)
        assert not self.thread.is_alive()
        return self.outcome


async def test_closing_the_iterator_ends_a_next_blocked_in_another_thread(
    materializer: Materializer,
) -> None:
    pub, iterator = (
        TestSource.probe().to_mat(StreamConverters.as_iterator(), Keep.both).run(materializer)
    )
    await pub.expect_request()
    waiting = _InThread(lambda: next(iterator))
    await _until(lambda: _blocked_in(iterator._h.cond), "next() waits")
    iterator.close()
    assert isinstance(await waiting.join(), StopIteration)  # as a closed generator
    await pub.expect_cancellation()
    assert await asyncio.to_thread(list, iterator) == []  # and later: ended too


async def test_closing_the_reader_fails_a_read_blocked_in_another_thread_as_closed(
    materializer: Materializer,
) -> None:
    pub, reader = (
        TestSource.probe()
        .to_mat(StreamConverters.as_input_stream(read_timeout=None), Keep.both)
        .run(materializer)
    )
    await pub.expect_request()
    waiting = _InThread(lambda: reader.read(10))
    await _until(lambda: _blocked_in(reader._h.cond), "read() waits")  # type: ignore[attr-defined]
    reader.close()
    err = await waiting.join()
    assert isinstance(err, ValueError) and "closed file" in str(err)  # as a later read
    await pub.expect_cancellation()
    with pytest.raises(ValueError, match="closed file"):
        reader.read(10)
