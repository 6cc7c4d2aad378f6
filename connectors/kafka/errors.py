"""Errors raised by the consumer sources and the committer stages.

::

    KafkaConsumerError (RuntimeError)
    ├── ConsumerConnectionError (also ConnectionError): no broker answered at start
    ├── DeserializationError (also ValueError): a record's key or value did not decode
    └── KafkaCommitError: committing offsets failed
        ├── CommitTimeoutError (also TimeoutError): not acknowledged within commit_timeout
        └── ConsumerClosedError: the consumer that should commit is shut down

Every message names the stage (``[Consumer.plain_source]``) and says what to do
when there is something to do. Errors of aiokafka itself (``KafkaError``) are
chained as ``__cause__``.
"""

from __future__ import annotations

__all__ = [
    "CommitTimeoutError",
    "ConsumerClosedError",
    "ConsumerConnectionError",
    "DeserializationError",
    "KafkaCommitError",
    "KafkaConsumerError",
]


class KafkaConsumerError(RuntimeError):
    """Base of the errors of the consumer and committer stages."""


class ConsumerConnectionError(KafkaConsumerError, ConnectionError):
    """No Kafka broker answered within ``ConsumerSettings.connect_timeout`` at start."""


class DeserializationError(KafkaConsumerError, ValueError):
    """A record's key or value could not be deserialized.

    ``topic``, ``partition``, ``offset`` locate the record, ``field`` is ``"key"`` or
    ``"value"``; the deserializer's exception is the ``__cause__``.
    """

    def __init__(self, message: str, topic: str, partition: int, offset: int, field: str) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.field = field


class KafkaCommitError(KafkaConsumerError):
    """Committing offsets failed (after the committer's retries, where it retries)."""


class CommitTimeoutError(KafkaCommitError, TimeoutError):
    """The broker did not acknowledge a commit within ``ConsumerSettings.commit_timeout``."""


class ConsumerClosedError(KafkaCommitError):
    """A commit was requested from a consumer that is shut down (or never started)."""
