"""Specs of the fluent fan-in operators: zip, zip_with, merge (incl. eager_complete),
concat, prepend and Source.zip_n."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reactive import Attributes, Flow, Keep, Materializer, Sink, Source, Supervision
from reactive.testkit import TestSink, TestSource


class Boom(Exception):
    """A test failure."""


async def settle(rounds: int = 30) -> None:
    """Let the event loop run a few rounds."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def two_probes(op: Any, mat: Materializer) -> tuple[Any, Any, Any]:
    """(left publisher, right publisher, subscriber) around ``op(left, right)``."""
    (a, b), sub = (
        op(TestSource.probe(), TestSource.probe(), Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(mat)
    )
    return a, b, sub


def zip_(a: Any, b: Any, k: Any) -> Any:
    return a.zip_mat(b, k)


def merge_(a: Any, b: Any, k: Any) -> Any:
    return a.merge_mat(b, k)


def merge_eager(a: Any, b: Any, k: Any) -> Any:
    return a.merge_mat(b, k, eager_complete=True)


def concat_(a: Any, b: Any, k: Any) -> Any:
    return a.concat_mat(b, k)


# -- zip / zip_with ------------------------------------------------------------------------
async def test_zip_pairs_and_completes_with_shorter(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable([1, 2, 3])
        .zip(Source.from_iterable("ab"))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [(1, "a"), (2, "b")]


async def test_zip_with(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable([1, 2, 3])
        .zip_with(Source.from_iterable([10, 20, 30, 40]), lambda a, b: a + b)
        .run_with(Sink.seq(), materializer)
    )
    assert out == [11, 22, 33]


async def test_zip_with_on_a_flow(materializer: Materializer) -> None:
    flow = Flow().map(lambda x: x * 2).zip(Source.from_iterable("xyz"))
    out = await Source.from_iterable([1, 2]).via(flow).run_with(Sink.seq(), materializer)
    assert out == [(2, "x"), (4, "y")]


async def test_zip_emits_held_pair_before_completing(materializer: Materializer) -> None:
    a, b, sub = two_probes(zip_, materializer)
    sub.request(5)
    a.send_next(1)
    await settle()
    a.send_complete()
    await settle()
    await sub.expect_no_message(0)
    b.send_next("x")
    await sub.expect_next((1, "x"))
    await sub.expect_complete()
    await b.expect_cancellation()


async def test_zip_completes_when_either_completes_empty(materializer: Materializer) -> None:
    a, b, sub = two_probes(zip_, materializer)
    sub.request(1)
    b.send_complete()
    await sub.expect_complete()
    await a.expect_cancellation()


async def test_zip_backpressure(materializer: Materializer) -> None:
    a, b, sub = two_probes(zip_, materializer)
    await settle()
    # both inputs are pulled once at start (one element held per side), no more
    assert a.pending_demand == 1 and b.pending_demand == 1
    a.send_next(1)
    b.send_next(2)
    await settle()
    assert a.pending_demand == 1 and b.pending_demand == 1
    await sub.request_next((1, 2))
    await settle()
    assert a.pending_demand == 2 and b.pending_demand == 2
    sub.cancel()
    await a.expect_cancellation()
    await b.expect_cancellation()


async def test_zip_failure_of_either_side(materializer: Materializer) -> None:
    err = Boom("right")
    a, b, sub = two_probes(zip_, materializer)
    sub.request(1)
    b.send_error(err)
    assert await sub.expect_error() is err
    await a.expect_cancellation()


async def test_zip_with_function_failure(materializer: Materializer) -> None:
    def f(x: int, y: int) -> int:
        raise Boom(f"{x}{y}")

    with pytest.raises(Boom, match="12"):
        await Source.single(1).zip_with(Source.single(2), f).run_with(Sink.seq(), materializer)


@pytest.mark.parametrize("directive", [Supervision.resume, Supervision.restart])
async def test_zip_with_supervision_drops_the_pair(
    materializer: Materializer, directive: Supervision
) -> None:
    def f(x: int, y: int) -> int:
        if x == 2:
            raise Boom("pair")
        return x + y

    out = await (
        Source.from_iterable([1, 2, 3, 4])
        .zip_with(Source.from_iterable([10, 20, 30, 40]), f)
        .with_attributes(Attributes.supervision_strategy(lambda e: directive))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [11, 33, 44]


async def test_zip_with_resume_on_last_pair_completes(materializer: Materializer) -> None:
    def f(x: int, y: int) -> int:
        if x == 2:
            raise Boom("last")
        return x + y

    out = await (
        Source.from_iterable([1, 2])
        .zip_with(Source.from_iterable([10, 20, 30]), f)
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [11]


async def test_zip_n(materializer: Materializer) -> None:
    srcs = [Source.from_iterable([1, 2, 3]), Source.from_iterable("abcd"), Source.repeat(0)]
    out = await Source.zip_n(srcs).run_with(Sink.seq(), materializer)
    assert out == [[1, "a", 0], [2, "b", 0], [3, "c", 0]]


async def test_zip_n_edge_cases(materializer: Materializer) -> None:
    assert await Source.zip_n([]).run_with(Sink.seq(), materializer) == []
    assert await Source.zip_n([Source.from_iterable([1, 2])]).run_with(
        Sink.seq(), materializer
    ) == [[1], [2]]


async def test_zip_n_failure(materializer: Materializer) -> None:
    err = Boom("n")
    with pytest.raises(Boom):
        await Source.zip_n([Source.repeat(1), Source.failed(err), Source.repeat(2)]).run_with(
            Sink.seq(), materializer
        )


# -- merge -----------------------------------------------------------------------------------
async def test_merge_all_elements(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable(range(50))
        .merge(Source.from_iterable(range(100, 150)))
        .run_with(Sink.seq(), materializer)
    )
    assert sorted(out) == [*range(50), *range(100, 150)]
    assert [x for x in out if x < 100] == list(range(50))
    assert [x for x in out if x >= 100] == list(range(100, 150))


async def test_merge_completes_when_all_complete(materializer: Materializer) -> None:
    a, b, sub = two_probes(merge_, materializer)
    sub.request(10)
    a.send_next(1).send_complete()
    await sub.expect_next(1)
    await settle()
    await sub.expect_no_message(0)
    b.send_next(2).send_complete()
    await sub.expect_next(2)
    await sub.expect_complete()


async def test_merge_eager_complete(materializer: Materializer) -> None:
    a, b, sub = two_probes(merge_eager, materializer)
    sub.request(10)
    a.send_next(1)
    await sub.expect_next(1)
    a.send_complete()
    await sub.expect_complete()
    await b.expect_cancellation()


async def test_merge_is_fifo_among_ready_inputs(materializer: Materializer) -> None:
    a, b, sub = two_probes(merge_, materializer)
    await settle()
    b.send_next("b1")
    await settle()
    a.send_next("a1")
    await settle()
    sub.request(2)
    await sub.expect_next("b1", "a1")
    sub.cancel()
    await a.expect_cancellation()
    await b.expect_cancellation()


async def test_merge_backpressure(materializer: Materializer) -> None:
    a, b, sub = two_probes(merge_, materializer)
    await settle()
    a.send_next(1)
    b.send_next(2)
    await settle()
    assert a.pending_demand == 1 and b.pending_demand == 1
    await sub.request_next(1)
    await settle()
    assert a.pending_demand == 2 and b.pending_demand == 1
    await sub.request_next(2)
    a.send_complete()
    b.send_complete()
    await sub.expect_complete()


async def test_merge_failure_and_cancel(materializer: Materializer) -> None:
    err = Boom("m")
    a, b, sub = two_probes(merge_, materializer)
    sub.request(1)
    a.send_error(err)
    assert await sub.expect_error() is err
    await b.expect_cancellation()

    a, b, sub = two_probes(merge_, materializer)
    sub.cancel()
    await a.expect_cancellation()
    await b.expect_cancellation()


async def test_merge_two_infinite_sources_both_progress(materializer: Materializer) -> None:
    out = (
        await Source.repeat("a")
        .merge(Source.repeat("b"))
        .take(100)
        .run_with(Sink.seq(), materializer)
    )
    assert "a" in out and "b" in out


# -- concat / prepend --------------------------------------------------------------------------
async def test_concat(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable([1, 2])
        .concat(Source.from_iterable([3, 4]))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 2, 3, 4]


async def test_concat_empty_sides(materializer: Materializer) -> None:
    assert await Source.empty().concat(Source.single(1)).run_with(Sink.seq(), materializer) == [1]
    assert await Source.single(1).concat(Source.empty()).run_with(Sink.seq(), materializer) == [1]


async def test_concat_is_eager_but_ordered(materializer: Materializer) -> None:
    a, b, sub = two_probes(concat_, materializer)
    await settle()
    # detached: both inputs pulled once at start
    assert a.pending_demand == 1 and b.pending_demand == 1
    b.send_next("b1")
    sub.request(1)
    await settle()
    await sub.expect_no_message(0)
    a.send_next("a1")
    await sub.expect_next("a1")
    sub.request(1)
    await a.expect_request()
    a.send_complete()
    await sub.expect_next("b1")
    sub.request(1)
    await b.expect_request()
    b.send_next("b2").send_complete()
    await sub.expect_next("b2")
    await sub.expect_complete()


async def test_concat_failure_of_second_before_first_done(materializer: Materializer) -> None:
    err = Boom("second")
    a, b, sub = two_probes(concat_, materializer)
    sub.request(1)
    b.send_error(err)
    assert await sub.expect_error() is err
    await a.expect_cancellation()


async def test_concat_cancel(materializer: Materializer) -> None:
    a, b, sub = two_probes(concat_, materializer)
    sub.cancel()
    await a.expect_cancellation()
    await b.expect_cancellation()


async def test_prepend_source(materializer: Materializer) -> None:
    out = (
        await Source.from_iterable([3, 4])
        .prepend(Source.from_iterable([1, 2]))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 2, 3, 4]


async def test_prepend_flow(materializer: Materializer) -> None:
    flow = Flow().map(lambda x: x * 10).prepend(Source.from_iterable([1, 2]))
    out = await Source.from_iterable([3, 4]).via(flow).run_with(Sink.seq(), materializer)
    assert out == [1, 2, 30, 40]


async def test_concat_keeps_materialized_value(materializer: Materializer) -> None:
    (pub, out) = (
        TestSource.probe().concat(Source.single(9)).to_mat(Sink.seq(), Keep.both).run(materializer)
    )
    pub.send_next(1).send_complete()
    assert await out == [1, 9]


async def test_merge_mat_combines(materializer: Materializer) -> None:
    (a, b), out = (
        TestSource.probe()
        .merge_mat(TestSource.probe(), Keep.both)
        .to_mat(Sink.seq(), Keep.both)
        .run(materializer)
    )
    a.send_next(1).send_complete()
    b.send_next(2).send_complete()
    assert sorted(await out) == [1, 2]
