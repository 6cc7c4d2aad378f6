"""Watching running streams: snapshots, per-stage counters, exporters and a live view.

- ``Materializer.snapshot()`` (or ``snapshot(materializer, graph=...)``) returns a frozen
  ``MaterializerSnapshot``: graphs, islands, stages, the state of every connection
  (pulled, pushed, closed) and buffer fill levels, read from the interpreter.
- Counters are on per materializer (``Materializer(metrics=True)``) or per graph
  (``Attributes.metrics(True)``): elements, pushes and pulls per port, the share of time
  each connection spent back-pressured (no demand) or starved (demand, no element) on
  the materializer's clock, errors and supervision restarts. Off, they cost nothing.
  A fused run of simple operators (``map+filter+scan``) is one stage: its counters are
  the run's (``Attributes.fast_paths(False)`` on a graph gives one stage per operator).
- ``bottleneck(snapshot_or_graph)`` names the stage the counters blame, since the
  graphs started, or over an interval with ``since=earlier_snapshot`` (``blame(stage,
  since=earlier_stage)``, ``MaterializerSnapshot.since``: the counters' differences).
- Exporters (extras): ``reactive.observe.prometheus`` (``prometheus-client``),
  ``reactive.observe.otel`` (``opentelemetry-api``) and the terminal view
  ``reactive.observe.live`` (``rich``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._public import publish as _publish
from ._blame import blame
from ._blame import bottleneck as _bottleneck
from ._snapshot import (
    BufferSnapshot,
    ConnectionSnapshot,
    Gauges,
    GraphSnapshot,
    IslandSnapshot,
    MaterializerSnapshot,
    PortMetrics,
    StageMetrics,
    StageSnapshot,
    take_snapshot,
)

if TYPE_CHECKING:
    from .._impl.materializer import Materializer

__all__ = [
    "BufferSnapshot",
    "ConnectionSnapshot",
    "Gauges",
    "GraphSnapshot",
    "IslandSnapshot",
    "MaterializerSnapshot",
    "PortMetrics",
    "StageMetrics",
    "StageSnapshot",
    "blame",
    "bottleneck",
    "live",
    "snapshot",
]


def snapshot(materializer: Materializer, graph: str | None = None) -> MaterializerSnapshot:
    """A frozen view of ``materializer``'s graphs (only those named ``graph`` if given)."""
    return take_snapshot(materializer, graph)


def bottleneck(
    view: MaterializerSnapshot | GraphSnapshot | Any,
    since: MaterializerSnapshot | GraphSnapshot | None = None,
) -> StageSnapshot | None:
    """The stage the counters blame in a snapshot, a graph snapshot or a materializer
    (see ``blame``); None without metrics or when nothing waits.

    By default over the graphs' whole lives (the counters are cumulative). With
    ``since``, an earlier snapshot of the same kind (a ``MaterializerSnapshot`` for a
    materializer or a materializer's snapshot, a ``GraphSnapshot`` of the same run for
    a graph snapshot), over the interval between the two (``MaterializerSnapshot.since``,
    ``GraphSnapshot.since``): the stage holding the graph up now, not at startup."""
    if not isinstance(view, (MaterializerSnapshot, GraphSnapshot)):
        view = take_snapshot(view)
    if since is None:
        return _bottleneck(view.stages)
    if isinstance(view, MaterializerSnapshot) and isinstance(since, MaterializerSnapshot):
        return _bottleneck(view.since(since).stages)
    if isinstance(view, GraphSnapshot) and isinstance(since, GraphSnapshot):
        return _bottleneck(view.since(since).stages)
    raise TypeError(
        f"bottleneck: since must be an earlier {type(view).__name__} of the view, "
        f"got {type(since).__name__}"
    )


async def live(
    target: Materializer,
    refresh: float = 1.0,
    *,
    graph: str | None = None,
    console: Any = None,
    frames: int | None = None,
    since_start: bool = False,
) -> None:
    """Draw ``target``'s running graphs in the terminal every ``refresh`` seconds until
    cancelled (or after ``frames`` frames): stages with rates, back-pressured and starved
    shares, blame and buffer fill, the rates, shares and blame over the last frame (the
    bottleneck since start named under it); ``since_start=True`` shows the shares and
    blame since each graph started instead. Needs ``rich`` (the ``observe`` extra); see
    ``reactive.observe.live_view``."""
    from .live_view import run_live

    await run_live(
        target, refresh, graph=graph, console=console, frames=frames, since_start=since_start
    )


_publish(__name__, globals())
