"""The in-memory storage engine: a dict of bytes plus a lazily sorted key index.

Why not ``sortedcontainers.SortedDict``: it is not a dependency of the core, and the
default store should not need one. A write is one dict operation; a new key is appended
to ``_pending`` and a deleted one counted in ``_stale``. The sorted index is brought up to
date only when a scan needs it: the live keys of the old index are one sorted run and the
new keys another, so ``list.sort`` (Timsort, which merges runs) costs O(n + p log p) for
``p`` new keys, not O(n log n); a scan is then a ``bisect`` plus a walk. Streams that
write a lot and scan rarely (a keyed aggregation queried now and then) pay almost nothing
for order.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING

from ._store import BytesStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["InMemoryBytesStore"]


class InMemoryBytesStore(BytesStore):
    """A :class:`~reactive.state.BytesStore` in memory (the default engine); keys ordered
    bytewise as in RocksDB. ``close()`` drops the data."""

    __slots__ = ("name", "_data", "_index", "_pending", "_stale", "_open")

    def __init__(self, name: str = "in-memory") -> None:
        self.name = name
        self._data: dict[bytes, bytes] = {}
        self._index: list[bytes] = []
        self._pending: list[bytes] = []
        self._stale = 0
        self._open = True

    @property
    def is_open(self) -> bool:
        """False once closed."""
        return self._open

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        if not self._open:
            raise self._closed()
        return self._data.get(key)

    def contains(self, key: bytes) -> bool:
        """True if ``key`` has a value."""
        if not self._open:
            raise self._closed()
        return key in self._data

    def __len__(self) -> int:
        if not self._open:
            raise self._closed()
        return len(self._data)

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        if not self._open:
            raise self._closed()
        data = self._data
        if key not in data:
            self._pending.append(key)
        data[key] = value

    def delete(self, key: bytes) -> None:
        """Remove ``key``."""
        if not self._open:
            raise self._closed()
        if self._data.pop(key, None) is not None:
            self._stale += 1

    def write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply ``ops`` in order (nothing can fail half-way: keys and values are bytes)."""
        if not self._open:
            raise self._closed()
        for k, v in ops:
            if type(k) is not bytes or (v is not None and type(v) is not bytes):
                raise TypeError(f"store {self.name!r}: keys and values must be bytes")
        data = self._data
        pending = self._pending
        for k, v in ops:
            if v is None:
                if data.pop(k, None) is not None:
                    self._stale += 1
            else:
                if k not in data:
                    pending.append(k)
                data[k] = v

    def _sorted(self) -> list[bytes]:
        """The sorted index of live keys, brought up to date (see the module docstring)."""
        pending = self._pending
        if not pending and not self._stale:
            return self._index
        data = self._data
        if self._stale:
            base = [k for k in self._index if k in data]
            # A key deleted and put again is live in ``base`` and listed in ``pending``.
            known = set(base)
            new = {k for k in pending if k in data and k not in known}
        else:
            base = self._index[:]  # a scan still walking the old index keeps it
            new = set(pending)  # no delete since: pending keys are new and live
        base.extend(sorted(new))
        base.sort()
        self._index = base
        self._pending = []
        self._stale = 0
        return base

    def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs between ``start`` and ``end`` in bytewise key order: the
        keys present when ``scan`` is called (as a RocksDB iterator's snapshot), skipping
        those deleted since, each with its value when it is reached."""
        if not self._open:
            raise self._closed()
        # The keys are taken now, not at the first next(): a key put between the call and
        # the first read is not in the scan (RocksDB's iterator is created here too).
        index = self._sorted()
        i = 0 if start is None else (bisect_left if start_inclusive else bisect_right)(index, start)
        if end is None:
            j = len(index)
        else:
            j = (bisect_right if end_inclusive else bisect_left)(index, end)
        return self._scan(index, i, j)

    def _scan(self, index: list[bytes], i: int, j: int) -> Iterator[tuple[bytes, bytes]]:
        while i < j:
            if not self._open:
                raise self._closed()
            k = index[i]
            i += 1
            v = self._data.get(k)
            if v is not None:
                yield k, v

    def flush(self) -> None:
        """Nothing to do in memory (checks the store is open)."""
        if not self._open:
            raise self._closed()

    def close(self) -> None:
        """Drop the data; idempotent."""
        self._open = False
        self._data = {}
        self._index = []
        self._pending = []
        self._stale = 0

    def __repr__(self) -> str:
        return f"<InMemoryBytesStore {self.name!r} keys={len(self._data)}>"
