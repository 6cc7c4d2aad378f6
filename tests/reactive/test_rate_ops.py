"""Rate-detached operators: conflate, conflate_with_seed, batch, batch_weighted, expand."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from reactive import Attributes, Keep, Materializer, Sink, Source, Supervision
from reactive.testkit import ManualClock, PublisherProbe, SubscriberProbe, TestSink, TestSource


async def nothing(clock: ManualClock, *probes: SubscriberProbe | PublisherProbe) -> None:
    """Let the loop settle, then check that no probe received anything."""
    await clock.settle()
    for p in probes:
        await p.expect_no_message(0)


def probes(
    build: Callable[[Source[Any, Any]], Source[Any, Any]], mat: Materializer
) -> tuple[PublisherProbe, SubscriberProbe]:
    """Run ``TestSource.probe()`` through ``build`` into ``TestSink.probe()``."""
    return build(TestSource.probe()).to_mat(TestSink.probe(), Keep.both).run(mat)


async def requests(pub: PublisherProbe, n: int) -> None:
    """Expect ``n`` pulls from upstream."""
    for _ in range(n):
        assert await pub.expect_request() == 1


# -- conflate ------------------------------------------------------------------------------------
async def test_conflate_folds_while_downstream_is_slow(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, b: a + b), materializer)
    for x in (1, 2, 3):
        pub.send_next(x)
    await requests(pub, 4)  # never back-pressures: pulled after every element
    sub.request(1)
    await sub.expect_next(6)
    await nothing(manual_clock, sub)
    pub.send_next(4)
    sub.request(1)
    await sub.expect_next(4)
    pub.send_complete()
    await sub.expect_complete()


async def test_conflate_passes_through_with_fast_downstream(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = (
        await Source.from_iterable(range(5))
        .conflate(lambda a, b: a + b)
        .run_with(Sink.seq(), materializer)
    )
    assert sum(out) == 10  # how much is folded depends on demand; nothing is lost


async def test_conflate_with_seed_emits_pending_summary_on_completion(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(
        lambda s: s.conflate_with_seed(lambda x: [x], lambda acc, x: [*acc, x]), materializer
    )
    pub.send_next("a").send_next("b").send_complete()
    await nothing(manual_clock, sub)
    sub.request(5)
    await sub.expect_next(["a", "b"])
    await sub.expect_complete()


async def test_conflate_failure_and_cancellation(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, b: a + b), materializer)
    pub.send_next(1).send_error(ValueError("up"))
    assert isinstance(await sub.expect_error(), ValueError)

    pub, sub = probes(lambda s: s.conflate(lambda a, b: a + b), materializer)
    sub.cancel()
    await pub.expect_cancellation()


async def test_conflate_supervision_resume_drops_element(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    def add(a: int, b: int) -> int:
        if b == 2:
            raise ValueError("no twos")
        return a + b

    pub, sub = probes(
        lambda s: s.conflate(add).with_attributes(
            Attributes.supervision_strategy(lambda e: Supervision.resume)
        ),
        materializer,
    )
    pub.send_next(1).send_next(2).send_next(3)
    await requests(pub, 4)
    sub.request(1)
    await sub.expect_next(4)
    pub.send_complete()
    await sub.expect_complete()


async def test_conflate_supervision_restart_drops_summary(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    def add(a: int, b: int) -> int:
        if b == 2:
            raise ValueError("no twos")
        return a + b

    pub, sub = probes(
        lambda s: s.conflate(add).with_attributes(
            Attributes.supervision_strategy(lambda e: Supervision.restart)
        ),
        materializer,
    )
    pub.send_next(1).send_next(2).send_next(3)
    await requests(pub, 4)
    sub.request(1)
    await sub.expect_next(3)
    pub.send_complete()
    await sub.expect_complete()


async def test_conflate_stops_on_error_by_default(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.conflate(lambda a, b: 1 // 0), materializer)
    pub.send_next(1).send_next(2)
    assert isinstance(await sub.expect_error(), ZeroDivisionError)
    await pub.expect_cancellation()


# -- batch ---------------------------------------------------------------------------------------
async def test_batch_backpressures_when_full(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.batch(2, lambda x: [x], lambda acc, x: [*acc, x]), materializer)
    await requests(pub, 1)
    pub.send_next(1)
    await requests(pub, 1)
    pub.send_next(2)
    await requests(pub, 1)  # eager: one more element is pulled ...
    pub.send_next(3)
    await nothing(manual_clock, pub)  # ... and waits outside the full batch
    sub.request(1)
    await sub.expect_next([1, 2])
    await requests(pub, 1)  # 3 seeded the next batch
    pub.send_complete()
    sub.request(1)
    await sub.expect_next([3])
    await sub.expect_complete()


async def test_batch_completion_drains_pending_element(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.batch(2, lambda x: [x], lambda acc, x: [*acc, x]), materializer)
    pub.send_next(1).send_next(2).send_next(3).send_complete()
    await nothing(manual_clock, sub)
    sub.request(1)
    await sub.expect_next([1, 2])
    await nothing(manual_clock, sub)
    sub.request(1)
    await sub.expect_next([3])
    await sub.expect_complete()


async def test_batch_weighted(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(
        lambda s: s.batch_weighted(4, len, lambda x: x, lambda a, x: a + x), materializer
    )
    pub.send_next("ab").send_next("c").send_next("de").send_complete()
    await nothing(manual_clock, sub)
    sub.request(5)
    await sub.expect_next("abc", "de")
    await sub.expect_complete()


def test_batch_rejects_non_positive_max() -> None:
    with pytest.raises(ValueError):
        Source.empty().batch(0, lambda x: x, lambda a, x: a)


# -- expand ---------------------------------------------------------------------------------------
async def test_expand_repeats_while_upstream_is_slow(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: itertools.repeat(x)), materializer)
    pub.send_next(1)
    sub.request(3)
    await sub.expect_next(1, 1, 1)
    pub.send_next(2)
    sub.request(2)
    await sub.expect_next(2, 2)
    pub.send_complete()  # the current iterator emitted once: completes at once
    await sub.expect_complete()


async def test_expand_replaces_iterator_only_after_first_emission(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: iter([x, x * 10])), materializer)
    await requests(pub, 1)
    pub.send_next(1)
    await nothing(manual_clock, pub)  # not pulled again before 1 was emitted
    sub.request(1)
    await sub.expect_next(1)
    await requests(pub, 1)
    sub.request(2)
    await sub.expect_next(10)  # the iterator continues while upstream is slow
    await nothing(manual_clock, sub)  # exhausted: wait for upstream
    pub.send_next(2)
    await sub.expect_next(2)
    pub.send_complete()
    await sub.expect_complete()


async def test_expand_waits_for_first_emission_before_completing(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: itertools.repeat(x)), materializer)
    pub.send_next(5).send_complete()
    await nothing(manual_clock, sub)
    sub.request(3)
    await sub.expect_next(5)  # emitted once, the rest of the iterator is not drained
    await sub.expect_complete()


async def test_expand_can_rewrite_and_filter(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    out = (
        await Source.from_iterable([1, 2, 3])
        .expand(lambda x: iter([] if x == 2 else [x * 100]))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [100, 300]


async def test_expand_failure(materializer: Materializer, manual_clock: ManualClock) -> None:
    pub, sub = probes(lambda s: s.expand(lambda x: itertools.repeat(x)), materializer)
    sub.request(1)
    pub.send_error(ValueError("up"))
    assert isinstance(await sub.expect_error(), ValueError)

    pub, sub = probes(lambda s: s.expand(lambda x: iter([1 // 0])), materializer)
    sub.request(1)
    pub.send_next(1)
    assert isinstance(await sub.expect_error(), ZeroDivisionError)
    await pub.expect_cancellation()
