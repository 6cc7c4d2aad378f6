"""The consumer source and the producer sinks speak the runtime's batch protocol
(``reactive/_impl/fused.py``): records cross ``committable_source -> map ->
committable_sink`` in batches with fast paths on, one by one with them off, with the
same results either way."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from connectors.kafka import (
    CommitterSettings,
    Consumer,
    ConsumerSettings,
    DeserializationError,
    DrainingControl,
    Producer,
    ProducerMessage,
    ProducerRecord,
    ProducerSettings,
    Subscriptions,
)
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    committed_offsets,
    produce_values,
    read_values,
    unique_group_id,
)
from reactive import Attributes, Done, Keep, Materializer, Supervision
from reactive._stage.logic import _Batch
from reactive.stage import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    SinkShape,
)

pytestmark = pytest.mark.kafka

N = 3000


async def eventually(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.01)


def consumer_settings(bootstrap: str, group: str | None, **kwargs: Any) -> ConsumerSettings:
    return ConsumerSettings(
        bootstrap,
        group,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=0.2,
        **kwargs,
    )


class BatchProbeSink(GraphStageWithMaterializedValue[SinkShape, Any]):
    """A batch-capable sink pulling ``demand`` elements at a time; its materialized value
    is a future of ``(elements, sizes of the pushes)``, failed with the stream's error
    (the elements received before it are in ``received``)."""

    def __init__(self, demand: int) -> None:
        self.demand = demand
        self.shape = SinkShape(Inlet("BatchProbe.in"))
        self.received: list[Any] = []
        self.sizes: list[int] = []

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        promise = asyncio.get_running_loop().create_future()
        return _BatchProbeLogic(self, promise), promise


class _BatchProbeLogic(GraphStageLogic, InHandler):
    def __init__(self, stage: BatchProbeSink, promise: asyncio.Future[Any]) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.in_ = stage.shape.in_
        self.promise = promise
        self.set_handler(self.in_, self)
        self._batch_in = (self.in_,)

    def pre_start(self) -> None:
        self.request()

    def request(self) -> None:
        self.pull(self.in_)
        c = self._conns[self.in_]
        if c.batch:
            c.demand_n = self.stage.demand

    def on_push(self) -> None:
        x = self.grab(self.in_)
        elems = list(x) if type(x) is _Batch else [x]
        assert type(x) is not _Batch or 1 <= len(x) <= self.stage.demand
        self.stage.received.extend(elems)
        self.stage.sizes.append(len(elems))
        self.request()

    def on_upstream_finish(self) -> None:
        self.promise.set_result((self.stage.received, self.stage.sizes))
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.promise.set_exception(exc)
        self.fail_stage(exc)


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_consume_map_produce_commit_in_order(
    kafka_bootstrap: str, kafka_topic_factory: Any, fast_paths: bool
) -> None:
    source = await kafka_topic_factory()
    target = await kafka_topic_factory()
    group = unique_group_id()
    await produce_values(kafka_bootstrap, source, [f"r{i}" for i in range(N)])
    seen: list[int] = []

    def envelope(msg: Any) -> Any:
        seen.append(msg.record.offset)
        return ProducerMessage.single(
            ProducerRecord(target, msg.record.value.upper()), msg.committable_offset
        )

    async with Materializer(fast_paths=fast_paths) as materializer:
        control = (
            Consumer.committable_source(
                consumer_settings(kafka_bootstrap, group), Subscriptions.assignment((source, 0))
            )
            .map(envelope)
            .to_mat(
                Producer.committable_sink(
                    # Fewer sends in flight than records: the in-flight bound matters.
                    ProducerSettings(kafka_bootstrap, parallelism=100),
                    CommitterSettings(max_batch=250, max_interval=3600),
                ),
                DrainingControl,
            )
            .run(materializer)
        )
        await eventually(lambda: control.metrics()["records_emitted"] == N)
        assert await asyncio.wait_for(control.drain_and_shutdown(), 20) is Done
    assert seen == list(range(N))
    assert await committed_offsets(kafka_bootstrap, group, source) == {0: N}
    assert await read_values(kafka_bootstrap, target, N) == [f"R{i}".encode() for i in range(N)]


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_source_answers_within_demand(
    kafka_bootstrap: str, kafka_topic: str, fast_paths: bool
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, [f"r{i}" for i in range(500)])
    probe = BatchProbeSink(demand=7)
    async with Materializer(fast_paths=fast_paths) as materializer:
        control, done = (
            Consumer.committable_source(
                consumer_settings(kafka_bootstrap, unique_group_id()),
                Subscriptions.assignment((kafka_topic, 0)),
            )
            .to_mat(probe, Keep.both)
            .run(materializer)
        )
        await eventually(lambda: len(probe.received) == 500)
        await control.shutdown()
        received, sizes = await asyncio.wait_for(done, 20)
    assert [m.record.offset for m in received] == list(range(500))
    assert [m.committable_offset.offset for m in received] == list(range(500))
    assert control.metrics()["records_emitted"] == 500
    assert max(sizes) <= 7
    if fast_paths:
        assert max(sizes) > 1  # records arrive fetched in bulk: some pull got a batch
    else:
        assert set(sizes) == {1}


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_deserialization_failure_after_the_records_before_it(
    kafka_bootstrap: str, kafka_topic: str, fast_paths: bool
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, [b"a", b"b", b"\xff\xfe", b"c"])
    probe = BatchProbeSink(demand=10)
    async with Materializer(fast_paths=fast_paths) as materializer:
        control, done = (
            Consumer.plain_source(
                consumer_settings(kafka_bootstrap, None, value_deserializer=bytes.decode),
                Subscriptions.assignment((kafka_topic, 0)),
            )
            .to_mat(probe, Keep.both)
            .run(materializer)
        )
        with pytest.raises(DeserializationError, match="offset 2"):
            await asyncio.wait_for(done, 20)
        await control.is_shutdown
    assert [r.value for r in probe.received] == ["a", "b"]


@pytest.mark.parametrize("fast_paths", [True, False])
async def test_deserialization_failure_resumed_is_skipped_and_counted(
    kafka_bootstrap: str, kafka_topic: str, fast_paths: bool
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, [b"a", b"\xff", b"b", b"\xfe", b"c"])
    probe = BatchProbeSink(demand=10)
    async with Materializer(fast_paths=fast_paths) as materializer:
        control, done = (
            Consumer.plain_source(
                consumer_settings(kafka_bootstrap, None, value_deserializer=bytes.decode),
                Subscriptions.assignment((kafka_topic, 0)),
            )
            .with_attributes(Attributes.supervision_strategy(lambda exc: Supervision.resume))
            .to_mat(probe, Keep.both)
            .run(materializer)
        )
        await eventually(lambda: len(probe.received) == 3)
        await control.shutdown()
        received, _ = await asyncio.wait_for(done, 20)
    assert [r.value for r in received] == ["a", "b", "c"]
    assert control.metrics()["records_skipped"] == 2
    assert control.metrics()["records_emitted"] == 3
