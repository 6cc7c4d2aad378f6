"""Time a stage spends working inside one synchronous run counts, metered boundaries or not.

An async boundary's direct hops run the islands on either side nested in one another:
a whole B2 chain (``map -> boundary -> filter -> boundary -> scan -> boundary -> sink``)
runs as a handful of outermost island runs. A wait that begins and ends inside one run is
therefore not "sub-microsecond plumbing": it can span a CPU-bound stage's whole batch.
These tests make a stage's function advance a ``ManualClock`` while it runs (the clock
moves inside the run, as a wall clock does while a stage computes) and check that the
counters still see it: the working stage is blamed, its outlet's connection starved and
its inlet's back-pressured for exactly the time it worked, the stages upstream of it
back-pressured. A metering that shares one
clock reading per island run (tried for observe_b2 and not kept) reports 0 s for both
and blames no stage.
"""

from __future__ import annotations

import asyncio

import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.observe import blame, bottleneck
from tests.observe.workclock import WorkClock, plus_one_working_in

#: Elements through the chain: many async-boundary buffers (16) of them.
N = 200
#: Clock seconds the working stage spends on each element.
WORK = 0.5


async def run_chain(mat: Materializer, clock: WorkClock, where: str) -> list[int]:
    """``numbers -> a -> boundary -> b -> boundary -> c -> sink`` with metrics on, where
    the stage named ``where`` spends ``WORK`` clock seconds on every element."""

    stage = plus_one_working_in(clock, where, WORK)
    graph = (
        Source.from_iterable(range(N))
        .named("numbers")
        .map(stage("a"))
        .named("a")
        .async_boundary()
        .map(stage("b"))
        .named("b")
        .async_boundary()
        .map(stage("c"))
        .named("c")
        .to_mat(Sink.seq().named("sink"), Keep.right)
        .named("chain")
    )
    out: list[int] = await asyncio.wait_for(graph.run(mat), 10)
    return out


@pytest.mark.parametrize("where", ["a", "b", "c"])
async def test_work_inside_one_run_is_blamed(where: str) -> None:
    clock = WorkClock()
    # No blocked-loop watch: the clock moves N * WORK seconds inside the runs.
    async with Materializer(clock=clock, metrics=True, blocking_threshold=None) as mat:
        assert await run_chain(mat, clock, where) == [i + 3 for i in range(N)]
        graph = mat.snapshot().graph("chain")
        culprit = bottleneck(graph)
        assert culprit is not None and culprit.name == where
        assert blame(culprit) == 1.0
        # All the clock's time passed in the working stage: its downstream waited on it
        # (starved) and it asked its upstream for nothing meanwhile (back-pressured).
        worked = graph.stage(where)
        (outlet,) = worked.outlets
        (inlet,) = worked.inlets
        assert outlet.metrics is not None and inlet.metrics is not None
        assert outlet.metrics.starved_seconds == pytest.approx(N * WORK)
        assert inlet.metrics.backpressured_seconds == pytest.approx(N * WORK)
        assert outlet.metrics.elements == inlet.metrics.elements == N
        if where != "a":
            # Upstream of it the source waited for demand while the worker worked, except
            # while the worker's first elements were on their way: the source runs ahead
            # by at most the two boundaries' buffers (16 each).
            (src_out,) = graph.stage("numbers").outlets
            assert src_out.metrics is not None
            assert src_out.metrics.backpressured_seconds >= (N - 2 * 16) * WORK
