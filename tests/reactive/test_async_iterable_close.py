"""Source.from_async_iterable closes its generator after a step that was still running."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import pytest

from reactive import Materializer, Sink, Source

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


class Boom(Exception):
    """A test failure."""


@pytest.mark.parametrize("boundary", [True, False], ids=["boundary", "fused"])
async def test_failure_while_a_step_is_running_closes_the_generator_once(
    boundary: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # The generator is suspended inside a step (awaiting an event nobody sets) when the
    # stream fails downstream: aclose() must wait for that step to be cancelled instead of
    # raising "aclose(): asynchronous generator is already running" in a helper task.
    finally_ran = asyncio.Event()
    waiting = asyncio.Event()

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
            waiting.set()
            await asyncio.Event().wait()
            yield 3
        finally:
            finally_ran.set()

    async def fail_late(x: int) -> int:
        await waiting.wait()
        if x == 2:
            raise Boom("downstream")
        return x

    caplog.set_level(logging.DEBUG, logger="reactive")
    async with Materializer() as mat:
        src = Source.from_async_iterable(agen)
        if boundary:
            src = src.async_boundary()
        with pytest.raises(Boom):
            await src.map_async(4, fail_late).run_with(Sink.ignore(), mat)
        await asyncio.wait_for(finally_ran.wait(), 5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert mat.running_tasks == 0
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
