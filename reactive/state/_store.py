"""The store interface: a key-value store over bytes, and its typed face.

Two levels, as Kafka Streams' stores (a typed ``MeteredKeyValueStore`` over byte stores):

- :class:`BytesStore` is the storage engine: keys and values are ``bytes``, keys ordered
  bytewise. :class:`~reactive.state.InMemoryBytesStore` and
  :class:`~reactive.state.RocksDBBytesStore` implement it. A *layer* (a changelog writer, a
  metrics wrapper) is a ``BytesStore`` wrapping another one: it sees every write as
  bytes, which is what a changelog topic carries.
- :class:`KeyValueStore` is what users and operators hold: typed keys and values turned
  into bytes by a :class:`~reactive.state.Serde` each.

Range bounds: ``start`` is inclusive and ``end`` exclusive by default (as Python's
``range`` and RocksDB's iterate-upper-bound); ``start_inclusive``/``end_inclusive`` change
that; ``None`` means unbounded. Order is the bytewise order of the *serialized* keys.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from .errors import KeySerdeError, StoreClosedError

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Iterator, Sequence

    from ._serde import Serde

__all__ = [
    "BytesStore",
    "KeyValueStore",
    "ReadOnlyKeyValueStore",
    "WriteBatch",
]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")
K_co = TypeVar("K_co", covariant=True)
V_co = TypeVar("V_co", covariant=True)

_MISSING: Any = object()


def undecodable(
    name: str,
    what: str,
    data: bytes,
    serde: Any,
    exc: Exception,
    key: Any = _MISSING,
    owner: str = "",
) -> ValueError:
    """The error for stored bytes ``data`` its serde cannot decode (a value written with
    another serde, or damaged), naming the store, the key and the serde (and ``owner``,
    the operator reading it); ``exc`` (the serde's error, often without a message) is the
    cause."""
    of = "" if key is _MISSING else f" of key {key!r}"
    shown = data if len(data) <= 40 else data[:40] + b"..."
    where = f"[{owner}] " if owner else ""
    err = ValueError(
        f"{where}store {name!r}: the stored {what}{of} ({shown!r}) cannot be deserialized by "
        f"{serde!r} (written with another serde, or damaged): {exc!r}"
    )
    err.__cause__ = exc
    return err


class BytesStore(abc.ABC):
    """A storage engine: ``bytes`` keys ordered bytewise, ``bytes`` values.

    Operations on a closed engine raise :class:`StoreClosedError`. ``write`` applies a
    sequence of ``(key, value)`` operations (``value`` None deletes) atomically: all or
    none of them.
    """

    name: str

    @abc.abstractmethod
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""

    @abc.abstractmethod
    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""

    @abc.abstractmethod
    def delete(self, key: bytes) -> None:
        """Remove ``key`` (nothing happens if it is absent)."""

    @abc.abstractmethod
    def contains(self, key: bytes) -> bool:
        """True if ``key`` has a value."""

    @abc.abstractmethod
    def __len__(self) -> int:
        """The number of keys."""

    @abc.abstractmethod
    def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs with keys between ``start`` and ``end``, in key order."""

    @abc.abstractmethod
    def write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply ``ops`` (``(key, value)``; value None deletes) atomically, in order."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Make every write so far durable (a no-op in memory)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release the engine; idempotent."""

    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """False once closed."""

    def _closed(self) -> StoreClosedError:
        return StoreClosedError(f"store {self.name!r} is closed")

    # -- hooks for layers (a changelog); the engines keep these defaults -----------------
    def prepare(self) -> Awaitable[None] | None:
        """Work to finish before the store serves its operator, or None (the default).

        A changelog layer restores the store here. A stateful operator awaits it after
        opening the store and pulls no element before it is done; a failure fails the
        stage.
        """
        return None

    def durable(self) -> asyncio.Future[None] | None:
        """A future done when every write so far is durable beyond this process (a
        changelog layer: acknowledged by the broker), failed if one cannot be; or None when
        they already are (the default: an engine's writes need nothing more)."""
        return None

    def metrics(self) -> dict[str, Any]:
        """Figures about this store instance (a changelog layer: restore progress, writes
        in flight); empty by default."""
        return {}


class StoreLayer(BytesStore):
    """Base of a layer (``StoreSpec.with_layer``): every operation and hook goes to
    ``inner``, the engine or layer below; a layer overrides what it adds (a changelog: the
    writes, ``prepare``, ``durable``, ``metrics``)."""

    def __init__(self, inner: BytesStore) -> None:
        self.name = inner.name
        self.inner = inner

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None (the inner store's)."""
        return self.inner.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value`` in the inner store."""
        self.inner.put(key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key`` from the inner store."""
        self.inner.delete(key)

    def contains(self, key: bytes) -> bool:
        """True if ``key`` has a value (in the inner store)."""
        return self.inner.contains(key)

    def __len__(self) -> int:
        return len(self.inner)

    def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """The inner store's ``scan``."""
        return self.inner.scan(start, end, start_inclusive, end_inclusive)

    def write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply ``ops`` to the inner store."""
        self.inner.write(ops)

    def flush(self) -> None:
        """Flush the inner store."""
        self.inner.flush()

    def close(self) -> None:
        """Close the inner store."""
        self.inner.close()

    @property
    def is_open(self) -> bool:
        """The inner store's."""
        return self.inner.is_open

    def prepare(self) -> Awaitable[None] | None:
        """The inner store's (a layer below may have work to finish)."""
        return self.inner.prepare()

    def durable(self) -> asyncio.Future[None] | None:
        """The inner store's."""
        return self.inner.durable()

    def metrics(self) -> dict[str, Any]:
        """The inner store's."""
        return self.inner.metrics()


class ReadOnlyKeyValueStore(Protocol[K_co, V_co]):
    """What a query may do with a store: a :class:`KeyValueStore` is one, and so is the
    materialized view of a stateful operator."""

    @property
    def is_open(self) -> bool:
        """False before the store opened and after it closed (reads then raise)."""
        ...

    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default``."""
        ...

    def __contains__(self, key: object) -> bool: ...

    def __len__(self) -> int: ...

    def range(
        self,
        start: Any = None,
        end: Any = None,
        *,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[K_co, V_co]]:
        """``(key, value)`` pairs between ``start`` and ``end`` in serialized-key order."""
        ...

    def items(self) -> Iterator[tuple[K_co, V_co]]:
        """Every ``(key, value)`` pair in serialized-key order."""
        ...

    def keys(self) -> Iterator[K_co]:
        """Every key in serialized-key order."""
        ...


class KeyValueStore(Generic[K, V]):
    """A key-value store with typed keys and values over a :class:`BytesStore`.

    Keys are equal when their serialized bytes are; iteration, ``items``, ``keys`` and
    ``range`` go in the bytewise order of the serialized keys (with the default msgpack
    serde that is *not* numeric order for ints: use
    :class:`~reactive.state.OrderedKeySerde` for keys you range over). What a scan sees
    of writes made while it is being consumed depends on the engine (in memory: the keys
    present when it was called, skipping those deleted since; RocksDB: a snapshot).

    Operations raise :class:`StoreClosedError` once the store is closed; a key or value
    its serde cannot encode raises ``TypeError`` naming the store (for a key:
    :class:`KeySerdeError`, a ``TypeError``); stored bytes its serde cannot decode raise
    ``ValueError`` naming the store, the key and the serde.
    """

    __slots__ = ("name", "bytes_store", "key_serde", "value_serde", "_kb", "_vb", "_vl")

    def __init__(
        self, name: str, bytes_store: BytesStore, key_serde: Serde[K], value_serde: Serde[V]
    ) -> None:
        self.name = name
        self.bytes_store = bytes_store
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._kb = key_serde.to_bytes
        self._vb = value_serde.to_bytes
        self._vl = value_serde.from_bytes

    # -- serialization -------------------------------------------------------------------
    def _key(self, key: Any) -> bytes:
        try:
            return self._kb(key)
        except Exception as exc:
            raise KeySerdeError(
                f"store {self.name!r}: key {key!r} cannot be serialized by "
                f"{self.key_serde!r}: {exc}"
            ) from exc

    def _value(self, value: Any, key: Any = _MISSING) -> bytes:
        try:
            return self._vb(value)
        except Exception as exc:
            of = "" if key is _MISSING else f" of key {key!r}"
            raise TypeError(
                f"store {self.name!r}: value {value!r}{of} cannot be serialized by "
                f"{self.value_serde!r}: {exc}"
            ) from exc

    def _check(self) -> None:
        if not self.bytes_store.is_open:
            raise StoreClosedError(f"store {self.name!r} is closed")

    # -- reads ---------------------------------------------------------------------------
    @property
    def is_open(self) -> bool:
        """False once closed."""
        return self.bytes_store.is_open

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: Any, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (None) if it has none."""
        self._check()
        b = self.bytes_store.get(self._key(key))
        if b is None:
            return default
        try:
            return self._vl(b)
        except Exception as exc:
            raise undecodable(self.name, "value", b, self.value_serde, exc, key) from exc

    def __contains__(self, key: object) -> bool:
        self._check()
        return self.bytes_store.contains(self._key(key))

    def __len__(self) -> int:
        self._check()
        return len(self.bytes_store)

    def range(
        self,
        start: K | None = None,
        end: K | None = None,
        *,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[K, V]]:
        """``(key, value)`` pairs with ``start <= key < end`` in serialized-key order
        (``start_inclusive``/``end_inclusive`` change the bounds, None is unbounded)."""
        self._check()
        sb = None if start is None else self._key(start)
        eb = None if end is None else self._key(end)
        # Checked and serialized now (not at the first next()): errors belong to the call.
        return self._decoded(self.bytes_store.scan(sb, eb, start_inclusive, end_inclusive))

    def _decoded(self, pairs: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[K, V]]:
        kl = self.key_serde.from_bytes
        vl = self._vl
        for kb, vb in pairs:
            try:
                k = kl(kb)
            except Exception as exc:
                raise undecodable(self.name, "key", kb, self.key_serde, exc) from exc
            try:
                v = vl(vb)
            except Exception as exc:
                raise undecodable(self.name, "value", vb, self.value_serde, exc, k) from exc
            yield k, v

    def items(self) -> Iterator[tuple[K, V]]:
        """Every ``(key, value)`` pair in serialized-key order."""
        return self.range()

    def keys(self) -> Iterator[K]:
        """Every key in serialized-key order."""
        return (k for k, _ in self.range())

    def __iter__(self) -> Iterator[K]:
        return self.keys()

    # -- writes --------------------------------------------------------------------------
    def put(self, key: K, value: V) -> None:
        """Set ``key`` to ``value``."""
        self._check()
        self.bytes_store.put(self._key(key), self._value(value, key))

    def delete(self, key: K) -> None:
        """Remove ``key`` (nothing happens if it has no value)."""
        self._check()
        self.bytes_store.delete(self._key(key))

    def write_batch(self) -> WriteBatch[K, V]:
        """A batch of puts and deletes applied atomically when its ``with`` block ends
        without an exception (or on ``commit()``); discarded if the block raises."""
        self._check()
        return WriteBatch(self)

    def flush(self) -> None:
        """Make every write so far durable (persistent stores)."""
        self._check()
        self.bytes_store.flush()

    def close(self) -> None:
        """Flush and close the store; idempotent."""
        self.bytes_store.close()

    def __enter__(self) -> KeyValueStore[K, V]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<KeyValueStore {self.name!r} {type(self.bytes_store).__name__} {state}>"


class WriteBatch(Generic[K, V]):
    """Puts and deletes collected, then applied to their store as one atomic write.

    Keys and values are serialized as they are added (a bad one raises at once, nothing
    is applied); ``commit()`` (or leaving the ``with`` block normally) applies them in
    order; leaving the block with an exception discards them.
    """

    __slots__ = ("store", "ops", "_done")

    def __init__(self, store: KeyValueStore[K, V]) -> None:
        self.store = store
        self.ops: list[tuple[bytes, bytes | None]] = []
        self._done = False

    def put(self, key: K, value: V) -> None:
        """Add a put of ``key`` to the batch."""
        self.ops.append((self.store._key(key), self.store._value(value, key)))

    def delete(self, key: K) -> None:
        """Add a delete of ``key`` to the batch."""
        self.ops.append((self.store._key(key), None))

    def __len__(self) -> int:
        return len(self.ops)

    def commit(self) -> None:
        """Apply the batch (once; later calls do nothing)."""
        if self._done:
            return
        self._done = True
        self.store._check()
        if self.ops:
            self.store.bytes_store.write(self.ops)

    def __enter__(self) -> WriteBatch[K, V]:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self._done = True
