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


async def flat_map_merge_materialized(n: int) -> int:
    """:func:`flat_map_merge` with every inner source materialized as a nested graph (the
    general case: ``reactive._ops.nesting.DIRECT_INNER`` off for the run), which is what
    an inner source other than a plain range, list, tuple or single element costs (one
    behind a ``map``, say)."""
    from reactive._ops import nesting

    was = nesting.DIRECT_INNER
    nesting.DIRECT_INNER = False
    try:
        return await flat_map_merge(n)
    finally:
        nesting.DIRECT_INNER = was


#: The inner lists of :func:`flat_map_merge_list_inners`, by size (the latest size only).
_LIST_INNERS: dict[int, list[list[int]]] = {}


def list_inners(n: int) -> list[list[int]]:
    """``[list(inner_range(i)) for i in range(n // INNER_SIZE)]``, built once per size:
    the row's setup, so no round pays for building them (the baselines build nothing but
    their ranges' iterators)."""
    lists = _LIST_INNERS.get(n)
    if lists is None:
        _LIST_INNERS.clear()
        lists = _LIST_INNERS[n] = [list(inner_range(i)) for i in range(n // INNER_SIZE)]
    return lists


async def flat_map_merge_list_inners(n: int) -> int:
    """:func:`flat_map_merge` over inner lists: ``i -> Source.from_iterable(lists[i])``
    (``lists[i] == list(inner_range(i))``, built by :func:`list_inners` beforehand)."""
    from reactive import Sink, Source

    lists = list_inners(n)

    def inner(i: int) -> Any:
        return Source.from_iterable(lists[i])

    result: int = await (
        Source.from_iterable(range(n // INNER_SIZE))
        .flat_map_merge(MERGE_BREADTH, inner)
        .run_with(Sink.fold(0, add))
    )
    return result
