"""The live view written to something that is not a terminal (a pipe, a log file,
``docker logs``): each frame is printed as it is drawn (found by a review: rich's Live
writes nothing to a non-terminal until it stops, so nothing showed while it ran)."""

from __future__ import annotations

import asyncio
import io

import pytest

from reactive import Keep, Materializer
from reactive.observe import live
from reactive.testkit import TestSink, TestSource

rich_console = pytest.importorskip("rich.console")


async def test_frames_reach_a_non_terminal_while_the_view_runs() -> None:
    out = io.StringIO()
    con = rich_console.Console(file=out, width=160)
    assert not con.is_terminal
    async with Materializer(metrics=True) as mat:
        src, sink = (
            TestSource.probe()
            .named("src")
            .to_mat(TestSink.probe().named("sink"), Keep.both)
            .named("pipeline")
            .run(mat)
        )
        task = asyncio.create_task(live(mat, refresh=0, console=con))
        for _ in range(10):
            await asyncio.sleep(0)
        assert not task.done()
        text = out.getvalue()  # while it runs
        assert text.count("pipeline (running)") >= 2  # one table per frame, one after another
        assert "\x1b" not in text  # plain text: no cursor movements, no colours
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        src.send_complete()
        await sink.expect_complete()


async def test_frames_n_prints_n_tables_to_a_non_terminal() -> None:
    out = io.StringIO()
    con = rich_console.Console(file=out, width=160)
    async with Materializer(metrics=True) as mat:
        src, sink = (
            TestSource.probe().to_mat(TestSink.probe(), Keep.both).named("pipeline").run(mat)
        )
        await live(mat, refresh=0, console=con, frames=3)
        assert out.getvalue().count("pipeline (running)") == 3
        src.send_complete()
        await sink.expect_complete()


async def test_a_terminal_still_gets_frames_redrawn_in_place() -> None:
    out = io.StringIO()
    con = rich_console.Console(file=out, width=160, force_terminal=True)
    async with Materializer(metrics=True) as mat:
        src, sink = (
            TestSource.probe().to_mat(TestSink.probe(), Keep.both).named("pipeline").run(mat)
        )
        await live(mat, refresh=0, console=con, frames=3)
        text = out.getvalue()
        assert "\x1b[?25l" in text  # rich's Live: the cursor hidden while it redraws
        assert "pipeline (running)" in text
        src.send_complete()
        await sink.expect_complete()
