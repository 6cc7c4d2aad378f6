"""Event-time window benchmarks (issue 13): windowed counts against a plain Python loop,
and memory over a long stream.

Input (both systems read the same lazy generator, so generating it costs both the same):
element ``i`` of ``n`` is ``(key, t)`` with ``key = i * 7919 % 1000`` (1,000 keys, each
every 1,000 elements) and ``t = i * 0.006 + 100 * (i // 50_000) - jitter`` where
``jitter = (i * 37 % 101) / 20`` (0 to 5 s of bounded disorder): a key's elements are 6 s
apart (10 per key per minute), and every 50,000 elements the input pauses 100 s of event
time, so sessions close. Windows have 5 s of grace, so no element is late. Each system
returns ``(windows emitted, elements counted)``, which the harness compares with the
baseline's. The memory benchmark spreads its elements over 24 hours of event time instead
(``day_elements``: ``t = i * 86400 / n - jitter``).

- ``windowed_tumbling`` / ``windowed_hopping`` / ``windowed_session``: 1,000,000 elements
  through ``windowed(TimeWindows.of(60).grace(5))``, ``TimeWindows.of(60).advance_by(10)``
  and ``SessionWindows.with_gap(30)`` counting per key (``zero=lambda: 0``,
  ``aggregate=lambda n, e: n + 1``, sessions ``merge=operator.add``) into ``Sink.fold``.
  Baseline: the strongest plain Python loop of the same rules (no streaming runtime), the
  limit of what Python does per element. For tumbling and hopping windows that is a dict
  of buckets by window start (``{start: {key: count}}``) and a heap of open starts: all
  keys' windows of one start close together, so closing costs one heap pop per start, not
  per window (``bucket_*``, 1.4x-2x faster here than the first design, kept as a reference
  row: a dict of ``(key, start) -> count`` with a heap entry per window, ``loop_*``). For
  sessions, per key a list of open sessions and a heap of close times (``loop_session``).
- Peer: Bytewax 0.21.1 (``bytewax.operators.windowing.count_window``), run as its docs and
  a competent user would: ``TestingSource`` over the same generator with
  ``batch_size=10_000``, ``run_main``, the un-keyed stream plus a key function (Bytewax
  keys it itself; keys are strings there), ``EventClock`` with
  ``wait_for_system_duration`` = the grace (5 s) and ``TumblingWindower`` /
  ``SlidingWindower(60 s, 10 s)`` / ``SessionWindower(30 s)`` aligned to the epoch. The
  clock's ``now_getter`` is fixed and ``to_system_utc`` returns None (a replay of recorded
  event times: no wake-ups on the system clock, and the watermark is exactly the largest
  timestamp minus 5 s, so Bytewax drops nothing as late and its counts equal the others').
- ``windowed_memory``: 10,000,000 elements through the tumbling operator, each
  measurement in a fresh process; peak RSS growth over the process's own baseline.

"""

from __future__ import annotations

import heapq
import operator
from typing import TYPE_CHECKING, Any

from benchmarks.runner import RSS_GROWTH, THROUGHPUT, Benchmark, System, Target, register

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: The names of the benchmarks this module registers, in order.
NAMES: list[str] = []

KEYS = 1000
SPAN = 86_400.0  # seconds of event time over the whole input
SIZE = 60
STEP = 10
GAP = 30
GRACE = 5

W = "benchmarks.suite_windows:"


def _register(bench: Benchmark) -> None:
    register(bench)
    NAMES.append(bench.name)


def elements(n: int) -> Iterator[tuple[int, float]]:
    """The input: ``(key, event time)``, a key every 6 s, a 100 s pause every 50,000
    elements, 0-5 s of disorder."""
    for i in range(n):
        yield i * 7919 % KEYS, i * 0.006 + 100 * (i // 50_000) - (i * 37 % 101) / 20


def day_elements(n: int) -> Iterator[tuple[int, float]]:
    """The memory benchmark's input: ``n`` elements over 24 h of event time."""
    scale = SPAN / n
    for i in range(n):
        yield i * 7919 % KEYS, i * scale - (i * 37 % 101) / 20


# -- plain loops (the baseline) ----------------------------------------------------------------
def loop_tumbling(n: int, source: Callable[[int], Iterator[Any]] = elements) -> tuple[int, int]:
    """A dict of ``(key, start) -> count`` and a heap of ``(end, start, key)``."""
    counts: dict[tuple[int, float], int] = {}
    heap: list[tuple[float, float, int]] = []
    st = float("-inf")
    windows = total = 0
    for k, t in source(n):
        if t > st:
            st = t
        start = (t // SIZE) * SIZE
        if start + SIZE + GRACE <= st:
            continue  # late (never, with this input)
        c = counts.get((k, start))
        if c is None:
            counts[(k, start)] = 1
            heapq.heappush(heap, (start + SIZE, start, k))
        else:
            counts[(k, start)] = c + 1
        while heap and heap[0][0] + GRACE <= st:
            _, s, key = heapq.heappop(heap)
            windows += 1
            total += counts.pop((key, s))
    return windows + len(counts), total + sum(counts.values())


def loop_hopping(n: int) -> tuple[int, int]:
    """As ``loop_tumbling``, each element counted in its ``SIZE / STEP`` windows."""
    counts: dict[tuple[int, float], int] = {}
    heap: list[tuple[float, float, int]] = []
    st = float("-inf")
    windows = total = 0
    for k, t in elements(n):
        if t > st:
            st = t
        last = (t // STEP) * STEP
        start = last - SIZE + STEP
        while start <= last:
            if start + SIZE + GRACE > st:
                c = counts.get((k, start))
                if c is None:
                    counts[(k, start)] = 1
                    heapq.heappush(heap, (start + SIZE, start, k))
                else:
                    counts[(k, start)] = c + 1
            start += STEP
        while heap and heap[0][0] + GRACE <= st:
            _, s, key = heapq.heappop(heap)
            windows += 1
            total += counts.pop((key, s))
    return windows + len(counts), total + sum(counts.values())


def loop_session(n: int) -> tuple[int, int]:
    """Per key a list of open sessions ``[start, end, count]``; a heap of close times with
    lazy deletion of entries whose session grew, merged or closed."""
    open_: dict[int, list[list[float]]] = {}
    heap: list[tuple[float, int, int, list[float]]] = []
    st = float("-inf")
    windows = total = seq = 0
    limit = GAP + GRACE
    for k, t in elements(n):
        if t > st:
            st = t
        sessions = open_.setdefault(k, [])
        near = [s for s in sessions if s[0] - GAP <= t <= s[1] + GAP and s[1] + limit >= st]
        if near:
            first = near[0]
            for s in near[1:]:
                first[0] = min(first[0], s[0])
                first[1] = max(first[1], s[1])
                first[2] += s[2]
                sessions.remove(s)
                s[2] = -1  # merged away: its heap entries are stale
            first[2] += 1
            if t < first[0] or t > first[1] or len(near) > 1:
                first[0], first[1] = min(first[0], t), max(first[1], t)
                seq += 1
                heapq.heappush(heap, (first[1] + limit, seq, k, first))
        elif t + limit >= st:
            s = [t, t, 1]
            sessions.append(s)
            seq += 1
            heapq.heappush(heap, (t + limit, seq, k, s))
        while heap and heap[0][0] < st:
            close, _, key, s = heapq.heappop(heap)
            if s[2] < 0 or s[1] + limit != close:
                continue  # stale
            windows += 1
            total += int(s[2])
            open_[key].remove(s)
            s[2] = -1
    rest = [s for ss in open_.values() for s in ss]
    return windows + len(rest), total + int(sum(s[2] for s in rest))


def bucket_tumbling(n: int) -> tuple[int, int]:
    """Buckets by window start (``{start: {key: count}}``) and a heap of open starts: the
    windows of one start close together."""
    buckets: dict[float, dict[int, int]] = {}
    starts: list[float] = []
    st = float("-inf")
    windows = total = 0
    for k, t in elements(n):
        if t > st:
            st = t
            while starts and starts[0] + SIZE + GRACE <= st:
                closed = buckets.pop(heapq.heappop(starts))
                windows += len(closed)
                total += sum(closed.values())
        start = (t // SIZE) * SIZE
        if start + SIZE + GRACE <= st:
            continue  # late (never, with this input)
        b = buckets.get(start)
        if b is None:
            buckets[start] = {k: 1}
            heapq.heappush(starts, start)
        else:
            b[k] = b.get(k, 0) + 1
    return windows + sum(map(len, buckets.values())), total + sum(
        sum(b.values()) for b in buckets.values()
    )


def bucket_hopping(n: int) -> tuple[int, int]:
    """As ``bucket_tumbling``, each element counted in its ``SIZE / STEP`` windows."""
    buckets: dict[float, dict[int, int]] = {}
    starts: list[float] = []
    st = float("-inf")
    windows = total = 0
    for k, t in elements(n):
        if t > st:
            st = t
            while starts and starts[0] + SIZE + GRACE <= st:
                closed = buckets.pop(heapq.heappop(starts))
                windows += len(closed)
                total += sum(closed.values())
        last = (t // STEP) * STEP
        start = last - SIZE + STEP
        while start <= last:
            if start + SIZE + GRACE > st:
                b = buckets.get(start)
                if b is None:
                    buckets[start] = {k: 1}
                    heapq.heappush(starts, start)
                else:
                    b[k] = b.get(k, 0) + 1
            start += STEP
    return windows + sum(map(len, buckets.values())), total + sum(
        sum(b.values()) for b in buckets.values()
    )


# -- Bytewax (the peer) ----------------------------------------------------------------------
def _bytewax(n: int, kind: str) -> tuple[int, int]:
    """``count_window`` over ``elements(n)``; returns (windows emitted, elements counted)."""
    from datetime import UTC, datetime, timedelta

    import bytewax.operators as op
    from bytewax.dataflow import Dataflow
    from bytewax.operators.windowing import (
        EventClock,
        SessionWindower,
        SlidingWindower,
        TumblingWindower,
        count_window,
    )
    from bytewax.testing import TestingSink, TestingSource, run_main

    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    windower: Any
    if kind == "tumbling":
        windower = TumblingWindower(length=timedelta(seconds=SIZE), align_to=epoch)
    elif kind == "hopping":
        windower = SlidingWindower(
            length=timedelta(seconds=SIZE), offset=timedelta(seconds=STEP), align_to=epoch
        )
    else:
        windower = SessionWindower(gap=timedelta(seconds=GAP))
    clock: EventClock[tuple[int, float]] = EventClock(
        ts_getter=lambda e: epoch + timedelta(seconds=e[1]),
        wait_for_system_duration=timedelta(seconds=GRACE),
        now_getter=lambda: epoch,
        to_system_utc=lambda _: None,
    )
    flow = Dataflow(f"windowed_{kind}")
    up = op.input("in", flow, TestingSource(elements(n), batch_size=10_000))
    counted = count_window("count", up, clock, windower, key=lambda e: str(e[0]))
    out: list[tuple[str, tuple[int, int]]] = []
    op.output("out", counted.down, TestingSink(out))
    run_main(flow)
    return len(out), sum(c for _, (_, c) in out)


def bytewax_tumbling(n: int) -> tuple[int, int]:
    """Bytewax ``count_window`` with ``TumblingWindower(60 s)``."""
    return _bytewax(n, "tumbling")


def bytewax_hopping(n: int) -> tuple[int, int]:
    """Bytewax ``count_window`` with ``SlidingWindower(60 s, offset 10 s)``."""
    return _bytewax(n, "hopping")


def bytewax_session(n: int) -> tuple[int, int]:
    """Bytewax ``count_window`` with ``SessionWindower(gap 30 s)``."""
    return _bytewax(n, "session")


# -- the project -------------------------------------------------------------------------------
def loop_tumbling_day(n: int) -> tuple[int, int]:
    """``loop_tumbling`` over ``day_elements``."""
    return loop_tumbling(n, day_elements)


async def _windowed(
    n: int, spec: object, source: Callable[[int], Iterator[Any]] = elements, **kw: object
) -> tuple[int, int]:
    from reactive import Sink, Source

    def add(acc: tuple[int, int], w: object) -> tuple[int, int]:
        return acc[0] + 1, acc[1] + w.value  # type: ignore[attr-defined]

    return await (  # type: ignore[no-any-return]
        Source.from_iterable(source(n))
        .windowed(
            spec,  # type: ignore[arg-type]
            key=operator.itemgetter(0),
            timestamp=operator.itemgetter(1),
            zero=int,
            aggregate=_inc,
            **kw,  # type: ignore[arg-type]
        )
        .run_with(Sink.fold((0, 0), add))
    )


def _inc(n: int, _: object) -> int:
    return n + 1


async def project_tumbling(n: int) -> tuple[int, int]:
    """``windowed(TimeWindows.of(60).grace(5))`` counting per key."""
    from reactive import TimeWindows

    return await _windowed(n, TimeWindows.of(SIZE).grace(GRACE))


async def project_tumbling_day(n: int) -> tuple[int, int]:
    """``project_tumbling`` over ``day_elements``."""
    from reactive import TimeWindows

    return await _windowed(n, TimeWindows.of(SIZE).grace(GRACE), day_elements)


async def project_hopping(n: int) -> tuple[int, int]:
    """``windowed(TimeWindows.of(60).advance_by(10).grace(5))`` counting per key."""
    from reactive import TimeWindows

    return await _windowed(n, TimeWindows.of(SIZE).advance_by(STEP).grace(GRACE))


async def project_session(n: int) -> tuple[int, int]:
    """``windowed(SessionWindows.with_gap(30).grace(5))`` counting per key."""
    from reactive import SessionWindows

    return await _windowed(n, SessionWindows.with_gap(GAP).grace(GRACE), merge=operator.add)


_INPUT = (
    "1,000 keys (a key's elements 6 s apart, a 100 s pause every 50,000 elements), 0-5 s of "
    "bounded disorder, 5 s of grace; counts per key into `Sink.fold`, result (windows, "
    "elements). Baseline: the strongest plain Python loop of the same rules (no runtime)"
)
_BUCKETS = (
    ": buckets by window start (`{start: {key: count}}`) and a heap of open starts; "
    "reference row: a dict of `(key, start) -> count` and a heap entry per window."
)
_PEER = (
    " Peer: Bytewax 0.21.1 `count_window` (TestingSource batch_size=10,000, run_main, "
    "EventClock with 5 s wait, fixed now_getter)."
)
BYTEWAX = "Bytewax 0.21.1"

for name, title, kind, baseline in (
    ("windowed_tumbling", "windowed count, tumbling 60 s", "tumbling", "bucket_tumbling"),
    ("windowed_hopping", "windowed count, hopping 60 s / 10 s", "hopping", "bucket_hopping"),
    ("windowed_session", "windowed count, sessions (30 s gap)", "session", "loop_session"),
):
    systems = [System("plain dict loop", W + baseline, "baseline")]
    references: tuple[str, ...] = ()
    text = f"{title} over 1,000,000 elements: {_INPUT}"
    if baseline.startswith("bucket"):
        systems.append(System("plain loop, heap per window", W + "loop_" + kind, "baseline"))
        references = ("plain loop, heap per window",)
        text += _BUCKETS
    else:
        text += ": per key a list of open sessions and a heap of close times."
    systems += [
        System(BYTEWAX, W + "bytewax_" + kind, "peer"),
        System("project windowed", W + "project_" + kind, "project"),
    ]
    _register(
        Benchmark(
            name=name,
            title=title,
            description=text + _PEER,
            systems=tuple(systems),
            baseline="plain dict loop",
            size=1_000_000,
            quick_size=5_000,
            metrics=(THROUGHPUT,),
            references=references,
            targets=(
                Target("project windowed", "throughput", ">= 0.5x the plain loop", min_ratio=0.5),
                Target(
                    "project windowed",
                    "throughput",
                    f">= 1.0x {BYTEWAX}",
                    min_ratio=1.0,
                    against=BYTEWAX,
                ),
            ),
        )
    )

_register(
    Benchmark(
        name="windowed_memory",
        title="windowed memory over a long stream (tumbling 60 s)",
        description=(
            "10,000,000 elements (1,000 keys, 24 h of event time) through "
            "`windowed(TimeWindows.of(60).grace(5))` counting per key, each measurement in a "
            "fresh process; peak RSS growth over the process's own baseline (windows are "
            "freed as they close, so it stays flat)."
        ),
        systems=(
            System("plain dict loop", W + "loop_tumbling_day", "baseline"),
            System("project windowed", W + "project_tumbling_day", "project"),
        ),
        baseline="plain dict loop",
        size=10_000_000,
        quick_size=5_000,
        metrics=(RSS_GROWTH, THROUGHPUT),
        targets=(
            Target(
                "project windowed",
                "rss_growth",
                "peak RSS growth under 20 MiB",
                max_value=20.0,
                on="worst",
            ),
        ),
        isolated=True,
        timeout=1800.0,
        # A bound checked on the worst round, 10M elements per measurement: as b4.
        max_rounds=3,
    )
)
