"""The true end of a partition, where ListOffsets(latest) may not say it.

The embedded broker (Tansu) answers ListOffsets(latest) with the last batch's base offset
+ 1, below the high watermark when that batch holds several records; a fetch response
carries the true high watermark. :func:`fetch_highwaters` fetches until an assigned
consumer knows it for every partition asked about; the caller positions the consumer
(on the partition's last batch: one fetch answers).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from aiokafka import AIOKafkaConsumer

__all__ = ["fetch_highwaters"]


async def fetch_highwaters(consumer: AIOKafkaConsumer, tps: Sequence[Any], timeout: float) -> bool:
    """Fetch from ``tps`` until ``consumer.highwater(tp)`` is known for each; False if
    ``timeout`` seconds passed first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while any(consumer.highwater(tp) is None for tp in tps):
        if loop.time() > deadline:
            return False
        await consumer.getmany(*tps, timeout_ms=200, max_records=1)
    return True
