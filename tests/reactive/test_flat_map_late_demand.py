"""flat_map_concat/merge complete when the last inner element waited for demand after its
inner source had already finished (core fix found while writing the model publisher)."""

from __future__ import annotations

import asyncio

from reactive import Materializer, Source
from reactive.testkit import TestSink


async def test_flat_map_concat_completes_after_a_buffered_last_element(
    materializer: Materializer,
) -> None:
    probe = (
        Source.from_iterable([1, 2])
        .flat_map_concat(lambda x: Source.single(x))
        .run_with(TestSink.probe(), materializer)
    )
    # No demand yet: the inner source of 1 pushes, finishes, and 1 waits in the stage.
    await asyncio.sleep(0.01)
    probe.request(1)
    assert await probe.expect_next() == 1
    await asyncio.sleep(0.01)
    probe.request(1)
    assert await probe.expect_next() == 2
    await probe.expect_complete()


async def test_flat_map_merge_completes_after_buffered_elements(
    materializer: Materializer,
) -> None:
    probe = (
        Source.from_iterable([1, 2, 3])
        .flat_map_merge(3, lambda x: Source.single(x))
        .run_with(TestSink.probe(), materializer)
    )
    await asyncio.sleep(0.01)
    probe.request(3)
    assert sorted(await probe.expect_next_n(3)) == [1, 2, 3]
    await probe.expect_complete()
