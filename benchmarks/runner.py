"""The benchmark harness: the model (benchmarks, systems, metrics, targets), the registry,
measurement in-process and in a separate process, and the round-robin runner.

How a benchmark runs:

1. Every selected system runs once on a smaller warm-up size (a tenth of the full size; the
   quick size itself with ``--quick``). A system whose code cannot be imported is marked
   *unavailable*, one that raises, times out or computes a result different from the
   baseline's is marked *failed*; neither stops the run.
2. Then ``rounds`` rounds (default :data:`DEFAULT_ROUNDS`, capped by a benchmark's
   ``max_rounds``, raised to its ``min_rounds`` outside ``--quick``) each run every remaining
   system once, in an order shuffled per round by a
   seeded random generator (the seed is recorded in the results; ``--seed`` replays an
   order), each measurement after a ``gc.collect()``. Synchronous systems are timed as
   they are; coroutine functions run in a fresh event loop (``asyncio.run``) and are timed
   inside it. After each round every result is compared with the baseline's of that round.
3. Each metric reports the median over rounds and the min-max spread; ratios are *paired*:
   in every round where both ran, system value / reference value, and the report gives the
   median of those per-round ratios and their min-max (and, for a target, in how many
   rounds it held). The reference is the benchmark's baseline, or a target's ``against``
   system, or one of the benchmark's ``references``.

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
import random
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
    "benchmarks.suite_slow_consumer",
    "benchmarks.suite_kafka_scale",
    "benchmarks.suite_model_serving",
    "benchmarks.suite_soak",
    "benchmarks.suite_state",
    "benchmarks.suite_windows",
    "benchmarks.suite_windows_context",
    "benchmarks.suite_windows_store",
    "benchmarks.suite_txn",
    "benchmarks.suite_io",
    "benchmarks.suite_observe",
    "benchmarks.suite_graphs",
    "benchmarks.suite_scoring",
]
#: Every registered benchmark by name, in registration order.
REGISTRY: dict[str, Benchmark] = {}

#: Rounds per benchmark. Nine paired ratios give a median that is a real round's figure (odd
#: count), a min-max spread that covers the per-round ratio's median with probability
#: 1 - 2 / 2**9 (> 99%), and "k of 9 rounds" counts that tell a 5-of-9 coin flip from a
#: 9-of-9 win; with the sizes of the suites the full run stays around 20 minutes on 2 CPUs.
DEFAULT_ROUNDS = 9
#: The number of rounds below which a run is labelled a smoke run, not a measurement.
MIN_REAL_ROUNDS = 5


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A measured quantity: ``name`` is the key in :attr:`Measurement.metrics`.

    ``ratio_of`` names another metric: the paired ratios of this one are then this metric
    / the reference's ``ratio_of`` (e.g. a throughput ceiling against the baseline's
    measured throughput); by default the same metric.
    """

    name: str
    unit: str
    label: str
    higher_is_better: bool
    ratio_of: str | None = None


THROUGHPUT = Metric("throughput", "el/s", "throughput", higher_is_better=True)
RSS_GROWTH = Metric("rss_growth", "MiB", "peak RSS growth", higher_is_better=False)
PEAK_IN_FLIGHT = Metric("peak_in_flight", "elements", "peak elements in flight", False)
P50 = Metric("p50", "us", "latency p50", higher_is_better=False)
P99 = Metric("p99", "us", "latency p99", higher_is_better=False)


@dataclass(frozen=True)
class Target:
    """A goal for one system's metric, with a plain-language description.

    Exactly one bound is set: ``min_ratio`` / ``max_ratio`` (the median of the per-round
    paired ratios system / reference >= / <= it; the reference is ``against``, by default
    the benchmark's baseline) or ``max_value`` / ``min_value`` (absolute bounds, for what does
    not depend on the machine: memory, elements in flight, lost records, accuracy).
    ``on="median"`` checks the median over rounds; ``on="worst"`` checks the worst round (for
    bounds that must hold every time).
    """

    system: str
    metric: str
    description: str
    min_ratio: float | None = None
    max_value: float | None = None
    min_value: float | None = None
    on: Literal["median", "worst"] = "median"
    max_ratio: float | None = None
    against: str | None = None

    def __post_init__(self) -> None:
        bounds = (self.min_ratio, self.max_ratio, self.max_value, self.min_value)
        given = [v for v in bounds if v is not None]
        if len(given) != 1:
            raise ValueError(f"target {self.description!r}: set exactly one bound")
        if self.against is not None and not self.is_ratio:
            raise ValueError(f"target {self.description!r}: `against` needs a ratio bound")

    @property
    def is_ratio(self) -> bool:
        """Whether the bound is on a paired ratio (not on an absolute value)."""
        return self.min_ratio is not None or self.max_ratio is not None

    def holds(self, value: float) -> bool:
        """Whether ``value`` (a ratio or a value, as the bound) meets the target."""
        if self.min_ratio is not None:
            return value >= self.min_ratio
        if self.max_ratio is not None:
            return value <= self.max_ratio
        if self.max_value is not None:
            return value <= self.max_value
        assert self.min_value is not None
        return value >= self.min_value

    def evaluate(self, stats: MetricStats) -> tuple[float | None, bool | None]:
        """Return the value checked and whether it meets the target (None: not evaluable).

        ``stats`` are the target system's, with ratios against this target's reference.
        """
        if self.is_ratio:
            if stats.ratio is None:
                return None, None
            return stats.ratio, self.holds(stats.ratio)
        if self.max_value is not None:
            value = stats.max if self.on == "worst" else stats.median
        else:
            value = stats.min if self.on == "worst" else stats.median
        return value, self.holds(value)


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
    #: At most this many rounds whatever ``--rounds`` says: for benchmarks on the real clock
    #: or whose targets are absolute bounds checked on the worst round (memory), where more
    #: rounds cost minutes and add nothing to a paired ratio.
    max_rounds: int | None = None
    #: At least this many rounds whatever ``--rounds`` says (not with ``--quick``): for a
    #: benchmark whose rounds spread so wide that the median ratio of a few says little
    #: (each of its measurements on a broker of its own); ``max_rounds`` still caps it.
    min_rounds: int | None = None
    #: Systems (besides the baseline) every other system's paired ratio is also reported
    #: against: a column each in the tables (e.g. the naive design a row used to be compared
    #: with, or the plain-Python limit).
    references: tuple[str, ...] = ()
    #: Run only when named with ``--only`` (not in a full run): long soak runs that check a
    #: property over minutes rather than measure a ratio (``make bench`` runs them after the
    #: full run, into a folder of their own).
    opt_in: bool = False
    #: ``"module:function"`` called with the size before the systems run at that size (in
    #: this process, and in an isolated worker before its measurement): builds input data
    #: the systems share (cached by the function's module), so no round pays for it.
    setup: str | None = None

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
            if t.against is not None and t.against not in names:
                raise ValueError(f"benchmark {self.name}: target against unknown {t.against!r}")
        for ref in self.references:
            if ref not in names or ref == self.baseline:
                raise ValueError(f"benchmark {self.name}: bad reference {ref!r}")

    def reference_names(self) -> list[str]:
        """The baseline, then every other system ratios are reported against."""
        out = [self.baseline, *self.references]
        for t in self.targets:
            if t.against is not None and t.against not in out:
                out.append(t.against)
        return out

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
class RatioStats:
    """Paired ratios of one system's metric against one reference system.

    ``ratios`` holds, for every round in which both were measured, system value / reference
    value of that round; ``median``, ``min`` and ``max`` are over those.
    """

    median: float
    min: float
    max: float
    ratios: list[float]


@dataclass
class MetricStats:
    """Median and spread of one metric of one system over the rounds, and its paired ratios.

    ``ratio`` is the median of the per-round ratios against the baseline (None when no
    round has both), ``ratio_min`` / ``ratio_max`` their spread; ``against`` has the same
    against every reference system of the benchmark (the baseline included).
    """

    median: float
    min: float
    max: float
    ratio: float | None
    ratio_min: float | None = None
    ratio_max: float | None = None
    against: dict[str, RatioStats] = field(default_factory=dict)


@dataclass
class SystemResult:
    """Everything measured for one system in one benchmark run."""

    system: System
    status: SystemStatus = "ok"
    reason: str = ""
    samples: list[Measurement] = field(default_factory=list)
    warmup_seconds: float | None = None
    #: The round number (1-based) of each sample, parallel to ``samples``.
    sample_rounds: list[int] = field(default_factory=list)

    def values(self, metric: str) -> list[float]:
        """Return the metric's value in every round that measured it."""
        return [s.metrics[metric] for s in self.samples if metric in s.metrics]

    def by_round(self, metric: str) -> dict[int, float]:
        """Return ``{round: value}`` of the metric (rounds numbered from 1)."""
        rounds = self.sample_rounds or list(range(1, len(self.samples) + 1))
        return {r: s.metrics[metric] for r, s in zip(rounds, self.samples) if metric in s.metrics}

    @property
    def series(self) -> list[list[float]] | None:
        """The time series of the last round, if the system records one."""
        for sample in reversed(self.samples):
            if sample.series:
                return sample.series
        return None


@dataclass
class TargetResult:
    """A target and how it fared; ``rounds_met`` / ``rounds`` count the rounds in which the
    target held on its own (for a ratio: that round's paired ratio)."""

    target: Target
    value: float | None
    met: bool | None
    note: str = ""
    rounds_met: int | None = None
    rounds: int | None = None

    @property
    def verdict(self) -> str:
        """``met``, ``MISSED`` or ``not evaluated (...)``."""
        if self.met is None:
            return f"not evaluated ({self.note})" if self.note else "not evaluated"
        return "met" if self.met else "MISSED"

    @property
    def rounds_text(self) -> str:
        """``"7 of 9"`` (rounds in which it held), or empty when not evaluated."""
        if self.rounds_met is None or not self.rounds:
            return ""
        return f"{self.rounds_met} of {self.rounds}"


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
    #: The order the systems ran in, per round.
    orders: list[list[str]] = field(default_factory=list)

    def result_for(self, name: str) -> SystemResult | None:
        """Return the result of the system called ``name``, if it was selected."""
        for r in self.systems:
            if r.system.name == name:
                return r
        return None


def paired_ratios(values: dict[int, float], reference: dict[int, float]) -> RatioStats | None:
    """Per-round ratios ``values[r] / reference[r]`` over the rounds both have (a zero
    reference is skipped); None when there is none."""
    ratios = [values[r] / reference[r] for r in sorted(values) if reference.get(r)]
    if not ratios:
        return None
    return RatioStats(statistics.median(ratios), min(ratios), max(ratios), ratios)


def compute_stats(result: BenchmarkResult) -> None:
    """Fill ``result.stats`` and ``result.targets`` from the samples."""
    bench = result.bench
    refs = bench.reference_names()
    for metric in bench.metrics:
        ref_rounds: dict[str, dict[int, float]] = {}
        for name in refs:
            ref = result.result_for(name)
            if ref is not None and ref.status == "ok":
                ref_rounds[name] = ref.by_round(metric.ratio_of or metric.name)
        per_system: dict[str, MetricStats] = {}
        for r in result.systems:
            values = r.values(metric.name)
            if not values or r.status != "ok":
                continue
            mine = r.by_round(metric.name)
            against = {}
            for name, ref_values in ref_rounds.items():
                paired = paired_ratios(mine, ref_values)
                if paired is not None:
                    against[name] = paired
            base = against.get(bench.baseline)
            per_system[r.system.name] = MetricStats(
                statistics.median(values),
                min(values),
                max(values),
                base.median if base else None,
                base.min if base else None,
                base.max if base else None,
                against,
            )
        result.stats[metric.name] = per_system
    result.targets = []
    for target in bench.targets:
        owner = result.result_for(target.system)
        stats = result.stats.get(target.metric, {}).get(target.system)
        if owner is None:
            result.targets.append(TargetResult(target, None, None, "system not selected"))
            continue
        if owner.status != "ok" or stats is None:
            result.targets.append(TargetResult(target, None, None, f"system {owner.status}"))
            continue
        if target.is_ratio:
            reference = target.against or bench.baseline
            paired = stats.against.get(reference)
            if paired is None:
                result.targets.append(TargetResult(target, None, None, f"{reference} not measured"))
                continue
            held = sum(target.holds(x) for x in paired.ratios)
            result.targets.append(
                TargetResult(
                    target, paired.median, target.holds(paired.median), "", held, len(paired.ratios)
                )
            )
            continue
        value, met = target.evaluate(stats)
        per_round = owner.values(target.metric)
        held = sum(target.holds(x) for x in per_round)
        result.targets.append(TargetResult(target, value, met, "", held, len(per_round)))


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
    #: Seed of the per-round order of the systems (None: drawn at random, then recorded).
    seed: int | None = None
    #: Write the committed results folder even from a tree with uncommitted changes.
    allow_dirty: bool = False

    def effective_seed(self) -> int:
        """The seed used (drawn once if none was given)."""
        if self.seed is None:
            self.seed = random.SystemRandom().randrange(1, 2**31)
        return self.seed

    @property
    def writes_committed_results(self) -> bool:
        """Whether the report goes to the committed ``benchmarks/results`` folder."""
        return self.out.resolve() == DEFAULT_OUT.resolve()


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


def _rounds_for(bench: Benchmark, options: Options) -> int:
    rounds = options.rounds
    if bench.min_rounds is not None and not options.quick:
        rounds = max(rounds, bench.min_rounds)
    if bench.max_rounds is not None:
        return max(1, min(rounds, bench.max_rounds))
    return rounds


def run_benchmark(
    bench: Benchmark, options: Options, log: Log = stderr_log, rng: random.Random | None = None
) -> BenchmarkResult:
    """Warm up, then run the rounds of ``bench``'s systems, each round in a shuffled order.

    ``rng`` shuffles the order (by default one seeded with ``options``' seed).
    """
    if rng is None:
        rng = random.Random(options.effective_seed())
    size = bench.quick_size if options.quick else bench.size
    warm_size = size if options.quick else max(1, size // 10)
    timeout = options.timeout or (min(bench.timeout, 120.0) if options.quick else bench.timeout)
    rounds = _rounds_for(bench, options)
    systems = select_systems(bench, options.systems)
    # The warm-up runs the baseline first so the others can be checked against it.
    systems.sort(key=lambda s: s.name != bench.baseline)
    results = [SystemResult(s) for s in systems]
    result = BenchmarkResult(bench, size, rounds, results)
    started = time.perf_counter()
    tag = f"[{bench.name}]"
    log(
        f"{tag} {bench.title}: {size:,} {bench.size_label}, {rounds} rounds, "
        f"{len(systems)} systems{', isolated processes' if bench.isolated else ''}"
    )

    def measure(s: System, n: int) -> Measurement:
        if bench.isolated:
            return measure_isolated(bench, s, n, timeout)
        return measure_in_process(s, n, timeout)

    def fail(r: SystemResult, status: SystemStatus, reason: str) -> None:
        r.status, r.reason = status, reason
        log(f"{tag}   {r.system.name}: {r.status}: {r.reason}")

    def run_one(r: SystemResult, n: int) -> Measurement | None:
        try:
            return measure(r.system, n)
        except SystemUnavailable as exc:
            fail(r, "unavailable", str(exc))
        except SystemFailed as exc:
            fail(r, "failed", str(exc))
        except Exception as exc:  # a harness-level surprise must not end the whole run
            fail(r, "failed", f"harness: {_describe(exc)}")
        return None

    def check(r: SystemResult, m: Measurement, expected: Measurement | None) -> bool:
        try:
            _check_result(bench, m, expected)
        except SystemFailed as exc:
            fail(r, "failed", str(exc))
            return False
        return True

    def prepare(n: int) -> None:
        if bench.setup is not None and not bench.isolated:
            resolve(bench.setup)(n)

    prepare(warm_size)
    warm_expected: Measurement | None = None
    for r in results:
        t0 = time.perf_counter()
        m = run_one(r, warm_size)
        r.warmup_seconds = time.perf_counter() - t0
        if m is None or not check(r, m, warm_expected):
            continue
        log(f"{tag} warm-up {r.system.name}: ok ({r.warmup_seconds:.2f} s)")
        if r.system.name == bench.baseline:
            warm_expected = m
    prepare(size)
    for round_no in range(1, rounds + 1):
        order = [r for r in results if r.status == "ok"]
        rng.shuffle(order)
        result.orders.append([r.system.name for r in order])
        measured: list[tuple[SystemResult, Measurement]] = []
        for r in order:
            m = run_one(r, size)
            if m is None:
                continue
            measured.append((r, m))
            shown = ", ".join(
                f"{metric.label} {format_value(m.metrics[metric.name], metric.unit)} {metric.unit}"
                for metric in bench.metrics
                if metric.name in m.metrics
            )
            log(f"{tag} round {round_no}/{rounds} {r.system.name}: {shown}")
        # Every result is checked against the baseline's of the same round once it ran.
        expected = next((m for r, m in measured if r.system.name == bench.baseline), None)
        for r, m in measured:
            if check(r, m, expected):
                r.samples.append(m)
                r.sample_rounds.append(round_no)
    result.seconds = time.perf_counter() - started
    compute_stats(result)
    for t in result.targets:
        extra = f" ({t.rounds_text} rounds)" if t.rounds_text else ""
        log(f"{tag} target {t.target.description}: {t.verdict}{extra}")
    return result


class RefusedToWrite(SystemExit):
    """The committed results folder is not written from this run (dirty tree, smoke run)."""


def check_committed_write(options: Options, tree: dict[str, Any]) -> None:
    """Refuse to write ``benchmarks/results`` (the committed results the README quotes)
    from a tree with uncommitted changes to the measured code (unless ``allow_dirty``), or
    from a quick or partial run (those go to ``--out``)."""
    if not options.writes_committed_results:
        return
    if options.quick or options.only or options.systems != "all":
        raise RefusedToWrite(
            "refusing to write the committed results (benchmarks/results) from a quick or "
            "partial run (--quick, --only, --systems): pass --out DIR"
        )
    if not tree.get("clean", False) and not options.allow_dirty:
        changed = ", ".join(tree.get("changes", [])[:10]) or tree.get("error", "unknown state")
        raise RefusedToWrite(
            "refusing to write the committed results (benchmarks/results) from a tree with "
            f"uncommitted changes to the measured code ({changed}): commit them, pass --out "
            "DIR, or --allow-dirty (the results then say the tree was dirty)"
        )


def selected_benchmarks(options: Options, registry: dict[str, Benchmark]) -> list[str]:
    """The benchmarks a run measures: those named with ``--only``, else every registered
    one that is not opt-in."""
    return options.only or [n for n, b in registry.items() if not b.opt_in]


def parse_only(values: Iterable[str] | None) -> list[str] | None:
    """Flatten repeated and comma-separated ``--only`` values."""
    if not values:
        return None
    return [name.strip() for value in values for name in value.split(",") if name.strip()]
