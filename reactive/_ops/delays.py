"""``delay_with(strategy_supplier, overflow_strategy)`` (Akka's ``delayWith``) and its
``DelayStrategy``: a per-element delay computed by a stateful strategy.

The stage is ``delay``'s (``timer.py``): one FIFO buffer of ``(due time, element)`` and
a timer for its head, the same overflow strategies; only the due time of an element
comes from ``strategy.next_delay(element)``. Elements leave in arrival order: one with a
short delay behind one with a long delay waits for it (as in Akka).

It also holds ``DelayOverflowStrategy`` (Akka's superset of ``OverflowStrategy`` for the
two delay operators) and the ``emit_early`` variants of both stages: a full buffer pushes
its head before its delay elapsed to make room for a new element, and backpressures
while downstream has no demand (Akka's ``EmitEarly``, ``Delay`` in ``Ops.scala``).
"""

from __future__ import annotations

import enum
import math
import numbers
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._errors import PortStateError
from .buffers import OverflowStrategy
from .timer import _EPS, _KEY, Delay, _DelayLogic

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape

__all__ = [
    "DelayOverflowStrategy",
    "DelayStrategy",
    "DelayWith",
    "EmitEarlyDelay",
    "delay_stage",
]

T = TypeVar("T")


def _seconds(signature: str, name: str, value: Any, *, positive: bool = False) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{signature}: {name} must be a number of seconds, got {value!r}")
    v = float(value)
    if math.isnan(v) or v < 0 or (positive and v == 0):
        bound = ">" if positive else ">="
        raise ValueError(f"{signature}: {name} must be {bound} 0, got {value!r}")
    if math.isinf(v):
        raise ValueError(f"{signature}: {name} must be a finite number of seconds, got {v!r}")
    return v


class DelayOverflowStrategy(enum.Enum):
    """What the buffer of ``delay`` / ``delay_with`` does with a new element when it is
    full (Akka's ``DelayOverflowStrategy``): the ``OverflowStrategy`` values, which the
    two operators accept as well, plus ``emit_early``."""

    emit_early = "emit_early"
    """Push the buffer's head downstream at once, before its delay elapsed, to make room
    for the new element; while downstream has no demand, backpressure instead (the
    buffer never overflows)."""
    drop_head = "drop_head"
    """Drop the oldest buffered element to make room."""
    drop_tail = "drop_tail"
    """Drop the newest buffered element to make room."""
    drop_buffer = "drop_buffer"
    """Drop the whole buffer to make room."""
    drop_new = "drop_new"
    """Drop the incoming element."""
    backpressure = "backpressure"
    """Stop pulling upstream until there is room."""
    fail = "fail"
    """Fail the stream with ``BufferOverflowError``."""

    def __repr__(self) -> str:
        return f"DelayOverflowStrategy.{self.value}"


def _overflow(signature: str, name: str, strategy: Any) -> OverflowStrategy | None:
    """``strategy`` as the ``OverflowStrategy`` the plain stage runs, or None for
    ``emit_early``; a TypeError naming ``signature`` for anything else."""
    if isinstance(strategy, OverflowStrategy):
        return strategy
    if isinstance(strategy, DelayOverflowStrategy):
        if strategy is DelayOverflowStrategy.emit_early:
            return None
        return OverflowStrategy(strategy.value)
    raise TypeError(
        f"{signature}: {name} must be an OverflowStrategy or a DelayOverflowStrategy, "
        f"got {type(strategy).__name__} {strategy!r}"
    )


def delay_stage(
    seconds: float,
    strategy: OverflowStrategy | DelayOverflowStrategy,
    buffer_size: int | None = None,
) -> Delay:
    """The stage of ``delay(seconds, strategy, buffer_size)``: ``timer.Delay``, or
    ``EmitEarlyDelay`` for ``DelayOverflowStrategy.emit_early``."""
    s = _overflow("delay(seconds, strategy, buffer_size)", "strategy", strategy)
    if s is None:
        return EmitEarlyDelay(seconds, buffer_size)
    return Delay(seconds, s, buffer_size)


class DelayStrategy(Generic[T]):
    """How long to delay each element (Akka's ``DelayStrategy``): ``next_delay(elem)``
    returns seconds (a number ``>= 0``). A strategy may keep state: ``delay_with`` asks
    its supplier for a fresh one per materialization.

    Subclass it and override ``next_delay``, or use the two ready-made strategies,
    ``DelayStrategy.fixed_delay(seconds)`` and
    ``DelayStrategy.linear_increasing_delay(increase_step, needs_increase, ...)``.
    ``delay_with`` accepts any object with a ``next_delay`` method.
    """

    def next_delay(self, elem: T) -> float:
        """The delay for ``elem``, in seconds (``>= 0``)."""
        raise NotImplementedError(f"{type(self).__name__} must override next_delay(elem)")

    @staticmethod
    def fixed_delay(seconds: float) -> DelayStrategy[Any]:
        """The same delay, ``seconds``, for every element (Akka's ``fixedDelay``)."""
        return _FixedDelay(_seconds("DelayStrategy.fixed_delay(seconds)", "seconds", seconds))

    @staticmethod
    def linear_increasing_delay(
        increase_step: float,
        needs_increase: Callable[[T], bool],
        initial_delay: float = 0.0,
        max_delay: float = math.inf,
    ) -> DelayStrategy[T]:
        """A delay that grows by ``increase_step`` for every element ``needs_increase``
        holds for, up to ``max_delay``, and falls back to ``initial_delay`` at the first
        element it does not hold for (Akka's ``linearIncreasingDelay``).

        ``increase_step`` must be ``> 0`` and ``max_delay`` greater than
        ``initial_delay``.
        """
        sig = "DelayStrategy.linear_increasing_delay(increase_step, needs_increase, ...)"
        step = _seconds(sig, "increase_step", increase_step, positive=True)
        initial = _seconds(sig, "initial_delay", initial_delay)
        if not isinstance(max_delay, numbers.Real) or isinstance(max_delay, bool):
            raise TypeError(f"{sig}: max_delay must be a number of seconds, got {max_delay!r}")
        if not max_delay > initial:
            raise ValueError(
                f"{sig}: max_delay ({max_delay!r}) must be greater than initial_delay "
                f"({initial_delay!r})"
            )
        if not callable(needs_increase):
            raise TypeError(f"{sig}: needs_increase must be callable, got {needs_increase!r}")
        return _LinearIncreasingDelay(step, needs_increase, initial, float(max_delay))


class _FixedDelay(DelayStrategy[Any]):
    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def next_delay(self, elem: Any) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"DelayStrategy.fixed_delay({self.seconds!r})"


class _LinearIncreasingDelay(DelayStrategy[T]):
    __slots__ = ("step", "needs_increase", "initial", "max", "delay")

    def __init__(
        self, step: float, needs_increase: Callable[[T], bool], initial: float, max_: float
    ) -> None:
        self.step = step
        self.needs_increase = needs_increase
        self.initial = initial
        self.max = max_
        self.delay = initial

    def next_delay(self, elem: T) -> float:
        if self.needs_increase(elem):
            self.delay = min(self.delay + self.step, self.max)
        else:
            self.delay = self.initial
        return self.delay

    def __repr__(self) -> str:
        return (
            f"DelayStrategy.linear_increasing_delay({self.step!r}, {self.needs_increase!r}, "
            f"initial_delay={self.initial!r}, max_delay={self.max!r})"
        )


class DelayWith(Delay):
    """``delay_with(strategy_supplier, overflow_strategy, buffer_size)``: ``delay`` with
    each element's delay from ``strategy_supplier().next_delay(elem)`` (one strategy per
    materialization).

    Emits when the head element's delay elapsed and downstream pulls, or, with
    ``emit_early``, when a new element finds the buffer full. Backpressures when the
    buffer is full and the strategy is ``backpressure``, or ``emit_early`` and
    downstream has no demand. Completes when upstream completed and every buffered
    element was emitted. Fails when upstream fails, the supplier or ``next_delay`` raises
    or returns no valid strategy / delay, or, with ``fail``, with
    ``BufferOverflowError``. Cancels when downstream cancels.
    """

    name = "delay_with"

    def __init__(
        self,
        strategy_supplier: Callable[[], Any],
        strategy: OverflowStrategy | DelayOverflowStrategy = OverflowStrategy.backpressure,
        buffer_size: int | None = None,
    ) -> None:
        if not callable(strategy_supplier):
            raise TypeError(
                "delay_with(strategy_supplier, ...): strategy_supplier must be callable, "
                f"got {strategy_supplier!r}"
            )
        s = _overflow(
            "delay_with(strategy_supplier, overflow_strategy)", "overflow_strategy", strategy
        )
        # emit_early backpressures when it cannot emit early (Akka: isBackpressure).
        super().__init__(0.0, OverflowStrategy.backpressure if s is None else s, buffer_size)
        self.emit_early = s is None
        self.supplier = strategy_supplier

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        size = self.size or max(1, int(attributes.get("input_buffer") or 16))
        if self.emit_early:
            return _EmitEarlyDelayWithLogic(self.shape, self, size)
        return _DelayWithLogic(self.shape, self, size)


class _DelayWithLogic(_DelayLogic):
    def __init__(self, shape: FlowShape, stage: DelayWith, size: int) -> None:
        super().__init__(shape, stage, size)
        self.supplier = stage.supplier
        self.strategy: Any = None

    def pre_start(self) -> None:
        made = self.supplier()
        if not callable(getattr(made, "next_delay", None)):
            raise TypeError(
                f"[{self.stage_name}] strategy_supplier() must return a DelayStrategy "
                f"(an object with next_delay(elem)), got {type(made).__name__} {made!r}"
            )
        self.strategy = made
        super().pre_start()

    def _due(self, x: Any) -> float:
        d = self.strategy.next_delay(x)
        if (
            not isinstance(d, numbers.Real)
            or isinstance(d, bool)
            or math.isnan(d)
            or d < 0
            or math.isinf(d)
        ):
            raise ValueError(
                f"[{self.stage_name}] next_delay returned {d!r} for element {x!r}, "
                "not a finite number of seconds >= 0"
            )
        return self.now() + float(d)

    def _arm_head(self) -> None:
        # Delays differ per element: a head replaced by an overflow strategy may be due
        # before the timer armed for the old one, so the timer always follows the head.
        if self.buf:
            wait = self.buf[0][0] - self.now()
            if wait > _EPS:
                self.schedule_once(_KEY, wait)


# -- emit_early ---------------------------------------------------------------------------
class EmitEarlyDelay(Delay):
    """``delay(seconds, DelayOverflowStrategy.emit_early, buffer_size)``.

    Holds every element for ``seconds`` in a buffer of ``buffer_size`` (None: the
    ``input_buffer`` attribute's max, 16 by default); a new element that finds the buffer
    full sends the head downstream at once, without waiting for its delay (Akka's
    ``EmitEarly``). Upstream is pulled while the buffer is full only when downstream has
    demand, so the buffer never overflows and nothing is dropped.

    Emits when the head element's delay elapsed and downstream pulls, or when a new
    element finds the buffer full. Backpressures when the buffer is full and downstream
    has no demand. Completes when upstream completed and every buffered element was
    emitted. Fails when upstream fails (buffered elements are dropped). Cancels when
    downstream cancels.
    """

    name = "delay"

    def __init__(self, seconds: float, buffer_size: int | None = None) -> None:
        # emit_early backpressures when it cannot emit early (Akka: isBackpressure).
        super().__init__(seconds, OverflowStrategy.backpressure, buffer_size)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        size = self.size or max(1, int(attributes.get("input_buffer") or 16))
        return _EmitEarlyLogic(self.shape, self, size)


class _EmitEarlyLogic(_DelayLogic):
    """``_DelayLogic`` with Akka's ``EmitEarly``: pulls upstream while the buffer is full
    only when downstream has demand (Akka's ``shouldPull``), so a push that finds the
    buffer full always finds ``out`` available: the head goes out early, the new element
    takes its place. Nothing pushes ``out`` between that pull and the push (a timer that
    emits the head makes room instead)."""

    def _should_pull(self) -> bool:
        return len(self.buf) < self.size or self.is_available(self.out)

    def on_push(self) -> None:
        buf = self.buf
        if len(buf) < self.size:
            x = self.grab(self.in_)
            buf.append((self._due(x), x))
            self._arm_head()
            if self._should_pull():
                self.pull(self.in_)
            if self.is_available(self.out):
                self._push_due()
            return
        if not self.is_available(self.out):
            raise PortStateError(
                f"[{self.stage_name}] emit_early: an element arrived while the buffer was "
                "full and downstream had no demand (upstream is not pulled then)"
            )
        if self.is_timer_active(_KEY):
            self.cancel_timer(_KEY)
        self.push(self.out, buf.popleft()[1])
        x = self.grab(self.in_)
        buf.append((self._due(x), x))
        self._arm_head()
        # The buffer is full again and downstream has no demand now: no pull until either
        # changes (on_pull, or the timer emitting the head).

    def on_pull(self) -> None:
        super().on_pull()
        if (
            self.is_available(self.out)
            and not self.is_closed(self.in_)
            and not self.has_been_pulled(self.in_)
            and not self.is_available(self.in_)
            and self._should_pull()
        ):
            self.pull(self.in_)


class _EmitEarlyDelayWithLogic(_EmitEarlyLogic, _DelayWithLogic):
    """``delay_with``'s logic (per-element due times) with ``emit_early``."""
