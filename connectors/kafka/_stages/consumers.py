"""Alpakka's ``Consumer``: the public factories of the consumer sources.

Every factory checks its arguments and builds one :class:`~.consumer.ConsumerStage` (the
stage and its poller live in :mod:`.consumer`); the factories sit above it, so the stage
modules import one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactive import Source, SourceWithContext

from ..settings import ConsumerSettings
from ..subscriptions import AutoSubscription, Subscription
from .consumer import ConsumerStage

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from aiokafka.structs import ConsumerRecord, TopicPartition

    from ..messages import CommittableMessage, CommittableOffset
    from .control import Control

__all__ = ["Consumer"]


def _check(
    what: str, settings: ConsumerSettings, subscription: Subscription, committable: bool
) -> None:
    if not isinstance(settings, ConsumerSettings):
        raise TypeError(f"Consumer.{what}: expected ConsumerSettings, got {settings!r}")
    if not isinstance(subscription, Subscription):
        raise TypeError(
            f"Consumer.{what}: expected a subscription (Subscriptions.topics(...), "
            f".topic_pattern(...), .assignment(...)), got {subscription!r}"
        )
    if settings.group_id is None:
        if isinstance(subscription, AutoSubscription):
            raise ValueError(
                f"Consumer.{what}: subscribing by topic needs a consumer group; set "
                "ConsumerSettings.group_id (with_group_id) or use Subscriptions.assignment"
            )
        if committable:
            raise ValueError(
                f"Consumer.{what}: committing offsets needs a consumer group; set "
                "ConsumerSettings.group_id (with_group_id)"
            )


def _source(
    what: str,
    settings: ConsumerSettings,
    subscription: Subscription,
    *,
    committable: bool,
    partitioned: bool,
    name: str | None = None,
    drain: Callable[[], Awaitable[None]] | None = None,
) -> Source[Any, Control]:
    """The consumer stage as a Source, its arguments checked as ``Consumer.<what>``'s;
    named ``name`` (default ``Consumer.<what>``), ``drain`` awaited before its consumer
    closes (``ConsumerStage``)."""
    _check(what, settings, subscription, committable)
    stage = ConsumerStage(
        settings,
        subscription,
        committable=committable,
        partitioned=partitioned,
        name=f"Consumer.{what}" if name is None else name,
        drain=drain,
    )
    return Source.from_graph(stage)


def _record_and_offset(
    msg: CommittableMessage[ConsumerRecord[Any, Any]],
) -> tuple[ConsumerRecord[Any, Any], CommittableOffset]:
    return msg.record, msg.committable_offset


class Consumer:
    """Factories of Kafka consumer sources (Alpakka's ``Consumer``).

    Every source takes ``(settings, subscription)`` and materializes a
    :class:`~connectors.kafka._stages.control.Control`. Records are aiokafka
    ``ConsumerRecord`` objects whose ``key``/``value`` went through the settings'
    deserializers. A supervision strategy set on the source
    (``.with_attributes(Attributes.supervision_strategy(...))``) decides about
    records that fail to deserialize: stop (default) fails the stream with
    :class:`~connectors.kafka.errors.DeserializationError`, resume/restart skip
    the record.
    """

    __slots__ = ()

    @staticmethod
    def plain_source(
        settings: ConsumerSettings, subscription: Subscription
    ) -> Source[ConsumerRecord[Any, Any], Control]:
        """Records of the subscribed partitions; offsets are not committed.

        Emits when: a fetched record is available and downstream pulled.
        Backpressures when: downstream does not pull; at most
        ``max_buffered_records`` records are fetched ahead, then the partitions are held
        back (what aiokafka already fetched is kept for later, never fetched again).
        Completes when: ``Control.stop()``/``shutdown()`` was called.
        Fails when: the broker is unreachable at start (``ConsumerConnectionError``
        within ``connect_timeout``), a record fails to deserialize (unless supervision
        resumes), or polling fails.
        Cancels when: never (a source); downstream cancellation shuts the consumer down.
        """
        return _source("plain_source", settings, subscription, committable=False, partitioned=False)

    @staticmethod
    def committable_source(
        settings: ConsumerSettings, subscription: Subscription
    ) -> Source[CommittableMessage[Any], Control]:
        """``CommittableMessage(record, committable_offset)`` for each record: commit the
        offsets (``Committer.sink``) after processing for at-least-once delivery.

        Emits when: a fetched record is available and downstream pulled.
        Backpressures when: downstream does not pull (bounded prefetch, then held back).
        Completes when: ``Control.stop()``/``shutdown()`` was called.
        Fails when: as :meth:`plain_source`.
        Cancels when: never; downstream cancellation shuts the consumer down.
        """
        return _source(
            "committable_source", settings, subscription, committable=True, partitioned=False
        )

    @staticmethod
    def source_with_offset_context(
        settings: ConsumerSettings, subscription: Subscription
    ) -> SourceWithContext[ConsumerRecord[Any, Any], CommittableOffset, Control]:
        """Each record with its ``CommittableOffset`` as the context (Alpakka's
        ``sourceWithOffsetContext``): process the records with the context-keeping
        operators, then commit with ``Committer.sink_with_offset_context``.

        The stage of :meth:`committable_source`, its messages split into
        ``(record, committable_offset)`` pairs.

        Emits when: a fetched record is available and downstream pulled.
        Backpressures when: downstream does not pull (bounded prefetch, then held back).
        Completes when: ``Control.stop()``/``shutdown()`` was called.
        Fails when: as :meth:`plain_source`.
        Cancels when: never; downstream cancellation shuts the consumer down.
        """
        source = _source(
            "source_with_offset_context",
            settings,
            subscription,
            committable=True,
            partitioned=False,
        )
        return SourceWithContext(source.map(_record_and_offset))

    @staticmethod
    def at_most_once_source(
        settings: ConsumerSettings, subscription: Subscription
    ) -> Source[ConsumerRecord[Any, Any], Control]:
        """Records whose offset was committed *before* they are emitted (at-most-once).

        Commits each record on its own: slow; prefer :meth:`committable_source`.

        Emits when: the record's offset commit was acknowledged and downstream pulled.
        Backpressures when: downstream does not pull, or a commit is in flight.
        Completes when: ``Control.stop()``/``shutdown()`` was called.
        Fails when: as :meth:`plain_source`, or a commit fails.
        Cancels when: never; downstream cancellation shuts the consumer down.
        """
        source = _source(
            "at_most_once_source", settings, subscription, committable=True, partitioned=False
        )

        async def commit_then_emit(msg: CommittableMessage[Any]) -> Any:
            await msg.committable_offset.commit()
            return msg.record

        return source.map_async(1, commit_then_emit)

    @staticmethod
    def plain_partitioned_source(
        settings: ConsumerSettings, subscription: Subscription
    ) -> Source[tuple[TopicPartition, Source[ConsumerRecord[Any, Any], Any]], Control]:
        """``(TopicPartition, Source of records)`` for each partition assigned.

        A partition's source completes when the partition is revoked (or the
        outer source stops); a new pair is emitted when it is assigned again. A
        substream that is cancelled while its partition is still assigned is
        replaced by a new pair that continues with the records not yet emitted.
        Each substream is fed on its own demand: a slow one holds back only its partition.

        Emits when: a partition was assigned and downstream pulled.
        Backpressures when: downstream does not pull (pairs wait; substreams are
        back-pressured each on its own).
        Completes when: ``Control.stop()``/``shutdown()`` was called (substreams too).
        Fails when: as :meth:`plain_source` (the substreams fail too).
        Cancels when: never; downstream cancellation shuts the consumer down.
        """
        return _source(
            "plain_partitioned_source", settings, subscription, committable=False, partitioned=True
        )

    @staticmethod
    def committable_partitioned_source(
        settings: ConsumerSettings, subscription: Subscription
    ) -> Source[tuple[TopicPartition, Source[CommittableMessage[Any], Any]], Control]:
        """As :meth:`plain_partitioned_source`, with ``CommittableMessage`` elements.

        Emits when: a partition was assigned and downstream pulled.
        Backpressures when: downstream does not pull.
        Completes when: ``Control.stop()``/``shutdown()`` was called (substreams too).
        Fails when: as :meth:`plain_source` (the substreams fail too).
        Cancels when: never; downstream cancellation shuts the consumer down.
        """
        return _source(
            "committable_partitioned_source",
            settings,
            subscription,
            committable=True,
            partitioned=True,
        )
