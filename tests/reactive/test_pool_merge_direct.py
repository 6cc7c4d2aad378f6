"""``Merge`` hands a ``map_async(1)`` worker's result straight to the stage downstream.

In a worker pool ``source -> Balance(n) -> n x map_async(1, f) -> Merge(n) -> ...`` each
worker offers its result to the Merge (``_accept_i``) with the island's queue empty.
When downstream waits for it, the Merge delivers the push at once (the in side's
``on_push``) and answers the pull that comes back the same way, and its input is pulled
again without an event (``_take_pull``). What runs downstream of the Merge varies here:
``Sink.fold`` (with a function that may raise), ``Sink.seq``, ``take``, a custom
element-at-a-time stage, a probe with random demand. Fast paths on and off must agree
with a Python reference: each branch's results in the order that branch got its
elements, every element once, nothing beyond demand, the same end.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reactive import (
    Attributes,
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
)
from reactive._ops.fan_in.merges import _MergeBatchLogic
from reactive.testkit import TestSink
from tests.reactive.support import OneByOne
from tests.reactive.test_junction_batches import DEMAND, SETTINGS, drive_on_own_materializer


class FoldFailed(Exception):
    """The failure injected into the fold's function."""


class CallFailed(Exception):
    """The failure injected into a worker's call."""


def worker_call(branch: int, suspend: frozenset[int], fail_at: frozenset[int]) -> Any:
    """Branch ``branch``'s ``f``: ``(branch, x)``, suspending first for the ``x`` in
    ``suspend``, failing its awaitable for those in ``fail_at``."""

    async def f(x: int) -> tuple[int, int]:
        if x in suspend:
            await asyncio.sleep(0)
        if x in fail_at:
            raise CallFailed(f"failed at {x}")
        return (branch, x)

    return f


def pool(
    n: int,
    xs: list[int],
    suspend: frozenset[int],
    fail_at: frozenset[int],
    tail: Any,
    sink: Any,
    resume: bool = False,
) -> RunnableGraph[Any]:
    """``xs -> Balance(n) -> n x map_async(1) -> Merge(n) -> tail -> sink``."""

    def blueprint(b: Any, s: Any) -> Any:
        bal = b.add(Balance(n))
        merge = b.add(Merge(n))
        b.add(Source.from_iterable(xs)) >> bal.in_
        for i in range(n):
            worker = Flow().map_async(1, worker_call(i, suspend, fail_at))
            if resume:
                worker = worker.with_attributes(
                    Attributes.supervision_strategy(lambda _e: Supervision.resume)
                )
            bal.out(i) >> b.add(worker) >> merge.in_(i)
        if tail is None:
            merge.out >> s.in_
        else:
            merge.out >> b.add(tail) >> s.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink))


def check_branches(out: list[tuple[int, int]], xs: list[int], complete: bool) -> None:
    """Every element at most once (exactly once if ``complete``), each branch's in the
    order of ``xs`` (a branch takes its elements in that order)."""
    got = Counter(x for _, x in out)
    assert all(c == 1 for c in got.values()), got
    assert set(got) <= set(xs)
    if complete:
        assert sorted(got) == sorted(xs)
    pos = {x: k for k, x in enumerate(xs)}
    for branch in {b for b, _ in out}:
        seen = [pos[x] for b, x in out if b == branch]
        assert seen == sorted(seen), (branch, out)


TAILS = st.sampled_from(["none", "one_by_one", "take", "map_filter"])


def make_tail(kind: str, k: int) -> Any:
    if kind == "one_by_one":
        return OneByOne()
    if kind == "take":
        return Flow().take(k)
    if kind == "map_filter":
        return Flow().map(lambda p: (p[0], p[1])).filter(lambda p: p[1] % 3 != 1)
    return None


def expected_of(kind: str, xs: list[int]) -> list[int]:
    if kind == "map_filter":
        return [x for x in xs if x % 3 != 1]
    return xs


@SETTINGS
@given(
    size=st.integers(0, 90),
    n=st.integers(1, 3),
    suspend=st.frozensets(st.integers(0, 90)),
    kind=TAILS,
    k=st.integers(0, 60),
    fold_fails_at=st.one_of(st.none(), st.integers(0, 90)),
)
async def test_pool_into_fold_matches_python(
    size: int,
    n: int,
    suspend: frozenset[int],
    kind: str,
    k: int,
    fold_fails_at: int | None,
) -> None:
    """``Sink.fold`` collecting what comes out of the Merge (through a tail), its function
    raising at one element sometimes: every element once, each branch in order, the fold's
    failure as the stream's; fast paths on and off."""
    xs = list(range(size))
    want = expected_of(kind, xs)
    for fast_paths in (True, False):
        seen: list[tuple[int, int]] = []

        def step(acc: int, p: tuple[int, int], seen: list[tuple[int, int]] = seen) -> int:
            if p[1] == fold_fails_at:
                raise FoldFailed(str(p))
            seen.append(p)
            return acc + 1

        graph = pool(n, xs, suspend, frozenset(), make_tail(kind, k), Sink.fold(0, step))
        async with Materializer(fast_paths=fast_paths, name="pool-merge-direct") as mat:
            try:
                count = await graph.run(mat)
            except FoldFailed:
                assert fold_fails_at in want, fast_paths
                check_branches(seen, want, complete=False)
            else:
                assert count == len(seen)
                if kind == "take":
                    assert count == min(k, len(xs)), fast_paths
                    check_branches(seen, want, complete=False)
                else:
                    assert fold_fails_at not in want
                    check_branches(seen, want, complete=True)


@SETTINGS
@given(
    size=st.integers(0, 90),
    n=st.integers(1, 3),
    suspend=st.frozensets(st.integers(0, 90)),
    fail_at=st.frozensets(st.integers(0, 90), max_size=2),
    resume=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_pool_into_probe_keeps_demand(
    size: int,
    n: int,
    suspend: frozenset[int],
    fail_at: frozenset[int],
    resume: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    """A probe requesting random amounts behind the Merge (the direct push only while it
    waits), calls failing (stop or resume): nothing beyond demand, each branch in order,
    the same end with fast paths on and off."""
    xs = list(range(size))
    want = [x for x in xs if x not in fail_at] if resume else xs
    ends = []
    for fast_paths in (True, False):
        graph = pool(n, xs, suspend, fail_at, None, TestSink.probe(), resume)
        out, end = await drive_on_own_materializer(
            graph, "pool-merge-direct", fast_paths, demand, cancel
        )
        if end == "complete":
            check_branches(out, want, complete=True)
        else:
            check_branches(out, want, complete=False)
            if end == "cancelled":
                assert cancel and len(out) == sum(demand[:-1]), fast_paths
            else:
                assert isinstance(end, CallFailed) and not resume, end
        ends.append(end if isinstance(end, str) else type(end))
    if not cancel:
        assert ends[0] == ends[1]


async def calls_while_summing(
    monkeypatch: pytest.MonkeyPatch, method: str, n: int, size: int = 2_000
) -> int:
    """How often ``_MergeBatchLogic.<method>`` is called while a pool of ``n`` workers
    with a fold right behind its Merge sums ``range(size)`` (the sum checked)."""
    calls = 0
    original = getattr(_MergeBatchLogic, method)

    def counting(self: Any, *args: Any) -> None:
        nonlocal calls
        calls += 1
        original(self, *args)

    monkeypatch.setattr(_MergeBatchLogic, method, counting)
    graph = pool(
        n,
        list(range(size)),
        frozenset(range(size)),
        frozenset(),
        None,
        Sink.fold(0, lambda a, p: a + p[1]),
    )
    async with Materializer(name=f"pool-merge-{method}", metrics=False) as mat:
        total = await graph.run(mat)
    assert total == size * (size - 1) // 2
    return calls


@pytest.mark.parametrize("n", [1, 2])
async def test_the_result_goes_down_without_a_queued_push(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fast path is taken: with a fold right behind the Merge, a worker's result
    reaches the fold without the Merge queueing a push (``push`` is not called), and the
    sum is right."""
    pushes = await calls_while_summing(monkeypatch, "push", n)
    assert pushes < 2_000 // 20, pushes


async def test_a_worker_offers_its_one_result_without_a_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The worker's offer goes through the one-element hook (``_accept_one_i``), not the
    batch one (``_accept_i``) it stands for, whenever the Merge can deliver it at once."""
    batches = await calls_while_summing(monkeypatch, "_accept_i", 2)
    assert batches < 2_000 // 20, batches


@pytest.mark.parametrize("fast_paths", [True, False])
@pytest.mark.parametrize("n", [1, 2])
async def test_a_call_raising_at_once_is_dropped_with_resume_and_the_worker_goes_on(
    n: int, fast_paths: bool
) -> None:
    """``f`` raising synchronously for the element a worker takes right after delivering
    a result (resume): that element is dropped and the worker asks for the next one."""
    size = 40
    bad = {3, 4, 17, 39}

    def f(x: int) -> Any:
        if x in bad:
            raise CallFailed(str(x))
        return worker_call(0, frozenset(range(0, size, 2)), frozenset())(x)

    def blueprint(b: Any, s: Any) -> Any:
        bal = b.add(Balance(n))
        merge = b.add(Merge(n))
        b.add(Source.from_iterable(range(size))) >> bal.in_
        for i in range(n):
            worker = (
                Flow()
                .map_async(1, f)
                .with_attributes(Attributes.supervision_strategy(lambda _e: Supervision.resume))
            )
            bal.out(i) >> b.add(worker) >> merge.in_(i)
        merge.out >> s.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq()))
    async with Materializer(fast_paths=fast_paths, name="pool-resume") as mat:
        got = await asyncio.wait_for(graph.run(mat), 5)
    assert sorted(x for _, x in got) == [x for x in range(size) if x not in bad]
