"""Closing an aiokafka consumer or producer so that nothing of it stays open.

aiokafka's ``stop()`` runs once: it marks the client closed first, then closes its
parts one after the other (group coordinator, fetcher or sender, then the network
client). When that sequence is cut short, a second ``stop()`` returns at once and what
was not reached stays open for good: the client's metadata task
(``AIOKafkaClient._md_synchronizer``), its heartbeat and fetch tasks, and its broker
connections, which later warn "Unclosed AIOKafkaConnection" / "unclosed transport" when
the garbage collector finds them (in whatever test or request runs then). It is cut
short when

- ``stop()`` takes longer than ``close_timeout`` (the broker unreachable while the group
  coordinator leaves the group or commits: a timeout cancels the stop);
- the task closing it is cancelled (a materializer's shutdown);
- aiokafka raises from inside: ``Fetcher.close()`` cancels its fetch tasks and awaits
  them, and a fetch task sleeping out ``retry_backoff_ms`` after a failed fetch (a
  connection just lost) raises that ``CancelledError`` into ``stop()``, which ends
  there, before the network client is closed (aiokafka 0.14).

:func:`close_consumer` and :func:`close_producer` stop the client within the timeout and
then *sweep* it: every task still running one of the client's parts is cancelled and
awaited, and every connection still open is closed. After a ``stop()`` that completed
the sweep finds nothing to do.

A start cut short leaks too: aiokafka's bootstrap holds its first connection in a local
variable until the cluster's metadata arrives, and a cancellation there (a source shut
down while starting, ``connect_timeout``) leaves it open, known to no one.
:func:`cancel_releasing` cancels such a call and closes the connections it held.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

import aiokafka
from aiokafka.conn import AIOKafkaConnection, CloseReason

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterable

__all__ = [
    "cancel_releasing",
    "client_tasks",
    "close_consumer",
    "close_producer",
    "start_within",
    "within",
]

log = logging.getLogger("connectors.kafka")

_AIOKAFKA_DIR = os.path.dirname(aiokafka.__file__) + os.sep

#: Bound (seconds) on waiting for the swept tasks and connections to finish closing: they
#: were cancelled or aborted, so this is a few loop iterations, not network time.
_SWEEP_WAIT = 1.0


async def close_consumer(
    consumer: Any, timeout: float, name: str | None = None
) -> BaseException | None:
    """``consumer.stop()`` (an ``AIOKafkaConsumer``) within ``timeout`` seconds, then
    close whatever it left open (see the module docstring).

    ``name`` (the stage's) prefixes the log messages. Returns the error that cut the
    stop short (logged here), ``None`` if it completed. Raises ``CancelledError`` only
    when the calling task is cancelled (after closing what closes without waiting).
    """
    parts = (
        consumer,
        getattr(consumer, "_client", None),
        getattr(consumer, "_coordinator", None),
        getattr(consumer, "_fetcher", None),
    )
    return await _close(consumer.stop(), parts, timeout, _what("consumer", name))


async def close_producer(
    producer: Any, timeout: float, name: str | None = None
) -> BaseException | None:
    """``producer.stop()`` (an ``AIOKafkaProducer``) within ``timeout`` seconds (it flushes
    what is buffered first), then close whatever it left open (see the module docstring).

    ``name`` (the stage's) prefixes the log messages. Returns the error that cut the
    stop short (logged here), ``None`` if it completed. Raises ``CancelledError`` only
    when the calling task is cancelled.
    """
    sender = getattr(producer, "_sender", None)
    parts = (
        producer,
        getattr(producer, "client", None),
        sender,
        getattr(producer, "_message_accumulator", None),
        getattr(sender, "_txn_manager", None),
    )
    return await _close(producer.stop(), parts, timeout, _what("producer", name))


def _what(client: str, name: str | None) -> str:
    return f"[{name}] closing the Kafka {client}" if name else f"closing the Kafka {client}"


async def _close(
    stop: Awaitable[Any], parts: Iterable[Any], timeout: float, what: str
) -> BaseException | None:
    owners = {id(p): p for p in parts if p is not None}
    # In a task of its own: aiokafka suppresses CancelledError in places (awaiting a task
    # it cancelled), which would swallow a cancellation of the caller's task.
    task = asyncio.ensure_future(stop)
    try:
        await asyncio.wait({task}, timeout=timeout)
    except asyncio.CancelledError:
        task.cancel()
        _abort(owners)  # the caller is cancelled: close what closes without waiting
        raise
    error: BaseException | None = None
    if not task.done():
        task.cancel()
        error = TimeoutError(f"{what} took longer than close_timeout={timeout} s")
        log.warning("%s; aborting it", error)
    elif task.cancelled():
        # Not cancelled by us: aiokafka's own cancellation escaped its stop()
        # (Fetcher.close), which did not complete.
        error = RuntimeError(f"{what}: aiokafka's stop() ended early, raising CancelledError")
        log.debug("%s; closing what it left open", error)
    elif task.exception() is not None:
        error = task.exception()
        log.warning("%s failed: %r; aborting it", what, error)
    tasks, closing = _abort(owners)
    if not task.done():
        tasks.append(task)
    if tasks or closing:
        log.debug(
            "%s: %d task(s) and %d connection(s) left open, closed", what, len(tasks), len(closing)
        )
        await asyncio.wait([*tasks, *closing], timeout=_SWEEP_WAIT)
    return error


def client_tasks(parts: Iterable[Any]) -> list[asyncio.Task[Any]]:
    """The running loop's unfinished tasks whose coroutine is an aiokafka method of one
    of ``parts`` (the objects an aiokafka client is made of: they start their tasks as
    ``create_task(self._routine())``)."""
    owners = {id(p) for p in parts if p is not None}
    found = []
    for task in asyncio.all_tasks():
        if task.done():
            continue
        frame = getattr(task.get_coro(), "cr_frame", None)
        if (
            frame is not None
            and frame.f_code.co_filename.startswith(_AIOKAFKA_DIR)  # cheap test first
            and id(frame.f_locals.get("self")) in owners
        ):
            found.append(task)
    return found


def _abort(owners: dict[int, Any]) -> tuple[list[asyncio.Task[Any]], list[asyncio.Future[Any]]]:
    """Cancel the tasks of ``owners`` and close their client's open connections, without
    waiting. Returns the cancelled tasks and the connections' closed-futures."""
    me = asyncio.current_task()
    tasks = [t for t in client_tasks(owners.values()) if t is not me]
    for task in tasks:
        task.cancel()
    closing: list[asyncio.Future[Any]] = []
    for part in owners.values():
        conns = getattr(part, "_conns", None)
        if not isinstance(conns, dict):
            continue
        for conn in list(conns.values()):
            if getattr(conn, "_reader", None) is None and not conn.connected():
                continue  # closed already
            try:
                fut = conn.close(reason=CloseReason.SHUTDOWN)
            except Exception:  # pragma: no cover - best effort
                log.debug("closing an aiokafka connection raised", exc_info=True)
                continue
            if isinstance(fut, asyncio.Future) and not fut.done():
                closing.append(fut)
    return tasks, closing


async def start_within(start: Awaitable[Any], client: Any, timeout: float) -> Any:
    """``await start`` (a call into aiokafka's ``client``, such as ``producer.start()``),
    raising ``TimeoutError`` after ``timeout`` seconds; a start cut short (timeout, or
    the caller cancelled) is cancelled with :func:`cancel_releasing`."""
    task = asyncio.ensure_future(start)
    try:
        await asyncio.wait({task}, timeout=timeout)
    finally:
        if not task.done():
            await cancel_releasing(task, client)
    if task.cancelled():
        raise TimeoutError
    return task.result()


async def cancel_releasing(task: asyncio.Task[Any], client: Any) -> None:
    """Cancel ``task`` (a call into aiokafka's ``client``, such as ``start()``), wait for
    it to end, and close the connections its coroutines held in local variables that
    ``client`` does not keep (a bootstrap connection: see the module docstring)."""
    held = _held_connections(task)
    task.cancel()
    await asyncio.wait({task})
    conns = getattr(client, "_conns", None)
    kept = {id(c) for c in conns.values()} if isinstance(conns, dict) else set()
    for conn in held:
        if id(conn) not in kept and getattr(conn, "_reader", None) is not None:
            conn.close(reason=CloseReason.SHUTDOWN)


def _held_connections(task: asyncio.Task[Any]) -> list[AIOKafkaConnection]:
    """The aiokafka connections in the local variables of the chain of coroutines that
    ``task`` is suspended in."""
    found: list[AIOKafkaConnection] = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None)
        if frame is not None:
            found += [v for v in frame.f_locals.values() if isinstance(v, AIOKafkaConnection)]
        coro = getattr(coro, "cr_await", None)
    return found


async def within(aw: Awaitable[Any], timeout: float) -> Any:
    """``await aw``, raising ``TimeoutError`` after ``timeout`` seconds.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives in
    the step where ``aw`` completes (it returns the result instead). The consumer's
    connection watch then missed the poller's cancel at shutdown and kept running, and
    ``Control.shutdown()`` never completed (seen with a pattern subscription on a broker
    with hundreds of topics: the watch spent most of its time waiting for the metadata).
    """
    async with asyncio.timeout(timeout):
        return await aw
