"""Differential property tests of ``Sink.fold``'s single-element and batch paths (an
element-at-a-time upstream, or batches from a fused chain or an async boundary: grab and
pull spelled out in ``on_push``) and of the iterable source's one-element
hand-over (``_hand_over_one``, taken by ``Partition``'s single-element path).

Each run is compared with a Python reference model (the fold of the elements under the
supervision directive) and run with fast paths on and off: the same result or the same
failure. Failures are injected into the source's iterator, a None element into the
stream (RS rule 2.13), and into the fold function (stop, resume, restart); an optional
async boundary puts the fold on an island of its own.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reactive import (
    Attributes,
    ClosedShape,
    GraphDSL,
    Materializer,
    NoneElementError,
    NoSuchElementError,
    Partition,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
)
from reactive._ops.sources import _END, IterableSource
from reactive._stage.batch import NOTHING, take_one_hook
from reactive.stage import PortStateError
from reactive.testkit import TestSink
from tests.reactive.support import OneByOne
from tests.reactive.test_junction_batches import INPUTS, SETTINGS, Injected
from tests.reactive.test_partition_single_path import Items, LatestModel, Model

if TYPE_CHECKING:
    from collections.abc import Callable


class FoldBoom(Exception):
    """The failure injected into the fold function."""


DIRECTIVES = {
    "stop": Supervision.stop,
    "resume": Supervision.resume,
    "restart": Supervision.restart,
}


def reference(
    xs: list[int], bad: set[int], directive: str, cut: int | None, kind: str = "fold"
) -> tuple[str, Any]:
    """What the sink of ``kind`` over ``xs`` ends with: ("ok", result) or ("err",
    exception type). ``cut``: the stream fails after its first ``cut`` elements (the
    iterator raising, or a None). ``last`` and ``seq`` have no function: ``bad`` does
    not apply."""
    stream = xs if cut is None else xs[:cut]
    if kind in ("last", "seq"):
        if cut is not None and cut < len(xs):
            return "err", None
        if kind == "seq":
            return "ok", stream
        return ("ok", stream[-1]) if stream else ("err", NoSuchElementError)
    acc: list[int] = []
    for x in stream:
        if x in bad:
            if directive == "stop":
                return "err", FoldBoom
            if directive == "restart" and kind == "fold":  # foreach skips the element
                acc = []
            continue
        acc = [*acc, x]
    if cut is not None and cut < len(xs):
        return "err", None  # the upstream's failure
    return "ok", acc


def fold_of(bad: set[int], directive: str, kind: str = "fold") -> Any:
    """A sink of ``kind`` (fold, foreach, last, seq) whose materialized value is awaited: fold
    collects the elements its function took in a list, foreach's function appends them
    to a list that is the result once it is done."""

    def f(acc: list[int], x: int) -> list[int]:
        if x in bad:
            raise FoldBoom(str(x))
        return [*acc, x]

    sink: Any
    if kind == "last":
        return Sink.last()
    if kind == "seq":
        return Sink.seq()
    if kind == "foreach":
        seen: list[int] = []

        def g(x: int) -> None:
            if x in bad:
                raise FoldBoom(str(x))
            seen.append(x)

        async def collected(done: Any) -> list[int]:
            await done
            return seen

        sink = Sink.foreach(g).map_materialized_value(collected)
    else:
        sink = Sink.fold([], f)
    if directive != "stop":
        d = DIRECTIVES[directive]
        sink = sink.with_attributes(Attributes.supervision_strategy(lambda e: d))
    return sink


async def outcome(run: Callable[[Materializer], Any], fast_paths: bool) -> tuple[str, Any]:
    async with Materializer(fast_paths=fast_paths, name="fold") as mat:
        try:
            return "ok", await asyncio.wait_for(run(mat), 10)
        except (Injected, PortStateError, FoldBoom, NoSuchElementError) as exc:
            return "err", type(exc)


def check(got: tuple[str, Any], want: tuple[str, Any], upstream_error: type) -> None:
    if want == ("err", None):
        want = ("err", upstream_error)
    assert got == want


@SETTINGS
@given(
    xs=INPUTS,
    bad=st.sets(st.integers(0, 20), max_size=3),
    directive=st.sampled_from(["stop", "resume", "restart"]),
    fail=st.one_of(st.none(), st.tuples(st.sampled_from(["raise", "none"]), st.integers(0, 120))),
    shape=st.sampled_from(
        ["one_by_one", "direct", "boundary", "partition", "boundary_batches", "map_batches"]
    ),
    kind=st.sampled_from(["fold", "foreach", "last", "seq"]),
)
@example(xs=[1, 2, 3], bad={2}, directive="restart", fail=None, shape="one_by_one", kind="fold")
@example(
    xs=list(range(40)),
    bad={5, 30},
    directive="restart",
    fail=None,
    shape="map_batches",
    kind="fold",
)
@example(
    xs=list(range(40)),
    bad={5, 30},
    directive="restart",
    fail=None,
    shape="boundary_batches",
    kind="fold",
)
@example(
    xs=list(range(40)),
    bad={7},
    directive="resume",
    fail=None,
    shape="boundary_batches",
    kind="fold",
)
@example(
    xs=[1, 2, 3, 4], bad=set(), directive="stop", fail=("raise", 2), shape="one_by_one", kind="fold"
)
@example(
    xs=[1, 2, 3, 4], bad=set(), directive="stop", fail=("none", 2), shape="partition", kind="fold"
)
@example(  # the element taken before the failure reaches the fold first (it used to be
    # dropped by the boundary's input half when the failure came in the same run)
    xs=[0, 0],
    bad={0},
    directive="stop",
    fail=("raise", 1),
    shape="boundary",
    kind="fold",
)
async def test_fold_matches_the_reference(
    xs: list[int],
    bad: set[int],
    directive: str,
    fail: tuple[str, int] | None,
    shape: str,
    kind: str,
) -> None:
    fail_at = fail[1] if fail is not None and fail[0] == "raise" else None
    none_at = fail[1] if fail is not None and fail[0] == "none" else None
    cut = fail[1] if fail is not None else None
    want = reference(xs, bad, directive, cut, kind)

    def run(mat: Materializer) -> Any:
        src: Any = Source.from_iterable(Items(xs, fail_at, none_at))
        if shape == "one_by_one":
            src = src.via(OneByOne())
        elif shape == "boundary":
            src = src.async_boundary().via(OneByOne())
        elif shape == "boundary_batches":
            # The boundary hands the fold batches (its batch path: one loop per batch).
            src = src.async_boundary()
        elif shape == "map_batches":
            src = src.map(lambda x: x)  # a fused chain handing the fold batches
        elif shape == "partition":
            # iterable source -> Partition (one element at a time) -> OneByOne -> fold
            sink = fold_of(bad, directive, kind)

            def blueprint(b: Any, s: Any) -> Any:
                p = b.add(Partition(2, lambda x: x % 2))
                b.add(src).out >> p.in_
                p.out(0) >> b.add(OneByOne()) >> s.in_
                p.out(1) >> b.add(Sink.ignore())
                return ClosedShape

            return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink)).run(mat)
        return src.run_with(fold_of(bad, directive, kind), mat)

    upstream_error = Injected if fail_at is not None else NoneElementError
    if shape == "partition":
        # Only the even elements reach the fold.
        stream = xs if cut is None else xs[:cut]
        evens = [x for x in stream if x % 2 == 0]
        want = reference(evens, bad, directive, None, kind)
        if cut is not None and cut < len(xs) and want != ("err", FoldBoom):
            want = ("err", None)
    for fast_paths in (True, False):
        check(await outcome(run, fast_paths), want, upstream_error)


# -- the one-element hand-over of an iterable source, against its lazy take -------------------
@pytest.mark.parametrize("k", range(6))
async def test_hand_over_one_is_the_lazy_take_settled(k: int) -> None:
    """``_hand_over_one`` leaves the source exactly as ``_hand_over_up_to(1)`` + ``next`` +
    ``_hand_over_settle(None)`` do: the same element, look-ahead, completion and deferred
    failure (the iterator raising at element ``k`` of 4)."""
    states = []
    for one in (True, False):
        got: list[Any] = []
        logic: Any = None

        class Spy(IterableSource):
            def create_logic(self, attributes: Any) -> Any:
                nonlocal logic
                logic = super().create_logic(attributes)
                return logic

        async with Materializer(name="one") as mat:
            probe = Source.from_graph(Spy(Items([10, 11, 12, 13], k, None))).run_with(
                TestSink.probe(), mat
            )
            await asyncio.sleep(0)
            assert take_one_hook(logic) is not None
            completed = []
            logic.complete = lambda out: completed.append(out)  # noqa: B023
            for _ in range(6):
                if one:
                    x = logic._hand_over_one()
                else:
                    it = logic._hand_over_up_to(1)
                    x = NOTHING if it is None else next(it)
                    if it is not None:
                        logic._hand_over_settle(None)
                got.append(x if x is not NOTHING else "nothing")
            states.append((got, len(completed), type(logic.err), logic.nxt is _END))
            probe.cancel()
    assert states[0] == states[1]


# -- the scoring graph, summed by the fold ----------------------------------------------------
@SETTINGS
@given(
    spec=st.lists(st.one_of(st.integers(0, 50), st.integers(1, 5).map(lambda w: -w)), max_size=80),
    bad=st.sets(st.integers(0, 250), max_size=3),
    directive=st.sampled_from(["stop", "resume", "restart"]),
    boundary=st.booleans(),
)
async def test_scoring_graph_folded_matches_python(
    spec: list[int], bad: set[int], directive: str, boundary: bool
) -> None:
    items: list[Any] = [Model(1)] + [Model(-v) if v < 0 else v for v in spec]
    model: Any = None
    scored = []
    for x in items:
        if type(x) is Model:
            model = x
        else:
            scored.append(model.weight * x)
    want = reference(scored, bad, directive, None)

    def run(mat: Materializer) -> Any:
        def blueprint(b: Any, sink: Any) -> Any:
            src: Any = Source.from_iterable(items)
            if boundary:
                src = src.async_boundary()
            p = b.add(Partition(2, lambda x: 1 if type(x) is Model else 0))
            s = b.add(LatestModel())
            b.add(src).out >> p.in_
            p.out(0) >> s.in0
            p.out(1) >> s.in1
            s.out >> sink.in_
            return ClosedShape

        graph = GraphDSL.create(blueprint, fold_of(bad, directive))
        return RunnableGraph.from_graph(graph).run(mat)

    for fast_paths in (True, False):
        check(await outcome(run, fast_paths), want, PortStateError)
