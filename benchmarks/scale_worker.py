"""One scorer process of the ``scale_out`` Kafka benchmark.

Usage: ``python -m benchmarks.scale_worker SERVERS SOURCE_TOPIC TARGET_TOPIC GROUP``.

Runs ``Consumer.committable_source(topics(SOURCE), group GROUP) -> map(score) ->
Producer.committable_sink`` (records scored with :func:`score`, written to TARGET with the
same key, offsets committed after the produced records were acknowledged) until a line
``stop`` arrives on stdin, stdin closes, or SIGTERM; then ``drain_and_shutdown`` (stop
fetching, produce and commit what is in flight, leave the group) and exit 0.

Prints JSON lines on stdout: ``{"event": "started"}`` once the stream runs,
``{"event": "assigned", "partitions": [...]}`` after every rebalance,
``{"event": "stopped", "scored": N, "cpu": S}`` at the end (``S``: the process's CPU
seconds, user + system, from its start), or ``{"event": "failed", "reason": ...}``
(exit status 1). A line ``stats`` on stdin is answered with ``{"event": "stats", "t": T,
"cpu": C, "idle": I}``: ``time.perf_counter()``, the process's CPU seconds and the seconds
its event loop has waited in ``select`` with nothing to run (waiting on the broker), so the
coordinator can split a part of the run into running, waiting on the broker and waiting
for a core (the rest).
"""

from __future__ import annotations

import asyncio
import json
import resource
import selectors
import signal
import struct
import sys
import time
from typing import Any

#: The scorer's model: 11 weights and a bias (a linear model over 11 features).
WEIGHTS = (0.5, -1.25, 0.75, 2.0, -0.5, 1.5, -2.25, 0.25, 1.0, -0.75, 0.125)
BIAS = 0.1
#: A source record's value: 11 little-endian doubles.
FEATURES = struct.Struct("<11d")
#: A scored record's value: one little-endian double.
SCORE = struct.Struct("<d")
#: Producer batching (the same as :mod:`benchmarks.kafka_bench`).
PRODUCER_OPTIONS: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 65536, "acks": 1}
#: Commit every 1,000 offsets or 200 ms.
COMMIT_EVERY = 1_000
COMMIT_INTERVAL = 0.2


def features(i: int) -> bytes:
    """The value of source record ``i``: 11 deterministic features."""
    return FEATURES.pack(*(((i * 31 + k * 7) % 97) / 97.0 for k in range(11)))


def score(value: bytes) -> bytes:
    """The model: decode the features, a dot product with :data:`WEIGHTS` plus the bias."""
    acc = BIAS
    for w, x in zip(WEIGHTS, FEATURES.unpack(value), strict=True):
        acc += w * x
    return SCORE.pack(acc)


class TimedSelector(selectors.DefaultSelector):
    """The platform's default selector, counting the seconds spent in :meth:`select`.

    The event loop calls ``select`` when it has nothing ready to run: the time in it is the
    time the process waited for the network (here: the broker's answers).
    """

    def __init__(self) -> None:
        super().__init__()
        #: Seconds spent in ``select`` so far.
        self.idle = 0.0

    def select(self, timeout: float | None = None) -> list[tuple[Any, int]]:
        """``select``, timed."""
        began = time.perf_counter()
        try:
            return super().select(timeout)
        finally:
            self.idle += time.perf_counter() - began


def _say(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def _dump(control: Any) -> None:
    """SIGUSR1: print the consumer's metrics and every task's stack on stderr (diagnosis)."""
    print(f"metrics: {control.metrics()}", file=sys.stderr)
    for task in asyncio.all_tasks():
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


class _Announce:
    """Rebalance listener printing every assignment."""

    def on_partitions_revoked(self, revoked: frozenset[Any]) -> None:
        """Nothing to do: the stage commits what is in flight."""

    def on_partitions_assigned(self, assigned: frozenset[Any]) -> None:
        """Print the partitions now assigned."""
        _say("assigned", partitions=sorted(tp.partition for tp in assigned))


async def serve(
    servers: str, source: str, target: str, group: str, selector: TimedSelector | None = None
) -> int:
    """Run the scorer until told to stop; return the number of records scored.

    ``selector``: the event loop's selector, whose idle time a ``stats`` line reports.
    """
    from connectors.kafka import (
        CommitterSettings,
        Consumer,
        ConsumerSettings,
        Producer,
        ProducerMessage,
        ProducerRecord,
        ProducerSettings,
        Subscriptions,
    )
    from connectors.kafka.testkit import TEST_CONSUMER_PROPERTIES
    from reactive import Keep, Materializer

    consumer_settings = ConsumerSettings(
        servers, group, auto_offset_reset="earliest", properties=TEST_CONSUMER_PROPERTIES
    )
    producer_settings = ProducerSettings(servers, properties=PRODUCER_OPTIONS)
    committer_settings = CommitterSettings(max_batch=COMMIT_EVERY, max_interval=COMMIT_INTERVAL)
    scored = 0

    def envelope(message: Any) -> Any:
        nonlocal scored
        scored += 1
        record = message.record
        return ProducerMessage.single(
            ProducerRecord(target, score(record.value), key=record.key),
            message.committable_offset,
        )

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    async def watch_stdin() -> None:
        while True:
            line = await reader.readline()
            if line.strip() == b"stats":
                idle = selector.idle if selector is not None else None
                _say("stats", t=time.perf_counter(), cpu=time.process_time(), idle=idle)
                continue
            if not line or line.strip() == b"stop":
                stop.set()
                return

    subscription = Subscriptions.topics(source).with_rebalance_listener(_Announce())
    async with Materializer() as materializer:
        control, done = (
            Consumer.committable_source(consumer_settings, subscription)
            .map(envelope)
            .to_mat(Producer.committable_sink(producer_settings, committer_settings), Keep.both)
            .run(materializer)
        )
        loop.add_signal_handler(signal.SIGUSR1, _dump, control)
        _say("started")
        stdin_task = asyncio.ensure_future(watch_stdin())
        stop_task = asyncio.ensure_future(stop.wait())
        done_future = asyncio.ensure_future(done)
        try:
            await asyncio.wait({stop_task, done_future}, return_when=asyncio.FIRST_COMPLETED)
            await control.drain_and_shutdown(done_future)
        finally:
            stdin_task.cancel()
            stop_task.cancel()
    return scored


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``SERVERS SOURCE_TOPIC TARGET_TOPIC GROUP``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 4:
        print(
            "usage: python -m benchmarks.scale_worker SERVERS SOURCE TARGET GROUP", file=sys.stderr
        )
        return 2
    selector = TimedSelector()
    try:
        with asyncio.Runner(loop_factory=lambda: asyncio.SelectorEventLoop(selector)) as runner:
            scored = runner.run(serve(args[0], args[1], args[2], args[3], selector))
    except Exception as exc:  # reported to the coordinator, which fails the measurement
        _say("failed", reason=f"{type(exc).__name__}: {exc}")
        return 1
    usage = resource.getrusage(resource.RUSAGE_SELF)
    _say("stopped", scored=scored, cpu=usage.ru_utime + usage.ru_stime)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
