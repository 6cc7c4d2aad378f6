"""Queryable windowed stores: ``windowed(..., store=...)`` registers a ``WindowStoreView``
in its materializer's ``StateRegistry`` while it runs (``fetch``/``fetch_all``/
``backward_fetch``, sessions' ``fetch(key)``), and ``StateServer`` serves it at
``/stores/{store}/windows/{key}?from=&to=`` and ``/stores/{store}/windows``.

- The view follows every element, also what the store was not written yet (a large
  cache, no commit timer), for in-memory and RocksDB stores and every window kind;
  windows closed but not emitted yet are held, an emitted one is gone.
- Restored windows are queryable after a restart; while a layer restores, 503.
- Over real HTTP (aiohttp client against the server): items, bounds, 400/404/503/307,
  the key routes of a windowed store and the window routes of a key-value one refused.
- The lookup of a key's time windows by start matches a scan of every window
  (differential, hypothesis).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Keep,
    KillSwitches,
    Materializer,
    SessionWindows,
    Sink,
    SlidingWindows,
    Source,
    SourceWithContext,
    TimeWindows,
    Windowed,
)
from reactive._ops.windows_store import _StoredWindowedLogic
from reactive.state import (
    BytesStore,
    StateRegistry,
    StoreClosedError,
    StoreContext,
    Stores,
    registry_of,
)
from reactive.state._view import WindowStoreView
from reactive.state.http import StateServer
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.state.support import Recording

if TYPE_CHECKING:
    from pathlib import Path

KINDS = ["memory", "rocksdb"]
_dirs = itertools.count()


def spec_of(kind: str, tmp_path: Path, name: str = "w", **kw: Any) -> Any:
    if kind == "memory":
        return Stores.in_memory(name, **kw)
    return Stores.persistent(name, tmp_path / f"s{next(_dirs)}", **kw)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def registered(registry: StateRegistry, name: str) -> None:
    for _ in range(200):
        if name in registry:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{name!r} never registered")


def counting(
    spec: Any,
    windows: Any,
    materializer: Materializer,
    timestamp: Any = lambda e: e[1],
) -> Any:
    """A probe -> windowed counts per key (e = (key, time)) -> a probe."""
    return (
        TestSource.probe()
        .windowed(
            windows,
            key=lambda e: e[0],
            timestamp=timestamp,
            zero=lambda: 0,
            aggregate=lambda n, _: n + 1,
            merge=lambda a, b: a + b,
            store=spec,
        )
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )


def windows_of(registry: StateRegistry, name: str, key: Any, *bounds: Any) -> list[Any]:
    return [(w.start, w.end, w.value) for w in registry.fetch(name, key, *bounds)]


@pytest.mark.parametrize("kind", KINDS)
async def test_tumbling_windows_are_read_through_the_operator_not_the_store(
    kind: str, tmp_path: Path, materializer: Materializer
) -> None:
    writes: list[Any] = []

    def recording(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        return Recording(engine, ctx, writes)

    # A cache that is never full and no commit timer: nothing is written before the stop.
    spec = spec_of(kind, tmp_path, cache_size=10_000, commit_interval=None).with_layer(recording)
    registry = registry_of(materializer)
    up, down = counting(spec, TimeWindows.of(10), materializer)
    await registered(registry, "w")
    assert registry.is_windowed("w") and registry.partitions("w") == [None]
    down.request(1)
    for e in [("a", 1), ("b", 2), ("a", 5)]:
        up.send_next(e)
    await settle()
    assert windows_of(registry, "w", "a") == [(0, 10, 2)]
    assert windows_of(registry, "w", "b") == [(0, 10, 1)]
    assert windows_of(registry, "w", "c") == []
    assert not any(entry[0] == "write" for entry in writes)  # read before any write
    # Stream time 10 closes [0, 10) for a and b: a's goes out (the one pull), b's waits.
    up.send_next(("a", 10))
    assert await down.expect_next() == Windowed("a", 0, 10, 2)
    await settle()
    assert windows_of(registry, "w", "a") == [(10, 20, 1)]  # emitted: gone
    assert windows_of(registry, "w", "b") == [(0, 10, 1)]  # closed, not emitted: held
    assert windows_of(registry, "w", "b", 0, 0) == [(0, 10, 1)]
    assert windows_of(registry, "w", "b", 1) == []
    assert len(registry.views("w")[0][1]) == 2 and registry.size("w") == 2
    assert not any(entry[0] == "write" for entry in writes)
    down.request(1)
    assert await down.expect_next() == Windowed("b", 0, 10, 1)
    assert registry.fetch("w", "b") == []
    up.send_complete()
    down.request(1)
    assert await down.expect_next() == Windowed("a", 10, 20, 1)
    await down.expect_complete()
    await settle()
    assert "w" not in registry and registry.fetch("w", "a") == []


@pytest.mark.parametrize("kind", KINDS)
async def test_hopping_fetch_all_and_backward(
    kind: str, tmp_path: Path, materializer: Materializer
) -> None:
    registry = registry_of(materializer)
    up, down = counting(spec_of(kind, tmp_path), TimeWindows.of(10).advance_by(5), materializer)
    await registered(registry, "w")
    down.request(1)
    for e in [("b", 7), ("a", 8), ("a", 12)]:
        up.send_next(e)
    # Stream time 12 closes [0, 10): b's goes out (the one pull), a's waits.
    assert await down.expect_next() == Windowed("b", 0, 10, 1)
    await settle()
    assert windows_of(registry, "w", "a") == [(0, 10, 1), (5, 15, 2), (10, 20, 1)]
    view = registry.views("w")[0][1]
    assert isinstance(view, WindowStoreView) and view.kind == "time"
    assert [(w.start, w.value) for w in view.backward_fetch("a", 5)] == [(10, 1), (5, 2)]
    assert [(w.key, w.start, w.end, w.value) for w in view.fetch_all()] == [
        ("a", 0, 10, 1),
        ("b", 5, 15, 1),
        ("a", 5, 15, 2),
        ("a", 10, 20, 1),
    ]
    # Windows of one start: their keys in first-seen order (b first).
    assert [(w.key, w.start) for w in view.fetch_all(5, 9.5)] == [("b", 5), ("a", 5)]
    assert [(w.key, w.start) for w in registry.fetch_all("w", 5, None, limit=1)] == [("b", 5)]
    assert [(w.key, w.start) for w in view.backward_fetch_all(10)] == [("a", 10)]
    up.send_complete()
    down.request(10)
    await down.expect_next_n(4)
    await down.expect_complete()


@pytest.mark.parametrize("kind", KINDS)
async def test_sessions_fetch_by_key_follows_growth_and_merges(
    kind: str, tmp_path: Path, materializer: Materializer
) -> None:
    registry = registry_of(materializer)
    windows = SessionWindows.with_gap(5).grace(10)
    up, down = counting(spec_of(kind, tmp_path), windows, materializer)
    await registered(registry, "w")
    down.request(1)
    for e in [("a", 1), ("a", 3), ("a", 10), ("b", 11)]:
        up.send_next(e)
    await settle()
    view = registry.views("w")[0][1]
    assert view.kind == "session"
    assert [(w.start, w.end, w.value) for w in view.fetch("a")] == [(1, 3, 2), (10, 10, 1)]
    up.send_next(("a", 7))  # bridges both sessions of a: one session
    await settle()
    assert [(w.start, w.end, w.value) for w in view.fetch("a")] == [(1, 10, 4)]
    assert [(w.start, w.end, w.value) for w in view.fetch("a", 2)] == []  # starts at 1
    assert len(view) == 2
    up.send_complete()
    down.request(10)
    assert await down.to_list() == [Windowed("a", 1, 10, 4), Windowed("b", 11, 11, 1)]
    await settle()
    assert "w" not in registry


async def test_sliding_windows_and_default_lists_are_copies(materializer: Materializer) -> None:
    registry = registry_of(materializer)
    up, down = (
        TestSource.probe()
        .windowed(
            SlidingWindows.of(4).grace(10),
            key=lambda e: e[0],
            timestamp=lambda e: e[1],
            store=Stores.in_memory("w"),
        )
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    await registered(registry, "w")
    down.request(1)
    up.send_next(("a", 1))
    up.send_next(("a", 3))
    await settle()
    found = registry.fetch("w", "a")
    assert [(w.start, w.end, w.value) for w in found] == [
        (-3, 1, [("a", 1)]),
        (-1, 3, [("a", 1), ("a", 3)]),
    ]
    found[1].value.append("mine")  # a copy: the operator's window is unchanged
    assert registry.fetch("w", "a")[1].value == [("a", 1), ("a", 3)]
    assert registry.views("w")[0][1].kind == "sliding"
    up.send_complete()
    down.request(10)
    assert [w.value for w in await down.to_list()] == [
        [("a", 1)],
        [("a", 1), ("a", 3)],
    ]


async def test_processing_time_windows_leave_the_view_on_the_clock(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    registry = registry_of(materializer)
    up, down = counting(Stores.in_memory("w"), TimeWindows.of(10), materializer, timestamp=None)
    await registered(registry, "w")
    down.request(10)
    await manual_clock.advance(3)
    up.send_next(("a", None))
    await settle()
    assert windows_of(registry, "w", "a") == [(0, 10, 1)]
    await manual_clock.advance(7)  # the clock closes [0, 10); it is emitted (demand)
    assert await down.expect_next() == Windowed("a", 0, 10, 1)
    assert registry.fetch("w", "a") == []
    up.send_complete()
    await down.expect_complete()


async def test_restored_windows_are_queryable_after_a_restart(
    tmp_path: Path, materializer: Materializer
) -> None:
    spec = Stores.persistent("w", tmp_path)
    registry = registry_of(materializer)

    def run() -> Any:
        return (
            TestSource.probe()
            .windowed(
                TimeWindows.of(10),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                zero=lambda: 0,
                aggregate=lambda n, _: n + 1,
                store=spec,
            )
            .via_mat(KillSwitches.single(), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )

    (up, switch), down = run()
    await registered(registry, "w")
    down.request(1)
    for e in [("a", 1), ("a", 2), ("b", 5)]:
        up.send_next(e)
    await settle()
    assert windows_of(registry, "w", "a") == [(0, 10, 2)]
    view = registry.views("w")[0][1]
    switch.abort(RuntimeError("stop"))
    await down.expect_error()
    await settle()
    assert "w" not in registry and not view.is_open
    with pytest.raises(StoreClosedError, match="windowed store 'w' is closed"):
        view.fetch("a")
    (up, switch), down = run()
    await registered(registry, "w")
    # The windows the store held, before any element of this run.
    assert windows_of(registry, "w", "a") == [(0, 10, 2)]
    assert windows_of(registry, "w", "b") == [(0, 10, 1)]
    up.send_complete()
    down.request(10)
    assert await down.to_list() == [Windowed("a", 0, 10, 2), Windowed("b", 0, 10, 1)]


class Restoring(Recording):
    """A changelog-like layer whose ``prepare`` waits for ``ready`` (a restore)."""

    def __init__(self, inner: BytesStore, context: StoreContext) -> None:
        super().__init__(inner, context, [])
        self.ready = asyncio.Event()

    async def _restore(self) -> None:
        await self.ready.wait()

    def prepare(self) -> Any:
        return self._restore()


class Halves:
    """Ownership by hand: even keys on member A, odd keys on member B (None: nobody)."""

    def __init__(self, a: str, b: str | None) -> None:
        self.a, self.b = a, b

    def owner_of(self, store: str, key: Any) -> tuple[int, str | None] | None:
        return key % 2, self.a if key % 2 == 0 else self.b


async def get(http: aiohttp.ClientSession, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.get(url, **kw) as r:
        return r.status, await r.json()


async def test_http_windows_of_a_key_and_of_every_key(materializer: Materializer) -> None:
    registry = registry_of(materializer)
    up, down = counting(Stores.in_memory("w"), TimeWindows.of(10).advance_by(5), materializer)
    up2 = (
        TestSource.probe()
        .aggregate_by_key(
            Stores.in_memory("kv"), lambda x: x, lambda: 0, lambda n, _: n + 1, Keep.left
        )
        .to_mat(Sink.ignore(), Keep.left)
        .run(materializer)
    )
    await registered(registry, "w")
    await registered(registry, "kv")
    down.request(1)
    for e in [(1, 3), (2, 4), (1, 7.5)]:
        up.send_next(e)
    # Stream time 7.5 closes [-5, 5): key 1's goes out (the one pull), key 2's waits.
    assert await down.expect_next() == Windowed(1, -5, 5, 1)
    await settle()
    async with (
        StateServer(registry, key_parsers={"w": int}) as server,
        aiohttp.ClientSession() as http,
    ):
        base = f"{server.url}/stores"
        assert await get(http, f"{base}/w/windows/1") == (
            200,
            {"store": "w", "key": 1, "items": [[0, 10, 2], [5, 15, 1]]},
        )
        assert await get(http, f"{base}/w/windows/1", params={"from": "1", "to": "5.0"}) == (
            200,
            {"store": "w", "key": 1, "items": [[5, 15, 1]]},
        )
        assert await get(http, f"{base}/w/windows/1", params={"to": "-1"}) == (
            200,
            {"store": "w", "key": 1, "items": []},
        )
        assert await get(http, f"{base}/w/windows/9") == (
            200,
            {"store": "w", "key": 9, "items": []},
        )
        assert await get(http, f"{base}/w/windows", params={"limit": "2"}) == (
            200,
            {"store": "w", "items": [[2, -5, 5, 1], [1, 0, 10, 2]]},
        )
        assert await get(http, f"{base}/w/windows", params={"from": "5"}) == (
            200,
            {"store": "w", "items": [[1, 5, 15, 1]]},
        )
        assert await get(http, f"{base}/w") == (
            200,
            {"store": "w", "partitions": [None], "size": 4, "ready": True, "windows": "time"},
        )
        # Live: the next element is visible to the next query.
        down.request(2)
        assert await down.expect_next() == Windowed(2, -5, 5, 1)
        up.send_next((2, 9))
        await settle()
        _, body = await get(http, f"{base}/w/windows/2")
        assert body["items"] == [[0, 10, 2], [5, 15, 1]]
        # Errors.
        for params in ({"from": "soon"}, {"to": "nan"}):
            status, body = await get(http, f"{base}/w/windows/1", params=params)
            assert status == 400 and "must be a time in seconds" in body["error"]
        status, body = await get(http, f"{base}/w/windows", params={"limit": "-1"})
        assert status == 400 and "limit must be an int >= 0" in body["error"]
        status, body = await get(http, f"{base}/w/windows/one")
        assert status == 400 and "key 'one' refused by its key parser" in body["error"]
        status, body = await get(http, f"{base}/nope/windows/1")
        assert status == 404 and "no store 'nope'" in body["error"]
        for path in ("w/keys/1", "w/keys"):
            status, body = await get(http, f"{base}/{path}")
            assert status == 400 and "store 'w' is a windowed store" in body["error"]
        for path in ("kv/windows/1", "kv/windows"):
            status, body = await get(http, f"{base}/{path}")
            assert status == 400 and "store 'kv' is a key-value store" in body["error"]
    up.send_complete()
    up2.send_complete()
    down.request(10)
    await down.expect_next_n(4)
    await down.expect_complete()


async def test_http_503_while_the_store_restores(materializer: Materializer) -> None:
    layers: list[Restoring] = []

    def restoring(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        layers.append(Restoring(engine, ctx))
        return layers[-1]

    registry = registry_of(materializer)
    spec = Stores.in_memory("w").with_layer(restoring)
    up, down = counting(spec, SessionWindows.with_gap(5), materializer)
    await registered(registry, "w")
    async with StateServer(registry) as server, aiohttp.ClientSession() as http:
        for path in ("windows/a", "windows"):
            async with http.get(f"{server.url}/stores/w/{path}") as r:
                assert r.status == 503 and r.headers["Retry-After"] == "1"
                assert "store 'w' is not ready here" in (await r.json())["error"]
        assert not registry.is_ready("w")
        down.request(1)
        layers[0].ready.set()
        await up.expect_request()
        up.send_next(("a", 1))
        await settle()
        assert await get(http, f"{server.url}/stores/w/windows/a") == (
            200,
            {"store": "w", "key": "a", "items": [[1, 1, 1]]},
        )
    up.send_complete()
    down.request(10)
    assert await down.to_list() == [Windowed("a", 1, 1, 1)]


async def test_http_a_key_owned_by_another_member_is_redirected(
    materializer: Materializer,
) -> None:
    registry = registry_of(materializer)
    up, down = counting(Stores.in_memory("w").for_partition(0), TimeWindows.of(10), materializer)
    await registered(registry, "w")
    assert registry.partitions("w") == [0]
    down.request(1)
    up.send_next((2, 1))
    await settle()
    other = StateRegistry()
    a = StateServer(registry, key_parsers={"w": int})
    b = StateServer(other, key_parsers={"w": int})
    await a.start()
    await b.start()
    a.ownership = Halves(a.url, b.url)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"{a.url}/stores/w/windows/3?from=0&to=10"
            async with http.get(url, allow_redirects=False) as r:
                assert r.status == 307
                assert r.headers["Location"] == f"{b.url}/stores/w/windows/3?from=0&to=10"
                assert await r.json() == {"store": "w", "key": 3, "partition": 1, "owner": b.url}
            # Owned here: answered here.
            assert await get(http, f"{a.url}/stores/w/windows/2") == (
                200,
                {"store": "w", "key": 2, "items": [[0, 10, 1]]},
            )
            a.ownership = Halves(a.url, None)  # nobody serves odd keys right now
            async with http.get(f"{a.url}/stores/w/windows/3") as r:
                assert r.status == 503 and r.headers["Retry-After"] == "1"
                assert (await r.json())["partition"] == 1
    finally:
        await a.stop()
        await b.stop()
    up.send_complete()
    down.request(10)
    assert await down.to_list() == [Windowed(2, 0, 10, 1)]


async def test_one_name_holds_one_kind_of_store(materializer: Materializer) -> None:
    registry = StateRegistry()
    kv = Stores.in_memory("t").open()
    registry.register("t", kv)

    class Windows:
        def fetch(self, *a: Any) -> list[Any]:
            return []

        def fetch_all(self, *a: Any) -> list[Any]:
            return []

        def __len__(self) -> int:
            return 0

    with pytest.raises(ValueError, match="'t' is the name of a key-value store here"):
        registry.register("t", Windows())
    registry.register("w", Windows())
    with pytest.raises(ValueError, match="'w' is the name of a windowed store here"):
        registry.register("w", kv)
    with pytest.raises(TypeError, match=r"get\('w'\): a windowed store"):
        registry.get("w", 1)
    with pytest.raises(TypeError, match=r"fetch\('t'\): a key-value store"):
        registry.fetch("t", 1)
    assert registry.fetch("nothing", 1) == [] and registry.fetch_all("nothing") == []
    # A windowed operator whose store's name is a key-value store's fails.
    taken = registry_of(materializer)
    taken.register("taken", kv)
    up, down = counting(Stores.in_memory("taken"), TimeWindows.of(1), materializer)
    err = await down.expect_error()
    assert isinstance(err, ValueError) and "'taken' is the name of a key-value store" in str(err)
    taken.unregister("taken", kv)
    kv.close()
    del up


async def test_view_rejects_bad_bounds_and_unhashable_keys(materializer: Materializer) -> None:
    registry = registry_of(materializer)
    up, down = counting(Stores.in_memory("w"), TimeWindows.of(1), materializer)
    await registered(registry, "w")
    view = registry.views("w")[0][1]
    with pytest.raises(TypeError, match="time_from must be a time in seconds"):
        view.fetch("a", "0")
    with pytest.raises(TypeError, match="time_to must be a time in seconds"):
        view.fetch_all(None, float("nan"))
    with pytest.raises(TypeError, match="a key must be hashable"):
        view.fetch(["a"])
    assert "WindowStoreView 'w' time open" in repr(view)
    up.send_complete()
    down.request(1)
    await down.expect_complete()


# -- the key's time windows looked up by start == a scan of every window ---------------------
SETTINGS = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(
    spec=st.sampled_from(
        [
            TimeWindows.of(2),
            TimeWindows.of(1.5).grace(1),
            TimeWindows.of(4).advance_by(1),
            TimeWindows.of(1.5).advance_by(0.5).grace(0.7),
            TimeWindows.of(3).advance_by(0.1),
            TimeWindows.of(1).grace(50),  # more starts than windows: a scan
        ]
    ),
    data=st.lists(
        st.tuples(
            st.integers(0, 9),
            st.sampled_from([0, 0.1, 0.25, 1, 2.5]),
            st.sampled_from([0, 0, 0.3, 1, 4]),
        ),
        max_size=40,
    ),
    bounds=st.lists(
        st.tuples(
            st.one_of(st.none(), st.sampled_from([-1, 0, 0.5, 1.5, 2, 3.3, 7, 100])),
            st.one_of(st.none(), st.sampled_from([-1, 0, 0.5, 1.5, 2, 3.3, 7, 100])),
        ),
        min_size=1,
        max_size=4,
    ),
)
async def test_a_keys_time_windows_by_start_match_a_scan(
    spec: Any, data: list[Any], bounds: list[Any]
) -> None:
    mat = Materializer()
    registry = registry_of(mat)
    up, down = counting(Stores.in_memory("w"), spec, mat)
    await registered(registry, "w")
    view = registry.views("w")[0][1]
    down.request(1000)
    t = 0.0
    for key, dt, behind in data:
        t += dt
        up.send_next((key, t - behind))
        await settle()
        for lo, hi in bounds:
            expected = [w for w in view.fetch_all(lo, hi) if w.key == key]
            expected.sort(key=lambda w: (w.start, w.end))
            assert view.fetch(key, lo, hi) == expected
    up.send_complete()
    await down.to_list()
    await mat.shutdown()


async def test_a_keys_time_windows_are_looked_up_by_start_among_many(
    materializer: Materializer,
) -> None:
    registry = registry_of(materializer)
    up, down = counting(Stores.in_memory("w"), TimeWindows.of(3).advance_by(1), materializer)
    await registered(registry, "w")
    down.request(1000)
    for k in range(20):
        up.send_next((k, 5 + k / 100))
    await settle()
    view = registry.views("w")[0][1]
    logic = view._source
    assert isinstance(logic, _StoredWindowedLogic)
    # 60 open windows, of which key 7's start at 3, 4, 5: a few lookups, not a scan.
    assert len(logic.tw) == 60
    assert [w.start for w in logic._time_candidates(7, None, None) or []] == [3, 4, 5]
    assert [(w.start, w.value) for w in view.fetch(7, 4)] == [(4, 1), (5, 1)]
    # Only open windows' starts are looked up (after stream time - size - grace).
    assert [w.start for w in logic._time_candidates(7, -1e18, None) or []] == [3, 4, 5]
    up.send_complete()
    assert len(await down.to_list()) == 60


# -- with Kafka contexts: emitted windows stay marked in the store, not in the view ----------
class Committed:
    """A consumer's committer, as far as offsets go: records every commit."""

    def __init__(self) -> None:
        self.commits: list[Any] = []

    async def commit(self, offsets: Any) -> None:
        self.commits.append(dict(offsets))


async def test_with_contexts_emitted_windows_leave_the_view_while_marked_in_the_store(
    tmp_path: Path,
) -> None:
    from connectors.kafka import CommittableOffset

    committer = Committed()
    clicks = [("a", 1), ("b", 2), ("a", 11)]
    pairs = [(c, CommittableOffset("g", "clicks", 0, i, committer)) for i, c in enumerate(clicks)]
    spec = Stores.persistent("w", tmp_path, cache_size=0)
    mat = Materializer()
    registry = registry_of(mat)
    got: list[Any] = []
    switch, done = (
        SourceWithContext.from_tuples(Source.from_iterable(pairs).concat(Source.never()))
        .windowed(
            TimeWindows.of(10),
            key=lambda c: c[0],
            timestamp=lambda c: c[1],
            zero=lambda: 0,
            aggregate=lambda n, c: n + 1,
            store=spec,
        )
        .as_source()
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.foreach(got.append), Keep.both)
        .run(mat)
    )
    for _ in range(200):
        if len(got) == 2:
            break
        await asyncio.sleep(0.005)
    assert [(w.key, w.start) for w, _ in got] == [("a", 0), ("b", 0)]
    assert windows_of(registry, "w", "a") == [(10, 20, 1)]
    assert registry.fetch("w", "b") == []
    switch.abort(RuntimeError("stop"))
    with pytest.raises(RuntimeError):
        await done
    # The store still holds both emitted windows, marked (nothing was committed).
    with spec.open() as kv:
        assert sorted(k[1] for k in kv if k[0] == "e") == [0, 1]
    await mat.shutdown()


async def test_registry_listeners_hear_a_windowed_store_come_and_go(
    materializer: Materializer,
) -> None:
    # GroupMembership.track_store publishes a store's partitions on these calls.
    registry = registry_of(materializer)
    heard: list[tuple[str, list[Any]]] = []
    registry.add_listener(lambda name: heard.append((name, registry.partitions(name))))
    up, down = counting(Stores.in_memory("w").for_partition(3), TimeWindows.of(1), materializer)
    await registered(registry, "w")
    assert heard == [("w", [3])] and registry.is_ready("w")
    up.send_complete()
    down.request(1)
    await down.expect_complete()
    await settle()
    assert heard == [("w", [3]), ("w", [])]
