"""A member that serves no partition of a store right now (all revoked during a
rebalance, not assigned yet at start, or more members than partitions) still routes its
keys: with an ``ownership`` that knows the store, a key or window query answers the 307
to the owner, or the 503 when no member serves the key's partition, never 404 "no store
... is registered here" (which a client reads as "no such account"). Seen in the e2e
payments service: ~250 404s for existing keys per rebalance while a member had no
partitions. Also 503 (not 404 "no value") when the ownership names this member for a
partition no store here serves (a stale record of its own endpoint), and 503 with
``Retry-After`` (not 500) for an ownership that is not ready yet
(``OwnershipNotReadyError``, a ``GroupMembership`` still starting).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from reactive.state import OwnershipNotReadyError, StateRegistry, Stores
from reactive.state.http import StateServer


class Fixed:
    """Ownership by hand: every key of ``totals`` (and of ``sessions``, a windowed
    store) is on partition 1 at ``endpoint``."""

    def __init__(self, endpoint: str | None) -> None:
        self.endpoint = endpoint

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        if store not in ("totals", "sessions"):
            return None
        return 1, self.endpoint


class Starting:
    """Ownership by hand that cannot answer yet, as a GroupMembership before start()."""

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        raise OwnershipNotReadyError("the membership has not started: retry later")


OWNER = "http://127.0.0.1:9"  # never contacted: the redirect is not followed


async def test_key_of_a_store_with_no_partition_here_is_redirected_to_its_owner() -> None:
    async with (
        StateServer(StateRegistry(), ownership=Fixed(OWNER)) as server,
        aiohttp.ClientSession() as http,
    ):
        url = server.url + "/stores/totals/keys/acct-01"
        async with http.get(url, allow_redirects=False) as r:
            assert r.status == 307, await r.text()
            assert r.headers["Location"] == OWNER + "/stores/totals/keys/acct-01"
            assert (await r.json())["partition"] == 1


async def test_window_route_of_a_windowed_store_with_no_partition_here_is_redirected() -> None:
    # The window routes (/stores/{store}/windows/{key}) of a store not registered here
    # are routed as the key routes are: the windowed store's partitions went elsewhere.
    async with (
        StateServer(StateRegistry(), ownership=Fixed(OWNER)) as server,
        aiohttp.ClientSession() as http,
    ):
        path = "/stores/sessions/windows/acct-01?from=0&to=60"
        async with http.get(server.url + path, allow_redirects=False) as r:
            assert r.status == 307, await r.text()
            assert r.headers["Location"] == OWNER + path
            body = await r.json()
            assert body["partition"] == 1 and body["owner"] == OWNER
        # A bound that is not a number is refused here (400), as for a store served here.
        async with http.get(server.url + "/stores/sessions/windows/acct-01?from=soon") as r:
            assert r.status == 400, await r.text()
            assert "must be a time in seconds" in (await r.json())["error"]
    async with (
        StateServer(StateRegistry(), ownership=Fixed(None)) as server,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(server.url + "/stores/sessions/windows/acct-01") as r:
            assert r.status == 503, await r.text()
            assert "Retry-After" in r.headers
        async with http.get(server.url + "/stores/other/windows/acct-01") as r:
            assert r.status == 404


async def test_key_of_a_store_nobody_serves_right_now_is_503_not_404() -> None:
    async with (
        StateServer(StateRegistry(), ownership=Fixed(None)) as server,
        aiohttp.ClientSession() as http,
    ):
        async with http.get(server.url + "/stores/totals/keys/acct-01") as r:
            assert r.status == 503, await r.text()
            assert "Retry-After" in r.headers
        # A store the ownership does not know stays a 404.
        async with http.get(server.url + "/stores/other/keys/acct-01") as r:
            assert r.status == 404
            assert "no store 'other' is registered here" in (await r.json())["error"]


async def test_a_partition_named_here_but_served_by_no_store_here_is_503() -> None:
    # An ownership naming this member (a stale record of its own endpoint, say) for a
    # partition no store here serves: 503, not 404 "no value" for a key that exists.
    registry = StateRegistry()
    registry.register("totals", Stores.in_memory("totals").open(), 0)
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        server.ownership = Fixed(server.url)  # partition 1, "here"
        async with http.get(server.url + "/stores/totals/keys/acct-01") as r:
            assert r.status == 503, await r.text()
            assert "Retry-After" in r.headers
    # Not registered here at all, named here all the same: 503 too.
    async with StateServer(StateRegistry()) as server, aiohttp.ClientSession() as http:
        server.ownership = Fixed(server.url)
        async with http.get(server.url + "/stores/totals/keys/acct-01") as r:
            assert r.status == 503, await r.text()


async def test_a_store_that_is_not_partitioned_here_answers_a_key_named_here() -> None:
    # A store registered here without a partition (a global table: every key) answers
    # the keys the ownership names this member for, whatever their partition.
    registry = StateRegistry()
    store = Stores.in_memory("totals").open()
    store.put("acct-01", 5)
    registry.register("totals", store)
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        server.ownership = Fixed(server.url)
        async with http.get(server.url + "/stores/totals/keys/acct-01") as r:
            assert r.status == 200, await r.text()
            assert (await r.json())["value"] == 5


async def test_an_ownership_not_ready_yet_answers_503_with_retry_after() -> None:
    registry = StateRegistry()
    registry.register("totals", Stores.in_memory("totals").open(), 0)
    async with (
        StateServer(registry, ownership=Starting()) as server,
        aiohttp.ClientSession() as http,
    ):
        for path in ("/stores/totals/keys/acct-01", "/stores/elsewhere/keys/acct-01"):
            async with http.get(server.url + path) as r:
                assert r.status == 503, await r.text()
                assert r.headers["Retry-After"] == "1"
                assert "retry later" in (await r.json())["error"]
