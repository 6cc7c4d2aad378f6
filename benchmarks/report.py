"""Writing the results: ``latest.md`` (tables for humans) and ``latest.json`` (everything)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.runner import (
    MIN_REAL_ROUNDS,
    REPO_ROOT,
    BenchmarkResult,
    Options,
    SystemResult,
    TargetResult,
    format_value,
)

_PEERS = ("reactivex", "aiostream", "matplotlib")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "no commit yet"


def machine_info() -> dict[str, Any]:
    """Describe the machine, interpreter, peer library versions and the repository state."""
    versions = {}
    for name in _PEERS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "unknown"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "memory": _mem_total(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "load_average_at_start": load,
        "git": _git_commit(),
        "packages": versions,
    }


def _stats_cells(result: BenchmarkResult, r: SystemResult, metric: str, unit: str) -> list[str]:
    if r.status != "ok":
        return [f"{r.status}: {r.reason}", "", ""]
    stats = result.stats.get(metric, {}).get(r.system.name)
    if stats is None:
        return ["not measured", "", ""]
    ratio = "n/a" if stats.ratio is None else f"{stats.ratio:.2f}x"
    if r.system.name == result.bench.baseline:
        ratio = "1.00x (baseline)"
    spread = f"{format_value(stats.min, unit)} - {format_value(stats.max, unit)}"
    return [format_value(stats.median, unit), spread, ratio]


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _target_cells(targets: Sequence[TargetResult], system: str, metric: str) -> list[str]:
    mine = [t for t in targets if t.target.system == system and t.target.metric == metric]
    if not mine:
        return ["", ""]
    return ["; ".join(t.target.description for t in mine), "; ".join(t.verdict for t in mine)]


def render_markdown(
    results: Sequence[BenchmarkResult],
    options: Options,
    machine: dict[str, Any],
    images: Sequence[Path] = (),
) -> str:
    """Render the whole report as markdown."""
    lines = ["# Benchmark results", ""]
    warm = "the same size" if options.quick else "1/10 of the size"
    if options.rounds < MIN_REAL_ROUNDS or options.quick:
        lines += ["**Smoke run** (quick sizes or fewer than 5 rounds): not a measurement.", ""]
    lines += [
        f"- date: {machine['date']}",
        f"- command: `{options.command}`",
        f"- machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['memory']}; "
        f"{machine['platform']}",
        f"- python: {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()),
        f"- repository: {machine['git']}; load average at start: "
        f"{machine['load_average_at_start']}",
        f"- method: warm-up run per system at {warm}, then {options.rounds} rounds "
        "run interleaved (A B C A B C ...); median, min - max spread, ratio = median / "
        "baseline median of the same run. Every system's result is checked against the "
        "baseline's.",
        "",
    ]
    all_targets = [(res, t) for res in results for t in res.targets]
    if all_targets:
        lines += [
            "## Targets",
            "",
            "| benchmark | system | target | value | status |",
            "|---|---|---|---|---|",
        ]
        for res, t in all_targets:
            metric = next(m for m in res.bench.metrics if m.name == t.target.metric)
            if t.value is None:
                value = ""
            elif t.target.min_ratio is not None:
                value = f"{t.value:.2f}x"
            else:
                value = f"{format_value(t.value, metric.unit)} {metric.unit}"
            lines.append(
                f"| {res.bench.name} | {t.target.system} | {_escape(t.target.description)} "
                f"| {value} | {_escape(t.verdict)} |"
            )
        lines.append("")
    for res in results:
        bench = res.bench
        lines += [
            f"## {bench.name}: {bench.title}",
            "",
            _escape(bench.description),
            "",
            f"Size: {res.size:,} {bench.size_label}; baseline: {bench.baseline}; "
            f"{res.rounds} rounds; took {res.seconds:.1f} s"
            + ("; each measurement in a fresh process" if bench.isolated else "")
            + ".",
            "",
        ]
        for metric in bench.metrics:
            better = "higher is better" if metric.higher_is_better else "lower is better"
            lines += [
                f"### {metric.label} ({metric.unit}, {better})",
                "",
                "| system | kind | median | spread (min - max) | ratio vs baseline "
                "| target | status |",
                "|---|---|---|---|---|---|---|",
            ]
            for r in res.systems:
                cells = [
                    r.system.name,
                    r.system.kind,
                    *_stats_cells(res, r, metric.name, metric.unit),
                    *_target_cells(res.targets, r.system.name, metric.name),
                ]
                lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
            lines.append("")
    if images:
        lines += ["## Plots", ""]
        lines += [f"![{p.stem}]({p.name})" for p in images]
        lines.append("")
    return "\n".join(lines)


def to_json(
    results: Sequence[BenchmarkResult], options: Options, machine: dict[str, Any]
) -> dict[str, Any]:
    """Return the whole run as a JSON-serialisable dict (samples and series included)."""
    benches = []
    for res in results:
        bench = res.bench
        systems = []
        for r in res.systems:
            systems.append(
                {
                    "name": r.system.name,
                    "kind": r.system.kind,
                    "target": r.system.target,
                    "status": r.status,
                    "reason": r.reason,
                    "warmup_seconds": r.warmup_seconds,
                    "samples": [{"metrics": s.metrics} for s in r.samples],
                    "series": r.series,
                    "stats": {
                        metric: vars(per[r.system.name])
                        for metric, per in res.stats.items()
                        if r.system.name in per
                    },
                }
            )
        benches.append(
            {
                "name": bench.name,
                "title": bench.title,
                "description": bench.description,
                "size": res.size,
                "size_label": bench.size_label,
                "rounds": res.rounds,
                "seconds": res.seconds,
                "baseline": bench.baseline,
                "isolated": bench.isolated,
                "metrics": [vars(m) for m in bench.metrics],
                "systems": systems,
                "targets": [
                    {
                        **vars(t.target),
                        "value": t.value,
                        "met": t.met,
                        "verdict": t.verdict,
                    }
                    for t in res.targets
                ],
            }
        )
    return {
        "command": options.command,
        "options": {
            "quick": options.quick,
            "only": options.only,
            "rounds": options.rounds,
            "systems": options.systems,
        },
        "machine": machine,
        "benchmarks": benches,
    }


def write_reports(
    results: Sequence[BenchmarkResult],
    options: Options,
    machine: dict[str, Any],
    images: Sequence[Path] = (),
) -> tuple[Path, Path]:
    """Write ``latest.md`` and ``latest.json`` into ``options.out``; return their paths."""
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    md = out / "latest.md"
    js = out / "latest.json"
    md.write_text(render_markdown(results, options, machine, images), encoding="utf-8")
    js.write_text(json.dumps(to_json(results, options, machine), indent=1) + "\n", "utf-8")
    return md, js
