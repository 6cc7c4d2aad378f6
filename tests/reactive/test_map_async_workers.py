"""``map_async`` / ``map_async_unordered`` / ``Sink.foreach_async`` on their worker pool.

Calls run on at most ``parallelism`` long-lived worker tasks (parallelism 1: one worker
that delivers each outcome inline). These tests compare random runs with a reference
model of Akka's semantics (order, None skipped, supervision stop/resume, cancellation
mid-stream, demand) and with the plain element-at-a-time ``map`` path, with and without
async boundaries, and check what the pool must never do: run more than ``parallelism``
calls at once, start calls beyond demand, leave a call running after the stream ended,
or keep the event loop to itself.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Materializer, Sink, Source, Supervision

SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Boom(Exception):
    """The failure of one call."""


class Calls:
    """``f`` of the scenario: counts concurrency, suspends ``x % 3`` times, fails on the
    chosen elements (raising in the stage or failing the awaitable), returns None for
    multiples of 7 (skipped by map_async), else ``2 * x``."""

    def __init__(self, fail: set[int], raise_sync: bool) -> None:
        self.fail = fail
        self.raise_sync = raise_sync
        self.active = 0
        self.max_active = 0
        self.started: list[int] = []

    def __call__(self, x: int) -> Any:
        if x in self.fail and self.raise_sync:
            raise Boom(x)
        self.started.append(x)
        return self.run(x)

    async def run(self, x: int) -> int | None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            for _ in range(x % 3):
                await asyncio.sleep(0)
            if x in self.fail:
                raise Boom(x)
            return None if x % 7 == 0 else 2 * x
        finally:
            self.active -= 1


def reference(xs: list[int], fail: set[int]) -> list[int]:
    """Ordered map_async with supervision resume: failed elements dropped, None skipped."""
    return [2 * x for x in xs if x not in fail and x % 7 != 0]


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 40), max_size=30),
    par=st.integers(1, 5),
    ordered=st.booleans(),
    fail=st.sets(st.integers(0, 40), max_size=3),
    raise_sync=st.booleans(),
    resume=st.booleans(),
    boundary=st.booleans(),
    take=st.none() | st.integers(0, 12),
    slow_sink=st.booleans(),
)
def test_map_async_matches_reference_model(
    xs: list[int],
    par: int,
    ordered: bool,
    fail: set[int],
    raise_sync: bool,
    resume: bool,
    boundary: bool,
    take: int | None,
    slow_sink: bool,
) -> None:
    calls = Calls(fail, raise_sync)
    out: list[int] = []

    async def consume(y: int) -> None:
        for _ in range(y % 2):
            await asyncio.sleep(0)
        out.append(y)

    async def scenario() -> BaseException | None:
        async with Materializer() as mat:
            src = Source.from_iterable(xs)
            if boundary:
                src = src.async_boundary()
            flow = src.map_async(par, calls) if ordered else src.map_async_unordered(par, calls)
            if resume:
                flow = flow.with_attributes(
                    Attributes.supervision_strategy(lambda e: Supervision.resume)
                )
            if boundary:
                flow = flow.async_boundary()
            if take is not None:
                flow = flow.take(take)
            sink = Sink.foreach_async(1, consume) if slow_sink else Sink.foreach(out.append)
            try:
                await flow.run_with(sink, mat)
            except Boom as exc:
                return exc
            # Every call ended with the stream (cancelled ones included).
            for _ in range(5):
                await asyncio.sleep(0)
            assert calls.active == 0
        return None

    err = asyncio.run(scenario())
    expected = reference(xs, fail)
    first_fail = next((i for i, x in enumerate(xs) if x in fail), None)
    assert calls.max_active <= par
    if resume or first_fail is None:
        assert err is None
        want = expected if take is None else expected[:take]
        if ordered:
            assert out == want
        elif take is None:
            assert Counter(out) == Counter(want)
        else:
            assert len(out) == min(take, len(expected))
            assert not Counter(out) - Counter(expected)
    else:
        if take is not None and len(reference(xs[:first_fail], fail)) >= take:
            # take(n) may have completed before the failing call was even started.
            assert err is None or isinstance(err, Boom)
        else:
            assert isinstance(err, Boom)
        before = reference(xs[:first_fail], fail)
        if ordered:
            assert out == before[: len(out)]
        else:
            assert not Counter(out) - Counter(expected)
    if err is not None:
        return  # a failure drops what the boundary after the stage still held
    # Nothing beyond demand: at most ``par`` calls started and not yet emitted, besides
    # what the async boundary after the stage asked for (its 16-element buffer: results
    # in it are dropped when take(n) cancels).
    emitted_or_skipped = len(out) + sum(1 for x in calls.started if x in fail or x % 7 == 0)
    buffered = 16 if boundary else 0
    assert len(calls.started) <= emitted_or_skipped + par + buffered + (1 if slow_sink else 0)


@SETTINGS
@given(
    xs=st.lists(st.integers(-50, 50), max_size=40),
    par=st.integers(1, 4),
    boundaries=st.booleans(),
)
def test_map_async_equals_plain_map(xs: list[int], par: int, boundaries: bool) -> None:
    """The worker pool gives what the element-at-a-time ``map`` gives, in order."""

    async def f(x: int) -> int:
        if x % 2:
            await asyncio.sleep(0)
        return x * 3 + 1

    async def scenario() -> tuple[list[int], list[int]]:
        async with Materializer() as mat:
            src = Source.from_iterable(xs)
            if boundaries:
                src = src.async_boundary()
            got = await src.map_async(par, f).run_with(Sink.seq(), mat)
            plain = (
                await Source.from_iterable(xs).map(lambda x: x * 3 + 1).run_with(Sink.seq(), mat)
            )
        return got, plain

    got, plain = asyncio.run(scenario())
    assert got == plain


async def test_foreach_async_1_lets_other_tasks_run(materializer: Materializer) -> None:
    """A parallelism-1 worker whose ``f`` never suspends still yields to the loop: another
    task gets a turn at least every few hundred elements."""
    n = 5_000
    seen: list[int] = []
    gaps: list[int] = []
    done = False

    async def f(x: int) -> None:
        seen.append(x)

    async def other() -> None:
        last = 0
        while not done:
            await asyncio.sleep(0)
            gaps.append(len(seen) - last)
            last = len(seen)

    task = asyncio.get_running_loop().create_task(other())
    await Source.from_iterable(range(n)).run_with(Sink.foreach_async(1, f), materializer)
    done = True
    await task
    assert len(seen) == n
    assert sum(gaps) == n
    assert max(gaps) <= 500


async def test_foreach_async_1_bounds_in_flight_behind_boundary(
    materializer: Materializer,
) -> None:
    """Back pressure: a fast source behind a 16-element boundary runs at most 16 + a few
    elements ahead of a slow parallelism-1 consumer."""
    produced = 0
    consumed = 0
    peak = 0

    def source() -> Any:
        nonlocal produced, peak
        for i in range(2_000):
            produced += 1
            peak = max(peak, produced - consumed)
            yield i

    async def slow(_: int) -> None:
        nonlocal consumed
        consumed += 1
        if consumed % 50 == 0:
            await asyncio.sleep(0)

    await (
        Source.from_iterable(source())
        .async_boundary()
        .run_with(Sink.foreach_async(1, slow), materializer)
    )
    assert consumed == 2_000
    assert peak <= 16 + 4


async def test_map_async_stop_cancels_parked_and_running_workers(
    materializer: Materializer,
) -> None:
    """Cancelling downstream mid-stream stops every worker: running calls are cancelled,
    parked workers end, awaitables nobody started are closed."""
    started: list[int] = []
    cancelled: list[int] = []

    async def f(x: int) -> int:
        started.append(x)
        try:
            await asyncio.sleep(0.05 if x else 0)
        except asyncio.CancelledError:
            cancelled.append(x)
            raise
        return x

    got = (
        await Source.from_iterable(range(100))
        .map_async_unordered(4, f)
        .take(1)
        .run_with(Sink.seq(), materializer)
    )
    for _ in range(5):
        await asyncio.sleep(0)
    assert got == [0]
    assert len(started) <= 1 + 4
    assert sorted(cancelled) == sorted(x for x in started if x)


async def test_map_async_taking_from_source_keeps_source_failures(
    materializer: Materializer,
) -> None:
    """map_async takes elements straight from an iterable source (the batch protocol's
    shortcut); a None element or a failing iterator still fails the source, with the
    source's own error."""
    from reactive import PortStateError

    async def f(x: int) -> int:
        return x

    def failing() -> Any:
        yield 1
        yield 2
        raise ValueError("iterator broke")

    for par in (1, 3):
        got: list[int] = []
        with pytest.raises(PortStateError, match=r"\[iterable_source\] Cannot push None"):
            await (
                Source.from_iterable([1, 2, None, 4])
                .map_async(par, f)
                .run_with(Sink.foreach(got.append), materializer)
            )
        assert got in ([], [1], [1, 2])
        with pytest.raises(ValueError, match="iterator broke"):
            await (
                Source.from_iterable(failing())
                .map_async(par, f)
                .run_with(Sink.ignore(), materializer)
            )


async def test_map_async_survives_a_worker_cancelled_from_outside(
    materializer: Materializer,
) -> None:
    """A parked worker cancelled by someone else (as the loop's shutdown does) is
    replaced: the calls after it still run, on a fresh worker."""
    release = asyncio.Event()

    async def f(x: int) -> int:
        if x == 1:
            await release.wait()
        return x

    q: list[int] = []
    done = (
        Source.from_iterable(range(1, 7))
        .map_async(2, f)
        .run_with(Sink.foreach(q.append), materializer)
    )
    for _ in range(10):
        await asyncio.sleep(0)
    # One worker waits in f(1); the other ran f(2) and is parked (order holds 2 back).
    me = asyncio.current_task()
    workers = [t for t in asyncio.all_tasks() if t is not me and "_work" in repr(t.get_coro())]
    # (the busy one awaits the coroutine of f(1); the parked one a future)
    parked = [t for t in workers if not inspect.iscoroutine(t.get_coro().cr_await)]
    assert len(workers) == 2 and len(parked) == 1
    parked[0].cancel()
    await asyncio.sleep(0)
    release.set()
    await done
    assert q == [1, 2, 3, 4, 5, 6]
