"""``DelayOverflowStrategy.emit_early`` for ``delay`` and ``delay_with`` (Akka's
``EmitEarly``): a full buffer pushes its head before its delay elapsed when a new
element arrives, and backpressures while downstream has no demand. On the ManualClock."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    DelayOverflowStrategy,
    DelayStrategy,
    Materializer,
    OverflowStrategy,
    Source,
)
from tests.reactive.support import Boom, nothing, probes, quiet_for, sink_probe

if TYPE_CHECKING:
    from reactive.testkit import ManualClock, PublisherProbe

EARLY = DelayOverflowStrategy.emit_early


async def pulls(clock: ManualClock, pub: PublisherProbe) -> int:
    """How many elements the stage has pulled from ``pub`` so far (then nothing more)."""
    await clock.settle()
    n = 0
    while True:
        try:
            await pub.expect_no_message(0)
            return n
        except AssertionError:
            n += await pub.expect_request()


class TestEmitEarlyDelay:
    async def test_a_full_buffer_emits_its_head_early_when_a_new_element_arrives(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # Akka's FlowDelaySpec "emit early when buffer is full and in EmitEarly mode".
        pub, sub = probes(
            lambda s: s.delay(10.0, EARLY).with_attributes(Attributes.input_buffer(16, 16)),
            materializer,
        )
        sub.request(20)
        for i in range(1, 17):
            pub.send_next(i)
        await quiet_for(manual_clock, 1.0, sub)  # 16 buffered, none due before t=10
        pub.send_next(17)
        await sub.expect_next(1)  # at t=1, nine seconds early
        await nothing(manual_clock, sub)
        pub.send_next(18)
        await sub.expect_next(2)
        await quiet_for(manual_clock, 8.9, sub)  # t=9.9: 3..16 are due at t=10
        await manual_clock.advance(0.1)
        assert await sub.expect_next_n(14) == list(range(3, 17))
        pub.send_complete()
        await quiet_for(manual_clock, 0.9, sub)  # 17 and 18 are due at t=11
        await manual_clock.advance(0.1)
        await sub.expect_next(17, 18)
        await sub.expect_complete()

    async def test_the_default_buffer_is_the_input_buffer_attribute(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 6))
            .delay(1.0, EARLY)
            .with_attributes(Attributes.input_buffer(2, 2)),
            materializer,
        )
        sub.request(10)
        # A buffer of two: 3, 4 and 5 each push the head out early; 4 and 5 wait.
        await sub.expect_next(1, 2, 3)
        await quiet_for(manual_clock, 0.9, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(4, 5)
        await sub.expect_complete()

    async def test_without_demand_a_full_buffer_backpressures(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(5.0, EARLY, buffer_size=2), materializer)
        for i in range(1, 10):
            pub.send_next(i)
        sub.request(1)
        # 1 and 2 fill the buffer; downstream's demand lets 3 in, which pushes 1 early.
        await sub.expect_next(1)
        assert await pulls(manual_clock, pub) == 3
        # Full and no demand: nothing is pulled, nothing dropped, nothing emitted.
        await quiet_for(manual_clock, 4.0, sub)
        assert await pulls(manual_clock, pub) == 0
        sub.request(1)  # demand again: 4 is pulled and pushes 2 out early
        await sub.expect_next(2)
        assert await pulls(manual_clock, pub) == 1
        await quiet_for(manual_clock, 0.5, sub)
        sub.request(1)  # 3 is due at t=5 only: it goes out early, making room for 5
        await sub.expect_next(3)
        assert await pulls(manual_clock, pub) == 1
        sub.cancel()
        await pub.expect_cancellation()

    async def test_an_element_due_is_emitted_normally_and_makes_room(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(1.0, EARLY, buffer_size=2), materializer)
        sub.request(1)
        pub.send_next("a")
        await quiet_for(manual_clock, 0.5, sub)
        pub.send_next("b")  # due at t=1.5
        await quiet_for(manual_clock, 0.49, sub)
        await manual_clock.advance(0.01)
        await sub.expect_next("a")  # due at t=1: emitted by its timer, not early
        pub.send_next("c")  # due at t=2: the buffer is full again
        sub.request(1)
        await nothing(manual_clock, sub)  # no new element: b waits for its delay
        pub.send_complete()
        await quiet_for(manual_clock, 0.49, sub)
        await manual_clock.advance(0.01)
        await sub.expect_next("b")
        sub.request(5)
        await quiet_for(manual_clock, 0.49, sub)
        await manual_clock.advance(0.01)
        await sub.expect_next("c")
        await sub.expect_complete()

    async def test_upstream_failure_fails_with_a_full_buffer(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(10.0, EARLY, buffer_size=2), materializer)
        sub.request(5)
        pub.send_next(1).send_next(2).send_next(3)
        await sub.expect_next(1)
        pub.send_error(Boom("up"))
        assert isinstance(await sub.expect_error(), Boom)

    async def test_downstream_cancel_cancels_upstream(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.delay(10.0, EARLY, buffer_size=1), materializer)
        sub.request(1)
        pub.send_next(1).send_next(2)
        await sub.expect_next(1)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_delay_with_emit_early_keeps_each_elements_own_delay(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        class Own(DelayStrategy[float]):
            def next_delay(self, elem: float) -> float:
                return elem

        pub, sub = probes(lambda s: s.delay_with(Own, EARLY, buffer_size=2), materializer)
        sub.request(10)
        pub.send_next(5.0).send_next(0.5)
        await quiet_for(manual_clock, 0.2, sub)
        pub.send_next(3.0)  # full: 5.0 goes out early
        await sub.expect_next(5.0)
        await quiet_for(manual_clock, 0.2, sub)  # t=0.4: 0.5 is due at t=0.5
        await manual_clock.advance(0.1)
        await sub.expect_next(0.5)
        await quiet_for(manual_clock, 2.6, sub)  # 3.0 arrived at t=0.2: due at t=3.2
        await manual_clock.advance(0.1)
        await sub.expect_next(3.0)
        pub.send_complete()
        await sub.expect_complete()

    async def test_delay_with_emit_early_through_the_attribute_buffer(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 5))
            .delay_with(lambda: DelayStrategy.fixed_delay(2.0), EARLY)
            .with_attributes(Attributes.input_buffer(1, 1)),
            materializer,
        )
        sub.request(10)
        await sub.expect_next(1, 2, 3)
        await quiet_for(manual_clock, 1.9, sub)
        await manual_clock.advance(0.1)
        await sub.expect_next(4)
        await sub.expect_complete()


class TestDelayOverflowStrategy:
    @pytest.mark.parametrize(
        ("strategy", "expected"),
        [
            (DelayOverflowStrategy.drop_tail, [*range(1, 16), 20]),
            (DelayOverflowStrategy.drop_head, list(range(5, 21))),
            (DelayOverflowStrategy.drop_buffer, list(range(17, 21))),
            (DelayOverflowStrategy.backpressure, list(range(1, 21))),
        ],
    )
    async def test_the_overflow_strategy_values_work_as_overflow_strategy(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        strategy: DelayOverflowStrategy,
        expected: list[int],
    ) -> None:
        sub = sink_probe(Source.from_iterable(range(1, 21)).delay(1.0, strategy), materializer)
        sub.request(100)
        await manual_clock.advance(1.0)
        first = expected[:16]
        assert await sub.expect_next_n(len(first)) == first
        if len(expected) > 16:
            await manual_clock.advance(1.0)
            assert await sub.expect_next_n(len(expected) - 16) == expected[16:]
        await sub.expect_complete()

    def test_every_overflow_strategy_has_a_delay_counterpart(self) -> None:
        names = {s.name for s in OverflowStrategy}
        assert {s.name for s in DelayOverflowStrategy} == names | {"emit_early"}
        assert repr(EARLY) == "DelayOverflowStrategy.emit_early"

    def test_a_wrong_strategy_is_a_type_error_naming_the_operator(self) -> None:
        bad: Any = "emit_early"
        expected = "must be an OverflowStrategy or a DelayOverflowStrategy, got str"
        with pytest.raises(TypeError, match=rf"^delay\(seconds, .*{expected}"):
            Source.single(1).delay(1.0, bad)
        with pytest.raises(TypeError, match=rf"^delay_with\(strategy_supplier, .*{expected}"):
            Source.single(1).delay_with(lambda: DelayStrategy.fixed_delay(1.0), bad)
