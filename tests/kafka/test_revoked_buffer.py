"""The records of a revoked partition are gone from the stage before the revocation
returns (Alpakka 2.0, "filter messages of revoked partitions", made exact).

The stage filters its buffer in an async callback. When the revocation came while the
stage's island was running (the callback then waits in its queue) the revocation
returned first, aiokafka handed the partitions over, and the stage could still emit
records of partitions another member was already reading. Now the revocation waits for
the filtering. The revocation is driven here from inside the island (a ``map`` fused
with the source), step by step, as a task would drive it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka import Consumer, Subscriptions, TopicPartition
from connectors.kafka.testkit import produce_values
from reactive import Keep, Sink
from tests.kafka.support import eventually, settings

if TYPE_CHECKING:
    from reactive import Materializer

pytestmark = pytest.mark.kafka


def _drive(coro: Any, on_return: Any) -> None:
    """Run ``coro`` as a task would: each step when the future it waits for is done."""

    def step(_: Any = None) -> None:
        try:
            fut = coro.send(None)
        except StopIteration:
            on_return()
            return
        fut._asyncio_future_blocking = False
        fut.add_done_callback(step)

    step()


async def test_no_record_of_a_revoked_partition_is_buffered_once_revocation_returned(
    kafka_bootstrap: str, kafka_topic: str, materializer: Materializer
) -> None:
    await produce_values(kafka_bootstrap, kafka_topic, [f"v{i}" for i in range(300)])
    tp = TopicPartition(kafka_topic, 0)
    left_at_return: list[list[int]] = []
    emitted_after: list[int] = []
    logic: Any = None

    def revoke_inside_the_island(rec: Any) -> Any:
        if left_at_return:
            emitted_after.append(rec.offset)  # emitted once the revocation returned
        elif logic is not None and logic._buffered > 0 and not hasattr(logic, "_probe"):
            logic._probe = True

            def returned() -> None:
                left_at_return.append([r.offset for r in logic._buffered_of(tp)])

            _drive(logic._revoked(frozenset({tp})), returned)
        return rec

    async def slow(rec: Any) -> Any:
        await asyncio.sleep(0.001)
        return rec

    control = (
        Consumer.plain_source(settings(kafka_bootstrap, None), Subscriptions.assignment(tp))
        .map(revoke_inside_the_island)
        .map_async(1, slow)
        .to_mat(Sink.ignore(), Keep.left)
        .run(materializer)
    )
    logic = control._metrics.__self__
    try:
        await eventually(lambda: bool(left_at_return))
        await asyncio.sleep(0.2)
        assert left_at_return == [[]], (
            f"{len(left_at_return[0])} record(s) of the revoked partition were still "
            "buffered when the revocation returned"
        )
        assert emitted_after == []
        assert control.metrics()["records_dropped"] > 0
    finally:
        await asyncio.wait_for(control.shutdown(), 10)
