"""A loopback TCP proxy that tests can break (re-exported by :mod:`connectors.kafka.testkit`)."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["TcpProxy"]

_LOOPBACK = "127.0.0.1"


class TcpProxy:
    """A loopback TCP proxy under the test's control, for fault injection.

    It listens on ``listen_port`` (``0`` picks one; see :attr:`port`) and
    forwards every connection to ``target_host:target_port`` (settable later,
    so the proxy can start before the broker it fronts). Controls, all
    synchronous and immediate:

    - :meth:`cut`: abort every open connection (both sides see a reset);
    - :meth:`block` / :meth:`unblock`: close / reopen the listening socket, so
      new connections are refused (ECONNREFUSED) while open ones go on;
    - :meth:`refuse`: block now and unblock after some seconds.

    It counts the bytes it forwarded each way (:attr:`bytes_to_target`,
    :attr:`bytes_from_target`): what the clients sent and received, for tests
    that bound network traffic.

    A broker that *advertises* the proxy's port makes every client connection
    (bootstrap and after metadata) go through the proxy; :func:`proxied_broker`
    sets this up. Use it inside one event loop; ``stop()`` (or ``async with``)
    closes everything and waits for every task it started.
    """

    def __init__(
        self,
        target_port: int | None = None,
        *,
        target_host: str = _LOOPBACK,
        listen_host: str = _LOOPBACK,
        listen_port: int = 0,
    ) -> None:
        self.target_host = target_host
        self.target_port = target_port
        self._host = listen_host
        self._port = listen_port
        self._listener: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._transports: set[asyncio.WriteTransport] = set()
        self._unblock_handle: asyncio.TimerHandle | None = None
        self._stopped = False
        self.accepted = 0  # connections accepted so far
        self.cuts = 0  # connections aborted by cut()
        self.bytes_to_target = 0  # bytes forwarded from clients to the target
        self.bytes_from_target = 0  # bytes forwarded from the target to clients

    @property
    def port(self) -> int:
        """The port the proxy listens on (known after :meth:`start`)."""
        return self._port

    @property
    def address(self) -> str:
        return f"{self._host}:{self._port}"

    @property
    def blocked(self) -> bool:
        return self._listener is None

    @property
    def open_connections(self) -> int:
        """Client connections currently being forwarded."""
        return len(self._tasks)

    def __repr__(self) -> str:
        state = "blocked" if self.blocked else "listening"
        return (
            f"<TcpProxy {self.address} -> {self.target_host}:{self.target_port} {state}, "
            f"{self.open_connections} open>"
        )

    async def start(self) -> Self:
        """Start listening. Returns ``self``."""
        if self._loop is not None:
            raise RuntimeError(f"{self!r} was already started")
        self._loop = asyncio.get_running_loop()
        self._listen()
        return self

    def _listen(self) -> None:
        assert self._loop is not None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self._host, self._port))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        self._port = sock.getsockname()[1]
        self._listener = sock
        self._loop.add_reader(sock.fileno(), self._on_acceptable)

    def _on_acceptable(self) -> None:
        listener = self._listener
        if listener is None:
            return
        for _ in range(64):
            try:
                conn, _addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            conn.setblocking(False)
            self.accepted += 1
            assert self._loop is not None
            task = self._loop.create_task(self._forward(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _forward(self, conn: socket.socket) -> None:
        client_writer: asyncio.StreamWriter | None = None
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            client_reader, client_writer = await asyncio.open_connection(sock=conn)
            self._transports.add(client_writer.transport)
            if self.target_port is None:
                return
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(
                    self.target_host, self.target_port
                )
            except OSError:
                client_writer.transport.abort()
                return
            self._transports.add(upstream_writer.transport)
            await asyncio.gather(
                self._pump(client_reader, upstream_writer, True),
                self._pump(upstream_reader, client_writer, False),
            )
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._transports.discard(writer.transport)
                    writer.transport.abort()
            if client_writer is None:
                conn.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if upstream:
                    self.bytes_to_target += len(data)
                else:
                    self.bytes_from_target += len(data)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            # Either side closing closes both: Kafka never half-closes.
            writer.transport.abort()

    def cut(self) -> int:
        """Abort every open connection now; returns how many were open.

        Clients see their connection reset and reconnect (through the proxy
        again, unless it is blocked).
        """
        transports = list(self._transports)
        self._transports.clear()
        for transport in transports:
            transport.abort()
        count = len(self._tasks)
        self.cuts += count
        return count

    def block(self) -> None:
        """Refuse new connections (close the listening socket); open ones go on."""
        if self._unblock_handle is not None:
            self._unblock_handle.cancel()
            self._unblock_handle = None
        listener = self._listener
        if listener is None:
            return
        self._listener = None
        assert self._loop is not None
        self._loop.remove_reader(listener.fileno())
        listener.close()

    def unblock(self) -> None:
        """Accept new connections again, on the same port."""
        if self._unblock_handle is not None:
            self._unblock_handle.cancel()
            self._unblock_handle = None
        if self._listener is None and not self._stopped and self._loop is not None:
            self._listen()

    def refuse(self, seconds: float) -> None:
        """Refuse new connections for ``seconds``, then accept them again."""
        self.block()
        assert self._loop is not None
        self._unblock_handle = self._loop.call_later(seconds, self.unblock)

    async def stop(self) -> None:
        """Stop listening, abort every connection, wait for the proxy's tasks."""
        self._stopped = True
        if self._loop is None:
            return
        self.block()
        self.cut()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
