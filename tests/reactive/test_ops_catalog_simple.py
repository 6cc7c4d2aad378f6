"""Catalog simple operators: ``collect_first``, ``collect_while``, ``fold_while`` (Pekko)
and ``map_with_resource`` (Akka's mapWithResource)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Materializer, Source, Supervision
from tests.reactive.support import Boom, decider, nothing, probes, seq

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


def tens_above(n: int) -> Any:
    return lambda x: x * 10 if x > n else None


def raising_on(bad: int, f: Any) -> Any:
    def g(*args: Any) -> Any:
        if args[-1] == bad:
            raise Boom(f"on {bad}")
        return f(*args)

    return g


class TestCollectFirst:
    async def test_first_defined_value_then_complete(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.collect_first(tens_above(2)), materializer)
        sub.request(5)
        for x in (1, 2):
            await pub.expect_request()
            pub.send_next(x)
        await pub.expect_request()
        await nothing(manual_clock, sub)
        pub.send_next(3)
        await sub.expect_next(30)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_none_defined_completes_empty(self, materializer: Materializer) -> None:
        assert (
            await seq(Source.from_iterable([1, 2]).collect_first(tens_above(5)), materializer) == []
        )

    async def test_supervision(self, materializer: Materializer) -> None:
        f = raising_on(3, tens_above(2))
        with pytest.raises(Boom):
            await seq(Source.from_iterable([1, 3, 4]).collect_first(f), materializer)
        resumed = Flow[int]().collect_first(f).with_attributes(decider(Supervision.resume))
        assert await seq(Source.from_iterable([1, 3, 4]).via(resumed), materializer) == [40]


class TestCollectWhile:
    async def test_values_until_the_first_undefined(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.collect_while(lambda x: x * 10 if x < 3 else None), materializer
        )
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next(10)
        await nothing(manual_clock, pub)  # no demand: no pull
        sub.request(5)
        await pub.expect_request()
        pub.send_next(2)
        await sub.expect_next(20)
        await pub.expect_request()
        pub.send_next(3)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_upstream_completion(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).collect_while(lambda x: x + 1)
        assert await seq(src, materializer) == [2, 3]

    async def test_resume_drops_the_element(self, materializer: Materializer) -> None:
        f = raising_on(2, lambda x: x)
        resumed = Flow[int]().collect_while(f).with_attributes(decider(Supervision.resume))
        assert await seq(Source.from_iterable([1, 2, 3]).via(resumed), materializer) == [1, 3]


class TestFoldWhile:
    async def test_stops_when_the_predicate_turns_false(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.fold_while(0, lambda acc: acc < 10, lambda acc, x: acc + x), materializer
        )
        # Pekko's Fold pulls upstream only once downstream pulled (this used to pull from
        # the start).
        await nothing(manual_clock, pub)
        sub.request(1)
        for x in (1, 2, 3):
            await pub.expect_request()
            pub.send_next(x)
        await pub.expect_request()
        pub.send_next(4)  # 10: the predicate turns false
        await pub.expect_cancellation()
        await sub.expect_next(10)
        await sub.expect_complete()

    async def test_upstream_completion_emits_the_accumulation(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 2]).fold_while(0, lambda a: a < 100, lambda a, x: a + x)
        assert await seq(src, materializer) == [3]
        empty = Source.empty().fold_while(7, lambda a: True, lambda a, x: a + x)
        assert await seq(empty, materializer) == [7]

    async def test_pred_is_never_tested_on_zero(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # Pekko's Fold tests the predicate in onPush, after f: never on zero. A predicate
        # false from the start still takes the first element (this used to emit 0 at once).
        tested: list[int] = []

        def never(acc: int) -> bool:
            tested.append(acc)
            return False

        pub, sub = probes(lambda s: s.fold_while(0, never, lambda a, x: a + x), materializer)
        sub.request(1)
        await pub.expect_request()
        pub.send_next(5)
        await pub.expect_cancellation()
        await sub.expect_next(5)
        await sub.expect_complete()
        assert tested == [5]
        empty = Source.empty().fold_while(7, never, lambda a, x: a + x)
        assert await seq(empty, materializer) == [7]
        assert tested == [5]

    async def test_supervision(self, materializer: Materializer) -> None:
        f = raising_on(3, lambda a, x: a + x)
        src = Source.from_iterable([1, 2, 3, 4])
        resumed = Flow[int]().fold_while(0, lambda a: True, f)
        assert await seq(
            src.via(resumed.with_attributes(decider(Supervision.resume))), materializer
        ) == [7]
        assert await seq(
            src.via(resumed.with_attributes(decider(Supervision.restart))), materializer
        ) == [4]
        with pytest.raises(Boom):
            await seq(src.via(resumed), materializer)


class Resource:
    """A resource recording what happened to it."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log = log
        self.name = name
        log.append(f"open {name}")

    def close(self, value: Any = None) -> Any:
        self.log.append(f"close {self.name}")
        return value


class TestMapWithResource:
    def build(self, log: list[str], last: Any = None, fail_on: Any = None) -> Flow[Any, Any, Any]:
        names = iter("ABCDEF")

        def f(r: Resource, x: Any) -> Any:
            if x == fail_on:
                raise Boom(f"f {x}")
            return None if x == "skip" else f"{r.name}{x}"

        return Flow().map_with_resource(
            lambda: Resource(log, next(names)), f, lambda r: r.close(last)
        )

    async def test_maps_and_emits_close_value_on_completion(
        self, materializer: Materializer
    ) -> None:
        log: list[str] = []
        src = Source.from_iterable([1, "skip", 2]).via(self.build(log, last="end"))
        assert await seq(src, materializer) == ["A1", "A2", "end"]
        assert log == ["open A", "close A"]

    async def test_resource_opens_at_materialization(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        log: list[str] = []
        pub, sub = probes(lambda s: s.via(self.build(log, last="end")), materializer)
        await nothing(manual_clock, sub)
        assert log == ["open A"]  # before any demand or element
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next("A1")
        sub.cancel()
        await pub.expect_cancellation()
        assert log == ["open A", "close A"]  # closed once; its value dropped
        await sub.expect_no_message(0)

    async def test_upstream_failure_closes_and_emits_the_value(
        self, materializer: Materializer
    ) -> None:
        # Akka: "upstream completes or fails, the optional value returned by close will be
        # emitted to downstream" (review 5; it was dropped).
        log: list[str] = []
        pub, sub = probes(lambda s: s.via(self.build(log, last="end")), materializer)
        sub.request(5)
        pub.send_error(Boom("up"))
        await sub.expect_next("end")
        assert isinstance(await sub.expect_error(), Boom)
        assert log == ["open A", "close A"]

    async def test_f_failing_closes_once(self, materializer: Materializer) -> None:
        log: list[str] = []
        src = Source.from_iterable([1, 2, 3]).via(self.build(log, last="end", fail_on=2))
        with pytest.raises(Boom):
            await seq(src, materializer)
        assert log == ["open A", "close A"]

    async def test_restart_closes_and_recreates(self, materializer: Materializer) -> None:
        log: list[str] = []
        flow = self.build(log, last="end", fail_on=2).with_attributes(decider(Supervision.restart))
        got = await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer)
        # Akka's statefulMap restart pushes the old resource's close value (review 5).
        assert got == ["A1", "end", "B3", "end"]
        assert log == ["open A", "close A", "open B", "close B"]

    async def test_resume_keeps_the_resource(self, materializer: Materializer) -> None:
        log: list[str] = []
        flow = self.build(log, fail_on=2).with_attributes(decider(Supervision.resume))
        got = await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer)
        assert got == ["A1", "A3"]
        assert log == ["open A", "close A"]

    async def test_a_raising_close_fails_the_stream(self, materializer: Materializer) -> None:
        def close(r: Any) -> Any:
            raise Boom("close")

        src = Source.from_iterable([1]).map_with_resource(lambda: "R", lambda r, x: x, close)
        with pytest.raises(Boom, match="close"):
            await seq(src, materializer)

    def test_checks_arguments(self) -> None:
        with pytest.raises(TypeError, match=r"map_with_resource\(create, f, close\): close"):
            Source.single(1).map_with_resource(lambda: 1, lambda r, x: x, None)  # type: ignore[arg-type]
