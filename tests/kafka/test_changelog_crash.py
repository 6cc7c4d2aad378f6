"""Issue 14's crash test: two member processes of one group count records per key with
changelogged stores over 100,000 records on a 4-partition topic. One is SIGKILLed
mid-stream; the survivor takes its partitions, restores their stores from the changelog
and finishes. The final counts (restored from the changelog) are never below the exact
ones and exceed them by at most the records processed twice (measured from the members'
logs of what they counted). With a clean ``drain_and_shutdown`` instead of the kill they
are exact. And a member with a persistent store, killed and restarted, restores only the
changelog tail after its checkpoint.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import TopicPartition
from connectors.kafka.testkit import committed_offsets, unique_group_id
from tests.kafka.changelog_app import counts_store

N = 100_000
PARTITIONS = 4
KEYS = 1_000  # key k<j> lives in partition j % 4

pytestmark = pytest.mark.slow


async def produce(bootstrap: str, topic: str, n: int) -> dict[int, int]:
    """``n`` records, record i with key ``k<i % KEYS>``; returns records per partition."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    per: Counter[int] = Counter()
    try:
        batches: dict[int, Any] = {}
        futures = []
        for i in range(n):
            j = i % KEYS
            p = j % PARTITIONS
            b = batches.get(p)
            if b is None:
                b = batches[p] = producer.create_batch()
            if b.append(key=b"k%d" % j, value=b"x", timestamp=None) is None:
                futures.append(await producer.send_batch(b, topic, partition=p))
                b = batches[p] = producer.create_batch()
                b.append(key=b"k%d" % j, value=b"x", timestamp=None)
            per[p] += 1
        for p, b in batches.items():
            futures.append(await producer.send_batch(b, topic, partition=p))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
    return dict(per)


def exact_counts(n: int) -> Counter[str]:
    return Counter(f"k{i % KEYS}" for i in range(n))


class Member:
    """A member process (``python -m tests.kafka.changelog_app``)."""

    def __init__(
        self,
        tmp: Path,
        name: str,
        bootstrap: str,
        topic: str,
        group: str,
        store_dir: Path | None = None,
    ) -> None:
        self.log = tmp / f"{name}.log"
        self.status = tmp / f"{name}.status"
        cmd = [
            sys.executable,
            "-m",
            "tests.kafka.changelog_app",
            "--bootstrap",
            bootstrap,
            "--topic",
            topic,
            "--group",
            group,
            "--log",
            str(self.log),
            "--status",
            str(self.status),
        ]
        if store_dir is not None:
            cmd += ["--store-dir", str(store_dir)]
        self.out = tmp / f"{name}.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2]
            )

    def lines(self) -> list[tuple[int, int, str]]:
        if not self.log.exists():
            return []
        out = []
        # The member appends while this reads: a read can end inside a line, so only
        # lines with their newline count (the member writes each line in one write).
        for line in self.log.read_bytes().split(b"\n")[:-1]:
            p, o, k = line.split()
            out.append((int(p), int(o), k.decode()))
        return out

    def _status(self) -> dict[str, Any]:
        if not self.status.exists():
            return {"assigned": [], "metrics": {}}
        status: dict[str, Any] = json.loads(self.status.read_text())
        return status

    def assigned(self) -> set[int]:
        """The partitions the member has now."""
        return set(self._status()["assigned"])

    def metrics(self) -> dict[int, Any]:
        """The last metrics of each partition the member ever had (a revoked one's too)."""
        return {int(p): m for p, m in self._status()["metrics"].items()}

    def tail(self) -> str:
        """The end of the member's output, for a failure's message."""
        text = self.out.read_text(errors="replace") if self.out.exists() else ""
        return f"--- {self.out.name} (exit {self.proc.poll()}):\n{text[-2000:]}"

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def drain(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(30)
        out = self.out.read_text()
        assert self.proc.returncode == 0 and "drained" in out, out[-3000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


async def until(predicate: Any, timeout: float, what: str, *members: Member) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            state = "\n".join(
                f"{m.out.stem}: assigned {sorted(m.assigned())}, counted {len(m.lines())}"
                for m in members
            )
            tails = "\n".join(m.tail() for m in members)
            raise AssertionError(f"{what}: not within {timeout} s\n{state}\n{tails}")
        await asyncio.sleep(0.05)


async def all_committed(
    bootstrap: str, group: str, topic: str, per: dict[int, int], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while True:
        got = await committed_offsets(bootstrap, group, topic, list(range(PARTITIONS)))
        if all(got[p] == per.get(p, 0) for p in range(PARTITIONS)):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"committed {got}, expected {per}")
        await asyncio.sleep(0.2)


async def final_counts(bootstrap: str, topic: str, group: str) -> Counter[str]:
    """The counts the changelog holds: each partition restored into a fresh store."""
    store = counts_store(bootstrap, group)
    counts: Counter[str] = Counter()
    for p in range(PARTITIONS):
        kv = store.for_partition(TopicPartition(topic, p)).open()
        await kv.bytes_store.prepare()
        counts.update(dict(kv.items()))
        kv.close()
    await store.wait_closed()
    return counts


def checkpointed(stores: Path) -> bool:
    """True once every partition's store checkpointed a changelog offset > 0."""
    for p in range(PARTITIONS):
        path = stores / f"counts.{p}.checkpoint"
        try:
            if json.loads(path.read_text())["offset"] <= 0:
                return False
        except (OSError, ValueError):
            return False
    return True


def twice(*members: Member) -> Counter[str]:
    """Records (partition, offset) counted more than once, by key."""
    seen = Counter((p, o, k) for m in members for p, o, k in m.lines())
    again: Counter[str] = Counter()
    for (_, _, k), c in seen.items():
        if c > 1:
            again[k] += c - 1
    return again


async def both_counting(bootstrap: str, topic: str, a: Member, b: Member) -> dict[int, int]:
    """Wait until both members have partitions, produce the N records, wait until member
    ``a`` counted an eighth of them; returns the records per partition."""
    # Each member reports the partitions it has now: a member that joined first had all
    # four for a while, then gave two up when the other joined.
    await until(
        lambda: (
            len(a.assigned()) + len(b.assigned()) == PARTITIONS and a.assigned() and b.assigned()
        ),
        60,
        "both members assigned",
        a,
        b,
    )
    per = await produce(bootstrap, topic, N)
    await until(lambda: len(a.lines()) >= N // 8, 30, "member a counted", a, b)
    return per


async def test_sigkill_one_member_the_survivor_restores_and_counts_at_least_once(
    kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    topic = await kafka_topic_factory(partitions=PARTITIONS)
    group = unique_group_id("crash")
    a = Member(tmp_path, "a", kafka_bootstrap, topic, group)
    b = Member(tmp_path, "b", kafka_bootstrap, topic, group)
    try:
        per = await both_counting(kafka_bootstrap, topic, a, b)
        a.kill()
        killed_at = len(a.lines())
        assert killed_at < N // 2  # mid-stream: the survivor has most of the work ahead
        taken = set(range(PARTITIONS)) - b.assigned()
        await until(lambda: len(b.assigned()) == PARTITIONS, 30, "survivor took all partitions", b)
        await all_committed(kafka_bootstrap, group, topic, per, 40)
        restored = {p: b.metrics()[p]["restored_records"] for p in taken}
        b.drain()
    finally:
        a.stop()
        b.stop()
    exact = exact_counts(N)
    final = await final_counts(kafka_bootstrap, topic, group)
    again = twice(a, b)
    assert all(final[k] >= exact[k] for k in exact), "a count fell short: an update was lost"
    excess = final - exact
    assert all(excess[k] <= again[k] for k in excess), (excess, again)
    assert sum(restored.values()) > 0  # the survivor rebuilt the killed member's stores
    print(
        f"\nkilled after {killed_at} records; re-processed {sum(again.values())}; "
        f"excess {sum(excess.values())}; restored {restored}"
    )


async def test_a_clean_drain_and_shutdown_keeps_the_counts_exact(
    kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    topic = await kafka_topic_factory(partitions=PARTITIONS)
    group = unique_group_id("drain")
    a = Member(tmp_path, "a", kafka_bootstrap, topic, group)
    b = Member(tmp_path, "b", kafka_bootstrap, topic, group)
    try:
        per = await both_counting(kafka_bootstrap, topic, a, b)
        a.drain()
        await all_committed(kafka_bootstrap, group, topic, per, 40)
        b.drain()
    finally:
        a.stop()
        b.stop()
    assert await final_counts(kafka_bootstrap, topic, group) == exact_counts(N)
    assert sum(twice(a, b).values()) == 0


async def test_a_persistent_member_killed_and_restarted_restores_only_the_tail(
    kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Path
) -> None:
    topic = await kafka_topic_factory(partitions=PARTITIONS)
    group = unique_group_id("restart")
    n = N // 4
    first = Member(tmp_path, "first", kafka_bootstrap, topic, group, tmp_path / "stores")
    try:
        await until(lambda: len(first.assigned()) == PARTITIONS, 30, "member assigned", first)
        per = await produce(kafka_bootstrap, topic, n)
        await until(lambda: checkpointed(tmp_path / "stores"), 30, "checkpoints written", first)
        # More records, and the kill before their acks are checkpointed (within a second):
        # the restart then restores them, the tail after the checkpoints.
        more = await produce(kafka_bootstrap, topic, n)
        per = {p: per[p] + more[p] for p in per}
        await until(lambda: len(first.lines()) > n + n // 4, 30, "member counted more", first)
        first.kill()
    finally:
        first.stop()
    checkpoints = {
        p: json.loads((tmp_path / "stores" / f"counts.{p}.checkpoint").read_text())["offset"]
        for p in range(PARTITIONS)
    }
    second = Member(tmp_path, "second", kafka_bootstrap, topic, group, tmp_path / "stores")
    try:
        await until(
            lambda: (
                len(second.assigned()) == PARTITIONS
                and not any(m["restoring"] for m in second.metrics().values())
            ),
            30,
            "restarted member restored",
            second,
        )
        m = second.metrics()
        await all_committed(kafka_bootstrap, group, topic, per, 40)
        second.drain()
    finally:
        second.stop()
    for p in range(PARTITIONS):
        assert m[p]["restore_start_offset"] == checkpoints[p]
    assert all(offset > 0 for offset in checkpoints.values())  # not a full restore
    final = await final_counts(kafka_bootstrap, topic, group)
    exact = exact_counts(n) + exact_counts(n)
    assert all(final[k] >= exact[k] for k in exact)
    excess, again = final - exact, twice(first, second)
    assert all(excess[k] <= again[k] for k in excess)
    print(
        f"\nrestart restored {sum(x['restored_records'] for x in m.values())} records "
        f"after checkpoints {checkpoints}"
    )
