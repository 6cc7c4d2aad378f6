"""Command line: ``python -m benchmarks [--quick] [--only NAME] [--rounds N] ...``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from benchmarks.runner import (
    DEFAULT_OUT,
    DEFAULT_ROUNDS,
    Options,
    load_benchmarks,
    parse_only,
    select_systems,
)
from benchmarks.session import run


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of ``python -m benchmarks``."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run the benchmarks and write a markdown/JSON report and PNG plots.",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run with tiny sizes")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only these benchmarks (repeatable or comma-separated)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=DEFAULT_ROUNDS,
        help=f"measured rounds per system after the warm-up (default {DEFAULT_ROUNDS})",
    )
    parser.add_argument(
        "--systems",
        default="all",
        help="all (default), baselines (everything but the project), project (the project's "
        "systems and each baseline), or comma-separated system names",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default {DEFAULT_OUT})"
    )
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--timeout", type=float, default=None, help="seconds allowed per measurement"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the per-round order of the systems (default: drawn, then recorded)",
    )
    parser.add_argument(
        "--allow-dirty",
        action="store_true",
        help="write the committed results (benchmarks/results) even with uncommitted changes "
        "to the measured code (the results say so)",
    )
    parser.add_argument("--list", action="store_true", help="list benchmarks and systems")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and run; return the exit status."""
    args = build_parser().parse_args(argv)
    if args.rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    argv_used = sys.argv[1:] if argv is None else argv
    options = Options(
        quick=args.quick,
        only=parse_only(args.only),
        rounds=args.rounds,
        systems=args.systems,
        out=args.out,
        plots=not args.no_plots,
        timeout=args.timeout,
        command=shlex.join(["python", "-m", "benchmarks", *argv_used]),
        seed=args.seed,
        allow_dirty=args.allow_dirty,
    )
    if args.list:
        for name, bench in load_benchmarks().items():
            print(f"{name}: {bench.title} ({bench.size:,} {bench.size_label})")
            for s in select_systems(bench, options.systems):
                mark = " (baseline)" if s.name == bench.baseline else ""
                print(f"    [{s.kind}] {s.name}{mark} -> {s.target}")
        return 0
    run(options)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
