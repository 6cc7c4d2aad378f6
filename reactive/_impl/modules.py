"""Immutable module trees: what blueprints are made of.

``AtomicModule`` wraps one stage. ``LinearModule`` appends ``nxt`` to ``prev`` (the one
free outlet of prev to the one free inlet of nxt) in O(1); long chains nest to the left
and are unrolled iteratively when materialized. ``CompositeModule`` holds any graph
(GraphDSL). Every module carries its own attributes, an async-boundary flag (its
contents form their own island) and an optional function applied to its materialized
value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._attributes import Attributes
from .._errors import IllegalGraphError
from .._stage.shapes import Inlet, Outlet, Shape

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Module", "AtomicModule", "LinearModule", "CompositeModule", "identity_mat"]


def identity_mat(x: Any) -> Any:
    return x


class Module:
    """Base of blueprint modules."""

    __slots__ = ("shape", "attributes", "is_async", "mat_post")

    def __init__(
        self,
        shape: Shape,
        attributes: Attributes,
        is_async: bool,
        mat_post: Callable[[Any], Any] | None,
    ) -> None:
        self.shape = shape
        self.attributes = attributes
        self.is_async = is_async
        self.mat_post = mat_post

    def _copy(self, **changes: Any) -> Module:
        raise NotImplementedError  # pragma: no cover - every subclass overrides

    def with_attributes(self, attrs: Attributes) -> Module:
        return self._copy(attributes=attrs)

    def add_attributes(self, attrs: Attributes) -> Module:
        return self._copy(attributes=self.attributes & attrs)

    def make_async(self) -> Module:
        return self._copy(is_async=True)

    def map_mat(self, f: Callable[[Any], Any]) -> Module:
        prev = self.mat_post
        if prev is None:
            return self._copy(mat_post=f)
        return self._copy(mat_post=lambda m: f(prev(m)))

    @property
    def is_identity(self) -> bool:
        return False


class AtomicModule(Module):
    """One stage."""

    __slots__ = ("stage",)

    def __init__(
        self,
        stage: Any,
        attributes: Attributes | None = None,
        is_async: bool = False,
        mat_post: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(
            stage.shape,
            stage.initial_attributes if attributes is None else attributes,
            is_async,
            mat_post,
        )
        self.stage = stage

    def _copy(self, **changes: Any) -> Module:
        return AtomicModule(
            self.stage,
            changes.get("attributes", self.attributes),
            changes.get("is_async", self.is_async),
            changes.get("mat_post", self.mat_post),
        )

    def add_attributes(self, attrs: Attributes) -> Module:
        return self._copy(attributes=self.attributes & attrs)

    @property
    def is_identity(self) -> bool:
        return (
            bool(getattr(self.stage, "_is_identity", False))
            and not self.attributes
            and (not self.is_async and self.mat_post is None)
        )

    def __repr__(self) -> str:
        return f"AtomicModule({self.stage!r})"


def _single(ports: Sequence[Any], what: str, mod: Module) -> Any:
    if len(ports) != 1:
        raise IllegalGraphError(f"cannot append: {mod.shape!r} must have exactly one {what}")
    return ports[0]


class LinearModule(Module):
    """``prev`` followed by ``nxt``: prev's single free outlet feeds nxt's single inlet."""

    __slots__ = ("prev", "nxt", "combine")

    def __init__(
        self,
        prev: Module,
        nxt: Module,
        combine: Callable[[Any, Any], Any],
        attributes: Attributes | None = None,
        is_async: bool = False,
        mat_post: Callable[[Any], Any] | None = None,
        shape: Shape | None = None,
    ) -> None:
        if shape is None:
            _single(prev.shape.outlets, "outlet", prev)
            _single(nxt.shape.inlets, "inlet", nxt)
            shape = _linear_shape(prev.shape, nxt.shape)
        super().__init__(shape, attributes or Attributes.none(), is_async, mat_post)
        self.prev = prev
        self.nxt = nxt
        self.combine = combine

    def _copy(self, **changes: Any) -> Module:
        return LinearModule(
            self.prev,
            self.nxt,
            self.combine,
            changes.get("attributes", self.attributes),
            changes.get("is_async", self.is_async),
            changes.get("mat_post", self.mat_post),
            self.shape,
        )


def _linear_shape(a: Shape, b: Shape) -> Shape:
    from .._stage.shapes import ClosedShape, FlowShape, SinkShape, SourceShape

    ins = a.inlets
    outs = b.outlets
    if not ins and not outs:
        return ClosedShape
    if not ins and len(outs) == 1:
        return SourceShape(outs[0])
    if len(ins) == 1 and not outs:
        return SinkShape(ins[0])
    if len(ins) == 1 and len(outs) == 1:
        return FlowShape(ins[0], outs[0])
    return Shape(ins, outs)


class CompositeModule(Module):
    """Any graph: submodules, wires between their ports, and exposed ports.

    ``wires`` are ``((i, outlet), (j, inlet))`` pairs over submodule indices;
    ``exposed`` maps each port of ``shape`` to ``(i, inner_port)``; ``mat_fn`` computes the
    composite's materialized value from the list of submodule values.
    """

    __slots__ = ("subs", "wires", "exposed", "mat_fn")

    def __init__(
        self,
        shape: Shape,
        subs: Sequence[Module],
        wires: Sequence[tuple[tuple[int, Outlet[Any]], tuple[int, Inlet[Any]]]],
        exposed: dict[Any, tuple[int, Any]],
        mat_fn: Callable[[list[Any]], Any],
        attributes: Attributes | None = None,
        is_async: bool = False,
        mat_post: Callable[[Any], Any] | None = None,
    ) -> None:
        super().__init__(shape, attributes or Attributes.none(), is_async, mat_post)
        self.subs = tuple(subs)
        self.wires = tuple(wires)
        self.exposed = exposed
        self.mat_fn = mat_fn

    def _copy(self, **changes: Any) -> Module:
        return CompositeModule(
            self.shape,
            self.subs,
            self.wires,
            self.exposed,
            self.mat_fn,
            changes.get("attributes", self.attributes),
            changes.get("is_async", self.is_async),
            changes.get("mat_post", self.mat_post),
        )
