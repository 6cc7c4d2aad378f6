"""Ports and shapes: the typed connection points of stages and graphs."""

from __future__ import annotations

import copy
from typing import Any, Generic, TypeVar

from .._errors import IllegalGraphError

__all__ = [
    "Inlet",
    "Outlet",
    "Shape",
    "SourceShape",
    "FlowShape",
    "SinkShape",
    "ClosedShape",
    "FanInShape2",
    "FanInShapeN",
    "FanOutShape2",
    "UniformFanInShape",
    "UniformFanOutShape",
    "BidiShape",
    "AmorphousShape",
]

T = TypeVar("T")


def _port_at(ports: tuple[Any, ...], i: Any, call: str) -> Any:
    """``ports[i]``, or an error naming the ports when ``i`` is not one of their numbers
    (a negative ``i`` would silently pick from the end)."""
    if type(i) is int and 0 <= i < len(ports):
        return ports[i]
    names = ", ".join(p.name for p in ports)
    raise IllegalGraphError(
        f"{call}({i!r}): no such port; the numbers are 0..{len(ports) - 1} ({names})"
        if ports
        else f"{call}({i!r}): no such port; the shape has none"
    )


class _Port:
    __slots__ = ("name", "_builder", "_origin")

    def __init__(self, name: str) -> None:
        self.name = name
        # Set on the copies a GraphDSL builder hands out; lets ``>>`` find its builder.
        self._builder: Any = None
        self._origin: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class Inlet(_Port, Generic[T]):
    """An input port of a stage, named like ``Map.in``."""

    __slots__ = ()

    def carbon_copy(self) -> Inlet[T]:
        """A fresh port with the same name."""
        return Inlet(self.name)


class Outlet(_Port, Generic[T]):
    """An output port of a stage, named like ``Map.out``."""

    __slots__ = ()

    def carbon_copy(self) -> Outlet[T]:
        """A fresh port with the same name."""
        return Outlet(self.name)

    def __rshift__(self, other: Any) -> Any:
        b = self._builder
        if b is None:
            from .._errors import IllegalGraphError

            raise IllegalGraphError(
                f"'>>' on port {self.name!r} outside a GraphDSL builder; use the port returned "
                "by b.add(...)"
            )
        return b._chain(self, other)


def _rebound(
    shape: Shape, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
) -> Shape:
    """A copy of ``shape`` (a user's subclass) with its ports replaced position by position."""
    old = (*shape.inlets, *shape.outlets)
    new = (*inlets, *outlets)
    if len(old) != len(new):
        raise ValueError(
            f"{type(shape).__name__}.copy_from_ports: {len(new)} ports given for a shape of "
            f"{len(old)}"
        )
    by_id = {id(p): q for p, q in zip(old, new, strict=True)}
    clone: Shape = copy.copy(shape)
    clone.inlets = tuple(inlets)
    clone.outlets = tuple(outlets)
    names = list(getattr(clone, "__dict__", ()))
    for cls in type(shape).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    for name in names:
        if name in ("inlets", "outlets", "__dict__", "__weakref__"):
            continue
        value = getattr(clone, name, None)
        if id(value) in by_id:
            setattr(clone, name, by_id[id(value)])
        elif isinstance(value, (tuple, list)) and value and all(id(v) in by_id for v in value):
            setattr(clone, name, type(value)(by_id[id(v)] for v in value))
    return clone


class Shape:
    """The ports a stage or graph exposes."""

    __slots__ = ("inlets", "outlets")

    inlets: tuple[Inlet[Any], ...]
    outlets: tuple[Outlet[Any], ...]

    def __init__(self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]) -> None:
        self.inlets = tuple(inlets)
        self.outlets = tuple(outlets)

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        """The same kind of shape over other ports (in the same order).

        A subclass of your own (a shape with named ports, as Akka's custom shapes) need
        not override it: the copy rebinds every attribute that holds one of the shape's
        ports, or a tuple or list of them, to the port at the same position. Override it
        when the shape keeps its ports some other way."""
        if type(self) is Shape:
            return Shape(inlets, outlets)
        return _rebound(self, inlets, outlets)

    def deep_copy(self) -> Shape:
        """The same kind of shape with fresh ports."""
        return self.copy_from_ports(
            tuple(i.carbon_copy() for i in self.inlets),
            tuple(o.carbon_copy() for o in self.outlets),
        )

    def __rshift__(self, other: Any) -> Any:
        outs = self.outlets
        if len(outs) > 1 and outs[0]._builder is not None:
            return outs[0]._builder._chain_shape(self, other)  # picks the free outlet
        if len(outs) != 1:
            from .._errors import IllegalGraphError

            raise IllegalGraphError(f"'>>' needs a shape with exactly one outlet, got {self!r}")
        return outs[0] >> other

    def __repr__(self) -> str:
        ins = ", ".join(i.name for i in self.inlets)
        outs = ", ".join(o.name for o in self.outlets)
        return f"{type(self).__name__}([{ins}], [{outs}])"


class _ClosedShape(Shape):
    """The shape of a runnable graph: no free ports (its one instance is ``ClosedShape``)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__((), ())

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return self

    def __repr__(self) -> str:
        return "ClosedShape"


ClosedShape = _ClosedShape()
"""The shape of a runnable graph: no free ports."""


class SourceShape(Shape, Generic[T]):
    """One outlet: ``shape.out``."""

    __slots__ = ("out",)

    def __init__(self, out: Outlet[T]) -> None:
        super().__init__((), (out,))
        self.out = out

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return SourceShape(outlets[0])


class SinkShape(Shape, Generic[T]):
    """One inlet: ``shape.in_``."""

    __slots__ = ("in_",)

    def __init__(self, in_: Inlet[T]) -> None:
        super().__init__((in_,), ())
        self.in_ = in_

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return SinkShape(inlets[0])


class FlowShape(Shape):
    """One inlet and one outlet: ``shape.in_``, ``shape.out``."""

    __slots__ = ("in_", "out")

    def __init__(self, in_: Inlet[Any], out: Outlet[Any]) -> None:
        super().__init__((in_,), (out,))
        self.in_ = in_
        self.out = out

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return FlowShape(inlets[0], outlets[0])


class FanInShapeN(Shape):
    """N named inlets ``in0..in(N-1)`` and one outlet ``out`` (Zip, ZipWith, ...)."""

    __slots__ = ("out", "_ins")

    def __init__(self, *ports: Any) -> None:
        *ins, out = ports
        super().__init__(tuple(ins), (out,))
        self._ins = tuple(ins)
        self.out = out

    def __getattr__(self, name: str) -> Any:
        if name.startswith("in") and name[2:].isdigit():
            idx = int(name[2:])
            if idx < len(self._ins):
                return self._ins[idx]
        raise AttributeError(name)

    def in_(self, i: int) -> Inlet[Any]:
        """Inlet number ``i``."""
        inlet: Inlet[Any] = _port_at(self._ins, i, "in_")
        return inlet

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return type(self)(*inlets, outlets[0])


class FanInShape2(FanInShapeN):
    """Two inlets ``in0``, ``in1`` and one outlet ``out``."""

    __slots__ = ()

    in0: Inlet[Any]
    in1: Inlet[Any]

    def __init__(self, in0: Inlet[Any], in1: Inlet[Any], out: Outlet[Any]) -> None:
        super().__init__(in0, in1, out)


class FanOutShape2(Shape):
    """One inlet ``in_`` and two outlets ``out0``, ``out1`` (Unzip)."""

    __slots__ = ("in_", "out0", "out1")

    def __init__(self, in_: Inlet[Any], out0: Outlet[Any], out1: Outlet[Any]) -> None:
        super().__init__((in_,), (out0, out1))
        self.in_ = in_
        self.out0 = out0
        self.out1 = out1

    def out(self, i: int) -> Outlet[Any]:
        """Outlet number ``i``."""
        outlet: Outlet[Any] = _port_at(self.outlets, i, "out")
        return outlet

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return FanOutShape2(inlets[0], outlets[0], outlets[1])


class UniformFanInShape(Shape):
    """``n`` inlets of one type, ``in_(i)``, and one outlet ``out``."""

    __slots__ = ("out", "n")

    def __init__(self, out: Outlet[Any], *ins: Inlet[Any]) -> None:
        super().__init__(tuple(ins), (out,))
        self.out = out
        self.n = len(ins)

    @staticmethod
    def of(n: int, name: str) -> UniformFanInShape:
        """A shape with ports named ``name.in0..`` and ``name.out``."""
        return UniformFanInShape(Outlet(f"{name}.out"), *(Inlet(f"{name}.in{i}") for i in range(n)))

    def in_(self, i: int) -> Inlet[Any]:
        """Inlet number ``i``."""
        inlet: Inlet[Any] = _port_at(self.inlets, i, "in_")
        return inlet

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return type(self)(outlets[0], *inlets)


class UniformFanOutShape(Shape):
    """One inlet ``in_`` and ``n`` outlets of one type, ``out(i)``."""

    __slots__ = ("in_", "n")

    def __init__(self, in_: Inlet[Any], *outs: Outlet[Any]) -> None:
        super().__init__((in_,), tuple(outs))
        self.in_ = in_
        self.n = len(outs)

    @staticmethod
    def of(n: int, name: str) -> UniformFanOutShape:
        """A shape with ports named ``name.in`` and ``name.out0..``."""
        return UniformFanOutShape(
            Inlet(f"{name}.in"), *(Outlet(f"{name}.out{i}") for i in range(n))
        )

    def out(self, i: int) -> Outlet[Any]:
        """Outlet number ``i``."""
        outlet: Outlet[Any] = _port_at(self.outlets, i, "out")
        return outlet

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return type(self)(inlets[0], *outlets)


class BidiShape(Shape):
    """Two flows side by side: ``in1 -> out1`` and ``in2 -> out2``."""

    __slots__ = ("in1", "out1", "in2", "out2")

    def __init__(
        self, in1: Inlet[Any], out1: Outlet[Any], in2: Inlet[Any], out2: Outlet[Any]
    ) -> None:
        super().__init__((in1, in2), (out1, out2))
        self.in1, self.out1, self.in2, self.out2 = in1, out1, in2, out2

    def copy_from_ports(
        self, inlets: tuple[Inlet[Any], ...], outlets: tuple[Outlet[Any], ...]
    ) -> Shape:
        return BidiShape(inlets[0], outlets[0], inlets[1], outlets[1])


class AmorphousShape(Shape):
    """Any number of inlets and outlets with no further structure."""

    __slots__ = ()
