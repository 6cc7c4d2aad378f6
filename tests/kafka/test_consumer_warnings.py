"""No silent waits (issue 12, item 5): a consumer source waiting for a topic, a partition or
a pattern match that the cluster does not have says so, by name, and repeats it while it
lasts; settings with a malformed ``bootstrap_servers`` or an empty ``group_id`` are refused
when they are built."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from connectors.kafka import (
    Consumer,
    ConsumerSettings,
    ProducerSettings,
    Subscriptions,
    TopicPartition,
)
from connectors.kafka._closing import within
from connectors.kafka._stages import consumer_watch
from connectors.kafka.testkit import create_topic, unique_topic_name
from reactive import Keep, Materializer
from reactive.testkit import TestSink
from tests.kafka.support import eventually, settings

LOGGER = "connectors.kafka"


def _warnings(caplog: pytest.LogCaptureFixture, needle: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == LOGGER and r.levelno == logging.WARNING and needle in r.getMessage()
    ]


async def _run_and_expect(
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
    source: Any,
    needle: str,
    repeats: int = 2,
) -> list[str]:
    """Run ``source`` until ``repeats`` warnings containing ``needle`` were logged."""
    control, probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    try:
        probe.request(1)
        await eventually(lambda: len(_warnings(caplog, needle)) >= repeats, timeout=15)
        return _warnings(caplog, needle)
    finally:
        await control.shutdown()
        await control.is_shutdown


@pytest.fixture
def fast_repeats(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """Repeat the warnings every 0.2 s instead of 30 s; capture the connector's log."""
    monkeypatch.setattr(consumer_watch, "MISSING_WARNING_INTERVAL", 0.2)
    caplog.set_level(logging.INFO, logger=LOGGER)


@pytest.mark.kafka
@pytest.mark.usefixtures("fast_repeats")
async def test_subscription_to_a_missing_topic_warns(
    kafka_bootstrap: str,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The embedded broker auto-creates a topic when a client asks for its metadata (the
    subscription does): the warning comes first, then an INFO once the topic exists. A
    broker that does not auto-create topics gets the warning repeated (see the partition
    and pattern cases, which no broker auto-creates)."""
    topic = unique_topic_name("missing")
    source = Consumer.plain_source(
        settings(kafka_bootstrap, kafka_group_id), Subscriptions.topics(topic)
    )
    lines = await _run_and_expect(
        materializer, caplog, source, f"topic {topic!r} does not exist", repeats=1
    )
    assert "Consumer.plain_source" in lines[0]
    assert "repeated every 0.2 s" in lines[0]


@pytest.mark.kafka
@pytest.mark.usefixtures("fast_repeats")
async def test_assignment_of_a_missing_partition_names_it(
    kafka_bootstrap: str,
    kafka_topic: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    source = Consumer.plain_source(
        settings(kafka_bootstrap),
        Subscriptions.assignment(TopicPartition(kafka_topic, 0), TopicPartition(kafka_topic, 3)),
    )
    lines = await _run_and_expect(
        materializer, caplog, source, f"partition 3 of topic {kafka_topic!r} does not exist"
    )
    assert "the topic has partitions 0-0" in lines[0]
    assert "partition 0 " not in lines[0]  # the partition that exists is not named


@pytest.mark.kafka
@pytest.mark.usefixtures("fast_repeats")
async def test_assignment_of_a_missing_topic_names_it(
    kafka_bootstrap: str, materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    topic = unique_topic_name("absent")
    source = Consumer.plain_source(
        settings(kafka_bootstrap), Subscriptions.assignment(TopicPartition(topic, 0))
    )
    await _run_and_expect(
        materializer, caplog, source, f"topic {topic!r} (partition 0) does not exist", repeats=1
    )


@pytest.mark.kafka
@pytest.mark.usefixtures("fast_repeats")
async def test_pattern_matching_no_topic_warns(
    kafka_bootstrap: str,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    pattern = "no-topic-matches-this-[0-9]+"
    source = Consumer.plain_source(
        settings(kafka_bootstrap, kafka_group_id), Subscriptions.topic_pattern(pattern)
    )
    await _run_and_expect(
        materializer, caplog, source, f"a topic matching pattern {pattern!r} (none of:"
    )


@pytest.mark.kafka
@pytest.mark.usefixtures("fast_repeats")
async def test_warning_stops_once_the_pattern_matches(
    kafka_bootstrap: str,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    prefix = unique_topic_name("later")
    pattern = f"{prefix}-.*"
    source = Consumer.plain_source(
        settings(kafka_bootstrap, kafka_group_id), Subscriptions.topic_pattern(pattern)
    )
    needle = f"a topic matching pattern {pattern!r} (none of:"
    control, _probe = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
    try:
        await eventually(lambda: len(_warnings(caplog, needle)) >= 2, timeout=15)
        await create_topic(kafka_bootstrap, f"{prefix}-1", 1)
        await eventually(
            lambda: any("found now" in r.getMessage() for r in caplog.records), timeout=15
        )
        after = next(i for i, r in enumerate(caplog.records) if "found now" in r.getMessage())
        line = caplog.records[after].getMessage()
        assert line.endswith(
            f"found now (created meanwhile, or auto-created by the broker when "
            f"the consumer asked for it): a topic matching pattern {pattern!r}"
        ), line
        await asyncio.sleep(0.5)  # a few more checks, 0.2 s apart
        assert [r for r in caplog.records[after:] if "(none of:" in r.getMessage()] == []
    finally:
        await control.shutdown()
        await control.is_shutdown


async def test_a_cancel_arriving_with_the_metadata_answer_is_not_lost() -> None:
    """The watcher waits for the cluster metadata with ``_within``; a cancel that comes in
    the step where the answer arrives must still cancel it. ``asyncio.wait_for`` (Python
    3.11) returned the answer instead: the watcher missed the poller's cancel at shutdown,
    went on, and ``Control.shutdown()`` never completed (the pattern test above hung, once
    in tens of loaded runs, on a broker holding hundreds of topics)."""
    answer: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def metadata() -> str:
        return await answer

    watcher = asyncio.ensure_future(within(metadata(), 5.0))
    for _ in range(3):
        await asyncio.sleep(0)  # the watcher now waits for the answer
    answer.set_result("cluster metadata")
    watcher.cancel()
    with pytest.raises(asyncio.CancelledError):
        await watcher


@pytest.mark.kafka
async def test_existing_subscriptions_do_not_warn(
    kafka_bootstrap: str,
    kafka_topic: str,
    kafka_group_id: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    for subscription in (
        Subscriptions.topics(kafka_topic),
        Subscriptions.assignment(TopicPartition(kafka_topic, 0)),
        Subscriptions.topic_pattern(kafka_topic),
    ):
        source = Consumer.plain_source(settings(kafka_bootstrap, kafka_group_id), subscription)
        control, _ = source.to_mat(TestSink.probe(), Keep.both).run(materializer)
        metrics = control.metrics
        await eventually(lambda: metrics()["assigned_partitions"] == 1, timeout=15)  # noqa: B023
        await control.shutdown()
        await control.is_shutdown
    assert _warnings(caplog, "does not exist") == []
    assert _warnings(caplog, "a topic matching pattern") == []


# -- settings validation --


@pytest.mark.parametrize(
    "servers",
    [
        "localhost:9092",
        "localhost:9092,broker-2.example.com:19092",
        " 10.0.0.1:9092 , 10.0.0.2:9093 ",
        "[::1]:9092",
        ["h1:1", "h2:65535"],
    ],
)
def test_good_bootstrap_servers_are_accepted(servers: Any) -> None:
    joined = ConsumerSettings(servers).bootstrap_servers
    assert ProducerSettings(servers).bootstrap_servers == joined
    assert " " not in joined


@pytest.mark.parametrize(
    ("servers", "bad"),
    [
        ("localhost", "localhost"),
        ("localhost9092", "localhost9092"),
        ("localhost:", "localhost:"),
        ("localhost:abc", "localhost:abc"),
        ("localhost:0", "localhost:0"),
        ("localhost:70000", "localhost:70000"),
        ("http://localhost:9092", "http://localhost:9092"),
        ("a:1,,b:2", "''"),
        ("a:1;b:2", "a:1;b:2"),
        ("a:1,b c:2", "b c:2"),
        (["a:1", "b"], "'b'"),
    ],
)
def test_malformed_bootstrap_servers_are_refused(servers: Any, bad: str) -> None:
    for cls in (ConsumerSettings, ProducerSettings):
        with pytest.raises(ValueError, match="bad bootstrap_servers entry") as info:
            cls(servers)
        assert bad in str(info.value)
        assert cls.__name__ in str(info.value)


def test_empty_bootstrap_servers_are_refused() -> None:
    with pytest.raises(ValueError, match="bootstrap_servers is empty"):
        ConsumerSettings(" ")
    with pytest.raises(TypeError, match="bootstrap_servers entries must be str"):
        ProducerSettings(["a:1", 9092])  # type: ignore[list-item]


@pytest.mark.parametrize("group", ["", "   "])
def test_empty_group_id_is_refused(group: str) -> None:
    with pytest.raises(ValueError, match="ConsumerSettings: group_id must not be empty"):
        ConsumerSettings("localhost:9092", group)
    with pytest.raises(ValueError, match="group_id must not be empty"):
        ConsumerSettings("localhost:9092").with_group_id(group)
    with pytest.raises(ValueError, match="group_id must not be empty"):
        ConsumerSettings("localhost:9092", properties={"group.id": group})
    assert ConsumerSettings("localhost:9092", None).group_id is None
