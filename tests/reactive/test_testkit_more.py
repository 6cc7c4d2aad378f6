"""The probe methods of Akka's ``TestSubscriber.Probe`` / ``TestPublisher.Probe`` beyond the
basics: ``within`` (on a ManualClock and the loop's clock), ``ensure_subscription``,
``expect_next_or_error`` / ``expect_next_or_complete(element)``,
``expect_next_n(elements)``, ``expect_next_unordered(_n)``, ``expect_error_with``,
``expect_subscription_and_error``, ``to_strict`` and ``expect_cancellation_with_cause``."""

from __future__ import annotations

import pytest

from reactive import Keep, Materializer, Sink, Source
from reactive.stage import NO_MORE_ELEMENTS_NEEDED, NoMoreElementsNeeded
from reactive.testkit import (
    ExpectationError,
    ManualClock,
    PublisherProbe,
    SubscriberProbe,
    TestSink,
    TestSource,
)


class Boom(Exception):
    pass


# -- within ---------------------------------------------------------------------------------
async def test_within_on_a_manual_clock_counts_clock_time(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    probe = Source.tick(1.0, 1.0, "t").run_with(TestSink.probe(), materializer)
    probe.request(2)
    async with probe.within(0.5, 1.5):
        await manual_clock.advance(1.0)
        assert await probe.expect_next() == "t"
    # the block advanced 2 s of clock time: more than the 1.5 s allowed

    async def too_slow() -> None:
        async with probe.within(1.5):
            await manual_clock.advance(2.0)
            await probe.expect_next("t")

    with pytest.raises(ExpectationError, match=r"took 2\.0 s, exceeding 1\.5 s"):
        await too_slow()
    probe.cancel()


async def test_within_fails_when_the_block_was_too_fast(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    probe = Source.tick(0.0, 1.0, "t").run_with(TestSink.probe(), materializer)
    probe.request(1)

    async def too_fast() -> None:
        async with probe.within(1.0, 3.0):
            await manual_clock.advance(0.0)
            await probe.expect_next("t")

    with pytest.raises(ExpectationError, match=r"took 0\.0 s, should at least have been 1\.0 s"):
        await too_fast()
    probe.cancel()


async def test_within_after_expect_no_message_skips_the_max_check(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    # As Akka: a block whose last expectation was expect_no_message is not held to max.
    probe = Source.never().run_with(TestSink.probe(), materializer)
    async with probe.within(0.5):
        await manual_clock.advance(2.0)
        await probe.expect_no_message(0.01)
    probe.cancel()
    assert manual_clock.time() == 2.0


async def test_within_bounds_expectations_by_the_remaining_time_on_a_real_clock(
    materializer: Materializer,
) -> None:
    probe = Source.never().run_with(TestSink.probe(timeout=30.0), materializer)
    probe.request(1)

    async def block() -> None:
        async with probe.within(0.05):
            await probe.expect_next()  # waits what is left of 0.05 s, not the probe's 30 s

    # the message names the timeout used: at most the block's 0.05 s
    with pytest.raises(ExpectationError, match=r"timeout \(0\.0[0-5]?[0-9]* s\) while waiting"):
        await block()
    probe.cancel()


async def test_nested_within_cannot_require_more_than_is_left(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    up = TestSource.probe().to(Sink.ignore()).run(materializer)
    async with up.within(0.0, 2.0):
        await manual_clock.advance(1.5)
        with pytest.raises(ExpectationError, match=r"min time 1\.0 s not possible, only 0\.5 s"):
            async with up.within(1.0, 5.0):
                pass  # pragma: no cover - entering fails
    up.send_complete()


def test_within_refuses_bad_bounds() -> None:
    p = SubscriberProbe()  # the arguments are checked before anything runs
    with pytest.raises(ValueError, match=r"within\(min_time, max_time\): max_time 1 is below"):
        p.within(2, 1)
    with pytest.raises(TypeError, match="min_time must be seconds"):
        p.within("1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be >= 0"):
        p.within(-1.0)


# -- ensure_subscription ----------------------------------------------------------------------
async def test_ensure_subscription_waits_for_the_stream_to_start(
    materializer: Materializer,
) -> None:
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    assert await down.ensure_subscription() is down
    assert await up.ensure_subscription() is up
    down.cancel()
    await up.expect_cancellation()


async def test_ensure_subscription_times_out_on_a_probe_never_run() -> None:
    with pytest.raises(ExpectationError, match="waiting for the subscription"):
        await SubscriberProbe().ensure_subscription(timeout=0.01)
    with pytest.raises(ExpectationError, match="waiting for the subscription"):
        await PublisherProbe().ensure_subscription(timeout=0.01)


# -- elements ---------------------------------------------------------------------------------
async def test_expect_next_n_with_elements(materializer: Materializer) -> None:
    probe = Source.from_iterable([1, 2, 3, 4]).run_with(TestSink.probe(), materializer)
    probe.request(4)
    assert await probe.expect_next_n([1, 2]) == [1, 2]
    with pytest.raises(ExpectationError, match="expected element 9, got element 3"):
        await probe.expect_next_n((9, 4))
    with pytest.raises(TypeError, match="n must be an int or an iterable"):
        await probe.expect_next_n(1.5)  # type: ignore[arg-type]
    await probe.expect_next(4)
    await probe.expect_complete()


async def test_expect_next_unordered_compares_with_equality(materializer: Materializer) -> None:
    probe = Source.from_iterable([[2], [1], [1], 3]).run_with(TestSink.probe(), materializer)
    probe.request(4)
    # unhashable elements, an element expected twice
    assert await probe.expect_next_unordered_n([[1], [1], [2]]) == [[2], [1], [1]]
    with pytest.raises(
        ExpectationError, match=r"expected one of \[4\] \(in any order\), got element 3"
    ):
        await probe.expect_next_unordered(4)
    await probe.expect_complete()


async def test_expect_next_unordered_refuses_a_repeated_element(
    materializer: Materializer,
) -> None:
    probe = Source.from_iterable([1, 1]).run_with(TestSink.probe(), materializer)
    probe.request(2)
    with pytest.raises(ExpectationError, match=r"expected one of \[2\].*got element 1"):
        await probe.expect_next_unordered(1, 2)
    await probe.expect_complete()


async def test_expect_next_or_complete_with_element(materializer: Materializer) -> None:
    probe = Source.from_iterable(["a", "b"]).run_with(TestSink.probe(), materializer)
    probe.request(3)
    assert await probe.expect_next_or_complete("a") == "a"
    with pytest.raises(
        ExpectationError, match="expected element 'x' or completion, got element 'b'"
    ):
        await probe.expect_next_or_complete("x")
    assert await probe.expect_next_or_complete("x") is None  # completion


async def test_expect_next_or_error(materializer: Materializer) -> None:
    boom = Boom("x")
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down.request(2)
    up.send_next(1)
    assert await down.expect_next_or_error() == 1
    up.send_error(boom)
    assert await down.expect_next_or_error(cause=Boom) is boom


async def test_expect_next_or_error_checks_element_and_cause(
    materializer: Materializer,
) -> None:
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down.request(2)
    up.send_next(1)
    with pytest.raises(ExpectationError, match="expected element 2 or an error, got element 1"):
        await down.expect_next_or_error(2)
    up.send_error(Boom("a"))
    with pytest.raises(
        ExpectationError, match=r"or error ValueError\('a'\), got error Boom\('a'\)"
    ):
        await down.expect_next_or_error(cause=ValueError("a"))


async def test_expect_next_or_error_refuses_completion(materializer: Materializer) -> None:
    probe = Source.empty().run_with(TestSink.probe(), materializer)
    with pytest.raises(ExpectationError, match="an element or an error, got completion"):
        await probe.expect_next_or_error()


async def test_request_next_with_element(materializer: Materializer) -> None:
    probe = Source.from_iterable([1, 2]).run_with(TestSink.probe(), materializer)
    assert await probe.request_next(1) == 1
    with pytest.raises(ExpectationError, match="expected element 5, got element 2"):
        await probe.request_next(5)
    probe.request(1)
    await probe.expect_complete()


# -- errors ---------------------------------------------------------------------------------
async def test_expect_error_with_predicate(materializer: Materializer) -> None:
    probe = Source.failed(Boom("bad")).run_with(TestSink.probe(), materializer)
    exc = await probe.expect_error_with(lambda e: isinstance(e, Boom) and "bad" in str(e))
    assert isinstance(exc, Boom)
    probe2 = Source.failed(Boom("bad")).run_with(TestSink.probe(), materializer)
    with pytest.raises(ExpectationError, match=r"expected an error matching .*got error Boom"):
        await probe2.expect_error_with(lambda e: isinstance(e, KeyError))
    with pytest.raises(TypeError, match="pred must be callable"):
        await probe2.expect_error_with(1)  # type: ignore[arg-type]


async def test_expect_subscription_and_error(materializer: Materializer) -> None:
    boom = Boom("b")
    probe = Source.failed(boom).run_with(TestSink.probe(), materializer)
    assert await probe.expect_subscription_and_error(Boom("b")) is boom
    probe2 = Source.failed(boom).run_with(TestSink.probe(), materializer)
    assert await probe2.expect_subscription_and_error(signal_demand=True) is boom
    probe3 = Source.failed(boom).run_with(TestSink.probe(), materializer)
    with pytest.raises(ExpectationError, match=r"expected error <class 'KeyError'>, got error"):
        await probe3.expect_subscription_and_error(KeyError)
    probe4 = Source.single(1).run_with(TestSink.probe(), materializer)
    with pytest.raises(ExpectationError, match="expected an error, got element 1"):
        await probe4.expect_subscription_and_error(signal_demand=True)
    await probe4.expect_complete()


# -- to_strict ------------------------------------------------------------------------------
async def test_to_strict_collects_everything(materializer: Materializer) -> None:
    probe = Source.from_iterable(range(5)).run_with(TestSink.probe(), materializer)
    assert await probe.to_strict(3.0) == [0, 1, 2, 3, 4]


async def test_to_strict_reports_a_failure_with_the_elements_so_far(
    materializer: Materializer,
) -> None:
    boom = Boom("late")
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    up.send_next(1).send_next(2).send_error(boom)
    # the error travels out of band; send the elements first so they arrive
    with pytest.raises(
        ExpectationError, match=r"failed with Boom\('late'\).*elements so far"
    ) as ei:
        await down.to_strict(3.0)
    assert ei.value.__cause__ is boom


async def test_to_strict_times_out_with_the_elements_so_far(materializer: Materializer) -> None:
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    up.send_next("a")
    with pytest.raises(
        ExpectationError, match=r"did not complete within 0\.05 s; elements so far: \['a'\]"
    ):
        await down.to_strict(0.05)
    down.cancel()
    await up.expect_cancellation()


# -- publisher probe: cancellation cause -----------------------------------------------------
async def test_expect_cancellation_with_cause(materializer: Materializer) -> None:
    up, down = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down.cancel()
    assert await up.expect_cancellation_with_cause(NO_MORE_ELEMENTS_NEEDED) is not None

    boom = Boom("stop")
    up2, down2 = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down2.cancel(boom)
    assert await up2.expect_cancellation_with_cause(Boom) is boom

    up3, down3 = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down3.cancel(Boom("other"))
    with pytest.raises(ExpectationError, match=r"cause Boom\('stop'\), got cancellation"):
        await up3.expect_cancellation_with_cause(Boom("stop"))

    up4, down4 = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    down4.cancel()
    with pytest.raises(ExpectationError, match="got cancellation"):
        await up4.expect_cancellation_with_cause(Boom)
    with pytest.raises(TypeError, match="cause must be an exception or an exception class"):
        await up4.expect_cancellation_with_cause("x")  # type: ignore[arg-type]
    assert isinstance(NO_MORE_ELEMENTS_NEEDED, NoMoreElementsNeeded)


async def test_publisher_within_on_a_manual_clock(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    up, down = (
        TestSource.probe().initial_delay(2.0).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    down.request(1)
    async with up.within(2.0, 2.0):
        await manual_clock.advance(2.0)
        assert await up.expect_request() == 1
        up.send_next("x")
        await down.expect_next("x")
    down.cancel()
    await up.expect_cancellation()
