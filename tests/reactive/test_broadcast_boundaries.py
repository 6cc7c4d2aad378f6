"""Differential property tests of ``Broadcast`` and ``UnzipWith`` handing batches straight
to async boundaries (the ``_give`` shortcut of the batch protocol), each output read by its
own ``TestSink`` probe.

A random script of requests and cancellations is played on the outputs' probes, with fast
paths on and off, against a Python model of the junction element by element: an element
goes out once every open output has demand, to every open output (``UnzipWith``: part
``i`` to output ``i``); a cancelled output is skipped from then on; the stage cancels
upstream when every output cancelled. Without boundaries on the outputs what each probe
holds after every step is exactly the model's; with a boundary on every output (they ask
ahead of the probes, up to their buffer) it is a prefix of what the output gets in the
end, never more than the probe asked for. Failures are injected into the source at a
random element (mid-batch) and into the ``UnzipWith`` function.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from reactive import Broadcast, GraphDSL, UnzipWith
from reactive.stage import UniformFanOutShape
from tests.reactive.test_fan_out_batches import BOUNDARY, STEPS, fan_out_graph, play
from tests.reactive.test_junction_batches import INPUTS, SETTINGS, Injected


class SplitFailed(Exception):
    """The failure injected into an ``UnzipWith`` function."""


class BroadcastModel:
    """Broadcast / UnzipWith element by element (``eager_cancel=False``)."""

    def __init__(self, stream: list[int], n: int, part: Any) -> None:
        self.stream = stream
        self.n = n
        self.part = part
        self.pos = 0
        self.demand = [0] * n
        self.cancelled = [False] * n
        self.got: list[list[Any]] = [[] for _ in range(n)]
        self.failed = False

    def step(self, o: int, amount: int) -> None:
        if self.cancelled[o]:
            return
        if amount:
            self.demand[o] += amount
        else:
            self.cancelled[o] = True
        self.advance()

    def advance(self) -> None:
        open_ = [i for i in range(self.n) if not self.cancelled[i]]
        while self.pos < len(self.stream) and not self.failed and open_:
            if any(self.demand[i] == 0 for i in open_):
                return
            x = self.stream[self.pos]
            try:
                parts = [self.part(x, i) for i in range(self.n)]
            except SplitFailed:
                self.failed = True
                return
            for i in open_:
                self.got[i].append(parts[i])
                self.demand[i] -= 1
            self.pos += 1


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 4),
    unzip=st.booleans(),
    bad=st.one_of(st.none(), st.integers(0, 20)),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    steps=STEPS,
    boundary=BOUNDARY,
)
@example(  # the batch given to every boundary at once, one output cancelling midway
    xs=list(range(60)),
    n=3,
    unzip=False,
    bad=None,
    fail_at=None,
    steps=[(0, 40), (1, 40), (2, 40), (1, 0), (0, 5)],
    boundary="out",
)
@example(  # the split raising mid-batch behind boundaries: parts before it go out first
    xs=list(range(40)),
    n=2,
    unzip=True,
    bad=9,
    fail_at=None,
    steps=[(0, 30), (1, 30)],
    boundary="out",
)
async def test_broadcast_probes_match_the_reference(
    xs: list[int],
    n: int,
    unzip: bool,
    bad: int | None,
    fail_at: int | None,
    steps: list[tuple[int, int]],
    boundary: str | None,
) -> None:
    unzip = unzip and n > 1  # UnzipWith needs two outputs at least

    def part(x: int, i: int) -> Any:
        if unzip:
            if x == bad:
                raise SplitFailed(f"on {x}")
            return x * (i + 1)
        return x

    def split(x: int) -> tuple[Any, ...]:
        return tuple(part(x, i) for i in range(n))

    stream = xs if fail_at is None else xs[:fail_at]
    upstream_fails = fail_at is not None and fail_at < len(xs)
    exact = boundary != "out" and not upstream_fails

    def inner(b: Any) -> Any:
        j = b.add(UnzipWith(split, n) if unzip else Broadcast(n))
        return UniformFanOutShape(j.in_, *(j.out(i) for i in range(n)))

    junction = GraphDSL.create(inner)
    everything = BroadcastModel(stream, n, part)
    everything.demand = [len(stream)] * n
    everything.advance()
    routed = everything.got

    for fast_paths in (True, False):
        ref = BroadcastModel(stream, n, part)
        requested = [0] * n

        def check_step(
            k: int,
            got: list[list[Any]],
            ref: BroadcastModel = ref,
            requested: list[int] = requested,
            fast_paths: bool = fast_paths,
        ) -> None:
            o, amount = steps[k]
            if not ref.cancelled[o % n]:
                requested[o % n] += amount
            ref.step(o % n, amount)
            for i in range(n):
                assert len(got[i]) <= requested[i], (fast_paths, k, i)
                if exact and not ref.failed:
                    assert got[i] == ref.got[i], (fast_paths, k, i)
                else:
                    assert got[i] == routed[i][: len(got[i])], (fast_paths, k, i)

        graph = fan_out_graph(junction, xs, fail_at, n, boundary)
        ends = await play(graph, fast_paths, n, steps, check_step)
        # The end: every open output asked for everything.
        full = BroadcastModel(stream, n, part)
        full.cancelled = list(ref.cancelled)
        full.got = [list(g) for g in ref.got]
        full.pos = ref.pos
        full.failed = ref.failed
        full.demand = [1 << 30] * n
        full.advance()
        for i, (got, how) in enumerate(ends):
            if how == "cancelled":
                assert got == routed[i][: len(got)], (fast_paths, i)
            elif full.failed:
                assert got == full.got[i][: len(got)], (fast_paths, i)
                expected: tuple[type[BaseException], ...] = (SplitFailed,)
                if upstream_fails:
                    expected += (Injected,)
                assert isinstance(how, expected), how
            elif upstream_fails:
                assert got == full.got[i][: len(got)], (fast_paths, i)
                assert isinstance(how, Injected), how
            else:
                assert got == full.got[i], (fast_paths, i)
                assert how == "complete", (fast_paths, i, how)
