"""The ``kafka_keyed_count`` benchmark's two systems (benchmarks/peers_quix.py) count the
same records to the same exact counts on the session broker: Quix Streams with its
RocksDB state and changelog, and the project's committable source -> keyed count ->
committer. Figures only, never speeds."""

from __future__ import annotations

import asyncio

import pytest

from benchmarks import peers_quix
from benchmarks.runner import load_benchmarks

SIZE = 1_500


@pytest.mark.kafka
@pytest.mark.slow  # Quix's consumer takes ~20 s to join its group on the embedded broker
@pytest.mark.timeout(240)
def test_quix_and_the_project_count_the_same(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importing quixstreams imports authlib, which warns that its httpx client is
    # deprecated; authlib puts its own "always" filter first, so the warning shows in the
    # summary (not an error, whatever the project's filters say).
    pytest.importorskip("quixstreams")
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    expected = peers_quix.expected_counts(SIZE)
    assert len(expected) == peers_quix.KEYS and sum(expected.values()) == SIZE
    ours = asyncio.run(peers_quix.project_keyed_count(SIZE))
    assert ours.result == expected
    assert ours.metrics["throughput"] > 0
    quix = peers_quix.quix_keyed_count(SIZE)
    assert quix.result == expected
    assert quix.metrics["throughput"] > 0


def test_kafka_keyed_count_is_registered() -> None:
    bench = load_benchmarks()["kafka_keyed_count"]
    assert bench.baseline == "Quix Streams 3.28"
    assert any("no changelog" in s.name for s in bench.systems)
