"""Tcp timeouts on loopback, timed on a ManualClock (the materializer's clock drives
them; the sockets are real): ``connect_timeout`` against a listener whose accept queue
is full (the kernel drops the SYNs, so the connect hangs), ``idle_timeout`` on a client
connection and on connections accepted by ``bind``, and the argument checks."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source, StreamTimeoutError
from reactive.io import IncomingConnection, StreamTcpError, Tcp
from reactive.testkit import ManualClock, TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def stuck_port() -> Iterator[int]:
    """A port whose listener never accepts and whose accept queue is full: a new
    connection's SYNs are dropped, so connecting to it hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(16):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
            time.sleep(0.05)
            try:
                s.getpeername()
            except OSError:  # this one is pending: the queue is full
                break
        else:
            pytest.fail("could not fill the listener's accept queue")
        yield port
    finally:
        for s in fillers:
            s.close()
        listener.close()


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0.005)


async def test_connect_timeout_fails_the_flow_and_the_connection_future(
    materializer: Materializer, manual_clock: ManualClock, stuck_port: int
) -> None:
    conn, done = (
        Source.single(b"x")
        .via_mat(Tcp.outgoing_connection("127.0.0.1", stuck_port, connect_timeout=2), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    await settle()
    await manual_clock.advance(1.9)
    await settle()
    assert not conn.done() and not done.done()
    await manual_clock.advance(0.2)
    with pytest.raises(StreamTcpError) as ei:
        await done
    message = str(ei.value)
    assert f"127.0.0.1:{stuck_port}" in message and "connect timeout of 2 s" in message
    assert "Tcp.outgoing_connection" in message
    assert isinstance(ei.value.__cause__, TimeoutError)
    with pytest.raises(StreamTcpError, match="connect timeout of 2 s"):
        await conn


async def test_connect_timeout_does_not_fire_once_connected(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    binding = await Tcp.bind_and_handle(Flow[bytes](), "127.0.0.1", 0, materializer=materializer)
    pub, conn, sub = (
        TestSource.probe()
        .via_mat(
            Tcp.outgoing_connection("127.0.0.1", binding.local_address[1], connect_timeout=1),
            Keep.both,
        )
        .to_mat(TestSink.probe(), lambda left, right: (*left, right))
        .run(materializer)
    )
    await conn
    await manual_clock.advance(5)
    sub.request(1)
    pub.send_next(b"still here")
    assert b"".join([await sub.expect_next()]) == b"still here"
    pub.send_complete()
    sub.request(1)
    await sub.expect_complete()
    await binding.unbind()


async def silent_server() -> tuple[asyncio.Server, int, asyncio.Future[bytes]]:
    """Reads everything the client sends, never answers; the future gets what it read
    (or the error that ended the reading)."""
    got: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        try:
            while chunk := await reader.read(1024):
                data += chunk
            got.set_result(data)
        except OSError as e:
            got.set_exception(e)
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], got


async def test_idle_timeout_fails_a_client_connection_where_no_bytes_passed(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    server, port, got = await silent_server()
    async with server:
        pub, conn, sub = (
            TestSource.probe()
            .via_mat(Tcp.outgoing_connection("127.0.0.1", port, idle_timeout=1), Keep.both)
            .to_mat(TestSink.probe(), lambda left, right: (*left, right))
            .run(materializer)
        )
        info = await conn
        sub.request(1)
        await pub.expect_request()
        await manual_clock.advance(0.75)
        pub.send_next(b"ping")  # bytes going out count as activity
        await settle()
        await manual_clock.advance(0.75)  # 1.5 s since the start, 0.75 s since the ping
        await settle()
        await sub.expect_no_message(0.02)  # not failed
        assert not got.done()
        await manual_clock.advance(0.5)  # 1.25 s since the ping: the next check fails
        err = await sub.expect_error()
        assert isinstance(err, StreamTimeoutError) and isinstance(err, TimeoutError)
        message = str(err)
        assert "Tcp.outgoing_connection" in message and "idle timeout" in message
        assert repr(info.remote_address) in message and "1 s" in message
        await pub.expect_cancellation()
        # The connection is aborted (a reset), not closed cleanly after the ping.
        with pytest.raises(ConnectionResetError):
            await got


async def test_bytes_received_keep_a_connection_alive(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(line)  # answers each line
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        pub, sub = (
            TestSource.probe()
            .via(Tcp.outgoing_connection("127.0.0.1", port, idle_timeout=2))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(10)
        for i in range(5):  # 7.5 s in all, never 2 s without bytes
            pub.send_next(b"%d\n" % i)
            assert await sub.expect_next() == b"%d\n" % i
            await manual_clock.advance(1.5)
        pub.send_complete()
        await sub.expect_complete()


async def test_bind_idle_timeout_aborts_a_quiet_incoming_connection(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    handled: list[asyncio.Future[Any]] = []

    def handle(conn: IncomingConnection) -> None:
        handled.append(conn.handle_with(Flow[bytes]().watch_termination(Keep.right), materializer))

    binding = await (
        Tcp.bind("127.0.0.1", 0, idle_timeout=3).to(Sink.foreach(handle)).run(materializer)
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", binding.local_address[1])
    writer.write(b"echo me")
    assert await reader.readexactly(7) == b"echo me"
    await manual_clock.advance(2.5)
    await settle()
    assert not handled[0].done()
    await manual_clock.advance(1.5)
    with pytest.raises(StreamTimeoutError, match=r"Tcp.incoming_connection\] TCP idle timeout"):
        await handled[0]
    with pytest.raises(ConnectionResetError):
        await reader.read(100)
    writer.close()
    await binding.unbind()


def test_bad_timeouts_are_rejected_naming_the_operator() -> None:
    with pytest.raises(ValueError, match=r"Tcp.outgoing_connection: connect_timeout .* got 0"):
        Tcp.outgoing_connection("127.0.0.1", 1, connect_timeout=0)
    with pytest.raises(ValueError, match=r"Tcp.outgoing_connection: idle_timeout .* got -1"):
        Tcp.outgoing_connection("127.0.0.1", 1, idle_timeout=-1)
    with pytest.raises(ValueError, match=r"Tcp.bind: idle_timeout .* got 'soon'"):
        Tcp.bind("127.0.0.1", 0, idle_timeout="soon")  # type: ignore[arg-type]
