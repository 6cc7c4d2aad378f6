"""Differential property tests of ``Partition``'s single-element path: outputs consumed
one element at a time (a custom element-at-a-time stage on each), fed straight by an
iterable source or an async boundary (whose elements it takes synchronously, one at a
time, instead of pull -> on_pull -> push -> on_push).

A random script of requests and cancellations is played on the probes behind the
outputs, with fast paths on and off, and compared after each step with the Python
reference of ``tests/reactive/test_fan_out_batches.py`` (strict order, no look-ahead).
Failures are injected into the source's iterator at a random element, a None element
into the stream (RS rule 2.13), and into the partition function (stop or resume). A
second test runs the scoring benchmark's graph (``Partition`` into a two-inlet
"data x latest model" stage) against a Python loop, with random demand and cancellation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hypothesis import example, given
from hypothesis import strategies as st

from reactive import (
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Partition,
    RunnableGraph,
    Source,
)
from reactive.stage import (
    FanInShape2,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    PortStateError,
)
from reactive.testkit import TestSink
from tests.reactive.support import OneByOne
from tests.reactive.test_fan_out_batches import (
    STEPS,
    check_partition_scenario,
    partition_where,
    read_to_end,
)
from tests.reactive.test_junction_batches import INPUTS, SETTINGS, Injected

if TYPE_CHECKING:
    from collections.abc import Iterator


class Items:
    """An iterable whose iterator yields ``xs``, a None at ``none_at`` and raises
    ``Injected`` at ``fail_at`` (each iteration afresh)."""

    def __init__(self, xs: list[int], fail_at: int | None, none_at: int | None) -> None:
        self.xs = xs
        self.fail_at = fail_at
        self.none_at = none_at

    def __iter__(self) -> Iterator[Any]:
        for i, x in enumerate(self.xs):
            if i == self.fail_at:
                raise Injected(f"at {i}")
            yield None if i == self.none_at else x


def graph_of(part: Any, items: Items, n: int, boundary: str | None) -> Any:
    """iterable source -> Partition -> n x (OneByOne -> probe)."""

    def blueprint(b: Any, *sinks: Any) -> Any:
        src: Any = Source.from_iterable(items)
        if boundary == "up":
            src = src.async_boundary()
        p = b.add(part)
        b.add(src).out >> p.in_
        for i, s in enumerate(sinks):
            tail: Any = Flow().via(OneByOne())
            if boundary == "out":
                tail = tail.async_boundary()
            p.out(i) >> b.add(tail) >> s.in_
        return ClosedShape

    probes = [TestSink.probe() for _ in range(n)]
    return RunnableGraph.from_graph(
        GraphDSL.create(blueprint, *probes, combine=lambda *ps: list(ps))
    )


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 3),
    modulus=st.sampled_from([1, 2, 5]),
    bad=st.one_of(st.none(), st.tuples(st.integers(0, 20), st.sampled_from(["raise", "index"]))),
    resume=st.booleans(),
    fail=st.one_of(st.none(), st.tuples(st.sampled_from(["raise", "none"]), st.integers(0, 120))),
    steps=STEPS,
    boundary=st.sampled_from([None, "up", "out"]),
)
@example(  # the scoring shape: one output always pulled, the other one element at a time
    xs=[1, 0, 0, 0, 1, 0, 0],
    n=2,
    modulus=1,
    bad=None,
    resume=False,
    fail=None,
    steps=[(1, 40), (0, 1), (0, 2), (0, 1)],
    boundary=None,
)
@example(  # a None mid-stream, taken on the single-element path
    xs=[0, 1, 2, 3, 4, 5],
    n=2,
    modulus=1,
    bad=None,
    resume=False,
    fail=("none", 3),
    steps=[(0, 1), (1, 1), (0, 1), (1, 1)],
    boundary=None,
)
@example(  # the iterator raising on a taken element
    xs=[0, 1, 2, 3, 4, 5],
    n=2,
    modulus=1,
    bad=None,
    resume=False,
    fail=("raise", 2),
    steps=[(0, 1), (1, 1), (0, 1), (1, 1)],
    boundary=None,
)
async def test_partition_one_at_a_time_matches_the_reference(
    xs: list[int],
    n: int,
    modulus: int,
    bad: tuple[int, str] | None,
    resume: bool,
    fail: tuple[str, int] | None,
    steps: list[tuple[int, int]],
    boundary: str | None,
) -> None:
    fail_at = fail[1] if fail is not None and fail[0] == "raise" else None
    none_at = fail[1] if fail is not None and fail[0] == "none" else None
    cut = fail[1] if fail is not None else None
    stream = xs if cut is None else xs[:cut]
    upstream_fails = cut is not None and cut < len(xs)
    await check_partition_scenario(
        stream,
        n,
        partition_where(n, modulus, bad),
        resume,
        steps,
        exact=boundary != "out" and not upstream_fails,
        upstream_fails=upstream_fails,
        upstream_error=Injected if fail_at is not None else PortStateError,
        graph_of=lambda part: graph_of(part, Items(xs, fail_at, none_at), n, boundary),
    )


# -- the scoring graph -----------------------------------------------------------------------
class Model:
    """A "model": scores ``x`` as ``x * weight``."""

    def __init__(self, weight: int) -> None:
        self.weight = weight


class LatestModel(GraphStage[FanInShape2]):
    """Data (``in0``) scored with the latest model (``in1``), element at a time (the
    benchmark's stage, ``benchmarks/scoring_stage.py``)."""

    def __init__(self) -> None:
        super().__init__()
        self.shape = FanInShape2(Inlet("L.data"), Inlet("L.model"), Outlet("L.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape

        class ModelIn(InHandler):
            def __init__(self, logic: Any) -> None:
                self.logic = logic

            def on_push(self) -> None:
                lg = self.logic
                lg.model = lg.grab(shape.in1)
                lg.pull(shape.in1)
                if lg.is_available(shape.out) and not lg.has_been_pulled(shape.in0):
                    lg.pull(shape.in0)

            def on_upstream_finish(self) -> None:
                pass

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.model: Any = None
                self.set_handlers(shape.in0, shape.out, self)
                self.set_handler(shape.in1, ModelIn(self))

            def pre_start(self) -> None:
                self.pull(shape.in1)

            def on_push(self) -> None:
                self.push(shape.out, self.model.weight * self.grab(shape.in0))

            def on_pull(self) -> None:
                if self.model is not None:
                    self.pull(shape.in0)

        return Logic()


def scores(items: list[Any]) -> list[int]:
    """The Python reference: each data element times the latest model's weight."""
    model: Any = None
    out = []
    for x in items:
        if type(x) is Model:
            model = x
        elif model is not None:
            out.append(model.weight * x)
    return out


@SETTINGS
@given(
    spec=st.lists(st.one_of(st.integers(0, 50), st.integers(1, 5).map(lambda w: -w)), max_size=80),
    demand=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    cancel=st.booleans(),
    boundary=st.booleans(),
)
async def test_scoring_graph_matches_python(
    spec: list[int], demand: list[int], cancel: bool, boundary: bool
) -> None:
    # Models first (as the talk's stream), then a negative number is a model's weight.
    items: list[Any] = [Model(1)] + [Model(-v) if v < 0 else v for v in spec]
    expected = scores(items)

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

    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths, name="scoring") as mat:
            probe = RunnableGraph.from_graph(GraphDSL.create(blueprint, TestSink.probe())).run(mat)
            got: list[int] = []
            for d in demand:
                probe.request(d)
                for _ in range(d):
                    if len(got) >= len(expected):
                        break
                    got.append(await probe.expect_next())
            assert got == expected[: len(got)], fast_paths
            if cancel:
                probe.cancel()
                continue
            probe.request(1 << 30)
            rest, end = await read_to_end(probe)
            assert got + rest == expected, fast_paths
            assert end == "complete"
