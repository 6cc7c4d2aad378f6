"""B3's ceilings: the handler protocol with nothing else, in plain CPython.

Three "limit" systems run B3's chain (source -> four maps -> last) as bare handler objects
doing exactly ``on_pull: pull(in)`` and ``on_push: push(out, f(grab(in)))``, with no
error handling, no supervision, no asyncio and no island; the first two with no state
checks either:

``bare_queued``
    Port actions append the connection to one FIFO that a loop drains, as an interpreter
    must to never call a handler while another handler of the same logic is still on the
    stack (Akka's guarantee; the project's interpreter keeps it). This is the ceiling of
    any runtime that keeps that guarantee with this protocol in CPython.

``bare_direct``
    ``push`` calls the downstream ``on_push`` and ``pull`` the upstream ``on_pull``
    directly (the source is trampolined so the stack stays flat). The sink's ``pull``
    runs ``on_pull`` of the last map while that map's ``on_push`` has not returned yet:
    handlers are re-entered, and ordinary stage code (``push(out, x)`` followed by
    ``pull(in)``, as Akka's own buffer stage does) then pulls twice. Shown because the
    B3 target was estimated from this shape; no correct runtime can take it.

``checked_queued``
    ``bare_queued`` with what the port actions of a runtime with Akka's API must do on
    top: a stage names its port (``push(self.out, x)``), not a connection, so each
    action looks the connection up (a dict owned by the logic: a stage, and so its ports,
    may be materialized many times at once), and each checks the port's state before
    acting (a push needs a pull, a pull an idle open port, a grab an element) with the
    error branches present (never taken here); the loop moves each connection's state
    (PUSH_REQ -> AVAIL, PULL_REQ -> DEMAND) as it dispatches. These are the project's own
    fast paths in ``reactive/_stage/logic.py`` and ``reactive/_impl/interpreter.py``,
    without asyncio, islands, supervision, completion or anything else.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import TYPE_CHECKING, Any

from benchmarks.workloads import FOUR_MAPS

if TYPE_CHECKING:
    from collections.abc import Callable


class _Conn:
    __slots__ = ("state", "elem", "up", "down", "q")

    def __init__(self, up: Any, down: Any, q: deque[Any] | None) -> None:
        self.state = 0
        self.elem: Any = None
        self.up = up
        self.down = down
        self.q = q


class _MapHandlers:
    """B3's map handlers, shared by both dispatch styles (only push/pull/grab differ)."""

    in_: _Conn
    out: _Conn
    f: Callable[[Any], Any]
    push: Callable[[_Conn, Any], None]
    pull: Callable[[_Conn], None]
    grab: Callable[[_Conn], Any]

    def __init__(self, f: Callable[[Any], Any]) -> None:
        self.f = f

    def on_push(self) -> None:
        self.push(self.out, self.f(self.grab(self.in_)))

    def on_pull(self) -> None:
        self.pull(self.in_)


class _LastHandlers:
    """``Sink.last``'s handler, shared by both dispatch styles."""

    in_: _Conn
    last: Any = None
    pull: Callable[[_Conn], None]
    grab: Callable[[_Conn], Any]

    def on_push(self) -> None:
        self.last = self.grab(self.in_)
        self.pull(self.in_)


# -- queued dispatch (no re-entrance) ---------------------------------------------------------


class _QLogic:
    in_: _Conn
    out: _Conn

    def push(self, c: _Conn, elem: Any) -> None:
        c.elem = elem
        c.state = 4
        c.q.append(c)  # type: ignore[union-attr]

    def pull(self, c: _Conn) -> None:
        c.state = 1
        c.q.append(c)  # type: ignore[union-attr]

    def grab(self, c: _Conn) -> Any:
        x = c.elem
        c.elem = None
        return x


class _QSource(_QLogic):
    def __init__(self, n: int) -> None:
        self.it = iter(range(n))

    def on_pull(self) -> None:
        x = next(self.it, None)
        if x is not None:
            self.push(self.out, x)


class _QMap(_QLogic, _MapHandlers):
    pass


class _QLast(_QLogic, _LastHandlers):
    pass


def bare_queued(n: int) -> Any:
    """B3's chain as bare handlers dispatched from one FIFO (the non-re-entrant ceiling)."""
    q: deque[Any] = deque()
    stages: list[Any] = [_QSource(n), *(_QMap(f) for f in FOUR_MAPS), _QLast()]
    for a, b in itertools.pairwise(stages):
        a.out = b.in_ = _Conn(a, b, q)
    sink = stages[-1]
    sink.pull(sink.in_)
    pop = q.popleft
    while q:
        c = pop()
        if c.state == 4:
            c.down.on_push()
        else:
            c.up.on_pull()
    return sink.last


# -- queued dispatch with the port lookup and the state checks --------------------------------


class _Port:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _CLogic:
    """Port actions as the project's fast paths do them (see ``checked_queued``)."""

    in_: _Port
    out: _Port

    def __init__(self) -> None:
        self._conns: dict[_Port, _Conn] = {}

    def pull(self, inlet: _Port) -> None:
        try:
            c = self._conns[inlet]
        except KeyError:
            raise ValueError(f"{inlet.name} is not a port of this stage") from None
        if not c.state:  # idle and open
            c.state = 1  # PULL_REQ
            c.q.append(c)
            return
        raise RuntimeError("Cannot pull port twice")

    def push(self, outlet: _Port, elem: Any) -> None:
        try:
            c = self._conns[outlet]
        except KeyError:
            raise ValueError(f"{outlet.name} is not a port of this stage") from None
        if c.state == 2 and elem is not None:  # DEMAND and nothing else
            c.elem = elem
            c.state = 4  # PUSH_REQ
            c.q.append(c)
            return
        raise RuntimeError("Cannot push port twice, or before it being pulled")

    def grab(self, inlet: _Port) -> Any:
        try:
            c = self._conns[inlet]
        except KeyError:
            raise ValueError(f"{inlet.name} is not a port of this stage") from None
        if c.state == 8:  # AVAIL and nothing else
            x = c.elem
            c.elem = None
            c.state = 0
            return x
        raise RuntimeError("Cannot get element from already empty input port")


class _CSource(_CLogic):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.it = iter(range(n))

    def on_pull(self) -> None:
        x = next(self.it, None)
        if x is not None:
            self.push(self.out, x)


class _CMap(_CLogic, _MapHandlers):
    def __init__(self, f: Callable[[Any], Any]) -> None:
        _CLogic.__init__(self)
        _MapHandlers.__init__(self, f)


class _CLast(_CLogic, _LastHandlers):
    pass


def checked_queued(n: int) -> Any:
    """``bare_queued`` plus the port-to-connection lookup and the port-state checks (the
    floor of a runtime with Akka's port API and checks, see the module docstring)."""
    q: deque[Any] = deque()
    stages: list[Any] = [_CSource(n), *(_CMap(f) for f in FOUR_MAPS), _CLast()]
    for i, (a, b) in enumerate(itertools.pairwise(stages)):
        a.out = _Port(f"out{i}")
        b.in_ = _Port(f"in{i}")
        a._conns[a.out] = b._conns[b.in_] = _Conn(a, b, q)
    sink = stages[-1]
    sink.pull(sink.in_)
    pop = q.popleft
    while q:
        c = pop()
        st = c.state
        if st == 4:  # PUSH_REQ -> AVAIL
            c.state = 8
            c.down.on_push()
        elif st == 1:  # PULL_REQ -> DEMAND
            c.state = 2
            c.up.on_pull()
        else:
            raise RuntimeError(f"unexpected state {st}")
    return sink.last


# -- direct calls (re-entrant) ----------------------------------------------------------------


class _DLogic:
    in_: _Conn
    out: _Conn

    def push(self, c: _Conn, elem: Any) -> None:
        c.elem = elem
        c.down.on_push()

    def pull(self, c: _Conn) -> None:
        c.up.on_pull()

    def grab(self, c: _Conn) -> Any:
        x = c.elem
        c.elem = None
        return x


class _DSource(_DLogic):
    demand = False

    def on_pull(self) -> None:
        self.demand = True


class _DMap(_DLogic, _MapHandlers):
    pass


class _DLast(_DLogic, _LastHandlers):
    pass


def bare_direct(n: int) -> Any:
    """B3's chain as bare handlers calling each other directly (re-entrant; not a runtime)."""
    src = _DSource()
    stages: list[Any] = [src, *(_DMap(f) for f in FOUR_MAPS), _DLast()]
    for a, b in itertools.pairwise(stages):
        a.out = b.in_ = _Conn(a, b, None)
    sink = stages[-1]
    sink.pull(sink.in_)
    push = src.push
    out = src.out
    for x in range(n):
        if not src.demand:
            break
        src.demand = False
        push(out, x)
    return sink.last
