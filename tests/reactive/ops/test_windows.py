"""``windowed`` (``reactive/_ops/windows.py``): every sentence of API.md's "Event-time
windows" section as a spec test, plus processing time and ``idle_timeout`` on the manual
clock and demand with probes, a class per part of the contract; then the differential tests:
the tumbling/hopping fast paths against the general path (``TestFastPaths``) and the
operator against a small reference model (``TestReferenceModel``: the model restates
API.md's rules as directly as possible: stream time is the running maximum, every open
window is kept in a plain list and the closing rule is checked on all of them after every
element; random finite inputs with bounded disorder, random keys, every window kind, both
emit strategies, with ``async_boundary()`` before and after it, with and without a key).
The with-context form is in ``test_windows_context.py``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import inspect
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Attributes,
    EmitStrategy,
    Flow,
    Keep,
    Materializer,
    NotUsed,
    SessionWindows,
    Sink,
    SlidingWindows,
    Source,
    TimeWindows,
    Windowed,
)
from reactive._dsl.subflow import SubFlow
from reactive._ops.windows import WindowedStage
from reactive._supervision import restarting_decider, resuming_decider
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


def k0(e: tuple[Any, ...]) -> Any:
    return e[0]


def t1(e: tuple[Any, ...]) -> Any:
    return e[1]


async def run(mat: Materializer, spec: Any, data: list[Any], **kw: Any) -> list[Windowed[Any, Any]]:
    """All windows of ``data`` (elements ``(key, t, ...)``; ``key=k0, timestamp=t1``
    unless given)."""
    kw.setdefault("key", k0)
    kw.setdefault("timestamp", t1)
    return await Source.from_iterable(data).windowed(spec, **kw).run_with(Sink.seq(), mat)


def bounds(ws: list[Windowed[Any, Any]]) -> list[tuple[Any, Any, Any]]:
    return [(w.key, w.start, w.end) for w in ws]


def probes(mat: Materializer, spec: Any, **kw: Any) -> tuple[PublisherProbe, SubscriberProbe]:
    kw.setdefault("key", k0)
    kw.setdefault("timestamp", t1)
    return TestSource.probe().windowed(spec, **kw).to_mat(TestSink.probe(), Keep.both).run(mat)


async def idle_after_first_window(
    materializer: Materializer, clock: ManualClock, idle: float
) -> tuple[Any, Any, list[Any]]:
    """Tumbling 10 s windows with ``idle_timeout=1`` between probes (demand 10, late
    elements collected): element 5 sent, then ``idle`` seconds on ``clock`` and its window
    ``[0, 10)`` received. Returns ``(pub, sub, late elements)``."""
    late_seen: list[Any] = []
    pub, sub = probes(
        materializer, TimeWindows.of(10), idle_timeout=1, late=Sink.foreach(late_seen.append)
    )
    sub.request(10)
    pub.send_next(("k", 5))
    await clock.advance(idle)
    assert await sub.expect_next() == Windowed("k", 0, 10, [("k", 5)])
    return pub, sub, late_seen


async def settled(clock: ManualClock | None = None) -> None:
    for _ in range(30):
        await asyncio.sleep(0)


async def run_with_late_probe(
    mat: Materializer, spec: Any, **kw: Any
) -> tuple[PublisherProbe, SubscriberProbe, SubscriberProbe]:
    """Probes for upstream, downstream and the late sink."""
    late_probes: list[SubscriberProbe] = []

    def keep(p: SubscriberProbe) -> SubscriberProbe:
        late_probes.append(p)
        return p

    late = TestSink.probe().map_materialized_value(keep)
    pub, sub = probes(mat, spec, late=late, **kw)
    await settled()
    return pub, sub, late_probes[0]


class Boom(Exception):
    pass


def raising_on(bad: Any, f: Callable[..., Any]) -> Callable[..., Any]:
    def g(*args: Any) -> Any:
        if args[-1] == bad:
            raise Boom(f"bad element {bad!r}")
        return f(*args)

    return g


def capturing(stage: Any) -> tuple[Any, list[Any]]:
    """``stage`` whose logics are kept in the returned list (to look at their state)."""
    from reactive._ops.windows import WindowedStage

    assert isinstance(stage, WindowedStage)
    logics: list[Any] = []
    create = stage.create_logic

    def create_logic(attributes: Any) -> Any:
        logic = create(attributes)
        logics.append(logic)
        return logic

    stage.create_logic = create_logic  # type: ignore[method-assign]
    return stage, logics


FAST_PATH_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


STEPS = st.sampled_from([0.1, 0.3, 0.7, 1, 2.5, 3])


@st.composite
def cases(draw: Any) -> tuple[TimeWindows, list[tuple[str, float, int]], frozenset[int]]:
    step = draw(STEPS)
    spec = TimeWindows.of(step * draw(st.integers(1, 6))).advance_by(step)  # 1: tumbling
    spec = spec.grace(draw(st.sampled_from([0, 0.2, 1, 4])))
    t = draw(st.floats(-50, 50, allow_nan=False))
    elems = []
    for i in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([0, 0.1, 0.25, 0.3, 1, 2.7]))
        elems.append((draw(st.sampled_from("abc")), t - draw(st.sampled_from([0, 0.1, 0.7, 3])), i))
    bad = frozenset(draw(st.sets(st.integers(0, 40), max_size=3)))
    return spec, elems, bad


async def _run(
    spec: TimeWindows, elems: list[Any], bad: frozenset[int], fast: bool, restart: bool
) -> Any:
    def aggregate(acc: tuple[int, ...], e: tuple[str, float, int]) -> tuple[int, ...]:
        if e[2] in bad and len(acc) % 2 == 1:  # raises in some of the element's windows
            raise ValueError(f"bad element {e}")
        return (*acc, e[2])

    late: list[Any] = []
    out = await (
        Source.from_iterable(elems)
        .windowed(
            spec,
            key=lambda e: e[0],
            timestamp=lambda e: e[1],
            zero=tuple,
            aggregate=aggregate,
            late=Sink.foreach(late.append),
            idle_timeout=None if fast else 1e9,
        )
        .with_attributes(
            Attributes.supervision_strategy(restarting_decider if restart else resuming_decider)
        )
        .run_with(Sink.seq())
    )
    return out, late


SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


Elem = tuple[str, float, int]  # (key, timestamp, id)


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


class TestWindowSpecs:
    """The window specs (TimeWindows, SlidingWindows, SessionWindows), emit strategies and
    ``Windowed``."""

    def test_time_windows_tumbling_and_hopping_specs(self) -> None:
        tumbling = TimeWindows.of(60)
        assert (tumbling.size, tumbling.step, tumbling.grace_period) == (60, 60, 0)
        hopping = tumbling.advance_by(10).grace(5)
        assert (hopping.size, hopping.step, hopping.grace_period) == (60, 10, 5)
        # Each copy method keeps the other settings, in either order.
        assert TimeWindows.of(60).grace(5).advance_by(10) == hopping
        assert tumbling == TimeWindows.of(60)  # immutable values: the original is unchanged
        assert repr(hopping) == "TimeWindows.of(60).advance_by(10).grace(5)"

    def test_sliding_and_session_specs(self) -> None:
        assert SlidingWindows.of(5).grace(2) == SlidingWindows(5, 2)
        assert (SlidingWindows.of(5).size, SlidingWindows.of(5).grace_period) == (5, 0)
        s = SessionWindows.with_gap(30).grace(10)
        assert (s.gap, s.grace_period) == (30, 10)
        assert SessionWindows.with_gap(0).gap == 0  # only equal timestamps share a session

    @pytest.mark.parametrize(
        "build",
        [
            lambda: TimeWindows.of(0),
            lambda: TimeWindows.of(-1),
            lambda: TimeWindows.of(10).advance_by(0),
            lambda: TimeWindows.of(10).advance_by(-5),
            lambda: TimeWindows.of(10).advance_by(11),
            lambda: TimeWindows.of(10).grace(-1),
            lambda: SlidingWindows.of(0),
            lambda: SlidingWindows.of(-2.5),
            lambda: SlidingWindows.of(5).grace(-0.1),
            lambda: SessionWindows.with_gap(-1),
            lambda: SessionWindows.with_gap(5).grace(-1),
            lambda: TimeWindows.of(float("nan")),
        ],
    )
    def test_invalid_spec_arguments_raise_value_error_when_built(self, build: object) -> None:
        with pytest.raises(ValueError):
            build()  # type: ignore[operator]

    def test_non_numbers_are_type_errors(self) -> None:
        with pytest.raises(TypeError, match="TimeWindows size"):
            TimeWindows.of("60")  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            SessionWindows.with_gap(True)

    def test_step_equal_to_size_is_tumbling(self) -> None:
        assert TimeWindows.of(10).advance_by(10).is_tumbling
        assert not TimeWindows.of(10).advance_by(5).is_tumbling

    def test_emit_strategies(self) -> None:
        assert EmitStrategy.on_window_close() == EmitStrategy.on_window_close()
        assert EmitStrategy.on_window_close() != EmitStrategy.on_window_update()
        assert EmitStrategy.on_window_update().kind == "on_window_update"
        assert repr(EmitStrategy.on_window_close()) == "EmitStrategy.on_window_close()"

    def test_windowed_is_immutable_with_equality_by_fields(self) -> None:
        w = Windowed("k", 0, 10, [1, 2])
        assert (w.key, w.start, w.end, w.value) == ("k", 0, 10, [1, 2])
        assert w == Windowed(key="k", start=0, end=10, value=[1, 2])
        assert w != Windowed("k", 0, 10, [1])
        assert w != Windowed("j", 0, 10, [1, 2])
        with pytest.raises(dataclasses.FrozenInstanceError):
            w.value = []  # type: ignore[misc]
        assert hash(Windowed("k", 0, 10, 3)) == hash(Windowed("k", 0, 10, 3))
        assert Windowed[str, int]("k", 0, 10, 3).value == 3  # generic in key and value


class TestWindowedApi:
    """API.md's example, the operator's signature and materialized value."""

    async def test_the_api_example_counts_clicks_per_user_in_hopping_windows(
        self,
        materializer: Materializer,
    ) -> None:
        Click = collections.namedtuple("Click", "user ts")  # noqa: PYI024 - as a user would
        clicks = [Click("ann", 1), Click("bob", 4), Click("ann", 12)]
        counts = Source.from_iterable(clicks).windowed(
            TimeWindows.of(60).advance_by(10).grace(5),
            key=lambda c: c.user,
            timestamp=lambda c: c.ts,
            zero=lambda: 0,
            aggregate=lambda n, c: n + 1,
        )
        got = await counts.run_with(Sink.seq(), materializer)
        # Every open window at completion, by end, then start, then key first-seen order.
        assert got == [
            Windowed("ann", -50, 10, 1),
            Windowed("bob", -50, 10, 1),
            Windowed("ann", -40, 20, 2),
            Windowed("bob", -40, 20, 1),
            Windowed("ann", -30, 30, 2),
            Windowed("bob", -30, 30, 1),
            Windowed("ann", -20, 40, 2),
            Windowed("bob", -20, 40, 1),
            Windowed("ann", -10, 50, 2),
            Windowed("bob", -10, 50, 1),
            Windowed("ann", 0, 60, 2),
            Windowed("bob", 0, 60, 1),
            Windowed("ann", 10, 70, 1),
        ]

    def test_signature_is_the_contract(self) -> None:
        for cls in (Source, Flow, SubFlow):
            sig = inspect.signature(cls.windowed)
            params = list(sig.parameters.values())[1:]
            assert [p.name for p in params] == [
                "windows", "key", "timestamp", "zero", "aggregate", "merge", "emit", "late",
                "idle_timeout", "store",
            ]  # fmt: skip
            assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
            assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
            defaults = {p.name: p.default for p in params[1:]}
            assert defaults == {
                "key": None, "timestamp": None, "zero": None, "aggregate": None, "merge": None,
                "emit": EmitStrategy.on_window_close(), "late": None, "idle_timeout": None,
                "store": None,
            }  # fmt: skip
            assert "Emits when" in (cls.windowed.__doc__ or "")

    async def test_materialized_value_of_the_operator_is_not_used(
        self, materializer: Materializer
    ) -> None:
        flow = Flow[Any]().windowed(TimeWindows.of(10), key=k0, timestamp=t1)
        mat, got = (
            Source.from_iterable([("a", 1)])
            .via_mat(flow, Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert mat is NotUsed
        assert await got == [Windowed("a", 0, 10, [("a", 1)])]
        late_mat, _ = (
            Source.from_iterable([("a", 1)])
            .via_mat(Flow[Any]().windowed(TimeWindows.of(10), late=Sink.ignore()), Keep.right)
            .to_mat(Sink.ignore(), Keep.both)
            .run(materializer)
        )
        assert late_mat is NotUsed


class TestTimeWindows:
    """Tumbling and hopping windows: alignment, closing rule, grace."""

    async def test_tumbling_windows_are_aligned_to_zero_with_exclusive_end(
        self,
        materializer: Materializer,
    ) -> None:
        data = [("k", 0), ("k", 59.5), ("k", 60), ("k", 119), ("k", 250)]
        got = await run(materializer, TimeWindows.of(60), data)
        assert [(w.start, w.end, [e[1] for e in w.value]) for w in got] == [
            (0, 60, [0, 59.5]),
            (60, 120, [60, 119]),
            (240, 300, [250]),
        ]

    async def test_negative_timestamps_fall_in_windows_aligned_to_zero(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(
            materializer, TimeWindows.of(10).grace(20), [("k", -1), ("k", -10), ("k", -11)]
        )
        assert bounds(got) == [("k", -20, -10), ("k", -10, 0)]
        assert [len(w.value) for w in got] == [1, 2]

    async def test_hopping_windows_start_at_every_multiple_of_step_including_negative(
        self,
        materializer: Materializer,
    ) -> None:
        # The API's own example: t = 3, size 10, step 5: [-5, 5) and [0, 10).
        got = await run(materializer, TimeWindows.of(10).advance_by(5), [("k", 3)])
        assert bounds(got) == [("k", -5, 5), ("k", 0, 10)]
        got = await run(materializer, TimeWindows.of(10).advance_by(5), [("k", 5)])
        assert bounds(got) == [("k", 0, 10), ("k", 5, 15)]  # start <= t < start + size
        got = await run(materializer, TimeWindows.of(10).advance_by(3), [("k", 7)])
        assert bounds(got) == [("k", 0, 10), ("k", 3, 13), ("k", 6, 16)]

    async def test_time_window_closes_when_stream_time_reaches_end_plus_grace(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10).grace(5))
        sub.request(10)
        pub.send_next(("k", 1)).send_next(("k", 14.5))
        await settled()
        await sub.expect_no_message(0)
        pub.send_next(("k", 9))  # [0, 10) is still open at stream time 14.5: not late
        pub.send_next(("k", 15))  # 15 >= 10 + 5: [0, 10) closes
        assert await sub.expect_next() == Windowed("k", 0, 10, [("k", 1), ("k", 9)])
        pub.send_complete()
        assert await sub.expect_next() == Windowed("k", 10, 20, [("k", 14.5), ("k", 15)])
        await sub.expect_complete()

    async def test_grace_defaults_to_zero(self, materializer: Materializer) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(10)
        pub.send_next(("k", 1)).send_next(("k", 10))
        assert await sub.expect_next() == Windowed("k", 0, 10, [("k", 1)])
        pub.send_complete()
        await sub.expect_next()
        await sub.expect_complete()


class TestSessionWindows:
    """Session windows: gaps, merging, closing rule."""

    async def test_sessions_hold_elements_at_most_gap_apart_inclusive(
        self,
        materializer: Materializer,
    ) -> None:
        data = [("k", 0), ("j", 3), ("k", 5), ("k", 10), ("k", 15.5)]
        got = await run(materializer, SessionWindows.with_gap(5), data)
        assert [(w.key, w.start, w.end, [e[1] for e in w.value]) for w in got] == [
            ("j", 3, 3, [3]),  # closed by stream time 10 > 3 + 5
            ("k", 0, 10, [0, 5, 10]),  # closed by stream time 15.5 > 10 + 5
            ("k", 15.5, 15.5, [15.5]),
        ]

    async def test_an_element_bridging_two_sessions_merges_them(
        self, materializer: Materializer
    ) -> None:
        data = [("k", 0), ("k", 10), ("k", 5)]
        got = await run(materializer, SessionWindows.with_gap(5).grace(100), data)
        assert got == [Windowed("k", 0, 10, [("k", 0), ("k", 10), ("k", 5)])]

    async def test_session_start_and_end_are_first_and_last_timestamps(
        self,
        materializer: Materializer,
    ) -> None:
        data = [("k", 7), ("k", 4), ("k", 9)]
        got = await run(materializer, SessionWindows.with_gap(3).grace(10), data)
        assert bounds(got) == [("k", 4, 9)]

    async def test_a_session_closes_when_stream_time_passes_end_plus_gap_plus_grace(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(materializer, SessionWindows.with_gap(3).grace(2))
        sub.request(10)
        pub.send_next(("a", 10)).send_next(("b", 15))  # 15 == 10 + 3 + 2: still open
        await settled()
        await sub.expect_no_message(0)
        pub.send_next(("b", 15.25))
        assert await sub.expect_next() == Windowed("a", 10, 10, [("a", 10)])
        pub.send_complete()
        assert await sub.expect_next() == Windowed("b", 15, 15.25, [("b", 15), ("b", 15.25)])
        await sub.expect_complete()

    async def test_a_closed_session_takes_no_more_elements(
        self, materializer: Materializer
    ) -> None:
        # gap 5, grace 3: the session [0, 0] closes at stream time > 8.
        spec = SessionWindows.with_gap(5).grace(3)
        got = await run(materializer, spec, [("k", 0), ("j", 9), ("k", 4)])
        # 4 would have joined [0, 0]; it starts [4, 4] instead, open since 9 <= 4 + 5 + 3.
        assert bounds(got) == [("k", 0, 0), ("k", 4, 4), ("j", 9, 9)]
        assert got[1].value == [("k", 4)]
        caplog_free = await run(materializer, spec, [("k", 0), ("j", 9), ("k", 0.5)])
        # [0.5, 0.5] would already be closed (9 > 0.5 + 8): late, dropped.
        assert bounds(caplog_free) == [("k", 0, 0), ("j", 9, 9)]


class TestSlidingWindows:
    """Sliding windows: per-element windows, closing rule."""

    async def test_sliding_window_per_element_both_ends_inclusive(
        self, materializer: Materializer
    ) -> None:
        data = [("k", 0), ("k", 5), ("k", 5), ("k", 6)]
        got = await run(materializer, SlidingWindows.of(5).grace(10), data)
        assert [(w.start, w.end, [e[1] for e in w.value]) for w in got] == [
            (-5, 0, [0]),
            (0, 5, [0, 5, 5]),  # one window per distinct (key, start, end)
            (1, 6, [5, 5, 6]),
        ]

    async def test_sliding_window_closes_when_stream_time_passes_t_plus_grace(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(materializer, SlidingWindows.of(5).grace(1))
        sub.request(10)
        pub.send_next(("k", 10)).send_next(("j", 11))  # 11 == 10 + 1: still open
        await settled()
        await sub.expect_no_message(0)
        pub.send_next(("j", 11.5))
        assert await sub.expect_next() == Windowed("k", 5, 10, [("k", 10)])
        pub.send_complete()
        assert bounds(await sub.expect_next_n(2)) == [("j", 6, 11), ("j", 6.5, 11.5)]
        await sub.expect_complete()

    async def test_sliding_element_whose_own_window_closed_joins_open_windows(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        # size 10, grace 0: at stream time 8, the window of t = 7 is closed (8 > 7) but
        # [-2, 8] is open and contains 7.
        got = await run(materializer, SlidingWindows.of(10), [("k", 8), ("k", 7)])
        assert got == [Windowed("k", -2, 8, [("k", 8), ("k", 7)])]  # no [-3, 7]
        assert not [r for r in caplog.records if "late" in r.getMessage()]  # not late

    async def test_a_new_sliding_window_holds_earlier_elements_in_range(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(
            materializer,
            SlidingWindows.of(4).grace(20),
            [("k", 1), ("k", 3), ("k", 9), ("k", 5)],
            zero=lambda: "",
            aggregate=lambda s, e: s + str(e[1]),
        )
        # [1-4, 1], [-1, 3], [5, 9], [1, 5]: values folded in arrival order.
        assert [(w.start, w.end, w.value) for w in got] == [
            (-3, 1, "1"),
            (-1, 3, "13"),
            (1, 5, "135"),
            (5, 9, "95"),
        ]


class TestKeyAndTimestamp:
    """Keys, timestamps and stream time."""

    async def test_without_key_or_with_a_none_key_every_element_is_under_none(
        self,
        materializer: Materializer,
    ) -> None:
        data = [("a", 1), ("b", 2)]
        for kw in ({"key": None}, {"key": lambda e: None}):
            got = await run(materializer, TimeWindows.of(10), data, **kw)
            assert got == [Windowed(None, 0, 10, data)]
        got = (
            await Source.from_iterable([1, 2, 11])
            .windowed(TimeWindows.of(10), timestamp=lambda x: x)
            .run_with(Sink.seq(), materializer)
        )
        assert got == [Windowed(None, 0, 10, [1, 2]), Windowed(None, 10, 20, [11])]

    async def test_stream_time_is_over_all_keys(self, materializer: Materializer) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(10)
        pub.send_next(("a", 1)).send_next(("b", 30))  # b's element closes a's window
        assert await sub.expect_next() == Windowed("a", 0, 10, [("a", 1)])
        pub.send_complete()
        assert await sub.expect_next() == Windowed("b", 30, 40, [("b", 30)])
        await sub.expect_complete()

    async def test_stream_time_never_decreases(self, materializer: Materializer) -> None:
        # After 100, an element at 50 is late, and so is one at 55: the older one did not
        # move stream time back.
        got = await run(
            materializer, TimeWindows.of(10), [("k", 100), ("k", 50), ("k", 55)], late=Sink.ignore()
        )
        assert got == [Windowed("k", 100, 110, [("k", 100)])]

    async def test_a_bad_timestamp_fails_naming_the_stage(self, materializer: Materializer) -> None:
        for bad, err in ((None, TypeError), ("3", TypeError), (float("nan"), ValueError)):
            with pytest.raises(err, match=r"\[windowed\] timestamp returned"):
                await run(materializer, TimeWindows.of(10), [("k", bad)])

    async def test_an_unhashable_key_fails_naming_the_stage(
        self, materializer: Materializer
    ) -> None:
        with pytest.raises(TypeError, match=r"\[windowed\] key returned an unhashable list"):
            await run(materializer, TimeWindows.of(10), [(["k"], 1)])


class TestLateElements:
    """Late elements: the late sink, counting and the warning."""

    async def test_late_elements_go_to_the_late_sink_and_are_not_counted(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        late_seen: list[Any] = []
        data = [("k", 1), ("k", 25), ("k", 3), ("j", 9), ("k", 21)]
        got = await run(materializer, TimeWindows.of(10), data, late=Sink.foreach(late_seen.append))
        assert bounds(got) == [("k", 0, 10), ("k", 20, 30)]
        assert late_seen == [("k", 3), ("j", 9)]
        await settled()
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    async def test_hopping_element_is_late_only_when_all_its_windows_closed(
        self,
        materializer: Materializer,
    ) -> None:
        late_seen: list[Any] = []
        # Windows of 8: [0, 10) and [5, 15); stream time 12 closed [0, 10) only.
        got = await run(
            materializer,
            TimeWindows.of(10).advance_by(5),
            [("k", 12), ("k", 8), ("k", 30), ("k", 14)],
            late=Sink.foreach(late_seen.append),
        )
        assert (("k", 5, 15)) in bounds(got)
        assert [w.value for w in got if (w.start, w.end) == (5, 15)] == [[("k", 12), ("k", 8)]]
        assert late_seen == [("k", 14)]  # [5, 15) and [10, 20) closed at 30

    async def test_dropped_late_elements_are_counted_in_one_warning_on_the_reactive_logger(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="reactive")
        await run(materializer, TimeWindows.of(10), [("k", 30), ("k", 1), ("k", 2), ("k", 3)])
        await settled()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert warnings[0].name == "reactive"
        assert "3" in warnings[0].getMessage() and "late" in warnings[0].getMessage()

    async def test_no_warning_when_nothing_was_dropped(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="reactive")
        await run(materializer, TimeWindows.of(10), [("k", 1), ("k", 2)])
        await settled()
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    @pytest.mark.parametrize("ending", ["complete", "fail", "cancel"])
    async def test_the_warning_is_logged_however_the_stream_ends(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture, ending: str
    ) -> None:
        caplog.set_level(logging.WARNING, logger="reactive")
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(10)
        pub.send_next(("k", 30)).send_next(("k", 1)).send_next(("k", 2))
        await settled()
        if ending == "complete":
            pub.send_complete()
            await sub.expect_next()
            await sub.expect_complete()
        elif ending == "fail":
            pub.send_error(RuntimeError("boom"))
            assert str(await sub.expect_error()) == "boom"
        else:
            sub.cancel()
            await pub.expect_cancellation()
        await settled()
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "dropped 2 late" in warnings[0].getMessage()

    async def test_late_sink_completes_with_the_stream(self, materializer: Materializer) -> None:
        pub, sub, late = await run_with_late_probe(materializer, TimeWindows.of(10))
        sub.request(10)
        late.request(10)
        pub.send_next(("k", 30)).send_next(("k", 1)).send_complete()
        assert await late.expect_next() == ("k", 1)
        assert await sub.expect_next() == Windowed("k", 30, 40, [("k", 30)])
        await sub.expect_complete()
        await late.expect_complete()

    async def test_late_sink_fails_with_the_stream(self, materializer: Materializer) -> None:
        pub, sub, late = await run_with_late_probe(materializer, TimeWindows.of(10))
        sub.request(10)
        pub.send_error(RuntimeError("upstream broke"))
        assert str(await sub.expect_error()) == "upstream broke"
        assert str(await late.expect_error()) == "upstream broke"

    async def test_late_sink_back_pressures_the_operator(self, materializer: Materializer) -> None:
        pub, sub, late = await run_with_late_probe(materializer, TimeWindows.of(10))
        sub.request(10)
        assert await pub.expect_request() >= 1
        pub.send_next(("k", 30))
        await pub.expect_request()
        pub.send_next(("k", 1))  # late; the late sink has no demand
        await settled()
        await pub.expect_no_message(0)  # upstream is not pulled while it waits
        late.request(1)
        assert await late.expect_next() == ("k", 1)
        await pub.expect_request()  # now it is
        pub.send_complete()
        assert await sub.expect_next() == Windowed("k", 30, 40, [("k", 30)])
        await sub.expect_complete()
        await late.expect_complete()

    async def test_a_cancelled_late_sink_makes_late_elements_counted(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="reactive")
        pub, sub, late = await run_with_late_probe(materializer, TimeWindows.of(10))
        sub.request(10)
        late.cancel()
        pub.send_next(("k", 30)).send_next(("k", 1)).send_complete()
        assert await sub.expect_next() == Windowed("k", 30, 40, [("k", 30)])
        await sub.expect_complete()
        await settled()
        assert [r.getMessage() for r in caplog.records if "late" in r.getMessage()] != []


class TestProcessingTimeAndIdleTimeout:
    """Processing time and ``idle_timeout`` on the manual clock."""

    async def test_processing_time_windows_close_on_clock_timers(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10), timestamp=None)
        sub.request(10)
        await manual_clock.advance(3)
        pub.send_next(("a", "x"))
        await manual_clock.advance(4)
        pub.send_next(("b", "y"))
        await manual_clock.advance(2.5)  # clock 9.5
        await sub.expect_no_message(0)
        await manual_clock.advance(0.5)  # clock 10 >= end: the timer fires
        assert await sub.expect_next() == Windowed("a", 0, 10, [("a", "x")])
        assert await sub.expect_next() == Windowed("b", 0, 10, [("b", "y")])
        pub.send_next(("a", "z"))  # arrives at 10: window [10, 20)
        await manual_clock.advance(9.999)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.001)
        assert await sub.expect_next() == Windowed("a", 10, 20, [("a", "z")])
        pub.send_complete()
        await sub.expect_complete()

    async def test_processing_time_sliding_window_closes_at_first_timer_after_its_rule(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(materializer, SlidingWindows.of(5).grace(1), timestamp=None)
        sub.request(10)
        await manual_clock.advance(2)
        pub.send_next(("a", "x"))
        await manual_clock.advance(1)  # clock 3 == 2 + 1: the rule is "stream time > 3"
        await sub.expect_no_message(0)
        await manual_clock.advance(0.01)
        assert await sub.expect_next() == Windowed("a", -3.0, 2.0, [("a", "x")])
        pub.send_complete()
        await sub.expect_complete()

    async def test_processing_time_sessions(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(materializer, SessionWindows.with_gap(2), timestamp=None)
        sub.request(10)
        pub.send_next(("a", 1))
        await manual_clock.advance(2)
        pub.send_next(("a", 2))  # 2 apart: same session
        await manual_clock.advance(4)  # clock 6 > 2 + 2
        assert await sub.expect_next() == Windowed("a", 0.0, 2.0, [("a", 1), ("a", 2)])
        pub.send_complete()
        await sub.expect_complete()

    async def test_idle_timeout_lets_stream_time_follow_the_clock(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # max timestamp 25 arrives at clock 100; idle_timeout 5; window [20, 30) closes when
        # stream time >= 30: 25 + (now - 100) >= 30 and now - 100 >= 5, i.e. at clock 105.
        await manual_clock.advance(100)
        pub, sub = probes(materializer, TimeWindows.of(10), idle_timeout=5)
        sub.request(10)
        pub.send_next(("k", 25))
        await manual_clock.advance(4.5)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.5)
        assert await sub.expect_next() == Windowed("k", 20, 30, [("k", 25)])
        pub.send_complete()
        await sub.expect_complete()

    async def test_idle_timeout_waits_for_the_formula_to_reach_the_closing_time(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # idle 2: quiet from clock 2 after the arrival at 0; window [0, 60) needs stream time
        # 60 = 1 + (now - 0): clock 59.
        pub, sub = probes(materializer, TimeWindows.of(60), idle_timeout=2)
        sub.request(10)
        pub.send_next(("k", 1))
        await manual_clock.advance(58.5)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.5)
        assert await sub.expect_next() == Windowed("k", 0, 60, [("k", 1)])
        # Stream time keeps growing with the clock (61 at clock 60): an element at 60 still
        # finds [60, 120) open.
        await manual_clock.advance(1)
        pub.send_next(("k", 60))
        pub.send_complete()
        assert await sub.expect_next() == Windowed("k", 60, 120, [("k", 60)])
        await sub.expect_complete()

    async def test_idle_stream_time_makes_old_elements_late(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # stream time 5 + 6 = 11: [0, 10) closed at clock 5
        pub, sub, late_seen = await idle_after_first_window(materializer, manual_clock, 6)
        pub.send_next(("k", 8))  # late: stream time is 11
        pub.send_next(("k", 10.5))  # on time: [10, 20)
        pub.send_complete()
        assert await sub.expect_next() == Windowed("k", 10, 20, [("k", 10.5)])
        await sub.expect_complete()
        assert late_seen == [("k", 8)]

    async def test_idle_timeout_restarts_with_every_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10), idle_timeout=3)
        sub.request(10)
        pub.send_next(("k", 9))
        await manual_clock.advance(2)
        pub.send_next(("k", 9.5))  # not idle yet: arrival at clock 2
        await manual_clock.advance(2.9)  # clock 4.9: quiet for 2.9 < 3
        await sub.expect_no_message(0)
        await manual_clock.advance(0.1)  # clock 5: 9.5 + 3 >= 10
        assert await sub.expect_next() == Windowed("k", 0, 10, [("k", 9), ("k", 9.5)])
        pub.send_complete()
        await sub.expect_complete()

    @pytest.mark.parametrize("idle", [1, 2])
    async def test_idle_timeout_session_uses_the_strict_rule(
        self, materializer: Materializer, manual_clock: ManualClock, idle: float
    ) -> None:
        # Session [10, 10], gap 2: closes when stream time > 12; idle 1 or 2 from arrival at
        # 0: 10 + now > 12 first holds just after clock 2 (with idle 2, stream time is exactly
        # 12 at clock 2, which is not enough).
        pub, sub = probes(materializer, SessionWindows.with_gap(2), idle_timeout=idle)
        sub.request(10)
        pub.send_next(("k", 10))
        await manual_clock.advance(2)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.001)
        assert await sub.expect_next() == Windowed("k", 10, 10, [("k", 10)])
        pub.send_complete()
        await sub.expect_complete()

    async def test_invalid_idle_timeout(self, materializer: Materializer) -> None:
        with pytest.raises(ValueError, match="idle_timeout"):
            Source.empty().windowed(TimeWindows.of(1), idle_timeout=-1)


class TestValues:
    """Window values: zero, aggregate, merge."""

    async def test_zero_is_called_once_per_window(self, materializer: Materializer) -> None:
        made: list[int] = []

        def zero() -> list[str]:
            made.append(1)
            return []

        got = await run(
            materializer,
            TimeWindows.of(10).advance_by(5),
            [("a", 1), ("a", 2), ("b", 3)],
            zero=zero,
            aggregate=lambda acc, e: [*acc, e[0]],
        )
        assert len(made) == len(got) == 4  # [-5, 5) and [0, 10) for each key
        assert got[0] == Windowed("a", -5, 5, ["a", "a"])

    async def test_default_value_is_the_list_of_elements_in_arrival_order(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(materializer, TimeWindows.of(10), [("k", 5), ("k", 1), ("k", 3)])
        assert got == [Windowed("k", 0, 10, [("k", 5), ("k", 1), ("k", 3)])]

    async def test_bridging_element_merges_earlier_then_later_then_aggregates(
        self,
        materializer: Materializer,
    ) -> None:
        calls: list[str] = []

        def merge(a: str, b: str) -> str:
            calls.append(f"merge({a},{b})")
            return f"({a}+{b})"

        def aggregate(acc: str, e: tuple[Any, ...]) -> str:
            calls.append(f"agg({acc},{e[1]})")
            return f"{acc}{e[1]}"

        # Sessions [20, 20] then [10, 10] arrive (later session first); 15 bridges them.
        got = await run(
            materializer,
            SessionWindows.with_gap(5).grace(50),
            [("k", 20), ("k", 10), ("k", 15)],
            zero=lambda: "",
            aggregate=aggregate,
            merge=merge,
        )
        assert got == [Windowed("k", 10, 20, "(10+20)15")]
        assert calls[-2:] == ["merge(10,20)", "agg((10+20),15)"]

    async def test_default_session_lists_concatenate_earlier_session_first(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(
            materializer, SessionWindows.with_gap(5).grace(50), [("k", 20), ("k", 10), ("k", 15)]
        )
        assert got == [Windowed("k", 10, 20, [("k", 10), ("k", 20), ("k", 15)])]

    def test_invalid_operator_arguments_raise_value_error_when_built(self) -> None:
        src = Source.from_iterable([("k", 1)])
        with pytest.raises(ValueError, match="zero and aggregate"):
            src.windowed(TimeWindows.of(10), zero=lambda: 0)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="zero and aggregate"):
            Flow[Any]().windowed(TimeWindows.of(10), aggregate=lambda a, e: a)  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="merge"):
            src.windowed(SessionWindows.with_gap(1), zero=lambda: 0, aggregate=lambda a, e: a)
        # Fine: sessions with default lists, or with a merge.
        src.windowed(SessionWindows.with_gap(1))
        src.windowed(
            SessionWindows.with_gap(1), zero=lambda: 0, aggregate=lambda a, e: a, merge=max
        )
        with pytest.raises(TypeError, match="windowed: windows must be"):
            src.windowed(60)  # type: ignore[call-overload]
        with pytest.raises(TypeError, match="EmitStrategy"):
            src.windowed(TimeWindows.of(1), emit="on_window_close")  # type: ignore[call-overload]


class TestEmitStrategies:
    """``on_window_close`` and ``on_window_update``."""

    async def test_on_window_close_emits_each_window_once(self, materializer: Materializer) -> None:
        got = await run(
            materializer,
            TimeWindows.of(10),
            [("k", 1), ("k", 2), ("k", 11), ("k", 12), ("k", 25)],
            emit=EmitStrategy.on_window_close(),
        )
        assert bounds(got) == [("k", 0, 10), ("k", 10, 20), ("k", 20, 30)]

    async def test_on_window_update_emits_every_changed_window_after_each_element(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(
            materializer,
            TimeWindows.of(10).advance_by(5),
            [("k", 3), ("k", 7), ("k", 30)],
            emit=EmitStrategy.on_window_update(),
            zero=lambda: 0,
            aggregate=lambda n, e: n + 1,
        )
        # Ordered by end, then start, after each element; nothing at close or completion.
        assert got == [
            Windowed("k", -5, 5, 1),
            Windowed("k", 0, 10, 1),
            Windowed("k", 0, 10, 2),
            Windowed("k", 5, 15, 1),
            Windowed("k", 25, 35, 1),
            Windowed("k", 30, 40, 1),
        ]

    async def test_on_window_update_emits_a_merged_session_under_its_new_bounds(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(
            materializer,
            SessionWindows.with_gap(5).grace(50),
            [("k", 0), ("k", 10), ("k", 5)],
            emit=EmitStrategy.on_window_update(),
        )
        assert got == [
            Windowed("k", 0, 0, [("k", 0)]),
            Windowed("k", 10, 10, [("k", 10)]),
            Windowed("k", 0, 10, [("k", 0), ("k", 10), ("k", 5)]),
        ]

    async def test_on_window_update_sliding_own_window_and_others(
        self,
        materializer: Materializer,
    ) -> None:
        got = await run(
            materializer,
            SlidingWindows.of(5).grace(10),
            [("k", 4), ("k", 2)],
            emit=EmitStrategy.on_window_update(),
            zero=lambda: 0,
            aggregate=lambda n, e: n + e[1],
        )
        assert got == [
            Windowed("k", -1, 4, 4),
            Windowed("k", -3, 2, 2),  # ordered by end: [-3, 2] before [-1, 4]
            Windowed("k", -1, 4, 6),
        ]

    async def test_on_window_update_with_late_elements(self, materializer: Materializer) -> None:
        late_seen: list[Any] = []
        got = await run(
            materializer,
            TimeWindows.of(10),
            [("k", 15), ("k", 1)],
            emit=EmitStrategy.on_window_update(),
            late=Sink.foreach(late_seen.append),
        )
        assert got == [Windowed("k", 10, 20, [("k", 15)])]
        assert late_seen == [("k", 1)]

    async def test_emitted_values_are_snapshots(self, materializer: Materializer) -> None:
        got = await run(
            materializer,
            TimeWindows.of(10),
            [("k", 1), ("k", 2)],
            emit=EmitStrategy.on_window_update(),
        )
        assert got == [
            Windowed("k", 0, 10, [("k", 1)]),  # not changed by the second element
            Windowed("k", 0, 10, [("k", 1), ("k", 2)]),
        ]
        got = await run(
            materializer,
            SessionWindows.with_gap(3),
            [("k", 1), ("k", 2), ("k", 0)],
            emit=EmitStrategy.on_window_update(),
        )
        assert [len(w.value) for w in got] == [1, 2, 3]


class TestOrderCompletionAndDemand:
    """Emission order, completion, failure, back pressure and cancellation."""

    async def test_windows_closing_together_are_ordered_by_end_start_then_key_first_seen(
        self,
        materializer: Materializer,
    ) -> None:
        # Keys first seen in the order z, a, m (not sorted, not by latest arrival).
        data = [("z", 1), ("a", 2), ("m", 3), ("a", 4), ("m", 8), ("z", 9), ("x", 100)]
        got = await run(materializer, TimeWindows.of(10).advance_by(5), data)
        assert bounds(got)[:6] == [
            ("z", -5, 5), ("a", -5, 5), ("m", -5, 5),
            ("z", 0, 10), ("a", 0, 10), ("m", 0, 10),
        ]  # fmt: skip
        # [5, 15): m arrived there first, but z was seen first.
        assert bounds(got)[6:] == [("z", 5, 15), ("m", 5, 15), ("x", 95, 105), ("x", 100, 110)]

    async def test_a_key_is_first_seen_at_its_first_element_added_to_a_window(
        self,
        materializer: Materializer,
    ) -> None:
        # b's first element is late (not added to any window): a is seen first.
        data = [("c", 20), ("b", 1), ("a", 21), ("b", 22)]
        got = await run(materializer, TimeWindows.of(10), data, late=Sink.ignore())
        assert bounds(got) == [("c", 20, 30), ("a", 20, 30), ("b", 20, 30)]

    async def test_completion_emits_every_open_window_in_order_then_completes(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(materializer, SessionWindows.with_gap(100))
        sub.request(10)
        for e in [("b", 50), ("a", 10), ("b", 5), ("a", 60)]:
            pub.send_next(e)
        await settled()
        await sub.expect_no_message(0)
        pub.send_complete()
        got = await sub.expect_next_n(2)
        assert bounds(got) == [("b", 5, 50), ("a", 10, 60)]
        await sub.expect_complete()

    async def test_on_window_update_emits_nothing_at_completion(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10), emit=EmitStrategy.on_window_update())
        sub.request(10)
        pub.send_next(("k", 1))
        assert await sub.expect_next() == Windowed("k", 0, 10, [("k", 1)])
        pub.send_complete()
        await sub.expect_complete()

    async def test_on_failure_nothing_more_is_emitted(self, materializer: Materializer) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(10)
        pub.send_next(("k", 1)).send_next(("k", 2))
        await settled()
        pub.send_error(RuntimeError("boom"))
        err = await sub.expect_error()
        assert str(err) == "boom"

    async def test_empty_stream_completes(self, materializer: Materializer) -> None:
        assert await run(materializer, TimeWindows.of(10), []) == []

    async def test_one_element_closing_many_windows_emits_only_against_demand(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(1)
        for i in range(5):
            await pub.expect_request()
            pub.send_next((f"k{i}", 1))
        await pub.expect_request()
        pub.send_next(("z", 100))  # closes five windows at once
        assert await sub.expect_next() == Windowed("k0", 0, 10, [("k0", 1)])
        await settled()
        await sub.expect_no_message(0)  # nothing beyond demand
        await pub.expect_no_message(0)  # upstream is not pulled while windows are pending
        sub.request(2)
        assert bounds(await sub.expect_next_n(2)) == [("k1", 0, 10), ("k2", 0, 10)]
        await settled()
        await sub.expect_no_message(0)
        await pub.expect_no_message(0)
        sub.request(3)
        assert bounds(await sub.expect_next_n(2)) == [("k3", 0, 10), ("k4", 0, 10)]
        await pub.expect_request()  # nothing pending and demand left: pull
        pub.send_complete()
        assert await sub.expect_next() == Windowed("z", 100, 110, [("z", 100)])
        await sub.expect_complete()

    async def test_upstream_is_not_pulled_without_downstream_demand(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        await settled()
        await pub.expect_no_message(0)
        sub.request(1)
        await pub.expect_request()
        pub.send_complete()
        await sub.expect_complete()

    async def test_downstream_cancel_cancels_upstream(self, materializer: Materializer) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(1)
        pub.send_next(("k", 1))
        sub.cancel()
        await pub.expect_cancellation()

    async def test_completion_waits_for_demand_to_flush(self, materializer: Materializer) -> None:
        pub, sub = probes(materializer, TimeWindows.of(10))
        sub.request(1)
        for i in range(3):
            pub.send_next((f"k{i}", 1))
        pub.send_complete()
        await settled()
        assert await sub.expect_next() == Windowed("k0", 0, 10, [("k0", 1)])
        await settled()
        await sub.expect_no_message(0)  # two windows wait for demand: not completed yet
        sub.request(2)
        assert bounds(await sub.expect_next_n(2)) == [("k1", 0, 10), ("k2", 0, 10)]
        await sub.expect_complete()  # completion needs no demand


class TestSupervision:
    """Supervision of the key, timestamp, zero, aggregate and merge functions."""

    # Hopping windows too (and the bad element first, and one element at a time): a raising
    # key or timestamp there failed with an UnboundLocalError of the undo (found by a review).
    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("hopping", [False, True])
    @pytest.mark.parametrize("which", ["key", "timestamp", "aggregate"])
    async def test_a_raising_function_fails_the_stream_with_that_exception(
        self, which: str, hopping: bool, fast: bool
    ) -> None:
        bad = ("k", 5)
        fns: dict[str, Any] = {
            "key": k0, "timestamp": t1, "zero": lambda: 0, "aggregate": lambda n, e: n + 1,
        }  # fmt: skip
        fns[which] = raising_on(bad, fns[which])
        spec = TimeWindows.of(10).advance_by(5) if hopping else TimeWindows.of(10)
        async with Materializer(fast_paths=fast) as mat:
            for elems in ([("k", 1), bad, ("k", 7)], [bad, ("k", 7)]):
                with pytest.raises(Boom, match="bad element"):
                    await run(mat, spec, elems, **fns)

    @pytest.mark.parametrize("fast", [True, False])
    @pytest.mark.parametrize("hopping", [False, True])
    @pytest.mark.parametrize("first", [False, True])
    @pytest.mark.parametrize("which", ["key", "timestamp", "aggregate"])
    async def test_resume_skips_the_element_entirely(
        self, which: str, first: bool, hopping: bool, fast: bool
    ) -> None:
        bad = ("k", 50)
        fns: dict[str, Any] = {
            "key": k0, "timestamp": t1, "zero": lambda: 0, "aggregate": lambda n, e: n + 1,
        }  # fmt: skip
        fns[which] = raising_on(bad, fns[which])
        spec = TimeWindows.of(10).advance_by(5) if hopping else TimeWindows.of(10)
        flow = (
            Flow[Any]()
            .windowed(spec, **fns)
            .with_attributes(Attributes.supervision_strategy(resuming_decider))
        )
        elems = [bad, ("k", 1), ("k", 5)] if first else [("k", 1), bad, ("k", 5)]
        async with Materializer(fast_paths=fast) as mat:
            got = await Source.from_iterable(elems).via(flow).run_with(Sink.seq(), mat)
        # Stream time unchanged by the skipped element (50 would have made 5 late).
        if hopping:
            assert got == [
                Windowed("k", -5, 5, 1),
                Windowed("k", 0, 10, 2),
                Windowed("k", 5, 15, 1),
            ]
        else:
            assert got == [Windowed("k", 0, 10, 2)]

    async def test_resume_leaves_no_window_changed_when_a_later_window_raises(
        self,
        materializer: Materializer,
    ) -> None:
        # Hopping: the element at 7 is in [0, 10) and [5, 15); aggregate raises on the second.
        def aggregate(acc: list[Any], e: tuple[Any, ...]) -> list[Any]:
            if e == ("k", 7) and acc == []:
                raise Boom("second window")
            return [*acc, e[1]]

        flow = (
            Flow[Any]()
            .windowed(TimeWindows.of(10).advance_by(5), key=k0, timestamp=t1, zero=list,
                      aggregate=aggregate)
            .with_attributes(Attributes.supervision_strategy(resuming_decider))
        )  # fmt: skip
        got = await (
            Source.from_iterable([("k", 1), ("k", 7)]).via(flow).run_with(Sink.seq(), materializer)
        )
        assert got == [Windowed("k", -5, 5, [1]), Windowed("k", 0, 10, [1])]

    async def test_restart_also_clears_all_windows(self, materializer: Materializer) -> None:
        bad = ("k", 8)
        flow = (
            Flow[Any]()
            .windowed(TimeWindows.of(10), key=raising_on(bad, k0), timestamp=t1)
            .with_attributes(Attributes.supervision_strategy(restarting_decider))
        )
        got = await (
            Source.from_iterable([("j", 1), ("k", 2), bad, ("k", 3), ("j", 25), ("k", 4)])
            .via(flow)
            .run_with(Sink.seq(), materializer)
        )
        # Windows before the failure are gone; stream time (25) is kept, so 4 is late.
        assert got == [Windowed("k", 0, 10, [("k", 3)]), Windowed("j", 20, 30, [("j", 25)])]

    async def test_supervision_applies_to_session_merge(self, materializer: Materializer) -> None:
        def merge(a: int, b: int) -> int:
            raise Boom("merge")

        flow = (
            Flow[Any]()
            .windowed(SessionWindows.with_gap(5).grace(50), key=k0, timestamp=t1, zero=lambda: 0,
                      aggregate=lambda n, e: n + 1, merge=merge)
            .with_attributes(Attributes.supervision_strategy(resuming_decider))
        )  # fmt: skip
        got = await (
            Source.from_iterable([("k", 0), ("k", 10), ("k", 5)])
            .via(flow)
            .run_with(Sink.seq(), materializer)
        )
        assert got == [Windowed("k", 0, 0, 1), Windowed("k", 10, 10, 1)]


class TestOnFlowsSubstreamsAndEdges:
    """On a Flow, on substreams, around async boundaries, and edge cases."""

    async def test_windowed_on_a_flow_and_on_substreams(self, materializer: Materializer) -> None:
        flow = Flow[Any]().windowed(TimeWindows.of(10), timestamp=t1, zero=lambda: 0,
                                    aggregate=lambda n, e: n + 1)  # fmt: skip
        data = [("a", 1), ("b", 2), ("a", 12)]
        got = await Source.from_iterable(data).via(flow).run_with(Sink.seq(), materializer)
        assert got == [Windowed(None, 0, 10, 2), Windowed(None, 10, 20, 1)]
        per_key = (
            Source.from_iterable(data)
            .group_by(10, k0)
            .windowed(
                TimeWindows.of(10), timestamp=t1, zero=lambda: 0, aggregate=lambda n, e: n + 1
            )
            .merge_substreams()
        )
        got = await per_key.run_with(Sink.seq(), materializer)
        # Each substream has its own stream time: a's [0, 10) closes at a's 12 only.
        assert sorted(got, key=lambda w: (w.start, w.value)) == [
            Windowed(None, 0, 10, 1),
            Windowed(None, 0, 10, 1),
            Windowed(None, 10, 20, 1),
        ]

    async def test_async_boundaries_around_windowed(self, materializer: Materializer) -> None:
        data = [("k", t) for t in range(0, 40, 3)]
        got = await (
            Source.from_iterable(data)
            .async_boundary()
            .windowed(TimeWindows.of(10), key=k0, timestamp=t1)
            .async_boundary()
            .map(lambda w: (w.start, len(w.value)))
            .run_with(Sink.seq(), materializer)
        )
        assert got == [(0, 4), (10, 3), (20, 3), (30, 4)]

    async def test_a_new_sliding_window_at_the_edge_of_retention_sees_its_first_element(
        self,
        materializer: Materializer,
    ) -> None:
        # size 5, grace 0: at stream time 5 the window [0, 5] of a new element at 5 is open
        # (5 is not > 5) and must hold the element at 0, kept until stream time passes 5.
        got = await run(materializer, SlidingWindows.of(5), [("k", 0), ("j", 5), ("k", 5)])
        assert got == [
            Windowed("k", -5, 0, [("k", 0)]),
            Windowed("k", 0, 5, [("k", 0), ("k", 5)]),  # k was seen before j
            Windowed("j", 0, 5, [("j", 5)]),
        ]

    @pytest.mark.parametrize(
        "spec",
        [
            TimeWindows.of(10),
            TimeWindows.of(10).advance_by(5),
            SlidingWindows.of(5),
            SessionWindows.with_gap(5),
        ],
    )
    async def test_a_custom_aggregate_may_return_none(
        self, materializer: Materializer, spec: Any
    ) -> None:
        # None is an accumulator like any other (e.g. "last value if it was not odd").
        got = await run(
            materializer,
            spec,
            [("k", 1), ("k", 2), ("k", 3)],
            zero=lambda: None,
            aggregate=lambda acc, e: None if e[1] % 2 else e[1],
            merge=lambda a, b: b,
        )
        assert {w.value for w in got} <= {None, 2}
        assert got[-1].value is None

    @pytest.mark.parametrize("boundary", [False, True])
    async def test_batches_from_upstream_wait_while_windows_are_pending(
        self, materializer: Materializer, boundary: bool
    ) -> None:
        # A batch-capable upstream (from_iterable, an async boundary) may hand over many
        # elements at once; after each element that leaves windows pending, the rest of the
        # batch waits for downstream demand.
        data = [("k", t) for t in range(200)]
        src: Any = Source.from_iterable(data)
        if boundary:
            src = src.async_boundary()
        got = await src.windowed(
            TimeWindows.of(10),
            key=k0,
            timestamp=t1,
            emit=EmitStrategy.on_window_update(),
            zero=lambda: 0,
            aggregate=lambda n, e: n + 1,
        ).run_with(Sink.seq(), materializer)
        assert got == [
            Windowed("k", t // 10 * 10, t // 10 * 10 + 10, t % 10 + 1) for t in range(200)
        ]

    async def test_a_late_sink_on_substreams_is_materialized_per_substream(
        self,
        materializer: Materializer,
    ) -> None:
        late: list[Any] = []
        data = [("a", 1), ("b", 2), ("a", 30), ("a", 3), ("b", 40), ("b", 1)]
        got = await (
            Source.from_iterable(data)
            .group_by(4, k0)
            .windowed(TimeWindows.of(10), timestamp=t1, late=Sink.foreach(late.append))
            .merge_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert sorted((w.start, w.value[0][0]) for w in got) == [
            (0, "a"), (0, "b"), (30, "a"), (40, "b"),
        ]  # fmt: skip
        assert sorted(late) == [("a", 3), ("b", 1)]

    @pytest.mark.parametrize(
        ("spec", "stream_time", "t", "late"),
        [
            # Time windows: [0, 10) is closed once stream time >= 10 + grace.
            (TimeWindows.of(10), 10, 5, True),
            (TimeWindows.of(10), 9.5, 5, False),
            (TimeWindows.of(10).grace(2), 12, 5, True),
            (TimeWindows.of(10).grace(2), 11.5, 5, False),
            # Hopping 10 / 5: t = 7 is in [0, 10) and [5, 15): late only once 15 + grace.
            (TimeWindows.of(10).advance_by(5), 14.5, 7, False),
            (TimeWindows.of(10).advance_by(5), 15, 7, True),
            # Sliding: t's own window [t - 5, t] is closed once stream time > t + grace.
            (SlidingWindows.of(5).grace(1), 4, 3, False),
            (SlidingWindows.of(5).grace(1), 4.5, 3, True),
            # Sessions: a new [t, t] is closed once stream time > t + gap + grace.
            (SessionWindows.with_gap(2).grace(1), 6, 3, False),
            (SessionWindows.with_gap(2).grace(1), 6.5, 3, True),
        ],
    )
    async def test_lateness_at_the_exact_boundary(
        self, materializer: Materializer, spec: Any, stream_time: float, t: float, late: bool
    ) -> None:
        late_seen: list[Any] = []
        got = await run(
            materializer,
            spec,
            [("other", stream_time), ("k", t)],
            late=Sink.foreach(late_seen.append),
        )
        assert late_seen == ([("k", t)] if late else [])
        assert any(w.key == "k" for w in got) is not late

    async def test_idle_timer_is_re_armed_for_an_earlier_window(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # grace 10, idle 1, both elements at clock 0 with max timestamp 55: [50, 60) closes
        # at stream time 70 (clock 15), the out-of-order [40, 50) at 60 (clock 5).
        pub, sub = probes(materializer, TimeWindows.of(10).grace(10), idle_timeout=1)
        sub.request(10)
        pub.send_next(("k", 55)).send_next(("k", 47))
        await manual_clock.advance(4.5)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.5)
        assert await sub.expect_next() == Windowed("k", 40, 50, [("k", 47)])
        await manual_clock.advance(9.5)
        await sub.expect_no_message(0)
        await manual_clock.advance(0.5)
        assert await sub.expect_next() == Windowed("k", 50, 60, [("k", 55)])
        pub.send_complete()
        await sub.expect_complete()

    async def test_idle_stream_time_applies_when_the_next_element_arrives(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        # no window open after 5 s; stream time 5 + 20 = 25
        pub, sub, late_seen = await idle_after_first_window(materializer, manual_clock, 20)
        pub.send_next(("k", 12))  # [10, 20) is closed at stream time 25: late
        pub.send_next(("k", 26))
        pub.send_complete()
        assert await sub.expect_next() == Windowed("k", 20, 30, [("k", 26)])
        await sub.expect_complete()
        assert late_seen == [("k", 12)]


class TestMemory:
    """State is freed as windows close; no read-ahead."""

    @pytest.mark.parametrize(
        "spec",
        [
            TimeWindows.of(10),
            TimeWindows.of(10).advance_by(2),
            SlidingWindows.of(10).grace(3),
            SessionWindows.with_gap(3).grace(2),
        ],
    )
    async def test_state_is_freed_as_windows_close(
        self, materializer: Materializer, spec: Any
    ) -> None:
        from reactive._ops.windows import WindowedStage

        stage, logics = capturing(WindowedStage(spec, key=k0, timestamp=t1))
        pub, sub = (
            TestSource.probe()
            .via(Flow.from_graph(stage))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1 << 30)
        sizes = []
        for i in range(2000):
            pub.send_next((f"k{i % 7}", i * 0.5))
            if i % 250 == 249:
                await settled()
                logic = logics[0]
                sizes.append(
                    (
                        len(logic.heap),
                        len(logic.tw),
                        sum(map(len, logic.sessions.values())),
                        sum(map(len, logic.sliding.values())),
                        sum(map(len, logic.buf.values())),
                        len(logic.expiry),
                    )
                )
        pub.send_complete()
        await sub.to_list()
        # Bounded by what a window span holds (7 keys, 2 elements a second), not by the input.
        assert max(max(s) for s in sizes) < 200

    async def test_no_read_ahead_for_a_downstream_asking_one_at_a_time(
        self,
        materializer: Materializer,
    ) -> None:
        consumed: list[Any] = []

        def elements() -> Any:
            for e in [*[(f"k{i}", 1) for i in range(5)], ("z", 100), *[("z", 101)] * 20]:
                consumed.append(e)
                yield e

        sub = (
            Source.from_iterable(elements())
            .windowed(TimeWindows.of(10), key=k0, timestamp=t1)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(1)
        assert await sub.expect_next() == Windowed("k0", 0, 10, [("k0", 1)])
        await settled()
        # Six elements handled (the sixth closed five windows) and one looked ahead by the
        # source: nothing more is read while four windows wait for demand.
        assert len(consumed) <= 7
        sub.cancel()


class TestFastPaths:
    """The tumbling/hopping fast paths (one loop per batch, windows in buckets by start)
    against the general path, which the same stage takes when ``idle_timeout`` is set: an
    idle timeout that never elapses changes no result, so both must emit the same windows
    and late elements, on float sizes and steps (where ``t // step`` rounds) and with an
    aggregate that raises in some of an element's windows under resume or restart."""

    @FAST_PATH_SETTINGS
    @given(case=cases(), restart=st.booleans())
    async def test_the_fast_path_matches_the_general_path(self, case: Any, restart: bool) -> None:
        spec, elems, bad = case
        fast = await _run(spec, elems, bad, fast=True, restart=restart)
        assert fast == await _run(spec, elems, bad, fast=False, restart=restart)

    def test_the_fast_path_is_the_one_taken(self) -> None:
        spec = TimeWindows.of(3).advance_by(1)
        fast = WindowedStage(spec, key=str, timestamp=float).create_logic(None)
        slow = WindowedStage(spec, key=str, timestamp=float, idle_timeout=1e9).create_logic(None)
        assert fast._handle == fast._element_hopping  # type: ignore[attr-defined]
        assert slow._handle == slow._element  # type: ignore[attr-defined]
        tumbling = WindowedStage(TimeWindows.of(3), key=str, timestamp=float).create_logic(None)
        assert tumbling._handle == tumbling._element_tumbling  # type: ignore[attr-defined]


class TestReferenceModel:
    """The operator against the reference model."""

    def test_reference_model_sanity(self) -> None:
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
        self,
        spec: Any,
        elems: list[Elem],
        keyed: bool,
        custom: bool,
        on_update: bool,
        boundaries: bool,
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
        self, spec: Any, elems: list[Elem], on_update: bool
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
