"""Regression tests of the stream-IO defects review 3 found against Akka/Pekko semantics.

Each test's docstring names the defect it pins (each failed before its fix):
``FileIO.from_path`` on a named pipe held what arrived until 64 KiB or the writer's
close (now: what one read returned, files.py ``_read_once``); a half-close connection
(plain, TLS, incoming) whose output was cancelled stayed open after its input completed,
waiting for the peer (now closed, as Pekko's closeConnectionUpstreamFinished: tcp.py
``_input_finished``); an output cancelled while connecting dropped the input (now
connected, written, closed: tcp.py ``on_downstream_finish``); a read error named no
file (now its ``filename``: files.py ``_FileLogic._naming_the_path``)."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive.io import FileIO, IncomingConnection, IOOperationIncompleteError, Tcp
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from pathlib import Path


async def test_from_path_on_a_named_pipe_emits_what_arrived_without_waiting_for_more(
    tmp_path: Path, materializer: Materializer
) -> None:
    """DEFECT: FileIO.from_path on a FIFO holds the bytes read until 8 chunks (64 KiB)
    arrived or the writer closed (``_read_chunks`` loops ``fp.read`` until it has
    ``chunk_size * per_read`` bytes). A writer that sends a line and waits for the
    reader (a request over a pipe) never sees it read. Akka's FileSource (a
    ``FileChannel.read``) emits what one read returned."""
    p = tmp_path / "pipe"
    os.mkfifo(p)
    seen = threading.Event()
    closed_after_seen: list[bool] = []

    def writer() -> None:
        with open(p, "wb", buffering=0) as f:
            f.write(b"hello\n")
            seen.wait(0.5)  # the reader got the line, or give up and close
            closed_after_seen.append(seen.is_set())

    t = threading.Thread(target=writer)
    t.start()
    sub = FileIO.from_path(p).run_with(TestSink.probe(), materializer)
    sub.request(10)
    first = await sub.expect_next(timeout=3)
    seen.set()
    await asyncio.to_thread(t.join)
    await sub.expect_complete()
    assert first == b"hello\n"
    assert closed_after_seen == [True], "the line was emitted only once the writer closed"


async def test_half_close_connection_closes_once_output_cancelled_and_input_completed(
    materializer: Materializer,
) -> None:
    """DEFECT: an outgoing connection (half_close=True, the default) whose output was
    cancelled and whose input then completes only sends a FIN and keeps reading (and
    discarding) until the peer closes: with a peer that keeps the connection open (a
    keep-alive server) the stream never ends. Pekko's TcpStreamLogic
    (``closeConnectionUpstreamFinished``: "Reading has stopped before, either because of
    cancel, or PeerClosed, so just Close now") closes the connection and completes the
    stage. Suspect: tcp.py ``_input_finished`` (the ``discarding`` case sends EOF and
    waits in ``_maybe_close``)."""
    peer_saw_eof = asyncio.Event()
    release = asyncio.Event()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # the request, up to the client's FIN
        peer_saw_eof.set()
        await release.wait()  # keep-alive: the server does not close on its own
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        pub, sub = (
            TestSource.probe()
            .via(Tcp.outgoing_connection("127.0.0.1", port))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await pub.expect_request()
        sub.cancel()  # not interested in the reply
        pub.send_next(b"request").send_complete()
        await asyncio.wait_for(peer_saw_eof.wait(), 2)
        for _ in range(200):
            if materializer.running_tasks == 0:
                break
            await asyncio.sleep(0.002)
        still_running = materializer.running_tasks
        release.set()
        for _ in range(200):  # let the connection end either way before the fixture checks
            if materializer.running_tasks == 0:
                break
            await asyncio.sleep(0.002)
        assert still_running == 0, "the connection stayed open, waiting for the peer's FIN"


async def test_half_close_output_cancelled_before_connecting_still_sends_the_input(
    materializer: Materializer,
) -> None:
    """DEFECT: with half_close=True (the default), an output cancelled while the
    connection is still opening stops the stage at once: the connect is abandoned and
    the input is never sent; cancelled a moment later (once connected), the same input
    is sent. Pekko's TcpStreamLogic (``closeConnectionDownstreamFinished``: "an outbound
    connection for which downstream finished before the connection was even
    established ... we close the connection as soon as upstream finishes") connects,
    writes the input, then closes. Suspect: tcp.py ``on_downstream_finish`` (the
    ``self.stream is None`` case falls through to ``complete_stage``)."""
    received: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()  # up to the client's FIN (or close)
        if not received.done():
            received.set_result(data)
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        # Sink.cancelled cancels the connection's output as the stream starts, before
        # the connect completes: a send-only client.
        (
            Source.from_iterable([b"fire-", b"and-forget"])
            .via(Tcp.outgoing_connection("127.0.0.1", port))
            .to(Sink.cancelled())
            .run(materializer)
        )
        await asyncio.wait((received,), timeout=1.0)
        for _ in range(200):
            if materializer.running_tasks == 0:
                break
            await asyncio.sleep(0.002)
        assert received.done(), "the peer never got a connection: the input was dropped"
        assert received.result() == b"fire-and-forget"


async def test_a_read_error_of_the_file_source_names_the_path(materializer: Materializer) -> None:
    """DEFECT: FileIO.from_path's docstring says an error, "a read error" included,
    "fails the stream with the OSError (which names the path)"; an open error does, but
    a read error fails the stream with a bare ``OSError(5, 'Input/output error')``
    naming neither the file nor the stage (only the materialized IOResult's error has
    the path). Suspect: files.py ``_FileLogic._call_failed`` / ``_read_chunks`` (set the
    OSError's ``filename`` when it has none, or add a note naming the stage and path)."""
    path = "/proc/self/mem"  # opens, but reading offset 0 (never mapped) fails with EIO
    if not os.path.exists(path):
        pytest.skip("needs Linux /proc")
    io_result, done = FileIO.from_path(path).to_mat(Sink.seq(), Keep.both).run(materializer)
    with pytest.raises(OSError) as ei:
        await done
    assert "Input/output error" in str(ei.value)  # the read failed, not the open
    text = str(ei.value) + "".join(getattr(ei.value, "__notes__", ()))
    assert path in text, f"the stream's failure does not name the file: {ei.value!r}"
    # the materialized IOResult fails as before: the count, caused by that same error
    with pytest.raises(IOOperationIncompleteError) as ir:
        await io_result
    assert ir.value.count == 0 and ir.value.__cause__ is ei.value
    assert str(ir.value).startswith(f"[FileIO.from_path] {path!r}: failed after 0 bytes: OSError")


async def _no_tasks_left(mat: Materializer) -> int:
    """Poll until ``mat`` runs no stream task (or give up): what is still running."""
    for _ in range(200):
        if mat.running_tasks == 0:
            break
        await asyncio.sleep(0.002)
    return mat.running_tasks


async def test_tls_half_close_connection_closes_once_output_cancelled_and_input_completed(
    materializer: Materializer,
) -> None:
    """The TLS case of the defect above: TLS cannot send a FIN, so the connection
    (half_close=True) waited for the peer's close with no one reading its output; Pekko
    closes once the input completed after the output was cancelled."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    got_request = asyncio.Event()
    release = asyncio.Event()

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(len(b"request"))
        got_request.set()
        await release.wait()  # keep-alive: the server does not close on its own
        writer.close()

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    async with server:
        connection = Tcp.outgoing_connection(
            "127.0.0.1", port, ssl_context=client_ctx, server_hostname="localhost"
        )
        pub, sub = (
            TestSource.probe().via(connection).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        await pub.expect_request()
        sub.cancel()
        pub.send_next(b"request").send_complete()
        await asyncio.wait_for(got_request.wait(), 2)
        still_running = await _no_tasks_left(materializer)
        release.set()
        await _no_tasks_left(materializer)
        assert still_running == 0, "the TLS connection stayed open, waiting for the peer"


async def test_incoming_half_close_connection_sends_its_reply_and_closes_after_a_cancel(
    materializer: Materializer,
) -> None:
    """The incoming side (``bind(half_close=True)``): a handler that cancels its input
    at once (before the accepted connection is open) still has its reply sent (the
    defect of the output cancelled while connecting), and a handler that cancels after
    the first message then completes its reply closes the connection (the defect of the
    half-close waiting for the peer): the client, which keeps its side open, reads the
    reply then the end, and the server's connection stream stops."""
    handlers = Materializer(name="handlers")
    probes: asyncio.Queue[Any] = asyncio.Queue()
    plans = iter(["at once", "probes"])

    def handle(conn: IncomingConnection) -> None:
        if next(plans) == "at once":
            conn.handle_with(
                Flow.from_sink_and_source(Sink.cancelled(), Source.single(b"bye")), handlers
            )
        else:
            handler = Flow.from_sink_and_source_mat(TestSink.probe(), TestSource.probe(), Keep.both)
            probes.put_nowait(conn.handle_with(handler, handlers))

    binding = await (
        Tcp.bind("127.0.0.1", 0, half_close=True).to(Sink.foreach(handle)).run(materializer)
    )
    port = binding.local_address[1]
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(), 2) == b"bye"  # then the end
        left_at_once = await _no_tasks_left(handlers)
        writer.close()

        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sub, pub = await asyncio.wait_for(probes.get(), 2)
        writer.write(b"request")
        sub.request(1)
        assert await sub.expect_next(timeout=2) == b"request"
        sub.cancel()  # not interested in more
        pub.send_next(b"reply").send_complete()
        assert await asyncio.wait_for(reader.read(), 2) == b"reply"  # then the end
        left_after_reply = await _no_tasks_left(handlers)
        writer.close()
        # (stream tasks still running: the handler that cancelled at once, the other)
        assert (left_at_once, left_after_reply) == (0, 0), "stayed open, waiting for the client"
    finally:
        await binding.unbind()
        await handlers.shutdown()
