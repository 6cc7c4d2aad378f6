"""Hubs: the factories of dynamic fan-in (``MergeHub``) and fan-out (``BroadcastHub``,
``PartitionHub``). The running hubs are stages of :mod:`reactive._ops.hubs`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._impl.modules import AtomicModule
from .._ops.hubs import ConsumerInfo, _BroadcastHubStage, _MergeHubStage, _PartitionHubStage
from .blueprints import Sink, Source

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
        """
        if per_producer_buffer_size < 1:
            raise ValueError(
                f"per_producer_buffer_size must be >= 1, got {per_producer_buffer_size}"
            )
        return Source(AtomicModule(_MergeHubStage(per_producer_buffer_size)))


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
        reading everything once upstream completed; consumers attaching later complete
        at once. Fails: each consumer fails at once (the failure overtakes buffered
        elements); later consumers fail too. Cancels never: cancelled consumers are
        removed, and the hub keeps consuming for the next ones.
        ``buffer_size`` must be a power of two below 4096 (``ValueError`` otherwise).
        """
        if buffer_size < 1 or buffer_size >= 4096 or buffer_size & (buffer_size - 1):
            raise ValueError(
                "BroadcastHub.sink: buffer_size must be a power of two between 1 and 2048 "
                f"(as in Akka), got {buffer_size}"
            )
        return Sink(AtomicModule(_BroadcastHubStage(buffer_size, start_after_nr_of_consumers)))


class PartitionHub:
    """Dynamic fan-out routing each element to exactly one consumer."""

    @staticmethod
    def sink(
        partitioner: Callable[[int, Any], int],
        start_after_nr_of_consumers: int,
        buffer_size: int = 256,
    ) -> Sink[Any, Source[Any, Any]]:
        """A Sink whose materialized Source can be run many times; each element goes to the
        consumer at index ``partitioner(number_of_consumers, elem)`` (in attach order), or
        is dropped for ``-1``; any other index out of range fails the hub.

        Emits (to a consumer) when an element was routed to it and it pulls.
        Backpressures when ``buffer_size`` elements are queued over all consumers, when
        no consumer is attached, and until ``start_after_nr_of_consumers`` consumers
        attached (startup only). Completes: each consumer completes after its queue
        once upstream completed. Fails: every consumer fails at once (also when the
        partitioner raises). Cancels never: a consumer that cancels is removed and its
        queued elements dropped.
        """

        def factory() -> Callable[[ConsumerInfo, Any], int]:
            def route(info: ConsumerInfo, elem: Any) -> int:
                n = info.size
                i = partitioner(n, elem)
                if i < 0:
                    return -1
                if i >= n:
                    raise IndexError(f"[partition_hub] partitioner returned {i} for {n} consumers")
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
        and returns a consumer **id**; a negative or unknown id drops the element.

        Emits (to a consumer) when an element was routed to it and it pulls. Backpressures
        when ``buffer_size`` elements are queued over all consumers, when no consumer is
        attached, and until ``start_after_nr_of_consumers`` consumers attached (startup
        only). Completes: each consumer completes after its queue once upstream completed.
        Fails: every consumer fails at once (also when the routing function raises). Cancels
        never: a consumer that cancels is removed and its queued elements dropped.
        """
        if buffer_size < 1:
            raise ValueError(f"buffer_size must be >= 1, got {buffer_size}")
        return Sink(
            AtomicModule(
                _PartitionHubStage(partitioner_factory, start_after_nr_of_consumers, buffer_size)
            )
        )
