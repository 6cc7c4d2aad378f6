"""Differential tests of the fast paths of fan-out graphs with async boundaries.

``Broadcast(n)`` -> ``n`` branches of random simple operators with async boundaries at
random places -> ``Merge(n)`` -> a tail, where what an async boundary's output hands to
``Merge`` is pushed on and delivered to the tail at once (``_MergeBatchLogic._accept_i``:
its push, the tail's ``on_push`` and the tail's pull again, without the island's event
loop in between). The tails read batches: a ``Sink.foreach`` that raises at a random
element (the failure of an ``on_push`` delivered by the fast path), a chain of simple
operators into a ``TestSink`` probe with random demand and cancellation, and ``take``.
Every graph runs with fast paths on and off and is checked against a Python reference of
each branch (``Merge`` does not order branches: each element carries its branch).
"""

from __future__ import annotations

import asyncio
import operator
from typing import TYPE_CHECKING, Any

from hypothesis import example, given
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
from reactive._ops.fan_in import merges
from reactive.testkit import TestSink

if TYPE_CHECKING:
    import pytest

from tests.reactive.test_junction_batches import (
    BRANCH,
    DEMAND,
    INPUTS,
    SETTINGS,
    Injected,
    Op,
    by_branch,
    chain,
    check,
    ends_before,
    model,
    run,
    source,
)

#: Branches of random operators (with random async boundaries); ``fan`` ends each with
#: one more, so that every input of Merge is an async boundary's output.
BOUNDARY_BRANCH = BRANCH


class SinkFailed(Exception):
    """The failure injected into the tail's ``foreach``."""


def fan(branches: list[list[Op]], xs: list[int], fail_at: int | None, sink: Any) -> Any:
    """Broadcast -> each branch tagged with its index -> Merge -> ``sink`` (a blueprint
    whose materialized value is the sink's)."""

    def make() -> Any:
        def blueprint(b: Any, s: Any) -> Any:
            n = len(branches)
            src = b.add(source(xs, fail_at))
            bc = b.add(Broadcast(n))
            m = b.add(Merge(n))
            src.out >> bc.in_
            for i, ops in enumerate(branches):
                # The last boundary after the tagging map: Merge's input is its output.
                flow = chain(Flow(), ops).map(lambda v, i=i: (i, v)).async_boundary()
                bc.out(i) >> b.add(flow) >> m.in_(i)
            m.out >> s.in_
            return ClosedShape

        return GraphDSL.create(blueprint, sink)

    return make


async def run_foreach(make: Any, fast_paths: bool, input_buffer: int) -> tuple[list[Any], Any]:
    mat = Materializer(fast_paths=fast_paths, name="fanout-paths", input_buffer=input_buffer)
    async with mat:
        try:
            await RunnableGraph.from_graph(make()).run(mat)
            end: Any = "complete"
        except (Injected, SinkFailed) as exc:
            end = exc
        for _ in range(50):
            if mat.running_tasks == 0:
                break
            await asyncio.sleep(0)
        assert mat.running_tasks == 0
    return [], end


async def scaled_fan_out_sum(k: int, n: int) -> int:
    """``range(n)`` -> Broadcast(k) -> branch i: ``map(x * i)`` then an async boundary ->
    Merge(k) -> ``Sink.fold(0, add)``: the sum, ``sum(range(n)) * (0 + 1 + ... + k-1)``."""

    def blueprint(b: Any, s: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)))
        bc = b.add(Broadcast(k))
        m = b.add(Merge(k))
        src.out >> bc.in_
        for i in range(k):
            bc.out(i) >> b.add(Flow().map(lambda x, i=i: x * i).async_boundary()) >> m.in_(i)
        m.out >> s.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, int.__add__)))
    # Fast paths on explicitly: callers count what the fast paths do (a
    # REACTIVE_FAST_PATHS=0 run turns the default off).
    async with Materializer(fast_paths=True, metrics=False) as mat:
        total: int = await graph.run(mat)
    return total


@SETTINGS
@given(
    xs=INPUTS,
    branches=st.lists(BOUNDARY_BRANCH, min_size=1, max_size=4),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    sink_fail=st.one_of(st.none(), st.integers(0, 200)),
    input_buffer=st.sampled_from([1, 2, 4, 16]),
)
@example(  # whole batches through the fast path, the sink failing in the middle of one
    xs=list(range(100)),
    branches=[[("async", 0)], [("map", 2), ("async", 0)]],
    fail_at=None,
    sink_fail=37,
    input_buffer=16,
)
async def test_merge_delivering_to_a_failing_sink_matches_python(
    xs: list[int],
    branches: list[list[Op]],
    fail_at: int | None,
    sink_fail: int | None,
    input_buffer: int,
) -> None:
    upto = xs if fail_at is None else xs[:fail_at]
    expected = [model(upto, ops) for ops in branches]
    total = sum(len(e) for e in expected)
    results = []
    for fast_paths in (True, False):
        seen: list[tuple[int, int]] = []

        def f(x: tuple[int, int], seen: list[tuple[int, int]] = seen) -> None:
            if len(seen) == sink_fail:
                raise SinkFailed(f"at {sink_fail}")
            seen.append(x)

        make = fan(branches, xs, fail_at, Sink.foreach(f))
        _, end = await run_foreach(make, fast_paths, input_buffer)
        got = by_branch(seen, len(branches))
        if end == "complete":
            assert got == expected
        else:
            for g, e in zip(got, expected, strict=True):
                assert g == e[: len(g)]
        if sink_fail is not None and sink_fail < total and fail_at is None:
            # Only the sink can fail, and it sees more than sink_fail elements.
            assert isinstance(end, SinkFailed)
            assert len(seen) == sink_fail
        results.append((got, end))
    (fast, fast_end), (slow, slow_end) = results
    assert (fast_end == "complete") == (slow_end == "complete")
    if fast_end == "complete":
        assert fast == slow


@SETTINGS
@given(
    xs=INPUTS,
    branches=st.lists(BOUNDARY_BRANCH, min_size=1, max_size=4),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    after=st.lists(st.sampled_from([("async", 0), ("buffer", 3)]), max_size=2),
    demand=DEMAND,
    cancel=st.booleans(),
)
async def test_merge_fast_path_into_a_probe_matches_python(
    xs: list[int],
    branches: list[list[Op]],
    fail_at: int | None,
    after: list[Op],
    demand: list[int],
    cancel: bool,
) -> None:
    """A tag-keeping chain after Merge (an identity map, boundaries, buffers), read with
    random demand and sometimes cancelled."""
    upto = xs if fail_at is None else xs[:fail_at]
    expected = [model(upto, ops) for ops in branches]

    def make() -> Any:
        def blueprint(b: Any, s: Any) -> Any:
            n = len(branches)
            src = b.add(source(xs, fail_at))
            bc = b.add(Broadcast(n))
            m = b.add(Merge(n))
            src.out >> bc.in_
            for i, ops in enumerate(branches):
                # The last boundary after the tagging map: Merge's input is its output.
                flow = chain(Flow(), ops).map(lambda v, i=i: (i, v)).async_boundary()
                bc.out(i) >> b.add(flow) >> m.in_(i)
            m.out >> b.add(chain(Flow().map(lambda p: p), after)) >> s.in_
            return ClosedShape

        return GraphDSL.create(blueprint, TestSink.probe())

    fast = await run(make, True, demand, cancel)
    slow = await run(make, False, demand, cancel)
    check(fast, expected, demand, cancel)
    check(slow, expected, demand, cancel)
    if fast[1] == "complete" or slow[1] == "complete":
        assert fast[1] == slow[1] == "complete"
        assert by_branch(fast[0], len(branches)) == by_branch(slow[0], len(branches))


@given(
    xs=INPUTS,
    branches=st.lists(BOUNDARY_BRANCH, min_size=1, max_size=4),
    k=st.integers(0, 60),
)
@SETTINGS
async def test_take_after_merge_cancels_the_branches(
    xs: list[int], branches: list[list[Op]], k: int
) -> None:
    """``take(k)`` after the Merge: the stream completes after ``k`` elements (or all of
    them), cancelling every branch through its boundaries, with fast paths on and off."""
    expected = [model(xs, ops) for ops in branches]
    total = sum(len(e) for e in expected)
    for fast_paths in (True, False):
        mat = Materializer(fast_paths=fast_paths, name="fanout-take", input_buffer=4)
        async with mat:
            make = fan(branches, xs, None, Flow().take(k).to_mat(Sink.seq(), lambda a, b: b))
            got = await RunnableGraph.from_graph(make()).run(mat)
            for _ in range(50):
                if mat.running_tasks == 0:
                    break
                await asyncio.sleep(0)
            assert mat.running_tasks == 0
        assert len(got) == min(k, total)
        for g, e in zip(by_branch(got, len(branches)), expected, strict=True):
            assert g == e[: len(g)]


async def test_merge_hands_boundary_batches_to_its_sink_without_events(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is taken: most batches from the branches' boundaries reach the fold
    without a ``push`` by Merge (delivered at once), and every element arrives."""
    pushes = 0
    accepted = 0
    push = merges._MergeBatchLogic.push
    accept = merges._MergeBatchLogic._accept_i

    def counting_push(self: Any, port: Any, elem: Any) -> None:
        nonlocal pushes
        pushes += 1
        push(self, port, elem)

    def counting_accept(self: Any, i: int, batch: list[Any]) -> None:
        nonlocal accepted
        accepted += 1
        accept(self, i, batch)

    monkeypatch.setattr(merges._MergeBatchLogic, "push", counting_push)
    monkeypatch.setattr(merges._MergeBatchLogic, "_accept_i", counting_accept)

    total = await scaled_fan_out_sum(3, 2000)
    assert total == 3 * sum(range(2000))
    assert accepted >= 3 * 2000 // 16
    assert pushes < accepted // 4


class IteratorFailed(Exception):
    """The failure injected into the source's own iterator."""


def user_iterable(xs: list[int], fail_at: int | None, none_at: int | None) -> Any:
    """An iterable whose iterator raises at index ``fail_at`` or yields None at
    ``none_at`` (a fresh iterator per materialization)."""

    class Items:
        def __iter__(self) -> Any:
            for i, x in enumerate(xs):
                if i == fail_at:
                    raise IteratorFailed(f"at {i}")
                yield None if i == none_at else x

    return Items()


@SETTINGS
@given(
    xs=INPUTS,
    branches=st.lists(BRANCH, min_size=1, max_size=4),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    none_at=st.one_of(st.none(), st.integers(0, 120)),
    boundary=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
@example(  # Broadcast takes whole batches from the source, which fails inside one
    xs=list(range(60)),
    branches=[[("async", 0)], [("map", 2), ("async", 0)]],
    fail_at=37,
    none_at=None,
    boundary=True,
    demand=[70],
    cancel=False,
)
async def test_broadcast_taking_from_an_iterable_source_matches_python(
    xs: list[int],
    branches: list[list[Op]],
    fail_at: int | None,
    none_at: int | None,
    boundary: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    """``Source.from_iterable`` straight into Broadcast (``_take_now``: the source's pull
    answered at once), its iterator failing or yielding None at a random index, branches
    with or without boundaries, read by a probe with random demand."""
    stop = min(i for i in (fail_at, none_at, len(xs)) if i is not None)
    expected = [model(xs[:stop], ops) for ops in branches]

    def make() -> Any:
        def blueprint(b: Any, s: Any) -> Any:
            n = len(branches)
            src = b.add(Source.from_iterable(user_iterable(xs, fail_at, none_at)))
            bc = b.add(Broadcast(n))
            m = b.add(Merge(n))
            src.out >> bc.in_
            for i, ops in enumerate(branches):
                flow = chain(Flow(), ops).map(lambda v, i=i: (i, v))
                if boundary:
                    flow = flow.async_boundary()
                bc.out(i) >> b.add(flow) >> m.in_(i)
            m.out >> s.in_
            return ClosedShape

        return GraphDSL.create(blueprint, TestSink.probe())

    for fast_paths in (True, False):
        out, end = await run(make, fast_paths, demand, cancel)
        got = by_branch(out, len(branches))
        if end == "complete":
            assert got == expected
            # Complete before the failing element only when no branch needed it.
            assert stop == len(xs) or all(ends_before(xs, stop, ops) for ops in branches)
        else:
            for g, e in zip(got, expected, strict=True):
                assert g == e[: len(g)]
            if end == "cancelled":
                assert cancel and len(out) == sum(demand[:-1])
            elif none_at is None or none_at >= len(xs):
                assert isinstance(end, IteratorFailed), end
            elif fail_at is None or fail_at >= len(xs):
                assert "None" in str(end), end
            else:
                # Both: which one a batch of the source meets first depends on its size
                # (it reads ahead within the demand), fast paths or not.
                assert isinstance(end, IteratorFailed) or "None" in str(end), end


async def test_broadcast_takes_from_its_source_without_pulls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fast path is taken: Broadcast pulls its iterable source a handful of times
    (the first pull, before every output pulled) and takes the rest directly."""
    from reactive._ops import sources

    pulls = 0
    on_pull = sources._IterableLogic.on_pull

    def counting(self: Any) -> None:
        nonlocal pulls
        pulls += 1
        on_pull(self)

    monkeypatch.setattr(sources._IterableLogic, "on_pull", counting)

    assert await scaled_fan_out_sum(2, 2000) == sum(range(2000))
    assert pulls < 2000 // 16 // 4


@SETTINGS
@given(
    xs=INPUTS,
    branches=st.lists(BRANCH, min_size=1, max_size=4),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    none_at=st.one_of(st.none(), st.integers(0, 120)),
)
@example(xs=list(range(60)), branches=[[], [("map", 2)]], fail_at=37, none_at=None)
@example(xs=list(range(60)), branches=[[], [("map", 2)]], fail_at=None, none_at=41)
async def test_broadcast_taking_from_a_failing_source_delivers_every_element_before(
    xs: list[int],
    branches: list[list[Op]],
    fail_at: int | None,
    none_at: int | None,
) -> None:
    """One island (no boundary, no buffer: nothing can overtake), each branch into its
    own ``Sink.foreach``: every branch receives exactly its reference of the elements
    before the iterator's failure or None, with fast paths on and off. (No scan either:
    whether its zero goes out before an early failure depends on when it was pulled.)"""
    branches = [[op for op in ops if op[0] not in ("async", "buffer", "scan")] for ops in branches]
    stop = min(i for i in (fail_at, none_at, len(xs)) if i is not None)
    expected = [model(xs[:stop], ops) for ops in branches]
    for fast_paths in (True, False):
        seen: list[list[int]] = [[] for _ in branches]

        def blueprint(b: Any, s: Any, seen: list[list[int]] = seen) -> Any:
            src = b.add(Source.from_iterable(user_iterable(xs, fail_at, none_at)))
            bc = b.add(Broadcast(len(branches)))
            src.out >> bc.in_
            for i, ops in enumerate(branches):
                sink = s if i == 0 else b.add(Sink.foreach(seen[i].append))
                bc.out(i) >> b.add(chain(Flow(), ops).map(lambda v: v)) >> sink.in_
            return ClosedShape

        mat = Materializer(fast_paths=fast_paths, name="bcast-source", input_buffer=4)
        async with mat:
            graph = RunnableGraph.from_graph(
                GraphDSL.create(blueprint, Sink.foreach(seen[0].append))
            )
            try:
                await graph.run(mat)
            except (IteratorFailed, Exception):
                pass
            for _ in range(50):
                if mat.running_tasks == 0:
                    break
                await asyncio.sleep(0)
            assert mat.running_tasks == 0
        assert seen == expected


class MapFailed(Exception):
    """The failure of the supervised map."""


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 30), max_size=100),
    bad=st.sets(st.integers(0, 30), max_size=4),
    nones=st.sets(st.integers(0, 30), max_size=2),
    directive=st.sampled_from(["stop", "resume", "restart"]),
    filt=st.booleans(),
    input_buffer=st.sampled_from([1, 2, 4, 16]),
)
@example(xs=list(range(30)), bad={7}, nones=set(), directive="resume", filt=False, input_buffer=16)
@example(xs=list(range(30)), bad={7}, nones=set(), directive="stop", filt=False, input_buffer=16)
@example(xs=list(range(30)), bad=set(), nones={9}, directive="stop", filt=False, input_buffer=16)
async def test_a_supervised_chain_reading_a_boundarys_buffer_matches_python(
    xs: list[int],
    bad: set[int],
    nones: set[int],
    directive: str,
    filt: bool,
    input_buffer: int,
) -> None:
    """A fused chain behind an async boundary reads the boundary's buffer in place (whole
    when it fits the demand, else a bounded run): a map that raises on some values
    (stop, resume or restart it; the scan after it keeps its sum) or returns None on
    others (decided on alike), against the Python reference, fast paths on and off."""
    from reactive import Attributes, Supervision

    decide = {"stop": Supervision.stop, "resume": Supervision.resume}
    decide["restart"] = Supervision.restart

    def f(x: int) -> int | None:
        if x in bad:
            raise MapFailed(str(x))
        return None if x in nones else x + 1

    # The reference: the running sum of the map's outputs, after the scan's zero.
    expected: list[int] = [0]
    acc = 0
    end: Any = "complete"
    for x in xs:
        if filt and x % 3 == 0:
            continue
        if x in bad or x in nones:
            # A None result is the map's failure as a raise is (NoneElementError).
            if directive == "stop":
                end = MapFailed if x in bad else "None"
                break
            continue  # resume, or restart of the (stateless) map: the element is dropped
        acc += x + 1
        expected.append(acc)

    for fast_paths in (True, False):
        flow = Flow().filter(lambda x: x % 3 != 0) if filt else Flow()
        flow = flow.map(f).scan(0, operator.add)
        flow = flow.with_attributes(Attributes.supervision_strategy(lambda e: decide[directive]))
        mat = Materializer(fast_paths=fast_paths, name="supervised", input_buffer=input_buffer)
        async with mat:
            seen: list[int] = []
            graph = (
                Source.from_iterable(xs)
                .async_boundary()
                .via(flow)
                .async_boundary()
                .to_mat(Sink.foreach(seen.append), lambda a, b: b)
            )
            try:
                await graph.run(mat)
                got: Any = "complete"
            except MapFailed:
                got = MapFailed
            except Exception as exc:
                got = "None" if "None" in str(exc) else exc
            for _ in range(50):
                if mat.running_tasks == 0:
                    break
                await asyncio.sleep(0)
            assert mat.running_tasks == 0
        assert got == end
        if end == "complete":
            assert seen == expected
        else:
            assert seen == expected[: len(seen)]
