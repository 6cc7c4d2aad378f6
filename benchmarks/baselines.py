"""Peer and limit implementations of the benchmark workloads (everything but the project).

Each function takes the workload size and returns the workload's result (compared across
systems by the harness) or a :class:`~benchmarks.runner.Measurement` with extra metrics.
Synchronous functions are timed as they are; coroutine functions run in a fresh event loop
and are timed inside it. Third-party peers (reactivex, aiostream) are imported inside the
functions, so a missing package makes only that system "unavailable".
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, TypeVar, cast

from benchmarks.runner import Measurement
from benchmarks.workloads import (
    FOUR_MAPS,
    InFlight,
    add,
    div3,
    double,
    ident,
    percentile,
    sleep0,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterable, Iterator

T = TypeVar("T")
U = TypeVar("U")

#: End-of-stream marker for the asyncio.Queue pipelines.
_DONE: Any = object()
#: Bounded queue size used by the asyncio.Queue pipelines (the project's boundary buffer).
QUEUE_SIZE = 16
#: Parallelism of the map_async benchmark.
MAP_ASYNC_PARALLELISM = 8
#: Number of stages of the latency chain.
LATENCY_STAGES = 5


# --------------------------------------------------------------------------------------------
# B1 / B2 / B4: map(double) -> filter(div3) -> scan(0, add) -> last
# --------------------------------------------------------------------------------------------


def b1_for_loop(n: int) -> int:
    """The whole chain as one plain ``for`` loop (the limit of pure Python)."""
    acc = 0
    for x in range(n):
        y = double(x)
        if div3(y):
            acc = add(acc, y)
    return acc


def g_map(f: Callable[[T], U], it: Iterable[T]) -> Iterator[U]:
    """Generator stage: map."""
    for x in it:
        yield f(x)


def g_filter(p: Callable[[T], bool], it: Iterable[T]) -> Iterator[T]:
    """Generator stage: filter."""
    for x in it:
        if p(x):
            yield x


def g_scan(zero: U, f: Callable[[U, T], U], it: Iterable[T]) -> Iterator[U]:
    """Generator stage: scan, emitting the zero first like Akka's ``scan``."""
    acc = zero
    yield acc
    for x in it:
        acc = f(acc, x)
        yield acc


def g_last(it: Iterable[T]) -> T:
    """Generator sink: the last element (raises LookupError when empty)."""
    sentinel: Any = _DONE
    last = sentinel
    for item in it:
        last = item
    if last is sentinel:
        raise LookupError("last of an empty stream")
    return cast("T", last)


def b1_generator_chain(n: int) -> int:
    """The chain as plain generator stages (the B1 baseline)."""
    return g_last(g_scan(0, add, g_filter(div3, g_map(double, range(n)))))


def b1_reactivex(n: int) -> int:
    """The chain on reactivex, synchronous (current-thread scheduler)."""
    import reactivex as rx
    from reactivex import operators as ops

    out: list[int] = []
    # reactivex's pipe() overloads defeat mypy's inference of the chained types.
    rx.from_iterable(range(n)).pipe(  # type: ignore[misc]
        ops.map(double), ops.filter(div3), ops.scan(add, 0), ops.last()
    ).subscribe(on_next=out.append)
    return out[0]


async def b1_aiostream(n: int) -> int:
    """The chain on aiostream (``accumulate`` with an initializer emits it first too)."""
    from aiostream import pipe, stream

    xs = (
        stream.iterate(range(n))
        | pipe.map(double)  # type: ignore[arg-type]  # aiostream types sync maps poorly
        | pipe.filter(div3)
        | pipe.accumulate(add, initializer=0)
    )
    result: int = await xs  # awaiting an aiostream stream returns its last element
    return result


async def _q_source(it: Iterable[Any], qout: asyncio.Queue[Any]) -> None:
    for x in it:
        await qout.put(x)
    await qout.put(_DONE)


async def _q_map(
    f: Callable[[Any], Any], qin: asyncio.Queue[Any], qout: asyncio.Queue[Any]
) -> None:
    while True:
        x = await qin.get()
        if x is _DONE:
            await qout.put(_DONE)
            return
        await qout.put(f(x))


async def _q_filter(
    p: Callable[[Any], bool], qin: asyncio.Queue[Any], qout: asyncio.Queue[Any]
) -> None:
    while True:
        x = await qin.get()
        if x is _DONE:
            await qout.put(_DONE)
            return
        if p(x):
            await qout.put(x)


async def _q_scan(
    zero: Any, f: Callable[[Any, Any], Any], qin: asyncio.Queue[Any], qout: asyncio.Queue[Any]
) -> None:
    acc = zero
    await qout.put(acc)
    while True:
        x = await qin.get()
        if x is _DONE:
            await qout.put(_DONE)
            return
        acc = f(acc, x)
        await qout.put(acc)


async def _q_last(qin: asyncio.Queue[Any]) -> Any:
    last: Any = _DONE
    while True:
        x = await qin.get()
        if x is _DONE:
            if last is _DONE:
                raise LookupError("last of an empty stream")
            return last
        last = x


async def _run_stages(stages: list[Awaitable[Any]], sink: Awaitable[T]) -> T:
    """Run the stage coroutines as tasks and the sink inline; cancel everything on failure."""
    tasks = [asyncio.ensure_future(s) for s in stages]
    try:
        result = await sink
        await asyncio.gather(*tasks)
        return result
    finally:
        for t in tasks:
            t.cancel()


async def b1_queue_pipeline(n: int) -> int:
    """One task per stage connected by ``asyncio.Queue(16)`` (the B2 baseline)."""
    q = [asyncio.Queue[Any](QUEUE_SIZE) for _ in range(4)]
    return await _run_stages(
        [
            _q_source(range(n), q[0]),
            _q_map(double, q[0], q[1]),
            _q_filter(div3, q[1], q[2]),
            _q_scan(0, add, q[2], q[3]),
        ],
        _q_last(q[3]),
    )


# --------------------------------------------------------------------------------------------
# B3: four element-at-a-time maps
# --------------------------------------------------------------------------------------------


def b3_reactivex(n: int) -> int:
    """Four maps on reactivex, synchronous (the B3 baseline)."""
    import reactivex as rx
    from reactivex import operators as ops

    f1, f2, f3, f4 = FOUR_MAPS
    out: list[int] = []
    rx.from_iterable(range(n)).pipe(  # type: ignore[misc]
        ops.map(f1), ops.map(f2), ops.map(f3), ops.map(f4), ops.last()
    ).subscribe(on_next=out.append)
    return out[0]


def b3_generator_chain(n: int) -> int:
    """Four maps as generator stages (reference)."""
    f1, f2, f3, f4 = FOUR_MAPS
    return g_last(g_map(f4, g_map(f3, g_map(f2, g_map(f1, range(n))))))


# --------------------------------------------------------------------------------------------
# map_async(8) over asyncio.sleep(0), order kept
# --------------------------------------------------------------------------------------------


async def _sliding_window(
    n: int, f: Callable[[int], Awaitable[int]], parallelism: int
) -> list[int]:
    out: list[int] = []
    window: deque[asyncio.Future[int]] = deque()
    for x in range(n):
        if len(window) >= parallelism:
            out.append(await window.popleft())
        window.append(asyncio.ensure_future(f(x)))
    while window:
        out.append(await window.popleft())
    return out


async def map_async_sliding_window(n: int) -> list[int]:
    """A well-written sliding window of 8 tasks, in order (the map_async baseline)."""
    return await _sliding_window(n, sleep0, MAP_ASYNC_PARALLELISM)


async def map_async_semaphore(n: int) -> list[int]:
    """The naive design: one task per element up front, a semaphore of 8, ``gather``."""
    sem = asyncio.Semaphore(MAP_ASYNC_PARALLELISM)

    async def guarded(x: int) -> int:
        async with sem:
            return await sleep0(x)

    return list(await asyncio.gather(*(guarded(x) for x in range(n))))


async def map_async_aiostream(n: int) -> list[int]:
    """aiostream ``pipe.map(task_limit=8, ordered=True)``."""
    from aiostream import pipe, stream

    xs = (
        stream.iterate(range(n))
        | pipe.map(sleep0, task_limit=MAP_ASYNC_PARALLELISM, ordered=True)  # type: ignore[arg-type]
        | pipe.list()
    )
    result: list[int] = await xs
    return result


# --------------------------------------------------------------------------------------------
# backpressure: a fast source of 1 KiB elements into a slow sink
# --------------------------------------------------------------------------------------------


def _backpressure_measurement(track: InFlight, n: int) -> Measurement:
    if track.consumed != n:
        raise AssertionError(f"sink saw {track.consumed} of {n} elements")
    return Measurement(
        metrics={"peak_in_flight": float(track.peak)},
        result=track.consumed,
        series=track.series_points(),
    )


async def backpressure_queue(n: int) -> Measurement:
    """Producer and consumer tasks joined by ``asyncio.Queue(16)`` (the baseline)."""
    return await _backpressure_queue(n, QUEUE_SIZE)


async def backpressure_unbounded_queue(n: int) -> Measurement:
    """The naive design: the same two tasks joined by an unbounded ``asyncio.Queue()``."""
    return await _backpressure_queue(n, 0)


async def _backpressure_queue(n: int, maxsize: int) -> Measurement:
    track = InFlight()
    q = asyncio.Queue[Any](maxsize)

    async def consume() -> None:
        while True:
            x = await q.get()
            if x is _DONE:
                return
            await track.slow_sink(x)

    track.start()
    await _run_stages([_q_source(track.source(n), q)], consume())
    return _backpressure_measurement(track, n)


def backpressure_reactivex(n: int) -> Measurement:
    """reactivex with ``observe_on`` a one-thread pool: the hand-over queue is unbounded."""
    import reactivex as rx
    from reactivex import operators as ops
    from reactivex.scheduler import ThreadPoolScheduler

    track = InFlight()
    done = threading.Event()
    errors: list[Exception] = []

    def on_error(exc: Exception) -> None:
        errors.append(exc)
        done.set()

    scheduler = ThreadPoolScheduler(1)
    try:
        track.start()
        rx.from_iterable(track.source(n)).pipe(ops.observe_on(scheduler)).subscribe(
            on_next=track.blocking_slow_sink, on_error=on_error, on_completed=done.set
        )
        if not done.wait(timeout=600):
            raise TimeoutError("reactivex pipeline did not complete")
    finally:
        scheduler.executor.shutdown(wait=True)
    if errors:
        raise errors[0]
    return _backpressure_measurement(track, n)


# --------------------------------------------------------------------------------------------
# latency: one element through an idle running 5-stage chain
# --------------------------------------------------------------------------------------------


def latency_measurement(latencies_ns: list[int]) -> Measurement:
    """Turn per-element latencies in nanoseconds into p50/p99 metrics in microseconds."""
    values = sorted(x / 1000.0 for x in latencies_ns)
    return Measurement(
        metrics={"p50": percentile(values, 0.50), "p99": percentile(values, 0.99)},
        result=len(values),
    )


async def latency_queue_chain(n: int) -> Measurement:
    """Five map tasks joined by ``asyncio.Queue(16)``, then a recording sink task."""
    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    waiter: asyncio.Future[None] = loop.create_future()
    queues = [asyncio.Queue[Any](QUEUE_SIZE) for _ in range(LATENCY_STAGES + 1)]

    async def sink() -> None:
        while True:
            x = await queues[-1].get()
            if x is _DONE:
                return
            latencies.append(time.perf_counter_ns() - x)
            waiter.set_result(None)

    stages = [_q_map(ident, queues[i], queues[i + 1]) for i in range(LATENCY_STAGES)]
    tasks = [asyncio.ensure_future(s) for s in [*stages, sink()]]
    try:
        await asyncio.sleep(0)  # let every stage reach its first get(): the chain is idle
        for _ in range(n):
            waiter = loop.create_future()
            await queues[0].put(time.perf_counter_ns())
            await waiter
        await queues[0].put(_DONE)
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
    return latency_measurement(latencies)


def latency_nested_calls(n: int) -> Measurement:
    """Five nested plain calls of the identity map, then the recording sink: the floor of
    any chain of five Python functions (the limit)."""
    latencies: list[int] = []
    append = latencies.append
    clock = time.perf_counter_ns
    f = ident

    def sink(t: int) -> None:
        append(clock() - t)

    for _ in range(n):
        sink(f(f(f(f(f(clock()))))))
    return latency_measurement(latencies)


def latency_reactivex(n: int) -> Measurement:
    """A reactivex ``Subject`` with five maps, synchronous."""
    from reactivex import operators as ops
    from reactivex.subject import Subject

    latencies: list[int] = []
    subject: Subject[int] = Subject()
    subject.pipe(*(ops.map(ident) for _ in range(LATENCY_STAGES))).subscribe(
        on_next=lambda t: latencies.append(time.perf_counter_ns() - t)
    )
    for _ in range(n):
        subject.on_next(time.perf_counter_ns())
    subject.on_completed()
    return latency_measurement(latencies)


# --------------------------------------------------------------------------------------------
# fan-out: Broadcast(4) -> 4 maps -> Merge(4), summed
# --------------------------------------------------------------------------------------------


def fanout_for_loop(n: int) -> int:
    """Every element through the four maps in a plain loop, summed (the fan-out baseline)."""
    f1, f2, f3, f4 = FOUR_MAPS
    acc = 0
    for x in range(n):
        acc = add(acc, f1(x))
        acc = add(acc, f2(x))
        acc = add(acc, f3(x))
        acc = add(acc, f4(x))
    return acc


def fanout_generator(n: int) -> int:
    """A generator that yields each element's four mapped values, folded (reference)."""
    fns = FOUR_MAPS

    def broadcast(it: Iterable[int]) -> Iterator[int]:
        for x in it:
            for f in fns:
                yield f(x)

    acc = 0
    for y in broadcast(range(n)):
        acc = add(acc, y)
    return acc


# --------------------------------------------------------------------------------------------
# balance: a worker pool of two map_async(1) vs one map_async(2)
# --------------------------------------------------------------------------------------------


async def balance_sliding_window(n: int) -> int:
    """A sliding window of 2 tasks, summed (the balance baseline)."""
    return sum(await _sliding_window(n, sleep0, 2))


async def balance_worker_tasks(n: int) -> int:
    """Two worker tasks pulling from a shared ``asyncio.Queue(16)``, summed."""
    q = asyncio.Queue[Any](QUEUE_SIZE)
    totals = [0, 0]

    async def worker(i: int) -> None:
        while True:
            x = await q.get()
            if x is _DONE:
                return
            totals[i] = add(totals[i], await sleep0(x))

    async def feed() -> None:
        for x in range(n):
            await q.put(x)
        await q.put(_DONE)
        await q.put(_DONE)

    await asyncio.gather(feed(), worker(0), worker(1))
    return totals[0] + totals[1]
