"""StreamConverters' bridges to blocking Python IO, on real files and pipes with threads
driving the blocking side: from_input_stream / to_output_stream (worker threads, the
IOResult, closing), as_input_stream / as_output_stream / as_iterator (the blocking
objects: back pressure through a bounded buffer, timeouts, closing cancels or completes,
failures after the data before them), and the argument checks."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import threading
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Attributes, Keep, Materializer, Sink, Source
from reactive.io import (
    FileIO,
    IOOperationIncompleteError,
    IOResult,
    IOStreamError,
    StreamConverters,
)
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from pathlib import Path


class Boom(Exception):
    """A test failure."""


class Tracked:
    """Opens a real file and remembers the object, to check it was closed."""

    def __init__(self, path: Path, mode: str) -> None:
        self.path, self.mode = path, mode
        self.opened: list[Any] = []

    def __call__(self) -> Any:
        f = open(self.path, self.mode)  # noqa: SIM115 - the stage closes it
        self.opened.append(f)
        return f

    @property
    def closed(self) -> bool:
        return len(self.opened) == 1 and self.opened[0].closed


def fail_at(x: Any, bad: Any, message: str) -> Any:
    if x == bad:
        raise Boom(message)
    return x


# -- from_input_stream ----------------------------------------------------------------------
async def test_from_input_stream_reads_a_file_in_chunks_and_closes_it(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "data.bin"
    data = os.urandom(10_000)
    path.write_bytes(data)
    opener = Tracked(path, "rb")
    result, chunks = (
        StreamConverters.from_input_stream(opener, chunk_size=4096)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    got = await chunks
    assert b"".join(got) == data and max(map(len, got)) <= 4096
    assert await result == IOResult(10_000)
    assert opener.closed


async def test_from_input_stream_cancelled_counts_what_was_emitted_and_closes(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 10_000)
    opener = Tracked(path, "rb")
    result, first = (
        StreamConverters.from_input_stream(opener, chunk_size=1000)
        .take(2)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert [len(c) for c in await first] == [1000, 1000]
    assert await result == IOResult(2000)
    assert opener.closed


async def test_from_input_stream_emits_what_a_pipe_has_without_waiting_for_a_chunk(
    materializer: Materializer,
) -> None:
    r, w = os.pipe()
    result, sub = (
        StreamConverters.from_input_stream(lambda: os.fdopen(r, "rb"), chunk_size=65536)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    os.write(w, b"hello")
    assert await sub.expect_next() == b"hello"  # not held back until 64 KiB came
    os.close(w)
    sub.request(1)
    await sub.expect_complete()
    # Settled once the pipe was closed in its worker thread (the stage's last task).
    assert await result == IOResult(5)


async def test_from_input_stream_errors_fail_the_stream_and_the_result(
    tmp_path: Path, materializer: Materializer
) -> None:
    def missing() -> Any:
        return open(tmp_path / "missing", "rb")

    result, done = (
        StreamConverters.from_input_stream(missing).to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    with pytest.raises(FileNotFoundError, match="missing"):
        await done
    with pytest.raises(IOOperationIncompleteError) as ei:
        await result
    assert ei.value.count == 0 and isinstance(ei.value.__cause__, FileNotFoundError)

    path = tmp_path / "text.txt"
    path.write_text("text")
    opener = Tracked(path, "r")
    result, done = (
        StreamConverters.from_input_stream(opener).to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    with pytest.raises(TypeError, match=r"from_input_stream\] read\(\) must return bytes"):
        await done
    with pytest.raises(IOOperationIncompleteError):
        await result  # settled once the file was closed
    assert opener.closed


# -- to_output_stream -----------------------------------------------------------------------
async def test_to_output_stream_writes_a_file_and_closes_it(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "out.bin"
    opener = Tracked(path, "wb")
    chunks = [os.urandom(n) for n in (1, 5000, 0, 70_000)]
    result = await Source.from_iterable(chunks).run_with(
        StreamConverters.to_output_stream(opener), materializer
    )
    assert result == IOResult(75_001)
    assert opener.closed
    assert path.read_bytes() == b"".join(chunks)


async def test_to_output_stream_auto_flush_delivers_each_chunk_at_once(
    materializer: Materializer,
) -> None:
    r, w = os.pipe()
    reader = os.fdopen(r, "rb", buffering=0)
    pub, result = (
        TestSource.probe()
        .to_mat(
            StreamConverters.to_output_stream(lambda: os.fdopen(w, "wb"), auto_flush=True),
            Keep.both,
        )
        .run(materializer)
    )
    await pub.expect_request()
    pub.send_next(b"first")
    # Buffered by the BufferedWriter unless flushed: the pipe would stay empty.
    assert await asyncio.to_thread(reader.read, 100) == b"first"
    await pub.expect_request()
    pub.send_complete()
    assert await result == IOResult(5)
    assert await asyncio.to_thread(reader.read, 100) == b""  # closed: end of the pipe
    reader.close()


async def test_to_output_stream_upstream_failure_keeps_what_was_written(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "out.bin"
    opener = Tracked(path, "wb")
    pub, result = (
        TestSource.probe()
        .to_mat(StreamConverters.to_output_stream(opener), Keep.both)
        .run(materializer)
    )
    await pub.expect_request()
    pub.send_next(b"abc")
    await pub.expect_request()
    pub.send_error(Boom("upstream"))
    with pytest.raises(IOOperationIncompleteError, match="to_output_stream") as ei:
        await result
    assert ei.value.count == 3 and isinstance(ei.value.__cause__, Boom)
    assert opener.closed and path.read_bytes() == b"abc"


async def test_to_output_stream_rejects_an_element_that_is_not_bytes(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "out.bin"
    result = Source.from_iterable([b"ok", "text"]).run_with(
        StreamConverters.to_output_stream(Tracked(path, "wb")),  # type: ignore[arg-type]
        materializer,
    )
    with pytest.raises(IOOperationIncompleteError) as ei:
        await result
    assert isinstance(ei.value.__cause__, TypeError)
    assert "to_output_stream] expects bytes-like elements, got str" in str(ei.value.__cause__)
    assert path.read_bytes() == b"ok"


# -- as_input_stream ------------------------------------------------------------------------
async def test_as_input_stream_copies_a_file_in_another_thread(
    tmp_path: Path, materializer: Materializer
) -> None:
    src, dst = tmp_path / "src.bin", tmp_path / "dst.bin"
    data = os.urandom(300_000)
    src.write_bytes(data)
    reader = FileIO.from_path(src, chunk_size=7000).run_with(
        StreamConverters.as_input_stream(), materializer
    )
    assert isinstance(reader, io.RawIOBase) and reader.readable()

    def copy() -> None:
        with reader, open(dst, "wb") as out:
            shutil.copyfileobj(io.BufferedReader(reader), out)

    await asyncio.to_thread(copy)
    assert dst.read_bytes() == data


async def test_as_input_stream_text_lines_through_a_wrapper(materializer: Materializer) -> None:
    reader = Source.from_iterable([b"one\ntw", b"", b"o\nthr", b"ee\n"]).run_with(
        StreamConverters.as_input_stream(), materializer
    )

    def lines() -> list[str]:
        with io.TextIOWrapper(io.BufferedReader(reader), encoding="utf-8") as text:
            return [line.rstrip("\n") for line in text]

    assert await asyncio.to_thread(lines) == ["one", "two", "three"]


async def test_as_input_stream_backpressures_with_a_bounded_buffer(
    materializer: Materializer,
) -> None:
    pub, reader = (
        TestSource.probe()
        .to_mat(
            StreamConverters.as_input_stream().with_attributes(Attributes.input_buffer(2, 2)),
            Keep.both,
        )
        .run(materializer)
    )
    for i in range(2):
        await pub.expect_request()
        pub.send_next(b"%d" % i)
    await pub.expect_no_message(0.05)  # the buffer is full: no more demand
    assert await asyncio.to_thread(reader.read, 10) == b"0"
    await pub.expect_request()  # room again
    pub.send_next(b"2")
    pub.send_complete()
    assert await asyncio.to_thread(reader.readall) == b"12"
    assert await asyncio.to_thread(reader.read, 10) == b""
    reader.close()


async def test_as_input_stream_read_timeout_then_data(materializer: Materializer) -> None:
    pub, reader = (
        TestSource.probe()
        .to_mat(StreamConverters.as_input_stream(read_timeout=0.05), Keep.both)
        .run(materializer)
    )
    with pytest.raises(TimeoutError, match=r"as_input_stream\] no bytes came within"):
        await asyncio.to_thread(reader.read, 10)
    await pub.expect_request()  # the stream goes on after a timeout
    pub.send_next(b"late")
    assert await asyncio.to_thread(reader.read, 10) == b"late"
    reader.close()
    await pub.expect_cancellation()


async def test_as_input_stream_failure_comes_after_the_data(materializer: Materializer) -> None:
    reader = (
        Source.from_iterable([b"a", b"b", b"c"])
        .map(lambda x: fail_at(x, b"c", "late failure"))
        .run_with(StreamConverters.as_input_stream(), materializer)
    )

    def read_all() -> tuple[list[bytes], BaseException]:
        got = []
        try:
            while True:
                got.append(reader.read(10))
        except IOStreamError as e:
            return got, e

    got, err = await asyncio.to_thread(read_all)
    assert got == [b"a", b"b"]
    assert isinstance(err.__cause__, Boom) and "late failure" in str(err)
    assert "as_input_stream] the stream failed" in str(err)
    reader.close()


async def test_closing_the_reader_cancels_the_stream(materializer: Materializer) -> None:
    pub, reader = (
        TestSource.probe().to_mat(StreamConverters.as_input_stream(), Keep.both).run(materializer)
    )
    await pub.expect_request()
    pub.send_next(b"x")
    assert await asyncio.to_thread(reader.read, 10) == b"x"
    reader.close()
    await pub.expect_cancellation()
    with pytest.raises(ValueError, match="closed file"):
        reader.read(10)


async def test_reading_on_the_event_loop_thread_raises(materializer: Materializer) -> None:
    reader = Source.single(b"x").run_with(StreamConverters.as_input_stream(), materializer)
    with pytest.raises(RuntimeError, match=r"read\(\) blocks: call it from another thread"):
        reader.read(1)
    reader.close()


# -- as_output_stream -----------------------------------------------------------------------
async def test_as_output_stream_writes_from_a_thread_into_a_file(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "out.txt"
    writer, result = (
        StreamConverters.as_output_stream()
        .to_mat(FileIO.to_path(path), Keep.both)
        .run(materializer)
    )
    assert isinstance(writer, io.RawIOBase) and writer.writable()

    def produce() -> None:
        with io.TextIOWrapper(io.BufferedWriter(writer), encoding="utf-8") as text:
            for i in range(1000):
                text.write(f"line {i}\n")

    await asyncio.to_thread(produce)  # closing the wrapper closes the writer
    expected = "".join(f"line {i}\n" for i in range(1000))
    assert (await result).count == len(expected)
    assert path.read_text() == expected


async def test_as_output_stream_writer_blocks_on_a_full_buffer(
    materializer: Materializer,
) -> None:
    writer, sub = (
        StreamConverters.as_output_stream()
        .with_attributes(Attributes.input_buffer(2, 2))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    wrote_third = threading.Event()

    def produce() -> None:
        writer.write(b"0")
        writer.write(b"1")
        writer.write(b"2")  # blocks: the buffer holds 2 and nothing was pulled
        wrote_third.set()
        writer.close()

    producing = asyncio.ensure_future(asyncio.to_thread(produce))
    await sub.expect_no_message(0.1)
    assert not wrote_third.is_set()
    sub.request(1)
    assert await sub.expect_next() == b"0"
    await producing  # the third write went through once one was taken
    assert wrote_third.is_set()
    sub.request(5)
    await sub.expect_next(b"1", b"2")
    await sub.expect_complete()


async def test_as_output_stream_write_timeout(materializer: Materializer) -> None:
    writer, sub = (
        StreamConverters.as_output_stream(write_timeout=0.05)
        .with_attributes(Attributes.input_buffer(1, 1))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )

    def produce() -> None:
        writer.write(b"a")
        writer.write(b"b")

    with pytest.raises(TimeoutError, match=r"as_output_stream\] the stream took no more bytes"):
        await asyncio.to_thread(produce)
    writer.close()
    sub.request(5)
    await sub.expect_next(b"a")
    await sub.expect_complete()


async def test_flush_waits_until_downstream_took_the_bytes(materializer: Materializer) -> None:
    writer, sub = (
        StreamConverters.as_output_stream().to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    flushed = threading.Event()

    def produce() -> None:
        writer.write(b"abc")
        writer.flush()
        flushed.set()

    producing = asyncio.ensure_future(asyncio.to_thread(produce))
    await sub.expect_no_message(0.1)
    assert not flushed.is_set()
    sub.request(1)
    assert await sub.expect_next() == b"abc"
    await producing
    assert flushed.is_set()
    writer.close()
    sub.request(1)
    await sub.expect_complete()


async def test_cancelling_the_source_fails_a_blocked_write(materializer: Materializer) -> None:
    writer, sub = (
        StreamConverters.as_output_stream()
        .with_attributes(Attributes.input_buffer(1, 1))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    blocked = threading.Event()

    def produce() -> None:
        writer.write(b"a")  # fills the buffer
        blocked.set()
        writer.write(b"b")  # waits for room, until the cancellation wakes it

    producing = asyncio.ensure_future(asyncio.to_thread(produce))
    await asyncio.to_thread(blocked.wait)
    sub.cancel()
    with pytest.raises(IOStreamError, match=r"as_output_stream\] cannot write: .*cancelled"):
        await producing
    writer.close()


async def test_writing_on_the_event_loop_thread_raises(materializer: Materializer) -> None:
    writer, done = (
        StreamConverters.as_output_stream().to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    with pytest.raises(RuntimeError, match=r"write\(\) blocks"):
        writer.write(b"x")
    writer.close()  # closing does not block: allowed anywhere
    assert await done == []


# -- as_iterator ----------------------------------------------------------------------------
async def test_as_iterator_in_another_thread(materializer: Materializer) -> None:
    iterator = (
        Source.from_iterable(range(100))
        .with_attributes(Attributes.input_buffer(4, 4))
        .run_with(StreamConverters.as_iterator(), materializer)
    )
    assert await asyncio.to_thread(list, iterator) == list(range(100))


async def test_as_iterator_raises_the_failure_after_the_elements(
    materializer: Materializer,
) -> None:
    iterator = (
        Source.from_iterable([1, 2, 3])
        .map(lambda x: fail_at(x, 3, "bad"))
        .run_with(StreamConverters.as_iterator(), materializer)
    )

    def drain() -> tuple[list[int], BaseException | None]:
        got = []
        try:
            for x in iterator:
                got.append(x)
        except Boom as e:
            return got, e
        return got, None

    got, err = await asyncio.to_thread(drain)
    assert got == [1, 2] and isinstance(err, Boom)
    assert await asyncio.to_thread(list, iterator) == []  # raised once, then ended


async def test_closing_the_iterator_cancels(materializer: Materializer) -> None:
    pub, iterator = (
        TestSource.probe().to_mat(StreamConverters.as_iterator(), Keep.both).run(materializer)
    )
    await pub.expect_request()
    pub.send_next("a")
    with iterator:
        assert await asyncio.to_thread(next, iterator) == "a"
    await pub.expect_cancellation()
    with pytest.raises(RuntimeError, match=r"next\(\) blocks"):
        iter(Source.single(1).run_with(StreamConverters.as_iterator(), materializer)).__next__()


def test_bad_arguments_are_rejected_naming_the_operator() -> None:
    with pytest.raises(TypeError, match=r"from_input_stream: create must be a function"):
        StreamConverters.from_input_stream(io.BytesIO(b"x"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"from_input_stream: chunk_size must be a positive"):
        StreamConverters.from_input_stream(lambda: io.BytesIO(), chunk_size=0)
    with pytest.raises(TypeError, match=r"to_output_stream: create must be a function"):
        StreamConverters.to_output_stream(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"as_input_stream: read_timeout .* got 0"):
        StreamConverters.as_input_stream(read_timeout=0)
    with pytest.raises(ValueError, match=r"as_output_stream: write_timeout .* got -1"):
        StreamConverters.as_output_stream(write_timeout=-1)


async def test_as_input_stream_an_element_that_is_not_bytes_fails_the_reader(
    materializer: Materializer,
) -> None:
    reader = Source.from_iterable([b"ok", "text"]).run_with(
        StreamConverters.as_input_stream(),  # type: ignore[arg-type]
        materializer,
    )

    def read_all() -> tuple[bytes, BaseException]:
        got = b""
        try:
            while chunk := reader.read(10):
                got += chunk
        except IOStreamError as e:
            return got, e
        raise AssertionError("no failure")

    got, err = await asyncio.to_thread(read_all)
    assert got == b"ok" and isinstance(err.__cause__, TypeError)
    assert "expects bytes-like elements, got str 'text' at stream byte position 2" in str(err)
    reader.close()
