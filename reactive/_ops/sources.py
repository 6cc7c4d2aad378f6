"""Source stages: iterables, single values, unfold, async iterables, awaitables, ticks,
``maybe`` and ``cycle``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from itertools import chain, islice
from typing import TYPE_CHECKING, Any, ClassVar

from .._checks import NONE_ELEMENT
from .._errors import PortStateError
from .._impl.interpreter import _as_failure
from .._stage.batch import NOTHING, note_unsent_derived
from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    OutHandler,
    TimerGraphStageLogic,
    _Batch,
    abrupt_error,
)
from .._stage.shapes import Outlet, SourceShape
from .._supervision import Supervision
from .asyncsupport import AwaitingLogicMixin, call_cancelled
from .sinks import new_promise

if TYPE_CHECKING:
    from collections.abc import AsyncIterable, Awaitable, Callable, Iterable

_END: Any = object()


class SourceStage(GraphStage[SourceShape[Any]]):
    """Base of source stages: one outlet named ``<Name>.out``."""

    name = "source"

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet(f"{type(self).__name__}.out"))


class SourceLogic(GraphStageLogic, OutHandler):
    """A logic that is its own handler for one outlet."""

    def __init__(self, shape: SourceShape[Any]) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)


# -- iterables --------------------------------------------------------------------------------
class IterableSource(SourceStage):
    """``Source.from_iterable(it)``: a fresh iterator per run.

    Completes right after the last element (it looks one element ahead). Speaks the
    batch protocol: asked for ``n`` elements it hands over up to ``n`` at once.

    What the iterator raises obeys the supervision strategy, as Pekko's IterableSource:
    stop fails the stream; resume goes on with the same iterator (a generator that
    raised is finished: the stream completes); restart takes a new iterator from the
    iterable. The element read right after a supervised failure is not supervised again
    (an iterator that keeps raising fails the stream instead of spinning).
    """

    name = "iterable_source"

    def __init__(self, iterable: Iterable[Any]) -> None:
        super().__init__()
        self.iterable = iterable
        self.runs = 0

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        it = self.iterable
        if isinstance(it, Iterator):
            self.runs += 1
            if self.runs > 1:
                # Not silent: an iterator (a generator, say) is read once, so this run
                # gets only what earlier runs left (often nothing).
                logging.getLogger("reactive").warning(
                    "[%s] Source.from_iterable runs again on the same iterator (%s): an "
                    "iterator is read once, so this run gets what the earlier runs left; "
                    "give an iterable (a list, a range) or build the Source for each run",
                    attributes.get("name") or self.name,
                    type(it).__name__,
                )
        return _IterableLogic(self.shape, it)


def _none_index(xs: list[Any]) -> int:
    """Index of the first element that is None, or -1."""
    try:
        if None not in xs:  # C speed; == may say yes wrongly or raise (arrays): then look
            return -1
    except Exception:
        pass
    for i, x in enumerate(xs):
        if x is None:
            return i
    return -1


class _IterableLogic(SourceLogic):
    #: Hands out what it has whoever asks how much (see ``_ops.simple.asks_in_batches``).
    _demand_blind = True
    # No note naming the stage on the iterator's exception: the user's iterator is the
    # stage (its frames end the traceback), and an iterable given to several sources is
    # told apart by nothing a note could add.
    _note_stage = False

    def __init__(self, shape: SourceShape[Any], iterable: Iterable[Any]) -> None:
        super().__init__(shape)
        self.iterable = iterable
        self.it: Any = None
        self.nxt: Any = _END
        # What the iterator raised while looking one element ahead: like Akka's
        # IteratorSource (whose ``next()`` throws on the pull that asks for it), it fails
        # the stream on the next pull, not right after the element before it.
        self.err: BaseException | None = None
        self._batch_out = (self.out,)
        self._cout: Any = None  # the outlet's connection, read at start
        # A ``range`` (of a length that fits an index): handed over as sub-ranges, which a
        # chain's loop iterates at the range iterator's own speed (no ``chain``/``islice``
        # layers per element); while such a take is open ``self.it`` holds the range's
        # iterator, the take's and where the take ends, in a tuple (``reactive.observe``
        # reads a range's element count off it: ``iterator_left``), and the range's iterator
        # catches up when the take settles. None otherwise.
        self._range: range | None = None

    def pre_start(self) -> None:
        self._cout = self._conns[self.out]
        r = self.iterable
        if type(r) is range:
            try:
                len(r)
            except OverflowError:  # (longer than an index: the plain path)
                pass
            else:
                self._range = r
        self.it = iter(self.iterable)
        try:
            self.nxt = next(self.it, _END)
        except (Exception, asyncio.CancelledError) as exc:
            self.nxt = _END
            if not self._supervised_failure(_as_failure(self, exc)):
                raise
            return
        if self.nxt is _END:
            self.complete(self.out)

    def _supervised_failure(self, exc: BaseException) -> bool:
        """What the iterator raised, decided (Pekko's IterableSource): False under stop
        (the caller fails the stream); else the iterator goes on (resume) or is
        re-created from the iterable (restart), and the next element is read ahead: the
        source then completes, fails (a second failure at once is not decided on again),
        or holds its next element. Off the happy path: failures only."""
        if not isinstance(exc, Exception):
            return False
        directive = self._decided(exc)
        if directive is Supervision.stop:
            return False
        self.err = None
        try:
            if directive is Supervision.restart:
                self.it = iter(self.iterable)
            self.nxt = nxt = next(self.it, _END)
        except (Exception, asyncio.CancelledError) as again:
            self.nxt = _END
            self.fail_stage(_as_failure(self, again))
            return True
        if nxt is _END:
            self.complete(self.out)
        return True

    def _look_ahead(self) -> None:
        try:
            self.nxt = next(self.it, _END)
        except (Exception, asyncio.CancelledError) as exc:
            self.nxt = _END
            self.err = _as_failure(self, exc)

    def _hand_over_up_to(self, n: int) -> Iterator[Any] | None:
        """Up to ``n`` elements for a fused chain to iterate right now (see fused.py).

        Lazy: the chain's loop pulls them straight from the user's iterator (no list in
        between); ``_hand_over_settle`` runs after it, whether the loop finished or raised.
        None when nothing is ready (a deferred failure then surfaces through ``on_pull``).
        """
        if self.nxt is _END:
            return None
        first = self.nxt
        self.nxt = _END
        if n <= 1:
            return iter((first,))
        r = self._range
        if r is not None:
            # The index of ``first`` in the range (read ahead: the iterator is one past it).
            it = self.it
            size = len(r)
            i = size - it.__length_hint__() - 1
            end = i + n if i + n < size else size
            lazy = iter(r[i:end])
            # While the take is open: what its settling needs, in a tuple (which the
            # metrics read the count off: ``iterator_left``).
            self.it = (it, lazy, end)
            return lazy
        return chain((first,), islice(self.it, n - 1))

    def _holds_no_none(self) -> bool:
        """True when nothing this source hands over can be ``None`` (a range): a chain
        taking from it then leaves out its check of what upstream hands over."""
        return type(self.iterable) is range

    def _hand_over_one(self) -> Any:
        """One element for a downstream logic to take right now, or ``NOTHING`` when none
        is ready (see reactive/_stage/batch.py): the lazy take of one element and its
        settling (the look-ahead, and completion when the iterator is exhausted; what
        the look-ahead raises fails the source on the next pull) in one call. A ``None``
        element is not handed over (``NOTHING``, the source unchanged): the caller's pull
        then fails the source on its own push (RS rule 2.13), naming its port."""
        x = self.nxt
        if x is _END or x is None:
            return NOTHING
        try:
            self.nxt = nxt = next(self.it, _END)
        except (Exception, asyncio.CancelledError) as exc:
            self.nxt = _END
            self.err = _as_failure(self, exc)
            return x
        if nxt is _END:
            self.complete(self.out)
        return x

    def _hand_over_settle(self, exc: BaseException | None) -> None:
        """After a lazy take: look ahead again (completion), or fail with the iterator."""
        it = self.it
        if type(it) is tuple:
            # A sub-range (``_hand_over_up_to``): the range's iterator skips what the
            # take's loop used (the elements after it stay unread, as they would in the
            # source's iterator), then looks ahead (``_look_ahead``: a range cannot fail).
            rit, lazy, end = it
            self.it = rit
            rit.__setstate__(end - lazy.__length_hint__())
            if exc is None:
                self.nxt = nxt = next(rit, _END)
                if nxt is _END:
                    self.complete(self.out)
                return
        if exc is not None:
            # The user's iterator failed on a demanded element: this source fails (or
            # goes on, under supervision), not the chain that asked.
            self.nxt = _END
            if not self._supervised_failure(exc):
                self.fail_stage(exc)
            return
        self._look_ahead()
        if self.nxt is _END and self.err is None:
            self.complete(self.out)

    def on_pull(self) -> None:
        err = self.err
        if err is not None:
            self.err = None
            if not self._supervised_failure(err):
                self.fail_stage(err)
                return
            if self.nxt is _END:  # completed or failed
                return
        c = self._cout
        n = c.demand_n
        out: Any
        if n > 1 and c.batch:
            r = self._range
            if r is not None:
                # A range: the batch is a slice of it (built in C; no None to look for),
                # and its iterator skips what the slice took (as ``_hand_over_up_to``,
                # whose span arithmetic this repeats: a call per take costs B1 ~0.8%).
                it = self.it
                size = len(r)
                i = size - it.__length_hint__() - 1  # the index of ``nxt`` (read ahead)
                end = i + n if i + n < size else size
                out = _Batch(r[i:end])
                it.__setstate__(end)
                self.nxt = _END
                self.push(self.out, out)
                if end < size:
                    self._look_ahead()
                else:
                    self.complete(self.out)
                return
            out = _Batch((self.nxt,))
            self.nxt = _END
            try:
                out.extend(islice(self.it, n - 1))
            except (Exception, asyncio.CancelledError) as exc:
                # The iterator failed on a demanded element: what it gave before goes
                # out, and the failure on the next pull, as element by element (a
                # junction holding what it took, a Zip say, passes that on first).
                self.push(self.out, out)
                self.err = _as_failure(self, exc)
                return
            full = len(out) == n
            i = _none_index(out)
            if i >= 0:
                # RS rule 2.13, as push() checks single elements: what came before the
                # None still goes out, then this source fails.
                if i:
                    self.push(self.out, _Batch(out[:i]))
                self.nxt = _END
                note_unsent_derived(c, len(out) - i)  # (read, never sent)
                raise self._err(self.out, NONE_ELEMENT)
        else:
            # One element (the element-at-a-time path): pushed, then the look-ahead
            # (``_look_ahead``, spelled out: this runs once per element).
            out = self.nxt
            self.nxt = _END
            if c.state == 2 and out is not None:
                # DEMAND and nothing else: push's own fast path, spelled out.
                c.elem = out
                c.state = 4  # PUSH_REQ
                c.q.append(c)
            else:
                try:
                    self.push(self.out, out)
                except PortStateError:
                    if out is None:  # RS rule 2.13: read from the iterator, never sent
                        note_unsent_derived(c)
                    raise
            try:
                self.nxt = nxt = next(self.it, _END)
            except (Exception, asyncio.CancelledError) as exc:
                self.err = _as_failure(self, exc)
                return
            if nxt is _END:
                self.complete(self.out)
            return
        self.push(self.out, out)
        if full:
            self._look_ahead()
        if self.nxt is _END and self.err is None:
            self.complete(self.out)


class _ValueLogic(SourceLogic):
    """The logic of a :class:`_ValueSource`, holding its ``value``."""

    def __init__(self, shape: SourceShape[Any], value: Any) -> None:
        super().__init__(shape)
        self.value = value


class _ValueSource(SourceStage):
    """A source stage of one value handed to its logic.

    Subclasses set ``name`` and ``_logic``, a :class:`_ValueLogic` built with
    ``(shape, value)``.
    """

    _logic: ClassVar[type[_ValueLogic]]

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return self._logic(self.shape, self.value)


class _SingleLogic(_ValueLogic):
    def on_pull(self) -> None:
        self.push(self.out, self.value)
        self.complete(self.out)


class SingleSource(_ValueSource):
    """``Source.single(x)``."""

    name = "single_source"
    _logic = _SingleLogic


class EmptySource(SourceStage):
    """``Source.empty()``: completes at once."""

    name = "empty_source"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _EmptyLogic(self.shape)


class _EmptyLogic(SourceLogic):
    def pre_start(self) -> None:
        self.complete(self.out)

    def on_pull(self) -> None:
        pass


class _FailedLogic(_ValueLogic):
    def pre_start(self) -> None:
        self.fail(self.out, self.value)

    def on_pull(self) -> None:
        pass


class FailedSource(_ValueSource):
    """``Source.failed(exc)``: fails at once."""

    name = "failed_source"
    _logic = _FailedLogic


class NeverSource(SourceStage):
    """``Source.never()``: emits nothing and never completes."""

    name = "never_source"

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _NeverLogic(self.shape)


class _NeverLogic(SourceLogic):
    def on_pull(self) -> None:
        pass


class _RepeatLogic(_ValueLogic):
    def __init__(self, shape: SourceShape[Any], value: Any) -> None:
        super().__init__(shape, value)
        self._batch_out = (self.out,)

    def on_pull(self) -> None:
        c = self._conns[self.out]
        if c.batch and c.demand_n > 1:
            self.push(self.out, _Batch([self.value] * c.demand_n))
        else:
            self.push(self.out, self.value)


class RepeatSource(_ValueSource):
    """``Source.repeat(x)``: ``x`` forever."""

    name = "repeat_source"
    _logic = _RepeatLogic


class UnfoldSource(SourceStage):
    """``Source.unfold(state, f)`` with ``f(state) -> (state, elem) | None``."""

    name = "unfold_source"

    def __init__(self, state: Any, f: Callable[[Any], tuple[Any, Any] | None]) -> None:
        super().__init__()
        self.state = state
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _UnfoldLogic(self.shape, self.state, self.f)


def _unfolded(logic: GraphStageLogic, r: Any) -> tuple[Any, Any]:
    """``r``, what an unfold function returned (not None), as its (state, element) pair;
    else a TypeError naming the stage and what it got."""
    if type(r) is tuple and len(r) == 2:
        return r
    try:
        state, x = r
    except (TypeError, ValueError):
        raise TypeError(
            f"[{logic._stage_name}] the function returned {type(r).__name__} {r!r}, not a "
            "(next state, element) pair or None"
        ) from None
    return state, x


class _UnfoldLogic(SourceLogic):
    def __init__(self, shape: SourceShape[Any], state: Any, f: Any) -> None:
        super().__init__(shape)
        self.state = state
        self.f = f

    def on_pull(self) -> None:
        r = self.f(self.state)
        if r is None:
            self.complete(self.out)
        else:
            self.state, x = _unfolded(self, r)
            self.push(self.out, x)


class UnfoldAsyncSource(SourceStage):
    """``Source.unfold_async(state, f)`` with ``await f(state) -> (state, elem) | None``."""

    name = "unfold_async_source"

    def __init__(self, state: Any, f: Callable[[Any], Awaitable[tuple[Any, Any] | None]]) -> None:
        super().__init__()
        self.state = state
        self.f = f

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _UnfoldAsyncLogic(self.shape, self.state, self.f)


class _UnfoldAsyncLogic(AwaitingLogicMixin, SourceLogic):
    def __init__(self, shape: SourceShape[Any], state: Any, f: Any) -> None:
        SourceLogic.__init__(self, shape)
        self.state = state
        self.f = f

    def on_pull(self) -> None:
        self._await(self.f(self.state), self._on_result)

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.fail_stage(call_cancelled(self._stage_name))
            return
        exc = fut.exception()
        if exc is not None:
            self.fail_stage(exc)
            return
        r = fut.result()
        if r is None:
            self.complete(self.out)
        else:
            self.state, x = _unfolded(self, r)
            self.push(self.out, x)


class AsyncIterableSource(SourceStage):
    """``Source.from_async_iterable(ait_or_factory)``: a fresh async iterator per run when
    given a factory (or an async iterable whose ``__aiter__`` makes fresh ones)."""

    name = "async_iterable_source"

    def __init__(self, source: AsyncIterable[Any] | Callable[[], AsyncIterable[Any]]) -> None:
        super().__init__()
        self.source = source

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _AsyncIterLogic(self.shape, self.source)


class _AsyncIterLogic(AwaitingLogicMixin, SourceLogic):
    def __init__(self, shape: SourceShape[Any], source: Any) -> None:
        SourceLogic.__init__(self, shape)
        self.source = source
        self.it: Any = None

    def pre_start(self) -> None:
        src = self.source
        if not hasattr(src, "__aiter__") and callable(src):
            src = src()
        self.it = src.__aiter__()

    def on_pull(self) -> None:
        self._await(self.it.__anext__(), self._on_result)

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.fail_stage(call_cancelled(self._stage_name, what="an async iterator step"))
            return
        exc = fut.exception()
        if isinstance(exc, StopAsyncIteration):
            self.it = None
            self.complete(self.out)
        elif exc is not None:
            self.fail_stage(exc)
        else:
            x = fut.result()
            if x is None:
                self.on_pull()
            else:
                self.push(self.out, x)

    def post_stop(self) -> None:
        it = self.it
        aclose = getattr(it, "aclose", None)
        if aclose is not None and self._materializer is not None:
            self.it = None
            # A step (``__anext__``) may still be running: the generator is then "already
            # running" and ``aclose()`` would raise. Close it after that step has ended.
            steps = [f for f in (self._await_inflight or ()) if not f.done()]
            try:
                self.materializer.spawn(_close_after(steps, aclose))
            except RuntimeError:
                pass


async def _close_after(steps: list[asyncio.Future[Any]], aclose: Any) -> None:
    """Cancel the async iterator's running steps, wait for them to end, then ``aclose()``."""
    if steps:
        for f in steps:
            f.cancel()
        await asyncio.wait(steps)
    await aclose()


class AwaitableSource(SourceStage):
    """``Source.from_awaitable(aw)``: the awaitable's result as one element.

    Like Akka's ``Source.future``, an awaitable (a future, task or coroutine) is awaited
    from the start, without waiting for demand: a failure fails the stream at once, a
    result waits for demand and is then emitted, ``None`` completes the stream empty. A
    zero-argument async function is called on the first demand instead (Akka's
    ``Source.lazyFuture``). A future shared with others is not cancelled when the stream
    stops early (it is shielded).
    """

    name = "awaitable_source"

    def __init__(self, aw: Any) -> None:
        super().__init__()
        self.aw = aw

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _AwaitableLogic(self.shape, self.aw)


class _AwaitableLogic(AwaitingLogicMixin, SourceLogic):
    def __init__(self, shape: SourceShape[Any], aw: Any) -> None:
        SourceLogic.__init__(self, shape)
        self.aw = aw
        self.started = False
        self.result: Any = _END

    def pre_start(self) -> None:
        aw = self.aw
        if not callable(aw) or asyncio.isfuture(aw):
            self._start(aw)

    def _start(self, aw: Any) -> None:
        self.started = True
        if asyncio.isfuture(aw):
            aw = asyncio.shield(aw)  # not ours to cancel when the stream stops early
        self._await(aw, self._on_result)

    def on_pull(self) -> None:
        if self.result is not _END:
            self.push(self.out, self.result)
            self.complete(self.out)
        elif not self.started:
            self._start(self.aw())

    def _on_result(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.fail_stage(call_cancelled(self._stage_name, what="the awaitable"))
            return
        exc = fut.exception()
        if exc is not None:
            self.fail_stage(exc)
            return
        x = fut.result()
        if x is None:
            self.complete(self.out)
        elif self.is_available(self.out):
            self.push(self.out, x)
            self.complete(self.out)
        else:
            self.result = x


# -- maybe -----------------------------------------------------------------------------------
def require_callable(operator: str, arg: str, f: Any) -> None:
    """Raise ``TypeError`` naming ``operator`` and ``arg`` unless ``f`` is callable."""
    if not callable(f):
        raise TypeError(f"{operator}: {arg} must be callable, got {type(f).__name__} {f!r}")


class MaybeSource(GraphStageWithMaterializedValue[SourceShape[Any], "asyncio.Future[Any]"]):
    """``Source.maybe()``: emits what its materialized future is completed with.

    ``set_result(x)`` emits ``x`` then completes, ``set_result(None)`` completes empty,
    ``set_exception(e)`` fails the stream (a cancelled future fails it with
    ``asyncio.CancelledError``). If downstream cancels first, the future is completed
    with ``None``; if the stream is stopped abruptly, it fails with
    ``AbruptTerminationError``.
    """

    name = "maybe_source"

    def __init__(self) -> None:
        self.shape = SourceShape(Outlet("MaybeSource.out"))

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[Any]]:
        promise = new_promise(asyncio.get_running_loop())
        return _MaybeLogic(self.shape, promise), promise


class _MaybeLogic(SourceLogic):
    def __init__(self, shape: SourceShape[Any], promise: asyncio.Future[Any]) -> None:
        super().__init__(shape)
        self.promise = promise
        self.arrived: Any = _END

    def pre_start(self) -> None:
        if self.promise.done():
            self._on_value(self.promise)
        else:
            cb = self.get_async_callback(self._on_value)
            self.promise.add_done_callback(cb.invoke)

    def _on_value(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            self.fail_stage(call_cancelled(self._stage_name, what="the future of Source.maybe()"))
            return
        exc = fut.exception()
        if exc is not None:
            self.fail_stage(exc)
            return
        x = fut.result()
        if x is None:
            self.complete_stage()
        elif self.is_available(self.out):
            self.push(self.out, x)
            self.complete_stage()
        else:
            self.arrived = x

    def on_pull(self) -> None:
        if self.arrived is not _END:
            self.push(self.out, self.arrived)
            self.complete_stage()

    def on_downstream_finish(self, cause: BaseException) -> None:
        # Akka: the promise is completed with None when the stream is cancelled first.
        if not self.promise.done():
            self.promise.set_result(None)
        self.complete_stage()

    def post_stop(self) -> None:
        if not self.promise.done():
            self.promise.set_exception(abrupt_error(self.stage_name))


# -- cycle ------------------------------------------------------------------------------------
class CycleSource(SourceStage):
    """``Source.cycle(factory)``: the elements of ``factory()``, re-created each time it is
    exhausted, forever. The factory is first called on the first demand; an empty iterable
    (the first or a later one) fails the stream with ``ValueError``."""

    name = "cycle_source"

    def __init__(self, factory: Callable[[], Iterable[Any]]) -> None:
        require_callable("Source.cycle(factory)", "factory", factory)
        super().__init__()
        self.factory = factory

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        return _CycleLogic(self.shape, self.factory)


class _CycleLogic(SourceLogic):
    def __init__(self, shape: SourceShape[Any], factory: Callable[[], Iterable[Any]]) -> None:
        super().__init__(shape)
        self.factory = factory
        self.it: Iterator[Any] | None = None

    def on_pull(self) -> None:
        it = self.it
        if it is not None:
            x = next(it, _END)
            if x is not _END:
                self.push(self.out, x)
                return
        # A fresh iterable: it must give at least one element, else cycling never ends.
        it = self.it = iter(self.factory())
        x = next(it, _END)
        if x is _END:
            self.it = None
            raise ValueError(
                f"[{self.stage_name}] Source.cycle: factory() returned an empty iterable; "
                "cycle needs at least one element per iterable"
            )
        self.push(self.out, x)


# -- tick -------------------------------------------------------------------------------------
class Cancellable:
    """Materialized value of ``Source.tick``: ``cancel()`` stops the ticks."""

    def __init__(self) -> None:
        self._cb: Any = None
        self._cancelled = False

    def cancel(self) -> bool:
        """Stop the source (it completes); False if it was already cancelled."""
        if self._cancelled:
            return False
        self._cancelled = True
        if self._cb is not None:
            self._cb.invoke(None)
        return True

    @property
    def is_cancelled(self) -> bool:
        """True once ``cancel()`` was called."""
        return self._cancelled


class TickSource(GraphStageWithMaterializedValue[SourceShape[Any], Cancellable]):
    """``Source.tick(initial_delay, interval, tick)``: ticks are dropped while downstream
    back-pressures."""

    name = "tick_source"

    def __init__(self, initial_delay: float, interval: float, tick: Any) -> None:
        if interval <= 0:
            raise ValueError(f"tick interval must be > 0, got {interval}")
        self.shape = SourceShape(Outlet("TickSource.out"))
        self.initial_delay = initial_delay
        self.interval = interval
        self.tick = tick

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Cancellable]:
        c = Cancellable()
        logic = _TickLogic(self.shape, self, c)
        return logic, c


class _TickLogic(TimerGraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], stage: TickSource, c: Cancellable) -> None:
        super().__init__(shape)
        self.out = shape.out
        self.stage = stage
        self.cancellable = c
        self.set_handler(self.out, self)
        c._cb = self.get_async_callback(lambda _: self.complete_stage())

    def pre_start(self) -> None:
        if self.cancellable.is_cancelled:
            self.complete_stage()
            return
        # Fixed delay, as Akka's TickSource: after a stalled loop, one tick, then the next
        # an interval later (a fixed rate would catch up with a burst of the missed ones).
        self.schedule_with_fixed_delay("tick", self.stage.initial_delay, self.stage.interval)

    def on_timer(self, key: Any) -> None:
        if self.is_available(self.out):
            self.push(self.out, self.stage.tick)

    def on_pull(self) -> None:
        pass
