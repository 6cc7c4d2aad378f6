"""Smoke tests of the benchmark harness: it runs, reports, and never crashes on a bad system.

Nothing here asserts a speed: only that every benchmark produced figures and that the
report is written. The first run covers the core suite with tiny sizes, baseline systems
only, and one round; the second covers the operator benchmarks (``suite_ops``) with every
system, the project's included (``throttle_accuracy`` runs on the real clock: about 1 s per
measurement). The Kafka tests (marked ``kafka``) run the systems of ``scale_out``,
``kafka_consume_produce``, ``model_serving`` and ``direct_vs_kafka`` directly, once each,
with tiny sizes on the session broker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks import (
    kafka_bench,
    report,
    suite,
    suite_kafka_scale,
    suite_model_serving,
    suite_ops,
)
from benchmarks.runner import (
    THROUGHPUT,
    Benchmark,
    Measurement,
    Options,
    System,
    Target,
    load_benchmarks,
    run_benchmark,
    select_systems,
)

REPO_ROOT = Path(__file__).resolve().parent.parent


def _quick_run(out: Path, names: list[str], systems: str) -> tuple[str, dict[str, Any], str]:
    """Run ``python -m benchmarks --quick`` on ``names``; return (markdown, json, stderr)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--systems", systems]
        + ["--only", ",".join(names), "--rounds", "1", "--out", str(out)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=55,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    markdown = (out / "latest.md").read_text()
    data = json.loads((out / "latest.json").read_text())
    assert [b["name"] for b in data["benchmarks"]] == names
    return markdown, data, proc.stderr


def _assert_figures(markdown: str, data: dict[str, Any], which: str) -> None:
    """Every benchmark has a section, and every selected system one ok sample per metric."""
    registry = load_benchmarks()
    for bench in data["benchmarks"]:
        assert f"## {bench['name']}:" in markdown
        expected = {s.name for s in select_systems(registry[bench["name"]], which)}
        systems = {s["name"]: s for s in bench["systems"]}
        assert set(systems) == expected
        for name, system in systems.items():
            assert system["status"] == "ok", (bench["name"], name, system["reason"])
            assert len(system["samples"]) == 1
            for metric in bench["metrics"]:
                assert system["stats"][metric["name"]]["median"] >= 0, (bench["name"], name)


@pytest.mark.timeout(60)
def test_quick_run_of_baselines_reports_every_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "results"
    markdown, data, stderr = _quick_run(out, suite.NAMES, "baselines")
    assert "[b1]" in stderr  # progress goes to stderr
    _assert_figures(markdown, data, "baselines")
    assert (out / "throughput.png").stat().st_size > 0
    assert (out / "backpressure_inflight.png").stat().st_size > 0


@pytest.mark.timeout(60)
def test_quick_run_of_operator_benchmarks_with_every_system(tmp_path: Path) -> None:
    out = tmp_path / "results"
    markdown, data, _ = _quick_run(out, suite_ops.NAMES, "all")
    _assert_figures(markdown, data, "all")
    assert "| throttle_accuracy | project throttle | within 2% of the asked rate |" in markdown
    assert (out / "throughput.png").stat().st_size > 0


@pytest.mark.kafka
@pytest.mark.timeout(60)
async def test_scale_out_systems_lose_nothing(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One scorer process, then two with one stopped midway, on the session broker.

    Not a speed test: it checks the figures exist, every record reached the output topic,
    and that the second process really was stopped before the end (a rebalance while the
    consumer fetched used to lose a batch here).
    """
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    one = await suite_kafka_scale.one_process(2_000)
    assert one.result == 2_000
    assert one.metrics["lost"] == 0
    assert one.metrics["elapsed"] > 0
    two = await suite_kafka_scale.two_processes_one_stopped(5_000)
    assert two.result == 5_000
    assert two.metrics["lost"] == 0
    assert 0.5 <= two.metrics["stopped_at_fraction"] < 1.0


def _assert_bench_figures(name: str, system: str, m: Measurement) -> None:
    """``m`` has a finite, non-negative value for every metric the benchmark reports."""
    bench = load_benchmarks()[name]
    assert bench.system(system)
    for metric in bench.metrics:
        value = m.metrics.get(metric.name)
        assert value is not None, (name, system, metric.name, m.metrics)
        assert 0 <= value < float("inf"), (name, system, metric.name, value)


@pytest.mark.kafka
@pytest.mark.timeout(60)
async def test_kafka_and_model_serving_benchmarks_produce_figures(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kafka_consume_produce``, ``model_serving`` and ``direct_vs_kafka``, every system once
    with a tiny size on the session broker (about 15 s). Figures only, never speeds; the
    results the harness compares must agree with the baseline's."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    raw = await kafka_bench.raw_aiokafka_loop(300)
    connectors = await kafka_bench.connectors_pipeline(300)
    _assert_bench_figures("kafka_consume_produce", "raw aiokafka loop", raw)
    _assert_bench_figures("kafka_consume_produce", "connectors", connectors)
    assert raw.result == connectors.result == (300, 300)

    direct = await suite_model_serving.direct_pipeline_system(300)
    service = await suite_model_serving.kafka_service_system(300)
    _assert_bench_figures("model_serving", "direct pipeline", direct)
    _assert_bench_figures("model_serving", "kafka service", service)
    assert direct.result[0] == 300
    assert service.result == direct.result  # same records, same scores
    assert service.metrics["service_window_p99_ms"] >= 0

    for system, run in (
        ("direct", suite_model_serving.dvk_direct),
        ("kafka", suite_model_serving.dvk_kafka),
    ):
        m = await run(600)  # one second offered at 600 records/s
        _assert_bench_figures("direct_vs_kafka", system, m)
        assert m.result > 0
        assert m.series


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
