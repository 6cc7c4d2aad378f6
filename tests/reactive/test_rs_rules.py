"""Reactive Streams rules, one test per rule variant not already covered by ``test_rs_tck.py``
and the bridges' cases in ``ops/test_sources.py`` and ``ops/test_sinks.py``.

These follow the reactive-streams TCK (``PublisherVerification``,
``SubscriberWhiteboxVerification``, ``SubscriberBlackboxVerification`` and, for a processor
built from ``Source.as_subscriber()`` and ``Sink.as_publisher``, ``IdentityProcessorVerification``)
and focus on what the other files leave out: fanout publishers, the TCK's exact 3.17
scenarios, re-entrant ``request`` at depth 10,000 measured on the stack, rule 1.9 in
every publisher state, and the subscriber's obligations after its stream has stopped.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.rs import MAX_DEMAND, SubscriptionRejectedError
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


async def settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def _depth() -> int:
    f: Any = sys._getframe(1)
    n = 0
    while f is not None:
        n += 1
        f = f.f_back
    return n


class Rec:
    """A subscriber that records signals, checks rules 1.1, 1.3, 1.7, 1.9 as it goes and
    measures the stack depth of ``on_next``."""

    def __init__(
        self,
        request_on_subscribe: int = 0,
        on_next: Callable[[Rec, Any], None] | None = None,
    ) -> None:
        self.subscription: Any = None
        self.elements: list[Any] = []
        self.signals: list[str] = []
        self.error: BaseException | None = None
        self.completed = False
        self.requested = 0
        self.violations: list[str] = []
        self.busy = False
        self.depths: list[int] = []
        self.request_on_subscribe = request_on_subscribe
        self.hook = on_next

    @property
    def terminated(self) -> bool:
        return self.completed or self.error is not None

    def _enter(self, name: str) -> None:
        self.signals.append(name)
        if self.busy:
            self.violations.append(f"1.3: {name} inside another signal")
        if self.terminated:
            self.violations.append(f"1.7: {name} after a terminal signal")
        if name != "on_subscribe" and self.subscription is None:
            self.violations.append(f"1.9: {name} before on_subscribe")
        self.busy = True

    def on_subscribe(self, s: Any) -> None:
        self._enter("on_subscribe")
        try:
            self.subscription = s
            if self.request_on_subscribe:
                self.request(self.request_on_subscribe)
        finally:
            self.busy = False

    def on_next(self, x: Any) -> None:
        self._enter("on_next")
        try:
            if x is None:
                self.violations.append("2.13: on_next(None)")
            self.elements.append(x)
            if len(self.elements) > self.requested:
                self.violations.append(f"1.1: element {len(self.elements)} > {self.requested}")
            self.depths.append(_depth())
            if self.hook is not None:
                self.hook(self, x)
        finally:
            self.busy = False

    def on_error(self, exc: BaseException) -> None:
        self._enter("on_error")
        self.error = exc
        self.busy = False

    def on_complete(self) -> None:
        self._enter("on_complete")
        self.completed = True
        self.busy = False

    def request(self, n: int) -> None:
        if n > 0:
            self.requested = min(self.requested + n, MAX_DEMAND)
        self.subscription.request(n)

    async def wait(self, pred: Callable[[], bool], what: str, rounds: int = 500) -> None:
        for _ in range(rounds):
            if pred():
                return
            await asyncio.sleep(0)
        raise AssertionError(f"expected {what}; got {self!r}")

    def got_elements(self) -> bool:
        """At least one element arrived."""
        return bool(self.elements)

    def is_completed(self) -> bool:
        """``on_complete`` arrived."""
        return self.completed

    def check(self) -> None:
        assert not self.violations, self.violations

    def __repr__(self) -> str:
        return (
            f"Rec(n={len(self.elements)}, last={self.elements[-3:]!r}, signals={self.signals[-4:]}"
            f", error={self.error!r}, violations={self.violations[:3]})"
        )


class _FromSubscriber:
    def __init__(self, source: Source[Any, Any], mat: Materializer) -> None:
        self.source = source
        self.mat = mat

    def subscribe(self, subscriber: Any) -> None:
        self.source.to(Sink.from_subscriber(subscriber)).run(self.mat)


@pytest.fixture(params=["unicast", "fanout", "from_subscriber"])
def publish(request: pytest.FixtureRequest, materializer: Materializer) -> Callable[[Any], Any]:
    """Turn a Source into a Publisher through each bridge."""

    def make(source: Source[Any, Any]) -> Any:
        if request.param == "from_subscriber":
            return _FromSubscriber(source, materializer)
        return source.run_with(Sink.as_publisher(request.param == "fanout"), materializer)

    return make


def finite(n: int) -> Source[Any, Any]:
    return Source.from_iterable(range(n))


def infinite() -> Source[Any, Any]:
    return Source.unfold(0, lambda s: (s + 1, s))


async def attach(pub: Any, sub: Rec) -> Rec:
    pub.subscribe(sub)
    await sub.wait(lambda: sub.subscription is not None, "on_subscribe")
    return sub


def probe_publisher(materializer: Materializer, fanout: bool) -> tuple[Any, Any]:
    return TestSource.probe().to_mat(Sink.as_publisher(fanout), Keep.both).run(materializer)


# ---------------------------------------------------------------------------------------------
# 1.x: publisher signalling
# ---------------------------------------------------------------------------------------------
async def test_rule_1_1_demand_from_several_requests_is_never_exceeded(publish: Any) -> None:
    m = await attach(publish(infinite()), Rec())
    for n, total in [(1, 1), (2, 3), (1, 4), (5, 9)]:
        m.request(n)
        await settle()  # plenty of elements are buffered: only demand limits delivery
        assert len(m.elements) == total
    assert m.elements == list(range(9))
    m.subscription.cancel()
    m.check()


async def test_rule_1_1_fanout_each_subscriber_gets_only_its_own_demand(
    materializer: Materializer,
) -> None:
    upstream, pub = probe_publisher(materializer, True)
    a = await attach(pub, Rec(request_on_subscribe=3))
    b = await attach(pub, Rec(request_on_subscribe=1))
    for i in range(6):
        await upstream.expect_request()
        upstream.send_next(i)
    await settle()
    assert (a.elements, b.elements) == ([0, 1, 2], [0])
    b.request(4)
    a.request(1)
    await settle()
    assert (a.elements, b.elements) == ([0, 1, 2, 3], [0, 1, 2, 3, 4])
    upstream.send_complete()
    await settle()
    assert not a.completed and not b.completed  # buffered elements still owed
    a.request(10)
    b.request(10)
    await a.wait(lambda: a.completed and b.completed, "both complete")
    assert a.elements == b.elements == list(range(6))
    a.check()
    b.check()


async def test_rule_1_3_fanout_requests_inside_on_next_never_nest_signals(
    materializer: Materializer,
) -> None:
    pub = finite(300).run_with(Sink.as_publisher(True), materializer)
    subs = [Rec(1, lambda r, x: r.request(1)) for _ in range(3)]
    # Each subscriber also pokes the next one's subscription from inside its on_next.
    for i, s in enumerate(subs):
        other = subs[(i + 1) % 3]
        s.hook = lambda r, x, o=other: (r.request(1), o.subscription.request(1))
    for s in subs:
        pub.subscribe(s)
    await subs[0].wait(lambda: all(s.completed for s in subs), "all complete", rounds=3000)
    for s in subs:
        assert s.elements == list(range(300))
        s.check()


async def test_rule_1_4_fanout_failure_reaches_every_subscriber_exactly_once(
    materializer: Materializer,
) -> None:
    upstream, pub = probe_publisher(materializer, True)
    subs = [await attach(pub, Rec(request_on_subscribe=n)) for n in (0, 1, 10)]
    await upstream.expect_request()
    upstream.send_next("x")
    await settle()
    boom = RuntimeError("boom")
    upstream.send_error(boom)
    await subs[0].wait(lambda: all(s.error is boom for s in subs), "on_error everywhere")
    for s in subs:  # rule 1.6: the subscription is now cancelled, calls are no-ops
        s.subscription.request(1)
        s.subscription.request(0)
        s.subscription.cancel()
    await settle()
    for s in subs:
        assert s.signals.count("on_error") == 1 and s.signals[-1] == "on_error"
        s.check()


async def test_rule_1_6_no_signal_after_on_complete_even_for_request_zero(publish: Any) -> None:
    m = await attach(publish(finite(2)), Rec(request_on_subscribe=MAX_DEMAND))
    await m.wait(lambda: m.completed, "on_complete")
    m.subscription.request(0)
    m.subscription.request(-5)
    m.subscription.request(3)
    m.subscription.cancel()
    await settle()
    assert m.signals == ["on_subscribe", "on_next", "on_next", "on_complete"]
    m.check()


async def test_rule_1_7_on_complete_only_after_the_buffered_elements(
    materializer: Materializer,
) -> None:
    upstream, pub = probe_publisher(materializer, False)
    m = await attach(pub, Rec())
    for i in range(3):
        await upstream.expect_request()
        upstream.send_next(i)
    upstream.send_complete()
    await settle()
    assert m.signals == ["on_subscribe"]
    m.request(2)
    await settle()
    assert m.elements == [0, 1] and not m.completed
    m.request(1)  # the last element and then, in the same request, on_complete (3.11)
    assert m.signals[-2:] == ["on_next", "on_complete"]
    m.request(1)
    await settle()
    assert len(m.signals) == 5
    m.check()


@pytest.mark.parametrize("fanout", [False, True])
async def test_rule_1_9_subscribe_none_raises_in_every_state(
    materializer: Materializer, fanout: bool
) -> None:
    upstream, pub = probe_publisher(materializer, fanout)
    with pytest.raises(TypeError, match="1.9"):
        pub.subscribe(None)
    m = await attach(pub, Rec(request_on_subscribe=1))
    with pytest.raises(TypeError, match="1.9"):
        pub.subscribe(None)  # also once a subscriber is attached
    upstream.send_complete()
    await m.wait(lambda: m.completed, "on_complete")
    await settle()
    with pytest.raises(TypeError, match="1.9"):
        pub.subscribe(None)  # and after the stream stopped
    m.check()


async def test_rule_1_9_subscribe_returns_normally_when_on_subscribe_throws(
    materializer: Materializer,
) -> None:
    class Thrower(Rec):
        def on_subscribe(self, s: Any) -> None:
            super().on_subscribe(s)
            raise RuntimeError("subscriber bug")

    upstream, pub = probe_publisher(materializer, False)
    t = Thrower()
    assert pub.subscribe(t) is None
    await upstream.expect_cancellation()  # rule 2.13: the subscriber counts as cancelled
    await settle()
    assert t.signals == ["on_subscribe"]


async def test_rule_1_9_on_subscribe_comes_first_for_a_subscriber_arriving_after_completion(
    publish: Any,
) -> None:
    pub = publish(finite(3))
    await settle()  # nothing consumed yet: the elements wait for the subscriber
    m = await attach(pub, Rec())
    m.request(10)
    await m.wait(lambda: m.completed, "on_complete")
    assert m.signals[0] == "on_subscribe" and m.elements == [0, 1, 2]
    m.check()


@pytest.mark.parametrize("fanout", [False, True])
async def test_rule_1_10_same_subscriber_twice_never_gets_elements_twice(
    materializer: Materializer, fanout: bool
) -> None:
    pub = finite(5).run_with(Sink.as_publisher(fanout), materializer)
    m = Rec()
    pub.subscribe(m)
    await settle()
    first = m.subscription
    assert pub.subscribe(m) is None  # refused (2.12), returns normally (1.9)
    await settle()
    assert isinstance(m.error, SubscriptionRejectedError)
    first.request(10)
    await settle()
    assert m.elements == [0, 1, 2, 3, 4]  # each element at most once


# ---------------------------------------------------------------------------------------------
# 3.x: subscriptions
# ---------------------------------------------------------------------------------------------
async def test_rule_3_3_request_one_inside_on_next_for_10000_elements_has_bounded_depth(
    publish: Any,
) -> None:
    m = await attach(publish(finite(10_000)), Rec(1, lambda r, x: r.request(1)))
    await m.wait(lambda: m.completed, "on_complete", rounds=5000)
    assert m.elements == list(range(10_000))
    assert max(m.depths) - min(m.depths) < 30  # no recursion through request -> on_next
    m.check()


async def test_rule_3_3_subscriber_facing_a_synchronous_publisher_has_bounded_depth(
    materializer: Materializer,
) -> None:
    """A publisher answering ``request(n)`` with ``n`` synchronous ``on_next`` calls (3.10)
    must not drive the subscriber into unbounded recursion over 10,000 elements."""
    sub, out = Source.as_subscriber().to_mat(Sink.seq(), Keep.both).run(materializer)
    sent = [0]
    depths: list[int] = []

    class SyncSubscription:
        done = False

        def request(self, n: int) -> None:
            depths.append(_depth())
            assert n > 0
            for _ in range(n):
                if sent[0] < 10_000:
                    sent[0] += 1
                    sub.on_next(sent[0])
            if sent[0] == 10_000 and not self.done:
                self.done = True
                sub.on_complete()

        def cancel(self) -> None:
            pass

    sub.on_subscribe(SyncSubscription())
    assert await out == list(range(1, 10_001))
    assert max(depths) - min(depths) < 30


async def test_rule_3_6_3_7_fanout_cancelled_subscription_is_inert_others_continue(
    materializer: Materializer,
) -> None:
    pub = infinite().run_with(Sink.as_publisher(True), materializer)
    a = await attach(pub, Rec(request_on_subscribe=2))
    b = await attach(pub, Rec(request_on_subscribe=2))
    await a.wait(lambda: len(a.elements) == 2 and len(b.elements) == 2, "two each")
    a.subscription.cancel()
    a.subscription.cancel()
    a.subscription.request(5)
    a.subscription.request(0)
    b.request(3)
    await b.wait(lambda: len(b.elements) == 5, "b continues")
    await settle()
    assert len(a.elements) == 2 and not a.terminated
    b.subscription.cancel()
    a.check()
    b.check()


@pytest.mark.parametrize("n", [0, -1, -(2**63)])
async def test_rule_3_9_fanout_bad_request_fails_only_that_subscriber(
    materializer: Materializer, n: int
) -> None:
    pub = infinite().run_with(Sink.as_publisher(True), materializer)
    bad = await attach(pub, Rec())
    good = await attach(pub, Rec(request_on_subscribe=1))
    bad.subscription.request(n)
    await bad.wait(lambda: bad.error is not None, "on_error")
    assert isinstance(bad.error, ValueError) and "3.9" in str(bad.error)
    good.request(2)
    await good.wait(lambda: len(good.elements) == 3, "good continues")
    assert bad.elements == []
    good.subscription.cancel()
    bad.check()
    good.check()


async def test_rule_3_9_bad_request_from_inside_on_next(publish: Any) -> None:
    m = await attach(publish(infinite()), Rec(1, lambda r, x: r.subscription.request(0)))
    await m.wait(lambda: m.error is not None, "on_error")
    assert isinstance(m.error, ValueError) and "3.9" in str(m.error)
    await settle()
    assert m.elements == [0]
    m.check()


async def test_rule_3_13_fanout_cancel_drops_the_subscriber_while_the_stream_lives(
    materializer: Materializer,
) -> None:
    pub = infinite().run_with(Sink.as_publisher(True), materializer)
    keep = await attach(pub, Rec(request_on_subscribe=1))
    gone = await attach(pub, Rec(request_on_subscribe=1))
    ref = weakref.ref(gone)
    await gone.wait(gone.got_elements, "an element")
    gone.subscription.cancel()
    del gone
    await settle()
    gc.collect()
    assert ref() is None
    keep.request(1)
    await keep.wait(lambda: len(keep.elements) == 2, "the other subscriber continues")
    keep.subscription.cancel()


async def test_rule_3_13_terminated_subscriber_is_not_retained_by_the_publisher(
    publish: Any,
) -> None:
    pub = publish(finite(2))
    m = await attach(pub, Rec(request_on_subscribe=5))
    await m.wait(m.is_completed, "on_complete")
    ref = weakref.ref(m)
    del m
    await settle()
    gc.collect()
    assert ref() is None
    assert pub is not None


async def test_rule_3_17_cumulative_demand_reaching_exactly_max(publish: Any) -> None:
    """TCK required_spec317_mustSupportACumulativePendingElementCountUpToLongMaxValue."""
    m = await attach(publish(finite(50)), Rec())
    m.request(MAX_DEMAND // 2)
    m.request(MAX_DEMAND // 2)
    m.request(1)
    await m.wait(lambda: m.completed, "on_complete")
    assert m.elements == list(range(50)) and m.error is None
    m.check()


async def test_rule_3_17_pending_demand_above_max_signals_no_error(publish: Any) -> None:
    """TCK required_spec317_mustNotSignalOnErrorWhenPendingAboveLongMaxValue: every
    ``on_next`` requests ``2**63 - 2`` more (ten times), then cancels."""
    calls = [10]

    def more(r: Rec, x: Any) -> None:
        if calls[0]:
            calls[0] -= 1
            r.request(MAX_DEMAND - 1)
        else:
            r.subscription.cancel()

    m = await attach(publish(infinite()), Rec(1, more))
    await m.wait(lambda: calls[0] == 0 and len(m.elements) == 11, "11 elements")
    await settle()
    assert m.error is None and not m.terminated and len(m.elements) == 11
    m.check()


@pytest.mark.parametrize("n", [MAX_DEMAND, MAX_DEMAND + 1, 2**64, 2**200])
async def test_rule_3_17_single_request_at_or_beyond_max(publish: Any, n: int) -> None:
    m = await attach(publish(finite(20)), Rec())
    m.request(n)
    m.request(n)  # and again on top: no overflow in a bounded representation
    await m.wait(lambda: m.completed, "on_complete")
    assert m.elements == list(range(20))
    m.check()


# ---------------------------------------------------------------------------------------------
# 2.x: the subscriber from Source.as_subscriber()
# ---------------------------------------------------------------------------------------------
class Sub:
    """A publisher-side subscription recording the subscriber's calls."""

    def __init__(self) -> None:
        self.requests: list[int] = []
        self.cancels = 0

    def request(self, n: int) -> None:
        self.requests.append(n)

    def cancel(self) -> None:
        self.cancels += 1


async def test_rule_2_13_signals_after_the_stream_stopped_return_normally(
    materializer: Materializer,
) -> None:
    sub, probe = Source.as_subscriber().to_mat(TestSink.probe(), Keep.both).run(materializer)
    s = Sub()
    sub.on_subscribe(s)
    await settle()
    probe.cancel()
    await settle()
    assert s.cancels == 1
    assert sub.on_next(1) is None  # 2.8: in flight after cancel
    assert sub.on_next(2) is None
    assert sub.on_error(RuntimeError("late")) is None
    assert sub.on_complete() is None
    await settle()
    assert s.cancels == 1
    with pytest.raises(TypeError, match="2.13"):
        sub.on_next(None)  # None is refused in every state


async def test_rule_2_13_terminal_after_terminal_returns_normally(
    materializer: Materializer,
) -> None:
    sub, out = Source.as_subscriber().to_mat(Sink.seq(), Keep.both).run(materializer)
    s = Sub()
    sub.on_subscribe(s)
    await settle()
    sub.on_next("a")
    assert sub.on_complete() is None
    assert sub.on_error(RuntimeError("publisher bug")) is None
    assert sub.on_complete() is None
    assert await out == ["a"]
    await settle()
    assert s.cancels == 0  # 2.4: after a terminal signal the subscription is not touched


async def test_rule_3_9_3_17_subscriber_requests_are_positive_and_bounded(
    materializer: Materializer,
) -> None:
    """Whitebox 2.1 / 3.9 from the caller's side: every ``request`` is > 0, the total
    outstanding never exceeds what the subscriber can buffer, and a cancelled subscriber
    stops requesting (3.6 as the caller)."""
    sub, probe = Source.as_subscriber().to_mat(TestSink.probe(), Keep.both).run(materializer)
    s = Sub()
    sub.on_subscribe(s)
    await settle()
    sent = 0
    probe.request(1000)
    for _ in range(50):
        outstanding = sum(s.requests) - sent
        assert outstanding > 0
        sub.on_next(sent)
        sent += 1
        await settle(2)
    assert all(n > 0 for n in s.requests)
    assert sum(s.requests) - sent <= 16  # the default input buffer
    assert await probe.expect_next_n(50) == list(range(50))
    probe.cancel()
    await settle()
    before = list(s.requests)
    sub.on_next(50)
    await settle()
    assert s.requests == before and s.cancels == 1


# ---------------------------------------------------------------------------------------------
# A processor: Source.as_subscriber() -> Sink.as_publisher(fanout=True)
# ---------------------------------------------------------------------------------------------
def processor(materializer: Materializer) -> tuple[Any, Any]:
    return Source.as_subscriber().to_mat(Sink.as_publisher(True), Keep.both).run(materializer)


async def test_identity_processor_error_reaches_all_subscribers(
    materializer: Materializer,
) -> None:
    """IdentityProcessorVerification
    required_spec104_mustCallOnErrorOnAllItsSubscribersIfItEncountersANonRecoverableError."""
    proc_in, proc_out = processor(materializer)
    a = await attach(proc_out, Rec(request_on_subscribe=1))
    b = await attach(proc_out, Rec(request_on_subscribe=1))
    up = Sub()
    proc_in.on_subscribe(up)
    await settle()
    proc_in.on_next("x")
    await a.wait(lambda: a.elements == ["x"] and b.elements == ["x"], "x to both")
    boom = RuntimeError("upstream")
    proc_in.on_error(boom)
    await a.wait(lambda: a.error is boom and b.error is boom, "on_error to both")
    a.check()
    b.check()


async def test_identity_processor_requests_upstream_for_elements_requested_long_ago(
    materializer: Materializer,
) -> None:
    """IdentityProcessorVerification
    required_mustRequestFromUpstreamForElementsThatHaveBeenRequestedLongAgo."""
    proc_in, proc_out = processor(materializer)
    up = Sub()
    proc_in.on_subscribe(up)
    a = await attach(proc_out, Rec(request_on_subscribe=1))
    await settle()
    assert sum(up.requests) > 0
    proc_in.on_next("x")
    await a.wait(lambda: a.elements == ["x"], "x")
    b = await attach(proc_out, Rec())
    b.request(1)
    a.request(1)
    proc_in.on_next("y")
    await a.wait(lambda: a.elements == ["x", "y"] and b.elements == ["y"], "y to both")
    proc_in.on_complete()
    await a.wait(lambda: a.completed and b.completed, "both complete")
    a.check()
    b.check()


@pytest.mark.parametrize("fanout", [False, True])
async def test_rule_1_9_subscribing_from_inside_the_shutdown_on_error_gets_a_real_error(
    fanout: bool,
) -> None:
    """A subscriber subscribing (another subscriber) from inside the ``on_error`` a
    materializer shutdown delivers gets ``on_subscribe`` then a non-None terminal signal
    (rules 1.9, 2.13), never ``on_error(None)``."""
    late = Rec()

    class Resubscriber(Rec):
        def on_error(self, exc: BaseException) -> None:
            super().on_error(exc)
            pub.subscribe(late)

    mat = Materializer()
    pub = Source.never().run_with(Sink.as_publisher(fanout), mat)
    first = await attach(pub, Resubscriber(request_on_subscribe=1))
    await mat.shutdown()
    await settle()
    assert first.error is not None
    assert late.signals == ["on_subscribe", "on_error"]
    assert isinstance(late.error, BaseException)
    first.check()
    late.check()


async def test_rule_3_5_cancel_inside_on_subscribe_stops_everything(publish: Any) -> None:
    class CancelAtOnce(Rec):
        def on_subscribe(self, s: Any) -> None:
            super().on_subscribe(s)
            s.request(5)
            s.cancel()
            s.cancel()

    m = await attach(publish(infinite()), CancelAtOnce())
    await settle()
    assert m.signals == ["on_subscribe"]
    m.check()


async def test_rule_2_13_fanout_throwing_subscriber_does_not_disturb_the_others(
    materializer: Materializer,
) -> None:
    def boom(r: Rec, x: Any) -> None:
        raise RuntimeError("subscriber bug")

    pub = finite(5).run_with(Sink.as_publisher(True), materializer)
    bad = Rec(10, boom)
    good = Rec(10)
    pub.subscribe(bad)
    pub.subscribe(good)
    await good.wait(lambda: good.completed, "on_complete")
    assert good.elements == list(range(5))
    assert bad.elements == [0] and not bad.terminated  # considered cancelled at once
    good.check()
