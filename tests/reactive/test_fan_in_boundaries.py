"""Differential property tests of async boundaries handing batches straight to a fan-in
junction (``_accept_i``, the boundary's side of the batch protocol): every input of a
``Merge``, ``Zip``, ``Concat``, ``Interleave`` or ``MergeSorted`` is a source (with its own
chain, a failure injected at a random element) ending in an ``async_boundary()``, so each
junction input is a boundary's output. Random demand, then completion or cancellation;
fast paths on and off against a Python reference of the junction.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reactive import ClosedShape, Concat, GraphDSL, Interleave, Merge, MergeSorted, Zip
from reactive.testkit import TestSink
from tests.reactive.test_junction_batches import (
    BRANCH,
    DEMAND,
    INPUTS,
    SETTINGS,
    Injected,
    Op,
    by_branch,
    chain,
    interleaved,
    model,
    run,
    source,
)

KINDS = st.sampled_from(["merge", "zip", "concat", "interleave", "merge_sorted"])


def reference(kind: str, parts: list[list[int]], segment: int) -> list[Any]:
    """What the junction emits when every input completes with ``parts``."""
    if kind == "merge":
        return [(i, v) for i, p in enumerate(parts) for v in p]  # compared per input
    if kind == "zip":
        return list(zip(*parts, strict=False))
    if kind == "concat":
        return list(itertools.chain.from_iterable(parts))
    if kind == "interleave":
        return interleaved(parts, segment)
    return sorted(itertools.chain.from_iterable(parts))  # stable: in0 first on ties


@SETTINGS
@given(
    kind=KINDS,
    inputs=st.lists(
        st.tuples(INPUTS, BRANCH, st.one_of(st.none(), st.integers(0, 120))),
        min_size=2,
        max_size=4,
    ),
    segment=st.integers(1, 6),
    demand=DEMAND,
    cancel=st.booleans(),
)
@example(  # whole buffers handed to Merge from two boundaries, read in small steps
    kind="merge",
    inputs=[(list(range(40)), [], None), (list(range(40)), [("map", 2)], None)],
    segment=1,
    demand=[3, 7, 1],
    cancel=False,
)
@example(  # a failure behind a boundary while Zip holds a batch of the other input
    kind="zip",
    inputs=[(list(range(30)), [], 17), (list(range(30)), [], None)],
    segment=1,
    demand=[5],
    cancel=False,
)
async def test_fan_in_fed_by_boundaries_matches_python(
    kind: str,
    inputs: list[tuple[list[int], list[Op], int | None]],
    segment: int,
    demand: list[int],
    cancel: bool,
) -> None:
    if kind in ("zip", "merge_sorted"):
        inputs = inputs[:2]
    n = len(inputs)
    parts = [model(xs if fa is None else xs[:fa], ops) for xs, ops, fa in inputs]
    if kind == "merge_sorted":
        parts = [sorted(xs)[:fa] for xs, _, fa in inputs]
    expected = reference(kind, parts, segment)
    fails = any(fa is not None and fa < len(xs) for xs, _, fa in inputs)

    def make() -> Any:
        def blueprint(b: Any, sink: Any) -> Any:
            if kind == "merge":
                j = b.add(Merge(n))
            elif kind == "zip":
                j = b.add(Zip())
            elif kind == "concat":
                j = b.add(Concat(n))
            elif kind == "interleave":
                j = b.add(Interleave(n, segment))
            else:
                j = b.add(MergeSorted())
            ins = [j.in_(i) for i in range(n)] if kind in ("merge", "concat", "interleave") else []
            if not ins:
                ins = [j.in0, j.in1]
            for i, (xs, ops, fail_at) in enumerate(inputs):
                src = chain(source(xs, fail_at), ops)
                if kind == "merge":
                    src = src.map(lambda v, i=i: (i, v))
                elif kind == "merge_sorted":
                    # Sorted sources, chains of boundaries and buffers only: the reference
                    # is the sorted union (a prefix of it when an input fails).
                    src = source(sorted(xs), fail_at)
                    src = chain(src, [op for op in ops if op[0] in ("async", "buffer")])
                b.add(src.async_boundary()).out >> ins[i]
            j.out >> sink.in_
            return ClosedShape

        return GraphDSL.create(blueprint, TestSink.probe())

    results = [await run(make, fast_paths, demand, cancel) for fast_paths in (True, False)]
    for out, end in results:
        if kind == "merge":
            got = by_branch(out, n)
            for g, p in zip(got, parts, strict=True):
                assert g == (p if end == "complete" else p[: len(g)])
        elif end == "complete":
            assert out == expected
        else:
            assert out == expected[: len(out)]
        if end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1])
        elif end != "complete":
            assert isinstance(end, Injected), end
    ends = [end for _, end in results]
    if "complete" in ends and not fails:
        assert ends == ["complete", "complete"]
