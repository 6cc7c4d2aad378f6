"""The timer family (``reactive/_ops/timer.py``): throttle, grouped_within, delays, time windows,
timeouts, keep_alive, debounce. Akka's specs and our own cases on ManualClock, one class per
operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    BufferOverflowError,
    Flow,
    Materializer,
    OverflowStrategy,
    RateExceededError,
    Sink,
    Source,
    StreamTimeoutError,
    ThrottleMode,
)
from reactive.testkit import ManualClock, TestSink
from tests.reactive.support import Boom, flow_probes, nothing, probes, quiet_for, sink_probe

if TYPE_CHECKING:
    from collections.abc import Callable


class TestThrottle:
    """``throttle``."""

    async def test_throttle_automatic_burst_of_minus_one(self, materializer: Materializer) -> None:
        # Akka's Throttle.AutomaticMaximumBurst is -1 (the spec's "happy case")
        sub = sink_probe(Source.from_iterable(range(1, 6)).throttle(19, 1.0, -1), materializer)
        sub.request(5)
        await sub.expect_next(1, 2, 3, 4, 5)
        await sub.expect_complete()

    async def test_throttle_accepts_very_high_and_very_low_rates(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 6)).throttle(1, 1e-9, 0, ThrottleMode.shaping),
            materializer,
        )
        sub.request(5)
        await manual_clock.advance(1e-6)
        await sub.expect_next(1, 2, 3, 4, 5)
        await sub.expect_complete()

        sub = sink_probe(
            Source.from_iterable(range(1, 6)).throttle(1, 100 * 86400.0, 1), materializer
        )
        sub.request(5)
        await sub.expect_next(1)
        await quiet_for(manual_clock, 0.1, sub)
        sub.cancel()

    async def test_throttle_emits_single_element_per_tick_with_zero_burst(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 0.3, 0, ThrottleMode.shaping), materializer)
        sub.request(20)
        pub.send_next(1)
        await quiet_for(manual_clock, 0.15, sub)
        await manual_clock.advance(0.15)
        await sub.expect_next(1)
        pub.send_next(2)
        await quiet_for(manual_clock, 0.15, sub)
        await manual_clock.advance(0.15)
        await sub.expect_next(2)
        pub.send_complete()
        await sub.expect_complete()

    async def test_throttle_emits_elements_according_to_cost(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        items = ["x" * n for n in (2, 4, 6, 8)]
        sub = sink_probe(
            Source.from_iterable(items).throttle(2, 0.2, 0, ThrottleMode.shaping, cost=len),
            materializer,
        )
        sub.request(4)
        # burst 0: the bucket is empty; every element waits for its own cost
        for item, due in zip(items, (0.2, 0.6, 1.2, 2.0), strict=True):
            await quiet_for(manual_clock, due - 0.05 - manual_clock.time(), sub)
            await manual_clock.advance(0.1)
            await sub.expect_next(item)
        await sub.expect_complete()

    async def test_throttle_bursts_some_elements_after_enough_time(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 0.2, 5, ThrottleMode.shaping), materializer)
        sub.request(5)
        for x in range(1, 6):
            pub.send_next(x)
        await sub.expect_next(1, 2, 3, 4, 5)  # the bucket starts full
        sub.request(1)
        pub.send_next(6)
        await quiet_for(manual_clock, 0.1, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(6)
        await quiet_for(manual_clock, 0.5, sub)  # two tokens arrive meanwhile
        sub.request(5)
        for x in range(7, 11):
            pub.send_next(x)
        await sub.expect_next(7, 8)
        await nothing(manual_clock, sub)
        sub.cancel()

    async def test_throttle_enforcing_with_zero_burst_fails_with_rate_exceeded(
        self,
        materializer: Materializer,
    ) -> None:
        ok = (
            await Source.from_iterable(range(1, 5))
            .throttle(2, 0.2, 10, ThrottleMode.enforcing, cost=lambda x: x)
            .run_with(Sink.seq(), materializer)
        )
        assert ok == [1, 2, 3, 4]
        with pytest.raises(RateExceededError):
            await (
                Source.from_iterable(range(1, 7))
                .throttle(2, 0.2, 0, ThrottleMode.enforcing, cost=lambda x: x)
                .run_with(Sink.ignore(), materializer)
            )

    async def test_throttle_cost_function_raising_fails_the_stream(
        self,
        materializer: Materializer,
    ) -> None:
        def cost(_: int) -> int:
            raise Boom("cost")

        sub = sink_probe(
            Source.from_iterable(range(1, 6))
            .throttle(2, 0.2, 0, ThrottleMode.shaping, cost=cost)
            .throttle(1, 0.1, 5, ThrottleMode.enforcing),
            materializer,
        )
        sub.request(5)
        assert isinstance(await sub.expect_error(), Boom)

    async def test_throttle_shaping_then_enforcing_combine(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 6))
            .throttle(1, 0.1, 5, ThrottleMode.shaping)
            .throttle(1, 0.1, 5, ThrottleMode.enforcing),
            materializer,
        )
        sub.request(5)
        await sub.expect_next(1, 2, 3, 4, 5)
        await sub.expect_complete()

    async def test_throttle_blueprint_shares_no_state(self, materializer: Materializer) -> None:
        from reactive import Flow

        shared = Flow().throttle(1, 86400.0, 1, ThrottleMode.enforcing)
        for x in (1, 2):
            out = await Source.single(x).via(shared).via(shared).run_with(Sink.seq(), materializer)
            assert out == [x]

    async def test_throttle_shapes_to_rate(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = (
            Source.from_iterable(range(4)).throttle(1, 1.0).run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        await sub.expect_next(0)  # the bucket starts full (burst 1)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next(1)
        await manual_clock.advance(1.0)
        await sub.expect_next(2)
        await manual_clock.advance(0.99)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.01)
        await sub.expect_next(3)
        await sub.expect_complete()

    async def test_throttle_burst_then_rate(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = (
            Source.from_iterable(range(6))
            .throttle(2, 1.0, maximum_burst=3)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        await sub.expect_next(0, 1, 2)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next(3)
        await manual_clock.advance(0.5)
        await sub.expect_next(4)
        await manual_clock.advance(0.5)
        await sub.expect_next(5)
        await sub.expect_complete()

    async def test_throttle_bucket_refills_up_to_burst(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 1.0, maximum_burst=2), materializer)
        sub.request(10)
        await manual_clock.advance(10.0)  # idle: the bucket holds 2 tokens, not 10
        for x in "abc":
            pub.send_next(x)
        await sub.expect_next("a", "b")
        await nothing(manual_clock, sub)
        await manual_clock.advance(1.0)
        await sub.expect_next("c")
        pub.send_complete()
        await sub.expect_complete()

    async def test_throttle_implicit_burst_is_tokens_per_100ms(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # 100 per second: a token every 10 ms, so the implicit burst is 10
        sub = (
            Source.from_iterable(range(12))
            .throttle(100, 1.0)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(20)
        assert await sub.expect_next_n(10) == list(range(10))
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.01)
        await sub.expect_next(10)
        await manual_clock.advance(0.01)
        await sub.expect_next(11)
        await sub.expect_complete()

    async def test_throttle_cost_function(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = (
            Source.from_iterable(["ab", "cd", "e"])
            .throttle(2, 1.0, maximum_burst=2, cost=len)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        await sub.expect_next("ab")
        await nothing(manual_clock, sub)
        await manual_clock.advance(1.0)
        await sub.expect_next("cd")
        await manual_clock.advance(0.5)
        await sub.expect_next("e")
        await sub.expect_complete()

    async def test_throttle_enforcing_fails_when_rate_exceeded(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.throttle(1, 1.0, maximum_burst=1, mode=ThrottleMode.enforcing), materializer
        )
        sub.request(10)
        pub.send_next(1)
        await sub.expect_next(1)
        await manual_clock.advance(1.0)
        pub.send_next(2)  # in time: passes
        await sub.expect_next(2)
        pub.send_next(3)  # too early
        exc = await sub.expect_error()
        assert isinstance(exc, RateExceededError)
        assert "throttle" in str(exc)
        await pub.expect_cancellation()

    async def test_throttle_completes_after_the_waiting_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 1.0), materializer)
        sub.request(10)
        pub.send_next(1).send_next(2).send_complete()
        await sub.expect_next(1)
        await nothing(manual_clock, sub)
        await manual_clock.advance(1.0)
        await sub.expect_next(2)
        await sub.expect_complete()

    async def test_throttle_failure_and_cancellation(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 1.0), materializer)
        sub.request(1)
        pub.send_error(ValueError("up"))
        assert isinstance(await sub.expect_error(), ValueError)

        pub, sub = probes(lambda s: s.throttle(1, 1.0), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    def test_throttle_rejects_bad_arguments(self) -> None:
        with pytest.raises(ValueError):
            Source.empty().throttle(0, 1.0)
        with pytest.raises(ValueError):
            Source.empty().throttle(1, 0)
        with pytest.raises(ValueError):  # -1 is "automatic" (as Akka); 0 is legal, also enforcing
            Source.empty().throttle(1, 1.0, maximum_burst=-2, mode=ThrottleMode.enforcing)
        with pytest.raises(TypeError):
            Source.empty().throttle(1, 1.0, mode="shaping")


class TestGroupedWithin:
    """``grouped_within``."""

    async def test_grouped_within_buffers_groups_until_requested(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(1000, 1.0), materializer)
        sub.request(1)
        pub.send_next(1).send_next(2).send_next(3)
        await manual_clock.advance(1.0)
        await sub.expect_next([1, 2, 3])
        pub.send_next(4).send_next(5)
        await quiet_for(manual_clock, 1.3, sub)  # the timer fired without demand
        pub.send_next(6)  # the group keeps filling meanwhile
        await nothing(manual_clock, sub)
        sub.request(1)
        await sub.expect_next([4, 5, 6])
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_drops_empty_groups(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(1000, 0.5), materializer)
        sub.request(2)
        await quiet_for(manual_clock, 0.6, sub)
        pub.send_next(1).send_next(2)
        await manual_clock.advance(0.5)
        await sub.expect_next([1, 2])
        await quiet_for(manual_clock, 1.1, sub)
        sub.request(3)
        await quiet_for(manual_clock, 0.6, sub)
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_no_empty_group_when_finished_without_elements(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(1000, 0.05), materializer)
        sub.request(1)
        await pub.expect_request()
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_resets_window_when_max_reached(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(3, 2.0), materializer)
        sub.request(2)
        await quiet_for(manual_clock, 1.0, sub)
        for x in range(1, 5):
            pub.send_next(x)
        await sub.expect_next([1, 2, 3])
        await quiet_for(manual_clock, 1.5, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next([4])
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_small_groups_with_backpressure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 11))
            .grouped_within(1, 86400.0)
            .throttle(1, 0.11, 0, ThrottleMode.shaping),
            materializer,
        )
        sub.request(20)
        got = []
        for _ in range(10):
            await manual_clock.advance(0.11)
            got.append(await sub.expect_next())
        assert got == [[x] for x in range(1, 11)]
        await sub.expect_complete()

    async def test_grouped_within_by_count(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable(range(5))
            .grouped_within(2, 10.0)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [[0, 1], [2, 3], [4]]

    async def test_grouped_within_emits_on_timer_only_if_non_empty(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(10, 1.0), materializer)
        sub.request(10)
        pub.send_next(1).send_next(2)
        await nothing(manual_clock, sub)
        await manual_clock.advance(1.0)
        await sub.expect_next([1, 2])
        await manual_clock.advance(1.0)  # empty group: nothing
        await nothing(manual_clock, sub)
        pub.send_next(3)
        await manual_clock.advance(1.0)
        await sub.expect_next([3])
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_count_restarts_the_timer(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(2, 1.0), materializer)
        sub.request(10)
        await manual_clock.advance(0.6)
        pub.send_next(1).send_next(2)
        await sub.expect_next([1, 2])  # closed by count at t=0.6: next tick at 1.6
        pub.send_next(3)
        await manual_clock.advance(0.6)  # t=1.2: the old schedule would have fired at 1.0
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.4)
        await sub.expect_next([3])
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_keeps_filling_while_backpressured(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(3, 1.0), materializer)
        pub.send_next(1)
        await manual_clock.advance(1.0)  # timer fires without demand: the group stays open
        pub.send_next(2).send_next(3).send_next(4)
        await manual_clock.advance(1.0)
        sub.request(1)
        await sub.expect_next([1, 2, 3])
        await nothing(manual_clock, sub)
        sub.request(1)
        await manual_clock.advance(1.0)
        await sub.expect_next([4])
        pub.send_complete()
        await sub.expect_complete()

    async def test_grouped_within_backpressures_when_group_is_full(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(2, 1.0), materializer)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await pub.expect_request() == 1
        pub.send_next(2)
        assert await pub.expect_request() == 1  # full group, no demand: one more is held (n + 1)
        pub.send_next(3)
        await nothing(manual_clock, pub)  # then upstream is back-pressured
        sub.request(1)
        await sub.expect_next([1, 2])
        assert await pub.expect_request() == 1  # 3 started the next group
        sub.cancel()
        await pub.expect_cancellation()

    async def test_grouped_within_final_group_and_failure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(5, 1.0), materializer)
        pub.send_next(1).send_next(2).send_complete()
        await nothing(manual_clock, sub)
        sub.request(1)
        await sub.expect_next([1, 2])
        await sub.expect_complete()

        pub, sub = probes(lambda s: s.grouped_within(5, 1.0), materializer)
        sub.request(1)
        pub.send_next(1).send_error(ValueError("up"))
        assert isinstance(await sub.expect_error(), ValueError)


class TestDelay:
    """``delay``."""

    async def test_delay_measured_from_arrival_of_each_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(Source.from_iterable([1, 2, 3]).delay(0.3), materializer)
        sub.request(2)
        await quiet_for(manual_clock, 0.2, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(1, 2)
        await quiet_for(manual_clock, 0.2, sub)
        sub.request(1)
        await sub.expect_next(3)  # already due
        await sub.expect_complete()

    async def test_delay_elements_within_the_same_window(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(0.3), materializer)
        sub.request(100)
        pub.send_next(1).send_next(2)
        await quiet_for(manual_clock, 0.2, sub)
        pub.send_next(3)
        await manual_clock.advance(0.1)
        await sub.expect_next(1, 2)
        await quiet_for(manual_clock, 0.15, sub)
        await manual_clock.advance(0.05)
        await sub.expect_next(3)
        pub.send_complete()
        await sub.expect_complete()

    @pytest.mark.parametrize(
        ("strategy", "expected"),
        [
            (OverflowStrategy.drop_tail, [*range(1, 16), 20]),
            (OverflowStrategy.drop_head, list(range(5, 21))),
            (OverflowStrategy.drop_buffer, list(range(17, 21))),
        ],
    )
    async def test_delay_drop_strategies_with_input_buffer_attribute(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        strategy: OverflowStrategy,
        expected: list[int],
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 21))
            .delay(1.0, strategy)
            .with_attributes(Attributes.input_buffer(16, 16)),
            materializer,
        )
        sub.request(100)
        await manual_clock.advance(1.0)
        assert await sub.expect_next_n(len(expected)) == expected
        await sub.expect_complete()

    async def test_delay_backpressure_with_input_buffer_of_one(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable([1, 2, 3])
            .delay(0.3, OverflowStrategy.backpressure)
            .with_attributes(Attributes.input_buffer(1, 1)),
            materializer,
        )
        sub.request(5)
        for x in (1, 2, 3):  # a buffer of one: the delays add up
            await quiet_for(manual_clock, 0.2, sub)
            await manual_clock.advance(0.1)
            await sub.expect_next(x)
        await sub.expect_complete()

    async def test_delay_fail_strategy_on_overflow(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 21))
            .delay(0.3, OverflowStrategy.fail)
            .with_attributes(Attributes.input_buffer(16, 16)),
            materializer,
        )
        sub.request(100)
        assert isinstance(await sub.expect_error(), BufferOverflowError)

    async def test_delay_adds_to_initial_delay(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 11)).initial_delay(1.0).delay(1.0), materializer
        )
        sub.request(10)
        await quiet_for(manual_clock, 1.8, sub)
        await manual_clock.advance(0.2)
        assert await sub.expect_next_n(10) == list(range(1, 11))
        await sub.expect_complete()

    async def test_delay_zero_and_empty_source(self, materializer: Materializer) -> None:
        sub = sink_probe(Source.empty().delay(0.0), materializer)
        sub.request(1)
        await sub.expect_complete()
        elems = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0]
        sub = sink_probe(Source.from_iterable(elems).delay(0.0), materializer)
        sub.request(len(elems))
        assert await sub.expect_next_n(len(elems)) == elems
        await sub.expect_complete()

    async def test_delay_holds_each_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(1.0), materializer)
        sub.request(10)
        pub.send_next(1)
        await manual_clock.advance(0.5)
        pub.send_next(2)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next(1)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next(2)
        pub.send_complete()
        await sub.expect_complete()

    async def test_delay_completes_after_buffer_drained(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = Source.from_iterable([1, 2, 3]).delay(2.0).run_with(TestSink.probe(), materializer)
        sub.request(10)
        await manual_clock.advance(1.9)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(1, 2, 3)
        await sub.expect_complete()

    async def test_delay_emits_due_element_when_downstream_pulls_late(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(1.0), materializer)
        sub.request(1)  # (upstream is first pulled on downstream's first pull, as Akka's)
        pub.send_next(1).send_next(2)
        await manual_clock.advance(1.0)
        await sub.expect_next(1)
        await manual_clock.advance(4.0)  # 2 was due at 1.0; downstream asks at 5.0
        await nothing(manual_clock, sub)
        sub.request(1)
        await sub.expect_next(2)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_delay_backpressures_when_buffer_full(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(1.0, buffer_size=2), materializer)
        sub.request(10)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await pub.expect_request() == 1
        pub.send_next(2)
        await nothing(manual_clock, pub)
        await manual_clock.advance(1.0)
        await sub.expect_next(1, 2)
        assert await pub.expect_request() == 1
        pub.send_complete()
        await sub.expect_complete()

    async def test_delay_overflow_strategies(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.delay(1.0, OverflowStrategy.drop_head, buffer_size=2), materializer
        )
        sub.request(10)
        pub.send_next(1).send_next(2).send_next(3).send_complete()
        await manual_clock.advance(1.0)
        await sub.expect_next(2, 3)
        await sub.expect_complete()

        pub, sub = probes(
            lambda s: s.delay(1.0, OverflowStrategy.fail, buffer_size=1), materializer
        )
        sub.request(10)
        pub.send_next(1).send_next(2)
        assert "buffer overflow" in str(await sub.expect_error())
        await pub.expect_cancellation()

    async def test_delay_fails_at_once_on_upstream_failure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(1.0), materializer)
        sub.request(10)
        pub.send_next(1).send_error(ValueError("up"))
        assert isinstance(await sub.expect_error(), ValueError)

    async def test_initial_delay(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.initial_delay(2.0), materializer)
        sub.request(10)
        await nothing(manual_clock, pub, sub)  # upstream is not even pulled
        await manual_clock.advance(2.0)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_next(2)  # later elements are not delayed
        await sub.expect_next(2)
        pub.send_complete()
        await sub.expect_complete()


class TestInitialDelay:
    """``initial_delay``."""

    async def test_initial_delay_zero_needs_no_timer(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable(range(1, 11))
            .initial_delay(0.0)
            .grouped(100)
            .run_with(Sink.head(), materializer)
        )
        assert out == list(range(1, 11))

    async def test_initial_delay_then_initial_timeout(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        late = Source.from_iterable(range(1, 11)).initial_delay(2.0).initial_timeout(1.0)
        done = late.run_with(Sink.ignore(), materializer)
        await manual_clock.advance(1.0)
        with pytest.raises(TimeoutError):
            await done
        in_time = Source.from_iterable(range(1, 11)).initial_delay(1.0).initial_timeout(2.0)
        done = in_time.run_with(Sink.ignore(), materializer)
        await manual_clock.advance(1.0)
        await done

    async def test_initial_delay_ignores_timer_while_backpressured(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(Source.from_iterable(range(1, 11)).initial_delay(0.5), materializer)
        await quiet_for(manual_clock, 1.5, sub)
        sub.request(20)
        assert await sub.expect_next_n(10) == list(range(1, 11))
        await sub.expect_complete()


class TestTakeWithin:
    """``take_within``."""

    async def test_take_within_delivers_within_the_duration_but_not_afterwards(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.take_within(1.0), materializer)
        sub.request(100)
        for x in (1, 2, 3):
            pub.send_next(x)
        await sub.expect_next(1, 2, 3)
        await manual_clock.advance(1.0)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_take_within_delivers_completion_and_error_before_the_duration(
        self,
        materializer: Materializer,
    ) -> None:
        sub = sink_probe(Source.from_iterable(range(1, 4)).take_within(86400.0), materializer)
        sub.request(100)
        await sub.expect_next(1, 2, 3)
        await sub.expect_complete()
        pub, sub = probes(lambda s: s.take_within(86400.0), materializer)
        pub.send_error(Boom("up"))
        assert isinstance(await sub.expect_error(), Boom)

    async def test_take_within(self, materializer: Materializer, manual_clock: ManualClock) -> None:
        pub, sub = probes(lambda s: s.take_within(1.0), materializer)
        sub.request(10)
        pub.send_next(1)
        await sub.expect_next(1)
        await manual_clock.advance(1.0)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_take_within_completes_with_upstream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = await Source.from_iterable([1, 2]).take_within(1.0).run_with(Sink.seq(), materializer)
        assert out == [1, 2]


class TestDropWithin:
    """``drop_within``."""

    async def test_drop_within_delivers_elements_after_the_duration(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.drop_within(1.0), materializer)
        sub.request(100)
        for x in (1, 2, 3):
            pub.send_next(x)
        await quiet_for(manual_clock, 1.5, sub)
        for x in (4, 5):
            pub.send_next(x)
        await sub.expect_next(4, 5)
        pub.send_complete()
        await sub.expect_complete()

    async def test_drop_within_delivers_completion_before_the_duration(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.drop_within(86400.0), materializer)
        pub.send_complete()
        await sub.expect_complete()

    async def test_drop_within(self, materializer: Materializer, manual_clock: ManualClock) -> None:
        pub, sub = probes(lambda s: s.drop_within(1.0), materializer)
        sub.request(10)
        pub.send_next(1)
        await nothing(manual_clock, sub)
        await manual_clock.advance(1.0)
        pub.send_next(2)
        await sub.expect_next(2)
        pub.send_error(ValueError("up"))
        assert isinstance(await sub.expect_error(), ValueError)


class TestTimeouts:
    """What every timeout operator shares."""

    @pytest.mark.parametrize(
        "build",
        [
            lambda s: s.initial_timeout(2.0),
            lambda s: s.completion_timeout(2.0),
            lambda s: s.idle_timeout(2.0),
            lambda s: s.backpressure_timeout(1.0),
        ],
    )
    async def test_timeouts_pass_elements_and_errors_unmodified(
        self, materializer: Materializer, build: Callable[[Any], Any]
    ) -> None:
        out = (
            await build(Source.from_iterable(range(1, 101)))
            .grouped(200)
            .run_with(Sink.head(), materializer)
        )
        assert out == list(range(1, 101))
        with pytest.raises(Boom):
            await (
                build(Source.from_iterable(range(1, 101)).concat(Source.failed(Boom("test"))))
                .grouped(200)
                .run_with(Sink.head(), materializer)
            )


class TestIdleTimeout:
    """``idle_timeout``."""

    async def test_idle_timeout_fails_only_when_time_between_elements_is_too_large(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.idle_timeout(1.0), materializer)
        for _ in range(4):  # two seconds overall, but never idle for one
            pub.send_next(1)
            await sub.request_next(1)
            await quiet_for(manual_clock, 0.5, sub)
        await manual_clock.advance(1.0)
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)

    async def test_idle_timeout(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.idle_timeout(1.0), materializer)
        sub.request(10)
        pub.send_next(1)
        await sub.expect_next(1)
        await manual_clock.advance(0.75)
        pub.send_next(2)  # resets the deadline to 1.75
        await sub.expect_next(2)
        await manual_clock.advance(0.875)  # t = 1.625
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.5)  # t = 2.125
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)
        assert "idle timeout" in str(exc) and "1 s" in str(exc)
        await pub.expect_cancellation()

    async def test_idle_timeout_passes_a_completing_stream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable([1, 2]).idle_timeout(1.0).run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2]


class TestCompletionTimeout:
    """``completion_timeout``."""

    async def test_completion_timeout_fails_if_not_completed(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.completion_timeout(2.0), materializer)
        pub.send_next(1)
        await sub.request_next(1)
        await quiet_for(manual_clock, 0.5, sub)
        pub.send_next(2)
        await sub.request_next(2)
        await quiet_for(manual_clock, 0.5, sub)
        await manual_clock.advance(1.0)
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)
        await pub.expect_cancellation()

    async def test_completion_timeout(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.completion_timeout(2.0), materializer)
        sub.request(10)
        pub.send_next(1)
        await sub.expect_next(1)
        await manual_clock.advance(1.9)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.1)
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError)
        assert "completion timeout" in str(exc)
        await pub.expect_cancellation()

        pub, sub = probes(lambda s: s.completion_timeout(2.0), materializer)
        sub.request(10)
        pub.send_complete()
        await sub.expect_complete()
        await manual_clock.advance(3.0)  # the timer died with the stage
        await nothing(manual_clock, sub)


class TestInitialTimeout:
    """``initial_timeout``."""

    async def test_initial_timeout_fails_if_no_first_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(Source.never().initial_timeout(1.0), materializer)
        await quiet_for(manual_clock, 0.5, sub)
        await manual_clock.advance(0.5)
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)

    async def test_initial_timeout(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.initial_timeout(1.0), materializer)
        sub.request(10)
        await manual_clock.advance(1.0)
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError)
        assert "initial timeout" in str(exc)
        await pub.expect_cancellation()

        pub, sub = probes(lambda s: s.initial_timeout(1.0), materializer)
        sub.request(10)
        pub.send_next(1)
        await sub.expect_next(1)
        await manual_clock.advance(5.0)
        await nothing(manual_clock, sub)
        pub.send_complete()
        await sub.expect_complete()


async def backpressure_timeout_probes(
    materializer: Materializer, demand: int = 0, first: int | None = None
) -> tuple[Any, Any]:
    """``backpressure_timeout(1.0)`` between probes with ``demand`` requested and, unless
    ``first`` is None, ``first`` sent and received: ``(pub, sub)``."""
    pub, sub = probes(lambda s: s.backpressure_timeout(1.0), materializer)
    if demand:
        sub.request(demand)
    if first is not None:
        pub.send_next(first)
        await sub.expect_next(first)
    return pub, sub


class TestBackpressureTimeout:
    """``backpressure_timeout``."""

    async def test_backpressure_timeout_succeeds_if_demand_arrives(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(Source.from_iterable(range(1, 5)).backpressure_timeout(1.0), materializer)
        for x in (1, 2, 3):
            await sub.request_next(x)
            await quiet_for(manual_clock, 0.25, sub)
        await sub.request_next(4)
        await sub.expect_complete()

    async def test_backpressure_timeout_not_thrown_for_a_slow_publisher(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = await backpressure_timeout_probes(materializer, 2)
        await quiet_for(manual_clock, 1.0, sub)
        pub.send_next("quick")
        await sub.expect_next("quick")
        await quiet_for(manual_clock, 3.0, sub)
        pub.send_next("slow")
        await sub.expect_next("slow")
        pub.send_complete()
        await sub.expect_complete()

    async def test_backpressure_timeout_not_thrown_when_publisher_never_emits(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = await backpressure_timeout_probes(materializer, 16)
        await quiet_for(manual_clock, 2.0, sub)
        pub.send_complete()
        await sub.expect_complete()

    async def test_backpressure_timeout_thrown_when_subscriber_is_late_or_silent(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        _pub, sub = await backpressure_timeout_probes(materializer, 1, first=1)
        await manual_clock.advance(3.0)
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)

        _pub, sub = await backpressure_timeout_probes(materializer)
        await manual_clock.advance(3.0)  # never any demand at all
        assert isinstance(await sub.expect_error(), StreamTimeoutError)

    async def test_backpressure_timeout_not_thrown_when_publisher_completes_short(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = await backpressure_timeout_probes(materializer, 2, first=1)
        await quiet_for(manual_clock, 2.0, sub)
        pub.send_complete()
        await sub.expect_complete()

    async def test_backpressure_timeout(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = await backpressure_timeout_probes(materializer, 1, first=1)
        await manual_clock.advance(0.75)
        sub.request(1)  # demand in time
        await manual_clock.advance(2.0)  # waiting for upstream is no back pressure
        await nothing(manual_clock, sub)
        pub.send_next(2)
        await sub.expect_next(2)
        await manual_clock.advance(1.25)  # no demand for > 1 s after the emission
        exc = await sub.expect_error()
        assert isinstance(exc, StreamTimeoutError)
        assert "backpressure timeout" in str(exc)
        await pub.expect_cancellation()


class TestKeepAlive:
    """``keep_alive``."""

    async def test_keep_alive_emits_periodically_after_silent_periods(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        src = Source.from_iterable(range(1, 6)).concat(
            Source.from_iterable(range(6, 11)).initial_delay(2.0)
        )
        sub = sink_probe(src.keep_alive(0.6, lambda: 0), materializer)
        sub.request(100)
        await sub.expect_next(1, 2, 3, 4, 5)
        for _ in range(3):
            await manual_clock.advance(0.6)
            await sub.expect_next(0)
        await manual_clock.advance(0.25)
        await sub.expect_next(6, 7, 8, 9, 10)
        await sub.expect_complete()

    async def test_keep_alive_does_not_inject_when_upstream_is_fast(
        self,
        materializer: Materializer,
    ) -> None:
        out = (
            await Source.from_iterable(range(1, 11))
            .keep_alive(1.0, lambda: 0)
            .run_with(Sink.seq(), materializer)
        )
        assert out == list(range(1, 11))

    async def test_keep_alive_timer_fires_before_initial_request(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.keep_alive(1.0, lambda: 0), materializer)
        await quiet_for(manual_clock, 1.5, sub)
        sub.request(1)
        await sub.expect_next(0)
        pub.send_complete()
        await sub.expect_complete()

    async def test_keep_alive_prefers_upstream_element_over_injected(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.prepend(Source.from_iterable(range(1, 11))).keep_alive(1.0, lambda: 0),
            materializer,
        )
        sub.request(10)
        assert await sub.expect_next_n(10) == list(range(1, 11))
        await quiet_for(manual_clock, 1.5, sub)
        pub.send_next(1)
        await quiet_for(manual_clock, 0.5, sub)
        sub.request(1)
        await sub.expect_next(1)
        pub.send_complete()
        await sub.expect_complete()

    async def test_keep_alive_resets_deadline_after_injected_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.keep_alive(1.0, lambda: 0), materializer)
        sub.request(2)
        await quiet_for(manual_clock, 0.5, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next(0)
        await quiet_for(manual_clock, 0.5, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next(0)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_keep_alive_injects_when_idle(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.keep_alive(1.0, lambda: "ka"), materializer)
        sub.request(1)
        await manual_clock.advance(0.9)
        await nothing(manual_clock, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next("ka")
        sub.request(1)
        pub.send_next("x")  # upstream elements pass at once
        await sub.expect_next("x")
        pub.send_complete()
        await sub.expect_complete()

    async def test_keep_alive_does_not_accumulate_and_prefers_upstream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.keep_alive(1.0, lambda: "ka"), materializer)
        await manual_clock.advance(5.0)  # idle without demand: nothing is queued up
        sub.request(1)
        await sub.expect_next("ka")  # the idle period already elapsed: inject now
        sub.request(1)
        await nothing(manual_clock, sub)
        await manual_clock.advance(1.0)
        await sub.expect_next("ka")
        pub.send_next("x")  # waits for demand; preferred over an injection
        await manual_clock.advance(3.0)
        sub.request(1)
        await sub.expect_next("x")
        sub.cancel()
        await pub.expect_cancellation()


class TestDebounce:
    """``debounce``."""

    async def test_debounce_emits_latest_after_silence(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = flow_probes(Flow().debounce(1.0), materializer)
        sub.request(10)
        pub.send_next(1).send_next(2)
        await manual_clock.advance(0.5)
        pub.send_next(3)  # restarts the quiet period
        await manual_clock.advance(0.9)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.1)
        await sub.expect_next(3)
        pub.send_next(4)
        await manual_clock.advance(1.0)
        await sub.expect_next(4)
        pub.send_complete()
        await sub.expect_complete()

    async def test_debounce_emits_pending_on_completion(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = flow_probes(Flow().debounce(5.0), materializer)
        sub.request(10)
        pub.send_next("a").send_next("b").send_complete()
        await sub.expect_next("b")  # at once, without waiting for the quiet period
        await sub.expect_complete()
        out = await Source.empty().debounce(1.0).run_with(Sink.seq(), materializer)
        assert out == []

    async def test_debounce_waits_for_demand_and_newer_element_wins(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = flow_probes(Flow().debounce(1.0), materializer)
        pub.send_next(1)
        await manual_clock.advance(2.0)
        await sub.expect_no_message(0)
        pub.send_next(2)  # supersedes 1, which was quiet but not demanded
        await manual_clock.advance(0.5)
        sub.request(1)
        await manual_clock.settle()
        await sub.expect_no_message(0)
        await manual_clock.advance(0.5)
        await sub.expect_next(2)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_debounce_failure_drops_pending(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = flow_probes(Flow().debounce(1.0), materializer)
        sub.request(1)
        err = Boom("upstream")
        pub.send_next(1).send_error(err)
        assert await sub.expect_error() is err


@pytest.mark.parametrize(
    ("operator", "error"),
    [
        ("initial_timeout", "InitialTimeoutError"),
        ("completion_timeout", "CompletionTimeoutError"),
        ("idle_timeout", "StreamIdleTimeoutError"),
        ("backpressure_timeout", "BackpressureTimeoutError"),
    ],
)
async def test_each_timeout_fails_with_its_own_error(
    operator: str, error: str, materializer: Materializer, manual_clock: ManualClock
) -> None:
    # Akka's InitialTimeoutException, CompletionTimeoutException, ...: told apart by type,
    # each a StreamTimeoutError (and a TimeoutError), as was the one error before.
    import reactive

    pub, sub = probes(lambda s: getattr(s, operator)(1.0), materializer)
    if operator == "backpressure_timeout":
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
    await manual_clock.advance(2.0)
    exc = await sub.expect_error()
    assert type(exc) is getattr(reactive, error), exc
    assert isinstance(exc, StreamTimeoutError) and isinstance(exc, TimeoutError)
    others = {
        "InitialTimeoutError",
        "CompletionTimeoutError",
        "StreamIdleTimeoutError",
        "BackpressureTimeoutError",
    } - {error}
    assert not any(isinstance(exc, getattr(reactive, o)) for o in others)


class TestTimedAsAkka:
    """Found by a review of the timed operators against Akka's specs."""

    @pytest.mark.parametrize("cost", [None, 0.5, "1", True])
    async def test_throttle_cost_must_be_an_int(
        self, cost: Any, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 1.0, cost=lambda _: cost), materializer)
        sub.request(2)
        pub.send_next(0)
        exc = await sub.expect_error()
        assert isinstance(exc, TypeError) and "[throttle] the cost function must return" in str(exc)

    def test_throttle_refuses_rates_above_one_element_per_nanosecond(self) -> None:
        from reactive import Source

        with pytest.raises(ValueError, match="one element per nanosecond"):
            Source.single(1).throttle(10, 1e-9)
        Source.single(1).throttle(1, 1e-9)  # exactly one per nanosecond is fine

    async def test_delay_does_not_pull_before_downstream_asks(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(1.0), materializer)
        await pub.expect_no_message(0.01)  # Akka's Delay has no pull in preStart
        sub.request(1)
        await pub.expect_request()
        pub.send_next(5)
        await manual_clock.advance(1.0)
        await sub.expect_next(5)
        sub.cancel()
