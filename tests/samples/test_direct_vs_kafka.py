"""Smoke test of ``samples/direct_vs_kafka.py --quick``: it runs both pipelines against the
broker, prints its table and draws the PNG to a scratch path, leaving the README's figure
alone. Nothing here asserts a speed."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from samples.direct_vs_kafka import FULL, QUICK, README_PNG, parse_args

REPO = Path(__file__).resolve().parents[2]


def test_the_plot_goes_to_a_scratch_path_unless_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR
    assert parse_args([]) == (FULL, tmp_path / "direct_vs_kafka.png")
    assert parse_args(["--quick", "--png", "x.png"]) == (QUICK, Path("x.png"))
    assert parse_args(["--update-readme-figure"]) == (FULL, README_PNG)
    assert README_PNG == REPO / "benchmarks/results/direct_vs_kafka.png"
    assert parse_args(["--no-png"]) == (FULL, None)
    with pytest.raises(SystemExit):
        parse_args(["--png", "x.png", "--update-readme-figure"])


@pytest.mark.kafka
@pytest.mark.subprocess_only
def test_quick_run_prints_the_table_and_draws_the_plot(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    png = tmp_path / "direct_vs_kafka.png"
    readme_figure = hashlib.sha256(README_PNG.read_bytes()).hexdigest()
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, str(REPO / "samples/direct_vs_kafka.py"), "--quick"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=50,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(line for line in lines if "direct" in line and "kafka" in line)
    assert header.split("|")[2].strip() == "direct" and header.split("|")[3].strip() == "kafka"
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in lines if "|" in line}
    for name in ("records scored", "latency p50 (ms)", "latency p99 (ms)", "max backlog (records)"):
        assert name in rows
    direct_scored, kafka_scored = (int(v) for v in rows["records scored"])
    assert direct_scored > 0 and kafka_scored > 0
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot: {png}" in lines
    assert hashlib.sha256(README_PNG.read_bytes()).hexdigest() == readme_figure
