"""Marble diagram of the four window kinds, drawn from a real run of ``windowed``.

``python -m samples.window_marbles [--png PATH]`` runs one stream of timestamped events
(two keys, out of order) through tumbling, hopping, sliding and session windows and draws,
for each kind, the events as marbles on an event-time axis and every window the operator
emitted as a bar from ``start`` to ``end`` labelled with its count. By default the figure
goes to ``benchmarks/results/windows.png`` (the one README shows). In the sliding run one
event arrives after every window that could hold it has closed: it is late, so it is
dropped and the count logged (pass ``late=`` to receive such events).
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from reactive import SessionWindows, Sink, SlidingWindows, Source, TimeWindows, Windowed

#: (key, event time in seconds), in arrival order: out of order on purpose.
EVENTS: list[tuple[str, float]] = [
    ("a", 1), ("b", 2), ("a", 4), ("a", 3), ("b", 9), ("a", 11), ("b", 12),
    ("a", 14), ("a", 23), ("b", 21), ("a", 26), ("b", 33), ("a", 36), ("a", 38),
]  # fmt: skip

KINDS: list[tuple[str, Any]] = [
    ("tumbling: TimeWindows.of(10)", TimeWindows.of(10)),
    ("hopping: TimeWindows.of(10).advance_by(5)", TimeWindows.of(10).advance_by(5)),
    ("sliding: SlidingWindows.of(5)", SlidingWindows.of(5)),
    ("session: SessionWindows.with_gap(4)", SessionWindows.with_gap(4)),
]

DEFAULT_PNG = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "windows.png"


async def run_kinds() -> list[tuple[str, list[Windowed[str, int]]]]:
    """Every window each kind emits for ``EVENTS`` (counts per key)."""
    out = []
    for title, windows in KINDS:
        emitted = (
            await Source.from_iterable(EVENTS)
            .windowed(
                windows,
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                zero=lambda: 0,
                aggregate=lambda n, _: n + 1,
                merge=lambda x, y: x + y,
            )
            .run_with(Sink.seq())
        )
        out.append((title, emitted))
    return out


def draw(results: list[tuple[str, list[Windowed[str, int]]]], png: Path) -> Path:
    """Draw the marble diagram to ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"a": "tab:blue", "b": "tab:orange"}
    fig, axes = plt.subplots(len(results), 1, figsize=(10, 2.4 * len(results)), sharex=True)
    for ax, (title, emitted) in zip(axes, results):
        lanes: dict[str, list[float]] = {}
        for key in colors:
            ax.scatter(
                [t for k, t in EVENTS if k == key],
                [0 if key == "a" else 1] * sum(1 for k, _ in EVENTS if k == key),
                color=colors[key],
                zorder=3,
                label=f"key {key}",
            )
        for w in sorted(emitted, key=lambda w: (w.key, w.start, w.end)):
            base = 0 if w.key == "a" else 1
            # Greedy levels: a window goes on the lowest level whose last bar ended before it.
            ends = lanes.setdefault(w.key, [])
            level = next((i for i, end in enumerate(ends) if end <= w.start), len(ends))
            if level == len(ends):
                ends.append(w.end)
            ends[level] = max(w.end, w.start + 0.6)
            y = base + 0.18 + 0.13 * level
            left, width = w.start + 0.15, max(w.end - w.start - 0.3, 0.3)
            ax.barh(y, width, left=left, height=0.1, color=colors[w.key], alpha=0.5)
            ax.text(left + width / 2, y, str(w.value), ha="center", va="center", fontsize=7)
        ax.set_title(f"{title}: {len(emitted)} windows emitted", fontsize=10, loc="left")
        ax.set_yticks([0, 1], ["a", "b"])
        ax.set_ylim(-0.4, 1.8)
        ax.grid(axis="x", alpha=0.3)
    axes[-1].set_xlabel("event time (s); marbles = events, bars = windows (count inside)")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def main(argv: list[str] | None = None) -> None:
    """Run the windows and draw the figure."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, default=DEFAULT_PNG, help="where to draw")
    args = parser.parse_args(argv)
    results = asyncio.run(run_kinds())
    for title, emitted in results:
        print(title)
        for w in emitted:
            print(f"  {w.key} [{w.start}, {w.end}]: {w.value}")
    print(f"drew {draw(results, args.png)}")


if __name__ == "__main__":
    main()
