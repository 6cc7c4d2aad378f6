"""Small Akka/Pekko parity items: ``Attributes.LOG_LEVEL_OFF`` for ``log`` (Akka's
``Attributes.logLevelOff``), ``fold_while`` keeping ``f``'s result when ``pred`` raises
under resume (Pekko's ``Fold``), and ``aggregate_with_boundary`` dropping the aggregate
in progress under resume (Pekko's ``AggregateWithBoundary``)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest

from reactive import Attributes, Flow, Materializer, Sink, Source, Supervision
from tests.reactive.support import Boom, decider, failing_after, probes, quiet_for, seq

if TYPE_CHECKING:
    from reactive.testkit import ManualClock

OFF = Attributes.LOG_LEVEL_OFF


def records(caplog: pytest.LogCaptureFixture, name: str) -> list[tuple[str, int]]:
    return [(r.getMessage(), r.levelno) for r in caplog.records if f"[{name}]" in r.getMessage()]


class TestLogLevelOff:
    async def test_off_for_elements_skips_them_and_the_extractor(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="reactive")
        extracted: list[int] = []

        def extract(x: int) -> int:
            extracted.append(x)
            return x

        src = (
            Source.from_iterable([1, 2])
            .log("e", extract)
            .with_attributes(Attributes.log_levels(on_element=OFF))
        )
        assert await seq(src, materializer) == [1, 2]
        assert records(caplog, "e") == [("[e] Upstream finished.", logging.DEBUG)]
        assert extracted == []

    async def test_off_for_finish_covers_completion_and_cancellation(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="reactive")
        off = Attributes.log_levels(on_finish=OFF)
        done = Source.from_iterable([1]).log("done").with_attributes(off)
        assert await seq(done, materializer) == [1]
        cancelled = Source.from_iterable([1, 2, 3]).log("cut").with_attributes(off).take(1)
        assert await seq(cancelled, materializer) == [1]
        assert records(caplog, "done") == [("[done] Element: 1", logging.DEBUG)]
        assert records(caplog, "cut") == [("[cut] Element: 1", logging.DEBUG)]
        # on by default: both are logged
        cancelled = Source.from_iterable([1, 2, 3]).log("on").take(1)
        assert await seq(cancelled, materializer) == [1]
        assert [m for m, _ in records(caplog, "on")][1].startswith("[on] Downstream finished")

    async def test_off_for_failure_still_fails_the_stream(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG, logger="reactive")
        src = (
            failing_after([1], "up")
            .log("f")
            .with_attributes(Attributes.log_levels(on_element=OFF, on_failure=OFF))
        )
        with pytest.raises(Boom, match="up"):
            await seq(src, materializer)
        assert records(caplog, "f") == []

    async def test_all_off_logs_nothing(
        self, materializer: Materializer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        logger = logging.getLogger("tests.parity_small")
        levels = Attributes.log_levels(on_element=OFF, on_finish=OFF, on_failure=OFF)
        src = Source.from_iterable([1, 2]).log("all", logger=logger).with_attributes(levels)
        assert await seq(src, materializer) == [1, 2]
        assert records(caplog, "all") == []

    async def test_off_is_honoured_by_log_not_left_to_the_logger(
        self, materializer: Materializer
    ) -> None:
        class Everything:
            """A logger that filters nothing (as a custom or adapter logger may)."""

            def __init__(self) -> None:
                self.got: list[tuple[int, str]] = []

            def isEnabledFor(self, level: int) -> bool:
                return True

            def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
                self.got.append((level, msg % args))

        on, off = Everything(), Everything()
        levels = Attributes.log_levels(on_element=OFF, on_finish=OFF, on_failure=OFF)
        assert await seq(Source.from_iterable([1]).log("x", logger=on), materializer) == [1]
        debug = logging.DEBUG
        assert on.got == [(debug, "[x] Element: 1"), (debug, "[x] Upstream finished.")]
        quiet = failing_after([1], "up").log("x", logger=off).with_attributes(levels)
        with pytest.raises(Boom):
            await seq(quiet, materializer)
        cut = Source.from_iterable([1, 2]).log("x", logger=off).with_attributes(levels).take(1)
        assert await seq(cut, materializer) == [1]
        assert off.got == []

    def test_levels_must_be_ints(self) -> None:
        with pytest.raises(TypeError, match=r"Attributes.log_levels.*on_finish must be a"):
            Attributes.log_levels(on_finish="INFO")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"on_element must be .* got bool True"):
            Attributes.log_levels(on_element=True)
        assert Attributes.log_levels(on_failure=OFF).get("log_on_failure") == OFF


def raising_at(bad: int) -> Any:
    """A ``fold_while`` predicate: ``acc < 100``, but raises the first time it sees the
    accumulation ``bad``."""
    seen: list[int] = []

    def pred(acc: int) -> bool:
        if acc == bad and not seen:
            seen.append(acc)
            raise Boom(f"pred {acc}")
        return acc < 100

    return pred


class TestFoldWhilePredicateSupervision:
    async def test_resume_keeps_the_accumulation_f_returned(
        self, materializer: Materializer
    ) -> None:
        def run(directive: Any) -> Any:
            flow = Flow[int]().fold_while(0, raising_at(3), lambda acc, x: acc + x)
            if directive is not None:
                flow = flow.with_attributes(decider(directive))
            return seq(Source.from_iterable([1, 2, 3, 4]).via(flow), materializer)

        # 1, 3 (pred raises: kept), 6, 10; dropping the 3 would give 8
        assert await run(Supervision.resume) == [10]
        assert await run(Supervision.restart) == [7]  # 1, 3 (reset to 0), 3, 7
        with pytest.raises(Boom, match="pred 3"):
            await run(None)

    async def test_a_kept_accumulation_can_stop_the_fold(self, materializer: Materializer) -> None:
        def pred(acc: int) -> bool:
            if acc == 5:
                raise Boom("pred")
            return acc < 6

        flow = Flow[int]().fold_while(0, pred, lambda acc, x: acc + x)
        src = Source.from_iterable([5, 1, 50, 50])
        resumed = src.via(flow.with_attributes(decider(Supervision.resume)))
        assert await seq(resumed, materializer) == [6]


class TestAggregateWithBoundarySupervision:
    @staticmethod
    def pairs(bad: int) -> Any:
        """``aggregate``: appends (mutating the aggregate), raises after appending ``bad``,
        emits pairs."""

        def aggregate(acc: list[int], x: int) -> tuple[list[int], bool]:
            acc.append(x)
            if x == bad:
                raise Boom(f"agg {x}")
            return acc, len(acc) == 2

        return aggregate

    @pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
    async def test_aggregate_raising_drops_the_aggregate(
        self, materializer: Materializer, directive: Any
    ) -> None:
        src = Source.from_iterable([1, 3, 2, 4, 5])
        flow = Flow[int]().aggregate_with_boundary(list, self.pairs(3), tuple)
        # [1, 3] is dropped with the element; keeping it would give (1, 3), (2, 4), (5,)
        assert await seq(src.via(flow.with_attributes(decider(directive))), materializer) == [
            (2, 4),
            (5,),
        ]

    async def test_timer_ready_raising_drops_the_aggregate_under_resume(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        def ready(acc: list[int]) -> bool:
            if acc == [1]:
                raise Boom("ready")
            return False

        pub, sub = probes(
            lambda s: s.aggregate_with_boundary(
                list, self.pairs(-1), tuple, emit_on_timer=(ready, 1.0)
            ).with_attributes(decider(Supervision.resume)),
            materializer,
        )
        sub.request(5)
        pub.send_next(1)
        await quiet_for(manual_clock, 1.0, sub)  # ready raised: [1] is gone
        pub.send_next(2)
        pub.send_complete()
        await sub.expect_next((2,))
        await sub.expect_complete()

    async def test_timer_ready_raising_fails_the_stream_by_default(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        def ready(acc: list[int]) -> bool:
            raise Boom("ready")

        pub, sub = probes(
            lambda s: s.aggregate_with_boundary(
                list, self.pairs(-1), tuple, emit_on_timer=(ready, 1.0)
            ),
            materializer,
        )
        sub.request(5)
        pub.send_next(1)
        await manual_clock.advance(1.0)
        exc = await sub.expect_error()
        assert isinstance(exc, Boom)

    async def test_allocate_and_harvest_raising_under_resume(
        self, materializer: Materializer
    ) -> None:
        allocations = iter([Boom("alloc"), None, None, None])

        def allocate() -> list[int]:
            err = next(allocations)
            if err is not None:
                raise err
            return []

        def harvest(acc: list[int]) -> tuple[int, ...]:
            if acc == [3, 4]:
                raise Boom("harvest")
            return tuple(acc)

        src = Source.from_iterable([9, 1, 2, 3, 4, 5])
        flow = Flow[int]().aggregate_with_boundary(allocate, self.pairs(-1), harvest)
        resumed = src.via(flow.with_attributes(decider(Supervision.resume)))
        # 9 dropped (allocate raised), (3, 4) dropped (harvest raised)
        assert await resumed.run_with(Sink.seq(), materializer) == [(1, 2), (5,)]

    async def test_harvest_raising_at_completion_completes_under_resume(
        self, materializer: Materializer
    ) -> None:
        def harvest(acc: list[int]) -> tuple[int, ...]:
            if len(acc) == 1:
                raise Boom("harvest")
            return tuple(acc)

        flow = Flow[int]().aggregate_with_boundary(list, self.pairs(-1), harvest)
        src = Source.from_iterable([1, 2, 3]).via(flow.with_attributes(decider(Supervision.resume)))
        assert await seq(src, materializer) == [(1, 2)]
