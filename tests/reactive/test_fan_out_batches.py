"""Differential property tests of the batch paths through ``Partition`` and ``Balance``,
each output read by its own ``TestSink`` probe.

A random script of requests and cancellations is played on the outputs' probes, with fast
paths on and off; after each step the graph is left to settle and what every probe holds
is compared with a Python reference of the junction:

- ``Partition`` dispatches strictly in order: an element goes to the output its function
  picks, is dropped when that output cancelled, and holds back every element after it
  while that output has no demand (no look-ahead). So what each output holds after a step
  is determined by the requests alone, and must equal the reference exactly (a prefix of
  it when an async boundary sits on the outputs, or the source fails: a failure may
  overtake the elements waiting in the stage).
- ``Balance`` gives each element to one output with demand; which one is not part of its
  semantics here (element by element it is the first in the line of outputs that pulled;
  with batches the line is dealt in turns, compared with the element-at-a-time path in
  ``test_balance_fairness.py``). What is checked: every output holds an
  ordered part of the input, never more than it requested, the parts together are exactly
  a prefix of the input (nothing lost, nothing twice), and the stage is live: while input
  remains, every output still open got all it asked for. ``wait_for_all_downstreams``
  holds everything until each output pulled or cancelled.

Failures are injected into the source at a random element (mid-batch) and into the
partition function; sometimes an async boundary sits before the junction or on its
outputs. A third test runs ``Balance`` into worker branches merged again, against the
multiset of a Python reference.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from hypothesis import example, given
from hypothesis import strategies as st

from reactive import (
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    Partition,
    RunnableGraph,
    Source,
)
from reactive.stage import (
    EAGER_TERMINATE_INPUT,
    GraphStage,
    GraphStageLogic,
    InHandler,
    Inlet,
    Shape,
)
from reactive.testkit import TestSink
from tests.reactive.test_junction_batches import (
    BRANCH,
    DEMAND,
    INPUTS,
    SETTINGS,
    Injected,
    Op,
    fan_out_in,
    model,
    partition_graph,
    run,
    source,
)

if TYPE_CHECKING:
    from collections.abc import Callable

#: A script step: (output, amount); amount 0 cancels that output.
STEPS = st.lists(
    st.tuples(st.integers(0, 3), st.one_of(st.just(0), st.integers(1, 40))), max_size=8
)
#: Where an async boundary goes: nowhere, between source and junction, on every output.
BOUNDARY = st.sampled_from([None, "up", "out"])


class PartitionFailed(Exception):
    """The failure injected into a ``Partition`` function."""


async def settle(probes: list[Any]) -> None:
    """Let the graph run until nothing reaches the probes for a while."""
    seen = -1
    quiet = 0
    for _ in range(400):
        await asyncio.sleep(0)
        n = sum(len(p._events.items) for p in probes)
        if n == seen:
            quiet += 1
            if quiet >= 12:
                return
        else:
            seen, quiet = n, 0


def held(probe: Any) -> list[Any]:
    """The elements a probe received so far (its events are left in place)."""
    return [v for kind, v in probe._events.items if kind == "next"]


async def read_to_end(probe: Any) -> tuple[list[Any], Any]:
    """Every element the probe received and how it ended (it asked for everything)."""
    out: list[Any] = []
    while True:
        kind, v = await probe._next_event("an element or termination")
        if kind == "next":
            out.append(v)
        else:
            return out, ("complete" if kind == "complete" else v)


def fan_out_graph(junction: Any, xs: list[int], fail_at: int | None, n: int, boundary: Any) -> Any:
    """source (failing at ``fail_at``) -> junction -> one probe per output."""

    def blueprint(b: Any, *sinks: Any) -> Any:
        src = source(xs, fail_at)
        if boundary == "up":
            src = src.async_boundary()
        j = b.add(junction)
        b.add(src).out >> j.in_
        for i, s in enumerate(sinks):
            if boundary == "out":
                j.out(i) >> b.add(Flow().async_boundary()) >> s.in_
            else:
                j.out(i) >> s.in_
        return ClosedShape

    probes = [TestSink.probe() for _ in range(n)]
    return RunnableGraph.from_graph(
        GraphDSL.create(blueprint, *probes, combine=lambda *ps: list(ps))
    )


async def play(
    graph: Any,
    fast_paths: bool,
    n: int,
    steps: list[tuple[int, int]],
    check_step: Callable[[int, list[list[Any]]], None],
) -> list[tuple[list[Any], Any]]:
    """Run ``graph``, play ``steps`` on its probes (``check_step(k, held)`` after each
    settles), then have every open output ask for everything and read it to its end.
    Returns each output's elements and end ("cancelled" for those cancelled)."""
    mat = Materializer(fast_paths=fast_paths, name="fan-out-batches")
    async with mat:
        probes = graph.run(mat)
        cancelled = [False] * n
        for k, (o, amount) in enumerate(steps):
            o %= n
            if not cancelled[o]:
                if amount:
                    probes[o].request(amount)
                else:
                    probes[o].cancel()
                    cancelled[o] = True
            await settle(probes)
            check_step(k, [held(p) for p in probes])
        for i in range(n):
            if not cancelled[i]:
                probes[i].request(1 << 30)
        ends = [
            (held(probes[i]), "cancelled") if cancelled[i] else await read_to_end(probes[i])
            for i in range(n)
        ]
        for _ in range(50):
            if mat.running_tasks == 0:
                break
            await asyncio.sleep(0)
        assert mat.running_tasks == 0
    return ends


class PartitionModel:
    """Partition element by element: strict order, no look-ahead."""

    def __init__(self, stream: list[int], n: int, where: Callable[[int], int], resume: bool):
        self.stream = stream
        self.n = n
        self.where = where
        self.resume = resume
        self.pos = 0
        self.demand = [0] * n
        self.cancelled = [False] * n
        self.got: list[list[int]] = [[] for _ in range(n)]
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
        while self.pos < len(self.stream) and not self.failed and not all(self.cancelled):
            x = self.stream[self.pos]
            try:
                o = self.where(x)
                if not 0 <= o < self.n:
                    raise IndexError(o)
            except (PartitionFailed, IndexError):
                if self.resume:
                    self.pos += 1
                    continue
                self.failed = True
                return
            if self.cancelled[o]:
                self.pos += 1
            elif self.demand[o] > 0:
                self.got[o].append(x)
                self.demand[o] -= 1
                self.pos += 1
            else:
                return


def partition_where(n: int, modulus: int, bad: tuple[int, str] | None) -> Callable[[int], int]:
    """The partition function of the scenarios: ``(x // modulus) % n``, except that the
    element ``bad[0]`` raises ``PartitionFailed`` (``bad[1] == "raise"``) or is routed out
    of bounds (``"index"``)."""

    def where(x: int) -> int:
        if bad is not None and x == bad[0]:
            if bad[1] == "raise":
                raise PartitionFailed(f"on {x}")
            return n  # out of bounds
        return (x // modulus) % n

    return where


async def check_partition_scenario(
    stream: list[int],
    n: int,
    where: Callable[[int], int],
    resume: bool,
    steps: list[tuple[int, int]],
    *,
    exact: bool,
    upstream_fails: bool,
    upstream_error: type[BaseException],
    graph_of: Callable[[Any], Any],
) -> None:
    """The partition scenario, with fast paths on and off: ``Partition(n, where)`` (resuming
    if ``resume``) in the graph ``graph_of(partition)`` over the elements ``stream`` (that
    the source emits before it ends, failing with ``upstream_error`` if ``upstream_fails``);
    ``steps`` are played on its output probes and what each holds is compared after every
    step with :class:`PartitionModel` (``exact``ly, or as a prefix of what each output gets
    when all ask for everything), then every open output asks for everything and its
    elements and end are checked against the model."""

    part = partition_graph(n, where, resume)

    # What each output gets when every one asks for everything: what it gets otherwise,
    # with a failure, or with boundaries asking ahead of the probes, is a prefix of it.
    everything = PartitionModel(stream, n, where, resume)
    everything.demand = [len(stream)] * n
    everything.advance()
    routed = everything.got

    for fast_paths in (True, False):
        ref = PartitionModel(stream, n, where, resume)

        def check_step(
            k: int, got: list[list[Any]], ref: PartitionModel = ref, fast_paths: bool = fast_paths
        ) -> None:
            o, amount = steps[k]
            ref.step(o % n, amount)
            for i in range(n):
                if exact:
                    assert got[i] == ref.got[i], (fast_paths, k, i)
                else:
                    assert got[i] == routed[i][: len(got[i])], (fast_paths, k, i)

        ends = await play(graph_of(part), fast_paths, n, steps, check_step)
        # The end: every open output asked for everything.
        full = PartitionModel(stream, n, where, resume)
        full.cancelled = list(ref.cancelled)
        full.got = [list(g) for g in ref.got]
        full.pos = ref.pos
        full.failed = ref.failed
        full.demand = [1 << 30] * n
        full.advance()
        for i, (got, how) in enumerate(ends):
            if how == "cancelled":
                assert got == routed[i][: len(got)]
            elif full.failed:
                assert got == full.got[i][: len(got)]
                # (A source failing after the bad element may overtake it.)
                expected: tuple[type[BaseException], ...] = (PartitionFailed, IndexError)
                if upstream_fails:
                    expected += (upstream_error,)
                assert isinstance(how, expected), how
            elif upstream_fails:
                assert got == full.got[i][: len(got)]
                assert isinstance(how, upstream_error), (fast_paths, how)
            else:
                assert got == full.got[i], (fast_paths, i)
                assert how == "complete"


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 3),
    modulus=st.sampled_from([1, 2, 5]),
    bad=st.one_of(st.none(), st.tuples(st.integers(0, 20), st.sampled_from(["raise", "index"]))),
    resume=st.booleans(),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    steps=STEPS,
    boundary=BOUNDARY,
)
@example(  # one output waits while the other has demand: the hold-back, then a cancel
    xs=[0, 1, 2, 4, 3, 5, 6],
    n=2,
    modulus=1,
    bad=None,
    resume=False,
    fail_at=None,
    steps=[(0, 10), (1, 1), (0, 0), (1, 1)],
    boundary=None,
)
@example(  # the function raising mid-batch, the stage stopping
    xs=list(range(30)),
    n=2,
    modulus=2,
    bad=(7, "raise"),
    resume=False,
    fail_at=None,
    steps=[(0, 20), (1, 20)],
    boundary=None,
)
async def test_partition_probes_match_the_reference(
    xs: list[int],
    n: int,
    modulus: int,
    bad: tuple[int, str] | None,
    resume: bool,
    fail_at: int | None,
    steps: list[tuple[int, int]],
    boundary: str | None,
) -> None:
    stream = xs if fail_at is None else xs[:fail_at]
    await check_partition_scenario(
        stream,
        n,
        partition_where(n, modulus, bad),
        resume,
        steps,
        exact=boundary != "out" and not (fail_at is not None and fail_at < len(xs)),
        upstream_fails=fail_at is not None and fail_at < len(xs),
        upstream_error=Injected,
        graph_of=lambda part: fan_out_graph(part, xs, fail_at, n, boundary),
    )


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 3),
    wait_all=st.booleans(),
    eager=st.booleans(),
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    steps=STEPS,
    boundary=BOUNDARY,
)
async def test_balance_probes_keep_its_invariants(
    xs: list[int],
    n: int,
    wait_all: bool,
    eager: bool,
    fail_at: int | None,
    steps: list[tuple[int, int]],
    boundary: str | None,
) -> None:
    tagged = list(enumerate(xs))  # (position, value): parts are checked by position
    stream = tagged if fail_at is None else tagged[:fail_at]
    upstream_fails = fail_at is not None and fail_at < len(xs)
    taken: dict[bool, list[int]] = {True: [], False: []}

    for fast_paths in (True, False):
        requested = [0] * n
        cancelled = [False] * n
        pulled = [False] * n  # requested or cancelled once (wait_for_all_downstreams)

        def check_step(
            k: int,
            got: list[list[Any]],
            fast_paths: bool = fast_paths,
            requested: list[int] = requested,
            cancelled: list[bool] = cancelled,
            pulled: list[bool] = pulled,
        ) -> None:
            o, amount = steps[k]
            o %= n
            if not cancelled[o]:
                pulled[o] = True
                if amount:
                    requested[o] += amount
                else:
                    cancelled[o] = True
            for i in range(n):
                assert len(got[i]) <= requested[i]
                assert [p for p, _ in got[i]] == sorted(p for p, _ in got[i])
            union = sorted(e for g in got for e in g)
            assert len(set(union)) == len(union)  # nothing twice
            if boundary == "out":
                # The boundaries take elements ahead of their probes' requests, and what
                # a cancelled one held is gone with it: only "nothing made up" holds.
                assert set(union) <= set(stream)
                return
            assert union == stream[: len(union)]  # a prefix: nothing lost
            taken[fast_paths].append(len(union))
            if wait_all and not all(pulled):
                assert union == []
            elif eager and any(cancelled):
                pass  # eager_cancel: the first cancellation ended the stage
            elif len(union) < len(stream) and not upstream_fails:
                # Live: with input left, every open output got all it asked for.
                for i in range(n):
                    if not cancelled[i]:
                        assert len(got[i]) == requested[i], (fast_paths, k, i)

        junction = Balance(n, wait_for_all_downstreams=wait_all, eager_cancel=eager)
        graph = fan_out_graph(junction, tagged, fail_at, n, boundary)
        ends = await play(graph, fast_paths, n, steps, check_step)
        union = sorted(e for got, _ in ends for e in got)
        hows = [how for _, how in ends if how != "cancelled"]
        if boundary == "out":
            assert set(union) <= set(stream) and len(set(union)) == len(union)
            if len(hows) == n and not upstream_fails:
                assert union == stream  # no output cancelled: nothing lost
        else:
            assert union == stream[: len(union)]
        ended_early = eager and len(hows) < n  # eager_cancel: cancelled by the first
        if ended_early:
            assert all(how == "complete" or isinstance(how, Injected) for how in hows), hows
        elif hows and upstream_fails:
            assert all(isinstance(how, Injected) for how in hows), hows
        elif hows:
            assert hows == ["complete"] * len(hows)
            if boundary != "out":
                assert union == stream  # an open output was left: it took the rest
    if boundary != "out" and not upstream_fails:
        assert taken[True] == taken[False]  # the same amount taken after every step


class _PullBothCancelSecond(GraphStage[Shape]):
    """Two inlets, no outlet: at start pulls both, then cancels the second at once (its
    pull is still queued when the first one's arrives), and collects the first."""

    def __init__(self, got: list[Any], done: asyncio.Future[None]) -> None:
        self.got = got
        self.done = done
        self.shape = Shape((Inlet("Collect.in0"), Inlet("Collect.in1")), ())

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        stage = self
        in0, in1 = self.shape.inlets

        class Logic(GraphStageLogic, InHandler):
            def __init__(self) -> None:
                super().__init__(stage.shape)
                self.set_handler(in0, self)
                self.set_handler(in1, EAGER_TERMINATE_INPUT)

            def pre_start(self) -> None:
                self.pull(in0)
                self.pull(in1)
                self.cancel(in1)

            def on_push(self) -> None:
                stage.got.append(self.grab(in0))
                self.pull(in0)

            def on_upstream_finish(self) -> None:
                stage.done.set_result(None)
                self.complete_stage()

        return Logic()


async def test_partition_serves_when_an_output_cancels_with_its_pull_queued() -> None:
    """A Partition dispatch waits while another output's pull is queued; when that output
    cancels instead (its pull is dropped, its cancellation delivered), the wait ends: the
    waiting output still gets its elements (those for the cancelled one are dropped)."""
    for fast_paths in (True, False):
        got: list[Any] = []
        async with Materializer(fast_paths=fast_paths, name="partition-cancel") as mat:
            done = asyncio.get_running_loop().create_future()

            def blueprint(b: Any, got: list[Any] = got, done: Any = done) -> Any:
                p = b.add(Partition(2, lambda x: x % 2))
                c = b.add(_PullBothCancelSecond(got, done))
                b.add(Source.from_iterable(range(10))).out >> p.in_
                p.out(0) >> c.inlets[0]
                p.out(1) >> c.inlets[1]
                return ClosedShape

            RunnableGraph.from_graph(GraphDSL.create(blueprint)).run(mat)
            await asyncio.wait_for(done, 5)
        assert got == [0, 2, 4, 6, 8]


async def test_balance_hands_what_a_cancelled_output_was_pulled_for_to_the_next() -> None:
    """Balance pulled upstream for an output that cancels before the elements arrive:
    they wait, and go to the next output that pulls (nothing is lost), as element by
    element."""
    from reactive.testkit import TestSource

    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths, name="balance-leftover") as mat:

            def blueprint(b: Any, src: Any, s0: Any, s1: Any) -> Any:
                bal = b.add(Balance(2))
                src.out >> b.add(Flow().async_boundary()) >> bal.in_
                bal.out(0) >> s0.in_
                bal.out(1) >> s1.in_
                return ClosedShape

            graph = GraphDSL.create(
                blueprint, TestSource.probe(), TestSink.probe(), TestSink.probe()
            )
            pub, a, b = RunnableGraph.from_graph(graph).run(mat)
            a.request(3)
            await pub.expect_request()
            a.cancel()
            await settle([a, b])
            for x in (10, 11, 12):
                pub.send_next(x)
            await settle([a, b])
            assert held(a) == []
            b.request(5)
            await b.expect_next(10, 11, 12)
            pub.send_next(13)
            pub.send_complete()
            await b.expect_next(13)
            await b.expect_complete()


@SETTINGS
@given(
    xs=INPUTS,
    n=st.integers(1, 3),
    ops=BRANCH,
    fail_at=st.one_of(st.none(), st.integers(0, 120)),
    demand=DEMAND,
    cancel=st.booleans(),
    boundary=st.booleans(),
)
async def test_balance_worker_branches_match_python(
    xs: list[int],
    n: int,
    ops: list[Op],
    fail_at: int | None,
    demand: list[int],
    cancel: bool,
    boundary: bool,
) -> None:
    """``Balance(n)`` into ``n`` workers running the same operators (each element to one
    of them; per element only: map, filter, boundaries, buffers), merged again: the output
    is the reference's as a multiset (part of it when the stream fails or is cancelled)."""
    ops = [op for op in ops if op[0] in ("map", "filter", "async", "buffer")]
    stream = xs if fail_at is None else xs[:fail_at]
    expected = sorted(model(stream, ops))

    make = fan_out_in(xs, fail_at, [ops] * n, boundary, fan_out=Balance)
    results = [await run(make, fast_paths, demand, cancel) for fast_paths in (True, False)]
    for tagged, end in results:
        out = [v for _, v in tagged]  # which worker took an element is not compared
        if end == "complete":
            assert sorted(out) == expected
        else:
            rest = list(expected)
            for v in out:
                rest.remove(v)  # raises if v is not (or no longer) in the reference
            if end == "cancelled":
                assert cancel and len(out) == sum(demand[:-1])
            else:
                assert isinstance(end, Injected), end
    ends = [end for _, end in results]
    if "complete" in ends and fail_at is None:
        assert ends == ["complete", "complete"]


async def _parity_runs(fast_paths: bool) -> int:
    """How many runs of one parity the merged output of ``Partition(2, parity) ->
    Merge(2)`` over 10,000 elements comes in (asked for all at once)."""
    import itertools

    def blueprint(b: Any, sink: Any) -> Any:
        p = b.add(Partition(2, lambda x: x & 1))
        m = b.add(Merge(2))
        b.add(Source.from_iterable(range(10_000))).out >> p.in_
        p.out(0) >> m.in_(0)
        p.out(1) >> m.in_(1)
        m.out >> sink.in_
        return ClosedShape

    async with Materializer(fast_paths=fast_paths, name="partition-runs") as mat:
        probe = RunnableGraph.from_graph(GraphDSL.create(blueprint, TestSink.probe())).run(mat)
        out, end = await read_to_end(probe.request(1 << 30))
    assert end == "complete"
    assert sorted(out) == list(range(10_000))
    return len(list(itertools.groupby(x & 1 for x in out)))


async def test_partition_into_merge_moves_batches_not_elements() -> None:
    """Both outputs of a Partition pulled together (by a Merge) are served together: the
    elements cross in batches (a few hundred runs of one parity), not one at a time in
    turn (10,000 runs), which is what element by element does."""
    assert await _parity_runs(fast_paths=False) == 10_000
    assert await _parity_runs(fast_paths=True) < 100


@SETTINGS
@given(
    seeds=st.lists(st.integers(0, 12), min_size=1, max_size=5),
    limit=st.integers(0, 15),
    extra=st.integers(0, 3),
    boundary=st.booleans(),
)
async def test_partition_feedback_cycles_match_python(
    seeds: list[int], limit: int, extra: int, boundary: bool
) -> None:
    """A cycle through Merge and Partition: each seed goes round, incremented, through a
    buffered feedback edge (Partition's output 1) until it reaches ``limit``, then leaves
    by output 0. The buffer holds every element circulating at once, so the loop is live
    in both modes; the probe asks for exactly one result per seed, then cancels."""
    from reactive import OverflowStrategy

    expected = sorted((i, max(s, limit)) for i, s in enumerate(seeds))

    def make() -> Any:
        def blueprint(b: Any, out: Any) -> Any:
            merge = b.add(Merge(2))
            part = b.add(Partition(2, lambda t: 0 if t[1] >= limit else 1))
            b.add(Source.from_iterable(list(enumerate(seeds)))) >> merge.in_(0)
            merge.out >> part.in_
            part.out(0) >> out
            feedback = Flow().map(lambda t: (t[0], t[1] + 1))
            if boundary:
                feedback = feedback.async_boundary()
            feedback = feedback.buffer(len(seeds) + extra, OverflowStrategy.backpressure)
            part.out(1) >> b.add(feedback) >> merge.in_(1)
            return ClosedShape

        return RunnableGraph.from_graph(GraphDSL.create(blueprint, TestSink.probe()))

    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths, name="partition-cycle") as mat:
            probe = make().run(mat)
            probe.request(len(seeds))
            out = await probe.expect_next_n(len(seeds))
            await settle([probe])
            assert held(probe) == []  # nothing beyond: every seed left the loop
            probe.cancel()
        assert sorted(out) == expected
