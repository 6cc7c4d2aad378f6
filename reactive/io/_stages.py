"""Shared pieces of the IO stages: the one-in one-out stage base and argument checks.

The errors of ``reactive.io`` are defined in ``reactive/io/errors.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..stage import FlowShape, GraphStage, GraphStageLogic, InHandler, Inlet, OutHandler, Outlet

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = [
    "ByteFlowStage",
    "ByteFlowLogic",
]


class ByteFlowStage(GraphStage[FlowShape]):
    """A one-in one-out stage whose ports are named ``<name>.in`` / ``<name>.out``."""

    name = "io"

    def __init__(self) -> None:
        self.shape = FlowShape(Inlet(f"{self.name}.in"), Outlet(f"{self.name}.out"))

    def __repr__(self) -> str:
        return self.name


class ByteFlowLogic(GraphStageLogic, InHandler, OutHandler):
    """A logic that is its own handler for the inlet and the outlet of a ByteFlowStage."""

    def __init__(self, shape: FlowShape) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.out: Outlet[Any] = shape.out
        self.set_handlers(self.in_, self.out, self)


def require_bytes(op: str, x: Any, position: int) -> bytes:
    """``x`` as bytes, or a TypeError naming the operator and what it got."""
    if isinstance(x, bytes | bytearray | memoryview):
        return bytes(x)
    raise TypeError(
        f"[{op}] expects bytes-like elements, got {type(x).__name__} {x!r:.60} "
        f"at stream byte position {position}"
    )


def require_positive_int(op: str, name: str, value: Any) -> int:
    """``value`` if it is an int > 0, else a ValueError naming the operator argument."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{op}: {name} must be a positive int, got {value!r}")
    return value


async def outcome(make: Callable[[], Awaitable[Any]]) -> tuple[bool, Any]:
    """``(True, result)`` or ``(False, exception)`` of awaiting ``make()``: a task running
    it never ends in an exception nobody retrieves. It takes a factory: a task cancelled
    before it ran leaves no coroutine un-awaited."""
    try:
        return True, await make()
    except Exception as e:
        return False, e
