"""Model-serving benchmarks: the Kafka scoring service, and direct vs through Kafka.

``model_serving``: the scoring service of :mod:`samples.model_serving.service` end to end.
Before the timed part (not timed): the four topics are created as in the demo (data and
scored 3 partitions, models and dead letters 1), a linear model is published to the model
topic, and ``size`` generated wine records (``iter_records(seed=7)``, msgpack, compact
form, key = id) are written to the data topic, their event timestamps set to the
wall-clock time the pre-load started. The clock starts when the service is started
(``scoring_service(...).run()``: consumer group join, model load and the first fetch are
timed) and stops when the group's committed offsets reach the end of every data
partition, which the committable sink does only after the scored records were acknowledged
by the broker: every scored record is then in the scored topic. The direct system scores
the same records with :func:`samples.model_serving.pipeline.direct_pipeline` (one fused
in-process graph, no Kafka, no msgpack) and stops when its sink has seen the last one.
Throughput is reported over the whole timed part and from the first scored record on
(``steady_throughput``, without the group join); ``startup`` is the time to the first one.

Latency: per record, from the moment it is available to the pipeline to its scoring
(where the service's ``LatencyWindow`` measures: the scored record leaving the scoring
stage), wall clock. The records of the pre-loaded backlog are available from the start of
the timed part, so that is the later of the record's event timestamp and the start; with
a backlog the figure is mostly waiting time (p50 is about the time to score half of it).
The service's own window (event timestamp to scoring, last 2,048 records) is kept in the
JSON as ``service_window_p50_ms`` / ``service_window_p99_ms``. The result compared with
the baseline is ``(distinct ids scored, math.fsum of the scores)``.

``direct_vs_kafka``: :func:`samples.direct_vs_kafka.run_direct` and
:func:`~samples.direct_vs_kafka.run_kafka` as they are, on a plan scaled to ``size``
(records offered at 600/s for ``size / 600`` s, the scorer ten times slower during the
middle third), reporting the figures of the sample's table.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` when set, else a fresh
:class:`~connectors.kafka.testkit.EmbeddedBroker` per measurement.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import TYPE_CHECKING, Any

from benchmarks.runner import (
    P50,
    P99,
    THROUGHPUT,
    Benchmark,
    Measurement,
    Metric,
    System,
    register,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Seed of the generated records (both systems score the same ones).
SEED = 7
#: Partitions of the data, model, scored and dead-letter topics (as in the demo).
PARTITIONS = (3, 1, 3, 1)
#: Producer settings of the pre-load (as in ``benchmarks.kafka_bench``).
PRELOAD_PRODUCER_OPTIONS: dict[str, Any] = {"linger_ms": 5, "max_batch_size": 65536, "acks": 1}
#: How often the committed offsets are read once every record was scored.
POLL_INTERVAL = 0.01
#: Seconds allowed from the start of the service to the last commit.
DONE_TIMEOUT = 240.0
#: Records offered per second by ``direct_vs_kafka`` (the sample's default rate).
DVK_RATE = 600

STARTUP = Metric("startup", "s", "first record scored after", higher_is_better=False)
STEADY = Metric("steady_throughput", "el/s", "throughput after the first scored record", True)
MAX_BACKLOG = Metric("max_backlog", "records", "max backlog (Kafka: lag)", False)
SLOW_RATE = Metric("producer_rate_while_slow", "el/s", "producer rate while slow", True)
M = "benchmarks.suite_model_serving:"

__all__ = [
    "direct_pipeline_system",
    "dvk_direct",
    "dvk_kafka",
    "dvk_plan",
    "kafka_service_system",
    "stamped_records",
]


@contextlib.asynccontextmanager
async def _broker() -> AsyncIterator[str]:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set, else a fresh embedded broker for the block."""
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


def stamped_records(size: int) -> list[Any]:
    """The ``size`` generated records, each stamped with the current wall-clock time (ms)."""
    from samples.model_serving.loader import loader_records
    from samples.model_serving.records import DataRecord

    now_ms = time.time_ns() // 1_000_000
    return [DataRecord(r.id, now_ms, r.features) for r in loader_records(SEED, size)]


class _Scores:
    """Scores and latencies of the records seen leaving the scoring stage."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.start_ms = 0.0
        self.start = 0.0
        self.first_at: float | None = None
        self.scores: dict[Any, float] = {}
        self.latencies_ms: list[float] = []
        self.all_scored = asyncio.Event()

    def begin(self) -> None:
        """The timed part starts now."""
        self.start = time.perf_counter()
        self.start_ms = time.time_ns() / 1e6

    def on_scored(self, scored: Any) -> None:
        """One scored record left the scoring stage (the service's ``on_scored`` hook)."""
        available_ms = max(float(scored.event_ts_ms), self.start_ms)
        self.latencies_ms.append(time.time_ns() / 1e6 - available_ms)
        if self.first_at is None:
            self.first_at = time.perf_counter()
        self.scores[scored.id] = scored.score
        if len(self.scores) >= self.size:
            self.all_scored.set()

    def metrics(self, elapsed: float) -> dict[str, float]:
        """Throughput (over ``elapsed``, and from the first scored record on), latency
        p50/p99 (µs) and the time to the first scored record."""
        from samples.model_serving.stats import percentile

        ordered = sorted(self.latencies_ms)
        startup = (self.first_at or time.perf_counter()) - self.start
        after_start = elapsed - startup
        return {
            "elapsed": elapsed,
            "throughput": self.size / elapsed if elapsed > 0 else float("inf"),
            "steady_throughput": self.size / after_start if after_start > 0 else float("inf"),
            "p50": percentile(ordered, 50.0) * 1000.0,
            "p99": percentile(ordered, 99.0) * 1000.0,
            "startup": startup,
        }

    def result(self) -> tuple[int, float]:
        """``(distinct ids scored, exact sum of their scores)``: independent of the order."""
        return len(self.scores), math.fsum(self.scores.values())


async def _preload(servers: str, topic: str, records: list[Any]) -> dict[int, int]:
    """Write ``records`` to ``topic`` (key = id); return the end offset of every partition."""
    from aiokafka import AIOKafkaProducer

    from samples.model_serving.records import encode_record

    ends: dict[int, int] = {}
    producer = AIOKafkaProducer(bootstrap_servers=servers, **PRELOAD_PRODUCER_OPTIONS)
    await producer.start()
    try:
        futures = []
        for rec in records:
            value = encode_record(rec, compact=True)
            futures.append(await producer.send(topic, value, key=str(rec.id).encode()))
            if len(futures) >= 10_000:
                for md in await asyncio.gather(*futures):
                    ends[md.partition] = max(ends.get(md.partition, 0), md.offset + 1)
                futures.clear()
        for md in await asyncio.gather(*futures):
            ends[md.partition] = max(ends.get(md.partition, 0), md.offset + 1)
    finally:
        await producer.stop()
    return ends


async def kafka_service_system(size: int) -> Measurement:
    """The Kafka scoring service on a pre-loaded data topic (see the module docstring)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from connectors.kafka.testkit import (
        TEST_CONSUMER_PROPERTIES,
        create_topic,
        unique_group_id,
        unique_topic_name,
    )
    from reactive import Materializer
    from samples.model_serving.models import example_linear_model
    from samples.model_serving.publisher import model_publisher
    from samples.model_serving.service import ServiceConfig, Topics, scoring_service

    async with _broker() as servers, Materializer() as mat:
        suffix = unique_topic_name("")
        topics = Topics(
            data=f"ms-data{suffix}",
            models=f"ms-models{suffix}",
            scored=f"ms-scored{suffix}",
            dead_letters=f"ms-dlq{suffix}",
        )
        for name, partitions in zip(topics.all(), PARTITIONS):
            await create_topic(servers, name, partitions)
        group = unique_group_id("ms-scorer")
        await (
            model_publisher(servers, topics.models, [(0.0, example_linear_model(1))]).run(mat).done
        )
        ends = await _preload(servers, topics.data, stamped_records(size))
        tps = {p: TopicPartition(topics.data, p) for p in ends}
        offsets = AIOKafkaConsumer(
            bootstrap_servers=servers, group_id=group, enable_auto_commit=False
        )
        await offsets.start()
        scores = _Scores(size)
        config = ServiceConfig(
            servers,
            topics,
            group_id=group,
            consumer_properties=TEST_CONSUMER_PROPERTIES,
            on_scored=scores.on_scored,
        )
        try:
            scores.begin()
            service = scoring_service(config).run(mat)
            try:
                await asyncio.wait_for(_until_committed(scores, offsets, tps, ends), DONE_TIMEOUT)
                elapsed = time.perf_counter() - scores.start
            finally:
                await service.drain_and_shutdown()
        finally:
            await offsets.stop()
    counters = service.counters
    if counters.dead_letters or counters.passed:
        raise RuntimeError(
            f"{counters.dead_letters} dead letters, {counters.passed} unscored records"
        )
    metrics = scores.metrics(elapsed)
    for q in (50, 99):
        value = service.latency.percentile(q)
        if value is not None:
            metrics[f"service_window_p{q}_ms"] = value
    snap = service.state.snapshot()
    if snap.scoring_time_mean_us is not None:
        metrics["scoring_time_mean_us"] = snap.scoring_time_mean_us
    return Measurement(metrics=metrics, result=scores.result())


async def _until_committed(
    scores: _Scores, offsets: Any, tps: dict[int, Any], ends: dict[int, int]
) -> None:
    """Wait until every record was scored, then until every data partition is committed."""
    await scores.all_scored.wait()
    while True:
        committed = [(await offsets.committed(tp)) or 0 for tp in tps.values()]
        if all(c >= ends[p] for p, c in zip(tps, committed)):
            return
        await asyncio.sleep(POLL_INTERVAL)


async def direct_pipeline_system(size: int) -> Measurement:
    """The same records scored by ``direct_pipeline`` in process (one fused graph)."""
    from reactive import Materializer, Sink
    from samples.model_serving.models import example_linear_model
    from samples.model_serving.pipeline import direct_pipeline

    records = stamped_records(size)
    scores = _Scores(size)

    def on_pair(pair: tuple[Any, Any]) -> None:
        if pair[0] is not None:
            scores.on_scored(pair[0])

    async with Materializer() as mat:
        graph = direct_pipeline(records, [example_linear_model(1)], Sink.foreach(on_pair))
        scores.begin()
        _state, done = graph.run(mat)
        await done
        elapsed = time.perf_counter() - scores.start
    return Measurement(metrics=scores.metrics(elapsed), result=scores.result())


register(
    Benchmark(
        name="model_serving",
        title="Model serving: the Kafka scoring service vs the direct pipeline",
        description=(
            "The scoring service of `samples/model_serving/service.py` (data topic -> "
            "`committable_source` -> decode -> `ModelScoringStage` (linear model published "
            "first) -> `Producer.committable_sink` to the scored topic, commits after the "
            "writes) on n generated wine records pre-loaded into a 3-partition data topic; "
            "timed from starting the service (group join included) to the group's committed "
            "offsets reaching the end of the data topic, i.e. every scored record in the "
            "scored topic. Baseline: the same records through `direct_pipeline` in process. "
            "Latency: from a record being available (the later of its event timestamp and "
            "the start) to its scoring; on a pre-loaded backlog that is mostly waiting. "
            "Embedded Tansu broker unless KAFKA_BOOTSTRAP_SERVERS is set."
        ),
        systems=(
            System("direct pipeline", M + "direct_pipeline_system", "baseline"),
            System("kafka service", M + "kafka_service_system", "project"),
        ),
        baseline="direct pipeline",
        size=50_000,
        quick_size=1_000,
        metrics=(THROUGHPUT, STEADY, P50, P99, STARTUP),
        timeout=300.0,
        max_rounds=5,  # ~12 s a round; no ratio target
        size_label="records",
    )
)


# --------------------------------------------------------------------------------------------
# direct_vs_kafka: samples/direct_vs_kafka.py's two pipelines
# --------------------------------------------------------------------------------------------


def dvk_plan(size: int) -> Any:
    """The sample's plan for ``size`` records offered at :data:`DVK_RATE`/s: the scorer is
    ten times slower during the middle third (``size=1800`` is the sample's ``--quick``)."""
    from samples.direct_vs_kafka import Plan

    seconds = size / DVK_RATE
    return Plan(
        rate=DVK_RATE,
        seconds=seconds,
        slow_from=seconds / 3,
        slow_until=2 * seconds / 3,
        sample_every=min(0.25, seconds / 15),
    )


def _dvk_measurement(m: Any, plan: Any) -> Measurement:
    """The figures of the sample's table for one pipeline, as a harness measurement."""
    slow_span = plan.slow_until - plan.slow_from
    metrics: dict[str, float] = {
        "elapsed": max(m.last_scored_at - m.start, 0.0),
        "throughput": m.throughput,
        "max_backlog": float(max((s.backlog for s in m.samples), default=0)),
        "producer_rate_while_slow": m.produced_during_slow / slow_span,
        "records_scored": float(m.scored),
    }
    for q in (50, 99):
        value = m.p(q)
        if value is not None:
            metrics[f"p{q}"] = value * 1000.0
    if m.drain_seconds is not None:
        metrics["drain_seconds"] = m.drain_seconds
    series = [[s.t, float(s.backlog)] for s in m.samples]
    return Measurement(metrics=metrics, result=m.scored, series=series)


async def dvk_direct(size: int) -> Measurement:
    """``samples.direct_vs_kafka.run_direct`` on :func:`dvk_plan`."""
    from samples.direct_vs_kafka import run_direct

    plan = dvk_plan(size)
    return _dvk_measurement(await run_direct(plan), plan)


async def dvk_kafka(size: int) -> Measurement:
    """``samples.direct_vs_kafka.run_kafka`` on :func:`dvk_plan` (its own broker)."""
    from samples.direct_vs_kafka import run_kafka

    plan = dvk_plan(size)
    async with _broker() as servers:
        m = await run_kafka(plan, servers)
    if m.scored == 0:
        raise RuntimeError("no record was scored")
    return _dvk_measurement(m, plan)


register(
    Benchmark(
        name="direct_vs_kafka",
        title="Direct vs through Kafka, scorer slowed down midway",
        description=(
            "`samples/direct_vs_kafka.py`: the same scoring pipeline as one fused in-process "
            "stream (records -> throttle -> scoring -> simulated work -> sink) and through "
            "Kafka (data loader -> data topic -> scoring service -> scored topic). n records "
            f"offered at {DVK_RATE}/s; the scorer's capacity is 3x the rate, 10x slower "
            "during the middle third. Figures of the sample's table: throughput (scored/s), "
            "end-to-end latency p50/p99 (record handed to the pipeline -> scored), max "
            "backlog (produced - scored; Kafka: the consumer lag), producer rate while slow "
            "(direct: back-pressure slows it). Embedded Tansu broker unless "
            "KAFKA_BOOTSTRAP_SERVERS is set."
        ),
        systems=(
            System("direct", M + "dvk_direct", "baseline"),
            System("kafka", M + "dvk_kafka", "project"),
        ),
        baseline="direct",
        size=6 * DVK_RATE,
        quick_size=3 * DVK_RATE,
        metrics=(THROUGHPUT, P50, P99, MAX_BACKLOG, SLOW_RATE),
        check_results=False,
        timeout=180.0,
        max_rounds=3,  # time-based (6 s per system); no target
        size_label="records offered",
    )
)
