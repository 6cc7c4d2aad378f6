"""PNG plots of a run (matplotlib, Agg backend).

- ``throughput.png``: one horizontal bar chart per benchmark with a throughput figure, the
  bars being the median throughput per system (log scale) with min-max error bars.
- ``latency.png``: p50 and p99 per system for benchmarks that measure latency.
- ``backpressure_inflight.png``: elements in flight over time, one line per system.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from benchmarks.runner import BenchmarkResult, format_value

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

_COLORS = {"project": "#d62728", "baseline": "#1f77b4", "peer": "#7f7f7f", "limit": "#2ca02c"}
#: Line colours for peers and limits in the time-series plot (project red, baseline blue).
_OTHER_LINES = ("#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def _decade_limits(values: Sequence[float]) -> tuple[float, float]:
    """Log-axis limits on whole decades around the positive ``values``."""
    positive = [v for v in values if v > 0]
    if not positive:
        return 1.0, 10.0
    low = 10 ** math.floor(math.log10(min(positive)))
    high = 10 ** math.ceil(math.log10(max(positive)) + 0.25)  # room for the labels
    return low, high


def plot_throughput(results: Sequence[BenchmarkResult], path: Path) -> Path | None:
    """Bar chart of median throughput per system and benchmark; None if nothing to plot.

    All panels share one log-scale axis on whole decades, so bars compare across panels;
    each bar is labelled with its median and its paired ratio to the benchmark's baseline.
    """
    panels = [r for r in results if r.stats.get("throughput")]
    if not panels:
        return None
    everything = [
        v for r in panels for st in r.stats["throughput"].values() for v in (st.min, st.max)
    ]
    low, high = _decade_limits(everything)
    heights = [len(r.stats["throughput"]) for r in panels]
    fig, axes = plt.subplots(
        len(panels),
        1,
        figsize=(10, 1.0 + 0.32 * sum(heights) + 0.55 * len(panels)),
        gridspec_kw={"height_ratios": heights},
        sharex=True,
        squeeze=False,
    )
    for ax, res in zip(axes[:, 0], panels, strict=True):
        stats = res.stats["throughput"]
        rows = [r for r in res.systems if r.system.name in stats]
        ys = list(range(len(rows)))
        med = [stats[r.system.name].median for r in rows]
        errors = [
            [m - stats[r.system.name].min for m, r in zip(med, rows, strict=True)],
            [stats[r.system.name].max - m for m, r in zip(med, rows, strict=True)],
        ]
        colors = [_COLORS.get(r.system.kind, "#999999") for r in rows]
        ax.barh(ys, med, xerr=errors, color=colors, capsize=2, height=0.7)
        for y, m, r in zip(ys, med, rows, strict=True):
            ratio = stats[r.system.name].ratio
            label = format_value(m, "el/s") + (f"  ({ratio:.2f}x)" if ratio is not None else "")
            ax.text(stats[r.system.name].max * 1.15, y, label, va="center", fontsize=7)
        ax.set_yticks(ys, [r.system.name for r in rows])
        ax.invert_yaxis()
        ax.set_xscale("log")
        ax.set_xlim(low, high)
        ax.set_title(f"{res.bench.name}: {res.bench.title} ({res.size:,} el)", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(axis="x", which="major", alpha=0.4)
    axes[-1, 0].set_xlabel(
        "elements / second: median, min-max bars, (median of per-round ratios to the "
        "baseline); log scale"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(results: Sequence[BenchmarkResult], path: Path) -> Path | None:
    """Grouped bars of p50 and p99 latency per system, with the targets as dashed lines (a
    ratio target at its reference's median times the ratio); None if nothing to plot."""
    panels = [r for r in results if r.stats.get("p50")]
    if not panels:
        return None
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 1.5 + 1.3 * len(panels)), squeeze=False)
    for ax, res in zip(axes[:, 0], panels, strict=True):
        p50, p99 = res.stats["p50"], res.stats.get("p99", {})
        names = [r.system.name for r in res.systems if r.system.name in p50]
        ys = list(range(len(names)))
        values = {"p50": [p50[n].median for n in names]}
        values["p99"] = [p99[n].median if n in p99 else 0.0 for n in names]
        for offset, (label, vals) in zip((-0.2, 0.2), values.items(), strict=True):
            ax.barh([y + offset for y in ys], vals, 0.4, label=label)
            for y, v in zip(ys, vals, strict=True):
                ax.text(v * 1.08, y + offset, f"{v:.1f}", va="center", fontsize=7)
        lines = []
        for target in res.bench.targets:
            if target.metric not in ("p50", "p99"):
                continue
            bound = target.max_value
            if target.max_ratio is not None:
                # a multiple of a system of the same run: drawn at that system's median
                ref = res.stats[target.metric].get(target.against or res.bench.baseline)
                bound = None if ref is None else ref.median * target.max_ratio
            if bound is None:
                continue
            lines.append(bound)
            style = ":" if target.metric == "p50" else "--"
            ax.axvline(
                bound,
                color="#d62728",
                linestyle=style,
                lw=1,
                label=f"target: {target.description}",
            )
        ax.set_yticks(ys, names)
        ax.invert_yaxis()
        ax.set_xscale("log")
        everything = [v for vals in values.values() for v in vals] + lines
        ax.set_xlim(*_decade_limits(everything))
        ax.set_xlabel("microseconds (median over rounds; log scale)")
        ax.set_title(f"{res.bench.name}: {res.bench.title}", fontsize=9)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", which="major", alpha=0.4)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_in_flight(results: Sequence[BenchmarkResult], path: Path) -> Path | None:
    """Line plot of elements in flight over time per system; None without a series."""
    res = next((r for r in results if any(s.series for s in r.systems)), None)
    if res is None:
        return None
    fig, ax = plt.subplots(figsize=(9, 4.5))
    others = iter(_OTHER_LINES * 4)
    for r in res.systems:
        series = r.series
        if not series:
            continue
        main = r.system.kind in ("project", "baseline")
        ts = [p[0] for p in series]
        vs = [max(p[1], 0.5) for p in series]  # log scale: show 0 just under 1
        ax.plot(
            ts,
            vs,
            label=r.system.name,
            color=_COLORS[r.system.kind] if main else next(others),
            lw=1.2,
            alpha=0.9,
            linestyle="-" if main else "--",
        )
    for target in res.bench.targets:
        if target.metric == "peak_in_flight" and target.max_value is not None:
            ax.axhline(target.max_value, color="#d62728", linestyle=":", lw=1)
            ax.text(
                0,
                target.max_value * 1.15,
                f"asserted bound for {target.system}: {target.max_value:g}",
                fontsize=7,
                color="#d62728",
            )
    top = max((p[1] for r in res.systems for p in (r.series or [])), default=1.0)
    ax.set_yscale("log")
    ax.set_ylim(0.4, max(10.0, 10 ** math.ceil(math.log10(max(top, 1.0)))))
    ax.set_xlabel("seconds since start (last round)")
    ax.set_ylabel("elements in flight (produced - consumed)")
    ax.set_title(f"{res.bench.name}: {res.bench.title} ({res.size:,} el)", fontsize=10)
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(results: Sequence[BenchmarkResult], out: Path) -> list[Path]:
    """Write every plot that has data into ``out``; return the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = [
        plot_throughput(results, out / "throughput.png"),
        plot_latency(results, out / "latency.png"),
        plot_in_flight(results, out / "backpressure_inflight.png"),
    ]
    return [p for p in written if p is not None]
