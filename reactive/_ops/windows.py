"""``windowed``: event-time (or processing-time) windows as one ordinary GraphStage.

How it works
------------
*Stream time* is the largest timestamp seen so far over all keys (with ``idle_timeout``,
``max_timestamp + (now - last arrival)`` once the input has been quiet that long; in
processing time, the materializer clock's time). It never decreases. Every window has a
closing threshold ``end + offset`` (time windows: ``offset = grace``, closed when stream
time ``>=`` it; sliding: ``grace``, sessions: ``gap + grace``, closed when stream time
``>`` it), so one heap of ``(end, start, key order, seq, window)`` entries, popped while
the top's rule holds, closes windows in O(log n) each *and* in the emission order of the
spec (end, then start, then the order in which keys were first seen). A window leaves
every structure when it closes, so memory follows the open windows, not the input (plus
one small integer per distinct key ever seen: the first-seen order that emission needs).

Time windows in event time emitting on close (tumbling or hopping: the common case) take
a fast path: one loop per batch of elements with the stage's fields in locals, and windows
kept in *buckets* by start (``{start: {key: accumulator}}``) with a heap of starts instead
of a heap entry per window. Every key's window of one start closes at the same stream
time, so a bucket closes with one heap pop and a sort of its keys by first-seen order,
which is the spec's emission order again (end, start, key order). A hopping element
updates its windows in place; if ``aggregate`` raises in one of them, the others get
their previous accumulators back before supervision decides.

Sessions change bounds when they grow or merge: the new bounds get a new heap entry and
the old one is skipped when popped (it no longer matches the window). Sliding windows
build a new window's value from the key's accepted elements still in range, kept in a
per-key buffer that a second heap prunes once no open window could need them.

Clock-driven closing (processing time, ``idle_timeout``) uses one timer of the
materializer's clock, armed for the instant the earliest window's rule will hold, so a
``ManualClock`` drives it in tests. An element is handled in two phases: *prepare*
computes every new accumulator (all user code: ``key``, ``timestamp``, ``zero``,
``aggregate``, ``merge``) without touching state, *commit* applies it. So a raising
function under ``resume`` leaves no trace (no window changed, stream time unchanged).

Output is a queue emitted against demand only; upstream is pulled only when that queue
(and the element waiting for the ``late`` sink, if any) is empty and downstream wants more.
On a batch connection (the fast path of ``fused.py``: a fused ``from_iterable``, an async
boundary) one pull may bring up to ``_BATCH`` elements; they are handled one by one, and
after an element that leaves windows pending the rest of the batch is *held* and handled,
like a fresh push, once the queue has drained and downstream wants more. Emissions to a
batch-capable downstream go out up to its ``demand_n`` at a time.

A user aggregate that mutates its accumulator in place and then raises cannot be undone
(as in Kafka Streams, accumulators are the user's); the default lists are only appended
to at commit.
"""

from __future__ import annotations

import heapq
import logging
import math
import numbers
import os
import re
import reprlib
from bisect import bisect_left, bisect_right, insort
from collections import deque
from typing import TYPE_CHECKING, Any

from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    InHandler,
    OutHandler,
    TimerGraphStageLogic,
    _Batch,
    add_note_once,
)
from .._stage.shapes import FanOutShape2, FlowShape, Inlet, Outlet, Shape
from .._supervision import Supervision
from ..state._spec import StoreSpec
from .window_specs import EmitStrategy, SessionWindows, SlidingWindows, TimeWindows, Windowed

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = ["WindowedStage"]

log = logging.getLogger("reactive")

_TIMER = "windowed-close"
_NONE: Any = object()
_INF = math.inf
_HASHABLE = frozenset({int, str, float, bytes, bool, type(None)})  # no hash() check needed
_BATCH = 64  # elements upstream may push at once on a batch connection
#: ``object.__new__`` and the slot setters of ``Windowed``: building one without its __init__.
_WINDOWED_NEW: tuple[Any, ...] = (
    object.__new__,
    *(Windowed.__dict__[f].__set__ for f in ("key", "start", "end", "value")),
)
_NO_CHANGES: list[Any] = []  # never appended to: what commits return when nothing reads it

#: The names this module (and windows_context/windows_store) call the user's functions by,
#: and what the user passed them as; ``None``: a check of ours, whose error says enough.
_CALLEES: dict[str, str | None] = {
    "key_fn": "key",
    "ts_fn": "timestamp",
    "zero": "zero",
    "user_zero": "zero",
    "agg": "aggregate",
    "user_agg": "aggregate",
    "merge_fn": "merge",
    "user_merge": "merge",
    "_check_key": None,
    "_check_ts": None,
    "_check_value": None,
}
_HERE = os.path.dirname(os.path.abspath(__file__))
_OURS = tuple(
    os.path.join(_HERE, f) for f in ("windows.py", "windows_context.py", "windows_store.py")
)


def _raised_by(exc: BaseException) -> tuple[str | None, Any]:
    """Which function given to ``windowed`` raised ``exc``, and the element it was given
    (``_NONE`` if unknown): read from the traceback when the element failed (nothing is
    spent on it while elements succeed). The deepest call in this package's windowed
    code that the exception went through names the callee (``self.key_fn(elem)``, ``agg(...)``),
    by the source span CPython keeps per instruction; works for lambdas and C callables
    (``operator.itemgetter``) alike."""
    import linecache

    tb = exc.__traceback__
    frames = []
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in _OURS:
            frames.append(tb)
        tb = tb.tb_next
    elem: Any = _NONE
    for t in frames:
        loc = t.tb_frame.f_locals
        if "elem" in loc:
            elem = loc["elem"]
            break
    for t in reversed(frames):
        code = t.tb_frame.f_code
        try:
            pos = list(code.co_positions())[t.tb_lasti // 2]
        except (IndexError, ValueError):
            continue
        line, end_line, col, end_col = pos
        if line is None or line != end_line or col is None or end_col is None:
            continue
        text = linecache.getline(code.co_filename, line)[col:end_col]
        m = _CALL.match(text)
        if m is None:
            continue
        name = m.group(1)
        if name in _CALLEES:
            return _CALLEES[name], elem
    return None, elem


_CALL = re.compile(r"(?:self\.)?(\w+)\(")


def _blame(exc: BaseException, stage: str, shown: Callable[[Any], Any]) -> None:
    """Note on ``exc`` which function given to ``windowed`` raised it, for which element
    (as ``map`` notes its function; once)."""
    try:
        what, elem = _raised_by(exc)
    except Exception:  # pragma: no cover - the note is a help, never a second failure
        return
    if what is None:
        return
    note = f"raised by the {what} function given to windowed (stage [{stage}])"
    if elem is not _NONE:
        note += f", for element {reprlib.repr(shown(elem))}"
    add_note_once(exc, note)


class _Win:
    """One open window of one key. ``acc`` is the list of elements (default) or the
    accumulator; ``alive`` turns False when it closes or is merged away."""

    __slots__ = ("key", "ks", "start", "end", "acc", "alive")

    def __init__(self, key: Any, ks: int, start: Any, end: Any, acc: Any) -> None:
        self.key = key
        self.ks = ks
        self.start = start
        self.end = end
        self.acc = acc
        self.alive = True


def _concat(a: list[Any], b: list[Any]) -> list[Any]:
    return a + b


class WindowedStage(GraphStage[Shape]):
    """The stage behind ``windowed(...)`` (see ``FlowOps.windowed`` for the semantics).

    Shape: ``Windowed.in`` -> ``Windowed.out``, plus ``Windowed.late`` (a
    ``FanOutShape2``) when a ``late`` sink is wired to it. With ``store`` (a ``StoreSpec``) the
    open windows are mirrored in a store opened per materialization and reloaded from it
    when the stage starts (``windows_store.py``). Arguments are validated here,
    when the operator is built: ``ValueError`` for only one of ``zero``/``aggregate``, a
    ``SessionWindows`` with a custom aggregate and no ``merge``, or a negative
    ``idle_timeout``; ``TypeError`` for a spec or strategy of the wrong type or a
    function that is not callable.
    """

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
        store: StoreSpec[Any, Any] | None = None,
    ) -> None:
        if store is not None and not isinstance(store, StoreSpec):
            raise TypeError(
                "windowed: store must be a StoreSpec (Stores.in_memory(name) or "
                f"Stores.persistent(name, path)) or None, got {store!r}"
            )
        if not isinstance(windows, (TimeWindows, SlidingWindows, SessionWindows)):
            raise TypeError(
                "windowed: windows must be TimeWindows, SlidingWindows or SessionWindows, "
                f"got {windows!r}"
            )
        for what, f in (
            ("key", key),
            ("timestamp", timestamp),
            ("zero", zero),
            ("aggregate", aggregate),
            ("merge", merge),
        ):
            if f is not None and not callable(f):
                raise TypeError(f"windowed: {what} must be callable or None, got {f!r}")
        if (zero is None) != (aggregate is None):
            given = "zero" if zero is not None else "aggregate"
            raise ValueError(
                f"windowed: zero and aggregate go together, got only {given} "
                "(give both, or neither to collect each window's elements in a list)"
            )
        if isinstance(windows, SessionWindows) and aggregate is not None and merge is None:
            raise ValueError(
                "windowed: SessionWindows with a custom aggregate needs merge(earlier, later) "
                "to join two sessions' values when an element bridges them"
            )
        if emit is None:
            emit = EmitStrategy.on_window_close()
        if not isinstance(emit, EmitStrategy):
            raise TypeError(f"windowed: emit must be an EmitStrategy, got {emit!r}")
        if idle_timeout is not None:
            if isinstance(idle_timeout, bool) or not isinstance(idle_timeout, (int, float)):
                raise TypeError(
                    f"windowed: idle_timeout must be a number of seconds, got {idle_timeout!r}"
                )
            if not idle_timeout >= 0 or not math.isfinite(idle_timeout):
                raise ValueError(
                    f"windowed: idle_timeout must be >= 0 seconds, got {idle_timeout!r}"
                )
        self.windows = windows
        self.key = key
        self.timestamp = timestamp
        self.zero = zero
        self.aggregate = aggregate
        self.merge = merge
        self.emit = emit
        self.idle_timeout = idle_timeout
        self.store = store
        in_: Inlet[Any] = Inlet("Windowed.in")
        out: Outlet[Any] = Outlet("Windowed.out")
        self.shape: Shape
        if with_late:
            self.shape = FanOutShape2(in_, out, Outlet("Windowed.late"))
        else:
            self.shape = FlowShape(in_, out)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        # With a store, the DSL builds windows_store.StoredWindowedStage instead.
        return _WindowedLogic(self)

    def __repr__(self) -> str:
        return f"WindowedStage({self.windows!r}, emit={self.emit!r})"


class _LateOut(OutHandler):
    def __init__(self, logic: _WindowedLogic) -> None:
        self.logic = logic

    def on_pull(self) -> None:
        self.logic._on_late_pull()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.logic._on_late_cancel()


class _WindowedLogic(TimerGraphStageLogic, InHandler, OutHandler):
    # Its fields in slots: past the 29 names a logic keeps in CPython's shared-key layout
    # (see ``reactive._stage.logic._LogicFields``).
    __slots__ = (
        "_batch",
        "_batch_in",
        "_batch_out",
        "_commit",
        "_handle",
        "_prepare",
        "_stopping",
        "agg",
        "armed",
        "bstarts",
        "bucketed",
        "buckets",
        "buf",
        "clock_driven",
        "default",
        "dropped",
        "expiry",
        "finishing",
        "flushed",
        "gap",
        "gated",
        "grace",
        "heap",
        "held",
        "idle",
        "in_",
        "key_fn",
        "key_seq",
        "kind",
        "last_arrival",
        "late_closed",
        "late_out",
        "late_pending",
        "max_ts",
        "merge_fn",
        "offset",
        "on_update",
        "out",
        "pending",
        "seq",
        "sessions",
        "size",
        "sliding",
        "spec",
        "st",
        "step",
        "strict",
        "ts_fn",
        "tw",
        "zero",
    )

    def __init__(self, stage: WindowedStage) -> None:
        shape = stage.shape
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.inlets[0]
        self.out: Outlet[Any] = shape.outlets[0]
        self.late_out: Outlet[Any] | None = shape.outlets[1] if len(shape.outlets) > 1 else None
        self.set_handler(self.in_, self)
        self.set_handler(self.out, self)
        # Batch fast path (see fused.py): many elements per push in, many windows out.
        self._batch_in = (self.in_,)
        self._batch_out = (self.out,)
        if self.late_out is not None:
            self.set_handler(self.late_out, _LateOut(self))
        spec = stage.windows
        self.spec = spec
        self.key_fn = stage.key
        self.ts_fn = stage.timestamp
        self.default = stage.aggregate is None
        self.zero = stage.zero
        self.agg = stage.aggregate
        # Default lists always concatenate (a merge given with them is not used).
        self.merge_fn = _concat if self.default or stage.merge is None else stage.merge
        self.on_update = stage.emit.kind == "on_window_update"
        # idle_timeout applies to event time only (processing time follows the clock anyway).
        self.idle = stage.idle_timeout if stage.timestamp is not None else None
        self.clock_driven = self.ts_fn is None or self.idle is not None
        self.grace = spec.grace_period
        self._prepare: Callable[[Any, Any, Any, Any], Any]
        self._commit: Callable[[Any, int, Any, Any, Any], list[_Win]]
        if isinstance(spec, TimeWindows):
            self.kind = "time"
            self.size = spec.size
            self.step = spec.step
            self.offset: Any = spec.grace_period
            self.strict = False
            if spec.is_tumbling:
                self._prepare, self._commit = self._prepare_tumbling, self._commit_tumbling
            else:
                self._prepare, self._commit = self._prepare_time, self._commit_time
        elif isinstance(spec, SlidingWindows):
            self.kind = "sliding"
            self.size = spec.size
            self.offset = spec.grace_period
            self.strict = True
            self._prepare, self._commit = self._prepare_sliding, self._commit_sliding
        else:
            self.kind = "session"
            self.gap = spec.gap
            self.offset = spec.gap + spec.grace_period
            self.strict = True
            self._prepare, self._commit = self._prepare_session, self._commit_session
        self._handle: Callable[[Any], None] = self._element
        self._batch: Callable[[Iterator[Any]], bool] | None = None  # a fast path's batch loop
        tumbling = isinstance(spec, TimeWindows) and spec.is_tumbling
        # Time windows in event time closing on close (the fast paths) live in buckets by
        # start (``buckets``), not in ``tw`` and ``heap``: see ``_close_buckets``.
        self.bucketed = False
        if not self.clock_driven and not self.on_update and isinstance(spec, TimeWindows):
            self.bucketed = True
            self._handle = self._element_tumbling if tumbling else self._element_hopping
            self._batch = self._batch_tumbling if tumbling else self._batch_hopping
        self.st: Any = -_INF  # stream time
        self.max_ts: Any = -_INF
        self.last_arrival: float | None = None
        self.key_seq: dict[Any, int] = {}
        self.seq = 0
        self.pending: deque[Windowed[Any, Any]] = deque()
        self.late_pending: Any = _NONE
        self.late_closed = self.late_out is None
        self.dropped = 0
        self.finishing = False
        self.flushed = False
        self._stopping = False  # a supervision stop failed the stage
        # Windows pending but not to be emitted yet (a store's write batch covering them
        # is not acknowledged: windows_store.py); checked once per batch of elements.
        self.gated = False
        self.held: Iterator[Any] | None = None  # the rest of a batch from upstream
        self.armed: float | None = None
        self._clear()

    def _clear(self) -> None:
        """Forget every open window (start, supervision restart, completion)."""
        self.heap: list[tuple[Any, Any, int, int, _Win]] = []
        self.tw: dict[tuple[Any, Any], _Win] = {}  # time windows by (key, start)
        self.buckets: dict[Any, dict[Any, Any]] = {}  # or (bucketed) start -> key -> acc
        self.bstarts: list[Any] = []  # bucketed: a heap of the buckets' starts
        self.sessions: dict[Any, list[_Win]] = {}  # a key's open sessions by start
        self.sliding: dict[Any, list[_Win]] = {}  # a key's open sliding windows by end
        self.buf: dict[Any, dict[int, tuple[Any, Any]]] = {}  # sliding: accepted elements
        self.expiry: list[tuple[Any, int, Any]] = []  # sliding: when buffered ones expire
        if self.armed is not None:
            self.cancel_timer(_TIMER)
            self.armed = None

    # -- handlers ------------------------------------------------------------------------
    def on_pull(self) -> None:
        self._drain()

    def _on_late_pull(self) -> None:
        if self.late_pending is not _NONE:
            x, self.late_pending = self.late_pending, _NONE
            assert self.late_out is not None
            self.push(self.late_out, x)
            self._drain()

    def _on_late_cancel(self) -> None:
        # The late sink stopped taking elements: from now on late elements are counted and
        # logged, as without a sink (never lost silently, and the main line goes on).
        self.late_closed = True
        if self.late_pending is not _NONE:
            self.late_pending = _NONE
            self.dropped += 1
        self._drain()

    def on_upstream_finish(self) -> None:
        self.finishing = True
        self._drain()  # held elements first, then the open windows

    def _flush(self) -> None:
        """Upstream finished and every element was handled: emit every open window."""
        self.flushed = True
        if not self.on_update:
            self._close_all()
        self._clear()

    def on_timer(self, key: Any) -> None:
        self.armed = None
        if self.finishing:
            return
        self._tick(self.materializer.clock.time())
        self._arm()
        self._drain()

    def post_stop(self) -> None:
        dropped = self.dropped + (self.late_pending is not _NONE)
        if dropped:
            log.warning(
                "[%s] dropped %d late element(s): their windows had closed (pass late= to "
                "receive them)",
                self.stage_name,
                dropped,
            )

    def _drain(self) -> None:
        """Emit against demand; take the next held or upstream element only when nothing
        is pending and downstream wants more; complete when upstream finished and
        everything went out."""
        if self._stopping:
            return
        while True:
            pending = self.pending
            if pending:
                if self.is_available(self.out):
                    c = self._conns[self.out]
                    if c.batch and c.demand_n > 1 and len(pending) > 1:
                        # Batch fast path (see fused.py): up to demand_n windows at once.
                        n = min(c.demand_n, len(pending))
                        self.push(self.out, _Batch(pending.popleft() for _ in range(n)))
                    else:
                        self.push(self.out, pending.popleft())
                if pending:
                    return
            if self.late_pending is not _NONE:
                return
            if self.held is not None:
                if not self.is_available(self.out):
                    return
                self._run(self.held)
                if self.gated:
                    return
                continue
            if self.finishing:
                if not self.flushed:
                    self._flush()
                    continue
                self.complete_stage()
                return
            if self.is_available(self.out) and not self.has_been_pulled(self.in_):
                if not self.is_closed(self.in_):
                    self._pull()
            return

    def _pull(self) -> None:
        self.pull(self.in_)
        c = self._conns[self.in_]
        if c.batch:
            # Batch fast path: upstream may push up to as many elements as downstream asked
            # windows for (at most _BATCH); those left when windows become pending wait in
            # ``held`` (no further pull meanwhile). A downstream asking one at a time gets
            # element-at-a-time reads upstream, as without the fast path.
            out = self._conns[self.out]
            n = out.demand_n if out.batch else 1
            c.demand_n = n if n < _BATCH else _BATCH

    # -- elements --------------------------------------------------------------------------
    def on_push(self) -> None:
        x = self.grab(self.in_)
        if type(x) is not _Batch:
            self._handle(x)
        else:
            self._run(iter(x))
        if self._stopping:
            return
        if self.pending or self.held is not None:
            self._drain()
        elif self.late_pending is _NONE and self.is_available(self.out):
            # Fast path of _drain: this element was pulled for downstream demand.
            self._pull()

    def _run(self, it: Iterator[Any]) -> None:
        """Handle the elements of a batch until one leaves something pending."""
        self.held = None
        if self._batch is not None:
            if self._batch(it) and not self._stopping:
                self.held = it
            return
        handle, pending = self._handle, self.pending
        for elem in it:
            handle(elem)
            if pending or self.late_pending is not _NONE or self._stopping:
                if not self._stopping:
                    self.held = it
                return

    def _element(self, elem: Any) -> None:
        now = 0.0
        if self.clock_driven:
            now = self.materializer.clock.time()
            self._tick(now)
        try:
            k = None
            if self.key_fn is not None:
                k = self.key_fn(elem)
                if k.__class__ not in _HASHABLE:
                    self._check_key(k, elem)
            if self.ts_fn is None:
                ts = now
            else:
                ts = self.ts_fn(elem)
                if (ts.__class__ is not int and ts.__class__ is not float) or ts - ts != 0:
                    self._check_ts(ts, elem)
            new_st = ts if ts > self.st else self.st
            plan = self._prepare(k, ts, elem, new_st)
        except Exception as exc:
            self._supervise(exc)
            return
        # -- commit: nothing below runs user code
        self.st = new_st
        if ts > self.max_ts:
            self.max_ts = ts
        self.last_arrival = now
        if plan is None:
            self._late(elem)
        else:
            ks = self.key_seq.get(k)
            if ks is None:
                ks = self.key_seq[k] = len(self.key_seq)
            changed = self._commit(k, ks, ts, elem, plan)
            if self.on_update:
                if len(changed) > 1:
                    changed.sort(key=lambda w: (w.end, w.start))
                default = self.default
                for w in changed:
                    v = list(w.acc) if default else w.acc
                    self.pending.append(Windowed(w.key, w.start, w.end, v))
        heap = self.heap
        if (heap and heap[0][0] + self.offset <= new_st) or self.kind == "sliding":
            self._close_until(new_st)
        if self.clock_driven:
            self._arm()

    def _element_tumbling(self, elem: Any) -> None:
        self._batch_tumbling((elem,))

    def _element_hopping(self, elem: Any) -> None:
        self._batch_hopping((elem,))

    def _batch_tumbling(self, elems: Any) -> bool:
        """``_element`` specialised and inlined for tumbling windows in event time with
        ``on_window_close`` (the common case), over a batch with the stage's fields in
        locals. Same phases per element: user code first, then the commit; windows live
        in ``buckets`` (see ``_close_buckets``). Returns True when it stopped after an
        element that left something pending (the rest of ``elems`` is to be held)."""
        key_fn, ts_fn, size, grace = self.key_fn, self.ts_fn, self.size, self.grace
        default, agg, zero, pending = self.default, self.agg, self.zero, self.pending
        buckets, bstarts, key_seq = self.buckets, self.bstarts, self.key_seq
        st, max_ts = self.st, self.max_ts
        # The last bucket used: consecutive elements mostly fall in the same minute. A
        # bucket is closed only once stream time makes its start late, so a cached closed
        # bucket is never used; a restart replaces them all (the cache is dropped then).
        last_s: Any = None
        last_b: Any = None
        for elem in elems:
            try:
                k = None
                if key_fn is not None:
                    k = key_fn(elem)
                    if k.__class__ not in _HASHABLE:
                        self._check_key(k, elem)
                ts = ts_fn(elem)  # type: ignore[misc]
                if (ts.__class__ is not int and ts.__class__ is not float) or ts - ts != 0:
                    self._check_ts(ts, elem)
                new_st = ts if ts > st else st
                s = (ts // size) * size
                e = s + size
                if s > ts or e <= ts:  # float rounding
                    s = self._starts(ts)[0]
                    e = s + size
                late = e + grace <= new_st
                if not late:
                    b = last_b if s == last_s else buckets.get(s)
                    old = _NONE if b is None else b.get(k, _NONE)
                    if not default:
                        acc = agg(zero() if old is _NONE else old, elem)  # type: ignore[misc]
            except Exception as exc:
                self.st, self.max_ts = st, max_ts
                self._supervise(exc)
                if self._stopping:
                    return True
                buckets, bstarts = self.buckets, self.bstarts  # a restart replaced them
                last_s = last_b = None
                continue
            # -- commit: nothing below runs user code
            st = new_st
            if ts > max_ts:
                max_ts = ts
            if late:
                self.st, self.max_ts = st, max_ts
                self._late(elem)
                if self.late_pending is not _NONE:
                    return True
                continue
            if b is None:
                b = buckets[s] = {}
                heapq.heappush(bstarts, s)
            last_s, last_b = s, b
            if old is _NONE:
                if k not in key_seq:
                    key_seq[k] = len(key_seq)
                b[k] = [elem] if default else acc
            elif default:
                old.append(elem)
            else:
                b[k] = acc
            if bstarts[0] + size + grace <= st:
                self.st, self.max_ts = st, max_ts
                self._close_buckets(st)
                if pending:
                    return True
        self.st, self.max_ts = st, max_ts
        return False

    def _batch_hopping(self, elems: Any) -> bool:
        """``_batch_tumbling`` for hopping windows: the windows of ``ts`` are found as
        ``_starts`` finds them (same float arithmetic, latest start first) and updated in
        place; if ``aggregate`` raises in one of them, those already updated get their
        previous accumulators back (``_undo_hopping``) before supervision decides, so the
        element leaves no trace.

        When ``ts + grace > stream time`` every window of ``ts`` is open (its end is past
        ``ts``, so ``end + grace`` is too: float addition is monotonic), and the loop skips
        the per-window closed check. ``close_at`` is the first bucket's closing threshold
        (``bstarts[0] + size + grace``), kept as the heap of starts changes."""
        key_fn, ts_fn, size, grace = self.key_fn, self.ts_fn, self.size, self.grace
        default, agg, zero, pending = self.default, self.agg, self.zero, self.pending
        buckets, bstarts, key_seq, step = self.buckets, self.bstarts, self.key_seq, self.step
        push, none, hashable = heapq.heappush, _NONE, _HASHABLE
        st, max_ts = self.st, self.max_ts
        close_at = bstarts[0] + size + grace if bstarts else _INF
        for elem in elems:
            olds: list[Any] = []  # the updated windows' previous accumulators, in order
            try:
                k = None
                if key_fn is not None:
                    k = key_fn(elem)
                    if k.__class__ not in hashable:
                        self._check_key(k, elem)
                ts = ts_fn(elem)  # type: ignore[misc]
                c = ts.__class__
                if (c is not float and c is not int) or ts - ts != 0:
                    self._check_ts(ts, elem)
                new_st = ts if ts > st else st
                n = ts // step
                s = n * step
                if s > ts or (n + 1) * step <= ts:  # float rounding
                    n = self._last_index(ts)
                    s = n * step
                first = n
                e = s + size
                if default:  # no user code: nothing to undo
                    while e > ts:
                        if e + grace > new_st:  # still open
                            b = buckets.get(s)
                            if b is None:
                                buckets[s] = {k: [elem]}
                                push(bstarts, s)
                                close_at = bstarts[0] + size + grace
                                olds.append(none)
                            else:
                                old = b.get(k, none)
                                if old is none:
                                    b[k] = [elem]
                                else:
                                    old.append(elem)
                                olds.append(old)
                        n -= 1
                        s = n * step
                        e = s + size
                elif ts + grace > new_st:  # every window of ts is open
                    while e > ts:
                        try:
                            b = buckets[s]  # (cheaper than .get; a new bucket is rare)
                        except KeyError:
                            b = None  # (user code runs outside the handler: no chaining)
                        if b is None:
                            acc = agg(zero(), elem)  # type: ignore[misc]
                            buckets[s] = {k: acc}
                            push(bstarts, s)
                            close_at = bstarts[0] + size + grace
                            olds.append(none)
                        else:
                            old = b.get(k, none)
                            b[k] = agg(zero() if old is none else old, elem)  # type: ignore[misc]
                            olds.append(old)
                        n -= 1
                        s = n * step
                        e = s + size
                else:
                    while e > ts:
                        if e + grace > new_st:  # still open
                            b = buckets.get(s)
                            if b is None:
                                acc = agg(zero(), elem)  # type: ignore[misc]
                                buckets[s] = {k: acc}
                                push(bstarts, s)
                                close_at = bstarts[0] + size + grace
                                olds.append(none)
                            else:
                                old = b.get(k, none)
                                b[k] = agg(zero() if old is none else old, elem)  # type: ignore[misc]
                                olds.append(old)
                        n -= 1
                        s = n * step
                        e = s + size
            except Exception as exc:
                if olds:  # (a raising key or timestamp changed no window yet)
                    self._undo_hopping(k, first, new_st, olds)
                self.st, self.max_ts = st, max_ts
                self._supervise(exc)
                if self._stopping:
                    return True
                buckets, bstarts = self.buckets, self.bstarts  # a restart replaced them
                close_at = bstarts[0] + size + grace if bstarts else _INF
                continue
            # -- commit: nothing below runs user code
            st = new_st
            if ts > max_ts:
                max_ts = ts
            if not olds:
                self.st, self.max_ts = st, max_ts
                self._late(elem)
                if self.late_pending is not _NONE:
                    return True
                continue
            if k not in key_seq:
                key_seq[k] = len(key_seq)
            if close_at <= st:
                self.st, self.max_ts = st, max_ts
                self._close_buckets(st)
                close_at = bstarts[0] + size + grace if bstarts else _INF
                if pending:
                    return True
        self.st, self.max_ts = st, max_ts
        return False

    def _undo_hopping(self, k: Any, n: Any, st: Any, olds: list[Any]) -> None:
        """Give the windows ``_batch_hopping`` updated for one element (the first
        ``len(olds)`` open ones from start ``n * step`` down) their previous accumulators
        back; a window the element created is removed (its bucket may stay, empty)."""
        step, size, grace = self.step, self.size, self.grace
        for old in olds:
            s = n * step
            while not s + size + grace > st:  # skipped there as closed: skip again
                n -= 1
                s = n * step
            b = self.buckets[s]
            if old is _NONE:
                del b[k]
            elif self.default:
                old.pop()
            else:
                b[k] = old
            n -= 1

    def _close_buckets(self, st: Any) -> None:
        """Close the buckets whose windows' rule holds at stream time ``st``.

        A bucket holds every key's window of one start (so one end): its windows close
        together, at one heap pop per start instead of one per window. They go out in the
        spec's order: by end, then start (the heap of starts), then the order in which
        their keys were first seen (a sort by ``key_seq``)."""
        bstarts, buckets, append = self.bstarts, self.buckets, self.pending.append
        size, grace, order = self.size, self.grace, self.key_seq.__getitem__
        new, set_key, set_start, set_end, set_value = _WINDOWED_NEW
        while bstarts and bstarts[0] + size + grace <= st:
            s = heapq.heappop(bstarts)
            b = buckets.pop(s)
            end = s + size
            for k in sorted(b, key=order) if len(b) > 1 else b:
                # Windowed(k, s, end, b[k]) without the frozen dataclass's __init__ (its
                # four object.__setattr__ calls are half the cost of closing a window).
                w = new(Windowed)
                set_key(w, k)
                set_start(w, s)
                set_end(w, end)
                set_value(w, b[k])
                append(w)

    def _supervise(self, exc: Exception) -> None:
        _blame(exc, self.stage_name, self._shown)
        directive = self._decided(exc)
        if directive is Supervision.stop:
            self._stopping = True
            self.fail_stage(exc)
        elif directive is Supervision.restart:
            self._clear()

    def _shown(self, elem: Any) -> Any:
        """The user's element of what ``_element`` handles (the context variant's is a record)."""
        return elem

    def _check_key(self, k: Any, elem: Any) -> None:
        try:
            hash(k)
        except TypeError:
            raise TypeError(
                f"[{self.stage_name}] key returned an unhashable "
                f"{type(k).__name__} ({k!r}) for element {elem!r}"
            ) from None

    def _check_ts(self, ts: Any, elem: Any) -> None:
        if isinstance(ts, bool) or not isinstance(ts, numbers.Real):
            raise TypeError(
                f"[{self.stage_name}] timestamp returned {ts!r} ({type(ts).__name__}) for "
                f"element {elem!r}; expected event time in seconds (int or float)"
            )
        if not math.isfinite(ts):
            raise ValueError(
                f"[{self.stage_name}] timestamp returned {ts!r} for element {elem!r}; "
                "expected a finite event time in seconds"
            )

    def _late(self, elem: Any) -> None:
        if self.late_closed:
            self.dropped += 1
            return
        assert self.late_out is not None
        if self.is_available(self.late_out):
            self.push(self.late_out, elem)
        else:
            self.late_pending = elem

    def _new_acc(self) -> Any:
        return [] if self.default else self.zero()  # type: ignore[misc]

    def _push_entry(self, w: _Win) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (w.end, w.start, w.ks, self.seq, w))

    # -- time windows (tumbling and hopping) --------------------------------------------------
    def _last_index(self, t: Any) -> Any:
        """The largest ``n`` with ``n * step <= t`` (the latest window start containing
        ``t`` is ``n * step``), exact despite float rounding of ``t // step``."""
        step = self.step
        n = t // step
        while n * step > t:
            n -= 1
        while (n + 1) * step <= t:
            n += 1
        return n

    def _starts(self, t: Any) -> list[Any]:
        """Starts of every window ``[s, s + size)`` containing ``t``, ascending."""
        step, size = self.step, self.size
        n = self._last_index(t)
        s = n * step
        if step == size:
            return [s]
        out = []
        while s + size > t:
            out.append(s)
            n -= 1
            s = n * step
        out.reverse()
        return out

    def _prepare_time(self, k: Any, t: Any, elem: Any, st: Any) -> Any:
        size, grace, tw = self.size, self.grace, self.tw
        ops = []
        for s in self._starts(t):
            end = s + size
            if end + grace <= st:
                continue  # closed
            w = tw.get((k, s))
            if self.default:
                ops.append((w, s, end, None))
            else:
                acc = w.acc if w is not None else self.zero()  # type: ignore[misc]
                ops.append((w, s, end, self.agg(acc, elem)))  # type: ignore[misc]
        return ops or None

    def _commit_time(self, k: Any, ks: int, t: Any, elem: Any, ops: Any) -> list[_Win]:
        changed = []
        for w, s, end, acc in ops:
            if w is None:
                w = _Win(k, ks, s, end, [] if acc is None else acc)
                self.tw[(k, s)] = w
                self._push_entry(w)
            if self.default:
                w.acc.append(elem)
            else:
                w.acc = acc
            changed.append(w)
        return changed

    def _prepare_tumbling(self, k: Any, t: Any, elem: Any, st: Any) -> Any:
        """``_prepare_time`` for one window per element (the common case, kept short)."""
        size = self.size
        s = (t // size) * size
        if s > t or s + size <= t:  # float rounding
            s = self._starts(t)[0]
        end = s + size
        if end + self.grace <= st:
            return None
        w = self.tw.get((k, s))
        if self.default:
            return w, s, end, None
        return w, s, end, self.agg(w.acc if w is not None else self.zero(), elem)  # type: ignore[misc]

    def _commit_tumbling(self, k: Any, ks: int, t: Any, elem: Any, plan: Any) -> list[_Win]:
        w, s, end, acc = plan
        if w is None:
            w = _Win(k, ks, s, end, acc)
            self.tw[(k, s)] = w
            self.seq += 1
            heapq.heappush(self.heap, (end, s, ks, self.seq, w))
            if self.default:
                w.acc = [elem]
        elif self.default:
            w.acc.append(elem)
        else:
            w.acc = acc
        return [w] if self.on_update else _NO_CHANGES

    # -- sliding windows --------------------------------------------------------------------
    def _prepare_sliding(self, k: Any, t: Any, elem: Any, st: Any) -> Any:
        size, grace, default = self.size, self.grace, self.default
        wins = self.sliding.get(k)
        ops: list[tuple[_Win | None, Any]] = []
        own = None
        if wins:
            # Windows containing t: start <= t <= end, i.e. end in [t, t + size].
            i = bisect_left(wins, t, key=lambda w: w.end)
            for w in wins[i:]:
                if w.end > t + size:
                    break
                if st > w.end + grace:
                    continue  # closed by this element's stream time
                if w.end == t:
                    own = w
                ops.append((w, None if default else self.agg(w.acc, elem)))  # type: ignore[misc]
        if own is None and not st > t + grace:
            lo = t - size
            buf = self.buf.get(k)
            if default:
                acc: Any = [x for (bt, x) in buf.values() if lo <= bt <= t] if buf else []
            else:
                acc = self.zero()  # type: ignore[misc]
                if buf:
                    for bt, x in buf.values():
                        if lo <= bt <= t:
                            acc = self.agg(acc, x)  # type: ignore[misc]
                acc = self.agg(acc, elem)  # type: ignore[misc]
            ops.append((None, acc))
        return ops or None

    def _commit_sliding(self, k: Any, ks: int, t: Any, elem: Any, ops: Any) -> list[_Win]:
        changed = []
        for w, acc in ops:
            if w is None:
                w = _Win(k, ks, t - self.size, t, acc)
                wins = self.sliding.get(k)
                if wins is None:
                    wins = self.sliding[k] = []
                insort(wins, w, key=lambda v: v.end)
                self._push_entry(w)
                if self.default:
                    w.acc.append(elem)
            elif self.default:
                w.acc.append(elem)
            else:
                w.acc = acc
            changed.append(w)
        # Kept for windows created later: until no open window could contain it.
        self.seq += 1
        buf = self.buf.get(k)
        if buf is None:
            buf = self.buf[k] = {}
        buf[self.seq] = (t, elem)
        heapq.heappush(self.expiry, (t + self.size + self.grace, self.seq, k))
        return changed

    def _prune(self, st: Any) -> None:
        expiry = self.expiry
        while expiry and expiry[0][0] < st:
            _, n, k = heapq.heappop(expiry)
            buf = self.buf[k]
            del buf[n]
            if not buf:
                del self.buf[k]

    # -- session windows ----------------------------------------------------------------------
    def _prepare_session(self, k: Any, t: Any, elem: Any, st: Any) -> Any:
        gap, offset = self.gap, self.offset
        sess = self.sessions.get(k)
        cands: list[_Win] = []
        if sess:
            # Open sessions are disjoint and more than gap apart: at most two are within
            # gap of t, the last ones starting at or before t + gap.
            i = bisect_right(sess, t + gap, key=lambda w: w.start) - 1
            while i >= 0 and sess[i].end >= t - gap:
                if not st > sess[i].end + offset:
                    cands.append(sess[i])
                i -= 1
            cands.reverse()
        if cands:
            acc: Any = cands[0].acc
            for c in cands[1:]:
                acc = self.merge_fn(acc, c.acc)
            if not self.default:
                acc = self.agg(acc, elem)  # type: ignore[misc]
            elif len(cands) == 1:
                acc = None  # appended in place at commit
            return cands, acc
        if st > t + offset:
            return None  # a session [t, t] would be closed already: late
        acc = None if self.default else self.agg(self.zero(), elem)  # type: ignore[misc]
        return cands, acc

    def _commit_session(self, k: Any, ks: int, t: Any, elem: Any, plan: Any) -> list[_Win]:
        cands, acc = plan
        if not cands:
            w = _Win(k, ks, t, t, [elem] if self.default else acc)
            sess = self.sessions.get(k)
            if sess is None:
                sess = self.sessions[k] = []
            insort(sess, w, key=lambda v: v.start)
            self._push_entry(w)
            return [w]
        w = cands[0]
        if len(cands) > 1:
            sess = self.sessions[k]
            for c in cands[1:]:
                c.alive = False
                sess.remove(c)
        start = min(w.start, t)
        end = max(cands[-1].end, w.end, t)
        if not self.default:
            w.acc = acc
        elif len(cands) == 1:
            w.acc.append(elem)
        else:
            acc.append(elem)
            w.acc = acc
        if start != w.start or end != w.end:
            w.start, w.end = start, end
            self._push_entry(w)
        return [w]

    # -- closing ----------------------------------------------------------------------------
    def _close_until(self, st: Any) -> None:
        """Close every window whose rule holds at stream time ``st``, in heap order."""
        heap, offset = self.heap, self.offset
        strict = self.strict
        while heap:
            end, start, _, _, w = heap[0]
            if strict:
                if not end + offset < st:
                    break
            elif not end + offset <= st:
                break
            heapq.heappop(heap)
            if not w.alive or w.end != end or w.start != start:
                continue  # stale entry: merged away or bounds changed
            self._remove(w)
            if not self.on_update:
                self.pending.append(Windowed(w.key, start, end, w.acc))
        if self.kind == "sliding":
            self._prune(st)

    def _remove(self, w: _Win) -> None:
        w.alive = False
        if self.kind == "time":
            del self.tw[(w.key, w.start)]
            return
        table = self.sessions if self.kind == "session" else self.sliding
        wins = table[w.key]
        wins.remove(w)
        if not wins:
            del table[w.key]

    def _close_all(self) -> None:
        if self.buckets:
            self._close_buckets(_INF)
        heap = self.heap
        while heap:
            end, start, _, _, w = heapq.heappop(heap)
            if w.alive and w.end == end and w.start == start:
                w.alive = False
                self.pending.append(Windowed(w.key, start, end, w.acc))

    # -- clock-driven stream time --------------------------------------------------------
    def _peek(self) -> _Win | None:
        heap = self.heap
        while heap:
            end, start, _, _, w = heap[0]
            if w.alive and w.end == end and w.start == start:
                return w
            heapq.heappop(heap)
        return None

    def _instant(self, threshold: Any) -> float | None:
        """The clock instant at which stream time first satisfies the closing rule for
        ``threshold`` (``end + offset``), or None when the clock cannot move stream time."""
        if self.ts_fn is None:
            return math.nextafter(threshold, _INF) if self.strict else threshold
        a = self.last_arrival
        if a is None or self.idle is None:
            return None
        base = a + self.idle
        reach = threshold - self.max_ts  # clock seconds after a that stream time needs
        if self.strict:
            if reach < self.idle:
                return base
            return max(base, math.nextafter(a + reach, _INF))
        deadline: float = max(base, a + reach)
        return deadline

    def _tick(self, now: float) -> None:
        """Advance stream time to what the clock says at ``now`` and close windows."""
        if self.ts_fn is None:
            if now > self.st:
                self.st = now
        elif self.last_arrival is not None and now >= self.last_arrival + self.idle:  # type: ignore[operator]
            idle_st = self.max_ts + (now - self.last_arrival)
            if idle_st > self.st:
                self.st = idle_st
        while True:
            self._close_until(self.st)
            w = self._peek()
            if w is None:
                return
            threshold = w.end + self.offset
            inst = self._instant(threshold)
            if inst is None or now < inst:
                return
            # The formula reached the threshold at ``inst <= now``: make it exact despite
            # float rounding of ``max_ts + (now - arrival)``.
            reached = math.nextafter(threshold, _INF) if self.strict else threshold
            if reached > self.st:
                self.st = reached

    def _arm(self) -> None:
        w = self._peek()
        if w is None:
            return
        inst = self._instant(w.end + self.offset)
        if inst is None:
            return
        if self.armed is not None and self.armed <= inst:
            return  # fires no later than needed; re-armed then if early
        now = self.materializer.clock.time()
        delay = inst - now
        # Never fire after ``inst`` because of rounding in ``now + delay``.
        while delay > 0 and now + delay > inst:
            delay = math.nextafter(delay, 0.0)
        self.schedule_once(_TIMER, max(delay, 0.0))
        self.armed = inst
