"""Smoke test of the stream IO benchmarks (benchmarks/suite_io.py): every system runs at a
tiny size through the harness and agrees with the baseline. Nothing asserts a speed."""

from __future__ import annotations

from benchmarks import suite_io
from benchmarks.runner import REGISTRY, Options, run_benchmark


def test_io_benchmarks_run_and_agree() -> None:
    assert suite_io.NAMES == ["io_file_lines", "io_tcp_echo", "io_tcp_echo_64k"]
    for name in suite_io.NAMES:
        bench = REGISTRY[name]
        result = run_benchmark(
            bench, Options(quick=True, rounds=1, plots=False), log=lambda message: None
        )
        statuses = {r.system.name: r.status for r in result.systems}
        assert set(statuses.values()) == {"ok"}, (name, result)
