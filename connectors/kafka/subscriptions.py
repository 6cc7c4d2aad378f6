"""Subscriptions: which topics or partitions a consumer source reads (Alpakka's ``Subscriptions``).

- Automatic assignment by the consumer group (needs a ``group_id``; partitions
  move between group members on rebalance): :meth:`Subscriptions.topics`,
  :meth:`Subscriptions.topic_pattern`. These may carry rebalance listeners
  (:class:`RebalanceListener`, ``with_rebalance_listener``; several are called in turn).
- Manual assignment, no group rebalancing (offsets may still be committed
  when a ``group_id`` is set): :meth:`Subscriptions.assignment`,
  :meth:`Subscriptions.assignment_with_offset`.

Partitions are given as aiokafka ``TopicPartition`` or ``(topic, partition)``
tuples and stored as ``TopicPartition``. Every subscription is immutable.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from aiokafka.structs import TopicPartition

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "AssignmentOffsetsSubscription",
    "AssignmentSubscription",
    "AutoSubscription",
    "ManualSubscription",
    "RebalanceListener",
    "Subscription",
    "Subscriptions",
    "TopicPartition",
    "TopicPatternSubscription",
    "TopicsSubscription",
]


class RebalanceListener(Protocol):
    """Told about partition assignment changes of an automatic subscription.

    The same shape as aiokafka's ``ConsumerRebalanceListener`` (whose
    subclasses qualify): each method may be a plain function or a coroutine
    function. ``on_partitions_revoked`` runs before a rebalance takes
    partitions away (commits still succeed there), ``on_partitions_assigned``
    after new partitions were given.
    """

    def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> Any:
        """Partitions about to be taken away (may return an awaitable)."""

    def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> Any:
        """Partitions just assigned (may return an awaitable)."""


def _topic_partition(tp: Any) -> TopicPartition:
    if isinstance(tp, TopicPartition):
        topic, partition = tp.topic, tp.partition
    else:
        try:
            topic, partition = tp
        except (TypeError, ValueError):
            raise TypeError(
                f"expected a TopicPartition or a (topic, partition) tuple, got {tp!r}"
            ) from None
    if not isinstance(topic, str) or not topic:
        raise ValueError(f"topic must be a non-empty str, got {topic!r}")
    if isinstance(partition, bool) or not isinstance(partition, int) or partition < 0:
        raise ValueError(f"partition must be an int >= 0, got {partition!r}")
    return TopicPartition(topic, partition)


class Subscription:
    """Base of every subscription. ``rebalance_listener`` is ``None`` unless set."""

    __slots__ = ()

    @property
    def rebalance_listener(self) -> RebalanceListener | None:
        return None


class AutoSubscription(Subscription):
    """Partitions assigned by the consumer group (needs ``group_id``); rebalances happen."""

    __slots__ = ()

    def with_rebalance_listener(self, *listeners: RebalanceListener | None) -> AutoSubscription:
        """A copy that tells ``listeners`` about assignment changes, after the listeners
        it already had.

        Several listeners (given in one call, or added by further calls, e.g. a
        co-partitioned table and a changelogged store's ``rebalance_listener``) are all
        called, one after the other in the order they were added, each awaited before
        the next: on assignment, no record of the new partitions is taken before every
        one returned; on revocation, each runs before the partitions move. The first
        that raises fails the source and the later ones are not called. A listener
        already set is not added again. ``with_rebalance_listener(None)`` removes every
        listener.
        """
        if len(listeners) == 1 and listeners[0] is None:
            result: AutoSubscription = dataclasses.replace(  # type: ignore[type-var]
                self, rebalance_listener=None
            )
            return result
        for listener in listeners:
            if not (
                callable(getattr(listener, "on_partitions_assigned", None))
                and callable(getattr(listener, "on_partitions_revoked", None))
            ):
                raise TypeError(
                    "a rebalance listener needs on_partitions_assigned(tps) and "
                    f"on_partitions_revoked(tps) methods, got {listener!r}"
                )
        if not listeners:
            raise TypeError("with_rebalance_listener needs at least one listener (or None)")
        chain: list[RebalanceListener] = [*_listeners_of(self.rebalance_listener)]
        for listener in listeners:  # one already there is not called twice
            if listener is not None and not any(listener is known for known in chain):
                chain.append(listener)
        combined = chain[0] if len(chain) == 1 else _ListenerChain(tuple(chain))
        result = dataclasses.replace(self, rebalance_listener=combined)  # type: ignore[type-var]
        return result


def _listeners_of(listener: RebalanceListener | None) -> tuple[RebalanceListener, ...]:
    if listener is None:
        return ()
    if isinstance(listener, _ListenerChain):
        return listener.listeners
    return (listener,)


class _ListenerChain:
    """Several rebalance listeners called in turn, each awaited before the next."""

    __slots__ = ("listeners",)

    def __init__(self, listeners: tuple[RebalanceListener, ...]) -> None:
        self.listeners = listeners

    async def on_partitions_revoked(self, revoked: frozenset[TopicPartition]) -> None:
        for listener in self.listeners:
            result = listener.on_partitions_revoked(revoked)
            if inspect.isawaitable(result):
                await result

    async def on_partitions_assigned(self, assigned: frozenset[TopicPartition]) -> None:
        for listener in self.listeners:
            result = listener.on_partitions_assigned(assigned)
            if inspect.isawaitable(result):
                await result

    def __repr__(self) -> str:
        return f"RebalanceListeners({', '.join(map(repr, self.listeners))})"


class ManualSubscription(Subscription):
    """Partitions chosen by the application; no group rebalancing (offsets may still be
    committed when a ``group_id`` is set)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class TopicsSubscription(AutoSubscription):
    """Subscribe to ``topics`` by name (``Subscriptions.topics``)."""

    topics: tuple[str, ...]
    rebalance_listener: RebalanceListener | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        topics = tuple(self.topics)
        if not topics:
            raise ValueError("Subscriptions.topics needs at least one topic")
        for topic in topics:
            if not isinstance(topic, str) or not topic:
                raise ValueError(f"topic names are non-empty str, got {topic!r}")
        object.__setattr__(self, "topics", topics)


@dataclass(frozen=True, slots=True)
class TopicPatternSubscription(AutoSubscription):
    """Subscribe to every topic whose name matches the regular expression ``pattern``."""

    pattern: str
    rebalance_listener: RebalanceListener | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.pattern, str) or not self.pattern:
            raise ValueError(f"topic pattern must be a non-empty str, got {self.pattern!r}")
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(f"invalid topic pattern {self.pattern!r}: {exc}") from exc


@dataclass(frozen=True, slots=True)
class AssignmentSubscription(ManualSubscription):
    """Read exactly these partitions, from the committed offset or ``auto_offset_reset``."""

    partitions: tuple[TopicPartition, ...]

    def __post_init__(self) -> None:
        partitions = tuple(_topic_partition(tp) for tp in self.partitions)
        if not partitions:
            raise ValueError("Subscriptions.assignment needs at least one partition")
        object.__setattr__(self, "partitions", partitions)


@dataclass(frozen=True, slots=True)
class AssignmentOffsetsSubscription(ManualSubscription):
    """Read these partitions starting at the given offsets (the first record read has it)."""

    offsets: Mapping[TopicPartition, int]

    def __post_init__(self) -> None:
        offsets: dict[TopicPartition, int] = {}
        for tp, offset in dict(self.offsets).items():
            if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
                raise ValueError(f"offset for {tp!r} must be an int >= 0, got {offset!r}")
            offsets[_topic_partition(tp)] = offset
        if not offsets:
            raise ValueError("Subscriptions.assignment_with_offset needs at least one partition")
        object.__setattr__(self, "offsets", MappingProxyType(offsets))

    @property
    def partitions(self) -> tuple[TopicPartition, ...]:
        return tuple(self.offsets)

    def __hash__(self) -> int:
        return hash(frozenset(self.offsets.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AssignmentOffsetsSubscription):
            return NotImplemented
        return dict(self.offsets) == dict(other.offsets)


class Subscriptions:
    """Factories for subscriptions (Alpakka's ``Subscriptions``)."""

    __slots__ = ()

    @staticmethod
    def topics(*topics: str) -> TopicsSubscription:
        """Join the consumer group and read the partitions it assigns of ``topics``."""
        if len(topics) == 1 and not isinstance(topics[0], str):
            topics = tuple(topics[0])  # Subscriptions.topics(["a", "b"]) also works
        return TopicsSubscription(topics)

    @staticmethod
    def topic_pattern(pattern: str) -> TopicPatternSubscription:
        """Join the consumer group for every topic matching the regex ``pattern``."""
        return TopicPatternSubscription(pattern)

    @staticmethod
    def assignment(*partitions: TopicPartition | tuple[str, int]) -> AssignmentSubscription:
        """Read these partitions (``TopicPartition`` or ``(topic, partition)``), no group."""
        if len(partitions) == 1 and isinstance(partitions[0], list | set | frozenset):
            partitions = tuple(partitions[0])
        return AssignmentSubscription(tuple(partitions))

    @staticmethod
    def assignment_with_offset(
        offsets: Mapping[TopicPartition, int] | Mapping[tuple[str, int], int],
    ) -> AssignmentOffsetsSubscription:
        """Read these partitions starting at the given offsets, no group."""
        return AssignmentOffsetsSubscription(offsets)
