"""Helpers shared by the Kafka test files (imported as ``tests.kafka.support``)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from connectors.kafka import ConsumerSettings, TopicPartition
from connectors.kafka.serde import str_deserializer
from connectors.kafka.testkit import TEST_CONSUMER_PROPERTIES

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
