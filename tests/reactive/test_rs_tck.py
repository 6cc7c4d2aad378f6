"""A Reactive Streams verification suite in the style of the reactive-streams TCK.

Publisher verification runs against ``Sink.as_publisher`` and ``Sink.from_subscriber``
(the stream acting as a publisher towards a foreign subscriber); subscriber verification
runs against ``Source.as_subscriber`` (and ``Source.from_publisher``). Each test is named
after the rule it checks (``test_rule_<major>_<minor>_...``).

Rules not tested here, and why:

- 1.3 partly: "serially" across threads cannot be violated on one thread; what remains
  (no signal re-entering another, ``on_subscribe`` first) is tested.
- 2.2 is a recommendation ("should") about processing off the publisher's thread; on
  one loop the stage callbacks already decouple processing, nothing to verify.
- 2.11 (happens-before of signal calls) is a memory-model rule; a single-threaded loop
  satisfies it trivially.
- 3.1 (``request``/``cancel`` only from the subscriber's context) is a rule on the
  caller; on one thread there is no other context to call from.
- 4.1, 4.2 concern Processors, which this package does not expose.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.rs import MAX_DEMAND, Publisher, Subscriber, Subscription, SubscriptionRejectedError
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# ---------------------------------------------------------------------------------------------
# A recording subscriber (publisher verification)
# ---------------------------------------------------------------------------------------------
class ManualSubscriber:
    """Records every signal and every rule it sees broken."""

    def __init__(
        self,
        request_on_subscribe: int = 0,
        request_on_next: int = 0,
        raise_on_next: BaseException | None = None,
    ) -> None:
        self.subscription: Any = None
        self.elements: list[Any] = []
        self.completed = False
        self.error: BaseException | None = None
        self.requested = 0
        self.violations: list[str] = []
        self.in_signal = False
        self.request_on_subscribe = request_on_subscribe
        self.request_on_next = request_on_next
        self.raise_on_next = raise_on_next
        self.signals = 0

    @property
    def terminated(self) -> bool:
        return self.completed or self.error is not None

    def _enter(self, name: str) -> None:
        self.signals += 1
        if self.in_signal:
            self.violations.append(f"1.3: {name} while another signal was running")
        if name != "on_subscribe" and self.subscription is None:
            self.violations.append(f"1.9: {name} before on_subscribe")
        if self.terminated:
            self.violations.append(f"1.7: {name} after a terminal signal")
        self.in_signal = True

    def on_subscribe(self, subscription: Subscription) -> None:
        self._enter("on_subscribe")
        try:
            if self.subscription is not None:
                self.violations.append("2.12: on_subscribe called twice")
            self.subscription = subscription
            if self.request_on_subscribe:
                self.request(self.request_on_subscribe)
        finally:
            self.in_signal = False

    def on_next(self, elem: Any) -> None:
        self._enter("on_next")
        try:
            self.elements.append(elem)
            if len(self.elements) > self.requested:
                self.violations.append("1.1: more on_next than requested")
            if self.raise_on_next is not None:
                raise self.raise_on_next
            if self.request_on_next:
                self.request(self.request_on_next)
        finally:
            self.in_signal = False

    def on_error(self, exc: BaseException) -> None:
        self._enter("on_error")
        self.error = exc
        self.in_signal = False

    def on_complete(self) -> None:
        self._enter("on_complete")
        self.completed = True
        self.in_signal = False

    def request(self, n: int) -> None:
        if n > 0:
            self.requested = min(self.requested + n, MAX_DEMAND)
        self.subscription.request(n)

    async def expect(self, pred: Callable[[], bool], what: str, rounds: int = 200) -> None:
        for _ in range(rounds):
            if pred():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"expected {what}; got {self!r}")

    def check(self) -> None:
        assert not self.violations, self.violations

    def __repr__(self) -> str:
        return (
            f"ManualSubscriber(elements={self.elements[:20]!r}, n={len(self.elements)}, "
            f"completed={self.completed}, error={self.error!r}, violations={self.violations})"
        )


class _FromSubscriberPublisher:
    """Presents ``Sink.from_subscriber`` as a Publisher: each subscribe runs the source."""

    def __init__(self, source: Source[Any, Any], mat: Materializer) -> None:
        self.source = source
        self.mat = mat

    def subscribe(self, subscriber: Any) -> None:
        self.source.to(Sink.from_subscriber(subscriber)).run(self.mat)


@pytest.fixture(params=["as_publisher", "from_subscriber"])
def make_publisher(
    request: pytest.FixtureRequest, materializer: Materializer
) -> Callable[[Any], Any]:
    """Turn a Source into a Publisher through the bridge under test."""

    def make(source: Source[Any, Any]) -> Any:
        if request.param == "as_publisher":
            return source.run_with(Sink.as_publisher(False), materializer)
        return _FromSubscriberPublisher(source, materializer)

    return make


def finite(n: int) -> Source[Any, Any]:
    return Source.from_iterable(range(n))


def infinite() -> Source[Any, Any]:
    return Source.unfold(0, lambda s: (s + 1, s))


async def subscribe(pub: Any, sub: ManualSubscriber) -> ManualSubscriber:
    pub.subscribe(sub)
    await sub.expect(lambda: sub.subscription is not None, "on_subscribe")
    return sub


# ---------------------------------------------------------------------------------------------
# Publisher verification: rules 1.x and 3.x
# ---------------------------------------------------------------------------------------------
async def test_rule_1_x_bridges_implement_the_protocols(materializer: Materializer) -> None:
    pub = finite(1).run_with(Sink.as_publisher(), materializer)
    sub, done = Source.as_subscriber().to_mat(Sink.ignore(), Keep.both).run(materializer)
    assert isinstance(pub, Publisher)
    assert isinstance(sub, Subscriber)
    m = await subscribe(pub, ManualSubscriber(request_on_subscribe=1))
    assert isinstance(m.subscription, Subscription)
    await m.expect(lambda: m.completed, "on_complete")
    finite(3).run_with(Sink.as_publisher(), materializer).subscribe(sub)
    await done


async def test_rule_1_1_never_more_on_next_than_requested(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(10)), ManualSubscriber())
    m.request(3)
    await settle()
    assert m.elements == [0, 1, 2]
    m.request(7)
    await m.expect(lambda: m.completed, "on_complete")
    assert m.elements == list(range(10))
    m.check()


async def test_rule_1_2_may_signal_fewer_than_requested_then_terminate(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(3)), ManualSubscriber(request_on_subscribe=10))
    await m.expect(lambda: m.completed, "on_complete")
    assert m.elements == [0, 1, 2]
    m.check()


async def test_rule_1_3_signals_are_serial_and_on_subscribe_comes_first(
    make_publisher: Any,
) -> None:
    # Requests from inside on_subscribe and on_next must not make signals overlap.
    m = await subscribe(
        make_publisher(finite(50)), ManualSubscriber(request_on_subscribe=1, request_on_next=1)
    )
    await m.expect(lambda: m.completed, "on_complete")
    assert m.elements == list(range(50))
    m.check()


async def test_rule_1_4_failing_publisher_signals_on_error(make_publisher: Any) -> None:
    boom = RuntimeError("boom")
    m = await subscribe(make_publisher(Source.failed(boom)), ManualSubscriber())
    await m.expect(lambda: m.error is not None, "on_error")
    assert m.error is boom
    m.check()


async def test_rule_1_4_failure_after_elements_signals_on_error(make_publisher: Any) -> None:
    src = Source.from_iterable([1, 2, 0]).map(lambda x: 10 // x)
    m = await subscribe(make_publisher(src), ManualSubscriber(request_on_subscribe=10))
    await m.expect(lambda: m.error is not None, "on_error")
    assert isinstance(m.error, ZeroDivisionError)
    m.check()


async def test_rule_1_5_completing_publisher_signals_on_complete_without_demand(
    make_publisher: Any,
) -> None:
    m = await subscribe(make_publisher(Source.empty()), ManualSubscriber())
    await m.expect(lambda: m.completed, "on_complete for an empty publisher without request")
    assert m.elements == []
    m.check()


async def test_rule_1_6_after_terminal_the_subscription_is_cancelled(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(1)), ManualSubscriber(request_on_subscribe=1))
    await m.expect(lambda: m.completed, "on_complete")
    m.subscription.request(5)  # no-op, no signal
    m.subscription.cancel()
    await settle()
    assert m.signals == 3  # on_subscribe, on_next, on_complete
    m.check()


async def test_rule_1_7_no_signals_after_on_error(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(Source.failed(KeyError("k"))), ManualSubscriber())
    await m.expect(lambda: m.error is not None, "on_error")
    m.subscription.request(1)
    m.subscription.request(0)  # would be a 3.9 on_error if the subscription were live
    await settle()
    assert m.signals == 2
    m.check()


async def test_rule_1_8_signals_stop_after_cancel(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(infinite()), ManualSubscriber(request_on_subscribe=5))
    await m.expect(lambda: len(m.elements) == 5, "5 elements")
    m.subscription.cancel()
    m.subscription.request(5)
    await settle()
    assert m.elements == [0, 1, 2, 3, 4]
    assert not m.terminated
    m.check()


async def test_rule_1_9_subscribe_signals_on_subscribe_first(make_publisher: Any) -> None:
    m = ManualSubscriber()
    make_publisher(finite(2)).subscribe(m)
    await m.expect(lambda: m.subscription is not None, "on_subscribe")
    m.request(2)
    await m.expect(lambda: m.completed, "on_complete")
    m.check()


async def test_rule_1_9_subscribe_none_raises_type_error(materializer: Materializer) -> None:
    pub = finite(1).run_with(Sink.as_publisher(), materializer)
    with pytest.raises(TypeError, match="1.9"):
        pub.subscribe(None)
    m = await subscribe(pub, ManualSubscriber(request_on_subscribe=1))
    await m.expect(lambda: m.completed, "on_complete")


async def test_rule_1_9_late_subscriber_gets_on_subscribe_then_terminal(
    materializer: Materializer,
) -> None:
    pub = Source.failed(KeyError("gone")).run_with(Sink.as_publisher(), materializer)
    await settle()
    m = await subscribe(pub, ManualSubscriber())
    assert isinstance(m.error, KeyError)
    m.check()


async def test_rule_1_10_subscribe_many_times_with_different_subscribers(
    materializer: Materializer,
) -> None:
    upstream, pub = (
        TestSource.probe().to_mat(Sink.as_publisher(fanout=True), Keep.both).run(materializer)
    )
    a = await subscribe(pub, ManualSubscriber(request_on_subscribe=10))
    b = await subscribe(pub, ManualSubscriber(request_on_subscribe=10))
    await upstream.expect_request()
    upstream.send_next(1).send_next(2).send_complete()
    await a.expect(lambda: a.completed and b.completed, "both complete")
    assert a.elements == b.elements == [1, 2]
    a.check()
    b.check()


async def test_rule_1_11_unicast_rejects_a_second_subscriber_with_on_error(
    materializer: Materializer,
) -> None:
    pub = infinite().run_with(Sink.as_publisher(fanout=False), materializer)
    first = await subscribe(pub, ManualSubscriber(request_on_subscribe=2))
    second = await subscribe(pub, ManualSubscriber())
    assert isinstance(second.error, SubscriptionRejectedError)
    second.subscription.request(1)  # the rejected subscription is inert
    await first.expect(lambda: len(first.elements) == 2, "first gets its elements")
    first.subscription.cancel()
    first.check()
    second.check()


async def test_rule_1_11_multicast_slowest_subscriber_bounds_the_fastest(
    materializer: Materializer,
) -> None:
    upstream, pub = (
        TestSource.probe()
        .to_mat(Sink.as_publisher(fanout=True).add_attributes(_buffer(2)), Keep.both)
        .run(materializer)
    )
    fast = await subscribe(pub, ManualSubscriber(request_on_subscribe=100))
    slow = await subscribe(pub, ManualSubscriber())
    for i in range(2):
        await upstream.expect_request()
        upstream.send_next(i)
    await upstream.expect_no_message(0.01)  # slow has read nothing; buffer of 2 is full
    assert fast.elements == [0, 1]
    slow.request(1)
    await upstream.expect_request()
    upstream.send_complete()
    slow.request(5)
    await slow.expect(lambda: slow.completed and fast.completed, "both complete")
    assert slow.elements == [0, 1]


def _buffer(n: int) -> Any:
    from reactive import Attributes

    return Attributes({"input_buffer": n})


async def test_rule_3_2_request_synchronously_from_on_subscribe_and_on_next(
    make_publisher: Any,
) -> None:
    m = await subscribe(
        make_publisher(finite(5)), ManualSubscriber(request_on_subscribe=1, request_on_next=1)
    )
    await m.expect(lambda: m.completed, "on_complete")
    assert m.elements == list(range(5))
    m.check()


async def test_rule_3_3_request_bounds_recursion(make_publisher: Any) -> None:
    # 5,000 request(1) calls from inside on_next: no stack growth, no RecursionError.
    m = await subscribe(
        make_publisher(finite(5000)), ManualSubscriber(request_on_subscribe=1, request_on_next=1)
    )
    await m.expect(lambda: m.completed, "on_complete", rounds=2000)
    assert len(m.elements) == 5000
    m.check()


async def test_rule_3_4_request_returns_promptly_with_unbounded_demand(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(infinite()), ManualSubscriber())
    await settle()
    m.request(MAX_DEMAND)  # returns after a bounded burst, not after "everything"
    assert len(m.elements) < 10_000
    await settle(3)
    m.subscription.cancel()
    await settle()
    m.check()


async def test_rule_3_5_cancel_is_idempotent_and_returns_normally(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(infinite()), ManualSubscriber(request_on_subscribe=1))
    assert m.subscription.cancel() is None
    assert m.subscription.cancel() is None
    await settle()
    m.check()


async def test_rule_3_6_request_after_cancel_is_a_no_op(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(infinite()), ManualSubscriber())
    m.subscription.cancel()
    m.subscription.request(3)
    m.subscription.request(-1)  # not even a 3.9 error once cancelled
    await settle()
    assert m.elements == [] and not m.terminated
    m.check()


async def test_rule_3_7_cancel_after_cancel_is_a_no_op(materializer: Materializer) -> None:
    upstream, pub = TestSource.probe().to_mat(Sink.as_publisher(), Keep.both).run(materializer)
    m = await subscribe(pub, ManualSubscriber())
    m.subscription.cancel()
    m.subscription.cancel()
    await upstream.expect_cancellation()
    await settle()
    assert m.signals == 1
    m.check()


async def test_rule_3_8_request_adds_to_outstanding_demand(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(infinite()), ManualSubscriber())
    m.request(1)
    m.request(2)
    await m.expect(lambda: len(m.elements) == 3, "3 elements")
    await settle()
    assert m.elements == [0, 1, 2]
    m.subscription.cancel()
    m.check()


@pytest.mark.parametrize("n", [0, -1])
async def test_rule_3_9_request_non_positive_signals_on_error(make_publisher: Any, n: int) -> None:
    m = await subscribe(make_publisher(infinite()), ManualSubscriber())
    m.subscription.request(n)
    await m.expect(lambda: m.error is not None, "on_error")
    assert isinstance(m.error, ValueError)
    assert "3.9" in str(m.error)
    m.subscription.request(1)
    await settle()
    assert m.elements == []
    m.check()


async def test_rule_3_10_request_may_signal_on_next_synchronously(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(3)), ManualSubscriber())
    await settle()  # the stream is idle with elements ready
    m.request(1)
    assert m.elements == [0]  # delivered inside request()
    m.request(2)
    await m.expect(lambda: m.completed, "on_complete")
    m.check()


async def test_rule_3_11_request_may_signal_on_complete_synchronously(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(1)), ManualSubscriber())
    await settle()
    m.request(1)
    assert m.elements == [0]
    assert m.completed
    m.check()


async def test_rule_3_12_cancel_makes_publisher_stop_signalling(materializer: Materializer) -> None:
    upstream, pub = TestSource.probe().to_mat(Sink.as_publisher(), Keep.both).run(materializer)
    m = await subscribe(pub, ManualSubscriber(request_on_subscribe=10))
    await upstream.expect_request()
    upstream.send_next("a")
    await m.expect(lambda: m.elements == ["a"], "one element")
    m.subscription.cancel()
    await upstream.expect_cancellation()
    assert m.elements == ["a"] and not m.terminated
    m.check()


async def test_rule_3_13_cancel_drops_references_to_the_subscriber(make_publisher: Any) -> None:
    pub = make_publisher(infinite())
    m = await subscribe(pub, ManualSubscriber(request_on_subscribe=2))
    ref = weakref.ref(m)
    m.subscription.cancel()
    del m
    await settle()
    gc.collect()
    assert ref() is None


async def test_rule_3_14_cancel_of_the_last_subscription_shuts_the_stream_down(
    materializer: Materializer,
) -> None:
    upstream, pub = (
        TestSource.probe().to_mat(Sink.as_publisher(fanout=True), Keep.both).run(materializer)
    )
    a = await subscribe(pub, ManualSubscriber(request_on_subscribe=1))
    b = await subscribe(pub, ManualSubscriber(request_on_subscribe=1))
    a.subscription.cancel()
    await upstream.expect_request()
    await upstream.expect_no_message(0.01)  # b still subscribed: upstream alive
    b.subscription.cancel()
    await upstream.expect_cancellation()
    late = await subscribe(pub, ManualSubscriber())
    assert isinstance(late.error, SubscriptionRejectedError)


async def test_rule_3_15_cancel_returns_normally_in_every_state(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(1)), ManualSubscriber(request_on_subscribe=1))
    await m.expect(lambda: m.completed, "on_complete")
    m.subscription.cancel()
    f = await subscribe(make_publisher(Source.failed(KeyError("x"))), ManualSubscriber())
    await f.expect(lambda: f.error is not None, "on_error")
    f.subscription.cancel()
    m.check()
    f.check()


async def test_rule_3_16_request_returns_normally_in_every_state(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(2)), ManualSubscriber())
    assert m.request(1) is None
    assert m.request(MAX_DEMAND) is None
    await m.expect(lambda: m.completed, "on_complete")
    assert m.subscription.request(1) is None
    assert m.subscription.request(0) is None
    m.check()


async def test_rule_3_17_demand_up_to_max_is_effectively_unbounded(make_publisher: Any) -> None:
    m = await subscribe(make_publisher(finite(100)), ManualSubscriber())
    m.request(MAX_DEMAND - 1)
    m.request(MAX_DEMAND)  # the sum overflows 2**63-1: still fine, still unbounded
    m.request(1)
    await m.expect(lambda: m.completed, "on_complete")
    assert m.elements == list(range(100))
    m.check()


async def test_rule_2_13_throwing_subscriber_is_considered_cancelled(
    materializer: Materializer,
) -> None:
    upstream, pub = TestSource.probe().to_mat(Sink.as_publisher(), Keep.both).run(materializer)
    m = await subscribe(
        pub, ManualSubscriber(request_on_subscribe=5, raise_on_next=RuntimeError("sub"))
    )
    await upstream.expect_request()
    upstream.send_next(1)
    upstream.send_next(2)
    await upstream.expect_cancellation()
    assert m.elements == [1]
    assert not m.terminated


# ---------------------------------------------------------------------------------------------
# Subscriber verification: rules 2.x (and 3.x as seen from the subscriber)
# ---------------------------------------------------------------------------------------------
class ManualSubscription:
    """A publisher-side subscription that records what the subscriber does with it."""

    def __init__(self, on_request: Callable[[int], None] | None = None) -> None:
        self.requests: list[int] = []
        self.cancels = 0
        self.in_call = False
        self.violations: list[str] = []
        self.after_terminal: list[str] = []
        self.terminal_sent = False
        self.on_request = on_request

    def request(self, n: int) -> None:
        if self.in_call:
            self.violations.append("2.7: request while another call on the subscription ran")
        if self.terminal_sent:
            self.after_terminal.append(f"request({n})")
        self.in_call = True
        try:
            self.requests.append(n)
            if self.on_request is not None:
                self.on_request(n)
        finally:
            self.in_call = False

    def cancel(self) -> None:
        if self.in_call:
            self.violations.append("2.7: cancel while another call on the subscription ran")
        if self.terminal_sent:
            self.after_terminal.append("cancel()")
        self.cancels += 1

    @property
    def demand(self) -> int:
        return sum(self.requests)


def run_subscriber(materializer: Materializer) -> tuple[Any, Any]:
    return Source.as_subscriber().to_mat(TestSink.probe(), Keep.both).run(materializer)


async def test_rule_2_1_subscriber_signals_demand(materializer: Materializer) -> None:
    sub, probe = run_subscriber(materializer)
    s = ManualSubscription()
    sub.on_subscribe(s)
    await settle()
    n0 = s.demand
    assert n0 > 0 and all(n > 0 for n in s.requests)
    for i in range(n0):
        sub.on_next(i)
    probe.request(100)
    assert await probe.expect_next_n(n0) == list(range(n0))
    assert s.demand > s.requests[0]  # topped up as elements were consumed
    s.terminal_sent = True
    sub.on_complete()
    await probe.expect_complete()


async def test_rule_2_3_terminal_signals_do_not_call_the_subscription(
    materializer: Materializer,
) -> None:
    sub, probe = run_subscriber(materializer)
    s = ManualSubscription()
    sub.on_subscribe(s)
    await settle()
    s.terminal_sent = True
    sub.on_complete()
    await probe.expect_complete()
    await settle()
    assert s.after_terminal == []


async def test_rule_2_4_after_on_error_the_subscription_is_considered_cancelled(
    materializer: Materializer,
) -> None:
    sub, probe = run_subscriber(materializer)
    s = ManualSubscription()
    sub.on_subscribe(s)
    await settle()
    sub.on_next("a")
    s.terminal_sent = True
    sub.on_error(KeyError("up"))
    assert isinstance(await probe.expect_error(), KeyError)
    await settle()
    assert s.after_terminal == [] and s.cancels == 0


async def test_rule_2_5_a_second_subscription_is_cancelled(materializer: Materializer) -> None:
    sub, probe = run_subscriber(materializer)
    first, second = ManualSubscription(), ManualSubscription()
    sub.on_subscribe(first)
    sub.on_subscribe(second)
    assert second.cancels == 1 and second.requests == []
    await settle()
    assert first.cancels == 0 and first.demand > 0
    probe.cancel()
    await settle()
    assert first.cancels == 1


async def test_rule_2_5_subscription_after_the_stream_stopped_is_cancelled(
    materializer: Materializer,
) -> None:
    sub, probe = run_subscriber(materializer)
    probe.cancel()
    await settle()
    s = ManualSubscription()
    sub.on_subscribe(s)
    assert s.cancels == 1


async def test_rule_2_6_cancels_when_no_longer_needed(materializer: Materializer) -> None:
    sub, out = Source.as_subscriber().take(2).to_mat(Sink.seq(), Keep.both).run(materializer)
    s = ManualSubscription()
    sub.on_subscribe(s)
    await settle()
    sub.on_next(1)
    sub.on_next(2)
    assert await out == [1, 2]
    assert s.cancels == 1


async def test_rule_2_7_calls_on_the_subscription_are_serial(materializer: Materializer) -> None:
    # The publisher answers request(n) synchronously with on_next (allowed by 3.10); the
    # subscriber must not call request/cancel re-entrantly from inside that call.
    sub, out = Source.as_subscriber().to_mat(Sink.seq(), Keep.both).run(materializer)
    sent = [0]

    def answer(n: int) -> None:
        for _ in range(n):
            if sent[0] < 100:
                sent[0] += 1
                sub.on_next(sent[0])
        if sent[0] == 100 and not s.terminal_sent:
            s.terminal_sent = True
            sub.on_complete()

    s = ManualSubscription(answer)
    sub.on_subscribe(s)
    assert await out == list(range(1, 101))
    assert s.violations == []


async def test_rule_2_8_accepts_on_next_after_cancel(materializer: Materializer) -> None:
    sub, out = Source.as_subscriber().take(1).to_mat(Sink.seq(), Keep.both).run(materializer)
    s = ManualSubscription()
    sub.on_subscribe(s)
    await settle()
    sub.on_next("a")
    assert await out == ["a"]
    assert s.cancels == 1
    sub.on_next("b")  # still outstanding demand: must be accepted (and ignored)
    sub.on_complete()
    await settle()


async def test_rule_2_9_accepts_on_complete_without_request(materializer: Materializer) -> None:
    sub, out = Source.as_subscriber().to_mat(Sink.seq(), Keep.both).run(materializer)
    s = ManualSubscription()
    s.terminal_sent = True
    sub.on_subscribe(s)
    sub.on_complete()
    assert await out == []


async def test_rule_2_10_accepts_on_error_without_request(materializer: Materializer) -> None:
    sub, out = Source.as_subscriber().to_mat(Sink.seq(), Keep.both).run(materializer)
    sub.on_subscribe(ManualSubscription())
    sub.on_error(KeyError("early"))
    with pytest.raises(KeyError):
        await out


async def test_rule_2_12_on_subscribe_twice_with_the_same_subscription_is_refused(
    materializer: Materializer,
) -> None:
    sub, probe = run_subscriber(materializer)
    s = ManualSubscription()
    sub.on_subscribe(s)
    sub.on_subscribe(s)  # illegal second call: treated as a second subscription (2.5)
    assert s.cancels == 1
    probe.cancel()
    await settle()


async def test_rule_2_13_none_arguments_raise_type_error_and_signals_return_normally(
    materializer: Materializer,
) -> None:
    sub, probe = run_subscriber(materializer)
    with pytest.raises(TypeError, match="2.13"):
        sub.on_subscribe(None)
    s = ManualSubscription()
    assert sub.on_subscribe(s) is None
    await settle()
    with pytest.raises(TypeError, match="2.13"):
        sub.on_next(None)
    with pytest.raises(TypeError, match="2.13"):
        sub.on_error(None)
    assert sub.on_next(1) is None
    assert sub.on_complete() is None
    probe.request(2)
    await probe.expect_next(1)
    await probe.expect_complete()


async def test_rule_1_1_publisher_exceeding_demand_fails_the_stream(
    materializer: Materializer,
) -> None:
    sub, probe = run_subscriber(materializer)  # the probe requests nothing: no top-ups
    s = ManualSubscription()
    sub.on_subscribe(s)
    await settle()
    n0 = s.demand
    for i in range(n0 + 1):
        sub.on_next(i)
    err = await probe.expect_error()
    assert isinstance(err, ValueError) and "1.1" in str(err)
    assert s.cancels == 1


async def test_from_publisher_roundtrip_through_both_bridges(materializer: Materializer) -> None:
    pub = Source.from_iterable(range(100)).run_with(Sink.as_publisher(), materializer)
    assert await Source.from_publisher(pub).map(lambda x: x * 2).run_with(
        Sink.seq(), materializer
    ) == [x * 2 for x in range(100)]
