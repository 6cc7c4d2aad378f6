"""``Attributes.nested_materialization_cancellation_policy`` (Akka's
``Attributes.NestedMaterializationCancellationPolicy``): what ``future_flow``,
``lazy_flow``, ``lazy_future_flow`` and ``flat_map_prefix`` do when downstream cancels
before their nested flow is materialized.

``eager_cancellation`` (the default): upstream is cancelled at once with downstream's
cause, the nested flow is never built and the materialized future fails with
``NeverMaterializedError`` (``__cause__``: the cancellation cause). ``propagate_to_nested``:
the stage waits until the flow can be built (awaitable done, first element or prefix
arrived), materializes it and cancels it with the held cause; the nested flow's own
cancellation logic runs (here: ``do_on_cancel`` records the cause, then cancels upstream
with it). The ``materializer`` fixture fails a test that leaves a stream running. No timed
logic: the tests advance by letting the loop run (``settle``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import (
    Attributes,
    Flow,
    Keep,
    Materializer,
    NestedMaterializationCancellationPolicy,
    NeverMaterializedError,
    Sink,
    Source,
)
from reactive.stage import NO_MORE_ELEMENTS_NEEDED
from reactive.testkit import PublisherProbe, SubscriberProbe, TestSink, TestSource
from tests.reactive.support import Boom, settle

Policy = NestedMaterializationCancellationPolicy

PROPAGATE = Attributes.nested_materialization_cancellation_policy(Policy.propagate_to_nested)

#: The ways to ask for eager cancellation: nothing set (the default), the member, a bool.
EAGER = pytest.mark.parametrize(
    "attrs",
    [
        None,
        Attributes.nested_materialization_cancellation_policy(Policy.eager_cancellation),
        Attributes.nested_materialization_cancellation_policy(False),
    ],
    ids=["default", "member", "bool"],
)

#: A failure cause and a normal one (a plain ``cancel()``).
CAUSES = pytest.mark.parametrize(
    "cause", [Boom("downstream gone"), NO_MORE_ELEMENTS_NEEDED], ids=["failure", "normal"]
)


def pending() -> asyncio.Future[Any]:
    """A future the test completes by hand."""
    return asyncio.get_running_loop().create_future()


async def value_of(fut: asyncio.Future[Any]) -> Any:
    """The value of a materialized future, failing the test (not hanging) if it never
    completes."""
    return await asyncio.wait_for(asyncio.shield(fut), 3)


async def never_materialized(fut: asyncio.Future[Any]) -> BaseException | None:
    """Expect ``fut`` to fail with ``NeverMaterializedError``; returns its ``__cause__``."""
    with pytest.raises(NeverMaterializedError) as info:
        await value_of(fut)
    return info.value.__cause__


class Nested:
    """Builds the nested flow: records each build and each cancellation cause it sees
    (``do_on_cancel``, which then cancels its input with that cause); its materialized
    value is ``"inner"``."""

    def __init__(self) -> None:
        self.built: list[Any] = []
        self.cancelled: list[BaseException] = []

    def flow(self, arg: Any = None) -> Flow[Any, Any, str]:
        self.built.append(arg)
        return (
            Flow()
            .do_on_cancel(lambda cause, normal: self.cancelled.append(cause))
            .map_materialized_value(lambda _: "inner")
        )


def run(
    flow: Flow[Any, Any, asyncio.Future[Any]], attrs: Attributes | None, materializer: Materializer
) -> tuple[PublisherProbe, asyncio.Future[Any], SubscriberProbe]:
    """``TestSource.probe() -> flow (with attrs) -> TestSink.probe()``: (pub, mat, sub)."""
    if attrs is not None:
        flow = flow.add_attributes(attrs)
    (pub, mat), sub = (
        TestSource.probe().via_mat(flow, Keep.both).to_mat(TestSink.probe(), Keep.both)
    ).run(materializer)
    return pub, mat, sub


def prefix_flow(n: int, nested: Nested) -> Flow[Any, Any, asyncio.Future[Any]]:
    """``flat_map_prefix_mat(n, nested.flow, Keep.right)`` as a Flow."""
    return Flow().flat_map_prefix_mat(n, nested.flow, Keep.right)


# ---------------------------------------------------------------------------------------
# The attribute
# ---------------------------------------------------------------------------------------
class TestTheAttribute:
    def test_members_and_flag(self) -> None:
        assert not Policy.eager_cancellation.propagate_to_nested_materialization
        assert Policy.propagate_to_nested.propagate_to_nested_materialization
        assert repr(Policy.propagate_to_nested) == (
            "NestedMaterializationCancellationPolicy.propagate_to_nested"
        )

    def test_bool_forms_and_storage(self) -> None:
        key = "nested_materialization_cancellation_policy"
        true_ = Attributes.nested_materialization_cancellation_policy(True)
        false_ = Attributes.nested_materialization_cancellation_policy(False)
        assert true_.get(key) is Policy.propagate_to_nested
        assert false_.get(key) is Policy.eager_cancellation
        assert true_ == PROPAGATE

    @pytest.mark.parametrize("bad", ["propagate_to_nested", 1, None])
    def test_bad_policy_names_the_call(self, bad: Any) -> None:
        with pytest.raises(
            TypeError,
            match=r"Attributes.nested_materialization_cancellation_policy\(policy\): policy "
            r"must be a NestedMaterializationCancellationPolicy or a bool, got",
        ):
            Attributes.nested_materialization_cancellation_policy(bad)

    async def test_set_on_an_enclosing_graph_applies_inside(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        cause = Boom("bye")
        (pub, mat), sub = (
            TestSource.probe()
            .via_mat(Flow.lazy_flow(nested.flow), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .add_attributes(PROPAGATE)
            .run(materializer)
        )
        sub.cancel(cause)
        assert await pub.expect_request() == 1  # still pulls for the first element
        pub.send_next(1)
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause

    async def test_the_innermost_setting_wins(self, materializer: Materializer) -> None:
        nested = Nested()
        eager = Attributes.nested_materialization_cancellation_policy(False)
        (pub, mat), sub = (
            TestSource.probe()
            .via_mat(Flow.lazy_flow(nested.flow).add_attributes(eager), Keep.both)
            .to_mat(TestSink.probe(), Keep.both)
            .add_attributes(PROPAGATE)
            .run(materializer)
        )
        sub.cancel()
        await pub.expect_cancellation()
        await never_materialized(mat)
        assert nested.built == []


# ---------------------------------------------------------------------------------------
# Flow.future_flow
# ---------------------------------------------------------------------------------------
class TestFutureFlow:
    @EAGER
    @CAUSES
    async def test_eager_cancels_upstream_and_never_materializes(
        self, materializer: Materializer, attrs: Attributes | None, cause: BaseException
    ) -> None:
        nested = Nested()
        fut = pending()
        pub, mat, sub = run(Flow.future_flow(fut), attrs, materializer)
        sub.cancel(cause)
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert await never_materialized(mat) is cause
        fut.set_result(nested.flow())
        await settle()
        assert nested.cancelled == []  # built by the test, never materialized

    @CAUSES
    async def test_propagate_materializes_then_cancels_the_nested_flow(
        self, materializer: Materializer, cause: BaseException
    ) -> None:
        nested = Nested()
        fut = pending()
        pub, mat, sub = run(Flow.future_flow(fut), PROPAGATE, materializer)
        sub.cancel(cause)
        await settle()
        await pub.expect_no_message(0)  # upstream not cancelled: the cause is held
        assert not mat.done()
        fut.set_result(nested.flow())
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.cancelled == [cause]

    async def test_propagate_after_upstream_completed_keeps_the_stage_for_the_flow(
        self, materializer: Materializer
    ) -> None:
        # Both ports are closed while the awaitable is pending: the stage must stay.
        nested = Nested()
        fut = pending()
        pub, mat, sub = run(Flow.future_flow(fut), PROPAGATE, materializer)
        pub.send_complete()
        cause = Boom("gone")
        sub.cancel(cause)
        await settle()
        assert not mat.done()
        fut.set_result(nested.flow())
        assert await value_of(mat) == "inner"
        await settle()
        assert nested.cancelled == [cause]

    async def test_propagate_with_a_failing_awaitable_never_materializes(
        self, materializer: Materializer
    ) -> None:
        fut = pending()
        pub, mat, sub = run(Flow.future_flow(fut), PROPAGATE, materializer)
        sub.cancel(Boom("gone"))
        await settle()
        err = Boom("no flow")
        fut.set_exception(err)
        assert await never_materialized(mat) is err
        assert await pub.expect_cancellation_with_cause(err) is err


# ---------------------------------------------------------------------------------------
# Flow.lazy_flow
# ---------------------------------------------------------------------------------------
class TestLazyFlow:
    @EAGER
    @CAUSES
    async def test_eager_cancels_upstream_and_never_calls_the_factory(
        self, materializer: Materializer, attrs: Attributes | None, cause: BaseException
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(Flow.lazy_flow(nested.flow), attrs, materializer)
        sub.cancel(cause)
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert await never_materialized(mat) is cause
        assert nested.built == []

    @CAUSES
    async def test_propagate_pulls_the_first_element_then_cancels_the_nested_flow(
        self, materializer: Materializer, cause: BaseException
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(Flow.lazy_flow(nested.flow), PROPAGATE, materializer)
        sub.cancel(cause)
        assert await pub.expect_request() == 1  # pulled for the nested flow, not cancelled
        assert nested.built == [] and not mat.done()
        pub.send_next(1)
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.built == [None] and nested.cancelled == [cause]

    async def test_propagate_after_demand_was_already_passed_upstream(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(Flow.lazy_flow(nested.flow), PROPAGATE, materializer)
        sub.request(3)
        assert await pub.expect_request() == 1
        cause = Boom("gone")
        sub.cancel(cause)
        await settle()
        await pub.expect_no_message(0)  # one pull outstanding: no second one, no cancel
        pub.send_next(1)
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.cancelled == [cause]

    async def test_propagate_with_upstream_ending_first_never_calls_the_factory(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(Flow.lazy_flow(nested.flow), PROPAGATE, materializer)
        sub.cancel(Boom("gone"))
        assert await pub.expect_request() == 1
        pub.send_complete()
        assert await never_materialized(mat) is None
        assert nested.built == []

    async def test_propagate_with_a_raising_factory_fails_the_mat(
        self, materializer: Materializer
    ) -> None:
        err = Boom("factory")

        def factory() -> Flow[Any, Any, Any]:
            raise err

        pub, mat, sub = run(Flow.lazy_flow(factory), PROPAGATE, materializer)
        sub.cancel()
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await never_materialized(mat) is err
        assert await pub.expect_cancellation_with_cause(err) is err


# ---------------------------------------------------------------------------------------
# Flow.lazy_future_flow
# ---------------------------------------------------------------------------------------
class TestLazyFutureFlow:
    @EAGER
    @CAUSES
    async def test_eager_before_the_first_element(
        self, materializer: Materializer, attrs: Attributes | None, cause: BaseException
    ) -> None:
        calls: list[int] = []

        def factory() -> asyncio.Future[Any]:
            calls.append(1)
            return pending()

        pub, mat, sub = run(Flow.lazy_future_flow(factory), attrs, materializer)
        sub.cancel(cause)
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert await never_materialized(mat) is cause
        assert calls == []

    @EAGER
    async def test_eager_while_awaiting_the_flow(
        self, materializer: Materializer, attrs: Attributes | None
    ) -> None:
        nested = Nested()
        fut = pending()
        pub, mat, sub = run(Flow.lazy_future_flow(lambda: fut), attrs, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await settle()
        cause = Boom("gone")
        sub.cancel(cause)
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert await never_materialized(mat) is cause
        fut.set_result(nested.flow())
        await settle()
        assert nested.cancelled == []

    @CAUSES
    async def test_propagate_before_the_first_element(
        self, materializer: Materializer, cause: BaseException
    ) -> None:
        nested = Nested()
        fut = pending()
        calls: list[int] = []

        def factory() -> asyncio.Future[Any]:
            calls.append(1)
            return fut

        pub, mat, sub = run(Flow.lazy_future_flow(factory), PROPAGATE, materializer)
        sub.cancel(cause)
        assert await pub.expect_request() == 1
        assert calls == []
        pub.send_next(1)
        await settle()
        assert calls == [1] and not mat.done()
        await pub.expect_no_message(0)  # still held while the awaitable is pending
        fut.set_result(nested.flow())
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.cancelled == [cause]

    async def test_propagate_while_awaiting_with_upstream_completed(
        self, materializer: Materializer
    ) -> None:
        # The first element is held, upstream completed, downstream cancelled: every port
        # is closed while the awaitable is pending; the stage waits for the flow.
        nested = Nested()
        fut = pending()
        pub, mat, sub = run(Flow.lazy_future_flow(lambda: fut), PROPAGATE, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await settle()
        pub.send_complete()
        cause = Boom("gone")
        sub.cancel(cause)
        await settle()
        assert not mat.done()
        fut.set_result(nested.flow())
        assert await value_of(mat) == "inner"
        await settle()
        assert nested.cancelled == [cause]

    async def test_propagate_to_a_nested_flow_that_drains_its_input(
        self, materializer: Materializer
    ) -> None:
        # A nested flow whose input side ignores the cancel of its output keeps consuming:
        # it gets the held first element and upstream's completion, then the stage stops.
        fut = pending()
        pub, mat, sub = run(Flow.lazy_future_flow(lambda: fut), PROPAGATE, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await settle()
        pub.send_complete()
        sub.cancel()
        await settle()
        fut.set_result(Flow.from_sink_and_source(Sink.seq(), Source.never()))
        stored = await value_of(mat)
        assert await value_of(stored) == [1]


# ---------------------------------------------------------------------------------------
# flat_map_prefix
# ---------------------------------------------------------------------------------------
class TestFlatMapPrefix:
    @EAGER
    @CAUSES
    async def test_eager_cancels_upstream_and_never_builds_the_flow(
        self, materializer: Materializer, attrs: Attributes | None, cause: BaseException
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(prefix_flow(2, nested), attrs, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await settle()
        sub.cancel(cause)
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert await never_materialized(mat) is cause
        assert nested.built == []

    @CAUSES
    async def test_propagate_fills_the_prefix_then_cancels_the_nested_flow(
        self, materializer: Materializer, cause: BaseException
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(prefix_flow(2, nested), PROPAGATE, materializer)
        sub.request(1)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        await settle()
        sub.cancel(cause)
        assert await pub.expect_request() == 1  # the prefix is still pulled
        assert nested.built == []
        pub.send_next(2)
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.built == [[1, 2]] and nested.cancelled == [cause]

    async def test_propagate_before_any_demand_pulls_for_the_prefix(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(prefix_flow(1, nested), PROPAGATE, materializer)
        cause = Boom("gone")
        sub.cancel(cause)
        assert await pub.expect_request() == 1
        pub.send_next(7)
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.built == [[7]] and nested.cancelled == [cause]

    async def test_propagate_with_n_zero_builds_the_flow_at_once(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(prefix_flow(0, nested), PROPAGATE, materializer)
        cause = Boom("gone")
        sub.cancel(cause)
        assert await value_of(mat) == "inner"
        assert await pub.expect_cancellation_with_cause(cause) is cause
        assert nested.built == [[]] and nested.cancelled == [cause]

    async def test_propagate_with_a_short_stream_builds_the_flow_from_what_came(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(prefix_flow(3, nested), PROPAGATE, materializer)
        cause = Boom("gone")
        sub.cancel(cause)
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await pub.expect_request() == 1
        pub.send_complete()
        assert await value_of(mat) == "inner"
        await settle()
        assert nested.built == [[1]] and nested.cancelled == [cause]

    async def test_propagate_with_upstream_failing_first_never_builds_the_flow(
        self, materializer: Materializer
    ) -> None:
        nested = Nested()
        pub, mat, sub = run(prefix_flow(2, nested), PROPAGATE, materializer)
        sub.cancel(Boom("gone"))
        assert await pub.expect_request() == 1
        err = Boom("up")
        pub.send_error(err)
        assert await never_materialized(mat) is err
        assert nested.built == []

    async def test_source_operator_form(self, materializer: Materializer) -> None:
        nested = Nested()
        (pub, mat), sub = (
            TestSource.probe()
            .flat_map_prefix_mat(1, nested.flow, Keep.both)
            .add_attributes(PROPAGATE)
            .to_mat(TestSink.probe(), Keep.both)
            .run(materializer)
        )
        sub.cancel()
        assert await pub.expect_request() == 1
        pub.send_next(1)
        assert await value_of(mat) == "inner"
        await pub.expect_cancellation_with_cause(NO_MORE_ELEMENTS_NEEDED)
        assert nested.cancelled == [NO_MORE_ELEMENTS_NEEDED]
