"""Specs of the stream-table joins ``join_table`` (inner) and ``left_join_table`` (left):
each element meets the table's value for its key *when it is processed*; inner-join misses
go to ``missing`` or are dropped with a count in the DEBUG log; bad arguments are refused
with the operator's name. The tables are real stores and the live view of a running
``aggregate_by_key``.
"""

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
    Sink,
    Source,
    SourceWithContext,
    Supervision,
)
from reactive.state import StoreClosedError, Stores
from reactive.testkit import TestSink, TestSource


async def eventually(predicate: Any) -> None:
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not met after 200 loop turns")


def table_of(pairs: dict[str, Any]) -> Any:
    store = Stores.in_memory("prices").open()
    for k, v in pairs.items():
        store.put(k, v)
    return store


async def test_inner_join_emits_matches_and_drops_misses_with_a_count(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    table = table_of({"apple": 3, "pear": 5})
    caplog.set_level(logging.DEBUG, logger="reactive.state")
    out = await (
        Source.from_iterable(["apple", "kiwi", "pear", "plum", "apple"])
        .join_table(table, key=lambda w: w, combine=lambda w, price: (w, price))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [("apple", 3), ("pear", 5), ("apple", 3)]
    dropped = [r.getMessage() for r in caplog.records if "join_table" in r.getMessage()]
    assert len(dropped) == 2
    assert "'kiwi'" in dropped[0] and "(1 so far)" in dropped[0]
    assert "'plum'" in dropped[1] and "(2 so far)" in dropped[1]


async def test_inner_join_sends_misses_to_the_missing_sink(materializer: Materializer) -> None:
    table = table_of({"a": 1, "c": 3})
    missed: list[Any] = []
    out = await (
        Source.from_iterable([("a", 10), ("b", 20), ("c", 30), ("d", 40)])
        .join_table(
            table,
            key=lambda e: e[0],
            combine=lambda e, v: e[1] + v,
            missing=Sink.foreach(missed.append),
        )
        .run_with(Sink.seq(), materializer)
    )
    assert out == [11, 33]
    assert missed == [("b", 20), ("d", 40)]


async def test_left_join_gives_none_for_missing_keys(materializer: Materializer) -> None:
    table = table_of({"a": 1})
    out = await (
        Source.from_iterable(["a", "b"])
        .left_join_table(table, key=lambda k: k, combine=lambda k, v: (k, v))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [("a", 1), ("b", None)]


async def test_each_element_sees_the_table_as_it_is_when_processed(
    materializer: Materializer,
) -> None:
    # The table is the live view of a running aggregate_by_key (a KTable of counts);
    # the stream is probed element by element, so each join happens at a known state.
    table_up, table_view = (
        TestSource.probe()
        .aggregate_by_key(
            Stores.in_memory("counts"), lambda w: w, lambda: 0, lambda n, _: n + 1, Keep.both
        )
        .to_mat(Sink.ignore(), Keep.left)
        .run(materializer)
    )
    up, down = (
        TestSource.probe()
        .left_join_table(table_view, key=lambda w: w, combine=lambda w, n: (w, n))
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    down.request(10)
    table_up.send_next("x")
    await eventually(lambda: table_view.get("x") == 1)
    up.send_next("x").send_next("y")
    assert await down.expect_next_n(2) == [("x", 1), ("y", None)]
    table_up.send_next("x").send_next("y")
    await eventually(lambda: table_view.get("y") == 1)
    up.send_next("x").send_next("y")
    assert await down.expect_next_n(2) == [("x", 2), ("y", 1)]
    up.send_complete()
    await down.expect_complete()
    table_up.send_complete()
    await eventually(lambda: not table_view.is_open)


async def test_a_closed_table_fails_the_join(materializer: Materializer) -> None:
    table = table_of({"a": 1})
    table.close()
    with pytest.raises(StoreClosedError, match="prices"):
        await (
            Source.from_iterable(["a"])
            .join_table(table, key=lambda k: k, combine=lambda k, v: v)
            .run_with(Sink.seq(), materializer)
        )


async def test_combine_returning_none_fails_naming_the_operator(
    materializer: Materializer,
) -> None:
    table = table_of({"a": 1})
    with pytest.raises(TypeError, match=r"left_join_table: combine returned None for element 'a'"):
        await (
            Source.from_iterable(["a"])
            .left_join_table(table, key=lambda k: k, combine=lambda k, v: None)
            .run_with(Sink.seq(), materializer)
        )
    with pytest.raises(TypeError, match=r"^join_table: combine returned None"):
        await (
            Source.from_iterable(["a"])
            .join_table(table, key=lambda k: k, combine=lambda k, v: None)
            .run_with(Sink.seq(), materializer)
        )


async def test_supervision_resume_skips_an_element_whose_key_raises(
    materializer: Materializer,
) -> None:
    table = table_of({"a": 1, "b": 2})

    def key(x: str) -> str:
        if x == "bad":
            raise ValueError("no key")
        return x

    out = await (
        Source.from_iterable(["a", "bad", "b"])
        .join_table(table, key=key, combine=lambda k, v: v)
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [1, 2]


async def test_joins_on_a_flow(materializer: Materializer) -> None:
    table = table_of({"a": 1})
    flow = Flow[str]().join_table(table, key=lambda k: k, combine=lambda k, v: f"{k}={v}")
    assert await Source.from_iterable(["a", "z"]).via(flow).run_with(Sink.seq(), materializer) == [
        "a=1"
    ]


def test_bad_arguments_are_refused_naming_the_operator() -> None:
    with pytest.raises(TypeError, match=r"join_table: table must be a read-only store view"):
        Source.from_iterable([1]).join_table({"a": 1}, key=str, combine=lambda x, v: v)
    with pytest.raises(TypeError, match=r"left_join_table: key must be a function"):
        Source.from_iterable([1]).left_join_table(table_of({}), key="k", combine=lambda x, v: v)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"join_table: combine must be a function"):
        Source.from_iterable([1]).join_table(table_of({}), key=str, combine=3)  # type: ignore[arg-type]


async def test_joins_keep_each_elements_context(materializer: Materializer) -> None:
    table = table_of({"a": 1, "c": 3})
    pairs = [("a", 10), ("b", 11), ("c", 12)]
    inner = await (
        SourceWithContext.from_tuples(Source.from_iterable(pairs))
        .join_table(table, key=lambda k: k, combine=lambda k, v: f"{k}{v}")
        .run_with(Sink.seq(), materializer)
    )
    assert inner == [("a1", 10), ("c3", 12)]  # b's context is dropped with b
    flow: Any = FlowWithContext.identity().left_join_table(
        table, key=lambda k: k, combine=lambda k, v: (k, v)
    )
    left = await (
        SourceWithContext.from_tuples(Source.from_iterable(pairs))
        .via(flow)
        .run_with(Sink.seq(), materializer)
    )
    assert left == [(("a", 1), 10), (("b", None), 11), (("c", 3), 12)]
    inner_flow: Any = FlowWithContext.identity().join_table(
        table, key=lambda k: k, combine=lambda k, v: v
    )
    assert await SourceWithContext.from_tuples(Source.from_iterable(pairs)).via(
        inner_flow
    ).run_with(Sink.seq(), materializer) == [(1, 10), (3, 12)]
