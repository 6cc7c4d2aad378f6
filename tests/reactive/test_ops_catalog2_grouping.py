"""Catalog grouping operators ``grouped_adjacent_by`` and ``grouped_adjacent_by_weighted``
(Pekko's groupedAdjacentBy(Weighted))."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Materializer, Source, Supervision
from tests.reactive.support import Boom, decider, nothing, probes, seq

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


def first_letter(s: str) -> str:
    return s[0]


def raising_on(bad: Any, f: Any) -> Any:
    def g(x: Any) -> Any:
        if x == bad:
            raise Boom(f"on {bad}")
        return f(x)

    return g


class TestGroupedAdjacentBy:
    async def test_groups_of_consecutive_equal_keys(self, materializer: Materializer) -> None:
        words = ["apple", "avocado", "banana", "blueberry", "cherry", "apricot"]
        got = await seq(Source.from_iterable(words).grouped_adjacent_by(first_letter), materializer)
        assert got == [
            ["apple", "avocado"],
            ["banana", "blueberry"],
            ["cherry"],
            ["apricot"],  # an equal key later starts a new group
        ]

    async def test_empty_stream_emits_nothing(self, materializer: Materializer) -> None:
        assert await seq(Source.empty().grouped_adjacent_by(first_letter), materializer) == []

    async def test_demand(self, materializer: Materializer, manual_clock: ManualClock) -> None:
        pub, sub = probes(lambda s: s.grouped_adjacent_by(lambda x: x // 10), materializer)
        await nothing(manual_clock, pub)  # nothing pulled before demand
        sub.request(1)
        for x in (1, 2):
            assert await pub.expect_request() == 1
            pub.send_next(x)
        assert await pub.expect_request() == 1
        pub.send_next(11)  # the key changes: [1, 2] goes out, 11 starts the next group
        await sub.expect_next([1, 2])
        await nothing(manual_clock, pub)  # no demand: no pull
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(12)
        assert await pub.expect_request() == 1
        pub.send_complete()
        await sub.expect_next([11, 12])
        await sub.expect_complete()

    async def test_a_none_key_fails_naming_the_stage(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).grouped_adjacent_by(lambda x: None)
        with pytest.raises(ValueError, match=r"\[grouped_adjacent_by\] the key of element 1"):
            await seq(src, materializer)

    async def test_f_raising_fails_the_stream(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).grouped_adjacent_by(raising_on(2, lambda x: 0))
        with pytest.raises(Boom, match="on 2"):
            await seq(src, materializer)

    async def test_resume_drops_the_element(self, materializer: Materializer) -> None:
        flow = Flow[int]().grouped_adjacent_by(raising_on(3, lambda x: x // 10))
        src = Source.from_iterable([1, 2, 3, 4, 11]).via(
            flow.with_attributes(decider(Supervision.resume))
        )
        assert await seq(src, materializer) == [[1, 2, 4], [11]]

    async def test_restart_drops_the_group_being_built(self, materializer: Materializer) -> None:
        flow = Flow[int]().grouped_adjacent_by(raising_on(3, lambda x: x // 10))
        src = Source.from_iterable([1, 2, 3, 4, 11]).via(
            flow.with_attributes(decider(Supervision.restart))
        )
        assert await seq(src, materializer) == [[4], [11]]

    async def test_resume_on_a_none_key(self, materializer: Materializer) -> None:
        flow = Flow[int]().grouped_adjacent_by(lambda x: None if x == 2 else 0)
        src = Source.from_iterable([1, 2, 3]).via(flow.with_attributes(decider(Supervision.resume)))
        assert await seq(src, materializer) == [[1, 3]]

    def test_checks_its_argument(self) -> None:
        with pytest.raises(TypeError, match=r"grouped_adjacent_by\(f\): f must be callable"):
            Source.single(1).grouped_adjacent_by(3)  # type: ignore[arg-type]


class TestGroupedAdjacentByWeighted:
    async def test_closes_on_key_change_and_before_exceeding_max_weight(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 1, 1, 2, 2, 3, 3, 3, 3]).grouped_adjacent_by_weighted(
            lambda x: x % 2, 4, lambda x: x
        )
        # odd: 1+1+1 = 3 (<= 4); even: 2+2 = 4; odd: 3, then 3+3 > 4 closes each time
        assert await seq(src, materializer) == [[1, 1, 1], [2, 2], [3], [3], [3], [3]]

    async def test_a_heavy_element_forms_its_own_group(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 10, 1]).grouped_adjacent_by_weighted(
            lambda x: "k", 3, lambda x: x
        )
        assert await seq(src, materializer) == [[1], [10], [1]]

    async def test_an_element_as_heavy_as_the_limit_opening_a_group_is_one_alone(
        self, materializer: Materializer
    ) -> None:
        # Pekko's shouldPushDirectly: a weightless element after it does not join it.
        src = Source.from_iterable([4, 0, 1]).grouped_adjacent_by_weighted(
            lambda x: "k", 4, lambda x: x
        )
        assert await seq(src, materializer) == [[4], [0, 1]]

    async def test_zero_weights_never_close_a_group(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(5)).grouped_adjacent_by_weighted(
            lambda x: "k", 1, lambda x: 0
        )
        assert await seq(src, materializer) == [[0, 1, 2, 3, 4]]

    async def test_negative_weight_fails_naming_stage_and_value(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 2]).grouped_adjacent_by_weighted(
            lambda x: "k", 5, lambda x: -x
        )
        with pytest.raises(
            ValueError, match=r"\[grouped_adjacent_by_weighted\] negative weight -1 for element 1"
        ):
            await seq(src, materializer)

    async def test_a_weight_that_is_no_number_fails(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1]).grouped_adjacent_by_weighted(
            lambda x: "k", 5, lambda x: "heavy"
        )
        with pytest.raises(TypeError, match="returned str 'heavy' for element 1, not a number"):
            await seq(src, materializer)

    async def test_resume_drops_an_element_whose_cost_raised(
        self, materializer: Materializer
    ) -> None:
        flow = Flow[int]().grouped_adjacent_by_weighted(
            lambda x: "k", 10, raising_on(2, lambda x: 1)
        )
        src = Source.from_iterable([1, 2, 3]).via(flow.with_attributes(decider(Supervision.resume)))
        assert await seq(src, materializer) == [[1, 3]]

    def test_checks_its_arguments(self) -> None:
        sig = r"grouped_adjacent_by_weighted\(f, max_weight, cost\)"
        with pytest.raises(ValueError, match=sig + ": max_weight must be > 0"):
            Source.single(1).grouped_adjacent_by_weighted(first_letter, 0, len)
        with pytest.raises(TypeError, match=sig + ": max_weight must be a number"):
            Source.single(1).grouped_adjacent_by_weighted(first_letter, "3", len)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=sig + ": cost must be callable"):
            Source.single(1).grouped_adjacent_by_weighted(first_letter, 3, None)  # type: ignore[arg-type]
