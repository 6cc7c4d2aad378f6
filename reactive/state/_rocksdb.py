"""The persistent storage engine on RocksDB, through ``rocksdict`` (the ``state`` extra).

RocksDB is what Kafka Streams, Quix Streams and Faust keep their state in. The database
is opened in raw mode (``bytes`` keys and values, RocksDB's bytewise comparator); a
``write`` is one RocksDB ``WriteBatch`` (atomic); ``flush`` flushes the memtables to disk.
Writes go through RocksDB's write-ahead log, so a process killed without ``close`` loses
nothing that ``put``/``write`` returned for (the WAL is synced by the OS, not on every
write: a machine crash may lose the last writes, as with Kafka Streams' defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._store import BytesStore

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ["RocksDBBytesStore"]


def _rocksdict() -> Any:
    try:
        import rocksdict
    except ImportError as exc:
        raise ImportError(
            "persistent stores need rocksdict: pip install 'reactive-streams-py[state]'"
        ) from exc
    return rocksdict


class RocksDBBytesStore(BytesStore):
    """A :class:`~reactive.state.BytesStore` in a RocksDB database at ``path`` (a
    directory, created if missing). One process may open a path once at a time.

    ``len()`` counts the keys by iterating them (RocksDB keeps only an estimate): O(n).
    """

    __slots__ = ("name", "path", "_db", "_rd")

    def __init__(self, path: str | Path, name: str | None = None) -> None:
        rd = _rocksdict()
        self.path = Path(path)
        self.name = name if name is not None else self.path.name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = rd.Options(raw_mode=True)
        options.create_if_missing(True)
        try:
            self._db: Any = rd.Rdict(str(self.path), options)
        except Exception as exc:
            raise OSError(
                f"store {self.name!r}: cannot open RocksDB at {str(self.path)!r} "
                f"(another open store or process holds it?): {exc}"
            ) from exc
        self._rd = rd

    @property
    def is_open(self) -> bool:
        """False once closed."""
        return self._db is not None

    def _handle(self) -> Any:
        db = self._db
        if db is None:
            raise self._closed()
        return db

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None."""
        value: bytes | None = self._handle().get(key)
        return value

    def contains(self, key: bytes) -> bool:
        """True if ``key`` has a value."""
        return self._handle().get(key) is not None

    def __len__(self) -> int:
        it = self._handle().iter()
        it.seek_to_first()
        n = 0
        while it.valid():
            n += 1
            it.next()
        return n

    def put(self, key: bytes, value: bytes) -> None:
        """Set ``key`` to ``value``."""
        self._handle().put(key, value)

    def delete(self, key: bytes) -> None:
        """Remove ``key``."""
        self._handle().delete(key)

    def write(self, ops: Sequence[tuple[bytes, bytes | None]]) -> None:
        """Apply ``ops`` as one RocksDB write batch (atomic)."""
        db = self._handle()
        wb = self._rd.WriteBatch(raw_mode=True)
        for k, v in ops:
            if v is None:
                wb.delete(k)
            else:
                wb.put(k, v)
        db.write(wb)

    def scan(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        start_inclusive: bool = True,
        end_inclusive: bool = False,
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs between ``start`` and ``end`` in bytewise key order (a
        RocksDB iterator: a consistent snapshot of the database when the scan began)."""
        it = self._handle().iter()
        return self._scan(it, start, end, start_inclusive, end_inclusive)

    def _scan(
        self,
        it: Any,
        start: bytes | None,
        end: bytes | None,
        start_inclusive: bool,
        end_inclusive: bool,
    ) -> Iterator[tuple[bytes, bytes]]:
        if self._db is None:
            raise self._closed()
        if start is None:
            it.seek_to_first()
        else:
            it.seek(start)
            if not start_inclusive and it.valid() and it.key() == start:
                it.next()
        while it.valid():
            if self._db is None:
                raise self._closed()
            k = it.key()
            if end is not None and (k > end or (k == end and not end_inclusive)):
                return
            yield k, it.value()
            it.next()

    def flush(self) -> None:
        """Flush RocksDB's memtables to disk."""
        self._handle().flush()

    def close(self) -> None:
        """Flush and close the database; idempotent."""
        db = self._db
        if db is None:
            return
        self._db = None
        try:
            db.flush()
        finally:
            db.close()

    def __repr__(self) -> str:
        return f"<RocksDBBytesStore {self.name!r} at {str(self.path)!r}>"
