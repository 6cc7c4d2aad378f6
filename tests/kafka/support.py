"""Helpers shared by the Kafka test files (imported as ``tests.kafka.support``)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from connectors.kafka import Consumer, ConsumerSettings, Subscriptions, TopicPartition
from connectors.kafka.serde import str_deserializer
from connectors.kafka.testkit import TEST_CONSUMER_PROPERTIES, produce_values
from reactive import Sink

if TYPE_CHECKING:
    from collections.abc import Mapping


def settings(bootstrap: str, group: str | None = None, **kwargs: Any) -> ConsumerSettings:
    """Fast settings for tests: earliest offsets, short fetch waits and group timings."""
    return ConsumerSettings(
        bootstrap,
        group,
        value_deserializer=str_deserializer,
        auto_offset_reset="earliest",
        properties={**TEST_CONSUMER_PROPERTIES, "fetch_max_wait_ms": 50},
        stop_timeout=0.2,
        connect_timeout=5.0,
        **kwargs,
    )


async def eventually(predicate: Any, timeout: float = 10.0) -> None:
    """Wait until ``predicate()`` holds (the broker is real: no manual clock here)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.02)


class RecordingCommitter:
    """A ``KafkaCommitterRef`` that records what it is asked to commit."""

    def __init__(self) -> None:
        self.calls: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.calls.append(dict(offsets))


def co_partitioned_join(
    consumer_settings: ConsumerSettings, orders: str, table: Any, missed: list[Any]
) -> Any:
    """The stream of a co-partitioned join as the tests run it: ``orders``' records (the
    table as the subscription's rebalance listener) joined with ``table`` into
    ``(order value, table value)``, a record without a value appended to ``missed``."""
    return Consumer.plain_source(
        consumer_settings, Subscriptions.topics(orders).with_rebalance_listener(table)
    ).join_table(
        table,
        key=lambda r: r.key,
        combine=lambda r, name: (r.value, name),
        missing=Sink.foreach(missed.append),
    )


async def produce_per_partition(
    bootstrap: str, topic: str, tag: str, partitions: int, per_partition: int
) -> None:
    """``per_partition`` values ``{tag}-{p}-{i}`` into each of ``partitions`` partitions."""
    for p in range(partitions):
        values = [f"{tag}-{p}-{i}" for i in range(per_partition)]
        await produce_values(bootstrap, topic, values, partition=p)


class RebalanceMember:
    """One instance of a service in a consumer group, its own rebalance listener: what
    it read (``seen``, appended by the test's stream), what it is assigned, and how many
    revocations it had."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []
        self.assigned: set[TopicPartition] = set()
        self.revocations = 0

    async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        self.revocations += 1
        self.assigned -= revoked

    async def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        self.assigned |= assigned
