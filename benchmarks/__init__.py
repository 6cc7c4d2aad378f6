"""Benchmarks of the project against plain Python, asyncio and peer libraries.

Run ``python -m benchmarks`` from the repository root (``--help`` for options). The
harness is :mod:`benchmarks.runner`, the workloads are registered in :mod:`benchmarks.suite`,
implemented in :mod:`benchmarks.baselines` (everything but the project) and
:mod:`benchmarks.project` (this project's public API), and results go to
``benchmarks/results/``.
"""
