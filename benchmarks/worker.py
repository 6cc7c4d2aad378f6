"""Run one measurement in this fresh process and report it, with its peak RSS growth.

Usage: ``python -m benchmarks.worker BENCH SYSTEM SIZE [TIMEOUT]`` (seconds, default the
benchmark's). Prints one JSON line on stdout:
``{"status": "ok", "measurement": {...}}``, or ``{"status": "unavailable" | "failed",
"reason": "..."}``.

Memory method (Linux): the system first runs once on a tiny size so that its imports, the
event loop and one-off caches exist; then ``gc.collect()``, the kernel's peak-RSS mark is
reset (``5`` written to ``/proc/self/clear_refs``) and ``VmRSS`` is read as the baseline;
after the real run, ``VmHWM`` (the peak RSS since the reset) minus the baseline is the peak
RSS growth of the workload. Where the reset is not possible, the peak since process start
is used, which can only overstate the growth.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

from benchmarks.runner import (
    SystemFailed,
    SystemUnavailable,
    call_system,
    load_benchmarks,
    resolve,
)

#: Size of the in-process warm-up run that precedes the RSS baseline.
WARMUP_SIZE = 1000
_STATUS = Path("/proc/self/status")


def read_status_kib(field: str) -> int | None:
    """Return a ``VmRSS``/``VmHWM``-style field of ``/proc/self/status`` in KiB."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process; return whether it worked."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_kib() -> int:
    hwm = read_status_kib("VmHWM")
    if hwm is not None:
        return hwm
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def measure(
    bench_name: str, system_name: str, size: int, timeout: float | None = None
) -> dict[str, object]:
    """Run the system once small, then once at ``size``; return the JSON reply."""
    bench = load_benchmarks()[bench_name]
    system = bench.system(system_name)
    timeout = timeout or bench.timeout
    try:
        fn = resolve(system.target)
        if bench.setup is not None:
            resolve(bench.setup)(size)
        call_system(fn, min(size, WARMUP_SIZE), timeout)
        gc.collect()
        reset = reset_peak_rss()
        baseline = read_status_kib("VmRSS") or _peak_kib()
        m = call_system(fn, size, timeout)
        peak = _peak_kib()
    except SystemUnavailable as exc:
        return {"status": "unavailable", "reason": str(exc)}
    except SystemFailed as exc:
        return {"status": "failed", "reason": str(exc)}
    m.metrics["rss_growth"] = max(0, peak - baseline) / 1024.0
    m.metrics["rss_baseline"] = baseline / 1024.0
    m.metrics["rss_peak"] = peak / 1024.0
    m.metrics["rss_peak_reset"] = 1.0 if reset else 0.0
    return {"status": "ok", "measurement": m.to_json()}


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``BENCH SYSTEM SIZE [TIMEOUT]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (3, 4):
        print("usage: python -m benchmarks.worker BENCH SYSTEM SIZE [TIMEOUT]", file=sys.stderr)
        return 2
    timeout = float(args[3]) if len(args) == 4 else None
    reply = measure(args[0], args[1], int(args[2]), timeout)
    print(json.dumps(reply), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
