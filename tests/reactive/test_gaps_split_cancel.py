"""``SubstreamCancelStrategy`` for ``split_when`` / ``split_after`` (Akka's
``splitWhen(substreamCancelStrategy)(p)``): ``drain`` (the default) drains a cancelled
substream and carries on; ``propagate`` cancels the whole stream (Akka's
``cancelStage(cause)``: upstream cancelled with the cause, the main output completed, or
failed when the cause is a failure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Flow,
    Materializer,
    Sink,
    Source,
    SubscriptionTimeoutError,
    SubstreamCancelStrategy,
)
from reactive.stage import SubscriptionWithCancelError
from reactive.testkit import TestSink
from tests.reactive.support import Boom, nothing, probes

if TYPE_CHECKING:
    from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe

DRAIN = SubstreamCancelStrategy.drain
PROPAGATE = SubstreamCancelStrategy.propagate


def split_at_3(
    materializer: Materializer, after: bool, strategy: SubstreamCancelStrategy | None
) -> tuple[PublisherProbe, SubscriberProbe]:
    """``split_when`` / ``split_after`` at element 3, the stage alone (a stream of one
    Source per substream), between probes; ``strategy`` None: the stage's default."""
    from reactive._ops.nesting import Split

    def p(x: int) -> bool:
        return x == 3

    stage = Split(p, after) if strategy is None else Split(p, after, strategy)
    return probes(lambda s: s.via(Flow.from_graph(stage)), materializer)


async def first_substream(
    materializer: Materializer, after: bool, strategy: SubstreamCancelStrategy | None
) -> tuple[PublisherProbe, SubscriberProbe, SubscriberProbe]:
    """:func:`split_at_3` with 1 sent and received in the first substream's probe."""
    pub, subs = split_at_3(materializer, after, strategy)
    subs.request(1)
    pub.send_next(1)
    s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
    s1.request(5)
    await s1.expect_next(1)
    return pub, subs, s1


@pytest.mark.parametrize("after", [False, True])
class TestPropagate:
    async def test_a_cancelled_substream_cancels_upstream_and_completes_the_main_output(
        self, materializer: Materializer, after: bool
    ) -> None:
        pub, subs, s1 = await first_substream(materializer, after, PROPAGATE)
        s1.cancel()
        cause = await pub.expect_cancellation()
        assert isinstance(cause, SubscriptionWithCancelError)
        await subs.expect_complete()

    async def test_a_failure_cause_fails_the_main_output_with_it(
        self, materializer: Materializer, after: bool
    ) -> None:
        pub, subs, s1 = await first_substream(materializer, after, PROPAGATE)
        s1.cancel(Boom("sub"))
        assert isinstance(await pub.expect_cancellation(), Boom)
        assert isinstance(await subs.expect_error(), Boom)

    async def test_a_later_substream_cancels_the_stream_too(
        self, materializer: Materializer, after: bool
    ) -> None:
        pub, subs, s1 = await first_substream(materializer, after, PROPAGATE)
        pub.send_next(2).send_next(3)
        await s1.expect_next(2)
        if after:
            await s1.expect_next(3)
            pub.send_next(4)
        await s1.expect_complete()
        subs.request(1)
        s2 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s2.request(1)
        await s2.expect_next(4 if after else 3)
        s2.cancel()
        await pub.expect_cancellation()
        await subs.expect_complete()

    async def test_a_substream_not_materialized_in_time_fails_the_stream(
        self, materializer: Materializer, manual_clock: ManualClock, after: bool
    ) -> None:
        pub, subs = split_at_3(materializer, after, PROPAGATE)
        subs.request(1)
        pub.send_next(1)
        late = await subs.expect_next()
        await manual_clock.advance(5.1)
        assert isinstance(await pub.expect_cancellation(), SubscriptionTimeoutError)
        assert isinstance(await subs.expect_error(), SubscriptionTimeoutError)
        with pytest.raises(SubscriptionTimeoutError):
            await late.run_with(Sink.seq(), materializer)

    async def test_through_the_dsl_the_first_cancel_ends_the_stream(
        self, materializer: Materializer, after: bool
    ) -> None:
        def p(x: int) -> bool:
            return x % 3 == 0

        src = Source.from_iterable(range(10))
        sub = src.split_after(p, PROPAGATE) if after else src.split_when(p, PROPAGATE)
        out = await sub.take(1).concat_substreams().run_with(Sink.seq(), materializer)
        # split_after: the first substream, [0], had completed before take(1) cancelled
        # it (a cancel after completion is no cancel); the second one's cancel propagates.
        assert out == ([0, 1] if after else [0])


@pytest.mark.parametrize("strategy", [None, DRAIN])
@pytest.mark.parametrize("after", [False, True])
class TestDrain:
    async def test_a_cancelled_substream_is_drained_and_the_next_one_starts(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        after: bool,
        strategy: SubstreamCancelStrategy | None,
    ) -> None:
        pub, subs, s1 = await first_substream(materializer, after, strategy)
        s1.cancel()
        subs.request(1)
        pub.send_next(2).send_next(3)
        if after:
            pub.send_next(4)
        s2 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s2.request(5)
        await s2.expect_next(4 if after else 3)
        await nothing(manual_clock, s2)
        pub.send_complete()
        await s2.expect_complete()
        await subs.expect_complete()

    async def test_through_the_dsl_every_substream_gives_its_first_element(
        self, materializer: Materializer, after: bool, strategy: SubstreamCancelStrategy | None
    ) -> None:
        def p(x: int) -> bool:
            return x % 3 == 0

        src = Source.from_iterable(range(10))
        if strategy is None:
            sub = src.split_after(p) if after else src.split_when(p)
        else:
            sub = src.split_after(p, strategy) if after else src.split_when(p, strategy)
        out = await sub.take(1).concat_substreams().run_with(Sink.seq(), materializer)
        assert out == ([0, 1, 4, 7] if after else [0, 3, 6, 9])


class TestArguments:
    def test_a_wrong_strategy_in_the_stage_is_a_type_error(self) -> None:
        from reactive._ops.nesting import Split

        bad: Any = True
        with pytest.raises(TypeError, match=r"must be a SubstreamCancelStrategy, got bool True"):
            Split(lambda x: True, False, bad)

    def test_the_strategies(self) -> None:
        assert [s.name for s in SubstreamCancelStrategy] == ["drain", "propagate"]
        assert repr(PROPAGATE) == "SubstreamCancelStrategy.propagate"

    @pytest.mark.parametrize("op", ["split_when", "split_after"])
    def test_a_wrong_strategy_is_a_type_error_naming_the_operator(self, op: str) -> None:
        bad: Any = "propagate"
        with pytest.raises(TypeError, match=rf"{op}\(p, substream_cancel_strategy\)"):
            getattr(Flow(), op)(lambda x: True, bad)

    async def test_propagate_on_a_flow_with_attributes(self, materializer: Materializer) -> None:
        flow = (
            Flow()
            .split_when(lambda x: x == 2, PROPAGATE)
            .take(1)
            .concat_substreams()
            .with_attributes(Attributes.name("splitter"))
        )
        out = await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
        assert out == [1]
