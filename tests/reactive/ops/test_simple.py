"""The simple family (``reactive/_ops/simple.py``): map, filter, scan, fold, take, grouped,
intersperse, ... What every simple operator shares (elements and completion with fast paths on
and off, failures, cancellation, demand, supervision) in ``TestSimpleOperators`` over the
``OPS`` table; Akka's specs (FlowScanSpec, FlowFoldSpec, FlowTakeSpec, FlowGroupedSpec,
FlowSlidingSpec, FlowIntersperseSpec, FlowStatefulMapSpec, ...) and our own cases in a class
per operator.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    Flow,
    Keep,
    Materializer,
    NoSuchElementError,
    Sink,
    Source,
    StreamLimitReachedError,
    Supervision,
)
from reactive._ops.simple import Scan
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, flow_probes, restarting, resuming, settle

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable


def positive(acc: int, x: int) -> int:
    """``require(x > 0); acc + x`` of FlowScanSpec."""
    if x <= 0:
        raise Boom(f"not positive: {x}")
    return acc + x


def scala_sliding(xs: list[int], n: int, step: int) -> list[list[int]]:
    """Scala 2.13 ``Iterator.sliding(n, step)``, which FlowSlidingSpec compares against:
    windows start at 0, step, 2*step, ...; a window is dropped when it adds no element
    the previous one did not have (and the last one may be shorter)."""
    out = []
    for i in range(0, len(xs), step):
        if i == 0 or i - step + n < len(xs):
            out.append(xs[i : i + n])
    return out


def _prev_repeater() -> Any:
    """The function of FlowStatefulMapConcatSpec: repeats x as often as the previous one."""
    prev: list[int] = []

    def f(x: int) -> list[int]:
        if x % 3 == 0:
            raise Boom()
        out = [x] * prev[0] if prev else []
        prev[:] = [x]
        return out

    return f


class Gate:
    """Counts ``on_complete`` calls (BeenCalledTimesGate of the spec)."""

    def __init__(self, value: Any = None) -> None:
        self.calls = 0
        self.value = value

    def __call__(self, state: Any) -> Any:
        self.calls += 1
        return self.value(state) if callable(self.value) else self.value


def _failing_on(pred: Any) -> Any:
    def f(s: int, x: int) -> tuple[int, tuple[int, int]]:
        if pred(x):
            raise Boom()
        return s + x, (s, x)

    return f


def supervised(blueprint: Any, directive: Supervision) -> Any:
    """``blueprint`` with a decider always answering ``directive``."""
    return blueprint.with_attributes(Attributes.supervision_strategy(lambda e: directive))


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param, name=f"simple:{request.node.name}")
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


class Op(NamedTuple):
    """An operator case: ``make()`` builds it; on ``xs`` it gives ``expected``."""

    name: str
    make: Callable[[], Any]
    xs: list[Any]
    expected: list[Any]


class SupervisedOp(NamedTuple):
    """An operator whose user function raises on some element of ``xs``: what it gives
    under ``resume`` and under ``restart``."""

    name: str
    make: Callable[[], Any]
    xs: list[Any]
    resumed: list[Any]
    restarted: list[Any]


_OPS: list[tuple[str, Callable[[], Any], list[Any], list[Any]]] = [
    ("map", lambda: Flow().map(lambda x: x * 10), [1, 2, 3], [10, 20, 30]),
    ("filter", lambda: Flow().filter(lambda x: x % 2 == 0), list(range(7)), [0, 2, 4, 6]),
    ("filter_not", lambda: Flow().filter_not(lambda x: x % 2 == 0), list(range(7)), [1, 3, 5]),
    ("map_concat", lambda: Flow().map_concat(lambda x: [x] * x), [0, 1, 2, 3], [1, 2, 2, 3, 3, 3]),
    (
        "stateful_map_concat",
        lambda: Flow().stateful_map_concat(
            lambda: (lambda c: lambda x: [x + next(c)])(itertools.count())
        ),
        [10, 10, 10],
        [10, 11, 12],
    ),
    (
        "stateful_map",
        lambda: Flow().stateful_map(lambda: 0, lambda s, x: (s + x, s + x), lambda s: -s),
        [1, 2, 3],
        [1, 3, 6, -6],
    ),
    ("scan", lambda: Flow().scan(0, operator.add), [1, 2, 3], [0, 1, 3, 6]),
    ("scan_empty", lambda: Flow().scan(0, operator.add), [], [0]),
    ("fold", lambda: Flow().fold(0, operator.add), [1, 2, 3], [6]),
    ("fold_empty", lambda: Flow().fold(7, operator.add), [], [7]),
    ("reduce", lambda: Flow().reduce(operator.add), [1, 2, 3], [6]),
    ("take", lambda: Flow().take(2), [1, 2, 3, 4], [1, 2]),
    ("take_0", lambda: Flow().take(0), [1, 2, 3], []),
    ("take_more", lambda: Flow().take(10), [1, 2], [1, 2]),
    ("take_while", lambda: Flow().take_while(lambda x: x < 3), [1, 2, 3, 1], [1, 2]),
    (
        "take_while_inclusive",
        lambda: Flow().take_while(lambda x: x < 3, inclusive=True),
        [1, 2, 3, 1],
        [1, 2, 3],
    ),
    ("drop", lambda: Flow().drop(2), [1, 2, 3, 4], [3, 4]),
    ("drop_while", lambda: Flow().drop_while(lambda x: x < 3), [1, 2, 3, 1], [3, 1]),
    ("limit", lambda: Flow().limit(5), [1, 2, 3], [1, 2, 3]),
    ("limit_weighted", lambda: Flow().limit_weighted(6, lambda x: x), [1, 2, 3], [1, 2, 3]),
    ("grouped", lambda: Flow().grouped(2), [1, 2, 3, 4, 5], [[1, 2], [3, 4], [5]]),
    ("grouped_exact", lambda: Flow().grouped(2), [1, 2, 3, 4], [[1, 2], [3, 4]]),
    ("sliding", lambda: Flow().sliding(3, 1), [1, 2, 3, 4], [[1, 2, 3], [2, 3, 4]]),
    ("sliding_step", lambda: Flow().sliding(2, 2), [1, 2, 3, 4, 5], [[1, 2], [3, 4], [5]]),
    ("sliding_short", lambda: Flow().sliding(3, 1), [1, 2], [[1, 2]]),
    ("intersperse", lambda: Flow().intersperse(0), [1, 2, 3], [1, 0, 2, 0, 3]),
    (
        "intersperse_ends",
        lambda: Flow().intersperse(",", "[", "]"),
        ["a", "b"],
        ["[", "a", ",", "b", "]"],
    ),
    ("intersperse_ends_empty", lambda: Flow().intersperse(",", "[", "]"), [], ["[", "]"]),
    ("zip_with_index", lambda: Flow().zip_with_index(), ["a", "b"], [("a", 0), ("b", 1)]),
    ("log", lambda: Flow().log("t"), [1, 2], [1, 2]),
    ("identity", lambda: Flow(), [1, 2], [1, 2]),
]


OPS = [Op(*o) for o in _OPS]
OP_IDS = [o.name for o in OPS]


PREFETCHING = {"fold", "fold_empty", "reduce"}


EMIT_FIRST = {"scan", "scan_empty", "intersperse_ends", "intersperse_ends_empty"}


def _raise_on(bad: int, f: Callable[[Any], Any] = lambda x: x) -> Callable[[Any], Any]:
    def g(x: Any) -> Any:
        if x == bad:
            raise Boom(f"bad {x}")
        return f(x)

    return g


def _supervised(flow: Any, directive: Supervision) -> Any:
    return flow.with_attributes(Attributes.supervision_strategy(lambda e: directive))


_SUPERVISED: list[tuple[str, Callable[[], Any], list[Any], list[Any], list[Any]]] = [
    ("map", lambda: Flow().map(_raise_on(2, lambda x: x * 10)), [1, 2, 3], [10, 30], [10, 30]),
    ("filter", lambda: Flow().filter(_raise_on(2, lambda x: True)), [1, 2, 3], [1, 3], [1, 3]),
    (
        "filter_not",
        lambda: Flow().filter_not(_raise_on(2, lambda x: False)),
        [1, 2, 3],
        [1, 3],
        [1, 3],
    ),
    (
        "scan",
        lambda: Flow().scan(0, lambda a, x: a + _raise_on(3)(x)),
        [1, 2, 3, 4],
        [0, 1, 3, 7],
        [0, 1, 3, 0, 4],  # restart resets the accumulator and emits it (Akka FlowScanSpec)
    ),
    (
        "fold",
        lambda: Flow().fold(0, lambda a, x: a + _raise_on(3)(x)),
        [1, 2, 3, 4],
        [7],
        [4],
    ),
    (
        "reduce",
        lambda: Flow().reduce(lambda a, x: a + _raise_on(3)(x)),
        [1, 2, 3, 4],
        [7],
        [4],
    ),
    (
        "map_concat",
        lambda: Flow().map_concat(_raise_on(2, lambda x: [x, x])),
        [1, 2, 3],
        [1, 1, 3, 3],
        [1, 1, 3, 3],
    ),
    (
        "take_while",
        lambda: Flow().take_while(_raise_on(2, lambda x: True)),
        [1, 2, 3],
        [1, 3],
        [1, 3],
    ),
    (
        "drop_while",
        lambda: Flow().drop_while(_raise_on(2, lambda x: x < 3)),
        [1, 2, 3, 1],
        [3, 1],
        [3, 1],
    ),
]


SUPERVISED = [SupervisedOp(*s) for s in _SUPERVISED]
SUP_IDS = [s.name for s in SUPERVISED]


class TestSimpleOperators:
    """Every operator of ``OPS``: elements, completion, failures, cancellation, demand,
    supervision."""

    @pytest.mark.parametrize("op", OPS, ids=OP_IDS)
    async def test_elements_and_completion(self, mat: Materializer, op: Op) -> None:
        out = await Source.from_iterable(op.xs).via(op.make()).run_with(Sink.seq(), mat)
        assert out == op.expected

    @pytest.mark.parametrize("op", OPS, ids=OP_IDS)
    async def test_elements_one_by_one_with_probes(self, mat: Materializer, op: Op) -> None:
        """Demand one at a time: exactly the expected elements, never one unrequested
        (completion needs no demand and may come right after the last element)."""
        probe = Source.from_iterable(op.xs).via(op.make()).run_with(TestSink.probe(), mat)
        await settle()
        assert all(kind != "next" for kind, _ in probe._events.items)
        for y in op.expected:
            await probe.request_next(y)
            await settle()
            assert all(kind != "next" for kind, _ in probe._events.items)
        probe.request(1)
        await probe.expect_complete()

    @pytest.mark.parametrize("op", OPS, ids=OP_IDS)
    async def test_upstream_failure_reaches_downstream(self, mat: Materializer, op: Op) -> None:
        err = Boom("upstream")
        pub, sub = TestSource.probe().via(op.make()).to_mat(TestSink.probe(), Keep.both).run(mat)
        sub.request(100)
        if op.name == "take_0":  # completes (and cancels upstream) before upstream can fail
            await sub.expect_complete()
            await pub.expect_cancellation()
            return
        pub.send_error(err)
        got = []
        while True:
            kind, v = await sub._next_event("error")
            if kind == "error":
                break
            got.append(v)  # zero of scan / start of intersperse may come first
        assert v is err
        if op.name == "stateful_map":  # on_complete's value comes first (Akka FlowStatefulMapSpec)
            assert got == [0]
            return
        assert op.name in EMIT_FIRST or not got

    @pytest.mark.parametrize("op", OPS, ids=OP_IDS)
    async def test_upstream_failure_future(self, mat: Materializer, op: Op) -> None:
        err = Boom("upstream")
        src = Source.from_iterable(op.xs).concat(Source.failed(err))
        if op.name == "take_0":  # completes before upstream can fail
            assert await src.via(op.make()).run_with(Sink.seq(), mat) == []
            return
        with pytest.raises(Boom) as info:
            await src.via(op.make()).run_with(Sink.seq(), mat)
        assert info.value is err

    @pytest.mark.parametrize("op", OPS, ids=OP_IDS)
    async def test_downstream_cancellation_cancels_upstream(
        self, mat: Materializer, op: Op
    ) -> None:
        pub, sub = TestSource.probe().via(op.make()).to_mat(TestSink.probe(), Keep.both).run(mat)
        sub.request(1)
        await settle()
        sub.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize("op", OPS, ids=OP_IDS)
    async def test_demand_is_respected(self, mat: Materializer, op: Op) -> None:
        """Upstream is not asked before downstream asks (except for aggregating operators),
        and one downstream request never yields two elements."""
        pub, sub = TestSource.probe().via(op.make()).to_mat(TestSink.probe(), Keep.both).run(mat)
        await settle()
        if op.name in PREFETCHING:
            assert pub.pending_demand == 1
        elif op.name not in ("take_0",):
            assert pub.pending_demand == 0
        sub.request(1)
        await settle()
        sent = 0
        for x in op.xs:
            if pub.pending_demand > sent:
                pub.send_next(x)
                sent += 1
                await settle()
        await settle()
        assert len(sub._events.items) <= 1
        sub.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize("op", SUPERVISED, ids=SUP_IDS)
    async def test_user_function_failure_stops_by_default(
        self, mat: Materializer, op: SupervisedOp
    ) -> None:
        with pytest.raises(Boom):
            await Source.from_iterable(op.xs).via(op.make()).run_with(Sink.seq(), mat)

    @pytest.mark.parametrize("decider", ["resume", "restart"])
    @pytest.mark.parametrize("op", SUPERVISED, ids=SUP_IDS)
    async def test_supervision(self, mat: Materializer, op: SupervisedOp, decider: str) -> None:
        """Resume drops the failing element; restart also resets the operator's state."""
        flow = _supervised(op.make(), getattr(Supervision, decider))
        expected = op.resumed if decider == "resume" else op.restarted
        assert await Source.from_iterable(op.xs).via(flow).run_with(Sink.seq(), mat) == expected

    @pytest.mark.parametrize("op", SUPERVISED, ids=SUP_IDS)
    async def test_supervision_resume_with_probes(
        self, mat: Materializer, op: SupervisedOp
    ) -> None:
        """Resume keeps honouring demand: one element per request, then completion."""
        flow = _supervised(op.make(), Supervision.resume)
        probe = Source.from_iterable(op.xs).via(flow).run_with(TestSink.probe(), mat)
        for y in op.resumed:
            await probe.request_next(y)
        probe.request(1)
        await probe.expect_complete()

    async def test_supervision_is_scoped_to_the_operator(self, mat: Materializer) -> None:
        resumed = _supervised(Flow().map(_raise_on(2)), Supervision.resume)
        flow = resumed.map(_raise_on(3))
        with pytest.raises(Boom, match="bad 3"):
            await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), mat)

    @pytest.mark.parametrize(
        ("build", "before"),
        [
            (lambda s: s.map(lambda x: None if x == 3 else x), [1, 2]),
            (
                lambda s: (
                    s.map(lambda x: x).filter(lambda x: True).map(lambda x: None if x == 3 else x)
                ),
                [1, 2],
            ),
            (lambda s: s.scan(0, lambda a, x: None if x == 3 else a + x), [0, 1, 3]),
            # scan(None, f) is refused when built: the Scan stage itself reaches the fused path
            (
                lambda s: s.via(Flow.from_graph(Scan(None, lambda a, x: x))).filter(lambda x: True),
                [],
            ),
        ],
        ids=["map", "map-filter-map", "scan", "scan-zero-then-filter"],
    )
    async def test_a_function_returning_none_fails_after_the_elements_before_it(
        self, mat: Materializer, build: Callable[[Any], Any], before: list[Any]
    ) -> None:
        seen: list[Any] = []
        with pytest.raises(Exception, match=r"Cannot push None.*2\.13"):
            await build(Source.from_iterable([1, 2, 3, 4])).run_with(Sink.foreach(seen.append), mat)
        assert seen == before


class TestMap:
    """``map``."""

    async def test_map_resume_keeps_going(self, materializer: Materializer) -> None:
        def f(x: int) -> int:
            if x == 2:
                raise Boom()
            return x * 10

        flow = Flow().map(f).with_attributes(resuming())
        assert await Source.from_iterable([1, 2, 3]).via(flow).run_with(
            Sink.seq(), materializer
        ) == [
            10,
            30,
        ]

    async def test_map_failure_fails_stream_with_original_error(self, mat: Materializer) -> None:
        err = Boom("map")

        def f(x: int) -> int:
            if x == 2:
                raise err
            return x

        probe = Source.from_iterable([1, 2, 3]).map(f).run_with(TestSink.probe(), mat)
        probe.request(5)
        await probe.expect_next(1)
        assert await probe.expect_error() is err

    async def test_map_returning_none_fails_naming_the_stage(self, mat: Materializer) -> None:
        from reactive import PortStateError

        with pytest.raises(PortStateError, match=r"\[map\].*None"):
            await Source.from_iterable([1, 2]).map(lambda x: None).run_with(Sink.seq(), mat)


class TestFilter:
    """``filter``."""

    async def test_filter_many_elements_with_a_small_demand(
        self, materializer: Materializer
    ) -> None:
        # FlowFilterSpec "not blow up with high request counts"
        sub = (
            Source.from_iterable(itertools.repeat(1, 1000))
            .concat(Source.single(2))
            .filter(lambda x: x != 1)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(1)
        await sub.expect_next(2)
        await sub.expect_complete()


class TestMapConcat:
    """``map_concat``."""

    async def test_map_concat_resume_with_list_and_iterator(
        self, materializer: Materializer
    ) -> None:
        def lists(x: int) -> list[int]:
            if x == 3:
                raise Boom()
            return [x]

        def iters(x: int) -> Any:
            if x == 3:
                raise Boom()
            return iter([x])

        for f in (lists, iters):
            flow = Flow().map_concat(f).with_attributes(resuming())
            sub = (
                Source.from_iterable(range(1, 6)).via(flow).run_with(TestSink.probe(), materializer)
            )
            sub.request(4)
            await sub.expect_next(1, 2, 4, 5)
            await sub.expect_complete()

    async def test_map_concat_of_groups_with_slow_downstream(
        self, materializer: Materializer
    ) -> None:
        groups = [list(range(i, i + 5)) for i in range(1, 21, 5)]
        sub = (
            Source.from_iterable(groups)
            .map_concat(lambda g: g)
            .run_with(TestSink.probe(), materializer)
        )
        for i in range(1, 21):
            assert await sub.request_next() == i
        sub.request(1)
        await sub.expect_complete()

    async def test_map_concat_is_lazy(self, mat: Materializer) -> None:
        """The iterable is consumed only as demand arrives."""
        pulled: list[int] = []

        def gen(x: int) -> Any:
            for i in range(3):
                pulled.append(i)
                yield x + i

        probe = Source.single(10).map_concat(gen).run_with(TestSink.probe(), mat)
        await probe.request_next(10)
        await settle()
        assert len(pulled) <= 2
        await probe.request_next(11)
        await probe.request_next(12)
        probe.request(1)
        await probe.expect_complete()


class TestStatefulMapConcat:
    """``stateful_map_concat``."""

    async def test_stateful_map_concat_restart(self, materializer: Materializer) -> None:
        flow = Flow().stateful_map_concat(_prev_repeater).with_attributes(restarting())
        sub = (
            Source.from_iterable([2, 1, 3, 4, 1]).via(flow).run_with(TestSink.probe(), materializer)
        )
        sub.request(2)
        await sub.expect_next(1, 1)
        sub.request(4)
        await sub.expect_next(1, 1, 1, 1)
        await sub.expect_complete()

    async def test_stateful_map_concat_resume(self, materializer: Materializer) -> None:
        flow = Flow().stateful_map_concat(_prev_repeater).with_attributes(resuming())
        sub = (
            Source.from_iterable([2, 1, 3, 4, 1]).via(flow).run_with(TestSink.probe(), materializer)
        )
        sub.request(2)
        await sub.expect_next(1, 1)
        assert await sub.request_next() == 4
        sub.request(4)
        await sub.expect_next(1, 1, 1, 1)
        await sub.expect_complete()

    async def test_stateful_map_concat_restart_recreates_function(self, mat: Materializer) -> None:
        def factory() -> Callable[[int], list[int]]:
            seen: list[int] = []

            def f(x: int) -> list[int]:
                if x == 0:
                    raise Boom("zero")
                seen.append(x)
                return [len(seen)]

            return f

        flow = _supervised(Flow().stateful_map_concat(factory), Supervision.restart)
        out = await Source.from_iterable([5, 5, 0, 5]).via(flow).run_with(Sink.seq(), mat)
        assert out == [1, 2, 1]


class FailingClose:
    """A ``stateful_map`` ``on_complete`` that counts its calls and raises ``exc`` (on the
    first call only with ``first_only``)."""

    def __init__(self, exc: Exception, *, first_only: bool = False) -> None:
        self.exc = exc
        self.first_only = first_only
        self.calls = 0

    def __call__(self, state: Any) -> None:
        self.calls += 1
        if not self.first_only or self.calls == 1:
            raise self.exc


async def stateful_map_past_first(
    materializer: Materializer, zero: Any, on_complete: Callable[[Any], Any]
) -> tuple[Any, Any]:
    """A pass-through ``stateful_map`` (state ``zero``, closing with ``on_complete``) between
    probes, element 1 already through: ``(pub, sub)``."""
    pub, sub = flow_probes(
        Flow().stateful_map(lambda: zero, lambda s, x: (s, x), on_complete), materializer
    )
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    return pub, sub


class TestStatefulMap:
    """``stateful_map``."""

    async def test_stateful_map_happy_case_calls_on_complete_once(
        self, materializer: Materializer
    ) -> None:
        gate = Gate()
        sub = (
            Source.from_iterable(range(1, 6))
            .stateful_map(lambda: 0, lambda s, x: (s + x, (s, x)), gate)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(6)
        await sub.expect_next((0, 1), (1, 2), (3, 3), (6, 4), (10, 5))
        await sub.expect_complete()
        assert gate.calls == 1

    async def test_stateful_map_remembers_state_on_complete(
        self, materializer: Materializer
    ) -> None:
        def f(state: list[int], x: int) -> tuple[list[int], list[int]]:
            state = [*state, x]
            return ([], state) if len(state) == 3 else (state, [])

        gate = Gate(lambda s: s)
        out = await (
            Source.from_iterable(range(1, 11))
            .stateful_map(list, f, gate)
            .map_concat(lambda xs: xs)
            .run_with(Sink.seq(), materializer)
        )
        assert out == list(range(1, 11))
        assert gate.calls == 1

    async def test_stateful_map_resume_restart_stop(self, materializer: Materializer) -> None:
        gate = Gate()
        resumed = (
            Source.from_iterable(range(1, 6))
            .via(Flow().stateful_map(lambda: 0, _failing_on(lambda x: x % 2 == 0), gate))
            .with_attributes(resuming())
        )
        assert await resumed.run_with(Sink.seq(), materializer) == [(0, 1), (1, 3), (4, 5)]
        assert gate.calls == 1

        gate = Gate()
        restarted = Source.from_iterable(range(1, 6)).via(
            Flow()
            .stateful_map(lambda: 0, _failing_on(lambda x: x % 3 == 0), gate)
            .with_attributes(restarting())
        )
        assert await restarted.run_with(Sink.seq(), materializer) == [
            (0, 1),
            (1, 2),
            (0, 4),
            (4, 5),
        ]
        assert gate.calls == 2

        gate = Gate()
        sub = (
            Source.from_iterable(range(1, 6))
            .stateful_map(lambda: 0, _failing_on(lambda x: x % 3 == 0), gate)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(5)
        await sub.expect_next((0, 1), (1, 2))
        assert isinstance(await sub.expect_error(), Boom)
        assert gate.calls == 1

    async def test_stateful_map_upstream_failure_calls_on_complete(
        self, materializer: Materializer
    ) -> None:
        gate = Gate()
        pub, sub = flow_probes(
            Flow().stateful_map(lambda: 0, lambda s, x: (s + x, (s, x)), gate), materializer
        )
        sub.request(5)
        pub.send_next(1)
        await sub.expect_next((0, 1))
        pub.send_error(Boom())
        assert isinstance(await sub.expect_error(), Boom)
        assert gate.calls == 1

    async def test_stateful_map_upstream_failure_emits_the_on_complete_value_first(
        self,
        materializer: Materializer,
    ) -> None:
        # "defer upstream failure and remember state"
        gate = Gate(lambda s: (s, -1))
        pub, sub = flow_probes(
            Flow().stateful_map(lambda: 0, lambda s, x: (s + x, (s, x)), gate), materializer
        )
        sub.request(5)
        for x in range(1, 5):
            pub.send_next(x)
        await sub.expect_next((0, 1), (1, 2), (3, 3), (6, 4))
        pub.send_error(Boom())
        await sub.expect_next((10, -1))
        assert isinstance(await sub.expect_error(), Boom)
        assert gate.calls == 1

    async def test_stateful_map_downstream_cancel_calls_on_complete(
        self, materializer: Materializer
    ) -> None:
        gate = Gate(lambda s: (s, -1))
        pub = (
            TestSource.probe()
            .stateful_map(lambda: 100, lambda s, x: (s + x, (s, x)), gate)
            .to(Sink.cancelled())
            .run(materializer)
        )
        await pub.expect_cancellation()
        assert gate.calls == 1

        gate = Gate(lambda s: (s, -1))
        pub, sub = flow_probes(
            Flow().stateful_map(lambda: 100, lambda s, x: (s + x, (s, x)), gate), materializer
        )
        sub.cancel(Boom())
        await pub.expect_cancellation()
        assert gate.calls == 1

    async def test_stateful_map_on_complete_called_when_f_stops_the_stream(
        self,
        materializer: Materializer,
    ) -> None:
        gate = Gate()

        def f(s: int, x: int) -> tuple[int, int]:
            raise Boom()

        with pytest.raises(Boom):
            await (
                Source.single(1)
                .stateful_map(lambda: -1, f, gate)
                .run_with(Sink.ignore(), materializer)
            )
        assert gate.calls == 1

    async def test_stateful_map_on_complete_called_on_abrupt_termination(self) -> None:
        gate = Gate()
        mat = Materializer()
        done = (
            Source.single(1)
            .concat(Source.never())
            .stateful_map(lambda: -1, lambda s, x: (x, x), gate)
            .run_with(Sink.ignore(), mat)
        )
        await settle()
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await done
        assert gate.calls == 1

    async def test_stateful_map_on_complete_called_once_when_f_and_on_complete_fail(
        self,
        materializer: Materializer,
    ) -> None:
        on_complete = FailingClose(ValueError("boom"), first_only=True)

        def f(s: Any, x: Any) -> Any:
            raise Boom("failing read")

        sub = (
            Source.repeat(1)
            .stateful_map(lambda: "res", f, on_complete)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(1)
        err = await sub.expect_error()
        assert isinstance(err, ValueError) and str(err) == "boom"
        assert on_complete.calls == 1

    async def test_stateful_map_on_complete_failing_on_upstream_complete(
        self,
        materializer: Materializer,
    ) -> None:
        on_complete = FailingClose(ValueError("boom"))
        pub, sub = await stateful_map_past_first(materializer, "res", on_complete)
        sub.request(1)
        pub.send_complete()
        err = await sub.expect_error()
        assert isinstance(err, ValueError)
        assert on_complete.calls == 1

    async def test_stateful_map_on_complete_none_emits_nothing(self, mat: Materializer) -> None:
        flow = Flow().stateful_map(lambda: 0, lambda s, x: (s + 1, x), lambda s: None)
        assert await Source.from_iterable([1, 2]).via(flow).run_with(Sink.seq(), mat) == [1, 2]

    async def test_stateful_map_restart_emits_on_complete_value_first(
        self,
        materializer: Materializer,
    ) -> None:
        # Akka "emit onClose return value before restarting"
        counter = itertools.count(1)

        def f(s: int, elem: str) -> tuple[int, str]:
            if elem == "boom":
                raise Boom("boom")
            return s, f"{elem}{s}"

        flow = Flow().stateful_map(lambda: next(counter), f, lambda s: "onClose")
        pub, sub = flow_probes(flow.with_attributes(restarting()), materializer)
        sub.request(1)
        pub.send_next("one")
        await sub.expect_next("one1")
        sub.request(1)
        pub.send_next("boom")
        await sub.expect_next("onClose")
        sub.request(1)
        pub.send_next("two")
        await sub.expect_next("two2")
        sub.cancel()
        await pub.expect_cancellation()

    async def test_stateful_map_on_complete_failing_on_cancel_is_called_once(
        self,
        materializer: Materializer,
    ) -> None:
        on_complete = FailingClose(Boom("boom"))
        pub, sub = await stateful_map_past_first(materializer, 23, on_complete)
        sub.cancel()
        await pub.expect_cancellation()
        assert on_complete.calls == 1


class TestScan:
    """``scan``."""

    async def test_scan_matches_itertools_accumulate(self, materializer: Materializer) -> None:
        xs = [(i * 7919) % 1000 - 500 for i in range(300)]
        out = (
            await Source.from_iterable(xs).scan(0, operator.add).run_with(Sink.seq(), materializer)
        )
        assert out == list(itertools.accumulate(xs, initial=0))

    async def test_scan_empty_failed_fails_with_the_same_instance(
        self, materializer: Materializer
    ) -> None:
        err = Boom("fail!")
        fut = (
            Source.failed(err)
            .scan(0, operator.add)
            .run_fold([], lambda a, x: [*a, x], materializer)
        )
        with pytest.raises(Boom) as info:
            await fut
        assert info.value is err

    async def test_scan_emits_values_promptly(self, materializer: Materializer) -> None:
        # Source.single(1).concat(Source.maybe) in the spec: the second source never completes.
        out = await (
            Source.single(1)
            .concat(Source.never())
            .scan(0, operator.add)
            .take(2)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [0, 1]

    @pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
    async def test_scan_restart_emits_zero_again(self, fast: bool) -> None:
        async with Materializer(fast_paths=fast) as mat:
            flow = Flow().scan(0, positive).with_attributes(restarting())
            out = await Source.from_iterable([1, 3, -1, 5, 7]).via(flow).run_with(Sink.seq(), mat)
        assert out == [0, 1, 4, 0, 5, 12]

    @pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
    async def test_scan_resume_keeps_the_accumulator(self, fast: bool) -> None:
        async with Materializer(fast_paths=fast) as mat:
            flow = Flow().scan(0, positive).with_attributes(resuming())
            out = await Source.from_iterable([1, 3, -1, 5, 7]).via(flow).run_with(Sink.seq(), mat)
        assert out == [0, 1, 4, 9, 16]

    async def test_scan_restart_with_probes_respects_demand(
        self, materializer: Materializer
    ) -> None:
        pub, sub = flow_probes(Flow().scan(0, positive).with_attributes(restarting()), materializer)
        sub.request(2)
        await sub.expect_next(0)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next(1)
        await pub.expect_no_message(0.02)  # no demand: scan does not pull
        sub.request(1)
        await pub.expect_request()
        pub.send_next(-1)  # restart: the zero is emitted again on that demand
        await sub.expect_next(0)
        sub.request(1)
        await pub.expect_request()
        pub.send_next(5)
        await sub.expect_next(5)
        pub.send_complete()
        await sub.expect_complete()

    async def test_scan_upstream_failure_emits_zero_or_error(
        self, materializer: Materializer
    ) -> None:
        sub = Source.failed(Boom()).scan(0, operator.add).run_with(TestSink.probe(), materializer)
        # expectNextOrError(0, ex): either the zero then the error, or the error alone
        with pytest.raises(Boom):
            await sub.to_list()

    async def test_scan_does_not_pull_before_second_demand(self, mat: Materializer) -> None:
        pub, sub = (
            TestSource.probe().scan(0, operator.add).to_mat(TestSink.probe(), Keep.both).run(mat)
        )
        await sub.request_next(0)
        await settle()
        assert pub.pending_demand == 0
        sub.request(1)
        await pub.expect_request()
        pub.send_next(5)
        await sub.expect_next(5)
        pub.send_complete()
        sub.request(1)
        await sub.expect_complete()


class TestFold:
    """``fold``."""

    async def test_fold_source_flow_and_sink_compose(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(1, 101))
        fold_flow = Flow().fold(0, operator.add)
        out = (
            await src.fold(0, operator.add)
            .via(fold_flow)
            .run_with(Sink.fold(0, operator.add), materializer)
        )
        assert out == 5050

    async def test_fold_propagates_an_upstream_error(self, materializer: Materializer) -> None:
        def check(x: int) -> int:
            if x > 50:
                raise Boom("Boom!")
            return x

        fut = Source.from_iterable(range(1, 101)).map(check).run_fold(0, operator.add, materializer)
        with pytest.raises(Boom):
            await fut

    async def test_fold_flow_restart_and_resume(self, materializer: Materializer) -> None:
        def f(acc: int, x: int) -> int:
            if x == 50:
                raise Boom()
            return acc + x

        src = Source.from_iterable(range(1, 101))
        resumed = await src.via(Flow().fold(0, f).with_attributes(resuming())).run_with(
            Sink.head(), materializer
        )
        restarted = await src.via(Flow().fold(0, f).with_attributes(restarting())).run_with(
            Sink.head(), materializer
        )
        assert resumed == 5050 - 50
        assert restarted == sum(range(51, 101))


class TestReduce:
    """``reduce``."""

    async def test_reduce_source_flow_and_sink_compose(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(1, 101)).filter(lambda _: True).map(lambda x: x)
        flow = Flow().filter(lambda _: True).reduce(operator.add).map(lambda x: x)
        out = (
            await src.reduce(operator.add)
            .via(flow)
            .run_with(Sink.reduce(operator.add), materializer)
        )
        assert out == 5050

    async def test_reduce_flow_restart_reseeds_with_the_next_element(
        self,
        materializer: Materializer,
    ) -> None:
        def f(acc: int, x: int) -> int:
            if x == 50:
                raise Boom()
            return acc + x

        src = Source.from_iterable(range(1, 101))
        resumed = await src.via(Flow().reduce(f).with_attributes(resuming())).run_with(
            Sink.head(), materializer
        )
        restarted = await src.via(Flow().reduce(f).with_attributes(restarting())).run_with(
            Sink.head(), materializer
        )
        sink_restarted = await src.run_with(
            Sink.reduce(f).with_attributes(restarting()), materializer
        )
        assert resumed == 5050 - 50
        assert restarted == sum(range(51, 101))
        assert sink_restarted == sum(range(51, 101))

    @pytest.mark.parametrize(
        "run",
        [
            lambda m: Source.empty().run_reduce(operator.add, m),
            lambda m: Source.empty().reduce(operator.add).run_with(Sink.fold(0, operator.add), m),
            lambda m: Source.empty().run_with(Sink.reduce(operator.add), m),
        ],
        ids=["run_reduce", "flow_reduce", "sink_reduce"],
    )
    async def test_reduce_empty_fails_with_no_such_element(
        self, materializer: Materializer, run: Any
    ) -> None:
        with pytest.raises(NoSuchElementError) as info:
            await run(materializer)
        assert isinstance(info.value, LookupError)
        assert "empty stream" in str(info.value)

    async def test_reduce_stop_fails_the_materialized_value(
        self, materializer: Materializer
    ) -> None:
        def f(acc: int, x: int) -> int:
            if acc > 50:
                raise Boom("Boom!")
            return acc + x

        with pytest.raises(Boom):
            await Source.from_iterable(range(1, 101)).run_reduce(f, materializer)

    async def test_reduce_of_empty_fails(self, mat: Materializer) -> None:
        with pytest.raises(NoSuchElementError):
            await Source.empty().reduce(operator.add).run_with(Sink.seq(), mat)


class TestTake:
    """``take``."""

    @pytest.mark.parametrize("n", [0, -1])
    async def test_take_zero_or_less_completes_eagerly_without_upstream(
        self, materializer: Materializer, n: int
    ) -> None:
        assert await Source.never().take(n).run_with(Sink.seq(), materializer) == []
        pub, sub = flow_probes(Flow().take(n), materializer)
        sub.request(10)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_take_cancels_upstream_after_n(self, mat: Materializer) -> None:
        pub, sub = TestSource.probe().take(2).to_mat(TestSink.probe(), Keep.both).run(mat)
        sub.request(10)
        await pub.expect_request()
        pub.send_next(1)
        await pub.expect_request()
        pub.send_next(2)
        await sub.expect_next(1, 2)
        await sub.expect_complete()
        await pub.expect_cancellation()

    async def test_take_on_infinite_source_completes(self, mat: Materializer) -> None:
        assert await Source.repeat(1).take(5).run_with(Sink.seq(), mat) == [1] * 5


class TestTakeWhile:
    """``take_while``."""

    async def test_take_while_empty_and_resume(self, materializer: Materializer) -> None:
        assert (
            await Source.empty().take_while(lambda x: x < 2).run_with(Sink.seq(), materializer)
            == []
        )

        def p(x: int) -> bool:
            if x == 3:
                raise Boom()
            return True

        flow = Flow().take_while(p).with_attributes(resuming())
        out = await Source.from_iterable(range(1, 5)).via(flow).run_with(Sink.seq(), materializer)
        assert out == [1, 2, 4]

    async def test_take_while_completes_and_cancels_upstream(self, mat: Materializer) -> None:
        out = (
            await Source.repeat(1)
            .scan(0, operator.add)
            .take_while(lambda x: x < 4)
            .run_with(Sink.seq(), mat)
        )
        assert out == [0, 1, 2, 3]


class TestDrop:
    """``drop``."""

    async def test_drop_negative_drops_nothing(self, materializer: Materializer) -> None:
        assert await Source.from_iterable([1, 2, 3]).drop(-1).run_with(
            Sink.seq(), materializer
        ) == [
            1,
            2,
            3,
        ]

    async def test_drop_more_than_available_completes_empty(
        self, materializer: Materializer
    ) -> None:
        assert (
            await Source.from_iterable([1, 2, 3]).drop(5).run_with(Sink.seq(), materializer) == []
        )


class TestDropWhile:
    """``drop_while``."""

    async def test_drop_while_resume_and_restart(self, materializer: Materializer) -> None:
        def p1(x: int) -> bool:
            if x < 3:
                return True
            raise Boom()

        resumed = Source.from_iterable(range(1, 5)).via(
            Flow().drop_while(p1).with_attributes(resuming())
        )
        assert await resumed.run_with(Sink.seq(), materializer) == []

        def p2(x: int) -> bool:
            if x == 2:
                raise Boom()
            return x in (1, 3)

        restarted = Source.from_iterable(range(1, 5)).via(
            Flow().drop_while(p2).with_attributes(restarting())
        )
        assert await restarted.run_with(Sink.seq(), materializer) == [4]


class TestLimit:
    """``limit``."""

    async def test_limit_edges(self, materializer: Materializer) -> None:
        assert await Source.empty().limit(0).run_with(Sink.head_option(), materializer) is None
        xs = list(range(1, 7))
        assert await Source.from_iterable(xs).limit(6).run_with(Sink.seq(), materializer) == xs
        assert await Source.from_iterable(xs).limit(100).run_with(Sink.seq(), materializer) == xs
        with pytest.raises(StreamLimitReachedError):
            await Source.from_iterable(xs).limit(-1).run_with(Sink.seq(), materializer)
        with pytest.raises(StreamLimitReachedError):
            await Source.single(1).limit(0).run_with(Sink.seq(), materializer)

    async def test_limit_emits_n_elements_before_failing(self, materializer: Materializer) -> None:
        sub = Source.from_iterable(range(1, 7)).limit(4).run_with(TestSink.probe(), materializer)
        sub.request(10)
        await sub.expect_next(1, 2, 3, 4)
        assert isinstance(await sub.expect_error(), StreamLimitReachedError)

    async def test_limit_exceeded_fails(self, mat: Materializer) -> None:
        with pytest.raises(StreamLimitReachedError):
            await Source.from_iterable(range(10)).limit(3).run_with(Sink.seq(), mat)
        with pytest.raises(StreamLimitReachedError):
            await (
                Source.from_iterable([3, 3])
                .limit_weighted(5, lambda x: x)
                .run_with(Sink.seq(), mat)
            )


class TestLimitWeighted:
    """``limit_weighted``."""

    async def test_limit_weighted_edges(self, materializer: Materializer) -> None:
        words = ["this", "is", "some", "string"]
        total = sum(map(len, words))
        zero_cost = Source.from_iterable(range(1, 16)).limit_weighted(1, lambda _: 0)
        assert await zero_cost.run_with(Sink.seq(), materializer) == list(range(1, 16))
        exact = Source.from_iterable(words).limit_weighted(total, len)
        assert await exact.run_with(Sink.seq(), materializer) == words
        with pytest.raises(StreamLimitReachedError):
            await (
                Source.from_iterable(words)
                .limit_weighted(total - 1, len)
                .run_with(Sink.seq(), materializer)
            )
        empty = Source.empty().limit_weighted(0, lambda _: 999999)
        assert await empty.run_with(Sink.head_option(), materializer) is None


class TestGrouped:
    """``grouped``."""

    @pytest.mark.parametrize("n", [0, -1])
    def test_grouped_rejects_non_positive_size(self, n: int) -> None:
        with pytest.raises(ValueError):
            Flow().grouped(n)
        with pytest.raises(ValueError):
            Source.empty().grouped(n)

    async def test_grouped_with_probes(self, materializer: Materializer) -> None:
        pub, sub = flow_probes(Flow().grouped(3), materializer)
        sub.request(1)
        for x in range(3):
            await pub.expect_request()
            pub.send_next(x)
        await sub.expect_next([0, 1, 2])
        sub.request(1)
        await pub.expect_request()
        pub.send_next(3)
        pub.send_complete()
        await sub.expect_next([3])
        await sub.expect_complete()


class TestSliding:
    """``sliding``."""

    @pytest.mark.parametrize(("n", "step"), [(0, 1), (-1, 1), (2, 0), (2, -1)])
    def test_sliding_rejects_non_positive_arguments(self, n: int, step: int) -> None:
        with pytest.raises(ValueError):
            Flow().sliding(n, step)

    async def test_sliding_behaves_like_scala_collections_sliding(
        self, materializer: Materializer
    ) -> None:
        cases = [
            (length, win, step)
            for length in (0, 1, 2, 3, 5, 7, 8, 13)
            for win in (1, 2, 3, 5)
            for step in (1, 2, 3, 4, 7)
        ]
        runs = [
            Source.from_iterable(range(length))
            .sliding(win, step)
            .run_with(Sink.seq(), materializer)
            for length, win, step in cases
        ]
        results = await asyncio.gather(*runs)
        for (length, win, step), got in zip(cases, results, strict=True):
            want = scala_sliding(list(range(length)), win, step)
            assert got == want, (length, win, step)

    async def test_sliding_on_empty_source(self, materializer: Materializer) -> None:
        assert await Source.empty().sliding(1).run_with(Sink.seq(), materializer) == []


class TestIntersperse:
    """``intersperse``."""

    async def test_intersperse_into_fold(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 2, 3]).map(str).intersperse(",")
        assert await src.run_fold("", operator.add, materializer) == "1,2,3"

    async def test_intersperse_surrounds_empty_and_single(self, materializer: Materializer) -> None:
        empty = await Source.empty().intersperse(",", "[", "]").run_with(Sink.seq(), materializer)
        single = (
            await Source.single("1").intersperse(",", "[", "]").run_with(Sink.seq(), materializer)
        )
        assert "".join(empty) == "[]"
        assert "".join(single) == "[1]"

    async def test_intersperse_start_only_and_end_only(self, materializer: Materializer) -> None:
        start = Source.from_iterable("ab").intersperse(",", start="[")
        end = Source.from_iterable("ab").intersperse(",", end="]")
        assert "".join(await start.run_with(Sink.seq(), materializer)) == "[a,b"
        assert "".join(await end.run_with(Sink.seq(), materializer)) == "a,b]"
        empty_end = Source.empty().intersperse(",", end="]")
        assert await empty_end.run_with(Sink.seq(), materializer) == ["]"]

    async def test_intersperse_prepend_only_with_concat(self, materializer: Materializer) -> None:
        src = Source.single(">> ").concat(Source.from_iterable("123").intersperse(","))
        assert "".join(await src.run_with(Sink.seq(), materializer)) == ">> 1,2,3"

    async def test_intersperse_completes_with_source_and_cancels_with_sink(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = flow_probes(Flow().intersperse(","), materializer)
        sub.request(10)
        pub.send_next("a").send_next("b").send_complete()
        await sub.expect_next("a", ",", "b")
        await sub.expect_complete()

        pub, sub = flow_probes(Flow().intersperse(","), materializer)
        sub.request(10)
        pub.send_next("a").send_next("b")
        await sub.expect_next("a", ",")
        sub.cancel()
        await pub.expect_cancellation()

    async def test_intersperse_start_is_emitted_before_the_first_element(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = flow_probes(Flow().intersperse(",", "[", "]"), materializer)
        sub.request(1)
        await sub.expect_next("[")
        sub.request(10)
        pub.send_next("a")
        await sub.expect_next("a")
        pub.send_error(Boom())
        assert isinstance(await sub.expect_error(), Boom)


class TestZipWithIndex:
    """``zip_with_index``."""

    async def test_zip_with_index_with_probes(self, materializer: Materializer) -> None:
        sub = (
            Source.from_iterable(range(7, 11))
            .zip_with_index()
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(2)
        await sub.expect_next((7, 0), (8, 1))
        sub.request(3)
        await sub.expect_next((9, 2), (10, 3))
        await sub.expect_complete()


class TestDropRepeated:
    """``drop_repeated``."""

    async def test_drop_repeated(self, materializer: Materializer) -> None:
        src = Source.from_iterable([1, 1, 2, 2, 2, 3, 1, 1])
        assert await src.drop_repeated().run_with(Sink.seq(), materializer) == [1, 2, 3, 1]
        words = Source.from_iterable(["a", "A", "b", "B", "b", "a"])
        out = await words.drop_repeated(lambda p, x: p.lower() == x.lower()).run_with(
            Sink.seq(), materializer
        )
        assert out == ["a", "b", "a"]
        assert await Source.empty().drop_repeated().run_with(Sink.seq(), materializer) == []

    async def test_drop_repeated_demand_and_cancel(self, materializer: Materializer) -> None:
        pub, sub = flow_probes(Flow().drop_repeated(), materializer)
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next(1)
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)  # dropped: pulls again
        await pub.expect_request()
        pub.send_next(2)
        await sub.expect_next(2)
        sub.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize(
        ("directive", "expected"),
        [(Supervision.resume, [1, 3, 4]), (Supervision.restart, [1, 3, 3, 4])],
    )
    async def test_drop_repeated_supervision(
        self, materializer: Materializer, directive: Supervision, expected: list[int]
    ) -> None:
        def eq(p: int, x: int) -> bool:
            if x == 2:
                raise Boom("eq")
            return p == x

        # resume keeps "previous" (1): then 3, 3 -> 3; restart forgets it: then 3 again
        src = Source.from_iterable([1, 2, 3, 2, 3, 4])
        flow = supervised(Flow().drop_repeated(eq), directive)
        assert await src.via(flow).run_with(Sink.seq(), materializer) == expected
        with pytest.raises(Boom):
            await src.drop_repeated(eq).run_with(Sink.seq(), materializer)


class TestLog:
    """``log``."""

    async def test_log_passes_through_and_logs(
        self, mat: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        import logging

        caplog.set_level(logging.DEBUG, logger="reactive.log")
        out = await Source.from_iterable([1, 2]).log("mine").run_with(Sink.seq(), mat)
        assert out == [1, 2]
        text = caplog.text
        assert "[mine] Element: 1" in text
        assert "[mine] Upstream finished." in text
