"""Explicit buffers (``reactive/_ops/buffers.py``): buffer and detach. Akka's FlowBufferSpec /
FlowDetacherSpec and our own cases, one class per operator.
"""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    BufferOverflowError,
    Flow,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
)
from reactive.testkit import (
    ManualClock,
    TestSink,
)
from tests.reactive.support import Boom, flow_probes, probes, quiet_for, settle

OS = OverflowStrategy


async def fill(pub: Any, xs: list[Any]) -> None:
    """Send ``xs`` as fast as the stage pulls (each only after a request)."""
    for x in xs:
        await pub.expect_request()
        pub.send_next(x)
    await settle()


class TestBuffer:
    """``buffer``."""

    async def test_buffer_accepts_elements_while_downstream_is_silent(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = flow_probes(Flow().buffer(100, OverflowStrategy.backpressure), materializer)
        for i in range(1, 101):
            pub.send_next(i)
        await settle()
        assert pub.pending_demand == 100  # all 100 fit; the 101st is not asked for
        for i in range(1, 101):
            assert await sub.request_next() == i
        sub.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize(
        ("strategy", "sent", "drained"),
        [
            (OverflowStrategy.drop_head, 200, list(range(101, 201))),
            (OverflowStrategy.drop_tail, 200, [*range(1, 100), 200]),
            (OverflowStrategy.drop_buffer, 150, list(range(101, 151))),
            (OverflowStrategy.drop_new, 150, list(range(1, 101))),
        ],
        ids=["drop_head", "drop_tail", "drop_buffer", "drop_new"],
    )
    async def test_buffer_drop_strategies_as_in_the_spec(
        self, materializer: Materializer, strategy: Any, sent: int, drained: list[int]
    ) -> None:
        pub, sub = flow_probes(Flow().buffer(100, strategy), materializer)
        for i in range(1, sent + 1):
            pub.send_next(i)
        await settle(60)
        for i in drained:
            assert await sub.request_next() == i
        sub.request(1)
        await sub.expect_no_message(0.02)
        pub.send_next(-1)
        await sub.expect_next(-1)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_buffer_fail_strategy_fails_downstream_and_cancels_upstream(
        self,
        materializer: Materializer,
    ) -> None:
        from reactive import BufferOverflowError

        pub, sub = flow_probes(Flow().buffer(100, OverflowStrategy.fail), materializer)
        for i in range(1, 101):
            pub.send_next(i)
        await settle(60)
        pub.send_next(-1)
        err = await sub.expect_error()
        assert isinstance(err, BufferOverflowError)
        assert "100" in str(err)
        await pub.expect_cancellation()

    async def test_buffer_chain_of_different_sizes(self, materializer: Materializer) -> None:
        bp = OverflowStrategy.backpressure
        out = await (
            Source.from_iterable(range(1000))
            .buffer(1, bp)
            .buffer(10, bp)
            .buffer(256, bp)
            .buffer(1, bp)
            .buffer(5, bp)
            .buffer(128, bp)
            .run_with(Sink.seq(), materializer)
        )
        assert out == list(range(1000))

    async def test_buffer_backpressured_mode_passes_everything(
        self, materializer: Materializer
    ) -> None:
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
        self, materializer: Materializer, manual_clock: ManualClock, strategy: OverflowStrategy
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
        self, materializer: Materializer, manual_clock: ManualClock
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

    async def test_buffer_fail_after_partial_drain(self, materializer: Materializer) -> None:
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

    async def test_buffer_pushes_directly_when_downstream_waits(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.buffer(1, OverflowStrategy.fail), materializer)
        sub.request(3)
        for i in (1, 2, 3):  # never buffered: no overflow although each follows at once
            pub.send_next(i)
        await sub.expect_next(1, 2, 3)
        pub.send_complete()
        await sub.expect_complete()

    @pytest.mark.parametrize("strategy", list(OS), ids=[s.value for s in OS])
    async def test_buffer_passes_everything_when_not_full(
        self, materializer: Materializer, strategy: OverflowStrategy
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
        self, materializer: Materializer, strategy: OverflowStrategy, expected: list[int]
    ) -> None:
        pub, sub = probes(lambda s: s.buffer(3, strategy), materializer)
        await fill(pub, [1, 2, 3, 4, 5])
        await pub.expect_request()  # a dropping buffer keeps pulling when full
        pub.send_complete()
        assert await sub.to_list() == expected

    async def test_buffer_backpressure_stops_pulling_when_full(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.buffer(3, OS.backpressure), materializer)
        await fill(pub, [1, 2, 3])
        await settle()
        assert pub.pending_demand == 3  # full: no fourth pull
        await sub.request_next(1)
        await pub.expect_request()
        pub.send_next(4).send_complete()
        assert await sub.to_list() == [2, 3, 4]

    async def test_buffer_fail_strategy(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.buffer(2, OS.fail), materializer)
        await fill(pub, [1, 2])
        await pub.expect_request()
        pub.send_next(3)
        err = await sub.expect_error()
        assert isinstance(err, BufferOverflowError)
        assert "2" in str(err)
        await pub.expect_cancellation()

    async def test_buffer_completes_after_draining(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.buffer(4, OS.backpressure), materializer)
        await fill(pub, [1, 2])
        pub.send_complete()
        await settle()
        await sub.expect_no_message(0)
        await sub.request_next(1)
        await sub.request_next(2)
        await sub.expect_complete()

    async def test_buffer_failure_overtakes_buffered_elements(
        self, materializer: Materializer
    ) -> None:
        err = Boom("up")
        pub, sub = probes(lambda s: s.buffer(4, OS.backpressure), materializer)
        await fill(pub, [1, 2])
        pub.send_error(err)
        assert await sub.expect_error() is err

    async def test_buffer_cancel_propagates(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.buffer(4, OS.drop_head), materializer)
        await fill(pub, [1])
        sub.cancel()
        await pub.expect_cancellation()

    async def test_buffer_rejects_bad_arguments(self) -> None:
        with pytest.raises(ValueError, match="size"):
            Source.single(1).buffer(0, OS.backpressure)
        with pytest.raises(TypeError):
            Source.single(1).buffer(1, "backpressure")


class TestDetach:
    """``detach``."""

    async def test_detach_passes_elements_and_completion(self, materializer: Materializer) -> None:
        sub = Source.from_iterable([1, 2, 3]).detach().run_with(TestSink.probe(), materializer)
        sub.request(1)
        await sub.expect_next(1)
        sub.request(3)
        await sub.expect_next(2, 3)
        await sub.expect_complete()

    async def test_detach_upstream_failure_and_cancel(self, materializer: Materializer) -> None:
        pub, sub = flow_probes(Flow().detach(), materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom())
        assert isinstance(await sub.expect_error(), Boom)
        pub, sub = flow_probes(Flow().detach(), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_detach_emits_the_last_element_when_completed(
        self, materializer: Materializer
    ) -> None:
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

    async def test_detach_pulls_eagerly_before_downstream_demand(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.detach(), materializer)
        assert await pub.expect_request() == 1  # no downstream request yet
        pub.send_next(1)
        await settle()
        assert pub.pending_demand == 1  # total pulls: the held element is not followed by a pull
        sub.request(1)
        await sub.expect_next(1)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_detach_holds_one_element_ahead(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.detach(), materializer)
        await pub.expect_request()
        pub.send_next(1)
        await settle()
        assert pub.pending_demand == 1  # one element held, no further pull
        await sub.request_next(1)
        await pub.expect_request()
        pub.send_next(2).send_complete()
        assert await sub.to_list() == [2]

    async def test_detach_elements(self, materializer: Materializer) -> None:
        assert await Source.from_iterable(range(10)).detach().run_with(
            Sink.seq(), materializer
        ) == list(range(10))
