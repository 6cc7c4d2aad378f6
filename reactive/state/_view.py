"""The store of one operator instance: its write-back cache, and the read-only view that
is the operator's materialized value.

``StoreHandle`` owns the store of one materialization: opened when the stage starts (or
earlier, when its view is first queried), flushed and closed when the stage stops. In
front of the store it keeps a cache of deserialized values, which is what lets a keyed
aggregation run near dict speed. Cache keys must be equal exactly when the store's keys
are: they are the serialized key bytes, except that an exact ``int`` or ``str`` key is
its own cache key under the library's serdes (injective on those types, and no int or
str equals a ``bytes``; ``True == 1`` is why ``bool`` and other types are serialized):

- the cache is two dicts, each key in at most one: ``dirty`` (written since the last
  flush) and ``clean`` (equal to the store, or its absence). A read tries dirty, then
  clean, else reads the store once; a hot key costs two dict operations per update;
- a write moves the key to dirty; its value is serialized when written to the store, but
  checked at once (a value the serde cannot encode fails *that* element, under
  supervision). The check is a serialization, except for values the default serde always
  encodes (exact ``int``, of any size, ``float``, ``str``): serializing
  every update of a hot key only to keep the last one is what the cache saves;
- dirty entries go to the store as one atomic write (``BytesStore.write``) when a new key
  finds the cache holding ``cache_size`` entries (then the cache is emptied), before a
  view scans, and when the stage stops; with ``cache_size`` 0, after each batch of
  elements, before its updates are emitted (the cache then lives for one batch).

The view reads through the cache, so it is current after every element.

``WindowStoreView`` is the read-only view of a windowed operator's store
(``windowed(..., store=...)``): registered in the materializer's ``StateRegistry`` while
the stage runs, it answers from the operator's own windows (which the store mirrors,
written behind), so it too is current after every element.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, overload

from ._serde import MsgpackSerde, OrderedKeySerde
from ._spec import StoreContext, StoreSpec
from ._store import undecodable
from .errors import StoreClosedError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from .._ops.window_specs import Windowed
    from ._store import KeyValueStore

__all__ = ["StoreView", "StoreHandle", "WindowStoreView"]

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")

_MISSING: Any = object()
_ABSENT: Any = object()  # cached: the store has no value for this key
_DELETED: Any = object()  # dirty: deleted since the last flush

_NEW, _OPEN, _CLOSED = 0, 1, 2


class StoreHandle:
    """The store of one operator instance and its cache (internal to the operators)."""

    __slots__ = (
        "spec",
        "context",
        "store",
        "state",
        "clean",
        "dirty",
        "direct",
        "size",
        "kb",
        "vb",
        "vl",
        "vraw",
        "trusted",
        "engine",
        "blank",
    )

    def __init__(self, spec: StoreSpec[Any, Any], owner: str) -> None:
        self.spec = spec
        self.context = StoreContext(spec.name, owner, spec.partition)
        self.store: KeyValueStore[Any, Any] | None = None
        self.state = _NEW
        # The cache: ``dirty`` holds what was written since the last flush (``_DELETED``
        # for a delete) and shadows ``clean``, which holds values known to equal the
        # store's (``_ABSENT``: the store has none). A hot key costs two dict operations.
        self.clean: dict[Any, Any] = {}
        self.dirty: dict[Any, Any] = {}
        self.direct = False  # exact int/str keys are their own cache keys
        self.size = spec.cache_size
        # True while the store is known to hold no key (see ``note_prepared``): a key
        # missing from the cache is then absent without asking the store.
        self.blank = False

    def open(self) -> KeyValueStore[Any, Any]:
        """The open store (opening it the first time); StoreClosedError once closed."""
        if self.state == _OPEN:
            assert self.store is not None
            return self.store
        if self.state == _CLOSED:
            raise StoreClosedError(
                f"[{self.context.owner}] store {self.spec.name!r} is closed: its stream stopped"
            )
        store = self.spec.open(self.context)
        self.store = store
        self.kb = store._key
        self.vb = store._value
        self.vl = store.value_serde.from_bytes
        self.vraw = store.value_serde.to_bytes
        self.trusted = type(store.value_serde) is MsgpackSerde
        self.direct = type(store.key_serde) in (MsgpackSerde, OrderedKeySerde)
        self.engine = store.bytes_store
        self.state = _OPEN
        return store

    @property
    def is_open(self) -> bool:
        return self.state == _OPEN

    # -- the cache ---------------------------------------------------------------------------
    def cache_key(self, key: Any) -> Any:
        """The cache key of ``key`` (see the module docstring)."""
        t = type(key)
        if self.direct and (t is int or t is str):
            return key
        return self.kb(key)

    def key_bytes(self, ck: Any) -> bytes:
        """The store key of the cache key ``ck``."""
        return ck if type(ck) is bytes else self.kb(ck)

    def note_prepared(self) -> None:
        """Called by the operator once the store is open and prepared (a changelog
        restored): remember whether it holds no key at all, so that a fresh store's first
        reads of every key skip the store (``blank`` stays True until a flush writes)."""
        self.blank = next(iter(self.engine.scan()), None) is None

    def fetch(self, ck: Any) -> Any:
        """The value of ``ck`` from the store (``_ABSENT`` if none), not cached: for a
        key about to be written (each key is then in one of the two dicts)."""
        if self.blank:
            return _ABSENT
        b = self.engine.get(self.key_bytes(ck))
        if b is None:
            return _ABSENT
        try:
            return self.vl(b)
        except Exception as exc:
            raise self._undecodable(ck, b, exc) from exc

    def _undecodable(self, ck: Any, data: bytes, exc: Exception) -> ValueError:
        store = self.store
        assert store is not None
        key = ck
        if type(ck) is bytes:
            with contextlib.suppress(Exception):
                key = store.key_serde.from_bytes(ck)
        return undecodable(
            self.spec.name, "value", data, store.value_serde, exc, key, self.context.owner
        )

    def load(self, ck: Any) -> Any:
        """The value of ``ck`` from the store (``_ABSENT`` if none), now in ``clean``."""
        v = self.clean[ck] = self.fetch(ck)
        return v

    def get(self, ck: Any, default: Any) -> Any:
        v = self.dirty.get(ck, _MISSING)
        if v is _MISSING:
            v = self.clean.get(ck, _MISSING)
            if v is _MISSING:
                if self.size and len(self.clean) + len(self.dirty) >= self.size:
                    self.evict()
                v = self.load(ck)
        return default if v is _ABSENT or v is _DELETED else v

    def check(self, value: Any) -> None:
        """Raise the serde's error if ``value`` cannot be serialized (see the module
        docstring for the values that need no trial)."""
        t = type(value)
        if self.trusted and (t is int or t is float or t is str):
            return
        self.vraw(value)

    def put(self, ck: Any, value: Any) -> None:
        """Set the (checked) value of ``ck`` (the operator evicts after a batch when
        ``cache_size`` is 0)."""
        self.clean.pop(ck, None)
        self.dirty[ck] = value

    def delete(self, ck: Any) -> None:
        self.clean.pop(ck, None)
        self.dirty[ck] = _DELETED

    def flush_dirty(self) -> None:
        """Write the dirty entries to the store as one atomic write; they become clean."""
        dirty = self.dirty
        if not dirty:
            return
        vraw = self.vraw
        kser = self.kb
        ops: list[tuple[bytes, bytes | None]] = []
        for ck, v in dirty.items():
            kb = ck if type(ck) is bytes else kser(ck)
            if v is _DELETED:
                ops.append((kb, None))
                continue
            try:
                ops.append((kb, vraw(v)))
            except Exception as exc:  # checked when put: mutated in place since?
                raise TypeError(
                    f"[{self.context.owner}] store {self.spec.name!r}: the value {v!r} of "
                    f"key {ck!r} cannot be serialized (changed in place after it "
                    f"was returned?): {exc}"
                ) from exc
        # Cleared only once written: a failed write loses nothing from the cache.
        self.blank = False
        self.engine.write(ops)
        clean = self.clean
        for ck, v in dirty.items():  # a key is in one dict at a time
            clean[ck] = _ABSENT if v is _DELETED else v
        dirty.clear()

    def flush(self) -> None:
        """Write the dirty entries and flush the store (if it is open)."""
        if self.state == _OPEN:
            assert self.store is not None
            self.flush_dirty()
            self.store.flush()

    def evict(self) -> None:
        self.flush_dirty()
        self.clean.clear()

    def close(self) -> None:
        """Flush the cache and the store, then close it (every ending of the stage)."""
        if self.state != _OPEN:
            self.state = _CLOSED
            return
        self.state = _CLOSED
        self.blank = False
        store = self.store
        assert store is not None
        try:
            self.flush_dirty()
        finally:
            self.clean.clear()
            store.close()


class StoreView(Generic[K, V]):
    """The materialized value of a stateful operator: a read-only view of its store.

    Current after every element the operator processed (it reads through the operator's
    cache). Usable from when the stream is materialized (the first query opens the store
    if the stage has not started yet) until the stream stops; then every read raises
    :class:`~reactive.state.StoreClosedError` (a persistent store can be read again with
    ``spec.open()``). Order is the bytewise order of the serialized keys.
    """

    __slots__ = ("_h",)

    def __init__(self, handle: StoreHandle) -> None:
        self._h = handle

    @property
    def name(self) -> str:
        """The store's name."""
        return self._h.spec.name

    @property
    def is_open(self) -> bool:
        """True while the store is open (from the first query or the stage's start until
        the stream stops)."""
        return self._h.is_open

    def _store(self) -> KeyValueStore[K, V]:
        return self._h.open()

    @overload
    def get(self, key: K) -> V | None: ...
    @overload
    def get(self, key: K, default: D) -> V | D: ...
    def get(self, key: Any, default: Any = None) -> Any:
        """The current value of ``key``, or ``default``."""
        self._store()
        h = self._h
        return h.get(h.cache_key(key), default)

    def __contains__(self, key: object) -> bool:
        self._store()
        h = self._h
        return h.get(h.cache_key(key), _MISSING) is not _MISSING

    def _synced(self) -> KeyValueStore[K, V]:
        store = self._store()
        self._h.flush_dirty()
        return store

    def __len__(self) -> int:
        return len(self._synced())

    def range(
        self,
        start: K | None = None,
        end: K | None = None,
        *,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[K, V]]:
        """``(key, value)`` pairs with ``start <= key < end`` in serialized-key order (as
        ``KeyValueStore.range``)."""
        return self._synced().range(
            start, end, start_inclusive=start_inclusive, end_inclusive=end_inclusive
        )

    def items(self) -> Iterator[tuple[K, V]]:
        """Every ``(key, value)`` pair in serialized-key order."""
        return self._synced().items()

    def keys(self) -> Iterator[K]:
        """Every key in serialized-key order."""
        return self._synced().keys()

    def __iter__(self) -> Iterator[K]:
        return self.keys()

    @property
    def partition(self) -> int | None:
        """The input partition this instance serves (None: not partitioned)."""
        return self._h.context.partition

    def metrics(self) -> dict[str, Any]:
        """Figures of the store's layers while it is open (a changelog: ``restoring``,
        ``restored_records``, writes in flight); empty before it opened and after it
        closed."""
        h = self._h
        return h.engine.metrics() if h.state == _OPEN else {}

    def __repr__(self) -> str:
        state = ("new", "open", "closed")[self._h.state]
        return f"<StoreView {self.name!r} {state}>"


class _WindowSource(Protocol):
    """What a :class:`WindowStoreView` reads: the windowed operator's logic
    (``reactive._ops.windows_store``)."""

    def query_windows(self, key: Any, time_from: Any, time_to: Any) -> list[Windowed[Any, Any]]:
        """The windows of ``key`` whose start is in ``[time_from, time_to]`` (None: no
        bound), in start order."""
        ...

    def query_all_windows(self, time_from: Any, time_to: Any) -> list[Windowed[Any, Any]]:
        """Every window whose start is in ``[time_from, time_to]``, in start order."""
        ...

    def query_count(self) -> int:
        """The number of windows held."""
        ...


def _check_bound(what: str, bound: Any) -> None:
    if bound is None:
        return
    if isinstance(bound, bool) or not isinstance(bound, int | float) or bound != bound:
        raise TypeError(
            f"WindowStoreView: {what} must be a time in seconds (int or float, not NaN) "
            f"or None, got {bound!r}"
        )


class WindowStoreView(Generic[K, V]):
    """A read-only view of the windows a windowed operator (``windowed(...,
    store=...)``) holds in its store, queryable while the stage runs (Kafka Streams'
    ``ReadOnlyWindowStore`` / ``ReadOnlySessionStore``). The operator registers it in
    its materializer's :class:`~reactive.state.StateRegistry` under the store's name and
    partition when its stage starts, and unregisters it when the stage stops; then
    every read raises :class:`~reactive.state.StoreClosedError`.

    Windows are ``Windowed(key, start, end, value)`` with their current aggregate (a
    copy of the list of elements without ``zero``/``aggregate``; a custom aggregate's
    value as the operator holds it, not a copy: do not change it). The windows held are
    what the store holds once its pending write batch is written: every open window,
    and every window closed but not emitted yet (waiting for downstream demand, or, with
    Kafka contexts, for the store's write to be acknowledged). A window leaves the view
    when it is emitted (its final value went downstream; the store deletes it with its
    next write batch), and with ``EmitStrategy.on_window_update()`` when it closes. The
    view reads the operator's own windows, not the store, so it is current after every
    element, flushed or not. While the stage restores its store (a changelog) the view
    is registered but not ready (:meth:`StateRegistry.is_ready`) and holds nothing yet.

    Reads run in the stream's event loop, between two elements (as the operator runs);
    each returns a list, a snapshot.
    """

    __slots__ = ("_source", "_name", "_partition", "_kind")

    def __init__(self, source: _WindowSource, name: str, partition: int | None, kind: str) -> None:
        self._source: _WindowSource | None = source
        self._name = name
        self._partition = partition
        self._kind = kind

    @property
    def name(self) -> str:
        """The store's name."""
        return self._name

    @property
    def partition(self) -> int | None:
        """The input partition this instance serves (None: not partitioned)."""
        return self._partition

    @property
    def kind(self) -> str:
        """``"time"`` (tumbling and hopping), ``"session"`` or ``"sliding"``."""
        return self._kind

    @property
    def is_open(self) -> bool:
        """True while the stage runs (the view answers)."""
        return self._source is not None

    def _open(self) -> _WindowSource:
        source = self._source
        if source is None:
            raise StoreClosedError(f"windowed store {self._name!r} is closed: its stream stopped")
        return source

    def close(self) -> None:
        """Stop answering (the operator calls it when its stage stops)."""
        self._source = None

    def fetch(
        self, key: K, time_from: float | None = None, time_to: float | None = None
    ) -> list[Windowed[K, V]]:
        """The windows of ``key`` whose start is in ``[time_from, time_to]`` (both
        inclusive; None: unbounded), in start order. ``fetch(key)``: every window of the
        key (a session store's ``fetch(key)``: its sessions). Empty for a key without
        windows, or ``time_from > time_to``."""
        _check_bound("time_from", time_from)
        _check_bound("time_to", time_to)
        source = self._open()
        try:
            hash(key)
        except TypeError as exc:
            raise TypeError(
                f"windowed store {self._name!r}: a key must be hashable, got {key!r}"
            ) from exc
        return source.query_windows(key, time_from, time_to)

    def backward_fetch(
        self, key: K, time_from: float | None = None, time_to: float | None = None
    ) -> list[Windowed[K, V]]:
        """:meth:`fetch` in reverse order (latest start first)."""
        out = self.fetch(key, time_from, time_to)
        out.reverse()
        return out

    def fetch_all(
        self, time_from: float | None = None, time_to: float | None = None
    ) -> list[Windowed[K, V]]:
        """Every window whose start is in ``[time_from, time_to]`` (None: unbounded),
        ordered by start, then end, then the order in which their keys were first seen."""
        _check_bound("time_from", time_from)
        _check_bound("time_to", time_to)
        return self._open().query_all_windows(time_from, time_to)

    def backward_fetch_all(
        self, time_from: float | None = None, time_to: float | None = None
    ) -> list[Windowed[K, V]]:
        """:meth:`fetch_all` in reverse order."""
        out = self.fetch_all(time_from, time_to)
        out.reverse()
        return out

    def __len__(self) -> int:
        """The number of windows held."""
        return self._open().query_count()

    def __repr__(self) -> str:
        state = "open" if self._source is not None else "closed"
        return f"<WindowStoreView {self._name!r} {self._kind} {state}>"
