"""Alpakka Kafka on aiokafka: sources, flows and sinks that read from and write to Kafka.

- settings: :class:`ConsumerSettings`, :class:`ProducerSettings`,
  :class:`CommitterSettings`, :class:`Subscriptions`;
- producing: :class:`Producer` (``plain_sink``, ``flexi_flow``,
  ``committable_sink``) with :class:`ProducerRecord` and the
  :class:`ProducerMessage` envelopes;
- consuming and committing: ``Consumer``, ``Committer``, ``DrainingControl``;
- :mod:`connectors.kafka.serde` (serializers), :mod:`connectors.kafka.testkit`
  (an embedded broker and a fault-injecting proxy for tests);
- :func:`summarize_aiokafka_logs`: importing this package makes aiokafka log each of
  its repeated messages at most once per 10 s (with a count of those held back).
"""

from aiokafka.structs import TopicPartition

from ._logging import summarize_aiokafka_logs
from ._stages.committer import Committer
from ._stages.consumer import Consumer
from ._stages.control import Control, DrainingControl
from ._stages.producer import Producer, ProducerSerializationError
from .errors import (
    CommitTimeoutError,
    ConsumerClosedError,
    ConsumerConnectionError,
    DeserializationError,
    KafkaCommitError,
    KafkaConsumerError,
)
from .messages import (
    CommittableMessage,
    CommittableOffset,
    CommittableOffsetBatch,
    MultiResult,
    PassThroughResult,
    ProducerMessage,
    ProducerRecord,
    RecordMetadata,
    Result,
)
from .settings import CommitterSettings, ConsumerSettings, ProducerSettings
from .subscriptions import Subscriptions

__all__ = [
    "CommittableMessage",
    "CommittableOffset",
    "CommittableOffsetBatch",
    "CommitTimeoutError",
    "Committer",
    "CommitterSettings",
    "Consumer",
    "ConsumerClosedError",
    "ConsumerConnectionError",
    "ConsumerSettings",
    "Control",
    "DeserializationError",
    "DrainingControl",
    "KafkaCommitError",
    "KafkaConsumerError",
    "MultiResult",
    "PassThroughResult",
    "Producer",
    "ProducerMessage",
    "ProducerRecord",
    "ProducerSerializationError",
    "ProducerSettings",
    "RecordMetadata",
    "Result",
    "Subscriptions",
    "TopicPartition",
    "summarize_aiokafka_logs",
]

summarize_aiokafka_logs()
