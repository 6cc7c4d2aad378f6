"""Event-time windows (``_ops/windows.py``).

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, overload

from ..._ops.window_specs import EmitStrategy
from ._base import Mat, OpsBase, Out, Repr, S, V

if TYPE_CHECKING:
    from ..._ops.window_specs import Windowed, WindowSpec
    from ...state._spec import StoreSpec
    from ..blueprints import Sink

__all__ = ["WindowOps"]


class WindowOps(OpsBase[Out, Mat]):
    """Event-time windows (``_ops/windows.py``)."""

    __slots__ = ()

    @overload
    def windowed(
        self,
        windows: WindowSpec,
        *,
        key: Callable[[Out], V],
        timestamp: Callable[[Out], float] | None = None,
        zero: Callable[[], S],
        aggregate: Callable[[S, Out], S],
        merge: Callable[[S, S], S] | None = None,
        emit: EmitStrategy = ...,
        late: Sink[Out, Any] | None = None,
        idle_timeout: float | None = None,
        store: StoreSpec[Any, Any] | None = None,
    ) -> Repr[Windowed[V, S], Mat]: ...
    @overload
    def windowed(
        self,
        windows: WindowSpec,
        *,
        key: Callable[[Out], V],
        timestamp: Callable[[Out], float] | None = None,
        zero: None = None,
        aggregate: None = None,
        merge: Callable[[Any, Any], Any] | None = None,
        emit: EmitStrategy = ...,
        late: Sink[Out, Any] | None = None,
        idle_timeout: float | None = None,
        store: StoreSpec[Any, Any] | None = None,
    ) -> Repr[Windowed[V, list[Out]], Mat]: ...
    @overload
    def windowed(
        self,
        windows: WindowSpec,
        *,
        key: None = None,
        timestamp: Callable[[Out], float] | None = None,
        zero: Callable[[], S],
        aggregate: Callable[[S, Out], S],
        merge: Callable[[S, S], S] | None = None,
        emit: EmitStrategy = ...,
        late: Sink[Out, Any] | None = None,
        idle_timeout: float | None = None,
        store: StoreSpec[Any, Any] | None = None,
    ) -> Repr[Windowed[None, S], Mat]: ...
    @overload
    def windowed(
        self,
        windows: WindowSpec,
        *,
        key: None = None,
        timestamp: Callable[[Out], float] | None = None,
        zero: None = None,
        aggregate: None = None,
        merge: Callable[[Any, Any], Any] | None = None,
        emit: EmitStrategy = ...,
        late: Sink[Out, Any] | None = None,
        idle_timeout: float | None = None,
        store: StoreSpec[Any, Any] | None = None,
    ) -> Repr[Windowed[None, list[Out]], Mat]: ...
    def windowed(
        self,
        windows: WindowSpec,
        *,
        key: Callable[[Out], Any] | None = None,
        timestamp: Callable[[Out], float] | None = None,
        zero: Callable[[], Any] | None = None,
        aggregate: Callable[[Any, Out], Any] | None = None,
        merge: Callable[[Any, Any], Any] | None = None,
        emit: EmitStrategy = EmitStrategy.on_window_close(),
        late: Sink[Out, Any] | None = None,
        idle_timeout: float | None = None,
        store: StoreSpec[Any, Any] | None = None,
    ) -> Repr[Windowed[Any, Any], Mat]:
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
        element; every ``commit_interval`` seconds of the materializer's clock, 30 by
        default, if anything changed; and whenever the stage stops, including an abort)
        and read when the stage
        starts, so a stream stopped and started again over a persistent store emits the
        windows an uninterrupted one would (for the elements each run handled). A window
        leaves the store when it is emitted. In a substream (``group_by``) each substream
        opens its own instance of the spec (a persistent one: the same directory, which
        only one instance can hold). Values are serialized by the spec's value serde (default:
        msgpack keeping tuples); a value, key or kept element it cannot encode fails that
        element under supervision (``TypeError`` naming the stage and the value). Without
        ``store`` the windows live in memory only.

        With ``store``, the windows are queryable while the stage runs: it registers a
        read-only ``WindowStoreView`` in its materializer's ``StateRegistry``
        (``registry_of(mat)``) under the store's name and partition, and unregisters it
        when it stops. ``registry.fetch(name, key, time_from, time_to)`` gives the key's
        windows whose start is in ``[time_from, time_to]`` (None: unbounded), in start
        order, with their current value: the open windows and those closed but not
        emitted yet (an emitted window is gone); ``fetch_all`` every key's;
        ``reactive.state.http.StateServer`` serves them at
        ``/stores/{name}/windows/{key}?from=&to=``. Reads see every element handled,
        written to the store or not. Registering under the name of a key-value store
        fails the stage (``ValueError``).

        Raises ``ValueError`` when built with only one of ``zero``/``aggregate``, a
        ``SessionWindows`` with a custom aggregate and no ``merge``, or a negative
        ``idle_timeout`` (the specs validate their own sizes, steps, gaps and graces);
        ``TypeError`` for a ``store`` that is not a ``StoreSpec``.
        """
        from ..._ops.windows import WindowedStage
        from ..._ops.windows_store import StoredWindowedStage

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
