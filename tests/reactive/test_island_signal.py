"""The cross-island signal's direct runs (issue 19): ``Island.signal`` runs its callback at
once, without the mailbox, when the island is parked with nothing queued, nested in
another island's run (the hop across a boundary) or as the outermost run (a worker
task's result, an async callback invoked from another task, a ``call_soon`` callback).

With the fast paths off the signal takes the plain path (mailbox, then ``execute``), so
each test runs both and compares them with a Python model: a differential property test
of random chains whose elements leave the stream through other tasks and come back
through async callbacks, across async boundaries and ``map_async`` workers; the order of
mailbox entries; fairness (a busy run started by a signal still ends after
``EVENT_LIMIT`` events); failures in the callback; and the blocked-loop watch, which
times the callback and the events it leaves as one run.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Flow, Keep, Materializer, RunnableGraph, Sink, Source
from reactive._impl.interpreter import EVENT_LIMIT
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    SinkShape,
    SourceShape,
)
from reactive.testkit import TestSink
from tests.reactive.support import OneByOne
from tests.reactive.test_blocked_loop import BlockingClock, warnings_of
from tests.reactive.test_junction_batches import DEMAND, drive_on_own_materializer

SETTINGS = settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Boom(Exception):
    """The failure injected into a callback."""


class Escape(BaseException):
    """Not an ``Exception``: propagates out of the signal (as cancellation would)."""


# -- an element that leaves the stream through another task -------------------------------
class _Away(GraphStage[FlowShape]):
    """``x -> x * k + 1``, computed after a trip through another task (``suspend`` loop
    steps away, or a ``call_soon`` callback with ``suspend`` 0) that hands it back through
    an async callback; one element away at a time. Raises ``Boom`` in the callback for
    its ``fail_at``-th element."""

    def __init__(self, k: int, suspend: int, fail_at: int | None, tasks: set[Any]) -> None:
        super().__init__()
        self.k = k
        self.suspend = suspend
        self.fail_at = fail_at
        self.tasks = tasks
        self.shape = FlowShape(Inlet("Away.in"), Outlet("Away.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _AwayLogic(self)


class _AwayLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, stage: _Away) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.in_ = stage.shape.in_
        self.out = stage.shape.out
        self.count = 0
        self.away = False
        self.finishing = False
        self.set_handlers(self.in_, self.out, self)

    def pre_start(self) -> None:
        self.back = self.get_async_callback(self._back)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        self.away = True
        loop = asyncio.get_running_loop()
        if self.stage.suspend == 0:
            loop.call_soon(self.back.invoke, x)
        else:
            self.stage.tasks.add(loop.create_task(self._trip(x)))

    async def _trip(self, x: int) -> None:
        for _ in range(self.stage.suspend):
            await asyncio.sleep(0)
        self.back.invoke(x)

    def _back(self, x: int) -> None:
        self.away = False
        self.count += 1
        if self.count == self.stage.fail_at:
            raise Boom(self.count)
        self.push(self.out, x * self.stage.k + 1)
        if self.finishing:
            self.complete_stage()

    def on_pull(self) -> None:
        self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.away:
            self.finishing = True
        else:
            self.complete_stage()


async def slow_identity(x: int) -> int:
    await asyncio.sleep(0)
    return x


Op = tuple[str, int, int]
OPS = st.one_of(
    st.tuples(st.just("away"), st.integers(1, 3), st.integers(0, 3)),
    st.tuples(st.just("async"), st.just(0), st.just(0)),
    st.tuples(st.just("map"), st.integers(1, 3), st.just(0)),
    st.tuples(st.just("map_async"), st.integers(1, 3), st.just(0)),
)


def chain(xs: list[int], ops: list[Op], fail: tuple[int, int] | None, tasks: set[Any]) -> Any:
    flow = Source.from_iterable(xs)
    for j, (kind, k, s) in enumerate(ops):
        if kind == "away":
            fail_at = fail[1] if fail is not None and fail[0] == j else None
            flow = flow.via(Flow.from_graph(_Away(k, s, fail_at, tasks)))
        elif kind == "async":
            flow = flow.async_boundary()
        elif kind == "map":
            flow = flow.map(lambda x, k=k: x * k + 1)
        else:
            flow = flow.map_async(k, slow_identity)
    return flow.to_mat(TestSink.probe(), Keep.right)


def model(xs: list[int], ops: list[Op], fail: tuple[int, int] | None) -> tuple[list[int], int]:
    """The outputs, and how many come out at most before the injected failure (all of
    them when nothing fails): every operator is one-to-one and keeps order."""
    out = []
    limit = len(xs)
    for i, x in enumerate(xs):
        for j, (kind, k, _) in enumerate(ops):
            if kind in ("away", "map"):
                if kind == "away" and fail is not None and fail[0] == j and i + 1 == fail[1]:
                    limit = min(limit, i)
                x = x * k + 1
        out.append(x)
    return out, limit


async def run_chain(make: Any, fast_paths: bool, demand: list[int], cancel: bool) -> Any:
    return await drive_on_own_materializer(make(), "island-signal", fast_paths, demand, cancel)


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 50), max_size=40),
    ops=st.lists(OPS, min_size=1, max_size=6),
    fail=st.one_of(st.none(), st.tuples(st.integers(0, 5), st.integers(1, 40))),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_elements_through_other_tasks_and_back_match_python(
    xs: list[int], ops: list[Op], fail: tuple[int, int] | None, demand: list[int], cancel: bool
) -> None:
    """Direct runs on and off (fast paths on and off) both give a prefix of the model, in
    order, nothing beyond demand; all of it when nothing fails or cancels, and the
    injected failure only where the model has one."""
    ref, limit = model(xs, ops, fail)
    ends = []
    for fast_paths in (True, False):
        tasks: set[Any] = set()
        out, end = await run_chain(
            lambda tasks=tasks: chain(xs, ops, fail, tasks), fast_paths, demand, cancel
        )
        await asyncio.gather(*tasks)
        assert out == ref[: len(out)], fast_paths
        if end == "complete":
            assert out == ref and limit == len(xs), fast_paths
        elif end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1]), fast_paths
        else:
            assert isinstance(end, Boom), (fast_paths, end)
            assert limit < len(xs) and len(out) <= limit, fast_paths
        ends.append(end if isinstance(end, str) else type(end))
    if not cancel:
        assert ends[0] == ends[1], ends


# -- a stage driven by async callbacks only -----------------------------------------------
class _Gate(GraphStage[FlowShape]):
    """Passes elements once opened by its async callback (``gate``, set on the stage when
    the logic starts); a callback argument other than ``"open"`` is recorded in ``log``,
    and an int ``n`` > 0 invokes the callback again with ``n - 1`` from inside the handler
    (the island is running: that goes to the mailbox); ``"stop"`` completes the stage."""

    def __init__(self, log: list[Any], block: Any = None) -> None:
        super().__init__()
        self.log = log
        self.block = block
        self.gate: Any = None
        self.logic: Any = None
        self.shape = FlowShape(Inlet("Gate.in"), Outlet("Gate.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GateLogic(self)


class _GateLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, stage: _Gate) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.in_ = stage.shape.in_
        self.out = stage.shape.out
        self.open = False
        self.set_handlers(self.in_, self.out, self)

    def pre_start(self) -> None:
        self.stage.gate = self.get_async_callback(self._on_signal)
        self.stage.logic = self

    def _on_signal(self, arg: Any) -> None:
        if self.stage.block is not None:
            self.stage.block()
        if arg == "open":
            self.open = True
            if self.is_available(self.out) and not self.has_been_pulled(self.in_):
                self.pull(self.in_)
            return
        if arg == "fail":
            raise Boom("in the callback")
        if arg == "escape":
            raise Escape
        if arg == "stop":
            self.complete_stage()
            return
        self.stage.log.append(arg)
        if isinstance(arg, int) and arg > 0:
            self.stage.gate.invoke(arg - 1)

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))

    def on_pull(self) -> None:
        if self.open:
            self.pull(self.in_)


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_signals_keep_their_order(fast_paths: bool) -> None:
    # The first invoke finds the island parked and runs at once; the ones its handler
    # makes go to the mailbox (the island is running) and run in the same run, in order,
    # before the test's next invoke. Invokes from a call_soon callback and from another
    # island's run (across a boundary) keep their order too.
    log: list[Any] = []
    gate = _Gate(log)
    async with Materializer(fast_paths=fast_paths) as mat:
        done = Source.never().via(Flow.from_graph(gate)).to_mat(Sink.ignore(), Keep.right).run(mat)
        await settle()
        gate.gate.invoke(2)
        assert log == [2, 1, 0]
        gate.gate.invoke("a")
        gate.gate.invoke("b")
        assert log == [2, 1, 0, "a", "b"]
        loop = asyncio.get_running_loop()
        for x in ("c", "d", 1):
            loop.call_soon(gate.gate.invoke, x)
        await settle()
        assert log == [2, 1, 0, "a", "b", "c", "d", 1, 0]
        # From another island's handlers: each element of the upstream island invokes
        # the gate's callback (nested in that island's run).
        signals = Source.from_iterable(["e", "f", 2]).async_boundary()
        await signals.run_with(Sink.foreach(gate.gate.invoke), mat)
        await settle()
        assert log == [2, 1, 0, "a", "b", "c", "d", 1, 0, "e", "f", 2, 1, 0]
        island = gate.logic._island
        assert not island.mailbox and not island.running and not done.done()
        # Every run, direct or not, nested or outermost, gave its bookkeeping back.
        assert island.sched.inline_depth == 0 and island.sched.executing == 0


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_a_signal_to_a_stopped_logic_of_a_live_island_is_dropped(fast_paths: bool) -> None:
    # The gate stops (completes); ``concat`` keeps the island alive on its second source.
    # A signal still addressed to the gate (as a boundary's peer may send) does not run.
    log: list[Any] = []
    gate = _Gate(log)
    async with Materializer(fast_paths=fast_paths) as mat:
        Source.never().via(Flow.from_graph(gate)).concat(Source.never()).run_with(
            Sink.ignore(), mat
        )
        await settle()
        logic = gate.logic
        gate.gate.invoke("x")
        gate.gate.invoke("stop")
        await settle()
        island = logic._island
        assert logic._stopped and not island.finished and island.waiter is not None
        assert not island.queue and not island.mailbox  # parked and idle: a direct run
        island.signal(logic, log.append, "late")
        await settle()
        assert log == ["x"]


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_a_failing_callback_fails_the_stage_and_an_escape_leaves_the_island_usable(
    fast_paths: bool,
) -> None:
    log: list[Any] = []
    gate = _Gate(log)
    async with Materializer(fast_paths=fast_paths) as mat:
        result = (
            Source.from_iterable([1, 2, 3]).via(Flow.from_graph(gate)).run_with(Sink.seq(), mat)
        )
        await settle()
        island = gate.logic._island
        sched = island.sched
        with pytest.raises(Escape):
            gate.gate.invoke("escape")
        # The run's bookkeeping is restored on the way out.
        assert not island.running and sched.executing == 0 and sched.inline_depth == 0
        gate.gate.invoke("x")
        assert log == ["x"]
        gate.gate.invoke("open")
        assert await asyncio.wait_for(result, 10) == [1, 2, 3]

        gate2 = _Gate(log)
        result2 = Source.never().via(Flow.from_graph(gate2)).run_with(Sink.seq(), mat)
        await settle()
        gate2.gate.invoke("fail")
        with pytest.raises(Boom):
            await asyncio.wait_for(result2, 10)


class _Endless(GraphStage[Any]):
    """A custom source of 1s without end; counts its handler calls in ``calls``."""

    def __init__(self, calls: list[int]) -> None:
        super().__init__()
        self.calls = calls
        self.shape = SourceShape(Outlet("Endless.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self

        class _L(GraphStageLogic, OutHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.set_handler(stage.shape.out, self)

            def on_pull(self) -> None:
                stage.calls[0] += 1
                self.push(stage.shape.out, 1)

        return _L()


class _Counting(GraphStage[Any]):
    """A custom sink pulling one element at a time; counts its handler calls."""

    def __init__(self, calls: list[int]) -> None:
        super().__init__()
        self.calls = calls
        self.shape = SinkShape(Inlet("Counting.in"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self

        class _L(GraphStageLogic, InHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.set_handler(stage.shape.in_, self)

            def pre_start(self) -> None:
                self.pull(stage.shape.in_)

            def on_push(self) -> None:
                stage.calls[0] += 1
                self.grab(stage.shape.in_)
                self.pull(stage.shape.in_)

        return _L()


class _CountingGate(_Gate):
    def __init__(self, calls: list[int]) -> None:
        super().__init__([])
        self.calls = calls

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        calls = self.calls

        class _L(_GateLogic):
            def _on_signal(self, arg: Any) -> None:
                calls[0] += 1
                super()._on_signal(arg)

            def on_push(self) -> None:
                calls[0] += 1
                super().on_push()

            def on_pull(self) -> None:
                calls[0] += 1
                super().on_pull()

        return _L(self)


async def busy_calls(fast_paths: bool) -> list[int]:
    calls = [0]
    gate = _CountingGate(calls)
    async with Materializer(fast_paths=fast_paths) as mat:
        RunnableGraph.from_graph(
            Source.from_graph(_Endless(calls))
            .via(Flow.from_graph(gate))
            .to(Sink.from_graph(_Counting(calls)))
        ).run(mat)
        await settle()
        assert calls[0] == 1  # the sink's pull reached the gate, which waits
        marks = []
        gate.gate.invoke("open")  # an outermost signal: the run it starts is bounded
        marks.append(calls[0])
        for _ in range(4):
            await asyncio.sleep(0)
            marks.append(calls[0])
        gate.logic.fail_stage(Boom("stop"))
    return marks


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_a_busy_run_started_by_a_signal_still_yields(fast_paths: bool) -> None:
    # Every event of this stream is one handler call of a custom stage. The callback is
    # the run's first event, then the stream would run forever: the invoke returns after
    # exactly EVENT_LIMIT events (the callback and 1023 handler calls), on the direct
    # path as on the plain one (mailbox entry, then execute), and the island's task goes
    # on by slices of exactly EVENT_LIMIT events between the steps of this task.
    marks = await busy_calls(fast_paths)
    assert marks[0] == 1 + EVENT_LIMIT, marks
    deltas = [b - a for a, b in itertools.pairwise(marks)]
    assert all(d in (0, EVENT_LIMIT) for d in deltas) and EVENT_LIMIT in deltas, deltas


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_the_watch_times_the_callback_and_the_events_it_leaves_as_one_run(
    caplog: pytest.LogCaptureFixture, fast_paths: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="reactive")
    clock = BlockingClock()
    gate = _Gate([], block=lambda: clock.block(0.3))

    def slow(x: int) -> int:
        clock.block(0.3)
        return x

    async with Materializer(clock=clock, blocking_threshold=0.5, fast_paths=fast_paths) as mat:
        result = (
            Source.single(7)
            .via(Flow.from_graph(gate))
            .via(Flow.from_graph(OneByOne()))
            .map(slow)
            .run_with(Sink.seq(), mat)
        )
        await settle()
        gate.gate.invoke("x")  # 0.3 s alone: under the threshold
        assert warnings_of(caplog) == []
        gate.gate.invoke("open")  # 0.3 s, then the element's 0.3 s in the same run
        assert await asyncio.wait_for(result, 10) == [7]
    messages = warnings_of(caplog)
    assert len(messages) == 1 and "blocks the event loop" in messages[0], messages
    assert "held the loop for 0.600 s" in messages[0], messages
