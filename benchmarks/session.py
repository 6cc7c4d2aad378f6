"""One benchmark session: measure the selected benchmarks (:mod:`benchmarks.runner`), then
write the report (:mod:`benchmarks.report`) and the plots (:mod:`benchmarks.plots`).

It sits above the three so they import one way: ``report`` and ``plots`` read
``runner``'s result types, and ``runner`` imports neither.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from benchmarks import report
from benchmarks.runner import (
    MIN_REAL_ROUNDS,
    BenchmarkResult,
    Log,
    Options,
    check_committed_write,
    load_benchmarks,
    run_benchmark,
    selected_benchmarks,
    stderr_log,
)

if TYPE_CHECKING:
    from pathlib import Path


def run(options: Options, log: Log = stderr_log) -> list[BenchmarkResult]:
    """Run the selected benchmarks and write the report (and plots) to ``options.out``;
    writing the committed results folder also regenerates README.md's benchmark table."""
    registry = load_benchmarks()
    names = selected_benchmarks(options, registry)
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise SystemExit(
            f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(registry)}"
        )
    machine = report.machine_info()
    check_committed_write(options, machine["tree"])
    if options.rounds < MIN_REAL_ROUNDS:
        log(f"note: {options.rounds} rounds is a smoke run, not a measurement (use >= 5)")
    seed = options.effective_seed()
    log(f"order of the systems in each round shuffled with seed {seed} (--seed {seed} replays)")
    rng = random.Random(seed)
    results = [run_benchmark(registry[n], options, log, rng) for n in names]
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
    if options.writes_committed_results:
        readme = report.update_readme(js)
        log(f"regenerated the benchmark table of {readme}")
    return results
