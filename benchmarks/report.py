"""Writing the results: ``latest.md`` (tables for humans) and ``latest.json`` (everything),
and README.md's benchmark table (``python -m benchmarks.report --readme``), rendered from
``latest.json`` by the same function as ``latest.md``'s targets table."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmarks.runner import (
    MIN_REAL_ROUNDS,
    REPO_ROOT,
    BenchmarkResult,
    MetricStats,
    Options,
    SystemResult,
    TargetResult,
    _short_repr,
    format_value,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

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


#: What the benchmarks measure: a change under these paths makes the tree "dirty" for the
#: results (the results folder itself, docs and tests do not).
MEASURED_PATHS = ("reactive", "connectors", "benchmarks", "samples", "pyproject.toml")
#: Excluded from :data:`MEASURED_PATHS`: the results a run writes.
RESULTS_PATH = "benchmarks/results"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def tree_state() -> dict[str, Any]:
    """The commit measured and whether the measured code matches it.

    ``{"commit": full sha, "short": abbreviated, "clean": bool, "changes": [porcelain
    lines]}``: ``git status --porcelain`` over :data:`MEASURED_PATHS` (untracked files
    included, the results folder excluded). ``clean`` is False when git cannot tell.
    """
    commit = _git("rev-parse", "HEAD")
    short = _git("rev-parse", "--short", "HEAD")
    status = _git(
        "status",
        "--porcelain",
        "--untracked-files=all",
        "--",
        *MEASURED_PATHS,
        f":(exclude){RESULTS_PATH}",
    )
    if commit is None or short is None or status is None:
        return {"commit": None, "short": "unknown", "clean": False, "error": "git unavailable"}
    changes = [line for line in status.splitlines() if line.strip()]
    return {
        "commit": commit.strip(),
        "short": short.strip(),
        "clean": not changes,
        "changes": changes,
    }


def describe_tree(tree: dict[str, Any] | None) -> str:
    """``abc1234 (clean)`` / ``abc1234 + uncommitted changes (dirty: ...)``."""
    if not tree:
        return "unknown commit (tree state not recorded)"
    short = tree.get("short") or "unknown"
    if tree.get("clean"):
        return f"{short} (clean tree)"
    changes = tree.get("changes") or []
    shown = ", ".join(line[3:] for line in changes[:5]) + (" ..." if len(changes) > 5 else "")
    return f"{short} with uncommitted changes (dirty tree: {shown or tree.get('error', '?')})"


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
        "tree": (tree := tree_state()),
        "git": describe_tree(tree),
        "packages": versions,
    }


def _ratio_text(median: float | None, lo: float | None, hi: float | None) -> str:
    if median is None:
        return "n/a"
    if lo is None or hi is None:
        return f"{median:.2f}x"
    return f"{median:.2f}x ({lo:.2f} - {hi:.2f})"


def _stats_cells(
    result: BenchmarkResult,
    r: SystemResult,
    metric: str,
    unit: str,
    refs: Sequence[str],
    ratio_of: str | None = None,
) -> list[str]:
    if r.status != "ok":
        return [f"{r.status}: {r.reason}", ""] + [""] * len(refs)
    stats = result.stats.get(metric, {}).get(r.system.name)
    if stats is None:
        return ["not measured", ""] + [""] * len(refs)
    cells = [
        format_value(stats.median, unit),
        f"{format_value(stats.min, unit)} - {format_value(stats.max, unit)}",
    ]
    for ref in refs:
        if r.system.name == ref and ratio_of is None:
            own = "baseline" if ref == result.bench.baseline else "reference"
            cells.append(f"1.00x ({own})")
            continue
        paired = stats.against.get(ref)
        cells.append(
            "n/a" if paired is None else _ratio_text(paired.median, paired.min, paired.max)
        )
    return cells


def _escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _target_cells(targets: Sequence[TargetResult], system: str, metric: str) -> list[str]:
    mine = [t for t in targets if t.target.system == system and t.target.metric == metric]
    if not mine:
        return ["", ""]
    return [
        "; ".join(t.target.description for t in mine),
        "; ".join(
            t.verdict + (f" ({t.rounds_text} rounds)" if t.rounds_text else "") for t in mine
        ),
    ]


METHOD = (
    "warm-up run per system, then {rounds} rounds (fewer or more where a benchmark caps or "
    "raises them: its section says how many); in each round every system runs once, in "
    "an order shuffled per round (seed {seed}); median and min - max over the rounds. Ratios "
    "are paired: system / reference in the same round, reported as the median of the "
    "per-round ratios and their min - max; a ratio target is met when that median meets it, "
    "and `rounds` says in how many rounds it held on its own. Ratios are always value / "
    "reference, whatever the direction of better. Every system's result is checked against "
    "the baseline's of the same round."
)

TARGETS_HEADER = [
    "| benchmark | system | target | value | per-round spread | rounds | status |",
    "|---|---|---|---|---|---|---|",
]


def _is_ratio_target(t: dict[str, Any]) -> bool:
    return t.get("min_ratio") is not None or t.get("max_ratio") is not None


def targets_table(data: dict[str, Any]) -> list[str]:
    """The targets table (markdown lines) of a run, from its JSON (:func:`to_json`).

    The same function renders the table of ``latest.md`` and of README.md, so the two
    agree by construction (and a test checks the committed files do).
    """
    lines = list(TARGETS_HEADER)
    for bench in data["benchmarks"]:
        units = {m["name"]: m["unit"] for m in bench["metrics"]}
        for t in bench["targets"]:
            unit = units.get(t["metric"], "")
            value, spread = t.get("value"), t.get("spread")
            if _is_ratio_target(t):
                shown = "" if value is None else f"{value:.2f}x"
                spread_text = "" if not spread else f"{spread[0]:.2f}x - {spread[1]:.2f}x"
            else:
                shown = "" if value is None else f"{format_value(value, unit)} {unit}"
                spread_text = (
                    ""
                    if not spread
                    else f"{format_value(spread[0], unit)} - {format_value(spread[1], unit)} {unit}"
                )
            rounds = ""
            if t.get("rounds_met") is not None and t.get("rounds_checked"):
                rounds = f"{t['rounds_met']} of {t['rounds_checked']}"
            cells = [
                bench["name"],
                t["system"],
                t["description"],
                shown,
                spread_text,
                rounds,
                t["verdict"],
            ]
            lines.append("| " + " | ".join(_escape(c) for c in cells) + " |")
    return lines


def render_markdown(
    results: Sequence[BenchmarkResult],
    options: Options,
    machine: dict[str, Any],
    images: Sequence[Path] = (),
) -> str:
    """Render the whole report as markdown."""
    data = to_json(results, options, machine)
    lines = ["# Benchmark results", ""]
    if options.rounds < MIN_REAL_ROUNDS or options.quick:
        lines += ["**Smoke run** (quick sizes or fewer than 5 rounds): not a measurement.", ""]
    tree = machine.get("tree")
    if tree is not None and not tree.get("clean"):
        lines += [
            "**Measured from a dirty tree** (uncommitted changes to the measured code): the "
            "figures are not those of the commit named below.",
            "",
        ]
    lines += [
        f"- date: {machine['date']}",
        f"- command: `{options.command}`",
        f"- machine: {machine['cpu']}, {machine['cpus']} CPUs, {machine['memory']}; "
        f"{machine['platform']}",
        f"- python: {machine['python']}; "
        + ", ".join(f"{k} {v}" for k, v in machine["packages"].items()),
        f"- measured: commit {machine['git']}; load average at start: "
        f"{machine['load_average_at_start']}",
        "- method: " + METHOD.format(rounds=options.rounds, seed=options.seed),
        "",
    ]
    if any(res.targets for res in results):
        lines += ["## Targets", "", *targets_table(data), ""]
    for res in results:
        bench = res.bench
        refs = [n for n in bench.reference_names() if res.result_for(n) is not None]
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
            of = f"'s {metric.ratio_of}" if metric.ratio_of else ""
            ref_heads = [
                f"ratio vs {ref}{of} (median of rounds, min - max)"
                if ref == bench.baseline
                else f"ratio vs {ref}{of}"
                for ref in refs
            ]
            lines += [
                f"### {metric.label} ({metric.unit}, {better})",
                "",
                "| system | kind | median | spread (min - max) | "
                + " | ".join(_escape(h) for h in ref_heads)
                + " | target | status |",
                "|---|---|---|---|" + "---|" * len(refs) + "---|---|",
            ]
            for r in res.systems:
                cells = [
                    r.system.name,
                    r.system.kind,
                    *_stats_cells(res, r, metric.name, metric.unit, refs, metric.ratio_of),
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
                    "samples": [
                        {"round": rnd, "metrics": s.metrics, "result": _short_repr(s.result)}
                        for rnd, s in zip(
                            r.sample_rounds or range(1, len(r.samples) + 1), r.samples
                        )
                    ],
                    "series": r.series,
                    "stats": {
                        metric: _stats_json(per[r.system.name])
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
                "references": bench.reference_names(),
                "orders": res.orders,
                "targets": [
                    {
                        **vars(t.target),
                        "value": t.value,
                        "spread": _target_spread(res, t),
                        "met": t.met,
                        "verdict": t.verdict,
                        "rounds_met": t.rounds_met,
                        "rounds_checked": t.rounds,
                    }
                    for t in res.targets
                ],
            }
        )
    return {
        "format": 2,
        "command": options.command,
        "options": {
            "quick": options.quick,
            "only": options.only,
            "rounds": options.rounds,
            "systems": options.systems,
            "seed": options.seed,
            "allow_dirty": options.allow_dirty,
        },
        "method": METHOD.format(rounds=options.rounds, seed=options.seed),
        "machine": machine,
        "benchmarks": benches,
    }


def _stats_json(stats: MetricStats) -> dict[str, Any]:
    out = {k: v for k, v in vars(stats).items() if k != "against"}
    out["against"] = {name: vars(paired) for name, paired in stats.against.items()}
    return out


def _target_spread(res: BenchmarkResult, t: TargetResult) -> list[float] | None:
    """The per-round min and max of what the target checks (paired ratios for a ratio)."""
    stats = res.stats.get(t.target.metric, {}).get(t.target.system)
    if stats is None or t.met is None:
        return None
    if t.target.is_ratio:
        paired = stats.against.get(t.target.against or res.bench.baseline)
        return None if paired is None else [paired.min, paired.max]
    return [stats.min, stats.max]


# --------------------------------------------------------------------------------------------
# README.md's benchmark table
# --------------------------------------------------------------------------------------------

README = REPO_ROOT / "README.md"
COMMITTED_JSON = REPO_ROOT / RESULTS_PATH / "latest.json"
BEGIN = "<!-- benchmark-targets:begin (generated by `python -m benchmarks.report --readme` "
END = "<!-- benchmark-targets:end -->"


def readme_block(data: dict[str, Any]) -> list[str]:
    """The lines between README.md's markers, rendered from a results JSON."""
    machine = data["machine"]
    if "tree" in machine:
        measured = f"commit {describe_tree(machine['tree'])}"
    else:
        measured = f"commit {machine.get('git', 'unknown')} (tree state not recorded)"
    if data.get("format", 1) >= 2:
        method = (
            f"{data['options']['rounds']} rounds in a shuffled order (seed "
            f"{data['options']['seed']}); a ratio is the median of the per-round paired "
            "ratios, with their spread and the rounds in which the target held"
        )
    else:
        method = (
            f"{data['options']['rounds']} rounds; recorded before paired ratios: a ratio "
            "there is median / baseline median, with no per-round spread"
        )
    return [
        f"Measured at {measured} on {machine['date']}, {machine['cpu']}, "
        f"{machine['cpus']} CPUs; {method}. From "
        "[benchmarks/results/latest.md](benchmarks/results/latest.md):",
        "",
        *targets_table(data),
    ]


def render_readme(text: str, data: dict[str, Any]) -> str:
    """``text`` (README.md) with the block between the markers replaced."""
    begin = text.find(BEGIN)
    end = text.find(END)
    if begin < 0 or end < begin:
        raise SystemExit(f"README.md has no benchmark-targets markers ({BEGIN!r} ... {END!r})")
    line_end = text.index("\n", begin) + 1
    return text[:line_end] + "\n".join(readme_block(data)) + "\n" + text[end:]


def readme_table_lines(text: str) -> list[str]:
    """The block between README.md's markers, as lines (for checks)."""
    begin = text.index(BEGIN)
    line_end = text.index("\n", begin) + 1
    return text[line_end : text.index(END)].rstrip("\n").split("\n")


def update_readme(results_json: Path = COMMITTED_JSON, readme: Path = README) -> Path:
    """Rewrite README.md's benchmark table from ``results_json``; return the README path."""
    data = json.loads(results_json.read_text(encoding="utf-8"))
    text = readme.read_text(encoding="utf-8")
    new = render_readme(text, data)
    if new != text:
        readme.write_text(new, encoding="utf-8")
    return readme


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.report --readme [--check] [--results FILE]``."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Regenerate README.md's benchmark table from a results file.",
    )
    parser.add_argument("--readme", action="store_true", help="rewrite README.md's table")
    parser.add_argument(
        "--check", action="store_true", help="only check README.md agrees (exit 1 if not)"
    )
    parser.add_argument("--results", type=Path, default=COMMITTED_JSON, help="results JSON")
    args = parser.parse_args(argv)
    if not (args.readme or args.check):
        parser.error("nothing to do: pass --readme or --check")
    data = json.loads(args.results.read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    expected = render_readme(text, data)
    if args.check:
        if expected != text:
            print("README.md's benchmark table differs from", args.results, file=sys.stderr)
            return 1
        return 0
    if expected != text:
        README.write_text(expected, encoding="utf-8")
        print(f"rewrote the benchmark table of {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


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
