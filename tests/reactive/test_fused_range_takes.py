"""A fused chain taking from an iterable source: sub-range takes, wide takes, last-only runs.

The fast paths of issue 19's B1 row (``reactive/_impl/fused.py``, ``_fill``): a range
source hands over sub-ranges (no ``chain``/``islice`` per element) and the chain leaves
out its check of each handed-over element for ``None`` (a range holds none); a chain that
may drop elements takes wide from a lazy source once the room is small and runs bounded
by the room; in front of ``Sink.last`` the run keeps only its last output. None of it
may show: the same result or failure as the operators' own stages (fast paths off), the
same elements read from the user's iterator, the same metrics counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Keep, Materializer, Sink, Source, Supervision
from reactive._impl.fused import _compile

KINDS = ("map", "filter", "filter_not", "scan", "drop", "drop_while")
SINKS = ("last", "last_option", "seq", "fold")

Op = tuple[str, int, int, str, str]  # kind, k, the element it fails on, how, directive


def _function(kind: str, k: int, bad: int, how: str) -> Any:
    """The operator's function: plain arithmetic on ``k``; it raises (``how`` "raise")
    or makes ``None`` (map, scan) on the element ``bad``."""

    def hit(x: Any) -> bool:
        if x == bad:
            if how == "raise":
                raise ValueError(f"{kind} failed on {x}")
            return how == "none"
        return False

    if kind == "map":
        return lambda x: None if hit(x) else x * k + 1
    if kind == "scan":
        return lambda acc, x: None if hit(x) else acc + x
    if kind == "drop_while":
        return lambda x: hit(x) or x % (k + 2) != 0
    return lambda x: hit(x) or x % (k + 2) == 0  # filter / filter_not


def _flow(src: Any, chain: list[Op]) -> Any:
    for kind, k, bad, how, directive in chain:
        if kind == "drop":
            src = src.drop(k)
        elif kind == "scan":
            src = src.scan(k, _function(kind, k, bad, how))
        else:
            src = getattr(src, kind)(_function(kind, k, bad, how))
        if directive != "stop":
            d = Supervision.resume if directive == "resume" else Supervision.restart
            src = src.with_attributes(Attributes.supervision_strategy(lambda exc, d=d: d))
    return src


def _sink(kind: str) -> Any:
    if kind == "last":
        return Sink.last()
    if kind == "last_option":
        return Sink.last_option()
    if kind == "seq":
        return Sink.seq()
    return Sink.fold(0, lambda acc, x: acc * 31 + hash(x) & 0xFFFFFFFF)


class Reads:
    """An iterator over ``data`` that counts what was read of it."""

    def __init__(self, data: list[int]) -> None:
        self.it = iter(data)
        self.read = 0

    def __iter__(self) -> Reads:
        return self

    def __next__(self) -> int:
        x = next(self.it)
        self.read += 1
        return x


async def _outcome(
    data: Any, chain: list[Op], sink: str, fast: bool, limit: int = -1
) -> tuple[Any, int]:
    reads = Reads(data) if isinstance(data, list) else None
    src = Source.from_iterable(data if reads is None else reads)
    flow = _flow(src, chain)
    if limit >= 0:  # (asks for no more than ``limit`` elements, then cancels)
        flow = flow.take(limit)
    async with Materializer(fast_paths=fast) as mat:
        try:
            got: Any = ("ok", await flow.run_with(_sink(sink), mat))
        except Exception as exc:  # compared below
            got = (type(exc).__name__, str(exc))
    return got, -1 if reads is None else reads.read


ops = st.lists(
    st.tuples(
        st.sampled_from(KINDS),
        st.integers(0, 4),
        st.integers(-1, 3000),
        st.sampled_from(["raise", "none", "never"]),
        st.sampled_from(["stop", "resume", "restart"]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(-50, 50),
    size=st.integers(0, 5000),
    step=st.sampled_from([1, 1, 2, 3, -1, -7]),
    chain=ops,
    sink=st.sampled_from(SINKS),
)
def test_a_range_source_gives_what_the_operators_own_stages_give(
    start: int, size: int, step: int, chain: list[Op], sink: str
) -> None:
    data = range(start, start + size * step, step)
    fused = asyncio.run(_outcome(data, chain, sink, True))
    plain = asyncio.run(_outcome(data, chain, sink, False))
    assert fused == plain


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(0, 5000),
    chain=ops,
    sink=st.sampled_from(SINKS),
    limit=st.one_of(st.just(-1), st.integers(0, 3000)),
)
def test_an_iterator_is_read_as_far_as_element_by_element(
    size: int, chain: list[Op], sink: str, limit: int
) -> None:
    """Wide takes from a lazy source read no element more (nor fewer) than the
    operators' own stages pull, whatever is asked downstream (a ``take(limit)``): the
    count of reads of the user's iterator is equal."""
    data = list(range(size))
    fused = asyncio.run(_outcome(data, chain, sink, True, limit))
    plain = asyncio.run(_outcome(data, chain, sink, False, limit))
    assert fused == plain


async def test_a_range_through_a_filter_into_last() -> None:
    """B1 itself, against the plain loop, both paths; and ``last_option`` of nothing."""
    n = 100_000
    want = 0
    for x in range(n):
        if x * 2 % 3 == 0:
            want += x * 2
    for fast in (True, False):
        async with Materializer(fast_paths=fast) as mat:
            got = await (
                Source.from_iterable(range(n))
                .map(lambda x: x * 2)
                .filter(lambda x: x % 3 == 0)
                .scan(0, lambda a, b: a + b)
                .run_with(Sink.last(), mat)
            )
            none = await (
                Source.from_iterable(range(n))
                .filter(lambda x: x < 0)
                .run_with(Sink.last_option(), mat)
            )
        assert (got, none) == (want, None)


async def test_a_none_from_a_list_still_fails_the_source() -> None:
    """Only a range is trusted to hold no None: a list's None fails the source."""
    data = [1, 2, None, 4]
    for fast in (True, False):
        async with Materializer(fast_paths=fast) as mat:
            with pytest.raises(Exception, match="iterable_source|IterableSource") as info:
                await Source.from_iterable(data).map(lambda x: x).run_with(Sink.last(), mat)
        assert "null" in str(info.value).lower() or "none" in str(info.value).lower()


async def test_a_range_longer_than_an_index() -> None:
    """A range whose length does not fit an index takes the plain path."""
    huge = range(2**64)
    async with Materializer() as mat:
        got = await (
            Source.from_iterable(huge)
            .filter(lambda x: x % 2 == 1)
            .take(5)
            .run_with(Sink.seq(), mat)
        )
    assert got == [1, 3, 5, 7, 9]


def test_a_trusted_run_leaves_out_the_check_of_what_upstream_hands_over() -> None:
    """The generated code: the trusted run has no ``return 2`` (upstream's None), and a
    ``last`` run keeps its last output instead of appending each one."""
    kinds = ("map", "filter", "scan")
    fns = [lambda x: x * 2, lambda x: x % 3 == 0, lambda a, x: a + x]
    checked = _compile(kinds, 0)[0](fns)
    trusted = _compile(kinds, 0, False, True)[0](fns)
    last = _compile(kinds, 0, False, True, True)[0](fns)
    assert checked(iter([1, None]), [], [None, None, 0]) == 2
    with pytest.raises(TypeError):  # the None reaches the map's function
        trusted(iter([1, None]), [], [None, None, 0])
    out: list[Any] = []
    st_ = [None, None, 0]
    assert last(iter(range(10)), out, st_) is None
    assert out == [0 + 0 + 6 + 12 + 18] and st_[2] == 36


async def test_metered_counts_are_those_of_the_operators_own_stages() -> None:
    """With metrics on (no last-only run then) the source's and the sink's counts are
    those of the plain path: every element the chain made reaches ``Sink.last``."""

    async def counts(fast: bool) -> tuple[Any, dict[str, tuple[int, int]]]:
        graph = (
            Source.from_iterable(range(10_000))
            .named("src")
            .map(lambda x: x * 2)
            .filter(lambda x: x % 3 == 0)
            .scan(0, lambda a, b: a + b)
            .to_mat(Sink.last().named("sink"), Keep.right)
            .named("g")
        )
        async with Materializer(metrics=True, fast_paths=fast) as mat:
            got = await graph.run(mat)
            for _ in range(5):
                await asyncio.sleep(0)
            stages = mat.snapshot().graph("g").stages
            seen = {}
            for s in stages:
                assert s.metrics is not None
                seen[s.id.split("#")[0]] = (s.metrics.elements_in, s.metrics.elements_out)
        return got, seen

    fused = await counts(True)
    plain = await counts(False)
    # (the operators are one fused stage on one path and three on the other)
    assert fused[0] == plain[0]
    assert fused[1]["src"] == plain[1]["src"] == (0, 10_000)
    assert fused[1]["sink"] == plain[1]["sink"] == (3335, 0)
