"""Soak run of the model-serving demo: ``demo_soak``.

What ``make demo ARGS=--forever`` does, for ``size`` seconds (10 minutes; 5 s with
``--quick``): :func:`samples.model_serving.demo.run_demo` with its loader at
:data:`RATE` records/s, the model publisher and the scoring service on one broker (a
fresh embedded one unless ``KAFKA_BOOTSTRAP_SERVERS`` is set). Then the loader stops and
the service catches up. The run fails unless every record loaded was handled (scored or
sent to the dead-letter topic) and the consumer lag is back to 0: with a 10 ms fetch wait
the demo stopped scoring for good after 3-4 minutes on the embedded broker, whose read
time grows with the batches in a partition (see ``samples/model_serving/service.py``).

Figures: throughput (records scored per second over the run), the final and maximum
consumer lag, and end-to-end latency p50/p99 over every record of the run (the demo's
summary). The series is the lag sampled every :data:`SAMPLE_EVERY` seconds.

One soak per process and size: a soak is a single long run on one broker (the point is
what accumulates), so the harness's warm-up runs a soak a tenth as long and its rounds all
report the one full-length run instead of repeating it (the spread is therefore 0).
"""

from __future__ import annotations

import contextlib
import io
from typing import TYPE_CHECKING, Any

from benchmarks.runner import (
    P50,
    P99,
    THROUGHPUT,
    Benchmark,
    Measurement,
    Metric,
    System,
    Target,
    register,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Records offered per second (the demo's default rate).
RATE = 500.0
#: Seconds between two samples of the lag series.
SAMPLE_EVERY = 5.0

FINAL_LAG = Metric("final_lag", "records", "consumer lag after the catch-up", False)
MAX_LAG = Metric("max_lag", "records", "max consumer lag during the run", False)

__all__ = ["demo_soak"]

_RUNS: dict[int, Measurement] = {}


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a fresh embedded broker for the block."""
    from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers

    external = bootstrap_servers()
    if external is not None:
        yield external
        return
    broker = await EmbeddedBroker().astart()
    try:
        yield broker.bootstrap_servers
    finally:
        await broker.astop()


async def demo_soak(size: int) -> Measurement:
    """The demo for ``size`` seconds; raises unless it handled every record and lag is 0."""
    if size in _RUNS:
        return _RUNS[size]
    from samples.model_serving.demo import run_demo

    series: list[list[float]] = []

    def on_tick(elapsed: float, service: Any) -> None:
        if not series or elapsed - series[-1][0] >= SAMPLE_EVERY:
            lag = service.lag()
            series.append([elapsed, float(lag if lag is not None else -1)])

    async with _broker() as servers:
        summary = await run_demo(
            float(size), rate=RATE, bootstrap=servers, out=io.StringIO(), on_tick=on_tick
        )
    # A record of a type without a model yet is handled too: committed, not scored.
    handled = summary.records_scored + summary.dead_letters + summary.records_unscored
    if summary.final_lag != 0 or handled != summary.records_loaded:
        raise RuntimeError(
            f"the demo did not keep up over {size} s: {handled} of {summary.records_loaded} "
            f"records handled, final consumer lag {summary.final_lag} (max {summary.max_lag})"
        )
    metrics = {
        "elapsed": summary.seconds,
        "throughput": summary.throughput,
        "final_lag": float(summary.final_lag),
        "max_lag": float(summary.max_lag),
        "records_scored": float(summary.records_scored),
    }
    if summary.latency_p50_ms is not None and summary.latency_p99_ms is not None:
        metrics["p50"] = summary.latency_p50_ms * 1000.0
        metrics["p99"] = summary.latency_p99_ms * 1000.0
    _RUNS[size] = Measurement(metrics=metrics, result=handled, series=series)
    return _RUNS[size]


register(
    Benchmark(
        name="demo_soak",
        title="Model-serving demo soak run (lag must return to 0)",
        description=(
            f"`make demo ARGS=--forever` for n seconds: loader at {RATE:.0f} records/s, model "
            "publisher and scoring service on one broker, then the loader stops and the "
            "service catches up. Fails unless every record loaded was handled and the "
            "consumer lag is 0 at the end. Latency p50/p99 over every record of the run "
            "(event time -> scored). One soak per size, one round (warm-up: a tenth as long). "
            "Opt-in: `make bench` runs it after the full run, into benchmarks/results/soak. "
            "Embedded Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set."
        ),
        systems=(System("demo", "benchmarks.suite_soak:demo_soak", "project"),),
        baseline="demo",
        size=600,
        quick_size=5,
        metrics=(THROUGHPUT, FINAL_LAG, MAX_LAG, P50, P99),
        targets=(
            Target("demo", "final_lag", "consumer lag back to 0 after the run", max_value=0.0),
        ),
        check_results=False,
        timeout=900.0,
        size_label="seconds",
        max_rounds=1,
        opt_in=True,
    )
)
