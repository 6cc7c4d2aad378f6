"""``windowed`` on ``SourceWithContext`` / ``FlowWithContext``: windows whose results carry
the *commit point* that became safe with them.

The rule kept (issue 13): an offset is committed only when every window holding that
record, and every earlier record of the same partition, has been emitted downstream.
Nothing else keeps at-least-once across a crash with open windows: after a restart from
the committed offset every window that was open at the crash is rebuilt from all of its
records.

Contexts
--------
Every input context must say which partition its record came from and where in it:

- a Kafka ``CommittableOffset`` (``Consumer.source_with_offset_context``): partition
  ``(group, topic, partition)``, position ``offset``; or
- a ``(partition, offset)`` tuple, ``partition`` hashable and ``offset`` an ``int``
  (``map_context`` turns any other context into one).

Anything else fails the stream with a ``TypeError`` naming the stage and the context.
Within a partition, contexts must arrive in offset order (what a Kafka consumer does;
a partition re-delivered from an earlier offset after a rebalance only makes the commit
point move back, never past an open window).

Each emitted ``Windowed`` carries as its context the whole commit point at the moment it
is emitted: for every partition seen, the highest offset ``o`` such that every record of
that partition at or below ``o`` has had all of its windows emitted (partitions where
nothing is safe yet are left out). For Kafka contexts that is a
``CommittableOffsetBatch`` (possibly empty; ``Committer`` accepts empty batches and
never commits backwards); for ``(partition, offset)`` contexts a ``dict`` partition ->
offset. A record that holds no window counts as done: late records once handed to the
``late`` sink (which receives ``(element, context)`` pairs) or counted as dropped,
records skipped by ``resume``, records in windows dropped by ``restart``.

How it works
------------
The plain ``WindowedStage`` runs on internal records ``(element, context, partition,
offset)`` with the user's functions wrapped to see the element. Every window's
accumulator is an ``_Acc(value, holder)``; the ``_Holder`` keeps, per partition, the
lowest offset among the window's records. A registry keeps, per partition, a min-heap
of the offsets live holders hold (lazy deletion), so the lowest held offset is found in
O(log n): the commit point of a partition is that offset minus one, or the highest
offset seen when nothing of it is held. Holders are released when their window is
emitted (``on_window_close``) or closes (``on_window_update``: the update emissions
already carried its records, but only a closed window is final, so a replay after a
crash rebuilds it whole). Sliding windows also hold the records the stage keeps to build
windows created later, until no open window could contain them any more.

The stage's two phases (prepare runs user code, commit applies) are kept: the wrapped
``aggregate``/``merge`` only *record* what they would register; the record is applied
when the element was handled without a supervised failure.
"""

from __future__ import annotations

import heapq
import sys
from collections import deque
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from .window_specs import EmitStrategy, Windowed
from .windows import _NONE, WindowedStage, _WindowedLogic

if TYPE_CHECKING:
    from .._stage.logic import GraphStageLogic

__all__ = ["ContextWindowedStage"]

_Part = Hashable


class _Holder:
    """What one window (or a buffered sliding record, or a record waiting for the
    ``late`` sink) holds: the lowest offset per partition of its records."""

    __slots__ = ("lo", "live")

    def __init__(self) -> None:
        self.lo: dict[_Part, int] = {}
        self.live = True


class _Acc:
    """A window's accumulator: the user's value and the window's holder."""

    __slots__ = ("value", "holder")

    def __init__(self, value: Any, holder: _Holder) -> None:
        self.value = value
        self.holder = holder


class _Registry:
    """Per partition: the offsets held by live holders (a min-heap with lazy deletion,
    compacted when most of it is stale), the lowest and highest offset seen."""

    __slots__ = ("heaps", "valid", "first", "last", "seq")

    def __init__(self) -> None:
        self.heaps: dict[_Part, list[tuple[int, int, _Holder]]] = {}
        self.valid: dict[_Part, int] = {}  # live entries per heap
        self.first: dict[_Part, int] = {}
        self.last: dict[_Part, int] = {}
        self.seq = 0

    def hold(self, h: _Holder, part: _Part, pos: int) -> None:
        cur = h.lo.get(part)
        if cur is None or pos < cur:
            h.lo[part] = pos
            self.seq += 1
            heap = self.heaps.get(part)
            if heap is None:
                heap = self.heaps[part] = []
                self.valid[part] = 0
            if cur is None:
                self.valid[part] += 1
            elif len(heap) > 64 and len(heap) > 4 * self.valid[part]:
                self._compact(part)
            heapq.heappush(heap, (pos, self.seq, h))

    def release(self, h: _Holder) -> None:
        """``h`` holds nothing any more (its window went out, closed or was dropped)."""
        if not h.live:
            return
        h.live = False
        valid = self.valid
        for part in h.lo:
            if part in valid:
                n = valid[part] = valid[part] - 1
                if len(self.heaps[part]) > 64 and len(self.heaps[part]) > 4 * n:
                    self._compact(part)

    def _compact(self, part: _Part) -> None:
        """Drop the stale entries of a partition's heap (those below a long-held offset
        cannot be popped until it is released)."""
        heap = [e for e in self.heaps[part] if e[2].live and e[2].lo.get(part) == e[0]]
        heapq.heapify(heap)
        self.heaps[part] = heap

    def absorb(self, into: _Holder, other: _Holder) -> None:
        """``other``'s records now belong to ``into`` (two sessions merged)."""
        if other is into:
            return
        self.release(other)
        for part, pos in other.lo.items():
            self.hold(into, part, pos)

    def rebuild(self, keep: list[_Holder]) -> None:
        """Forget every holder but ``keep`` (the stage dropped its windows)."""
        kept = set(keep)
        for heap in self.heaps.values():
            for _, _, h in heap:
                if h not in kept:
                    h.live = False
        self.heaps = {}
        self.valid = {}
        for h in keep:
            lo, h.lo = h.lo, {}
            for part, pos in lo.items():
                self.hold(h, part, pos)

    def points(self) -> dict[_Part, int]:
        """Per partition, the highest offset at or below which everything is done."""
        out: dict[_Part, int] = {}
        heaps = self.heaps
        for part, last in self.last.items():
            heap = heaps.get(part)
            point = last
            while heap:
                pos, _, h = heap[0]
                if h.live and h.lo.get(part) == pos:
                    point = pos - 1
                    break
                heapq.heappop(heap)  # stale: released, or its holder's lo went lower
            if point >= self.first[part]:
                out[part] = point
        return out


# -- contexts ----------------------------------------------------------------------------------
_SIMPLE = frozenset({int, str, bytes})  # partitions that need no hash() check


def _hashable(x: Any) -> bool:
    try:
        hash(x)
    except TypeError:
        return False
    return True


def _kafka_types() -> Any:
    """``connectors.kafka.messages`` if it is loaded (a ``CommittableOffset`` exists only
    then; reactive does not import the connector itself)."""
    return sys.modules.get("connectors.kafka.messages")


class _Contexts:
    """Reads partition and offset out of contexts and builds the emitted commit point;
    the first context decides the kind (Kafka offsets or ``(partition, offset)``)."""

    __slots__ = ("name", "kind", "offset_type", "committers")

    def __init__(self, name: Callable[[], str]) -> None:
        self.name = name
        self.kind: str | None = None
        self.offset_type: Any = None
        #: The committer of the offset seen last, per (group, topic, partition).
        self.committers: dict[_Part, Any] = {}

    def position(self, ctx: Any) -> tuple[_Part, int]:
        kind = self.kind
        if kind == "kafka" and ctx.__class__ is self.offset_type:
            part = (ctx.group_id, ctx.topic, ctx.partition)
            if self.committers.get(part) is not ctx.committer:
                self.committers[part] = ctx.committer
            return part, ctx.offset
        if kind != "kafka" and isinstance(ctx, tuple) and len(ctx) == 2:
            part, off = ctx
            if off.__class__ is int and (part.__class__ in _SIMPLE or _hashable(part)):
                self.kind = "pair"
                return part, off
        if kind is None:
            messages = _kafka_types()
            if messages is not None and isinstance(ctx, messages.CommittableOffset):
                self.kind, self.offset_type = "kafka", ctx.__class__
                return self.position(ctx)
        raise self._bad(ctx)

    def _bad(self, ctx: Any) -> TypeError:
        expected = {
            "kafka": "a Kafka CommittableOffset, as the earlier ones",
            "pair": "a (partition, offset) tuple with an int offset, as the earlier ones",
        }.get(
            self.kind or "",
            "a Kafka CommittableOffset or a (partition, offset) tuple with a hashable "
            "partition and an int offset",
        )
        return TypeError(
            f"[{self.name()}] windowed with context needs each context to be {expected}, "
            f"to know when an offset is safe to commit; got {ctx!r} ({type(ctx).__name__}). "
            "Use map_context(...) to turn the context into (partition, offset) first"
        )

    def build(self, points: dict[Any, int]) -> Any:
        if self.kind == "kafka":
            messages = _kafka_types()
            offsets = {}
            committers = {}
            for part, o in points.items():
                gtp = messages.GroupTopicPartition(*part)
                offsets[gtp] = o
                committers[gtp] = self.committers[part]
            return messages.CommittableOffsetBatch._make(offsets, committers, len(offsets))
        return points


# -- the user's functions, seeing the element of an internal record ----------------------------


def _on_element(f: Callable[[Any], Any] | None) -> Callable[[Any], Any] | None:
    if f is None:
        return None

    def applied(r: tuple[Any, ...]) -> Any:
        return f(r[0])

    return applied


class ContextWindowedStage(WindowedStage):
    """``WindowedStage`` over ``(element, context)`` pairs, emitting ``(Windowed,
    commit point)`` pairs (see the module docstring). Same arguments, validated by
    ``WindowedStage`` with the same messages."""

    name = "windowed"

    def __init__(
        self,
        windows: Any,
        *,
        key: Callable[[Any], Any] | None = None,
        timestamp: Callable[[Any], Any] | None = None,
        zero: Callable[[], Any] | None = None,
        aggregate: Callable[[Any, Any], Any] | None = None,
        merge: Callable[[Any, Any], Any] | None = None,
        emit: EmitStrategy | None = None,
        with_late: bool = False,
        idle_timeout: float | None = None,
    ) -> None:
        # The user's arguments, checked with the plain stage's messages.
        super().__init__(
            windows,
            key=key,
            timestamp=timestamp,
            zero=zero,
            aggregate=aggregate,
            merge=merge,
            emit=emit,
            with_late=with_late,
            idle_timeout=idle_timeout,
        )
        self.user_zero = zero
        self.user_aggregate = aggregate
        self.user_merge = merge
        # The inner logic runs on internal records and always with a custom aggregate (an
        # _Acc per window): its zero/aggregate/merge are made per materialization.
        self.key = _on_element(key)
        self.timestamp = _on_element(timestamp)
        self.zero = _placeholder_zero
        self.aggregate = _placeholder_aggregate
        self.merge = _placeholder_merge

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ContextWindowedLogic(self)

    def __repr__(self) -> str:
        return f"ContextWindowedStage({self.windows!r}, emit={self.emit!r})"


def _placeholder_zero() -> Any:  # pragma: no cover - replaced by the logic
    raise AssertionError("replaced per materialization")


def _placeholder_aggregate(acc: Any, r: Any) -> Any:  # pragma: no cover
    raise AssertionError("replaced per materialization")


def _placeholder_merge(a: Any, b: Any) -> Any:  # pragma: no cover
    raise AssertionError("replaced per materialization")


class _EmitQueue(deque[Any]):
    """The stage's pending windows; taking one out is emitting it, so that is where its
    holder is released and the commit point computed."""

    __slots__ = ("emit",)

    def __init__(self, emit: Callable[[Any], Any]) -> None:
        super().__init__()
        self.emit = emit

    def popleft(self) -> Any:
        return self.emit(deque.popleft(self))


class _ContextWindowedLogic(_WindowedLogic):
    def __init__(self, stage: ContextWindowedStage) -> None:
        self.reg = _Registry()
        self.txn: list[tuple[Any, ...]] = []
        self.aborted = False
        self.late_holder: _Holder | None = None
        self.release_on_emit: set[_Holder] = set()  # on_window_update: after a restart
        self.buffered: list[tuple[Any, int, _Holder]] = []  # sliding: held until expiry
        self.was_late = False
        self.last_ts: Any = None
        super().__init__(stage)
        self.contexts = _Contexts(lambda: self.stage_name)
        user_agg = stage.user_aggregate
        user_zero = stage.user_zero
        user_merge = stage.user_merge
        txn = self.txn
        default = user_agg is None
        self.list_values = default
        self.release_at_emit = not self.on_update

        if default:

            def zero() -> _Acc:
                return _Acc([], _Holder())

            def aggregate(acc: _Acc, r: tuple[Any, ...]) -> _Acc:
                # In place: with default lists no user code runs after this in an element
                # (key and timestamp ran before), so nothing can undo it.
                acc.value.append(r[0])
                cur = acc.holder.lo.get(r[2])
                if cur is None or r[3] < cur:  # else holding it already (offsets rise)
                    txn.append((acc.holder, r[2], r[3]))
                return acc

            def merge(a: _Acc, b: _Acc) -> _Acc:
                txn.append((a.holder, b.holder))
                return _Acc(a.value + b.value, a.holder)

        else:
            assert user_zero is not None and user_agg is not None

            def zero() -> _Acc:
                return _Acc(user_zero(), _Holder())

            def aggregate(acc: _Acc, r: tuple[Any, ...]) -> _Acc:
                v = user_agg(acc.value, r[0])
                h = acc.holder
                cur = h.lo.get(r[2])
                if cur is None or r[3] < cur:  # else holding it already (offsets rise)
                    txn.append((h, r[2], r[3]))
                return _Acc(v, h)

            def merge(a: _Acc, b: _Acc) -> _Acc:
                v = user_merge(a.value, b.value)  # type: ignore[misc]
                txn.append((a.holder, b.holder))
                return _Acc(v, a.holder)

        self.zero, self.agg, self.merge_fn = zero, aggregate, merge
        self.pending = _EmitQueue(self._emit)
        # The base logic's batch fast paths (event-time tumbling/hopping, see
        # windows.py) bypass the prepare/commit hooks the holders ride on: off here.
        self._batch = None
        self.bucketed = False
        self._inner_handle = self._element
        self._handle = self._record

    # -- elements ----------------------------------------------------------------------------
    def _record(self, pair: Any) -> None:
        """Handle one ``(element, context)`` pair: run the plain stage on it, then apply
        what its windows now hold."""
        try:
            if pair.__class__ is not tuple or len(pair) != 2:
                raise TypeError(
                    f"[{self.stage_name}] windowed with context expects (element, context) "
                    f"pairs, got {pair!r}"
                )
            ctx = pair[1]
            if ctx.__class__ is tuple and self.contexts.kind == "pair" and len(ctx) == 2:
                part, pos = ctx  # the common case of position(), inlined
                if pos.__class__ is not int or part.__class__ not in _SIMPLE:
                    part, pos = self.contexts.position(ctx)
            else:
                part, pos = self.contexts.position(ctx)
        except Exception as exc:
            self._supervise(exc)
            return
        txn = self.txn
        if txn:
            txn.clear()
        self.aborted = self.was_late = False
        self._inner_handle((pair[0], ctx, part, pos))
        reg = self.reg
        last = reg.last.get(part)
        if last is None:
            reg.first[part] = reg.last[part] = pos
        elif pos > last:
            reg.last[part] = pos
        elif pos < reg.first[part]:
            reg.first[part] = pos  # re-delivered from earlier (a rebalance)
        if self.aborted:
            return  # skipped (resume) or the stage failed: nothing holds it
        for op in txn:
            if len(op) == 3:
                reg.hold(*op)
            else:
                reg.absorb(*op)
        if self.kind == "sliding" and not self.was_late:
            # Kept by the stage to build windows created later, until none could hold it
            # (the stage prunes it once stream time > t + size + grace).
            h = _Holder()
            reg.hold(h, part, pos)
            expiry = self.last_ts + self.size + self.grace
            heapq.heappush(self.buffered, (expiry, reg.seq, h))

    def _supervise(self, exc: Exception) -> None:
        self.aborted = True
        super()._supervise(exc)

    def _shown(self, elem: Any) -> Any:
        # ``_element`` handles internal records (element, context, partition, offset).
        return elem[0] if elem.__class__ is tuple and len(elem) == 4 else elem

    def _prepare_sliding(self, k: Any, t: Any, elem: Any, st: Any) -> Any:
        self.last_ts = t
        return super()._prepare_sliding(k, t, elem, st)

    def _late(self, r: Any) -> None:
        pair = (r[0], r[1])
        self.was_late = True
        super()._late(pair)
        if self.late_pending is pair:
            # Waiting for the late sink: held until handed to it.
            h = _Holder()
            self.reg.hold(h, r[2], r[3])
            self.late_holder = h

    def _on_late_pull(self) -> None:
        self._late_gone()  # handed to the late sink now, before windows go out
        super()._on_late_pull()

    def _on_late_cancel(self) -> None:
        self._late_gone()  # counted as dropped now
        super()._on_late_cancel()

    def _late_gone(self) -> None:
        h = self.late_holder
        if h is not None and self.late_pending is not _NONE:
            self.reg.release(h)
            self.late_holder = None

    # -- windows leaving -----------------------------------------------------------------------
    def _remove(self, w: Any) -> None:
        super()._remove(w)
        if not self.release_at_emit:
            self.reg.release(w.acc.holder)  # on_window_update: closed, final

    def _clear(self) -> None:
        super()._clear()
        reg = getattr(self, "reg", None)
        if reg is None or not hasattr(self, "release_at_emit"):
            return  # during __init__
        # Windows dropped (restart) or all moved to pending (completion): only windows
        # waiting to be emitted and a record waiting for the late sink still hold.
        keep = [w.value.holder for w in deque.__iter__(self.pending)]
        if not self.release_at_emit:
            self.release_on_emit.update(keep)
        if self.late_holder is not None:
            keep.append(self.late_holder)
        self.buffered = []  # the stage's buffer is gone: rebuild forgets their holders
        reg.rebuild(keep)

    def _emit(self, w: Windowed[Any, Any]) -> tuple[Windowed[Any, Any], Any]:
        acc = w.value
        h = acc.holder
        value = acc.value
        reg = self.reg
        if self.release_at_emit:
            reg.release(h)
        else:
            if self.list_values:
                value = list(value)  # a snapshot, as the plain stage's update emissions
            if self.release_on_emit and h in self.release_on_emit:
                self.release_on_emit.discard(h)
                reg.release(h)
        buffered = self.buffered
        if buffered:
            st = self.st
            while buffered and buffered[0][0] < st:
                reg.release(heapq.heappop(buffered)[2])
        return Windowed(w.key, w.start, w.end, value), self.contexts.build(reg.points())
