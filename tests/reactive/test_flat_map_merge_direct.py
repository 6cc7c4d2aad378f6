"""flat_map_merge's direct read of inner ``Source.from_iterable(range)``,
``Source.from_iterable(list)``, ``Source.from_iterable(tuple)`` and ``Source.single(x)``
sources (reactive/_ops/nesting.py, ``_RangeInner``, ``_SeqInner``, ``_SingleInner``): no
nested graph is materialized for them, and
the stream does exactly what it does with the nested graphs (``DIRECT_INNER = False``):
the same elements in the same order, the same inner sources opened at the same points,
the same demand, completion, failure and cancellation, mixed with inner sources that
are materialized as before."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import reactive._ops.nesting as nesting_module
from reactive import (
    Attributes,
    Flow,
    Keep,
    Materializer,
    NoneElementError,
    OverflowStrategy,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import TestSink

# What an inner source is: a range, a list, a tuple or a single element read directly,
# or one of the kinds that are still materialized (a range behind a map, a range with
# attributes of its own); a list holding a None (read directly: the stream fails on it).
KINDS = ("range", "range", "single", "list", "tuple", "mapped", "named")
KINDS_WITH_NONE = (*KINDS, "list_none")


def _inner(kind: str, r: range) -> Any:
    if kind == "range":
        return Source.from_iterable(r)
    if kind == "single":
        return Source.single(("single", r.start))
    if kind == "list":
        return Source.from_iterable(list(r))
    if kind == "tuple":
        return Source.from_iterable(tuple(r))
    if kind == "list_none":
        xs: list[Any] = list(r)
        xs.insert(len(xs) // 2, None)
        return Source.from_iterable(xs)
    if kind == "mapped":
        return Source.from_iterable(r).map(lambda x: x)
    return Source.from_iterable(r).named("inner")


def _note(log: list[Any], x: Any, result: Any) -> Any:
    """``x`` appended to ``log``; returns ``result`` (a fold step or a mapping that logs)."""
    log.append(x)
    return result


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the inner sources read directly (``_RangeInner``s made)."""
    made = [0]
    init = nesting_module._RangeInner.__init__

    def counting(self: Any, logic: Any, r: range) -> None:
        made[0] += 1
        init(self, logic, r)

    monkeypatch.setattr(nesting_module._RangeInner, "__init__", counting)
    return made


class _OuterFailed(Exception):
    pass


async def _traced_fold(
    inners: list[tuple[str, range]],
    breadth: int,
    take: int | None,
    direct: bool,
    fail_at: int | None = None,
) -> list[Any]:
    """A log of the run: each inner source opened (``open i``) and each element reaching
    the sink, in the order they happened, and how the stream ended (upstream failing
    instead of giving element ``fail_at``, when given)."""
    log: list[Any] = []
    nesting_module.DIRECT_INNER = direct
    try:

        def f(i: int) -> Any:
            log.append(("open", i))
            kind, r = inners[i]
            return _inner(kind, r)

        def outer() -> Any:
            for i in range(len(inners)):
                if i == fail_at:
                    raise _OuterFailed(i)
                yield i

        src = Source.from_iterable(outer()).flat_map_merge(breadth, f)
        if take is not None:
            src = src.take(take)
        async with Materializer(fast_paths=True) as mat:
            try:
                total = await src.run_with(Sink.fold(0, lambda a, x: _note(log, x, a + 1)), mat)
            except _OuterFailed as exc:
                log.append(("failed", exc.args))
            except NoneElementError as exc:
                log.append(("none", str(exc)))
            else:
                log.append(("done", total))
    finally:
        nesting_module.DIRECT_INNER = True
    return log


def _inner_lists(kinds: tuple[str, ...]) -> Any:
    return st.lists(
        st.tuples(st.sampled_from(kinds), st.integers(0, 300), st.sampled_from([1, 3, -2])),
        min_size=0,
        max_size=9,
    )


inner_lists = _inner_lists(KINDS)


@settings(max_examples=60, deadline=None)
@given(
    inners=_inner_lists(KINDS_WITH_NONE),
    breadth=st.integers(1, 5),
    take=st.none() | st.integers(0, 400),
    fail_at=st.none() | st.integers(0, 8),
)
async def test_a_fold_over_direct_inner_ranges_sees_what_the_nested_graphs_give(
    inners: list[tuple[str, int, int]], breadth: int, take: int | None, fail_at: int | None
) -> None:
    """Sink.fold (demand in batches), cut short by a take or by upstream failing: the same
    log, element for element, with inner ranges, lists and tuples read directly and
    materialized, among inner sources of other kinds (a list holding a None: the same
    elements before it, then the same failure)."""
    spec = [(k, range(i * 10_000, i * 10_000 + n * s, s)) for i, (k, n, s) in enumerate(inners)]
    direct = await _traced_fold(spec, breadth, take, True, fail_at)
    plain = await _traced_fold(spec, breadth, take, False, fail_at)
    assert direct == plain


async def _traced_probe(
    inners: list[tuple[str, range]], breadth: int, requests: list[int], direct: bool
) -> list[Any]:
    """A probe asking for ``requests`` one after the other (each met or the stream over),
    then cancelling: the log of inner sources opened and elements received."""
    log: list[Any] = []
    nesting_module.DIRECT_INNER = direct
    try:

        def f(i: int) -> Any:
            log.append(("open", i))
            kind, r = inners[i]
            return _inner(kind, r)

        total = sum(1 if kind == "single" else len(r) for kind, r in inners)
        got = 0
        async with Materializer(fast_paths=True) as mat:
            probe = (
                Source.from_iterable(range(len(inners)))
                .flat_map_merge(breadth, f)
                .run_with(TestSink.probe(), mat)
            )
            for k in requests:
                probe.request(k)
                want = min(k, total - got)
                xs = await probe.expect_next_n(want) if want else []
                got += len(xs)
                log.append(("batch", xs))
                if got == total:
                    await probe.expect_complete()
                    log.append("complete")
                    break
            else:
                probe.cancel()
                log.append("cancelled")
    finally:
        nesting_module.DIRECT_INNER = True
    return log


@settings(max_examples=40, deadline=None)
@given(
    inners=inner_lists,
    breadth=st.integers(1, 4),
    requests=st.lists(st.integers(1, 200), min_size=1, max_size=6),
)
async def test_a_probe_over_direct_inner_ranges_sees_what_the_nested_graphs_give(
    inners: list[tuple[str, int, int]], breadth: int, requests: list[int]
) -> None:
    """Element-by-element and small demands (an inner source asked for one element, or for
    its share of a request), completion and cancellation: the same log both ways."""
    spec = [(k, range(i * 10_000, i * 10_000 + n * s, s)) for i, (k, n, s) in enumerate(inners)]
    direct = await _traced_probe(spec, breadth, requests, True)
    plain = await _traced_probe(spec, breadth, requests, False)
    assert direct == plain


async def test_inner_ranges_are_read_directly_with_fast_paths_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The benchmark's shape (reactive/_ops/nesting.py): every inner range read directly,
    none materialized; the sum is that of the nested graphs."""
    made = _counting(monkeypatch)
    materialized = [0]
    from reactive._ops import substreams

    materialize = substreams.SubSinkInlet.materialize

    def counting(self: Any, source: Any) -> Any:
        materialized[0] += 1
        return materialize(self, source)

    monkeypatch.setattr(substreams.SubSinkInlet, "materialize", counting)
    async with Materializer(fast_paths=True) as mat:
        total = await (
            Source.from_iterable(range(20))
            .flat_map_merge(8, lambda i: Source.from_iterable(range(i * 100, (i + 1) * 100)))
            .run_with(Sink.fold(0, lambda a, x: a + x), mat)
        )
    assert total == sum(range(2000))
    assert made[0] == 20 and materialized[0] == 0
    async with Materializer(fast_paths=True) as mat:
        got = await (
            Source.from_iterable(range(20))
            .flat_map_concat(lambda i: Source.single(i * 2))
            .run_with(Sink.seq(), mat)
        )
    assert got == [i * 2 for i in range(20)]
    assert made[0] == 40 and materialized[0] == 0


@pytest.mark.parametrize(
    "setting",
    ["fast_paths_off", "graph_fast_paths_off", "metrics", "map_materialized_value"],
)
async def test_inner_ranges_are_materialized_where_the_direct_read_would_show(
    monkeypatch: pytest.MonkeyPatch, setting: str
) -> None:
    """Fast paths off (the materializer's or the graph's), metrics on (each inner source a
    stage with counters), or a materialized-value function (user code run at
    materialization): the nested graphs, as before."""
    made = _counting(monkeypatch)
    seen: list[Any] = []

    def inner(i: int) -> Any:
        s = Source.from_iterable(range(i * 10, i * 10 + 10))
        if setting == "map_materialized_value":
            return s.map_materialized_value(lambda m: _note(seen, m, m))
        return s

    g = Source.from_iterable(range(5)).flat_map_merge(2, inner).to_mat(Sink.seq(), Keep.right)
    if setting == "graph_fast_paths_off":
        g = g.add_attributes(Attributes.fast_paths(False))
    async with Materializer(
        fast_paths=setting != "fast_paths_off", metrics=setting == "metrics"
    ) as mat:
        got = await g.run(mat)
    assert sorted(got) == list(range(50))
    assert made[0] == 0
    if setting == "map_materialized_value":
        assert len(seen) == 5


async def test_the_function_stays_supervised_around_direct_inner_ranges() -> None:
    """The function raising under resume drops that element; the inner ranges of the
    others are read directly and merged as before."""

    def f(i: int) -> Any:
        if i == 2:
            raise ValueError("boom")
        return Source.from_iterable(range(i * 10, i * 10 + 3))

    async with Materializer(fast_paths=True) as mat:
        got = await (
            Source.from_iterable(range(4))
            .flat_map_merge(2, f)
            .with_attributes(Attributes.supervision_strategy(lambda _: Supervision.resume))
            .run_with(Sink.seq(), mat)
        )
    assert sorted(got) == [0, 1, 2, 10, 11, 12, 30, 31, 32]


async def test_a_downstream_failure_stops_direct_inner_ranges() -> None:
    """The sink's function raising fails the stream with its exception; nothing of the
    inner ranges read directly is delivered after the stage stopped."""
    seen: list[int] = []

    def fold(a: int, x: int) -> int:
        seen.append(x)
        if len(seen) == 150:
            raise ValueError("enough")
        return a + x

    async with Materializer(fast_paths=True) as mat:
        with pytest.raises(ValueError, match="enough"):
            await (
                Source.from_iterable(range(10))
                .flat_map_merge(3, lambda i: Source.from_iterable(range(i * 100, (i + 1) * 100)))
                .run_with(Sink.fold(0, fold), mat)
            )
    assert len(seen) == 150


async def _traced_mutation(
    sizes: list[int], edits: list[tuple[int, int, str]], breadth: int, buf: int, direct: bool
) -> list[Any]:
    """Inner lists changed while they are read: after the ``k``-th element reaches the
    sink, the edit ``(k, j, what)`` appends to inner list ``j``, replaces its element at
    one of its last three indexes (by another value or by None), or removes its last
    element. A ``buffer(buf)`` keeps the demand small (``buf`` 0: no buffer, the sink's
    batches, which a short list cannot outlast). The log of elements and of how the
    stream ended."""
    lists = [list(range(j * 1_000, j * 1_000 + n)) for j, n in enumerate(sizes)]
    log: list[Any] = []
    count = [0]

    def step(a: int, x: int) -> int:
        log.append(x)
        count[0] += 1
        for k, j, what in edits:
            if k == count[0] and j < len(lists):
                xs = lists[j]
                if what == "append":
                    xs.append(-k)
                elif what == "pop":
                    if xs:
                        xs.pop()
                elif xs:
                    xs[max(0, len(xs) - 1 - k % 3)] = None if what == "none" else -k
        return a + 1

    buffered: Any = Flow[Any]()
    if buf:
        buffered = buffered.buffer(buf, OverflowStrategy.backpressure)
    nesting_module.DIRECT_INNER = direct
    try:
        async with Materializer(fast_paths=True) as mat:
            try:
                total = await (
                    Source.from_iterable(range(len(lists)))
                    .flat_map_merge(breadth, lambda j: Source.from_iterable(lists[j]))
                    .via(buffered)
                    .run_with(Sink.fold(0, step), mat)
                )
            except NoneElementError as exc:
                log.append(("none", str(exc)))
            else:
                log.append(("done", total))
    finally:
        nesting_module.DIRECT_INNER = True
    return log


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 60) | st.integers(1_000, 1_500), min_size=1, max_size=4),
    edits=st.lists(
        st.tuples(
            st.integers(1, 150),
            st.integers(0, 4),
            st.sampled_from(["append", "pop", "replace", "none"]),
        ),
        max_size=6,
    ),
    breadth=st.integers(1, 3),
    buf=st.sampled_from([0, 1, 4]),
)
# A None put in ahead of the reading, read in a batch and alone; elements appended to and
# removed from the list being read.
@example(sizes=[2_000], edits=[(1, 0, "none")], breadth=1, buf=0)
@example(sizes=[60], edits=[(1, 0, "none")], breadth=1, buf=1)
@example(sizes=[60, 5], edits=[(2, 0, "append"), (3, 0, "pop"), (4, 1, "pop")], breadth=2, buf=4)
async def test_inner_lists_changed_while_read_directly_are_seen_as_the_nested_graphs_see_them(
    sizes: list[int], edits: list[tuple[int, int, str]], breadth: int, buf: int
) -> None:
    """A list read directly is read through its own iterator at the points of the run the
    iterable source reads it: appended elements, removed ones and replaced ones (a None
    among them failing the stream with the iterable source's error) come out as with the
    nested graphs."""
    direct = await _traced_mutation(sizes, edits, breadth, buf, True)
    plain = await _traced_mutation(sizes, edits, breadth, buf, False)
    assert direct == plain


@pytest.mark.parametrize("kind", ["list", "tuple"])
async def test_inner_lists_and_tuples_are_read_directly_with_fast_paths_on(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """An inner list or tuple without None: read directly, none materialized."""
    made = _counting(monkeypatch)
    materialized = _counting_materialized(monkeypatch)
    async with Materializer(fast_paths=True) as mat:
        total = await (
            Source.from_iterable(range(20))
            .flat_map_merge(8, lambda i: _inner(kind, range(i * 100, (i + 1) * 100)))
            .run_with(Sink.fold(0, lambda a, x: a + x), mat)
        )
    assert total == sum(range(2000))
    assert made[0] == 20 and materialized[0] == 0


@pytest.mark.parametrize("direct", [True, False])
async def test_an_inner_list_holding_none_fails_the_stream_as_the_iterable_source_does(
    monkeypatch: pytest.MonkeyPatch, direct: bool
) -> None:
    """A list holding a None, read directly or materialized: the elements before it, then
    the iterable source's ``NoneElementError`` naming its port; with the function
    supervised (resume) too (the None is the source's failure, not the function's)."""
    monkeypatch.setattr(nesting_module, "DIRECT_INNER", direct)
    made = _counting(monkeypatch)
    materialized = _counting_materialized(monkeypatch)
    for supervised in (False, True):
        seen: list[int] = []
        g = Source.from_iterable(range(3)).flat_map_concat(
            lambda i: _inner("list_none" if i == 1 else "list", range(4))
        )
        if supervised:
            g = g.with_attributes(Attributes.supervision_strategy(lambda _: Supervision.resume))
        async with Materializer(fast_paths=True) as mat:
            with pytest.raises(
                NoneElementError,
                match=r"^\[iterable_source\] Cannot push None.*'IterableSource.out'",
            ):
                await g.run_with(Sink.foreach(seen.append), mat)
        assert seen == [0, 1, 2, 3, 0, 1]
    assert (made[0], materialized[0]) == ((4, 0) if direct else (0, 4))


def _counting_materialized(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the inner sources materialized (``SubSinkInlet.materialize`` calls)."""
    from reactive._ops import substreams

    materialized = [0]
    materialize = substreams.SubSinkInlet.materialize

    def counting(self: Any, source: Any) -> Any:
        materialized[0] += 1
        return materialize(self, source)

    monkeypatch.setattr(substreams.SubSinkInlet, "materialize", counting)
    return materialized
