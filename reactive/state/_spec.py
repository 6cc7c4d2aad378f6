"""Store declarations: a :class:`StoreSpec` is part of a blueprint and opens one store per
materialization (with partitioned sources, one per partition: ``StoreContext.partition``).

How a changelog (or anything that must see every write) plugs in: a *layer* is a function
``layer(bytes_store, context) -> BytesStore`` given to :meth:`StoreSpec.with_layer`; it
returns a :class:`~reactive.state.BytesStore` wrapping the engine. The wrapper sees every
write as bytes (``put``/``delete``/``write`` of a flushed batch) and the context of the
store instance: its name, the operator that owns it and the partition it serves
(:meth:`StoreSpec.for_partition`). A layer may also override ``BytesStore.prepare``
(async work before the operator's first element: a restore), ``durable`` (a future of
the acknowledgement of the writes so far) and ``metrics``; ``connectors.kafka.state`` is
the changelog layer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, TypeVar

from ._memory import InMemoryBytesStore
from ._serde import MsgpackSerde, Serde
from ._store import BytesStore, KeyValueStore

__all__ = ["StoreSpec", "Stores", "StoreContext", "DEFAULT_CACHE_SIZE"]

K = TypeVar("K")
V = TypeVar("V")

#: Entries an operator keeps in front of its store by default (see ``StoreSpec``).
DEFAULT_CACHE_SIZE = 10_000
#: Seconds between two write batches of a windowed operator's cache, at the latest (Kafka
#: Streams' ``commit.interval.ms`` default: 30 s).
DEFAULT_COMMIT_INTERVAL = 30.0

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class StoreContext:
    """Where one store instance lives: ``owner`` is the operator that opened it (its
    stage name), ``partition`` the input partition it serves (None: not partitioned)."""

    name: str
    owner: str = ""
    partition: int | None = None


Layer = Callable[[BytesStore, StoreContext], BytesStore]


@dataclass(frozen=True)
class StoreSpec(Generic[K, V]):
    """A store declared in a blueprint; :meth:`open` creates an instance.

    ``kind`` is ``"memory"`` or ``"persistent"``; ``path`` is the directory of persistent
    stores (an instance lives in ``path/name``, or ``path/name.<partition>``).
    ``cache_size``: how many entries a stateful operator keeps as objects in front of
    the store. Reads hit the cache; writes stay in it (dirty) and go to the store as one
    atomic write batch when the cache is full, when a view scans, and when the stream
    stops. 0 keeps nothing between batches: the updates of each batch of elements are
    written before they are emitted. ``commit_interval``: seconds (on the materializer's
    clock) after which a ``windowed`` operator writes its cache as a batch however few
    elements came, as Kafka Streams flushes its caches every ``commit.interval.ms``
    (default 30 s; None: only by ``cache_size`` and at the stop). Build specs with
    :class:`Stores`.
    """

    name: str
    kind: str = "memory"
    path: Path | None = None
    key_serde: Serde[K] | None = None
    value_serde: Serde[V] | None = None
    cache_size: int = DEFAULT_CACHE_SIZE
    layers: tuple[Layer, ...] = ()
    partition: int | None = None
    commit_interval: float | None = DEFAULT_COMMIT_INTERVAL

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"store name must be a non-empty str of letters, digits, '.', '_' or '-' "
                f"(it names a directory and a changelog topic), got {self.name!r}"
            )
        if type(self.cache_size) is not int or self.cache_size < 0:
            raise ValueError(
                f"store {self.name!r}: cache_size must be an int >= 0, got {self.cache_size!r}"
            )
        if self.partition is not None and (type(self.partition) is not int or self.partition < 0):
            raise ValueError(
                f"store {self.name!r}: partition must be an int >= 0 or None, "
                f"got {self.partition!r}"
            )
        ci = self.commit_interval
        if ci is not None and (
            isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < math.inf
        ):
            raise ValueError(
                f"store {self.name!r}: commit_interval must be a number of seconds > 0 "
                f"(finite) or None, got {ci!r}"
            )
        for what, serde in (("key_serde", self.key_serde), ("value_serde", self.value_serde)):
            if serde is not None and not isinstance(serde, Serde):
                raise TypeError(
                    f"store {self.name!r}: {what} must have to_bytes and from_bytes, got {serde!r}"
                )

    def with_layer(self, layer: Layer) -> StoreSpec[K, V]:
        """A copy whose instances wrap the engine with ``layer(engine, context)``
        (outermost last): the hook for changelogs and metrics."""
        if not callable(layer):
            raise TypeError(f"store {self.name!r}: a layer must be callable, got {layer!r}")
        return replace(self, layers=(*self.layers, layer))

    def for_partition(self, partition: int | None) -> StoreSpec[K, V]:
        """A copy whose instances serve input partition ``partition`` (their
        ``StoreContext.partition``: a persistent instance lives in ``path/name.<partition>``,
        a changelog writes to that partition). Use one per partition of a partitioned
        source; None: not partitioned."""
        return replace(self, partition=partition)

    def with_cache_size(self, cache_size: int) -> StoreSpec[K, V]:
        """A copy with another ``cache_size`` (0: write every batch before emitting it)."""
        return replace(self, cache_size=cache_size)

    def with_commit_interval(self, seconds: float | None) -> StoreSpec[K, V]:
        """A copy with another ``commit_interval`` (seconds > 0; None: no timer)."""
        return replace(self, commit_interval=seconds)

    def location(self, context: StoreContext) -> Path | None:
        """The directory of the instance for ``context`` (None in memory)."""
        if self.path is None:
            return None
        leaf = self.name if context.partition is None else f"{self.name}.{context.partition}"
        return self.path / leaf

    def open(self, context: StoreContext | None = None) -> KeyValueStore[K, V]:
        """Open an instance (an operator does this when its stage starts; call it
        yourself to read a persistent store outside a stream)."""
        ctx = context if context is not None else StoreContext(self.name, "", self.partition)
        engine: BytesStore
        if self.kind == "persistent":
            from ._rocksdb import RocksDBBytesStore

            loc = self.location(ctx)
            assert loc is not None
            engine = RocksDBBytesStore(loc, self.name)
        else:
            engine = InMemoryBytesStore(self.name)
        try:
            for layer in self.layers:
                engine = layer(engine, ctx)
        except BaseException:
            engine.close()
            raise
        ks: Any = self.key_serde if self.key_serde is not None else MsgpackSerde()
        vs: Any = self.value_serde if self.value_serde is not None else MsgpackSerde()
        return KeyValueStore(self.name, engine, ks, vs)


class Stores:
    """Factories of :class:`StoreSpec`."""

    @staticmethod
    def in_memory(
        name: str,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        commit_interval: float | None = DEFAULT_COMMIT_INTERVAL,
    ) -> StoreSpec[Any, Any]:
        """A store in memory (the default): lost when its stream stops."""
        return StoreSpec(
            name,
            "memory",
            None,
            key_serde,
            value_serde,
            cache_size,
            commit_interval=commit_interval,
        )

    @staticmethod
    def persistent(
        name: str,
        path: str | Path,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        commit_interval: float | None = DEFAULT_COMMIT_INTERVAL,
    ) -> StoreSpec[Any, Any]:
        """A RocksDB store in ``path/name`` that outlives its stream (the ``state``
        extra: rocksdict)."""
        if not isinstance(path, (str, Path)):
            raise TypeError(
                f"Stores.persistent({name!r}): path must be a str or Path, got {path!r}"
            )
        return StoreSpec(
            name,
            "persistent",
            Path(path),
            key_serde,
            value_serde,
            cache_size,
            commit_interval=commit_interval,
        )
