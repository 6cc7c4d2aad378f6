"""Dynamic ports: ``SubSinkInlet`` and ``SubSourceOutlet`` (Akka's sub-ports).

A logic that runs nested graphs at runtime (``flat_map_*``, ``group_by``, ``split_*``,
``prefix_and_tail``, the restart wrappers) does not own those graphs' ports; it owns a
*handle* instead:

- ``SubSinkInlet``: consumes a nested Source. ``inlet.materialize(source)`` runs
  ``source.to(inlet.sink)`` on the parent's materializer; the tiny internal sink stage
  forwards elements, completion and failure to the parent through the parent's async
  callback, and receives pull/cancel commands through its own.
- ``SubSourceOutlet``: feeds a nested Source handed downstream (``outlet.source``). Its
  internal source stage forwards pulls and cancellation to the parent and receives
  push/complete/fail commands. If nobody materializes the source within the
  subscription timeout (default 5 s, on the materializer's clock) the parent sees a
  cancellation with ``SubscriptionTimeoutError`` and a later materialization fails
  with that error (Akka's ``subscription-timeout`` in ``cancel`` mode). The operators
  that emit substreams (``group_by``, ``split_*``, ``prefix_and_tail``) take the timeout
  and its mode from the ``Attributes.subscription_timeout`` attribute in force
  (``subscription_timeout_of``): ``warn`` only logs a warning, ``noop`` waits forever.

``SubstreamCancelStrategy`` (Akka's) says what a ``split_when`` / ``split_after`` does
when its current substream is cancelled: drain it (the default) or cancel the stream.

Both handles follow the port protocol of real ports (one pull outstanding, push only
after a pull, grab once) and raise ``PortStateError`` naming the parent stage when
misused. Handler callbacks (``on_push``/``on_upstream_finish``/``on_upstream_failure``
and ``on_pull``/``on_downstream_finish``) run inside the parent logic, like any
handler; an exception escaping one fails (or is supervised by) the parent.

When the parent logic stops, handles still open are closed for it: a ``SubSinkInlet``
is cancelled and a ``SubSourceOutlet`` fails with ``AbruptTerminationError``, so no
nested stream is left waiting for a parent that is gone.

A nested graph inherits the attributes in force at the stage that materializes it
(``materialize_nested``, Akka's ``subFusingMaterializer.materialize(graph,
inheritedAttributes)``): a supervision strategy, log levels, input buffer, fast paths or
metrics set on an enclosing blueprint apply inside it, unless the nested graph sets the
same attribute itself (the innermost one wins, as everywhere). Only the name is not
handed down: it names that stage, not the stages of the graphs it runs.
"""

from __future__ import annotations

import enum
import logging
from typing import TYPE_CHECKING, Any

from .._attributes import Attributes
from .._checks import NONE_ELEMENT
from .._errors import (
    NO_MORE_ELEMENTS_NEEDED,
    AbruptTerminationError,
    IllegalGraphError,
    PortStateError,
    SubscriptionTimeoutError,
)
from .._impl.modules import AtomicModule, LinearModule, Module
from .._keep import Keep
from .._stage.logic import (
    GraphStage,
    GraphStageLogic,
    InHandler,
    OutHandler,
    _Batch,
    port_error,
)
from .._stage.shapes import ClosedShape, Inlet, Outlet, SinkShape, SourceShape

if TYPE_CHECKING:
    from collections.abc import Callable

    from .._dsl.blueprints import Sink, Source

__all__ = [
    "SubSinkInlet",
    "SubSourceOutlet",
    "SubstreamCancelStrategy",
    "DEFAULT_SUBSCRIPTION_TIMEOUT",
    "SUBSCRIPTION_TIMEOUT_MODES",
    "subscription_timeout_of",
    "inherited_attributes",
    "materialize_nested",
]

DEFAULT_SUBSCRIPTION_TIMEOUT = 5.0
"""Seconds a substream Source may wait to be materialized (Akka's default)."""

SUBSCRIPTION_TIMEOUT_MODES = ("cancel", "warn", "noop")
"""What a substream Source not materialized in time causes (Akka's
``StreamSubscriptionTimeoutTerminationMode``): ``cancel`` it (the default), ``warn``
(log a warning, keep waiting) or ``noop`` (keep waiting)."""


def subscription_timeout_of(attributes: Attributes) -> tuple[float, str]:
    """The ``(seconds, mode)`` of the ``Attributes.subscription_timeout`` attribute in
    ``attributes``; ``(5.0, "cancel")`` when none is set (Akka's default)."""
    v = attributes.get("subscription_timeout")
    if v is None:
        return (DEFAULT_SUBSCRIPTION_TIMEOUT, "cancel")
    seconds, mode = v
    return (float(seconds), str(mode))


class SubstreamCancelStrategy(enum.Enum):
    """What ``split_when`` / ``split_after`` do when their current substream is
    cancelled (Akka's ``SubstreamCancelStrategy``)."""

    drain = "drain"
    """The default: drop the cancelled substream's elements up to the next split, then
    carry on with a new substream."""
    propagate = "propagate"
    """Cancel the whole stream: upstream is cancelled with the substream's cause; the
    main output completes (fails, when that cause is a failure, e.g. a
    ``SubscriptionTimeoutError``)."""

    def __repr__(self) -> str:
        return f"SubstreamCancelStrategy.{self.value}"


def _noop(*_: Any) -> None:
    return None


def _module_of(g: Any) -> Module:
    """The module of a blueprint or stage (``reactive._dsl.graph._module_of``, imported
    on first use: ``_ops`` imports ``_dsl`` only inside a function)."""
    global _module_of_dsl
    f = _module_of_dsl
    if f is None:
        from .._dsl.graph import _module_of as dsl_module_of

        f = _module_of_dsl = dsl_module_of
    return f(g)


_module_of_dsl: Callable[[Any], Module] | None = None


# Attributes that belong to the module they are set on and are not handed down to the
# graphs its stage runs: the name (Akka's names are per module; here an inherited name
# would replace the built-in name of every stage of the nested graph, in its error
# messages, logs and snapshots).
_NOT_INHERITED = frozenset({"name"})


def inherited_attributes(logic: GraphStageLogic) -> Attributes:
    """The defaults of a graph ``logic`` materializes at run time: ``logic``'s effective
    attributes (everything set on it and on the blueprints enclosing it, over the
    materializer's defaults) without its name. The nested graph's own attributes win
    over these."""
    attrs = logic._attributes
    items = attrs._items
    if items.keys().isdisjoint(_NOT_INHERITED):
        return attrs
    return Attributes({k: v for k, v in items.items() if k not in _NOT_INHERITED})


def materialize_nested(logic: GraphStageLogic, module: Any, *, fused: bool = True) -> Any:
    """Materialize the closed ``module`` from inside the running ``logic``, inheriting
    its attributes (``inherited_attributes``); returns the materialized value.

    ``fused`` (the default) runs it in ``logic``'s island, talking to it without a hop
    to another task (Akka's ``subFusingMaterializer``); ``fused=False`` gives it islands
    of its own. Legal only inside ``logic``'s handlers, ``pre_start`` or timers."""
    into = logic._island if fused else None
    return logic.materializer.materialize(
        module, inherited_attributes(logic), into=into, parent=logic
    )


def _track(logic: GraphStageLogic, handle: Any) -> None:
    """Register ``handle`` so it is closed if ``logic`` stops while it is open."""
    live: set[Any] | None = getattr(logic, "_sub_ports", None)
    if live is None:
        live = set()
        logic._sub_ports = live  # type: ignore[attr-defined]

        def close_all() -> None:
            for h in list(live):
                h._parent_stopped()
            live.clear()

        logic._add_stop_hook(close_all)
    live.add(handle)


def _untrack(logic: GraphStageLogic, handle: Any) -> None:
    live: set[Any] | None = getattr(logic, "_sub_ports", None)
    if live is not None:
        live.discard(handle)


# ---------------------------------------------------------------------------------------
# SubSinkInlet
# ---------------------------------------------------------------------------------------
class SubSinkInlet:
    """A dynamic inlet of ``logic``: consumes one nested Source materialized at runtime.

    Create it inside a running logic (a handler, ``pre_start``, a timer), install
    callbacks with ``set_handler`` (an ``InHandler``-like object) or the ``on_push`` /
    ``on_upstream_finish`` / ``on_upstream_failure`` arguments, then
    ``materialize(source)`` (or run ``source.to(inlet.sink)`` yourself, once).

    Defaults as for real inlets: completion completes the parent stage, failure fails
    it.
    """

    def __init__(
        self,
        logic: GraphStageLogic,
        name: str = "SubSinkInlet",
        *,
        on_push: Callable[[], None] | None = None,
        on_upstream_finish: Callable[[], None] | None = None,
        on_upstream_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._logic = logic
        self.name = name
        self._on_push = on_push
        self._on_finish = on_upstream_finish or logic.complete_stage
        self._on_failure = on_upstream_failure or logic.fail_stage
        self._elem: Any = None
        self._available = False
        self._pulled = False
        self._closed = False
        self._used = False
        # Elements its owner asked for with the outstanding pull (flat_map_merge's
        # accounting of what its inner sources were asked for; 0: not tracked).
        self._asked = 0
        self._cmd: Any = None  # the internal sink's AsyncCallback
        self._sub: Any = None  # the internal sink's logic
        self._events = logic.get_async_callback(self._on_event)
        _track(logic, self)

    # -- configuration -------------------------------------------------------------------
    def set_handler(self, handler: Any) -> None:
        """Use ``handler.on_push`` / ``on_upstream_finish`` / ``on_upstream_failure``."""
        self._on_push = handler.on_push
        self._on_finish = getattr(handler, "on_upstream_finish", self._logic.complete_stage)
        self._on_failure = getattr(handler, "on_upstream_failure", self._logic.fail_stage)

    @property
    def sink(self) -> Sink[Any, Any]:
        """The Sink to run the nested Source into (materialize it exactly once)."""
        from .._dsl.blueprints import Sink
        from .._impl.modules import AtomicModule

        return Sink(AtomicModule(_SubSinkStage(self)))

    def materialize(self, source: Any) -> Any:
        """Run ``source`` into this inlet on the parent's materializer, in the parent's
        island and with the parent's attributes as defaults (``materialize_nested``);
        returns the source's materialized value."""
        module = _module_of(source)
        shape = module.shape
        if shape.inlets or len(shape.outlets) != 1:
            # Not a Source: ``source.to(sink)`` raises (or builds an open graph the
            # materializer rejects), with the message users know.
            from .._dsl.blueprints import Source

            graph: Any = Source(module).to(self.sink)
            return materialize_nested(self._logic, graph.module)
        # What ``Source(module).to(self.sink).module`` is, built without the blueprint
        # layers (this runs once per substream: flat_map_merge opens one per element).
        linear = LinearModule(
            module, AtomicModule(_SubSinkStage(self)), Keep.left, shape=ClosedShape
        )
        return materialize_nested(self._logic, linear)

    # -- port actions (from inside the parent logic) -------------------------------------
    def pull(self) -> None:
        """Request one element; illegal twice or after close."""
        self._pull_batch(None)

    def _pull_batch(self, n: int | None) -> None:
        """Internal: like ``pull`` but accepts up to ``n`` elements at once; ``grab`` then
        returns a ``_Batch`` when the nested source speaks the batch protocol."""
        if self._closed:
            raise self._err("Cannot pull closed port")
        if self._pulled:
            raise self._err("Cannot pull port twice")
        self._pulled = True
        self._elem = None
        self._available = False
        sub = self._sub
        if sub is not None and sub._island is self._logic._island:
            # Sub-fused: ``_send``'s direct call, spelled out (once per batch an inner
            # source hands over).
            if not sub._stopped:
                try:
                    sub._pull(n)
                except Exception as exc:
                    sub._handle_error(exc)
        elif self._cmd is not None:
            self._cmd.invoke(("pull", n))

    def grab(self) -> Any:
        """Take the element that arrived; legal once after each ``on_push``."""
        if not self._available:
            raise self._err("Cannot get element from already empty input port")
        x = self._elem
        self._elem = None
        self._available = False
        return x

    def is_available(self) -> bool:
        """An element waits to be grabbed."""
        return self._available

    def is_closed(self) -> bool:
        """No more elements will arrive (completed, failed or cancelled)."""
        return self._closed

    def has_been_pulled(self) -> bool:
        """A pull is outstanding."""
        return self._pulled and not self._closed

    def cancel(self, cause: BaseException | None = None) -> None:
        """Stop consuming; the nested stream is cancelled with ``cause``. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._pulled = False
        self._available = False
        self._elem = None
        _untrack(self._logic, self)
        self._send(("cancel", cause if cause is not None else NO_MORE_ELEMENTS_NEEDED))

    # -- internals -----------------------------------------------------------------------
    def _err(self, what: str) -> PortStateError:
        return port_error(self._logic.stage_name, what, self.name)

    def _send(self, cmd: tuple[str, Any]) -> None:
        sub = self._sub
        if sub is not None and sub._island is self._logic._island:
            # Sub-fused (same island, see materialize): a direct call, no mailbox hop.
            # The internal sink is never on the stack here, so nothing is re-entered.
            if not sub._stopped:
                try:
                    sub._on_cmd(cmd)
                except Exception as exc:
                    sub._handle_error(exc)
        elif self._cmd is not None:
            self._cmd.invoke(cmd)

    def _attach(self, logic: _SubSinkLogic) -> None:
        if self._used:
            raise IllegalGraphError(
                f"[{self._logic.stage_name}] {self.name}: a SubSinkInlet can be "
                "materialized only once"
            )
        self._used = True
        self._sub = logic
        self._cmd = logic.get_async_callback(logic._on_cmd)
        if self._closed:
            self._cmd.invoke(("cancel", NO_MORE_ELEMENTS_NEEDED))
        elif self._pulled:
            self._cmd.invoke(("pull", None))

    def _on_event(self, ev: tuple[str, Any]) -> None:
        if self._closed:
            return
        kind, value = ev
        if kind == "push":
            self._pushed(value)
        elif kind == "complete":
            self._closed = True
            self._pulled = False
            _untrack(self._logic, self)
            self._on_finish()
        else:
            self._closed = True
            self._pulled = False
            _untrack(self._logic, self)
            self._on_failure(value)

    def _pushed(self, x: Any) -> None:
        """``x`` arrived (a push event): it waits to be grabbed, ``on_push`` runs."""
        if self._closed:
            return
        self._pulled = False
        self._elem = x
        self._available = True
        if self._on_push is None:
            raise self._err("no on_push handler installed")
        self._on_push()

    def _parent_stopped(self) -> None:
        if not self._closed:
            self._closed = True
            self._send(("cancel", NO_MORE_ELEMENTS_NEEDED))

    def __repr__(self) -> str:
        return f"SubSinkInlet({self.name!r})"


class _SubSinkStage(GraphStage[SinkShape[Any]]):
    """The internal sink behind a ``SubSinkInlet``."""

    name = "SubSink"

    def __init__(self, handle: SubSinkInlet) -> None:
        self.handle = handle
        self.shape = SinkShape(Inlet(f"{handle.name}.in"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        logic = _SubSinkLogic(self.shape, self.handle)
        self.handle._attach(logic)
        return logic


class _SubSinkLogic(GraphStageLogic, InHandler):
    def __init__(self, shape: SinkShape[Any], handle: SubSinkInlet) -> None:
        super().__init__(shape)
        self.in_ = shape.in_
        self.handle = handle
        self.events = handle._events
        self.set_handler(self.in_, self)
        self._batch_in = (self.in_,)
        self._want_batch = False

    def _event(self, ev: tuple[str, Any]) -> None:
        handle = self.handle
        parent = handle._logic
        if self._island is parent._island:
            # Sub-fused: deliver to the parent directly (it is not on the stack: this
            # handler was dispatched from the queue); its errors are its own.
            if not parent._stopped:
                try:
                    handle._on_event(ev)
                except Exception as exc:
                    parent._handle_error(exc)
        else:
            self.events.invoke(ev)

    def _on_cmd(self, cmd: tuple[str, Any]) -> None:
        kind, value = cmd
        if kind == "pull":
            self._pull(value)
        else:
            self.cancel(self.in_, value)

    def _pull(self, n: int | None) -> None:
        """The parent's pull, accepting up to ``n`` elements at once (None: one)."""
        c = self._conns[self.in_]
        if not c.state & 23:  # IN_CLOSED | PULLED
            if not c.state:  # idle: ``pull``'s fast path, spelled out
                c.state = 1  # PULL_REQ
                c.q.append(c)
            else:
                self.pull(self.in_)
            self._want_batch = bool(n)
            if c.batch:
                c.demand_n = n or 1

    def on_push(self) -> None:
        c = self._conns[self.in_]
        if c.state == 8:  # AVAIL and nothing else: ``grab``'s fast path, spelled out
            x = c.elem
            c.elem = None
            c.state = 0
        else:
            x = self.grab(self.in_)
        if type(x) is _Batch and not self._want_batch:
            # A batch of one answering a plain pull: the parent expects the element.
            (x,) = x
        handle = self.handle
        parent = handle._logic
        if self._island is parent._island:
            # Sub-fused: ``_event``'s direct delivery and ``_pushed``, spelled out (once
            # per batch an inner source hands over).
            if not parent._stopped and not handle._closed:
                handle._pulled = False
                handle._elem = x
                handle._available = True
                try:
                    on_push = handle._on_push
                    if on_push is None:
                        raise handle._err("no on_push handler installed")
                    on_push()
                except Exception as exc:
                    parent._handle_error(exc)
        else:
            self.events.invoke(("push", x))

    def on_upstream_finish(self) -> None:
        self._event(("complete", None))
        self.complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._event(("fail", exc))
        self.fail_stage(exc)


# ---------------------------------------------------------------------------------------
# SubSourceOutlet
# ---------------------------------------------------------------------------------------
class SubSourceOutlet:
    """A dynamic outlet of ``logic``: feeds one nested Source materialized elsewhere.

    Hand ``outlet.source`` downstream; react to ``on_pull`` by calling ``push(x)``;
    ``on_downstream_finish(cause)`` tells that the nested stream cancelled (or was not
    materialized within ``subscription_timeout`` seconds: then ``cause`` is a
    ``SubscriptionTimeoutError``). Default on cancel: nothing (the parent decides).
    """

    def __init__(
        self,
        logic: GraphStageLogic,
        name: str = "SubSourceOutlet",
        *,
        on_pull: Callable[[], None] | None = None,
        on_downstream_finish: Callable[[BaseException], None] | None = None,
        subscription_timeout: float | None = DEFAULT_SUBSCRIPTION_TIMEOUT,
    ) -> None:
        self._logic = logic
        self.name = name
        self._on_pull = on_pull
        self._on_cancel = on_downstream_finish or _noop
        self._available = False
        self._demand = 1
        self._closed = False
        self._materialized = False
        self._timed_out: BaseException | None = None
        self._early_close: tuple[str, Any] | None = None
        self._cmd: Any = None
        self._timer: Any = None
        self._events = logic.get_async_callback(self._on_event)
        _track(logic, self)
        if subscription_timeout is not None:
            self.timeout(subscription_timeout)

    # -- configuration -------------------------------------------------------------------
    def set_handler(self, handler: Any) -> None:
        """Use ``handler.on_pull`` and ``handler.on_downstream_finish``."""
        self._on_pull = handler.on_pull
        self._on_cancel = getattr(handler, "on_downstream_finish", _noop)

    @property
    def source(self) -> Source[Any, Any]:
        """The Source to hand downstream (it can be materialized once)."""
        from .._dsl.blueprints import Source
        from .._impl.modules import AtomicModule

        return Source(AtomicModule(_SubSourceStage(self)))

    def timeout(self, seconds: float, mode: str = "cancel") -> None:
        """(Re)arm the subscription timeout: not materialized within ``seconds`` means
        cancelled with ``SubscriptionTimeoutError`` (``mode="cancel"``), a warning on the
        parent's logger (``"warn"``; the Source stays usable), or nothing (``"noop"``: no
        timer at all). Does nothing once materialized or closed.

        Raises:
            ValueError: ``mode`` is none of ``cancel``, ``warn``, ``noop``.
            PortStateError: called outside a running logic.
        """
        if mode not in SUBSCRIPTION_TIMEOUT_MODES:
            raise ValueError(
                f"[{self._logic.stage_name}] {self.name}: subscription timeout mode must "
                f"be one of {', '.join(SUBSCRIPTION_TIMEOUT_MODES)}, got {mode!r}"
            )
        if self._materialized or self._closed:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if mode == "noop":
            return
        logic = self._logic
        island = logic._island
        if island is None:
            raise PortStateError(
                f"[{logic.stage_name}] {self.name}: create sub-ports only in a running logic"
            )
        clock = logic.materializer.clock
        on_fire = self._on_timeout if mode == "cancel" else self._on_timeout_warn
        self._timer = clock.call_at(clock.time() + seconds, island.signal, logic, on_fire, seconds)

    # -- port actions (from inside the parent logic) -------------------------------------
    def push(self, elem: Any) -> None:
        """Send ``elem`` into the nested Source; legal once after each ``on_pull``.

        ``elem`` may be a ``_Batch`` of at most :attr:`demand` elements when
        :attr:`demand` is more than 1 (the batch protocol, see ``fused.py``)."""
        if self._closed:
            raise self._err("Cannot push closed port")
        if not self._available:
            raise self._err("Cannot push port twice, or before it being pulled")
        if elem is None:
            raise self._err(NONE_ELEMENT)
        if type(elem) is _Batch and (len(elem) > self._demand or not elem):
            raise self._err(
                f"Cannot push a batch of {len(elem)} elements on a pull of {self._demand}"
            )
        self._available = False
        self._cmd.invoke(("push", elem))

    def is_available(self) -> bool:
        """The nested stream pulled and no element was pushed since."""
        return self._available and not self._closed

    @property
    def demand(self) -> int:
        """How many elements the nested stream's last pull accepts as one ``_Batch``
        (1 unless its first stage speaks the batch protocol)."""
        return self._demand

    def is_closed(self) -> bool:
        """Completed, failed, cancelled or timed out."""
        return self._closed

    @property
    def is_materialized(self) -> bool:
        """True once ``source`` was materialized."""
        return self._materialized

    def complete(self) -> None:
        """Complete the nested Source. Idempotent."""
        self._close(("complete", None))

    def fail(self, exc: BaseException) -> None:
        """Fail the nested Source with ``exc``. Idempotent."""
        self._close(("fail", exc))

    # -- internals -----------------------------------------------------------------------
    def _err(self, what: str) -> PortStateError:
        return port_error(self._logic.stage_name, what, self.name)

    def _close(self, cmd: tuple[str, Any]) -> None:
        if self._closed:
            return
        self._closed = True
        self._available = False
        self._cancel_timer()
        _untrack(self._logic, self)
        if self._cmd is not None:
            self._cmd.invoke(cmd)
        else:
            self._early_close = cmd

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _attach(self, logic: _SubSourceLogic) -> None:
        if self._timed_out is not None:
            logic.startup_error = self._timed_out
            return
        if self._materialized:
            logic.startup_error = IllegalGraphError(
                f"[{self._logic.stage_name}] {self.name}: a substream Source can be "
                "materialized only once"
            )
            return
        self._materialized = True
        self._cancel_timer()
        if self._early_close is not None:
            logic.startup_cmd = self._early_close
            return
        self._cmd = logic.get_async_callback(logic._on_cmd)

    def _on_timeout(self, seconds: float) -> None:
        self._timer = None
        if self._materialized or self._closed:
            return
        exc = SubscriptionTimeoutError(
            f"[{self._logic.stage_name}] substream Source ({self.name}) has not been "
            f"materialized in {seconds} s"
        )
        self._timed_out = exc
        self._closed = True
        _untrack(self._logic, self)
        self._on_cancel(exc)

    def _on_timeout_warn(self, seconds: float) -> None:
        self._timer = None
        if self._materialized or self._closed:
            return
        # The logger StageLogging would give the parent stage.
        logging.getLogger(f"reactive.stage.{self._logic.stage_name}").warning(
            "[%s] substream Source (%s) has not been materialized in %s s "
            "(subscription timeout mode warn: it is kept open)",
            self._logic.stage_name,
            self.name,
            seconds,
        )

    def _on_event(self, ev: tuple[str, Any]) -> None:
        if self._closed:
            return
        kind, value = ev
        if kind == "pull":
            self._available = True
            self._demand = value or 1
            if self._on_pull is None:
                raise self._err("no on_pull handler installed")
            self._on_pull()
        else:
            self._closed = True
            self._available = False
            _untrack(self._logic, self)
            self._on_cancel(value)

    def _parent_stopped(self) -> None:
        self._cancel_timer()
        if not self._closed:
            self._close(
                (
                    "fail",
                    AbruptTerminationError(
                        f"[{self._logic.stage_name}] the stage owning substream "
                        f"{self.name!r} stopped without closing it"
                    ),
                )
            )

    def __repr__(self) -> str:
        return f"SubSourceOutlet({self.name!r})"


class _SubSourceStage(GraphStage[SourceShape[Any]]):
    """The internal source behind a ``SubSourceOutlet``."""

    name = "SubSource"

    def __init__(self, handle: SubSourceOutlet) -> None:
        self.handle = handle
        self.shape = SourceShape(Outlet(f"{handle.name}.out"))

    def create_logic(self, attributes: Any) -> GraphStageLogic:
        logic = _SubSourceLogic(self.shape, self.handle)
        self.handle._attach(logic)
        return logic


class _SubSourceLogic(GraphStageLogic, OutHandler):
    def __init__(self, shape: SourceShape[Any], handle: SubSourceOutlet) -> None:
        super().__init__(shape)
        self.out = shape.out
        self.handle = handle
        self.events = handle._events
        self.startup_error: BaseException | None = None
        self.startup_cmd: tuple[str, Any] | None = None
        self.set_handler(self.out, self)
        # The parent may answer a pull with a batch (SubSourceOutlet.demand).
        self._batch_out = (self.out,)

    def pre_start(self) -> None:
        if self.startup_error is not None:
            self.fail(self.out, self.startup_error)
        elif self.startup_cmd is not None:
            self._on_cmd(self.startup_cmd)

    def _on_cmd(self, cmd: tuple[str, Any]) -> None:
        kind, value = cmd
        if kind == "push":
            self.push(self.out, value)
        elif kind == "complete":
            self.complete(self.out)
        else:
            self.fail(self.out, value)

    def on_pull(self) -> None:
        c = self._conns[self.out]
        self.events.invoke(("pull", c.demand_n if c.batch else None))

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.events.invoke(("cancel", cause))
        self.cancel_stage(cause)
