"""The model-serving sample as a stream-table join, on the embedded broker and over real
HTTP: models per data type from a global KTable, statistics per data type in a persistent
store that survives a restart, a rejected model leaves the previous one serving, and
``GET /models``, ``GET /state``, ``GET /state/{dataType}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from aiokafka import AIOKafkaProducer

from connectors.kafka import ConsumerSettings
from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import Tables
from connectors.kafka.testkit import TEST_CONSUMER_PROPERTIES
from reactive import Keep, Materializer, Sink, Source
from reactive.state import Stores
from samples.model_serving.models import example_linear_model, example_tree_model
from samples.model_serving.publisher import model_bytes
from samples.model_serving.records import generate_records
from samples.model_serving.table_serving import ModelCache, ServingApi, scoring_flow
from tests.kafka.support import eventually

if TYPE_CHECKING:
    from pathlib import Path


async def publish(bootstrap: str, topic: str, models: list[tuple[str, bytes | None]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for data_type, raw in models:
            await producer.send_and_wait(topic, raw, key=data_type.encode())
    finally:
        await producer.stop()


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as r:
        return r.status, await r.json()


async def test_scoring_by_data_type_through_a_global_table_of_models(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer, tmp_path: Path
) -> None:
    topic = await kafka_topic_factory(partitions=1, prefix="models")
    linear, tree = example_linear_model(), example_tree_model()
    await publish(
        kafka_bootstrap, topic, [("red", model_bytes(linear)), ("white", model_bytes(tree))]
    )
    settings = ConsumerSettings(
        kafka_bootstrap,
        key_deserializer=str_deserializer,
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
    )
    models = Tables.global_table(settings, topic).run(materializer)
    await models.ready(timeout=15)
    stats_spec = Stores.persistent("serving-stats", tmp_path, cache_size=0)
    records = generate_records(6)
    data = [("red", records[0]), ("white", records[1]), ("rose", records[2])]
    data += [("red", r) for r in records[3:]]

    async def run(cache: ModelCache) -> tuple[list[Any], list[Any], Any]:
        missed: list[Any] = []
        flow = scoring_flow(models, stats_spec, cache, missing=Sink.foreach(missed.append))
        stats, done = (
            Source.from_iterable(data).via_mat(flow, Keep.right).to_mat(Sink.seq(), Keep.both)
        ).run(materializer)
        return await done, missed, stats

    cache = ModelCache()
    scored, missed, _ = await run(cache)
    assert missed == [("rose", records[2])]  # no model for rose: not lost, not scored
    assert [(s.data_type, s.model, s.record_id) for s in scored] == [
        ("red", linear.name, records[0].id),
        ("white", tree.name, records[1].id),
        ("red", linear.name, records[3].id),
        ("red", linear.name, records[4].id),
        ("red", linear.name, records[5].id),
    ]
    assert scored[0].score == linear.score(records[0].features)
    assert scored[1].score == tree.score(records[1].features)

    # A restart: the persistent statistics carry on; the HTTP endpoints show them.
    flow = scoring_flow(models, stats_spec, cache)
    up, stats = (Source.queue(8).via_mat(flow, Keep.both).to_mat(Sink.ignore(), Keep.left)).run(
        materializer
    )
    await up.offer(("red", records[0]))
    await eventually(lambda: stats.is_open and stats.get("red", {}).get("usage") == 5)
    api = await ServingApi(models, stats, cache).start()
    try:
        async with aiohttp.ClientSession() as http:
            status, body = await get(http, f"{api.url}/state/red")
            assert status == 200 and body["name"] == linear.name and body["usage"] == 5
            assert body["description"] == f"linear_regression model {linear.name!r} version 1"
            assert 0 <= body["duration_min"] <= body["duration_mean"] <= body["duration_max"]
            status, body = await get(http, f"{api.url}/state")
            assert status == 200 and set(body) == {"red", "white"}
            assert body["white"]["usage"] == 1
            status, body = await get(http, f"{api.url}/state/rose")
            assert status == 404 and "'rose'" in body["error"]
            status, body = await get(http, f"{api.url}/models")
            assert status == 200
            assert body["red"]["name"] == linear.name and body["white"]["name"] == tree.name

            # A broken model for red is rejected: the previous one keeps serving.
            await publish(kafka_bootstrap, topic, [("red", b"not a model")])
            await eventually(lambda: models.get("red") == b"not a model")
            await up.offer(("red", records[1]))
            await eventually(lambda: stats.get("red", {}).get("usage") == 6)
            _, body = await get(http, f"{api.url}/models")
            assert body["red"]["name"] == linear.name and "malformed" in body["red"]["rejected"]
            # A new valid model replaces it; its statistics start again.
            v2 = example_linear_model(version=2)
            await publish(kafka_bootstrap, topic, [("red", model_bytes(v2))])
            await eventually(lambda: models.get("red") == model_bytes(v2))
            await up.offer(("red", records[2]))
            await eventually(lambda: stats.get("red", {}).get("version") == 2)
            _, body = await get(http, f"{api.url}/state/red")
            assert body["usage"] == 1 and body["since"] is not None
    finally:
        await api.stop()
        up.complete()
        await models.stop()
