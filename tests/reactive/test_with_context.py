"""SourceWithContext / FlowWithContext: every operator keeps each element's context
attached, in order; user-function failures fail the stream; grouped contexts are lists."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reactive import (
    Attributes,
    Flow,
    FlowWithContext,
    Keep,
    Materializer,
    NotUsed,
    Sink,
    Source,
    SourceWithContext,
    Supervision,
)
from reactive.testkit import ManualClock, TestSink

PAIRS = [("a", 1), ("bb", 2), ("ccc", 3), ("dddd", 4), ("eeeee", 5)]


def src() -> SourceWithContext[str, int, Any]:
    return SourceWithContext.from_tuples(Source.from_iterable(PAIRS))


async def run(s: SourceWithContext[Any, Any, Any], mat: Materializer) -> list[Any]:
    return await s.run_with(Sink.seq(), mat)


async def test_as_source_with_context_extracts_the_context(materializer: Materializer) -> None:
    s = Source.from_iterable(["x", "yy", "zzz"]).as_source_with_context(len)
    assert isinstance(s, SourceWithContext)
    assert await run(s, materializer) == [("x", 1), ("yy", 2), ("zzz", 3)]
    assert await s.as_source().run_with(Sink.seq(), materializer) == [
        ("x", 1),
        ("yy", 2),
        ("zzz", 3),
    ]


async def test_map_transforms_the_element_only(materializer: Materializer) -> None:
    out = await run(src().map(str.upper), materializer)
    assert out == [("A", 1), ("BB", 2), ("CCC", 3), ("DDDD", 4), ("EEEEE", 5)]


async def test_filter_and_filter_not_drop_the_context_with_the_element(
    materializer: Materializer,
) -> None:
    assert await run(src().filter(lambda s: len(s) % 2 == 1), materializer) == [
        ("a", 1),
        ("ccc", 3),
        ("eeeee", 5),
    ]
    assert await run(src().filter_not(lambda s: len(s) % 2 == 1), materializer) == [
        ("bb", 2),
        ("dddd", 4),
    ]


async def test_map_concat_gives_each_output_its_elements_context(
    materializer: Materializer,
) -> None:
    out = await run(src().map_concat(lambda s: s[:2]), materializer)
    assert out == [
        ("a", 1),
        ("b", 2),
        ("b", 2),
        ("c", 3),
        ("c", 3),
        ("d", 4),
        ("d", 4),
        ("e", 5),
        ("e", 5),
    ]


async def test_map_concat_empty_output_drops_the_context(materializer: Materializer) -> None:
    out = await run(src().map_concat(lambda s: [s] if len(s) > 3 else []), materializer)
    assert out == [("dddd", 4), ("eeeee", 5)]


async def test_map_async_keeps_order_and_contexts(materializer: Materializer) -> None:
    async def slow_len(s: str) -> int:
        await asyncio.sleep(0.001 * (6 - len(s)))  # later elements finish first
        return len(s)

    out = await run(src().map_async(4, slow_len), materializer)
    assert out == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]


async def test_map_async_skips_none_results_with_their_context(
    materializer: Materializer,
) -> None:
    async def only_even(s: str) -> str | None:
        return s if len(s) % 2 == 0 else None

    assert await run(src().map_async(2, only_even), materializer) == [("bb", 2), ("dddd", 4)]


async def test_map_async_partitioned_keeps_contexts(materializer: Materializer) -> None:
    async def tag(s: str, key: Any) -> str:
        return f"{key}:{s}"

    out = await run(src().map_async_partitioned(4, 1, lambda s: len(s) % 2, tag), materializer)
    assert out == [("1:a", 1), ("0:bb", 2), ("1:ccc", 3), ("0:dddd", 4), ("1:eeeee", 5)]


async def test_grouped_makes_the_context_the_list_of_contexts(materializer: Materializer) -> None:
    out = await run(src().grouped(2), materializer)
    assert out == [(["a", "bb"], [1, 2]), (["ccc", "dddd"], [3, 4]), (["eeeee"], [5])]


async def test_sliding_windows_carry_their_contexts(materializer: Materializer) -> None:
    out = await run(src().sliding(3, 2), materializer)
    assert out == [(["a", "bb", "ccc"], [1, 2, 3]), (["ccc", "dddd", "eeeee"], [3, 4, 5])]


async def test_map_context_changes_the_context_only(materializer: Materializer) -> None:
    out = await run(src().map_context(lambda c: c * 10), materializer)
    assert out == [("a", 10), ("bb", 20), ("ccc", 30), ("dddd", 40), ("eeeee", 50)]


async def test_flow_with_context_operators_and_via(materializer: Materializer) -> None:
    flow: FlowWithContext[str, int, Any, Any, Any] = (
        FlowWithContext.identity()
        .filter(lambda s: s != "ccc")
        .map(len)
        .map_context(str)
        .map_concat(lambda n: [n, -n])
    )
    out = await run(src().via(flow), materializer)
    assert out == [
        (1, "1"),
        (-1, "1"),
        (2, "2"),
        (-2, "2"),
        (4, "4"),
        (-4, "4"),
        (5, "5"),
        (-5, "5"),
    ]
    # the same blueprint is reusable, and a plain Flow of tuples works with via too
    tuples = Flow().map(lambda p: (p[0] * 2, p[1] + "1"))
    assert await run(src().via(flow).via(tuples), materializer) == [
        (2, "11"),
        (-2, "11"),
        (4, "21"),
        (-4, "21"),
        (8, "41"),
        (-8, "41"),
        (10, "51"),
        (-10, "51"),
    ]


async def test_flow_with_context_grouped_and_as_flow(materializer: Materializer) -> None:
    flow = FlowWithContext(Flow()).grouped(3)
    assert FlowWithContext().as_flow().module.is_identity
    out = await Source.from_iterable(PAIRS).via(flow.as_flow()).run_with(Sink.seq(), materializer)
    assert out == [(["a", "bb", "ccc"], [1, 2, 3]), (["dddd", "eeeee"], [4, 5])]


async def test_from_tuples_and_as_flow_with_context(materializer: Materializer) -> None:
    # Flow.as_flow_with_context: collapse (element, context) into the flow's input, and
    # extract the outgoing context from its output (what Producer.flow_with_context does)
    inner: Flow[Any, Any, Any] = Flow().map(lambda d: {**d, "n": len(d["s"])})
    flow = inner.as_flow_with_context(lambda s, c: {"s": s, "ctx": c}, lambda d: d["ctx"])
    assert isinstance(flow, FlowWithContext)
    out = await run(src().via(flow.map(lambda d: d["n"])), materializer)
    assert out == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    wrapped = FlowWithContext.from_tuples(Flow().map(lambda p: (p[1], p[0])))
    assert await run(src().via(wrapped), materializer) == [(c, e) for e, c in PAIRS]


async def test_to_and_to_mat_take_a_sink_of_tuples(materializer: Materializer) -> None:
    seen: list[Any] = []
    done = src().map(len).to_mat(Sink.foreach(seen.append), Keep.right).run(materializer)
    await done
    assert seen == [(1, 1), (2, 2), (3, 3), (4, 4), (5, 5)]
    sink = FlowWithContext.identity().map(str.upper).to_mat(Sink.seq(), Keep.right)
    assert await Source.from_iterable(PAIRS[:2]).run_with(sink, materializer) == [
        ("A", 1),
        ("BB", 2),
    ]
    assert src().to(Sink.ignore()).run(materializer) is NotUsed


async def test_via_mat_and_map_materialized_value(materializer: Materializer) -> None:
    flow = FlowWithContext.identity().map_materialized_value(lambda _: "flow-mat")
    mat, out = (
        src()
        .via_mat(flow, Keep.right)
        .map_materialized_value(lambda m: m + "!")
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    assert mat == "flow-mat!"
    assert await out == PAIRS


async def test_user_function_failure_fails_the_stream(materializer: Materializer) -> None:
    def boom(s: str) -> int:
        if s == "ccc":
            raise ValueError("bad element")
        return len(s)

    probe = src().map(boom).as_source().run_with(TestSink.probe(), materializer)
    probe.request(10)
    await probe.expect_next((1, 1), (2, 2))
    exc = await probe.expect_error()
    assert isinstance(exc, ValueError)
    for bad in (
        src().filter(lambda s: 1 / 0 > 0),
        src().map_context(lambda c: {}[c]),
        src().map_concat(lambda s: 1 / 0),
    ):
        with pytest.raises((ZeroDivisionError, KeyError)):
            await run(bad, materializer)


async def test_map_async_failure_fails_the_stream(materializer: Materializer) -> None:
    async def fail(s: str) -> str:
        raise RuntimeError(f"no {s}")

    with pytest.raises(RuntimeError, match="no a"):
        await run(src().map_async(2, fail), materializer)


async def test_supervision_resume_drops_the_element_and_its_context(
    materializer: Materializer,
) -> None:
    def boom(s: str) -> int:
        if s == "ccc":
            raise ValueError("bad element")
        return len(s)

    s = (
        src()
        .map(boom)
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
    )
    assert await run(s, materializer) == [(1, 1), (2, 2), (4, 4), (5, 5)]


async def test_map_error_and_log(materializer: Materializer, caplog: Any) -> None:
    failing = SourceWithContext.from_tuples(Source.failed(KeyError("k")))
    with pytest.raises(LookupError, match="translated"):
        await run(failing.map_error(lambda e: LookupError(f"translated {e}")), materializer)
    caplog.set_level(logging.DEBUG)
    out = await run(src().log("ctx-log", extract=len).named("logged"), materializer)
    assert out == PAIRS


async def test_throttle_costs_the_element_not_the_context(
    materializer: Materializer, manual_clock: ManualClock
) -> None:
    probe = (
        src()
        .throttle(1, 1.0, maximum_burst=5, cost=len)
        .as_source()
        .run_with(TestSink.probe(), materializer)
    )
    probe.request(10)
    await probe.expect_next(("a", 1), ("bb", 2))  # 3 of the 5 tokens
    await probe.expect_no_message(0.02)
    await manual_clock.advance(0.9)
    await probe.expect_no_message(0.02)
    await manual_clock.advance(0.1)  # "ccc" costs 3: one more token was needed
    await probe.expect_next(("ccc", 3))
    await manual_clock.advance(3.9)
    await probe.expect_no_message(0.02)
    await manual_clock.advance(0.1)
    await probe.expect_next(("dddd", 4))
    probe.cancel()


def test_wrappers_check_what_they_wrap() -> None:
    with pytest.raises(TypeError):
        SourceWithContext(Flow())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        FlowWithContext(Source.single((1, 2)))  # type: ignore[arg-type]
    assert "SourceWithContext" in repr(src())
    assert "FlowWithContext" in repr(FlowWithContext.identity())
