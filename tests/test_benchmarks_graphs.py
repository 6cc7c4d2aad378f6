"""Smoke test of the graph benchmarks (:mod:`benchmarks.suite_graphs`): every system of every
row runs with a tiny size, computes the baseline's result, and the report has the row.

Nothing here asserts a speed.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import pool_ceiling, suite_graphs

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.subprocess_only
@pytest.mark.timeout(120)
def test_quick_run_of_graph_benchmarks_with_every_system(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    names = suite_graphs.NAMES
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--no-plots",
            "--rounds",
            "1",
            "--only",
            ",".join(names),
            "--out",
            str(out),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    data = json.loads((out / "latest.json").read_text())
    markdown = (out / "latest.md").read_text()
    assert [b["name"] for b in data["benchmarks"]] == names
    assert {"graph_fanout", "graph_zip", "graph_merge_sorted"} <= set(names)
    for bench in data["benchmarks"]:
        assert f"## {bench['name']}:" in markdown
        for system in bench["systems"]:
            # ok means it ran and its result equalled the baseline's
            assert system["status"] == "ok", (bench["name"], system["name"], system["reason"])
            assert system["stats"]["throughput"]["median"] > 0


@pytest.mark.parametrize("n", [0, 1, 2, 3, 17, 100])
@pytest.mark.parametrize("system", ["bare_pool_queued", "bare_pool_direct"])
def test_pool_ceilings_sum_every_element_once(system: str, n: int) -> None:
    """The worker pool's limit systems (benchmarks/pool_ceiling.py) sum ``range(n)``, as the
    row's baseline does, and end (both workers) for any size."""
    run = getattr(pool_ceiling, system)
    assert asyncio.run(asyncio.wait_for(run(n), 5)) == n * (n - 1) // 2


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 100, 2_000])
def test_group_by_row_computes_the_plain_loop_sum(n: int) -> None:
    """``graph_group_by``'s project system (group_by -> map -> merge_substreams into a fold)
    computes what its plain-loop baseline does, at tiny sizes."""
    expected = suite_graphs.group_by_loop(n)
    assert expected == sum(2 * x for x in range(n))
    got = asyncio.run(asyncio.wait_for(suite_graphs.group_by_project(n), 10))
    assert got == expected
