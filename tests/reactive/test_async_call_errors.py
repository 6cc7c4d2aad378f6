"""What an asynchronous operator's function gets wrong says so, and is supervised.

Found by an exploratory review:

- a call whose awaitable was cancelled (it raised ``asyncio.CancelledError``) failed the
  stream with ``CancelledError``: awaiting the stream then looked like the caller's own
  cancellation (it escaped ``except Exception`` and ended ``asyncio.run``), and resume was
  ignored. It is now :class:`reactive.AsyncCallCancelledError`, decided on by supervision
  (Akka decides on a future failed with a CancellationException);
- a function returning something not awaitable failed with asyncio's bare ``TypeError``
  naming no operator; the error now names the stage and what it got.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    AsyncCallCancelledError,
    Attributes,
    Keep,
    Materializer,
    Sink,
    Source,
    Supervision,
)

RESUME = Attributes.supervision_strategy(lambda exc: Supervision.resume)


async def _cancelled_on_3(x: int) -> int:
    if x == 3:
        raise asyncio.CancelledError  # e.g. an awaited task cancelled elsewhere
    await asyncio.sleep(0)
    return x


async def _step(acc: int, x: int) -> int:
    return acc + await _cancelled_on_3(x)


def _graphs() -> dict[str, Any]:
    return {
        "map_async": lambda s: s.map_async(2, _cancelled_on_3).to_mat(Sink.seq(), Keep.right),
        "map_async_unordered": lambda s: s.map_async_unordered(2, _cancelled_on_3).to_mat(
            Sink.seq(), Keep.right
        ),
        "map_async_partitioned": lambda s: s.map_async_partitioned(
            2, 1, lambda x: x % 2, lambda x, p: _cancelled_on_3(x)
        ).to_mat(Sink.seq(), Keep.right),
        "scan_async": lambda s: s.scan_async(0, _step).to_mat(Sink.seq(), Keep.right),
        "foreach_async": lambda s: s.to_mat(Sink.foreach_async(2, _cancelled_on_3), Keep.right),
    }


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("name", sorted(_graphs()))
async def test_a_cancelled_call_fails_the_stream_with_an_ordinary_error(
    name: str, fast: bool
) -> None:
    async with Materializer(fast_paths=fast) as mat:
        graph = _graphs()[name](Source.from_iterable(range(6)))
        with pytest.raises(AsyncCallCancelledError, match=r"was cancelled") as info:
            await asyncio.wait_for(graph.run(mat), 5)
    assert isinstance(info.value.__cause__, asyncio.CancelledError)


@pytest.mark.parametrize("fast", [True, False])
async def test_resume_drops_the_element_whose_call_was_cancelled(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        for par in (1, 4):
            got = await (
                Source.from_iterable(range(6))
                .map_async(par, _cancelled_on_3)
                .with_attributes(RESUME)
                .run_with(Sink.seq(), mat)
            )
            assert got == [0, 1, 2, 4, 5]


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("name", "build"),
    [
        ("map_async", lambda s: s.map_async(2, lambda x: x)),
        ("map_async_unordered", lambda s: s.map_async_unordered(1, lambda x: x)),
        ("scan_async", lambda s: s.scan_async(0, lambda a, x: a + x)),
    ],
)
async def test_a_function_returning_no_awaitable_names_the_stage(
    name: str, build: Any, fast: bool
) -> None:
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(TypeError) as info:
            await build(Source.from_iterable([1, 2])).run_with(Sink.seq(), mat)
    assert str(info.value).startswith(f"[{name}] the function returned int 1, not an awaitable")
