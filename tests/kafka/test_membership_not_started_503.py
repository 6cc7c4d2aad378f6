"""A StateServer whose ``ownership`` is a GroupMembership not started yet answers 503
(retry), not 500.

README's order (and the only possible one: the membership needs the server's URL) is:
start the server, build the membership with ``server.url``, ``server.ownership =
membership``, ``track_store(...)``, then ``await membership.start(mat)``. Until start()
learnt the input topic's partition count, ``owner_of`` raised RuntimeError("... the
partitions of 'payments' are not known yet (track_store before start())"): every key
query answered 500 and logged an ERROR with a traceback, and its hint was wrong
(track_store *was* called before start()). Seen in the e2e payments service: 6 ERROR
tracebacks per member start under queries.

Now ``owner_of`` raises ``OwnershipNotReadyError`` (a ``RuntimeError``) for a key it
cannot answer from this member's own partitions until ``start()`` finished (the count
known and the members' records read: a partly read members topic may name a stale
owner), and the server answers it 503 with ``Retry-After``.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from connectors.kafka import ConsumerSettings, ProducerSettings
from connectors.kafka.membership import GroupMembership
from connectors.kafka.tables import _key_partition
from reactive.state import OwnershipNotReadyError, StateRegistry, Stores
from reactive.state.http import StateServer

ME = "http://127.0.0.1:1"
OTHER = "http://127.0.0.1:2"


def new_membership(endpoint: str) -> GroupMembership:
    return GroupMembership(
        ConsumerSettings("127.0.0.1:9", "g"), ProducerSettings("127.0.0.1:9"), "members", endpoint
    )


async def test_a_membership_not_started_yet_answers_503() -> None:
    async with StateServer(StateRegistry()) as server, aiohttp.ClientSession() as http:
        membership = new_membership(server.url)
        server.ownership = membership
        membership.track_store("totals", "payments")  # start() not called yet
        async with http.get(server.url + "/stores/totals/keys/acct-01") as r:
            assert r.status == 503, await r.text()
            assert "Retry-After" in r.headers
            assert "not known yet" in (await r.json())["error"]


class Members:
    """The members table, by hand (partly read: start() is still reading it)."""

    def __init__(self, records: dict[str, Any]) -> None:
        self.records = records
        self.is_open = True

    def items(self) -> Any:
        return self.records.items()


def key_in(partition: int) -> str:
    return next(
        k for k in (f"acct-{i}" for i in range(100)) if _key_partition("", k, None, 4) == partition
    )


def test_owner_of_is_not_ready_until_start_read_the_members_records() -> None:
    # The partition count known, the registry followed, the members' records being read
    # (start() has not finished): a partition served here is answered, another is not
    # ready (the record read so far may be an old owner's), not a redirect.
    membership = new_membership(ME)
    membership.track_store("totals", "payments")
    membership._counts["payments"] = 4
    registry = StateRegistry()
    registry.register("totals", Stores.in_memory("totals").open(), 0)
    membership._registry = registry
    old = {"endpoint": OTHER, "at": 1.0, "tables": {"totals": {"partitions": [1]}}}
    membership._members = Members({OTHER: old})  # type: ignore[assignment]
    assert membership.owner_of("totals", key_in(0)) == (0, ME)
    with pytest.raises(OwnershipNotReadyError, match=r"store 'totals': the members' records"):
        membership.owner_of("totals", key_in(1))
    assert isinstance(OwnershipNotReadyError("x"), RuntimeError)
    assert membership.owner_of("untracked", "k") is None
    membership._started = True  # as at the end of start()
    assert membership.owner_of("totals", key_in(1)) == (1, OTHER)
