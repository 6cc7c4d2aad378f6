"""Smoke tests of the benchmark harness: it runs, reports, and never crashes on a bad system.

Nothing here asserts a speed: only that every benchmark produced figures and that the
report is written. The run covers the core suite (not the Kafka benchmark, which needs a
broker) with tiny sizes, baseline systems only, and one round, so it takes a few seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import report, suite
from benchmarks.runner import (
    THROUGHPUT,
    Benchmark,
    Options,
    System,
    Target,
    load_benchmarks,
    run_benchmark,
    select_systems,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(60)
def test_quick_run_of_baselines_reports_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--systems", "baselines"]
        + ["--only", ",".join(suite.NAMES), "--rounds", "1", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "[b1]" in proc.stderr  # progress goes to stderr
    markdown = (out / "latest.md").read_text()
    data = json.loads((out / "latest.json").read_text())
    registry = load_benchmarks()
    assert [b["name"] for b in data["benchmarks"]] == suite.NAMES
    for bench in data["benchmarks"]:
        assert f"## {bench['name']}:" in markdown
        expected = {s.name for s in select_systems(registry[bench["name"]], "baselines")}
        systems = {s["name"]: s for s in bench["systems"]}
        assert set(systems) == expected
        for name, system in systems.items():
            assert system["status"] == "ok", (bench["name"], name, system["reason"])
            assert len(system["samples"]) == 1
            for metric in bench["metrics"]:
                assert system["stats"][metric["name"]]["median"] >= 0, (bench["name"], name)
    assert (out / "throughput.png").stat().st_size > 0
    assert (out / "backpressure_inflight.png").stat().st_size > 0


def _fake_benchmark() -> Benchmark:
    return Benchmark(
        name="fake",
        title="fake",
        description="systems that work, are missing, raise, or compute a wrong result",
        systems=(
            System("identity", "builtins:abs", "baseline"),
            System("missing", "no_such_module_for_benchmarks:run", "project"),
            System("raises", "builtins:next", "peer"),
            System("wrong", "builtins:str", "peer"),
        ),
        baseline="identity",
        size=10,
        quick_size=10,
        metrics=(THROUGHPUT,),
        targets=(
            Target("identity", "throughput", "positive", min_value=0.0),
            Target("missing", "throughput", ">= 1x", min_ratio=1.0),
        ),
    )


def test_bad_systems_are_reported_not_raised(tmp_path: Path) -> None:
    options = Options(quick=True, rounds=2, out=tmp_path, plots=False)
    result = run_benchmark(_fake_benchmark(), options, log=lambda _line: None)
    status = {r.system.name: (r.status, r.reason) for r in result.systems}
    assert status["identity"] == ("ok", "")
    assert status["missing"][0] == "unavailable"
    assert "no_such_module_for_benchmarks" in status["missing"][1]
    assert status["raises"][0] == "failed" and "TypeError" in status["raises"][1]
    assert status["wrong"][0] == "failed" and "wrong result" in status["wrong"][1]
    verdicts = [t.verdict for t in result.targets]
    assert verdicts[0] == "met"
    assert verdicts[1].startswith("not evaluated")

    md, js = report.write_reports([result], options, report.machine_info())
    text = md.read_text()
    assert "unavailable: ModuleNotFoundError" in text
    assert "| identity | baseline |" in text
    assert json.loads(js.read_text())["benchmarks"][0]["name"] == "fake"
