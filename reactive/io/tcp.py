"""TCP (and TLS): Akka's ``Tcp().bind`` and ``Tcp().outgoingConnection`` on anyio's
byte streams (``anyio.connect_tcp``, ``anyio.create_tcp_listener``, ``TLSStream``) on
the asyncio backend.

A connection is a ``Flow[bytes, bytes]``: what flows in is written to the socket, what
the peer sends flows out. The socket is read only when downstream pulls (anyio pauses
the transport between receives), so a slow consumer pushes back through the kernel
buffers to the peer; each write completes when the kernel took the bytes (anyio's
write buffer limit is 0), and the next element is pulled only then.

Half-close, as Akka's ``halfClose``: with ``half_close=True`` (the default of
``outgoing_connection``), completing the flow's input sends a FIN (``send_eof``) and
the connection stays open for reading until the peer closes; with ``half_close=False``
(the default for connections accepted by ``bind``), completing the input closes the
connection and completes the output. Either way the peer's EOF completes the output
and the input may still write (a handler's last replies); the connection closes when
the input completes. Cancelling the output closes the connection
unless ``half_close`` and the input is still writing: then, as Pekko's, the input goes on
being written (an output cancelled while the connection is opening does not stop the
open) and the connection closes once the input completed (reading had stopped: no FIN
is sent to wait for the peer's). TLS streams cannot half-close (anyio has no TLS
``send_eof``): over TLS with ``half_close=True``, completing the input while the output
is open sends nothing and the connection stays open until the peer closes it.

Timeouts, as Akka's: ``connect_timeout`` (``outgoing_connection``) fails a connection
not open in time with ``StreamTcpError``; ``idle_timeout`` (``outgoing_connection``,
``bind``) fails one on which no bytes passed either way for that long with
``StreamTimeoutError`` and aborts it. Both run on the materializer's clock (a
``ManualClock`` drives them in tests).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import struct
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from .._dsl.blueprints import Flow, Sink, Source
from .._errors import StreamTimeoutError
from .._impl.unobserved import ResultPromise
from .._keep import Keep
from .._ops.timer import timeout_check_interval
from ..stage import (
    FlowShape,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SourceShape,
    SubscriptionWithCancelError,
    TimerGraphStageLogic,
)
from ._stages import outcome as _outcome
from ._stages import require_bytes
from .errors import BindFailedError, StreamTcpError
from .files import _anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "Tcp",
    "IncomingConnection",
    "OutgoingConnection",
    "ServerBinding",
    "StreamTcpError",
    "BindFailedError",
]

log = logging.getLogger(__name__)

#: Bytes a connection pulls ahead while a write is in flight (sent joined by the next write).
WRITE_BUFFER = 65536
#: The most bytes one element of a connection's output holds. asyncio's transport reads up
#: to 256 KiB at once (anyio then splits the read, copying its tail); 128 KiB measured
#: faster on loopback than either 256 KiB or 64 KiB (io_tcp_echo_64k: 0.76x -> 0.84x
#: asyncio streams; 96 KiB: 0.71x, 192 KiB: 0.79x), smaller writes following each read.
RECEIVE_SIZE = 128 * 1024

# Closes started when a stage stops: kept here so they are not garbage collected mid-way.
_CLOSING: set[asyncio.Task[Any]] = set()

#: The connection stage's timer keys.
_CONNECT_TIMER = "connect_timeout"
_IDLE_TIMER = "idle_timeout"
#: Tolerance of the idle check (as the timed operators': float deadlines).
_EPS = 1e-9


@dataclass(frozen=True)
class OutgoingConnection:
    """The materialized value of ``Tcp.outgoing_connection`` once connected."""

    remote_address: tuple[Any, ...]
    local_address: tuple[Any, ...]


class ServerBinding:
    """The materialized value of ``Tcp.bind`` once listening: the bound address (with
    the actual port when 0 was asked) and ``unbind()``."""

    def __init__(self, local_address: tuple[Any, ...], unbind: Callable[[], None]) -> None:
        self.local_address = local_address
        self._unbind = unbind
        #: Completes once unbound; fails with the server stream's failure when a
        #: ``Tcp.bind_and_handle`` server stopped because a connection could not be handled.
        self.when_unbound: asyncio.Future[None] = ResultPromise(loop=asyncio.get_running_loop())
        self._failure: BaseException | None = None  # why the server's stream failed
        self._server_done: asyncio.Future[Any] | None = None  # (bind_and_handle's sink)

    def _settle_unbound(self) -> None:
        if self.when_unbound.done():
            return
        if self._failure is None:
            self.when_unbound.set_result(None)
        else:
            self.when_unbound.set_exception(self._failure)

    async def unbind(self) -> None:
        """Stop accepting: the listening socket is closed and the source of incoming
        connections completes. Connections already accepted stay open. Returns once
        unbound, also when the server's stream failed (``when_unbound`` holds that)."""
        self._unbind()
        await asyncio.wait((self.when_unbound,))

    def __repr__(self) -> str:
        return f"ServerBinding(local_address={self.local_address!r})"


@dataclass
class IncomingConnection:
    """One accepted connection of ``Tcp.bind``: its addresses and ``flow`` (a
    ``Flow[bytes, bytes]`` that can be materialized once). Handle every connection
    taken from the source (``handle_with``): one never handled keeps its socket open
    until it is garbage collected."""

    local_address: tuple[Any, ...]
    remote_address: tuple[Any, ...]
    flow: Flow[bytes, bytes, Any] = field(repr=False)
    #: Closes the accepted socket with a reset (a connection that could not be handled).
    _abort: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def handle_with(self, handler: Flow[bytes, bytes, Any], materializer: Any = None) -> Any:
        """Run ``handler`` on this connection: the bytes received go into ``handler``,
        what it emits is sent back. Returns the handler's materialized value."""
        return self.flow.join_mat(handler, Keep.right).run(materializer)


def _addr(a: Any) -> tuple[Any, ...]:
    return tuple(a) if isinstance(a, tuple | list) else (a,)


def _pause_reading(stream: Any) -> None:
    """Stop the transport under ``stream`` from reading ahead.

    anyio's asyncio ``SocketStream`` pauses its transport only after a ``receive()``
    that had to wait; a transport reading when the connection opened (asyncio starts it
    so), or one whose peer sends faster than we receive, is never paused, and anyio's
    read queue grows without bound (measured: 16 MiB queued behind a consumer that took
    64 KiB). So after each receive, and on open, the stage pauses it; anyio resumes it
    whenever a receive has to wait. A narrow workaround that reads anyio's private
    ``_transport`` and does nothing when it is absent (another backend or version).
    """
    s = stream
    while hasattr(s, "transport_stream"):  # TLS (or other) wrappers
        s = s.transport_stream
    t = getattr(s, "_transport", None)
    if t is not None and hasattr(t, "is_reading") and not t.is_closing() and t.is_reading():
        t.pause_reading()


def _direct_writer(stream: Any) -> tuple[Any, Any] | None:
    """The transport and protocol of anyio's asyncio ``SocketStream`` (private
    attributes, as ``_pause_reading``'s), when ``stream`` is one: the connection writes
    to the transport itself (``_send``). None for anything else (TLS, another backend
    or version): writes go through ``stream.send``."""
    t = getattr(stream, "_transport", None)
    p = getattr(stream, "_protocol", None)
    if (
        # (duck-typed: uvloop's TCPTransport is no asyncio.WriteTransport subclass)
        callable(getattr(t, "write", None))
        and callable(getattr(t, "is_closing", None))
        and isinstance(getattr(p, "write_event", None), asyncio.Event)
        and hasattr(p, "exception")
    ):
        return t, p
    return None


def _written(write: asyncio.Future[Any]) -> None:
    """A direct write's end (see ``_send``), as ``_outcome`` gives it."""
    if not write.done():  # (cancelled when the stage stopped)
        write.set_result((True, None))


async def _drained(writer: tuple[Any, Any]) -> None:
    """What anyio's asyncio ``send`` does after a write above the transport's high-water
    mark: wait until it drained, then raise what ``send`` raises if the connection broke
    meanwhile."""
    anyio = _anyio()
    protocol = writer[1]
    await protocol.write_event.wait()
    if protocol.exception is not None:
        raise anyio.BrokenResourceError from protocol.exception


def _close_later(stream: Any, forcefully: bool, reset: bool = False) -> None:
    anyio = _anyio()
    if reset:
        _linger_zero(stream)

    async def close() -> None:
        try:
            if forcefully:
                await anyio.aclose_forcefully(stream)
            else:
                await stream.aclose()
        except Exception as e:  # the peer may be gone already
            log.debug("closing %r: %r", stream, e)

    t = asyncio.get_running_loop().create_task(close())
    _CLOSING.add(t)
    t.add_done_callback(_CLOSING.discard)


def _first_cause(exc: BaseException) -> BaseException:
    """What really failed behind anyio's ``OSError('All connection attempts failed')``:
    the first error of the attempts (a ``ConnectionRefusedError``, say)."""
    seen = 0
    while seen < 8:
        seen += 1
        inner = exc.__cause__
        if isinstance(inner, BaseExceptionGroup) and inner.exceptions:
            exc = inner.exceptions[0]
        elif isinstance(inner, OSError) and type(exc) is OSError and exc.errno is None:
            exc = inner
        else:
            break
    return exc


def _linger_zero(stream: Any) -> None:
    """Make closing ``stream`` send a TCP reset (SO_LINGER on, 0 s), as an abort does."""
    anyio = _anyio()
    try:
        sock = stream.extra(anyio.abc.SocketAttribute.raw_socket)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except Exception as e:  # not a socket stream, or closed already
        log.debug("no reset for %r: %r", stream, e)


# -- a connection ------------------------------------------------------------------------
class TcpConnectionStage(GraphStageWithMaterializedValue[FlowShape, "asyncio.Future[Any]"]):
    """A connection as a flow: ``open()`` gives the anyio byte stream (connecting, or
    the accepted one wrapped in TLS); the mat value is ``info(stream)`` once open."""

    def __init__(
        self,
        name: str,
        open_: Callable[[], Awaitable[Any]],
        half_close: bool,
        once: bool = False,
        abandon: Callable[[], None] | None = None,
        connect_timeout: float | None = None,
        idle_timeout: float | None = None,
        target: str = "?",
    ) -> None:
        self.name = name
        self.shape = FlowShape(Inlet(f"{name}.in"), Outlet(f"{name}.out"))
        self.open = open_
        self.half_close = half_close
        self.once = once
        #: Releases what ``open_`` would have taken over, if the stage stops before it ran
        #: (an accepted socket whose handler cancelled at once).
        self.abandon = abandon
        self.used = False
        #: Fails the stage with StreamTcpError when ``open_`` has not returned by then.
        self.connect_timeout = connect_timeout
        #: Fails the stage with StreamTimeoutError when no bytes passed for that long.
        self.idle_timeout = idle_timeout
        #: The peer as the messages name it before the connection is open.
        self.target = target

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        if self.once:
            if self.used:
                raise StreamTcpError(
                    f"[{self.name}] an incoming connection's flow can be materialized once"
                )
            self.used = True
        loop = asyncio.get_running_loop()
        promise: asyncio.Future[Any]
        if self.once:
            # An incoming connection's: dropped (map_materialized_value), so not an
            # awaitable of a failure (that would log for every failed handshake).
            promise = loop.create_future()
            promise.add_done_callback(_retrieve)
        else:
            promise = ResultPromise(loop=loop)  # awaiting it observes a stream failure
        return _ConnectionLogic(self, promise), promise

    def __repr__(self) -> str:
        return self.name


def _retrieve(f: asyncio.Future[Any]) -> None:
    if not f.cancelled():
        f.exception()


class _ConnectionLogic(TimerGraphStageLogic, InHandler, OutHandler):
    """A read task and a write task may run at once (anyio allows one of each); their
    outcomes come back through async callbacks.

    Timers (on the materializer's clock): ``connect_timeout`` fires once, if the stream
    is still opening then; ``idle_timeout`` is checked periodically (as the
    ``idle_timeout`` operator, Akka's ``timeoutCheckInterval``) against the last time an
    element came in from upstream, bytes came from the socket or a write ended.

    ``writing``: the input side is open (False once upstream completed and the last
    write ended, or EOF was sent). ``reading``: the output side is open. The stream is
    closed when both are done, or at once on failure or cancellation.
    """

    def __init__(self, stage: TcpConnectionStage, promise: asyncio.Future[Any]) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.OP = stage.name
        self.promise = promise
        self.in_: Inlet[Any] = stage.shape.in_
        self.out: Outlet[Any] = stage.shape.out
        self.set_handlers(self.in_, self.out, self)
        self.stream: Any = None
        self.peer: Any = "?"
        self.open_task: asyncio.Task[Any] | None = None
        self.read_task: asyncio.Task[Any] | None = None
        self.write_task: asyncio.Task[Any] | None = None
        self.input_done = False  # upstream completed
        self.eof_sent = False
        self.discarding = False  # output cancelled, still reading to see the peer's EOF
        self.pending: list[bytes] = []  # pulled while a write was in flight
        self.pending_size = 0
        self.reset = False  # abort with a TCP reset when stopping (a failure)
        self.closing = False  # output cancelled: flush the writes taken, then close
        self.last_activity = 0.0  # the clock's time when bytes last passed
        # anyio's asyncio socket stream's transport and protocol, written to directly
        # (see ``_send``); None: every write is the stream's ``send``.
        self.writer: tuple[Any, Any] | None = None
        self.sent_cb: Any = None  # the async callbacks of the writes and reads
        self.received_cb: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    def pre_start(self) -> None:
        self.set_keep_going(True)
        self.sent_cb = self.get_async_callback(self._sent)
        self.received_cb = self.get_async_callback(self._received)
        task = self.materializer.spawn(_outcome(self.stage.open))
        self.open_task = task
        task.add_done_callback(self.get_async_callback(self._opened).invoke)
        if self.stage.connect_timeout is not None:
            self.schedule_once(_CONNECT_TIMER, self.stage.connect_timeout)
        idle = self.stage.idle_timeout
        if idle is not None:
            self._active()
            check = timeout_check_interval(idle)
            self.schedule_with_fixed_delay(_IDLE_TIMER, check, check)

    def _active(self) -> None:
        self.last_activity = self.materializer.clock.time()

    def on_timer(self, key: Any) -> None:
        if key == _CONNECT_TIMER:
            self._connect_timed_out()
            return
        idle = self.stage.idle_timeout
        if idle is not None and self.materializer.clock.time() > self.last_activity + idle + _EPS:
            # As Akka's TcpIdleTimeout: a timeout error, and the connection is aborted.
            self.reset = True
            self.fail_stage(
                StreamTimeoutError(
                    f"[{self.OP}] TCP idle timeout (peer {self._peer_name()}): no bytes "
                    f"passed in either direction in the last {idle:g} s"
                )
            )

    def _connect_timed_out(self) -> None:
        task = self.open_task
        if task is None or task.done() or self.stream is not None:
            return
        self.open_task = None
        task.cancel()  # anyio closes a socket it was connecting
        task.add_done_callback(partial(_close_opened, self.stage.abandon))
        t = self.stage.connect_timeout
        cause = TimeoutError(f"connect timeout of {t:g} s expired")
        err = StreamTcpError(f"[{self.OP}] cannot connect to {self._peer_name()}: {cause}")
        err.__cause__ = cause
        if not self.promise.done():
            self.promise.set_exception(err)
        self.fail_stage(err)

    def _peer_name(self) -> str:
        if self.stream is None and self.peer == "?":
            return self.stage.target
        return repr(self.peer)

    def _opened(self, task: asyncio.Task[Any]) -> None:
        self.open_task = None
        if task.cancelled():
            return
        ok, value = task.result()
        if not ok:
            err = value if isinstance(value, StreamTcpError) else self._error("connect", value)
            if not self.promise.done():
                self.promise.set_exception(err)
            self.fail_stage(err)
            return
        stream, info = value
        self.stream = stream
        self.writer = _direct_writer(stream)
        self.cancel_timer(_CONNECT_TIMER)
        _pause_reading(stream)
        self.peer = info.remote_address
        if not self.promise.done():
            self.promise.set_result(info)
        if not self.is_closed(self.in_):
            self.pull(self.in_)
        elif self.input_done:
            self._input_finished()
        if self.stream is not None and (self.is_available(self.out) or self.discarding):
            self._read()  # (the stream is None when the input's end closed it)

    def _error(self, what: str, exc: BaseException) -> StreamTcpError:
        cause = exc.__cause__ if exc.__cause__ is not None else exc
        err = StreamTcpError(
            f"[{self.OP}] {what} failed (peer {self.peer!r}): {type(cause).__name__}: {cause}"
        )
        err.__cause__ = exc
        return err

    def post_stop(self) -> None:
        for t in (self.open_task, self.read_task, self.write_task):
            if t is not None and not t.done():
                t.cancel()
        if self.open_task is not None:
            self.open_task.add_done_callback(partial(_close_opened, self.stage.abandon))
        if not self.promise.done():
            self.promise.set_exception(
                StreamTcpError(f"[{self.OP}] the stream stopped before the connection opened")
            )
        stream, self.stream = self.stream, None
        if stream is not None:
            _close_later(stream, forcefully=True, reset=self.reset)

    # -- reading --------------------------------------------------------------------------
    def on_pull(self) -> None:
        if self.stream is not None:
            self._read()

    def _read(self) -> None:
        if self.read_task is None:
            task = self.materializer.spawn(_outcome(partial(self.stream.receive, RECEIVE_SIZE)))
            self.read_task = task
            task.add_done_callback(self.received_cb.invoke)

    def _received(self, task: asyncio.Task[Any]) -> None:
        self.read_task = None
        if task.cancelled():
            return
        ok, value = task.result()
        if ok:
            _pause_reading(self.stream)
            if self.stage.idle_timeout is not None:  # (a clock read per message otherwise)
                self._active()
            if self.discarding:
                self._read()
            else:
                self.push(self.out, value)
            return
        anyio = _anyio()
        if isinstance(value, anyio.EndOfStream):
            self.discarding = False
            if not self.is_closed(self.out):
                self.complete(self.out)
            self._maybe_close()
        else:
            self.fail_stage(self._error("reading", value))

    def on_downstream_finish(self, cause: BaseException) -> None:
        if not isinstance(cause, SubscriptionWithCancelError):
            # A failure downstream aborts the connection (a reset, as Akka's Abort).
            self.reset = True
            self.fail_stage(cause)
            return
        if self.stage.half_close and not self.input_done:
            # Pekko's closeConnectionDownstreamFinished: the input keeps writing (read and
            # discard meanwhile, to see the peer's EOF), and the connection closes once it
            # completed (``_input_finished``). Still connecting: the open goes on, the
            # input is written once connected, then the connection closes.
            self.discarding = True
            if self.stream is not None:
                self._read()
        elif self.stream is not None and (self.write_task is not None or self.pending):
            # Akka's Close: what was taken from the input is written before the socket
            # closes (a forced close here cut the peer's data short behind a clean EOF).
            self.closing = True
            if not self.is_closed(self.in_):
                self.cancel(self.in_)
        else:
            self.complete_stage()

    # -- writing --------------------------------------------------------------------------
    # While a write is in flight, elements keep being pulled into ``pending`` (up to
    # WRITE_BUFFER bytes); the next write sends them joined, so small messages do not pay
    # one socket write each. Beyond that, the stage backpressures.
    def on_push(self) -> None:
        data = require_bytes(self.OP, self.grab(self.in_), 0)
        if self.stage.idle_timeout is not None:  # (a clock read per message otherwise)
            self._active()
        if self.write_task is None:
            self._send(data)
        else:
            self.pending.append(data)
            self.pending_size += len(data)
        self._pull_more()

    def _send(self, data: bytes) -> None:
        w = self.writer
        if w is not None:
            transport, protocol = w
            if protocol.write_event.is_set() and protocol.exception is None:
                if not transport.is_closing():
                    # anyio's ``send`` spelled out (no task, no cancel scope): the write,
                    # and, once the transport took it below its high-water mark, the
                    # ``send``'s return a loop turn later; above it, the wait until the
                    # transport drained. Otherwise (closing, or an error) ``send``
                    # raises what it raises.
                    transport.write(data)
                    if protocol.write_event.is_set():
                        loop = self.materializer.loop
                        task: Any = loop.create_future()
                        loop.call_soon(_written, task)
                    else:
                        task = self.materializer.spawn(_outcome(partial(_drained, w)))
                    self.write_task = task
                    task.add_done_callback(self.sent_cb.invoke)
                    return
        task = self.materializer.spawn(_outcome(partial(self.stream.send, data)))
        self.write_task = task
        task.add_done_callback(self.sent_cb.invoke)

    def _pull_more(self) -> None:
        if (
            self.pending_size < WRITE_BUFFER
            and not self.is_closed(self.in_)
            and not self.has_been_pulled(self.in_)
        ):
            self.pull(self.in_)

    def _sent(self, task: asyncio.Task[Any]) -> None:
        self.write_task = None
        if task.cancelled():
            return
        ok, value = task.result()
        if not ok:
            self.fail_stage(self._error("writing", value))
            return
        if self.stage.idle_timeout is not None:  # (a clock read per message otherwise)
            self._active()
        if self.pending:
            data = b"".join(self.pending)
            self.pending.clear()
            self.pending_size = 0
            self._send(data)
            self._pull_more()
        elif self.input_done:
            self._input_finished()
        elif self.closing:
            self._close_gracefully()
        else:
            self._pull_more()

    def on_upstream_finish(self) -> None:
        self.input_done = True
        if self.stream is not None and self.write_task is None and not self.pending:
            self._input_finished()

    def on_upstream_failure(self, exc: BaseException) -> None:
        # The connection is aborted in post_stop: a reset, so the peer fails too instead
        # of seeing a clean end of what was sent (Akka's Abort).
        self.reset = True
        self.fail_stage(exc)

    def _input_finished(self) -> None:
        """The last write ended: half-close, or close. As Pekko's
        closeConnectionUpstreamFinished, a half-close connection whose reading stopped
        before (the output was cancelled, or the peer's EOF completed it) closes now:
        with the output cancelled no one waits for the peer's EOF, which a keep-alive
        peer may never send."""
        if not self.stage.half_close or self.is_closed(self.out):
            self._close_gracefully()
            return
        anyio = _anyio()
        if not isinstance(self.stream, anyio.streams.tls.TLSStream) and not self.eof_sent:
            self.eof_sent = True
            task = self.materializer.spawn(_outcome(self.stream.send_eof))
            self.write_task = task
            task.add_done_callback(self.get_async_callback(self._eof_sent).invoke)
        else:
            self._maybe_close()

    def _eof_sent(self, task: asyncio.Task[Any]) -> None:
        self.write_task = None
        if not task.cancelled():
            ok, value = task.result()
            if not ok:
                self.fail_stage(self._error("half-closing", value))
                return
        self._maybe_close()

    def _maybe_close(self) -> None:
        """After the peer's EOF or our own: close once neither direction needs the
        socket. The peer's EOF completes the output; the input may still write its
        last replies (which is what a handler answering a request needs)."""
        if self.discarding or not self.is_closed(self.out):
            return
        if self.input_done and self.write_task is None and not self.pending:
            self._close_gracefully()

    def _close_gracefully(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            _close_later(stream, forcefully=False)
        self.complete_stage()


def _deliver_accept(cb: Any, listener: Any, task: asyncio.Task[Any]) -> None:
    cb.invoke((listener, task))


def _close_opened(abandon: Callable[[], None] | None, task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        if abandon is not None:
            abandon()
        return
    ok, value = task.result()
    if ok:
        _close_later(value[0], forcefully=True)


# -- the server --------------------------------------------------------------------------
class TcpBindStage(
    GraphStageWithMaterializedValue[SourceShape[Any], "asyncio.Future[ServerBinding]"]
):
    """``Tcp.bind``."""

    def __init__(
        self,
        host: str,
        port: int,
        backlog: int,
        half_close: bool,
        ssl_context: ssl.SSLContext | None,
        idle_timeout: float | None = None,
    ) -> None:
        self.shape = SourceShape(Outlet("Tcp.bind.out"))
        self.host = host
        self.port = port
        self.backlog = backlog
        self.half_close = half_close
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[ServerBinding]]:
        # Awaiting the binding observes a stream failure (reactive._impl.unobserved).
        promise = ResultPromise(loop=asyncio.get_running_loop())
        return _BindLogic(self, promise), promise

    def __repr__(self) -> str:
        return f"Tcp.bind({self.host!r}, {self.port})"


class _BindLogic(GraphStageLogic, OutHandler):
    """Listens when the stream starts; one ``accept()`` per listening socket is in
    flight while downstream has demand and nothing accepted is waiting."""

    OP = "Tcp.bind"

    def __init__(self, stage: TcpBindStage, promise: asyncio.Future[ServerBinding]) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.promise = promise
        self.out: Outlet[Any] = stage.shape.out
        self.set_handler(self.out, self)
        self.listener: Any = None
        self.binding: ServerBinding | None = None
        self.accepting: dict[Any, asyncio.Task[Any]] = {}
        self.accepted: deque[Any] = deque()
        self.unbinding = False
        self.unbind_task: asyncio.Task[Any] | None = None

    def pre_start(self) -> None:
        anyio = _anyio()
        s = self.stage
        task = self.materializer.spawn(
            _outcome(
                partial(
                    anyio.create_tcp_listener,
                    local_host=s.host,
                    local_port=s.port,
                    backlog=s.backlog,
                )
            )
        )
        self.set_keep_going(True)
        task.add_done_callback(self.get_async_callback(self._bound).invoke)
        self.bind_task = task

    def _bound(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        ok, value = task.result()
        s = self.stage
        if not ok:
            cause = value
            err = BindFailedError(
                f"[{self.OP}] cannot listen on {s.host}:{s.port}: {type(cause).__name__}: {cause}"
            )
            err.__cause__ = cause
            self.promise.set_exception(err)
            self.fail_stage(err)
            return
        if self.unbinding or self.is_closed(self.out):
            _close_later(value, forcefully=True)
            return
        self.listener = value
        anyio = _anyio()
        first = value.listeners[0]
        local = _addr(first.extra(anyio.abc.SocketAttribute.local_address))
        self.binding = ServerBinding(local, self.get_async_callback(self._unbind).invoke)
        self.promise.set_result(self.binding)
        if self.is_available(self.out):
            self.on_pull()

    def on_pull(self) -> None:
        if self.accepted:
            self.push(self.out, self.accepted.popleft()[0])
            return
        if self.listener is None or self.unbinding:
            return
        cb = self.get_async_callback(self._accepted)
        for lst in self.listener.listeners:
            if lst not in self.accepting:
                task = self.materializer.spawn(_outcome(lst.accept))
                self.accepting[lst] = task
                task.add_done_callback(partial(_deliver_accept, cb, lst))

    def _accepted(self, item: tuple[Any, asyncio.Task[Any]]) -> None:
        lst, task = item
        self.accepting.pop(lst, None)
        if task.cancelled():
            return
        ok, value = task.result()
        if not ok:
            if self.unbinding:
                return
            self.fail_stage(
                StreamTcpError(f"[{self.OP}] accept failed: {type(value).__name__}: {value}")
            )
            return
        conn = self._incoming(value)
        if self.is_available(self.out):
            self.push(self.out, conn)
        else:
            self.accepted.append((conn, value))

    def _incoming(self, stream: Any) -> IncomingConnection:
        anyio = _anyio()
        local = _addr(stream.extra(anyio.abc.SocketAttribute.local_address))
        remote = _addr(stream.extra(anyio.abc.SocketAttribute.remote_address))
        ctx = self.stage.ssl_context
        info = OutgoingConnection(remote, local)

        async def open_() -> tuple[Any, OutgoingConnection]:
            if ctx is None:
                return stream, info
            try:
                tls = await anyio.streams.tls.TLSStream.wrap(
                    stream, server_side=True, ssl_context=ctx, standard_compatible=False
                )
            except BaseException:
                await anyio.aclose_forcefully(stream)
                raise
            return tls, info

        flow = Flow.from_graph(
            TcpConnectionStage(
                "Tcp.incoming_connection",
                open_,
                self.stage.half_close,
                True,
                partial(_close_later, stream, True),
                idle_timeout=self.stage.idle_timeout,
                target=repr(remote),
            )
        ).map_materialized_value(lambda _: None)
        return IncomingConnection(local, remote, flow, partial(_close_later, stream, True, True))

    def on_downstream_finish(self, cause: BaseException) -> None:
        self._unbind(None)

    def _unbind(self, _: Any) -> None:
        if self.unbinding:
            return
        self.unbinding = True
        for t in self.accepting.values():
            t.cancel()
        self.accepting.clear()
        self._close_pending()
        listener, self.listener = self.listener, None
        binding = self.binding

        async def close() -> None:
            if listener is not None:
                await listener.aclose()

        # Not cancelled by a materializer shutdown: the listening socket is closed before
        # ``unbind()`` returns, whatever happens to the stream.
        task = self.materializer.spawn(_outcome(close), cancel_on_shutdown=False)
        self.unbind_task = task

        def done(_: Any) -> None:
            if binding is not None:
                binding._settle_unbound()

        task.add_done_callback(done)
        self.complete_stage()

    def _close_pending(self) -> None:
        while self.accepted:  # accepted, never handed out: closed
            _close_later(self.accepted.popleft()[1], forcefully=True)

    def post_stop(self) -> None:
        for t in self.accepting.values():
            t.cancel()
        self._close_pending()
        if not self.promise.done():
            self.promise.set_exception(
                BindFailedError(f"[{self.OP}] the stream stopped before the server was bound")
            )
        listener, self.listener = self.listener, None
        if listener is not None:
            _close_later(listener, forcefully=False)
        b = self.binding
        if b is not None and self.unbind_task is None:
            b._settle_unbound()  # (else once the unbind closed the socket)


# -- the public factories ----------------------------------------------------------------
class Tcp:
    """Akka's ``Tcp()``: a server of incoming connections and client connections, on
    anyio's TCP and TLS streams (asyncio backend; needs the ``io`` extra)."""

    @staticmethod
    def bind(
        host: str,
        port: int,
        backlog: int = 100,
        half_close: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
    ) -> Source[IncomingConnection, asyncio.Future[ServerBinding]]:
        """Listen on ``host:port`` (port 0: any free port) when the stream starts; emit
        an ``IncomingConnection`` per accepted connection, on demand (connections
        beyond it wait in the kernel's backlog). With ``ssl_context`` (a server
        context), each connection is TLS; the handshake runs when it is handled.

        ``idle_timeout`` (seconds, Akka's ``idleTimeout``): a handled connection on
        which no bytes passed in either direction for that long (counted from when it
        is handled, checked periodically on the materializer's clock) fails with
        ``StreamTimeoutError`` naming the peer, and is aborted with a reset.

        Materializes an awaitable ``ServerBinding`` (bound address, ``unbind()``),
        failed with ``BindFailedError`` when the address cannot be bound (in use, ...).

        *Emits when* a connection was accepted and downstream pulls.
        *Backpressures when* downstream backpressures (nothing is accepted).
        *Completes when* ``unbind()`` was called.
        *Fails when* binding or accepting fails.
        *Cancels when* downstream cancels: the server unbinds.
        """
        _anyio()
        idle = _timeout("Tcp.bind", "idle_timeout", idle_timeout)
        return Source.from_graph(TcpBindStage(host, port, backlog, half_close, ssl_context, idle))

    @staticmethod
    def bind_and_handle(
        handler: Flow[bytes, bytes, Any],
        host: str,
        port: int,
        backlog: int = 100,
        half_close: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        idle_timeout: float | None = None,
        materializer: Any = None,
    ) -> asyncio.Future[ServerBinding]:
        """Akka's ``bindAndHandle``: run a server on ``host:port`` that joins every
        incoming connection with a fresh materialization of ``handler`` (the bytes
        received go into it, what it emits is sent back), on ``materializer`` (default:
        the loop's). The arguments after ``port`` are ``bind``'s.

        Returns the awaitable ``ServerBinding`` at once (as ``bind(...).to(...).run()``
        does): ``await binding.unbind()`` stops accepting; connections already handled
        go on. The handlers' materialized values are dropped. As Akka's, materializing a
        handler that raises fails the server's stream (it unbinds): the connection it
        could not handle is closed with a reset, and ``when_unbound`` fails with a
        ``StreamTcpError`` naming the peer, caused by the handler's exception. A
        connection whose handler fails once running is aborted alone.
        """
        op = "Tcp.bind_and_handle"
        if not isinstance(handler, Flow):
            raise TypeError(f"{op}: handler must be a Flow[bytes, bytes], got {handler!r}")
        server = Tcp.bind(host, port, backlog, half_close, ssl_context, idle_timeout)
        binding: asyncio.Future[ServerBinding]

        def handle(connection: IncomingConnection) -> None:
            try:
                connection.handle_with(handler, materializer)
            except Exception as e:
                # Not handled: closed (the client sees a reset), and the server's stream
                # fails with it (it unbinds; ``when_unbound`` fails with it).
                if connection._abort is not None:
                    connection._abort()
                err = StreamTcpError(
                    f"[{op}] materializing the handler for the connection from "
                    f"{connection.remote_address!r} failed: {type(e).__name__}: {e}"
                )
                if binding.done() and not binding.cancelled() and binding.exception() is None:
                    bound = binding.result()
                    bound._failure = err
                    # The server stream's own awaitable of ``err`` lives as long as the
                    # binding: ``when_unbound`` (failed once the socket is closed) reports
                    # it, the failure is logged only if neither was ever awaited.
                    bound._server_done = server_done[0]
                raise err from e

        server_done: list[asyncio.Future[Any]] = []
        binding, done = server.to_mat(Sink.foreach(handle).named(op), Keep.both).run(materializer)
        server_done.append(done)
        return binding

    @staticmethod
    def outgoing_connection(
        host: str,
        port: int,
        half_close: bool = True,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        connect_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> Flow[bytes, bytes, asyncio.Future[OutgoingConnection]]:
        """A client connection to ``host:port``, opened when the flow starts: elements
        in are sent, bytes received are emitted (chunks as they arrive, at most 128 KiB
        each: ``RECEIVE_SIZE``). With
        ``ssl_context`` the connection is TLS (``server_hostname`` defaults to
        ``host`` for certificate checks).

        Materializes an awaitable ``OutgoingConnection`` (addresses) once connected,
        failed with ``StreamTcpError`` when the connection cannot be made.

        Timeouts (seconds, on the materializer's clock; None: none), Akka's:
        ``connect_timeout``: a connection not established in time (the TCP connect, and
        the TLS handshake with ``ssl_context``) fails the flow and the awaitable with
        ``StreamTcpError`` naming the peer and the timeout (its ``__cause__`` is a
        ``TimeoutError``). ``idle_timeout``: once no bytes passed in either direction
        for that long (counted from the start, checked periodically), the flow fails
        with ``StreamTimeoutError`` naming the peer and the connection is aborted with
        a reset.

        *Emits when* bytes were received and downstream pulls.
        *Backpressures when* downstream backpressures (the socket is not read), or a
        write is in progress (the next element is pulled after it).
        *Completes when* the peer closed its side (EOF), or the input completed
        without ``half_close``.
        *Fails when* connecting, reading or writing fails (refused, reset, TLS), or a
        timeout expires.
        *Cancels when* downstream cancels (see the module doc for half-close).
        """
        anyio = _anyio()
        op = "Tcp.outgoing_connection"
        connect = _timeout(op, "connect_timeout", connect_timeout)
        idle = _timeout(op, "idle_timeout", idle_timeout)

        async def open_() -> tuple[Any, OutgoingConnection]:
            try:
                stream = await anyio.connect_tcp(
                    host,
                    port,
                    tls=ssl_context is not None,
                    ssl_context=ssl_context,
                    tls_hostname=server_hostname,
                    tls_standard_compatible=False,
                )
            except (OSError, ssl.SSLError, anyio.BrokenResourceError) as e:
                cause = _first_cause(e)
                err = StreamTcpError(
                    f"[{op}] cannot connect to {host}:{port}: {type(cause).__name__}: {cause}"
                )
                raise err from cause
            remote = _addr(stream.extra(anyio.abc.SocketAttribute.remote_address))
            local = _addr(stream.extra(anyio.abc.SocketAttribute.local_address))
            return stream, OutgoingConnection(remote, local)

        return Flow.from_graph(
            TcpConnectionStage(
                op,
                open_,
                half_close,
                connect_timeout=connect,
                idle_timeout=idle,
                target=f"{host}:{port}",
            )
        )


def _timeout(op: str, name: str, value: Any) -> float | None:
    """``value`` as seconds (None: no timeout), or a ValueError naming the operator."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{op}: {name} must be None or seconds > 0, got {value!r}")
    return float(value)
