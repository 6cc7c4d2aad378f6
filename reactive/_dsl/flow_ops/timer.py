"""Time and rate operators (``_ops/timer.py``, ``_ops/rate.py``): throttle, delays,
timeouts, conflate, ...

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from ..._checks import (
    check,
    fn,
    opt_fn,
    opt_int_at_least,
    pos_int,
)
from ..._checks import seconds as secs
from ._base import Mat, OpsBase, Out, Repr, S, U

if TYPE_CHECKING:
    from ..._ops.buffers import OverflowStrategy
    from ..._ops.delays import DelayOverflowStrategy, DelayStrategy
    from ..._ops.timer import ThrottleMode

__all__ = ["TimeOps"]


class TimeOps(OpsBase[Out, Mat]):
    """Time and rate operators (``_ops/timer.py``, ``_ops/rate.py``): throttle, delays,
    timeouts, conflate, ..."""

    __slots__ = ()

    def throttle(
        self,
        elements: int,
        per: float,
        maximum_burst: int | None = None,
        mode: ThrottleMode | None = None,
        cost: Callable[[Out], int] | None = None,
    ) -> Repr[Out, Mat]:
        """Limit the rate to ``elements`` (tokens) per ``per`` seconds with a token bucket.

        The bucket holds ``maximum_burst`` tokens (default ``max(1, tokens per 100 ms)``)
        and starts full; ``cost(x)`` tokens are taken per element (1 without ``cost``).
        ``ThrottleMode.shaping`` (default) delays elements; ``ThrottleMode.enforcing``
        fails with ``RateExceededError`` instead.

        Emits when upstream emits and enough tokens are there. Backpressures when
        downstream does or an element waits for tokens. Completes when upstream completes
        (after a waiting element). Fails when upstream fails or the rate is exceeded in
        enforcing mode. Cancels when downstream cancels.
        """
        check(
            "throttle(elements, per, maximum_burst, mode, cost)",
            pos_int(elements),
            secs(per),
            opt_int_at_least(maximum_burst, -1),
            None,
            opt_fn(cost),
        )
        from ..._ops.timer import Throttle, ThrottleMode

        m = ThrottleMode.shaping if mode is None else mode
        return self._via_stage(Throttle(elements, per, maximum_burst, m, cost))

    def grouped_within(self, n: int, seconds: float) -> Repr[list[Out], Mat]:
        """Lists of up to ``n`` elements, closed by count or every ``seconds``, never empty.

        Emits when the group is full, or the periodic timer fired with a non-empty group,
        and downstream pulls. Backpressures when a full group waits for downstream.
        Completes when upstream completes (after the last partial group). Fails when
        upstream fails. Cancels when downstream cancels.
        """
        check("grouped_within(n, seconds)", pos_int(n), secs(seconds))
        from ..._ops.timer import GroupedWithin

        return self._via_stage(GroupedWithin(n, seconds))

    def delay(
        self,
        seconds: float,
        strategy: OverflowStrategy | DelayOverflowStrategy | None = None,
        buffer_size: int | None = None,
    ) -> Repr[Out, Mat]:
        """Hold every element for ``seconds`` in a buffer of ``buffer_size`` elements
        (default: the ``Attributes.input_buffer`` max, 16, as Akka).

        ``strategy`` (an ``OverflowStrategy`` or a ``DelayOverflowStrategy``, default
        ``backpressure``) says what a full buffer does with a new element.
        ``DelayOverflowStrategy.emit_early`` pushes the buffer's head at once, before its
        delay elapsed, and backpressures while downstream has no demand. (Akka's default,
        ``dropTail``, drops elements silently; here nothing is dropped unless a dropping
        strategy is asked for.) Emits when the head element's delay elapsed and
        downstream pulls, or (``emit_early``) when a new element finds the buffer full.
        Backpressures when the buffer is full (``backpressure``; ``emit_early`` while
        downstream has no demand). Completes when upstream completed and the buffer is
        empty. Fails when upstream fails (or on overflow with ``fail``). Cancels when
        downstream cancels.
        """
        check(
            "delay(seconds, strategy, buffer_size)",
            secs(seconds, False),
            None,
            opt_int_at_least(buffer_size, 1),
        )
        from ..._ops.buffers import OverflowStrategy
        from ..._ops.delays import delay_stage

        s = OverflowStrategy.backpressure if strategy is None else strategy
        return self._via_stage(delay_stage(seconds, s, buffer_size))

    def delay_with(
        self,
        strategy_supplier: Callable[[], DelayStrategy[Out]],
        overflow_strategy: OverflowStrategy | DelayOverflowStrategy | None = None,
        buffer_size: int | None = None,
    ) -> Repr[Out, Mat]:
        """Delay each element by ``strategy.next_delay(element)`` seconds (Akka's
        ``delayWith``), ``strategy`` being ``strategy_supplier()``, called once per
        materialization (a strategy may keep state: see
        ``DelayStrategy.linear_increasing_delay``).

        The buffer and ``overflow_strategy`` work as ``delay``'s (default
        ``backpressure``; ``DelayOverflowStrategy.emit_early`` too; ``buffer_size``
        defaults to the ``Attributes.input_buffer`` max, 16). Elements leave in arrival
        order: one with a short delay waits behind one with a longer delay.
        ``next_delay`` must return a finite number ``>= 0``; anything else fails the
        stream with a ``ValueError`` naming the stage.

        Emits when the head element's delay elapsed and downstream pulls, or
        (``emit_early``) when a new element finds the buffer full. Backpressures when the
        buffer is full (``backpressure``; ``emit_early`` while downstream has no demand).
        Completes when upstream completed and the buffer is empty. Fails when upstream
        fails, the supplier or ``next_delay`` raises or returns something invalid, or on
        overflow with ``fail``. Cancels when downstream cancels.
        """
        check(
            "delay_with(strategy_supplier, overflow_strategy, buffer_size)",
            fn(strategy_supplier),
            None,
            opt_int_at_least(buffer_size, 1),
        )
        from ..._ops.buffers import OverflowStrategy
        from ..._ops.delays import DelayWith

        s = OverflowStrategy.backpressure if overflow_strategy is None else overflow_strategy
        return self._via_stage(DelayWith(strategy_supplier, s, buffer_size))

    def initial_delay(self, seconds: float) -> Repr[Out, Mat]:
        """Let nothing through before ``seconds`` after materialization.

        Emits when upstream emits after the delay. Backpressures when the delay has not
        elapsed yet, or downstream does. Completes when upstream completes. Fails when upstream
        fails. Cancels when downstream cancels.
        """
        check("initial_delay(seconds)", secs(seconds, False))
        from ..._ops.timer import InitialDelay

        return self._via_stage(InitialDelay(seconds))

    def take_within(self, seconds: float) -> Repr[Out, Mat]:
        """Pass elements for ``seconds`` after materialization, then complete.

        Emits when upstream emits in the window. Backpressures when downstream does.
        Completes when the window closes or upstream completes. Fails when upstream
        fails. Cancels when downstream cancels or the window closes.
        """
        check("take_within(seconds)", secs(seconds))
        from ..._ops.timer import TakeWithin

        return self._via_stage(TakeWithin(seconds))

    def drop_within(self, seconds: float) -> Repr[Out, Mat]:
        """Drop elements for ``seconds`` after materialization, then pass them.

        Emits when upstream emits after the window. Backpressures when downstream does
        (after the window). Completes when upstream completes. Fails when upstream fails.
        Cancels when downstream cancels.
        """
        check("drop_within(seconds)", secs(seconds))
        from ..._ops.timer import DropWithin

        return self._via_stage(DropWithin(seconds))

    def idle_timeout(self, seconds: float) -> Repr[Out, Mat]:
        """Fail with ``StreamIdleTimeoutError`` (a ``StreamTimeoutError``) if no element
        passed for ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout (checked
        periodically). Cancels when downstream cancels.
        """
        check("idle_timeout(seconds)", secs(seconds))
        from ..._ops.timer import IdleTimeout

        return self._via_stage(IdleTimeout(seconds))

    def completion_timeout(self, seconds: float) -> Repr[Out, Mat]:
        """Fail with ``CompletionTimeoutError`` (a ``StreamTimeoutError``) if the stream has
        not completed in ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout. Cancels when
        downstream cancels.
        """
        check("completion_timeout(seconds)", secs(seconds))
        from ..._ops.timer import CompletionTimeout

        return self._via_stage(CompletionTimeout(seconds))

    def initial_timeout(self, seconds: float) -> Repr[Out, Mat]:
        """Fail with ``InitialTimeoutError`` (a ``StreamTimeoutError``) if the first element
        has not passed in ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout. Cancels when
        downstream cancels.
        """
        check("initial_timeout(seconds)", secs(seconds))
        from ..._ops.timer import InitialTimeout

        return self._via_stage(InitialTimeout(seconds))

    def backpressure_timeout(self, seconds: float) -> Repr[Out, Mat]:
        """Fail with ``BackpressureTimeoutError`` (a ``StreamTimeoutError``) if, after an
        emission, downstream signals no
        demand for ``seconds``.

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails or on the timeout (checked
        periodically). Cancels when downstream cancels.
        """
        check("backpressure_timeout(seconds)", secs(seconds))
        from ..._ops.timer import BackpressureTimeout

        return self._via_stage(BackpressureTimeout(seconds))

    def keep_alive(self, seconds: float, inject: Callable[[], U]) -> Repr[Out | U, Mat]:
        """Emit ``inject()`` when upstream was idle for ``seconds`` and downstream pulls.

        Emits when upstream emits, or after ``seconds`` of upstream idleness with demand.
        Backpressures when downstream does. Completes when upstream completes. Fails when
        upstream fails. Cancels when downstream cancels.
        """
        check("keep_alive(seconds, inject)", secs(seconds), fn(inject))
        from ..._ops.timer import KeepAlive

        return self._via_stage(KeepAlive(seconds, inject))

    def conflate(self, f: Callable[[Out, Out], Out]) -> Repr[Out, Mat]:
        """While downstream is slow, fold incoming elements into one with ``f``.

        Emits when downstream pulls and a summary exists. Backpressures never (upstream
        is pulled eagerly). Completes when upstream completes and the summary was
        emitted. Fails when upstream fails. Cancels when downstream cancels.
        Supervision: resume drops the element; restart also drops the summary.
        """
        check("conflate(f)", fn(f))
        from ..._ops.rate import Batch

        return self._via_stage(Batch.conflate(lambda x: x, f))

    def conflate_with_seed(
        self, seed: Callable[[Out], U], f: Callable[[U, Out], U]
    ) -> Repr[U, Mat]:
        """Like ``conflate``; ``seed(x)`` turns the first element of a summary into it.

        Emits when downstream pulls and a summary exists. Backpressures never. Completes
        when upstream completes and the summary was emitted. Fails when upstream fails.
        Cancels when downstream cancels. Supervision: as ``conflate``.
        """
        check("conflate_with_seed(seed, f)", fn(seed), fn(f))
        from ..._ops.rate import Batch

        return self._via_stage(Batch.conflate(seed, f))

    def batch(self, max: int, seed: Callable[[Out], U], f: Callable[[U, Out], U]) -> Repr[U, Mat]:
        """Like ``conflate_with_seed`` but a summary holds at most ``max`` elements.

        Emits when downstream pulls and a summary exists. Backpressures when the summary
        is full and one more element waits. Completes when upstream completes and
        everything was emitted. Fails when upstream fails. Cancels when downstream
        cancels. Supervision: as ``conflate``.
        """
        check("batch(max, seed, f)", pos_int(max), fn(seed), fn(f))
        from ..._ops.rate import Batch

        return self._via_stage(Batch(max, lambda _: 1, seed, f))

    def batch_weighted(
        self,
        max: int,
        cost: Callable[[Out], int],
        seed: Callable[[Out], U],
        f: Callable[[U, Out], U],
    ) -> Repr[U, Mat]:
        """Like ``batch`` with a summary bounded by the total ``cost`` of its elements.

        Emits when downstream pulls and a summary exists. Backpressures when the summary
        cannot take the next element. Completes when upstream completes and everything
        was emitted. Fails when upstream fails. Cancels when downstream cancels.
        Supervision: as ``conflate``.
        """
        check("batch_weighted(max, cost, seed, f)", pos_int(max), fn(cost), fn(seed), fn(f))
        from ..._ops.rate import Batch

        return self._via_stage(Batch(max, cost, seed, f, name="batch_weighted"))

    def expand(self, f: Callable[[Out], Iterable[U]]) -> Repr[U, Mat]:
        """Replace each element by the iterator ``f(x)``, emitted while downstream is faster.

        Emits when downstream pulls and the current iterator has elements. Backpressures
        when downstream does. Completes when upstream completes and the last iterator
        emitted once (it is not drained). Fails when upstream fails or ``f`` raises.
        Cancels when downstream cancels. Supervision: resume drops the element whose ``f``
        raised (the current iterator goes on); restart also drops the current iterator;
        an iterator that raised is dropped under both.
        """
        check("expand(f)", fn(f))
        from ..._ops.rate import Expand

        return self._via_stage(Expand(f))

    def extrapolate(
        self, f: Callable[[Out], Iterable[U]], initial: U | None = None
    ) -> Repr[Out | U, Mat]:
        """Every element unchanged, then the elements of the iterator ``f(x)`` while
        downstream pulls before upstream has a new element (Akka's ``extrapolate``).

        ``initial`` (not None) goes out first, as Akka's: upstream is first pulled
        once it went out, and demand gets ``f(initial)`` until the first element
        arrives.

        Emits when downstream pulls: the newest element if it did not go out yet, else
        the next extrapolated value. Backpressures when downstream does and the newest
        element did not go out yet. Completes when upstream completes and its last
        element went out (extrapolation stops). Fails when upstream fails, or ``f`` or
        its iterator raises. Cancels when downstream cancels. Supervision: resume drops
        the element whose ``f`` raised (the current iterator goes on); restart also drops
        the current iterator; an iterator that raised is dropped under both.
        """
        check("extrapolate(f, initial)", fn(f))
        from ..._ops.rate import Extrapolate

        return self._via_stage(Extrapolate(f, initial))

    def grouped_weighted_within(
        self,
        max_weight: float,
        seconds: float,
        cost: Callable[[Out], float],
        max_number: int | None = None,
    ) -> Repr[list[Out], Mat]:
        """Lists closed by weight, count or time (Akka's ``groupedWeightedWithin``): a
        group closes when the next element would take its total ``cost`` past
        ``max_weight`` (or its size past ``max_number``), when its weight reaches
        ``max_weight``, or when the periodic timer of ``seconds`` fires; never empty.

        An element heavier than ``max_weight`` alone forms its own group. A weight must
        be a number ``>= 0``: a negative one fails the stage with a ``ValueError`` naming
        the stage, the weight and the element.

        Emits when the group is full (by weight or count) or the timer fired with a
        non-empty group, and downstream pulls. Backpressures when a full group waits for
        downstream and an element waits outside it. Completes when upstream completes
        (after the last groups). Fails when upstream fails, or a weight is negative.
        Cancels when downstream cancels. Supervision (as Pekko's): resume drops an element
        whose ``cost`` raised and keeps the group; restart also drops the group in
        progress and starts a new time window.
        """
        check(
            "grouped_weighted_within(max_weight, seconds, cost, max_number)",
            None,
            secs(seconds),
            fn(cost),
            opt_int_at_least(max_number, 1),
        )
        from ..._ops.grouping import GroupedWeightedWithin

        return self._via_stage(GroupedWeightedWithin(max_weight, seconds, cost, max_number))

    def aggregate_with_boundary(
        self,
        allocate: Callable[[], S],
        aggregate: Callable[[S, Out], tuple[S, bool]],
        harvest: Callable[[S], U | None],
        emit_on_timer: tuple[Callable[[S], bool], float] | None = None,
    ) -> Repr[U, Mat]:
        """Fold elements into an aggregate until ``aggregate`` says to emit it (Akka's
        ``aggregateWithBoundary``): ``allocate()`` starts an aggregate at the first element
        after an emission, ``aggregate(agg, x)`` returns ``(agg, emit_now)``, and
        ``harvest(agg)`` gives the element to emit (None emits nothing).
        ``emit_on_timer=(ready, seconds)`` also emits the aggregate when ``ready(agg)``
        holds at a check every ``seconds``. Upstream completion emits the aggregate in
        progress.

        Emits when ``aggregate`` returned ``emit_now``, the timer found the aggregate
        ready, or upstream completed with an aggregate in progress, and downstream pulls.
        Backpressures when downstream does (upstream is pulled only while downstream has
        demand). Completes when upstream completes (after the last harvest). Fails when
        upstream fails or a function raises. Cancels when downstream cancels.
        Supervision (Pekko's; Akka does not supervise it): resume and restart both drop
        the element and the aggregate in progress, whichever function raised
        (``allocate``, ``aggregate``, ``harvest`` or the timer's ``ready``).
        """
        check(
            "aggregate_with_boundary(allocate, aggregate, harvest, emit_on_timer)",
            fn(allocate),
            fn(aggregate),
            fn(harvest),
        )
        from ..._ops.grouping import AggregateWithBoundary

        return self._via_stage(AggregateWithBoundary(allocate, aggregate, harvest, emit_on_timer))

    def debounce(self, seconds: float) -> Repr[Out, Mat]:
        """Emit an element only once ``seconds`` passed without a newer one (the latest
        wins); on upstream completion the pending element is emitted at once.

        Emits when the quiet period after the latest element elapsed and downstream
        pulls, or when upstream completes with an element pending. Backpressures never
        (newer elements replace older ones). Completes when upstream completes and the
        pending element was emitted. Fails when upstream fails. Cancels when downstream
        cancels. Supervision: does not apply (no user code runs).
        """
        check("debounce(seconds)", secs(seconds, False))
        from ..._ops.timer import Debounce

        return self._via_stage(Debounce(seconds))
