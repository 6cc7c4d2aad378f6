"""A stage reading an async boundary's buffer in place (a lend: ``map_async(1)`` and a fused
chain behind a boundary, fast paths on) counts a pull with each push, as element by
element. Found by a review: 100 pushes and 1 pull into ``map_async(1)``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Keep, Materializer, Sink, Source


async def _work(x: int) -> int:
    await asyncio.sleep(0)
    return x


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("consumer", ["map_async", "fused"])
async def test_reading_a_boundarys_buffer_counts_its_pulls(fast: bool, consumer: str) -> None:
    src: Any = Source.from_iterable(range(100)).named("src").async_boundary()
    flow = src.map_async(1, _work) if consumer == "map_async" else src.map(lambda x: x)
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        await flow.named("w").to_mat(Sink.ignore().named("sink"), Keep.right).named("g").run(mat)
        stages = mat.snapshot().graph("g").stages
    [conn] = [c for s in stages for c in s.outlets if c.upstream.endswith("async-in")]
    m = conn.metrics
    assert m.elements == 100
    assert m.pushes <= m.pulls <= m.pushes + 1, m
