"""``Source.tick`` after a stalled event loop: one tick, then the next an interval later
(Akka's TickSource schedules with a fixed delay). Before, it caught up: the ticks missed
during the stall came in a burst, which breaks ``zip`` with a tick as a rate limiter.

Real clock (a stall cannot happen on ManualClock, whose timers fire at their instants);
nothing here depends on the machine's speed: with a fixed delay the tick after the first
one past the stall is scheduled a whole interval after it, however late it runs.
"""

from __future__ import annotations

import asyncio
import time

from reactive import Keep, Materializer, Sink, Source


async def test_no_burst_of_missed_ticks_after_a_stall(materializer: Materializer) -> None:
    arrivals: list[float] = []
    first = asyncio.get_running_loop().create_future()

    def seen(_: str) -> None:
        arrivals.append(time.monotonic())
        if not first.done():
            first.set_result(None)

    cancellable, done = (
        Source.tick(0.05, 0.2, "tick").to_mat(Sink.foreach(seen), Keep.both).run(materializer)
    )
    await asyncio.wait_for(first, 10)
    time.sleep(1.0)  # noqa: ASYNC251 - the loop stalls: four or five ticks are missed
    stalled = time.monotonic()
    await asyncio.sleep(0.5)
    cancellable.cancel()
    await done
    after = [t for t in arrivals if t >= stalled]
    assert after, arrivals
    # no second tick within half an interval of the first one past the stall
    assert not [t for t in after[1:] if t - after[0] < 0.1], [t - after[0] for t in after]
