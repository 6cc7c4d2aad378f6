"""``Balance`` deals out in turn with the fast paths on, as element by element.

Element by element (fast paths off: Akka's Balance) the outputs that pulled wait in a FIFO
line, each element goes to the first one in it, and an output that wants more pulls again
and joins the back: outputs with demand are served in turn, from the first that pulled.
With the fast paths a batch is dealt out in that order (``_BalanceBatchLogic``). The
differential test runs one graph with the fast paths on and off and compares what each
output received, element for element, and how each output ended.

What compares exactly: outputs whose consumers are in Balance's island and ask again at
once (``Sink.seq``, a probe with demand left, ``take``, a map or a filter into
``Sink.seq``), when they take as long to ask again in both paths. Element by element each
operator of a chain is a stage of its own, so a longer chain asks again later and gets
fewer turns next to a bare sink; with the fast paths it is one fused stage. So chains of
more than one operator are compared exactly only when every output is such a chain of the
same length, and of maps only (behind a filter, element by element a dropped element is
asked again for at once, a kept one after the stages behind it: the turns depend on the
data). Behind an async boundary or a ``map_async(1)`` worker the turns depend on when the
other side asks, in both paths: only what holds either way is checked (each output's
elements in order, nothing twice, nothing lost unless an output failed).

Failures and cancellations: a chain's first operator raises on one element; with the fast
paths the rest of the share that output held is dropped with it (a share cannot be taken
back), which element by element goes to the other outputs; so from the first failing
element on, only the elements before it are compared. ``take(k)`` cancels its output
after ``k`` elements; a probe cancels in its script; with ``eager_cancel`` the first
cancellation ends the stage, at a moment that is the island's timing: elements before it
are compared.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reactive import (
    Balance,
    ClosedShape,
    Flow,
    GraphDSL,
    Materializer,
    RunnableGraph,
    Sink,
    Source,
)
from reactive.testkit import TestSink

#: A big request: "everything".
ALL = 1 << 30


class Injected(Exception):
    """The failure of a chain's map on its ``fail_at`` element."""


@dataclass(frozen=True)
class Out:
    """The consumer of one Balance output.

    ``kind``: "seq" (``Sink.seq``); "chain" (a recording map, or with ``drops`` a
    recording filter dropping one element in three, raising on ``fail_at``; then
    ``ops - 1`` maps; into ``Sink.seq``); "probe" (a ``TestSink`` probe asking for
    ``request`` before the stream starts); "take" (``take(take)`` into ``Sink.seq``);
    "async" (an async boundary into ``Sink.seq``); "map_async" (``map_async(1)`` into
    ``Sink.seq``).
    """

    kind: str
    ops: int = 1
    drops: bool = False
    fail_at: int | None = None
    request: int = 0
    take: int = 0

    def depths(self) -> tuple[int, int] | None:
        """Stages between Balance and the sink element by element and with the fast
        paths; None where the turns depend on another island or task."""
        if self.kind in ("seq", "probe"):
            return 0, 0
        if self.kind == "chain":
            return self.ops, 1
        if self.kind == "take":
            return 1, 1
        return None


#: The consumers whose turns are the island's own (compared exactly, see ``exact``)...
IN_ISLAND = st.one_of(
    st.just(Out("seq")),
    st.builds(
        Out,
        st.just("chain"),
        ops=st.sampled_from([1, 1, 2, 3]),
        drops=st.booleans(),
        fail_at=st.one_of(st.none(), st.none(), st.integers(0, 80)),
    ),
    st.builds(Out, st.just("probe"), request=st.one_of(st.integers(1, 40), st.just(ALL))),
    st.builds(Out, st.just("take"), take=st.integers(0, 30)),
)
#: ... and those whose turns depend on another island or task.
OUTSIDE = st.sampled_from([Out("async"), Out("map_async")])
OUTS = st.one_of(IN_ISLAND, IN_ISLAND, IN_ISLAND, OUTSIDE)
#: Source sizes: small ones, and some that take several batches of ``Sink.seq`` demand.
SIZES = st.one_of(st.integers(0, 60), st.sampled_from([1000, 2500]))
#: A probe script: (which probe, how many more; 0 cancels it), after the stream settled.
STEPS = st.lists(
    st.tuples(st.integers(0, 3), st.one_of(st.just(0), st.integers(1, 30))), max_size=4
)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def exact(outs: list[Out]) -> bool:
    """Whether the two paths must agree element for element (see the module)."""
    depths = [o.depths() for o in outs]
    if any(d is None for d in depths):
        return False
    if any(o.kind == "chain" and o.drops and o.ops > 1 for o in outs):
        # Element by element a dropped element is asked again for at once, a kept one
        # only after it went through the stages behind: the turns depend on the data.
        return False
    plain = [d[0] for d in depths if d is not None]
    fast = [d[1] for d in depths if d is not None]
    return plain == fast or (len(set(plain)) == 1 and len(set(fast)) == 1)


def consumer(out: Out, rec: list[int]) -> Flow[Any, Any, Any] | None:
    """What sits between Balance and the sink of ``out`` (None: nothing)."""
    if out.kind == "chain":
        fail_at = out.fail_at

        def record(x: int) -> int:
            rec.append(x)
            if x == fail_at:
                raise Injected(x)
            return x

        flow: Flow[Any, Any, Any] = (
            Flow().filter(lambda x: record(x) % 3 != 1) if out.drops else Flow().map(record)
        )
        for _ in range(out.ops - 1):
            flow = flow.map(lambda x: x + 0)
        return flow
    if out.kind == "take":
        return Flow().take(out.take)
    if out.kind == "async":
        return Flow().async_boundary()
    if out.kind == "map_async":

        async def same(x: int) -> int:
            return x

        return Flow().map_async(1, same)
    return None


def graph(
    n: int, outs: list[Out], wait_all: bool, eager: bool, recs: list[list[int]]
) -> RunnableGraph[Any]:
    """``range(n)`` -> Balance -> one consumer per output; materializes each output's
    sink value (a probe, or the future of ``Sink.seq``)."""

    def blueprint(b: Any, *sinks: Any) -> Any:
        bal = b.add(Balance(len(outs), wait_for_all_downstreams=wait_all, eager_cancel=eager))
        b.add(Source.from_iterable(range(n))).out >> bal.in_
        for i, (out, sink) in enumerate(zip(outs, sinks, strict=True)):
            flow = consumer(out, recs[i])
            if flow is None:
                bal.out(i) >> sink.in_
            else:
                bal.out(i) >> b.add(flow) >> sink.in_
        return ClosedShape

    sinks = [TestSink.probe() if o.kind == "probe" else Sink.seq() for o in outs]
    return RunnableGraph.from_graph(
        GraphDSL.create(blueprint, *sinks, combine=lambda *ms: list(ms))
    )


def held(probe: Any) -> list[Any]:
    """The elements a probe received so far (its events are left in place)."""
    return [v for kind, v in probe._events.items if kind == "next"]


async def settle(probes: list[Any], futures: list[Any]) -> None:
    """Let the graph run until every ``Sink.seq`` ended and nothing reaches the probes
    for a while (nothing moves any more: the probes' demand is used up)."""
    seen = -1
    quiet = 0
    for _ in range(20_000):
        await asyncio.sleep(0)
        n = sum(len(p._events.items) for p in probes)
        if n == seen and all(f.done() for f in futures):
            quiet += 1
            if quiet >= 12:
                return
        else:
            seen, quiet = n, 0
    raise AssertionError("the graph did not settle")


async def read_to_end(probe: Any) -> tuple[list[Any], str]:
    """Every element the probe received and how it ended (it asked for everything)."""
    out: list[Any] = []
    while True:
        kind, v = await probe._next_event("an element or termination", 10.0)
        if kind == "next":
            out.append(v)
        else:
            return out, ("complete" if kind == "complete" else type(v).__name__)


Outcome = tuple[list[list[list[int]]], list[tuple[list[int] | None, str]]]


async def run(
    fast: bool,
    n: int,
    outs: list[Out],
    wait_all: bool,
    eager: bool,
    steps: list[tuple[int, int]],
) -> Outcome:
    """Run the graph, let it settle, play ``steps`` on the probes (settling after each),
    then let each open probe in turn ask for everything and read to its end. Returns
    what each output had received after the start and after each step, and what each
    received in all and how it ended ("complete", "cancelled", or the failure's type
    name). What a chain output received is what its first operator saw; a failed
    ``Sink.seq``'s is None (not known)."""
    recs: list[list[int]] = [[] for _ in outs]
    probe_at = [i for i, o in enumerate(outs) if o.kind == "probe"]
    async with Materializer(fast_paths=fast, name=f"balance-fairness-{fast}") as mat:
        mats = graph(n, outs, wait_all, eager, recs).run(mat)
        probes = [mats[i] for i in probe_at]
        futures = [m for i, m in enumerate(mats) if i not in probe_at]
        for i in probe_at:
            mats[i].request(outs[i].request)  # before the stream starts: at its pre_start

        def now() -> list[list[int]]:
            return [
                held(m) if o.kind == "probe" else list(recs[i])
                for i, (o, m) in enumerate(zip(outs, mats, strict=True))
            ]

        await settle(probes, futures)
        seen = [now()]
        cancelled: set[int] = set()
        for which, amount in steps:
            if not probe_at:
                break
            i = probe_at[which % len(probe_at)]
            if i in cancelled:
                continue
            if amount:
                mats[i].request(amount)
            else:
                mats[i].cancel()
                cancelled.add(i)
            await settle(probes, futures)
            seen.append(now())
        ends: list[tuple[list[int] | None, str]] = []
        for i, (o, m) in enumerate(zip(outs, mats, strict=True)):
            if o.kind == "probe":
                if i in cancelled:
                    ends.append((held(m), "cancelled"))
                else:
                    # One probe at a time (a request from here runs the island at once
                    # with the fast paths, and waits for its task without them).
                    m.request(ALL)
                    ends.append(await read_to_end(m))
                continue
            try:
                got = await asyncio.wait_for(m, 10)
            except Exception as exc:
                # (What a failed ``Sink.seq`` had is not known; a chain's map saw it.)
                ends.append((recs[i] if o.kind == "chain" else None, type(exc).__name__))
            else:
                ends.append((recs[i] if o.kind == "chain" else got, "complete"))
        for _ in range(100):
            if mat.running_tasks == 0:
                break
            await asyncio.sleep(0)
        assert mat.running_tasks == 0
    return seen, ends


def check_either_way(n: int, outs: list[Out], eager: bool, outcome: Outcome) -> None:
    """What holds in either path: each output's elements in order, none twice, none made
    up; when no output failed nothing is lost (the elements taken are a prefix of the
    input), and all of it is taken when an output asks to the end (and ``eager_cancel``
    did not end the stage at a cancellation)."""
    _, ends = outcome
    for got, _how in ends:
        assert got is None or got == sorted(set(got)), got
    union = sorted(x for got, _ in ends for x in got or ())
    assert len(union) == len(set(union)), union
    assert set(union) <= set(range(n))
    if any(how == "Injected" for _, how in ends):
        return
    assert union == list(range(len(union))), union
    assert all(how in ("complete", "cancelled") for _, how in ends), ends
    cancelled = any(
        how == "cancelled" or (o.kind == "take" and len(got or ()) >= o.take)
        for o, (got, how) in zip(outs, ends, strict=True)
    )
    to_the_end = any(
        o.kind != "take" and how != "cancelled" for o, (_, how) in zip(outs, ends, strict=True)
    )
    if to_the_end and not (eager and cancelled):
        assert len(union) == n, (len(union), n)


def cut_of(outs: list[Out], eager: bool, a: Outcome, b: Outcome) -> int | None:
    """From which element on the two paths may differ (see the module); None: nowhere.
    (Up to the cut both paths deal alike, so what decides it is the same in both.)"""
    cuts = [o.fail_at for o in outs if o.kind == "chain" and o.fail_at is not None]
    if eager:
        for i, o in enumerate(outs):
            got = a[1][i][0] or b[1][i][0] or []
            if o.kind == "take" and len(got) >= o.take:
                cuts.append(got[-1] + 1 if got else 0)  # (take(0) cancels at once)
            elif o.kind == "probe" and "cancelled" in (a[1][i][1], b[1][i][1]):
                cuts.append(got[-1] + 1 if got else 0)
    return min(cuts) if cuts else None


def agree(a: list[list[int] | None], b: list[list[int] | None], cut: int) -> None:
    """Each output's elements before ``cut`` are the same in ``a`` and ``b`` (where both
    are known: a ``Sink.seq`` that failed in one path, after the cut, is not)."""
    for i, (got_a, got_b) in enumerate(zip(a, b, strict=True)):
        if got_a is not None and got_b is not None:
            assert [x for x in got_a if x < cut] == [x for x in got_b if x < cut], (i, cut)


@SETTINGS
@given(
    n=SIZES,
    outs=st.lists(OUTS, min_size=2, max_size=4),
    wait_all=st.booleans(),
    eager=st.booleans(),
    steps=STEPS,
)
@example(n=10, outs=[Out("seq"), Out("seq")], wait_all=False, eager=False, steps=[])
@example(n=1000, outs=[Out("chain"), Out("seq")], wait_all=False, eager=False, steps=[])
@example(n=2500, outs=[Out("seq"), Out("chain")], wait_all=False, eager=False, steps=[])
@example(n=10, outs=[Out("seq"), Out("chain", fail_at=1)], wait_all=False, eager=False, steps=[])
@example(
    n=40,
    outs=[Out("probe", request=3), Out("seq"), Out("take", take=5)],
    wait_all=False,
    eager=False,
    steps=[],
)
@example(
    n=60,
    outs=[Out("probe", request=7), Out("probe", request=4), Out("probe", request=1)],
    wait_all=True,
    eager=False,
    steps=[(1, 5), (0, 0), (2, 9)],
)
async def test_balance_gives_the_same_elements_to_the_same_outputs_with_fast_paths(
    n: int,
    outs: list[Out],
    wait_all: bool,
    eager: bool,
    steps: list[tuple[int, int]],
) -> None:
    fast = await run(True, n, outs, wait_all, eager, steps)
    plain = await run(False, n, outs, wait_all, eager, steps)
    check_either_way(n, outs, eager, fast)
    check_either_way(n, outs, eager, plain)
    if not exact(outs):
        return
    cut = cut_of(outs, eager, fast, plain)
    if cut is None:
        assert fast == plain
        return
    # From the cut on the paths may differ: compare what came before it.
    for seen_fast, seen_plain in zip(fast[0], plain[0], strict=False):
        agree(list(seen_fast), list(seen_plain), cut)
    agree([got for got, _ in fast[1]], [got for got, _ in plain[1]], cut)
    if not eager:
        # How each output ended, but for a failing chain whose element comes after the
        # cut (it may or may not have reached it).
        for o, (_, how_fast), (_, how_plain) in zip(outs, fast[1], plain[1], strict=True):
            if not (o.kind == "chain" and o.fail_at is not None and o.fail_at > cut):
                assert how_fast == how_plain, (o, how_fast, how_plain)


async def test_balance_serves_outputs_with_demand_in_turn() -> None:
    """The defect: with fast paths on, two ``Sink.seq`` behind ``Balance(2)`` got
    ``[0..9]`` and ``[]``; both paths now deal the elements out in turn."""
    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths) as mat:

            def blueprint(b: Any, s0: Any, s1: Any) -> Any:
                bal = b.add(Balance(2))
                b.add(Source.from_iterable(range(10))).out >> bal.in_
                bal.out(0) >> s0.in_
                bal.out(1) >> s1.in_
                return ClosedShape

            a, c = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq(), Sink.seq())).run(
                mat
            )
            assert (await a, await c) == ([0, 2, 4, 6, 8], [1, 3, 5, 7, 9]), fast_paths


async def test_a_failing_branch_fails_with_fast_paths_too() -> None:
    """A branch whose map fails on element 1 gets element 1 (its turn) and fails, with the
    fast paths on as off; the other branch gets its turns before and everything after."""
    for fast_paths in (True, False):
        async with Materializer(fast_paths=fast_paths) as mat:

            def fail_on_one(x: int) -> int:
                if x == 1:
                    raise Injected(x)
                return x

            def blueprint(b: Any, s0: Any, s1: Any) -> Any:
                bal = b.add(Balance(2))
                b.add(Source.from_iterable(range(1000))).out >> bal.in_
                bal.out(0) >> s0.in_
                bal.out(1) >> b.add(Flow().map(fail_on_one)) >> s1.in_
                return ClosedShape

            a, c = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq(), Sink.seq())).run(
                mat
            )
            got = await a
            assert got[0] == 0 and 1 not in got and got == sorted(got), fast_paths
            try:
                await c
            except Injected:
                pass
            else:
                raise AssertionError(f"the failing branch did not fail ({fast_paths=})")


def recorded(n: int, workers: bool, got: list[list[int]]) -> RunnableGraph[Any]:
    """``range(n)`` -> ``Balance(len(got))`` -> per output a map (or with ``workers`` a
    ``map_async(1)``) recording what it got in ``got[i]`` -> ``Sink.seq``."""

    def branch(i: int) -> Flow[Any, Any, Any]:
        def seen(x: int) -> int:
            got[i].append(x)
            return x

        async def work(x: int) -> int:
            return seen(x)

        return Flow().map_async(1, work) if workers else Flow().map(seen)

    def blueprint(b: Any, *sinks: Any) -> Any:
        bal = b.add(Balance(len(got)))
        b.add(Source.from_iterable(range(n))).out >> bal.in_
        for i, sink in enumerate(sinks):
            bal.out(i) >> b.add(branch(i)) >> sink.in_
        return ClosedShape

    sinks: list[Sink[Any, Any]] = [Sink.seq() for _ in got]
    return RunnableGraph.from_graph(
        GraphDSL.create(blueprint, *sinks, combine=lambda *ms: list(ms))
    )


async def test_metered_connections_count_what_each_output_got() -> None:
    """Metrics on: each connection out of Balance counts the elements its output got,
    whether dealt in batches, pushed one by one or taken by a ``map_async(1)`` worker
    (its per-output hand-over), with the fast paths on as off; nothing lost or doubled."""
    n = 300
    for fast_paths in (True, False):
        for workers in (False, True):
            got: list[list[int]] = [[], [], []]
            async with Materializer(fast_paths=fast_paths, metrics=True) as mat:
                results = await asyncio.gather(*recorded(n, workers, got).run(mat))
                await asyncio.sleep(0)
                counted = {
                    c.outlet: c.metrics.elements
                    for g in mat.snapshot().graphs
                    for isl in g.islands
                    for c in isl.connections
                    if c.upstream == "balance" and c.metrics is not None
                }
            assert [sorted(r) for r in results] == [sorted(part) for part in got]
            assert sorted(x for part in got for x in part) == list(range(n))
            expected = {f"Balance.out{i}": len(part) for i, part in enumerate(got)}
            assert counted == expected, (fast_paths, workers)
            if not workers:
                assert got == [list(range(i, n, 3)) for i in range(3)], fast_paths
