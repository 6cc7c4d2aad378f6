"""``Graph``, the base of every blueprint, and how anything graph-like becomes a module."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._attributes import Attributes
from .._checks import check, fn, string
from .._errors import IllegalGraphError
from .._impl.modules import AtomicModule, Module
from .._stage.shapes import Inlet, Shape

__all__ = ["Graph"]


def _module_of(g: Any, what: str | None = None) -> Module:
    """The module of a blueprint or stage; ``what`` (e.g. ``merge_all(those): input 2``)
    names the argument in the error for anything else."""
    if isinstance(g, Graph):
        return g.module
    if isinstance(g, Module):
        return g
    if hasattr(g, "create_logic_and_materialized_value"):
        if not hasattr(g, "shape"):
            raise IllegalGraphError(
                f"{type(g).__name__} has no shape: a GraphStage sets self.shape (the ports "
                "it exposes) in its __init__"
            )
        return AtomicModule(g)
    if what is not None:
        raise IllegalGraphError(
            f"{what}: not a graph or stage: {type(g).__name__} {g!r} (a Source, Flow or "
            "Sink blueprint, or a GraphStage, is needed)"
        )
    raise IllegalGraphError(f"not a graph or stage: {g!r}")


class Graph:
    """Base of every blueprint: an immutable module with a shape."""

    __slots__ = ("module",)

    def __init__(self, module: Module) -> None:
        self.module = module

    @property
    def shape(self) -> Shape:
        """The ports this blueprint exposes."""
        return self.module.shape

    def _wrap(self, module: Module) -> Any:
        return type(self)(module)

    def with_attributes(self, attributes: Attributes) -> Any:
        """The same blueprint with its attributes replaced by ``attributes``."""
        return self._wrap(self.module.with_attributes(attributes))

    def add_attributes(self, attributes: Attributes) -> Any:
        """The same blueprint with ``attributes`` added (they win over existing ones)."""
        return self._wrap(self.module.add_attributes(attributes))

    def named(self, name: str) -> Any:
        """The same blueprint named ``name`` (used in error messages and logs)."""
        check("named(name)", string(name))
        return self.add_attributes(Attributes.name(name))

    def async_boundary(self) -> Any:
        """Run everything composed so far in its own island (Akka's ``.async``)."""
        return self._wrap(self.module.make_async())

    def map_materialized_value(self, f: Callable[[Any], Any]) -> Any:
        """Transform the materialized value with ``f``."""
        check("map_materialized_value(f)", fn(f))
        return self._wrap(self.module.map_mat(f))

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of this blueprint's stages and edges."""
        from .render import to_mermaid

        return to_mermaid(self.module)

    def __rshift__(self, other: Any) -> Any:
        """Inside a GraphDSL blueprint, ``source >> port_or_shape`` adds this blueprint to
        the builder that owns ``other`` and connects it (Akka's ``Source(...) ~> inlet``)."""
        ports = [other] if isinstance(other, Inlet) else list(getattr(other, "inlets", ()))
        b = next((p._builder for p in ports if p._builder is not None), None)
        if b is None:
            raise IllegalGraphError(
                f"'>>' from a blueprint needs a port or shape of a GraphDSL builder, got {other!r}"
            )
        return b.add(self) >> other
