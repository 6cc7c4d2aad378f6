"""Specs of ``aggregate_by_key`` and ``stateful_map_by_key``: emissions, the materialized
view (current while the stream runs, closed after), the store's flush and close in every
ending, supervision, back pressure, and a differential property test against a dict.

Probes drive the streams; nothing depends on wall-clock speed. Store lifecycles are
observed through a recording layer (``StoreSpec.with_layer``), the hook changelogs use.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive import Attributes, Flow, Keep, Materializer, Sink, Source, Supervision
from reactive.state import (
    OrderedKeySerde,
    StoreClosedError,
    StoreContext,
    Stores,
    StoreSpec,
    StoreView,
)
from reactive.testkit import PublisherProbe, SubscriberProbe, TestSink, TestSource
from tests.state.support import Recording

if TYPE_CHECKING:
    from pathlib import Path


class Boom(Exception):
    """A user-function failure."""


def zero() -> int:
    return 0


def count(n: int, _: Any) -> int:
    return n + 1


def word(w: str) -> str:
    return w


async def settle(rounds: int = 30) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


def recorded(sp: StoreSpec[Any, Any]) -> tuple[StoreSpec[Any, Any], list[Any]]:
    log: list[Any] = []
    return sp.with_layer(lambda engine, ctx: Recording(engine, ctx, log)), log


def supervised(blueprint: Any, directive: Supervision) -> Any:
    return blueprint.with_attributes(Attributes.supervision_strategy(lambda e: directive))


def run_probed(
    flow: Any, mat: Materializer
) -> tuple[PublisherProbe, StoreView[Any, Any], SubscriberProbe]:
    (up, view), down = (
        TestSource.probe().via_mat(flow, Keep.both).to_mat(TestSink.probe(), Keep.both).run(mat)
    )
    return up, view, down


def counting(sp: StoreSpec[Any, Any]) -> Flow[Any, Any, Any]:
    return Flow[str]().aggregate_by_key(sp, word, zero, count)


# -- aggregate_by_key ---------------------------------------------------------------------------
async def test_emits_each_update_and_the_view_follows(materializer: Materializer) -> None:
    up, view, down = run_probed(counting(Stores.in_memory("counts")), materializer)
    assert view.name == "counts"
    down.request(10)
    up.send_next("a")
    assert await down.expect_next() == ("a", 1)
    assert view.get("a") == 1 and len(view) == 1 and "a" in view and "b" not in view
    up.send_next("b").send_next("a")
    assert await down.expect_next_n(2) == [("b", 1), ("a", 2)]
    assert view.get("a") == 2 and view.get("zzz", 0) == 0
    assert list(view.items()) == [("a", 2), ("b", 1)]
    assert list(view) == ["a", "b"] and list(view.keys()) == ["a", "b"]
    assert list(view.range("b")) == [("b", 1)]
    up.send_complete()
    await down.expect_complete()
    await settle()
    assert not view.is_open
    with pytest.raises(StoreClosedError, match=r"\[aggregate_by_key\] store 'counts' is closed"):
        view.get("a")


async def test_the_view_is_current_between_scans_with_a_small_cache(
    materializer: Materializer,
) -> None:
    sp = Stores.in_memory("c", key_serde=OrderedKeySerde(), cache_size=2)
    flow = Flow[int]().aggregate_by_key(sp, lambda x: x % 5, zero, lambda s, x: s + x)
    up, view, down = run_probed(flow, materializer)
    down.request(100)
    expected: dict[int, int] = {}
    for x in range(23):
        up.send_next(x)
        k = x % 5
        expected[k] = expected.get(k, 0) + x
        assert await down.expect_next() == (k, expected[k])
        assert dict(view.items()) == expected  # the scan flushes the cache first
        assert view.get(k) == expected[k]
    assert list(view.range(1, 3)) == [(1, expected[1]), (2, expected[2])]
    up.send_complete()
    await down.expect_complete()


async def test_a_view_queried_before_the_stage_starts_opens_the_store(
    materializer: Materializer, tmp_path: Path
) -> None:
    sp = Stores.persistent("early", tmp_path)
    with sp.open() as s:
        s.put("a", 41)
    view, done = (
        Source.from_iterable(["a"])
        .aggregate_by_key(sp, word, zero, count)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert view.get("a") == 41  # before the stream ran: what the store holds
    assert await done == [("a", 42)]
    await settle()
    with sp.open() as s:
        assert dict(s.items()) == {"a": 42}


async def test_each_materialization_has_its_own_in_memory_store(
    materializer: Materializer,
) -> None:
    g = Source.from_iterable("abca").aggregate_by_key(Stores.in_memory("c"), word, zero, count)
    r1 = await g.run_with(Sink.seq(), materializer)
    r2 = await g.run_with(Sink.seq(), materializer)
    assert r1 == r2 == [("a", 1), ("b", 1), ("c", 1), ("a", 2)]


async def test_a_persistent_store_carries_state_across_runs(
    materializer: Materializer, tmp_path: Path
) -> None:
    g = Source.from_iterable("aab").aggregate_by_key(
        Stores.persistent("c", tmp_path), word, zero, count
    )
    assert await g.run_with(Sink.seq(), materializer) == [("a", 1), ("a", 2), ("b", 1)]
    await settle()
    assert await g.run_with(Sink.seq(), materializer) == [("a", 3), ("a", 4), ("b", 2)]


async def test_mat_value_defaults_to_the_view_and_combines(materializer: Materializer) -> None:
    src = Source.from_iterable([1]).watch_termination(Keep.right)
    done_view = src.aggregate_by_key(
        Stores.in_memory("c"), lambda x: x, zero, count, combine=Keep.both
    ).to(Sink.ignore())
    done, view = done_view.run(materializer)
    assert isinstance(view, StoreView)
    await done


async def test_backpressure_nothing_beyond_demand(materializer: Materializer) -> None:
    up, _view, down = run_probed(counting(Stores.in_memory("c")), materializer)
    down.request(1)
    assert await up.expect_request() >= 1
    up.send_next("a")
    assert await down.expect_next() == ("a", 1)
    await down.expect_no_message(0.05)
    down.request(2)
    up.send_next("a").send_next("b")
    assert await down.expect_next_n(2) == [("a", 2), ("b", 1)]
    up.send_complete()
    await down.expect_complete()


async def test_batches_through_fused_chains_and_boundaries(materializer: Materializer) -> None:
    data = [i % 37 for i in range(5000)]
    sp = Stores.in_memory("c", cache_size=10)
    got = await (
        Source.from_iterable(data)
        .map(lambda x: x)
        .aggregate_by_key(sp, lambda x: x, zero, count)
        .async_boundary()
        .filter(lambda kv: True)
        .run_with(Sink.seq(), materializer)
    )
    seen: dict[int, int] = {}
    expected = []
    for x in data:
        seen[x] = seen.get(x, 0) + 1
        expected.append((x, seen[x]))
    assert got == expected


# -- flush and close in every ending ------------------------------------------------------------
def _lifecycle(log: list[Any]) -> list[str]:
    return [e[0] for e in log if e[0] in ("open", "write", "close")]


async def test_completion_flushes_and_closes(materializer: Materializer) -> None:
    sp, log = recorded(Stores.in_memory("c"))
    up, _view, down = run_probed(counting(sp), materializer)
    down.request(5)
    up.send_next("a").send_next("b").send_next("a")
    await down.expect_next_n(3)
    assert _lifecycle(log) == ["open"]  # still in the cache
    up.send_complete()
    await down.expect_complete()
    await settle()
    assert log[0] == ("open", StoreContext("c", owner="aggregate_by_key"))
    assert _lifecycle(log) == ["open", "write", "close"]
    assert sorted(log[1][1]) == sorted([(b"\xa1a", b"\x02"), (b"\xa1b", b"\x01")])


async def test_upstream_failure_flushes_and_closes(materializer: Materializer) -> None:
    sp, log = recorded(Stores.in_memory("c"))
    up, view, down = run_probed(counting(sp), materializer)
    down.request(5)
    up.send_next("a")
    await down.expect_next()
    up.send_error(Boom("up"))
    assert isinstance(await down.expect_error(), Boom)
    await settle()
    assert _lifecycle(log) == ["open", "write", "close"]
    assert not view.is_open


async def test_cancellation_flushes_and_closes(materializer: Materializer) -> None:
    sp, log = recorded(Stores.in_memory("c"))
    up, _view, down = run_probed(counting(sp), materializer)
    down.request(5)
    up.send_next("a")
    await down.expect_next()
    down.cancel()
    await up.expect_cancellation()
    await settle()
    assert _lifecycle(log) == ["open", "write", "close"]


async def test_materializer_shutdown_flushes_and_closes(tmp_path: Path) -> None:
    sp, log = recorded(Stores.persistent("c", tmp_path))
    mat = Materializer(name="shutdown")
    up, _view, down = run_probed(counting(sp), mat)
    down.request(5)
    up.send_next("a").send_next("a")
    await down.expect_next_n(2)
    await mat.shutdown()
    assert _lifecycle(log) == ["open", "write", "close"]
    with Stores.persistent("c", tmp_path).open() as s:  # the lock is released
        assert s.get("a") == 2


async def test_shutdown_before_start_closes_a_store_the_view_opened(tmp_path: Path) -> None:
    sp, log = recorded(Stores.in_memory("c"))
    mat = Materializer(name="early")
    _, view, _ = run_probed(counting(sp), mat)
    assert view.get("a") is None  # opens the store
    await mat.shutdown()
    assert _lifecycle(log) == ["open", "close"]


async def test_a_store_that_cannot_open_fails_the_stream(
    materializer: Materializer, tmp_path: Path
) -> None:
    sp = Stores.persistent("busy", tmp_path)
    with sp.open():
        done = (
            Source.from_iterable("a")
            .via(supervised(counting(sp), Supervision.resume))
            .run_with(Sink.seq(), materializer)
        )
        with pytest.raises(OSError, match=r"store 'busy': cannot open RocksDB"):
            await done


# -- supervision --------------------------------------------------------------------------------
def picky(n: int, w: str) -> int:
    if w == "bad":
        raise Boom(w)
    return n + 1


def bad_key(w: str) -> str:
    if w == "badkey":
        raise Boom(w)
    return w


@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_resume_and_restart_skip_the_element_and_keep_the_store(
    materializer: Materializer, directive: Supervision
) -> None:
    flow = Flow[str]().aggregate_by_key(Stores.in_memory("c"), bad_key, zero, picky)
    _view, got = (
        Source.from_iterable(["a", "bad", "a", "badkey", "b", "a"])
        .via_mat(supervised(flow, directive), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await got == [("a", 1), ("a", 2), ("b", 1), ("a", 3)]


async def test_stop_emits_earlier_updates_then_fails(materializer: Materializer) -> None:
    flow = Flow[str]().aggregate_by_key(Stores.in_memory("c"), word, zero, picky)
    got: list[Any] = []
    done = Source.from_iterable(["a", "b", "bad", "c"]).via(flow).run_foreach(got.append)
    with pytest.raises(Boom):
        await done
    assert got == [("a", 1), ("b", 1)]


async def test_an_unserializable_value_names_the_operator_and_store(
    materializer: Materializer,
) -> None:
    flow = Flow[int]().aggregate_by_key(
        Stores.in_memory("c"), lambda x: x, zero, lambda s, x: object() if x == 2 else x
    )
    got: list[Any] = []
    with pytest.raises(TypeError, match=r"\[aggregate_by_key\] store 'c': value <object"):
        await Source.from_iterable([1, 2, 3]).via(flow).run_foreach(got.append, materializer)
    assert got == [(1, 1)]
    resumed = await (
        Source.from_iterable([1, 2, 3])
        .via(supervised(flow, Supervision.resume))
        .run_with(Sink.seq(), materializer)
    )
    assert resumed == [(1, 1), (3, 3)]


async def test_an_unserializable_key_names_the_operator_and_store(
    materializer: Materializer,
) -> None:
    def key(x: int) -> Any:
        return object() if x == 2 else x

    for flow, name in [
        (
            Flow[int]().aggregate_by_key(Stores.in_memory("c"), key, zero, lambda s, x: x),
            "aggregate_by_key",
        ),
        (
            Flow[int]().stateful_map_by_key(Stores.in_memory("c"), key, lambda s, x: (x, x)),
            "stateful_map_by_key",
        ),
    ]:
        with pytest.raises(TypeError, match=rf"\[{name}\] store 'c': key <object"):
            await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
        resumed = await (
            Source.from_iterable([1, 2, 3])
            .via(supervised(flow, Supervision.resume))
            .run_with(Sink.seq(), materializer)
        )
        assert len(resumed) == 2, name


async def test_ints_of_any_size_are_stored_and_other_values_checked_at_once(
    materializer: Materializer, tmp_path: Path
) -> None:
    # The default serde encodes ints beyond msgpack's 64 bits (an extension type), so a
    # growing sum never fails; a Fraction it cannot encode fails its own element.
    def summed() -> Any:
        return Source.from_iterable([2**63, 2**63, -(2**200)]).aggregate_by_key(
            Stores.persistent("c", tmp_path), lambda x: 0, zero, lambda s, x: s + x
        )

    assert await summed().run_with(Sink.seq(), materializer) == [
        (0, 2**63),
        (0, 2**64),
        (0, 2**64 - 2**200),
    ]
    await settle()
    assert (await summed().run_with(Sink.seq(), materializer))[0] == (0, 2**64 - 2**200 + 2**63)
    flow = Flow[Any]().aggregate_by_key(
        Stores.in_memory("c"), lambda x: 0, zero, lambda s, x: s + x
    )
    with pytest.raises(
        TypeError, match=r"store 'c': value Fraction\(2361183241434822606849, 2\) of key 0"
    ):
        await (
            Source.from_iterable([2**70, Fraction(1, 2)])
            .via(flow)
            .run_with(Sink.seq(), materializer)
        )


def test_bad_arguments_name_the_operator() -> None:
    with pytest.raises(TypeError, match=r"aggregate_by_key: store must be a StoreSpec"):
        Source.single(1).aggregate_by_key("counts", word, zero, count)
    with pytest.raises(TypeError, match=r"aggregate_by_key: key must be callable, got 3"):
        Source.single(1).aggregate_by_key(Stores.in_memory("c"), 3, zero, count)
    with pytest.raises(TypeError, match=r"aggregate_by_key: aggregate must be callable"):
        Source.single(1).aggregate_by_key(Stores.in_memory("c"), word, zero, None)
    with pytest.raises(TypeError, match=r"aggregate_by_key: zero must be a zero-argument"):
        Source.single(1).aggregate_by_key(Stores.in_memory("c"), word, 0, count)
    with pytest.raises(TypeError, match=r"stateful_map_by_key: f must be callable"):
        Source.single(1).stateful_map_by_key(Stores.in_memory("c"), word, 0)


# -- write-through and eviction -------------------------------------------------------------------
async def test_cache_size_zero_writes_every_update_through(materializer: Materializer) -> None:
    sp, log = recorded(Stores.in_memory("c", cache_size=0))
    up, _view, down = run_probed(counting(sp), materializer)
    down.request(5)
    up.send_next("a")
    await down.expect_next()
    assert [e for e in log if e[0] == "write"] == [("write", [(b"\xa1a", b"\x01")])]
    up.send_next("a")
    await down.expect_next()
    assert [e for e in log if e[0] == "write"][-1] == ("write", [(b"\xa1a", b"\x02")])
    up.send_complete()
    await down.expect_complete()


async def test_a_full_cache_writes_its_dirty_entries_as_one_batch(
    materializer: Materializer,
) -> None:
    sp, log = recorded(Stores.in_memory("c", cache_size=2))
    got = await Source.from_iterable("ababc").via(counting(sp)).run_with(Sink.seq())
    assert got == [("a", 1), ("b", 1), ("a", 2), ("b", 2), ("c", 1)]
    await settle()
    writes = [sorted(e[1]) for e in log if e[0] == "write"]
    # "c" found the cache full: a and b went as one batch; c at the end.
    assert writes == [[(b"\xa1a", b"\x02"), (b"\xa1b", b"\x02")], [(b"\xa1c", b"\x01")]]


# -- stateful_map_by_key ------------------------------------------------------------------------
def session(state: list[int] | None, x: tuple[str, int]) -> tuple[Any, Any]:
    """Collect values per user; 0 ends the session: emit its total and delete it."""
    user, v = x
    if v == 0:
        return None, (user, sum(state or []))
    return [*(state or []), v], None


async def test_stateful_map_by_key_reads_writes_and_deletes(materializer: Materializer) -> None:
    flow = Flow[Any]().stateful_map_by_key(Stores.in_memory("sessions"), lambda x: x[0], session)
    up, view, down = run_probed(flow, materializer)
    down.request(10)
    up.send_next(("u", 1)).send_next(("v", 5)).send_next(("u", 2))
    await settle()  # nothing is emitted for these: let the island process them
    assert view.get("u") == [1, 2] and view.get("v") == [5] and len(view) == 2
    up.send_next(("u", 0))
    assert await down.expect_next() == ("u", 3)
    assert "u" not in view and len(view) == 1
    up.send_next(("w", 0))  # nothing to delete: still emits
    assert await down.expect_next() == ("w", 0)
    up.send_complete()
    await down.expect_complete()


async def test_stateful_map_by_key_supervision(materializer: Materializer) -> None:
    def f(state: int | None, x: int) -> tuple[int, int]:
        if x < 0:
            raise Boom(x)
        return (state or 0) + x, x * 10

    flow = Flow[int]().stateful_map_by_key(Stores.in_memory("s"), lambda x: 0, f)
    _view, got = (
        Source.from_iterable([1, -1, 2])
        .via_mat(supervised(flow, Supervision.resume), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await got == [10, 20]
    with pytest.raises(Boom):
        await Source.from_iterable([1, -1, 2]).via(flow).run_with(Sink.seq(), materializer)


# -- differential: against a dict ---------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-3, 3), st.integers(-100, 100)), max_size=80),
    cache_size=st.sampled_from([0, 1, 3, 10_000]),
    ordered=st.booleans(),
    boundary=st.booleans(),
)
def test_aggregate_by_key_matches_a_dict(
    data: list[tuple[int, int]], cache_size: int, ordered: bool, boundary: bool
) -> None:
    async def main() -> list[Any]:
        sp = Stores.in_memory(
            "d", cache_size=cache_size, key_serde=OrderedKeySerde() if ordered else None
        )
        src = Source.from_iterable(data).map(lambda kv: kv)
        if boundary:
            src = src.async_boundary()
        view, done = (
            src.aggregate_by_key(sp, lambda kv: kv[0], zero, lambda s, kv: s + kv[1])
            .to_mat(Sink.seq(), Keep.both)
            .run()
        )
        assert isinstance(view, StoreView)
        return await done

    ref: dict[int, int] = {}
    expected = []
    for k, v in data:
        ref[k] = ref.get(k, 0) + v
        expected.append((k, ref[k]))
    assert asyncio.run(main()) == expected


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-3, 3), st.integers(-100, 100)), max_size=60),
    cache_size=st.sampled_from([0, 1, 3, 10_000]),
)
def test_the_view_matches_a_dict_after_every_element(
    data: list[tuple[int, int]], cache_size: int
) -> None:
    async def main() -> None:
        sp = Stores.in_memory("d", cache_size=cache_size, key_serde=OrderedKeySerde())
        flow = Flow[Any]().aggregate_by_key(sp, lambda kv: kv[0], zero, lambda s, kv: s + kv[1])
        mat = Materializer(name="diff")
        up, view, down = run_probed(flow, mat)
        ref: dict[int, int] = {}
        down.request(len(data) + 1)
        for k, v in data:
            up.send_next((k, v))
            ref[k] = ref.get(k, 0) + v
            assert await down.expect_next() == (k, ref[k])
            assert view.get(k) == ref[k]
            assert list(view.items()) == sorted(ref.items())
            assert len(view) == len(ref)
        up.send_complete()
        await down.expect_complete()
        await mat.shutdown()

    asyncio.run(main())


async def test_substreams_each_get_their_own_store(materializer: Materializer) -> None:
    got = await (
        Source.from_iterable(["a1", "b1", "a2", "a1", "b1"])
        .group_by(2, lambda w: w[0])
        .aggregate_by_key(Stores.in_memory("per-group"), word, zero, count)
        .merge_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert sorted(got) == sorted([("a1", 1), ("b1", 1), ("a2", 1), ("a1", 2), ("b1", 2)])


async def test_zero_is_called_for_each_new_key(materializer: Materializer) -> None:
    def append(acc: list[int], x: int) -> list[int]:
        acc.append(x)  # in place: safe only because each key got its own list
        return acc

    flow = Flow[int]().aggregate_by_key(Stores.in_memory("lists"), lambda x: x % 2, list, append)
    up, view, down = run_probed(flow, materializer)
    down.request(4)
    for x in (1, 2, 3, 4):
        up.send_next(x)
    await down.expect_next_n(4)
    assert view.get(1) == [1, 3] and view.get(0) == [2, 4]
    up.send_complete()
    await down.expect_complete()


async def test_a_stored_none_is_kept_not_replaced_by_zero(materializer: Materializer) -> None:
    seen: list[Any] = []

    def agg(acc: Any, x: int) -> Any:
        seen.append(acc)
        return None

    await (
        Source.from_iterable([1, 1])
        .aggregate_by_key(Stores.in_memory("n", cache_size=0), lambda x: x, lambda: "zero", agg)
        .run_with(Sink.ignore(), materializer)
    )
    assert seen == ["zero", None]


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.tuples(st.integers(-3, 3), st.integers(0, 5)), max_size=60),
    cache_size=st.sampled_from([0, 1, 2, 10_000]),
)
def test_stateful_map_by_key_with_deletes_matches_a_dict(
    data: list[tuple[int, int]], cache_size: int
) -> None:
    """Per key: a 0 deletes the key (emitting what it held), anything else adds to it."""

    def f(state: int | None, kv: tuple[int, int]) -> tuple[int | None, Any]:
        if kv[1] == 0:
            return None, ("deleted", kv[0], state)
        return (state or 0) + kv[1], ("added", kv[0], kv[1])

    async def main() -> None:
        sp = Stores.in_memory("d", cache_size=cache_size, key_serde=OrderedKeySerde())
        flow = Flow[Any]().stateful_map_by_key(sp, lambda kv: kv[0], f)
        mat = Materializer(name="diff-map")
        up, view, down = run_probed(flow, mat)
        ref: dict[int, int] = {}
        down.request(len(data) + 1)
        for k, v in data:
            up.send_next((k, v))
            if v == 0:
                assert await down.expect_next() == ("deleted", k, ref.pop(k, None))
            else:
                ref[k] = ref.get(k, 0) + v
                assert await down.expect_next() == ("added", k, v)
            assert view.get(k) == ref.get(k)
            assert list(view.items()) == sorted(ref.items())
        up.send_complete()
        await down.expect_complete()
        await mat.shutdown()

    asyncio.run(main())


async def test_a_raising_zero_is_supervised_like_aggregate(materializer: Materializer) -> None:
    calls: list[int] = []

    def flaky_zero() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise Boom("first zero")
        return 0

    flow = Flow[str]().aggregate_by_key(Stores.in_memory("c"), word, flaky_zero, count)
    got = await (
        Source.from_iterable(["a", "a", "b"])
        .via(supervised(flow, Supervision.resume))
        .run_with(Sink.seq(), materializer)
    )
    assert got == [("a", 1), ("b", 1)]
    calls.clear()
    with pytest.raises(Boom, match="first zero"):
        await Source.from_iterable(["a"]).via(flow).run_with(Sink.seq(), materializer)


class FailingWrites(Recording):
    """A layer whose writes fail: a full disk, a lost changelog."""

    def write(self, ops: Any) -> None:
        raise OSError("disk full")


async def test_completion_waits_for_the_store_and_fails_if_it_cannot_take_the_updates(
    materializer: Materializer,
) -> None:
    log: list[Any] = []
    sp = Stores.in_memory("c").with_layer(lambda e, ctx: FailingWrites(e, ctx, log))
    got: list[Any] = []
    with pytest.raises(OSError, match="disk full"):
        await Source.from_iterable("ab").via(counting(sp)).run_foreach(got.append, materializer)
    assert got == [("a", 1), ("b", 1)]
    await settle()
    assert log[-1] == ("close",)  # closed all the same
