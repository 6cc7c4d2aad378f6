"""Review 3, defects 8-10: PartitionHub routing to an unknown consumer or with a non-int
index, bad arguments of the hub and kill switch factories, and a hub consumer on another
materializer when the hub's materializer shuts down."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest

from reactive import (
    AbruptTerminationError,
    BroadcastHub,
    KillSwitches,
    Materializer,
    MergeHub,
    PartitionHub,
    Sink,
    Source,
)


async def _settle(rounds: int = 20) -> None:
    for _ in range(rounds):
        await asyncio.sleep(0)


# -- defect 8: PartitionHub loses nothing silently ---------------------------------------------
async def test_stateful_partition_hub_unknown_id_fails_the_hub(
    materializer: Materializer,
) -> None:
    # Akka: IllegalArgumentException("Invalid stream identifier: 999") fails the hub.
    def factory() -> Any:
        return lambda info, x: 999

    src = Source.from_iterable(range(5)).run_with(
        PartitionHub.stateful_sink(factory, 1), materializer
    )
    with pytest.raises(ValueError, match="Invalid stream identifier") as e:
        await asyncio.wait_for(src.run_with(Sink.seq(), materializer), 3)
    msg = str(e.value)
    assert "[partition_hub]" in msg
    assert "id 999" in msg
    assert "element 0" in msg
    assert "attached: [0]" in msg


async def test_stateful_partition_hub_negative_id_still_drops(materializer: Materializer) -> None:
    def factory() -> Any:
        return lambda info, x: -1 if x % 2 else info.consumer_ids[0]

    src = Source.from_iterable(range(6)).run_with(
        PartitionHub.stateful_sink(factory, 1), materializer
    )
    assert await src.run_with(Sink.seq(), materializer) == [0, 2, 4]


@pytest.mark.parametrize("bad", ["0", None, 1.0, True])
async def test_partition_hub_non_int_index_fails_naming_the_value_and_element(
    materializer: Materializer, bad: Any
) -> None:
    src = Source.from_iterable(range(3)).run_with(
        PartitionHub.sink(lambda n, x: bad, 1), materializer
    )
    with pytest.raises(TypeError) as e:
        await asyncio.wait_for(src.run_with(Sink.seq(), materializer), 3)
    msg = str(e.value)
    assert msg.startswith("[partition_hub] the partitioner returned")
    assert repr(bad) in msg
    assert "element 0" in msg


async def test_stateful_partition_hub_non_int_id_fails_naming_the_routing_function(
    materializer: Materializer,
) -> None:
    def factory() -> Any:
        return lambda info, x: str(info.consumer_ids[0])

    src = Source.from_iterable(range(3)).run_with(
        PartitionHub.stateful_sink(factory, 1), materializer
    )
    with pytest.raises(TypeError, match=r"routing function returned str '0' for element 0"):
        await asyncio.wait_for(src.run_with(Sink.seq(), materializer), 3)


async def test_partition_hub_index_out_of_range_names_the_element(
    materializer: Materializer,
) -> None:
    src = Source.from_iterable(["a"]).run_with(PartitionHub.sink(lambda n, x: 5, 1), materializer)
    with pytest.raises(IndexError, match=r"index 5 for element 'a' with 1 consumer"):
        await asyncio.wait_for(src.run_with(Sink.seq(), materializer), 3)


# -- defect 9: factories check their arguments when built --------------------------------------
@pytest.mark.parametrize(
    ("build", "exc", "text"),
    [
        (lambda: MergeHub.source(0), ValueError, "MergeHub.source(per_producer_buffer_size)"),
        (lambda: MergeHub.source("16"), TypeError, "got str '16'"),
        (lambda: BroadcastHub.sink(8, -1), ValueError, "start_after_nr_of_consumers must be >= 0"),
        (lambda: BroadcastHub.sink(8, "2"), TypeError, "BroadcastHub.sink(buffer_size, "),
        (lambda: BroadcastHub.sink("8"), TypeError, "buffer_size must be a positive int"),
        (lambda: PartitionHub.sink(5, 1), TypeError, "partitioner must be callable, got int 5"),
        (lambda: PartitionHub.sink(lambda n, x: 0, -1), ValueError, "PartitionHub.sink("),
        (lambda: PartitionHub.sink(lambda n, x: 0, 1, 0), ValueError, "buffer_size must be >= 1"),
        (lambda: PartitionHub.stateful_sink(3, 1), TypeError, "PartitionHub.stateful_sink("),
        (lambda: PartitionHub.stateful_sink(lambda: None, 1, 0), ValueError, "got 0"),
        (lambda: KillSwitches.shared(None), TypeError, "KillSwitches.shared(name): name must"),
        (lambda: KillSwitches.shared(3), TypeError, "got int 3"),
    ],
)
def test_factories_reject_bad_arguments(build: Any, exc: type[Exception], text: str) -> None:
    with pytest.raises(exc) as e:
        build()
    assert text in str(e.value)


def test_factories_accept_good_arguments() -> None:
    MergeHub.source(1)
    BroadcastHub.sink(1, 0)
    PartitionHub.sink(lambda n, x: 0, 0, 1)
    PartitionHub.stateful_sink(lambda: lambda info, x: 0, 2)
    assert repr(KillSwitches.shared("sw")) == "KillSwitch(sw)"


# -- defect 10: a hub consumer on another materializer ----------------------------------------
@pytest.mark.parametrize("hub", ["broadcast", "partition"])
async def test_consumer_on_other_materializer_fails_quietly_when_hub_materializer_shuts_down(
    caplog: pytest.LogCaptureFixture, hub: str
) -> None:
    caplog.set_level(logging.ERROR, logger="reactive")
    sink: Any = BroadcastHub.sink(8) if hub == "broadcast" else PartitionHub.sink(lambda n, x: 0, 1)
    m1 = Materializer()
    async with Materializer() as m2:
        src = Source.never().run_with(sink, m1)
        fut = src.map(lambda x: x).run_with(Sink.ignore(), m2)
        await _settle()
        await m1.shutdown()  # the hub's materializer shuts down; m2 keeps running
        await _settle()
        assert fut.done()
        exc = fut.exception()
        assert isinstance(exc, AbruptTerminationError)
        assert "hub's stream" in str(exc)
        assert "was aborted: its materializer shut down" in str(exc)
        assert f"{hub}_hub" in str(exc)
        del fut, exc
        gc.collect()
        await _settle()
    # A materializer shutdown is not an unobserved stream failure (README).
    assert [r.getMessage() for r in caplog.records if r.name == "reactive"] == []


async def test_consumer_still_gets_the_hubs_real_failure(materializer: Materializer) -> None:
    boom = RuntimeError("boom")
    src = Source.failed(boom).run_with(BroadcastHub.sink(8), materializer)
    with pytest.raises(RuntimeError) as e:
        await src.run_with(Sink.ignore(), materializer)
    assert e.value is boom
