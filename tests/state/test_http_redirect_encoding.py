"""The 307 redirect to the member owning a key keeps the request's path and query exactly
as the client encoded them, so following it asks the owner for the *same* key.

Over real HTTP: member ``b`` serves nothing and redirects every key to member ``a``
(aiohttp client against two ``StateServer`` s on loopback). Keys with ``/``, ``?``,
``#``, ``%``, a space or non-ASCII characters must be percent-encoded in the path; a
redirect built from the decoded path sent ``a%2Fb`` to ``/keys/a/b`` (404), ``q%3Fx%3D1``
to ``/keys/q?x=1`` (key ``q``'s value) and ``100%2525`` to ``/keys/100%25`` (key
``100%``'s value).
"""

from __future__ import annotations

import urllib.parse
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from yarl import URL

from reactive.state import StateRegistry, Stores
from reactive.state.http import StateServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

#: Keys that need percent-encoding in a path, each beside the key its decoded (or
#: decoded twice) path would name, with a different value.
VALUES = {
    "a/b": "slash",
    "a": "a",
    "q?x=1": "question mark",
    "q": "q",
    "#tag": "hash",
    "100%25": "literal %25",
    "100%": "percent",
    "a b": "space",
    "é☃ ü": "unicode",
}
ENCODED = ["a/b", "q?x=1", "#tag", "100%25", "100%", "a b", "é☃ ü"]


class AllOn:
    """Ownership by hand: every key of every store is on ``endpoint``."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        return 0, self.endpoint


@asynccontextmanager
async def members(store: str) -> AsyncIterator[tuple[str, str, aiohttp.ClientSession]]:
    """Member ``a`` holding :data:`VALUES` in ``store``, member ``b`` redirecting every
    key to ``a``, and a client: ``(a's url, b's url, session)``."""
    values = Stores.in_memory(store).open()
    for key, value in VALUES.items():
        values.put(key, value)
    owner = StateRegistry()
    owner.register(store, values, 0)
    other = StateRegistry()
    other.register(store, Stores.in_memory(store).open(), 1)
    async with (
        StateServer(owner) as a,
        StateServer(other, ownership=AllOn(a.url)) as b,
        aiohttp.ClientSession() as http,
    ):
        yield a.url, b.url, http


def key_path(store: str, key: str) -> str:
    quote = urllib.parse.quote
    return f"/stores/{quote(store, safe='')}/keys/{quote(key, safe='')}"


async def answer(http: aiohttp.ClientSession, url: str) -> tuple[int, Any]:
    """Status and JSON body, following redirects; the URL is sent exactly as given."""
    async with http.get(URL(url, encoded=True)) as r:
        return r.status, await r.json()


@pytest.mark.parametrize("key", ENCODED)
async def test_the_redirect_keeps_the_encoded_path_and_answers_the_same_key(key: str) -> None:
    async with members("counts") as (a, b, http):
        path = key_path("counts", key)
        async with http.get(URL(b + path, encoded=True), allow_redirects=False) as r:
            assert r.status == 307
            assert r.headers["Location"] == a + path
            assert (await r.json())["key"] == key
        assert await answer(http, a + path) == (
            200,
            {"store": "counts", "key": key, "value": VALUES[key]},
        )
        # Following it: the owner's answer for the same key, not a neighbour's or a 404.
        assert await answer(http, b + path) == await answer(http, a + path)


async def test_the_redirect_keeps_the_query_string_as_sent() -> None:
    async with members("counts") as (a, b, http):
        target = key_path("counts", "q?x=1") + "?trace=a%26b%3D1&who=%C3%A9%20z"
        async with http.get(URL(b + target, encoded=True), allow_redirects=False) as r:
            assert r.status == 307 and r.headers["Location"] == a + target
        assert await answer(http, b + target) == (
            200,
            {"store": "counts", "key": "q?x=1", "value": "question mark"},
        )
