"""The hopping fast path of ``windowed`` (event time, ``on_window_close``: one inlined
function per element, windows found per key) against the general path, which the same
stage takes when ``idle_timeout`` is set: an idle timeout that never elapses changes no
result, so both must emit the same windows and the same late elements, on float sizes and
steps (where ``t // step`` rounds) and with an aggregate that raises under ``resume``."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reactive import Attributes, Sink, Source, TimeWindows
from reactive._ops.windows import WindowedStage
from reactive._supervision import resuming_decider

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

STEPS = st.sampled_from([0.1, 0.3, 0.7, 1, 2.5, 3])


@st.composite
def cases(draw: Any) -> tuple[TimeWindows, list[tuple[str, float, int]], frozenset[int]]:
    step = draw(STEPS)
    spec = TimeWindows.of(step * draw(st.integers(2, 6))).advance_by(step)
    spec = spec.grace(draw(st.sampled_from([0, 0.2, 1, 4])))
    t = draw(st.floats(-50, 50, allow_nan=False))
    elems = []
    for i in range(draw(st.integers(0, 40))):
        t += draw(st.sampled_from([0, 0.1, 0.25, 0.3, 1, 2.7]))
        elems.append((draw(st.sampled_from("abc")), t - draw(st.sampled_from([0, 0.1, 0.7, 3])), i))
    bad = frozenset(draw(st.sets(st.integers(0, 40), max_size=3)))
    return spec, elems, bad


async def _run(spec: TimeWindows, elems: list[Any], bad: frozenset[int], fast: bool) -> Any:
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
        .with_attributes(Attributes.supervision_strategy(resuming_decider))
        .run_with(Sink.seq())
    )
    return out, late


@SETTINGS
@given(case=cases())
async def test_the_hopping_fast_path_matches_the_general_path(case: Any) -> None:
    spec, elems, bad = case
    assert await _run(spec, elems, bad, fast=True) == await _run(spec, elems, bad, fast=False)


def test_the_fast_path_is_the_one_taken() -> None:
    spec = TimeWindows.of(3).advance_by(1)
    fast = WindowedStage(spec, key=str, timestamp=float).create_logic(None)
    slow = WindowedStage(spec, key=str, timestamp=float, idle_timeout=1e9).create_logic(None)
    assert fast._handle == fast._element_hopping  # type: ignore[attr-defined]
    assert slow._handle == slow._element  # type: ignore[attr-defined]
