"""Log noise during an outage (issue 12, item 7): aiokafka's repeated messages are
summarised (``connectors.kafka._logging``), and the consumer source logs its own view of
the outage on the ``connectors.kafka`` logger: connection lost since when, still
retrying, restored after how long."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import Consumer, ConsumerSettings, Subscriptions, summarize_aiokafka_logs
from connectors.kafka import _logging as kafka_logging
from connectors.kafka._logging import DEFAULT_INTERVAL, RepeatFilter
from connectors.kafka._stages import consumer_watch
from connectors.kafka.testkit import (
    TEST_CONSUMER_PROPERTIES,
    EmbeddedBroker,
    TcpProxy,
    create_topic,
    produce_values,
    proxied_broker,
    unique_group_id,
)
from reactive import Keep, Materializer
from reactive.testkit import TestSink
from tests.kafka.support import eventually

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _record(
    msg: str, *args: object, name: str = "aiokafka", level: int = logging.ERROR
) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


# -- RepeatFilter (a fake clock, no broker) --


def test_repeats_within_the_interval_are_held_back_and_counted() -> None:
    clock = FakeClock()
    f = RepeatFilter(10.0, clock=clock)
    template = "Unable connect to node with id %s: %s"
    assert f.filter(_record(template, 1, "refused"))
    passed = []
    for i in range(99):
        clock.now += 0.05
        passed.append(f.filter(_record(template, 1, f"refused {i}")))
    assert not any(passed)  # 99 repeats in 4.95 s: all held back
    assert f.suppressed_total == 99
    clock.now += 5.1  # 10.05 s after the first
    later = _record(template, 1, "refused again")
    assert f.filter(later)
    assert later.getMessage() == (
        "Unable connect to node with id 1: refused again "
        "[99 similar messages suppressed in the last 10 s]"
    )
    clock.now += 10.0
    quiet = _record(template, 2, "x")
    assert f.filter(quiet)  # nothing held back since: no suffix
    assert quiet.getMessage() == "Unable connect to node with id 2: x"


def test_messages_are_told_apart_by_template_logger_and_level() -> None:
    clock = FakeClock()
    f = RepeatFilter(10.0, clock=clock)
    assert f.filter(_record("a %s", 1))
    assert f.filter(_record("b %s", 1))
    assert f.filter(_record("a %s", 1, name="aiokafka.conn"))
    assert f.filter(_record("a %s", 1, level=logging.WARNING))
    assert not f.filter(_record("a %s", 2))
    # below WARNING (default min_level) everything passes, however repeated
    assert all(f.filter(_record("d %s", i, level=logging.INFO)) for i in range(5))


def test_one_suppressed_message_is_singular() -> None:
    clock = FakeClock()
    f = RepeatFilter(1.0, clock=clock)
    f.filter(_record("x"))
    f.filter(_record("x"))
    clock.now += 2
    r = _record("x")
    assert f.filter(r)
    assert r.getMessage() == "x [1 similar message suppressed in the last 2 s]"


@pytest.mark.parametrize("bad", [0, -1, True, "10"])
def test_interval_must_be_positive_seconds(bad: object) -> None:
    with pytest.raises(ValueError, match="RepeatFilter: interval must be > 0 seconds"):
        RepeatFilter(bad)  # type: ignore[arg-type]


@pytest.fixture
def restore_default_filter() -> Iterator[None]:
    yield
    summarize_aiokafka_logs(DEFAULT_INTERVAL)


@pytest.mark.usefixtures("restore_default_filter")
def test_filter_is_installed_on_every_aiokafka_logger() -> None:
    installed = kafka_logging._installed
    assert installed is not None and installed.interval == DEFAULT_INTERVAL  # by the import
    for name in (
        "aiokafka",
        "aiokafka.conn",
        "aiokafka.consumer.fetcher",
        "aiokafka.producer.sender",
    ):
        assert installed in logging.getLogger(name).filters, name
    late = logging.getLogger(f"aiokafka.imported_later_{id(installed)}")
    assert installed not in late.filters
    kafka_logging.ensure_installed()  # what a consumer source does when it starts
    assert installed in late.filters
    changed = summarize_aiokafka_logs(2.0)
    assert changed is not None and changed.interval == 2.0
    assert changed in logging.getLogger("aiokafka.conn").filters
    assert installed not in logging.getLogger("aiokafka.conn").filters
    passthrough = summarize_aiokafka_logs(None)
    assert passthrough.interval is None
    filters = [f for f in logging.getLogger("aiokafka.conn").filters if isinstance(f, RepeatFilter)]
    assert filters == [passthrough]
    assert all(passthrough.filter(_record("same")) for _ in range(5))  # nothing held back
    with pytest.raises(ValueError, match="summarize_aiokafka_logs: interval must be > 0"):
        summarize_aiokafka_logs(0)


# -- an outage against the broker --


def consumer_stage_conns(control: Any) -> dict[Any, Any]:
    """The aiokafka client's connections of the consumer behind ``control`` (white box)."""
    logic = control._metrics.__self__
    return logic._consumer._client._conns  # type: ignore[no-any-return]


OUTAGE = 3.0


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    async with proxied_broker() as (broker, proxy):
        yield broker, proxy


@pytest.mark.kafka
async def test_outage_is_summarised_and_reported(
    proxied: tuple[EmbeddedBroker, TcpProxy],
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(consumer_watch, "OUTAGE_REPORT_INTERVAL", 1.0)
    caplog.set_level(logging.INFO, logger="connectors.kafka")
    broker, proxy = proxied
    servers = broker.bootstrap_servers
    topic = await create_topic(servers, "outage", 2)
    await produce_values(servers, topic, ["before"])
    settings = ConsumerSettings(
        servers,
        unique_group_id(),
        auto_offset_reset="earliest",
        properties=TEST_CONSUMER_PROPERTIES,
        value_deserializer=bytes.decode,
    )
    control, probe = (
        Consumer.plain_source(settings, Subscriptions.topics(topic))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    try:
        probe.request(1)
        assert (await probe.expect_next(timeout=15)).value == "before"
        start = len(caplog.records)
        proxy.refuse(OUTAGE)
        proxy.cut()
        await asyncio.sleep(OUTAGE)
        await eventually(
            lambda: any("restored after" in r.getMessage() for r in caplog.records[start:]),
            timeout=20,
        )
        during = caplog.records[start:]
        client = [
            r for r in during if r.name.startswith("aiokafka") and r.levelno >= logging.WARNING
        ]
        # about 80 a second without the filter; each message once per 10 s with it
        assert len(client) <= 15, [r.getMessage() for r in client]
        own = [r.getMessage() for r in during if r.name == "connectors.kafka"]
        lost = [m for m in own if "lost the connection to Kafka at" in m]
        assert len(lost) == 1, own
        assert servers in lost[0] and "since " in lost[0]
        assert "repeated errors are logged once per 10 s" in lost[0]
        assert any("still no connection to Kafka" in m and "retrying" in m for m in own), own
        restored = [m for m in own if "restored after" in m]
        assert len(restored) == 1, own
        # and reading goes on
        await produce_values(servers, topic, ["after"])
        probe.request(1)
        assert (await probe.expect_next(timeout=20)).value == "after"
    finally:
        await control.shutdown()
        await control.is_shutdown


@pytest.mark.kafka
async def test_idle_client_without_connections_is_not_an_outage(
    kafka_bootstrap: str,
    kafka_topic: str,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A held-back source with no group sends nothing, and aiokafka closes its idle
    connection (``connections_max_idle_ms``): no open connection, but no outage either."""
    caplog.set_level(logging.INFO, logger="connectors.kafka")
    await produce_values(kafka_bootstrap, kafka_topic, [str(i) for i in range(50)])
    settings = ConsumerSettings(
        kafka_bootstrap,
        auto_offset_reset="earliest",
        properties={"connections_max_idle_ms": 300, "fetch_max_wait_ms": 50},
        max_buffered_records=10,
    )
    control, probe = (
        Consumer.plain_source(settings, Subscriptions.assignment((kafka_topic, 0)))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    try:
        probe.request(1)
        await probe.expect_next(timeout=15)
        await eventually(lambda: control.metrics()["buffered_records"] == 10)
        conns = consumer_stage_conns(control)
        await eventually(lambda: not any(c.connected() for c in conns.values()), timeout=10)
        await asyncio.sleep(1.0)  # four connection checks with no connection open
        own = [r.getMessage() for r in caplog.records if r.name == "connectors.kafka"]
        assert not any("lost the connection" in m for m in own), own
        probe.request(20)
        assert len(await probe.expect_next_n(20, timeout=15)) == 20
    finally:
        await control.shutdown()
        await control.is_shutdown
