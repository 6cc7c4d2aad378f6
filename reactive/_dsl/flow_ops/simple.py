"""Element-by-element operators (``_ops/simple.py``): map, filter, scan, take, grouped, ...

One family of ``FlowOps`` (``reactive/_dsl/blueprints.py``), the operators shared by
``Source``, ``Flow`` and ``SubFlow``: a mixin whose methods build stages and append them
with the primitives of :class:`~._base.OpsBase`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..._checks import (
    check,
    element,
    fn,
    integer,
    opt_fn,
    pos_int,
    string,
)
from ._base import Mat, OpsBase, Out, Repr, S, T, U

__all__ = ["SimpleOps"]

_MISSING: Any = object()


class SimpleOps(OpsBase[Out, Mat]):
    """Element-by-element operators (``_ops/simple.py``): map, filter, scan, take, grouped, ..."""

    __slots__ = ()

    def map(self, f: Callable[[Out], U]) -> Repr[U, Mat]:
        """Transform each element with ``f``.

        Emits when f returns. Backpressures when downstream does. Completes when upstream
        does. Fails when upstream fails or f raises. Cancels when downstream cancels.
        Supervision: resume/restart drop the element.
        """
        check("map(f)", fn(f))
        from ..._ops.simple import Map

        return self._via_stage(Map(f))

    def filter(self, p: Callable[[Out], bool]) -> Repr[Out, Mat]:
        """Pass elements for which ``p`` holds.

        Emits when ``p`` holds for an element. Backpressures when ``p`` holds and downstream
        does (an element that fails ``p`` is dropped and the next one pulled). Completes when
        upstream completes. Fails when upstream fails or ``p`` raises. Cancels when downstream
        cancels. Supervision: resume/restart drop the element.
        """
        check("filter(p)", fn(p))
        from ..._ops.simple import Filter

        return self._via_stage(Filter(p))

    def filter_not(self, p: Callable[[Out], bool]) -> Repr[Out, Mat]:
        """Pass elements for which ``p`` does not hold.

        Emits when ``p`` does not hold for an element. Backpressures when ``p`` does not hold
        and downstream does. Completes when upstream completes. Fails when upstream fails or
        ``p`` raises. Cancels when downstream cancels. Supervision: resume/restart drop the
        element.
        """
        check("filter_not(p)", fn(p))
        from ..._ops.simple import Filter

        return self._via_stage(Filter(p, negate=True))

    def map_concat(self, f: Callable[[Out], Iterable[U]]) -> Repr[U, Mat]:
        """Emit every element of the iterable ``f(x)`` in order (lazily).

        Emits when downstream pulls and the current iterable has an element left (an empty
        iterable emits nothing and pulls the next element). Backpressures when downstream does,
        or the current iterable still has elements. Completes when upstream completed and the
        current iterable is exhausted. Fails when upstream fails, or ``f`` or iterating its
        result raises (after the elements the iterable gave before). Cancels when downstream
        cancels. Supervision: resume drops the element (and the rest of its iterable);
        restart does the same.
        """
        check("map_concat(f)", fn(f))
        from ..._ops.simple import MapConcat

        return self._via_stage(MapConcat(f))

    def stateful_map_concat(
        self, factory: Callable[[], Callable[[Out], Iterable[U]]]
    ) -> Repr[U, Mat]:
        """``map_concat`` whose function comes from ``factory()`` once per run.

        Emits when downstream pulls and the current iterable has an element left.
        Backpressures when downstream does, or the current iterable still has elements.
        Completes when upstream completed and the current iterable is exhausted. Fails when
        upstream fails, or ``factory``, the function or iterating its result raises. Cancels
        when downstream cancels. Supervision: resume drops the element; restart also calls
        ``factory()`` again for a fresh function.
        """
        check("stateful_map_concat(factory)", fn(factory))
        from ..._ops.simple import MapConcat

        return self._via_stage(MapConcat(None, factory))

    def stateful_map(
        self,
        create: Callable[[], S],
        f: Callable[[S, Out], tuple[S, U]],
        on_complete: Callable[[S], U | None] | None = None,
    ) -> Repr[U, Mat]:
        """Map with state: ``f(state, x) -> (state, y)``; ``on_complete(state)`` may emit
        a last element on upstream completion (None emits nothing).

        ``create()`` makes the state when the stream starts; a ``y`` of None emits nothing.
        ``on_complete(state)`` runs exactly once per state: on completion, failure,
        cancellation, abrupt termination, or before a supervision restart creates a new state;
        its value is emitted on completion, before a failure, and before a restart (as Akka).

        Emits when ``f`` returned a ``y`` that is not None and downstream pulls.
        Backpressures when downstream does. Completes when upstream completes (after the value
        of ``on_complete``, if not None). Fails when upstream fails or ``f`` raises under
        ``stop`` (after the value of ``on_complete``). Cancels when downstream cancels (then
        ``on_complete`` runs, its value is dropped). Supervision: resume drops the element;
        restart also replaces the state.
        """
        check("stateful_map(create, f, on_complete)", fn(create), fn(f), opt_fn(on_complete))
        from ..._ops.simple import StatefulMap

        return self._via_stage(StatefulMap(create, f, on_complete))

    def scan(self, zero: U, f: Callable[[U, Out], U]) -> Repr[U, Mat]:
        """Emit ``zero`` first, then every running accumulation ``f(acc, x)``.

        Emits when the zero or an accumulation is ready and downstream pulls (upstream is not
        pulled before the second element is demanded). Backpressures when downstream does.
        Completes when upstream completes (after the zero, for an empty stream). Fails when
        upstream fails or ``f`` raises. Cancels when downstream cancels. Supervision: resume
        drops the element and keeps the accumulator; restart drops it, resets the accumulator
        and emits the zero again (as Akka).
        """
        check("scan(zero, f)", element(zero), fn(f))
        from ..._ops.simple import Scan

        return self._via_stage(Scan(zero, f))

    def fold(self, zero: U, f: Callable[[U, Out], U]) -> Repr[U, Mat]:
        """Emit the final accumulation on completion (``zero`` for an empty stream).

        Emits when upstream completes and downstream pulls (one element). Backpressures when
        downstream does, once upstream completed; upstream is pulled from the start, without
        waiting for demand. Completes when upstream completes (after the element). Fails when
        upstream fails or ``f`` raises. Cancels when downstream cancels. Supervision: resume
        drops the element; restart also resets the accumulator to ``zero``.
        """
        check("fold(zero, f)", None, fn(f))
        from ..._ops.simple import Fold

        return self._via_stage(Fold(zero, f))

    def reduce(self, f: Callable[[Out, Out], Out]) -> Repr[Out, Mat]:
        """Like ``fold`` seeded with the first element; fails on an empty stream.

        Emits when upstream completes and downstream pulls (one element). Backpressures when
        downstream does, once upstream completed; upstream is pulled from the start. Completes
        when upstream completes (after the element). Fails when upstream fails, ``f`` raises,
        or upstream completes empty (``NoSuchElementError``). Cancels when downstream cancels.
        Supervision: resume drops the element; restart also forgets the accumulation.
        """
        check("reduce(f)", fn(f))
        from ..._ops.simple import Reduce

        return self._via_stage(Reduce(f))

    def take(self, n: int) -> Repr[Out, Mat]:
        """The first ``n`` elements, then complete (cancelling upstream).

        Emits when upstream emits and fewer than ``n`` elements passed. Backpressures when
        downstream does. Completes when ``n`` elements passed (at once for ``n <= 0``) or
        upstream completes. Fails when upstream fails. Cancels when downstream cancels or
        ``n`` elements passed.
        """
        check("take(n)", integer(n))
        from ..._ops.simple import Take

        return self._via_stage(Take(n))

    def take_while(self, p: Callable[[Out], bool], inclusive: bool = False) -> Repr[Out, Mat]:
        """Pass while ``p`` holds; complete at the first element where it does not.

        That element is emitted only with ``inclusive``.

        Emits when ``p`` holds for an element (or for the first element where it does not,
        with ``inclusive``). Backpressures when downstream does. Completes when ``p`` does not
        hold or upstream completes. Fails when upstream fails or ``p`` raises. Cancels when
        downstream cancels or ``p`` does not hold. Supervision: resume/restart drop the
        element.
        """
        check("take_while(p, inclusive)", fn(p))
        from ..._ops.simple import TakeWhile

        return self._via_stage(TakeWhile(p, inclusive))

    def drop(self, n: int) -> Repr[Out, Mat]:
        """Skip the first ``n`` elements.

        Emits when the first ``n`` elements were dropped and upstream emits. Backpressures
        when the first ``n`` elements were dropped and downstream does. Completes when
        upstream completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        check("drop(n)", integer(n))
        from ..._ops.simple import Drop

        return self._via_stage(Drop(n))

    def drop_while(self, p: Callable[[Out], bool]) -> Repr[Out, Mat]:
        """Skip elements while ``p`` holds, then pass everything.

        Emits when ``p`` returned false once, and upstream emits. Backpressures when ``p``
        returned false once and downstream does. Completes when upstream completes. Fails when
        upstream fails or ``p`` raises. Cancels when downstream cancels. Supervision:
        resume/restart drop the element.
        """
        check("drop_while(p)", fn(p))
        from ..._ops.simple import DropWhile

        return self._via_stage(DropWhile(p))

    def grouped(self, n: int) -> Repr[list[Out], Mat]:
        """Lists of ``n`` elements; the last one may be shorter.

        Emits when ``n`` elements were collected, or upstream completed with a non-empty
        group. Backpressures when a group is complete and downstream does. Completes when
        upstream completes (after the last group). Fails when upstream fails. Cancels when
        downstream cancels.
        """
        check("grouped(n)", pos_int(n))
        from ..._ops.simple import Grouped

        return self._via_stage(Grouped(n))

    def sliding(self, n: int, step: int = 1) -> Repr[list[Out], Mat]:
        """Windows of ``n`` elements advancing by ``step``.

        The last window may be shorter: a stream shorter than ``n`` gives one partial window,
        and elements after the last full window give one more.

        Emits when a window is full, or upstream completed with elements not yet in an emitted
        window. Backpressures when a window is full and downstream does. Completes when
        upstream completes (after the last window). Fails when upstream fails. Cancels when
        downstream cancels.
        """
        check("sliding(n, step)", pos_int(n), pos_int(step))
        from ..._ops.simple import Sliding

        return self._via_stage(Sliding(n, step))

    def limit(self, n: int) -> Repr[Out, Mat]:
        """Pass through; fail with ``StreamLimitReachedError`` beyond ``n`` elements.

        Emits when upstream emits and at most ``n`` elements passed. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails or
        element ``n + 1`` arrives (upstream is cancelled). Cancels when downstream cancels.
        """
        check("limit(n)", integer(n))
        from ..._ops.simple import Limit

        return self._via_stage(Limit(n))

    def limit_weighted(self, n: int, cost: Callable[[Out], int]) -> Repr[Out, Mat]:
        """Like ``limit`` with a cost per element.

        Emits when upstream emits and the total ``cost`` is at most ``n``. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails, ``cost``
        raises, or the total cost exceeds ``n`` (``StreamLimitReachedError``). Cancels when
        downstream cancels. Supervision: resume drops the element; restart also resets the
        budget to ``n``.
        """
        check("limit_weighted(n, cost)", integer(n), fn(cost))
        from ..._ops.simple import Limit

        return self._via_stage(Limit(n, cost))

    def intersperse(self, inject: U, start: U = _MISSING, end: U = _MISSING) -> Repr[Out | U, Mat]:
        """Insert ``inject`` between elements; optional ``start`` and ``end`` markers.

        ``start`` goes out first, even before the first element (on an empty stream too);
        ``end`` goes out when upstream completes.

        Emits when upstream emits (the element, preceded by ``inject`` from the second one on)
        or for the markers. Backpressures when downstream does. Completes when upstream
        completes (after ``end``). Fails when upstream fails. Cancels when downstream cancels.
        """
        check("intersperse(inject, start, end)", element(inject), element(start), element(end))
        from ..._ops.simple import Intersperse

        kw = {k: v for k, v in (("start", start), ("end", end)) if v is not _MISSING}
        return self._via_stage(Intersperse(inject, **kw))

    def zip_with_index(self) -> Repr[tuple[Out, int], Mat]:
        """Pair each element with its index: ``(x, i)`` from 0.

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails. Cancels when downstream cancels.
        """
        from ..._ops.simple import ZipWithIndex

        return self._via_stage(ZipWithIndex())

    def log(
        self, name: str, extract: Callable[[Out], Any] | None = None, logger: Any = None
    ) -> Repr[Out, Mat]:
        """Log elements, completion and failure through ``logging``; pass through.

        Elements (``extract(x)`` when given) and completion at DEBUG, failure at ERROR, on
        ``logger`` (default ``reactive.log``); ``Attributes.log_levels`` changes the levels,
        and ``Attributes.LOG_LEVEL_OFF`` as a level switches that event off (Akka's
        ``Attributes.logLevelOff``).

        Emits when upstream emits. Backpressures when downstream does. Completes when upstream
        completes. Fails when upstream fails or ``extract`` raises. Cancels when downstream
        cancels (logged too). Supervision: resume/restart drop the element.
        """
        check("log(name, extract, logger)", string(name), opt_fn(extract))
        from ..._ops.simple import Log

        return self._via_stage(Log(name, extract, logger))

    def drop_repeated(self, eq: Callable[[Out, Out], bool] | None = None) -> Repr[Out, Mat]:
        """Drop consecutive duplicates: elements equal (``eq(previous, x)``, else ``==``)
        to the element just before them, emitted or dropped (as Pekko's ``dropRepeated``).

        Emits when an element differs from the previous one. Backpressures when
        downstream does. Completes when upstream completes. Fails when upstream fails or
        ``eq`` raises. Cancels when downstream cancels. Supervision: resume drops the
        element; restart also forgets the previous element.
        """
        check("drop_repeated(eq)", opt_fn(eq))
        from ..._ops.simple import DropRepeated

        return self._via_stage(DropRepeated(eq))

    def collect_first(self, f: Callable[[Out], U | None]) -> Repr[U, Mat]:
        """The first ``f(x)`` that is not None, then complete (Pekko's ``collectFirst``;
        ``f`` returns None where Akka's partial function is not defined).

        Emits when ``f`` returned a value that is not None for the first time.
        Backpressures when downstream does. Completes when that value went out
        (upstream is cancelled) or upstream completes. Fails when upstream fails or
        ``f`` raises. Cancels when downstream cancels or the value went out.
        Supervision: resume/restart drop the element.
        """
        check("collect_first(f)", fn(f))
        from ..._ops.collecting import CollectFirst

        return self._via_stage(CollectFirst(f))

    def collect_while(self, f: Callable[[Out], U | None]) -> Repr[U, Mat]:
        """``f(x)`` while it is not None; complete at the first element it returns None
        for (Pekko's ``collectWhile``; None is "not defined").

        Emits when ``f`` returned a value that is not None. Backpressures when downstream
        does. Completes when ``f`` returns None (upstream is cancelled) or upstream
        completes. Fails when upstream fails or ``f`` raises. Cancels when downstream
        cancels or ``f`` returned None. Supervision: resume/restart drop the element.
        """
        check("collect_while(f)", fn(f))
        from ..._ops.collecting import CollectWhile

        return self._via_stage(CollectWhile(f))

    def fold_while(
        self, zero: U, pred: Callable[[U], bool], f: Callable[[U, Out], U]
    ) -> Repr[U, Mat]:
        """``fold`` that stops as soon as ``pred(acc)`` is false, emitting the
        accumulation reached (Pekko's ``foldWhile``). ``pred`` is tested only on what
        ``f`` returned, never on ``zero``: a ``pred`` false from the start emits
        ``f(zero, first)``; an empty stream emits ``zero``.

        Emits when ``pred`` turned false for the accumulation, or upstream completed (the
        final accumulation, ``zero`` for an empty stream), and downstream pulls.
        Backpressures when downstream does: upstream is pulled only once downstream
        pulled (Pekko's ``Fold``). Completes when the accumulation went out. Fails when
        upstream fails or ``f``/``pred`` raises. Cancels when downstream cancels or
        ``pred`` turned false (upstream is cancelled). Supervision: resume drops the
        element when ``f`` raises and keeps the accumulation ``f`` returned when
        ``pred`` raises (as Pekko); restart also resets the accumulation to ``zero``.
        """
        check("fold_while(zero, pred, f)", element(zero), fn(pred), fn(f))
        from ..._ops.collecting import FoldWhile

        return self._via_stage(FoldWhile(zero, pred, f))

    def grouped_weighted(
        self, min_weight: float, cost: Callable[[Out], float]
    ) -> Repr[list[Out], Mat]:
        """Lists closed as soon as the total ``cost(x)`` of their elements reaches
        ``min_weight`` (Akka's ``groupedWeighted``); the last one may be lighter.

        A weight must be a number ``>= 0``: a negative one fails the stage with a
        ``ValueError`` naming the stage, the weight and the element.

        Emits when the group's weight reached ``min_weight``, or upstream completed with
        a non-empty group. Backpressures when a group is complete and downstream does.
        Completes when upstream completes (after the last group). Fails when upstream
        fails, ``cost`` raises, or a weight is negative. Cancels when downstream cancels.
        """
        check("grouped_weighted(min_weight, cost)", None, fn(cost))
        from ..._ops.grouping import GroupedWeighted

        return self._via_stage(GroupedWeighted(min_weight, cost))

    def grouped_adjacent_by(self, f: Callable[[Out], Any]) -> Repr[list[Out], Mat]:
        """Lists of consecutive elements with equal keys ``f(x)`` (Pekko's
        ``groupedAdjacentBy``): a group closes when the key changes.

        A key of None is an error (a ``ValueError`` naming the stage and the element,
        decided on by supervision like an exception of ``f``).

        Emits when the key changes and a group is complete, or upstream completed with
        a non-empty group. Backpressures when a group is complete and downstream does.
        Completes when upstream completes (after the last group). Fails when upstream
        fails, ``f`` raises or returns None. Cancels when downstream cancels.
        Supervision: resume drops the element ``f`` raised on; restart also drops the
        group being built.
        """
        check("grouped_adjacent_by(f)", fn(f))
        from ..._ops.grouping import GroupedAdjacentBy

        return self._via_stage(GroupedAdjacentBy(f))

    def grouped_adjacent_by_weighted(
        self, f: Callable[[Out], Any], max_weight: float, cost: Callable[[Out], float]
    ) -> Repr[list[Out], Mat]:
        """``grouped_adjacent_by`` whose groups also close before the next element would
        take their total ``cost(x)`` past ``max_weight`` (Pekko's
        ``groupedAdjacentByWeighted``); an element heavier than ``max_weight`` forms a
        group of its own. A weight must be a number ``>= 0``: a negative one fails the
        stage with a ``ValueError`` naming the stage, the weight and the element.

        Emits when the key changes or the weight limit is reached, and a group is
        complete, or upstream completed with a non-empty group. Backpressures when a group
        is complete and downstream does. Completes when upstream completes (after the last
        group). Fails when upstream fails, ``f``/``cost`` raises, a key is None or a
        weight is negative. Cancels when downstream cancels. Supervision: resume drops the
        element ``f``/``cost`` raised on; restart also drops the group being built.
        """
        check("grouped_adjacent_by_weighted(f, max_weight, cost)", fn(f), None, fn(cost))
        from ..._ops.grouping import GroupedAdjacentBy

        return self._via_stage(GroupedAdjacentBy(f, max_weight, cost))

    def do_on_first(self, f: Callable[[Out], Any]) -> Repr[Out, Mat]:
        """Call ``f(x)`` for the first element, then pass it on; later elements pass
        untouched (Pekko's ``doOnFirst``).

        Emits when upstream emits (the first element once ``f`` returned). Backpressures
        when downstream does. Completes when upstream completes. Fails when upstream fails
        or ``f`` raises. Cancels when downstream cancels. Supervision (as Pekko's): resume
        drops the element ``f`` raised on and does not call ``f`` again; restart drops it
        and treats the next element as the first.
        """
        check("do_on_first(f)", fn(f))
        from ..._ops.side_effects import DoOnFirst

        return self._via_stage(DoOnFirst(f))

    def do_on_cancel(self, f: Callable[[BaseException, bool], Any]) -> Repr[Out, Mat]:
        """Call ``f(cause, was_cancelled_normally)`` when downstream cancels, then cancel
        upstream with the same cause (Pekko's ``doOnCancel``).

        ``was_cancelled_normally`` is true when the cause is no failure (a
        ``SubscriptionWithCancelError``: downstream needs no more elements or completed),
        false for a cancellation with a failure cause. If ``f`` raises, upstream is
        cancelled with that exception instead (and it is logged).

        Emits when upstream emits. Backpressures when downstream does. Completes when
        upstream completes. Fails when upstream fails. Cancels when downstream cancels
        (after ``f`` ran).
        """
        check("do_on_cancel(f)", fn(f))
        from ..._ops.side_effects import DoOnCancel

        return self._via_stage(DoOnCancel(f))

    def map_with_resource(
        self,
        create: Callable[[], T],
        f: Callable[[T, Out], U | None],
        close: Callable[[T], U | None],
    ) -> Repr[U, Mat]:
        """Map with a resource (Akka's ``mapWithResource``): ``create()`` opens it when the
        stream starts, ``f(resource, x)`` maps each element (None emits nothing), and
        ``close(resource)`` runs exactly once per resource whatever ends the stream; its
        value, if not None, is emitted when upstream completes or fails, when ``f`` fails
        the stage, and before a restart's new resource (dropped when downstream cancels
        or the stream is aborted), as Akka's.

        ``f`` runs on the event loop (Akka gives it the blocking-IO dispatcher): a call
        that blocks blocks the loop. A ``close`` that raises fails the stream with its
        exception, unless the stream already failed or was cancelled (then it is logged).

        Emits when ``f`` returned a value that is not None and downstream pulls, or for
        the value of ``close`` (upstream completion or failure, ``f`` failing, a
        restart). Backpressures when downstream does. Completes when upstream completes
        (after the value of ``close``). Fails when upstream fails, ``create``/``f``
        raises (``f``: supervision stop) or ``close`` raises, after the value of
        ``close``. Cancels when downstream cancels (the resource is closed, the value of
        ``close`` dropped). Supervision: resume drops the element; restart drops it,
        closes the resource, emits the value of ``close`` and creates a new one.
        """
        check("map_with_resource(create, f, close)", fn(create), fn(f), fn(close))
        from ..._ops.resource import MapWithResource

        return self._via_stage(MapWithResource(create, f, close))
