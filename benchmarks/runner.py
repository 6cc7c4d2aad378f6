"""The benchmark harness: the model (benchmarks, systems, metrics, targets), the registry,
measurement in-process and in a separate process, and the round-robin runner.

How a benchmark runs:

1. Every selected system runs once on a smaller warm-up size (a tenth of the full size; the
   quick size itself with ``--quick``). A system whose code cannot be imported is marked
   *unavailable*, one that raises, times out or computes a result different from the
   baseline's is marked *failed*; neither stops the run.
2. Then ``rounds`` rounds (default 5) run the remaining systems interleaved, A B C A B C ...,
   each measurement after a ``gc.collect()``. Synchronous systems are timed as they are;
   coroutine functions run in a fresh event loop (``asyncio.run``) and are timed inside it.
3. Each metric reports the median over rounds, the min-max spread, and the ratio of the
   medians against the benchmark's baseline system measured in the same run.

Benchmarks with ``isolated=True`` run every measurement in a fresh process
(``python -m benchmarks.worker BENCH SYSTEM SIZE [TIMEOUT]``) that also reports the peak RSS growth
over its own baseline (see :mod:`benchmarks.worker`).

Registering more benchmarks: create a module that calls :func:`register` with
:class:`Benchmark` objects and append its dotted name to :data:`BENCHMARK_MODULES`.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import inspect
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

SystemKind = Literal["baseline", "peer", "limit", "project"]
SystemStatus = Literal["ok", "unavailable", "failed"]

#: Repository root (the parent of the ``benchmarks`` package).
REPO_ROOT = Path(__file__).resolve().parent.parent
#: Default output directory for ``latest.md``, ``latest.json`` and the plots.
DEFAULT_OUT = Path(__file__).resolve().parent / "results"
#: Modules whose import registers benchmarks; append to add more (e.g. Kafka benchmarks).
BENCHMARK_MODULES: list[str] = [
    "benchmarks.suite",
    "benchmarks.suite_ops",
    "benchmarks.kafka_bench",
    "benchmarks.suite_kafka_scale",
    "benchmarks.suite_model_serving",
    "benchmarks.suite_graphs",
]
#: Every registered benchmark by name, in registration order.
REGISTRY: dict[str, Benchmark] = {}

DEFAULT_ROUNDS = 5
#: The number of rounds below which a run is labelled a smoke run, not a measurement.
MIN_REAL_ROUNDS = 5


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A measured quantity: ``name`` is the key in :attr:`Measurement.metrics`."""

    name: str
    unit: str
    label: str
    higher_is_better: bool


THROUGHPUT = Metric("throughput", "el/s", "throughput", higher_is_better=True)
RSS_GROWTH = Metric("rss_growth", "MiB", "peak RSS growth", higher_is_better=False)
PEAK_IN_FLIGHT = Metric("peak_in_flight", "elements", "peak elements in flight", False)
P50 = Metric("p50", "us", "latency p50", higher_is_better=False)
P99 = Metric("p99", "us", "latency p99", higher_is_better=False)


@dataclass(frozen=True)
class Target:
    """A goal for one system's metric, with a plain-language description.

    Exactly one of ``min_ratio`` (system median / baseline median >= it), ``max_value`` or
    ``min_value`` (absolute bounds) is set. ``on="median"`` checks the median over rounds;
    ``on="worst"`` checks the worst round (for bounds that must hold every time).
    """

    system: str
    metric: str
    description: str
    min_ratio: float | None = None
    max_value: float | None = None
    min_value: float | None = None
    on: Literal["median", "worst"] = "median"

    def __post_init__(self) -> None:
        given = [v for v in (self.min_ratio, self.max_value, self.min_value) if v is not None]
        if len(given) != 1:
            raise ValueError(f"target {self.description!r}: set exactly one bound")

    def evaluate(self, stats: MetricStats) -> tuple[float | None, bool | None]:
        """Return the value checked and whether it meets the target (None: not evaluable)."""
        if self.min_ratio is not None:
            if stats.ratio is None:
                return None, None
            return stats.ratio, stats.ratio >= self.min_ratio
        if self.max_value is not None:
            value = stats.max if self.on == "worst" else stats.median
            return value, value <= self.max_value
        assert self.min_value is not None
        value = stats.min if self.on == "worst" else stats.median
        return value, value >= self.min_value


@dataclass(frozen=True)
class System:
    """One implementation of a benchmark's workload.

    ``target`` is ``"module:function"``; the function takes the size and returns the
    workload's result or a :class:`Measurement`. It is imported only when the system runs.
    """

    name: str
    target: str
    kind: SystemKind
    note: str = ""


@dataclass(frozen=True)
class Benchmark:
    """A workload, the systems that implement it, what is measured and what is aimed at."""

    name: str
    title: str
    description: str
    systems: tuple[System, ...]
    baseline: str
    size: int
    quick_size: int
    metrics: tuple[Metric, ...] = (THROUGHPUT,)
    targets: tuple[Target, ...] = ()
    isolated: bool = False
    check_results: bool = True
    timeout: float = 600.0
    size_label: str = "elements"

    def __post_init__(self) -> None:
        names = [s.name for s in self.systems]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark {self.name}: duplicate system names")
        if self.baseline not in names:
            raise ValueError(f"benchmark {self.name}: baseline {self.baseline!r} not a system")
        metric_names = {m.name for m in self.metrics}
        for t in self.targets:
            if t.system not in names or t.metric not in metric_names:
                raise ValueError(f"benchmark {self.name}: bad target {t.description!r}")

    def system(self, name: str) -> System:
        """Return the system called ``name``."""
        for s in self.systems:
            if s.name == name:
                return s
        raise KeyError(f"benchmark {self.name} has no system {name!r}")


@dataclass
class Measurement:
    """What one run of one system produced.

    ``metrics`` maps metric names to values; the harness adds ``elapsed`` (seconds) and
    ``throughput`` (size / elapsed) unless the system set them. ``result`` is compared with
    the baseline's; ``series`` is an optional ``[[seconds, value], ...]`` time series.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    result: Any = None
    series: list[list[float]] | None = None

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (the result is reduced to a short repr)."""
        return {"metrics": self.metrics, "result": _short_repr(self.result), "series": self.series}


class SystemUnavailable(Exception):
    """The system's code cannot be imported (for example, the runtime is not there yet)."""


class SystemFailed(Exception):
    """The system raised, timed out, or computed a wrong result."""


def register(bench: Benchmark) -> Benchmark:
    """Add ``bench`` to :data:`REGISTRY` and return it; a name may be registered only once."""
    if bench.name in REGISTRY and REGISTRY[bench.name] is not bench:
        raise ValueError(f"benchmark {bench.name!r} is already registered")
    REGISTRY[bench.name] = bench
    return bench


def load_benchmarks() -> dict[str, Benchmark]:
    """Import every module of :data:`BENCHMARK_MODULES` and return the registry."""
    for module in BENCHMARK_MODULES:
        importlib.import_module(module)
    return REGISTRY


# --------------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------------


def resolve(target: str) -> Callable[[int], Any]:
    """Import ``"module:function"``; raise :class:`SystemUnavailable` if the import fails."""
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise SystemUnavailable(f"{type(exc).__name__}: {exc}") from exc
    try:
        fn: Callable[[int], Any] = getattr(module, attr)
    except AttributeError as exc:
        raise SystemFailed(f"{module_name} has no attribute {attr!r}") from exc
    return fn


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _finish(raw: Any, size: int, elapsed: float) -> Measurement:
    m = raw if isinstance(raw, Measurement) else Measurement(result=raw)
    m.metrics.setdefault("elapsed", elapsed)
    m.metrics.setdefault("throughput", size / elapsed if elapsed > 0 else float("inf"))
    return m


async def _timed_async(fn: Callable[[int], Any], size: int, timeout: float) -> Measurement:
    t0 = time.perf_counter()
    raw = await asyncio.wait_for(fn(size), timeout)
    return _finish(raw, size, time.perf_counter() - t0)


def call_system(fn: Callable[[int], Any], size: int, timeout: float) -> Measurement:
    """Run one system once and time it (coroutine functions in a fresh event loop).

    Raises :class:`SystemUnavailable` for an ImportError inside the system and
    :class:`SystemFailed` for any other exception or a timeout.
    """
    try:
        if inspect.iscoroutinefunction(fn):
            return asyncio.run(_timed_async(fn, size, timeout))
        t0 = time.perf_counter()
        raw = fn(size)
        return _finish(raw, size, time.perf_counter() - t0)
    except ImportError as exc:
        raise SystemUnavailable(_describe(exc)) from exc
    except TimeoutError as exc:
        raise SystemFailed(f"timed out after {timeout:g} s") from exc
    except Exception as exc:
        raise SystemFailed(_describe(exc)) from exc


def measure_in_process(system: System, size: int, timeout: float) -> Measurement:
    """Resolve and run ``system`` in this process after a garbage collection."""
    fn = resolve(system.target)
    gc.collect()
    return call_system(fn, size, timeout)


def measure_isolated(bench: Benchmark, system: System, size: int, timeout: float) -> Measurement:
    """Run one measurement in a fresh ``python -m benchmarks.worker`` process."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "benchmarks.worker", bench.name, system.name, str(size)]
    cmd.append(repr(timeout))
    try:
        proc = subprocess.run(
            cmd,
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise SystemFailed(f"worker timed out after {timeout + 30:g} s") from exc
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SystemFailed(f"worker exited with {proc.returncode}: {tail}")
    reply = json.loads(lines[-1])
    if reply["status"] == "unavailable":
        raise SystemUnavailable(reply["reason"])
    if reply["status"] != "ok":
        raise SystemFailed(reply["reason"])
    data = reply["measurement"]
    return Measurement(metrics=data["metrics"], result=data["result"], series=data.get("series"))


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass
class MetricStats:
    """Median, spread and ratio of one metric of one system over the rounds."""

    median: float
    min: float
    max: float
    ratio: float | None


@dataclass
class SystemResult:
    """Everything measured for one system in one benchmark run."""

    system: System
    status: SystemStatus = "ok"
    reason: str = ""
    samples: list[Measurement] = field(default_factory=list)
    warmup_seconds: float | None = None

    def values(self, metric: str) -> list[float]:
        """Return the metric's value in every round that measured it."""
        return [s.metrics[metric] for s in self.samples if metric in s.metrics]

    @property
    def series(self) -> list[list[float]] | None:
        """The time series of the last round, if the system records one."""
        for sample in reversed(self.samples):
            if sample.series:
                return sample.series
        return None


@dataclass
class TargetResult:
    """A target and how it fared."""

    target: Target
    value: float | None
    met: bool | None
    note: str = ""

    @property
    def verdict(self) -> str:
        """``met``, ``MISSED`` or ``not evaluated (...)``."""
        if self.met is None:
            return f"not evaluated ({self.note})" if self.note else "not evaluated"
        return "met" if self.met else "MISSED"


@dataclass
class BenchmarkResult:
    """The outcome of one benchmark: per-system results, statistics and target verdicts."""

    bench: Benchmark
    size: int
    rounds: int
    systems: list[SystemResult]
    stats: dict[str, dict[str, MetricStats]] = field(default_factory=dict)
    targets: list[TargetResult] = field(default_factory=list)
    seconds: float = 0.0

    def result_for(self, name: str) -> SystemResult | None:
        """Return the result of the system called ``name``, if it was selected."""
        for r in self.systems:
            if r.system.name == name:
                return r
        return None


def compute_stats(result: BenchmarkResult) -> None:
    """Fill ``result.stats`` and ``result.targets`` from the samples."""
    bench = result.bench
    base = result.result_for(bench.baseline)
    for metric in bench.metrics:
        base_values = base.values(metric.name) if base and base.status == "ok" else []
        base_median = statistics.median(base_values) if base_values else None
        per_system: dict[str, MetricStats] = {}
        for r in result.systems:
            values = r.values(metric.name)
            if not values or r.status != "ok":
                continue
            median = statistics.median(values)
            ratio = median / base_median if base_median else None
            per_system[r.system.name] = MetricStats(median, min(values), max(values), ratio)
        result.stats[metric.name] = per_system
    result.targets = []
    for target in bench.targets:
        owner = result.result_for(target.system)
        stats = result.stats.get(target.metric, {}).get(target.system)
        if owner is None:
            result.targets.append(TargetResult(target, None, None, "system not selected"))
        elif owner.status != "ok" or stats is None:
            result.targets.append(TargetResult(target, None, None, f"system {owner.status}"))
        else:
            value, met = target.evaluate(stats)
            note = "" if met is not None else "baseline not measured"
            result.targets.append(TargetResult(target, value, met, note))


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class Options:
    """Command-line options of a run."""

    quick: bool = False
    only: list[str] | None = None
    rounds: int = DEFAULT_ROUNDS
    systems: str = "all"
    out: Path = DEFAULT_OUT
    plots: bool = True
    timeout: float | None = None
    command: str = "python -m benchmarks"


Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """Print a progress line on stderr."""
    print(message, file=sys.stderr, flush=True)


def select_systems(bench: Benchmark, which: str) -> list[System]:
    """Return the systems to run: ``all``, ``baselines`` (all but the project's), ``project``
    (the project's and the baseline), or a comma-separated list of system names (plus the
    baseline)."""
    if which == "all":
        return list(bench.systems)
    if which == "baselines":
        return [s for s in bench.systems if s.kind != "project"]
    if which == "project":
        return [s for s in bench.systems if s.kind == "project" or s.name == bench.baseline]
    wanted = {w.strip() for w in which.split(",") if w.strip()}
    return [s for s in bench.systems if s.name in wanted or s.name == bench.baseline]


def format_value(value: float, unit: str) -> str:
    """Format a metric value for humans: ``1.23 M``, ``8.4``, ``17``."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if unit == "el/s":
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {suffix}"
        return f"{value:.4g}" if abs(value) >= 100 else f"{value:.3g}"  # never 1e+03
    if unit in ("elements", "records"):
        return f"{value:,.0f}"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}" if abs(value) >= 1 else f"{value:.3f}"


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    if isinstance(value, list):
        text = f"<list of {len(value)}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_result(bench: Benchmark, m: Measurement, expected: Measurement | None) -> None:
    if not bench.check_results or expected is None:
        return
    if m.result != expected.result:
        raise SystemFailed(
            f"wrong result: got {_short_repr(m.result)}, baseline gave "
            f"{_short_repr(expected.result)}"
        )


def run_benchmark(bench: Benchmark, options: Options, log: Log = stderr_log) -> BenchmarkResult:
    """Warm up, then run ``options.rounds`` interleaved rounds of ``bench``'s systems."""
    size = bench.quick_size if options.quick else bench.size
    warm_size = size if options.quick else max(1, size // 10)
    timeout = options.timeout or (min(bench.timeout, 120.0) if options.quick else bench.timeout)
    systems = select_systems(bench, options.systems)
    # The baseline runs first in every round so the others can be checked against it.
    systems.sort(key=lambda s: s.name != bench.baseline)
    results = [SystemResult(s) for s in systems]
    result = BenchmarkResult(bench, size, options.rounds, results)
    started = time.perf_counter()
    tag = f"[{bench.name}]"
    log(
        f"{tag} {bench.title}: {size:,} {bench.size_label}, {options.rounds} rounds, "
        f"{len(systems)} systems{', isolated processes' if bench.isolated else ''}"
    )

    def measure(s: System, n: int) -> Measurement:
        if bench.isolated:
            return measure_isolated(bench, s, n, timeout)
        return measure_in_process(s, n, timeout)

    def run_one(r: SystemResult, n: int, expected: Measurement | None) -> Measurement | None:
        try:
            m = measure(r.system, n)
            _check_result(bench, m, expected)
            return m
        except SystemUnavailable as exc:
            r.status, r.reason = "unavailable", str(exc)
        except SystemFailed as exc:
            r.status, r.reason = "failed", str(exc)
        except Exception as exc:  # a harness-level surprise must not end the whole run
            r.status, r.reason = "failed", f"harness: {_describe(exc)}"
        log(f"{tag}   {r.system.name}: {r.status}: {r.reason}")
        return None

    expected: Measurement | None = None
    for r in results:
        t0 = time.perf_counter()
        m = run_one(r, warm_size, expected)
        r.warmup_seconds = time.perf_counter() - t0
        if m is not None:
            log(f"{tag} warm-up {r.system.name}: ok ({r.warmup_seconds:.2f} s)")
            if r.system.name == bench.baseline:
                expected = m
    for round_no in range(1, options.rounds + 1):
        expected = None
        for r in results:
            if r.status != "ok":
                continue
            m = run_one(r, size, expected)
            if m is None:
                continue
            r.samples.append(m)
            if r.system.name == bench.baseline:
                expected = m
            shown = ", ".join(
                f"{metric.label} {format_value(m.metrics[metric.name], metric.unit)} {metric.unit}"
                for metric in bench.metrics
                if metric.name in m.metrics
            )
            log(f"{tag} round {round_no}/{options.rounds} {r.system.name}: {shown}")
    result.seconds = time.perf_counter() - started
    compute_stats(result)
    for t in result.targets:
        log(f"{tag} target {t.target.description}: {t.verdict}")
    return result


def run(options: Options, log: Log = stderr_log) -> list[BenchmarkResult]:
    """Run the selected benchmarks and write the report (and plots) to ``options.out``."""
    from benchmarks import report

    registry = load_benchmarks()
    names = options.only or list(registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(registry)}"
        )
    if options.rounds < MIN_REAL_ROUNDS:
        log(f"note: {options.rounds} rounds is a smoke run, not a measurement (use >= 5)")
    machine = report.machine_info()
    results = [run_benchmark(registry[n], options, log) for n in names]
    options.out.mkdir(parents=True, exist_ok=True)
    images: list[Path] = []
    if options.plots:
        try:
            from benchmarks import plots

            images = plots.write_plots(results, options.out)
        except ImportError as exc:
            log(f"plots skipped: {exc}")
    md, js = report.write_reports(results, options, machine, images)
    log(f"wrote {md} and {js}" + "".join(f", {p}" for p in images))
    return results


def parse_only(values: Iterable[str] | None) -> list[str] | None:
    """Flatten repeated and comma-separated ``--only`` values."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]
