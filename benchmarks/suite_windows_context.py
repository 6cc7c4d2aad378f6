"""What committing windows correctly costs (issue 13): ``windowed`` on a
``SourceWithContext`` against the same ``windowed`` without contexts.

- ``windowed_with_context``: the input of ``windowed_tumbling`` (``suite_windows``:
  1,000,000 elements, 1,000 keys, 0-5 s of disorder, tumbling 60 s windows with 5 s of
  grace, counting per key), each element carrying a ``(partition, offset)`` context over 4
  partitions, through ``SourceWithContext.windowed``: every emitted window carries the
  commit point made safe with it (a per-partition low watermark over open windows).
  Baseline: ``Source.windowed`` on the bare elements (no context, nothing to commit).
  Both return ``(windows emitted, elements counted)``.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from benchmarks.runner import THROUGHPUT, Benchmark, System, register
from benchmarks.suite_windows import GRACE, SIZE, _inc, elements, project_tumbling

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

PARTITIONS = 4

W = "benchmarks.suite_windows_context:"


def with_offsets(n: int) -> Iterator[tuple[tuple[int, float], tuple[int, int]]]:
    """``elements(n)``, element ``i`` from partition ``i % 4`` at offset ``i // 4``."""
    for i, e in enumerate(elements(n)):
        yield e, (i % PARTITIONS, i // PARTITIONS)


async def plain_windowed(n: int) -> tuple[int, int]:
    """``Source.windowed(TimeWindows.of(60).grace(5))`` counting per key (no context)."""
    return await project_tumbling(n)


async def windowed_with_context(n: int) -> tuple[int, int]:
    """The same windows through ``SourceWithContext.windowed``, commit points attached."""
    from reactive import Sink, Source, SourceWithContext, TimeWindows

    def add(acc: tuple[int, int], pair: Any) -> tuple[int, int]:
        return acc[0] + 1, acc[1] + pair[0].value

    result: tuple[int, int] = await (
        SourceWithContext.from_tuples(Source.from_iterable(with_offsets(n)))
        .windowed(
            TimeWindows.of(SIZE).grace(GRACE),
            key=operator.itemgetter(0),
            timestamp=operator.itemgetter(1),
            zero=int,
            aggregate=_inc,
        )
        .as_source()
        .run_with(Sink.fold((0, 0), add))
    )
    return result


register(
    Benchmark(
        name="windowed_with_context",
        title="windowed count with commit points (tumbling 60 s)",
        description=(
            "1,000,000 elements of `windowed_tumbling`'s input, each with a (partition, "
            "offset) context over 4 partitions, through `SourceWithContext.windowed` (each "
            "window carries the commit point made safe with it). Baseline: `Source.windowed` "
            "on the bare elements. Result (windows, elements)."
        ),
        systems=(
            System("windowed without context", W + "plain_windowed", "baseline"),
            System("windowed with context", W + "windowed_with_context", "project"),
        ),
        baseline="windowed without context",
        size=1_000_000,
        quick_size=5_000,
        metrics=(THROUGHPUT,),
    )
)
NAMES.append("windowed_with_context")
