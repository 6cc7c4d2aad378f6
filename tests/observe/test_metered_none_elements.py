"""A source that hands over a ``None`` counts, with metrics on, what went out before it.

RS rule 2.13: a ``None`` element fails the source. On the element-at-a-time path the
source's push of the ``None`` raises, so the connection counts exactly the elements before
it. The fast paths take from the source's iterator in one call (a fused chain, Broadcast,
``map_async``, Partition, Balance, a keyed aggregate) and find the ``None`` among what they
took; their metered counts (read off the iterator or counted as the take settles) must not
include the ``None`` nor anything taken after it: the element count of the source's
connection equals the element-at-a-time path's, for a list, a tuple and a generator.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Balance,
    Broadcast,
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
from reactive.state import Stores
from tests.observe.test_metered_take_one import source_metrics

CONSUMERS = ("chain", "broadcast", "map_async", "partition", "balance", "keyed")


def _items(kind: str, xs: list[Any]) -> Any:
    if kind == "list":
        return list(xs)
    if kind == "tuple":
        return tuple(xs)
    return (x for x in xs)


async def _ident(x: Any) -> Any:
    return x


def _graph(consumer: str, items: Any) -> Any:
    src = Source.from_iterable(items).named("src")
    if consumer == "chain":
        return src.map(lambda x: x).to_mat(Sink.ignore(), lambda a, b: b)
    if consumer == "map_async":
        return src.map_async(2, _ident).to_mat(Sink.ignore(), lambda a, b: b)
    if consumer == "keyed":
        store = Stores.in_memory("counts")
        counted = src.aggregate_by_key(store, lambda x: x % 3, lambda: 0, lambda a, x: a + 1)
        return counted.to_mat(Sink.ignore(), lambda a, b: b)

    def blueprint(b: Any, sink: Any) -> Any:
        s = b.add(src)
        if consumer == "broadcast":
            fan: Any = b.add(Broadcast(2))
        elif consumer == "partition":
            fan = b.add(Partition(2, lambda x: x % 2))
        else:
            fan = b.add(Balance(2))
        merge = b.add(Merge(2))
        s.out >> fan.in_
        for i in range(2):
            branch = Flow().map_async(1, _ident) if consumer == "balance" else Flow().map(abs)
            fan.out(i) >> b.add(branch) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.ignore()))


async def _source_elements(consumer: str, items: Any, fast: bool) -> int:
    """Run the graph (it fails on the None) and return what its source's connection counted."""
    async with Materializer(fast_paths=fast, metrics=True, name=f"none-{fast}") as mat:
        try:
            await _graph(consumer, items).named("g").run(mat)
        except Exception:
            pass
        else:  # pragma: no cover - the None fails the stream
            raise AssertionError("the stream did not fail on the None element")
        await asyncio.sleep(0)
        elements: int = source_metrics(mat).elements
    return elements


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    consumer=st.sampled_from(CONSUMERS),
    kind=st.sampled_from(("list", "tuple", "generator")),
    before=st.integers(0, 40),
    after=st.integers(0, 40),
)
def test_metered_counts_stop_before_a_none_element(
    consumer: str, kind: str, before: int, after: int
) -> None:
    xs: list[Any] = [*range(1, before + 1), None, *range(before + 1, before + 1 + after)]
    fast = asyncio.run(_source_elements(consumer, _items(kind, xs), True))
    slow = asyncio.run(_source_elements(consumer, _items(kind, xs), False))
    assert slow == before
    assert fast == slow
