"""Differential tests of the element-at-a-time handler path (issue 19).

The interpreter's event loop and the port actions (``push``/``pull``/``grab``) take the
common states by exact compare before the masked general branches. Random chains of
user-written ``GraphStage``s (a map, a filter that pulls again on a drop, a ``take`` that
completes the stage, a stage that emits every element twice from ``on_pull``, and a first
stage that raises on a chosen element), with and without async boundaries between them,
with the fused fast paths on and off, must give what a Python model computes element by
element. A second test checks that each misuse of a port still fails the stream with the
stage's name and the rule it broke, and a third that a busy chain of custom stages still
yields to the event loop after exactly ``EVENT_LIMIT`` events.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Flow, Keep, KillSwitches, Materializer, PortStateError, Sink, Source
from reactive._impl.interpreter import EVENT_LIMIT
from reactive.stage import (
    FlowShape,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)

Op = tuple[str, int]
OPS = st.one_of(
    st.tuples(st.just("map"), st.integers(1, 3)),
    st.tuples(st.just("filter"), st.integers(2, 4)),
    st.tuples(st.just("take"), st.integers(0, 40)),
    st.tuples(st.just("double"), st.just(0)),
    st.tuples(st.just("async"), st.just(0)),
)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Boom(Exception):
    """The failure injected by the first stage."""


class _Stage(GraphStage[FlowShape]):
    def __init__(self, kind: str, k: int, fail_at: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.k = k
        self.fail_at = fail_at
        self.shape = FlowShape(Inlet(f"{kind}.in"), Outlet(f"{kind}.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _Logic(self)


class _Logic(GraphStageLogic, InHandler, OutHandler):
    """One logic for every kind: its own in and out handler, the textbook shape."""

    def __init__(self, stage: _Stage) -> None:
        super().__init__(stage.shape)
        self.kind = stage.kind
        self.k = stage.k
        self.fail_at = stage.fail_at
        self.in_ = stage.shape.in_
        self.out = stage.shape.out
        self.count = 0
        self.pending: Any = None
        self.finishing = False
        self.set_handlers(self.in_, self.out, self)

    def pre_start(self) -> None:
        if self.kind == "take" and self.k == 0:
            self.complete_stage()

    def on_push(self) -> None:
        x = self.grab(self.in_)
        kind = self.kind
        if kind == "boom":
            i, v = x
            if i == self.fail_at:
                raise Boom(i)
            self.push(self.out, v)
        elif kind == "map":
            self.push(self.out, x * self.k + 1)
        elif kind == "filter":
            if x % self.k == 0:
                self.push(self.out, x)
            else:
                self.pull(self.in_)
        elif kind == "take":
            self.push(self.out, x)
            self.count += 1
            if self.count == self.k:
                self.complete_stage()
        else:  # double: the copy goes out on the next pull
            self.push(self.out, x)
            self.pending = x

    def on_pull(self) -> None:
        if self.pending is not None:
            x, self.pending = self.pending, None
            self.push(self.out, x)
            if self.finishing:
                self.complete_stage()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.pending is None:
            self.complete_stage()
        else:
            self.finishing = True


def model(xs: list[int], ops: list[Op], fail_at: int | None) -> tuple[list[int], bool]:
    """(elements the sink gets, whether the stream fails with Boom) element by element."""
    if any(kind == "take" and k == 0 for kind, k in ops):
        return [], False  # take(0) completes before any element is pulled
    out: list[int] = []
    taken = [0] * len(ops)
    for i, x in enumerate(xs):
        if i == fail_at:
            return out, True
        vals = [x]
        done = False
        for j, (kind, k) in enumerate(ops):
            nxt: list[int] = []
            for v in vals:
                if kind == "map":
                    nxt.append(v * k + 1)
                elif kind == "filter":
                    if v % k == 0:
                        nxt.append(v)
                elif kind == "double":
                    nxt += [v, v]
                elif kind == "take":
                    if taken[j] < k:
                        taken[j] += 1
                        nxt.append(v)
                        done = done or taken[j] == k
                else:  # async
                    nxt.append(v)
            vals = nxt
        out += vals
        if done:
            return out, False
    return out, False


async def run(
    xs: list[int], ops: list[Op], fail_at: int | None, fast_paths: bool
) -> tuple[list[int], bool]:
    src: Any = Source.from_iterable(list(enumerate(xs))).via(
        Flow.from_graph(_Stage("boom", 0, fail_at))
    )
    for kind, k in ops:
        src = src.async_boundary() if kind == "async" else src.via(Flow.from_graph(_Stage(kind, k)))
    got: list[int] = []
    failed = False
    async with Materializer(fast_paths=fast_paths, name="custom") as mat:
        try:
            await asyncio.wait_for(src.run_with(Sink.foreach(got.append), mat), 10)
        except Boom:
            failed = True
    return got, failed


@SETTINGS
@given(
    xs=st.lists(st.integers(0, 20), max_size=80),
    ops=st.lists(OPS, max_size=6),
    fail_at=st.one_of(st.none(), st.integers(0, 79)),
)
async def test_custom_stage_chains_match_the_model(
    xs: list[int], ops: list[Op], fail_at: int | None
) -> None:
    expected, fails = model(xs, ops, fail_at)
    for fast_paths in (True, False):
        got, failed = await run(xs, ops, fail_at, fast_paths)
        if not any(kind == "async" for kind, _ in ops) or not fails:
            if fail_at is None or fails or not failed:
                assert (got, failed) == (expected, fails)
                continue
        # A failure may overtake elements buffered at an async boundary, and a source
        # that read the raising element ahead of a completing take fails the stream: a
        # prefix of the model's result, then the failure.
        assert failed and got == expected[: len(got)]


class _Misuse(GraphStage[FlowShape]):
    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what
        self.shape = FlowShape(Inlet("Misuse.in"), Outlet("Misuse.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MisuseLogic(self)


class _MisuseLogic(GraphStageLogic, InHandler, OutHandler):
    def __init__(self, stage: _Misuse) -> None:
        super().__init__(stage.shape)
        self.what = stage.what
        self.in_ = stage.shape.in_
        self.out = stage.shape.out
        self.set_handlers(self.in_, self.out, self)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.what == "grab twice":
            self.grab(self.in_)
        elif self.what == "push None":
            self.push(self.out, None)
        self.push(self.out, x)
        if self.what == "push twice":
            self.push(self.out, x)

    def on_pull(self) -> None:
        self.pull(self.in_)
        if self.what == "pull twice":
            self.pull(self.in_)


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("grab twice", "Cannot get element from already empty input port"),
        ("push None", "None"),
        ("push twice", "Cannot push port twice, or before it being pulled"),
        ("pull twice", "Cannot pull port twice"),
    ],
)
async def test_port_misuse_fails_the_stream_naming_the_stage(what: str, message: str) -> None:
    stage = Flow.from_graph(_Misuse(what)).named("misuser")
    async with Materializer() as mat:
        with pytest.raises(PortStateError) as info:
            await asyncio.wait_for(
                Source.from_iterable([1, 2]).via(stage).run_with(Sink.seq(), mat), 10
            )
    assert "misuser" in str(info.value) or "_MisuseLogic" in str(info.value)
    assert message in str(info.value)
    assert "Misuse." in str(info.value)  # the port


async def test_a_busy_custom_stage_stream_yields_every_event_limit_events() -> None:
    # One ``Island.execute`` processes at most EVENT_LIMIT events, then the island's task
    # yields. ``Source.repeat -> custom map -> kill switch -> Sink.foreach`` costs exactly
    # six events per element (three pulls, three pushes), so between two steps of another
    # task the stream moves by EVENT_LIMIT / 6 elements (170 or 171): not more (the
    # budget bounds a run), not fewer (no event counted twice, a run ends only when its
    # budget is spent or its queue is empty).
    seen = [0]

    def count(_: int) -> None:
        seen[0] += 1

    async with Materializer() as mat:
        ks, done = (
            Source.repeat(1)
            .via(Flow.from_graph(_Stage("map", 1)))
            .via_mat(KillSwitches.single(), Keep.right)
            .to_mat(Sink.foreach(count), Keep.both)
            .run(mat)
        )
        marks: list[int] = []
        for _ in range(12):
            marks.append(seen[0])
            await asyncio.sleep(0)
        ks.shutdown()
        await asyncio.wait_for(done, 10)
    deltas = [b - a for a, b in itertools.pairwise(marks[3:])]
    per_slice = EVENT_LIMIT / 6
    assert all(int(per_slice) <= d <= int(per_slice) + 1 for d in deltas), deltas
    assert abs(sum(deltas) - len(deltas) * per_slice) <= 1, deltas
