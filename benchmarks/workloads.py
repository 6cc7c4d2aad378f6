"""Shared workload pieces: the user functions and instruments every system uses.

Every system of a benchmark calls the *same* ordinary named functions defined here, so a
difference in speed is the cost of the streaming machinery, not of the user code.
"""

from __future__ import annotations

import asyncio
import time
from operator import add
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = [
    "PAYLOAD_SIZE",
    "SINK_PAUSE",
    "SINK_PAUSE_EVERY",
    "InFlight",
    "add",
    "dec",
    "div3",
    "double",
    "ident",
    "inc",
    "neg",
    "percentile",
    "sleep0",
    "triple",
]


def double(x: int) -> int:
    """Return ``x * 2`` (the B1 map)."""
    return x * 2


def div3(x: int) -> bool:
    """Return whether ``x`` is divisible by 3 (the B1 filter)."""
    return x % 3 == 0


def inc(x: int) -> int:
    """Return ``x + 1``."""
    return x + 1


def dec(x: int) -> int:
    """Return ``x - 1``."""
    return x - 1


def triple(x: int) -> int:
    """Return ``x * 3``."""
    return x * 3


def neg(x: int) -> int:
    """Return ``-x``."""
    return -x


def ident(x: int) -> int:
    """Return ``x`` unchanged (the latency chain's stages)."""
    return x


async def sleep0(x: int) -> int:
    """Yield to the event loop once, then return ``x`` (the map_async user function)."""
    await asyncio.sleep(0)
    return x


#: The four maps of B3 and of the fan-out branches, in order.
FOUR_MAPS = (inc, double, dec, triple)

#: Size in bytes of one backpressure element.
PAYLOAD_SIZE = 1024
#: The slow sink pauses ``SINK_PAUSE`` seconds after every ``SINK_PAUSE_EVERY`` elements.
SINK_PAUSE = 0.001
SINK_PAUSE_EVERY = 100


def percentile(sorted_values: list[float], q: float) -> float:
    """Return the ``q`` quantile (0..1) of an already sorted list, nearest-rank method."""
    if not sorted_values:
        raise ValueError("percentile of an empty list")
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


class InFlight:
    """Counts elements produced and consumed to track how many are in flight.

    ``source(n)`` yields ``n`` fresh 1 KiB ``bytes`` objects and counts each one as produced
    just before handing it out; the consumer calls :meth:`consumed_one` when the sink starts
    handling an element. ``produced - consumed`` is the number of elements held somewhere in
    between (buffers, ports, queues); its maximum is recorded exactly at every production, and
    a time series of it is sampled every ``every`` events (production or consumption), so it
    is recorded even when the producer starves every other task of the event loop.
    """

    __slots__ = ("consumed", "every", "peak", "produced", "series", "t0")

    def __init__(self, every: int = 128) -> None:
        self.produced = 0
        self.consumed = 0
        self.peak = 0
        self.every = every
        self.series: list[tuple[float, int]] = []
        self.t0 = time.perf_counter()

    def start(self) -> None:
        """Reset the clock of the time series to now."""
        self.t0 = time.perf_counter()
        self.series.append((0.0, 0))

    def source(self, n: int) -> Iterator[bytes]:
        """Yield ``n`` fresh payloads, counting each as produced."""
        every = self.every
        for _ in range(n):
            self.produced += 1
            in_flight = self.produced - self.consumed
            if in_flight > self.peak:
                self.peak = in_flight
            if self.produced % every == 0:
                self.series.append((time.perf_counter() - self.t0, in_flight))
            yield bytes(PAYLOAD_SIZE)

    def consumed_one(self) -> bool:
        """Count one element as consumed; return True when the sink should pause now."""
        self.consumed += 1
        if self.consumed % self.every == 0:
            self.series.append((time.perf_counter() - self.t0, self.produced - self.consumed))
        return self.consumed % SINK_PAUSE_EVERY == 0

    async def slow_sink(self, _element: bytes) -> None:
        """The slow asynchronous consumer: pause 1 ms after every 100 elements."""
        if self.consumed_one():
            await asyncio.sleep(SINK_PAUSE)

    def blocking_slow_sink(self, _element: bytes) -> None:
        """The same consumer for a thread: ``time.sleep`` 1 ms after every 100 elements."""
        if self.consumed_one():
            time.sleep(SINK_PAUSE)

    def series_points(self) -> list[list[float]]:
        """Return the sampled series as ``[[seconds, in_flight], ...]`` sorted by time."""
        self.series.append((time.perf_counter() - self.t0, self.produced - self.consumed))
        return [[round(t, 6), float(v)] for t, v in sorted(self.series)]
