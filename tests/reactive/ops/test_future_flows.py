"""Specs of the future / lazy-future operators: ``Source.lazy_future_source``,
``Flow.future_flow``, ``Flow.lazy_future_flow``, ``Sink.future_sink`` and
``Sink.lazy_future_sink`` (Akka's ``lazyFutureSource``, ``futureFlow``, ``lazyFutureFlow``,
``futureSink``, ``lazyFutureSink``).

One class per operator; each covers the happy path, a failed awaitable, a raising factory
(or an awaitable giving no blueprint), cancellation before the nested graph exists, an
empty stream, demand that never exceeds downstream's, and the materialized value. The
``materializer`` fixture fails a test that leaves a stream or a task running. No timed
logic is involved: the tests advance by letting the loop run (``settle``), never by time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    AsyncCallCancelledError,
    Flow,
    Keep,
    Materializer,
    NeverMaterializedError,
    NotUsed,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource

if TYPE_CHECKING:
    from collections.abc import Callable


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds (no wall-clock time involved)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def pending() -> asyncio.Future[Any]:
    """A future the test completes by hand (shared: the stream must not cancel it)."""
    return asyncio.get_running_loop().create_future()


async def value_of(fut: asyncio.Future[Any]) -> Any:
    """The value of a materialized future, failing the test (not hanging) if it never
    completes."""
    return await asyncio.wait_for(asyncio.shield(fut), 3)


def counted(blueprint: Any, calls: list[int], mat: Any = "inner") -> Any:
    """``blueprint`` whose materialization appends to ``calls`` and gives ``mat``."""
    return blueprint.map_materialized_value(recording(calls, lambda: mat))


#: Where a factory's failure comes from: its awaitable fails, or calling it raises.
FAILING = pytest.mark.parametrize("where", ["awaitable", "factory"])


def failing_factory(err: Exception, where: str) -> Callable[[], Any]:
    """A factory whose awaitable fails with ``err`` (``where == "awaitable"``), or that
    raises ``err`` when called (``where == "factory"``)."""

    async def awaitable_fails() -> Any:
        raise err

    def raises() -> Any:
        raise err

    return awaitable_fails if where == "awaitable" else raises


def recording(calls: list[int], f: Callable[[], Any]) -> Callable[..., Any]:
    """``f``, appending to ``calls`` on each call (arguments are ignored)."""

    def call(*_: Any) -> Any:
        calls.append(1)
        return f()

    return call


# ---------------------------------------------------------------------------------------
# Source.lazy_future_source
# ---------------------------------------------------------------------------------------
def run_lazy_future_source(materializer: Materializer, factory: Any) -> tuple[Any, Any]:
    """lazy_future_source(factory) -> TestSink: (mat future, subscriber)."""
    return Source.lazy_future_source(factory).to_mat(TestSink.probe(), Keep.both).run(materializer)


class TestLazyFutureSource:
    async def test_factory_called_on_first_demand_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        mat, sub = run_lazy_future_source(materializer, recording(calls, lambda: fut))
        await settle()
        assert calls == [] and not mat.done()
        sub.request(1)
        await settle()
        assert calls == [1] and not mat.done()  # called; the awaitable is pending
        fut.set_result(counted(Source.from_iterable([1, 2]), []))
        await sub.expect_next(1)
        assert await value_of(mat) == "inner"
        sub.request(5)
        await sub.expect_next(2)
        await sub.expect_complete()
        assert calls == [1]

    async def test_coroutine_factory(self, materializer: Materializer) -> None:
        async def factory() -> Source[int, Any]:
            await asyncio.sleep(0)
            return Source.from_iterable([1, 2, 3])

        mat, result = (
            Source.lazy_future_source(factory).to_mat(Sink.seq(), Keep.both).run(materializer)
        )
        assert await result == [1, 2, 3]
        assert await mat is NotUsed

    @FAILING
    async def test_failed_awaitable_or_raising_factory_fails_the_stream_and_the_mat(
        self, materializer: Materializer, where: str
    ) -> None:
        err = Boom(where)
        mat, sub = run_lazy_future_source(materializer, failing_factory(err, where))
        sub.request(1)
        assert await sub.expect_error() is err
        with pytest.raises(Boom) as info:
            await mat
        assert info.value is err

    async def test_factory_giving_no_awaitable_or_no_source_fails_with_type_error(
        self, materializer: Materializer
    ) -> None:
        mat, sub = run_lazy_future_source(materializer, lambda: Source.single(1))
        sub.request(1)
        err = await sub.expect_error()
        assert isinstance(err, TypeError)
        assert "[lazy_future_source] factory() must return an awaitable" in str(err)
        with pytest.raises(TypeError):
            await mat

        async def no_source() -> Any:
            return [1, 2]

        mat, sub = run_lazy_future_source(materializer, no_source)
        sub.request(1)
        err = await sub.expect_error()
        assert isinstance(err, TypeError) and "must return a Source" in str(err)
        with pytest.raises(TypeError):
            await mat

    def test_factory_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match=r"lazy_future_source\(factory\): factory must"):
            Source.lazy_future_source(42)  # type: ignore[arg-type]

    async def test_cancel_before_the_first_demand_never_calls_the_factory(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        mat, sub = run_lazy_future_source(materializer, recording(calls, pending))
        sub.cancel()
        with pytest.raises(NeverMaterializedError):
            await value_of(mat)
        assert calls == []

    async def test_cancel_while_awaiting_fails_the_mat_and_spares_a_shared_future(
        self, materializer: Materializer
    ) -> None:
        fut = pending()
        mat, sub = run_lazy_future_source(materializer, lambda: fut)
        sub.request(1)
        await settle()
        sub.cancel()
        with pytest.raises(NeverMaterializedError):
            await value_of(mat)
        assert not fut.cancelled()  # shared: not the stream's to cancel

    async def test_empty_inner_source_completes(self, materializer: Materializer) -> None:
        async def factory() -> Source[Any, Any]:
            return Source.empty()

        mat, sub = run_lazy_future_source(materializer, factory)
        sub.request(1)
        await sub.expect_complete()
        assert await mat is NotUsed

    async def test_demand_never_exceeded(self, materializer: Materializer) -> None:
        async def factory() -> Any:
            return TestSource.probe()

        mat, sub = run_lazy_future_source(materializer, factory)
        sub.request(1)
        inner = await value_of(mat)  # the inner source's mat: its publisher probe
        assert await inner.expect_request() == 1
        inner.send_next("a")
        await sub.expect_next("a")
        await settle()
        assert inner.pending_demand == 1  # nothing asked without downstream demand
        sub.request(1)
        assert await inner.expect_request() == 1
        inner.send_next("b").send_complete()
        await sub.expect_next("b")
        await sub.expect_complete()


# ---------------------------------------------------------------------------------------
# Flow.future_flow
# ---------------------------------------------------------------------------------------
def run_flow(materializer: Materializer, flow: Any) -> tuple[Any, asyncio.Future[Any], Any]:
    """TestSource -> flow -> TestSink: (publisher, mat future, subscriber)."""
    (pub, mat), sub = (
        TestSource.probe()
        .via_mat(flow, Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return pub, mat, sub


class TestFutureFlow:
    async def test_materialized_when_the_awaitable_completes_not_on_the_first_element(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.future_flow(fut))
        sub.request(1)
        await settle()
        assert pub.pending_demand == 0 and not mat.done()  # nothing pulled while waiting
        fut.set_result(counted(Flow().map(lambda x: x * 10), calls))
        assert await value_of(mat) == "inner"
        assert calls == [1]  # no element was sent yet
        assert await pub.expect_request() == 1  # the demand waiting for the flow
        pub.send_next(1)
        await sub.expect_next(10)
        sub.request(1)
        await pub.expect_request()
        pub.send_next(2).send_complete()
        await sub.expect_next(20)
        await sub.expect_complete()
        assert calls == [1]

    async def test_a_coroutine_and_a_completed_future_work(
        self, materializer: Materializer
    ) -> None:
        async def make() -> Flow[int, str, Any]:
            return Flow[int]().map(str)

        src = Source.from_iterable([1, 2])
        assert await src.via(Flow.future_flow(make())).run_with(Sink.seq(), materializer) == [
            "1",
            "2",
        ]
        done = pending()
        done.set_result(Flow[int]().map(lambda x: -x))
        reusable = src.via(Flow.future_flow(done))
        assert await reusable.run_with(Sink.seq(), materializer) == [-1, -2]
        assert await reusable.run_with(Sink.seq(), materializer) == [-1, -2]

    async def test_failed_awaitable_fails_the_stream_and_the_mat(
        self, materializer: Materializer
    ) -> None:
        err = Boom("awaitable")
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.future_flow(fut))
        sub.request(1)
        await settle()
        fut.set_exception(err)
        assert await sub.expect_error() is err
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    async def test_awaitable_giving_no_flow_fails_with_type_error(
        self, materializer: Materializer
    ) -> None:
        async def make() -> Any:
            return Sink.seq()

        pub, mat, sub = run_flow(materializer, Flow.future_flow(make()))
        err = await sub.expect_error()
        assert isinstance(err, TypeError) and "[future_flow]" in str(err)
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    def test_aw_must_be_awaitable(self) -> None:
        with pytest.raises(TypeError, match=r"Flow.future_flow\(aw\): aw must be an awaitable"):
            Flow.future_flow(Flow())  # type: ignore[arg-type]

    async def test_downstream_cancel_before_materialization_cancels_at_once(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.future_flow(fut))
        sub.cancel()
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError):
            await value_of(mat)
        assert not fut.cancelled()  # shared: not the stream's to cancel
        fut.set_result(counted(Flow(), calls))
        await settle()
        assert calls == []  # never materialized

    async def test_a_cancelled_awaitable_fails_the_stream(self, materializer: Materializer) -> None:
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.future_flow(fut))
        fut.cancel()
        err = await sub.expect_error()
        assert isinstance(err, AsyncCallCancelledError)
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError):
            await mat

    async def test_empty_stream_still_materializes_the_flow(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.future_flow(fut))
        pub.send_complete()
        await settle()
        fut.set_result(counted(Flow(), calls))
        await sub.expect_complete()
        assert await mat == "inner" and calls == [1]

    async def test_upstream_failure_before_materialization_reaches_the_inner_flow(
        self, materializer: Materializer
    ) -> None:
        err = Boom("up")
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.future_flow(fut))
        pub.send_error(err)
        await settle()
        fut.set_result(Flow().recover(lambda e: f"recovered {e}"))
        sub.request(1)
        await sub.expect_next("recovered up")  # the inner flow saw the held failure
        await sub.expect_complete()
        assert await mat is NotUsed

    async def test_demand_never_exceeded(self, materializer: Materializer) -> None:
        fut = pending()
        fut.set_result(Flow().map(str))
        pub, _mat, sub = run_flow(materializer, Flow.future_flow(fut))
        await settle()
        assert pub.pending_demand == 0  # materialized, but nothing asked yet
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await sub.expect_next("1")
        await settle()
        assert pub.pending_demand == 1
        sub.cancel()
        await pub.expect_cancellation()


# ---------------------------------------------------------------------------------------
# Flow.lazy_future_flow
# ---------------------------------------------------------------------------------------
class TestLazyFutureFlow:
    async def test_factory_called_on_the_first_element_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.lazy_future_flow(recording(calls, lambda: fut)))
        sub.request(5)
        assert await pub.expect_request() == 1  # demand goes upstream before the flow
        await settle()
        assert calls == [] and not mat.done()
        pub.send_next(1)
        await settle()
        assert calls == [1] and not mat.done()
        assert pub.pending_demand == 1  # nothing more pulled while the awaitable is pending
        fut.set_result(counted(Flow().map(lambda x: x * 10), []))
        await sub.expect_next(10)  # the first element goes through the inner flow
        assert await value_of(mat) == "inner"
        await pub.expect_request()
        pub.send_next(2).send_complete()
        await sub.expect_next(20)
        await sub.expect_complete()
        assert calls == [1]

    async def test_coroutine_factory(self, materializer: Materializer) -> None:
        async def factory() -> Flow[int, int, str]:
            await asyncio.sleep(0)
            return Flow[int]().map(lambda x: x + 1).map_materialized_value(lambda _: "m")

        mat, result = (
            Source.from_iterable([1, 2, 3])
            .via_mat(Flow.lazy_future_flow(factory), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await result == [2, 3, 4]
        assert await mat == "m"

    @FAILING
    async def test_failed_awaitable_or_raising_factory_fails_cancels_upstream_and_chains(
        self, materializer: Materializer, where: str
    ) -> None:
        err = Boom(where)
        pub, mat, sub = run_flow(materializer, Flow.lazy_future_flow(failing_factory(err, where)))
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        assert await sub.expect_error() is err
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    async def test_factory_giving_no_awaitable_fails_with_type_error(
        self, materializer: Materializer
    ) -> None:
        pub, mat, sub = run_flow(materializer, Flow.lazy_future_flow(lambda: Flow()))  # type: ignore[arg-type, return-value]
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        err = await sub.expect_error()
        assert isinstance(err, TypeError)
        assert "[lazy_future_flow] factory() must return an awaitable" in str(err)
        with pytest.raises(NeverMaterializedError):
            await mat

    async def test_downstream_cancel_before_the_first_element(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        pub, mat, sub = run_flow(materializer, Flow.lazy_future_flow(recording(calls, pending)))
        sub.cancel()
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError):
            await value_of(mat)
        assert calls == []

    async def test_downstream_cancel_while_awaiting_cancels_at_once(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.lazy_future_flow(lambda: fut))
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await settle()
        sub.cancel()
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError):
            await value_of(mat)
        assert not fut.cancelled()
        fut.set_result(counted(Flow(), calls))
        await settle()
        assert calls == []

    async def test_empty_stream_completes_and_never_calls_the_factory(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        mat, result = (
            Source.empty()
            .via_mat(Flow.lazy_future_flow(recording(calls, pending)), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await result == []
        with pytest.raises(NeverMaterializedError):
            await mat
        assert calls == []

    async def test_upstream_end_while_awaiting_follows_the_first_element(
        self, materializer: Materializer
    ) -> None:
        fut = pending()
        pub, mat, sub = run_flow(materializer, Flow.lazy_future_flow(lambda: fut))
        sub.request(2)
        await pub.expect_request()
        pub.send_next(1).send_complete()
        await settle()
        fut.set_result(Flow().map(str))
        await sub.expect_next("1")
        await sub.expect_complete()
        assert await mat is NotUsed

    async def test_upstream_failure_while_awaiting_follows_the_first_element(
        self, materializer: Materializer
    ) -> None:
        err = Boom("late")
        fut = pending()
        pub, _mat, sub = run_flow(materializer, Flow.lazy_future_flow(lambda: fut))
        sub.request(2)
        await pub.expect_request()
        pub.send_next(1)
        await settle()
        pub.send_error(err)
        await settle()
        fut.set_result(Flow().map(str))
        await sub.expect_next("1")
        assert await sub.expect_error() is err


# ---------------------------------------------------------------------------------------
# Sink.lazy_future_sink / Sink.future_sink
# ---------------------------------------------------------------------------------------
def run_sink(materializer: Materializer, sink: Any) -> tuple[Any, asyncio.Future[Any]]:
    """TestSource -> sink: (publisher, mat future)."""
    pub, mat = TestSource.probe().to_mat(sink, Keep.both).run(materializer)
    return pub, mat


class TestLazyFutureSink:
    async def test_factory_called_on_the_first_element_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        fut = pending()
        pub, mat = run_sink(materializer, Sink.lazy_future_sink(recording(calls, lambda: fut)))
        assert await pub.expect_request() == 1
        await settle()
        assert calls == [] and not mat.done()
        pub.send_next(1)
        await settle()
        assert calls == [1] and not mat.done()
        assert pub.pending_demand == 1  # nothing more pulled while the awaitable is pending
        fut.set_result(Sink.seq())
        inner = await value_of(mat)
        pub.send_next(2).send_next(3).send_complete()
        assert await inner == [1, 2, 3]
        assert calls == [1]

    async def test_coroutine_factory(self, materializer: Materializer) -> None:
        async def factory() -> Sink[int, Any]:
            await asyncio.sleep(0)
            return Sink.fold(0, lambda a, x: a + x)

        mat = Source.from_iterable([1, 2, 3]).run_with(Sink.lazy_future_sink(factory), materializer)
        assert await (await mat) == 6

    @FAILING
    async def test_failed_awaitable_or_raising_factory_fails_the_mat_and_cancels_upstream(
        self, materializer: Materializer, where: str
    ) -> None:
        err = Boom(where)
        pub, mat = run_sink(materializer, Sink.lazy_future_sink(failing_factory(err, where)))
        pub.send_next(1)
        assert await pub.expect_cancellation() is err
        with pytest.raises(Boom) as info:
            await mat
        assert info.value is err

    async def test_factory_giving_no_awaitable_or_no_sink_fails_with_type_error(
        self, materializer: Materializer
    ) -> None:
        pub, mat = run_sink(materializer, Sink.lazy_future_sink(Sink.seq))  # type: ignore[arg-type]
        pub.send_next(1)
        err = await pub.expect_cancellation()
        assert isinstance(err, TypeError)
        assert "[lazy_future_sink] factory() must return an awaitable" in str(err)
        with pytest.raises(TypeError):
            await mat

        async def no_sink() -> Any:
            return Flow()

        pub, mat = run_sink(materializer, Sink.lazy_future_sink(no_sink))
        pub.send_next(1)
        err = await pub.expect_cancellation()
        assert isinstance(err, TypeError) and "must return a Sink" in str(err)
        with pytest.raises(TypeError):
            await mat

    async def test_empty_stream_fails_the_mat_with_never_materialized(
        self, materializer: Materializer
    ) -> None:
        calls: list[int] = []
        mat = Source.empty().run_with(
            Sink.lazy_future_sink(recording(calls, pending)), materializer
        )
        with pytest.raises(NeverMaterializedError):
            await mat
        assert calls == []

    async def test_upstream_failure_before_the_first_element(
        self, materializer: Materializer
    ) -> None:
        err = Boom("up")
        mat = Source.failed(err).run_with(Sink.lazy_future_sink(lambda: pending()), materializer)
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    async def test_upstream_failure_while_awaiting_cancels_the_factory_coroutine(
        self, materializer: Materializer
    ) -> None:
        err = Boom("up")
        cancelled: list[int] = []

        async def factory() -> Sink[Any, Any]:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(1)
                raise
            raise AssertionError("unreachable")

        pub, mat = run_sink(materializer, Sink.lazy_future_sink(factory))
        pub.send_next(1)
        await settle()
        pub.send_error(err)
        with pytest.raises(NeverMaterializedError) as info:
            await value_of(mat)
        assert info.value.__cause__ is err
        await settle()
        assert cancelled == [1]

    async def test_upstream_completion_while_awaiting_waits_for_the_inner_sink(
        self, materializer: Materializer
    ) -> None:
        fut = pending()
        pub, mat = run_sink(materializer, Sink.lazy_future_sink(lambda: fut))
        pub.send_next(1).send_complete()
        await settle()
        assert not mat.done()
        fut.set_result(Sink.seq())
        assert await (await value_of(mat)) == [1]

    async def test_demand_never_exceeded(self, materializer: Materializer) -> None:
        async def factory() -> Any:
            return TestSink.probe()

        pub, mat = run_sink(materializer, Sink.lazy_future_sink(factory))
        assert await pub.expect_request() == 1
        pub.send_next("a")
        inner = await value_of(mat)  # the inner sink's mat: its subscriber probe
        await settle()
        assert pub.pending_demand == 1  # the inner sink asked nothing yet
        inner.request(1)
        await inner.expect_next("a")  # the held first element, no upstream demand needed
        await settle()
        assert pub.pending_demand == 1
        inner.request(1)
        assert await pub.expect_request() == 1
        pub.send_next("b").send_complete()
        await inner.expect_next("b")
        await inner.expect_complete()


class TestFutureSink:
    async def test_awaited_on_the_first_element_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        started: list[int] = []

        async def make() -> Sink[int, Any]:
            started.append(1)
            return counted(Sink.seq(), [], mat="inner")

        pub, mat = run_sink(materializer, Sink.future_sink(make()))
        assert await pub.expect_request() == 1
        await settle()
        assert started == [] and not mat.done()  # lazy, as Akka 2.6+: waits for an element
        pub.send_next(1).send_complete()
        assert await value_of(mat) == "inner"
        assert started == [1]

    async def test_a_future_serves_every_materialization(self, materializer: Materializer) -> None:
        fut = pending()
        sink = Sink.future_sink(fut)
        m1 = Source.from_iterable([1, 2]).run_with(sink, materializer)
        m2 = Source.single(3).run_with(sink, materializer)
        await settle()
        assert not m1.done() and not m2.done()
        fut.set_result(Sink.seq())
        assert await (await m1) == [1, 2]
        assert await (await m2) == [3]

    async def test_failed_awaitable_fails_the_mat_and_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        err = Boom("awaitable")
        fut = pending()
        pub, mat = run_sink(materializer, Sink.future_sink(fut))
        pub.send_next(1)
        await settle()
        fut.set_exception(err)
        assert await pub.expect_cancellation() is err
        with pytest.raises(Boom) as info:
            await mat
        assert info.value is err

    async def test_awaitable_giving_no_sink_fails_with_type_error(
        self, materializer: Materializer
    ) -> None:
        fut = pending()
        fut.set_result(Source.single(1))
        mat = Source.single(1).run_with(Sink.future_sink(fut), materializer)
        with pytest.raises(TypeError, match=r"\[future_sink\] the awaitable must return a Sink"):
            await mat

    def test_aw_must_be_awaitable(self) -> None:
        with pytest.raises(TypeError, match=r"Sink.future_sink\(aw\): aw must be an awaitable"):
            Sink.future_sink(Sink.seq())  # type: ignore[arg-type]

    async def test_empty_stream_fails_the_mat_and_spares_the_future(
        self, materializer: Materializer
    ) -> None:
        fut = pending()
        mat = Source.empty().run_with(Sink.future_sink(fut), materializer)
        with pytest.raises(NeverMaterializedError):
            await mat
        assert not fut.done()

    async def test_upstream_failure_while_awaiting_spares_a_shared_future(
        self, materializer: Materializer
    ) -> None:
        err = Boom("up")
        fut = pending()
        pub, mat = run_sink(materializer, Sink.future_sink(fut))
        pub.send_next(1)
        await settle()
        pub.send_error(err)
        with pytest.raises(NeverMaterializedError) as info:
            await value_of(mat)
        assert info.value.__cause__ is err
        assert not fut.cancelled()

    async def test_demand_never_exceeded(self, materializer: Materializer) -> None:
        fut = pending()
        pub, mat = run_sink(materializer, Sink.future_sink(fut))
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await settle()
        assert pub.pending_demand == 1  # none more while the awaitable is pending
        fut.set_result(TestSink.probe())
        inner = await value_of(mat)
        await settle()
        assert pub.pending_demand == 1
        inner.request(2)
        await inner.expect_next(1)
        assert await pub.expect_request() == 1
        pub.send_complete()
        await inner.expect_complete()
