"""Kafka fixtures for tests/kafka (a non-root conftest cannot set ``pytest_plugins``)."""

from connectors.kafka.pytest_plugin import (  # noqa: F401  (fixtures, found by name)
    kafka_bootstrap,
    kafka_group_id,
    kafka_topic,
    kafka_topic_factory,
)
