"""Stream IO benchmarks (``reactive.io``): counting the lines of a file through
``FileIO`` and ``Framing``, and a framed TCP echo over loopback, against the plain Python
and asyncio streams code people write by hand.

Listed in ``benchmarks.runner.BENCHMARK_MODULES``: ``make bench`` runs them with the others.
"""

from __future__ import annotations

import asyncio
import os
import struct
import tempfile
from pathlib import Path

from benchmarks.runner import THROUGHPUT, Benchmark, System, Target, register

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

M = "benchmarks.suite_io:"
LINE = b"a line of text of about sixty bytes, like a log line ....\n"
MESSAGE = b"m" * 96  # + a 4-byte length header: 100-byte frames
FRAME = struct.pack(">I", len(MESSAGE)) + MESSAGE
BULK = os.urandom(64 * 1024)  # the 64 KiB messages of the bulk echo


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


# -- file -> lines -----------------------------------------------------------------------
#: The full run's file: 1 GiB of lines.
GIB_OF_LINES = (1 << 30) // len(LINE)


def lines_file(n: int) -> Path:
    """A file of ``n`` lines, written once per size and kept in the temporary directory
    for the next runs and the next worker processes (the benchmark's ``setup`` writes it
    before the measured rounds). Written under a temporary name and renamed, so a reader never
    sees half a file."""
    folder = Path(tempfile.gettempdir()) / "reactive-bench"
    path = folder / f"lines-{n}.txt"
    try:
        if path.stat().st_size == n * len(LINE):
            return path
    except FileNotFoundError:
        pass
    folder.mkdir(exist_ok=True)
    part = folder / f"lines-{n}.{os.getpid()}.part"
    with open(part, "wb") as f:
        block = LINE * 1000
        for _ in range(n // 1000):
            f.write(block)
        f.write(LINE * (n % 1000))
    os.replace(part, path)
    return path


def lines_plain_loop(n: int) -> int:
    count = 0
    with open(lines_file(n), "rb") as f:
        for _ in f:
            count += 1
    return count


async def lines_anyio_loop(n: int) -> int:
    import anyio

    count = 0
    rest = b""
    async with await anyio.open_file(lines_file(n), "rb") as f:
        while chunk := await f.read(65536):
            data = rest + chunk
            count += data.count(b"\n")
            rest = data[data.rfind(b"\n") + 1 :]
    return count + (1 if rest else 0)


async def lines_project(n: int) -> int:
    from reactive import Sink
    from reactive.io import FileIO, Framing

    return await (
        FileIO.from_path(lines_file(n), chunk_size=65536)
        .via(Framing.delimiter(b"\n", 4096, allow_truncation=True))
        .run_with(Sink.fold(0, lambda c, _: c + 1))
    )


_register(
    Benchmark(
        name="io_file_lines",
        title="file -> delimiter framing -> count lines",
        description=(
            "Count the lines of a file of n 58-byte lines (1 GiB in the full run, written once "
            "and kept in the temporary directory): a plain `for line in open(path, 'rb')` (the "
            "limit), an anyio loop reading 64 KiB chunks and counting newlines, and "
            "`FileIO.from_path(path, 65536).via(Framing.delimiter(b'\\n', 4096, "
            "allow_truncation=True))` folded into a count. At most 5 rounds: a round reads "
            "3 GiB."
        ),
        systems=(
            System("plain for line in open()", M + "lines_plain_loop", "baseline"),
            System("anyio chunk loop", M + "lines_anyio_loop", "peer"),
            System("project FileIO + Framing", M + "lines_project", "project"),
        ),
        baseline="plain for line in open()",
        size=GIB_OF_LINES,
        quick_size=20_000,
        size_label="lines",
        max_rounds=5,
        # The file of the measured size is written before the rounds (the warm-up runs a
        # tenth of it, another file): without this the first system of round 1 wrote the
        # 1 GiB file inside its timed call (the 0.25x round of the 5244dfa run).
        setup=M + "lines_file",
        targets=(
            Target(
                "project FileIO + Framing",
                THROUGHPUT.name,
                "at least 0.5x the plain loop",
                min_ratio=0.5,
            ),
        ),
    )
)


# -- TCP echo ----------------------------------------------------------------------------
async def _client(port: int, n: int, frame: bytes = FRAME, per_write: int = 100) -> int:
    """Send ``n`` messages ``frame``, ``per_write`` per write, and read the echo back
    meanwhile; the number of bytes echoed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    total = len(frame) * n

    async def send() -> None:
        batch = frame * per_write
        for _ in range(n // per_write):
            writer.write(batch)
            await writer.drain()
        writer.write(frame * (n % per_write))
        await writer.drain()

    sender = asyncio.ensure_future(send())
    received = 0
    while received < total:
        data = await reader.read(65536)
        if not data:
            break
        received += len(data)
    await sender
    writer.close()
    await writer.wait_closed()
    return received


async def echo_asyncio_streams(n: int) -> int:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(4)
                body = await reader.readexactly(struct.unpack(">I", header)[0])
                writer.write(header + body)
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        return await _client(server.sockets[0].getsockname()[1], n)


async def echo_project(n: int) -> int:
    from reactive import Sink
    from reactive.io import Framing, Tcp

    binding = await (
        Tcp.bind("127.0.0.1", 0)
        .to(Sink.foreach(lambda c: c.handle_with(Framing.length_field(4, 0, 1 << 16, "big"))))
        .run()
    )
    try:
        return await _client(binding.local_address[1], n)
    finally:
        await binding.unbind()


_register(
    Benchmark(
        name="io_tcp_echo",
        title="framed TCP echo over loopback (100-byte messages)",
        description=(
            "One client (asyncio streams) sends n 100-byte length-prefixed messages and reads "
            "the echo; the server reframes each message and sends it back: a hand-written "
            "asyncio streams server (`readexactly` header and body, `write`, `drain`) against "
            "`Tcp.bind` handling each connection with `Framing.length_field(4, ...)`."
        ),
        systems=(
            System("asyncio streams echo", M + "echo_asyncio_streams", "baseline"),
            System("project Tcp + Framing.length_field", M + "echo_project", "project"),
        ),
        baseline="asyncio streams echo",
        size=200_000,
        quick_size=2_000,
        size_label="messages",
        targets=(
            Target(
                "project Tcp + Framing.length_field",
                THROUGHPUT.name,
                "at least 0.8x asyncio streams",
                min_ratio=0.8,
            ),
        ),
    )
)


# -- TCP echo, 64 KiB messages -----------------------------------------------------------
async def _bulk_echo_asyncio_streams(n: int, read_size: int) -> int:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(read_size):
            writer.write(data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, limit=read_size)
    async with server:
        return await _client(server.sockets[0].getsockname()[1], n, BULK, 1)


async def bulk_echo_asyncio_streams(n: int) -> int:
    """The common idiom, ``read(65536)``: measured faster here than reads as large as the
    transport's (the extra row), so it is the baseline."""
    return await _bulk_echo_asyncio_streams(n, 65536)


async def bulk_echo_asyncio_streams_256k(n: int) -> int:
    """Reads as large as the transport's (256 KiB)."""
    return await _bulk_echo_asyncio_streams(n, 256 * 1024)


async def bulk_echo_project(n: int) -> int:
    from reactive import Flow, Sink
    from reactive.io import Tcp

    binding = await Tcp.bind("127.0.0.1", 0).to(Sink.foreach(lambda c: c.handle_with(Flow()))).run()
    try:
        return await _client(binding.local_address[1], n, BULK, 1)
    finally:
        await binding.unbind()


_register(
    Benchmark(
        name="io_tcp_echo_64k",
        title="TCP echo over loopback (64 KiB messages)",
        description=(
            "One client (asyncio streams) writes n 64 KiB messages and reads the echo "
            "meanwhile; the server sends back the bytes as they come: a hand-written asyncio "
            "streams server (`read(65536)`, `write`, `drain`; with `read(262144)`, as large "
            "as the transport's reads, as an extra row: it measured slower) against "
            "`Tcp.bind` handling each connection with the identity flow `Flow()` (which "
            "receives up to 128 KiB at once)."
        ),
        systems=(
            System("asyncio streams echo", M + "bulk_echo_asyncio_streams", "baseline"),
            System(
                "asyncio streams echo, read(262144)", M + "bulk_echo_asyncio_streams_256k", "peer"
            ),
            System("project Tcp + Flow()", M + "bulk_echo_project", "project"),
        ),
        baseline="asyncio streams echo",
        size=10_000,
        quick_size=200,
        size_label="messages",
        targets=(
            Target(
                "project Tcp + Flow()",
                THROUGHPUT.name,
                "at least 0.8x asyncio streams",
                min_ratio=0.8,
            ),
        ),
    )
)
