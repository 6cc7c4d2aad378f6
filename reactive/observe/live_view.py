"""A live terminal view of running streams (extra ``observe``: ``rich``).

``await reactive.observe.live(materializer)`` redraws, every ``refresh`` seconds, one
table per graph: each stage with its rates (elements per second in and out since the
last frame, on the materializer's clock), the share of time it was back-pressured and
starved, its blame (``reactive.observe.blame``; the stage blamed most is marked) and its
buffer fill. Rates, shares and blame are over the last frame (``refresh`` seconds, from
the counters' differences: ``MaterializerSnapshot.since``), so a stage that held the
graph up at startup (a consumer joining its group) is not blamed for it ever after; the
caption names the bottleneck over the frame and the one since start. The first frame,
and one drawn with no clock time passed since the last, shows the figures since start;
``since_start=True`` always does. Graphs that share a name each have their own table,
and rates compare a graph with itself only. Names are shown as they are (a ``[`` in one
is not rich markup). Run it as a task beside the streams and cancel it to stop;
``frames=n`` stops after ``n`` frames. Written to something that is not a terminal (a
pipe, a log file), each frame is printed after the last instead of redrawn.
``LiveView`` draws single frames (for logs and tests).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

try:
    from rich import get_console
    from rich.console import Console, Group
    from rich.live import Live
    from rich.table import Table
    from rich.text import Text
except ModuleNotFoundError as _missing:
    if not (_missing.name or "").startswith("rich"):
        raise
    raise ModuleNotFoundError(
        f"reactive.observe.live needs rich ({_missing}), "
        "which the 'observe' extra installs: "
        "pip install 'reactive-streams-py[observe]' (from a checkout: pip install -e '.[observe]')",
        name=_missing.name,
    ) from _missing

from ._blame import blame, bottleneck
from ._snapshot import GraphSnapshot, MaterializerSnapshot, StageSnapshot, take_snapshot

__all__ = ["LiveView", "run_live"]


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f}%"


def _rate(n: float | None) -> str:
    if n is None:
        return ""
    if n >= 10_000:
        return f"{n / 1000:,.0f}k/s"
    return f"{n:,.1f}/s"


class LiveView:
    """Frames of a materializer's graphs (only graph ``graph`` if given); each frame's
    rates, shares and blame are measured since the previous frame (the shares and blame
    since each graph started with ``since_start=True``)."""

    def __init__(
        self, materializer: Any, graph: str | None = None, *, since_start: bool = False
    ) -> None:
        self.materializer = materializer
        self.graph = graph
        self.since_start = since_start
        self.previous: MaterializerSnapshot | None = None

    def frame(self) -> Group:
        """Take a snapshot and draw it (figures since the previous frame)."""
        snap = take_snapshot(self.materializer, self.graph)
        prev, self.previous = self.previous, snap
        return render(snap, prev, since_start=self.since_start)


def render(
    snap: MaterializerSnapshot,
    previous: MaterializerSnapshot | None = None,
    *,
    since_start: bool = False,
) -> Group:
    """One table per graph of ``snap``; rates, shares and blame against ``previous``
    when given (over ``snap.time - previous.time``), the shares and blame since each
    graph started without it, with no time passed since it, or with ``since_start``.

    Rates compare a graph with itself in ``previous`` (``GraphSnapshot.run``), never with
    another graph of the same name. Names are drawn as they are: a ``[`` in one is text,
    not rich markup.
    """
    dt = snap.time - previous.time if previous is not None else 0.0
    # Shares and blame over the frame: each graph against the same run in ``previous``
    # (one materialized since then counts whole: it started within the frame).
    recent: dict[tuple[str, int], GraphSnapshot] = {}
    if previous is not None and dt > 0 and not since_start:
        recent = {(g.name, g.run): g for g in snap.since(previous).graphs}
    before: dict[tuple[str, int, str], StageSnapshot] = {}
    if previous is not None:
        before = {(g.name, g.run, s.id): s for g in previous.graphs for s in g.stages}
    # Running graphs, and those that finished since the previous frame (their last
    # state, once); with nothing running, the last graph that ran.
    if previous is None:
        shown = [g for g in snap.graphs if not g.finished]
    else:
        was_running = {(p.name, p.run) for p in previous.graphs if not p.finished}
        shown = [g for g in snap.graphs if not g.finished or (g.name, g.run) in was_running]
    if not shown and snap.graphs:
        shown = [snap.graphs[-1]]
    if not shown:
        return Group(Text(f"materializer {snap.name!r}: no graphs"))
    return Group(*(_graph_table(g, before, dt, recent.get((g.name, g.run))) for g in shown))


def _graph_table(
    g: GraphSnapshot,
    before: dict[tuple[str, int, str], StageSnapshot],
    dt: float,
    recent: GraphSnapshot | None,
) -> Table:
    """``g``'s table; its shares and blame from ``recent`` (``g`` over the last frame)
    when given, else since ``g`` started."""
    state = "finished" if g.finished else "running"
    if not g.metrics:
        state += ", metrics off"
    table = Table(title=Text(f"{g.name} ({state})"), title_justify="left")
    for col, justify in (
        ("stage", "left"),
        ("island", "left"),
        ("in", "right"),
        ("out", "right"),
        ("in rate", "right"),
        ("out rate", "right"),
        ("back-pressured", "right"),
        ("starved", "right"),
        ("blame", "right"),
        ("buffer", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    shares = recent if recent is not None else g
    culprit = bottleneck(shares.stages)
    for s, r in zip(g.stages, shares.stages, strict=True):
        m = s.metrics
        rm = r.metrics
        b = s.buffer
        buf = ""
        if b is not None:
            buf = f"{b.used}/{b.capacity}" if b.capacity else str(b.used)
        in_rate = out_rate = None
        prev = before.get((g.name, g.run, s.id))
        if m is not None and prev is not None and prev.metrics is not None and dt > 0:
            in_rate = (m.elements_in - prev.metrics.elements_in) / dt
            out_rate = (m.elements_out - prev.metrics.elements_out) / dt
        name = Text(s.id + (" (stopped)" if s.stopped else ""))
        if culprit is not None and r is culprit:
            name.stylize("bold red")
        table.add_row(
            name,
            Text(s.island),
            "" if m is None else f"{m.elements_in:,}",
            "" if m is None else f"{m.elements_out:,}",
            _rate(in_rate),
            _rate(out_rate),
            _pct(None if rm is None or not s.outlets else rm.backpressured_share),
            _pct(None if rm is None or not s.inlets else rm.starved_share),
            _pct(None if rm is None or s.is_plumbing else blame(r)),
            buf,
        )
    caption = [f"{s.id}: {_gauges_text(s.gauges)}" for s in g.stages if s.gauges]
    head = []
    if recent is None:
        if culprit is not None:
            head.append(f"bottleneck: {culprit.id} (blame {blame(culprit):.0%})")
    else:
        window = f"last {dt:,.1f} s"
        head.append(
            f"bottleneck: {culprit.id} (blame {blame(culprit):.0%}, {window})"
            if culprit is not None
            else f"bottleneck: none ({window})"
        )
        overall = bottleneck(g.stages)
        if overall is not None:
            head.append(f"since start: {overall.id} (blame {blame(overall):.0%})")
    caption[:0] = head
    if caption:
        table.caption = Text("\n".join(caption))
        table.caption_justify = "left"
    return table


def _gauge_text(name: str, value: Any) -> str:
    if not isinstance(value, (int, float)):
        return f"{name} {value!r}"  # not a figure: shown as it is
    if name.endswith("_seconds"):
        return f"{name[: -len('_seconds')]} {value * 1000:,.1f} ms"
    return f"{name} {value:,.0f}" if float(value).is_integer() else f"{name} {value:,.3f}"


def _key_order(item: tuple[Any, Any]) -> tuple[int, float, str]:
    """Figures by key in key order: numbers first by value, then the rest by text (the
    keys of a custom stage's gauges may mix types)."""
    k = item[0]
    return (0, k, "") if isinstance(k, (int, float)) else (1, 0, str(k))


def _gauges_text(gauges: Mapping[str, Any]) -> str:
    """A stage's own gauges on one line: figures by key as their sum, then each key."""
    parts = []
    for name, value in gauges.items():
        if isinstance(value, Mapping):
            if not value:
                # No key yet (a consumer not assigned any partition): no figure, not 0.
                parts.append(f"{name} (none)")
                continue
            figures = sorted(value.items(), key=_key_order)
            each = ", ".join(f"{k}: {_figure(v)}" for k, v in figures[:8])
            more = ", ..." if len(value) > 8 else ""
            numbers = [v for v in value.values() if isinstance(v, (int, float))]
            parts.append(f"{_gauge_text(name, sum(numbers))} ({each}{more})")
        else:
            parts.append(_gauge_text(name, value))
    return "; ".join(parts)


def _figure(v: Any) -> str:
    return f"{v:,}" if isinstance(v, (int, float)) else repr(v)


async def run_live(
    target: Any,
    refresh: float = 1.0,
    *,
    graph: str | None = None,
    console: Console | None = None,
    frames: int | None = None,
    since_start: bool = False,
) -> None:
    """Redraw ``target``'s graphs every ``refresh`` seconds until cancelled (or after
    ``frames`` frames). ``target`` is a ``Materializer``; ``graph`` picks one graph by
    name; ``console`` defaults to rich's console. Shares and blame are over the last
    frame (since each graph started with ``since_start``). On a terminal (or in Jupyter) each frame
    replaces the last; on anything else (output piped, or to a log file) each frame is
    printed after the previous one, as plain tables."""
    if not refresh >= 0:
        raise ValueError(f"live: refresh must be >= 0 seconds, got {refresh!r}")
    if frames is not None and frames < 1:
        raise ValueError(f"live: frames must be >= 1 or None, got {frames!r}")
    if not hasattr(target, "snapshot") or not hasattr(target, "_graphs"):
        raise TypeError(f"live: expected a Materializer, got {type(target).__name__}")
    view = LiveView(target, graph, since_start=since_start)
    out = console if console is not None else get_console()
    with contextlib.ExitStack() as stack:
        draw: Callable[[Group], None]
        if out.is_terminal or out.is_jupyter:
            live = stack.enter_context(Live(console=out, auto_refresh=False))

            def draw(frame: Group) -> None:
                live.update(frame, refresh=True)

        else:
            # Not a terminal (a pipe, a log file): rich's Live would write nothing until
            # it stops, so each frame is printed after the last one instead.
            draw = out.print
        n = 0
        while True:
            draw(view.frame())
            n += 1
            if frames is not None and n >= frames:
                return
            await asyncio.sleep(refresh)
