"""The CPU accounting of the ``scale_out`` benchmark (``benchmarks.suite_kafka_scale``).

:func:`cpu_figures` is pure: CPU seconds in, per-1,000-record figures and the CPU ceiling
out. ``/proc`` readers are checked against this process's own CPU time, and a metric with
``ratio_of`` is checked to be divided by the reference's other metric in the statistics
and said so in the markdown table.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TYPE_CHECKING

import pytest

from benchmarks.report import render_markdown
from benchmarks.runner import (
    THROUGHPUT,
    Benchmark,
    BenchmarkResult,
    Measurement,
    Metric,
    Options,
    System,
    SystemResult,
    compute_stats,
)
from benchmarks.scale_worker import TimedSelector
from benchmarks.suite_kafka_scale import (
    CpuSplit,
    busiest_thread,
    cpu_figures,
    machine_cpu,
    process_cpu,
    scale_ceiling,
    thread_cpu,
    wait_split,
)

if TYPE_CHECKING:
    from pathlib import Path


def test_one_scorer_process_is_capped_at_one_core() -> None:
    # 100,000 records in 5 s: scorer 4.5 CPU s, broker 3.0, coordinator 0.25 (0.05 cores).
    figures = cpu_figures(
        CpuSplit(
            elapsed=5.0,
            records=100_000,
            scorers=(4.5,),
            coordinator=0.25,
            broker=3.0,
            machine=9.0,
        ),
        cores=2,
    )
    assert figures["scorer_cpu"] == pytest.approx(45.0)  # CPU ms per 1,000 records
    assert figures["broker_cpu"] == pytest.approx(30.0)
    assert figures["coordinator_cpu"] == pytest.approx(2.5)
    assert figures["busy_cores"] == pytest.approx(7.75 / 5)
    assert figures["other_cores"] == pytest.approx(1.25 / 5)
    # The cores would carry 1.95 * 100,000 / 7.5 = 26,000/s, but one scorer process on one
    # core does 100,000 / 4.5 = 22,222/s.
    assert figures["cpu_ceiling"] == pytest.approx(100_000 / 4.5)


def test_two_scorer_processes_are_capped_by_the_machine() -> None:
    figures = cpu_figures(
        CpuSplit(elapsed=5.0, records=100_000, scorers=(4.0, 4.0), coordinator=0.25, broker=4.0),
        cores=2,
    )
    assert figures["scorer_cpu"] == pytest.approx(80.0)
    # (2 - 0.05) cores * 100,000 records / 12 CPU s; each scorer alone could do 25,000/s.
    assert figures["cpu_ceiling"] == pytest.approx(1.95 * 100_000 / 12)
    assert "other_cores" not in figures  # no machine figure given


def test_without_a_broker_figure_nothing_that_needs_it_is_reported() -> None:
    figures = cpu_figures(
        CpuSplit(elapsed=2.0, records=1_000, scorers=(1.0,), coordinator=0.1, machine=3.0),
        cores=2,
    )
    assert figures == {"scorer_cpu": pytest.approx(1000.0), "coordinator_cpu": pytest.approx(100.0)}


def test_an_idle_scorer_leaves_the_ceiling_out() -> None:
    figures = cpu_figures(
        CpuSplit(elapsed=1.0, records=10, scorers=(0.0,), coordinator=0.0, broker=0.0),
        cores=2,
    )
    assert "cpu_ceiling" not in figures
    assert figures["busy_cores"] == 0.0


def test_busy_cores_are_counted_over_the_window_after_the_join() -> None:
    whole = CpuSplit(elapsed=3.0, records=1_000, scorers=(0.9,), coordinator=0.1, broker=0.3)
    window = CpuSplit(
        elapsed=2.0, records=1_000, scorers=(0.8,), coordinator=0.1, broker=0.3, machine=2.2
    )
    figures = cpu_figures(whole, 2, window)
    assert figures["busy_cores"] == pytest.approx(1.2 / 2.0)
    assert figures["other_cores"] == pytest.approx(1.0 / 2.0)
    assert figures["scorer_cpu"] == pytest.approx(900.0)  # per record: the whole timed part
    assert cpu_figures(whole, 2)["busy_cores"] == pytest.approx(1.3 / 3.0)


def test_two_processes_halve_at_best_what_follows_the_join() -> None:
    # The full run's one process: 2.7 s, joined after 1.1 s: 1.1 + 1.6 / 2 = 1.9 s at best.
    assert scale_ceiling(2.7, 1.1, 100_000, None, 2) == pytest.approx(100_000 / 1.9)
    assert scale_ceiling(2.7, 1.1, 100_000, None, 2, processes=4) == pytest.approx(100_000 / 1.5)
    # Not faster than the broker's and scorers' 2.5 CPU s over the 1.95 cores left.
    cpu = CpuSplit(elapsed=2.0, records=100_000, scorers=(1.5,), coordinator=0.1, broker=1.0)
    assert scale_ceiling(2.0, 0.5, 100_000, cpu, 2) == pytest.approx(100_000 / (0.5 + 2.5 / 1.95))
    # Without a broker figure the CPU bound is unknown: only the halving counts.
    no_broker = CpuSplit(elapsed=2.0, records=100_000, scorers=(1.5,), coordinator=0.1)
    assert scale_ceiling(2.0, 0.5, 100_000, no_broker, 2) == pytest.approx(100_000 / 1.25)
    with pytest.raises(ValueError, match="scale_ceiling"):
        scale_ceiling(1.0, 1.5, 100, None, 2)


def test_empty_measurements_are_refused() -> None:
    with pytest.raises(ValueError, match="cpu_figures"):
        cpu_figures(CpuSplit(elapsed=0.0, records=10, scorers=(1.0,), coordinator=0.0), 2)
    with pytest.raises(ValueError, match="cpu_figures"):
        cpu_figures(CpuSplit(elapsed=1.0, records=0, scorers=(1.0,), coordinator=0.0), 2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_proc_readers_count_this_process() -> None:
    before, machine_before = process_cpu(os.getpid()), machine_cpu()
    assert before is not None and machine_before is not None
    spin_until = time.process_time() + 0.2
    while time.process_time() < spin_until:
        pass
    after, machine_after = process_cpu(os.getpid()), machine_cpu()
    assert after is not None and machine_after is not None
    assert after - before >= 0.15  # clock ticks of 10 ms
    assert machine_after - machine_before >= after - before - 0.02
    assert process_cpu(2**22 + 1) is None  # above the kernel's pid limit: no such process


def test_the_busiest_thread_is_the_one_that_used_the_most_cpu() -> None:
    # Thread 2 used 0.45 CPU s of 0.5 s; thread 3 was born in between and used 0.3.
    start = {1: 1.0, 2: 2.0}
    end = {1: 1.1, 2: 2.45, 3: 0.3}
    assert busiest_thread(start, end, 0.5) == pytest.approx(0.9)
    assert busiest_thread(start, {1: 1.2}, 0.5) == pytest.approx(0.4)  # thread 2 ended
    assert busiest_thread({}, {}, 1.0) == 0.0
    with pytest.raises(ValueError, match="busiest_thread"):
        busiest_thread(start, end, 0.0)


def test_a_scorer_is_running_idle_or_waiting_for_a_core() -> None:
    first = {"t": 10.0, "cpu": 1.0, "idle": 0.5}
    # 2 s: 0.8 s running, 0.6 s idle (waiting on the broker), 0.6 s waiting for a core.
    idle, cpu_wait = wait_split(first, {"t": 12.0, "cpu": 1.8, "idle": 1.1})
    assert (idle, cpu_wait) == (pytest.approx(0.3), pytest.approx(0.3))
    # Clock ticks can add up to a little more than the wall time: no negative wait.
    assert wait_split(first, {"t": 11.0, "cpu": 1.61, "idle": 0.9})[1] == 0.0
    with pytest.raises(ValueError, match="wait_split"):
        wait_split(first, first)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_thread_cpu_counts_this_thread() -> None:
    import threading

    tid = threading.get_native_id()
    before = thread_cpu(os.getpid())
    assert tid in before
    spin_until = time.process_time() + 0.2
    while time.process_time() < spin_until:
        pass
    after = thread_cpu(os.getpid())
    assert after[tid] - before[tid] >= 0.15
    assert busiest_thread(before, after, 0.2) >= 0.75
    assert thread_cpu(2**22 + 1) == {}


def test_the_timed_selector_counts_the_time_the_loop_waits() -> None:
    import asyncio

    selector = TimedSelector()
    with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as runner:
        runner.run(asyncio.sleep(0.2))  # nothing to run: the loop waits in select
        waited = selector.idle
        spin_until = time.perf_counter() + 0.2

        async def spin() -> None:
            while time.perf_counter() < spin_until:
                pass

        runner.run(spin())  # busy: next to no time in select
    assert waited >= 0.15
    assert selector.idle - waited < 0.1


def test_a_ratio_of_metric_is_divided_by_the_reference_metric(tmp_path: Path) -> None:
    ceiling = Metric("ceiling", "el/s", "ceiling", True, ratio_of="throughput")
    bench = Benchmark(
        name="ratio_of",
        title="ratio_of",
        description="a ceiling against the baseline's throughput",
        systems=(
            System("one", "builtins:abs", "baseline"),
            System("two", "builtins:abs", "project"),
        ),
        baseline="one",
        size=10,
        quick_size=10,
        metrics=(THROUGHPUT, ceiling),
    )
    figures = {"one": [(10.0, 40.0), (20.0, 60.0)], "two": [(15.0, 100.0), (30.0, 200.0)]}
    systems = []
    for system in bench.systems:
        r = SystemResult(system)
        r.samples = [
            Measurement(metrics={"throughput": t, "ceiling": c}) for t, c in figures[system.name]
        ]
        r.sample_rounds = [1, 2]
        systems.append(r)
    result = BenchmarkResult(bench, 10, 2, systems)
    compute_stats(result)
    # Per round: ceiling / the baseline's throughput of the same round.
    assert result.stats["ceiling"]["two"].against["one"].ratios == [10.0, 10.0]
    assert result.stats["ceiling"]["one"].against["one"].ratios == [4.0, 3.0]
    assert result.stats["throughput"]["two"].against["one"].ratios == [1.5, 1.5]
    machine = {
        "date": "today",
        "cpu": "cpu",
        "cpus": 2,
        "memory": "1 GiB",
        "platform": "linux",
        "python": "CPython",
        "packages": {},
        "git": "abc",
        "load_average_at_start": "0",
    }
    markdown = render_markdown([result], Options(rounds=2, out=tmp_path), machine)
    section = markdown.split("### ceiling", 1)[1]
    assert "ratio vs one's throughput (median of rounds, min - max)" in section
    assert "| one | baseline | 50 | 40 - 60 | 3.50x (3.00 - 4.00) |" in section
    assert "1.00x (baseline)" not in section
    assert "1.00x (baseline)" in markdown.split("### ceiling", 1)[0]


@pytest.mark.kafka
@pytest.mark.timeout(60)
async def test_one_process_on_its_own_broker_reports_every_cpu_figure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On an embedded broker of its own (a process whose CPU can be read) one process
    reports every figure of the table; the throughput is that of the timed part. Not a
    speed test."""
    from benchmarks import suite_kafka_scale
    from benchmarks.runner import load_benchmarks

    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    m = await suite_kafka_scale.one_process(2_000)
    assert m.metrics["lost"] == 0
    assert m.metrics["throughput"] == pytest.approx(2_000 / m.metrics["elapsed"])
    for metric in load_benchmarks()["scale_out"].metrics:
        value = m.metrics.get(metric.name)
        assert value is not None and 0 <= value < float("inf"), (metric.name, m.metrics)
    assert 0 < m.metrics["joined"] < m.metrics["elapsed"]
    assert m.metrics["scorer_0_cpu_s"] > 0
    assert m.metrics["broker_thread_cores"] <= m.metrics["busy_cores"] + 0.1  # one of them
    assert 0 <= m.metrics["scorer_idle"] + m.metrics["scorer_cpu_wait"] <= 1.0
