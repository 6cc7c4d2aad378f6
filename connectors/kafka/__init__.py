"""Alpakka Kafka on aiokafka: sources, flows and sinks that read from and write to Kafka.

- settings: :class:`ConsumerSettings`, :class:`ProducerSettings`,
  :class:`CommitterSettings`, :class:`Subscriptions`;
- producing: :class:`Producer` (``plain_sink``, ``flexi_flow``,
  ``committable_sink``) with :class:`ProducerRecord` and the
  :class:`ProducerMessage` envelopes;
- exactly-once consume-transform-produce: :class:`Transactional` (``source``,
  ``flow``, ``sink``, and ``source_with_offset_context``, ``flow_with_offset_context``,
  ``sink_with_offset_context`` carrying the offsets as contexts; see
  ``connectors/kafka/TRANSACTIONS.md``);
- consuming and committing: ``Consumer``, ``Committer``, ``DrainingControl``;
- tables: :class:`Tables` (``table``, ``global_table``, ``co_partitioned``) giving a
  :class:`KTable`, the latest value per key of a topic (``connectors.kafka.tables``);
- :mod:`connectors.kafka.state`: stores backed by compacted changelog topics, one per
  partition, restored on assignment (``changelogged``);
- :mod:`connectors.kafka.serde` (serializers), :mod:`connectors.kafka.testkit`
  (an embedded broker and a fault-injecting proxy for tests);
- :func:`summarize_aiokafka_logs`: importing this package makes aiokafka log each of
  its repeated messages at most once per 10 s (with a count of those held back).
"""

try:
    from aiokafka.structs import TopicPartition
except ModuleNotFoundError as _missing:
    if not (_missing.name or "").startswith("aiokafka"):
        raise
    raise ModuleNotFoundError(
        f"connectors.kafka needs aiokafka ({_missing}), which the 'kafka' extra installs: "
        "pip install 'reactive-streams-py[kafka]' (from a checkout: pip install -e '.[kafka]')",
        name=_missing.name,
    ) from _missing

from reactive.lowlevel import publish as _publish

from ._logging import summarize_aiokafka_logs
from ._stages.committer import Committer
from ._stages.consumers import Consumer
from ._stages.control import Control, DrainingControl
from ._stages.producers import Producer
from ._stages.transactional import Transactional, TransactionalMessage
from .errors import (
    ChangelogError,
    CommitTimeoutError,
    ConsumerClosedError,
    ConsumerConnectionError,
    DeserializationError,
    KafkaCommitError,
    KafkaConnectorError,
    KafkaConsumerError,
    KafkaProducerError,
    KafkaTransactionError,
    MissingCodecError,
    NoCommittedOffsetError,
    ProducerConnectionError,
    ProducerSendError,
    ProducerSerializationError,
    ProducerStartError,
    RecordTooLargeError,
    TableNotReadyError,
)
from .messages import (
    CommittableMessage,
    CommittableOffset,
    CommittableOffsetBatch,
    MultiResult,
    PartitionOffset,
    PassThroughResult,
    ProducerMessage,
    ProducerRecord,
    RecordMetadata,
    Result,
)
from .settings import CommitterSettings, ConsumerSettings, ProducerSettings
from .subscriptions import Subscriptions
from .tables import CoPartitionedTable, KTable, Tables

__all__ = [
    "ChangelogError",
    "CoPartitionedTable",
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
    "KafkaConnectorError",
    "KafkaConsumerError",
    "KafkaProducerError",
    "KafkaTransactionError",
    "KTable",
    "MissingCodecError",
    "NoCommittedOffsetError",
    "MultiResult",
    "PartitionOffset",
    "PassThroughResult",
    "Producer",
    "ProducerConnectionError",
    "ProducerMessage",
    "ProducerRecord",
    "ProducerSendError",
    "ProducerSerializationError",
    "ProducerSettings",
    "ProducerStartError",
    "RecordMetadata",
    "RecordTooLargeError",
    "Result",
    "Subscriptions",
    "TableNotReadyError",
    "Tables",
    "TopicPartition",
    "Transactional",
    "TransactionalMessage",
    "summarize_aiokafka_logs",
]

_publish(__name__, globals())
summarize_aiokafka_logs()
