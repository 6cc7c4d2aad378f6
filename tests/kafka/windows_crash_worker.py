"""The worker process of ``test_windows_crash.py``: consume timestamped records into
hopping windows, write every window to a file, commit the offsets the windows made safe.

``python -m tests.kafka.windows_crash_worker BOOTSTRAP GROUP TOPIC OUT N [store]``: reads
partition 0 of ``TOPIC`` (values ``"key,timestamp"``) from the group's committed offset,
counts records per key in ``TimeWindows.of(SIZE).advance_by(STEP)`` windows, appends one
line ``key start end count`` per emitted window to ``OUT`` (flushed before the window's
commit point goes to the committer), and stops once it has read offset ``N - 1``
(completing the stream emits and commits every open window). The test SIGKILLs it at a
random moment and starts it again. With ``store``, the open windows live in a
changelogged store (``windowed(..., store=...)``): the commit point then moves past
records in open windows once their changelog writes are acknowledged.
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

SIZE, STEP = 600, 100  # seconds of event time: a window spans 6,000 records
RATE = 5000  # records per quarter second: the test has time to kill it mid-way


def parse(value: str) -> tuple[str, float]:
    key, ts = value.split(",")
    return key, float(ts)


#: With a store (``store`` given as the sixth argument): elements (or changed records) per
#: write batch; the commit point moves with the acknowledgement of each batch.
BATCH = 200


async def main(
    bootstrap: str, group: str, topic: str, out_path: str, n: int, store: bool = False
) -> None:
    last = asyncio.Event()
    tp = TopicPartition(topic, 0)
    changelog = None
    kw: dict[str, Any] = {}
    if store:
        # The open windows in a changelogged store (test_windows_store_crash.py).
        changelog = changelogged(
            Stores.in_memory("windows", cache_size=BATCH),
            ProducerSettings(bootstrap, linger_ms=5),
            settings(bootstrap, group),
        )
        kw["store"] = changelog.for_partition(tp)
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
                **kw,
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
        if changelog is not None:
            await changelog.wait_closed()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5], int(sys.argv[5]), sys.argv[6:7] == ["store"]))
