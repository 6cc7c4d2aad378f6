"""flat_map_merge's hand-over of inner batches (reactive/_ops/nesting.py): an entry that
is all that goes out is handed downstream as it is (no copy), several entries go out as
one batch, an entry used in part keeps its place, and the merge order, the per-inner
order and what is read from inner sources stay those of the element-by-element rules.
Also the sub-fused SubSinkInlet paths (reactive/_ops/substreams.py) these rely on."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive import Flow, IllegalGraphError, Materializer, OverflowStrategy, Sink, Source
from reactive._ops import nesting as nesting_mod
from reactive._ops import sinks as sinks_mod
from reactive._ops import substreams as subs_mod
from reactive.testkit import TestSink


async def test_a_lone_entry_is_handed_over_without_a_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """flat_map_concat of 1,000-element sources into Sink.fold (which asks for 1,024):
    each inner batch reaches the fold as the very list the inner source handed over."""
    # The batches themselves, kept alive (an id alone may be reused by a later list).
    handed: list[Any] = []
    folded: list[Any] = []
    sub_push = subs_mod._SubSinkLogic.on_push
    fold_push = sinks_mod._FoldSinkLogic.on_push

    def spy_sub(self: Any) -> None:
        x = self._conns[self.in_].elem
        if type(x) is subs_mod._Batch:
            handed.append(x)
        sub_push(self)

    def spy_fold(self: Any) -> None:
        x = self._cin.elem
        if type(x) is subs_mod._Batch:
            folded.append(x)
        fold_push(self)

    monkeypatch.setattr(subs_mod._SubSinkLogic, "on_push", spy_sub)
    monkeypatch.setattr(sinks_mod._FoldSinkLogic, "on_push", spy_fold)
    # Inner ranges materialized (not read directly: reactive._ops.nesting.DIRECT_INNER).
    monkeypatch.setattr(nesting_mod, "DIRECT_INNER", False)
    async with Materializer(fast_paths=True) as mat:
        total = await (
            Source.from_iterable(range(3))
            .flat_map_concat(lambda i: Source.from_iterable(range(i * 1000, (i + 1) * 1000)))
            .run_with(Sink.fold(0, lambda a, x: a + x), mat)
        )
    assert total == sum(range(3000))
    assert handed and any(x is y for x in handed for y in folded), len(folded)


@pytest.mark.parametrize("fast", [True, False], ids=["batches", "plain"])
@pytest.mark.parametrize("size", [1, 2, 1023, 1024, 1025, 3000])
async def test_flat_map_concat_keeps_the_exact_order_around_the_demand(
    fast: bool, size: int
) -> None:
    """Inner sources smaller than, equal to and larger than what the fold asks for (1,024):
    the concatenation, element for element (whole entries, entries used in part, a lone
    element pushed as itself)."""

    def inner(i: int) -> Any:
        return Source.from_iterable(range(i * 10_000, i * 10_000 + size))

    async with Materializer(fast_paths=fast) as mat:
        got = await (
            Source.from_iterable(range(4))
            .flat_map_concat(inner)
            .run_with(Sink.fold([], lambda a, x: [*a, x]), mat)
        )
    assert got == [i * 10_000 + j for i in range(4) for j in range(size)]


@settings(max_examples=30, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 700), min_size=0, max_size=10),
    breadth=st.integers(1, 8),
)
async def test_fold_over_a_merge_sees_each_element_once_in_inner_order(
    sizes: list[int], breadth: int
) -> None:
    """Random inner sizes and breadths into Sink.fold (several ready entries copied into one
    batch, some handed over whole): nothing lost or repeated, every inner in its order,
    and the same result as the plain (element-by-element) path."""
    results = []
    for fast in (True, False):

        def inner(i: int) -> Any:
            return Source.from_iterable([(i, j) for j in range(sizes[i])])

        async with Materializer(fast_paths=fast) as mat:
            got = await (
                Source.from_iterable(range(len(sizes)))
                .flat_map_merge(breadth, inner)
                .run_with(Sink.fold([], lambda a, x: [*a, x]), mat)
            )
        for i, n in enumerate(sizes):
            assert [e for e in got if e[0] == i] == [(i, j) for j in range(n)], fast
        assert len(got) == sum(sizes)
        results.append(sorted(got))
    assert results[0] == results[1]


async def test_a_batch_handed_over_whole_is_not_touched_afterwards() -> None:
    """Downstream keeps what it got (a ``buffer`` holding the batches while the consumer
    is slow): later inner batches do not change it."""
    async with Materializer(fast_paths=True) as mat:
        probe = (
            Source.from_iterable(range(3))
            .flat_map_concat(lambda i: Source.from_iterable(range(i * 100, (i + 1) * 100)))
            .buffer(1000, OverflowStrategy.backpressure)
            .run_with(TestSink.probe(), mat)
        )
        probe.request(300)
        got = await probe.expect_next_n(300)
        await probe.expect_complete()
    assert got == list(range(300))


@pytest.mark.parametrize(
    ("inner", "message"),
    [
        (lambda _: Sink.ignore(), "must have exactly one outlet"),
        (lambda _: Flow().map(str), "cannot run a graph that is not closed"),
        (lambda x: Source.single(x).to(Sink.ignore()), "must have exactly one outlet"),
    ],
    ids=["sink", "flow", "closed"],
)
async def test_a_function_returning_no_source_fails_as_before(inner: Any, message: str) -> None:
    """SubSinkInlet.materialize builds the nested graph without the blueprint layers
    only for a Source; anything else fails the stream with the blueprint's own error."""
    with pytest.raises(IllegalGraphError, match=message):
        await Source.from_iterable([1, 2]).flat_map_merge(2, inner).run_with(Sink.seq())


async def test_an_inner_handler_failure_fails_the_parent() -> None:
    """A SubSinkInlet without an on_push handler: the sub-fused push fails the parent
    stage with the port error (as the queued event did)."""
    from reactive.stage import GraphStage, GraphStageLogic, OutHandler, Outlet, SourceShape

    class NoHandler(GraphStage[SourceShape[int]]):
        def __init__(self) -> None:
            self.shape = SourceShape(Outlet("NoHandler.out"))

        def create_logic(self, attributes: Any) -> GraphStageLogic:
            shape = self.shape

            class Logic(GraphStageLogic, OutHandler):
                def __init__(self) -> None:
                    super().__init__(shape)
                    self.set_handler(shape.out, self)

                def on_pull(self) -> None:
                    inlet = subs_mod.SubSinkInlet(self, "inner")
                    inlet.materialize(Source.single(1))
                    inlet.pull()

            return Logic()

    with pytest.raises(Exception, match="no on_push handler installed"):
        await Source.from_graph(NoHandler()).run_with(Sink.seq())


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    "r",
    [range(0, 3000, 3), range(2500, -7, -2), range(2**64, 2**64 + 1500), range(5, 5), range(1)],
    ids=["step", "negative-step", "past-2**63", "empty", "one"],
)
async def test_a_range_inner_source_hands_out_slices_of_itself(fast: bool, r: range) -> None:
    """An inner range source answers a batch pull with a slice of the range (and moves its
    iterator past it): steps, negative steps, values past 2**63, empty and one-element
    ranges, through batches of the fold's share, give the range element for element."""
    async with Materializer(fast_paths=fast) as mat:
        got = await (
            Source.from_iterable(range(2))
            .flat_map_concat(lambda i: Source.from_iterable(r))
            .run_with(Sink.fold([], lambda a, x: [*a, x]), mat)
        )
    assert got == list(r) * 2
