"""Reactive Streams bridges: ``Sink.as_publisher``, ``Sink.from_subscriber``,
``Source.from_publisher`` and ``Source.as_subscriber``.

Every signal to a foreign subscriber is made from inside the bridging stage (in its
island), and every call from foreign code (``request``, ``cancel``, ``on_next``, ...)
enters the stage through an async callback. That gives the rules that matter on one
thread for free: signals to one subscriber never overlap (1.3), a ``request`` made from
inside ``on_next`` is queued instead of recursing (3.3), and a ``request`` from idle
code may deliver ``on_next`` synchronously (3.10).

A ``Sink.as_publisher`` publisher that nobody subscribes to within its subscription
timeout (default 5 s, on the materializer's clock, as Akka's ``subscription-timeout`` in
``cancel`` mode) cancels its stream with ``SubscriptionTimeoutError``; a subscriber
arriving later gets ``on_subscribe`` then ``on_error`` with that error.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

from .._errors import SubscriptionTimeoutError, SubscriptionWithCancelError
from .._keep import NotUsed
from .._stage.logic import (
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    OutHandler,
    TimerGraphStageLogic,
    abrupt_error,
)
from .._stage.shapes import Inlet, Outlet, SinkShape, SourceShape
from ..rs import MAX_DEMAND, SubscriptionRejectedError

__all__ = ["PublisherSink", "PublisherSource", "DEFAULT_SUBSCRIPTION_TIMEOUT"]

log = logging.getLogger("reactive")

_CLOSED: Any = object()

DEFAULT_SUBSCRIPTION_TIMEOUT = 5.0
"""Seconds a ``Sink.as_publisher`` publisher may wait for its first subscriber (Akka's
``subscription-timeout`` default)."""

_TIMEOUT_KEY = "subscription_timeout"


def _rule_3_9(n: Any) -> ValueError:
    return ValueError(
        f"Reactive Streams rule 3.9: request(n) requires n > 0, got {n!r} "
        "(the subscription is cancelled)"
    )


# ---------------------------------------------------------------------------------------------
# Publisher side: the stream feeds foreign subscribers
# ---------------------------------------------------------------------------------------------
class _Subscription:
    """The subscription a ``Sink.as_publisher`` / ``Sink.from_subscriber`` stage gives out."""

    __slots__ = ("subscriber", "demand", "cancelled", "terminated", "offset", "_cb")

    def __init__(self, subscriber: Any, cb: Any) -> None:
        self.subscriber = subscriber
        self.demand = 0
        self.cancelled = False
        self.terminated = False
        self.offset = 0
        self._cb = cb

    def request(self, n: int) -> None:
        """Add ``n`` to the demand (rules 3.8, 3.17); ``n <= 0`` signals on_error (3.9)."""
        if self.cancelled or self.terminated:
            return  # rule 3.6
        if not isinstance(n, int) or n <= 0:
            self._cb.invoke(("bad_request", self, n))
            return
        d = self.demand + n
        self.demand = d if d < MAX_DEMAND else MAX_DEMAND
        self._cb.invoke(("demand", self, None))

    def cancel(self) -> None:
        """Stop signalling this subscriber (rule 3.12); idempotent (rules 3.5, 3.7)."""
        if self.cancelled:
            return
        self.cancelled = True
        if not self.terminated:
            self._cb.invoke(("cancel", self, None))

    def __repr__(self) -> str:
        return f"<Subscription demand={self.demand} cancelled={self.cancelled}>"


class _RejectedSubscription:
    """The already-cancelled subscription handed to a rejected subscriber."""

    def request(self, n: int) -> None:
        """No-op: the subscription is cancelled."""

    def cancel(self) -> None:
        """No-op: the subscription is cancelled."""


def _safe(subscriber: Any, method: str, *args: Any) -> bool:
    try:
        getattr(subscriber, method)(*args)
    except Exception as exc:
        # Rule 2.13: a subscriber that throws is considered cancelled; the caller reports it.
        log.error("subscriber %r violated rule 2.13: %s raised %r", subscriber, method, exc)
        return False
    return True


class StreamPublisher:
    """The ``Publisher`` materialized by ``Sink.as_publisher(fanout)``.

    ``subscribe`` may be called any number of times (rule 1.10). Without fanout the
    first subscriber wins and any other gets ``on_subscribe`` then ``on_error`` with
    ``SubscriptionRejectedError``. A subscriber arriving after the stream ended gets
    ``on_subscribe`` then the stream's terminal signal; after the subscription timeout
    (nobody subscribed in time) that is ``on_error(SubscriptionTimeoutError)``.
    """

    def __init__(self, fanout: bool) -> None:
        self.fanout = fanout
        self._logic: _PublisherSinkLogic | None = None
        self._subscribed = False
        self._pending: list[_Subscription] = []
        self._terminal: Any = None

    def subscribe(self, subscriber: Any) -> None:
        """Attach ``subscriber`` (rule 1.9: ``None`` raises ``TypeError``)."""
        if subscriber is None:
            raise TypeError("Reactive Streams rule 1.9: subscribe(None) is not allowed")
        if not self.fanout and self._subscribed:
            self._reject(subscriber, "Sink.as_publisher(fanout=False) allows only one subscriber")
            return
        logic = self._logic
        if self.fanout and logic is not None and self._active(subscriber):
            # As Akka's rejectDuplicateSubscriber: a subscriber already subscribed here is
            # refused (rules 1.10, 2.12) instead of getting every element twice.
            self._reject(
                subscriber,
                "Reactive Streams rule 2.12: the same subscriber cannot subscribe twice",
            )
            return
        self._subscribed = True
        assert logic is not None
        sub = _Subscription(subscriber, logic.cb)
        if logic._stopped:
            self._late(sub)
            return
        self._pending.append(sub)
        logic.cb.invoke(("subscribe", sub, None))

    def _active(self, subscriber: Any) -> bool:
        logic = self._logic
        subs = self._pending + (logic.subs if logic is not None else [])
        return any(s.subscriber is subscriber and not s.cancelled for s in subs)

    @staticmethod
    def _reject(subscriber: Any, why: str) -> None:
        if _safe(subscriber, "on_subscribe", _RejectedSubscription()):
            _safe(subscriber, "on_error", SubscriptionRejectedError(why))

    def _late(self, sub: _Subscription) -> None:
        sub.terminated = True  # no request from on_subscribe can reach a stopped stage
        if not _safe(sub.subscriber, "on_subscribe", sub):
            return
        t = self._terminal
        if t is _CLOSED:
            _safe(sub.subscriber, "on_complete")
        else:
            _safe(sub.subscriber, "on_error", t)


class PublisherSink(GraphStageWithMaterializedValue[SinkShape[Any], Any]):
    """``Sink.as_publisher(fanout)`` (mat: a ``Publisher``) and ``Sink.from_subscriber(s)``.

    Emits (``on_next``) when a subscriber has outstanding demand and the element is
    buffered; never beyond demand (rule 1.1). Backpressures when there is no subscriber
    yet, or the buffer (``Attributes.input_buffer``, default 16) is full: with fanout
    the slowest subscriber bounds how far the fastest can be ahead, and subscribers
    joining late miss earlier elements. Completes (``on_complete``) when upstream
    completes, after each subscriber received its buffered elements. Fails
    (``on_error``) at once on upstream failure. Cancels upstream when the (last)
    subscriber cancels, or signals ``request(n <= 0)`` (rule 3.9), or throws from a
    signal (rule 2.13, cancelling with that error). A publisher that nobody subscribes
    to within ``subscription_timeout`` seconds (default 5, on the materializer's clock;
    ``None`` waits forever) cancels upstream with ``SubscriptionTimeoutError`` (Akka's
    ``subscription-timeout``, ``cancel`` mode); a later subscriber gets ``on_subscribe``
    then ``on_error`` with that error. Only the first subscription counts: once one
    arrived the timeout is off for good.
    """

    name = "publisher_sink"

    def __init__(
        self,
        fanout: bool,
        subscriber: Any,
        subscription_timeout: float | None = DEFAULT_SUBSCRIPTION_TIMEOUT,
    ) -> None:
        t = subscription_timeout
        if t is not None:
            if isinstance(t, bool) or not isinstance(t, (int, float)):
                raise TypeError(
                    "Sink.as_publisher: subscription_timeout must be a number of seconds "
                    f"or None, got {t!r}"
                )
            if not t > 0 or t == float("inf"):
                raise ValueError(
                    "Sink.as_publisher: subscription_timeout must be > 0 seconds and finite "
                    f"(None waits forever), got {t!r}"
                )
        self.fanout = fanout
        self.subscriber = subscriber
        self.subscription_timeout = None if t is None else float(t)
        self.shape = SinkShape(Inlet("PublisherSink.in"))
        if subscriber is not None:
            self.name = "subscriber_sink"

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        size = max(1, int(attributes.get("input_buffer") or 16))
        if self.subscriber is not None:
            return (
                _PublisherSinkLogic(self.shape, False, size, None, self.subscriber, None),
                NotUsed,
            )
        pub = StreamPublisher(self.fanout)
        logic = _PublisherSinkLogic(
            self.shape, self.fanout, size, pub, None, self.subscription_timeout
        )
        pub._logic = logic
        return logic, pub


class _PublisherSinkLogic(TimerGraphStageLogic, InHandler):
    def __init__(
        self,
        shape: SinkShape[Any],
        fanout: bool,
        size: int,
        publisher: StreamPublisher | None,
        subscriber: Any,
        subscription_timeout: float | None,
    ) -> None:
        super().__init__(shape)
        self.in_: Inlet[Any] = shape.in_
        self.set_handler(self.in_, self)
        self.fanout = fanout
        self.size = size
        self.publisher = publisher
        self.initial = subscriber
        self.subs: list[_Subscription] = []
        self.buf: deque[Any] = deque()
        self.base = 0  # offset of buf[0] in the stream
        self.upstream: Any = None  # None while running; _CLOSED or the failure
        self.shutdown_error: BaseException | None = None
        self.subscription_timeout = subscription_timeout
        self.cb = self.get_async_callback(self.on_cmd)

    def pre_start(self) -> None:
        if self.initial is not None:
            self._attach(_Subscription(self.initial, self.cb))
        elif (
            self.subscription_timeout is not None
            and self.publisher is not None
            and not self.publisher._subscribed
        ):
            self.schedule_once(_TIMEOUT_KEY, self.subscription_timeout)

    def on_timer(self, key: Any) -> None:
        pub = self.publisher
        if pub is None or pub._subscribed or self.subs or self.upstream is not None:
            return  # a subscriber came (or upstream ended): the timeout no longer applies
        exc = SubscriptionTimeoutError(
            f"[{self.stage_name}] Sink.as_publisher: no subscriber within the subscription "
            f"timeout ({self.subscription_timeout} s); the stream was cancelled"
        )
        # Not silent (Akka's cancel mode is, a known complaint): the stream's elements
        # were never consumed. Late subscribers get this error (post_stop hands it on).
        log.warning("%s", exc)
        self.shutdown_error = exc
        self.fail_stage(exc)

    # -- commands from subscriptions ------------------------------------------------------------
    def on_cmd(self, cmd: tuple[str, _Subscription, Any]) -> None:
        kind, sub, arg = cmd
        if kind == "demand":
            self._pump()
        elif kind == "subscribe":
            self._attach(sub)
        elif kind == "cancel":
            self._remove(sub, None)
        elif kind == "bad_request" and not (sub.terminated or sub.cancelled):
            exc = _rule_3_9(arg)
            self._terminate(sub, exc)
            self._remove(sub, exc)

    def _attach(self, sub: _Subscription) -> None:
        self.cancel_timer(_TIMEOUT_KEY)
        if self.publisher is not None:
            try:
                self.publisher._pending.remove(sub)
            except ValueError:
                pass
        # A new subscriber starts at the oldest element still buffered (Akka's
        # ResizableMultiReaderRingBuffer.initCursor): subscribers attaching around the
        # same time see the same elements; what every earlier subscriber already took
        # is gone.
        sub.offset = self.base
        self.subs.append(sub)
        if not _safe(sub.subscriber, "on_subscribe", sub):
            self.subs.remove(sub)
            sub.cancelled = True
            self._shutdown_if_alone(None)
            return
        # After upstream completed, a subscriber still gets what is buffered: _pump
        # terminates it once it has read up to the end (at once after a failure).
        self._pump()

    def _terminate(self, sub: _Subscription, terminal: Any) -> None:
        if sub.terminated or sub.cancelled:
            return
        sub.terminated = True
        if terminal is _CLOSED:
            _safe(sub.subscriber, "on_complete")
        else:
            _safe(sub.subscriber, "on_error", terminal)

    def _remove(self, sub: _Subscription, cause: BaseException | None) -> None:
        if sub in self.subs:
            self.subs.remove(sub)
            self._shutdown_if_alone(cause)
            if not self._stopped:
                self._pump()

    def _shutdown_if_alone(self, cause: BaseException | None) -> None:
        # Rule 3.14: the last subscription going away shuts the stream down.
        if self.subs or self._stopped:
            return
        if self.upstream is not None:
            self.set_keep_going(False)
            return
        self.shutdown_error = SubscriptionRejectedError(
            "the publisher shut down because its subscribers cancelled"
        )
        if cause is None:
            self.complete_stage()
        else:
            self.fail_stage(cause)

    def _pump(self) -> None:
        buf = self.buf
        base = self.base
        tail = base + len(buf)
        for sub in list(self.subs):
            while sub.demand > 0 and sub.offset < tail and not sub.cancelled:
                x = buf[sub.offset - base]
                sub.offset += 1
                if sub.demand < MAX_DEMAND:
                    sub.demand -= 1
                if not _safe(sub.subscriber, "on_next", x):
                    sub.cancelled = True
                    self.subs.remove(sub)
                    self._shutdown_if_alone(
                        SubscriptionWithCancelError("subscriber threw from on_next (rule 2.13)")
                    )
                    break
            if self.upstream is not None and sub.offset >= tail and sub in self.subs:
                self._terminate(sub, self.upstream)
                self.subs.remove(sub)
        if self._stopped:
            return
        if self.subs:
            low = min(s.offset for s in self.subs)
            while self.base < low:
                buf.popleft()
                self.base += 1
        elif self.upstream is None:
            # Late (fanout) subscribers miss what was already pulled.
            buf.clear()
            self.base = tail
        if self.upstream is None:
            if self.subs and len(buf) < self.size:
                self.try_pull(self.in_)
        elif not self.subs:
            self.set_keep_going(False)

    # -- port handlers ------------------------------------------------------------------------
    def on_push(self) -> None:
        self.buf.append(self.grab(self.in_))
        self._pump()

    def on_upstream_finish(self) -> None:
        self.upstream = _CLOSED
        if self.subs:
            self.set_keep_going(True)
        self._pump()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self.upstream = exc
        self.buf.clear()
        for sub in self.subs:
            self._terminate(sub, exc)
        self.subs.clear()

    def _on_abort(self, exc: BaseException) -> None:
        if self.upstream is None:
            self.upstream = exc
        if self.publisher is not None:
            # Set before signalling: a subscriber may subscribe again from on_error.
            self.publisher._terminal = self.upstream
        for sub in self.subs:
            self._terminate(sub, exc)
        self.subs.clear()

    def post_stop(self) -> None:
        terminal = self.upstream
        if terminal is None:
            terminal = self.shutdown_error or abrupt_error(self.stage_name)
        pub = self.publisher
        if pub is not None:
            # Set before signalling: a subscriber may subscribe again from its terminal
            # signal, and _late must then see the real terminal (never on_error(None)).
            pub._terminal = terminal
        for sub in self.subs:
            self._terminate(sub, terminal)
        self.subs.clear()
        self.buf.clear()
        if pub is not None:
            pending, pub._pending = pub._pending, []
            for sub in pending:
                pub._late(sub)


# ---------------------------------------------------------------------------------------------
# Subscriber side: foreign publishers feed the stream
# ---------------------------------------------------------------------------------------------
class StreamSubscriber:
    """The ``Subscriber`` that feeds a ``Source.as_subscriber()`` / ``from_publisher`` stage.

    It accepts exactly one subscription (rule 2.5: a second one is cancelled at once,
    logged at WARNING),
    requests demand in batches (the input buffer, then top-ups of half), and accepts
    ``on_next`` after it cancelled (rule 2.8) and terminal signals with or without a
    prior request (rules 2.9, 2.10). ``None`` arguments raise ``TypeError`` (rule 2.13).
    """

    __slots__ = ("_logic", "_cb", "_has_subscription", "_terminated")

    def __init__(self, logic: _PublisherSourceLogic) -> None:
        self._logic = logic
        self._cb = logic.get_async_callback(logic.on_signal)
        self._has_subscription = False
        self._terminated = False  # on_complete/on_error received (processed or not)

    def on_subscribe(self, subscription: Any) -> None:
        """Take the subscription (or cancel it if one is active, rule 2.5)."""
        if subscription is None:
            raise TypeError("Reactive Streams rule 2.13: on_subscribe(None) is not allowed")
        if self._has_subscription:
            # Not silent: whatever feeds that second subscription (a second run of a
            # pre-materialized Sink, say) stops without any of its elements taken.
            log.warning(
                "[%s] a subscription was cancelled at once: this Subscriber takes one "
                "subscription (Reactive Streams rule 2.5)%s; the publisher offering it "
                "(e.g. a second run of a pre-materialized Sink) delivers nothing",
                self._logic._stage_name,
                " and its stream has ended" if self._logic._stopped else "",
            )
            subscription.cancel()
            return
        if self._logic._stopped:  # downstream cancelled before it came: nothing to take
            subscription.cancel()
            return
        self._has_subscription = True
        self._cb.invoke(("subscribe", subscription))

    def on_next(self, elem: Any) -> None:
        """The next element."""
        if elem is None:
            raise TypeError("Reactive Streams rule 2.13: on_next(None) is not allowed")
        self._cb.invoke(("next", elem))

    def on_error(self, exc: BaseException) -> None:
        """The publisher failed: the stream fails with ``exc``."""
        if exc is None:
            raise TypeError("Reactive Streams rule 2.13: on_error(None) is not allowed")
        self._terminated = True
        self._cb.invoke(("error", exc))

    def on_complete(self) -> None:
        """The publisher completed: the stream completes after the buffered elements."""
        self._terminated = True
        self._cb.invoke(("complete", None))


class PublisherSource(GraphStageWithMaterializedValue[SourceShape[Any], Any]):
    """``Source.from_publisher(p)`` (mat ``NotUsed``) and ``Source.as_subscriber()`` (mat: a
    ``Subscriber``).

    Emits when downstream pulls and an element arrived. Backpressures by requesting
    at most the input buffer (default 16) ahead, topping up in halves. Completes when
    the publisher signals ``on_complete`` and the buffer is empty. Fails at once on
    ``on_error`` (buffered elements are dropped), or when the publisher signals more
    than requested (rule 1.1). Cancels the subscription when downstream cancels (also
    a subscription that arrives after that).
    """

    name = "publisher_source"

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher
        self.shape = SourceShape(Outlet("PublisherSource.out"))
        if publisher is None:
            self.name = "subscriber_source"

    def create_logic_and_materialized_value(self, attributes: Any) -> tuple[Any, Any]:
        size = max(1, int(attributes.get("input_buffer") or 16))
        logic = _PublisherSourceLogic(self.shape, self.publisher, size)
        return logic, (logic.subscriber if self.publisher is None else NotUsed)


class _PublisherSourceLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], publisher: Any, size: int) -> None:
        super().__init__(shape)
        self.out: Outlet[Any] = shape.out
        self.set_handler(self.out, self)
        self.publisher = publisher
        self.size = size
        self.threshold = max(1, size // 2)
        self.subscription: Any = None
        self.buf: deque[Any] = deque()
        self.outstanding = 0
        self.consumed = 0
        self.done = False  # no more elements wanted or coming
        self.terminated = False  # on_complete / on_error received
        self.subscriber = StreamSubscriber(self)

    def pre_start(self) -> None:
        if self.publisher is not None:
            self.publisher.subscribe(self.subscriber)

    def _request(self, n: int) -> None:
        if self.subscriber._terminated:
            return  # rules 2.3, 2.4: a terminated subscription is not called any more
        self.outstanding += n
        self.subscription.request(n)

    def on_signal(self, sig: tuple[str, Any]) -> None:
        kind, arg = sig
        if kind == "next":
            if self.done:
                return
            self.outstanding -= 1
            if self.outstanding < 0:
                raise ValueError(
                    f"[{self.stage_name}] the publisher signalled more on_next than requested "
                    "(Reactive Streams rule 1.1)"
                )
            if self.is_available(self.out) and not self.buf:
                self._emit(arg)
            else:
                self.buf.append(arg)
        elif kind == "subscribe":
            self.subscription = arg
            self._request(self.size)
        elif kind == "complete":
            self.done = self.terminated = True
            if not self.buf:
                self.complete_stage()
        elif kind == "error":
            self.done = self.terminated = True
            self.buf.clear()
            self.fail_stage(arg)

    def _emit(self, x: Any) -> None:
        self.push(self.out, x)
        self.consumed += 1
        if self.consumed >= self.threshold and not self.done:
            n, self.consumed = self.consumed, 0
            self._request(n)

    def on_pull(self) -> None:
        if self.buf:
            self._emit(self.buf.popleft())
        if self.done and not self.buf:
            self.complete_stage()

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.done = True
        self.cancel_stage(cause)

    def post_stop(self) -> None:
        s = self.subscription
        if s is not None and not self.terminated and not self.subscriber._terminated:
            s.cancel()  # rule 2.6; after a terminal signal it counts as cancelled (2.4)
        self.buf.clear()
