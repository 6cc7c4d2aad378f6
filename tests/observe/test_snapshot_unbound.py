"""A snapshot of a materializer no event loop runs yet is empty (found by a review:
``Materializer(metrics=True).snapshot()`` made outside a loop raised
``RuntimeError('no running event loop')``, while the exporters already answered an
empty view then)."""

from __future__ import annotations

import asyncio

from reactive import Keep, Materializer, Sink, Source
from reactive.observe import bottleneck, snapshot
from reactive.testkit import ManualClock


def test_a_snapshot_before_any_loop_is_empty() -> None:
    mat = Materializer(metrics=True)
    snap = mat.snapshot()
    assert snap.name == "materializer"
    assert snap.graphs == ()
    assert snap.time == 0.0
    assert snapshot(mat).graphs == ()
    assert snapshot(mat, graph="pipeline").graphs == ()
    assert bottleneck(mat) is None

    async def run() -> list[int]:
        async with mat:
            got: list[int] = (
                await Source.from_iterable([1, 2])
                .to_mat(Sink.seq(), Keep.right)
                .named("pipeline")
                .run(mat)
            )
            assert [g.name for g in mat.snapshot().graphs] == ["pipeline"]
            return got

    # The snapshot did not bind the materializer: it runs on the program's loop after.
    assert asyncio.run(run()) == [1, 2]


def test_a_snapshot_before_any_loop_reads_a_given_clock() -> None:
    mat = Materializer(metrics=True, clock=ManualClock(start=12.5))
    snap = mat.snapshot()
    assert snap.graphs == ()
    assert snap.time == 12.5
