"""The blocked-loop watch on the worker pool's path: a ``map_async(1)`` worker hands each
result to its island in a run of its own (``_MapAsyncLogic._work`` spells out
``Island.signal``'s outermost run), and that run is timed like any other outermost run:
a stage downstream that blocks in it is named once; runs under the threshold log
nothing. Time is the test clock of ``test_blocked_loop`` (it moves only when a stage
"blocks"), so every duration measured is exact.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import (
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
)
from tests.reactive.test_blocked_loop import BlockingClock, warnings_of


@pytest.fixture(autouse=True)
def _capture(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="reactive")


async def suspend(x: int) -> int:
    await asyncio.sleep(0)  # the result comes back on the worker task, not in the pull
    return x


def pool(clock: BlockingClock, seconds: float, n: int) -> RunnableGraph[Any]:
    """``Balance(2) -> 2 x map_async(1) -> Merge(2) -> fold`` whose fold blocks."""

    def add(acc: int, x: int) -> int:
        clock.block(seconds)
        return acc + x

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)))
        balance = b.add(Balance(2))
        merge = b.add(Merge(2))
        src.out >> balance.in_
        for i in range(2):
            balance.out(i) >> b.add(Flow().map_async(1, suspend)) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, add).named("total")))


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_a_stage_blocking_in_a_worker_result_run_is_named(
    caplog: pytest.LogCaptureFixture, fast_paths: bool
) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5, fast_paths=fast_paths) as mat:
        assert await pool(clock, 0.6, 20).run(mat) == sum(range(20))
    messages = warnings_of(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("[total] blocks the event loop"), messages[0]
    assert "held the loop for 0.600 s" in messages[0], messages[0]


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_worker_result_runs_under_the_threshold_log_nothing(
    caplog: pytest.LogCaptureFixture, fast_paths: bool
) -> None:
    clock = BlockingClock()
    async with Materializer(clock=clock, blocking_threshold=0.5, fast_paths=fast_paths) as mat:
        assert await pool(clock, 0.3, 20).run(mat) == sum(range(20))
    assert clock.now == pytest.approx(6.0)  # 6 s blocked in all, 0.3 s per run
    assert warnings_of(caplog) == []


async def test_a_sequential_map_async_result_run_is_timed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A plain chain: the worker's delivery queues its push, and the run it starts goes on
    # with the events it left behind (the blocking map among them).
    clock = BlockingClock()

    def parse(x: int) -> int:
        clock.block(0.7)
        return x

    async with Materializer(clock=clock, blocking_threshold=0.5) as mat:
        got = await (
            Source.from_iterable(range(6))
            .map_async(1, suspend)
            .map(parse)
            .named("parse")
            .run_with(Sink.seq(), mat)
        )
    assert got == list(range(6))
    messages = warnings_of(caplog)
    assert len(messages) == 1, messages
    assert messages[0].startswith("[parse] blocks the event loop"), messages[0]
