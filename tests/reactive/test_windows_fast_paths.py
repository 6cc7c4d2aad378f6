"""The fast paths of ``windowed`` for tumbling and hopping windows (event time,
``on_window_close``: one loop per batch, windows in buckets by start) against the general
path, which the same
stage takes when ``idle_timeout`` is set: an idle timeout that never elapses changes no
result, so both must emit the same windows and the same late elements, on float sizes and
steps (where ``t // step`` rounds) and with an aggregate that raises in some of an
element's windows under ``resume`` or ``restart``."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Sink, Source, TimeWindows
from reactive._ops.windows import WindowedStage
from reactive._supervision import restarting_decider, resuming_decider

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

STEPS = st.sampled_from([0.1, 0.3, 0.7, 1, 2.5, 3])


@st.composite
def cases(draw: Any) -> tuple[TimeWindows, list[tuple[str, float, int]], frozenset[int]]:
    step = draw(STEPS)
    spec = TimeWindows.of(step * draw(st.integers(1, 6))).advance_by(step)  # 1: tumbling
    spec = spec.grace(draw(st.sampled_from([0, 0.2, 1, 4])))
    t = draw(st.floats(-50, 50, allow_nan=False))
    elems = []
    for i in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([0, 0.1, 0.25, 0.3, 1, 2.7]))
        elems.append((draw(st.sampled_from("abc")), t - draw(st.sampled_from([0, 0.1, 0.7, 3])), i))
    bad = frozenset(draw(st.sets(st.integers(0, 40), max_size=3)))
    return spec, elems, bad


async def _run(
    spec: TimeWindows, elems: list[Any], bad: frozenset[int], fast: bool, restart: bool
) -> Any:
    def aggregate(acc: tuple[int, ...], e: tuple[str, float, int]) -> tuple[int, ...]:
        if e[2] in bad and len(acc) % 2 == 1:  # raises in some of the element's windows
            raise ValueError(f"bad element {e}")
        return (*acc, e[2])

    late: list[Any] = []
    out = await (
        Source.from_iterable(elems)
        .windowed(
            spec,
            key=lambda e: e[0],
            timestamp=lambda e: e[1],
            zero=tuple,
            aggregate=aggregate,
            late=Sink.foreach(late.append),
            idle_timeout=None if fast else 1e9,
        )
        .with_attributes(
            Attributes.supervision_strategy(restarting_decider if restart else resuming_decider)
        )
        .run_with(Sink.seq())
    )
    return out, late


@SETTINGS
@given(case=cases(), restart=st.booleans())
async def test_the_fast_path_matches_the_general_path(case: Any, restart: bool) -> None:
    spec, elems, bad = case
    fast = await _run(spec, elems, bad, fast=True, restart=restart)
    assert fast == await _run(spec, elems, bad, fast=False, restart=restart)


def test_the_fast_path_is_the_one_taken() -> None:
    spec = TimeWindows.of(3).advance_by(1)
    fast = WindowedStage(spec, key=str, timestamp=float).create_logic(None)
    slow = WindowedStage(spec, key=str, timestamp=float, idle_timeout=1e9).create_logic(None)
    assert fast._handle == fast._element_hopping  # type: ignore[attr-defined]
    assert slow._handle == slow._element  # type: ignore[attr-defined]
    tumbling = WindowedStage(TimeWindows.of(3), key=str, timestamp=float).create_logic(None)
    assert tumbling._handle == tumbling._element_tumbling  # type: ignore[attr-defined]
