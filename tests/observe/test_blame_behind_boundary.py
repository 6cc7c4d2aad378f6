"""A stage behind an async boundary waits, starved, while the stage before the boundary works.

``numbers -> a -> boundary -> b -> boundary -> c -> sink`` with metrics on, on a
``WorkClock`` (a ``ManualClock`` that the working stage's function moves, see
``test_obs3_sync_work``), the work in ``b``. The boundary after ``b`` re-requests from
``b``'s island by a direct hop: ``b``'s work runs nested in the run of ``c``'s island,
at a moment when ``c`` has taken what the boundary held and not yet asked again (a fused
chain reads the boundary's buffer in place) or has an element pushed to it and not yet
handled (an element-at-a-time stage). In Akka's model ``c`` has asked (the boundary
holds its request) and holds no element: it is starved, and it is not to blame. These
tests check that ``c``'s inlet is starved for the time ``b`` worked, ``c``'s blame is
small and the bottleneck finder names ``b``.

Tolerance: exact (``pytest.approx``'s default relative 1e-6). Only ``b``'s function
moves the clock and every second of its work passes while ``c`` waits for it, so the
starved time is a sum of whole ``WORK`` steps, not an estimate.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler
from reactive._stage.shapes import FlowShape, Inlet, Outlet
from reactive.observe import blame, bottleneck
from tests.observe.workclock import WorkClock, plus_one_working_in

#: Elements through the chain: many async-boundary buffers (16) of them.
N = 200
#: Clock seconds the working stage spends on each element.
WORK = 0.5


class PlusOne(GraphStage[FlowShape]):
    """An element-at-a-time stage (no batch protocol): ``x + 1``, plus ``work`` seconds."""

    name = "plus_one"

    def __init__(self, clock: WorkClock, work: float) -> None:
        self.clock = clock
        self.work = work
        self.shape = FlowShape(Inlet("PlusOne.in"), Outlet("PlusOne.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self
        shape = self.shape

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handlers(shape.in_, shape.out, self)

            def on_push(self) -> None:
                x = self.grab(shape.in_)
                if stage.work:
                    stage.clock.spend(stage.work)
                self.push(shape.out, x + 1)

            def on_pull(self) -> None:
                self.pull(shape.in_)

        return Logic()


async def run_variant(variant: str, work_in_c: bool = False) -> Any:
    """Run the chain (``b`` working, or ``c`` with ``work_in_c``) with the stage after
    the second boundary as ``variant`` says; returns the graph's snapshot and the name
    of the stage after the boundary."""
    clock = WorkClock()

    def work(x: int) -> int:
        clock.spend(WORK)
        return x + 1

    def plus(x: int) -> int:
        return x + 1

    head = (
        Source.from_iterable(range(N))
        .named("numbers")
        .map(plus)
        .named("a")
        .async_boundary()
        .map(plus if work_in_c else work)
        .named("b")
        .async_boundary()
    )
    c_fn = work if work_in_c else plus
    if variant == "chain":
        graph: Any = head.map(c_fn).named("c").to_mat(Sink.seq().named("sink"), Keep.right)
        name, expect = "c", [i + 3 for i in range(N)]
    elif variant == "two_fused":
        graph = (
            head.map(c_fn)
            .named("c")
            .filter(lambda x: x % 2 == 0)
            .named("d")
            .to_mat(Sink.seq().named("sink"), Keep.right)
        )
        name, expect = "c+d", [i + 3 for i in range(N) if (i + 3) % 2 == 0]
    elif variant == "custom":
        stage = PlusOne(clock, WORK if work_in_c else 0.0)
        graph = head.via(Flow.from_graph(stage).named("c")).to_mat(
            Sink.seq().named("sink"), Keep.right
        )
        name, expect = "c", [i + 3 for i in range(N)]
    elif variant == "fold":
        graph = head.to_mat(Sink.fold(0, lambda acc, x: acc + x).named("c"), Keep.right)
        name, expect = "c", sum(i + 2 for i in range(N))
    else:  # pragma: no cover - the parametrization below
        raise ValueError(variant)
    # No blocked-loop watch: the clock moves N * WORK seconds inside the runs.
    async with Materializer(clock=clock, metrics=True, blocking_threshold=None) as mat:
        out = await asyncio.wait_for(graph.named("chain").run(mat), 10)
        assert out == expect
        return mat.snapshot().graph("chain"), name


@pytest.mark.parametrize("variant", ["chain", "two_fused", "custom", "fold"])
async def test_stage_behind_working_stage_is_starved(variant: str) -> None:
    graph, name = await run_variant(variant)
    waiting = graph.stage(name)
    (inlet,) = waiting.inlets
    assert inlet.metrics is not None
    # All of b's work passed while the stage after the boundary waited for it.
    assert inlet.metrics.starved_seconds == pytest.approx(N * WORK)
    assert inlet.metrics.backpressured_seconds == pytest.approx(0.0, abs=1e-9)
    assert inlet.metrics.elements == N
    assert blame(waiting) < 0.1
    culprit = bottleneck(graph)
    assert culprit is not None and culprit.name == "b"
    assert blame(culprit) == 1.0


@pytest.mark.parametrize("variant", ["chain", "custom"])
async def test_working_stage_behind_boundary_is_still_blamed(variant: str) -> None:
    # The same chain with the work in c: the waiting now counted at c's inlet must not
    # take any of c's own work (c is busy, its inlet back-pressured, all the time).
    # (The element-at-a-time stage gets its last element with the completion: its inlet
    # is closed, no longer timed, while it works on that one.)
    graph, name = await run_variant(variant, work_in_c=True)
    worker = graph.stage(name)
    (inlet,) = worker.inlets
    (outlet,) = worker.outlets
    assert inlet.metrics is not None and outlet.metrics is not None
    timed = N * WORK if variant == "chain" else (N - 1) * WORK
    assert inlet.metrics.backpressured_seconds == pytest.approx(timed)
    assert inlet.metrics.starved_seconds == pytest.approx(0.0, abs=1e-9)
    assert outlet.metrics.starved_seconds == pytest.approx(N * WORK)
    culprit = bottleneck(graph)
    assert culprit is not None and culprit.name == name
    assert blame(culprit) == 1.0


@pytest.mark.parametrize("variant", ["chain", "two_fused", "custom", "fold"])
async def test_counts_unchanged(variant: str) -> None:
    # The waiting moves time between phases only: the counts are the same pulls, pushes
    # and elements as without the work (where no direct hop nests b's work in c's run).
    graph, name = await run_variant(variant)
    m = graph.stage(name).inlets[0].metrics
    assert m is not None
    assert (m.elements, m.pulls, m.pushes) == EXPECTED_COUNTS[variant]


#: (elements, pulls, pushes) at the waiting stage's inlet, as measured before the waiting
#: was accounted (the counts the element-by-element accounting gives on this schedule).
EXPECTED_COUNTS = {
    "chain": (N, 12, 13),
    "two_fused": (N, 12, 13),
    "custom": (N, 200, 200),
    "fold": (N, 14, 13),
}


async def run_three_boundaries(where: str) -> Any:
    """``numbers -> a -> | -> b -> | -> c -> | -> d -> sink`` with the work in ``where``:
    the chain ``c`` hands its outputs to a third boundary (a synchronous hand-over), so
    the re-request of the boundary before it finds it between its take and its ask."""
    clock = WorkClock()

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
        .async_boundary()
        .map(stage("d"))
        .named("d")
        .to_mat(Sink.seq().named("sink"), Keep.right)
        .named("chain")
    )
    async with Materializer(clock=clock, metrics=True, blocking_threshold=None) as mat:
        assert await asyncio.wait_for(graph.run(mat), 10) == [i + 4 for i in range(N)]
        return mat.snapshot().graph("chain")


async def test_chain_before_another_boundary_is_starved() -> None:
    graph = await run_three_boundaries("b")
    (inlet,) = graph.stage("c").inlets
    assert inlet.metrics is not None
    assert inlet.metrics.starved_seconds == pytest.approx(N * WORK)
    assert (inlet.metrics.elements, inlet.metrics.pulls) == (N, 1)  # (as before the fix)
    assert blame(graph.stage("c")) < 0.1
    culprit = bottleneck(graph)
    assert culprit is not None and culprit.name == "b"


async def test_chain_back_pressured_by_boundary_is_not_starved() -> None:
    # The work after the third boundary: c hands its outputs on until that boundary's
    # window is full, then waits for demand (back-pressured): a re-request of the
    # boundary before it meanwhile is not c waiting for elements.
    graph = await run_three_boundaries("d")
    (inlet,) = graph.stage("c").inlets
    (outlet,) = graph.stage("c").outlets
    assert inlet.metrics is not None and outlet.metrics is not None
    # c asked for elements only while d had not yet taken its first ones: d works from
    # the first element on, so c's inlet is back-pressured all along.
    assert inlet.metrics.starved_seconds == pytest.approx(0.0, abs=1e-9)
    # (c's inlet closes once c has handed its last elements on, d still working on them)
    assert inlet.metrics.backpressured_share == 1.0
    assert inlet.metrics.backpressured_seconds >= (N - 16) * WORK
    culprit = bottleneck(graph)
    assert culprit is not None and culprit.name == "d"
