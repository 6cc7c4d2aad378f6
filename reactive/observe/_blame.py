"""The bottleneck finder: which stage the counters blame for a graph's waiting."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: _snapshot imports this module
    from collections.abc import Iterable

    from ._snapshot import StageSnapshot

__all__ = ["blame", "bottleneck"]


def blame(stage: StageSnapshot, since: StageSnapshot | None = None) -> float:
    """How much ``stage`` holds its graph up, from 0.0 to 1.0 (0.0 without metrics).

    The counters are cumulative: by default the score is over the stage's whole life.
    With ``since`` (the same stage in an earlier snapshot) it is over the interval
    between the two snapshots, from the differences of the counters
    (``StageSnapshot.since``): a stage that starved its graph at startup and no longer
    does scores low there.

    A bottleneck is busy: its downstream waits on it (its outlets are starved of
    elements) while it does not ask its upstream (its inlets are back-pressured). The
    score is the smaller of the two shares, each taken over its ports (a source has no
    inlet to ask on, a sink no outlet to wait on: that side counts as 1.0). A stage that
    is itself back-pressured shows idle outlets, a starved one pending inlets: both
    score low. A stage running substreams counts their connections with its ports
    (``StageSnapshot.substream_inlets``/``substream_outlets``): ``group_by``'s own outlet
    hands out substreams and waits long for the next one to be asked for, while its
    elements go out through the substreams.
    """
    if since is not None:
        stage = stage.since(since)
    ins = [c.metrics for c in (*stage.inlets, *stage.substream_inlets) if c.metrics is not None]
    outs = [c.metrics for c in (*stage.outlets, *stage.substream_outlets) if c.metrics is not None]
    if not ins and not outs:
        return 0.0
    downstream_waits = min((m.starved_share for m in outs), default=1.0)
    not_asking = min((m.backpressured_share for m in ins), default=1.0)
    return min(downstream_waits, not_asking)


def bottleneck(stages: Iterable[StageSnapshot]) -> StageSnapshot | None:
    """The stage with the highest ``blame`` (``StageSnapshot.is_plumbing`` stages are not
    blamed, async boundary halves and the ends of substreams: the stages on either side
    of them are); None when no stage has metrics or none scores above zero. For an
    interval, pass stages taken ``since`` an earlier snapshot
    (``GraphSnapshot.since``, or ``reactive.observe.bottleneck(view, since=...)``)."""
    best: StageSnapshot | None = None
    best_score = 0.0
    for s in stages:
        if s.is_plumbing:
            continue
        score = blame(s)
        if score > best_score:
            best, best_score = s, score
    return best
