"""Catalog error operators: ``recover_with`` (Akka's recoverWith) and
``on_error_complete`` (Akka's onErrorComplete)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import Flow, Materializer, Sink, Source, Supervision
from tests.reactive.support import Boom, decider, probes, seq, sink_probe


class Other(Exception):
    """A failure no matcher matches."""


def boom_at(n: int, exc: BaseException | None = None) -> Any:
    err = exc if exc is not None else Boom("boom")

    def f(a: int) -> int:
        if a == n:
            raise err
        return a

    return f


class TestRecoverWith:
    async def test_switches_to_the_replacement(self, materializer: Materializer) -> None:
        src = (
            Source.from_iterable(range(1, 5))
            .map(boom_at(3))
            .recover_with(lambda e: Source.from_iterable([10, 11]))
        )
        assert await seq(src, materializer) == [1, 2, 10, 11]

    async def test_recovers_without_limit(self, materializer: Materializer) -> None:
        calls = 0

        def f(exc: BaseException) -> Source[int, Any]:
            nonlocal calls
            calls += 1
            return Source.failed(Boom("again")) if calls < 50 else Source.single(99)

        got = await seq(Source.failed(Boom("first")).recover_with(f), materializer)
        assert got == [99]
        assert calls == 50

    async def test_reraising_leaves_the_failure(self, materializer: Materializer) -> None:
        def only_boom(exc: BaseException) -> Source[int, Any]:
            if isinstance(exc, Boom):
                return Source.single(0)
            raise exc

        sub = sink_probe(Source.failed(Other("x")).recover_with(only_boom), materializer)
        sub.request(1)
        assert isinstance(await sub.expect_error(), Other)

    async def test_demand_goes_to_the_replacement(self, materializer: Materializer) -> None:
        pub, sub = probes(
            lambda s: s.recover_with(lambda e: Source.from_iterable([7, 8, 9])), materializer
        )
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom("x"))
        await sub.expect_no_message(0.05)  # no demand: the replacement waits
        sub.request(2)
        await sub.expect_next(7, 8)
        await sub.expect_no_message(0.05)
        sub.request(1)
        await sub.expect_next(9)
        await sub.expect_complete()

    def test_stage_name(self) -> None:
        from reactive._ops.errors import RecoverWith

        stage = RecoverWith(lambda e: Source.empty())
        assert stage.name == "recover_with"
        assert stage.attempts == -1

    def test_checks_its_argument(self) -> None:
        with pytest.raises(TypeError, match=r"recover_with\(f\): f must be callable"):
            Source.single(1).recover_with(5)  # type: ignore[arg-type]

    async def test_supervision_resume_completes_on_a_raising_function(
        self, materializer: Materializer
    ) -> None:
        def bad(exc: BaseException) -> Source[int, Any]:
            raise Other("in f")

        flow = Flow[int]().recover_with(bad).with_attributes(decider(Supervision.resume))
        src = Source.from_iterable([1, 2]).map(boom_at(2)).via(flow)
        assert await seq(src, materializer) == [1]


class TestOnErrorComplete:
    async def test_any_failure_completes(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.on_error_complete(), materializer)
        sub.request(2)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom("x"))
        await sub.expect_complete()

    @pytest.mark.parametrize(
        "matcher",
        [Boom, (Other, Boom), lambda e: isinstance(e, Boom)],
        ids=["class", "tuple", "predicate"],
    )
    async def test_matched_completes_unmatched_fails(
        self, materializer: Materializer, matcher: Any
    ) -> None:
        got = await seq(
            Source.from_iterable([1, 2, 3]).map(boom_at(3)).on_error_complete(matcher),
            materializer,
        )
        assert got == [1, 2]
        sub = sink_probe(
            Source.from_iterable([1, 2, 3])
            .map(boom_at(2, KeyError("k")))
            .on_error_complete(matcher),
            materializer,
        )
        sub.request(3)
        await sub.expect_next(1)
        assert isinstance(await sub.expect_error(), KeyError)

    async def test_a_raising_predicate_fails_with_its_exception(
        self, materializer: Materializer
    ) -> None:
        def pred(exc: BaseException) -> bool:
            raise Other("pred")

        sub = sink_probe(Source.failed(Boom("x")).on_error_complete(pred), materializer)
        sub.request(1)
        err = await sub.expect_error()
        assert isinstance(err, Other)

    async def test_passes_elements_and_completion(self, materializer: Materializer) -> None:
        got = (
            await Source.from_iterable(range(4))
            .on_error_complete()
            .run_with(Sink.seq(), materializer)
        )
        assert got == [0, 1, 2, 3]

    async def test_cancellation_goes_upstream(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.on_error_complete(Boom), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    def test_rejects_what_is_no_matcher(self) -> None:
        with pytest.raises(TypeError, match=r"on_error_complete\(pred_or_exception_class\).*int 5"):
            Source.single(1).on_error_complete(5)  # type: ignore[arg-type]
