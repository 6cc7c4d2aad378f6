"""``map_async(1)``'s first step of a call, tried again only now and then after one that
suspended (``_SKIP_AFTER_SUSPENSION``): with calls that always suspend, a first step runs
about once per 64 calls; the results keep the order of a plain loop either way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Materializer, Sink, Source
from reactive._ops import async_


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_first_steps_of_suspending_calls_are_retried_every_64_calls(
    fast_paths: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call suspends: after a first step that suspended the next 64 calls are awaited
    as they are (no first step run by the stage), so at most one call in 65 is started
    by the stage and handed to the worker half-run; the results are the loop's."""
    started = 0
    real = async_._Started

    class Counting(real):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def __init__(self, coro: Any, yielded: Any) -> None:
            nonlocal started
            started += 1
            super().__init__(coro, yielded)

    monkeypatch.setattr(async_, "_Started", Counting)
    n = 1_300

    async def f(x: int) -> int:
        await asyncio.sleep(0)
        return x * 2

    async with Materializer(fast_paths=fast_paths, name="first-step") as mat:
        got = await Source.from_iterable(range(n)).map_async(1, f).run_with(Sink.seq(), mat)
    assert got == [x * 2 for x in range(n)]
    assert 1 <= started <= n // 65 + 2, started
