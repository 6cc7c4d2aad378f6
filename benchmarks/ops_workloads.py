"""Shared pieces of the operator benchmarks (:mod:`benchmarks.suite_ops`): sizes, the
user functions every system calls, and the rate measurement of ``throttle_accuracy``."""

from __future__ import annotations

from benchmarks.runner import Measurement

__all__ = [
    "GROUP_SECONDS",
    "GROUP_SIZE",
    "INNER_SIZE",
    "MERGE_BREADTH",
    "RATE",
    "RATE_SKIP",
    "inner_range",
    "rate_measurement",
    "tally",
]

#: The rate asked of every ``throttle_accuracy`` system, in elements per second.
RATE = 1_000
#: Fraction of the elements skipped before the rate is measured: it holds the throttle's
#: initial burst (the bucket starts full with ``max(1, RATE x 100 ms)`` = 100 tokens).
RATE_SKIP = 0.1
#: ``grouped_within(GROUP_SIZE, GROUP_SECONDS)``.
GROUP_SIZE = 100
GROUP_SECONDS = 0.01
#: ``flat_map_merge(MERGE_BREADTH, f)`` where ``f(i)`` is a source of ``INNER_SIZE`` elements.
MERGE_BREADTH = 8
INNER_SIZE = 1_000


def tally(acc: tuple[int, int], group: list[int]) -> tuple[int, int]:
    """Fold step over groups: ``(elements seen, their sum)``; every grouping system's result."""
    return acc[0] + len(group), acc[1] + sum(group)


def inner_range(i: int) -> range:
    """The ``i``-th inner sequence of ``flat_map_merge``: ``INNER_SIZE`` distinct integers,
    disjoint from every other inner sequence (so the total sum checks every element)."""
    return range(i * INNER_SIZE, (i + 1) * INNER_SIZE)


def rate_measurement(stamps: list[float], n: int) -> Measurement:
    """The achieved rate from the arrival times of ``n`` elements at the sink.

    The rate is measured from element ``n * RATE_SKIP`` to the last one (the elements
    before include the throttle's initial burst, which the token bucket allows by design):
    ``achieved_rate = elements / seconds`` over that span; ``rate_error`` is
    ``|achieved / RATE - 1|`` in percent.
    """
    if len(stamps) != n or n < 20:
        raise AssertionError(f"sink saw {len(stamps)} of {n} elements (need >= 20)")
    skip = int(n * RATE_SKIP)
    span = stamps[-1] - stamps[skip]
    achieved = (n - 1 - skip) / span if span > 0 else float("inf")
    return Measurement(
        metrics={"achieved_rate": achieved, "rate_error": abs(achieved / RATE - 1.0) * 100.0},
        result=n,
    )
