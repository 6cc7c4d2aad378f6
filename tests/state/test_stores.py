"""The store contract, run against both engines (in memory and RocksDB), plus the serdes
and the store declarations.

Every contract test gets a fresh ``StoreSpec`` of each kind; persistent ones live in
``tmp_path``. Keys are raw bytes (``RawSerde``) where the test is about bytewise order,
msgpack (the default) elsewhere.
"""

from __future__ import annotations

import math
import sys
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reactive.state import (
    BytesStore,
    InMemoryBytesStore,
    KeyValueStore,
    MsgpackSerde,
    OrderedKeySerde,
    RocksDBBytesStore,
    Serde,
    StoreClosedError,
    StoreContext,
    Stores,
    StoreSpec,
)
from reactive.state._serde import BIG_INT_EXT
from tests.state.support import Recording

if TYPE_CHECKING:
    from pathlib import Path


class RawSerde:
    """Bytes as they are: the test sees the engine's bytewise order directly."""

    def to_bytes(self, obj: bytes) -> bytes:
        if type(obj) is not bytes:
            raise TypeError(f"not bytes: {obj!r}")
        return obj

    def from_bytes(self, data: bytes) -> bytes:
        return data


KINDS = ["memory", "rocksdb"]


def spec(kind: str, tmp_path: Path, name: str = "s", **kw: Any) -> StoreSpec[Any, Any]:
    if kind == "memory":
        return Stores.in_memory(name, **kw)
    return Stores.persistent(name, tmp_path / "stores", **kw)


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(kind: str, tmp_path: Path) -> Any:
    s = spec(kind, tmp_path).open()
    yield s
    s.close()


@pytest.fixture
def raw(kind: str, tmp_path: Path) -> Any:
    s = spec(kind, tmp_path, key_serde=RawSerde()).open()
    yield s
    s.close()


# -- the contract ------------------------------------------------------------------------------
def test_get_put_delete_contains_len(store: KeyValueStore[Any, Any]) -> None:
    assert store.get("a") is None
    assert store.get("a", 7) == 7
    assert "a" not in store and len(store) == 0
    store.put("a", {"n": 1})
    store.put(("t", 2), [1, 2])
    assert store.get("a") == {"n": 1}
    assert store.get(("t", 2)) == [1, 2]  # msgpack: a tuple key is an array
    assert "a" in store and ("t", 2) in store and len(store) == 2
    store.put("a", 2)
    assert store.get("a") == 2 and len(store) == 2
    store.delete("a")
    store.delete("never there")  # no error
    assert store.get("a") is None and "a" not in store and len(store) == 1


def test_a_stored_none_is_a_value(store: KeyValueStore[Any, Any]) -> None:
    store.put("k", None)
    assert "k" in store and store.get("k", "default") is None and len(store) == 1


def test_iteration_is_in_bytewise_key_order(raw: KeyValueStore[bytes, Any]) -> None:
    keys = [b"b", b"a", b"\xff", b"", b"ab", b"a\x00", b"\x00"]
    for i, k in enumerate(keys):
        raw.put(k, i)
    expected = sorted(keys)
    assert list(raw) == expected
    assert list(raw.keys()) == expected
    assert [k for k, _ in raw.items()] == expected
    assert dict(raw.items()) == {k: i for i, k in enumerate(keys)}


@pytest.mark.parametrize(
    ("start", "end", "si", "ei", "expected"),
    [
        (b"b", b"d", True, False, [b"b", b"c"]),
        (b"b", b"d", True, True, [b"b", b"c", b"d"]),
        (b"b", b"d", False, False, [b"c"]),
        (b"b", b"d", False, True, [b"c", b"d"]),
        (None, b"c", True, False, [b"a", b"b"]),
        (b"c", None, True, False, [b"c", b"d", b"e"]),
        (None, None, True, False, [b"a", b"b", b"c", b"d", b"e"]),
        (b"bb", b"cc", True, False, [b"c"]),  # bounds between keys
        (b"d", b"b", True, False, []),  # start after end
        (b"c", b"c", True, False, []),
        (b"c", b"c", True, True, [b"c"]),
        (b"c", b"c", False, True, []),
        (b"x", None, True, False, []),
    ],
)
def test_range_bounds(
    raw: KeyValueStore[bytes, Any],
    start: bytes | None,
    end: bytes | None,
    si: bool,
    ei: bool,
    expected: list[bytes],
) -> None:
    for k in (b"e", b"c", b"a", b"d", b"b"):
        raw.put(k, k.decode())
    got = list(raw.range(start, end, start_inclusive=si, end_inclusive=ei))
    assert got == [(k, k.decode()) for k in expected]


def test_msgpack_key_order_is_not_numeric(store: KeyValueStore[Any, Any]) -> None:
    # Documented: msgpack ints do not sort numerically as bytes (127 < 128 is kept only
    # within one encoding length; negatives come after positives).
    for k in (1, 127, 128, 300, -1):
        store.put(k, k)
    assert list(store) == [1, 127, 128, 300, -1]


def test_ordered_key_serde_makes_ranges_numeric(kind: str, tmp_path: Path) -> None:
    with spec(kind, tmp_path, key_serde=OrderedKeySerde()).open() as s:
        for k in (300, -1, 128, 1, 127, -1000, 0):
            s.put(k, str(k))
        assert list(s) == [-1000, -1, 0, 1, 127, 128, 300]
        assert [k for k, _ in s.range(0, 128)] == [0, 1, 127]
        for user, ts in (("b", 2), ("a", 5), ("a", 1), ("ab", 0), ("b", 1)):
            s.put((user, ts), ts)
        assert [k for k, _ in s.range(("a",), ("a\x00",))] == [("a", 1), ("a", 5)]


def test_write_batch_is_applied_atomically_on_exit(store: KeyValueStore[Any, Any]) -> None:
    store.put("gone", 0)
    with store.write_batch() as batch:
        batch.put("a", 1)
        batch.put("b", 2)
        batch.delete("gone")
        batch.put("a", 3)  # in order: the last put wins
        assert len(batch) == 4
        assert store.get("a") is None  # nothing applied yet
    assert dict(store.items()) == {"a": 3, "b": 2}


def test_write_batch_is_discarded_when_the_block_raises(store: KeyValueStore[Any, Any]) -> None:
    store.put("kept", 1)
    with pytest.raises(RuntimeError), store.write_batch() as batch:  # noqa: PT012 - the block is the subject
        batch.put("a", 1)
        batch.delete("kept")
        raise RuntimeError("abandon")
    assert dict(store.items()) == {"kept": 1}


def test_write_batch_rejects_a_bad_value_at_once(store: KeyValueStore[Any, Any]) -> None:
    with store.write_batch() as batch:
        batch.put("a", 1)
        with pytest.raises(TypeError, match=r"store 's': value <object .*cannot be serialized"):
            batch.put("b", object())
    assert dict(store.items()) == {"a": 1}


def test_commit_applies_once(store: KeyValueStore[Any, Any]) -> None:
    batch = store.write_batch()
    batch.put("a", 1)
    batch.commit()
    store.delete("a")
    batch.commit()
    assert store.get("a") is None


def test_bad_keys_and_values_name_the_store(store: KeyValueStore[Any, Any]) -> None:
    with pytest.raises(TypeError, match=r"store 's': key <object .* cannot be serialized"):
        store.put(object(), 1)
    with pytest.raises(TypeError, match=r"store 's': value .* cannot be serialized"):
        store.put("k", {1, 2})
    assert len(store) == 0


def test_closed_store_refuses_everything(store: KeyValueStore[Any, Any]) -> None:
    store.put("a", 1)
    batch = store.write_batch()
    batch.put("b", 2)
    it = store.items()
    store.close()
    store.close()  # idempotent
    assert not store.is_open
    for op in (
        lambda: store.get("a"),
        lambda: store.put("a", 1),
        lambda: store.delete("a"),
        lambda: "a" in store,
        lambda: len(store),
        lambda: store.range(),
        lambda: store.flush(),
        lambda: store.write_batch(),
        batch.commit,
        lambda: next(it),
    ):
        with pytest.raises(StoreClosedError, match="store 's' is closed"):
            op()


def test_flush_keeps_the_data(store: KeyValueStore[Any, Any]) -> None:
    store.put("a", 1)
    store.flush()
    assert store.get("a") == 1


def test_a_scan_survives_writes_while_it_runs(store: KeyValueStore[Any, Any]) -> None:
    for i in range(10):
        store.put(i, i)
    seen = []
    for k, v in store.items():
        seen.append((k, v))
        store.put(k + 100, 0)  # writes while scanning must not break the scan
    assert seen[:3] == [(0, 0), (1, 1), (2, 2)]
    assert len(store) == 20


def test_persistent_store_survives_reopen(tmp_path: Path) -> None:
    sp = Stores.persistent("p", tmp_path)
    with sp.open() as s:
        s.put("a", 1)
        with s.write_batch() as b:
            b.put("b", [1, "two"])
            b.put("c", 3)
        s.delete("c")
    assert (tmp_path / "p").is_dir()
    with sp.open() as s:
        assert dict(s.items()) == {"a": 1, "b": [1, "two"]}
        assert len(s) == 2


def test_persistent_store_is_locked_while_open(tmp_path: Path) -> None:
    sp = Stores.persistent("p", tmp_path)
    with sp.open(), pytest.raises(OSError, match=r"store 'p': cannot open RocksDB at"):
        sp.open()
    with sp.open() as again:  # released by close
        assert len(again) == 0


def test_in_memory_store_drops_its_data_on_close() -> None:
    sp = Stores.in_memory("m")
    s = sp.open()
    s.put("a", 1)
    s.close()
    assert len(sp.open()) == 0  # each open is a new instance


def test_partitioned_instances_live_in_their_own_directories(tmp_path: Path) -> None:
    sp = Stores.persistent("p", tmp_path)
    assert sp.location(StoreContext("p")) == tmp_path / "p"
    assert sp.location(StoreContext("p", partition=3)) == tmp_path / "p.3"
    with sp.open(StoreContext("p", partition=3)) as s3, sp.open(StoreContext("p")) as s:
        s3.put("a", 3)
        s.put("a", 0)
    with sp.open(StoreContext("p", partition=3)) as s3:
        assert s3.get("a") == 3


# -- the engines against a dict reference -------------------------------------------------------
_OPS = st.lists(
    st.tuples(
        st.sampled_from(["put", "delete", "scan", "batch"]),
        st.binary(max_size=3),
        st.binary(max_size=3),
        st.booleans(),
        st.booleans(),
    ),
    max_size=60,
)


def _check_engine(engine: BytesStore, ops: list[Any]) -> None:
    ref: dict[bytes, bytes] = {}
    for op, a, b, si, ei in ops:
        if op == "put":
            engine.put(a, b)
            ref[a] = b
        elif op == "delete":
            engine.delete(a)
            ref.pop(a, None)
        elif op == "batch":
            engine.write([(a, b), (b, None), (a + b, a)])
            ref[a] = b
            ref.pop(b, None)
            ref[a + b] = a
        else:
            lo, hi = min(a, b), max(a, b)
            expected = sorted(
                (k, v)
                for k, v in ref.items()
                if (lo < k or (si and k == lo)) and (k < hi or (ei and k == hi))
            )
            assert list(engine.scan(lo, hi, si, ei)) == expected
        assert len(engine) == len(ref)
        assert engine.contains(a) == (a in ref)
        assert engine.get(a) == ref.get(a)
    assert list(engine.scan()) == sorted(ref.items())


@settings(max_examples=200, deadline=None)
@given(_OPS)
def test_in_memory_engine_matches_a_sorted_dict(ops: list[Any]) -> None:
    _check_engine(InMemoryBytesStore("ref"), ops)


@settings(max_examples=25, deadline=None)
@given(_OPS)
def test_rocksdb_engine_matches_a_sorted_dict(tmp_path_factory: Any, ops: list[Any]) -> None:
    engine = RocksDBBytesStore(tmp_path_factory.mktemp("rdb") / "db")
    try:
        _check_engine(engine, ops)
    finally:
        engine.close()


# -- serdes ---------------------------------------------------------------------------------------
_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.binary(max_size=5),
)
_KEY = st.recursive(_SCALAR, lambda inner: st.tuples(inner, inner) | st.tuples(inner), max_leaves=6)


@settings(max_examples=300, deadline=None)
@given(_KEY)
def test_ordered_key_serde_round_trips(key: Any) -> None:
    serde = OrderedKeySerde()
    back = serde.from_bytes(serde.to_bytes(key))
    assert back == key and type(back) is type(key)
    if isinstance(key, float) and key == 0.0:
        assert math.copysign(1, back) == math.copysign(1, key)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        _KEY,
        st.text(alphabet=st.sampled_from("a\x00\xff\u00e9\U0001f600"), max_size=6),
        st.integers(min_value=-(2**70), max_value=2**70),
    )
)
def test_ordered_key_serde_fast_paths_match_the_general_encoding(key: Any) -> None:
    """``to_bytes``/``from_bytes`` shortcut str and small positive int keys: the same
    bytes and keys as the general encoder and decoder (``_encode``/``_decode``)."""
    from reactive.state._serde import _decode, _encode

    out = bytearray()
    _encode(key, out, False)
    serde = OrderedKeySerde()
    assert serde.to_bytes(key) == bytes(out)
    back, _ = _decode(bytes(out), 0, False)
    assert serde.from_bytes(bytes(out)) == back
    assert type(serde.from_bytes(bytes(out))) is type(back)


_SAME_TYPE = st.one_of(
    st.lists(st.integers(min_value=-(2**100), max_value=2**100), min_size=2, max_size=2),
    st.lists(st.floats(allow_nan=False), min_size=2, max_size=2),
    st.lists(st.text(max_size=4), min_size=2, max_size=2),
    st.lists(st.binary(max_size=4), min_size=2, max_size=2),
    st.lists(
        st.tuples(st.text(max_size=2), st.integers(-300, 300)) | st.tuples(st.text(max_size=2)),
        min_size=2,
        max_size=2,
    ),
)


@settings(max_examples=400, deadline=None)
@given(_SAME_TYPE)
def test_ordered_key_serde_preserves_order_within_a_type(pair: list[Any]) -> None:
    a, b = pair
    ea, eb = OrderedKeySerde().to_bytes(a), OrderedKeySerde().to_bytes(b)
    if a == b and not (isinstance(a, float) and a == 0.0):
        assert ea == eb
    elif a < b:
        assert ea < eb
    elif b < a:
        assert eb < ea


def test_ordered_key_serde_type_bands_and_errors() -> None:
    s = OrderedKeySerde()
    band = [None, b"", "", (), -5, 0, 5, -1.5, 2.5, False, True]
    assert sorted(band, key=s.to_bytes) == band
    assert s.to_bytes(True) != s.to_bytes(1)
    with pytest.raises(TypeError, match="OrderedKeySerde cannot encode list"):
        s.to_bytes([1])
    with pytest.raises(ValueError, match="unknown type code"):
        s.from_bytes(b"\x99")
    with pytest.raises(ValueError, match="trailing bytes"):
        s.from_bytes(s.to_bytes(1) + b"\x14")


def test_msgpack_serde_round_trips_and_is_a_serde() -> None:
    s = MsgpackSerde()
    assert isinstance(s, Serde) and isinstance(OrderedKeySerde(), Serde)
    assert s.from_bytes(s.to_bytes({"a": [1, 2.5, None]})) == {"a": [1, 2.5, None]}
    assert MsgpackSerde(use_list=False).from_bytes(s.to_bytes([1, [2]])) == (1, (2,))


@given(st.integers() | st.lists(st.integers(), max_size=3))
def test_msgpack_serde_keeps_ints_of_any_size(x: Any) -> None:
    s = MsgpackSerde()
    b = s.to_bytes(x)
    assert s.from_bytes(b) == x
    ints = x if isinstance(x, list) else [x]
    if all(-(2**63) <= i < 2**64 for i in ints):  # msgpack's own ints: plain msgpack bytes
        assert b == msgpack.packb(x)


def test_msgpack_serde_big_ints_are_an_extension_type() -> None:
    s = MsgpackSerde()
    big = s.to_bytes(2**64)
    assert msgpack.unpackb(big) == msgpack.ExtType(
        BIG_INT_EXT, (2**64).to_bytes(9, "big", signed=True)
    )
    with pytest.raises(ValueError, match="unknown msgpack extension type 7"):
        s.from_bytes(msgpack.packb(msgpack.ExtType(7, b"x")))
    with pytest.raises(TypeError, match="can not serialize 'object' object"):
        s.to_bytes(object())


# -- declarations ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["", "a/b", "has space", 3])
def test_store_names_are_checked(name: Any) -> None:
    with pytest.raises(ValueError, match="store name must be a non-empty str"):
        Stores.in_memory(name)


def test_spec_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"store 'x': cache_size must be an int >= 0, got -1"):
        Stores.in_memory("x", cache_size=-1)
    with pytest.raises(TypeError, match=r"store 'x': key_serde must have to_bytes"):
        Stores.in_memory("x", key_serde=object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Stores.persistent\('x'\): path must be a str or Path"):
        Stores.persistent("x", 3)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"store 'x': a layer must be callable"):
        Stores.in_memory("x").with_layer("nope")  # type: ignore[arg-type]
    assert Stores.in_memory("x").with_cache_size(0).cache_size == 0


def test_a_layer_sees_every_write_as_bytes_with_its_context(kind: str, tmp_path: Path) -> None:
    log: list[Any] = []
    sp = spec(kind, tmp_path, key_serde=RawSerde(), value_serde=RawSerde()).with_layer(
        lambda engine, ctx: Recording(engine, ctx, log)
    )
    with sp.open(StoreContext("s", owner="op", partition=2)) as s:
        s.put(b"k", b"v")
        with s.write_batch() as b:
            b.delete(b"k")
            b.put(b"j", b"w")
        assert dict(s.items()) == {b"j": b"w"}
    assert log == [
        ("open", StoreContext("s", owner="op", partition=2)),
        ("put", b"k", b"v"),
        ("write", [(b"k", None), (b"j", b"w")]),
        ("close",),
    ]


def test_missing_optional_libraries_name_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "rocksdict", None)  # import rocksdict now fails
    with pytest.raises(ImportError, match=r"pip install 'reactive-streams-py\[state\]'"):
        Stores.persistent("p", tmp_path).open()
    monkeypatch.setitem(sys.modules, "msgpack", None)
    with pytest.raises(ImportError, match=r"msgpack: pip install 'reactive-streams-py\[state\]'"):
        Stores.in_memory("m").open()
    # A store with serdes of its own needs no msgpack.
    with Stores.in_memory(
        "m", key_serde=OrderedKeySerde(), value_serde=OrderedKeySerde()
    ).open() as s:
        s.put(1, "one")
        assert s.get(1) == "one"
