"""The Kafka scoring service against the real embedded broker: end-to-end scoring, the
dead-letter topic, a restart that loses nothing, and the demo's smoke test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    committed_offsets,
    produce_values,
    read_records,
    unique_group_id,
)
from reactive import Flow, Materializer
from samples.model_serving.loader import CORRUPT_PAYLOAD, data_loader
from samples.model_serving.models import encode_model, example_linear_model
from samples.model_serving.publisher import model_publisher
from samples.model_serving.records import (
    ScoredRecord,
    decode_scored,
    encode_record,
    generate_records,
)
from samples.model_serving.service import ERROR_HEADER, ServiceConfig, Topics, scoring_service

pytestmark = pytest.mark.kafka

REPO = Path(__file__).resolve().parents[2]
MODEL = example_linear_model(1)

TopicFactory = Callable[..., Awaitable[str]]


async def make_topics(factory: TopicFactory) -> Topics:
    return Topics(
        data=await factory(prefix="data"),
        models=await factory(prefix="models"),
        scored=await factory(prefix="scored"),
        dead_letters=await factory(prefix="dlq"),
    )


def config(bootstrap: str, topics: Topics, group: str, **kwargs: Any) -> ServiceConfig:
    return ServiceConfig(
        bootstrap,
        topics,
        group_id=group,
        consumer_properties=TEST_CONSUMER_PROPERTIES,
        **kwargs,
    )


async def eventually(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


async def test_end_to_end_scoring(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topics = await make_topics(kafka_topic_factory)
    records = generate_records(40, seed=3)
    await produce_values(kafka_bootstrap, topics.models, [encode_model(MODEL.to_message())])
    await produce_values(kafka_bootstrap, topics.data, [encode_record(r) for r in records])
    group = unique_group_id()
    service = scoring_service(config(kafka_bootstrap, topics, group)).run(materializer)
    scored_raw = await read_records(kafka_bootstrap, topics.scored, len(records))
    await service.drain_and_shutdown()

    scored = [decode_scored(r.value) for r in scored_raw]
    assert [s.id for s in scored] == [r.id for r in records]  # one partition: in order
    assert [r.key for r in scored_raw] == [str(r.id).encode() for r in records]
    for rec, out in zip(records, scored, strict=True):
        assert out.score == pytest.approx(MODEL.score(rec.features))
        assert (out.model_name, out.model_version) == (MODEL.name, 1)
    assert service.state.records_scored == len(records)
    assert service.counters.dead_letters == 0
    assert await committed_offsets(kafka_bootstrap, group, topics.data) == {0: len(records)}


async def test_bad_record_goes_to_the_dead_letter_topic(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topics = await make_topics(kafka_topic_factory)
    good = generate_records(3, seed=4)
    values = [encode_record(good[0]), CORRUPT_PAYLOAD, encode_record(good[1]), b"", None]
    values.append(encode_record(good[2]))
    await produce_values(kafka_bootstrap, topics.models, [encode_model(MODEL.to_message())])
    await produce_values(kafka_bootstrap, topics.data, values, key="k")
    group = unique_group_id()
    service = scoring_service(config(kafka_bootstrap, topics, group)).run(materializer)
    dead = await read_records(kafka_bootstrap, topics.dead_letters, 3)
    scored = await read_records(kafka_bootstrap, topics.scored, 3)
    await service.drain_and_shutdown()

    assert [d.value for d in dead] == [CORRUPT_PAYLOAD, b"", None]
    assert all(d.key == b"k" for d in dead)
    headers = [dict(d.headers) for d in dead]
    assert headers[0][ERROR_HEADER].startswith(b"cannot decode data record: ")
    assert headers[2][ERROR_HEADER] == b"cannot decode data record: the value is null"
    assert [h["source-offset"] for h in headers] == [b"1", b"3", b"4"]
    assert headers[0]["source-topic"] == topics.data.encode()
    assert [decode_scored(s.value).id for s in scored] == [r.id for r in good]
    assert service.counters.dead_letters == 3
    # Dead letters are committed like scored records: a restart does not see them again.
    assert await committed_offsets(kafka_bootstrap, group, topics.data) == {0: len(values)}


async def test_restart_in_the_middle_loses_no_record(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topics = await make_topics(kafka_topic_factory)
    n = 150
    records = generate_records(n, seed=5)
    await produce_values(kafka_bootstrap, topics.models, [encode_model(MODEL.to_message())])
    await produce_values(kafka_bootstrap, topics.data, [encode_record(r) for r in records])
    group = unique_group_id()
    seen: list[ScoredRecord] = []

    async def slow(pair: Any) -> Any:
        await asyncio.sleep(0.004)  # about 0.6 s for all: the stop lands midway
        return pair

    def run_service() -> Any:
        cfg = config(
            kafka_bootstrap,
            topics,
            group,
            max_buffered_records=10,
            after_scoring=Flow().map_async(1, slow),
            on_scored=seen.append,
        )
        return scoring_service(cfg).run(materializer)

    first = run_service()
    await eventually(lambda: first.counters.scored >= 30)
    await first.drain_and_shutdown()
    scored_first = first.counters.scored
    assert 30 <= scored_first < n
    [committed] = (await committed_offsets(kafka_bootstrap, group, topics.data)).values()
    assert committed == scored_first  # everything written was committed, nothing more

    second = run_service()
    await eventually(lambda: {s.id for s in seen} == {r.id for r in records})
    await second.drain_and_shutdown()
    assert await committed_offsets(kafka_bootstrap, group, topics.data) == {0: n}
    on_topic = await read_records(kafka_bootstrap, topics.scored, len(seen))
    assert {decode_scored(r.value).id for r in on_topic} == {r.id for r in records}


async def test_loader_and_publisher_feed_the_service(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    topics = await make_topics(kafka_topic_factory)
    publisher = model_publisher(kafka_bootstrap, topics.models, [(0.0, MODEL)]).run(materializer)
    loader = data_loader(kafka_bootstrap, topics.data, rate=400, count=40, bad_every=10).run(
        materializer
    )
    await publisher.done
    await loader.done
    assert (loader.stats.sent, loader.stats.corrupt) == (40, 4)
    service = scoring_service(config(kafka_bootstrap, topics, unique_group_id())).run(materializer)
    await eventually(lambda: service.counters.scored + service.counters.dead_letters == 40)
    await service.drain_and_shutdown()
    assert (service.counters.scored, service.counters.dead_letters) == (36, 4)
    assert service.latency.count == 36


DEMO_TIMEOUT = 40.0
"""Seconds a demo run may take, from its start."""
#: The demo's options in each demo test below. Each run mostly waits out its 3 s, so the
#: selected ones start together (:func:`demo_runs`), each in its own process with its own
#: state directory, topics and group on the session broker.
DEMO_RUNS: dict[str, tuple[str, ...]] = {
    "test_demo_runs_and_prints_a_summary[table]": (),
    "test_demo_runs_and_prints_a_summary[stage]": ("--stage",),
    "test_demo_live_draws_the_table_service_graph": ("--live",),
    "test_demo_live_draws_the_service_graph_metrics": ("--live", "--stage"),
}


class DemoRun:
    """``python -m samples.model_serving.demo --seconds 3 --rate 200`` with ``args``,
    started in the background in ``directory``: its state directory (empty) is ``state``
    there, its output goes to files beside it."""

    def __init__(self, kafka_bootstrap: str, directory: Path, args: tuple[str, ...]) -> None:
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "PYTHONPATH": str(REPO)}
        demo = [sys.executable, "-m", "samples.model_serving.demo", "--seconds", "3"]
        self.state_dir = directory / "state"
        self.state_dir.mkdir()
        self.stdout, self.stderr = directory / "stdout", directory / "stderr"
        self.deadline = time.monotonic() + DEMO_TIMEOUT
        # Files, not pipes: nobody reads a pipe until the test runs, and a full one would
        # stall the demo.
        with self.stdout.open("w") as out, self.stderr.open("w") as err:
            self.proc = subprocess.Popen(
                [*demo, "--rate", "200", "--state-dir", str(self.state_dir), *args],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=err,
            )

    def output(self) -> str:
        """Its stdout once it exited with status 0; fails the test otherwise."""
        try:
            returncode = self.proc.wait(max(0.0, self.deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the demo did not finish within {DEMO_TIMEOUT:.0f} s")
        assert returncode == 0, self.stderr.read_text()
        return self.stdout.read_text()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def demo_runs(
    request: pytest.FixtureRequest, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, DemoRun]]:
    """The demo runs of the selected demo tests, all started now, by test name."""
    names = [
        item.name
        for item in request.session.items
        if getattr(item, "module", None) is request.module and item.name in DEMO_RUNS
    ]
    runs: dict[str, DemoRun] = {}
    try:
        for name in names:
            runs[name] = DemoRun(kafka_bootstrap, tmp_path_factory.mktemp("demo"), DEMO_RUNS[name])
        yield runs
    finally:
        for run in runs.values():
            run.kill()


def _run_demo(request: pytest.FixtureRequest, demo_runs: dict[str, DemoRun]) -> tuple[str, Path]:
    """The output and the state directory of the demo run of the test asking."""
    run = demo_runs[request.node.name]
    return run.output(), run.state_dir


@pytest.mark.subprocess_only
@pytest.mark.parametrize("stage", [False, True], ids=["table", "stage"])
def test_demo_runs_and_prints_a_summary(
    request: pytest.FixtureRequest, demo_runs: dict[str, DemoRun], stage: bool
) -> None:
    assert DEMO_RUNS[request.node.name] == (("--stage",) if stage else ())
    out, state_dir = _run_demo(request, demo_runs)
    assert "summary" in out and "records scored" in out and "model timeline" in out
    assert "rec/s" in out and "wine-linear v1" in out
    scored_line = next(line for line in out.splitlines() if "records scored" in line)
    assert int(scored_line.split("|")[2]) > 0
    # The table-based service's endpoints, fetched by the demo; none with --stage.
    assert ("GET http://" in out and '"usage":' in out) is not stage
    assert (state_dir / "application-id").exists() is not stage


@pytest.mark.subprocess_only
def test_demo_live_draws_the_table_service_graph(
    request: pytest.FixtureRequest, demo_runs: dict[str, DemoRun]
) -> None:
    """``--live`` with the table-based service: its stages, from the data consumer through
    the statistics store to the committer."""
    out, _ = _run_demo(request, demo_runs)
    stages = {line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│")}
    for stage in (
        "Consumer.source_with_offset_context",
        "stateful_map_by_key",
        "Producer.flow_with_context",
        "Committer.sink_with_offset_context",
        "global_table",
    ):
        assert stage in stages, out
    assert "bottleneck:" in out and "records scored" in out


@pytest.mark.subprocess_only
def test_demo_live_draws_the_service_graph_metrics(
    request: pytest.FixtureRequest, demo_runs: dict[str, DemoRun]
) -> None:
    """``--live --stage``: the last frame (printed at the end off a terminal) has every
    stage of the service with its counters, and the blamed stage."""
    out, _ = _run_demo(request, demo_runs)
    assert "summary" in out and "records scored" in out
    rows = {
        line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
        for line in out.splitlines()
        if line.startswith("│")
    }
    for stage in ("Consumer.committable_source", "model_scoring", "Producer.committable_sink"):
        assert stage in rows, out
    scored_line = next(line for line in out.splitlines() if "records scored" in line)
    scored = int(scored_line.split("|")[2])
    # The scoring stage's in/out counts are the records it scored (and the models it read).
    elements_out = int(rows["model_scoring"][2].replace(",", ""))
    assert elements_out >= scored > 0
    assert "bottleneck:" in out


FILL_IN_FLIGHT = 64
"""Produce requests in flight at once while filling (pipelined on one connection)."""


async def _fill_with_single_record_batches(bootstrap: str, topic: str, n: int) -> int:
    """Write ``n`` records to partition 0 of ``topic``, one record per batch (one batch per
    produce request, as a producer at a slow rate sends them); the end offset.

    The records are all alike, so one batch is built once and sent ``n`` times, the
    requests pipelined: the broker stores ``n`` one-record batches, as from a producer
    sending each record alone (which took 12 s for 30,000 with 8 producers at once, the
    producer's per-record work most of it; this takes a third of that)."""
    from aiokafka import AIOKafkaProducer, TopicPartition
    from aiokafka.protocol.produce import ProduceRequest
    from aiokafka.record.default_records import DefaultRecordBatchBuilder

    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=None, key=None, value=b"x" * 100, headers=[])
    batch = bytes(builder.build())
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)  # its client: metadata, connection
    await producer.start()
    offsets: list[int] = []
    try:
        client = producer.client
        await client.force_metadata_update()
        leader = client.cluster.leader_for_partition(TopicPartition(topic, 0))
        window = asyncio.Semaphore(FILL_IN_FLIGHT)

        async def write_one() -> None:
            request = ProduceRequest(
                required_acks=1,
                timeout=10_000,
                topics=[(topic, [(0, batch)])],
                transactional_id=None,
            )
            async with window:
                response = await client.send(leader, request)
            for _topic, partitions in response.topics:
                for partition, error_code, offset, *_ in partitions:
                    assert (partition, error_code) == (0, 0), (partition, error_code)
                    offsets.append(offset)

        await asyncio.gather(*(write_one() for _ in range(n)))
    finally:
        await producer.stop()
    assert sorted(offsets) == list(range(n))  # every batch written, once, one offset each
    return n


async def _commit(bootstrap: str, group: str, topic: str, offset: int) -> None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.structs import OffsetAndMetadata

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])  # commits need an assignment, not a join
        await consumer.commit({TopicPartition(topic, 0): OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


@pytest.mark.slow
async def test_service_keeps_scoring_on_a_partition_of_many_batches(
    materializer: Materializer, kafka_bootstrap: str, kafka_topic_factory: TopicFactory
) -> None:
    # The demo run with --forever stopped scoring after a few minutes: the embedded broker's
    # read time grows with the number of batches in a partition (about 0.7 ms per 1,000),
    # and a fetch whose fetch_max_wait_ms is shorter than the read gets nothing, forever.
    # 30,000 one-record batches (a minute of the demo's rate on one partition) take the
    # read time past the 10 ms the data consumer used to wait.
    topics = await make_topics(kafka_topic_factory)
    end = await _fill_with_single_record_batches(kafka_bootstrap, topics.data, 30_000)
    group = unique_group_id()
    await _commit(kafka_bootstrap, group, topics.data, end)  # the service reads at the tail
    await produce_values(kafka_bootstrap, topics.models, [encode_model(MODEL.to_message())])
    service = scoring_service(config(kafka_bootstrap, topics, group)).run(materializer)
    records = generate_records(50, seed=6)
    await produce_values(kafka_bootstrap, topics.data, [encode_record(r) for r in records])
    try:
        await eventually(lambda: service.counters.scored == len(records), timeout=20.0)
    finally:
        await service.drain_and_shutdown()
    assert service.counters.dead_letters == 0
    assert await committed_offsets(kafka_bootstrap, group, topics.data) == {0: end + 50}
