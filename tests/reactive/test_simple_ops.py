"""Per-operator specs of the simple (one-in, one-out) operators.

Every operator in ``OPS`` is checked for: its elements and completion (fast paths on and
off), upstream failure, downstream cancellation, and demand (probes on both sides: no
element reaches the sink without a request). Operators that run user code are also
checked for user-function failure and supervision (resume and restart).
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from reactive import (
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


class Boom(Exception):
    """A user-function failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param, name=f"simple:{request.node.name}")
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


def _sliding(xs: list[Any], n: int, step: int) -> list[list[Any]]:
    out = [xs[i : i + n] for i in range(0, max(len(xs) - n, 0) + 1, step)]
    if len(xs) < n and xs:
        return [xs]
    if xs and len(xs) >= n and (len(xs) - n) % step != 0:
        out.append(xs[len(out) * step :])
    return [w for w in out if w]


def _intersperse(xs: list[Any], sep: Any, start: Any, end: Any) -> list[Any]:
    out: list[Any] = [start]
    for i, x in enumerate(xs):
        if i:
            out.append(sep)
        out.append(x)
    out.append(end)
    return out


# (id, flow factory, input, expected output)
OPS: list[tuple[str, Callable[[], Any], list[Any], list[Any]]] = [
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
OP_IDS = [o[0] for o in OPS]
# operators that ask upstream for elements before downstream asks (they aggregate)
PREFETCHING = {"fold", "fold_empty", "reduce"}
# operators whose first element may come before any upstream element
EMIT_FIRST = {"scan", "scan_empty", "intersperse_ends", "intersperse_ends_empty"}


@pytest.mark.parametrize(("name", "make", "xs", "expected"), OPS, ids=OP_IDS)
async def test_elements_and_completion(
    mat: Materializer, name: str, make: Callable[[], Any], xs: list[Any], expected: list[Any]
) -> None:
    out = await Source.from_iterable(xs).via(make()).run_with(Sink.seq(), mat)
    assert out == expected


@pytest.mark.parametrize(("name", "make", "xs", "expected"), OPS, ids=OP_IDS)
async def test_elements_one_by_one_with_probes(
    mat: Materializer, name: str, make: Callable[[], Any], xs: list[Any], expected: list[Any]
) -> None:
    """Demand one at a time: exactly the expected elements, never one unrequested
    (completion needs no demand and may come right after the last element)."""
    probe = Source.from_iterable(xs).via(make()).run_with(TestSink.probe(), mat)
    await settle()
    assert all(kind != "next" for kind, _ in probe._events.items)
    for y in expected:
        await probe.request_next(y)
        await settle()
        assert all(kind != "next" for kind, _ in probe._events.items)
    probe.request(1)
    await probe.expect_complete()


@pytest.mark.parametrize(("name", "make", "xs", "expected"), OPS, ids=OP_IDS)
async def test_upstream_failure_reaches_downstream(
    mat: Materializer, name: str, make: Callable[[], Any], xs: list[Any], expected: list[Any]
) -> None:
    err = Boom("upstream")
    pub, sub = TestSource.probe().via(make()).to_mat(TestSink.probe(), Keep.both).run(mat)
    sub.request(100)
    if name == "take_0":  # completes (and cancels upstream) before upstream can fail
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
    if name == "stateful_map":  # on_complete's value comes first (Akka FlowStatefulMapSpec)
        assert got == [0]
        return
    assert name in EMIT_FIRST or not got


@pytest.mark.parametrize(("name", "make", "xs", "expected"), OPS, ids=OP_IDS)
async def test_upstream_failure_future(
    mat: Materializer, name: str, make: Callable[[], Any], xs: list[Any], expected: list[Any]
) -> None:
    err = Boom("upstream")
    src = Source.from_iterable(xs).concat(Source.failed(err))
    if name == "take_0":  # completes before upstream can fail
        assert await src.via(make()).run_with(Sink.seq(), mat) == []
        return
    with pytest.raises(Boom) as info:
        await src.via(make()).run_with(Sink.seq(), mat)
    assert info.value is err


@pytest.mark.parametrize(("name", "make", "xs", "expected"), OPS, ids=OP_IDS)
async def test_downstream_cancellation_cancels_upstream(
    mat: Materializer, name: str, make: Callable[[], Any], xs: list[Any], expected: list[Any]
) -> None:
    pub, sub = TestSource.probe().via(make()).to_mat(TestSink.probe(), Keep.both).run(mat)
    sub.request(1)
    await settle()
    sub.cancel()
    await pub.expect_cancellation()


@pytest.mark.parametrize(("name", "make", "xs", "expected"), OPS, ids=OP_IDS)
async def test_demand_is_respected(
    mat: Materializer, name: str, make: Callable[[], Any], xs: list[Any], expected: list[Any]
) -> None:
    """Upstream is not asked before downstream asks (except for aggregating operators),
    and one downstream request never yields two elements."""
    pub, sub = TestSource.probe().via(make()).to_mat(TestSink.probe(), Keep.both).run(mat)
    await settle()
    if name in PREFETCHING:
        assert pub.pending_demand == 1
    elif name not in ("take_0",):
        assert pub.pending_demand == 0
    sub.request(1)
    await settle()
    sent = 0
    for x in xs:
        if pub.pending_demand > sent:
            pub.send_next(x)
            sent += 1
            await settle()
    await settle()
    assert len(sub._events.items) <= 1
    sub.cancel()
    await pub.expect_cancellation()


async def test_map_failure_fails_stream_with_original_error(mat: Materializer) -> None:
    err = Boom("map")

    def f(x: int) -> int:
        if x == 2:
            raise err
        return x

    probe = Source.from_iterable([1, 2, 3]).map(f).run_with(TestSink.probe(), mat)
    probe.request(5)
    await probe.expect_next(1)
    assert await probe.expect_error() is err


def _raise_on(bad: int, f: Callable[[Any], Any] = lambda x: x) -> Callable[[Any], Any]:
    def g(x: Any) -> Any:
        if x == bad:
            raise Boom(f"bad {x}")
        return f(x)

    return g


def _supervised(flow: Any, directive: Supervision) -> Any:
    return flow.with_attributes(Attributes.supervision_strategy(lambda e: directive))


# (id, flow from a failing function, input, stop error, resume output, restart output)
SUPERVISED: list[tuple[str, Callable[[], Any], list[Any], list[Any], list[Any]]] = [
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
SUP_IDS = [s[0] for s in SUPERVISED]


@pytest.mark.parametrize(("name", "make", "xs", "resumed", "restarted"), SUPERVISED, ids=SUP_IDS)
async def test_user_function_failure_stops_by_default(
    mat: Materializer,
    name: str,
    make: Callable[[], Any],
    xs: list[Any],
    resumed: Any,
    restarted: Any,
) -> None:
    with pytest.raises(Boom):
        await Source.from_iterable(xs).via(make()).run_with(Sink.seq(), mat)


@pytest.mark.parametrize(("name", "make", "xs", "resumed", "restarted"), SUPERVISED, ids=SUP_IDS)
async def test_supervision_resume(
    mat: Materializer,
    name: str,
    make: Callable[[], Any],
    xs: list[Any],
    resumed: Any,
    restarted: Any,
) -> None:
    flow = _supervised(make(), Supervision.resume)
    assert await Source.from_iterable(xs).via(flow).run_with(Sink.seq(), mat) == resumed


@pytest.mark.parametrize(("name", "make", "xs", "resumed", "restarted"), SUPERVISED, ids=SUP_IDS)
async def test_supervision_restart(
    mat: Materializer,
    name: str,
    make: Callable[[], Any],
    xs: list[Any],
    resumed: Any,
    restarted: Any,
) -> None:
    flow = _supervised(make(), Supervision.restart)
    assert await Source.from_iterable(xs).via(flow).run_with(Sink.seq(), mat) == restarted


@pytest.mark.parametrize(("name", "make", "xs", "resumed", "restarted"), SUPERVISED, ids=SUP_IDS)
async def test_supervision_resume_with_probes(
    mat: Materializer,
    name: str,
    make: Callable[[], Any],
    xs: list[Any],
    resumed: Any,
    restarted: Any,
) -> None:
    """Resume keeps honouring demand: one element per request, then completion."""
    flow = _supervised(make(), Supervision.resume)
    probe = Source.from_iterable(xs).via(flow).run_with(TestSink.probe(), mat)
    for y in resumed:
        await probe.request_next(y)
    probe.request(1)
    await probe.expect_complete()


async def test_supervision_is_scoped_to_the_operator(mat: Materializer) -> None:
    resumed = _supervised(Flow().map(_raise_on(2)), Supervision.resume)
    flow = resumed.map(_raise_on(3))
    with pytest.raises(Boom, match="bad 3"):
        await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), mat)


async def test_stateful_map_concat_restart_recreates_function(mat: Materializer) -> None:
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


async def test_reduce_of_empty_fails(mat: Materializer) -> None:
    with pytest.raises(NoSuchElementError):
        await Source.empty().reduce(operator.add).run_with(Sink.seq(), mat)


async def test_limit_exceeded_fails(mat: Materializer) -> None:
    with pytest.raises(StreamLimitReachedError):
        await Source.from_iterable(range(10)).limit(3).run_with(Sink.seq(), mat)
    with pytest.raises(StreamLimitReachedError):
        await Source.from_iterable([3, 3]).limit_weighted(5, lambda x: x).run_with(Sink.seq(), mat)


async def test_take_cancels_upstream_after_n(mat: Materializer) -> None:
    pub, sub = TestSource.probe().take(2).to_mat(TestSink.probe(), Keep.both).run(mat)
    sub.request(10)
    await pub.expect_request()
    pub.send_next(1)
    await pub.expect_request()
    pub.send_next(2)
    await sub.expect_next(1, 2)
    await sub.expect_complete()
    await pub.expect_cancellation()


async def test_take_on_infinite_source_completes(mat: Materializer) -> None:
    assert await Source.repeat(1).take(5).run_with(Sink.seq(), mat) == [1] * 5


async def test_take_while_completes_and_cancels_upstream(mat: Materializer) -> None:
    out = (
        await Source.repeat(1)
        .scan(0, operator.add)
        .take_while(lambda x: x < 4)
        .run_with(Sink.seq(), mat)
    )
    assert out == [0, 1, 2, 3]


async def test_scan_does_not_pull_before_second_demand(mat: Materializer) -> None:
    pub, sub = TestSource.probe().scan(0, operator.add).to_mat(TestSink.probe(), Keep.both).run(mat)
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


async def test_map_concat_is_lazy(mat: Materializer) -> None:
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


async def test_map_returning_none_fails_naming_the_stage(mat: Materializer) -> None:
    from reactive import PortStateError

    with pytest.raises(PortStateError, match=r"\[map\].*None"):
        await Source.from_iterable([1, 2]).map(lambda x: None).run_with(Sink.seq(), mat)


async def test_stateful_map_on_complete_none_emits_nothing(mat: Materializer) -> None:
    flow = Flow().stateful_map(lambda: 0, lambda s, x: (s + 1, x), lambda s: None)
    assert await Source.from_iterable([1, 2]).via(flow).run_with(Sink.seq(), mat) == [1, 2]


async def test_log_passes_through_and_logs(
    mat: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="reactive.log")
    out = await Source.from_iterable([1, 2]).log("mine").run_with(Sink.seq(), mat)
    assert out == [1, 2]
    text = caplog.text
    assert "[mine] Element: 1" in text
    assert "[mine] Upstream finished." in text


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
        (lambda s: s.via(Flow.from_graph(Scan(None, lambda a, x: x))).filter(lambda x: True), []),
    ],
    ids=["map", "map-filter-map", "scan", "scan-zero-then-filter"],
)
async def test_a_function_returning_none_fails_after_the_elements_before_it(
    mat: Materializer, build: Callable[[Any], Any], before: list[Any]
) -> None:
    seen: list[Any] = []
    with pytest.raises(Exception, match=r"Cannot push None.*2\.13"):
        await build(Source.from_iterable([1, 2, 3, 4])).run_with(Sink.foreach(seen.append), mat)
    assert seen == before
