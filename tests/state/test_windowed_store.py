"""``windowed(..., store=...)``: the open windows kept in a store.

- Differential: with a store (any cache size, every window kind and emit strategy, a late
  sink, an aggregate raising under ``resume``/``restart``) the operator emits exactly
  what the in-memory one emits.
- Restart: a stream over a persistent store aborted (kill switch) after some elements,
  then started again over the rest, emits, across both runs, exactly the windows of one
  uninterrupted run; windows closed but not yet emitted at the abort come out of the
  second run; a window emitted before the abort does not come out again.
- Errors: a value, key or element the store cannot serialize fails the element naming the
  stage and the value; a store of another operator is refused; not a StoreSpec is refused.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    Attributes,
    EmitStrategy,
    Keep,
    KillSwitches,
    Materializer,
    SessionWindows,
    Sink,
    SlidingWindows,
    Source,
    TimeWindows,
    Windowed,
)
from reactive._supervision import restarting_decider, resuming_decider
from reactive.state import BytesStore, StoreContext, Stores
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.state.support import Recording

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

SPECS = st.sampled_from(
    [
        TimeWindows.of(3),
        TimeWindows.of(2.5).grace(1),
        TimeWindows.of(4).advance_by(1),
        TimeWindows.of(1.5).advance_by(0.5).grace(0.7),
        SessionWindows.with_gap(1),
        SessionWindows.with_gap(0.5).grace(2),
        SlidingWindows.of(2),
        SlidingWindows.of(1.5).grace(1),
    ]
)
EMITS = st.sampled_from([EmitStrategy.on_window_close(), EmitStrategy.on_window_update()])

_dirs = itertools.count()


@st.composite
def elements(draw: Any) -> list[tuple[Any, float, int]]:
    t = draw(st.sampled_from([0, 0.5, -7.25]))
    out = []
    for i in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([0, 0.1, 0.25, 1, 2.5]))
        # None: the key of windows without ``key=`` (a value like any other in the store)
        key = draw(st.sampled_from(["a", "b", ("t", 1), 7, None]))
        out.append((key, t - draw(st.sampled_from([0, 0, 0.3, 1, 4])), i))
    return out


def windowed(
    src: Source[Any, Any],
    spec: Any,
    emit: EmitStrategy,
    custom: bool,
    late: list[Any],
    store: Any,
    bad: frozenset[int] = frozenset(),
    seen: list[Any] | None = None,
) -> Source[Any, Any]:
    def key(e: Any) -> Any:
        if seen is not None:
            seen.append(e)
        return e[0]

    def aggregate(acc: tuple[int, int], e: Any) -> tuple[int, int]:
        if e[2] in bad and acc[0] % 2 == 1:  # raises in some of the element's windows
            raise ValueError(f"bad element {e}")
        return (acc[0] + 1, acc[1] + e[2])

    agg: dict[str, Any] = {}
    if custom:
        agg = {"zero": lambda: (0, 0), "aggregate": aggregate}
        if isinstance(spec, SessionWindows):
            agg["merge"] = lambda a, b: (a[0] + b[0], a[1] + b[1])
    return src.windowed(
        spec,
        key=key,
        timestamp=lambda e: e[1],
        emit=emit,
        late=Sink.foreach(late.append),
        store=store,
        **agg,
    )


async def run(
    data: list[Any],
    spec: Any,
    emit: EmitStrategy,
    custom: bool,
    store: Any,
    bad: frozenset[int] = frozenset(),
    restart: bool = False,
) -> tuple[list[Any], list[Any]]:
    late: list[Any] = []
    decider = restarting_decider if restart else resuming_decider
    out = await (
        windowed(Source.from_iterable(data), spec, emit, custom, late, store, bad)
        .with_attributes(Attributes.supervision_strategy(decider))
        .run_with(Sink.seq())
    )
    return out, late


@SETTINGS
@given(
    data=elements(),
    spec=SPECS,
    emit=EMITS,
    custom=st.booleans(),
    cache=st.sampled_from([0, 1, 3, 10_000]),
    bad=st.frozensets(st.integers(0, 40), max_size=3),
    restart=st.booleans(),
)
async def test_a_store_changes_nothing_in_what_is_emitted(
    data: Any, spec: Any, emit: Any, custom: bool, cache: int, bad: Any, restart: bool
) -> None:
    bad = bad if custom else frozenset()
    expected = await run(data, spec, emit, custom, None, bad, restart)
    store = Stores.in_memory("windows", cache_size=cache)
    assert await run(data, spec, emit, custom, store, bad, restart) == expected


async def run_then_abort(
    data: list[Any], spec: Any, emit: EmitStrategy, custom: bool, store: Any
) -> tuple[list[Any], list[Any]]:
    """Run ``data`` then wait (the source stays open), and abort the stream once every
    element was handled and everything pending went out: a crash between two elements."""
    out: list[Any] = []
    late: list[Any] = []
    seen: list[Any] = []
    switch, done = (
        windowed(
            Source.from_iterable(data)
            .concat(Source.never())
            .via_mat(KillSwitches.single(), Keep.right),
            spec,
            emit,
            custom,
            late,
            store,
            seen=seen,
        )
        .to_mat(Sink.foreach(out.append), Keep.both)
        .run(Materializer())
    )
    for _ in range(2000):
        if len(seen) == len(data):
            break
        await asyncio.sleep(0.001)
    assert len(seen) == len(data)
    for _ in range(5):
        await asyncio.sleep(0)
    switch.abort(RuntimeError("crash"))
    with pytest.raises(RuntimeError, match="crash"):
        await done
    return out, late


def assert_only_open_windows_stored(store: Any, spec: Any) -> None:
    """Everything emitted went out before the abort: the store may hold only windows still
    open under its stream time (closed ones were deleted when emitted, or closed with
    ``on_window_update``), and (sliding) elements that an open window could still need."""
    with store.open() as kv:
        records = [(tuple(k), v) for k, v in kv.items()]
    meta = [v for k, v in records if k[0] == "m"]
    if not meta:
        assert records == []  # nothing handled
        return
    now, grace = meta[0][0], spec.grace_period
    for k, v in records:
        if k[0] == "t":
            assert k[2] + spec.size + grace > now, (k, now)
        elif k[0] == "s":
            assert not now > v[0] + spec.gap + grace, (k, v, now)
        elif k[0] == "w":
            assert not now > k[2] + grace, (k, now)
        elif k[0] == "b":
            assert not now > v[0] + spec.size + grace, (k, v, now)


@SETTINGS
@given(
    data=elements(),
    spec=SPECS,
    emit=EMITS,
    custom=st.booleans(),
    cut=st.floats(0, 1),
    cache=st.sampled_from([0, 2, 10_000]),
)
async def test_stopped_and_started_again_over_a_persistent_store_it_emits_as_one_run(
    tmp_path: Path, data: Any, spec: Any, emit: Any, custom: bool, cut: float, cache: int
) -> None:
    expected_out, expected_late = await run(data, spec, emit, custom, None)
    store = Stores.persistent("windows", tmp_path / str(next(_dirs)), cache_size=cache)
    i = int(len(data) * cut)
    out1, late1 = await run_then_abort(data[:i], spec, emit, custom, store)
    assert_only_open_windows_stored(store, spec)
    out2, late2 = await run(data[i:], spec, emit, custom, store)
    assert out1 + out2 == expected_out
    assert late1 + late2 == expected_late


async def test_a_none_accumulator_survives_a_restart(tmp_path: Path) -> None:
    # None is an accumulator like any other: it is kept, not taken for a deleted record.
    store = Stores.persistent("w", tmp_path)

    def nones(src: Source[Any, Any]) -> Source[Any, Any]:
        return src.windowed(
            TimeWindows.of(10),
            key=lambda e: e[0],
            timestamp=lambda e: e[1],
            zero=lambda: None,
            aggregate=lambda acc, e: None if acc is None else acc,
            store=store,
        )

    switch, done = (
        nones(Source.from_iterable([("a", 1)]).concat(Source.never()))
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run()
    )
    await asyncio.sleep(0.05)
    switch.abort(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        await done
    out = await nones(Source.from_iterable([("b", 2), ("a", 30)])).run_with(Sink.seq())
    assert out == [
        Windowed("a", 0, 10, None),
        Windowed("b", 0, 10, None),
        Windowed("a", 30, 40, None),
    ]


async def test_windows_closed_but_not_emitted_when_it_stopped_come_out_after_the_restart(
    tmp_path: Path,
) -> None:
    store = Stores.persistent("w", tmp_path)
    data = [("a", 1), ("b", 2), ("a", 11)]

    def counts() -> Any:
        return dict(key=lambda e: e[0], timestamp=lambda e: e[1], zero=lambda: 0)

    # Nothing is requested downstream: [0, 10) of a and b close but wait to be emitted.
    switch, probe = (
        Source.from_iterable(data)
        .concat(Source.never())
        .via_mat(KillSwitches.single(), Keep.right)
        .windowed(TimeWindows.of(10), aggregate=lambda n, e: n + 1, store=store, **counts())
        .to_mat(TestSink.probe(), Keep.both)
        .run(Materializer())
    )
    probe.request(1)
    first = await probe.expect_next()
    assert (first.key, first.start, first.value) == ("a", 0, 1)
    switch.abort(RuntimeError("crash"))
    await probe.expect_error()
    # Started again: b's [0, 10) (closed, never emitted) first, then the rest; a's
    # [0, 10) (emitted before the stop) not again.
    out = await (
        Source.from_iterable([("b", 12), ("a", 25), ("b", 30)])
        .windowed(TimeWindows.of(10), aggregate=lambda n, e: n + 1, store=store, **counts())
        .run_with(Sink.seq())
    )
    assert [(w.key, w.start, w.value) for w in out] == [
        ("b", 0, 1),
        ("a", 10, 1),
        ("b", 10, 1),
        ("a", 20, 1),
        ("b", 30, 1),
    ]
    # Completion emitted every window: the store keeps only stream time and keys.
    with store.open() as kv:
        assert sorted(k[0] for k in kv) == ["k", "k", "m"]


async def test_tuples_come_back_as_tuples(tmp_path: Path) -> None:
    store = Stores.persistent("w", tmp_path)
    spec = TimeWindows.of(10)
    kw: dict[str, Any] = dict(
        key=lambda e: e[0],
        timestamp=lambda e: e[1],
        zero=lambda: (0, ()),
        aggregate=lambda acc, e: (acc[0] + 1, (*acc[1], e[1])),
        store=store,
    )
    src = Source.from_iterable([(("x", 1), 1.0)]).concat(Source.never())
    switch, done = (
        src.via_mat(KillSwitches.single(), Keep.right)
        .windowed(spec, **kw)
        .to_mat(Sink.ignore(), Keep.both)
        .run(Materializer())
    )
    await asyncio.sleep(0.01)
    switch.abort(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        await done
    out = await Source.from_iterable([(("x", 1), 2.0)]).windowed(spec, **kw).run_with(Sink.seq())
    assert [(w.key, w.value) for w in out] == [(("x", 1), (2, (1.0, 2.0)))]


class Opaque:
    def __repr__(self) -> str:
        return "Opaque()"


async def test_a_value_the_store_cannot_serialize_fails_naming_the_stage_and_value() -> None:
    with pytest.raises(TypeError, match=r"\[windowed\].*store 'w'.*the value \(1, Opaque\(\)\)"):
        await (
            Source.from_iterable([("a", 1)])
            .windowed(
                TimeWindows.of(10),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                zero=lambda: 0,
                aggregate=lambda n, e: (n + 1, Opaque()),
                store=Stores.in_memory("w"),
            )
            .run_with(Sink.seq())
        )


async def test_an_element_a_default_list_cannot_keep_is_skipped_under_resume() -> None:
    out = await (
        Source.from_iterable([("a", 1), ("a", 2, Opaque()), ("a", 3)])
        .windowed(
            TimeWindows.of(10),
            key=lambda e: e[0],
            timestamp=lambda e: e[1],
            store=Stores.in_memory("w"),
        )
        .with_attributes(Attributes.supervision_strategy(resuming_decider))
        .run_with(Sink.seq())
    )
    assert [w.value for w in out] == [[("a", 1), ("a", 3)]]
    with pytest.raises(TypeError, match=r"the element \('a', 2, Opaque\(\)\)"):
        await (
            Source.from_iterable([("a", 2, Opaque())])
            .windowed(
                TimeWindows.of(10),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                store=Stores.in_memory("w"),
            )
            .run_with(Sink.seq())
        )


async def test_a_store_of_other_windows_is_refused(tmp_path: Path) -> None:
    store = Stores.persistent("w", tmp_path)
    await (
        Source.from_iterable([1, 2])
        .windowed(TimeWindows.of(10), timestamp=float, store=store)
        .run_with(Sink.ignore())
    )
    with pytest.raises(ValueError, match=r"holds the windows of TimeWindows.of\(10\)"):
        await (
            Source.from_iterable([1, 2])
            .windowed(TimeWindows.of(5), timestamp=float, store=store)
            .run_with(Sink.ignore())
        )


def test_store_must_be_a_store_spec() -> None:
    with pytest.raises(TypeError, match="windowed: store must be a StoreSpec"):
        Source.single(1).windowed(TimeWindows.of(1), store="w")


async def test_processing_time_windows_reloaded_close_on_the_clock(
    tmp_path: Path, materializer: Materializer, manual_clock: ManualClock
) -> None:
    store = Stores.persistent("w", tmp_path)

    def probes() -> Any:
        return (
            TestSource.probe()
            .windowed(TimeWindows.of(10), key=lambda e: e[0], store=store)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )

    pub, sub = probes()
    sub.request(10)
    await manual_clock.advance(3)
    pub.send_next(("a", "x"))
    await manual_clock.advance(1)
    pub.send_error(RuntimeError("crash"))
    await sub.expect_error()
    # Started again at clock 4: the reloaded window [0, 10) closes on the clock's timer.
    pub, sub = probes()
    sub.request(10)
    await manual_clock.advance(5.9)
    await sub.expect_no_message(0)
    await manual_clock.advance(0.1)
    assert await sub.expect_next() == Windowed("a", 0, 10, [("a", "x")])
    pub.send_next(("b", "y"))
    pub.send_complete()
    assert await sub.expect_next() == Windowed("b", 10, 20, [("b", "y")])
    await sub.expect_complete()


class Restoring(Recording):
    """A changelog-like layer: ``prepare`` waits for ``ready``, then applies the writes
    ``changelog`` recorded (a restore), before the operator may pull."""

    def __init__(self, inner: BytesStore, context: StoreContext, changelog: list[Any]) -> None:
        super().__init__(inner, context, [])
        self.changelog = changelog
        self.ready = asyncio.Event()

    async def _restore(self) -> None:
        await self.ready.wait()
        for entry in self.changelog:
            if entry[0] == "write":
                self.inner.write(entry[1])

    def prepare(self) -> Any:
        return self._restore()


async def test_windows_restored_by_a_layer_before_the_first_element(
    materializer: Materializer,
) -> None:
    changelog: list[Any] = []
    layers: list[Restoring] = []

    def recording(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        return Recording(engine, ctx, changelog)

    def restoring(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        layers.append(Restoring(engine, ctx, changelog))
        return layers[-1]

    spec = Stores.in_memory("w", cache_size=0)

    def sessions(layer: Any) -> Any:
        return (
            TestSource.probe()
            .windowed(
                SessionWindows.with_gap(5),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                store=spec.with_layer(layer),
            )
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )

    pub, sub = sessions(recording)
    sub.request(10)
    for e in [("a", 1), ("b", 2), ("a", 4)]:
        await pub.expect_request()
        pub.send_next(e)
    pub.send_error(RuntimeError("crash"))
    await sub.expect_error()
    # In memory, the store is gone; the layer restores it from what it recorded.
    pub, sub = sessions(restoring)
    sub.request(10)
    await sub.expect_no_message(0.05)
    assert pub.pending_demand == 0  # nothing pulled while restoring
    layers[0].ready.set()
    await pub.expect_request()
    pub.send_next(("a", 8))
    pub.send_complete()
    assert await sub.to_list() == [
        Windowed("b", 2, 2, [("b", 2)]),
        Windowed("a", 1, 8, [("a", 1), ("a", 4), ("a", 8)]),
    ]


async def test_idle_timeout_closes_restored_windows_while_the_input_stays_quiet(
    tmp_path: Path,
) -> None:
    store = Stores.persistent("idle", tmp_path)

    def graph() -> Any:
        return (
            TestSource.probe()
            .windowed(
                TimeWindows.of(10),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                zero=lambda: 0,
                aggregate=lambda n, e: n + 1,
                idle_timeout=1,
                store=store,
            )
            .to_mat(TestSink.probe(), Keep.both)
        )

    async with Materializer(clock=ManualClock()) as mat:
        pub, sub = graph().run(mat)
        sub.request(10)
        pub.send_next(("k", 5))
        await pub.expect_request()
        sub.cancel()  # stops with [0, 10) open
        await pub.expect_cancellation()
    clock = ManualClock()
    async with Materializer(clock=clock) as mat:
        pub, sub = graph().run(mat)
        sub.request(10)
        await pub.expect_request()
        # Idle since the restart (clock 0): from clock 1 on, stream time is 5 + clock, so
        # [0, 10) closes at clock 5, as it would have 5 s after its last element.
        await clock.advance(4.9)
        await sub.expect_no_message(0.01)
        await clock.advance(0.1)
        assert await sub.expect_next() == Windowed("k", 0, 10, 1)
