"""``BidiFlow[I1, O1, I2, O2, Mat]``: two flows in opposite directions (Akka's ``BidiFlow``).

A ``BidiFlow`` is a graph with a ``BidiShape``: ``in1 -> out1`` (the outbound direction,
"top to bottom" in a protocol stack) and ``in2 -> out2`` (inbound, "bottom to top")::

            +------+
     I1 ~~> |      | ~~> O1
            | bidi |
     O2 <~~ |      | <~~ I2
            +------+

Layers stack with ``atop`` (the argument goes below: this bidi's ``out1`` feeds its
``in1``, its ``out2`` feeds this bidi's ``in2``) and close with ``join(flow)`` (``out1``
feeds ``flow``, which feeds ``in2``: the bottom of the stack), giving a
``Flow[I1, O2, Mat]``; ``Flow.join(bidi)`` closes its top instead (the flow feeds ``in1``
and is fed by ``out2``), giving a ``Flow[I2, O1, Mat]``. Built from two flows
(``from_flows``), the two directions are independent: completion, failure and
cancellation of one do not reach the other, as in Akka. Composition builds
``CompositeModule`` s, as every blueprint does; the typing is written here directly (no
generated stub).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from .._checks import check, fn
from .._errors import IllegalGraphError
from .._impl.modules import CompositeModule, Module
from .._keep import Keep
from .._stage.shapes import BidiShape
from .blueprints import Flow, bidi_join_module
from .graph import Graph, _module_of

if TYPE_CHECKING:
    from .._attributes import Attributes
    from .._keep import NotUsedType

__all__ = ["BidiFlow"]

I1 = TypeVar("I1", contravariant=True)
O1 = TypeVar("O1", covariant=True)
I2 = TypeVar("I2", contravariant=True)
O2 = TypeVar("O2", covariant=True)
Mat = TypeVar("Mat", covariant=True)
A = TypeVar("A")
B = TypeVar("B")
C = TypeVar("C")
D = TypeVar("D")
M1 = TypeVar("M1")
M2 = TypeVar("M2")
M3 = TypeVar("M3")


def _bidi_module(g: Any, op: str) -> Module:
    m = _module_of(g, op)
    if not isinstance(m.shape, BidiShape):
        raise IllegalGraphError(
            f"{op} needs a BidiFlow (a graph with a BidiShape), got {m.shape!r}"
        )
    return m


def _flow_module(g: Any, op: str) -> Module:
    m = _module_of(g, op)
    if len(m.shape.inlets) != 1 or len(m.shape.outlets) != 1:
        raise IllegalGraphError(f"{op} needs a Flow, got {m.shape!r}")
    return m


class BidiFlow(Graph, Generic[I1, O1, I2, O2, Mat]):
    """A blueprint of two flows in opposite directions: ``in1 -> out1`` and
    ``in2 -> out2`` (``BidiFlow[I1, O1, I2, O2, Mat]``), for protocol layers (codecs,
    framing, encryption) stacked with ``atop`` and closed with ``join``.

    Immutable and reusable like every blueprint; ``b.add(bidi)`` in a GraphDSL blueprint
    gives its ``BidiShape`` (``in1``, ``out1``, ``in2``, ``out2``).
    """

    __slots__ = ()

    # -- factories -------------------------------------------------------------------------
    @staticmethod
    def from_graph(g: Any) -> BidiFlow[Any, Any, Any, Any, Any]:
        """A BidiFlow from a graph or stage whose shape is a ``BidiShape`` (a GraphDSL
        blueprint returning ``BidiShape(in1, out1, in2, out2)``, or a custom stage)."""
        return BidiFlow(_bidi_module(g, "BidiFlow.from_graph"))

    @staticmethod
    def from_flows(
        flow1: Flow[A, B, Any], flow2: Flow[C, D, Any]
    ) -> BidiFlow[A, B, C, D, NotUsedType]:
        """``flow1`` as the outbound direction (``in1 -> out1``) and ``flow2`` as the inbound
        one (``in2 -> out2``); materialized value ``NotUsed``.

        The two directions stay independent: one completing, failing or cancelling does
        not terminate the other (as Akka's ``fromFlows``).
        """
        from .._keep import NotUsed

        return BidiFlow.from_flows_mat(flow1, flow2, lambda _a, _b: NotUsed)

    @staticmethod
    def from_flows_mat(
        flow1: Flow[A, B, M1], flow2: Flow[C, D, M2], combine: Callable[[M1, M2], M3]
    ) -> BidiFlow[A, B, C, D, M3]:
        """``from_flows`` with the materialized value ``combine(value1, value2)``."""
        op = "BidiFlow.from_flows_mat(flow1, flow2, combine)"
        check(op, None, None, fn(combine))
        a = _flow_module(flow1, "BidiFlow.from_flows_mat(flow1)")
        b = _flow_module(flow2, "BidiFlow.from_flows_mat(flow2)")
        (ai,), (ao,) = a.shape.inlets, a.shape.outlets
        (bi,), (bo,) = b.shape.inlets, b.shape.outlets
        shape = BidiShape(ai.carbon_copy(), ao.carbon_copy(), bi.carbon_copy(), bo.carbon_copy())
        exposed = {shape.in1: (0, ai), shape.out1: (0, ao), shape.in2: (1, bi), shape.out2: (1, bo)}
        return BidiFlow(CompositeModule(shape, [a, b], [], exposed, lambda m: combine(m[0], m[1])))

    @staticmethod
    def from_functions(
        out_fn: Callable[[A], B], in_fn: Callable[[C], D]
    ) -> BidiFlow[A, B, C, D, NotUsedType]:
        """``from_flows(Flow.from_function(out_fn), Flow.from_function(in_fn))``: a
        stateless codec, ``out_fn`` applied outbound (``in1 -> out1``), ``in_fn`` inbound
        (``in2 -> out2``). A raising function fails its direction (under the supervision
        strategy, as ``map``)."""
        check("BidiFlow.from_functions(out_fn, in_fn)", fn(out_fn), fn(in_fn))
        return BidiFlow.from_flows(Flow.from_function(out_fn), Flow.from_function(in_fn))

    @staticmethod
    def identity() -> BidiFlow[Any, Any, Any, Any, NotUsedType]:
        """Passes elements through unchanged in both directions; ``atop`` and ``join``
        with it change nothing."""
        return BidiFlow.from_flows(Flow(), Flow())

    # -- composition -----------------------------------------------------------------------
    def atop(self, bidi: BidiFlow[O1, A, B, I2, Any]) -> BidiFlow[I1, A, B, O2, Mat]:
        """Stack ``bidi`` below this one (a protocol stack grows downwards): this one's
        ``out1`` feeds ``bidi``'s ``in1`` and ``bidi``'s ``out2`` feeds this one's ``in2``.
        The result's ports are this one's ``in1`` and ``out2`` and ``bidi``'s ``out1`` and
        ``in2``; it keeps this one's materialized value."""
        return self.atop_mat(bidi, Keep.left)

    def atop_mat(
        self, bidi: BidiFlow[O1, A, B, I2, M2], combine: Callable[[Mat, M2], M3]
    ) -> BidiFlow[I1, A, B, O2, M3]:
        """``atop`` with the materialized value ``combine(this_value, bidi_value)``."""
        check("atop_mat(bidi, combine)", None, fn(combine))
        top = self.module
        low = _bidi_module(bidi, "atop(bidi)")
        ts, ls = top.shape, low.shape
        assert isinstance(ts, BidiShape) and isinstance(ls, BidiShape)
        shape = BidiShape(
            ts.in1.carbon_copy(), ls.out1.carbon_copy(), ls.in2.carbon_copy(), ts.out2.carbon_copy()
        )
        wires = [((0, ts.out1), (1, ls.in1)), ((1, ls.out2), (0, ts.in2))]
        exposed = {
            shape.in1: (0, ts.in1),
            shape.out1: (1, ls.out1),
            shape.in2: (1, ls.in2),
            shape.out2: (0, ts.out2),
        }
        return BidiFlow(
            CompositeModule(shape, [top, low], wires, exposed, lambda m: combine(m[0], m[1]))
        )

    def join(self, flow: Flow[O1, I2, Any]) -> Flow[I1, O2, Mat]:
        """Close the bottom of this bidi with ``flow``: ``out1`` feeds ``flow``, whose
        output feeds ``in2``. The result is a ``Flow`` from ``in1`` to ``out2`` keeping this
        bidi's materialized value."""
        return self.join_mat(flow, Keep.left)

    def join_mat(
        self, flow: Flow[O1, I2, M2], combine: Callable[[Mat, M2], M3]
    ) -> Flow[I1, O2, M3]:
        """``join`` with the materialized value ``combine(bidi_value, flow_value)``."""
        check("join_mat(flow, combine)", None, fn(combine))
        f = _flow_module(flow, "BidiFlow.join(flow)")
        return Flow(bidi_join_module(self.module, f, combine))

    def reversed(self) -> BidiFlow[I2, O2, I1, O1, Mat]:
        """The same bidi turned upside down: ``in2 -> out2`` becomes the first direction."""
        m = self.module
        s = m.shape
        assert isinstance(s, BidiShape)
        shape = BidiShape(
            s.in2.carbon_copy(), s.out2.carbon_copy(), s.in1.carbon_copy(), s.out1.carbon_copy()
        )
        exposed = {
            shape.in1: (0, s.in2),
            shape.out1: (0, s.out2),
            shape.in2: (0, s.in1),
            shape.out2: (0, s.out1),
        }
        return BidiFlow(CompositeModule(shape, [m], [], exposed, lambda ms: ms[0]))

    # -- as every blueprint (typed for BidiFlow) -------------------------------------------
    def map_materialized_value(self, f: Callable[[Mat], M2]) -> BidiFlow[I1, O1, I2, O2, M2]:
        """The same bidi with its materialized value transformed by ``f``."""
        return cast("BidiFlow[I1, O1, I2, O2, M2]", super().map_materialized_value(f))

    def with_attributes(self, attributes: Attributes) -> Self:
        """The same bidi with its attributes replaced by ``attributes``."""
        return cast("Self", super().with_attributes(attributes))

    def add_attributes(self, attributes: Attributes) -> Self:
        """The same bidi with ``attributes`` added (they win over existing ones)."""
        return cast("Self", super().add_attributes(attributes))

    def named(self, name: str) -> Self:
        """The same bidi named ``name`` (used in error messages and logs)."""
        return cast("Self", super().named(name))

    def async_boundary(self) -> Self:
        """Run this bidi (both directions) in its own island (Akka's ``.async``)."""
        return cast("Self", super().async_boundary())

    @property
    def shape(self) -> BidiShape:
        """The ports: ``in1``, ``out1``, ``in2``, ``out2``."""
        s = self.module.shape
        assert isinstance(s, BidiShape)
        return s

    def __repr__(self) -> str:
        return f"BidiFlow({self.module.shape!r})"
