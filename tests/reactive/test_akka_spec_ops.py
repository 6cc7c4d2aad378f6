"""Acceptance cases mirroring Akka's / Pekko's operator specs (akka-stream-tests).

Each group names the spec it follows (FlowScanSpec, FlowSlidingSpec, HeadSinkSpec, ...)
and checks, through the public API only, the edge cases those specs pin down: empty
streams, failures before and after elements, user functions raising (with the
supervision directives Akka honours for that operator) and ``n <= 0`` arguments. Cases
already covered by test_simple_ops, test_async_ops, test_sources_sinks and
test_buffers_watch_killswitch are not repeated. (The fan-in specs that were here, Zip,
ZipWith, Merge, Concat and Prepend, are with their operators in tests/reactive/ops/.)
"""

from __future__ import annotations

import asyncio
import itertools
import operator
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    Done,
    Flow,
    Keep,
    KillSwitches,
    Materializer,
    NoSuchElementError,
    OverflowStrategy,
    Sink,
    Source,
    StreamLimitReachedError,
    Supervision,
)
from reactive.testkit import ExpectationError, TestSink, TestSource


class Boom(Exception):
    """A user-function failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def resuming() -> Attributes:
    """Akka's ``supervisionStrategy(resumingDecider)``."""
    return Attributes.supervision_strategy(lambda exc: Supervision.resume)


def restarting() -> Attributes:
    """Akka's ``supervisionStrategy(restartingDecider)``."""
    return Attributes.supervision_strategy(lambda exc: Supervision.restart)


def positive(acc: int, x: int) -> int:
    """``require(x > 0); acc + x`` of FlowScanSpec."""
    if x <= 0:
        raise Boom(f"not positive: {x}")
    return acc + x


def probes(flow: Any, mat: Materializer) -> tuple[Any, Any]:
    """(publisher probe, subscriber probe) around ``flow``."""
    return TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(mat)  # type: ignore[no-any-return]


# -- FlowScanSpec ----------------------------------------------------------------------------
async def test_scan_matches_itertools_accumulate(materializer: Materializer) -> None:
    xs = [(i * 7919) % 1000 - 500 for i in range(300)]
    out = await Source.from_iterable(xs).scan(0, operator.add).run_with(Sink.seq(), materializer)
    assert out == list(itertools.accumulate(xs, initial=0))


async def test_scan_empty_failed_fails_with_the_same_instance(materializer: Materializer) -> None:
    err = Boom("fail!")
    fut = Source.failed(err).scan(0, operator.add).run_fold([], lambda a, x: [*a, x], materializer)
    with pytest.raises(Boom) as info:
        await fut
    assert info.value is err


async def test_scan_emits_values_promptly(materializer: Materializer) -> None:
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
async def test_scan_restart_emits_zero_again(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        flow = Flow().scan(0, positive).with_attributes(restarting())
        out = await Source.from_iterable([1, 3, -1, 5, 7]).via(flow).run_with(Sink.seq(), mat)
    assert out == [0, 1, 4, 0, 5, 12]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "plain"])
async def test_scan_resume_keeps_the_accumulator(fast: bool) -> None:
    async with Materializer(fast_paths=fast) as mat:
        flow = Flow().scan(0, positive).with_attributes(resuming())
        out = await Source.from_iterable([1, 3, -1, 5, 7]).via(flow).run_with(Sink.seq(), mat)
    assert out == [0, 1, 4, 9, 16]


async def test_scan_restart_with_probes_respects_demand(materializer: Materializer) -> None:
    pub, sub = probes(Flow().scan(0, positive).with_attributes(restarting()), materializer)
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


async def test_scan_upstream_failure_emits_zero_or_error(materializer: Materializer) -> None:
    sub = Source.failed(Boom()).scan(0, operator.add).run_with(TestSink.probe(), materializer)
    # expectNextOrError(0, ex): either the zero then the error, or the error alone
    with pytest.raises(Boom):
        await sub.to_list()


# -- FlowFoldSpec / FlowReduceSpec -----------------------------------------------------------
async def test_fold_source_flow_and_sink_compose(materializer: Materializer) -> None:
    src = Source.from_iterable(range(1, 101))
    fold_flow = Flow().fold(0, operator.add)
    out = (
        await src.fold(0, operator.add)
        .via(fold_flow)
        .run_with(Sink.fold(0, operator.add), materializer)
    )
    assert out == 5050


async def test_fold_propagates_an_upstream_error(materializer: Materializer) -> None:
    def check(x: int) -> int:
        if x > 50:
            raise Boom("Boom!")
        return x

    fut = Source.from_iterable(range(1, 101)).map(check).run_fold(0, operator.add, materializer)
    with pytest.raises(Boom):
        await fut


async def test_fold_flow_restart_and_resume(materializer: Materializer) -> None:
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


async def test_reduce_source_flow_and_sink_compose(materializer: Materializer) -> None:
    src = Source.from_iterable(range(1, 101)).filter(lambda _: True).map(lambda x: x)
    flow = Flow().filter(lambda _: True).reduce(operator.add).map(lambda x: x)
    out = await src.reduce(operator.add).via(flow).run_with(Sink.reduce(operator.add), materializer)
    assert out == 5050


async def test_reduce_flow_restart_reseeds_with_the_next_element(
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
    sink_restarted = await src.run_with(Sink.reduce(f).with_attributes(restarting()), materializer)
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
    materializer: Materializer, run: Any
) -> None:
    with pytest.raises(NoSuchElementError) as info:
        await run(materializer)
    assert isinstance(info.value, LookupError)
    assert "empty stream" in str(info.value)


async def test_reduce_stop_fails_the_materialized_value(materializer: Materializer) -> None:
    def f(acc: int, x: int) -> int:
        if acc > 50:
            raise Boom("Boom!")
        return acc + x

    with pytest.raises(Boom):
        await Source.from_iterable(range(1, 101)).run_reduce(f, materializer)


# -- FlowTakeSpec / FlowDropSpec / FlowLimitSpec / FlowLimitWeightedSpec ---------------------
@pytest.mark.parametrize("n", [0, -1])
async def test_take_zero_or_less_completes_eagerly_without_upstream(
    materializer: Materializer, n: int
) -> None:
    assert await Source.never().take(n).run_with(Sink.seq(), materializer) == []
    pub, sub = probes(Flow().take(n), materializer)
    sub.request(10)
    await sub.expect_complete()
    await pub.expect_cancellation()


async def test_drop_negative_drops_nothing(materializer: Materializer) -> None:
    assert await Source.from_iterable([1, 2, 3]).drop(-1).run_with(Sink.seq(), materializer) == [
        1,
        2,
        3,
    ]


async def test_drop_more_than_available_completes_empty(materializer: Materializer) -> None:
    assert await Source.from_iterable([1, 2, 3]).drop(5).run_with(Sink.seq(), materializer) == []


async def test_limit_edges(materializer: Materializer) -> None:
    assert await Source.empty().limit(0).run_with(Sink.head_option(), materializer) is None
    xs = list(range(1, 7))
    assert await Source.from_iterable(xs).limit(6).run_with(Sink.seq(), materializer) == xs
    assert await Source.from_iterable(xs).limit(100).run_with(Sink.seq(), materializer) == xs
    with pytest.raises(StreamLimitReachedError):
        await Source.from_iterable(xs).limit(-1).run_with(Sink.seq(), materializer)
    with pytest.raises(StreamLimitReachedError):
        await Source.single(1).limit(0).run_with(Sink.seq(), materializer)


async def test_limit_emits_n_elements_before_failing(materializer: Materializer) -> None:
    sub = Source.from_iterable(range(1, 7)).limit(4).run_with(TestSink.probe(), materializer)
    sub.request(10)
    await sub.expect_next(1, 2, 3, 4)
    assert isinstance(await sub.expect_error(), StreamLimitReachedError)


async def test_limit_weighted_edges(materializer: Materializer) -> None:
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


# -- FlowGroupedSpec / FlowSlidingSpec -------------------------------------------------------
@pytest.mark.parametrize("n", [0, -1])
def test_grouped_rejects_non_positive_size(n: int) -> None:
    with pytest.raises(ValueError):
        Flow().grouped(n)
    with pytest.raises(ValueError):
        Source.empty().grouped(n)


@pytest.mark.parametrize(("n", "step"), [(0, 1), (-1, 1), (2, 0), (2, -1)])
def test_sliding_rejects_non_positive_arguments(n: int, step: int) -> None:
    with pytest.raises(ValueError):
        Flow().sliding(n, step)


async def test_grouped_with_probes(materializer: Materializer) -> None:
    pub, sub = probes(Flow().grouped(3), materializer)
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


def scala_sliding(xs: list[int], n: int, step: int) -> list[list[int]]:
    """Scala 2.13 ``Iterator.sliding(n, step)``, which FlowSlidingSpec compares against:
    windows start at 0, step, 2*step, ...; a window is dropped when it adds no element
    the previous one did not have (and the last one may be shorter)."""
    out = []
    for i in range(0, len(xs), step):
        if i == 0 or i - step + n < len(xs):
            out.append(xs[i : i + n])
    return out


async def test_sliding_behaves_like_scala_collections_sliding(materializer: Materializer) -> None:
    cases = [
        (length, win, step)
        for length in (0, 1, 2, 3, 5, 7, 8, 13)
        for win in (1, 2, 3, 5)
        for step in (1, 2, 3, 4, 7)
    ]
    runs = [
        Source.from_iterable(range(length)).sliding(win, step).run_with(Sink.seq(), materializer)
        for length, win, step in cases
    ]
    results = await asyncio.gather(*runs)
    for (length, win, step), got in zip(cases, results, strict=True):
        want = scala_sliding(list(range(length)), win, step)
        assert got == want, (length, win, step)


async def test_sliding_on_empty_source(materializer: Materializer) -> None:
    assert await Source.empty().sliding(1).run_with(Sink.seq(), materializer) == []


# -- FlowIntersperseSpec ---------------------------------------------------------------------
async def test_intersperse_into_fold(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3]).map(str).intersperse(",")
    assert await src.run_fold("", operator.add, materializer) == "1,2,3"


async def test_intersperse_surrounds_empty_and_single(materializer: Materializer) -> None:
    empty = await Source.empty().intersperse(",", "[", "]").run_with(Sink.seq(), materializer)
    single = await Source.single("1").intersperse(",", "[", "]").run_with(Sink.seq(), materializer)
    assert "".join(empty) == "[]"
    assert "".join(single) == "[1]"


async def test_intersperse_start_only_and_end_only(materializer: Materializer) -> None:
    start = Source.from_iterable("ab").intersperse(",", start="[")
    end = Source.from_iterable("ab").intersperse(",", end="]")
    assert "".join(await start.run_with(Sink.seq(), materializer)) == "[a,b"
    assert "".join(await end.run_with(Sink.seq(), materializer)) == "a,b]"
    empty_end = Source.empty().intersperse(",", end="]")
    assert await empty_end.run_with(Sink.seq(), materializer) == ["]"]


async def test_intersperse_prepend_only_with_concat(materializer: Materializer) -> None:
    src = Source.single(">> ").concat(Source.from_iterable("123").intersperse(","))
    assert "".join(await src.run_with(Sink.seq(), materializer)) == ">> 1,2,3"


async def test_intersperse_completes_with_source_and_cancels_with_sink(
    materializer: Materializer,
) -> None:
    pub, sub = probes(Flow().intersperse(","), materializer)
    sub.request(10)
    pub.send_next("a").send_next("b").send_complete()
    await sub.expect_next("a", ",", "b")
    await sub.expect_complete()

    pub, sub = probes(Flow().intersperse(","), materializer)
    sub.request(10)
    pub.send_next("a").send_next("b")
    await sub.expect_next("a", ",")
    sub.cancel()
    await pub.expect_cancellation()


async def test_intersperse_start_is_emitted_before_the_first_element(
    materializer: Materializer,
) -> None:
    pub, sub = probes(Flow().intersperse(",", "[", "]"), materializer)
    sub.request(1)
    await sub.expect_next("[")
    sub.request(10)
    pub.send_next("a")
    await sub.expect_next("a")
    pub.send_error(Boom())
    assert isinstance(await sub.expect_error(), Boom)


# -- FlowZipWithIndexSpec --------------------------------------------------------------------
async def test_zip_with_index_with_probes(materializer: Materializer) -> None:
    sub = (
        Source.from_iterable(range(7, 11)).zip_with_index().run_with(TestSink.probe(), materializer)
    )
    sub.request(2)
    await sub.expect_next((7, 0), (8, 1))
    sub.request(3)
    await sub.expect_next((9, 2), (10, 3))
    await sub.expect_complete()


# -- FlowTakeWhileSpec / FlowDropWhileSpec / FlowFilterSpec / FlowMapSpec ---------------------
async def test_take_while_empty_and_resume(materializer: Materializer) -> None:
    assert await Source.empty().take_while(lambda x: x < 2).run_with(Sink.seq(), materializer) == []

    def p(x: int) -> bool:
        if x == 3:
            raise Boom()
        return True

    flow = Flow().take_while(p).with_attributes(resuming())
    out = await Source.from_iterable(range(1, 5)).via(flow).run_with(Sink.seq(), materializer)
    assert out == [1, 2, 4]


async def test_drop_while_resume_and_restart(materializer: Materializer) -> None:
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


async def test_filter_many_elements_with_a_small_demand(materializer: Materializer) -> None:
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


async def test_map_resume_keeps_going(materializer: Materializer) -> None:
    def f(x: int) -> int:
        if x == 2:
            raise Boom()
        return x * 10

    flow = Flow().map(f).with_attributes(resuming())
    assert await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer) == [
        10,
        30,
    ]


# -- FlowMapConcatSpec / FlowStatefulMapConcatSpec -------------------------------------------
async def test_map_concat_resume_with_list_and_iterator(materializer: Materializer) -> None:
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
        sub = Source.from_iterable(range(1, 6)).via(flow).run_with(TestSink.probe(), materializer)
        sub.request(4)
        await sub.expect_next(1, 2, 4, 5)
        await sub.expect_complete()


async def test_map_concat_of_groups_with_slow_downstream(materializer: Materializer) -> None:
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


async def test_stateful_map_concat_restart(materializer: Materializer) -> None:
    flow = Flow().stateful_map_concat(_prev_repeater).with_attributes(restarting())
    sub = Source.from_iterable([2, 1, 3, 4, 1]).via(flow).run_with(TestSink.probe(), materializer)
    sub.request(2)
    await sub.expect_next(1, 1)
    sub.request(4)
    await sub.expect_next(1, 1, 1, 1)
    await sub.expect_complete()


async def test_stateful_map_concat_resume(materializer: Materializer) -> None:
    flow = Flow().stateful_map_concat(_prev_repeater).with_attributes(resuming())
    sub = Source.from_iterable([2, 1, 3, 4, 1]).via(flow).run_with(TestSink.probe(), materializer)
    sub.request(2)
    await sub.expect_next(1, 1)
    assert await sub.request_next() == 4
    sub.request(4)
    await sub.expect_next(1, 1, 1, 1)
    await sub.expect_complete()


# -- FlowStatefulMapSpec ---------------------------------------------------------------------
class Gate:
    """Counts ``on_complete`` calls (BeenCalledTimesGate of the spec)."""

    def __init__(self, value: Any = None) -> None:
        self.calls = 0
        self.value = value

    def __call__(self, state: Any) -> Any:
        self.calls += 1
        return self.value(state) if callable(self.value) else self.value


async def test_stateful_map_happy_case_calls_on_complete_once(materializer: Materializer) -> None:
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


async def test_stateful_map_remembers_state_on_complete(materializer: Materializer) -> None:
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


def _failing_on(pred: Any) -> Any:
    def f(s: int, x: int) -> tuple[int, tuple[int, int]]:
        if pred(x):
            raise Boom()
        return s + x, (s, x)

    return f


async def test_stateful_map_resume_restart_stop(materializer: Materializer) -> None:
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
    assert await restarted.run_with(Sink.seq(), materializer) == [(0, 1), (1, 2), (0, 4), (4, 5)]
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


async def test_stateful_map_upstream_failure_calls_on_complete(materializer: Materializer) -> None:
    gate = Gate()
    pub, sub = probes(
        Flow().stateful_map(lambda: 0, lambda s, x: (s + x, (s, x)), gate), materializer
    )
    sub.request(5)
    pub.send_next(1)
    await sub.expect_next((0, 1))
    pub.send_error(Boom())
    assert isinstance(await sub.expect_error(), Boom)
    assert gate.calls == 1


async def test_stateful_map_upstream_failure_emits_the_on_complete_value_first(
    materializer: Materializer,
) -> None:
    # "defer upstream failure and remember state"
    gate = Gate(lambda s: (s, -1))
    pub, sub = probes(
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


async def test_stateful_map_downstream_cancel_calls_on_complete(materializer: Materializer) -> None:
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
    pub, sub = probes(
        Flow().stateful_map(lambda: 100, lambda s, x: (s + x, (s, x)), gate), materializer
    )
    sub.cancel(Boom())
    await pub.expect_cancellation()
    assert gate.calls == 1


async def test_stateful_map_on_complete_called_when_f_stops_the_stream(
    materializer: Materializer,
) -> None:
    gate = Gate()

    def f(s: int, x: int) -> tuple[int, int]:
        raise Boom()

    with pytest.raises(Boom):
        await (
            Source.single(1).stateful_map(lambda: -1, f, gate).run_with(Sink.ignore(), materializer)
        )
    assert gate.calls == 1


async def test_stateful_map_on_complete_called_on_abrupt_termination() -> None:
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
    materializer: Materializer,
) -> None:
    calls = 0

    def on_complete(s: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("boom")

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
    assert calls == 1


async def test_stateful_map_on_complete_failing_on_upstream_complete(
    materializer: Materializer,
) -> None:
    calls = 0

    def on_complete(s: Any) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("boom")

    pub, sub = probes(
        Flow().stateful_map(lambda: "res", lambda s, x: (s, x), on_complete), materializer
    )
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    sub.request(1)
    pub.send_complete()
    err = await sub.expect_error()
    assert isinstance(err, ValueError)
    assert calls == 1


# -- FlowMapAsyncSpec / FlowMapAsyncUnorderedSpec --------------------------------------------
def recording(started: list[Any], result: Any = None) -> Any:
    """An async function recording each call (synchronously) and returning ``x``."""

    def f(x: Any) -> Any:
        started.append(x)

        async def run() -> Any:
            return x if result is None else result(x)

        return run()

    return f


async def test_map_async_runs_no_more_calls_than_parallelism_and_demand(
    materializer: Materializer,
) -> None:
    started: list[int] = []
    sub = (
        Source.from_iterable(range(1, 21))
        .map_async(8, recording(started))
        .run_with(TestSink.probe(), materializer)
    )
    await settle()
    assert started == []  # nothing runs before the first demand
    sub.request(1)
    await sub.expect_next(1)
    await settle()
    assert sorted(started) == list(range(1, 10))
    sub.request(2)
    await sub.expect_next(2, 3)
    await settle()
    assert sorted(started) == list(range(1, 12))
    sub.request(10)
    await sub.expect_next(*range(4, 14))
    await settle()
    assert sorted(started) == list(range(1, 21))
    await sub.expect_no_message(0.02)
    sub.cancel()


async def test_map_async_unordered_runs_no_more_calls_than_demand(
    materializer: Materializer,
) -> None:
    started: list[int] = []
    sub = (
        Source.from_iterable(range(1, 21))
        .map_async_unordered(4, recording(started))
        .run_with(TestSink.probe(), materializer)
    )
    await settle()
    assert started == []
    sub.request(1)
    got = {await sub.expect_next()}
    await settle()
    assert sorted(started) == [1, 2, 3, 4, 5]
    sub.request(25)
    got |= set(await sub.expect_next_n(19))
    assert got == set(range(1, 21))
    await sub.expect_complete()


async def test_map_async_unordered_emits_in_completion_order(materializer: Materializer) -> None:
    gates = {n: asyncio.Event() for n in range(1, 5)}

    async def f(n: int) -> int:
        await gates[n].wait()
        return n

    sub = (
        Source.from_iterable(range(1, 5))
        .map_async_unordered(4, f)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(5)
    for n in (2, 4, 3, 1):
        gates[n].set()
        await sub.expect_next(n)
    await sub.expect_complete()


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_failed_future_mid_stream_resume_skips_it(
    materializer: Materializer, ordered: bool
) -> None:
    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in range(6)]
    flow = (Flow().map_async if ordered else Flow().map_async_unordered)(5, lambda f: f)
    out = (
        Source.from_iterable(futs)
        .via(flow.with_attributes(resuming()))
        .run_with(Sink.seq(), materializer)
    )
    await settle()
    for i in (0, 1, 3, 4, 5):
        futs[i].set_result("abcdef"[i])
    futs[2].set_exception(Boom("Booom!"))
    got = await out
    assert (got if ordered else sorted(got)) == ["a", "b", "d", "e", "f"]


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_resume_after_multiple_failures(
    materializer: Materializer, ordered: bool
) -> None:
    async def fail(i: int) -> str:
        raise Boom(f"failure{i}")

    async def happy() -> str:
        return "happy!"

    def f(i: int) -> Any:
        return happy() if i == 5 else fail(i)

    flow = (Flow().map_async if ordered else Flow().map_async_unordered)(2, f)
    head = (
        Source.from_iterable(range(6))
        .via(flow.with_attributes(resuming()))
        .run_with(Sink.head(), materializer)
    )
    assert await head == "happy!"


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_raising_function_resume(materializer: Materializer, ordered: bool) -> None:
    async def ok(n: int) -> int:
        return n

    def f(n: int) -> Any:
        if n == 3:
            raise Boom("err4")
        return ok(n)

    flow = (Flow().map_async if ordered else Flow().map_async_unordered)(4, f)
    out = (
        await Source.from_iterable(range(1, 6))
        .via(flow.with_attributes(resuming()))
        .run_with(Sink.seq(), materializer)
    )
    assert (out if ordered else sorted(out)) == [1, 2, 4, 5]


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_finish_after_failure_with_parallelism_one(
    materializer: Materializer, ordered: bool
) -> None:
    async def f(n: int) -> int:
        if n == 3:
            raise Boom("err3b")
        return n

    flow = (Flow().map_async if ordered else Flow().map_async_unordered)(1, f)
    head = (
        Source.from_iterable(range(1, 4))
        .via(flow.with_attributes(resuming()))
        .grouped(10)
        .run_with(Sink.head(), materializer)
    )
    assert await head == [1, 2]


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_none_results(materializer: Materializer, ordered: bool) -> None:
    def op(par: int, f: Any) -> Any:
        return (Flow().map_async if ordered else Flow().map_async_unordered)(par, f)

    async def some_none(v: int) -> str | None:
        return str(v) if v == 0 or v >= 100 else None

    async def all_none(v: int) -> None:
        return None

    out = (
        await Source.from_iterable(range(103))
        .via(op(3, some_none))
        .run_with(Sink.seq(), materializer)
    )
    assert sorted(out) == ["0", "100", "101", "102"]
    none = (
        await Source.from_iterable(range(201))
        .via(op(3, all_none))
        .run_with(Sink.seq(), materializer)
    )
    assert none == []

    gate = asyncio.Event()

    async def last_is_none(v: int) -> str | None:
        if v == 2:
            await gate.wait()
            return None
        if v == 3:
            gate.set()
        return str(v)

    out = (
        await Source.from_iterable([1, 2, 3])
        .via(op(2, last_is_none))
        .run_with(Sink.seq(), materializer)
    )
    assert sorted(out) == ["1", "3"]


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_completes_without_further_demand(
    materializer: Materializer, ordered: bool
) -> None:
    async def slow(v: int) -> int:
        await asyncio.sleep(0.01)
        return v

    for par, xs in ((1, [1]), (2, [1, 2])):
        flow = (Flow().map_async if ordered else Flow().map_async_unordered)(par, slow)
        sub = Source.from_iterable(xs).via(flow).run_with(TestSink.probe(), materializer)
        sub.request(len(xs))
        assert sorted(await sub.expect_next_n(len(xs))) == xs
        await sub.expect_complete()


@pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
async def test_map_async_decider_called_once_per_failure(
    materializer: Materializer, ordered: bool
) -> None:
    calls = 0

    def decider(exc: BaseException) -> Any:
        nonlocal calls
        if isinstance(exc, Boom):
            calls += 1
            return Supervision.resume
        return Supervision.stop

    async def f(elem: bool) -> bool:
        if elem:
            raise Boom("this has gone too far")
        return elem

    def g(elem: bool) -> Any:
        if elem:
            raise Boom("this has gone too far")
        return f(elem)

    for fn in (f, g):
        calls = 0
        flow = (Flow().map_async if ordered else Flow().map_async_unordered)(1, fn)
        out = (
            await Source.from_iterable([True, False])
            .via(flow.add_attributes(Attributes.supervision_strategy(decider)))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [False]
        assert calls == 1


async def test_map_async_failure_mid_stream_fails_asap(materializer: Materializer) -> None:
    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in range(6)]

    async def upper(fut: Any) -> str:
        return str(await fut).upper()

    sub = Source.from_iterable(futs).map_async(5, upper).run_with(TestSink.probe(), materializer)
    sub.request(100)
    await settle()
    futs[0].set_result("a")
    futs[1].set_result("b")
    futs[2].set_exception(Boom("Boom at C"))
    for i in (3, 4, 5):
        futs[i].set_result("def"[i - 3])
    # As Akka's FlowMapAsyncSpec: "A" and "B" may be emitted (in order) or overtaken by the
    # error, then the stream fails with C's error; "D", "E", "F" (ready too) never come.
    elements: list[Any] = []
    with pytest.raises(ExpectationError, match=r"got error Boom\('Boom at C'\)"):  # noqa: PT012
        while True:
            elements.append(await sub.expect_next())
    assert elements in ([], ["A"], ["A", "B"])
    await sub.expect_no_message(0.05)


# -- SinkForeachAsyncSpec --------------------------------------------------------------------
async def test_foreach_async_empty_source(materializer: Materializer) -> None:
    async def f(x: Any) -> None:
        return None

    assert await Source.empty().run_with(Sink.foreach_async(3, f), materializer) is Done


async def test_foreach_async_is_unordered_a_slow_call_does_not_block_new_ones(
    materializer: Materializer,
) -> None:
    # Akka: foreachAsync is mapAsyncUnordered + ignore, so a finished call frees its slot
    # even while an earlier one is still running.
    gates = {n: asyncio.Event() for n in range(1, 6)}
    started: list[int] = []
    finished: list[int] = []

    async def f(n: int) -> None:
        started.append(n)
        await gates[n].wait()
        finished.append(n)

    done = Source.from_iterable(range(1, 6)).run_with(Sink.foreach_async(2, f), materializer)
    await settle()
    assert started == [1, 2]
    gates[2].set()
    await settle()
    assert started == [1, 2, 3]  # 1 still runs
    for n in (3, 4, 5):
        gates[n].set()
        await settle()
    assert not done.done()
    gates[1].set()
    assert await done is Done
    assert finished == [2, 3, 4, 5, 1]


async def test_foreach_async_resume_after_failed_call(materializer: Materializer) -> None:
    seen: list[int] = []

    async def f(n: int) -> None:
        if n == 3:
            raise Boom("err1")
        seen.append(n)

    sink = Sink.foreach_async(4, f).with_attributes(resuming())
    assert await Source.from_iterable(range(1, 6)).run_with(sink, materializer) is Done
    assert sorted(seen) == [1, 2, 4, 5]


async def test_foreach_async_stop_on_failed_call_fails_infinite_stream(
    materializer: Materializer,
) -> None:
    async def f(n: int) -> None:
        await asyncio.sleep(0)
        if n == 3:
            raise Boom("err2")

    done = Source.unfold(1, lambda s: (s + 1, s)).run_with(Sink.foreach_async(3, f), materializer)
    with pytest.raises(Boom):
        await done


async def test_stateful_map_restart_emits_on_complete_value_first(
    materializer: Materializer,
) -> None:
    # Akka "emit onClose return value before restarting"
    counter = itertools.count(1)

    def f(s: int, elem: str) -> tuple[int, str]:
        if elem == "boom":
            raise Boom("boom")
        return s, f"{elem}{s}"

    flow = Flow().stateful_map(lambda: next(counter), f, lambda s: "onClose")
    pub, sub = probes(flow.with_attributes(restarting()), materializer)
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
    materializer: Materializer,
) -> None:
    calls = 0

    def on_complete(s: Any) -> None:
        nonlocal calls
        calls += 1
        raise Boom("boom")

    pub, sub = probes(
        Flow().stateful_map(lambda: 23, lambda s, x: (s, x), on_complete), materializer
    )
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    sub.cancel()
    await pub.expect_cancellation()
    assert calls == 1


# -- FlowBufferSpec / FlowDetacherSpec -------------------------------------------------------
async def test_buffer_accepts_elements_while_downstream_is_silent(
    materializer: Materializer,
) -> None:
    pub, sub = probes(Flow().buffer(100, OverflowStrategy.backpressure), materializer)
    for i in range(1, 101):
        pub.send_next(i)
    await settle()
    assert pub.pending_demand == 100  # all 100 fit; the 101st is not asked for
    for i in range(1, 101):
        assert await sub.request_next() == i
    sub.cancel()
    await pub.expect_cancellation()


@pytest.mark.parametrize(
    ("strategy", "sent", "drained"),
    [
        (OverflowStrategy.drop_head, 200, list(range(101, 201))),
        (OverflowStrategy.drop_tail, 200, [*range(1, 100), 200]),
        (OverflowStrategy.drop_buffer, 150, list(range(101, 151))),
        (OverflowStrategy.drop_new, 150, list(range(1, 101))),
    ],
    ids=["drop_head", "drop_tail", "drop_buffer", "drop_new"],
)
async def test_buffer_drop_strategies_as_in_the_spec(
    materializer: Materializer, strategy: Any, sent: int, drained: list[int]
) -> None:
    pub, sub = probes(Flow().buffer(100, strategy), materializer)
    for i in range(1, sent + 1):
        pub.send_next(i)
    await settle(60)
    for i in drained:
        assert await sub.request_next() == i
    sub.request(1)
    await sub.expect_no_message(0.02)
    pub.send_next(-1)
    await sub.expect_next(-1)
    sub.cancel()
    await pub.expect_cancellation()


async def test_buffer_fail_strategy_fails_downstream_and_cancels_upstream(
    materializer: Materializer,
) -> None:
    from reactive import BufferOverflowError

    pub, sub = probes(Flow().buffer(100, OverflowStrategy.fail), materializer)
    for i in range(1, 101):
        pub.send_next(i)
    await settle(60)
    pub.send_next(-1)
    err = await sub.expect_error()
    assert isinstance(err, BufferOverflowError)
    assert "100" in str(err)
    await pub.expect_cancellation()


async def test_buffer_chain_of_different_sizes(materializer: Materializer) -> None:
    bp = OverflowStrategy.backpressure
    out = await (
        Source.from_iterable(range(1000))
        .buffer(1, bp)
        .buffer(10, bp)
        .buffer(256, bp)
        .buffer(1, bp)
        .buffer(5, bp)
        .buffer(128, bp)
        .run_with(Sink.seq(), materializer)
    )
    assert out == list(range(1000))


async def test_detach_passes_elements_and_completion(materializer: Materializer) -> None:
    sub = Source.from_iterable([1, 2, 3]).detach().run_with(TestSink.probe(), materializer)
    sub.request(1)
    await sub.expect_next(1)
    sub.request(3)
    await sub.expect_next(2, 3)
    await sub.expect_complete()


async def test_detach_upstream_failure_and_cancel(materializer: Materializer) -> None:
    pub, sub = probes(Flow().detach(), materializer)
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_error(Boom())
    assert isinstance(await sub.expect_error(), Boom)
    pub, sub = probes(Flow().detach(), materializer)
    sub.cancel()
    await pub.expect_cancellation()


# -- HeadSinkSpec / LastSinkSpec / SeqSinkSpec / TakeLastSinkSpec ----------------------------
async def test_head_yields_first_value_and_cancels_upstream(materializer: Materializer) -> None:
    pub, head = TestSource.probe().to_mat(Sink.head(), Keep.both).run(materializer)
    await pub.expect_request()
    pub.send_next(42)
    assert await head == 42
    await pub.expect_cancellation()


async def test_head_option_yields_first_value_and_cancels_upstream(
    materializer: Materializer,
) -> None:
    pub, head = TestSource.probe().to_mat(Sink.head_option(), Keep.both).run(materializer)
    pub.send_next(42)
    assert await head == 42
    await pub.expect_cancellation()


@pytest.mark.parametrize(
    "sink", [Sink.head, Sink.head_option, Sink.last, Sink.last_option, Sink.seq]
)
async def test_sinks_yield_the_first_error(materializer: Materializer, sink: Any) -> None:
    err = Boom("ex")
    with pytest.raises(Boom) as info:
        await Source.failed(err).run_with(sink(), materializer)
    assert info.value is err


@pytest.mark.parametrize("sink", [Sink.head, Sink.last])
async def test_head_and_last_of_empty_fail_with_no_such_element(
    materializer: Materializer, sink: Any
) -> None:
    with pytest.raises(NoSuchElementError) as info:
        await Source.empty().run_with(sink(), materializer)
    assert isinstance(info.value, LookupError)
    assert "empty stream" in str(info.value)


@pytest.mark.parametrize("sink", [Sink.head_option, Sink.last_option])
async def test_option_sinks_of_empty_yield_none(materializer: Materializer, sink: Any) -> None:
    assert await Source.empty().run_with(sink(), materializer) is None


async def test_last_yields_the_last_value(materializer: Materializer) -> None:
    src = Source.from_iterable(range(1, 43)).map(lambda x: x)
    assert await src.run_with(Sink.last(), materializer) == 42
    assert await src.run_with(Sink.last_option(), materializer) == 42


async def test_last_fails_when_the_stream_fails_after_elements(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2]).concat(Source.failed(Boom()))
    with pytest.raises(Boom):
        await src.run_with(Sink.last(), materializer)
    with pytest.raises(Boom):
        await src.run_with(Sink.last_option(), materializer)


@pytest.mark.parametrize(
    "sink",
    [
        Sink.head,
        Sink.head_option,
        Sink.last,
        Sink.last_option,
        Sink.seq,
        lambda: Sink.take_last(2),
        Sink.ignore,
        lambda: Sink.fold(0, operator.add),
        lambda: Sink.reduce(operator.add),
    ],
    ids=[
        "head",
        "head_option",
        "last",
        "last_option",
        "seq",
        "take_last",
        "ignore",
        "fold",
        "reduce",
    ],
)
async def test_sinks_fail_on_abrupt_termination(sink: Any) -> None:
    mat = Materializer()
    result = Source.never().run_with(sink(), mat)
    await settle(5)
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await result


async def test_seq_sink(materializer: Materializer) -> None:
    xs = list(range(1, 4))
    assert await Source.from_iterable(xs).run_with(Sink.seq(), materializer) == xs
    assert await Source.empty().run_with(Sink.seq(), materializer) == []


async def test_take_last_spec_cases(materializer: Materializer) -> None:
    src = Source.from_iterable(range(1, 7))
    assert await src.run_with(Sink.take_last(3), materializer) == [4, 5, 6]
    assert await src.run_with(Sink.take_last(1), materializer) == [6]
    assert await Source.from_iterable(range(1, 5)).run_with(Sink.take_last(5), materializer) == [
        1,
        2,
        3,
        4,
    ]
    assert await Source.empty().run_with(Sink.take_last(3), materializer) == []
    with pytest.raises(Boom):
        await src.concat(Source.failed(Boom())).run_with(Sink.take_last(3), materializer)


async def test_fold_sink_resume_and_restart(materializer: Materializer) -> None:
    def f(acc: int, x: int) -> int:
        if x == 50:
            raise Boom()
        return acc + x

    src = Source.from_iterable(range(1, 101))
    resumed = await src.run_with(Sink.fold(0, f).with_attributes(resuming()), materializer)
    restarted = await src.run_with(Sink.fold(0, f).with_attributes(restarting()), materializer)
    assert resumed == 5050 - 50
    assert restarted == sum(range(51, 101))
    assert await Source.empty().run_fold(0, operator.add, materializer) == 0


# -- SourceSpec ------------------------------------------------------------------------------
async def test_single_source_with_probe(materializer: Materializer) -> None:
    sub = Source.single(1).run_with(TestSink.probe(), materializer)
    sub.request(1)
    await sub.expect_next(1)
    await sub.expect_complete()


async def test_empty_and_failed_sources_terminate_without_demand(
    materializer: Materializer,
) -> None:
    sub = Source.empty().run_with(TestSink.probe(), materializer)
    await sub.expect_complete()
    sub = Source.failed(Boom()).run_with(TestSink.probe(), materializer)
    assert isinstance(await sub.expect_error(), Boom)


async def test_repeat_source(materializer: Materializer) -> None:
    assert await Source.repeat(42).take(4).run_with(Sink.seq(), materializer) == [42] * 4


async def test_unfold_fibonacci_and_failure(materializer: Materializer) -> None:
    def fib(s: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
        a, b = s
        return None if a > 10_000_000 else ((b, a + b), a)

    out = await Source.unfold((0, 1), fib).run_with(Sink.seq(), materializer)
    assert out[:8] == [0, 1, 1, 2, 3, 5, 8, 13]
    assert out[-1] <= 10_000_000 and len(out) == 36

    def failing(s: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
        a, b = s
        if a > 10_000:
            raise Boom("expected")
        return (b, a + b), a

    with pytest.raises(Boom):
        await Source.unfold((0, 1), failing).run_with(Sink.seq(), materializer)


async def test_unfold_async_fibonacci(materializer: Materializer) -> None:
    async def fib(s: tuple[int, int]) -> tuple[tuple[int, int], int] | None:
        a, b = s
        return None if a > 1000 else ((b, a + b), a)

    out = await Source.unfold_async((0, 1), fib).run_with(Sink.seq(), materializer)
    assert out == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987]


async def test_from_iterable_is_re_run_per_materialization(materializer: Materializer) -> None:
    src = Source.from_iterable(range(3)).map(lambda x: x * 2)
    assert await src.run_with(Sink.seq(), materializer) == [0, 2, 4]
    assert await src.run_with(Sink.seq(), materializer) == [0, 2, 4]


async def test_zip_n_completes_with_the_shortest(materializer: Materializer) -> None:
    sources = [Source.from_iterable([1, 2, 3]), Source.from_iterable([10, 20]), Source.repeat(0)]
    out = await Source.zip_n(sources).run_with(Sink.seq(), materializer)
    assert out == [[1, 10, 0], [2, 20, 0]]


async def test_combine_with_merge_and_concat(materializer: Materializer) -> None:
    from reactive import Concat

    a, b, c = (Source.from_iterable(range(i, i + 3)) for i in (0, 10, 20))
    merged = await Source.combine(a, b, c).run_with(Sink.seq(), materializer)
    assert sorted(merged) == [0, 1, 2, 10, 11, 12, 20, 21, 22]
    concatenated = await Source.combine(a, b, c, strategy=Concat).run_with(Sink.seq(), materializer)
    assert concatenated == [0, 1, 2, 10, 11, 12, 20, 21, 22]


# -- FlowWatchTerminationSpec ----------------------------------------------------------------
async def test_watch_termination_empty_and_completed(materializer: Materializer) -> None:
    done = Source.empty().watch_termination(Keep.right).to(Sink.ignore()).run(materializer)
    assert await done is Done
    done = (
        Source.from_iterable(range(1, 5))
        .watch_termination(Keep.right)
        .to(Sink.ignore())
        .run(materializer)
    )
    assert await done is Done


async def test_watch_termination_in_a_flow_section(materializer: Materializer) -> None:
    flow = Flow().watch_termination(Keep.right).map(lambda x: x + 1)
    done, out = (
        Source.from_iterable([1, 2, 3])
        .via_mat(flow, Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await out == [2, 3, 4]
    assert await done is Done


async def test_watch_termination_fails_with_the_stream_failure(materializer: Materializer) -> None:
    pub, done = TestSource.probe().watch_termination(Keep.both).to(Sink.ignore()).run(materializer)
    pub.send_next(1)
    pub.send_error(Boom())
    with pytest.raises(Boom):
        await done


async def test_watch_termination_on_cancel_completes(materializer: Materializer) -> None:
    (pub, done), sub = (
        TestSource.probe()
        .watch_termination(Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    sub.cancel()
    await pub.expect_cancellation()
    assert await done is Done


async def test_watch_termination_fails_on_abrupt_termination() -> None:
    mat = Materializer()
    done = Source.never().watch_termination(Keep.right).to(Sink.ignore()).run(mat)
    await settle(5)
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await done


# -- KillSwitchSpec --------------------------------------------------------------------------
def switched(mat: Materializer) -> tuple[Any, Any, Any]:
    """(publisher, kill switch, subscriber) around ``KillSwitches.single()``."""
    (pub, switch), sub = (
        TestSource.probe()
        .via_mat(KillSwitches.single(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(mat)
    )
    return pub, switch, sub


async def test_unique_kill_switch_passes_elements_and_ignores_later_abort(
    materializer: Materializer,
) -> None:
    pub, switch, sub = switched(materializer)
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    switch.shutdown()
    await pub.expect_cancellation()
    await sub.expect_complete()
    switch.abort(Boom())  # the first of shutdown/abort wins; later calls do nothing
    await sub.expect_no_message(0.02)


async def test_unique_kill_switch_abort_then_shutdown_is_ignored(
    materializer: Materializer,
) -> None:
    pub, switch, sub = switched(materializer)
    err = Boom("abort")
    switch.abort(err)
    await pub.expect_cancellation()
    assert await sub.expect_error() is err
    switch.shutdown()
    await sub.expect_no_message(0.02)


async def test_unique_kill_switch_after_normal_completion_and_failure(
    materializer: Materializer,
) -> None:
    pub, switch, sub = switched(materializer)
    pub.send_complete()
    await sub.expect_complete()
    switch.shutdown()
    switch.abort(Boom())
    pub, switch, sub = switched(materializer)
    pub.send_error(Boom("up"))
    assert str(await sub.expect_error()) == "up"
    switch.shutdown()
    await sub.expect_no_message(0.02)


async def test_shared_kill_switch_does_not_affect_another_switch(
    materializer: Materializer,
) -> None:
    s1 = KillSwitches.shared("one")
    s2 = KillSwitches.shared("two")
    pub1, sub1 = (
        TestSource.probe().via(s1.flow()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    pub2, sub2 = (
        TestSource.probe().via(s2.flow()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    s1.shutdown()
    await sub1.expect_complete()
    await pub1.expect_cancellation()
    sub2.request(1)
    pub2.send_next(2)
    await sub2.expect_next(2)
    s2.abort(Boom())
    assert isinstance(await sub2.expect_error(), Boom)
    await pub2.expect_cancellation()


async def test_shared_kill_switches_in_an_ordered_chain(materializer: Materializer) -> None:
    s1 = KillSwitches.shared("one")
    s2 = KillSwitches.shared("two")
    pub, sub = (
        TestSource.probe()
        .via(s1.flow())
        .via(s2.flow())
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    sub.request(1)
    pub.send_next(1)
    await sub.expect_next(1)
    s2.shutdown()
    await sub.expect_complete()
    await pub.expect_cancellation()
    s1.abort(Boom())  # the chain is already gone
    await sub.expect_no_message(0.02)


@pytest.mark.parametrize("how", ["shutdown", "abort"])
async def test_shared_kill_switch_flow_materialized_after_trigger(
    materializer: Materializer, how: str
) -> None:
    s = KillSwitches.shared("late")
    if how == "shutdown":
        s.shutdown()
    else:
        s.abort(Boom())
    pub, sub = (
        TestSource.probe().via(s.flow()).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    if how == "shutdown":
        await sub.expect_complete()
    else:
        assert isinstance(await sub.expect_error(), Boom)
    await pub.expect_cancellation()


# -- FlowScanAsyncSpec / FlowFoldAsyncSpec ---------------------------------------------------
async def _sum(acc: int, x: int) -> int:
    return acc + x


async def test_scan_async_complete_after_zero_and_after_pending(materializer: Materializer) -> None:
    pub, sub = probes(Flow().scan_async(0, _sum), materializer)
    sub.request(10)
    await sub.expect_next(0)
    pub.send_complete()
    await sub.expect_complete()

    pub, sub = probes(Flow().scan_async(0, _sum), materializer)
    pub.send_next(1)
    sub.request(10)
    await sub.expect_next(0, 1)
    pub.send_complete()
    await sub.expect_complete()

    pub, sub = probes(Flow().scan_async(0, _sum), materializer)
    sub.request(10)
    await sub.expect_next(0)
    pub.send_error(Boom("bang"))
    assert str(await sub.expect_error()) == "bang"


async def test_scan_async_single_and_large(materializer: Materializer) -> None:
    sub = Source.single(1).scan_async(0, _sum).run_with(TestSink.probe(), materializer)
    sub.request(2)
    await sub.expect_next(0, 1)
    await sub.expect_complete()
    last = (
        await Source.from_iterable(range(1, 2001))
        .scan_async(0, _sum)
        .run_with(Sink.last(), materializer)
    )
    assert last == sum(range(1, 2001))


def _failing_scan(how: str) -> Any:
    def f(acc: int, x: int) -> Any:
        if x < 0:
            if how == "raise":
                raise Boom("non fatal exception")

            async def failed() -> int:
                raise Boom("non fatal exception")

            return failed()
        return _sum(acc, x)

    return f


@pytest.mark.parametrize("how", ["raise", "future"])
@pytest.mark.parametrize(
    ("directive", "expected"),
    [(Supervision.restart, [0, 1, 1]), (Supervision.resume, [0, 1, 2])],
    ids=["restart", "resume"],
)
async def test_scan_async_supervision_of_failed_scan_and_future(
    materializer: Materializer, how: str, directive: Any, expected: list[int]
) -> None:
    # Akka: a scanAsync restart resets the accumulator but does not emit the zero again
    flow = (
        Flow()
        .scan_async(0, _failing_scan(how))
        .with_attributes(Attributes.supervision_strategy(lambda exc: directive))
    )
    sub = Source.from_iterable([1, -1, 1]).via(flow).run_with(TestSink.probe(), materializer)
    sub.request(4)
    await sub.expect_next(*expected)
    await sub.expect_complete()


@pytest.mark.parametrize("how", ["raise", "future"])
async def test_scan_async_stop_on_failed_scan_and_future(
    materializer: Materializer, how: str
) -> None:
    sub = (
        Source.from_iterable([-1])
        .scan_async(0, _failing_scan(how))
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(2)
    await sub.expect_next(0)
    assert isinstance(await sub.expect_error(), Boom)


@pytest.mark.parametrize("directive", [Supervision.restart, Supervision.resume])
@pytest.mark.parametrize("complete_first", [True, False])
async def test_scan_async_completion_around_a_failed_pending_future(
    materializer: Materializer, directive: Any, complete_first: bool
) -> None:
    loop = asyncio.get_running_loop()
    futs: list[asyncio.Future[int]] = [loop.create_future(), loop.create_future()]
    futs[0].set_result(1)
    flow = (
        Flow()
        .scan_async(0, lambda acc, i: futs[i])
        .with_attributes(Attributes.supervision_strategy(lambda exc: directive))
    )
    pub, sub = probes(flow, materializer)
    sub.request(3)
    pub.send_next(0)
    await sub.expect_next(0, 1)
    pub.send_next(1)
    await settle()
    if complete_first:
        pub.send_complete()
        await settle()
        futs[1].set_exception(Boom("bang"))
    else:
        futs[1].set_exception(Boom("bang"))
        await settle()
        pub.send_complete()
    await sub.expect_complete()


async def test_scan_async_none_result_fails(materializer: Materializer) -> None:
    async def f(acc: Any, x: Any) -> Any:
        return None

    sub = Source.single("x").scan_async("", f).run_with(TestSink.probe(), materializer)
    sub.request(2)
    await sub.expect_next("")
    await sub.expect_error()


@pytest.mark.parametrize("how", ["raise", "future"])
@pytest.mark.parametrize(
    ("directive", "expected"),
    [(Supervision.restart, 1), (Supervision.resume, 2)],
    ids=["restart", "resume"],
)
async def test_fold_async_supervision(
    materializer: Materializer, how: str, directive: Any, expected: int
) -> None:
    flow = (
        Flow()
        .fold_async(0, _failing_scan(how))
        .with_attributes(Attributes.supervision_strategy(lambda exc: directive))
    )
    out = await Source.from_iterable([1, -1, 1]).via(flow).run_with(Sink.seq(), materializer)
    assert out == [expected]


async def test_fold_async_empty_and_failed(materializer: Materializer) -> None:
    assert await Source.empty().fold_async(7, _sum).run_with(Sink.seq(), materializer) == [7]
    assert await Source.empty().run_with(Sink.fold_async(7, _sum), materializer) == 7
    with pytest.raises(Boom):
        await Source.failed(Boom()).run_with(Sink.fold_async(0, _sum), materializer)


@pytest.mark.parametrize("how", ["raise", "future"])
@pytest.mark.parametrize("directive", [Supervision.restart, Supervision.resume])
async def test_scan_and_fold_async_complete_when_the_last_element_fails(
    materializer: Materializer, how: str, directive: Any
) -> None:
    attrs = Attributes.supervision_strategy(lambda exc: directive)
    scan = Flow().scan_async(0, _failing_scan(how)).with_attributes(attrs)
    fold = Flow().fold_async(0, _failing_scan(how)).with_attributes(attrs)
    src = Source.from_iterable([1, -1])
    assert await src.via(scan).run_with(Sink.seq(), materializer) == [0, 1]
    assert await src.via(fold).run_with(Sink.seq(), materializer) == [
        1 if directive is Supervision.resume else 0
    ]
