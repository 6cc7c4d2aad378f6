"""``Attributes.subscription_timeout(timeout, mode)`` (Akka's
``ActorAttributes.streamSubscriptionTimeout``): how long a substream Source of
``group_by``, ``split_*`` and ``prefix_and_tail`` may wait to be materialized, and what
then happens (``cancel``, the default, with ``SubscriptionTimeoutError``; ``warn``;
``noop``). On the ManualClock."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Flow,
    Keep,
    Materializer,
    Sink,
    Source,
    SubscriptionTimeoutError,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import probes

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive.testkit import ManualClock, PublisherProbe

    Build = Callable[[Source[Any, Any]], Source[Any, Any]]


def group_by(s: Source[Any, Any]) -> Source[Any, Any]:
    """The ``group_by`` stage alone: one Source per key."""
    from reactive._ops.nesting import GroupBy

    return s.via(Flow.from_graph(GroupBy(4, lambda x: x % 2)))


def split_when(s: Source[Any, Any]) -> Source[Any, Any]:
    """The ``split_when`` stage alone: one Source per substream."""
    from reactive._ops.nesting import Split

    return s.via(Flow.from_graph(Split(lambda x: x == 3, after=False)))


OPERATORS: dict[str, Build] = {"group_by": group_by, "split_when": split_when}


async def tail_after(
    materializer: Materializer, attributes: Attributes | None
) -> tuple[PublisherProbe, Source[Any, Any]]:
    """``prefix_and_tail(1)`` with ``attributes``; 1 sent: ``(upstream, tail)``."""
    stage = TestSource.probe().prefix_and_tail(1)
    if attributes is not None:
        stage = stage.with_attributes(attributes)
    up, pair = stage.to_mat(Sink.head(), Keep.both).run(materializer)
    await up.expect_request()
    up.send_next(1)
    prefix, tail = await pair
    assert prefix == [1]
    return up, tail


class TestTheAttribute:
    def test_it_holds_the_timeout_and_the_mode(self) -> None:
        assert Attributes.subscription_timeout(2).get("subscription_timeout") == (2.0, "cancel")
        assert Attributes.subscription_timeout(0.5, "warn").get("subscription_timeout") == (
            0.5,
            "warn",
        )

    @pytest.mark.parametrize(
        ("timeout", "mode", "error", "message"),
        [
            (0, "cancel", ValueError, "timeout must be a finite number > 0, got 0"),
            (-1.0, "cancel", ValueError, "timeout must be a finite number > 0"),
            (float("inf"), "cancel", ValueError, "timeout must be a finite number > 0"),
            (float("nan"), "cancel", ValueError, "timeout must be a finite number > 0"),
            ("5", "cancel", TypeError, "timeout must be a number of seconds, got '5'"),
            (True, "cancel", TypeError, "timeout must be a number of seconds"),
            (1.0, "fail", ValueError, "mode must be 'cancel', 'warn' or 'noop', got 'fail'"),
        ],
    )
    def test_bad_arguments_are_named(
        self, timeout: Any, mode: Any, error: type[Exception], message: str
    ) -> None:
        with pytest.raises(error, match=r"Attributes\.subscription_timeout\(timeout, mode\)"):
            Attributes.subscription_timeout(timeout, mode)
        with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
            Attributes.subscription_timeout(timeout, mode)


@pytest.mark.parametrize("op", sorted(OPERATORS))
class TestCancel:
    async def test_a_substream_not_materialized_within_the_timeout_fails(
        self, materializer: Materializer, manual_clock: ManualClock, op: str
    ) -> None:
        build = OPERATORS[op]
        pub, subs = probes(
            lambda s: build(s).with_attributes(Attributes.subscription_timeout(1.0)),
            materializer,
        )
        subs.request(1)
        pub.send_next(1)
        late = await subs.expect_next()
        await manual_clock.advance(1.01)
        with pytest.raises(SubscriptionTimeoutError, match="not been materialized in 1.0 s"):
            await late.run_with(Sink.seq(), materializer)
        pub.send_complete()
        await subs.expect_complete()

    async def test_a_substream_materialized_before_the_timeout_runs(
        self, materializer: Materializer, manual_clock: ManualClock, op: str
    ) -> None:
        build = OPERATORS[op]
        pub, subs = probes(
            lambda s: build(s).with_attributes(Attributes.subscription_timeout(1.0)),
            materializer,
        )
        subs.request(1)
        pub.send_next(1)
        src = await subs.expect_next()
        await manual_clock.advance(0.99)
        s1 = src.run_with(TestSink.probe(), materializer)
        s1.request(1)
        await s1.expect_next(1)
        pub.send_complete()
        await s1.expect_complete()
        await subs.expect_complete()

    async def test_a_longer_timeout_than_the_default(
        self, materializer: Materializer, manual_clock: ManualClock, op: str
    ) -> None:
        build = OPERATORS[op]
        pub, subs = probes(
            lambda s: build(s).with_attributes(Attributes.subscription_timeout(30)),
            materializer,
        )
        subs.request(1)
        pub.send_next(1)
        src = await subs.expect_next()
        await manual_clock.advance(29.0)  # far past the 5 s default
        s1 = src.run_with(TestSink.probe(), materializer)
        s1.request(1)
        await s1.expect_next(1)
        pub.send_complete()
        await s1.expect_complete()
        await subs.expect_complete()


class TestPrefixAndTail:
    async def test_cancel_mode_cancels_upstream_at_the_timeout(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        up, tail = await tail_after(materializer, Attributes.subscription_timeout(0.5))
        await manual_clock.advance(0.49)
        await up.expect_no_message(0)
        await manual_clock.advance(0.02)
        assert isinstance(await up.expect_cancellation(), SubscriptionTimeoutError)
        with pytest.raises(SubscriptionTimeoutError, match=r"0\.5 s"):
            await tail.run_with(Sink.seq(), materializer)

    async def test_the_default_is_still_five_seconds(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        up, _ = await tail_after(materializer, None)
        await manual_clock.advance(4.99)
        await up.expect_no_message(0)
        await manual_clock.advance(0.02)
        assert isinstance(await up.expect_cancellation(), SubscriptionTimeoutError)

    async def test_an_enclosing_blueprints_attribute_applies(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        up, done = (
            TestSource.probe()
            .prefix_and_tail(1)
            .to_mat(Sink.head(), Keep.both)
            .with_attributes(Attributes.subscription_timeout(0.25))
            .run(materializer)
        )
        await up.expect_request()
        up.send_next(1)
        await done
        await manual_clock.advance(0.26)
        assert isinstance(await up.expect_cancellation(), SubscriptionTimeoutError)

    async def test_warn_mode_logs_and_keeps_the_tail_usable(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        up, tail = await tail_after(materializer, Attributes.subscription_timeout(0.5, "warn"))
        with caplog.at_level(logging.WARNING, logger="reactive"):
            await manual_clock.advance(0.51)
            await manual_clock.settle()
        warnings = [r for r in caplog.records if "not been materialized in 0.5 s" in r.message]
        assert len(warnings) == 1
        assert warnings[0].levelno == logging.WARNING
        assert warnings[0].name.startswith("reactive.stage.")
        await up.expect_no_message(0)  # not cancelled
        rest = tail.run_with(Sink.seq(), materializer)
        await up.expect_request()
        up.send_next(2)
        up.send_complete()
        assert await rest == [2]

    async def test_noop_mode_neither_cancels_nor_logs(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        up, tail = await tail_after(materializer, Attributes.subscription_timeout(0.5, "noop"))
        with caplog.at_level(logging.DEBUG, logger="reactive"):
            await manual_clock.advance(60)
            await manual_clock.settle()
        assert not [r for r in caplog.records if "materialized" in r.message]
        await up.expect_no_message(0)
        rest = tail.run_with(Sink.seq(), materializer)
        await up.expect_request()
        up.send_next(2)
        up.send_complete()
        assert await rest == [2]


@pytest.mark.parametrize("op", sorted(OPERATORS))
@pytest.mark.parametrize("mode", ["warn", "noop"])
async def test_warn_and_noop_keep_a_late_substream_usable(
    materializer: Materializer,
    manual_clock: ManualClock,
    caplog: pytest.LogCaptureFixture,
    op: str,
    mode: Any,
) -> None:
    build = OPERATORS[op]
    pub, subs = probes(
        lambda s: build(s).with_attributes(Attributes.subscription_timeout(1.0, mode)),
        materializer,
    )
    subs.request(1)
    pub.send_next(1)
    src = await subs.expect_next()
    with caplog.at_level(logging.WARNING, logger="reactive"):
        await manual_clock.advance(10.0)
        await manual_clock.settle()
    logged = [r for r in caplog.records if "not been materialized in 1.0 s" in r.message]
    assert len(logged) == (1 if mode == "warn" else 0)
    s1 = src.run_with(TestSink.probe(), materializer)
    s1.request(1)
    await s1.expect_next(1)
    pub.send_complete()
    await s1.expect_complete()
    await subs.expect_complete()
