"""Every error of the Kafka connector, under one root: :class:`KafkaConnectorError`.

::

    KafkaConnectorError (RuntimeError)
    ├── MissingCodecError (also aiokafka UnsupportedCodecError): a codec library is not installed
    ├── KafkaConsumerError: a consumer or committer stage failed
    │   ├── ConsumerConnectionError (also ConnectionError): no broker answered at start
    │   ├── DeserializationError (also ValueError): a record's key or value did not decode
    │   ├── NoCommittedOffsetError (also aiokafka NoOffsetForPartitionError): no committed
    │   │       offset to start from and auto_offset_reset="none"
    │   └── KafkaCommitError: committing offsets failed
    │       ├── CommitTimeoutError (also TimeoutError): not acknowledged within commit_timeout
    │       └── ConsumerClosedError: the consumer that should commit is shut down
    ├── KafkaProducerError: a producer stage failed
    │   ├── ProducerConnectionError (also aiokafka KafkaConnectionError, ConnectionError):
    │   │       no broker answered at start
    │   ├── ProducerStartError (also aiokafka KafkaError): a broker answered but refused to
    │   │       start the producer (e.g. InitProducerId for an idempotent producer)
    │   ├── ProducerSerializationError (also ValueError): a record's key or value did not
    │   │       serialize (or is not bytes)
    │   ├── ProducerSendError (also aiokafka KafkaError): records were not acknowledged
    │   │   └── RecordTooLargeError (also aiokafka MessageSizeTooLargeError): a record or
    │   │           batch is over the size limit
    │   └── KafkaTransactionError: a transaction failed and was aborted (or was fenced)
    ├── ChangelogError: a changelog topic could not be created, restored or written
    │       (``connectors.kafka.state``)
    └── TableNotReadyError: ``KTable.ready()`` cannot complete (the table's stream
            stopped first, or the timeout passed)

All are defined here and exported from ``connectors.kafka`` (``ChangelogError`` also
from ``connectors.kafka.state``, ``TableNotReadyError`` from ``connectors.kafka.tables``);
``tests/test_error_tree.py`` checks the tree against the classes. Outside the tree:
``connectors.kafka.testkit.BrokerStartError`` stays a plain ``RuntimeError``: it belongs to
the test helper that starts an embedded broker, and no stage raises it.

Not a ``reactive.StreamError``: one root per package, and the connector's failures are
about the outside world (a broker, a record, a topic), where ``StreamError`` says the
stream runtime itself refused something (a limit, a timeout, a malformed graph). As in
Alpakka Kafka, whose exceptions are plain ``RuntimeException`` s and not Akka Streams'
own, a handler catches one or the other, or both with ``except (StreamError,
KafkaConnectorError)``; making the root a ``StreamError`` now would also widen what
existing ``except StreamError`` clauses catch. The root is a ``RuntimeError``, like
aiokafka's ``KafkaError``.

Every message names the stage (``[Consumer.plain_source]``, ``[Producer.plain_sink]``),
the topic, partition and offset (or the record) where there is one, and says what to
check.

Wrapping, and catching by aiokafka's types: the error aiokafka raised is always kept as
``__cause__`` (``raise ProducerSendError(...) from original``). Where the stage replaces
one specific aiokafka error, the new class also *subclasses* that aiokafka type, so code
written against aiokafka keeps working: ``except MessageSizeTooLargeError`` catches a
:class:`RecordTooLargeError`, ``except KafkaConnectionError`` a
:class:`ProducerConnectionError`, ``except UnsupportedCodecError`` a
:class:`MissingCodecError`, ``except NoOffsetForPartitionError`` a
:class:`NoCommittedOffsetError`. A send can fail with many aiokafka errors
(``NodeNotReadyError``, ``KafkaTimeoutError``, broker error codes...): those become one
:class:`ProducerSendError`, a ``KafkaError`` whose ``__cause__`` is the specific error
and whose ``retriable`` is the cause's (``except KafkaError`` still catches it; inspect
``__cause__`` for the precise type).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    MessageSizeTooLargeError,
    NoOffsetForPartitionError,
    UnsupportedCodecError,
)

from reactive.lowlevel import reduce_error

if TYPE_CHECKING:
    from types import TracebackType

__all__ = [
    "ChangelogError",
    "CommitTimeoutError",
    "ConsumerClosedError",
    "ConsumerConnectionError",
    "DeserializationError",
    "KafkaCommitError",
    "KafkaConnectorError",
    "KafkaConsumerError",
    "KafkaProducerError",
    "KafkaTransactionError",
    "MissingCodecError",
    "ProducerConnectionError",
    "ProducerSendError",
    "ProducerSerializationError",
    "ProducerStartError",
    "RecordTooLargeError",
    "TableNotReadyError",
]

#: What to install for the compression codecs (aiokafka reads snappy, lz4 and zstd
#: through the ``cramjam`` package; the ``kafka`` extra installs it).
INSTALL_HINT = "pip install 'reactive-streams-py[kafka]' (or: pip install cramjam)"


class KafkaConnectorError(RuntimeError):
    """Base of the errors of the Kafka stages.

    ``str()`` is the message alone (aiokafka's ``KafkaError`` would prefix the class
    name, which the traceback already shows).
    """

    def __str__(self) -> str:
        return Exception.__str__(self)

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_error(self)


class KafkaConsumerError(KafkaConnectorError):
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


class NoCommittedOffsetError(KafkaConsumerError, NoOffsetForPartitionError):
    """A partition has no committed offset for the group and ``auto_offset_reset`` is
    ``"none"`` (Kafka's ``NoOffsetForPartitionException``); ``partitions`` lists the
    topic-partitions aiokafka named."""

    def __init__(self, message: str, partitions: tuple[Any, ...] = ()) -> None:
        super().__init__(message)
        self.partitions = partitions


class KafkaCommitError(KafkaConsumerError):
    """Committing offsets failed (after the committer's retries, where it retries)."""


class CommitTimeoutError(KafkaCommitError, TimeoutError):
    """The broker did not acknowledge a commit within ``ConsumerSettings.commit_timeout``."""


class ConsumerClosedError(KafkaCommitError):
    """A commit was requested from a consumer that is shut down (or never started)."""


class KafkaProducerError(KafkaConnectorError):
    """Base of the errors of the producer stages (``Producer.*``)."""


class ProducerConnectionError(KafkaProducerError, KafkaConnectionError, ConnectionError):
    """No Kafka broker answered within ``ProducerSettings.connect_timeout`` at start."""


class ProducerStartError(KafkaProducerError, KafkaError):
    """A broker answered but starting the producer failed (the broker's error is the
    ``__cause__``): an idempotent or transactional producer the broker refuses, an
    authorization error, an unsupported protocol version."""


class ProducerSerializationError(KafkaProducerError, ValueError):
    """A record's key or value could not be serialized; the message names the topic."""


class ProducerSendError(KafkaProducerError, KafkaError):
    """Records were not acknowledged: aiokafka's error (``NodeNotReadyError`` after an
    outage longer than ``request_timeout_ms``, ``KafkaTimeoutError``, a broker error
    code) is the ``__cause__``.

    ``topic`` and ``partition`` say where the failed records were going (``partition``
    is ``None`` when not known); ``retriable`` is the cause's: a retriable error may
    succeed if the stream is restarted.
    """

    def __init__(
        self,
        message: str,
        topic: str | None = None,
        partition: int | None = None,
        *,
        retriable: bool = False,
    ) -> None:
        super().__init__(message)
        self.topic = topic
        self.partition = partition
        self.retriable = retriable


class RecordTooLargeError(ProducerSendError, MessageSizeTooLargeError):
    """A record is larger than ``max_request_size`` (checked before sending), or the
    broker refused a batch as too large (its ``message.max.bytes``)."""


class MissingCodecError(KafkaConnectorError, UnsupportedCodecError):
    """The library of a compression codec (snappy, lz4, zstd) is not installed.

    Raised when a producer stage is built with ``ProducerSettings(compression_type=...)``
    and, on the consumer, when a fetched batch uses that codec (then ``topic``,
    ``partition`` and ``offset`` locate the first record that could not be read, when
    aiokafka's traceback tells). ``codec`` is the codec's name.
    """

    def __init__(
        self,
        message: str,
        codec: str,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        super().__init__(message)
        self.codec = codec
        self.topic = topic
        self.partition = partition
        self.offset = offset


class KafkaTransactionError(KafkaProducerError):
    """A transaction failed and was aborted; aiokafka's error is the ``__cause__``.

    ``transactional_id`` names the producer. A fenced producer (another instance
    started with the same transactional id) fails with this error too.
    """

    def __init__(self, message: str, transactional_id: str) -> None:
        super().__init__(message)
        self.transactional_id = transactional_id


class ChangelogError(KafkaConnectorError):
    """A changelog could not be created, restored or written (the cause is chained)."""


class TableNotReadyError(KafkaConnectorError):
    """``KTable.ready()`` cannot complete: the table's stream stopped or failed before it
    caught up (the cause is chained), or the timeout given to ``ready`` passed."""


# -- helpers for the stages ----------------------------------------------------------------

_CODEC_NAMES = {1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
_MISSING_CODEC = re.compile(r"Libraries for (\w+) compression codec not found")


def codec_available(codec: str) -> bool:
    """Whether aiokafka can compress and decompress with ``codec`` here."""
    from aiokafka import codec as codecs

    checker = getattr(codecs, f"has_{codec}", None)
    return checker is not None and bool(checker())


def check_codec(stage: str, codec: str | None) -> None:
    """Raise :class:`MissingCodecError` if ``codec`` (a ``compression_type``) cannot be
    used here; ``None`` (no compression) always can."""
    if codec is None or codec_available(codec):
        return
    raise MissingCodecError(
        f"[{stage}] compression_type={codec!r} needs the {codec} codec library, which is "
        f"not installed: {INSTALL_HINT}",
        codec,
    )


def _fetch_location(exc: BaseException) -> tuple[Any, int | None, int | None]:
    """(topic-partition, offset, codec id) of the batch aiokafka failed to unpack.

    aiokafka's error says none of it; its ``_unpack_records`` generator (the frame that
    decompresses each fetched batch) holds them. Best effort: ``(None, None, None)``
    when the traceback does not show that frame.
    """
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if frame.f_code.co_name == "_unpack_records":
            names = frame.f_locals
            tp = names.get("tp")
            batch = names.get("next_batch")
            records = names.get("self")
            offsets = [
                o
                for o in (
                    getattr(records, "next_fetch_offset", None),
                    getattr(batch, "base_offset", None),
                )
                if isinstance(o, int)
            ]
            codec = getattr(batch, "compression_type", None)
            return tp, max(offsets) if offsets else None, codec if isinstance(codec, int) else None
        tb = tb.tb_next
    return None, None, None


def consumer_failure(stage: str, exc: Exception) -> KafkaConsumerError | KafkaConnectorError:
    """The error a consumer stage fails with when its poller raised ``exc``.

    Errors of this module pass unchanged. A missing codec becomes a
    :class:`MissingCodecError` naming the topic, partition and offset it stopped at and
    what to install; anything else a :class:`KafkaConsumerError` naming the stage. The
    original is the ``__cause__``.
    """
    if isinstance(exc, KafkaConnectorError):
        return exc
    if isinstance(exc, UnsupportedCodecError):
        tp, offset, codec_id = _fetch_location(exc)
        match = _MISSING_CODEC.search(str(exc))
        codec = match.group(1) if match else _CODEC_NAMES.get(codec_id or 0, "")
        if codec:
            topic = getattr(tp, "topic", None)
            partition = getattr(tp, "partition", None)
            where = ""
            if topic is not None:
                where = f" at topic {topic!r} partition {partition}"
                if offset is not None:
                    where += f" offset {offset}"
            error = MissingCodecError(
                f"[{stage}] cannot read the records{where}: they are compressed with "
                f"{codec}, whose codec library is not installed: {INSTALL_HINT}",
                codec,
                topic,
                partition,
                offset,
            )
            error.__cause__ = exc
            return error
    if isinstance(exc, NoOffsetForPartitionError):
        parts = tuple(exc.args)
        where = (
            ", ".join(
                f"{tp.topic}-{tp.partition}" if hasattr(tp, "topic") else repr(tp) for tp in parts
            )
            or "a partition"
        )
        error3 = NoCommittedOffsetError(
            f"[{stage}] no committed offset to start {where} from, and "
            "auto_offset_reset='none' says not to reset: commit offsets for the group first, "
            "or set auto_offset_reset to 'earliest' or 'latest'",
            parts,
        )
        error3.__cause__ = exc
        return error3
    error2 = KafkaConsumerError(f"[{stage}] the consumer failed: {exc!r}")
    error2.__cause__ = exc
    return error2
