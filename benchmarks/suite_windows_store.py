"""What keeping the open windows in a store costs (issue 14): ``windowed(...,
store=...)`` against the same ``windowed`` in memory.

- ``windowed_store``: the input of ``windowed_tumbling`` (``suite_windows``: 1,000,000
  elements, 1,000 keys, 0-5 s of disorder, tumbling 60 s windows with 5 s of grace,
  counting per key) through ``windowed(..., store=...)`` with an in-memory store and with
  a persistent (RocksDB) store in a fresh temporary directory, default ``cache_size``
  (10,000 changed records per write batch). Baseline: ``Source.windowed`` without a store
  (its tumbling fast path). Every system returns ``(windows emitted, elements counted)``.
  The store path takes the operator's general per-element path (the fast paths keep their
  windows in buckets the store does not mirror), so the ratio is the price of restartable
  windows, not of the store alone.
"""

from __future__ import annotations

import operator
import tempfile
from typing import Any

from benchmarks.runner import THROUGHPUT, Benchmark, System, register
from benchmarks.suite_windows import GRACE, SIZE, _inc, elements, project_tumbling

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

W = "benchmarks.suite_windows_store:"


async def plain_windowed(n: int) -> tuple[int, int]:
    """``Source.windowed(TimeWindows.of(60).grace(5))`` counting per key (no store)."""
    return await project_tumbling(n)


async def _stored(n: int, store: Any) -> tuple[int, int]:
    from reactive import Sink, Source, TimeWindows

    def add(acc: tuple[int, int], w: Any) -> tuple[int, int]:
        return acc[0] + 1, acc[1] + w.value

    result: tuple[int, int] = await (
        Source.from_iterable(elements(n))
        .windowed(
            TimeWindows.of(SIZE).grace(GRACE),
            key=operator.itemgetter(0),
            timestamp=operator.itemgetter(1),
            zero=int,
            aggregate=_inc,
            store=store,
        )
        .run_with(Sink.fold((0, 0), add))
    )
    return result


async def memory_store_windowed(n: int) -> tuple[int, int]:
    """The same windows kept in ``Stores.in_memory``."""
    from reactive.state import Stores

    return await _stored(n, Stores.in_memory("windows"))


async def persistent_store_windowed(n: int) -> tuple[int, int]:
    """The same windows kept in ``Stores.persistent`` (RocksDB, a fresh directory)."""
    from reactive.state import Stores

    with tempfile.TemporaryDirectory() as path:
        return await _stored(n, Stores.persistent("windows", path))


register(
    Benchmark(
        name="windowed_store",
        title="windowed count with its windows in a store (tumbling 60 s)",
        description=(
            "1,000,000 elements of `windowed_tumbling`'s input through `windowed(..., "
            "store=...)`, in-memory and persistent (RocksDB) stores, default cache_size. "
            "Baseline: `Source.windowed` without a store. Result (windows, elements)."
        ),
        systems=(
            System("windowed in memory", W + "plain_windowed", "baseline"),
            System("windowed, in-memory store", W + "memory_store_windowed", "project"),
            System("windowed, persistent store", W + "persistent_store_windowed", "project"),
        ),
        baseline="windowed in memory",
        size=1_000_000,
        quick_size=5_000,
        metrics=(THROUGHPUT,),
    )
)
NAMES.append("windowed_store")
