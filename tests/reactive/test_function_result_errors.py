"""A function returning the wrong kind of value fails with an error naming the stage and
what it returned (found by an exploratory review: these gave Python's bare errors, e.g.
``'int' object is not iterable`` or ``not a graph or stage: [1]``); and an awaitable a
source awaits on the user's behalf that is cancelled fails the stream with
``AsyncCallCancelledError``, not asyncio's ``CancelledError``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import AsyncCallCancelledError, Materializer, Sink, Source


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: Source.from_iterable([1]).flat_map_concat(lambda x: [x]),
            "[flat_map_concat] the function returned list [1], not a Source",
        ),
        (
            lambda: Source.from_iterable([1]).flat_map_merge(2, lambda x: x),
            "[flat_map_merge] the function returned int 1, not a Source",
        ),
        (
            lambda: Source.from_iterable([1]).switch_map(lambda x: None),
            "[switch_map] the function returned NoneType None, not a Source",
        ),
        (
            lambda: Source.from_iterable([1]).map_concat(lambda x: x),
            "[map_concat] the function returned int 1, not an iterable",
        ),
        (
            lambda: Source.from_iterable([1]).stateful_map(lambda: 0, lambda s, x: x),
            "[stateful_map] the function returned int 1, not a (new state, element) pair",
        ),
        (
            lambda: Source.unfold(0, lambda s: s + 1),
            "[unfold_source] the function returned int 1, not a (next state, element) pair",
        ),
    ],
)
async def test_a_wrong_result_names_the_stage_and_what_it_got(
    build: Any, message: str, fast: bool
) -> None:
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(TypeError) as info:
            await build().run_with(Sink.seq(), mat)
    assert str(info.value).startswith(message), str(info.value)


async def test_a_pair_in_a_list_is_still_a_pair() -> None:
    got = await (
        Source.from_iterable([1, 2])
        .stateful_map(lambda: 0, lambda s, x: [s + x, s + x])
        .run_with(Sink.seq())
    )
    assert got == [1, 3]


async def test_a_cancelled_awaitable_of_from_awaitable_is_an_ordinary_failure() -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    result = Source.from_awaitable(fut).run_with(Sink.seq())
    await asyncio.sleep(0)
    fut.cancel()
    with pytest.raises(AsyncCallCancelledError, match=r"the awaitable was cancelled"):
        await result


async def test_a_cancelled_unfold_async_step_is_an_ordinary_failure() -> None:
    async def step(s: int) -> tuple[int, int] | None:
        if s == 2:
            raise asyncio.CancelledError
        return s + 1, s

    with pytest.raises(AsyncCallCancelledError):
        await Source.unfold_async(0, step).run_with(Sink.seq())
