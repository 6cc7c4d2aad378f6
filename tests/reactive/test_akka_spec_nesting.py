"""Second-pass acceptance cases from Akka's nesting specs (FlowFlattenMergeSpec,
FlowConcatAllSpec, FlowPrefixAndTailSpec, FlowGroupBySpec, FlowSplitWhenSpec,
FlowSplitAfterSpec) that test_substreams.py, test_flat_map_late_demand.py and
test_akka_spec_time_errors_substreams.py do not already pin down. Public API only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    Attributes,
    IllegalGraphError,
    Keep,
    Materializer,
    Sink,
    Source,
    SubscriptionTimeoutError,
    Supervision,
)
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


class Boom(Exception):
    """A user-function or upstream failure (Akka's ``TE``)."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


def inner_probe_source(holder: list[PublisherProbe]) -> Source[Any, Any]:
    """A ``TestSource.probe()`` whose probe lands in ``holder`` once materialized."""
    return TestSource.probe().map_materialized_value(lambda p: holder.append(p) or p)


def resuming() -> Attributes:
    """Akka's ``supervisionStrategy(resumingDecider)``."""
    return Attributes.supervision_strategy(lambda exc: Supervision.resume)


# -- FlowFlattenMergeSpec -----------------------------------------------------------------------
async def test_flat_map_merge_not_held_back_by_one_slow_stream(materializer: Materializer) -> None:
    holder: list[PublisherProbe] = []
    srcs = [inner_probe_source(holder), Source.from_iterable([1, 2, 3])]
    sub = (
        Source.from_iterable(srcs)
        .flat_map_merge(2, lambda s: s)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(10)
    assert [await sub.expect_next() for _ in range(3)] == [1, 2, 3]
    holder[0].send_complete()
    await sub.expect_complete()


async def test_flat_map_merge_early_failure_from_main(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.flat_map_merge(4, lambda x: x), materializer)
    sub.request(1)
    pub.send_error(Boom("main"))
    assert isinstance(await sub.expect_error(), Boom)


async def test_flat_map_merge_inner_failure_cancels_other_inners_and_main(
    materializer: Materializer,
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(
        lambda s: s.flat_map_merge(4, lambda _: inner_probe_source(holder)), materializer
    )
    sub.request(10)
    pub.send_next(1).send_next(2)
    await settle()
    assert len(holder) == 2
    holder[1].send_error(Boom("inner"))
    assert isinstance(await sub.expect_error(), Boom)
    await holder[0].expect_cancellation()
    await pub.expect_cancellation()


async def test_flat_map_merge_f_failure_cancels_all_open_inners(materializer: Materializer) -> None:
    holder: list[PublisherProbe] = []

    def f(x: int) -> Any:
        if x == 3:
            raise Boom("f")
        return inner_probe_source(holder)

    pub, sub = probes(lambda s: s.flat_map_merge(4, f), materializer)
    sub.request(10)
    pub.send_next(1).send_next(2)
    await settle()
    pub.send_next(3)
    assert isinstance(await sub.expect_error(), Boom)
    await holder[0].expect_cancellation()
    await holder[1].expect_cancellation()
    await pub.expect_cancellation()


async def test_flat_map_merge_downstream_cancel_cancels_all_inners(
    materializer: Materializer,
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(
        lambda s: s.flat_map_merge(4, lambda _: inner_probe_source(holder)), materializer
    )
    sub.request(10)
    pub.send_next(1).send_next(2).send_next(3)
    await settle()
    assert len(holder) == 3
    sub.cancel()
    for p in holder:
        await p.expect_cancellation()
    await pub.expect_cancellation()


async def test_flat_map_merge_bubbles_up_f_exception_on_first_element(
    materializer: Materializer,
) -> None:
    def f(x: int) -> Any:
        raise Boom("f")

    with pytest.raises(Boom):
        await Source.single(1).flat_map_merge(4, f).run_with(Sink.seq(), materializer)


async def test_flat_map_merge_materializes_inners_lazily_up_to_breadth(
    materializer: Materializer,
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(
        lambda s: s.flat_map_merge(2, lambda _: inner_probe_source(holder)), materializer
    )
    sub.request(10)
    pub.send_next(1).send_next(2)
    await settle()
    assert len(holder) == 2
    holder[0].send_complete()
    pub.send_next(3)
    await settle()
    assert len(holder) == 3
    pub.send_complete()
    await settle()
    await sub.expect_no_message(0)  # two inners still open
    holder[1].send_complete()
    holder[2].send_next("x").send_complete()
    await sub.expect_next("x")
    await sub.expect_complete()


@pytest.mark.parametrize("breadth", [1, 3])
async def test_flat_map_single_sources_with_slow_demand(
    materializer: Materializer, breadth: int
) -> None:
    sub = (
        Source.from_iterable(range(6))
        .flat_map_merge(
            breadth, lambda i: Source.single(i) if i % 2 else Source.from_iterable([i, i])
        )
        .run_with(TestSink.probe(), materializer)
    )
    got = []
    for _ in range(9):
        sub.request(1)
        got.append(await sub.expect_next())
    sub.request(1)
    await sub.expect_complete()
    assert sorted(got) == [0, 0, 1, 2, 2, 3, 4, 4, 5]
    if breadth == 1:
        assert got == [0, 0, 1, 2, 2, 3, 4, 4, 5]


# -- FlowConcatAllSpec / FlowFlatMapConcatSpec --------------------------------------------------
async def test_flat_map_concat_main_failure_cancels_opening_substream(
    materializer: Materializer,
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(
        lambda s: s.flat_map_concat(lambda _: inner_probe_source(holder)), materializer
    )
    sub.request(10)
    pub.send_next(1)
    await settle()
    pub.send_error(Boom("main"))
    assert isinstance(await sub.expect_error(), Boom)
    await holder[0].expect_cancellation()


async def test_flat_map_concat_failed_opening_substream_cancels_master(
    materializer: Materializer,
) -> None:
    pub, sub = probes(
        lambda s: s.flat_map_concat(lambda _: Source.failed(Boom("inner"))), materializer
    )
    sub.request(10)
    pub.send_next(1)
    assert isinstance(await sub.expect_error(), Boom)
    await pub.expect_cancellation()


async def test_flat_map_concat_cancel_cancels_opening_substream_and_master(
    materializer: Materializer,
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(
        lambda s: s.flat_map_concat(lambda _: inner_probe_source(holder)), materializer
    )
    sub.request(10)
    pub.send_next(1)
    await settle()
    sub.cancel()
    await holder[0].expect_cancellation()
    await pub.expect_cancellation()


async def test_flat_map_concat_early_cancellation(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.flat_map_concat(lambda x: x), materializer)
    sub.cancel()
    await pub.expect_cancellation()


async def test_flat_map_concat_only_one_inner_materialized(materializer: Materializer) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(
        lambda s: s.flat_map_concat(lambda _: inner_probe_source(holder)), materializer
    )
    sub.request(10)
    pub.send_next(1)
    await settle()
    pub.send_next(2)
    await settle()
    assert len(holder) == 1
    holder[0].send_next("a").send_complete()
    await sub.expect_next("a")
    await settle()
    assert len(holder) == 2
    pub.send_complete()
    holder[1].send_next("b").send_complete()
    await sub.expect_next("b")
    await sub.expect_complete()


# -- FlowPrefixAndTailSpec ----------------------------------------------------------------------
async def test_prefix_and_tail_error_when_tail_is_open(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
    sub.request(1)
    pub.send_next(1)
    prefix, tail = await sub.expect_next()
    assert prefix == [1]
    await sub.expect_complete()
    tsub = tail.run_with(TestSink.probe(), materializer)
    tsub.request(1)
    pub.send_next(2)
    await tsub.expect_next(2)
    pub.send_error(Boom("late"))
    assert isinstance(await tsub.expect_error(), Boom)


async def test_prefix_and_tail_master_cancellation_before_pair(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
    sub.request(1)
    pub.send_next(1)
    await settle()
    sub.cancel()
    await pub.expect_cancellation()


async def test_prefix_and_tail_early_cancellation(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
    sub.cancel()
    await pub.expect_cancellation()


async def test_prefix_and_tail_exact_size_tail_is_empty(materializer: Materializer) -> None:
    prefix, tail = (
        await Source.from_iterable([1, 2, 3]).prefix_and_tail(3).run_with(Sink.head(), materializer)
    )
    assert prefix == [1, 2, 3]
    assert await tail.run_with(Sink.seq(), materializer) == []


# -- FlowGroupBySpec ----------------------------------------------------------------------------
async def test_group_by_cancelling_a_substream_drops_its_key(materializer: Materializer) -> None:
    pub, subs = probes(
        lambda s: (
            s.group_by(4, lambda x: x % 2).prefix_and_tail(0).map(lambda p: p[1]).merge_substreams()
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


async def test_group_by_master_cancel_before_consuming(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.group_by(4, lambda x: x).merge_substreams(), materializer)
    sub.cancel()
    await pub.expect_cancellation()


async def test_group_by_emits_substream_before_completion(materializer: Materializer) -> None:
    out = await (
        Source.single(0)
        .group_by(2, lambda x: "all")
        .map(lambda x: x + 1)
        .merge_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1]


async def test_group_by_substream_materialized_twice_fails(materializer: Materializer) -> None:
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


# -- FlowSplitWhenSpec / FlowSplitAfterSpec -----------------------------------------------------
@pytest.mark.parametrize("after", [False, True])
async def test_split_resume_when_predicate_raises(materializer: Materializer, after: bool) -> None:
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
    materializer: Materializer, after: bool
) -> None:
    from reactive import Flow
    from reactive._ops.nesting import Split

    pub, subs = probes(
        lambda s: s.via(Flow.from_graph(Split(lambda x: x == 3, after))), materializer
    )
    subs.request(1)
    pub.send_next(1)
    s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
    s1.request(5)
    await s1.expect_next(1)
    subs.cancel()
    pub.send_next(2)
    await s1.expect_next(2)
    pub.send_next(3)
    if after:
        await s1.expect_next(3)
    await s1.expect_complete()
    await pub.expect_cancellation()


@pytest.mark.parametrize("after", [False, True])
async def test_split_cancel_master_and_substream(materializer: Materializer, after: bool) -> None:
    from reactive import Flow
    from reactive._ops.nesting import Split

    pub, subs = probes(
        lambda s: s.via(Flow.from_graph(Split(lambda x: x == 3, after))), materializer
    )
    subs.request(1)
    pub.send_next(1)
    s1 = (await subs.expect_next()).run_with(TestSink.probe(), materializer)
    s1.request(5)
    await s1.expect_next(1)
    subs.cancel()
    s1.cancel()
    await pub.expect_cancellation()


@pytest.mark.parametrize("after", [False, True])
async def test_split_substream_materialized_twice_fails(
    materializer: Materializer, after: bool
) -> None:
    from reactive import Flow
    from reactive._ops.nesting import Split

    pub, subs = probes(
        lambda s: s.via(Flow.from_graph(Split(lambda x: x == 3, after))), materializer
    )
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
    manual_clock: ManualClock, materializer: Materializer, after: bool
) -> None:
    from reactive import Flow
    from reactive._ops.nesting import Split

    pub, subs = probes(
        lambda s: s.via(Flow.from_graph(Split(lambda x: x == 3, after))), materializer
    )
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


def raw_group_by(n: int, key: Callable[[Any], Any]) -> Callable[[Source[Any, Any]], Any]:
    """The group_by stage alone: a stream of one Source per key."""
    from reactive import Flow
    from reactive._ops.nesting import GroupBy

    return lambda s: s.via(Flow.from_graph(GroupBy(n, key)))


async def test_group_by_pull_from_both_substream_and_main(materializer: Materializer) -> None:
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


async def test_group_by_pending_element_delivered_after_upstream_completion(
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


async def test_merge_substreams_with_parallelism_one_is_sequential(
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
    manual_clock: ManualClock, materializer: Materializer
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
    manual_clock: ManualClock, materializer: Materializer, after: bool
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
