"""``Flow.from_sink_and_source_coupled`` (Akka's CoupledTerminationFlowSpec: every
termination of either side reaches the other three ports) and ``pre_materialize`` on
``Source`` (a fan-out publisher: runs any number of times) and ``Sink`` (one run)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import (
    Flow,
    IllegalGraphError,
    Keep,
    Materializer,
    NotUsed,
    Sink,
    Source,
)
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A test failure."""


def _coupled(materializer: Materializer) -> tuple[Any, Any, Any, Any]:
    """upstream probe -> coupled(inner sink probe, inner source probe) -> downstream probe;
    returns ``(upstream, inner_sink, inner_source, downstream)``."""
    flow = Flow.from_sink_and_source_coupled_mat(TestSink.probe(), TestSource.probe(), Keep.both)
    (up, (inner_sink, inner_source)), down = (
        TestSource.probe()
        .via_mat(flow, Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return up, inner_sink, inner_source, down


async def test_elements_pass_both_sides(materializer: Materializer) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    inner_sink.request(1)
    down.request(1)
    up.send_next(1)
    await inner_sink.expect_next(1)
    inner_source.send_next("a")
    await down.expect_next("a")
    up.send_complete()
    await inner_sink.expect_complete()
    await down.expect_complete()


async def test_upstream_completion_completes_the_sink_and_cancels_the_source(
    materializer: Materializer,
) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    inner_sink.request(1)
    down.request(1)
    up.send_complete()
    await inner_sink.expect_complete()
    await inner_source.expect_cancellation()
    await down.expect_complete()


async def test_upstream_failure_fails_the_sink_and_downstream(
    materializer: Materializer,
) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    inner_sink.request(1)
    down.request(1)
    up.send_error(Boom("up"))
    assert isinstance(await inner_sink.expect_error(), Boom)
    await inner_source.expect_cancellation()
    assert isinstance(await down.expect_error(), Boom)


async def test_downstream_cancel_completes_the_sink_and_cancels_both_upstreams(
    materializer: Materializer,
) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    inner_sink.request(1)
    down.cancel()
    await inner_source.expect_cancellation()
    await inner_sink.expect_complete()
    await up.expect_cancellation()


async def test_source_completion_completes_downstream_and_cancels_upstream(
    materializer: Materializer,
) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    inner_sink.request(1)
    down.request(1)
    inner_source.send_complete()
    await down.expect_complete()
    await inner_sink.expect_complete()
    await up.expect_cancellation()


async def test_source_failure_fails_downstream_and_the_sink(materializer: Materializer) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    inner_sink.request(1)
    down.request(1)
    inner_source.send_error(Boom("source"))
    assert isinstance(await down.expect_error(), Boom)
    assert isinstance(await inner_sink.expect_error(), Boom)
    await up.expect_cancellation()


async def test_sink_cancel_completes_downstream_and_cancels_both_upstreams(
    materializer: Materializer,
) -> None:
    up, inner_sink, inner_source, down = _coupled(materializer)
    down.request(1)
    inner_sink.cancel()
    await up.expect_cancellation()
    await inner_source.expect_cancellation()
    await down.expect_complete()


async def test_uncoupled_flow_keeps_the_sides_apart(materializer: Materializer) -> None:
    # The contrast: from_sink_and_source's sink keeps taking after its source completed.
    flow = Flow.from_sink_and_source_mat(TestSink.probe(), TestSource.probe(), Keep.both)
    (up, (inner_sink, inner_source)), down = (
        TestSource.probe()
        .via_mat(flow, Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    down.request(1)
    inner_source.send_complete()
    await down.expect_complete()
    inner_sink.request(1)
    up.send_next(5)
    await inner_sink.expect_next(5)
    up.send_complete()
    await inner_sink.expect_complete()


async def test_coupled_values_and_a_real_round(materializer: Materializer) -> None:
    flow = Flow.from_sink_and_source_coupled(Sink.seq(), Source.from_iterable([1, 2]))
    received, out = (
        Source.from_iterable("abc")
        .via_mat(flow, Keep.right)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    # the source completing cancels upstream: the sink got what came before, at most
    assert await out == [1, 2]
    assert set(await received) <= {"a", "b", "c"}
    both = Flow.from_sink_and_source_coupled_mat(
        Sink.ignore(), Source.single(0).map_materialized_value(lambda _: "src"), Keep.both
    )
    got = Source.never().via_mat(both, Keep.right).to(Sink.ignore()).run(materializer)
    assert got[1] == "src"
    await got[0]


def test_coupled_refuses_what_is_not_a_sink_or_source() -> None:
    with pytest.raises(IllegalGraphError, match="sink must be a Sink"):
        Flow.from_sink_and_source_coupled(Source.single(1), Source.single(1))  # type: ignore[arg-type]
    with pytest.raises(IllegalGraphError, match="source must be a Source"):
        Flow.from_sink_and_source_coupled(Sink.ignore(), Sink.ignore())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="from_sink_and_source_coupled_mat"):
        Flow.from_sink_and_source_coupled_mat(Sink.ignore(), Source.single(1), 3)  # type: ignore[arg-type]


# -- Source.pre_materialize -----------------------------------------------------------------
async def test_source_pre_materialize_gives_the_value_at_once(materializer: Materializer) -> None:
    queue, src = Source.queue(8).pre_materialize(materializer)
    # the value is usable before the returned source ever runs; offers wait in the queue
    assert await queue.offer(1) is not None
    await queue.offer(2)
    queue.complete()
    assert await src.run_with(Sink.seq(), materializer) == [1, 2]


async def test_source_pre_materialize_fans_out_to_many_runs(materializer: Materializer) -> None:
    probe, src = TestSource.probe().pre_materialize(materializer)
    a = src.run_with(TestSink.probe(), materializer)
    b = src.run_with(TestSink.probe(), materializer)
    a.request(3)
    b.request(3)
    await probe.expect_request()
    for x in (1, 2):
        probe.send_next(x)
    await a.expect_next(1, 2)
    await b.expect_next(1, 2)
    probe.send_complete()
    await a.expect_complete()
    await b.expect_complete()
    # a run after the end gets the end
    assert await src.run_with(Sink.seq(), materializer) == []


async def test_source_pre_materialize_passes_a_failure_to_every_run(
    materializer: Materializer,
) -> None:
    probe, src = TestSource.probe().pre_materialize(materializer)
    a = src.run_with(TestSink.probe(), materializer)
    a.request(1)
    await probe.expect_request()
    probe.send_error(Boom("upstream"))
    assert isinstance(await a.expect_error(), Boom)
    with pytest.raises(Boom):
        await src.run_with(Sink.seq(), materializer)


async def test_source_pre_materialize_cancels_when_every_run_cancelled(
    materializer: Materializer,
) -> None:
    (probe, done), src = (
        TestSource.probe().watch_termination(Keep.both).pre_materialize(materializer)
    )
    a = src.run_with(TestSink.probe(), materializer)
    b = src.run_with(TestSink.probe(), materializer)
    a.request(1)
    b.request(1)
    await probe.expect_request()
    a.cancel()
    probe.send_next(1)
    await b.expect_next(1)
    assert not done.done()
    b.cancel()
    await probe.expect_cancellation()
    await asyncio.wait_for(done, 3)


async def test_source_pre_materialize_keeps_the_value_type(materializer: Materializer) -> None:
    value, src = Source.from_iterable([1, 2, 3]).pre_materialize(materializer)
    assert value is NotUsed
    assert await src.map(lambda x: x * 2).run_with(Sink.seq(), materializer) == [2, 4, 6]


# -- Sink.pre_materialize -------------------------------------------------------------------
async def test_sink_pre_materialize_gives_the_value_before_the_run(
    materializer: Materializer,
) -> None:
    result, sink = Sink.seq().pre_materialize(materializer)
    assert not result.done()
    await asyncio.sleep(0)
    assert not result.done()  # waits for its elements
    Source.from_iterable([1, 2, 3]).run_with(sink, materializer)
    assert await result == [1, 2, 3]


async def test_sink_pre_materialize_passes_failure_and_runs_once(
    materializer: Materializer,
) -> None:
    result, sink = Sink.seq().pre_materialize(materializer)
    Source.failed(Boom("run")).run_with(sink, materializer)
    with pytest.raises(Boom):
        await result

    probe_value, sink2 = TestSink.probe().pre_materialize(materializer)
    first = TestSource.probe().to_mat(sink2, Keep.left).run(materializer)
    second = TestSource.probe().to_mat(sink2, Keep.left).run(materializer)
    probe_value.request(1)
    first.send_next("x")
    await probe_value.expect_next("x")
    # a Reactive Streams subscriber takes one subscription: the second run is cancelled
    await second.expect_cancellation()
    first.send_complete()
    await probe_value.expect_complete()


async def test_a_second_run_of_a_pre_materialized_sink_is_logged(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    # Cancelled as Akka's (rule 2.5), but not silently: its elements are never taken.
    probe_value, sink = TestSink.probe().pre_materialize(materializer)
    first = TestSource.probe().to_mat(sink, Keep.left).run(materializer)
    with caplog.at_level(logging.WARNING, logger="reactive"):
        second = TestSource.probe().to_mat(sink, Keep.left).run(materializer)
        await second.expect_cancellation()
    assert any("takes one subscription" in r.getMessage() for r in caplog.records)
    first.send_complete()
    probe_value.request(1)
    await probe_value.expect_complete()
