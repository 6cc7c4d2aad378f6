"""Errors, resumes and restarts are counted whichever path ran the function that raised.

Operators that supervise their functions' exceptions themselves (a fused run of
map/filter/scan, map_async's worker pool and its hand-overs, Partition's and ZipWith's
batches, the fold and foreach sinks) once decided without counting: with the default
fast paths a resumed ``map`` showed ``errors=0 resumes=0`` against ``4 4`` with fast paths
off, and a failed call of ``map_async`` was never counted on either path. Each scenario
runs with fast paths on and off: the elements, and the errors, restarts and resumes summed
over the graph's stages (a fused run is one stage), are the same on both and equal to a
model of how often the function raised.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Attributes,
    ClosedShape,
    GraphDSL,
    Keep,
    Materializer,
    Merge,
    Partition,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
    ZipWith,
)

KINDS = (
    "map",
    "filter",
    "scan",
    "map+filter",
    "map_async",
    "map_async_later",
    "partition",
    "zip_with",
    "fold",
    "foreach",
)
DIRECTIVES = {
    "resume": Supervision.resume,
    "restart": Supervision.restart,
    "stop": Supervision.stop,
}


def _bad(x: int) -> bool:
    return x % 5 == 0


def _check(x: int) -> int:
    if _bad(x):
        raise ValueError(f"bad {x}")
    return x


async def _later(x: int) -> int:
    await asyncio.sleep(0)
    return _check(x)


async def _then(done: Any, seen: list[int]) -> list[int]:
    await done
    return seen


def _graph(kind: str, xs: list[int], decider: Any) -> Any:
    """The scenario's graph (its materialized value: the sink's result)."""
    sup = Attributes.supervision_strategy(decider)
    src = Source.from_iterable(xs)
    if kind == "map":
        return src.map(_check).with_attributes(sup).to_mat(Sink.seq(), Keep.right)
    if kind == "filter":
        flow = src.filter(lambda x: _check(x) % 2 == 0)
        return flow.with_attributes(sup).to_mat(Sink.seq(), Keep.right)
    if kind == "scan":
        flow = src.scan(0, lambda a, x: a + _check(x))
        return flow.with_attributes(sup).to_mat(Sink.seq(), Keep.right)
    if kind == "map+filter":
        flow = src.map(_check).filter(lambda x: x % 2 == 0)
        return flow.with_attributes(sup).to_mat(Sink.seq(), Keep.right)
    if kind == "map_async":  # f raises before it returns its awaitable
        flow = src.map_async(1, lambda x: asyncio.sleep(0, _check(x)))
        return flow.with_attributes(sup).to_mat(Sink.seq(), Keep.right)
    if kind == "map_async_later":  # the call fails after a suspension
        return src.map_async(2, _later).with_attributes(sup).to_mat(Sink.seq(), Keep.right)
    if kind == "fold":
        return src.to_mat(Sink.fold(0, lambda a, x: a + _check(x)).with_attributes(sup), Keep.right)
    if kind == "foreach":  # its result: the elements it saw (``Done`` is dropped)
        seen: list[int] = []
        sink = Sink.foreach(lambda x: seen.append(_check(x))).with_attributes(sup)
        return src.to_mat(sink, Keep.right).map_materialized_value(lambda done: _then(done, seen))
    if kind == "partition":

        def blueprint(b: Any, sink: Any) -> Any:
            s = b.add(src)
            part = b.add(Partition(2, lambda x: _check(x) % 2))
            merge = b.add(Merge(2))
            s.out >> part.in_
            part.out(0) >> merge.in_(0)
            part.out(1) >> merge.in_(1)
            merge.out >> sink.in_
            return ClosedShape

        return RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq())).add_attributes(sup)
    assert kind == "zip_with"

    def blueprint2(b: Any, sink: Any) -> Any:
        zw = b.add(ZipWith(lambda a, c: _check(a) + c))
        b.add(src).out >> zw.in0
        b.add(Source.from_iterable(range(len(xs)))).out >> zw.in1
        zw.out >> sink.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint2, Sink.seq())).add_attributes(sup)


async def _run(kind: str, xs: list[int], directive: str, fast: bool) -> tuple[Any, tuple[int, ...]]:
    """(the result or the failure's type, (errors, restarts, resumes) over the graph)."""
    answer = DIRECTIVES[directive]
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        g = _graph(kind, xs, lambda e: answer)
        try:
            result: Any = await g.named("g").run(mat)
        except ValueError as e:
            result = type(e)
        snap = mat.snapshot()
        counts = [0, 0, 0]
        for graph in snap.graphs:
            for s in graph.stages:
                m = s.metrics
                if m is not None:
                    counts[0] += m.errors
                    counts[1] += m.restarts
                    counts[2] += m.resumes
    if kind == "partition" and isinstance(result, list):
        result = sorted(result)
    return result, tuple(counts)


def _raised(kind: str, xs: list[int], directive: str) -> int:
    """How often the function raised: every bad element, or up to the first under stop."""
    bad = sum(1 for x in xs if _bad(x))
    return min(bad, 1) if directive == "stop" else bad


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    kind=st.sampled_from(KINDS),
    xs=st.lists(st.integers(0, 30), max_size=40),
    directive=st.sampled_from(sorted(DIRECTIVES)),
)
def test_fast_paths_count_what_the_plain_path_counts(
    kind: str, xs: list[int], directive: str
) -> None:
    fast = asyncio.run(_run(kind, xs, directive, True))
    plain = asyncio.run(_run(kind, xs, directive, False))
    assert fast == plain
    errors, restarts, resumes = fast[1]
    assert errors == _raised(kind, xs, directive)
    if directive == "resume":
        assert (restarts, resumes) == (0, errors)
    elif directive == "restart":
        assert restarts == errors
    else:
        assert (restarts, resumes) == (0, 0)


@pytest.mark.parametrize("kind", ["map", "filter", "map+filter", "map_async", "partition"])
async def test_four_resumed_elements_count_four_errors_and_four_resumes(kind: str) -> None:
    """The defect as reported: ten elements, four of which raise, resumed; the default
    fast paths counted none of them (map_async's later failures on neither path)."""
    xs = [1, 5, 2, 10, 3, 15, 4, 20, 6, 7]  # four of them raise
    result, counts = await _run(kind, xs, "resume", True)
    assert counts == (4, 0, 4), (kind, result)


async def test_a_call_of_map_async_that_fails_later_is_counted_on_both_paths() -> None:
    xs = [1, 5, 2, 10, 3]
    for fast in (True, False):
        result, counts = await _run("map_async_later", xs, "resume", fast)
        assert (result, counts) == ([1, 2, 3], (2, 0, 2))
