"""pytest fixtures for tests that talk to Kafka.

- ``kafka_bootstrap`` (session): bootstrap servers of a Kafka-protocol broker.
  ``KAFKA_BOOTSTRAP_SERVERS`` when set; otherwise an :class:`EmbeddedBroker`
  started once for the session and stopped at its end. Never skips: if the
  broker cannot start, every test that needs it errors with the reason.
- ``kafka_topic`` (function, async): a fresh topic with one partition, created.
- ``kafka_topic_factory`` (function, async): ``await make(partitions=1,
  prefix="topic")`` creates and returns more fresh topics.
- ``kafka_group_id`` (function): a fresh consumer group id.

Register it with ``pytest_plugins = ["connectors.kafka.pytest_plugin"]`` in the
root ``conftest.py``, or import the fixtures into a ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator

import pytest
import pytest_asyncio

from .testkit import (
    EmbeddedBroker,
    bootstrap_servers,
    create_topic,
    unique_group_id,
    unique_topic_name,
)

__all__ = ["kafka_bootstrap", "kafka_group_id", "kafka_topic", "kafka_topic_factory"]

TopicFactory = Callable[..., Awaitable[str]]


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    """Bootstrap servers of the test cluster (``KAFKA_BOOTSTRAP_SERVERS`` or an embedded one)."""
    external = bootstrap_servers()
    if external is not None:
        yield external
        return
    broker = EmbeddedBroker()
    broker.start()  # BrokerStartError says why; pytest reports it on each test
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest_asyncio.fixture
async def kafka_topic_factory(kafka_bootstrap: str) -> TopicFactory:
    """``await make(partitions=1, prefix="topic")`` -> the name of a new, created topic."""

    async def make(partitions: int = 1, prefix: str = "topic") -> str:
        return await create_topic(kafka_bootstrap, unique_topic_name(prefix), partitions)

    return make


@pytest_asyncio.fixture
async def kafka_topic(kafka_topic_factory: TopicFactory) -> str:
    """A new topic with one partition, already created."""
    return await kafka_topic_factory()


@pytest.fixture
def kafka_group_id() -> str:
    """A consumer group id no other test uses."""
    return unique_group_id()
