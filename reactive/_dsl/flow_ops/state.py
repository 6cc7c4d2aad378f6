"""Keyed state over stores and table joins (``_ops/state.py``, ``_ops/join.py``).

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast, overload

from ..._keep import Keep
from ._base import M2, Mat, OpsBase, Out, Repr, S, T, U

if TYPE_CHECKING:
    from ...state._spec import StoreSpec
    from ...state._view import StoreView
    from ..blueprints import FlowOps, Sink

__all__ = ["KeyedStateOps"]


class KeyedStateOps(OpsBase[Out, Mat]):
    """Keyed state over stores and table joins (``_ops/state.py``, ``_ops/join.py``)."""

    __slots__ = ()

    @overload
    def aggregate_by_key(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Out], T],
        zero: Callable[[], U],
        aggregate: Callable[[U, Out], U],
    ) -> Repr[tuple[T, U], StoreView[T, U]]: ...
    @overload
    def aggregate_by_key(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Out], T],
        zero: Callable[[], U],
        aggregate: Callable[[U, Out], U],
        combine: Callable[[Mat, StoreView[T, U]], M2],
    ) -> Repr[tuple[T, U], M2]: ...
    def aggregate_by_key(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Out], T],
        zero: Callable[[], U],
        aggregate: Callable[[U, Out], U],
        combine: Callable[[Any, Any], Any] = Keep.right,
    ) -> Repr[tuple[T, U], Any]:
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
        from ..._ops.state import AggregateByKey

        return self._via_stage(AggregateByKey(store, key, zero, aggregate), combine)

    @overload
    def stateful_map_by_key(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Out], T],
        f: Callable[[S | None, Out], tuple[S | None, U | None]],
    ) -> Repr[U, StoreView[T, S]]: ...
    @overload
    def stateful_map_by_key(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Out], T],
        f: Callable[[S | None, Out], tuple[S | None, U | None]],
        combine: Callable[[Mat, StoreView[T, S]], M2],
    ) -> Repr[U, M2]: ...
    def stateful_map_by_key(
        self,
        store: StoreSpec[Any, Any],
        key: Callable[[Out], T],
        f: Callable[[S | None, Out], tuple[S | None, U | None]],
        combine: Callable[[Any, Any], Any] = Keep.right,
    ) -> Repr[U, Any]:
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
        from ..._ops.state import StatefulMapByKey

        return self._via_stage(StatefulMapByKey(store, key, f), combine)

    def join_table(
        self,
        table: Any,
        key: Callable[[Out], Any],
        combine: Callable[[Out, Any], U],
        missing: Sink[Out, Any] | None = None,
    ) -> Repr[U, Mat]:
        """Inner stream-table join (Kafka Streams' ``KStream.join(KTable)``): for each
        element ``x`` whose key ``key(x)`` has a value ``v`` in ``table`` (a read-only
        view: ``StoreView``, ``KeyValueStore``, ``KTable``) *now*, emit ``combine(x, v)``.
        An element without a value goes to the ``missing`` sink if one is given;
        otherwise it is dropped, counted and logged at DEBUG (logger ``reactive.state``).
        A ``key(x)`` of None has no value, whatever the table holds (the table is not
        asked; Kafka Streams drops a null-key record of an inner join).

        Emits when an element found its table value and downstream pulls. Backpressures
        when downstream (or ``missing``) backpressures. Completes when upstream
        completes. Fails when upstream fails, ``key``/``combine`` raises (supervision:
        resume/restart skip the element), ``combine`` returns None, or the table is
        closed. Cancels when downstream (or ``missing``) cancels.
        """
        from ..._ops.join import InnerJoin, check_table, element_of, is_missing

        check_table("join_table", table, key, combine)
        # map/map_concat: the simple family's; the stubs' FlowOps is no OpsBase to mypy, so
        # its result is cast back to Repr (which stands for the same blueprint)
        ops = cast("FlowOps[Out, Mat]", self)
        if missing is None:
            return cast(
                "Repr[U, Mat]", ops.map_concat(InnerJoin(table, key, combine, tagged=False))
            )
        from ..blueprints import Flow

        tagged = ops.map(InnerJoin(table, key, combine, tagged=True))
        return cast(
            "Repr[U, Mat]", tagged.divert_to(Flow().map(element_of).to(missing), is_missing)
        )

    def left_join_table(
        self, table: Any, key: Callable[[Out], Any], combine: Callable[[Out, Any], U]
    ) -> Repr[U, Mat]:
        """Left stream-table join (Kafka Streams' ``KStream.leftJoin(KTable)``): for each
        element ``x`` emit ``combine(x, v)`` with ``v`` the value of ``key(x)`` in
        ``table`` now, or None when it has none (always None for a ``key(x)`` of None:
        the table is not asked, as Kafka Streams' left join).

        Emits when an element was joined and downstream pulls. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails,
        ``key``/``combine`` raises (supervision: resume/restart skip the element),
        ``combine`` returns None, or the table is closed. Cancels when downstream cancels.
        """
        from ..._ops.join import LeftJoin, check_table

        check_table("left_join_table", table, key, combine)
        return cast(
            "Repr[U, Mat]", cast("FlowOps[Out, Mat]", self).map(LeftJoin(table, key, combine))
        )
