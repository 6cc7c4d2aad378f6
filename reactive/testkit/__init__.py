"""Test probes and a manual clock for testing streams (Akka's stream testkit).

``TestSink.probe()`` materializes a ``SubscriberProbe`` that requests elements only when
told to; ``TestSource.probe()`` materializes a ``PublisherProbe`` that emits only what the
test sends. Expectations time out (default 3 s) with a message that says what was
expected and what came instead. ``ManualClock`` drives every timer of a materializer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from .._dsl.blueprints import Sink, Source
from .._impl.clock import ManualClock
from .._impl.modules import AtomicModule
from .._impl.unobserved import observed
from .._public import publish as _publish
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    _Batch,
)
from .._stage.shapes import Inlet, Outlet, SinkShape, SourceShape

__all__ = [
    "TestSink",
    "TestSource",
    "SubscriberProbe",
    "PublisherProbe",
    "ManualClock",
    "ExpectationError",
]

DEFAULT_TIMEOUT = 3.0


class ExpectationError(AssertionError):
    """A probe expectation was not met (or timed out)."""


def _describe(kind: str, value: Any) -> str:
    """A probe event as words, for expectation messages."""
    if kind == "next":
        return f"element {value!r}"
    if kind == "complete":
        return "completion"
    if kind == "error":
        return f"error {value!r}"
    if kind == "request":
        return f"request({value})"
    if kind == "cancel":
        return f"cancellation (cause {value!r})"
    return f"{kind} {value!r}"


class _Events:
    """An awaitable queue of probe events."""

    def __init__(self) -> None:
        self.items: deque[tuple[str, Any]] = deque()
        self.waiter: asyncio.Future[None] | None = None

    def put(self, kind: str, value: Any = None) -> None:
        self.items.append((kind, value))
        w = self.waiter
        if w is not None and not w.done():
            w.set_result(None)

    async def get(self, timeout: float, expected: str) -> tuple[str, Any]:
        if not self.items:
            loop = asyncio.get_running_loop()
            self.waiter = loop.create_future()
            try:
                await asyncio.wait_for(self.waiter, timeout)
            except TimeoutError:
                raise ExpectationError(
                    f"timeout ({timeout} s) while waiting for {expected}; nothing arrived"
                ) from None
            finally:
                self.waiter = None
        return self.items.popleft()


# -- subscriber probe -------------------------------------------------------------------------
class SubscriberProbe:
    """The materialized value of ``TestSink.probe()``: request and expect elements."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._events = _Events()
        self._cb: Any = None
        self._pending: list[tuple[str, Any]] = []

    def _send(self, cmd: str, arg: Any = None) -> None:
        if self._cb is None:
            self._pending.append((cmd, arg))
        else:
            self._cb.invoke((cmd, arg))

    def request(self, n: int) -> SubscriberProbe:
        """Signal demand for ``n`` more elements."""
        self._send("request", n)
        return self

    def cancel(self, cause: BaseException | None = None) -> SubscriberProbe:
        """Cancel the stream from this end."""
        self._send("cancel", cause)
        return self

    async def _next_event(self, expected: str, timeout: float | None = None) -> tuple[str, Any]:
        return await self._events.get(self.timeout if timeout is None else timeout, expected)

    async def expect_next(self, *xs: Any, timeout: float | None = None) -> Any:
        """Expect exactly these elements next, in order (returns the last)."""
        if not xs:
            kind, v = await self._next_event("an element", timeout)
            if kind != "next":
                raise ExpectationError(f"expected an element, got {_describe(kind, v)}")
            return v
        got = None
        for x in xs:
            kind, v = await self._next_event(f"element {x!r}", timeout)
            if kind != "next":
                raise ExpectationError(f"expected element {x!r}, got {_describe(kind, v)}")
            if v != x:
                raise ExpectationError(f"expected element {x!r}, got element {v!r}")
            got = v
        return got

    async def expect_next_n(self, n: int, timeout: float | None = None) -> list[Any]:
        """Expect ``n`` elements and return them."""
        out = []
        for i in range(n):
            kind, v = await self._next_event(f"element {i + 1} of {n}", timeout)
            if kind != "next":
                raise ExpectationError(f"expected element {i + 1} of {n}, got {_describe(kind, v)}")
            out.append(v)
        return out

    async def expect_next_unordered(self, *xs: Any, timeout: float | None = None) -> None:
        """Expect these elements next, in any order."""
        got = await self.expect_next_n(len(xs), timeout)
        if sorted(map(repr, got)) != sorted(map(repr, xs)):
            raise ExpectationError(f"expected {xs!r} in any order, got {got!r}")

    async def request_next(self, x: Any = ..., timeout: float | None = None) -> Any:
        """Request one element and return it (or check it equals ``x``)."""
        self.request(1)
        if x is ...:
            return await self.expect_next(timeout=timeout)
        return await self.expect_next(x, timeout=timeout)

    async def expect_complete(self, timeout: float | None = None) -> None:
        """Expect the stream to complete next."""
        kind, v = await self._next_event("completion", timeout)
        if kind != "complete":
            raise ExpectationError(f"expected completion, got {_describe(kind, v)}")

    async def expect_error(self, timeout: float | None = None) -> BaseException:
        """Expect the stream to fail next; returns the exception."""
        kind, v = await self._next_event("an error", timeout)
        if kind != "error":
            raise ExpectationError(f"expected an error, got {_describe(kind, v)}")
        exc: BaseException = v
        return exc

    async def expect_subscription_and_complete(self, timeout: float | None = None) -> None:
        """Expect completion without requesting anything."""
        await self.expect_complete(timeout)

    async def expect_no_message(self, seconds: float = 0.1) -> None:
        """Expect nothing to arrive for ``seconds`` (real time; keep it short)."""
        if self._events.items:
            raise ExpectationError(f"expected no message, got {_describe(*self._events.items[0])}")
        try:
            kind, v = await self._events.get(seconds, "nothing")
        except ExpectationError:
            return
        raise ExpectationError(f"expected no message for {seconds} s, got {_describe(kind, v)}")

    async def to_list(self, timeout: float | None = None) -> list[Any]:
        """Request everything and return the elements once the stream completes."""
        self.request(1 << 62)
        out = []
        while True:
            kind, v = await self._next_event("elements or completion", timeout)
            if kind == "next":
                out.append(v)
            elif kind == "complete":
                return out
            else:
                raise v

    async def expect_next_or_complete(self, timeout: float | None = None) -> Any:
        """An element (returned) or completion (returns None)."""
        kind, v = await self._next_event("an element or completion", timeout)
        if kind == "next":
            return v
        if kind == "complete":
            return None
        raise ExpectationError(f"expected an element or completion, got {_describe(kind, v)}")


class _ProbeSinkStage(GraphStageWithMaterializedValue[SinkShape[Any], SubscriberProbe]):
    name = "test_sink_probe"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.shape = SinkShape(Inlet("TestSink.in"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, SubscriberProbe]:
        probe = SubscriberProbe(self.timeout)
        return _ProbeSinkLogic(self.shape, probe), probe


#: The largest batch a probe asks for with one pull.
_MAX_BATCH = 1024


class _ProbeSinkLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], probe: SubscriberProbe) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.probe = probe
        self.demand = 0
        self.asked = 0
        self.set_handler(self.in_, self)
        # The probe speaks the batch protocol (see reactive/_impl/fused.py): it asks for its
        # whole outstanding demand with one pull, so tests exercise the batch paths too,
        # and it checks that no batch exceeds what it asked for.
        self._batch_in = (self.in_,)

    def pre_start(self) -> None:
        self.probe._cb = self.get_async_callback(self._on_cmd)
        pending, self.probe._pending = self.probe._pending, []
        for item in pending:
            self._on_cmd(item)

    def _on_cmd(self, item: tuple[str, Any]) -> None:
        cmd, arg = item
        if cmd == "request":
            if not isinstance(arg, int) or arg <= 0:
                # Reactive Streams rule 3.9: the stream fails (upstream is cancelled).
                exc = ValueError(
                    f"Reactive Streams rule 3.9: request(n) requires n > 0, got {arg!r}"
                )
                if not self.is_closed(self.in_):
                    self.probe._events.put("error", exc)
                    self.fail_stage(exc)
                return
            self.demand += arg
            if not self.has_been_pulled(self.in_) and not self.is_closed(self.in_):
                self._pull()
        elif cmd == "cancel":
            self.cancel(self.in_, arg)

    def _pull(self) -> None:
        self.pull(self.in_)
        c = self._conns[self.in_]
        self.asked = min(self.demand, _MAX_BATCH) if c.batch else 1
        c.demand_n = self.asked

    def on_push(self) -> None:
        x = self.grab(self.in_)
        if type(x) is _Batch:
            asked = self.asked
            if len(x) > asked:
                exc = AssertionError(
                    f"[{self._stage_name}] a batch of {len(x)} elements arrived for a demand "
                    f"of {asked} (more than requested)"
                )
                self.probe._events.put("error", exc)
                self.fail_stage(exc)
                return
            for elem in x:
                self.probe._events.put("next", elem)
            self.demand -= len(x)
        else:
            self.probe._events.put("next", x)
            self.demand -= 1
        if self.demand > 0:
            self._pull()

    def on_upstream_finish(self) -> None:
        self.probe._events.put("complete")
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        observed(exc)  # the probe reports it: not an unobserved failure
        self.probe._events.put("error", exc)
        self.fail_stage(exc)

    def _on_abort(self, exc: BaseException) -> None:
        self.probe._events.put("error", exc)


class TestSink:
    """Factory of subscriber probes."""

    __test__ = False  # not a pytest test class

    @staticmethod
    def probe(timeout: float = DEFAULT_TIMEOUT) -> Sink[Any, SubscriberProbe]:
        """A sink materializing a ``SubscriberProbe``."""
        return Sink(AtomicModule(_ProbeSinkStage(timeout)))


# -- publisher probe --------------------------------------------------------------------------
class PublisherProbe:
    """The materialized value of ``TestSource.probe()``: send elements, watch demand."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._events = _Events()
        self._cb: Any = None
        self._pending: list[tuple[str, Any]] = []
        # Every element requested so far (the sum of the requests), never decremented by
        # send_next: a running total of demand received, unlike Akka's ``pending``.
        self.pending_demand = 0

    def _send(self, cmd: str, arg: Any = None) -> None:
        if self._cb is None:
            self._pending.append((cmd, arg))
        else:
            self._cb.invoke((cmd, arg))

    def send_next(self, x: Any) -> PublisherProbe:
        """Emit ``x`` (it waits in the probe until downstream pulls)."""
        self._send("next", x)
        return self

    def send_complete(self) -> PublisherProbe:
        """Complete the stream."""
        self._send("complete")
        return self

    def send_error(self, exc: BaseException) -> PublisherProbe:
        """Fail the stream with ``exc``."""
        self._send("error", exc)
        return self

    async def expect_request(self, timeout: float | None = None) -> int:
        """Expect the next request signal; returns its ``n``, the number of elements it asked
        for (Akka's ``expectRequest()``).

        A ``TestSink.probe()`` connected directly asks for its whole demand at once:
        after ``request(5)`` this returns 5 (and there is no second request until more is
        requested); demand it adds while that request is outstanding shows as a new
        request once an element was sent. One request asks for at most 1024 elements
        (a larger demand arrives as requests of up to 1024 as elements are sent). An
        operator in between, or a materializer with fast paths off, is seen as it pulls:
        one element per pull, so each request is of 1.
        """
        t = self.timeout if timeout is None else timeout
        kind, v = await self._events.get(t, "a request")
        if kind != "request":
            raise ExpectationError(f"expected a request, got {_describe(kind, v)}")
        n: int = v
        return n

    async def expect_cancellation(self, timeout: float | None = None) -> BaseException:
        """Expect downstream to cancel; returns the cause. Requests in between are skipped."""
        t = self.timeout if timeout is None else timeout
        while True:
            kind, v = await self._events.get(t, "cancellation")
            if kind == "cancel":
                cause: BaseException = v
                return cause
            if kind != "request":
                raise ExpectationError(f"expected cancellation, got {_describe(kind, v)}")

    async def expect_no_message(self, seconds: float = 0.1) -> None:
        """Expect no request or cancellation for ``seconds``."""
        if self._events.items:
            raise ExpectationError(f"expected no message, got {_describe(*self._events.items[0])}")
        try:
            kind, v = await self._events.get(seconds, "nothing")
        except ExpectationError:
            return
        raise ExpectationError(f"expected no message for {seconds} s, got {_describe(kind, v)}")


class _ProbeSourceStage(GraphStageWithMaterializedValue[SourceShape[Any], PublisherProbe]):
    name = "test_source_probe"

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.shape = SourceShape(Outlet("TestSource.out"))

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, PublisherProbe]:
        probe = PublisherProbe(self.timeout)
        return _ProbeSourceLogic(self.shape, probe), probe


class _ProbeSourceLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], probe: PublisherProbe) -> None:
        super().__init__(shape)
        self.out = shape.out
        self.probe = probe
        self.buf: deque[Any] = deque()
        self.done: tuple[str, Any] | None = None
        self.set_handler(self.out, self)
        # What was asked (see on_pull) and not yet sent.
        self.outstanding = 0

    @property
    def _batch_out(self) -> tuple[Outlet[Any], ...]:
        # Connected directly to a TestSink probe, the probe speaks the batch protocol (see
        # reactive/_impl/fused.py) to see that probe's demand as the test requested it: a
        # pull on a batch connection asks for ``demand_n`` elements, the whole outstanding
        # demand, so ``request(5)`` is one request of 5 (Akka's ``expectRequest()``). It
        # answers one element per pull (never more than asked). Not otherwise: the probe
        # must not change how the graph is built (a lone operator after a batch-speaking
        # upstream is fused) nor how the operator under test pulls (one pull, one request).
        c = self._conns.get(self.out)
        return (self.out,) if c is not None and type(c.in_logic) is _ProbeSinkLogic else ()

    def pre_start(self) -> None:
        self.probe._cb = self.get_async_callback(self._on_cmd)
        pending, self.probe._pending = self.probe._pending, []
        for item in pending:
            self._on_cmd(item)

    def _on_cmd(self, item: tuple[str, Any]) -> None:
        cmd, arg = item
        if cmd == "next":
            self.buf.append(arg)
            if self.is_available(self.out):
                self._push_one()
                return
        elif cmd == "error":
            # Errors travel out of band: elements still waiting for demand are dropped.
            self.buf.clear()
            self.done = (cmd, arg)
        else:
            self.done = (cmd, arg)
        self._maybe_finish()

    def _maybe_finish(self) -> None:
        if self.done is not None and not self.buf:
            cmd, arg = self.done
            if cmd == "complete":
                self.complete(self.out)
            else:
                self.fail(self.out, arg)

    def on_pull(self) -> None:
        # A pull asks for ``asked`` elements in all, what an earlier pull asked for and was
        # not sent included: only the difference is a new request.
        c = self._conns[self.out]
        asked = c.demand_n if c.batch else 1
        n = asked - self.outstanding
        self.outstanding = asked
        if n > 0:
            self.probe.pending_demand += n
            self.probe._events.put("request", n)
        if self.buf:
            self._push_one()

    def _push_one(self) -> None:
        self.outstanding -= 1
        self.push(self.out, self.buf.popleft())
        self._maybe_finish()

    def on_downstream_finish(self, cause: BaseException) -> None:
        if cause is not None:
            observed(cause)  # the probe reports it: not an unobserved failure
        self.probe._events.put("cancel", cause)
        self.complete_stage()


class TestSource:
    """Factory of publisher probes."""

    __test__ = False

    @staticmethod
    def probe(timeout: float = DEFAULT_TIMEOUT) -> Source[Any, PublisherProbe]:
        """A source materializing a ``PublisherProbe``."""
        return Source(AtomicModule(_ProbeSourceStage(timeout)))


_publish(__name__, globals())
