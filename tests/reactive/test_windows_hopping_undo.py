"""Hopping windows' fast path undoes a half-applied element exactly: when ``aggregate``
raises in one of an element's windows, the windows it already updated get their previous
accumulators back, on both of ``_batch_hopping``'s loops (every window open:
``ts + grace > stream time``; some windows possibly closed: the checked loop)."""

from __future__ import annotations

from typing import Any

import pytest

from reactive import Attributes, Materializer, Sink, Source, TimeWindows, Windowed
from reactive._supervision import resuming_decider

Elem = tuple[str, float, int]


async def _run(materializer: Materializer, grace: float, elems: list[Elem], fast: bool) -> Any:
    def aggregate(acc: tuple[int, ...], e: Elem) -> tuple[int, ...]:
        if e[2] == 3 and len(acc) == 3:  # id 3 raises in [0, 10) only, after [5, 15)
            raise ValueError("bad")
        return (*acc, e[2])

    return await (
        Source.from_iterable(elems)
        .windowed(
            TimeWindows.of(10).advance_by(5).grace(grace),
            key=lambda e: e[0],
            timestamp=lambda e: e[1],
            zero=tuple,
            aggregate=aggregate,
            idle_timeout=None if fast else 1e9,  # a timeout that never elapses: general path
        )
        .with_attributes(Attributes.supervision_strategy(resuming_decider))
        .run_with(Sink.seq(), materializer)
    )


@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize(
    ("grace", "last_ts"),
    [
        (1, 6.0),  # ts + grace > stream time: the unchecked loop
        (0, 6.0),  # grace 0: the checked loop
        (0.5, 5.5),  # 0.5 s behind stream time, grace 0.5: the checked loop
    ],
)
async def test_a_raising_aggregate_restores_the_windows_it_already_updated(
    materializer: Materializer, grace: float, last_ts: float, fast: bool
) -> None:
    # id 3 is in [5, 15) (updated first, holding (1, 2): restored) and [0, 10) (raises).
    elems = [("k", 1.0, 0), ("k", 6.0, 1), ("k", 6.0, 2), ("k", last_ts, 3)]
    got = await _run(materializer, grace, elems, fast)
    assert got == [
        Windowed("k", -5, 5, (0,)),
        Windowed("k", 0, 10, (0, 1, 2)),
        Windowed("k", 5, 15, (1, 2)),
    ]


async def test_a_raising_aggregate_in_a_new_window_fails_the_stream_unchained(
    materializer: Materializer,
) -> None:
    # The unchecked loop finds a bucket by subscript and a new one by KeyError: user code
    # runs outside that handler, so the user's error carries no KeyError context.
    def aggregate(acc: int, e: Elem) -> int:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad") as info:
        await (
            Source.single(("k", 1.0, 0))
            .windowed(
                TimeWindows.of(10).advance_by(5).grace(1),
                key=lambda e: e[0],
                timestamp=lambda e: e[1],
                zero=int,
                aggregate=aggregate,
            )
            .run_with(Sink.seq(), materializer)
        )
    assert info.value.__context__ is None
