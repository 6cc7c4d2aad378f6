"""Time-driven operators: throttle, grouped_within, delays, time windows, timeouts, keep_alive.

Every stage here runs on a ``TimerGraphStageLogic``: timers go through the materializer's
clock, so a ``ManualClock`` drives them deterministically in tests. Times are compared
with a small tolerance (``_EPS``) because a deadline computed as ``now + d`` and a timer
armed for ``d`` seconds from ``now`` may differ in the last bit of a float.

Timeout checks (``idle_timeout``, ``backpressure_timeout``) run periodically, as in Akka:
every second for timeouts above one second, else every ``min(max(d/8, 0.1), d/2)``
seconds; a timeout fires at the first check strictly after its deadline.
"""

from __future__ import annotations

import enum
from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import (
    BackpressureTimeoutError,
    BufferOverflowError,
    CompletionTimeoutError,
    InitialTimeoutError,
    RateExceededError,
    StreamIdleTimeoutError,
)
from .._stage.logic import GraphStageLogic, TimerGraphStageLogic, _Batch
from .buffers import OverflowStrategy
from .simple import FlowLogic, FlowStage, asks_in_batches

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._stage.shapes import FlowShape

__all__ = [
    "ThrottleMode",
    "Throttle",
    "GroupedWithin",
    "Delay",
    "InitialDelay",
    "TakeWithin",
    "DropWithin",
    "IdleTimeout",
    "CompletionTimeout",
    "InitialTimeout",
    "BackpressureTimeout",
    "KeepAlive",
    "timeout_check_interval",
    "Debounce",
]

_EPS = 1e-9
_KEY = "timer"

AUTOMATIC_MAXIMUM_BURST = -1
"""``throttle(..., maximum_burst=-1)``: Akka's ``Throttle.AutomaticMaximumBurst`` (the
default, ``max(1, tokens produced in 100 ms)``)."""


class ThrottleMode(enum.Enum):
    """How ``throttle`` reacts to elements arriving faster than the rate."""

    shaping = "shaping"
    """Delay elements (back-pressuring upstream) to keep to the rate."""
    enforcing = "enforcing"
    """Fail the stream with ``RateExceededError`` when an element would have to wait."""

    def __repr__(self) -> str:
        return f"ThrottleMode.{self.value}"


def _fmt(seconds: float) -> str:
    return f"{seconds:g} s"


def timeout_check_interval(timeout: float) -> float:
    """How often a periodic timeout is checked (Akka's ``Timers.timeoutCheckInterval``)."""
    if timeout > 1.0:
        return 1.0
    return min(max(timeout / 8, 0.1), timeout / 2)


def _positive(what: str, seconds: float) -> float:
    if not seconds > 0:
        raise ValueError(f"{what} must be > 0 seconds, got {seconds!r}")
    return float(seconds)


class TimerFlowLogic(FlowLogic, TimerGraphStageLogic):
    """A one-in one-out logic with timers; its own in/out handler."""

    def now(self) -> float:
        """The materializer clock's time."""
        return self.materializer.clock.time()


class _DeadlineLogic(TimerFlowLogic):
    """One timer armed at start for ``seconds``; elements pass through unless a subclass
    says otherwise (initial_delay, take_within, drop_within, completion/initial timeout)."""

    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape)
        self.seconds = seconds

    def pre_start(self) -> None:
        self.schedule_once(_KEY, self.seconds)

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))


# -- throttle ----------------------------------------------------------------------------------
class Throttle(FlowStage):
    """``throttle(elements, per, maximum_burst, mode, cost)``: a token bucket.

    The bucket holds ``maximum_burst`` tokens and starts full; ``elements`` tokens arrive
    every ``per`` seconds. Each element takes ``cost(x)`` tokens (1 without ``cost``).
    Without an explicit burst (None or -1, Akka's ``AutomaticMaximumBurst``) it is
    ``max(1, tokens produced in 100 ms)``; a burst of 0 starts with an empty bucket.

    Emits when upstream emitted and the bucket holds enough tokens (shaping: after the
    wait). Backpressures when downstream backpressures or an element waits for tokens.
    Completes when upstream completes (after the waiting element was pushed). Fails when
    upstream fails, or with ``RateExceededError`` in enforcing mode when an element would
    have to wait. Cancels when downstream cancels. Supervision: resume/restart drop an
    element whose ``cost`` raised.
    """

    name = "throttle"

    def __init__(
        self,
        elements: int,
        per: float,
        maximum_burst: int | None = None,
        mode: ThrottleMode = ThrottleMode.shaping,
        cost: Callable[[Any], int] | None = None,
    ) -> None:
        if elements <= 0:
            raise ValueError(f"throttle elements must be > 0, got {elements!r}")
        _positive("throttle per", per)
        if not isinstance(mode, ThrottleMode):
            raise TypeError(f"throttle mode must be a ThrottleMode, got {mode!r}")
        super().__init__()
        # Integer nanoseconds, as Akka's token bucket: no drift from float rounding.
        if round(per * 1e9) < elements:
            raise ValueError(
                f"throttle: rates above one element per nanosecond are not supported (as "
                f"Akka's), got {elements!r} per {per!r} s"
            )
        self.nanos_between_tokens = round(per * 1e9) // elements
        if maximum_burst is None or maximum_burst == AUTOMATIC_MAXIMUM_BURST:
            maximum_burst = max(1, 100_000_000 // self.nanos_between_tokens)
        elif maximum_burst < 0:
            # As Akka: 0 is legal in both modes (enforcing then fails on the first element).
            raise ValueError(
                f"throttle maximum_burst must be >= 0 (or -1: automatic), got {maximum_burst!r}"
            )
        self.maximum_burst = maximum_burst
        self.mode = mode
        self.cost = cost

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ThrottleLogic(self.shape, self)


class _ThrottleLogic(TimerFlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: Throttle) -> None:
        super().__init__(shape)
        self.stage = stage
        self.interval = stage.nanos_between_tokens
        self.capacity = stage.maximum_burst
        self.tokens = stage.maximum_burst
        self.last_update = 0
        self.waiting: Any = None
        self.will_stop = False

    def _nanos(self) -> int:
        return round(self.now() * 1e9)

    def pre_start(self) -> None:
        self.last_update = self._nanos()

    def _offer(self, cost: int) -> int:
        """Take ``cost`` tokens; the nanoseconds to wait before they are all there."""
        if cost.__class__ is not int and (not isinstance(cost, int) or isinstance(cost, bool)):
            raise TypeError(
                f"[{self.stage_name}] the cost function must return an int >= 0, got "
                f"{type(cost).__name__} {cost!r}"
            )
        if cost < 0:
            raise ValueError(f"[{self.stage_name}] element cost must be >= 0, got {cost!r}")
        now = self._nanos()
        elapsed = now - self.last_update
        if elapsed >= self.interval:
            arrived = elapsed // self.interval
            self.last_update += arrived * self.interval
            self.tokens = min(self.tokens + arrived, self.capacity)
        if cost <= self.tokens:
            self.tokens -= cost
            return 0
        remaining = cost - self.tokens
        delay = remaining * self.interval - (now - self.last_update)
        self.tokens = 0
        self.last_update = now + delay
        return delay

    def on_push(self) -> None:
        x = self.grab(self.in_)
        cost = 1 if self.stage.cost is None else self.stage.cost(x)
        delay = self._offer(cost)
        if delay <= 0:
            self.push(self.out, x)
        elif self.stage.mode is ThrottleMode.enforcing:
            self.fail_stage(
                RateExceededError(f"[{self.stage_name}] maximum throttle throughput exceeded")
            )
        else:
            self.waiting = x
            self.schedule_once(_KEY, delay / 1e9)

    def on_timer(self, key: Any) -> None:
        x, self.waiting = self.waiting, None
        self.push(self.out, x)
        if self.will_stop:
            self.complete_stage()

    def on_upstream_finish(self) -> None:
        if self.is_timer_active(_KEY):
            self.will_stop = True
        else:
            self.complete_stage()


# -- grouped_within --------------------------------------------------------------------------
class GroupedWithin(FlowStage):
    """``grouped_within(n, seconds)``: lists closed by count ``n`` or by a periodic timer.

    The timer runs with a fixed delay of ``seconds`` and restarts whenever a group is
    closed by count. A timer firing with an empty group emits nothing; firing while
    downstream back-pressures marks the group to be pushed at the next pull, and it keeps
    filling up to ``n`` meanwhile.

    Emits when the group holds ``n`` elements or the timer fired with a non-empty group,
    and downstream pulls. Backpressures when a full group waits for downstream and one
    more element is held outside it (``n + 1`` elements, as Akka).
    Completes when upstream completes (after the last partial group). Fails when upstream
    fails (buffered elements are dropped). Cancels when downstream cancels.
    """

    name = "grouped_within"

    def __init__(self, n: int, seconds: float) -> None:
        if n <= 0:
            raise ValueError(f"grouped_within n must be > 0, got {n!r}")
        super().__init__()
        self.n = n
        self.seconds = _positive("grouped_within interval", seconds)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GroupedWithinLogic(self.shape, self.n, self.seconds)


class _GroupedWithinLogic(TimerFlowLogic):
    """Akka's GroupedWeightedWithin logic with every weight 1: when the group is full and
    downstream is not ready, one more element is pulled and held outside the group
    (``pending``), so ``n + 1`` elements are held while back-pressuring."""

    def __init__(self, shape: FlowShape, n: int, seconds: float) -> None:
        super().__init__(shape)
        self.n = n
        self.seconds = seconds
        self.buf: list[Any] = []
        self.pending: Any = None
        self.push_eagerly = False
        self.group_emitted = True
        self.finished = False
        # Batch fast path (see fused.py): the rest of the group is asked for with one pull
        # and may arrive as one batch (element at a time, it is pulled for one element
        # after another: never more than the group needs, nor the one element held).
        self._batch_in = (self.in_,)
        self._ask_rest = False

    def pre_start(self) -> None:
        self._ask_rest = asks_in_batches(self._conns[self.in_])
        self.schedule_with_fixed_delay(_KEY, self.seconds, self.seconds)
        self._pull_rest()

    def _pull_rest(self) -> None:
        """Pull for the rest of the group, or (group full) for the one element held."""
        self.pull(self.in_)
        if self._ask_rest:
            room = self.n - len(self.buf)
            self._conns[self.in_].demand_n = room if room > 1 else 1

    def _restart_timer(self) -> None:
        self.schedule_with_fixed_delay(_KEY, self.seconds, self.seconds)

    def _next_element(self, x: Any) -> None:
        self.group_emitted = False
        buf = self.buf
        if len(buf) < self.n:
            if type(x) is _Batch:
                # At most the room left: what ``_pull_rest`` asked for (the group only
                # shrinks between a pull and its push).
                buf.extend(x)
            else:
                buf.append(x)
            if len(buf) < self.n:
                self._pull_rest()
            elif not self.is_available(self.out):
                self.push_eagerly = True
                self._pull_rest()  # hold one more element, outside the group
            else:
                self._restart_timer()
                self._emit_group()
        else:
            if type(x) is _Batch:  # the one element held, asked for alone
                (x,) = x
            self.pending = x
            self._restart_timer()
            self._try_close_group()

    def _try_close_group(self) -> None:
        if self.is_available(self.out):
            self._emit_group()
        elif self.pending is not None or self.finished:
            self.push_eagerly = True

    def _emit_group(self) -> None:
        self.group_emitted = True
        group, self.buf = self.buf, []
        self.push(self.out, group)
        if not self.finished:
            self._start_new_group()
        elif self.pending is not None:
            last, self.pending = self.pending, None
            self.emit(self.out, [last], self.complete_stage)
        else:
            self.complete_stage()

    def _start_new_group(self) -> None:
        if self.pending is not None:
            self.buf.append(self.pending)
            self.pending = None
            self.group_emitted = False
        self.push_eagerly = False
        if self.is_available(self.in_):
            self._next_element(self.grab(self.in_))
        elif not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
            self._pull_rest()

    def on_push(self) -> None:
        if self.pending is None:
            self._next_element(self.grab(self.in_))
        # else: the element stays in the port until the next group starts

    def on_pull(self) -> None:
        if self.push_eagerly:
            self._emit_group()

    def on_upstream_finish(self) -> None:
        self.finished = True
        if self.group_emitted:
            self.complete_stage()
        else:
            self._try_close_group()

    def on_timer(self, key: Any) -> None:
        if self.buf:
            if self.is_available(self.out):
                self._emit_group()
            else:
                self.push_eagerly = True


# -- delay ----------------------------------------------------------------------------------------
class Delay(FlowStage):
    """``delay(seconds, strategy=OverflowStrategy.backpressure, buffer_size=None)``.

    Holds every element for ``seconds`` (measured from its arrival) in a buffer of
    ``buffer_size`` (None: the ``input_buffer`` attribute's max, 16 by default, as Akka);
    ``strategy`` says what a full buffer does with a new element (the
    ``OverflowStrategy`` values of ``buffer``).

    Emits when the head element's delay elapsed and downstream pulls. Backpressures when
    the buffer is full and the strategy is ``backpressure``. Completes when upstream
    completed and every buffered element was emitted. Fails when upstream fails (buffered
    elements are dropped) or, with ``fail``, with ``BufferOverflowError``. Cancels when
    downstream cancels.
    """

    name = "delay"

    def __init__(
        self,
        seconds: float,
        strategy: OverflowStrategy = OverflowStrategy.backpressure,
        buffer_size: int | None = 16,
    ) -> None:
        if seconds < 0:
            raise ValueError(f"delay must be >= 0 seconds, got {seconds!r}")
        if not isinstance(strategy, OverflowStrategy):
            raise TypeError(f"delay strategy must be an OverflowStrategy, got {strategy!r}")
        if buffer_size is not None and buffer_size < 1:
            raise ValueError(f"delay buffer_size must be >= 1, got {buffer_size!r}")
        super().__init__()
        self.seconds = float(seconds)
        self.strategy = strategy
        self.size = buffer_size

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        # Without an explicit size, Akka's rule: the ``input_buffer`` attribute (max) says.
        size = self.size or max(1, int(attributes.get("input_buffer") or 16))
        return _DelayLogic(self.shape, self, size)


class _DelayLogic(TimerFlowLogic):
    def __init__(self, shape: FlowShape, stage: Delay, size: int) -> None:
        super().__init__(shape)
        self.stage = stage
        self.size = size
        self.buf: deque[tuple[float, Any]] = deque()
        # Upstream is first pulled on downstream's first pull (Akka's Delay has no pull
        # in preStart); from then on, whenever the buffer takes more.
        self.started = False

    def on_push(self) -> None:
        x = self.grab(self.in_)
        buf = self.buf
        s = self.stage.strategy
        entry = (self._due(x), x)
        if len(buf) < self.size:
            buf.append(entry)
        elif s is OverflowStrategy.drop_head:
            buf.popleft()
            buf.append(entry)
        elif s is OverflowStrategy.drop_tail:
            buf.pop()
            buf.append(entry)
        elif s is OverflowStrategy.drop_buffer:
            buf.clear()
            buf.append(entry)
        elif s is OverflowStrategy.fail:
            self.fail_stage(
                BufferOverflowError(
                    f"[{self.stage_name}] buffer overflow (max capacity was {self.size})"
                )
            )
            return
        # drop_new drops x; backpressure never pulls when full
        self._arm_head()
        if s is not OverflowStrategy.backpressure or len(buf) < self.size:
            self.pull(self.in_)
        if self.is_available(self.out):
            self._push_due()

    def _due(self, x: Any) -> float:
        """When ``x`` (arriving now) is due; ``delay_with`` asks its strategy."""
        return self.now() + self.stage.seconds

    def _arm_head(self) -> None:
        """Keep a timer set for the head element while it is not due yet."""
        if self.buf and not self.is_timer_active(_KEY):
            wait = self.buf[0][0] - self.now()
            if wait > _EPS:
                self.schedule_once(_KEY, wait)

    def _push_due(self) -> None:
        buf = self.buf
        if buf and buf[0][0] <= self.now() + _EPS:
            self.push(self.out, buf.popleft()[1])
            if (
                not self.is_closed(self.in_)
                and not self.has_been_pulled(self.in_)
                and not self.is_available(self.in_)
            ):
                self.pull(self.in_)
            self._arm_head()
        if not buf and self.is_closed(self.in_):
            self.complete_stage()

    def on_pull(self) -> None:
        if not self.started:
            self.started = True
            if not self.is_closed(self.in_):
                self.pull(self.in_)
        self._push_due()

    def on_timer(self, key: Any) -> None:
        if self.is_available(self.out):
            self._push_due()
        self._arm_head()  # the head may have changed (dropped by the overflow strategy)

    def on_upstream_finish(self) -> None:
        if not self.buf:
            self.complete_stage()


class InitialDelay(FlowStage):
    """``initial_delay(seconds)``: nothing passes until ``seconds`` after materialization.

    Emits when upstream emits and the delay elapsed. Backpressures when downstream
    backpressures or the delay has not elapsed (upstream is not pulled before). Completes
    when upstream completes. Fails when upstream fails. Cancels when downstream cancels.
    """

    name = "initial_delay"

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"initial_delay must be >= 0 seconds, got {seconds!r}")
        super().__init__()
        self.seconds = float(seconds)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _InitialDelayLogic(self.shape, self.seconds)


class _InitialDelayLogic(_DeadlineLogic):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape, seconds)
        self.open = False

    def pre_start(self) -> None:
        if self.seconds == 0:
            self.open = True  # as Akka: a zero delay needs no timer
        else:
            super().pre_start()

    def on_pull(self) -> None:
        if self.open:
            self.pull(self.in_)

    def on_timer(self, key: Any) -> None:
        self.open = True
        if self.is_available(self.out):
            self.pull(self.in_)


# -- time windows -------------------------------------------------------------------------
class TakeWithin(FlowStage):
    """``take_within(seconds)``: pass elements until ``seconds`` elapsed, then complete.

    Emits when upstream emits within the window. Backpressures when downstream does.
    Completes when the window closes (cancelling upstream) or upstream completes. Fails
    when upstream fails. Cancels when downstream cancels or the window closes.
    """

    name = "take_within"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = _positive("take_within", seconds)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _TakeWithinLogic(self.shape, self.seconds)


class _TakeWithinLogic(_DeadlineLogic):
    def on_timer(self, key: Any) -> None:
        self.complete_stage()


class DropWithin(FlowStage):
    """``drop_within(seconds)``: drop elements until ``seconds`` elapsed, then pass them.

    Emits when the window closed and upstream emits. Backpressures when downstream does
    (after the window). Completes when upstream completes. Fails when upstream fails.
    Cancels when downstream cancels.
    """

    name = "drop_within"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = _positive("drop_within", seconds)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DropWithinLogic(self.shape, self.seconds)


class _DropWithinLogic(_DeadlineLogic):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape, seconds)
        self.allow = False

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.allow:
            self.push(self.out, x)
        else:
            self.pull(self.in_)

    def on_timer(self, key: Any) -> None:
        self.allow = True


# -- timeouts -----------------------------------------------------------------------------
class _TimeoutStage(FlowStage):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = _positive(self.name, seconds)


class IdleTimeout(_TimeoutStage):
    """``idle_timeout(seconds)``: fail if no element passed for ``seconds``.

    Checked periodically (see ``timeout_check_interval``). Emits when upstream emits.
    Backpressures when downstream does. Completes when upstream completes. Fails when
    upstream fails, or with ``StreamIdleTimeoutError`` when no element passed in time.
    Cancels when downstream cancels.
    """

    name = "idle_timeout"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _IdleTimeoutLogic(self.shape, self.seconds)


class _IdleTimeoutLogic(TimerFlowLogic):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape)
        self.seconds = seconds
        self.deadline = 0.0

    def pre_start(self) -> None:
        self.deadline = self.now() + self.seconds
        check = timeout_check_interval(self.seconds)
        self.schedule_with_fixed_delay(_KEY, check, check)

    def on_push(self) -> None:
        self.deadline = self.now() + self.seconds
        self.push(self.out, self.grab(self.in_))

    def on_timer(self, key: Any) -> None:
        if self.now() > self.deadline + _EPS:
            self.fail_stage(
                StreamIdleTimeoutError(
                    f"[{self.stage_name}] idle timeout: no elements passed in the last "
                    f"{_fmt(self.seconds)}"
                )
            )


class CompletionTimeout(_TimeoutStage):
    """``completion_timeout(seconds)``: fail if the stream has not completed in ``seconds``.

    Emits when upstream emits. Backpressures when downstream does. Completes when
    upstream completes. Fails when upstream fails, or with a ``StreamTimeoutError`` when
    the stream did not complete in time. Cancels when downstream cancels.
    """

    name = "completion_timeout"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _CompletionTimeoutLogic(self.shape, self.seconds)


class _CompletionTimeoutLogic(_DeadlineLogic):
    def on_timer(self, key: Any) -> None:
        self.fail_stage(
            CompletionTimeoutError(
                f"[{self.stage_name}] completion timeout: the stream has not completed in "
                f"{_fmt(self.seconds)}"
            )
        )


class InitialTimeout(_TimeoutStage):
    """``initial_timeout(seconds)``: fail if the first element has not passed in ``seconds``.

    Emits when upstream emits. Backpressures when downstream does. Completes when
    upstream completes. Fails when upstream fails, or with a ``StreamTimeoutError`` when
    no element passed within ``seconds`` of materialization. Cancels when downstream
    cancels.
    """

    name = "initial_timeout"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _InitialTimeoutLogic(self.shape, self.seconds)


class _InitialTimeoutLogic(_DeadlineLogic):
    def on_push(self) -> None:
        self.cancel_timer(_KEY)
        self.push(self.out, self.grab(self.in_))

    def on_timer(self, key: Any) -> None:
        self.fail_stage(
            InitialTimeoutError(
                f"[{self.stage_name}] initial timeout: the first element has not yet passed "
                f"through in {_fmt(self.seconds)}"
            )
        )


class BackpressureTimeout(_TimeoutStage):
    """``backpressure_timeout(seconds)``: fail if, after an element was emitted, downstream
    signals no new demand for ``seconds``.

    Checked periodically (see ``timeout_check_interval``). Emits when upstream emits.
    Backpressures when downstream does. Completes when upstream completes. Fails when
    upstream fails, or with ``BackpressureTimeoutError`` when downstream stayed without demand
    too long. Cancels when downstream cancels.
    """

    name = "backpressure_timeout"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _BackpressureTimeoutLogic(self.shape, self.seconds)


class _BackpressureTimeoutLogic(TimerFlowLogic):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape)
        self.seconds = seconds
        self.deadline = 0.0
        self.waiting_demand = True

    def pre_start(self) -> None:
        self.deadline = self.now() + self.seconds
        check = timeout_check_interval(self.seconds)
        self.schedule_with_fixed_delay(_KEY, check, check)

    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))
        self.deadline = self.now() + self.seconds
        self.waiting_demand = True

    def on_pull(self) -> None:
        self.waiting_demand = False
        self.pull(self.in_)

    def on_timer(self, key: Any) -> None:
        if self.waiting_demand and self.now() > self.deadline + _EPS:
            self.fail_stage(
                BackpressureTimeoutError(
                    f"[{self.stage_name}] backpressure timeout: no demand signalled in the "
                    f"last {_fmt(self.seconds)}"
                )
            )


# -- keep_alive ----------------------------------------------------------------------------------
class KeepAlive(FlowStage):
    """``keep_alive(seconds, inject)``: emit ``inject()`` when upstream was idle for
    ``seconds`` and downstream has demand.

    Injected elements never accumulate (at most one per idle period with demand);
    upstream elements are always preferred.

    Emits when upstream emits, or when upstream was idle for ``seconds`` and downstream
    pulls. Backpressures when downstream does. Completes when upstream completes. Fails
    when upstream fails (or ``inject`` raises). Cancels when downstream cancels.
    """

    name = "keep_alive"

    def __init__(self, seconds: float, inject: Callable[[], Any]) -> None:
        if not callable(inject):
            raise TypeError(f"keep_alive inject must be a zero-argument callable, got {inject!r}")
        super().__init__()
        self.seconds = _positive("keep_alive", seconds)
        self.inject = inject

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _KeepAliveLogic(self.shape, self.seconds, self.inject)


class _KeepAliveLogic(TimerFlowLogic):
    def __init__(self, shape: FlowShape, seconds: float, inject: Callable[[], Any]) -> None:
        super().__init__(shape)
        self.seconds = seconds
        self.inject = inject
        self.deadline = 0.0

    def pre_start(self) -> None:
        self.deadline = self.now() + self.seconds
        self.pull(self.in_)

    def on_push(self) -> None:
        self.deadline = self.now() + self.seconds
        self.cancel_timer(_KEY)
        if self.is_available(self.out):
            self.push(self.out, self.grab(self.in_))
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if not self.is_available(self.in_):
            self.complete_stage()

    def on_pull(self) -> None:
        if self.is_available(self.in_):
            self.push(self.out, self.grab(self.in_))
            if self.is_closed(self.in_):
                self.complete_stage()
            else:
                self.pull(self.in_)
        elif self.now() >= self.deadline - _EPS:
            self._inject()
        else:
            self.schedule_once(_KEY, self.deadline - self.now())

    def on_timer(self, key: Any) -> None:
        if (
            self.is_available(self.out)
            and not self.is_available(self.in_)
            and self.now() >= self.deadline - _EPS
        ):
            self._inject()

    def _inject(self) -> None:
        self.deadline = self.now() + self.seconds
        self.push(self.out, self.inject())


# -- debounce ---------------------------------------------------------------------------
_NOTHING: Any = object()


class Debounce(FlowStage):
    """``debounce(seconds)``: emit an element only once ``seconds`` passed without a
    newer one; the latest element wins.

    Upstream is always pulled, so elements arriving during the quiet period replace the
    pending one and restart the period. An element whose quiet period elapsed waits for
    demand (a newer element still replaces it). Timers run on the materializer's clock.

    Emits when the quiet period after the latest element elapsed and downstream pulls,
    or (for the pending element) when upstream completes. Backpressures never (elements
    are superseded instead). Completes when upstream completes and the pending element
    was emitted. Fails when upstream fails (the pending element is dropped). Cancels when
    downstream cancels. Supervision: does not apply (no user code runs).
    """

    name = "debounce"

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"debounce needs seconds >= 0, got {seconds}")
        super().__init__()
        self.seconds = float(seconds)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DebounceLogic(self.shape, self.seconds)


class _DebounceLogic(TimerFlowLogic):
    def __init__(self, shape: FlowShape, seconds: float) -> None:
        super().__init__(shape)
        self.seconds = seconds
        self.pending: Any = _NOTHING
        self.quiet = False  # the pending element's quiet period elapsed

    def pre_start(self) -> None:
        self.pull(self.in_)

    def on_push(self) -> None:
        self.pending = self.grab(self.in_)
        self.quiet = False
        self.schedule_once("debounce", self.seconds)
        self.pull(self.in_)

    def on_timer(self, key: Any) -> None:
        self.quiet = True
        if self.is_available(self.out):
            self._emit()

    def _emit(self) -> None:
        x, self.pending = self.pending, _NOTHING
        self.quiet = False
        self.push(self.out, x)

    def on_pull(self) -> None:
        if self.quiet and self.pending is not _NOTHING:
            self._emit()

    def on_upstream_finish(self) -> None:
        self.cancel_timer("debounce")
        if self.pending is _NOTHING:
            self.complete_stage()
        else:
            x, self.pending = self.pending, _NOTHING
            self.emit(self.out, x, self.complete_stage)
