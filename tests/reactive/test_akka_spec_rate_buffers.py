"""Second-pass acceptance cases from Akka's / Pekko's FlowBufferSpec and FlowDetachSpec
(the conflate/batch/expand ones are in tests/reactive/ops/test_rate.py).

Only the cases test_buffers_watch_killswitch and test_akka_spec_ops do not already pin
down: buffers of size one, ``fail`` after partial drain. Everything runs through the
public API; timed silence runs on the ``manual_clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    BufferOverflowError,
    Keep,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
)
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


class Boom(Exception):
    """A user-function or upstream failure (Akka's ``TE``)."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def quiet_for(clock: ManualClock, seconds: float, *probes: Any) -> None:
    """Akka's ``expectNoMessage(seconds)`` on the manual clock."""
    await clock.advance(seconds)
    await clock.settle()
    for p in probes:
        await p.expect_no_message(0)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


# -- FlowBufferSpec ----------------------------------------------------------------------------
async def test_buffer_backpressured_mode_passes_everything(materializer: Materializer) -> None:
    for size in (100, 1):
        out = await (
            Source.from_iterable(range(1, 1001))
            .buffer(size, OverflowStrategy.backpressure)
            .run_with(Sink.seq(), materializer)
        )
        assert out == list(range(1, 1001))


@pytest.mark.parametrize(
    "strategy",
    [OverflowStrategy.drop_head, OverflowStrategy.drop_tail, OverflowStrategy.drop_buffer],
    ids=["drop_head", "drop_tail", "drop_buffer"],
)
async def test_buffer_of_size_one_keeps_the_newest(
    materializer: Materializer, manual_clock: ManualClock, strategy: OverflowStrategy
) -> None:
    pub, sub = probes(lambda s: s.buffer(1, strategy), materializer)
    for i in range(1, 201):
        pub.send_next(i)
    await quiet_for(manual_clock, 0.5, sub)
    sub.request(1)
    await sub.expect_next(200)
    sub.request(1)
    await quiet_for(manual_clock, 1.0, sub)
    pub.send_next(-1)
    sub.request(1)
    await sub.expect_next(-1)
    sub.cancel()
    await pub.expect_cancellation()


async def test_buffer_of_size_one_drop_new_keeps_the_oldest(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.buffer(1, OverflowStrategy.drop_new), materializer)
    for i in range(1, 201):
        pub.send_next(i)
    await quiet_for(manual_clock, 0.5, sub)
    assert pub.pending_demand == 201  # (total pulls) dropping buffers keep pulling
    sub.request(1)
    await sub.expect_next(1)
    sub.request(1)
    await quiet_for(manual_clock, 1.0, sub)
    pub.send_next(-1)
    await sub.expect_next(-1)
    sub.cancel()


async def test_buffer_fail_after_partial_drain(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(100, OverflowStrategy.fail), materializer)
    for i in range(1, 101):
        pub.send_next(i)
    await settle()
    for i in range(1, 11):
        sub.request(1)
        await sub.expect_next(i)
    for i in range(101, 111):  # fills the buffer to 100 again: no failure yet
        pub.send_next(i)
    await settle()
    await sub.expect_no_message(0)
    pub.send_next(111)
    await pub.expect_cancellation()
    err = await sub.expect_error()
    assert isinstance(err, BufferOverflowError)
    assert "max capacity was" in str(err) and "100" in str(err)


async def test_buffer_pushes_directly_when_downstream_waits(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(1, OverflowStrategy.fail), materializer)
    sub.request(3)
    for i in (1, 2, 3):  # never buffered: no overflow although each follows at once
        pub.send_next(i)
    await sub.expect_next(1, 2, 3)
    pub.send_complete()
    await sub.expect_complete()


# -- FlowDetachSpec ----------------------------------------------------------------------------
async def test_detach_emits_the_last_element_when_completed(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.detach(), materializer)
    sub.request(1)
    pub.send_next(42)
    await sub.expect_next(42)
    pub.send_next(43).send_complete()
    await settle()
    await sub.expect_no_message(0)
    sub.request(1)
    await sub.expect_next(43)
    await sub.expect_complete()


async def test_detach_pulls_eagerly_before_downstream_demand(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.detach(), materializer)
    assert await pub.expect_request() == 1  # no downstream request yet
    pub.send_next(1)
    await settle()
    assert pub.pending_demand == 1  # total pulls: the held element is not followed by a pull
    sub.request(1)
    await sub.expect_next(1)
    sub.cancel()
    await pub.expect_cancellation()
