"""The benchmark workloads written against this project's public API (see shared API.md).

Nothing here imports ``reactive`` at module level: each function imports what it uses, so
the harness can load this module while the runtime is missing or incomplete, and a system
whose import fails is reported as "unavailable: <reason>" instead of stopping the run. The
imports inside the timed functions cost a dictionary lookup after the warm-up run.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from benchmarks.baselines import LATENCY_STAGES, MAP_ASYNC_PARALLELISM, latency_measurement
from benchmarks.runner import Measurement
from benchmarks.workloads import FOUR_MAPS, InFlight, add, div3, double, ident, sleep0

#: Buffer size of ``Source.queue`` in the latency benchmark.
LATENCY_QUEUE_SIZE = 16


# --------------------------------------------------------------------------------------------
# B1 / B2 / B4
# --------------------------------------------------------------------------------------------


async def b1_fused(n: int) -> int:
    """B1: ``from_iterable -> map -> filter -> scan -> Sink.last()``, all fused."""
    from reactive import Sink, Source

    result: int = await (
        Source.from_iterable(range(n)).map(double).filter(div3).scan(0, add).run_with(Sink.last())
    )
    return result


async def b2_boundaries(n: int) -> int:
    """B2: the B1 chain with an ``async_boundary()`` after every stage."""
    from reactive import Sink, Source

    result: int = await (
        Source.from_iterable(range(n))
        .map(double)
        .async_boundary()
        .filter(div3)
        .async_boundary()
        .scan(0, add)
        .async_boundary()
        .run_with(Sink.last())
    )
    return result


# --------------------------------------------------------------------------------------------
# B3: a custom element-at-a-time GraphStage
# --------------------------------------------------------------------------------------------


async def b3_custom_stages(n: int, metrics: bool = False) -> int:
    """B3: four custom :class:`~benchmarks.custom_stage.MapStage` stages via ``Flow.from_graph``
    (``metrics``: with ``Attributes.metrics(True)``, for ``benchmarks.suite_observe``)."""
    from benchmarks.custom_stage import MapStage
    from reactive import Attributes, Flow, Keep, Sink, Source

    src = Source.from_iterable(range(n))
    for f in FOUR_MAPS:
        src = src.via(Flow.from_graph(MapStage(f)))
    graph = src.to_mat(Sink.last(), Keep.right)
    if metrics:
        graph = graph.add_attributes(Attributes.metrics(True))
    result: int = await graph.run()
    return result


async def b3_builtin_maps(n: int) -> int:
    """B3 reference: the same four maps as built-in ``.map`` operators."""
    from reactive import Sink, Source

    src = Source.from_iterable(range(n))
    for f in FOUR_MAPS:
        src = src.map(f)
    result: int = await src.run_with(Sink.last())
    return result


# --------------------------------------------------------------------------------------------
# map_async
# --------------------------------------------------------------------------------------------


async def map_async(n: int) -> list[int]:
    """``map_async(8, sleep0)`` collected with ``Sink.seq()`` (order kept)."""
    from reactive import Sink, Source

    result: list[int] = await (
        Source.from_iterable(range(n)).map_async(MAP_ASYNC_PARALLELISM, sleep0).run_with(Sink.seq())
    )
    return result


# --------------------------------------------------------------------------------------------
# backpressure
# --------------------------------------------------------------------------------------------


async def backpressure(n: int) -> Measurement:
    """A fast source, one async boundary, a slow ``Sink.foreach_async(1, ...)``."""
    from reactive import Sink, Source

    track = InFlight()
    track.start()
    await (
        Source.from_iterable(track.source(n))
        .async_boundary()
        .run_with(Sink.foreach_async(1, track.slow_sink))
    )
    if track.consumed != n:
        raise AssertionError(f"sink saw {track.consumed} of {n} elements")
    return Measurement(
        metrics={"peak_in_flight": float(track.peak)},
        result=track.consumed,
        series=track.series_points(),
    )


# --------------------------------------------------------------------------------------------
# latency
# --------------------------------------------------------------------------------------------


async def latency(n: int) -> Measurement:
    """``Source.queue(16)`` -> 5 maps -> ``Sink.foreach``; time from ``offer`` to the sink."""
    from reactive import QueueOfferResult, Sink, Source

    loop = asyncio.get_running_loop()
    latencies: list[int] = []
    waiter: asyncio.Future[None] = loop.create_future()

    def record(t: int) -> None:
        latencies.append(time.perf_counter_ns() - t)
        waiter.set_result(None)

    src = Source.queue(LATENCY_QUEUE_SIZE)
    for _ in range(LATENCY_STAGES):
        src = src.map(ident)
    queue = src.to(Sink.foreach(record)).run()
    await asyncio.sleep(0)  # let the stream start: the chain is running and idle
    for _ in range(n):
        waiter = loop.create_future()
        offered = await queue.offer(time.perf_counter_ns())
        if offered != QueueOfferResult.enqueued:
            raise AssertionError(f"offer returned {offered!r}")
        await waiter
    queue.complete()
    await queue.watch_completion()
    return latency_measurement(latencies)


# --------------------------------------------------------------------------------------------
# fan-out and balance (Graph DSL)
# --------------------------------------------------------------------------------------------


async def _fanout(n: int, boundaries: bool) -> int:
    from reactive import (
        Broadcast,
        ClosedShape,
        Flow,
        GraphDSL,
        Merge,
        RunnableGraph,
        Sink,
        Source,
    )

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)))
        bcast = b.add(Broadcast(len(FOUR_MAPS)))
        merge = b.add(Merge(len(FOUR_MAPS)))
        src.out >> bcast.in_
        for i, f in enumerate(FOUR_MAPS):
            branch = Flow().map(f)
            if boundaries:
                branch = branch.async_boundary()
            bcast.out(i) >> b.add(branch) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, add)))
    result: int = await graph.run()
    return result


async def fanout_fused(n: int) -> int:
    """``Broadcast(4) -> 4 x map -> Merge(4)`` folded with ``Sink.fold(0, add)``, fused."""
    return await _fanout(n, boundaries=False)


async def fanout_boundaries(n: int) -> int:
    """The same graph with an ``async_boundary()`` after each of the four maps."""
    return await _fanout(n, boundaries=True)


async def balance_pool(n: int, metrics: bool = False) -> int:
    """``Balance(2)`` over two ``map_async(1, sleep0)`` workers, ``Merge(2)``, summed
    (``metrics``: with ``Attributes.metrics(True)``, for ``benchmarks.suite_observe``)."""
    from reactive import (
        Attributes,
        Balance,
        ClosedShape,
        Flow,
        GraphDSL,
        Merge,
        RunnableGraph,
        Sink,
        Source,
    )

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)))
        balance = b.add(Balance(2))
        merge = b.add(Merge(2))
        src.out >> balance.in_
        for i in range(2):
            balance.out(i) >> b.add(Flow().map_async(1, sleep0)) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.fold(0, add)))
    if metrics:
        graph = graph.add_attributes(Attributes.metrics(True))
    result: int = await graph.run()
    return result


async def balance_map_async(n: int) -> int:
    """One ``map_async(2, sleep0)``, summed."""
    from reactive import Sink, Source

    result: int = await (
        Source.from_iterable(range(n)).map_async(2, sleep0).run_with(Sink.fold(0, add))
    )
    return result
