"""Alpakka's ``Producer``: the public factories of the producer stages.

The stages live below this module (:mod:`.producer`, :mod:`.committing_sink`); the factories
sit above both, so the stage modules import one way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from reactive import Flow, FlowWithContext, Sink

from ..messages import Message, MultiMessage, PassThroughMessage, ProducerRecord
from ..settings import CommitterSettings, ProducerSettings
from .committing_sink import CommittingProducerSinkStage
from .producer import ProducerStage

if TYPE_CHECKING:
    from collections.abc import Awaitable

__all__ = ["Producer"]


# -- the factories -----------------------------------------------------------------------


def _with_pass_through(
    envelope: Any, context: Any, name: str = "Producer.flow_with_context"
) -> Any:
    """``envelope`` with ``context`` as its pass-through (``Producer.flow_with_context``,
    the transactional with-context stages: ``name`` in the error)."""
    if isinstance(envelope, Message):
        return Message(envelope.record, context)
    if isinstance(envelope, MultiMessage):
        return MultiMessage(envelope.records, context)
    if isinstance(envelope, PassThroughMessage):
        return PassThroughMessage(context)
    if isinstance(envelope, ProducerRecord):
        return Message(envelope, context)
    raise TypeError(
        f"[{name}] expects ProducerMessage envelopes (single, multi, "
        f"pass_through) or ProducerRecords, got {type(envelope).__name__}"
    )


def _pass_through_of(result: Any) -> Any:
    return result.pass_through


class Producer:
    """Factories of the producer stages (Alpakka's ``Producer``).

    Each stage creates, flushes and closes its own ``AIOKafkaProducer``, unless the
    settings carry a shared one (``ProducerSettings.with_producer``, Alpakka's
    ``withProducer``): then it sends through that producer and never closes it, and
    its completion waits for the acknowledgements of its own records only (no
    producer-wide flush). The ``Transactional`` stages cannot share a producer.
    """

    __slots__ = ()

    @staticmethod
    def plain_sink(settings: ProducerSettings) -> Sink[ProducerRecord[Any, Any], Awaitable[Any]]:
        """A sink writing each :class:`ProducerRecord` to Kafka.

        The materialized value is a future: ``Done`` once every record was
        acknowledged and the producer flushed and closed (a shared producer,
        ``ProducerSettings.with_producer``, is left open); the stream's error
        otherwise. Envelopes of :class:`ProducerMessage` are accepted too.

        - Backpressures when: ``settings.parallelism`` records are in flight.
        - Completes when: upstream completed and every record was acknowledged.
        - Fails when: a record cannot be serialized (the error names the topic),
          a send fails, or no broker answers within ``settings.connect_timeout``.
        - Cancels when: it fails.
        """
        return Sink.from_graph(ProducerStage(settings, sink=True, name="Producer.plain_sink"))

    @staticmethod
    def flexi_flow(settings: ProducerSettings) -> Flow[Any, Any, Any]:
        """A flow producing each envelope's records and emitting its result, in input order.

        ``ProducerMessage.single(record, pt)`` gives a :class:`Result` (``.metadata``
        with topic, partition, offset), ``multi(records, pt)`` a
        :class:`MultiResult` (``.parts[i].metadata``), ``pass_through(pt)`` a
        :class:`PassThroughResult`; each carries ``.pass_through``.

        - Emits when: the oldest element's records are all acknowledged and
          downstream pulls.
        - Backpressures when: ``settings.parallelism`` elements are in flight or
          waiting to be emitted.
        - Completes when: upstream completed, every result was emitted and the
          producer was flushed and closed.
        - Fails when: serialization fails, a send fails, or no broker answers
          within ``settings.connect_timeout``.
        - Cancels when: downstream cancels (the producer is closed first).
        """
        return Flow.from_graph(ProducerStage(settings, name="Producer.flexi_flow"))

    @staticmethod
    def flow_with_context(settings: ProducerSettings) -> FlowWithContext[Any, Any, Any, Any, Any]:
        """:meth:`flexi_flow` carrying a context (Alpakka's ``flowWithContext``): an
        envelope in with its context, its result out with the same context.

        Elements are ``ProducerMessage`` envelopes (``single``, ``multi``,
        ``pass_through``; a bare :class:`ProducerRecord` counts as ``single``); their own
        pass-through is replaced by the context, so each result's ``pass_through`` is the
        context too. Typically the context is a consumer offset, committed downstream with
        ``Committer.sink_with_offset_context``.

        - Emits when: the oldest element's records are all acknowledged and
          downstream pulls.
        - Backpressures when: ``settings.parallelism`` elements are in flight or
          waiting to be emitted.
        - Completes when: upstream completed, every result was emitted and the
          producer was flushed and closed.
        - Fails when: an element is not an envelope, serialization fails, a send
          fails, or no broker answers within ``settings.connect_timeout``.
        - Cancels when: downstream cancels (the producer is closed first).
        """
        stage = ProducerStage(settings, name="Producer.flow_with_context")
        flow: Flow[Any, Any, Any] = Flow.from_graph(stage)
        return flow.as_flow_with_context(_with_pass_through, _pass_through_of)

    @staticmethod
    def committable_sink(
        producer_settings: ProducerSettings,
        committer_settings: CommitterSettings | None = None,
    ) -> Sink[Any, Awaitable[Any]]:
        """Produce envelopes whose ``pass_through`` is a committable offset, then commit.

        One stage (Alpakka's committing producer sink, see
        :mod:`connectors.kafka._stages.committing_sink`): the records are sent
        pipelined, at most ``producer_settings.parallelism`` envelopes in flight;
        once the sends of the oldest envelopes were acknowledged their offsets join
        the offset batch, committed per ``committer_settings`` (``max_batch``,
        ``max_interval``, ``parallelism``; transient failures retried). An offset
        is committed only after the records produced for it and for every earlier
        envelope were acknowledged. Envelopes whose pass-through is ``None`` are
        produced without committing anything. The materialized value completes
        with ``Done`` once upstream completed, every record was acknowledged and
        every offset committed. When its consumer revokes partitions, the offsets of
        theirs it holds (of acknowledged records) are committed at once, before the
        partitions move, as the ``Committer`` stages do.

        - Backpressures when: ``parallelism`` envelopes are in flight, or a full
          offset batch waits for a commit slot.
        - Completes when: upstream completed, the producer was flushed and closed
          and the last commit was acknowledged.
        - Fails when: a send or serialization fails (the offsets collected before
          it are committed first; nothing after it), a commit fails after its
          retries, a pass-through is not a committable, or upstream fails (after
          committing what was collected).
        """
        settings = committer_settings if committer_settings is not None else CommitterSettings()
        return Sink.from_graph(CommittingProducerSinkStage(producer_settings, settings))
