"""What stream metrics cost, and whom they blame (issue 17).

Registers ``observe_b1`` and ``observe_b2``: the B1 (fused) and B2 (async boundaries)
chains with ``Attributes.metrics(True)`` against the same chains without, in the same
run, with the issue's targets (metrics on at most 25% slower on B1, 10% on B2);
``observe_kafka``: the Kafka consume -> map -> produce workload of
``benchmarks.kafka_bench`` on a materializer with metrics on against the same with
metrics off (at most 10% slower); ``observe_pool`` and ``observe_b3``, with no target:
the worker pool of ``graph_balance_pool`` and B3's custom stages, metrics on against off;
and ``observe_blame``: the back-pressure workload with metrics on, checking in every round
that the counters blame its slow sink. The harness loads it once
``benchmarks.suite_observe`` is listed in ``runner.BENCHMARK_MODULES``.

``python -m benchmarks.suite_observe [--rounds N] [--size N]`` measures the B1, B2, pool
and B3 pairs directly (paired rounds, alternating order, median of the per-round ratios)
and runs the back-pressure workload (a fast source, a boundary, a slow sink) with metrics
on, printing the stage the counters blame.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

from benchmarks.runner import (
    THROUGHPUT,
    Benchmark,
    Measurement,
    Metric,
    System,
    Target,
    register,
)
from benchmarks.workloads import add, div3, double

__all__ = [
    "NAMES",
    "b1_metrics",
    "b2_metrics",
    "b3_metrics",
    "kafka_metrics",
    "pool_metrics",
    "backpressure_blamed",
    "backpressure_metrics_off",
    "blamed_in_backpressure",
]

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

P = "benchmarks.project:"
O = "benchmarks.suite_observe:"  # noqa: E741 - reads as "observe"


async def b1_metrics(n: int) -> int:
    """B1 with metrics on: ``from_iterable -> map -> filter -> scan -> Sink.last()``."""
    from reactive import Attributes, Keep, Sink, Source

    graph = (
        Source.from_iterable(range(n))
        .map(double)
        .filter(div3)
        .scan(0, add)
        .to_mat(Sink.last(), Keep.right)
        .add_attributes(Attributes.metrics(True))
    )
    result: int = await graph.run()
    return result


async def b2_metrics(n: int) -> int:
    """B2 with metrics on: the B1 chain with an ``async_boundary()`` after every stage."""
    from reactive import Attributes, Keep, Sink, Source

    graph = (
        Source.from_iterable(range(n))
        .map(double)
        .async_boundary()
        .filter(div3)
        .async_boundary()
        .scan(0, add)
        .async_boundary()
        .to_mat(Sink.last(), Keep.right)
        .add_attributes(Attributes.metrics(True))
    )
    result: int = await graph.run()
    return result


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


for _name, _off, _on, _bound, _pct, _size in (
    ("observe_b1", "b1_fused", "b1_metrics", 0.8, 25, 500_000),
    ("observe_b2", "b2_boundaries", "b2_metrics", 1 / 1.1, 10, 200_000),
):
    _register(
        Benchmark(
            name=_name,
            title=f"Metrics overhead on {_name[-2:].upper()}",
            description=(
                f"The {_name[-2:].upper()} chain with `Attributes.metrics(True)` against the "
                "same chain without metrics, in the same run."
            ),
            systems=(
                System("metrics off", P + _off, "baseline"),
                System("metrics on", O + _on, "project"),
            ),
            baseline="metrics off",
            size=_size,
            quick_size=2_000,
            metrics=(THROUGHPUT,),
            targets=(
                Target(
                    "metrics on",
                    "throughput",
                    f"at most {_pct}% slower than metrics off",
                    min_ratio=_bound,
                ),
            ),
        )
    )


async def pool_metrics(n: int) -> int:
    """The worker pool of ``graph_balance_pool`` (``Balance(2)`` -> 2 x ``map_async(1)`` ->
    ``Merge(2)``) with metrics on."""
    from benchmarks.project import balance_pool

    return await balance_pool(n, metrics=True)


async def b3_metrics(n: int) -> int:
    """B3's four custom element-at-a-time stages with metrics on."""
    from benchmarks.project import b3_custom_stages

    return await b3_custom_stages(n, metrics=True)


# What metrics cost beyond the three workloads (no target): a graph on the junction
# and worker-pool fast paths, which count per element there, and custom element-at-a-time
# stages, which pay per event (a counting-queue append and a clock read per pull and push).
for _name, _title, _off, _on, _what in (
    (
        "observe_pool",
        "Metrics overhead on the worker pool",
        "balance_pool",
        "pool_metrics",
        "The worker pool of `graph_balance_pool` (`Balance(2)` -> 2 x `map_async(1, f)` -> "
        "`Merge(2)`, summed) with `Attributes.metrics(True)` against the same graph "
        "without: Balance's one-call hand-over to a worker, the worker's offer to Merge and "
        "Merge's direct hand-down each count a pull, a push and the element (two clock "
        "readings per element). No target (the issue's are B1, B2 and Kafka).",
    ),
    (
        "observe_b3",
        "Metrics overhead on custom element-at-a-time stages (B3)",
        "b3_custom_stages",
        "b3_metrics",
        "B3 (four custom `GraphStage`s, one element per pull and push) with "
        "`Attributes.metrics(True)` against the same graph without: every pull and push of "
        "their five connections goes through the counting queue and reads the clock (ten "
        "per element). No target (the issue's are B1, B2 and Kafka).",
    ),
):
    _register(
        Benchmark(
            name=_name,
            title=_title,
            description=_what,
            systems=(
                System("metrics off", P + _off, "baseline"),
                System("metrics on", O + _on, "project"),
            ),
            baseline="metrics off",
            size=50_000,
            quick_size=1_000,
            metrics=(THROUGHPUT,),
        )
    )


async def kafka_metrics(size: int) -> Measurement:
    """``kafka_bench.connectors_pipeline`` on a materializer with metrics on: per-stage
    counters on the consumer, the map and the committing producer sink."""
    from benchmarks.kafka_bench import connectors_pipeline

    return await connectors_pipeline(size, metrics=True)


_register(
    Benchmark(
        name="observe_kafka",
        title="Metrics overhead on Kafka consume -> map -> produce",
        description=(
            "The `kafka_consume_produce` workload (`Consumer.committable_source -> map -> "
            "Producer.committable_sink`, commits every 1,000 records or 1 s) on a "
            "materializer with `metrics=True` against the same with metrics off, in the same "
            "run, over 200,000 records: with 50,000 the broker's fetch timing and each "
            "measurement's start and drain weighed more, and the ratios of rounds spread "
            "0.66x-1.05x (0.92x-1.33x in a 200,000 run on the same machine). Under cProfile "
            "the metered run's only extra Python calls are a clock read and a counting-queue "
            "append, each once per ~77 records. Embedded Tansu broker unless "
            "KAFKA_BOOTSTRAP_SERVERS is set."
        ),
        systems=(
            System("metrics off", "benchmarks.kafka_bench:connectors_pipeline", "baseline"),
            System("metrics on", O + "kafka_metrics", "project"),
        ),
        baseline="metrics off",
        size=200_000,
        quick_size=2_000,
        metrics=(THROUGHPUT,),
        targets=(
            Target(
                "metrics on", "throughput", "at most 10% slower than metrics off", min_ratio=1 / 1.1
            ),
        ),
        timeout=300.0,
        size_label="records",
        # Each measurement starts a broker and writes the records first, and the rounds'
        # ratios spread wide (see the description): 9 rounds, whatever --rounds says.
        min_rounds=9,
        max_rounds=9,
    )
)


#: 1 when the counters blame the sleeping sink in the back-pressure workload, else 0.
SLOW_SINK_BLAMED = Metric("slow_sink_blamed", "", "slow sink blamed (1 = yes)", True)
#: The blame of the stage the counters blame (``reactive.observe.blame``).
BLAME = Metric("blame", "", "blame of the blamed stage", True)


async def _backpressure(n: int, metrics: bool) -> tuple[int, str | None, float]:
    """A fast source, a boundary, a sink that sleeps 1 ms every 100 elements: the number
    of elements the sink saw, and (metrics on) the blamed stage and its blame."""
    from reactive import Attributes, Keep, Materializer, Sink, Source
    from reactive.observe import blame, bottleneck

    seen = 0

    async def slow(x: Any) -> None:
        nonlocal seen
        seen += 1
        if x % 100 == 0:
            await asyncio.sleep(0.001)

    async with Materializer() as mat:
        graph = (
            Source.from_iterable(range(n))
            .named("fast_source")
            .async_boundary()
            .to_mat(Sink.foreach_async(1, slow).named("slow_sink"), Keep.right)
            .named("backpressure")
            .add_attributes(Attributes.metrics(metrics))
        )
        await graph.run(mat)
        if not metrics:
            return seen, None, 0.0
        culprit = bottleneck(mat.snapshot().graph("backpressure"))
        if culprit is None:
            return seen, None, 0.0
        return seen, culprit.name, blame(culprit)


async def blamed_in_backpressure(n: int = 20_000) -> tuple[str | None, float]:
    """Run the back-pressure workload with metrics on; the blamed stage and its blame."""
    _, stage, score = await _backpressure(n, True)
    return stage, score


async def backpressure_metrics_off(n: int) -> Measurement:
    """The back-pressure workload without metrics (the blame benchmark's baseline)."""
    seen, _, _ = await _backpressure(n, False)
    return Measurement(result=seen)


async def backpressure_blamed(n: int) -> Measurement:
    """The back-pressure workload with metrics on: whether the slow sink is blamed."""
    seen, stage, score = await _backpressure(n, True)
    return Measurement(
        {SLOW_SINK_BLAMED.name: float(stage == "slow_sink"), BLAME.name: score}, result=seen
    )


_register(
    Benchmark(
        name="observe_blame",
        title="Whom the metrics blame under back pressure",
        description=(
            "The back-pressure workload (a fast `from_iterable` source, an async boundary, "
            "`Sink.foreach_async(1, slow)` sleeping 1 ms every 100 elements) with "
            "`Attributes.metrics(True)`; at the end `reactive.observe.bottleneck` names the "
            "stage the counters blame. It must be the slow sink (`slow_sink`) in every round; "
            "`blame` is that stage's blame share. Metrics off runs the same graph for scale."
        ),
        systems=(
            System("metrics off", O + "backpressure_metrics_off", "baseline"),
            System("metrics on", O + "backpressure_blamed", "project"),
        ),
        baseline="metrics off",
        size=20_000,
        quick_size=2_000,
        metrics=(THROUGHPUT, SLOW_SINK_BLAMED, BLAME),
        max_rounds=3,  # an absolute check on the worst round; no ratio target
        targets=(
            Target(
                "metrics on",
                SLOW_SINK_BLAMED.name,
                "the metrics blame the slow sink (`slow_sink`) in every round",
                min_value=1.0,
                on="worst",
            ),
        ),
    )
)


async def _paired(off: Any, on: Any, size: int, rounds: int) -> float:
    ratios = []
    for r in range(rounds):
        times = {}
        for label, fn in (("off", off), ("on", on)) if r % 2 else (("on", on), ("off", off)):
            t0 = time.perf_counter()
            await fn(size)
            times[label] = time.perf_counter() - t0
        ratios.append(times["off"] / times["on"])  # throughput on / off
    return statistics.median(ratios)


async def _main(rounds: int, size: int) -> None:
    from benchmarks.project import b1_fused, b2_boundaries, b3_custom_stages, balance_pool

    for name, off, on, pct, n in (
        ("B1", b1_fused, b1_metrics, 25, size),
        ("B2", b2_boundaries, b2_metrics, 10, size),
        ("pool", balance_pool, pool_metrics, None, size // 4),
        ("B3", b3_custom_stages, b3_metrics, None, size // 4),
    ):
        ratio = await _paired(off, on, n, rounds)
        target = f"target: at most {pct}% slower" if pct else "no target"
        print(f"{name}: throughput with metrics on = {ratio:.3f}x metrics off ({target})")
    stage, score = await blamed_in_backpressure()
    print(f"back-pressure workload: the metrics blame {stage!r} (blame {score:.0%})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--size", type=int, default=200_000)
    args = parser.parse_args()
    asyncio.run(_main(args.rounds, args.size))
