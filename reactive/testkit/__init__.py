"""Test probes and a manual clock for testing streams (Akka's stream testkit).

``TestSink.probe()`` materializes a ``SubscriberProbe`` that requests elements only when
told to; ``TestSource.probe()`` materializes a ``PublisherProbe`` that emits only what the
test sends. Expectations time out (default 3 s) with a message that says what was
expected and what came instead. ``ManualClock`` drives every timer of a materializer;
``async with probe.within(min, max):`` checks a block's duration on the probe's
materializer clock (clock time on a ``ManualClock``).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Self

from .._dsl.blueprints import Sink, Source
from .._impl.clock import Clock, ManualClock
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

if TYPE_CHECKING:
    from types import TracebackType

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


def _cause_matches(exc: Any, cause: BaseException | type[BaseException]) -> bool:
    """``exc`` is ``cause`` (an exception class: an instance of it; an exception: that very
    one, or one of the same type with the same ``args``)."""
    if isinstance(cause, type):
        return isinstance(exc, cause)
    return exc is cause or (type(exc) is type(cause) and exc.args == cause.args)


def _check_seconds(where: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{where}: {name} must be seconds (a number), got {type(value).__name__} {value!r}"
        )
    if not value >= 0:  # also refuses NaN
        raise ValueError(f"{where}: {name} must be >= 0 seconds, got {value!r}")
    return float(value)


class _ProbeBase:
    """What both probes share: the event queue, commands to the running stage, the
    subscription (the stage started) and ``within`` blocks."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.timeout = timeout
        self._events = _Events()
        self._cb: Any = None
        self._pending: list[tuple[str, Any]] = []
        self._clock: Clock | None = None
        self._start_waiter: asyncio.Future[None] | None = None
        # The end of the innermost ``within`` block (clock time), None outside one.
        self._deadline: float | None = None
        self._last_was_no_msg = False

    def _on_start(self, cb: Any, clock: Clock) -> None:
        """Called by the probe's stage from ``pre_start``: commands now go to it."""
        self._cb = cb
        self._clock = clock
        w = self._start_waiter
        if w is not None and not w.done():
            w.set_result(None)

    def _send(self, cmd: str, arg: Any = None) -> None:
        if self._cb is None:
            self._pending.append((cmd, arg))
        else:
            self._cb.invoke((cmd, arg))

    def _timeout(self, timeout: float | None) -> float:
        # Akka's ``remainingOrDefault``: inside ``within`` (on a real clock) an expectation
        # without its own timeout waits at most until the block's end. On a ManualClock the
        # block's time does not pass while a probe waits, so the default applies.
        if timeout is not None:
            return timeout
        clock = self._clock
        if self._deadline is not None and clock is not None and not isinstance(clock, ManualClock):
            return max(0.0, self._deadline - clock.time())
        return self.timeout

    async def _next_event(self, expected: str, timeout: float | None = None) -> tuple[str, Any]:
        self._last_was_no_msg = False
        return await self._events.get(self._timeout(timeout), expected)

    async def ensure_subscription(self, timeout: float | None = None) -> Self:
        """Wait until the probe's stage is running in its stream (Akka's
        ``ensureSubscription()``): returns at once when it already is; raises
        ``ExpectationError`` when it does not start within ``timeout`` seconds (default:
        the probe's timeout). Returns the probe."""
        if self._cb is None:
            t = self._timeout(timeout)
            if self._start_waiter is None:
                self._start_waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._start_waiter), t)
            except TimeoutError:
                raise ExpectationError(
                    f"timeout ({t} s) while waiting for the subscription: the probe's stream "
                    "did not start"
                ) from None
        return self

    def within(self, min_time: float, max_time: float | None = None) -> _Within:
        """An async context manager checking that its block takes between ``min_time`` and
        ``max_time`` seconds (Akka's ``within(min, max) { ... }``); ``within(max_time)``
        alone allows 0 to ``max_time``.

        Time is the probe's materializer clock: with a ``ManualClock`` the block's
        duration is the clock time it advanced (``await clock.advance(...)`` inside the
        block), otherwise the event loop's time. Inside the block, on a real clock, an
        expectation without its own ``timeout`` waits at most until the block's end
        (Akka's ``remainingOrDefault``); blocks nest, an inner one never outlasting the
        outer. On leaving (without an exception) the block raises ``ExpectationError``
        when it took less than ``min_time``, or more than ``max_time`` unless its last
        expectation was ``expect_no_message`` (as in Akka). Entering waits for the
        subscription (``ensure_subscription``) and raises ``ExpectationError`` when an
        enclosing block has less than ``min_time`` left.

        ``min_time`` and ``max_time`` must be numbers >= 0 with ``min_time <= max_time``
        (``TypeError`` / ``ValueError`` at once)."""
        where = f"{type(self).__name__}.within(min_time, max_time)"
        lo = _check_seconds(where, "min_time", min_time)
        if max_time is None:
            lo, hi = 0.0, lo
        else:
            hi = _check_seconds(where, "max_time", max_time)
            if hi < lo:
                raise ValueError(f"{where}: max_time {max_time!r} is below min_time {min_time!r}")
        return _Within(self, lo, hi)


class _Within:
    """The async context manager of a probe's ``within(min_time, max_time)``."""

    def __init__(self, probe: _ProbeBase, min_time: float, max_time: float) -> None:
        self._probe = probe
        self.min_time = min_time
        self.max_time = max_time
        self._start = 0.0
        self._prev: float | None = None

    def _now(self) -> float:
        clock = self._probe._clock
        assert clock is not None
        return clock.time()

    async def __aenter__(self) -> Self:
        p = self._probe
        await p.ensure_subscription()
        self._start = start = self._now()
        rem = math.inf if p._deadline is None else p._deadline - start
        if rem < self.min_time:
            raise ExpectationError(
                f"within: required min time {self.min_time} s not possible, only {rem} s left "
                "in the enclosing within block"
            )
        self._prev = p._deadline
        p._last_was_no_msg = False
        p._deadline = start + min(rem, self.max_time)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        p = self._probe
        p._deadline = self._prev
        if exc_type is not None:
            return
        diff = self._now() - self._start
        if diff < self.min_time:
            raise ExpectationError(
                f"within: the block took {diff} s, should at least have been {self.min_time} s"
            )
        if not p._last_was_no_msg and diff > self.max_time:
            raise ExpectationError(f"within: the block took {diff} s, exceeding {self.max_time} s")


# -- subscriber probe -------------------------------------------------------------------------
class SubscriberProbe(_ProbeBase):
    """The materialized value of ``TestSink.probe()``: request and expect elements.

    Every expectation takes a ``timeout`` in seconds (of the event loop; default the
    probe's, 3 s) and raises ``ExpectationError`` saying what was expected and what came.
    """

    def request(self, n: int) -> SubscriberProbe:
        """Signal demand for ``n`` more elements."""
        self._send("request", n)
        return self

    def cancel(self, cause: BaseException | None = None) -> SubscriberProbe:
        """Cancel the stream from this end."""
        self._send("cancel", cause)
        return self

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

    async def expect_next_n(
        self, n: int | Iterable[Any], timeout: float | None = None
    ) -> list[Any]:
        """Expect ``n`` elements and return them; given an iterable of elements instead,
        expect exactly those next, in order, and return them (Akka's ``expectNextN(n)`` /
        ``expectNextN(all)``)."""
        if isinstance(n, int) and not isinstance(n, bool):
            out = []
            for i in range(n):
                kind, v = await self._next_event(f"element {i + 1} of {n}", timeout)
                if kind != "next":
                    raise ExpectationError(
                        f"expected element {i + 1} of {n}, got {_describe(kind, v)}"
                    )
                out.append(v)
            return out
        if isinstance(n, Iterable):
            xs = list(n)
            if xs:
                await self.expect_next(*xs, timeout=timeout)
            return xs
        raise TypeError(
            f"expect_next_n(n): n must be an int or an iterable of elements, got "
            f"{type(n).__name__} {n!r}"
        )

    async def expect_next_unordered(self, *xs: Any, timeout: float | None = None) -> None:
        """Expect these elements next, in any order (compared with ``==``; an element
        expected twice must come twice)."""
        await self.expect_next_unordered_n(xs, timeout)

    async def expect_next_unordered_n(
        self, xs: Iterable[Any], timeout: float | None = None
    ) -> list[Any]:
        """Expect the elements of ``xs`` next, in any order (Akka's
        ``expectNextUnorderedN``); returns them in arrival order. Each element that
        arrives must be one still expected (``==``), else ``ExpectationError`` names it and
        what was still expected."""
        left = list(xs)
        got: list[Any] = []
        while left:
            kind, v = await self._next_event(f"one of {left!r}", timeout)
            if kind != "next":
                raise ExpectationError(f"expected one of {left!r}, got {_describe(kind, v)}")
            for i, x in enumerate(left):
                if x == v:
                    del left[i]
                    break
            else:
                raise ExpectationError(
                    f"expected one of {left!r} (in any order), got element {v!r}"
                )
            got.append(v)
        return got

    async def request_next(self, x: Any = ..., timeout: float | None = None) -> Any:
        """Request one element and return it (or check it equals ``x``): Akka's
        ``requestNext()`` / ``requestNext(x)``; ``timeout`` is its ``requestNext(d)``."""
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

    async def expect_error_with(
        self, pred: Callable[[BaseException], bool], timeout: float | None = None
    ) -> BaseException:
        """Expect the stream to fail next with an exception for which ``pred(exc)`` is true;
        returns the exception (``ExpectationError`` naming it otherwise)."""
        if not callable(pred):
            raise TypeError(
                f"expect_error_with(pred): pred must be callable, got {type(pred).__name__} "
                f"{pred!r}"
            )
        exc = await self.expect_error(timeout)
        if not pred(exc):
            raise ExpectationError(f"expected an error matching {pred!r}, got error {exc!r}")
        return exc

    async def expect_subscription_and_complete(self, timeout: float | None = None) -> None:
        """Expect completion without requesting anything."""
        await self.expect_complete(timeout)

    async def expect_subscription_and_error(
        self,
        cause: BaseException | type[BaseException] | None = None,
        *,
        signal_demand: bool = False,
        timeout: float | None = None,
    ) -> BaseException:
        """Expect the subscription, then a failure, as the next event (Akka's
        ``expectSubscriptionAndError([cause][, signalDemand])``); returns the exception.

        With ``cause`` (an exception: that one, or one of its type with the same
        ``args``; or an exception class) the failure must match it. With
        ``signal_demand`` the probe requests one element first (a failure does not
        wait for demand here, so the default is not to)."""
        await self.ensure_subscription(timeout)
        if signal_demand:
            self.request(1)
        exc = await self.expect_error(timeout)
        if cause is not None and not _cause_matches(exc, cause):
            raise ExpectationError(f"expected error {cause!r}, got error {exc!r}")
        return exc

    async def expect_no_message(self, seconds: float = 0.1) -> None:
        """Expect nothing to arrive for ``seconds`` (real time; keep it short)."""
        if self._events.items:
            raise ExpectationError(f"expected no message, got {_describe(*self._events.items[0])}")
        try:
            kind, v = await self._events.get(seconds, "nothing")
        except ExpectationError:
            self._last_was_no_msg = True
            return
        raise ExpectationError(f"expected no message for {seconds} s, got {_describe(kind, v)}")

    async def to_list(self, timeout: float | None = None) -> list[Any]:
        """Request everything and return the elements once the stream completes (a
        failure is raised as is; ``timeout`` bounds the wait for each event)."""
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

    async def to_strict(self, at_most: float) -> list[Any]:
        """Request everything and return all elements once the stream completed, within
        ``at_most`` seconds in all (Akka's ``toStrict(atMost)``).

        Raises ``ExpectationError`` when the stream does not complete in time, or fails:
        the message lists the elements collected so far, and a failure is its
        ``__cause__``."""
        at_most = _check_seconds("SubscriberProbe.to_strict(at_most)", "at_most", at_most)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + at_most
        await self.ensure_subscription(at_most)
        self.request(1 << 62)
        out: list[Any] = []
        while True:
            left = max(0.0, deadline - loop.time())
            try:
                kind, v = await self._next_event("elements or completion", left)
            except ExpectationError:
                raise ExpectationError(
                    f"to_strict: the stream did not complete within {at_most} s; "
                    f"elements so far: {out!r}"
                ) from None
            if kind == "next":
                out.append(v)
            elif kind == "complete":
                return out
            else:
                raise ExpectationError(
                    f"to_strict: the stream failed with {v!r} while draining it; "
                    f"elements so far: {out!r}"
                ) from v

    async def expect_next_or_complete(
        self, element: Any = ..., timeout: float | None = None
    ) -> Any:
        """An element (returned) or completion (returns None): Akka's
        ``expectNextOrComplete()``. With ``element`` (Akka's
        ``expectNextOrComplete(element)``), the element must equal it."""
        kind, v = await self._next_event("an element or completion", timeout)
        if kind == "next":
            if element is not ... and v != element:
                raise ExpectationError(
                    f"expected element {element!r} or completion, got element {v!r}"
                )
            return v
        if kind == "complete":
            return None
        what = "an element" if element is ... else f"element {element!r}"
        raise ExpectationError(f"expected {what} or completion, got {_describe(kind, v)}")

    async def expect_next_or_error(
        self,
        element: Any = ...,
        cause: BaseException | type[BaseException] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """An element or a failure, whichever comes next (Akka's ``expectNextOrError()``):
        returns the element, or the exception the stream failed with. With ``element``
        an element must equal it; with ``cause`` (an exception: that one or one of its type
        with the same ``args``; or an exception class) a failure must match it. Completion
        raises ``ExpectationError``."""
        kind, v = await self._next_event("an element or an error", timeout)
        if kind == "next":
            if element is not ... and v != element:
                raise ExpectationError(
                    f"expected element {element!r} or an error, got element {v!r}"
                )
            return v
        if kind == "error":
            if cause is not None and not _cause_matches(v, cause):
                raise ExpectationError(f"expected an element or error {cause!r}, got error {v!r}")
            return v
        raise ExpectationError(f"expected an element or an error, got {_describe(kind, v)}")


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
        self.probe._on_start(self.get_async_callback(self._on_cmd), self.materializer.clock)
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
class PublisherProbe(_ProbeBase):
    """The materialized value of ``TestSource.probe()``: send elements, watch demand."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        super().__init__(timeout)
        # Every element requested so far (the sum of the requests), never decremented by
        # send_next: a running total of demand received, unlike Akka's ``pending``.
        self.pending_demand = 0

    def send_next(self, x: Any) -> PublisherProbe:
        """Emit ``x`` (it waits in the probe until downstream pulls)."""
        self._send("next", x)
        return self

    def send_complete(self) -> PublisherProbe:
        """Complete the stream."""
        self._send("complete")
        return self

    def send_error(self, exc: BaseException) -> PublisherProbe:
        """Fail the stream with ``exc``. The failure travels out of band: elements sent
        before it and still waiting for demand are dropped. (Akka's ``sendNext`` waits
        for demand, so there none can be waiting; here ``send_next`` does not wait: to
        have them delivered first, ``await expect_request()`` before sending, or before
        the error. Sent before the stream started, with downstream's request still on
        its way, they are dropped too.)"""
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
        kind, v = await self._next_event("a request", timeout)
        if kind != "request":
            raise ExpectationError(f"expected a request, got {_describe(kind, v)}")
        n: int = v
        return n

    async def expect_cancellation(self, timeout: float | None = None) -> BaseException:
        """Expect downstream to cancel; returns the cause. Requests in between are skipped."""
        while True:
            kind, v = await self._next_event("cancellation", timeout)
            if kind == "cancel":
                cause: BaseException = v
                return cause
            if kind != "request":
                raise ExpectationError(f"expected cancellation, got {_describe(kind, v)}")

    async def expect_cancellation_with_cause(
        self, cause: BaseException | type[BaseException], timeout: float | None = None
    ) -> BaseException:
        """Expect downstream to cancel with ``cause`` (Akka's
        ``expectCancellationWithCause``): an exception (that very one, or one of its type
        with the same ``args``, e.g. ``NO_MORE_ELEMENTS_NEEDED`` for a plain ``cancel()``)
        or an exception class (the cause must be an instance). Returns the cause;
        requests in between are skipped."""
        if not isinstance(cause, BaseException) and not (
            isinstance(cause, type) and issubclass(cause, BaseException)
        ):
            raise TypeError(
                "expect_cancellation_with_cause(cause): cause must be an exception or an "
                f"exception class, got {type(cause).__name__} {cause!r}"
            )
        got = await self.expect_cancellation(timeout)
        if not _cause_matches(got, cause):
            raise ExpectationError(
                f"expected cancellation with cause {cause!r}, got cancellation (cause {got!r})"
            )
        return got

    async def expect_no_message(self, seconds: float = 0.1) -> None:
        """Expect no request or cancellation for ``seconds``."""
        if self._events.items:
            raise ExpectationError(f"expected no message, got {_describe(*self._events.items[0])}")
        try:
            kind, v = await self._events.get(seconds, "nothing")
        except ExpectationError:
            self._last_was_no_msg = True
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
        self.probe._on_start(self.get_async_callback(self._on_cmd), self.materializer.clock)
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
