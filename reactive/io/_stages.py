"""Shared pieces of the IO stages: the one-in one-out stage base and the error tree.

::

    StreamError
     +-- IOStreamError                 base of the errors raised by reactive.io
          +-- FramingError             a frame over its limit, a truncated frame, bad JSON
          |    +-- PartialObjectError  the stream ended inside a JSON object
          +-- CompressionError         corrupt or truncated compressed input
          +-- IOOperationIncompleteError  a file/TCP stage failed after ``count`` bytes
"""

from __future__ import annotations

from typing import Any

from .._errors import StreamError
from ..stage import FlowShape, GraphStage, GraphStageLogic, InHandler, Inlet, OutHandler, Outlet

__all__ = [
    "IOStreamError",
    "FramingError",
    "PartialObjectError",
    "CompressionError",
    "IOOperationIncompleteError",
    "ByteFlowStage",
    "ByteFlowLogic",
]


class IOStreamError(StreamError):
    """Base class of the errors raised by the stream IO stages (``reactive.io``)."""


class FramingError(IOStreamError):
    """A framing stage met a frame over its maximum length, a truncated last frame, or
    input it cannot frame; the message names the stage, the limit and the byte position.
    (Akka's ``FramingException``.)"""


class PartialObjectError(FramingError):
    """``JsonFraming.object_scanner``: the stream completed in the middle of a JSON object."""


class CompressionError(IOStreamError):
    """A decompressing stage met corrupt or truncated input; the message names the stage
    and the input byte position."""


class IOOperationIncompleteError(IOStreamError):
    """A file or connection stage failed after transferring ``count`` bytes; the original
    error is ``__cause__``. (Akka's ``IOOperationIncompleteException``.)"""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


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
