"""Edge cases of the junction and worker-pool fast paths that run metered (8c1bccd).

With metrics on, Balance hands an output its elements through a counted wrapper
(``_counted_port_take``; its one-element form is counted by the ``map_async(1)`` worker),
``map_async`` offers its results to Merge counting its push (``_deliver_sequential``,
``_drain``), Merge hands them down and re-pulls without an event (``_pull_in``,
``_accept_i``, ``_accept_one_i``, ``_hand_down``) and Broadcast takes from an iterable
source directly (``_take_now``). ``test_metered_junctions.py`` and the reference test
cover the plain runs; here the runs that end otherwise or take the paths' rarer branches:

- the pool (Balance(2 or 3, ``wait_for_all_downstreams`` or not) -> ``map_async`` of
  parallelism 1, 2, 3 or unordered 2 -> Merge, eager Merge or Concat) with a failing
  ``f`` (stop, resume, restart), a failing source iterator, a ``None`` element, an async
  boundary upstream, ``take(k)`` after the junction: results equal the element-at-a-time
  path's and the model's; on both paths every connection's accounting equals the
  reference's (``tests.observe.test_metering_reference._Reference``), is closed and
  frozen when the graph ended, never negative, carries at least one element per push or
  take, has at most one pull open, and the element counts are the model's (the source's
  what it emitted, the junctions' sums, one element per hand-over of a ``map_async(1)``);
- ManualClock schedules of demand and time with a probe sink that drains or cancels mid
  stream, checked against the reference at every step;
- upstream completion (and downstream cancellation) while a worker holds a result it
  has not offered yet (gated calls), and a result offered while the island's mailbox
  holds an event (Merge's long way round, its input's pull taken in ``_pull_in``);
- Broadcast taking from an iterable source into branches of different speeds (one
  throttled on the manual clock), drained or cancelled.

Each check here was seen to fail when the accounting of the path it covers is taken
out (a push, pull, take or phase change of the diff removed in a scratch copy).

Two defects found here are fixed and pinned by the last tests: Balance's counted
hand-over was found by every consumer (``counted_take``), so a fused chain took from
Balance with metrics on (never without) and counted each take a second time; it is now
``counted_port_take``, which only ``hand_over_hook_of`` finds. And a tuple holding a
``None`` was over-counted once Broadcast's take had set its derived count: the source's
own pull read the ``None`` and what followed and sent none of it
(``note_unsent_derived`` now takes them off).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reactive import (
    Attributes,
    Balance,
    Broadcast,
    ClosedShape,
    Concat,
    Flow,
    GraphDSL,
    Materializer,
    Merge,
    PortStateError,
    RunnableGraph,
    Sink,
    Source,
    Supervision,
)
from reactive._stage.batch import accept_hook, lend_hook
from reactive.observe import _metering
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.observe.test_metered_take_one import source_metrics
from tests.observe.test_metering_reference import (
    STEP,
    _check,
    _connections,
    _Reference,
    _run_steps,
    _settle,
)

CLOSED = 2
#: Hypothesis settings shared by the property tests here (a fixture per test function).
SETTINGS = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


class _Boom(Exception):
    """What the failing ``f`` and the failing source iterator raise."""


@pytest.fixture
def reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """Materialize metered connections as ``_Reference`` (both accountings side by side)."""
    monkeypatch.setattr(_metering, "MeteredConnection", _Reference)


class _Failing:
    """``range(n)`` whose iterator raises ``_Boom`` instead of yielding ``at`` (a new
    generator per ``iter``: not a list, tuple or range, so its takes are counted by a
    counter zipped with it)."""

    def __init__(self, n: int, at: int) -> None:
        self.n = n
        self.at = at

    def __iter__(self) -> Any:
        for x in range(self.n):
            if x == self.at:
                raise _Boom(f"src {x}")
            yield x


#: Source kinds: an iterable of ``range(n)`` as a range, list, tuple, behind an async
#: boundary; failing at ``bad`` (its iterator), or holding ``None`` there (list, tuple).
SOURCES = ("range", "list", "tuple", "boundary", "failing", "none_list", "none_tuple")


def _source(kind: str, n: int, bad: int) -> Any:
    if kind == "range":
        return Source.from_iterable(range(n)).named("src")
    if kind == "list":
        return Source.from_iterable(list(range(n))).named("src")
    if kind == "tuple":
        return Source.from_iterable(tuple(range(n))).named("src")
    if kind == "boundary":
        return Source.from_iterable(range(n)).named("src").async_boundary()
    if kind == "failing":
        return Source.from_iterable(_Failing(n, bad)).named("src")
    xs = [None if x == bad else x for x in range(n)]
    return Source.from_iterable(xs if kind == "none_list" else tuple(xs)).named("src")


def _src_fails(kind: str, n: int, bad: int) -> bool:
    return kind in ("failing", "none_list", "none_tuple") and bad < n


def _work(fail_on: frozenset[int]) -> Any:
    """A worker's call: suspends ``x % 3`` times (calls finish out of step), raises
    ``_Boom`` on the elements of ``fail_on``."""

    async def f(x: int) -> int:
        for _ in range(x % 3):
            await asyncio.sleep(0)
        if x in fail_on:
            raise _Boom(f"f {x}")
        return x

    return f


DECIDERS = {
    "stop": None,
    "resume": lambda exc: Supervision.resume,
    "restart": lambda exc: Supervision.restart,
}


def _pool(
    p: dict[str, Any],
    sink: Any = None,
) -> Any:
    """src -> Balance(k) -> k workers (``map_async(par)``, "u2": unordered 2) -> a
    fan-in junction (Merge, eager Merge, or Concat: its offer takes no one-element form)
    -> tail (``take`` or nothing) -> sink (default ``Sink.seq``); named "g"."""

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(_source(p["src"], p["n"], p["bad"]))
        k = p["k"]
        fan = b.add(Balance(k, wait_for_all_downstreams=p["wait_all"]))
        junction = p["junction"]
        merge = b.add(Concat(k) if junction == "concat" else Merge(k, junction == "eager"))
        src.out >> fan.in_
        for i in range(k):
            f = _work(p["fail_on"])
            par = p["par"]
            flow = Flow().map_async_unordered(2, f) if par == "u2" else Flow().map_async(par, f)
            decider = DECIDERS[p["decider"]]
            if decider is not None:
                flow = flow.with_attributes(Attributes.supervision_strategy(decider))
            fan.out(i) >> b.add(flow.named(f"w{i}")) >> merge.in_(i)
        tail = Flow() if p["take"] is None else Flow().take(p["take"])
        merge.out >> b.add(tail.named("tail")) >> sink.in_
        return ClosedShape

    if sink is None:
        sink = Sink.seq().named("sink")
    return RunnableGraph.from_graph(GraphDSL.create(blueprint, sink)).named("g")


def _expected(p: dict[str, Any]) -> tuple[Any, ...]:
    """The model's outcome: ("ok", sorted elements) or ("err", type, message); the
    message of a failing ``f`` is the first failing element's (``_same`` takes any)."""
    n, bad = p["n"], p["bad"]
    fails = sorted(x for x in p["fail_on"] if x < n)
    if _src_fails(p["src"], n, bad):
        if p["src"] == "failing":
            return ("err", "_Boom", f"src {bad}")
        return ("err", "PortStateError", None)
    if fails and p["decider"] == "stop":
        return ("err", "_Boom", f"f {fails[0]}")
    return ("ok", [x for x in range(n) if x not in p["fail_on"]])


def _same(got: tuple[Any, ...], want: tuple[Any, ...], p: dict[str, Any]) -> bool:
    """``got`` is the outcome ``want`` stands for: with several failing calls (stop), the
    workers run side by side and any of them may fail the stream first."""
    if got == want:
        return True
    fails = {f"f {x}" for x in p["fail_on"] if x < p["n"]}
    return got[:2] == want[:2] == ("err", "_Boom") and {got[2], want[2]} <= fails


def _name(logic: Any) -> str:
    return str(logic._stage_name)


def _frozen_view(c: Any) -> tuple[Any, ...]:
    return (c.times(), c.r_times(), c.pulls, c.pushes, c.takes, c.element_count())


async def _check_ended(conns: list[Any], clock: ManualClock) -> None:
    """After the graph ended: the reference agrees, every connection is closed (in both
    accountings), nothing moves when time passes, no time is negative and every push or
    take carried at least one element."""
    await _settle()
    _check(conns)
    before = [_frozen_view(c) for c in conns]
    await clock.advance(1.5)
    await _settle()
    _check(conns)
    for c, was in zip(conns, before, strict=True):
        where = f"{_name(c.out_logic)} -> {_name(c.in_logic)}"
        assert c.phase == CLOSED and c.r_phase == CLOSED, where
        assert _frozen_view(c) == was, where
        idle, pending = c.times()
        assert idle >= 0 and pending >= 0, (where, idle, pending)
        assert c.pushes + c.takes <= c.element_count(), (where, c.pushes, c.takes)
        if lend_hook(c.out_logic) is None and accept_hook(c.in_logic) is None:
            # Each push answers one pull (a take is both): one pull left open at most.
            # (Not at an async boundary: a chain reading the buffer its output lends on
            # its own pull counts ``_lent``'s push without a pull, and its input's
            # ``_give`` leaves the connection pulled again without counting a pull.)
            assert c.pulls - c.pushes in (0, 1), (where, c.pulls, c.pushes)


def _by_names(conns: list[Any]) -> dict[tuple[str, str], Any]:
    return {(_name(c.out_logic), _name(c.in_logic)): c for c in conns}


async def _run_pool(p: dict[str, Any], fast: bool, metrics: bool = True) -> tuple[Any, ...]:
    """Run the pool on a manual clock; the outcome (sorted elements, or the error), after
    the checks of ``_check_ended`` and the model's element counts when metered."""
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=metrics, fast_paths=fast) as mat:
        result = _pool(p).run(mat)
        conns = _connections(mat) if metrics else []
        try:
            out: tuple[Any, ...] = ("ok", sorted(await result))
        except _Boom as exc:
            out = ("err", "_Boom", str(exc))
        except PortStateError:
            out = ("err", "PortStateError", None)
        if not metrics:
            return out
        await _check_ended(conns, clock)
        _check_pool_counts(p, out, _by_names(conns))
    return out


def _check_pool_counts(p: dict[str, Any], out: tuple[Any, ...], conns: dict[Any, Any]) -> None:
    """The model's element counts for a run of ``_pool(p)`` that ended with ``out``."""
    k = p["k"]
    j = "concat" if p["junction"] == "concat" else "merge"
    into = sum(conns[("balance", f"w{i}")].element_count() for i in range(k))
    outof = sum(conns[(f"w{i}", j)].element_count() for i in range(k))
    merged = conns[(j, "tail")].element_count()
    src = next(c for (up, down), c in conns.items() if down == "balance")
    n, bad = p["n"], p["bad"]
    if out[0] == "ok" and p["take"] is None and p["junction"] != "eager":
        assert src.element_count() == into == n, (src.element_count(), into)
        assert outof == merged == len(out[1]), (outof, merged)
    elif _src_fails(p["src"], n, bad) and p["take"] is None and p["junction"] != "eager":
        # The source emitted exactly the elements before the failing one.
        assert src.element_count() == bad, (src.element_count(), bad)
    if p["par"] == 1:
        # One element per hand-over into and out of a ``map_async(1)``; Merge pulls a
        # worker again only once it pushed (one pull left open at the end at most).
        for i in range(k):
            for key in (("balance", f"w{i}"), (f"w{i}", j)):
                c = conns[key]
                assert c.pushes + c.takes == c.element_count(), (key, c.pushes, c.takes)
            c = conns[(f"w{i}", j)]
            assert c.pulls - c.pushes in (0, 1), (c.pulls, c.pushes)
    # Whatever happened, nothing is counted beyond what came from upstream.
    assert into <= src.element_count()
    assert merged <= outof <= into
    assert conns[("tail", "sink")].element_count() <= merged


def _pool_params() -> Any:
    return st.fixed_dictionaries(
        {
            "n": st.integers(0, 30),
            "k": st.sampled_from([2, 3]),
            "par": st.sampled_from([1, 2, 3, "u2"]),
            "wait_all": st.booleans(),
            "junction": st.sampled_from(["merge", "eager", "concat"]),
            "src": st.sampled_from(SOURCES),
            "bad": st.integers(0, 30),
            "fail_on": st.frozensets(st.integers(0, 30), max_size=3),
            "decider": st.sampled_from(sorted(DECIDERS)),
            "take": st.one_of(st.none(), st.integers(1, 8)),
        }
    )


@settings(SETTINGS, max_examples=400)
@given(p=_pool_params())
def test_pool_edges_count_as_the_model_and_the_element_at_a_time_path(
    reference: None, p: dict[str, Any]
) -> None:
    """The pool with failures (f: stop/resume/restart; the source's iterator; a None in
    a list or tuple), a boundary upstream, Balance(3) and ``wait_for_all_downstreams``,
    parallelism 1-3 or unordered, ``take`` after the junction, an eager Merge or Concat
    (its offers take no one-element form): the outcome is the model's on the fast and the
    element-at-a-time path, metered or not (with ``take`` or an eager Merge: distinct
    model elements, as many as ``take`` asks); metered, ``_check_ended`` and
    ``_check_pool_counts`` hold."""
    if p["take"] is not None or p["junction"] == "eager":
        # Completion may overtake a failure then: runs without failures only.
        p = {**p, "fail_on": frozenset(), "bad": p["n"]}
    if _src_fails(p["src"], p["n"], p["bad"]) and p["decider"] == "stop":
        p = {**p, "fail_on": frozenset()}  # which failure comes first is a race
    want = _expected(p)
    for fast in (True, False):
        for metrics in (True, False):
            got = asyncio.run(_run_pool(p, fast, metrics))
            if p["take"] is None and p["junction"] != "eager":
                assert _same(got, want, p), (fast, metrics, got, want)
                continue
            assert got[0] == "ok", got
            assert len(set(got[1])) == len(got[1]) and set(got[1]) <= set(want[1])
            if p["junction"] == "eager":
                # An eager Merge completes with the first worker: calls still running on
                # the others are cancelled, their elements lost.
                assert len(got[1]) <= len(want[1])
            else:
                assert len(got[1]) == min(p["take"], len(want[1])), got


# -- schedules on a manual clock, a probe sink that drains or cancels -------------------

_POOL_EXAMPLE: dict[str, Any] = {
    "n": 5,
    "k": 2,
    "par": 1,
    "wait_all": False,
    "junction": "merge",
    "src": "range",
    "bad": 0,
    "fail_on": frozenset({3}),
    "decider": "resume",
    "take": None,
}


async def _run_pool_schedule(
    p: dict[str, Any], steps: list[tuple[str, Any]], end: str, fast: bool
) -> None:
    clock = ManualClock()
    async with Materializer(clock=clock, metrics=True, fast_paths=fast) as mat:
        sink = (
            _pool(p, TestSink.probe().named("sink"))
            .add_attributes(Attributes.input_buffer(p["buffer"], p["buffer"]))
            .run(mat)
        )
        conns = _connections(mat)
        await _run_steps(sink, conns, clock, steps)
        want = _expected(p)
        if end == "cancel":
            sink.cancel()
        else:
            try:
                got: tuple[Any, ...] = ("ok", sorted(await sink.to_list()))
            except _Boom as exc:
                got = ("err", "_Boom", str(exc))
            except PortStateError:
                got = ("err", "PortStateError", None)
            assert _same(got, want, p), (got, want)
        await _check_ended(conns, clock)


@settings(SETTINGS, max_examples=250)
@example(  # a result offered while downstream has not asked: Merge's ``_accept_i``
    p=_POOL_EXAMPLE, buffer=1, steps=[("advance", 0.25)], end="drain", fast=True
)
@example(  # the same into Concat (no one-element offer), cancelled after some demand
    p={**_POOL_EXAMPLE, "junction": "concat"},
    buffer=2,
    steps=[("advance", 1.0), ("request", 2), ("advance", 0.25)],
    end="cancel",
    fast=True,
)
@given(
    p=_pool_params().map(lambda p: {**p, "take": None}).filter(lambda p: p["junction"] != "eager"),
    buffer=st.sampled_from([1, 2, 16]),
    steps=st.lists(STEP, max_size=8),
    end=st.sampled_from(["drain", "cancel"]),
    fast=st.booleans(),
)
def test_pool_schedules_with_failures_and_cancellation_equal_the_reference(
    reference: None,
    p: dict[str, Any],
    buffer: int,
    steps: list[tuple[str, Any]],
    end: str,
    fast: bool,
) -> None:
    """Random demand and time on the manual clock through the pool (failing ``f`` with
    each decider, failing or ``None``-holding sources, 2 or 3 outputs, parallelism 1-3 or
    unordered, into Merge or Concat; an eager Merge has no fast path), ending with the
    probe draining (the model's outcome) or cancelling: at every step the pulls and times
    are the reference's; at the end ``_check_ended`` holds."""
    if _src_fails(p["src"], p["n"], p["bad"]) and p["decider"] == "stop":
        p = {**p, "fail_on": frozenset()}
    asyncio.run(_run_pool_schedule({**p, "buffer": buffer}, steps, end, fast))


# -- a worker holding its result while upstream completes or downstream cancels ---------


class _Gates:
    """Calls that finish when the test says: ``f(x)`` waits for ``open(x)``."""

    def __init__(self) -> None:
        self.futures: dict[int, asyncio.Future[None]] = {}
        self.started: list[int] = []

    def _gate(self, x: int) -> asyncio.Future[None]:
        if x not in self.futures:
            self.futures[x] = asyncio.get_running_loop().create_future()
        return self.futures[x]

    async def f(self, x: int) -> int:
        self.started.append(x)
        await self._gate(x)
        return x

    def open(self, x: int) -> None:
        self._gate(x).set_result(None)


def _gated_pool(gates: _Gates, src: Any, k: int, par: int) -> Any:
    """``src`` -> Balance(k) -> k gated ``map_async(par)`` -> Merge(k) -> a probe sink;
    materializes (the source's value, the sink probe); named "g"."""

    def blueprint(b: Any, s: Any, sink: Any) -> Any:
        fan = b.add(Balance(k))
        merge = b.add(Merge(k))
        s.out >> fan.in_
        for i in range(k):
            fan.out(i) >> b.add(Flow().map_async(par, gates.f).named(f"w{i}")) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    probe = TestSink.probe().named("sink")
    return RunnableGraph.from_graph(GraphDSL.create(blueprint, src, probe)).named("g")


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("upstream", ["probe", "iterable"])
@pytest.mark.parametrize("par", [1, 2])
@pytest.mark.parametrize("order", ["in_order", "reversed"])
async def test_upstream_completes_while_workers_hold_their_results(
    reference: None, fast: bool, upstream: str, par: int, order: str
) -> None:
    """Upstream completes (a probe's ``send_complete``, or an iterable source handing
    over its last element) while every worker's call is still running; the calls then
    finish one by one (time passing between) and their results are offered to Merge
    after the workers' inputs closed: every result comes out once, the stream completes
    and each connection's accounting is the reference's, closed and frozen."""
    clock = ManualClock()
    gates = _Gates()
    n = 2 * par
    async with Materializer(clock=clock, metrics=True, fast_paths=fast) as mat:
        src: Any = (
            TestSource.probe().named("src")
            if upstream == "probe"
            else Source.from_iterable(list(range(n))).named("src")
        )
        src_probe, sink = _gated_pool(gates, src, 2, par).run(mat)
        conns = _connections(mat)
        sink.request(n + 1)
        await _settle()
        if upstream == "probe":
            for x in range(n):
                src_probe.send_next(x)
            await _settle()
            src_probe.send_complete()
        await _settle()
        _check(conns)
        assert sorted(gates.started) == list(range(n))
        balance_out = [c for c in conns if _name(c.out_logic) == "balance"]
        assert all(c.phase == CLOSED for c in balance_out)  # completed with upstream
        for x in range(n) if order == "in_order" else reversed(range(n)):
            await clock.advance(0.5)
            gates.open(x)
            await _settle()
            _check(conns)
        got = await sink.expect_next_n(n)
        await sink.expect_complete()
        assert sorted(got) == list(range(n))
        await _check_ended(conns, clock)
        named = _by_names(conns)
        assert sum(named[(f"w{i}", "merge")].element_count() for i in range(2)) == n
        assert named[("merge", "sink")].element_count() == n


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("par", [1, 2])
async def test_downstream_cancels_while_workers_hold_their_results(
    reference: None, fast: bool, par: int
) -> None:
    """The probe sink cancels while the workers' calls run (results not offered yet),
    one element out already: the calls are dropped, Merge, the workers, Balance and the
    source close, and the accounting is the reference's, closed and frozen; what went
    out before is counted on every connection it crossed."""
    clock = ManualClock()
    gates = _Gates()
    async with Materializer(clock=clock, metrics=True, fast_paths=fast) as mat:
        src = Source.from_iterable(range(100)).named("src")
        _, sink = _gated_pool(gates, src, 2, par).run(mat)
        conns = _connections(mat)
        sink.request(3)
        await _settle()
        await clock.advance(1.0)
        first = gates.started[0]
        gates.open(first)
        await _settle()
        assert await sink.expect_next() == first
        await clock.advance(1.0)
        _check(conns)
        sink.cancel()
        await _settle()
        await _check_ended(conns, clock)
        named = _by_names(conns)
        assert named[("merge", "sink")].element_count() == 1
        outs = sum(named[(f"w{i}", "merge")].element_count() for i in range(2))
        ins = sum(named[("balance", f"w{i}")].element_count() for i in range(2))
        assert outs == 1
        assert ins == len(gates.started)
        assert named[("src", "balance")].element_count() >= ins


# -- Broadcast taking from an iterable source into branches of different speeds --------

#: Broadcast's sources (``None``-holding ones: see
#: ``test_a_tuple_none_behind_broadcast_is_not_counted`` below and
#: ``test_metered_none_elements.py``).
BROADCAST_SOURCES = ("range", "list", "tuple", "failing")


def _broadcast(p: dict[str, Any]) -> Any:
    """src -> Broadcast(2) -> a slow branch ("throttle": one element a second on the
    manual clock; "async": a ``map_async(1)`` offering to Merge) and a fast one (a map,
    behind an async boundary if ``boundary``: Merge takes its batches) -> Merge(2) -> a
    probe sink; named "g"."""

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(_source(p["src"], p["n"], p["bad"]))
        fan = b.add(Broadcast(2))
        merge = b.add(Merge(2))
        src.out >> fan.in_
        slow: Any = (
            Flow().throttle(1, 1.0)
            if p["slow"] == "throttle"
            else Flow().map_async(1, _work(frozenset()))
        )
        fast: Any = Flow().map(lambda x: x + 1000)
        if p["boundary"]:
            fast = fast.async_boundary()
        fan.out(0) >> b.add(slow.named("b0")) >> merge.in_(0)
        fan.out(1) >> b.add(fast.named("b1")) >> merge.in_(1)
        merge.out >> sink.in_
        return ClosedShape

    probe = TestSink.probe().named("sink")
    return RunnableGraph.from_graph(GraphDSL.create(blueprint, probe)).named("g")


async def _run_broadcast(p: dict[str, Any], steps: list[tuple[str, Any]], fast: bool) -> None:
    clock = ManualClock()
    n, bad = p["n"], p["bad"]
    fails = _src_fails(p["src"], n, bad)
    async with Materializer(clock=clock, metrics=True, fast_paths=fast) as mat:
        sink = (
            _broadcast(p).add_attributes(Attributes.input_buffer(p["buffer"], p["buffer"])).run(mat)
        )
        conns = _connections(mat)
        await _run_steps(sink, conns, clock, steps)
        if p["end"] == "cancel":
            sink.cancel()
        else:
            sink.request(4 * n + 1)
            for _ in range(n + 3):  # the throttled branch: one element a second
                await clock.advance(1.0)
                await _settle()
                _check(conns)
            if fails:
                with pytest.raises(_Boom, match=f"^src {bad}$"):
                    await sink.to_list(timeout=0.5)
            else:
                got = await sink.to_list(timeout=0.5)
                assert sorted(got) == [*range(n), *range(1000, 1000 + n)]
        await _check_ended(conns, clock)
        named = _by_names(conns)
        src = named[("src", "broadcast")].element_count()
        to0, to1 = (
            c.element_count()
            for c in sorted(
                (c for c in conns if _name(c.out_logic) == "broadcast"),
                key=lambda c: c.out_handler.i,
            )
        )
        assert to0 <= src and to1 <= src
        if p["end"] == "drain":
            # Every element goes to both branches in one hand-out (cancelled, a branch
            # may close before the other and miss the last one).
            assert to0 == to1
            # What the source emitted: everything, or what came before the failure.
            assert src == to0 == (bad if fails else n), (src, to0)
            if not fails:
                assert named[("merge", "sink")].element_count() == 2 * n


@settings(SETTINGS, max_examples=250)
@example(
    p={
        "n": 6,
        "src": "list",
        "bad": 0,
        "slow": "throttle",
        "boundary": False,
        "buffer": 2,
        "end": "drain",
    },
    steps=[("request", 3), ("advance", 1.0), ("request", 2), ("advance", 3.0)],
    fast=True,
)
@given(
    p=st.fixed_dictionaries(
        {
            "n": st.integers(0, 12),
            "src": st.sampled_from(BROADCAST_SOURCES),
            "bad": st.integers(0, 12),
            "slow": st.sampled_from(["throttle", "async"]),
            "boundary": st.booleans(),
            "buffer": st.sampled_from([1, 2, 16]),
            "end": st.sampled_from(["drain", "cancel"]),
        }
    ),
    steps=st.lists(STEP, max_size=8),
    fast=st.booleans(),
)
def test_broadcast_into_branches_of_different_speeds_equals_the_reference(
    reference: None, p: dict[str, Any], steps: list[tuple[str, Any]], fast: bool
) -> None:
    """Broadcast taking from an iterable source (range, list, tuple, or a failing
    iterator) into a throttled or ``map_async(1)`` branch and a fast one (its batches
    taken by Merge from a boundary, or not), on a schedule of demand and time, then
    drained (the manual clock running the throttle) or cancelled: at every step the
    pulls and times are the reference's; at the end everything is closed and frozen,
    both branches got what the source emitted (all of it, or what came before its
    failure) and the results are the model's."""
    asyncio.run(_run_broadcast(p, steps, fast))


# -- defects found here, fixed -----------------------------------------------------


async def test_balance_into_a_fused_chain_counts_each_hand_over_once(
    reference: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Balance(2) -> map -> Merge(2) from ``range(20)``, metrics and fast paths on: each
    connection out of Balance counts one take per hand-over ``_hand_over_i`` really made
    to it, and no more pushes (takes included) than elements."""
    from reactive._ops.fan_out import balance

    handed: Counter[int] = Counter()
    hand_over = balance._BalanceBatchLogic._hand_over_i

    def counting(self: Any, i: int, n: int) -> Any:
        got = hand_over(self, i, n)
        if got:
            handed[i] += 1
        return got

    monkeypatch.setattr(balance._BalanceBatchLogic, "_hand_over_i", counting)

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(20)).named("src"))
        fan = b.add(Balance(2))
        merge = b.add(Merge(2))
        src.out >> fan.in_
        for i in range(2):
            fan.out(i) >> b.add(Flow().map(lambda x: x).named(f"b{i}")) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq().named("sink")))
    async with Materializer(metrics=True, fast_paths=True) as mat:
        result = graph.named("g").run(mat)
        conns = _by_names(_connections(mat))
        assert sorted(await result) == list(range(20))
        for i in range(2):
            c = conns[("balance", f"b{i}")]
            assert c.pushes + c.takes <= c.element_count(), (i, c.pushes, c.takes)
            assert c.takes == handed[i], (i, c.takes, handed[i])
    # Metrics do not change the path: the chain takes from Balance as often without them.
    metered = sum(handed.values())
    handed.clear()
    async with Materializer(metrics=False, fast_paths=True) as mat:
        assert sorted(await graph.named("g").run(mat)) == list(range(20))
    assert sum(handed.values()) == metered


async def test_a_tuple_none_behind_broadcast_is_not_counted() -> None:
    """``(0, None, 2, 3, 4)`` -> Broadcast(2) -> 2 maps -> Merge(2) -> map ->
    ``Sink.seq``: the source emitted one element before its ``None`` failed it; its
    connection counts 1 on the fast path as on the element-at-a-time path (the fast path
    counts 5: the None and the three elements read after it too)."""

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable((0, None, 2, 3, 4)).named("src"))
        fan = b.add(Broadcast(2))
        merge = b.add(Merge(2))
        src.out >> fan.in_
        for i in range(2):
            fan.out(i) >> b.add(Flow().map(lambda x: x).named(f"b{i}")) >> merge.in_(i)
        merge.out >> b.add(Flow().map(lambda x: x).named("tail")) >> sink.in_
        return ClosedShape

    counts = {}
    for fast in (True, False):
        graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq().named("sink")))
        async with Materializer(metrics=True, fast_paths=fast) as mat:
            with pytest.raises(PortStateError):
                await graph.named("g").run(mat)
            await asyncio.sleep(0)
            counts[fast] = source_metrics(mat).elements
    assert counts[False] == 1
    assert counts[True] == counts[False], counts


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("k", [1, 2])
async def test_a_result_offered_with_the_mailbox_not_empty(
    reference: None, fast: bool, k: int
) -> None:
    """Each call asks the probe sink for one more element as its first step runs (a
    ``map_async(1)`` runs it inline, inside the worker's delivery): the request waits in
    the island's mailbox when the next result is offered, so Merge takes it the long way
    (``_accept_one_i`` -> ``_accept_i`` -> push, then the input's pull taken at once,
    counted in ``_pull_in``). Everything comes out; the accounting is the reference's at
    every step and closed and frozen at the end."""
    clock = ManualClock()
    n = 12
    box: dict[str, Any] = {}

    async def f(x: int) -> int:
        box["sink"].request(1)
        return x

    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable(range(n)).named("src"))
        fan = b.add(Balance(k))
        merge = b.add(Merge(k))
        src.out >> fan.in_
        for i in range(k):
            fan.out(i) >> b.add(Flow().map_async(1, f).named(f"w{i}")) >> merge.in_(i)
        merge.out >> sink.in_
        return ClosedShape

    probe = TestSink.probe().named("sink")
    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, probe)).named("g")
    async with Materializer(clock=clock, metrics=True, fast_paths=fast) as mat:
        sink = box["sink"] = graph.run(mat)
        conns = _connections(mat)
        for _ in range(4):
            sink.request(1)
            await _settle()
            await clock.advance(0.5)
            _check(conns)
        got = await sink.to_list()
        assert sorted(got) == list(range(n))
        await _check_ended(conns, clock)
        named = _by_names(conns)
        assert sum(named[("balance", f"w{i}")].element_count() for i in range(k)) == n
        assert named[("merge", "sink")].element_count() == n
