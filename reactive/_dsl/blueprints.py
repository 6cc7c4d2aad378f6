"""Source, Flow, Sink and RunnableGraph: immutable, reusable, generic blueprints.

The DSL implements no behaviour: each operator method builds a stage from ``_ops`` and
appends it with ``via``/``to`` (an O(1) ``LinearModule``). Operators live once, in
``FlowOps``, shared by ``Source``, ``Flow`` and ``SubFlow``: each class only says how
to append (``_via_module``). ``FlowOps`` is assembled from one mixin per operator family
(``reactive/_dsl/flow_ops/<family>.py``, mirroring ``reactive/_ops/<family>.py``);
``Graph``, the base of every blueprint, is in ``graph.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast, overload

from .._checks import (
    check,
    element,
    exception,
    fn,
    int_at_least,
    opt_fn,
    pos_int,
)
from .._checks import iterable as iterable_
from .._checks import seconds as secs
from .._errors import IllegalGraphError
from .._impl.modules import AtomicModule, CompositeModule, LinearModule, Module
from .._keep import Keep, NotUsed
from .._ops.coupled import CoupledTermination
from .._stage.shapes import (
    BidiShape,
    ClosedShape,
    FlowShape,
)
from .flow_ops.async_ import AsyncOps
from .flow_ops.buffers import BufferOps
from .flow_ops.errors import ErrorOps
from .flow_ops.fan_in import FanInOps
from .flow_ops.fan_out import FanOutOps
from .flow_ops.nesting import NestingOps
from .flow_ops.simple import SimpleOps
from .flow_ops.state import KeyedStateOps
from .flow_ops.substreams import SubstreamOps
from .flow_ops.timer import TimeOps
from .flow_ops.watch import WatchOps
from .flow_ops.windows import WindowOps
from .graph import Graph, _module_of

if TYPE_CHECKING:
    import asyncio
    from typing import Never

    from .._impl.materializer import Materializer
    from .._keep import DoneType, NotUsedType
    from .._ops.buffers import OverflowStrategy
    from .._ops.queues import SinkQueue, SourceQueue
    from .._ops.sources import Cancellable
    from ..rs import Publisher, Subscriber
    from .bidi import BidiFlow
    from .with_context import FlowWithContext, SourceWithContext

__all__ = ["Source", "Flow", "Sink", "RunnableGraph", "FlowOps", "Graph"]

Out = TypeVar("Out")
In = TypeVar("In")
Mat = TypeVar("Mat")
U = TypeVar("U")
T = TypeVar("T")
V = TypeVar("V")
S = TypeVar("S")
M2 = TypeVar("M2")
M3 = TypeVar("M3")
M4 = TypeVar("M4")


class FlowOps(
    SimpleOps[Out, Mat],
    AsyncOps[Out, Mat],
    BufferOps[Out, Mat],
    WatchOps[Out, Mat],
    KeyedStateOps[Out, Mat],
    TimeOps[Out, Mat],
    ErrorOps[Out, Mat],
    NestingOps[Out, Mat],
    SubstreamOps[Out, Mat],
    FanOutOps[Out, Mat],
    FanInOps[Out, Mat],
    WindowOps[Out, Mat],
):
    """Operators shared by Source, Flow and SubFlow: one mixin per operator family
    (``reactive/_dsl/flow_ops/``), mirroring ``reactive/_ops/<family>.py``."""

    __slots__ = ()


# ``IterableSource`` and ``SingleSource`` of ``reactive._ops.sources``, imported on first
# use by ``Source.from_iterable`` and ``Source.single`` (an import statement in a function
# costs once per call, and flat_map_merge builds one inner source per element).
_sources: tuple[Any, Any] | None = None


def _load_sources() -> tuple[Any, Any]:
    global _sources
    from .._ops.sources import IterableSource, SingleSource

    _sources = (IterableSource, SingleSource)
    return _sources


class Source(FlowOps[Out, Mat]):
    """A blueprint with one outlet: ``Source[Out, Mat]``."""

    __slots__ = ()

    def _via_module(self, module: Module, combine: Callable[[Any, Any], Any]) -> Any:
        if module.shape.inlets and module.shape.outlets:
            if module.is_identity:
                return Source(self.module.map_mat(lambda m: combine(m, NotUsed)))
            return Source(LinearModule(self.module, module, combine))
        raise IllegalGraphError(f"via() needs a Flow, got {module.shape!r}")

    def to(self, sink: Sink[Out, Any]) -> RunnableGraph[Mat]:
        """Connect to ``sink``; keeps this source's materialized value."""
        return self.to_mat(sink, Keep.left)

    def to_mat(self, sink: Sink[Out, M2], combine: Callable[[Mat, M2], M3]) -> RunnableGraph[M3]:
        """Connect to ``sink`` combining materialized values."""
        check("to_mat(sink, combine)", None, fn(combine))
        m = _module_of(sink)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"to() needs a Sink, got {m.shape!r}")
        return RunnableGraph(LinearModule(self.module, m, combine))

    def run_with(self, sink: Sink[Out, M2], materializer: Materializer | None = None) -> M2:
        """Run this source into ``sink``; returns the sink's materialized value."""
        return self.to_mat(sink, Keep.right).run(materializer)

    def run_foreach(
        self, f: Callable[[Out], object], materializer: Materializer | None = None
    ) -> asyncio.Future[DoneType]:
        """Run calling ``f`` for each element; returns an awaitable of ``Done``."""
        check("run_foreach(f)", fn(f))
        return self.run_with(Sink.foreach(f), materializer)

    def run_fold(
        self, zero: U, f: Callable[[U, Out], U], materializer: Materializer | None = None
    ) -> asyncio.Future[U]:
        """Run folding the elements; returns an awaitable of the result."""
        check("run_fold(zero, f)", None, fn(f))
        return self.run_with(Sink.fold(zero, f), materializer)

    def run_reduce(
        self, f: Callable[[Out, Out], Out], materializer: Materializer | None = None
    ) -> asyncio.Future[Out]:
        """Run reducing the elements; returns an awaitable of the result."""
        check("run_reduce(f)", fn(f))
        return self.run_with(Sink.reduce(f), materializer)

    def pre_materialize(
        self, materializer: Materializer | None = None
    ) -> tuple[Mat, Source[Out, NotUsedType]]:
        """Materialize this source now; returns its materialized value and a ``Source``
        of its elements (Akka's ``preMaterialize``): the running source feeds a fan-out
        ``Publisher`` (``Sink.as_publisher(fanout=True)``) and the returned source
        subscribes to it, once per run.

        The returned source may be run any number of times, concurrently: each run sees
        the elements published after it subscribed (runs starting together see the same
        ones), and the slowest run bounds how far the fastest can be ahead (the input
        buffer, default 16). Until a run subscribes, the running source is back-pressured
        (nothing is dropped; unlike Akka's, whose publisher times out after 5 s, it waits
        for its first run however long that takes). It completes or fails every run when
        it completes or fails; a run starting after that gets the same end. When every
        run has cancelled, the running source is cancelled.

        Call it inside a running event loop; without ``materializer`` the loop's default
        one is used.

        Of the returned source: Emits when the running source emitted an element after
        this run subscribed, and the run pulls. Backpressures when no run is subscribed,
        or the slowest run is a buffer behind (the running source waits). Completes when
        the running source completes. Cancels when every run has cancelled (the running
        source is cancelled then).
        """
        mat, publisher = self.to_mat(
            Sink.as_publisher(fanout=True, subscription_timeout=None), Keep.both
        ).run(materializer)
        return mat, Source.from_publisher(publisher)

    # -- context propagation (issue 5: SourceWithContext) --------------------------------------
    def as_source_with_context(
        self, extract_ctx: Callable[[Out], U]
    ) -> SourceWithContext[Out, U, Mat]:
        """A ``SourceWithContext``: each element with ``extract_ctx(element)`` as its context."""
        check("as_source_with_context(extract_ctx)", fn(extract_ctx))
        from .with_context import source_with_context

        return source_with_context(self, extract_ctx)

    # -- factories -----------------------------------------------------------------------------
    @staticmethod
    def from_iterable(iterable: Iterable[T]) -> Source[T, NotUsedType]:
        """The elements of ``iterable``; a fresh iterator per run. An iterator (a
        generator, say) is read once: a second run gets what earlier runs left, and says
        so in a WARNING.

        Emits when downstream pulls (the next element). Completes when the iterator is
        exhausted (right after the last element: it looks one ahead). Fails when iterating
        raises.
        """
        if type(iterable) not in (range, list, tuple):  # those pass: no need to ask
            check("Source.from_iterable(iterable)", iterable_(iterable))
        return Source(AtomicModule((_sources or _load_sources())[0](iterable)))

    @staticmethod
    def single(elem: T) -> Source[T, NotUsedType]:
        """One element, then complete.

        Emits when downstream pulls (once). Completes when the element was emitted.
        """
        if elem is None:
            check("Source.single(elem)", element(elem))
        return Source(AtomicModule((_sources or _load_sources())[1](elem)))

    @staticmethod
    def empty() -> Source[Never, NotUsedType]:
        """Complete at once.

        Emits never. Completes when materialized.
        """
        from .._ops.sources import EmptySource

        return Source(AtomicModule(EmptySource()))

    @staticmethod
    def failed(exc: BaseException) -> Source[Never, NotUsedType]:
        """Fail at once with ``exc``.

        Emits never. Completes never: fails with ``exc`` when materialized.
        """
        check("Source.failed(exc)", exception(exc))
        from .._ops.sources import FailedSource

        return Source(AtomicModule(FailedSource(exc)))

    @staticmethod
    def never() -> Source[Never, NotUsedType]:
        """Never emit, never complete.

        Emits never. Completes never (only cancellation stops it).
        """
        from .._ops.sources import NeverSource

        return Source(AtomicModule(NeverSource()))

    @staticmethod
    def repeat(elem: T) -> Source[T, NotUsedType]:
        """``elem`` forever.

        Emits when downstream pulls. Completes never.
        """
        check("Source.repeat(elem)", element(elem))
        from .._ops.sources import RepeatSource

        return Source(AtomicModule(RepeatSource(elem)))

    @staticmethod
    def unfold(state: S, f: Callable[[S], tuple[S, T] | None]) -> Source[T, NotUsedType]:
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
        state: S, f: Callable[[S], Awaitable[tuple[S, T] | None]]
    ) -> Source[T, NotUsedType]:
        """Like ``unfold`` with an async step.

        One call runs at a time, started on demand. Emits when the awaitable gave a pair.
        Completes when it gives None. Fails when ``f`` raises or its awaitable fails.
        Cancels a running step when downstream cancels.
        """
        check("Source.unfold_async(state, f)", None, fn(f))
        from .._ops.sources import UnfoldAsyncSource

        return Source(AtomicModule(UnfoldAsyncSource(state, f)))

    @staticmethod
    def from_async_iterable(
        ait: AsyncIterable[T] | Callable[[], AsyncIterable[T]],
    ) -> Source[T, NotUsedType]:
        """The elements of an async iterable, or of a factory of one (fresh per run).

        One ``__anext__`` runs at a time, started on demand. Emits when it returned an
        element. Completes when the iterator is exhausted. Fails when it raises (or its step
        is cancelled from outside). A running step is cancelled when downstream cancels.
        """
        from .._ops.sources import AsyncIterableSource

        return Source(AtomicModule(AsyncIterableSource(ait)))

    @staticmethod
    def from_awaitable(
        aw: Awaitable[T] | Callable[[], Awaitable[T]],
    ) -> Source[T, NotUsedType]:
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
    def tick(initial_delay: float, interval: float, tick: T) -> Source[T, Cancellable]:
        """``tick`` every ``interval`` seconds after ``initial_delay``; ticks are dropped
        while downstream back-pressures. Materialized value: a ``Cancellable``.

        Emits when a tick is due and downstream has demand (a tick without demand is dropped:
        no catch-up). Ticks are a fixed delay apart, as Akka's: after a stalled event loop
        one tick goes out, the next an ``interval`` later (no burst of the missed ones).
        Completes when the ``Cancellable`` is cancelled.
        """
        check("Source.tick(initial_delay, interval)", secs(initial_delay, False), secs(interval))
        from .._ops.sources import TickSource

        return Source(AtomicModule(TickSource(initial_delay, interval, tick)))

    @staticmethod
    def zip_n(sources: Iterable[Source[T, Any]]) -> Source[list[T], NotUsedType]:
        """Lists of one element from each source; completes when any completes.

        Emits when every source has an element and downstream pulls. Backpressures when
        downstream does. Completes when any source completes (after a list it still holds);
        an empty list of sources completes at once. Fails when any source fails.
        """
        from .._ops.fan_in import ZipN

        srcs = _sources_of("Source.zip_n(sources)", sources)
        if not srcs:
            return cast("Source[list[T], NotUsedType]", Source.empty())
        if len(srcs) == 1:
            return cast("Source[list[Any], Any]", srcs[0].map(lambda x: [x]))
        return cast("Source[list[Any], Any]", srcs[0]._fan_in(srcs[1:], ZipN(len(srcs)), None))

    @staticmethod
    def zip_with_n(
        f: Callable[[list[T]], U], sources: Iterable[Source[T, Any]]
    ) -> Source[U, NotUsedType]:
        """``f`` of a list of one element from each source (Akka's ``Source.zipWithN``).

        Emits when every source has an element and downstream pulls. Backpressures when
        downstream does. Completes when any source completes (after the combination it
        still holds); an empty list of sources completes at once. Fails when any source
        fails or ``f`` raises (supervised). Cancels every source when downstream cancels.
        """
        from .._ops.fan_in import ZipWithN

        check("Source.zip_with_n(f, sources)", fn(f))
        srcs = _sources_of("Source.zip_with_n(f, sources)", sources)
        if not srcs:
            return cast("Source[U, NotUsedType]", Source.empty())
        if len(srcs) == 1:
            return cast("Source[U, NotUsedType]", srcs[0].map(lambda x: f([x])))
        return cast(
            "Source[U, NotUsedType]", srcs[0]._fan_in(srcs[1:], ZipWithN(f, len(srcs)), None)
        )

    @staticmethod
    def future_source(aw: Awaitable[Source[T, M2]]) -> Source[T, asyncio.Future[M2]]:
        """The elements of the Source an awaitable gives (Akka's ``Source.futureSource``).

        The awaitable is awaited from the start (a future shared with others is not
        cancelled when the stream stops early); the Source is materialized as soon as it
        is there. A coroutine can be awaited once only: give a future (or a task) to run
        the blueprint more than once. Materialized value: an awaitable of the inner
        Source's materialized value, failed with the awaitable's failure, a ``TypeError``
        when the result is no Source, or ``NeverMaterializedError`` when downstream
        cancels first.

        Emits when the inner Source emits. Completes when the inner Source completes.
        Fails when the awaitable fails, gives no Source, or the inner Source fails.
        Cancels the inner Source (or the awaitable, if not shared) when downstream cancels.
        """
        from .._ops.lazy import FutureSource

        return Source(AtomicModule(FutureSource(aw)))

    # -- more source factories (queue, combine, publisher, lazy ...: add here) -----------------

    @staticmethod
    def combine(
        a: Source[T, Any],
        b: Source[T, Any],
        *more: Source[T, Any],
        strategy: Callable[[int], Any] | None = None,
    ) -> Source[T, NotUsedType]:
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
        out: Source[T, NotUsedType] = combined.map_materialized_value(lambda _: NotUsed)
        return out

    @staticmethod
    def queue(
        buffer_size: int,
        overflow_strategy: OverflowStrategy | None = None,
        max_concurrent_offers: int = 1,
    ) -> Source[Any, SourceQueue]:
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
    def from_publisher(publisher: Publisher[T]) -> Source[T, NotUsedType]:
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
    def as_subscriber() -> Source[Any, Subscriber[Any]]:
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
    def maybe() -> Source[Any, asyncio.Future[Any]]:
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
    def cycle(factory: Callable[[], Iterable[T]]) -> Source[T, NotUsedType]:
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
        create: Callable[[], S],
        read: Callable[[S], T | None],
        close: Callable[[S], object],
    ) -> Source[T, NotUsedType]:
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
        create: Callable[[], Awaitable[S]],
        read: Callable[[S], Awaitable[T | None]],
        close: Callable[[S], Awaitable[object]],
    ) -> Source[T, NotUsedType]:
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
    def lazy_source(factory: Callable[[], Source[T, M2]]) -> Source[T, asyncio.Future[M2]]:
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
    def lazy_single(f: Callable[[], T]) -> Source[T, NotUsedType]:
        """Emits ``f()``, calling ``f`` on the first downstream demand, then completes.
        Materialized value: ``NotUsed``.

        Emits when downstream pulls the first time. Backpressures never. Completes when the
        element was emitted. Fails when ``f`` raises (with that exception) or returns None.
        Cancels when downstream cancels.
        """
        from .._ops.lazy import LazySingleSource

        return Source(AtomicModule(LazySingleSource(f)))

    @staticmethod
    def lazy_future(f: Callable[[], Awaitable[T | None]]) -> Source[T, NotUsedType]:
        """Calls ``f()`` on the first downstream demand, awaits the awaitable it returns
        and emits its result; a result of ``None`` completes the stream empty.
        Materialized value: ``NotUsed``.

        Emits when the awaitable completes with a value. Backpressures never (the call
        waits for demand). Completes when the element was emitted, or on a ``None`` result.
        Fails when ``f`` raises or the awaitable fails (with that exception). Cancels
        when downstream cancels (a pending coroutine is cancelled; a future is not).
        """
        from .._ops.lazy import LazyFuture

        return Source(AtomicModule(LazyFuture(f)))

    @staticmethod
    def lazy_future_source(
        factory: Callable[[], Awaitable[Source[T, M2]]],
    ) -> Source[T, asyncio.Future[M2]]:
        """A source that calls ``factory()`` on the first downstream demand, awaits the
        awaitable of a ``Source`` it returns and then emits what that source emits (Akka's
        ``Source.lazyFutureSource``: ``lazy_source`` with an async factory).

        The materialized value is an ``asyncio.Future`` of the inner source's materialized
        value; it fails with the exception of a raising ``factory`` or a failed
        awaitable, a ``TypeError`` when ``factory`` returns no awaitable or the result is
        no Source, and ``NeverMaterializedError`` when the stream is cancelled before the
        inner source exists (before the first demand the factory is never called; a
        pending coroutine is then cancelled, a future is not).

        Emits when the inner source emits. Backpressures when downstream does. Completes
        when the inner source completes. Fails when ``factory`` raises, the awaitable
        fails, or the inner source fails. Cancels when downstream cancels.
        """
        from .._ops.lazy import LazyFutureSource

        return Source(AtomicModule(LazyFutureSource(factory)))

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

    def to(self, sink: Sink[Out, Any]) -> Sink[In, Mat]:
        """Connect to ``sink`` giving a Sink; keeps this flow's materialized value."""
        return self.to_mat(sink, Keep.left)

    def to_mat(self, sink: Sink[Out, M2], combine: Callable[[Mat, M2], M3]) -> Sink[In, M3]:
        """Connect to ``sink`` giving a Sink, combining materialized values."""
        check("to_mat(sink, combine)", None, fn(combine))
        m = _module_of(sink)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"to() needs a Sink, got {m.shape!r}")
        if self.module.is_identity:
            # An identity flow materializes NotUsed: that is its ``Mat``.
            return Sink(m.map_mat(lambda x: combine(cast("Mat", NotUsed), x)))
        return Sink(LinearModule(self.module, m, combine))

    def run_with(
        self,
        source: Source[In, M2],
        sink: Sink[Out, M3],
        materializer: Materializer | None = None,
    ) -> tuple[M2, M3]:
        """Run ``source`` through this flow into ``sink``; returns ``(source_mat, sink_mat)``."""
        src: Source[Any, Any] = Source(_module_of(source))
        through = cast("Source[Any, Any]", src.via(self))
        return through.to_mat(sink, Keep.both).run(materializer)

    @overload
    def join(self, flow: Flow[Out, In, Any]) -> RunnableGraph[Mat]: ...
    @overload
    def join(self, flow: BidiFlow[Out, U, V, In, Any]) -> Flow[V, U, Mat]: ...
    def join(self, flow: Any) -> Any:
        """Close this flow with ``flow``, keeping this flow's materialized value.

        With a ``Flow``: a cycle, this flow's output feeds ``flow`` whose output feeds this
        flow (a ``RunnableGraph``). With a ``BidiFlow`` (Akka's ``join(bidi)``): this flow
        closes the top of the protocol stack, its output feeding ``bidi``'s ``in1`` and
        ``bidi``'s ``out2`` feeding it; the result is a ``Flow`` from ``bidi``'s ``in2`` to
        its ``out1`` (the bottom of the stack, towards the wire).
        """
        return self.join_mat(flow, Keep.left)

    @overload
    def join_mat(
        self, flow: Flow[Out, In, M2], combine: Callable[[Mat, M2], M3]
    ) -> RunnableGraph[M3]: ...
    @overload
    def join_mat(
        self, flow: BidiFlow[Out, U, V, In, M2], combine: Callable[[Mat, M2], M3]
    ) -> Flow[V, U, M3]: ...
    def join_mat(self, flow: Any, combine: Callable[[Any, Any], Any]) -> Any:
        """``join`` combining materialized values (this flow's first)."""
        check("join_mat(flow, combine)", None, fn(combine))
        a = self.module
        b = _module_of(flow)
        if isinstance(b.shape, BidiShape):
            return Flow(bidi_join_module(b, a, lambda mb, mf: combine(mf, mb), reverse=True))
        if len(b.shape.inlets) != 1 or len(b.shape.outlets) != 1:
            raise IllegalGraphError(f"join() needs a Flow or a BidiFlow, got {b.shape!r}")
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
        collapse_context: Callable[[U, V], In],
        extract_context: Callable[[Out], S],
    ) -> FlowWithContext[U, V, Out, S, Mat]:
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
    def from_function(f: Callable[[T], U]) -> Flow[T, U, NotUsedType]:
        """``Flow().map(f)``.

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Fails when f raises. Cancels when downstream cancels.
        """
        check("Flow.from_function(f)", fn(f))
        return cast("Flow[Any, Any, Any]", Flow().map(f))

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
    def from_sink_and_source(sink: Sink[T, M2], source: Source[U, Any]) -> Flow[T, U, M2]:
        """A Flow whose input goes to ``sink`` and whose output comes from ``source``.

        The two sides are not coupled (as Akka's ``fromSinkAndSource``): the source may
        complete while the sink still takes elements, and the other way round.

        Emits when ``source`` emits. Backpressures when ``sink`` backpressures. Completes
        when ``source`` completes. Cancels when ``sink`` cancels.
        """
        return Flow.from_sink_and_source_mat(sink, source, Keep.left)

    @staticmethod
    def from_sink_and_source_mat(
        sink: Sink[T, M2], source: Source[U, M3], combine: Callable[[M2, M3], M4]
    ) -> Flow[T, U, M4]:
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
    def from_sink_and_source_coupled(sink: Sink[T, M2], source: Source[U, Any]) -> Flow[T, U, M2]:
        """A Flow whose input goes to ``sink`` and whose output comes from ``source``, the
        termination of both sides coupled (Akka's ``fromSinkAndSourceCoupled``).

        When upstream completes (fails), ``sink`` completes (fails), ``source`` is
        cancelled and downstream completes (fails). When downstream cancels, ``source`` is
        cancelled, ``sink`` completes and upstream is cancelled. When ``source`` completes
        (fails), downstream completes (fails), ``sink`` completes (fails) and upstream is
        cancelled. When ``sink`` cancels, upstream and ``source`` are cancelled and
        downstream completes. The order of the signals to the two sides is unspecified.
        Keeps ``sink``'s materialized value, as ``from_sink_and_source`` does.

        Emits when ``source`` emits. Backpressures when ``sink`` backpressures. Completes
        when ``source`` completes, or upstream completes, or ``sink`` cancels. Fails when
        ``source`` or upstream fails. Cancels when ``sink`` cancels, downstream cancels, or
        ``source`` completes or fails.
        """
        return Flow.from_sink_and_source_coupled_mat(sink, source, Keep.left)

    @staticmethod
    def from_sink_and_source_coupled_mat(
        sink: Sink[T, M2], source: Source[U, M3], combine: Callable[[M2, M3], M4]
    ) -> Flow[T, U, M4]:
        """``from_sink_and_source_coupled`` combining materialized values (the sink's
        first).

        Emits when ``source`` emits. Backpressures when ``sink`` backpressures. Completes
        when ``source`` completes, or upstream completes, or ``sink`` cancels. Fails when
        ``source`` or upstream fails. Cancels when ``sink`` cancels, downstream cancels, or
        ``source`` completes or fails.
        """
        op = "Flow.from_sink_and_source_coupled_mat(sink, source, combine)"
        check(op, None, None, fn(combine))
        a = _module_of(sink)
        b = _module_of(source)
        if len(a.shape.inlets) != 1 or a.shape.outlets:
            raise IllegalGraphError(f"{op}: sink must be a Sink, got {a.shape!r}")
        if b.shape.inlets or len(b.shape.outlets) != 1:
            raise IllegalGraphError(f"{op}: source must be a Source, got {b.shape!r}")
        c = AtomicModule(CoupledTermination())
        cs = c.shape
        assert isinstance(cs, BidiShape)
        i = cs.in1.carbon_copy()
        o = cs.out2.carbon_copy()
        wires = [
            ((2, cs.out1), (0, a.shape.inlets[0])),
            ((1, b.shape.outlets[0]), (2, cs.in2)),
        ]
        exposed = {i: (2, cs.in1), o: (2, cs.out2)}
        return Flow(
            CompositeModule(
                FlowShape(i, o), [a, b, c], wires, exposed, lambda m: combine(m[0], m[1])
            )
        )

    @staticmethod
    def lazy_flow(factory: Callable[[], Flow[T, U, M2]]) -> Flow[T, U, asyncio.Future[M2]]:
        """A flow created by ``factory()`` when the first element arrives; until then
        downstream demand is passed upstream.

        The materialized value is an ``asyncio.Future`` of the inner flow's materialized
        value. If the stream completes before any element, it fails with
        ``NeverMaterializedError`` and the output completes. If ``factory()`` raises, the
        stream fails with that exception, upstream is cancelled, and the future fails
        with ``NeverMaterializedError`` whose ``__cause__`` is it. An upstream failure (or
        a cancellation) before any element fails the stream (cancels upstream) and fails
        the future with ``NeverMaterializedError`` (a cancellation: Akka's default
        ``EagerCancellation``; ``Attributes.nested_materialization_cancellation_policy(
        NestedMaterializationCancellationPolicy.propagate_to_nested)`` holds that cancel
        until the inner flow exists and then cancels the inner flow with its cause).

        Emits when the inner flow emits. Backpressures when the inner flow or downstream
        does. Completes when the inner flow completes (or upstream completes before the
        first element). Fails when ``factory`` raises or the inner flow fails. Cancels
        when downstream cancels (through the inner flow, once it exists).
        """
        from .._ops.lazy import LazyFlow

        return Flow(AtomicModule(LazyFlow(factory)))

    @staticmethod
    def lazy_future_flow(
        factory: Callable[[], Awaitable[Flow[T, U, M2]]],
    ) -> Flow[T, U, asyncio.Future[M2]]:
        """``lazy_flow`` with an async factory (Akka's ``Flow.lazyFutureFlow``):
        ``factory()`` is called when the first element arrives and returns an awaitable
        of the ``Flow``; the first element and the rest of the stream go through it.

        The materialized value is an ``asyncio.Future`` of the inner flow's materialized
        value. If the stream completes before any element, it fails with
        ``NeverMaterializedError`` and the output completes. If ``factory()`` raises or
        its awaitable fails, the stream fails with that exception, upstream is
        cancelled, and the future fails with ``NeverMaterializedError`` whose
        ``__cause__`` is it. While the awaitable is pending nothing more is pulled,
        upstream's completion or failure waits for the inner flow (after the first
        element), and a downstream cancel cancels upstream at once (Akka's default
        ``EagerCancellation``; the future fails with ``NeverMaterializedError``;
        ``Attributes.nested_materialization_cancellation_policy(
        NestedMaterializationCancellationPolicy.propagate_to_nested)`` holds that cancel
        until the inner flow exists and then cancels the inner flow with its cause).

        Emits when the inner flow emits. Backpressures when the inner flow or downstream
        does (and while the awaitable is pending). Completes when the inner flow completes
        (or upstream completes before the first element). Fails when ``factory`` raises,
        the awaitable fails, or the inner flow fails. Cancels when downstream cancels
        (through the inner flow, once it exists).
        """
        from .._ops.lazy import LazyFutureFlow

        return Flow(AtomicModule(LazyFutureFlow(factory)))

    @staticmethod
    def future_flow(aw: Awaitable[Flow[T, U, M2]]) -> Flow[T, U, asyncio.Future[M2]]:
        """The elements go through the Flow an awaitable gives (Akka's
        ``Flow.futureFlow``).

        The awaitable is awaited from the start (a future shared with others is not
        cancelled when the stream stops early) and the Flow is materialized as soon as it
        is there, before any element. A coroutine can be awaited once only: give a future
        (or a task) to run the blueprint more than once. Until then nothing is pulled;
        upstream's completion or failure is handed to the inner flow once it runs (it may
        recover), and a downstream cancel cancels upstream at once (Akka's default
        ``EagerCancellation``; ``Attributes.nested_materialization_cancellation_policy(
        NestedMaterializationCancellationPolicy.propagate_to_nested)`` holds that cancel
        until the inner flow exists and then cancels the inner flow with its cause).
        Materialized value: an ``asyncio.Future`` of the inner flow's materialized value,
        failed with ``NeverMaterializedError`` when the awaitable fails (its
        ``__cause__``), gives no Flow, or downstream cancels first (eager cancellation).

        Emits when the inner flow emits. Backpressures when the inner flow or downstream
        does (and until the awaitable completes). Completes when the inner flow completes.
        Fails when the awaitable fails or gives no Flow, or the inner flow fails. Cancels
        when downstream cancels (through the inner flow, once it exists).
        """
        from .._ops.lazy import FutureFlow

        return Flow(AtomicModule(FutureFlow(aw)))

    def __class_getitem__(cls, item: Any) -> Any:
        return cls

    def __repr__(self) -> str:
        return f"Flow({self.module.shape!r})"


class Sink(Graph, Generic[In, Mat]):
    """A blueprint with one inlet: ``Sink[In, Mat]``. Factories live in ``sinks.py``."""

    __slots__ = ()

    def run_with(self, source: Source[In, M2], materializer: Materializer | None = None) -> M2:
        """Run ``source`` into this sink; returns the source's materialized value."""
        src: Source[In, M2] = Source(_module_of(source))
        return src.to_mat(self, Keep.left).run(materializer)

    def pre_materialize(
        self, materializer: Materializer | None = None
    ) -> tuple[Mat, Sink[In, NotUsedType]]:
        """Materialize this sink now; returns its materialized value and a ``Sink`` that
        feeds it (Akka's ``preMaterialize``): the running sink is fed by a
        ``Source.as_subscriber()`` whose ``Subscriber`` the returned sink feeds
        (``Sink.from_subscriber``).

        The returned sink can be run once: a Reactive Streams subscriber takes one
        subscription (a second run is cancelled at once, rule 2.5). Until it runs, the
        running sink waits for elements. The run's completion completes the sink and its
        failure fails it.

        Call it inside a running event loop; without ``materializer`` the loop's default
        one is used.

        Of the returned sink: Backpressures when the running sink backpressures (up to the
        input buffer, default 16, is taken ahead). Cancels when the running sink cancels.
        """
        subscriber, mat = Source.as_subscriber().to_mat(self, Keep.both).run(materializer)
        return mat, Sink.from_subscriber(subscriber)

    def contramap(self, f: Callable[[T], In]) -> Sink[T, Mat]:
        """A sink that applies ``f`` before this one.

        Backpressures when this sink does. Cancels when this sink cancels, or ``f`` raises
        (under ``stop``).
        """
        check("contramap(f)", fn(f))
        return cast("Flow[Any, Any, Any]", Flow().map(f)).to_mat(self, Keep.right)

    @staticmethod
    def from_graph(g: Any) -> Sink[Any, Any]:
        """A Sink from a graph or stage with exactly one inlet."""
        m = _module_of(g)
        if len(m.shape.inlets) != 1 or m.shape.outlets:
            raise IllegalGraphError(f"Sink.from_graph needs exactly one inlet, got {m.shape!r}")
        return Sink(m)

    # -- factories -----------------------------------------------------------------------------
    @staticmethod
    def foreach(f: Callable[[T], object]) -> Sink[T, asyncio.Future[DoneType]]:
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
    def foreach_async(
        parallelism: int, f: Callable[[T], Awaitable[object]]
    ) -> Sink[T, asyncio.Future[DoneType]]:
        """Await ``f(x)`` for up to ``parallelism`` elements at once; result ``Done``.

        Unordered (Akka: ``mapAsyncUnordered`` + ``ignore``): a call that finished frees its
        slot even while an earlier one still runs.

        Backpressures when ``parallelism`` calls are in flight. Cancels when a call raises or
        fails under ``stop`` (the result fails with it). Supervision: resume/restart skip the
        element.
        """
        check("Sink.foreach_async(parallelism, f)", pos_int(parallelism), fn(f))
        flow = cast("Flow[Any, Any, Any]", Flow().map_async_unordered(parallelism, f))
        return flow.to_mat(Sink.ignore(), Keep.right)

    @staticmethod
    def fold(zero: U, f: Callable[[U, T], U]) -> Sink[T, asyncio.Future[U]]:
        """The final accumulation of ``f(acc, x)`` from ``zero``.

        Backpressures when ``f`` runs (synchronously; never otherwise). Cancels when ``f``
        raises under ``stop`` (the result fails with it). Supervision: resume skips the
        element; restart also resets the accumulator to ``zero``.
        """
        check("Sink.fold(zero, f)", None, fn(f))
        from .._ops.sinks import FoldSink

        return Sink(AtomicModule(FoldSink(zero, f)))

    @staticmethod
    def fold_async(zero: U, f: Callable[[U, T], Awaitable[U]]) -> Sink[T, asyncio.Future[U]]:
        """``fold`` with an async step.

        Backpressures when a step runs (one at a time). Cancels when ``f`` raises or its
        awaitable fails under ``stop`` (the result fails with it). Supervision: resume skips
        the element; restart also resets the accumulator to ``zero``.
        """
        check("Sink.fold_async(zero, f)", None, fn(f))
        return cast("Flow[Any, Any, Any]", Flow().fold_async(zero, f)).to_mat(
            Sink.head(), Keep.right
        )

    @staticmethod
    def reduce(f: Callable[[T, T], T]) -> Sink[T, asyncio.Future[T]]:
        """``fold`` seeded with the first element; fails with ``NoSuchElementError`` if empty.

        Backpressures when ``f`` runs (synchronously; never otherwise). Cancels when ``f``
        raises under ``stop`` (the result fails with it). Supervision: resume skips the
        element; restart also forgets the accumulation.
        """
        check("Sink.reduce(f)", fn(f))
        from .._ops.sinks import ReduceSink

        return Sink(AtomicModule(ReduceSink(f)))

    @staticmethod
    def head() -> Sink[T, asyncio.Future[T]]:
        """The first element (then cancel); fails with ``NoSuchElementError`` if empty.

        Backpressures never. Cancels when the first element arrived.
        """
        from .._ops.sinks import HeadSink

        return Sink(AtomicModule(HeadSink(False)))

    @staticmethod
    def head_option() -> Sink[T, asyncio.Future[T | None]]:
        """The first element, or None if empty.

        Backpressures never. Cancels when the first element arrived.
        """
        from .._ops.sinks import HeadSink

        return Sink(AtomicModule(HeadSink(True)))

    @staticmethod
    def last() -> Sink[T, asyncio.Future[T]]:
        """The last element; fails with ``NoSuchElementError`` if empty.

        Backpressures never. Cancels never (the result is there when upstream completes).
        """
        from .._ops.sinks import LastSink

        return Sink(AtomicModule(LastSink(False)))

    @staticmethod
    def last_option() -> Sink[T, asyncio.Future[T | None]]:
        """The last element, or None if empty.

        Backpressures never. Cancels never.
        """
        from .._ops.sinks import LastSink

        return Sink(AtomicModule(LastSink(True)))

    @staticmethod
    def seq() -> Sink[T, asyncio.Future[list[T]]]:
        """Every element, in a list.

        Backpressures never. Cancels never (the list is the result when upstream completes).
        """
        from .._ops.sinks import SeqSink

        return Sink(AtomicModule(SeqSink()))

    @staticmethod
    def take_last(n: int) -> Sink[T, asyncio.Future[list[T]]]:
        """The last ``n`` elements (``n >= 1``), in a list.

        Fewer when the stream was shorter. Backpressures never. Cancels never.
        """
        check("Sink.take_last(n)", pos_int(n))
        from .._ops.sinks import TakeLastSink

        return Sink(AtomicModule(TakeLastSink(n)))

    @staticmethod
    def ignore() -> Sink[object, asyncio.Future[DoneType]]:
        """Consume and discard everything; result ``Done``.

        The result fails with the stream's failure. Backpressures never. Cancels never.
        """
        from .._ops.sinks import IgnoreSink

        return Sink(AtomicModule(IgnoreSink()))

    @staticmethod
    def cancelled() -> Sink[object, NotUsedType]:
        """Cancel at once.

        Backpressures never (nothing is requested). Cancels when materialized.
        """
        from .._ops.sinks import CancelledSink

        return Sink(AtomicModule(CancelledSink()))

    @staticmethod
    def on_complete(cb: Callable[[BaseException | None], object]) -> Sink[object, NotUsedType]:
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
        a: Sink[T, Any],
        b: Sink[T, Any],
        *more: Sink[T, Any],
        strategy: Callable[[int], Any] | None = None,
    ) -> Sink[T, NotUsedType]:
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
    def queue(max_concurrent_pulls: int = 1) -> Sink[Any, SinkQueue]:
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
    def as_publisher(
        fanout: bool = False, subscription_timeout: float | None = 5.0
    ) -> Sink[T, Publisher[T]]:
        """Materializes a Reactive Streams ``Publisher`` of the stream's elements;
        ``fanout=False`` accepts exactly one subscriber, ``True`` any number.

        As Akka's ``subscription-timeout``: when no subscriber arrived within
        ``subscription_timeout`` seconds (materializer clock; ``None``: wait forever) the
        stream is cancelled with ``SubscriptionTimeoutError`` (logged at WARNING), and a
        subscriber arriving later gets ``on_error`` with it.

        Backpressures when there is no subscriber yet, or the buffer (the input buffer,
        default 16) is full: with ``fanout`` the slowest subscriber bounds how far the
        fastest can be ahead. Cancels when the (last) subscriber cancels, requests
        ``n <= 0`` (rule 3.9), or raises from a signal (rule 2.13).
        """
        from .._ops.rs_interop import PublisherSink

        return Sink(AtomicModule(PublisherSink(fanout, None, subscription_timeout)))

    @staticmethod
    def from_subscriber(subscriber: Subscriber[T]) -> Sink[T, NotUsedType]:
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
    def lazy_sink(factory: Callable[[], Sink[T, M2]]) -> Sink[T, asyncio.Future[M2]]:
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

    @staticmethod
    def lazy_future_sink(
        factory: Callable[[], Awaitable[Sink[T, M2]]],
    ) -> Sink[T, asyncio.Future[M2]]:
        """``lazy_sink`` with an async factory (Akka's ``Sink.lazyFutureSink``):
        ``factory()`` is called when the first element arrives and returns an awaitable
        of the ``Sink``, which gets that element and the rest of the stream.

        The materialized value is an ``asyncio.Future`` of the inner sink's materialized
        value. An empty stream fails it with ``NeverMaterializedError`` (the factory is
        never called); if ``factory()`` raises or its awaitable fails, it fails with that
        exception and upstream is cancelled; an upstream failure before the inner sink
        exists fails it with ``NeverMaterializedError`` (its ``__cause__`` is the
        failure). Upstream's completion while the awaitable is pending waits for the
        inner sink, which gets the first element, then the completion.

        Backpressures when the inner sink does (one element is requested before it
        exists, none more while the awaitable is pending). Cancels when the inner sink
        cancels, ``factory`` raises or its awaitable fails.
        """
        from .._ops.lazy import LazyFutureSink

        return Sink(AtomicModule(LazyFutureSink(factory)))

    @staticmethod
    def future_sink(aw: Awaitable[Sink[T, M2]]) -> Sink[T, asyncio.Future[M2]]:
        """The Sink an awaitable gives, created on the first element (Akka's
        ``Sink.futureSink``, which since Akka 2.6 is ``lazyFutureSink(() => future)``).

        The awaitable is awaited when the first element arrives (a future shared with
        others is not cancelled when the stream stops early); the Sink it gives then gets
        that element and the rest of the stream. A coroutine can be awaited once only, and
        an empty stream never awaits it: give a future (or a task). Materialized value: an
        ``asyncio.Future`` of the inner sink's materialized value; an empty stream fails
        it with ``NeverMaterializedError``, a failed awaitable with its exception, an
        upstream failure before the inner sink exists with ``NeverMaterializedError``
        (its ``__cause__`` is the failure).

        Backpressures when the inner sink does (one element is requested before it
        exists, none more while the awaitable is pending). Cancels when the inner sink
        cancels or the awaitable fails.
        """
        from .._ops.lazy import FutureSink

        return Sink(AtomicModule(FutureSink(aw)))

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

        if materializer is not None and not isinstance(materializer, _M):
            raise TypeError(
                f"run(materializer): a Materializer or None, got "
                f"{type(materializer).__name__} {materializer!r}"
            )
        mat = materializer if materializer is not None else _M.default()
        value: Mat = mat.materialize(self.module)  # (the materializer is untyped here)
        return value

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


# -- BidiFlow composition, shared with bidi.py (which imports this module, not the reverse) --
def bidi_join_module(
    bidi: Module, flow: Module, combine: Callable[[Any, Any], Any], reverse: bool = False
) -> Module:
    """A flow module: ``bidi``'s ``out1`` feeds ``flow``, whose output feeds ``bidi``'s
    ``in2``; ``bidi``'s ``in1`` and ``out2`` stay free (Akka's ``BidiFlow.join``). With
    ``reverse`` the bidi is turned round first (Akka's ``Flow.join(bidi)``: the flow feeds
    ``in1`` and is fed by ``out2``; ``in2`` and ``out1`` stay free). The value is
    ``combine(bidi_value, flow_value)``."""
    s = bidi.shape
    assert isinstance(s, BidiShape)
    if len(flow.shape.inlets) != 1 or len(flow.shape.outlets) != 1:
        raise IllegalGraphError(f"join() of a BidiFlow needs a Flow, got {flow.shape!r}")
    to_flow, from_flow = (s.out2, s.in1) if reverse else (s.out1, s.in2)
    free_in, free_out = (s.in2, s.out1) if reverse else (s.in1, s.out2)
    wires = [
        ((0, to_flow), (1, flow.shape.inlets[0])),
        ((1, flow.shape.outlets[0]), (0, from_flow)),
    ]
    i = free_in.carbon_copy()
    o = free_out.carbon_copy()
    exposed = {i: (0, free_in), o: (0, free_out)}
    return CompositeModule(
        FlowShape(i, o), [bidi, flow], wires, exposed, lambda m: combine(m[0], m[1])
    )


def _sources_of(signature: str, sources: Any) -> list[Source[Any, Any]]:
    """The sources of an n-ary factory, each checked to be a Source (named in errors)."""
    if isinstance(sources, (Graph, str, bytes)) or not isinstance(sources, Iterable):
        raise TypeError(
            f"{signature}: sources must be an iterable of Sources, got "
            f"{type(sources).__name__} {sources!r}"
        )
    out: list[Source[Any, Any]] = []
    for k, s in enumerate(sources):
        m = _module_of(s, f"{signature}: source {k}")
        if len(m.shape.outlets) != 1 or m.shape.inlets:
            raise IllegalGraphError(f"{signature}: source {k} must be a Source, got {m.shape!r}")
        out.append(Source(m))
    return out
