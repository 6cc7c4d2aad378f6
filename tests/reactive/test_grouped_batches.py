"""Differential property tests of ``grouped`` and ``grouped_within`` on the batch protocol
(the rest of a group asked for with one pull, arriving as one batch).

``grouped(n)`` runs over an iterable source, optionally through a fused chain (a filter,
or an injected failure) and an async boundary, with random downstream demand and a
cancel; each run is compared with a reference model (the chunks of the filtered input),
with fast paths on and off, and the number of elements read from the user's iterator is
the same both ways (nothing beyond demand). ``grouped_within(n, d)`` is driven on a
``ManualClock`` through an async boundary (which hands over what it buffered as one
batch) by random schedules of elements, demand, clock advances and completion; the runs
with fast paths on and off see the same groups at the same steps.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hypothesis import example, given
from hypothesis import strategies as st

from reactive import Flow, Keep, Materializer, Sink, Source
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.reactive.test_junction_batches import (
    DEMAND,
    INPUTS,
    SETTINGS,
    Injected,
    drive,
    source,
)

if TYPE_CHECKING:
    from collections.abc import Iterator


class Counted:
    """An iterable whose iterator counts the elements read from it."""

    def __init__(self, xs: list[int]) -> None:
        self.xs = xs
        self.read = 0

    def __iter__(self) -> Iterator[int]:
        for x in self.xs:
            self.read += 1
            yield x


def chunks(xs: list[int], n: int) -> list[list[int]]:
    return [xs[i : i + n] for i in range(0, len(xs), n)]


def grouped_source(
    data: Counted, n: int, keep_mod: int, fail_at: int | None, boundary: bool
) -> Source[Any, Any]:
    src: Any = source(data, fail_at)  # type: ignore[arg-type]  # any iterable will do
    if keep_mod > 1:
        src = src.filter(lambda x: x % keep_mod != 0)
    if boundary:
        src = src.async_boundary()
    return src.grouped(n)


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 12),
    keep_mod=st.integers(1, 4),
    fail_at=st.none() | st.integers(0, 130),
    boundary=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
@example(xs=list(range(10)), n=3, keep_mod=1, fail_at=None, boundary=False, demand=[1], cancel=True)
@example(xs=list(range(10)), n=4, keep_mod=2, fail_at=7, boundary=False, demand=[9], cancel=False)
async def test_grouped_matches_model_and_reads_the_same(
    xs: list[int],
    n: int,
    keep_mod: int,
    fail_at: int | None,
    boundary: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    stream = xs if fail_at is None else xs[:fail_at]
    kept = [x for x in stream if keep_mod <= 1 or x % keep_mod != 0]
    expected = chunks(kept, n)
    fails = fail_at is not None and fail_at < len(xs)
    reads = []
    for fast_paths in (True, False):
        data = Counted(xs)
        graph = grouped_source(data, n, keep_mod, fail_at, boundary).to_mat(
            TestSink.probe(), Keep.right
        )
        mat = Materializer(fast_paths=fast_paths, name="grouped-batches", input_buffer=4)
        async with mat:
            out, end = await drive(graph, mat, demand, cancel)
        if end == "complete":
            assert not fails
            assert out == expected
        elif end == "cancelled":
            assert cancel and len(out) == sum(demand[:-1])
            assert out == expected[: len(out)]
        else:
            assert fails and isinstance(end, Injected), end
            # The groups completed before the failure, the partial one dropped.
            assert out == [g for g in expected if len(g) == n][: len(out)]
        if not boundary:  # a boundary reads ahead into its buffer (both ways alike)
            reads.append((data.read, end if isinstance(end, str) else "failed"))
    if reads:
        # The same elements read from the user's iterator whichever path ran.
        assert reads[0] == reads[1]


# -- grouped_within on a ManualClock ------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("send"), st.integers(1, 9)),
    st.tuples(st.just("request"), st.integers(1, 4)),
    st.tuples(st.just("advance"), st.sampled_from([0.1, 0.4, 0.5, 1.0, 1.3])),
)


def received(sub: Any) -> list[Any]:
    """The groups the probe received so far (and how it ended, if it did)."""
    return [v if kind == "next" else (kind, repr(v)) for kind, v in sub._events.items]


async def run_schedule(
    fast_paths: bool, n: int, seconds: float, steps: list[tuple[str, Any]], finish: bool
) -> list[Any]:
    """Drive ``probe -> async_boundary -> grouped_within(n, seconds) -> probe`` by
    ``steps``; returns what the sink saw after each step (and at the end)."""
    clock = ManualClock()
    mat = Materializer(fast_paths=fast_paths, clock=clock, name="grouped-within", input_buffer=8)
    seen: list[Any] = []
    async with mat:
        pub, sub = (
            TestSource.probe()
            .async_boundary()
            .via(Flow().grouped_within(n, seconds))
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        nxt = 0
        for kind, arg in steps:
            if kind == "send":  # the probe holds them until pulled
                for _ in range(arg):
                    pub.send_next(nxt)
                    nxt += 1
            elif kind == "request":
                sub.request(arg)
            else:
                await clock.advance(arg)
            await clock.settle()
            seen.append(received(sub))
        if finish:
            pub.send_complete()
            sub.request(1000)
            await clock.settle()
            await clock.advance(seconds)
            await clock.settle()
            seen.append(received(sub))
        sub.cancel()
        await clock.settle()
    return seen


@SETTINGS
@given(
    n=st.integers(1, 6),
    seconds=st.sampled_from([0.5, 1.0]),
    steps=st.lists(STEP, min_size=1, max_size=25),
    finish=st.booleans(),
)
@example(n=3, seconds=1.0, steps=[("request", 2), ("send", 7), ("advance", 1.0)], finish=True)
async def test_grouped_within_same_groups_with_and_without_batches(
    n: int, seconds: float, steps: list[tuple[str, Any]], finish: bool
) -> None:
    on = await run_schedule(True, n, seconds, steps, finish)
    off = await run_schedule(False, n, seconds, steps, finish)
    assert on == off
    groups = [g for g in on[-1] if type(g) is list]
    flat = [x for g in groups for x in g]
    assert flat == list(range(len(flat)))  # in order, nothing lost or repeated
    assert all(0 < len(g) <= n for g in groups)


def test_grouped_asks_for_the_rest_of_the_group_in_one_pull() -> None:
    """The batch path is taken: a source of 1,000 elements grouped by 100 is read in ten
    pulls of the group's size, not a thousand."""
    pulls: list[int] = []

    async def main() -> list[list[int]]:
        from reactive._ops.sources import _IterableLogic

        orig = _IterableLogic.on_pull

        def on_pull(self: Any) -> None:
            pulls.append(self._conns[self.out].demand_n)
            orig(self)

        _IterableLogic.on_pull = on_pull  # type: ignore[method-assign]
        try:
            # Fast paths on explicitly (a REACTIVE_FAST_PATHS=0 run turns the default off).
            async with Materializer(fast_paths=True, name="grouped-pulls") as mat:
                src = Source.from_iterable(range(1000)).grouped(100)
                return await src.run_with(Sink.seq(), mat)
        finally:
            _IterableLogic.on_pull = orig  # type: ignore[method-assign]

    groups = asyncio.run(main())
    assert groups == chunks(list(range(1000)), 100)
    assert pulls == [100] * 10


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 8),
    outputs=st.integers(2, 5),
    wait_all=st.booleans(),
    mapped=st.booleans(),
)
@example(xs=list(range(15)), n=15, outputs=5, wait_all=True, mapped=False)
async def test_grouped_behind_balance_deals_out_the_same(
    xs: list[int], n: int, outputs: int, wait_all: bool, mapped: bool
) -> None:
    """Behind a ``Balance`` a group is asked for one element at a time, as without the
    fast path: ``Balance`` deals the elements out to the outputs in turn either way."""
    from reactive import Balance, ClosedShape, GraphDSL, RunnableGraph

    def make() -> Any:
        def blueprint(b: Any, *sinks: Any) -> Any:
            bal = b.add(Balance(outputs, wait_for_all_downstreams=wait_all))
            b.add(Source.from_iterable(xs)) >> bal.in_
            for i, s in enumerate(sinks):
                flow = Flow().map(lambda x: x) if mapped else Flow()
                bal.out(i) >> b.add(flow.grouped(n)) >> s.in_
            return ClosedShape

        return RunnableGraph.from_graph(
            GraphDSL.create(blueprint, *[Sink.seq() for _ in range(outputs)])
        )

    results = []
    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths, name="grouped-balance") as mat:
            results.append(await asyncio.gather(*make().run(mat)))
    assert results[0] == results[1]
    assert sorted(x for part in results[0] for g in part for x in g) == sorted(xs)
