"""Framing.delimiter's batch hand-over against its element path and a reference split.

A probe (which takes batches of at most what it asked for) pulls the frames with random
demands, so every way a batch is cut from the parsed frames is taken: the whole rest of
the queue, most of it (copied once, then trimmed), a small slice, one frame; with the
fast paths off, frames go one at a time. Both runs and a plain ``bytes.split`` reference
give the same frames, in the same order, then the same completion or error.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Materializer, Source
from reactive.io import Framing, FramingError
from reactive.testkit import TestSink

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    """``data`` cut at the given positions (any order, duplicates give empty chunks)."""
    points = sorted(c % (len(data) + 1) for c in cuts)
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


def reference(data: bytes, d: bytes, mx: int, allow_truncation: bool) -> tuple[list[bytes], bool]:
    """The frames before the first error, and whether the stream fails."""
    parts = data.split(d)
    rest = parts.pop()
    out = []
    for p in parts:
        if len(p) > mx:
            return out, True
        out.append(p)
    if rest:
        if not allow_truncation or len(rest) > mx:
            return out, True
        out.append(rest)
    return out, False


async def pull_with(
    chunks: list[bytes],
    d: bytes,
    mx: int,
    allow_truncation: bool,
    demands: list[int],
    expected: int,
    fails: bool,
    fast_paths: bool,
) -> tuple[list[Any], BaseException | None]:
    """Run the chunks through ``Framing.delimiter`` into a probe that asks for
    ``demands`` in turn (cycled): the ``expected`` frames it got, then the error the
    stream must end with if ``fails`` (else it must complete; None)."""
    async with Materializer(fast_paths=fast_paths) as mat:
        sub = (
            Source.from_iterable(chunks)
            .via(Framing.delimiter(d, mx, allow_truncation))
            .run_with(TestSink.probe(), mat)
        )
        out: list[Any] = []
        for k in itertools.cycle(demands):
            sub.request(k)
            m = min(k, expected - len(out))
            out += await sub.expect_next_n(m)
            if len(out) == expected:
                if m == k:
                    sub.request(1)  # the end is signalled on a pull
                break
        if fails:
            return out, await sub.expect_error()
        await sub.expect_complete()
        return out, None


@SETTINGS
@given(
    frames=st.lists(st.binary(max_size=6), max_size=80),
    d=st.sampled_from([b"\n", b"\r\n", b"ab"]),
    tail=st.binary(max_size=4),
    mx=st.integers(1, 8),
    allow_truncation=st.booleans(),
    cuts=st.lists(st.integers(0, 10_000), max_size=4),
    demands=st.lists(st.integers(1, 70), min_size=1, max_size=6),
)
async def test_batches_of_any_demand_give_the_reference_frames(
    frames: list[bytes],
    d: bytes,
    tail: bytes,
    mx: int,
    allow_truncation: bool,
    cuts: list[int],
    demands: list[int],
) -> None:
    data = b"".join(f + d for f in frames) + tail
    expected, fails = reference(data, d, mx, allow_truncation)
    chunks = split(data, cuts)
    n = len(expected)
    fast = await pull_with(chunks, d, mx, allow_truncation, demands, n, fails, True)
    slow = await pull_with(chunks, d, mx, allow_truncation, demands, n, fails, False)
    assert fast[0] == slow[0] == expected
    assert repr(fast[1]) == repr(slow[1])
    assert fast[1] is None or isinstance(fast[1], FramingError)


async def test_a_batch_cut_from_most_of_a_queue_then_its_rest() -> None:
    """Ten frames in one chunk pulled 6 then 4 at a time: the first batch is the queue
    copied and trimmed, the second the rest of it; 3 at a time: slices, then the last
    frame alone."""
    data = b"".join(b"%d\n" % i for i in range(10))
    want = [b"%d" % i for i in range(10)]
    for demands in ([6, 4], [3], [1, 9]):
        got, err = await pull_with([data], b"\n", 4, False, demands, 10, False, True)
        assert err is None
        assert got == want, demands
