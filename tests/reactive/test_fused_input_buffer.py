"""An ``input_buffer`` set on one operator behind an async boundary sizes that boundary
with fast paths on as with them off (fused, the attribute was dropped: 16 read ahead
instead of 4)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Attributes, Flow, Keep, Materializer, Sink, Source


async def _read_ahead(flow: Flow[Any, Any, Any], materializer: Materializer) -> int:
    taken = [0]

    def count(x: int) -> int:
        taken[0] += 1
        return x

    probe_sink = Sink.queue()
    queue = (
        Source.from_iterable(range(1000))
        .map(count)
        .async_boundary()
        .via(flow)
        .to_mat(probe_sink, Keep.right)
        .run(materializer)
    )
    await queue.pull()
    for _ in range(50):
        await asyncio.sleep(0)
    queue.cancel()
    return taken[0]


@pytest.mark.parametrize("fast_paths", [True, False])
@pytest.mark.parametrize(
    "make",
    [
        lambda: Flow[int]().map(lambda x: x),
        lambda: Flow[int]().filter(lambda x: True),
        lambda: Flow[int]().map(lambda x: x).map(lambda x: x),
    ],
    ids=["map", "filter", "map.map"],
)
async def test_the_operators_input_buffer_sizes_the_boundary(make: Any, fast_paths: bool) -> None:
    flow = make().with_attributes(Attributes.input_buffer(4, 4))
    async with Materializer(fast_paths=fast_paths) as mat:
        # 4 in the boundary's buffer, 16 prefetched by Sink.queue: 20, not 16 + 16
        assert await _read_ahead(flow, mat) == 20
