"""Catalog rate and grouping operators: ``extrapolate``, ``grouped_weighted``,
``grouped_weighted_within`` (timed cases on the ManualClock)."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Materializer, Source, Supervision
from tests.reactive.support import Boom, decider, nothing, probes, quiet_for, seq

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


def repeat(x: int) -> Any:
    return itertools.repeat(x * 10)


class TestExtrapolate:
    async def test_originals_then_extrapolated_while_upstream_is_silent(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.extrapolate(repeat), materializer)
        pub.send_next(1)
        await sub.request_next(1)  # the original first
        await sub.request_next(10)
        await sub.request_next(10)
        pub.send_next(2)
        await nothing(manual_clock, sub)
        await sub.request_next(2)  # a new element always goes out unchanged
        await sub.request_next(20)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_every_original_goes_out_even_when_downstream_is_slow(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.extrapolate(repeat), materializer)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await nothing(manual_clock, pub)  # 1 not emitted yet: no new pull
        await sub.request_next(1)
        assert await pub.expect_request() == 1
        pub.send_next(2)
        await nothing(manual_clock, pub)
        await sub.request_next(2)  # not 10: the new original wins
        await sub.request_next(20)
        sub.cancel()

    async def test_initial_seeds_demand_before_the_first_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.extrapolate(lambda x: iter([x + 1, x + 2]), 0), materializer)
        await sub.request_next(0)
        await sub.request_next(1)
        await sub.request_next(2)
        sub.request(1)
        await nothing(manual_clock, sub)  # iterator exhausted: waits for upstream
        pub.send_next(5)
        await sub.expect_next(5)
        pub.send_complete()
        await sub.expect_complete()

    async def test_initial_goes_out_first(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # Akka's "extrapolate should send seed first": initial is prepended to the expand,
        # so upstream is not pulled before it went out (it was replaced by an element
        # arriving before the first demand).
        pub, sub = probes(lambda s: s.extrapolate(repeat, 0), materializer)
        await pub.expect_no_message(0.01)  # no request before initial went out
        await sub.request_next(0)
        await pub.expect_request()
        pub.send_next(7)
        await nothing(manual_clock, sub)
        await sub.request_next(7)
        await sub.request_next(70)
        sub.cancel()

    async def test_completion_after_the_last_original(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        assert await seq(Source.from_iterable([1, 2, 3]).extrapolate(repeat), materializer) == [
            1,
            2,
            3,
        ]
        pub, sub = probes(lambda s: s.extrapolate(repeat), materializer)
        pub.send_next(1).send_complete()
        await nothing(manual_clock, sub)
        await sub.request_next(1)  # the last original is not dropped
        await sub.expect_complete()

    async def test_failure_of_f(self, materializer: Materializer) -> None:
        def f(x: int) -> Any:
            if x == 2:
                raise Boom("f")
            return iter(())

        with pytest.raises(Boom):
            await seq(Source.from_iterable([1, 2, 3]).extrapolate(f), materializer)
        resumed = Flow[int]().extrapolate(f).with_attributes(decider(Supervision.resume))
        assert await seq(Source.from_iterable([1, 2, 3]).via(resumed), materializer) == [1, 3]

    async def test_a_non_iterable_result_names_the_stage(self, materializer: Materializer) -> None:
        with pytest.raises(TypeError, match=r"\[extrapolate\].*not an iterable"):
            await seq(Source.single(1).extrapolate(lambda x: 5), materializer)  # type: ignore[arg-type,return-value]


class TestGroupedWeighted:
    async def test_groups_close_at_min_weight(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4, 5, 1]).grouped_weighted(3, lambda x: x)
        assert await seq(src, materializer) == [[1, 2], [3], [4], [5], [1]]

    async def test_zero_weights_accumulate(self, materializer: Materializer) -> None:
        src = Source.from_iterable(["a", "b", "c", "d"]).grouped_weighted(
            1, lambda x: 1 if x == "c" else 0
        )
        assert await seq(src, materializer) == [["a", "b", "c"], ["d"]]

    async def test_demand(self, materializer: Materializer, manual_clock: ManualClock) -> None:
        pub, sub = probes(lambda s: s.grouped_weighted(4, len), materializer)
        sub.request(1)
        await pub.expect_request()
        pub.send_next("ab")
        await pub.expect_request()  # group not full: pulls on
        pub.send_next("cd")
        await sub.expect_next(["ab", "cd"])
        await nothing(manual_clock, pub)  # no demand: no pull
        sub.request(1)
        await pub.expect_request()
        pub.send_next("e").send_complete()
        await sub.expect_next(["e"])
        await sub.expect_complete()

    async def test_negative_weight_fails_naming_stage_and_value(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, -2]).grouped_weighted(3, lambda x: x)
        with pytest.raises(
            ValueError, match=r"\[grouped_weighted\] negative weight -2 for element -2"
        ):
            await seq(src, materializer)

    def test_checks_min_weight(self) -> None:
        with pytest.raises(ValueError, match=r"grouped_weighted\(min_weight, cost\): min_weight"):
            Source.single(1).grouped_weighted(0, lambda x: x)
        with pytest.raises(TypeError, match=r"cost must be callable"):
            Source.single(1).grouped_weighted(1, 2)  # type: ignore[arg-type]


class TestGroupedWeightedWithin:
    async def test_closes_before_exceeding_max_weight(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4, 5, 9, 1]).grouped_weighted_within(
            5, 10.0, lambda x: x
        )
        # 3 does not fit next to 1+2; 9 alone is heavier than 5: its own group
        assert await seq(src, materializer) == [[1, 2], [3], [4], [5], [9], [1]]

    async def test_max_number(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 4, 5]).grouped_weighted_within(
            100, 10.0, lambda x: x, max_number=2
        )
        assert await seq(src, materializer) == [[1, 2], [3, 4], [5]]

    async def test_timer_closes_a_light_group(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_weighted_within(100, 1.0, lambda x: x), materializer)
        sub.request(3)
        pub.send_next(1).send_next(2)
        await quiet_for(manual_clock, 0.5, sub)
        await manual_clock.advance(0.5)
        await sub.expect_next([1, 2])
        await quiet_for(manual_clock, 2.0, sub)  # empty groups are never emitted
        pub.send_next(3)
        await manual_clock.advance(1.0)
        await sub.expect_next([3])
        pub.send_complete()
        await sub.expect_complete()

    async def test_a_heavy_element_waits_outside_the_group_while_backpressured(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.grouped_weighted_within(5, 1.0, lambda x: x), materializer)
        await pub.expect_request()
        pub.send_next(2)
        await pub.expect_request()
        pub.send_next(4)  # does not fit: waits outside the group
        await nothing(manual_clock, pub)  # nothing more is pulled
        sub.request(1)
        await sub.expect_next([2])
        sub.request(1)
        await pub.expect_request()
        pub.send_complete()
        await sub.expect_next([4])
        await sub.expect_complete()

    async def test_negative_weight_fails(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, -1]).grouped_weighted_within(5, 1.0, lambda x: x)
        with pytest.raises(
            ValueError, match=r"\[grouped_weighted_within\] negative weight -1 for element -1"
        ):
            await seq(src, materializer)

    async def test_resume_drops_an_element_whose_cost_raised(
        self, materializer: Materializer
    ) -> None:
        def cost(x: int) -> int:
            if x == 2:
                raise Boom("cost")
            return x

        flow = (
            Flow[int]()
            .grouped_weighted_within(4, 1.0, cost)
            .with_attributes(decider(Supervision.resume))
        )
        got = await seq(Source.from_iterable([1, 2, 3, 4]).via(flow), materializer)
        assert got == [[1, 3], [4]]

    def test_checks_arguments(self) -> None:
        sig = r"grouped_weighted_within\(max_weight, seconds, cost, max_number\)"
        with pytest.raises(ValueError, match=sig + ": max_weight must be > 0"):
            Source.single(1).grouped_weighted_within(0, 1.0, lambda x: x)
        with pytest.raises(ValueError, match=sig + ": seconds must be > 0"):
            Source.single(1).grouped_weighted_within(1, 0, lambda x: x)
        with pytest.raises(ValueError, match=sig + ": max_number must be >= 1"):
            Source.single(1).grouped_weighted_within(1, 1.0, lambda x: x, max_number=0)


def sum_until(limit: int) -> Any:
    """``aggregate``: add up, emit once the sum reaches ``limit``."""

    def aggregate(acc: list[int], x: int) -> tuple[list[int], bool]:
        acc.append(x)
        return acc, sum(acc) >= limit

    return aggregate


class TestAggregateWithBoundary:
    async def test_emits_at_the_boundary_and_on_completion(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 2, 3, 4, 5]).aggregate_with_boundary(
            list, sum_until(5), tuple
        )
        assert await seq(src, materializer) == [(1, 2, 3), (4, 5)]
        empty = Source.empty().aggregate_with_boundary(list, sum_until(5), tuple)
        assert await seq(empty, materializer) == []

    async def test_demand(self, materializer: Materializer, manual_clock: ManualClock) -> None:
        pub, sub = probes(
            lambda s: s.aggregate_with_boundary(list, sum_until(3), tuple), materializer
        )
        await nothing(manual_clock, pub)  # no demand: upstream is not pulled
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await pub.expect_request()
        pub.send_next(2)
        await sub.expect_next((1, 2))
        await nothing(manual_clock, pub)  # no demand left: no pull
        sub.request(1)
        await pub.expect_request()
        pub.send_next(7).send_complete()
        await sub.expect_next((7,))
        await sub.expect_complete()

    async def test_timer_emits_a_ready_aggregate(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.aggregate_with_boundary(
                list, sum_until(100), tuple, emit_on_timer=(lambda acc: len(acc) >= 2, 1.0)
            ),
            materializer,
        )
        sub.request(5)
        pub.send_next(1)
        await quiet_for(manual_clock, 1.0, sub)  # one element: not ready on the timer
        pub.send_next(2)
        await sub.expect_no_message(0)
        await manual_clock.advance(1.0)
        await sub.expect_next((1, 2))
        pub.send_complete()
        await sub.expect_complete()

    async def test_harvest_none_emits_nothing(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3, 1, 5]).aggregate_with_boundary(
            list, sum_until(3), lambda acc: None if len(acc) == 1 else sum(acc)
        )
        assert await seq(src, materializer) == [3, 6]  # the group [3] emitted nothing

    async def test_supervision(self, materializer: Materializer) -> None:
        def aggregate(acc: list[int], x: int) -> tuple[list[int], bool]:
            if x == 3:
                raise Boom("agg")
            acc.append(x)
            return acc, len(acc) == 2

        src = Source.from_iterable([1, 3, 2, 4])
        flow = Flow[int]().aggregate_with_boundary(list, aggregate, tuple)
        resumed = flow.with_attributes(decider(Supervision.resume))
        # Pekko: resume drops the aggregate in progress ([1]) with the failing element
        assert await seq(src.via(resumed), materializer) == [(2, 4)]
        with pytest.raises(Boom):
            await seq(src.via(flow), materializer)

    async def test_a_bad_aggregate_result_names_the_stage(self, materializer: Materializer) -> None:
        src = Source.single(1).aggregate_with_boundary(list, lambda acc, x: acc, tuple)  # type: ignore[arg-type,return-value]
        with pytest.raises(TypeError, match=r"\[aggregate_with_boundary\] aggregate returned"):
            await seq(src, materializer)

    def test_checks_emit_on_timer(self) -> None:
        with pytest.raises(TypeError, match=r"emit_on_timer must be None or a pair"):
            Source.single(1).aggregate_with_boundary(list, sum_until(1), tuple, 5)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"emit_on_timer's seconds must be > 0"):
            Source.single(1).aggregate_with_boundary(list, sum_until(1), tuple, (lambda a: True, 0))
