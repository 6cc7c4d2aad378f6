"""Sink factories (``reactive/_ops/sinks.py``): foreach, fold, reduce, head, last, take_last, seq,
ignore, ... Akka's HeadSinkSpec, LastSinkSpec, SeqSinkSpec, TakeLastSinkSpec and our own cases,
a class per factory.
"""

from __future__ import annotations

import gc
import logging
import operator
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    Done,
    Keep,
    Materializer,
    NoSuchElementError,
    NotUsed,
    PortStateError,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import TestSink, TestSource
from tests.reactive.support import Boom, restarting, resuming, settle


@pytest.fixture(params=[True, False], ids=["fast", "plain"])
async def mat(request: pytest.FixtureRequest) -> AsyncIterator[Materializer]:
    """A materializer with fast paths on or off; fails the test if a stream is left running."""
    m = Materializer(fast_paths=request.param)
    yield m
    await settle()
    running = m.running_tasks
    await m.shutdown()
    assert running == 0, f"{running} stream task(s) still running after the test"


SINKS: dict[str, Callable[[], Any]] = {
    "seq": Sink.seq,
    "ignore": Sink.ignore,
    "head": Sink.head,
    "head_option": Sink.head_option,
    "last": Sink.last,
    "last_option": Sink.last_option,
    "fold": lambda: Sink.fold(0, operator.add),
    "reduce": lambda: Sink.reduce(operator.add),
    "take_last": lambda: Sink.take_last(2),
    "foreach": lambda: Sink.foreach(lambda x: None),
}


class TestForeach:
    """``Sink.foreach``."""

    async def test_foreach(self, mat: Materializer) -> None:
        seen: list[int] = []
        assert await Source.from_iterable(range(5)).run_with(Sink.foreach(seen.append), mat) is Done
        assert seen == list(range(5))

    async def test_foreach_failure_and_resume(self, mat: Materializer) -> None:
        def f(x: int) -> None:
            if x == 2:
                raise Boom("each")
            seen.append(x)

        seen: list[int] = []
        with pytest.raises(Boom):
            await Source.from_iterable(range(5)).run_with(Sink.foreach(f), mat)
        seen.clear()
        sink = Sink.foreach(f).with_attributes(
            Attributes.supervision_strategy(lambda e: Supervision.resume)
        )
        assert await Source.from_iterable(range(5)).run_with(sink, mat) is Done
        assert seen == [0, 1, 3, 4]


class TestFold:
    """``Sink.fold``."""

    async def test_fold_reduce(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(5)).run_with(Sink.fold(0, operator.add), mat) == 10
        assert await Source.empty().run_with(Sink.fold(3, operator.add), mat) == 3
        assert await Source.from_iterable(range(5)).run_with(Sink.reduce(operator.add), mat) == 10
        with pytest.raises(NoSuchElementError):
            await Source.empty().run_with(Sink.reduce(operator.add), mat)

    @pytest.mark.parametrize(
        ("directive", "expected"), [(Supervision.resume, 7), (Supervision.restart, 4)]
    )
    async def test_fold_sink_supervision(
        self, mat: Materializer, directive: Supervision, expected: int
    ) -> None:
        def f(a: int, x: int) -> int:
            if x == 3:
                raise Boom("fold")
            return a + x

        sink = Sink.fold(0, f).with_attributes(Attributes.supervision_strategy(lambda e: directive))
        assert await Source.from_iterable([1, 2, 3, 4]).run_with(sink, mat) == expected

    async def test_fold_and_reduce_failures(self, mat: Materializer) -> None:
        def f(a: int, x: int) -> int:
            raise Boom("f")

        with pytest.raises(Boom):
            await Source.from_iterable([1, 2]).run_with(Sink.fold(0, f), mat)
        with pytest.raises(Boom):
            await Source.from_iterable([1, 2]).run_with(Sink.reduce(f), mat)

    async def test_fold_sink_resume_and_restart(self, materializer: Materializer) -> None:
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


class TestHeadOption:
    """``Sink.head_option``."""

    async def test_head_option_yields_first_value_and_cancels_upstream(
        self,
        materializer: Materializer,
    ) -> None:
        pub, head = TestSource.probe().to_mat(Sink.head_option(), Keep.both).run(materializer)
        pub.send_next(42)
        assert await head == 42
        await pub.expect_cancellation()


class TestHead:
    """``Sink.head``."""

    async def test_head_and_head_option(self, mat: Materializer) -> None:
        assert await Source.from_iterable([4, 5]).run_with(Sink.head(), mat) == 4
        assert await Source.repeat(1).run_with(Sink.head(), mat) == 1  # cancels upstream
        assert await Source.empty().run_with(Sink.head_option(), mat) is None
        assert await Source.single(3).run_with(Sink.head_option(), mat) == 3
        with pytest.raises(NoSuchElementError):
            await Source.empty().run_with(Sink.head(), mat)

    async def test_head_yields_first_value_and_cancels_upstream(
        self, materializer: Materializer
    ) -> None:
        pub, head = TestSource.probe().to_mat(Sink.head(), Keep.both).run(materializer)
        await pub.expect_request()
        pub.send_next(42)
        assert await head == 42
        await pub.expect_cancellation()

    @pytest.mark.parametrize("sink", [Sink.head, Sink.last])
    async def test_head_and_last_of_empty_fail_with_no_such_element(
        self, materializer: Materializer, sink: Any
    ) -> None:
        with pytest.raises(NoSuchElementError) as info:
            await Source.empty().run_with(sink(), materializer)
        assert isinstance(info.value, LookupError)
        assert "empty stream" in str(info.value)


class TestLast:
    """``Sink.last``."""

    async def test_last_and_last_option(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(3000)).run_with(Sink.last(), mat) == 2999
        assert await Source.empty().run_with(Sink.last_option(), mat) is None
        with pytest.raises(NoSuchElementError):
            await Source.empty().run_with(Sink.last(), mat)

    async def test_last_yields_the_last_value(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(1, 43)).map(lambda x: x)
        assert await src.run_with(Sink.last(), materializer) == 42
        assert await src.run_with(Sink.last_option(), materializer) == 42

    async def test_last_fails_when_the_stream_fails_after_elements(
        self, materializer: Materializer
    ) -> None:
        src = Source.from_iterable([1, 2]).concat(Source.failed(Boom()))
        with pytest.raises(Boom):
            await src.run_with(Sink.last(), materializer)
        with pytest.raises(Boom):
            await src.run_with(Sink.last_option(), materializer)


class TestTakeLast:
    """``Sink.take_last``."""

    async def test_take_last(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(10)).run_with(Sink.take_last(3), mat) == [7, 8, 9]
        assert await Source.from_iterable(range(2)).run_with(Sink.take_last(3), mat) == [0, 1]
        with pytest.raises(ValueError, match="n must be >= 1, got 0"):
            Sink.take_last(0)  # rejected at construction, as Akka's TakeLastStage does

    async def test_take_last_spec_cases(self, materializer: Materializer) -> None:
        src = Source.from_iterable(range(1, 7))
        assert await src.run_with(Sink.take_last(3), materializer) == [4, 5, 6]
        assert await src.run_with(Sink.take_last(1), materializer) == [6]
        assert await Source.from_iterable(range(1, 5)).run_with(
            Sink.take_last(5), materializer
        ) == [
            1,
            2,
            3,
            4,
        ]
        assert await Source.empty().run_with(Sink.take_last(3), materializer) == []
        with pytest.raises(Boom):
            await src.concat(Source.failed(Boom())).run_with(Sink.take_last(3), materializer)


class TestSeq:
    """``Sink.seq``."""

    async def test_seq_sink(self, materializer: Materializer) -> None:
        xs = list(range(1, 4))
        assert await Source.from_iterable(xs).run_with(Sink.seq(), materializer) == xs
        assert await Source.empty().run_with(Sink.seq(), materializer) == []


class TestIgnore:
    """``Sink.ignore``."""

    async def test_ignore_and_cancelled(self, mat: Materializer) -> None:
        assert await Source.from_iterable(range(100)).run_with(Sink.ignore(), mat) is Done
        pub = TestSource.probe().to(Sink.cancelled()).run(mat)
        await pub.expect_cancellation()
        assert Source.single(1).to_mat(Sink.cancelled(), Keep.right).run(mat) is NotUsed


class TestOnComplete:
    """``Sink.on_complete``."""

    async def test_on_complete(self, mat: Materializer) -> None:
        got: list[Any] = []
        Source.from_iterable([1, 2]).run_with(Sink.on_complete(got.append), mat)
        await settle()
        assert got == [None]
        err = Boom("oc")
        Source.failed(err).run_with(Sink.on_complete(got.append), mat)
        await settle()
        assert got == [None, err]


class TestContramap:
    """``Sink.contramap``."""

    async def test_contramap_and_run_helpers(self, mat: Materializer) -> None:
        sink = Sink.seq().contramap(lambda x: x * 2)
        assert await Source.from_iterable([1, 2]).run_with(sink, mat) == [2, 4]
        seen: list[int] = []
        assert await Source.from_iterable([1, 2]).run_foreach(seen.append, mat) is Done
        assert seen == [1, 2]
        assert await Source.from_iterable([1, 2]).run_fold(10, operator.add, mat) == 13
        assert await Source.from_iterable([1, 2]).run_reduce(operator.mul, mat) == 2


class TestSinks:
    """What every sink does."""

    @pytest.mark.parametrize("name", list(SINKS))
    async def test_sinks_fail_with_the_upstream_error(self, mat: Materializer, name: str) -> None:
        err = Boom("up")
        src = (
            Source.from_iterable([1]).concat(Source.failed(err))
            if name
            not in (
                "head",
                "head_option",
            )
            else Source.failed(err)
        )
        with pytest.raises(Boom) as info:
            await src.run_with(SINKS[name](), mat)
        assert info.value is err

    @pytest.mark.parametrize("name", list(SINKS))
    async def test_sinks_request_with_demand(self, mat: Materializer, name: str) -> None:
        """Each sink pulls (at least one element) at start and handles elements sent one by one."""
        pub, fut = TestSource.probe().to_mat(SINKS[name](), Keep.both).run(mat)
        await pub.expect_request()
        pub.send_next(1)
        if name not in ("head", "head_option"):
            await pub.expect_request()
            pub.send_next(2).send_complete()
        await fut

    async def test_unawaited_failed_result_is_logged_once_naming_the_stage(
        self, mat: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A failed sink future that nobody awaits: one ERROR on the ``reactive`` logger
        naming the stage, not asyncio's anonymous "exception was never retrieved" (the
        cases are in test_unobserved_failures.py)."""
        caplog.set_level(logging.ERROR)
        Source.failed(Boom("ignored")).run_with(Sink.seq(), mat)
        await settle()
        gc.collect()
        messages = [r.getMessage() for r in caplog.records]
        assert not [m for m in messages if "never retrieved" in m]
        reported = [m for m in messages if "nobody observed the failure" in m]
        assert len(reported) == 1
        assert reported[0].startswith("[failed_source] ") and "ignored" in reported[0]

    @pytest.mark.parametrize("shape", ["sink", "map", "filter", "boundary", "probe"])
    async def test_none_from_an_iterable_fails_the_stream(
        self, mat: Materializer, shape: str
    ) -> None:
        # RS rule 2.13 holds on the batched paths too (a batch is not pushed element by
        # element): the elements before the None go out, the user's map never sees it.
        seen: list[Any] = []

        def record(x: Any) -> Any:
            seen.append(x)
            return x

        src: Source[Any, Any] = Source.from_iterable([1, None, 3])
        if shape == "probe":
            probe = src.run_with(TestSink.probe(), mat)
            probe.request(5)
            await probe.expect_next(1)
            err = await probe.expect_error()
        else:
            flow = {
                "sink": src,
                "map": src.map(record),
                "filter": src.filter(lambda x: record(x) is not None),
                "boundary": src.async_boundary(),
            }[shape]
            with pytest.raises(PortStateError) as info:
                await flow.run_with(Sink.seq(), mat)
            err = info.value
        assert "RS rule 2.13" in str(err)
        assert "iterable_source" in str(err)
        assert None not in seen

    @pytest.mark.parametrize(
        "sink", [Sink.head, Sink.head_option, Sink.last, Sink.last_option, Sink.seq]
    )
    async def test_sinks_yield_the_first_error(self, materializer: Materializer, sink: Any) -> None:
        err = Boom("ex")
        with pytest.raises(Boom) as info:
            await Source.failed(err).run_with(sink(), materializer)
        assert info.value is err

    @pytest.mark.parametrize("sink", [Sink.head_option, Sink.last_option])
    async def test_option_sinks_of_empty_yield_none(
        self, materializer: Materializer, sink: Any
    ) -> None:
        assert await Source.empty().run_with(sink(), materializer) is None

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
    async def test_sinks_fail_on_abrupt_termination(self, sink: Any) -> None:
        mat = Materializer()
        result = Source.never().run_with(sink(), mat)
        await settle(5)
        await mat.shutdown()
        with pytest.raises(AbruptTerminationError):
            await result
