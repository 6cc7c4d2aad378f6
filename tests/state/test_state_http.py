"""Queryable state: the registry follows the running stateful operators, and
``StateServer`` serves it over real HTTP (aiohttp client against the server on a free
loopback port): a key, a range, the size, key parsing, 404/400 answers, and the redirect
to the member owning a key's partition.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from reactive import Keep, Materializer, Sink
from reactive.state import OrderedKeySerde, StateRegistry, Stores, registry_of
from reactive.state.http import StateServer
from reactive.testkit import TestSource


async def eventually(predicate: Any) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("condition not met")


async def get(session: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, Any]:
    async with session.get(url, **kw) as r:
        return r.status, await r.json()


async def test_operators_register_while_running_and_unregister_when_stopped(
    materializer: Materializer,
) -> None:
    registry = registry_of(materializer)
    assert registry is registry_of(materializer) and registry.names() == []
    up, _view = (
        TestSource.probe()
        .aggregate_by_key(Stores.in_memory("counts"), str, lambda: 0, lambda n, _: n + 1, Keep.both)
        .to_mat(Sink.ignore(), Keep.left)
        .run(materializer)
    )
    await eventually(lambda: "counts" in registry)
    up.send_next("a").send_next("a")
    await eventually(lambda: registry.get("counts", "a") == 2)
    assert registry.partitions("counts") == [None] and registry.size("counts") == 1
    up.send_complete()
    await eventually(lambda: "counts" not in registry)
    assert registry.get("counts", "a", "none") == "none"


async def test_http_key_range_size_and_errors(materializer: Materializer) -> None:
    spec = Stores.in_memory("counts", key_serde=OrderedKeySerde())
    up, view = (
        TestSource.probe()
        .aggregate_by_key(spec, lambda x: x, lambda: 0, lambda n, _: n + 1, Keep.both)
        .to_mat(Sink.ignore(), Keep.left)
        .run(materializer)
    )
    for x in [1, 2, 2, 3, 7]:
        up.send_next(x)
    await eventually(lambda: view.is_open and view.get(7) == 1)
    async with (
        StateServer(registry_of(materializer), key_parsers={"counts": int}) as server,
        aiohttp.ClientSession() as http,
    ):
        base = server.url
        assert await get(http, f"{base}/stores/counts/keys/2") == (
            200,
            {"store": "counts", "key": 2, "value": 2},
        )
        status, body = await get(http, f"{base}/stores/counts/keys/5")
        assert status == 404 and "no value for key 5" in body["error"]
        status, body = await get(http, f"{base}/stores/counts/keys/two")
        assert (
            status == 400 and "store 'counts': key 'two' refused by its key parser" in body["error"]
        )
        assert await get(http, f"{base}/stores/counts/keys", params={"from": "2", "to": "7"}) == (
            200,
            {"store": "counts", "items": [[2, 2], [3, 1]]},
        )
        _, body = await get(http, f"{base}/stores/counts/keys", params={"limit": "2"})
        assert body["items"] == [[1, 1], [2, 2]]
        assert await get(http, f"{base}/stores/counts/size") == (
            200,
            {"store": "counts", "partitions": [None], "size": 4, "ready": True},
        )
        _, body = await get(http, f"{base}/stores")
        assert body == {
            "stores": [{"store": "counts", "partitions": [None], "size": 4, "ready": True}]
        }
        status, body = await get(http, f"{base}/stores/nope/keys/1")
        assert status == 404 and "no store 'nope'" in body["error"]
        # Live: the next update is visible to the next query.
        up.send_next(5)
        await eventually(lambda: view.get(5) == 1)
        assert (await get(http, f"{base}/stores/counts/keys/5"))[0] == 200
    up.send_complete()


class Halves:
    """Ownership by hand: even keys on member A, odd keys on member B."""

    def __init__(self, a: str, b: str) -> None:
        self.a, self.b = a, b

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        return key % 2, self.a if key % 2 == 0 else self.b


async def test_a_key_owned_by_another_member_is_redirected_to_it() -> None:
    ra, rb = StateRegistry(), StateRegistry()
    sa, sb = Stores.in_memory("t").open(), Stores.in_memory("t").open()
    sa.put(2, "two")
    sb.put(3, "three")
    ra.register("t", sa, 0)
    rb.register("t", sb, 1)
    a = StateServer(ra, key_parsers={"t": int})
    b = StateServer(rb, key_parsers={"t": int})
    await a.start()
    await b.start()
    a.ownership = b.ownership = Halves(a.url, b.url)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{a.url}/stores/t/keys/3", allow_redirects=False) as r:
                assert r.status == 307 and r.headers["Location"] == f"{b.url}/stores/t/keys/3"
                assert await r.json() == {"store": "t", "key": 3, "partition": 1, "owner": b.url}
            # A client that follows redirects gets the value from the owner.
            assert await get(http, f"{a.url}/stores/t/keys/3") == (
                200,
                {"store": "t", "key": 3, "value": "three"},
            )
            assert await get(http, f"{b.url}/stores/t/keys/2") == (
                200,
                {"store": "t", "key": 2, "value": "two"},
            )
            assert await get(http, f"{b.url}/stores/t/owner/2") == (
                200,
                {"store": "t", "key": 2, "partition": 0, "owner": a.url, "local": False},
            )
    finally:
        await a.stop()
        await b.stop()


async def test_a_store_not_ready_answers_503_until_it_is() -> None:
    # A store restoring its changelog (a table catching up) would answer 404 for keys it
    # holds once restored: key and range queries are refused until every view is ready.
    registry = StateRegistry()
    restoring, ready = Stores.in_memory("t").open(), Stores.in_memory("t").open()
    restoring.put("a", 1)
    ready.put("b", 2)
    done = [False]
    registry.register("t", ready, 0)
    registry.register("t", restoring, 1, ready=lambda: done[0])
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        for path in ("keys/b", "keys/a", "keys"):
            async with http.get(f"{server.url}/stores/t/{path}") as r:
                assert r.status == 503 and r.headers["Retry-After"] == "1"
                assert "store 't' is not ready here" in (await r.json())["error"]
        assert await get(http, f"{server.url}/stores/t") == (
            200,
            {"store": "t", "partitions": [0, 1], "size": 2, "ready": False},
        )
        done[0] = True
        assert await get(http, f"{server.url}/stores/t/keys/a") == (
            200,
            {"store": "t", "key": "a", "value": 1},
        )
        registry.unregister("t", restoring)
        assert registry.is_ready("t")


async def test_values_json_cannot_hold_and_unexpected_errors_are_json() -> None:
    registry = StateRegistry()
    store = Stores.in_memory("t").open()
    store.put("nan", float("nan"))
    store.put("inf", [float("inf"), -float("inf"), 1.5])
    registry.register("t", store)

    class Broken:
        def owner_of(self, store: str, key: Any) -> Any:
            raise TypeError("give a key_serializer")

    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/stores/t/keys/nan") as r:
            # strict JSON (no NaN token): json.loads with parse_constant refusing them
            text = await r.text()

        def refuse(name: str) -> Any:
            raise AssertionError(f"not JSON: {name}")

        assert json.loads(text, parse_constant=refuse)["value"] == "NaN"
        _, body = await get(http, f"{server.url}/stores/t/keys/inf")
        assert body["value"] == ["Infinity", "-Infinity", 1.5]
        server.ownership = Broken()
        async with http.get(f"{server.url}/stores/t/keys/x") as r:
            assert r.status == 500 and r.content_type == "application/json"
            assert "give a key_serializer" in (await r.json())["error"]


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(TypeError, match="StateServer: expected a StateRegistry"):
        StateServer({})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="key parser of store 'x' must be callable"):
        StateServer(StateRegistry(), key_parsers={"x": 1})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match=r"StateRegistry.register\('x'\): view must be"):
        StateRegistry().register("x", 3)
