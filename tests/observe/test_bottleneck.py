"""The bottleneck finder: in a chain with one slow stage, the counters blame that stage."""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive.observe import blame, bottleneck
from reactive.stage import (
    FlowShape,
    GraphStage,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    TimerGraphStageLogic,
)
from reactive.testkit import ManualClock

#: Elements through the chain: more than an async boundary's buffer (16) holds.
N = 40


class Slow(GraphStage[FlowShape]):
    """Takes ``seconds`` (on the materializer's clock) to process each element."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.shape = FlowShape(Inlet("Slow.in"), Outlet("Slow.out"))

    def create_logic(self, attributes: Any) -> TimerGraphStageLogic:
        return _SlowLogic(self.shape, self.seconds)


class _SlowLogic(TimerGraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape)
        self.seconds = seconds
        self.done: deque[Any] = deque()
        self.busy = False
        self.finishing = False
        self.set_handlers(shape.in_, shape.out, self)

    def on_push(self) -> None:
        self.busy = True
        self.done.append(self.grab(self.shape.in_))
        self.schedule_once("work", self.seconds)

    def on_timer(self, key: Any) -> None:
        self.busy = False
        self.push(self.shape.out, self.done.popleft())
        if self.finishing:
            self.complete_stage()

    def on_pull(self) -> None:
        if not self.busy:
            self.pull(self.shape.in_)

    def on_upstream_finish(self) -> None:
        if self.busy:
            self.finishing = True
        else:
            self.complete_stage()


async def run_slow_chain(clock: ManualClock, mat: Materializer, boundaries: bool) -> list[int]:
    src = Source.from_iterable(range(N)).named("numbers").map(lambda x: x + 1).named("fast1")
    if boundaries:
        src = src.async_boundary()
    slow = src.via(Flow.from_graph(Slow(1.0)).named("slow"))
    if boundaries:
        slow = slow.async_boundary()
    graph = (
        slow.map(lambda x: x * 10)
        .named("fast2")
        .to_mat(Sink.seq().named("sink"), Keep.right)
        .named("pipeline")
    )
    result = graph.run(mat)
    for _ in range(N + 2):
        await clock.advance(1.0)
    out: list[int] = await asyncio.wait_for(result, 5)
    return out


@pytest.mark.parametrize("boundaries", [False, True])
async def test_metrics_blame_the_slow_stage(boundaries: bool) -> None:
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        assert await run_slow_chain(clock, mat, boundaries) == [10 * (i + 1) for i in range(N)]
        graph = mat.snapshot().graph("pipeline")
        culprit = bottleneck(graph)
        assert culprit is not None and culprit.name == "slow"
        assert graph.bottleneck() == culprit
        # The slow stage kept its downstream waiting all the time and never asked upstream
        # for more while working; the fast stages around it score (almost) nothing.
        assert blame(culprit) == 1.0
        scores = {s.id: blame(s) for s in graph.stages if not s.is_boundary and s.id != "slow"}
        assert max(scores.values()) < 0.01, scores
        up = graph.stage("fast1").metrics
        assert up is not None and up.backpressured_share > 0.99


async def test_no_metrics_no_blame() -> None:
    async with Materializer(metrics=False) as mat:  # (whatever REACTIVE_METRICS says)
        assert await Source.from_iterable([1]).run_with(Sink.seq(), mat) == [1]
        assert bottleneck(mat) is None
        assert all(blame(s) == 0.0 for s in mat.snapshot().stages)
