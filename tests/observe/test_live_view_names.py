"""The live view shows every user-chosen name literally (rich markup in a name is text)
and measures rates per running graph, not per graph name."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import pytest

from reactive import Flow, Keep, KillSwitches, Materializer, Sink, Source
from reactive.observe import live
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)
from reactive.testkit import ManualClock, TestSink, TestSource

rich_console = pytest.importorskip("rich.console")


def console() -> Any:
    return rich_console.Console(file=io.StringIO(), width=200, record=True, color_system=None)


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.mark.parametrize(
    ("stage", "graph"),
    [
        ("lines[/var/log/app.log]", "ingest"),
        ("lines", "ingest[/]"),
        ("read[bold]", "ingest[prod]"),
        ("[red]x[/red]\\", "[link=http://x]g\\"),
    ],
)
async def test_bracketed_stage_and_graph_names_are_shown_literally(stage: str, graph: str) -> None:
    async with Materializer(metrics=True) as mat:
        ks = (
            Source.repeat(b"x")
            .named(stage)
            .via_mat(KillSwitches.single(), Keep.right)
            .to(Sink.ignore())
            .named(graph)
            .run(mat)
        )
        await settle()
        con = console()
        await live(mat, 0, console=con, frames=2)
        ks.shutdown()
        await settle()
    text = con.export_text()
    assert f"{graph} (running)" in text
    assert stage in text


async def test_the_blamed_stage_and_gauges_keep_their_brackets() -> None:
    from reactive.observe.live_view import LiveView

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True, name="mat[/]") as mat:
        con = console()
        con.print(LiveView(mat).frame())  # nothing runs yet
        src, sink = (
            TestSource.probe()
            .named("src[/]")
            .via(Flow.from_graph(_Gauged({"lag[/]": {"p[/]": 3, "q": 4}})).named("mid[bold]"))
            .to_mat(TestSink.probe().named("sink[/]"), Keep.both)
            .named("g")
            .run(mat)
        )
        sink.request(1)
        src.send_next(1)
        await sink.expect_next(1)
        await clock.advance(1.0)
        con.print(LiveView(mat).frame())
        text = con.export_text()
        assert "materializer 'mat[/]': no graphs" in text
        assert "src[/]" in text and "mid[bold]" in text
        # The sink asked for one element and got it: it is the stage blamed (drawn bold red).
        assert "bottleneck: sink[/] (blame 100%)" in text
        assert any(line.lstrip("│ ").startswith("sink[/] ") for line in text.splitlines())
        assert "mid[bold]: lag[/] 7 (p[/]: 3, q: 4)" in text
        src.send_complete()
        await sink.expect_complete()


async def test_gauges_with_keys_of_mixed_types_are_drawn() -> None:
    from reactive.observe.live_view import LiveView

    async with Materializer() as mat:
        src, sink = (
            TestSource.probe()
            .via(Flow.from_graph(_Gauged({"by": {0: 5, "p1": 7, 2.5: 1}})).named("mixed"))
            .to_mat(TestSink.probe(), Keep.both)
            .named("g")
            .run(mat)
        )
        await settle()
        con = console()
        con.print(LiveView(mat).frame())
        assert "mixed: by 13 (0: 5, 2.5: 1, p1: 7)" in con.export_text()
        src.send_complete()
        sink.cancel()


async def test_rates_are_per_running_graph_not_per_name() -> None:
    from reactive.observe.live_view import LiveView

    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True) as mat:
        await Source.from_iterable(range(100)).to_mat(Sink.seq(), Keep.right).named("p").run(mat)

        def probe_graph() -> Any:
            return (
                TestSource.probe()
                .named("src")
                .to_mat(TestSink.probe().named("sink"), Keep.both)
                .named("p")
                .run(mat)
            )

        (a_src, a_sink), (b_src, b_sink) = probe_graph(), probe_graph()
        a_sink.request(100)
        b_sink.request(100)

        async def send(src: Any, sink: Any, n: int) -> None:
            for i in range(n):
                src.send_next(i)
            await sink.expect_next_n(n)

        await send(a_src, a_sink, 4)
        view = LiveView(mat)
        con = console()
        con.print(view.frame())
        await send(a_src, a_sink, 10)
        await send(b_src, b_sink, 2)
        await clock.advance(2.0)
        con.print(view.frame())
        text = con.export_text()
        # The finished p did not run in the first frame: it is not drawn, nor given a rate.
        assert "p (finished)" not in text

        def sink_row(table: str) -> list[str]:
            (row,) = [ln for ln in table.splitlines() if ln.lstrip("│ ").startswith("sink ")]
            return [c.strip() for c in row.strip("│ ").split("│")]

        # The second frame: a's table, then b's (the first frame drew them once each too).
        tables = text.split("p (running)")[1:]
        assert len(tables) == 4
        a, b = sink_row(tables[2]), sink_row(tables[3])
        assert a[2:5] == ["14", "0", "5.0/s"]  # 10 elements in 2 s, not a's 14 against b's 0
        assert b[2:5] == ["2", "0", "1.0/s"]
        for src, sink in ((a_src, a_sink), (b_src, b_sink)):
            src.send_complete()
            await sink.expect_complete()


class _Gauged(GraphStage[FlowShape]):
    """Passes elements on and reports fixed gauges."""

    def __init__(self, gauges: dict[str, Any]) -> None:
        self.shape = FlowShape(Inlet("Gauged.in"), Outlet("Gauged.out"))
        self.gauges = gauges

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GaugedLogic(self.shape, self.gauges)


class _GaugedLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: Any, gauges: dict[str, Any]) -> None:
        super().__init__(shape)
        self.gauges = gauges
        self.set_handlers(shape.in_, shape.out, self)

    def on_push(self) -> None:
        self.push(self.shape.out, self.grab(self.shape.in_))

    def on_pull(self) -> None:
        self.pull(self.shape.in_)

    def observe_gauges(self) -> dict[str, Any]:
        return self.gauges
