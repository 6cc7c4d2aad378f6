"""Specs of the operators beyond Akka (issue 3): map_async_partitioned, RetryFlow,
drop_repeated, zip_all (debounce, and the supervision of expand and recover_with_retries,
are with their families in tests/reactive/ops/).

Awaitables are futures the test resolves by hand; timed behaviour runs on the manual
clock. Nothing depends on wall-clock speed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest

from reactive import (
    Attributes,
    Flow,
    Keep,
    Materializer,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import PublisherProbe, SubscriberProbe, TestSink, TestSource


class Boom(Exception):
    """A user-function failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def supervised(blueprint: Any, directive: Supervision) -> Any:
    """``blueprint`` with a decider always answering ``directive``."""
    return blueprint.with_attributes(Attributes.supervision_strategy(lambda e: directive))


def probes(flow: Any, mat: Materializer) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``flow`` into ``TestSink.probe()``."""
    return TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(mat)


# -- map_async_partitioned --------------------------------------------------------------------
class Calls:
    """``f(x, key)`` for map_async_partitioned: one future per element, resolved by hand;
    records the calls and the peak number in flight per key and overall."""

    def __init__(self) -> None:
        self.futs: dict[Any, asyncio.Future[Any]] = {}
        self.started: list[Any] = []
        self.keys: list[Any] = []
        self.inflight: dict[Any, int] = {}
        self.peak_per_key = 0
        self.peak = 0

    def fut(self, x: Any) -> asyncio.Future[Any]:
        if x not in self.futs:
            self.futs[x] = asyncio.get_running_loop().create_future()
        return self.futs[x]

    def __call__(self, x: Any, key: Any) -> Awaitable[Any]:
        self.started.append(x)
        self.keys.append(key)
        self.inflight[key] = self.inflight.get(key, 0) + 1
        self.peak_per_key = max(self.peak_per_key, self.inflight[key])
        self.peak = max(self.peak, sum(self.inflight.values()))

        async def run() -> Any:
            try:
                return await self.fut(x)
            finally:
                self.inflight[key] -= 1

        return run()

    def resolve(self, x: Any, value: Any = None) -> None:
        self.fut(x).set_result(x if value is None else value)

    def reject(self, x: Any, exc: BaseException) -> None:
        self.fut(x).set_exception(exc)


def first_letter(x: str) -> str:
    return x[0]


async def test_map_async_partitioned_output_in_input_order(materializer: Materializer) -> None:
    calls = Calls()
    sub = (
        Source.from_iterable(["a1", "b1", "a2", "c1", "b2"])
        .map_async_partitioned(8, 1, first_letter, calls)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(10)
    await settle()
    assert calls.started == ["a1", "b1", "c1"]  # one per key; a2 and b2 wait for their key
    calls.resolve("c1")
    calls.resolve("b1")
    await settle()
    assert calls.started == ["a1", "b1", "c1", "b2"]
    await sub.expect_no_message(0)  # a1 (the oldest) is not done yet
    calls.resolve("a1")
    await sub.expect_next("a1", "b1")
    calls.resolve("a2")
    await sub.expect_next("a2", "c1")
    calls.resolve("b2")
    await sub.expect_next("b2")
    await sub.expect_complete()
    assert calls.peak_per_key == 1
    assert calls.keys == ["a", "b", "c", "b", "a"]  # b2 started before a2


async def test_map_async_partitioned_f_gets_element_and_partition(
    materializer: Materializer,
) -> None:
    async def f(x: int, key: int) -> tuple[int, int]:
        return (x, key)

    out = (
        await Source.from_iterable(range(6))
        .map_async_partitioned(3, 2, lambda x: x % 2, f)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [(x, x % 2) for x in range(6)]


@pytest.mark.parametrize("per_partition", [1, 2, 3])
async def test_map_async_partitioned_per_key_bound(
    materializer: Materializer, per_partition: int
) -> None:
    calls = Calls()
    elems = [f"a{i}" for i in range(6)]
    sub = (
        Source.from_iterable(elems)
        .map_async_partitioned(6, per_partition, first_letter, calls)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(10)
    await settle()
    assert calls.started == elems[:per_partition]
    for i, x in enumerate(elems):
        calls.resolve(x)
        await settle()
        assert len(calls.started) == min(len(elems), i + 1 + per_partition)
        assert calls.peak_per_key <= per_partition
    assert await sub.to_list() == elems
    assert calls.peak_per_key == per_partition


async def test_map_async_partitioned_overall_bound_backpressures_upstream(
    materializer: Materializer,
) -> None:
    calls = Calls()
    pub, sub = probes(Flow().map_async_partitioned(2, 2, lambda x: x, calls), materializer)
    sub.request(10)
    await pub.expect_request()
    pub.send_next(1)
    await pub.expect_request()
    pub.send_next(2)
    await settle()
    assert calls.started == [1, 2]
    await pub.expect_no_message(0)  # two buffered: no demand upstream
    calls.resolve(2)
    await settle()
    await pub.expect_no_message(0)  # 2 is done but not emitted: still buffered
    calls.resolve(1)
    await sub.expect_next(1, 2)
    await pub.expect_request()
    pub.send_complete()
    await sub.expect_complete()
    assert calls.peak == 2


async def test_map_async_partitioned_respects_downstream_demand(
    materializer: Materializer,
) -> None:
    calls = Calls()
    sub = (
        Source.from_iterable([1, 2, 3])
        .map_async_partitioned(4, 1, lambda x: x, calls)
        .run_with(TestSink.probe(), materializer)
    )
    await settle()
    for x in (1, 2, 3):
        calls.resolve(x)
    await settle()
    await sub.expect_no_message(0)
    sub.request(1)
    await sub.expect_next(1)
    await sub.expect_no_message(0)
    sub.request(5)
    await sub.expect_next(2, 3)
    await sub.expect_complete()


async def test_map_async_partitioned_failed_call_fails_the_stream(
    materializer: Materializer,
) -> None:
    calls = Calls()
    pub, sub = probes(Flow().map_async_partitioned(4, 1, lambda x: x, calls), materializer)
    sub.request(10)
    pub.send_next(1).send_next(2)
    await settle()
    calls.resolve(1)
    await sub.expect_next(1)
    err = Boom("call failed")
    calls.reject(2, err)
    assert await sub.expect_error() is err
    await pub.expect_cancellation()


@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_map_async_partitioned_supervision_drops_failed_elements(
    materializer: Materializer, directive: Supervision
) -> None:
    def f(x: int, key: int) -> Awaitable[int]:
        if x == 2:
            raise Boom("sync")

        async def run() -> int:
            if x == 4:
                raise Boom("async")
            return x

        return run()

    def part(x: int) -> int:
        if x == 6:
            raise Boom("partitioner")
        return x % 2

    flow = supervised(Flow().map_async_partitioned(2, 1, part, f), directive)
    out = await Source.from_iterable(range(1, 9)).via(flow).run_with(Sink.seq(), materializer)
    assert out == [1, 3, 5, 7, 8]


async def test_map_async_partitioned_partitioner_failure_stops_by_default(
    materializer: Materializer,
) -> None:
    def part(x: int) -> int:
        raise Boom("partitioner")

    async def f(x: int, key: int) -> int:
        return x

    with pytest.raises(Boom):
        await (
            Source.from_iterable([1])
            .map_async_partitioned(2, 1, part, f)
            .run_with(Sink.seq(), materializer)
        )


async def test_map_async_partitioned_skips_none_and_completes_empty(
    materializer: Materializer,
) -> None:
    async def f(x: int, key: int) -> int | None:
        return None if x % 2 else x

    flow = Flow().map_async_partitioned(3, 1, lambda x: x % 3, f)
    assert await Source.from_iterable(range(6)).via(flow).run_with(Sink.seq(), materializer) == [
        0,
        2,
        4,
    ]
    assert await Source.empty().via(flow).run_with(Sink.seq(), materializer) == []


async def test_map_async_partitioned_upstream_failure_and_cancellation(
    materializer: Materializer,
) -> None:
    calls = Calls()
    pub, sub = probes(Flow().map_async_partitioned(4, 1, lambda x: x, calls), materializer)
    sub.request(1)
    err = Boom("upstream")
    pub.send_error(err)
    assert await sub.expect_error() is err

    calls2 = Calls()
    pub, sub = probes(Flow().map_async_partitioned(4, 1, lambda x: x, calls2), materializer)
    sub.request(1)
    pub.send_next(1)
    await settle()
    sub.cancel()
    await pub.expect_cancellation()
    await settle()
    assert calls2.fut(1).cancelled()  # the call in flight is cancelled with the stage


def test_map_async_partitioned_validates_arguments() -> None:
    with pytest.raises(ValueError):
        Flow().map_async_partitioned(0, 1, lambda x: x, lambda x, k: x)
    with pytest.raises(ValueError):
        Flow().map_async_partitioned(1, 0, lambda x: x, lambda x, k: x)
