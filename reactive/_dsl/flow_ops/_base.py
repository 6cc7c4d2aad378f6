"""How an operator is appended: the primitives every family below uses.

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, overload

from ..._checks import (
    check,
    fn,
)
from ..._errors import IllegalGraphError
from ..._impl.modules import AtomicModule, CompositeModule, Module
from ..._keep import Keep
from ..._stage.shapes import (
    FlowShape,
    Shape,
    SourceShape,
)
from ..graph import Graph, _module_of

if TYPE_CHECKING:
    from ..._stage.logic import GraphStageWithMaterializedValue
    from ..blueprints import Flow
    from ..subflow import SubFlow

__all__ = ["M2", "M3", "Mat", "OpsBase", "Out", "Repr", "S", "SubRepr", "T", "U", "V"]

#: The type variables every family mixin is generic in (element type, materialized value)
#: and the ones its operators' signatures use (the stubs define the same names).
Out = TypeVar("Out")
Mat = TypeVar("Mat")
U = TypeVar("U")
T = TypeVar("T")
V = TypeVar("V")
S = TypeVar("S")
M2 = TypeVar("M2")
M3 = TypeVar("M3")
_O = TypeVar("_O")
_M = TypeVar("_M")


class OpsBase(Graph, Generic[Out, Mat]):
    """How an operator is appended: the primitives every family below uses."""

    __slots__ = ()

    def _via_module(self, module: Module, combine: Callable[[Any, Any], Any]) -> OpsBase[Any, Any]:
        raise NotImplementedError  # pragma: no cover - each blueprint class overrides

    def _via_stage(
        self, stage: Any, combine: Callable[[Any, Any], Any] = Keep.left
    ) -> OpsBase[Any, Any]:
        return self._via_module(AtomicModule(stage), combine)

    @overload
    def via(self, flow: Flow[Out, U, Any]) -> Repr[U, Mat]: ...
    @overload
    def via(self, flow: GraphStageWithMaterializedValue[Any, Any]) -> Repr[Any, Mat]: ...
    def via(self, flow: Any) -> Repr[Any, Mat]:
        """Append ``flow``; keeps this blueprint's materialized value."""
        return self._via_module(_module_of(flow), Keep.left)

    @overload
    def via_mat(self, flow: Flow[Out, U, M2], combine: Callable[[Mat, M2], M3]) -> Repr[U, M3]: ...
    @overload
    def via_mat(
        self, flow: GraphStageWithMaterializedValue[Any, M2], combine: Callable[[Mat, M2], M3]
    ) -> Repr[Any, M3]: ...
    def via_mat(self, flow: Any, combine: Callable[[Any, Any], Any]) -> Repr[Any, Any]:
        """Append ``flow``, combining materialized values with ``combine``."""
        check("via_mat(flow, combine)", None, fn(combine))
        return self._via_module(_module_of(flow), combine)

    def _side_output(
        self,
        stage: Any,
        sink: Any,
        combine: Callable[[Any, Any], Any] | None,
        op: str | None = None,
    ) -> OpsBase[Any, Any]:
        from ..fan_ops import side_output

        name = str(op or getattr(stage, "name", "fan-out"))
        wrapped: OpsBase[Any, Any] = self._wrap(
            side_output(self.module, stage, _module_of(sink, name), combine, name)
        )
        return wrapped

    def _fan_in(
        self,
        others: list[Any],
        stage: Any,
        combine: Callable[[Any, Any], Any] | None,
        inlets: tuple[Any, ...] | None = None,
        op: str | None = None,
    ) -> OpsBase[Any, Any]:
        """Join ``others`` into ``stage``: this blueprint into its first inlet, ``others``
        into the next ones (``inlets`` gives another order of the stage's inlets); ``op``
        names the operator in errors (default: the stage's name)."""
        name = str(op or getattr(stage, "name", "fan-in"))
        mine = self.module
        if len(mine.shape.outlets) != 1:
            raise IllegalGraphError(f"{name} needs a blueprint with exactly one outlet")
        subs = [
            mine,
            *(_module_of(o, f"{name}: input {k}") for k, o in enumerate(others, start=1)),
            AtomicModule(stage),
        ]
        j = len(subs) - 1
        ins = stage.shape.inlets if inlets is None else inlets
        wires = [((0, mine.shape.outlets[0]), (j, ins[0]))]
        for k, o in enumerate(subs[1:-1], start=1):
            if len(o.shape.outlets) != 1 or o.shape.inlets:
                raise IllegalGraphError(f"{name}: input {k} must be a Source, got {o.shape!r}")
            wires.append(((k, o.shape.outlets[0]), (j, ins[k])))
        new_ins = tuple(p.carbon_copy() for p in mine.shape.inlets)
        new_out = stage.shape.outlets[0].carbon_copy()
        exposed: dict[Any, Any] = {
            p: (0, q) for p, q in zip(new_ins, mine.shape.inlets, strict=True)
        }
        exposed[new_out] = (j, stage.shape.outlets[0])
        shape: Shape = FlowShape(new_ins[0], new_out) if new_ins else SourceShape(new_out)
        if combine is None:

            def mat_fn(mats: list[Any]) -> Any:
                return mats[0]
        else:

            def mat_fn(mats: list[Any]) -> Any:
                return combine(mats[0], mats[1])

        wrapped: OpsBase[Any, Any] = self._wrap(
            CompositeModule(shape, subs, wires, exposed, mat_fn)
        )
        return wrapped


Repr: TypeAlias = OpsBase[_O, _M]
"""What an operator returns: "the same kind of blueprint" with elements ``_O`` and
materialized value ``_M`` (Pekko's ``FlowOps.Repr``). A family method is annotated
``-> Repr[U, Mat]``; ``tools/gen_stubs.py`` reads that annotation and writes
``Source[U, Mat]``, ``Flow[In, U, Mat]``, ``SubFlow[U, Mat, Ctx]`` into the stubs."""

SubRepr: TypeAlias = "SubFlow[_O, _M, Any]"
"""What a substream operator (``group_by``, ``split_when``) returns: a ``SubFlow`` of
elements ``_O`` over this blueprint (its context, the kind of blueprint the substreams
merge back into, is ``Any`` here); the stubs write each class's own ``SubFlow`` type."""
