"""Rate-detached operators: conflate, conflate_with_seed, batch, batch_weighted, expand,
extrapolate.

They decouple the upstream rate from the downstream rate: the batching family pulls
upstream eagerly and folds elements into a summary while downstream is slow; ``expand``
keeps emitting from an iterator while upstream is slow (``extrapolate`` too, after the
original element).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from .simple import FlowLogic, FlowStage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from .._stage.logic import GraphStageLogic
    from .._stage.shapes import FlowShape

__all__ = ["Batch", "Expand", "Extrapolate"]

_MISSING: Any = object()


def _zero_cost(_: Any) -> int:
    return 0


class Batch(FlowStage):
    """``batch_weighted(max, cost, seed, f)``: fold elements into a summary while
    downstream is slow, up to a total weight of ``max``.

    ``seed(x)`` starts a summary, ``f(summary, x)`` adds to it, ``cost(x)`` weighs an
    element. ``conflate``/``conflate_with_seed`` are the unbounded case (every cost 0),
    ``batch`` counts elements (every cost 1). Upstream is pulled eagerly, so an element
    that does not fit any more waits outside the summary (it seeds the next one).

    Emits when downstream pulls and a summary exists. Backpressures when the summary
    reached ``max`` and an element waits outside it (never for ``conflate``). Completes
    when upstream completes and the summary and the waiting element were emitted. Fails
    when upstream fails. Cancels when downstream cancels. Supervision: resume drops the
    element whose ``seed``/``f``/``cost`` raised; restart also drops the summary.
    """

    name = "batch"

    def __init__(
        self,
        max: int,
        cost: Callable[[Any], int],
        seed: Callable[[Any], Any],
        f: Callable[[Any, Any], Any],
        name: str | None = None,
    ) -> None:
        if max <= 0:
            raise ValueError(f"batch max must be > 0, got {max!r}")
        super().__init__()
        self.max = max
        self.cost = cost
        self.seed = seed
        self.f = f
        if name:
            self.name = name

    @classmethod
    def conflate(cls, seed: Callable[[Any], Any], f: Callable[[Any, Any], Any]) -> Batch:
        """The stage of ``conflate_with_seed(seed, f)``: unbounded (every cost is 0)."""
        return cls(1, _zero_cost, seed, f, name="conflate")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _BatchLogic(self.shape, self)


class _BatchLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: Batch) -> None:
        super().__init__(shape)
        self.stage = stage
        self.agg: Any = _MISSING
        self.pending: Any = _MISSING
        self.left = stage.max

    def pre_start(self) -> None:
        self.pull(self.in_)

    def restart_state(self) -> None:
        self.agg = _MISSING
        self.pending = _MISSING
        self.left = self.stage.max

    def _on_resume(self, exc: BaseException) -> None:
        # The batch pulls regardless of downstream demand (the default resume does not).
        if self.is_closed(self.in_):
            if self.agg is _MISSING and self.pending is _MISSING:
                self.complete_stage()
        elif (
            self.pending is _MISSING
            and not self.has_been_pulled(self.in_)
            and not self.is_available(self.in_)
        ):
            self.pull(self.in_)

    def _seed(self, x: Any) -> None:
        st = self.stage
        cost = st.cost(x)
        self.agg = st.seed(x)
        self.left -= cost

    def _flush(self) -> None:
        if self.agg is not _MISSING:
            agg, self.agg = self.agg, _MISSING
            self.left = self.stage.max
            self.push(self.out, agg)
        if self.pending is not _MISSING:
            x, self.pending = self.pending, _MISSING
            self._seed(x)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        st = self.stage
        if self.agg is _MISSING:
            self._seed(x)
        else:
            cost = st.cost(x)
            if self.left < cost:
                self.pending = x
            else:
                self.agg = st.f(self.agg, x)
                self.left -= cost
        if self.is_available(self.out):
            self._flush()
        if self.pending is _MISSING:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.agg is _MISSING:
            self.complete_stage()

    def on_pull(self) -> None:
        if self.agg is _MISSING:
            if self.is_closed(self.in_):
                self.complete_stage()
            elif not self.has_been_pulled(self.in_):
                self.pull(self.in_)
        elif self.is_closed(self.in_):
            self._flush()
            if self.agg is _MISSING:
                self.complete_stage()
        else:
            self._flush()
            if not self.has_been_pulled(self.in_):
                self.pull(self.in_)


class Expand(FlowStage):
    """``expand(f)``: ``f(x)`` returns an iterator whose elements replace ``x``; they are
    emitted while downstream pulls faster than upstream pushes.

    A new upstream element replaces the iterator, but only once the current one emitted
    at least one element (upstream is pulled right after that first emission).

    Emits when downstream pulls and the current iterator has elements. Backpressures
    when downstream does and the current iterator has not emitted yet. Completes when
    upstream completes and the last iterator emitted at least once (the rest of it is
    not drained). Fails when upstream fails or ``f``/the iterator raises. Cancels when
    downstream cancels. Supervision (as Pekko): resume drops the element whose ``f``
    raised and keeps the current iterator; restart also drops the current iterator; an
    iterator that raised is dropped under both (its state cannot be trusted).
    """

    name = "expand"

    def __init__(self, f: Callable[[Any], Iterable[Any]]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ExpandLogic(self.shape, self.f)


class _ExpandLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, f: Callable[[Any], Iterable[Any]]) -> None:
        super().__init__(shape)
        self.f = f
        self.it: Iterator[Any] | None = None
        self.nxt: Any = _MISSING
        self.expanded = False

    def pre_start(self) -> None:
        self.pull(self.in_)

    def restart_state(self) -> None:
        self.it = None
        self.nxt = _MISSING
        self.expanded = False

    def _on_resume(self, exc: BaseException) -> None:
        # f raised in on_push (the current iterator, expanded or empty, is kept) or the
        # iterator raised (_advance dropped it): either way, ask upstream for more.
        if self.nxt is _MISSING and self.is_closed(self.in_):
            self.complete_stage()
        elif not self.is_closed(self.in_) and not self.has_been_pulled(self.in_):
            self.pull(self.in_)

    def _advance(self) -> None:
        """Look ahead one element; an iterator that raises is dropped (then re-raised)."""
        assert self.it is not None
        try:
            self.nxt = next(self.it, _MISSING)
        except BaseException:
            self.it = None
            self.nxt = _MISSING
            raise

    def _emit_next(self) -> None:
        """Push the next element of the iterator (one is known to be there); look ahead."""
        x = self.nxt
        self.push(self.out, x)
        self._advance()

    def on_push(self) -> None:
        got = self.f(self.grab(self.in_))
        try:
            it = iter(got)
        except TypeError:
            raise TypeError(
                f"[{self.stage_name}] the function returned {type(got).__name__} {got!r}, "
                "not an iterable"
            ) from None
        self.it = it
        self.expanded = False
        self._advance()
        if self.nxt is _MISSING:
            self.pull(self.in_)
        elif self.is_available(self.out):
            self.expanded = True
            self.pull(self.in_)
            self._emit_next()

    def on_upstream_finish(self) -> None:
        if self.nxt is _MISSING or self.expanded:
            self.complete_stage()

    def on_pull(self) -> None:
        if self.nxt is _MISSING:
            return
        if self.expanded:
            self._emit_next()
            return
        self.expanded = True
        if self.is_closed(self.in_):
            self.push(self.out, self.nxt)
            self.complete_stage()
        else:
            # pull first, to be fair when upstream is not actually slow
            self.pull(self.in_)
            self._emit_next()


class Extrapolate(FlowStage):
    """``extrapolate(f, initial=None)``: every element goes out unchanged, then the
    elements of the iterator ``f(x)`` while downstream pulls before upstream has a new
    element (Akka's ``extrapolate``: ``expand`` over ``x`` followed by ``f(x)``).

    ``initial`` (not None) is the first element out, as Akka's (``prepend`` of
    ``initial`` ahead of the ``expand``): upstream is first pulled once it went out, and
    while no element arrived, demand gets ``f(initial)``.

    Emits when downstream pulls: the newest element if it did not go out yet, else the
    next extrapolated value. Backpressures when downstream does and the newest element
    did not go out yet. Completes when upstream completes and its last element went out
    (extrapolation stops). Fails when upstream fails, or ``f`` or its iterator raises.
    Cancels when downstream cancels. Supervision (as ``expand``): resume drops the
    element whose ``f`` raised and keeps the current iterator; restart also drops the
    current iterator; an iterator that raised is dropped under both.
    """

    name = "extrapolate"

    def __init__(self, f: Callable[[Any], Iterable[Any]], initial: Any = None) -> None:
        super().__init__()
        self.f = f
        self.initial = initial

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ExtrapolateLogic(self.shape, self.f, self.initial)


class _ExtrapolateLogic(_ExpandLogic):
    def __init__(self, shape: FlowShape, f: Callable[[Any], Iterable[Any]], initial: Any) -> None:
        super().__init__(shape, self._originals_first)
        self.extrapolator = f
        self.initial = initial

    def _originals_first(self, x: Any) -> Iterator[Any]:
        got = self.extrapolator(x)
        try:
            it = iter(got)
        except TypeError:
            raise TypeError(
                f"[{self._stage_name}] the function returned {type(got).__name__} {got!r}, "
                "not an iterable"
            ) from None
        return itertools.chain((x,), it)

    def pre_start(self) -> None:
        if self.initial is not None:
            self.it = self._originals_first(self.initial)
            self._advance()  # the initial element itself
            return  # upstream is pulled once it went out (on_pull)
        super().pre_start()

    def on_pull(self) -> None:
        if self.nxt is _MISSING:
            return
        if self.expanded:
            self._emit_next()
            return
        self.expanded = True
        if self.is_closed(self.in_):
            self.push(self.out, self.nxt)
            self.complete_stage()
        else:
            # (after the initial element, upstream is pulled now, the first time)
            if not self.has_been_pulled(self.in_):
                self.pull(self.in_)
            self._emit_next()
