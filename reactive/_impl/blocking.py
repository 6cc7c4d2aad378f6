"""Detecting stages that block the event loop, and naming them.

Every stream runs on the event loop's thread. A stage whose code does synchronous
work (a ``map`` parsing, hashing, calling a blocking client) holds the loop for as
long as that work takes: nothing else runs meanwhile, not the other streams, not
Kafka's heartbeats and commits, not timers, not the handler of a SIGTERM.

Detection costs nothing per element: an island times each of its *outermost* runs
(one ``Island.execute`` entered from the event loop, up to ``EVENT_LIMIT`` events;
runs of other islands nested in it inline are part of it) with its materializer's
clock. A run longer than ``Materializer.blocking_threshold`` starts a *diagnosis*
(:class:`Diagnosis`): from then on the islands of that event loop process one event
per ``execute`` call and each event's own time (nested runs subtracted) is added to
the stage whose handler ran it. Once the time measured reaches the threshold (or the
island that was slow finishes, or ``DIAGNOSIS_EVENTS`` events were measured), one
WARNING goes to the ``reactive`` logger naming the stage that took most of it, with
the remedy, and the diagnosis stops. Each materializer warns once.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .interpreter import Island

__all__ = ["DIAGNOSIS_EVENTS", "Diagnosis", "blocked"]

log = logging.getLogger("reactive")

#: Events measured at most before a diagnosis gives its best answer.
DIAGNOSIS_EVENTS = 100_000

REMEDY = (
    "While a stage runs synchronous code, nothing else runs on the event loop: other "
    "streams, Kafka heartbeats and commits, timers, signal handlers (SIGTERM) all wait. "
    "Run blocking functions in a thread: .map_async(n, lambda x: asyncio.to_thread(f, x)) "
    "(or loop.run_in_executor). This warning is given once per materializer; "
    "Materializer(blocking_threshold=...) sets the threshold (None turns it off)"
)


def blocked(island: Island, elapsed: float) -> None:
    """An outermost run of ``island`` took ``elapsed`` seconds, over its threshold."""
    mat = island.materializer
    sched = island.sched
    if mat._blocking_warned or sched.diagnosis is not None:
        return
    diagnosis = Diagnosis(island, elapsed)
    sched.diagnosis = diagnosis
    island.at_finish(diagnosis.conclude)


class Diagnosis:
    """Finds the stage behind a slow run: times events one by one (see the module)."""

    __slots__ = (
        "child",
        "done",
        "elapsed",
        "events",
        "island",
        "names",
        "now",
        "threshold",
        "times",
        "total",
    )

    def __init__(self, island: Island, elapsed: float) -> None:
        self.island = island
        self.elapsed = elapsed
        self.threshold: float = island.watch or 0.0
        self.now = island.now
        self.names = list(dict.fromkeys(lg._stage_name for lg in island.started_logics))
        self.times: dict[Any, float] = {}
        self.total = 0.0
        self.events = 0
        self.child = 0.0  # time of runs nested in the event being measured
        self.done = False

    def run(self, island: Island, budget: int) -> bool:
        """Run ``island`` as ``execute(budget)`` would, one timed event at a time."""
        now = self.now
        times = self.times
        more = False
        for _ in range(budget):
            saved = self.child
            self.child = 0.0
            start = now()
            more = island.execute(1)
            elapsed = now() - start
            own = elapsed - self.child
            self.child = saved + elapsed
            logic = island.last_logic
            if logic is not None:
                times[logic] = times.get(logic, 0.0) + own
            self.total += own
            self.events += 1
            if not more or self.done:
                break
        if not self.done and (self.total >= self.threshold or self.events >= DIAGNOSIS_EVENTS):
            self.conclude()
        return more

    def conclude(self) -> None:
        """Warn, naming the stage that took the most time measured; end the diagnosis."""
        if self.done:
            return
        self.done = True
        island = self.island
        if island.sched.diagnosis is self:
            island.sched.diagnosis = None
        mat = island.materializer
        if mat._blocking_warned:
            return
        mat._blocking_warned = True
        times = self.times
        if times:
            culprit = max(times, key=times.__getitem__)
            log.warning(
                "[%s] blocks the event loop: a run of stream island %s held the loop for "
                "%.3f s (blocking_threshold=%g s), and %.3f s of the %.3f s measured in "
                "the %d events after it were spent in this stage. %s",
                culprit._stage_name,
                island.name,
                self.elapsed,
                self.threshold,
                times[culprit],
                self.total,
                self.events,
                REMEDY,
            )
        else:  # the stream ended in the slow run: name its stages
            log.warning(
                "[%s] blocks the event loop: a run of stream island %s held the loop for "
                "%.3f s (blocking_threshold=%g s) in one of these stages. %s",
                ", ".join(self.names) or island.name,
                island.name,
                self.elapsed,
                self.threshold,
                REMEDY,
            )
