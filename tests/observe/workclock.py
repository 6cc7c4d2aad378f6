"""A ``ManualClock`` that a stage's function moves while it runs, shared by the tests of
time spent working inside a synchronous island run (imported as ``tests.observe.workclock``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from reactive.testkit import ManualClock

if TYPE_CHECKING:
    from collections.abc import Callable


class WorkClock(ManualClock):
    """A ``ManualClock`` a stage's function can move while it runs (its "work")."""

    def spend(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` now, firing no timers."""
        self._now += seconds


def plus_one_working_in(
    clock: WorkClock, where: str, seconds: float
) -> Callable[[str], Callable[[int], int]]:
    """``stage(name)``: the function of the stage named ``name``, ``x + 1``; the one named
    ``where`` also spends ``seconds`` of ``clock`` on each element."""

    def stage(name: str) -> Callable[[int], int]:
        if name == where:

            def work(x: int) -> int:
                clock.spend(seconds)
                return x + 1

            return work
        return lambda x: x + 1

    return stage
