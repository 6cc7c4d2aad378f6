"""The interpreter's event budget on the element-at-a-time path (custom stages).

One ``Island.execute`` processes at most ``EVENT_LIMIT`` events, then the island's task
yields to the event loop. The chain ``Source.repeat -> custom map -> kill switch ->
Sink.ignore`` costs exactly six events per element (three pulls, three pushes), so between
two steps of another task the stream moves by ``EVENT_LIMIT / 6`` elements (170 or 171):
not more (the budget bounds a run, which keeps other tasks alive), not fewer (no event is
counted twice, and a run ends only when its budget is spent or its queue is empty).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from reactive import Flow, Keep, KillSwitches, Materializer, Sink, Source
from reactive._impl.interpreter import EVENT_LIMIT
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)


class _Counting(GraphStage[FlowShape]):
    def __init__(self, seen: list[int]) -> None:
        super().__init__()
        self.seen = seen
        self.shape = FlowShape(Inlet("Counting.in"), Outlet("Counting.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _CountingLogic(self)


class _CountingLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, stage: _Counting) -> None:
        super().__init__(stage.shape)
        self.seen = stage.seen
        self.in_ = stage.shape.in_
        self.out = stage.shape.out
        self.set_handlers(self.in_, self.out, self)

    def on_push(self) -> None:
        self.seen[0] += 1
        self.push(self.out, self.grab(self.in_))

    def on_pull(self) -> None:
        self.pull(self.in_)


async def test_a_busy_custom_stage_stream_yields_every_event_limit_events() -> None:
    seen = [0]
    async with Materializer() as mat:
        ks, done = (
            Source.repeat(1)
            .via(Flow.from_graph(_Counting(seen)))
            .via_mat(KillSwitches.single(), Keep.right)
            .to_mat(Sink.ignore(), Keep.both)
            .run(mat)
        )
        marks: list[int] = []
        for _ in range(12):
            marks.append(seen[0])
            await asyncio.sleep(0)
        ks.shutdown()
        await asyncio.wait_for(done, 10)
    deltas = [b - a for a, b in itertools.pairwise(marks[3:])]
    per_slice = EVENT_LIMIT / 6
    assert all(int(per_slice) <= d <= int(per_slice) + 1 for d in deltas), deltas
    assert abs(sum(deltas) - len(deltas) * per_slice) <= 1, deltas
