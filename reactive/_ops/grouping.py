"""Grouping by weight (``grouped_weighted``, ``grouped_weighted_within``), by adjacent
keys (Pekko's ``grouped_adjacent_by(_weighted)``) and by a boundary the user's function
decides (``aggregate_with_boundary``).

A weight is what ``cost(x)`` returns: a number ``>= 0`` (an int, or any real number);
a negative weight fails the stage with a ``ValueError`` naming the stage, the weight
and the element (Akka fails with an ``IllegalArgumentException``), a weight that is no
number with a ``TypeError``.
"""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Any

from .simple import FlowLogic, FlowStage
from .timer import TimerFlowLogic

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape

__all__ = [
    "AggregateWithBoundary",
    "GroupedAdjacentBy",
    "GroupedWeighted",
    "GroupedWeightedWithin",
    "positive_weight",
]

_KEY = "grouped_weighted_within"
_NONE: Any = object()


def positive_weight(signature: str, name: str, value: Any) -> None:
    """Check that ``value`` is a real number ``> 0`` (a weight limit); raise naming the
    operator ``signature`` and the parameter ``name`` otherwise."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(
            f"{signature}: {name} must be a number > 0, got {type(value).__name__} {value!r}"
        )
    if not float(value) > 0:
        raise ValueError(f"{signature}: {name} must be > 0, got {value!r}")


def _weight(logic: Any, cost: Callable[[Any], Any], x: Any) -> Any:
    """``cost(x)``, checked: a real number ``>= 0``."""
    w = cost(x)
    if not isinstance(w, numbers.Real) or isinstance(w, bool):
        raise TypeError(
            f"[{logic._stage_name}] the cost function returned {type(w).__name__} {w!r} "
            f"for element {x!r}, not a number"
        )
    return w


def _negative(logic: Any, w: Any, x: Any) -> ValueError:
    return ValueError(
        f"[{logic._stage_name}] negative weight {w!r} for element {x!r} is not allowed"
    )


# -- grouped_weighted ---------------------------------------------------------------------------
class GroupedWeighted(FlowStage):
    """``grouped_weighted(min_weight, cost)``: lists closed as soon as the total ``cost``
    of their elements reaches ``min_weight``; the last one may be lighter.

    Emits when the group's weight reached ``min_weight``, or upstream completed with a
    non-empty group. Backpressures when a group is complete and downstream does.
    Completes when upstream completes (after the last group). Fails when upstream
    fails, ``cost`` raises, or a weight is negative. Cancels when downstream cancels.
    """

    name = "grouped_weighted"

    def __init__(self, min_weight: Any, cost: Callable[[Any], Any]) -> None:
        positive_weight("grouped_weighted(min_weight, cost)", "min_weight", min_weight)
        super().__init__()
        self.min_weight = min_weight
        self.cost = cost

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GroupedWeightedLogic(self.shape, self.min_weight, self.cost)


class _GroupedWeightedLogic(FlowLogic):
    def __init__(self, shape: FlowShape, min_weight: Any, cost: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.min_weight = min_weight
        self.cost = cost
        self.buf: list[Any] = []
        self.total: Any = 0

    def on_push(self) -> None:
        x = self.grab(self.in_)
        w = _weight(self, self.cost, x)
        if w < 0:
            self.fail_stage(_negative(self, w, x))
            return
        self.buf.append(x)
        self.total += w
        if self.total >= self.min_weight:
            group, self.buf, self.total = self.buf, [], 0
            self.push(self.out, group)
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.buf:
            group, self.buf = self.buf, []
            self.emit(self.out, group, self.complete_stage)
        else:
            self.complete_stage()


# -- grouped_weighted_within --------------------------------------------------------------------
class GroupedWeightedWithin(FlowStage):
    """``grouped_weighted_within(max_weight, seconds, cost, max_number)``: lists closed
    when the next element would take the total ``cost`` past ``max_weight`` (or the
    count past ``max_number``), when the weight reaches ``max_weight``, or by a periodic
    timer; never empty. An element heavier than ``max_weight`` alone forms its own group.

    As Akka's ``GroupedWeightedWithin``: the timer runs with a fixed delay of ``seconds``
    and restarts whenever a group is closed by weight or count; a timer firing with an
    empty group emits nothing; firing while downstream back-pressures marks the group to
    be pushed at the next pull. An element that does not fit waits outside the group
    (one element) and starts the next one; zero-weight elements still join a group whose
    weight reached ``max_weight`` while it waits for downstream.

    Emits when the group is full (by weight or count) or the timer fired with a
    non-empty group, and downstream pulls. Backpressures when a full group waits for
    downstream and an element waits outside it. Completes when upstream completes (after
    the last groups). Fails when upstream fails (buffered elements are dropped), or a
    weight is negative. Cancels when downstream cancels. Supervision (as Pekko's): resume
    drops an element whose ``cost`` raised and keeps the group; restart also drops the
    group in progress (and an element waiting outside it) and starts a new time window.
    """

    name = "grouped_weighted_within"

    def __init__(
        self,
        max_weight: Any,
        seconds: float,
        cost: Callable[[Any], Any],
        max_number: int | None = None,
    ) -> None:
        sig = "grouped_weighted_within(max_weight, seconds, cost, max_number)"
        positive_weight(sig, "max_weight", max_weight)
        if not seconds > 0:
            raise ValueError(f"{sig}: seconds must be > 0, got {seconds!r}")
        if max_number is not None and not max_number > 0:
            raise ValueError(f"{sig}: max_number must be >= 1, got {max_number!r}")
        super().__init__()
        self.max_weight = max_weight
        self.seconds = float(seconds)
        self.cost = cost
        self.max_number = max_number

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GroupedWeightedWithinLogic(self.shape, self)


class _GroupedWeightedWithinLogic(TimerFlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: GroupedWeightedWithin) -> None:
        super().__init__(shape)
        self.max_weight = stage.max_weight
        self.max_number = stage.max_number
        self.seconds = stage.seconds
        self.cost = stage.cost
        self.buf: list[Any] = []
        self.total: Any = 0
        self.pending: Any = None
        self.pending_weight: Any = 0
        self.has_pending = False
        self.push_eagerly = False
        self.finished = False

    def pre_start(self) -> None:
        self._restart_timer()
        self.pull(self.in_)

    def _restart_timer(self) -> None:
        self.schedule_with_fixed_delay(_KEY, self.seconds, self.seconds)

    def _fits(self, w: Any) -> bool:
        n = self.max_number
        return self.total + w <= self.max_weight and (n is None or len(self.buf) < n)

    def _full(self) -> bool:
        n = self.max_number
        return self.total >= self.max_weight or (n is not None and len(self.buf) >= n)

    def _next_element(self, x: Any) -> None:
        w = _weight(self, self.cost, x)
        if w < 0:
            self.fail_stage(_negative(self, w, x))
            return
        if self._fits(w):
            self.buf.append(x)
            self.total += w
            if not self._full():
                self.pull(self.in_)
            elif not self.is_available(self.out):
                self.push_eagerly = True
                self.pull(self.in_)  # a zero-weight element may still join the group
            else:
                self._restart_timer()
                self._emit_group()
            return
        if not self.buf:  # heavier than max_weight on its own: its own group
            self.buf.append(x)
            self.total += w
            self.push_eagerly = True
        else:
            self.pending, self.pending_weight, self.has_pending = x, w, True
        self._restart_timer()
        self._try_close_group()

    def _try_close_group(self) -> None:
        if self.is_available(self.out):
            self._emit_group()
        elif self.has_pending or self.finished:
            self.push_eagerly = True

    def _emit_group(self) -> None:
        group, self.buf = self.buf, []
        self.push(self.out, group)
        if not self.finished:
            self._start_new_group()
        elif self.has_pending:
            last, self.pending, self.has_pending = self.pending, None, False
            self.emit(self.out, [last], self.complete_stage)
        else:
            self.complete_stage()

    def _start_new_group(self) -> None:
        if self.has_pending:
            self.buf = [self.pending]
            self.total = self.pending_weight
            self.pending, self.pending_weight, self.has_pending = None, 0, False
        else:
            self.total = 0
        self.push_eagerly = False
        if self.is_available(self.in_):
            self._next_element(self.grab(self.in_))
        elif not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def restart_state(self) -> None:
        # Pekko's resetGroupState: the group in progress and an element waiting outside it
        # are dropped, and the time window starts again (then _on_resume pulls).
        self.buf = []
        self.total = 0
        self.pending, self.pending_weight, self.has_pending = None, 0, False
        self.push_eagerly = False
        self._restart_timer()

    def _on_resume(self, exc: BaseException) -> None:
        # cost raised for the element just grabbed: it is dropped; ask for the next one
        if self.is_closed(self.in_):
            if not self.buf:
                self.complete_stage()
            else:
                self._try_close_group()
        elif not self.has_pending and not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def on_push(self) -> None:
        if not self.has_pending:
            self._next_element(self.grab(self.in_))
        # else: the element stays in the port until the next group starts

    def on_pull(self) -> None:
        if self.push_eagerly:
            self._emit_group()

    def on_upstream_finish(self) -> None:
        self.finished = True
        if not self.buf:  # (an element waiting outside the group implies a group)
            self.complete_stage()
        else:
            self._try_close_group()

    def on_timer(self, key: Any) -> None:
        if self.buf:
            if self.is_available(self.out):
                self._emit_group()
            else:
                self.push_eagerly = True


# -- aggregate_with_boundary --------------------------------------------------------------------
class AggregateWithBoundary(FlowStage):
    """``aggregate_with_boundary(allocate, aggregate, harvest, emit_on_timer)``: fold
    elements into an aggregate until ``aggregate`` says to emit it (Akka's
    ``aggregateWithBoundary``).

    ``allocate()`` makes a fresh aggregate at the first element after an emission;
    ``aggregate(agg, x)`` returns ``(agg, emit_now)``; ``harvest(agg)`` turns it into the
    element to emit (None emits nothing). ``emit_on_timer``, a pair ``(ready, seconds)``,
    checks every ``seconds`` (fixed delay) whether ``ready(agg)`` and emits then.
    On upstream completion the aggregate in progress is harvested and emitted.

    Emits when ``aggregate`` returned ``emit_now``, the timer found the aggregate ready,
    or upstream completed with an aggregate in progress, and downstream pulls.
    Backpressures when downstream does (upstream is pulled only while downstream has
    demand). Completes when upstream completes (after the last harvest). Fails when
    upstream fails or a function raises. Cancels when downstream cancels. Supervision
    (Pekko's; Akka does not supervise it): resume and restart both drop the element and
    the aggregate in progress, whichever function raised (``allocate``, ``aggregate``,
    ``harvest`` or the timer's ``ready``).
    """

    name = "aggregate_with_boundary"

    def __init__(
        self,
        allocate: Callable[[], Any],
        aggregate: Callable[[Any, Any], tuple[Any, bool]],
        harvest: Callable[[Any], Any],
        emit_on_timer: tuple[Callable[[Any], bool], float] | None = None,
    ) -> None:
        sig = "aggregate_with_boundary(allocate, aggregate, harvest, emit_on_timer)"
        if emit_on_timer is not None:
            ok = (
                isinstance(emit_on_timer, tuple)
                and len(emit_on_timer) == 2
                and callable(emit_on_timer[0])
                and isinstance(emit_on_timer[1], numbers.Real)
                and not isinstance(emit_on_timer[1], bool)
            )
            if not ok:
                raise TypeError(
                    f"{sig}: emit_on_timer must be None or a pair (ready, seconds), "
                    f"got {type(emit_on_timer).__name__} {emit_on_timer!r}"
                )
            if not float(emit_on_timer[1]) > 0:
                raise ValueError(
                    f"{sig}: emit_on_timer's seconds must be > 0, got {emit_on_timer[1]!r}"
                )
        super().__init__()
        self.allocate = allocate
        self.aggregate = aggregate
        self.harvest = harvest
        self.emit_on_timer = emit_on_timer

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _AggregateWithBoundaryLogic(self.shape, self)


class _AggregateWithBoundaryLogic(TimerFlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: AggregateWithBoundary) -> None:
        super().__init__(shape)
        self.stage = stage
        self.agg: Any = _NONE  # _NONE: no aggregate in progress

    def pre_start(self) -> None:
        timer = self.stage.emit_on_timer
        if timer is not None:
            self.schedule_with_fixed_delay(_KEY, timer[1], timer[1])

    def restart_state(self) -> None:
        self.agg = _NONE

    def _on_resume(self, exc: BaseException) -> None:
        # As Pekko's: a resume drops the aggregate in progress too, whichever function
        # raised (``aggregate`` may have half-updated a mutable aggregate).
        self.agg = _NONE
        if self.is_closed(self.in_):
            self.on_upstream_finish()
        elif self.is_available(self.out) and not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def _pair(self, got: Any) -> tuple[Any, Any]:
        try:
            agg, now = got
        except (TypeError, ValueError):
            raise TypeError(
                f"[{self._stage_name}] aggregate returned {type(got).__name__} {got!r}, "
                "not an (aggregate, emit_now) pair"
            ) from None
        return agg, now

    def _harvest_and_emit(self) -> None:
        agg, self.agg = self.agg, _NONE
        y = self.stage.harvest(agg)
        if y is not None:
            self.emit(self.out, y)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        agg = self.stage.allocate() if self.agg is _NONE else self.agg
        self.agg, now = self._pair(self.stage.aggregate(agg, x))
        if now:
            self._harvest_and_emit()
        if self.is_available(self.out):
            self.pull(self.in_)

    def on_pull(self) -> None:
        if not self.has_been_pulled(self.in_) and not self.is_closed(self.in_):
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.agg is not _NONE:
            self._harvest_and_emit()
        self.complete_stage()  # after what ``emit`` still holds

    def on_timer(self, key: Any) -> None:
        timer = self.stage.emit_on_timer
        if timer is not None and self.agg is not _NONE and timer[0](self.agg):
            self._harvest_and_emit()


# -- grouped_adjacent_by(_weighted) -------------------------------------------------------------
class GroupedAdjacentBy(FlowStage):
    """``grouped_adjacent_by(f)`` / ``grouped_adjacent_by_weighted(f, max_weight, cost)``
    (Pekko's ``groupedAdjacentBy(Weighted)``): lists of consecutive elements with equal
    keys ``f(x)``; with a weight, a group also closes before the next element would take
    its total ``cost`` past ``max_weight`` (an element heavier than ``max_weight`` forms
    a group of its own).

    A key of None fails the element with a ``ValueError`` naming the stage (Pekko: "Element
    key must not be null"); a negative weight fails the stage.

    Emits when the key changes (or the weight limit is reached) and a group is complete,
    or upstream completed with a non-empty group. Backpressures when a group is complete
    and downstream does. Completes when upstream completes (after the last group). Fails
    when upstream fails, ``f``/``cost`` raises, a key is None or a weight is negative.
    Cancels when downstream cancels. Supervision: resume drops the element ``f``/``cost``
    raised on (or whose key is None); restart also drops the group being built.
    """

    name = "grouped_adjacent_by"

    def __init__(
        self,
        f: Callable[[Any], Any],
        max_weight: Any = None,
        cost: Callable[[Any], Any] | None = None,
    ) -> None:
        if max_weight is not None or cost is not None:
            sig = "grouped_adjacent_by_weighted(f, max_weight, cost)"
            positive_weight(sig, "max_weight", max_weight)
            if not callable(cost):
                raise TypeError(f"{sig}: cost must be callable, got {cost!r}")
            self.name = "grouped_adjacent_by_weighted"
        super().__init__()
        self.f = f
        self.max_weight = max_weight
        self.cost = cost

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GroupedAdjacentByLogic(self.shape, self)


class _GroupedAdjacentByLogic(FlowLogic):
    """Pulls only while downstream waits for a group, so a closed group is pushed at once;
    the element that closed it starts the next group."""

    _supervised = True

    def __init__(self, shape: FlowShape, stage: GroupedAdjacentBy) -> None:
        super().__init__(shape)
        self.f = stage.f
        self.cost = stage.cost
        self.max_weight = stage.max_weight
        self.buf: list[Any] = []
        self.key: Any = _NONE
        self.total: Any = 0

    def restart_state(self) -> None:
        self.buf, self.key, self.total = [], _NONE, 0

    def on_push(self) -> None:
        x = self.grab(self.in_)
        cost = self.cost
        w: Any = 0
        if cost is not None:
            w = _weight(self, cost, x)
            if w < 0:
                self.fail_stage(_negative(self, w, x))
                return
        k = self.f(x)
        if k is None:
            raise ValueError(f"[{self._stage_name}] the key of element {x!r} is None")
        if cost is not None and not self.buf and w >= self.max_weight:
            # As Pekko's: an element as heavy as the limit, with no group open, is a group
            # of its own (a weightless element after it does not join it).
            self.push(self.out, [x])
            return
        closes = bool(self.buf) and (
            k != self.key or (cost is not None and self.total + w > self.max_weight)
        )
        if closes:
            group = self.buf
            self.buf, self.key, self.total = [x], k, w
            self.push(self.out, group)
        else:
            self.buf.append(x)
            self.key = k
            self.total += w
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.buf:
            group, self.buf = self.buf, []
            self.emit(self.out, group, self.complete_stage)
        else:
            self.complete_stage()
