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
from .._checks import (
    check,
    element,
    exception,
    fn,
    int_at_least,
    integer,
    opt_fn,
    opt_int_at_least,
    pos_int,
    string,
)
from .._checks import iterable as iterable_
from .._checks import seconds as secs
from .._errors import IllegalGraphError
from .._impl.modules import AtomicModule, CompositeModule, LinearModule, Module
from .._keep import Keep, NotUsed
from .._ops.window_specs import EmitStrategy
from .._stage.shapes import (
    ClosedShape,
    FlowShape,
    Inlet,
    Shape,
    SourceShape,
)

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
        check("via_mat(flow, combine)", None, fn(combine))
        return self._via_module(_module_of(flow), combine)

    # -- simple --------------------------------------------------------------------------------
    def map(self, f: Callable[[Out], U]) -> Any:
        """Transform each element with ``f``.

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Fails when upstream fails or f raises. Cancels when downstream cancels.
        Supervision: resume/restart drop the element.
        """
        check("map(f)", fn(f))
        from .._ops.simple import Map

        return self._via_stage(Map(f))

    def filter(self, p: Callable[[Out], bool]) -> Any:
        """Pass elements for which ``p`` holds.

        Emits when ``p`` holds for an element. Backpressures when ``p`` holds and downstream
        does (an element that fails ``p`` is dropped and the next one pulled). Completes when
        upstream completes. Fails when upstream fails or ``p`` raises. Cancels when downstream
        cancels. Supervision: resume/restart drop the element.
        """
        check("filter(p)", fn(p))
        from .._ops.simple import Filter

        return self._via_stage(Filter(p))

    def filter_not(self, p: Callable[[Out], bool]) -> Any:
        """Pass elements for which ``p`` does not hold.

        Emits when ``p`` does not hold for an element. Backpressures when ``p`` does not hold
        and downstream does. Completes when upstream completes. Fails when upstream fails or
        ``p`` raises. Cancels when downstream cancels. Supervision: resume/restart drop the
        element.
        """
        check("filter_not(p)", fn(p))
        from .._ops.simple import Filter

        return self._via_stage(Filter(p, negate=True))

    def map_concat(self, f: Callable[[Out], Iterable[U]]) -> Any:
        """Emit every element of the iterable ``f(x)`` in order (lazily).

        Emits when downstream pulls and the current iterable has an element left (an empty
        iterable emits nothing and pulls the next element). Backpressures when downstream does,
        or the current iterable still has elements. Completes when upstream completed and the
        current iterable is exhausted. Fails when upstream fails, or ``f`` or iterating its
        result raises. Cancels when downstream cancels. Supervision: resume drops the element
        (and the rest of its iterable); restart does the same.
        """
        check("map_concat(f)", fn(f))
        from .._ops.simple import MapConcat

        return self._via_stage(MapConcat(f))

    def stateful_map_concat(self, factory: Callable[[], Callable[[Out], Iterable[U]]]) -> Any:
        """``map_concat`` whose function comes from ``factory()`` once per run.

        Emits when downstream pulls and the current iterable has an element left.
        Backpressures when downstream does, or the current iterable still has elements.
        Completes when upstream completed and the current iterable is exhausted. Fails when
        upstream fails, or ``factory``, the function or iterating its result raises. Cancels
        when downstream cancels. Supervision: resume drops the element; restart also calls
        ``factory()`` again for a fresh function.
        """
        check("stateful_map_concat(factory)", fn(factory))
        from .._ops.simple import MapConcat

        return self._via_stage(MapConcat(None, factory))

    def stateful_map(
        self,
        create: Callable[[], Any],
        f: Callable[[Any, Out], tuple[Any, U]],
        on_complete: Callable[[Any], U | None] | None = None,
    ) -> Any:
        """Map with state: ``f(state, x) -> (state, y)``; ``on_complete(state)`` may emit
        a last element on upstream completion (None emits nothing).

        ``create()`` makes the state when the stream starts; a ``y`` of None emits nothing.
        ``on_complete(state)`` runs exactly once per state: on completion, failure,
        cancellation, abrupt termination, or before a supervision restart creates a new state;
        its value is emitted on completion, before a failure, and before a restart (as Akka).

        Emits when ``f`` returned a ``y`` that is not None and downstream pulls.
        Backpressures when downstream does. Completes when upstream completes (after the value
        of ``on_complete``, if not None). Fails when upstream fails or ``f`` raises under
        ``stop`` (after the value of ``on_complete``). Cancels when downstream cancels (then
        ``on_complete`` runs, its value is dropped). Supervision: resume drops the element;
        restart also replaces the state.
        """
        check("stateful_map(create, f, on_complete)", fn(create), fn(f), opt_fn(on_complete))
        from .._ops.simple import StatefulMap

        return self._via_stage(StatefulMap(create, f, on_complete))

    def scan(self, zero: U, f: Callable[[U, Out], U]) -> Any:
        """Emit ``zero`` first, then every running accumulation ``f(acc, x)``.

        Emits when the zero or an accumulation is ready and downstream pulls (upstream is not
        pulled before the second element is demanded). Backpressures when downstream does.
        Completes when upstream completes (after the zero, for an empty stream). Fails when
        upstream fails or ``f`` raises. Cancels when downstream cancels. Supervision: resume
        drops the element and keeps the accumulator; restart drops it, resets the accumulator
        and emits the zero again (as Akka).
        """
        check("scan(zero, f)", element(zero), fn(f))
        from .._ops.simple import Scan

        return self._via_stage(Scan(zero, f))

    def fold(self, zero: U, f: Callable[[U, Out], U]) -> Any:
        """Emit the final accumulation on completion (``zero`` for an empty stream).

        Emits when upstream completes and downstream pulls (one element). Backpressures when
        downstream does, once upstream completed; upstream is pulled from the start, without
        waiting for demand. Completes when upstream completes (after the element). Fails when
        upstream fails or ``f`` raises. Cancels when downstream cancels. Supervision: resume
        drops the element; restart also resets the accumulator to ``zero``.
        """
        check("fold(zero, f)", None, fn(f))
        from .._ops.simple import Fold

        return self._via_stage(Fold(zero, f))

    def reduce(self, f: Callable[[Out, Out], Out]) -> Any:
        """Like ``fold`` seeded with the first element; fails on an empty stream.

        Emits when upstream completes and downstream pulls (one element). Backpressures when
        downstream does, once upstream completed; upstream is pulled from the start. Completes
        when upstream completes (after the element). Fails when upstream fails, ``f`` raises,
        or upstream completes empty (``NoSuchElementError``). Cancels when downstream cancels.
        Supervision: resume drops the element; restart also forgets the accumulation.
        """
        check("reduce(f)", fn(f))
        from .._ops.simple import Reduce

        return self._via_stage(Reduce(f))

    def take(self, n: int) -> Any:
        """The first ``n`` elements, then complete (cancelling upstream).

        Emits when upstream emits and fewer than ``n`` elements passed. Backpressures when
        downstream does. Completes when ``n`` elements passed (at once for ``n <= 0``) or
        upstream completes. Fails when upstream fails. Cancels when downstream cancels or
        ``n`` elements passed.
        """
        check("take(n)", integer(n))
        from .._ops.simple import Take

        return self._via_stage(Take(n))

    def take_while(self, p: Callable[[Out], bool], inclusive: bool = False) -> Any:
        """Pass while ``p`` holds; complete at the first element where it does not.

        That element is emitted only with ``inclusive``.

        Emits when ``p`` holds for an element (or for the first element where it does not,
        with ``inclusive``). Backpressures when downstream does. Completes when ``p`` does not
        hold or upstream completes. Fails when upstream fails or ``p`` raises. Cancels when
        downstream cancels or ``p`` does not hold. Supervision: resume/restart drop the
        element.
        """
        check("take_while(p, inclusive)", fn(p))
        from .._ops.simple import TakeWhile

        return self._via_stage(TakeWhile(p, inclusive))

    def drop(self, n: int) -> Any:
        """Skip the first ``n`` elements.

        Emits when the first ``n`` elements were dropped and upstream emits. Backpressures
        when the first ``n`` elements were dropped and downstream does. Completes when
        upstream completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("drop(n)", integer(n))
        from .._ops.simple import Drop

        return self._via_stage(Drop(n))

    def drop_while(self, p: Callable[[Out], bool]) -> Any:
        """Skip elements while ``p`` holds, then pass everything.

        Emits when ``p`` returned false once, and upstream emits. Backpressures when ``p``
        returned false once and downstream does. Completes when upstream completes. Fails when
        upstream fails or ``p`` raises. Cancels when downstream cancels. Supervision:
        resume/restart drop the element.
        """
        check("drop_while(p)", fn(p))
        from .._ops.simple import DropWhile

        return self._via_stage(DropWhile(p))

    def grouped(self, n: int) -> Any:
        """Lists of ``n`` elements; the last one may be shorter.

        Emits when ``n`` elements were collected, or upstream completed with a non-empty
        group. Backpressures when a group is complete and downstream does. Completes when
        upstream completes (after the last group). Fails when upstream fails. Cancels when
        downstream cancels.
        """
        check("grouped(n)", pos_int(n))
        from .._ops.simple import Grouped

        return self._via_stage(Grouped(n))

    def sliding(self, n: int, step: int = 1) -> Any:
        """Windows of ``n`` elements advancing by ``step``.

        The last window may be shorter: a stream shorter than ``n`` gives one partial window,
        and elements after the last full window give one more.

        Emits when a window is full, or upstream completed with elements not yet in an emitted
        window. Backpressures when a window is full and downstream does. Completes when
        upstream completes (after the last window). Fails when upstream fails. Cancels when
        downstream cancels.
        """
        check("sliding(n, step)", pos_int(n), pos_int(step))
        from .._ops.simple import Sliding

        return self._via_stage(Sliding(n, step))

    def limit(self, n: int) -> Any:
        """Pass through; fail with ``StreamLimitReachedError`` beyond ``n`` elements.

        Emits when upstream emits and at most ``n`` elements passed. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails or
        element ``n + 1`` arrives (upstream is cancelled). Cancels when downstream cancels.
        """
        check("limit(n)", integer(n))
        from .._ops.simple import Limit

        return self._via_stage(Limit(n))

    def limit_weighted(self, n: int, cost: Callable[[Out], int]) -> Any:
        """Like ``limit`` with a cost per element.

        Emits when upstream emits and the total ``cost`` is at most ``n``. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails, ``cost``
        raises, or the total cost exceeds ``n`` (``StreamLimitReachedError``). Cancels when
        downstream cancels. Supervision: resume drops the element; restart also resets the
        budget to ``n``.
        """
        check("limit_weighted(n, cost)", integer(n), fn(cost))
        from .._ops.simple import Limit

        return self._via_stage(Limit(n, cost))

    def intersperse(self, inject: Any, start: Any = _MISSING, end: Any = _MISSING) -> Any:
        """Insert ``inject`` between elements; optional ``start`` and ``end`` markers.

        ``start`` goes out first, even before the first element (on an empty stream too);
        ``end`` goes out when upstream completes.

        Emits when upstream emits (the element, preceded by ``inject`` from the second one on)
        or for the markers. Backpressures when downstream does. Completes when upstream
        completes (after ``end``). Fails when upstream fails. Cancels when downstream cancels.
        """
        check("intersperse(inject, start, end)", element(inject), element(start), element(end))
        from .._ops.simple import Intersperse

        kw = {k: v for k, v in (("start", start), ("end", end)) if v is not _MISSING}
        return self._via_stage(Intersperse(inject, **kw))

    def zip_with_index(self) -> Any:
        """Pair each element with its index: ``(x, i)`` from 0.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        from .._ops.simple import ZipWithIndex

        return self._via_stage(ZipWithIndex())

    def log(
        self, name: str, extract: Callable[[Out], Any] | None = None, logger: Any = None
    ) -> Any:
        """Log elements, completion and failure through ``logging``; pass through.

        Elements (``extract(x)`` when given) and completion at DEBUG, failure at ERROR, on
        ``logger`` (default ``reactive.log``); ``Attributes.log_levels`` changes the levels.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails or ``extract`` raises. Cancels when downstream
        cancels (logged too). Supervision: resume/restart drop the element.
        """
        check("log(name, extract, logger)", string(name), opt_fn(extract))
        from .._ops.simple import Log

        return self._via_stage(Log(name, extract, logger))

    # -- async ---------------------------------------------------------------------------------
    def map_async(self, parallelism: int, f: Callable[[Out], Awaitable[U]]) -> Any:
        """Run ``f`` on up to ``parallelism`` elements at once; emit results in input order.

        ``f`` is called in element order; a result of None is skipped.

        Emits when the oldest call's result is ready and downstream pulls. Backpressures when
        ``parallelism`` calls are in flight or waiting to be emitted. Completes when upstream
        completed and every result was emitted. Fails when upstream fails, or ``f`` raises or
        its awaitable fails under ``stop``. Cancels when downstream cancels (calls in flight
        are cancelled). Supervision: resume/restart drop the element.
        """
        check("map_async(parallelism, f)", pos_int(parallelism), fn(f))
        from .._ops.async_ import MapAsync

        return self._via_stage(MapAsync(parallelism, f, ordered=True))

    def map_async_unordered(self, parallelism: int, f: Callable[[Out], Awaitable[U]]) -> Any:
        """Like ``map_async`` but emit results as they complete.

        Emits when any call's result is ready and downstream pulls (None results are skipped).
        Backpressures when ``parallelism`` calls are in flight or waiting to be emitted.
        Completes when upstream completed and every result was emitted. Fails when upstream
        fails, or ``f`` raises or its awaitable fails under ``stop``. Cancels when downstream
        cancels. Supervision: resume/restart drop the element.
        """
        check("map_async_unordered(parallelism, f)", pos_int(parallelism), fn(f))
        from .._ops.async_ import MapAsync

        return self._via_stage(MapAsync(parallelism, f, ordered=False))

    def scan_async(self, zero: U, f: Callable[[U, Out], Awaitable[U]]) -> Any:
        """``scan`` with an async step function.

        One step runs at a time. Emits when the zero is pulled first, then when each step's
        awaitable completes and downstream pulls. Backpressures when downstream does or a step
        runs. Completes when upstream completed and the last step finished. Fails when
        upstream fails, or ``f`` raises or its awaitable fails under ``stop``. Cancels when
        downstream cancels. Supervision: resume drops the element; restart also resets the
        accumulator to ``zero`` (not emitted again).
        """
        check("scan_async(zero, f)", element(zero), fn(f))
        from .._ops.async_ import ScanAsync

        return self._via_stage(ScanAsync(zero, f, emit_each=True))

    def fold_async(self, zero: U, f: Callable[[U, Out], Awaitable[U]]) -> Any:
        """``fold`` with an async step function.

        One step runs at a time. Emits when upstream completed, the last step finished and
        downstream pulls (one element). Backpressures when a step runs. Completes when upstream
        completes (after the element). Fails when upstream fails, or ``f`` raises or its
        awaitable fails under ``stop``. Cancels when downstream cancels. Supervision: resume
        drops the element; restart also resets the accumulator to ``zero``.
        """
        check("fold_async(zero, f)", None, fn(f))
        from .._ops.async_ import ScanAsync

        return self._via_stage(ScanAsync(zero, f, emit_each=False))

    # -- buffers -------------------------------------------------------------------------------
    def buffer(self, size: int, overflow_strategy: Any) -> Any:
        """Buffer up to ``size`` elements; ``overflow_strategy`` says what happens when full.

        Upstream is pulled eagerly while there is room. ``drop_head`` drops the oldest
        buffered element, ``drop_tail`` the newest, ``drop_buffer`` all of them, ``drop_new``
        the incoming one; ``fail`` fails with ``BufferOverflowError``.

        Emits when downstream pulls and the buffer is not empty. Backpressures when the buffer
        is full and the strategy is ``backpressure``. Completes when upstream completed and the
        buffer was emptied. Fails at once when upstream fails (buffered elements are dropped),
        or on overflow with ``fail``. Cancels when downstream cancels.
        """
        check("buffer(size, overflow_strategy)", pos_int(size))
        from .._ops.buffers import Buffer

        return self._via_stage(Buffer(size, overflow_strategy))

    def detach(self) -> Any:
        """A one-element buffer decoupling upstream demand from downstream demand.

        Emits when downstream pulls and the element is buffered. Backpressures when the
        buffered element was not taken yet (upstream is pulled eagerly). Completes when
        upstream completed and the buffer is empty. Fails when upstream fails. Cancels when
        downstream cancels.
        """
        from .._ops.buffers import Buffer
        from .._ops.buffers import OverflowStrategy as OS

        return self._via_stage(Buffer(1, OS.backpressure, name="detach"))

    # -- watching ------------------------------------------------------------------------------
    def watch_termination(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Any:
        """Materialize an awaitable completing with ``Done`` when the stream terminates
        here (or failing with its failure).

        A cancellation from downstream completes it for a normal cancellation and fails it
        with the cause otherwise.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("watch_termination(combine)", fn(combine))
        from .._ops.watch import WatchTermination

        return self._via_stage(WatchTermination(), combine)

    def monitor(self, combine: Callable[[Any, Any], Any] = Keep.right) -> Any:
        """Materialize a ``FlowMonitor`` whose ``state`` tells the stream's last event.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("monitor(combine)", fn(combine))
        from .._ops.watch import Monitor

        return self._via_stage(Monitor(), combine)

    # -- keyed state (issue 14) -----------------------------------------------------------------
    def aggregate_by_key(
        self,
        store: Any,
        key: Callable[[Out], Any],
        zero: Callable[[], Any],
        aggregate: Callable[[Any, Out], Any],
        combine: Callable[[Any, Any], Any] = Keep.right,
    ) -> Any:
        """Keep ``aggregate(value, x)`` per key ``key(x)`` in ``store`` (a ``StoreSpec``;
        ``zero()`` for a new key) and emit ``(key, new_value)`` for each element: the
        changelog of a table. Materializes a read-only ``StoreView`` of the store, current
        while the stream runs (``combine`` with this blueprint's value, ``Keep.right``).

        Emits when an element was aggregated and downstream pulls. Backpressures when
        downstream does. Completes when upstream completes and the store holds every
        update (it is closed in every ending). Fails when upstream fails, a function
        raises, or the store fails. Cancels when downstream cancels. Supervision: resume
        and restart skip the element; restart keeps the store.
        """
        from .._ops.state import AggregateByKey

        return self._via_stage(AggregateByKey(store, key, zero, aggregate), combine)

    def stateful_map_by_key(
        self,
        store: Any,
        key: Callable[[Out], Any],
        f: Callable[[Any, Out], tuple[Any, Any]],
        combine: Callable[[Any, Any], Any] = Keep.right,
    ) -> Any:
        """``stateful_map`` with one state per key ``key(x)``, kept in ``store``:
        ``f(value, x) -> (new_value, y)`` (``value`` None for a key without one; a
        ``new_value`` of None deletes the key; a ``y`` of None emits nothing).
        Materializes a ``StoreView`` (``combine``: as ``aggregate_by_key``).

        Emits when ``f`` returned a ``y`` that is not None and downstream pulls.
        Backpressures when downstream does. Completes when upstream completes and the
        store holds every update. Fails when upstream fails, ``key``/``f`` raises, or the
        store fails. Cancels when downstream cancels.
        Supervision: resume and restart skip the element; restart keeps the store.
        """
        from .._ops.state import StatefulMapByKey

        return self._via_stage(StatefulMapByKey(store, key, f), combine)

    def join_table(
        self,
        table: Any,
        key: Callable[[Out], Any],
        combine: Callable[[Out, Any], U],
        missing: Any = None,
    ) -> Any:
        """Inner stream-table join (Kafka Streams' ``KStream.join(KTable)``): for each
        element ``x`` whose key ``key(x)`` has a value ``v`` in ``table`` (a read-only
        view: ``StoreView``, ``KeyValueStore``, ``KTable``) *now*, emit ``combine(x, v)``.
        An element without a value goes to the ``missing`` sink if one is given;
        otherwise it is dropped, counted and logged at DEBUG (logger ``reactive.state``).

        Emits when an element found its table value and downstream pulls. Backpressures
        when downstream (or ``missing``) backpressures. Completes when upstream
        completes. Fails when upstream fails, ``key``/``combine`` raises (supervision:
        resume/restart skip the element), ``combine`` returns None, or the table is
        closed. Cancels when downstream (or ``missing``) cancels.
        """
        from .._ops.join import InnerJoin, check_table, element_of, is_missing

        check_table("join_table", table, key, combine)
        if missing is None:
            return self.map_concat(InnerJoin(table, key, combine, tagged=False))
        tagged = self.map(InnerJoin(table, key, combine, tagged=True))
        return tagged.divert_to(Flow().map(element_of).to(missing), is_missing)

    def left_join_table(
        self, table: Any, key: Callable[[Out], Any], combine: Callable[[Out, Any], U]
    ) -> Any:
        """Left stream-table join (Kafka Streams' ``KStream.leftJoin(KTable)``): for each
        element ``x`` emit ``combine(x, v)`` with ``v`` the value of ``key(x)`` in
        ``table`` now, or None when it has none.

        Emits when an element was joined and downstream pulls. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails,
        ``key``/``combine`` raises (supervision: resume/restart skip the element),
        ``combine`` returns None, or the table is closed. Cancels when downstream cancels.
        """
        from .._ops.join import LeftJoin, check_table

        check_table("left_join_table", table, key, combine)
        return self.map(LeftJoin(table, key, combine))

    # -- time and rate operators (issue 3: add here) -------------------------------------------
    def throttle(
        self,
        elements: int,
        per: float,
        maximum_burst: int | None = None,
        mode: Any = None,
        cost: Callable[[Out], int] | None = None,
    ) -> Any:
        """Limit the rate to ``elements`` (tokens) per ``per`` seconds with a token bucket.

        The bucket holds ``maximum_burst`` tokens (default ``max(1, tokens per 100 ms)``)
        and starts full; ``cost(x)`` tokens are taken per element (1 without ``cost``).
        ``ThrottleMode.shaping`` (default) delays elements; ``ThrottleMode.enforcing``
        fails with ``RateExceededError`` instead.

        Emits when upstream emits and enough tokens are there. Backpressures when
        downstream does or an element waits for tokens. Completes when upstream completes
        (after a waiting element). Fails when upstream fails or the rate is exceeded in
        enforcing mode. Cancels when downstream cancels.
        """
        check(
            "throttle(elements, per, maximum_burst, mode, cost)",
            pos_int(elements),
            secs(per),
            opt_int_at_least(maximum_burst, -1),
            None,
            opt_fn(cost),
        )
        from .._ops.timer import Throttle, ThrottleMode

        m = ThrottleMode.shaping if mode is None else mode
        return self._via_stage(Throttle(elements, per, maximum_burst, m, cost))

    def grouped_within(self, n: int, seconds: float) -> Any:
        """Lists of up to ``n`` elements, closed by count or every ``seconds``, never empty.

        Emits when the group is full, or the periodic timer fired with a non-empty group,
        and downstream pulls. Backpressures when a full group waits for downstream.
        Completes when upstream completes (after the last partial group). Fails when
        upstream fails. Cancels when downstream cancels.
        """
        check("grouped_within(n, seconds)", pos_int(n), secs(seconds))
        from .._ops.timer import GroupedWithin

        return self._via_stage(GroupedWithin(n, seconds))

    def delay(self, seconds: float, strategy: Any = None, buffer_size: int | None = None) -> Any:
        """Hold every element for ``seconds`` in a buffer of ``buffer_size`` elements
        (default: the ``Attributes.input_buffer`` max, 16, as Akka).

        ``strategy`` (an ``OverflowStrategy``, default ``backpressure``) says what a full
        buffer does. Emits when the head element's delay elapsed and downstream pulls.
        Backpressures when the buffer is full (``backpressure``). Completes when upstream
        completed and the buffer is empty. Fails when upstream fails (or on overflow with
        ``fail``). Cancels when downstream cancels.
        """
        check(
            "delay(seconds, strategy, buffer_size)",
            secs(seconds, False),
            None,
            opt_int_at_least(buffer_size, 1),
        )
        from .._ops.buffers import OverflowStrategy
        from .._ops.timer import Delay

        s = OverflowStrategy.backpressure if strategy is None else strategy
        return self._via_stage(Delay(seconds, s, buffer_size))

    def initial_delay(self, seconds: float) -> Any:
        """Let nothing through before ``seconds`` after materialization.

        Emits when upstream emits after the delay. Backpressures when the delay has not
        elapsed yet, or downstream does. Completes when upstream completes. Fails when upstream
        fails. Cancels when downstream cancels.
        """
        check("initial_delay(seconds)", secs(seconds, False))
        from .._ops.timer import InitialDelay

        return self._via_stage(InitialDelay(seconds))

    def take_within(self, seconds: float) -> Any:
        """Pass elements for ``seconds`` after materialization, then complete.

        Emits when upstream emits in the window. Backpressures when downstream does.
        Completes when the window closes or upstream completes. Fails when upstream
        fails. Cancels when downstream cancels or the window closes.
        """
        check("take_within(seconds)", secs(seconds))
        from .._ops.timer import TakeWithin

        return self._via_stage(TakeWithin(seconds))

    def drop_within(self, seconds: float) -> Any:
        """Drop elements for ``seconds`` after materialization, then pass them.

        Emits when upstream emits after the window. Backpressures when downstream does
        (after the window). Completes when upstream completes. Fails when upstream fails.
        Cancels when downstream cancels.
        """
        check("drop_within(seconds)", secs(seconds))
        from .._ops.timer import DropWithin

        return self._via_stage(DropWithin(seconds))

    def idle_timeout(self, seconds: float) -> Any:
        """Fail with ``StreamTimeoutError`` if no element passed for ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout (checked
        periodically). Cancels when downstream cancels.
        """
        check("idle_timeout(seconds)", secs(seconds))
        from .._ops.timer import IdleTimeout

        return self._via_stage(IdleTimeout(seconds))

    def completion_timeout(self, seconds: float) -> Any:
        """Fail with ``StreamTimeoutError`` if the stream has not completed in ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout. Cancels when
        downstream cancels.
        """
        check("completion_timeout(seconds)", secs(seconds))
        from .._ops.timer import CompletionTimeout

        return self._via_stage(CompletionTimeout(seconds))

    def initial_timeout(self, seconds: float) -> Any:
        """Fail with ``StreamTimeoutError`` if the first element has not passed in ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout. Cancels when
        downstream cancels.
        """
        check("initial_timeout(seconds)", secs(seconds))
        from .._ops.timer import InitialTimeout

        return self._via_stage(InitialTimeout(seconds))

    def backpressure_timeout(self, seconds: float) -> Any:
        """Fail with ``StreamTimeoutError`` if, after an emission, downstream signals no
        demand for ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout (checked
        periodically). Cancels when downstream cancels.
        """
        check("backpressure_timeout(seconds)", secs(seconds))
        from .._ops.timer import BackpressureTimeout

        return self._via_stage(BackpressureTimeout(seconds))

    def keep_alive(self, seconds: float, inject: Callable[[], Out]) -> Any:
        """Emit ``inject()`` when upstream was idle for ``seconds`` and downstream pulls.

        Emits when upstream emits, or after ``seconds`` of upstream idleness with demand.
        Backpressures when downstream does. Completes when upstream completes. Fails when
        upstream fails. Cancels when downstream cancels.
        """
        check("keep_alive(seconds, inject)", secs(seconds), fn(inject))
        from .._ops.timer import KeepAlive

        return self._via_stage(KeepAlive(seconds, inject))

    def conflate(self, f: Callable[[Out, Out], Out]) -> Any:
        """While downstream is slow, fold incoming elements into one with ``f``.

        Emits when downstream pulls and a summary exists. Backpressures never (upstream
        is pulled eagerly). Completes when upstream completes and the summary was
        emitted. Fails when upstream fails. Cancels when downstream cancels.
        Supervision: resume drops the element; restart also drops the summary.
        """
        check("conflate(f)", fn(f))
        from .._ops.rate import Batch

        return self._via_stage(Batch.conflate(lambda x: x, f))

    def conflate_with_seed(self, seed: Callable[[Out], U], f: Callable[[U, Out], U]) -> Any:
        """Like ``conflate``; ``seed(x)`` turns the first element of a summary into it.

        Emits when downstream pulls and a summary exists. Backpressures never. Completes
        when upstream completes and the summary was emitted. Fails when upstream fails.
        Cancels when downstream cancels. Supervision: as ``conflate``.
        """
        check("conflate_with_seed(seed, f)", fn(seed), fn(f))
        from .._ops.rate import Batch

        return self._via_stage(Batch.conflate(seed, f))

    def batch(self, max: int, seed: Callable[[Out], U], f: Callable[[U, Out], U]) -> Any:
        """Like ``conflate_with_seed`` but a summary holds at most ``max`` elements.

        Emits when downstream pulls and a summary exists. Backpressures when the summary
        is full and one more element waits. Completes when upstream completes and
        everything was emitted. Fails when upstream fails. Cancels when downstream
        cancels. Supervision: as ``conflate``.
        """
        check("batch(max, seed, f)", pos_int(max), fn(seed), fn(f))
        from .._ops.rate import Batch

        return self._via_stage(Batch(max, lambda _: 1, seed, f))

    def batch_weighted(
        self,
        max: int,
        cost: Callable[[Out], int],
        seed: Callable[[Out], U],
        f: Callable[[U, Out], U],
    ) -> Any:
        """Like ``batch`` with a summary bounded by the total ``cost`` of its elements.

        Emits when downstream pulls and a summary exists. Backpressures when the summary
        cannot take the next element. Completes when upstream completes and everything
        was emitted. Fails when upstream fails. Cancels when downstream cancels.
        Supervision: as ``conflate``.
        """
        check("batch_weighted(max, cost, seed, f)", pos_int(max), fn(cost), fn(seed), fn(f))
        from .._ops.rate import Batch

        return self._via_stage(Batch(max, cost, seed, f, name="batch_weighted"))

    def expand(self, f: Callable[[Out], Iterable[U]]) -> Any:
        """Replace each element by the iterator ``f(x)``, emitted while downstream is faster.

        Emits when downstream pulls and the current iterator has elements. Backpressures
        when downstream does. Completes when upstream completes and the last iterator
        emitted once (it is not drained). Fails when upstream fails or ``f`` raises.
        Cancels when downstream cancels. Supervision: resume drops the element whose ``f``
        raised (the current iterator goes on); restart also drops the current iterator;
        an iterator that raised is dropped under both.
        """
        check("expand(f)", fn(f))
        from .._ops.rate import Expand

        return self._via_stage(Expand(f))

    # -- error handling operators (issue 3: add here) ------------------------------------------
    def recover(self, f: Callable[[BaseException], Out | None]) -> Any:
        """On an upstream failure emit ``f(exc)`` as the last element and complete.

        ``f`` re-raises to leave the failure as it is (or raises another exception to
        fail with that); returning ``None`` completes without a last element.

        Emits when upstream emits, or once after a recovered failure. Backpressures when
        downstream does. Completes when upstream completes or after recovering. Fails when
        ``f`` raises. Cancels when downstream cancels.
        """
        check("recover(f)", fn(f))
        from .._ops.errors import Recover

        return self._via_stage(Recover(f))

    def recover_with_retries(self, attempts: int, f: Callable[[BaseException], Any]) -> Any:
        """On a failure continue with the Source ``f(exc)``, up to ``attempts`` times.

        ``attempts == 0`` never recovers, a negative value recovers without limit; a
        failure of a replacement source counts as another attempt. ``f`` re-raises to
        leave a failure unrecovered.

        Emits when upstream or the replacement emits. Backpressures when downstream does.
        Completes when upstream or the replacement completes. Fails when a failure is not
        recovered. Cancels when downstream cancels (the replacement too). Supervision:
        applies to an exception ``f`` raises other than the failure itself: stop fails
        with it; resume and restart drop the failure and complete the stream.
        """
        check("recover_with_retries(attempts, f)", integer(attempts), fn(f))
        from .._ops.errors import RecoverWithRetries

        return self._via_stage(RecoverWithRetries(attempts, f))

    def map_error(self, f: Callable[[BaseException], BaseException | None]) -> Any:
        """Fail with ``f(exc)`` instead of the upstream failure (``None`` keeps ``exc``).

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails, with the translated exception.
        Cancels when downstream cancels.
        """
        check("map_error(f)", fn(f))
        from .._ops.errors import MapError

        return self._via_stage(MapError(f))

    # -- nesting and substream operators (issue 3: add here) -----------------------------------
    def flat_map_concat(self, f: Callable[[Out], Any]) -> Any:
        """Turn each element into a Source with ``f`` and emit their elements one source
        after another (only one inner source is consumed at a time).

        Emits when the current inner source has an element. Backpressures when downstream
        does. Completes when upstream and the last inner source completed. Fails when
        upstream, ``f`` or an inner source fails. Cancels when downstream cancels.
        Supervision: resume/restart drop the element whose ``f`` raised.
        """
        check("flat_map_concat(f)", fn(f))
        from .._ops.nesting import FlatMapMerge

        return self._via_stage(FlatMapMerge(1, f, name="flat_map_concat"))

    def flat_map_merge(self, breadth: int, f: Callable[[Out], Any]) -> Any:
        """Turn each element into a Source with ``f``; consume up to ``breadth`` of them
        at once, emitting elements as they arrive (order kept within one source).

        Emits when any inner source has an element. Backpressures when downstream does;
        stops pulling upstream while ``breadth`` sources are active. Completes when
        upstream and every inner source completed. Fails when upstream, ``f`` or an inner
        source fails. Cancels when downstream cancels. Supervision: resume/restart drop the
        element whose ``f`` raised.
        """
        check("flat_map_merge(breadth, f)", pos_int(breadth), fn(f))
        from .._ops.nesting import FlatMapMerge

        return self._via_stage(FlatMapMerge(breadth, f))

    def switch_map(self, f: Callable[[Out], Any]) -> Any:
        """Flat-map to the latest source only (``flat_map_latest``): each new element
        cancels the inner source in use and switches to ``f(element)``.

        Emits when the current inner source has an element. Backpressures never towards
        upstream (it is always pulled; downstream backpressure applies to the inner source).
        Completes when upstream completed and the current inner source completed. Fails
        when upstream, ``f`` or the current inner source fails. Cancels when downstream
        cancels. Supervision: resume/restart drop the element whose ``f`` raised.
        """
        check("switch_map(f)", fn(f))
        from .._ops.nesting import SwitchMap

        return self._via_stage(SwitchMap(f))

    def prefix_and_tail(self, n: int) -> Any:
        """Emit one pair ``(first n elements as a list, Source of the rest)``, then
        complete. ``n <= 0`` gives ``([], whole stream)``; a shorter stream gives
        ``(all elements, empty Source)``. The tail must be materialized once, within the
        subscription timeout (5 s), else it fails with ``SubscriptionTimeoutError``.

        Emits when ``n`` elements arrived (or upstream completed). Backpressures when
        downstream does (then: when the tail's consumer does). Completes when the pair was
        emitted (the tail goes on). Fails when upstream fails before the pair (afterwards the
        tail fails). Cancels when downstream cancels before the pair, or the tail is cancelled.
        """
        check("prefix_and_tail(n)", integer(n))
        from .._ops.nesting import PrefixAndTail

        return self._via_stage(PrefixAndTail(n))

    def group_by(
        self,
        max_substreams: int,
        key: Callable[[Out], Any],
        allow_closed_substream_recreation: bool = False,
    ) -> Any:
        """Demultiplex into one substream per key; returns a ``SubFlow``.

        Keys of closed substreams are remembered (their later elements are dropped) and
        count towards ``max_substreams`` unless ``allow_closed_substream_recreation``.

        Emits when an element with a new key arrives (the substream Source, to the main
        output). Backpressures when the substream an element belongs to backpressures.
        Completes when upstream completes (completing every substream). Fails with
        ``TooManySubstreamsError`` past ``max_substreams``, or when upstream or ``key``
        fails. Cancels when downstream and every substream cancelled. Supervision:
        resume/restart drop the element whose ``key`` raised.
        """
        check("group_by(max_substreams, key)", int_at_least(max_substreams, 0), fn(key))
        from .._ops.nesting import GroupBy
        from .subflow import SubFlow

        return SubFlow(
            self._via_stage(GroupBy(max_substreams, key, allow_closed_substream_recreation))
        )

    def split_when(self, p: Callable[[Out], bool]) -> Any:
        """Start a new substream at each element for which ``p`` holds; returns a
        ``SubFlow``. A cancelled substream is drained up to the next split.

        Emits when a new substream starts. Backpressures when the current substream
        does, or a new one is pending and downstream backpressures. Completes when
        upstream completes. Fails when upstream or ``p`` fails. Cancels when downstream
        cancelled and the current substream ended. Supervision: resume/restart drop the
        element whose ``p`` raised.
        """
        check("split_when(p)", fn(p))
        from .._ops.nesting import Split
        from .subflow import SubFlow

        return SubFlow(self._via_stage(Split(p, after=False)))

    def split_after(self, p: Callable[[Out], bool]) -> Any:
        """End the current substream after each element for which ``p`` holds; returns a
        ``SubFlow``. The element after that one starts a new substream.

        Emits when a new substream starts. Backpressures when the current substream does, or
        a new one is pending and downstream backpressures. Completes when upstream completes.
        Fails when upstream or ``p`` fails. Cancels when downstream cancelled and the current
        substream ended. Supervision: resume/restart drop the element whose ``p`` raised.
        """
        check("split_after(p)", fn(p))
        from .._ops.nesting import Split
        from .subflow import SubFlow

        return SubFlow(self._via_stage(Split(p, after=True)))

    def concat_lazy(self, other: Any) -> Any:
        """All of this, then all of ``other``; ``other`` is materialized at once but
        pulled only once this completed (not eagerly, unlike ``concat``).

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2, detached=False), None)

    def prepend_lazy(self, other: Any) -> Any:
        """All of ``other``, then all of this; this is pulled only once ``other``
        completed (both are materialized at once).

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from .._ops.fan_in import Concat

        if self.module.shape.inlets:
            return self._fan_in([other], Concat(2, detached=False, swap=True), None)
        return Source(_module_of(other))._fan_in([self], Concat(2, detached=False), Keep.right)

    # -- beyond Akka (issue 3) --
    def map_async_partitioned(
        self,
        parallelism: int,
        per_partition: int,
        partitioner: Callable[[Out], Any],
        f: Callable[[Out, Any], Awaitable[U]],
    ) -> Any:
        """Run ``f(x, partitioner(x))`` for at most ``per_partition`` elements of one key
        and ``parallelism`` elements overall at once; emit results in input order.

        ``None`` results are skipped. Up to ``parallelism`` elements are buffered, also
        while their key is saturated.

        Emits when the oldest element's result is ready and downstream pulls.
        Backpressures when ``parallelism`` elements are buffered. Completes when upstream
        completed and every result was emitted. Fails when upstream fails, or ``f`` or
        ``partitioner`` fails under the stopping decider. Cancels when downstream cancels.
        Supervision: resume and restart drop the element.
        """
        check(
            "map_async_partitioned(parallelism, per_partition, partitioner, f)",
            pos_int(parallelism),
            pos_int(per_partition),
            fn(partitioner),
            fn(f),
        )
        from .._ops.async_ import MapAsyncPartitioned

        return self._via_stage(MapAsyncPartitioned(parallelism, per_partition, partitioner, f))

    def debounce(self, seconds: float) -> Any:
        """Emit an element only once ``seconds`` passed without a newer one (the latest
        wins); on upstream completion the pending element is emitted at once.

        Emits when the quiet period after the latest element elapsed and downstream
        pulls, or when upstream completes with an element pending. Backpressures never
        (newer elements replace older ones). Completes when upstream completes and the
        pending element was emitted. Fails when upstream fails. Cancels when downstream
        cancels. Supervision: does not apply (no user code runs).
        """
        check("debounce(seconds)", secs(seconds, False))
        from .._ops.timer import Debounce

        return self._via_stage(Debounce(seconds))

    def drop_repeated(self, eq: Callable[[Out, Out], bool] | None = None) -> Any:
        """Drop consecutive duplicates: elements equal (``eq(previous, x)``, else ``==``)
        to the element emitted just before.

        Emits when an element differs from the previous one. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails or
        ``eq`` raises. Cancels when downstream cancels. Supervision: resume drops the
        element; restart also forgets the previous element.
        """
        check("drop_repeated(eq)", opt_fn(eq))
        from .._ops.simple import DropRepeated

        return self._via_stage(DropRepeated(eq))

    def zip_all(self, other: Any, pad_left: Any, pad_right: Any) -> Any:
        """Pairs ``(a, b)`` of this and ``other`` until both complete; the side that
        completed first is padded (``pad_left`` for this one, ``pad_right`` for ``other``).

        Emits when both sides have an element (or one completed) and downstream pulls.
        Backpressures when downstream does. Completes when both completed. Fails when
        either fails. Cancels when downstream cancels. Supervision: does not apply.
        """
        from .._ops.fan_in import ZipAll

        return self._fan_in([other], ZipAll(pad_left, pad_right), None)

    # -- fan-out operators: also_to, wire_tap, divert_to (add here) ----------------------------
    def _side_output(self, stage: Any, sink: Any, combine: Callable[[Any, Any], Any] | None) -> Any:
        from .fan_ops import side_output

        return self._wrap(side_output(self.module, stage, _module_of(sink), combine))

    def also_to(self, sink: Any) -> Any:
        """Send every element to ``sink`` as well as downstream.

        Emits when an element is available and both downstream and the sink have demand.
        Backpressures when downstream or the sink backpressures. Completes when upstream
        completes. Cancels when downstream or the sink cancels.
        """
        from .._ops.fan_out import Broadcast

        return self._side_output(Broadcast(2, eager_cancel=True), sink, None)

    def also_to_mat(self, sink: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``also_to`` combining this blueprint's and the sink's materialized values.

        Emits when an element is available and both downstream and the sink have demand.
        Backpressures when downstream or the sink backpressures. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream or the sink cancels.
        """
        check("also_to_mat(sink, combine)", None, fn(combine))
        from .._ops.fan_out import Broadcast

        return self._side_output(Broadcast(2, eager_cancel=True), sink, combine)

    def wire_tap(self, sink: Any) -> Any:
        """Send a copy of each element to ``sink`` (or call ``sink(x)`` when given a
        function, Akka's ``wireTap(f)``) only when it has demand; never slows the main line
        (while the tap backpressures, only the latest copy is kept for it).

        Emits when downstream has demand. Backpressures when downstream backpressures.
        Completes when upstream completes. Cancels when downstream cancels (a cancelled
        or failed tap does not affect the main line).
        """
        from .._ops.fan_out import WireTap

        if callable(sink) and not isinstance(sink, Graph):
            sink = Sink.foreach(sink)
        return self._side_output(WireTap(), sink, None)

    def wire_tap_mat(self, sink: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``wire_tap`` combining materialized values.

        Emits when downstream has demand. Backpressures when downstream backpressures (never
        because of the tap). Completes when upstream completes. Fails when upstream fails.
        Cancels when downstream cancels (a cancelled or failed tap does not affect the main
        line).
        """
        check("wire_tap_mat(sink, combine)", None, fn(combine))
        from .._ops.fan_out import WireTap

        return self._side_output(WireTap(), sink, combine)

    def divert_to(self, sink: Any, pred: Callable[[Out], bool]) -> Any:
        """Send elements for which ``pred`` holds only to ``sink``, the others downstream.

        Emits when the chosen output has demand. Backpressures when the chosen output
        backpressures. Completes when upstream completes. Cancels when downstream or the
        sink cancels. Fails when ``pred`` raises.
        """
        check("divert_to(sink, pred)", None, fn(pred))
        from .._ops.fan_out import Partition

        stage = Partition(2, lambda x: 1 if pred(x) else 0, eager_cancel=True)
        return self._side_output(stage, sink, None)

    def divert_to_mat(
        self, sink: Any, pred: Callable[[Out], bool], combine: Callable[[Any, Any], Any]
    ) -> Any:
        """``divert_to`` combining materialized values.

        Emits when the chosen output has demand. Backpressures when the chosen output
        backpressures. Completes when upstream completes. Fails when upstream fails or
        ``pred`` raises. Cancels when downstream or the sink cancels.
        """
        check("divert_to_mat(sink, pred, combine)", None, fn(pred), fn(combine))
        from .._ops.fan_out import Partition

        stage = Partition(2, lambda x: 1 if pred(x) else 0, eager_cancel=True)
        return self._side_output(stage, sink, combine)

    def zip_latest(self, other: Any) -> Any:
        """Pairs ``(a, b)`` of the latest elements of this and ``other``, once both emitted,
        on every new element of either; completes when either completes.

        Emits when both sides delivered at least once, one of them delivered a new element
        since the last pair, and downstream pulls. Backpressures when downstream does (a side
        is pulled again only once its element was used). Completes when either side completes
        (at once if it never delivered). Fails when either side fails. Cancels when
        downstream cancels.
        """
        from .._ops.fan_in import ZipLatest

        return self._fan_in([other], ZipLatest(), None)

    def zip_latest_with(self, other: Any, f: Callable[[Out, Any], U]) -> Any:
        """``f(a, b)`` of the latest elements (see ``zip_latest``).

        Emits when both sides delivered at least once, one of them delivered a new element
        since the last emission, and downstream pulls. Backpressures when downstream does.
        Completes when either side completes. Fails when either side fails or ``f`` raises.
        Cancels when downstream cancels.
        """
        check("zip_latest_with(other, f)", None, fn(f))
        from .._ops.fan_in import ZipLatestWith

        return self._fan_in([other], ZipLatestWith(f), None)

    def merge_sorted(self, other: Any, key: Callable[[Any], Any] | None = None) -> Any:
        """Merge this sorted stream with the sorted ``other`` into one sorted stream.

        Ordered by ``key(x)`` (the element itself without ``key``); on ties this stream's
        element goes first. Unsorted inputs give an unsorted output (nothing is checked).

        Emits when both sides have an element (the smaller goes out), or one side completed
        (the rest of the other passes through). Backpressures when downstream does. Completes
        when both completed. Fails when either fails or ``key`` raises. Cancels when
        downstream cancels.
        """
        check("merge_sorted(other, key)", None, opt_fn(key))
        from .._ops.fan_in import MergeSorted

        return self._fan_in([other], MergeSorted(key), None)

    def interleave(self, other: Any, segment_size: int, eager_close: bool = False) -> Any:
        """``segment_size`` elements of this, then of ``other``, in turn; when one side
        completes the rest of the other follows (unless ``eager_close``).

        Both sides are pulled at start (detached inputs, as Akka's ``Interleave``).

        Emits when the current side has an element. Backpressures when downstream does.
        Completes when both completed, or when either completes with ``eager_close``. Fails
        when either fails. Cancels when downstream cancels.
        """
        check("interleave(other, segment_size)", None, pos_int(segment_size))
        from .._ops.fan_in import Interleave

        return self._fan_in([other], Interleave(2, segment_size, eager_close), None)

    def or_else(self, other: Any) -> Any:
        """This stream; if it completes without any element, ``other`` instead.

        Both are materialized at once; ``other`` is cancelled at this stream's first element.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when this stream completes after emitting at least one element, or when
        ``other`` completes. Fails when either fails. Cancels when downstream cancels.
        """
        from .._ops.fan_in import OrElse

        return self._fan_in([other], OrElse(), None)

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
        """Pairs ``(a, b)`` of this and ``other``; completes when either completes.

        Emits when both sides have an element and downstream pulls. Backpressures when
        downstream does (a side that delivered waits for the other). Completes when either
        side completes (after a pair it still holds; a lone element of the other side is
        dropped). Fails when either side fails. Cancels when downstream cancels.
        """
        from .._ops.fan_in import Zip

        return self._fan_in([other], Zip(), None)

    def zip_mat(self, other: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``zip`` combining materialized values.

        Emits when both sides have an element and downstream pulls. Backpressures when
        downstream does. Completes when either side completes. Fails when either side fails.
        Cancels when downstream cancels.
        """
        check("zip_mat(other, combine)", None, fn(combine))
        from .._ops.fan_in import Zip

        return self._fan_in([other], Zip(), combine)

    def zip_with(self, other: Any, f: Callable[[Out, Any], U]) -> Any:
        """``f(a, b)`` for pairs of this and ``other``.

        Emits when both sides have an element and downstream pulls. Backpressures when
        downstream does. Completes when either side completes (after a combination it still
        holds). Fails when either side fails or ``f`` raises. Cancels when downstream
        cancels.
        """
        check("zip_with(other, f)", None, fn(f))
        from .._ops.fan_in import ZipWith

        return self._fan_in([other], ZipWith(f), None)

    def merge(self, other: Any, eager_complete: bool = False) -> Any:
        """Elements of this and ``other`` as they arrive.

        Ready inputs are served in arrival (FIFO) order. With ``eager_complete`` the first
        side to complete completes the stream: the other is cancelled and an element waiting
        on it is dropped.

        Emits when either side has an element. Backpressures when downstream does. Completes
        when both completed (either, with ``eager_complete``). Fails when either fails.
        Cancels when downstream cancels.
        """
        from .._ops.fan_in import Merge

        return self._fan_in([other], Merge(2, eager_complete), None)

    def merge_mat(
        self, other: Any, combine: Callable[[Any, Any], Any], eager_complete: bool = False
    ) -> Any:
        """``merge`` combining materialized values.

        Emits when either side has an element. Backpressures when downstream does. Completes
        when both completed (either, with ``eager_complete``). Fails when either fails.
        Cancels when downstream cancels.
        """
        check("merge_mat(other, combine)", None, fn(combine))
        from .._ops.fan_in import Merge

        return self._fan_in([other], Merge(2, eager_complete), combine)

    def concat(self, other: Any) -> Any:
        """All of this, then all of ``other`` (both materialized at once).

        Both inputs are pulled at start (detached: one element waits on each); use
        ``concat_lazy`` to pull ``other`` only once this completed.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2), None)

    def concat_mat(self, other: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``concat`` combining materialized values.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        check("concat_mat(other, combine)", None, fn(combine))
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2), combine)

    def prepend(self, other: Any) -> Any:
        """All of ``other``, then all of this.

        Both inputs are pulled at start (detached, as ``concat``); ``prepend_lazy`` pulls
        this only once ``other`` completed.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        from .._ops.fan_in import Concat

        mine = self.module
        if mine.shape.inlets:
            # Flow: ``other`` first, then this flow's output.
            return self._fan_in([other], Concat(2, swap=True), None)
        return Source(_module_of(other))._fan_in([self], Concat(2), lambda a, b: b)

    def prepend_mat(self, other: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``prepend`` combining materialized values.

        Emits when the current input has an element. Backpressures when downstream does.
        Completes when both completed. Fails when either fails. Cancels when downstream
        cancels.
        """
        check("prepend_mat(other, combine)", None, fn(combine))
        from .._ops.fan_in import Concat

        return self._fan_in([other], Concat(2, swap=True), combine)

    # -- event-time windows (issue 13) ---------------------------------------------------------
    def windowed(
        self,
        windows: Any,
        *,
        key: Callable[[Out], Any] | None = None,
        timestamp: Callable[[Out], float] | None = None,
        zero: Callable[[], Any] | None = None,
        aggregate: Callable[[Any, Out], Any] | None = None,
        merge: Callable[[Any, Any], Any] | None = None,
        emit: EmitStrategy = EmitStrategy.on_window_close(),
        late: Any = None,
        idle_timeout: float | None = None,
        store: Any = None,
    ) -> Any:
        """Group elements into event-time windows per key; emit ``Windowed(key, start, end,
        value)``. The materialized value stays this blueprint's (the operator's is ``NotUsed``).

        ``windows`` is ``TimeWindows.of(size)`` (tumbling ``[n*size, (n+1)*size)``;
        ``.advance_by(step)`` hopping, negative starts included), ``SlidingWindows.of(size)``
        (``[t - size, t]`` per element time ``t``, both ends inclusive) or
        ``SessionWindows.with_gap(gap)`` (``[first, last]``, elements at most ``gap``
        apart), each with ``.grace(seconds)``. ``key(elem)`` groups (``None``: one group);
        ``timestamp(elem)`` is event time in seconds (without it: the materializer clock's
        time at arrival, and windows close on timers of that clock). A window's value is the
        list of its elements in arrival order, or ``zero()`` folded with
        ``aggregate(acc, elem)``; sessions bridged by an element are joined with
        ``merge(earlier, later)`` first (required with a custom aggregate).

        Stream time is the largest timestamp seen (never decreases). A time window closes
        when stream time ``>= end + grace``, a sliding window when it is ``> end + grace``,
        a session when it is ``> end + gap + grace``. An element goes into each of its
        windows still open; if all are closed it is late: sent to ``late`` (a ``Sink``)
        when given, else dropped, counted and logged once (one WARNING on the ``reactive``
        logger with the count, when the stream ends). With ``idle_timeout`` (event time
        only), once no element arrived for that many seconds of the materializer clock,
        stream time is ``max_timestamp + (now - last arrival)``, so quiet input still
        closes windows (ignored in processing time, which follows the clock already).

        ``emit=EmitStrategy.on_window_close()`` emits each window once, when it closes;
        ``on_window_update()`` emits, after every element, each window it changed (ordered
        by end, then start), and nothing at close or completion. Windows closing together
        are emitted ordered by end, then start, then the order in which their keys were
        first seen (at their first element added to a window).

        Where the contract is silent this follows Kafka Streams: the element's own
        timestamp advances stream time before its windows are checked; late elements are
        not kept for windows created later; a cancelled ``late`` sink makes later late
        elements counted and logged instead (the main line goes on).

        Emits when a window closes (or changes, with ``on_window_update``) and downstream
        pulls; several windows closed by one element or timer go out one per pull.
        Backpressures when downstream backpressures, or the ``late`` sink does while an
        element waits for it; upstream is pulled only when nothing is pending.
        Completes when upstream completes, after every open window was emitted (ordered as
        above; with ``on_window_update`` nothing more), and ``late`` completes with it.
        Fails when upstream fails (nothing more is emitted; ``late`` fails too), or when
        ``key``/``timestamp``/``zero``/``aggregate``/``merge`` raise under ``stop``.
        Cancels when downstream cancels.
        Supervision: ``resume`` skips the element entirely (no window changed, stream time
        unchanged); ``restart`` also clears all open windows.

        ``store`` (a ``StoreSpec``: ``Stores.in_memory(name)``, ``Stores.persistent(name,
        path)``, or a changelogged one) keeps the open windows, the stream time and (sliding)
        the elements kept for later windows in a store opened per materialization; it is
        written behind (every ``cache_size`` changed records or elements, 0: after every
        element, and whenever the stage stops, including an abort) and read when the stage
        starts, so a stream stopped and started again over a persistent store emits the
        windows an uninterrupted one would (for the elements each run handled). A window
        leaves the store when it is emitted. In a substream (``group_by``) each substream
        opens its own instance of the spec (a persistent one: the same directory, which
        only one instance can hold). Values are serialized by the spec's value serde (default:
        msgpack keeping tuples); a value, key or kept element it cannot encode fails that
        element under supervision (``TypeError`` naming the stage and the value). Without
        ``store`` the windows live in memory only.

        Raises ``ValueError`` when built with only one of ``zero``/``aggregate``, a
        ``SessionWindows`` with a custom aggregate and no ``merge``, or a negative
        ``idle_timeout`` (the specs validate their own sizes, steps, gaps and graces);
        ``TypeError`` for a ``store`` that is not a ``StoreSpec``.
        """
        from .._ops.windows import WindowedStage
        from .._ops.windows_store import StoredWindowedStage

        stage = (WindowedStage if store is None else StoredWindowedStage)(
            windows,
            key=key,
            timestamp=timestamp,
            zero=zero,
            aggregate=aggregate,
            merge=merge,
            emit=emit,
            with_late=late is not None,
            idle_timeout=idle_timeout,
            store=store,
        )
        if late is None:
            return self._via_stage(stage)
        return self._side_output(stage, late, None)


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
        check("to_mat(sink, combine)", None, fn(combine))
        m = _module_of(sink)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"to() needs a Sink, got {m.shape!r}")
        return RunnableGraph(LinearModule(self.module, m, combine))

    def run_with(self, sink: Any, materializer: Materializer | None = None) -> Any:
        """Run this source into ``sink``; returns the sink's materialized value."""
        return self.to_mat(sink, Keep.right).run(materializer)

    def run_foreach(self, f: Callable[[Out], Any], materializer: Materializer | None = None) -> Any:
        """Run calling ``f`` for each element; returns an awaitable of ``Done``."""
        check("run_foreach(f)", fn(f))
        return self.run_with(Sink.foreach(f), materializer)

    def run_fold(
        self, zero: U, f: Callable[[U, Out], U], materializer: Materializer | None = None
    ) -> Any:
        """Run folding the elements; returns an awaitable of the result."""
        check("run_fold(zero, f)", None, fn(f))
        return self.run_with(Sink.fold(zero, f), materializer)

    def run_reduce(
        self, f: Callable[[Out, Out], Out], materializer: Materializer | None = None
    ) -> Any:
        """Run reducing the elements; returns an awaitable of the result."""
        check("run_reduce(f)", fn(f))
        return self.run_with(Sink.reduce(f), materializer)

    # -- context propagation (issue 5: SourceWithContext) --------------------------------------
    def as_source_with_context(self, extract_ctx: Callable[[Out], Any]) -> Any:
        """A ``SourceWithContext``: each element with ``extract_ctx(element)`` as its context."""
        check("as_source_with_context(extract_ctx)", fn(extract_ctx))
        from .with_context import source_with_context

        return source_with_context(self, extract_ctx)

    # -- factories -----------------------------------------------------------------------------
    @staticmethod
    def from_iterable(iterable: Iterable[Out]) -> Source[Out, Any]:
        """The elements of ``iterable``; a fresh iterator per run.

        Emits when downstream pulls (the next element). Completes when the iterator is
        exhausted (right after the last element: it looks one ahead). Fails when iterating
        raises.
        """
        check("Source.from_iterable(iterable)", iterable_(iterable))
        from .._ops.sources import IterableSource

        return Source(AtomicModule(IterableSource(iterable)))

    @staticmethod
    def single(elem: Out) -> Source[Out, Any]:
        """One element, then complete.

        Emits when downstream pulls (once). Completes when the element was emitted.
        """
        check("Source.single(elem)", element(elem))
        from .._ops.sources import SingleSource

        return Source(AtomicModule(SingleSource(elem)))

    @staticmethod
    def empty() -> Source[Any, Any]:
        """Complete at once.

        Emits never. Completes when materialized.
        """
        from .._ops.sources import EmptySource

        return Source(AtomicModule(EmptySource()))

    @staticmethod
    def failed(exc: BaseException) -> Source[Any, Any]:
        """Fail at once with ``exc``.

        Emits never. Completes never: fails with ``exc`` when materialized.
        """
        check("Source.failed(exc)", exception(exc))
        from .._ops.sources import FailedSource

        return Source(AtomicModule(FailedSource(exc)))

    @staticmethod
    def never() -> Source[Any, Any]:
        """Never emit, never complete.

        Emits never. Completes never (only cancellation stops it).
        """
        from .._ops.sources import NeverSource

        return Source(AtomicModule(NeverSource()))

    @staticmethod
    def repeat(elem: Out) -> Source[Out, Any]:
        """``elem`` forever.

        Emits when downstream pulls. Completes never.
        """
        check("Source.repeat(elem)", element(elem))
        from .._ops.sources import RepeatSource

        return Source(AtomicModule(RepeatSource(elem)))

    @staticmethod
    def unfold(state: Any, f: Callable[[Any], tuple[Any, Out] | None]) -> Source[Out, Any]:
        """Elements from ``f(state) -> (next_state, elem)``; None completes.

        ``f`` is called on demand only.

        Emits when downstream pulls and ``f`` returned a pair. Completes when ``f`` returns
        None. Fails when ``f`` raises.
        """
        check("Source.unfold(state, f)", None, fn(f))
        from .._ops.sources import UnfoldSource

        return Source(AtomicModule(UnfoldSource(state, f)))

    @staticmethod
    def unfold_async(
        state: Any, f: Callable[[Any], Awaitable[tuple[Any, Out] | None]]
    ) -> Source[Out, Any]:
        """Like ``unfold`` with an async step.

        One call runs at a time, started on demand. Emits when the awaitable gave a pair.
        Completes when it gives None. Fails when ``f`` raises or its awaitable fails.
        Cancels a running step when downstream cancels.
        """
        check("Source.unfold_async(state, f)", None, fn(f))
        from .._ops.sources import UnfoldAsyncSource

        return Source(AtomicModule(UnfoldAsyncSource(state, f)))

    @staticmethod
    def from_async_iterable(ait: Any) -> Source[Any, Any]:
        """The elements of an async iterable, or of a factory of one (fresh per run).

        One ``__anext__`` runs at a time, started on demand. Emits when it returned an
        element. Completes when the iterator is exhausted. Fails when it raises (or its step
        is cancelled from outside). A running step is cancelled when downstream cancels.
        """
        from .._ops.sources import AsyncIterableSource

        return Source(AtomicModule(AsyncIterableSource(ait)))

    @staticmethod
    def from_awaitable(aw: Any) -> Source[Any, Any]:
        """The result of an awaitable (or a zero-argument async function) as one element.

        An awaitable is awaited from the start, without waiting for demand (Akka's
        ``Source.future``); a zero-argument async function is called on the first demand
        (Akka's ``Source.lazyFuture``). A future shared with others is not cancelled when the
        stream is.

        Emits when the result is there and downstream pulls. Completes when the element was
        emitted, or at once for a None result. Fails when the awaitable fails.
        """
        from .._ops.sources import AwaitableSource

        return Source(AtomicModule(AwaitableSource(aw)))

    @staticmethod
    def tick(initial_delay: float, interval: float, tick: Out) -> Source[Out, Any]:
        """``tick`` every ``interval`` seconds after ``initial_delay``; ticks are dropped
        while downstream back-pressures. Materialized value: a ``Cancellable``.

        Emits when a tick is due and downstream has demand (a tick without demand is dropped:
        no catch-up). Completes when the ``Cancellable`` is cancelled.
        """
        check("Source.tick(initial_delay, interval)", secs(initial_delay, False), secs(interval))
        from .._ops.sources import TickSource

        return Source(AtomicModule(TickSource(initial_delay, interval, tick)))

    @staticmethod
    def zip_n(sources: Iterable[Any]) -> Source[list[Any], Any]:
        """Lists of one element from each source; completes when any completes.

        Emits when every source has an element and downstream pulls. Backpressures when
        downstream does. Completes when any source completes (after a list it still holds);
        an empty list of sources completes at once. Fails when any source fails.
        """
        from .._ops.fan_in import ZipN

        srcs: list[Source[Any, Any]] = [Source(_module_of(s)) for s in sources]
        if not srcs:
            return Source.empty()
        if len(srcs) == 1:
            return srcs[0].map(lambda x: [x])
        return srcs[0]._fan_in(srcs[1:], ZipN(len(srcs)), None)

    # -- more source factories (queue, combine, publisher, lazy ...: add here) -----------------

    @staticmethod
    def combine(
        a: Any, b: Any, *more: Any, strategy: Callable[[int], Any] | None = None
    ) -> Source[Any, Any]:
        """Sources ``a``, ``b``, ``*more`` through a fan-in ``strategy(n)`` (default
        ``Merge``; e.g. ``Concat``, or ``lambda n: Interleave(n, 2)``). Value: ``NotUsed``.

        Emits when the strategy emits (``Merge``: when any source has an element).
        Completes when the strategy completes (``Merge``: when every source completed).
        Fails when a source fails.
        """
        check("Source.combine(strategy)", opt_fn(strategy))
        from .._ops.fan_in import Merge

        srcs: list[Source[Any, Any]] = [Source(_module_of(s)) for s in (a, b, *more)]
        stage = (Merge if strategy is None else strategy)(len(srcs))
        combined = srcs[0]._fan_in(srcs[1:], stage, None)
        return combined.map_materialized_value(lambda _: NotUsed)

    @staticmethod
    def queue(
        buffer_size: int, overflow_strategy: Any = None, max_concurrent_offers: int = 1
    ) -> Source[Any, Any]:
        """A source fed through its materialized ``SourceQueue`` (``await offer(x)``,
        ``complete()``, ``fail(exc)``, ``await watch_completion()``); the overflow
        strategy (default ``OverflowStrategy.backpressure``) settles offers to a full
        buffer; at most ``max_concurrent_offers`` offers may wait (as in Akka). See
        ``reactive._ops.queues.QueueSource`` for the semantics.

        Emits when downstream pulls and the buffer holds an element (an offer meeting demand
        with an empty buffer goes straight downstream). Backpressures never: a full buffer
        settles offers by the strategy (``backpressure`` makes ``offer`` wait; one more than
        ``max_concurrent_offers`` waiting raises ``QueueConcurrencyError``). Completes when
        ``complete()`` was called and the buffered elements were emitted. Fails when
        ``fail(exc)`` is called, or on overflow with ``fail``. Cancels when downstream
        cancels (the queue is closed: later offers return ``queue_closed``).
        """
        check(
            "Source.queue(buffer_size, overflow_strategy, max_concurrent_offers)",
            int_at_least(buffer_size, 0),
            None,
            pos_int(max_concurrent_offers),
        )
        from .._ops.buffers import OverflowStrategy as OS
        from .._ops.queues import QueueSource

        strategy = OS.backpressure if overflow_strategy is None else overflow_strategy
        return Source(AtomicModule(QueueSource(buffer_size, strategy, max_concurrent_offers)))

    @staticmethod
    def from_publisher(publisher: Any) -> Source[Any, Any]:
        """The elements of a Reactive Streams ``Publisher`` (subscribed once per run).

        Emits when downstream pulls and an element arrived. Backpressures by requesting at
        most the input buffer (default 16) ahead, topping up in halves. Completes when the
        publisher signals ``on_complete`` and the buffer is empty. Fails at once on
        ``on_error`` (buffered elements are dropped), or when the publisher signals more than
        requested (rule 1.1). Cancels the subscription when downstream cancels.
        """
        from .._ops.rs_interop import PublisherSource

        if publisher is None:
            raise TypeError("Source.from_publisher(None): a Publisher is required")

        return Source(AtomicModule(PublisherSource(publisher)))

    @staticmethod
    def as_subscriber() -> Source[Any, Any]:
        """A source fed by its materialized Reactive Streams ``Subscriber``.

        Emits when downstream pulls and an element arrived. Backpressures by requesting at
        most the input buffer (default 16) ahead. Completes when ``on_complete`` was signalled
        and the buffer is empty. Fails at once on ``on_error``, or on more elements than
        requested (rule 1.1). Cancels the subscription when downstream cancels (also one
        that arrives after that).
        """
        from .._ops.rs_interop import PublisherSource

        return Source(AtomicModule(PublisherSource(None)))

    @staticmethod
    def from_graph(g: Any) -> Source[Any, Any]:
        """A Source from a graph or stage with exactly one outlet."""
        m = _module_of(g)
        if m.shape.inlets or len(m.shape.outlets) != 1:
            raise IllegalGraphError(f"Source.from_graph needs exactly one outlet, got {m.shape!r}")
        return Source(m)

    # -- lazy and resource sources (issue 12, item 14) -----------------------------------------
    @staticmethod
    def maybe() -> Source[Any, Any]:
        """A source of at most one element, given through its materialized future.

        The materialized value is an ``asyncio.Future``: ``set_result(x)`` emits ``x`` then
        completes, ``set_result(None)`` completes empty, ``set_exception(e)`` fails the
        stream. If the stream is cancelled first, the future is completed with ``None``
        (a later ``set_result`` then raises ``asyncio.InvalidStateError``, as on any done
        future: check ``done()``).

        Emits when the future holds a value and downstream pulls. Backpressures never
        (one element at most). Completes when the value was emitted, or the future was
        completed with None. Fails when the future fails. Cancels when downstream cancels
        (the future is then completed with None).
        """
        from .._ops.sources import MaybeSource

        return Source(AtomicModule(MaybeSource()))

    @staticmethod
    def cycle(factory: Callable[[], Iterable[Out]]) -> Source[Out, Any]:
        """The elements of ``factory()``, calling it again each time its iterable is
        exhausted, forever (Akka's ``Source.cycle``). An empty iterable fails the stream
        with ``ValueError``. ``factory`` is first called on the first demand.

        Emits when downstream pulls (the next element of the current iterable).
        Backpressures when downstream does. Completes never. Fails when ``factory``
        raises, or returns an empty iterable. Cancels when downstream cancels.
        """
        from .._ops.sources import CycleSource

        return Source(AtomicModule(CycleSource(factory)))

    @staticmethod
    def unfold_resource(
        create: Callable[[], Any],
        read: Callable[[Any], Out | None],
        close: Callable[[Any], Any],
    ) -> Source[Out, Any]:
        """A source reading from a resource it opens and closes itself.

        ``create()`` opens the resource when the stream starts, before any demand;
        ``read(resource)`` returns the next element, or ``None`` at the end;
        ``close(resource)`` is called exactly once on completion, failure or
        cancellation (also when the stream is cancelled before its first element). A
        raising ``close`` fails the stream with its exception unless it already failed
        (when the stream already failed or was cancelled, it is logged). ``read`` runs on
        the event loop: a blocking read belongs in ``unfold_resource_async`` (for
        instance with ``asyncio.to_thread``).

        Emits when ``read`` returned an element and downstream pulled. Backpressures when
        downstream does (``read`` is called only on demand). Completes when ``read``
        returns ``None`` (after ``close``). Fails when ``create`` or ``read`` raises (after
        ``close``), or ``close`` raises. Cancels when downstream cancels (after
        ``close``).

        Supervision (``read``): ``resume`` skips the element whose ``read`` raised and
        reads again; ``restart`` calls ``close(old)``, then ``create()``, then reads.
        """
        from .._ops.resource import UnfoldResourceSource

        return Source(AtomicModule(UnfoldResourceSource(create, read, close)))

    @staticmethod
    def unfold_resource_async(
        create: Callable[[], Awaitable[Any]],
        read: Callable[[Any], Awaitable[Out | None]],
        close: Callable[[Any], Awaitable[Any]],
    ) -> Source[Out, Any]:
        """``unfold_resource`` with three coroutine functions: ``await create()``,
        ``await read(resource)`` (``None`` at the end), ``await close(resource)``.

        ``create`` starts when the stream starts, before any demand. ``close`` is awaited
        exactly once on completion, failure or cancellation, and the stream signals its
        end once ``close`` finished. Cancelled while ``create`` is pending, the stream
        closes the resource once ``create`` finishes (``create`` is not cancelled); a
        pending ``read`` is cancelled, then the resource closed.

        Emits when ``read`` returned an element. Backpressures when downstream does (one
        ``read`` per pull). Completes when ``read`` returns ``None`` and ``close``
        finished. Fails when ``create``, ``read`` or ``close`` fails (a failing ``close``
        after a failure or a cancellation is logged). Cancels when downstream cancels.

        Supervision (``read``): ``resume`` skips the element whose ``read`` failed;
        ``restart`` awaits ``close(old)``, then ``create()``, then reads.
        """
        from .._ops.resource import UnfoldResourceAsyncSource

        return Source(AtomicModule(UnfoldResourceAsyncSource(create, read, close)))

    @staticmethod
    def lazy_source(factory: Callable[[], Any]) -> Source[Any, Any]:
        """A source that calls ``factory()`` (returning a ``Source``) on the first
        downstream demand and then emits what that source emits.

        The materialized value is an ``asyncio.Future`` of the inner source's materialized
        value; it fails with the factory's exception if ``factory`` raises, and with
        ``NeverMaterializedError`` if the stream is cancelled before the first demand
        (the factory is then never called).

        Emits when the inner source emits. Backpressures when downstream does. Completes
        when the inner source completes. Fails when ``factory`` raises or the inner source
        fails. Cancels when downstream cancels.
        """
        from .._ops.lazy import LazySource

        return Source(AtomicModule(LazySource(factory)))

    @staticmethod
    def lazy_single(f: Callable[[], Out]) -> Source[Out, Any]:
        """Emits ``f()``, calling ``f`` on the first downstream demand, then completes.
        Materialized value: ``NotUsed``.

        Emits when downstream pulls the first time. Backpressures never. Completes when the
        element was emitted. Fails when ``f`` raises (with that exception) or returns None.
        Cancels when downstream cancels.
        """
        from .._ops.lazy import LazySingleSource

        return Source(AtomicModule(LazySingleSource(f)))

    @staticmethod
    def lazy_future(f: Callable[[], Awaitable[Out | None]]) -> Source[Out, Any]:
        """Calls ``f()`` on the first downstream demand, awaits the awaitable it returns
        and emits its result; a result of ``None`` completes the stream empty.
        Materialized value: ``NotUsed``.

        Emits when the awaitable completes with a value. Backpressures never (the call
        waits for demand). Completes when the element was emitted, or on a ``None`` result.
        Fails when ``f`` raises or the awaitable fails (with that exception). Cancels
        when downstream cancels (a pending coroutine is cancelled; a future is not).
        """
        from .._ops.lazy import LazyFutureSource

        return Source(AtomicModule(LazyFutureSource(f)))

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
        check("to_mat(sink, combine)", None, fn(combine))
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
        src: Source[Any, Any] = Source(_module_of(source))
        return src.via(self).to_mat(sink, Keep.both).run(materializer)

    def join(self, flow: Any) -> RunnableGraph[Mat]:
        """Close a cycle: this flow's output feeds ``flow`` whose output feeds this flow."""
        return self.join_mat(flow, Keep.left)

    def join_mat(self, flow: Any, combine: Callable[[Any, Any], Any]) -> RunnableGraph[Any]:
        """``join`` combining materialized values."""
        check("join_mat(flow, combine)", None, fn(combine))
        a = self.module
        b = _module_of(flow)
        wires = [
            ((0, a.shape.outlets[0]), (1, b.shape.inlets[0])),
            ((1, b.shape.outlets[0]), (0, a.shape.inlets[0])),
        ]
        return RunnableGraph(
            CompositeModule(ClosedShape, [a, b], wires, {}, lambda m: combine(m[0], m[1]))
        )

    # -- context propagation (issue 5: FlowWithContext) ----------------------------------------
    def as_flow_with_context(
        self,
        collapse_context: Callable[[Any, Any], In],
        extract_context: Callable[[Out], Any],
    ) -> Any:
        """A ``FlowWithContext``: each ``(element, context)`` enters this flow as
        ``collapse_context(element, context)``; each output leaves with
        ``extract_context(output)`` as its context."""
        check(
            "as_flow_with_context(collapse_context, extract_context)",
            fn(collapse_context),
            fn(extract_context),
        )
        from .with_context import flow_with_context

        return flow_with_context(self, collapse_context, extract_context)

    @staticmethod
    def from_function(f: Callable[[Any], Any]) -> Flow[Any, Any, Any]:
        """``Flow().map(f)``.

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Fails when f raises. Cancels when downstream cancels.
        """
        check("Flow.from_function(f)", fn(f))
        return Flow().map(f)

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
        """A Flow whose input goes to ``sink`` and whose output comes from ``source``.

        The two sides are not coupled (as Akka's ``fromSinkAndSource``): the source may
        complete while the sink still takes elements, and the other way round.

        Emits when ``source`` emits. Backpressures when ``sink`` backpressures. Completes
        when ``source`` completes. Cancels when ``sink`` cancels.
        """
        return Flow.from_sink_and_source_mat(sink, source, Keep.left)

    @staticmethod
    def from_sink_and_source_mat(
        sink: Any, source: Any, combine: Callable[[Any, Any], Any]
    ) -> Flow[Any, Any, Any]:
        """``from_sink_and_source`` combining materialized values.

        Emits when ``source`` emits. Backpressures when ``sink`` backpressures. Completes
        when ``source`` completes. Cancels when ``sink`` cancels.
        """
        check("Flow.from_sink_and_source_mat(sink, source, combine)", None, None, fn(combine))
        a = _module_of(sink)
        b = _module_of(source)
        i = a.shape.inlets[0].carbon_copy()
        o = b.shape.outlets[0].carbon_copy()
        exposed = {i: (0, a.shape.inlets[0]), o: (1, b.shape.outlets[0])}
        return Flow(
            CompositeModule(FlowShape(i, o), [a, b], [], exposed, lambda m: combine(m[0], m[1]))
        )

    @staticmethod
    def lazy_flow(factory: Callable[[], Any]) -> Flow[Any, Any, Any]:
        """A flow created by ``factory()`` when the first element arrives; until then
        downstream demand is passed upstream.

        The materialized value is an ``asyncio.Future`` of the inner flow's materialized
        value. If the stream completes before any element, it fails with
        ``NeverMaterializedError`` and the output completes. If ``factory()`` raises, the
        stream fails with that exception, upstream is cancelled, and the future fails
        with ``NeverMaterializedError`` whose ``__cause__`` is it. An upstream failure (or
        a cancellation) before any element fails the stream (cancels upstream) and fails
        the future with ``NeverMaterializedError``.

        Emits when the inner flow emits. Backpressures when the inner flow or downstream
        does. Completes when the inner flow completes (or upstream completes before the
        first element). Fails when ``factory`` raises or the inner flow fails. Cancels
        when downstream cancels (through the inner flow, once it exists).
        """
        from .._ops.lazy import LazyFlow

        return Flow(AtomicModule(LazyFlow(factory)))

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
        """A sink that applies ``f`` before this one.

        Backpressures when this sink does. Cancels when this sink cancels, or ``f`` raises
        (under ``stop``).
        """
        check("contramap(f)", fn(f))
        return Flow().map(f).to_mat(self, Keep.right)

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
        """Call ``f`` for each element; result ``Done``.

        The result fails with the stream's failure, or with the exception ``f`` raised.

        Backpressures when ``f`` runs (it runs on the loop, so the next element is requested
        once it returned). Cancels when ``f`` raises under ``stop``. Supervision:
        resume/restart skip the element whose call raised.
        """
        check("Sink.foreach(f)", fn(f))
        from .._ops.sinks import ForeachSink

        return Sink(AtomicModule(ForeachSink(f)))

    @staticmethod
    def foreach_async(parallelism: int, f: Callable[[Any], Awaitable[Any]]) -> Sink[Any, Any]:
        """Await ``f(x)`` for up to ``parallelism`` elements at once; result ``Done``.

        Unordered (Akka: ``mapAsyncUnordered`` + ``ignore``): a call that finished frees its
        slot even while an earlier one still runs.

        Backpressures when ``parallelism`` calls are in flight. Cancels when a call raises or
        fails under ``stop`` (the result fails with it). Supervision: resume/restart skip the
        element.
        """
        check("Sink.foreach_async(parallelism, f)", pos_int(parallelism), fn(f))
        return Flow().map_async_unordered(parallelism, f).to_mat(Sink.ignore(), Keep.right)

    @staticmethod
    def fold(zero: Any, f: Callable[[Any, Any], Any]) -> Sink[Any, Any]:
        """The final accumulation of ``f(acc, x)`` from ``zero``.

        Backpressures when ``f`` runs (synchronously; never otherwise). Cancels when ``f``
        raises under ``stop`` (the result fails with it). Supervision: resume skips the
        element; restart also resets the accumulator to ``zero``.
        """
        check("Sink.fold(zero, f)", None, fn(f))
        from .._ops.sinks import FoldSink

        return Sink(AtomicModule(FoldSink(zero, f)))

    @staticmethod
    def fold_async(zero: Any, f: Callable[[Any, Any], Awaitable[Any]]) -> Sink[Any, Any]:
        """``fold`` with an async step.

        Backpressures when a step runs (one at a time). Cancels when ``f`` raises or its
        awaitable fails under ``stop`` (the result fails with it). Supervision: resume skips
        the element; restart also resets the accumulator to ``zero``.
        """
        check("Sink.fold_async(zero, f)", None, fn(f))
        return Flow().fold_async(zero, f).to_mat(Sink.head(), Keep.right)

    @staticmethod
    def reduce(f: Callable[[Any, Any], Any]) -> Sink[Any, Any]:
        """``fold`` seeded with the first element; fails with ``NoSuchElementError`` if empty.

        Backpressures when ``f`` runs (synchronously; never otherwise). Cancels when ``f``
        raises under ``stop`` (the result fails with it). Supervision: resume skips the
        element; restart also forgets the accumulation.
        """
        check("Sink.reduce(f)", fn(f))
        from .._ops.sinks import ReduceSink

        return Sink(AtomicModule(ReduceSink(f)))

    @staticmethod
    def head() -> Sink[Any, Any]:
        """The first element (then cancel); fails with ``NoSuchElementError`` if empty.

        Backpressures never. Cancels when the first element arrived.
        """
        from .._ops.sinks import HeadSink

        return Sink(AtomicModule(HeadSink(False)))

    @staticmethod
    def head_option() -> Sink[Any, Any]:
        """The first element, or None if empty.

        Backpressures never. Cancels when the first element arrived.
        """
        from .._ops.sinks import HeadSink

        return Sink(AtomicModule(HeadSink(True)))

    @staticmethod
    def last() -> Sink[Any, Any]:
        """The last element; fails with ``NoSuchElementError`` if empty.

        Backpressures never. Cancels never (the result is there when upstream completes).
        """
        from .._ops.sinks import LastSink

        return Sink(AtomicModule(LastSink(False)))

    @staticmethod
    def last_option() -> Sink[Any, Any]:
        """The last element, or None if empty.

        Backpressures never. Cancels never.
        """
        from .._ops.sinks import LastSink

        return Sink(AtomicModule(LastSink(True)))

    @staticmethod
    def seq() -> Sink[Any, Any]:
        """Every element, in a list.

        Backpressures never. Cancels never (the list is the result when upstream completes).
        """
        from .._ops.sinks import SeqSink

        return Sink(AtomicModule(SeqSink()))

    @staticmethod
    def take_last(n: int) -> Sink[Any, Any]:
        """The last ``n`` elements (``n >= 1``), in a list.

        Fewer when the stream was shorter. Backpressures never. Cancels never.
        """
        check("Sink.take_last(n)", pos_int(n))
        from .._ops.sinks import TakeLastSink

        return Sink(AtomicModule(TakeLastSink(n)))

    @staticmethod
    def ignore() -> Sink[Any, Any]:
        """Consume and discard everything; result ``Done``.

        The result fails with the stream's failure. Backpressures never. Cancels never.
        """
        from .._ops.sinks import IgnoreSink

        return Sink(AtomicModule(IgnoreSink()))

    @staticmethod
    def cancelled() -> Sink[Any, Any]:
        """Cancel at once.

        Backpressures never (nothing is requested). Cancels when materialized.
        """
        from .._ops.sinks import CancelledSink

        return Sink(AtomicModule(CancelledSink()))

    @staticmethod
    def on_complete(cb: Callable[[BaseException | None], Any]) -> Sink[Any, Any]:
        """Call ``cb(None)`` on completion or ``cb(exc)`` on failure.

        ``cb`` runs once, also on an abrupt termination (with its error). Backpressures never.
        Cancels never.
        """
        check("Sink.on_complete(cb)", fn(cb))
        from .._ops.sinks import OnCompleteSink

        return Sink(AtomicModule(OnCompleteSink(cb)))

    # -- more sink factories (queue, combine, as_publisher, ...: add here) ---------------------

    @staticmethod
    def combine(
        a: Any, b: Any, *more: Any, strategy: Callable[[int], Any] | None = None
    ) -> Sink[Any, Any]:
        """One sink feeding ``a``, ``b``, ``*more`` through a fan-out ``strategy(n)``
        (default ``Broadcast``; e.g. ``Balance``). Value: ``NotUsed``.

        Backpressures when the strategy does (``Broadcast``: when any sink backpressures).
        Cancels when the strategy cancels (``Broadcast``: when every sink cancelled).
        """
        check("Sink.combine(strategy)", opt_fn(strategy))
        from .._ops.fan_out import Broadcast
        from .fan_ops import combine_sinks

        sinks = [_module_of(s) for s in (a, b, *more)]
        stage = (Broadcast if strategy is None else strategy)(len(sinks))
        return Sink(combine_sinks(sinks, stage))

    @staticmethod
    def queue(max_concurrent_pulls: int = 1) -> Sink[Any, Any]:
        """Materializes a ``SinkQueue``: ``await pull()`` returns the next element or None
        at the end (raising the stream's failure); ``cancel()`` stops the stream. At most
        ``max_concurrent_pulls`` pulls may wait at once (as in Akka).

        The idiom to consume a stream from a task::

            async for x in source.run_with(Sink.queue()):
                ...

        Elements are prefetched up to the input buffer size (``Attributes.input_buffer``,
        default 16). Backpressures when the prefetch buffer is full. Cancels when
        ``cancel()`` is called.
        """
        check("Sink.queue(max_concurrent_pulls)", pos_int(max_concurrent_pulls))
        from .._ops.queues import QueueSink

        return Sink(AtomicModule(QueueSink(max_concurrent_pulls)))

    @staticmethod
    def as_publisher(fanout: bool = False) -> Sink[Any, Any]:
        """Materializes a Reactive Streams ``Publisher`` of the stream's elements;
        ``fanout=False`` accepts exactly one subscriber, ``True`` any number.

        Backpressures when there is no subscriber yet, or the buffer (the input buffer,
        default 16) is full: with ``fanout`` the slowest subscriber bounds how far the
        fastest can be ahead. Cancels when the (last) subscriber cancels, requests
        ``n <= 0`` (rule 3.9), or raises from a signal (rule 2.13).
        """
        from .._ops.rs_interop import PublisherSink

        return Sink(AtomicModule(PublisherSink(fanout, None)))

    @staticmethod
    def from_subscriber(subscriber: Any) -> Sink[Any, Any]:
        """Feed the stream's elements to a Reactive Streams ``Subscriber``.

        Backpressures when the subscriber has no outstanding demand (up to the input buffer,
        default 16, is taken ahead). Cancels when the subscriber cancels, requests ``n <= 0``
        (rule 3.9), or raises from a signal (rule 2.13).
        """
        from .._ops.rs_interop import PublisherSink

        if subscriber is None:
            raise TypeError("Sink.from_subscriber(None): a Subscriber is required")

        return Sink(AtomicModule(PublisherSink(False, subscriber)))

    @staticmethod
    def lazy_sink(factory: Callable[[], Any]) -> Sink[Any, Any]:
        """A sink created by ``factory()`` when the first element arrives.

        The materialized value is an ``asyncio.Future`` of the inner sink's materialized
        value. An empty stream fails it with ``NeverMaterializedError``; if ``factory()``
        raises, it fails with that exception and upstream is cancelled; an upstream
        failure before the first element fails it with ``NeverMaterializedError`` (its
        ``__cause__`` is the failure).

        Backpressures when the inner sink does (one element is requested before it
        exists). Cancels when the inner sink cancels, or ``factory`` raises.
        """
        from .._ops.lazy import LazySink

        return Sink(AtomicModule(LazySink(factory)))

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
        return mat.materialize(self.module)

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
