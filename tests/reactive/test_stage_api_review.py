"""Custom-stage API defects an exploratory review found (a user writing stages as Akka's
"Custom stream processing" documents), each checked on both paths.

- ``pass_along(from_, to, do_finish, do_fail)``: ``from_`` finishing (failing) completes
  (fails) the *stage*, as Akka's ``PassAlongHandler`` does (``completeStage()`` /
  ``failStage(ex)``); before, only ``to`` was closed and the stage's other inlets were
  never cancelled.
- A shape class of the user's own keeps its named ports through ``b.add``.
- Authoring mistakes say what is wrong: an ``OutHandler`` set on an inlet (refused by
  ``set_handler``, not an ``AttributeError`` at the first element), a
  ``create_logic_and_materialized_value`` returning only the logic, a stage without a
  shape.
- A normal cancellation's cause (``NoMoreElementsNeeded``) reaches upstream as it is, as
  Akka's ``cancelStage(cause)`` passes it on; before, every stage replaced it with
  ``StageWasCompleted``.
"""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    ClosedShape,
    Flow,
    GraphDSL,
    IllegalGraphError,
    Keep,
    Materializer,
    RunnableGraph,
    Sink,
    Source,
)
from reactive.stage import (
    EAGER_TERMINATE_INPUT,
    IGNORE_TERMINATE_INPUT,
    FanInShape2,
    FlowShape,
    GraphStage,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    NoMoreElementsNeeded,
    OutHandler,
    Outlet,
    Shape,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import OneByOne


class _Forward(GraphStage[FanInShape2]):
    """``data`` passed along to ``out``; ``ctl`` a control inlet the stage keeps reading."""

    def __init__(self, do_finish: bool = True, do_fail: bool = True) -> None:
        self.shape = FanInShape2(Inlet("Fwd.data"), Inlet("Fwd.ctl"), Outlet("Fwd.out"))
        self.do_finish = do_finish
        self.do_fail = do_fail

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        s = self.shape
        stage = self

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(s)
                self.set_handler(s.out, self)
                self.set_handler(s.in0, EAGER_TERMINATE_INPUT)
                self.set_handler(s.in1, self)

            def pre_start(self) -> None:
                self.pass_along(s.in0, s.out, stage.do_finish, stage.do_fail, do_pull=True)
                self.pull(s.in1)

            def on_pull(self) -> None:
                pass

            def on_push(self) -> None:
                self.grab(s.in1)
                self.pull(s.in1)

        return Logic()


def _graph(stage: _Forward) -> Any:
    def blueprint(b: Any, data: Any, ctl: Any, sink: Any) -> Any:
        f = b.add(stage)
        data.out >> f.in0
        ctl.out >> f.in1
        f.out >> sink.in_
        return ClosedShape

    probes = (TestSource.probe(), TestSource.probe(), TestSink.probe())
    return RunnableGraph.from_graph(GraphDSL.create(blueprint, *probes))


@pytest.mark.parametrize("fast", [True, False])
async def test_pass_along_finishing_completes_the_stage(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        data, ctl, sink = _graph(_Forward()).run(mat)
        sink.request(5)
        data.send_next(1)
        await sink.expect_next(1)
        data.send_complete()
        await sink.expect_complete()
        await ctl.expect_cancellation()


@pytest.mark.parametrize("fast", [True, False])
async def test_pass_along_failing_fails_the_stage(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        data, ctl, sink = _graph(_Forward()).run(mat)
        sink.request(5)
        data.send_error(ValueError("data failed"))
        err = await sink.expect_error()
        assert isinstance(err, ValueError)
        await ctl.expect_cancellation()


@pytest.mark.parametrize("fast", [True, False])
async def test_pass_along_without_do_finish_leaves_the_stage_running(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        data, ctl, sink = _graph(_Forward(do_finish=False)).run(mat)
        sink.request(5)
        data.send_complete()
        await sink.expect_no_message(0.05)
        ctl.send_next(7)  # still read: the stage runs on
        await ctl.expect_request()
        sink.cancel()
        await ctl.expect_cancellation()


class _Cause(NoMoreElementsNeeded):
    """A normal cancellation cause of the test's own."""


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("via", ["custom", "map", "map+filter"])
async def test_a_normal_cancellation_cause_reaches_upstream_as_it_is(fast: bool, via: str) -> None:
    flows = {
        "custom": Flow.from_graph(OneByOne()),
        "map": Flow().map(lambda x: x),
        "map+filter": Flow().map(lambda x: x).filter(lambda x: True),
    }
    async with Materializer(fast_paths=fast) as mat:
        src, sink = TestSource.probe().via(flows[via]).to_mat(TestSink.probe(), Keep.both).run(mat)
        sink.request(1)
        src.send_next(1)
        await sink.expect_next(1)
        sink.cancel()
        assert isinstance(await src.expect_cancellation(), NoMoreElementsNeeded)
        src2, sink2 = (
            TestSource.probe().via(flows[via]).to_mat(TestSink.probe(), Keep.both).run(mat)
        )
        cause = _Cause("done here")
        sink2.cancel(cause)
        assert await src2.expect_cancellation() is cause


class PairShape(Shape):
    """A shape of the user's own with named ports (Akka's custom-shape pattern), not
    overriding ``copy_from_ports``: before, ``b.add`` returned a plain ``Shape`` and the
    names were gone (``AttributeError: 'Shape' object has no attribute 'left'``)."""

    def __init__(self, left: Inlet[int], right: Inlet[int], out: Outlet[int]) -> None:
        super().__init__((left, right), (out,))
        self.left = left
        self.right = right
        self.out = out
        self.both = [left, right]


class _SumPairs(GraphStage[PairShape]):
    """Emits left + right of each pair of elements."""

    def __init__(self) -> None:
        self.shape = PairShape(Inlet("Sum.left"), Inlet("Sum.right"), Outlet("Sum.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        s = self.shape

        class Logic(GraphStageLogic, OutHandler):
            def __init__(self) -> None:
                super().__init__(s)
                self.set_handler(s.out, self)
                for i in s.both:
                    self.set_handler(i, IGNORE_TERMINATE_INPUT)

            def on_pull(self) -> None:
                self.read(
                    s.left,
                    lambda a: self.read(
                        s.right, lambda b: self.push(s.out, a + b), self.complete_stage
                    ),
                    self.complete_stage,
                )

        return Logic()


@pytest.mark.parametrize("fast", [True, False])
async def test_a_custom_shape_keeps_its_named_ports_in_graph_dsl(fast: bool) -> None:
    def blueprint(b: Any, sink: Any) -> Any:
        pair = b.add(_SumPairs())
        assert type(pair) is PairShape
        assert pair.both == [pair.left, pair.right]
        b.add(Source.from_iterable([1, 2, 3])).out >> pair.left
        b.add(Source.from_iterable([10, 20, 30])).out >> pair.right
        pair.out >> sink.in_
        return ClosedShape

    async with Materializer(fast_paths=fast) as mat:
        got = await RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq())).run(mat)
    assert got == [11, 22, 33]


# -- authoring mistakes say what is wrong ------------------------------------------------
class _OutOnIn(GraphStage[FlowShape]):
    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("H.in"), Outlet("H.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        logic = GraphStageLogic(self.shape)

        class Out(OutHandler):
            def on_pull(self) -> None:
                pass

        logic.set_handler(self.shape.in_, Out())  # an OutHandler on the inlet
        return logic


class _LogicOnly(GraphStageWithMaterializedValue[FlowShape, Any]):
    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("L.in"), Outlet("L.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> Any:
        return OneByOne().create_logic(attributes)  # forgot the materialized value


class _NoShape(GraphStage[FlowShape]):
    def create_logic(self, attributes: Any) -> GraphStageLogic:  # pragma: no cover
        raise AssertionError


async def test_an_out_handler_set_on_an_inlet_is_refused_at_once() -> None:
    with pytest.raises(TypeError, match=r"the handler for inlet 'H.in' has no on_push"):
        await Source.single(1).via(Flow.from_graph(_OutOnIn())).run_with(Sink.seq())


async def test_a_logic_without_its_materialized_value_is_named() -> None:
    with pytest.raises(IllegalGraphError, match=r"_LogicOnly.create_logic_and_materialized_value"):
        await Source.single(1).via(Flow.from_graph(_LogicOnly())).run_with(Sink.seq())


def test_a_stage_without_a_shape_is_named() -> None:
    with pytest.raises(IllegalGraphError, match=r"_NoShape has no shape: a GraphStage sets"):
        Flow.from_graph(_NoShape())
