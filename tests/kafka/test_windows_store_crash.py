"""Windows kept in a changelogged store survive a SIGKILL (issue 14): the worker
(``tests/kafka/windows_store_crash_worker.py``) consumes 50,000 timestamped records into
hopping windows whose open state lives in a store with a changelog, and commits with each
window the commit point the store made safe: past records still in open windows once
their changelog writes are acknowledged (``test_windows_crash.py`` is the same without a
store, where the commit point waits for the windows to be emitted). It is SIGKILLed at a
random moment after some commits and started again: the store is restored from the
changelog, the open windows go on, the windows emitted but not known to be committed are
emitted again.

At-least-once: every window's largest count across both runs is at least its exact count,
and exceeds it by at most its records after the committed offset (re-read after the
restart; those already in the changelog are counted twice).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from typing import Any

import pytest

from connectors.kafka.testkit import committed_offsets, produce_values, unique_group_id
from tests.kafka.test_windows_crash import KEYS, N, expected_counts, read_windows
from tests.kafka.windows_crash_worker import SIZE, STEP

pytestmark = pytest.mark.kafka


def records_after(
    committed: int, windows: dict[tuple[str, float, float], int]
) -> dict[tuple[str, float, float], int]:
    """Per window, how many of its records have an offset at or above ``committed``."""
    out = dict.fromkeys(windows, 0)
    for i in range(committed, N):
        key, ts = f"k{i % KEYS}", i * 0.1
        first = (int(ts // STEP) - SIZE // STEP + 1) * STEP
        for start in range(first, int(ts) + 1, STEP):
            if start <= ts < start + SIZE:
                out[(key, float(start), float(start + SIZE))] += 1
    return out


async def test_sigkilled_mid_stream_the_stored_windows_go_on_after_the_restart(
    kafka_bootstrap: str, kafka_topic_factory: Any, tmp_path: Any
) -> None:
    topic = await kafka_topic_factory()
    await produce_values(
        kafka_bootstrap, topic, (f"k{i % KEYS},{i * 0.1:.1f}" for i in range(N)), partition=0
    )
    group = unique_group_id()
    out = str(tmp_path / "windows.txt")
    expected = expected_counts()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**os.environ, "PYTHONPATH": root}
    args = [
        "-m", "tests.kafka.windows_store_crash_worker", kafka_bootstrap, group, topic, out, str(N)
    ]  # fmt: skip

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, *args, env=env, cwd=root, stderr=asyncio.subprocess.PIPE
        )

    kill_at = int(len(expected) * random.uniform(0.2, 0.7))
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
    first_run = len(read_windows(out))
    assert committed is not None and 0 < committed < N, (kill_at, committed)
    # The commit point passed records of windows still open at the kill (their first
    # record is at offset start * 10): without a store it stays below all of them.
    emitted = {w for w, _ in read_windows(out)}
    open_at_kill = [w for w in expected if w not in emitted and w[1] * 10 < committed]
    assert open_at_kill, (committed, first_run)

    second = await start()
    _, stderr = await asyncio.wait_for(second.communicate(), 90)
    assert second.returncode == 0, stderr.decode()[-2000:]
    assert (await committed_offsets(kafka_bootstrap, group, topic))[0] == N

    best: dict[tuple[str, float, float], int] = {}
    for window, count in read_windows(out):
        best[window] = max(best.get(window, 0), count)
    assert best.keys() == expected.keys(), f"killed after {first_run} windows"
    after = records_after(committed, expected)
    short = {w: (best[w], n) for w, n in expected.items() if best[w] < n}
    assert not short, f"windows short of their exact counts: {short}"
    over = {w: (best[w], n, after[w]) for w, n in expected.items() if best[w] > n + after[w]}
    assert not over, f"windows over exact + re-read records: {over}"
    assert len(read_windows(out)) > first_run  # the second run did write
