"""The hooks a changelog uses, with a layer under the test's control: ``prepare`` (no
element is pulled before it is done) and ``durable`` (a with-context keyed operator emits
an element's output, with its context, only once that element's writes are durable), and
``StoreSpec.for_partition``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgpack
import pytest

from reactive import Keep, Materializer, Sink, Source, SourceWithContext
from reactive.state import BytesStore, StoreContext, Stores, StoreSpec
from reactive.testkit import TestSink, TestSource
from tests.state.support import Recording


class Gated(Recording):
    """A layer whose ``prepare`` waits for ``ready`` and whose writes are durable only when
    the test resolves their futures (``acks``)."""

    def __init__(self, inner: BytesStore, context: StoreContext, log: list[Any]) -> None:
        super().__init__(inner, context, log)
        self.ready = asyncio.Event()
        self.acks: list[asyncio.Future[None]] = []
        self.context = context

    def prepare(self) -> Any:
        return self.ready.wait()

    def write(self, ops: Any) -> None:
        super().write(ops)
        self.acks.append(asyncio.get_running_loop().create_future())

    @property
    def writes(self) -> list[list[tuple[Any, Any]]]:
        """Each write's ``(key, value)`` updates, deserialized, in order."""
        return [
            [(msgpack.unpackb(k), None if v is None else msgpack.unpackb(v)) for k, v in e[1]]
            for e in self.log
            if e[0] == "write"
        ]

    def durable(self) -> asyncio.Future[None] | None:
        pending = [f for f in self.acks if not f.done()]
        return pending[-1] if pending else None

    def metrics(self) -> dict[str, Any]:
        return {"writes": len(self.acks)}


def gated(sp: StoreSpec[Any, Any]) -> tuple[StoreSpec[Any, Any], list[Gated]]:
    layers: list[Gated] = []

    def layer(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        g = Gated(engine, ctx, [])
        layers.append(g)
        return g

    return sp.with_layer(layer), layers


async def opened(layers: list[Gated]) -> Gated:
    for _ in range(200):
        if layers:
            return layers[0]
        await asyncio.sleep(0.005)
    raise AssertionError("the store was never opened")


def first(pair: Any) -> Any:
    return pair[0]


def counted(spec: StoreSpec[Any, Any], materializer: Materializer) -> Any:
    """(publisher probe, view, subscriber probe) of a with-context count by word; the probe
    sends ``(word, context)`` pairs."""
    (up, view), down = (
        SourceWithContext.from_tuples(TestSource.probe())
        .aggregate_by_key(
            spec, key=lambda w: w, zero=lambda: 0, aggregate=lambda n, _: n + 1, combine=Keep.both
        )
        .as_source()
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    return up, view, down


async def test_no_element_is_pulled_before_the_store_is_prepared(
    materializer: Materializer,
) -> None:
    spec, layers = gated(Stores.in_memory("counts"))
    (up, view), down = (
        TestSource.probe()
        .aggregate_by_key(spec, lambda w: w, lambda: 0, lambda n, _: n + 1, Keep.both)
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    down.request(5)
    await up.expect_no_message(0.05)  # no request while the layer prepares
    assert view.metrics() == {"writes": 0}
    layers[0].ready.set()
    await up.expect_request()
    up.send_next("a")
    await down.expect_next(("a", 1))
    up.send_complete()
    await down.expect_complete()
    assert view.metrics() == {}  # closed


async def test_reads_during_the_restore_are_not_cached_past_it(
    materializer: Materializer,
) -> None:
    spec, layers = gated(Stores.in_memory("counts"))
    (up, view), down = (
        TestSource.probe()
        .stateful_map_by_key(
            spec, lambda w: w, lambda n, w: ((n or 0) + 1, (w, (n or 0) + 1)), Keep.both
        )
        .to_mat(TestSink.probe(), Keep.both)
        .run(materializer)
    )
    layer = await opened(layers)
    assert view.get("a") is None  # queried while restoring: not there yet
    store = Stores.in_memory("x").open()
    layer.inner.put(store._key("a"), store._value(5))  # what the restore brings
    layer.ready.set()
    down.request(1)
    up.send_next("a")
    await down.expect_next(("a", 6))
    up.send_complete()
    await down.expect_complete()


async def test_outputs_wait_for_durable_writes_and_keep_their_contexts(
    materializer: Materializer,
) -> None:
    spec, layers = gated(Stores.in_memory("counts"))
    up, view, down = counted(spec, materializer)
    layer = await opened(layers)
    layer.ready.set()
    down.request(10)
    up.send_next(("a", "c1"))
    await asyncio.sleep(0.05)
    # Nothing in flight: the first element's update is written through at once.
    assert len(layer.acks) == 1 and layer.writes == [[("a", 1)]]
    up.send_next(("b", "c2"))
    up.send_next(("a", "c3"))
    await asyncio.sleep(0.05)
    # Processed ahead (the view sees them) while the first write awaits its ack; their
    # updates wait in the cache for it, to go to the store as one write.
    assert view.get("a") == 2 and view.get("b") == 1
    assert len(layer.acks) == 1
    await down.expect_no_message(0.05)  # nothing durable yet
    layer.acks[0].set_result(None)
    await down.expect_next((("a", 1), "c1"))
    await down.expect_no_message(0.05)  # c2 and c3 wait for their own write
    assert len(layer.acks) == 2 and layer.writes[1] == [("b", 1), ("a", 2)]
    up.send_next(("a", "c4"))  # arrives while the second write is in flight
    await asyncio.sleep(0.05)
    up.send_complete()  # writes c4's update: the stream completes once it is durable
    await asyncio.sleep(0.05)
    assert len(layer.acks) == 3 and layer.writes[2] == [("a", 3)]
    layer.acks[2].set_result(None)
    await down.expect_no_message(0.05)  # in order: c2 and c3 still wait
    layer.acks[1].set_result(None)
    await down.expect_next((("b", 1), "c2"))
    await down.expect_next((("a", 2), "c3"))
    await down.expect_next((("a", 3), "c4"))
    await down.expect_complete()


async def test_a_failed_write_fails_the_stream(materializer: Materializer) -> None:
    spec, layers = gated(Stores.in_memory("counts"))
    up, _view, down = counted(spec, materializer)
    (await opened(layers)).ready.set()
    down.request(10)
    up.send_next(("a", "c1"))
    await asyncio.sleep(0.05)
    layers[0].acks[0].set_exception(OSError("broker said no"))
    err = await down.expect_error(timeout=2)
    assert isinstance(err, OSError) and "broker said no" in str(err)


async def test_a_failed_prepare_fails_the_stream(materializer: Materializer) -> None:
    class Broken(Gated):
        def prepare(self) -> Any:
            async def boom() -> None:
                raise RuntimeError("restore failed")

            return boom()

    spec = Stores.in_memory("counts").with_layer(lambda e, c: Broken(e, c, []))
    done = (
        Source.from_iterable(["a"])
        .aggregate_by_key(spec, lambda w: w, lambda: 0, lambda n, _: n + 1)
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(RuntimeError, match="restore failed"):
        await done


async def test_stateful_map_by_key_with_context_and_plain_pairs(
    materializer: Materializer,
) -> None:
    done = (
        Source.from_iterable([("a", 1), ("b", 2), ("a", 3)])
        .as_source_with_context(lambda p: p[1])
        .map(first)
        .stateful_map_by_key(
            Stores.in_memory("s"),
            key=lambda w: w,
            f=lambda v, w: ((v or 0) + 1, w * ((v or 0) + 1)),
        )
        .as_source()
        .run_with(Sink.seq(), materializer)
    )
    assert await done == [("a", 1), ("b", 2), ("aa", 3)]


async def test_not_pairs_is_a_clear_error(materializer: Materializer) -> None:
    done = (
        SourceWithContext.from_tuples(Source.from_iterable([1]))
        .aggregate_by_key(
            Stores.in_memory("s"), key=lambda w: w, zero=lambda: 0, aggregate=lambda n, _: n + 1
        )
        .as_source()
        .run_with(Sink.seq(), materializer)
    )
    with pytest.raises(TypeError, match=r"expected \(element, context\) pairs.*got 1"):
        await done


def test_for_partition_sets_the_context_and_the_location(tmp_path: Any) -> None:
    log: list[Any] = []
    spec = Stores.persistent("s", tmp_path).for_partition(2)
    assert spec.location(StoreContext("s", "", 2)) == tmp_path / "s.2"
    with spec.with_layer(lambda e, c: Recording(e, c, log)).open() as store:
        store.put("k", 1)
    assert log[0] == ("open", StoreContext("s", "", 2))
    with pytest.raises(ValueError, match="partition must be an int >= 0"):
        Stores.in_memory("s").for_partition(-1)
