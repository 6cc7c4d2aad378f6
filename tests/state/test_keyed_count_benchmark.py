"""The ``keyed_count`` benchmark's systems (benchmarks/suite_state.py) compute the same
counts, at a small size: figures only, never speeds."""

from __future__ import annotations

from benchmarks import suite_state
from benchmarks.runner import load_benchmarks


async def test_every_system_counts_the_same() -> None:
    size = 3 * suite_state.KEYS + 17
    expected = suite_state.dict_loop(size)
    assert len(expected) == suite_state.KEYS
    assert sum(expected.values()) == size
    assert suite_state.dict_get_loop(size) == expected
    assert (await suite_state.in_memory_store(size)).result == expected
    assert (await suite_state.persistent_store(size)).result == expected
    assert (await suite_state.persistent_write_through(size)).result == expected


def test_keyed_count_is_registered() -> None:
    bench = load_benchmarks()["keyed_count"]
    assert bench.baseline == "dict loop"
    assert {t.min_ratio for t in bench.targets} == {0.5, 0.25}
    # The records are built before the systems run, not inside the first one's timing.
    assert bench.setup == "benchmarks.suite_state:records"
