"""reactive.state: key-value stores for stateful operators.

- :class:`Stores` declares a store in a blueprint (:class:`StoreSpec`); each
  materialization of a stateful operator opens its own instance when its stage starts
  and flushes and closes it when the stage stops, whatever the ending.
- :class:`KeyValueStore` is the typed store interface (get, put, delete, ``in``, ``len``,
  ordered ``range``/``items``/``keys``, atomic :class:`WriteBatch`, flush, close) over a
  :class:`BytesStore` engine: :class:`InMemoryBytesStore` (the default) or
  :class:`RocksDBBytesStore` (persistent; the ``state`` extra, rocksdict).
- Keys and values are serialized with msgpack (:class:`MsgpackSerde`) unless a
  :class:`Serde` is given; order is the bytewise order of the serialized keys, and
  :class:`OrderedKeySerde` makes that the natural order of ints, floats, strings and
  tuples.
- ``aggregate_by_key`` and ``stateful_map_by_key`` (on ``Source``/``Flow``/``SubFlow``)
  keep their state in a store and materialize a :class:`StoreView`; ``windowed`` with a
  store registers a :class:`WindowStoreView` (fetch a key's windows by start time).
- :class:`StateRegistry` (one per materializer: :func:`registry_of`) holds the views of
  the running stores by name and partition; ``reactive.state.http`` serves it over HTTP.

Module map: ``_store`` (interfaces), ``_memory`` and ``_rocksdb`` (engines), ``_serde``,
``_spec`` (declarations and the layer hook for changelogs), ``_view``, ``_registry``,
``errors`` (``StoreClosedError``, ``KeySerdeError``, ``OwnershipNotReadyError``).
"""

from .._public import publish as _publish
from ._memory import InMemoryBytesStore
from ._registry import StateRegistry, registry_of
from ._rocksdb import RocksDBBytesStore
from ._serde import MsgpackSerde, OrderedKeySerde, Serde
from ._spec import DEFAULT_CACHE_SIZE, StoreContext, Stores, StoreSpec
from ._store import BytesStore, KeyValueStore, ReadOnlyKeyValueStore, StoreLayer, WriteBatch
from ._view import StoreView, WindowStoreView
from .errors import KeySerdeError, OwnershipNotReadyError, StoreClosedError

__all__ = [
    "BytesStore",
    "DEFAULT_CACHE_SIZE",
    "InMemoryBytesStore",
    "KeySerdeError",
    "KeyValueStore",
    "MsgpackSerde",
    "OrderedKeySerde",
    "OwnershipNotReadyError",
    "ReadOnlyKeyValueStore",
    "RocksDBBytesStore",
    "Serde",
    "StateRegistry",
    "StoreClosedError",
    "StoreContext",
    "StoreLayer",
    "StoreSpec",
    "StoreView",
    "Stores",
    "WindowStoreView",
    "WriteBatch",
    "registry_of",
]

_publish(__name__, globals())
