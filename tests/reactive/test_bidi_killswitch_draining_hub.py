"""``KillSwitches.single_bidi()`` (Akka's ``singleBidi``: one ``UniqueKillSwitch`` stopping
both directions of a BidiFlow) and ``MergeHub.source_with_draining()`` (Akka's
``sourceWithDraining``: ``drain_and_complete()`` refuses new producers and completes once
the attached ones finished)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    BidiFlow,
    ClosedShape,
    Flow,
    GraphDSL,
    Keep,
    KillSwitches,
    Materializer,
    MergeHub,
    RunnableGraph,
    Sink,
    Source,
    UniqueKillSwitch,
)
from reactive.stage import BidiShape
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A test failure."""


# -- KillSwitches.single_bidi ------------------------------------------------------------------
def _probed_switch() -> RunnableGraph[Any]:
    """A bidi kill switch with a probe at each of its four ports; mat value
    ``(switch, src1, sink1, src2, sink2)``."""

    def blueprint(b: Any, ks: Any, src1: Any, sink1: Any, src2: Any, sink2: Any) -> Any:
        assert isinstance(ks, BidiShape)
        src1.out >> ks.in1
        ks.out1 >> sink1.in_
        src2.out >> ks.in2
        ks.out2 >> sink2.in_
        return ClosedShape

    return RunnableGraph.from_graph(
        GraphDSL.create(
            blueprint,
            KillSwitches.single_bidi(),
            TestSource.probe(),
            TestSink.probe(),
            TestSource.probe(),
            TestSink.probe(),
        )
    )


async def test_single_bidi_passes_both_directions(materializer: Materializer) -> None:
    switch, src1, sink1, src2, sink2 = _probed_switch().run(materializer)
    assert isinstance(switch, UniqueKillSwitch)
    sink1.request(1)
    sink2.request(1)
    src1.send_next("out")
    src2.send_next("in")
    await sink1.expect_next("out")
    await sink2.expect_next("in")
    src1.send_complete()
    src2.send_complete()
    await sink1.expect_complete()
    await sink2.expect_complete()


async def test_single_bidi_shutdown_stops_both_directions(materializer: Materializer) -> None:
    switch, src1, sink1, src2, sink2 = _probed_switch().run(materializer)
    sink1.request(1)
    sink2.request(1)
    src1.send_next(1)
    await sink1.expect_next(1)
    switch.shutdown()
    await sink1.expect_complete()
    await sink2.expect_complete()
    await src1.expect_cancellation()
    await src2.expect_cancellation()


async def test_single_bidi_abort_fails_both_directions(materializer: Materializer) -> None:
    switch, src1, sink1, src2, sink2 = _probed_switch().run(materializer)
    boom = Boom("cut")
    switch.abort(boom)
    assert await sink1.expect_error() is boom
    assert await sink2.expect_error() is boom
    await src1.expect_cancellation()
    await src2.expect_cancellation()


async def test_single_bidi_directions_end_independently(materializer: Materializer) -> None:
    switch, src1, sink1, src2, sink2 = _probed_switch().run(materializer)
    sink1.request(3)
    sink2.request(3)
    src1.send_complete()
    await sink1.expect_complete()
    src2.send_next("still")
    await sink2.expect_next("still")  # the other direction runs on
    sink2.cancel()
    await src2.expect_cancellation()
    switch.shutdown()  # the stage has stopped: nothing more to do
    await sink1.expect_no_message(0.02)


async def test_single_bidi_joined_with_a_flow(materializer: Materializer) -> None:
    # the common recipe: a kill switch around a connection (here an echo flow)
    bidi = KillSwitches.single_bidi().atop(BidiFlow.identity())
    switch, probe = (
        Source.never()
        .merge(Source.from_iterable([1, 2]))
        .via_mat(bidi.join(Flow().map(lambda x: x * 10)), Keep.right)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    assert await probe.request_next() == 10
    assert await probe.request_next() == 20
    switch.shutdown()
    await probe.expect_complete()


# -- MergeHub.source_with_draining ---------------------------------------------------------------
async def test_draining_hub_completes_after_attached_producers(
    materializer: Materializer,
) -> None:
    (sink, control), out = (
        MergeHub.source_with_draining(4).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    assert isinstance(control, MergeHub.DrainingControl)
    p1 = TestSource.probe().to(sink).run(materializer)
    out.request(10)
    p1.send_next(1)
    assert await out.expect_next() == 1
    control.drain_and_complete()
    # a producer attaching while draining is cancelled at once
    late = TestSource.probe().to(sink).run(materializer)
    await late.expect_cancellation()
    # the attached producer goes on
    p1.send_next(2).send_next(3)
    assert await out.expect_next_n(2) == [2, 3]
    await out.expect_no_message(0.02)
    p1.send_complete()
    await out.expect_complete()


async def test_draining_with_no_producer_completes_at_once(materializer: Materializer) -> None:
    (_sink, control), out = (
        MergeHub.source_with_draining().to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    control.drain_and_complete()
    control.drain_and_complete()  # a second call does nothing
    await out.expect_subscription_and_complete()


async def test_draining_emits_buffered_elements_before_completing(
    materializer: Materializer,
) -> None:
    (sink, control), out = (
        MergeHub.source_with_draining(8).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    # a finished producer whose elements wait in the hub (nothing requested yet)
    Source.from_iterable([1, 2, 3]).run_with(sink, materializer)
    p2 = TestSource.probe().to(sink).run(materializer)
    await p2.expect_request()
    control.drain_and_complete()
    p2.send_error(Boom("producer"))  # a failed producer just detaches
    assert await out.to_strict(3.0) == [1, 2, 3]


async def test_draining_waits_for_every_attached_producer(materializer: Materializer) -> None:
    (sink, control), out = (
        MergeHub.source_with_draining().to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    p1 = TestSource.probe().to(sink).run(materializer)
    p2 = TestSource.probe().to(sink).run(materializer)
    await p1.ensure_subscription()
    await p2.ensure_subscription()
    control.drain_and_complete()
    out.request(5)
    p1.send_next("a").send_complete()
    assert await out.expect_next() == "a"
    await out.expect_no_message(0.02)  # p2 is still attached
    p2.send_next("b").send_complete()
    assert await out.expect_next() == "b"
    await out.expect_complete()


async def test_draining_hub_cancelled_downstream_cancels_producers(
    materializer: Materializer,
) -> None:
    (sink, _control), out = (
        MergeHub.source_with_draining().to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    p1 = TestSource.probe().to(sink).run(materializer)
    await p1.ensure_subscription()
    out.cancel()
    await p1.expect_cancellation()


def test_source_with_draining_checks_its_argument() -> None:
    with pytest.raises(ValueError, match=r"MergeHub.source_with_draining\(per_producer_buffer"):
        MergeHub.source_with_draining(0)
    with pytest.raises(TypeError, match="source_with_draining"):
        MergeHub.source_with_draining("8")  # type: ignore[arg-type]


async def test_plain_source_still_materializes_a_sink(materializer: Materializer) -> None:
    sink, out = MergeHub.source().to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert isinstance(sink, Sink)
    Source.single(1).run_with(sink, materializer)
    assert await out.request_next() == 1
    out.cancel()


async def test_a_producer_run_before_the_drain_but_not_started_yet_goes_on(
    materializer: Materializer,
) -> None:
    # run() returned: its user sees it attached, though its stream starts a few loop
    # turns later. It was refused (and its elements lost) when the drain came first.
    (sink, control), out = (
        MergeHub.source_with_draining().to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    Source.from_iterable([1, 2, 3]).run_with(sink, materializer)
    control.drain_and_complete()
    assert await asyncio.wait_for(out, 3.0) == [1, 2, 3]


async def test_a_drain_does_not_wait_for_a_producer_that_never_starts(
    materializer: Materializer,
) -> None:
    # Its graph failed to materialize (after its logic was made), or its materializer
    # shut down before it started: the drain waited for it forever.
    (sink, control), out = (
        MergeHub.source_with_draining().to_mat(Sink.seq(), Keep.both).run(materializer)
    )

    def broken(_: Any) -> Any:
        raise Boom("materialization")

    with pytest.raises(Boom):
        Source.single(1).to_mat(sink, Keep.right).map_materialized_value(broken).run(materializer)
    other = Materializer()
    Source.single(2).run_with(sink, other)
    await other.shutdown()
    control.drain_and_complete()
    assert await asyncio.wait_for(out, 3.0) == []
