"""Messages that flow through the Kafka stages: records, envelopes, results, offsets.

Plain immutable data, no stream stages (Alpakka's ``ProducerMessage`` and
``ConsumerMessage``).

Producing::

    ProducerRecord(topic, value, key=None, partition=None, timestamp_ms=None, headers=())

    Envelope (input of Producer.flexi_flow)      Results (its output, same order)
    ---------------------------------------      --------------------------------
    ProducerMessage.single(record, pt)  -> Message           -> Result(metadata, message)
    ProducerMessage.multi(records, pt)  -> MultiMessage      -> MultiResult(parts, pt)
    ProducerMessage.pass_through(pt)    -> PassThroughMessage -> PassThroughResult(pt)

Every envelope and result has ``.pass_through``, the value carried along
unchanged (typically a :class:`CommittableOffset` to commit once the record is
written).

Consuming::

    CommittableMessage(record, committable_offset)
    CommittableOffset(group_id, topic, partition, offset, committer)
    CommittableOffsetBatch.empty().updated(offset)...  -> await batch.commit()

``CommittableOffset.offset`` is the offset of the consumed record; committing
it stores ``offset + 1`` in Kafka, the next offset to read, as Kafka and
Alpakka do. The consumer that emitted the record does the commit: each
committable holds a :class:`KafkaCommitterRef` to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    NoReturn,
    Protocol,
    TypeAlias,
    TypeVar,
    runtime_checkable,
)

from aiokafka.structs import TopicPartition

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "Committable",
    "CommittableMessage",
    "CommittableOffset",
    "CommittableOffsetBatch",
    "Envelope",
    "GroupTopicPartition",
    "KafkaCommitterRef",
    "Message",
    "MultiMessage",
    "MultiResult",
    "MultiResultPart",
    "PartitionOffset",
    "PassThroughMessage",
    "PassThroughResult",
    "ProducerMessage",
    "ProducerRecord",
    "RecordMetadata",
    "Result",
    "Results",
    "TopicPartition",
]

K = TypeVar("K")
V = TypeVar("V")
PT = TypeVar("PT")
R = TypeVar("R")

Header: TypeAlias = tuple[str, bytes | None]


def _bad_topic(topic: object) -> NoReturn:
    if not isinstance(topic, str):
        raise TypeError(f"ProducerRecord topic must be a non-empty str, got {topic!r}")
    raise ValueError(f"ProducerRecord topic must be a non-empty str, got {topic!r}")


def _check_int(name: str, value: object) -> None:
    """Raise for a ``partition``/``timestamp_ms`` that is not an int >= 0 (an ``int``
    subclass other than ``bool`` passes)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"ProducerRecord {name} must be an int or None, got {type(value).__name__} {value!r}"
        )
    if value < 0:
        raise ValueError(f"ProducerRecord {name} must be >= 0 or None, got {value}")


def _checked_headers(headers: Any) -> tuple[Header, ...]:
    """``headers`` as a tuple of ``(str, bytes | None)`` pairs, or a ``TypeError`` naming
    what is wrong. A mapping gives its items; ``bytearray``/``memoryview`` values are
    copied to ``bytes``; ``None`` gives no headers."""
    cls = headers.__class__
    if cls is tuple or cls is list:  # the common case: check the pairs, nothing to convert
        for pair in headers:
            if (
                pair.__class__ is not tuple
                or len(pair) != 2
                or pair[0].__class__ is not str
                or (pair[1].__class__ is not bytes and pair[1] is not None)
            ):
                break
        else:
            return headers if cls is tuple else tuple(headers)
    if headers is None:
        return ()
    if isinstance(headers, Mapping):
        items: Iterable[Any] = headers.items()
    elif isinstance(headers, str | bytes | bytearray | memoryview) or not isinstance(
        headers, Iterable
    ):
        raise TypeError(
            "ProducerRecord headers must be (str, bytes) pairs (a list or tuple of "
            f"pairs, or a dict), got {type(headers).__name__} {headers!r}"
        )
    else:
        items = headers
    checked: list[Header] = []
    for pair in items:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise TypeError(
                f"ProducerRecord headers must be (str, bytes) pairs, got the element {pair!r} "
                f"in {headers!r}"
            )
        name, value = pair
        if not isinstance(name, str):
            raise TypeError(
                f"ProducerRecord header names must be str, got {type(name).__name__} "
                f"{name!r} in {headers!r}"
            )
        if value is not None and value.__class__ is not bytes:
            if isinstance(value, bytearray | memoryview):
                value = bytes(value)
            elif not isinstance(value, bytes):
                raise TypeError(
                    f"ProducerRecord header values must be bytes or None, got "
                    f"{type(value).__name__} {value!r} for header {name!r} (encode text, "
                    "e.g. value.encode())"
                )
        checked.append((name, value))
    return tuple(checked)


# -- producing -----------------------------------------------------------------


class ProducerRecord(Generic[K, V]):
    """One record to write to Kafka.

    ``key`` and ``value`` go through the producer's serializers (when the
    settings have none they must already be ``bytes`` or ``None``).
    ``partition=None`` lets the partitioner choose (by key hash, or spread when
    the key is ``None``); ``timestamp_ms=None`` lets the producer stamp it;
    ``headers`` is an iterable of ``(str, bytes)`` pairs (a header value may be
    ``None``; the same key may repeat) or a mapping of header names to values,
    stored as a tuple of pairs; ``None`` means no headers. The fields are
    checked here, so a mistake fails where the record is built, naming the
    field (``TypeError``/``ValueError``), not later as a send failure.

    Immutable by convention: do not assign its attributes. Equal (and hashed)
    by all fields. (A plain class with ``__slots__`` rather than a frozen
    dataclass because a pipeline builds one per record: this one costs a
    fifth as much to construct.)
    """

    __slots__ = ("headers", "key", "partition", "timestamp_ms", "topic", "value")
    __match_args__ = ("topic", "value", "key", "partition", "timestamp_ms", "headers")

    topic: str
    value: V
    key: K | None
    partition: int | None
    timestamp_ms: int | None
    headers: Sequence[Header]

    def __init__(
        self,
        topic: str,
        value: V,
        key: K | None = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Iterable[Header] | Mapping[str, bytes | None] | None = (),
    ) -> None:
        """A record for ``topic``.

        Raises:
            TypeError: a field of the wrong type (``topic`` not a ``str``, ``partition``
                or ``timestamp_ms`` not an ``int``, ``headers`` not (str, bytes) pairs),
                naming the field and the value.
            ValueError: an empty topic, a negative partition or timestamp.
        """
        if (topic.__class__ is not str and not isinstance(topic, str)) or not topic:
            _bad_topic(topic)
        # Each check costs one comparison when the field has its default (hot path).
        if partition is not None and (partition.__class__ is not int or partition < 0):
            _check_int("partition", partition)
        if timestamp_ms is not None and (timestamp_ms.__class__ is not int or timestamp_ms < 0):
            _check_int("timestamp_ms", timestamp_ms)
        if headers.__class__ is not tuple or headers:
            headers = _checked_headers(headers)
        self.topic = topic
        self.value = value
        self.key = key
        self.partition = partition
        self.timestamp_ms = timestamp_ms
        self.headers = headers

    def _fields(self) -> tuple[Any, ...]:
        return (self.topic, self.value, self.key, self.partition, self.timestamp_ms, self.headers)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        return (
            f"ProducerRecord(topic={self.topic!r}, value={self.value!r}, key={self.key!r}, "
            f"partition={self.partition!r}, timestamp_ms={self.timestamp_ms!r}, "
            f"headers={self.headers!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (ProducerRecord, self._fields())


@dataclass(frozen=True, slots=True)
class RecordMetadata:
    """Where the broker stored a record: topic, partition, offset, timestamp (ms)."""

    topic: str
    partition: int
    offset: int
    timestamp: int | None = None

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)

    @classmethod
    def from_aiokafka(cls, metadata: Any) -> RecordMetadata:
        """Convert aiokafka's ``RecordMetadata`` (timestamp ``-1`` means none)."""
        timestamp = metadata.timestamp
        return cls(
            metadata.topic,
            metadata.partition,
            metadata.offset,
            None if timestamp is None or timestamp < 0 else timestamp,
        )


class Message(Generic[K, V, PT]):
    """Envelope: produce one record, then emit a :class:`Result`.

    Immutable by convention; a plain class with ``__slots__`` (built once per
    record). Equal when record and pass-through are equal.
    """

    __slots__ = ("pass_through", "record")
    __match_args__ = ("record", "pass_through")

    record: ProducerRecord[K, V]
    pass_through: PT

    def __init__(self, record: ProducerRecord[K, V], pass_through: PT) -> None:
        """Pair ``record`` with the value to carry along."""
        self.record = record
        self.pass_through = pass_through

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.record == other.record and self.pass_through == other.pass_through

    def __hash__(self) -> int:
        return hash((self.record, self.pass_through))

    def __repr__(self) -> str:
        return f"Message(record={self.record!r}, pass_through={self.pass_through!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (Message, (self.record, self.pass_through))


@dataclass(frozen=True, slots=True)
class MultiMessage(Generic[K, V, PT]):
    """Envelope: produce several records (possibly none), then emit one :class:`MultiResult`."""

    records: tuple[ProducerRecord[K, V], ...]
    pass_through: PT


@dataclass(frozen=True, slots=True)
class PassThroughMessage(Generic[PT]):
    """Envelope: produce nothing, emit a :class:`PassThroughResult` carrying ``pass_through``.

    Keeps an element (e.g. an offset to commit) in order with the records
    produced around it.
    """

    pass_through: PT


#: What ``Producer.flexi_flow`` accepts.
Envelope: TypeAlias = Message[Any, Any, PT] | MultiMessage[Any, Any, PT] | PassThroughMessage[PT]


class ProducerMessage:
    """Factories for producer envelopes (Alpakka's ``ProducerMessage``)."""

    __slots__ = ()

    @staticmethod
    def single(record: ProducerRecord[K, V], pass_through: PT = None) -> Message[K, V, PT]:  # type: ignore[assignment]
        """Produce ``record``; the result is a :class:`Result`."""
        if record.__class__ is not ProducerRecord and not isinstance(record, ProducerRecord):
            raise TypeError(
                f"ProducerMessage.single expects a ProducerRecord, got {type(record).__name__}"
            )
        return Message(record, pass_through)

    @staticmethod
    def multi(
        records: Iterable[ProducerRecord[K, V]],
        pass_through: PT = None,  # type: ignore[assignment]
    ) -> MultiMessage[K, V, PT]:
        """Produce every record of ``records``; the result is one :class:`MultiResult`."""
        records = tuple(records)
        for record in records:
            if not isinstance(record, ProducerRecord):
                raise TypeError(
                    f"ProducerMessage.multi expects ProducerRecords, got {type(record).__name__}"
                )
        return MultiMessage(records, pass_through)

    @staticmethod
    def pass_through(pass_through: PT) -> PassThroughMessage[PT]:
        """Produce nothing; the result is a :class:`PassThroughResult`."""
        return PassThroughMessage(pass_through)


@dataclass(frozen=True, slots=True)
class Result(Generic[K, V, PT]):
    """The outcome of a :class:`Message`: where its record was written."""

    metadata: RecordMetadata
    message: Message[K, V, PT]

    @property
    def pass_through(self) -> PT:
        return self.message.pass_through

    @property
    def record(self) -> ProducerRecord[K, V]:
        return self.message.record

    @property
    def offset(self) -> int:
        return self.metadata.offset


@dataclass(frozen=True, slots=True)
class MultiResultPart(Generic[K, V]):
    """One record of a :class:`MultiMessage` and where it was written."""

    metadata: RecordMetadata
    record: ProducerRecord[K, V]


@dataclass(frozen=True, slots=True)
class MultiResult(Generic[K, V, PT]):
    """The outcome of a :class:`MultiMessage`, parts in the order of its records."""

    parts: tuple[MultiResultPart[K, V], ...]
    pass_through: PT


@dataclass(frozen=True, slots=True)
class PassThroughResult(Generic[PT]):
    """The outcome of a :class:`PassThroughMessage`."""

    pass_through: PT


#: What ``Producer.flexi_flow`` emits.
Results: TypeAlias = Result[Any, Any, PT] | MultiResult[Any, Any, PT] | PassThroughResult[PT]


# -- consuming: offsets ----------------------------------------------------------


@runtime_checkable
class KafkaCommitterRef(Protocol):
    """The consumer-side object that commits offsets for one consumer group.

    The consumer source creates one per KafkaConsumer and hands it to every
    :class:`CommittableOffset` it emits; :class:`CommittableOffsetBatch`
    groups offsets per committer and calls it once per commit.
    """

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit ``offsets``, each the *next* offset to read (record offset + 1).

        Completes when the broker acknowledged the commit; raises when it
        failed or timed out (``commit_timeout``) or the consumer is closed.
        """


@dataclass(frozen=True, slots=True)
class GroupTopicPartition:
    """A partition as seen by one consumer group."""

    group_id: str
    topic: str
    partition: int

    @property
    def topic_partition(self) -> TopicPartition:
        return TopicPartition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class PartitionOffset:
    """The offset of a consumed record, with its group and partition."""

    key: GroupTopicPartition
    offset: int


class CommittableOffset:
    """The offset of one consumed record, which can be committed to its group.

    ``offset`` is the record's own offset; :meth:`commit` stores ``offset + 1``
    (the next offset to read). Equality and hashing ignore the committer.

    Immutable by convention: do not assign its attributes. (A plain class with
    ``__slots__`` rather than a frozen dataclass because the consumer builds one
    per record: this one costs a quarter as much to construct.)
    """

    __slots__ = ("committer", "group_id", "offset", "partition", "topic")
    __match_args__ = ("group_id", "topic", "partition", "offset", "committer")

    group_id: str
    topic: str
    partition: int
    offset: int
    committer: KafkaCommitterRef

    def __init__(
        self,
        group_id: str,
        topic: str,
        partition: int,
        offset: int,
        committer: KafkaCommitterRef,
    ) -> None:
        """An offset of ``group_id``'s consumption of ``topic``/``partition``."""
        self.group_id = group_id
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.committer = committer

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (
            self.offset == other.offset
            and self.partition == other.partition
            and self.topic == other.topic
            and self.group_id == other.group_id
        )

    def __hash__(self) -> int:
        return hash((self.group_id, self.topic, self.partition, self.offset))

    def __repr__(self) -> str:
        return (
            f"CommittableOffset(group_id={self.group_id!r}, topic={self.topic!r}, "
            f"partition={self.partition!r}, offset={self.offset!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (
            CommittableOffset,
            (self.group_id, self.topic, self.partition, self.offset, self.committer),
        )

    @property
    def topic_partition(self) -> TopicPartition:
        """The record's ``TopicPartition``."""
        return TopicPartition(self.topic, self.partition)

    @property
    def group_topic_partition(self) -> GroupTopicPartition:
        """The record's partition as seen by its group."""
        return GroupTopicPartition(self.group_id, self.topic, self.partition)

    @property
    def partition_offset(self) -> PartitionOffset:
        """The offset with its group and partition."""
        return PartitionOffset(self.group_topic_partition, self.offset)

    @property
    def batch_size(self) -> int:
        """Always 1 (a batch counts the offsets it aggregated)."""
        return 1

    async def commit(self) -> None:
        """Commit ``offset + 1`` for this partition and wait for the broker's ack.

        Committing each record on its own is slow; prefer ``Committer.sink``
        or a :class:`CommittableOffsetBatch`.
        """
        await self.committer.commit({self.topic_partition: self.offset + 1})


class CommittableOffsetBatch:
    """An immutable set of offsets to commit together, the highest per partition.

    ``CommittableOffsetBatch.empty().updated(o1).updated(o2)`` keeps, for each
    (group, topic, partition), the highest record offset seen, and the committer
    (consumer) of the offset added last for it (as Alpakka's batch: one group's offsets
    may come from several consumers, e.g. two sources of one group on different topics,
    or a consumer restarted mid-batch); ``batch_size`` counts every offset added.
    :meth:`commit` commits the offsets of each committer through it, concurrently, and
    waits for all.
    """

    __slots__ = ("_batch_size", "_committers", "_offsets")

    _offsets: Mapping[GroupTopicPartition, int]
    _committers: Mapping[GroupTopicPartition, KafkaCommitterRef]
    _batch_size: int

    def __init__(self) -> None:
        """An empty batch (the same as :meth:`empty`)."""
        self._offsets = {}
        self._committers = {}
        self._batch_size = 0

    @classmethod
    def _make(
        cls,
        offsets: Mapping[GroupTopicPartition, int],
        committers: Mapping[GroupTopicPartition, KafkaCommitterRef],
        batch_size: int,
    ) -> CommittableOffsetBatch:
        batch = cls.__new__(cls)
        batch._offsets = offsets
        batch._committers = committers
        batch._batch_size = batch_size
        return batch

    @classmethod
    def empty(cls) -> CommittableOffsetBatch:
        """A batch with no offsets."""
        return cls()

    @classmethod
    def of(cls, *committables: Committable) -> CommittableOffsetBatch:
        """A batch holding ``committables`` (offsets or batches)."""
        batch = cls()
        for committable in committables:
            batch = batch.updated(committable)
        return batch

    def updated(self, committable: Committable) -> CommittableOffsetBatch:
        """A new batch with ``committable`` (an offset or a whole batch) merged in: the
        highest offset per partition, the committer of what was merged last.

        Raises:
            TypeError: ``committable`` is neither kind.
        """
        if isinstance(committable, CommittableOffset):
            key = committable.group_topic_partition
            return self._merge(((key, committable.offset),), ((key, committable.committer),), 1)
        if isinstance(committable, CommittableOffsetBatch):
            return self._merge(
                committable._offsets.items(),
                committable._committers.items(),
                committable._batch_size,
            )
        raise TypeError(
            "CommittableOffsetBatch.updated expects a CommittableOffset or a "
            f"CommittableOffsetBatch, got {type(committable).__name__}"
        )

    def _merge(
        self,
        offsets: Iterable[tuple[GroupTopicPartition, int]],
        committers: Iterable[tuple[GroupTopicPartition, KafkaCommitterRef]],
        batch_size: int,
    ) -> CommittableOffsetBatch:
        new_committers = dict(self._committers)
        new_committers.update(committers)  # the last committer wins (Alpakka #942)
        new_offsets = dict(self._offsets)
        for key, offset in offsets:
            previous = new_offsets.get(key)
            if previous is None or offset > previous:
                new_offsets[key] = offset
        return self._make(new_offsets, new_committers, self._batch_size + batch_size)

    @property
    def batch_size(self) -> int:
        """How many offsets were added (not how many partitions)."""
        return self._batch_size

    @property
    def is_empty(self) -> bool:
        return not self._offsets

    def offsets(self) -> dict[GroupTopicPartition, int]:
        """The highest record offset per (group, topic, partition); commits store +1."""
        return dict(self._offsets)

    def committer_offsets(self) -> list[tuple[KafkaCommitterRef, dict[TopicPartition, int]]]:
        """Per committer, the offsets to hand to its ``commit``: next offset to read (+1)."""
        per_committer: dict[int, tuple[KafkaCommitterRef, dict[TopicPartition, int]]] = {}
        committers = self._committers
        for key, offset in self._offsets.items():
            committer = committers[key]
            entry = per_committer.get(id(committer))
            if entry is None:
                entry = per_committer[id(committer)] = (committer, {})
            entry[1][key.topic_partition] = offset + 1
        return list(per_committer.values())

    async def commit(self) -> None:
        """Commit every offset (+1) through its committer and wait for all acks.

        An empty batch returns at once. If a commit fails, the others still
        run to the end and the first failure is raised.
        """
        requests = self.committer_offsets()
        if not requests:
            return
        if len(requests) == 1:
            committer, offsets = requests[0]
            await committer.commit(offsets)
            return
        results = await asyncio.gather(
            *(committer.commit(offsets) for committer, offsets in requests),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CommittableOffsetBatch):
            return NotImplemented
        return self._offsets == other._offsets and self._batch_size == other._batch_size

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        offsets = ", ".join(
            f"{k.group_id}/{k.topic}-{k.partition}: {v}" for k, v in self._offsets.items()
        )
        return f"CommittableOffsetBatch(batch_size={self._batch_size}, offsets={{{offsets}}})"


#: Something a committer stage accepts.
Committable: TypeAlias = CommittableOffset | CommittableOffsetBatch


class CommittableMessage(Generic[R]):
    """An element of ``Consumer.committable_source``: the record and its offset.

    Immutable by convention; a plain class with ``__slots__`` (built once per record).
    Equal when record and offset are equal.
    """

    __slots__ = ("committable_offset", "record")
    __match_args__ = ("record", "committable_offset")

    record: R
    committable_offset: CommittableOffset

    def __init__(self, record: R, committable_offset: CommittableOffset) -> None:
        """Pair ``record`` with its ``committable_offset``."""
        self.record = record
        self.committable_offset = committable_offset

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self.record == other.record and self.committable_offset == other.committable_offset

    def __hash__(self) -> int:
        return hash((self.record, self.committable_offset))

    def __repr__(self) -> str:
        return (
            f"CommittableMessage(record={self.record!r}, "
            f"committable_offset={self.committable_offset!r})"
        )

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (CommittableMessage, (self.record, self.committable_offset))
