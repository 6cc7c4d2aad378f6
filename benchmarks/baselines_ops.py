"""Non-project implementations of the operator benchmarks (:mod:`benchmarks.suite_ops`):
plain Python, asyncio, aiostream. Third-party peers are imported inside the functions."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from itertools import islice
from typing import TYPE_CHECKING, Any

from benchmarks.baselines import QUEUE_SIZE
from benchmarks.ops_workloads import (
    GROUP_SECONDS,
    GROUP_SIZE,
    INNER_SIZE,
    MERGE_BREADTH,
    RATE,
    inner_range,
    rate_measurement,
    tally,
)
from benchmarks.workloads import add

if TYPE_CHECKING:
    from collections.abc import Iterator

    from benchmarks.runner import Measurement

#: End-of-stream marker of the queue-based designs.
_DONE: Any = object()


# --------------------------------------------------------------------------------------------
# throttle_accuracy: RATE elements per second, arrival times recorded at the sink
# --------------------------------------------------------------------------------------------


async def throttle_deadline_loop(n: int) -> Measurement:
    """Element ``i`` is released at ``t0 + i / RATE`` (sleep until that deadline)."""
    loop = asyncio.get_running_loop()
    stamps: list[float] = []
    t0 = loop.time()
    for i in range(n):
        delay = t0 + i / RATE - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        stamps.append(time.perf_counter())
    return rate_measurement(stamps, n)


async def throttle_sleep_each(n: int) -> Measurement:
    """The naive design: ``await asyncio.sleep(1 / RATE)`` before every element (drifts)."""
    stamps: list[float] = []
    for _ in range(n):
        await asyncio.sleep(1 / RATE)
        stamps.append(time.perf_counter())
    return rate_measurement(stamps, n)


async def throttle_aiostream(n: int) -> Measurement:
    """aiostream ``pipe.spaceout(1 / RATE)``."""
    from aiostream import pipe, stream

    stamps: list[float] = []
    xs = stream.iterate(range(n)) | pipe.spaceout(1 / RATE)
    async with xs.stream() as items:
        async for _ in items:
            stamps.append(time.perf_counter())
    return rate_measurement(stamps, n)


# --------------------------------------------------------------------------------------------
# grouped_within(100, 10 ms)
# --------------------------------------------------------------------------------------------


def grouped_for_loop(n: int) -> tuple[int, int]:
    """Slices of 100 of a list, no timer (the limit of pure Python)."""
    xs = list(range(n))
    acc = (0, 0)
    for i in range(0, n, GROUP_SIZE):
        acc = tally(acc, xs[i : i + GROUP_SIZE])
    return acc


def grouped_plain_loop(n: int) -> tuple[int, int]:
    """One loop over the elements appending to a batch, closed at 100 (the limit: the same
    element-at-a-time work with no timer and no event loop)."""
    acc = (0, 0)
    batch: list[int] = []
    for x in range(n):
        batch.append(x)
        if len(batch) == GROUP_SIZE:
            acc = tally(acc, batch)
            batch = []
    if batch:
        acc = tally(acc, batch)
    return acc


async def grouped_single_task(n: int) -> tuple[int, int]:
    """The strong asyncio design: one task reads the iterable (no queue, no second task) and
    closes a batch at 100 elements or once 10 ms passed since it opened (``loop.time()``
    checked per element), yielding to the event loop after each batch."""
    loop = asyncio.get_running_loop()
    now = loop.time
    acc = (0, 0)
    batch: list[int] = []
    deadline = now() + GROUP_SECONDS
    for x in range(n):
        batch.append(x)
        if len(batch) >= GROUP_SIZE or now() >= deadline:
            acc = tally(acc, batch)
            batch = []
            await asyncio.sleep(0)
            deadline = now() + GROUP_SECONDS
    if batch:
        acc = tally(acc, batch)
    return acc


async def _feed(n: int, q: asyncio.Queue[Any]) -> None:
    for x in range(n):
        await q.put(x)
    await q.put(_DONE)


async def grouped_wait_for_batch(n: int) -> tuple[int, int]:
    """The naive asyncio design: a producer task and an ``asyncio.Queue(16)``; the consumer
    fills each batch in a coroutine run under ``asyncio.wait_for(fill(), 10 ms)``, keeping
    what it got when the timeout cancels it."""
    q = asyncio.Queue[Any](QUEUE_SIZE)
    finished = False

    async def fill(batch: list[int]) -> None:
        nonlocal finished
        while len(batch) < GROUP_SIZE:
            x = await q.get()
            if x is _DONE:
                finished = True
                return
            batch.append(x)

    producer = asyncio.ensure_future(_feed(n, q))
    acc = (0, 0)
    try:
        while not finished:
            batch: list[int] = []
            try:
                await asyncio.wait_for(fill(batch), GROUP_SECONDS)
            except TimeoutError:
                pass
            if batch:
                acc = tally(acc, batch)
        await producer
    finally:
        producer.cancel()
    return acc


async def grouped_wait_for_element(n: int) -> tuple[int, int]:
    """Another naive design: ``asyncio.wait_for(q.get(), time left in the batch)`` for
    every element."""
    loop = asyncio.get_running_loop()
    q = asyncio.Queue[Any](QUEUE_SIZE)
    producer = asyncio.ensure_future(_feed(n, q))
    acc = (0, 0)
    try:
        finished = False
        while not finished:
            batch: list[int] = []
            deadline = loop.time() + GROUP_SECONDS
            while len(batch) < GROUP_SIZE:
                try:
                    x = await asyncio.wait_for(q.get(), max(0.0, deadline - loop.time()))
                except TimeoutError:
                    break
                if x is _DONE:
                    finished = True
                    break
                batch.append(x)
            if batch:
                acc = tally(acc, batch)
        await producer
    finally:
        producer.cancel()
    return acc


# --------------------------------------------------------------------------------------------
# flat_map_merge(8, i -> 1,000 elements)
# --------------------------------------------------------------------------------------------


def flat_map_for_loop(n: int) -> int:
    """A nested ``for`` loop over the inner ranges, summed (the limit)."""
    acc = 0
    for i in range(n // INNER_SIZE):
        for x in inner_range(i):
            acc = add(acc, x)
    return acc


async def flat_map_queue_tasks(n: int) -> int:
    """8 tasks, each taking the next outer element and draining its inner range into a
    shared ``asyncio.Queue(16)``; the consumer sums until every task is done."""
    outer: Iterator[int] = iter(range(n // INNER_SIZE))
    q = asyncio.Queue[Any](QUEUE_SIZE)

    async def drain() -> None:
        for i in outer:
            for x in inner_range(i):
                await q.put(x)
        await q.put(_DONE)

    tasks = [asyncio.ensure_future(drain()) for _ in range(MERGE_BREADTH)]
    acc = 0
    try:
        running = MERGE_BREADTH
        while running:
            x = await q.get()
            if x is _DONE:
                running -= 1
            else:
                acc = add(acc, x)
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
    return acc


async def flat_map_single_task(n: int) -> int:
    """The strong asyncio design: one task merges up to 8 inner iterators round-robin, 16
    elements per turn (the window of the other designs), opening the next inner sequence
    as soon as one ends, and yielding to the event loop after each inner sequence."""
    outer: Iterator[int] = iter(range(n // INNER_SIZE))
    active = deque(iter(inner_range(i)) for i in islice(outer, MERGE_BREADTH))
    acc = 0
    while active:
        it = active.popleft()
        took = 0
        for x in it:
            acc = add(acc, x)
            took += 1
            if took == QUEUE_SIZE:
                break
        if took == QUEUE_SIZE:
            active.append(it)
            continue
        following = next(outer, None)
        if following is not None:
            active.append(iter(inner_range(following)))
        await asyncio.sleep(0)
    return acc


async def flat_map_aiostream(n: int) -> int:
    """aiostream ``pipe.flatmap(task_limit=8)`` over ``stream.iterate`` inner streams."""
    from aiostream import pipe, stream

    def inner(i: int) -> Any:
        return stream.iterate(inner_range(i))

    xs = (
        stream.iterate(range(n // INNER_SIZE))
        | pipe.flatmap(inner, task_limit=MERGE_BREADTH)  # type: ignore[arg-type]
        | pipe.accumulate(add, initializer=0)
    )
    result: int = await xs
    return result
