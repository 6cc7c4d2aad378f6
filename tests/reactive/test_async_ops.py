"""Specs of the asynchronous operators: map_async, map_async_unordered, scan_async,
fold_async and Sink.foreach_async.

Completion order of the user's awaitables is driven by the test (futures it resolves
itself), never by wall-clock sleeps.
"""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from reactive import Attributes, Done, Flow, Keep, Materializer, Sink, Source, Supervision
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A user-function failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def resume(flow: Any) -> Any:
    """``flow`` with a resuming decider."""
    return flow.with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))


def restart(flow: Any) -> Any:
    """``flow`` with a restarting decider."""
    return flow.with_attributes(Attributes.supervision_strategy(lambda e: Supervision.restart))


class Gate:
    """Hands out one future per key; the test resolves them in any order."""

    def __init__(self) -> None:
        self.futs: dict[Any, asyncio.Future[Any]] = {}
        self.started: list[Any] = []

    def fut(self, key: Any) -> asyncio.Future[Any]:
        f = self.futs.get(key)
        if f is None:
            f = asyncio.get_running_loop().create_future()
            self.futs[key] = f
        return f

    def call(self, x: Any) -> Awaitable[Any]:
        self.started.append(x)

        async def run() -> Any:
            return await self.fut(x)

        return run()

    def resolve(self, key: Any, value: Any) -> None:
        self.fut(key).set_result(value)

    def reject(self, key: Any, exc: BaseException) -> None:
        self.fut(key).set_exception(exc)


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


# -- map_async ---------------------------------------------------------------------------
@pytest.mark.parametrize("par", [1, 4, 64])
async def test_map_async_elements_in_order(materializer: Materializer, par: int) -> None:
    out = (
        await Source.from_iterable(range(50))
        .map_async(par, double)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [x * 2 for x in range(50)]


async def test_map_async_keeps_input_order_whatever_completes_first(
    materializer: Materializer,
) -> None:
    g = Gate()
    probe = (
        Source.from_iterable([1, 2, 3])
        .map_async(3, g.call)
        .run_with(TestSink.probe(), materializer)
    )
    probe.request(3)
    await settle()
    assert g.started == [1, 2, 3]
    g.resolve(3, "c")
    g.resolve(2, "b")
    await settle()
    await probe.expect_no_message(0)  # head of line blocks
    g.resolve(1, "a")
    await probe.expect_next("a", "b", "c")
    await probe.expect_complete()


async def test_map_async_unordered_emits_as_completed(materializer: Materializer) -> None:
    g = Gate()
    probe = (
        Source.from_iterable([1, 2, 3])
        .map_async_unordered(3, g.call)
        .run_with(TestSink.probe(), materializer)
    )
    probe.request(3)
    await settle()
    g.resolve(3, "c")
    await probe.expect_next("c")
    g.resolve(1, "a")
    await probe.expect_next("a")
    g.resolve(2, "b")
    await probe.expect_next("b")
    await probe.expect_complete()


@pytest.mark.parametrize("ordered", [True, False])
async def test_map_async_parallelism_bounds_inflight_calls(
    materializer: Materializer, ordered: bool
) -> None:
    g = Gate()
    flow = Flow().map_async(2, g.call) if ordered else Flow().map_async_unordered(2, g.call)
    probe = Source.from_iterable(range(10)).via(flow).run_with(TestSink.probe(), materializer)
    probe.request(100)
    await settle()
    assert g.started == [0, 1]
    g.resolve(0, "r0")
    await probe.expect_next("r0")
    await settle()
    assert g.started == [0, 1, 2]
    for i in range(1, 10):
        g.resolve(i, f"r{i}")
    assert await probe.expect_next_n(9) == [f"r{i}" for i in range(1, 10)]
    await probe.expect_complete()


@pytest.mark.parametrize("ordered", [True, False])
async def test_map_async_backpressures_when_downstream_does(
    materializer: Materializer, ordered: bool
) -> None:
    """In-flight plus completed-but-unemitted results are bounded by parallelism."""
    g = Gate()
    flow = Flow().map_async(2, g.call) if ordered else Flow().map_async_unordered(2, g.call)
    pub, sub = TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(materializer)
    await settle()
    assert pub.pending_demand == 0  # Akka's MapAsync: upstream is pulled on first demand
    sub.request(1)
    await pub.expect_request()
    pub.send_next(1)
    await pub.expect_request()
    pub.send_next(2)
    await settle()
    assert pub.pending_demand == 2  # parallelism reached: no third pull
    g.resolve(1, "a")
    await sub.expect_next("a")
    await settle()
    assert pub.pending_demand == 3  # room for one more
    pub.send_next(3)
    g.resolve(2, "b")
    await settle()
    assert pub.pending_demand == 3  # results held, downstream has not asked
    assert all(k != "next" for k, _ in sub._events.items)
    await sub.request_next("b")
    await settle()
    assert pub.pending_demand == 4  # room for one more
    g.resolve(3, "c")
    await sub.request_next("c")
    pub.send_complete()
    sub.request(1)
    await sub.expect_complete()


@pytest.mark.parametrize("ordered", [True, False])
async def test_map_async_none_results_are_skipped(
    materializer: Materializer, ordered: bool
) -> None:
    async def f(x: int) -> int | None:
        return None if x % 2 else x

    flow = Flow().map_async(3, f) if ordered else Flow().map_async_unordered(3, f)
    out = await Source.from_iterable(range(6)).via(flow).run_with(Sink.seq(), materializer)
    assert sorted(out) == [0, 2, 4]
    if ordered:
        assert out == [0, 2, 4]


@pytest.mark.parametrize("ordered", [True, False])
async def test_map_async_failed_awaitable_fails_stream(
    materializer: Materializer, ordered: bool
) -> None:
    err = Boom("async")

    async def f(x: int) -> int:
        if x == 2:
            raise err
        return x

    flow = Flow().map_async(1, f) if ordered else Flow().map_async_unordered(1, f)
    with pytest.raises(Boom) as info:
        await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
    assert info.value is err


async def test_map_async_raising_function_fails_stream(materializer: Materializer) -> None:
    def f(x: int) -> Awaitable[int]:
        raise Boom(f"sync {x}")

    with pytest.raises(Boom, match="sync 1"):
        await Source.from_iterable([1, 2]).map_async(2, f).run_with(Sink.seq(), materializer)


@pytest.mark.parametrize("wrap", [resume, restart], ids=["resume", "restart"])
@pytest.mark.parametrize("ordered", [True, False])
async def test_map_async_supervision_drops_failed_element(
    materializer: Materializer, ordered: bool, wrap: Callable[[Any], Any]
) -> None:
    async def f(x: int) -> int:
        if x == 2:
            raise Boom("async")
        return x

    def g(x: int) -> Awaitable[int]:
        if x == 4:
            raise Boom("sync")
        return f(x)

    flow = wrap(Flow().map_async(2, g) if ordered else Flow().map_async_unordered(2, g))
    out = await Source.from_iterable(range(1, 7)).via(flow).run_with(Sink.seq(), materializer)
    assert sorted(out) == [1, 3, 5, 6]
    if ordered:
        assert out == [1, 3, 5, 6]


@pytest.mark.parametrize("fast", [True, False], ids=["batches", "plain"])
async def test_map_async_resume_inside_a_batch_keeps_the_other_elements(fast: bool) -> None:
    """With the batch protocol map_async starts up to ``parallelism`` calls from one
    push; a call that raises at once is dropped alone, the rest of the batch runs."""

    def g(x: int) -> Awaitable[int]:
        if x % 5 == 0:
            raise Boom("sync")
        return asyncio.sleep(0, x)

    async with Materializer(fast_paths=fast) as mat:
        out = await (
            Source.from_iterable(range(1, 41))
            .via(resume(Flow().map_async(8, g)))
            .run_with(Sink.seq(), mat)
        )
    assert out == [x for x in range(1, 41) if x % 5]


async def test_map_async_upstream_failure(materializer: Materializer) -> None:
    err = Boom("up")
    pub, sub = (
        TestSource.probe()
        .map_async(2, double)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_map_async_completes_after_pending_results(materializer: Materializer) -> None:
    g = Gate()
    pub, sub = (
        TestSource.probe()
        .map_async(2, g.call)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(5)
    pub.send_next(1).send_complete()
    await settle()
    await sub.expect_no_message(0)
    g.resolve(1, "one")
    await sub.expect_next("one")
    await sub.expect_complete()


async def test_map_async_downstream_cancel_cancels_upstream_and_pending_calls(
    materializer: Materializer,
) -> None:
    g = Gate()
    pub, sub = (
        TestSource.probe()
        .map_async(2, g.call)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    pub.send_next(1)
    await settle()
    assert g.started == [1]
    sub.cancel()
    await pub.expect_cancellation()
    await settle()
    assert g.fut(1).cancelled()


# -- scan_async / fold_async ----------------------------------------------------------------
async def add_async(acc: int, x: int) -> int:
    await asyncio.sleep(0)
    return acc + x


async def test_scan_async_elements(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable([1, 2, 3])
        .scan_async(0, add_async)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [0, 1, 3, 6]


async def test_scan_async_empty_emits_zero(materializer: Materializer) -> None:
    assert await Source.empty().scan_async(5, add_async).run_with(Sink.seq(), materializer) == [5]


async def test_fold_async_elements_and_empty(materializer: Materializer) -> None:
    assert await Source.from_iterable([1, 2, 3]).fold_async(0, add_async).run_with(
        Sink.seq(), materializer
    ) == [6]
    assert await Source.empty().fold_async(9, add_async).run_with(Sink.seq(), materializer) == [9]


async def test_sink_fold_async(materializer: Materializer) -> None:
    assert (
        await Source.from_iterable(range(5)).run_with(Sink.fold_async(0, add_async), materializer)
        == 10
    )


async def test_scan_async_demand(materializer: Materializer) -> None:
    pub, sub = (
        TestSource.probe()
        .scan_async(0, add_async)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    await sub.request_next(0)
    await settle()
    assert pub.pending_demand == 0
    sub.request(1)
    await pub.expect_request()
    pub.send_next(2)
    await sub.expect_next(2)
    await settle()
    assert pub.pending_demand == 1  # no pull without downstream demand
    pub.send_complete()
    sub.request(1)
    await sub.expect_complete()


async def test_scan_async_waits_for_step_before_completing(materializer: Materializer) -> None:
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def step(acc: int, x: int) -> int:
        return await fut

    pub, sub = (
        TestSource.probe().scan_async(0, step).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    sub.request(5)
    await sub.expect_next(0)
    pub.send_next(1).send_complete()
    await settle()
    await sub.expect_no_message(0)
    fut.set_result(42)
    await sub.expect_next(42)
    await sub.expect_complete()


@pytest.mark.parametrize("emit_each", [True, False], ids=["scan_async", "fold_async"])
async def test_scan_async_failure(materializer: Materializer, emit_each: bool) -> None:
    err = Boom("step")

    async def step(acc: int, x: int) -> int:
        if x == 2:
            raise err
        return acc + x

    flow = Flow().scan_async(0, step) if emit_each else Flow().fold_async(0, step)
    with pytest.raises(Boom) as info:
        await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
    assert info.value is err


@pytest.mark.parametrize(
    ("emit_each", "wrap", "expected"),
    [
        (True, resume, [0, 1, 4, 8]),
        (True, restart, [0, 1, 3, 7]),
        (False, resume, [8]),
        (False, restart, [7]),
    ],
    ids=["scan-resume", "scan-restart", "fold-resume", "fold-restart"],
)
async def test_scan_async_supervision(
    materializer: Materializer, emit_each: bool, wrap: Callable[[Any], Any], expected: list[int]
) -> None:
    async def step(acc: int, x: int) -> int:
        if x == 2:
            raise Boom("step")
        return acc + x

    flow = wrap(Flow().scan_async(0, step) if emit_each else Flow().fold_async(0, step))
    out = await Source.from_iterable([1, 2, 3, 4]).via(flow).run_with(Sink.seq(), materializer)
    assert out == expected


async def test_scan_async_supervision_with_probes(materializer: Materializer) -> None:
    """After a resumed failure the stage still honours demand (no stall, no over-push)."""

    async def step(acc: int, x: int) -> int:
        if x == 2:
            raise Boom("step")
        return acc + x

    flow = resume(Flow().scan_async(0, step))
    probe = Source.from_iterable([1, 2, 3]).via(flow).run_with(TestSink.probe(), materializer)
    await probe.request_next(0)
    await probe.request_next(1)
    await probe.request_next(4)
    probe.request(1)
    await probe.expect_complete()


async def test_scan_async_upstream_failure_and_cancel(materializer: Materializer) -> None:
    err = Boom("up")
    pub, sub = (
        TestSource.probe()
        .scan_async(0, add_async)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(2)
    await sub.expect_next(0)
    pub.send_error(err)
    assert await sub.expect_error() is err

    pub, sub = (
        TestSource.probe()
        .scan_async(0, add_async)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    await sub.request_next(0)
    sub.cancel()
    await pub.expect_cancellation()


# -- Sink.foreach_async ---------------------------------------------------------------------
async def test_foreach_async_runs_all_and_completes_with_done(materializer: Materializer) -> None:
    seen: list[int] = []

    async def f(x: int) -> None:
        await asyncio.sleep(0)
        seen.append(x)

    res = await Source.from_iterable(range(20)).run_with(Sink.foreach_async(4, f), materializer)
    assert res is Done
    assert sorted(seen) == list(range(20))


async def test_foreach_async_bounds_parallelism(materializer: Materializer) -> None:
    g = Gate()
    done = Source.from_iterable(range(5)).run_with(Sink.foreach_async(2, g.call), materializer)
    await settle()
    assert g.started == [0, 1]
    for i in range(5):
        g.resolve(i, "ok")
        await settle()
    assert g.started == [0, 1, 2, 3, 4]
    assert await done is Done


async def test_foreach_async_failure(materializer: Materializer) -> None:
    err = Boom("each")

    async def f(x: int) -> None:
        if x == 3:
            raise err

    with pytest.raises(Boom) as info:
        await Source.from_iterable(range(10)).run_with(Sink.foreach_async(2, f), materializer)
    assert info.value is err


async def test_foreach_async_upstream_failure(materializer: Materializer) -> None:
    err = Boom("up")
    with pytest.raises(Boom) as info:
        await Source.failed(err).run_with(Sink.foreach_async(2, double), materializer)
    assert info.value is err


async def test_map_async_with_operator_add_partial(materializer: Materializer) -> None:
    """A plain awaitable (a Future, not a coroutine) works as the function's result."""
    loop = asyncio.get_running_loop()

    def f(x: int) -> asyncio.Future[int]:
        fut = loop.create_future()
        loop.call_soon(fut.set_result, operator.neg(x))
        return fut

    out = await Source.from_iterable([1, 2, 3]).map_async(2, f).run_with(Sink.seq(), materializer)
    assert out == [-1, -2, -3]


async def test_map_async_timeout_inside_user_code(materializer: Materializer) -> None:
    """asyncio.timeout inside f cancels f's own call only (each call runs in its own task)."""

    async def f(x: int) -> int:
        try:
            async with asyncio.timeout(0.5):
                await asyncio.sleep(60 if x == 2 else 0)
            return x
        except TimeoutError:
            return -x

    out = await Source.from_iterable(range(5)).map_async(2, f).run_with(Sink.seq(), materializer)
    assert out == [0, 1, -2, 3, 4]


@pytest.mark.parametrize("ordered", [True, False])
async def test_map_async_an_awaitable_cancelled_by_someone_else_fails_the_stream(
    materializer: Materializer, ordered: bool
) -> None:
    """A call whose awaitable is cancelled (not by the stage stopping) is a failure of
    the stream, as in Akka a failed future; no element after it is emitted."""
    loop = asyncio.get_running_loop()

    def f(x: int) -> Awaitable[int]:
        fut: asyncio.Future[int] = loop.create_future()
        if x == 3:
            fut.cancel()
        else:
            fut.set_result(x)
        return fut

    flow = Flow().map_async(4, f) if ordered else Flow().map_async_unordered(4, f)
    with pytest.raises(asyncio.CancelledError, match="map_async call was cancelled"):
        await Source.from_iterable(range(1, 10)).via(flow).run_with(Sink.seq(), materializer)
