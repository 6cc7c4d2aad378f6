"""Smoke tests of the benchmark harness: it runs, reports, and never crashes on a bad system.

Nothing here asserts a speed: only that every benchmark produced figures, that every
system computed the same result as the baseline, and that the report is written. The
first run covers the core suite (``suite``: b1-b4, map_async, backpressure, latency,
fanout, balance) with tiny sizes, every system (the project's included), one round; the
second covers the operator benchmarks (``suite_ops``) the same way (``throttle_accuracy``
runs on the real clock: about 1 s per measurement). The Kafka tests (marked ``kafka``) run
the systems of ``scale_out``, ``kafka_consume_produce``, ``model_serving`` and
``direct_vs_kafka`` directly, once each, with tiny sizes on the session broker. The rest
checks the method: paired ratios, the shuffled order, the committed-results guard and that
README.md's table is the one of the committed results.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from benchmarks import (
    kafka_bench,
    report,
    suite,
    suite_kafka_scale,
    suite_model_serving,
    suite_ops,
    suite_scoring,
)
from benchmarks.runner import (
    DEFAULT_OUT,
    THROUGHPUT,
    Benchmark,
    BenchmarkResult,
    Measurement,
    Options,
    RefusedToWrite,
    System,
    SystemResult,
    Target,
    check_committed_write,
    compute_stats,
    load_benchmarks,
    run_benchmark,
    select_systems,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _cheap_collections() -> Iterator[None]:
    """The runner collects garbage before every measurement; in the test process, after
    thousands of tests, each full collection walked the whole heap (~0.3 s: these tests
    took 16 s each in the suite, 0.4 s alone). Frozen, the heap so far is skipped."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


def _quick_run(out: Path, names: list[str], systems: str) -> tuple[str, dict[str, Any], str]:
    """Run ``python -m benchmarks --quick`` on ``names``; return (markdown, json, stderr)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--quick",
            "--systems",
            systems,
            "--only",
            ",".join(names),
            "--rounds",
            "1",
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
    markdown = (out / "latest.md").read_text()
    data = json.loads((out / "latest.json").read_text())
    assert [b["name"] for b in data["benchmarks"]] == names
    return markdown, data, proc.stderr


def _assert_figures(markdown: str, data: dict[str, Any], which: str) -> None:
    """Every benchmark has a section, every selected system one ok sample per metric, and
    (where the benchmark compares results) the same result as the baseline's."""
    registry = load_benchmarks()
    for bench in data["benchmarks"]:
        assert f"## {bench['name']}:" in markdown
        expected = {s.name for s in select_systems(registry[bench["name"]], which)}
        systems = {s["name"]: s for s in bench["systems"]}
        assert set(systems) == expected
        baseline_result = systems[bench["baseline"]]["samples"][0]["result"]
        for name, system in systems.items():
            assert system["status"] == "ok", (bench["name"], name, system["reason"])
            assert len(system["samples"]) == 1
            if registry[bench["name"]].check_results:
                assert system["samples"][0]["result"] == baseline_result, (bench["name"], name)
            for metric in bench["metrics"]:
                assert system["stats"][metric["name"]]["median"] >= 0, (bench["name"], name)


@pytest.mark.subprocess_only
@pytest.mark.timeout(120)
def test_quick_run_of_core_benchmarks_with_every_system(tmp_path: Path) -> None:
    out = tmp_path / "results"
    markdown, data, stderr = _quick_run(out, suite.NAMES, "all")
    assert "[b1]" in stderr  # progress goes to stderr
    _assert_figures(markdown, data, "all")
    kinds = {s["kind"] for b in data["benchmarks"] for s in b["systems"]}
    assert "project" in kinds  # the project's variants ran, not only the baselines
    assert (out / "throughput.png").stat().st_size > 0
    assert (out / "backpressure_inflight.png").stat().st_size > 0
    assert (out / "latency.png").stat().st_size > 0


@pytest.mark.subprocess_only
@pytest.mark.timeout(120)
def test_quick_run_of_operator_benchmarks_with_every_system(tmp_path: Path) -> None:
    out = tmp_path / "results"
    markdown, data, _ = _quick_run(out, suite_ops.NAMES, "all")
    _assert_figures(markdown, data, "all")
    assert "| throttle_accuracy | project throttle | within 2% of the asked rate |" in markdown
    assert (out / "throughput.png").stat().st_size > 0


@pytest.mark.subprocess_only
@pytest.mark.timeout(120)
def test_quick_run_of_scoring_stage_benchmark_with_every_system(tmp_path: Path) -> None:
    """The two-inlet scoring row: every system (plain loop, reactivex ``with_latest_from``,
    the custom ``FanInShape2`` stage and the sample's ``ModelScoringStage``) runs and sums
    the same scores as the plain loop (the models interleaved with the data reach the stage
    in order through ``Partition``)."""
    out = tmp_path / "results"
    markdown, data, _ = _quick_run(out, suite_scoring.NAMES, "all")
    _assert_figures(markdown, data, "all")
    assert "| scoring_stage | project (custom FanInShape2 stage) | >= 0.35x the plain loop |" in (
        markdown
    )


@pytest.mark.kafka
@pytest.mark.timeout(60)
async def test_scale_out_systems_lose_nothing(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One scorer process, two, then two with one stopped midway, on the session broker.

    Not a speed test: it checks the figures exist, every record reached the output topic,
    and that the second process really was stopped before the end (a rebalance while the
    consumer fetched used to lose a batch here).
    """
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    one = await suite_kafka_scale.one_process(2_000)
    assert one.result == 2_000
    assert one.metrics["lost"] == 0
    assert one.metrics["elapsed"] > 0
    both = await suite_kafka_scale.two_processes(2_000)
    assert both.result == 2_000
    assert both.metrics["lost"] == 0
    # Large enough that the first process cannot commit everything between two polls of the
    # committed offsets (5,000 records could, on an idle machine, and then nothing was
    # stopped midway).
    two = await suite_kafka_scale.two_processes_one_stopped(30_000)
    assert two.result == 30_000
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


# -- the method: paired ratios, shuffled order, results at HEAD, README from the results --------


def _tiny(name: str, *systems: System, **fields: Any) -> Benchmark:
    """A benchmark named ``name`` over ``systems`` (the first is the baseline), size 10
    unless ``fields`` say otherwise."""
    return Benchmark(
        **{
            "name": name,
            "title": name,
            "description": f"{name}: {len(systems)} systems in the same rounds",
            "systems": systems,
            "baseline": systems[0].name,
            "size": 10,
            "quick_size": 10,
            **fields,
        }
    )


def _result_with_rounds(base: list[float], project: list[float]) -> BenchmarkResult:
    bench = _tiny(
        "paired",
        System("base", "builtins:abs", "baseline"),
        System("proj", "builtins:abs", "project"),
        targets=(Target("proj", "throughput", ">= 1.0x base", min_ratio=1.0),),
    )
    systems = []
    for system, values in zip(bench.systems, (base, project), strict=True):
        r = SystemResult(system)
        r.samples = [Measurement(metrics={"throughput": v}) for v in values]
        r.sample_rounds = list(range(1, len(values) + 1))
        systems.append(r)
    return BenchmarkResult(bench, 10, len(base), systems)


def test_ratio_is_the_median_of_per_round_paired_ratios() -> None:
    # The b1 rounds: per-round ratios 1.22, 0.91, 0.82, 1.75, 0.68 (won 2 of 5),
    # with baselines chosen so that median / median would say 1.03x ("met").
    base = [60.0, 10.0, 200.0, 60.0, 10.0]
    ratios = [1.22, 0.91, 0.82, 1.75, 0.68]
    project = [b * r for b, r in zip(base, ratios, strict=True)]
    result = _result_with_rounds(base, project)
    compute_stats(result)
    assert statistics.median(project) / statistics.median(base) > 1.0  # the old method
    stats = result.stats["throughput"]["proj"]
    assert stats.ratio == pytest.approx(0.91)
    assert (stats.ratio_min, stats.ratio_max) == (pytest.approx(0.68), pytest.approx(1.75))
    [target] = result.targets
    assert (target.verdict, target.rounds_text) == ("MISSED", "2 of 5")


def test_rounds_missing_for_one_system_are_not_paired() -> None:
    result = _result_with_rounds([10.0, 10.0, 10.0], [20.0, 5.0])
    result.systems[1].sample_rounds = [1, 3]  # round 2 failed for the project
    compute_stats(result)
    assert result.stats["throughput"]["proj"].against["base"].ratios == [2.0, 0.5]


def test_each_round_runs_the_systems_in_a_seeded_shuffled_order(tmp_path: Path) -> None:
    bench = _tiny(
        "order",
        System("abs", "builtins:abs", "baseline"),
        System("int", "builtins:int", "peer"),
        System("round", "builtins:round", "project"),
    )

    def orders(seed: int) -> list[list[str]]:
        options = Options(quick=True, rounds=4, out=tmp_path, plots=False, seed=seed)
        result = run_benchmark(bench, options, log=lambda _line: None)
        assert all(r.status == "ok" and len(r.samples) == 4 for r in result.systems)
        return result.orders

    first = orders(7)
    assert len(first) == 4 and all(sorted(o) == ["abs", "int", "round"] for o in first)
    assert {o[0] for o in first} != {"abs"}  # the baseline does not always run first
    assert len({tuple(o) for o in first}) > 1
    assert orders(7) == first  # the recorded seed replays the order


def test_min_rounds_raises_the_rounds_outside_quick_runs_and_max_rounds_caps(
    tmp_path: Path,
) -> None:
    def bench(**bounds: int) -> Benchmark:
        systems = (
            System("abs", "builtins:abs", "baseline"),
            System("int", "builtins:int", "project"),
        )
        return _tiny("rounds", *systems, **bounds)

    def rounds(b: Benchmark, **options: Any) -> int:
        result = run_benchmark(
            b, Options(out=tmp_path, plots=False, **options), log=lambda _line: None
        )
        counts = {len(r.samples) for r in result.systems}
        assert len(counts) == 1
        return counts.pop()

    assert rounds(bench(min_rounds=3), rounds=1) == 3
    assert rounds(bench(min_rounds=3), rounds=4) == 4
    assert rounds(bench(min_rounds=3), rounds=1, quick=True) == 1  # a smoke run stays short
    assert rounds(bench(min_rounds=3, max_rounds=2), rounds=1) == 2
    assert rounds(bench(max_rounds=2), rounds=4) == 2


#: Sizes ``_setup`` was called with, in order (the setup test below).
SETUP_CALLS: list[int] = []


def _setup(size: int) -> None:
    SETUP_CALLS.append(size)


def _needs_setup(size: int) -> int:
    """A system that fails unless the benchmark's setup ran for its size first."""
    if size not in SETUP_CALLS:
        raise RuntimeError(f"no setup for size {size}")
    return size


def test_setup_runs_before_the_warm_up_and_before_the_rounds(tmp_path: Path) -> None:
    SETUP_CALLS.clear()
    me = "tests.test_benchmarks_smoke:"
    bench = _tiny(
        "setup",
        System("a", me + "_needs_setup", "baseline"),
        System("b", me + "_needs_setup", "project"),
        size=20,
        quick_size=20,
        setup=me + "_setup",
    )
    options = Options(rounds=2, out=tmp_path, plots=False)
    result = run_benchmark(bench, options, log=lambda _line: None)
    assert all(r.status == "ok" and len(r.samples) == 2 for r in result.systems)
    assert SETUP_CALLS == [2, 20]  # the warm-up's size (a tenth), then the rounds'


def test_committed_results_refused_from_a_dirty_tree_or_a_smoke_run(tmp_path: Path) -> None:
    dirty = {"clean": False, "changes": [" M reactive/_ops/simple.py"]}
    clean = {"clean": True, "changes": []}
    with pytest.raises(RefusedToWrite, match=r"uncommitted changes .*reactive/_ops/simple.py"):
        check_committed_write(Options(out=DEFAULT_OUT), dirty)
    check_committed_write(Options(out=DEFAULT_OUT, allow_dirty=True), dirty)
    check_committed_write(Options(out=DEFAULT_OUT), clean)
    check_committed_write(Options(out=tmp_path), dirty)  # elsewhere: anything goes
    for partial in (Options(quick=True), Options(only=["b1"]), Options(systems="project")):
        with pytest.raises(RefusedToWrite, match="quick or partial"):
            check_committed_write(partial, clean)


def test_results_state_the_commit_and_whether_the_tree_was_clean() -> None:
    tree = report.tree_state()
    assert len(tree["commit"]) == 40 and isinstance(tree["clean"], bool)
    assert report.describe_tree(tree).startswith(tree["short"])
    assert "dirty tree: reactive/x.py" in report.describe_tree(
        {"short": "abc1234", "clean": False, "changes": [" M reactive/x.py"]}
    )


def _table(lines: list[str]) -> list[dict[str, str]]:
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in lines]
    header = rows[0]
    return [dict(zip(header, row, strict=True)) for row in rows[2:]]


def test_readme_benchmark_table_is_the_committed_results() -> None:
    data = json.loads(report.COMMITTED_JSON.read_text())
    readme = report.README.read_text()
    assert report.readme_table_lines(readme) == report.readme_block(data), (
        "README.md's benchmark table is not the one of benchmarks/results/latest.json: run "
        "`python -m benchmarks.report --readme`"
    )
    # ... and latest.md (written by the same run) has the same targets and figures
    markdown = (report.COMMITTED_JSON.parent / "latest.md").read_text().splitlines()
    start = markdown.index("## Targets") + 2
    end = markdown.index("", start)
    in_md = _table(markdown[start:end])
    in_readme = _table([line for line in report.readme_table_lines(readme) if line.startswith("|")])
    common = [k for k in in_md[0] if k in in_readme[0]]
    assert {"benchmark", "system", "target", "value", "status"} <= set(common)
    assert [{k: r[k] for k in common} for r in in_md] == [
        {k: r[k] for k in common} for r in in_readme
    ]
