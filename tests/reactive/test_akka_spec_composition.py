"""Acceptance checks derived from Akka's own specs for the composition and running API.

Sources of the cases: FlowSpec, SourceSpec, SinkSpec (materialized values, Keep combiners,
blueprint immutability and reuse), GraphMatValueSpec (mat values re-evaluated per run),
AttributesSpec (``with_attributes`` replaces, ``add_attributes`` merges), FlowOnCompleteSpec,
FlowLogSpec, FlowMonitorSpec and FlowLimitWeightedSpec. Cases already covered by the other
``test_akka_spec_*`` files are not repeated.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    Attributes,
    BufferOverflowError,
    ClosedShape,
    Done,
    Flow,
    FlowMonitor,
    FlowMonitorState,
    GraphDSL,
    Keep,
    Materializer,
    NoSuchElementError,
    NotUsed,
    OverflowStrategy,
    RunnableGraph,
    Sink,
    Source,
    StreamLimitReachedError,
    Supervision,
)
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A test failure."""


def _resume_decider(exc: BaseException) -> Any:
    return Supervision.resume


async def settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


# =======================================================================================
# FlowSpec: identity flows, Keep combiners, custom combiners
# =======================================================================================
async def test_identity_flow_and_generic_alias(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3])
    assert await src.via(Flow()).run_with(Sink.seq(), materializer) == [1, 2, 3]
    assert await src.via(Flow[int]()).run_with(Sink.seq(), materializer) == [1, 2, 3]
    chained = Flow().via(Flow()).via(Flow[int]().map(lambda x: x * 10))
    assert await src.via(chained).run_with(Sink.seq(), materializer) == [10, 20, 30]
    # The identity flow materializes NotUsed and keeps the left value with via().
    assert src.via_mat(Flow(), Keep.right).to(Sink.ignore()).run(materializer) is NotUsed
    tagged = src.map_materialized_value(lambda _: "s")
    assert tagged.via(Flow()).to(Sink.ignore()).run(materializer) == "s"
    assert tagged.via_mat(Flow(), Keep.both).to(Sink.ignore()).run(materializer) == ("s", NotUsed)


async def test_identity_flow_to_sink_keeps_the_flow_value(materializer: Materializer) -> None:
    sink = Flow().to(Sink.seq())
    assert Source.single(1).to_mat(sink, Keep.right).run(materializer) is NotUsed
    fut = (
        Source.single(1).to_mat(Flow().to_mat(Sink.seq(), Keep.right), Keep.right).run(materializer)
    )
    assert await fut == [1]
    n, fut2 = (
        Source.single(2)
        .to_mat(Flow[int]().to_mat(Sink.seq(), Keep.both), Keep.right)
        .run(materializer)
    )
    assert n is NotUsed and await fut2 == [2]


async def test_to_mat_keep_variants_and_custom_combiner(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3]).map_materialized_value(lambda _: "src")
    assert src.to(Sink.seq()).run(materializer) == "src"
    assert src.to_mat(Sink.seq(), Keep.left).run(materializer) == "src"
    assert src.to_mat(Sink.seq(), Keep.none).run(materializer) is NotUsed
    s, fut = src.to_mat(Sink.seq(), Keep.both).run(materializer)
    assert s == "src" and await fut == [1, 2, 3]
    pair = src.to_mat(Sink.fold(0, lambda a, x: a + x), lambda a, b: (b, a)).run(materializer)
    assert pair[1] == "src" and await pair[0] == 6


async def test_flow_via_mat_on_flows(materializer: Materializer) -> None:
    f1 = Flow().map(lambda x: x + 1).map_materialized_value(lambda _: 1)
    f2 = Flow().map(lambda x: x * 2).map_materialized_value(lambda _: 2)
    composed = f1.via_mat(f2, lambda a, b: a + b)
    s, fut = (
        Source.single(1)
        .via_mat(composed, Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert s == 3 and await fut == [4]
    assert Source.single(1).via_mat(f1.via(f2), Keep.right).to(Sink.ignore()).run(materializer) == 1
    assert (Source.single(1).via_mat(f1.via_mat(f2, Keep.right), Keep.right).to(Sink.ignore())).run(
        materializer
    ) == 2
    both = Source.single(1).via_mat(f1.via_mat(f2, Keep.both), Keep.right).to(Sink.ignore())
    assert both.run(materializer) == (1, 2)


async def test_map_materialized_value_on_flow_and_sink(materializer: Materializer) -> None:
    sink = Sink.fold(0, lambda a, x: a + x).map_materialized_value(lambda fut: ("sum", fut))
    tag, fut = Source.from_iterable([1, 2, 3]).run_with(sink, materializer)
    assert tag == "sum" and await fut == 6
    flow = Flow().watch_termination().map_materialized_value(lambda fut: ("w", fut))
    (tag2, done), res = (
        Source.single(1).via_mat(flow, Keep.right).to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    assert tag2 == "w" and await res == [1] and await done is Done


async def test_mat_value_function_runs_once_per_materialization(
    materializer: Materializer,
) -> None:
    # GraphMatValueSpec: a mapped materialized value is computed afresh for every run.
    calls: list[int] = []

    def count(m: Any) -> int:
        calls.append(1)
        return len(calls)

    g = Source.single(1).map_materialized_value(count).to(Sink.ignore())
    assert g.run(materializer) == 1
    assert g.run(materializer) == 2
    assert len(calls) == 2


async def test_failing_mat_value_function_fails_run(materializer: Materializer) -> None:
    def bad(_: Any) -> Any:
        raise Boom("mat")

    with pytest.raises(Boom):
        Source.single(1).map_materialized_value(bad).to(Sink.ignore()).run(materializer)
    await settle()


# =======================================================================================
# Blueprint immutability and reuse (FlowSpec "be possible to reuse")
# =======================================================================================
async def test_appending_returns_a_new_blueprint(materializer: Materializer) -> None:
    src = Source.from_iterable([1, 2, 3])
    doubled = src.map(lambda x: x * 2)
    filtered = src.filter(lambda x: x > 1)
    assert doubled is not src and filtered is not src
    assert await src.run_with(Sink.seq(), materializer) == [1, 2, 3]
    assert await doubled.run_with(Sink.seq(), materializer) == [2, 4, 6]
    assert await filtered.run_with(Sink.seq(), materializer) == [2, 3]
    flow = Flow().map(lambda x: x + 1)
    longer = flow.map(lambda x: x * 100)
    assert await src.via(flow).run_with(Sink.seq(), materializer) == [2, 3, 4]
    assert await src.via(longer).run_with(Sink.seq(), materializer) == [200, 300, 400]
    named = flow.named("x")
    attributed = flow.add_attributes(Attributes.name("y"))
    assert named is not flow and attributed is not flow
    assert await src.via(flow).run_with(Sink.seq(), materializer) == [2, 3, 4]


async def test_one_flow_used_twice_in_one_stream(materializer: Materializer) -> None:
    inc = Flow().map(lambda x: x + 1)
    out = await Source.from_iterable([1, 2]).via(inc).via(inc).run_with(Sink.seq(), materializer)
    assert out == [3, 4]
    sink = Sink.seq()
    r1 = Source.single(1).run_with(sink, materializer)
    r2 = Source.single(2).run_with(sink, materializer)
    assert await r1 == [1] and await r2 == [2]


async def test_runnable_graph_from_graph_and_reuse(materializer: Materializer) -> None:
    def blueprint(b: Any, sink: Any) -> Any:
        src = b.add(Source.from_iterable([1, 2, 3]))
        src.out >> b.add(Flow().map(lambda x: x * 3)) >> sink.in_
        return ClosedShape

    graph = RunnableGraph.from_graph(GraphDSL.create(blueprint, Sink.seq()))
    assert await graph.run(materializer) == [3, 6, 9]
    assert await graph.run(materializer) == [3, 6, 9]
    # A RunnableGraph built with to_mat is also accepted.
    g2 = RunnableGraph.from_graph(Source.single(5).to_mat(Sink.head(), Keep.right))
    assert await g2.run(materializer) == 5
    mapped = g2.map_materialized_value(lambda fut: ("h", fut))
    tag, fut = mapped.run(materializer)
    assert tag == "h" and await fut == 5


# =======================================================================================
# Running conveniences
# =======================================================================================
async def test_run_foreach_fold_reduce(materializer: Materializer) -> None:
    seen: list[int] = []
    done = Source.from_iterable([1, 2, 3]).run_foreach(seen.append, materializer)
    assert await done is Done and seen == [1, 2, 3]
    assert (
        await Source.from_iterable([1, 2, 3]).run_fold(10, lambda a, x: a + x, materializer) == 16
    )
    assert await Source.empty().run_fold(10, lambda a, x: a + x, materializer) == 10
    assert await Source.from_iterable("abc").run_reduce(lambda a, b: b + a, materializer) == "cba"
    with pytest.raises(NoSuchElementError):
        await Source.empty().run_reduce(lambda a, b: a + b, materializer)


async def test_run_foreach_failures(materializer: Materializer) -> None:
    err = Boom("up")
    with pytest.raises(Boom) as info:
        await Source.failed(err).run_foreach(lambda x: None, materializer)
    assert info.value is err

    def bad(x: int) -> None:
        if x == 2:
            raise Boom("f")

    with pytest.raises(Boom, match="f"):
        await Source.from_iterable([1, 2, 3]).run_foreach(bad, materializer)


async def test_run_without_explicit_materializer() -> None:
    assert await Source.from_iterable([1, 2]).run_fold(0, lambda a, x: a + x) == 3
    assert await Source.single(1).run_with(Sink.seq()) == [1]
    s, fut = Flow().map(str).run_with(Source.single(7), Sink.seq())
    assert s is NotUsed and await fut == ["7"]


# =======================================================================================
# SinkSpec / FlowOnCompleteSpec
# =======================================================================================
async def test_on_complete_success_failure_and_empty(materializer: Materializer) -> None:
    got: list[Any] = []
    Source.from_iterable([1, 2]).run_with(Sink.on_complete(got.append), materializer)
    Source.empty().run_with(Sink.on_complete(got.append), materializer)
    err = Boom("up")
    Source.failed(err).run_with(Sink.on_complete(got.append), materializer)
    await settle()
    assert got == [None, None, err]


async def test_on_complete_with_probe_after_elements(materializer: Materializer) -> None:
    got: list[Any] = []
    pub = TestSource.probe().map(lambda x: x + 1).to(Sink.on_complete(got.append)).run(materializer)
    await pub.expect_request()
    pub.send_next(1)
    pub.send_next(2)
    await settle()
    assert got == []
    pub.send_complete()
    await settle()
    assert got == [None]


async def test_on_complete_yields_the_first_error(materializer: Materializer) -> None:
    got: list[Any] = []

    def bad(x: int) -> int:
        if x == 2:
            raise Boom("second")
        return x

    Source.from_iterable([1, 2, 3]).map(bad).run_with(Sink.on_complete(got.append), materializer)
    await settle()
    assert len(got) == 1 and isinstance(got[0], Boom) and str(got[0]) == "second"


async def test_sink_cancelled_cancels_upstream(materializer: Materializer) -> None:
    pub = TestSource.probe().to(Sink.cancelled()).run(materializer)
    await pub.expect_cancellation()
    watched = Source.never().watch_termination().to(Sink.cancelled()).run(materializer)
    assert await watched is Done


async def test_sink_fold_async(materializer: Materializer) -> None:
    async def add(a: int, x: int) -> int:
        await asyncio.sleep(0)
        return a + x

    assert (
        await Source.from_iterable(range(5)).run_with(Sink.fold_async(0, add), materializer) == 10
    )
    assert await Source.empty().run_with(Sink.fold_async(7, add), materializer) == 7

    async def bad(a: int, x: int) -> int:
        if x == 3:
            raise Boom("async")
        return a + x

    with pytest.raises(Boom, match="async"):
        await Source.from_iterable(range(5)).run_with(Sink.fold_async(0, bad), materializer)
    err = Boom("up")
    with pytest.raises(Boom) as info:
        await Source.failed(err).run_with(Sink.fold_async(0, add), materializer)
    assert info.value is err


async def test_sink_reduce_failures(materializer: Materializer) -> None:
    def bad(a: int, b: int) -> int:
        if b == 3:
            raise Boom("reduce")
        return a + b

    with pytest.raises(Boom, match="reduce"):
        await Source.from_iterable([1, 2, 3, 4]).run_with(Sink.reduce(bad), materializer)
    err = Boom("up")
    with pytest.raises(Boom) as info:
        await Source.failed(err).run_with(Sink.reduce(bad), materializer)
    assert info.value is err
    assert await Source.single(9).run_with(Sink.reduce(bad), materializer) == 9


async def test_sink_reduce_resume_skips_the_failing_element(materializer: Materializer) -> None:
    def bad(a: int, b: int) -> int:
        if b == 3:
            raise Boom("reduce")
        return a + b

    sink = Sink.reduce(bad).with_attributes(Attributes.supervision_strategy(_resume_decider))
    assert await Source.from_iterable([1, 2, 3, 4]).run_with(sink, materializer) == 7


async def test_awaitable_sink_values_are_done(materializer: Materializer) -> None:
    assert await Source.single(1).run_with(Sink.ignore(), materializer) is Done
    assert await Source.single(1).run_with(Sink.foreach(lambda x: None), materializer) is Done


# =======================================================================================
# AttributesSpec: with_attributes replaces, add_attributes merges
# =======================================================================================
def _flaky(x: int) -> int:
    if x == 2:
        raise Boom("two")
    return x


async def test_add_attributes_merges_with_existing(materializer: Materializer) -> None:
    resume = Attributes.supervision_strategy(_resume_decider)
    flow = Flow().map(_flaky).add_attributes(resume).add_attributes(Attributes.name("kept"))
    out = await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
    assert out == [1, 3]
    named = Flow().map(_flaky).add_attributes(resume).named("also-kept")
    out2 = await Source.from_iterable([1, 2, 3]).via(named).run_with(Sink.seq(), materializer)
    assert out2 == [1, 3]


async def test_with_attributes_replaces_existing(materializer: Materializer) -> None:
    resume = Attributes.supervision_strategy(_resume_decider)
    flow = Flow().map(_flaky).with_attributes(resume).with_attributes(Attributes.name("only"))
    with pytest.raises(Boom, match="two"):
        await Source.from_iterable([1, 2, 3]).via(flow).run_with(Sink.seq(), materializer)
    # Replacing with the supervision strategy applies it.
    flow2 = Flow().map(_flaky).named("n").with_attributes(resume)
    out = await Source.from_iterable([1, 2, 3]).via(flow2).run_with(Sink.seq(), materializer)
    assert out == [1, 3]


async def test_outer_attributes_apply_to_the_whole_composite(materializer: Materializer) -> None:
    resume = Attributes.supervision_strategy(_resume_decider)
    src = Source.from_iterable([1, 2, 3]).map(_flaky).map(lambda x: x * 10)
    out = await src.with_attributes(resume).run_with(Sink.seq(), materializer)
    assert out == [10, 30]
    # The blueprint itself is unchanged.
    with pytest.raises(Boom):
        await src.run_with(Sink.seq(), materializer)


# =======================================================================================
# FlowLogSpec
# =======================================================================================
async def test_log_passes_elements_unchanged_and_logs_completion(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive")
    out = await Source.from_iterable([1, 2, 3]).log("flow-1").run_with(Sink.seq(), materializer)
    assert out == [1, 2, 3]
    messages = [r.getMessage() for r in caplog.records if "flow-1" in r.getMessage()]
    assert messages == [
        "[flow-1] Element: 1",
        "[flow-1] Element: 2",
        "[flow-1] Element: 3",
        "[flow-1] Upstream finished.",
    ]
    assert all(r.name.startswith("reactive") for r in caplog.records if "flow-1" in r.getMessage())


async def test_log_on_flow_with_extract(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive")
    flow = Flow().log("flow-2", lambda x: x * 100)
    out = await Source.from_iterable([1, 2]).via(flow).run_with(Sink.seq(), materializer)
    assert out == [1, 2]
    text = caplog.text
    assert "[flow-2] Element: 100" in text and "[flow-2] Element: 200" in text


async def test_log_upstream_failure_at_error_level(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive")
    err = Boom("log-err")
    with pytest.raises(Boom) as info:
        await Source.failed(err).log("flow-4").run_with(Sink.seq(), materializer)
    assert info.value is err
    failures = [r for r in caplog.records if "[flow-4] Upstream failed" in r.getMessage()]
    assert len(failures) == 1 and failures[0].levelno == logging.ERROR
    assert "log-err" in failures[0].getMessage()


async def test_log_downstream_cancel(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive")
    out = (
        await Source.from_iterable([1, 2, 3])
        .log("flow-5")
        .take(1)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1]
    assert "[flow-5] Downstream finished" in caplog.text


async def test_log_with_a_custom_logger(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    mine = logging.getLogger("my.app.stream")
    caplog.set_level(logging.DEBUG, logger="my.app.stream")
    await Source.single("a").log("flow-6", logger=mine).run_with(Sink.ignore(), materializer)
    records = [r for r in caplog.records if "flow-6" in r.getMessage()]
    assert records and all(r.name == "my.app.stream" for r in records)


async def test_log_extract_failure_is_supervised(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive")

    def extract(x: int) -> int:
        if x == 2:
            raise Boom("extract")
        return x

    resume = Attributes.supervision_strategy(_resume_decider)
    src = Source.from_iterable([1, 2, 3]).log("flow-7", extract)
    assert await src.with_attributes(resume).run_with(Sink.seq(), materializer) == [1, 3]
    with pytest.raises(Boom, match="extract"):
        await src.run_with(Sink.seq(), materializer)


# =======================================================================================
# FlowMonitorSpec (initial/received/failed/finished are covered elsewhere)
# =======================================================================================
async def test_monitor_default_materializes_the_monitor_and_passes_through(
    materializer: Materializer,
) -> None:
    mon = Source.from_iterable([1, 2, 3]).monitor().to(Sink.ignore()).run(materializer)
    assert isinstance(mon, FlowMonitor)
    mon2, fut = (
        Source.from_iterable([1, 2, 3]).monitor().to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    assert await fut == [1, 2, 3]
    assert mon2.state is FlowMonitorState.finished
    flow_mon, res = (
        Source.from_iterable([4, 5])
        .via_mat(Flow().monitor(), Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert await res == [4, 5] and flow_mon.state is FlowMonitorState.finished


async def test_monitor_reports_the_last_received_element(materializer: Materializer) -> None:
    (pub, mon), sub = (
        TestSource.probe().monitor(Keep.both).to_mat(TestSink.probe(), Keep.both).run(materializer)
    )
    sub.request(2)
    pub.send_next("a")
    pub.send_next("b")
    await sub.expect_next("a", "b")
    assert mon.state is FlowMonitorState.received and mon.element == "b"
    pub.send_complete()
    await sub.expect_complete()


# =======================================================================================
# FlowLimitWeightedSpec
# =======================================================================================
async def test_limit_weighted_cost_function_failure(materializer: Materializer) -> None:
    def cost(x: int) -> int:
        if x == 2:
            raise Boom("cost")
        return 1

    with pytest.raises(Boom, match="cost"):
        await (
            Source.from_iterable([1, 2, 3])
            .limit_weighted(10, cost)
            .run_with(Sink.seq(), materializer)
        )


async def test_limit_weighted_exceeding_fails_after_emitting(materializer: Materializer) -> None:
    sub = (
        Source.from_iterable(range(10))
        .limit_weighted(5, lambda x: 2)
        .run_with(TestSink.probe(), materializer)
    )
    sub.request(10)
    await sub.expect_next(0, 1)
    assert isinstance(await sub.expect_error(), StreamLimitReachedError)


# =======================================================================================
# watch_termination, also_to, divert_to leftovers
# =======================================================================================
async def test_watch_termination_default_is_the_awaitable_alone(materializer: Materializer) -> None:
    fut = Source.from_iterable([1, 2]).watch_termination().to(Sink.ignore()).run(materializer)
    assert await fut is Done
    left, fut2 = (
        Source.single(1)
        .map_materialized_value(lambda _: "src")
        .watch_termination(Keep.both)
        .to(Sink.ignore())
        .run(materializer)
    )
    assert left == "src" and await fut2 is Done
    assert (
        Source.single(1)
        .map_materialized_value(lambda _: "src")
        .watch_termination(Keep.left)
        .to(Sink.ignore())
        .run(materializer)
        == "src"
    )
    err = Boom("w")
    failed = Source.failed(err).watch_termination().to(Sink.ignore()).run(materializer)
    with pytest.raises(Boom) as info:
        await failed
    assert info.value is err


async def test_also_to_mat_value_and_side_failure(materializer: Materializer) -> None:
    side = Sink.seq()
    fut = Source.from_iterable([1, 2, 3]).also_to(side).run_with(Sink.seq(), materializer)
    assert await fut == [1, 2, 3]
    err = Boom("side")

    def bad(x: int) -> None:
        raise err

    res = (
        Source.from_iterable([1, 2, 3])
        .also_to(Sink.foreach(bad))
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(Boom):
        await res


async def test_divert_to_completes_both(materializer: Materializer) -> None:
    side: list[int] = []
    done_side = asyncio.get_running_loop().create_future()

    def on_done(exc: BaseException | None) -> None:
        done_side.set_result(exc)

    sink = Sink.combine(Sink.foreach(side.append), Sink.on_complete(on_done))
    out = (
        await Source.from_iterable(range(6))
        .divert_to(sink, lambda x: x % 2 == 0)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 3, 5] and side == [0, 2, 4]
    assert await done_side is None


async def test_monitor_failed_when_abruptly_terminated() -> None:
    # FlowMonitorSpec "return Failed when stream is abruptly terminated".
    mat = Materializer()
    pub, mon = TestSource.probe().monitor(Keep.both).to(Sink.ignore()).run(mat)
    await pub.expect_request()
    assert mon.state is FlowMonitorState.initialized
    await mat.shutdown()
    await settle()
    assert mon.state is FlowMonitorState.failed
    assert isinstance(mon.error, AbruptTerminationError)


async def test_monitor_failed_when_downstream_cancels_with_a_failure(
    materializer: Materializer,
) -> None:
    err = Boom("downstream")

    def bad(x: int) -> int:
        raise err

    mon, fut = (
        Source.from_iterable([1, 2]).monitor().map(bad).to_mat(Sink.ignore(), Keep.both)
    ).run(materializer)
    with pytest.raises(Boom):
        await fut
    await settle()
    assert mon.state is FlowMonitorState.failed and mon.error is err
    # A plain cancellation (take) is Finished.
    mon2, fut2 = Source.repeat(1).monitor().take(2).to_mat(Sink.seq(), Keep.both).run(materializer)
    assert await fut2 == [1, 1]
    assert mon2.state is FlowMonitorState.finished


# =======================================================================================
# named(name) shows in the errors a stage raises itself
# =======================================================================================
async def test_named_appears_in_stage_errors(materializer: Materializer) -> None:
    with pytest.raises(StreamLimitReachedError, match=r"\[lim\]"):
        await (
            Source.from_iterable(range(5)).limit(2).named("lim").run_with(Sink.seq(), materializer)
        )
    with pytest.raises(StreamLimitReachedError, match=r"\[lim2\]"):
        await (
            Source.from_iterable(range(5))
            .via(Flow().limit(2).named("lim2"))
            .run_with(Sink.seq(), materializer)
        )
    with pytest.raises(NoSuchElementError, match=r"\[first\]"):
        await Source.empty().run_with(Sink.head().named("first"), materializer)
    with pytest.raises(NoSuchElementError, match=r"\[final\]"):
        await Source.empty().run_with(Sink.last().named("final"), materializer)
    with pytest.raises(NoSuchElementError, match=r"\[total\]"):
        await Source.empty().run_with(Sink.reduce(max).named("total"), materializer)
    with pytest.raises(NoSuchElementError, match=r"\[r\]"):
        await Source.empty().reduce(max).named("r").run_with(Sink.seq(), materializer)


async def test_named_buffer_overflow_error(materializer: Materializer) -> None:
    pub, sub = (
        TestSource.probe()
        .buffer(1, OverflowStrategy.fail)
        .named("buf")
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    pub.send_next(1)
    pub.send_next(2)
    exc = await sub.expect_error()
    assert isinstance(exc, BufferOverflowError) and "[buf]" in str(exc)


async def test_log_levels_attribute(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="reactive")
    levels = Attributes.log_levels(on_element=logging.INFO, on_finish=logging.WARNING)
    src = Source.from_iterable([1]).log("flow-8").with_attributes(levels)
    assert await src.run_with(Sink.seq(), materializer) == [1]
    recs = {r.getMessage(): r.levelno for r in caplog.records if "flow-8" in r.getMessage()}
    assert recs == {"[flow-8] Element: 1": logging.INFO, "[flow-8] Upstream finished.": 30}


async def test_on_complete_and_watch_termination_on_abrupt_termination() -> None:
    got: list[Any] = []
    mat = Materializer()
    watched = Source.never().watch_termination().to(Sink.on_complete(got.append)).run(mat)
    await settle()
    await mat.shutdown()
    with pytest.raises(AbruptTerminationError):
        await watched
    await settle()
    assert len(got) == 1 and isinstance(got[0], AbruptTerminationError)


def _cost(x: Any) -> int:
    if x == "bad":
        raise Boom("cost")
    return 1


async def test_limit_weighted_resume_keeps_and_restart_resets_the_budget(
    materializer: Materializer,
) -> None:
    items = [1, 2, "bad", 3, 4, 5]
    resume = Attributes.supervision_strategy(lambda e: Supervision.resume)
    restart = Attributes.supervision_strategy(lambda e: Supervision.restart)
    resumed = Source.from_iterable(items).limit_weighted(3, _cost).with_attributes(resume)
    sub = resumed.run_with(TestSink.probe(), materializer)
    sub.request(10)
    await sub.expect_next(1, 2, 3)
    assert isinstance(await sub.expect_error(), StreamLimitReachedError)
    restarted = Source.from_iterable(items).limit_weighted(3, _cost).with_attributes(restart)
    assert await restarted.run_with(Sink.seq(), materializer) == [1, 2, 3, 4, 5]
