"""``StoreSpec.commit_interval``: a windowed operator writes its cache as a batch at the
latest every ``commit_interval`` seconds of the materializer's clock, however few elements
came (Kafka Streams' ``commit.interval.ms``); and, with Kafka contexts, a window goes out
once the batch that stored the element closing it is acknowledged, so it carries a commit
point past that element (the pending e2e report: a quiet partition committed nothing).

Timed on ``ManualClock``; acknowledgements are futures the test completes."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import msgpack
import pytest

from connectors.kafka import CommittableOffset, CommittableOffsetBatch, TopicPartition
from reactive import Keep, Materializer, Sink, Source, SourceWithContext, TimeWindows, Windowed
from reactive.state import BytesStore, StoreContext, Stores
from reactive.testkit import ManualClock, TestSink, TestSource
from tests.state.support import Recording

if TYPE_CHECKING:
    from pathlib import Path


def writes(log: list[Any]) -> list[list[Any]]:
    """The write batches the layer saw, as lists of decoded keys (deletes marked '-')."""
    out = []
    for entry in log:
        if entry[0] == "write":
            out.append([("-" if v is None else "") + repr(msgpack.unpackb(k)) for k, v in entry[1]])
    return out


def per_ten(source: Any, store: Any) -> Any:
    return source.windowed(
        TimeWindows.of(10),
        key=lambda c: c[0],
        timestamp=lambda c: c[1],
        zero=lambda: 0,
        aggregate=lambda n, c: n + 1,
        store=store,
    )


def test_the_setting_is_checked_and_defaults_to_kafka_streams_30_s() -> None:
    assert Stores.in_memory("w").commit_interval == 30.0
    assert Stores.persistent("w", "/tmp/x", commit_interval=2).commit_interval == 2
    assert Stores.in_memory("w").with_commit_interval(None).commit_interval is None
    for bad in (0, -1, float("inf"), float("nan"), True, "5"):
        with pytest.raises(ValueError, match="commit_interval must be a number of seconds"):
            Stores.in_memory("w", commit_interval=bad)  # type: ignore[arg-type]


async def test_the_cache_is_written_every_commit_interval_whatever_the_volume() -> None:
    log: list[Any] = []

    def recording(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        return Recording(engine, ctx, log)

    store = Stores.in_memory("w", commit_interval=5).with_layer(recording)  # cache 10,000
    clock = ManualClock()
    async with Materializer(clock=clock) as mat:
        pub, sub = per_ten(TestSource.probe(), store).to_mat(TestSink.probe(), Keep.both).run(mat)
        sub.request(10)
        pub.send_next(("a", 1))
        pub.send_next(("b", 2))
        await pub.expect_request()
        await clock.advance(4.9)
        assert writes(log) == []  # two elements: far from cache_size, before the timer
        await clock.advance(0.1)
        assert writes(log) == [["['k', 0]", "['t', 0, 0]", "['k', 1]", "['t', 1, 0]", "['m']"]]
        await clock.advance(5)  # nothing changed since: no batch
        assert len(writes(log)) == 1
        pub.send_next(("a", 3))
        await pub.expect_request()
        await clock.advance(5)
        assert writes(log)[1] == ["['t', 0, 0]", "['m']"]
        pub.send_complete()
        assert [await sub.expect_next(), await sub.expect_next()] == [
            Windowed("a", 0, 10, 2),
            Windowed("b", 0, 10, 1),
        ]
        await sub.expect_complete()


async def test_no_timer_with_commit_interval_none() -> None:
    log: list[Any] = []

    def recording(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        return Recording(engine, ctx, log)

    store = Stores.in_memory("w", commit_interval=None).with_layer(recording)
    clock = ManualClock()
    async with Materializer(clock=clock) as mat:
        pub, sub = per_ten(TestSource.probe(), store).to_mat(TestSink.probe(), Keep.both).run(mat)
        sub.request(10)
        pub.send_next(("a", 1))
        await pub.expect_request()
        await clock.advance(3600)
        assert writes(log) == []
        sub.cancel()
        await pub.expect_cancellation()
    assert len(writes(log)) == 1  # at the stop


# -- with Kafka contexts ------------------------------------------------------------------------
class Committed:
    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Any) -> None:
        self.commits.append(dict(offsets))


class Acking(Recording):
    """A changelog-like layer: each write batch is durable once the test acks it."""

    def __init__(self, inner: BytesStore, context: StoreContext, log: list[Any]) -> None:
        super().__init__(inner, context, log)
        self.acks: list[asyncio.Future[None]] = []
        self.written = 0

    def write(self, ops: Any) -> None:
        super().write(ops)
        self.written += 1

    def durable(self) -> asyncio.Future[None] | None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(fut)
        return fut

    def ack_all(self) -> None:
        for f in self.acks:
            if not f.done():
                f.set_result(None)


def point(batch: CommittableOffsetBatch) -> dict[int, int]:
    return {gtp.partition: o for gtp, o in batch.offsets().items()}


async def _settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def test_a_window_waits_for_the_batch_storing_its_closing_record_and_carries_it() -> None:
    committer = Committed()
    log: list[Any] = []
    layers: list[Acking] = []

    def acking(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        layers.append(Acking(engine, ctx, log))
        return layers[-1]

    store = Stores.in_memory("w", commit_interval=5).with_layer(acking)  # cache 10,000
    clock = ManualClock()
    clicks = [("a", 1), ("b", 2), ("a", 3), ("a", 11)]  # offset 3 closes [0, 10)
    async with Materializer(clock=clock) as mat:
        pub, sub = (
            per_ten(SourceWithContext.from_tuples(TestSource.probe()), store)
            .as_source()
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        sub.request(10)
        for i, c in enumerate(clicks):
            pub.send_next((c, CommittableOffset("g", "clicks", 0, i, committer)))
        await _settle()
        (layer,) = layers
        # The closing record was handled: its batch is written at once (not after 10,000
        # elements), and the windows wait for its acknowledgement.
        assert layer.written == 1
        await sub.expect_no_message(0)
        layer.ack_all()
        got = [await sub.expect_next(), await sub.expect_next()]
        assert [w for w, _ in got] == [Windowed("a", 0, 10, 2), Windowed("b", 0, 10, 1)]
        # Both carry a point past the closing record (offset 3): committing it commits 4.
        assert [point(b) for _, b in got] == [{0: 3}, {0: 3}]
        await got[1][1].commit()
        assert committer.commits == [{TopicPartition("clicks", 0): 4}]
        # Later records, in the open window, are written by the timer.
        pub.send_next((("a", 12), CommittableOffset("g", "clicks", 0, 4, committer)))
        await _settle()
        assert layer.written == 1
        await clock.advance(5)
        assert layer.written >= 2
        pub.send_complete()
        await _settle()
        layer.ack_all()
        (w, b) = await sub.expect_next()
        assert (w, point(b)) == (Windowed("a", 10, 20, 2), {0: 4})
        await sub.expect_complete()


async def test_an_acknowledgement_that_fails_fails_the_waiting_windows_stage() -> None:
    committer = Committed()
    layers: list[Acking] = []

    def acking(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        layers.append(Acking(engine, ctx, []))
        return layers[-1]

    store = Stores.in_memory("w").with_layer(acking)
    pairs = [
        (c, CommittableOffset("g", "clicks", 0, i, committer))
        for i, c in enumerate([("a", 1), ("a", 11)])
    ]
    async with Materializer() as mat:
        pub, sub = (
            per_ten(SourceWithContext.from_tuples(TestSource.probe()), store)
            .as_source()
            .to_mat(TestSink.probe(), Keep.both)
            .run(mat)
        )
        sub.request(10)
        for p in pairs:
            pub.send_next(p)
        await _settle()
        layers[0].acks[0].set_exception(RuntimeError("broker gone"))
        err = await sub.expect_error()
        assert "broker gone" in str(err)


async def test_without_a_changelog_nothing_waits(tmp_path: Path) -> None:
    # A persistent store is durable once written: the windows go out with the point of
    # the batch written when they closed, past the closing record (offset 2).
    committer = Committed()
    pairs = [
        (c, CommittableOffset("g", "clicks", 0, i, committer))
        for i, c in enumerate([("a", 1), ("b", 2), ("a", 11)])
    ]
    source = SourceWithContext.from_tuples(Source.from_iterable(pairs))
    out = await per_ten(source, Stores.persistent("w", tmp_path)).run_with(Sink.seq())
    assert [(w.key, point(b)) for w, b in out][:2] == [("a", {0: 2}), ("b", {0: 2})]
