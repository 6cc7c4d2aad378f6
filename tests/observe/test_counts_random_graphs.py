"""Metered element counts equal a reference model's in random chains with boundaries.

Every accounting path of ``reactive.observe._metering`` is crossed here: pushes through
``MeteredConnection.state``, a source's wrapped hand-over (eager and lazy takes), an
async boundary's ``_give``/``_lent`` and its element-at-a-time pushes, with fast paths
on and off and buffer sizes from 1 up. The model is the same chain on Python lists.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Keep, Materializer, Sink, Source

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

#: An operator of the chain: (kind, argument).
Op = tuple[str, int]

OPS = st.one_of(
    st.tuples(st.just("map"), st.integers(1, 5)),
    st.tuples(st.just("filter"), st.integers(2, 4)),
    st.tuples(st.just("scan"), st.just(0)),
    st.tuples(st.just("map_concat"), st.integers(0, 3)),
    st.tuples(st.just("grouped"), st.integers(1, 5)),
)


def _apply(flow: Any, op: Op) -> Any:
    kind, k = op
    if kind == "map":
        return flow.map(lambda x: x * k)
    if kind == "filter":
        return flow.filter(lambda x: _key(x) % k != 0)
    if kind == "scan":
        return flow.scan(0, lambda a, x: a + _key(x))
    if kind == "map_concat":
        return flow.map_concat(lambda x: [x] * ((_key(x) % (k + 1)) if k else 0))
    return flow.grouped(k)


def _model(op: Op, xs: list[Any]) -> list[Any]:
    kind, k = op
    if kind == "map":
        return [x * k for x in xs]
    if kind == "filter":
        return [x for x in xs if _key(x) % k != 0]
    if kind == "scan":
        out = [0]
        for x in xs:
            out.append(out[-1] + _key(x))
        return out
    if kind == "map_concat":
        return [x for x in xs for _ in range((_key(x) % (k + 1)) if k else 0)]
    return [xs[i : i + k] for i in range(0, len(xs), k)]


def _key(x: Any) -> int:
    """An int for any element (``grouped`` emits lists)."""
    return len(x) if isinstance(x, list) else int(x)


class _Numbers:
    """``range(n)`` through a generator: an iterator without an exact length hint."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self) -> Iterator[int]:
        yield from range(self.n)


#: How the source's elements come: a range or a list (exact lengths: a lazy take is
#: counted off the iterator), or a generator (counted as it is consumed).
SOURCES: dict[str, Callable[[int], Iterable[int]]] = {
    "range": range,
    "list": lambda n: list(range(n)),
    "generator": _Numbers,
}


async def _run(
    n: int, ops: list[Op], cuts: list[bool], buffer: int, fast: bool, kind: str
) -> dict[str, tuple[int, int]]:
    src: Any = Source.from_iterable(SOURCES[kind](n)).named("src")
    for i, (op, cut) in enumerate(zip(ops, cuts, strict=True)):
        src = _apply(src, op).named(f"s{i}")
        if cut:
            src = src.async_boundary()
    graph = (
        src.to_mat(Sink.seq().named("sink"), Keep.right)
        .named("g")
        .add_attributes(Attributes.input_buffer(buffer, buffer))
    )
    async with Materializer(metrics=True, fast_paths=fast) as mat:
        await graph.run(mat)
        for _ in range(10):
            await asyncio.sleep(0)
        counts: dict[str, tuple[int, int]] = {}
        for s in mat.snapshot().graph("g").stages:
            assert s.metrics is not None, s.id
            counts[s.id] = (s.metrics.elements_in, s.metrics.elements_out)
    return counts


def _expected(n: int, ops: list[Op], cuts: list[bool]) -> dict[str, tuple[int, int]]:
    """Per stage (each op ``s<i>``, the boundary halves, source and sink): (in, out)."""
    xs: list[Any] = list(range(n))
    want = {"src": (0, n)}
    for i, (op, cut) in enumerate(zip(ops, cuts, strict=True)):
        ys = _model(op, xs)
        want[f"s{i}"] = (len(xs), len(ys))
        if cut:
            want[f"s{i}.async-out"] = (len(ys), 0)
            nxt = f"s{i + 1}" if i + 1 < len(ops) else "sink"
            want[f"{nxt}.async-in"] = (0, len(ys))
        xs = ys
    want["sink"] = (len(xs), 0)
    return want


def _fold_fused(want: dict[str, tuple[int, int]], got: dict[str, tuple[int, int]]) -> None:
    """A fused run ``s1+s2+...`` (fast paths) reports its first op's in, its last's out;
    the boundary halves around it carry its name (``s1+s2.async-out`` is ``s2``'s)."""
    for sid in got:
        base, dot, half = sid.partition(".")
        parts = base.split("+")
        if len(parts) < 2 or not all(p in want for p in parts):
            continue
        if dot:
            own = f"{parts[-1] if half == 'async-out' else parts[0]}.{half}"
            want[sid] = want.pop(own)
        else:
            want[sid] = (want[parts[0]][0], want[parts[-1]][1])
    for sid in got:
        base, dot, _ = sid.partition(".")
        if not dot and "+" in base:
            for p in base.split("+"):
                want.pop(p, None)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 400),
    chain=st.lists(st.tuples(OPS, st.booleans()), min_size=1, max_size=5),
    buffer=st.sampled_from([1, 2, 3, 8, 16]),
    fast=st.booleans(),
    kind=st.sampled_from(sorted(SOURCES)),
)
def test_metered_counts_equal_the_model_in_random_chains_with_boundaries(
    n: int, chain: list[tuple[Op, bool]], buffer: int, fast: bool, kind: str
) -> None:
    ops = [op for op, _ in chain]
    cuts = [cut for _, cut in chain]
    got = asyncio.run(_run(n, ops, cuts, buffer, fast, kind))
    want = _expected(n, ops, cuts)
    _fold_fused(want, got)
    assert got == want


def test_the_model_folds_a_fused_run() -> None:
    want = {"src": (0, 3), "s0": (3, 3), "s1": (3, 1), "sink": (1, 0)}
    _fold_fused(want, {"src": (0, 3), "s0+s1": (3, 1), "sink": (1, 0)})
    assert want == {"src": (0, 3), "s0+s1": (3, 1), "sink": (1, 0)}
