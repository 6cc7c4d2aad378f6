"""Windows over Kafka survive a crash (issue 13): a process consuming 50,000 timestamped
records into hopping windows is SIGKILLed at a random moment, restarted in the same
group, and the windows emitted across both runs cover every input record.

The worker (``tests/kafka/windows_crash_worker.py``) commits, with each window, the
commit point ``SourceWithContext.windowed`` attaches to it: an offset is committed only
once every window holding that record, and every earlier record, was written. So the
restart replays every record of every window that was open at the kill, and each
window's largest count across both runs is its full count. Timestamps rise with the
offset (one partition), so no record is late in either run and the expected count of
every window is known exactly.
"""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import sys
from typing import Any

import pytest

from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from tests.kafka.windows_crash_worker import SIZE, STEP

pytestmark = pytest.mark.kafka

N = 50_000
KEYS = 7


def expected_counts() -> dict[tuple[str, float, float], int]:
    counts: collections.Counter[tuple[str, float, float]] = collections.Counter()
    for i in range(N):
        key, ts = f"k{i % KEYS}", i * 0.1
        first = (int(ts // STEP) - SIZE // STEP + 1) * STEP
        for start in range(first, int(ts) + 1, STEP):
            if start <= ts < start + SIZE:
                counts[(key, float(start), float(start + SIZE))] += 1
    return counts


def read_windows(path: str) -> list[tuple[tuple[str, float, float], int]]:
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n"):  # a line cut by the kill is not a window
                key, start, end, count = line.split()
                out.append(((key, float(start), float(end)), int(count)))
    return out


Window = tuple[str, float, float]


async def kill_and_restart(
    kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Any, *extra: str
) -> tuple[int, list[tuple[Window, int]], dict[Window, int]]:
    """Produce the input, run the worker (``extra``: its optional arguments), SIGKILL it
    once it wrote a random share of the windows, run it again to the end. Returns the
    offset committed at the kill, the windows of the first run, and each window's
    largest count across both runs."""
    topic = await kafka_topic_factory()
    await produce_values(
        kafka_bootstrap, topic, (f"k{i % KEYS},{i * 0.1:.1f}" for i in range(N)), partition=0
    )
    group = unique_group_id()
    out = str(tmp_path / "windows.txt")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    args = [
        "-m", "tests.kafka.windows_crash_worker", kafka_bootstrap, group, topic, out, str(N),
        *extra,
    ]  # fmt: skip

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, cwd=root, stderr=asyncio.subprocess.PIPE
        )

    # Kill once the first run has written a random share of the windows and committed.
    kill_at = int(len(expected_counts()) * random.uniform(0.2, 0.7))
    first = await start()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not os.path.exists(out) or len(read_windows(out)) < kill_at:
        assert first.returncode is None, (await first.communicate())[1].decode()[-2000:]
        assert loop.time() < deadline, "no progress"
        await asyncio.sleep(0.01)
    first.send_signal(signal.SIGKILL)
    await first.wait()
    committed = (await committed_offsets(kafka_bootstrap, group, topic))[0]
    first_run = read_windows(out)
    # Killed mid-stream, after commits.
    assert committed is not None and 0 < committed < N, (kill_at, committed)

    second = await start()
    _, stderr = await asyncio.wait_for(second.communicate(), 90)
    assert second.returncode == 0, stderr.decode()[-2000:]
    assert (await committed_offsets(kafka_bootstrap, group, topic))[0] == N
    both = read_windows(out)
    assert len(both) > len(first_run)  # the second run did write
    best: dict[Window, int] = {}
    for window, count in both:
        best[window] = max(best.get(window, 0), count)
    return committed, first_run, best


async def test_sigkilled_mid_stream_the_windows_of_both_runs_cover_every_record(
    kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Any
) -> None:
    committed, first_run, best = await kill_and_restart(
        kafka_bootstrap, kafka_topic_factory, tmp_path
    )
    expected = expected_counts()
    # Every window of the input, each with all of its records in some run: every record
    # (counted by key) is covered, and nothing was counted that is not in the input.
    assert best == expected, f"killed after {len(first_run)} windows, committed {committed}"
    per_key: collections.Counter[str] = collections.Counter()
    for (key, _, _), count in best.items():
        per_key[key] += count
    records = collections.Counter(f"k{i % KEYS}" for i in range(N))
    assert per_key == {key: n * (SIZE // STEP) for key, n in records.items()}
