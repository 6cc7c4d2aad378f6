"""The factorial demo: ``python -m samples.factorials``.

The first program of Akka Streams' quick start, translated: ``scan`` emits its zero
first, so the output starts with 1, 1, 2, 6, ... exactly as Akka prints it. The second
part folds the factorials of 1..100 and prints the last one (Python ints are
arbitrary precision).
"""

from __future__ import annotations

import asyncio
import operator

from reactive import Sink, Source


async def main() -> None:
    """Print the factorials of 0..10, then 100!."""
    await Source.from_iterable(range(1, 11)).scan(1, operator.mul).run_foreach(print)
    last = await Source.from_iterable(range(1, 101)).scan(1, operator.mul).run_with(Sink.last())
    print(f"100! = {last}")


if __name__ == "__main__":
    asyncio.run(main())
