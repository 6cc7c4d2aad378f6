"""Blame and shares over an interval (issue 17): from the differences of the cumulative
counters between two snapshots, not since the graph started.

The scene on the ManualClock: a source that sends nothing for the first 5 s (a consumer
joining its group: everything after it starves), then 3 elements through a stage that
takes 1 s each, then nothing again for 1 s. At t=9 the counters since start blame the
source (its outlet starved 6 s of 9); over [5, 9] the slow stage is the bottleneck (its
downstream starved all 4 s, its inlet back-pressured 3 s of 4: blame 75%).
"""

from __future__ import annotations

import asyncio
import io
from collections import deque
from typing import Any

import pytest

from reactive import Flow, Keep, Materializer
from reactive.observe import (
    GraphSnapshot,
    MaterializerSnapshot,
    PortMetrics,
    blame,
    bottleneck,
    snapshot,
)
from reactive.stage import (
    FlowShape,
    GraphStage,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    TimerGraphStageLogic,
)
from reactive.testkit import ManualClock, TestSink, TestSource


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


class Scene:
    """The graph ``consumer -> slow -> sink`` and its snapshots at t=0, 5 and 9."""

    def __init__(self, clock: ManualClock, mat: Materializer) -> None:
        self.clock = clock
        self.mat = mat
        self.before: MaterializerSnapshot = snapshot(mat)  # before the graph ran
        self.src, self.sink = (
            TestSource.probe()
            .named("consumer")
            .via(Flow.from_graph(Slow(1.0)).named("slow"))
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .named("service")
            .run(mat)
        )
        self.snaps: dict[float, MaterializerSnapshot] = {}

    async def run(self, frame: Any = None) -> None:
        """Play the scene; ``frame()`` (if given) is called at every whole second."""
        self.sink.request(100)
        await self.clock.advance(0)
        self.snaps[0] = snapshot(self.mat)
        for t in range(1, 10):
            if frame is not None:
                frame(t - 1)
            if t == 6:
                for i in range(3):  # joined at t=5: three records, 1 s of work each
                    self.src.send_next(i)
            await self.clock.advance(1.0)
            if t in (5, 9):
                self.snaps[t] = snapshot(self.mat)
        if frame is not None:
            frame(9)
        assert self.snaps[9].time == 9.0 and self.snaps[5].time == 5.0

    async def finish(self) -> None:
        await self.sink.expect_next_n(3)
        self.src.send_complete()
        await self.sink.expect_complete()


async def scene(clock: ManualClock, mat: Materializer, frame: Any = None) -> Scene:
    s = Scene(clock, mat)
    await s.run(frame)
    return s


async def test_since_start_blames_the_startup_interval_blames_the_slow_stage() -> None:
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        sc = await scene(clock, mat)
        at5, at9 = sc.snaps[5].graph("service"), sc.snaps[9].graph("service")
        # Since start: the consumer starved its downstream 6 s of 9; slow was
        # back-pressured (working) only 3 s of 9.
        culprit = bottleneck(at9)
        assert culprit is not None and culprit.id == "consumer"
        assert blame(at9.stage("consumer")) == pytest.approx(6 / 9, abs=1e-12)
        assert blame(at9.stage("slow")) == pytest.approx(3 / 9, abs=1e-12)
        # Over [5, 9]: slow held the graph up 3 s of the 4, the consumer 1 s.
        recent = bottleneck(at9, since=at5)
        assert recent is not None and recent.id == "slow"
        assert blame(at9.stage("slow"), since=at5.stage("slow")) == 0.75
        assert blame(at9.stage("consumer"), since=at5.stage("consumer")) == 0.25
        assert at9.bottleneck(since=at5) == recent
        # The same from the materializer's snapshots.
        got = bottleneck(sc.snaps[9], since=sc.snaps[5])
        assert got is not None and got.id == "slow"
        # The exact interval figures of each connection.
        slow = at9.stage("slow").since(at5.stage("slow"))
        inlet, outlet = slow.inlets[0].metrics, slow.outlets[0].metrics
        assert inlet is not None and outlet is not None
        assert (inlet.backpressured_seconds, inlet.starved_seconds) == (3.0, 1.0)
        assert inlet.backpressured_share == 0.75 and inlet.elements == 3
        assert (outlet.backpressured_seconds, outlet.starved_seconds) == (0.0, 4.0)
        assert outlet.starved_share == 1.0 and outlet.elements == 3
        assert slow.metrics is not None and slow.metrics.elements_in == 3
        assert slow.metrics.backpressured_share == 0.0 and slow.metrics.starved_share == 0.25
        # Over [0, 5] nothing moved: the consumer alone is blamed, fully.
        early = bottleneck(at5, since=sc.snaps[0].graph("service"))
        assert early is not None and early.id == "consumer"
        zero = sc.snaps[0].graph("service").stage("consumer")
        assert blame(at5.stage("consumer"), since=zero) == 1.0
        await sc.finish()


async def test_interval_over_the_whole_run_equals_the_cumulative_figures() -> None:
    """Differential: over [0, t] (against a snapshot taken at the graph's start, or
    before it existed) every share and blame is the cumulative one."""
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        sc = await scene(clock, mat)
        for t in (5, 9):
            now = sc.snaps[t]
            for start in (sc.snaps[0], sc.before):
                interval = now.since(start)
                assert [s.id for s in interval.stages] == [s.id for s in now.stages]
                for whole, part in zip(now.stages, interval.stages, strict=True):
                    assert blame(part) == blame(whole), whole.id
                    assert part.metrics is not None and whole.metrics is not None
                    assert part.metrics.backpressured_share == whole.metrics.backpressured_share
                    assert part.metrics.starved_share == whole.metrics.starved_share
                    for a, b in zip(
                        (*whole.inlets, *whole.outlets), (*part.inlets, *part.outlets), strict=True
                    ):
                        assert a.metrics is not None and b.metrics is not None
                        assert b.metrics.backpressured_seconds == a.metrics.backpressured_seconds
                        assert b.metrics.starved_seconds == a.metrics.starved_seconds
                bn, bw = bottleneck(now, since=start), bottleneck(now)
                assert bn is not None and bw is not None and bn.id == bw.id
            # Against a snapshot taken before the graph existed the counts are whole too.
            assert now.since(sc.before).stages == now.stages
        await sc.finish()


async def test_a_stage_that_finished_before_the_interval_is_not_blamed_in_it() -> None:
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .named("g")
            .run(mat)
        )
        sink.request(1)
        await clock.advance(2.0)  # the sink waits 2 s: the source is blamed
        src.send_next(1)
        await sink.expect_next(1)
        src.send_complete()
        await sink.expect_complete()
        done = mat.snapshot().graph("g")
        await clock.advance(3.0)
        later = mat.snapshot().graph("g")
        assert blame(later.stage("src")) == 1.0  # since start
        assert bottleneck(later, since=done) is None  # nothing ran in the interval
        gone = later.stage("src").since(done.stage("src"))
        assert gone.outlets[0].metrics is None  # closed before it: tells nothing
        assert blame(later.stage("src"), since=done.stage("src")) == 0.0


async def test_substreams_are_matched_by_their_own_connections() -> None:
    """Substreams' connections share their port names: each is matched with itself (by
    the time it opened), one that ended leaves the interval, one opened in it counts
    whole."""
    from reactive import Source

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .flat_map_merge(
                2,
                lambda x: Source.from_iterable(range(3)).via(Flow.from_graph(Slow(1.0))),
            )
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .named("g")
            .run(mat)
        )
        sink.request(100)
        src.send_next("a")  # substream 1: elements at t=1, 2, 3, ends at 3
        await clock.advance(1.0)
        src.send_next("b")  # substream 2: elements at t=2, 3, 4
        await clock.advance(1.0)
        at2 = mat.snapshot()
        await clock.advance(1.5)
        at35 = mat.snapshot()
        before = at2.graph("g").stage("flat_map_merge").substream_inlets
        assert [c.metrics.elements for c in before if c.metrics] == [2, 1]
        fmm = at35.since(at2).graph("g").stage("flat_map_merge")
        # Only substream 2 is left: 1 element and 1.5 s starved in [2, 3.5] (matched by
        # position it would be taken for substream 1).
        (only,) = fmm.substream_inlets
        assert only.metrics is not None and only.metrics.opened == 1.0
        assert (only.metrics.elements, only.metrics.starved_seconds) == (1, 1.5)
        # A substream opened after the earlier snapshot counts whole.
        src.send_next("c")
        await clock.advance(0.25)
        at375 = mat.snapshot()
        opened = {
            c.metrics.opened: (c.metrics.elements, c.metrics.starved_seconds)
            for c in at375.since(at35).graph("g").stage("flat_map_merge").substream_inlets
            if c.metrics is not None
        }
        assert opened == {1.0: (0, 0.25), 3.5: (0, 0.25)}
        src.send_complete()
        await clock.advance(5.0)
        assert sorted(await sink.expect_next_n(9)) == [0, 0, 0, 1, 1, 1, 2, 2, 2]
        await sink.expect_complete()


async def test_since_checks_what_it_is_given() -> None:
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        sc = await scene(clock, mat)
        g5, g9 = sc.snaps[5].graph("service"), sc.snaps[9].graph("service")
        with pytest.raises(ValueError, match="'consumer' of graph 'service' is not an earlier"):
            g9.stage("slow").since(g5.stage("consumer"))
        with pytest.raises(ValueError, match="is not an earlier snapshot of graph 'service'"):
            g9.since(GraphSnapshot("other", False, True, (), 7))
        with pytest.raises(ValueError, match="at 9.0 is not an earlier one"):
            sc.snaps[5].since(sc.snaps[9])
        with pytest.raises(TypeError, match="since must be an earlier GraphSnapshot"):
            bottleneck(g9, since=sc.snaps[5])
        with pytest.raises(TypeError, match="since must be an earlier MaterializerSnapshot"):
            bottleneck(mat, since=g5)
        big = PortMetrics(5, 5, 5, 1.0, 1.0)
        with pytest.raises(ValueError, match="earlier counters are larger"):
            PortMetrics(3, 3, 3, 2.0, 2.0).since(big)
        assert big.since(None) is big
        await sc.finish()


async def test_the_exports_seconds_counters_give_the_recent_shares() -> None:
    """The exports stay cumulative; the differences of their seconds counters between
    two scrapes (what PromQL's ``rate()`` works from) give the interval's shares and
    blame, while the ``*_ratio`` gauges stay since start."""
    prometheus_client = pytest.importorskip("prometheus_client")
    from reactive.observe.prometheus import register

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True, name="m") as mat:
        registry = prometheus_client.CollectorRegistry()
        register(mat, registry)
        scrapes: dict[int, dict[tuple[str, str, str, str], float]] = {}

        def scrape(t: int) -> None:
            if t not in (5, 9):
                return
            got = scrapes[t] = {}
            for stage, port, direction in (
                ("consumer", "TestSource.out", "out"),
                ("slow", "Slow.in", "in"),
                ("slow", "Slow.out", "out"),
            ):
                for kind in ("backpressured", "starved"):
                    labels = {"materializer": "m", "graph": "service", "stage": stage}
                    labels |= {"port": port, "direction": direction}
                    value = registry.get_sample_value(f"reactive_port_{kind}_seconds_total", labels)
                    assert value is not None, (kind, labels)
                    got[(stage, port, direction, kind)] = value

        sc = await scene(clock, mat, scrape)

        def recent_share(stage: str, port: str, direction: str, kind: str) -> float:
            d = {
                k: scrapes[9][(stage, port, direction, k)] - scrapes[5][(stage, port, direction, k)]
                for k in ("backpressured", "starved")
            }
            return d[kind] / (d["backpressured"] + d["starved"])

        # blame = min(outlets' starved share, inlets' back-pressured share)
        slow_recent = min(
            recent_share("slow", "Slow.out", "out", "starved"),
            recent_share("slow", "Slow.in", "in", "backpressured"),
        )
        assert slow_recent == 0.75
        assert recent_share("consumer", "TestSource.out", "out", "starved") == 0.25
        blame_gauge = registry.get_sample_value(
            "reactive_stage_blame_ratio", {"materializer": "m", "graph": "service", "stage": "slow"}
        )
        assert blame_gauge == pytest.approx(3 / 9, abs=1e-12)  # since start
        await sc.finish()


rich_console = pytest.importorskip("rich.console")


def console() -> Any:
    return rich_console.Console(file=io.StringIO(), width=160, record=True, color_system=None)


def row(text: str, stage: str) -> list[str]:
    """The cells of ``stage``'s last row in ``text``."""
    rows = [line for line in text.splitlines() if line.lstrip("│ ").startswith(stage + " ")]
    return [c.strip() for c in rows[-1].strip("│ ").split("│")]


async def test_the_live_frame_names_the_recent_bottleneck() -> None:
    from reactive.observe.live_view import LiveView

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        views = {"frame": LiveView(mat), "start": LiveView(mat, since_start=True)}
        texts: dict[str, str] = {}

        def frame(t: int) -> None:
            # Frames at t=0, 5 and 9 only: the last one covers [5, 9].
            if t in (0, 5, 9):
                for key, view in views.items():
                    con = console()
                    con.print(view.frame())
                    texts[key] = con.export_text()

        sc = await scene(clock, mat, frame)
        text = texts["frame"]
        assert "bottleneck: slow (blame 75%, last 4.0 s)" in text
        assert "since start: consumer (blame 67%)" in text
        # stage, island, in, out, in rate, out rate, back-pressured, starved, blame, buffer
        assert row(text, "slow")[6:9] == ["0%", "25%", "75%"]
        assert row(text, "consumer")[6:9] == ["75%", "", "25%"]
        assert row(text, "slow")[2:6] == ["3", "3", "0.8/s", "0.8/s"]
        # With since_start: the figures since the graph started, as before.
        start = texts["start"]
        assert "bottleneck: consumer (blame 67%)" in start
        assert "last 4.0 s" not in start and "since start:" not in start
        assert row(start, "slow")[6:9] == ["0%", "67%", "33%"]
        await sc.finish()


async def test_live_frames_track_the_bottleneck_as_it_moves() -> None:
    """A frame a second: during the startup the consumer is blamed, once records flow
    the slow stage, and in the last second (nothing sent) the consumer again."""
    from reactive.observe.live_view import LiveView

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        view = LiveView(mat)
        heads: dict[int, str] = {}

        def frame(t: int) -> None:
            con = console()
            con.print(view.frame())
            lines = con.export_text().splitlines()
            heads[t] = next((ln.strip() for ln in lines if "bottleneck" in ln), "")

        sc = await scene(clock, mat, frame)
        assert heads[0] == ""  # the first frame, at t=0: nothing waited yet
        for t in range(1, 6):
            assert heads[t] == "bottleneck: consumer (blame 100%, last 1.0 s)", t
        for t in (6, 7, 8):
            assert heads[t] == "bottleneck: slow (blame 100%, last 1.0 s)", t
        assert heads[9] == "bottleneck: consumer (blame 100%, last 1.0 s)"
        await sc.finish()


async def test_a_frame_with_no_time_passed_shows_the_figures_since_start() -> None:
    from reactive.observe.live_view import LiveView

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        sc = await scene(clock, mat)
        view = LiveView(mat)
        con = console()
        con.print(view.frame())
        con.print(view.frame())  # same clock time: no interval to show
        text = con.export_text()
        assert text.count("bottleneck: consumer (blame 67%)") == 2
        assert "last 0.0 s" not in text
        await asyncio.wait_for(sc.finish(), 5)
