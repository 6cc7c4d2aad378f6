"""Review 3, defect 4: a ``Sink.as_publisher`` publisher nobody subscribes to within the
subscription timeout (default 5 s, Akka's ``subscription-timeout`` in ``cancel`` mode)
cancels its stream with ``SubscriptionTimeoutError``; a later subscriber gets that error.
The timeout runs on the materializer's clock: driven here with ``ManualClock``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Keep, Materializer, Sink, Source, SubscriptionTimeoutError
from reactive._ops.rs_interop import PublisherSink
from reactive.testkit import ManualClock, TestSource


class _Recorder:
    """A Reactive Streams subscriber recording its signals; requests ``n`` at subscribe."""

    def __init__(self, n: int = 100) -> None:
        self.n = n
        self.events: list[Any] = []

    def on_subscribe(self, s: Any) -> None:
        self.events.append("subscribe")
        s.request(self.n)

    def on_next(self, x: Any) -> None:
        self.events.append(x)

    def on_error(self, exc: BaseException) -> None:
        self.events.append(exc)

    def on_complete(self) -> None:
        self.events.append("complete")


async def _turns(n: int = 10) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _publisher_sink(fanout: bool, timeout: float | None) -> Sink[Any, Any]:
    return Sink.as_publisher(fanout, subscription_timeout=timeout)


@pytest.mark.parametrize("fanout", [False, True])
async def test_unsubscribed_publisher_cancels_after_default_timeout(
    fanout: bool, manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, pub = TestSource.probe().to_mat(Sink.as_publisher(fanout), Keep.both).run(materializer)
    await manual_clock.advance(4.9)
    await up.expect_no_message(0.01)
    await manual_clock.advance(0.2)
    cause = await up.expect_cancellation()
    assert isinstance(cause, SubscriptionTimeoutError)
    assert "Sink.as_publisher" in str(cause) and "5.0 s" in str(cause)
    late = _Recorder()
    pub.subscribe(late)
    await _turns()
    assert late.events[0] == "subscribe"
    assert len(late.events) == 2 and isinstance(late.events[1], SubscriptionTimeoutError)


@pytest.mark.parametrize("fanout", [False, True])
async def test_subscribed_in_time_never_times_out(
    fanout: bool, manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, pub = TestSource.probe().to_mat(Sink.as_publisher(fanout), Keep.both).run(materializer)
    await manual_clock.advance(4.0)
    sub = _Recorder()
    pub.subscribe(sub)
    await manual_clock.advance(60.0)
    assert await up.expect_request() >= 1  # the subscriber's demand, no cancellation
    up.send_next(1)
    up.send_complete()
    await _turns()
    assert sub.events == ["subscribe", 1, "complete"]


async def test_custom_subscription_timeout(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, _ = TestSource.probe().to_mat(_publisher_sink(False, 1.5), Keep.both).run(materializer)
    await manual_clock.advance(1.4)
    await up.expect_no_message(0.01)
    await manual_clock.advance(0.2)
    cause = await up.expect_cancellation()
    assert isinstance(cause, SubscriptionTimeoutError)
    assert "1.5 s" in str(cause)


async def test_none_disables_the_timeout(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, pub = TestSource.probe().to_mat(_publisher_sink(True, None), Keep.both).run(materializer)
    await manual_clock.advance(3600.0)
    await up.expect_no_message(0.01)  # still waiting for a subscriber
    out = Source.from_publisher(pub).run_with(Sink.seq(), materializer)
    assert await up.expect_request() >= 1
    up.send_next("a")
    up.send_complete()
    assert await asyncio.wait_for(out, 1) == ["a"]


async def test_stream_ended_before_the_timeout_keeps_its_own_end(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    pub = Source.empty().run_with(Sink.as_publisher(), materializer)
    await manual_clock.advance(10.0)
    late = _Recorder()
    pub.subscribe(late)
    await _turns()
    assert late.events == ["subscribe", "complete"]


async def test_watch_termination_sees_the_timeout(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    done = (
        Source.from_iterable(range(3))
        .watch_termination(Keep.right)
        .to_mat(Sink.as_publisher(), Keep.left)
        .run(materializer)
    )
    await manual_clock.advance(5.1)
    with pytest.raises(SubscriptionTimeoutError, match="no subscriber"):
        await asyncio.wait_for(done, 1)


async def test_pre_materialize_run_in_time_sees_the_elements(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    up, src = TestSource.probe().pre_materialize(materializer)
    await manual_clock.advance(4.0)
    out = src.run_with(Sink.seq(), materializer)
    await manual_clock.advance(60.0)
    assert await up.expect_request() >= 1
    up.send_next(1)
    up.send_next(2)
    up.send_complete()
    assert await asyncio.wait_for(out, 1) == [1, 2]


async def test_pre_materialize_waits_for_its_first_run_past_the_timeout(
    manual_clock: ManualClock, materializer: Materializer
) -> None:
    # Its docstring promises nothing is dropped until a run subscribes, however late.
    up, src = TestSource.probe().pre_materialize(materializer)
    await manual_clock.advance(60.0)
    await up.expect_no_message(0.01)  # not cancelled
    out = src.run_with(Sink.seq(), materializer)
    assert await up.expect_request() >= 1
    up.send_next(1)
    up.send_complete()
    assert await asyncio.wait_for(out, 1) == [1]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_out_of_range_subscription_timeout_is_refused(bad: float) -> None:
    with pytest.raises(ValueError, match=r"Sink\.as_publisher: subscription_timeout"):
        PublisherSink(False, None, subscription_timeout=bad)


@pytest.mark.parametrize("bad", ["5", True])
def test_non_number_subscription_timeout_is_refused(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"Sink\.as_publisher: subscription_timeout"):
        PublisherSink(False, None, subscription_timeout=bad)
