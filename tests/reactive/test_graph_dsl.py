"""GraphDSL: building, partial graphs, materialized values, construction errors, cycles,
and a two-inlet custom stage (model scoring) wired with the DSL; Akka's GraphDSLCompileSpec
and the stream-graphs docs' cycle examples (liveness and deadlocks) as classes. The
junctions' own tests are in ops/test_fan_out.py and ops/test_fan_in.py."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from reactive import (
    Broadcast,
    ClosedShape,
    Concat,
    Flow,
    FlowShape,
    GraphDSL,
    IllegalGraphError,
    Keep,
    Materializer,
    Merge,
    MergePreferred,
    NotUsed,
    OverflowStrategy,
    RunnableGraph,
    Sink,
    SinkShape,
    Source,
    SourceShape,
    Zip,
    ZipWith,
)
from reactive.stage import (
    IGNORE_TERMINATE_INPUT,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
    Shape,
)
from reactive.testkit import TestSink, TestSource


def inc(x: int) -> int:
    return x + 1


# -- the API.md example ----------------------------------------------------------------------
def api_blueprint(b: Any, sink_shape: Any) -> Any:
    src = b.add(Source.from_iterable(range(10)))
    bcast = b.add(Broadcast(2))
    zip_ = b.add(Zip())
    src.out >> bcast.in_
    bcast.out(0) >> b.add(Flow().map(inc)) >> zip_.in0
    bcast.out(1) >> zip_.in1
    zip_.out >> sink_shape.in_
    return ClosedShape


async def test_api_example(materializer: Materializer) -> None:
    graph = RunnableGraph.from_graph(GraphDSL.create(api_blueprint, Sink.seq()))
    result = await graph.run(materializer)
    assert result == [(x + 1, x) for x in range(10)]
    # A blueprint is reusable: every run is independent.
    assert await graph.run(materializer) == result


async def test_connect_is_the_same_as_rshift(materializer: Materializer) -> None:
    def bp(b: Any, out: Any) -> Any:
        src = b.add(Source.from_iterable([1, 2]))
        m = b.add(Flow().map(lambda x: x * 3))
        b.connect(src.out, m.in_)
        b.connect(m.out, out.in_)
        return ClosedShape

    assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer) == [
        3,
        6,
    ]


async def test_chain_adds_blueprints_and_shapes(materializer: Materializer) -> None:
    def bp(b: Any, out: Any) -> Any:
        # ``>>`` to a blueprint adds it; to a shape with one free inlet returns the shape.
        (
            b.add(Source.from_iterable([1, 2, 3]))
            >> Flow().map(inc)
            >> b.add(Flow().filter(lambda x: x % 2 == 0))
            >> out
        )
        return ClosedShape

    assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer) == [
        2,
        4,
    ]


# -- materialized values ---------------------------------------------------------------------
async def test_no_imported_graph_gives_not_used(materializer: Materializer) -> None:
    def bp(b: Any) -> Any:
        b.add(Source.single(1)) >> b.add(Sink.ignore())
        return ClosedShape

    assert RunnableGraph.from_graph(GraphDSL.create(bp)).run(materializer) is NotUsed


async def test_several_imported_graphs_give_a_tuple_or_combine(materializer: Materializer) -> None:
    def bp(b: Any, head: Any, last: Any) -> Any:
        bc = b.add(Broadcast(2))
        b.add(Source.from_iterable([4, 5, 6])) >> bc.in_
        bc.out(0) >> head.in_
        bc.out(1) >> last.in_
        return ClosedShape

    h, la = RunnableGraph.from_graph(GraphDSL.create(bp, Sink.head(), Sink.last())).run(
        materializer
    )
    assert (await h, await la) == (4, 6)
    g = GraphDSL.create(bp, Sink.head(), Sink.last(), combine=Keep.right)
    assert await RunnableGraph.from_graph(g).run(materializer) == 6


async def test_added_graphs_contribute_no_value_and_are_copies(materializer: Materializer) -> None:
    shared = Flow().map(inc)

    def bp(b: Any, out: Any) -> Any:
        z = b.add(Zip())
        b.add(Source.from_iterable([1, 2])) >> shared >> z.in0
        b.add(Source.from_iterable([10, 20])) >> b.add(shared) >> z.in1
        z.out >> out.in_
        return ClosedShape

    got = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert got == [(2, 11), (3, 21)]


# -- partial graphs --------------------------------------------------------------------------
async def test_partial_source(materializer: Materializer) -> None:
    def bp(b: Any) -> Any:
        z = b.add(Zip())
        b.add(Source.from_iterable("ab")) >> z.in0
        b.add(Source.from_iterable([1, 2, 3])) >> z.in1
        return SourceShape(z.out)

    src = Source.from_graph(GraphDSL.create(bp))
    assert await src.map(lambda p: p[0] * p[1]).run_with(Sink.seq(), materializer) == ["a", "bb"]


async def test_partial_flow_and_sink(materializer: Materializer) -> None:
    def flow_bp(b: Any) -> Any:
        bc = b.add(Broadcast(2))
        z = b.add(Zip())
        bc.out(0) >> b.add(Flow().map(lambda x: -x)) >> z.in0
        bc.out(1) >> z.in1
        return FlowShape(bc.in_, z.out)

    pairs = Flow.from_graph(GraphDSL.create(flow_bp))
    assert await Source.from_iterable([1, 2]).via(pairs).run_with(Sink.seq(), materializer) == [
        (-1, 1),
        (-2, 2),
    ]

    def sink_bp(b: Any, seq: Any) -> Any:
        m = b.add(Flow().map(lambda x: x * 10))
        m.out >> seq.in_
        return SinkShape(m.in_)

    sink = Sink.from_graph(GraphDSL.create(sink_bp, Sink.seq()))
    assert await Source.from_iterable([1, 2]).run_with(sink, materializer) == [10, 20]


async def test_partial_graph_imported_twice(materializer: Materializer) -> None:
    def flow_bp(b: Any) -> Any:
        m = b.add(Flow().map(inc))
        return FlowShape(m.in_, m.out)

    plus_one = GraphDSL.create(flow_bp)

    def bp(b: Any, out: Any) -> Any:
        b.add(Source.from_iterable([1, 2])) >> b.add(plus_one) >> b.add(plus_one) >> out
        return ClosedShape

    assert await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer) == [
        3,
        4,
    ]


# -- construction errors name the port -------------------------------------------------------
def test_unconnected_port_is_named() -> None:
    def bp(b: Any) -> Any:
        src = b.add(Source.single(1))
        bc = b.add(Broadcast(2))
        src.out >> bc.in_
        bc.out(0) >> b.add(Sink.ignore())
        return ClosedShape

    with pytest.raises(IllegalGraphError, match=r"'Broadcast\.out1' not connected"):
        GraphDSL.create(bp)


def test_port_connected_twice_is_named() -> None:
    def bp(b: Any) -> Any:
        src = b.add(Source.single(1))
        src.out >> b.add(Sink.ignore())
        src.out >> b.add(Sink.ignore())
        return ClosedShape

    with pytest.raises(IllegalGraphError, match=r"outlet 'SingleSource\.out' is connected twice"):
        GraphDSL.create(bp)


def test_inlet_connected_twice_is_named() -> None:
    def bp(b: Any) -> Any:
        m = b.add(Merge(2))
        snk = b.add(Sink.ignore())
        m.out >> snk.in_
        b.add(Source.single(1)) >> m.in_(0)
        b.add(Source.single(2)) >> m.in_(0)
        return ClosedShape

    with pytest.raises(IllegalGraphError, match=r"inlet 'Merge\.in0' is connected twice"):
        GraphDSL.create(bp)


def test_port_from_another_builder_is_refused() -> None:
    leaked: list[Any] = []

    def first(b: Any) -> Any:
        m = b.add(Flow().map(inc))
        leaked.append(m)
        return FlowShape(m.in_, m.out)

    GraphDSL.create(first)

    def second(b: Any) -> Any:
        b.add(Source.single(1)) >> leaked[0].in_
        return ClosedShape

    with pytest.raises(
        IllegalGraphError, match=r"port 'Map\.in' belongs to another GraphDSL builder"
    ):
        GraphDSL.create(second)


def test_exposing_a_connected_port_is_refused() -> None:
    def bp(b: Any) -> Any:
        src = b.add(Source.single(1))
        m = b.add(Flow().map(inc))
        src.out >> m.in_
        return FlowShape(m.in_, m.out)

    with pytest.raises(
        IllegalGraphError, match=r"exposes port 'Map\.in', which is already connected"
    ):
        GraphDSL.create(bp)


def test_other_construction_errors() -> None:
    def none_bp(b: Any) -> Any:
        b.add(Source.empty()) >> b.add(Sink.ignore())

    with pytest.raises(IllegalGraphError, match="must return a shape"):
        GraphDSL.create(none_bp)

    def ambiguous(b: Any) -> Any:
        b.add(Source.single(1)) >> b.add(Zip())
        return ClosedShape

    with pytest.raises(IllegalGraphError, match=r"exactly one free inlet"):
        GraphDSL.create(ambiguous)

    with pytest.raises(IllegalGraphError, match="outside a GraphDSL builder"):
        Source.single(1).shape.out >> Sink.ignore().shape.in_  # type: ignore[attr-defined]

    def partial(b: Any) -> Any:
        m = b.add(Flow().map(inc))
        return FlowShape(m.in_, m.out)

    with pytest.raises(IllegalGraphError, match="closed graph"):
        RunnableGraph.from_graph(GraphDSL.create(partial))


# -- cycles ----------------------------------------------------------------------------------
def counter_graph(limit: int, with_buffer: bool, sink: Any) -> Any:
    """A counter: 0 enters a Merge; each value goes out and, if below ``limit``, comes back
    incremented through the feedback edge.

    source(0) ~> merge ~> bcast ~> take_while(<= limit) ~> sink
                 merge <~ buffer <~ map(+1) <~ filter(< limit) <~ bcast

    Without the buffer this is the classic deadlocking cycle: Broadcast pulls only when
    both outputs pulled; the feedback output pulls only after Merge emitted the fed-back
    element, and Merge emits only when Broadcast pulls. The first element goes out and
    the loop stops. ``buffer(n, OverflowStrategy.backpressure)`` on the feedback edge
    accepts the element and pulls again at once, which lets the loop turn; the filter
    keeps at most one element circulating, so the buffer never fills.
    """

    def bp(b: Any, out: Any) -> Any:
        merge = b.add(Merge(2))
        bcast = b.add(Broadcast(2, eager_cancel=True))
        b.add(Source.single(0)) >> merge.in_(0)
        merge.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().take_while(lambda x: x < limit, inclusive=True)) >> out
        feedback = Flow().filter(lambda x: x < limit).map(inc)
        if with_buffer:
            feedback = feedback.buffer(4, OverflowStrategy.backpressure)
        bcast.out(1) >> b.add(feedback) >> merge.in_(1)
        return ClosedShape

    return RunnableGraph.from_graph(GraphDSL.create(bp, sink))


async def test_cycle_with_buffered_feedback_counts(materializer: Materializer) -> None:
    assert await counter_graph(10, True, Sink.seq()).run(materializer) == list(range(11))


async def test_cycle_without_buffer_deadlocks(materializer: Materializer) -> None:
    probe = counter_graph(10, False, TestSink.probe()).run(materializer)
    probe.request(20)
    await probe.expect_next(0)
    await probe.expect_no_message(0.05)  # deadlocked: 1 waits in Merge forever
    probe.cancel()  # eager Broadcast cancels the whole loop, so the test ends clean


async def test_collatz_in_a_cycle(materializer: Materializer) -> None:
    def step(n: int) -> int:
        return n // 2 if n % 2 == 0 else 3 * n + 1

    def bp(b: Any, out: Any) -> Any:
        merge = b.add(Merge(2))
        bcast = b.add(Broadcast(2, eager_cancel=True))
        b.add(Source.single(6)) >> merge.in_(0)
        merge.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().take_while(lambda n: n != 1, inclusive=True)) >> out
        back = Flow().filter(lambda n: n != 1).map(step).buffer(2, OverflowStrategy.backpressure)
        bcast.out(1) >> b.add(back) >> merge.in_(1)
        return ClosedShape

    got = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
    assert got == [6, 3, 10, 5, 16, 8, 4, 2, 1]


# -- a two-inlet custom stage: model scoring -------------------------------------------------
class ScoringShape(Shape):
    """``data`` and ``model`` inlets, ``out`` outlet."""

    __slots__ = ("data", "model", "out")

    def __init__(self, data: Inlet[Any], model: Inlet[Any], out: Outlet[Any]) -> None:
        super().__init__((data, model), (out,))
        self.data, self.model, self.out = data, model, out

    def copy_from_ports(self, inlets: Any, outlets: Any) -> Shape:
        return ScoringShape(inlets[0], inlets[1], outlets[0])


@dataclass
class ScoringState:
    """The stage's materialized value: what it is doing right now."""

    model: Any = None
    models_seen: int = 0
    scored: int = 0
    log: list[str] = field(default_factory=list)


class ModelScoringStage(GraphStageWithMaterializedValue[ScoringShape, ScoringState]):
    """Scores each data record with the latest model; holds data demand until a model came.

    Emits when a record arrived and a model is known. Backpressures when downstream does,
    and data is not pulled before the first model. Completes when data completes (or when
    the model stream completes before any model). Fails when either input fails.
    """

    def __init__(self) -> None:
        self.shape = ScoringShape(
            Inlet("ModelScoring.data"), Inlet("ModelScoring.model"), Outlet("ModelScoring.out")
        )

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, ScoringState]:
        state = ScoringState()
        return _ScoringLogic(self.shape, state), state


class _ModelIn(InHandler):
    def __init__(self, logic: _ScoringLogic) -> None:
        self.logic = logic

    def on_push(self) -> None:
        lg = self.logic
        lg.state.model = lg.grab(lg.shape.model)
        lg.state.models_seen += 1
        lg.state.log.append(f"model {lg.state.model[0]}")
        lg.pull(lg.shape.model)  # always take the newest model
        lg.maybe_pull_data()

    def on_upstream_finish(self) -> None:
        lg = self.logic
        if lg.state.model is None:
            lg.complete_stage()  # no model will ever come: nothing can be scored


class _ScoringLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, shape: ScoringShape, state: ScoringState) -> None:
        super().__init__(shape)
        self.state = state
        self.set_handler(shape.data, self)
        self.set_handler(shape.model, _ModelIn(self))
        self.set_handler(shape.out, self)

    def pre_start(self) -> None:
        self.pull(self.shape.model)

    def maybe_pull_data(self) -> None:
        s = self.shape
        if (
            self.state.model is not None
            and self.is_available(s.out)
            and not self.has_been_pulled(s.data)
            and not self.is_closed(s.data)
        ):
            self.pull(s.data)

    def on_pull(self) -> None:
        self.maybe_pull_data()

    def on_push(self) -> None:
        record = self.grab(self.shape.data)
        version, weight = self.state.model
        self.state.scored += 1
        self.push(self.shape.out, (record, version, record * weight))


def scoring_graph(data: Any, models: Any, sink: Any) -> RunnableGraph[Any]:
    def bp(b: Any, d: Any, m: Any, out: Any, scorer: Any) -> Any:
        d.out >> scorer.data
        m.out >> scorer.model
        scorer.out >> out.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(bp, data, models, sink, ModelScoringStage(), combine=lambda *ms: ms)
    )


async def test_model_scoring_waits_for_a_model_then_uses_the_latest(
    materializer: Materializer,
) -> None:
    data, models, out, state = scoring_graph(
        TestSource.probe(), TestSource.probe(), TestSink.probe()
    ).run(materializer)
    out.request(10)
    await models.expect_request()
    await data.expect_no_message(0.02)  # no model yet: data demand is held back
    assert state.models_seen == 0
    models.send_next(("v1", 2))
    await data.expect_request()
    data.send_next(5)
    await out.expect_next((5, "v1", 10))
    await models.expect_request()
    models.send_next(("v2", 3))
    await data.expect_request()
    data.send_next(7)
    await out.expect_next((7, "v2", 21))
    assert state.scored == 2 and state.model == ("v2", 3)
    models.send_complete()  # the last model keeps scoring
    await data.expect_request()
    data.send_next(1)
    await out.expect_next((1, "v2", 3))
    data.send_complete()
    await out.expect_complete()
    assert state.log == ["model v1", "model v2"]


async def test_model_scoring_with_plain_sources(materializer: Materializer) -> None:
    _, _, result, state = scoring_graph(
        Source.from_iterable([1, 2, 3]), Source.single(("m", 10)), Sink.seq()
    ).run(materializer)
    assert await result == [(1, "m", 10), (2, "m", 20), (3, "m", 30)]
    assert state.scored == 3


# -- rendering -------------------------------------------------------------------------------
def test_to_mermaid_draws_stages_and_edges() -> None:
    text = GraphDSL.create(api_blueprint, Sink.seq()).to_mermaid()
    assert text.startswith("flowchart LR\n")
    for name in ("iterable_source", "broadcast", "zip", "map", "seq_sink"):
        assert f'["{name}"]' in text
    assert '"Broadcast.out0 → Map.in"' in text
    assert '"Zip.out → SeqSink.in"' in text
    assert text.count("-->") == 5
    flow_text = Flow().map(inc).filter(bool).to_mermaid()
    assert flow_text.count("-->") == 3  # open in -> map -> filter -> open out


# -- shared handler constants are per logic (core fix found while writing MergeSorted) -------
class _IgnoringStage(GraphStageWithMaterializedValue[FlowShape, Any]):
    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("Ignoring.in"), Outlet("Ignoring.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        return _IgnoringLogic(self.shape), NotUsed


class _IgnoringLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: FlowShape) -> None:
        super().__init__(shape)
        self.set_handler(shape.in_, IGNORE_TERMINATE_INPUT)
        self.set_handler(shape.out, self)

    def on_pull(self) -> None:
        pass


async def test_shared_ignore_handler_fails_only_its_own_stream(materializer: Materializer) -> None:
    failing = (
        Source.failed(ValueError("a")).via(_IgnoringStage()).run_with(Sink.seq(), materializer)
    )
    other = TestSource.probe().via(_IgnoringStage()).to_mat(TestSink.probe(), Keep.both)
    pub, sub = other.run(materializer)
    with pytest.raises(ValueError, match="a"):
        await failing
    sub.request(1)
    await sub.expect_no_message(0.02)  # the other stream is untouched
    sub.cancel()
    await pub.expect_cancellation()


def ident(name: str) -> Flow[Any, Any, Any]:
    return Flow().map(lambda x: x).named(name)


class TestGraphDSLCompileSpec:
    """Akka's GraphDSLCompileSpec cases."""

    async def test_dsl_chains_through_junctions(self, materializer: Materializer) -> None:
        """``in1 ~> f1 ~> bcast ~> f2 ~> merge ~> f3 ~> out1; bcast ~> f4 ~> merge``."""

        def bp(b: Any, out: Any) -> Any:
            bcast = b.add(Broadcast(2))
            merge = b.add(Merge(2))
            b.add(Source.from_iterable("abc")) >> ident("f1") >> bcast >> ident("f2") >> merge
            merge >> ident("f3") >> out
            bcast >> ident("f4") >> merge
            return ClosedShape

        out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert sorted(out) == sorted("aabbcc")

    async def test_dsl_make_it_optional_to_specify_flows(self, materializer: Materializer) -> None:
        def bp(b: Any, out1: Any, out2: Any) -> Any:
            merge = b.add(Merge(2))
            bcast = b.add(Broadcast(2))
            b.add(Source.from_iterable("abc")) >> merge >> bcast >> out1
            b.add(Source.from_iterable("def")) >> merge
            bcast >> out2
            return ClosedShape

        a, c = await asyncio.gather(
            *RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.seq())).run(materializer)
        )
        assert sorted(a) == sorted(c) == list("abcdef")

    async def test_dsl_wikipedia_topological_sorting(self, materializer: Materializer) -> None:
        def bp(b: Any, out2: Any, out9: Any, out10: Any) -> Any:
            b3 = b.add(Broadcast(2))
            b7 = b.add(Broadcast(2))
            b11 = b.add(Broadcast(3))
            m8 = b.add(Merge(2))
            m9 = b.add(Merge(2))
            m10 = b.add(Merge(2))
            m11 = b.add(Merge(2))
            in3 = b.add(Source.single("b"))
            in5 = b.add(Source.single("b"))
            in7 = b.add(Source.single("a"))
            in7 >> ident("a") >> b7 >> ident("b") >> m11 >> ident("c") >> b11 >> ident("d") >> out2
            b11 >> ident("e") >> m9 >> ident("f") >> out9
            b7 >> ident("g") >> m8 >> ident("h") >> m9
            b11 >> ident("i") >> m10 >> ident("j") >> out10
            in5 >> ident("k") >> m11
            in3 >> ident("l") >> b3 >> ident("m") >> m8
            b3 >> ident("n") >> m10
            return ClosedShape

        outs = RunnableGraph.from_graph(
            GraphDSL.create(bp, Sink.seq(), Sink.seq(), Sink.seq())
        ).run(materializer)
        r2, r9, r10 = await asyncio.gather(*outs)
        assert sorted(r2) == ["a", "b"]
        assert sorted(r9) == ["a", "a", "b", "b"]
        assert sorted(r10) == ["a", "b", "b"]

    def test_dsl_complex_topology_with_a_cycle_builds(self) -> None:
        def bp(b: Any) -> Any:
            merge = b.add(Merge(2))
            bcast1 = b.add(Broadcast(2))
            bcast2 = b.add(Broadcast(2))
            feedback = Flow().buffer(10, OverflowStrategy.drop_buffer)
            b.add(Source.from_iterable("abc")) >> ident("f1") >> merge >> ident("f2") >> bcast1
            bcast1 >> ident("f3") >> b.add(Sink.ignore())
            bcast1 >> feedback >> bcast2 >> ident("f5") >> merge
            bcast2 >> ident("f6") >> b.add(Sink.head())
            return ClosedShape

        assert isinstance(RunnableGraph.from_graph(GraphDSL.create(bp)), RunnableGraph)

    async def test_dsl_blueprints_connect_directly_to_ports(
        self, materializer: Materializer
    ) -> None:
        """``Source(...) ~> merge.in(0)`` and ``(in1.via(f1)) ~> ...`` without ``b.add``."""

        def bp(b: Any, out: Any) -> Any:
            merge = b.add(Merge(2))
            Source.from_iterable([1, 2]) >> merge.in_(0)
            Source.from_iterable([3]).via(Flow().map(lambda x: x * 10)) >> merge.in_(1)
            merge.out >> out
            return ClosedShape

        out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert sorted(out) == [1, 2, 30]

    def test_dsl_errors_name_unconnected_and_returned_connected_ports(self) -> None:
        def unconnected(b: Any) -> Any:
            b.add(Source.empty())
            op = b.add(Flow().map(lambda x: x + 1))
            sink = b.add(Sink.foreach(print))
            op >> sink.in_
            return ClosedShape

        with pytest.raises(ValueError) as info:
            GraphDSL.create(unconnected)
        msg = str(info.value)
        assert "Map.in" in msg and "not connected" in msg
        assert ".out" in msg

        def returned_connected(b: Any) -> Any:
            s = b.add(Source.empty())
            op = b.add(Flow().map(lambda x: x + 1))
            sink = b.add(Sink.foreach(print))
            s >> op >> sink.in_
            return op

        with pytest.raises(ValueError, match=r"Map\.in"):
            GraphDSL.create(returned_connected)

    async def test_dsl_imported_mat_values_tuple_and_combine(
        self, materializer: Materializer
    ) -> None:
        def bp(b: Any, s1: Any, s2: Any) -> Any:
            bcast = b.add(Broadcast(2))
            b.add(Source.from_iterable([1, 2, 3])) >> bcast.in_
            bcast.out(0) >> s1.in_
            bcast.out(1) >> s2.in_
            return ClosedShape

        f1, f2 = RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq(), Sink.last())).run(
            materializer
        )
        assert (await f1, await f2) == ([1, 2, 3], 3)
        combined = RunnableGraph.from_graph(
            GraphDSL.create(bp, Sink.seq(), Sink.last(), combine=lambda a, c: asyncio.gather(a, c))
        ).run(materializer)
        assert await combined == [[1, 2, 3], 3]


class TestGraphCycles:
    """The "Graph cycles, liveness and deadlocks" examples of the stream-graphs docs."""

    async def test_cycle_merge_preferred_feedback_stays_live(
        self, materializer: Materializer
    ) -> None:
        def bp(b: Any, out: Any) -> Any:
            merge = b.add(MergePreferred(1))
            bcast = b.add(Broadcast(2, eager_cancel=True))
            b.add(Source.from_iterable(range(1, 1000))) >> merge.in_(0)
            merge.out >> bcast.in_
            bcast.out(0) >> b.add(Flow().take(50)) >> out
            bcast.out(1) >> merge.preferred
            return ClosedShape

        out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert len(out) == 50
        assert len(set(out)) < 50  # the fed-back elements circulate

    async def test_cycle_dropping_buffer_gives_liveness(self, materializer: Materializer) -> None:
        def bp(b: Any, out: Any) -> Any:
            merge = b.add(Merge(2))
            bcast = b.add(Broadcast(2, eager_cancel=True))
            b.add(Source.from_iterable(range(1, 1000))) >> merge.in_(0)
            merge.out >> bcast.in_
            bcast.out(0) >> b.add(Flow().take(100)) >> out
            bcast.out(1) >> b.add(Flow().buffer(10, OverflowStrategy.drop_head)) >> merge.in_(1)
            return ClosedShape

        out = await RunnableGraph.from_graph(GraphDSL.create(bp, Sink.seq())).run(materializer)
        assert len(out) == 100

    async def test_balanced_cycle_needs_a_kick_off_element(
        self, materializer: Materializer
    ) -> None:
        def bp(b: Any, out: Any, with_kick_off: bool) -> Any:
            zip_ = b.add(ZipWith(lambda left, right: left))
            bcast = b.add(Broadcast(2, eager_cancel=True))
            b.add(Source.from_iterable(range(1, 1000))) >> zip_.in0
            zip_.out >> bcast.in_
            bcast.out(0) >> b.add(Flow().take(10)) >> out
            if with_kick_off:
                concat = b.add(Concat())
                b.add(Source.single(0)) >> concat.in_(0)
                bcast.out(1) >> concat.in_(1)
                concat.out >> zip_.in1
            else:
                bcast.out(1) >> zip_.in1
            return ClosedShape

        live = GraphDSL.create(lambda b, o: bp(b, o, True), Sink.seq())
        assert await RunnableGraph.from_graph(live).run(materializer) == list(range(1, 11))

        dead = GraphDSL.create(lambda b, o: bp(b, o, False), TestSink.probe())
        probe = RunnableGraph.from_graph(dead).run(materializer)
        probe.request(1)
        await probe.expect_no_message(0.05)  # chicken-and-egg: nothing ever starts
        probe.cancel()


class TestMaterializedValue:
    """``b.materialized_value`` (Akka's ``builder.materializedValue``): an outlet emitting
    the graph's materialized value once per materialization."""

    async def test_a_flow_emits_the_fold_it_imports(self) -> None:
        # Akka's docs example: a flow whose output is its own fold's result.
        def blueprint(b: Any, fold: Any) -> FlowShape:
            result = b.materialized_value >> b.add(Flow().map_async(4, lambda f: f))
            return FlowShape(fold.in_, result.out)

        folding = Flow.from_graph(GraphDSL.create(blueprint, Sink.fold(0, lambda acc, x: acc + x)))
        assert await Source.from_iterable(range(5)).via(folding).run_with(Sink.seq()) == [10]
        # each materialization its own value
        assert await Source.from_iterable([7, 8]).via(folding).run_with(Sink.seq()) == [15]

    async def test_each_use_is_a_source_of_the_combined_value(self) -> None:
        def blueprint(b: Any, q1: Any, q2: Any) -> SourceShape:
            merge = b.add(Merge(4))
            q1.out >> merge
            q2.out >> merge
            b.materialized_value >> merge
            b.materialized_value >> merge
            return SourceShape(merge.out)

        graph = GraphDSL.create(
            blueprint, Source.single(1), Source.single(2), combine=lambda a, b: "mat"
        )
        mat, seq = Source.from_graph(graph).to_mat(Sink.seq(), Keep.both).run()
        assert mat == "mat"
        assert sorted(map(str, await seq)) == ["1", "2", "mat", "mat"]

    async def test_without_imported_graphs_it_is_not_used(self) -> None:
        graph = GraphDSL.create(lambda b: SourceShape(b.materialized_value))
        assert await Source.from_graph(graph).run_with(Sink.seq()) == [NotUsed]

    async def test_a_none_value_fails_the_source_instead_of_vanishing(self) -> None:
        def blueprint(b: Any, one: Any) -> SourceShape:
            merge = b.add(Concat(2))
            one.out >> merge
            b.materialized_value >> merge
            return SourceShape(merge.out)

        graph = GraphDSL.create(blueprint, Source.single(1), combine=lambda _: None)
        with pytest.raises(TypeError, match="materialized value is None"):
            await Source.from_graph(graph).run_with(Sink.seq())

    def test_an_unconnected_use_is_a_dangling_port(self) -> None:
        def blueprint(b: Any, sink: Any) -> Any:
            b.materialized_value  # noqa: B018 - adds a source whose outlet is left free
            b.add(Source.single(1)).out >> sink.in_
            return ClosedShape

        with pytest.raises(IllegalGraphError, match="materialized_value"):
            GraphDSL.create(blueprint, Sink.ignore())

    def test_not_after_the_blueprint(self) -> None:
        kept: list[Any] = []

        def blueprint(b: Any) -> Any:
            kept.append(b)
            return SourceShape(b.add(Source.single(1)).out)

        GraphDSL.create(blueprint)
        with pytest.raises(IllegalGraphError, match="finished"):
            kept[0].materialized_value  # noqa: B018
