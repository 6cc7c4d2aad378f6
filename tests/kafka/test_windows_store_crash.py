"""Windows kept in a changelogged store survive a SIGKILL (issue 14): the worker
(``tests/kafka/windows_crash_worker.py ... store``) consumes 50,000 timestamped records into
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

from typing import Any

import pytest

from tests.kafka.test_windows_crash import KEYS, N, expected_counts, kill_and_restart
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
    committed, first_run, best = await kill_and_restart(
        kafka_bootstrap, kafka_topic_factory, tmp_path, "store"
    )
    expected = expected_counts()
    # The commit point passed records of windows still open at the kill (their first
    # record is at offset start * 10): without a store it stays below all of them.
    emitted = {w for w, _ in first_run}
    open_at_kill = [w for w in expected if w not in emitted and w[1] * 10 < committed]
    assert open_at_kill, (committed, len(first_run))
    assert best.keys() == expected.keys(), f"killed after {len(first_run)} windows"
    after = records_after(committed, expected)
    short = {w: (best[w], n) for w, n in expected.items() if best[w] < n}
    assert not short, f"windows short of their exact counts: {short}"
    over = {w: (best[w], n, after[w]) for w, n in expected.items() if best[w] > n + after[w]}
    assert not over, f"windows over exact + re-read records: {over}"
