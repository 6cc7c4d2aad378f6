"""GraphStage, GraphStageLogic, handlers, timers and async callbacks: the custom stage API.

A ``GraphStage`` is an immutable description with a ``shape``; every materialization
calls ``create_logic(attributes)`` for a fresh ``GraphStageLogic`` holding all mutable
state. The logic reacts to port events through ``InHandler``/``OutHandler`` objects
(often the logic itself) and acts on ports with ``push``/``pull``/``grab``/...

Every port action documents when it is legal; illegal use raises ``PortStateError``
naming the stage and the port. Callbacks of one logic never run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from .._attributes import Attributes
from .._checks import NONE_ELEMENT
from .._errors import (
    NO_MORE_ELEMENTS_NEEDED,
    STAGE_WAS_COMPLETED,
    AbruptTerminationError,
    AsyncCallCancelledError,
    MissingHandlerError,
    NoneElementError,
    PortStateError,
    StreamDetachedError,
    StreamError,
    SubscriptionWithCancelError,
)
from .._impl.interpreter import (
    AVAIL,
    CANCEL_REQ,
    COMPLETE_REQ,
    DEMAND,
    FAIL_REQ,
    IN_CLOSED,
    OUT_CLOSED,
    PULLED,
    Connection,
)
from .._impl.unobserved import check_reached, note_failure
from .._keep import Done, DoneType, NotUsed
from .._supervision import Supervision
from .shapes import Inlet, Outlet, Shape

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from .._impl.interpreter import Island
    from .._impl.materializer import Materializer

__all__ = [
    "GraphStage",
    "GraphStageWithMaterializedValue",
    "GraphStageLogic",
    "InHandler",
    "OutHandler",
    "TimerGraphStageLogic",
    "AsyncCallback",
    "StageLogging",
    "EAGER_TERMINATE_INPUT",
    "EAGER_TERMINATE_OUTPUT",
    "IGNORE_TERMINATE_INPUT",
    "IGNORE_TERMINATE_OUTPUT",
    "TOTALLY_IGNORANT_INPUT",
]

log = logging.getLogger("reactive")

S = TypeVar("S", bound=Shape)
M = TypeVar("M")
T = TypeVar("T")

_PLAIN_NUMBER = (int, float)
_INF = float("inf")


# ---------------------------------------------------------------------------------------
# Stages
# ---------------------------------------------------------------------------------------
class GraphStageWithMaterializedValue(Generic[S, M]):
    """A stage description that also produces a materialized value.

    Subclasses set ``shape`` and implement ``create_logic_and_materialized_value``.
    The stage object must be immutable; all state lives in the logic.
    """

    shape: S
    initial_attributes: Attributes = Attributes.none()

    def create_logic_and_materialized_value(self, attributes: Attributes) -> tuple[Any, M]:
        """Create a fresh logic and the materialized value of this run."""
        raise NotImplementedError(f"{type(self).__name__} must implement this method")

    def __repr__(self) -> str:
        return f"{type(self).__name__}"


class GraphStage(GraphStageWithMaterializedValue[S, Any]):
    """A stage description whose materialized value is ``NotUsed``.

    Subclasses set ``shape`` and implement ``create_logic(attributes)``.
    """

    def create_logic(self, attributes: Attributes) -> GraphStageLogic:
        """Create the fresh logic of one materialization."""
        raise NotImplementedError(f"{type(self).__name__} must implement create_logic")

    def create_logic_and_materialized_value(self, attributes: Attributes) -> tuple[Any, Any]:
        """Delegates to ``create_logic``; the materialized value is ``NotUsed``."""
        return self.create_logic(attributes), NotUsed


# ---------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------
def _owner(handler: Any) -> GraphStageLogic:
    if isinstance(handler, GraphStageLogic):
        return handler
    owner: GraphStageLogic | None = getattr(handler, "_logic_ref", None)
    if owner is None:
        raise PortStateError(
            f"handler {handler!r} is not registered with a logic (use set_handler first)"
        )
    return owner


class InHandler:
    """Reacts to events on an inlet. Defaults as in Akka: finish/failure stop the stage."""

    def on_push(self) -> None:
        """An element is available on the inlet (``grab`` it). Must be implemented."""
        raise NotImplementedError(f"{type(self).__name__}.on_push is not implemented")

    def on_upstream_finish(self) -> None:
        """Upstream completed. Default: ``complete_stage()``."""
        _owner(self).complete_stage()

    def on_upstream_failure(self, exc: BaseException) -> None:
        """Upstream failed with ``exc``. Default: ``fail_stage(exc)``."""
        _owner(self).fail_stage(exc)


class OutHandler:
    """Reacts to events on an outlet. Default on cancel: ``cancel_stage(cause)``."""

    def on_pull(self) -> None:
        """Downstream requested an element (``push`` one when ready). Must be implemented."""
        raise NotImplementedError(f"{type(self).__name__}.on_pull is not implemented")

    def on_downstream_finish(self, cause: BaseException) -> None:
        """Downstream cancelled. Default: ``cancel_stage(cause)``: complete on a normal
        cancellation, fail with ``cause`` otherwise."""
        _owner(self).cancel_stage(cause)


class _EagerTerminateInput(InHandler):
    """Ignores pushes; upstream completion or failure stops the stage (the default)."""

    def on_push(self) -> None:
        pass


class _IgnoreTerminateInput(InHandler):
    """Ignores pushes and upstream completion; failure still fails the stage."""

    def on_push(self) -> None:
        pass

    def on_upstream_finish(self) -> None:
        pass


class _TotallyIgnorantInput(_IgnoreTerminateInput):
    """Ignores pushes, completion and failure."""

    def on_upstream_failure(self, exc: BaseException) -> None:
        pass


class _EagerTerminateOutput(OutHandler):
    """Ignores pulls; cancellation stops the stage."""

    def on_pull(self) -> None:
        pass


class _IgnoreTerminateOutput(OutHandler):
    """Ignores pulls and cancellation."""

    def on_pull(self) -> None:
        pass

    def on_downstream_finish(self, cause: BaseException) -> None:
        pass


EAGER_TERMINATE_INPUT: InHandler = _EagerTerminateInput()
"""Ignores pushes; upstream completion or failure stops the stage (the default behaviour)."""
IGNORE_TERMINATE_INPUT: InHandler = _IgnoreTerminateInput()
"""Ignores pushes and upstream completion; failure still fails the stage."""
TOTALLY_IGNORANT_INPUT: InHandler = _TotallyIgnorantInput()
"""Ignores pushes, completion and failure."""
EAGER_TERMINATE_OUTPUT: OutHandler = _EagerTerminateOutput()
"""Ignores pulls; cancellation stops the stage."""
IGNORE_TERMINATE_OUTPUT: OutHandler = _IgnoreTerminateOutput()
"""Ignores pulls and cancellation."""
_SHARED_HANDLER_TYPES = frozenset(
    {
        _EagerTerminateInput,
        _IgnoreTerminateInput,
        _TotallyIgnorantInput,
        _EagerTerminateOutput,
        _IgnoreTerminateOutput,
    }
)


class _Emitting(OutHandler):
    """Temporary outlet handler while ``emit``/``emit_multiple`` have elements left."""

    __slots__ = ("logic", "out", "previous", "entries", "complete_after")

    def __init__(self, logic: GraphStageLogic, out: Outlet[Any], previous: Any) -> None:
        self.logic = logic
        self.out = out
        self.previous = previous
        # entries: [next element, iterator or None, and_then]
        self.entries: deque[list[Any]] = deque()
        self.complete_after = False

    def on_pull(self) -> None:
        logic = self.logic
        entry = self.entries[0]
        logic.push(self.out, entry[0])
        it = entry[1]
        if it is not None:
            try:
                entry[0] = next(it)
                return
            except StopIteration:
                pass
        self.entries.popleft()
        and_then = entry[2]
        if and_then is None:
            if not self.entries:
                self._finish()
            return
        # As Akka's Emitting.followUp: restore the previous handler, run and_then, then
        # queue the remaining emits (and a pending completion) behind whatever and_then
        # emitted, so "emit(a, then emit b); emit(c)" gives a, b, c.
        rest = self.entries
        complete_after = self.complete_after
        self.entries = deque()
        self.complete_after = False
        self._restore()
        and_then()
        if not rest and not complete_after:
            return
        c = logic._conns[self.out]
        h = c.out_handler
        if type(h) is _Emitting:
            h.entries.extend(rest)
            h.complete_after = h.complete_after or complete_after
        elif rest:
            self.entries = rest
            self.complete_after = complete_after
            self.previous = h
            c.out_handler = self
            logic._handlers[self.out] = self
        else:
            logic.complete(self.out)

    def _restore(self) -> None:
        logic = self.logic
        conn = logic._conns[self.out]
        conn.out_handler = self.previous
        logic._handlers[self.out] = self.previous

    def _finish(self) -> None:
        logic = self.logic
        conn = logic._conns[self.out]
        conn.out_handler = self.previous
        logic._handlers[self.out] = self.previous
        if self.complete_after:
            logic.complete(self.out)

    def on_downstream_finish(self, cause: BaseException) -> None:
        self.previous.on_downstream_finish(cause)


class _Reading(InHandler):
    __slots__ = ("logic", "inlet", "previous", "and_then", "on_close")

    def __init__(
        self,
        logic: GraphStageLogic,
        inlet: Inlet[Any],
        previous: Any,
        and_then: Callable[[Any], None],
        on_close: Callable[[], None] | None,
    ) -> None:
        self.logic = logic
        self.inlet = inlet
        self.previous = previous
        self.and_then = and_then
        self.on_close = on_close

    def _restore(self) -> None:
        self.logic.set_handler(self.inlet, self.previous)

    def on_push(self) -> None:
        x = self.logic.grab(self.inlet)
        self._restore()
        self.and_then(x)

    def on_upstream_finish(self) -> None:
        self._restore()
        if self.on_close is not None:
            self.on_close()
        self.previous.on_upstream_finish()

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._restore()
        self.previous.on_upstream_failure(exc)


# ---------------------------------------------------------------------------------------
# Async callbacks
# ---------------------------------------------------------------------------------------
class AsyncCallback(Generic[T]):
    """An entry point into a running logic from other tasks or threads.

    ``invoke(x)`` may be called from any task on the stream's loop; the handler runs
    inside the stage like any other callback. ``invoke_threadsafe(x)`` may be called from
    another thread. Invocations after the stage stopped are dropped;
    ``invoke_with_feedback(x)`` says whether the handler ran.
    """

    __slots__ = ("_logic", "_handler", "_feedback")

    def __init__(self, logic: GraphStageLogic, handler: Callable[[T], Any]) -> None:
        self._logic = logic
        self._handler = handler
        # The futures of ``invoke_with_feedback`` whose handler has not run yet (None until
        # the first one: a stop hook then fails those left when the stage stops).
        self._feedback: set[asyncio.Future[DoneType]] | None = None

    def invoke_with_feedback(self, x: T = None) -> asyncio.Future[DoneType]:  # type: ignore[assignment]
        """Like ``invoke``, returning a future completed with ``Done`` once the handler ran
        (Akka's ``invokeWithFeedback``).

        The future fails with the handler's exception if it raised (the stage fails with
        it too, as with ``invoke``), and with a ``StreamError`` (Akka's
        ``StreamDetachedException``) if the stage stopped before the handler could run:
        already stopped when called, or stopping (completed, failed, cancelled, or its
        materializer shut down) with the invocation still queued. Call it on the
        stream's event loop (from another thread, use ``invoke_threadsafe``); before the
        stage started the invocation waits for the start, as with ``invoke``. Cancelling
        the future does not withdraw the invocation.
        """
        fut: asyncio.Future[DoneType] = asyncio.get_running_loop().create_future()
        logic = self._logic
        if logic._stopped:
            fut.set_exception(_detached(logic))
            return fut
        pending = self._feedback
        if pending is None:
            pending = self._feedback = set()
            logic._add_stop_hook(self._fail_feedback)
        pending.add(fut)
        self._invoke_fn(self._run_with_feedback, (x, fut))
        return fut

    def _invoke_fn(self, fn: Callable[[Any], Any], arg: Any) -> None:
        # ``invoke`` with another function than the handler.
        logic = self._logic
        if logic._stopped:
            return
        island = logic._island
        if island is None:
            logic._pending_callbacks.append((fn, arg))
            return
        island.signal(logic, fn, arg)

    def _run_with_feedback(self, item: tuple[T, asyncio.Future[DoneType]]) -> None:
        x, fut = item
        pending = self._feedback
        if pending is None or fut not in pending:
            return  # failed already: the stage stopped first
        pending.discard(fut)
        try:
            self._handler(x)
        except Exception as exc:
            if not fut.done():
                fut.set_exception(exc)
            raise  # fails the stage, as a raising handler of ``invoke`` does
        if not fut.done():
            fut.set_result(Done)

    def _fail_feedback(self) -> None:
        pending, self._feedback = self._feedback, set()
        if pending:
            logic = self._logic
            for fut in pending:
                if not fut.done():
                    fut.set_exception(_detached(logic))

    def invoke(self, x: T = None) -> None:  # type: ignore[assignment]
        """Run the handler with ``x`` inside the stage (soon, or right now if idle)."""
        logic = self._logic
        if logic._stopped:
            return
        island = logic._island
        if island is None:
            logic._pending_callbacks.append((self._handler, x))
            return
        island.signal(logic, self._handler, x)

    def invoke_threadsafe(self, x: T = None) -> None:  # type: ignore[assignment]
        """Like ``invoke`` but callable from any thread."""
        logic = self._logic
        loop = logic._loop
        if loop is None:
            # Not materialized yet: buffered like ``invoke`` (Akka buffers these too).
            self.invoke(x)
            return
        loop.call_soon_threadsafe(self.invoke, x)

    @property
    def is_stage_stopped(self) -> bool:
        """True once the stage this callback belongs to has stopped."""
        return self._logic._stopped


def _detached(logic: GraphStageLogic) -> StreamDetachedError:
    """The error of an ``invoke_with_feedback`` whose stage stopped before running it."""
    return StreamDetachedError(
        f"[{logic._stage_name}] the stage stopped before the async callback was processed "
        "(Akka's StreamDetachedException)"
    )


# ---------------------------------------------------------------------------------------
# The logic
# ---------------------------------------------------------------------------------------
def apply_decider(decider: Any, exc: BaseException) -> Supervision:
    """``decider(exc)``, the directive for ``exc``; a decider that raises, or returns
    something that is not a :class:`Supervision` directive, stops the stage: ``exc``
    fails it with a note saying what the decider did (a decider's own bug neither
    hangs the stream nor passes unnoticed)."""
    if decider is None:
        return Supervision.stop
    try:
        directive = decider(exc)
    except Exception as bad:
        exc.add_note(f"the supervision decider raised {bad!r} on it; the stage stopped")
        return Supervision.stop
    if type(directive) is not Supervision:
        exc.add_note(
            f"the supervision decider returned {directive!r}, not a Supervision directive "
            "(stop, resume or restart); the stage stopped"
        )
        return Supervision.stop
    return directive


class _LogicFields:
    """The runtime's own fields of every logic, kept in slots (``GraphStageLogic``).

    CPython 3.11 keeps an instance's attributes in a per-class shared-key layout of at
    most 29 names (a 30th materializes the dict, measured); a logic that sets more (the
    union over its instances) has its ``__dict__`` materialized, and every attribute read
    on it becomes a dict lookup
    (~2% of B2 with a fused chain of 34 attributes). With these 15 fields in slots, a
    logic class has 29 names of its own before that happens, and the fields themselves
    are read as slots. (``tests/reactive/test_logic_layout.py`` checks the runtime's
    logics stay inside.)
    """

    __slots__ = (
        "shape",
        "_handlers",
        "_conns",
        "_island",
        "_loop",
        "_materializer",
        "_attributes",
        "_stage_name",
        "_open_ports",
        "_keep_going",
        "_stopped",
        "_started",
        "_pending_callbacks",
        "_timers",
        "_on_stop_hooks",
        "_observe",
    )


def port_error(stage: str, what: str, port: str) -> PortStateError:
    """The error of a port action ``what`` went wrong with on ``port`` of ``stage``: a
    ``NoneElementError`` for a None pushed (``NONE_ELEMENT``), else a ``PortStateError``."""
    cls = NoneElementError if what is NONE_ELEMENT else PortStateError
    return cls(f"[{stage}] {what} (port {port!r})")


def note_function(exc: BaseException, kind: str, stage: str) -> None:
    """Note on ``exc`` that the function given to operator ``kind`` of stage ``stage``
    raised it (once): a fused run's traceback shows generated code, so both a fused run
    and the operator's own stage say it."""
    add_note_once(exc, f"raised by the function given to {kind} (stage [{stage}])")


def add_note_once(exc: BaseException, note: str) -> None:
    """Add ``note`` to ``exc`` unless it carries it already (an exception raised again,
    or passed on through several stages, gets each note once)."""
    if note not in getattr(exc, "__notes__", ()):
        exc.add_note(note)


# Notes that say where an exception was raised already: this module's, and those of
# connectors naming a function of theirs ("raised by the rebalance listener's ...").
_STAGE_NOTES = ("raised by ", "raised in stage", "the stream failed first in")


def note_stage(exc: BaseException, stage: str, first: bool = False) -> None:
    """Note on ``exc``, raised by a handler of stage ``stage`` (a function given to a
    built-in operator, a custom stage's handler or ``pre_start``), which stage raised
    it; ``first``: the stage failed with it first (``fail_stage`` of the failure's
    origin: an async function's exception, one handed to the stream). Nothing when a
    note names a stage already: a stream failure's traceback shows the interpreter (or a
    worker task), so the materialized value's exception would name no operator."""
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, str) and note.startswith(_STAGE_NOTES):
            return
    if first:
        exc.add_note(f"the stream failed first in stage [{stage}]")
    else:
        exc.add_note(f"raised in stage [{stage}] (by a function given to it, or its handler)")


class GraphStageLogic(_LogicFields):
    """The running state and behaviour of one stage in one materialization.

    Register a handler for every port with ``set_handler`` (or ``set_handlers``) in the
    constructor; act on ports only from handlers, ``pre_start``, timers and async
    callbacks.
    """

    def __init__(self, shape: Shape) -> None:
        self.shape = shape
        self._handlers: dict[Any, Any] = {}
        # A plain dict (not a subclass with __missing__): the interpreter specializes
        # subscripts of exact dicts, and every port action starts with this lookup. Port
        # actions turn a miss into a PortStateError naming stage and port (``_foreign``).
        self._conns: dict[Any, Connection] = {}
        self._island: Island | None = None
        self._loop: Any = None
        self._materializer: Materializer | None = None
        self._attributes: Attributes = Attributes.none()
        self._stage_name = type(self).__name__
        self._open_ports = len(shape.inlets) + len(shape.outlets)
        self._keep_going = False
        self._stopped = False
        self._started = False
        self._pending_callbacks: list[tuple[Any, Any]] = []
        self._timers: dict[Any, Any] | None = None
        self._on_stop_hooks: list[Callable[[], None]] | None = None
        # The stage's id in its graph's snapshots (reactive.observe's StageTag), set
        # when the graph is recorded.
        self._observe: Any = None

    # -- identity ----------------------------------------------------------------------
    @property
    def stage_name(self) -> str:
        """The name used in error messages: the ``name`` attribute or the stage's type."""
        return self._stage_name

    @property
    def attributes(self) -> Attributes:
        """The effective attributes of this stage."""
        return self._attributes

    @property
    def materializer(self) -> Materializer:
        """The materializer running this logic (to run nested graphs).

        Raises:
            PortStateError: the stage has not started yet (use it from ``pre_start`` on).
        """
        if self._materializer is None:
            raise PortStateError(f"[{self._stage_name}] materializer accessed before start")
        return self._materializer

    def _err(self, port: Any, what: str) -> PortStateError:
        return port_error(self._stage_name, what, getattr(port, "name", repr(port)))

    def _foreign(self, port: Any) -> PortStateError:
        if self._island is None and (port in self.shape.inlets or port in self.shape.outlets):
            # Akka: "not yet initialized: only setHandler is allowed in GraphStageLogic
            # constructor". The materializer adds the stage name (unknown here).
            pname = getattr(port, "name", repr(port))
            return PortStateError(
                "not yet initialized: only set_handler is allowed in the GraphStageLogic "
                f"constructor; act on ports from pre_start or a handler (port {pname!r})"
            )
        return self._err(port, "port does not belong to this stage's shape")

    def _conn(self, port: Any) -> Connection:
        try:
            return self._conns[port]
        except KeyError:
            raise self._foreign(port) from None

    # -- handlers ----------------------------------------------------------------------
    def set_handler(self, port: Inlet[Any] | Outlet[Any], handler: Any) -> None:
        """Install the handler for ``port``; may be called again to swap behaviour.

        Raises:
            TypeError: ``handler`` cannot handle ``port`` (no ``on_push`` for an inlet, no
                ``on_pull`` for an outlet: an ``OutHandler`` set on an inlet, say).
            A port of the shape left without a handler fails the materialization with
            ``MissingHandlerError`` naming the stage and the port.
        """
        is_in = isinstance(port, Inlet)
        if not hasattr(handler, "on_push" if is_in else "on_pull"):
            raise TypeError(
                f"[{self._stage_name or type(self).__name__}] set_handler: the handler for "
                f"{'inlet' if is_in else 'outlet'} {getattr(port, 'name', port)!r} has no "
                f"{'on_push' if is_in else 'on_pull'} (an "
                f"{'InHandler' if is_in else 'OutHandler'} is needed), got {handler!r}"
            )
        if not isinstance(handler, GraphStageLogic):
            if type(handler) in _SHARED_HANDLER_TYPES:
                # The module-level EAGER_/IGNORE_ handlers are shared by every logic; their
                # defaults find the logic through ``_logic_ref``, so each logic gets its own.
                handler = type(handler)()
            try:
                handler._logic_ref = self
            except AttributeError:
                pass
        self._handlers[port] = handler
        conn = self._conns.get(port)
        if conn is not None:
            if is_in:
                conn.in_handler = handler
            else:
                conn.out_handler = handler

    def set_handlers(self, inlet: Inlet[Any], outlet: Outlet[Any], handler: Any) -> None:
        """Install one object handling both ``inlet`` and ``outlet``.

        Raises:
            Nothing here (as ``set_handler``).
        """
        self.set_handler(inlet, handler)
        self.set_handler(outlet, handler)

    def get_handler(self, port: Inlet[Any] | Outlet[Any]) -> Any:
        """The handler currently installed for ``port``.

        Raises:
            KeyError: no handler was installed for ``port``.
        """
        return self._handlers[port]

    # -- inlet actions -----------------------------------------------------------------
    # The port actions below are the per-element hot path of every stage. Their fast
    # paths spell the state bits as literals (module globals cost a lookup each) and the
    # ``try`` around the port lookup is free in CPython 3.11 unless it raises.
    def pull(self, inlet: Inlet[Any]) -> None:
        """Request one element. Legal once per element, on an open inlet.

        Pulling an inlet whose element was not grabbed drops that element (as Akka).

        Raises:
            PortStateError: the inlet is closed ("Cannot pull closed port"), or already
                pulled and not pushed yet ("Cannot pull port twice"), or it is not a port of
                this stage's shape, or the stage has not started yet (act on ports from
                ``pre_start``, a handler, a timer or an async callback).
        """
        try:
            c = self._conns[inlet]
        except KeyError:
            raise self._foreign(inlet) from None
        if not c.state:  # idle and open, nothing pending: the common case
            c.state = 1  # PULL_REQ
            c.q.append(c)
            return
        st = c.state
        # PULLED|IN_CLOSED|AVAIL (31): only a stage that pulls without grabbing (AVAIL,
        # the element is dropped) or misuses the port leaves the fast path.
        if st & 31:
            if st & IN_CLOSED:
                raise self._err(inlet, "Cannot pull closed port")
            if st & PULLED:
                raise self._err(inlet, "Cannot pull port twice")
            c.elem = None
            st &= ~AVAIL
        c.state = st | 1  # PULL_REQ
        c.q.append(c)

    def try_pull(self, inlet: Inlet[Any]) -> None:
        """Pull unless the inlet is closed (or already pulled).

        Raises:
            PortStateError: the inlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        try:
            st = self._conns[inlet].state
        except KeyError:
            raise self._foreign(inlet) from None
        if not st & 23:  # IN_CLOSED | PULLED
            self.pull(inlet)

    def grab(self, inlet: Inlet[Any]) -> Any:
        """Take the element that arrived; legal once after each ``on_push``.

        An element that arrived before upstream completed can still be grabbed afterwards.

        Raises:
            PortStateError: no element is waiting ("Cannot get element from already empty
                input port"), or the inlet is not a port of this stage's shape, or the stage
                has not started yet (act on ports from ``pre_start``, a handler, a timer or
                an async callback).
        """
        try:
            c = self._conns[inlet]
        except KeyError:
            raise self._foreign(inlet) from None
        if c.state == 8:  # AVAIL and nothing else: the common case
            x = c.elem
            c.elem = None
            c.state = 0
            return x
        st = c.state
        if not st & 8:  # AVAIL
            raise self._err(inlet, "Cannot get element from already empty input port")
        x = c.elem
        c.elem = None
        c.state = st & ~8
        return x

    def is_available(self, port: Inlet[Any] | Outlet[Any]) -> bool:
        """Inlet: an element waits to be grabbed. Outlet: downstream pulled, push allowed.

        Raises:
            PortStateError: ``port`` is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        try:
            c = self._conns[port]
        except KeyError:
            raise self._foreign(port) from None
        if isinstance(port, Inlet):
            return bool(c.state & AVAIL)
        return (c.state & (DEMAND | OUT_CLOSED)) == DEMAND

    def has_been_pulled(self, inlet: Inlet[Any]) -> bool:
        """A pull is outstanding on ``inlet`` (pulling again would be illegal).

        Raises:
            PortStateError: the inlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        st = self._conn(inlet).state
        return bool(st & PULLED) and not st & IN_CLOSED

    def is_closed(self, port: Inlet[Any] | Outlet[Any]) -> bool:
        """Inlet: no more elements will arrive. Outlet: no more pushes are possible.

        Raises:
            PortStateError: ``port`` is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        try:
            c = self._conns[port]
        except KeyError:
            raise self._foreign(port) from None
        if isinstance(port, Inlet):
            return bool(c.state & IN_CLOSED)
        return bool(c.state & OUT_CLOSED)

    def cancel(self, inlet: Inlet[Any], cause: BaseException | None = None) -> None:
        """Stop receiving from ``inlet``; drops an element not yet grabbed. Idempotent.

        ``cause`` (default: no more elements needed, a normal cancellation) goes upstream.

        Raises:
            PortStateError: the inlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        c = self._conn(inlet)
        st = c.state
        if st & IN_CLOSED:
            return
        c.elem = None
        c.state = (st | IN_CLOSED | CANCEL_REQ) & ~AVAIL
        c.cancel_cause = cause if cause is not None else NO_MORE_ELEMENTS_NEEDED
        c.q.append(c)
        self._port_closed()

    # -- outlet actions ----------------------------------------------------------------
    def push(self, outlet: Outlet[Any], elem: Any) -> None:
        """Send ``elem`` downstream; legal once after each ``on_pull``.

        A push to an outlet whose downstream cancelled after pulling, before the cancellation
        was delivered, is dropped silently (as Akka).

        Raises:
            PortStateError: ``elem`` is None (Reactive Streams rule 2.13), the outlet is
                closed ("Cannot push closed port"), downstream has not pulled or the element
                for this pull was already pushed ("Cannot push port twice, or before it
                being pulled"), or the outlet is not a port of this stage's shape, or the
                stage has not started yet (act on ports from ``pre_start``, a handler, a
                timer or an async callback).
        """
        try:
            c = self._conns[outlet]
        except KeyError:
            raise self._foreign(outlet) from None
        if c.state == 2 and elem is not None:  # DEMAND and nothing else: the common case
            c.elem = elem
            c.state = 4  # PUSH_REQ
            c.q.append(c)
            return
        st = c.state
        # DEMAND|OUT_CLOSED|IN_CLOSED (50) is exactly DEMAND (2): still pushable.
        if (st & 50) != 2 or elem is None:
            # The checks in Akka's order: the element, the port, the demand.
            if elem is None:
                raise self._err(outlet, NONE_ELEMENT)
            if st & OUT_CLOSED:
                raise self._err(outlet, "Cannot push closed port")
            if not st & DEMAND:
                raise self._err(outlet, "Cannot push port twice, or before it being pulled")
            return  # pulled, then cancelled (not yet delivered): dropped, as in Akka
        c.elem = elem
        c.state = st ^ 6  # DEMAND -> PUSH_REQ (PUSH_REQ is never set alongside DEMAND)
        c.q.append(c)

    def complete(self, outlet: Outlet[Any]) -> None:
        """Complete ``outlet`` (after any pending ``emit``). Idempotent.

        Raises:
            PortStateError: the outlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        c = self._conn(outlet)
        h = c.out_handler
        if type(h) is _Emitting:
            h.complete_after = True
            return
        st = c.state
        if st & OUT_CLOSED:
            return
        c.state = (st | OUT_CLOSED | COMPLETE_REQ) & ~DEMAND
        c.q.append(c)
        self._port_closed()

    def fail(self, outlet: Outlet[Any], exc: BaseException) -> None:
        """Fail ``outlet`` with ``exc``, dropping pending emits. Idempotent.

        Raises:
            PortStateError: the outlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        c = self._conn(outlet)
        note_failure(exc, self._stage_name, self)
        if type(c.out_handler) is _Emitting:
            self.abort_emitting(outlet)
        st = c.state
        if st & OUT_CLOSED:
            return
        c.state = (st | OUT_CLOSED | FAIL_REQ) & ~DEMAND
        c.fail_cause = exc
        c.q.append(c)
        self._port_closed()

    # -- emit / read ---------------------------------------------------------------------
    def emit(
        self, outlet: Outlet[Any], elem: Any, and_then: Callable[[], None] | None = None
    ) -> None:
        """Push ``elem`` now if possible, else as soon as downstream pulls; then ``and_then``.

        While elements wait, the outlet's handler is replaced; do not ``set_handler`` it
        until they went out (``complete``, ``abort_emitting`` and more emits are safe).

        Raises:
            PortStateError: the outlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback); ``elem`` is None (at once when downstream already pulled,
                else when it is pushed, failing the stage).
        """
        c = self._conn(outlet)
        h = c.out_handler
        if type(h) is _Emitting:
            h.entries.append([elem, None, and_then])
            return
        if (c.state & (DEMAND | OUT_CLOSED)) == DEMAND:
            self.push(outlet, elem)
            if and_then is not None:
                and_then()
            return
        em = _Emitting(self, outlet, h)
        em.entries.append([elem, None, and_then])
        c.out_handler = em
        self._handlers[outlet] = em

    def emit_multiple(
        self, outlet: Outlet[Any], elems: Iterable[Any], and_then: Callable[[], None] | None = None
    ) -> None:
        """Emit every element of ``elems`` in order as demand arrives; then ``and_then``.

        ``elems`` is iterated lazily, one element ahead of the pushes.

        Raises:
            PortStateError: the outlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback); an element is None (when it is pushed).
            Exception: whatever iterating ``elems`` raises (the first element at once, later
                ones inside the pull that fetches them, failing the stage).
        """
        it: Iterator[Any] = iter(elems)
        try:
            first = next(it)
        except StopIteration:
            if and_then is not None:
                and_then()
            return
        c = self._conn(outlet)
        h = c.out_handler
        if type(h) is _Emitting:
            h.entries.append([first, it, and_then])
            return
        if (c.state & (DEMAND | OUT_CLOSED)) == DEMAND:
            self.push(outlet, first)
            try:
                first = next(it)
            except StopIteration:
                if and_then is not None:
                    and_then()
                return
        em = _Emitting(self, outlet, h)
        em.entries.append([first, it, and_then])
        c.out_handler = em
        self._handlers[outlet] = em

    def abort_emitting(self, outlet: Outlet[Any]) -> None:
        """Drop pending emits on ``outlet`` and restore its previous handler.

        Raises:
            PortStateError: the outlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        c = self._conn(outlet)
        h = c.out_handler
        if type(h) is _Emitting:
            c.out_handler = h.previous
            self._handlers[outlet] = h.previous

    def is_emitting(self, outlet: Outlet[Any]) -> bool:
        """True while ``emit``/``emit_multiple`` still hold elements for ``outlet``.

        Raises:
            PortStateError: the outlet is not a port of this stage's shape, or the stage has
                not started yet (act on ports from ``pre_start``, a handler, a timer or an
                async callback).
        """
        return type(self._conn(outlet).out_handler) is _Emitting

    def read(
        self,
        inlet: Inlet[Any],
        and_then: Callable[[Any], None],
        on_close: Callable[[], None] | None = None,
    ) -> None:
        """Read one element from ``inlet`` (pulling if needed) and pass it to ``and_then``;
        ``on_close`` runs instead if the inlet closes first.

        While the read waits, the inlet's handler is replaced; the previous one is restored
        before ``and_then``/``on_close`` run.

        Raises:
            PortStateError: a read on this inlet is already in progress ("Already reading"),
                or the inlet is not a port of this stage's shape, or the stage has not
                started yet (act on ports from ``pre_start``, a handler, a timer or an async
                callback).
        """
        if self.is_available(inlet):
            and_then(self.grab(inlet))
            return
        if self.is_closed(inlet):
            if on_close is not None:
                on_close()
            return
        if type(self._handlers.get(inlet)) is _Reading:
            raise self._err(inlet, "Already reading: a read on this inlet is in progress")
        if not self.has_been_pulled(inlet):
            self.pull(inlet)
        self.set_handler(inlet, _Reading(self, inlet, self._handlers[inlet], and_then, on_close))

    def read_n(
        self,
        inlet: Inlet[Any],
        n: int,
        and_then: Callable[[list[Any]], None],
        on_close: Callable[[list[Any]], None] | None = None,
    ) -> None:
        """Read ``n`` elements from ``inlet`` (as ``read``, one after the other) and pass
        them to ``and_then`` as a list; if the inlet closes first, ``on_close`` gets what
        was read so far (Akka's ``readN``). ``n == 0`` calls ``and_then([])`` at once.

        Raises:
            ValueError: ``n`` is negative.
            PortStateError: as ``read``.
        """
        if n < 0:
            raise ValueError(f"[{self._stage_name}] read_n: n must be >= 0, got {n!r}")
        got: list[Any] = []
        if n == 0:
            and_then(got)
            return

        def closed() -> None:
            if on_close is not None:
                on_close(got)

        def one(x: Any) -> None:
            got.append(x)
            if len(got) == n:
                and_then(got)
            else:
                self.read(inlet, one, closed)

        self.read(inlet, one, closed)

    def abort_reading(self, inlet: Inlet[Any]) -> None:
        """Stop an ongoing ``read`` on ``inlet``.

        Raises:
            Nothing: without a read in progress this does nothing.
        """
        h = self._handlers.get(inlet)
        if isinstance(h, _Reading):
            self.set_handler(inlet, h.previous)

    def pass_along(
        self,
        from_: Inlet[Any],
        to: Outlet[Any],
        do_finish: bool = True,
        do_fail: bool = True,
        do_pull: bool = False,
    ) -> None:
        """Forward every element (and optionally completion/failure) from ``from_`` to ``to``.

        With ``do_finish``, ``from_`` completing completes the stage (``complete_stage``:
        ``to`` after the elements on their way, the other ports too); with ``do_fail``, its
        failure fails the stage (``fail_stage``), as Akka's ``passAlong``. An element
        already waiting on ``from_`` is forwarded at once, and an already closed ``from_``
        completes the stage (with ``do_finish``).

        Raises:
            PortStateError: ``from_`` or ``to`` is not a port of this stage's shape, or the
                stage has not started yet (act on ports from ``pre_start``, a handler, a
                timer or an async callback).
        """
        logic = self

        class _PassAlong(InHandler):
            def on_push(self) -> None:
                logic.emit(to, logic.grab(from_), lambda: logic.try_pull(from_))

            def on_upstream_finish(self) -> None:
                if do_finish:
                    logic.complete_stage()

            def on_upstream_failure(self, exc: BaseException) -> None:
                if do_fail:
                    logic.fail_stage(exc)

        self.set_handler(from_, _PassAlong())
        # As Akka: an element already waiting is forwarded, an inlet already closed finishes.
        if self.is_available(from_):
            self.emit(to, self.grab(from_), lambda: self.try_pull(from_))
        if do_finish and self.is_closed(from_):
            self.complete_stage()
            return
        if do_pull:
            self.try_pull(from_)

    # -- stage-wide --------------------------------------------------------------------
    def complete_stage(self) -> None:
        """Cancel every inlet and complete every outlet (after pending emits).

        Raises:
            Nothing: ports already closed are left as they are.
        """
        self._complete_stage(STAGE_WAS_COMPLETED)

    def _complete_stage(self, cause: BaseException) -> None:
        """``complete_stage``, cancelling the inlets with ``cause``."""
        # The hook runs first: closing the last port may stop the stage (post_stop).
        self._extra_complete()
        for i in self.shape.inlets:
            if i in self._conns:
                self.cancel(i, cause)
        for o in self.shape.outlets:
            if o in self._conns:
                self.complete(o)
        self._settle()

    def fail_stage(self, exc: BaseException) -> None:
        """Cancel every inlet (with ``exc`` as cause) and fail every outlet with ``exc``.

        Raises:
            Nothing: ports already closed are left as they are.
        """
        if type(exc) is AsyncCallCancelledError:
            island = self._island
            if island is not None and island.task_cancelled():
                # An awaitable of the stage cancelled by the teardown that is cancelling
                # the island's task too (asyncio.run ending cancels every task at once):
                # not a failure of the stage but the stream's abrupt end, as the island's
                # own cancellation makes it (AbruptTerminationError everywhere).
                island.abort(None, task_cancelled=True)
                return
        # Metrics on (reactive.observe): the stage failed when the failure is its own
        # (its origin), not one it passes on (an upstream failure, a cancellation cause).
        origin = note_failure(exc, self._stage_name, self)
        if origin and self._note_stage and not isinstance(exc, StreamError):
            # A user's exception (a function's, given to map_async, a sink, ... or handed
            # to the stream: Source.failed, a queue's fail, a kill switch's abort) names
            # the stage it failed first, unless a note does already (``note_stage``).
            note_stage(exc, self._stage_name, first=True)
        meter = self._stage_meter()
        if meter is not None and origin:
            meter.failed = True
        # The hook runs first: closing the last port may stop the stage, and post_stop
        # must see the failure (else a sink's result gets AbruptTerminationError).
        self._extra_fail(exc)
        for i in self.shape.inlets:
            if i in self._conns:
                self.cancel(i, exc)
        for o in self.shape.outlets:
            if o in self._conns:
                self.fail(o, exc)
        self._settle()

    def _settle(self) -> None:
        # completeStage/failStage end keep-going, as in Akka; stop once every port closed.
        self._keep_going = False
        if not self._stopped and self._open_ports <= 0 and self._started:
            self._stop_soon()

    def cancel_stage(self, cause: BaseException) -> None:
        """React to a cancellation with ``cause``: for a normal one (a
        ``SubscriptionWithCancelError``, e.g. ``NoMoreElementsNeeded``) complete the stage,
        cancelling its inlets with that same cause (as Akka's ``cancelStage``); for any
        other, fail it with ``cause``.

        Raises:
            Nothing (as ``complete_stage``/``fail_stage``).
        """
        if cause is None:
            self.complete_stage()
        elif isinstance(cause, SubscriptionWithCancelError):
            self._complete_stage(cause)
        else:
            self.fail_stage(cause)

    def _extra_complete(self) -> None:
        """Hook for logics with dynamic ports (substreams) to close them too."""

    def _extra_fail(self, exc: BaseException) -> None:
        """Hook for logics with dynamic ports (substreams) to fail them too."""

    def set_keep_going(self, enabled: bool) -> None:
        """Keep running after every port closed; the stage must then stop itself."""
        self._keep_going = enabled
        if not enabled and self._open_ports == 0 and self._started and not self._stopped:
            self._stop_soon()

    @property
    def is_stopped(self) -> bool:
        """True once the stage has stopped (``post_stop`` ran)."""
        return self._stopped

    # -- lifecycle hooks -----------------------------------------------------------------
    def pre_start(self) -> None:
        """Called once before any event; pull initial demand and start timers here."""

    def post_stop(self) -> None:
        """Called once after the stage stopped for any reason; release resources here."""

    def get_async_callback(self, handler: Callable[[T], Any]) -> AsyncCallback[T]:
        """An entry point other tasks/threads use to run ``handler(x)`` inside the stage."""
        return AsyncCallback(self, handler)

    # -- supervision helpers -------------------------------------------------------------
    def decide(self, exc: BaseException) -> Any:
        """The supervision directive for ``exc`` from the stage's attributes."""
        return apply_decider(self._attributes.get("supervision"), exc)

    def _decided(self, exc: BaseException, counted_stop: bool = True) -> Any:
        """``decide(exc)`` for an operator that supervises its function's exception itself
        (not through the interpreter's ``_handle_error``), counted when metrics are on
        (reactive.observe) as ``_handle_error`` counts: an error; a resume; a restart and
        the resume that follows it (the state reset, the element dropped).
        ``counted_stop=False`` where a stop re-raises ``exc``: ``_handle_error`` counts it
        then."""
        directive = self.decide(exc)
        if directive is not Supervision.stop or counted_stop:
            self._count_decided(directive)
        return directive

    def _count_decided(self, directive: Any, resumes_after_restart: bool = True) -> None:
        """Count an exception supervision decided on, when metrics are on
        (reactive.observe): an error, and a resume or a restart (a restart also resumes:
        the state reset, the element dropped; ``resumes_after_restart=False`` for a
        ``scan`` that emits its zero again instead)."""
        meter = self._stage_meter()
        if meter is None:
            return
        meter.errors += 1
        if directive is Supervision.resume:
            meter.resumes += 1
        elif directive is Supervision.restart:
            meter.restarts += 1
            if resumes_after_restart:
                meter.resumes += 1

    # -- internals used by the interpreter -----------------------------------------------
    def _port_closed(self) -> None:
        self._open_ports -= 1
        if self._open_ports <= 0 and not self._keep_going and not self._stopped and self._started:
            self._stop_soon()

    _stop_pending = False

    def _stop_soon(self) -> None:
        """Stop once the running callback returned (Akka finalizes a stage after its
        handler, so ``post_stop`` never runs in the middle of one); at once when no
        callback of this island is running."""
        island = self._island
        if island is None or not island.running:
            self._stop()
            return
        if not self._stop_pending:
            self._stop_pending = True
            # First in the mailbox: nothing else reaches this logic before it stops.
            island.mailbox.appendleft((self, GraphStageLogic._stop, self))

    # The operator kind of a stage that runs one user function and that a fused run can
    # stand for (map, filter, scan, ...): a function's exception that fails the stage gets
    # the note a fused run gives it (``_handle_error``).
    _fn_kind: str | None = None
    # An exception escaping a handler of the stage (its function's, or the handler's own),
    # or one it fails with first, gets a note naming the stage (``note_stage``).
    _note_stage = True

    # Operators that honour supervision set this and may override _on_resume/_on_restart;
    # the interpreter consults the decider only when a handler raised, so the happy path
    # carries no try/except.
    _supervised = False

    def _on_resume(self, exc: BaseException) -> None:
        """Supervision resume: the element was dropped; ask for the next one."""
        for i in self.shape.inlets:
            c = self._conns.get(i)
            if c is not None and not c.state & (PULLED | IN_CLOSED | AVAIL):
                outs = self.shape.outlets
                if not outs or any(self.is_available(o) for o in outs):
                    self.pull(i)

    def _on_restart(self, exc: BaseException) -> None:
        """Supervision restart: reset state (override ``restart_state``), then resume."""
        self.restart_state()
        self._resume_counted(exc)

    def _resume_counted(self, exc: BaseException) -> None:
        """``_on_resume``, counted as a resume when metrics are on (reactive.observe)."""
        meter = self._stage_meter()
        if meter is not None:
            meter.resumes += 1
        self._on_resume(exc)

    def _stage_meter(self) -> Any:
        """This stage's counters (``reactive.observe``'s ``StageMeter``: errors, restarts,
        resumes, failed) when its graph has metrics on, else None.

        Kept on its connections (a ``MeteredConnection``'s ``out_meter``/``in_meter``),
        not on the logic: an attribute added to a logic after its ``__init__`` can push
        the instance off CPython's shared-key attribute layout, which slows every
        attribute read and method call of its hot path. Read on error paths only.
        """
        for c in self._conns.values():
            return getattr(c, "out_meter" if c.out_logic is self else "in_meter", None)
        return None

    def restart_state(self) -> None:
        """Reset the operator's state for a supervision restart (default: nothing)."""

    def _handle_error(self, exc: Exception) -> None:
        meter = self._stage_meter()
        if meter is not None:  # metrics on (reactive.observe): an error raised here
            meter.errors += 1
        if self._stopped:
            log.error("[%s] error after stop: %r", self._stage_name, exc)
            return
        # A stage's misuse of the port API is not decided on; None pushed from what a
        # supervised stage's function returned is that function's failure (Akka decides
        # on the NullPointerException of ``push(out, null)`` as on any other).
        if self._supervised and (
            not isinstance(exc, PortStateError) or type(exc) is NoneElementError
        ):
            directive = self.decide(exc)
            if directive is Supervision.resume:
                self._resume_counted(exc)
                return
            if directive is Supervision.restart:
                if meter is not None:
                    meter.restarts += 1
                self._on_restart(exc)
                return
        log.debug("[%s] failed: %r", self._stage_name, exc)
        kind = self._fn_kind
        if kind is not None and not isinstance(exc, PortStateError):
            # The note a fused run gives its operators' functions' exceptions.
            note_function(exc, kind, self._stage_name)
        elif self._note_stage and not isinstance(exc, PortStateError):
            note_stage(exc, self._stage_name)
        self._keep_going = False
        conns = self._conns
        # Every outlet already closed (a sink, or a stage that completed its outlet and
        # then pushed to it): nothing downstream can carry the failure.
        unreached = all(conns[o].state & OUT_CLOSED for o in self.shape.outlets if o in conns)
        self.fail_stage(exc)
        if unreached:
            check_reached(exc, self._loop)
        if not self._stopped:
            self._stop()

    def _stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._timers:
            for h in self._timers.values():
                h[0].cancel()
            self._timers.clear()
        try:
            self.post_stop()
        except Exception:
            log.exception("[%s] post_stop raised", self._stage_name)
        hooks = self._on_stop_hooks
        if hooks:
            for hook in hooks:
                hook()
        island = self._island
        if island is not None:
            island.logic_stopped(self)

    def _abort(self, exc: BaseException) -> None:
        """Abrupt stop (materializer shutdown): fail outlets and stop without events."""
        self._stopped = True
        if self._timers:
            for h in self._timers.values():
                h[0].cancel()
            self._timers.clear()
        try:
            self._on_abort(exc)
        except Exception:
            log.exception("[%s] abort hook raised", self._stage_name)
        try:
            self.post_stop()
        except Exception:
            log.exception("[%s] post_stop raised", self._stage_name)
        hooks = self._on_stop_hooks
        if hooks:
            for hook in hooks:
                hook()

    def _on_abort(self, exc: BaseException) -> None:
        """Hook: fail promises of materialized values on abrupt termination."""

    def _add_stop_hook(self, hook: Callable[[], None]) -> None:
        if self._on_stop_hooks is None:
            self._on_stop_hooks = []
        self._on_stop_hooks.append(hook)

    def _wire_check(self) -> None:
        for port in (*self.shape.inlets, *self.shape.outlets):
            if port not in self._handlers:
                kind = "in" if isinstance(port, Inlet) else "out"
                raise MissingHandlerError(
                    f"[{self._stage_name}] no handler defined for {kind} port {port.name!r}"
                )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._stage_name}>"


class StageLogging:
    """Mixin giving a logic a ``log`` (Akka's ``StageLogging``):
    ``class MyLogic(StageLogging, GraphStageLogic)``.

    ``log`` is the ``logging.Logger`` named ``"reactive.stage." + log_source``;
    ``log_source`` is the stage's name (its ``name`` attribute, or ``named(...)``, once
    the stage is materialized; the logic's type name before) and may be overridden. The
    loggers sit under the ``reactive`` logger, so configuring that one configures them.
    """

    __slots__ = ()

    @property
    def log_source(self) -> str:
        """The last part of the logger's name: the stage's name."""
        name: str = getattr(self, "_stage_name", None) or type(self).__name__
        return name

    @property
    def log(self) -> logging.Logger:
        """The stage's logger, ``logging.getLogger("reactive.stage." + log_source)``."""
        return logging.getLogger(f"reactive.stage.{self.log_source}")


class Batch(list[Any]):
    """A list of elements pushed as one event on a batch connection (fast path; see
    ``reactive._stage.batch``)."""

    __slots__ = ()


_Batch = Batch  # the runtime's own spelling (every fast path tests ``type(x) is _Batch``)


def abrupt_error(name: str) -> AbruptTerminationError:
    """The error given to materialized values of a stage stopped abruptly."""
    return AbruptTerminationError(
        f"[{name}] the stream was stopped abruptly (materializer shut down)"
    )


# ---------------------------------------------------------------------------------------
# Timers
# ---------------------------------------------------------------------------------------
class TimerGraphStageLogic(GraphStageLogic):
    """A logic with named timers; override ``on_timer(key)``.

    Scheduling a key that is active replaces it; all timers stop with the stage.
    Timers use the materializer's clock, so tests can drive them with a manual clock.
    """

    def on_timer(self, key: Any) -> None:
        """Called inside the stage when timer ``key`` fires."""

    def _timer_fire(self, entry: Any) -> None:
        key, token, interval, fixed_rate, when = entry
        timers = self._timers
        if timers is None:
            return
        h = timers.get(key)
        if h is None or h[1] is not token:
            return  # stale firing of a cancelled or replaced timer
        if interval is None:
            del timers[key]
        else:
            clock = self.materializer.clock
            nxt = (when + interval) if fixed_rate else (clock.time() + interval)
            self._timer_arm(key, token, interval, fixed_rate, nxt)
        self.on_timer(key)

    def _timer_arm(
        self, key: Any, token: Any, interval: float | None, fixed_rate: bool, when: float
    ) -> None:
        clock = self.materializer.clock
        island = self._island
        assert island is not None
        entry = (key, token, interval, fixed_rate, when)
        handle = clock.call_at(when, island.signal, self, self._timer_fire, entry)
        if self._timers is None:
            self._timers = {}
        self._timers[key] = (handle, token)

    def _timer_schedule(
        self, key: Any, delay: float, interval: float | None, fixed_rate: bool
    ) -> None:
        if self._island is None:
            raise PortStateError(
                f"[{self._stage_name}] timers cannot be scheduled before the stage started "
                "(use pre_start)"
            )
        if interval is not None and not (
            # The common case, checked without a call: both plain finite numbers in range
            # (grouped_within restarts its timer once per group; the full check below
            # cost it ~25% of its throughput). NaN, inf, bools and the rest go on.
            type(interval) in _PLAIN_NUMBER
            and type(delay) in _PLAIN_NUMBER
            and 0 < interval < _INF
            and 0 <= delay < _INF
        ):
            from .._checks import check, seconds

            name = "schedule_at_fixed_rate" if fixed_rate else "schedule_with_fixed_delay"
            what = "interval" if fixed_rate else "delay"
            try:
                check(
                    f"{name}(key, initial_delay, {what})",
                    None,
                    seconds(delay, False),
                    seconds(interval),
                )
            except (TypeError, ValueError) as e:
                raise type(e)(f"[{self._stage_name}] {e}") from None
        if self._stopped:
            # As in Akka: a timer scheduled once the stage stopped (in post_stop) is
            # cancelled with the stage's other timers, silently: it never fires.
            return
        self.cancel_timer(key)
        when = self.materializer.clock.time() + max(0.0, delay)
        self._timer_arm(key, object(), interval, fixed_rate, when)

    def schedule_once(self, key: Any, delay: float) -> None:
        """Fire ``on_timer(key)`` once after ``delay`` seconds (a negative delay counts as
        0). Once the stage stopped (e.g. from ``post_stop``) this does nothing: as in Akka,
        a stopped stage's timers never fire.

        Raises:
            PortStateError: the stage has not started yet (schedule from ``pre_start``).
        """
        self._timer_schedule(key, delay, None, False)

    def schedule_with_fixed_delay(self, key: Any, initial_delay: float, delay: float) -> None:
        """Fire after ``initial_delay``, then ``delay`` seconds after each firing. Once the
        stage stopped (e.g. from ``post_stop``) this does nothing (as in Akka).

        Raises:
            PortStateError: the stage has not started yet (schedule from ``pre_start``).
            ValueError: ``delay`` is not > 0 or ``initial_delay`` is negative (as in Akka);
                ``TypeError`` when either is not a number.
        """
        self._timer_schedule(key, initial_delay, delay, False)

    def schedule_at_fixed_rate(self, key: Any, initial_delay: float, interval: float) -> None:
        """Fire after ``initial_delay``, then every ``interval`` seconds. Once the stage
        stopped (e.g. from ``post_stop``) this does nothing (as in Akka).

        Raises:
            PortStateError: the stage has not started yet (schedule from ``pre_start``).
            ValueError: ``interval`` is not > 0 or ``initial_delay`` is negative (as in
                Akka); ``TypeError`` when either is not a number.
        """
        self._timer_schedule(key, initial_delay, interval, True)

    def cancel_timer(self, key: Any) -> None:
        """Cancel timer ``key`` if active; a late firing is discarded.

        Raises:
            Nothing: an unknown or inactive key is ignored.
        """
        if self._timers:
            h = self._timers.pop(key, None)
            if h is not None:
                h[0].cancel()

    def is_timer_active(self, key: Any) -> bool:
        """True while timer ``key`` is scheduled."""
        return bool(self._timers) and key in self._timers  # type: ignore[operator]
