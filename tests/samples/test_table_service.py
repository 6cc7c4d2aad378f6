"""The table-based demo service on embedded brokers that start empty, as ``make demo``'s:
a persistent changelogged store keeps its state when the changelog is empty or shorter
than its checkpoint (the local store wins, nothing is wiped), and the demo run twice over
one state dir carries the statistics over, seen over real HTTP.
"""

from __future__ import annotations

import asyncio
import io
import json
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from aiokafka import AIOKafkaProducer

from connectors.kafka import ConsumerSettings, ProducerSettings, TopicPartition
from connectors.kafka.serde import str_deserializer
from connectors.kafka.state import changelogged
from connectors.kafka.tables import Tables
from connectors.kafka.testkit import EmbeddedBroker, create_topic
from reactive import Materializer, Sink, Source
from reactive.state import MsgpackSerde, Stores
from samples.model_serving import demo
from samples.model_serving.demo import DemoSummary, run_demo
from samples.model_serving.models import example_linear_model
from samples.model_serving.publisher import model_bytes
from samples.model_serving.table_service import read_stats
from samples.model_serving.table_serving import ModelCache

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.kafka


async def count_words(
    servers: str, state_dir: Path, words: list[str], materializer: Materializer
) -> tuple[dict[str, int], dict[str, Any]]:
    """Count ``words`` into a persistent store with a changelog (one instance, partition
    0 of topic ``words``) on the broker at ``servers``; the counts and the store metrics."""
    await create_topic(servers, "words", 1, exist_ok=True)
    store = changelogged(
        Stores.persistent("counts", state_dir),
        ProducerSettings(servers),
        ConsumerSettings(servers),
        application_id="word-counter",
        checkpoint_outside_changelog="keep",  # as the demo's store (see table_service)
    )

    def count(n: int | None, word: str) -> tuple[int, tuple[str, int]]:
        return (n or 0) + 1, (word, (n or 0) + 1)

    # With a context, as the demo's service: each element's update is written (and
    # acknowledged by the changelog) before the next.
    instances: list[Any] = []  # the changelog layer of the instance, for its metrics

    def keep(engine: Any, context: Any) -> Any:
        instances.append(engine)
        return engine

    spec = store.for_partition(TopicPartition("words", 0)).with_layer(keep)
    done = (
        Source.from_iterable(words)
        .as_source_with_context(lambda w: None)
        .stateful_map_by_key(spec, lambda w: w, count)
        .as_source()
        .run_with(Sink.seq(), materializer)
    )
    await done
    await store.wait_closed()
    [instance] = instances
    metrics = instance.metrics()
    kept = Stores.persistent("counts", state_dir).for_partition(0).open()
    try:
        return dict(kept.items()), metrics
    finally:
        kept.close()


async def test_a_fresh_broker_does_not_wipe_the_persistent_store(
    tmp_path: Path, materializer: Materializer
) -> None:
    # Run 1 on broker A: 30 updates; updates made while a changelog write is in flight
    # go out together (the last value per key), so the changelog ends at 2..30 records.
    broker = await EmbeddedBroker().astart()
    try:
        counts, _ = await count_words(
            broker.bootstrap_servers, tmp_path, ["red"] * 20 + ["white"] * 10, materializer
        )
    finally:
        await broker.astop()
    assert counts == {"red": 20, "white": 10}
    checkpoint = json.loads((tmp_path / "counts.0.checkpoint").read_text())["offset"]
    assert 2 <= checkpoint <= 30

    # Run 2 on a fresh broker B: the changelog is created empty; its end (0) is below the
    # checkpoint. Nothing is restored and the local store is kept as it was.
    broker = await EmbeddedBroker().astart()
    try:
        counts, metrics = await count_words(
            broker.bootstrap_servers, tmp_path, ["red", "white"], materializer
        )
    finally:
        await broker.astop()
    assert counts == {"red": 21, "white": 11}
    assert metrics["restored_records"] == 0 and metrics["restore_start_offset"] == checkpoint

    # Run 3 on a fresh broker C whose changelog already holds stale records (up to 3, all
    # at offsets below the checkpoint): they are not applied over the local store's values.
    broker = await EmbeddedBroker().astart()
    try:
        servers = broker.bootstrap_servers
        await create_topic(servers, "words", 1)
        await create_topic(servers, "word-counter-counts-changelog", 1)
        serde = MsgpackSerde()
        producer = AIOKafkaProducer(bootstrap_servers=servers)
        await producer.start()
        try:
            for word, stale in (("red", 1), ("white", 1), ("rose", 7))[:checkpoint]:
                await producer.send_and_wait(
                    "word-counter-counts-changelog",
                    serde.to_bytes(stale),
                    key=serde.to_bytes(word),
                    partition=0,
                )
        finally:
            await producer.stop()
        counts, metrics = await count_words(servers, tmp_path, ["red"], materializer)
    finally:
        await broker.astop()
    assert counts == {"red": 22, "white": 11}
    assert metrics["restored_records"] == 0


async def fetch(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with http.get(url) as response:
        return response.status, await response.json()


async def run_once(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[DemoSummary, str, list[tuple[int, Any]]]:
    """The demo for 3 s on its own embedded broker; its summary, output and what
    ``GET /state/red`` and ``GET /state/rose`` answered while it ran."""
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)  # a fresh broker per run
    out = io.StringIO()
    answers: list[tuple[int, Any]] = []
    urls: list[str] = []

    def on_tick(elapsed: float, service: Any) -> None:
        if not urls:
            urls.append(service.api.url)

    async def query() -> None:
        while not urls:
            await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as http:
            status, body = await fetch(http, f"{urls[0]}/state/red")
            while status == 404 and len(urls) == 1:  # until red's first record is scored
                await asyncio.sleep(0.1)
                status, body = await fetch(http, f"{urls[0]}/state/red")
            answers.append((status, body))
            answers.append(await fetch(http, f"{urls[0]}/state/rose"))

    querying = asyncio.ensure_future(query())
    try:
        summary = await run_demo(
            3.0, rate=200, out=out, on_tick=on_tick, state_dir=state_dir, http_every=1.0
        )
    finally:
        urls.append("the run is over")
    await querying
    return summary, out.getvalue(), answers


async def test_the_demo_carries_its_statistics_over_a_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, out1, answers1 = await run_once(tmp_path, monkeypatch)
    assert first.restored == {} and "none (a new state dir)" in out1
    assert first.final_lag == 0 and first.records_scored > 0
    state1 = first.endpoints["/state"]
    # Every scored record counted once in its type's statistics.
    assert sum(s["usage"] for s in state1.values()) == first.records_scored
    assert state1["red"]["name"] == "wine-linear" and state1["red"]["usage"] > 0
    models = first.endpoints["/models"]
    assert models["red"]["name"] == "wine-linear" and "expected 11" in models["red"]["rejected"]
    assert "GET /models" in out1 and "GET /state" in out1  # fetched at intervals
    status, body = answers1[0]
    assert status == 200 and body["data_type"] == "red"
    assert answers1[1][0] == 404
    assert read_stats(tmp_path) == state1  # what the store kept

    second, out2, answers2 = await run_once(tmp_path, monkeypatch)
    assert second.restored == state1
    assert f"restored 2 data types: red wine-linear used {state1['red']['usage']}" in out2
    state2 = second.endpoints["/state"]
    assert sum(s["usage"] for s in state2.values()) == (
        first.records_scored + second.records_scored
    )
    assert state2["red"]["usage"] > state1["red"]["usage"]
    assert state2["red"]["since"] == state1["red"]["since"]  # the same model serves on
    assert state2["white"]["since"] == state1["white"]["since"]
    status, body = answers2[0]  # over HTTP while it ran: already past the first run's
    assert status == 200 and body["usage"] >= state1["red"]["usage"]


def test_the_table_demo_needs_its_extras_or_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_rocksdict(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "rocksdict":
            raise ModuleNotFoundError("No module named 'rocksdict'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_rocksdict)
    with pytest.raises(SystemExit) as exc:
        demo.main(["--seconds", "1"])
    assert exc.value.code == 2
    assert "the table-based demo needs the http and state extras" in capsys.readouterr().err


def test_a_taken_port_is_a_clear_error(
    kafka_bootstrap: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import socket

    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_bootstrap)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            demo.main(["--seconds", "1", "--port", str(port), "--state-dir", str(tmp_path)])
    assert exc.value.code == 1
    assert f"cannot serve HTTP on 127.0.0.1:{port}" in capsys.readouterr().err


async def test_the_model_cache_sees_every_model_the_table_takes(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    # A valid red model then at once a broken one: the table keeps only the broken bytes,
    # but the cache parsed the valid model as the table wrote it, so it still serves.
    topic = await kafka_topic_factory(partitions=1, prefix="models")
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap)
    await producer.start()
    try:
        for raw in (model_bytes(example_linear_model()), b"not a model"):
            await producer.send_and_wait(topic, raw, key=b"red")
    finally:
        await producer.stop()
    cache = ModelCache()
    settings = ConsumerSettings(kafka_bootstrap, key_deserializer=str_deserializer)
    table = Tables.global_table(settings, topic, cache.table_store("models")).run(materializer)
    try:
        await table.ready(timeout=15)
        assert table.get("red") == b"not a model"
        model = cache.model("red", table.get("red"))
        assert model is not None and model.name == "wine-linear"
        assert cache.loaded == {"red": 1} and cache.rejected == {"red": 1}
        assert "malformed" in (cache.error("red") or "")
    finally:
        await table.stop()
