"""GroupMembership.stop() is bounded during a broker outage.

A member stopping (SIGTERM) while the broker does not answer waited for its publish in
flight and then for its tombstone, each up to the producer's ``request_timeout_ms``
(40 s): ~80 s in the e2e payments service (a drain already bounded by the application,
then 80 s more in ``membership.stop()``, far past a Kubernetes grace period; 40 s with
an embedded broker stopped by SIGSTOP, 1.7 s after the fix at ``close_timeout=0.5``).
The tombstone is a courtesy (a member that crashes writes none either, and the others
learn the new owners from the next records): it gets ``close_timeout``, and a publish
still in flight is given up (the tombstone supersedes it).

The producer here is one that never answers (a fast unit test, no broker): without the
bound, ``stop()`` never returns.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from connectors.kafka import ConsumerSettings, ProducerSettings
from connectors.kafka.membership import GroupMembership

if TYPE_CHECKING:
    import pytest


class Unanswered:
    """A producer whose sends are never acknowledged (a broker that does not answer)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None]] = []
        self.given_up: list[bytes | None] = []

    async def send_and_wait(self, topic: str, value: bytes | None, key: bytes) -> Any:
        self.sent.append((topic, value))
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.given_up.append(value)
            raise


async def test_stop_during_an_outage_gives_up_the_publish_and_bounds_the_tombstone(
    caplog: pytest.LogCaptureFixture,
) -> None:
    producer = Unanswered()
    membership = GroupMembership(
        ConsumerSettings("127.0.0.1:9", "g"),
        ProducerSettings("127.0.0.1:9", close_timeout=0.05),
        "members",
        "http://127.0.0.1:1",
    )
    # As after start() with a shared producer (not closed by stop()): a record being
    # published, unanswered.
    membership._producer = producer
    membership._shared = True
    membership._publish_soon()
    await asyncio.sleep(0)
    assert [value is not None for _, value in producer.sent] == [True]
    with caplog.at_level(logging.WARNING, logger="connectors.kafka"):
        await asyncio.wait_for(membership.stop(), 5)  # never returned before
    # The record in flight was given up, then the tombstone after close_timeout.
    assert [value is None for _, value in producer.sent] == [False, True]
    assert [value is None for value in producer.given_up] == [False, True]
    assert "cannot publish its tombstone: TimeoutError()" in caplog.text
