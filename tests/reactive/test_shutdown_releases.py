"""A materializer's shutdown lets the tasks that release resources finish.

Found by an exploratory review: leaving ``async with Materializer()`` cancelled every task
of the materializer, the ones stages spawn in ``post_stop`` to close what they hold
included. ``Source.unfold_resource_async`` lost the resource its pending ``create`` was
opening (``close`` never ran, API.md: "exactly once on completion, failure or
cancellation ... async: once a pending ``create`` finishes"), and with a ``read`` pending
it started ``close`` while the cancelled read was still running (one user call at a time).
Tasks spawned with ``cancel_on_shutdown=False`` are now waited for, at most
``shutdown_timeout`` seconds, then cancelled with a WARNING.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import Materializer, Sink, Source


def _resource(log: list[str], pending: str) -> tuple[Any, Any, Any]:
    async def create() -> str:
        log.append("create")
        if pending == "create":
            await asyncio.sleep(0.05)
        log.append("created")
        return "r"

    async def read(r: str) -> str:
        if pending == "read":
            log.append("read")
            try:
                await asyncio.sleep(60)
            except asyncio.CancelledError:
                log.append("read cancelled")
                raise
        await asyncio.sleep(0)
        return "x"

    async def close(r: str) -> None:
        log.append("close")
        await asyncio.sleep(0.01)
        log.append("closed")

    return create, read, close


async def _shut_down_while(pending: str) -> list[str]:
    log: list[str] = []
    async with Materializer() as mat:
        Source.unfold_resource_async(*_resource(log, pending)).to(Sink.ignore()).run(mat)
        while ("create" if pending == "create" else "read") not in log:
            await asyncio.sleep(0.001)
    return log  # as it is when the shutdown returned


async def test_a_pending_create_finishes_and_its_resource_is_closed_before_shutdown_returns() -> (
    None
):
    assert await _shut_down_while("create") == ["create", "created", "close", "closed"]


async def test_a_pending_read_is_cancelled_and_ended_before_the_close_starts() -> None:
    assert await _shut_down_while("read") == [
        "create",
        "created",
        "read",
        "read cancelled",
        "close",
        "closed",
    ]


async def test_shutdown_waits_for_a_releasing_task_and_cancels_the_others() -> None:
    done: list[str] = []

    async def release() -> None:
        await asyncio.sleep(0.02)
        done.append("released")

    async def work() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            done.append("work cancelled")
            raise

    mat = Materializer()
    mat.spawn(release(), cancel_on_shutdown=False)
    mat.spawn(work())
    await asyncio.sleep(0)
    await mat.shutdown()
    assert done == ["work cancelled", "released"]
    assert mat.running_tasks == 0


async def test_a_releasing_task_still_running_after_shutdown_timeout_is_cancelled_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ended: list[str] = []

    async def stuck() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            ended.append("cancelled")
            raise

    mat = Materializer(name="m", shutdown_timeout=0.05)
    mat.spawn(stuck(), cancel_on_shutdown=False)
    with caplog.at_level(logging.WARNING, logger="reactive"):
        await mat.shutdown()
    assert ended == ["cancelled"]
    assert mat.running_tasks == 0
    [record] = [r for r in caplog.records if "shutdown_timeout" in r.getMessage()]
    assert "'m'" in record.getMessage() and "1 task(s)" in record.getMessage()


def test_shutdown_timeout_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="shutdown_timeout must be >= 0 seconds, got -1"):
        Materializer(shutdown_timeout=-1)
