"""The operator benchmarks (:mod:`benchmarks.suite_ops`) on the project's public API;
``reactive`` is imported inside the functions (see :mod:`benchmarks.project`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from benchmarks.ops_workloads import (
    GROUP_SECONDS,
    GROUP_SIZE,
    INNER_SIZE,
    MERGE_BREADTH,
    RATE,
    inner_range,
    rate_measurement,
    tally,
)
from benchmarks.workloads import add

if TYPE_CHECKING:
    from benchmarks.runner import Measurement


async def throttle(n: int) -> Measurement:
    """``from_iterable(range(n)).throttle(RATE, 1.0)`` into a sink recording arrival times."""
    from reactive import Sink, Source

    stamps: list[float] = []

    def record(_x: int) -> None:
        stamps.append(time.perf_counter())

    await Source.from_iterable(range(n)).throttle(RATE, 1.0).run_with(Sink.foreach(record))
    return rate_measurement(stamps, n)


async def grouped_within(n: int) -> tuple[int, int]:
    """``grouped_within(100, 0.01)`` folded with :func:`tally`."""
    from reactive import Sink, Source

    result: tuple[int, int] = await (
        Source.from_iterable(range(n))
        .grouped_within(GROUP_SIZE, GROUP_SECONDS)
        .run_with(Sink.fold((0, 0), tally))
    )
    return result


async def grouped(n: int) -> tuple[int, int]:
    """``grouped(100)`` (no timer) folded with :func:`tally` (reference)."""
    from reactive import Sink, Source

    result: tuple[int, int] = await (
        Source.from_iterable(range(n)).grouped(GROUP_SIZE).run_with(Sink.fold((0, 0), tally))
    )
    return result


async def flat_map_merge(n: int) -> int:
    """``flat_map_merge(8, i -> Source.from_iterable(inner_range(i)))``, summed."""
    from reactive import Sink, Source

    def inner(i: int) -> Any:
        return Source.from_iterable(inner_range(i))

    result: int = await (
        Source.from_iterable(range(n // INNER_SIZE))
        .flat_map_merge(MERGE_BREADTH, inner)
        .run_with(Sink.fold(0, add))
    )
    return result
