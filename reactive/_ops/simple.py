"""Simple operators: one inlet, one outlet, data-driven (map, filter, scan, take, ...).

Each stage is a frozen description; its logic is its own in/out handler. Operators that
run user code set ``_supervised`` so the interpreter applies the supervision decider
when that code raises (resume drops the element; restart also resets state). Stages
that the fused fast path understands carry a ``_fusable`` spec (see ``fused.py``).
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from .._attributes import Attributes
from .._errors import NoSuchElementError, StreamLimitReachedError
from .._stage.logic import GraphStage, GraphStageLogic, InHandler, OutHandler, _Batch
from .._stage.shapes import FlowShape, Inlet, Outlet
from .._supervision import Supervision

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

_MISSING: Any = object()


@dataclass(frozen=True)
class Fusable:
    """What the fused fast path needs to know of a simple operator."""

    kind: str
    fn: Any = None
    arg: Any = None


class FlowStage(GraphStage[FlowShape]):
    """Base of one-in one-out stages: ports named ``<Name>.in`` / ``<Name>.out``."""

    name = "flow"
    _fusable: Fusable | None = None

    def __init__(self) -> None:
        cls = type(self).__name__
        self.shape = FlowShape(Inlet(f"{cls}.in"), Outlet(f"{cls}.out"))

    def __repr__(self) -> str:
        return f"{type(self).__name__}"


class FlowLogic(GraphStageLogic, InHandler, OutHandler):
    """A logic that is its own handler for one inlet and one outlet."""

    def __init__(self, shape: FlowShape) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.out: Outlet[Any] = shape.out
        self.set_handlers(self.in_, self.out, self)

    def on_pull(self) -> None:
        self.pull(self.in_)


class _FunctionLogic(FlowLogic):
    """The logic of a :class:`_FunctionStage`: supervised user code ``self.f``."""

    _supervised = True

    def __init__(self, shape: FlowShape, f: Callable[[Any], Any]) -> None:
        super().__init__(shape)
        self.f = f


class _FunctionStage(FlowStage):
    """A fusable stage of one user function ``f``, fused as its ``name``.

    Subclasses set ``name`` and ``_logic``, a :class:`_FunctionLogic` built with
    ``(shape, f)``.
    """

    _logic: ClassVar[type[_FunctionLogic]]

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f
        self._fusable = Fusable(self.name, f)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return self._logic(self.shape, self.f)


# -- map / filter ----------------------------------------------------------------------
class _MapLogic(_FunctionLogic):
    _fn_kind = "map"

    def on_push(self) -> None:
        self.push(self.out, self.f(self.grab(self.in_)))


class Map(_FunctionStage):
    """``map(f)``: 1:1 transform."""

    name = "map"
    _logic = _MapLogic


class Filter(FlowStage):
    """``filter(p)`` (or ``filter_not`` with ``negate=True``)."""

    name = "filter"

    def __init__(self, p: Callable[[Any], bool], negate: bool = False) -> None:
        super().__init__()
        self.p = p
        self.negate = negate
        if negate:
            self.name = "filter_not"
        self._fusable = Fusable("filter_not" if negate else "filter", p)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _FilterLogic(self.shape, self.p, self.negate)


class _FilterLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, p: Callable[[Any], bool], negate: bool) -> None:
        super().__init__(shape)
        self.p = p
        self.negate = negate
        self._fn_kind = "filter_not" if negate else "filter"

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if bool(self.p(x)) is not self.negate:
            self.push(self.out, x)
        else:
            self.pull(self.in_)


# -- map_concat / stateful -----------------------------------------------------------------
class MapConcat(FlowStage):
    """``map_concat(f)`` / ``stateful_map_concat(factory)``: 0..n outputs per input."""

    name = "map_concat"

    def __init__(
        self, f: Callable[[Any], Iterable[Any]] | None = None, factory: Any = None
    ) -> None:
        super().__init__()
        self.f = f
        self.factory = factory
        if factory is not None:
            self.name = "stateful_map_concat"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _MapConcatLogic(self.shape, self.f, self.factory)


class _MapConcatLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, f: Any, factory: Any) -> None:
        super().__init__(shape)
        self.factory = factory
        self.f = f if factory is None else None
        self.it: Any = None
        self.nxt: Any = _MISSING

    def pre_start(self) -> None:
        if self.factory is not None:
            self.f = self.factory()

    def restart_state(self) -> None:
        self.it = None
        self.nxt = _MISSING
        if self.factory is not None:
            self.f = self.factory()

    def _advance(self) -> None:
        try:
            self.nxt = next(self.it)
        except StopIteration:
            self.it = None
            self.nxt = _MISSING

    def on_push(self) -> None:
        assert self.f is not None
        got = self.f(self.grab(self.in_))
        try:
            self.it = iter(got)
        except TypeError:
            raise TypeError(
                f"[{self._stage_name}] the function returned {type(got).__name__} {got!r}, "
                "not an iterable"
            ) from None
        self._advance()
        if self.it is None:
            self.pull(self.in_)
        else:
            self.on_pull()

    def on_pull(self) -> None:
        if self.it is None:
            self.pull(self.in_)
            return
        x = self.nxt
        try:
            self._advance()
        except Exception as exc:
            # The iterable failed after giving ``x``: ``x`` goes out first (Pekko's
            # MapConcat pushes, then asks its iterator for more), then the failure is
            # decided on.
            self._iterable_failed(x, exc)
            return
        self.push(self.out, x)
        if self.it is None and self.is_closed(self.in_):
            self.complete_stage()

    def _iterable_failed(self, x: Any, exc: Exception) -> None:
        self.it = None
        self.nxt = _MISSING
        self.push(self.out, x)
        directive = self._decided(exc)
        if directive is Supervision.stop:
            self.fail_stage(exc)  # after ``x``, which is on its way
            return
        if directive is Supervision.restart:
            self.restart_state()
        if self.is_closed(self.in_):
            self.complete_stage()

    def on_upstream_finish(self) -> None:
        if self.it is None:
            self.complete_stage()


class StatefulMap(FlowStage):
    """``stateful_map(create, f, on_complete)``: map with per-run state.

    Emits when ``f`` returns an element (None emits nothing) and downstream pulls.
    Backpressures when downstream does. Completes when upstream completes (after the
    value of ``on_complete``, if not None). Fails when upstream fails or ``f`` raises
    (supervision stop), after emitting the value of ``on_complete``, if not None.
    Cancels when downstream cancels. ``on_complete(state)`` runs exactly once per state:
    on completion, failure, cancellation, abrupt termination, or before a supervision
    restart creates a new state (its value is then emitted first, as in Akka).
    """

    name = "stateful_map"

    def __init__(
        self, create: Callable[[], Any], f: Callable[[Any, Any], Any], on_complete: Any
    ) -> None:
        super().__init__()
        self.create = create
        self.f = f
        self.on_complete = on_complete

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _StatefulMapLogic(self.shape, self)


class _StatefulMapLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: StatefulMap) -> None:
        super().__init__(shape)
        self.stage = stage
        self.state: Any = _MISSING
        self.done = True  # True while no state needs on_complete

    def pre_start(self) -> None:
        self.state = self.stage.create()
        self.done = False

    def restart_state(self) -> Any:
        last = self._finish()
        self.state = self.stage.create()
        self.done = False
        return last

    def _pair(self, got: Any) -> tuple[Any, Any]:
        """``got`` as the (new state, element) pair ``f`` must return, else a TypeError
        naming the stage and what it got."""
        try:
            state, y = got
        except (TypeError, ValueError):
            raise TypeError(
                f"[{self._stage_name}] the function returned {type(got).__name__} {got!r}, "
                "not a (new state, element) pair"
            ) from None
        return state, y

    def _finish(self) -> Any:
        """Call ``on_complete`` once for the current state; returns its value."""
        if self.done:
            return None
        self.done = True
        if self.stage.on_complete is None:
            return None
        return self.stage.on_complete(self.state)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        try:
            got = self.stage.f(self.state, x)
            if type(got) is not tuple or len(got) != 2:
                got = self._pair(got)
            self.state, y = got
        except Exception as exc:
            d = self._decided(exc)
            if d is Supervision.stop:
                self._close_and_fail(exc)
                return
            if d is Supervision.restart:
                # Akka: on_complete's value for the old state is emitted (on the demand
                # the failed element was pulled for) before going on with the new state.
                last = self.restart_state()
                if last is not None:
                    self.push(self.out, last)
                    return
            self.pull(self.in_)
            return
        if y is None:
            self.pull(self.in_)
        else:
            self.push(self.out, y)

    def _close_and_fail(self, exc: BaseException) -> None:
        last = self._finish()
        if last is not None:
            self.emit(self.out, last, lambda: self.fail_stage(exc))
        else:
            self.fail_stage(exc)

    def on_upstream_finish(self) -> None:
        last = self._finish()
        if last is not None:
            self.emit(self.out, last, self.complete_stage)
        else:
            self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._close_and_fail(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self._finish()
        self.cancel_stage(cause)

    def post_stop(self) -> None:
        # abrupt termination (materializer shutdown) or a failure elsewhere in the stage
        if not self.done:
            try:
                self._finish()
            except Exception as exc:
                logging.getLogger("reactive").error(
                    "[%s] on_complete raised in post_stop: %r", self._stage_name, exc
                )


# -- scan / fold / reduce ---------------------------------------------------------------
class Scan(FlowStage):
    """``scan(zero, f)``: emits ``zero`` first, then every running accumulation.

    Emits when the zero or an accumulation is ready and downstream pulls (upstream is
    not pulled before the second element is demanded). Backpressures when downstream
    does. Completes when upstream completes (after the zero, for an empty stream).
    Supervision: resume drops the element and keeps the accumulator; restart drops it,
    resets the accumulator and emits the zero again (as Akka's ``Scan`` does).
    """

    name = "scan"

    def __init__(self, zero: Any, f: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.zero = zero
        self.f = f
        self._fusable = Fusable("scan", f, zero)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ScanLogic(self.shape, self.zero, self.f)


class _ScanLogic(FlowLogic):
    _supervised = True
    _fn_kind = "scan"

    def __init__(self, shape: FlowShape, zero: Any, f: Any) -> None:
        super().__init__(shape)
        self.zero = zero
        self.f = f
        self.acc = zero
        self.zero_pushed = False

    def restart_state(self) -> None:
        self.acc = self.zero

    def _on_restart(self, exc: BaseException) -> None:
        # Akka's Scan: a restart resets the accumulator and emits it (the zero) again, on
        # the demand the failed element was pulled for.
        self.restart_state()
        if self.is_available(self.out):
            self.push(self.out, self.acc)
        else:
            self._resume_counted(exc)

    def on_pull(self) -> None:
        if not self.zero_pushed:
            self.zero_pushed = True
            self.push(self.out, self.zero)
        else:
            self.pull(self.in_)

    def on_push(self) -> None:
        self.acc = self.f(self.acc, self.grab(self.in_))
        self.push(self.out, self.acc)

    def on_upstream_finish(self) -> None:
        if not self.zero_pushed:
            self.zero_pushed = True
            self.emit(self.out, self.zero, self.complete_stage)
        else:
            self.complete_stage()


class Fold(FlowStage):
    """``fold(zero, f)``: one element, the final accumulation (``zero`` if empty)."""

    name = "fold"

    def __init__(self, zero: Any, f: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.zero = zero
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _FoldLogic(self.shape, self.zero, self.f)


class _FoldLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, zero: Any, f: Any) -> None:
        super().__init__(shape)
        self.zero = zero
        self.f = f
        self.acc = zero

    def pre_start(self) -> None:
        self.pull(self.in_)

    def restart_state(self) -> None:
        self.acc = self.zero

    def _on_resume(self, exc: BaseException) -> None:
        self.try_pull(self.in_)

    def on_pull(self) -> None:
        pass

    def on_push(self) -> None:
        self.acc = self.f(self.acc, self.grab(self.in_))
        self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.emit(self.out, self.acc, self.complete_stage)


class Reduce(FlowStage):
    """``reduce(f)``: fold seeded with the first element; empty input fails."""

    name = "reduce"

    def __init__(self, f: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ReduceLogic(self.shape, self.f)


class _ReduceLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, f: Any) -> None:
        super().__init__(shape)
        self.f = f
        self.acc: Any = _MISSING

    def pre_start(self) -> None:
        self.pull(self.in_)

    def restart_state(self) -> None:
        self.acc = _MISSING

    def _on_resume(self, exc: BaseException) -> None:
        self.try_pull(self.in_)

    def on_pull(self) -> None:
        pass

    def on_push(self) -> None:
        x = self.grab(self.in_)
        self.acc = x if self.acc is _MISSING else self.f(self.acc, x)
        self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        if self.acc is _MISSING:
            self.fail_stage(NoSuchElementError(f"[{self._stage_name}] reduce over an empty stream"))
        else:
            self.emit(self.out, self.acc, self.complete_stage)


# -- take / drop ------------------------------------------------------------------------
class Take(FlowStage):
    """``take(n)``: the first ``n`` elements, then complete and cancel upstream."""

    name = "take"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _TakeLogic(self.shape, self.n)


class _TakeLogic(FlowLogic):
    def __init__(self, shape: FlowShape, n: int) -> None:
        super().__init__(shape)
        self.left = n

    def pre_start(self) -> None:
        if self.left <= 0:
            self.complete_stage()

    def on_push(self) -> None:
        self.left -= 1
        self.push(self.out, self.grab(self.in_))
        if self.left <= 0:
            self.complete_stage()


class TakeWhile(FlowStage):
    """``take_while(p, inclusive)``: pass while ``p`` holds, then complete."""

    name = "take_while"

    def __init__(self, p: Callable[[Any], bool], inclusive: bool = False) -> None:
        super().__init__()
        self.p = p
        self.inclusive = inclusive

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _TakeWhileLogic(self.shape, self.p, self.inclusive)


class _TakeWhileLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, p: Any, inclusive: bool) -> None:
        super().__init__(shape)
        self.p = p
        self.inclusive = inclusive

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.p(x):
            self.push(self.out, x)
        elif self.inclusive:
            self.push(self.out, x)
            self.complete_stage()
        else:
            self.complete_stage()


class Drop(FlowStage):
    """``drop(n)``: skip the first ``n`` elements."""

    name = "drop"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self._fusable = Fusable("drop", None, n)

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DropLogic(self.shape, self.n)


class _DropLogic(FlowLogic):
    def __init__(self, shape: FlowShape, n: int) -> None:
        super().__init__(shape)
        self.left = n

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.left > 0:
            self.left -= 1
            self.pull(self.in_)
        else:
            self.push(self.out, x)


class _DropWhileLogic(_FunctionLogic):
    _fn_kind = "drop_while"

    dropping = True  # until the first element ``f`` rejects (then set on the instance)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.dropping and self.f(x):
            self.pull(self.in_)
        else:
            self.dropping = False
            self.push(self.out, x)


class DropWhile(_FunctionStage):
    """``drop_while(p)``: skip while ``p`` holds, then pass everything."""

    name = "drop_while"
    _logic = _DropWhileLogic


class Limit(FlowStage):
    """``limit(n)`` / ``limit_weighted(n, cost)``: fail when more than allowed arrive."""

    name = "limit"

    def __init__(self, n: int, cost: Callable[[Any], int] | None = None) -> None:
        super().__init__()
        self.n = n
        self.cost = cost
        if cost is not None:
            self.name = "limit_weighted"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _LimitLogic(self.shape, self.n, self.cost)


class _LimitLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, n: int, cost: Any) -> None:
        super().__init__(shape)
        self.left = n
        self.n = n
        self.cost = cost

    def restart_state(self) -> None:
        # As Akka's LimitWeighted.onRestart: the budget starts again from n.
        self.left = self.n

    def on_push(self) -> None:
        x = self.grab(self.in_)
        self.left -= 1 if self.cost is None else self.cost(x)
        if self.left < 0:
            self.fail_stage(
                StreamLimitReachedError(f"[{self._stage_name}] limit of {self.n} reached")
            )
        else:
            self.push(self.out, x)


# -- grouping ---------------------------------------------------------------------------
def asks_in_batches(c: Any) -> bool:
    """Whether a stage that will take ``k`` more elements anyway (a group's rest) may ask
    for them with one pull on its connection ``c`` (batch fast path, see fused.py).

    Only on a batch connection, and only when what hands the elements out does not look
    at how much each downstream asks for: an iterable source or an async boundary's
    buffer (``_demand_blind``), possibly through fused chains, which ask upstream for what
    was asked of them (``_passes_demand_on``). Not behind a ``Balance``, say: it hands
    each output up to what that output asked for, so one output asking for a whole group
    would take the elements that, asked for one at a time, it deals out in turn.
    """
    if not c.batch:
        return False
    logic = c.out_logic
    while getattr(logic, "_passes_demand_on", False):
        c = logic._conns[logic.in_]
        if not c.batch:
            return True  # the chain pulls its upstream one element at a time
        logic = c.out_logic
    return bool(getattr(logic, "_demand_blind", False))


class Grouped(FlowStage):
    """``grouped(n)``: lists of ``n`` elements; the last may be shorter."""

    name = "grouped"

    def __init__(self, n: int) -> None:
        if n <= 0:
            raise ValueError(f"grouped(n) needs n > 0, got {n}")
        super().__init__()
        self.n = n

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _GroupedLogic(self.shape, self.n)


class _GroupedLogic(FlowLogic):
    def __init__(self, shape: FlowShape, n: int) -> None:
        super().__init__(shape)
        self.n = n
        self.buf: list[Any] = []
        # Batch fast path (see fused.py): the rest of the group is asked for with one pull
        # and may arrive as one batch. Element at a time, the group is pulled for one
        # element after another anyway: never more than it needs.
        self._batch_in = (self.in_,)
        self._ask_rest = False

    def pre_start(self) -> None:
        self._ask_rest = asks_in_batches(self._conns[self.in_])

    def on_pull(self) -> None:
        self._pull_rest()

    def _pull_rest(self) -> None:
        self.pull(self.in_)
        if self._ask_rest:
            self._conns[self.in_].demand_n = self.n - len(self.buf)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        buf = self.buf
        if type(x) is _Batch:
            buf.extend(x)  # at most the rest of the group: what _pull_rest asked for
        else:
            buf.append(x)
        if len(buf) >= self.n:
            self.buf = []
            self.push(self.out, buf)
        else:
            self._pull_rest()

    def on_upstream_finish(self) -> None:
        if self.buf:
            out, self.buf = self.buf, []
            self.emit(self.out, out, self.complete_stage)
        else:
            self.complete_stage()


class Sliding(FlowStage):
    """``sliding(n, step)``: windows of ``n`` advancing by ``step``."""

    name = "sliding"

    def __init__(self, n: int, step: int = 1) -> None:
        if n <= 0 or step <= 0:
            raise ValueError(f"sliding needs n > 0 and step > 0, got n={n} step={step}")
        super().__init__()
        self.n = n
        self.step = step

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _SlidingLogic(self.shape, self.n, self.step)


class _SlidingLogic(FlowLogic):
    def __init__(self, shape: FlowShape, n: int, step: int) -> None:
        super().__init__(shape)
        self.n = n
        self.step = step
        self.buf: list[Any] = []
        self.pushed_once = False

    def on_push(self) -> None:
        n, step = self.n, self.step
        self.buf.append(self.grab(self.in_))
        buf = self.buf
        if len(buf) < n:
            self.pull(self.in_)
        elif len(buf) == n:
            self.pushed_once = True
            self.push(self.out, list(buf))
        elif step <= n:
            self.buf = buf = buf[step:]
            if len(buf) == n:
                self.pushed_once = True
                self.push(self.out, list(buf))
            else:
                self.pull(self.in_)
        else:
            if len(buf) == step:
                self.buf = []
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        buf = self.buf
        n, step = self.n, self.step
        emit = False
        if buf:
            if not self.pushed_once:
                emit = True
            elif step <= n:
                emit = len(buf) > n - step and len(buf) != n
                if len(buf) == n:
                    emit = False
            else:
                emit = len(buf) < n
        if emit:
            self.emit(self.out, list(buf), self.complete_stage)
        else:
            self.complete_stage()


class Intersperse(FlowStage):
    """``intersperse(inject, start, end)``: separators between elements, optional ends."""

    name = "intersperse"

    def __init__(self, inject: Any, start: Any = _MISSING, end: Any = _MISSING) -> None:
        super().__init__()
        self.inject = inject
        self.start = start
        self.end = end

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _IntersperseLogic(self.shape, self)


class _IntersperseLogic(FlowLogic):
    def __init__(self, shape: FlowShape, stage: Intersperse) -> None:
        super().__init__(shape)
        self.stage = stage
        self.first = True

    def pre_start(self) -> None:
        if self.stage.start is not _MISSING:
            self.emit(self.out, self.stage.start)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if self.first:
            self.first = False
            self.push(self.out, x)
        else:
            self.emit_multiple(self.out, (self.stage.inject, x))

    def on_upstream_finish(self) -> None:
        if self.stage.end is not _MISSING:
            self.emit(self.out, self.stage.end, self.complete_stage)
        else:
            self.complete_stage()


class ZipWithIndex(FlowStage):
    """``zip_with_index()``: ``(element, index)`` with indices from 0."""

    name = "zip_with_index"

    def __init__(self) -> None:
        super().__init__()
        self._fusable = Fusable("zip_with_index")

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _ZipWithIndexLogic(self.shape)


class _ZipWithIndexLogic(FlowLogic):
    def __init__(self, shape: FlowShape) -> None:
        super().__init__(shape)
        self.i = 0

    def on_push(self) -> None:
        i = self.i
        self.i = i + 1
        self.push(self.out, (self.grab(self.in_), i))


# -- log ----------------------------------------------------------------------------------
class Log(FlowStage):
    """``log(name, extract)``: logs elements, completion and failure; passes through."""

    name = "log"

    def __init__(
        self, log_name: str, extract: Callable[[Any], Any] | None = None, logger: Any = None
    ) -> None:
        super().__init__()
        self.log_name = log_name
        self.extract = extract
        self.logger = logger

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _LogLogic(self.shape, self, attributes)


class _LogLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, stage: Log, attributes: Any) -> None:
        super().__init__(shape)
        self.stage = stage
        self.logger = stage.logger or logging.getLogger("reactive.log")
        # None: that event is switched off (``Attributes.LOG_LEVEL_OFF``, Akka's
        # ``LogLevels.Off``).
        self.on_element = _log_level(attributes, "log_on_element", logging.DEBUG)
        self.on_finish = _log_level(attributes, "log_on_finish", logging.DEBUG)
        self.on_failure = _log_level(attributes, "log_on_failure", logging.ERROR)

    def on_push(self) -> None:
        x = self.grab(self.in_)
        level = self.on_element
        if level is not None and self.logger.isEnabledFor(level):
            shown = x if self.stage.extract is None else self.stage.extract(x)
            self.logger.log(level, "[%s] Element: %r", self.stage.log_name, shown)
        self.push(self.out, x)

    def on_upstream_finish(self) -> None:
        if self.on_finish is not None:
            self.logger.log(self.on_finish, "[%s] Upstream finished.", self.stage.log_name)
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        # At ERROR with the failure's traceback, as Akka's ``log.error(cause, ...)``;
        # at another level its type and message only (Akka's "Upstream failed, cause:").
        level = self.on_failure
        if level is not None:
            self.logger.log(
                level,
                "[%s] Upstream failed: %r",
                self.stage.log_name,
                exc,
                exc_info=exc if level >= logging.ERROR else None,
            )
        self.fail_stage(exc)

    def on_downstream_finish(self, cause: BaseException) -> None:
        if self.on_finish is not None:
            self.logger.log(
                self.on_finish,
                "[%s] Downstream finished, cause: %r",
                self.stage.log_name,
                cause,
            )
        self.cancel_stage(cause)


def _log_level(attributes: Any, key: str, default: int) -> int | None:
    """The level ``log`` uses for one event, None when it is switched off."""
    level: int = attributes.get(key, default)
    return None if level == Attributes.LOG_LEVEL_OFF else level


class Identity(FlowStage):
    """The identity flow ``Flow()``: passes elements through."""

    name = "identity"
    _is_identity = True

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _IdentityLogic(self.shape)


class _IdentityLogic(FlowLogic):
    def on_push(self) -> None:
        self.push(self.out, self.grab(self.in_))


__all__ = [
    "Fusable",
    "FlowStage",
    "FlowLogic",
    "Map",
    "Filter",
    "MapConcat",
    "StatefulMap",
    "Scan",
    "Fold",
    "Reduce",
    "Take",
    "TakeWhile",
    "Drop",
    "DropWhile",
    "Limit",
    "Grouped",
    "Sliding",
    "Intersperse",
    "ZipWithIndex",
    "Log",
    "Identity",
    "deque",
    "DropRepeated",
]


# -- drop_repeated (Pekko's dropRepeated) ------------------------------------------------
class DropRepeated(FlowStage):
    """``drop_repeated(eq=None)``: drop elements equal to the element just before them.

    ``eq(previous, x)`` decides equality (``==`` without it); ``previous`` is the element
    just before ``x``, whether it was emitted or dropped (as Pekko's ``dropRepeated``,
    which matters for an ``eq`` that is not transitive: with ``abs(p - x) <= 1``,
    ``1, 2, 3`` gives ``1``).

    Emits when an element differs from the previous one. Backpressures when downstream
    does. Completes when upstream completes. Fails when upstream fails or ``eq`` raises.
    Cancels when downstream cancels. Supervision: resume drops the element whose ``eq``
    raised; restart also forgets the previous element.
    """

    name = "drop_repeated"

    def __init__(self, eq: Callable[[Any, Any], bool] | None = None) -> None:
        super().__init__()
        self.eq = eq

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _DropRepeatedLogic(self.shape, self.eq)


class _DropRepeatedLogic(FlowLogic):
    _supervised = True

    def __init__(self, shape: FlowShape, eq: Callable[[Any, Any], bool] | None) -> None:
        super().__init__(shape)
        self.eq = eq
        self.last: Any = _MISSING

    def restart_state(self) -> None:
        self.last = _MISSING

    def on_push(self) -> None:
        x = self.grab(self.in_)
        last = self.last
        if last is not _MISSING and (x == last if self.eq is None else self.eq(last, x)):
            self.last = x  # Pekko: the next element is compared with this one
            self.pull(self.in_)
        else:
            self.last = x
            self.push(self.out, x)
