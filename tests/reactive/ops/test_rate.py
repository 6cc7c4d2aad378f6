"""The rate family (``reactive/_ops/rate.py``): conflate, batch, expand. Akka's specs
(FlowConflateSpec, FlowBatchSpec, FlowExpandSpec) and our own cases, one class per operator.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import pytest

from reactive import (
    Attributes,
    Flow,
    Materializer,
    OverflowStrategy,
    Sink,
    Source,
    Supervision,
)
from tests.reactive.support import (
    Boom,
    decider,
    flow_probes,
    nothing,
    probes,
    quiet_for,
    requests,
    restarting,
    resuming,
    settle,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from reactive.testkit import ManualClock


def seed_failing_on(bad: int) -> Callable[[int], int]:
    """A seed that raises for ``bad`` and is the identity otherwise."""

    def seed(x: int) -> int:
        if x == bad:
            raise Boom(f"seed {x}")
        return x

    return seed


def supervised(blueprint: Any, directive: Supervision) -> Any:
    """``blueprint`` with a decider always answering ``directive``."""
    return blueprint.with_attributes(Attributes.supervision_strategy(lambda e: directive))


def expander_failing_on(bad: int) -> Callable[[int], Any]:
    """An ``expand`` function raising for ``bad``, repeating the element otherwise."""

    def f(x: int) -> Any:
        if x == bad:
            raise Boom(f"expand {x}")
        return iter(lambda: x, None)

    return f


def expand_f(x: int) -> Any:
    if x == 2:
        raise Boom("f")
    if x == 4:
        return _failing_iter(x)
    return iter([x, x])


def _failing_iter(x: int) -> Any:
    yield x
    raise Boom("iterator")


class TestConflate:
    """``conflate`` / ``conflate_with_seed``."""

    async def test_conflate_backpressures_subscriber_when_upstream_is_slower(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.conflate_with_seed(lambda x: x, lambda a, x: a + x), materializer
        )
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        sub.request(1)
        await quiet_for(manual_clock, 0.5, sub)
        pub.send_next(2)
        await sub.expect_next(2)
        pub.send_next(3).send_next(4)
        await quiet_for(manual_clock, 0.5, sub)
        sub.request(1)
        await sub.expect_next(7)
        sub.request(1)
        await quiet_for(manual_clock, 0.5, sub)
        sub.cancel()
        await pub.expect_cancellation()

    async def test_conflate_restarts_when_seed_raises(self, materializer: Materializer) -> None:
        def seed(x: int) -> int:
            if x % 2 == 0:
                raise Boom("I hate even seed numbers")
            return x

        pub, sub = probes(
            lambda s: s.conflate_with_seed(seed, lambda a, x: a + x).with_attributes(restarting()),
            materializer,
        )
        pub.send_next(1)
        sub.request(1)
        await sub.expect_next(1)
        pub.send_next(2)  # seed raises: element and state dropped
        pub.send_next(3)
        await settle()
        sub.request(1)
        await sub.expect_next(3)
        sub.cancel()

    async def test_conflate_restarts_when_aggregate_raises(
        self, materializer: Materializer
    ) -> None:
        def agg(state: str, x: str) -> str:
            if x == "two":
                raise Boom("two is a three letter word")
            return state + x

        pub, sub = probes(
            lambda s: s.conflate_with_seed(lambda x: x, agg).with_attributes(restarting()),
            materializer,
        )
        pub.send_next("one").send_next("two").send_next("three").send_complete()
        await settle()
        assert await sub.request_next() == "three"  # "one" was lost with the restart
        await sub.expect_complete()

    async def test_conflate_resumes_when_aggregate_raises(self, materializer: Materializer) -> None:
        def agg(state: list[int], x: int) -> list[int]:
            if x == 2:
                raise Boom("three is a four letter word")
            return [*state, x]

        pub, sub = probes(
            lambda s: s.conflate_with_seed(lambda x: [x], agg).with_attributes(resuming()),
            materializer,
        )
        for x in (1, 2, 3, 4):
            pub.send_next(x)
        await settle()
        sub.request(1)
        await sub.expect_next([1, 3, 4])
        sub.cancel()

    async def test_conflate_and_batch_with_a_buffer_and_fold(
        self, materializer: Materializer
    ) -> None:
        for build in (
            lambda s: s.conflate_with_seed(lambda x: x, lambda a, x: a + x),
            lambda s: s.batch(1 << 62, lambda x: x, lambda a, x: a + x),
        ):
            total = (
                await build(Source.from_iterable(range(1, 51)))
                .buffer(50, OverflowStrategy.backpressure)
                .run_fold(0, lambda a, x: a + x, materializer)
            )
            assert total == sum(range(1, 51))

    async def test_simple_conflate_passes_through_without_rate_difference(
        self,
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
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
        for i in range(1, 101):
            pub.send_next(i)
        await quiet_for(manual_clock, 1.0, sub)
        assert pub.pending_demand == 101  # (total pulls) conflate never backpressures upstream
        sub.request(1)
        await sub.expect_next(5050)
        sub.cancel()

    async def test_conflate_resumes_when_seed_raises(self, materializer: Materializer) -> None:
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

    async def test_conflate_stops_when_seed_raises_by_default(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(
            lambda s: s.conflate_with_seed(seed_failing_on(2), lambda a, x: a + x), materializer
        )
        sub.request(1)
        pub.send_next(2)
        err = await sub.expect_error()
        assert isinstance(err, Boom)
        await pub.expect_cancellation()

    async def test_conflate_upstream_failure_overtakes_the_summary(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
        pub.send_next(1).send_next(2)
        await settle()
        err = Boom("up")
        pub.send_error(err)
        assert await sub.expect_error() is err

    async def test_conflate_emits_the_summary_then_completes(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.conflate(lambda a, x: a + x), materializer)
        pub.send_next(1).send_next(2).send_complete()
        await settle()
        await sub.expect_no_message(0)
        sub.request(1)
        await sub.expect_next(3)
        await sub.expect_complete()

    async def test_conflate_folds_while_downstream_is_slow(
        self, materializer: Materializer, manual_clock: ManualClock
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
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable(range(5))
            .conflate(lambda a, b: a + b)
            .run_with(Sink.seq(), materializer)
        )
        assert sum(out) == 10  # how much is folded depends on demand; nothing is lost

    async def test_conflate_with_seed_emits_pending_summary_on_completion(
        self, materializer: Materializer, manual_clock: ManualClock
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
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.conflate(lambda a, b: a + b), materializer)
        pub.send_next(1).send_error(ValueError("up"))
        assert isinstance(await sub.expect_error(), ValueError)

        pub, sub = probes(lambda s: s.conflate(lambda a, b: a + b), materializer)
        sub.cancel()
        await pub.expect_cancellation()

    @pytest.mark.parametrize(
        ("directive", "expected"),
        [(Supervision.resume, 4), (Supervision.restart, 3)],
        ids=["resume_drops_element", "restart_drops_summary"],
    )
    async def test_conflate_supervision(
        self,
        materializer: Materializer,
        manual_clock: ManualClock,
        directive: Supervision,
        expected: int,
    ) -> None:
        """The aggregate raises on 2: resume drops that element (1 + 3), restart drops the
        summary too (3)."""

        def add(a: int, b: int) -> int:
            if b == 2:
                raise ValueError("no twos")
            return a + b

        pub, sub = probes(
            lambda s: s.conflate(add).with_attributes(
                Attributes.supervision_strategy(lambda e: directive)
            ),
            materializer,
        )
        pub.send_next(1).send_next(2).send_next(3)
        await requests(pub, 4)
        sub.request(1)
        await sub.expect_next(expected)
        pub.send_complete()
        await sub.expect_complete()

    async def test_conflate_stops_on_error_by_default(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.conflate(lambda a, b: 1 // 0), materializer)
        pub.send_next(1).send_next(2)
        assert isinstance(await sub.expect_error(), ZeroDivisionError)
        await pub.expect_cancellation()


class TestBatch:
    """``batch`` / ``batch_weighted``."""

    async def test_batch_aggregates_while_downstream_is_silent(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(
            lambda s: s.batch(1 << 62, lambda x: [x], lambda a, x: [x, *a]), materializer
        )
        for x in range(1, 11):
            pub.send_next(x)
        await settle()
        sub.request(1)
        await sub.expect_next(list(range(10, 0, -1)))
        sub.cancel()

    async def test_batch_backpressures_subscriber_when_upstream_is_slower(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.batch(2, lambda x: x, lambda a, x: a + x), materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        sub.request(1)
        await quiet_for(manual_clock, 0.5, sub)
        pub.send_next(2)
        await sub.expect_next(2)
        pub.send_next(3).send_next(4)
        await quiet_for(manual_clock, 0.5, sub)
        sub.request(1)
        await sub.expect_next(7)
        sub.cancel()

    async def test_batch_passes_through_without_rate_difference(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.batch(2, lambda x: x, lambda a, x: a + x), materializer)
        for i in range(1, 101):
            sub.request(1)
            pub.send_next(i)
            await sub.expect_next(i)
        sub.cancel()

    async def test_batch_full_stops_pulling_upstream(self, materializer: Materializer) -> None:
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
        self,
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
        self,
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
        self,
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

    async def test_batch_aggregate_failure_stops_by_default(
        self, materializer: Materializer
    ) -> None:
        def agg(a: int, x: int) -> int:
            raise Boom("agg")

        pub, sub = probes(lambda s: s.batch(10, lambda x: x, agg), materializer)
        pub.send_next(1).send_next(2)
        err = await sub.expect_error()
        assert isinstance(err, Boom)
        await pub.expect_cancellation()

    async def test_batch_resume_when_aggregate_raises_keeps_the_batch(
        self,
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

    async def test_batch_upstream_failure_overtakes_the_batch(
        self, materializer: Materializer
    ) -> None:
        pub, sub = probes(lambda s: s.batch(1, lambda x: x, lambda a, x: a + x), materializer)
        pub.send_next(1).send_next(2)
        await settle()
        err = Boom("up")
        pub.send_error(err)
        assert await sub.expect_error() is err

    async def test_batch_variable_rate_chain_sum(self, materializer: Materializer) -> None:
        total = await (
            Source.from_iterable(range(1, 1001))
            .batch(100, lambda x: x, lambda a, x: a + x)
            .run_fold(0, lambda a, x: a + x, materializer)
        )
        assert total == 500500

    async def test_batch_backpressures_when_full(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.batch(2, lambda x: [x], lambda acc, x: [*acc, x]), materializer
        )
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
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.batch(2, lambda x: [x], lambda acc, x: [*acc, x]), materializer
        )
        pub.send_next(1).send_next(2).send_next(3).send_complete()
        await nothing(manual_clock, sub)
        sub.request(1)
        await sub.expect_next([1, 2])
        await nothing(manual_clock, sub)
        sub.request(1)
        await sub.expect_next([3])
        await sub.expect_complete()

    async def test_batch_weighted(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.batch_weighted(4, len, lambda x: x, lambda a, x: a + x), materializer
        )
        pub.send_next("ab").send_next("c").send_next("de").send_complete()
        await nothing(manual_clock, sub)
        sub.request(5)
        await sub.expect_next("abc", "de")
        await sub.expect_complete()

    def test_batch_rejects_non_positive_max(self) -> None:
        with pytest.raises(ValueError):
            Source.empty().batch(0, lambda x: x, lambda a, x: a)


class TestExpand:
    """``expand``."""

    async def test_a_function_returning_no_iterable_names_the_stage(
        self, materializer: Materializer
    ) -> None:
        with pytest.raises(TypeError, match=r"\[expand\] the function returned int 5, not an"):
            await Source.single(1).expand(lambda _: 5).run_with(Sink.seq(), materializer)

    async def test_expand_while_upstream_is_silent(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter(lambda: x, None)), materializer)
        pub.send_next(42)
        for _ in range(100):
            await sub.request_next(42)
        pub.send_next(-42)
        await nothing(manual_clock, sub)
        await sub.request_next(-42)
        sub.cancel()

    async def test_expand_does_not_drop_the_last_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter(lambda: x, None)), materializer)
        pub.send_next(1)
        await sub.request_next(1)
        pub.send_next(2).send_complete()
        await nothing(manual_clock, sub)
        await sub.request_next(2)
        await sub.expect_complete()

    async def test_expand_backpressures_publisher_when_subscriber_is_slower(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter(lambda: x, None)), materializer)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await sub.request_next(1)
        await sub.request_next(1)
        assert await pub.expect_request() == 1
        pub.send_next(2)  # not emitted yet: expand must not pull again
        await nothing(manual_clock, pub)
        sub.request(2)
        await sub.expect_next(2, 2)
        assert await pub.expect_request() == 1  # production resumed
        sub.cancel()

    async def test_expand_finite_extrapolations(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda i: ((i, j) for j in range(3))), materializer)
        pub.send_next(1)
        sub.request(4)
        await sub.expect_next((1, 0), (1, 1), (1, 2))
        await nothing(manual_clock, sub)
        pub.send_next(2).send_complete()
        await sub.expect_next((2, 0))
        await sub.expect_complete()

    async def test_expand_new_element_replaces_the_iterator(
        self, materializer: Materializer, manual_clock: ManualClock
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
        self, materializer: Materializer, manual_clock: ManualClock
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
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter(())), materializer)
        sub.request(1)
        pub.send_next(1).send_next(2).send_complete()
        await sub.expect_complete()

    async def test_expand_completion_waits_for_first_emission_of_last_element(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter([x, x, x])), materializer)
        pub.send_next(5).send_complete()
        await quiet_for(manual_clock, 0.5, sub)
        sub.request(10)
        await sub.expect_next(5)
        await sub.expect_complete()

    async def test_expand_upstream_failure_overtakes_waiting_element(
        self,
        materializer: Materializer,
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: iter(lambda: x, None)), materializer)
        pub.send_next(1)
        await settle()
        err = Boom("up")
        pub.send_error(err)
        assert await sub.expect_error() is err

    async def test_expand_variable_rate_chain(self, materializer: Materializer) -> None:
        out = await (
            Source.from_iterable(range(1, 101))
            .expand(lambda x: iter(lambda: x, None))
            .run_with(Sink.seq(), materializer)
        )
        assert set(out) == set(range(1, 101))  # every element emitted at least once
        assert out == sorted(out)

    async def test_expand_resume_when_f_raises_keeps_the_current_iterator(
        self,
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
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(
            lambda s: s.expand(expander_failing_on(2)).with_attributes(
                decider(Supervision.restart)
            ),
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

    async def test_expand_f_failure_stops_by_default(self, materializer: Materializer) -> None:
        pub, sub = probes(lambda s: s.expand(expander_failing_on(1)), materializer)
        pub.send_next(1)
        err = await sub.expect_error()
        assert isinstance(err, Boom)
        await pub.expect_cancellation()

    async def test_expand_repeats_while_upstream_is_slow(
        self, materializer: Materializer, manual_clock: ManualClock
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
        self, materializer: Materializer, manual_clock: ManualClock
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
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: itertools.repeat(x)), materializer)
        pub.send_next(5).send_complete()
        await nothing(manual_clock, sub)
        sub.request(3)
        await sub.expect_next(5)  # emitted once, the rest of the iterator is not drained
        await sub.expect_complete()

    async def test_expand_can_rewrite_and_filter(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        out = (
            await Source.from_iterable([1, 2, 3])
            .expand(lambda x: iter([] if x == 2 else [x * 100]))
            .run_with(Sink.seq(), materializer)
        )
        assert out == [100, 300]

    async def test_expand_failure(
        self, materializer: Materializer, manual_clock: ManualClock
    ) -> None:
        pub, sub = probes(lambda s: s.expand(lambda x: itertools.repeat(x)), materializer)
        sub.request(1)
        pub.send_error(ValueError("up"))
        assert isinstance(await sub.expect_error(), ValueError)

        pub, sub = probes(lambda s: s.expand(lambda x: iter([1 // 0])), materializer)
        sub.request(1)
        pub.send_next(1)
        assert isinstance(await sub.expect_error(), ZeroDivisionError)
        await pub.expect_cancellation()

    @pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
    async def test_expand_supervision_drops_the_element(
        self, materializer: Materializer, directive: Supervision
    ) -> None:
        pub, sub = flow_probes(supervised(Flow().expand(expand_f), directive), materializer)
        sub.request(1)
        pub.send_next(1)
        await sub.expect_next(1)
        pub.send_next(2)  # f raises: the element is dropped
        await settle()
        sub.request(1)
        if directive is Supervision.resume:
            await sub.expect_next(1)  # the current iterator goes on
        else:
            await settle()
            await sub.expect_no_message(0)  # restart dropped the iterator too
        pub.send_next(3)
        if directive is Supervision.resume:
            sub.request(1)
        await sub.expect_next(3)
        sub.request(1)
        await sub.expect_next(3)  # expanding 3
        pub.send_next(4)  # yields 4 then raises on the look-ahead: the iterator is dropped
        sub.request(1)
        await sub.expect_next(4)
        sub.request(1)
        await settle()
        await sub.expect_no_message(0)
        pub.send_next(5)
        await sub.expect_next(5)
        pub.send_complete()
        await sub.expect_complete()

    async def test_expand_stops_by_default(self, materializer: Materializer) -> None:
        with pytest.raises(Boom):
            await Source.from_iterable([1, 2]).expand(expand_f).run_with(Sink.seq(), materializer)
        with pytest.raises(Boom, match="iterator"):
            await Source.single(4).expand(expand_f).run_with(Sink.seq(), materializer)
