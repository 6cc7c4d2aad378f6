"""Differential property tests: random chains of simple operators on random lists give
the same result as the same transformation on a Python iterator, with fast paths on and
off, and with async boundaries and backpressure buffers inserted at random places.

Each example runs its own stream (and its own materializer) inside the test's loop.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Materializer, OverflowStrategy, Sink, Source

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

Op = tuple[str, int]

OPS = st.one_of(
    st.tuples(st.just("map"), st.integers(1, 3)),
    st.tuples(st.sampled_from(["filter", "filter_not"]), st.integers(2, 4)),
    st.tuples(st.just("scan"), st.integers(0, 5)),
    st.tuples(st.sampled_from(["take", "drop"]), st.integers(0, 12)),
    st.tuples(st.sampled_from(["take_while", "drop_while"]), st.integers(0, 25)),
    st.tuples(st.just("grouped"), st.integers(1, 4)),
    st.tuples(st.just("zip_with_index"), st.just(0)),
    st.tuples(st.just("map_concat"), st.integers(2, 4)),
    st.tuples(st.just("intersperse"), st.integers(-3, -1)),
)
STAGES = st.one_of(
    OPS,
    st.tuples(st.just("async"), st.just(0)),
    st.tuples(st.just("buffer"), st.integers(1, 5)),
)
INPUTS = st.lists(st.integers(0, 20), max_size=30)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _grouped(it: Iterable[int], n: int) -> Iterator[int]:
    it = iter(it)
    while chunk := list(itertools.islice(it, n)):
        yield sum(chunk)


def _intersperse(it: Iterable[int], sep: int) -> Iterator[int]:
    for i, x in enumerate(it):
        if i:
            yield sep
        yield x


def model(xs: list[int], ops: list[Op]) -> list[int]:
    """The same transformation on Python iterators (lazy, like the stream; every closure
    binds its parameter now, as generator expressions would bind it late)."""
    it: Iterable[int] = iter(xs)
    for kind, k in ops:
        if kind == "map":
            it = map(lambda x, k=k: x * k + 1, it)
        elif kind == "filter":
            it = filter(lambda x, k=k: x % k == 0, it)
        elif kind == "filter_not":
            it = itertools.filterfalse(lambda x, k=k: x % k == 0, it)
        elif kind == "scan":
            it = itertools.accumulate(it, operator.add, initial=k)
        elif kind == "take":
            it = itertools.islice(it, k)
        elif kind == "drop":
            it = itertools.islice(it, k, None)
        elif kind == "take_while":
            it = itertools.takewhile(lambda x, k=k: x < k, it)
        elif kind == "drop_while":
            it = itertools.dropwhile(lambda x, k=k: x < k, it)
        elif kind == "grouped":
            it = _grouped(it, k)
        elif kind == "zip_with_index":
            it = itertools.starmap(lambda i, x: x + 100 * i, enumerate(it))
        elif kind == "map_concat":
            it = itertools.chain.from_iterable(map(lambda x, k=k: [x] * (x % k), it))
        elif kind == "intersperse":
            it = _intersperse(it, k)
        elif kind in ("async", "buffer"):
            pass
        else:  # pragma: no cover - the strategies only make the kinds above
            raise AssertionError(kind)
    return list(it)


def build(xs: list[int], ops: list[Op]) -> Any:
    """The stream: ``Source.from_iterable(xs)`` then every operator of ``ops``."""
    src: Any = Source.from_iterable(xs)
    for kind, k in ops:
        if kind == "map":
            src = src.map(lambda x, k=k: x * k + 1)
        elif kind == "filter":
            src = src.filter(lambda x, k=k: x % k == 0)
        elif kind == "filter_not":
            src = src.filter_not(lambda x, k=k: x % k == 0)
        elif kind == "scan":
            src = src.scan(k, operator.add)
        elif kind == "take":
            src = src.take(k)
        elif kind == "drop":
            src = src.drop(k)
        elif kind == "take_while":
            src = src.take_while(lambda x, k=k: x < k)
        elif kind == "drop_while":
            src = src.drop_while(lambda x, k=k: x < k)
        elif kind == "grouped":
            src = src.grouped(k).map(sum)
        elif kind == "zip_with_index":
            src = src.zip_with_index().map(lambda p: p[0] + 100 * p[1])
        elif kind == "map_concat":
            src = src.map_concat(lambda x, k=k: [x] * (x % k))
        elif kind == "intersperse":
            src = src.intersperse(k)
        elif kind == "async":
            src = src.async_boundary()
        elif kind == "buffer":
            src = src.buffer(k, OverflowStrategy.backpressure)
        else:  # pragma: no cover
            raise AssertionError(kind)
    return src


async def run(xs: list[int], ops: list[Op], fast_paths: bool, input_buffer: int = 16) -> list[int]:
    """Run the stream on a fresh materializer; check nothing is left running."""
    mat = Materializer(fast_paths=fast_paths, name="prop", input_buffer=input_buffer)
    async with mat:
        out: list[int] = await build(xs, ops).run_with(Sink.seq(), mat)
        for _ in range(20):
            if mat.running_tasks == 0:
                break
            await asyncio.sleep(0)
        assert mat.running_tasks == 0
    return out


def test_model_sanity() -> None:
    """The model itself: scan emits its zero first, intersperse only between elements."""
    assert model([1, 2, 3], [("scan", 0)]) == [0, 1, 3, 6]
    assert model([], [("scan", 5)]) == [5]
    assert model([1, 2], [("intersperse", -1)]) == [1, -1, 2]
    assert model([1, 2, 3, 4, 5], [("grouped", 2)]) == [3, 7, 5]
    assert model([5, 6], [("zip_with_index", 0)]) == [5, 106]


@SETTINGS
@given(xs=INPUTS, ops=st.lists(OPS, max_size=6))
async def test_chains_match_python(xs: list[int], ops: list[Op]) -> None:
    expected = model(xs, ops)
    assert await run(xs, ops, fast_paths=True) == expected
    assert await run(xs, ops, fast_paths=False) == expected


@SETTINGS
@given(xs=INPUTS, ops=st.lists(STAGES, max_size=7))
async def test_chains_with_boundaries_and_buffers_match_python(
    xs: list[int], ops: list[Op]
) -> None:
    expected = model(xs, ops)
    assert await run(xs, ops, fast_paths=True) == expected
    assert await run(xs, ops, fast_paths=False) == expected


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 20), min_size=40, max_size=200),
    ops=st.lists(STAGES, min_size=1, max_size=5),
    input_buffer=st.sampled_from([1, 2, 3, 16]),
)
async def test_longer_inputs_across_boundaries(
    xs: list[int], ops: list[Op], input_buffer: int
) -> None:
    """Inputs longer than the boundary buffer exercise re-requests and batches."""
    ops = [("async", 0), *ops, ("async", 0)]
    expected = model(xs, ops)
    assert await run(xs, ops, fast_paths=True, input_buffer=input_buffer) == expected
    assert await run(xs, ops, fast_paths=False, input_buffer=input_buffer) == expected
