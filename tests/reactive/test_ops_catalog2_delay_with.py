"""Catalog timer operator ``delay_with`` (Akka's delayWith) and ``DelayStrategy``
(fixedDelay, linearIncreasingDelay), on the ManualClock."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    BufferOverflowError,
    DelayStrategy,
    Materializer,
    OverflowStrategy,
    Source,
)
from tests.reactive.support import Boom, probes, quiet_for, sink_probe

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


class PerElement(DelayStrategy[float]):
    """A strategy whose delay is the element itself; counts its instances."""

    made = 0

    def __init__(self) -> None:
        PerElement.made += 1

    def next_delay(self, elem: float) -> float:
        return elem


class TestDelayStrategy:
    def test_fixed_delay(self) -> None:
        s = DelayStrategy.fixed_delay(0.5)
        assert [s.next_delay(x) for x in ("a", 1, None)] == [0.5, 0.5, 0.5]

    def test_linear_increasing_delay_grows_caps_and_resets(self) -> None:
        s = DelayStrategy.linear_increasing_delay(
            1.0, lambda x: x > 0, initial_delay=0.5, max_delay=2.0
        )
        assert [s.next_delay(x) for x in (1, 1, 1, 1, 0, 1)] == [1.5, 2.0, 2.0, 2.0, 0.5, 1.5]

    def test_linear_increasing_delay_defaults(self) -> None:
        s = DelayStrategy.linear_increasing_delay(0.25, lambda x: True)
        assert [s.next_delay(x) for x in range(3)] == [0.25, 0.5, 0.75]

    def test_linear_increasing_delay_checks(self) -> None:
        with pytest.raises(ValueError, match="increase_step must be > 0"):
            DelayStrategy.linear_increasing_delay(0, lambda x: True)
        with pytest.raises(ValueError, match="max_delay .* must be greater than initial_delay"):
            DelayStrategy.linear_increasing_delay(1, lambda x: True, 2.0, 2.0)
        with pytest.raises(TypeError, match="needs_increase must be callable"):
            DelayStrategy.linear_increasing_delay(1, 5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"fixed_delay\(seconds\): seconds must be >= 0"):
            DelayStrategy.fixed_delay(-1)

    def test_the_base_class_must_be_overridden(self) -> None:
        with pytest.raises(NotImplementedError, match="must override next_delay"):
            DelayStrategy().next_delay(1)


class TestDelayWith:
    async def test_each_element_gets_its_own_delay_from_arrival(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay_with(PerElement), materializer)
        sub.request(10)
        pub.send_next(0.5)
        await quiet_for(manual_clock, 0.4, sub)
        pub.send_next(0.2)  # due at 0.6
        await manual_clock.advance(0.1)
        await sub.expect_next(0.5)
        await quiet_for(manual_clock, 0.05, sub)
        await manual_clock.advance(0.05)
        await sub.expect_next(0.2)
        pub.send_complete()
        await sub.expect_complete()

    async def test_order_is_kept_a_short_delay_waits_behind_a_long_one(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(Source.from_iterable([1.0, 0.0, 0.5]).delay_with(PerElement), materializer)
        sub.request(3)
        await quiet_for(manual_clock, 0.9, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(1.0, 0.0, 0.5)
        await sub.expect_complete()

    async def test_linear_increasing_delay_in_a_stream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        def supplier() -> DelayStrategy[int]:
            return DelayStrategy.linear_increasing_delay(1.0, lambda x: x > 0)

        pub, sub = probes(lambda s: s.delay_with(supplier), materializer)
        sub.request(10)
        pub.send_next(1)  # 1 s
        await quiet_for(manual_clock, 0.9, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(1)
        pub.send_next(2)  # 2 s
        await quiet_for(manual_clock, 1.9, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(2)
        pub.send_next(0)  # reset: 0 s
        await sub.expect_next(0)
        pub.send_complete()
        await sub.expect_complete()

    async def test_one_strategy_per_materialization(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        src = Source.from_iterable([0.0, 0.0]).delay_with(PerElement)
        before = PerElement.made
        for _ in range(2):
            sub = sink_probe(src, materializer)
            sub.request(2)
            await sub.expect_next(0.0, 0.0)
            await sub.expect_complete()
        assert PerElement.made == before + 2

    async def test_backpressure_by_default_when_the_buffer_is_full(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.delay_with(lambda: DelayStrategy.fixed_delay(1.0), buffer_size=2),
            materializer,
        )
        sub.request(1)  # upstream is first pulled on downstream's first pull (Akka's)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await pub.expect_request() == 1
        pub.send_next(2)
        await quiet_for(manual_clock, 0.5, pub)  # full: no more demand upstream
        await manual_clock.advance(0.5)
        await sub.expect_next(1)
        assert await pub.expect_request() == 1  # room again
        sub.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize(
        ("strategy", "expected"),
        [
            (OverflowStrategy.drop_head, [2, 3]),
            (OverflowStrategy.drop_tail, [1, 3]),
            (OverflowStrategy.drop_new, [1, 2]),
        ],
    )
    async def test_overflow_strategies(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        strategy: OverflowStrategy,
        expected: list[int],
    ) -> None:
        src = Source.from_iterable([1, 2, 3]).delay_with(
            lambda: DelayStrategy.fixed_delay(1.0), strategy
        )
        sub = sink_probe(src.add_attributes(Attributes.input_buffer(2, 2)), materializer)
        sub.request(5)
        await manual_clock.advance(1.0)
        await sub.expect_next(*expected)
        await sub.expect_complete()

    async def test_fail_on_overflow(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        src = Source.from_iterable([1, 2, 3]).delay_with(
            lambda: DelayStrategy.fixed_delay(1.0), OverflowStrategy.fail, buffer_size=2
        )
        sub = sink_probe(src, materializer)
        sub.request(5)
        assert isinstance(await sub.expect_error(), BufferOverflowError)

    async def test_a_new_head_with_a_shorter_delay_is_not_held_by_the_old_timer(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # drop_head replaces a head due at 5 s by one due at 1 s.
        pub, sub = probes(
            lambda s: s.delay_with(PerElement, OverflowStrategy.drop_head, buffer_size=1),
            materializer,
        )
        sub.request(5)
        pub.send_next(5.0)
        await manual_clock.settle()
        pub.send_next(1.0)
        await quiet_for(manual_clock, 0.9, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(1.0)
        pub.send_complete()
        await sub.expect_complete()

    @pytest.mark.parametrize("bad", [-1, math.nan, math.inf, "1", None])
    async def test_an_invalid_delay_fails_naming_the_stage(
        self, materializer: Materializer, manual_clock: ManualClock, bad: Any
    ) -> None:
        class Bad(DelayStrategy[int]):
            def next_delay(self, elem: int) -> Any:
                return bad

        sub = sink_probe(Source.single(1).delay_with(Bad), materializer)
        sub.request(1)
        err = await sub.expect_error()
        assert isinstance(err, ValueError)
        assert "[delay_with] next_delay returned" in str(err)

    async def test_a_raising_next_delay_fails_the_stream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        class Raising(DelayStrategy[int]):
            def next_delay(self, elem: int) -> float:
                raise Boom("delay")

        pub, sub = probes(lambda s: s.delay_with(Raising), materializer)
        sub.request(1)
        pub.send_next(1)
        assert isinstance(await sub.expect_error(), Boom)
        assert isinstance(await pub.expect_cancellation(), Boom)

    async def test_a_supplier_returning_no_strategy_names_the_stage(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(Source.single(1).delay_with(lambda: 0.5), materializer)
        sub.request(1)
        err = await sub.expect_error()
        assert isinstance(err, TypeError)
        assert "[delay_with] strategy_supplier() must return a DelayStrategy" in str(err)

    async def test_any_object_with_next_delay_is_accepted(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        class Duck:
            def next_delay(self, elem: int) -> float:
                return 0.0

        sub = sink_probe(Source.from_iterable([1, 2]).delay_with(Duck), materializer)
        sub.request(2)
        await sub.expect_next(1, 2)
        await sub.expect_complete()

    def test_checks_its_arguments(self) -> None:
        with pytest.raises(TypeError, match=r"delay_with\(.*\): strategy_supplier must be"):
            Source.single(1).delay_with(DelayStrategy.fixed_delay(1.0))  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="buffer_size must be >= 1"):
            Source.single(1).delay_with(PerElement, buffer_size=0)
        with pytest.raises(TypeError, match="OverflowStrategy"):
            Source.single(1).delay_with(PerElement, "fail")  # type: ignore[arg-type]
