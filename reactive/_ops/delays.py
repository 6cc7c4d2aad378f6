"""``delay_with(strategy_supplier, overflow_strategy)`` (Akka's ``delayWith``) and its
``DelayStrategy``: a per-element delay computed by a stateful strategy.

The stage is ``delay``'s (``timer.py``): one FIFO buffer of ``(due time, element)`` and
a timer for its head, the same overflow strategies; only the due time of an element
comes from ``strategy.next_delay(element)``. Elements leave in arrival order: one with a
short delay behind one with a long delay waits for it (as in Akka).
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .buffers import OverflowStrategy
from .timer import _EPS, _KEY, Delay, _DelayLogic

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape

__all__ = ["DelayStrategy", "DelayWith"]

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

    Emits when the head element's delay elapsed and downstream pulls. Backpressures when
    the buffer is full and the strategy is ``backpressure``. Completes when upstream
    completed and every buffered element was emitted. Fails when upstream fails, the
    supplier or ``next_delay`` raises or returns no valid strategy / delay, or, with
    ``fail``, with ``BufferOverflowError``. Cancels when downstream cancels.
    """

    name = "delay_with"

    def __init__(
        self,
        strategy_supplier: Callable[[], Any],
        strategy: OverflowStrategy = OverflowStrategy.backpressure,
        buffer_size: int | None = None,
    ) -> None:
        if not callable(strategy_supplier):
            raise TypeError(
                "delay_with(strategy_supplier, ...): strategy_supplier must be callable, "
                f"got {strategy_supplier!r}"
            )
        if not isinstance(strategy, OverflowStrategy):
            raise TypeError(
                "delay_with(strategy_supplier, overflow_strategy): overflow_strategy must be "
                f"an OverflowStrategy, got {type(strategy).__name__} {strategy!r}"
            )
        super().__init__(0.0, strategy, buffer_size)
        self.supplier = strategy_supplier

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        size = self.size or max(1, int(attributes.get("input_buffer") or 16))
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
