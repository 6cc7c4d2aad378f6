"""StreamConverters: sources from anyio memory object streams and byte streams, sinks
into them, with back pressure from a full memory stream, end of stream, closing, and
the errors of a closed receiving side."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.io import IOStreamError, StreamConverters
from reactive.testkit import TestSink


class Boom(Exception):
    """A test failure."""


async def test_source_from_a_memory_stream(materializer: Materializer) -> None:
    send, receive = anyio.create_memory_object_stream[int](10)
    for i in range(5):
        await send.send(i)
    await send.aclose()  # the receiver sees EndOfStream after the items
    assert await StreamConverters.from_receive_stream(receive).run_with(
        Sink.seq(), materializer
    ) == [0, 1, 2, 3, 4]
    for _ in range(5):  # the stage closes the stream after it stopped
        await asyncio.sleep(0)


async def test_source_receives_only_on_demand_and_closes_on_cancel(
    materializer: Materializer,
) -> None:
    send, receive = anyio.create_memory_object_stream[int](0)  # a rendezvous
    sub = StreamConverters.from_receive_stream(receive).run_with(TestSink.probe(), materializer)
    sub.request(1)
    await send.send(1)  # accepted: there was a receive waiting
    assert await sub.expect_next() == 1
    with pytest.raises(anyio.WouldBlock):
        send.send_nowait(2)  # no demand, so nobody receives
    sub.cancel()
    for _ in range(10):
        await asyncio.sleep(0)
    with pytest.raises(anyio.BrokenResourceError):  # the receive side was closed
        send.send_nowait(3)
    send.close()


async def test_sink_into_a_memory_stream_with_back_pressure(materializer: Materializer) -> None:
    send, receive = anyio.create_memory_object_stream[int](2)
    done = Source.from_iterable(range(10)).run_with(
        StreamConverters.to_send_stream(send), materializer
    )
    for _ in range(20):
        await asyncio.sleep(0)
    assert receive.statistics().current_buffer_used == 2  # full: the stream waits
    assert not done.done()
    got = [x async for x in receive]  # ends when the sink closed the send side
    assert got == list(range(10))
    await done
    receive.close()


async def test_sink_fails_when_the_receiver_is_gone(materializer: Materializer) -> None:
    send, receive = anyio.create_memory_object_stream[int](1)
    receive.close()
    with pytest.raises(
        IOStreamError, match=r"to_send_stream\] sending to .* failed: BrokenResourceError"
    ):
        await Source.from_iterable([1, 2]).run_with(
            StreamConverters.to_send_stream(send), materializer
        )


async def test_upstream_failure_fails_the_sink_and_ends_the_receivers(
    materializer: Materializer,
) -> None:
    send, receive = anyio.create_memory_object_stream[int](5)

    def check(x: int) -> int:
        if x == 3:
            raise Boom("bad")
        return x

    done = (
        Source.from_iterable([1, 2, 3])
        .map(check)
        .run_with(StreamConverters.to_send_stream(send), materializer)
    )
    with pytest.raises(Boom):
        await done
    assert [x async for x in receive] == [1, 2]
    receive.close()


async def test_byte_streams_round_trip_through_a_socket_pair(materializer: Materializer) -> None:
    """A ByteReceiveStream (a socket) as a source, a ByteSendStream as a sink."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    client = await anyio.connect_tcp("127.0.0.1", port)
    server: Any = await listener.listeners[0].accept()
    data = [bytes([i]) * 1000 for i in range(20)]
    sent = Source.from_iterable(data).run_with(
        StreamConverters.to_send_stream(client), materializer
    )
    received = StreamConverters.from_receive_stream(server, max_bytes=700).run_with(
        Sink.seq(), materializer
    )
    await sent  # then the client is closed: the server sees EndOfStream
    chunks = await received
    assert b"".join(chunks) == b"".join(data)
    assert max(map(len, chunks)) <= 700
    await listener.aclose()


def test_not_a_stream_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="expects an anyio stream with receive"):
        StreamConverters.from_receive_stream([1, 2])
    with pytest.raises(TypeError, match="expects an anyio stream with send"):
        StreamConverters.to_send_stream(object())


async def test_keep_both_typing_smoke(materializer: Materializer) -> None:
    send, receive = anyio.create_memory_object_stream[str](1)
    _mat, done = (
        Source.single("x")
        .to_mat(StreamConverters.to_send_stream(send), Keep.both)
        .run(materializer)
    )
    assert await receive.receive() == "x"
    await done
    receive.close()


async def test_failure_during_a_send_still_delivers_that_element(
    materializer: Materializer,
) -> None:
    from reactive.testkit import TestSource

    send, receive = anyio.create_memory_object_stream[int](0)  # a send waits for a receiver
    pub, done = (
        TestSource.probe()
        .to_mat(StreamConverters.to_send_stream(send), Keep.both)
        .run(materializer)
    )
    await pub.expect_request()
    pub.send_next(7)
    for _ in range(10):
        await asyncio.sleep(0)
    assert receive.statistics().tasks_waiting_send == 1  # the send is in flight
    pub.send_error(Boom("late"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not done.done()  # waits for the send
    assert await receive.receive() == 7
    with pytest.raises(Boom):
        await done
    receive.close()
