"""Reactive Streams interfaces (``Publisher``, ``Subscriber``, ``Subscription``) for asyncio.

These are the Reactive Streams 1.0.4 contracts translated to a single-threaded event
loop: every method is a plain, non-blocking call made on the loop's thread, and must
return promptly and normally (RS rules 2.13, 3.4, 3.5, 3.15, 3.16). Java's
``NullPointerException`` for a ``null`` argument (rules 1.9, 2.13) becomes
``TypeError`` for ``None``; Java's ``IllegalArgumentException`` for ``request(n <= 0)``
(rule 3.9) becomes a ``ValueError`` signalled through ``on_error``, its message citing
rule 3.9. Demand is counted up to ``MAX_DEMAND`` (``2**63 - 1``); a total at or above
that is treated as unbounded (rule 3.17).

Bridges to streams: ``Sink.as_publisher(fanout)``, ``Sink.from_subscriber(s)``,
``Source.from_publisher(p)`` and ``Source.as_subscriber()``.
"""

from __future__ import annotations

from typing import Protocol, TypeVar, runtime_checkable

from ._errors import SubscriptionRejectedError
from ._public import publish as _publish

__all__ = ["MAX_DEMAND", "Publisher", "Subscriber", "Subscription", "SubscriptionRejectedError"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)

MAX_DEMAND = (1 << 63) - 1
"""The largest total demand tracked; reaching it means "effectively unbounded" (rule 3.17)."""


@runtime_checkable
class Subscription(Protocol):
    """The link between one publisher and one subscriber."""

    def request(self, n: int) -> None:
        """Add ``n`` (> 0) to the demand; ``n <= 0`` signals ``on_error`` (rule 3.9)."""
        ...

    def cancel(self) -> None:
        """Ask the publisher to stop signalling; idempotent (rules 3.5, 3.7, 3.12)."""
        ...


@runtime_checkable
class Subscriber(Protocol[T_contra]):
    """Receives ``on_subscribe`` once, then ``on_next`` up to the requested demand, then at
    most one of ``on_error`` / ``on_complete``."""

    def on_subscribe(self, subscription: Subscription) -> None:
        """The subscription for this subscriber; request demand through it."""
        ...

    def on_next(self, elem: T_contra) -> None:
        """The next element (never more than requested)."""
        ...

    def on_error(self, exc: BaseException) -> None:
        """The publisher failed; no more signals follow."""
        ...

    def on_complete(self) -> None:
        """The publisher completed; no more signals follow."""
        ...


@runtime_checkable
class Publisher(Protocol[T_co]):
    """A source of elements for any number of ``subscribe`` calls (rule 1.10)."""

    def subscribe(self, subscriber: Subscriber[T_co]) -> None:
        """Attach ``subscriber``: it gets ``on_subscribe`` before any other signal."""
        ...


_publish(__name__, globals())
