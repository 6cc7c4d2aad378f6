"""Specs of buffer (every OverflowStrategy), detach, watch_termination, monitor and the
kill switches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    BufferOverflowError,
    Done,
    FlowMonitorState,
    Keep,
    KillSwitches,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource

OS = OverflowStrategy


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def probes(flow_of: Any, mat: Materializer) -> tuple[Any, Any]:
    """(publisher probe, subscriber probe) around ``flow_of(TestSource.probe())``."""
    return flow_of(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)  # type: ignore[no-any-return]


async def fill(pub: Any, xs: list[Any]) -> None:
    """Send ``xs`` as fast as the stage pulls (each only after a request)."""
    for x in xs:
        await pub.expect_request()
        pub.send_next(x)
    await settle()


# -- buffer --------------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", list(OS), ids=[s.value for s in OS])
async def test_buffer_passes_everything_when_not_full(
    materializer: Materializer, strategy: OverflowStrategy
) -> None:
    out = (
        await Source.from_iterable(range(100))
        .buffer(200, strategy)
        .run_with(Sink.seq(), materializer)
    )
    assert out == list(range(100))


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (OS.drop_head, [3, 4, 5]),
        (OS.drop_tail, [1, 2, 5]),
        (OS.drop_buffer, [4, 5]),
        (OS.drop_new, [1, 2, 3]),
    ],
    ids=["drop_head", "drop_tail", "drop_buffer", "drop_new"],
)
async def test_buffer_dropping_strategies(
    materializer: Materializer, strategy: OverflowStrategy, expected: list[int]
) -> None:
    pub, sub = probes(lambda s: s.buffer(3, strategy), materializer)
    await fill(pub, [1, 2, 3, 4, 5])
    await pub.expect_request()  # a dropping buffer keeps pulling when full
    pub.send_complete()
    assert await sub.to_list() == expected


async def test_buffer_backpressure_stops_pulling_when_full(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(3, OS.backpressure), materializer)
    await fill(pub, [1, 2, 3])
    await settle()
    assert pub.pending_demand == 3  # full: no fourth pull
    await sub.request_next(1)
    await pub.expect_request()
    pub.send_next(4).send_complete()
    assert await sub.to_list() == [2, 3, 4]


async def test_buffer_fail_strategy(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(2, OS.fail), materializer)
    await fill(pub, [1, 2])
    await pub.expect_request()
    pub.send_next(3)
    err = await sub.expect_error()
    assert isinstance(err, BufferOverflowError)
    assert "2" in str(err)
    await pub.expect_cancellation()


async def test_buffer_completes_after_draining(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(4, OS.backpressure), materializer)
    await fill(pub, [1, 2])
    pub.send_complete()
    await settle()
    await sub.expect_no_message(0)
    await sub.request_next(1)
    await sub.request_next(2)
    await sub.expect_complete()


async def test_buffer_failure_overtakes_buffered_elements(materializer: Materializer) -> None:
    err = Boom("up")
    pub, sub = probes(lambda s: s.buffer(4, OS.backpressure), materializer)
    await fill(pub, [1, 2])
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_buffer_cancel_propagates(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(4, OS.drop_head), materializer)
    await fill(pub, [1])
    sub.cancel()
    await pub.expect_cancellation()


async def test_buffer_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="size"):
        Source.single(1).buffer(0, OS.backpressure)
    with pytest.raises(TypeError):
        Source.single(1).buffer(1, "backpressure")


# -- detach ----------------------------------------------------------------------------------
async def test_detach_holds_one_element_ahead(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.detach(), materializer)
    await pub.expect_request()
    pub.send_next(1)
    await settle()
    assert pub.pending_demand == 1  # one element held, no further pull
    await sub.request_next(1)
    await pub.expect_request()
    pub.send_next(2).send_complete()
    assert await sub.to_list() == [2]


async def test_detach_elements(materializer: Materializer) -> None:
    assert await Source.from_iterable(range(10)).detach().run_with(
        Sink.seq(), materializer
    ) == list(range(10))


# -- watch_termination ---------------------------------------------------------------------
async def test_watch_termination_completion(materializer: Materializer) -> None:
    done, out = (
        Source.from_iterable([1, 2])
        .watch_termination(Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await out == [1, 2]
    assert await done is Done


async def test_watch_termination_failure(materializer: Materializer) -> None:
    err = Boom("up")
    done, out = (
        Source.failed(err)
        .watch_termination(Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    with pytest.raises(Boom):
        await out
    with pytest.raises(Boom) as info:
        await done
    assert info.value is err


async def test_watch_termination_downstream_cancel(materializer: Materializer) -> None:
    (pub, done), sub = (
        TestSource.probe()
        .watch_termination(Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    await pub.expect_request()
    assert not done.done()
    sub.cancel()
    await pub.expect_cancellation()
    assert await done is Done


async def test_watch_termination_passes_elements_with_demand(materializer: Materializer) -> None:
    (pub, done), sub = (
        TestSource.probe()
        .watch_termination(Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    await settle()
    assert pub.pending_demand == 0
    sub.request(1)
    await pub.expect_request()
    pub.send_next("a")
    await sub.expect_next("a")
    pub.send_complete()
    await sub.expect_complete()
    assert await done is Done


async def test_watch_termination_on_abrupt_shutdown() -> None:
    mat = Materializer()
    done = Source.never().watch_termination(Keep.right).to(Sink.ignore()).run(mat)
    await settle()
    await mat.shutdown()
    from reactive import AbruptTerminationError

    with pytest.raises(AbruptTerminationError):
        await done


# -- monitor -------------------------------------------------------------------------------------
async def test_monitor_states(materializer: Materializer) -> None:
    (pub, mon), sub = (
        TestSource.probe().monitor(Keep.both).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    assert mon.state is FlowMonitorState.initialized
    sub.request(1)
    pub.send_next("x")
    await sub.expect_next("x")
    assert mon.state is FlowMonitorState.received
    assert mon.element == "x"
    pub.send_complete()
    await sub.expect_complete()
    assert mon.state is FlowMonitorState.finished


async def test_monitor_failure(materializer: Materializer) -> None:
    err = Boom("up")
    (pub, mon), sub = (
        TestSource.probe().monitor(Keep.both).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    sub.request(1)
    pub.send_error(err)
    await sub.expect_error()
    assert mon.state is FlowMonitorState.failed
    assert mon.error is err


async def test_monitor_cancel(materializer: Materializer) -> None:
    (pub, mon), sub = (
        TestSource.probe().monitor(Keep.both).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    sub.cancel()
    await pub.expect_cancellation()
    assert mon.state is FlowMonitorState.finished


# -- kill switches --------------------------------------------------------------------------------
async def test_unique_kill_switch_shutdown(materializer: Materializer) -> None:
    (pub, ks), sub = (
        TestSource.probe()
        .via_mat(KillSwitches.single(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    ks.shutdown()
    await sub.expect_complete()
    await pub.expect_cancellation()


async def test_unique_kill_switch_abort(materializer: Materializer) -> None:
    err = Boom("kill")
    (pub, ks), sub = (
        TestSource.probe()
        .via_mat(KillSwitches.single(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    ks.abort(err)
    assert await sub.expect_error() is err
    await pub.expect_cancellation()


async def test_kill_switch_after_termination_is_noop(materializer: Materializer) -> None:
    ks, out = (
        Source.from_iterable([1, 2])
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await out == [1, 2]
    ks.shutdown()
    ks.abort(Boom("late"))
    await settle()


async def test_kill_switch_passes_elements_and_failures(materializer: Materializer) -> None:
    err = Boom("up")
    out = Source.failed(err).via(KillSwitches.single()).run_with(Sink.seq(), materializer)
    with pytest.raises(Boom):
        await out
    probe = (
        Source.from_iterable([1, 2])
        .via(KillSwitches.single())
        .run_with(TestSink.probe(), materializer)
    )
    await probe.request_next(1)
    await probe.request_next(2)
    await probe.expect_complete()


async def test_shared_kill_switch_stops_every_stream(materializer: Materializer) -> None:
    shared = KillSwitches.shared("both")
    f1 = Source.never().via(shared.flow()).run_with(Sink.seq(), materializer)
    f2 = Source.repeat(1).via(shared.flow()).run_with(Sink.ignore(), materializer)
    await settle()
    assert not f1.done() and not f2.done()
    shared.shutdown()
    assert await f1 == []
    assert await f2 is Done


async def test_shared_kill_switch_abort_and_late_materialization(
    materializer: Materializer,
) -> None:
    shared = KillSwitches.shared("abort")
    err = Boom("abort")
    f1 = Source.never().via(shared.flow()).run_with(Sink.seq(), materializer)
    await settle()
    shared.abort(err)
    with pytest.raises(Boom):
        await f1
    # a stream materialized after the switch fired stops at once
    f2 = Source.never().via(shared.flow()).run_with(Sink.seq(), materializer)
    with pytest.raises(Boom):
        await f2


async def test_shared_kill_switch_flow_materializes_the_switch(materializer: Materializer) -> None:
    shared = KillSwitches.shared("mat")
    ks, out = (
        Source.single(1)
        .via_mat(shared.flow(), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert ks is shared
    assert await out == [1]
