"""Metered one-element takes: Partition and Balance keep their fast path with metrics on.

An iterable source hands a junction one element at a time in one call (``take_one_hook``).
With metrics on, the take is counted on the connection (one pull and one push with no
phase change, and the element unless the source's iterator counts it): the counts of the
source's connection equal those of the element-at-a-time path (fast paths off), and the
source is pulled a handful of times, not once per element.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    Partition,
    RunnableGraph,
    Sink,
    Source,
)
from tests.reactive.support import OneByOne

SOURCES = ("range", "list", "tuple", "generator")


def _source(kind: str, n: int) -> Any:
    if kind == "range":
        return range(n)
    if kind == "list":
        return list(range(n))
    if kind == "tuple":
        return tuple(range(n))
    return (x for x in range(n))


async def _run(junction: str, kind: str, n: int, fast: bool) -> tuple[int, Any]:
    """The sum through ``junction`` into two element-at-a-time stages, and the metrics of
    the connection from the source into the junction."""

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(_source(kind, n)).named("src"))
        fan = b.add(Partition(2, lambda x: x % 2) if junction == "partition" else Balance(2))
        merge = b.add(Merge(2))
        src.out >> fan.in_
        for i in range(2):
            fan.out(i) >> b.add(Flow.from_graph(OneByOne())) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, lambda a, x: a + x)))
    async with Materializer(fast_paths=fast, metrics=True, name=f"take-one-{fast}") as mat:
        total: int = await graph.run(mat)
        await asyncio.sleep(0)
        return total, source_metrics(mat)


def source_metrics(mat: Materializer) -> Any:
    """The metrics of the one connection out of the stage named "src" among the graphs
    ``mat`` keeps (the graph has ended: its counts are final)."""
    found = [
        c
        for g in mat.snapshot().graphs
        for isl in g.islands
        for c in isl.connections
        if c.upstream == "src"
    ]
    assert len(found) == 1, found
    assert found[0].metrics is not None
    return found[0].metrics


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    junction=st.sampled_from(("partition", "balance")),
    kind=st.sampled_from(SOURCES),
    n=st.integers(0, 40),
)
def test_metered_one_element_takes_count_as_the_element_at_a_time_path(
    junction: str, kind: str, n: int
) -> None:
    fast_total, fast = asyncio.run(_run(junction, kind, n, True))
    slow_total, slow = asyncio.run(_run(junction, kind, n, False))
    assert fast_total == slow_total == n * (n - 1) // 2
    assert fast.elements == slow.elements == n
    assert (fast.pushes, fast.pulls) == (slow.pushes, slow.pulls)


@pytest.mark.parametrize("kind", SOURCES)
async def test_partition_takes_one_element_at_a_time_with_metrics_on(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is taken with metrics on: Partition takes its elements with the
    source's one-element hand-over (not a counted lazy take of one, nor a pull each)."""
    from reactive._ops import sources

    ones = 0
    hand_over_one = sources._IterableLogic._hand_over_one

    def counting(self: Any) -> Any:
        nonlocal ones
        ones += 1
        return hand_over_one(self)

    monkeypatch.setattr(sources._IterableLogic, "_hand_over_one", counting)
    total, metrics = await _run("partition", kind, 2000, True)
    assert total == sum(range(2000))
    assert metrics.elements == 2000
    assert ones > 2000 * 9 // 10, ones
