"""The error family (``reactive/_ops/errors.py``): recover, map_error, recover_with_retries.
Akka's specs (FlowRecoverSpec, FlowMapErrorSpec, FlowRecoverWithSpec) and our own cases, one
class per operator.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Done,
    Flow,
    Keep,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
    Supervision,
)
from tests.reactive.support import Boom, probes, settle, sink_probe

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive.testkit import ManualClock

_FAIL: Any = object()


def failing(*xs: Any, exc: BaseException | None = None) -> Source[Any, Any]:
    """``xs`` then a failure (raised by ``map`` after the elements passed)."""

    def check(x: Any) -> Any:
        if x is _FAIL:
            raise exc or Boom("boom")
        return x

    return Source.from_iterable([*xs, _FAIL]).map(check)


def reraise(exc: BaseException) -> Any:
    raise exc


def supervised(blueprint: Any, directive: Supervision) -> Any:
    """``blueprint`` with a decider always answering ``directive``."""
    return blueprint.with_attributes(Attributes.supervision_strategy(lambda e: directive))


def boom_at(n: int, exc: BaseException | None = None) -> Callable[[int], int]:
    """``map { a => if (a == n) throw ex else a }``."""
    err = exc if exc is not None else Boom("ex")

    def f(a: int) -> int:
        if a == n:
            raise err
        return a

    return f


def only(kind: type[BaseException], value: Any) -> Callable[[BaseException], Any]:
    """A partial function: ``value`` for ``kind``, re-raise anything else."""

    def f(exc: BaseException) -> Any:
        if isinstance(exc, kind):
            return value() if callable(value) else value
        raise exc

    return f


class TestRecover:
    """``recover``."""

    async def test_recover_with_a_handler(self, materializer: Materializer) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 5)).map(boom_at(3)).recover(lambda exc: 0), materializer
        )
        for x in (1, 2, 0):
            await sub.request_next(x)
        sub.request(1)
        await sub.expect_complete()

    async def test_recover_unmatched_and_raising_handler(self, materializer: Materializer) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 4)).map(boom_at(2)).recover(only(IndexError, 0)),
            materializer,
        )
        await sub.request_next(1)
        sub.request(1)
        assert isinstance(await sub.expect_error(), Boom)

        other = IndexError("quite intuitive")

        def handler(exc: BaseException) -> int:
            raise other

        sub = sink_probe(Source.failed(RuntimeError("expected")).recover(handler), materializer)
        assert await sub.expect_error() is other

    async def test_errors_overtake_buffered_elements(self, materializer: Materializer) -> None:
        pub, sub = probes(
            lambda s: s.buffer(16, OverflowStrategy.backpressure).recover(lambda e: 0), materializer
        )
        pub.send_next(1).send_next(2).send_next(3)
        await settle()
        pub.send_error(Boom("up"))
        await settle()
        sub.request(10)
        await sub.expect_next(0)  # 1, 2, 3 were still buffered: the failure overtook them
        await sub.expect_complete()

    async def test_recover_emits_last_element_and_completes(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await failing(1, 2)
            .recover(lambda e: f"recovered {e}")
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2, "recovered boom"]

    async def test_recover_reraise_leaves_failure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        with pytest.raises(Boom, match="boom"):
            await failing(1).recover(reraise).run_with(Sink.seq(), materializer)

    async def test_recover_only_matching_errors(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        def only_key_errors(e: BaseException) -> Any:
            if isinstance(e, KeyError):
                return "k"
            raise e

        assert await failing(1, exc=KeyError("x")).recover(only_key_errors).run_with(
            Sink.seq(), materializer
        ) == [1, "k"]
        with pytest.raises(Boom):
            await failing(1).recover(only_key_errors).run_with(Sink.seq(), materializer)

    async def test_recover_function_raising_another_error(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        def bad(e: BaseException) -> Any:
            raise RuntimeError("in recover")

        with pytest.raises(RuntimeError, match="in recover"):
            await failing(1).recover(bad).run_with(Sink.seq(), materializer)

    async def test_recover_none_completes_without_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        assert await failing(1).recover(lambda e: None).run_with(Sink.seq(), materializer) == [1]

    async def test_recover_waits_for_demand(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.recover(lambda e: "r"), materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom("late"))
        await manual_clock.settle()
        await sub.expect_no_message(0)
        sub.request(1)
        await sub.expect_next("r")
        await sub.expect_complete()

    async def test_recover_passes_completion_and_cancellation(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        assert await Source.from_iterable([1, 2]).recover(lambda e: 0).run_with(
            Sink.seq(), materializer
        ) == [1, 2]
        pub, sub = probes(lambda s: s.recover(lambda e: "r"), materializer)
        sub.cancel()
        await pub.expect_cancellation()


class TestMapError:
    """``map_error``."""

    async def test_recover_and_map_error_on_empty_and_clean_streams(
        self,
        materializer: Materializer,
    ) -> None:
        for build in (lambda s: s.recover(lambda e: 0), lambda s: s.map_error(lambda e: Boom("x"))):
            sub = sink_probe(build(Source.from_iterable([1, 2, 3])), materializer)
            sub.request(3)
            await sub.expect_next(1, 2, 3)
            await sub.expect_complete()
            sub = sink_probe(build(Source.empty()), materializer)
            sub.request(1)
            await sub.expect_complete()

    async def test_map_error_cases(self, materializer: Materializer) -> None:
        boom = Boom("BOOM!")
        sub = sink_probe(
            Source.from_iterable(range(1, 5)).map(boom_at(3)).map_error(lambda e: boom),
            materializer,
        )
        sub.request(3)
        await sub.expect_next(1, 2)
        assert await sub.expect_error() is boom

        def raising(exc: BaseException) -> BaseException:
            raise boom

        sub = sink_probe(
            Source.from_iterable(range(1, 4)).map(boom_at(2)).map_error(raising), materializer
        )
        await sub.request_next(1)
        sub.request(1)
        assert await sub.expect_error() is boom

        ex = RuntimeError("ex")
        sub = sink_probe(
            Source.from_iterable(range(1, 4)).map(boom_at(2, ex)).map_error(only(IndexError, boom)),
            materializer,
        )
        await sub.request_next(1)
        sub.request(1)
        assert await sub.expect_error() is ex

    async def test_map_error_translates(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        with pytest.raises(KeyError, match="translated"):
            await (
                failing(1)
                .map_error(lambda e: KeyError(f"translated {e}"))
                .run_with(Sink.seq(), materializer)
            )

    async def test_map_error_none_keeps_original(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        with pytest.raises(Boom):
            await failing(1).map_error(lambda e: None).run_with(Sink.seq(), materializer)

    async def test_map_error_passes_elements_and_completion(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable([1, 2])
            .map_error(lambda e: KeyError())
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2]
        pub, sub = probes(lambda s: s.map_error(lambda e: KeyError()), materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_error(Boom())
        assert isinstance(await sub.expect_error(), KeyError)


class TestRecoverWithRetries:
    """``recover_with_retries``."""

    async def test_recover_with_retries_switches_to_sources(
        self, materializer: Materializer
    ) -> None:
        cases: list[tuple[Any, list[int]]] = [
            (Source.from_iterable([0, -1]), [1, 2, 0, -1]),
            (Source.empty(), [1, 2]),
            (Source.single(3), [1, 2, 3]),
        ]
        for replacement, expected in cases:
            sub = sink_probe(
                Source.from_iterable(range(1, 5))
                .map(boom_at(3))
                .recover_with_retries(-1, lambda e, r=replacement: r),
                materializer,
            )
            sub.request(2)
            await sub.expect_next(1, 2)
            sub.request(10)
            for x in expected[2:]:
                await sub.expect_next(x)
            await sub.expect_complete()

    async def test_recover_with_retries_failed_sources_until_one_works(
        self,
        materializer: Materializer,
    ) -> None:
        import asyncio as aio

        counter = 0

        def failed_future() -> Any:
            fut = aio.get_running_loop().create_future()
            fut.set_exception(Boom("ex"))
            return fut

        for make_failed in (
            lambda: Source.failed(Boom("ex")),
            lambda: Source.from_awaitable(failed_future()),
        ):
            counter = 0

            def f(exc: BaseException, make: Callable[[], Any] = make_failed) -> Any:
                nonlocal counter
                counter += 1
                return make() if counter < 100 else Source.single(101)

            sub = sink_probe(Source.failed(Boom("ex")).recover_with_retries(-1, f), materializer)
            sub.request(100)
            await sub.expect_next(101)
            await sub.expect_complete()
            assert counter == 100

    async def test_recover_with_retries_cancel_and_unmatched(
        self, materializer: Materializer
    ) -> None:
        sub = sink_probe(
            Source.from_iterable(range(1, 5))
            .map(boom_at(3))
            .recover_with_retries(-1, lambda e: Source.from_iterable([0, -1])),
            materializer,
        )
        sub.request(2)
        await sub.expect_next(1, 2)
        await sub.request_next(0)
        sub.cancel()

        ex = Boom("ex")
        sub = sink_probe(
            Source.from_iterable(range(1, 4))
            .map(boom_at(2, ex))
            .recover_with_retries(-1, only(IndexError, lambda: Source.single(0))),
            materializer,
        )
        await sub.request_next(1)
        sub.request(1)
        assert await sub.expect_error() is ex

    async def test_recover_with_retries_same_unmaterialized_source_again(
        self,
        materializer: Materializer,
    ) -> None:
        src = Source.from_iterable(range(1, 4)).map(boom_at(3))
        sub = sink_probe(src.recover_with_retries(-1, lambda e: src), materializer)
        for _ in range(3):
            sub.request(2)
            await sub.expect_next(1, 2)
        sub.cancel()

    async def test_recover_with_retries_switches_a_second_time(
        self, materializer: Materializer
    ) -> None:
        def f(exc: BaseException) -> Any:
            if isinstance(exc, IndexError):
                return Source.from_iterable([11, 22]).map(boom_at(22, ValueError()))
            if isinstance(exc, ValueError):
                return Source.from_iterable([33, 44])
            raise exc

        sub = sink_probe(
            Source.from_iterable(range(1, 4))
            .map(boom_at(3, IndexError()))
            .recover_with_retries(-1, f),
            materializer,
        )
        sub.request(2)
        await sub.expect_next(1, 2)
        sub.request(2)
        await sub.expect_next(11, 33)
        await sub.request_next(44)
        await sub.expect_complete()

    async def test_recover_with_retries_terminates_after_set_number_of_retries(
        self,
        materializer: Materializer,
    ) -> None:
        ex = Boom("ex")
        sub = sink_probe(
            Source.from_iterable(range(1, 4))
            .map(boom_at(3, IndexError()))
            .recover_with_retries(
                3, lambda e: Source.from_iterable([11, 22, 33]).map(boom_at(33, ex))
            ),
            materializer,
        )
        sub.request(100)
        assert await sub.expect_next_n(8) == [1, 2, 11, 22, 11, 22, 11, 22]
        assert await sub.expect_error() is ex

    async def test_recover_with_retries_unlimited_for_any_negative_value(
        self,
        materializer: Materializer,
    ) -> None:
        one_then_boom = Source.from_iterable([1, 2]).map(boom_at(2))
        for attempts in (-1, -10):
            sub = sink_probe(
                one_then_boom.recover_with_retries(attempts, lambda e: one_then_boom), materializer
            )
            sub.request(5)
            assert await sub.expect_next_n(5) == [1] * 5
            sub.cancel()

    async def test_recover_with_retries_materialization_failure(
        self, materializer: Materializer
    ) -> None:
        from reactive.stage import GraphStage, GraphStageLogic, Outlet, SourceShape

        mat_fail = Boom("fail!")

        class FailingInnerMat(GraphStage):
            def __init__(self) -> None:
                self.shape = SourceShape(Outlet("out"))

            def create_logic(self, attributes: Any) -> GraphStageLogic:
                raise mat_fail

        done = (
            Source.failed(Boom("trigger"))
            .recover_with_retries(1, lambda e: Source.from_graph(FailingInnerMat()))
            .run_with(Sink.ignore(), materializer)
        )
        with pytest.raises(Boom) as info:
            await done
        assert info.value is mat_fail

    async def test_recover_with_retries_switches_to_source(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await failing(1, 2)
            .recover_with_retries(1, lambda e: Source.from_iterable([7, 8]))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2, 7, 8]

    async def test_recover_with_retries_zero_never_recovers(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        with pytest.raises(Boom):
            await (
                failing(1)
                .recover_with_retries(0, lambda e: Source.single(9))
                .run_with(Sink.seq(), materializer)
            )

    async def test_recover_with_retries_counts_attempts(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        calls: list[str] = []

        def again(e: BaseException) -> Source[Any, Any]:
            calls.append(str(e))
            return failing(len(calls), exc=Boom(f"fail {len(calls)}"))

        fut = (
            failing(0, exc=Boom("fail 0"))
            .recover_with_retries(2, again)
            .run_with(Sink.seq(), materializer)
        )
        with pytest.raises(Boom, match="fail 2"):
            await fut
        assert calls == ["fail 0", "fail 1"]

    async def test_recover_with_retries_negative_is_unlimited(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        n = 0

        def again(e: BaseException) -> Source[Any, Any]:
            nonlocal n
            n += 1
            return failing(n) if n < 5 else Source.single(n)

        out = await failing(0).recover_with_retries(-1, again).run_with(Sink.seq(), materializer)
        assert out == [0, 1, 2, 3, 4, 5]

    async def test_recover_with_retries_function_reraises(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        with pytest.raises(Boom):
            await failing(1).recover_with_retries(3, reraise).run_with(Sink.seq(), materializer)

    async def test_recover_with_retries_rejects_non_source(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        with pytest.raises(TypeError, match="must return a Source"):
            await (
                failing(1)
                .recover_with_retries(3, lambda e: [1, 2])
                .run_with(Sink.seq(), materializer)
            )

    async def test_recover_with_retries_honours_backpressure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.recover_with_retries(1, lambda e: Source.from_iterable([7, 8, 9])),
            materializer,
        )
        sub.request(1)
        pub.send_error(Boom())
        await sub.expect_next(7)
        await manual_clock.settle()
        await sub.expect_no_message(0)
        sub.request(2)
        await sub.expect_next(8, 9)
        await sub.expect_complete()

    async def test_recover_with_retries_cancel_reaches_replacement(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        terminated: list[asyncio.Future[Any]] = []

        def keep(fut: asyncio.Future[Any]) -> asyncio.Future[Any]:
            terminated.append(fut)
            return fut

        def replacement(e: BaseException) -> Source[Any, Any]:
            return Source.repeat("r").watch_termination(Keep.right).map_materialized_value(keep)

        pub, sub = probes(lambda s: s.recover_with_retries(1, replacement), materializer)
        sub.request(2)
        pub.send_error(Boom())
        await sub.expect_next("r", "r")
        sub.cancel()
        assert await asyncio.wait_for(terminated[0], 3.0) is Done

    async def test_recover_with_retries_without_failure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable([1, 2])
            .recover_with_retries(1, lambda e: Source.single(0))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [1, 2]

    async def test_recover_with_retries_supervision(self, materializer: Materializer) -> None:
        original = Boom("upstream")

        def raises_other(exc: BaseException) -> Any:
            raise ValueError("recovery broke")

        def reraises(exc: BaseException) -> Any:
            raise exc

        def fail_at_3(x: int) -> int:
            if x == 3:
                raise original
            return x

        failing = Source.from_iterable([1, 2, 3]).map(fail_at_3)
        for directive in (Supervision.resume, Supervision.restart):
            flow = supervised(Flow().recover_with_retries(3, raises_other), directive)
            assert await failing.via(flow).run_with(Sink.seq(), materializer) == [1, 2]
            flow = supervised(Flow().recover_with_retries(3, reraises), directive)
            with pytest.raises(Boom):
                await failing.via(flow).run_with(Sink.seq(), materializer)
        with pytest.raises(ValueError, match="recovery broke"):
            await failing.recover_with_retries(3, raises_other).run_with(Sink.seq(), materializer)
