"""A table whose store cannot take a record (or cannot open) fails with that error.

``Tables.global_table`` and ``Tables.table`` fail "when a record cannot be deserialized
or written to the store", and ``KTable.done`` "fails with its failure": the store's error
is what ``done`` fails with (a note names the table, the topic, the partition and the
offset), the ``__cause__`` of ``ready()``'s ``TableNotReadyError`` and of the
``StoreClosedError`` of later reads, never the generic "its stream was stopped" (which
is for a stream stopped without a failure). A failure nobody looks at is logged once,
naming the stage, like any stream's unobserved failure.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import weakref
from typing import TYPE_CHECKING, Any

import pytest

from connectors.kafka.serde import str_deserializer
from connectors.kafka.tables import TableNotReadyError, Tables
from connectors.kafka.testkit import produce_values
from reactive.state import BytesStore, StoreClosedError, StoreContext, Stores, registry_of
from tests.kafka.support import eventually, settings
from tests.state.support import Recording

if TYPE_CHECKING:
    from connectors.kafka import ConsumerSettings
    from reactive import Materializer

pytestmark = pytest.mark.kafka


class Price:
    """A value MessagePack (the store's default serde) cannot serialize."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw


class DiskFull(Recording):
    """A store engine that refuses every write."""

    def put(self, key: bytes, value: bytes) -> None:
        raise OSError(28, "No space left on device")


def disk_full(engine: BytesStore, context: StoreContext) -> BytesStore:
    return DiskFull(engine, context, [])


def cannot_open(engine: BytesStore, context: StoreContext) -> BytesStore:
    raise PermissionError(13, "Permission denied", f"/state/{context.name}")


def table_settings(bootstrap: str, group: str | None = None) -> ConsumerSettings:
    return settings(bootstrap, group).with_key_deserializer(str_deserializer)


def notes(exc: BaseException) -> str:
    return "\n".join(getattr(exc, "__notes__", []))


async def test_a_global_table_fails_with_the_error_of_the_record_its_store_refused(
    kafka_bootstrap: str, kafka_topic_factory: Any, materializer: Materializer
) -> None:
    topic = await kafka_topic_factory(partitions=1)
    await produce_values(kafka_bootstrap, topic, ["3"], key="apple")
    s = table_settings(kafka_bootstrap).with_value_deserializer(Price)
    table = Tables.global_table(s, topic).run(materializer)

    with pytest.raises(TableNotReadyError, match="stopped before it caught up") as ready:
        await table.ready(timeout=15)
    with pytest.raises(TypeError, match="can not serialize 'Price' object") as done:
        await table.done
    assert ready.value.__cause__ is done.value
    assert (
        f"[global_table] table '{topic}-table' of topic '{topic}': cannot apply the record "
        "at partition 0 offset 0" in notes(done.value)
    )
    with pytest.raises(StoreClosedError, match="its stream failed with TypeError") as read:
        table.get("apple")
    assert read.value.__cause__ is done.value
    assert not table.is_open and f"{topic}-table" not in registry_of(materializer)
    await table.stop()  # already stopped: returns at once, the failure stays on done
    with pytest.raises(TypeError):
        await table.done


async def test_a_partitioned_table_fails_with_its_store_engines_error(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    kafka_group_id: str,
    materializer: Materializer,
) -> None:
    topic = await kafka_topic_factory(partitions=2)
    await produce_values(kafka_bootstrap, topic, ["1"], key="k", partition=1)
    store = Stores.in_memory("prices").with_layer(disk_full)
    table = Tables.table(table_settings(kafka_bootstrap, kafka_group_id), topic, store).run(
        materializer
    )

    with pytest.raises(OSError, match="No space left on device") as done:
        await table.done
    assert (
        f"[table] table 'prices' of topic '{topic}': cannot apply the record at partition 1 "
        "offset 0" in notes(done.value)
    )
    with pytest.raises(TableNotReadyError) as ready:
        await table.ready(timeout=1)
    assert ready.value.__cause__ is done.value
    with pytest.raises(StoreClosedError) as read:
        list(table.items())
    assert read.value.__cause__ is done.value
    assert "prices" not in registry_of(materializer)
    await table.stop()


async def test_an_unobserved_table_failure_is_logged_once_naming_the_stage(
    kafka_bootstrap: str,
    kafka_topic_factory: Any,
    materializer: Materializer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = await kafka_topic_factory(partitions=1)
    store = Stores.in_memory("locked").with_layer(cannot_open)
    table = Tables.global_table(table_settings(kafka_bootstrap), topic, store).run(materializer)
    await asyncio.wait([table.done])  # without retrieving the failure
    assert not table.is_open and table.partitions == frozenset()
    # The failure is reported when the table's done future is collected: once the stream
    # let go of the table (collected here, not during some later test).
    gone = weakref.ref(table)
    del table
    with caplog.at_level(logging.ERROR, logger="reactive"):
        await eventually(lambda: gc.collect() >= 0 and gone() is None)
    [record] = [r for r in caplog.records if "nobody observed" in r.getMessage()]
    assert record.getMessage().startswith("[global_table] a stream failed")
    assert record.exc_info is not None
    exc = record.exc_info[1]
    assert isinstance(exc, PermissionError) and exc.filename == "/state/locked"
    where = f"table 'locked' of topic '{topic}': cannot open its store for partitions [0]"
    assert where in notes(exc)
