"""Stateful operators over a store: ``aggregate_by_key`` and ``stateful_map_by_key``.

Each materialization opens its own store instance (a :class:`~reactive.state.StoreSpec`
in the blueprint) when its stage starts, and flushes and closes it in ``post_stop``, which
runs in every ending: completion, failure, cancellation and materializer shutdown. The
materialized value is a :class:`~reactive.state.StoreView` reading through the operator's
cache (see ``reactive/state/_view.py``), so it is current after every element.

Both logics take part in the batch protocol (``fused.py``): they ask upstream for as
many elements as downstream asked of them and emit at most one element per input, so a
batch in gives a batch out without exceeding demand; the per-element work is one loop.

Naming: Akka has no keyed state; Kafka Streams spells it ``groupByKey().aggregate()``.
Here it is one flat operator named like ``stateful_map`` and ``group_by`` (verb + ``_by_key``):
it needs no grouped intermediate type, keeps one typed method per blueprint kind, and
does not suggest substreams as ``group_by`` does.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, cast

from .._checks import NONE_ELEMENT
from .._errors import NoneElementError, PortStateError
from .._impl.interpreter import IN_CLOSED
from .._stage.batch import hand_over_hook, note_unsent, settle_hook
from .._stage.logic import GraphStageLogic, GraphStageWithMaterializedValue, _Batch
from .._stage.shapes import FlowShape, Inlet, Outlet
from .._supervision import Supervision
from ..state._registry import registry_of
from ..state._spec import StoreSpec
from ..state._view import _ABSENT, StoreHandle, StoreView
from .simple import FlowLogic

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

__all__ = ["AggregateByKey", "StatefulMapByKey"]

#: Elements a with-context keyed operator holds while their changelog writes await their
#: acknowledgements (it pulls ahead of downstream up to this many). With one write in
#: flight at a time, a partition's rate is at most this many elements per changelog round
#: trip: 4096 left the embedded broker's ~50 ms round trips under load unbound, where 1024
#: held ~20,000 records/s per partition back.
MAX_UNACKED = 4096
#: The most elements a with-context keyed operator asks upstream for with one pull.
MAX_BATCH = 256


def _check_spec(op: str, store: Any) -> None:
    if not isinstance(store, StoreSpec):
        raise TypeError(
            f"{op}: store must be a StoreSpec (Stores.in_memory(name) or "
            f"Stores.persistent(name, path)), got {store!r}"
        )


def _check_callable(op: str, what: str, f: Any) -> None:
    if not callable(f):
        raise TypeError(f"{op}: {what} must be callable, got {f!r}")


class _KeyedStage(GraphStageWithMaterializedValue[FlowShape, StoreView[Any, Any]]):
    name = "keyed"

    def __init__(self, store: StoreSpec[Any, Any], with_context: bool = False) -> None:
        cls = type(self).__name__
        self.shape = FlowShape(Inlet(f"{cls}.in"), Outlet(f"{cls}.out"))
        self.store = store
        # (element, context) pairs in and out; a context is released once the writes of
        # its element are durable (see _ContextLogic).
        self.with_context = with_context

    def _logic(self, handle: StoreHandle) -> GraphStageLogic:
        raise NotImplementedError  # pragma: no cover - both stages override

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[GraphStageLogic, StoreView[Any, Any]]:
        handle = StoreHandle(self.store, self.name)
        return self._logic(handle), StoreView(handle)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.store.name!r})"


class AggregateByKey(_KeyedStage):
    """``aggregate_by_key(store, key, zero, aggregate)``: per key ``k = key(x)``, the
    store's value becomes ``aggregate(value, x)`` (``zero()`` for a key not seen yet: a
    factory, as ``windowed``'s, so no two keys share a mutable start) and
    ``(k, new_value)`` is emitted: the changelog view of a table (Kafka Streams'
    ``groupByKey().aggregate()``). Materializes a ``StoreView`` of the table.

    Emits when an element was aggregated and downstream pulls. Backpressures when
    downstream does. Completes when upstream completes and the store holds every update
    (then it is closed). Fails when upstream fails, ``key``/``zero``/``aggregate`` raises
    or the value cannot be serialized (supervision stop; the updates of earlier elements
    are emitted first), or the store fails.
    Cancels when downstream cancels. Supervision: resume and restart skip the element
    (nothing written, nothing emitted); restart keeps the store, as Kafka Streams keeps a
    task's state when it restarts.

    Values live as objects in the operator's cache between flushes, and the emitted
    ``new_value`` is that object: return a new value from ``aggregate`` rather than
    changing the one given (as with ``scan``), or an emitted value changes later.
    """

    name = "aggregate_by_key"

    def __init__(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Any], Any],
        zero: Callable[[], Any],
        aggregate: Callable[[Any, Any], Any],
        with_context: bool = False,
    ) -> None:
        _check_spec("aggregate_by_key", store)
        _check_callable("aggregate_by_key", "key", key)
        if not callable(zero):
            raise TypeError(
                "aggregate_by_key: zero must be a zero-argument function giving a new key's "
                f"first value (e.g. lambda: 0, as windowed's zero), got {zero!r}"
            )
        _check_callable("aggregate_by_key", "aggregate", aggregate)
        super().__init__(store, with_context)
        self.key = key
        self.zero = zero
        self.aggregate = aggregate

    def _logic(self, handle: StoreHandle) -> GraphStageLogic:
        if self.with_context:
            return _AggregateContextLogic(self.shape, handle, self)
        return _AggregateLogic(self.shape, handle, self)


class StatefulMapByKey(_KeyedStage):
    """``stateful_map_by_key(store, key, f)``: ``stateful_map`` with one state per key, kept
    in a store: ``f(value, x) -> (new_value, y)`` where ``value`` is the store's value for
    ``key(x)`` (None if it has none); a ``new_value`` of None deletes the key, a ``y`` of
    None emits nothing. Materializes a ``StoreView``.

    Emits when ``f`` returned a ``y`` that is not None and downstream pulls.
    Backpressures when downstream does. Completes when upstream completes and the store
    holds every update (then it is closed). Fails when upstream fails, ``key``/``f``
    raises or the new value cannot be serialized (supervision stop), or the store fails.
    Cancels when downstream cancels. Supervision: resume and restart skip the element
    (nothing written, nothing emitted); restart keeps the store.
    """

    name = "stateful_map_by_key"

    def __init__(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Any], Any],
        f: Callable[[Any, Any], tuple[Any, Any]],
        with_context: bool = False,
    ) -> None:
        _check_spec("stateful_map_by_key", store)
        _check_callable("stateful_map_by_key", "key", key)
        _check_callable("stateful_map_by_key", "f", f)
        super().__init__(store, with_context)
        self.key = key
        self.f = f

    def _logic(self, handle: StoreHandle) -> GraphStageLogic:
        if self.with_context:
            return _MapByKeyContextLogic(self.shape, handle, self)
        return _MapByKeyLogic(self.shape, handle, self)


class _StoreFailed(Exception):
    """A store operation failed inside the per-element loop: not the element's fault
    (the stage fails whatever the decider says). Tagged so that a lazy take can tell it
    from a failure of the upstream's iterator, which runs in the same loop."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.cause = cause


class _NoType:
    """Never the type of a key: the key type of a store whose keys are all serialized."""


class _KeyedLogic(FlowLogic):
    """Opens the store at start, closes it at stop; the batch protocol on both ports.

    Supervision is applied here, per element (``_stops``), not by the interpreter: an
    exception escaping a handler is the store's (it fails the stage whatever the
    decider says).

    Elements arrive by push (``on_push``), or, when upstream offers the batch protocol's
    synchronous take (an iterable source, an async boundary: see ``fused.py``), are taken
    in ``on_pull`` and run through the loop straight from upstream's iterator: one pull
    answers one demand with no push round trip and no list in between. Both paths run
    the same ``_process``.
    """

    def __init__(self, shape: FlowShape, handle: StoreHandle) -> None:
        super().__init__(shape)
        self.handle = handle
        self._batch_in: tuple[Inlet[Any], ...] = (self.in_,)
        self._batch_out: tuple[Outlet[Any], ...] = (self.out,)
        # The exact key type (str or int) last seen being its own cache key: one ``is``
        # per element instead of a set lookup (see StoreHandle.cache_key).
        self._kt: type = _NoType
        self._preparing: asyncio.Task[Any] | None = None

    def pre_start(self) -> None:
        cin = self._cin = self._conns[self.in_]
        self._cout = self._conns[self.out]
        self._take_up: Any = hand_over_hook(cin.out_logic, cin) if cin.batch else None
        self._settle_up: Any = settle_hook(cin.out_logic, cin) if cin.batch else None
        try:
            self.handle.open()
            ready = self.handle.engine.prepare()
        except Exception as exc:
            # Not the user's element: no supervision applies to a store that cannot open.
            self.fail_stage(exc)
            return
        # Queryable while the stage runs (reactive.state.http serves the registry).
        view: StoreView[Any, Any] = StoreView(self.handle)
        self._registered = view
        ctx = self.handle.context
        self._restored = ready is None
        registry_of(self.materializer).register(
            ctx.name, view, ctx.partition, ready=self._is_restored
        )
        if ready is not None:
            # A layer's async work (a changelog restore): no element is pulled before it
            # is done (on_pull waits for it).
            done = self.get_async_callback(self._prepared)
            task = self.materializer.spawn(_await(ready))
            task.add_done_callback(done.invoke)
            self._preparing = task
        else:
            self._note_prepared()

    def _note_prepared(self) -> bool:
        """Tell the handle the store is ready (an empty one is then never asked for a key
        it cannot hold); False if asking failed the stage."""
        try:
            self.handle.note_prepared()
        except Exception as exc:
            self.fail_stage(exc)
            return False
        return True

    def _prepared(self, task: asyncio.Task[Any]) -> None:
        self._preparing = None
        exc = None if task.cancelled() else task.exception()
        if task.cancelled() or exc is not None:
            h = self.handle
            self.fail_stage(
                exc
                if exc is not None
                else RuntimeError(
                    f"[{self._stage_name}] store {h.spec.name!r}: preparing it was cancelled"
                )
            )
            return
        # A view queried during the restore may have cached keys as absent: forget them.
        self.handle.clean.clear()
        self._restored = True
        if self._note_prepared():
            self._resume_pulling()

    def _is_restored(self) -> bool:
        """Queryable state: the store holds its state (its changelog restore is done)."""
        return self._restored

    def _resume_pulling(self) -> None:
        if self.is_available(self.out):
            self.on_pull()

    def post_stop(self) -> None:
        task = self._preparing
        if task is not None:
            task.cancel()
        view = getattr(self, "_registered", None)
        if view is not None:
            registry_of(self.materializer).unregister(self.handle.context.name, view)
        self.handle.close()

    def on_upstream_finish(self) -> None:
        # Complete only once the store holds every update: a store that cannot take them
        # fails the stream instead (post_stop could only log it).
        try:
            self.handle.flush()
        except Exception as exc:
            self.fail_stage(exc)
            return
        self.complete_stage()

    def on_pull(self) -> None:
        if self._preparing is not None:
            return  # pulled once the store is prepared (_prepared)
        if self._take_up is not None and self._cin.state == 0 and self._serve():
            return
        if not self._cin.state & IN_CLOSED:
            self._request()

    def _request(self) -> None:
        self.pull(self.in_)
        cin = self._cin
        if cin.batch:
            cout = self._cout
            cin.demand_n = cout.demand_n if cout.batch else 1

    def _serve(self) -> bool:
        """Answer downstream's demand with elements taken from upstream right now (the
        batch protocol's ``take``, see ``fused.py``): True if that answered the pull
        (pushed or failed), False to pull instead (upstream had nothing ready, or every
        element taken was skipped by supervision)."""
        cin = self._cin
        cout = self._cout
        take = self._take_up
        settle = self._settle_up
        n = cout.demand_n if cout.batch else 1
        out: list[Any] = _Batch()
        exc: BaseException | None = None
        while len(out) < n and cin.state == 0:
            more = take(n - len(out))
            if not more:
                break
            try:
                exc = self._process(more, out)
            except _StoreFailed as sf:
                if settle is not None:
                    settle(None)
                self.fail_stage(sf.cause)
                return True
            except Exception as up_exc:
                if settle is None:
                    raise
                # A lazy take: upstream's own iterator ran inside our loop, so what it
                # raised is upstream's failure (it fails; ours arrives as usual).
                settle(up_exc)
                break
            if settle is not None:
                settle(None)
            if exc is not None:
                break
        if out:
            self.push(self.out, out[0] if len(out) == 1 else out)
        if exc is not None:
            self.fail_stage(exc)
            return True
        return bool(out)

    def _stops(self, exc: BaseException) -> bool:
        """Supervision of an element whose function raised: True to fail the stage."""
        return self._decided(exc) is Supervision.stop

    def _serde_error(self, what: str, obj: Any, k: Any, exc: Exception) -> TypeError:
        h = self.handle
        serde = h.store.value_serde if h.store is not None else None
        err = TypeError(
            f"[{self._stage_name}] store {h.spec.name!r}: {what} {obj!r} of key {k!r} "
            f"cannot be serialized by {serde!r}: {exc}"
        )
        err.__cause__ = exc
        return err

    def _key_error(self, exc: Exception) -> Exception:
        """The store's error for a key it cannot serialize, naming this stage."""
        if not isinstance(exc, TypeError):
            return exc
        err = TypeError(f"[{self._stage_name}] {exc}")
        err.__cause__ = exc
        return err

    def _none_element(self) -> PortStateError:
        """Upstream handed over None in a batch (RS rule 2.13): name the stage that did."""
        note_unsent(self._cin)  # (read from the source's iterator, not sent)
        return NoneElementError(f"[{self._cin.out_logic._stage_name}] {NONE_ELEMENT}")

    def _miss(self, ck: Any) -> Any:
        """The store's value of ``ck`` (``_ABSENT`` if none) for a key in neither cache
        dict, evicting first if the cache is full; store errors come out as
        ``_StoreFailed``."""
        h = self.handle
        try:
            if h.size and len(h.clean) + len(h.dirty) >= h.size:
                h.evict()
            return h.fetch(ck)
        except Exception as exc:
            # Called while the loop handles the KeyError of ``ck``'s miss in ``dirty``:
            # that is not part of the store's failure.
            ctx = exc.__context__
            if type(ctx) is KeyError and ctx.args == (ck,):
                exc.__context__ = None
            raise _StoreFailed(exc) from exc

    def _run(self, xs: Any, out: list[Any]) -> BaseException | None:
        raise NotImplementedError  # pragma: no cover - both logics override

    def _process(self, xs: Any, out: list[Any]) -> BaseException | None:
        """Run ``xs`` through the loop into ``out``: the failure to fail the stage with
        after pushing ``out`` (an element's, under supervision), or None. A store failure
        raises ``_StoreFailed``; what upstream's iterator raises escapes as it is."""
        exc = self._run(xs, out)
        h = self.handle
        if not h.size:  # cache_size 0: the store has every update before it is emitted
            try:
                h.evict()
            except Exception as store_exc:
                raise _StoreFailed(store_exc) from store_exc
        return exc

    def on_push(self) -> None:
        x = self.grab(self.in_)
        out: list[Any] = _Batch()
        try:
            exc = self._process(x if type(x) is _Batch else (x,), out)
        except _StoreFailed as sf:
            # The store failed (reading or writing a batch): not the element's fault.
            self.fail_stage(sf.cause)
            return
        if out:
            self.push(self.out, out[0] if len(out) == 1 else out)
        if exc is not None:
            self.fail_stage(exc)
        elif not out:
            self.on_pull()


class _AggregateLogic(_KeyedLogic):
    def __init__(self, shape: FlowShape, handle: StoreHandle, stage: AggregateByKey) -> None:
        super().__init__(shape, handle)
        self.key = stage.key
        self.zero = stage.zero
        self.aggregate = stage.aggregate

    def _run(self, xs: Any, out: list[Any]) -> BaseException | None:
        # The hot loop: locals only, for keys of the exact type ``kt`` (str or int, under
        # the library's serdes), which are their own cache keys; any other key goes through
        # _other_key (which also learns ``kt`` from the first such key). A hit in ``dirty``
        # is one subscript (a KeyError only on a miss); an exact int value is not
        # trial-serialized under the default serde (it encodes ints of any size;
        # StoreHandle.check does the rest); the cache size is checked only when a key
        # misses (with cache_size 0 the cache is emptied after the batch, in _process).
        # ``type`` is a local and the output goes through ``out.append`` (not a bound
        # method kept in a local): CPython 3.11 then type-checks with a LOAD_FAST and
        # appends to the batch list in place (callgrind: ~4% fewer instructions per
        # element on the keyed_count row; a with-context ``out`` has an ``append`` too).
        h = self.handle
        key_fn = self.key
        agg = self.aggregate
        zero = self.zero
        clean = h.clean
        dirty = h.dirty  # the cache dicts are cleared, never replaced
        cpop = clean.pop
        kt = self._kt
        tint = int if h.trusted else None
        check = h.check
        miss = self._miss
        absent = _ABSENT
        tp = type
        for x in xs:
            if x is None:
                return self._none_element()
            try:
                k = key_fn(x)
            except Exception as exc:
                if self._stops(exc):
                    return exc
                continue
            if tp(k) is not kt:
                stop = self._other_key(x, k, out)
                if stop is not None:
                    return stop
                kt = self._kt
                continue
            # This operator never deletes, so dirty holds values only (no _DELETED).
            # A key written here moves from clean to dirty: it is in one dict at a time.
            # A miss is handled inside the except block: measured ~5% faster on the whole
            # loop than leaving it with a sentinel to test on every element.
            try:
                cur = dirty[k]
            except KeyError as miss_exc:  # not written since the last flush
                cur = cpop(k, absent)
                if cur is absent:  # not cached, or cached as absent: ask the store
                    cur = miss(k)
                    if cur is absent:  # a new key
                        try:
                            cur = zero()
                        except Exception as exc:
                            if exc.__context__ is miss_exc:  # ours, not the user's
                                exc.__context__ = None
                            if self._stops(exc):
                                return exc
                            continue
            try:
                new = agg(cur, x)
            except Exception as exc:
                if self._stops(exc):
                    return exc
                continue
            if tp(new) is not tint:
                try:
                    check(new)
                except Exception as exc:
                    err = self._serde_error("value", new, k, exc)
                    if self._stops(err):
                        return err
                    continue
            dirty[k] = new
            out.append((k, new))
        return None

    def _other_key(self, x: Any, k: Any, out: list[Any]) -> BaseException | None:
        """One element whose key is not of the hot loop's type: the same steps through the
        handle (the failure to stop with, or None). An exact int or str key under the
        library's serdes is its own cache key: its type becomes the hot loop's."""
        h = self.handle
        try:
            kb = h.cache_key(k)
        except Exception as exc:
            err = self._key_error(exc)
            return err if self._stops(err) else None
        if kb is k and h.direct:
            self._kt = type(k)
        cur = h.dirty.get(kb, _ABSENT)
        if cur is _ABSENT:
            cur = h.clean.pop(kb, _ABSENT)
            if cur is _ABSENT:
                cur = self._miss(kb)
                if cur is _ABSENT:
                    try:
                        cur = self.zero()
                    except Exception as exc:
                        return exc if self._stops(exc) else None
        try:
            new = self.aggregate(cur, x)
        except Exception as exc:
            return exc if self._stops(exc) else None
        try:
            h.check(new)
        except Exception as exc:
            err = self._serde_error("value", new, k, exc)
            return err if self._stops(err) else None
        h.dirty[kb] = new
        out.append((k, new))
        return None


class _MapByKeyLogic(_KeyedLogic):
    def __init__(self, shape: FlowShape, handle: StoreHandle, stage: StatefulMapByKey) -> None:
        super().__init__(shape, handle)
        self.key = stage.key
        self.f = stage.f

    def _run(self, xs: Any, out: list[Any]) -> BaseException | None:
        h = self.handle
        key_fn = self.key
        f = self.f
        ap = out.append
        for x in xs:
            if x is None:
                return self._none_element()
            try:
                k = key_fn(x)
            except Exception as exc:
                if self._stops(exc):
                    return exc
                continue
            try:
                kb = h.cache_key(k)
            except Exception as exc:
                err = self._key_error(exc)
                if self._stops(err):
                    return err
                continue
            try:
                cur = h.get(kb, None)
            except Exception as store_exc:
                raise _StoreFailed(store_exc) from store_exc
            try:
                new, y = f(cur, x)
            except Exception as exc:
                if self._stops(exc):
                    return exc
                continue
            if new is None:
                if cur is not None:
                    h.delete(kb)
            else:
                try:
                    h.check(new)
                except Exception as exc:
                    err = self._serde_error("value", new, k, exc)
                    if self._stops(err):
                        return err
                    continue
                h.put(kb, new)
            if y is not None:
                ap(y)
        return None


class _Tagged:
    """The ``out`` list of a with-context run: ``append`` tags each output with its
    element's context (see ``_ContextLogic.on_push``)."""

    __slots__ = ("append",)

    def __init__(self, append: Callable[[Any], None]) -> None:
        self.append = append


async def _await(aw: Awaitable[Any]) -> Any:
    return await aw


class _ContextLogic(_KeyedLogic):
    """The with-context variant: elements are ``(x, context)`` pairs; each output carries
    the context of the element that produced it, and is emitted only once the store's
    writes for that element are durable (``BytesStore.durable``: with a changelog, acked
    by the broker). So a context committed downstream never covers an update the
    changelog could lose: at-least-once state.

    Writes go to the store in groups (Nagle's algorithm): an element arriving while no
    write is awaiting its acknowledgement is written through at once; elements arriving
    while one is in flight update the cache and wait together, and their updates go to
    the store as one write (the last value of each key: what a compacted changelog
    keeps) when that acknowledgement arrives. So a changelog round trip costs one write
    per group, not one per element, and a lone element waits for no one. The cache
    serves reads throughout (an element sees every earlier element's update). Up to
    ``MAX_UNACKED`` elements are processed ahead of their acknowledgements, in order.
    Batch protocol on both ports: a batch in is processed as one group, the outputs
    ready go out as one batch.
    """

    def __init__(self, shape: FlowShape, handle: StoreHandle, *stage: Any) -> None:
        super().__init__(shape, handle, *stage)
        # (future or None, outputs, elements): a group's outputs wait until its future
        # (and every earlier one) is done, then move to _ready.
        self._held: deque[tuple[asyncio.Future[None] | None, list[Any], int]] = deque()
        self._holding = 0  # elements in _held
        self._ready: deque[Any] = deque()
        # Outputs of the elements whose updates are still only in the cache, and how
        # many elements that is; the write awaiting its acknowledgement, if any.
        self._group: list[Any] = []
        self._grouped = 0
        self._flight: asyncio.Future[None] | None = None
        self._finishing = False
        self._acked = self.get_async_callback(self._on_acked)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        pairs = x if type(x) is _Batch else (x,)
        group = self._group
        n = len(group)
        bad: list[Any] = []
        taken = 0
        # One run of the operator's loop over the whole batch: the loop reads the
        # elements from this generator, which notes each one's context, and appends each
        # output to the group with the context current when it is emitted (each element's
        # outputs are appended while it is the current one).
        current: Any = None

        def elements() -> Any:
            nonlocal current, taken
            for pair in pairs:
                try:
                    elem, current = pair
                except (TypeError, ValueError):
                    bad.append(pair)
                    return
                taken += 1
                yield elem

        gap = group.append
        try:
            # _run calls only out.append.
            out = cast("list[Any]", _Tagged(lambda y: gap((y, current))))
            exc = self._run(elements(), out)
        except _StoreFailed as sf:
            self.fail_stage(sf.cause)
            return
        if exc is None and bad:
            exc = TypeError(
                f"[{self._stage_name}] expected (element, context) pairs (a "
                f"SourceWithContext or FlowWithContext), got {bad[0]!r}"
            )
        if exc is not None:
            del group[n:]  # never released: the stage fails
            self.fail_stage(exc)
            return
        self._grouped += taken
        if self._flight is None and not self._write_group():
            return
        self._drain()

    def _write_group(self) -> bool:
        """Write the cached updates of the group to the store and hold its outputs
        until they are durable; False if the store failed (the stage failed)."""
        h = self.handle
        try:
            h.flush_dirty()
            fut = h.engine.durable()
        except Exception as store_exc:
            self.fail_stage(store_exc)
            return False
        if fut is not None and not fut.done():
            self._flight = fut
            fut.add_done_callback(self._acked.invoke)
        self._held.append((fut, self._group, self._grouped))
        self._holding += self._grouped
        self._group = []
        self._grouped = 0
        return True

    def _on_acked(self, fut: asyncio.Future[None]) -> None:
        if fut is self._flight:
            self._flight = None
            if self._grouped and not self._write_group():
                return
        self._drain()

    def _drain(self) -> None:
        held = self._held
        ready = self._ready
        while held:
            fut = held[0][0]
            if fut is not None:
                if not fut.done():
                    break
                exc = fut.exception() if not fut.cancelled() else RuntimeError("cancelled")
                if exc is not None:
                    self.fail_stage(exc)
                    return
            _, outs, n = held.popleft()
            self._holding -= n
            ready.extend(outs)
        out = self.out
        if ready and self.is_available(out):
            cout = self._cout
            if cout.batch and cout.demand_n > 1 and len(ready) > 1:
                pop = ready.popleft
                self.push(out, _Batch([pop() for _ in range(min(cout.demand_n, len(ready)))]))
            else:
                self.push(out, ready.popleft())
        if self._finishing:
            if not held and not ready:
                self.complete_stage()
            return
        self._pull_ahead()

    def _pull_ahead(self) -> None:
        in_ = self.in_
        if (
            self._preparing is None
            and self._holding + len(self._ready) + self._grouped < MAX_UNACKED
            and not self.has_been_pulled(in_)
            and not self.is_closed(in_)
        ):
            self.pull(in_)
            cin = self._cin
            if cin.batch:
                cin.demand_n = min(
                    MAX_UNACKED - self._holding - len(self._ready) - self._grouped, MAX_BATCH
                )

    def on_pull(self) -> None:
        self._drain()

    def _resume_pulling(self) -> None:
        self._drain()

    def on_upstream_finish(self) -> None:
        if self._grouped and not self._write_group():
            return
        try:
            self.handle.flush()
        except Exception as exc:
            self.fail_stage(exc)
            return
        self._finishing = True
        self._drain()


class _AggregateContextLogic(_ContextLogic, _AggregateLogic):
    pass


class _MapByKeyContextLogic(_ContextLogic, _MapByKeyLogic):
    pass
