"""Running awaitables on behalf of a stage: tasks owned by the stage, results delivered
back inside the stage through an async callback."""

from __future__ import annotations

import asyncio
import inspect
from functools import partial
from typing import TYPE_CHECKING, Any

from .._errors import AsyncCallCancelledError
from .._stage.logic import GraphStageLogic

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["AwaitingLogicMixin", "call_cancelled", "not_awaitable"]


def call_cancelled(
    stage: str,
    cancelled: asyncio.CancelledError | None = None,
    what: str = "the awaitable a call of the function returned",
) -> AsyncCallCancelledError:
    """The failure of a stage whose awaitable ``what`` was cancelled (an ``Exception``,
    so supervision decides on it; asyncio's ``CancelledError`` as its cause)."""
    err = AsyncCallCancelledError(f"[{stage}] {what} was cancelled")
    err.__cause__ = cancelled if cancelled is not None else asyncio.CancelledError()
    return err


def not_awaitable(stage: str, got: Any) -> TypeError:
    """The error for a function that was to return an awaitable and did not."""
    return TypeError(
        f"[{stage}] the function returned {type(got).__name__} {got!r}, not an awaitable "
        "(give an async def function, or one returning an awaitable)"
    )


class AwaitingLogicMixin(GraphStageLogic):
    """Adds ``_await(awaitable, handler)``: ``handler(future)`` runs inside the stage when
    the awaitable is done. Pending work is cancelled when the stage stops.

    Fast path: completions are collected and handed to the stage in batches (one
    ``call_soon`` and one interpreter run for all the futures that completed in the same
    loop iteration), and coroutines become plain tasks tracked by the stage rather than
    by the materializer (the stage cancels them when it stops).
    """

    _await_inflight: set[asyncio.Future[Any]] | None = None
    _await_done_cb: Any = None
    _await_completed: list[tuple[asyncio.Future[Any], Any]] | None = None
    _await_drain_scheduled = False

    def _await(
        self, aw: Awaitable[Any], handler: Callable[[asyncio.Future[Any]], None]
    ) -> asyncio.Future[Any]:
        if self._await_done_cb is None:
            self._await_done_cb = self.get_async_callback(self._deliver_all)
            self._await_inflight = set()
            self._await_completed = []
            self._add_stop_hook(self._cancel_inflight)
        loop = self._loop
        if inspect.iscoroutine(aw):
            fut: asyncio.Future[Any] = loop.create_task(aw)
        elif inspect.isawaitable(aw):
            fut = asyncio.ensure_future(aw, loop=loop)
        else:
            raise not_awaitable(self._stage_name, aw)
        inflight = self._await_inflight
        assert inflight is not None
        inflight.add(fut)
        fut.add_done_callback(partial(self._on_done, handler))
        return fut

    def _on_done(self, handler: Any, fut: asyncio.Future[Any]) -> None:
        if self._await_inflight is not None:
            self._await_inflight.discard(fut)
        if not fut.cancelled():
            fut.exception()  # mark retrieved; the handler sees it
        completed = self._await_completed
        if completed is None or self._stopped:
            return
        completed.append((fut, handler))
        if not self._await_drain_scheduled:
            self._await_drain_scheduled = True
            self._loop.call_soon(self._await_done_cb.invoke, None)

    def _deliver_all(self, _: Any) -> None:
        self._await_drain_scheduled = False
        completed = self._await_completed
        assert completed is not None
        while completed:
            batch = completed[:]
            completed.clear()
            for fut, handler in batch:
                if self._stopped:
                    return
                handler(fut)
        self._await_batch_done()

    def _await_batch_done(self) -> None:
        """Hook: runs once after a batch of completions was handled (default: nothing)."""

    def _cancel_inflight(self) -> None:
        if self._await_inflight:
            for f in list(self._await_inflight):
                f.cancel()
            self._await_inflight.clear()
