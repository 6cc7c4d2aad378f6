"""Differential property tests of ``windowed`` against a small reference model.

The model (``reference``) restates API.md's rules as directly as possible, with no care
for speed: stream time is the running maximum, every open window is kept in a plain list
and the closing rule is checked on all of them after every element. The operator must
give exactly the same windows, values, order and late elements for random finite inputs
with bounded disorder, random keys, every window kind, both emit strategies, with
``async_boundary()`` before and after it, and with and without a key.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    EmitStrategy,
    Materializer,
    SessionWindows,
    Sink,
    SlidingWindows,
    Source,
    TimeWindows,
    Windowed,
)

SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

Elem = tuple[str, float, int]  # (key, timestamp, id)


# -- the reference model ----------------------------------------------------------------------
@dataclass
class _W:
    key: Any
    start: Any
    end: Any
    acc: Any


@dataclass
class Model:
    """API.md's rules, checked by brute force after every element."""

    spec: Any
    keyed: bool
    custom: bool  # zero/aggregate/merge given (tuples of ids), else default lists
    on_update: bool
    st: float = -math.inf
    open: list[_W] = field(default_factory=list)
    accepted: dict[Any, list[Elem]] = field(default_factory=dict)  # sliding
    first_seen: dict[Any, int] = field(default_factory=dict)
    out: list[Windowed[Any, Any]] = field(default_factory=list)
    late: list[Elem] = field(default_factory=list)

    # values
    def zero(self) -> Any:
        return () if self.custom else []

    def agg(self, acc: Any, e: Elem) -> Any:
        return (*acc, e[2]) if self.custom else [*acc, e]

    def merge(self, a: Any, b: Any) -> Any:
        return a + b  # tuples (custom) or lists (default): earlier first either way

    def snapshot(self, w: _W) -> Windowed[Any, Any]:
        return Windowed(w.key, w.start, w.end, list(w.acc) if not self.custom else w.acc)

    # rules
    def closed(self, w: _W, st: float) -> bool:
        s = self.spec
        if isinstance(s, TimeWindows):
            return st >= w.end + s.grace_period
        if isinstance(s, SlidingWindows):
            return st > w.end + s.grace_period
        return st > w.end + s.gap + s.grace_period

    def order(self, w: _W) -> tuple[Any, ...]:
        return (w.end, w.start, self.first_seen[w.key])

    def feed(self, e: Elem) -> None:
        k = e[0] if self.keyed else None
        t = e[1]
        st = max(self.st, t)
        self.st = st
        s = self.spec
        mine = [w for w in self.open if w.key == k and not self.closed(w, st)]
        changed: list[_W] = []
        if isinstance(s, TimeWindows):
            lo = math.floor((t - s.size) / s.step) - 1
            hi = math.floor(t / s.step) + 1
            for n in range(lo, hi + 1):
                start = n * s.step
                if not start <= t < start + s.size:
                    continue
                w = next((w for w in mine if w.start == start), None)
                if w is None:
                    w = _W(k, start, start + s.size, self.zero())
                    if self.closed(w, st):
                        continue
                    self.open.append(w)
                w.acc = self.agg(w.acc, e)
                changed.append(w)
        elif isinstance(s, SlidingWindows):
            for w in mine:
                if w.start <= t <= w.end:
                    w.acc = self.agg(w.acc, e)
                    changed.append(w)
            own = _W(k, t - s.size, t, self.zero())
            if not any(w.end == t for w in mine) and not self.closed(own, st):
                for x in self.accepted.get(k, []):
                    if own.start <= x[1] <= own.end:
                        own.acc = self.agg(own.acc, x)
                own.acc = self.agg(own.acc, e)
                self.open.append(own)
                changed.append(own)
            if changed:
                self.accepted.setdefault(k, []).append(e)
        else:
            near = sorted(
                (w for w in mine if w.start - s.gap <= t <= w.end + s.gap), key=lambda w: w.start
            )
            if near:
                acc = near[0].acc
                for w in near[1:]:
                    acc = self.merge(acc, w.acc)
                    self.open.remove(w)
                w = near[0]
                w.acc = self.agg(acc, e)
                w.start = min(w.start, t)
                w.end = max(near[-1].end, w.end, t)
                changed.append(w)
            else:
                w = _W(k, t, t, self.agg(self.zero(), e))
                if not self.closed(w, st):
                    self.open.append(w)
                    changed.append(w)
        if not changed:
            self.late.append(e)
            return
        self.first_seen.setdefault(k, len(self.first_seen))
        closing = [w for w in self.open if self.closed(w, st)]
        self.open = [w for w in self.open if not self.closed(w, st)]
        if self.on_update:
            self.out.extend(self.snapshot(w) for w in sorted(changed, key=self.order))
        else:
            self.out.extend(self.snapshot(w) for w in sorted(closing, key=self.order))

    def finish(self) -> None:
        if not self.on_update:
            self.out.extend(self.snapshot(w) for w in sorted(self.open, key=self.order))
        self.open = []


def reference(
    spec: Any, elems: list[Elem], *, keyed: bool, custom: bool, on_update: bool
) -> tuple[list[Windowed[Any, Any]], list[Elem]]:
    m = Model(spec, keyed, custom, on_update)
    for e in elems:
        m.feed(e)
    m.finish()
    return m.out, m.late


def test_reference_model_sanity() -> None:
    out, late = reference(
        TimeWindows.of(10),
        [("a", 1, 0), ("a", 12, 1), ("a", 3, 2)],
        keyed=True,
        custom=True,
        on_update=False,
    )
    assert out == [Windowed("a", 0, 10, (0,)), Windowed("a", 10, 20, (1,))]
    assert late == [("a", 3, 2)]
    out, _ = reference(
        SessionWindows.with_gap(5).grace(9),
        [("a", 0, 0), ("a", 10, 1), ("a", 5, 2)],
        keyed=True,
        custom=True,
        on_update=True,
    )
    assert out[-1] == Windowed("a", 0, 10, (0, 1, 2))


# -- the operator under test ------------------------------------------------------------------
async def operator_run(
    spec: Any,
    elems: list[Elem],
    *,
    keyed: bool,
    custom: bool,
    on_update: bool,
    boundaries: bool,
) -> tuple[list[Windowed[Any, Any]], list[Elem]]:
    kw: dict[str, Any] = {
        "timestamp": lambda e: e[1],
        "emit": EmitStrategy.on_window_update() if on_update else EmitStrategy.on_window_close(),
    }
    if keyed:
        kw["key"] = lambda e: e[0]
    if custom:
        kw.update(zero=tuple, aggregate=lambda acc, e: (*acc, e[2]), merge=lambda a, b: a + b)
    late: list[Elem] = []
    mat = Materializer(name="windows-prop")
    async with mat:
        src: Any = Source.from_iterable(elems)
        if boundaries:
            src = src.async_boundary()
        src = src.windowed(spec, late=Sink.foreach(late.append), **kw)
        if boundaries:
            src = src.async_boundary()
        out: list[Windowed[Any, Any]] = await src.run_with(Sink.seq(), mat)
        for _ in range(30):
            if mat.running_tasks == 0:
                break
            await asyncio.sleep(0)
        assert mat.running_tasks == 0
    return out, late


# -- inputs ----------------------------------------------------------------------------------
@st.composite
def inputs(draw: st.DrawFn) -> list[Elem]:
    """Timestamps that mostly advance, each drawn back by up to ``disorder`` seconds;
    half-seconds sometimes (exact in binary floating point)."""
    n = draw(st.integers(0, 40))
    disorder = draw(st.integers(0, 12))
    halves = draw(st.booleans())
    keys = draw(st.lists(st.sampled_from("abcde"), min_size=1, max_size=4, unique=True))
    base = draw(st.integers(-20, 20))
    out = []
    for i in range(n):
        base += draw(st.integers(0, 6))
        t: float = base - draw(st.integers(0, disorder))
        if halves and draw(st.booleans()):
            t += 0.5
        out.append((draw(st.sampled_from(keys)), t, i))
    return out


SPECS = st.one_of(
    st.builds(
        lambda size, div, grace: TimeWindows.of(size).advance_by(max(1, size // div)).grace(grace),
        st.integers(1, 12),
        st.integers(1, 4),
        st.integers(0, 6),
    ),
    st.builds(
        lambda size, grace: SlidingWindows.of(size).grace(grace),
        st.integers(1, 10),
        st.integers(0, 6),
    ),
    st.builds(
        lambda gap, grace: SessionWindows.with_gap(gap).grace(grace),
        st.integers(0, 8),
        st.integers(0, 6),
    ),
)


@SETTINGS
@given(
    spec=SPECS,
    elems=inputs(),
    keyed=st.booleans(),
    custom=st.booleans(),
    on_update=st.booleans(),
    boundaries=st.booleans(),
)
async def test_windowed_matches_the_reference_model(
    spec: Any, elems: list[Elem], keyed: bool, custom: bool, on_update: bool, boundaries: bool
) -> None:
    expected = reference(spec, elems, keyed=keyed, custom=custom, on_update=on_update)
    got = await operator_run(
        spec, elems, keyed=keyed, custom=custom, on_update=on_update, boundaries=boundaries
    )
    assert got[0] == expected[0]
    assert got[1] == expected[1]


@SETTINGS
@given(spec=SPECS, elems=inputs(), on_update=st.booleans())
async def test_every_element_is_in_a_window_or_late(
    spec: Any, elems: list[Elem], on_update: bool
) -> None:
    """Nothing is lost: with ids as values, every input id is in some emitted window or
    in the late sink, never both."""
    out, late = await operator_run(
        spec, elems, keyed=True, custom=True, on_update=on_update, boundaries=False
    )
    in_windows = {i for w in out for i in w.value}
    late_ids = {e[2] for e in late}
    assert in_windows | late_ids == {e[2] for e in elems}
    assert not in_windows & late_ids
