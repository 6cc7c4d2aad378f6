"""The public values of event-time windowing: window specs, emit strategies, ``Windowed``.

A spec only describes windows (sizes and grace periods, validated when built); the
``windowed`` operator (``windows.py``) does the work. The rules, one sentence each, as
Kafka Streams states them in its ``TimeWindows`` / ``SessionWindows`` javadoc:

- ``TimeWindows.of(size)``: tumbling windows ``[n*size, (n+1)*size)`` aligned to 0;
  ``.advance_by(step)`` makes them hopping (a window starts at every multiple of
  ``step``, negative starts included); a window closes when stream time reaches
  ``end + grace``.
- ``SlidingWindows.of(size)``: one window ``[t - size, t]`` (both ends inclusive) per
  distinct element time ``t`` of a key; it closes when stream time passes ``t + grace``.
- ``SessionWindows.with_gap(gap)``: a key's elements at most ``gap`` apart share a
  session ``[first, last]``; it closes when stream time passes ``last + gap + grace``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = [
    "TimeWindows",
    "SlidingWindows",
    "SessionWindows",
    "EmitStrategy",
    "Windowed",
    "WindowSpec",
]

K = TypeVar("K")
V = TypeVar("V")


def _seconds(what: str, value: Any) -> float | int:
    """``value`` as a finite number of seconds (int or float), else ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{what} must be a number of seconds, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be a finite number of seconds, got {value!r}")
    return value


def _size(what: str, value: Any) -> float | int:
    seconds: float | int = _seconds(what, value)
    if seconds <= 0:
        raise ValueError(f"{what} must be > 0 seconds, got {seconds!r}")
    return seconds


def _grace(what: str, value: Any) -> float | int:
    seconds: float | int = _seconds(what, value)
    if seconds < 0:
        raise ValueError(f"{what} must be >= 0 seconds, got {seconds!r}")
    return seconds


class WindowSpec:
    """Base of the window specs accepted by ``windowed``: immutable, validated when built."""

    __slots__ = ()

    grace_period: float | int
    """Seconds of stream time a window stays open after its closing rule's base time."""


class TimeWindows(WindowSpec):
    """Tumbling (``TimeWindows.of(size)``) or hopping (``.advance_by(step)``) windows.

    Windows are ``[start, start + size)`` (``Windowed.end`` is exclusive) with ``start``
    every multiple of ``step`` (``step == size`` when tumbling), aligned to 0, negative
    starts included: an element at ``t`` belongs to every window with
    ``start <= t < start + size`` (t = 3, size 10, step 5: ``[-5, 5)`` and ``[0, 10)``).
    A window closes when stream time ``>= end + grace``.
    """

    __slots__ = ("size", "step", "grace_period")

    size: float | int
    step: float | int

    def __init__(self, size: float, step: float | None = None, grace: float = 0) -> None:
        self.size = _size("TimeWindows size", size)
        if step is None:
            step = self.size
        step = _seconds("TimeWindows.advance_by step", step)
        if not 0 < step <= self.size:
            raise ValueError(
                f"TimeWindows.advance_by step must be in (0, size] = (0, {self.size!r}], "
                f"got {step!r}"
            )
        self.step = step
        self.grace_period = _grace("TimeWindows grace", grace)

    @staticmethod
    def of(size: float) -> TimeWindows:
        """Tumbling windows of ``size`` seconds: ``[n*size, (n+1)*size)``, aligned to 0.

        Raises ``ValueError`` when ``size <= 0``.
        """
        return TimeWindows(size)

    def advance_by(self, step: float) -> TimeWindows:
        """Hopping windows: a window of ``size`` seconds starts at every multiple of ``step``.

        Raises ``ValueError`` unless ``0 < step <= size``. Keeps the grace period.
        """
        return TimeWindows(self.size, step, self.grace_period)

    def grace(self, seconds: float) -> TimeWindows:
        """The same windows accepting elements ``seconds`` of stream time after their end
        (default 0). Raises ``ValueError`` when negative."""
        return TimeWindows(self.size, self.step, seconds)

    @property
    def is_tumbling(self) -> bool:
        """True when windows do not overlap (``step == size``)."""
        return self.step == self.size

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TimeWindows):
            return NotImplemented
        return (self.size, self.step, self.grace_period) == (
            other.size,
            other.step,
            other.grace_period,
        )

    def __hash__(self) -> int:
        return hash(("TimeWindows", self.size, self.step, self.grace_period))

    def __repr__(self) -> str:
        text = f"TimeWindows.of({self.size!r})"
        if not self.is_tumbling:
            text += f".advance_by({self.step!r})"
        if self.grace_period:
            text += f".grace({self.grace_period!r})"
        return text


class SlidingWindows(WindowSpec):
    """Sliding windows: for each element at ``t``, the window ``[t - size, t]`` (both ends
    inclusive) over that key's elements; one window per distinct ``(key, start, end)``.

    A window closes when stream time ``> t + grace``. An element whose own window is
    already closed still joins the open windows containing it (not late; its own window
    is not emitted).
    """

    __slots__ = ("size", "grace_period")

    size: float | int

    def __init__(self, size: float, grace: float = 0) -> None:
        self.size = _size("SlidingWindows size", size)
        self.grace_period = _grace("SlidingWindows grace", grace)

    @staticmethod
    def of(size: float) -> SlidingWindows:
        """Sliding windows ``[t - size, t]``. Raises ``ValueError`` when ``size <= 0``."""
        return SlidingWindows(size)

    def grace(self, seconds: float) -> SlidingWindows:
        """The same windows staying open ``seconds`` of stream time longer (default 0).
        Raises ``ValueError`` when negative."""
        return SlidingWindows(self.size, seconds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SlidingWindows):
            return NotImplemented
        return (self.size, self.grace_period) == (other.size, other.grace_period)

    def __hash__(self) -> int:
        return hash(("SlidingWindows", self.size, self.grace_period))

    def __repr__(self) -> str:
        text = f"SlidingWindows.of({self.size!r})"
        if self.grace_period:
            text += f".grace({self.grace_period!r})"
        return text


class SessionWindows(WindowSpec):
    """Session windows: per key, elements whose timestamps are at most ``gap`` apart
    (inclusive) share a session; an element that bridges two sessions merges them.

    ``Windowed.start`` / ``end`` are the session's first and last timestamps (both
    inclusive). A session closes when stream time ``> end + gap + grace``; a closed
    session takes no more elements (an element near it starts a new session ``[t, t]``
    if that would be open, otherwise it is late).
    """

    __slots__ = ("gap", "grace_period")

    gap: float | int

    def __init__(self, gap: float, grace: float = 0) -> None:
        self.gap = _grace("SessionWindows gap", gap)
        self.grace_period = _grace("SessionWindows grace", grace)

    @staticmethod
    def with_gap(gap: float) -> SessionWindows:
        """Sessions of elements at most ``gap`` seconds apart. Raises ``ValueError`` when
        ``gap`` is negative (0 is allowed: only equal timestamps share a session)."""
        return SessionWindows(gap)

    def grace(self, seconds: float) -> SessionWindows:
        """The same sessions staying open ``seconds`` of stream time longer (default 0).
        Raises ``ValueError`` when negative."""
        return SessionWindows(self.gap, seconds)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionWindows):
            return NotImplemented
        return (self.gap, self.grace_period) == (other.gap, other.grace_period)

    def __hash__(self) -> int:
        return hash(("SessionWindows", self.gap, self.grace_period))

    def __repr__(self) -> str:
        text = f"SessionWindows.with_gap({self.gap!r})"
        if self.grace_period:
            text += f".grace({self.grace_period!r})"
        return text


class EmitStrategy:
    """When ``windowed`` emits a window: ``on_window_close()`` (the default: each window
    once, when it closes) or ``on_window_update()`` (after every element, each window it
    changed, with its current value; nothing at close). Kafka Streams' ``EmitStrategy``."""

    __slots__ = ("_kind",)

    def __init__(self, kind: str) -> None:
        if kind not in ("on_window_close", "on_window_update"):
            raise ValueError(
                f"EmitStrategy kind must be 'on_window_close' or 'on_window_update', got {kind!r}"
            )
        self._kind = kind

    @staticmethod
    def on_window_close() -> EmitStrategy:
        """Emit each window once, when it closes (and every open window on completion)."""
        return _ON_CLOSE

    @staticmethod
    def on_window_update() -> EmitStrategy:
        """After every element, emit each window it changed with its current value (a
        merged session under its new bounds); nothing more at close or completion."""
        return _ON_UPDATE

    @property
    def kind(self) -> str:
        """``"on_window_close"`` or ``"on_window_update"``."""
        return self._kind

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmitStrategy):
            return NotImplemented
        return self._kind == other._kind

    def __hash__(self) -> int:
        return hash(("EmitStrategy", self._kind))

    def __repr__(self) -> str:
        return f"EmitStrategy.{self._kind}()"


_ON_CLOSE = EmitStrategy("on_window_close")
_ON_UPDATE = EmitStrategy("on_window_update")


@dataclass(frozen=True)
class Windowed(Generic[K, V]):
    """One window's result: ``Windowed(key, start, end, value)``, immutable, equal by fields.

    ``key`` is the grouping key (``None`` without ``key=``); ``start``/``end`` are the
    window's bounds in event-time seconds (time windows: ``end`` exclusive; sliding and
    session windows: both inclusive); ``value`` is the aggregate (the list of the window's
    elements in arrival order without ``zero``/``aggregate``). A value is a snapshot:
    later elements never change a value already emitted.
    """

    # Slots declared by hand: ``dataclass(slots=True)`` recreates the class, which breaks
    # ``Windowed[str, int](...)`` (the generic alias sets ``__orig_class__``).
    __slots__ = ("key", "start", "end", "value")

    key: K
    start: float
    end: float
    value: V
