"""The substream family (``reactive/_ops/substreams.py``): group_by, split_when, split_after and
the SubFlow they return. Akka's specs (FlowGroupBySpec, FlowSplitWhenSpec, FlowSplitAfterSpec)
and our own cases, one class per operator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    Flow,
    IllegalGraphError,
    Keep,
    Materializer,
    NotUsed,
    Sink,
    Source,
    SubscriptionTimeoutError,
    Supervision,
    TooManySubstreamsError,
)
from reactive._dsl.subflow import SubFlow
from reactive.stage import SubSinkInlet, SubSourceOutlet
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.reactive.support import (
    Boom,
    failing_after,
    probes,
    quiet_for,
    resuming,
    seq,
    settle,
    sink_probe,
    until,
)

if TYPE_CHECKING:
    from collections.abc import Callable


def raw_group_by(n: int, key: Callable[[Any], Any]) -> Callable[[Source[Any, Any]], Any]:
    """The group_by stage alone: a stream of one Source per key."""
    from reactive import Flow
    from reactive._ops.nesting import GroupBy

    return lambda s: s.via(Flow.from_graph(GroupBy(n, key)))


def raw_group_by_substreams(n: int, key: Any) -> Flow[Any, Any, Any]:
    """The group_by stage alone: a Flow emitting one Source per key."""
    from reactive._ops.nesting import GroupBy

    return Flow.from_graph(GroupBy(n, key))


def split_probes(materializer: Materializer, after: bool) -> tuple[Any, Any]:
    """The split stage alone (``split_after`` if ``after`` else ``split_when``, at 3)
    between probes: a stream of one Source per substream."""
    from reactive._ops.nesting import Split

    return probes(lambda s: s.via(Flow.from_graph(Split(lambda x: x == 3, after))), materializer)


async def split_first_substream(materializer: Materializer, after: bool) -> tuple[Any, Any, Any]:
    """:func:`split_probes` with element 1 sent, its substream run into a probe with
    demand 5, and 1 received there: ``(pub, subs, substream probe)``."""
    pub, subs = split_probes(materializer, after)
    subs.request(1)
    pub.send_next(1)
    s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
    s1.request(5)
    await s1.expect_next(1)
    return pub, subs, s1


class TestGroupBy:
    """``group_by``."""

    async def test_group_by_cancelling_a_substream_drops_its_key(
        self, materializer: Materializer
    ) -> None:
        pub, subs = probes(
            lambda s: (
                s.group_by(4, lambda x: x % 2)
                .prefix_and_tail(0)
                .map(lambda p: p[1])
                .merge_substreams()
            ),
            materializer,
        )
        subs.request(10)
        pub.send_next(1)
        s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s1.request(1)
        await s1.expect_next(1)
        pub.send_next(2)
        s2 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s2.request(5)
        await s2.expect_next(2)
        s1.cancel()
        await settle()
        pub.send_next(3).send_next(4)
        await s2.expect_next(4)
        pub.send_complete()
        await s2.expect_complete()
        await subs.expect_complete()

    async def test_group_by_master_cancel_before_consuming(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.group_by(4, lambda x: x).merge_substreams(), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_group_by_emits_substream_before_completion(
        self, materializer: Materializer
    ) -> None:
        out = await (
            Source.single(0)
            .group_by(2, lambda x: "all")
            .map(lambda x: x + 1)
            .merge_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1]

    async def test_group_by_substream_materialized_twice_fails(
        self, materializer: Materializer
    ) -> None:
        pub, subs = probes(
            lambda s: (
                s.group_by(4, lambda x: x).prefix_and_tail(0).map(lambda p: p[1]).merge_substreams()
            ),
            materializer,
        )
        subs.request(2)
        pub.send_next(1)
        tail = await subs.expect_next()
        first = tail.run_with(Sink.seq(), materializer)
        with pytest.raises(IllegalGraphError):
            await tail.run_with(Sink.seq(), materializer)
        pub.send_complete()
        assert await first == [1]

    async def test_group_by_normal_user_scenario(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable(["Aaa", "Abb", "Bcc", "Cdd", "Cee"])
            .group_by(3, lambda s: s[0])
            .grouped(10)
            .merge_substreams()
            .grouped(10)
            .run_with(Sink.head(), materializer)
        )
        assert sorted(out) == [["Aaa", "Abb"], ["Bcc"], ["Cdd", "Cee"]]

    async def test_group_by_key_none_fails(self, materializer: Materializer) -> None:
        sub = sink_probe(
            Source.from_iterable(["Aaa", "Abb", "Bcc"])
            .group_by(3, lambda s: None if s.startswith("A") else s[0])
            .grouped(10)
            .merge_substreams(),
            materializer,
        )
        sub.request(1)
        exc = await sub.expect_error()
        assert isinstance(exc, ValueError) and "cannot be None" in str(exc)

    async def test_group_by_empty_input_and_early_cancel(self, materializer: Materializer) -> None:
        sub = sink_probe(
            Source.empty().group_by(2, lambda x: x % 2).merge_substreams(), materializer
        )
        sub.request(1)
        await sub.expect_complete()

        pub, sub = probes(lambda s: s.group_by(2, lambda x: x % 2).merge_substreams(), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_group_by_upstream_failure_with_running_substreams(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.group_by(2, lambda x: x % 2).merge_substreams(), materializer)
        sub.request(100)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom("test"))
        assert isinstance(await sub.expect_error(), Boom)

    async def test_group_by_key_function_raising_fails_and_cancels_upstream(
        self,
        materializer: Materializer,
    ) -> None:
        exc = Boom("test")

        def key(x: int) -> int:
            if x == 2:
                raise exc
            return x % 2

        pub, sub = probes(lambda s: s.group_by(2, key).merge_substreams(), materializer)
        sub.request(100)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_next(2)
        assert await sub.expect_error() is exc
        await pub.expect_cancellation()

    async def test_group_by_too_many_substreams_fails_all(self, materializer: Materializer) -> None:
        from reactive import TooManySubstreamsError

        pub, sub = probes(lambda s: s.group_by(1, lambda x: x % 2).merge_substreams(), materializer)
        sub.request(2)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_next(2)
        exc = await sub.expect_error()
        assert isinstance(exc, TooManySubstreamsError)
        assert "too many substreams" in str(exc)
        await pub.expect_cancellation()

    async def test_group_by_resume_when_exceeding_max_substreams(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.group_by(0, lambda x: x).merge_substreams().with_attributes(resuming()),
            materializer,
        )
        sub.request(1)
        pub.send_next(1)
        await quiet_for(manual_clock, 1.0, sub)
        pub.send_complete()
        await sub.expect_complete()

    async def test_group_by_closed_key_drops_elements_unless_recreation_allowed(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(
            lambda s: s.group_by(2, lambda x: x).take(1).merge_substreams(), materializer
        )
        sub.request(4)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_next(2)
        await sub.expect_next(2)
        pub.send_next(1).send_next(1)  # substream 1 was cancelled (take): its key is dropped
        pub.send_complete()
        await sub.expect_complete()

        pub, sub = probes(
            lambda s: s.group_by(2, lambda x: x, True).take(1).merge_substreams(), materializer
        )
        sub.request(4)
        for x in (1, 2, 1, 1):
            pub.send_next(x)
            await sub.expect_next(x)
        pub.send_complete()
        await sub.expect_complete()

    async def test_group_by_substreams_work_after_main_cancel_until_all_cancel(
        self,
        materializer: Materializer,
    ) -> None:
        # prefix_and_tail(0) + concat_substreams is the spec's ``lift``: one Source per key
        pub, main = probes(
            lambda s: (
                s.group_by(10, lambda x: x)
                .prefix_and_tail(0)
                .map(lambda p: p[1])
                .concat_substreams()
            ),
            materializer,
        )
        main.request(2)
        pub.send_next(1)
        s1 = sink_probe(await main.expect_next(), materializer)
        pub.send_next(2)
        s2 = sink_probe(await main.expect_next(), materializer)
        main.cancel()
        s1.request(1)
        await s1.expect_next(1)
        s2.request(1)
        await s2.expect_next(2)
        pub.send_next(3).send_next(4)  # new keys are ignored
        await settle()
        s1.cancel()
        s2.cancel()
        await pub.expect_cancellation()

    async def test_group_by_merge_substreams(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(12)).group_by(3, lambda x: x % 3).map(lambda x: x * 10)
        assert isinstance(src, SubFlow)
        out = await seq(src.merge_substreams(), materializer)
        assert sorted(out) == [x * 10 for x in range(12)]
        for k in range(3):
            assert [x for x in out if (x // 10) % 3 == k] == [x * 10 for x in range(k, 12, 3)]

    async def test_group_by_fold_per_substream(self, materializer: Materializer) -> None:
        src = (
            Source.from_iterable(["a1", "b1", "a2", "c1", "b2"])
            .group_by(10, lambda s: s[0])
            .fold("", lambda acc, s: acc + s)
            .merge_substreams()
        )
        assert sorted(await seq(src, materializer)) == ["a1a2", "b1b2", "c1"]

    async def test_group_by_too_many_substreams(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(10)).group_by(2, lambda x: x).merge_substreams()
        with pytest.raises(TooManySubstreamsError, match="max_substreams=2"):
            await seq(src, materializer)

    async def test_group_by_closed_substream_drops_and_counts(
        self, materializer: Materializer
    ) -> None:
        # Each substream takes one element then cancels: later elements of its key are
        # dropped, and the closed key still counts towards the limit.
        keys = [1, 1, 2, 2, 1]
        src = Source.from_iterable(keys).group_by(5, lambda x: x).take(1).merge_substreams()
        assert sorted(await seq(src, materializer)) == [1, 2]
        src = Source.from_iterable([1, 2, 3]).group_by(2, lambda x: x).take(1).concat_substreams()
        with pytest.raises(TooManySubstreamsError):
            await seq(src, materializer)

    async def test_group_by_allow_closed_substream_recreation(
        self, materializer: Materializer
    ) -> None:
        probes = (
            TestSource.probe()
            .group_by(1, lambda x: x, allow_closed_substream_recreation=True)
            .take(1)
            .concat_substreams()
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        up, sub = probes
        sub.request(10)
        await up.expect_request()
        up.send_next(7)
        await sub.expect_next(7)
        await up.expect_request()
        up.send_next(7)
        await sub.expect_next(7)
        up.send_complete()
        await sub.expect_complete()

    async def test_group_by_key_failure_and_resume(self, materializer: Materializer) -> None:
        def key(x: int) -> int:
            if x == 3:
                raise Boom("key")
            return x % 2

        with pytest.raises(Boom, match="key"):
            await seq(
                Source.from_iterable(range(5)).group_by(2, key).merge_substreams(), materializer
            )
        resumed = (
            Source.from_iterable(range(5))
            .group_by(2, key)
            .merge_substreams()
            .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
        )
        assert sorted(await seq(resumed, materializer)) == [0, 1, 2, 4]

    async def test_group_by_upstream_failure_fails_substreams(
        self, materializer: Materializer
    ) -> None:
        src = failing_after([1, 2], "up")
        out = src.group_by(4, lambda x: x).merge_substreams()
        with pytest.raises(Boom, match="up"):
            await seq(out, materializer)

    async def test_group_by_backpressure_from_one_substream(
        self, materializer: Materializer
    ) -> None:
        up, subs = (
            TestSource.probe()
            .via(raw_group_by_substreams(4, lambda x: x % 2))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        subs.request(2)
        await up.expect_request()
        up.send_next(0)
        even = await subs.expect_next()
        even_probe = even.run_with(TestSink.probe(), materializer)
        even_probe.request(1)
        await even_probe.expect_next(0)
        await up.expect_request()
        up.send_next(2)  # the even substream has no demand: group_by holds it
        await up.expect_no_message(0.02)
        even_probe.request(1)
        await even_probe.expect_next(2)
        await up.expect_request()
        up.send_complete()
        await even_probe.expect_complete()
        await subs.expect_complete()

    async def test_group_by_substream_subscription_timeout(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        up, subs = (
            TestSource.probe()
            .via(raw_group_by_substreams(4, lambda x: x))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        subs.request(5)
        await up.expect_request()
        up.send_next(1)
        late = await subs.expect_next()
        await manual_clock.advance(5.1)
        with pytest.raises(SubscriptionTimeoutError):
            await seq(late, materializer)
        # The timed-out key is closed: its elements are dropped, others open new substreams.
        await up.expect_request()
        up.send_next(1)
        await up.expect_request()
        up.send_next(2)
        s2 = await subs.expect_next()
        res = seq(s2, materializer)
        up.send_complete()
        assert await res == [2]
        await subs.expect_complete()

    async def test_group_by_main_cancel_keeps_substreams(self, materializer: Materializer) -> None:
        up, subs = (
            TestSource.probe()
            .via(raw_group_by_substreams(4, lambda x: x))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        subs.request(1)
        await up.expect_request()
        up.send_next("a")
        s = await subs.expect_next()
        sp = s.run_with(TestSink.probe(), materializer)
        subs.cancel()
        sp.request(5)
        await sp.expect_next("a")
        await up.expect_request()
        up.send_next("a")
        await sp.expect_next("a")
        sp.cancel()
        await up.expect_cancellation()


class TestSplitWhen:
    """``split_when``."""

    @pytest.mark.parametrize("after", [False, True])
    async def test_split_resume_when_predicate_raises(
        self, materializer: Materializer, after: bool
    ) -> None:
        def p(x: int) -> bool:
            if x == 3:
                raise Boom("p")
            return x == 5

        op = (lambda s: s.split_after(p)) if after else (lambda s: s.split_when(p))
        out = await (
            op(Source.from_iterable(range(1, 9)))
            .grouped(10)
            .concat_substreams()
            .with_attributes(resuming())
            .run_with(Sink.seq(), materializer)
        )
        assert out == ([[1, 2, 4, 5], [6, 7, 8]] if after else [[1, 2, 4], [5, 6, 7, 8]])

    @pytest.mark.parametrize("after", [False, True])
    async def test_split_cancel_master_keeps_open_substream(
        self, materializer: Materializer, after: bool
    ) -> None:
        pub, subs, s1 = await split_first_substream(materializer, after)
        subs.cancel()
        pub.send_next(2)
        await s1.expect_next(2)
        pub.send_next(3)
        if after:
            await s1.expect_next(3)
        await s1.expect_complete()
        await pub.expect_cancellation()

    @pytest.mark.parametrize("after", [False, True])
    async def test_split_cancel_master_and_substream(
        self, materializer: Materializer, after: bool
    ) -> None:
        pub, subs, s1 = await split_first_substream(materializer, after)
        subs.cancel()
        s1.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize("after", [False, True])
    async def test_split_substream_materialized_twice_fails(
        self, materializer: Materializer, after: bool
    ) -> None:
        pub, subs = split_probes(materializer, after)
        subs.request(1)
        pub.send_next(1)
        src = await subs.expect_next()
        first = src.run_with(Sink.seq(), materializer)
        with pytest.raises(IllegalGraphError):
            await src.run_with(Sink.seq(), materializer)
        pub.send_complete()
        assert await first == [1]
        await subs.expect_complete()

    @pytest.mark.parametrize("after", [False, True])
    async def test_split_substream_not_materialized_in_time(
        self, manual_clock: ManualClock, materializer: Materializer, after: bool
    ) -> None:
        pub, subs = split_probes(materializer, after)
        subs.request(1)
        await pub.expect_request()
        pub.send_next(1)
        src = await subs.expect_next()
        await manual_clock.advance(5.1)
        with pytest.raises(SubscriptionTimeoutError):
            await src.run_with(Sink.seq(), materializer)
        # As in Akka, only the late materialization fails (the spec sees the failure through
        # flatMapConcat); the split stage itself carries on.
        pub.send_complete()
        await subs.expect_complete()

    async def test_group_by_pull_from_both_substream_and_main(
        self, materializer: Materializer
    ) -> None:
        pub, subs = probes(raw_group_by(2, lambda x: x % 2), materializer)
        subs.request(1)
        pub.send_next(1)
        s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s1.request(1)
        await s1.expect_next(1)
        s1.request(1)  # only the substream demands: the new key must wait for the main outlet
        pub.send_next(2)
        await settle()
        await subs.expect_no_message(0)
        subs.request(1)
        s2 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s2.request(1)
        await s2.expect_next(2)
        pub.send_next(3)
        await s1.expect_next(3)
        pub.send_complete()
        await s1.expect_complete()
        await s2.expect_complete()
        await subs.expect_complete()

    async def test_merge_substreams_with_parallelism_one_is_sequential(
        self,
        materializer: Materializer,
    ) -> None:
        out = await (
            Source.from_iterable(range(1, 8))
            .split_after(lambda x: x % 3 == 0)
            .map(lambda x: x * 10)
            .merge_substreams_with_parallelism(1)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [10, 20, 30, 40, 50, 60, 70]

    async def test_group_by_subscription_timer_starts_when_substream_is_emitted(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        pub, subs = probes(raw_group_by(2, lambda x: x % 2), materializer)
        subs.request(1)
        await pub.expect_request()
        pub.send_next(1)
        s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s1.request(2)
        await s1.expect_next(1)
        pub.send_next(2)  # its substream waits for the main outlet's demand
        await manual_clock.advance(10)
        subs.request(1)
        s2 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s2.request(1)
        await s2.expect_next(2)
        pub.send_complete()
        await s1.expect_complete()
        await s2.expect_complete()
        await subs.expect_complete()

    @pytest.mark.parametrize("after", [False, True])
    async def test_split_subscription_timer_starts_when_substream_is_emitted(
        self, manual_clock: ManualClock, materializer: Materializer, after: bool
    ) -> None:
        from reactive import Flow
        from reactive._ops.nesting import Split

        pub, subs = probes(
            lambda s: s.via(Flow.from_graph(Split(lambda x: x == 2, after))), materializer
        )
        subs.request(1)
        await pub.expect_request()
        pub.send_next(1)
        s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s1.request(5)
        await s1.expect_next(1)
        pub.send_next(2)
        if after:
            await s1.expect_next(2)
            pub.send_next(3)
        await s1.expect_complete()
        await manual_clock.advance(10)
        subs.request(1)
        s2 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s2.request(5)
        await s2.expect_next(3 if after else 2)
        pub.send_complete()
        await s2.expect_complete()
        await subs.expect_complete()

    async def test_split_when_happy_case_and_first_element(
        self, materializer: Materializer
    ) -> None:
        out = (
            await Source.from_iterable(range(1, 5))
            .split_when(lambda x: x == 3)
            .grouped(10)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [[1, 2], [3, 4]]
        out = (
            await Source.from_iterable(range(1, 4))
            .split_when(lambda x: x == 1)
            .grouped(10)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [[1, 2, 3]]

    async def test_split_no_substream_for_empty_parent_and_single_element_splits(
        self,
        materializer: Materializer,
    ) -> None:
        for split in (
            lambda s: s.split_when(lambda x: True),
            lambda s: s.split_after(lambda x: True),
        ):
            out = (
                await split(Source.empty())
                .grouped(10)
                .concat_substreams()
                .run_with(Sink.seq(), materializer)
            )
            assert out == []
            out = (
                await split(Source.from_iterable(range(1, 101)))
                .grouped(200)
                .concat_substreams()
                .run_with(Sink.seq(), materializer)
            )
            assert out == [[x] for x in range(1, 101)]

    async def test_split_when_cancelled_substream_is_drained_to_the_next_split(
        self,
        materializer: Materializer,
    ) -> None:
        out = (
            await Source.from_iterable(range(1, 9))
            .split_when(lambda x: x == 5)
            .take_while(lambda x: x != 2)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 5, 6, 7, 8]

    async def test_split_when_predicate_raising_fails_substream_and_main(
        self,
        materializer: Materializer,
    ) -> None:
        exc = Boom("test")

        def p(x: int) -> bool:
            if x == 3:
                raise exc
            return x % 3 == 0

        pub, sub = probes(lambda s: s.split_when(p).merge_substreams(), materializer)
        sub.request(10)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_next(2)
        await sub.expect_next(2)
        pub.send_next(3)
        assert await sub.expect_error() is exc
        await pub.expect_cancellation()

    async def test_split_cancel_master_before_any_element(self, materializer: Materializer) -> None:
        for split in (
            lambda s: s.split_when(lambda x: x % 3 == 0),
            lambda s: s.split_after(lambda x: x % 3 == 0),
        ):
            pub, sub = probes(lambda s, sp=split: sp(s).merge_substreams(), materializer)
            sub.cancel()
            await pub.expect_cancellation()

    async def test_split_when(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4, 5, 6]).split_when(lambda x: x % 3 == 0)
        out = await seq(src.grouped(10).concat_substreams(), materializer)
        assert out == [[1, 2], [3, 4, 5], [6]]

    async def test_split_when_first_element_matches(self, materializer: Materializer) -> None:
        src = Source.from_iterable([3, 1, 3]).split_when(lambda x: x == 3).grouped(10)
        assert await seq(src.concat_substreams(), materializer) == [[3, 1], [3]]

    async def test_split_empty_and_failure(self, materializer: Materializer) -> None:
        assert await seq(Source.empty().split_when(bool).concat_substreams(), materializer) == []
        src = failing_after([1, 2], "sp").split_when(lambda x: False)
        with pytest.raises(Boom, match="sp"):
            await seq(src.concat_substreams(), materializer)

    async def test_split_cancelled_substream_is_drained(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 10, 11, 20]).split_when(lambda x: x % 10 == 0).take(1)
        assert await seq(src.concat_substreams(), materializer) == [1, 10, 20]

    async def test_split_predicate_failure(self, materializer: Materializer) -> None:
        def p(x: int) -> bool:
            if x == 2:
                raise Boom("pred")
            return False

        with pytest.raises(Boom, match="pred"):
            await seq(
                Source.from_iterable([1, 2, 3]).split_when(p).concat_substreams(), materializer
            )


class TestSplitAfter:
    """``split_after``."""

    async def test_group_by_pending_element_delivered_after_upstream_completion(
        self,
        materializer: Materializer,
    ) -> None:
        pub, subs = probes(raw_group_by(2, lambda x: x % 2), materializer)
        subs.request(5)
        pub.send_next(1)
        s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
        s1.request(1)
        await s1.expect_next(1)
        pub.send_next(3)  # s1 has no demand: held by group_by
        pub.send_complete()
        await settle()
        await subs.expect_no_message(0)
        s1.request(1)
        await s1.expect_next(3)
        await s1.expect_complete()
        await subs.expect_complete()

    async def test_split_after_cases(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable(range(1, 5))
            .split_after(lambda x: x == 3)
            .grouped(10)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [[1, 2, 3], [4]]
        out = (
            await Source.from_iterable(range(1, 4))
            .split_after(lambda x: x == 3)
            .grouped(10)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [[1, 2, 3]]  # the last element splits: no empty substream after it
        out = (
            await Source.from_iterable(range(1, 9))
            .split_after(lambda x: x == 4)
            .take_while(lambda x: x != 2)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 5, 6, 7, 8]

    async def test_split_after(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4, 5, 6, 7]).split_after(lambda x: x % 3 == 0)
        out = await seq(src.grouped(10).concat_substreams(), materializer)
        assert out == [[1, 2, 3], [4, 5, 6], [7]]
        src = Source.from_iterable([3, 3]).split_after(lambda x: x == 3)
        assert await seq(src.grouped(10).merge_substreams(), materializer) == [[3], [3]]


class TestSubFlow:
    """What a SubFlow does whatever made it."""

    async def test_subflow_offers_flow_operators_and_exits(
        self, materializer: Materializer
    ) -> None:
        sub = Source.from_iterable(range(10)).group_by(2, lambda x: x % 2)
        chained = sub.filter(lambda x: x > 1).map(lambda x: x + 1).via(Flow().take(2)).named("per")
        assert isinstance(chained, SubFlow)
        out = await seq(chained.merge_substreams_with_parallelism(2), materializer)
        assert sorted(out) == [3, 4, 5, 6]

    async def test_subflow_on_a_flow_parent(self, materializer: Materializer) -> None:
        flow = Flow().split_after(lambda x: x == 0).fold(0, lambda a, b: a + b).concat_substreams()
        assert isinstance(flow, Flow)
        assert await seq(Source.from_iterable([1, 2, 0, 5, 0, 7]).via(flow), materializer) == [
            3,
            5,
            7,
        ]

    async def test_subflow_to_sink_runs_each_substream(self, materializer: Materializer) -> None:
        seen: list[tuple[int, int]] = []
        graph = (
            Source.from_iterable(range(6))
            .group_by(3, lambda x: x % 3)
            .map(lambda x: (x % 3, x))
            .to(Sink.foreach(seen.append))
        )
        assert graph.run(materializer) is NotUsed  # the parent's materialized value
        await until(lambda: len(seen) == 6)
        for k in range(3):
            assert [x for key, x in seen if key == k] == [k, k + 3]

    async def test_subflow_fan_in_operators_apply_per_substream(
        self, materializer: Materializer
    ) -> None:
        sub = Source.from_iterable([1, 2, 3, 4]).split_when(lambda x: x % 2 == 1)
        out = await seq(
            sub.concat(Source.single(0)).zip_with_index().concat_substreams(), materializer
        )
        assert out == [(1, 0), (2, 1), (0, 2), (3, 0), (4, 1), (0, 2)]


class TestSubStreamHandles:
    """The sub-ports a stage opens (``SubSinkInlet``/``SubSourceOutlet``)."""

    async def test_sub_ports_closed_when_parent_stops(self, materializer: Materializer) -> None:
        from reactive.stage import GraphStage, GraphStageLogic, OutHandler

        made: dict[str, Any] = {}

        class Parent(GraphStage):  # type: ignore[type-arg]
            def __init__(self) -> None:
                from reactive import SourceShape
                from reactive.stage import Outlet

                self.shape = SourceShape(Outlet("Parent.out"))

            def create_logic(self, attributes: Any) -> GraphStageLogic:
                shape = self.shape

                class L(GraphStageLogic, OutHandler):
                    def __init__(self) -> None:
                        super().__init__(shape)
                        self.set_handler(shape.out, self)

                    def pre_start(self) -> None:
                        inlet = SubSinkInlet(self, "child_in", on_push=lambda: None)
                        made["probe"] = inlet.materialize(TestSource.probe())
                        made["in"] = inlet
                        outlet = SubSourceOutlet(self, "child_out", on_pull=lambda: None)
                        made["out"] = outlet
                        made["sink"] = outlet.source.run_with(Sink.seq(), self.materializer)
                        inlet.pull()

                    def on_pull(self) -> None:
                        pass

                return L()

        sub = Source.from_graph(Parent()).run_with(TestSink.probe(), materializer)
        await until(lambda: "probe" in made)
        assert made["in"].has_been_pulled() and not made["in"].is_closed()
        await made["probe"].expect_request()
        sub.cancel()
        await made["probe"].expect_cancellation()
        with pytest.raises(AbruptTerminationError):
            await made["sink"]
        assert made["out"].is_closed() and made["in"].is_closed()

    async def test_sub_source_outlet_takes_batches_within_demand(self) -> None:
        """A nested stream whose first stage speaks the batch protocol pulls ``demand`` > 1
        elements at once; the parent answers with one ``_Batch`` of at most that many (as the
        partitioned Kafka source does), never more."""
        from reactive import SourceShape
        from reactive._errors import PortStateError
        from reactive._stage.logic import _Batch
        from reactive.stage import GraphStage, GraphStageLogic, OutHandler, Outlet

        items = list(range(5000))
        demands: list[int] = []
        errors: list[BaseException] = []
        made: dict[str, Any] = {}

        class Parent(GraphStage):  # type: ignore[type-arg]
            def __init__(self) -> None:
                self.shape = SourceShape(Outlet("Parent.out"))

            def create_logic(self, attributes: Any) -> GraphStageLogic:
                shape = self.shape

                class L(GraphStageLogic, OutHandler):
                    def __init__(self) -> None:
                        super().__init__(shape)
                        self.set_handler(shape.out, self)
                        self.next = 0

                    def pre_start(self) -> None:
                        self.sub = SubSourceOutlet(self, "child", on_pull=self.child_pulled)
                        made["done"] = self.sub.source.map(lambda x: x).run_with(
                            Sink.seq(), self.materializer
                        )

                    def child_pulled(self) -> None:
                        n = self.sub.demand
                        demands.append(n)
                        if 1 < n < len(items) - self.next and not errors:
                            try:  # one more than asked: refused, nothing sent
                                self.sub.push(_Batch(items[self.next : self.next + n + 1]))
                            except PortStateError as exc:
                                errors.append(exc)
                        batch = _Batch(items[self.next : self.next + n])
                        self.next += len(batch)
                        self.sub.push(batch if len(batch) > 1 else batch[0])
                        if self.next >= len(items):
                            self.sub.complete()
                            self.complete_stage()

                    def on_pull(self) -> None:
                        pass

                return L()

        # Fast paths on explicitly (batches are the batch protocol's; a
        # REACTIVE_FAST_PATHS=0 run turns the default off).
        async with Materializer(fast_paths=True) as materializer:
            await Source.from_graph(Parent()).run_with(Sink.ignore(), materializer)
            assert await made["done"] == items
        assert max(demands) > 1 and len(demands) < len(items)  # batches were taken
        assert len(errors) == 1 and "batch of" in str(errors[0]), demands
