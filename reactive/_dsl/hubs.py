"""Hubs: the factories of dynamic fan-in (``MergeHub``) and fan-out (``BroadcastHub``,
``PartitionHub``). The running hubs are stages of :mod:`reactive._ops.hubs`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias

from .._checks import check, fn, int_at_least, pos_int
from .._impl.modules import AtomicModule
from .._ops.hubs import (
    ConsumerInfo,
    MergeHubDrainingControl,
    _BroadcastHubStage,
    _MergeHubStage,
    _PartitionHubStage,
    partition_index,
)
from .blueprints import Sink, Source

_ConsumerInfo = ConsumerInfo

__all__ = ["MergeHub", "BroadcastHub", "PartitionHub"]


class MergeHub:
    """Dynamic fan-in: a Source whose materialized value is a Sink that can be run any
    number of times, each run feeding the hub."""

    @staticmethod
    def source(per_producer_buffer_size: int = 16) -> Source[Any, Sink[Any, Any]]:
        """A Source emitting what every attached producer sends, first come first served.

        Emits when an element from any producer is buffered and downstream pulls.
        Backpressures: each producer may have at most ``per_producer_buffer_size``
        elements in flight; a slow consumer backpressures all producers. Completes
        never (a producer's completion or failure just detaches it). Cancels: when
        downstream cancels, every current producer is cancelled, and so is every
        producer attached later.

        A ``per_producer_buffer_size`` that is not an int >= 1 raises ``TypeError`` /
        ``ValueError`` at once.
        """
        check("MergeHub.source(per_producer_buffer_size)", pos_int(per_producer_buffer_size))
        return Source(AtomicModule(_MergeHubStage(per_producer_buffer_size)))

    #: The type of the draining control of ``source_with_draining`` (Akka's
    #: ``MergeHub.DrainingControl``).
    DrainingControl = MergeHubDrainingControl

    @staticmethod
    def source_with_draining(
        per_producer_buffer_size: int = 16,
    ) -> Source[Any, tuple[Sink[Any, Any], MergeHubDrainingControl]]:
        """``source`` whose materialized value is ``(sink, control)``: the producers' Sink
        and a ``MergeHub.DrainingControl`` (Akka's ``MergeHub.sourceWithDraining``).

        ``control.drain_and_complete()`` switches the hub to draining: producers that
        attach from then on are cancelled at once, the producers already attached go on
        until they finish, and once all of them did and their elements were emitted the
        hub's Source completes. Otherwise as ``source``.

        Emits when an element from any producer is buffered and downstream pulls.
        Backpressures: each producer may have at most ``per_producer_buffer_size``
        elements in flight; a slow consumer backpressures all producers. Completes when
        ``drain_and_complete()`` was called and every producer attached before it
        finished and their elements were emitted (at once if there is none); never
        without it. Cancels:
        when downstream cancels, every current producer is cancelled, and so is every
        producer attached later; when draining, every producer attached later.

        A ``per_producer_buffer_size`` that is not an int >= 1 raises ``TypeError`` /
        ``ValueError`` at once.
        """
        check(
            "MergeHub.source_with_draining(per_producer_buffer_size)",
            pos_int(per_producer_buffer_size),
        )
        return Source(AtomicModule(_MergeHubStage(per_producer_buffer_size, draining=True)))


class BroadcastHub:
    """Dynamic fan-out: a Sink whose materialized value is a Source that can be run any
    number of times, each run receiving the elements."""

    @staticmethod
    def sink(
        buffer_size: int = 256, start_after_nr_of_consumers: int = 0
    ) -> Sink[Any, Source[Any, Any]]:
        """A Sink broadcasting to every materialization of its materialized Source.

        A consumer starts at the oldest element still buffered (as in Akka: once every
        earlier consumer has read an element it is gone, so in steady state a consumer
        sees the elements published after it attached). Backpressures when the fastest
        consumer is ``buffer_size`` elements ahead of the slowest, while there is no
        consumer and the buffer is full, and until ``start_after_nr_of_consumers``
        consumers attached (at startup only). Completes: each consumer completes after
        reading everything once upstream completed; a consumer attaching after the
        completion reads the elements no consumer has read yet (none once every element
        was read) and completes (Akka's hub stops and drops them when its upstream
        completes with no consumer attached and its buffer not full; here they always
        wait for the next consumer). Fails: each consumer fails at once (the failure
        overtakes buffered elements); later consumers fail too. Cancels never:
        cancelled consumers are removed, and the hub keeps consuming for the next ones.
        ``buffer_size`` must be a power of two below 4096 (``ValueError`` otherwise) and
        ``start_after_nr_of_consumers`` an int >= 0 (``TypeError`` / ``ValueError``).
        """
        check(
            "BroadcastHub.sink(buffer_size, start_after_nr_of_consumers)",
            pos_int(buffer_size),
            int_at_least(start_after_nr_of_consumers, 0),
        )
        if buffer_size < 1 or buffer_size >= 4096 or buffer_size & (buffer_size - 1):
            raise ValueError(
                "BroadcastHub.sink: buffer_size must be a power of two between 1 and 2048 "
                f"(as in Akka), got {buffer_size}"
            )
        return Sink(AtomicModule(_BroadcastHubStage(buffer_size, start_after_nr_of_consumers)))


class PartitionHub:
    """Dynamic fan-out routing each element to exactly one consumer."""

    #: The type of what a ``stateful_sink`` routing function gets about the consumers
    #: (Akka's ``PartitionHub.ConsumerInfo``), for annotating one.
    ConsumerInfo: TypeAlias = _ConsumerInfo

    @staticmethod
    def sink(
        partitioner: Callable[[int, Any], int],
        start_after_nr_of_consumers: int,
        buffer_size: int = 256,
    ) -> Sink[Any, Source[Any, Any]]:
        """A Sink whose materialized Source can be run many times; each element goes to the
        consumer at index ``partitioner(number_of_consumers, elem)`` (in attach order), or
        is dropped for ``-1``; any other index out of range fails the hub
        (``IndexError``), and so does an index that is not an int (``TypeError``), both
        naming the index and the element.

        Emits (to a consumer) when an element was routed to it and it pulls.
        Backpressures when ``buffer_size`` elements are queued over all consumers, when
        no consumer is attached, and until ``start_after_nr_of_consumers`` consumers
        attached (startup only). Completes: each consumer completes after its queue
        once upstream completed. Fails: every consumer fails at once (also when the
        partitioner raises). Cancels never: a consumer that cancels is removed and its
        queued elements dropped.

        Arguments are checked when the sink is built: ``partitioner`` must be callable,
        ``start_after_nr_of_consumers`` an int >= 0 and ``buffer_size`` an int >= 1
        (``TypeError`` / ``ValueError`` naming ``PartitionHub.sink``).
        """
        check(
            "PartitionHub.sink(partitioner, start_after_nr_of_consumers, buffer_size)",
            fn(partitioner),
            int_at_least(start_after_nr_of_consumers, 0),
            pos_int(buffer_size),
        )

        def factory() -> Callable[[ConsumerInfo, Any], int]:
            def route(info: ConsumerInfo, elem: Any) -> int:
                n = info.size
                i = partition_index(partitioner(n, elem), "partitioner", "index", elem)
                if i < 0:
                    return -1
                if i >= n:
                    raise IndexError(
                        f"[partition_hub] partitioner returned index {i} for element "
                        f"{elem!r} with {n} consumer(s): an index must be in [0, {n}) or "
                        "-1 to drop the element"
                    )
                return info.consumer_id_by_idx(i)

            return route

        return PartitionHub.stateful_sink(factory, start_after_nr_of_consumers, buffer_size)

    @staticmethod
    def stateful_sink(
        partitioner_factory: Callable[[], Callable[[ConsumerInfo, Any], int]],
        start_after_nr_of_consumers: int,
        buffer_size: int = 256,
    ) -> Sink[Any, Source[Any, Any]]:
        """Like ``sink`` with a routing function made per materialization by
        ``partitioner_factory()``; it gets a ``ConsumerInfo`` (never with zero consumers)
        and returns a consumer **id**, or a negative id to drop the element. An id of no
        attached consumer fails the hub with ``ValueError`` ("Invalid stream identifier",
        as in Akka), and an id that is not an int with ``TypeError``, both naming the id
        and the element: no element is lost silently.

        Emits (to a consumer) when an element was routed to it and it pulls. Backpressures
        when ``buffer_size`` elements are queued over all consumers, when no consumer is
        attached, and until ``start_after_nr_of_consumers`` consumers attached (startup
        only). Completes: each consumer completes after its queue once upstream completed.
        Fails: every consumer fails at once (also when the routing function raises). Cancels
        never: a consumer that cancels is removed and its queued elements dropped.

        Arguments are checked when the sink is built: ``partitioner_factory`` must be
        callable, ``start_after_nr_of_consumers`` an int >= 0 and ``buffer_size`` an int
        >= 1 (``TypeError`` / ``ValueError`` naming ``PartitionHub.stateful_sink``).
        """
        check(
            "PartitionHub.stateful_sink(partitioner_factory, start_after_nr_of_consumers, "
            "buffer_size)",
            fn(partitioner_factory),
            int_at_least(start_after_nr_of_consumers, 0),
            pos_int(buffer_size),
        )
        return Sink(
            AtomicModule(
                _PartitionHubStage(partitioner_factory, start_after_nr_of_consumers, buffer_size)
            )
        )
