"""Tcp.bind_and_handle on loopback: an echo server serving two concurrent clients, each
connection on its own materialization of the handler, unbind freeing the port, the
idle_timeout passed on to the connections, and a handler that is not a Flow."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Materializer, Sink, Source, StreamTimeoutError
from reactive.io import BindFailedError, Framing, ServerBinding, Tcp

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


async def test_echo_server_with_two_concurrent_clients_then_unbind(
    materializer: Materializer,
) -> None:
    materialized: list[int] = []

    def shout() -> Flow[bytes, bytes, Any]:
        return (
            Flow[bytes]()
            .via(Framing.lines(1024))
            .map(lambda line: line.upper().encode() + b"\n")
            .map_materialized_value(lambda _: materialized.append(1))
        )

    binding = Tcp.bind_and_handle(shout(), "127.0.0.1", 0, materializer=materializer)
    server = await binding
    assert isinstance(server, ServerBinding)
    host, port = server.local_address[:2]
    assert host == "127.0.0.1" and port > 0

    async def client(name: bytes) -> list[str]:
        messages = [name + b" %d\n" % i for i in range(50)]
        return await (
            Source.from_iterable(messages)
            .via(Tcp.outgoing_connection(host, port))
            .via(Framing.lines(1024))
            .run_with(Sink.seq(), materializer)
        )

    one, two = await asyncio.gather(client(b"one"), client(b"two"))
    assert one == [f"ONE {i}" for i in range(50)]
    assert two == [f"TWO {i}" for i in range(50)]
    assert len(materialized) == 2  # one handler materialization per connection

    await server.unbind()
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))


async def test_bind_failure_fails_the_binding(materializer: Materializer) -> None:
    first = await Tcp.bind_and_handle(Flow[bytes](), "127.0.0.1", 0, materializer=materializer)
    port = first.local_address[1]
    with pytest.raises(BindFailedError, match=f"cannot listen on 127.0.0.1:{port}"):
        await Tcp.bind_and_handle(Flow[bytes](), "127.0.0.1", port, materializer=materializer)
    await first.unbind()


async def test_idle_timeout_reaches_the_handled_connections(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    ended: list[asyncio.Future[Any]] = []
    handler = Flow[bytes]().watch_termination().map_materialized_value(ended.append)
    binding = await Tcp.bind_and_handle(
        handler, "127.0.0.1", 0, idle_timeout=2, materializer=materializer
    )
    reader, writer = await asyncio.open_connection("127.0.0.1", binding.local_address[1])
    writer.write(b"x")
    assert await reader.readexactly(1) == b"x"
    await manual_clock.advance(3)
    with pytest.raises(StreamTimeoutError, match="idle timeout"):
        await ended[0]
    writer.close()
    await binding.unbind()


def test_a_handler_that_is_not_a_flow_is_rejected() -> None:
    with pytest.raises(TypeError, match=r"Tcp.bind_and_handle: handler must be a Flow"):
        Tcp.bind_and_handle(lambda b: b, "127.0.0.1", 0)  # type: ignore[arg-type]
