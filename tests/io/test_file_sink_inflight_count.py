"""FileIO.to_path settles its result only after the write in flight ended and the file
was closed, and counts that write: ``count`` is what the file holds (Akka's FileSink
writes every element it received before it reports).

The deterministic gate is a named pipe read by the test: a chunk larger than the pipe's
buffer (64 KiB on Linux) blocks the worker thread's write until the test reads it, so the
failure (or the shutdown) provably arrives while the write is in flight."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

import pytest

from reactive import AbruptTerminationError, Keep, Materializer, Source, SourceQueue
from reactive.io import FileIO, IOOperationIncompleteError, IOResult

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

BIG = 1 << 20  # far beyond a pipe's buffer: its write blocks until the test reads it


class Boom(Exception):
    """A test failure."""


class _Pipe:
    """A named pipe the sink writes to, read (non-blocking) by the test on the loop.

    Opened for reading first, so the sink's open for writing does not block."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)

    async def _readable(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self.fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(self.fd)

    async def read_some(self, limit: int = BIG) -> bytes:
        """At least one byte (b"" once the writer closed the pipe)."""
        while True:
            await self._readable()
            try:
                return os.read(self.fd, limit)
            except BlockingIOError:
                continue

    async def read_exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            more = await self.read_some(n - len(data))
            assert more, "the writer closed the pipe early"
            data += more
        return data

    async def drain(self) -> int:
        """Read until the writer closed the pipe; the number of bytes read."""
        n = 0
        while more := await self.read_some():
            n += len(more)
        return n

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[_Pipe]:
    if not hasattr(os, "mkfifo"):
        pytest.skip("needs named pipes")
    p = _Pipe(tmp_path / "out")
    yield p
    p.close()


async def _write_in_flight(
    pipe: _Pipe, mat: Materializer | None = None
) -> tuple[SourceQueue, asyncio.Future[IOResult]]:
    """A FileIO.to_path sink on ``pipe`` that wrote 10 bytes and is now blocked writing
    BIG more; its queue and its result."""
    q, result = Source.queue(4).to_mat(FileIO.to_path(pipe.path), Keep.both).run(mat)
    await q.offer(b"a" * 10)
    assert await pipe.read_exactly(10) == b"a" * 10
    await q.offer(os.urandom(BIG))
    # Bytes of the big chunk arrive: its write is in the worker thread, blocked on the
    # full pipe until the test reads on.
    assert await pipe.read_some(1) != b""
    return q, result


async def _idle() -> None:
    # Let the failure or the abort reach the sink (it would settle the result then).
    for _ in range(20):
        await asyncio.sleep(0)


async def test_upstream_failure_counts_the_write_in_flight(pipe: _Pipe) -> None:
    q, result = await _write_in_flight(pipe)
    q.fail(Boom("upstream broke"))
    await _idle()
    assert not result.done()
    received = 10 + 1 + await pipe.drain()  # EOF: the sink closed the file
    with pytest.raises(IOOperationIncompleteError) as info:
        await result
    assert received == 10 + BIG
    assert info.value.count == received
    assert isinstance(info.value.__cause__, Boom)
    assert f"failed after {received} bytes" in str(info.value)


async def test_shutdown_counts_the_write_in_flight(pipe: _Pipe) -> None:
    mat = Materializer(name="inflight")
    _, result = await _write_in_flight(pipe, mat)
    shutdown = asyncio.ensure_future(mat.shutdown())
    await _idle()
    assert not result.done()
    received = 10 + 1 + await pipe.drain()
    await shutdown
    # Settled by the time the shutdown returned: it waited for the write in flight.
    assert result.done()
    err = result.exception()
    assert isinstance(err, IOOperationIncompleteError)
    assert received == 10 + BIG
    assert err.count == received
    assert isinstance(err.__cause__, AbruptTerminationError)


async def test_count_is_the_file_size_when_the_result_settles(tmp_path: Path) -> None:
    # The repro on a regular file: whenever the failure arrives, the result settles
    # once the file is closed, with the bytes it holds.
    path = tmp_path / "out.bin"
    q, result = Source.queue(4).to_mat(FileIO.to_path(path), Keep.both).run()
    await q.offer(b"a" * 10)
    while not path.exists() or path.stat().st_size < 10:
        await asyncio.sleep(0)
    await q.offer(os.urandom(16 << 20))
    while path.stat().st_size <= 10:  # the big write started
        await asyncio.sleep(0)
    q.fail(Boom("upstream broke"))
    with pytest.raises(IOOperationIncompleteError) as info:
        await result
    assert info.value.count == path.stat().st_size == 10 + (16 << 20)
