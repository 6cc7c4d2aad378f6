"""B3's ceilings: the handler protocol with nothing else, in plain CPython.

Two "limit" systems run B3's chain (source -> four maps -> last) as bare handler objects
doing exactly ``on_pull: pull(in)`` and ``on_push: push(out, f(grab(in)))``, with no state
checks, no error handling, no supervision, no asyncio and no island:

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
