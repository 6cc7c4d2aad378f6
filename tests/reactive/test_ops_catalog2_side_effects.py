"""Catalog operators (Pekko): ``do_on_first``, ``do_on_cancel`` and ``on_error_continue``."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Flow, Materializer, Source, Supervision
from tests.reactive.support import Boom, decider, nothing, probes, seq, sink_probe

if TYPE_CHECKING:
    from reactive.testkit import ManualClock


class Other(Exception):
    pass


def boom_at(bad: int, exc: BaseException | None = None) -> Any:
    def f(x: int) -> int:
        if x == bad:
            raise exc if exc is not None else Boom(f"at {bad}")
        return x

    return f


class TestDoOnFirst:
    async def test_f_sees_the_first_element_only(self, materializer: Materializer) -> None:
        seen: list[int] = []
        got = await seq(Source.from_iterable([1, 2, 3]).do_on_first(seen.append), materializer)
        assert got == [1, 2, 3]
        assert seen == [1]

    async def test_f_runs_before_the_first_element_goes_out(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        seen: list[int] = []
        pub, sub = probes(lambda s: s.do_on_first(seen.append), materializer)
        await nothing(manual_clock, pub)  # no demand, no pull
        sub.request(1)
        assert await pub.expect_request() == 1
        assert seen == []
        pub.send_next(5)
        await sub.expect_next(5)
        assert seen == [5]
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(6)
        await sub.expect_next(6)
        assert seen == [5]
        pub.send_complete()
        await sub.expect_complete()

    async def test_empty_stream_never_calls_f(self, materializer: Materializer) -> None:
        seen: list[int] = []
        assert await seq(Source.empty().do_on_first(seen.append), materializer) == []
        assert seen == []

    async def test_f_raising_fails_the_stream(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2]).do_on_first(boom_at(1))
        with pytest.raises(Boom, match="at 1"):
            await seq(src, materializer)

    async def test_resume_drops_the_element_and_does_not_call_f_again(
        self, materializer: Materializer
    ) -> None:
        # Pekko's doOnFirst: resume drops the element, f is not retried (review 5).
        seen: list[int] = []

        def f(x: int) -> None:
            seen.append(x)
            boom_at(1)(x)

        flow = Flow[int]().do_on_first(f).with_attributes(decider(Supervision.resume))
        assert await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer) == [2, 3]
        assert seen == [1]

    def test_checks_its_argument(self) -> None:
        with pytest.raises(TypeError, match=r"do_on_first\(f\): f must be callable"):
            Source.single(1).do_on_first(None)  # type: ignore[arg-type]


class TestDoOnCancel:
    async def test_a_normal_cancel(self, materializer: Materializer) -> None:
        calls: list[tuple[BaseException, bool]] = []
        pub, sub = probes(lambda s: s.do_on_cancel(lambda c, n: calls.append((c, n))), materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await sub.expect_next(1)
        sub.cancel()
        cause = await pub.expect_cancellation()
        assert len(calls) == 1
        assert calls[0][0] is cause
        assert calls[0][1] is True

    async def test_a_cancel_with_a_failure_cause(self, materializer: Materializer) -> None:
        calls: list[tuple[BaseException, bool]] = []
        pub, sub = probes(lambda s: s.do_on_cancel(lambda c, n: calls.append((c, n))), materializer)
        sub.cancel(Boom("downstream broke"))
        cause = await pub.expect_cancellation()
        assert isinstance(cause, Boom)
        assert len(calls) == 1
        assert calls[0][0] is cause
        assert calls[0][1] is False

    async def test_completion_and_failure_do_not_call_f(self, materializer: Materializer) -> None:
        calls: list[Any] = []
        src = Source.from_iterable([1, 2]).do_on_cancel(lambda c, n: calls.append(c))
        assert await seq(src, materializer) == [1, 2]
        with pytest.raises(Boom):
            await seq(
                Source.failed(Boom("x")).do_on_cancel(lambda c, n: calls.append(c)), materializer
            )
        assert calls == []

    async def test_a_take_downstream_cancels_normally(self, materializer: Materializer) -> None:
        calls: list[bool] = []
        src = Source.repeat(1).do_on_cancel(lambda c, n: calls.append(n)).take(2)
        assert await seq(src, materializer) == [1, 1]
        assert calls == [True]

    async def test_f_raising_cancels_upstream_with_its_exception(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        def f(cause: BaseException, normal: bool) -> None:
            raise Other("in f")

        pub, sub = probes(lambda s: s.do_on_cancel(f), materializer)
        with caplog.at_level(logging.ERROR, logger="reactive"):
            sub.cancel()
            cause = await pub.expect_cancellation()
        assert isinstance(cause, Other)
        assert "[do_on_cancel] f raised on cancellation" in caplog.text

    def test_checks_its_argument(self) -> None:
        with pytest.raises(TypeError, match=r"do_on_cancel\(f\): f must be callable"):
            Source.single(1).do_on_cancel(1)  # type: ignore[arg-type]


class TestOnErrorContinue:
    async def test_drops_the_failing_element_and_continues(
        self, materializer: Materializer
    ) -> None:
        errors: list[BaseException] = []
        src = (
            Source.from_iterable([1, 2, 0, 4])
            .map(lambda x: 8 // x)
            .on_error_continue(ZeroDivisionError, errors.append)
        )
        assert await seq(src, materializer) == [8, 4, 2]
        assert len(errors) == 1
        assert isinstance(errors[0], ZeroDivisionError)

    @pytest.mark.parametrize(
        "matcher",
        [None, Boom, (Other, Boom), lambda e: isinstance(e, Boom)],
        ids=["all", "class", "tuple", "predicate"],
    )
    async def test_matchers(self, materializer: Materializer, matcher: Any) -> None:
        errors: list[BaseException] = []
        src = (
            Source.from_iterable([1, 2, 3])
            .map(boom_at(2))
            .on_error_continue(matcher, errors.append)
        )
        assert await seq(src, materializer) == [1, 3]
        assert [str(e) for e in errors] == ["at 2"]

    async def test_an_unmatched_failure_stops(self, materializer: Materializer) -> None:
        errors: list[BaseException] = []
        src = (
            Source.from_iterable([1, 2, 3])
            .map(boom_at(2, KeyError("k")))
            .on_error_continue(Boom, errors.append)
        )
        sub = sink_probe(src, materializer)
        sub.request(3)
        await sub.expect_next(1)
        assert isinstance(await sub.expect_error(), KeyError)
        assert errors == []

    async def test_applies_to_a_stage_with_an_island_of_its_own(
        self, materializer: Materializer
    ) -> None:
        async def f(x: int) -> int:
            await asyncio.sleep(0)
            return boom_at(2)(x)

        src = (
            Source.from_iterable([1, 2, 3])
            .map_async(2, f)
            .async_boundary()
            .map(boom_at(3))  # across the async boundary: another island
            .on_error_continue(None, lambda e: None)
        )
        assert await seq(src, materializer) == [1]

    async def test_operators_appended_afterwards_are_not_covered(
        self, materializer: Materializer
    ) -> None:
        src = (
            Source.from_iterable([1, 2, 3])
            .map(boom_at(1))
            .on_error_continue(Boom, lambda e: None)
            .map(boom_at(3))
        )
        with pytest.raises(Boom, match="at 3"):
            await seq(src, materializer)

    async def test_an_inner_supervision_attribute_wins(self, materializer: Materializer) -> None:
        inner = Flow[int]().map(boom_at(2)).with_attributes(decider(Supervision.stop))
        src = Source.from_iterable([1, 2, 3]).via(inner).on_error_continue(Boom, lambda e: None)
        with pytest.raises(Boom, match="at 2"):
            await seq(src, materializer)

    async def test_an_upstream_failure_is_not_turned_into_anything(
        self, materializer: Materializer
    ) -> None:
        src = Source.failed(Boom("source")).on_error_continue(Boom, lambda e: None)
        with pytest.raises(Boom, match="source"):
            await seq(src, materializer)

    async def test_on_a_flow(self, materializer: Materializer) -> None:
        flow = Flow[int]().map(boom_at(2)).on_error_continue(Boom, lambda e: None)
        assert await seq(Source.from_iterable([1, 2, 3]).via(flow), materializer) == [1, 3]

    async def test_without_a_consumer_the_dropped_failure_is_logged(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        src = Source.from_iterable([1, 2, 3]).map(boom_at(2)).on_error_continue()
        with caplog.at_level(logging.WARNING, logger="reactive"):
            assert await seq(src, materializer) == [1, 3]
        assert "on_error_continue: an element was dropped after Boom('at 2')" in caplog.text

    async def test_a_raising_consumer_fails_the_stream(self, materializer: Materializer) -> None:
        def consumer(exc: BaseException) -> None:
            raise Other("consumer")

        src = Source.from_iterable([1, 2, 3]).map(boom_at(2)).on_error_continue(Boom, consumer)
        with pytest.raises(Boom, match="at 2") as info:
            await seq(src, materializer)
        assert any("decider raised" in n for n in getattr(info.value, "__notes__", []))

    def test_checks_its_arguments(self) -> None:
        sig = r"on_error_continue\(pred_or_exception_class, error_consumer\)"
        with pytest.raises(TypeError, match=sig + ": pred_or_exception_class must be None"):
            Source.single(1).on_error_continue(5)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=sig + ": error_consumer must be callable"):
            Source.single(1).on_error_continue(Boom, 5)  # type: ignore[arg-type]
