"""Running awaitables on behalf of a stage: tasks owned by the stage, results delivered
back inside the stage through an async callback."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from .._stage.logic import GraphStageLogic

__all__ = ["AwaitingLogicMixin"]


class AwaitingLogicMixin(GraphStageLogic):
    """Adds ``_await(awaitable, handler)``: ``handler(future)`` runs inside the stage when
    the awaitable is done. Pending work is cancelled when the stage stops.

    Fast path: completions are collected and handed to the stage in batches (one
    ``call_soon`` and one interpreter run for all the futures that completed in the same
    loop iteration), and coroutines become plain tasks tracked by the stage rather than
    by the materializer (the stage cancels them when it stops).
    """

    _inflight: set[asyncio.Future[Any]] | None = None
    _done_cb: Any = None
    _completed: list[tuple[asyncio.Future[Any], Any]] | None = None
    _drain_scheduled = False

    def _await(
        self, aw: Awaitable[Any], handler: Callable[[asyncio.Future[Any]], None]
    ) -> asyncio.Future[Any]:
        if self._done_cb is None:
            self._done_cb = self.get_async_callback(self._deliver_all)
            self._inflight = set()
            self._completed = []
            self._add_stop_hook(self._cancel_inflight)
        loop = self._loop
        if inspect.iscoroutine(aw):
            fut: asyncio.Future[Any] = loop.create_task(aw)
        else:
            fut = asyncio.ensure_future(aw, loop=loop)
        inflight = self._inflight
        assert inflight is not None
        inflight.add(fut)
        fut.add_done_callback(partial(self._on_done, handler))
        return fut

    def _on_done(self, handler: Any, fut: asyncio.Future[Any]) -> None:
        if self._inflight is not None:
            self._inflight.discard(fut)
        if not fut.cancelled():
            fut.exception()  # mark retrieved; the handler sees it
        completed = self._completed
        if completed is None or self._stopped:
            return
        completed.append((fut, handler))
        if not self._drain_scheduled:
            self._drain_scheduled = True
            self._loop.call_soon(self._done_cb.invoke, None)

    def _deliver_all(self, _: Any) -> None:
        self._drain_scheduled = False
        completed = self._completed
        assert completed is not None
        while completed:
            batch = completed[:]
            completed.clear()
            for fut, handler in batch:
                if self._stopped:
                    return
                handler(fut)

    def _cancel_inflight(self) -> None:
        if self._inflight:
            for f in list(self._inflight):
                f.cancel()
            self._inflight.clear()
