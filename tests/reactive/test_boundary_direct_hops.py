"""The direct hops of an async boundary (issue 19): the hand-over of a batch
(``_BoundaryIn.flush``) and the consumer's re-request (``_BoundaryOut._demand_peer``) run
the other island's handler themselves, without ``Island.signal``, when that island is
parked with nothing queued and none of its handlers on the stack (what ``signal`` would
then do, spelled out once per batch).

Checked here: the signals they save (counted on ``Island.signal``; with the fast paths off
every batch and every re-request still signals), and a differential property test of
fan-out graphs with a boundary on both sides of each branch, random buffer sizes, a
raising function, a filter and a ``take`` after the merge: the same elements per branch, in the
same order, the same failure, with the fast paths on and off, as a Python model, and
never more elements past the source than the boundaries and stages may hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reactive import (
    Broadcast,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    RunnableGraph,
    Sink,
    Source,
)
from reactive._impl.boundary import _BoundaryIn
from reactive._impl.interpreter import Island
from tests.reactive.support import ran

if TYPE_CHECKING:
    import pytest

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Boom(Exception):
    """The failure injected into one branch."""


def count_signals(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count every ``Island.signal`` (bound by ``make_boundary`` at materialization, so
    the wrapper must be in place before the graph runs)."""
    calls = [0]
    plain = Island.signal

    def counted(self: Island, logic: Any, fn: Any, arg: Any) -> None:
        calls[0] += 1
        plain(self, logic, fn, arg)

    monkeypatch.setattr(Island, "signal", counted)
    return calls


def fan_out(
    xs: list[int],
    muls: list[int],
    fail: tuple[int, int] | None,
    take: int | None,
    seen: list[int],
    collect: Any,
    drop: int = 0,
) -> Any:
    """``Broadcast`` -> per branch ``async -> map [-> filter] -> async`` -> ``Merge`` [->
    ``take``], into ``Sink.foreach(collect)``; an element is ``(branch, x * mul +
    branch)``, the filter (``drop`` > 0) drops those whose ``x`` is a multiple of ``drop``
    (batches then fall short of the demand: the boundary's inlet stays pulled while
    demand comes in). Branch ``b`` raises ``Boom`` at its element ``i`` when ``fail == (b,
    i)``; ``seen[0]`` counts the elements that left the source."""
    k = len(muls)

    def left_source(x: int) -> int:
        seen[0] += 1
        return x

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(xs).map(left_source))
        bcast = b.add(Broadcast(k))
        merge = b.add(Merge(k))
        src.out >> bcast.in_
        for j, m in enumerate(muls):
            count = [0]

            def f(x: int, j: int = j, m: int = m, count: list[int] = count) -> tuple[int, int]:
                i = count[0]
                count[0] += 1
                if fail == (j, i):
                    raise Boom(j, i)
                return (j, x * m + j)

            branch = Flow().async_boundary().map(f)
            if drop:
                branch = branch.filter(lambda e, j=j, m=m: ((e[1] - j) // m) % drop != 0)
            branch = branch.async_boundary()
            bcast.out(j) >> b.add(branch) >> merge.in_(j)
        if take is None:
            merge.out >> sink.in_
        else:
            merge.out >> b.add(Flow().take(take)) >> sink.in_
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.foreach(collect)))


async def run_fan_out(
    xs: list[int],
    muls: list[int],
    fail: tuple[int, int] | None,
    take: int | None,
    fast_paths: bool,
    input_buffer: int,
    drop: int = 0,
) -> tuple[list[Any], bool, int]:
    """(the elements, whether the stream failed with Boom, the most source elements not
    yet through every branch to the sink at any time)."""
    k = len(muls)
    seen = [0]
    got: list[Any] = []
    through = [0] * k
    in_flight = 0

    def collect(e: tuple[int, int]) -> None:
        nonlocal in_flight
        got.append(e)
        through[e[0]] += 1
        in_flight = max(in_flight, seen[0] - min(through))

    mat = Materializer(fast_paths=fast_paths, name="direct-hops", input_buffer=input_buffer)
    async with mat:
        failed = await ran(mat, fan_out(xs, muls, fail, take, seen, collect, drop).run(mat), Boom)
    return got, failed, in_flight


def per_branch(got: list[tuple[int, int]], k: int) -> list[list[int]]:
    return [[v for j, v in got if j == b] for b in range(k)]


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 50), max_size=150),
    muls=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    fail=st.one_of(st.none(), st.tuples(st.integers(0, 3), st.integers(0, 149))),
    take=st.one_of(st.none(), st.integers(0, 200)),
    input_buffer=st.sampled_from([1, 2, 3, 16]),
    drop=st.sampled_from([0, 0, 2, 3]),
)
@example(xs=list(range(2000)), muls=[1, 2], fail=None, take=None, input_buffer=16, drop=3)
@example(xs=list(range(2000)), muls=[3], fail=None, take=None, input_buffer=2, drop=2)
async def test_fan_out_through_direct_hops_matches_python_and_the_signalled_path(
    xs: list[int],
    muls: list[int],
    fail: tuple[int, int] | None,
    take: int | None,
    input_buffer: int,
    drop: int,
) -> None:
    k = len(muls)
    if fail is not None and (fail[0] >= k or fail[1] >= len(xs)):
        fail = None
    expected = [[x * m + j for x in xs if not drop or x % drop] for j, m in enumerate(muls)]
    for fast in (True, False):
        got, failed, in_flight = await run_fan_out(xs, muls, fail, take, fast, input_buffer, drop)
        branches = per_branch(got, k)
        for b in range(k):
            # Each branch keeps its order; what reached the sink is a prefix.
            assert branches[b] == expected[b][: len(branches[b])]
        if failed:
            assert fail is not None  # only the injected failure fails the stream
        elif take is None or take >= sum(map(len, expected)):
            assert fail is None
            assert branches == expected
        else:
            assert len(got) == take
        if not drop:
            # Bounded (a dropped element never reaches the sink, so only without the
            # filter): a source element is held at most by the source's map, the
            # broadcast, each branch's two boundaries and its map, and the merge.
            assert in_flight <= 2 * input_buffer + 4


async def test_the_direct_hops_save_the_signals(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fan-out through 8 boundaries (``Broadcast(4)`` -> ``async -> map -> async`` ->
    ``Merge(4)``): a batch of 16 crosses each boundary and is re-requested once per 16
    source elements. Off, each crossing and each re-request is a signal (16 per 16
    elements); on, only the ones that find the other island busy are (about 4 per 16 here)."""
    calls = count_signals(monkeypatch)
    n = 1600
    xs = list(range(n))
    counts = {}
    for fast in (True, False):
        calls[0] = 0
        got, failed, _ = await run_fan_out(xs, [1, 2, 3, 4], None, None, fast, 16)
        assert not failed and len(got) == 4 * n
        counts[fast] = calls[0]
    assert counts[False] >= n  # every crossing and re-request: 8 + 8 per 16 elements
    assert counts[True] <= n // 3  # (either hop signalled instead: 1500 and more)


async def test_a_linear_chain_of_boundaries_hops_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    """``map -> async -> map -> async -> fold``: two boundaries, four crossings per batch
    of 16 (two hand-overs, two re-requests). Only the re-request to the first island
    signals (its task runs the whole cascade, so it is busy: the mailbox), plus a few at
    start and end."""
    calls = count_signals(monkeypatch)
    n = 3200
    mat = Materializer(fast_paths=True, name="direct-hops")
    async with mat:
        total = await (
            Source.from_iterable(range(n))
            .map(lambda x: x + 1)
            .async_boundary()
            .map(lambda x: x * 2)
            .async_boundary()
            .run_with(Sink.fold(0, lambda a, x: a + x), mat)
        )
    assert total == sum((x + 1) * 2 for x in range(n))
    assert calls[0] <= n // 16 + 16  # (either hop signalled instead: 400 and more)


async def test_the_demand_hop_takes_the_pull_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """The re-request's hop delivers the pull on an idle connection itself (``on_demand``
    spelled out): in the fan-out graph ``_BoundaryIn.on_demand`` runs only for demand
    that went through a signal (at start, and to an island that was busy)."""
    calls = [0]
    plain = _BoundaryIn.on_demand

    def counted(self: _BoundaryIn, n: int) -> None:
        calls[0] += 1
        plain(self, n)

    monkeypatch.setattr(_BoundaryIn, "on_demand", counted)
    n = 1600
    got, failed, _ = await run_fan_out(list(range(n)), [1, 2, 3, 4], None, None, True, 16)
    assert not failed and len(got) == 4 * n
    # About 2,000 re-requests here (many in halves of the buffer), about 240 of them
    # signalled (at start, or to a busy island).
    assert calls[0] <= n // 4  # (not spelled out: every one, about 2,000)
