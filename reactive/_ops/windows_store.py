"""``windowed(..., store=StoreSpec)``: the open windows of a window operator kept in a
store, so that a persistent (or changelogged) store carries them across a restart.

How it works
------------
The operator still works on its in-memory structures (``windows.py``): the store is a
mirror of them, written behind, and read once, when the stage starts, to rebuild them.
The batch fast paths of ``windows.py`` are off here (every kind takes the generic
prepare/commit path, whose hooks the mirror rides on); without ``store`` nothing of this
module runs.

Store layout (one record per entry; keys are tuples serialized by the spec's key serde,
msgpack by default; ``ks`` is the key's first-seen number, which emission order needs):

- ``("m",)`` -> ``[stream time, max timestamp, window spec]``
- ``("k", ks)`` -> the user's key first seen as number ``ks``
- ``("t", ks, start)`` -> accumulator (time windows)
- ``("s", ks, start)`` -> ``[end, accumulator]`` (sessions: bounds change, so a session
  that grows or merges deletes its old records and writes its new one)
- ``("w", ks, end)`` -> accumulator (sliding windows; ``start = end - size``)
- ``("b", ks, n)`` -> ``[t, element]`` (sliding: accepted element ``n``, kept to build
  windows created later, until no open window could need it)

Writes go into a dict of dirty records (the newest value per record, ``_DELETE`` to delete)
that is written as one atomic write batch with the stream time: when it holds
``cache_size`` records or ``cache_size`` elements were handled since the last batch (0:
after every element), every ``commit_interval`` seconds if anything changed (a timer on
the materializer's clock: nothing per element), and when the stage stops, however it
stops (completion, failure, cancellation, a kill switch's abort, materializer shutdown).
A batch is always written between two elements, so the store holds the state after some
element, minus the windows already emitted: a closed window is deleted from the store
when it is *emitted* (taken out of the pending queue), not when it closes. So a stage
stopped with windows closed but not emitted yet emits them when it starts again (they
close at once under the restored stream time), and a window emitted before the stop is
not emitted again.

Queries: while the stage runs, a ``WindowStoreView`` (``reactive/state/_view.py``) is
registered in the materializer's ``StateRegistry`` under the store's name and partition
(not ready while the store prepares, e.g. restores a changelog). It reads the operator's
in-memory windows, which the store mirrors, so it is current after every element:
``query_windows``/``query_all_windows`` give the open windows and the closed ones still
in ``pending`` (not emitted yet, so still in the store); an emitted window is not
returned, also while its delete (or, with contexts, its mark) is still in the store. A
key's time windows are looked up by start (``_time_candidates``: the starts the spec
allows between ``st - size - grace`` and ``max_ts``) when there are fewer such starts
than windows, else found by a scan. The write path is the same with or without queries.

What is not kept: the count of dropped late elements (logged per run), and the arrival
time of the last element (``idle_timeout`` counts from the restart: restored windows
close after that long without input, as if the last element arrived at the restart).

Values are serialized by the spec's value serde; without one, a msgpack serde that keeps
tuples as tuples (msgpack itself turns them into lists), so an accumulator such as
``(count, total)`` comes back as it went in. A value the serde cannot encode fails the
element under supervision (``TypeError`` naming the stage, the store and the value): a
custom aggregate's result is tried at once (ints, floats and strs need no trial), an
element that a default list (or a sliding window's buffer) keeps likewise.

With Kafka contexts (``StoredContextWindowedStage``, ``SourceWithContext.windowed(...,
store=...)``) the commit point emitted with each window follows the acknowledgements of
the write batches instead of the windows' emission (windows closed by a record wait for
the batch storing it to be acknowledged, so they carry a point past it), and an emitted
window is not deleted
but marked (``("e", n)`` -> ``[ks, start, end, value, commit point]``) until downstream
commits a later point: see ``_StoredContextWindowedLogic``.
"""

from __future__ import annotations

import heapq
import logging
import math
from bisect import insort
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..state._registry import registry_of
from ..state._serde import _msgpack
from ..state._spec import StoreContext, StoreSpec
from ..state._view import WindowStoreView
from .window_specs import Windowed
from .windows import _NONE, WindowedStage, _Win, _WindowedLogic
from .windows_context import _Contexts, _EmitQueue, _kafka_types

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable, Mapping

    from ..state._store import KeyValueStore

__all__ = ["StoredContextWindowedStage", "StoredWindowedStage", "TupleMsgpackSerde"]

log = logging.getLogger("reactive")

_TUPLE = 1  # msgpack extension type code of a tuple
_WINDOW_TAGS = frozenset({"t", "s", "w", "b"})
#: A dirty record's value meaning "delete it": not ``None``, which is a value like any other
#: (the key of windows without ``key=``, an accumulator a user's aggregate returned).
_DELETE: Any = object()
_TRUSTED = (int, float, str)
_COMMIT_TIMER = "windowed-store-commit"


class TupleMsgpackSerde:
    """msgpack that keeps tuples: a tuple is an extension record whose payload is its
    items (msgpack encodes tuples and lists alike, as arrays, which come back as lists).
    The value serde of a window store given none."""

    __slots__ = ("to_bytes", "from_bytes")

    def __init__(self) -> None:
        msgpack = _msgpack()

        def default(obj: Any) -> Any:
            if isinstance(obj, tuple):
                # A packer of its own: the outer one is in the middle of its pack.
                return msgpack.ExtType(
                    _TUPLE,
                    msgpack.packb(list(obj), use_bin_type=True, strict_types=True, default=default),
                )
            raise TypeError(f"cannot serialize {type(obj).__name__} {obj!r}")

        def ext_hook(code: int, data: bytes) -> Any:
            if code == _TUPLE:
                return tuple(unpack(data))
            return msgpack.ExtType(code, data)

        def unpack(data: bytes) -> Any:
            return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=ext_hook)

        packer = msgpack.Packer(use_bin_type=True, strict_types=True, default=default)
        self.to_bytes = packer.pack
        self.from_bytes = unpack

    def __repr__(self) -> str:
        return "TupleMsgpackSerde()"


def _hashable(k: Any) -> Any:
    """A key as it was: a serde without tuples (plain msgpack) gives lists back."""
    if isinstance(k, list):
        return tuple(_hashable(x) for x in k)
    return k


def _describe(spec: Any) -> str:
    return repr(spec)


class _StoredWindowedLogic(_WindowedLogic):
    # Its fields in slots: past the 29 names a logic keeps in CPython's shared-key layout
    # (see ``reactive._stage.logic._LogicFields``).
    __slots__ = (
        "commit_every",
        "dirty",
        "flush_at",
        "inner_commit",
        "inner_prepare",
        "keep",
        "keeps_elements",
        "keys_saved",
        "marks_first",
        "preparing",
        "store",
        "store_spec",
        "tumbling",
        "unflushed",
        "user_agg",
        "view",
        "vser",
        "vtrusted",
        "wipe",
    )

    def __init__(self, stage: WindowedStage) -> None:
        self.dirty: dict[tuple[Any, ...], Any] | None = None  # None until __init__ is done
        super().__init__(stage)
        spec = stage.store
        assert spec is not None
        if spec.value_serde is None:
            spec = replace(spec, value_serde=TupleMsgpackSerde())
        self.store_spec: StoreSpec[Any, Any] = spec
        self.flush_at = spec.cache_size
        self.commit_every = spec.commit_interval
        self.store: KeyValueStore[Any, Any] | None = None
        self.dirty = {}
        self.wipe = False  # windows were dropped: delete every record not in ``keep``
        self.keep: set[tuple[Any, ...]] = set()
        self.keys_saved = 0  # key records written: keys 0 .. keys_saved-1
        self.unflushed = 0  # elements handled since the last write batch
        self.marks_first = False  # the with-context variant's marks ("e") written first
        self.preparing = False
        # The generic path for every kind: its prepare/commit hooks write the mirror.
        self.bucketed = False
        self._batch = None
        self._handle = self._stored_element
        self.inner_prepare, self._prepare = self._prepare, self._stored_prepare
        self.inner_commit, self._commit = self._commit, self._stored_commit
        self.user_agg = self.agg
        if not self.default:
            self.agg = self._checked_agg
        self.keeps_elements = self.default or self.kind == "sliding"
        self.tumbling = self.kind == "time" and self.size == self.step
        self.pending = _EmitQueue(self._emitted)
        self.vser = spec.value_serde.to_bytes  # type: ignore[union-attr]
        self.vtrusted = isinstance(spec.value_serde, TupleMsgpackSerde)
        self.view: WindowStoreView[Any, Any] | None = None

    # -- start: open, prepare (a changelog's restore), reload ---------------------------------
    def pre_start(self) -> None:
        super().pre_start()
        spec = self.store_spec
        try:
            self.store = spec.open(StoreContext(spec.name, self.stage_name, spec.partition))
            ready = self.store.bytes_store.prepare()
        except Exception as exc:
            self.fail_stage(exc)
            return
        # Queryable while the stage runs (reactive.state.http serves the registry).
        view: WindowStoreView[Any, Any] = WindowStoreView(
            self, spec.name, spec.partition, self.kind
        )
        try:
            registry_of(self.materializer).register(
                spec.name, view, spec.partition, ready=self._queryable
            )
        except Exception as exc:  # the name is taken by a key-value store
            self.fail_stage(exc)
            return
        self.view = view
        if self.commit_every is not None:
            # The write batch goes out at least this often, however few elements come
            # (Kafka Streams' commit.interval.ms): a timer, nothing per element.
            self.schedule_with_fixed_delay(_COMMIT_TIMER, self.commit_every, self.commit_every)
        if ready is None:
            self._reload()
            return
        self.preparing = True
        done = self.get_async_callback(self._prepared)
        task = self.materializer.spawn(_await(ready))
        task.add_done_callback(done.invoke)

    def _prepared(self, task: asyncio.Task[Any]) -> None:
        self.preparing = False
        exc = None if task.cancelled() else task.exception()
        if task.cancelled() or exc is not None:
            self.fail_stage(
                exc
                if exc is not None
                else RuntimeError(
                    f"[{self.stage_name}] store {self.store_spec.name!r}: preparing it "
                    "was cancelled"
                )
            )
            return
        if self._reload():
            self._drain()

    def _reload(self) -> bool:
        """Rebuild the open windows from the store; False if the stage failed."""
        try:
            self._load()
        except Exception as exc:
            self._stopping = True
            self.fail_stage(exc)
            return False
        # Windows closed before the stop but not emitted: they close at once.
        self._close_until(self.st)
        if self.idle is not None and self.ts_fn is not None and self._peek() is not None:
            # The last arrival before the stop is not kept: the restored windows' idle time
            # counts from the restart, so they close while the input stays quiet.
            self.last_arrival = self.materializer.clock.time()
        if self.clock_driven:
            self._arm()
        return True

    def _load(self) -> None:
        assert self.store is not None
        name = self.store_spec.name
        keys: dict[int, Any] = {}
        wins: list[tuple[tuple[Any, ...], Any]] = []
        bufs: list[tuple[int, int, Any]] = []
        expected = {"time": "t", "session": "s", "sliding": "w"}[self.kind]
        for raw, v in self.store.items():
            sk = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
            tag = sk[0]
            if tag == "m":
                st, max_ts, desc = v
                if desc != _describe(self.spec):
                    raise ValueError(
                        f"[{self.stage_name}] store {name!r} holds the windows of {desc}, "
                        f"not of {_describe(self.spec)}: give this operator its own store"
                    )
                self.st, self.max_ts = st, max_ts
            elif tag == "k":
                keys[sk[1]] = _hashable(v)
            elif tag == expected:
                wins.append((sk, v))
            elif tag == "b" and self.kind == "sliding":
                bufs.append((sk[2], sk[1], v))
            elif not self._load_record(sk, v):
                raise ValueError(
                    f"[{self.stage_name}] store {name!r} holds a record {sk!r} that is not "
                    f"one of a windowed operator's over {_describe(self.spec)}: give this "
                    "operator its own store"
                )
        if sorted(keys) != list(range(len(keys))):
            raise ValueError(f"[{self.stage_name}] store {name!r}: key records are missing")
        key_seq = self.key_seq
        for ks in range(len(keys)):
            key_seq[keys[ks]] = ks
        self.keys_saved = len(keys)
        for sk, v in wins:
            tag, ks = sk[0], sk[1]
            k = keys[ks]
            if tag == "t":
                start = sk[2]
                w = _Win(k, ks, start, start + self.size, v)
                self.tw[(k, start)] = w
            elif tag == "s":
                end, acc = v
                w = _Win(k, ks, sk[2], end, acc)
                insort(self.sessions.setdefault(k, []), w, key=lambda x: x.start)
            else:
                end = sk[2]
                w = _Win(k, ks, end - self.size, end, v)
                insort(self.sliding.setdefault(k, []), w, key=lambda x: x.end)
            self._push_entry(w)
        self._loaded(keys)
        bufs.sort()
        for n, ks, (t, elem) in bufs:
            k = keys[ks]
            self.buf.setdefault(k, {})[n] = (t, elem)
            heapq.heappush(self.expiry, (t + self.size + self.grace, n, k))
            if n > self.seq:
                self.seq = n

    def _load_record(self, sk: tuple[Any, ...], v: Any) -> bool:
        """A record of a tag only a subclass knows: True if it took it."""
        return False

    def _loaded(self, keys: dict[int, Any]) -> None:
        """Every record was read (``keys``: first-seen number -> key)."""

    def _drain(self) -> None:
        if not self.preparing:
            super()._drain()

    def on_timer(self, key: Any) -> None:
        if key == _COMMIT_TIMER:
            self._on_commit_timer()
        else:
            super().on_timer(key)

    def _on_commit_timer(self) -> None:
        """``commit_interval`` passed: write what the cache holds (if anything changed)."""
        if self._stopping or self.preparing or self.finishing or self.store is None:
            return
        if not self.dirty and not self.unflushed:
            return
        self._flush_or_fail()

    def _flush_or_fail(self) -> bool:
        """Write the cache's batch (``_flush_store``); a failure of it fails the stage:
        False then."""
        try:
            self._flush_store()
        except Exception as exc:
            self._stopping = True
            self.fail_stage(exc)
            return False
        return True

    # -- elements -----------------------------------------------------------------------------
    def _stored_element(self, elem: Any) -> None:
        self._element(elem)
        self.unflushed += 1
        if (
            self.unflushed >= self.flush_at or len(self.dirty) >= self.flush_at  # type: ignore[arg-type]
        ) and not self._stopping:
            self._flush_or_fail()

    def _check_value(self, what: str, v: Any) -> None:
        if self.vtrusted and type(v) in _TRUSTED:
            return
        try:
            self.vser(v)
        except Exception as exc:
            raise TypeError(
                f"[{self.stage_name}] windowed store {self.store_spec.name!r}: the {what} "
                f"{v!r} cannot be serialized by {self.store_spec.value_serde!r}: {exc}"
            ) from exc

    def _checked_agg(self, acc: Any, elem: Any) -> Any:
        new = self.user_agg(acc, elem)  # type: ignore[misc]
        self._check_value("value", new)
        return new

    def _stored_prepare(self, k: Any, t: Any, elem: Any, st: Any) -> Any:
        if k not in self.key_seq:
            self._check_value("key", k)
        if self.keeps_elements:
            self._check_value("element", elem)
        return self.inner_prepare(k, t, elem, st)

    def _stored_commit(self, k: Any, ks: int, t: Any, elem: Any, plan: Any) -> list[_Win]:
        d = self.dirty
        assert d is not None
        kind = self.kind
        if kind == "session":
            olds = [c.start for c in plan[0]]
        changed = self.inner_commit(k, ks, t, elem, plan)
        if ks >= self.keys_saved:
            d[("k", ks)] = k
            self.keys_saved = ks + 1
        if kind == "time":
            tw = self.tw
            starts = (plan[1],) if self.tumbling else [op[1] for op in plan]
            for s in starts:
                w = tw[(k, s)]
                d[("t", ks, w.start)] = w.acc
        elif kind == "session":
            w = changed[0]
            for s in olds:
                d[("s", ks, s)] = _DELETE
            d[("s", ks, w.start)] = [w.end, w.acc]
        else:
            for w in changed:
                d[("w", ks, w.end)] = w.acc
            d[("b", ks, self.seq)] = [t, elem]
        return changed

    # -- windows leaving ----------------------------------------------------------------------
    def _record_of(self, key: Any, start: Any, end: Any) -> tuple[Any, ...]:
        ks = self.key_seq[key]
        if self.kind == "time":
            return ("t", ks, start)
        if self.kind == "session":
            return ("s", ks, start)
        return ("w", ks, end)

    def _emitted(self, w: Windowed[Any, Any]) -> Windowed[Any, Any]:
        if not self.on_update:  # a closed window: out of the store once emitted
            self.dirty[self._record_of(w.key, w.start, w.end)] = _DELETE  # type: ignore[index]
        return w

    def _remove(self, w: _Win) -> None:
        super()._remove(w)
        if self.on_update:  # closed, nothing more to emit: out of the store now
            self.dirty[self._record_of(w.key, w.start, w.end)] = _DELETE  # type: ignore[index]

    def _prune(self, st: Any) -> None:
        expiry, buf, d, key_seq = self.expiry, self.buf, self.dirty, self.key_seq
        assert d is not None
        while expiry and expiry[0][0] < st:
            _, n, k = heapq.heappop(expiry)
            b = buf[k]
            del b[n]
            if not b:
                del buf[k]
            d[("b", key_seq[k], n)] = _DELETE

    def _clear(self) -> None:
        super()._clear()
        if self.dirty is None:
            return  # during __init__
        # Windows dropped (restart) or all moved to pending (completion): only the windows
        # waiting to be emitted stay in the store (each is deleted when it is emitted).
        keep: set[tuple[Any, ...]] = set()
        if not self.on_update:
            keep = {self._record_of(w.key, w.start, w.end) for w in deque.__iter__(self.pending)}
        self.keep = keep
        self.wipe = True
        self.dirty = {
            sk: v for sk, v in self.dirty.items() if sk in keep or sk[0] not in _WINDOW_TAGS
        }

    # -- queries (the registered WindowStoreView reads these) -------------------------------
    def _queryable(self) -> bool:
        """The view holds the store's state (registered, and its restore is done)."""
        return self.view is not None and not self.preparing

    def _closed_held(self) -> Any:
        """The windows closed but not emitted yet (``on_window_update``'s pending are
        updates of open windows, not windows of their own)."""
        return () if self.on_update else deque.__iter__(self.pending)

    def _time_candidates(self, key: Any, lo: Any, hi: Any) -> list[_Win] | None:
        """The open time windows of ``key`` with start in ``[lo, hi]`` by looking up the
        starts the spec allows there, or None when scanning every window is cheaper. An
        open window starts after ``st - size - grace`` (it closes when stream time reaches
        ``end + grace``) and at or before ``max_ts`` (the latest element's time)."""
        tw, step = self.tw, self.step
        a = self.st - self.size - self.grace
        if lo is not None and lo > a:
            a = lo
        b = self.max_ts if hi is None or hi > self.max_ts else hi
        if not (math.isfinite(a) and math.isfinite(b)):
            return None
        if a > b:
            return []
        first, last = math.floor(a / step) - 1, math.ceil(b / step) + 1
        if last - first > len(tw):
            return None
        out = []
        for n in range(first, last + 1):
            # The start as the operator computes it (``n * step``): the same float.
            w = tw.get((key, n * step))
            if w is not None:
                out.append(w)
        return out

    def _snapshot(self, w: Any) -> Windowed[Any, Any]:
        # A closed window (Windowed) keeps its value; an open one (_Win) changes.
        v = w.value if isinstance(w, Windowed) else w.acc
        return Windowed(w.key, w.start, w.end, list(v) if self.default else v)

    def query_windows(self, key: Any, lo: Any, hi: Any) -> list[Windowed[Any, Any]]:
        """The windows of ``key`` held (open, or closed and not emitted yet) whose start
        is in ``[lo, hi]`` (None: unbounded), in start order (``WindowStoreView.fetch``)."""
        found: list[Any] = []
        if self.kind == "time":
            cands = self._time_candidates(key, lo, hi)
            if cands is None:
                cands = [w for w in self.tw.values() if w.key == key]
            found.extend(cands)
        else:
            table = self.sessions if self.kind == "session" else self.sliding
            found.extend(table.get(key, ()))
        found.extend(w for w in self._closed_held() if w.key == key)
        out = [
            self._snapshot(w)
            for w in found
            if (lo is None or w.start >= lo) and (hi is None or w.start <= hi)
        ]
        out.sort(key=lambda w: (w.start, w.end))
        return out

    def query_all_windows(self, lo: Any, hi: Any) -> list[Windowed[Any, Any]]:
        """Every window held whose start is in ``[lo, hi]``, ordered by start, end, then
        the first-seen order of its key (``WindowStoreView.fetch_all``)."""
        found: list[Any]
        if self.kind == "time":
            found = list(self.tw.values())
        else:
            table = self.sessions if self.kind == "session" else self.sliding
            found = [w for wins in table.values() for w in wins]
        found.extend(self._closed_held())
        key_seq = self.key_seq
        found = [
            w for w in found if (lo is None or w.start >= lo) and (hi is None or w.start <= hi)
        ]
        found.sort(key=lambda w: (w.start, w.end, key_seq.get(w.key, -1)))
        return [self._snapshot(w) for w in found]

    def query_count(self) -> int:
        """The number of windows held (``len(WindowStoreView)``)."""
        if self.kind == "time":
            n = len(self.tw)
        else:
            table = self.sessions if self.kind == "session" else self.sliding
            n = sum(len(wins) for wins in table.values())
        return n + (0 if self.on_update else len(self.pending))

    # -- writing ------------------------------------------------------------------------------
    def _flush_store(self) -> None:
        store = self.store
        if store is None or not store.is_open:
            return
        dirty = self.dirty
        assert dirty is not None
        with store.write_batch() as batch:
            if self.wipe:
                keep = self.keep
                for raw in store.keys():  # noqa: SIM118 - a store, not a dict
                    sk = tuple(raw) if isinstance(raw, (list, tuple)) else (raw,)
                    if sk[0] in _WINDOW_TAGS and sk not in keep and sk not in dirty:
                        batch.delete(sk)
            records: Any = dirty.items()
            if self.marks_first:
                # A window emitted in this batch is deleted and marked: the mark goes
                # first, so a batch cut short (a kill while a changelog writes it) never
                # keeps the delete without the mark.
                records = sorted(records, key=lambda r: r[0][0] != "e")
            for sk, v in records:
                if v is _DELETE:
                    batch.delete(sk)
                else:
                    try:
                        batch.put(sk, v)
                    except TypeError as exc:  # checked when it changed: mutated since?
                        raise TypeError(
                            f"[{self.stage_name}] windowed store {store.name!r}: the record "
                            f"{sk!r} cannot be serialized (a value changed in place after "
                            f"aggregate returned it?): {exc}"
                        ) from exc
            batch.put(("m",), [self.st, self.max_ts, _describe(self.spec)])
        self.wipe = False
        self.keep = set()
        self.unflushed = 0
        dirty.clear()

    def post_stop(self) -> None:
        view = self.view
        if view is not None:
            self.view = None
            view.close()
            registry_of(self.materializer).unregister(self.store_spec.name, view)
        super().post_stop()
        store = self.store
        if store is None:
            return
        try:
            if not self.preparing:
                self._flush_store()
        except Exception:
            # The stream has ended: all that is left is to say so (never silently).
            log.exception(
                "[%s] windowed store %r: the last writes could not be stored",
                self.stage_name,
                store.name,
            )
        finally:
            store.close()


async def _await(aw: Awaitable[Any]) -> Any:
    return await aw


class StoredWindowedStage(WindowedStage):
    """``windowed(..., store=...)`` on Source/Flow/SubFlow: the plain stage whose open
    windows live in the store (see ``_StoredWindowedLogic``)."""

    def create_logic(self, attributes: Any) -> Any:
        return _StoredWindowedLogic(self)

    def __repr__(self) -> str:
        return f"StoredWindowedStage({self.windows!r}, store={self.store!r})"


# -- with contexts: the commit point follows the store's acknowledgements --------------------
class StoredContextWindowedStage(WindowedStage):
    """``SourceWithContext.windowed(..., store=...)``: the plain stage's arguments (the
    user's functions see the bare element), over ``(element, CommittableOffset)`` pairs,
    emitting ``(Windowed, CommittableOffsetBatch)`` pairs (see
    ``_StoredContextWindowedLogic``)."""

    def __init__(self, windows: Any, **kw: Any) -> None:
        super().__init__(windows, **kw)
        if self.emit.kind == "on_window_update":
            raise ValueError(
                "windowed with context and a store emits on_window_close only (an update "
                "emission is not a window's final value, so it cannot stand for the window "
                "in the commit protocol of the store)"
            )
        store = self.store
        if store is not None and store.kind == "memory" and not store.layers:
            raise ValueError(
                f"windowed with context: store {store.name!r} is in memory with no changelog; "
                "the commit point passes records whose windows are in the store, so a "
                "restart would lose them. Give a persistent or a changelogged store "
                "(connectors.kafka.state.changelogged)"
            )

    def create_logic(self, attributes: Any) -> Any:
        return _StoredContextWindowedLogic(self)

    def __repr__(self) -> str:
        return f"StoredContextWindowedStage({self.windows!r}, store={self.store!r})"


class _Observed:
    """A ``KafkaCommitterRef`` in front of the consumer's: the emitted commit points go
    through it, so the operator learns which of them downstream committed."""

    __slots__ = ("inner", "group", "notify")

    def __init__(self, inner: Any, group: str, notify: Callable[[Any], None]) -> None:
        self.inner = inner
        self.group = group
        self.notify = notify

    async def commit(self, offsets: Mapping[Any, int]) -> None:
        await self.inner.commit(offsets)
        group = self.group
        self.notify({(group, tp.topic, tp.partition): o - 1 for tp, o in offsets.items()})

    def __repr__(self) -> str:
        return f"<observed {self.inner!r}>"


class _StoredContextWindowedLogic(_StoredWindowedLogic):
    """Windows in a store, with Kafka contexts.

    The commit point (the context emitted with each window) is, per partition, the
    highest offset whose element's writes to the store are acknowledged
    (``BytesStore.durable``: with a changelog, by the broker), lowered below a record
    waiting for the ``late`` sink. So it moves past records still in open windows: their
    state is in the store, which a restart restores. A restart from the committed offset
    re-reads what came after it; records whose writes were acknowledged but not committed
    are applied again (a count may exceed the exact one by the records re-processed).

    An emitted window is kept in the store, marked as emitted (``("e", n)`` ->
    ``[ks, start, end, value, commit point]``), until downstream committed a commit
    point emitted after it (seen through ``_Observed``): only then has downstream surely
    handled it. The marked windows are emitted again after a restart (at-least-once:
    those downstream had handled are duplicates). Points emitted with the windows never
    decrease (as long as the partitions' offsets do not go back: no rebalance).
    """

    def __init__(self, stage: WindowedStage) -> None:
        super().__init__(stage)
        self.contexts = _Contexts(lambda: self.stage_name)
        self.observers: dict[tuple[str, int], _Observed] = {}
        self.cur_ctx: Any = None
        self.cur_pos: tuple[Any, int] | None = None
        self.first: dict[Any, int] = {}
        self.last: dict[Any, int] = {}
        self.acked: dict[Any, int] = {}
        self.inflight: deque[tuple[asyncio.Future[None], dict[Any, int]]] = deque()
        self.late_at: tuple[Any, int] | None = None
        self.finish_after_acks = False
        self.final_flushed = False
        self.marks_first = True
        self.emit_seq = 0
        self.marked: deque[tuple[int, dict[Any, int]]] = deque()
        self.committed: dict[Any, int] = {}
        self.reemit: dict[int, int] = {}  # id(Windowed) -> its mark from before a restart
        self.marks: list[tuple[int, list[Any]]] = []  # read by _load_record
        # Windows closed so far (emitted + pending) when the last covering batch was written.
        self.covered = 0
        self._acked_cb = self.get_async_callback(self._on_acked)
        self._committed_cb = self.get_async_callback(self._on_committed)
        self.plain_handle, self._handle = self._handle, self._context_element

    # -- elements ---------------------------------------------------------------------------
    def _context_element(self, pair: Any) -> None:
        try:
            if pair.__class__ is not tuple or len(pair) != 2:
                raise TypeError(
                    f"[{self.stage_name}] windowed with context expects (element, context) "
                    f"pairs, got {pair!r}"
                )
            ctx = pair[1]
            part, pos = self.contexts.position(ctx)
            if self.contexts.kind != "kafka":
                raise TypeError(
                    f"[{self.stage_name}] windowed with context and a store needs Kafka "
                    f"CommittableOffset contexts (their commits tell it which emitted "
                    f"windows downstream has handled), got {ctx!r}"
                )
        except Exception as exc:
            self._supervise(exc)
            return
        last = self.last.get(part)
        if last is None or pos > last:
            self.last[part] = pos
        if part not in self.first or pos < self.first[part]:
            self.first[part] = pos
        self.cur_ctx, self.cur_pos = ctx, (part, pos)
        self.plain_handle(pair[0])

    def _late(self, elem: Any) -> None:
        super()._late((elem, self.cur_ctx))
        if self.late_pending is not _NONE:
            self.late_at = self.cur_pos

    def _on_late_pull(self) -> None:
        self.late_at = None
        super()._on_late_pull()

    def _on_late_cancel(self) -> None:
        self.late_at = None
        super()._on_late_cancel()

    def _flush(self) -> None:
        # Upstream finished and every element was handled; every open window goes out
        # now: first the store takes every element (so the last windows carry a commit
        # point past every record), and, when its writes need acknowledgements, the
        # windows wait for them (``finishing`` is off meanwhile: nothing is pulled, and
        # _on_acked turns it back on).
        if not self.final_flushed:
            self.final_flushed = True
            try:
                self._flush_store()
            except Exception as exc:
                self._stopping = True
                self.finishing = False
                self.fail_stage(exc)
                return
            if self.inflight:
                self.finishing = False
                self.finish_after_acks = True
                return
        super()._flush()

    # -- windows wait for the batch that stored the element closing them ---------------------
    def _run(self, it: Any) -> None:
        super()._run(it)
        if self.pending:
            self._cover()

    def _drain(self) -> None:
        if self.preparing:
            return
        if self.pending and not self._stopping:
            self._cover()
        if not self.gated:
            super()._drain()

    def _cover(self) -> None:
        """Windows closed since the last covering batch: write the batch now, and hold
        them until it is acknowledged (``gated``), so that they carry a commit point past
        every record handled before they closed, the one that closed them included.
        Otherwise a point that moved after the last window (a flush by ``cache_size`` or
        ``commit_interval``) would reach the committer only with a later window, and a
        partition whose windows are all emitted would commit nothing (the emitted
        ``Windowed`` is the only carrier of a commit point downstream)."""
        closed = self.emit_seq + len(self.pending)
        if closed <= self.covered or self.gated or self.final_flushed:
            return
        self.covered = closed
        if not self._flush_or_fail():
            return
        if self.inflight:
            self.gated = True

    def _on_commit_timer(self) -> None:
        if not self.gated and not self.final_flushed:
            super()._on_commit_timer()

    # -- acknowledgements and commits -------------------------------------------------------
    def _flush_store(self) -> None:
        super()._flush_store()
        store = self.store
        if store is None:
            return
        snapshot = dict(self.last)
        fut = store.bytes_store.durable()
        if fut is None:
            self._advance(snapshot)
        else:
            self.inflight.append((fut, snapshot))
            fut.add_done_callback(self._acked_cb.invoke)

    def _advance(self, snapshot: dict[Any, int]) -> None:
        acked = self.acked
        for part, pos in snapshot.items():
            if pos > acked.get(part, -1):
                acked[part] = pos

    def _on_acked(self, _: Any) -> None:
        inflight = self.inflight
        while inflight and inflight[0][0].done():
            fut, snapshot = inflight.popleft()
            exc = (
                RuntimeError(f"[{self.stage_name}] a store write was cancelled")
                if fut.cancelled()
                else fut.exception()
            )
            if exc is not None:
                self._stopping = True
                self.fail_stage(exc)
                return
            self._advance(snapshot)
        if self.finish_after_acks and not inflight:
            self.finish_after_acks = False
            self.finishing = True
            self._drain()
        elif self.gated and not inflight:
            self.gated = False
            self._drain()

    def _points(self) -> dict[Any, int]:
        out: dict[Any, int] = {}
        late = self.late_at
        first = self.first
        for part, pos in self.acked.items():
            if late is not None and late[0] == part and pos >= late[1]:
                pos = late[1] - 1
            if pos >= first.get(part, pos):
                out[part] = pos
        return out

    def _build(self, points: dict[Any, int]) -> Any:
        messages = _kafka_types()
        offsets = {}
        committers = {}
        observers = self.observers
        for part, o in points.items():
            gtp = messages.GroupTopicPartition(*part)
            offsets[gtp] = o
            # One observer per consumer (committer) of a group: a batch commits the
            # partitions of one consumer with one call.
            group = part[0]
            inner = self.contexts.committers[part]
            key = (group, id(inner))
            observer = observers.get(key)
            if observer is None or observer.inner is not inner:
                observer = observers[key] = _Observed(inner, group, self._committed_cb.invoke)
            committers[gtp] = observer
        return messages.CommittableOffsetBatch._make(offsets, committers, len(offsets))

    def _on_committed(self, offsets: dict[Any, int]) -> None:
        committed = self.committed
        for part, pos in offsets.items():
            if pos > committed.get(part, -1):
                committed[part] = pos
        # A mark goes once downstream committed a point emitted after its window: one
        # greater than the window's own in some partition (points never decrease).
        marked, dirty = self.marked, self.dirty
        assert dirty is not None
        while marked:
            seq, point = marked[0]
            if not any(pos > point.get(part, -1) for part, pos in committed.items()):
                break
            marked.popleft()
            dirty[("e", seq)] = _DELETE

    # -- emission: (window, commit point), the window marked in the store -----------------
    def _emitted(self, w: Windowed[Any, Any]) -> Any:
        dirty = self.dirty
        assert dirty is not None
        point = self._points()
        old = self.reemit.pop(id(w), None)
        if old is None:
            dirty[self._record_of(w.key, w.start, w.end)] = _DELETE
        else:
            dirty[("e", old)] = _DELETE
        seq = self.emit_seq
        self.emit_seq += 1
        ks = self.key_seq[w.key]
        dirty[("e", seq)] = [ks, w.start, w.end, w.value, [[p, o] for p, o in point.items()]]
        self.marked.append((seq, point))
        return w, self._build(point)

    def _load_record(self, sk: tuple[Any, ...], v: Any) -> bool:
        if sk[0] != "e":
            return False
        self.marks.append((sk[1], v))
        return True

    def _loaded(self, keys: dict[int, Any]) -> None:
        # Windows emitted before the stop, not known to be handled: emitted again first.
        self.marks.sort(key=lambda m: m[0])
        for seq, (ks, start, end, value, _) in self.marks:
            w = Windowed(keys[ks], start, end, value)
            self.reemit[id(w)] = seq
            self.pending.append(w)
            self.emit_seq = seq + 1
        self.marks = []
