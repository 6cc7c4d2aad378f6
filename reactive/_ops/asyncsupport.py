"""Running awaitables on behalf of a stage: tasks owned by the stage, results delivered
back inside the stage through an async callback."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

from .._stage.logic import GraphStageLogic

__all__ = ["AwaitingLogicMixin"]


class AwaitingLogicMixin(GraphStageLogic):
    """Adds ``_await(awaitable, handler)``: ``handler(future)`` runs inside the stage when
    the awaitable is done. Pending work is cancelled when the stage stops."""

    _inflight: set[asyncio.Future[Any]] | None = None
    _done_cb: Any = None

    def _await(
        self, aw: Awaitable[Any], handler: Callable[[asyncio.Future[Any]], None]
    ) -> asyncio.Future[Any]:
        if self._done_cb is None:
            self._done_cb = self.get_async_callback(self._deliver)
            self._inflight = set()
            self._add_stop_hook(self._cancel_inflight)
        if inspect.iscoroutine(aw):
            fut: asyncio.Future[Any] = self.materializer.spawn(aw)
        else:
            fut = asyncio.ensure_future(aw)
        assert self._inflight is not None
        self._inflight.add(fut)
        cb = self._done_cb
        if fut.done():
            # Deliver through the mailbox all the same: handlers never re-enter.
            self._inflight.discard(fut)
            cb.invoke((fut, handler))
        else:
            fut.add_done_callback(lambda f: self._on_done(f, handler))
        return fut

    def _on_done(self, fut: asyncio.Future[Any], handler: Any) -> None:
        if self._inflight is not None:
            self._inflight.discard(fut)
        if not fut.cancelled():
            fut.exception()  # mark retrieved; the handler sees it
        self._done_cb.invoke((fut, handler))

    def _deliver(self, item: tuple[asyncio.Future[Any], Any]) -> None:
        fut, handler = item
        handler(fut)

    def _cancel_inflight(self) -> None:
        if self._inflight:
            for f in list(self._inflight):
                f.cancel()
            self._inflight.clear()
