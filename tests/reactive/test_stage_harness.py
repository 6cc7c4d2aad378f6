"""The synchronous stage harness (reactive.testkit.harness): every call runs the island
to quiescence, so a test sees each stage's answer to each signal, in order."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import Attributes, Flow, PortStateError, Supervision
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)
from reactive.testkit.harness import (
    Cancel,
    OnComplete,
    OnError,
    OnNext,
    RequestOne,
    StageHarness,
)


class Boom(Exception):
    pass


async def test_map_answers_each_signal_in_order() -> None:
    h = StageHarness(Flow().map(lambda x: x * 2))
    assert h.events() == []
    h.request(1)
    assert h.events() == [RequestOne()]
    h.push(21)
    assert h.events() == [OnNext(42)]
    h.request(1)
    assert h.events() == [RequestOne()]
    h.complete()
    assert h.events() == [OnComplete()]
    assert h.finished


async def test_filter_pulls_again_after_a_dropped_element() -> None:
    h = StageHarness(Flow().filter(lambda x: x % 2 == 0)).request(1)
    assert h.events() == [RequestOne()]
    h.push(1)
    assert h.events() == [RequestOne()]  # dropped: the stage asks for the next one
    h.push(2)
    assert h.events() == [OnNext(2)]


async def test_take_completes_and_cancels_upstream_at_once() -> None:
    h = StageHarness(Flow().take(2)).request(5)
    h.push(1).push(2)
    # Akka's completeStage: inlets are cancelled first, then outlets completed.
    assert h.events() == [RequestOne(), OnNext(1), RequestOne(), OnNext(2), Cancel(), OnComplete()]
    assert h.finished


async def test_a_failing_function_fails_downstream_and_cancels_upstream() -> None:
    def f(x: int) -> int:
        raise Boom("bad element")

    h = StageHarness(Flow().map(f)).request(1)
    h.events()
    h.push(1)
    events = h.events()
    assert OnError(Boom("bad element")) in events
    assert any(isinstance(e, Cancel) for e in events)


async def test_resume_supervision_drops_the_element_and_pulls_again() -> None:
    def f(x: int) -> int:
        if x == 2:
            raise Boom("two")
        return x

    flow = (
        Flow()
        .map(f)
        .with_attributes(Attributes.supervision_strategy(lambda exc: Supervision.resume))
    )
    h = StageHarness(flow).request(2)
    h.push(1).push(2).push(3)
    assert h.events() == [RequestOne(), OnNext(1), RequestOne(), RequestOne(), OnNext(3)]


async def test_downstream_cancel_reaches_upstream_with_its_cause() -> None:
    h = StageHarness(Flow().map(lambda x: x)).request(1)
    h.events()
    h.cancel(Boom("stop"))
    assert h.events() == [Cancel(Boom("stop"))]


async def test_upstream_failure_reaches_downstream() -> None:
    h = StageHarness(Flow().map(lambda x: x)).request(1)
    h.events()
    h.fail(Boom("upstream"))
    assert h.events() == [OnError(Boom("upstream"))]


class _Duplicate(GraphStage[FlowShape]):
    """A custom stage: emits every element twice (emit_multiple)."""

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet("dup.in"), Outlet("dup.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        shape = self.shape

        class Logic(GraphStageLogic, InHandler, OutHandler):
            def __init__(self) -> None:
                super().__init__(shape)
                self.set_handlers(shape.in_, shape.out, self)

            def on_push(self) -> None:
                x = self.grab(shape.in_)
                self.emit_multiple(shape.out, [x, x])

            def on_pull(self) -> None:
                self.pull(shape.in_)

        return Logic()


async def test_a_custom_stage_is_driven_like_a_built_in_one() -> None:
    h = StageHarness(_Duplicate())
    h.request(1)
    assert h.events() == [RequestOne()]
    h.push("a")
    assert h.events() == [OnNext("a")]  # the second copy waits for demand
    h.request(1)
    assert h.events() == [OnNext("a")]
    h.complete()
    assert h.events() == [OnComplete()]


async def test_pushing_without_a_pull_is_an_error_naming_the_port() -> None:
    h = StageHarness(Flow().map(lambda x: x))
    with pytest.raises(PortStateError, match="StageHarness.upstream"):
        h.push(1)


async def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="StageHarness drives a Flow"):
        StageHarness(42)  # type: ignore[arg-type]
    h = StageHarness(Flow().map(lambda x: x))
    with pytest.raises(ValueError, match="n > 0"):
        h.request(0)
