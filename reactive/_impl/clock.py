"""The only seam between timers and asyncio: a clock that a test can replace whole.

Every timer of the runtime goes through ``Materializer.clock``: ``time()`` and
``call_at(when, callback, *args)`` returning a handle with ``cancel()``. ``LoopClock``
delegates to the running loop; ``ManualClock`` (exported by ``reactive.testkit``) only
moves when a test calls ``advance``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Clock", "LoopClock", "ManualClock"]


class TimerHandle(Protocol):
    """What ``call_at`` returns."""

    def cancel(self) -> None:
        """Prevent the callback from running."""


class Clock(Protocol):
    """A source of time and timers."""

    def time(self) -> float:
        """Current time in seconds (monotonic)."""

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` at time ``when``."""


class LoopClock:
    """The running event loop's clock (``loop.time()``, ``loop.call_at``)."""

    __slots__ = ("loop",)

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def time(self) -> float:
        """``loop.time()``."""
        return self.loop.time()

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """``loop.call_at``."""
        return self.loop.call_at(when, callback, *args)


class _ManualHandle:
    __slots__ = ("when", "seq", "callback", "args", "cancelled")

    def __init__(self, when: float, seq: int, callback: Callable[..., Any], args: tuple[Any, ...]):
        self.when = when
        self.seq = seq
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: _ManualHandle) -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class ManualClock:
    """A clock that only moves when told: deterministic tests of timed operators.

    Use it with ``Materializer(clock=ManualClock())`` (the ``manual_clock`` fixture of
    the pytest plugin does this). ``await clock.advance(seconds)`` fires every timer due
    in order, letting the event loop run between firings so streams react.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[_ManualHandle] = []
        self._seq = itertools.count()

    def time(self) -> float:
        """The manual time."""
        return self._now

    def call_at(self, when: float, callback: Callable[..., Any], *args: Any) -> TimerHandle:
        """Schedule ``callback(*args)`` at manual time ``when``."""
        h = _ManualHandle(when, next(self._seq), callback, args)
        heapq.heappush(self._heap, h)
        return h

    @property
    def pending(self) -> int:
        """Number of scheduled, not cancelled timers."""
        return sum(1 for h in self._heap if not h.cancelled)

    def next_deadline(self) -> float | None:
        """When the next timer is due, or None."""
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].when if self._heap else None

    async def settle(self, rounds: int = 20) -> None:
        """Let the event loop run a few rounds (tasks react to what just happened)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, firing due timers in order."""
        if seconds < 0:
            raise ValueError("cannot move a clock backwards")
        target = self._now + seconds
        await self.settle()
        while True:
            nxt = self.next_deadline()
            if nxt is None or nxt > target:
                break
            h = heapq.heappop(self._heap)
            self._now = max(self._now, h.when)
            h.callback(*h.args)
            await self.settle()
        self._now = target
        await self.settle()
