"""``SourceWithContext`` and ``FlowWithContext``: elements that carry a context along.

As Akka's ``SourceWithContext`` / ``FlowWithContext``: a thin, immutable wrapper around a
``Source`` (or ``Flow``) of ``(element, context)`` tuples. Only operators that keep each
element's context attached are offered (Akka's ``FlowWithContextOps``): the user function
sees the element alone, the context travels next to it unchanged (``map_context`` changes
it). A typical context is the Kafka offset of the record the element came from, committed
once the element was processed.

Every operator is the plain operator applied to the tuples, so its semantics (emits /
backpressures / completes / fails / cancels, supervision) are those of the plain one;
each docstring says how the context is carried. ``as_source()`` / ``as_flow()`` give the
tuples back. ``windowed`` is the one operator whose output contexts are not its inputs':
each window carries the commit point that became safe with it
(``reactive/_ops/windows_context.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar, overload

from .._attributes import Attributes
from .._checks import check, fn, opt_fn, pos_int, string
from .._keep import Keep, NotUsedType
from .blueprints import Flow, RunnableGraph, Sink, Source

if TYPE_CHECKING:
    from .._impl.materializer import Materializer
    from .._ops.timer import ThrottleMode
    from .._ops.window_specs import (
        EmitStrategy,
        SessionWindows,
        SlidingWindows,
        TimeWindows,
        Windowed,
    )
    from ..state._spec import StoreSpec
    from .blueprints import FlowOps

__all__ = ["FlowWithContext", "SourceWithContext"]

Out = TypeVar("Out", covariant=True)
Ctx = TypeVar("Ctx", covariant=True)
Mat = TypeVar("Mat", covariant=True)
In = TypeVar("In", contravariant=True)
CtxIn = TypeVar("CtxIn", contravariant=True)
CtxOut = TypeVar("CtxOut", covariant=True)
T = TypeVar("T")
U = TypeVar("U")
C = TypeVar("C")
C2 = TypeVar("C2")
M = TypeVar("M")
M2 = TypeVar("M2")
M3 = TypeVar("M3")
K = TypeVar("K")
S = TypeVar("S")


# -- the tuple-level functions every operator is made of ----------------------------------------
# Module-level (not lambdas in the methods) so a blueprint keeps no reference to the wrapper.


def _not_a_pair(pair: Any, op: str) -> TypeError:
    """The error of a with-context operator given an element that is not an ``(element,
    context)`` pair (a source given to ``from_tuples``, or a flow given to ``via``, that
    emits something else): named, instead of a bare TypeError, or a longer tuple cut to
    two items silently."""
    shown = repr(pair)
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return TypeError(
        f"[{op} with context] expected an (element, context) pair, got "
        f"{type(pair).__name__} {shown} (a source given to from_tuples(), or a flow "
        "given to via(), must emit 2-tuples)"
    )


# Each wrapper unpacks the pair (``x, ctx = pair``: as cheap as indexing it, and it
# refuses what is not a pair) inside a ``try`` that costs nothing when it succeeds; the
# user's function is called outside it.


def _on_element(f: Callable[[Any], Any]) -> Callable[[tuple[Any, Any]], tuple[Any, Any]]:
    def mapped(pair: tuple[Any, Any]) -> tuple[Any, Any]:
        try:
            x, ctx = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "map") from None
        return f(x), ctx

    return mapped


def _on_context(f: Callable[[Any], Any]) -> Callable[[tuple[Any, Any]], tuple[Any, Any]]:
    def mapped(pair: tuple[Any, Any]) -> tuple[Any, Any]:
        try:
            x, ctx = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "map_context") from None
        return x, f(ctx)

    return mapped


def _test_element(
    p: Callable[[Any], bool], op: str = "filter"
) -> Callable[[tuple[Any, Any]], bool]:
    def test(pair: tuple[Any, Any]) -> bool:
        try:
            x, _ = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, op) from None
        return p(x)

    return test


def _concat_element(
    f: Callable[[Any], Iterable[Any]], op: str = "map_concat"
) -> Callable[[tuple[Any, Any]], Iterator[tuple[Any, Any]]]:
    def expanded(pair: tuple[Any, Any]) -> Iterator[tuple[Any, Any]]:
        try:
            x, ctx = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, op) from None
        # f runs now (its failure is the operator's), its outputs are iterated lazily.
        return ((y, ctx) for y in f(x))

    return expanded


def _async_element(
    f: Callable[[Any], Awaitable[Any]],
) -> Callable[[tuple[Any, Any]], Awaitable[Any]]:
    async def mapped(pair: tuple[Any, Any]) -> Any:
        try:
            x, ctx = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "map_async") from None
        result = await f(x)
        return None if result is None else (result, ctx)  # None: skipped, as map_async

    return mapped


def _async_partitioned_element(
    f: Callable[[Any, Any], Awaitable[Any]],
) -> Callable[[tuple[Any, Any], Any], Awaitable[Any]]:
    async def mapped(pair: tuple[Any, Any], key: Any) -> Any:
        try:
            x, ctx = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "map_async_partitioned") from None
        result = await f(x, key)
        return None if result is None else (result, ctx)

    return mapped


def _unzip_pairs(pairs: list[tuple[Any, Any]]) -> tuple[list[Any], list[Any]]:
    for pair in pairs:
        if type(pair) is not tuple or len(pair) != 2:
            raise _not_a_pair(pair, "grouped/sliding")
    return [p[0] for p in pairs], [p[1] for p in pairs]


def _element_cost(cost: Callable[[Any], int] | None) -> Callable[[tuple[Any, Any]], int] | None:
    if cost is None:
        return None

    def pair_cost(pair: tuple[Any, Any]) -> int:
        try:
            x, _ = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "throttle") from None
        return cost(x)

    return pair_cost


def _element_extract(extract: Callable[[Any], Any] | None) -> Callable[[tuple[Any, Any]], Any]:
    def logged(pair: tuple[Any, Any]) -> Any:
        try:
            x, _ = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "log") from None
        return x if extract is None else extract(x)

    return logged


def _pair_with(extract: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, Any]]:
    def paired(x: Any) -> tuple[Any, Any]:
        return x, extract(x)

    return paired


def _collapse(collapse: Callable[[Any, Any], Any]) -> Callable[[tuple[Any, Any]], Any]:
    def collapsed(pair: tuple[Any, Any]) -> Any:
        try:
            x, ctx = pair
        except (TypeError, ValueError):
            raise _not_a_pair(pair, "as_flow_with_context") from None
        return collapse(x, ctx)

    return collapsed


def _pairs_flow(flow: Any) -> Any:
    """The flow of tuples behind ``flow`` (a ``FlowWithContext`` or a plain ``Flow``)."""
    if isinstance(flow, FlowWithContext):
        return flow._flow
    return flow


def _windowed(
    pairs: Any,
    windows: Any,
    key: Any,
    timestamp: Any,
    zero: Any,
    aggregate: Any,
    merge: Any,
    emit: Any,
    late: Any,
    idle_timeout: Any,
    store: Any,
) -> Any:
    """``pairs`` (a Source or Flow of tuples) through the context-aware window stage."""
    from .._ops.windows_context import ContextWindowedStage
    from .._ops.windows_store import StoredContextWindowedStage

    kw: dict[str, Any] = dict(
        key=key,
        timestamp=timestamp,
        zero=zero,
        aggregate=aggregate,
        merge=merge,
        emit=emit,
        with_late=late is not None,
        idle_timeout=idle_timeout,
    )
    stage = (
        ContextWindowedStage(windows, **kw)
        if store is None
        else StoredContextWindowedStage(windows, store=store, **kw)
    )
    if late is None:
        return pairs._via_stage(stage)
    return pairs._side_output(stage, late, None)


def _keyed_aggregate(store: Any, key: Any, zero: Any, aggregate: Any) -> Flow[Any, Any, Any]:
    from .._ops.state import AggregateByKey

    return Flow.from_graph(AggregateByKey(store, key, zero, aggregate, with_context=True))


def _keyed_map(store: Any, key: Any, f: Any) -> Flow[Any, Any, Any]:
    from .._ops.state import StatefulMapByKey

    return Flow.from_graph(StatefulMapByKey(store, key, f, with_context=True))


class ContextOps(Generic[Out, Ctx, Mat]):
    """The operators of ``SourceWithContext`` and ``FlowWithContext`` (Akka's
    ``FlowWithContextOps``), written once: each applies the plain operator to the
    ``(element, context)`` tuples behind the blueprint (``_pairs``) and wraps the result
    back (``_rewrap``). They return ``CtxRepr[out, ctx, mat]``, "this kind of blueprint";
    ``tools/gen_stubs.py`` writes ``SourceWithContext[out, ctx, mat]`` and
    ``FlowWithContext[In, CtxIn, out, ctx, mat]`` into ``with_context.pyi``."""

    __slots__ = ()

    @property
    def _pairs(self) -> FlowOps[tuple[Out, Ctx], Mat]:
        raise NotImplementedError  # pragma: no cover - each class overrides

    def _rewrap(self, pairs: Any) -> CtxRepr[Any, Any, Any]:
        raise NotImplementedError  # pragma: no cover - each class overrides

    def map(self, f: Callable[[Out], U]) -> CtxRepr[U, Ctx, Mat]:
        """``f(element)`` with the element's context (as ``Source.map``).

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Fails when f raises (under the stopping decider). Cancels when downstream
        cancels.
        """
        check("map(f)", fn(f))
        return self._rewrap(self._pairs.map(_on_element(f)))

    def filter(self, p: Callable[[Out], bool]) -> CtxRepr[Out, Ctx, Mat]:
        """Elements (with their context) for which ``p(element)`` holds; a dropped
        element's context is dropped too.

        Emits when p holds. Backpressures when p holds and downstream does. Completes when
        upstream does. Fails when p raises. Cancels when downstream cancels.
        """
        check("filter(p)", fn(p))
        return self._rewrap(self._pairs.filter(_test_element(p)))

    def filter_not(self, p: Callable[[Out], bool]) -> CtxRepr[Out, Ctx, Mat]:
        """Elements (with their context) for which ``p(element)`` does not hold.

        Emits when p does not hold. Backpressures when downstream does. Completes when
        upstream does. Fails when p raises. Cancels when downstream cancels.
        """
        check("filter_not(p)", fn(p))
        return self._rewrap(self._pairs.filter_not(_test_element(p, "filter_not")))

    def map_concat(self, f: Callable[[Out], Iterable[U]]) -> CtxRepr[U, Ctx, Mat]:
        """Every output of ``f(element)``, each with that element's context.

        Emits when an output is ready. Backpressures when downstream does (outputs of one
        element are pushed one at a time). Completes when upstream completed and the
        outputs were emitted. Fails when f (or iterating its result) raises. Cancels when
        downstream cancels.
        """
        check("map_concat(f)", fn(f))
        return self._rewrap(self._pairs.map_concat(_concat_element(f)))

    def join_table(
        self, table: Any, key: Callable[[Out], Any], combine: Callable[[Out, Any], U]
    ) -> CtxRepr[U, Ctx, Mat]:
        """Inner stream-table join (see ``Source.join_table``), each result with its
        element's context; an element without a table value is dropped with its context
        (counted in the DEBUG log, as ``Source.join_table`` without ``missing``).

        Emits when an element found its table value and downstream pulls. Backpressures
        when downstream does. Completes when upstream does. Fails when ``key``/``combine``
        raises, ``combine`` returns None or the table is closed. Cancels when downstream
        cancels.
        """
        from .._ops.join import InnerJoin, check_table

        check_table("join_table", table, key, combine)
        join = InnerJoin(table, key, combine, tagged=False)
        return self._rewrap(self._pairs.map_concat(_concat_element(join, "join_table")))

    def left_join_table(
        self, table: Any, key: Callable[[Out], Any], combine: Callable[[Out, Any], U]
    ) -> CtxRepr[U, Ctx, Mat]:
        """Left stream-table join (see ``Source.left_join_table``), each result with its
        element's context.

        Emits when an element was joined and downstream pulls. Backpressures when
        downstream does. Completes when upstream does. Fails when ``key``/``combine``
        raises, ``combine`` returns None or the table is closed. Cancels when downstream
        cancels.
        """
        from .._ops.join import LeftJoin, check_table

        check_table("left_join_table", table, key, combine)
        return self._rewrap(self._pairs.map(_on_element(LeftJoin(table, key, combine))))

    def map_async(self, parallelism: int, f: Callable[[Out], Awaitable[U]]) -> CtxRepr[U, Ctx, Mat]:
        """``await f(element)`` for up to ``parallelism`` elements at once, in input order,
        each result with its element's context (``None`` results are skipped).

        Emits when the oldest result is ready. Backpressures when ``parallelism`` calls are
        outstanding. Completes when upstream completed and every result was emitted. Fails
        when f fails. Cancels when downstream cancels.
        """
        check("map_async(parallelism, f)", pos_int(parallelism), fn(f))
        return self._rewrap(self._pairs.map_async(parallelism, _async_element(f)))

    def map_async_partitioned(
        self,
        parallelism: int,
        per_partition: int,
        partitioner: Callable[[Out], Any],
        f: Callable[[Out, Any], Awaitable[U]],
    ) -> CtxRepr[U, Ctx, Mat]:
        """``Source.map_async_partitioned`` on the elements, in input order, each result
        with its element's context (``None`` results are skipped).

        Emits when the oldest result is ready. Backpressures when ``parallelism`` elements
        are buffered. Completes when upstream completed and every result was emitted.
        Fails when f or partitioner fails. Cancels when downstream cancels.
        """
        check(
            "map_async_partitioned(parallelism, per_partition, partitioner, f)",
            pos_int(parallelism),
            pos_int(per_partition),
            fn(partitioner),
            fn(f),
        )
        return self._rewrap(
            self._pairs.map_async_partitioned(
                parallelism,
                per_partition,
                _test_element(partitioner, "map_async_partitioned"),
                _async_partitioned_element(f),
            )
        )

    def grouped(self, n: int) -> CtxRepr[list[Out], list[Ctx], Mat]:
        """Lists of ``n`` elements; the context is the list of their contexts (Akka's
        ``Seq[Ctx]``). The last list may be shorter.

        Emits when n elements arrived or upstream completed. Backpressures when a list is
        ready and downstream does not pull. Completes when upstream does. Cancels when
        downstream cancels.
        """
        return self._rewrap(self._pairs.grouped(n).map(_unzip_pairs))

    def sliding(self, n: int, step: int = 1) -> CtxRepr[list[Out], list[Ctx], Mat]:
        """Windows of ``n`` elements advancing by ``step``; the context of a window is the
        list of its elements' contexts.

        Emits when a window is full (or upstream completed with a partial one).
        Backpressures when downstream does. Completes when upstream does. Cancels when
        downstream cancels.
        """
        return self._rewrap(self._pairs.sliding(n, step).map(_unzip_pairs))

    @overload
    def windowed(
        self,
        windows: TimeWindows | SlidingWindows | SessionWindows,
        *,
        key: Callable[[Out], K],
        timestamp: Callable[[Out], float] | None = ...,
        zero: Callable[[], S],
        aggregate: Callable[[S, Out], S],
        merge: Callable[[S, S], S] | None = ...,
        emit: EmitStrategy | None = ...,
        late: Sink[tuple[Out, Ctx], Any] | None = ...,
        idle_timeout: float | None = ...,
        store: StoreSpec[Any, Any] | None = ...,
    ) -> CtxRepr[Windowed[K, S], Any, Mat]: ...
    @overload
    def windowed(
        self,
        windows: TimeWindows | SlidingWindows | SessionWindows,
        *,
        key: Callable[[Out], K],
        timestamp: Callable[[Out], float] | None = ...,
        zero: None = ...,
        aggregate: None = ...,
        merge: Callable[[Any, Any], Any] | None = ...,
        emit: EmitStrategy | None = ...,
        late: Sink[tuple[Out, Ctx], Any] | None = ...,
        idle_timeout: float | None = ...,
        store: StoreSpec[Any, Any] | None = ...,
    ) -> CtxRepr[Windowed[K, list[Out]], Any, Mat]: ...
    @overload
    def windowed(
        self,
        windows: TimeWindows | SlidingWindows | SessionWindows,
        *,
        key: None = ...,
        timestamp: Callable[[Out], float] | None = ...,
        zero: Callable[[], S],
        aggregate: Callable[[S, Out], S],
        merge: Callable[[S, S], S] | None = ...,
        emit: EmitStrategy | None = ...,
        late: Sink[tuple[Out, Ctx], Any] | None = ...,
        idle_timeout: float | None = ...,
        store: StoreSpec[Any, Any] | None = ...,
    ) -> CtxRepr[Windowed[None, S], Any, Mat]: ...
    @overload
    def windowed(
        self,
        windows: TimeWindows | SlidingWindows | SessionWindows,
        *,
        key: None = ...,
        timestamp: Callable[[Out], float] | None = ...,
        zero: None = ...,
        aggregate: None = ...,
        merge: Callable[[Any, Any], Any] | None = ...,
        emit: EmitStrategy | None = ...,
        late: Sink[tuple[Out, Ctx], Any] | None = ...,
        idle_timeout: float | None = ...,
        store: StoreSpec[Any, Any] | None = ...,
    ) -> CtxRepr[Windowed[None, list[Out]], Any, Mat]: ...
    def windowed(
        self,
        windows: TimeWindows | SlidingWindows | SessionWindows,
        *,
        key: Callable[[Out], Any] | None = None,
        timestamp: Callable[[Out], float] | None = None,
        zero: Callable[[], Any] | None = None,
        aggregate: Callable[[Any, Out], Any] | None = None,
        merge: Callable[[Any, Any], Any] | None = None,
        emit: EmitStrategy | None = None,
        late: Sink[tuple[Out, Ctx], Any] | None = None,
        idle_timeout: float | None = None,
        store: StoreSpec[Any, Any] | None = None,
    ) -> CtxRepr[Windowed[Any, Any], Any, Mat]:
        """Event-time windows as ``Source.windowed`` (same arguments, same
        closing, emission order, late handling and supervision), each result with the
        *commit point* that became safe with it as its context.

        Every input context must be a Kafka ``CommittableOffset`` or a ``(partition,
        offset)`` tuple with an int offset (``map_context`` converts others); any other
        context fails the stream with a ``TypeError`` naming the stage. The context of
        each emitted ``Windowed`` is, for every partition seen, the highest offset ``o``
        such that every record of that partition at or below ``o`` has had all of its
        windows emitted downstream (an offset is committed only when every window
        holding that record, and every earlier record of its partition, was emitted):
        a ``CommittableOffsetBatch`` for Kafka offsets (possibly empty; commit it with
        ``Committer.sink_with_offset_context``), a ``dict`` partition -> offset for
        tuples (partitions with nothing safe yet are left out). Records holding no
        window count as done: late ones once handed to ``late`` (which receives
        ``(element, context)`` pairs) or counted as dropped, ones skipped by
        ``resume``. With ``on_window_update`` a record is done when all of its windows
        *closed* (the next emission carries it; nothing is emitted at completion).

        With ``store`` (a ``StoreSpec``, persistent or changelogged: see
        ``connectors.kafka.state.changelogged``; Kafka contexts only, ``on_window_close``
        only) the open windows live in the store as in ``Source.windowed``, and the
        commit point moves past a record once the store's writes for it are
        acknowledged (``BytesStore.durable``; a batch is written every ``cache_size``
        elements, every ``commit_interval`` seconds, and at once when a record closes
        windows, which wait for its acknowledgement), not when its windows are emitted: a
        restart restores the store and re-reads only what came after the committed
        offset (records acknowledged but not committed are applied again: at-least-once,
        a count may exceed the exact one by the records re-processed). An emitted window
        stays in the store, marked emitted, until downstream commits a commit point
        emitted after it (commit the contexts, or the marks pile up); marked windows are
        emitted again after a restart (duplicates of windows downstream had handled).

        Emits when a window closes (or changes, with ``on_window_update``) and
        downstream pulls. Backpressures when downstream backpressures, or ``late`` does
        while an element waits for it. Completes when upstream completes, after every
        open window was emitted. Fails when upstream fails, a context is neither kind, or
        a user function raises under ``stop``. Cancels when downstream cancels.
        """
        return self._rewrap(
            _windowed(
                self._pairs,
                windows,
                key,
                timestamp,
                zero,
                aggregate,
                merge,
                emit,
                late,
                idle_timeout,
                store,
            )
        )

    def map_context(self, f: Callable[[Ctx], C2]) -> CtxRepr[Out, C2, Mat]:
        """Each element with ``f(context)`` as its context.

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Fails when f raises. Cancels when downstream cancels.
        """
        check("map_context(f)", fn(f))
        return self._rewrap(self._pairs.map(_on_context(f)))

    def map_error(
        self, f: Callable[[BaseException], BaseException | None]
    ) -> CtxRepr[Out, Ctx, Mat]:
        """Fail with ``f(exc)`` instead of the upstream failure (``None`` keeps ``exc``).

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream does. Fails when upstream fails, with the translated exception. Cancels
        when downstream cancels.
        """
        return self._rewrap(self._pairs.map_error(f))

    def log(
        self, name: str, extract: Callable[[Out], Any] | None = None, logger: Any = None
    ) -> CtxRepr[Out, Ctx, Mat]:
        """Log the elements (``extract(element)`` if given; not the context), completion and
        failure; pass through.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream does. Cancels when downstream cancels.
        """
        check("log(name, extract, logger)", string(name), opt_fn(extract))
        return self._rewrap(self._pairs.log(name, _element_extract(extract), logger))

    def throttle(
        self,
        elements: int,
        per: float,
        maximum_burst: int | None = None,
        mode: ThrottleMode | None = None,
        cost: Callable[[Out], int] | None = None,
    ) -> CtxRepr[Out, Ctx, Mat]:
        """``Source.throttle`` with ``cost`` applied to the element (not the context).

        Emits when enough tokens are there. Backpressures when downstream does or an
        element waits for tokens. Completes when upstream does. Fails when the rate is
        exceeded in enforcing mode. Cancels when downstream cancels.
        """
        check(
            "throttle(elements, per, maximum_burst, mode, cost)",
            None,
            None,
            None,
            None,
            opt_fn(cost),
        )
        return self._rewrap(
            self._pairs.throttle(elements, per, maximum_burst, mode, _element_cost(cost))
        )

    # -- keyed state (issue 14) --------------------------------------------------------------
    def aggregate_by_key(
        self,
        store: Any,
        key: Callable[[Out], Any],
        zero: Callable[[], Any],
        aggregate: Callable[[Any, Out], Any],
        combine: Callable[[Mat, Any], M3] = Keep.right,
    ) -> CtxRepr[tuple[Any, Any], Ctx, M3]:
        """``Source.aggregate_by_key`` on the elements: ``(key, new_value)`` with the
        element's context; materializes the store's ``StoreView`` (``combine``:
        ``Keep.right``).

        Each output carries the context of the element that produced it and is emitted
        only once the store's writes for that element are durable: with a changelogged
        store (``connectors.kafka.state``), acknowledged by the broker. Committing the
        contexts downstream (``Committer.sink_with_offset_context``) therefore commits an
        input offset only after every update it caused is in the changelog:
        at-least-once state. An element that emits nothing drops its context (as
        ``filter``). Up to ``MAX_UNACKED`` (4096) elements are processed ahead of their
        acknowledgements, in order: an element arriving while no write awaits its
        acknowledgement is written through at once, and the updates of the elements
        arriving while one does go to the store (and changelog) together when it
        arrives, the last value of each key.

        Emits when the element's updates are durable and downstream pulls.
        Backpressures when downstream does and ``MAX_UNACKED`` elements wait.
        Completes when upstream completes and every output was emitted. Fails when
        upstream fails, a function raises (supervision as ``Source.aggregate_by_key``), the
        store fails or a write cannot be made durable. Cancels when downstream cancels.
        """
        return self._rewrap(
            self._pairs.via_mat(_keyed_aggregate(store, key, zero, aggregate), combine)
        )

    def stateful_map_by_key(
        self,
        store: Any,
        key: Callable[[Out], Any],
        f: Callable[[Any, Out], tuple[Any, Any]],
        combine: Callable[[Mat, Any], M3] = Keep.right,
    ) -> CtxRepr[Any, Ctx, M3]:
        """``Source.stateful_map_by_key`` on the elements: each ``y`` with the element's
        context; materializes the store's ``StoreView`` (``combine``: ``Keep.right``).

        Emits when the element's updates are durable and downstream pulls.
        Backpressures when downstream does and ``MAX_UNACKED`` elements wait.
        Completes when upstream completes and every output was emitted. Fails when
        upstream fails, ``key``/``f`` raises (supervision as ``Source.stateful_map_by_key``),
        the store fails or a write cannot be made durable. Cancels when downstream cancels.
        """
        return self._rewrap(self._pairs.via_mat(_keyed_map(store, key, f), combine))

    def via(
        self, flow: FlowWithContext[Out, Ctx, U, C2, Any] | Flow[tuple[Out, Ctx], tuple[U, C2], Any]
    ) -> CtxRepr[U, C2, Mat]:
        """Append ``flow`` (a ``FlowWithContext``, or a ``Flow`` of tuples that keeps one
        output per input, in order); keeps this source's materialized value."""
        return self._rewrap(self._pairs.via(_pairs_flow(flow)))

    def via_mat(
        self,
        flow: FlowWithContext[Out, Ctx, U, C2, M2] | Flow[tuple[Out, Ctx], tuple[U, C2], M2],
        combine: Callable[[Mat, M2], M3],
    ) -> CtxRepr[U, C2, M3]:
        """As :meth:`via`, combining the materialized values with ``combine``."""
        return self._rewrap(self._pairs.via_mat(_pairs_flow(flow), combine))


_O = TypeVar("_O")
_C = TypeVar("_C")
_M = TypeVar("_M")
CtxRepr: TypeAlias = ContextOps[_O, _C, _M]
"""What a with-context operator returns: the same kind of blueprint (``SourceWithContext``
or ``FlowWithContext``) with elements ``_O``, contexts ``_C``, materialized value ``_M``."""


class SourceWithContext(ContextOps[Out, Ctx, Mat]):
    """A ``Source`` of elements ``Out`` each carrying a context ``Ctx``; materializes ``Mat``.

    Immutable and reusable like every blueprint; backed by a ``Source[tuple[Out, Ctx],
    Mat]`` (``as_source()``). Make one with ``Source.as_source_with_context(extract_ctx)``
    or ``SourceWithContext.from_tuples(source)``.
    """

    __slots__ = ("_source",)

    def __init__(self, source: Source[tuple[Out, Ctx], Mat]) -> None:
        """Wrap ``source``, a source of ``(element, context)`` tuples."""
        if not isinstance(source, Source):
            raise TypeError(f"SourceWithContext wraps a Source of tuples, got {source!r}")
        self._source = source

    @staticmethod
    def from_tuples(source: Source[tuple[T, C], M]) -> SourceWithContext[T, C, M]:
        """The ``SourceWithContext`` whose ``(element, context)`` tuples ``source`` emits."""
        return SourceWithContext(source)

    def as_source(self) -> Source[tuple[Out, Ctx], Mat]:
        """The plain ``Source`` of ``(element, context)`` tuples."""
        return self._source

    @property
    def _pairs(self) -> Source[tuple[Out, Ctx], Mat]:
        return self._source

    def _rewrap(self, pairs: Any) -> SourceWithContext[Any, Any, Any]:
        return SourceWithContext(pairs)

    # -- ending -------------------------------------------------------------------------------
    def to(self, sink: Sink[tuple[Out, Ctx], Any]) -> RunnableGraph[Mat]:
        """Connect to ``sink`` (a sink of ``(element, context)`` tuples); keeps this
        source's materialized value."""
        return self._source.to(sink)

    def to_mat(
        self, sink: Sink[tuple[Out, Ctx], M2], combine: Callable[[Mat, M2], M3]
    ) -> RunnableGraph[M3]:
        """Connect to ``sink`` combining the materialized values with ``combine``."""
        return self._source.to_mat(sink, combine)

    def run_with(
        self, sink: Sink[tuple[Out, Ctx], M2], materializer: Materializer | None = None
    ) -> M2:
        """Run into ``sink``; returns the sink's materialized value."""
        return self._source.run_with(sink, materializer)

    # -- blueprint ----------------------------------------------------------------------------
    def map_materialized_value(self, f: Callable[[Mat], M2]) -> SourceWithContext[Out, Ctx, M2]:
        """Transform the materialized value with ``f``."""
        return SourceWithContext(self._source.map_materialized_value(f))

    def with_attributes(self, attributes: Attributes) -> SourceWithContext[Out, Ctx, Mat]:
        """The same source with its attributes replaced by ``attributes``."""
        return SourceWithContext(self._source.with_attributes(attributes))

    def add_attributes(self, attributes: Attributes) -> SourceWithContext[Out, Ctx, Mat]:
        """The same source with ``attributes`` added (they win over existing ones)."""
        return SourceWithContext(self._source.add_attributes(attributes))

    def named(self, name: str) -> SourceWithContext[Out, Ctx, Mat]:
        """The same source named ``name``."""
        return SourceWithContext(self._source.named(name))

    def async_boundary(self) -> SourceWithContext[Out, Ctx, Mat]:
        """Run everything composed so far in its own island."""
        return SourceWithContext(self._source.async_boundary())

    def __repr__(self) -> str:
        return f"SourceWithContext({self._source!r})"


class FlowWithContext(ContextOps[Out, CtxOut, Mat], Generic[In, CtxIn, Out, CtxOut, Mat]):
    """A ``Flow`` from elements ``In`` with contexts ``CtxIn`` to elements ``Out`` with
    contexts ``CtxOut``; materializes ``Mat``.

    Backed by a ``Flow[tuple[In, CtxIn], tuple[Out, CtxOut], Mat]`` (``as_flow()``).
    ``FlowWithContext()`` is the identity (materializing ``NotUsed``); also
    ``FlowWithContext.from_tuples(flow)`` and ``Flow.as_flow_with_context(collapse,
    extract)``.
    """

    __slots__ = ("_flow",)

    def __init__(self, flow: Flow[tuple[In, CtxIn], tuple[Out, CtxOut], Mat] | None = None) -> None:
        """Wrap ``flow``, a flow of ``(element, context)`` tuples (identity if ``None``)."""
        if flow is None:
            flow = Flow()
        if not isinstance(flow, Flow):
            raise TypeError(f"FlowWithContext wraps a Flow of tuples, got {flow!r}")
        self._flow: Flow[tuple[In, CtxIn], tuple[Out, CtxOut], Mat] = flow

    @staticmethod
    def from_tuples(
        flow: Flow[tuple[T, C], tuple[U, C2], M],
    ) -> FlowWithContext[T, C, U, C2, M]:
        """The ``FlowWithContext`` made of ``flow``, a flow of ``(element, context)`` tuples."""
        return FlowWithContext(flow)

    @staticmethod
    def identity() -> FlowWithContext[T, C, T, C, NotUsedType]:
        """The identity: every element passes with its context (Akka's
        ``FlowWithContext[In, Ctx]``)."""
        return FlowWithContext(Flow())

    def as_flow(self) -> Flow[tuple[In, CtxIn], tuple[Out, CtxOut], Mat]:
        """The plain ``Flow`` of ``(element, context)`` tuples."""
        return self._flow

    @property
    def _pairs(self) -> Flow[tuple[In, CtxIn], tuple[Out, CtxOut], Mat]:
        return self._flow

    def _rewrap(self, pairs: Any) -> FlowWithContext[Any, Any, Any, Any, Any]:
        return FlowWithContext(pairs)

    # -- ending -------------------------------------------------------------------------------
    def to(self, sink: Sink[tuple[Out, CtxOut], Any]) -> Sink[tuple[In, CtxIn], Mat]:
        """Connect to ``sink`` (a sink of tuples), giving a sink of ``(element, context)``
        tuples; keeps this flow's materialized value."""
        return self._flow.to(sink)

    def to_mat(
        self, sink: Sink[tuple[Out, CtxOut], M2], combine: Callable[[Mat, M2], M3]
    ) -> Sink[tuple[In, CtxIn], M3]:
        """Connect to ``sink`` combining the materialized values with ``combine``."""
        return self._flow.to_mat(sink, combine)

    # -- blueprint ----------------------------------------------------------------------------
    def map_materialized_value(
        self, f: Callable[[Mat], M2]
    ) -> FlowWithContext[In, CtxIn, Out, CtxOut, M2]:
        """Transform the materialized value with ``f``."""
        return FlowWithContext(self._flow.map_materialized_value(f))

    def with_attributes(
        self, attributes: Attributes
    ) -> FlowWithContext[In, CtxIn, Out, CtxOut, Mat]:
        """The same flow with its attributes replaced by ``attributes``."""
        return FlowWithContext(self._flow.with_attributes(attributes))

    def add_attributes(
        self, attributes: Attributes
    ) -> FlowWithContext[In, CtxIn, Out, CtxOut, Mat]:
        """The same flow with ``attributes`` added (they win over existing ones)."""
        return FlowWithContext(self._flow.add_attributes(attributes))

    def named(self, name: str) -> FlowWithContext[In, CtxIn, Out, CtxOut, Mat]:
        """The same flow named ``name``."""
        return FlowWithContext(self._flow.named(name))

    def async_boundary(self) -> FlowWithContext[In, CtxIn, Out, CtxOut, Mat]:
        """Run everything composed so far in its own island."""
        return FlowWithContext(self._flow.async_boundary())

    def __repr__(self) -> str:
        return f"FlowWithContext({self._flow!r})"


def source_with_context(
    source: Source[T, M], extract_ctx: Callable[[T], C]
) -> SourceWithContext[T, C, M]:
    """``source`` as a ``SourceWithContext``: each element with ``extract_ctx(element)``
    as its context (``Source.as_source_with_context``)."""
    return SourceWithContext(source.map(_pair_with(extract_ctx)))


def flow_with_context(
    flow: Flow[T, U, M],
    collapse_context: Callable[[Any, Any], T],
    extract_context: Callable[[U], C],
) -> FlowWithContext[Any, Any, U, C, M]:
    """``flow`` as a ``FlowWithContext`` (``Flow.as_flow_with_context``): each
    ``(element, context)`` goes in as ``collapse_context(element, context)``, each output
    comes out with ``extract_context(output)`` as its context."""
    pairs: Flow[Any, Any, NotUsedType] = Flow()
    return FlowWithContext(
        pairs.map(_collapse(collapse_context))
        .via_mat(flow, Keep.right)
        .map(_pair_with(extract_context))
    )
