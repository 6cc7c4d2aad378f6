"""``samples/window_marbles.py``: the README's window diagram comes from a real run."""

from __future__ import annotations

from typing import TYPE_CHECKING

from samples import window_marbles

if TYPE_CHECKING:
    from pathlib import Path


async def test_every_event_lands_in_its_windows() -> None:
    results = dict(await window_marbles.run_kinds())
    n = len(window_marbles.EVENTS)
    tumbling = results["tumbling: TimeWindows.of(10)"]
    hopping = results["hopping: TimeWindows.of(10).advance_by(5)"]
    session = results["session: SessionWindows.with_gap(4)"]
    # Arrival order keeps every event in an open window for these three kinds.
    assert sum(w.value for w in tumbling) == n
    assert sum(w.value for w in hopping) == 2 * n  # each event in two 10 s windows
    assert sum(w.value for w in session) == n
    assert [(w.key, w.start, w.end) for w in session if w.key == "a"] == [
        ("a", 1, 4),
        ("a", 11, 14),
        ("a", 23, 26),
        ("a", 36, 38),
    ]


def test_draws_the_figure_where_asked(tmp_path: Path) -> None:
    png = tmp_path / "windows.png"
    window_marbles.main(["--png", str(png)])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
