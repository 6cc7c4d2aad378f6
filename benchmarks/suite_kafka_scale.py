"""Kafka ``scale_out``: one scorer process against two in one consumer group.

Before the timed part, ``size`` records (key ``b"<i>"``, value 11 features, see
:mod:`benchmarks.scale_worker`) are written to a fresh 4-partition topic. Then the
coordinator (this process) starts the scorer processes (``python -m
benchmarks.scale_worker``, each ``committable_source -> map(score) ->
Producer.committable_sink`` in one group, ``TEST_CONSUMER_PROPERTIES`` session timings),
starts the clock when every process runs its stream, and stops it when the group's
committed offsets reach the end of every partition (polled every 50 ms). The time
includes joining the group (and, with two processes, the rebalance when the second one
joins): what starting more scorers on a backlog costs and gains. ``throughput`` is size /
that time (not the whole call, which also starts the broker, pre-loads the topic and reads
the output back); ``joined`` is when every process had printed its first assignment,
``throughput_after_join`` size / the rest of the timed part.

Then every process is told to stop (``drain_and_shutdown``) and the output topic is read
back: ``lost`` = produced keys missing from the output, ``duplicates`` = output records
minus distinct keys (at-least-once allows them). The third system stops one of the two
processes gracefully once half the records were committed; the other one takes over its
partitions and finishes.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a fresh
:class:`~connectors.kafka.testkit.EmbeddedBroker` per measurement.

Where the CPU goes: the CPU seconds (user + system, every thread) the broker, each scorer
process and the coordinator spend in the timed part are read from ``/proc`` at its start
and end (a scorer stopped midway reports its own total when it exits), and so is the whole
machine's busy time. :func:`cpu_figures` turns them into CPU per 1,000 records, the cores
kept busy, the cores other processes took, and the CPU ceiling: the throughput at which
the measured CPU per record would fill the machine's cores. Its ratio column is against
the one-process system's measured throughput: the speed-up the CPU allows. The
one-process system also reports :func:`scale_ceiling`, the best two processes can do from
that run (its join kept whole, the rest halved, no faster than the CPU allows). Without a
broker process of our own (``KAFKA_BOOTSTRAP_SERVERS``) or without ``/proc``, the figures
that need them are left out.

Where the scorers wait, after the join: each scorer process answers a ``stats`` request
(at the join and at the end of the timed part) with its CPU seconds and the seconds its
event loop sat in ``select`` with nothing to run. :func:`wait_split` turns the two into
shares of the window: ``scorer_idle`` (waiting on the broker: fetch answers, produce acks,
commits) and ``scorer_cpu_wait`` (neither running nor idle: ready to run and waiting for a
core, which other processes took). ``broker_thread_cores`` is the busiest broker thread's
CPU over the same window (:func:`busiest_thread`, from ``/proc/<pid>/task``): 1.0 would
mean one broker thread saturated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
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
JOINED = Metric(
    "joined", "s", "group joined after (every scorer process got its first partitions)", False
)
AFTER_JOIN = Metric(
    "throughput_after_join", "el/s", "throughput after the join (n / (timed part - joined))", True
)
#: CPU per 1,000 records, in CPU milliseconds (= CPU microseconds per record).
CPU_PER_1K = "CPU ms/1k records"
BROKER_CPU = Metric("broker_cpu", CPU_PER_1K, "broker CPU per 1,000 records", False)
SCORER_CPU = Metric(
    "scorer_cpu", CPU_PER_1K, "scorer processes' CPU per 1,000 records (all of them)", False
)
COORDINATOR_CPU = Metric(
    "coordinator_cpu", CPU_PER_1K, "coordinator (benchmark process) CPU per 1,000 records", False
)
BUSY_CORES = Metric(
    "busy_cores", "cores", "cores kept busy after the join (broker + scorers + coordinator)", True
)
OTHER_CORES = Metric("other_cores", "cores", "cores taken by other processes after the join", False)
CPU_CEILING = Metric(
    "cpu_ceiling",
    "el/s",
    "CPU ceiling: the throughput at which the measured CPU per record fills the machine's "
    "cores (a scorer process on at most one)",
    True,
    ratio_of="throughput",
)
BROKER_THREAD = Metric(
    "broker_thread_cores",
    "cores",
    "busiest broker thread after the join (1 = one thread saturated)",
    False,
)
SCORER_IDLE = Metric(
    "scorer_idle",
    "share",
    "scorers' time after the join waiting on the broker (event loop idle; mean of scorers)",
    False,
)
SCORER_CPU_WAIT = Metric(
    "scorer_cpu_wait",
    "share",
    "scorers' time after the join waiting for a core (neither running nor idle; mean)",
    False,
)
CPU_METRICS = (
    BROKER_CPU,
    SCORER_CPU,
    COORDINATOR_CPU,
    BUSY_CORES,
    OTHER_CORES,
    CPU_CEILING,
    BROKER_THREAD,
    SCORER_IDLE,
    SCORER_CPU_WAIT,
)
TWO_PROCESS_CEILING = Metric(
    "two_process_ceiling",
    "el/s",
    "two-process ceiling, from the one-process run: its join kept, the rest halved, no "
    "faster than the CPU allows",
    True,
    ratio_of="throughput",
)
S = "benchmarks.suite_kafka_scale:"

__all__ = [
    "CpuSplit",
    "busiest_thread",
    "cpu_figures",
    "machine_cpu",
    "one_process",
    "process_cpu",
    "scale_ceiling",
    "two_processes",
    "two_processes_one_stopped",
    "thread_cpu",
    "wait_split",
]

#: Clock ticks per second of ``/proc``'s CPU times.
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu(pid: int) -> float | None:
    """CPU seconds (user + system, every thread) process ``pid`` has used so far.

    None when ``/proc`` cannot tell (not Linux, or the process is gone).
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # After "pid (comm)": state is field 3, utime and stime fields 14 and 15.
    fields = text.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) each thread of process ``pid`` has used so far, by thread
    id; empty when ``/proc`` cannot tell."""
    out: dict[int, float] = {}
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            fields = (task / "stat").read_text().rpartition(")")[2].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / _TICK
    return out


def busiest_thread(start: dict[int, float], end: dict[int, float], elapsed: float) -> float:
    """The cores the busiest thread used between two :func:`thread_cpu` readings
    ``elapsed`` seconds apart (a thread born in between counts from zero)."""
    if elapsed <= 0:
        raise ValueError(f"busiest_thread: elapsed must be > 0, got {elapsed}")
    return max((cpu - start.get(tid, 0.0) for tid, cpu in end.items()), default=0.0) / elapsed


def wait_split(first: dict[str, float], second: dict[str, float]) -> tuple[float, float]:
    """Shares of the time between two ``stats`` answers of one scorer process: (waiting on
    the broker, waiting for a core).

    The process either runs (its CPU seconds), or its event loop waits in ``select`` with
    nothing to run (``idle``: for the broker's answers), or it is ready and not running:
    the rest, the time it waited for a core. Clock ticks of 10 ms can make the rest
    slightly negative: it is clamped to 0.
    """
    wall = second["t"] - first["t"]
    if wall <= 0:
        raise ValueError(f"wait_split: the second answer must be later, got {first}, {second}")
    idle = second["idle"] - first["idle"]
    cpu = second["cpu"] - first["cpu"]
    return idle / wall, max(0.0, wall - idle - cpu) / wall


def machine_cpu() -> float | None:
    """CPU seconds every process of the machine has used so far, over all cores
    (``/proc/stat``'s busy time: user, nice, system, irq, softirq, steal); None without it."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not first or first[0] != "cpu" or len(first) < 9:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in first[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds (user + system) spent during one measurement's timed part.

    ``scorers`` has one entry per scorer process; ``broker`` is None when the broker is not
    a process of ours (``KAFKA_BOOTSTRAP_SERVERS``), ``machine`` (every process on the
    machine, ours included) None without ``/proc/stat``.
    """

    elapsed: float
    records: int
    scorers: tuple[float, ...]
    coordinator: float
    broker: float | None = None
    machine: float | None = None


def cpu_figures(split: CpuSplit, cores: int, window: CpuSplit | None = None) -> dict[str, float]:
    """The CPU metrics of one measurement (keys: the names of :data:`CPU_METRICS`).

    Per 1,000 records, in CPU milliseconds: ``broker_cpu``, ``scorer_cpu`` (all scorer
    processes together), ``coordinator_cpu``. ``busy_cores``: CPU seconds of the three /
    elapsed, over ``window`` (a part of the timed part: the one after the group join),
    by default over ``split``. ``other_cores``: the machine's busy CPU seconds minus ours,
    / elapsed, over the same.

    ``cpu_ceiling`` (records/s): the throughput at which the measured costs fill ``cores``,
    assuming the broker's and scorers' CPU per record stays what it was, the coordinator
    keeps its cores (it polls on a timer), a scorer process runs on at most one core (one
    event-loop thread) and nothing else runs: the lower of ``(cores - coordinator cores) *
    records / (broker + scorers)`` and ``records / max(scorer)``. Figures whose inputs are
    missing (no broker figure, no machine figure) or zero are left out.
    """
    if split.elapsed <= 0 or split.records <= 0:
        raise ValueError(f"cpu_figures: elapsed and records must be > 0, got {split}")
    per_1k = 1e6 / split.records
    scorers = sum(split.scorers)
    out = {
        "scorer_cpu": scorers * per_1k,
        "coordinator_cpu": split.coordinator * per_1k,
    }
    if split.broker is None:
        return out
    out["broker_cpu"] = split.broker * per_1k
    span = split if window is None or window.broker is None else window
    assert span.broker is not None
    ours = span.broker + sum(span.scorers) + span.coordinator
    out["busy_cores"] = ours / span.elapsed
    if span.machine is not None:
        out["other_cores"] = max(0.0, span.machine - ours) / span.elapsed
    free = cores - split.coordinator / split.elapsed
    work = split.broker + scorers
    if free > 0 and work > 0 and max(split.scorers, default=0.0) > 0:
        out["cpu_ceiling"] = min(free * split.records / work, split.records / max(split.scorers))
    return out


def scale_ceiling(
    elapsed: float,
    joined: float,
    records: int,
    cpu: CpuSplit | None,
    cores: int,
    processes: int = 2,
) -> float:
    """The throughput ``processes`` scorer processes can reach at best, projected from a
    measurement of one: ``records / (joined + max(rest / processes, cpu_bound))``.

    ``joined`` (seconds from the clock's start until the process got its partitions) is
    kept whole: the broker answers a JoinGroup after a fixed delay (about 1 s on Tansu with
    ``TEST_CONSUMER_PROPERTIES``), however many processes join. The rest of the timed part,
    ``elapsed - joined``, is at best divided among the processes, and it cannot take less
    than the broker's and scorers' CPU seconds over the cores the coordinator leaves
    (``cpu_bound``, when ``cpu`` is known and has a broker figure).
    """
    if not 0 <= joined <= elapsed or records <= 0 or processes < 1:
        raise ValueError(
            f"scale_ceiling: need 0 <= joined <= elapsed, records > 0, processes >= 1; got "
            f"joined={joined}, elapsed={elapsed}, records={records}, processes={processes}"
        )
    rest = (elapsed - joined) / processes
    if cpu is not None and cpu.broker is not None:
        free = cores - cpu.coordinator / cpu.elapsed
        if free > 0:
            rest = max(rest, (cpu.broker + sum(cpu.scorers)) / free)
    return records / (joined + rest)


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[tuple[str, int | None]]:
    """The bootstrap servers and the broker's process id (None for an external broker)."""
    from connectors.kafka.testkit import EmbeddedBroker, bootstrap_servers

    external = bootstrap_servers()
    if external is not None:
        yield external, None
        return
    broker = await EmbeddedBroker().astart()
    try:
        yield broker.bootstrap_servers, broker.pid
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
        #: The ``stats`` answers received so far (see :func:`wait_split`).
        self.stats: list[dict[str, float]] = []
        self._stats_arrived = asyncio.Event()
        self.started = asyncio.Event()
        #: ``time.perf_counter()`` when the process printed its first assignment.
        self.assigned_at: float | None = None
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
                elif event["event"] == "stats":
                    if event.get("idle") is not None:
                        self.stats.append(event)
                    self._stats_arrived.set()
                elif event["event"] == "assigned" and self.assigned_at is None:
                    self.assigned_at = time.perf_counter()

    def ask_stats(self) -> None:
        """Ask the process for a ``stats`` answer (read by :meth:`await_stats`)."""
        self._stats_arrived.clear()
        if self.proc.returncode is None and self.proc.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.write(b"stats\n")

    async def await_stats(self, timeout: float = 5.0) -> None:
        """Wait (at most ``timeout`` s) for the answer to the last :meth:`ask_stats`."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stats_arrived.wait(), timeout)

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

    def cpu(self) -> float | None:
        """CPU seconds the process has used: from ``/proc`` while it runs, else the total it
        printed when it stopped (None when neither is known)."""
        if self.proc.returncode is None:
            value = process_cpu(self.proc.pid)
            if value is not None:
                return value
        for event in reversed(self.events):
            if event["event"] == "stopped" and "cpu" in event:
                return float(event["cpu"])
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


#: A reading of the CPU counters: broker, each scorer, coordinator, machine (None: unknown).
_CpuNow = tuple[float | None, list[float | None], float | None, float | None]


def _joined(workers: list[_Worker]) -> float | None:
    """When the last process got its first partitions (None: not every one yet)."""
    times = [w.assigned_at for w in workers]
    return None if any(t is None for t in times) else max(t for t in times if t is not None)


def _cpu_now(broker_pid: int | None, workers: list[_Worker]) -> _CpuNow:
    broker = None if broker_pid is None else process_cpu(broker_pid)
    return broker, [w.cpu() for w in workers], process_cpu(os.getpid()), machine_cpu()


def _cpu_split(start: _CpuNow, end: _CpuNow, elapsed: float, size: int) -> CpuSplit | None:
    """The CPU seconds of the timed part; None when a scorer's or the coordinator's counters
    are unknown."""

    def spent(a: float | None, b: float | None) -> float | None:
        return None if a is None or b is None else b - a

    scorers = [spent(a, b) for a, b in zip(start[1], end[1], strict=True)]
    coordinator = spent(start[2], end[2])
    if coordinator is None or any(s is None for s in scorers):
        return None
    return CpuSplit(
        elapsed=elapsed,
        records=size,
        scorers=tuple(s for s in scorers if s is not None),
        coordinator=coordinator,
        broker=spent(start[0], end[0]),
        machine=spent(start[3], end[3]),
    )


def _raw_cpu(split: CpuSplit) -> dict[str, float]:
    """The CPU seconds themselves (in the JSON samples, not in a table)."""
    raw = {f"scorer_{i}_cpu_s": s for i, s in enumerate(split.scorers)}
    raw["coordinator_cpu_s"] = split.coordinator
    if split.broker is not None:
        raw["broker_cpu_s"] = split.broker
    if split.machine is not None:
        raw["machine_cpu_s"] = split.machine
    return raw


async def _scale_out(size: int, processes: int, stop_one_midway: bool) -> Measurement:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from connectors.kafka.testkit import create_topic, unique_group_id, unique_topic_name

    async with _broker() as (servers, broker_pid):
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
            cpu_start = _cpu_now(broker_pid, workers)
            stopped_at: float | None = None
            running = list(workers)
            progress = (-1, time.monotonic())
            # CPU counters when the coordinator first sees every process joined (the cores
            # kept busy are counted from there: before it, everybody waits for the broker).
            cpu_joined: tuple[float, _CpuNow] | None = None
            threads_joined: dict[int, float] = {}
            while True:
                if cpu_joined is None and _joined(workers) is not None:
                    cpu_joined = (time.perf_counter(), _cpu_now(broker_pid, workers))
                    for w in workers:
                        w.ask_stats()
                    if broker_pid is not None:
                        threads_joined = thread_cpu(broker_pid)
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
            cpu_end = _cpu_now(broker_pid, workers)
            threads_end = {} if broker_pid is None else thread_cpu(broker_pid)
            for w in running:
                w.ask_stats()
            for w in running:
                await w.await_stats()
            joined = _joined(workers)
            if joined is not None:
                joined -= start
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
    # The timed part's throughput (the harness would otherwise divide by the whole call:
    # broker start, pre-loading the topic, spawning the workers and reading the output back).
    metrics["throughput"] = size / elapsed
    if joined is not None:
        metrics["joined"] = joined
        if elapsed > joined:
            metrics["throughput_after_join"] = size / (elapsed - joined)
    if stopped_at is not None:
        metrics["stopped_at_fraction"] = stopped_at
    cpu = _cpu_split(cpu_start, cpu_end, elapsed, size)
    window = None
    if cpu_joined is not None and start + elapsed > cpu_joined[0]:
        window = _cpu_split(cpu_joined[1], cpu_end, start + elapsed - cpu_joined[0], size)
    if cpu is not None:
        metrics.update(cpu_figures(cpu, os.cpu_count() or 1, window))
        metrics.update(_raw_cpu(cpu))
    if window is not None and threads_joined and threads_end:
        metrics["broker_thread_cores"] = busiest_thread(threads_joined, threads_end, window.elapsed)
    # Scorers that answered at the join and at the end (not one stopped midway).
    splits = [wait_split(w.stats[0], w.stats[1]) for w in workers if len(w.stats) == 2]
    if splits:
        metrics["scorer_idle"] = sum(idle for idle, _ in splits) / len(splits)
        metrics["scorer_cpu_wait"] = sum(wait for _, wait in splits) / len(splits)
    if processes == 1 and joined is not None:
        ceiling = scale_ceiling(elapsed, joined, size, cpu, os.cpu_count() or 1)
        metrics["two_process_ceiling"] = ceiling
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
            "Producer.committable_sink` over a 4-partition topic holding n records, as one OS "
            "process against two in one consumer group (`python -m benchmarks.scale_worker`); "
            "timed from every process running its stream to the group's committed offsets "
            "reaching the end of every partition (joins and rebalances included; throughput is "
            "n / that time). Then the output topic is read back: lost = produced keys missing "
            "from it, duplicates = records beyond one per key. The third system stops one of "
            "the two processes (`drain_and_shutdown`) once half the records were committed. "
            "Session timeout 1 s, heartbeat 100 ms (`TEST_CONSUMER_PROPERTIES`). Embedded "
            "Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set; the broker, coordinator and "
            "scorers share the machine's CPUs. Where the time and the CPU go: joined = when "
            "every process had its first partitions (Tansu answers a JoinGroup after about "
            "1 s), and the throughput of what follows; CPU seconds (user + system, from /proc) "
            "of the broker, the scorers and the coordinator in the timed part, per 1,000 "
            "records; the cores they kept busy after the join and those other processes took; "
            "the CPU ceiling, the throughput at which the measured CPU per record fills the "
            "machine's cores (CPU per record as measured, the coordinator's share kept, a "
            "scorer process on at most one core, nothing else running); and, for one process, "
            "the two-process ceiling: that run's join kept whole, the rest halved, no faster "
            "than its CPU allows. Both ceilings' ratios are against one process's measured "
            "throughput: the speed-up they allow, next to the 1.5x target. After the join, "
            "also: the busiest broker thread's cores (1 = saturated), and the scorers' time "
            "split (each answers a stats request at the join and at the end): the share "
            "their event loop sat idle waiting on the broker, and the share they were "
            "neither running nor idle, i.e. waiting for a core."
        ),
        systems=(
            System("one process", S + "one_process", "baseline"),
            System("two processes", S + "two_processes", "project"),
            System("two processes, one stopped midway", S + "two_processes_one_stopped", "project"),
        ),
        baseline="one process",
        size=100_000,
        quick_size=5_000,
        metrics=(
            THROUGHPUT,
            LOST,
            DUPLICATES,
            JOINED,
            AFTER_JOIN,
            *CPU_METRICS,
            TWO_PROCESS_CEILING,
        ),
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
