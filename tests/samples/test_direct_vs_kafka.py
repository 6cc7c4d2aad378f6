"""Smoke test of ``samples/direct_vs_kafka.py --quick``: it runs both pipelines against the
broker, prints its table and draws the PNG. Nothing here asserts a speed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_prints_the_table_and_draws_the_plot(
    kafka_bootstrap: str, tmp_path: Path
) -> None:
    png = tmp_path / "direct_vs_kafka.png"
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    proc = subprocess.run(
        [sys.executable, str(REPO / "samples/direct_vs_kafka.py"), "--quick", "--png", str(png)],
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
