"""Specs of the lazy and resource operators (API.md "Lazy and resource sources"):
``Source.maybe``, ``Source.cycle``, ``Source.unfold_resource`` / ``unfold_resource_async``,
``Source.lazy_source``, ``Source.lazy_single``, ``Source.lazy_future``, ``Flow.lazy_flow``,
``Sink.lazy_sink`` and ``NeverMaterializedError``.

One class per operator; each sentence of the contract is a test. The ``materializer``
fixture fails a test that leaves a stream or a task running.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

import reactive
from reactive import (
    AbruptTerminationError,
    AsyncCallCancelledError,
    Attributes,
    Flow,
    Keep,
    Materializer,
    NeverMaterializedError,
    NotUsed,
    Sink,
    Source,
    StreamError,
    Supervision,
)
from reactive.stage import NoMoreElementsNeeded
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds (no wall-clock time involved)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def supervised(directive: Supervision) -> Attributes:
    return Attributes.supervision_strategy(lambda e: directive)


# ---------------------------------------------------------------------------------------
# Source.maybe
# ---------------------------------------------------------------------------------------
class TestMaybe:
    async def test_mat_is_a_future_and_set_result_emits_then_completes(
        self, materializer: Materializer
    ) -> None:
        fut, probe = Source.maybe().to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert isinstance(fut, asyncio.Future)
        probe.request(1)
        await settle()
        assert not fut.done()
        fut.set_result(42)
        await probe.expect_next(42)
        await probe.expect_complete()

    async def test_value_set_before_demand_waits_for_it(self, materializer: Materializer) -> None:
        fut, probe = Source.maybe().to_mat(TestSink.probe(), Keep.both).run(materializer)
        fut.set_result("x")
        await settle()
        probe.request(1)
        await probe.expect_next("x")
        await probe.expect_complete()

    async def test_set_result_none_completes_empty(self, materializer: Materializer) -> None:
        fut, result = Source.maybe().to_mat(Sink.seq(), Keep.both).run(materializer)
        fut.set_result(None)
        assert await result == []

    async def test_set_exception_fails_the_stream(self, materializer: Materializer) -> None:
        fut, probe = Source.maybe().to_mat(TestSink.probe(), Keep.both).run(materializer)
        fut.set_exception(Boom("no"))
        assert isinstance(await probe.expect_error(), Boom)

    async def test_cancelled_first_completes_the_future_with_none(
        self, materializer: Materializer
    ) -> None:
        fut, probe = Source.maybe().to_mat(TestSink.probe(), Keep.both).run(materializer)
        probe.cancel()
        assert await asyncio.wait_for(asyncio.shield(fut), 3) is None
        with pytest.raises(asyncio.InvalidStateError):
            fut.set_result(1)

    async def test_a_cancelled_future_fails_the_stream(self, materializer: Materializer) -> None:
        fut, probe = Source.maybe().to_mat(TestSink.probe(), Keep.both).run(materializer)
        fut.cancel()
        err = await probe.expect_error()
        # An ordinary failure (asyncio's CancelledError would look like the awaiting
        # task's own cancellation), with the CancelledError as its cause.
        assert isinstance(err, AsyncCallCancelledError)
        assert isinstance(err.__cause__, asyncio.CancelledError)

    async def test_each_materialization_has_its_own_future(
        self, materializer: Materializer
    ) -> None:
        src = Source.maybe()
        f1, r1 = src.to_mat(Sink.seq(), Keep.both).run(materializer)
        f2, r2 = src.to_mat(Sink.seq(), Keep.both).run(materializer)
        assert f1 is not f2
        f1.set_result(1)
        f2.set_result(2)
        assert (await r1, await r2) == ([1], [2])

    async def test_abrupt_termination_fails_the_future(self) -> None:
        mat = Materializer()
        fut = Source.maybe().to(Sink.ignore()).run(mat)
        await settle()
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await fut


# ---------------------------------------------------------------------------------------
# Source.cycle
# ---------------------------------------------------------------------------------------
class TestCycle:
    async def test_repeats_the_iterable_forever(self, materializer: Materializer) -> None:
        got = await Source.cycle(lambda: [1, 2, 3]).take(8).run_with(Sink.seq(), materializer)
        assert got == [1, 2, 3, 1, 2, 3, 1, 2]

    async def test_factory_called_again_each_time_exhausted(
        self, materializer: Materializer
    ) -> None:
        calls = []

        def factory() -> Any:
            calls.append(1)
            return (x for x in "ab")  # a one-shot generator: re-creation is required

        got = await Source.cycle(factory).take(5).run_with(Sink.seq(), materializer)
        assert got == ["a", "b", "a", "b", "a"]
        assert len(calls) == 3

    async def test_backpressure_and_first_call_on_demand(self, materializer: Materializer) -> None:
        calls = []

        def factory() -> list[int]:
            calls.append(1)
            return [1, 2]

        probe = Source.cycle(factory).run_with(TestSink.probe(), materializer)
        await settle()
        assert calls == []
        probe.request(3)
        await probe.expect_next(1, 2, 1)
        probe.cancel()
        await settle()

    async def test_empty_iterable_fails_with_value_error(self, materializer: Materializer) -> None:
        probe = Source.cycle(lambda: []).run_with(TestSink.probe(), materializer)
        probe.request(1)
        exc = await probe.expect_error()
        assert isinstance(exc, ValueError)
        assert "cycle" in str(exc) and "empty" in str(exc)

    async def test_empty_later_iterable_fails_too(self, materializer: Materializer) -> None:
        its = iter([[1, 2], []])
        probe = Source.cycle(lambda: next(its)).run_with(TestSink.probe(), materializer)
        probe.request(5)
        await probe.expect_next(1, 2)
        assert isinstance(await probe.expect_error(), ValueError)

    async def test_raising_factory_fails_the_stream(self, materializer: Materializer) -> None:
        def factory() -> list[int]:
            raise Boom("factory")

        with pytest.raises(Boom):
            await Source.cycle(factory).run_with(Sink.seq(), materializer)

    def test_factory_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match=r"Source.cycle.*factory must be callable"):
            Source.cycle([1, 2, 3])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Source.unfold_resource
# ---------------------------------------------------------------------------------------
class Resource:
    """A fake resource recording its life: reads ``items`` (an exception is raised)."""

    def __init__(self, log: list[str], items: list[Any], name: str = "r") -> None:
        self.log = log
        self.items = list(items)
        self.name = name
        self.closed = 0

    def read(self) -> Any:
        self.log.append(f"read {self.name}")
        if not self.items:
            return None
        x = self.items.pop(0)
        if isinstance(x, BaseException):
            raise x
        return x

    def close(self) -> None:
        self.closed += 1
        self.log.append(f"close {self.name}")


class Sync:
    """create/read/close functions over ``Resource`` objects, one per ``create()``."""

    def __init__(self, *contents: list[Any], close_error: BaseException | None = None) -> None:
        self.contents = list(contents)
        self.log: list[str] = []
        self.resources: list[Resource] = []
        self.close_error = close_error

    def create(self) -> Resource:
        r = Resource(self.log, self.contents.pop(0), name=str(len(self.resources)))
        self.resources.append(r)
        self.log.append(f"create {r.name}")
        return r

    def read(self, r: Resource) -> Any:
        return r.read()

    def close(self, r: Resource) -> None:
        r.close()
        if self.close_error is not None:
            raise self.close_error

    def source(self) -> Source[Any, Any]:
        return Source.unfold_resource(self.create, self.read, self.close)

    def closed_once(self) -> bool:
        return bool(self.resources) and all(r.closed == 1 for r in self.resources)


async def check_reads_until_none(kind: type[Sync], materializer: Materializer) -> None:
    """Reads until ``read`` returns None, then closes once and completes."""
    res = kind([1, 2, 3])
    assert await res.source().run_with(Sink.seq(), materializer) == [1, 2, 3]
    assert res.log == ["create 0", "read 0", "read 0", "read 0", "read 0", "close 0"]
    assert res.closed_once()


async def check_downstream_failure(kind: type[Sync], materializer: Materializer) -> None:
    """A failure downstream cancels the source: it closes once."""
    res = kind([1, 2, 3])

    def bad(x: int) -> int:
        raise Boom("downstream")

    with pytest.raises(Boom, match="downstream"):
        await res.source().map(bad).run_with(Sink.seq(), materializer)
    await settle()
    assert res.log == ["create 0", "read 0", "close 0"]


async def check_read_failure(kind: type[Sync], materializer: Materializer) -> None:
    """A raising ``read`` closes the resource once, then fails the stream."""
    res = kind([1, Boom("read")])
    probe = res.source().run_with(TestSink.probe(), materializer)
    probe.request(5)
    await probe.expect_next(1)
    assert str(await probe.expect_error()) == "read"
    assert res.log[-1] == "close 0"
    assert res.closed_once()


async def check_resume(kind: type[Sync], materializer: Materializer) -> None:
    """Resume skips the element whose read raised, on the same resource."""
    res = kind([1, Boom("bad"), 3])
    src = res.source().with_attributes(supervised(Supervision.resume))
    assert await src.run_with(Sink.seq(), materializer) == [1, 3]
    assert len(res.resources) == 1 and res.closed_once()


async def check_close_on_completion(kind: type[Sync], materializer: Materializer) -> None:
    """A raising ``close`` on completion fails the stream."""
    res = kind([1], close_error=Boom("close"))
    with pytest.raises(Boom, match="close"):
        await res.source().run_with(Sink.seq(), materializer)
    assert res.closed_once()


async def check_close_after_failure(
    kind: type[Sync], materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising ``close`` after a failure is logged; the first failure wins."""
    res = kind([Boom("read")], close_error=Boom("close"))
    with caplog.at_level(logging.ERROR, logger="reactive"):
        with pytest.raises(Boom, match="read"):
            await res.source().run_with(Sink.seq(), materializer)
    assert res.closed_once()
    assert "close(resource) raised" in caplog.text


class TestUnfoldResource:
    async def test_reads_until_none_then_closes_once_and_completes(
        self, materializer: Materializer
    ) -> None:
        await check_reads_until_none(Sync, materializer)

    async def test_create_runs_at_start_before_any_demand(self, materializer: Materializer) -> None:
        res = Sync([1])
        probe = res.source().run_with(TestSink.probe(), materializer)
        await settle()
        assert res.log == ["create 0"]  # created, nothing read without demand
        probe.request(1)
        await probe.expect_next(1)
        assert res.log == ["create 0", "read 0"]  # one read per demand
        probe.cancel()
        await settle()

    async def test_cancelled_before_first_element_still_closes_once(
        self, materializer: Materializer
    ) -> None:
        res = Sync([1, 2])
        probe = res.source().run_with(TestSink.probe(), materializer)
        await settle()
        probe.cancel()
        await settle()
        assert res.log == ["create 0", "close 0"]
        assert res.closed_once()

    async def test_cancellation_closes_once(self, materializer: Materializer) -> None:
        res = Sync([1, 2, 3, 4])
        assert await res.source().take(2).run_with(Sink.seq(), materializer) == [1, 2]
        await settle()
        assert res.log[-1] == "close 0"
        assert res.closed_once()

    async def test_downstream_failure_closes_once(self, materializer: Materializer) -> None:
        await check_downstream_failure(Sync, materializer)

    async def test_read_failure_closes_once_and_fails(self, materializer: Materializer) -> None:
        await check_read_failure(Sync, materializer)

    async def test_create_failure_fails_without_close(self, materializer: Materializer) -> None:
        closed = []

        def create() -> Any:
            raise Boom("create")

        src = Source.unfold_resource(create, lambda r: None, closed.append)
        with pytest.raises(Boom, match="create"):
            await src.run_with(Sink.seq(), materializer)
        assert closed == []

    async def test_resume_skips_the_element_whose_read_raised(
        self, materializer: Materializer
    ) -> None:
        await check_resume(Sync, materializer)

    async def test_restart_closes_then_creates(self, materializer: Materializer) -> None:
        res = Sync([1, Boom("bad"), 99], [2, 3])
        src = res.source().with_attributes(supervised(Supervision.restart))
        assert await src.run_with(Sink.seq(), materializer) == [1, 2, 3]
        assert res.log == [
            "create 0", "read 0", "read 0", "close 0", "create 1",
            "read 1", "read 1", "read 1", "close 1",
        ]  # fmt: skip
        assert res.closed_once()

    async def test_raising_close_on_completion_fails_the_stream(
        self, materializer: Materializer
    ) -> None:
        await check_close_on_completion(Sync, materializer)

    async def test_raising_close_after_failure_keeps_the_first_failure(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        await check_close_after_failure(Sync, materializer, caplog)

    async def test_raising_close_on_cancellation_is_logged_once(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        res = Sync([1, 2, 3], close_error=Boom("close"))
        with caplog.at_level(logging.ERROR, logger="reactive"):
            assert await res.source().take(1).run_with(Sink.seq(), materializer) == [1]
            await settle()
        assert res.closed_once()
        assert caplog.text.count("close(resource) raised") == 1

    async def test_raising_close_on_restart_fails_the_stream(
        self, materializer: Materializer
    ) -> None:
        res = Sync([Boom("read")], [1], close_error=Boom("close"))
        src = res.source().with_attributes(supervised(Supervision.restart))
        with pytest.raises(Boom, match="close"):
            await src.run_with(Sink.seq(), materializer)
        assert len(res.resources) == 1 and res.closed_once()

    async def test_abrupt_termination_closes_once(self) -> None:
        res = Sync([1, 2, 3])
        mat = Materializer()
        probe = res.source().run_with(TestSink.probe(), mat)
        await probe.request_next(1)
        await mat.shutdown()
        assert res.closed_once()

    def test_arguments_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match=r"unfold_resource.*read must be callable"):
            Source.unfold_resource(lambda: 1, None, print)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Source.unfold_resource_async
# ---------------------------------------------------------------------------------------
class Async(Sync):
    """The same resources behind three coroutine functions; ``gate_*`` events hold a call."""

    def __init__(self, *contents: list[Any], close_error: BaseException | None = None) -> None:
        super().__init__(*contents, close_error=close_error)
        self.gate_create: asyncio.Event | None = None
        self.gate_read: asyncio.Event | None = None
        self.gate_close: asyncio.Event | None = None
        self.read_cancelled = False

    async def acreate(self) -> Resource:
        if self.gate_create is not None:
            await self.gate_create.wait()
        return self.create()

    async def aread(self, r: Resource) -> Any:
        if self.gate_read is not None:
            try:
                await self.gate_read.wait()
            except asyncio.CancelledError:
                self.read_cancelled = True
                raise
        return self.read(r)

    async def aclose(self, r: Resource) -> None:
        if self.gate_close is not None:
            await self.gate_close.wait()
        self.close(r)

    def source(self) -> Source[Any, Any]:
        return Source.unfold_resource_async(self.acreate, self.aread, self.aclose)


class TestUnfoldResourceAsync:
    async def test_reads_until_none_then_closes_once_and_completes(
        self, materializer: Materializer
    ) -> None:
        await check_reads_until_none(Async, materializer)

    async def test_completion_is_signalled_after_close_finished(
        self, materializer: Materializer
    ) -> None:
        res = Async([1])
        res.gate_close = asyncio.Event()
        result = res.source().run_with(Sink.seq(), materializer)
        await settle()
        assert not result.done()  # closing
        res.gate_close.set()
        assert await result == [1]
        assert res.closed_once()

    async def test_create_runs_at_start_before_any_demand(self, materializer: Materializer) -> None:
        res = Async([1])
        probe = res.source().run_with(TestSink.probe(), materializer)
        await settle()
        assert res.log == ["create 0"]
        await probe.request_next(1)
        probe.cancel()
        await settle()
        assert res.closed_once()

    async def test_cancelled_while_create_pending_closes_once_create_finished(
        self, materializer: Materializer
    ) -> None:
        res = Async([1])
        res.gate_create = asyncio.Event()
        probe = res.source().run_with(TestSink.probe(), materializer)
        await settle()
        probe.cancel()
        await settle()
        assert res.log == []  # create still pending: not cancelled, nothing to close yet
        res.gate_create.set()
        await settle()
        assert res.log == ["create 0", "close 0"]
        assert res.closed_once()

    async def test_cancelled_before_first_element_closes_once(
        self, materializer: Materializer
    ) -> None:
        res = Async([1])
        probe = res.source().run_with(TestSink.probe(), materializer)
        await settle()
        probe.cancel()
        await settle()
        assert res.log == ["create 0", "close 0"]

    async def test_cancelled_while_read_pending_cancels_it_then_closes(
        self, materializer: Materializer
    ) -> None:
        res = Async([1, 2])
        res.gate_read = asyncio.Event()
        probe = res.source().run_with(TestSink.probe(), materializer)
        probe.request(1)
        await settle()
        probe.cancel()
        await settle()
        assert res.read_cancelled
        assert res.log == ["create 0", "close 0"]
        assert res.closed_once()

    async def test_downstream_failure_closes_once(self, materializer: Materializer) -> None:
        await check_downstream_failure(Async, materializer)

    async def test_read_failure_closes_once_then_fails(self, materializer: Materializer) -> None:
        await check_read_failure(Async, materializer)

    async def test_create_failure_fails_without_close(self, materializer: Materializer) -> None:
        closed = []

        async def create() -> Any:
            raise Boom("create")

        async def read(r: Any) -> Any:
            return None

        async def close(r: Any) -> None:
            closed.append(r)

        with pytest.raises(Boom, match="create"):
            await Source.unfold_resource_async(create, read, close).run_with(
                Sink.seq(), materializer
            )
        assert closed == []

    async def test_resume_skips_the_element_whose_read_failed(
        self, materializer: Materializer
    ) -> None:
        await check_resume(Async, materializer)

    async def test_restart_closes_then_creates(self, materializer: Materializer) -> None:
        res = Async([1, Boom("bad"), 99], [2])
        src = res.source().with_attributes(supervised(Supervision.restart))
        assert await src.run_with(Sink.seq(), materializer) == [1, 2]
        assert res.log == [
            "create 0", "read 0", "read 0", "close 0", "create 1", "read 1", "read 1", "close 1",
        ]  # fmt: skip
        assert res.closed_once()

    async def test_raising_close_on_completion_fails_the_stream(
        self, materializer: Materializer
    ) -> None:
        await check_close_on_completion(Async, materializer)

    async def test_raising_close_after_failure_keeps_the_first_failure(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        await check_close_after_failure(Async, materializer, caplog)

    async def test_read_returning_no_awaitable_is_a_clear_error(
        self, materializer: Materializer
    ) -> None:
        res = Async([1])
        src = Source.unfold_resource_async(res.acreate, res.read, res.aclose)  # sync read
        with pytest.raises(TypeError, match=r"unfold_resource_async: read must return an await"):
            await src.run_with(Sink.seq(), materializer)
        assert res.closed_once()

    async def test_abrupt_termination_closes_once(self) -> None:
        res = Async([1, 2, 3])
        mat = Materializer()
        probe = res.source().run_with(TestSink.probe(), mat)
        await probe.request_next(1)
        await mat.shutdown()
        await settle()
        assert res.closed_once()


# ---------------------------------------------------------------------------------------
# Source.lazy_source
# ---------------------------------------------------------------------------------------
class TestLazySource:
    async def test_factory_called_on_first_demand_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        calls = []

        def factory() -> Source[int, Any]:
            calls.append(1)
            return Source.from_iterable([1, 2]).map_materialized_value(lambda _: "inner")

        mat, probe = (
            Source.lazy_source(factory).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        await settle()
        assert calls == [] and not mat.done()
        probe.request(3)
        await probe.expect_next(1, 2)
        await probe.expect_complete()
        assert await mat == "inner"
        assert calls == [1]

    async def test_cancelled_before_demand_never_creates(self, materializer: Materializer) -> None:
        calls = []
        mat, probe = (
            Source.lazy_source(lambda: calls.append(1) or Source.single(1))
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        probe.cancel()
        with pytest.raises(NeverMaterializedError):
            await mat
        assert calls == []

    async def test_raising_factory_fails_stream_and_mat(self, materializer: Materializer) -> None:
        err = Boom("factory")

        def factory() -> Source[int, Any]:
            raise err

        mat, probe = (
            Source.lazy_source(factory).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        probe.request(1)
        assert await probe.expect_error() is err
        with pytest.raises(Boom) as info:
            await mat
        assert info.value is err

    async def test_inner_failure_fails_the_stream(self, materializer: Materializer) -> None:
        src = Source.lazy_source(lambda: Source.failed(Boom("inner")))
        with pytest.raises(Boom, match="inner"):
            await src.run_with(Sink.seq(), materializer)

    async def test_cancel_after_creation_cancels_the_inner_source(
        self, materializer: Materializer
    ) -> None:
        inner = TestSource.probe()
        mat, probe = (
            Source.lazy_source(lambda: inner).to_mat(TestSink.probe(), Keep.both).run(materializer)
        )
        probe.request(1)
        pub = await asyncio.wait_for(asyncio.shield(mat), 3)
        await pub.expect_request()
        pub.send_next("a")
        await probe.expect_next("a")
        probe.cancel()
        await pub.expect_cancellation()

    async def test_factory_must_return_a_source(self, materializer: Materializer) -> None:
        src = Source.lazy_source(lambda: Flow().map(str))
        with pytest.raises(TypeError, match=r"lazy_source.*must return a Source"):
            await src.run_with(Sink.seq(), materializer)


# ---------------------------------------------------------------------------------------
# Source.lazy_single / Source.lazy_future
# ---------------------------------------------------------------------------------------
class TestLazySingle:
    async def test_calls_f_on_first_demand_emits_then_completes(
        self, materializer: Materializer
    ) -> None:
        calls = []
        mat, probe = (
            Source.lazy_single(lambda: calls.append(1) or "v")
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        assert mat is NotUsed
        await settle()
        assert calls == []
        probe.request(1)
        await probe.expect_next("v")
        await probe.expect_complete()
        assert calls == [1]

    async def test_raising_f_fails_with_that_exception(self, materializer: Materializer) -> None:
        err = Boom("f")

        def f() -> int:
            raise err

        probe = Source.lazy_single(f).run_with(TestSink.probe(), materializer)
        probe.request(1)
        assert await probe.expect_error() is err

    async def test_cancelled_before_demand_never_calls_f(self, materializer: Materializer) -> None:
        calls = []
        probe = Source.lazy_single(lambda: calls.append(1) or 1).run_with(
            TestSink.probe(), materializer
        )
        probe.cancel()
        await settle()
        assert calls == []


class TestLazyFuture:
    async def test_calls_f_on_first_demand_and_emits_the_result(
        self, materializer: Materializer
    ) -> None:
        calls = []

        async def f() -> str:
            calls.append(1)
            return "r"

        mat, probe = Source.lazy_future(f).to_mat(TestSink.probe(), Keep.both).run(materializer)
        assert mat is NotUsed
        await settle()
        assert calls == []
        probe.request(1)
        await probe.expect_next("r")
        await probe.expect_complete()

    async def test_none_result_completes_empty(self, materializer: Materializer) -> None:
        async def f() -> None:
            return None

        assert await Source.lazy_future(f).run_with(Sink.seq(), materializer) == []

    async def test_failing_awaitable_fails_with_that_exception(
        self, materializer: Materializer
    ) -> None:
        err = Boom("aw")

        async def f() -> int:
            raise err

        probe = Source.lazy_future(f).run_with(TestSink.probe(), materializer)
        probe.request(1)
        assert await probe.expect_error() is err

    async def test_raising_f_fails_with_that_exception(self, materializer: Materializer) -> None:
        err = Boom("f")

        def f() -> Any:
            raise err

        probe = Source.lazy_future(f).run_with(TestSink.probe(), materializer)
        probe.request(1)
        assert await probe.expect_error() is err

    async def test_a_future_is_emitted_when_it_completes(self, materializer: Materializer) -> None:
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        probe = Source.lazy_future(lambda: fut).run_with(TestSink.probe(), materializer)
        probe.request(1)
        await settle()
        fut.set_result(7)
        await probe.expect_next(7)
        await probe.expect_complete()


# ---------------------------------------------------------------------------------------
# Flow.lazy_flow
# ---------------------------------------------------------------------------------------
def run_lazy_flow(materializer: Materializer, factory: Any) -> tuple[Any, asyncio.Future[Any], Any]:
    """TestSource -> lazy_flow(factory) -> TestSink: (publisher, mat future, subscriber)."""
    (pub, mat), sub = (
        TestSource.probe()
        .via_mat(Flow.lazy_flow(factory), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return pub, mat, sub


class TestLazyFlow:
    async def test_created_on_first_element_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        calls = []

        def factory() -> Flow[int, int, Any]:
            calls.append(1)
            return Flow().map(lambda x: x * 10).map_materialized_value(lambda _: "inner")

        pub, mat, sub = run_lazy_flow(materializer, factory)
        sub.request(3)
        await pub.expect_request()  # demand goes upstream before the flow exists
        assert calls == [] and not mat.done()
        pub.send_next(1)
        await sub.expect_next(10)  # the first element goes through the inner flow
        assert await mat == "inner"
        pub.send_next(2).send_complete()
        await sub.expect_next(20)
        await sub.expect_complete()
        assert calls == [1]

    async def test_empty_stream_completes_and_mat_never_materialized(
        self, materializer: Materializer
    ) -> None:
        calls = []
        mat, result = (
            Source.empty()
            .via_mat(Flow.lazy_flow(lambda: calls.append(1) or Flow()), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        assert await result == []
        with pytest.raises(NeverMaterializedError):
            await mat
        assert calls == []

    async def test_raising_factory_fails_cancels_upstream_and_chains_the_cause(
        self, materializer: Materializer
    ) -> None:
        err = Boom("factory")

        def factory() -> Flow[Any, Any, Any]:
            raise err

        pub, mat, sub = run_lazy_flow(materializer, factory)
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        assert await sub.expect_error() is err
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    async def test_upstream_failure_before_any_element(self, materializer: Materializer) -> None:
        err = Boom("up")
        pub, mat, sub = run_lazy_flow(materializer, lambda: Flow())
        sub.request(1)
        pub.send_error(err)
        assert await sub.expect_error() is err
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    async def test_downstream_cancel_before_any_element_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        pub, mat, sub = run_lazy_flow(materializer, lambda: Flow())
        sub.cancel()
        await pub.expect_cancellation()
        with pytest.raises(NeverMaterializedError):
            await mat

    async def test_upstream_end_right_after_first_element_keeps_it(
        self, materializer: Materializer
    ) -> None:
        pub, mat, sub = run_lazy_flow(materializer, lambda: Flow().map(str))
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1).send_complete()
        await sub.expect_next("1")
        await sub.expect_complete()
        await mat

    async def test_upstream_failure_after_first_element_keeps_it(
        self, materializer: Materializer
    ) -> None:
        err = Boom("late")
        pub, _mat, sub = run_lazy_flow(materializer, lambda: Flow().map(str))
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1).send_error(err)
        await sub.expect_next("1")
        assert await sub.expect_error() is err

    async def test_upstream_failure_before_the_inner_flow_pulls_keeps_the_first_element(
        self, materializer: Materializer
    ) -> None:
        err = Boom("late")
        # An inner flow whose input is a probe: it pulls only when the test says so.
        pub, mat, sub = run_lazy_flow(
            materializer,
            lambda: Flow.from_sink_and_source_mat(TestSink.probe(), Source.maybe(), Keep.both),
        )
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1).send_error(err)
        inner, out = await asyncio.wait_for(asyncio.shield(mat), 3)
        await settle()
        inner.request(1)
        await inner.expect_next(1)
        assert await inner.expect_error() is err
        out.set_result(None)
        await sub.expect_complete()

    async def test_downstream_cancel_after_creation_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        pub, mat, sub = run_lazy_flow(materializer, lambda: Flow().map(str))
        sub.request(1)
        await pub.expect_request()
        pub.send_next(1)
        await sub.expect_next("1")
        sub.cancel()
        await pub.expect_cancellation()
        await mat

    async def test_factory_must_return_a_flow(self, materializer: Materializer) -> None:
        mat, result = (
            Source.single(1)
            .via_mat(Flow.lazy_flow(lambda: Sink.seq()), Keep.right)
            .to_mat(Sink.seq(), Keep.both)
            .run(materializer)
        )
        with pytest.raises(TypeError, match=r"\[lazy_flow\] factory\(\) must return a Flow"):
            await result
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert isinstance(info.value.__cause__, TypeError)

    async def test_backpressure_is_the_inner_flows(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(100)).via(Flow.lazy_flow(lambda: Flow().map(str)))
        probe = src.run_with(TestSink.probe(), materializer)
        probe.request(2)
        await probe.expect_next("0", "1")
        assert await probe.to_list() == [str(i) for i in range(2, 100)]


# ---------------------------------------------------------------------------------------
# Sink.lazy_sink
# ---------------------------------------------------------------------------------------
class TestLazySink:
    async def test_created_on_first_element_and_mat_is_the_inner_mat(
        self, materializer: Materializer
    ) -> None:
        calls = []

        def factory() -> Sink[int, Any]:
            calls.append(1)
            return Sink.seq()

        pub, mat = TestSource.probe().to_mat(Sink.lazy_sink(factory), Keep.both).run(materializer)
        await pub.expect_request()
        await settle()
        assert calls == [] and not mat.done()
        pub.send_next(1)
        inner = await asyncio.wait_for(asyncio.shield(mat), 3)
        assert calls == [1]
        pub.send_next(2).send_next(3).send_complete()
        assert await inner == [1, 2, 3]

    async def test_empty_stream_fails_mat_with_never_materialized(
        self, materializer: Materializer
    ) -> None:
        calls = []
        mat = Source.empty().run_with(
            Sink.lazy_sink(lambda: calls.append(1) or Sink.seq()), materializer
        )
        with pytest.raises(NeverMaterializedError):
            await mat
        assert calls == []

    async def test_raising_factory_fails_mat_and_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        err = Boom("factory")

        def factory() -> Sink[Any, Any]:
            raise err

        pub, mat = TestSource.probe().to_mat(Sink.lazy_sink(factory), Keep.both).run(materializer)
        pub.send_next(1)
        assert await pub.expect_cancellation() is err
        with pytest.raises(Boom) as info:
            await mat
        assert info.value is err

    async def test_upstream_failure_before_first_element(self, materializer: Materializer) -> None:
        err = Boom("up")
        mat = Source.failed(err).run_with(Sink.lazy_sink(Sink.seq), materializer)
        with pytest.raises(NeverMaterializedError) as info:
            await mat
        assert info.value.__cause__ is err

    async def test_upstream_failure_after_first_element_reaches_the_inner_sink(
        self, materializer: Materializer
    ) -> None:
        err = Boom("late")
        seen: list[int] = []
        pub, mat = (
            TestSource.probe()
            .to_mat(Sink.lazy_sink(lambda: Sink.foreach(seen.append)), Keep.both)
            .run(materializer)
        )
        await pub.expect_request()
        pub.send_next(1).send_error(err)
        inner = await asyncio.wait_for(asyncio.shield(mat), 3)
        with pytest.raises(Boom):
            await inner
        assert seen == [1]

    async def test_upstream_end_before_the_inner_sink_pulls_keeps_the_first_element(
        self, materializer: Materializer
    ) -> None:
        err = Boom("late")
        pub, mat = (
            TestSource.probe().to_mat(Sink.lazy_sink(TestSink.probe), Keep.both).run(materializer)
        )
        await pub.expect_request()
        pub.send_next(1).send_error(err)
        inner = await asyncio.wait_for(asyncio.shield(mat), 3)
        await settle()
        inner.request(1)
        await inner.expect_next(1)
        assert await inner.expect_error() is err

    async def test_upstream_completion_before_the_inner_sink_pulls(
        self, materializer: Materializer
    ) -> None:
        pub, mat = (
            TestSource.probe().to_mat(Sink.lazy_sink(TestSink.probe), Keep.both).run(materializer)
        )
        await pub.expect_request()
        pub.send_next(1).send_complete()
        inner = await asyncio.wait_for(asyncio.shield(mat), 3)
        await settle()
        inner.request(1)
        await inner.expect_next(1)
        await inner.expect_complete()

    async def test_inner_sink_cancelling_cancels_upstream(self, materializer: Materializer) -> None:
        pub, mat = TestSource.probe().to_mat(Sink.lazy_sink(Sink.head), Keep.both).run(materializer)
        pub.send_next("h")
        assert await (await asyncio.wait_for(asyncio.shield(mat), 3)) == "h"
        await pub.expect_cancellation()

    async def test_inner_cancellation_cause_reaches_upstream(
        self, materializer: Materializer
    ) -> None:
        cause = NoMoreElementsNeeded("inner has enough")
        pub, mat = (
            TestSource.probe().to_mat(Sink.lazy_sink(TestSink.probe), Keep.both).run(materializer)
        )
        pub.send_next(1)
        inner = await asyncio.wait_for(asyncio.shield(mat), 3)
        await inner.request_next(1)
        inner.cancel(cause)
        assert await pub.expect_cancellation() is cause

    async def test_inner_sink_failure_cancels_upstream_with_it(
        self, materializer: Materializer
    ) -> None:
        err = Boom("inner")

        def f(x: int) -> None:
            raise err

        pub, mat = (
            TestSource.probe()
            .to_mat(Sink.lazy_sink(lambda: Sink.foreach(f)), Keep.both)
            .run(materializer)
        )
        pub.send_next(1)
        assert await pub.expect_cancellation() is err
        with pytest.raises(Boom):
            await (await asyncio.wait_for(asyncio.shield(mat), 3))

    async def test_single_element_stream(self, materializer: Materializer) -> None:
        mat = Source.single(5).run_with(Sink.lazy_sink(Sink.seq), materializer)
        assert await (await mat) == [5]


# ---------------------------------------------------------------------------------------
# NeverMaterializedError
# ---------------------------------------------------------------------------------------
class TestNeverMaterializedError:
    def test_exported_from_reactive_as_a_stream_error(self) -> None:
        assert "NeverMaterializedError" in reactive.__all__
        assert issubclass(reactive.NeverMaterializedError, StreamError)

    async def test_names_the_stage(self, materializer: Materializer) -> None:
        mat = Source.empty().run_with(Sink.lazy_sink(Sink.seq), materializer)
        with pytest.raises(NeverMaterializedError, match=r"\[lazy_sink\].*never materialized"):
            await mat
