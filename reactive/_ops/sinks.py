"""Sink stages whose materialized value is an awaitable result.

Every result future fails with the stream's own exception when the stream fails, and
with ``AbruptTerminationError`` when the stage is stopped abruptly. Result futures are
``ResultPromise`` objects: a stream failure that nobody observes (no awaitable of it was
awaited or retrieved) is logged once on the ``reactive`` logger with the stage name,
instead of asyncio's anonymous "exception was never retrieved".
Sinks that consume everything speak the batch protocol (they accept up to
``BATCH`` elements per pull).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING, Any

from .._errors import NoSuchElementError
from .._impl.unobserved import ResultPromise
from .._keep import Done, NotUsed
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    _Batch,
    abrupt_error,
)
from .._stage.shapes import Inlet, SinkShape
from .._supervision import Supervision

if TYPE_CHECKING:
    from collections.abc import Callable

BATCH = 1024
_MISSING: Any = object()


def new_promise(loop: asyncio.AbstractEventLoop) -> asyncio.Future[Any]:
    """A future for a materialized value: a stream failure it carries that nobody
    observes is logged once, naming the stage (see ``reactive._impl.unobserved``)."""
    return ResultPromise(loop=loop)


class SinkStage(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    """Base of sink stages: one inlet named ``<Name>.in``."""

    name = "sink"

    def __init__(self) -> None:
        self.shape = SinkShape(Inlet(f"{type(self).__name__}.in"))

    def _loop(self) -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        promise = new_promise(self._loop())
        return self.make_logic(promise, attributes), promise

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        """Create the logic completing ``promise``."""
        raise NotImplementedError  # pragma: no cover - every sink overrides


class SinkLogic(GraphStageLogic, InHandler):
    """Sink logic with a result promise; requests everything (in batches when possible)."""

    batch_size = BATCH

    def __init__(self, shape: SinkShape[Any], promise: asyncio.Future[Any] | None) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.promise = promise
        self.set_handler(self.in_, self)
        # The inlet's connection, read at start (the single-element paths spell out
        # grab's and pull's fast paths on it).
        self._cin: Any = None

    def pre_start(self) -> None:
        self._cin = self._conns[self.in_]
        self.request()

    def request(self) -> None:
        c = self._conns[self.in_]
        self.pull(self.in_)
        if c.batch:
            c.demand_n = self.batch_size

    def succeed(self, value: Any) -> None:
        p = self.promise
        if p is not None and not p.done():
            p.set_result(value)

    def failed(self, exc: BaseException) -> None:
        p = self.promise
        if p is not None and not p.done():
            p.set_exception(exc)
            island = self._island
            if island is not None:
                # Let go of the failed promise when the island ends (every awaitable of
                # the failure is failed by then), so a promise nobody holds is collected,
                # and its unobserved failure reported, at once (reactive._impl.unobserved).
                island.at_finish(self._release)

    def _release(self) -> None:
        self.promise = None

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.failed(exc)
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self.failed(exc)

    def _extra_fail(self, exc: BaseException) -> None:
        self.failed(exc)

    def post_stop(self) -> None:
        p = self.promise
        if p is not None and not p.done():
            p.set_exception(abrupt_error(self._stage_name))

    def elements(self) -> Any:
        """Grab what arrived: a batch or a single element, as an iterable."""
        x = self.grab(self.in_)
        return x if type(x) is _Batch else (x,)


# -- foreach ----------------------------------------------------------------------------------
class ForeachSink(SinkStage):
    """``Sink.foreach(f)``: call ``f`` for each element; result ``Done``.

    Supervision: resume/restart skip the element whose call raised.
    """

    name = "foreach_sink"

    def __init__(self, f: Callable[[Any], Any]) -> None:
        super().__init__()
        self.f = f

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _ForeachLogic(self.shape, promise, self.f)


class _ForeachLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any, f: Any) -> None:
        super().__init__(shape, promise)
        self.f = f
        self._batch_in = (self.in_,)

    def on_push(self) -> None:
        c = self._cin
        if c.state == 8 and type(c.elem) is not _Batch:
            # One element (an element-at-a-time upstream): grab's and then request's
            # pull's fast paths spelled out, as ``Sink.fold``'s single-element path.
            x = c.elem
            c.elem = None
            c.state = 0
            try:
                self.f(x)
            except Exception as exc:
                if self._decided(exc, False) is Supervision.stop:
                    raise
            if c.state:  # ``f`` touched the stream (a close): the checked pull
                self.request()
                return
            c.state = 1  # PULL_REQ
            c.q.append(c)
            if c.batch:
                c.demand_n = self.batch_size
            return
        f = self.f
        it = iter(self.elements())
        while True:
            try:
                for x in it:
                    f(x)
                break
            except Exception as exc:
                if self._decided(exc, False) is Supervision.stop:
                    raise
        self.request()

    def on_upstream_finish(self) -> None:
        self.succeed(Done)
        self.complete_stage()


# -- folding ----------------------------------------------------------------------------------
class FoldSink(SinkStage):
    """``Sink.fold(zero, f)``: the final accumulation."""

    name = "fold_sink"

    def __init__(self, zero: Any, f: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.zero = zero
        self.f = f

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _FoldSinkLogic(self.shape, promise, self.zero, self.f)


class _FoldSinkLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any, zero: Any, f: Any) -> None:
        super().__init__(shape, promise)
        self.zero = zero
        self.acc = zero
        self.f = f
        self._batch_in = (self.in_,)

    def on_push(self) -> None:
        c = self._cin
        # Fast path: grab's and then request's pull's fast paths spelled out (AVAIL and
        # nothing else: the connection is idle once grabbed, nothing else can touch it in
        # between): one element (an element-at-a-time upstream) without iterator or loop,
        # or a batch (a batch connection) folded in one loop.
        if c.state == 8:
            x = c.elem
            c.elem = None
            c.state = 0
            if type(x) is not _Batch:
                f = self.f  # (a call through an attribute: no method lookup)
                try:
                    self.acc = f(self.acc, x)
                except Exception as exc:
                    self._supervise(exc, self.acc)
                if not c.state:  # (``f`` may have touched the stream: a close)
                    c.state = 1  # PULL_REQ
                    c.q.append(c)
                    if c.batch:
                        c.demand_n = self.batch_size
                else:
                    self.request()  # the checked pull
                return
            fast = True
        else:
            x = self.grab(self.in_)
            fast = False
        if type(x) is not _Batch:
            f = self.f
            try:
                self.acc = f(self.acc, x)
            except Exception as exc:
                self._supervise(exc, self.acc)
        else:
            f = self.f
            acc = self.acc
            it = iter(x)
            while True:
                try:
                    for x in it:
                        acc = f(acc, x)
                    break
                except Exception as exc:
                    acc = self._supervise(exc, acc)
            self.acc = acc
        if fast and not c.state:  # (``f`` may have touched the stream: a close)
            c.state = 1  # PULL_REQ
            c.q.append(c)
            if c.batch:
                c.demand_n = self.batch_size
        else:
            self.request()  # the checked pull

    def _take_one(self, x: Any) -> bool:
        """A fan-in junction's direct hand-down of one element ``x`` (fast path, see
        ``Merge``'s ``_accept_one_i``): what the push (``DEMAND`` -> ``AVAIL``) and then
        ``on_push`` do with it (grabbed, folded, pulled again), without storing it on the
        connection, and the pull taken synchronously: True when the connection is back at
        ``DEMAND`` (demand ``batch_size``) with no event queued, which is the pull's
        delivery the junction then answers (its ``on_pull``, as when it pops the pull
        from the queue). False when ``f`` touched the stream (a close: the checked pull
        is queued, as ``on_push`` does) or the island's mailbox holds something (the
        pull queued, the junction finds it there). Called only on an unmetered
        connection at ``DEMAND`` with the island's queue empty; a raise (``f`` under
        stop) leaves the connection idle, as ``on_push`` does."""
        c = self._cin
        c.state = 0  # pushed and grabbed
        f = self.f  # (a call through an attribute: no method lookup)
        try:
            self.acc = f(self.acc, x)
        except Exception as exc:
            self._supervise(exc, self.acc)
        if c.state:  # (``f`` may have touched the stream: a close)
            self.request()  # the checked pull
            return False
        if c.batch:
            c.demand_n = self.batch_size
        island: Any = self._island
        if island.mailbox:  # the pull queued (see ``_hand_down``)
            c.state = 1  # PULL_REQ
            c.q.append(c)
            return False
        c.state = 2  # DEMAND: PULL_REQ, delivered
        return True

    def _supervise(self, exc: Exception, acc: Any) -> Any:
        """The decider's answer to ``f`` raising: re-raise it (stop), the zero (restart,
        also stored), or ``acc`` unchanged (resume)."""
        d = self._decided(exc, False)
        if d is Supervision.stop:
            raise exc
        if d is Supervision.restart:
            self.acc = acc = self.zero
        return acc

    def on_upstream_finish(self) -> None:
        self.succeed(self.acc)
        self.complete_stage()


class ReduceSink(SinkStage):
    """``Sink.reduce(f)``: fold seeded with the first element; empty fails."""

    name = "reduce_sink"

    def __init__(self, f: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.f = f

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _ReduceSinkLogic(self.shape, promise, self.f)


class _ReduceSinkLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any, f: Any) -> None:
        super().__init__(shape, promise)
        self.acc: Any = _MISSING
        self.f = f
        self._batch_in = (self.in_,)

    def on_push(self) -> None:
        f = self.f
        acc = self.acc
        it = iter(self.elements())
        if acc is _MISSING:
            acc = next(it)
        while True:
            try:
                for x in it:
                    acc = f(acc, x)
                break
            except Exception as exc:
                d = self._decided(exc, False)
                if d is Supervision.stop:
                    raise
                if d is Supervision.restart:
                    acc = _MISSING
                    nxt = next(it, _MISSING)
                    if nxt is _MISSING:
                        break
                    acc = nxt
        self.acc = acc
        self.request()

    def on_upstream_finish(self) -> None:
        if self.acc is _MISSING:
            exc = NoSuchElementError(f"[{self._stage_name}] reduce over an empty stream")
            self.failed(exc)
            self.fail_stage(exc)
        else:
            self.succeed(self.acc)
            self.complete_stage()


# -- head / last / seq ------------------------------------------------------------------------
class _EndElementSink(SinkStage):
    """``Sink.head()`` / ``head_option()`` (``first``) and ``Sink.last()`` /
    ``last_option()``: one element of the stream's end; ``optional``: ``None`` when the
    stream is empty instead of ``NoSuchElementError``."""

    first = True

    def __init__(self, optional: bool) -> None:
        super().__init__()
        self.optional = optional
        end = "head" if self.first else "last"
        self.name = f"{end}_option_sink" if optional else f"{end}_sink"

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _EndElementLogic(self.shape, promise, self.first, self.optional)


class HeadSink(_EndElementSink):
    """``Sink.head()`` / ``Sink.head_option()``: the first element, then cancel."""

    name = "head_sink"
    first = True


class LastSink(_EndElementSink):
    """``Sink.last()`` / ``Sink.last_option()``: the last element."""

    name = "last_sink"
    first = False


class _EndElementLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any, first: bool, optional: bool) -> None:
        super().__init__(shape, promise)
        self.first = first
        self.optional = optional
        self.last: Any = _MISSING
        if not first:
            self._batch_in = (self.in_,)  # the last element: read whole batches

    def on_push(self) -> None:
        c = self._cin
        if c.state == 8 and not self.first:
            # AVAIL and nothing else: grab's and then pull's fast paths spelled out (the
            # connection is idle once grabbed), as ``Sink.fold``'s single-element path.
            x = c.elem
            c.elem = None
            if type(x) is _Batch:
                if x:
                    self.last = x[-1]
            else:
                self.last = x
            c.state = 1  # PULL_REQ
            c.q.append(c)
            if c.batch:
                c.demand_n = self.batch_size
            return
        x = self.grab(self.in_)
        if self.first:
            self.succeed(x)
            self.complete_stage()
            return
        if type(x) is _Batch:
            if x:
                self.last = x[-1]
        else:
            self.last = x
        # ``request()``, spelled out: this runs once per element or batch.
        self.pull(self.in_)
        if c.batch:
            c.demand_n = self.batch_size

    def _keeps_last_only(self) -> bool:
        """``Sink.last``/``last_option`` keep only the last element of each batch: a
        fused chain upstream may push just that (see ``reactive._stage.batch``)."""
        return not self.first

    def on_upstream_finish(self) -> None:
        if self.last is not _MISSING:
            self.succeed(self.last)
        elif self.optional:
            self.succeed(None)
        else:
            end = "head" if self.first else "last"
            exc = NoSuchElementError(f"[{self._stage_name}] {end} of an empty stream")
            self.failed(exc)
        self.complete_stage()


class SeqSink(SinkStage):
    """``Sink.seq()``: every element in a list."""

    name = "seq_sink"

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _SeqLogic(self.shape, promise)


class _SeqLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any) -> None:
        super().__init__(shape, promise)
        self.buf: list[Any] = []
        self._batch_in = (self.in_,)

    def on_push(self) -> None:
        c = self._cin
        if c.state == 8:
            # AVAIL and nothing else: grab's and then pull's fast paths spelled out (the
            # connection is idle once grabbed), as ``Sink.fold``'s single-element path.
            x = c.elem
            c.elem = None
            if type(x) is _Batch:
                self.buf.extend(x)
            else:
                self.buf.append(x)
            c.state = 1  # PULL_REQ
            c.q.append(c)
            if c.batch:
                c.demand_n = self.batch_size
            return
        x = self.grab(self.in_)
        if type(x) is _Batch:
            self.buf.extend(x)
        else:
            self.buf.append(x)
        self.request()

    def on_upstream_finish(self) -> None:
        self.succeed(self.buf)
        self.complete_stage()


class TakeLastSink(SinkStage):
    """``Sink.take_last(n)``: the last ``n`` elements in a list."""

    name = "take_last_sink"

    def __init__(self, n: int) -> None:
        super().__init__()
        if n <= 0:  # as Akka's TakeLastStage requires
            raise ValueError(f"take_last: n must be >= 1, got {n}")
        self.n = n

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _TakeLastLogic(self.shape, promise, self.n)


class _TakeLastLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any, n: int) -> None:
        super().__init__(shape, promise)
        self.buf: deque[Any] = deque(maxlen=max(0, n))
        self._batch_in = (self.in_,)

    def on_push(self) -> None:
        self.buf.extend(self.elements())
        self.request()

    def on_upstream_finish(self) -> None:
        self.succeed(list(self.buf))
        self.complete_stage()


class IgnoreSink(SinkStage):
    """``Sink.ignore()``: consume everything; result ``Done``."""

    name = "ignore_sink"

    def make_logic(self, promise: asyncio.Future[Any], attributes: Any) -> GraphStageLogic:
        return _IgnoreLogic(self.shape, promise)


class _IgnoreLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], promise: Any) -> None:
        super().__init__(shape, promise)
        self._batch_in = (self.in_,)

    def on_push(self) -> None:
        self.grab(self.in_)
        self.request()

    def on_upstream_finish(self) -> None:
        self.succeed(Done)
        self.complete_stage()


# -- no result --------------------------------------------------------------------------------
class CancelledSink(SinkStage):
    """``Sink.cancelled()``: cancels at once."""

    name = "cancelled_sink"

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        return _CancelledLogic(self.shape), NotUsed


class _CancelledLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any]) -> None:
        super().__init__(shape, None)

    def pre_start(self) -> None:
        self.cancel(self.in_)

    def on_push(self) -> None:
        pass


class OnCompleteSink(SinkStage):
    """``Sink.on_complete(cb)``: ``cb(None)`` on completion, ``cb(exc)`` on failure."""

    name = "on_complete_sink"

    def __init__(self, cb: Callable[[BaseException | None], Any]) -> None:
        super().__init__()
        self.cb = cb

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        return _OnCompleteLogic(self.shape, self.cb), NotUsed


class _OnCompleteLogic(SinkLogic):
    def __init__(self, shape: SinkShape[Any], cb: Any) -> None:
        super().__init__(shape, None)
        self.cb = cb
        self._batch_in = (self.in_,)
        self.called = False

    def on_push(self) -> None:
        self.grab(self.in_)
        self.request()

    def _call(self, arg: BaseException | None) -> None:
        if not self.called:
            self.called = True
            self.cb(arg)

    def on_upstream_finish(self) -> None:
        self.complete_stage()
        self._call(None)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.fail_stage(exc)
        self._call(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self._call(exc)
