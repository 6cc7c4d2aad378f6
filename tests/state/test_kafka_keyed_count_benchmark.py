"""The ``kafka_keyed_count`` benchmark's two systems (benchmarks/peers_quix.py) count the
same records to the same exact counts on the session broker: Quix Streams with its
RocksDB state and changelog, and the project's committable partitioned source -> keyed
count on a changelogged RocksDB store -> committer. The project's changelog ends holding
each key's final count in the partition of the key's input records, and the committed
offsets cover every record. Figures only, never speeds."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import pytest

from benchmarks import peers_quix
from benchmarks.runner import load_benchmarks

SIZE = 1_500
#: Both systems' consumer group timings in this test. The embedded broker answers a
#: JoinGroup after about half the session timeout (at least 1 s; see
#: ``connectors.kafka.testkit``): with the clients' defaults that was a 23 s wait (Quix:
#: librdkafka's 45 s) and a 5 s one (the project: aiokafka's 10 s) before anything was
#: counted. A 2 s session (heartbeat 200 ms) joins in 1 s. What they count is unchanged.
SESSION_TIMEOUT_MS, HEARTBEAT_INTERVAL_MS = 2000, 200


async def changelog_state(run: peers_quix.ProjectRun) -> dict[int, dict[Any, Any]]:
    """What a restore of each partition of the project's changelog rebuilds."""
    from connectors.kafka import ConsumerSettings, ProducerSettings, TopicPartition
    from connectors.kafka.state import changelogged
    from reactive.state import Stores

    store = changelogged(
        Stores.in_memory("counts"),
        ProducerSettings(run.servers),
        ConsumerSettings(run.servers, run.group),
        topic=run.changelog,
    )
    state: dict[int, dict[Any, Any]] = {}
    for p in range(peers_quix.PARTITIONS):
        kv = store.for_partition(TopicPartition(run.topic, p)).open()
        await kv.bytes_store.prepare()
        state[p] = dict(kv.items())
        kv.close()
    await store.wait_closed()
    return state


@pytest.mark.kafka
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_quix_and_the_project_count_the_same(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Importing quixstreams imports authlib, which warns that its httpx client is
    # deprecated; authlib puts its own "always" filter first, so the warning shows in the
    # summary (not an error, whatever the project's filters say).
    pytest.importorskip("quixstreams")
    import quixstreams

    import connectors.kafka
    from connectors.kafka.testkit import committed_offsets

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    # Both systems' consumers as the benchmark makes them (peers_quix imports these names
    # when it runs), with the short group timings.
    settings = connectors.kafka.ConsumerSettings

    def consumer_settings(*args: Any, **kwargs: Any) -> Any:
        timings = {
            "session_timeout_ms": SESSION_TIMEOUT_MS,
            "heartbeat_interval_ms": HEARTBEAT_INTERVAL_MS,
        }
        return settings(
            *args, **{**kwargs, "properties": {**timings, **kwargs.get("properties", {})}}
        )

    class QuickJoinApplication(quixstreams.Application):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            timings = {
                "session.timeout.ms": SESSION_TIMEOUT_MS,
                "heartbeat.interval.ms": HEARTBEAT_INTERVAL_MS,
            }
            extra = {**timings, **(kwargs.pop("consumer_extra_config", None) or {})}
            super().__init__(*args, consumer_extra_config=extra, **kwargs)

    monkeypatch.setattr(connectors.kafka, "ConsumerSettings", consumer_settings)
    monkeypatch.setattr(quixstreams, "Application", QuickJoinApplication)
    expected = peers_quix.expected_counts(SIZE)
    assert len(expected) == peers_quix.KEYS and sum(expected.values()) == SIZE
    run = peers_quix.ProjectRun()
    ours = asyncio.run(peers_quix.project_keyed_count(SIZE, keep=run))
    assert ours.result == expected
    assert ours.metrics["throughput"] > 0
    assert run.changelog == f"{run.group}-counts-changelog"

    async def check() -> None:
        state = await changelog_state(run)
        # Each key's final count, in one changelog partition: that of its input records.
        merged: dict[Any, Any] = {}
        for counts in state.values():
            assert not merged.keys() & counts.keys()
            merged.update(counts)
        assert merged == expected
        # Every record's offset committed, after its update reached the changelog: the
        # next offset of input partition p is the number of records counted in p.
        committed = await committed_offsets(
            run.servers, run.group, run.topic, list(range(peers_quix.PARTITIONS))
        )
        assert committed == {p: sum(counts.values()) for p, counts in state.items()}

    asyncio.run(check())
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    quix = peers_quix.quix_keyed_count(SIZE)
    # Quix's Application.run() leaves its SIGINT/SIGTERM handlers behind; the benchmark
    # puts the caller's back (Ctrl-C stops the session, the application's clients close).
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    assert quix.result == expected
    assert quix.metrics["throughput"] > 0


def test_kafka_keyed_count_is_registered() -> None:
    bench = load_benchmarks()["kafka_keyed_count"]
    assert bench.baseline == "Quix Streams 3.28"
    (project,) = (s for s in bench.systems if s.kind == "project")
    assert "changelog" in project.name
    (target,) = bench.targets
    assert target.system == project.name and target.min_ratio == 1.0
