"""Review 3 (stream IO): cases no other test covered, checked against Akka/Pekko
semantics. They pass; each asserts exact values so it can fail."""

from __future__ import annotations

import asyncio
import socket

import pytest

from reactive import Keep, KillSwitches, Materializer, Sink, Source
from reactive.io import Tcp


async def test_a_peer_that_never_reads_stops_the_writer_pulling(
    materializer: Materializer,
) -> None:
    """Back pressure on the write side (Akka: a write is acked once the kernel took it,
    and the next element is pulled only then): a peer that accepts but never reads
    stops the connection pulling its input once the kernel buffers are full, instead of
    the writer queueing without bound. The count pulled stays put, far below what an
    endless source offers."""
    release = asyncio.Event()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 16)
        await release.wait()  # never reads
        writer.transport.abort()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pulled = [0]
    chunk = b"x" * (1 << 16)

    def count(b: bytes) -> bytes:
        pulled[0] += len(b)
        return b

    async with server:
        switch, done = (
            Source.repeat(chunk)
            .map(count)
            .via_mat(KillSwitches.single(), Keep.right)
            .via(Tcp.outgoing_connection("127.0.0.1", port))
            .to_mat(Sink.ignore(), Keep.both)
            .run(materializer)
        )
        previous = -1
        for _ in range(100):  # until the count stops moving (kernel buffers full)
            await asyncio.sleep(0.02)
            if pulled[0] == previous:
                break
            previous = pulled[0]
        await asyncio.sleep(0.1)
        settled = pulled[0]
        switch.abort(RuntimeError("test over"))
        release.set()
        with pytest.raises(RuntimeError, match="test over"):  # the input failed: reset
            await done
    assert settled == previous  # nothing more was pulled once the peer stopped taking
    assert 0 < settled < 32 << 20  # kernel buffers (a few MiB), not the endless source
