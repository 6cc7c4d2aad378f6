"""``SourceWithContext.windowed(..., store=...)`` with Kafka offsets: the commit point
follows the store's acknowledgements (past records still in open windows), an emitted
window stays in the store, marked, until downstream commits a later commit point, and a
restart emits the marked windows again and goes on with the restored open windows.

The contexts are real ``CommittableOffset``s whose committer is a ``KafkaCommitterRef`` of
the test (it records what is committed); the embedded-broker version is
``tests/kafka/test_windows_store_crash.py``.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.kafka import CommittableOffset, CommittableOffsetBatch, TopicPartition
from reactive import (
    EmitStrategy,
    Keep,
    KillSwitches,
    Materializer,
    SessionWindows,
    Sink,
    Source,
    SourceWithContext,
    TimeWindows,
)
from reactive.state import BytesStore, StoreContext, Stores
from tests.state.support import Recording

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path


class Committed:
    """A consumer's committer, as far as offsets go: records every commit."""

    def __init__(self) -> None:
        self.commits: list[dict[TopicPartition, int]] = []

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))


def offsets(committer: Committed, clicks: list[tuple[str, int]], start: int = 0) -> list[Any]:
    return [
        (c, CommittableOffset("g", "clicks", 0, start + i, committer)) for i, c in enumerate(clicks)
    ]


def per_ten(source: Any, store: Any) -> Any:
    return SourceWithContext.from_tuples(source).windowed(
        TimeWindows.of(10),
        key=lambda c: c[0],
        timestamp=lambda c: c[1],
        zero=lambda: 0,
        aggregate=lambda n, c: n + 1,
        store=store,
    )


def point(batch: CommittableOffsetBatch) -> dict[int, int]:
    return {gtp.partition: o for gtp, o in batch.offsets().items()}


def marks(spec: Any) -> list[Any]:
    with spec.open() as kv:
        return sorted(k[1] for k in kv if k[0] == "e")


_dirs = itertools.count()

CLICKS = [("a", 1), ("b", 2), ("a", 11), ("b", 12), ("a", 21)]


async def test_the_commit_point_passes_records_of_open_windows_once_stored(
    tmp_path: Path,
) -> None:
    committer = Committed()
    spec = Stores.persistent("w", tmp_path, cache_size=0)
    out = await per_ten(Source.from_iterable(offsets(committer, CLICKS)), spec).run_with(Sink.seq())
    got = [(w.key, w.start, w.value, point(b)) for w, b in out]
    # a's [0, 10) goes out at offset 2 (time 11): offset 2 is in a's open [10, 20), but
    # its state is stored, so the point passes it (without a store it would stay at 1).
    assert got[:4] == [
        ("a", 0, 1, {0: 2}),
        ("b", 0, 1, {0: 2}),
        ("a", 10, 1, {0: 4}),
        ("b", 10, 1, {0: 4}),
    ]
    # Every emitted window is still marked: nothing was committed.
    assert marks(spec) == [0, 1, 2, 3, 4]


async def test_a_mark_goes_once_a_later_point_is_committed() -> None:
    committer = Committed()
    spec = Stores.in_memory("w", cache_size=0)
    pairs = offsets(committer, CLICKS)
    got: list[Any] = []
    log: list[Any] = []

    def recording(engine: BytesStore, ctx: StoreContext) -> BytesStore:
        return Recording(engine, ctx, log)

    switch, done = (
        per_ten(Source.from_iterable(pairs).concat(Source.never()), spec.with_layer(recording))
        .as_source()
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.foreach(got.append), Keep.both)
        .run(Materializer())
    )
    for _ in range(200):
        if len(got) == 4:
            break
        await asyncio.sleep(0.005)
    assert [point(b) for _, b in got] == [{0: 2}, {0: 2}, {0: 4}, {0: 4}]

    def deleted_marks() -> list[int]:
        keys = [
            msgpack.unpackb(k)
            for entry in log
            if entry[0] == "write"
            for k, v in entry[1]
            if v is None
        ]
        return [k[1] for k in keys if k[0] == "e"]

    # Committing the first window's point (2) confirms nothing: the second window was
    # emitted with the same point, downstream may not have handled it yet.
    await got[0][1].commit()
    # Committing 4 (emitted after the first two): the first two are surely handled.
    await got[2][1].commit()
    assert committer.commits == [{TopicPartition("clicks", 0): 3}, {TopicPartition("clicks", 0): 5}]
    switch.abort(RuntimeError("stop"))
    with pytest.raises(RuntimeError):
        await done
    assert deleted_marks() == [0, 1]
    # Within a write, an emitted window's mark comes before the delete of its record.
    for entry in log:
        if entry[0] == "write":
            ops = [(msgpack.unpackb(k)[0], v is None) for k, v in entry[1]]
            if ("t", True) in ops and ("e", False) in ops:
                assert ops.index(("e", False)) < ops.index(("t", True)), ops


async def test_after_a_restart_unconfirmed_windows_come_again_and_open_ones_go_on(
    tmp_path: Path,
) -> None:
    committer = Committed()
    spec = Stores.persistent("w", tmp_path, cache_size=0)
    got: list[Any] = []
    switch, done = (
        per_ten(Source.from_iterable(offsets(committer, CLICKS[:3])).concat(Source.never()), spec)
        .as_source()
        .via_mat(KillSwitches.single(), Keep.right)
        .to_mat(Sink.foreach(got.append), Keep.both)
        .run(Materializer())
    )
    for _ in range(200):
        if len(got) == 2:
            break
        await asyncio.sleep(0.005)
    await got[0][1].commit()  # offsets up to 2: a's open [10, 20) holds offset 2
    switch.abort(RuntimeError("crash"))
    with pytest.raises(RuntimeError):
        await done
    # Restarted from the committed offset (3): a's [10, 20) comes back from the store.
    out = await per_ten(
        Source.from_iterable(offsets(committer, CLICKS[3:], start=3)), spec
    ).run_with(Sink.seq())
    assert [(w.key, w.start, w.value) for w, _ in out] == [
        ("a", 0, 1),  # emitted before the stop, not confirmed: again
        ("b", 0, 1),
        ("a", 10, 1),
        ("b", 10, 1),
        ("a", 20, 1),
    ]


def test_on_window_close_only_and_no_store_that_a_restart_loses(tmp_path: Path) -> None:
    src = SourceWithContext.from_tuples(Source.empty())
    with pytest.raises(ValueError, match="on_window_close only"):
        src.windowed(
            TimeWindows.of(1),
            emit=EmitStrategy.on_window_update(),
            store=Stores.persistent("w", tmp_path),
        )
    with pytest.raises(ValueError, match="store 'w' is in memory with no changelog"):
        src.windowed(TimeWindows.of(1), store=Stores.in_memory("w"))


async def test_pair_contexts_are_refused_with_a_store(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="needs Kafka CommittableOffset contexts"):
        await (
            SourceWithContext.from_tuples(Source.single((("a", 1), ("p", 0))))
            .windowed(
                TimeWindows.of(1),
                timestamp=lambda c: c[1],
                store=Stores.persistent("w", tmp_path),
            )
            .run_with(Sink.ignore())
        )


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 60)), max_size=40),
    spec=st.sampled_from(
        [TimeWindows.of(10), TimeWindows.of(10).advance_by(5).grace(3), SessionWindows.with_gap(4)]
    ),
    cache=st.sampled_from([0, 3, 10_000]),
)
async def test_same_windows_as_without_a_store_and_points_never_behind(
    tmp_path: Path, data: Any, spec: Any, cache: int
) -> None:
    committer = Committed()
    pairs = offsets(committer, data)
    kw: dict[str, Any] = dict(
        key=lambda c: c[0],
        timestamp=lambda c: c[1],
        zero=lambda: 0,
        aggregate=lambda n, c: n + 1,
        merge=lambda a, b: a + b,
    )
    plain = await (
        SourceWithContext.from_tuples(Source.from_iterable(pairs))
        .windowed(spec, **kw)
        .run_with(Sink.seq())
    )
    store = Stores.persistent("w", tmp_path / str(next(_dirs)), cache_size=cache)
    stored = await (
        SourceWithContext.from_tuples(Source.from_iterable(pairs))
        .windowed(spec, store=store, **kw)
        .run_with(Sink.seq())
    )
    assert [w for w, _ in stored] == [w for w, _ in plain]
    points = [point(b).get(0, -1) for _, b in stored]
    assert points == sorted(points)  # never decreasing
    if stored:  # the last windows go out once the store holds every element
        assert points[-1] == len(data) - 1
    if cache == 0:
        # Written (and, here, durable) after every element: never behind the rule without
        # a store (which waits for the windows to go out). With a larger cache_size the
        # point moves once per write batch.
        assert all(p >= point(b).get(0, -1) for p, (_, b) in zip(points, plain, strict=True))
