"""``Control`` and ``DrainingControl``: the materialized values of the consumer sources.

A :class:`Control` talks to the running consumer stage through async callbacks;
every method is safe to call at any time, also after the stage stopped (then it
returns at once). Shutdown order, as Alpakka recommends for offsets stored in
Kafka::

    stop()          stop emitting, complete the stream; the consumer stays in the
                    group and keeps serving commits
    (stream done)   downstream finished: every commit was requested and answered
    shutdown()      close the consumer (after waiting up to stop_timeout for
                    commits still in flight); is_shutdown completes

``drain_and_shutdown(stream_done)`` does the three in order.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reactive import Done

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["Control", "DrainingControl", "Metrics"]

T = TypeVar("T")


class Metrics(dict[str, Any]):
    """The dict ``Control.metrics()`` returns; also awaitable (Alpakka's ``metrics`` is a
    ``Future``): ``await control.metrics()`` gives the same dict."""

    __slots__ = ()

    def __await__(self) -> Any:
        return self
        yield  # pragma: no cover - makes this a generator


class Control:
    """The materialized value of every ``Consumer`` source (Alpakka's ``Consumer.Control``).

    Created by the consumer stage; users never build one.
    """

    __slots__ = ("_command", "_metrics", "_shutdown")

    def __init__(
        self,
        command: Callable[[tuple[str, asyncio.Future[Any]]], None],
        metrics: Callable[[], dict[str, Any]],
        shutdown_future: asyncio.Future[Any],
    ) -> None:
        self._command = command
        self._metrics = metrics
        self._shutdown = shutdown_future

    async def _send(self, name: str) -> None:
        if self._shutdown.done():
            return
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._command((name, fut))
        # The stage may stop before it reads the command: then is_shutdown completes.
        await asyncio.wait({fut, self._shutdown}, return_when=asyncio.FIRST_COMPLETED)
        if not fut.done():
            fut.cancel()

    async def stop(self) -> Any:
        """Stop emitting and complete the stream (and every partition substream).

        The consumer stays alive and in its group, so commits of records already
        emitted still succeed; call :meth:`shutdown` (or use
        :meth:`drain_and_shutdown`) to close it. Returns ``Done``.
        """
        await self._send("stop")
        return Done

    async def shutdown(self) -> Any:
        """Stop emitting, then close the consumer and wait until it is closed.

        Commits still in flight get up to ``ConsumerSettings.stop_timeout`` to be
        answered first; nothing waits when none is in flight. Returns ``Done``.
        """
        await self._send("shutdown")
        await asyncio.shield(self._shutdown)
        return Done

    async def drain_and_shutdown(self, stream_done: Awaitable[T]) -> T:
        """:meth:`stop`, wait for ``stream_done`` (e.g. the committer sink's result),
        then :meth:`shutdown`; returns the stream's result.

        Cancelled (a ``wait_for`` bounding the drain, say), it still shuts the consumer
        down, and leaves ``stream_done`` alone: the stream's own outcome (the commit
        failure that made the drain slow) is still there to be awaited or reported.

        Raises:
            BaseException: the stream's failure, after the consumer was shut down.
        """
        await self.stop()
        try:
            # Shielded: awaiting a future directly cancels it with the caller.
            result = await asyncio.shield(stream_done)
        except BaseException:
            await self.shutdown()
            raise
        await self.shutdown()
        return result

    @property
    def is_shutdown(self) -> Awaitable[Any]:
        """An awaitable that completes (with ``Done``) once the consumer is closed and the
        stage stopped, for whatever reason (shutdown, cancellation, failure)."""
        return asyncio.shield(self._shutdown)

    def metrics(self) -> Metrics:
        """A snapshot of the stage's counters.

        Keys: ``buffered_records`` (fetched, not yet emitted), ``max_buffered_records``,
        ``assigned_partitions``, ``paused_partitions`` (held back by back pressure: none
        of their records are taken now), ``records_fetched``, ``polls`` (``getmany``
        calls made on the aiokafka consumer),
        ``records_emitted``, ``records_skipped`` (deserialization failures resumed by
        supervision), ``records_dropped`` (buffered records of revoked partitions),
        ``commits``, ``commit_failures``, ``lag`` (per partition: high watermark from the
        last fetch minus the next offset to emit).

        The dict is also awaitable (``await control.metrics()``, as Alpakka's ``Future``).
        """
        return Metrics(self._metrics())

    def __repr__(self) -> str:
        state = "shut down" if self._shutdown.done() else "running"
        return f"<Control {state}>"


class DrainingControl(Generic[T]):
    """A :class:`Control` paired with the stream's completion (Alpakka's ``DrainingControl``).

    Build it as the combiner of ``to_mat``::

        control = source.to_mat(Committer.sink(settings), DrainingControl).run(mat)
        await control.drain_and_shutdown()
    """

    __slots__ = ("_control", "_stream_done")

    def __init__(self, control: Control, stream_done: Awaitable[T]) -> None:
        if isinstance(control, DrainingControl):
            control = control.control
        if not isinstance(control, Control):
            raise TypeError(
                f"DrainingControl needs the Control of a Consumer source, got {control!r}; "
                "use it as source.to_mat(sink, DrainingControl)"
            )
        if not inspect.isawaitable(stream_done):
            raise TypeError(
                "DrainingControl needs the stream's completion, an awaitable, as the sink's "
                f"materialized value; got {stream_done!r}. A sink built as "
                "Flow().....to(sink) keeps the flow's value: build it with "
                ".to_mat(sink, Keep.right)"
            )
        self._control = control
        self._stream_done = asyncio.ensure_future(stream_done)

    @property
    def control(self) -> Control:
        """The consumer's :class:`Control`."""
        return self._control

    @property
    def stream_completion(self) -> Awaitable[T]:
        """The stream's completion (the sink's materialized value)."""
        return self._stream_done

    async def drain_and_shutdown(self) -> T:
        """Stop, wait for the stream to finish, shut the consumer down; returns the
        stream's result or raises its failure (after shutting down)."""
        return await self._control.drain_and_shutdown(self._stream_done)

    async def stop(self) -> Any:
        """:meth:`Control.stop`."""
        return await self._control.stop()

    async def shutdown(self) -> Any:
        """:meth:`Control.shutdown` (does not wait for the stream)."""
        return await self._control.shutdown()

    @property
    def is_shutdown(self) -> Awaitable[Any]:
        """Completes once the consumer is closed and the stream finished."""
        shutdown = self._control._shutdown
        stream_done = self._stream_done
        both: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def check(_: Any) -> None:
            if shutdown.done() and stream_done.done() and not both.done():
                both.set_result(Done)

        shutdown.add_done_callback(check)
        stream_done.add_done_callback(check)
        return both

    def metrics(self) -> Metrics:
        """:meth:`Control.metrics` (a dict, also awaitable)."""
        return self._control.metrics()
