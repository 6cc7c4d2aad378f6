"""Buffers with overflow strategies (``buffer``, ``detach``)."""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import BufferOverflowError
from .simple import FlowLogic, FlowStage

if TYPE_CHECKING:
    from .._stage.logic import GraphStageLogic

__all__ = ["OverflowStrategy", "Buffer"]


class OverflowStrategy(enum.Enum):
    """What a full buffer does with a new element."""

    drop_head = "drop_head"
    """Drop the oldest buffered element to make room."""
    drop_tail = "drop_tail"
    """Drop the newest buffered element to make room."""
    drop_buffer = "drop_buffer"
    """Drop the whole buffer to make room."""
    drop_new = "drop_new"
    """Drop the incoming element."""
    backpressure = "backpressure"
    """Stop pulling upstream until there is room."""
    fail = "fail"
    """Fail the stream with ``BufferOverflowError``."""

    def __repr__(self) -> str:
        return f"OverflowStrategy.{self.value}"


class Buffer(FlowStage):
    """``buffer(size, overflow_strategy)``.

    Emits when downstream pulls and the buffer is not empty. Backpressures when the
    buffer is full and the strategy is ``backpressure``. Completes when upstream
    completed and the buffer was emptied. Fails at once on upstream failure (buffered
    elements are dropped) or on overflow with ``fail``.
    """

    name = "buffer"

    def __init__(self, size: int, strategy: OverflowStrategy, name: str | None = None) -> None:
        if size < 1:
            raise ValueError(f"buffer size must be >= 1, got {size}")
        if not isinstance(strategy, OverflowStrategy):
            raise TypeError(f"overflow_strategy must be an OverflowStrategy, got {strategy!r}")
        super().__init__()
        self.size = size
        self.strategy = strategy
        if name:
            self.name = name

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _BufferLogic(self.shape, self.size, self.strategy)


class _BufferLogic(FlowLogic):
    def __init__(self, shape: Any, size: int, strategy: OverflowStrategy) -> None:
        super().__init__(shape)
        self.size = size
        self.strategy = strategy
        self.buf: deque[Any] = deque()

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        buf = self.buf
        s = self.strategy
        if self.is_available(self.out) and not buf:
            self.push(self.out, x)
        elif len(buf) < self.size:
            buf.append(x)
        elif s is OverflowStrategy.drop_head:
            buf.popleft()
            buf.append(x)
        elif s is OverflowStrategy.drop_tail:
            buf.pop()
            buf.append(x)
        elif s is OverflowStrategy.drop_buffer:
            buf.clear()
            buf.append(x)
        elif s is OverflowStrategy.drop_new:
            pass
        elif s is OverflowStrategy.fail:
            self.fail_stage(
                BufferOverflowError(
                    f"[{self._stage_name}] buffer overflow (max capacity was {self.size})"
                )
            )
            return
        else:  # pragma: no cover - backpressure never pulls when full
            buf.append(x)
        if s is not OverflowStrategy.backpressure or len(buf) < self.size:
            self.pull(self.in_)

    def on_pull(self) -> None:
        buf = self.buf
        if buf:
            self.push(self.out, buf.popleft())
            if self.is_closed(self.in_):
                if not buf:
                    self.complete_stage()
            elif not self.has_been_pulled(self.in_):
                self.pull(self.in_)
        elif self.is_closed(self.in_):
            self.complete_stage()

    def on_upstream_finish(self) -> None:
        if not self.buf:
            self.complete_stage()
