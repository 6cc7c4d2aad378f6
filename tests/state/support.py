"""Helpers shared by the state test files (imported as ``tests.state.support``)."""

from __future__ import annotations

from typing import Any

from reactive.state import BytesStore, StoreContext


class Recording(BytesStore):
    """A layer: forwards to the engine and records what it sees."""

    def __init__(self, inner: BytesStore, context: StoreContext, log: list[Any]) -> None:
        self.inner = inner
        self.name = inner.name
        self.log = log
        log.append(("open", context))

    def get(self, key: bytes) -> bytes | None:
        return self.inner.get(key)

    def put(self, key: bytes, value: bytes) -> None:
        self.log.append(("put", key, value))
        self.inner.put(key, value)

    def delete(self, key: bytes) -> None:
        self.log.append(("delete", key))
        self.inner.delete(key)

    def contains(self, key: bytes) -> bool:
        return self.inner.contains(key)

    def __len__(self) -> int:
        return len(self.inner)

    def scan(self, start: Any = None, end: Any = None, si: bool = True, ei: bool = False) -> Any:
        return self.inner.scan(start, end, si, ei)

    def write(self, ops: Any) -> None:
        self.log.append(("write", list(ops)))
        self.inner.write(ops)

    def flush(self) -> None:
        self.log.append(("flush",))
        self.inner.flush()

    def close(self) -> None:
        self.log.append(("close",))
        self.inner.close()

    @property
    def is_open(self) -> bool:
        return self.inner.is_open
