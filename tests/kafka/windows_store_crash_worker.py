"""The worker process of ``test_windows_store_crash.py``: ``windows_crash_worker`` with
its open windows in a changelogged store (``windowed(..., store=...)`` on the
with-context source), so the commit point moves past records in open windows once their
changelog writes are acknowledged.

``python -m tests.kafka.windows_store_crash_worker BOOTSTRAP GROUP TOPIC OUT N``: as
``windows_crash_worker`` (one line ``key start end count`` per emitted window, flushed
before its commit point goes to the committer; stops after offset ``N - 1``).
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from connectors.kafka import (
    Committer,
    CommitterSettings,
    Consumer,
    DrainingControl,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka.state import changelogged
from reactive import TimeWindows, Windowed
from reactive.state import Stores
from tests.kafka.support import settings
from tests.kafka.windows_crash_worker import RATE, SIZE, STEP, parse

#: Elements (or changed records) per write batch of the store: the commit point moves
#: with the acknowledgement of each batch.
BATCH = 200


async def main(bootstrap: str, group: str, topic: str, out_path: str, n: int) -> None:
    last = asyncio.Event()
    tp = TopicPartition(topic, 0)
    store = changelogged(
        Stores.in_memory("windows", cache_size=BATCH),
        ProducerSettings(bootstrap, linger_ms=5),
        settings(bootstrap, group),
    )
    with open(out_path, "a", encoding="utf-8") as out:

        def seen(record: Any) -> tuple[str, float]:
            if record.offset == n - 1:
                last.set()
            return parse(record.value)

        def write(w: Windowed[str, int]) -> Windowed[str, int]:
            out.write(f"{w.key} {w.start} {w.end} {w.value}\n")
            out.flush()
            return w

        control = (
            Consumer.source_with_offset_context(
                settings(bootstrap, group), Subscriptions.assignment(tp)
            )
            .throttle(RATE, 0.25)
            .map(seen)
            .windowed(
                TimeWindows.of(SIZE).advance_by(STEP),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                zero=lambda: 0,
                aggregate=lambda c, e: c + 1,
                store=store.for_partition(tp),
            )
            .map(write)
            .to_mat(
                Committer.sink_with_offset_context(CommitterSettings(max_interval=0.05)),
                DrainingControl,
            )
            .run()
        )
        stream_done = asyncio.ensure_future(control.stream_completion)
        waiting = asyncio.ensure_future(last.wait())
        await asyncio.wait({stream_done, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if stream_done.done():
            await stream_done  # failed before the end: raise
        await control.drain_and_shutdown()
        await store.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], int(sys.argv[5])))
