"""Closing a source's aiokafka client leaves nothing open on any path
(``connectors/kafka/_closing.py``): no task of the client (its metadata synchronizer,
heartbeat, fetch tasks) and no broker connection, also when aiokafka's one-shot
``stop()`` is cut short: by ``close_timeout``, or by the ``CancelledError`` its fetcher
raises when a fetch is backing off after a lost connection. Before, the source's
``AIOKafkaClient._md_synchronizer`` task outlived the test (seen on uvloop in
``test_faults.py``) and its connections warned "Unclosed AIOKafkaConnection" when
collected, in whatever test ran then."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import warnings
from typing import TYPE_CHECKING, Any, Self

import pytest

from connectors.kafka import Consumer, ConsumerSettings, Subscriptions
from connectors.kafka.serde import str_deserializer
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
    from collections.abc import AsyncIterator

pytestmark = pytest.mark.kafka

_AIOKAFKA = f"{os.sep}aiokafka{os.sep}"


def aiokafka_tasks() -> list[asyncio.Task[Any]]:
    """The loop's unfinished tasks that run aiokafka code."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        if not task.done() and code is not None and _AIOKAFKA in code.co_filename:
            found.append(task)
    return found


def stage_consumer(control: Any) -> Any:
    """The ``AIOKafkaConsumer`` of the source behind ``control`` (white box)."""
    return control._metrics.__self__._consumer


async def assert_closed(client: Any) -> None:
    """No aiokafka task left, no connection of ``client`` (an ``AIOKafkaClient``) open,
    and none found unclosed by the garbage collector."""
    for _ in range(20):
        await asyncio.sleep(0)
    left = aiokafka_tasks()
    assert not left, [t.get_coro() for t in left]
    assert client._sync_task is None or client._sync_task.done()
    assert all(conn._reader is None for conn in client._conns.values()), client._conns
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    unclosed = [str(w.message) for w in caught if "AIOKafka" in str(w.message)]
    assert not unclosed, unclosed


async def reading_source(
    servers: str, topic: str, materializer: Materializer, properties: Any, close_timeout: float
) -> tuple[Any, Any]:
    """A group's plain source of ``topic`` that has read its one record ``"a"``; returns
    its control and its aiokafka client."""
    await produce_values(servers, topic, ["a"])
    settings = ConsumerSettings(
        servers,
        unique_group_id(),
        auto_offset_reset="earliest",
        properties=properties,
        value_deserializer=str_deserializer,
        close_timeout=close_timeout,
    )
    control, probe = (
        Consumer.plain_source(settings, Subscriptions.topics(topic))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    probe.request(1)
    assert (await probe.expect_next(timeout=15)).value == "a"
    return control, stage_consumer(control)._client


async def shut_down(control: Any) -> None:
    await asyncio.wait_for(control.shutdown(), 10)
    await asyncio.wait_for(control.is_shutdown, 10)


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[EmbeddedBroker, TcpProxy]]:
    async with proxied_broker() as (broker, proxy):
        yield broker, proxy


async def test_shutdown_while_a_fetch_backs_off_closes_the_client(
    proxied: tuple[EmbeddedBroker, TcpProxy],
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The connection drops; the fetch that failed sleeps out ``retry_backoff_ms``; the
    source is shut down meanwhile. aiokafka's ``Fetcher.close()`` cancels that sleep and
    the ``CancelledError`` escapes its ``stop()``, which ends before closing the client."""
    caplog.set_level(logging.ERROR, logger="aiokafka")
    broker, proxy = proxied
    servers = broker.bootstrap_servers
    topic = await create_topic(servers, "backoff", 1)
    properties = {**TEST_CONSUMER_PROPERTIES, "retry_backoff_ms": 5000}
    control, client = await reading_source(servers, topic, materializer, properties, 10.0)
    proxy.block()  # reconnecting is refused at once
    proxy.cut()
    await eventually(
        lambda: any("Failed fetch messages" in r.getMessage() for r in caplog.records), 10
    )
    await shut_down(control)
    await assert_closed(client)


async def test_shutdown_cut_short_by_close_timeout_closes_the_client(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    """``close_timeout=0`` cuts aiokafka's ``stop()`` at its first wait: what it did not
    reach is closed anyway."""
    control, client = await reading_source(
        kafka_bootstrap, kafka_topic, materializer, TEST_CONSUMER_PROPERTIES, 0.0
    )
    await shut_down(control)
    await assert_closed(client)


class FirstReplyOnly:
    """A TCP forwarder to the broker that passes back only the first response of each
    connection (Kafka frames: a 4-byte big-endian size, then the body) and holds the
    rest: a broker that answers ApiVersions and then never the bootstrap's Metadata."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        self.requests = 0  # requests the clients sent (frames)

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.transport.abort()
        await self._server.wait_closed()

    def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._forward(reader, writer))
        self._tasks.add(task)

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        self._writers += [writer, up_writer]

        async def frames(src: asyncio.StreamReader) -> AsyncIterator[bytes]:
            while True:
                size = await src.readexactly(4)
                yield size + await src.readexactly(int.from_bytes(size, "big"))

        async def upstream() -> None:
            async for frame in frames(reader):
                self.requests += 1
                up_writer.write(frame)

        async def downstream() -> None:
            async for frame in frames(up_reader):
                writer.write(frame)
                break  # then hold every other reply

        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await asyncio.gather(upstream(), downstream())
            await asyncio.Event().wait()


async def test_shutdown_during_the_bootstrap_closes_its_connection(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    """Shut down while aiokafka's bootstrap waits for the cluster's metadata: cancelling
    it there left its bootstrap connection open (held only by the cancelled coroutine)."""
    async with FirstReplyOnly(kafka_bootstrap) as forwarder:
        settings = ConsumerSettings(
            forwarder.address,
            unique_group_id(),
            properties=TEST_CONSUMER_PROPERTIES,
            connect_timeout=30,
        )
        control, probe = (
            Consumer.plain_source(settings, Subscriptions.topics(kafka_topic))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        # ApiVersions answered, Metadata sent and held
        await eventually(lambda: forwarder.requests >= 2, 15)
        client = stage_consumer(control)._client
        await asyncio.wait_for(control.shutdown(), 10)
        await asyncio.wait_for(control.is_shutdown, 10)
        probe.request(1)
        await probe.expect_complete(timeout=5)
        await assert_closed(client)
