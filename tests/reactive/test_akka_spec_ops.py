"""Acceptance cases mirroring Akka's / Pekko's operator specs (akka-stream-tests).

The async operators' specs (FlowMapAsyncSpec, SinkForeachAsyncSpec, FlowScanAsyncSpec,
FlowFoldAsyncSpec), the sinks' (HeadSinkSpec, ...) and SourceSpec: each group names the
spec it follows and checks, through the public API only, the edge cases it pins down
that test_async_ops does not already cover. The specs of the
simple, buffer, watch, fan-in and kill-switch operators that were here are with their
operators in tests/reactive/ops/test_<family>.py.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest

from reactive import (
    Attributes,
    Done,
    Flow,
    Keep,
    Materializer,
    Sink,
    Source,
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
