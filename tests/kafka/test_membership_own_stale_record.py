"""A member never names *itself* the owner of a partition it does not serve.

Its own record on the members topic can be stale: a member SIGKILLed and restarted on the
same endpoint (no tombstone was written, its old record still lists its old partitions),
or a member whose revocation is not published yet. ``owner_of`` fell back to the records
for a partition not served locally and could pick that stale record of its own endpoint:
the StateServer then answered the key itself (``owner == endpoint``) from a store without
that partition: 404 "has no value" / "no store 'totals' is registered here" for keys that
exist elsewhere (seen in the e2e payments service after a SIGKILL and restart). The
member's own partitions are known locally, so its own record adds nothing: ``owner_of``
skips it; the key's partition then goes to another member's record, or to nobody (503,
retry).

The test sets the members table and the registry by hand (a fast unit test, no broker).
"""

from __future__ import annotations

from typing import Any

from connectors.kafka import ConsumerSettings, ProducerSettings
from connectors.kafka.membership import GroupMembership
from connectors.kafka.tables import _key_partition
from reactive.state import StateRegistry, Stores

ME = "http://127.0.0.1:1"
OTHER = "http://127.0.0.1:2"


class Members:
    """The members table, by hand."""

    def __init__(self, records: dict[str, Any]) -> None:
        self.records = records
        self.is_open = True

    def items(self) -> Any:
        return self.records.items()


def membership(records: dict[str, Any]) -> GroupMembership:
    m = GroupMembership(
        ConsumerSettings("127.0.0.1:9", "g"), ProducerSettings("127.0.0.1:9"), "members", ME
    )
    m.track_store("totals", "payments")
    m._counts["payments"] = 4
    registry = StateRegistry()
    registry.register("totals", Stores.in_memory("totals").open(), 0)  # serves partition 0
    m._registry = registry
    m._members = Members(records)  # type: ignore[assignment]
    m._started = True  # as after start(): the members' records are read
    return m


def key_in(partition: int) -> str:
    return next(
        k for k in (f"acct-{i}" for i in range(100)) if _key_partition("", k, None, 4) == partition
    )


def test_a_stale_own_record_does_not_make_this_member_the_owner() -> None:
    stale_me = {"endpoint": ME, "at": 2.0, "tables": {"totals": {"partitions": [0, 1]}}}
    key = key_in(1)
    # Nobody else serves partition 1: no owner (the server answers 503), not this member.
    assert membership({ME: stale_me}).owner_of("totals", key) == (1, None)
    # Another member serves it, with an older record than the stale one of this member.
    other = {"endpoint": OTHER, "at": 1.0, "tables": {"totals": {"partitions": [1]}}}
    assert membership({ME: stale_me, OTHER: other}).owner_of("totals", key) == (1, OTHER)
    # The partition served here is still answered here.
    assert membership({ME: stale_me}).owner_of("totals", key_in(0)) == (0, ME)
