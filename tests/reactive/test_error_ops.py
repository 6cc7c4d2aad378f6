"""Error-handling operators: recover, recover_with_retries, map_error."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reactive import Done, Keep, Materializer, Sink, Source
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


class Boom(Exception):
    """A test failure."""


_FAIL: Any = object()


def failing(*xs: Any, exc: BaseException | None = None) -> Source[Any, Any]:
    """``xs`` then a failure (raised by ``map`` after the elements passed)."""

    def check(x: Any) -> Any:
        if x is _FAIL:
            raise exc or Boom("boom")
        return x

    return Source.from_iterable([*xs, _FAIL]).map(check)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


def reraise(exc: BaseException) -> Any:
    raise exc


# -- recover ------------------------------------------------------------------------------------
async def test_recover_emits_last_element_and_completes(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = await failing(1, 2).recover(lambda e: f"recovered {e}").run_with(Sink.seq(), materializer)
    assert out == [1, 2, "recovered boom"]


async def test_recover_reraise_leaves_failure(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    with pytest.raises(Boom, match="boom"):
        await failing(1).recover(reraise).run_with(Sink.seq(), materializer)


async def test_recover_only_matching_errors(
    materializer: Materializer, manual_clock: ManualClock
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
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    def bad(e: BaseException) -> Any:
        raise RuntimeError("in recover")

    with pytest.raises(RuntimeError, match="in recover"):
        await failing(1).recover(bad).run_with(Sink.seq(), materializer)


async def test_recover_none_completes_without_element(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    assert await failing(1).recover(lambda e: None).run_with(Sink.seq(), materializer) == [1]


async def test_recover_waits_for_demand(
    materializer: Materializer, manual_clock: ManualClock
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
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    assert await Source.from_iterable([1, 2]).recover(lambda e: 0).run_with(
        Sink.seq(), materializer
    ) == [1, 2]
    pub, sub = probes(lambda s: s.recover(lambda e: "r"), materializer)
    sub.cancel()
    await pub.expect_cancellation()


# -- map_error ----------------------------------------------------------------------------------
async def test_map_error_translates(materializer: Materializer, manual_clock: ManualClock) -> None:
    with pytest.raises(KeyError, match="translated"):
        await (
            failing(1)
            .map_error(lambda e: KeyError(f"translated {e}"))
            .run_with(Sink.seq(), materializer)
        )


async def test_map_error_none_keeps_original(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    with pytest.raises(Boom):
        await failing(1).map_error(lambda e: None).run_with(Sink.seq(), materializer)


async def test_map_error_passes_elements_and_completion(
    materializer: Materializer, manual_clock: ManualClock
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


# -- recover_with_retries ----------------------------------------------------------------------
async def test_recover_with_retries_switches_to_source(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = (
        await failing(1, 2)
        .recover_with_retries(1, lambda e: Source.from_iterable([7, 8]))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 2, 7, 8]


async def test_recover_with_retries_zero_never_recovers(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    with pytest.raises(Boom):
        await (
            failing(1)
            .recover_with_retries(0, lambda e: Source.single(9))
            .run_with(Sink.seq(), materializer)
        )


async def test_recover_with_retries_counts_attempts(
    materializer: Materializer, manual_clock: ManualClock
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
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    n = 0

    def again(e: BaseException) -> Source[Any, Any]:
        nonlocal n
        n += 1
        return failing(n) if n < 5 else Source.single(n)

    out = await failing(0).recover_with_retries(-1, again).run_with(Sink.seq(), materializer)
    assert out == [0, 1, 2, 3, 4, 5]


async def test_recover_with_retries_function_reraises(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    with pytest.raises(Boom):
        await failing(1).recover_with_retries(3, reraise).run_with(Sink.seq(), materializer)


async def test_recover_with_retries_rejects_non_source(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    with pytest.raises(TypeError, match="must return a Source"):
        await (
            failing(1).recover_with_retries(3, lambda e: [1, 2]).run_with(Sink.seq(), materializer)
        )


async def test_recover_with_retries_honours_backpressure(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(
        lambda s: s.recover_with_retries(1, lambda e: Source.from_iterable([7, 8, 9])), materializer
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
    materializer: Materializer, manual_clock: ManualClock
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
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = (
        await Source.from_iterable([1, 2])
        .recover_with_retries(1, lambda e: Source.single(0))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 2]
