"""Source, Flow, Sink and RunnableGraph: immutable, reusable, generic blueprints.

The DSL implements no behaviour: each operator method builds a stage from ``_ops`` and
appends it with ``via``/``to`` (an O(1) ``LinearModule``). Operators live once, in
``FlowOps``, shared by ``Source``, ``Flow`` and ``SubFlow``: each class only says how
to append (``_via_module``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._attributes import Attributes
from .._errors import IllegalGraphError
from .._impl.modules import AtomicModule, CompositeModule, LinearModule, Module
from .._stage.shapes import (
    ClosedShape,
    FlowShape,
    Shape,
    SourceShape,
)
from .keep import Keep, NotUsed

if TYPE_CHECKING:
    from .._impl.materializer import Materializer

__all__ = ["Source", "Flow", "Sink", "RunnableGraph", "FlowOps", "Graph"]

Out = TypeVar("Out")
In = TypeVar("In")
Mat = TypeVar("Mat")
Mat2 = TypeVar("Mat2")
U = TypeVar("U")
_MISSING: Any = object()


def _module_of(g: Any) -> Module:
    if isinstance(g, Graph):
        return g.module
    if isinstance(g, Module):
        return g
    if hasattr(g, "shape") and hasattr(g, "create_logic_and_materialized_value"):
        return AtomicModule(g)
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
        return self.add_attributes(Attributes.name(name))

    def async_boundary(self) -> Any:
        """Run everything composed so far in its own island (Akka's ``.async``)."""
        return self._wrap(self.module.make_async())

    def map_materialized_value(self, f: Callable[[Any], Any]) -> Any:
        """Transform the materialized value with ``f``."""
        return self._wrap(self.module.map_mat(f))

    def to_mermaid(self) -> str:
        """A Mermaid flowchart of this blueprint's stages and edges."""
        from .render import to_mermaid

        return to_mermaid(self.module)


class FlowOps(Graph, Generic[Out, Mat]):
    """Operators shared by Source, Flow and SubFlow."""

    __slots__ = ()

    # -- appending -----------------------------------------------------------------------------
    def _via_module(self, module: Module, combine: Callable[[Any, Any], Any]) -> Any:
        raise NotImplementedError  # pragma: no cover - each blueprint class overrides

    def _via_stage(self, stage: Any, combine: Callable[[Any, Any], Any] = Keep.left) -> Any:
        return self._via_module(AtomicModule(stage), combine)

    def via(self, flow: Any) -> Any:
        """Append ``flow``; keeps this blueprint's materialized value."""
        return self._via_module(_module_of(flow), Keep.left)

    def via_mat(self, flow: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """Append ``flow``, combining materialized values with ``combine``."""
        return self._via_module(_module_of(flow), combine)

    # -- simple --------------------------------------------------------------------------------
    def map(self, f: Callable[[Out], U]) -> Any:
        """Transform each element with ``f``.

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Supervision: resume/restart drop the element.
        """
        from .._ops.simple import Map

        return self._via_stage(Map(f))

    def filter(self, p: Callable[[Out], bool]) -> Any:
        """Pass elements for which ``p`` holds."""
        from .._ops.simple import Filter

        return self._via_stage(Filter(p))

    def filter_not(self, p: Callable[[Out], bool]) -> Any:
        """Pass elements for which ``p`` does not hold."""
        from .._ops.simple import Filter

        return self._via_stage(Filter(p, negate=True))

    def map_concat(self, f: Callable[[Out], Iterable[U]]) -> Any:
        """Emit every element of the iterable ``f(x)`` in order (lazily)."""
        from .._ops.simple import MapConcat

        return self._via_stage(MapConcat(f))

    def stateful_map_concat(self, factory: Callable[[], Callable[[Out], Iterable[U]]]) -> Any:
        """``map_concat`` whose function comes from ``factory()`` once per run."""
        from .._ops.simple import MapConcat

        return self._via_stage(MapConcat(None, factory))

    def stateful_map(
        self,
        create: Callable[[], Any],
        f: Callable[[Any, Out], tuple[Any, U]],
        on_complete: Callable[[Any], U | None] | None = None,
    ) -> Any:
        """Map with state: ``f(state, x) -> (state, y)``; ``on_complete(state)`` may emit
        a last element on upstream completion (None emits nothing)."""
        from .._ops.simple import StatefulMap

        return self._via_stage(StatefulMap(create, f, on_complete))

    def scan(self, zero: U, f: Callable[[U, Out], U]) -> Any:
        """Emit ``zero`` first, then every running accumulation ``f(acc, x)``."""
        from .._ops.simple import Scan

        return self._via_stage(Scan(zero, f))

    def fold(self, zero: U, f: Callable[[U, Out], U]) -> Any:
        """Emit the final accumulation on completion (``zero`` for an empty stream)."""
        from .._ops.simple import Fold

        return self._via_stage(Fold(zero, f))

    def reduce(self, f: Callable[[Out, Out], Out]) -> Any:
        """Like ``fold`` seeded with the first element; fails on an empty stream."""
        from .._ops.simple import Reduce

        return self._via_stage(Reduce(f))

    def take(self, n: int) -> Any:
        """The first ``n`` elements, then complete (cancelling upstream)."""
        from .._ops.simple import Take

        return self._via_stage(Take(n))

    def take_while(self, p: Callable[[Out], bool], inclusive: bool = False) -> Any:
        """Pass while ``p`` holds; complete at the first element where it does not."""
        from .._ops.simple import TakeWhile

        return self._via_stage(TakeWhile(p, inclusive))

    def drop(self, n: int) -> Any:
        """Skip the first ``n`` elements."""
        from .._ops.simple import Drop

        return self._via_stage(Drop(n))

    def drop_while(self, p: Callable[[Out], bool]) -> Any:
        """Skip elements while ``p`` holds, then pass everything."""
        from .._ops.simple import DropWhile

        return self._via_stage(DropWhile(p))

    def grouped(self, n: int) -> Any:
        """Lists of ``n`` elements; the last one may be shorter."""
        from .._ops.simple import Grouped

        return self._via_stage(Grouped(n))

    def sliding(self, n: int, step: int = 1) -> Any:
        """Windows of ``n`` elements advancing by ``step``."""
        from .._ops.simple import Sliding

        return self._via_stage(Sliding(n, step))

    def limit(self, n: int) -> Any:
        """Pass through; fail with ``StreamLimitReachedError`` beyond ``n`` elements."""
        from .._ops.simple import Limit

        return self._via_stage(Limit(n))

    def limit_weighted(self, n: int, cost: Callable[[Out], int]) -> Any:
        """Like ``limit`` with a cost per element."""
        from .._ops.simple import Limit

        return self._via_stage(Limit(n, cost))

    def intersperse(self, inject: Any, start: Any = _MISSING, end: Any = _MISSING) -> Any:
        """Insert ``inject`` between elements; optional ``start`` and ``end`` markers."""
        from .._ops.simple import Intersperse

        kw = {k: v for k, v in (("start", start), ("end", end)) if v is not _MISSING}
        return self._via_stage(Intersperse(inject, **kw))

    def zip_with_index(self) -> Any:
        """Pair each element with its index: ``(x, i)`` from 0."""
        from .._ops.simple import ZipWithIndex

        return self._via_stage(ZipWithIndex())

    def log(
        self, name: str, extract: Callable[[Out], Any] | None = None, logger: Any = None
    ) -> Any:
        """Log elements, completion and failure through ``logging``; pass through."""
        from .._ops.simple import Log

        return self._via_stage(Log(name, extract, logger))

    # -- async ---------------------------------------------------------------------------------
    def map_async(self, parallelism: int, f: Callable[[Out], Awaitable[U]]) -> Any:
        """Run ``f`` on up to ``parallelism`` elements at once; emit results in input order."""
        from .._ops.async_ import MapAsync

        return self._via_stage(MapAsync(parallelism, f, ordered=True))

    def map_async_unordered(self, parallelism: int, f: Callable[[Out], Awaitable[U]]) -> Any:
        """Like ``map_async`` but emit results as they complete."""
        from .._ops.async_ import MapAsync

        return self._via_stage(MapAsync(parallelism, f, ordered=False))

    def scan_async(self, zero: U, f: Callable[[U, Out], Awaitable[U]]) -> Any:
        """``scan`` with an async step function."""
        from .._ops.async_ import ScanAsync

        return self._via_stage(ScanAsync(zero, f, emit_each=True))

    def fold_async(self, zero: U, f: Callable[[U, Out], Awaitable[U]]) -> Any:
        """``fold`` with an async step function."""
        from .._ops.async_ import ScanAsync

        return self._via_stage(ScanAsync(zero, f, emit_each=False))

    # -- buffers -------------------------------------------------------------------------------
    def buffer(self, size: int, overflow_strategy: Any) -> Any:
        """Buffer up to ``size`` elements; ``overflow_strategy`` says what happens when full."""
        from .._ops.buffers import Buffer

        return self._via_stage(Buffer(size, overflow_strategy))

    def detach(self) -> Any:
        """A one-element buffer decoupling upstream demand from downstream demand."""
        from .._ops.buffers import Buffer
        from .._ops.buffers import OverflowStrategy as OS

        return self._via_stage(Buffer(1, OS.backpressure, name="detach"))

    # -- watching ------------------------------------------------------------------------------
    def watch_termination(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Any:
        """Materialize an awaitable completing with ``Done`` when the stream terminates
        here (or failing with its failure)."""
        from .._ops.watch import WatchTermination

        return self._via_stage(WatchTermination(), combine)

    def monitor(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Any:
        """Materialize a ``FlowMonitor`` whose ``state`` tells the stream's last event."""
        from .._ops.watch import Monitor

        return self._via_stage(Monitor(), combine)

    # -- time and rate operators (issue 3: add here) -------------------------------------------

    # -- error handling operators (issue 3: add here) ------------------------------------------

    # -- nesting and substream operators (issue 3: add here) -----------------------------------

    # -- fan-out operators: also_to, wire_tap, divert_to (add here) ----------------------------

    # -- fan-in --------------------------------------------------------------------------------
    def _fan_in(
        self, others: list[Any], stage: Any, combine: Callable[[Any, Any], Any] | None
    ) -> Any:
        mine = self.module
        if len(mine.shape.outlets) != 1:
            raise IllegalGraphError("fan-in needs a blueprint with exactly one outlet")
        subs = [mine, *(_module_of(o) for o in others), AtomicModule(stage)]
        j = len(subs) - 1
        ins = stage.shape.inlets
        wires = [((0, mine.shape.outlets[0]), (j, ins[0]))]
        for k, o in enumerate(subs[1:-1], start=1):
            if len(o.shape.outlets) != 1 or o.shape.inlets:
                raise IllegalGraphError(f"fan-in input {k} must be a Source, got {o.shape!r}")
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

        return self._wrap(CompositeModule(shape, subs, wires, exposed, mat_fn))

    def zip(self, other: Any) -> Any:
        """Pairs ``(a, b)`` of this and ``other``; completes when either completes."""
        from .._ops.fan_in import Zip

        return self._fan_in([other], Zip(), None)

    def zip_mat(self, other: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``zip`` combining materialized values."""
        from .._ops.fan_in import Zip

        return self._fan_in([other], Zip(), combine)

    def zip_with(self, other: Any, f: Callable[[Out, Any], U]) -> Any:
        """``f(a, b)`` for pairs of this and ``other``."""
        from .._ops.fan_in import ZipWith

        return self._fan_in([other], ZipWith(f), None)

    def merge(self, other: Any, eager_complete: bool = False) -> Any:
        """Elements of this and ``other`` as they arrive."""
        from .._ops.fan_in import Merge

        return self._fan_in([other], Merge(2, eager_complete), None)

    def merge_mat(
        self, other: Any, combine: Callable[[Any, Any], Any], eager_complete: bool = False
    ) -> Any:
        """``merge`` combining materialized values."""
        from .._ops.fan_in import Merge

        return self._fan_in([other], Merge(2, eager_complete), combine)

    def concat(self, other: Any) -> Any:
        """All of this, then all of ``other`` (both materialized at once)."""
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2), None)

    def concat_mat(self, other: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``concat`` combining materialized values."""
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2), combine)

    def prepend(self, other: Any) -> Any:
        """All of ``other``, then all of this."""
        from .._ops.fan_in import Concat

        mine = self.module
        if mine.shape.inlets:
            # Flow: ``other`` first, then this flow's output.
            return self._fan_in([other], Concat(2, swap=True), None)
        return Source(_module_of(other))._fan_in([self], Concat(2), lambda a, b: b)

    def prepend_mat(self, other: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``prepend`` combining materialized values."""
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2, swap=True), combine)


class Source(FlowOps[Out, Mat]):
    """A blueprint with one outlet: ``Source[Out, Mat]``."""

    __slots__ = ()

    def _via_module(self, module: Module, combine: Callable[[Any, Any], Any]) -> Any:
        if module.shape.inlets and module.shape.outlets:
            if module.is_identity:
                return Source(self.module.map_mat(lambda m: combine(m, NotUsed)))
            return Source(LinearModule(self.module, module, combine))
        raise IllegalGraphError(f"via() needs a Flow, got {module.shape!r}")

    def to(self, sink: Any) -> RunnableGraph[Mat]:
        """Connect to ``sink``; keeps this source's materialized value."""
        return self.to_mat(sink, Keep.left)

    def to_mat(self, sink: Any, combine: Callable[[Mat, Any], Mat2]) -> RunnableGraph[Mat2]:
        """Connect to ``sink`` combining materialized values."""
        m = _module_of(sink)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"to() needs a Sink, got {m.shape!r}")
        return RunnableGraph(LinearModule(self.module, m, combine))

    def run_with(self, sink: Any, materializer: Materializer | None = None) -> Any:
        """Run this source into ``sink``; returns the sink's materialized value."""
        return self.to_mat(sink, Keep.right).run(materializer)

    def run_foreach(self, f: Callable[[Out], Any], materializer: Materializer | None = None) -> Any:
        """Run calling ``f`` for each element; returns an awaitable of ``Done``."""
        return self.run_with(Sink.foreach(f), materializer)

    def run_fold(
        self, zero: U, f: Callable[[U, Out], U], materializer: Materializer | None = None
    ) -> Any:
        """Run folding the elements; returns an awaitable of the result."""
        return self.run_with(Sink.fold(zero, f), materializer)

    def run_reduce(
        self, f: Callable[[Out, Out], Out], materializer: Materializer | None = None
    ) -> Any:
        """Run reducing the elements; returns an awaitable of the result."""
        return self.run_with(Sink.reduce(f), materializer)

    # -- factories -----------------------------------------------------------------------------
    @staticmethod
    def from_iterable(iterable: Iterable[Out]) -> Source[Out, Any]:
        """The elements of ``iterable``; a fresh iterator per run."""
        from .._ops.sources import IterableSource

        return Source(AtomicModule(IterableSource(iterable)))

    @staticmethod
    def single(elem: Out) -> Source[Out, Any]:
        """One element, then complete."""
        from .._ops.sources import SingleSource

        return Source(AtomicModule(SingleSource(elem)))

    @staticmethod
    def empty() -> Source[Any, Any]:
        """Complete at once."""
        from .._ops.sources import EmptySource

        return Source(AtomicModule(EmptySource()))

    @staticmethod
    def failed(exc: BaseException) -> Source[Any, Any]:
        """Fail at once with ``exc``."""
        from .._ops.sources import FailedSource

        return Source(AtomicModule(FailedSource(exc)))

    @staticmethod
    def never() -> Source[Any, Any]:
        """Never emit, never complete."""
        from .._ops.sources import NeverSource

        return Source(AtomicModule(NeverSource()))

    @staticmethod
    def repeat(elem: Out) -> Source[Out, Any]:
        """``elem`` forever."""
        from .._ops.sources import RepeatSource

        return Source(AtomicModule(RepeatSource(elem)))

    @staticmethod
    def unfold(state: Any, f: Callable[[Any], tuple[Any, Out] | None]) -> Source[Out, Any]:
        """Elements from ``f(state) -> (next_state, elem)``; None completes."""
        from .._ops.sources import UnfoldSource

        return Source(AtomicModule(UnfoldSource(state, f)))

    @staticmethod
    def unfold_async(
        state: Any, f: Callable[[Any], Awaitable[tuple[Any, Out] | None]]
    ) -> Source[Out, Any]:
        """Like ``unfold`` with an async step."""
        from .._ops.sources import UnfoldAsyncSource

        return Source(AtomicModule(UnfoldAsyncSource(state, f)))

    @staticmethod
    def from_async_iterable(ait: Any) -> Source[Any, Any]:
        """The elements of an async iterable, or of a factory of one (fresh per run)."""
        from .._ops.sources import AsyncIterableSource

        return Source(AtomicModule(AsyncIterableSource(ait)))

    @staticmethod
    def from_awaitable(aw: Any) -> Source[Any, Any]:
        """The result of an awaitable (or a zero-argument async function) as one element."""
        from .._ops.sources import AwaitableSource

        return Source(AtomicModule(AwaitableSource(aw)))

    @staticmethod
    def tick(initial_delay: float, interval: float, tick: Out) -> Source[Out, Any]:
        """``tick`` every ``interval`` seconds after ``initial_delay``; ticks are dropped
        while downstream back-pressures. Materialized value: a ``Cancellable``."""
        from .._ops.sources import TickSource

        return Source(AtomicModule(TickSource(initial_delay, interval, tick)))

    @staticmethod
    def zip_n(sources: Iterable[Any]) -> Source[list[Any], Any]:
        """Lists of one element from each source; completes when any completes."""
        from .._ops.fan_in import ZipN

        srcs = [Source(_module_of(s)) for s in sources]
        if not srcs:
            return Source.empty()
        if len(srcs) == 1:
            return srcs[0].map(lambda x: [x])  # type: ignore[no-any-return]
        return srcs[0]._fan_in(srcs[1:], ZipN(len(srcs)), None)  # type: ignore[no-any-return]

    # -- more source factories (queue, combine, publisher, lazy ...: add here) -----------------

    @staticmethod
    def from_graph(g: Any) -> Source[Any, Any]:
        """A Source from a graph or stage with exactly one outlet."""
        m = _module_of(g)
        if m.shape.inlets or len(m.shape.outlets) != 1:
            raise IllegalGraphError(f"Source.from_graph needs exactly one outlet, got {m.shape!r}")
        return Source(m)

    def __repr__(self) -> str:
        return f"Source({self.module.shape!r})"


class Flow(FlowOps[Out, Mat], Generic[In, Out, Mat]):
    """A blueprint with one inlet and one outlet: ``Flow[In, Out, Mat]``.

    ``Flow()`` (or ``Flow[int]()``) is the identity flow.
    """

    __slots__ = ()

    def __init__(self, module: Module | None = None) -> None:
        if module is None:
            from .._ops.simple import Identity

            module = AtomicModule(Identity())
        super().__init__(module)

    def _via_module(self, module: Module, combine: Callable[[Any, Any], Any]) -> Any:
        if not (len(module.shape.inlets) == 1 and len(module.shape.outlets) == 1):
            raise IllegalGraphError(f"via() needs a Flow, got {module.shape!r}")
        if self.module.is_identity:
            if combine is Keep.right:
                return Flow(module)
            return Flow(module.map_mat(lambda m: combine(NotUsed, m)))
        if module.is_identity:
            return Flow(self.module.map_mat(lambda m: combine(m, NotUsed)))
        return Flow(LinearModule(self.module, module, combine))

    def to(self, sink: Any) -> Sink[In, Mat]:
        """Connect to ``sink`` giving a Sink; keeps this flow's materialized value."""
        return self.to_mat(sink, Keep.left)

    def to_mat(self, sink: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """Connect to ``sink`` giving a Sink, combining materialized values."""
        m = _module_of(sink)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"to() needs a Sink, got {m.shape!r}")
        if self.module.is_identity:
            return Sink(m.map_mat(lambda x: combine(NotUsed, x)))
        return Sink(LinearModule(self.module, m, combine))

    def run_with(
        self, source: Any, sink: Any, materializer: Materializer | None = None
    ) -> tuple[Any, Any]:
        """Run ``source`` through this flow into ``sink``; returns ``(source_mat, sink_mat)``."""
        src = Source(_module_of(source))
        return src.via(self).to_mat(sink, Keep.both).run(materializer)  # type: ignore[no-any-return]

    def join(self, flow: Any) -> RunnableGraph[Mat]:
        """Close a cycle: this flow's output feeds ``flow`` whose output feeds this flow."""
        return self.join_mat(flow, Keep.left)

    def join_mat(self, flow: Any, combine: Callable[[Any, Any], Any]) -> RunnableGraph[Any]:
        """``join`` combining materialized values."""
        a = self.module
        b = _module_of(flow)
        wires = [
            ((0, a.shape.outlets[0]), (1, b.shape.inlets[0])),
            ((1, b.shape.outlets[0]), (0, a.shape.inlets[0])),
        ]
        return RunnableGraph(
            CompositeModule(ClosedShape, [a, b], wires, {}, lambda m: combine(m[0], m[1]))
        )

    @staticmethod
    def from_function(f: Callable[[Any], Any]) -> Flow[Any, Any, Any]:
        """``Flow().map(f)``."""
        return Flow().map(f)  # type: ignore[no-any-return]

    @staticmethod
    def from_graph(g: Any) -> Flow[Any, Any, Any]:
        """A Flow from a graph or stage with one inlet and one outlet."""
        m = _module_of(g)
        if len(m.shape.inlets) != 1 or len(m.shape.outlets) != 1:
            raise IllegalGraphError(
                f"Flow.from_graph needs one inlet and one outlet, got {m.shape!r}"
            )
        return Flow(m)

    @staticmethod
    def from_sink_and_source(sink: Any, source: Any) -> Flow[Any, Any, Any]:
        """A Flow whose input goes to ``sink`` and whose output comes from ``source``."""
        return Flow.from_sink_and_source_mat(sink, source, Keep.left)

    @staticmethod
    def from_sink_and_source_mat(
        sink: Any, source: Any, combine: Callable[[Any, Any], Any]
    ) -> Flow[Any, Any, Any]:
        """``from_sink_and_source`` combining materialized values."""
        a = _module_of(sink)
        b = _module_of(source)
        i = a.shape.inlets[0].carbon_copy()
        o = b.shape.outlets[0].carbon_copy()
        exposed = {i: (0, a.shape.inlets[0]), o: (1, b.shape.outlets[0])}
        return Flow(
            CompositeModule(FlowShape(i, o), [a, b], [], exposed, lambda m: combine(m[0], m[1]))
        )

    def __class_getitem__(cls, item: Any) -> Any:
        return cls

    def __repr__(self) -> str:
        return f"Flow({self.module.shape!r})"


class Sink(Graph, Generic[In, Mat]):
    """A blueprint with one inlet: ``Sink[In, Mat]``. Factories live in ``sinks.py``."""

    __slots__ = ()

    def run_with(self, source: Any, materializer: Materializer | None = None) -> Any:
        """Run ``source`` into this sink; returns the source's materialized value."""
        return Source(_module_of(source)).to_mat(self, Keep.left).run(materializer)

    def contramap(self, f: Callable[[Any], In]) -> Sink[Any, Mat]:
        """A sink that applies ``f`` before this one."""
        return Flow().map(f).to_mat(self, Keep.right)  # type: ignore[no-any-return]

    @staticmethod
    def from_graph(g: Any) -> Sink[Any, Any]:
        """A Sink from a graph or stage with exactly one inlet."""
        m = _module_of(g)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"Sink.from_graph needs exactly one inlet, got {m.shape!r}")
        return Sink(m)

    # -- factories -----------------------------------------------------------------------------
    @staticmethod
    def foreach(f: Callable[[Any], Any]) -> Sink[Any, Any]:
        """Call ``f`` for each element; result ``Done``."""
        from .._ops.sinks import ForeachSink

        return Sink(AtomicModule(ForeachSink(f)))

    @staticmethod
    def foreach_async(parallelism: int, f: Callable[[Any], Awaitable[Any]]) -> Sink[Any, Any]:
        """Await ``f(x)`` for up to ``parallelism`` elements at once; result ``Done``."""
        return Flow().map_async(parallelism, f).to_mat(Sink.ignore(), Keep.right)  # type: ignore[no-any-return]

    @staticmethod
    def fold(zero: Any, f: Callable[[Any, Any], Any]) -> Sink[Any, Any]:
        """The final accumulation of ``f(acc, x)`` from ``zero``."""
        from .._ops.sinks import FoldSink

        return Sink(AtomicModule(FoldSink(zero, f)))

    @staticmethod
    def fold_async(zero: Any, f: Callable[[Any, Any], Awaitable[Any]]) -> Sink[Any, Any]:
        """``fold`` with an async step."""
        return Flow().fold_async(zero, f).to_mat(Sink.head(), Keep.right)  # type: ignore[no-any-return]

    @staticmethod
    def reduce(f: Callable[[Any, Any], Any]) -> Sink[Any, Any]:
        """``fold`` seeded with the first element; fails with ``NoSuchElementError`` if empty."""
        from .._ops.sinks import ReduceSink

        return Sink(AtomicModule(ReduceSink(f)))

    @staticmethod
    def head() -> Sink[Any, Any]:
        """The first element (then cancel); fails with ``NoSuchElementError`` if empty."""
        from .._ops.sinks import HeadSink

        return Sink(AtomicModule(HeadSink(False)))

    @staticmethod
    def head_option() -> Sink[Any, Any]:
        """The first element, or None if empty."""
        from .._ops.sinks import HeadSink

        return Sink(AtomicModule(HeadSink(True)))

    @staticmethod
    def last() -> Sink[Any, Any]:
        """The last element; fails with ``NoSuchElementError`` if empty."""
        from .._ops.sinks import LastSink

        return Sink(AtomicModule(LastSink(False)))

    @staticmethod
    def last_option() -> Sink[Any, Any]:
        """The last element, or None if empty."""
        from .._ops.sinks import LastSink

        return Sink(AtomicModule(LastSink(True)))

    @staticmethod
    def seq() -> Sink[Any, Any]:
        """Every element, in a list."""
        from .._ops.sinks import SeqSink

        return Sink(AtomicModule(SeqSink()))

    @staticmethod
    def take_last(n: int) -> Sink[Any, Any]:
        """The last ``n`` elements, in a list."""
        from .._ops.sinks import TakeLastSink

        return Sink(AtomicModule(TakeLastSink(n)))

    @staticmethod
    def ignore() -> Sink[Any, Any]:
        """Consume and discard everything; result ``Done``."""
        from .._ops.sinks import IgnoreSink

        return Sink(AtomicModule(IgnoreSink()))

    @staticmethod
    def cancelled() -> Sink[Any, Any]:
        """Cancel at once."""
        from .._ops.sinks import CancelledSink

        return Sink(AtomicModule(CancelledSink()))

    @staticmethod
    def on_complete(cb: Callable[[BaseException | None], Any]) -> Sink[Any, Any]:
        """Call ``cb(None)`` on completion or ``cb(exc)`` on failure."""
        from .._ops.sinks import OnCompleteSink

        return Sink(AtomicModule(OnCompleteSink(cb)))

    # -- more sink factories (queue, combine, as_publisher, ...: add here) ---------------------

    def __repr__(self) -> str:
        return f"Sink({self.module.shape!r})"


class RunnableGraph(Graph, Generic[Mat]):
    """A closed blueprint ready to run: ``RunnableGraph[Mat]``."""

    __slots__ = ()

    def run(self, materializer: Materializer | None = None) -> Mat:
        """Materialize and start the graph; returns its materialized value at once.

        Call inside a running event loop. Without ``materializer`` the loop's default
        one is used.
        """
        from .._impl.materializer import Materializer as _M

        mat = materializer if materializer is not None else _M.default()
        return mat.materialize(self.module)  # type: ignore[no-any-return]

    @staticmethod
    def from_graph(g: Any) -> RunnableGraph[Any]:
        """A RunnableGraph from a closed graph (``GraphDSL.create`` returning ClosedShape)."""
        m = _module_of(g)
        if m.shape.inlets or m.shape.outlets:
            raise IllegalGraphError(
                f"RunnableGraph.from_graph needs a closed graph, got {m.shape!r}"
            )
        return RunnableGraph(m)

    def __repr__(self) -> str:
        return "RunnableGraph"
