"""The nesting family (``reactive/_ops/nesting.py``): flat_map_concat, flat_map_merge, switch_map,
prefix_and_tail. Akka's specs (FlowFlattenMergeSpec, FlowConcatAllSpec, FlowFlatMapConcatSpec,
FlowPrefixAndTailSpec) and our own cases, one class per operator.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reactive._ops.nesting as nesting_module
from reactive import (
    Attributes,
    Flow,
    IllegalGraphError,
    Keep,
    Materializer,
    Sink,
    Source,
    SubscriptionTimeoutError,
    Supervision,
    ThrottleMode,
)
from reactive.stage import GraphStage, Outlet, SourceShape
from reactive.testkit import ManualClock, PublisherProbe, TestSink, TestSource
from tests.reactive.support import (
    Boom,
    failing_after,
    nothing,
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

SHORT_MIN, SHORT_MAX = 0.2, 0.3


def inner_probe_source(holder: list[PublisherProbe]) -> Source[Any, Any]:
    """A ``TestSource.probe()`` whose probe lands in ``holder`` once materialized."""
    return TestSource.probe().map_materialized_value(lambda p: holder.append(p) or p)


async def flat_map_of_inner_probes(
    materializer: Materializer, n: int, breadth: int | None = None
) -> tuple[Any, Any, list[PublisherProbe]]:
    """``flat_map_merge(breadth)`` (``flat_map_concat`` without ``breadth``) of inner probe
    sources between probes, with demand 10 and ``n`` elements sent (settled), so that ``n``
    inners are open (or, for concat, the first): ``(pub, sub, inner probes)``."""
    holder: list[PublisherProbe] = []

    def inner(_: Any) -> Source[Any, Any]:
        return inner_probe_source(holder)

    if breadth is None:
        pub, sub = probes(lambda s: s.flat_map_concat(inner), materializer)
    else:
        pub, sub = probes(lambda s: s.flat_map_merge(breadth, inner), materializer)
    sub.request(10)
    for x in range(1, n + 1):
        pub.send_next(x)
    await settle()
    assert len(holder) == (n if breadth is not None else 1)
    return pub, sub, holder


class Created:
    """Counts the factory's calls (the spec's ``created`` AtomicInteger)."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        self.make = make
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        return self.make(self.count)


def short_settings() -> Any:
    from reactive import RestartSettings

    return RestartSettings(SHORT_MIN, SHORT_MAX, 0.0)


def decoupled_flow(events: list[Any], out_source: Source[Any, Any]) -> Any:
    """Akka's ``Flow.fromSinkAndSource``: the input goes to a recording sink that stops at
    "cancel", the output comes from ``out_source`` (no coupling between the two)."""
    from reactive import FlowShape, GraphDSL

    def blueprint(b: Any) -> Any:
        snk = b.add(Flow().take_while(lambda x: x != "cancel").to(Sink.foreach(events.append)))
        src = b.add(out_source)
        return FlowShape(snk.in_, src.out)

    return Flow.from_graph(GraphDSL.create(blueprint))


async def _idle(rounds: int = 50) -> None:

    for _ in range(rounds):
        await asyncio.sleep(0)


class TestFlatMapConcat:
    """``flat_map_concat``."""

    async def test_flat_map_concat_main_failure_cancels_opening_substream(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub, holder = await flat_map_of_inner_probes(materializer, 1)
        pub.send_error(Boom("main"))
        assert isinstance(await sub.expect_error(), Boom)
        await holder[0].expect_cancellation()

    async def test_flat_map_concat_failed_opening_substream_cancels_master(
        self,
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
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub, holder = await flat_map_of_inner_probes(materializer, 1)
        sub.cancel()
        await holder[0].expect_cancellation()
        await pub.expect_cancellation()

    async def test_flat_map_concat_early_cancellation(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.flat_map_concat(lambda x: x), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_flat_map_concat_only_one_inner_materialized(
        self, materializer: Materializer
    ) -> None:
        pub, sub, holder = await flat_map_of_inner_probes(materializer, 1)
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

    async def test_flat_map_concat_with_split_when(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable(range(1, 11))
            .split_when(lambda x: x % 2 == 0)
            .prefix_and_tail(0)
            .map(lambda p: p[1])
            .concat_substreams()
            .flat_map_concat(lambda s: s)
            .run_with(Sink.seq(), materializer)
        )
        assert out == list(range(1, 11))

    async def test_flat_map_concat_is_sequential(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3]).flat_map_concat(
            lambda x: Source.from_iterable([x] * x)
        )
        assert await seq(src, materializer) == [1, 2, 2, 3, 3, 3]

    async def test_flat_map_concat_empty_inner_and_outer(self, materializer: Materializer) -> None:
        src = Source.from_iterable([0, 2, 0]).flat_map_concat(
            lambda x: Source.from_iterable(range(x))
        )
        assert await seq(src, materializer) == [0, 1]
        assert await seq(Source.empty().flat_map_concat(Source.single), materializer) == []

    async def test_flat_map_concat_consumes_one_inner_at_a_time(
        self, materializer: Materializer
    ) -> None:
        inner1, inner2 = TestSource.probe(), TestSource.probe()
        inners = iter([inner1, inner2])
        probes: list[Any] = []

        def f(_: int) -> Any:
            return next(inners).map_materialized_value(lambda p: probes.append(p) or p)

        sub = (
            Source.from_iterable([1, 2]).flat_map_concat(f).run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        await until(lambda: len(probes) == 1)
        p1 = probes[0]
        await p1.expect_request()
        p1.send_next("a")
        await sub.expect_next("a")
        assert len(probes) == 1  # the second inner source is not materialized yet
        p1.send_complete()
        await until(lambda: len(probes) == 2)
        p2 = probes[1]
        await p2.expect_request()
        p2.send_next("b").send_complete()
        await sub.expect_next("b")
        await sub.expect_complete()

    async def test_flat_map_function_failure_and_resume(self, materializer: Materializer) -> None:
        def f(x: int) -> Any:
            if x == 2:
                raise Boom("f")
            return Source.single(x)

        with pytest.raises(Boom, match="f"):
            await seq(Source.from_iterable([1, 2, 3]).flat_map_concat(f), materializer)
        resumed = (
            Source.from_iterable([1, 2, 3])
            .flat_map_concat(f)
            .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
        )
        assert await seq(resumed, materializer) == [1, 3]

    async def test_flat_map_upstream_failure(self, materializer: Materializer) -> None:
        src = Source.failed(Boom("up")).flat_map_concat(Source.single)
        with pytest.raises(Boom, match="up"):
            await seq(src, materializer)

    async def test_flat_map_downstream_cancel_cancels_inner(
        self, materializer: Materializer
    ) -> None:
        probes: list[Any] = []
        src = Source.single(1).flat_map_concat(
            lambda _: TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p)
        )
        sub = src.run_with(TestSink.probe(), materializer)
        sub.request(1)
        await until(lambda: len(probes) == 1)
        p = probes[0]
        await p.expect_request()
        sub.cancel()
        await p.expect_cancellation()

    async def test_flat_map_rejects_bad_breadth(self) -> None:
        with pytest.raises(ValueError):
            Source.single(1).flat_map_merge(0, Source.single)

    async def test_flat_map_concat_completes_after_a_buffered_last_element(
        self,
        materializer: Materializer,
    ) -> None:
        probe = (
            Source.from_iterable([1, 2])
            .flat_map_concat(lambda x: Source.single(x))
            .run_with(TestSink.probe(), materializer)
        )
        # No demand yet: the inner source of 1 pushes, finishes, and 1 waits in the stage.
        await asyncio.sleep(0.01)
        probe.request(1)
        assert await probe.expect_next() == 1
        await asyncio.sleep(0.01)
        probe.request(1)
        assert await probe.expect_next() == 2
        await probe.expect_complete()


class TestFlatMapMerge:
    """``flat_map_merge``."""

    async def test_flat_map_merge_not_held_back_by_one_slow_stream(
        self, materializer: Materializer
    ) -> None:
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

    async def test_flat_map_merge_early_failure_from_main(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.flat_map_merge(4, lambda x: x), materializer)
        sub.request(1)
        pub.send_error(Boom("main"))
        assert isinstance(await sub.expect_error(), Boom)

    async def test_flat_map_merge_inner_failure_cancels_other_inners_and_main(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub, holder = await flat_map_of_inner_probes(materializer, 2, 4)
        holder[1].send_error(Boom("inner"))
        assert isinstance(await sub.expect_error(), Boom)
        await holder[0].expect_cancellation()
        await pub.expect_cancellation()

    async def test_flat_map_merge_f_failure_cancels_all_open_inners(
        self, materializer: Materializer
    ) -> None:
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
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub, holder = await flat_map_of_inner_probes(materializer, 3, 4)
        sub.cancel()
        for p in holder:
            await p.expect_cancellation()
        await pub.expect_cancellation()

    async def test_flat_map_merge_bubbles_up_f_exception_on_first_element(
        self,
        materializer: Materializer,
    ) -> None:
        def f(x: int) -> Any:
            raise Boom("f")

        with pytest.raises(Boom):
            await Source.single(1).flat_map_merge(4, f).run_with(Sink.seq(), materializer)

    async def test_flat_map_merge_materializes_inners_lazily_up_to_breadth(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub, holder = await flat_map_of_inner_probes(materializer, 2, 2)
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
        self, materializer: Materializer, breadth: int
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

    @pytest.mark.parametrize("breadth", [1, 4])
    async def test_flatten_main_failure_cancels_open_substream(
        self, materializer: Materializer, breadth: int
    ) -> None:
        holder: list[PublisherProbe] = []
        pub, sub = probes(lambda s: s.flat_map_merge(breadth, lambda src: src), materializer)
        sub.request(10)
        pub.send_next(inner_probe_source(holder))
        await settle()
        holder[0].send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom("main"))
        assert isinstance(await sub.expect_error(), Boom)
        await holder[0].expect_cancellation()

    @pytest.mark.parametrize("breadth", [1, 4])
    async def test_flatten_inner_failure_cancels_master(
        self, materializer: Materializer, breadth: int
    ) -> None:
        holder: list[PublisherProbe] = []
        pub, sub = probes(lambda s: s.flat_map_merge(breadth, lambda src: src), materializer)
        sub.request(10)
        pub.send_next(inner_probe_source(holder))
        await settle()
        holder[0].send_error(Boom("inner"))
        assert isinstance(await sub.expect_error(), Boom)
        await pub.expect_cancellation()

    @pytest.mark.parametrize("breadth", [1, 4])
    async def test_flatten_cancellation_cancels_substream_and_master(
        self, materializer: Materializer, breadth: int
    ) -> None:
        holder: list[PublisherProbe] = []
        pub, sub = probes(lambda s: s.flat_map_merge(breadth, lambda src: src), materializer)
        sub.request(10)
        pub.send_next(inner_probe_source(holder))
        await settle()
        holder[0].send_next(1)
        await sub.expect_next(1)
        sub.cancel()
        await holder[0].expect_cancellation()
        await pub.expect_cancellation()

    @pytest.mark.parametrize("breadth", [1, 4])
    async def test_flatten_function_failure_cancels_master_and_open_substreams(
        self, materializer: Materializer, breadth: int
    ) -> None:
        holder: list[PublisherProbe] = []

        def f(x: int) -> Any:
            if x == 2:
                raise Boom("f")
            return inner_probe_source(holder)

        pub, sub = probes(lambda s: s.flat_map_merge(breadth, f), materializer)
        sub.request(10)
        pub.send_next(1)
        await settle()
        holder[0].send_next(10)
        await sub.expect_next(10)
        if breadth > 1:
            pub.send_next(2)
            assert isinstance(await sub.expect_error(), Boom)
            await holder[0].expect_cancellation()
            await pub.expect_cancellation()
        else:
            holder[0].send_complete()
            pub.send_next(2)
            assert isinstance(await sub.expect_error(), Boom)
            await pub.expect_cancellation()

    async def test_flat_map_merge_many_concurrent_sources(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable(range(100))
            .flat_map_merge(10, lambda i: Source.from_iterable(range(i * 10, i * 10 + 10)))
            .run_with(Sink.seq(), materializer)
        )
        assert sorted(out) == list(range(1000))

    async def test_group_by_happy_case_with_substream_demand(
        self, materializer: Materializer
    ) -> None:
        main = sink_probe(
            Source.from_iterable(range(1, 7))
            .group_by(2, lambda x: x % 2)
            .prefix_and_tail(0)
            .map(lambda p: p[1])
            .concat_substreams(),
            materializer,
        )
        main.request(1)
        s1 = sink_probe(await main.expect_next(), materializer)
        await nothing(ManualClock(), s1)
        s1.request(1)
        await s1.expect_next(1)
        main.request(1)
        s2 = sink_probe(await main.expect_next(), materializer)
        s2.request(2)
        await s2.expect_next(2)
        s1.request(1)  # 3 blocked group_by: requesting on the OTHER substream frees it
        await s2.expect_next(4)
        await s1.expect_next(3)
        s2.request(1)
        s1.request(1)
        await s2.expect_next(6)
        await s2.expect_complete()
        await s1.expect_next(5)
        await s1.expect_complete()
        main.request(1)
        await main.expect_complete()

    async def test_expand_passes_elements_through_without_rate_difference(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter([x])), materializer)
        for i in range(1, 101):
            pub.send_next(i)
            await settle(5)
            await sub.request_next(i)
        sub.cancel()

    async def test_throttle_bursts_to_its_maximum_after_enough_time(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.throttle(1, 0.2, 5, ThrottleMode.shaping), materializer)
        sub.request(5)
        for x in range(1, 6):
            pub.send_next(x)
        await sub.expect_next(1, 2, 3, 4, 5)
        sub.request(5)
        await quiet_for(manual_clock, 1.2, sub)  # six tokens produced, five kept
        for x in range(7, 12):
            pub.send_next(x)
        await sub.expect_next(7, 8, 9, 10, 11)
        sub.cancel()

    async def test_restart_flow_in_port_keeps_running_after_out_cancelled(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartFlow

        events: list[Any] = []
        created = Created(lambda n: decoupled_flow(events, Source.repeat("b")))
        pub, sub = probes(
            lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
        )
        pub.send_next("a")
        await sub.request_next("b")
        sub.cancel()
        await settle()
        pub.send_next("c").send_next("d")
        await settle()
        assert events == ["a", "c", "d"]
        pub.send_next("cancel")
        await pub.expect_cancellation()
        await manual_clock.advance(1.0)
        assert created.count == 1

    async def test_restart_flow_out_port_keeps_running_after_upstream_completion(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartFlow

        events: list[Any] = []
        out_pub: list[PublisherProbe] = []
        created = Created(lambda n: decoupled_flow(events, inner_probe_source(out_pub)))
        pub, sub = probes(
            lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
        )
        pub.send_next("a")
        await settle()
        out_pub[0].send_next("b")
        await sub.request_next("b")
        pub.send_complete()
        await settle()
        out_pub[0].send_next("c")
        await sub.request_next("c")
        sub.request(1)
        out_pub[0].send_complete()
        await sub.expect_complete()
        assert created.count == 1 and events == ["a"]

    async def test_restart_flow_output_done_at_max_restarts_leaves_input_running(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        from reactive import RestartFlow, RestartSettings

        events: list[Any] = []
        out_pub: list[PublisherProbe] = []
        created = Created(lambda n: decoupled_flow(events, inner_probe_source(out_pub)))
        s = RestartSettings(SHORT_MIN, SHORT_MAX, 0.0).with_max_restarts(1, SHORT_MIN)
        pub, sub = probes(lambda src: src.via(RestartFlow.with_backoff(s, created)), materializer)
        sub.request(1)
        await settle()
        out_pub[0].send_complete()  # restart 1
        await manual_clock.advance(SHORT_MIN)
        assert created.count == 2
        out_pub[1].send_complete()  # no restart left: the output completes ...
        await sub.expect_complete()
        pub.send_next("x")  # ... while the inner input still takes elements
        await settle()
        assert events == ["x"]
        await manual_clock.advance(3 * SHORT_MIN)
        assert created.count == 2
        pub.send_complete()
        await settle()

    @pytest.mark.parametrize("breadth", [1, 4])
    async def test_flatten_inner_materialization_failure_fails_the_stream(
        self, materializer: Materializer, breadth: int
    ) -> None:
        from reactive.stage import GraphStage, GraphStageLogic, Outlet, SourceShape

        mat_fail = Boom("fail!")

        class FailingInnerMat(GraphStage):
            def __init__(self) -> None:
                self.shape = SourceShape(Outlet("out"))

            def create_logic(self, attributes: Any) -> GraphStageLogic:
                raise mat_fail

        done = (
            Source.from_iterable([1, 2])
            .flat_map_merge(breadth, lambda x: Source.from_graph(FailingInnerMat()))
            .run_with(Sink.ignore(), materializer)
        )
        with pytest.raises(Boom) as info:
            await done
        assert info.value is mat_fail

    async def test_grouped_within_holds_n_plus_one_while_backpressured(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(3, 1.0), materializer)
        for x in (1, 2, 3):
            assert await pub.expect_request() == 1
            pub.send_next(x)
        assert await pub.expect_request() == 1  # group full, no demand: pull one more
        await manual_clock.advance(0.5)
        pub.send_next(4)  # held outside the group; the timer restarts (next tick at 1.5)
        await nothing(manual_clock, pub)
        pub.send_complete()
        sub.request(1)
        await sub.expect_next([1, 2, 3])
        await nothing(manual_clock, sub)
        sub.request(1)
        await sub.expect_next([4])  # the held element is not lost at completion
        await sub.expect_complete()

    async def test_grouped_within_held_element_starts_next_group_on_timer(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_within(2, 1.0), materializer)
        pub.send_next(1).send_next(2)
        await settle()
        await manual_clock.advance(0.5)
        pub.send_next(3)  # held: the timer restarts at t=0.5
        await settle()
        sub.request(1)
        await sub.expect_next([1, 2])
        sub.request(1)
        await quiet_for(manual_clock, 0.9, sub)  # t=1.4: the old tick (t=1.0) was dropped
        await manual_clock.advance(0.2)
        await sub.expect_next([3])
        pub.send_complete()
        await sub.expect_complete()

    async def test_flat_map_merge_interleaves_and_keeps_inner_order(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable(range(4)).flat_map_merge(
            4, lambda x: Source.from_iterable([(x, i) for i in range(5)])
        )
        out = await seq(src, materializer)
        assert sorted(out) == [(x, i) for x in range(4) for i in range(5)]
        for x in range(4):
            assert [e for e in out if e[0] == x] == [(x, i) for i in range(5)]

    @pytest.mark.parametrize("fast", [True, False], ids=["batches", "plain"])
    async def test_flat_map_merge_hands_over_batches_within_demand(self, fast: bool) -> None:
        """Inner sources that speak the batch protocol hand over up to 16 elements at once;
        downstream still gets exactly what it requested, each inner in its own order."""
        async with Materializer(fast_paths=fast) as mat:
            probe = (
                Source.from_iterable(range(3))
                .flat_map_merge(3, lambda x: Source.from_iterable([(x, i) for i in range(40)]))
                .run_with(TestSink.probe(), mat)
            )
            got: list[Any] = []
            for k in (1, 5, 17, 2):
                probe.request(k)
                for _ in range(k):
                    got.append(await probe.expect_next())
                await probe.expect_no_message(0.01)
            probe.request(1000)
            while len(got) < 120:
                got.append(await probe.expect_next())
            await probe.expect_complete()
        for x in range(3):
            assert [e for e in got if e[0] == x] == [(x, i) for i in range(40)]

    async def test_flat_map_merge_asks_each_inner_for_its_share_of_the_demand(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Downstream asking for 1,024 at once (``Sink.fold``) over a breadth of 8: each
        inner is asked for its share, 128 (fewer turns per element); a probe asking for
        for 20 gets inner sources asked for their share, 10: nothing read ahead of demand
        (a review found 16 read from an inner source behind a take(2))."""
        from reactive._ops.substreams import SubSinkInlet

        asked: list[int | None] = []
        pull_batch = SubSinkInlet._pull_batch

        def spy(self: Any, n: int | None) -> None:
            asked.append(n)
            pull_batch(self, n)

        monkeypatch.setattr(SubSinkInlet, "_pull_batch", spy)
        # Inner ranges materialized (not read directly: reactive._ops.nesting.DIRECT_INNER).
        monkeypatch.setattr(nesting_module, "DIRECT_INNER", False)

        def inner(i: int) -> Any:
            return Source.from_iterable(range(i * 1000, (i + 1) * 1000))

        # Fast paths on explicitly (the share is the batch protocol's; a
        # REACTIVE_FAST_PATHS=0 run turns the default off).
        async with Materializer(fast_paths=True) as mat:
            total = await (
                Source.from_iterable(range(16))
                .flat_map_merge(8, inner)
                .run_with(Sink.fold(0, lambda a, x: a + x), mat)
            )
        assert total == sum(range(16_000))
        assert max(asked) == 128 and asked.count(128) > len(asked) // 2, asked
        asked.clear()
        async with Materializer(fast_paths=True) as mat:
            probe = (
                Source.from_iterable(range(2))
                .flat_map_merge(2, inner)
                .run_with(TestSink.probe(), mat)
            )
            probe.request(20)
            assert len(await probe.expect_next_n(20)) == 20
            probe.cancel()
        assert asked and max(asked) == 10, asked

    @pytest.mark.parametrize("fast", [True, False])
    async def test_an_inner_source_is_not_read_ahead_of_demand(self, fast: bool) -> None:
        read: list[int] = []

        def gen() -> Any:
            for i in range(100):
                read.append(i)
                yield i

        async with Materializer(fast_paths=fast) as mat:
            got = await (
                Source.single(0)
                .flat_map_concat(lambda _: Source.from_iterable(gen()))
                .take(2)
                .run_with(Sink.seq(), mat)
            )
        assert got == [0, 1]
        assert len(read) <= 4, read  # the two taken, and the source's look-ahead

    @settings(max_examples=40, deadline=None)
    @given(
        sizes=st.lists(st.integers(0, 120), min_size=0, max_size=8),
        breadth=st.integers(1, 4),
        demand=st.lists(st.integers(1, 300), min_size=1, max_size=6),
    )
    async def test_flat_map_merge_batches_match_the_plain_path_and_stay_within_demand(
        self, sizes: list[int], breadth: int, demand: list[int]
    ) -> None:
        """Random inner sizes, breadth and requests, fast paths on and off: every inner in
        its own order, nothing lost or repeated, and never more read from the inner
        iterators than was delivered plus, per running inner, its share of the largest
        request (at least 16) and one element of look-ahead."""
        for fast in (True, False):
            read = [0]

            def inner(i: int, read: list[int] = read) -> Any:
                def gen() -> Any:
                    for j in range(sizes[i]):
                        read[0] += 1
                        yield (i, j)

                return Source.from_iterable(gen())

            async with Materializer(fast_paths=fast, name="fmm-props") as mat:
                probe = (
                    Source.from_iterable(range(len(sizes)))
                    .flat_map_merge(breadth, inner)
                    .run_with(TestSink.probe(), mat)
                )
                got: list[Any] = []
                total = sum(sizes)
                largest = 0
                for k in [*demand, total + 1]:
                    largest = max(largest, k)
                    probe.request(k)
                    want = min(k, total - len(got))
                    got.extend(await probe.expect_next_n(want) if want else [])
                    share = max(16, largest // breadth) + 1
                    assert read[0] <= len(got) + breadth * share, (read[0], len(got))
                    if len(got) == total:
                        break
                await probe.expect_complete()
            for i, n in enumerate(sizes):
                assert [e for e in got if e[0] == i] == [(i, j) for j in range(n)], fast
            assert len(got) == sum(sizes)

    async def test_flat_map_merge_limits_breadth(self, materializer: Materializer) -> None:
        materialized: list[int] = []
        probes: list[Any] = []

        def f(x: int) -> Any:
            materialized.append(x)
            return TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p)

        sub = (
            Source.from_iterable(range(5))
            .flat_map_merge(2, f)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(100)
        await until(lambda: len(probes) == 2)
        await _idle()
        assert materialized == [0, 1]
        probes[0].send_complete()
        await until(lambda: len(probes) == 3)
        assert materialized == [0, 1, 2]
        probes[1].send_next("x")
        await sub.expect_next("x")
        for p in probes[1:]:
            p.send_complete()
        await until(lambda: len(probes) == 5)
        for p in probes[3:]:
            p.send_complete()
        await sub.expect_complete()

    async def test_flat_map_merge_inner_failure_fails_stream(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 2]).flat_map_merge(
            2, lambda x: Source.failed(Boom("inner")) if x == 2 else Source.never()
        )
        with pytest.raises(Boom, match="inner"):
            await seq(src, materializer)

    async def test_flat_map_merge_completes_after_buffered_elements(
        self,
        materializer: Materializer,
    ) -> None:
        probe = (
            Source.from_iterable([1, 2, 3])
            .flat_map_merge(3, lambda x: Source.single(x))
            .run_with(TestSink.probe(), materializer)
        )
        await asyncio.sleep(0.01)
        probe.request(3)
        assert sorted(await probe.expect_next_n(3)) == [1, 2, 3]
        await probe.expect_complete()


class TestSwitchMap:
    """``switch_map``."""

    async def test_switch_map_cancels_previous_inner(self, materializer: Materializer) -> None:
        probes: list[Any] = []
        up, sub = (
            TestSource.probe()
            .switch_map(
                lambda x: TestSource.probe().map_materialized_value(lambda p: probes.append(p) or p)
            )
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(10)
        await up.expect_request()
        up.send_next(1)
        await until(lambda: len(probes) == 1)
        await probes[0].expect_request()
        probes[0].send_next("a1")
        await sub.expect_next("a1")
        up.send_next(2)
        await probes[0].expect_cancellation()
        await until(lambda: len(probes) == 2)
        await probes[1].expect_request()
        probes[1].send_next("b1")
        await sub.expect_next("b1")
        up.send_complete()
        probes[1].send_next("b2").send_complete()
        await sub.expect_next("b2")
        await sub.expect_complete()

    async def test_switch_map_inner_failure(self, materializer: Materializer) -> None:
        src = Source.single(1).switch_map(lambda _: Source.failed(Boom("sw")))
        with pytest.raises(Boom, match="sw"):
            await seq(src, materializer)


class TestPrefixAndTail:
    """``prefix_and_tail``."""

    async def test_prefix_and_tail_error_when_tail_is_open(
        self, materializer: Materializer
    ) -> None:
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
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
        sub.request(1)
        pub.send_next(1)
        await settle()
        sub.cancel()
        await pub.expect_cancellation()

    async def test_prefix_and_tail_early_cancellation(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_prefix_and_tail_exact_size_tail_is_empty(
        self, materializer: Materializer
    ) -> None:
        prefix, tail = (
            await Source.from_iterable([1, 2, 3])
            .prefix_and_tail(3)
            .run_with(Sink.head(), materializer)
        )
        assert prefix == [1, 2, 3]
        assert await tail.run_with(Sink.seq(), materializer) == []

    async def test_prefix_and_tail_input_sizes(self, materializer: Materializer) -> None:
        cases: list[tuple[list[int], int, list[int], list[int]]] = [
            ([], 10, [], []),
            ([1, 2, 3], 10, [1, 2, 3], []),
            (list(range(1, 11)), 5, [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]),
            (list(range(1, 11)), 0, [], list(range(1, 11))),
            (list(range(1, 11)), -1, [], list(range(1, 11))),
            (list(range(1, 11)), 10, list(range(1, 11)), []),
        ]
        for items, n, prefix, rest in cases:
            head, tail = (
                await Source.from_iterable(items)
                .prefix_and_tail(n)
                .run_with(Sink.head(), materializer)
            )
            assert head == prefix
            assert await tail.run_with(Sink.seq(), materializer) == rest

    async def test_prefix_and_tail_main_stage_stops_without_tail_subscriber(
        self,
        materializer: Materializer,
    ) -> None:
        head, _ = await Source.single(1).prefix_and_tail(1).run_with(Sink.head(), materializer)
        assert head == [1]

    async def test_prefix_and_tail_errors_and_cancellations(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
        sub.request(1)
        pub.send_next(1).send_error(Boom("test"))
        assert isinstance(await sub.expect_error(), Boom)

        pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
        sub.request(1000)
        pub.send_next(1)
        head, tail = await sub.expect_next()
        assert head == [1]
        await sub.expect_complete()
        tail_sub = sink_probe(tail, materializer)
        await settle()
        pub.send_error(Boom("test"))
        assert isinstance(await tail_sub.expect_error(), Boom)

        pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
        sub.request(1)
        pub.send_next(1)
        sub.cancel()
        await pub.expect_cancellation()

        pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
        sub.request(1000)
        pub.send_next(1)
        _, tail = await sub.expect_next()
        await sub.expect_complete()
        tail_sub = sink_probe(tail, materializer)
        tail_sub.cancel()
        await pub.expect_cancellation()

    async def test_prefix_and_tail_tail_subscriber_after_completion(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
        sub.request(1)
        pub.send_next(0)
        _, tail = await sub.expect_next()
        pub.send_complete()
        await settle()
        tail_sub = sink_probe(tail, materializer)
        await tail_sub.expect_complete()

    async def test_prefix_and_tail(self, materializer: Materializer) -> None:
        prefix, tail = (
            await Source.from_iterable(range(6))
            .prefix_and_tail(2)
            .run_with(Sink.head(), materializer)
        )
        assert prefix == [0, 1]
        assert await seq(tail, materializer) == [2, 3, 4, 5]

    async def test_prefix_and_tail_short_and_zero(self, materializer: Materializer) -> None:
        prefix, tail = (
            await Source.from_iterable([1]).prefix_and_tail(3).run_with(Sink.head(), materializer)
        )
        assert prefix == [1]
        assert await seq(tail, materializer) == []
        prefix, tail = (
            await Source.from_iterable([1, 2])
            .prefix_and_tail(0)
            .run_with(Sink.head(), materializer)
        )
        assert prefix == []
        assert await seq(tail, materializer) == [1, 2]

    async def test_prefix_and_tail_failure_before_and_after_prefix(
        self, materializer: Materializer
    ) -> None:
        with pytest.raises(Boom):
            await (
                Source.failed(Boom("early")).prefix_and_tail(1).run_with(Sink.head(), materializer)
            )
        src = failing_after([1, 2], "late")
        prefix, tail = await src.prefix_and_tail(1).run_with(Sink.head(), materializer)
        assert prefix == [1]
        with pytest.raises(Boom, match="late"):
            await seq(tail, materializer)

    async def test_prefix_and_tail_tail_materialized_twice_fails(
        self, materializer: Materializer
    ) -> None:
        _, tail = (
            await Source.from_iterable(range(3))
            .prefix_and_tail(1)
            .run_with(Sink.head(), materializer)
        )
        first = tail.run_with(Sink.seq(), materializer)
        with pytest.raises(IllegalGraphError, match="only once"):
            await seq(tail, materializer)
        assert await first == [1, 2]

    async def test_prefix_and_tail_subscription_timeout(
        self, manual_clock: ManualClock, materializer: Materializer
    ) -> None:
        up, pair = (
            TestSource.probe().prefix_and_tail(1).to_mat(Sink.head(), Keep.both).run(materializer)
        )
        await up.expect_request()
        up.send_next(1)
        prefix, tail = await pair
        assert prefix == [1]
        await manual_clock.advance(4.9)
        await up.expect_no_message(0.01)
        await manual_clock.advance(0.2)
        cause = await up.expect_cancellation()
        assert isinstance(cause, SubscriptionTimeoutError)
        with pytest.raises(SubscriptionTimeoutError, match="materialized"):
            await seq(tail, materializer)

    async def test_prefix_and_tail_tail_cancel(self, materializer: Materializer) -> None:
        up, pair = (
            TestSource.probe().prefix_and_tail(0).to_mat(Sink.head(), Keep.both).run(materializer)
        )
        _, tail = await pair
        res = tail.take(1).run_with(Sink.seq(), materializer)
        await up.expect_request()
        up.send_next("x")
        assert await res == ["x"]
        await up.expect_cancellation()


class _Unmaterializable(GraphStage):  # type: ignore[type-arg]
    """A source whose materialization raises."""

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet("bad.out"))

    def create_logic(self, attributes: Any) -> Any:
        raise RuntimeError("materialization boom")


class TestFlatteningAsAkka:
    """Found by a review against Akka's ``FlattenMerge``, ``Switch`` and ``Split``."""

    @pytest.mark.parametrize(
        ("flatten", "called"),
        [
            (lambda s, f: s.flat_map_concat(f), [1]),
            (lambda s, f: s.flat_map_merge(2, f), [1]),
            (lambda s, f: s.group_by(4, f).merge_substreams(), [1]),
            # split_when never asks p about the first element
            (lambda s, f: s.split_when(f).concat_substreams(), []),
        ],
    )
    async def test_nothing_is_pulled_before_downstream_asks(
        self, flatten: Any, called: list[int], materializer: Materializer
    ) -> None:
        # FlattenMerge pulls upstream on downstream's first pull, not in preStart: no
        # element taken, no function called, no inner source opened before demand.
        calls: list[Any] = []

        def f(x: Any) -> Any:
            calls.append(x)
            return Source.single(x)

        pub, sub = (
            flatten(TestSource.probe(), f).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        await pub.expect_no_message(0.05)  # no request
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next()
        assert calls == called
        sub.cancel()

    @pytest.mark.parametrize("breadth", [1, 2])
    async def test_an_inner_source_that_fails_to_materialize_fails_the_stream_under_resume(
        self, breadth: int, materializer: Materializer
    ) -> None:
        # Only the function is supervised (FlattenMerge has no decider): the inner source's
        # own materialization failure is not an element to skip.
        bad = Source.from_graph(_Unmaterializable())
        with pytest.raises(RuntimeError, match="materialization boom"):
            await (
                Source.from_iterable([1, 2])
                .flat_map_merge(breadth, lambda x: bad if x == 1 else Source.single(x))
                .with_attributes(resuming())
                .run_with(Sink.seq(), materializer)
            )

    async def test_switch_map_keeps_the_current_inner_when_the_function_fails_resumed(
        self, materializer: Materializer
    ) -> None:
        # Before: the current inner was cancelled and replaced by one never started, and
        # the stage then waited for it forever.
        out = await asyncio.wait_for(
            Source.from_iterable([1, 2])
            .switch_map(lambda x: Source.single(x) if x == 1 else "not a source")
            .with_attributes(resuming())
            .run_with(Sink.seq(), materializer),
            5,
        )
        assert out == [1]
        bad = Source.from_graph(_Unmaterializable())
        with pytest.raises(RuntimeError, match="materialization boom"):
            await asyncio.wait_for(
                Source.from_iterable([1, 2])
                .switch_map(lambda x: Source.single(x) if x == 1 else bad)
                .with_attributes(resuming())
                .run_with(Sink.seq(), materializer),
                5,
            )

    async def test_split_when_does_not_ask_p_about_the_first_element(
        self, materializer: Materializer
    ) -> None:
        asked: list[int] = []

        def every_second(x: int) -> bool:  # a counting predicate, as Akka's docs show
            asked.append(x)
            return len(asked) % 2 == 0

        out = await (
            Source.from_iterable([1, 2, 3, 4, 5])
            .split_when(every_second)
            .grouped(10)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert asked == [2, 3, 4, 5]
        assert out == [[1, 2], [3, 4], [5]]

    async def test_an_unhashable_group_by_key_names_the_stage(
        self, materializer: Materializer
    ) -> None:
        with pytest.raises(TypeError, match=r"\[group_by\] key \[1\] of element 1 is not hashable"):
            await (
                Source.single(1)
                .group_by(4, lambda x: [x])
                .merge_substreams()
                .run_with(Sink.seq(), materializer)
            )
