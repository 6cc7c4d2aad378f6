"""Review (Kafka Streams user): queryable state answers bad input with 400 naming what
was wrong, not 500.

A key (or a range bound) the store's key serde cannot encode is the request's fault: a
store with int keys and a serde that takes ints only, queried without a key parser,
answered ``500 GET ... failed: TypeError(...)`` and logged an ERROR with a traceback.
"""

from __future__ import annotations

import logging
import struct
from typing import TYPE_CHECKING, Any

import aiohttp

from reactive.state import StateRegistry, Stores
from reactive.state.http import StateServer

if TYPE_CHECKING:
    import pytest


class IntKeys:
    """A key serde for ints only (big-endian, order-preserving for ints >= 0)."""

    def to_bytes(self, obj: Any) -> bytes:
        if type(obj) is not int:
            raise TypeError(f"IntKeys takes ints, got {type(obj).__name__}")
        return struct.pack(">q", obj)

    def from_bytes(self, data: bytes) -> Any:
        return struct.unpack(">q", data)[0]


async def get(session: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    async with session.get(url) as r:
        assert r.content_type == "application/json"
        return r.status, await r.json()


async def test_a_key_the_store_cannot_encode_answers_400_naming_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    registry = StateRegistry()
    store = Stores.in_memory("orders", key_serde=IntKeys()).open()
    for k in (1, 2, 3):
        store.put(k, k * 10)
    registry.register("orders", store)
    caplog.set_level(logging.ERROR, logger="reactive.state.http")
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        status, body = await get(http, f"{server.url}/stores/orders/keys/2")
        assert status == 400, body
        error = body["error"]
        assert "store 'orders': key '2' cannot be serialized" in error
        assert "IntKeys takes ints, got str" in error
        assert "key_parsers={'orders': ...}" in error  # how to fix it
        status, body = await get(http, f"{server.url}/stores/orders/keys?from=1&to=3")
        assert status == 400 and "key '1' cannot be serialized" in body["error"], body
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    # With a parser the same queries answer.
    async with (
        StateServer(registry, key_parsers={"orders": int}) as server,
        aiohttp.ClientSession() as http,
    ):
        assert await get(http, f"{server.url}/stores/orders/keys/2") == (
            200,
            {"store": "orders", "key": 2, "value": 20},
        )
        status, body = await get(http, f"{server.url}/stores/orders/keys?from=1&to=3")
        assert (status, body["items"]) == (200, [[1, 10], [2, 20]])
        # A parser that gives a key the serde still refuses: 400, no hint about parsers.
        server.key_parsers["orders"] = float
        status, body = await get(http, f"{server.url}/stores/orders/keys/2")
        assert status == 400 and "got float" in body["error"], body
        assert "key_parsers" not in body["error"]
    store.close()


async def test_an_undecodable_stored_value_is_the_servers_500_naming_store_and_key() -> None:
    registry = StateRegistry()
    store = Stores.in_memory("t").open()
    store.bytes_store.put(store._key("k"), b"\xc1")
    registry.register("t", store)
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        status, body = await get(http, f"{server.url}/stores/t/keys/k")
        assert status == 500 and "store 't': the stored value of key 'k'" in body["error"]
    store.close()


async def test_paths_no_route_takes_and_other_methods_answer_json() -> None:
    registry = StateRegistry()
    store = Stores.in_memory("c").open()
    store.put("a", 1)
    registry.register("c", store)
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        for path in ["/stores/c/keys/", "/nope", "/stores//keys/a"]:
            status, body = await get(http, server.url + path)
            assert status == 404 and f"GET {path}: Not Found" in body["error"], body
            assert "/stores/{store}/keys/{key}" in body["error"]  # what would have worked
        async with http.post(f"{server.url}/stores/c/keys/a") as r:
            assert (r.status, r.content_type) == (405, "application/json")
            assert "GET" in r.headers["Allow"]
            assert (await r.json())["error"] == "POST /stores/c/keys/a: Method Not Allowed"
        # The server's own 404s keep their text.
        status, body = await get(http, f"{server.url}/stores/nope/keys/a")
        assert (status, body) == (404, {"error": "no store 'nope' is registered here"})
    store.close()
