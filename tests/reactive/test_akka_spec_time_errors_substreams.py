"""Acceptance cases mirroring Akka's / Pekko's specs for restarts and substreams
(akka-stream-tests): RestartSpec, FlowGroupBySpec, FlowSplitWhenSpec, FlowPrefixAndTailSpec,
FlowFlattenMergeSpec. (The timed, rate and error-handling specs that were here live with
their operators in tests/reactive/ops/test_timer.py, test_rate.py and test_errors.py.)

Each group names the spec it follows and checks, through the public API only, the cases
those specs pin down that test_restart and test_substreams do not already cover. Every
timed case runs on the ``manual_clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    Attributes,
    Keep,
    Materializer,
    Sink,
    Source,
    Supervision,
    ThrottleMode,
)
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


class Boom(Exception):
    """A user-function or upstream failure (Akka's ``TE``)."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds (Akka's specs wait on a latch here)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def nothing(clock: ManualClock, *probes: SubscriberProbe | PublisherProbe) -> None:
    """Let the loop settle, then check that no probe received anything."""
    await clock.settle()
    for p in probes:
        await p.expect_no_message(0)


async def quiet_for(clock: ManualClock, seconds: float, *probes: Any) -> None:
    """Akka's ``expectNoMessage(seconds)`` on the manual clock."""
    await clock.advance(seconds)
    await nothing(clock, *probes)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


def sink_probe(src: Source[Any, Any], mat: Materializer) -> SubscriberProbe:
    """Run ``src`` into a ``TestSink.probe()``."""
    return src.run_with(TestSink.probe(), mat)


def resuming() -> Attributes:
    """Akka's ``supervisionStrategy(resumingDecider)``."""
    return Attributes.supervision_strategy(lambda exc: Supervision.resume)


# -- RestartSpec --------------------------------------------------------------------------------
SHORT_MIN, SHORT_MAX = 0.2, 0.3


class Created:
    """Counts the factory's calls (the spec's ``created`` AtomicInteger)."""

    def __init__(self, make: Callable[[int], Any]) -> None:
        self.make = make
        self.count = 0

    def __call__(self) -> Any:
        self.count += 1
        return self.make(self.count)


def short_settings() -> Any:
    from reactive import RestartSettings

    return RestartSettings(SHORT_MIN, SHORT_MAX, 0.0)


def long_settings() -> Any:
    from reactive import RestartSettings

    return RestartSettings(1.0, 3.0, 0.0)


async def test_restart_source_runs_normally(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    created = Created(lambda n: Source.repeat("a"))
    sub = sink_probe(RestartSource.with_backoff(short_settings(), created), materializer)
    for _ in range(5):
        await sub.request_next("a")
    assert created.count == 1
    sub.cancel()


async def test_restart_source_on_completion_and_failure(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    def fail_at_c(x: str) -> str:
        if x == "c":
            raise Boom("failed")
        return x

    for make, expected in (
        (lambda n: Source.from_iterable(["a", "b"]), 3),
        (lambda n: Source.from_iterable(["a", "b", "c"]).map(fail_at_c), 3),
    ):
        created = Created(make)
        sub = sink_probe(RestartSource.with_backoff(short_settings(), created), materializer)
        await sub.request_next("a")
        await sub.request_next("b")
        sub.request(1)
        await quiet_for(manual_clock, SHORT_MIN - 0.01, sub)  # backing off
        await manual_clock.advance(0.01)
        await sub.expect_next("a")
        await sub.request_next("b")
        sub.request(1)
        await manual_clock.advance(SHORT_MIN)  # a short run: the backoff is not reset
        await quiet_for(manual_clock, SHORT_MAX - SHORT_MIN - 0.02, sub)
        await manual_clock.advance(0.04)
        await sub.expect_next("a")
        assert created.count == expected
        sub.cancel()


async def test_restart_source_resets_backoff_after_running_for_min_backoff(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    created = Created(lambda n: Source.from_iterable(["a", "b"]))
    sub = sink_probe(RestartSource.with_backoff(long_settings(), created), materializer)
    await sub.request_next("a")
    await sub.request_next("b")
    sub.request(1)
    await manual_clock.advance(1.0)
    await sub.expect_next("a")
    await sub.request_next("b")
    sub.request(1)  # backing off for 2 s now
    await manual_clock.advance(2.0)
    await sub.expect_next("a")
    await manual_clock.advance(1.5)  # the third run lasts longer than min_backoff
    await sub.request_next("b")
    sub.request(1)
    await quiet_for(manual_clock, 0.99, sub)
    await manual_clock.advance(0.01)  # back to min_backoff
    await sub.expect_next("a")
    assert created.count == 4
    sub.cancel()


async def test_restart_source_cancel_reaches_running_source_and_stops_backoff(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    terminated: list[Any] = []
    created = Created(
        lambda n: Source.repeat("a").watch_termination(
            lambda m, done: done.add_done_callback(terminated.append)
        )
    )
    sub = sink_probe(RestartSource.with_backoff(short_settings(), created), materializer)
    await sub.request_next("a")
    sub.cancel()
    await settle()
    assert len(terminated) == 1 and terminated[0].exception() is None
    await manual_clock.advance(1.0)
    assert created.count == 1

    created = Created(lambda n: Source.single("a"))
    sub = sink_probe(RestartSource.with_backoff(long_settings(), created), materializer)
    await sub.request_next("a")
    sub.request(1)
    await settle()  # backing off now
    sub.cancel()
    await manual_clock.advance(1.1)
    assert created.count == 1


async def test_restart_source_on_failures_only(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    def first_run_fails_at_c(n: int) -> Source[Any, Any]:
        def f(x: str) -> str:
            if x == "c" and n == 1:
                raise Boom("failed")
            return x

        return Source.from_iterable(["a", "b", "c"]).map(f)

    created = Created(first_run_fails_at_c)
    sub = sink_probe(
        RestartSource.on_failures_with_backoff(short_settings(), created), materializer
    )
    await sub.request_next("a")
    await sub.request_next("b")
    sub.request(1)
    await manual_clock.advance(SHORT_MIN)
    await sub.expect_next("a")
    await sub.request_next("b")
    await sub.request_next("c")
    await sub.expect_complete()
    assert created.count == 2


async def test_restart_source_max_restarts(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    created = Created(lambda n: Source.single("a"))
    s = short_settings().with_max_restarts(1, SHORT_MIN)
    sub = sink_probe(RestartSource.with_backoff(s, created), materializer)
    await sub.request_next("a")
    sub.request(1)
    await manual_clock.advance(SHORT_MIN)
    await sub.expect_next("a")
    await sub.expect_complete()
    assert created.count == 2


async def test_restart_source_max_restarts_reset_and_within(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    created = Created(lambda n: Source.single("a"))
    sub = sink_probe(
        RestartSource.with_backoff(long_settings().with_max_restarts(2, 1.0), created),
        materializer,
    )
    await sub.request_next("a")
    sub.request(1)
    await manual_clock.advance(1.0)
    await sub.expect_next("a")  # restart 1; backing off 2 s for restart 2
    await manual_clock.advance(2.0 + 1.5)  # restart 2 runs longer than 1 s: counter reset
    await sub.request_next("a")
    sub.request(1)
    await manual_clock.advance(1.0)  # so a third restart is allowed
    await sub.expect_next("a")
    assert created.count == 4
    sub.cancel()

    # with_max_restarts(2, 1.0): the reset time is `within`, not min_backoff
    created = Created(lambda n: Source.from_iterable(["a", "b"]).take_while(lambda x: x != "b"))
    sub = sink_probe(
        RestartSource.with_backoff(short_settings().with_max_restarts(2, 1.0), created),
        materializer,
    )
    await sub.request_next("a")
    sub.request(1)
    await manual_clock.advance(SHORT_MIN)
    await sub.expect_next("a")
    await manual_clock.advance(0.8)
    sub.request(1)
    await quiet_for(manual_clock, SHORT_MAX - 0.02, sub)  # restart 2: still allowed
    await manual_clock.advance(0.04)
    await sub.expect_next("a")
    sub.request(1)
    await sub.expect_complete()  # 2 restarts within 1 s of each start: no third one
    assert created.count == 3


async def test_restart_source_fails_when_restart_on_rejects(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSource

    def fail_at_c(x: str) -> str:
        if x == "c":
            raise Boom("failed")
        return x

    created = Created(lambda n: Source.from_iterable(["a", "b", "c"]).map(fail_at_c))
    s = short_settings().with_restart_on(lambda exc: not isinstance(exc, Boom))
    sub = sink_probe(RestartSource.with_backoff(s, created), materializer)
    await sub.request_next("a")
    await sub.request_next("b")
    sub.request(1)
    assert isinstance(await sub.expect_error(), Boom)
    assert created.count == 1


async def test_restart_sink_runs_normally_and_restarts_on_cancellation(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import Flow, RestartSink

    result: list[Any] = []
    created = Created(
        lambda n: Sink.seq().map_materialized_value(
            lambda f: f.add_done_callback(lambda d: result.append(d.result()))
        )
    )
    pub = (
        TestSource.probe()
        .to_mat(RestartSink.with_backoff(short_settings(), created), Keep.left)
        .run(materializer)
    )
    pub.send_next("a").send_next("b").send_next("c").send_complete()
    await settle()
    assert result == [["a", "b", "c"]]
    assert created.count == 1

    queue, out = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    created = Created(
        lambda n: (
            Flow()
            .take_while(lambda x: x != "cancel", inclusive=True)
            .to(Sink.foreach(queue.send_next))
        )
    )
    pub = (
        TestSource.probe()
        .to_mat(RestartSink.with_backoff(short_settings(), created), Keep.left)
        .run(materializer)
    )
    pub.send_next("a")
    await out.request_next("a")
    pub.send_next("cancel")
    await out.request_next("cancel")
    pub.send_next("c")
    out.request(1)
    await quiet_for(manual_clock, SHORT_MIN - 0.01, out)
    await manual_clock.advance(0.01)
    await out.expect_next("c")
    assert created.count == 2
    pub.send_complete()
    await settle()
    out.cancel()


async def test_restart_sink_completed_while_backing_off_and_max_restarts(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import Flow, RestartSink

    queue, out = TestSource.probe().to_mat(TestSink.probe(), Keep.both).run(materializer)
    created = Created(
        lambda n: (
            Flow()
            .take_while(lambda x: x != "cancel", inclusive=True)
            .to(Sink.foreach(queue.send_next))
        )
    )
    pub = (
        TestSource.probe()
        .to_mat(RestartSink.with_backoff(long_settings(), created), Keep.left)
        .run(materializer)
    )
    pub.send_next("a")
    await out.request_next("a")
    pub.send_next("cancel")
    await out.request_next("cancel")
    pub.send_complete()  # while backing off
    await manual_clock.advance(1.1)
    assert created.count == 1

    created = Created(
        lambda n: (
            Flow()
            .take_while(lambda x: x != "cancel", inclusive=True)
            .to(Sink.foreach(queue.send_next))
        )
    )
    pub = (
        TestSource.probe()
        .to_mat(
            RestartSink.with_backoff(short_settings().with_max_restarts(1, SHORT_MIN), created),
            Keep.left,
        )
        .run(materializer)
    )
    pub.send_next("cancel")
    await out.request_next("cancel")
    pub.send_next("cancel")
    out.request(1)
    await manual_clock.advance(SHORT_MIN)
    await out.expect_next("cancel")
    await pub.expect_cancellation()
    assert created.count == 2
    out.cancel()


async def test_restart_sink_fails_when_restart_on_rejects(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartSink

    def each(x: str) -> None:
        if x == "c":
            raise Boom("failed")

    created = Created(lambda n: Sink.foreach(each))
    s = short_settings().with_restart_on(lambda exc: not isinstance(exc, Boom))
    pub = (
        TestSource.probe().to_mat(RestartSink.with_backoff(s, created), Keep.left).run(materializer)
    )
    pub.send_next("a").send_next("b").send_next("c")
    cause = await pub.expect_cancellation()
    assert isinstance(cause, Boom)
    assert created.count == 1


async def test_restart_flow_runs_normally_and_restarts(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import Flow, RestartFlow

    created = Created(lambda n: Flow())
    pub, sub = probes(
        lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
    )
    pub.send_next("a")
    await sub.request_next("a")
    pub.send_next("b")
    await sub.request_next("b")
    assert created.count == 1
    pub.send_complete()
    await sub.expect_complete()

    def fail_on_error(x: str) -> str:
        if x == "error":
            raise Boom("error")
        return x

    created = Created(lambda n: Flow().take_while(lambda x: x != "complete").map(fail_on_error))
    pub, sub = probes(
        lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
    )
    for stop in ("complete", "error"):
        pub.send_next("a")
        await sub.request_next("a")
        pub.send_next(stop)
        sub.request(1)
        await settle()
        pub.send_next("b")  # held while the flow is restarted
        await quiet_for(manual_clock, SHORT_MIN - 0.01, sub)
        await manual_clock.advance(0.01)
        await sub.expect_next("b")
        await manual_clock.advance(5.0)  # a long run: the backoff resets
    assert created.count == 3
    pub.send_complete()
    await sub.expect_complete()


async def test_restart_flow_on_failures_only(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import Flow, RestartFlow

    def fail_on_error(x: str) -> str:
        if x == "error":
            raise Boom("error")
        return x

    created = Created(lambda n: Flow().take_while(lambda x: x != "complete").map(fail_on_error))
    pub, sub = probes(
        lambda s: s.via(RestartFlow.on_failures_with_backoff(short_settings(), created)),
        materializer,
    )
    pub.send_next("a")
    await sub.request_next("a")
    pub.send_next("error")
    sub.request(1)
    await manual_clock.advance(SHORT_MIN)
    pub.send_next("b")
    await sub.expect_next("b")
    pub.send_next("complete")
    sub.request(1)
    await sub.expect_complete()
    await pub.expect_cancellation()
    assert created.count == 2


# -- FlowGroupBySpec ----------------------------------------------------------------------------
async def test_group_by_normal_user_scenario(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(["Aaa", "Abb", "Bcc", "Cdd", "Cee"])
        .group_by(3, lambda s: s[0])
        .grouped(10)
        .merge_substreams()
        .grouped(10)
        .run_with(Sink.head(), materializer)
    )
    assert sorted(out) == [["Aaa", "Abb"], ["Bcc"], ["Cdd", "Cee"]]


async def test_group_by_key_none_fails(materializer: Materializer) -> None:
    sub = sink_probe(
        Source.from_iterable(["Aaa", "Abb", "Bcc"])
        .group_by(3, lambda s: None if s.startswith("A") else s[0])
        .grouped(10)
        .merge_substreams(),
        materializer,
    )
    sub.request(1)
    exc = await sub.expect_error()
    assert isinstance(exc, ValueError) and "cannot be None" in str(exc)


async def test_group_by_empty_input_and_early_cancel(materializer: Materializer) -> None:
    sub = sink_probe(Source.empty().group_by(2, lambda x: x % 2).merge_substreams(), materializer)
    sub.request(1)
    await sub.expect_complete()

    pub, sub = probes(lambda s: s.group_by(2, lambda x: x % 2).merge_substreams(), materializer)
    sub.cancel()
    await pub.expect_cancellation()


async def test_group_by_upstream_failure_with_running_substreams(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.group_by(2, lambda x: x % 2).merge_substreams(), materializer)
    sub.request(100)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_error(Boom("test"))
    assert isinstance(await sub.expect_error(), Boom)


async def test_group_by_key_function_raising_fails_and_cancels_upstream(
    materializer: Materializer,
) -> None:
    exc = Boom("test")

    def key(x: int) -> int:
        if x == 2:
            raise exc
        return x % 2

    pub, sub = probes(lambda s: s.group_by(2, key).merge_substreams(), materializer)
    sub.request(100)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_next(2)
    assert await sub.expect_error() is exc
    await pub.expect_cancellation()


async def test_group_by_too_many_substreams_fails_all(materializer: Materializer) -> None:
    from reactive import TooManySubstreamsError

    pub, sub = probes(lambda s: s.group_by(1, lambda x: x % 2).merge_substreams(), materializer)
    sub.request(2)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_next(2)
    exc = await sub.expect_error()
    assert isinstance(exc, TooManySubstreamsError)
    assert "too many substreams" in str(exc)
    await pub.expect_cancellation()


async def test_group_by_resume_when_exceeding_max_substreams(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(
        lambda s: s.group_by(0, lambda x: x).merge_substreams().with_attributes(resuming()),
        materializer,
    )
    sub.request(1)
    pub.send_next(1)
    await quiet_for(manual_clock, 1.0, sub)
    pub.send_complete()
    await sub.expect_complete()


async def test_group_by_closed_key_drops_elements_unless_recreation_allowed(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.group_by(2, lambda x: x).take(1).merge_substreams(), materializer)
    sub.request(4)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_next(2)
    await sub.expect_next(2)
    pub.send_next(1).send_next(1)  # substream 1 was cancelled (take): its key is dropped
    pub.send_complete()
    await sub.expect_complete()

    pub, sub = probes(
        lambda s: s.group_by(2, lambda x: x, True).take(1).merge_substreams(), materializer
    )
    sub.request(4)
    for x in (1, 2, 1, 1):
        pub.send_next(x)
        await sub.expect_next(x)
    pub.send_complete()
    await sub.expect_complete()


async def test_group_by_substreams_work_after_main_cancel_until_all_cancel(
    materializer: Materializer,
) -> None:
    # prefix_and_tail(0) + concat_substreams is the spec's ``lift``: one Source per key
    pub, main = probes(
        lambda s: (
            s.group_by(10, lambda x: x).prefix_and_tail(0).map(lambda p: p[1]).concat_substreams()
        ),
        materializer,
    )
    main.request(2)
    pub.send_next(1)
    s1 = sink_probe(await main.expect_next(), materializer)
    pub.send_next(2)
    s2 = sink_probe(await main.expect_next(), materializer)
    main.cancel()
    s1.request(1)
    await s1.expect_next(1)
    s2.request(1)
    await s2.expect_next(2)
    pub.send_next(3).send_next(4)  # new keys are ignored
    await settle()
    s1.cancel()
    s2.cancel()
    await pub.expect_cancellation()


# -- FlowSplitWhenSpec / FlowSplitAfterSpec -----------------------------------------------------
async def test_split_when_happy_case_and_first_element(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(range(1, 5))
        .split_when(lambda x: x == 3)
        .grouped(10)
        .concat_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [[1, 2], [3, 4]]
    out = (
        await Source.from_iterable(range(1, 4))
        .split_when(lambda x: x == 1)
        .grouped(10)
        .concat_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [[1, 2, 3]]


async def test_split_no_substream_for_empty_parent_and_single_element_splits(
    materializer: Materializer,
) -> None:
    for split in (lambda s: s.split_when(lambda x: True), lambda s: s.split_after(lambda x: True)):
        out = (
            await split(Source.empty())
            .grouped(10)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == []
        out = (
            await split(Source.from_iterable(range(1, 101)))
            .grouped(200)
            .concat_substreams()
            .run_with(Sink.seq(), materializer)
        )
        assert out == [[x] for x in range(1, 101)]


async def test_split_when_cancelled_substream_is_drained_to_the_next_split(
    materializer: Materializer,
) -> None:
    out = (
        await Source.from_iterable(range(1, 9))
        .split_when(lambda x: x == 5)
        .take_while(lambda x: x != 2)
        .concat_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 5, 6, 7, 8]


async def test_split_when_predicate_raising_fails_substream_and_main(
    materializer: Materializer,
) -> None:
    exc = Boom("test")

    def p(x: int) -> bool:
        if x == 3:
            raise exc
        return x % 3 == 0

    pub, sub = probes(lambda s: s.split_when(p).merge_substreams(), materializer)
    sub.request(10)
    pub.send_next(1)
    await sub.expect_next(1)
    pub.send_next(2)
    await sub.expect_next(2)
    pub.send_next(3)
    assert await sub.expect_error() is exc
    await pub.expect_cancellation()


async def test_split_after_cases(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(range(1, 5))
        .split_after(lambda x: x == 3)
        .grouped(10)
        .concat_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [[1, 2, 3], [4]]
    out = (
        await Source.from_iterable(range(1, 4))
        .split_after(lambda x: x == 3)
        .grouped(10)
        .concat_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [[1, 2, 3]]  # the last element splits: no empty substream after it
    out = (
        await Source.from_iterable(range(1, 9))
        .split_after(lambda x: x == 4)
        .take_while(lambda x: x != 2)
        .concat_substreams()
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 5, 6, 7, 8]


async def test_split_cancel_master_before_any_element(materializer: Materializer) -> None:
    for split in (
        lambda s: s.split_when(lambda x: x % 3 == 0),
        lambda s: s.split_after(lambda x: x % 3 == 0),
    ):
        pub, sub = probes(lambda s, sp=split: sp(s).merge_substreams(), materializer)
        sub.cancel()
        await pub.expect_cancellation()


# -- FlowPrefixAndTailSpec ----------------------------------------------------------------------
async def test_prefix_and_tail_input_sizes(materializer: Materializer) -> None:
    cases: list[tuple[list[int], int, list[int], list[int]]] = [
        ([], 10, [], []),
        ([1, 2, 3], 10, [1, 2, 3], []),
        (list(range(1, 11)), 5, [1, 2, 3, 4, 5], [6, 7, 8, 9, 10]),
        (list(range(1, 11)), 0, [], list(range(1, 11))),
        (list(range(1, 11)), -1, [], list(range(1, 11))),
        (list(range(1, 11)), 10, list(range(1, 11)), []),
    ]
    for items, n, prefix, rest in cases:
        head, tail = (
            await Source.from_iterable(items).prefix_and_tail(n).run_with(Sink.head(), materializer)
        )
        assert head == prefix
        assert await tail.run_with(Sink.seq(), materializer) == rest


async def test_prefix_and_tail_main_stage_stops_without_tail_subscriber(
    materializer: Materializer,
) -> None:
    head, _ = await Source.single(1).prefix_and_tail(1).run_with(Sink.head(), materializer)
    assert head == [1]


async def test_prefix_and_tail_errors_and_cancellations(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
    sub.request(1)
    pub.send_next(1).send_error(Boom("test"))
    assert isinstance(await sub.expect_error(), Boom)

    pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
    sub.request(1000)
    pub.send_next(1)
    head, tail = await sub.expect_next()
    assert head == [1]
    await sub.expect_complete()
    tail_sub = sink_probe(tail, materializer)
    await settle()
    pub.send_error(Boom("test"))
    assert isinstance(await tail_sub.expect_error(), Boom)

    pub, sub = probes(lambda s: s.prefix_and_tail(3), materializer)
    sub.request(1)
    pub.send_next(1)
    sub.cancel()
    await pub.expect_cancellation()

    pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
    sub.request(1000)
    pub.send_next(1)
    _, tail = await sub.expect_next()
    await sub.expect_complete()
    tail_sub = sink_probe(tail, materializer)
    tail_sub.cancel()
    await pub.expect_cancellation()


async def test_prefix_and_tail_tail_subscriber_after_completion(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.prefix_and_tail(1), materializer)
    sub.request(1)
    pub.send_next(0)
    _, tail = await sub.expect_next()
    pub.send_complete()
    await settle()
    tail_sub = sink_probe(tail, materializer)
    await tail_sub.expect_complete()


# -- FlowFlattenMergeSpec / FlowConcatAllSpec ---------------------------------------------------
def inner_probe_source(holder: list[PublisherProbe]) -> Source[Any, Any]:
    """A ``TestSource.probe()`` whose probe lands in ``holder`` once materialized."""
    return TestSource.probe().map_materialized_value(lambda p: holder.append(p) or p)


async def test_flat_map_concat_with_split_when(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(range(1, 11))
        .split_when(lambda x: x % 2 == 0)
        .prefix_and_tail(0)
        .map(lambda p: p[1])
        .concat_substreams()
        .flat_map_concat(lambda s: s)
        .run_with(Sink.seq(), materializer)
    )
    assert out == list(range(1, 11))


@pytest.mark.parametrize("breadth", [1, 4])
async def test_flatten_main_failure_cancels_open_substream(
    materializer: Materializer, breadth: int
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(lambda s: s.flat_map_merge(breadth, lambda src: src), materializer)
    sub.request(10)
    pub.send_next(inner_probe_source(holder))
    await settle()
    holder[0].send_next(1)
    await sub.expect_next(1)
    pub.send_error(Boom("main"))
    assert isinstance(await sub.expect_error(), Boom)
    await holder[0].expect_cancellation()


@pytest.mark.parametrize("breadth", [1, 4])
async def test_flatten_inner_failure_cancels_master(
    materializer: Materializer, breadth: int
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(lambda s: s.flat_map_merge(breadth, lambda src: src), materializer)
    sub.request(10)
    pub.send_next(inner_probe_source(holder))
    await settle()
    holder[0].send_error(Boom("inner"))
    assert isinstance(await sub.expect_error(), Boom)
    await pub.expect_cancellation()


@pytest.mark.parametrize("breadth", [1, 4])
async def test_flatten_cancellation_cancels_substream_and_master(
    materializer: Materializer, breadth: int
) -> None:
    holder: list[PublisherProbe] = []
    pub, sub = probes(lambda s: s.flat_map_merge(breadth, lambda src: src), materializer)
    sub.request(10)
    pub.send_next(inner_probe_source(holder))
    await settle()
    holder[0].send_next(1)
    await sub.expect_next(1)
    sub.cancel()
    await holder[0].expect_cancellation()
    await pub.expect_cancellation()


@pytest.mark.parametrize("breadth", [1, 4])
async def test_flatten_function_failure_cancels_master_and_open_substreams(
    materializer: Materializer, breadth: int
) -> None:
    holder: list[PublisherProbe] = []

    def f(x: int) -> Any:
        if x == 2:
            raise Boom("f")
        return inner_probe_source(holder)

    pub, sub = probes(lambda s: s.flat_map_merge(breadth, f), materializer)
    sub.request(10)
    pub.send_next(1)
    await settle()
    holder[0].send_next(10)
    await sub.expect_next(10)
    if breadth > 1:
        pub.send_next(2)
        assert isinstance(await sub.expect_error(), Boom)
        await holder[0].expect_cancellation()
        await pub.expect_cancellation()
    else:
        holder[0].send_complete()
        pub.send_next(2)
        assert isinstance(await sub.expect_error(), Boom)
        await pub.expect_cancellation()


async def test_flat_map_merge_many_concurrent_sources(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(range(100))
        .flat_map_merge(10, lambda i: Source.from_iterable(range(i * 10, i * 10 + 10)))
        .run_with(Sink.seq(), materializer)
    )
    assert sorted(out) == list(range(1000))


async def test_group_by_happy_case_with_substream_demand(materializer: Materializer) -> None:
    main = sink_probe(
        Source.from_iterable(range(1, 7))
        .group_by(2, lambda x: x % 2)
        .prefix_and_tail(0)
        .map(lambda p: p[1])
        .concat_substreams(),
        materializer,
    )
    main.request(1)
    s1 = sink_probe(await main.expect_next(), materializer)
    await nothing(ManualClock(), s1)
    s1.request(1)
    await s1.expect_next(1)
    main.request(1)
    s2 = sink_probe(await main.expect_next(), materializer)
    s2.request(2)
    await s2.expect_next(2)
    s1.request(1)  # 3 blocked group_by: requesting on the OTHER substream frees it
    await s2.expect_next(4)
    await s1.expect_next(3)
    s2.request(1)
    s1.request(1)
    await s2.expect_next(6)
    await s2.expect_complete()
    await s1.expect_next(5)
    await s1.expect_complete()
    main.request(1)
    await main.expect_complete()


async def test_expand_passes_elements_through_without_rate_difference(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter([x])), materializer)
    for i in range(1, 101):
        pub.send_next(i)
        await settle(5)
        await sub.request_next(i)
    sub.cancel()


async def test_throttle_bursts_to_its_maximum_after_enough_time(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.throttle(1, 0.2, 5, ThrottleMode.shaping), materializer)
    sub.request(5)
    for x in range(1, 6):
        pub.send_next(x)
    await sub.expect_next(1, 2, 3, 4, 5)
    sub.request(5)
    await quiet_for(manual_clock, 1.2, sub)  # six tokens produced, five kept
    for x in range(7, 12):
        pub.send_next(x)
    await sub.expect_next(7, 8, 9, 10, 11)
    sub.cancel()


def decoupled_flow(events: list[Any], out_source: Source[Any, Any]) -> Any:
    """Akka's ``Flow.fromSinkAndSource``: the input goes to a recording sink that stops at
    "cancel", the output comes from ``out_source`` (no coupling between the two)."""
    from reactive import Flow, FlowShape, GraphDSL

    def blueprint(b: Any) -> Any:
        snk = b.add(Flow().take_while(lambda x: x != "cancel").to(Sink.foreach(events.append)))
        src = b.add(out_source)
        return FlowShape(snk.in_, src.out)

    return Flow.from_graph(GraphDSL.create(blueprint))


async def test_restart_flow_in_port_keeps_running_after_out_cancelled(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartFlow

    events: list[Any] = []
    created = Created(lambda n: decoupled_flow(events, Source.repeat("b")))
    pub, sub = probes(
        lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
    )
    pub.send_next("a")
    await sub.request_next("b")
    sub.cancel()
    await settle()
    pub.send_next("c").send_next("d")
    await settle()
    assert events == ["a", "c", "d"]
    pub.send_next("cancel")
    await pub.expect_cancellation()
    await manual_clock.advance(1.0)
    assert created.count == 1


async def test_restart_flow_out_port_keeps_running_after_upstream_completion(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartFlow

    events: list[Any] = []
    out_pub: list[PublisherProbe] = []
    created = Created(lambda n: decoupled_flow(events, inner_probe_source(out_pub)))
    pub, sub = probes(
        lambda s: s.via(RestartFlow.with_backoff(short_settings(), created)), materializer
    )
    pub.send_next("a")
    await settle()
    out_pub[0].send_next("b")
    await sub.request_next("b")
    pub.send_complete()
    await settle()
    out_pub[0].send_next("c")
    await sub.request_next("c")
    sub.request(1)
    out_pub[0].send_complete()
    await sub.expect_complete()
    assert created.count == 1 and events == ["a"]


async def test_restart_flow_output_done_at_max_restarts_leaves_input_running(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    from reactive import RestartFlow, RestartSettings

    events: list[Any] = []
    out_pub: list[PublisherProbe] = []
    created = Created(lambda n: decoupled_flow(events, inner_probe_source(out_pub)))
    s = RestartSettings(SHORT_MIN, SHORT_MAX, 0.0).with_max_restarts(1, SHORT_MIN)
    pub, sub = probes(lambda src: src.via(RestartFlow.with_backoff(s, created)), materializer)
    sub.request(1)
    await settle()
    out_pub[0].send_complete()  # restart 1
    await manual_clock.advance(SHORT_MIN)
    assert created.count == 2
    out_pub[1].send_complete()  # no restart left: the output completes ...
    await sub.expect_complete()
    pub.send_next("x")  # ... while the inner input still takes elements
    await settle()
    assert events == ["x"]
    await manual_clock.advance(3 * SHORT_MIN)
    assert created.count == 2
    pub.send_complete()
    await settle()


@pytest.mark.parametrize("breadth", [1, 4])
async def test_flatten_inner_materialization_failure_fails_the_stream(
    materializer: Materializer, breadth: int
) -> None:
    from reactive.stage import GraphStage, GraphStageLogic, Outlet, SourceShape

    mat_fail = Boom("fail!")

    class FailingInnerMat(GraphStage):
        def __init__(self) -> None:
            self.shape = SourceShape(Outlet("out"))

        def create_logic(self, attributes: Any) -> GraphStageLogic:
            raise mat_fail

    done = (
        Source.from_iterable([1, 2])
        .flat_map_merge(breadth, lambda x: Source.from_graph(FailingInnerMat()))
        .run_with(Sink.ignore(), materializer)
    )
    with pytest.raises(Boom) as info:
        await done
    assert info.value is mat_fail


async def test_grouped_within_holds_n_plus_one_while_backpressured(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(3, 1.0), materializer)
    for x in (1, 2, 3):
        assert await pub.expect_request() == 1
        pub.send_next(x)
    assert await pub.expect_request() == 1  # group full, no demand: pull one more
    await manual_clock.advance(0.5)
    pub.send_next(4)  # held outside the group; the timer restarts (next tick at 1.5)
    await nothing(manual_clock, pub)
    pub.send_complete()
    sub.request(1)
    await sub.expect_next([1, 2, 3])
    await nothing(manual_clock, sub)
    sub.request(1)
    await sub.expect_next([4])  # the held element is not lost at completion
    await sub.expect_complete()


async def test_grouped_within_held_element_starts_next_group_on_timer(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.grouped_within(2, 1.0), materializer)
    pub.send_next(1).send_next(2)
    await settle()
    await manual_clock.advance(0.5)
    pub.send_next(3)  # held: the timer restarts at t=0.5
    await settle()
    sub.request(1)
    await sub.expect_next([1, 2])
    sub.request(1)
    await quiet_for(manual_clock, 0.9, sub)  # t=1.4: the old tick (t=1.0) was dropped
    await manual_clock.advance(0.2)
    await sub.expect_next([3])
    pub.send_complete()
    await sub.expect_complete()
