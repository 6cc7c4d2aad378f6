"""Review (Kafka Streams user): stream-table joins.

- A None key never joins: Kafka Streams skips a null-key record of an inner stream-table
  join and joins it with null in a left one, without looking the key up. Here the table
  was asked for None: a table holding a None key joined it, and a table whose key serde
  refuses None failed the stream.
- A key or combine function that raises: the error names the join (an inner join's named
  nothing, a left join's named ``map``, the operators it is built from); supervision
  applies as documented.
- A table update never emits a join result, and a tombstone (delete) makes the next
  element miss.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from reactive import Attributes, Materializer, Sink, Source, Supervision
from reactive.state import Stores
from reactive.testkit import TestSink, TestSource


class StrKeys:
    """A key serde for str only (refuses None, as a Kafka string serde would)."""

    def to_bytes(self, obj: Any) -> bytes:
        if type(obj) is not str:
            raise TypeError(f"StrKeys takes str, got {obj!r}")
        return obj.encode()

    def from_bytes(self, data: bytes) -> Any:
        return data.decode()


def orders() -> Source[Any, Any]:
    return Source.from_iterable([("apple", 1), (None, 2), ("kiwi", 3)])


async def test_a_none_key_never_joins_even_with_a_table_holding_none(
    materializer: Materializer, caplog: pytest.LogCaptureFixture
) -> None:
    table = Stores.in_memory("prices").open()
    table.put("apple", 3)
    table.put(None, 99)  # a None key is a value to msgpack: the join must not find it
    caplog.set_level(logging.DEBUG, logger="reactive.state")
    missed: list[Any] = []
    inner = await (
        orders()
        .join_table(
            table,
            key=lambda o: o[0],
            combine=lambda o, p: (o[0], p),
            missing=Sink.foreach(missed.append),
        )
        .run_with(Sink.seq(), materializer)
    )
    assert inner == [("apple", 3)]
    assert missed == [(None, 2), ("kiwi", 3)]
    dropped = await (
        orders()
        .join_table(table, key=lambda o: o[0], combine=lambda o, p: (o[0], p))
        .run_with(Sink.seq(), materializer)
    )
    assert dropped == [("apple", 3)]
    assert any("key None" in r.getMessage() and "dropped" in r.getMessage() for r in caplog.records)
    left = await (
        orders()
        .left_join_table(table, key=lambda o: o[0], combine=lambda o, p: (o[1], p))
        .run_with(Sink.seq(), materializer)
    )
    assert left == [(1, 3), (2, None), (3, None)]


async def test_a_none_key_does_not_reach_a_key_serde_that_refuses_it(
    materializer: Materializer,
) -> None:
    table = Stores.in_memory("prices", key_serde=StrKeys()).open()
    table.put("apple", 3)
    inner = await (
        orders()
        .join_table(table, key=lambda o: o[0], combine=lambda o, p: (o[0], p))
        .run_with(Sink.seq(), materializer)
    )
    assert inner == [("apple", 3)]
    left = await (
        orders()
        .left_join_table(table, key=lambda o: o[0], combine=lambda o, p: (o[1], p))
        .run_with(Sink.seq(), materializer)
    )
    assert left == [(1, 3), (2, None), (3, None)]


@pytest.mark.parametrize("op", ["join_table", "left_join_table"])
@pytest.mark.parametrize("what", ["key", "combine"])
async def test_a_raising_function_fails_the_stream_naming_the_join(
    materializer: Materializer, op: str, what: str
) -> None:
    table = Stores.in_memory("prices").open()
    table.put("apple", 3)

    def boom(*_: Any) -> Any:
        raise ZeroDivisionError("no price")

    key = boom if what == "key" else (lambda w: w)
    combine = boom if what == "combine" else (lambda w, p: (w, p))
    with pytest.raises(ZeroDivisionError) as info:
        await getattr(Source.from_iterable(["apple"]), op)(table, key, combine).run_with(
            Sink.seq(), materializer
        )
    notes = getattr(info.value, "__notes__", [])
    assert f"raised by the {what} function given to {op}, for element 'apple'" in notes, notes


@pytest.mark.parametrize("op", ["join_table", "left_join_table"])
async def test_resume_skips_an_element_whose_combine_raises(
    materializer: Materializer, op: str
) -> None:
    table = Stores.in_memory("prices").open()
    for k, v in (("a", 1), ("b", 0), ("c", 4)):
        table.put(k, v)
    out = await (
        getattr(Source.from_iterable(["a", "b", "c"]), op)(
            table, lambda w: w, lambda w, p: (w, 8 // p)
        )
        .with_attributes(Attributes.supervision_strategy(lambda e: Supervision.resume))
        .run_with(Sink.seq(), materializer)
    )
    assert out == [("a", 8), ("c", 2)]


async def test_table_updates_never_emit_and_a_delete_makes_the_next_element_miss(
    materializer: Materializer,
) -> None:
    table = Stores.in_memory("prices").open()
    table.put("apple", 3)
    up, down = (
        TestSource.probe()
        .left_join_table(table, key=lambda w: w, combine=lambda w, p: (w, p))
        .to_mat(TestSink.probe(), lambda a, b: (a, b))
        .run(materializer)
    )
    down.request(10)
    up.send_next("apple")
    assert await down.expect_next() == ("apple", 3)
    table.put("apple", 4)  # a table update: nothing is emitted
    await down.expect_no_message(0.05)
    table.delete("apple")  # a tombstone
    up.send_next("apple")
    assert await down.expect_next() == ("apple", None)
    up.send_complete()
    await down.expect_complete()
