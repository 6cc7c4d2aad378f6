"""aiokafka and the embedded broker (Tansu): a group's first member leaves the group.

aiokafka leaves the group on close only when its generation is > 0; Tansu gives a group's
first member generation 0, and without LeaveGroup the next member to join waits until the
broker expires this one (its session timeout). Kafka itself starts at generation 1, where
this changes nothing. :func:`leave_generation_zero` replaces one bound method of one
consumer's group coordinator (``_maybe_leave_group``, a private aiokafka name); nothing
global is patched.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from aiokafka.errors import KafkaError
from aiokafka.protocol.group import LeaveGroupRequest

if TYPE_CHECKING:
    from aiokafka import AIOKafkaConsumer

__all__ = ["leave_generation_zero"]

log = logging.getLogger("connectors.kafka")


def leave_generation_zero(consumer: AIOKafkaConsumer) -> None:
    """Make closing ``consumer`` send LeaveGroup also for generation 0 (see the module
    docstring)."""
    coordinator: Any = getattr(consumer, "_coordinator", None)
    original = getattr(coordinator, "_maybe_leave_group", None)
    if coordinator is None or original is None:
        return

    async def leave_group() -> None:
        member_id = getattr(coordinator, "member_id", "")
        if getattr(coordinator, "generation", -1) == 0 and member_id:
            try:
                await coordinator._send_req(LeaveGroupRequest(coordinator.group_id, member_id))
            except (KafkaError, OSError) as exc:
                log.debug("LeaveGroup for generation 0 failed: %r", exc)
        await original()

    coordinator._maybe_leave_group = leave_group
