"""The event-time window benchmarks (``benchmarks/suite_windows.py``): registered, and the
plain loops (the baseline) agree with the operator on small inputs, so the harness's
result check means something. Nothing here asserts a speed."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import suite_windows
from benchmarks.runner import load_benchmarks

PAIRS = [
    ("loop_tumbling", "project_tumbling"),
    ("loop_hopping", "project_hopping"),
    ("loop_session", "project_session"),
]


def test_registered() -> None:
    registry = load_benchmarks()
    assert set(suite_windows.NAMES) <= set(registry)
    assert suite_windows.NAMES == [
        "windowed_tumbling",
        "windowed_hopping",
        "windowed_session",
        "windowed_memory",
    ]


@pytest.mark.parametrize(("loop", "project"), PAIRS)
@pytest.mark.parametrize("n", [1, 2_000, 60_000])
async def test_the_loop_and_the_operator_agree(loop: str, project: str, n: int) -> None:
    expected = getattr(suite_windows, loop)(n)
    assert await getattr(suite_windows, project)(n) == expected
    windows, counted = expected
    assert counted == n * (1 if loop != "loop_hopping" else 6)
    assert windows >= 1


@pytest.mark.parametrize("source", [suite_windows.elements, suite_windows.day_elements])
def test_inputs_have_bounded_disorder(source: Any) -> None:
    xs = list(source(10_000))
    assert {k for k, _ in xs} == set(range(1000))
    running = float("-inf")
    for _, t in xs:
        running = max(running, t)
        assert running - t <= 5


def test_the_day_input_spans_a_day() -> None:
    assert 86_000 < list(suite_windows.day_elements(10_000))[-1][1] < 86_400


async def test_the_memory_systems_agree() -> None:
    expected = suite_windows.loop_tumbling_day(5_000)
    assert await suite_windows.project_tumbling_day(5_000) == expected


def test_sessions_grow_and_close() -> None:
    # A key every 6 s (gap 30): sessions grow; the 100 s pauses every 50,000 elements
    # close them, so 120,000 elements make 3 sessions per key.
    windows, counted = suite_windows.loop_session(120_000)
    assert counted == 120_000
    assert windows == 3_000
