"""The event-time window benchmarks (``benchmarks/suite_windows.py``): registered, and the
plain loops (the baseline) agree with the operator on small inputs, so the harness's
result check means something. Nothing here asserts a speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import suite_windows
from benchmarks.runner import load_benchmarks

REPO_ROOT = Path(__file__).resolve().parent.parent

PAIRS = [
    ("loop_tumbling", "project_tumbling"),
    ("loop_hopping", "project_hopping"),
    ("loop_session", "project_session"),
    ("loop_tumbling", "bucket_tumbling"),
    ("loop_hopping", "bucket_hopping"),
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
    got = getattr(suite_windows, project)(n)
    assert (await got if project.startswith("project") else got) == expected
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


@pytest.mark.parametrize("kind", ["tumbling", "hopping", "session"])
def test_bytewax_counts_what_the_loop_and_the_operator_count(kind: str) -> None:
    """The peer computes the same (windows, elements) as the baseline and the operator on
    an input with sessions closing and windows closing mid-stream (60,000 elements: one
    100 s pause), so the harness compares like with like."""
    pytest.importorskip("bytewax")
    expected = getattr(suite_windows, "loop_" + kind)(60_000)
    assert getattr(suite_windows, "bytewax_" + kind)(60_000) == expected
    assert expected[0] > 1_000


def test_every_window_benchmark_names_bytewax_as_peer_with_both_targets() -> None:
    registry = load_benchmarks()
    for name in suite_windows.NAMES[:3]:
        bench = registry[name]
        peer = bench.system(suite_windows.BYTEWAX)
        assert peer.kind == "peer"
        assert {t.against for t in bench.targets} == {None, suite_windows.BYTEWAX}


@pytest.mark.subprocess_only
@pytest.mark.timeout(120)
def test_quick_run_of_the_window_benchmarks(tmp_path: Path) -> None:
    """``python -m benchmarks --quick`` on the four window benchmarks (the memory one in its
    isolated processes): every system ran and computed the baseline's result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--only",
            ",".join(suite_windows.NAMES),
            "--rounds",
            "1",
            "--out",
            str(tmp_path),
            "--no-plots",
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((tmp_path / "latest.json").read_text())
    assert [b["name"] for b in data["benchmarks"]] == suite_windows.NAMES
    for bench in data["benchmarks"]:
        systems = {s["name"]: s for s in bench["systems"]}
        expected = systems[bench["baseline"]]["samples"][0]["result"]
        for name, system in systems.items():
            assert system["status"] == "ok", (bench["name"], name, system.get("reason"))
            assert system["samples"][0]["result"] == expected, (bench["name"], name)
    memory = data["benchmarks"][-1]
    assert memory["isolated"] and memory["targets"][0]["metric"] == "rss_growth"
