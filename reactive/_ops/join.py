"""Stream-table joins: ``join_table`` (inner) and ``left_join_table`` (left).

Kafka Streams' ``KStream.join(KTable)`` / ``leftJoin(KTable)``: each stream element is
joined with the table's value for its key *at the time the element is processed*; a
later table update does not re-emit earlier elements (a stream-table join is not
windowed and keeps no state of its own). The table is any read-only view with ``get``:
a :class:`~reactive.state.StoreView` (the materialized value of ``aggregate_by_key``),
a :class:`~reactive.state.KeyValueStore`, or a Kafka ``KTable``
(``connectors.kafka.tables``).

An element whose key is None has no table value, whatever the table holds: an inner
join treats it as a miss, a left join combines it with None (Kafka Streams skips a
null-key record of an inner stream-table join and joins it with null in a left one).

Elements of an inner join without a table value are never lost silently: they go to the
``missing`` sink when one is given; otherwise they are dropped, each one logged at DEBUG
on the ``reactive.state`` logger with the number dropped so far by that operator.

The joins are built from ``map``/``map_concat`` (and ``divert_to`` for ``missing``), so
they take part in fusing and batching like those operators and follow their supervision:
resume/restart skip an element whose ``key`` or ``combine`` raises. Such an exception
carries a note naming the join and the function (``key`` or ``combine``) that raised it.
"""

from __future__ import annotations

import logging
import reprlib
from typing import TYPE_CHECKING, Any

from .._stage.logic import add_note_once

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["InnerJoin", "LeftJoin", "Missing", "check_table"]

log = logging.getLogger("reactive.state")

_ABSENT: Any = object()


def check_table(op: str, table: Any, key: Any, combine: Any) -> None:
    """Raise ``TypeError`` naming ``op`` when its arguments cannot work."""
    get = getattr(table, "get", None)
    if not callable(get) or isinstance(table, dict):
        raise TypeError(
            f"{op}: table must be a read-only store view with get(key, default) (a StoreView, "
            f"a KeyValueStore or a KTable), got {table!r}"
        )
    if not callable(key):
        raise TypeError(f"{op}: key must be a function of the stream element, got {key!r}")
    if not callable(combine):
        raise TypeError(
            f"{op}: combine must be a function (element, table_value) -> result, got {combine!r}"
        )


class Missing:
    """An element of an inner join that found no table value (sent to ``missing``)."""

    __slots__ = ("element",)

    def __init__(self, element: Any) -> None:
        self.element = element

    def __repr__(self) -> str:
        return f"Missing({self.element!r})"


def _blame(exc: BaseException, op: str, what: str, x: Any) -> None:
    """Note on ``exc`` that the ``what`` function given to ``op`` raised it for element
    ``x`` (once): the join runs inside a ``map``/``map_concat`` stage, which alone would
    name ``map`` or nothing (Kafka Streams names the join processor)."""
    add_note_once(
        exc, f"raised by the {what} function given to {op}, for element {reprlib.repr(x)}"
    )


def _none_result(op: str, x: Any, value: Any) -> TypeError:
    return TypeError(
        f"{op}: combine returned None for element {x!r} and table value {value!r}; "
        "a stream element cannot be None"
    )


class InnerJoin:
    """The per-element function of ``join_table``: ``(y,)`` or ``()`` (``map_concat``), or
    ``y`` / ``Missing(x)`` when the misses go to a sink (``tagged``)."""

    __slots__ = ("get", "key", "combine", "tagged", "dropped")

    def __init__(self, table: Any, key: Callable[[Any], Any], combine: Any, tagged: bool) -> None:
        self.get = table.get
        self.key = key
        self.combine = combine
        self.tagged = tagged
        #: Elements dropped so far (no table value, no ``missing`` sink).
        self.dropped = 0

    def __call__(self, x: Any) -> Any:
        try:
            k = self.key(x)
        except Exception as exc:
            _blame(exc, "join_table", "key", x)
            raise
        # A None key never joins (Kafka Streams drops a null-key record of an inner join):
        # the table is not asked, so a table holding a None key, or whose key serde
        # refuses None, makes no difference.
        value = _ABSENT if k is None else self.get(k, _ABSENT)
        if value is _ABSENT:
            if self.tagged:
                return Missing(x)
            self.dropped += 1
            log.debug(
                "join_table: no table value for key %r of element %r: dropped (%d so far)",
                k,
                x,
                self.dropped,
            )
            return ()
        try:
            y = self.combine(x, value)
        except Exception as exc:
            _blame(exc, "join_table", "combine", x)
            raise
        if y is None:
            raise _none_result("join_table", x, value)
        return y if self.tagged else (y,)


class LeftJoin:
    """The per-element function of ``left_join_table``: ``combine(x, value or None)``."""

    __slots__ = ("get", "key", "combine")

    def __init__(self, table: Any, key: Callable[[Any], Any], combine: Any) -> None:
        self.get = table.get
        self.key = key
        self.combine = combine

    def __call__(self, x: Any) -> Any:
        try:
            k = self.key(x)
        except Exception as exc:
            _blame(exc, "left_join_table", "key", x)
            raise
        # A None key joins with None without asking the table (Kafka Streams' left join).
        value = None if k is None else self.get(k, None)
        try:
            y = self.combine(x, value)
        except Exception as exc:
            _blame(exc, "left_join_table", "combine", x)
            raise
        if y is None:
            raise _none_result("left_join_table", x, value)
        return y


def is_missing(y: Any) -> bool:
    """True for the elements an inner join sends to its ``missing`` sink."""
    return type(y) is Missing


def element_of(m: Missing) -> Any:
    """The stream element inside a :class:`Missing`."""
    return m.element
