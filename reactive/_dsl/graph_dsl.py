"""GraphDSL: build any graph shape (fan-in, fan-out, cycles) from stages and blueprints.

``GraphDSL.create(blueprint, *imported, combine=None)`` calls ``blueprint(b, *shapes)``
with a fresh ``Builder`` ``b`` and the shapes of the imported graphs. Inside, ``b.add(g)``
copies a stage or blueprint into the graph and returns its shape, whose ports are bound
to ``b``; ``outlet >> inlet`` (or ``b.connect(outlet, inlet)``) draws an edge, and
``outlet >> shape`` connects to the one free inlet of ``shape`` (the first free inlet
of a uniform fan-in such as ``Merge``) and returns ``shape`` so chains continue;
``shape >> x`` starts from its one free outlet (the first free outlet of a uniform
fan-out such as ``Broadcast``), and a blueprint can start an edge, ``Source(...) >>
merge.in_(0)``, as Akka's ``~>`` allows::

    def blueprint(b, sink):
        src = b.add(Source.from_iterable(range(10)))
        bcast = b.add(Broadcast(2))
        zip_ = b.add(Zip())
        src.out >> bcast.in_
        bcast.out(0) >> b.add(Flow().map(inc)) >> zip_.in0
        bcast.out(1) >> zip_.in1
        zip_.out >> sink.in_
        return ClosedShape

    result = await RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq())).run()

The blueprint returns the shape of the result: ``ClosedShape`` (a ``RunnableGraph``),
``SourceShape(out)``, ``FlowShape(in_, out)``, ``SinkShape(in_)`` or any ``Shape`` over
ports still free. Validation happens when ``create`` returns, with messages that name
the port: every port must be connected exactly once or be exposed by the returned shape;
ports of another builder are refused; an exposed port must not also be connected.

The materialized value is that of the imported graphs: one imported graph gives its
value, several give a tuple (or ``combine(*values)``), none gives ``NotUsed``. Graphs
added with ``b.add`` contribute no value (as in Akka). ``b.materialized_value`` is an
outlet emitting that value once per materialization (Akka's ``materializedValue``).

Cycles, liveness and deadlock
    Stages are fused and bounded, with no implicit buffer between them, so a cycle can
    deadlock. The classic case is ``Merge`` -> ``Broadcast`` with one Broadcast output fed
    back into the Merge::

        source ~> merge ~> bcast ~> sink
                  merge <~ bcast          (feedback edge, no buffer)

    Broadcast pulls its input only when *all* its outputs have pulled. The copy sent
    back arrives at ``merge.in1``, which is pulled again only after Merge pushes that
    element; Merge may push only when Broadcast pulls it; Broadcast waits for the
    feedback output's pull, which waits for Merge. Nothing moves after the first element.

    The fix is a buffer on the feedback edge: ``Flow().buffer(n, OverflowStrategy
    .backpressure)`` accepts the copy at once and pulls again, so Broadcast can pull,
    Merge can emit and the loop turns. Keep the feedback bounded (filter it, as in the
    counter example of the tests) or use a dropping strategy
    (``OverflowStrategy.drop_head``) for liveness when the loop can grow; a ``fail``
    strategy turns a deadlock into an error. A *balanced* cycle (``ZipWith`` of an outer
    and a fed-back element) additionally needs a kick-off element (``Concat`` with
    ``Source.single`` on the feedback edge).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .._errors import IllegalGraphError
from .._impl.modules import CompositeModule, Module
from .._keep import NotUsed
from .._ops.fan_in import MergePreferredShape
from .._stage.shapes import (
    ClosedShape,
    Inlet,
    Outlet,
    Shape,
    SourceShape,
    UniformFanInShape,
    UniformFanOutShape,
)
from .graph import Graph, _module_of

__all__ = ["GraphDSL", "Builder"]


class Builder:
    """The mutable builder handed to a GraphDSL blueprint (``b``).

    Use it only inside the blueprint; once ``GraphDSL.create`` returns, it is sealed.
    """

    __slots__ = ("_subs", "_wires", "_connected", "_ports", "_sealed", "_mat_sources")

    def __init__(self) -> None:
        self._subs: list[Module] = []
        self._wires: list[tuple[tuple[int, Outlet[Any]], tuple[int, Inlet[Any]]]] = []
        # builder port -> the other end it is wired to
        self._connected: dict[Any, Any] = {}
        # every builder port handed out, in order
        self._ports: list[Any] = []
        self._sealed = False
        # indices in ``_subs`` of the sources added by ``materialized_value``
        self._mat_sources: list[int] = []

    # -- adding -------------------------------------------------------------------------
    def add(self, graph: Any) -> Any:
        """Copy ``graph`` (a stage or blueprint) into this graph and return its shape.

        The returned shape has fresh ports bound to this builder; adding the same graph
        twice gives two independent copies.
        """
        self._check_open()
        module = _module_of(graph)
        idx = len(self._subs)
        self._subs.append(module)
        inner = module.shape
        ins = tuple(self._bind(p.carbon_copy(), idx, p) for p in inner.inlets)
        outs = tuple(self._bind(p.carbon_copy(), idx, p) for p in inner.outlets)
        return inner.copy_from_ports(ins, outs)

    @property
    def materialized_value(self) -> Outlet[Any]:
        """An outlet emitting this graph's materialized value once, then completing
        (Akka's ``builder.materializedValue``).

        Each use adds a new source to the graph, whose outlet must be connected (or exposed)
        like any other. The value is the one ``GraphDSL.create`` gives the graph (that of
        the imported graphs, combined), of each materialization. A value of ``None`` cannot
        be an element: the source then fails with ``TypeError``.

        Emits when the graph was materialized and downstream pulls. Backpressures never
        (one element). Completes when the value was emitted. Cancels when downstream
        cancels.
        """
        from .._ops.sources import MaybeSource

        self._check_open()
        stage = MaybeSource()
        stage.name = "materialized_value"
        stage.shape = SourceShape(Outlet("materialized_value.out"))
        self._mat_sources.append(len(self._subs))
        shape = self.add(stage)
        out: Outlet[Any] = shape.out
        return out

    def _bind(self, port: Any, idx: int, inner: Any) -> Any:
        port._builder = self
        port._origin = (idx, inner)
        self._ports.append(port)
        return port

    # -- wiring -------------------------------------------------------------------------
    def connect(self, outlet: Outlet[Any], inlet: Inlet[Any]) -> None:
        """Draw an edge from ``outlet`` to ``inlet``; each port is connected at most once."""
        self._check_open()
        if not isinstance(outlet, Outlet):
            raise IllegalGraphError(f"an edge must start at an outlet, got {outlet!r}")
        if not isinstance(inlet, Inlet):
            raise IllegalGraphError(
                f"an edge from outlet {outlet.name!r} must end at an inlet, got {inlet!r}"
            )
        self._own(outlet)
        self._own(inlet)
        for p in (outlet, inlet):
            if p in self._connected:
                kind = "outlet" if p is outlet else "inlet"
                raise IllegalGraphError(
                    f"{kind} {p.name!r} is connected twice: it is already connected to "
                    f"{self._connected[p].name!r}"
                )
        self._connected[outlet] = inlet
        self._connected[inlet] = outlet
        self._wires.append((outlet._origin, inlet._origin))

    def _chain(self, outlet: Outlet[Any], other: Any) -> Any:
        """``outlet >> other``: ``other`` is an inlet, a shape with one free inlet (returned
        so chains continue), or a stage/blueprint (added first)."""
        if isinstance(other, Inlet):
            self.connect(outlet, other)
            return other
        if not isinstance(other, Shape):
            if isinstance(other, Graph | Module) or hasattr(other, "shape"):
                other = self.add(other)
            else:
                raise IllegalGraphError(
                    f"cannot connect outlet {outlet.name!r} to {other!r}: expected an inlet "
                    "or a shape returned by b.add(...)"
                )
        free = [p for p in other.inlets if p not in self._connected]
        if free and isinstance(other, UniformFanInShape | MergePreferredShape):
            free = free[:1]  # as Akka's ``~> junction``: the first free inlet
        if len(free) != 1:
            raise IllegalGraphError(
                f"'>>' from outlet {outlet.name!r} needs a shape with exactly one free inlet, "
                f"got {other!r} with {len(free)} free"
            )
        self.connect(outlet, free[0])
        return other

    def _chain_shape(self, shape: Shape, other: Any) -> Any:
        """``shape >> other`` for a shape with several outlets: its one free outlet, or the
        first free outlet of a uniform fan-out (Akka's ``bcast ~> ...``)."""
        free = [p for p in shape.outlets if p not in self._connected]
        if free and isinstance(shape, UniformFanOutShape):
            free = free[:1]
        if len(free) != 1:
            raise IllegalGraphError(
                f"'>>' needs a shape with exactly one free outlet, got {shape!r} with "
                f"{len(free)} free"
            )
        return self._chain(free[0], other)

    # -- checks -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._sealed:
            raise IllegalGraphError(
                "this GraphDSL builder is finished; use it only inside its blueprint"
            )

    def _own(self, port: Any) -> None:
        b = port._builder
        if b is self:
            return
        if b is None:
            raise IllegalGraphError(
                f"port {port.name!r} does not belong to this builder; use the ports of the "
                "shape returned by b.add(...)"
            )
        raise IllegalGraphError(f"port {port.name!r} belongs to another GraphDSL builder")

    def _result(self, shape: Any, mat_fn: Callable[[list[Any]], Any]) -> CompositeModule:
        if shape is None:
            raise IllegalGraphError(
                "the GraphDSL blueprint must return a shape (ClosedShape, SourceShape(out), "
                "FlowShape(in_, out), SinkShape(in_) or any Shape), got None"
            )
        if not isinstance(shape, Shape):
            raise IllegalGraphError(f"the GraphDSL blueprint returned {shape!r}, not a Shape")
        exposed_ports = (*shape.inlets, *shape.outlets)
        seen: set[int] = set()
        for p in exposed_ports:
            self._own(p)
            if p in self._connected:
                raise IllegalGraphError(
                    f"the returned shape exposes port {p.name!r}, which is already connected "
                    f"to {self._connected[p].name!r}"
                )
            if id(p) in seen:
                raise IllegalGraphError(f"the returned shape exposes port {p.name!r} twice")
            seen.add(id(p))
        dangling = [p for p in self._ports if p not in self._connected and id(p) not in seen]
        if dangling:
            names = ", ".join(repr(p.name) for p in dangling)
            kind = "port" if len(dangling) == 1 else "ports"
            raise IllegalGraphError(
                f"{kind} {names} not connected: connect each port exactly once or expose it "
                "in the returned shape"
            )
        self._sealed = True
        new_ins = tuple(p.carbon_copy() for p in shape.inlets)
        new_outs = tuple(p.carbon_copy() for p in shape.outlets)
        exposed: dict[Any, tuple[int, Any]] = {}
        for new, old in zip((*new_ins, *new_outs), exposed_ports, strict=True):
            exposed[new] = old._origin
        result_shape = (
            ClosedShape if shape is ClosedShape else shape.copy_from_ports(new_ins, new_outs)
        )
        return CompositeModule(result_shape, self._subs, self._wires, exposed, mat_fn)


class GraphDSL:
    """Build graphs of any shape with a builder (Akka's ``GraphDSL``)."""

    @staticmethod
    def create(
        blueprint: Callable[..., Shape],
        *imported: Any,
        combine: Callable[..., Any] | None = None,
    ) -> Graph:
        """Run ``blueprint(b, *imported_shapes)`` and return the graph it describes.

        ``imported`` graphs are added first and their shapes passed to the blueprint;
        their materialized values make the graph's value (one: its value; several: a tuple
        or ``combine(*values)``; none: ``NotUsed``). The result works with
        ``RunnableGraph.from_graph``, ``Source.from_graph``, ``Flow.from_graph``,
        ``Sink.from_graph`` and ``b.add`` of another builder.

        Raises ``IllegalGraphError`` naming the port when a port is left unconnected,
        connected twice, taken from another builder, or exposed although connected.
        """
        b = Builder()
        shapes = [b.add(g) for g in imported]
        shape = blueprint(b, *shapes)
        k = len(imported)
        mat_fn: Callable[[list[Any]], Any]
        if k == 0:
            if combine is not None:
                raise IllegalGraphError("combine= needs imported graphs to combine")

            def mat_fn(mats: list[Any]) -> Any:
                return NotUsed
        elif combine is not None:

            def mat_fn(mats: list[Any]) -> Any:
                return combine(*mats[:k])
        elif k == 1:

            def mat_fn(mats: list[Any]) -> Any:
                return mats[0]
        else:

            def mat_fn(mats: list[Any]) -> Any:
                return tuple(mats[:k])

        if b._mat_sources:
            mat_fn = _feeding(mat_fn, tuple(b._mat_sources))
        return Graph(b._result(shape, mat_fn))


def _feeding(
    mat_fn: Callable[[list[Any]], Any], sources: tuple[int, ...]
) -> Callable[[list[Any]], Any]:
    """``mat_fn`` that also hands the value it computes to the ``materialized_value``
    sources (their materialized futures are ``mats[i]`` for ``i`` in ``sources``)."""

    def feeding(mats: list[Any]) -> Any:
        value = mat_fn(mats)
        for i in sources:
            future = mats[i]
            if future.done():  # cancelled before the graph's value was known
                continue
            if value is None:
                future.set_exception(
                    TypeError(
                        "materialized_value: the graph's materialized value is None, which "
                        "cannot be a stream element"
                    )
                )
            else:
                future.set_result(value)
        return value

    return feeding
