"""``Keep`` combiners for materialized values, and the ``NotUsed`` / ``Done`` markers."""

from __future__ import annotations

from typing import Any, ClassVar, Final, Self, TypeVar, cast

__all__ = ["Keep", "NotUsed", "Done", "NotUsedType", "DoneType"]

L = TypeVar("L")
R = TypeVar("R")


class _Marker:
    """A value with one instance per subclass, shown (and pickled) as its ``_name``."""

    __slots__ = ()
    _name: ClassVar[str]

    def __new__(cls) -> Self:
        inst = cls.__dict__.get("_inst")
        if inst is None:
            inst = super().__new__(cls)
            cls._inst = inst
        return cast("Self", inst)

    def __repr__(self) -> str:
        return self._name

    def __reduce__(self) -> str:
        return self._name  # the module-level name of the one instance


class NotUsedType(_Marker):
    """The type of ``NotUsed``: a materialized value that carries no information."""

    __slots__ = ()
    _name = "NotUsed"


class DoneType(_Marker):
    """The type of ``Done``: the result of a sink that computes nothing."""

    __slots__ = ()
    _name = "Done"


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
