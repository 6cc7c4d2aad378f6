"""Differential property tests of the batch path through ``group_by`` /
``merge_substreams`` (``_GroupByBatchLogic``, and ``flat_map_merge``'s share of the demand
for each substream).

Random inputs ``(i, v)`` keyed by ``v % keys`` into ``group_by(max_substreams, key)``, each
substream running ``map(f)``, sometimes a ``filter`` and a ``take(t)`` (which cancels the
substream mid-batch), sometimes behind an async boundary; merged again and read by a
``TestSink`` probe that requests random amounts (and sometimes cancels). Failures are
injected into the key function or into ``f`` at a random element (mid-batch), under the
stop or the resume decider. Each graph runs with fast paths on (the batch path) and off
(the element-at-a-time ``_GroupByLogic``) and is checked against a plain Python reference
of each key's output: ``merge_substreams`` interleaves substreams as they come, so what is
compared is each key's subsequence. A run that completes delivers every key's reference
output exactly; one that fails delivers a prefix of each (then one of the failures the
reference can reach); one cancelled by the probe delivers prefixes whose total is what the
probe took.
"""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reactive import (
    Attributes,
    Keep,
    Materializer,
    Sink,
    Source,
    Supervision,
    TooManySubstreamsError,
)
from reactive._ops import nesting
from reactive.testkit import TestSink
from tests.reactive.test_junction_batches import drive_on_own_materializer

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

INPUTS = st.lists(st.integers(0, 30), max_size=150)
DEMAND = st.lists(st.integers(1, 70), min_size=1, max_size=6)


class KeyFailed(Exception):
    """The failure injected into the key function."""


class FFailed(Exception):
    """The failure injected into the substreams' ``map``."""


Elem = tuple[int, int]


def build(
    xs: list[int],
    keys: int,
    max_sub: int,
    recreate: bool,
    fail: tuple[str, int] | None,
    resume: bool,
    filt: int | None,
    take: int | None,
    boundary: bool,
) -> Any:
    """The graph: ``(i, v)`` for each input, grouped by ``v % keys``, each substream
    ``[async_boundary] -> map(f) -> [filter] -> [take]``, merged into a probe."""

    def key(e: Elem) -> int:
        if fail == ("key", e[0]):
            raise KeyFailed(f"key at {e[0]}")
        return e[1] % keys

    def f(e: Elem) -> Elem:
        if fail == ("f", e[0]):
            raise FFailed(f"f at {e[0]}")
        return (e[0], e[1] * 3)

    sub: Any = Source.from_iterable(list(enumerate(xs))).group_by(max_sub, key, recreate)
    if boundary:
        sub = sub.async_boundary()
    sub = sub.map(f)
    if filt is not None:
        sub = sub.filter(lambda e: e[1] % filt != 0)
    if take is not None:
        sub = sub.take(take)
    graph = sub.merge_substreams().to_mat(TestSink.probe(), Keep.right)
    if resume:
        graph = graph.with_attributes(
            Attributes.supervision_strategy(lambda exc: Supervision.resume)
        )
    return graph


def reference(
    xs: list[int],
    keys: int,
    max_sub: int,
    fail: tuple[str, int] | None,
    resume: bool,
    filt: int | None,
    take: int | None,
) -> tuple[dict[int, list[Elem]], set[type[BaseException]]]:
    """Each key's output (what it delivers at most) and the failures a run may end with
    (empty: it completes). Element by element, without ``allow_recreation``: a key's
    substream taken ``take`` elements is cancelled and its key closed for good."""
    out: dict[int, list[Elem]] = {}
    opened: set[int] = set()
    done: set[int] = set()  # cancelled by take, or failed by f
    ends: set[type[BaseException]] = set()
    for i, v in enumerate(xs):
        if fail == ("key", i):
            if resume:
                continue
            ends.add(KeyFailed)
            break
        k = v % keys
        if k not in opened:
            if len(opened) >= max_sub:
                if resume:
                    continue
                ends.add(TooManySubstreamsError)
                break
            opened.add(k)
            out[k] = []
            if take == 0:
                done.add(k)
        if k in done:
            continue
        if fail == ("f", i):
            if resume:
                continue
            # The substream fails (and the stream with it), though group_by may run
            # ahead of it: the elements after it can still be delivered first.
            ends.add(FFailed)
            done.add(k)
            continue
        y = (i, v * 3)
        if filt is not None and y[1] % filt == 0:
            continue
        out[k].append(y)
        if take is not None and len(out[k]) >= take:
            done.add(k)
    return out, ends


def per_key(out: list[Elem], keys: int, xs: list[int]) -> dict[int, list[Elem]]:
    got: dict[int, list[Elem]] = {}
    for e in out:
        got.setdefault(xs[e[0]] % keys, []).append(e)
    return got


@SETTINGS
@given(
    xs=INPUTS,
    keys=st.integers(1, 6),
    max_sub=st.integers(0, 7),
    fail=st.one_of(st.none(), st.tuples(st.sampled_from(["key", "f"]), st.integers(0, 150))),
    resume=st.booleans(),
    filt=st.one_of(st.none(), st.integers(2, 4)),
    take=st.one_of(st.none(), st.integers(0, 30)),
    boundary=st.booleans(),
    demand=DEMAND,
    cancel=st.booleans(),
)
# A substream cancelled by its take mid-batch, the keys beyond max_substreams resumed.
@example(
    xs=list(range(60)),
    keys=4,
    max_sub=3,
    fail=("key", 17),
    resume=True,
    filt=None,
    take=5,
    boundary=False,
    demand=[1000],
    cancel=False,
)
async def test_group_by_batches_match_the_element_path_and_python(
    xs: list[int],
    keys: int,
    max_sub: int,
    fail: tuple[str, int] | None,
    resume: bool,
    filt: int | None,
    take: int | None,
    boundary: bool,
    demand: list[int],
    cancel: bool,
) -> None:
    expected, ends = reference(xs, keys, max_sub, fail, resume, filt, take)
    results = []
    for fast in (True, False):
        graph = build(xs, keys, max_sub, False, fail, resume, filt, take, boundary)
        out, end = await drive_on_own_materializer(graph, "group-by-batches", fast, demand, cancel)
        got = per_key(out, keys, xs)
        assert set(got) <= set(expected), (fast, got, expected)
        if end == "complete":
            assert not ends, (fast, end, ends)
            assert got == {k: v for k, v in expected.items() if v}, fast
        else:
            for k, g in got.items():
                assert g == expected[k][: len(g)], (fast, k, g, expected[k])
            if end == "cancelled":
                assert cancel and len(out) == sum(demand[:-1]), fast
            else:
                assert type(end) in ends, (fast, end, ends)
        results.append((got, end))
    (fast_got, fast_end), (slow_got, slow_end) = results
    if fast_end == "complete" or slow_end == "complete":
        assert fast_end == slow_end and fast_got == slow_got


@SETTINGS
@given(
    xs=INPUTS,
    keys=st.integers(1, 6),
    take=st.integers(0, 8),
    boundary=st.booleans(),
    demand=DEMAND,
)
async def test_recreated_substreams_deliver_each_key_in_order(
    xs: list[int], keys: int, take: int, boundary: bool, demand: list[int]
) -> None:
    """``allow_closed_substream_recreation``: a key's substream cancelled by its take
    opens again for the key's next element (which elements reach the new one depends on
    when the cancellation arrives, on either path): each key delivers an ordered part of
    its elements, in runs of at most ``take``, and the stream completes."""
    for fast in (True, False):
        graph = build(xs, keys, keys, True, None, False, None, take, boundary)
        out, end = await drive_on_own_materializer(graph, "group-by-recreate", fast, demand, False)
        assert end == "complete", (fast, end)
        got = per_key(out, keys, xs)
        for k, g in got.items():
            mine = [(i, v * 3) for i, v in enumerate(xs) if v % keys == k]
            pos = [mine.index(e) for e in g]
            assert pos == sorted(set(pos)), (fast, k, g)
        if take:
            # Each key's first substream takes its first ``take`` elements.
            for k in got:
                mine = [(i, v * 3) for i, v in enumerate(xs) if v % keys == k]
                assert got[k][:take] == mine[:take], (fast, k)
        else:
            assert out == [], fast


async def test_keys_that_alternate_go_in_chunks_of_the_substreams_demands(
    monkeypatch: Any,
) -> None:
    """The batch path: with keys that alternate (``x % 8``) each substream is pushed
    chunks as large as its demand allows (the dispatch waits for the end of the island's
    burst, when the other substreams pulled too), not one element per pull."""
    pushed: list[int] = []
    push = nesting.SubSourceOutlet.push

    def spy(self: Any, elem: Any) -> None:
        pushed.append(len(elem) if type(elem) is nesting._Batch else 1)
        push(self, elem)

    monkeypatch.setattr(nesting.SubSourceOutlet, "push", spy)
    async with Materializer(fast_paths=True) as mat:
        total = await (
            Source.from_iterable(range(20_000))
            .group_by(8, lambda x: x % 8)
            .map(lambda x: 2 * x)
            .merge_substreams()
            .run_with(Sink.fold(0, lambda a, x: a + x), mat)
        )
    assert total == 2 * sum(range(20_000))
    assert sum(pushed) == 20_000
    assert len(pushed) < 20_000 // 16, len(pushed)


async def test_group_by_reads_no_further_ahead_than_the_element_path() -> None:
    """Back pressure: a probe taking a few elements at a time, either path reads
    upstream no more than the substreams' demands (their shares of the probe's demand,
    at least one each) and the element waiting for its substream."""
    reads: dict[bool, list[int]] = {}
    for fast in (True, False):
        read: list[int] = []

        def gen(read: list[int] = read) -> Any:
            for i in range(1000):
                read.append(i)
                yield i

        async with Materializer(fast_paths=fast) as mat:
            probe = (
                Source.from_iterable(gen())
                .group_by(4, lambda x: x % 4)
                .merge_substreams()
                .run_with(TestSink.probe(), mat)
            )
            seen: list[int] = []
            counts = []
            for n in (3, 5, 20):
                probe.request(n)
                seen += await probe.expect_next_n(n)
                for _ in range(50):
                    await asyncio.sleep(0)
                counts.append(len(read))
            probe.cancel()
        reads[fast] = counts
        for k in range(4):
            mine = [x for x in seen if x % 4 == k]
            assert mine == sorted(mine)
    # Taken so far (28 in all), plus what the substreams asked for and did not get yet
    # (their shares of the probe's last demand, 20, or one element each), the element
    # waiting for its substream and the source's own look-ahead: far below a batch.
    for fast, counts in reads.items():
        assert counts[-1] <= 28 + 20 + 4 + 2, (fast, counts)
