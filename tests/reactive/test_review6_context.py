"""SourceWithContext / FlowWithContext, from an Akka user's review.

- An element that is not an ``(element, context)`` pair (a source given to
  ``from_tuples``, or a plain flow given to ``via``, emitting something else) fails the
  operator that meets it with a TypeError naming the operator and what it got. Before, a
  longer tuple was cut to its first two items silently (``(1, 2, 3)`` went on as
  ``(1, 2)``: data lost) and anything else gave a bare "'int' object is not
  subscriptable". (Akka's types rule both out.)
- Cases no test pinned: supervision drops an element with its context in map_async and
  map_concat; a plain ``Flow`` of pairs is accepted by ``via`` (Akka's ``via`` takes a
  ``Graph[FlowShape[(Out, Ctx), (Out2, Ctx2)]]``); ``as_flow_with_context`` round trip.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    Attributes,
    Flow,
    FlowWithContext,
    Materializer,
    Sink,
    Source,
    SourceWithContext,
    Supervision,
)

PATHS = [pytest.param(True, id="fast"), pytest.param(False, id="plain")]
RESUME = Attributes.supervision_strategy(lambda e: Supervision.resume)


def _ctx_source() -> SourceWithContext[int, str, Any]:
    return Source.from_iterable([1, 2, 3, 4]).as_source_with_context(lambda x: f"c{x}")


async def _run(s: SourceWithContext[Any, Any, Any], mat: Materializer) -> list[Any]:
    return await s.as_source().run_with(Sink.seq(), mat)


@pytest.mark.parametrize("fast", PATHS)
@pytest.mark.parametrize(
    ("op", "apply"),
    [
        ("map", lambda s: s.map(lambda x: x)),
        ("filter", lambda s: s.filter(lambda x: True)),
        ("filter_not", lambda s: s.filter_not(lambda x: False)),
        ("map_concat", lambda s: s.map_concat(lambda x: [x])),
        ("map_context", lambda s: s.map_context(lambda c: c)),
        ("grouped/sliding", lambda s: s.grouped(2)),
    ],
)
async def test_a_longer_tuple_is_refused_not_cut(op: str, apply: Any, fast: bool) -> None:
    s = SourceWithContext.from_tuples(Source.from_iterable([(1, "a", "lost")]))
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(
            TypeError,
            match=rf"\[{op} with context\] expected an \(element, context\) pair, "
            r"got tuple \(1, 'a', 'lost'\)",
        ):
            await _run(apply(s), mat)


@pytest.mark.parametrize("fast", PATHS)
async def test_a_via_flow_emitting_non_pairs_is_named(fast: bool) -> None:
    s = _ctx_source().via(Flow().map(lambda pair: pair[0])).map(lambda x: x + 1)
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(TypeError, match=r"\[map with context\].*got int 1.*via\(\)"):
            await _run(s, mat)


@pytest.mark.parametrize("fast", PATHS)
async def test_a_non_pair_reaching_map_async_is_named(fast: bool) -> None:
    async def f(x: Any) -> Any:
        return x

    s = SourceWithContext.from_tuples(Source.from_iterable([7])).map_async(1, f)
    async with Materializer(fast_paths=fast) as mat:
        with pytest.raises(TypeError, match=r"\[map_async with context\].*got int 7"):
            await _run(s, mat)


# -- cases no test pinned (passing) ---------------------------------------------------------
@pytest.mark.parametrize("fast", PATHS)
async def test_map_async_under_resume_drops_the_element_with_its_context(fast: bool) -> None:
    async def inverse(x: int) -> float:
        await asyncio.sleep(0)
        return 1 / (x - 2)

    s = _ctx_source().map_async(2, inverse).with_attributes(RESUME)
    async with Materializer(fast_paths=fast) as mat:
        assert await _run(s, mat) == [(-1.0, "c1"), (1.0, "c3"), (0.5, "c4")]


@pytest.mark.parametrize("fast", PATHS)
async def test_map_concat_under_resume_keeps_the_context_of_each_output(fast: bool) -> None:
    def twice(x: int) -> Any:
        if x == 2:
            raise ValueError("two")
        return [x, -x]

    s = _ctx_source().map_concat(twice).with_attributes(RESUME)
    async with Materializer(fast_paths=fast) as mat:
        assert await _run(s, mat) == [
            (1, "c1"),
            (-1, "c1"),
            (3, "c3"),
            (-3, "c3"),
            (4, "c4"),
            (-4, "c4"),
        ]


@pytest.mark.parametrize("fast", PATHS)
async def test_via_a_plain_flow_of_pairs_and_a_flow_with_context(fast: bool) -> None:
    swap_twice: Flow[Any, Any, Any] = (
        Flow().map(lambda p: (p[1], p[0])).map(lambda p: (p[1] * 10, p[0]))
    )
    doubled = Flow().map(lambda x: x * 2).as_flow_with_context(lambda e, c: e, lambda o: f"o{o}")
    s = _ctx_source().via(swap_twice).via(FlowWithContext().filter(lambda x: x != 20)).via(doubled)
    async with Materializer(fast_paths=fast) as mat:
        assert await _run(s, mat) == [(20, "o20"), (60, "o60"), (80, "o80")]
