"""The async operators (``reactive/_ops/async_.py``): map_async, map_async_unordered,
map_async_partitioned, Sink.foreach_async, scan_async and fold_async. Akka's
FlowMapAsyncSpec, FlowMapAsyncUnorderedSpec, SinkForeachAsyncSpec, FlowScanAsyncSpec and
FlowFoldAsyncSpec cases with ours, a class per operator; the worker paths' differential
tests (against a reference model and the plain ``map``) sit with their operator.
"""

from __future__ import annotations

import asyncio
import inspect
import operator
from collections import Counter
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import (
    AsyncCallCancelledError,
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
from tests.reactive.support import Boom, flow_probes, resuming, settle

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable


def resume(flow: Any) -> Any:
    """``flow`` with a resuming decider."""
    return flow.with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))


def restart(flow: Any) -> Any:
    """``flow`` with a restarting decider."""
    return flow.with_attributes(Attributes.supervision_strategy(lambda e: Supervision.restart))


class Gate:
    """Hands out one future per key; the test resolves them in any order."""

    def __init__(self) -> None:
        self.futs: dict[Any, asyncio.Future[Any]] = {}
        self.started: list[Any] = []

    def fut(self, key: Any) -> asyncio.Future[Any]:
        f = self.futs.get(key)
        if f is None:
            f = asyncio.get_running_loop().create_future()
            self.futs[key] = f
        return f

    def call(self, x: Any) -> Awaitable[Any]:
        self.started.append(x)

        async def run() -> Any:
            return await self.fut(x)

        return run()

    def resolve(self, key: Any, value: Any) -> None:
        self.fut(key).set_result(value)

    def reject(self, key: Any, exc: BaseException) -> None:
        self.fut(key).set_exception(exc)


async def double(x: int) -> int:
    await asyncio.sleep(0)
    return x * 2


async def add_async(acc: int, x: int) -> int:
    await asyncio.sleep(0)
    return acc + x


def recording(started: list[Any], result: Any = None) -> Any:
    """An async function recording each call (synchronously) and returning ``x``."""

    def f(x: Any) -> Any:
        started.append(x)

        async def run() -> Any:
            return x if result is None else result(x)

        return run()

    return f


async def _sum(acc: int, x: int) -> int:
    return acc + x


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


SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class WorkerCalls:
    """``f`` of the scenario: counts concurrency, suspends ``x % 3`` times, fails on the
    chosen elements (raising in the stage or failing the awaitable), returns None for
    multiples of 7 (skipped by map_async), else ``2 * x``."""

    def __init__(self, fail: set[int], raise_sync: bool) -> None:
        self.fail = fail
        self.raise_sync = raise_sync
        self.active = 0
        self.max_active = 0
        self.started: list[int] = []

    def __call__(self, x: int) -> Any:
        if x in self.fail and self.raise_sync:
            raise Boom(x)
        self.started.append(x)
        return self.run(x)

    async def run(self, x: int) -> int | None:
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            for _ in range(x % 3):
                await asyncio.sleep(0)
            if x in self.fail:
                raise Boom(x)
            return None if x % 7 == 0 else 2 * x
        finally:
            self.active -= 1


def reference(xs: list[int], fail: set[int]) -> list[int]:
    """Ordered map_async with supervision resume: failed elements dropped, None skipped."""
    return [2 * x for x in xs if x not in fail and x % 7 != 0]


def supervised(blueprint: Any, directive: Supervision) -> Any:
    """``blueprint`` with a decider always answering ``directive``."""
    return blueprint.with_attributes(Attributes.supervision_strategy(lambda e: directive))


class Calls:
    """``f(x, key)`` for map_async_partitioned: one future per element, resolved by hand;
    records the calls and the peak number in flight per key and overall."""

    def __init__(self) -> None:
        self.futs: dict[Any, asyncio.Future[Any]] = {}
        self.started: list[Any] = []
        self.keys: list[Any] = []
        self.inflight: dict[Any, int] = {}
        self.peak_per_key = 0
        self.peak = 0

    def fut(self, x: Any) -> asyncio.Future[Any]:
        if x not in self.futs:
            self.futs[x] = asyncio.get_running_loop().create_future()
        return self.futs[x]

    def __call__(self, x: Any, key: Any) -> Awaitable[Any]:
        self.started.append(x)
        self.keys.append(key)
        self.inflight[key] = self.inflight.get(key, 0) + 1
        self.peak_per_key = max(self.peak_per_key, self.inflight[key])
        self.peak = max(self.peak, sum(self.inflight.values()))

        async def run() -> Any:
            try:
                return await self.fut(x)
            finally:
                self.inflight[key] -= 1

        return run()

    def resolve(self, x: Any, value: Any = None) -> None:
        self.fut(x).set_result(x if value is None else value)

    def reject(self, x: Any, exc: BaseException) -> None:
        self.fut(x).set_exception(exc)


def first_letter(x: str) -> str:
    return x[0]


class TestMapAsync:
    """``map_async``: order kept, parallelism bounds, supervision, completion."""

    @pytest.mark.parametrize("par", [1, 4, 64])
    async def test_map_async_elements_in_order(self, materializer: Materializer, par: int) -> None:
        out = (
            await Source.from_iterable(range(50))
            .map_async(par, double)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [x * 2 for x in range(50)]

    async def test_map_async_keeps_input_order_whatever_completes_first(
        self,
        materializer: Materializer,
    ) -> None:
        g = Gate()
        probe = (
            Source.from_iterable([1, 2, 3])
            .map_async(3, g.call)
            .run_with(TestSink.probe(), materializer)
        )
        probe.request(3)
        await settle()
        assert g.started == [1, 2, 3]
        g.resolve(3, "c")
        g.resolve(2, "b")
        await settle()
        await probe.expect_no_message(0)  # head of line blocks
        g.resolve(1, "a")
        await probe.expect_next("a", "b", "c")
        await probe.expect_complete()

    @pytest.mark.parametrize("ordered", [True, False])
    async def test_map_async_parallelism_bounds_inflight_calls(
        self, materializer: Materializer, ordered: bool
    ) -> None:
        g = Gate()
        flow = Flow().map_async(2, g.call) if ordered else Flow().map_async_unordered(2, g.call)
        probe = Source.from_iterable(range(10)).via(flow).run_with(TestSink.probe(), materializer)
        probe.request(100)
        await settle()
        assert g.started == [0, 1]
        g.resolve(0, "r0")
        await probe.expect_next("r0")
        await settle()
        assert g.started == [0, 1, 2]
        for i in range(1, 10):
            g.resolve(i, f"r{i}")
        assert await probe.expect_next_n(9) == [f"r{i}" for i in range(1, 10)]
        await probe.expect_complete()

    @pytest.mark.parametrize("ordered", [True, False])
    async def test_map_async_backpressures_when_downstream_does(
        self, materializer: Materializer, ordered: bool
    ) -> None:
        """In-flight plus completed-but-unemitted results are bounded by parallelism."""
        g = Gate()
        flow = Flow().map_async(2, g.call) if ordered else Flow().map_async_unordered(2, g.call)
        pub, sub = (
            TestSource.probe().via(flow).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        await settle()
        assert pub.pending_demand == 0  # Akka's MapAsync: upstream is pulled on first demand
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await pub.expect_request()
        pub.send_next(2)
        await settle()
        assert pub.pending_demand == 2  # parallelism reached: no third pull
        g.resolve(1, "a")
        await sub.expect_next("a")
        await settle()
        assert pub.pending_demand == 3  # room for one more
        pub.send_next(3)
        g.resolve(2, "b")
        await settle()
        assert pub.pending_demand == 3  # results held, downstream has not asked
        assert all(k != "next" for k, _ in sub._events.items)
        await sub.request_next("b")
        await settle()
        assert pub.pending_demand == 4  # room for one more
        g.resolve(3, "c")
        await sub.request_next("c")
        pub.send_complete()
        sub.request(1)
        await sub.expect_complete()

    @pytest.mark.parametrize("ordered", [True, False])
    async def test_map_async_none_results_are_skipped(
        self, materializer: Materializer, ordered: bool
    ) -> None:
        async def f(x: int) -> int | None:
            return None if x % 2 else x

        flow = Flow().map_async(3, f) if ordered else Flow().map_async_unordered(3, f)
        out = await Source.from_iterable(range(6)).via(flow).run_with(Sink.seq(), materializer)
        assert sorted(out) == [0, 2, 4]
        if ordered:
            assert out == [0, 2, 4]

    @pytest.mark.parametrize("ordered", [True, False])
    async def test_map_async_failed_awaitable_fails_stream(
        self, materializer: Materializer, ordered: bool
    ) -> None:
        err = Boom("async")

        async def f(x: int) -> int:
            if x == 2:
                raise err
            return x

        flow = Flow().map_async(1, f) if ordered else Flow().map_async_unordered(1, f)
        with pytest.raises(Boom) as info:
            await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
        assert info.value is err

    async def test_map_async_raising_function_fails_stream(
        self, materializer: Materializer
    ) -> None:
        def f(x: int) -> Awaitable[int]:
            raise Boom(f"sync {x}")

        with pytest.raises(Boom, match="sync 1"):
            await Source.from_iterable([1, 2]).map_async(2, f).run_with(Sink.seq(), materializer)

    @pytest.mark.parametrize("wrap", [resume, restart], ids=["resume", "restart"])
    @pytest.mark.parametrize("ordered", [True, False])
    async def test_map_async_supervision_drops_failed_element(
        self, materializer: Materializer, ordered: bool, wrap: Callable[[Any], Any]
    ) -> None:
        async def f(x: int) -> int:
            if x == 2:
                raise Boom("async")
            return x

        def g(x: int) -> Awaitable[int]:
            if x == 4:
                raise Boom("sync")
            return f(x)

        flow = wrap(Flow().map_async(2, g) if ordered else Flow().map_async_unordered(2, g))
        out = await Source.from_iterable(range(1, 7)).via(flow).run_with(Sink.seq(), materializer)
        assert sorted(out) == [1, 3, 5, 6]
        if ordered:
            assert out == [1, 3, 5, 6]

    @pytest.mark.parametrize("fast", [True, False], ids=["batches", "plain"])
    async def test_map_async_resume_inside_a_batch_keeps_the_other_elements(
        self, fast: bool
    ) -> None:
        """With the batch protocol map_async starts up to ``parallelism`` calls from one
        push; a call that raises at once is dropped alone, the rest of the batch runs."""

        def g(x: int) -> Awaitable[int]:
            if x % 5 == 0:
                raise Boom("sync")
            return asyncio.sleep(0, x)

        async with Materializer(fast_paths=fast) as mat:
            out = await (
                Source.from_iterable(range(1, 41))
                .via(resume(Flow().map_async(8, g)))
                .run_with(Sink.seq(), mat)
            )
        assert out == [x for x in range(1, 41) if x % 5]

    async def test_map_async_upstream_failure(self, materializer: Materializer) -> None:
        err = Boom("up")
        pub, sub = (
            TestSource.probe()
            .map_async(2, double)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1)
        pub.send_error(err)
        assert await sub.expect_error() is err

    async def test_map_async_completes_after_pending_results(
        self, materializer: Materializer
    ) -> None:
        g = Gate()
        pub, sub = (
            TestSource.probe()
            .map_async(2, g.call)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(5)
        pub.send_next(1).send_complete()
        await settle()
        await sub.expect_no_message(0)
        g.resolve(1, "one")
        await sub.expect_next("one")
        await sub.expect_complete()

    async def test_map_async_downstream_cancel_cancels_upstream_and_pending_calls(
        self,
        materializer: Materializer,
    ) -> None:
        g = Gate()
        pub, sub = (
            TestSource.probe()
            .map_async(2, g.call)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(1)
        pub.send_next(1)
        await settle()
        assert g.started == [1]
        sub.cancel()
        await pub.expect_cancellation()
        await settle()
        assert g.fut(1).cancelled()

    async def test_map_async_with_operator_add_partial(self, materializer: Materializer) -> None:
        """A plain awaitable (a Future, not a coroutine) works as the function's result."""
        loop = asyncio.get_running_loop()

        def f(x: int) -> asyncio.Future[int]:
            fut = loop.create_future()
            loop.call_soon(fut.set_result, operator.neg(x))
            return fut

        out = (
            await Source.from_iterable([1, 2, 3]).map_async(2, f).run_with(Sink.seq(), materializer)
        )
        assert out == [-1, -2, -3]

    async def test_map_async_timeout_inside_user_code(self, materializer: Materializer) -> None:
        """asyncio.timeout inside f cancels f's own call only (each call runs in its own task)."""

        async def f(x: int) -> int:
            try:
                async with asyncio.timeout(0.5):
                    await asyncio.sleep(60 if x == 2 else 0)
                return x
            except TimeoutError:
                return -x

        out = (
            await Source.from_iterable(range(5)).map_async(2, f).run_with(Sink.seq(), materializer)
        )
        assert out == [0, 1, -2, 3, 4]

    @pytest.mark.parametrize("ordered", [True, False])
    async def test_map_async_an_awaitable_cancelled_by_someone_else_fails_the_stream(
        self, materializer: Materializer, ordered: bool
    ) -> None:
        """A call whose awaitable is cancelled (not by the stage stopping) is a failure of
        the stream (an ``AsyncCallCancelledError``, not asyncio's ``CancelledError``: that
        would look like the awaiting task's own cancellation), as in Akka a failed future;
        no element after it is emitted."""
        loop = asyncio.get_running_loop()

        def f(x: int) -> Awaitable[int]:
            fut: asyncio.Future[int] = loop.create_future()
            if x == 3:
                fut.cancel()
            else:
                fut.set_result(x)
            return fut

        flow = Flow().map_async(4, f) if ordered else Flow().map_async_unordered(4, f)
        with pytest.raises(AsyncCallCancelledError, match="was cancelled") as info:
            await Source.from_iterable(range(1, 10)).via(flow).run_with(Sink.seq(), materializer)
        assert isinstance(info.value.__cause__, asyncio.CancelledError)

    async def test_map_async_runs_no_more_calls_than_parallelism_and_demand(
        self,
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

    @pytest.mark.parametrize("ordered", [True, False], ids=["ordered", "unordered"])
    async def test_map_async_failed_future_mid_stream_resume_skips_it(
        self, materializer: Materializer, ordered: bool
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
        self, materializer: Materializer, ordered: bool
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
    async def test_map_async_raising_function_resume(
        self, materializer: Materializer, ordered: bool
    ) -> None:
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
        self, materializer: Materializer, ordered: bool
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
    async def test_map_async_none_results(self, materializer: Materializer, ordered: bool) -> None:
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
        self, materializer: Materializer, ordered: bool
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
        self, materializer: Materializer, ordered: bool
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

    async def test_map_async_failure_mid_stream_fails_asap(
        self, materializer: Materializer
    ) -> None:
        loop = asyncio.get_running_loop()
        futs = [loop.create_future() for _ in range(6)]

        async def upper(fut: Any) -> str:
            return str(await fut).upper()

        sub = (
            Source.from_iterable(futs).map_async(5, upper).run_with(TestSink.probe(), materializer)
        )
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

    @SETTINGS
    @given(
        xs=st.lists(st.integers(0, 40), max_size=30),
        par=st.integers(1, 5),
        ordered=st.booleans(),
        fail=st.sets(st.integers(0, 40), max_size=3),
        raise_sync=st.booleans(),
        resume=st.booleans(),
        boundary=st.booleans(),
        take=st.none() | st.integers(0, 12),
        slow_sink=st.booleans(),
    )
    def test_map_async_matches_reference_model(
        self,
        xs: list[int],
        par: int,
        ordered: bool,
        fail: set[int],
        raise_sync: bool,
        resume: bool,
        boundary: bool,
        take: int | None,
        slow_sink: bool,
    ) -> None:
        calls = WorkerCalls(fail, raise_sync)
        out: list[int] = []

        async def consume(y: int) -> None:
            for _ in range(y % 2):
                await asyncio.sleep(0)
            out.append(y)

        async def scenario() -> BaseException | None:
            async with Materializer() as mat:
                src = Source.from_iterable(xs)
                if boundary:
                    src = src.async_boundary()
                flow = src.map_async(par, calls) if ordered else src.map_async_unordered(par, calls)
                if resume:
                    flow = flow.with_attributes(
                        Attributes.supervision_strategy(lambda e: Supervision.resume)
                    )
                if boundary:
                    flow = flow.async_boundary()
                if take is not None:
                    flow = flow.take(take)
                sink = Sink.foreach_async(1, consume) if slow_sink else Sink.foreach(out.append)
                try:
                    await flow.run_with(sink, mat)
                except Boom as exc:
                    return exc
                # Every call ended with the stream (cancelled ones included).
                for _ in range(5):
                    await asyncio.sleep(0)
                assert calls.active == 0
            return None

        err = asyncio.run(scenario())
        expected = reference(xs, fail)
        first_fail = next((i for i, x in enumerate(xs) if x in fail), None)
        assert calls.max_active <= par
        if resume or first_fail is None:
            assert err is None
            want = expected if take is None else expected[:take]
            if ordered:
                assert out == want
            elif take is None:
                assert Counter(out) == Counter(want)
            else:
                assert len(out) == min(take, len(expected))
                assert not Counter(out) - Counter(expected)
        else:
            if take is not None and len(reference(xs[:first_fail], fail)) >= take:
                # take(n) may have completed before the failing call was even started.
                assert err is None or isinstance(err, Boom)
            else:
                assert isinstance(err, Boom)
            before = reference(xs[:first_fail], fail)
            if ordered:
                assert out == before[: len(out)]
            else:
                assert not Counter(out) - Counter(expected)
        if err is not None:
            return  # a failure drops what the boundary after the stage still held
        # Nothing beyond demand: at most ``par`` calls started and not yet emitted, besides
        # what the async boundary after the stage asked for (its 16-element buffer: results
        # in it are dropped when take(n) cancels).
        emitted_or_skipped = len(out) + sum(1 for x in calls.started if x in fail or x % 7 == 0)
        buffered = 16 if boundary else 0
        assert len(calls.started) <= emitted_or_skipped + par + buffered + (1 if slow_sink else 0)

    @SETTINGS
    @given(
        xs=st.lists(st.integers(-50, 50), max_size=40),
        par=st.integers(1, 4),
        boundaries=st.booleans(),
    )
    def test_map_async_equals_plain_map(self, xs: list[int], par: int, boundaries: bool) -> None:
        """The worker pool gives what the element-at-a-time ``map`` gives, in order."""

        async def f(x: int) -> int:
            if x % 2:
                await asyncio.sleep(0)
            return x * 3 + 1

        async def scenario() -> tuple[list[int], list[int]]:
            async with Materializer() as mat:
                src = Source.from_iterable(xs)
                if boundaries:
                    src = src.async_boundary()
                got = await src.map_async(par, f).run_with(Sink.seq(), mat)
                plain = (
                    await Source.from_iterable(xs)
                    .map(lambda x: x * 3 + 1)
                    .run_with(Sink.seq(), mat)
                )
            return got, plain

        got, plain = asyncio.run(scenario())
        assert got == plain

    async def test_map_async_stop_cancels_parked_and_running_workers(
        self,
        materializer: Materializer,
    ) -> None:
        """Cancelling downstream mid-stream stops every worker: running calls are cancelled,
        parked workers end, awaitables nobody started are closed."""
        started: list[int] = []
        cancelled: list[int] = []

        async def f(x: int) -> int:
            started.append(x)
            try:
                await asyncio.sleep(0.05 if x else 0)
            except asyncio.CancelledError:
                cancelled.append(x)
                raise
            return x

        got = (
            await Source.from_iterable(range(100))
            .map_async_unordered(4, f)
            .take(1)
            .run_with(Sink.seq(), materializer)
        )
        for _ in range(5):
            await asyncio.sleep(0)
        assert got == [0]
        assert len(started) <= 1 + 4
        assert sorted(cancelled) == sorted(x for x in started if x)

    async def test_map_async_taking_from_source_keeps_source_failures(
        self,
        materializer: Materializer,
    ) -> None:
        """map_async takes elements straight from an iterable source (the batch protocol's
        shortcut); a None element or a failing iterator still fails the source, with the
        source's own error."""
        from reactive import PortStateError

        async def f(x: int) -> int:
            return x

        def failing() -> Any:
            yield 1
            yield 2
            raise ValueError("iterator broke")

        for par in (1, 3):
            got: list[int] = []
            with pytest.raises(PortStateError, match=r"\[iterable_source\] Cannot push None"):
                await (
                    Source.from_iterable([1, 2, None, 4])
                    .map_async(par, f)
                    .run_with(Sink.foreach(got.append), materializer)
                )
            assert got in ([], [1], [1, 2])
            with pytest.raises(ValueError, match="iterator broke"):
                await (
                    Source.from_iterable(failing())
                    .map_async(par, f)
                    .run_with(Sink.ignore(), materializer)
                )

    async def test_map_async_survives_a_worker_cancelled_from_outside(
        self,
        materializer: Materializer,
    ) -> None:
        """A parked worker cancelled by someone else (as the loop's shutdown does) is
        replaced: the calls after it still run, on a fresh worker."""
        release = asyncio.Event()

        async def f(x: int) -> int:
            if x == 1:
                await release.wait()
            return x

        q: list[int] = []
        done = (
            Source.from_iterable(range(1, 7))
            .map_async(2, f)
            .run_with(Sink.foreach(q.append), materializer)
        )
        for _ in range(10):
            await asyncio.sleep(0)
        # One worker waits in f(1); the other ran f(2) and is parked (order holds 2 back).
        me = asyncio.current_task()
        workers = [t for t in asyncio.all_tasks() if t is not me and "_work" in repr(t.get_coro())]
        # (the busy one awaits the coroutine of f(1); the parked one a future)
        parked = [t for t in workers if not inspect.iscoroutine(t.get_coro().cr_await)]
        assert len(workers) == 2 and len(parked) == 1
        parked[0].cancel()
        await asyncio.sleep(0)
        release.set()
        await done
        assert q == [1, 2, 3, 4, 5, 6]


class TestMapAsyncUnordered:
    """``map_async_unordered``: results in completion order."""

    async def test_map_async_unordered_emits_as_completed(self, materializer: Materializer) -> None:
        g = Gate()
        probe = (
            Source.from_iterable([1, 2, 3])
            .map_async_unordered(3, g.call)
            .run_with(TestSink.probe(), materializer)
        )
        probe.request(3)
        await settle()
        g.resolve(3, "c")
        await probe.expect_next("c")
        g.resolve(1, "a")
        await probe.expect_next("a")
        g.resolve(2, "b")
        await probe.expect_next("b")
        await probe.expect_complete()

    async def test_map_async_unordered_runs_no_more_calls_than_demand(
        self,
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

    async def test_map_async_unordered_emits_in_completion_order(
        self, materializer: Materializer
    ) -> None:
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


class TestMapAsyncPartitioned:
    """``map_async_partitioned``: per-partition order and bounds."""

    async def test_map_async_partitioned_output_in_input_order(
        self, materializer: Materializer
    ) -> None:
        calls = Calls()
        sub = (
            Source.from_iterable(["a1", "b1", "a2", "c1", "b2"])
            .map_async_partitioned(8, 1, first_letter, calls)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        await settle()
        assert calls.started == ["a1", "b1", "c1"]  # one per key; a2 and b2 wait for their key
        calls.resolve("c1")
        calls.resolve("b1")
        await settle()
        assert calls.started == ["a1", "b1", "c1", "b2"]
        await sub.expect_no_message(0)  # a1 (the oldest) is not done yet
        calls.resolve("a1")
        await sub.expect_next("a1", "b1")
        calls.resolve("a2")
        await sub.expect_next("a2", "c1")
        calls.resolve("b2")
        await sub.expect_next("b2")
        await sub.expect_complete()
        assert calls.peak_per_key == 1
        assert calls.keys == ["a", "b", "c", "b", "a"]  # b2 started before a2

    async def test_map_async_partitioned_f_gets_element_and_partition(
        self,
        materializer: Materializer,
    ) -> None:
        async def f(x: int, key: int) -> tuple[int, int]:
            return (x, key)

        out = (
            await Source.from_iterable(range(6))
            .map_async_partitioned(3, 2, lambda x: x % 2, f)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [(x, x % 2) for x in range(6)]

    @pytest.mark.parametrize("per_partition", [1, 2, 3])
    async def test_map_async_partitioned_per_key_bound(
        self, materializer: Materializer, per_partition: int
    ) -> None:
        calls = Calls()
        elems = [f"a{i}" for i in range(6)]
        sub = (
            Source.from_iterable(elems)
            .map_async_partitioned(6, per_partition, first_letter, calls)
            .run_with(TestSink.probe(), materializer)
        )
        sub.request(10)
        await settle()
        assert calls.started == elems[:per_partition]
        for i, x in enumerate(elems):
            calls.resolve(x)
            await settle()
            assert len(calls.started) == min(len(elems), i + 1 + per_partition)
            assert calls.peak_per_key <= per_partition
        assert await sub.to_list() == elems
        assert calls.peak_per_key == per_partition

    async def test_map_async_partitioned_overall_bound_backpressures_upstream(
        self,
        materializer: Materializer,
    ) -> None:
        calls = Calls()
        pub, sub = flow_probes(Flow().map_async_partitioned(2, 2, lambda x: x, calls), materializer)
        sub.request(10)
        await pub.expect_request()
        pub.send_next(1)
        await pub.expect_request()
        pub.send_next(2)
        await settle()
        assert calls.started == [1, 2]
        await pub.expect_no_message(0)  # two buffered: no demand upstream
        calls.resolve(2)
        await settle()
        await pub.expect_no_message(0)  # 2 is done but not emitted: still buffered
        calls.resolve(1)
        await sub.expect_next(1, 2)
        await pub.expect_request()
        pub.send_complete()
        await sub.expect_complete()
        assert calls.peak == 2

    async def test_map_async_partitioned_respects_downstream_demand(
        self,
        materializer: Materializer,
    ) -> None:
        calls = Calls()
        sub = (
            Source.from_iterable([1, 2, 3])
            .map_async_partitioned(4, 1, lambda x: x, calls)
            .run_with(TestSink.probe(), materializer)
        )
        await settle()
        for x in (1, 2, 3):
            calls.resolve(x)
        await settle()
        await sub.expect_no_message(0)
        sub.request(1)
        await sub.expect_next(1)
        await sub.expect_no_message(0)
        sub.request(5)
        await sub.expect_next(2, 3)
        await sub.expect_complete()

    async def test_map_async_partitioned_failed_call_fails_the_stream(
        self,
        materializer: Materializer,
    ) -> None:
        calls = Calls()
        pub, sub = flow_probes(Flow().map_async_partitioned(4, 1, lambda x: x, calls), materializer)
        sub.request(10)
        pub.send_next(1).send_next(2)
        await settle()
        calls.resolve(1)
        await sub.expect_next(1)
        err = Boom("call failed")
        calls.reject(2, err)
        assert await sub.expect_error() is err
        await pub.expect_cancellation()

    @pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
    async def test_map_async_partitioned_supervision_drops_failed_elements(
        self, materializer: Materializer, directive: Supervision
    ) -> None:
        def f(x: int, key: int) -> Awaitable[int]:
            if x == 2:
                raise Boom("sync")

            async def run() -> int:
                if x == 4:
                    raise Boom("async")
                return x

            return run()

        def part(x: int) -> int:
            if x == 6:
                raise Boom("partitioner")
            return x % 2

        flow = supervised(Flow().map_async_partitioned(2, 1, part, f), directive)
        out = await Source.from_iterable(range(1, 9)).via(flow).run_with(Sink.seq(), materializer)
        assert out == [1, 3, 5, 7, 8]

    async def test_map_async_partitioned_partitioner_failure_stops_by_default(
        self,
        materializer: Materializer,
    ) -> None:
        def part(x: int) -> int:
            raise Boom("partitioner")

        async def f(x: int, key: int) -> int:
            return x

        with pytest.raises(Boom):
            await (
                Source.from_iterable([1])
                .map_async_partitioned(2, 1, part, f)
                .run_with(Sink.seq(), materializer)
            )

    async def test_map_async_partitioned_skips_none_and_completes_empty(
        self,
        materializer: Materializer,
    ) -> None:
        async def f(x: int, key: int) -> int | None:
            return None if x % 2 else x

        flow = Flow().map_async_partitioned(3, 1, lambda x: x % 3, f)
        assert await Source.from_iterable(range(6)).via(flow).run_with(
            Sink.seq(), materializer
        ) == [
            0,
            2,
            4,
        ]
        assert await Source.empty().via(flow).run_with(Sink.seq(), materializer) == []

    async def test_map_async_partitioned_upstream_failure_and_cancellation(
        self,
        materializer: Materializer,
    ) -> None:
        calls = Calls()
        pub, sub = flow_probes(Flow().map_async_partitioned(4, 1, lambda x: x, calls), materializer)
        sub.request(1)
        err = Boom("upstream")
        pub.send_error(err)
        assert await sub.expect_error() is err

        calls2 = Calls()
        pub, sub = flow_probes(
            Flow().map_async_partitioned(4, 1, lambda x: x, calls2), materializer
        )
        sub.request(1)
        pub.send_next(1)
        await settle()
        sub.cancel()
        await pub.expect_cancellation()
        await settle()
        assert calls2.fut(1).cancelled()  # the call in flight is cancelled with the stage

    def test_map_async_partitioned_validates_arguments(self) -> None:
        with pytest.raises(ValueError):
            Flow().map_async_partitioned(0, 1, lambda x: x, lambda x, k: x)
        with pytest.raises(ValueError):
            Flow().map_async_partitioned(1, 0, lambda x: x, lambda x, k: x)


class TestForeachAsync:
    """``Sink.foreach_async``."""

    async def test_foreach_async_runs_all_and_completes_with_done(
        self, materializer: Materializer
    ) -> None:
        seen: list[int] = []

        async def f(x: int) -> None:
            await asyncio.sleep(0)
            seen.append(x)

        res = await Source.from_iterable(range(20)).run_with(Sink.foreach_async(4, f), materializer)
        assert res is Done
        assert sorted(seen) == list(range(20))

    async def test_foreach_async_bounds_parallelism(self, materializer: Materializer) -> None:
        g = Gate()
        done = Source.from_iterable(range(5)).run_with(Sink.foreach_async(2, g.call), materializer)
        await settle()
        assert g.started == [0, 1]
        for i in range(5):
            g.resolve(i, "ok")
            await settle()
        assert g.started == [0, 1, 2, 3, 4]
        assert await done is Done

    async def test_foreach_async_failure(self, materializer: Materializer) -> None:
        err = Boom("each")

        async def f(x: int) -> None:
            if x == 3:
                raise err

        with pytest.raises(Boom) as info:
            await Source.from_iterable(range(10)).run_with(Sink.foreach_async(2, f), materializer)
        assert info.value is err

    async def test_foreach_async_upstream_failure(self, materializer: Materializer) -> None:
        err = Boom("up")
        with pytest.raises(Boom) as info:
            await Source.failed(err).run_with(Sink.foreach_async(2, double), materializer)
        assert info.value is err

    async def test_foreach_async_empty_source(self, materializer: Materializer) -> None:
        async def f(x: Any) -> None:
            return None

        assert await Source.empty().run_with(Sink.foreach_async(3, f), materializer) is Done

    async def test_foreach_async_is_unordered_a_slow_call_does_not_block_new_ones(
        self,
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

    async def test_foreach_async_resume_after_failed_call(self, materializer: Materializer) -> None:
        seen: list[int] = []

        async def f(n: int) -> None:
            if n == 3:
                raise Boom("err1")
            seen.append(n)

        sink = Sink.foreach_async(4, f).with_attributes(resuming())
        assert await Source.from_iterable(range(1, 6)).run_with(sink, materializer) is Done
        assert sorted(seen) == [1, 2, 4, 5]

    async def test_foreach_async_stop_on_failed_call_fails_infinite_stream(
        self,
        materializer: Materializer,
    ) -> None:
        async def f(n: int) -> None:
            await asyncio.sleep(0)
            if n == 3:
                raise Boom("err2")

        done = Source.unfold(1, lambda s: (s + 1, s)).run_with(
            Sink.foreach_async(3, f), materializer
        )
        with pytest.raises(Boom):
            await done

    async def test_foreach_async_1_lets_other_tasks_run(self, materializer: Materializer) -> None:
        """A parallelism-1 worker whose ``f`` never suspends still yields to the loop: another
        task gets a turn at least every few hundred elements."""
        n = 5_000
        seen: list[int] = []
        gaps: list[int] = []
        done = False

        async def f(x: int) -> None:
            seen.append(x)

        async def other() -> None:
            last = 0
            while not done:
                await asyncio.sleep(0)
                gaps.append(len(seen) - last)
                last = len(seen)

        task = asyncio.get_running_loop().create_task(other())
        await Source.from_iterable(range(n)).run_with(Sink.foreach_async(1, f), materializer)
        done = True
        await task
        assert len(seen) == n
        assert sum(gaps) == n
        assert max(gaps) <= 500

    async def test_foreach_async_1_bounds_in_flight_behind_boundary(
        self,
        materializer: Materializer,
    ) -> None:
        """Back pressure: a fast source behind a 16-element boundary runs at most 16 + a few
        elements ahead of a slow parallelism-1 consumer."""
        produced = 0
        consumed = 0
        peak = 0

        def source() -> Any:
            nonlocal produced, peak
            for i in range(2_000):
                produced += 1
                peak = max(peak, produced - consumed)
                yield i

        async def slow(_: int) -> None:
            nonlocal consumed
            consumed += 1
            if consumed % 50 == 0:
                await asyncio.sleep(0)

        await (
            Source.from_iterable(source())
            .async_boundary()
            .run_with(Sink.foreach_async(1, slow), materializer)
        )
        assert consumed == 2_000
        assert peak <= 16 + 4


class TestScanAsync:
    """``scan_async``."""

    async def test_scan_async_elements(self, materializer: Materializer) -> None:
        out = (
            await Source.from_iterable([1, 2, 3])
            .scan_async(0, add_async)
            .run_with(Sink.seq(), materializer)
        )
        assert out == [0, 1, 3, 6]

    async def test_scan_async_empty_emits_zero(self, materializer: Materializer) -> None:
        assert await Source.empty().scan_async(5, add_async).run_with(Sink.seq(), materializer) == [
            5
        ]

    async def test_scan_async_demand(self, materializer: Materializer) -> None:
        pub, sub = (
            TestSource.probe()
            .scan_async(0, add_async)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await sub.request_next(0)
        await settle()
        assert pub.pending_demand == 0
        sub.request(1)
        await pub.expect_request()
        pub.send_next(2)
        await sub.expect_next(2)
        await settle()
        assert pub.pending_demand == 1  # no pull without downstream demand
        pub.send_complete()
        sub.request(1)
        await sub.expect_complete()

    async def test_scan_async_waits_for_step_before_completing(
        self, materializer: Materializer
    ) -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def step(acc: int, x: int) -> int:
            return await fut

        pub, sub = (
            TestSource.probe()
            .scan_async(0, step)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(5)
        await sub.expect_next(0)
        pub.send_next(1).send_complete()
        await settle()
        await sub.expect_no_message(0)
        fut.set_result(42)
        await sub.expect_next(42)
        await sub.expect_complete()

    @pytest.mark.parametrize("emit_each", [True, False], ids=["scan_async", "fold_async"])
    async def test_scan_async_failure(self, materializer: Materializer, emit_each: bool) -> None:
        err = Boom("step")

        async def step(acc: int, x: int) -> int:
            if x == 2:
                raise err
            return acc + x

        flow = Flow().scan_async(0, step) if emit_each else Flow().fold_async(0, step)
        with pytest.raises(Boom) as info:
            await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
        assert info.value is err

    @pytest.mark.parametrize(
        ("emit_each", "wrap", "expected"),
        [
            (True, resume, [0, 1, 4, 8]),
            (True, restart, [0, 1, 3, 7]),
            (False, resume, [8]),
            (False, restart, [7]),
        ],
        ids=["scan-resume", "scan-restart", "fold-resume", "fold-restart"],
    )
    async def test_scan_async_supervision(
        self,
        materializer: Materializer,
        emit_each: bool,
        wrap: Callable[[Any], Any],
        expected: list[int],
    ) -> None:
        async def step(acc: int, x: int) -> int:
            if x == 2:
                raise Boom("step")
            return acc + x

        flow = wrap(Flow().scan_async(0, step) if emit_each else Flow().fold_async(0, step))
        out = await Source.from_iterable([1, 2, 3, 4]).via(flow).run_with(Sink.seq(), materializer)
        assert out == expected

    async def test_scan_async_supervision_with_probes(self, materializer: Materializer) -> None:
        """After a resumed failure the stage still honours demand (no stall, no over-push)."""

        async def step(acc: int, x: int) -> int:
            if x == 2:
                raise Boom("step")
            return acc + x

        flow = resume(Flow().scan_async(0, step))
        probe = Source.from_iterable([1, 2, 3]).via(flow).run_with(TestSink.probe(), materializer)
        await probe.request_next(0)
        await probe.request_next(1)
        await probe.request_next(4)
        probe.request(1)
        await probe.expect_complete()

    async def test_scan_async_upstream_failure_and_cancel(self, materializer: Materializer) -> None:
        err = Boom("up")
        pub, sub = (
            TestSource.probe()
            .scan_async(0, add_async)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.request(2)
        await sub.expect_next(0)
        pub.send_error(err)
        assert await sub.expect_error() is err

        pub, sub = (
            TestSource.probe()
            .scan_async(0, add_async)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        await sub.request_next(0)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_scan_async_complete_after_zero_and_after_pending(
        self, materializer: Materializer
    ) -> None:
        pub, sub = flow_probes(Flow().scan_async(0, _sum), materializer)
        sub.request(10)
        await sub.expect_next(0)
        pub.send_complete()
        await sub.expect_complete()

        pub, sub = flow_probes(Flow().scan_async(0, _sum), materializer)
        pub.send_next(1)
        sub.request(10)
        await sub.expect_next(0, 1)
        pub.send_complete()
        await sub.expect_complete()

        pub, sub = flow_probes(Flow().scan_async(0, _sum), materializer)
        sub.request(10)
        await sub.expect_next(0)
        pub.send_error(Boom("bang"))
        assert str(await sub.expect_error()) == "bang"

    async def test_scan_async_single_and_large(self, materializer: Materializer) -> None:
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

    @pytest.mark.parametrize("how", ["raise", "future"])
    @pytest.mark.parametrize(
        ("directive", "expected"),
        [(Supervision.restart, [0, 1, 1]), (Supervision.resume, [0, 1, 2])],
        ids=["restart", "resume"],
    )
    async def test_scan_async_supervision_of_failed_scan_and_future(
        self, materializer: Materializer, how: str, directive: Any, expected: list[int]
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
        self, materializer: Materializer, how: str
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
        self, materializer: Materializer, directive: Any, complete_first: bool
    ) -> None:
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[int]] = [loop.create_future(), loop.create_future()]
        futs[0].set_result(1)
        flow = (
            Flow()
            .scan_async(0, lambda acc, i: futs[i])
            .with_attributes(Attributes.supervision_strategy(lambda exc: directive))
        )
        pub, sub = flow_probes(flow, materializer)
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

    async def test_scan_async_none_result_fails(self, materializer: Materializer) -> None:
        async def f(acc: Any, x: Any) -> Any:
            return None

        sub = Source.single("x").scan_async("", f).run_with(TestSink.probe(), materializer)
        sub.request(2)
        await sub.expect_next("")
        await sub.expect_error()


class TestFoldAsync:
    """``fold_async`` and ``Sink.fold_async``."""

    async def test_fold_async_elements_and_empty(self, materializer: Materializer) -> None:
        assert await Source.from_iterable([1, 2, 3]).fold_async(0, add_async).run_with(
            Sink.seq(), materializer
        ) == [6]
        assert await Source.empty().fold_async(9, add_async).run_with(Sink.seq(), materializer) == [
            9
        ]

    async def test_sink_fold_async(self, materializer: Materializer) -> None:
        assert (
            await Source.from_iterable(range(5)).run_with(
                Sink.fold_async(0, add_async), materializer
            )
            == 10
        )

    @pytest.mark.parametrize("how", ["raise", "future"])
    @pytest.mark.parametrize(
        ("directive", "expected"),
        [(Supervision.restart, 1), (Supervision.resume, 2)],
        ids=["restart", "resume"],
    )
    async def test_fold_async_supervision(
        self, materializer: Materializer, how: str, directive: Any, expected: int
    ) -> None:
        flow = (
            Flow()
            .fold_async(0, _failing_scan(how))
            .with_attributes(Attributes.supervision_strategy(lambda exc: directive))
        )
        out = await Source.from_iterable([1, -1, 1]).via(flow).run_with(Sink.seq(), materializer)
        assert out == [expected]

    async def test_fold_async_empty_and_failed(self, materializer: Materializer) -> None:
        assert await Source.empty().fold_async(7, _sum).run_with(Sink.seq(), materializer) == [7]
        assert await Source.empty().run_with(Sink.fold_async(7, _sum), materializer) == 7
        with pytest.raises(Boom):
            await Source.failed(Boom()).run_with(Sink.fold_async(0, _sum), materializer)

    @pytest.mark.parametrize("how", ["raise", "future"])
    @pytest.mark.parametrize("directive", [Supervision.restart, Supervision.resume])
    async def test_scan_and_fold_async_complete_when_the_last_element_fails(
        self, materializer: Materializer, how: str, directive: Any
    ) -> None:
        attrs = Attributes.supervision_strategy(lambda exc: directive)
        scan = Flow().scan_async(0, _failing_scan(how)).with_attributes(attrs)
        fold = Flow().fold_async(0, _failing_scan(how)).with_attributes(attrs)
        src = Source.from_iterable([1, -1])
        assert await src.via(scan).run_with(Sink.seq(), materializer) == [0, 1]
        assert await src.via(fold).run_with(Sink.seq(), materializer) == [
            1 if directive is Supervision.resume else 0
        ]
