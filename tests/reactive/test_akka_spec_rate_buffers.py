"""Second-pass acceptance cases from Akka's / Pekko's FlowConflateSpec, FlowBatchSpec,
FlowExpandSpec, FlowBufferSpec and FlowDetachSpec for the rate and buffer operators.

Only the cases the earlier files (test_rate_ops, test_buffers_watch_killswitch,
test_akka_spec_ops, test_akka_spec_time_errors_substreams) do not already pin down:
supervision of ``seed`` on the pending element, demand towards upstream, failure
overtaking a held summary/element, buffers of size one, ``fail`` after partial drain.
Everything runs through the public API; timed silence runs on the ``manual_clock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from reactive import (
    Attributes,
    BufferOverflowError,
    Keep,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
    Supervision,
)
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


class Boom(Exception):
    """A user-function or upstream failure (Akka's ``TE``)."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


async def quiet_for(clock: ManualClock, seconds: float, *probes: Any) -> None:
    """Akka's ``expectNoMessage(seconds)`` on the manual clock."""
    await clock.advance(seconds)
    await clock.settle()
    for p in probes:
        await p.expect_no_message(0)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


def decider(directive: Any) -> Attributes:
    """A supervision strategy answering ``directive`` for every failure."""
    return Attributes.supervision_strategy(lambda exc: directive)


def seed_failing_on(bad: int) -> Callable[[int], int]:
    """A seed that raises for ``bad`` and is the identity otherwise."""

    def seed(x: int) -> int:
        if x == bad:
            raise Boom(f"seed {x}")
        return x

    return seed


# -- FlowConflateSpec --------------------------------------------------------------------------
async def test_simple_conflate_passes_through_without_rate_difference(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
    for i in range(1, 101):
        sub.request(1)
        pub.send_next(i)
        await sub.expect_next(i)
    sub.cancel()
    await pub.expect_cancellation()


async def test_simple_conflate_sums_while_downstream_is_silent(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
    for i in range(1, 101):
        pub.send_next(i)
    await quiet_for(manual_clock, 1.0, sub)
    assert pub.pending_demand == 101  # (total pulls) conflate never backpressures upstream
    sub.request(1)
    await sub.expect_next(5050)
    sub.cancel()


async def test_conflate_resumes_when_seed_raises(materializer: Materializer) -> None:
    pub, sub = probes(
        lambda s: s.conflate_with_seed(seed_failing_on(2), lambda a, x: a + x).with_attributes(
            decider(Supervision.resume)
        ),
        materializer,
    )
    pub.send_next(2)  # dropped, nothing seeded
    pub.send_next(3).send_next(4)
    await settle()
    sub.request(1)
    await sub.expect_next(7)
    sub.cancel()


async def test_conflate_stops_when_seed_raises_by_default(materializer: Materializer) -> None:
    pub, sub = probes(
        lambda s: s.conflate_with_seed(seed_failing_on(2), lambda a, x: a + x), materializer
    )
    sub.request(1)
    pub.send_next(2)
    err = await sub.expect_error()
    assert isinstance(err, Boom)
    await pub.expect_cancellation()


async def test_conflate_upstream_failure_overtakes_the_summary(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
    pub.send_next(1).send_next(2)
    await settle()
    err = Boom("up")
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_conflate_emits_the_summary_then_completes(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
    pub.send_next(1).send_next(2).send_complete()
    await settle()
    await sub.expect_no_message(0)
    sub.request(1)
    await sub.expect_next(3)
    await sub.expect_complete()


# -- FlowBatchSpec -----------------------------------------------------------------------------
async def test_batch_passes_through_without_rate_difference(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.batch(2, lambda x: x, lambda a, x: a + x), materializer)
    for i in range(1, 101):
        sub.request(1)
        pub.send_next(i)
        await sub.expect_next(i)
    sub.cancel()


async def test_batch_full_stops_pulling_upstream(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.batch(2, lambda x: x, lambda a, x: a + x), materializer)
    assert await pub.expect_request() == 1
    pub.send_next(1)
    assert await pub.expect_request() == 1
    pub.send_next(2)  # the batch is full now (2 of 2) but one more is pulled eagerly
    assert await pub.expect_request() == 1
    pub.send_next(3)  # waits outside the batch: no further pull
    await settle()
    assert pub.pending_demand == 3  # total pulls so far
    sub.request(1)
    await sub.expect_next(3)  # 1 + 2
    assert await pub.expect_request() == 1  # 3 seeded the next batch, room again
    pub.send_complete()
    sub.request(1)
    await sub.expect_next(3)
    await sub.expect_complete()


async def test_batch_restart_when_seed_of_pending_element_raises(
    materializer: Materializer,
) -> None:
    pub, sub = probes(
        lambda s: s.batch(1, seed_failing_on(2), lambda a, x: a + x).with_attributes(
            decider(Supervision.restart)
        ),
        materializer,
    )
    pub.send_next(1).send_next(2)  # 2 waits outside the full batch
    await settle()
    sub.request(1)
    await sub.expect_next(1)  # then seeding 2 raises: 2 is lost, demand resumes
    assert await pub.expect_request() == 1
    pub.send_next(3)
    sub.request(1)
    await sub.expect_next(3)
    sub.cancel()


async def test_batch_resume_when_seed_of_pending_element_raises(
    materializer: Materializer,
) -> None:
    pub, sub = probes(
        lambda s: s.batch(1, seed_failing_on(2), lambda a, x: a + x).with_attributes(
            decider(Supervision.resume)
        ),
        materializer,
    )
    pub.send_next(1).send_next(2)
    await settle()
    sub.request(2)
    await sub.expect_next(1)
    assert await pub.expect_request() == 1
    pub.send_next(3)
    await sub.expect_next(3)  # 1 is not emitted twice, 2 is dropped
    sub.cancel()


async def test_batch_seed_of_pending_raises_after_upstream_completed(
    materializer: Materializer,
) -> None:
    pub, sub = probes(
        lambda s: s.batch(1, seed_failing_on(2), lambda a, x: a + x).with_attributes(
            decider(Supervision.restart)
        ),
        materializer,
    )
    pub.send_next(1).send_next(2).send_complete()
    await settle()
    sub.request(2)
    await sub.expect_next(1)
    await sub.expect_complete()


async def test_batch_aggregate_failure_stops_by_default(materializer: Materializer) -> None:
    def agg(a: int, x: int) -> int:
        raise Boom("agg")

    pub, sub = probes(lambda s: s.batch(10, lambda x: x, agg), materializer)
    pub.send_next(1).send_next(2)
    err = await sub.expect_error()
    assert isinstance(err, Boom)
    await pub.expect_cancellation()


async def test_batch_resume_when_aggregate_raises_keeps_the_batch(
    materializer: Materializer,
) -> None:
    def agg(a: list[int], x: int) -> list[int]:
        if x == 2:
            raise Boom("agg")
        return [*a, x]

    pub, sub = probes(
        lambda s: s.batch(10, lambda x: [x], agg).with_attributes(decider(Supervision.resume)),
        materializer,
    )
    for x in (1, 2, 3):
        pub.send_next(x)
    pub.send_complete()
    await settle()
    assert await sub.request_next() == [1, 3]
    await sub.expect_complete()


async def test_batch_upstream_failure_overtakes_the_batch(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.batch(1, lambda x: x, lambda a, x: a + x), materializer)
    pub.send_next(1).send_next(2)
    await settle()
    err = Boom("up")
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_batch_variable_rate_chain_sum(materializer: Materializer) -> None:
    total = await (
        Source.from_iterable(range(1, 1001))
        .batch(100, lambda x: x, lambda a, x: a + x)
        .run_fold(0, lambda a, x: a + x, materializer)
    )
    assert total == 500500


# -- FlowExpandSpec ----------------------------------------------------------------------------
async def test_expand_new_element_replaces_the_iterator(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter(lambda: x, None)), materializer)
    pub.send_next(1)
    await sub.request_next(1)
    await sub.request_next(1)
    pub.send_next(2)
    await quiet_for(manual_clock, 0.1, sub)
    await sub.request_next(2)
    await sub.request_next(2)
    sub.cancel()
    await pub.expect_cancellation()


async def test_expand_exhausted_iterator_waits_for_upstream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter([x, x * 10])), materializer)
    pub.send_next(1)
    sub.request(3)
    await sub.expect_next(1, 10)
    await quiet_for(manual_clock, 0.5, sub)  # iterator exhausted: backpressure downstream
    pub.send_next(2)
    await sub.expect_next(2)
    pub.send_complete()  # 2 was emitted once: completes without draining 20
    await sub.expect_complete()


async def test_expand_empty_iterator_completes_when_upstream_does(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter(())), materializer)
    sub.request(1)
    pub.send_next(1).send_next(2).send_complete()
    await sub.expect_complete()


async def test_expand_completion_waits_for_first_emission_of_last_element(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter([x, x, x])), materializer)
    pub.send_next(5).send_complete()
    await quiet_for(manual_clock, 0.5, sub)
    sub.request(10)
    await sub.expect_next(5)
    await sub.expect_complete()


async def test_expand_upstream_failure_overtakes_waiting_element(
    materializer: Materializer,
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter(lambda: x, None)), materializer)
    pub.send_next(1)
    await settle()
    err = Boom("up")
    pub.send_error(err)
    assert await sub.expect_error() is err


async def test_expand_variable_rate_chain(materializer: Materializer) -> None:
    out = await (
        Source.from_iterable(range(1, 101))
        .expand(lambda x: iter(lambda: x, None))
        .run_with(Sink.seq(), materializer)
    )
    assert set(out) == set(range(1, 101))  # every element emitted at least once
    assert out == sorted(out)


def expander_failing_on(bad: int) -> Callable[[int], Any]:
    """An ``expand`` function raising for ``bad``, repeating the element otherwise."""

    def f(x: int) -> Any:
        if x == bad:
            raise Boom(f"expand {x}")
        return iter(lambda: x, None)

    return f


async def test_expand_resume_when_f_raises_keeps_the_current_iterator(
    materializer: Materializer,
) -> None:
    pub, sub = probes(
        lambda s: s.expand(expander_failing_on(2)).with_attributes(decider(Supervision.resume)),
        materializer,
    )
    pub.send_next(1)
    await sub.request_next(1)
    pub.send_next(2)
    await settle()
    await sub.request_next(1)
    await sub.request_next(1)
    pub.send_next(3)
    await settle()
    await sub.request_next(3)
    sub.cancel()


async def test_expand_restart_when_f_raises_drops_the_current_iterator(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(
        lambda s: s.expand(expander_failing_on(2)).with_attributes(decider(Supervision.restart)),
        materializer,
    )
    pub.send_next(1)
    await sub.request_next(1)
    pub.send_next(2)
    sub.request(1)
    await quiet_for(manual_clock, 0.5, sub)
    pub.send_next(3)
    await sub.expect_next(3)
    sub.cancel()


async def test_expand_f_failure_stops_by_default(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.expand(expander_failing_on(1)), materializer)
    pub.send_next(1)
    err = await sub.expect_error()
    assert isinstance(err, Boom)
    await pub.expect_cancellation()


# -- FlowBufferSpec ----------------------------------------------------------------------------
async def test_buffer_backpressured_mode_passes_everything(materializer: Materializer) -> None:
    for size in (100, 1):
        out = await (
            Source.from_iterable(range(1, 1001))
            .buffer(size, OverflowStrategy.backpressure)
            .run_with(Sink.seq(), materializer)
        )
        assert out == list(range(1, 1001))


@pytest.mark.parametrize(
    "strategy",
    [OverflowStrategy.drop_head, OverflowStrategy.drop_tail, OverflowStrategy.drop_buffer],
    ids=["drop_head", "drop_tail", "drop_buffer"],
)
async def test_buffer_of_size_one_keeps_the_newest(
    materializer: Materializer, manual_clock: ManualClock, strategy: OverflowStrategy
) -> None:
    pub, sub = probes(lambda s: s.buffer(1, strategy), materializer)
    for i in range(1, 201):
        pub.send_next(i)
    await quiet_for(manual_clock, 0.5, sub)
    sub.request(1)
    await sub.expect_next(200)
    sub.request(1)
    await quiet_for(manual_clock, 1.0, sub)
    pub.send_next(-1)
    sub.request(1)
    await sub.expect_next(-1)
    sub.cancel()
    await pub.expect_cancellation()


async def test_buffer_of_size_one_drop_new_keeps_the_oldest(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.buffer(1, OverflowStrategy.drop_new), materializer)
    for i in range(1, 201):
        pub.send_next(i)
    await quiet_for(manual_clock, 0.5, sub)
    assert pub.pending_demand == 201  # (total pulls) dropping buffers keep pulling
    sub.request(1)
    await sub.expect_next(1)
    sub.request(1)
    await quiet_for(manual_clock, 1.0, sub)
    pub.send_next(-1)
    await sub.expect_next(-1)
    sub.cancel()


async def test_buffer_fail_after_partial_drain(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(100, OverflowStrategy.fail), materializer)
    for i in range(1, 101):
        pub.send_next(i)
    await settle()
    for i in range(1, 11):
        sub.request(1)
        await sub.expect_next(i)
    for i in range(101, 111):  # fills the buffer to 100 again: no failure yet
        pub.send_next(i)
    await settle()
    await sub.expect_no_message(0)
    pub.send_next(111)
    await pub.expect_cancellation()
    err = await sub.expect_error()
    assert isinstance(err, BufferOverflowError)
    assert "max capacity was" in str(err) and "100" in str(err)


async def test_buffer_pushes_directly_when_downstream_waits(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.buffer(1, OverflowStrategy.fail), materializer)
    sub.request(3)
    for i in (1, 2, 3):  # never buffered: no overflow although each follows at once
        pub.send_next(i)
    await sub.expect_next(1, 2, 3)
    pub.send_complete()
    await sub.expect_complete()


# -- FlowDetachSpec ----------------------------------------------------------------------------
async def test_detach_emits_the_last_element_when_completed(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.detach(), materializer)
    sub.request(1)
    pub.send_next(42)
    await sub.expect_next(42)
    pub.send_next(43).send_complete()
    await settle()
    await sub.expect_no_message(0)
    sub.request(1)
    await sub.expect_next(43)
    await sub.expect_complete()


async def test_detach_pulls_eagerly_before_downstream_demand(materializer: Materializer) -> None:
    pub, sub = probes(lambda s: s.detach(), materializer)
    assert await pub.expect_request() == 1  # no downstream request yet
    pub.send_next(1)
    await settle()
    assert pub.pending_demand == 1  # total pulls: the held element is not followed by a pull
    sub.request(1)
    await sub.expect_next(1)
    sub.cancel()
    await pub.expect_cancellation()
