"""``map_async(1)``'s first step of a call, tried again only now and then after one that
suspended (``_SKIP_AFTER_SUSPENSION``): with calls that always suspend, a first step runs
about once per 65 calls (64 skipped, then one tried), alone or as a worker of a
``Balance`` pool (whose delivery spells out the skipped case); the results keep the
order of a plain loop either way."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
)
from reactive._ops import async_


def counting_started(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls whose first step the stage ran and that suspended (``_Started``)."""
    started = [0]
    real = async_._Started

    class Counting(real):  # type: ignore[misc, valid-type]
        __slots__ = ()

        def __init__(self, coro: Any, yielded: Any) -> None:
            started[0] += 1
            super().__init__(coro, yielded)

    monkeypatch.setattr(async_, "_Started", Counting)
    return started


async def twice(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_first_steps_of_suspending_calls_are_retried_every_65_calls(
    fast_paths: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every call suspends: after a first step that suspended the next 64 calls are awaited
    as they are, then one is tried again; the results are the loop's."""
    started = counting_started(monkeypatch)
    n = 1_300
    async with Materializer(fast_paths=fast_paths, name="first-step") as mat:
        got = await Source.from_iterable(range(n)).map_async(1, twice).run_with(Sink.seq(), mat)
    assert got == [x * 2 for x in range(n)]
    assert n // 65 - 2 <= started[0] <= n // 65 + 2, started


async def test_pool_workers_retry_first_steps_every_65_calls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same in each ``map_async(1)`` worker of ``Balance(2)`` (its delivery starts the
    next call itself when the first step is skipped): about one first step per 65 calls
    per worker, never more, and every element once."""
    started = counting_started(monkeypatch)
    n = 2_600

    def blueprint(b: Any, sink: Any) -> Any:
        bal = b.add(Balance(2))
        merge = b.add(Merge(2))
        b.add(Source.from_iterable(range(n))) >> bal.in_
        for i in range(2):
            bal.out(i) >> b.add(Flow().map_async(1, twice)) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq()))
    async with Materializer(name="first-step-pool") as mat:
        got = await graph.run(mat)
    assert sorted(got) == [x * 2 for x in range(n)]
    assert n // 65 - 4 <= started[0] <= n // 65 + 4, started


class Refused(Exception):
    """Raised by ``f`` itself, before it returns an awaitable."""


def refusing(x: int) -> Any:
    """``f`` for ``map_async``: raises at once for every fifth element (from 2), else
    returns the call (which suspends once)."""
    if x % 5 == 2:
        raise Refused(x)
    return twice(x)


@pytest.mark.parametrize("fast_paths", [True, False])
@pytest.mark.parametrize("upstream", ["boundary", "fused", "iterable"])
async def test_a_call_refused_at_once_is_dropped_and_the_next_element_asked_for(
    upstream: str, fast_paths: bool
) -> None:
    """``map_async(1)`` under resume: an element whose ``f`` raises before returning an
    awaitable is dropped where the delivery of the previous result takes the next
    element (from a boundary's buffer, a fused chain or an iterable source), and the
    stream goes on with the element after it."""
    from reactive import Attributes, Supervision

    xs = list(range(60))
    src: Any = Source.from_iterable(xs)
    if upstream == "boundary":
        src = src.async_boundary()
    elif upstream == "fused":
        src = src.map(lambda x: x).filter(lambda x: True)
    flow = src.via(
        Flow()
        .map_async(1, refusing)
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
    )
    async with Materializer(fast_paths=fast_paths, name="refused") as mat:
        got = await flow.run_with(Sink.seq(), mat)
    assert got == [2 * x for x in xs if x % 5 != 2]
