"""Per-stage counters (reactive.observe): exact counts and time shares on ManualClock."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import Any

import pytest

from reactive import Attributes, Keep, Materializer, Sink, Source, Supervision
from reactive._impl.interpreter import Connection
from reactive.observe import PortMetrics, StageMetrics
from reactive.observe._metering import MeteredConnection
from reactive.testkit import ManualClock, TestSink, TestSource


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def metrics_of(mat: Materializer, stage: str) -> StageMetrics:
    m = mat.snapshot().stage(stage).metrics
    assert m is not None
    return m


async def test_a_stage_back_pressured_3_s_of_4_reports_75_percent() -> None:
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .map(lambda x: x + 1)
            .named("inc")
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .run(mat)
        )
        sink.request(1)
        await src.expect_request()
        src.send_next(1)
        await sink.expect_next(2)
        # No demand for 3 s: inc holds nothing the sink asked for.
        await clock.advance(3.0)
        sink.request(1)
        await src.expect_request()
        # Demand, no element, for 1 s.
        await clock.advance(1.0)
        out = mat.snapshot().stage("inc").outlets[0].metrics
        assert out == PortMetrics(
            elements=1, pushes=1, pulls=2, backpressured_seconds=3.0, starved_seconds=1.0
        )
        assert out.backpressured_share == 0.75
        assert out.starved_share == 0.25
        inc = metrics_of(mat, "inc")
        assert inc.backpressured_share == 0.75
        assert (inc.elements_in, inc.elements_out) == (1, 1)
        # The sink's inlet is the same connection: starved 25% of the time.
        assert metrics_of(mat, "sink").starved_share == 0.25
        src.send_next(5)
        await sink.expect_next(6)
        await clock.advance(4.0)  # 4 s more without demand: 7 of 8 s back-pressured
        assert metrics_of(mat, "inc").backpressured_share == 7 / 8
        src.send_complete()
        await sink.expect_complete()
        await clock.advance(8.0)  # closed: time no longer counts
        out = mat.snapshot().stage("inc").outlets[0].metrics
        assert out is not None and out.backpressured_seconds + out.starved_seconds == 8.0


@pytest.mark.parametrize("fast", [True, False])
async def test_element_counts_are_exact_through_fused_chains_and_boundaries(fast: bool) -> None:
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        fused = (
            Source.from_iterable(range(1000))
            .named("numbers")
            .map(lambda x: x * 2)
            .named("map")
            .filter(lambda x: x % 3 == 0)
            .named("filter")
            .scan(0, lambda a, b: a + b)
            .named("scan")
            .to_mat(Sink.last().named("last_sink"), Keep.right)
            .named("b1")
        )
        assert await fused.run(mat) == 333666
        split = (
            Source.from_iterable(range(1000))
            .named("numbers")
            .map(lambda x: x * 2)
            .named("double")
            .async_boundary()
            .filter(lambda x: x % 3 == 0)
            .named("div3")
            .async_boundary()
            .scan(0, lambda a, b: a + b)
            .named("sum")
            .async_boundary()
            .to_mat(Sink.last().named("last"), Keep.right)
            .named("b2")
        )
        assert await split.run(mat) == 333666
        await settle()
        snap = mat.snapshot()
        b1 = {s.name: s.metrics for s in snap.graph("b1").stages}
        assert b1["numbers"] is not None and b1["numbers"].elements_out == 1000
        chain = b1["map+filter+scan"] if fast else None
        if chain is not None:
            assert (chain.elements_in, chain.elements_out) == (1000, 335)
        else:
            assert (b1["map"].elements_in, b1["map"].elements_out) == (1000, 1000)  # type: ignore[union-attr]
            assert (b1["filter"].elements_in, b1["filter"].elements_out) == (1000, 334)  # type: ignore[union-attr]
            assert (b1["scan"].elements_in, b1["scan"].elements_out) == (334, 335)  # type: ignore[union-attr]
        assert b1["last_sink"] is not None and b1["last_sink"].elements_in == 335
        b2 = {s.id: s.metrics for s in snap.graph("b2").stages}
        expected = {
            "numbers": (0, 1000),
            "double": (1000, 1000),
            "double.async-out": (1000, 0),
            "div3.async-in": (0, 1000),
            "div3": (1000, 334),
            "div3.async-out": (334, 0),
            "sum.async-in": (0, 334),
            "sum": (334, 335),
            "sum.async-out": (335, 0),
            "last.async-in": (0, 335),
            "last": (335, 0),
        }
        got = {k: (m.elements_in, m.elements_out) for k, m in b2.items() if m is not None}
        assert got == expected


async def test_errors_resumes_and_restarts_are_counted() -> None:
    def inv(x: int) -> float:
        return 1 / x

    async with Materializer(metrics=True) as mat:
        resumed = (
            Source.from_iterable([1, 0, 2, 0, 4])
            .named("src")
            .map(inv)
            .add_attributes(
                Attributes.supervision_strategy(lambda e: Supervision.resume)
                & Attributes.fast_paths(False)
                & Attributes.name("inv")
            )
            .to_mat(Sink.seq(), Keep.right)
        )
        assert await resumed.run(mat) == [1.0, 0.5, 0.25]
        failing = (
            Source.from_iterable([1, 0])
            .named("src2")
            .map(inv)
            .add_attributes(Attributes.fast_paths(False) & Attributes.name("inv2"))
            .to_mat(Sink.seq(), Keep.right)
        )
        with pytest.raises(ZeroDivisionError):
            await failing.run(mat)
        await settle()
        inv_m = metrics_of(mat, "inv")
        assert (inv_m.errors, inv_m.resumes, inv_m.restarts, inv_m.failed) == (2, 2, 0, False)
        inv2 = metrics_of(mat, "inv2")
        assert (inv2.errors, inv2.resumes, inv2.failed) == (1, 0, True)


async def test_restarts_are_counted() -> None:
    async with Materializer(metrics=True) as mat:
        g = (
            Source.from_iterable([1, 2, -1, 3])
            .named("src")
            .scan(0, lambda a, x: a + x if x >= 0 else 1 // 0)
            .add_attributes(
                Attributes.supervision_strategy(lambda e: Supervision.restart)
                & Attributes.name("running")
            )
            .to_mat(Sink.seq(), Keep.right)
        )
        assert await g.run(mat) == [0, 1, 3, 0, 3]
        m = metrics_of(mat, "running")
        assert (m.errors, m.restarts) == (1, 1)


async def test_metrics_off_leave_plain_connections_and_no_wrappers() -> None:
    async with Materializer(metrics=False) as mat:  # (off whatever REACTIVE_METRICS says)
        src, sink = TestSource.probe().map(lambda x: x).to_mat(TestSink.probe(), Keep.both).run(mat)
        g = mat._graphs[-1]
        for lg in (lg for isl in g.islands for lg in isl.logics):
            assert all(type(c) is Connection for c in lg._conns.values())
            assert not {"_handle_error", "_hand_over_up_to", "_give", "_lent"} & set(vars(lg))
        snap = mat.snapshot()
        assert all(s.metrics is None for s in snap.stages)
        assert not snap.graphs[0].metrics
        sink.cancel()
        src.send_complete()


_ENV_PROGRAM = """
import asyncio
from reactive import Keep, Materializer, Sink, Source

async def main():
    async with Materializer() as mat:
        src = Source.from_iterable(range(5)).named("five")
        await src.to_mat(Sink.ignore(), Keep.right).run(mat)
        try:  # (a finished graph's stages are kept in snapshots when it had metrics)
            counted = mat.snapshot().stage("five").metrics.elements_out == 5
        except KeyError:
            counted = False
    print(Materializer().metrics, Materializer(metrics=False).metrics, counted)

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("value", "on"), [(None, False), ("1", True), ("On", True), ("0", False), ("no", False)]
)
def test_reactive_metrics_in_the_environment_is_every_materializers_default(
    value: str | None, on: bool
) -> None:
    """``REACTIVE_METRICS=1`` switches metrics on for every materializer that does not pass
    ``metrics=False``; unset or falsy, they stay off."""
    env = {k: v for k, v in os.environ.items() if k != "REACTIVE_METRICS"}
    if value is not None:
        env["REACTIVE_METRICS"] = value
    done = subprocess.run(
        [sys.executable, "-c", _ENV_PROGRAM], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(on), "False", str(on)]


async def test_metrics_per_graph_with_the_attribute() -> None:
    async with Materializer(metrics=False) as mat:  # (whatever REACTIVE_METRICS says)
        on = (
            Source.from_iterable(range(10))
            .to_mat(Sink.seq(), Keep.right)
            .named("on")
            .add_attributes(Attributes.metrics(True))
        )
        off = Source.from_iterable(range(10)).to_mat(Sink.seq(), Keep.right).named("off")
        on_result = on.run(mat)
        off_result = off.run(mat)
        on_run, off_run = mat._graphs
        assert all(type(c) is MeteredConnection for lg in on_run.logics for c in lg._conns.values())
        snap = mat.snapshot()
        assert snap.graph("on").metrics and not snap.graph("off").metrics
        assert all(s.metrics is None for s in snap.graph("off").stages)
        assert all(
            type(c) is Connection
            for isl in off_run.islands
            for lg in isl.logics
            for c in lg._conns.values()
        )
        assert await on_result == list(range(10))
        assert await off_result == list(range(10))
        await settle()
        snap = mat.snapshot()
        assert [g.name for g in snap.graphs] == ["on"]  # finished: kept with metrics only
        sink = snap.graph("on").stages[-1]
        assert sink.metrics is not None and sink.metrics.elements_in == 10


async def test_backoff_restarts_of_a_restart_source_are_counted() -> None:
    """Each backoff restart of ``RestartSource`` counts in the wrapper's ``restarts``."""
    from reactive import RestartSettings, RestartSource

    clock = ManualClock()
    starts = 0

    def factory() -> Source[int, object]:
        nonlocal starts
        starts += 1
        if starts <= 3:
            return Source.failed(RuntimeError(f"start {starts}"))
        return Source.single(starts)

    async with Materializer(clock=clock, metrics=True) as mat:
        done = (
            RestartSource.on_failures_with_backoff(RestartSettings(1.0, 1.0, 0.0), factory)
            .named("restarting")
            .run_with(Sink.seq(), mat)
        )
        for _ in range(3):
            await settle()
            await clock.advance(1.0)
        assert await asyncio.wait_for(done, 5) == [4]
        m = metrics_of(mat, "restarting")
        assert (m.restarts, starts) == (3, 4)


async def test_a_restart_counts_a_restart_and_the_resume_it_makes() -> None:
    """A supervision restart of a plain stage resets it and resumes it: both count (a
    ``Scan`` that re-emits its zero instead resumes only when it cannot push)."""
    async with Materializer(metrics=True) as mat:
        g = (
            Source.from_iterable([1, 0, 2])
            .named("src")
            .map(lambda x: 1 // x)
            .add_attributes(
                Attributes.supervision_strategy(lambda e: Supervision.restart)
                & Attributes.fast_paths(False)
                & Attributes.name("inv")
            )
            .to_mat(Sink.seq(), Keep.right)
        )
        assert await g.run(mat) == [1, 0]
        m = metrics_of(mat, "inv")
        assert (m.errors, m.restarts, m.resumes, m.failed) == (1, 1, 1, False)


def _b2_like() -> object:
    return (
        Source.from_iterable(range(10))
        .named("src")
        .map(lambda x: x * 2)
        .named("double")
        .async_boundary()
        .filter(lambda x: x % 3 != 0)
        .named("keep")
        .async_boundary()
        .map(lambda x: x)
        .named("same")
        .to_mat(TestSink.probe().named("sink"), Keep.right)
    )


async def test_metrics_set_no_attribute_on_any_logic() -> None:
    """Metrics on give a logic exactly the instance attributes it has with metrics off.

    Why it matters: an attribute added to a logic after its ``__init__`` (the stage
    counters used to be; so did wrapped methods) can push the instance off CPython's
    shared-key attribute layout, after which every attribute read and method call on
    it is slower: that cost ~5% of B2's throughput with metrics on. (A fused chain counts
    its takes itself, so nothing wraps the range source's or the boundaries' hand-overs
    here; the takes of other consumers are counted by a wrapper kept on the connection:
    see the next test.)
    """

    async def layouts(metrics: bool) -> dict[str, list[str]]:
        async with Materializer(metrics=metrics) as mat:
            sink: Any = _b2_like().run(mat)  # type: ignore[attr-defined]
            sink.request(3)
            await sink.expect_next_n(3)
            g = mat._graphs[-1]
            got = {lg._stage_name: sorted(vars(lg)) for isl in g.islands for lg in isl.logics}
            sink.cancel()
            await settle()
            return got

    off = await layouts(False)
    on = await layouts(True)
    assert on.keys() == off.keys()
    for name in off:
        assert on[name] == off[name], name


def _taken_by_other_consumers(shape: str) -> object:
    """Graphs whose hand-overs are taken by consumers other than a fused chain (a sink
    right behind a boundary, a ``map_async`` behind a lazy iterable source): metrics
    wrap those takes to count them."""
    if shape == "sink behind a boundary":
        return Source.from_iterable(range(50)).map(lambda x: x + 1).async_boundary()
    if shape == "map_async on a lazy source":
        return Source.from_iterable(iter(list(range(50)))).map_async(2, _echo)
    return Source.from_iterable(x for x in range(50)).async_boundary().map_async(1, _echo)


async def _echo(x: int) -> int:
    return x


@pytest.mark.parametrize(
    "shape",
    ["sink behind a boundary", "map_async on a lazy source", "map_async behind a boundary"],
)
async def test_counted_takes_set_no_attribute_on_any_logic(shape: str) -> None:
    """The counted takes live on the metered connection, not on the logic upstream.

    The output half of an async boundary has 29 instance attributes; wrapping its
    ``_hand_over_up_to`` on the instance added a 30th, past CPython 3.11's shared-key
    layout, and cost ~2% of B2 with metrics on (every attribute read on it a dict lookup).
    The elements are still counted.
    """

    async def layouts(metrics: bool) -> tuple[dict[str, list[str]], list[int]]:
        async with Materializer(metrics=metrics) as mat:
            graph: Any = _taken_by_other_consumers(shape)
            done = graph.to_mat(Sink.seq(), Keep.right).run(mat)
            logics = [lg for isl in mat._graphs[-1].islands for lg in isl.logics]
            names = {lg._stage_name: sorted(vars(lg)) for lg in logics}
            assert await done == [x + (shape == "sink behind a boundary") for x in range(50)]
            metered = {c for lg in logics for c in lg._conns.values() if c.metered}
            return names, [c.element_count() for c in metered]

    off, _ = await layouts(False)
    on, counts = await layouts(True)
    assert on == off
    assert counts and all(n == 50 for n in counts), counts
