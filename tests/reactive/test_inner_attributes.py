"""Attributes reach the graphs a stage materializes at run time (Akka's
``subFusingMaterializer.materialize(graph, inheritedAttributes)``, catalog 6.2 and 7.2).

Every operator that runs a nested graph (flat_map_concat/merge, switch_map, the tail of
prefix_and_tail, group_by/split_when/split_after substreams and ``SubFlow.to``, the lazy
family, the restart wrappers) materializes it with the attributes in force at the
operator as defaults: a supervision strategy set on the enclosing Source, Flow, Sink or
RunnableGraph applies inside, an attribute the nested graph sets itself wins, and the
operator's own name stays its own. Each case runs with the fast paths on and off.

The reference for each case is the same inner pipeline run at top level with the same
strategy: resuming ``scan(0, acc)`` over ``[1, 2, 3]`` (``acc`` fails on 2) gives
``[0, 1, 4]``, restarting it gives ``[0, 1, 0, 3]`` (the state is reset, the zero
emitted again).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Flow,
    Keep,
    Materializer,
    RestartFlow,
    RestartSettings,
    RestartSink,
    RestartSource,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import TestSink
from tests.reactive.support import OneByOne, decider, settle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from reactive.stage import (
        GraphStageLogic,
    )

XS = [1, 2, 3]
RESUMED = [0, 1, 4]
RESTARTED = [0, 1, 0, 3]
EXPECTED = {Supervision.resume: RESUMED, Supervision.restart: RESTARTED}

# Give up at the first failure: a failing nested graph fails the wrapper at once.
NO_RESTARTS = RestartSettings(0.0, 0.0, 0.0, max_restarts=0)


def acc(s: int, x: int) -> int:
    if x == 2:
        raise ValueError("two")
    return s + x


def stateful() -> Flow[Any, Any, Any]:
    """The nested pipeline: a ``scan`` whose function fails on 2."""
    return Flow().scan(0, acc)


# Each case appends one operator that runs ``inner`` (a Flow) in a nested graph over the
# elements ``XS`` coming from ``up`` (a Source or a Flow). group_by, split_when and
# split_after put every element in one substream, so each case emits what ``inner`` does.
def _flat_map_concat(up: Any, inner: Any) -> Any:
    return up.grouped(3).flat_map_concat(lambda xs: Source.from_iterable(xs).via(inner))


def _flat_map_merge(up: Any, inner: Any) -> Any:
    return up.grouped(3).flat_map_merge(2, lambda xs: Source.from_iterable(xs).via(inner))


def _switch_map(up: Any, inner: Any) -> Any:
    return up.grouped(3).switch_map(lambda xs: Source.from_iterable(xs).via(inner))


def _prefix_and_tail(up: Any, inner: Any) -> Any:
    return up.prefix_and_tail(1).flat_map_concat(
        lambda pt: Source.from_iterable(pt[0]).concat(pt[1]).via(inner)
    )


def _group_by(up: Any, inner: Any) -> Any:
    return up.group_by(2, lambda x: "k").via(inner).merge_substreams()


def _split_when(up: Any, inner: Any) -> Any:
    return up.split_when(lambda x: False).via(inner).concat_substreams()


def _split_after(up: Any, inner: Any) -> Any:
    return up.split_after(lambda x: False).via(inner).concat_substreams()


def _lazy_source(up: Any, inner: Any) -> Any:
    return up.take(0).concat(Source.lazy_source(lambda: Source.from_iterable(XS).via(inner)))


def _lazy_flow(up: Any, inner: Any) -> Any:
    return up.via(Flow.lazy_flow(lambda: inner))


def _restart_source(up: Any, inner: Any) -> Any:
    return up.take(0).concat(
        RestartSource.on_failures_with_backoff(
            NO_RESTARTS, lambda: Source.from_iterable(XS).via(inner)
        )
    )


def _restart_flow(up: Any, inner: Any) -> Any:
    return up.via(RestartFlow.on_failures_with_backoff(NO_RESTARTS, lambda: inner))


CASES: dict[str, Callable[[Any, Any], Any]] = {
    "flat_map_concat": _flat_map_concat,
    "flat_map_merge": _flat_map_merge,
    "switch_map": _switch_map,
    "prefix_and_tail": _prefix_and_tail,
    "group_by": _group_by,
    "split_when": _split_when,
    "split_after": _split_after,
    "lazy_source": _lazy_source,
    "lazy_flow": _lazy_flow,
    "restart_source": _restart_source,
    "restart_flow": _restart_flow,
}


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with the fast paths on or off; no stream may outlive the test."""
    async with Materializer(fast_paths=request.param, metrics=False) as m:
        yield m
        for _ in range(50):
            if m.running_tasks == 0:
                break
            await asyncio.sleep(0)
        assert m.running_tasks == 0


async def run_placed(
    placement: str,
    case: Callable[[Any, Any], Any],
    attrs: Attributes,
    mat: Any,
    inner: Flow[Any, Any, Any] | None = None,
) -> Any:
    """Run ``case`` with ``inner`` (default: ``stateful()``) over ``XS``, with ``attrs``
    on the enclosing Source, Flow or RunnableGraph."""
    inner = stateful() if inner is None else inner
    if placement == "source":
        src = case(Source.from_iterable(XS), inner).with_attributes(attrs)
        return await src.run_with(Sink.seq(), mat)
    if placement == "flow":
        flow = case(Flow(), inner).with_attributes(attrs)
        return await Source.from_iterable(XS).via(flow).run_with(Sink.seq(), mat)
    assert placement == "graph"
    graph = case(Source.from_iterable(XS), inner).to_mat(Sink.seq(), Keep.right)
    return await graph.with_attributes(attrs).run(mat)


# -- the reference ------------------------------------------------------------------------------
@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_the_reference_at_top_level(directive: Any, mat: Materializer) -> None:
    """What every nested case must give: the inner pipeline supervised at top level."""
    src = Source.from_iterable(XS).via(stateful()).with_attributes(decider(directive))
    assert await src.run_with(Sink.seq(), mat) == EXPECTED[directive]


# -- supervision from the enclosing blueprint ---------------------------------------------------
@pytest.mark.parametrize("placement", ["source", "flow", "graph"])
@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
@pytest.mark.parametrize("case", list(CASES))
async def test_supervision_set_outside_reaches_the_nested_graph(
    case: str, directive: Any, placement: str, mat: Materializer
) -> None:
    """A strategy on the enclosing Source, Flow or RunnableGraph supervises the stages of
    the graph the operator materializes at run time."""
    got = await run_placed(placement, CASES[case], decider(directive), mat)
    assert got == EXPECTED[directive]


@pytest.mark.parametrize("case", list(CASES))
async def test_without_a_strategy_the_nested_failure_fails_the_stream(
    case: str, mat: Materializer
) -> None:
    """The default (stop) still holds: nothing set outside, the nested failure fails."""
    with pytest.raises(ValueError, match="two"):
        await run_placed("source", CASES[case], Attributes.none(), mat)


@pytest.mark.parametrize("placement", ["source", "flow", "graph"])
@pytest.mark.parametrize("case", list(CASES))
async def test_an_inner_attribute_wins_over_the_outer_one(
    case: str, placement: str, mat: Materializer
) -> None:
    """The nested graph's own strategy wins where it is set; the outer one applies to
    the rest of the nested graph (the most specific attribute wins, as at top level)."""
    asked: list[tuple[str, str]] = []

    def outer(exc: BaseException) -> Any:
        asked.append(("outer", str(exc)))
        return Supervision.resume

    def own(exc: BaseException) -> Any:
        asked.append(("inner", str(exc)))
        return Supervision.resume

    def f1(x: int) -> int:
        if x == 1:
            raise ValueError("f1")
        return x

    def f2(x: int) -> int:
        if x == 3:
            raise ValueError("f2")
        return x

    inner = Flow().map(f1).with_attributes(Attributes.supervision_strategy(own)).map(f2)
    got = await run_placed(
        placement, CASES[case], Attributes.supervision_strategy(outer), mat, inner
    )
    assert got == [2]
    assert asked == [("inner", "f1"), ("outer", "f2")]


# -- sinks: lazy_sink and SubFlow.to ------------------------------------------------------------
@pytest.mark.parametrize("placement", ["sink", "graph"])
@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_a_lazy_sink_inherits_the_strategy(
    directive: Any, placement: str, mat: Materializer
) -> None:
    """``Sink.lazy_sink``: a strategy on the enclosing Sink or RunnableGraph supervises
    the nested sink's stages."""
    sink = Sink.lazy_sink(lambda: stateful().to_mat(Sink.seq(), Keep.right))
    attrs = decider(directive)
    if placement == "sink":
        inner_done = Source.from_iterable(XS).run_with(sink.with_attributes(attrs), mat)
    else:
        graph = Source.from_iterable(XS).to_mat(sink, Keep.right).with_attributes(attrs)
        inner_done = graph.run(mat)
    assert await (await inner_done) == EXPECTED[directive]


@pytest.mark.parametrize("placement", ["sink", "graph"])
@pytest.mark.parametrize("split", ["group_by", "split_when"])
@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_subflow_to_sink_inherits_the_strategy(
    directive: Any, split: str, placement: str, mat: Materializer
) -> None:
    """``SubFlow.to(sink)`` runs each substream as a graph of its own: it still gets the
    attributes of the sink stage that starts it."""
    results: list[Any] = []
    each = Sink.seq().map_materialized_value(lambda fut: results.append(fut) or fut)

    def subflow(up: Any) -> Any:
        if split == "group_by":
            return up.group_by(2, lambda x: "k")
        return up.split_when(lambda x: False)

    attrs = decider(directive)
    if placement == "sink":
        sink = subflow(Flow()).via(stateful()).to(each).with_attributes(attrs)
        Source.from_iterable(XS).run_with(sink, mat)
    else:
        subflow(Source.from_iterable(XS)).via(stateful()).to(each).with_attributes(attrs).run(mat)
    for _ in range(100):
        if results:
            break
        await asyncio.sleep(0)
    assert len(results) == 1
    assert await results[0] == EXPECTED[directive]


# -- which attributes reach the nested graph ----------------------------------------------------
class Spy(OneByOne):
    """A pass-through stage that records the attributes it was created with."""

    def __init__(self, seen: list[Attributes]) -> None:
        super().__init__()
        self.seen = seen

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        self.seen.append(attributes)
        return super().create_logic(attributes)


@pytest.mark.parametrize("case", list(CASES))
async def test_every_attribute_but_the_name_is_inherited(case: str, mat: Materializer) -> None:
    """Supervision, log levels, input buffer, fast paths and metrics set outside are the
    nested stages' defaults; the operator's name is its own and is not handed down; an
    attribute set on the nested stage wins."""
    seen: list[Attributes] = []
    strategy = Attributes.supervision_strategy(lambda e: Supervision.resume)
    outer = (
        strategy
        & Attributes.log_levels(on_element=5)
        & Attributes.input_buffer(4, 4)
        & Attributes.fast_paths(False)
        & Attributes.name("outer")
    )
    inner = Flow().via(Spy(seen)).add_attributes(Attributes.input_buffer(2, 2))
    src = CASES[case](Source.from_iterable(XS), inner).with_attributes(outer)
    assert await src.run_with(Sink.seq(), mat) == XS
    assert seen, "the nested graph was not materialized"
    for a in seen:
        assert a.get("supervision") is strategy.get("supervision")
        assert a.get("log_on_element") == 5
        assert a.get("fast_paths") is False
        assert a.get("input_buffer") == 2  # the nested graph's own setting wins
        assert a.get("name") is None  # "outer" names the enclosing graph's stages only


@pytest.mark.parametrize("case", ["flat_map_concat", "group_by", "lazy_flow"])
async def test_fast_paths_off_outside_turns_them_off_inside(case: str) -> None:
    """``Attributes.fast_paths(False)`` on a graph reaches its nested graphs: their
    simple operators run one stage each instead of a fused run."""
    inner = Flow().map(lambda x: x).named("a").map(lambda x: x).named("b")
    async with Materializer(fast_paths=True, metrics=False) as m:
        src = CASES[case](Source.from_iterable(XS), inner).with_attributes(
            Attributes.fast_paths(False)
        )
        probe = src.run_with(TestSink.probe(), m)
        probe.request(1)
        assert await probe.expect_next() == 1
        names = {s.name for s in m.snapshot().stages}
        probe.cancel()
        await settle()
    assert {"a", "b"} <= names
    assert not any("+" in n for n in names), names


@pytest.mark.parametrize("case", ["flat_map_concat", "group_by", "lazy_source"])
async def test_a_metered_graph_meters_its_nested_graphs(case: str) -> None:
    """``Attributes.metrics(True)`` on a graph: the stages of its nested graphs count too
    (they show in the graph's snapshot with metrics)."""
    # Kept running (never completes) so that the snapshot still shows it.
    inner = Flow().concat(Source.never()).via(Flow().map(lambda x: x).named("nested"))
    async with Materializer(metrics=False) as m:
        src = CASES[case](Source.from_iterable(XS), inner).with_attributes(Attributes.metrics(True))
        probe = src.run_with(TestSink.probe(), m)
        probe.request(1)
        assert await probe.expect_next() == 1
        stage = m.snapshot().stage("nested")
        probe.cancel()
        await settle()
    assert stage.metrics is not None


# -- RestartSink and recover_with_retries: their inner graphs get their own islands ------------
@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_a_restart_sinks_inner_sink_inherits_the_strategy(
    directive: Any, mat: Materializer
) -> None:
    got: list[int] = []
    finished = asyncio.get_running_loop().create_future()

    def inner() -> Any:
        return stateful().to(
            Sink.foreach(got.append).map_materialized_value(
                lambda done: done.add_done_callback(lambda _: finished.set_result(None))
            )
        )

    sink = RestartSink.with_backoff(NO_RESTARTS, inner)
    Source.from_iterable(XS).to(sink).with_attributes(decider(directive)).run(mat)
    await asyncio.wait_for(finished, 5)
    assert got == EXPECTED[directive]


@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_a_recovery_source_inherits_the_strategy(directive: Any, mat: Materializer) -> None:
    """``recover_with_retries``: a strategy on the enclosing Source supervises the stages
    of the source it switches to."""
    src = Source.failed(KeyError("first")).recover_with_retries(
        1, lambda exc: Source.from_iterable(XS).via(stateful())
    )
    assert (
        await src.with_attributes(decider(directive)).run_with(Sink.seq(), mat)
        == (EXPECTED[directive])
    )
