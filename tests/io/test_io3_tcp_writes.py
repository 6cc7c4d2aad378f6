"""A connection's writes to anyio's asyncio socket stream go to its transport directly
(no task and no cancel scope per write); with that path off every write is the stream's
``send``. Both keep every byte in order, push back through the socket (the transport's
buffer stays bounded behind a slow reader) and fail the same way when the peer resets."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
from typing import Any

import pytest

from reactive import Materializer, Sink, Source
from reactive.io import StreamTcpError, Tcp
from reactive.io import tcp as tcp_module

CHUNK = os.urandom(64 * 1024)


@pytest.fixture(params=[True, False], ids=["direct", "send"])
def direct(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Which write path the connections use, and what the direct one did: the
    transports it wrote to, and how often a write waited for the transport to drain."""
    seen: dict[str, Any] = {"transports": [], "drained": 0}
    real_writer, real_drained = tcp_module._direct_writer, tcp_module._drained

    def writer(stream: Any) -> Any:
        w = real_writer(stream) if request.param else None
        if w is not None:
            seen["transports"].append(w[0])
        return w

    async def drained(w: Any) -> None:
        seen["drained"] += 1
        await real_drained(w)

    monkeypatch.setattr(tcp_module, "_direct_writer", writer)
    monkeypatch.setattr(tcp_module, "_drained", drained)
    seen["on"] = request.param
    return seen


async def test_writes_behind_a_slow_reader_keep_every_byte_and_push_back(
    materializer: Materializer, direct: dict[str, Any]
) -> None:
    n = 300
    got = bytearray()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            got.extend(data)
            await asyncio.sleep(0.001)
        writer.close()
        done.set_result(None)

    server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        most = 0
        run = asyncio.ensure_future(
            Source.repeat(CHUNK)
            .take(n)
            .via(Tcp.outgoing_connection("127.0.0.1", port))
            .run_with(Sink.ignore(), materializer)
        )
        while not run.done():
            for t in direct["transports"]:
                most = max(most, t.get_write_buffer_size())
            await asyncio.sleep(0.0005)
        await run
        await asyncio.wait_for(done, 10)
    assert bytes(got) == CHUNK * n
    if direct["on"]:
        assert direct["transports"], "the direct path was not taken"
        # Above the high-water mark a write waits: at most one more write is buffered.
        assert most <= 4 * len(CHUNK), most
        assert direct["drained"] > 0, "no write had to wait: the reader was not slow enough"
    else:
        assert not direct["transports"]


async def test_a_peer_reset_behind_blocked_writes_fails_the_stream(
    materializer: Materializer, direct: dict[str, Any]
) -> None:
    accepted: asyncio.Future[asyncio.StreamWriter] = asyncio.get_running_loop().create_future()

    release = asyncio.Event()

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result(writer)
        await release.wait()

    server = await asyncio.start_server(never_reads, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        run = asyncio.ensure_future(
            Source.repeat(CHUNK)
            .take(2000)
            .via(Tcp.outgoing_connection("127.0.0.1", port))
            .run_with(Sink.ignore(), materializer)
        )
        peer = await asyncio.wait_for(accepted, 10)
        await asyncio.sleep(0.3)  # the socket buffers fill, the writes wait
        assert not run.done()
        # A reset: close with SO_LINGER 0 (the kernel sends RST instead of FIN).
        sock = peer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        peer.transport.abort()
        with pytest.raises(StreamTcpError, match=r"\] (reading|writing) failed"):
            await asyncio.wait_for(run, 10)
        release.set()
        await asyncio.sleep(0)
    if direct["on"]:
        assert direct["drained"] > 0
