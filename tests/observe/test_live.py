"""The live terminal view (reactive.observe.live), rendered to a recording rich Console."""

from __future__ import annotations

import asyncio
import io

import pytest

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive.observe import live
from reactive.testkit import ManualClock, TestSink, TestSource

rich_console = pytest.importorskip("rich.console")


def console() -> rich_console.Console:
    return rich_console.Console(file=io.StringIO(), width=160, record=True, color_system=None)


async def test_frames_show_stages_rates_and_shares_on_the_manual_clock() -> None:
    from reactive.observe.live_view import LiveView

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .map(lambda x: x * 2)
            .named("double")
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .named("pipeline")
            .run(mat)
        )
        view = LiveView(mat)
        con = console()
        con.print(view.frame())
        sink.request(10)
        for i in range(10):
            src.send_next(i)
        await sink.expect_next_n(10)
        await clock.advance(2.0)  # 10 elements in 2 s; no demand since
        con.print(view.frame())
        text = con.export_text()
        assert "pipeline (running)" in text
        rows = [line for line in text.splitlines() if line.lstrip("│ ").startswith("double")]
        assert len(rows) == 2  # one per frame
        row = rows[-1]
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        # stage, island, in, out, in rate, out rate, back-pressured, starved, blame, buffer
        assert cells[0] == "double"
        assert cells[2:8] == ["10", "10", "5.0/s", "5.0/s", "100%", "0%"]
        src.send_complete()
        await sink.expect_complete()


async def test_live_draws_frames_until_told_to_stop() -> None:
    async with Materializer(metrics=True) as mat:
        done = (
            Source.repeat(1)
            .take(20_000)
            .via(Flow[int]().map(lambda x: x + 1).async_boundary())
            .to_mat(Sink.ignore(), Keep.right)
            .named("busy")
            .run(mat)
        )
        con = console()
        await live(mat, refresh=0, console=con, frames=3)
        await asyncio.wait_for(done, 60)
        text = con.export_text()
        assert "busy" in text and "back-pressured" in text
        with pytest.raises(ValueError, match="refresh must be >= 0"):
            await live(mat, refresh=-1)
        with pytest.raises(TypeError, match="expected a Materializer, got str"):
            await live("mat")  # type: ignore[arg-type]
