"""FileIO on real files (tmp_path): chunking, start position, reads only on demand,
IOResult counts, append/truncate, a gzip copy of a file, and each error (missing file,
a directory, no permission, upstream failure) naming the path."""

from __future__ import annotations

import asyncio
import os
import zlib
from pathlib import Path

import pytest

from reactive import Attributes, Keep, Materializer, Sink, Source
from reactive.io import Compression, FileIO, Framing, IOOperationIncompleteError, IOResult
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A test failure."""


async def test_reads_in_chunks_from_a_start_position(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "data.bin"
    data = os.urandom(10_000)
    path.write_bytes(data)
    io_result, chunks = (
        FileIO.from_path(path, chunk_size=4096).to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    assert [len(c) for c in await chunks] == [4096, 4096, 1808]
    assert b"".join(await chunks) == data
    assert await io_result == IOResult(10_000)
    io_result, chunks = (
        FileIO.from_path(str(path), chunk_size=3000, start_position=9000)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await chunks == [data[9000:]]
    assert (await io_result).count == 1000 and (await io_result).was_successful


async def test_empty_file_and_start_past_the_end(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert await FileIO.from_path(path).run_with(Sink.seq(), materializer) == []
    path.write_bytes(b"abc")
    assert await FileIO.from_path(path, start_position=10).run_with(Sink.seq(), materializer) == []


async def test_reads_only_on_demand_and_cancel_gives_the_count(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"x" * 100_000)
    io_result, sub = (
        FileIO.from_path(path, chunk_size=1000)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(2)
    assert await sub.expect_next_n(2) == [b"x" * 1000] * 2
    for _ in range(20):  # let the read-ahead happen
        await asyncio.sleep(0)
    assert not io_result.done()
    sub.cancel()
    assert await io_result == IOResult(2000)  # the bytes emitted, not those read ahead
    # A read already in a worker thread cannot be cancelled: the stage's task ends (and
    # the file closes) when it returns.
    deadline = asyncio.get_running_loop().time() + 10
    while materializer.running_tasks:
        assert asyncio.get_running_loop().time() < deadline, "the read in flight never ended"
        await asyncio.sleep(0.01)


def _file_position(path: Path) -> int | None:
    """The offset of this process's open file description of ``path`` (Linux /proc), or
    None once it is closed."""
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(path):
                with open(f"/proc/self/fdinfo/{fd}") as info:
                    return int(info.readline().split()[1])  # "pos:\t<offset>"
        except OSError:
            continue
    return None


@pytest.mark.skipif(not os.path.isdir("/proc/self/fdinfo"), reason="needs Linux /proc")
@pytest.mark.parametrize(
    ("chunk_size", "buffer", "ahead"),
    [(1000, None, 16), (1000, 3, 3), (1000, 1, 1), (600_000, None, 1)],
)
async def test_reads_ahead_at_most_the_input_buffer(
    tmp_path: Path, materializer: Materializer, chunk_size: int, buffer: int | None, ahead: int
) -> None:
    """Akka's read-ahead: at most ``input_buffer`` chunks (and 1 MiB, but one chunk at
    least) are read beyond what was emitted; the real file offset tells."""
    path = tmp_path / "big"
    data = os.urandom(4_000_000)  # more than the 6 chunks asked for
    path.write_bytes(data)
    source = FileIO.from_path(path, chunk_size=chunk_size)
    if buffer is not None:
        source = source.with_attributes(Attributes.input_buffer(buffer, buffer))
    io_result, sub = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    got = b""
    for demand in (1, 2, 3):
        sub.request(demand)
        for chunk in await sub.expect_next_n(demand):
            got += chunk
        for _ in range(50):  # let the read in flight finish
            await asyncio.sleep(0.001)
            position = _file_position(path)
            if position is not None and position > len(got):
                break
        assert position is not None
        assert len(got) < position <= len(got) + ahead * chunk_size
    assert got == data[: len(got)]
    sub.cancel()
    assert await io_result == IOResult(len(got))
    for _ in range(500):  # closed once the read in flight (if any) returned
        if _file_position(path) is None:
            break
        await asyncio.sleep(0.01)
    assert _file_position(path) is None


@pytest.mark.parametrize("chunk_size", [1, 7, 4096, 65536, 1 << 20])
async def test_read_ahead_keeps_every_byte_in_order(
    tmp_path: Path, materializer: Materializer, chunk_size: int
) -> None:
    path = tmp_path / "f"
    data = os.urandom(chunk_size * 20 + 3 if chunk_size < 4096 else 3_000_001)
    path.write_bytes(data)
    chunks, io_result = await asyncio.gather(
        *FileIO.from_path(path, chunk_size=chunk_size)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)[::-1]
    )
    assert b"".join(chunks) == data
    assert all(len(c) == chunk_size for c in chunks[:-1]) and 0 < len(chunks[-1]) <= chunk_size
    assert io_result == IOResult(len(data))


async def test_write_truncate_append_and_count(tmp_path: Path, materializer: Materializer) -> None:
    path = tmp_path / "out.txt"
    path.write_bytes(b"old content that goes away")
    chunks = [b"line %d\n" % i for i in range(1000)]
    result = await Source.from_iterable(chunks).run_with(FileIO.to_path(path), materializer)
    assert result == IOResult(sum(map(len, chunks)))
    assert path.read_bytes() == b"".join(chunks)
    result = await Source.single(b"more\n").run_with(
        FileIO.to_path(path, append=True), materializer
    )
    assert result.count == 5
    assert path.read_bytes() == b"".join(chunks) + b"more\n"
    await Source.empty().run_with(FileIO.to_path(tmp_path / "new"), materializer)
    assert (tmp_path / "new").read_bytes() == b""


async def test_copy_through_gzip_and_lines(tmp_path: Path, materializer: Materializer) -> None:
    src, gz = tmp_path / "in.txt", tmp_path / "in.txt.gz"
    text = "".join(f"{i} {'é' * (i % 7)}\n" for i in range(20_000))
    src.write_text(text, encoding="utf-8")
    written = await (
        FileIO.from_path(src, chunk_size=7001)
        .via(Compression.gzip(5))
        .run_with(FileIO.to_path(gz), materializer)
    )
    assert written.count == gz.stat().st_size
    assert zlib.decompress(gz.read_bytes(), 31) == src.read_bytes()
    lines = await (
        FileIO.from_path(gz, chunk_size=999)
        .via(Compression.gunzip(4096))
        .via(Framing.lines(100))
        .run_with(Sink.seq(), materializer)
    )
    assert lines == text.splitlines()


async def test_missing_file_directory_and_permission_name_the_path(
    tmp_path: Path, materializer: Materializer
) -> None:
    missing = tmp_path / "nope.bin"
    io_result, done = FileIO.from_path(missing).to_mat(Sink.seq(), Keep.both).run(materializer)
    with pytest.raises(FileNotFoundError, match="nope.bin"):
        await done
    with pytest.raises(
        IOOperationIncompleteError, match=r"FileIO.from_path.*nope.bin.*after 0"
    ) as ei:
        await io_result
    assert ei.value.count == 0 and isinstance(ei.value.__cause__, FileNotFoundError)

    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        await FileIO.from_path(tmp_path).run_with(Sink.seq(), materializer)
    with pytest.raises(IOOperationIncompleteError, match="IsADirectoryError.*" + str(tmp_path)):
        await Source.single(b"x").run_with(FileIO.to_path(tmp_path), materializer)
    with pytest.raises(IOOperationIncompleteError, match="FileNotFoundError.*no-dir") as ei:
        await Source.single(b"x").run_with(FileIO.to_path(tmp_path / "no-dir" / "f"), materializer)
    assert isinstance(ei.value.__cause__, FileNotFoundError)

    locked = tmp_path / "locked"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    try:
        if not os.access(locked, os.R_OK):
            with pytest.raises(PermissionError, match="locked"):
                await FileIO.from_path(locked).run_with(Sink.seq(), materializer)
        else:  # root ignores file modes; a read-only kernel file refuses it still
            target = Path("/sys/kernel/notes")
            if not target.exists():
                pytest.skip("running as root without /sys/kernel/notes")
            with pytest.raises(IOOperationIncompleteError, match="PermissionError.*notes"):
                await Source.single(b"x").run_with(FileIO.to_path(target), materializer)
    finally:
        locked.chmod(0o600)


async def test_upstream_failure_keeps_what_was_written(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "partial"
    pub, result = TestSource.probe().to_mat(FileIO.to_path(path), Keep.both).run(materializer)
    await pub.expect_request()
    pub.send_next(b"12345")
    await pub.expect_request()
    pub.send_error(Boom("upstream broke"))
    with pytest.raises(IOOperationIncompleteError, match="after 5 bytes") as ei:
        await result
    assert ei.value.count == 5 and isinstance(ei.value.__cause__, Boom)
    assert path.read_bytes() == b"12345"


async def test_sink_writes_one_chunk_at_a_time(tmp_path: Path, materializer: Materializer) -> None:
    """Back pressure: the next chunk is requested only after the previous was written."""
    path = tmp_path / "slow"
    pub, result = TestSource.probe().to_mat(FileIO.to_path(path), Keep.both).run(materializer)
    assert await pub.expect_request() == 1
    pub.send_next(b"a" * 1000)
    assert await pub.expect_request() == 1
    assert path.read_bytes() == b"a" * 1000  # written before the next request
    pub.send_complete()
    assert await result == IOResult(1000)


async def test_non_bytes_element_fails_the_sink(tmp_path: Path, materializer: Materializer) -> None:
    with pytest.raises(IOOperationIncompleteError, match=r"\[FileIO.to_path\].*after 0") as ei:
        await Source.single("text").run_with(FileIO.to_path(tmp_path / "t"), materializer)
    assert isinstance(ei.value.__cause__, TypeError)
    assert "[FileIO.to_path] expects bytes-like elements, got str" in str(ei.value.__cause__)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="chunk_size"):
        FileIO.from_path("x", chunk_size=0)
    with pytest.raises(ValueError, match="start_position"):
        FileIO.from_path("x", start_position=-1)
    with pytest.raises(TypeError, match="path must be"):
        FileIO.to_path(42)  # type: ignore[arg-type]


async def test_materializer_shutdown_fails_the_result(tmp_path: Path) -> None:
    path = tmp_path / "big"
    path.write_bytes(b"y" * 10_000)
    mat = Materializer()
    io_result, sub = (
        FileIO.from_path(path, chunk_size=100).to_mat(TestSink.probe(), Keep.both).run(mat)
    )
    sub.request(1)
    await sub.expect_next()
    await mat.shutdown()
    with pytest.raises(IOOperationIncompleteError, match="after 100 bytes"):
        await io_result


def _evict(path: Path, start: int = 0) -> bool:
    """Drop the file's pages from ``start`` on out of the page cache; False where the
    file system keeps them (then a ``RWF_NOWAIT`` read still finds them)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, start, 0, os.POSIX_FADV_DONTNEED)
        try:
            os.preadv(fd, [bytearray(4096)], start, os.RWF_NOWAIT)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


@pytest.mark.skipif(not hasattr(os, "RWF_NOWAIT"), reason="needs preadv's RWF_NOWAIT (Linux)")
@pytest.mark.parametrize("evict_from", [None, 0, 1 << 19])
@pytest.mark.parametrize("start", [0, 5])
async def test_cached_pages_are_read_on_the_loop_others_in_threads(
    tmp_path: Path,
    materializer: Materializer,
    monkeypatch: pytest.MonkeyPatch,
    evict_from: int | None,
    start: int,
) -> None:
    """Pages in the page cache are read on the event loop (``RWF_NOWAIT``), the rest in
    worker threads, and the two interleave without losing or repeating a byte: the
    whole file cached (a thread read only to find the end), none of it (the first read
    is a thread's), or the first part only (no thread reads it); chunks all of
    ``chunk_size`` but the last."""
    from reactive.io import files

    path = tmp_path / "f"
    data = os.urandom(1_000_003)
    path.write_bytes(data)
    if evict_from is not None and not _evict(path, evict_from):
        pytest.skip("this file system keeps the pages cached")
    thread_reads: list[int] = []
    real = files._read_chunks

    def spy(fp: object, size: int, n: int) -> tuple[list[bytes], bool]:
        chunks, eof = real(fp, size, n)
        thread_reads.append(sum(map(len, chunks)))
        return chunks, eof

    monkeypatch.setattr(files, "_read_chunks", spy)
    io_result, chunks = (
        FileIO.from_path(path, chunk_size=10_000, start_position=start)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    got = await chunks
    assert b"".join(got) == data[start:]
    assert {len(c) for c in got[:-1]} == {10_000}
    assert await io_result == IOResult(len(data) - start)
    by_threads = sum(thread_reads)
    if evict_from is None:
        assert by_threads < 10_000  # only the tail, shorter than a chunk
    else:  # (the kernel's read-ahead may cache what follows a thread's read)
        assert thread_reads[0 if evict_from == 0 else -1] > 0
        assert 0 < by_threads <= len(data) - evict_from + 10_000
