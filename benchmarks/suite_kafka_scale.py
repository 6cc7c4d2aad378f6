"""Kafka ``scale_out``: one scorer process against two in one consumer group.

Before the timed part, ``size`` records (key ``b"<i>"``, value 11 features, see
:mod:`benchmarks.scale_worker`) are written to a fresh 4-partition topic. Then the
coordinator (this process) starts the scorer processes (``python -m
benchmarks.scale_worker``, each ``committable_source -> map(score) ->
Producer.committable_sink`` in one group, ``TEST_CONSUMER_PROPERTIES`` session timings),
starts the clock when every process runs its stream, and stops it when the group's
committed offsets reach the end of every partition (polled every 50 ms). The time
includes joining the group (and, with two processes, the rebalance when the second one
joins): what starting more scorers on a backlog costs and gains.

Then every process is told to stop (``drain_and_shutdown``) and the output topic is read
back: ``lost`` = produced keys missing from the output, ``duplicates`` = output records
minus distinct keys (at-least-once allows them). The third system stops one of the two
processes gracefully once half the records were committed; the other one takes over its
partitions and finishes.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a fresh
:class:`~connectors.kafka.testkit.EmbeddedBroker` per measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from typing import TYPE_CHECKING, Any

from benchmarks.runner import (
    REPO_ROOT,
    THROUGHPUT,
    Benchmark,
    Measurement,
    Metric,
    System,
    Target,
    register,
)
from benchmarks.scale_worker import features

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Partitions of the source and target topics.
PARTITIONS = 4
#: Seconds allowed for a worker to start its stream, and to stop after being told.
WORKER_START_TIMEOUT = 60.0
WORKER_STOP_TIMEOUT = 30.0
#: How often the coordinator reads the group's committed offsets.
POLL_INTERVAL = 0.05
#: Seconds without any new commit after which a measurement fails (a stalled group).
STALL_TIMEOUT = 30.0

LOST = Metric("lost", "records", "records lost", higher_is_better=False)
DUPLICATES = Metric("duplicates", "records", "duplicate records", higher_is_better=False)
S = "benchmarks.suite_kafka_scale:"

__all__ = ["one_process", "two_processes", "two_processes_one_stopped"]


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[str]:
    from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers

    external = bootstrap_servers()
    if external is not None:
        yield external
        return
    broker = await EmbeddedBroker().astart()
    try:
        yield broker.bootstrap_servers
    finally:
        await broker.astop()


async def _produce(servers: str, topic: str, size: int) -> dict[int, int]:
    """Write the ``size`` source records; return the end offset of every partition."""
    from aiokafka import AIOKafkaProducer

    from benchmarks.scale_worker import PRODUCER_OPTIONS

    ends = dict.fromkeys(range(PARTITIONS), 0)
    producer = AIOKafkaProducer(bootstrap_servers=servers, **PRODUCER_OPTIONS)
    await producer.start()
    try:
        futures = []
        for i in range(size):
            futures.append(await producer.send(topic, features(i), key=b"%d" % i))
            if len(futures) >= 10_000:
                for md in await asyncio.gather(*futures):
                    ends[md.partition] = max(ends[md.partition], md.offset + 1)
                futures.clear()
        for md in await asyncio.gather(*futures):
            ends[md.partition] = max(ends[md.partition], md.offset + 1)
    finally:
        await producer.stop()
    return ends


class _Worker:
    """One ``benchmarks.scale_worker`` process and the events it printed."""

    def __init__(self, proc: asyncio.subprocess.Process, log: Any) -> None:
        self.proc = proc
        self.log = log
        self.events: list[dict[str, Any]] = []
        self.started = asyncio.Event()
        self.reader = asyncio.ensure_future(self._read())

    @classmethod
    async def spawn(cls, servers: str, source: str, target: str, group: str) -> _Worker:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        log = tempfile.TemporaryFile()  # noqa: SIM115 - the worker's output, kept open to read on failure
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks.scale_worker",
            servers,
            source,
            target,
            group,
            cwd=REPO_ROOT,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
        return cls(proc, log)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            if line.startswith(b"{"):
                event = json.loads(line)
                self.events.append(event)
                if event["event"] == "started":
                    self.started.set()

    def failure(self) -> str | None:
        """Why the process failed, or None while it is fine."""
        for event in self.events:
            if event["event"] == "failed":
                return str(event["reason"])
        if self.proc.returncode not in (None, 0):
            self.log.seek(0)
            tail = self.log.read().decode(errors="replace").strip().splitlines()
            return f"worker exited with {self.proc.returncode}: {(tail or ['no output'])[-1]}"
        return None

    async def stop(self) -> None:
        """Ask for a graceful stop (``drain_and_shutdown``) and wait for the exit."""
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.write(b"stop\n")
                await self.proc.stdin.drain()
                self.proc.stdin.close()
        await asyncio.wait_for(self.proc.wait(), WORKER_STOP_TIMEOUT)
        await self.reader
        problem = self.failure()
        if problem is not None:
            raise RuntimeError(problem)

    async def kill(self) -> None:
        """Kill the process if it still runs (cleanup after a failure) and reap it."""
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        self.reader.cancel()
        self.log.close()


async def _read_keys(servers: str, topic: str) -> tuple[int, set[bytes]]:
    """Read the whole topic back: (records, distinct keys)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    # A long poll: the embedded broker answers nothing to a fetch whose wait is shorter
    # than its read (which grows with the batches in a partition).
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers, enable_auto_commit=False, fetch_max_wait_ms=500
    )
    await consumer.start()
    count = 0
    keys: set[bytes] = set()
    try:
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        idle_since = time.monotonic()
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=10_000)
            for records in batch.values():
                count += len(records)
                keys.update(r.key for r in records)
            if batch:
                idle_since = time.monotonic()
            caught_up = True
            for tp in tps:
                high = consumer.highwater(tp)
                if high is None or await consumer.position(tp) < high:
                    caught_up = False
            # Tansu's ListOffsets is unreliable (see testkit); the fetch high watermarks are
            # right, and an empty partition may never report one: give up after 2 s idle.
            if caught_up or time.monotonic() - idle_since > 2.0:
                return count, keys
    finally:
        await consumer.stop()


async def _scale_out(size: int, processes: int, stop_one_midway: bool) -> Measurement:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from connectors.kafka.testkit import create_topic, unique_group_id, unique_topic_name

    async with _broker() as servers:
        source = await create_topic(servers, unique_topic_name("scale-src"), PARTITIONS)
        target = await create_topic(servers, unique_topic_name("scale-dst"), PARTITIONS)
        group = unique_group_id("scale")
        ends = await _produce(servers, source, size)
        tps = [TopicPartition(source, p) for p in range(PARTITIONS)]
        offsets = AIOKafkaConsumer(
            bootstrap_servers=servers, group_id=group, enable_auto_commit=False
        )
        await offsets.start()
        workers: list[_Worker] = []
        try:
            workers = [
                await _Worker.spawn(servers, source, target, group) for _ in range(processes)
            ]
            waits = [asyncio.ensure_future(w.started.wait()) for w in workers]
            _, pending = await asyncio.wait(waits, timeout=WORKER_START_TIMEOUT)
            if pending:
                problems = [w.failure() for w in workers]
                raise RuntimeError(f"workers not started in {WORKER_START_TIMEOUT:g} s: {problems}")
            start = time.perf_counter()
            stopped_at: float | None = None
            running = list(workers)
            progress = (-1, time.monotonic())
            while True:
                committed = [(await offsets.committed(tp)) or 0 for tp in tps]
                if all(c >= ends[p] for p, c in enumerate(committed)):
                    break
                if sum(committed) != progress[0]:
                    progress = (sum(committed), time.monotonic())
                elif time.monotonic() - progress[1] > STALL_TIMEOUT:
                    raise RuntimeError(
                        f"no commit for {STALL_TIMEOUT:g} s: committed {committed} of {ends}"
                    )
                if stop_one_midway and stopped_at is None and sum(committed) >= size // 2:
                    stopped_at = sum(committed) / size
                    await running.pop().stop()
                for w in running:
                    problem = w.failure()
                    if problem is not None:
                        raise RuntimeError(problem)
                await asyncio.sleep(POLL_INTERVAL)
            elapsed = time.perf_counter() - start
            if stop_one_midway and stopped_at is None:
                raise RuntimeError(
                    "every record was committed before one process could be stopped midway; "
                    "use a larger size"
                )
            for w in running:
                await w.stop()
        finally:
            for w in workers:
                await w.kill()
            await offsets.stop()
        records, keys = await _read_keys(servers, target)
    expected = {b"%d" % i for i in range(size)}
    lost = len(expected - keys)
    metrics = {
        "elapsed": elapsed,
        "lost": float(lost),
        "duplicates": float(records - len(keys)),
    }
    if stopped_at is not None:
        metrics["stopped_at_fraction"] = stopped_at
    return Measurement(metrics=metrics, result=size)


async def one_process(size: int) -> Measurement:
    """One scorer process reading all four partitions."""
    return await _scale_out(size, 1, stop_one_midway=False)


async def two_processes(size: int) -> Measurement:
    """Two scorer processes in one consumer group (two partitions each)."""
    return await _scale_out(size, 2, stop_one_midway=False)


async def two_processes_one_stopped(size: int) -> Measurement:
    """Two scorer processes; one is stopped gracefully once half the records are committed."""
    return await _scale_out(size, 2, stop_one_midway=True)


register(
    Benchmark(
        name="scale_out",
        title="Kafka scale-out: one scorer process vs two in one consumer group",
        description=(
            "A model-serving-like scorer (decode 11 float features, dot product with 11 "
            "weights) as `Consumer.committable_source(topics) -> map -> "
            "Producer.committable_sink` over a 4-partition topic holding n records, as one "
            "OS process against two in one consumer group (`python -m "
            "benchmarks.scale_worker`); timed from every process running its stream to the "
            "group's committed offsets reaching the end of every partition (joins and "
            "rebalances included). Then the output topic is read back: lost = produced keys "
            "missing from it, duplicates = records beyond one per key. The third system stops "
            "one of the two processes (`drain_and_shutdown`) once half the records were "
            "committed. Session timeout 1 s, heartbeat 100 ms (`TEST_CONSUMER_PROPERTIES`). "
            "Embedded Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set; the broker, "
            "coordinator and scorers share the machine's CPUs."
        ),
        systems=(
            System("one process", S + "one_process", "baseline"),
            System("two processes", S + "two_processes", "project"),
            System("two processes, one stopped midway", S + "two_processes_one_stopped", "project"),
        ),
        baseline="one process",
        size=100_000,
        quick_size=5_000,
        metrics=(THROUGHPUT, LOST, DUPLICATES),
        targets=(
            Target("two processes", "throughput", ">= 1.5x one process", min_ratio=1.5),
            Target("one process", "lost", "0 lost in every round", max_value=0.0, on="worst"),
            Target("two processes", "lost", "0 lost in every round", max_value=0.0, on="worst"),
            Target(
                "two processes, one stopped midway",
                "lost",
                "0 lost in every round",
                max_value=0.0,
                on="worst",
            ),
        ),
        timeout=300.0,
        # ~30 s a round (processes, group joins): 5 paired rounds keep the run near 20 min
        max_rounds=5,
        size_label="records",
    )
)
