"""``Keep`` combiners for materialized values, and the ``NotUsed`` / ``Done`` markers."""

from __future__ import annotations

from typing import Any, Final, TypeVar

__all__ = ["Keep", "NotUsed", "Done", "NotUsedType", "DoneType"]

L = TypeVar("L")
R = TypeVar("R")


class NotUsedType:
    """The type of ``NotUsed``: a materialized value that carries no information."""

    __slots__ = ()
    _inst: NotUsedType | None = None

    def __new__(cls) -> NotUsedType:  # noqa: PYI034 - a singleton: always the one instance
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "NotUsed"

    def __reduce__(self) -> str:
        return "NotUsed"


class DoneType:
    """The type of ``Done``: the result of a sink that computes nothing."""

    __slots__ = ()
    _inst: DoneType | None = None

    def __new__(cls) -> DoneType:  # noqa: PYI034 - a singleton: always the one instance
        if cls._inst is None:
            cls._inst = super().__new__(cls)
        return cls._inst

    def __repr__(self) -> str:
        return "Done"

    def __reduce__(self) -> str:
        return "Done"


NotUsed: Final = NotUsedType()
"""Materialized value of stages that have none."""
Done: Final = DoneType()
"""Successful result of sinks that compute nothing (``Sink.ignore``, ``Sink.foreach``)."""


class Keep:
    """Which materialized value to keep when composing: left, right, both or none."""

    @staticmethod
    def left(left: L, right: Any) -> L:
        """Keep the left (upstream) value."""
        return left

    @staticmethod
    def right(left: Any, right: R) -> R:
        """Keep the right (downstream) value."""
        return right

    @staticmethod
    def both(left: L, right: R) -> tuple[L, R]:
        """Keep both as a tuple ``(left, right)``."""
        return (left, right)

    @staticmethod
    def none(left: Any, right: Any) -> NotUsedType:
        """Keep neither: ``NotUsed``."""
        return NotUsed
